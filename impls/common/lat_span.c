/* lat_span.c — the rescaled-state span engine (see lat_span.h).
 *
 * Kernel: for each tile of R state rows × U vectors of value columns, load
 * the tile once, run the span's n tokens on it in registers —
 *     S̃[r][:] += Kt[t][r] · v_t[:],   acc[:] += Qt[t][r] · S̃[r][:]
 * — adding the tile's partial output acc to o_t (stored by the first row
 * tile, loaded-added-stored by the others), then scale by Pn and store the
 * tile. Per token and tile: U loads of v, U loads and stores of o against
 * 2·R·U FMAs (AVX-512: R = 8, U = 2 → 32 FMAs per 6 vector memory ops; the
 * broadcasts of Kt and Qt are memory operands). Rows are summed into o_t in
 * a fixed order (row tiles ascending, rows ascending within a tile). The
 * "GCC unroll" pragmas are what keeps the tile in registers: without them GCC
 * keeps s[][] in memory and stores all of it every token (≈ 1.3× slower).
 * Bare kernel (Zen4, data in L1/L2, K = V = 64, spans of 32): 138 GFLOP/s
 * on the recurrence's 5KV FLOPs per token (118 % of the 117.5 peak, the FMA
 * pipes ≈ 94 % busy), lat_rec_step 96 GFLOP/s (its 3 FP ops per element
 * keep the pipes ≈ 98 % busy: it cannot go faster).
 * The read-before-update tiles (lat_span_run_pre, RWKV-6) are the same
 * code with the two FMAs of a row swapped (acc += Qt·S̃ first, then
 * S̃ += Kt·v: the read-out leaves the update's dependency chain) and the
 * first row tile's sum started at β_t·v_t instead of 0; the PRE = 0
 * instances compile to the same FP instruction sequence as before.
 * While the tiles run, the kernel also issues the caller's prefetches (two
 * lines per token step, lat_span_pf), so the next item's strided input rows
 * arrive without a burst of misses outside the register-resident work.
 */
#include <string.h>

#include "lat_span.h"

#include <stdint.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

/* ---- preparation (portable; the loops vectorize) ------------------------- */

/* Token t of a per-key-decay span: Qr holds α_t on entry. P(t) = P(t−1)·α_t;
 * returns 1 (and changes nothing the caller keeps) when some P_i(t) falls
 * below LAT_SPAN_PMIN or is NaN, else writes Pn = P(t), Kr = k ⊘ P(t),
 * Qr = (qscale·q) ⊙ P(t). */
static inline int span_key_row(int K, float *restrict Qr, float *restrict Kr, float *restrict Pn,
                               const float *restrict qt, const float *restrict kt, float qscale)
{
    int below = 0;
    for (int i = 0; i < K; i++) {
        const float p = Pn[i] * Qr[i];
        below |= !(p >= LAT_SPAN_PMIN); /* NaN counts as below */
        Qr[i] = p;
    }
    if (below)
        return 1;
    for (int i = 0; i < K; i++) {
        const float p = Qr[i];
        Pn[i] = p;
        Kr[i] = kt[i] / p;
        Qr[i] = (qscale * qt[i]) * p;
    }
    return 0;
}

/* The per-key preparations: token rows of decays given as log-decays
 * (from_log: α = e^{g}) or as α itself. */
static int prep_rows(int K, int nmax, const float *restrict a, size_t lda, int from_log, const float *restrict q,
                     size_t ldq, float qscale, const float *restrict k, size_t ldk, float *restrict Qt,
                     float *restrict Kt, float *restrict Pn)
{
    if (nmax <= 1)
        return 0; /* one token (decode): the caller's single-pass lat_rec_step is cheaper */
    if (nmax > LAT_SPAN_MAX)
        nmax = LAT_SPAN_MAX;
    for (int i = 0; i < K; i++)
        Pn[i] = 1.0f;
    int t = 0;
    for (; t < nmax; t++) {
        float *Qr = Qt + (size_t)t * (size_t)K, *Kr = Kt + (size_t)t * (size_t)K;
        if (from_log)
            lat_vec_exp(Qr, a + (size_t)t * lda, (size_t)K); /* α_t = e^{g_t} */
        else
            memcpy(Qr, a + (size_t)t * lda, sizeof(float) * (size_t)K);
        if (span_key_row(K, Qr, Kr, Pn, q + (size_t)t * ldq, k + (size_t)t * ldk, qscale))
            break;
    }
    return t;
}

int lat_span_prep_key(int K, int nmax, const float *restrict g, size_t ldg, const float *restrict q,
                      size_t ldq, float qscale, const float *restrict k, size_t ldk, float *restrict Qt,
                      float *restrict Kt, float *restrict Pn)
{
    return prep_rows(K, nmax, g, ldg, 1, q, ldq, qscale, k, ldk, Qt, Kt, Pn);
}

int lat_span_prep_alpha(int K, int nmax, const float *restrict alpha, size_t lda, const float *restrict q,
                        size_t ldq, float qscale, const float *restrict k, size_t ldk, float *restrict Qt,
                        float *restrict Kt, float *restrict Pn)
{
    return prep_rows(K, nmax, alpha, lda, 0, q, ldq, qscale, k, ldk, Qt, Kt, Pn);
}

lat_span_pf lat_span_pf_item(const lat_shape *s, int b, int h, int j0, int j1, int tp, int n, int nk,
                             const float *const kin[], const float *v, const float *out)
{
    lat_span_pf pf = {.ns = 0};
    const int np = tp + n <= s->T ? n : s->T - tp;
    if (np <= 0)
        return pf;
    const size_t pk = lat_idx_bthd(s, b, tp, h, s->K), pv = lat_idx_bthd(s, b, tp, h, s->V) + (size_t)j0;
    const size_t ldk = sizeof(float) * (size_t)s->H * (size_t)s->K, ldv = sizeof(float) * (size_t)s->H * (size_t)s->V;
    const int kb = (int)sizeof(float) * s->K, vb = (int)sizeof(float) * (j1 - j0);
    for (int i = 0; i < nk && pf.ns < LAT_SPAN_NSTREAM - 2; i++)
        pf.s[pf.ns++] = (lat_span_stream){kin[i] + pk, ldk, np, kb, 0};
    pf.s[pf.ns++] = (lat_span_stream){v + pv, ldv, np, vb, 0};
    pf.s[pf.ns++] = (lat_span_stream){out + pv, ldv, np, vb, 1};
    return pf;
}

int lat_span_prep_scalar(int K, int nmax, const float *restrict alpha, const float *restrict q,
                         size_t ldq, const float *restrict qs, const float *restrict k, size_t ldk,
                         const float *restrict ks, float *restrict Qt, float *restrict Kt,
                         float *restrict Pn)
{
    if (nmax <= 1)
        return 0; /* one token (decode): the caller's single-pass lat_rec_step is cheaper */
    if (nmax > LAT_SPAN_MAX)
        nmax = LAT_SPAN_MAX;
    float P = 1.0f;
    int t = 0;
    for (; t < nmax; t++) {
        const float p = P * alpha[t];
        if (!(p >= LAT_SPAN_PMIN))
            break;
        P = p;
        const float fq = (qs ? qs[t] : 1.0f) * p, fk = (ks ? ks[t] : 1.0f) / p;
        const float *qt = q + (size_t)t * ldq, *kt = k + (size_t)t * ldk;
        float *Qr = Qt + (size_t)t * (size_t)K, *Kr = Kt + (size_t)t * (size_t)K;
        for (int i = 0; i < K; i++) {
            Qr[i] = fq * qt[i];
            Kr[i] = fk * kt[i];
        }
    }
    for (int i = 0; i < K; i++)
        Pn[i] = P;
    return t;
}

#ifndef LAT_SPAN_PF_LOC
#define LAT_SPAN_PF_LOC 2 /* prefetcht1: into L2 */
#endif

/* ---- prefetch cursor ----------------------------------------------------- */

typedef struct pf_cursor {
    const lat_span_pf *pf;
    int si, ri;        /* stream, row                         */
    uintptr_t line, end; /* next line and end of the current row */
} pf_cursor;

static inline void pf_row(pf_cursor *c)
{
    while (c->si < c->pf->ns && c->ri >= c->pf->s[c->si].rows)
        c->si++, c->ri = 0;
    if (c->si < c->pf->ns) {
        const lat_span_stream *st = &c->pf->s[c->si];
        const uintptr_t a = (uintptr_t)st->p + (uintptr_t)c->ri * st->stride;
        c->line = a & ~(uintptr_t)63;
        c->end = a + (uintptr_t)st->bytes;
    }
}

static inline void pf_init(pf_cursor *c, const lat_span_pf *pf)
{
    c->pf = pf, c->si = 0, c->ri = 0, c->line = 0, c->end = 0;
    if (pf)
        pf_row(c);
}

/* Prefetch the next line, if any (reads into L2; writes with prefetchw). */
static inline void pf_step(pf_cursor *c)
{
    if (!c->pf || c->si >= c->pf->ns)
        return;
    if (c->pf->s[c->si].write)
        __builtin_prefetch((const void *)c->line, 1, 2);
    else
        __builtin_prefetch((const void *)c->line, 0, LAT_SPAN_PF_LOC);
    c->line += 64;
    if (c->line >= c->end) {
        c->ri++;
        pf_row(c);
    }
}

static inline void pf_finish(pf_cursor *c)
{
    while (c->pf && c->si < c->pf->ns)
        pf_step(c);
}

/* ---- kernel -------------------------------------------------------------- */

#if defined(__AVX512F__)

/* Tile of R rows × U·16 columns (last vector masked by ml). */
#define SPAN_TILE(R, U, PRE, NAME)                                                              \
    static void NAME(int n, float *restrict S, size_t lds, const float *restrict Qt,            \
                     const float *restrict Kt, size_t ldqk, const float *restrict bt,           \
                     const float *restrict v, size_t ldv, float *restrict o, size_t ldo,        \
                     const float *restrict Pn, int first, __mmask16 ml, pf_cursor *pc)          \
    {                                                                                           \
        __m512 s[R][U];                                                                         \
        _Pragma("GCC unroll 16")                                                                \
        for (int r = 0; r < R; r++)                                                             \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < U; u++)                                                         \
                s[r][u] = _mm512_maskz_loadu_ps(u == U - 1 ? ml : 0xFFFF,                       \
                                                S + (size_t)r * lds + 16 * u);                  \
        for (int t = 0; t < n; t++) {                                                           \
            const float *kt = Kt + (size_t)t * ldqk, *qt = Qt + (size_t)t * ldqk;               \
            const float *vt = v + (size_t)t * ldv;                                              \
            float *ot = o + (size_t)t * ldo;                                                    \
            pf_step(pc), pf_step(pc);                                                           \
            __m512 vv[U], acc[U];                                                               \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < U; u++) {                                                       \
                const __mmask16 m = u == U - 1 ? ml : 0xFFFF;                                   \
                vv[u] = _mm512_maskz_loadu_ps(m, vt + 16 * u);                                  \
                acc[u] = !first ? _mm512_maskz_loadu_ps(m, ot + 16 * u)                         \
                         : PRE && bt ? _mm512_mul_ps(_mm512_set1_ps(bt[t]), vv[u])              \
                                     : _mm512_setzero_ps();                                     \
            }                                                                                   \
            _Pragma("GCC unroll 16")                                                            \
            for (int r = 0; r < R; r++) {                                                       \
                const __m512 kr = _mm512_set1_ps(kt[r]), qr = _mm512_set1_ps(qt[r]);            \
                _Pragma("GCC unroll 16")                                                        \
                for (int u = 0; u < U; u++) {                                                   \
                    if (PRE) { /* read the state before the token's update */                  \
                        acc[u] = _mm512_fmadd_ps(qr, s[r][u], acc[u]);                          \
                        s[r][u] = _mm512_fmadd_ps(kr, vv[u], s[r][u]);                          \
                    } else {                                                                    \
                        s[r][u] = _mm512_fmadd_ps(kr, vv[u], s[r][u]);                          \
                        acc[u] = _mm512_fmadd_ps(qr, s[r][u], acc[u]);                          \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < U; u++)                                                         \
                _mm512_mask_storeu_ps(ot + 16 * u, u == U - 1 ? ml : 0xFFFF, acc[u]);           \
        }                                                                                       \
        _Pragma("GCC unroll 16")                                                                \
        for (int r = 0; r < R; r++) {                                                           \
            const __m512 pr = _mm512_set1_ps(Pn ? Pn[r] : 1.0f);                                \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < U; u++)                                                         \
                _mm512_mask_storeu_ps(S + (size_t)r * lds + 16 * u, u == U - 1 ? ml : 0xFFFF,   \
                                      Pn ? _mm512_mul_ps(pr, s[r][u]) : s[r][u]);               \
        }                                                                                       \
    }
SPAN_TILE(8, 2, 0, span_tile_8_2)
SPAN_TILE(8, 1, 0, span_tile_8_1)
SPAN_TILE(4, 2, 0, span_tile_4_2)
SPAN_TILE(4, 1, 0, span_tile_4_1)
SPAN_TILE(1, 2, 0, span_tile_1_2)
SPAN_TILE(1, 1, 0, span_tile_1_1)
SPAN_TILE(8, 2, 1, span_pre_8_2)
SPAN_TILE(8, 1, 1, span_pre_8_1)
SPAN_TILE(4, 2, 1, span_pre_4_2)
SPAN_TILE(4, 1, 1, span_pre_4_1)
SPAN_TILE(1, 2, 1, span_pre_1_2)
SPAN_TILE(1, 1, 1, span_pre_1_1)
#undef SPAN_TILE

typedef void (*span_tile_fn)(int, float *restrict, size_t, const float *restrict, const float *restrict,
                             size_t, const float *restrict, const float *restrict, size_t, float *restrict,
                             size_t, const float *restrict, int, __mmask16, pf_cursor *);

/* Both entry points: pre selects the read-before-update tiles (bt: their
 * bonus coefficients, NULL → none). */
static inline void span_run(int K, int w, int n, float *restrict S, size_t lds, const float *restrict Qt,
                            const float *restrict Kt, size_t ldqk, const float *restrict bt,
                            const float *restrict v, size_t ldv, float *restrict o, size_t ldo,
                            const float *restrict Pn, const lat_span_pf *pf, int pre)
{
    pf_cursor pc;
    pf_init(&pc, pf);
    for (int j0 = 0; j0 < w; j0 += 32) {
        const int cols = w - j0 < 32 ? w - j0 : 32, U = cols > 16 ? 2 : 1;
        const __mmask16 ml = (__mmask16)((1u << (cols - 16 * (U - 1))) - 1u);
        const span_tile_fn f8 = pre ? (U == 2 ? span_pre_8_2 : span_pre_8_1) : (U == 2 ? span_tile_8_2 : span_tile_8_1);
        const span_tile_fn f4 = pre ? (U == 2 ? span_pre_4_2 : span_pre_4_1) : (U == 2 ? span_tile_4_2 : span_tile_4_1);
        const span_tile_fn f1 = pre ? (U == 2 ? span_pre_1_2 : span_pre_1_1) : (U == 2 ? span_tile_1_2 : span_tile_1_1);
        int i0 = 0;
        for (; i0 + 8 <= K; i0 += 8)
            f8(n, S + (size_t)i0 * lds + j0, lds, Qt + i0, Kt + i0, ldqk, bt, v + j0, ldv, o + j0, ldo,
               Pn ? Pn + i0 : NULL, i0 == 0, ml, &pc);
        for (; i0 + 4 <= K; i0 += 4)
            f4(n, S + (size_t)i0 * lds + j0, lds, Qt + i0, Kt + i0, ldqk, bt, v + j0, ldv, o + j0, ldo,
               Pn ? Pn + i0 : NULL, i0 == 0, ml, &pc);
        for (; i0 < K; i0++)
            f1(n, S + (size_t)i0 * lds + j0, lds, Qt + i0, Kt + i0, ldqk, bt, v + j0, ldv, o + j0, ldo,
               Pn ? Pn + i0 : NULL, i0 == 0, ml, &pc);
    }
    pf_finish(&pc);
}

#elif defined(__AVX2__) && defined(__FMA__)

static inline __m256i span_mask8(int r) /* first r (0..8) lanes set */
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx);
}

/* Tile of R rows × 16 columns (two vectors, masked by m[]). */
#define SPAN_TILE(R, PRE, NAME)                                                                 \
    static void NAME(int n, float *restrict S, size_t lds, const float *restrict Qt,            \
                     const float *restrict Kt, size_t ldqk, const float *restrict bt,           \
                     const float *restrict v, size_t ldv, float *restrict o, size_t ldo,        \
                     const float *restrict Pn, int first, const __m256i m[2], pf_cursor *pc)    \
    {                                                                                           \
        __m256 s[R][2];                                                                         \
        _Pragma("GCC unroll 16")                                                                \
        for (int r = 0; r < R; r++)                                                             \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < 2; u++)                                                         \
                s[r][u] = _mm256_maskload_ps(S + (size_t)r * lds + 8 * u, m[u]);                \
        for (int t = 0; t < n; t++) {                                                           \
            const float *kt = Kt + (size_t)t * ldqk, *qt = Qt + (size_t)t * ldqk;               \
            const float *vt = v + (size_t)t * ldv;                                              \
            float *ot = o + (size_t)t * ldo;                                                    \
            pf_step(pc), pf_step(pc);                                                           \
            __m256 vv[2], acc[2];                                                               \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < 2; u++) {                                                       \
                vv[u] = _mm256_maskload_ps(vt + 8 * u, m[u]);                                   \
                acc[u] = !first ? _mm256_maskload_ps(ot + 8 * u, m[u])                          \
                         : PRE && bt ? _mm256_mul_ps(_mm256_set1_ps(bt[t]), vv[u])              \
                                     : _mm256_setzero_ps();                                     \
            }                                                                                   \
            _Pragma("GCC unroll 16")                                                            \
            for (int r = 0; r < R; r++) {                                                       \
                const __m256 kr = _mm256_broadcast_ss(kt + r), qr = _mm256_broadcast_ss(qt + r); \
                _Pragma("GCC unroll 16")                                                        \
                for (int u = 0; u < 2; u++) {                                                   \
                    if (PRE) { /* read the state before the token's update */                  \
                        acc[u] = _mm256_fmadd_ps(qr, s[r][u], acc[u]);                          \
                        s[r][u] = _mm256_fmadd_ps(kr, vv[u], s[r][u]);                          \
                    } else {                                                                    \
                        s[r][u] = _mm256_fmadd_ps(kr, vv[u], s[r][u]);                          \
                        acc[u] = _mm256_fmadd_ps(qr, s[r][u], acc[u]);                          \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < 2; u++)                                                         \
                _mm256_maskstore_ps(ot + 8 * u, m[u], acc[u]);                                  \
        }                                                                                       \
        _Pragma("GCC unroll 16")                                                                \
        for (int r = 0; r < R; r++) {                                                           \
            const __m256 pr = _mm256_set1_ps(Pn ? Pn[r] : 1.0f);                                \
            _Pragma("GCC unroll 16")                                                            \
            for (int u = 0; u < 2; u++)                                                         \
                _mm256_maskstore_ps(S + (size_t)r * lds + 8 * u, m[u],                          \
                                    Pn ? _mm256_mul_ps(pr, s[r][u]) : s[r][u]);                 \
        }                                                                                       \
    }
SPAN_TILE(4, 0, span_tile_4)
SPAN_TILE(1, 0, span_tile_1)
SPAN_TILE(4, 1, span_pre_4)
SPAN_TILE(1, 1, span_pre_1)
#undef SPAN_TILE

/* Both entry points: pre selects the read-before-update tiles (bt: their
 * bonus coefficients, NULL → none). */
static inline void span_run(int K, int w, int n, float *restrict S, size_t lds, const float *restrict Qt,
                            const float *restrict Kt, size_t ldqk, const float *restrict bt,
                            const float *restrict v, size_t ldv, float *restrict o, size_t ldo,
                            const float *restrict Pn, const lat_span_pf *pf, int pre)
{
    pf_cursor pc;
    pf_init(&pc, pf);
    for (int j0 = 0; j0 < w; j0 += 16) {
        __m256i m[2];
        _Pragma("GCC unroll 16")                                                                \
        for (int u = 0; u < 2; u++) {
            const int r = w - j0 - 8 * u;
            m[u] = span_mask8(r < 0 ? 0 : r > 8 ? 8 : r);
        }
        int i0 = 0;
        for (; i0 + 4 <= K; i0 += 4)
            (pre ? span_pre_4 : span_tile_4)(n, S + (size_t)i0 * lds + j0, lds, Qt + i0, Kt + i0, ldqk, bt,
                                             v + j0, ldv, o + j0, ldo, Pn ? Pn + i0 : NULL, i0 == 0, m, &pc);
        for (; i0 < K; i0++)
            (pre ? span_pre_1 : span_tile_1)(n, S + (size_t)i0 * lds + j0, lds, Qt + i0, Kt + i0, ldqk, bt,
                                             v + j0, ldv, o + j0, ldo, Pn ? Pn + i0 : NULL, i0 == 0, m, &pc);
    }
    pf_finish(&pc);
}

#else

static inline void span_run(int K, int w, int n, float *restrict S, size_t lds, const float *restrict Qt,
                            const float *restrict Kt, size_t ldqk, const float *restrict bt,
                            const float *restrict v, size_t ldv, float *restrict o, size_t ldo,
                            const float *restrict Pn, const lat_span_pf *pf, int pre)
{
    pf_cursor pc;
    pf_init(&pc, pf);
    pf_finish(&pc);
    for (int t = 0; t < n; t++)
        for (int j = 0; j < w; j++)
            o[(size_t)t * ldo + (size_t)j] = pre && bt ? bt[t] * v[(size_t)t * ldv + (size_t)j] : 0.0f;
    for (int i = 0; i < K; i++) { /* one state row through the whole span */
        float *Si = S + (size_t)i * lds;
        for (int t = 0; t < n; t++) {
            const float kti = Kt[(size_t)t * ldqk + (size_t)i], qti = Qt[(size_t)t * ldqk + (size_t)i];
            const float *vt = v + (size_t)t * ldv;
            float *ot = o + (size_t)t * ldo;
            if (pre) {
                for (int j = 0; j < w; j++) { /* read the state before the token's update */
                    ot[j] += qti * Si[j];
                    Si[j] += kti * vt[j];
                }
                continue;
            }
            for (int j = 0; j < w; j++) {
                const float s = Si[j] + kti * vt[j];
                Si[j] = s;
                ot[j] += qti * s;
            }
        }
        if (Pn)
            for (int j = 0; j < w; j++)
                Si[j] *= Pn[i];
    }
}

#endif

void lat_span_run(int K, int w, int n, float *restrict S, size_t lds, const float *restrict Qt,
                  const float *restrict Kt, size_t ldqk, const float *restrict v, size_t ldv,
                  float *restrict o, size_t ldo, const float *restrict Pn, const lat_span_pf *pf)
{
    span_run(K, w, n, S, lds, Qt, Kt, ldqk, NULL, v, ldv, o, ldo, Pn, pf, 0);
}

void lat_span_run_pre(int K, int w, int n, float *restrict S, size_t lds, const float *restrict Qt,
                      const float *restrict Kt, size_t ldqk, const float *restrict bt,
                      const float *restrict v, size_t ldv, float *restrict o, size_t ldo,
                      const float *restrict Pn, const lat_span_pf *pf)
{
    span_run(K, w, n, S, lds, Qt, Kt, ldqk, bt, v, ldv, o, ldo, Pn, pf, 1);
}
