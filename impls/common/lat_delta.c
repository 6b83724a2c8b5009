/* lat_delta.c — the delta-rule engine (see lat_delta.h): the fused recurrent
 * step and the chunkwise UT-transform form of spec/recurrent.md §3, shared by
 * DeltaNet (impls/deltanet.c) and Gated DeltaNet (impls/gated_deltanet.c).
 *
 * Recurrent form. One pass over the state per token: with p = S_{t−1}ᵀ k̂_t
 * and r = S_{t−1}ᵀ q̂_t known from the previous pass,
 *     α = e^{a_t};   u = β_t (v_t − α p);   o_t = α r + (k̂_t·q̂_t) u
 * (S_tᵀ q̂_t = α S_{t−1}ᵀ q̂_t + k̂_t u_tᵀ q̂_t), then the pass over the rows
 *     S[i] ← α S[i] + k̂_t[i] u,   p ← Σ_i k̂_{t+1}[i] S[i],   r ← Σ_i q̂_{t+1}[i] S[i]
 * updates the state and already reads it out for token t+1. 6KV FLOPs per
 * token (7KV gated: the α scaling), one read and one write of the state,
 * instead of the two or three passes of the literal form. The first token
 * of a call reads S0 out once (lat_rec_update_read2; skipped for the empty
 * state); the last one only updates.
 * Value columns are independent (u_j, o_j depend on column j only), so the
 * kernel (lat_rec_delta_tokens) takes 32 columns at a time through a block
 * of 32 tokens: the K×32 state block (8 KiB at K = 64) stays in L1, p, r, u
 * stay in registers between tokens, and the serial dependency per token is
 * only u ← p. Per block and item, q̂, k̂ (+ the next block's first token),
 * k̂·q̂, β, α = e^{a} (lat_vec_exp) and the item's v columns are prepared in
 * one burst, and the next block's rows prefetched (they are H·K floats
 * apart, a stride the hardware prefetchers miss).
 * Chunk form (UT transform, exact), per chunk of n ≤ C rows with the state S
 * at its start, b = chunk-local inclusive cumsum of a (fp64; b ≡ 0 ungated),
 * Γ_rc = e^{b_r − b_c} (r ≥ c):
 *     G  = [K̂; Q̂] K̂ᵀ                                   (one 2n×n×K GEMM)
 *     L  = tril(Diag(β)(K̂K̂ᵀ ⊙ Γ), −1),  A = (Q̂K̂ᵀ ⊙ Γ) ∘ tril(1)
 *     P  = [K̂ ⊙ e^{b}; Q̂ ⊙ e^{b}] S                     (one 2n×V×K GEMM)
 *     Δ  = (I + L)⁻¹ Diag(β)(V − P_top)      forward substitution, in place
 *     O  = P_bottom + A Δ                                (GEMM)
 *     S ← e^{b_n} S + (K̂ ⊙ e^{b_n − b})ᵀ Δ                (GEMM, β = e^{b_n})
 * This is the paper's W = T K̃, U = T V, Δ = U − W S with T = (I + L)⁻¹Diag(β)
 * applied to the right-hand side R = V − K̃ S instead of being formed (fla
 * forms T with solve_tril, then W and U by GEMM): the same math, W never
 * exists, and the solve costs C·V FLOPs per token instead of C²/3 + 2C(K+V).
 * Executed FLOPs per token: 4CK (G) + 4KV (P) + CV (solve) + 2CV (A Δ) +
 * 2KV (state) = 4CK + 3CV + 6KV with dense GEMMs. Every exponent is ≤ 0
 * (b is non-increasing; Γ only for r ≥ c), so harsh decays only underflow.
 * The solve needs no guard: I + L is unit lower-triangular (no division),
 * and its rows are the recurrent u_t, bounded because with ‖k̂‖ ≤ 1 and
 * β ∈ (0, 1] every step (I − β k̂ k̂ᵀ) is a contraction (β ≈ 1 with unit,
 * near-parallel keys is the harsh check case).
 *
 * Threads (both forms): items = (slice, block of value columns). One item per
 * slice when B·H keeps the threads evenly busy; otherwise each slice's value
 * columns are split (lat_rec_col_blocks) — exact, since columns are
 * independent; the chunk form then recomputes G per column block (4CK of the
 * 4CK + 3CV + 6KV per token). Tokens (chunks) are walked in blocks over all
 * items of a thread so that a time step's rows, H·K floats apart, are read
 * together.
 *
 * ISA paths: AVX-512 (all kernels, masked tails), AVX2+FMA (the token kernel
 * on 16-column blocks; tails, the readout pass and the solve through the
 * lat_vec helpers), portable C. All three pass `latbench check`.
 */
#include "lat_delta.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define DN_L2_EPS 1e-6f

#define FL(n) lat_align64((size_t)(n) * sizeof(float))
#define DB(n) lat_align64((size_t)(n) * sizeof(double))

/* ------------------------------------------------------------------------- */
/* Kernels                                                                   */
/* ------------------------------------------------------------------------- */

#if defined(__AVX512F__)
/* Columns [0, 16·NV), NV ≤ 2, of S (the last vector masked by mlast). UPD:
 * 0 none, 1 S += k u, 2 S = α S + k u; RD: readouts into ox, oy. One function
 * per (NV, UPD, RD), and named registers u0, u1, x0, x1, y0, y1 instead of
 * arrays: gcc 12 kept arrays in registers but also stored them to the stack
 * on every row (1.3× slower). */
#define DN_MASK(c, NV, ml) ((c) == (NV) - 1 ? (ml) : (__mmask16)0xFFFF)
#define PASS_COL(c)                                                                            \
    if (NV > c) {                                                                              \
        const __mmask16 m = DN_MASK(c, NV, mlast);                                             \
        __m512 sv = _mm512_maskz_loadu_ps(m, Si + 16 * c);                                     \
        if (UPD) {                                                                             \
            sv = _mm512_fmadd_ps(ki, u##c, UPD == 2 ? _mm512_mul_ps(va, sv) : sv);             \
            _mm512_mask_storeu_ps(Si + 16 * c, m, sv);                                         \
        }                                                                                      \
        if (RD) {                                                                              \
            x##c = _mm512_fmadd_ps(xi, sv, x##c);                                              \
            y##c = _mm512_fmadd_ps(yi, sv, y##c);                                              \
        }                                                                                      \
    }
#define PASS_INIT(c)                                                                           \
    if (UPD && NV > c)                                                                         \
        u##c = _mm512_maskz_loadu_ps(DN_MASK(c, NV, mlast), u + 16 * c);
#define PASS_OUT(c)                                                                            \
    if (RD && NV > c) {                                                                        \
        _mm512_mask_storeu_ps(ox + 16 * c, DN_MASK(c, NV, mlast), x##c);                       \
        _mm512_mask_storeu_ps(oy + 16 * c, DN_MASK(c, NV, mlast), y##c);                       \
    }
#define PASS_FN(NV_, UPD_, RD_)                                                                 \
    static void pass512_##NV_##_##UPD_##_##RD_(int K, float *restrict S, size_t lds,            \
                                               float alpha, const float *restrict k,            \
                                               const float *restrict u,                         \
                                               const float *restrict x, float *restrict ox,     \
                                               const float *restrict y, float *restrict oy,     \
                                               __mmask16 mlast)                                 \
    {                                                                                           \
        enum { NV = NV_, UPD = UPD_, RD = RD_ };                                                \
        const __m512 z = _mm512_setzero_ps(), va = _mm512_set1_ps(alpha);                       \
        __m512 u0 = z, u1 = z, x0 = z, x1 = z, y0 = z, y1 = z;                                  \
        (void)va, (void)k, (void)u, (void)x, (void)ox, (void)y, (void)oy;                       \
        PASS_INIT(0) PASS_INIT(1)                                                               \
        for (int i = 0; i < K; i++) {                                                           \
            float *Si = S + (size_t)i * lds;                                                    \
            const __m512 ki = UPD ? _mm512_set1_ps(k[i]) : z;                                   \
            const __m512 xi = RD ? _mm512_set1_ps(x[i]) : z;                                    \
            const __m512 yi = RD ? _mm512_set1_ps(y[i]) : z;                                    \
            (void)ki, (void)xi, (void)yi;                                                       \
            PASS_COL(0) PASS_COL(1)                                                             \
        }                                                                                       \
        PASS_OUT(0) PASS_OUT(1)                                                                 \
    }
#define PASS_MODES(NV)                                                                         \
    PASS_FN(NV, 1, 1) PASS_FN(NV, 2, 1) PASS_FN(NV, 1, 0) PASS_FN(NV, 2, 0) PASS_FN(NV, 0, 1)   \
    static void pass512_##NV(int upd, int rd, int K, float *restrict S, size_t lds, float al,   \
                             const float *restrict k, const float *restrict u,                 \
                             const float *restrict x, float *restrict ox,                      \
                             const float *restrict y, float *restrict oy, __mmask16 ml)        \
    {                                                                                          \
        if (upd == 1 && rd)                                                                    \
            pass512_##NV##_1_1(K, S, lds, al, k, u, x, ox, y, oy, ml);                         \
        else if (upd == 2 && rd)                                                               \
            pass512_##NV##_2_1(K, S, lds, al, k, u, x, ox, y, oy, ml);                         \
        else if (upd == 1)                                                                     \
            pass512_##NV##_1_0(K, S, lds, al, k, u, x, ox, y, oy, ml);                         \
        else if (upd == 2)                                                                     \
            pass512_##NV##_2_0(K, S, lds, al, k, u, x, ox, y, oy, ml);                         \
        else                                                                                   \
            pass512_##NV##_0_1(K, S, lds, al, k, u, x, ox, y, oy, ml);                         \
    }
PASS_MODES(1)
PASS_MODES(2)
#undef PASS_MODES
#undef PASS_FN
#undef PASS_OUT
#undef PASS_INIT
#undef PASS_COL
#endif

/* Portable path (also any readout-only-one-side call). */
static void pass_c(int K, int w, float *restrict S, size_t lds, float alpha,
                   const float *restrict k, const float *restrict u, const float *restrict x,
                   float *restrict ox, const float *restrict y, float *restrict oy)
{
    if (ox)
        for (int j = 0; j < w; j++)
            ox[j] = 0.0f;
    if (oy)
        for (int j = 0; j < w; j++)
            oy[j] = 0.0f;
    for (int i = 0; i < K; i++) {
        float *Si = S + (size_t)i * lds;
        if (u) {
            const float ki = k[i];
            for (int j = 0; j < w; j++)
                Si[j] = alpha * Si[j] + ki * u[j];
        }
        if (x)
            lat_vec_axpy(ox, x[i], Si, (size_t)w);
        if (y)
            lat_vec_axpy(oy, y[i], Si, (size_t)w);
    }
}

void lat_rec_update_read2(int K, int w, float *restrict S, size_t lds, float alpha,
                          const float *restrict k, const float *restrict u,
                          const float *restrict x, float *restrict ox,
                          const float *restrict y, float *restrict oy)
{
    if (!u && !x && !y)
        return;
#if defined(__AVX512F__)
    if ((x == NULL) == (y == NULL)) {
        const int upd = u ? (alpha != 1.0f ? 2 : 1) : 0, rd = x != NULL;
        /* blocks of 32 columns: measured 1.25x faster per column than 64 (4
         * vectors a row) on Zen 4, where the 64-wide block stalled at ~17
         * cycles a row without being FMA-bound */
        for (int j0 = 0; j0 < w; j0 += 32) {
            const int rem = w - j0 < 32 ? w - j0 : 32, nv = (rem + 15) / 16;
            const __mmask16 ml = (__mmask16)((1u << (rem - 16 * (nv - 1))) - 1u);
            float *Sj = S + j0;
            const float *uj = u ? u + j0 : NULL;
            float *oxj = ox ? ox + j0 : NULL, *oyj = oy ? oy + j0 : NULL;
            if (nv == 1)
                pass512_1(upd, rd, K, Sj, lds, alpha, k, uj, x, oxj, y, oyj, ml);
            else
                pass512_2(upd, rd, K, Sj, lds, alpha, k, uj, x, oxj, y, oyj, ml);
        }
        return;
    }
#endif
    pass_c(K, w, S, lds, alpha, k, u, x, ox, y, oy);
}

#if defined(__AVX512F__)
/* Rows 1..n−1 of columns [0, 16·NV); two accumulator sets (even and odd m)
 * so that narrow blocks still keep two FMA chains per vector in flight.
 * Named registers as in PASS_FN. */
#define SOLVE_INIT(c)                                                                          \
    if (NV > c)                                                                                \
        a##c = _mm512_maskz_loadu_ps(DN_MASK(c, NV, mlast), Xr + 16 * c);
#define SOLVE_STEP(c)                                                                          \
    if (NV > c) {                                                                              \
        const __mmask16 m = DN_MASK(c, NV, mlast);                                             \
        a##c = _mm512_fnmadd_ps(l0, _mm512_maskz_loadu_ps(m, X0 + 16 * c), a##c);              \
        b##c = _mm512_fnmadd_ps(l1, _mm512_maskz_loadu_ps(m, X1 + 16 * c), b##c);              \
    }
#define SOLVE_TAIL(c)                                                                          \
    if (NV > c)                                                                                \
        a##c = _mm512_fnmadd_ps(l0, _mm512_maskz_loadu_ps(DN_MASK(c, NV, mlast), X0 + 16 * c), \
                                a##c);
#define SOLVE_OUT(c)                                                                           \
    if (NV > c)                                                                                \
        _mm512_mask_storeu_ps(Xr + 16 * c, DN_MASK(c, NV, mlast), _mm512_add_ps(a##c, b##c));
#define SOLVE_FN(NV_)                                                                          \
    static void solve512_##NV_(int n, const float *restrict L, int ldl, float *restrict X,     \
                               size_t ldx, __mmask16 mlast)                                    \
    {                                                                                          \
        enum { NV = NV_ };                                                                     \
        const __m512 z = _mm512_setzero_ps();                                                  \
        for (int r = 1; r < n; r++) {                                                          \
            const float *Lr = L + (size_t)r * ldl;                                             \
            float *Xr = X + (size_t)r * ldx;                                                   \
            __m512 a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;             \
            SOLVE_INIT(0) SOLVE_INIT(1) SOLVE_INIT(2) SOLVE_INIT(3)                            \
            int mm = 0;                                                                        \
            for (; mm + 1 < r; mm += 2) {                                                      \
                const __m512 l0 = _mm512_set1_ps(Lr[mm]), l1 = _mm512_set1_ps(Lr[mm + 1]);     \
                const float *X0 = X + (size_t)mm * ldx, *X1 = X0 + ldx;                        \
                SOLVE_STEP(0) SOLVE_STEP(1) SOLVE_STEP(2) SOLVE_STEP(3)                        \
            }                                                                                  \
            if (mm < r) {                                                                      \
                const __m512 l0 = _mm512_set1_ps(Lr[mm]);                                      \
                const float *X0 = X + (size_t)mm * ldx;                                        \
                SOLVE_TAIL(0) SOLVE_TAIL(1) SOLVE_TAIL(2) SOLVE_TAIL(3)                        \
            }                                                                                  \
            SOLVE_OUT(0) SOLVE_OUT(1) SOLVE_OUT(2) SOLVE_OUT(3)                                \
        }                                                                                      \
    }
SOLVE_FN(1)
SOLVE_FN(2)
SOLVE_FN(3)
SOLVE_FN(4)
#undef SOLVE_FN
#undef SOLVE_OUT
#undef SOLVE_TAIL
#undef SOLVE_STEP
#undef SOLVE_INIT
#endif

void lat_solve_unit_lower(int n, int w, const float *restrict L, int ldl, float *restrict X,
                          size_t ldx)
{
#if defined(__AVX512F__)
    for (int j0 = 0; j0 < w; j0 += 64) {
        const int rem = w - j0 < 64 ? w - j0 : 64, nv = (rem + 15) / 16;
        const __mmask16 ml = (__mmask16)((1u << (rem - 16 * (nv - 1))) - 1u);
        switch (nv) {
        case 1: solve512_1(n, L, ldl, X + j0, ldx, ml); break;
        case 2: solve512_2(n, L, ldl, X + j0, ldx, ml); break;
        case 3: solve512_3(n, L, ldl, X + j0, ldx, ml); break;
        default: solve512_4(n, L, ldl, X + j0, ldx, ml); break;
        }
    }
#else
    for (int r = 1; r < n; r++)
        for (int m = 0; m < r; m++)
            lat_vec_axpy(X + (size_t)r * ldx, -L[(size_t)r * ldl + m], X + (size_t)m * ldx, (size_t)w);
#endif
}

/* Delta-rule tokens on w ≤ 32 value columns (see lat_delta.h): p, r stay in
 * registers from one token to the next, so the only serialization per token
 * is u ← p (a few cycles), not a store/reload and a call. */
#if defined(__AVX512F__)
#define TOK_LOAD(c, dst, src)                                                                  \
    if (NV > c)                                                                                \
        dst##c = _mm512_maskz_loadu_ps(DN_MASK(c, NV, mlast), (src) + 16 * c);
#define TOK_STORE(c, dst, src)                                                                 \
    if (NV > c)                                                                                \
        _mm512_mask_storeu_ps((dst) + 16 * c, DN_MASK(c, NV, mlast), src##c);
#define TOK_UO(c)                                                                              \
    if (NV > c) {                                                                              \
        const __m512 vv = _mm512_maskz_loadu_ps(DN_MASK(c, NV, mlast), vt + 16 * c);           \
        u##c = _mm512_mul_ps(bev, _mm512_fnmadd_ps(alv, p##c, vv));                            \
        const __m512 o = _mm512_fmadd_ps(kqv, u##c, _mm512_mul_ps(alv, r##c));                 \
        _mm512_mask_storeu_ps(ot + 16 * c, DN_MASK(c, NV, mlast), o);                          \
    }
#define TOK_ROW(c, RD)                                                                         \
    if (NV > c) {                                                                              \
        const __mmask16 m = DN_MASK(c, NV, mlast);                                             \
        __m512 sv = _mm512_maskz_loadu_ps(m, Si + 16 * c);                                     \
        sv = _mm512_fmadd_ps(ki, u##c, G ? _mm512_mul_ps(alv, sv) : sv);                       \
        _mm512_mask_storeu_ps(Si + 16 * c, m, sv);                                             \
        if (RD) {                                                                              \
            p##c = _mm512_fmadd_ps(xi, sv, p##c);                                              \
            r##c = _mm512_fmadd_ps(yi, sv, r##c);                                              \
        }                                                                                      \
    }
#define TOK_FN(NV_, G_)                                                                        \
    static void tok512_##NV_##_##G_(int K, int n, int more, float *restrict S, size_t lds,     \
                                    const float *restrict kn, const float *restrict qn,        \
                                    const float *restrict kq, const float *restrict be,        \
                                    const float *restrict al, const float *restrict vb,        \
                                    size_t ldv, float *restrict ob, size_t ldo,                \
                                    float *restrict P,                                         \
                                    float *restrict R, __mmask16 mlast)                        \
    {                                                                                          \
        enum { NV = NV_, G = G_ };                                                             \
        const __m512 z = _mm512_setzero_ps();                                                  \
        __m512 p0 = z, p1 = z, r0 = z, r1 = z, u0 = z, u1 = z;                                 \
        TOK_LOAD(0, p, P) TOK_LOAD(1, p, P) TOK_LOAD(0, r, R) TOK_LOAD(1, r, R)                \
        for (int t = 0; t < n; t++) {                                                          \
            const __m512 alv = _mm512_set1_ps(G ? al[t] : 1.0f);                               \
            const __m512 bev = _mm512_set1_ps(be[t]), kqv = _mm512_set1_ps(kq[t]);             \
            const float *vt = vb + (size_t)t * ldv;                                            \
            float *ot = ob + (size_t)t * ldo;                                                  \
            TOK_UO(0) TOK_UO(1)                                                                \
            const float *kr = kn + (size_t)t * K, *xr = kr + K, *yr = qn + (size_t)(t + 1) * K; \
            if (t + 1 < n || more) {                                                           \
                p0 = p1 = r0 = r1 = z;                                                         \
                for (int i = 0; i < K; i++) {                                                  \
                    float *Si = S + (size_t)i * lds;                                           \
                    const __m512 ki = _mm512_set1_ps(kr[i]);                                   \
                    const __m512 xi = _mm512_set1_ps(xr[i]), yi = _mm512_set1_ps(yr[i]);       \
                    TOK_ROW(0, 1) TOK_ROW(1, 1)                                                \
                }                                                                              \
            } else {                                                                           \
                for (int i = 0; i < K; i++) {                                                  \
                    float *Si = S + (size_t)i * lds;                                           \
                    const __m512 ki = _mm512_set1_ps(kr[i]), xi = z, yi = z;                   \
                    (void)xi, (void)yi;                                                        \
                    TOK_ROW(0, 0) TOK_ROW(1, 0)                                                \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        TOK_STORE(0, P, p) TOK_STORE(1, P, p) TOK_STORE(0, R, r) TOK_STORE(1, R, r)            \
    }
TOK_FN(1, 0)
TOK_FN(2, 0)
TOK_FN(1, 1)
TOK_FN(2, 1)
#undef TOK_FN
#undef TOK_ROW
#undef TOK_UO
#undef TOK_STORE
#undef TOK_LOAD
#elif defined(__AVX2__) && defined(__FMA__)
/* AVX2: blocks of exactly 16 columns (two ymm vectors; with p, r, u that is
 * 6 of the 16 registers), the remaining < 16 columns by the portable path. */
#define T2_UO(c)                                                                               \
    {                                                                                          \
        const __m256 vv = _mm256_loadu_ps(vt + 8 * c);                                         \
        u##c = _mm256_mul_ps(bev, _mm256_fnmadd_ps(alv, p##c, vv));                            \
        _mm256_storeu_ps(ot + 8 * c, _mm256_fmadd_ps(kqv, u##c, _mm256_mul_ps(alv, r##c)));     \
    }
#define T2_ROW(c, RD)                                                                          \
    {                                                                                          \
        __m256 sv = _mm256_loadu_ps(Si + 8 * c);                                               \
        sv = _mm256_fmadd_ps(ki, u##c, G ? _mm256_mul_ps(alv, sv) : sv);                       \
        _mm256_storeu_ps(Si + 8 * c, sv);                                                      \
        if (RD) {                                                                              \
            p##c = _mm256_fmadd_ps(xi, sv, p##c);                                              \
            r##c = _mm256_fmadd_ps(yi, sv, r##c);                                              \
        }                                                                                      \
    }
#define T2_FN(G_)                                                                              \
    static void tok256_##G_(int K, int n, int more, float *restrict S, size_t lds,             \
                            const float *restrict kn, const float *restrict qn,                \
                            const float *restrict kq, const float *restrict be,                \
                            const float *restrict al, const float *restrict vb, size_t ldv,    \
                            float *restrict ob, size_t ldo, float *restrict P,                 \
                            float *restrict R)                                                 \
    {                                                                                          \
        enum { G = G_ };                                                                       \
        const __m256 z = _mm256_setzero_ps();                                                  \
        __m256 p0 = _mm256_loadu_ps(P), p1 = _mm256_loadu_ps(P + 8);                           \
        __m256 r0 = _mm256_loadu_ps(R), r1 = _mm256_loadu_ps(R + 8), u0 = z, u1 = z;           \
        for (int t = 0; t < n; t++) {                                                          \
            const __m256 alv = _mm256_set1_ps(G ? al[t] : 1.0f);                               \
            const __m256 bev = _mm256_set1_ps(be[t]), kqv = _mm256_set1_ps(kq[t]);             \
            const float *vt = vb + (size_t)t * ldv;                                            \
            float *ot = ob + (size_t)t * ldo;                                                  \
            T2_UO(0) T2_UO(1)                                                                  \
            const float *kr = kn + (size_t)t * K, *xr = kr + K, *yr = qn + (size_t)(t + 1) * K; \
            if (t + 1 < n || more) {                                                           \
                p0 = p1 = r0 = r1 = z;                                                         \
                for (int i = 0; i < K; i++) {                                                  \
                    float *Si = S + (size_t)i * lds;                                           \
                    const __m256 ki = _mm256_set1_ps(kr[i]);                                   \
                    const __m256 xi = _mm256_set1_ps(xr[i]), yi = _mm256_set1_ps(yr[i]);       \
                    T2_ROW(0, 1) T2_ROW(1, 1)                                                  \
                }                                                                              \
            } else {                                                                           \
                for (int i = 0; i < K; i++) {                                                  \
                    float *Si = S + (size_t)i * lds;                                           \
                    const __m256 ki = _mm256_set1_ps(kr[i]), xi = z, yi = z;                   \
                    (void)xi, (void)yi;                                                        \
                    T2_ROW(0, 0) T2_ROW(1, 0)                                                  \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        _mm256_storeu_ps(P, p0), _mm256_storeu_ps(P + 8, p1);                                  \
        _mm256_storeu_ps(R, r0), _mm256_storeu_ps(R + 8, r1);                                  \
    }
T2_FN(0)
T2_FN(1)
#undef T2_FN
#undef T2_ROW
#undef T2_UO
#endif

#if !defined(__AVX512F__)
/* Portable path: the same token loop through lat_rec_update_read2. */
static void tokens_c(int K, int w, int n, int more, float *restrict S, size_t lds,
                     const float *restrict kn, const float *restrict qn, const float *restrict kq,
                     const float *restrict be, const float *restrict al,
                     const float *restrict vb, size_t ldv, float *restrict ob, size_t ldo,
                     float *restrict P, float *restrict R)
{
    float u[32];
    for (int j0 = 0; j0 < w; j0 += 32) {
        const int wj = w - j0 < 32 ? w - j0 : 32;
        for (int t = 0; t < n; t++) {
            const float a = al ? al[t] : 1.0f, b = be[t], c = kq[t];
            const float *vt = vb + (size_t)t * ldv + j0;
            float *ot = ob + (size_t)t * ldo + j0;
            for (int j = 0; j < wj; j++) {
                u[j] = b * (vt[j] - a * P[j0 + j]);
                ot[j] = a * R[j0 + j] + c * u[j];
            }
            const int rd = t + 1 < n || more;
            lat_rec_update_read2(K, wj, S + j0, lds, a, kn + (size_t)t * K, u,
                                 rd ? kn + (size_t)(t + 1) * K : NULL, rd ? P + j0 : NULL,
                                 rd ? qn + (size_t)(t + 1) * K : NULL, rd ? R + j0 : NULL);
        }
    }
}
#endif

void lat_rec_delta_tokens(int K, int w, int n, int more, float *restrict S, size_t lds,
                          const float *restrict kn, const float *restrict qn,
                          const float *restrict kq, const float *restrict be,
                          const float *restrict al, const float *restrict vb, size_t ldv,
                          float *restrict ob, size_t ldo, float *restrict P, float *restrict R)
{
#if defined(__AVX512F__)
    for (int j0 = 0; j0 < w; j0 += 32) {
        const int rem = w - j0 < 32 ? w - j0 : 32, nv = (rem + 15) / 16;
        const __mmask16 ml = (__mmask16)((1u << (rem - 16 * (nv - 1))) - 1u);
        float *Sj = S + j0, *Pj = P + j0, *Rj = R + j0, *oj = ob + j0;
        const float *vj = vb + j0;
        if (al && nv == 1)
            tok512_1_1(K, n, more, Sj, lds, kn, qn, kq, be, al, vj, ldv, oj, ldo, Pj, Rj, ml);
        else if (al)
            tok512_2_1(K, n, more, Sj, lds, kn, qn, kq, be, al, vj, ldv, oj, ldo, Pj, Rj, ml);
        else if (nv == 1)
            tok512_1_0(K, n, more, Sj, lds, kn, qn, kq, be, al, vj, ldv, oj, ldo, Pj, Rj, ml);
        else
            tok512_2_0(K, n, more, Sj, lds, kn, qn, kq, be, al, vj, ldv, oj, ldo, Pj, Rj, ml);
    }
#elif defined(__AVX2__) && defined(__FMA__)
    int j0 = 0;
    for (; j0 + 16 <= w; j0 += 16)
        (al ? tok256_1 : tok256_0)(K, n, more, S + j0, lds, kn, qn, kq, be, al, vb + j0, ldv,
                                   ob + j0, ldo, P + j0, R + j0);
    if (j0 < w)
        tokens_c(K, w - j0, n, more, S + j0, lds, kn, qn, kq, be, al, vb + j0, ldv, ob + j0, ldo,
                 P + j0, R + j0);
#else
    tokens_c(K, w, n, more, S, lds, kn, qn, kq, be, al, vb, ldv, ob, ldo, P, R);
#endif
}

/* ------------------------------------------------------------------------- */
/* Shared helpers of the forms                                               */
/* ------------------------------------------------------------------------- */

/* y = mult · x / sqrt(Σ x² + eps) (fla l2norm) */
static void l2norm_row(float *restrict y, const float *restrict x, int K, float mult)
{
    const float inv = mult / sqrtf(lat_vec_dot(x, x, (size_t)K) + DN_L2_EPS);
    for (int i = 0; i < K; i++)
        y[i] = x[i] * inv;
}

static inline void prefetch_floats(const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        __builtin_prefetch(x + i);
}

/* Item `it` = value columns [*j0, *j1) of slice it / nvb. */
static int item_cols(const lat_shape *s, int nvb, int it, int *j0, int *j1)
{
    lat_rec_col_range(s->V, nvb, it % nvb, j0, j1);
    return it / nvb;
}

/* Columns [j0, j1) of the initial state into S (zeros when there is none;
 * nothing to do in place). */
static void load_columns(const float *S0, float *S, int K, int V, int j0, int j1)
{
    if (S0 == S)
        return;
    for (int i = 0; i < K; i++) {
        float *dst = S + (size_t)i * V + j0;
        if (S0)
            memcpy(dst, S0 + (size_t)i * V + j0, sizeof(float) * (size_t)(j1 - j0));
        else
            memset(dst, 0, sizeof(float) * (size_t)(j1 - j0));
    }
}

/* ------------------------------------------------------------------------- */
/* Recurrent form                                                            */
/* ------------------------------------------------------------------------- */

#define REC_TB 32 /* tokens per block; rows are prefetched a block ahead */

typedef struct rec_plan {
    int nt, nvb, items;
    size_t slice;            /* one thread's scratch (bytes)            */
    size_t off_pr, off_slots, total;
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    const int BH = s->B * s->H, K = s->K, V = s->V;
    p.nt = lat_useful_threads((double)BH * s->T * K * V, nthreads);
    p.nvb = lat_rec_col_blocks(BH, V, p.nt);
    p.items = BH * p.nvb;
    const size_t tb = REC_TB + 1;
    p.slice = 2 * FL(tb * (size_t)K) + 3 * FL(tb) + FL((size_t)REC_TB * V);
    p.off_pr = p.slice * (size_t)p.nt;
    p.off_slots = p.off_pr + (size_t)p.items * 2 * FL(V);
    p.total = p.off_slots + (size_t)BH * FL((size_t)K * V);
    return p;
}

size_t lat_delta_recurrent_workspace(const lat_shape *s, int nthreads)
{
    return plan_recurrent(s, nthreads).total;
}

typedef struct rec_tok {
    float *kn, *qn;      /* [REC_TB+1][K] k̂ and s·q̂ of the block's tokens  */
    float *kq, *be, *al; /* k̂·q̂, β, α = e^{a} (1 ungated)                  */
    float *vb;           /* [REC_TB][w] the item's columns of v            */
} rec_tok;

static rec_tok rec_carve(const lat_args *a, const rec_plan *p, int tid)
{
    const int K = a->shape->K;
    const size_t tb = REC_TB + 1;
    char *w = (char *)a->work + p->slice * (size_t)tid;
    rec_tok x;
    x.kn = (float *)w; w += FL(tb * (size_t)K);
    x.qn = (float *)w; w += FL(tb * (size_t)K);
    x.kq = (float *)w; w += FL(tb);
    x.be = (float *)w; w += FL(tb);
    x.al = (float *)w; w += FL(tb);
    x.vb = (float *)w;
    return x;
}

/* Normalized rows of tokens t0 .. t0+n−1 of slice (b, h) into x, and the
 * item's value columns of the first nv of them (one burst of independent
 * loads, so that the kernel's per-token v row is an L1 hit). */
static void rec_prepare(const lat_args *a, int b, int h, int t0, int n, int nv, int j0, int j1,
                        int gated, rec_tok *x)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V;
    const float *q = a->in[0], *k = a->in[1], *v = a->in[2], *beta = a->in[3];
    const float scale = 1.0f / sqrtf((float)K);
    for (int r = 0; r < n; r++) {
        const int t = t0 + r;
        const size_t ik = lat_idx_bthd(s, b, t, h, K), ih = lat_idx_bth(s, b, t, h);
        if (t + REC_TB < s->T) { /* the next block's rows, consumed a block later */
            const size_t pk = lat_idx_bthd(s, b, t + REC_TB, h, K);
            const size_t pv = lat_idx_bthd(s, b, t + REC_TB, h, V) + (size_t)j0;
            prefetch_floats(q + pk, K);
            prefetch_floats(k + pk, K);
            prefetch_floats(v + pv, j1 - j0);
            for (int j = 0; j < j1 - j0; j += 16)
                __builtin_prefetch(a->out + pv + j, 1);
        }
        float *kr = x->kn + (size_t)r * K, *qr = x->qn + (size_t)r * K;
        l2norm_row(kr, k + ik, K, 1.0f);
        l2norm_row(qr, q + ik, K, scale);
        x->kq[r] = lat_vec_dot(kr, qr, (size_t)K);
        x->be[r] = beta[ih];
        x->al[r] = gated ? a->in[4][ih] : 0.0f;
        if (r < nv)
            memcpy(x->vb + (size_t)r * (j1 - j0), v + lat_idx_bthd(s, b, t, h, V) + j0,
                   sizeof(float) * (size_t)(j1 - j0));
    }
    if (gated)
        lat_vec_exp(x->al, x->al, (size_t)n);
    else
        for (int r = 0; r < n; r++)
            x->al[r] = 1.0f;
}

/* Tokens [t0, t1) of one item (slice bh, columns [j0, j1)). P, R hold, per
 * column, S_{t−1}ᵀ k̂_t and S_{t−1}ᵀ q̂_t for the next token t. */
static void rec_block(const lat_args *a, int bh, int j0, int j1, int t0, int t1, float *S,
                      float *P, float *R, int gated, rec_tok *x)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T, b = bh / s->H, h = bh % s->H;
    const int n = t1 - t0 + (t1 < T ? 1 : 0); /* plus the next block's first token */
    const int wi = j1 - j0;                   /* row stride of vb */
    rec_prepare(a, b, h, t0, n, t1 - t0, j0, j1, gated, x);
    if (t0 == 0) { /* readout of the initial state for the first token */
        if (a->state_in)
            lat_rec_update_read2(K, wi, S + j0, (size_t)V, 1.0f, NULL, NULL, x->kn, P, x->qn, R);
        else
            for (int j = 0; j < wi; j++)
                P[j] = R[j] = 0.0f;
    }
    lat_rec_delta_tokens(K, wi, t1 - t0, t1 < T, S + j0, (size_t)V, x->kn, x->qn, x->kq, x->be,
                         gated ? x->al : NULL, x->vb, (size_t)wi,
                         a->out + lat_idx_bthd(s, b, t0, h, V) + j0, (size_t)s->H * V, P, R);
}

lat_status lat_delta_recurrent(const lat_args *a, int gated)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (!a->work || a->work_bytes < p.total)
        return LAT_ENOMEM;
    const size_t KV = (size_t)K * V;
    float *PR = (float *)((char *)a->work + p.off_pr);
    float *slots = (float *)((char *)a->work + p.off_slots);
    const size_t prs = FL(V) / sizeof(float); /* floats per P or R row */

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        rec_tok x = rec_carve(a, &p, tid);
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) {
            int j0, j1, bh = item_cols(s, p.nvb, (int)it, &j0, &j1);
            float *S = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
            load_columns(a->state_in ? a->state_in + (size_t)bh * KV : NULL, S, K, V, j0, j1);
        }
        for (int t0 = 0; t0 < T; t0 += REC_TB) {
            const int t1 = t0 + REC_TB < T ? t0 + REC_TB : T;
            for (long it = lo; it < hi; it++) {
                int j0, j1, bh = item_cols(s, p.nvb, (int)it, &j0, &j1);
                float *S = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
                float *P = PR + (size_t)it * 2 * prs;
                rec_block(a, bh, j0, j1, t0, t1, S, P, P + prs, gated, &x);
            }
        }
    }
    return LAT_OK;
}

/* ------------------------------------------------------------------------- */
/* Chunk form                                                                */
/* ------------------------------------------------------------------------- */

typedef struct chunk_plan {
    int nt, nvb, items, C, nchunks;
    size_t per_thread, off_slots, total;
} chunk_plan;

typedef struct cbuf {
    float *KQ;  /* [2C][K]  k̂ rows, then s·q̂ rows (n each, contiguous)      */
    float *KQt; /* [2C][K]  the same times e^{b} (gated)                   */
    float *Kd;  /* [C][K]   k̂ ⊙ e^{b_n − b} (gated)                        */
    float *G;   /* [2C][C]  [K̂;Q̂]K̂ᵀ → L (top), A (bottom)                  */
    float *P;   /* [2C][V]  [K̃;Q̃]S → R (top), O (bottom)                   */
    float *D;   /* [C][V]   Δ                                             */
    float *be, *tmp;
    double *gb; /* [C] chunk-local cumsum of a                             */
} cbuf;

static chunk_plan plan_chunk(const lat_shape *s, int nthreads, int gated)
{
    chunk_plan p;
    const int BH = s->B * s->H, K = s->K, V = s->V;
    p.nt = lat_useful_threads((double)BH * s->T * K * V, nthreads);
    p.nvb = lat_rec_col_blocks(BH, V, p.nt);
    p.items = BH * p.nvb;
    p.C = s->chunk < s->T ? s->chunk : s->T;
    if (p.C < 1)
        p.C = 1;
    p.nchunks = (s->T + p.C - 1) / p.C;
    const size_t C = (size_t)p.C;
    p.per_thread = FL(2 * C * K) + (gated ? FL(2 * C * K) + FL(C * K) : 0) + FL(2 * C * C) +
                   FL(2 * C * V) + FL(C * V) + 2 * FL(C) + DB(C);
    p.off_slots = p.per_thread * (size_t)p.nt;
    p.total = p.off_slots + (size_t)BH * FL((size_t)K * V);
    return p;
}

static cbuf chunk_carve(const chunk_plan *p, const lat_shape *s, void *work, int tid, int gated)
{
    const size_t C = (size_t)p->C, K = (size_t)s->K, V = (size_t)s->V;
    char *w = (char *)work + p->per_thread * (size_t)tid;
    cbuf b;
    b.gb = (double *)w; w += DB(C);
    b.KQ = (float *)w;  w += FL(2 * C * K);
    if (gated) {
        b.KQt = (float *)w; w += FL(2 * C * K);
        b.Kd = (float *)w;  w += FL(C * K);
    } else {
        b.KQt = b.KQ;
        b.Kd = b.KQ;
    }
    b.G = (float *)w;   w += FL(2 * C * C);
    b.P = (float *)w;   w += FL(2 * C * V);
    b.D = (float *)w;   w += FL(C * V);
    b.be = (float *)w;  w += FL(C);
    b.tmp = (float *)w;
    return b;
}

size_t lat_delta_chunk_workspace(const lat_shape *s, int nthreads)
{
    /* sized for the gated layout, which is the larger one */
    return plan_chunk(s, nthreads, 1).total;
}

/* Pack the n rows from t0 of slice (b, h): k̂, s·q̂, β and the cumsum of a. */
static void chunk_pack(const lat_args *a, int b, int h, int t0, int n, int gated, cbuf *x)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V;
    const float *q = a->in[0], *k = a->in[1], *beta = a->in[3];
    const float scale = 1.0f / sqrtf((float)K);
    for (int r = 0; r < n; r++) {
        const int t = t0 + r;
        const size_t ik = lat_idx_bthd(s, b, t, h, K), ih = lat_idx_bth(s, b, t, h);
        if (t + n < s->T) { /* rows are H·K apart: start the next chunk's loads */
            const size_t pk = lat_idx_bthd(s, b, t + n, h, K);
            prefetch_floats(q + pk, K);
            prefetch_floats(k + pk, K);
            prefetch_floats(a->in[2] + lat_idx_bthd(s, b, t + n, h, V), V);
        }
        l2norm_row(x->KQ + (size_t)r * K, k + ik, K, 1.0f);
        l2norm_row(x->KQ + (size_t)(n + r) * K, q + ik, K, scale);
        x->be[r] = beta[ih];
        if (gated)
            x->gb[r] = (double)a->in[4][ih] + (r > 0 ? x->gb[r - 1] : 0.0);
    }
}

/* Scores G = [K̂; Q̂]K̂ᵀ → L (rows 0..n−1, strict lower part, times β_r Γ) and
 * A (rows n..2n−1, lower part incl. the diagonal, times Γ; zeros above); for
 * the gated form also KQt, Kd and returns d = e^{b_n} (1 ungated). */
static float chunk_scores(const lat_shape *s, const chunk_plan *p, int n, int gated, cbuf *x)
{
    const int K = s->K, C = p->C;
    lat_sgemm('N', 'T', 2 * n, n, K, 1.0f, x->KQ, K, x->KQ, K, 0.0f, x->G, C);
    float d = 1.0f;
    for (int r = 0; r < n; r++) {
        float *Lr = x->G + (size_t)r * C, *Ar = x->G + (size_t)(n + r) * C;
        if (gated) {
            /* Γ_rc for c ≤ r (exponent ≤ 0); −∞ above the diagonal (masked
             * before exponentiating, R3), so that the whole row is one
             * vector exp without a scalar tail */
            for (int c = 0; c < n; c++)
                x->tmp[c] = c <= r ? (float)(x->gb[r] - x->gb[c]) : -INFINITY;
            lat_vec_exp(x->tmp, x->tmp, (size_t)n);
            for (int c = 0; c < r; c++)
                Lr[c] *= x->be[r] * x->tmp[c];
            for (int c = 0; c <= r; c++)
                Ar[c] *= x->tmp[c];
        } else {
            for (int c = 0; c < r; c++)
                Lr[c] *= x->be[r];
        }
        for (int c = r + 1; c < n; c++)
            Ar[c] = 0.0f;
    }
    if (gated) {
        /* KQt = [K̂; Q̂] ⊙ e^{b} (row scales), Kd = K̂ ⊙ e^{b_n − b} */
        for (int r = 0; r < n; r++)
            x->tmp[r] = (float)x->gb[r];
        lat_vec_exp(x->tmp, x->tmp, (size_t)n);
        for (int r = 0; r < n; r++) {
            const float e = x->tmp[r];
            const float *kr = x->KQ + (size_t)r * K, *qr = x->KQ + (size_t)(n + r) * K;
            float *kt = x->KQt + (size_t)r * K, *qt = x->KQt + (size_t)(n + r) * K;
            for (int i = 0; i < K; i++) {
                kt[i] = kr[i] * e;
                qt[i] = qr[i] * e;
            }
        }
        const double last = x->gb[n - 1];
        for (int r = 0; r < n; r++)
            x->tmp[r] = (float)(last - x->gb[r]);
        lat_vec_exp(x->tmp, x->tmp, (size_t)n);
        for (int r = 0; r < n; r++) {
            const float e = x->tmp[r];
            const float *kr = x->KQ + (size_t)r * K;
            float *kd = x->Kd + (size_t)r * K;
            for (int i = 0; i < K; i++)
                kd[i] = kr[i] * e;
        }
        d = lat_expf((float)last);
    }
    return d;
}

/* One chunk of one item: slice (b, h), columns [j0, j1), rows t0 .. t0+n−1,
 * state columns S + j0 (row stride V). */
static void chunk_step(const lat_args *a, const chunk_plan *p, int b, int h, int j0, int j1, int t0,
                       int n, float *S, int gated, cbuf *x)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, w = j1 - j0;
    chunk_pack(a, b, h, t0, n, gated, x);
    const float d = chunk_scores(s, p, n, gated, x);
    /* P = [K̃; Q̃] S */
    lat_sgemm('N', 'N', 2 * n, w, K, 1.0f, x->KQt, K, S + j0, V, 0.0f, x->P, w);
    /* Δ = (I + L)⁻¹ Diag(β)(V − P_top) */
    for (int r = 0; r < n; r++) {
        const float *vr = a->in[2] + lat_idx_bthd(s, b, t0 + r, h, V) + j0;
        const float *pr = x->P + (size_t)r * w;
        float *dr = x->D + (size_t)r * w;
        const float be = x->be[r];
        for (int j = 0; j < w; j++)
            dr[j] = be * (vr[j] - pr[j]);
    }
    lat_solve_unit_lower(n, w, x->G, p->C, x->D, (size_t)w);
    /* O = P_bottom + A Δ */
    float *O = x->P + (size_t)n * w;
    lat_sgemm('N', 'N', n, w, n, 1.0f, x->G + (size_t)n * p->C, p->C, x->D, w, 1.0f, O, w);
    for (int r = 0; r < n; r++)
        memcpy(a->out + lat_idx_bthd(s, b, t0 + r, h, V) + j0, O + (size_t)r * w,
               sizeof(float) * (size_t)w);
    /* S ← e^{b_n} S + (K̂ ⊙ e^{b_n − b})ᵀ Δ */
    lat_sgemm('T', 'N', K, w, n, 1.0f, x->Kd, K, x->D, w, d, S + j0, V);
}

lat_status lat_delta_chunk(const lat_args *a, int gated)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T;
    if (s->chunk < 1)
        return LAT_EINVAL;
    const chunk_plan p = plan_chunk(s, a->nthreads, gated);
    if (!a->work || a->work_bytes < p.total)
        return LAT_ENOMEM;
    const size_t KV = (size_t)K * V;
    float *slots = (float *)((char *)a->work + p.off_slots);

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        cbuf x = chunk_carve(&p, s, a->work, tid, gated);
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) {
            int j0, j1, bh = item_cols(s, p.nvb, (int)it, &j0, &j1);
            float *S = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
            load_columns(a->state_in ? a->state_in + (size_t)bh * KV : NULL, S, K, V, j0, j1);
        }
        for (int j = 0; j < p.nchunks; j++) {
            const int t0 = j * p.C, n = T - t0 < p.C ? T - t0 : p.C;
            for (long it = lo; it < hi; it++) {
                int j0, j1, bh = item_cols(s, p.nvb, (int)it, &j0, &j1);
                float *S = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
                chunk_step(a, &p, bh / s->H, bh % s->H, j0, j1, t0, n, S, gated, &x);
            }
        }
    }
    return LAT_OK;
}
