/* lat_chunk.h — shared fp32 engine of the "GLA family" (spec/recurrent.md §0.4):
 *
 *     S_t = Diag(e^{g_t}) S_{t-1} + k_t v_tᵀ,      o_t = S_tᵀ q_t
 *
 * with a log-decay g_t ≤ 0 that is absent (linear attention), one scalar per
 * token (RetNet, Mamba-2, simple GLA) or one value per key (GLA, HGRN2).
 * Dimension legend: K keys (state rows), Vx value columns of the state — the
 * method's V plus any extra column it carries (linear attention's normalizer z
 * is a column of ones appended to v). State of one slice: [K][Vx] row-major.
 *
 * Two engines:
 *   lat_rec_step   one token of the recurrence over a range of value columns,
 *                  output accumulators kept in registers (the recurrent and
 *                  decode forms of the family; GLA, Mamba-2 and mLSTM run
 *                  their recurrent forms on the rescaled-state span engine of
 *                  lat_span.h, two FMAs per element and token instead of three
 *                  FP ops, and use this step only for a token whose decay is
 *                  below the span bound);
 *   lat_chunk_run  the whole chunkwise form of §0.4 over B·H slices: packing
 *                  and output are method callbacks, everything else (chunk-
 *                  local cumsums, intra-chunk scores with secondary chunking,
 *                  GEMMs, the state pass and the threading) lives here.
 *
 * Numerical rules (§0.5): cumsums are chunk-local, every exponent is ≤ 0,
 * entries above the diagonal are never exponentiated (R1–R3).
 *
 * Using the engine for a new method: write pack (inputs → Q, Kc, Vc, g of a
 * chunk; apply scales, feature maps, extra columns there) and emit (chunk
 * output → the method's output; normalizers, epilogues there), fill a
 * lat_chunk_problem and call lat_chunk_run from the form. Examples:
 *   linear_attn  LAT_DECAY_NONE, Q = φ(q), Kc = φ(k), Vc = [v | 1], Vx = V+1
 *   gla          LAT_DECAY_KEY,  Q = K^{-1/2} q, g = log-gates
 *   RetNet / simple GLA: LAT_DECAY_SCALAR with g = log γ (per token);
 *   HGRN2: LAT_DECAY_KEY; Mamba-2: LAT_DECAY_SCALAR (q = C, k = B·dt, v = x;
 *   its [P][N] state is the transpose of [K][Vx]: transpose around the call).
 * Not covered: RWKV-6's exclusive decay with the bonus u (§7), delta rules.
 */
#ifndef LAT_CHUNK_H
#define LAT_CHUNK_H

#include "lat_kernel.h"

/* ---- recurrent step ------------------------------------------------------ */

/* One token on the w value columns of S (row stride lds):
 *   S[i][:] = alpha[i]·S[i][:] + k[i]·v[:]     (alpha NULL → alpha = 1)
 *   o[:]    = Σ_i q[i]·S[i][:]                 (o is written, not accumulated)
 * q must already carry the score scale. */
void lat_rec_step(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                  const float *restrict k, const float *restrict v, const float *restrict q,
                  float *restrict o);

/* Value-column split for recurrent forms: how many column blocks each slice
 * is cut into so that BH·nvb items keep nthreads busy (1 when BH already
 * divides evenly or is large). Blocks are multiples of 16 columns. */
int lat_rec_col_blocks(int BH, int Vx, int nthreads);
/* Columns [*j0, *j1) of block vb out of nvb. */
void lat_rec_col_range(int Vx, int nvb, int vb, int *j0, int *j1);
/* dst[i][0..w) = src[i][0..w) for rows i < rows (row strides ldd, lds);
 * src NULL → zeros. Moves value-column blocks of a state in and out of a
 * private, cache-line-aligned working copy (no false sharing between the
 * column blocks of one slice). */
void lat_copy_block(float *restrict dst, size_t ldd, const float *restrict src, size_t lds,
                    int rows, int w);
/* Threads worth using for n_elem state-element updates (fork/join is not
 * free: tiny calls such as one decode token run on one thread). */
int lat_useful_threads(double n_elem, int nthreads);

/* ---- chunkwise engine ---------------------------------------------------- */

typedef enum {
    LAT_DECAY_NONE = 0, /* g ≡ 0: plain (causal or not) linear attention    */
    LAT_DECAY_SCALAR,   /* g: one log-decay per token            [n]        */
    LAT_DECAY_KEY,      /* g: one log-decay per token and key    [n][K]     */
} lat_decay;

/* Fill rows t0 .. t0+n-1 of slice bh into contiguous row-major buffers:
 *   Q[n][K] (already times the score scale), Kc[n][K], Vc[n][Vx],
 *   g[n] or g[n][K] (log-decays ≤ 0; not touched for LAT_DECAY_NONE). */
typedef void (*lat_chunk_pack_fn)(const void *ctx, int bh, int t0, int n, float *restrict Q,
                                  float *restrict Kc, float *restrict Vc, float *restrict g);
/* Consume the outputs O[n][Vx] of rows t0 .. t0+n-1 of slice bh. */
typedef void (*lat_chunk_emit_fn)(const void *ctx, int bh, int t0, int n, const float *restrict O);
/* Optional, LAT_DECAY_SCALAR only (mLSTM): the fp64 row and column
 * log-weights of rows t0 .. t0+n-1, given directly instead of the chunk-local
 * cumsum b of g (which is then not read). The chunk step becomes
 *   A[r][s] = (Q Kcᵀ)[r][s] · e^{row[r] − col[s]}   (s ≤ r)
 *   O       = (Q ⊙ e^{row}) S + A Vc
 *   S       ← e^{row[n−1]} S + (Kc ⊙ e^{row[n−1] − col})ᵀ Vc
 * — the cumsum case is row = col = b. It expresses decays that are not a
 * plain cumulative product, e.g. an exponential input gate with a running
 * max-stabilizer. The caller keeps row[r] ≤ 0 and row[r] ≤ col[s] for s ≤ r,
 * so every exponent stays ≤ 0 (R2). */
typedef void (*lat_chunk_logw_fn)(const void *ctx, int bh, int t0, int n, double *restrict row,
                                  double *restrict col);

typedef struct lat_chunk_problem {
    int BH, T, K, Vx;       /* slices, tokens, keys, value columns (with extras) */
    int C, c;               /* chunk length, secondary chunk (LAT_DECAY_KEY)    */
    lat_decay decay;
    int diag_prod;          /* LAT_DECAY_KEY: diagonal sub-blocks by running
                               products of α = e^{g} (K exps per token) instead
                               of e^{b_r − b_s} per pair (≈ cK/2 exps per token) */
    int causal;             /* 0: every query reads the state after all T tokens
                               (only with LAT_DECAY_NONE)                         */
    lat_chunk_pack_fn pack;
    lat_chunk_emit_fn emit;
    const void *ctx;
    const float *state_in;  /* [BH][K][Vx] or NULL (zeros)                       */
    float *state_out;       /* [BH][K][Vx] or NULL; may alias state_in           */
    lat_chunk_logw_fn logw; /* NULL → row = col = chunk-local cumsum of g         */
} lat_chunk_problem;

/* Bytes of workspace lat_chunk_run needs with nthreads threads. */
size_t lat_chunk_workspace(const lat_chunk_problem *p, int nthreads);

/* Runs the chunkwise form. Threads: one slice per thread when BH divides the
 * work evenly; otherwise a windowed two-pass scheme (chunks in parallel, a
 * short state scan split over state elements, chunks in parallel again). */
lat_status lat_chunk_run(const lat_chunk_problem *p, void *work, size_t work_bytes, int nthreads);

#endif
