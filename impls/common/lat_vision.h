/* lat_vision.h — shared fp32 engine of the vision linear-attention family
 * (spec/attention.md §5 FLatten, §7 EfficientViT, §8 SLAB; §6 Agent uses the
 * grid and depthwise-conv helpers only).
 *
 * Every member is one function of already-projected q, k, v per (b, h):
 *
 *     o_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / ( ⟨φ(q_i), Σ_j φ(k_j)⟩ + ε(i) )  [+ DWC(V)_i]
 *
 * with j over all N = T tokens (non-causal, the papers) or j ≤ i (the causal
 * variants of spec Appendix C.9), and
 *   φ        ReLU(x) + floor                         (SLAB, EfficientViT: floor 0)
 *            or FLatten's focused map on the ReLU features divided by the
 *            learned scale, norms over ALL heads' channels of the token:
 *              x̃ = (ReLU(x) + 1e-6) / softplus(s),  φ = ‖x̃‖·x̃^p/‖x̃^p‖
 *            (evaluated as r·(x̃/max x̃)^p with r = ‖x̃‖/‖(x̃/max x̃)^p‖, so no
 *            power over- or underflows; one pass over the token's C channels
 *            gives the two scalars, kept in the workspace);
 *   k        optionally k + P (learned positional encoding, FLatten, SLAB);
 *   ε(i)     eps_const + eps_key·(keys seen by query i): FLatten's N·1e-6
 *            (non-causal) / (pos+i+1)·1e-6 (causal); SLAB 1e-6; EfficientViT 1e-15;
 *   DWC      depthwise k×k conv of V on the Hs×Ws grid (weights [V][k][k]
 *            shared by all heads, bias [V]); causal variant: depthwise 1-D
 *            conv over time, o_t += b + Σ_u w_u ∘ v_{t−u} (weights [V][k]).
 * EfficientViT's multi-scale aggregation (ms > 0) adds H heads computed on
 * agg = GroupConv1×1(DWConv_{ms×ms}(q|k|v)) of each head (no biases): output
 * heads [0, H) read the inputs, [H, 2H) the aggregated q', k', v' kept in
 * the workspace [B][T][H][2K+V].
 *
 * Grid: T tokens are an Hs×Ws image in row-major order, Hs·Ws = T, Hs ≤ Ws as
 * square as possible (lat_grid). Every T has one (a prime T is 1×T).
 *
 * State (causal only; non-causal calls keep none), per batch b:
 *   Ho slices of [K][V+1] (S | z, z the normalizer as an extra value column)
 *   each followed by the DWC tail [(k−1)][V] (row u = v at position pos−1−u),
 *   then, with ms, the aggregation tail [(ms−1)][H][2K+V] of raw q|k|v rows.
 *
 * Forms (all handle causal and non-causal):
 *   parallel   non-causal (the papers' kv-first order), in sub-blocks of
 *              128 tokens: the φ rows of all heads of a token built in one
 *              pass over its H·K row (FLatten: the focusing scalars and the
 *              features from the same pass, no second evaluation per head;
 *              z = Σ φ(k) summed on the way), then per head
 *              pass 1  S += φ(K)ᵀV, an M = K GEMM with V read in place;
 *              pass 3  1/(⟨φ(q), z⟩ + ε) while the φ(q) row is in L1, then
 *                      φ(Q)·S into a 128×V scratch block (M ≤ 128: OpenBLAS's
 *                      small kernels, no packing and no zeroing pass for
 *                      beta 0), and one pass over the sub-block's rows of the
 *                      H input heads writes o = num·(1/den) + DWC(V) (the
 *                      column-tiled depthwise conv with the scaled numerators
 *                      as its initial values, non-temporal stores: o is
 *                      written once and never read back); heads without a
 *                      DWC are scaled out of the scratch the same way.
 *              The next sub-block's input rows are prefetched into L2 a
 *              slice before each head's GEMM. Bitwise the same output as
 *              the previous kernel (GEMM blocks, sums and their order
 *              unchanged). Measured, B1 T8192 H8 D64, 1 thread, CPU-shared
 *              machine, A/B alternated with the previous kernel (wall
 *              medians of 5-6 runs; CPU time per call): FLatten ≈ 1.35×
 *              faster (48.8 → 36.2 ms; CPU 30 → 24 ms, ≈ 50 % of the FMA
 *              peak), EfficientViT ≈ 1.15× (28.9 → 24.6 ms; CPU 18 → 16
 *              ms, ≈ 58 %), SLAB ≈ 1.05× (35.7 → 34.5 ms; CPU 24.6 → 22.6
 *              ms, ≈ 50 %). What is left: the GEMMs ≈ 40-65 % of the time
 *              at ≈ 95 GFLOP/s, the DWC ≈ 25 % at ≈ 30-40 GFLOP/s (its
 *              loads of V, H·V floats between a head's consecutive tokens,
 *              wait on L2/L3: a packed copy or software prefetch did not
 *              help), the rest the q/k/P/V row streams from DRAM.
 *              Causal: the masked quadratic form, φ(Q)φ(K)ᵀ ∘ L blocks of
 *              64 queries times [V | 1] (T² work: a cross-check, not a fast path).
 *   chunk      the GLA-family engine (lat_chunk.h) with no decay; [v | 1] as
 *              the value block, the normalizer its last column.
 *   recurrent  token by token: lat_rec_step on the V columns, z = S[:, V]
 *              beside it; the decode step (T = 1, in place).
 * Memory access: rows of one head are H·K floats apart; every row builder
 * prefetches the row 16 tokens ahead, and the forms walk token blocks across
 * all heads (block j of every slice, then j+1), so the rows of a token are
 * read together.
 * Threads: the non-causal parallel form is token-major: token blocks (≤ 256
 * tokens, ≥ 4 per thread when T allows) with all Ho heads of a block on one
 * thread, one contiguous run of blocks per thread, a partial [S | z] per
 * thread and slice summed in thread order; so a thread reads and writes
 * whole token rows and the DWC runs over all H heads of a block (split by
 * heads, each thread wrote half of every output row, and at 2 threads the
 * DWC took 1.2-2× its 1-thread CPU time). The causal parallel form and the
 * recurrent form thread over (b, h) slices (min(B·H, threads) threads), the
 * chunk form runs the engine's scheme.
 * Numerics: no exp anywhere except softplus(s) of FLatten's scale; features
 * are ≥ 0, so every denominator is a sum of non-negative terms (no
 * cancellation); ε guards the all-zero ReLU row (numerator 0 as well).
 */
#ifndef LAT_VISION_H
#define LAT_VISION_H

#include "lat_chunk.h"

/* ---- grid and depthwise convolutions ------------------------------------ */

/* Hs·Ws = T with Hs the largest divisor of T not above √T. */
void lat_grid(int T, int *Hs, int *Ws);

/* wT[tap][c] = w[c][tap] (tap < taps, c < ch): channel-contiguous taps. */
void lat_dwc_transpose(float *restrict wT, const float *restrict w, int ch, int taps);

/* 2-D depthwise k×k conv (zero padding k/2) on the Hs×Ws grid, rows
 * t ∈ [t0, t1): o[t] (=|+=) bias + Σ_{a,e} wT[a·k+e] ∘ x[(y+a−k/2, x+e−k/2)].
 * x and o point at token 0 of the slice; ldx, ldo floats between tokens.
 * bias NULL → none; add 0 writes o, 1 adds to it. */
void lat_dwc2d_rows(int Hs, int Ws, int k, int ch, const float *restrict wT,
                    const float *restrict bias, const float *restrict x, size_t ldx,
                    float *restrict o, size_t ldo, int t0, int t1, int add);

/* The same over nh consecutive heads at once (x, o at token 0 of the first
 * head; hx, ho floats between heads; wT + h·wstride and bias + h·bstride are
 * head h's weights, stride 0 = shared by the heads): each token's rows of all
 * the heads are contiguous, and a shared weight row serves every head.
 * Column-tiled (the source rows of a tile stay in L2); with AVX-512 (16
 * channels a vector) or AVX2 (8, when ch % 8 = 0) and k = 3, 5, 7 the
 * interior columns go 8 at a time with a kernel row's weights in registers
 * (bitwise the same sums as the generic kernels). */
void lat_dwc2d_heads(int Hs, int Ws, int k, int ch, int nh, const float *restrict wT, size_t wstride,
                     const float *restrict bias, size_t bstride, const float *restrict x, size_t ldx,
                     size_t hx, float *restrict o, size_t ldo, size_t ho, int t0, int t1, int add);

/* Causal 1-D depthwise conv over time, rows t ∈ [t0, t1):
 * o[t] (=|+=) bias + Σ_{u<k} wT[u] ∘ x[t−u]; rows t−u < 0 come from tail
 * (tail + j·ldt = x[−1−j]; NULL → zeros). */
void lat_dwc1d_rows(int k, int ch, const float *restrict wT, const float *restrict bias,
                    const float *restrict x, size_t ldx, const float *restrict tail,
                    size_t ldt, float *restrict o, size_t ldo, int t0, int t1, int add);

/* ---- the linear-attention core ------------------------------------------ */

typedef enum { LAT_VLA_RELU = 0, LAT_VLA_FOCUSED = 1 } lat_vla_map;
typedef enum { LAT_VLA_PARALLEL = 0, LAT_VLA_CHUNK = 1, LAT_VLA_RECURRENT = 2 } lat_vla_form;

typedef struct lat_vla {
    const lat_shape *s; /* B, T, H, K, V, pos, causal, chunk               */
    lat_vla_map map;
    int p;              /* focusing power (LAT_VLA_FOCUSED)                 */
    float floor;        /* added after the ReLU (LAT_VLA_RELU)              */
    double eps_const, eps_key;
    int dwc;            /* DWC kernel size k (0: no DWC branch)             */
    int ms;             /* aggregation kernel (0: no multi-scale heads)     */
    int has_pos;        /* k ← k + P (FLatten, SLAB)                         */
    /* inputs (NULL while only sizing the workspace) */
    const float *q, *k, *v; /* [B][T][H][K], [B][T][H][K], [B][T][H][V]     */
    const float *pos;       /* [B][T][H][K] added to k, or NULL             */
    const float *scale;     /* [H·K] raw learned scale s (FOCUSED)          */
    const float *dwc_w, *dwc_b; /* [V][k][k] (causal: [V][k]), [V]          */
    const float *ms_dw;     /* [H][2K+V][ms·ms] (causal: [H][2K+V][ms])     */
    const float *ms_pw;     /* [H][K·K + K·K + V·V] (out, in) per q, k, v  */
} lat_vla;

/* Output heads: H, or 2H with multi-scale aggregation. */
int lat_vla_heads(const lat_vla *c);
/* Floats of state per batch (0 when non-causal). */
size_t lat_vla_state_floats(const lat_vla *c);
/* Workspace bytes of a form. */
size_t lat_vla_workspace(const lat_vla *c, lat_vla_form f, int nthreads);
/* Runs a form. */
lat_status lat_vla_run(const lat_vla *c, lat_vla_form f, const lat_args *a);

/* The methods' informational Type II target (a different function, not an
 * approximation): fp64 exact softmax attention softmax(q·k/√K)v on the same
 * q, k, v with the call's causality (reference/softmax.c). Its oracle costs
 * T², so it stops at T = 2048 (larger accuracy cells report type I only). */
lat_status lat_vision_softmax_target(const lat_shape *s, const double *const *in, const double *state_in,
                                     double *out, double *state_out);
/* Analytic FLOPs of a form (FMA = 2): attention over B·Ho slices, the
 * normalization, the DWC, the focusing map and the aggregation. */
double lat_vla_flops(const lat_vla *c, lat_vla_form f);
/* Compulsory DRAM bytes: q, k, v (+ P) read, o written, state in and out. */
double lat_vla_bytes(const lat_vla *c);

#endif
