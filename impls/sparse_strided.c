/* sparse_strided.c — Sparse Transformer attention patterns (Child, Gray,
 * Radford, Sutskever 2019, "Generating Long Sequences with Sparse
 * Transformers", Sec. 4.2–4.3; openai/sparse_attention attention.py;
 * spec/attention.md §2.5), forward core, fp32. Causal.
 *
 * Math, query at absolute position a = pos + i, softmax (§1, τ = 1/√K) over
 *   variant 0, strided:  A1(a) ∪ A2(a),  A1 = { j : a − l < j ≤ a },
 *                        A2 = { j ≤ a : (a − j) mod l = 0 }
 *   variant 1, fixed:    F1(a) ∪ F2(a),  F1 = { j ≤ a : ⌊j/l⌋ = ⌊a/l⌋ },
 *                        F2 = { j ≤ a : (j mod l) ≥ l − c }
 * Decisions (spec open points, Appendix C.2):
 *   - the two head types are MERGED into one head (the paper's combination
 *     2, a set union: each key once) — SP1's "strided + local" pattern;
 *   - the local head has l keys including self (the code's
 *     matrix_band_part(l−1, 0)), not the paper's l+1;
 *   - l = `stride` knob, 0 (default) → ⌈√n⌉ with n = the sequence length,
 *     read as the KV capacity ctx (= pos + T when ctx is 0), so the
 *     pattern is fixed for a whole sequence, prefill and decode alike;
 *   - c = `window` knob (summary width, code default 32 = vertsize ·
 *     blocksize), clamped to l; one summary slice (num_verts = 1).
 * |A1 ∪ A2| = min(a+1, l) + ⌊a/l⌋ (≈ 2√T at the last row for l = √T,
 * Σ ≈ lT + T²/(2l) = O(T√T)); |F1 ∪ F2| = (a mod l) + 1 + c·⌊a/l⌋.
 *
 * State: the KV cache [B][H][ctx][K+V] as softmax's (A2 reaches every
 * earlier residue, so decode needs the whole prefix; the spec's decode note).
 * The fixed pattern could keep only its current block and c summary rows per
 * past block; it keeps the same cache (one layout for both variants).
 * Decode = the tiled form at T = 1, pos = t, in place.
 *
 * Forms
 *   tiled     on the shared engine (impls/common/lat_attn_tiles.c).
 *             strided: two passes chained through per-query partial
 *             softmaxes (m, ℓ, u) of §0.6 (workspace [B][H][T][V+2]):
 *             (1) A2 \ A1 with the permuted-sequence trick — the queries and
 *             keys of one residue class r (positions r, r+l, r+2l, …: rows
 *             l·H·K floats apart) form a query tile and a key run whose
 *             coordinate is the index inside the class, so A2 \ A1 is a
 *             strictly causal band (hi = −1) and plain causal tiles apply;
 *             (2) A1 as a sliding window of l keys (band −(l−1)..0) over
 *             natural query tiles, starting from the partials of (1).
 *             fixed: one pass; query tiles inside one block of l, keys =
 *             the own block (causal band) + the c summary keys of every
 *             earlier block (unmasked runs, merged when contiguous).
 *             2·|A|·(K+V) FLOPs + |A| exps (the analytic count reported).
 *             Threads over (b, h, tile), dynamic; split-KV when tiles <
 *             threads. What bounds it: the pattern is narrow — a window of
 *             l ≈ √T keys and classes of ≈ √T queries — so each query costs
 *             two transposed loads and stores of K/V floats per pass (and
 *             its partial (m, ℓ, u) written and read back) for only ≈ 1.5√T
 *             keys, and the class rows lie l·H·K floats apart (a page each):
 *             at T = 8K the time is memory latency (prefetch stalls, the
 *             largest item after the products) more than FMAs. Without
 *             AVX-512, element-masked 64-row tiles compute (and mask) 2.6×
 *             |A| at T = 1K (l = 32), 1.66× at 8K, 1.25× at 64K (query
 *             tiles sized to l by lat_attn_band_tiles); the AVX-512 engine
 *             computes a cut tile at 16 × 16 granularity (≈ |A| + margins).
 *   parallel  textbook dense masked (lat_attn_dense): all T × (pos+T)
 *             scores by lat_sgemm, the pattern as −∞ in the causal prefix
 *             of each row, row softmax, P·V. Quadratic; FLOPs counted as
 *             executed (2·T·(pos+T)·(K+V)); ≤ 2^26 scores per thread at once.
 * Parallel axis: (b, h, query tile / residue-class tile).
 * Defaults: variant 0, stride 0 (⌈√n⌉; the code demo uses l = 128), window
 *   (c) 32, tile_q = 64, tile_k = 128. Inputs q, k, v ~ N(0,1); harsh q, k
 *   ~ N(0,3²).
 * Run:  build/latbench run --method sparse_strided --form tiled --B 1 --T 8192 --H 8 --D 64 --threads 2
 *       build/latbench run --method sparse_strided --form tiled --variant 1 --stride 128 ...
 *       build/latbench check --methods sparse_strided
 */
#include "common/lat_attn_tiles.h"

// --------------------------------------------------------------------------
// Call context
// --------------------------------------------------------------------------

typedef struct {
    const lat_shape *s;
    const float *q, *k, *v, *cache;
    float *o, *part; /* part: [B][H][T][V+2] partials of the strided pass */
    int ctx, l, c, bq, bk;
    int ncls, tpc;   /* strided pass: most queries per class, tiles per class */
    int nqt;         /* local pass: query tiles per slice                      */
    int tpb, fb, nb; /* fixed: tiles per block, first block, blocks            */
} ss_call;

/* Strided pattern: the window is l ≈ √n keys wide and a residue class
 * ≈ n/l queries long. Element-masked 64-row tiles (builds without AVX-512)
 * compute and mask up to 3× |A| at small n: there the tiles follow
 * lat_attn_band_tiles(l) (16 rows at l = 32). Measured (1 thread, min of
 * 300 calls): T = 1K (l = 32) 16 rows 3.2 ms vs 64 rows 3.9 ms; 2K −11%;
 * 4K −7%; 8K, 16K equal (32 and 64 rows). The AVX-512 engine cuts the band
 * edges at 16 × 16, so it keeps 64-row tiles (T = 1K −10%, 4K −12% against
 * the narrow tiles, same measure). */
static ss_call ss_make(const lat_shape *s, const lat_args *a, float *part)
{
    ss_call c = {.s = s, .ctx = lat_shape_ctx(s), .l = ref_sparse_strided_stride(s),
                 .c = ref_sparse_strided_summary(s), .part = part};
    int bq = s->tile_q > 0 ? s->tile_q : 64;
    c.bk = s->tile_k > 0 ? s->tile_k : 128;
    if (s->variant == 0) /* tiles sized to the pattern (see the note above) */
        lat_attn_band_tiles(c.l, bq, c.bk, &bq, &c.bk);
    c.ncls = (s->T + c.l - 1) / c.l; /* a class meets ≤ ⌈T/l⌉ queries */
    c.bq = bq < s->T ? bq : s->T;
    if (s->variant == 0) {
        c.tpc = (c.ncls + c.bq - 1) / c.bq;
        c.nqt = (s->T + c.bq - 1) / c.bq;
    } else {
        c.bq = c.bq < c.l ? c.bq : c.l;
        c.tpb = (c.l + c.bq - 1) / c.bq;
        c.fb = s->pos / c.l;
        c.nb = (s->pos + s->T - 1) / c.l - c.fb + 1;
    }
    if (a) {
        c.q = a->in[0], c.k = a->in[1], c.v = a->in[2], c.cache = a->state_in, c.o = a->out;
    }
    return c;
}

/* keys at absolute positions [p0, p1), consecutive: a cache run and / or
 * this call's run, coordinate = position; appended to runs[n], merged with
 * the previous run when they continue each other in memory */
static int ss_range_runs(const ss_call *c, int b, int h, int p0, int p1, int hi, lat_kv_run *runs, int n)
{
    const lat_shape *s = c->s;
    for (int seg = 0; seg < 2; seg++) {
        const int a = seg == 0 ? p0 : (p0 > s->pos ? p0 : s->pos);
        const int z = seg == 0 ? (p1 < s->pos ? p1 : s->pos) : p1;
        if (z <= a)
            continue;
        lat_kv_run r;
        if (seg == 0)
            lat_kv_ring_runs(s, c->cache, c->ctx, b, h, a, z, -LAT_BAND_OPEN, hi, &r);
        else
            r = lat_kv_call_run(s, c->k, c->v, b, h, a, z - a, 1, a, -LAT_BAND_OPEN, hi);
        lat_kv_run *prev = n > 0 ? &runs[n - 1] : NULL;
        if (prev && prev->pos + prev->n == r.pos && prev->ldk == r.ldk &&
            prev->k + (size_t)prev->n * (size_t)prev->ldk == r.k) {
            prev->n += r.n;
            continue;
        }
        runs[n++] = r;
    }
    return n;
}

static lat_status ss_check_args(const lat_args *a)
{
    const lat_shape *s = a->shape;
    if (s->pos > 0 && a->state_in == NULL)
        return LAT_EINVAL;
    if (a->state_out != NULL && lat_shape_ctx(s) < s->pos + s->T)
        return LAT_UNSUPPORTED;
    return LAT_OK;
}

// --------------------------------------------------------------------------
// tiled, strided: pass 1 (A2 \ A1, residue classes), pass 2 (A1, window)
// --------------------------------------------------------------------------

/* first class index t with r + l·t ≥ p */
static inline int ss_cls(int p, int r, int l) { return p > r ? (p - r + l - 1) / l : 0; }

static int ss_tile_strided(const void *ctx, long it, lat_qtile *t, lat_kv_run *runs)
{
    const ss_call *c = ctx;
    const lat_shape *s = c->s;
    const int l = c->l, kt = (int)(it % c->tpc);
    const long rest = it / c->tpc;
    const int r = (int)(rest % l);
    const long bh = rest / l;
    const int b = (int)(bh / s->H), h = (int)(bh % s->H);
    const int t0 = ss_cls(s->pos, r, l), t1 = ss_cls(s->pos + s->T, r, l);
    const int ta = t0 + kt * c->bq, tb = ta + c->bq < t1 ? ta + c->bq : t1;
    t->nr = tb - ta;
    if (t->nr <= 0)
        return 0;
    const int i0 = r + l * ta - s->pos;
    t->q = c->q + lat_idx_bthd(s, b, i0, h, s->K);
    t->ldq = l * s->H * s->K;
    t->part = c->part + (((size_t)b * (size_t)s->H + (size_t)h) * (size_t)s->T + (size_t)i0) * (size_t)(s->V + 2);
    t->ld_part = l * (s->V + 2);
    t->pos = ta;
    int n = 0;
    if (t0 > 0 && c->cache) { /* the class in the cache: slots r, r+l, … */
        const float *k = c->cache + lat_kv_row(s, c->ctx, b, h, r);
        runs[n++] = (lat_kv_run){.k = k, .v = k + s->K, .ldk = l * (s->K + s->V), .ldv = l * (s->K + s->V),
                                 .n = t0, .pos = 0, .lo = -LAT_BAND_OPEN, .hi = -1};
    }
    runs[n++] = lat_kv_call_run(s, c->k, c->v, b, h, r + l * t0, t1 - t0, l, t0, -LAT_BAND_OPEN, -1);
    return n;
}

static int ss_tile_local(const void *ctx, long it, lat_qtile *t, lat_kv_run *runs)
{
    const ss_call *c = ctx;
    const lat_shape *s = c->s;
    const int qt = (int)(it % c->nqt);
    const long bh = it / c->nqt;
    const int b = (int)(bh / s->H), h = (int)(bh % s->H), i0 = qt * c->bq;
    t->nr = s->T - i0 < c->bq ? s->T - i0 : c->bq;
    t->q = c->q + lat_idx_bthd(s, b, i0, h, s->K);
    t->ldq = s->H * s->K;
    t->o = c->o + lat_idx_bthd(s, b, i0, h, s->V);
    t->ldo = s->H * s->V;
    t->pos = s->pos + i0;
    t->init = c->part + (((size_t)b * (size_t)s->H + (size_t)h) * (size_t)s->T + (size_t)i0) * (size_t)(s->V + 2);
    t->ld_init = s->V + 2;
    const int p0 = s->pos + i0 - c->l + 1;
    int n = ss_range_runs(c, b, h, p0 > 0 ? p0 : 0, s->pos + s->T, 0, runs, 0);
    for (int x = 0; x < n; x++)
        runs[x].lo = -(c->l - 1);
    return n;
}

static lat_attn_desc ss_desc_common(const ss_call *c, long items, int max_runs, long keys, lat_qtile_fn f)
{
    const lat_shape *s = c->s;
    lat_attn_desc d = {
        .K = s->K, .V = s->V, .bq = c->bq, .bk = c->bk, .items = items,
        .max_runs = max_runs, .split_keys = keys, .scale = 1.0f / sqrtf((float)s->K), .tile = f, .ctx = c,
    };
    return d;
}

static lat_attn_desc ss_desc_strided(const ss_call *c)
{
    const lat_shape *s = c->s;
    return ss_desc_common(c, (long)s->B * s->H * c->l * c->tpc, 2, c->ctx / c->l, ss_tile_strided);
}

static lat_attn_desc ss_desc_local(const ss_call *c)
{
    const lat_shape *s = c->s;
    return ss_desc_common(c, (long)s->B * s->H * c->nqt, 3, c->l, ss_tile_local);
}

// --------------------------------------------------------------------------
// tiled, fixed: own block + summary keys of earlier blocks
// --------------------------------------------------------------------------

static int ss_fixed_max_runs(const ss_call *c)
{
    return 2 * ((c->s->pos + c->s->T - 1) / c->l + 1) + 2;
}

static int ss_tile_fixed(const void *ctx, long it, lat_qtile *t, lat_kv_run *runs)
{
    const ss_call *c = ctx;
    const lat_shape *s = c->s;
    const int l = c->l, kt = (int)(it % c->tpb);
    const long rest = it / c->tpb;
    const int qb = c->fb + (c->nb - 1 - (int)(rest % c->nb)); /* late blocks first */
    const long bh = rest / c->nb;
    const int b = (int)(bh / s->H), h = (int)(bh % s->H);
    int a0 = qb * l + kt * c->bq, a1 = a0 + c->bq < (qb + 1) * l ? a0 + c->bq : (qb + 1) * l;
    a0 = a0 > s->pos ? a0 : s->pos;
    a1 = a1 < s->pos + s->T ? a1 : s->pos + s->T;
    t->nr = a1 - a0;
    if (t->nr <= 0)
        return 0;
    const int i0 = a0 - s->pos;
    t->q = c->q + lat_idx_bthd(s, b, i0, h, s->K);
    t->ldq = s->H * s->K;
    t->o = c->o + lat_idx_bthd(s, b, i0, h, s->V);
    t->ldo = s->H * s->V;
    t->pos = a0;
    int n = 0;
    for (int kb = 0; kb < qb; kb++) /* summaries: all before the tile, unmasked */
        n = ss_range_runs(c, b, h, kb * l + l - c->c, kb * l + l, LAT_BAND_OPEN, runs, n);
    const int own = n;
    n = ss_range_runs(c, b, h, qb * l, a1, 0, runs, n); /* own block, causal */
    if (own > 0 && n == own && runs[own - 1].hi != 0) {
        /* merged into the last summary run (c = l): keep the causal band on
         * the whole run, harmless for the keys before the tile */
        runs[own - 1].hi = 0;
    }
    return n;
}

static lat_attn_desc ss_desc_fixed(const ss_call *c)
{
    const lat_shape *s = c->s;
    return ss_desc_common(c, (long)s->B * s->H * c->nb * c->tpb, ss_fixed_max_runs(c),
                          (long)c->l + (long)c->c * ((s->pos + s->T) / c->l), ss_tile_fixed);
}

// --------------------------------------------------------------------------
// tiled: driver
// --------------------------------------------------------------------------

static size_t ss_part_bytes(const lat_shape *s)
{
    return lat_align64((size_t)s->B * (size_t)s->H * (size_t)s->T * (size_t)(s->V + 2) * sizeof(float));
}

static size_t ss_tiled_workspace(const lat_shape *s, int nthreads)
{
    const ss_call c = ss_make(s, NULL, NULL);
    if (s->variant == 1) {
        const lat_attn_desc d = ss_desc_fixed(&c);
        return lat_attn_tiled_workspace(&d, nthreads);
    }
    const lat_attn_desc d1 = ss_desc_strided(&c), d2 = ss_desc_local(&c);
    const size_t w1 = lat_attn_tiled_workspace(&d1, nthreads), w2 = lat_attn_tiled_workspace(&d2, nthreads);
    return lat_align64(w1 > w2 ? w1 : w2) + ss_part_bytes(s);
}

static lat_status ss_tiled(const lat_args *a)
{
    const lat_shape *s = a->shape;
    lat_status st = ss_check_args(a);
    if (st != LAT_OK)
        return st;
    if (a->work_bytes < ss_tiled_workspace(s, a->nthreads))
        return LAT_ENOMEM;
    if (s->variant == 1) {
        const ss_call c = ss_make(s, a, NULL);
        const lat_attn_desc d = ss_desc_fixed(&c);
        st = lat_attn_tiled(&d, a->work, a->work_bytes, a->nthreads);
    } else {
        const ss_call c0 = ss_make(s, a, NULL);
        const lat_attn_desc d10 = ss_desc_strided(&c0), d20 = ss_desc_local(&c0);
        const size_t w1 = lat_attn_tiled_workspace(&d10, a->nthreads), w2 = lat_attn_tiled_workspace(&d20, a->nthreads);
        const size_t eng = lat_align64(w1 > w2 ? w1 : w2);
        const ss_call c = ss_make(s, a, (float *)((char *)a->work + eng));
        const lat_attn_desc d1 = ss_desc_strided(&c), d2 = ss_desc_local(&c);
        st = lat_attn_tiled(&d1, a->work, eng, a->nthreads);
        if (st == LAT_OK)
            st = lat_attn_tiled(&d2, a->work, eng, a->nthreads);
    }
    if (st == LAT_OK && a->state_out != NULL)
        lat_kv_write(a, lat_shape_ctx(s));
    return st;
}

// --------------------------------------------------------------------------
// parallel (dense masked)
// --------------------------------------------------------------------------

#define SS_DENSE_SCORES ((size_t)1 << 26) /* scores per thread at once */

static int ss_segs(const void *ctx, int b, int h, lat_kv_run *segs)
{
    const ss_call *c = ctx;
    const lat_shape *s = c->s;
    int n = lat_kv_ring_runs(s, c->cache, c->ctx, b, h, 0, s->pos, 0, 0, segs);
    segs[n++] = lat_kv_call_run(s, c->k, c->v, b, h, s->pos, s->T, 1, s->pos, 0, 0);
    return n;
}

/* columns = absolute positions; row a: the causal prefix [0, a], −∞ on the
 * keys of the prefix outside the pattern */
static void ss_mask_row(const void *ctx, int b, int h, int i, float *restrict row, int S, int *lo, int *hi)
{
    const ss_call *c = ctx;
    const lat_shape *s = c->s;
    (void)b, (void)h, (void)S;
    const int a = s->pos + i, l = c->l;
    *lo = 0;
    *hi = a + 1;
    if (s->variant == 0) { /* keep (a − l, a] and the keys of a's residue */
        const int r = a % l;
        for (int base = 0; base <= a - l; base += l) {
            const int end = base + l < a - l + 1 ? base + l : a - l + 1;
            for (int j = base; j < end; j++)
                row[j] = j - base == r ? row[j] : -INFINITY;
        }
    } else { /* keep the own block and j mod l ≥ l − c */
        for (int base = 0; base < a / l * l; base += l)
            for (int j = base; j < base + l - c->c; j++)
                row[j] = -INFINITY;
    }
}

static lat_attn_dense_desc ss_dense_desc(const ss_call *c)
{
    const lat_shape *s = c->s;
    const int S = s->pos + s->T;
    const size_t rows = SS_DENSE_SCORES / (size_t)S;
    lat_attn_dense_desc d = {
        .B = s->B, .H = s->H, .K = s->K, .V = s->V, .i0 = 0, .i1 = s->T,
        .rows = rows >= (size_t)s->T ? s->T : (rows > 0 ? (int)rows : 1), .S = S, .max_segs = 2,
        .scale = 1.0f / sqrtf((float)s->K), .q = c->q, .o = c->o, .T = s->T, .segs = ss_segs,
        .mask = ss_mask_row, .ctx = c,
    };
    return d;
}

static size_t ss_parallel_workspace(const lat_shape *s, int nthreads)
{
    const ss_call c = ss_make(s, NULL, NULL);
    const lat_attn_dense_desc d = ss_dense_desc(&c);
    return lat_attn_dense_workspace(&d, nthreads);
}

static lat_status ss_parallel(const lat_args *a)
{
    lat_status st = ss_check_args(a);
    if (st != LAT_OK)
        return st;
    const ss_call c = ss_make(a->shape, a, NULL);
    const lat_attn_dense_desc d = ss_dense_desc(&c);
    st = lat_attn_dense(&d, a->work, a->work_bytes, a->nthreads);
    if (st == LAT_OK && a->state_out != NULL)
        lat_kv_write(a, c.ctx);
    return st;
}

// --------------------------------------------------------------------------
// Descriptor
// --------------------------------------------------------------------------

static int ss_state_dims(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->B;
    dims[1] = (size_t)s->H;
    dims[2] = (size_t)lat_shape_ctx(s);
    dims[3] = (size_t)(s->K + s->V);
    return 4;
}

/* |A| per (b, h), summed over this call's rows */
static double ss_pairs(const lat_shape *s)
{
    const long l = ref_sparse_strided_stride(s), c = ref_sparse_strided_summary(s);
    double n = 0;
    for (long a = s->pos; a < (long)s->pos + s->T; a++)
        n += s->variant == 0 ? (double)((a + 1 < l ? a + 1 : l) + a / l) : (double)(a % l + 1 + c * (a / l));
    return n;
}

static double ss_flops_tiled(const lat_shape *s)
{
    return 2.0 * ss_pairs(s) * (s->K + s->V) * s->B * s->H;
}

static double ss_flops_parallel(const lat_shape *s)
{
    return 2.0 * (double)s->T * ((double)s->pos + s->T) * (s->K + s->V) * s->B * s->H;
}

static double ss_bytes(const lat_shape *s)
{
    return 4.0 * s->B * s->H * ((double)s->T * (2.0 * s->K + 2.0 * s->V) + (double)s->pos * (s->K + s->V));
}

static double ss_state_bytes(const lat_shape *s)
{
    return 4.0 * s->B * s->H * (double)lat_shape_ctx(s) * (s->K + s->V);
}

static lat_status ss_validate(const lat_shape *s, char *why, size_t len)
{
    if (lat_shape_ctx(s) < s->pos + s->T)
        return lat_unsupported(why, len, "KV cache ctx=%d holds fewer than pos+T=%d tokens", lat_shape_ctx(s),
                               s->pos + s->T);
    return LAT_OK;
}

static const lat_input ss_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "queries [B][T][H][K], N(0,1); harsh N(0,3^2) (sharp rows)"},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "keys [B][T][H][K], N(0,1); harsh N(0,3^2)"},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
};

static const lat_knob ss_knobs[] = {
    LAT_KNOB(variant, 0, 0, 1, "0 strided (local A1 + strided A2, merged); 1 fixed (block F1 + summary F2)"),
    LAT_KNOB(stride, 0, 0, 1 << 20, "stride l; 0 = ceil(sqrt(n)), n = ctx (= pos+T): fixed per sequence"),
    LAT_KNOB(window, 32, 1, 1 << 20, "fixed pattern: summary width c (code: vertsize*blocksize = 32), <= l"),
    LAT_KNOB(tile_q, 64, 1, 4096, "tiled: most query rows per tile (strided: fewer for a narrow l)"),
    LAT_KNOB(tile_k, 128, 1, 4096, "tiled: most key columns per tile"),
};

static const lat_form ss_forms[] = {
    {.name = "tiled", .run = ss_tiled, .workspace = ss_tiled_workspace, .flops = ss_flops_tiled,
     .doc = "FlashAttention-2 over the pattern only: residue-class (permuted) tiles + window; the decode form"},
    {.name = "parallel", .run = ss_parallel, .workspace = ss_parallel_workspace, .flops = ss_flops_parallel,
     .doc = "textbook dense masked: all T x S scores by sgemm, pattern mask, P·V (O(T²))"},
};

const lat_method lat_method_sparse_strided = {
    .name = "sparse_strided",
    .family = "sparse-softmax",
    .paper = "Child et al. 2019, Generating Long Sequences with Sparse Transformers (arXiv 1904.10509); "
             "openai/sparse_attention",
    .summary = "Sparse Transformer strided (local + stride) or fixed pattern, stride ~ sqrt(T), one merged head",
    .dim_map = "K = V = D",
    .inputs = ss_inputs,
    .n_inputs = (int)(sizeof ss_inputs / sizeof ss_inputs[0]),
    .knobs = ss_knobs,
    .n_knobs = (int)(sizeof ss_knobs / sizeof ss_knobs[0]),
    .forms = ss_forms,
    .n_forms = (int)(sizeof ss_forms / sizeof ss_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = ss_state_dims,
    .decode_form = "tiled",
    .map_dim = NULL,
    .validate = ss_validate,
    .bytes = ss_bytes,
    .state_bytes = ss_state_bytes,
    .reference = ref_sparse_strided,
    .reference_alt = ref_sparse_strided_sets,
    .tol_out = 1e-5,
    .tol_state = 1e-6, /* the cache is a copy: exact */
    .approximates_softmax = 1,
    .softmax_target = ref_sparse_strided_target,
    .quadratic = 0,
    .tol_note = NULL,
};
