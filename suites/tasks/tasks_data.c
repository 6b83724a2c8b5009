/* tasks_data.c — MQAR and selective-copying generators (see tasks_data.h). */
#include "tasks_data.h"
#include "mq_ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t mq_data_seed(uint64_t data_seed, int split, int segment)
{
    uint64_t s = data_seed * 0x9E3779B97F4A7C15ull + (uint64_t)(split == MQ_SPLIT_VAL ? 7 : split) * 0x632BE59BD9B4E019ull +
                 (uint64_t)segment * 0xD6E8FEB86659FD93ull;
    uint64_t r = mq_rng_next(&s);
    r = mq_rng_next(&s) ^ (r << 1);
    if (split == MQ_SPLIT_TEST)
        return (1ull << 31) + (r & 0x7FFFFFFFull);  /* [2^31, 2^32) */
    return r & 0x7FFFFFFFull;                        /* [0, 2^31): train and validation */
}

typedef struct { size_t tok, pos, tgt; } ex_off;

int mq_dataset_init(mq_dataset *d, int V, int n, size_t ints)
{
    memset(d, 0, sizeof *d);
    d->V = V;
    d->cap = n > 0 ? n : 16;
    d->buf_cap = ints > 0 ? ints : 1024;
    d->ex = calloc((size_t)d->cap, sizeof *d->ex);
    d->off = calloc((size_t)d->cap * 3, sizeof *d->off);
    d->buf = malloc(d->buf_cap * sizeof *d->buf);
    if (!d->ex || !d->off || !d->buf) {
        mq_dataset_free(d);
        return -1;
    }
    return 0;
}

void mq_dataset_free(mq_dataset *d)
{
    free(d->ex);
    free(d->off);
    free(d->buf);
    memset(d, 0, sizeof *d);
}

/* Room for one more example of L tokens and nq labels; returns its slot. */
static mq_example *reserve(mq_dataset *d, int L, int nq, ex_off *o)
{
    if (d->n == d->cap) {
        int nc = d->cap * 2;
        mq_example *e = realloc(d->ex, (size_t)nc * sizeof *e);
        if (!e)
            return NULL;
        d->ex = e;
        size_t *f = realloc(d->off, (size_t)nc * 3 * sizeof *f);
        if (!f)
            return NULL;
        d->off = f;
        d->cap = nc;
    }
    size_t need = (size_t)L + 2 * (size_t)nq;
    if (d->buf_used + need > d->buf_cap) {
        size_t nc = d->buf_cap * 2;
        while (nc < d->buf_used + need)
            nc *= 2;
        int *b = realloc(d->buf, nc * sizeof *b);
        if (!b)
            return NULL;
        for (int i = 0; i < d->n; i++) { /* rebase every example on the new block */
            d->ex[i].tok = b + d->off[3 * i];
            d->ex[i].pos = b + d->off[3 * i + 1];
            d->ex[i].tgt = b + d->off[3 * i + 2];
        }
        d->buf = b;
        d->buf_cap = nc;
    }
    o->tok = d->buf_used;
    o->pos = o->tok + (size_t)L;
    o->tgt = o->pos + (size_t)nq;
    d->buf_used += need;
    d->off[3 * d->n] = o->tok;
    d->off[3 * d->n + 1] = o->pos;
    d->off[3 * d->n + 2] = o->tgt;
    mq_example *x = &d->ex[d->n++];
    x->L = L;
    x->nq = nq;
    x->tok = d->buf + o->tok;
    x->pos = d->buf + o->pos;
    x->tgt = d->buf + o->tgt;
    if (L > d->L_max)
        d->L_max = L;
    if (nq > d->nq_max)
        d->nq_max = nq;
    return x;
}

static int rand_below(uint64_t *s, int n) { return (int)(mq_rng_uniform(s) * n); }

/* k distinct values from [lo, lo + n) (partial Fisher–Yates on scratch). */
static void draw_distinct(uint64_t *s, int lo, int n, int k, int *out, int *scratch)
{
    for (int i = 0; i < n; i++)
        scratch[i] = lo + i;
    for (int i = 0; i < k; i++) {
        int j = i + rand_below(s, n - i);
        int t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
        out[i] = scratch[i];
    }
}

int mq_mqar_append(mq_dataset *d, int L, int K, int n, double power_a, int random_fill, uint64_t seed)
{
    const int V = d->V;
    if (L < 2 || L % 2 || V <= L || K < 1 || 4 * K > L || K > V / 2 - 1 || n < 0 || !(power_a > 0))
        return -1;
    const int S = (L - 2 * K) / 2;
    int *scratch = malloc(sizeof(int) * (size_t)V), *keys = malloc(sizeof(int) * (size_t)K),
        *vals = malloc(sizeof(int) * (size_t)K), *slot = malloc(sizeof(int) * (size_t)K);
    double *w = malloc(sizeof(double) * (size_t)S);
    unsigned char *used = malloc((size_t)S);
    if (!scratch || !keys || !vals || !slot || !w || !used) {
        free(scratch); free(keys); free(vals); free(slot); free(w); free(used);
        return -1;
    }
    for (int i = 0; i < S; i++)
        w[i] = power_a * pow(i + 1.0, power_a - 1.0);
    uint64_t rng = seed;
    int rc = 0;
    for (int e = 0; e < n; e++) {
        ex_off o;
        mq_example *x = reserve(d, L, K, &o);
        if (!x) {
            rc = -1;
            break;
        }
        int *tok = d->buf + o.tok, *pos = d->buf + o.pos, *tgt = d->buf + o.tgt;
        draw_distinct(&rng, 1, V / 2 - 1, K, keys, scratch);
        draw_distinct(&rng, V / 2, V - V / 2, K, vals, scratch);
        /* K slots without replacement, p ∝ (i+1)^(a−1), successive draws */
        memset(used, 0, (size_t)S);
        double total = 0;
        for (int i = 0; i < S; i++)
            total += w[i];
        for (int j = 0; j < K; j++) {
            double u = mq_rng_uniform(&rng) * total, acc = 0;
            int pick = -1, last = -1;
            for (int i = 0; i < S; i++) {
                if (used[i])
                    continue;
                last = i;
                acc += w[i];
                if (u < acc) {
                    pick = i;
                    break;
                }
            }
            if (pick < 0)
                pick = last; /* rounding at the top end */
            used[pick] = 1;
            total -= w[pick];
            slot[j] = pick;
        }
        for (int t = 0; t < L; t++)
            tok[t] = 0;
        for (int j = 0; j < K; j++) {
            tok[2 * j] = keys[j];
            tok[2 * j + 1] = vals[j];
        }
        for (int j = 0; j < K; j++)
            tok[2 * K + 2 * slot[j]] = keys[j];
        /* labels in position order */
        int q = 0;
        for (int i = 0; i < S; i++)
            if (used[i]) {
                int j = 0;
                while (slot[j] != i)
                    j++;
                pos[q] = 2 * K + 2 * i;
                tgt[q] = vals[j];
                q++;
            }
        if (random_fill) { /* every filler (a 0) becomes a uniform id; queries and context are non-zero */
            for (int t = 0; t < L; t++)
                if (tok[t] == 0)
                    tok[t] = rand_below(&rng, V);
        }
    }
    free(scratch); free(keys); free(vals); free(slot); free(w); free(used);
    return rc;
}

int mq_selcopy_append(mq_dataset *d, int A, int M, int L_noise, int n, uint64_t seed)
{
    if (A < 3 || M < 1 || L_noise < 0 || n < 0 || d->V < A)
        return -1;
    const int B = L_noise + M, L = B + M;
    int *perm = malloc(sizeof(int) * (size_t)B), *data = malloc(sizeof(int) * (size_t)M);
    unsigned char *mark = malloc((size_t)B);
    if (!perm || !data || !mark) {
        free(perm); free(data); free(mark);
        return -1;
    }
    uint64_t rng = seed;
    int rc = 0;
    for (int e = 0; e < n; e++) {
        ex_off o;
        mq_example *x = reserve(d, L, M, &o);
        if (!x) {
            rc = -1;
            break;
        }
        int *tok = d->buf + o.tok, *pos = d->buf + o.pos, *tgt = d->buf + o.tgt;
        for (int i = 0; i < M; i++)
            data[i] = 1 + rand_below(&rng, A - 2);
        /* M distinct positions among the first B, sorted */
        for (int i = 0; i < B; i++)
            perm[i] = i;
        memset(mark, 0, (size_t)B);
        for (int i = 0; i < M; i++) {
            int j = i + rand_below(&rng, B - i), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            mark[perm[i]] = 1;
        }
        int k = 0;
        for (int t = 0; t < B; t++)
            tok[t] = mark[t] ? data[k++] : 0;
        for (int i = 0; i < M; i++) {
            tok[B + i] = A - 1;
            pos[i] = B + i;
            tgt[i] = data[i];
        }
    }
    free(perm); free(data); free(mark);
    return rc;
}

int mq_dataset_validate(const mq_dataset *d, char *why, size_t len)
{
    for (int i = 0; i < d->n; i++) {
        const mq_example *x = &d->ex[i];
        for (int t = 0; t < x->L; t++)
            if (x->tok[t] < 0 || x->tok[t] >= d->V) {
                snprintf(why, len, "example %d: token %d at %d out of [0, %d)", i, x->tok[t], t, d->V);
                return -1;
            }
        for (int q = 0; q < x->nq; q++) {
            if (x->pos[q] < 0 || x->pos[q] >= x->L || (q && x->pos[q] <= x->pos[q - 1])) {
                snprintf(why, len, "example %d: labelled position %d bad", i, x->pos[q]);
                return -1;
            }
            if (x->tgt[q] < 0 || x->tgt[q] >= d->V) {
                snprintf(why, len, "example %d: target %d out of range", i, x->tgt[q]);
                return -1;
            }
        }
    }
    return 0;
}
