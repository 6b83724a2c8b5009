/* lat_attn_tiles.c — tiled online-softmax engine, dense masked engine and
 * KV ring helpers (see lat_attn_tiles.h). The tiled kernel is the one of
 * impls/softmax.c (FlashAttention-2 with transposed tiles, small lat_sgemm
 * products, packing, prefetch, split-KV), generalized from "causal prefix"
 * to "runs with a band". */
#include <limits.h>

#include "lat_attn_tiles.h"

// --------------------------------------------------------------------------
// Plan and per-thread scratch of the tiled engine
// --------------------------------------------------------------------------

/* Query rows from which a key tile is packed before its products. */
#define AT_PACK_ROWS 16

/* Split-KV: fewest keys worth a thread of their own. */
#define AT_MIN_SPLIT_KEYS 256

typedef struct {
    int ns;              /* key splits per item (1 = off)             */
    size_t thread_bytes; /* per-thread scratch                        */
    size_t part_bytes;   /* one split's partial (m, ℓ, uᵀ) of an item  */
} at_plan;

static at_plan at_make_plan(const lat_attn_desc *d, int nthreads)
{
    const size_t fb = sizeof(float), q = (size_t)d->bq;
    at_plan p;
    p.ns = 1;
    if (nthreads > 1 && d->items > 0 && d->items < nthreads) {
        const long want = (nthreads + d->items - 1) / d->items;
        const long most = d->split_keys / AT_MIN_SPLIT_KEYS;
        p.ns = (int)(want < most ? want : (most > 1 ? most : 1));
    }
    p.thread_bytes = lat_align64(q * (size_t)d->K * fb) +             /* qt   */
                     lat_align64((size_t)d->bk * q * fb) +            /* st   */
                     lat_align64(q * (size_t)d->V * fb) +             /* ut   */
                     lat_align64((size_t)d->bk * (size_t)d->K * fb) + /* kp   */
                     lat_align64((size_t)d->bk * (size_t)d->V * fb) + /* vp   */
                     4 * lat_align64(q * fb) +                        /* m ℓ sh α */
                     lat_align64((size_t)(d->max_runs > 0 ? d->max_runs : 1) * sizeof(lat_kv_run));
    p.part_bytes = p.ns > 1 ? lat_align64(q * (size_t)(d->V + 2) * fb) : 0;
    return p;
}

size_t lat_attn_tiled_workspace(const lat_attn_desc *d, int nthreads)
{
    const at_plan p = at_make_plan(d, nthreads);
    return lat_align64(p.thread_bytes) * (size_t)nthreads +
           p.part_bytes * (size_t)(d->items > 0 ? d->items : 0) * (size_t)p.ns;
}

/* One query tile's running softmax, transposed (queries along the lanes):
 *   qt [K][nr]   the tile's queries,        sᵀ = Kₜ·qt   (sgemm NN)
 *   st [nc][nr]  scores, then P, of a key tile
 *   ut [V][nr]   running numerators,        uᵀ += Vₜᵀ·P  (sgemm TN)
 * so the row-wise bookkeeping (max, exp, sum, rescale) is element-wise
 * vector work, and both products run in OpenBLAS's fast small-matrix NN/TN
 * kernels (its NT path is ~30% slower at these sizes on this machine). */
typedef struct {
    float *restrict qt, *restrict st, *restrict ut;
    float *restrict kp, *restrict vp; /* the key tile, packed [nc][K|V] */
    float *restrict m, *restrict l;   /* running max and denominator   */
    float *restrict sh, *restrict al; /* scratch: shift and rescale α  */
    lat_kv_run *runs;
} at_acc;

static void at_carve(at_acc *t, const lat_attn_desc *d, char *w)
{
    const size_t q = (size_t)d->bq, fb = sizeof(float);
    t->qt = (float *)w;
    w += lat_align64(q * (size_t)d->K * fb);
    t->st = (float *)w;
    w += lat_align64((size_t)d->bk * q * fb);
    t->ut = (float *)w;
    w += lat_align64(q * (size_t)d->V * fb);
    t->kp = (float *)w;
    w += lat_align64((size_t)d->bk * (size_t)d->K * fb);
    t->vp = (float *)w;
    w += lat_align64((size_t)d->bk * (size_t)d->V * fb);
    t->m = (float *)w;
    t->l = (float *)(w + lat_align64(q * fb));
    t->sh = (float *)(w + 2 * lat_align64(q * fb));
    t->al = (float *)(w + 3 * lat_align64(q * fb));
    t->runs = (lat_kv_run *)(w + 4 * lat_align64(q * fb));
}

// --------------------------------------------------------------------------
// Online-softmax update of one key tile
// --------------------------------------------------------------------------

/* at_update for a single query (T = 1 decode): the same steps on a
 * contiguous row of nc scores, with the vector helpers. */
static void at_update1(at_acc *t, int nc, int V)
{
    float *restrict st = t->st;
    const float mx = lat_vec_max(st, (size_t)nc), m_old = t->m[0];
    const float m_new = mx > m_old ? mx : m_old;
    if (m_new == -INFINITY) { /* no key yet: P = 0, nothing changes */
        memset(st, 0, (size_t)nc * sizeof(float));
        return;
    }
    for (int c = 0; c < nc; c++)
        st[c] -= m_new;
    lat_vec_exp(st, st, (size_t)nc);
    const float sum = lat_vec_sum(st, (size_t)nc);
    if (m_old == -INFINITY) { /* first keys: ℓ and u are still 0 */
        t->l[0] = sum;
    } else {
        const float alpha = lat_expf(m_old - m_new);
        t->l[0] = alpha * t->l[0] + sum;
        lat_vec_scale(t->ut, alpha, (size_t)V);
    }
    t->m[0] = m_new;
}

/* Online update with the scores of one key tile in st [nc][nr] (−∞ where
 * masked): st becomes P = exp(s − m_new), ℓ and uᵀ are rescaled by
 * α = exp(m_old − m_new). A query with no key so far keeps m = −∞: its
 * shift is taken as 0 so that no −∞ − (−∞) is formed (§0.6 guard). */
static void at_update(at_acc *t, int nr, int nc, int V)
{
    float *restrict st = t->st, *restrict m = t->m, *restrict sh = t->sh, *restrict al = t->al;
    if (nr == 1) { /* decode: one query, st is a plain row */
        at_update1(t, nc, V);
        return;
    }
    for (int r = 0; r < nr; r++)
        sh[r] = m[r];
    for (int c = 0; c < nc; c++) {
        const float *restrict row = st + (size_t)c * (size_t)nr;
        for (int r = 0; r < nr; r++)
            sh[r] = row[r] > sh[r] ? row[r] : sh[r];
    }
    for (int r = 0; r < nr; r++) {
        const float m_new = sh[r];
        sh[r] = m_new == -INFINITY ? 0.0f : m_new;
        al[r] = m[r] - sh[r]; /* −∞ for a query's first keys: α = 0 */
        m[r] = m_new;
    }
    lat_vec_exp(al, al, (size_t)nr);
    for (int c = 0; c < nc; c++) {
        float *restrict row = st + (size_t)c * (size_t)nr;
        for (int r = 0; r < nr; r++)
            row[r] -= sh[r];
    }
    lat_vec_exp(st, st, (size_t)nc * (size_t)nr);
    for (int r = 0; r < nr; r++)
        t->l[r] *= al[r];
    for (int c = 0; c < nc; c++) {
        const float *restrict row = st + (size_t)c * (size_t)nr;
        for (int r = 0; r < nr; r++)
            t->l[r] += row[r];
    }
    for (int j = 0; j < V; j++) {
        float *restrict u = t->ut + (size_t)j * (size_t)nr;
        for (int r = 0; r < nr; r++)
            u[r] *= al[r];
    }
}

// --------------------------------------------------------------------------
// Key tiles: packing, prefetch, band mask
// --------------------------------------------------------------------------

/* Copy nc key and value rows into the contiguous kp [nc][K], vp [nc][V].
 * The sources are rows H·K floats apart (K+V in a cache, l·H·K in a strided
 * class): read in place by OpenBLAS's small-matrix kernels, which do not
 * pack, such power-of-two strides thrash L1 sets and TLB and the GEMMs run at
 * half speed. Worth it once a tile has many query rows. */
static void at_pack(const float *k, int ldk, const float *v, int ldv, int nc, int K, int V, at_acc *t)
{
    for (int cc = 0; cc < nc; cc++) {
        const float *restrict ks = k + (size_t)cc * (size_t)ldk;
        const float *restrict vs = v + (size_t)cc * (size_t)ldv;
        float *restrict kp = t->kp + (size_t)cc * (size_t)K;
        float *restrict vp = t->vp + (size_t)cc * (size_t)V;
        for (int i = 0; i < K; i++)
            kp[i] = ks[i];
        for (int j = 0; j < V; j++)
            vp[j] = vs[j];
    }
}

/* Hint the cache lines of nc key and value rows (a no-op without
 * __builtin_prefetch): strided rows defeat the hardware prefetcher, and
 * fetching the next tile during this one measured +25% tokens/s in decode,
 * +5% in prefill. Always inlined: as a function of its own GCC 12 finds it
 * "const" and deletes the call. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void at_prefetch(const lat_kv_run *r, int c0, int nc, int K, int V)
{
#if defined(__GNUC__)
    for (int cc = c0; cc < c0 + nc; cc++) {
        const char *k = (const char *)(r->k + (size_t)cc * (size_t)r->ldk);
        const char *v = (const char *)(r->v + (size_t)cc * (size_t)r->ldv);
        for (size_t o = 0; o < (size_t)K * sizeof(float); o += 64)
            __builtin_prefetch(k + o);
        for (size_t o = 0; o < (size_t)V * sizeof(float); o += 64)
            __builtin_prefetch(v + o);
    }
#else
    (void)r, (void)c0, (void)nc, (void)K, (void)V;
#endif
}

/* −∞ into st [nc][nr] where key ca+cc of run r is outside the band of query
 * row r: visible iff kc − hi ≤ row ≤ kc − lo, kc = key − query-0 coordinate. */
static void at_mask(float *restrict st, const lat_kv_run *r, int ca, int nc, int qpos, int nr)
{
    for (int cc = 0; cc < nc; cc++) {
        const long kc = (long)r->pos + ca + cc - qpos;
        long rlo = r->hi >= LAT_BAND_OPEN ? 0 : kc - r->hi;
        long rhi = r->lo <= -LAT_BAND_OPEN ? nr - 1 : kc - r->lo;
        rlo = rlo < 0 ? 0 : (rlo > nr ? nr : rlo);
        rhi = rhi >= nr ? nr - 1 : (rhi < -1 ? -1 : rhi);
        float *row = st + (size_t)cc * (size_t)nr;
        if (rhi < rlo) { /* hidden from every row */
            for (int q = 0; q < nr; q++)
                row[q] = -INFINITY;
            continue;
        }
        for (long q = 0; q < rlo; q++)
            row[q] = -INFINITY;
        for (long q = rhi + 1; q < nr; q++)
            row[q] = -INFINITY;
    }
}

/* Trim run r to the keys some row of the tile can see (in place). */
static void at_trim(lat_kv_run *r, const lat_qtile *t)
{
    long c0 = 0, c1 = r->n; /* [c0, c1) */
    if (r->lo > -LAT_BAND_OPEN) {
        const long a = (long)t->pos + r->lo - r->pos;
        c0 = a > c0 ? a : c0;
    }
    if (r->hi < LAT_BAND_OPEN) {
        const long z = (long)t->pos + r->hi + t->nr - r->pos; /* last visible + 1 */
        c1 = z < c1 ? z : c1;
    }
    if (c1 <= c0) {
        r->n = 0;
        return;
    }
    r->k += (size_t)c0 * (size_t)r->ldk;
    r->v += (size_t)c0 * (size_t)r->ldv;
    r->pos += (int)c0;
    r->n = (int)(c1 - c0);
}

// --------------------------------------------------------------------------
// One query tile over (a key slice of) its runs
// --------------------------------------------------------------------------

/* Hint all lines of n rows of w floats, ld apart (rw: 1 for a write):
 * strided query / output rows (a residue class, rows l·H·K floats apart)
 * miss one by one otherwise; asked for together, the misses overlap. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void at_prefetch_rows(const float *x, int n, int ld, int w, int rw)
{
#if defined(__GNUC__)
    for (int r = 0; r < n; r++) {
        const char *p = (const char *)(x + (size_t)r * (size_t)ld);
        for (size_t o = 0; o < (size_t)w * sizeof(float); o += 64) {
            if (rw)
                __builtin_prefetch(p + o, 1);
            else
                __builtin_prefetch(p + o, 0);
        }
    }
#else
    (void)x, (void)n, (void)ld, (void)w, (void)rw;
#endif
}

static void at_begin(at_acc *a, const lat_attn_desc *d, const lat_qtile *t, int use_init)
{
    const int K = d->K, V = d->V, nr = t->nr;
    at_prefetch_rows(t->q, nr, t->ldq, K, 0);
    if (use_init && t->init != NULL)
        at_prefetch_rows(t->init, nr, t->ld_init, V + 2, 0);
    lat_transpose(a->qt, (size_t)nr, t->q, (size_t)t->ldq, nr, K); /* qt = tile of Q, transposed */
    if (use_init && t->init != NULL) {
        for (int r = 0; r < nr; r++) {
            const float *p = t->init + (size_t)r * (size_t)t->ld_init;
            a->m[r] = p[0];
            a->l[r] = p[1];
        }
        lat_transpose(a->ut, (size_t)nr, t->init + 2, (size_t)t->ld_init, nr, V);
    } else {
        for (int r = 0; r < nr; r++) {
            a->m[r] = -INFINITY;
            a->l[r] = 0.0f;
        }
        memset(a->ut, 0, (size_t)V * (size_t)nr * sizeof(float));
    }
}

/* Trim the runs of tile t to the band, then to keys [skip, skip + take) of
 * their concatenation; prefetch the first key tile (it then travels while
 * at_begin transposes the queries). */
static void at_select(const lat_attn_desc *d, const lat_qtile *t, lat_kv_run *runs, int nruns, long skip,
                      long take)
{
    long seen = 0;
    for (int i = 0; i < nruns; i++) {
        lat_kv_run *r = &runs[i];
        at_trim(r, t);
        const long lo = skip - seen, hi = skip + take - seen; /* slice in run coords */
        seen += r->n;
        long c0 = lo > 0 ? lo : 0, c1 = hi < r->n ? hi : r->n;
        if (c1 <= c0) {
            r->n = 0;
            continue;
        }
        r->k += (size_t)c0 * (size_t)r->ldk;
        r->v += (size_t)c0 * (size_t)r->ldv;
        r->pos += (int)c0;
        r->n = (int)(c1 - c0);
    }
    for (int i = 0; i < nruns; i++)
        if (runs[i].n > 0) {
            at_prefetch(&runs[i], 0, runs[i].n < d->bk ? runs[i].n : d->bk, d->K, d->V);
            break;
        }
}

/* Rows of tile t over its selected runs (at_select): leaves the partial
 * (m, ℓ, uᵀ) in a. */
static void at_attend(at_acc *a, const lat_attn_desc *d, const lat_qtile *t, const lat_kv_run *runs,
                      int nruns)
{
    const int K = d->K, V = d->V, nr = t->nr, bk = d->bk;
    int ri = 0, ca = 0;
    while (ri < nruns && runs[ri].n == 0)
        ri++;
    while (ri < nruns) {
        const lat_kv_run *r = &runs[ri];
        const int cb = ca + bk < r->n ? ca + bk : r->n, nc = cb - ca;
        /* the next key tile travels from L3/DRAM during this one */
        int rn = ri, cn = cb;
        if (cn >= r->n) {
            rn = ri + 1;
            cn = 0;
            while (rn < nruns && runs[rn].n == 0)
                rn++;
        }
        if (rn < nruns)
            at_prefetch(&runs[rn], cn, (cn + bk < runs[rn].n ? cn + bk : runs[rn].n) - cn, K, V);

        const float *k = r->k + (size_t)ca * (size_t)r->ldk, *v = r->v + (size_t)ca * (size_t)r->ldv;
        int ldk = r->ldk, ldv = r->ldv;
        if (nr >= AT_PACK_ROWS && (ldk != K || ldv != V)) { /* not already packed */
            at_pack(k, ldk, v, ldv, nc, K, V, a);
            k = a->kp;
            v = a->vp;
            ldk = K;
            ldv = V;
        }
        lat_sgemm('N', 'N', nc, nr, K, d->scale, k, ldk, a->qt, nr, 0.0f, a->st, nr);
        const long dmin = (long)r->pos + ca - ((long)t->pos + nr - 1);
        const long dmax = (long)r->pos + cb - 1 - t->pos;
        if ((r->lo > -LAT_BAND_OPEN && dmin < r->lo) || (r->hi < LAT_BAND_OPEN && dmax > r->hi))
            at_mask(a->st, r, ca, nc, t->pos, nr);
        at_update(a, nr, nc, V);
        lat_sgemm('T', 'N', V, nr, nc, 1.0f, v, ldv, a->st, nr, 1.0f, a->ut, nr);
        ri = rn;
        ca = cn;
    }
}

/* o = uᵀ/ℓ transposed back (0 for a query with no key), or the partial.
 * Scales uᵀ in place (it is not used afterwards). */
static void at_finish(at_acc *a, const lat_attn_desc *d, const lat_qtile *t)
{
    const int V = d->V, nr = t->nr;
    if (t->part != NULL) {
        at_prefetch_rows(t->part, nr, t->ld_part, V + 2, 1);
        for (int r = 0; r < nr; r++) {
            float *p = t->part + (size_t)r * (size_t)t->ld_part;
            p[0] = a->m[r];
            p[1] = a->l[r];
        }
        lat_transpose(t->part + 2, (size_t)t->ld_part, a->ut, (size_t)nr, V, nr);
        return;
    }
    at_prefetch_rows(t->o, nr, t->ldo, V, 1);
    float *restrict inv = a->sh; /* scratch */
    for (int r = 0; r < nr; r++)
        inv[r] = a->l[r] > 0.0f ? 1.0f / a->l[r] : 0.0f;
    for (int j = 0; j < V; j++) {
        float *restrict u = a->ut + (size_t)j * (size_t)nr;
        for (int r = 0; r < nr; r++)
            u[r] *= inv[r];
    }
    lat_transpose(t->o, (size_t)t->ldo, a->ut, (size_t)nr, V, nr);
}

/* §0.6 merge of the ns split partials of one tile into a, then finish.
 * Empty partials (m = −∞) are skipped: no −∞ − (−∞). */
static void at_merge(at_acc *a, const lat_attn_desc *d, const at_plan *p, const lat_qtile *t,
                     const char *parts)
{
    const int V = d->V, nr = t->nr, bq = d->bq;
    for (int r = 0; r < nr; r++) {
        a->m[r] = -INFINITY;
        a->l[r] = 0.0f;
    }
    memset(a->ut, 0, (size_t)V * (size_t)nr * sizeof(float));
    for (int sp = 0; sp < p->ns; sp++) {
        const float *pm = (const float *)(parts + p->part_bytes * (size_t)sp);
        for (int r = 0; r < nr; r++)
            a->m[r] = pm[r] > a->m[r] ? pm[r] : a->m[r];
    }
    for (int sp = 0; sp < p->ns; sp++) {
        const float *pm = (const float *)(parts + p->part_bytes * (size_t)sp);
        const float *pl = pm + bq, *pu = pm + 2 * bq;
        for (int r = 0; r < nr; r++) {
            if (pm[r] == -INFINITY)
                continue;
            const float w = lat_expf(pm[r] - a->m[r]);
            a->l[r] += w * pl[r];
            for (int j = 0; j < V; j++)
                a->ut[(size_t)j * (size_t)nr + (size_t)r] += w * pu[(size_t)j * (size_t)nr + (size_t)r];
        }
    }
    at_finish(a, d, t);
}

/* keys of tile t after trimming (split-KV sizing) */
static long at_keys(const lat_kv_run *runs, int nruns, const lat_qtile *t)
{
    long n = 0;
    for (int i = 0; i < nruns; i++) {
        lat_kv_run r = runs[i];
        at_trim(&r, t);
        n += r.n;
    }
    return n;
}

lat_status lat_attn_tiled(const lat_attn_desc *d, void *work, size_t work_bytes, int nthreads)
{
    if (d->bq < 1 || d->bk < 1 || d->K < 1 || d->V < 1)
        return LAT_EINVAL;
    if (d->items <= 0)
        return LAT_OK;
    const at_plan p = at_make_plan(d, nthreads);
    if (work_bytes < lat_attn_tiled_workspace(d, nthreads))
        return LAT_ENOMEM;
    char *parts = (char *)work + lat_align64(p.thread_bytes) * (size_t)nthreads;
    const size_t item_parts = p.part_bytes * (size_t)p.ns;
    int bad = 0;

#pragma omp parallel num_threads(nthreads)
    {
        at_acc a;
        at_carve(&a, d, (char *)work + lat_align64(p.thread_bytes) * (size_t)lat_thread_id());

#pragma omp for schedule(dynamic, 1)
        for (long wi = 0; wi < d->items * p.ns; wi++) {
            const long it = wi / p.ns;
            const int sp = (int)(wi % p.ns);
            lat_qtile t;
            memset(&t, 0, sizeof t);
            const int nruns = d->tile(d->ctx, it, &t, a.runs);
            if (t.nr <= 0)
                continue;
            if (t.nr > d->bq || nruns > d->max_runs) {
#pragma omp atomic write
                bad = 1;
                continue;
            }
            if (p.ns == 1) {
                at_select(d, &t, a.runs, nruns, 0, LONG_MAX);
                at_begin(&a, d, &t, 1);
                at_attend(&a, d, &t, a.runs, nruns);
                at_finish(&a, d, &t);
                continue;
            }
            /* split-KV: share sp of the tile's keys; the partial is kept */
            const long total = at_keys(a.runs, nruns, &t);
            const long per = (total + p.ns - 1) / p.ns;
            float *part = (float *)(parts + item_parts * (size_t)it + p.part_bytes * (size_t)sp);
            at_acc pa = a;
            pa.m = part;
            pa.l = part + d->bq;
            pa.ut = part + 2 * d->bq;
            at_select(d, &t, a.runs, nruns, per * sp, per);
            at_begin(&pa, d, &t, sp == 0); /* the initial partial counts once */
            at_attend(&pa, d, &t, a.runs, nruns);
        }

        if (p.ns > 1) {
#pragma omp for schedule(static)
            for (long it = 0; it < d->items; it++) {
                lat_qtile t;
                memset(&t, 0, sizeof t);
                d->tile(d->ctx, it, &t, a.runs);
                if (t.nr > 0 && t.nr <= d->bq)
                    at_merge(&a, d, &p, &t, parts + item_parts * (size_t)it);
            }
        }
    }
    return bad ? LAT_EINVAL : LAT_OK;
}

// --------------------------------------------------------------------------
// Dense engine: materialized scores, row mask, row softmax
// --------------------------------------------------------------------------

static size_t ad_slice_bytes(const lat_attn_dense_desc *d)
{
    return lat_align64((size_t)d->rows * (size_t)d->S * sizeof(float)) +
           lat_align64((size_t)(d->max_segs > 0 ? d->max_segs : 1) * sizeof(lat_kv_run));
}

size_t lat_attn_dense_workspace(const lat_attn_dense_desc *d, int nthreads)
{
    return ad_slice_bytes(d) * (size_t)nthreads;
}

/* row[lo, hi) ← softmax (−∞ entries → 0), the rest ← 0; empty row → 0 */
static void ad_row_softmax(float *restrict row, int lo, int hi, int S)
{
    lo = lo < 0 ? 0 : lo;
    hi = hi > S ? S : hi;
    if (hi > lo) {
        const float m = lat_vec_max(row + lo, (size_t)(hi - lo));
        if (m == -INFINITY) {
            lo = hi = 0;
        } else {
            for (int j = lo; j < hi; j++)
                row[j] -= m;
            lat_vec_exp(row + lo, row + lo, (size_t)(hi - lo));
            lat_vec_scale(row + lo, 1.0f / lat_vec_sum(row + lo, (size_t)(hi - lo)), (size_t)(hi - lo));
        }
    } else {
        lo = hi = 0;
    }
    for (int j = 0; j < lo; j++)
        row[j] = 0.0f;
    for (int j = hi > lo ? hi : 0; j < S; j++)
        row[j] = 0.0f;
}

lat_status lat_attn_dense(const lat_attn_dense_desc *d, void *work, size_t work_bytes, int nthreads)
{
    if (d->rows < 1)
        return LAT_EINVAL;
    if (work_bytes < lat_attn_dense_workspace(d, nthreads))
        return LAT_ENOMEM;
    const int n = d->i1 - d->i0;
    if (n <= 0)
        return LAT_OK;
    const int nrb = (n + d->rows - 1) / d->rows;
    const long items = (long)d->B * d->H * nrb;
    const size_t slice = ad_slice_bytes(d);
    const int K = d->K, V = d->V, S = d->S, ldq = d->H * K, ldo = d->H * V;
    int bad = 0;

#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (long it = 0; it < items; it++) {
        const int rb = (int)(it % nrb), h = (int)((it / nrb) % d->H), b = (int)(it / nrb / d->H);
        char *w = (char *)work + slice * (size_t)lat_thread_id();
        float *P = (float *)w;
        lat_kv_run *segs = (lat_kv_run *)(w + lat_align64((size_t)d->rows * (size_t)S * sizeof(float)));
        const int r0 = d->i0 + rb * d->rows, nr = d->i1 - r0 < d->rows ? d->i1 - r0 : d->rows;
        const float *q = d->q + (((size_t)b * (size_t)d->T + (size_t)r0) * (size_t)d->H + (size_t)h) * (size_t)K;
        float *o = d->o + (((size_t)b * (size_t)d->T + (size_t)r0) * (size_t)d->H + (size_t)h) * (size_t)V;
        const int nseg = d->segs(d->ctx, b, h, segs);
        int col = 0;
        for (int g = 0; g < nseg; g++) {
            if (col + segs[g].n > S) {
#pragma omp atomic write
                bad = 1;
                break;
            }
            lat_sgemm('N', 'T', nr, segs[g].n, K, d->scale, q, ldq, segs[g].k, segs[g].ldk, 0.0f, P + col, S);
            col += segs[g].n;
        }
        for (int r = 0; r < nr; r++) {
            float *row = P + (size_t)r * (size_t)S;
            int lo = 0, hi = col;
            d->mask(d->ctx, b, h, r0 + r, row, col, &lo, &hi);
            ad_row_softmax(row, lo, hi > col ? col : hi, col);
        }
        /* O = P·V, segment by segment */
        float beta = 0.0f;
        col = 0;
        for (int g = 0; g < nseg && col + segs[g].n <= S; g++) {
            lat_sgemm('N', 'N', nr, V, segs[g].n, 1.0f, P + col, S, segs[g].v, segs[g].ldv, beta, o, ldo);
            col += segs[g].n;
            beta = 1.0f;
        }
        if (beta == 0.0f) /* no key at all */
            for (int r = 0; r < nr; r++)
                memset(o + (size_t)r * (size_t)ldo, 0, (size_t)V * sizeof(float));
    }
    return bad ? LAT_EINVAL : LAT_OK;
}

// --------------------------------------------------------------------------
// KV cache / ring buffer
// --------------------------------------------------------------------------

int lat_kv_ring_runs(const lat_shape *s, const float *ring, int R, int b, int h, int p0, int p1,
                     int lo, int hi, lat_kv_run *runs)
{
    if (p1 <= p0 || ring == NULL)
        return 0;
    const int slot = p0 % R, n = p1 - p0, n1 = n < R - slot ? n : R - slot;
    const int ld = s->K + s->V;
    runs[0] = (lat_kv_run){.k = ring + lat_kv_row(s, R, b, h, slot), .ldk = ld, .ldv = ld, .n = n1,
                           .pos = p0, .lo = lo, .hi = hi};
    runs[0].v = runs[0].k + s->K;
    if (n1 == n)
        return 1;
    runs[1] = (lat_kv_run){.k = ring + lat_kv_row(s, R, b, h, 0), .ldk = ld, .ldv = ld, .n = n - n1,
                           .pos = p0 + n1, .lo = lo, .hi = hi};
    runs[1].v = runs[1].k + s->K;
    return 2;
}

lat_kv_run lat_kv_call_run(const lat_shape *s, const float *k, const float *v, int b, int h, int p0,
                           int n, int step, int c0, int lo, int hi)
{
    const int t0 = p0 - s->pos;
    lat_kv_run r = {.k = k + lat_idx_bthd(s, b, t0, h, s->K), .v = v + lat_idx_bthd(s, b, t0, h, s->V),
                    .ldk = step * s->H * s->K, .ldv = step * s->H * s->V, .n = n, .pos = c0,
                    .lo = lo, .hi = hi};
    return r;
}

void lat_kv_write(const lat_args *a, int R)
{
    const lat_shape *s = a->shape;
    const float *in = a->state_in;
    float *out = a->state_out;
    const int K = s->K, V = s->V, W = K + V;
    const int nw = s->T < R ? s->T : R;        /* tokens that land     */
    const int first = s->T - nw;               /* first of them        */
    const int start = (int)(((long)s->pos + first) % R); /* its slot   */
    const int keep0 = (start + nw) % R, keep = R - nw;   /* kept slots */
    const size_t row = (size_t)W * sizeof(float);
#pragma omp parallel for collapse(2) num_threads(a->nthreads) schedule(static)
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            float *dst = out + lat_kv_row(s, R, b, h, 0);
            const float *src = in ? in + lat_kv_row(s, R, b, h, 0) : NULL;
            if (src != dst && keep > 0) { /* slots [keep0, keep0 + keep) mod R */
                const int k1 = keep0 + keep <= R ? keep : R - keep0;
                if (src) {
                    memcpy(dst + (size_t)keep0 * (size_t)W, src + (size_t)keep0 * (size_t)W, (size_t)k1 * row);
                    memcpy(dst, src, (size_t)(keep - k1) * row);
                } else {
                    memset(dst + (size_t)keep0 * (size_t)W, 0, (size_t)k1 * row);
                    memset(dst, 0, (size_t)(keep - k1) * row);
                }
            }
            for (int t = first; t < s->T; t++) {
                float *d = dst + (size_t)((s->pos + t) % R) * (size_t)W;
                memcpy(d, a->in[1] + lat_idx_bthd(s, b, t, h, K), (size_t)K * sizeof(float));
                memcpy(d + K, a->in[2] + lat_idx_bthd(s, b, t, h, V), (size_t)V * sizeof(float));
            }
        }
}
