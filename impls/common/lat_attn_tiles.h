/* lat_attn_tiles.h — the softmax-attention engine shared by exact softmax
 * (impls/softmax.c) and the sparse / blockwise patterns (sliding_window,
 * block_local, sparse_strided, longformer; spec/attention.md §1, §2).
 *
 * Every pattern is "softmax restricted to an allowed set A(i)". A method
 * describes A(i) to the engine as, for each tile of query rows, a short list
 * of key RUNS: n key (and value) rows with one row stride each, and a BAND on
 * a coordinate of the method's choosing — key c of a run (coordinate
 * run.pos + c) is visible to query r of the tile (coordinate tile.pos + r)
 * iff  lo ≤ (run.pos + c) − (tile.pos + r) ≤ hi.  Causal is hi = 0, a
 * sliding window lo = −(w−1), hi = 0, a symmetric window ±w₁; a strided
 * pattern uses permuted coordinates (the rows of one residue class, one
 * stride apart in memory, are a run whose coordinate is the index inside the
 * class). Patterns that are not one band are several runs, or several
 * passes chained through partial softmaxes (tile.init / tile.part).
 *
 * Engine 1 — tiled (FlashAttention-2, lat_attn_tiled): for each query tile,
 *   the runs are trimmed to the keys some row of the tile can see, cut into
 *   key tiles of bk keys, and each key tile costs two products (sᵀ = Kₜ·qᵀ,
 *   uᵀ = α∘uᵀ + Vₜᵀ·P) on a transposed tile (queries along the SIMD lanes)
 *   plus element-wise online-softmax bookkeeping; key tiles that the band
 *   covers fully are not masked, fully hidden ones never visited.
 *   AVX-512 builds (the fast path): the products run in a register-blocked
 *   broadcast micro-kernel (4 × 64 lanes ... 16 × 16; 98% of the FMA peak
 *   on a 128 × 64 × 64 tile in L1, as OpenBLAS's small kernels; one call per
 *   panel, not per product), the tile's lanes are padded to a multiple of
 *   16, the rescale by α is folded into the P·V product, and a key tile the
 *   band cuts is split into 16-key slices, each computed (and masked) only
 *   on the 16-lane query groups that see one of its keys — a causal diagonal
 *   or a window edge costs ~the pairs it keeps plus a 16 × 16 margin, not
 *   the whole tile, so narrow bands no longer need narrow tiles. Other
 *   builds (and decode, one query) use two lat_sgemm calls (NN, TN) and
 *   element-mask cut tiles with −∞.
 *   Key tiles are packed when the query tile has ≥ 16 rows (unless the run
 *   is already contiguous). Prefetch: each thread takes its next item ahead
 *   (a shared counter, dynamic order as the method numbers the items — put
 *   the heaviest first); during a key tile the rows of the next key tile,
 *   and during an item's last key tile its output rows and the next item's
 *   queries and first key tile, are prefetched into L2 a few rows before
 *   each micro-kernel call (a burst of ~1000 lines stalls the core). A
 *   tile's cost is O(nr·(K+V)) for the transposes plus O(nr·nc·(K+V)) per
 *   key tile. When items < threads (decode), the keys of each item are
 *   split across threads and the partials merged with the §0.6 rule
 *   (split-KV, flash-decoding).
 *
 * Engine 2 — dense (lat_attn_dense): the textbook form. Per (b, h) and block
 *   of query rows, the whole score matrix against all keys by lat_sgemm,
 *   the method's row mask, a row softmax (exps only inside the row's
 *   candidate range) and O = P·V by lat_sgemm.
 *
 * KV state helpers: a KV cache / ring buffer [B][H][R][K+V] (row per slot, K
 * key floats then V value floats; token at absolute position p lives in slot
 * p mod R). A plain cache is the ring with R = ctx ≥ pos + T.
 */
#ifndef LAT_ATTN_TILES_H
#define LAT_ATTN_TILES_H

#include "lat_kernel.h"

/* "unbounded" side of a band */
#define LAT_BAND_OPEN (1 << 29)

/* A run of n keys: key c at k + c·ldk, its value at v + c·ldv. */
typedef struct lat_kv_run {
    const float *k, *v;
    int ldk, ldv;
    int n;
    int pos;    /* band coordinate of key 0 (key c: pos + c)         */
    int lo, hi; /* visible iff lo ≤ kc − qc ≤ hi (±LAT_BAND_OPEN)    */
} lat_kv_run;

/* A tile of nr query rows: row r at q + r·ldq, output at o + r·ldo. */
typedef struct lat_qtile {
    const float *q;
    int ldq;
    float *o;
    int ldo;
    int nr;  /* rows (0: nothing to do)                            */
    int pos; /* band coordinate of row 0 (row r: pos + r)          */
    /* Optional partial softmaxes, one row of 2+V floats per query,
     * (m, ℓ, u[0..V)) of §0.6, row r at init + r·ld_init:
     * init  → the running softmax starts from it instead of (−∞, 0, 0);
     * part  → the tile's partial is written there instead of o = u/ℓ. */
    const float *init;
    int ld_init;
    float *part;
    int ld_part;
} lat_qtile;

/* Fills tile `item` (0 ≤ item < items) and at most max_runs runs; returns
 * the number of runs. Called concurrently from several threads. */
typedef int (*lat_qtile_fn)(const void *ctx, long item, lat_qtile *t, lat_kv_run *runs);

typedef struct lat_attn_desc {
    int K, V;
    int bq, bk;       /* most query rows per tile, keys per key tile   */
    long items;       /* query tiles                                   */
    int max_runs;     /* most runs of one tile                         */
    long split_keys;  /* keys one item typically sees (split-KV gate);
                         0 → never split                               */
    float scale;      /* score scale, 1/sqrt(K)                        */
    lat_qtile_fn tile;
    const void *ctx;
} lat_attn_desc;

/* Tile sizes for a pattern that gives each query about `width` keys in a
 * band (a window, a block, a residue class).
 * AVX-512 (the fast path cuts band edges at 16 × 16): tile_q × tile_k
 * whatever the width — 64-row tiles run the 4-vector micro-kernel and
 * amortize the per-tile transposes; measured (1 thread, min of 300 calls,
 * T = 1K): sliding window w = 64 −4%, sparse_strided −10% against the
 * narrow tiles below.
 * Other builds (element-masked tiles): query rows = the largest power of two
 * ≤ width/2, at least 16, at most tile_q; key tile = max(2·rows, 64), at
 * most tile_k. Wide bands keep tile_q × tile_k; narrow ones stop computing
 * (and masking) up to 3× the pairs they keep. Measured at T = 8192, 1
 * thread: sliding window w = 32: 16 rows +20% over 64 rows, w = 64: 32 rows
 * +8%, w ≥ 128 unchanged. */
static inline void lat_attn_band_tiles(int width, int tile_q, int tile_k, int *bq, int *bk)
{
#if defined(__AVX512F__)
    (void)width;
    *bq = tile_q;
    *bk = tile_k;
    return;
#endif
    int rows = 16;
    while (2 * rows <= width / 2)
        rows *= 2;
    *bq = rows < tile_q ? rows : tile_q;
    const int keys = 2 * *bq > 64 ? 2 * *bq : 64;
    *bk = keys < tile_k ? keys : tile_k;
}

/* Bytes of workspace lat_attn_tiled needs for desc (pointers unused). */
size_t lat_attn_tiled_workspace(const lat_attn_desc *d, int nthreads);
lat_status lat_attn_tiled(const lat_attn_desc *d, void *work, size_t work_bytes, int nthreads);

/* ---- dense (materialized) engine ---------------------------------------- */

/* Key segments of slice (b, h), concatenated in order as the score columns
 * [0, S); returns their count (≤ max_segs). run.pos/lo/hi are unused. */
typedef int (*lat_segs_fn)(const void *ctx, int b, int h, lat_kv_run *segs);
/* Row mask of query i (of this call) in slice (b, h): set [*lo, *hi) to the
 * columns holding every allowed key and write −∞ into the disallowed
 * columns inside it; columns outside it are masked without being read. */
typedef void (*lat_mask_row_fn)(const void *ctx, int b, int h, int i, float *row, int S, int *lo,
                                int *hi);

typedef struct lat_attn_dense_desc {
    int B, H, K, V;
    int i0, i1;       /* query rows of this call to compute            */
    int rows;         /* rows materialized at once (≥ 1)               */
    int S, max_segs;  /* key columns per slice, most segments          */
    float scale;
    const float *q;   /* [B][T][H][K] (T = the call's length)          */
    float *o;         /* [B][T][H][V]                                  */
    int T;
    lat_segs_fn segs;
    lat_mask_row_fn mask;
    const void *ctx;
} lat_attn_dense_desc;

size_t lat_attn_dense_workspace(const lat_attn_dense_desc *d, int nthreads);
lat_status lat_attn_dense(const lat_attn_dense_desc *d, void *work, size_t work_bytes, int nthreads);

/* ---- KV cache / ring buffer ----------------------------------------------- */

/* row `slot` of the (b, h) block of a [B][H][R][K+V] ring */
static inline size_t lat_kv_row(const lat_shape *s, int R, int b, int h, int slot)
{
    return (((size_t)b * (size_t)s->H + (size_t)h) * (size_t)R + (size_t)slot) *
           (size_t)(s->K + s->V);
}

/* Runs (≤ 2, split at the wrap) of absolute positions [p0, p1) held in the
 * (b, h) ring `ring` of R slots; run coordinate = absolute position, band
 * (lo, hi) copied into each run. Returns the number of runs written. */
int lat_kv_ring_runs(const lat_shape *s, const float *ring, int R, int b, int h, int p0, int p1,
                     int lo, int hi, lat_kv_run *runs);

/* Run of this call's keys at absolute positions [p0, p1) (pos ≤ p0), with
 * row stride `step` tokens (1 = consecutive); coordinate = (p − p0)/step + c0. */
lat_kv_run lat_kv_call_run(const lat_shape *s, const float *k, const float *v, int b, int h, int p0,
                           int n, int step, int c0, int lo, int hi);

/* state_out = state_in (or zeros) with this call's k, v written at slots
 * (pos + t) mod R (only the last min(T, R) tokens land). In place when
 * state_out == state_in; untouched slots are copied, never re-written. */
void lat_kv_write(const lat_args *a, int R);

#endif
