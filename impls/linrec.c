/* linrec.c — LinRec's elu-norm linear attention (Liu et al., "LinRec: Linear
 * Attention Mechanism for Long-term Sequential Recommender Systems", SIGIR
 * 2023), forward core, fp32. Spec: spec/attention.md §10.3, Appendix B,
 * Appendix C.10. Source: the public "Elu Norm Attention" layer (copied in
 * third-party repositories; the official repository was not located), and
 * the causal prefix-sum adaptation (warprec LinRecAttention).
 *
 * Features: elu (not elu + 1: values in (−1, ∞)), L2-normalized per token
 * over its K features:
 *     q̂ = elu(q)/max(‖elu(q)‖, 1e-8),   k̂ = elu(k)/max(‖elu(k)‖, 1e-8)
 * No row normalizer; scale 1/√K. Per (b, h):
 *     non-causal (the original, knob causal = 0):  O = Q̂ (S0 + K̂ᵀV) / √K
 *     causal (the adaptation, causal = 1):  S_t = S_{t−1} + k̂_t v_tᵀ,
 *                                           o_t = S_tᵀ q̂_t / √K
 * State [B][H][K][V] (S; no normalizer column): K·V floats per slice, the
 * adaptation's decode state (spec Appendix A). state_in NULL → zeros.
 *
 * Decisions on the open points:
 *   - Norm guard 1e-8 in both modes. The original layer divides by the bare
 *     norm (NaN for an all-zero row); with the guard both agree on every
 *     other row, and a zero row gives zero features instead of NaN.
 *   - elu near 0 keeps the relative accuracy of expm1: e^x − 1 in fp32
 *     loses it for small |x|, which the normalization would then amplify (a
 *     row of x ~ 1e-3 would come out wrong by 1e-4). AVX-512 (elu16): one
 *     range reduction x = n·ln2 + r and e^x − 1 = 2^n·(e^r − 1) + (2^n − 1),
 *     e^r − 1 = r + r²·p(r) (lat_vec.h's exp polynomial), r = x exactly for
 *     |x| < ln2/2; max relative error 8.3e-8 over x ∈ [−100, −1e-12] against
 *     fp64 expm1 (the previous exp + Taylor-series pair: 1.03e-7), one
 *     evaluation instead of two. Portable path: lat_vec_exp, and the Taylor
 *     series of expm1 for |x| < 0.5.
 *   - Normalization axis: per token over features for q and k (Appendix C.10:
 *     the code's key norm over dim 2 of Kᵀ is the same thing).
 *   - Default causal = 0: the paper's layer ignores the causal mask; causal = 1
 *     is the adaptation, with the recurrent decode step.
 *
 * Forms
 *   recurrent  token by token: features by SIMD loops + lat_vec_exp (a block
 *              of 32 tokens' features first, so that their reductions and
 *              square roots overlap), fused rank-1 update and readout per
 *              state row with the outputs in registers (lat_rec_step).
 *              4·K·V FLOPs/token. Also the decode step. Non-causal: all
 *              updates, then all readouts; the updates 4 tokens per pass over
 *              the state rows (the per-token update is bound by its state-row
 *              stores), the readouts of 32 tokens by one GEMM against the
 *              final state.
 *   chunk      causal: chunkwise on the GLA-family engine with no decay
 *              (impls/common/lat_chunk.c), features in the pack callback;
 *              2C(K+V) + 4KV FLOPs/token. Non-causal: the parallel form's
 *              algorithm with C-token blocks (the engine's non-causal path
 *              packs — and featurizes — every chunk twice); 4KV FLOPs/token.
 *   parallel   non-causal only (the original O = Q̂(K̂ᵀV)/√K): per slice,
 *              S = S0 + K̂ᵀV as GEMMs over token blocks (8192/K rows: a block
 *              of features stays in L1) with v read in place, then O = Q̂ S
 *              written straight into o; blocks walked block-major over a
 *              thread's slices with the q/k/v rows prefetched. 4KV FLOPs/token.
 *              Features by feat_rows (all forms): 16 rows at a time, elu and
 *              ‖elu‖² in one pass over each row (AVX-512, elu16), the 16
 *              square roots and divisions as one vector each, then the
 *              scaling in L1; the row prefetches issued one row at a time
 *              inside it. causal = 1 → unsupported.
 * Memory: state K·V floats per slice. Workspace: recurrent, 64 rows of K
 *   floats per thread + one state per slice; chunk, the engine's (causal);
 *   parallel, a block of features per thread + a partial state per item + one
 *   state per slice.
 * Parallel axis: (b, h) slices, statically split over the threads. When B·H
 *   does not keep the threads evenly busy: recurrent splits the value columns,
 *   chunk runs the engine's two-pass scheme, parallel splits each slice's
 *   tokens into segments (partial states summed in a fixed order).
 * Performance bound (D = 64): the elu-norm features (K exps, a norm and a
 *   division per row, two rows per token) are not counted as FLOPs. Parallel,
 *   B1 T8192 H8 D64, 1 thread, CPU-shared machine, A/B alternated with the
 *   previous kernel (per-row features: a scalar-loop exp pass, the series
 *   pass, then norm → sqrt → div → scale), 5 rounds: CPU time per call
 *   19.7 → 15.5 ms (≈ 1.27×; 55 → 69 GFLOP/s, ≈ 59 % of the 117 GFLOP/s FMA
 *   peak), wall medians 28.9 → 24.8 ms (minima 27.0 → 19.4). What is left
 *   (perf): the two GEMMs ≈ 64 % of the kernel's time at ≈ 108 GFLOP/s
 *   (OpenBLAS small kernels, near the peak), the features ≈ 35 % (was
 *   ≈ 43 %), most of it waiting on the q/k row loads and their prefetches
 *   (rows of a head H·K floats apart, DRAM shared with the other job), not
 *   on the exp.
 * Numerics: features have norm ≤ 1 and mixed signs; the output is a signed
 *   sum of O(t) terms without a normalizer, so its fp32 error grows like the
 *   state's. Measured at T = 65536 with the harsh rows: recurrent 3.5e-6
 *   causal, 2.2e-6 non-causal (token-by-token fp32 sums), chunk 5e-7 / 6e-7,
 *   parallel 5e-7.
 * Defaults: causal = 0 (the paper), chunk C = 64 (fla).
 * Run: build/latbench run --method linrec --form parallel --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench run --method linrec --form chunk --causal 1 --B 1 --T 4096 --H 8 --D 64
 *      build/latbench check --methods linrec
 */
#include "common/lat_chunk.h"

#define LINREC_GUARD 1e-8f
#define NB 4          /* tokens per group of the recurrent form's non-causal keys   */
#define TOKEN_BLOCK 32 /* tokens per item visit (and per non-causal readout GEMM)  */

// ---------------------------------------------------------------------------
// shapes and models
// ---------------------------------------------------------------------------

static double n_slices(const lat_shape *s) { return (double)s->B * s->H; }

static double flops_recurrent(const lat_shape *s) { return n_slices(s) * s->T * 4.0 * s->K * s->V; }

static double flops_chunk(const lat_shape *s)
{
    double C = s->chunk < s->T ? s->chunk : s->T;
    double intra = s->causal ? 2.0 * C * (s->K + s->V) : 0.0;
    return n_slices(s) * s->T * (intra + 4.0 * s->K * s->V);
}

static double flops_parallel(const lat_shape *s) { return flops_recurrent(s); }

static double state_bytes(const lat_shape *s) { return 4.0 * n_slices(s) * s->K * s->V; }

/* q, k, v read, o written, state read and written. */
static double bytes(const lat_shape *s)
{
    double tok = (double)s->B * s->T * s->H;
    return 4.0 * tok * (2.0 * s->K + 2.0 * s->V) + 2.0 * state_bytes(s);
}

static size_t lines(size_t n) { return lat_align64(n * sizeof(float)) / sizeof(float); }

// ---------------------------------------------------------------------------
// features
// ---------------------------------------------------------------------------

#define PREFETCH_AHEAD 16 /* rows ahead (48 measured no better in feat_rows) */

/* One cache line: a volatile asm on x86 — GCC 12 deleted the prefetch-only
 * loops (__builtin_prefetch has no side effect) inside feat_rows, silently
 * dropping its row prefetches (seen in the disassembly). */
static inline void prefetch_line(const float *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p);
#endif
}

static inline void prefetch_floats(const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        prefetch_line(x + i);
}

/* f = scale · elu(x)/max(‖elu(x)‖, 1e-8); elu(x) = x (x > 0), e^x − 1 (only
 * x ≤ 0 is exponentiated) with relative accuracy near 0: AVX-512, elu16; the
 * portable path, lat_vec_exp and the expm1 series for −0.5 < x ≤ 0. */
#if defined(__AVX512F__)
/* elu of 16 lanes. x ≤ 0 by one range reduction, x = n·ln2 + r (|r| ≤ ln2/2,
 * lat_vec.h's Cody–Waite split) and e^x − 1 = 2^n·q + (2^n − 1) with
 * q = e^r − 1 = r + r²·p(r), p lat_vec.h's (cephes) exp polynomial: for
 * |x| < ln2/2, n = 0 and r = x exactly, so the result keeps its relative
 * accuracy near 0 (the expm1 series' job in the portable path) without a
 * second evaluation; one FMA rounds the combination. */
static inline __m512 elu16(__m512 x)
{
    const __m512 xn = _mm512_max_ps(_mm512_min_ps(x, _mm512_setzero_ps()), _mm512_set1_ps(-87.0f));
    __m512 n, r;
    const __m512 pr = lat_exp16_poly(xn, &n, &r);
    const __m512 q = _mm512_fmadd_ps(pr, r, r); /* e^r − 1 */
    const __m512 t = _mm512_scalef_ps(_mm512_set1_ps(1.0f), n); /* 2^n, n ≤ 0 */
    const __m512 e = _mm512_fmadd_ps(q, t, _mm512_sub_ps(t, _mm512_set1_ps(1.0f)));
    const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mask_mov_ps(e, pos, x);
}

static inline __mmask16 lanes16(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }
#endif

/* Rows of the caller's stream to prefetch while row r is built: x + (r +
 * PREFETCH_AHEAD)·ldx for r < nx (the input rows ahead) and, when v is given,
 * v + r·ldv (V floats: the value rows the next GEMM reads). One row's lines
 * at a time (a burst of a whole group's lines before it measured slower). */
typedef struct feat_pf {
    int nx, V;
    const float *v;
    size_t ldv;
} feat_pf;

static inline void feat_prefetch(feat_pf pf, const float *x, size_t ldx, int r, int K)
{
    if (r < pf.nx)
        prefetch_floats(x + (size_t)(r + PREFETCH_AHEAD) * ldx, K);
    if (pf.v)
        prefetch_floats(pf.v + (size_t)r * pf.ldv, pf.V);
}

/* Rows r < n: f + r·ldf = the features of x + r·ldx, prefetching as pf says.
 * AVX-512: rows in groups of 16, elu and ‖elu‖² per row, then the 16 square
 * roots and divisions as one vector each (no sqrt → div → scale latency chain
 * per row), then the scaling of the group's rows (in L1). */
static void feat_rows(float *restrict f, size_t ldf, const float *restrict x, size_t ldx, int n, int K,
                      float scale, feat_pf pf)
{
#if defined(__AVX512F__)
    for (int r0 = 0; r0 < n; r0 += 16) {
        const int m = n - r0 < 16 ? n - r0 : 16;
        float ss[16] = {0}, inv[16];
        for (int r = 0; r < m; r++) {
            const float *xr = x + (size_t)(r0 + r) * ldx;
            float *fr = f + (size_t)(r0 + r) * ldf;
            feat_prefetch(pf, x, ldx, r0 + r, K);
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            for (int i = 0; i < K; i += 32) {
                const __mmask16 m0 = lanes16(K - i);
                const __m512 e0 = elu16(_mm512_maskz_loadu_ps(m0, xr + i));
                _mm512_mask_storeu_ps(fr + i, m0, e0);
                a0 = _mm512_fmadd_ps(e0, e0, a0);
                if (i + 16 < K) {
                    const __mmask16 m1 = lanes16(K - i - 16);
                    const __m512 e1 = elu16(_mm512_maskz_loadu_ps(m1, xr + i + 16));
                    _mm512_mask_storeu_ps(fr + i + 16, m1, e1);
                    a1 = _mm512_fmadd_ps(e1, e1, a1);
                }
            }
            ss[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        }
        /* scale / max(‖·‖, 1e-8) (a NaN norm takes the guard, as the scalar test) */
        const __m512 nv = _mm512_max_ps(_mm512_sqrt_ps(_mm512_loadu_ps(ss)), _mm512_set1_ps(LINREC_GUARD));
        _mm512_storeu_ps(inv, _mm512_div_ps(_mm512_set1_ps(scale), nv));
        for (int r = 0; r < m; r++) {
            float *fr = f + (size_t)(r0 + r) * ldf;
            const __m512 sv = _mm512_set1_ps(inv[r]);
            for (int i = 0; i < K; i += 16) {
                const __mmask16 mk = lanes16(K - i);
                _mm512_mask_storeu_ps(fr + i, mk, _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(mk, fr + i)));
            }
        }
    }
#else
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *fr = f + (size_t)r * ldf;
        feat_prefetch(pf, x, ldx, r, K);
        for (int i = 0; i < K; i++)
            fr[i] = xr[i] < 0.0f ? xr[i] : 0.0f;
        lat_vec_exp(fr, fr, (size_t)K);
        for (int i = 0; i < K; i++) {
            const float u = xr[i];
            const float p =
                u * (1.0f + u * (1.0f / 2 + u * (1.0f / 6 + u * (1.0f / 24 + u * (1.0f / 120 +
                     u * (1.0f / 720 + u * (1.0f / 5040 + u * (1.0f / 40320))))))));
            fr[i] = u > 0.0f ? u : (u > -0.5f ? p : fr[i] - 1.0f);
        }
        float nrm = sqrtf(lat_vec_dot(fr, fr, (size_t)K));
        nrm = nrm > LINREC_GUARD ? nrm : LINREC_GUARD;
        lat_vec_scale(fr, scale / nrm, (size_t)K);
    }
#endif
}

/* One row. */
static void feat(float *restrict f, const float *restrict x, int K, float scale)
{
    feat_rows(f, 0, x, 0, 1, K, scale, (feat_pf){0, 0, NULL, 0});
}

static float qscale(const lat_shape *s) { return (float)(1.0 / sqrt((double)s->K)); }

// ---------------------------------------------------------------------------
// recurrent form
// ---------------------------------------------------------------------------

typedef struct rec_plan {
    int nt, nvb, items; /* threads, value-column blocks per slice, BH·nvb */
    int wpad;           /* row stride of a private column block (nvb > 1) */
    size_t slice;       /* one thread's scratch: 2·TOKEN_BLOCK feature rows   */
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    int BH = s->B * s->H;
    p.nt = lat_useful_threads((double)BH * s->T * s->K * s->V, nthreads);
    p.nvb = lat_rec_col_blocks(BH, s->V, p.nt);
    p.items = BH * p.nvb;
    p.wpad = 16 * (((s->V + 15) / 16 + p.nvb - 1) / p.nvb);
    p.slice = 2 * TOKEN_BLOCK * lat_align64(sizeof(float) * (size_t)s->K);
    return p;
}

/* Layout (floats): [thread slices][scratch state per slice, used when
 * state_out is NULL][private column blocks, nvb > 1 only]. */
static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    size_t K = (size_t)s->K, BH = (size_t)s->B * (size_t)s->H, items = (size_t)p.items;
    size_t priv = p.nvb > 1 ? items * lines(K * (size_t)p.wpad) : 0;
    return p.slice * (size_t)p.nt + sizeof(float) * (BH * lines(K * (size_t)s->V) + priv);
}

/* Value columns [j0, j1) of slice (b, h); S with row stride lds (the slice's
 * state, or a private copy of the columns when the slice is split). */
typedef struct rec_item {
    int b, h, j0, j1;
    float *S;
    size_t lds;
} rec_item;

static rec_item rec_item_at(const lat_args *a, const rec_plan *p, int it, float *slots, float *priv)
{
    const lat_shape *s = a->shape;
    const size_t KV = (size_t)s->K * (size_t)s->V;
    const int bh = it / p->nvb;
    rec_item r = {bh / s->H, bh % s->H, 0, 0, NULL, (size_t)s->V};
    lat_rec_col_range(s->V, p->nvb, it % p->nvb, &r.j0, &r.j1);
    if (p->nvb > 1) {
        r.S = priv + (size_t)it * lines((size_t)s->K * (size_t)p->wpad);
        r.lds = (size_t)p->wpad;
    } else {
        r.S = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
    }
    return r;
}

/* Causal tokens [t0, t1): fused S += k̂ vᵀ and o = Sᵀ q̂ (q̂ carries 1/√K). */
static void causal_tokens(const lat_args *a, const rec_item *r, int t0, int t1, float *restrict A,
                          size_t Kl)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, w = r->j1 - r->j0, n = t1 - t0;
    const float *q = a->in[0], *k = a->in[1], *v = a->in[2], sc = qscale(s);
    /* the block's features first (independent rows: their reductions and
     * square roots overlap), k̂ in rows [0, n), q̂ in rows [n, 2n) */
    for (int t = t0; t < t1; t++) {
        const size_t ik = lat_idx_bthd(s, r->b, t, r->h, K);
        if (t + TOKEN_BLOCK < s->T) { /* this item's next block */
            const size_t pk = lat_idx_bthd(s, r->b, t + TOKEN_BLOCK, r->h, K);
            const size_t pv = lat_idx_bthd(s, r->b, t + TOKEN_BLOCK, r->h, V) + (size_t)r->j0;
            prefetch_floats(q + pk, K), prefetch_floats(k + pk, K), prefetch_floats(v + pv, w);
        }
        feat(A + (size_t)(t - t0) * Kl, k + ik, K, 1.0f);
        feat(A + (size_t)(n + t - t0) * Kl, q + ik, K, sc);
    }
    for (int t = t0; t < t1; t++) {
        const size_t iv = lat_idx_bthd(s, r->b, t, r->h, V);
        lat_rec_step(K, w, r->S, r->lds, NULL, A + (size_t)(t - t0) * Kl, v + iv + r->j0,
                     A + (size_t)(n + t - t0) * Kl, a->out + iv + r->j0);
    }
}

/* ---- non-causal passes: keys are independent, so tokens go in groups of
 * NB — one load/store of each state row per group instead of per token (the
 * per-token rank-1 update is bound by its state-row stores). */
/* S[i][0..w) += Σ_u A[u][i]·x_u[0..w) for u < NB (rows of A ld floats apart). */
static void update_group(float *restrict S, size_t lds, int F, int w, const float *restrict A, size_t ld,
                         const float *restrict x0, const float *restrict x1, const float *restrict x2,
                         const float *restrict x3)
{
    for (int i = 0; i < F; i++) {
        const float c0 = A[i], c1 = A[ld + (size_t)i], c2 = A[2 * ld + (size_t)i], c3 = A[3 * ld + (size_t)i];
        float *restrict Si = S + (size_t)i * lds;
        for (int j = 0; j < w; j++)
            Si[j] += c0 * x0[j] + c1 * x1[j] + c2 * x2[j] + c3 * x3[j];
    }
}

/* Non-causal, pass 1 over tokens [t0, t1): S += k̂ vᵀ, NB tokens at a time
 * (A: NB feature rows, Kl floats apart). */
static void noncausal_keys(const lat_args *a, const rec_item *r, int t0, int t1, float *restrict A, size_t Kl)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, w = r->j1 - r->j0;
    for (int g = t0; g < t1; g += NB) {
        const float *x[NB];
        for (int u = 0; u < NB; u++) {
            const int t = g + u;
            if (t >= t1) { /* a short last group: zero coefficients */
                memset(A + (size_t)u * Kl, 0, sizeof(float) * (size_t)K);
                x[u] = x[0];
                continue;
            }
            if (t + PREFETCH_AHEAD < s->T) {
                prefetch_floats(a->in[1] + lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, K), K);
                prefetch_floats(a->in[2] + lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, V) + r->j0, w);
            }
            feat(A + (size_t)u * Kl, a->in[1] + lat_idx_bthd(s, r->b, t, r->h, K), K, 1.0f);
            x[u] = a->in[2] + lat_idx_bthd(s, r->b, t, r->h, V) + r->j0;
        }
        update_group(r->S, r->lds, K, w, A, Kl, x[0], x[1], x[2], x[3]);
    }
}

/* Non-causal, pass 2 over tokens [t0, t1) (≤ TOKEN_BLOCK): the query
 * features into A, then O = A S for the whole group by one GEMM written in
 * place (the readouts share the final S; a per-token GEMV would reload S). */
static void noncausal_queries(const lat_args *a, const rec_item *r, int t0, int t1, float *restrict A, size_t Kl)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, w = r->j1 - r->j0;
    const float sc = qscale(s);
    for (int t = t0; t < t1; t++) {
        if (t + PREFETCH_AHEAD < s->T)
            prefetch_floats(a->in[0] + lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, K), K);
        feat(A + (size_t)(t - t0) * Kl, a->in[0] + lat_idx_bthd(s, r->b, t, r->h, K), K, sc);
    }
    lat_sgemm('N', 'N', t1 - t0, w, K, 1.0f, A, (int)Kl, r->S, (int)r->lds, 0.0f,
              a->out + lat_idx_bthd(s, r->b, t0, r->h, V) + r->j0, s->H * V);
}

static lat_status lr_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const size_t KV = (size_t)K * (size_t)V;
    float *slots = (float *)((char *)a->work + p.slice * (size_t)p.nt);
    float *priv = slots + (size_t)s->B * (size_t)s->H * lines(KV);

    /* one token: the non-causal readout sees the same state as the causal
     * one (S after the token), so decode steps take the fused path */
    const int causal = s->causal || T == 1;
#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        float *fk = lat_work_slice(a, p.slice, tid);
        const size_t Kl = lat_align64(sizeof(float) * (size_t)K) / sizeof(float);
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        /* every item takes its columns of S0 first (state_in may alias state_out) */
        for (long it = lo; it < hi; it++) {
            rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
            const float *S0 = a->state_in ? a->state_in + (size_t)(it / p.nvb) * KV : NULL;
            if (!S0)
                lat_copy_block(r.S, r.lds, NULL, 0, K, r.j1 - r.j0);
            else if (S0 != r.S)
                lat_copy_block(r.S, r.lds, S0 + r.j0, (size_t)V, K, r.j1 - r.j0);
        }
#pragma omp barrier
        for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
            const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
                if (causal)
                    causal_tokens(a, &r, t0, t1, fk, Kl);
                else
                    noncausal_keys(a, &r, t0, t1, fk, Kl);
            }
        }
        if (!causal)
            for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
                const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
                for (long it = lo; it < hi; it++) {
                    rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
                    noncausal_queries(a, &r, t0, t1, fk, Kl);
                }
            }
        if (p.nvb > 1 && a->state_out) /* private column blocks back */
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
                lat_copy_block(a->state_out + (size_t)(it / p.nvb) * KV + r.j0, (size_t)V, r.S, r.lds, K,
                               r.j1 - r.j0);
            }
    }
    return LAT_OK;
}

// ---------------------------------------------------------------------------
// chunk form (GLA-family engine, no decay)
// ---------------------------------------------------------------------------

typedef struct chunk_ctx {
    const lat_shape *s;
    const float *q, *k, *v;
    float *out;
} chunk_ctx;

/* Q = q̂/√K, Kc = k̂, Vc = v. */
static void lr_pack(const void *vctx, int bh, int t0, int n, float *restrict Q, float *restrict Kc,
                    float *restrict Vc, float *restrict G)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int K = s->K, V = s->V, b = bh / s->H, h = bh % s->H;
    const float sc = qscale(s);
    (void)G;
    for (int r = 0; r < n; r++) {
        const size_t ik = lat_idx_bthd(s, b, t0 + r, h, K), iv = lat_idx_bthd(s, b, t0 + r, h, V);
        feat(Q + (size_t)r * (size_t)K, x->q + ik, K, sc);
        feat(Kc + (size_t)r * (size_t)K, x->k + ik, K, 1.0f);
        memcpy(Vc + (size_t)r * (size_t)V, x->v + iv, sizeof(float) * (size_t)V);
    }
}

static void lr_emit(const void *vctx, int bh, int t0, int n, const float *restrict O)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int V = s->V, b = bh / s->H, h = bh % s->H;
    for (int r = 0; r < n; r++)
        memcpy(x->out + lat_idx_bthd(s, b, t0 + r, h, V), O + (size_t)r * (size_t)V,
               sizeof(float) * (size_t)V);
}

static lat_chunk_problem chunk_problem(const lat_shape *s, const lat_args *a, chunk_ctx *x)
{
    lat_chunk_problem p;
    memset(&p, 0, sizeof p);
    p.BH = s->B * s->H;
    p.T = s->T;
    p.K = s->K;
    p.Vx = s->V;
    p.C = s->chunk;
    p.c = s->chunk;
    p.decay = LAT_DECAY_NONE;
    p.causal = s->causal;
    p.pack = lr_pack;
    p.emit = lr_emit;
    p.ctx = x;
    if (a) {
        p.state_in = a->state_in;
        p.state_out = a->state_out;
    }
    return p;
}

static size_t ws_blocks(const lat_shape *s, int nthreads, int blk);
static lat_status noncausal_blocks(const lat_args *a, int blk);

/* causal: the engine; non-causal: the parallel form's blocks with blk = C
 * (the engine's non-causal path would pack — and featurize — every chunk
 * twice, once per pass). */
static size_t ws_chunk(const lat_shape *s, int nthreads)
{
    if (!s->causal)
        return ws_blocks(s, nthreads, s->chunk);
    lat_chunk_problem p = chunk_problem(s, NULL, NULL);
    return lat_chunk_workspace(&p, nthreads);
}

static lat_status lr_chunk(const lat_args *a)
{
    const lat_shape *s = a->shape;
    if (!s->causal)
        return noncausal_blocks(a, s->chunk);
    chunk_ctx x = {s, a->in[0], a->in[1], a->in[2], a->out};
    lat_chunk_problem p = chunk_problem(s, a, &x);
    return lat_chunk_run(&p, a->work, a->work_bytes, a->nthreads);
}

// ---------------------------------------------------------------------------
// parallel form (non-causal): S = S0 + K̂ᵀV, O = Q̂ S / √K
// ---------------------------------------------------------------------------

typedef struct par_plan {
    int nt, nseg, items; /* threads, token segments per slice, BH·nseg */
    int blk;             /* tokens per GEMM block                        */
    size_t slice;        /* one thread's scratch: a blk × K block        */
} par_plan;

static int gcd_int(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static par_plan plan_parallel(const lat_shape *s, int nthreads, int blk)
{
    par_plan p;
    const int BH = s->B * s->H;
    p.nt = lat_useful_threads((double)BH * s->T * s->K * s->V, nthreads);
    p.nseg = (p.nt <= 1 || BH % p.nt == 0 || BH >= 4 * p.nt) ? 1 : p.nt / gcd_int(BH, p.nt);
    if (p.nseg > s->T)
        p.nseg = s->T;
    p.items = BH * p.nseg;
    p.blk = blk < s->T ? blk : s->T;
    p.slice = lat_align64(sizeof(float) * (size_t)p.blk * (size_t)s->K);
    return p;
}

/* [thread slices][partial state per item][state per slice] */
static size_t ws_blocks(const lat_shape *s, int nthreads, int blk)
{
    par_plan p = plan_parallel(s, nthreads, blk);
    size_t KV = (size_t)s->K * (size_t)s->V, BH = (size_t)s->B * (size_t)s->H;
    return p.slice * (size_t)p.nt + sizeof(float) * ((size_t)p.items * lines(KV) + BH * lines(KV));
}

/* Tokens [r0, r0 + n) of slice (b, h): features of input x (q or k) into Phi,
 * prefetching the x rows PREFETCH_AHEAD tokens ahead and, when v is given,
 * the v rows of the block (read next by the GEMM): rows of one head are H·K
 * floats apart, a stride the hardware prefetchers do not follow. */
static void block_features(const lat_shape *s, const float *x, const float *v, int b, int h, long r0,
                           int n, long t1, float scale, float *restrict Phi)
{
    const int K = s->K;
    const long ahead = t1 - r0 - PREFETCH_AHEAD; /* rows with a row PREFETCH_AHEAD further in [.., t1) */
    const feat_pf pf = {(int)(ahead < 0 ? 0 : (ahead < n ? ahead : n)), s->V,
                        v ? v + lat_idx_bthd(s, b, (int)r0, h, s->V) : NULL, (size_t)s->H * (size_t)s->V};
    feat_rows(Phi, (size_t)K, x + lat_idx_bthd(s, b, (int)r0, h, K), (size_t)s->H * (size_t)K, n, K, scale, pf);
}

/* The non-causal computation in token blocks of blk (parallel: par_block; chunk
 * with causal = 0: the chunk length C). */
static lat_status noncausal_blocks(const lat_args *a, int blk)
{
    const lat_shape *s = a->shape;
    if (a->work_bytes < ws_blocks(s, a->nthreads, blk))
        return LAT_ENOMEM;
    const par_plan p = plan_parallel(s, a->nthreads, blk);
    const int PB = p.blk;
    const int K = s->K, V = s->V, T = s->T, BH = s->B * s->H, HV = s->H * V;
    const size_t KV = (size_t)K * (size_t)V;
    const float sc = qscale(s);
    float *part = (float *)((char *)a->work + p.slice * (size_t)p.nt);
    float *slots = part + (size_t)p.items * lines(KV);
    const long seg = ((long)T + p.nseg - 1) / p.nseg; /* longest segment (lat_split) */
    const int nblk = (int)((seg + PB - 1) / PB);

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        float *Phi = lat_work_slice(a, p.slice, tid);
        long lo, hi; /* this thread's items, walked block-major: block kb of
                      * every item, then kb + 1 (adjacent heads read together) */
        lat_split(p.items, tid, p.nt, &lo, &hi);
        /* pass 1: partial K̂ᵀV of every (slice, token segment) */
        for (long it = lo; it < hi; it++)
            memset(part + (size_t)it * lines(KV), 0, sizeof(float) * KV);
        for (int kb = 0; kb < nblk; kb++)
            for (long it = lo; it < hi; it++) {
                const int bh = (int)(it / p.nseg), b = bh / s->H, h = bh % s->H;
                long t0, t1;
                lat_split(T, (int)(it % p.nseg), p.nseg, &t0, &t1);
                const long r0 = t0 + (long)kb * PB;
                if (r0 >= t1)
                    continue;
                const int n = (int)(t1 - r0 < PB ? t1 - r0 : PB);
                block_features(s, a->in[1], a->in[2], b, h, r0, n, t1, 1.0f, Phi);
                lat_sgemm('T', 'N', K, V, n, 1.0f, Phi, K, a->in[2] + lat_idx_bthd(s, b, (int)r0, h, V), HV,
                          1.0f, part + (size_t)it * lines(KV), V);
            }
#pragma omp barrier
        /* pass 2: R = S0 + Σ_seg P (fixed order) */
#pragma omp for schedule(static)
        for (int bh = 0; bh < BH; bh++) {
            float *R = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
            const float *S0 = a->state_in ? a->state_in + (size_t)bh * KV : NULL;
            for (size_t e = 0; e < KV; e++) {
                float acc = S0 ? S0[e] : 0.0f;
                for (int sg = 0; sg < p.nseg; sg++)
                    acc += part[((size_t)bh * (size_t)p.nseg + (size_t)sg) * lines(KV) + e];
                R[e] = acc;
            }
        }
        /* pass 3: O = (Q̂/√K) R, written in place, block-major */
        for (int kb = 0; kb < nblk; kb++)
            for (long it = lo; it < hi; it++) {
                const int bh = (int)(it / p.nseg), b = bh / s->H, h = bh % s->H;
                const float *R = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
                long t0, t1;
                lat_split(T, (int)(it % p.nseg), p.nseg, &t0, &t1);
                const long r0 = t0 + (long)kb * PB;
                if (r0 >= t1)
                    continue;
                const int n = (int)(t1 - r0 < PB ? t1 - r0 : PB);
                block_features(s, a->in[0], NULL, b, h, r0, n, t1, sc, Phi);
                lat_sgemm('N', 'N', n, V, K, 1.0f, Phi, K, R, V, 0.0f,
                          a->out + lat_idx_bthd(s, b, (int)r0, h, V), HV);
            }
    }
    return LAT_OK;
}

/* Token block of the parallel form: a block of features stays in L1 (32 KB;
 * measured at D = 64: 64-row blocks of mla's 2K features 10% faster than 256,
 * 128-row blocks of linrec's K features 5% faster than 256). */
static int par_block(const lat_shape *s)
{
    const int b = 8192 / s->K;
    return b < 32 ? 32 : (b > 256 ? 256 : b);
}

static size_t ws_parallel(const lat_shape *s, int nthreads) { return ws_blocks(s, nthreads, par_block(s)); }

static lat_status lr_parallel(const lat_args *a)
{
    if (a->shape->causal)
        return LAT_UNSUPPORTED; /* the parallel form is the non-causal original */
    return noncausal_blocks(a, par_block(a->shape));
}

// ---------------------------------------------------------------------------
// descriptor
// ---------------------------------------------------------------------------

/* Harsh q/k rows: 5% exact zeros (the 1e-8 guard), 5% of scale 1e-10 (norm
 * below the guard), 10% of scale 1e-3 (elu of small negatives: the expm1
 * series), the rest N(0,1). Row by row, so it does not depend on the
 * position (the harness draws in blocks of whole rows). */
static void gen_qk(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const size_t K = (size_t)s->K;
    for (size_t r0 = 0; r0 + K <= count; r0 += K) {
        double scale = 1.0;
        if (harsh) {
            const double u = lat_rng_uniform(rng);
            scale = u < 0.05 ? 0.0 : (u < 0.10 ? 1e-10 : (u < 0.20 ? 1e-3 : 1.0));
        }
        for (size_t i = 0; i < K; i++)
            x[r0 + i] = scale * lat_rng_normal(rng);
    }
}

static const lat_input lr_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_CUSTOM, .custom = gen_qk,
     .doc = "queries [B][T][H][K], N(0,1); harsh rows: 5% zero, 5% ·1e-10, 10% ·1e-3 (norm guard, "
            "expm1 near 0)",
     .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_CUSTOM, .custom = gen_qk,
     .doc = "keys [B][T][H][K], N(0,1); harsh as q", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
};

static const lat_knob lr_knobs[] = {
    LAT_KNOB(causal, 0, 0, 1, "0 non-causal (the paper's layer), 1 causal prefix-sum adaptation"),
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the chunk form (fla: 64)"),
};

static const lat_form lr_forms[] = {
    {"recurrent", lr_recurrent, ws_recurrent, flops_recurrent,
     "token by token, fused rank-1 update and readout, SIMD over V (the adaptation's RNN view)"},
    {"chunk", lr_chunk, ws_chunk, flops_chunk,
     "causal: chunkwise on the GLA-family engine (no decay); non-causal: C-token blocks"},
    {"parallel", lr_parallel, ws_parallel, flops_parallel,
     "non-causal only: K^T V then Q (K^T V) as L1-sized token-block GEMMs, in place (the paper's order)"},
};

const lat_method lat_method_linrec = {
    .name = "linrec",
    .family = "linear",
    .paper = "Liu et al., LinRec: Linear Attention Mechanism for Long-term Sequential Recommender "
             "Systems, SIGIR 2023",
    .summary = "elu features L2-normalized per token, O = Q(K^T V)/sqrt(D), no row normalizer",
    .dim_map = "K = V = D",
    .inputs = lr_inputs,
    .n_inputs = (int)(sizeof lr_inputs / sizeof lr_inputs[0]),
    .knobs = lr_knobs,
    .n_knobs = (int)(sizeof lr_knobs / sizeof lr_knobs[0]),
    .forms = lr_forms,
    .n_forms = (int)(sizeof lr_forms / sizeof lr_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = lat_dims_bhkv,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = NULL,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_linrec,
    .reference_alt = ref_linrec_parallel,
    .tol_out = 1e-5,
    .tol_state = 1e-4,
    .approximates_softmax = 0,
    .tol_note = "state tolerance 1e-4: the state is an O(t)-growing prefix sum accumulated token by "
                "token in fp32 by the recurrent form",
};
