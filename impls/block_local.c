/* block_local.c — block-local softmax attention and BlockBERT (Qiu et al.,
 * "Blockwise Self-Attention for Long Document Understanding", Findings of
 * EMNLP 2020; spec/attention.md §2.4), forward core, fp32.
 *
 * Math: blocks of b consecutive positions, block(j) = ⌊j/b⌋, query at
 * absolute position a = pos + i, softmax (§1, τ = 1/√K) over A(a):
 *   variant 0  block-local            block(j) = block(a)
 *   variant 1  + previous block       block(a) − 1 ≤ block(j) ≤ block(a)
 *              (lucidrains local-attention, look_backward = 1, the library
 *              behind Performer's local heads); non-causal also the next
 *              block (its look_forward = 1 default when not causal)
 *   causal = 1 (knob) intersects with j ≤ a — variants 0 and 1
 *   variant 2, 3  BlockBERT, n_blk = 2 or 3 blocks of b = ⌈T/n_blk⌉
 *              (bidirectional, whole sequence only): head h attends key
 *              block π_h(block(a)), π_h(x) = (x + h mod n_blk) mod n_blk
 * Decisions (spec open points, Appendix C.3): the block size is the
 * `window` knob (variants 0, 1); BlockBERT's head split — unverified in the
 * spec — cycles the n_blk shifting permutations over the heads (head h gets
 * shift h mod n_blk; the paper's (1,2),(2,1) and (1,2,3),(2,3,1),(3,1,2),
 * identity = plain block-local); T need not divide: the last block is
 * short, and a query whose permuted key block lies past the end has an empty
 * A(a) and outputs 0 (§1's rule). |A| = T(b+1)/2 causal, T·b non-causal.
 *
 * State (decode memory, Appendix A: b(D+Dv)): the ring of the last R
 * tokens, [B][H][R][K+V], token p in slot p mod R, R = b (variant 0), 2b
 * (variant 1); a prefill continues from it (pos = tokens already seen;
 * causal or not, all keys of the query's block(s) before pos are among the
 * last R) and leaves the last R tokens in state_out. BlockBERT (needs
 * pos = 0) writes the ring of `window` slots, never reads it. Decode = the
 * tiled form at T = 1 (causal).
 *
 * Forms
 *   tiled     FlashAttention-2 online softmax on the shared engine
 *             (impls/common/lat_attn_tiles.c): query tiles never cross a
 *             block boundary (⌈b/tile_q⌉ tiles per block), each visits only
 *             its key block(s) — ring prefix runs and this call's run — with
 *             a causal band (only diagonal key tiles are masked).
 *             2·|A|·(K+V) FLOPs + |A| exps. Threads over (b, h, tile),
 *             dynamic; split-KV when tiles < threads.
 *   parallel  textbook dense masked (lat_attn_dense): all T × S scores by
 *             lat_sgemm (S = prefix + T), the allowed block range as the
 *             row's exp range, P·V by lat_sgemm. Quadratic on purpose; FLOPs
 *             counted as executed (2·T·S·(K+V)); up to 2^26 scores per
 *             thread at once (row blocks beyond).
 * Parallel axis: (b, h, query tile). Memory: state R·(K+V) floats per head.
 * Defaults: causal = 1, window b = 256 (Performer's local heads), variant 0,
 *   tile_q = 64, tile_k = 128 as upper bounds (lat_attn_band_tiles: without
 *   AVX-512, blocks below 128 get smaller tiles; the AVX-512 engine computes
 *   a causal diagonal at 16 × 16 granularity instead). Inputs q, k, v ~ N(0,1); harsh q, k ~ N(0,3²).
 * Run:  build/latbench run --method block_local --form tiled --B 1 --T 8192 --H 8 --D 64 --threads 2
 *       build/latbench run --method block_local --form tiled --causal 0 --variant 2 ...   (BlockBERT)
 *       build/latbench check --methods block_local
 */
#include "common/lat_attn_tiles.h"

// --------------------------------------------------------------------------
// Call context, blocks, key runs
// --------------------------------------------------------------------------

typedef struct {
    const lat_shape *s;
    const float *q, *k, *v, *ring;
    float *o;
    int bs, R, npre;     /* block size, ring slots, prefix keys in the ring */
    int bq, bk, tpb, fb, nb; /* tile rows / keys, tiles per block, first block, blocks */
} bl_call;

/* keys the call may need from before pos */
static int bl_npre(const lat_shape *s)
{
    const int R = ref_block_local_ring(s);
    return s->pos < R - 1 ? s->pos : R - 1;
}

static bl_call bl_make(const lat_shape *s, const lat_args *a)
{
    bl_call c = {.s = s, .bs = ref_block_local_size(s), .R = ref_block_local_ring(s), .npre = bl_npre(s)};
    lat_attn_band_tiles(c.bs, s->tile_q > 0 ? s->tile_q : 64, s->tile_k > 0 ? s->tile_k : 128, &c.bq, &c.bk);
    c.bq = c.bq < c.bs ? c.bq : c.bs;
    c.tpb = (c.bs + c.bq - 1) / c.bq;
    c.fb = s->pos / c.bs;
    c.nb = (s->pos + s->T - 1) / c.bs - c.fb + 1;
    if (a) {
        c.q = a->in[0], c.k = a->in[1], c.v = a->in[2], c.ring = a->state_in, c.o = a->out;
    }
    return c;
}

/* allowed keys [*lo, *hi) (absolute positions) of a query in block qb of
 * head h, before the causal cut */
static void bl_keys(const bl_call *c, int h, int qb, int *lo, int *hi)
{
    const lat_shape *s = c->s;
    int k0 = qb, k1 = qb; /* key blocks */
    if (s->variant == 1) {
        k0 = qb - 1;
        k1 = s->causal ? qb : qb + 1;
    } else if (s->variant >= 2) {
        k0 = k1 = (qb + h % s->variant) % s->variant;
    }
    const int n = s->pos + s->T;
    *lo = k0 > 0 ? k0 * c->bs : 0;
    *hi = (k1 + 1) * c->bs < n ? (k1 + 1) * c->bs : n;
}

/* keys [p0, p1) as ring-prefix runs and this call's run */
static int bl_runs(const bl_call *c, int b, int h, int p0, int p1, int hi, lat_kv_run *runs)
{
    const lat_shape *s = c->s;
    int n = 0;
    if (p0 < s->pos)
        n = lat_kv_ring_runs(s, c->ring, c->R, b, h, p0, p1 < s->pos ? p1 : s->pos, -LAT_BAND_OPEN, hi, runs);
    if (p1 > s->pos) {
        const int a = p0 > s->pos ? p0 : s->pos;
        runs[n++] = lat_kv_call_run(s, c->k, c->v, b, h, a, p1 - a, 1, a, -LAT_BAND_OPEN, hi);
    }
    return n;
}

static lat_status bl_check_args(const lat_args *a)
{
    if (a->shape->pos > 0 && a->state_in == NULL)
        return LAT_EINVAL;
    return LAT_OK;
}

// --------------------------------------------------------------------------
// tiled
// --------------------------------------------------------------------------

/* item → (b, h, block, tile of the block); tiles outside the call are empty */
static int bl_tile(const void *ctx, long it, lat_qtile *t, lat_kv_run *runs)
{
    const bl_call *c = ctx;
    const lat_shape *s = c->s;
    const int kt = (int)(it % c->tpb);
    const long rest = it / c->tpb;
    const int qb = c->fb + (int)(rest % c->nb);
    const long bh = rest / c->nb;
    const int b = (int)(bh / s->H), h = (int)(bh % s->H);
    int a0 = qb * c->bs + kt * c->bq, a1 = a0 + c->bq; /* absolute query rows */
    a1 = a1 < (qb + 1) * c->bs ? a1 : (qb + 1) * c->bs;
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
    int lo, hi;
    bl_keys(c, h, qb, &lo, &hi);
    return bl_runs(c, b, h, lo, hi, s->causal ? 0 : LAT_BAND_OPEN, runs);
}

static lat_attn_desc bl_tiled_desc(const bl_call *c)
{
    const lat_shape *s = c->s;
    const int span = s->variant == 1 ? 3 * c->bs : c->bs; /* keys of a query, at most */
    lat_attn_desc d = {
        .K = s->K, .V = s->V, .bq = c->bq, .bk = c->bk < span ? c->bk : span,
        .items = (long)s->B * s->H * c->nb * c->tpb, .max_runs = 3, .split_keys = span,
        .scale = 1.0f / sqrtf((float)s->K), .tile = bl_tile, .ctx = c,
    };
    return d;
}

static size_t bl_tiled_workspace(const lat_shape *s, int nthreads)
{
    const bl_call c = bl_make(s, NULL);
    const lat_attn_desc d = bl_tiled_desc(&c);
    return lat_attn_tiled_workspace(&d, nthreads);
}

static lat_status bl_tiled(const lat_args *a)
{
    lat_status st = bl_check_args(a);
    if (st != LAT_OK)
        return st;
    const bl_call c = bl_make(a->shape, a);
    const lat_attn_desc d = bl_tiled_desc(&c);
    st = lat_attn_tiled(&d, a->work, a->work_bytes, a->nthreads);
    if (st == LAT_OK && a->state_out != NULL)
        lat_kv_write(a, c.R);
    return st;
}

// --------------------------------------------------------------------------
// parallel (dense masked)
// --------------------------------------------------------------------------

#define BL_DENSE_SCORES ((size_t)1 << 26) /* scores per thread at once */

static int bl_segs(const void *ctx, int b, int h, lat_kv_run *segs)
{
    const bl_call *c = ctx;
    const lat_shape *s = c->s;
    return bl_runs(c, b, h, s->pos - c->npre, s->pos + s->T, LAT_BAND_OPEN, segs);
}

/* columns hold positions pos − npre … pos + T − 1: the allowed keys are one
 * contiguous range, cut at the query when causal */
static void bl_mask_row(const void *ctx, int b, int h, int i, float *row, int S, int *lo, int *hi)
{
    const bl_call *c = ctx;
    const lat_shape *s = c->s;
    (void)b, (void)row, (void)S;
    const int a = s->pos + i, first = s->pos - c->npre;
    int p0, p1;
    bl_keys(c, h, a / c->bs, &p0, &p1);
    if (s->causal && p1 > a + 1)
        p1 = a + 1;
    *lo = p0 - first;
    *hi = p1 - first;
}

static lat_attn_dense_desc bl_dense_desc(const bl_call *c)
{
    const lat_shape *s = c->s;
    const int S = c->npre + s->T;
    const size_t rows = BL_DENSE_SCORES / (size_t)S;
    lat_attn_dense_desc d = {
        .B = s->B, .H = s->H, .K = s->K, .V = s->V, .i0 = 0, .i1 = s->T,
        .rows = rows >= (size_t)s->T ? s->T : (rows > 0 ? (int)rows : 1), .S = S, .max_segs = 3,
        .scale = 1.0f / sqrtf((float)s->K), .q = c->q, .o = c->o, .T = s->T, .segs = bl_segs,
        .mask = bl_mask_row, .ctx = c,
    };
    return d;
}

static size_t bl_parallel_workspace(const lat_shape *s, int nthreads)
{
    const bl_call c = bl_make(s, NULL);
    const lat_attn_dense_desc d = bl_dense_desc(&c);
    return lat_attn_dense_workspace(&d, nthreads);
}

static lat_status bl_parallel(const lat_args *a)
{
    lat_status st = bl_check_args(a);
    if (st != LAT_OK)
        return st;
    const bl_call c = bl_make(a->shape, a);
    const lat_attn_dense_desc d = bl_dense_desc(&c);
    st = lat_attn_dense(&d, a->work, a->work_bytes, a->nthreads);
    if (st == LAT_OK && a->state_out != NULL)
        lat_kv_write(a, c.R);
    return st;
}

// --------------------------------------------------------------------------
// Descriptor
// --------------------------------------------------------------------------

static int bl_state_dims(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->B;
    dims[1] = (size_t)s->H;
    dims[2] = (size_t)ref_block_local_ring(s);
    dims[3] = (size_t)(s->K + s->V);
    return 4;
}

/* |A| summed over heads (BlockBERT's key blocks differ per head) and rows */
static double bl_pairs(const lat_shape *s)
{
    const bl_call c = bl_make(s, NULL);
    const int heads = s->variant >= 2 ? (s->H < s->variant ? s->H : s->variant) : 1;
    double n = 0;
    for (int h = 0; h < heads; h++) {
        const int reps = s->variant >= 2 ? (s->H - h + s->variant - 1) / s->variant : s->H;
        for (int a = s->pos; a < s->pos + s->T; a++) {
            int lo, hi;
            bl_keys(&c, h, a / c.bs, &lo, &hi);
            if (s->causal && hi > a + 1)
                hi = a + 1;
            n += (double)reps * (hi > lo ? hi - lo : 0);
        }
    }
    return n * s->B;
}

static double bl_flops_tiled(const lat_shape *s) { return 2.0 * bl_pairs(s) * (s->K + s->V); }

static double bl_flops_parallel(const lat_shape *s)
{
    return 2.0 * (double)s->T * (bl_npre(s) + (double)s->T) * (s->K + s->V) * s->B * s->H;
}

static double bl_bytes(const lat_shape *s)
{
    return 4.0 * s->B * s->H *
           ((double)s->T * (2.0 * s->K + 2.0 * s->V) + (double)bl_npre(s) * (s->K + s->V));
}

static double bl_state_bytes(const lat_shape *s)
{
    return 4.0 * s->B * s->H * (double)ref_block_local_ring(s) * (s->K + s->V);
}

static lat_status bl_validate(const lat_shape *s, char *why, size_t len)
{
    if (s->variant >= 2 && s->causal)
        return lat_unsupported(why, len, "BlockBERT (variant %d) is bidirectional: needs causal=0", s->variant);
    if (s->variant >= 2 && s->pos > 0)
        return lat_unsupported(why, len, "BlockBERT (variant %d) blocks are T/%d: whole sequence only (pos=0)",
                               s->variant, s->variant);
    return LAT_OK;
}

static const lat_input bl_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "queries [B][T][H][K], N(0,1); harsh N(0,3^2) (sharp rows)"},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "keys [B][T][H][K], N(0,1); harsh N(0,3^2)"},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
};

static const lat_knob bl_knobs[] = {
    LAT_KNOB(causal, 1, 0, 1, "1: keys j <= i only (variants 0, 1); BlockBERT needs 0"),
    LAT_KNOB(window, 256, 1, 1 << 20, "block size b (variants 0, 1; Performer's local heads use 256)"),
    LAT_KNOB(variant, 0, 0, 3,
             "0 block-local; 1 own + previous block (+ next when non-causal; local-attention); "
             "2, 3 BlockBERT with 2 or 3 blocks of ceil(T/n), head h shifted by h mod n"),
    LAT_KNOB(tile_q, 64, 1, 4096, "tiled: most query rows per tile (fewer for blocks < 128)"),
    LAT_KNOB(tile_k, 128, 1, 4096, "tiled: most key columns per tile"),
};

static const lat_form bl_forms[] = {
    {.name = "tiled", .run = bl_tiled, .workspace = bl_tiled_workspace, .flops = bl_flops_tiled,
     .doc = "FlashAttention-2 over each block's own key block(s) only; the decode form"},
    {.name = "parallel", .run = bl_parallel, .workspace = bl_parallel_workspace,
     .flops = bl_flops_parallel,
     .doc = "textbook dense masked: all T x S scores by sgemm, block-range softmax, P·V (O(T²))"},
};

const lat_method lat_method_block_local = {
    .name = "block_local",
    .family = "sparse-softmax",
    .paper = "Qiu et al. 2020 (BlockBERT, Findings of EMNLP, arXiv 1911.02972); local-attention "
             "(lucidrains) blocked window",
    .summary = "softmax within non-overlapping blocks (causal or not; + previous block; BlockBERT permuted)",
    .dim_map = "K = V = D",
    .inputs = bl_inputs,
    .n_inputs = (int)(sizeof bl_inputs / sizeof bl_inputs[0]),
    .knobs = bl_knobs,
    .n_knobs = (int)(sizeof bl_knobs / sizeof bl_knobs[0]),
    .forms = bl_forms,
    .n_forms = (int)(sizeof bl_forms / sizeof bl_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = bl_state_dims,
    .decode_form = "tiled",
    .map_dim = NULL,
    .validate = bl_validate,
    .bytes = bl_bytes,
    .state_bytes = bl_state_bytes,
    .reference = ref_block_local,
    .reference_alt = ref_block_local_blocks,
    .tol_out = 1e-5,
    .tol_state = 1e-6, /* the ring is a copy: exact */
    .approximates_softmax = 1,
    .softmax_target = ref_block_local_target,
    .quadratic = 0,
    .tol_note = NULL,
};
