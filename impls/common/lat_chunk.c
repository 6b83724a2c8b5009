/* lat_chunk.c — the GLA-family engine (see lat_chunk.h): the recurrent step
 * kernel and the chunkwise form of spec/recurrent.md §0.4 / §2.5.
 *
 * Chunk algorithm, for a chunk of n ≤ C rows with packed Q (scaled), Kc, Vc
 * and log-decays g, entering state S [K][Vx]:
 *   b      = chunk-local inclusive cumsum of g              (rows, ≤ 0)
 *   A      = intra-chunk scores, lower triangle incl. diagonal:
 *              none   : (Q Kcᵀ) ∘ L                         (one GEMM)
 *              scalar : (Q Kcᵀ) ∘ e^{b_r − b_s}, r ≥ s      (one GEMM + exps)
 *              key    : secondary chunks of c rows; block (I, J<I) is the GEMM
 *                       (Q_I ⊙ e^{b_I − ρ_I})(Kc_J ⊙ e^{ρ_I − b_J})ᵀ with ρ_I
 *                       = b at the first row of I (both exponents ≤ 0); the
 *                       diagonal blocks element-wise in log space, or (option
 *                       diag_prod) by running products of α = e^{g} ≤ 1.
 *   O      = (Q ⊙ e^{b}) S + A Vc                           (two GEMMs)
 *   S      ← Diag(e^{b_n}) S + (Kc ⊙ e^{b_n − b})ᵀ Vc        (scale + GEMM)
 * Only non-positive numbers are exponentiated. b is accumulated in fp64 and
 * every exponent is one difference of it rounded once to fp32: with harsh
 * gates b reaches −440 within a chunk, and an fp32 cumsum would put an
 * absolute error of ~3e-5 on exponents near 0 (measured: chunk-form
 * rel_rmse 1.3e-6 → 9e-8). The fp64 sums are monotone, so b_r − b_s ≤ 0 for
 * r ≥ s holds exactly.
 *
 * Threads. "Fused": each thread owns a contiguous range of slices and walks
 * them chunk-major (chunk j of every slice, then j+1), states in L2 (fla
 * fused_chunk). "Split" (B·H too small or uneven for the threads): windows of
 * W chunks; pass 1 computes every chunk's state contribution ΔS_j and decay
 * in parallel, pass 2 scans the chunk-start states (element-wise, split over
 * state rows), pass 3 computes every chunk's output in parallel (fla chunk_h
 * + chunk_o, with the stored states bounded by the window).
 */
#include "lat_chunk.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

/* element offset r·ld of row r in a row-major matrix (ld floats per row) */
static inline size_t off(int r, int ld) { return (size_t)r * (size_t)ld; }

/* ------------------------------------------------------------------------- */
/* Recurrent step                                                            */
/* ------------------------------------------------------------------------- */

#if defined(__AVX512F__)
/* Columns [0, 16·NV) (the last vector masked by mlast); o kept in registers
 * across all K rows of S. */
#define STEP_BLOCK(NV)                                                                     \
    static void step_block##NV(int K, float *restrict S, size_t lds,                      \
                               const float *restrict alpha, const float *restrict k,      \
                               const float *restrict v, const float *restrict q,          \
                               float *restrict o, __mmask16 mlast)                        \
    {                                                                                      \
        __m512 vv[NV], acc[NV];                                                            \
        for (int u = 0; u < NV; u++) {                                                     \
            vv[u] = _mm512_maskz_loadu_ps(u == NV - 1 ? mlast : 0xFFFF, v + 16 * u);       \
            acc[u] = _mm512_setzero_ps();                                                  \
        }                                                                                  \
        for (int i = 0; i < K; i++) {                                                      \
            float *Si = S + (size_t)i * lds;                                               \
            const __m512 ki = _mm512_set1_ps(k[i]), qi = _mm512_set1_ps(q[i]);             \
            const __m512 ai = _mm512_set1_ps(alpha ? alpha[i] : 1.0f);                     \
            for (int u = 0; u < NV; u++) {                                                 \
                __mmask16 m = u == NV - 1 ? mlast : 0xFFFF;                                \
                __m512 s = _mm512_maskz_loadu_ps(m, Si + 16 * u);                          \
                s = _mm512_fmadd_ps(ki, vv[u], alpha ? _mm512_mul_ps(ai, s) : s);          \
                _mm512_mask_storeu_ps(Si + 16 * u, m, s);                                  \
                acc[u] = _mm512_fmadd_ps(qi, s, acc[u]);                                   \
            }                                                                              \
        }                                                                                  \
        for (int u = 0; u < NV; u++)                                                       \
            _mm512_mask_storeu_ps(o + 16 * u, u == NV - 1 ? mlast : 0xFFFF, acc[u]);       \
    }
STEP_BLOCK(1)
STEP_BLOCK(2)
STEP_BLOCK(3)
STEP_BLOCK(4)
#undef STEP_BLOCK

void lat_rec_step(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                  const float *restrict k, const float *restrict v, const float *restrict q,
                  float *restrict o)
{
    for (int j0 = 0; j0 < w; j0 += 64) {
        int rem = w - j0 < 64 ? w - j0 : 64;
        int nv = (rem + 15) / 16;
        __mmask16 mlast = (__mmask16)((1u << (rem - 16 * (nv - 1))) - 1u);
        switch (nv) {
        case 1: step_block1(K, S + j0, lds, alpha, k, v + j0, q, o + j0, mlast); break;
        case 2: step_block2(K, S + j0, lds, alpha, k, v + j0, q, o + j0, mlast); break;
        case 3: step_block3(K, S + j0, lds, alpha, k, v + j0, q, o + j0, mlast); break;
        default: step_block4(K, S + j0, lds, alpha, k, v + j0, q, o + j0, mlast); break;
        }
    }
}

#elif defined(__AVX2__) && defined(__FMA__)
/* 32 columns (4 × 8) per block; the tail block uses masked loads/stores. */
static inline __m256i tail_mask8(int r) /* first r (0..8) lanes set */
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx);
}

void lat_rec_step(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                  const float *restrict k, const float *restrict v, const float *restrict q,
                  float *restrict o)
{
    for (int j0 = 0; j0 < w; j0 += 32) {
        __m256i m[4];
        __m256 vv[4], acc[4];
        for (int u = 0; u < 4; u++) {
            int r = w - j0 - 8 * u;
            m[u] = tail_mask8(r < 0 ? 0 : r > 8 ? 8 : r);
            vv[u] = _mm256_maskload_ps(v + j0 + 8 * u, m[u]);
            acc[u] = _mm256_setzero_ps();
        }
        for (int i = 0; i < K; i++) {
            float *Si = S + (size_t)i * lds + j0;
            const __m256 ki = _mm256_set1_ps(k[i]), qi = _mm256_set1_ps(q[i]);
            const __m256 ai = _mm256_set1_ps(alpha ? alpha[i] : 1.0f);
            for (int u = 0; u < 4; u++) {
                __m256 s = _mm256_maskload_ps(Si + 8 * u, m[u]);
                s = _mm256_fmadd_ps(ki, vv[u], alpha ? _mm256_mul_ps(ai, s) : s);
                _mm256_maskstore_ps(Si + 8 * u, m[u], s);
                acc[u] = _mm256_fmadd_ps(qi, s, acc[u]);
            }
        }
        for (int u = 0; u < 4; u++)
            _mm256_maskstore_ps(o + j0 + 8 * u, m[u], acc[u]);
    }
}

#else
void lat_rec_step(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                  const float *restrict k, const float *restrict v, const float *restrict q,
                  float *restrict o)
{
    for (int j = 0; j < w; j++)
        o[j] = 0.0f;
    for (int i = 0; i < K; i++) {
        float *Si = S + (size_t)i * lds;
        const float a = alpha ? alpha[i] : 1.0f, ki = k[i], qi = q[i];
        for (int j = 0; j < w; j++) {
            float s = a * Si[j] + ki * v[j];
            Si[j] = s;
            o[j] += qi * s;
        }
    }
}
#endif

static int gcd_int(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int lat_rec_col_blocks(int BH, int Vx, int nthreads)
{
    if (nthreads <= 1 || BH % nthreads == 0 || BH >= 4 * nthreads)
        return 1;
    int nvb = nthreads / gcd_int(BH, nthreads);
    int max_vb = (Vx + 15) / 16;
    return nvb < max_vb ? nvb : max_vb;
}

void lat_rec_col_range(int Vx, int nvb, int vb, int *j0, int *j1)
{
    const int nb = (Vx + 15) / 16; /* 16-column groups, spread evenly */
    const int lo = nb * vb / nvb, hi = nb * (vb + 1) / nvb;
    *j0 = 16 * lo;
    *j1 = 16 * hi < Vx ? 16 * hi : Vx;
}

void lat_copy_block(float *restrict dst, size_t ldd, const float *restrict src, size_t lds,
                    int rows, int w)
{
    for (int i = 0; i < rows; i++) {
        if (src)
            memcpy(dst + (size_t)i * ldd, src + (size_t)i * lds, sizeof(float) * (size_t)w);
        else
            memset(dst + (size_t)i * ldd, 0, sizeof(float) * (size_t)w);
    }
}

int lat_useful_threads(double n_elem, int nthreads)
{
    double n = n_elem / 65536.0; /* ≈ 5 µs of state updates per thread */
    if (n < 1.0)
        return 1;
    return n < (double)nthreads ? (int)n : (nthreads > 0 ? nthreads : 1);
}

/* ------------------------------------------------------------------------- */
/* Chunk kernels (one chunk, one thread)                                     */
/* ------------------------------------------------------------------------- */

/* Per-thread scratch of the chunk engine. Row strides: K for Q/Kc/G/Gb/Qt/Kt
 * (one value per row for scalar decay), Vx for Vc/O, C for A. */
typedef struct cbuf {
    float *Q, *Kc, *Vc, *G, *Qt, *Kt, *A, *O, *d, *tmp;
    double *Gb; /* chunk-local inclusive cumsum b of the log-decays, fp64 */
    double *Gc; /* column log-weights when p->logw is set (rows in Gb)    */
} cbuf;

/* Execution plan: a pure function of the problem and the thread count, so
 * that lat_chunk_workspace and lat_chunk_run always agree. */
typedef struct plan {
    int nt;       /* threads used                                     */
    int C, c;     /* effective chunk (≤ T) and secondary chunk (≤ C)  */
    int nchunks;  /* ceil(T / C)                                      */
    int split;    /* 0 fused per slice, 1 split (see the header)      */
    int W;        /* split, causal: chunks per window                 */
    int nseg;     /* split, non-causal: key segments per slice        */
    size_t per_thread, off_split, total; /* workspace layout (bytes)  */
    size_t hbuf_floats, dbuf_floats, rbuf_floats;
} plan;

#define FL(n) lat_align64((size_t)(n) * (size_t)sizeof(float))
#define DB(n) lat_align64((size_t)(n) * (size_t)sizeof(double))

static plan make_plan(const lat_chunk_problem *p, int nthreads)
{
    plan pl;
    memset(&pl, 0, sizeof pl);
    pl.C = p->C < p->T ? p->C : p->T;
    if (pl.C < 1)
        pl.C = 1;
    pl.c = p->c < 1 ? pl.C : (p->c < pl.C ? p->c : pl.C);
    pl.nchunks = (p->T + pl.C - 1) / pl.C;
    pl.nt = lat_useful_threads((double)p->BH * p->T * p->K * p->Vx, nthreads);
    pl.split = pl.nt > 1 && p->BH % pl.nt != 0 && p->BH < 4 * pl.nt;
    size_t C = (size_t)pl.C, K = (size_t)p->K, Vx = (size_t)p->Vx;
    pl.per_thread = 5 * FL(C * K) + DB(C * K) + 2 * FL(C * Vx) + FL(C * C) + FL(K) +
                    FL(K > C ? K : C) + (p->logw ? DB(C) : 0);
    pl.off_split = pl.per_thread * (size_t)pl.nt;
    if (pl.split) {
        size_t BH = (size_t)p->BH;
        if (p->causal) {
            pl.W = 16; /* 1024 tokens per window at C = 64 */
            pl.hbuf_floats = BH * (size_t)pl.W * K * Vx;
            pl.dbuf_floats = BH * (size_t)pl.W * K;
        } else {
            pl.nseg = (pl.nt + p->BH - 1) / p->BH;
            pl.hbuf_floats = BH * (size_t)pl.nseg * K * Vx;
        }
    }
    pl.rbuf_floats = (size_t)p->BH * K * Vx; /* states when state_out is NULL */
    pl.total = pl.off_split + FL(pl.hbuf_floats) + FL(pl.dbuf_floats) + FL(pl.rbuf_floats);
    return pl;
}

static cbuf carve(const plan *pl, const lat_chunk_problem *p, void *work, int tid)
{
    size_t C = (size_t)pl->C, K = (size_t)p->K, Vx = (size_t)p->Vx;
    char *w = (char *)work + pl->per_thread * (size_t)tid;
    cbuf b;
    b.Gb = (double *)w; w += DB(C * K);
    b.Q = (float *)w;   w += FL(C * K);
    b.Kc = (float *)w;  w += FL(C * K);
    b.G = (float *)w;   w += FL(C * K);
    b.Qt = (float *)w;  w += FL(C * K);
    b.Kt = (float *)w;  w += FL(C * K);
    b.Vc = (float *)w;  w += FL(C * Vx);
    b.O = (float *)w;   w += FL(C * Vx);
    b.A = (float *)w;   w += FL(C * C);
    b.d = (float *)w;   w += FL(K);
    b.tmp = (float *)w; w += FL(K > C ? K : C);
    b.Gc = p->logw ? (double *)w : NULL;
    return b;
}

/* ---- exponent helpers: every exponent is a difference of fp64 cumsums
 * rounded once to fp32, so its error scales with the exponent itself and not
 * with the chunk's total log-decay (harsh gates reach −440 per chunk). */

/* y[i] = x[i] · e^{a[i] − c[i]}   (a ≤ c; c NULL → 0) */
static void mul_exp_diff(float *restrict y, const float *restrict x, const double *restrict a,
                         const double *restrict c, float *restrict tmp, int n)
{
    if (c)
        for (int i = 0; i < n; i++)
            tmp[i] = (float)(a[i] - c[i]);
    else
        for (int i = 0; i < n; i++)
            tmp[i] = (float)a[i];
    lat_vec_exp(tmp, tmp, (size_t)n);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * tmp[i];
}

/* Chunk-local inclusive cumsum of the log-decays, in fp64: Gb = cumsum(G). */
static void cumsum(const lat_chunk_problem *p, int n, const float *restrict G,
                   double *restrict Gb)
{
    const int K = p->decay == LAT_DECAY_KEY ? p->K : 1;
    if (p->decay == LAT_DECAY_NONE)
        return;
    for (int i = 0; i < K; i++)
        Gb[i] = G[i];
    for (int r = 1; r < n; r++)
        for (int i = 0; i < K; i++)
            Gb[(size_t)(r * K + i)] = Gb[(size_t)((r - 1) * K + i)] + G[(size_t)(r * K + i)];
}

/* Zero A[r][s] for s > r (s < n): the A·Vc GEMM reads the full n×n block. */
static void zero_upper(float *restrict A, int lda, int n)
{
    for (int r = 0; r + 1 < n; r++)
        memset(A + off(r, lda) + r + 1, 0, sizeof(float) * (size_t)(n - r - 1));
}

/* Diagonal sub-block rows r0..r1-1 (per-key decay), element-wise in log space:
 * A[r][s] = Σ_i Q[r][i] Kc[s][i] e^{b[r][i] − b[s][i]}, r0 ≤ s ≤ r. */
#if defined(__AVX512F__)
static inline __m512 diff16(const double *a, const double *c, __mmask8 m0, __mmask8 m1)
{
    __m256 lo = _mm512_cvtpd_ps(
        _mm512_sub_pd(_mm512_maskz_loadu_pd(m0, a), _mm512_maskz_loadu_pd(m0, c)));
    __m256 hi = _mm512_cvtpd_ps(
        _mm512_sub_pd(_mm512_maskz_loadu_pd(m1, a + 8), _mm512_maskz_loadu_pd(m1, c + 8)));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

static void diag_block_key(int K, int r0, int r1, const float *restrict Q,
                           const float *restrict Kc, const double *restrict Gb,
                           float *restrict A, int lda, float *restrict tmp)
{
    (void)tmp;
    for (int r = r0; r < r1; r++) {
        const float *Qr = Q + off(r, K);
        const double *Br = Gb + off(r, K);
        for (int s = r0; s <= r; s++) {
            const float *Ks = Kc + off(s, K);
            const double *Bs = Gb + off(s, K);
            __m512 acc = _mm512_setzero_ps();
            for (int i = 0; i < K; i += 16) {
                const int rem = K - i < 16 ? K - i : 16;
                const __mmask16 m = (__mmask16)((1u << rem) - 1u);
                const __mmask8 m0 = (__mmask8)(m & 0xFF), m1 = (__mmask8)(m >> 8);
                __m512 e = lat_exp16(diff16(Br + i, Bs + i, m0, m1));
                __m512 qk =
                    _mm512_mul_ps(_mm512_maskz_loadu_ps(m, Qr + i), _mm512_maskz_loadu_ps(m, Ks + i));
                acc = _mm512_fmadd_ps(qk, e, acc);
            }
            A[off(r, lda) + (size_t)s] = _mm512_reduce_add_ps(acc);
        }
    }
}
#else
static void diag_block_key(int K, int r0, int r1, const float *restrict Q,
                           const float *restrict Kc, const double *restrict Gb,
                           float *restrict A, int lda, float *restrict tmp)
{
    for (int r = r0; r < r1; r++) {
        const float *Qr = Q + off(r, K);
        const double *Br = Gb + off(r, K);
        for (int s = r0; s <= r; s++) {
            const double *Bs = Gb + off(s, K);
            for (int i = 0; i < K; i++)
                tmp[i] = (float)(Br[i] - Bs[i]);
            lat_vec_exp(tmp, tmp, (size_t)K);
            for (int i = 0; i < K; i++)
                tmp[i] *= Qr[i];
            A[off(r, lda) + (size_t)s] = lat_vec_dot(tmp, Kc + off(s, K), (size_t)K);
        }
    }
}
#endif

/* Same block by running products instead (lat_chunk_problem.diag_prod):
 * e^{b_r − b_s} = Π_{u=s+1..r} α_u with α = e^{g} ≤ 1, so for a fixed query
 * row r the weights W_s = Q_r ⊙ e^{b_r − b_s} follow W_{s} = W_{s+1} ⊙ α_{s+1}
 * going down from W_r = Q_r. Nothing above 1 is formed; the rounding error is
 * (r − s) ulp at most, independent of the chunk's total log-decay. */
static void diag_block_prod(int K, int r0, int r1, const float *restrict Q,
                            const float *restrict Kc, const float *restrict alpha,
                            float *restrict A, int lda, float *restrict W)
{
    for (int r = r0; r < r1; r++) {
        memcpy(W, Q + off(r, K), sizeof(float) * (size_t)K);
        A[off(r, lda) + (size_t)r] = lat_vec_dot(W, Kc + off(r, K), (size_t)K);
        for (int s = r - 1; s >= r0; s--) {
            const float *a = alpha + off(s + 1, K);
            for (int i = 0; i < K; i++)
                W[i] *= a[i];
            A[off(r, lda) + (size_t)s] = lat_vec_dot(W, Kc + off(s, K), (size_t)K);
        }
    }
}

/* A = intra-chunk scores of an n-row chunk (lower triangle incl. diagonal;
 * zeros above). Uses b->Qt and b->Kt as temporaries. */
static void intra_scores(const lat_chunk_problem *p, const plan *pl, int n, cbuf *b)
{
    const int K = p->K, lda = pl->C;
    if (p->decay != LAT_DECAY_KEY) {
        lat_sgemm('N', 'T', n, n, K, 1.0f, b->Q, K, b->Kc, K, 0.0f, b->A, lda);
        if (p->decay == LAT_DECAY_SCALAR)
            for (int r = 0; r < n; r++) { /* A[r][s] *= e^{b_r − b_s}, s ≤ r */
                float *Ar = b->A + off(r, lda);
                for (int s = 0; s <= r; s++)
                    b->tmp[s] = (float)(b->Gb[r] - (b->Gc ? b->Gc[s] : b->Gb[s]));
                lat_vec_exp(b->tmp, b->tmp, (size_t)(r + 1));
                for (int s = 0; s <= r; s++)
                    Ar[s] *= b->tmp[s];
            }
        zero_upper(b->A, lda, n);
        return;
    }
    const int c = pl->c;
    if (p->diag_prod) /* α = e^{g} over the raw gates (the cumsum is in Gb) */
        lat_vec_exp(b->G, b->G, off(n, K));
    for (int r0 = 0; r0 < n; r0 += c) {
        const int r1 = r0 + c < n ? r0 + c : n;
        const double *rho = b->Gb + off(r0, K); /* reference row of sub-chunk I */
        if (r0 > 0) {
            /* Qt rows of I = Q_I ⊙ e^{b_I − ρ};  Kt rows < r0 = Kc ⊙ e^{ρ − b} */
            for (int r = r0; r < r1; r++)
                mul_exp_diff(b->Qt + off(r, K), b->Q + off(r, K), b->Gb + off(r, K), rho,
                             b->tmp, K);
            for (int s = 0; s < r0; s++)
                mul_exp_diff(b->Kt + off(s, K), b->Kc + off(s, K), rho, b->Gb + off(s, K),
                             b->tmp, K);
            lat_sgemm('N', 'T', r1 - r0, r0, K, 1.0f, b->Qt + off(r0, K), K, b->Kt, K, 0.0f,
                      b->A + off(r0, lda), lda);
        }
        if (p->diag_prod)
            diag_block_prod(K, r0, r1, b->Q, b->Kc, b->G, b->A, lda, b->tmp);
        else
            diag_block_key(K, r0, r1, b->Q, b->Kc, b->Gb, b->A, lda, b->tmp);
    }
    zero_upper(b->A, lda, n);
}

/* O = (Q ⊙ e^{b}) S + A Vc   (S NULL → the state term is skipped). */
static void chunk_output(const lat_chunk_problem *p, const plan *pl, int n, cbuf *b,
                         const float *S)
{
    const int K = p->K, Vx = p->Vx;
    if (S) {
        const float *Qt = b->Q;
        if (p->decay == LAT_DECAY_KEY) {
            for (int r = 0; r < n; r++)
                mul_exp_diff(b->Qt + off(r, K), b->Q + off(r, K), b->Gb + off(r, K), NULL,
                             b->tmp, K);
            Qt = b->Qt;
        } else if (p->decay == LAT_DECAY_SCALAR) {
            for (int r = 0; r < n; r++)
                b->tmp[r] = (float)b->Gb[r];
            lat_vec_exp(b->tmp, b->tmp, (size_t)n);
            for (int r = 0; r < n; r++)
                for (int i = 0; i < K; i++)
                    b->Qt[(size_t)(r * K + i)] = b->Q[(size_t)(r * K + i)] * b->tmp[r];
            Qt = b->Qt;
        }
        lat_sgemm('N', 'N', n, Vx, K, 1.0f, Qt, K, S, Vx, 0.0f, b->O, Vx);
    }
    lat_sgemm('N', 'N', n, Vx, n, 1.0f, b->A, pl->C, b->Vc, Vx, S ? 1.0f : 0.0f, b->O, Vx);
}

/* Kt = Kc ⊙ e^{b_n − b} and d = e^{b_n}; returns the key matrix of the state
 * update (Kc itself when there is no decay). */
static const float *state_keys(const lat_chunk_problem *p, int n, cbuf *b)
{
    const int K = p->K;
    if (p->decay == LAT_DECAY_NONE)
        return b->Kc;
    if (p->decay == LAT_DECAY_SCALAR) {
        const double last = b->Gb[n - 1];
        for (int s = 0; s < n; s++)
            b->tmp[s] = (float)(last - (b->Gc ? b->Gc[s] : b->Gb[s]));
        lat_vec_exp(b->tmp, b->tmp, (size_t)n);
        for (int s = 0; s < n; s++)
            for (int i = 0; i < K; i++)
                b->Kt[(size_t)(s * K + i)] = b->Kc[(size_t)(s * K + i)] * b->tmp[s];
        for (int i = 0; i < K; i++)
            b->d[i] = (float)last;
    } else {
        const double *last = b->Gb + off(n - 1, K);
        for (int s = 0; s < n; s++)
            mul_exp_diff(b->Kt + off(s, K), b->Kc + off(s, K), last, b->Gb + off(s, K),
                         b->tmp, K);
        for (int i = 0; i < K; i++)
            b->d[i] = (float)last[i];
    }
    lat_vec_exp(b->d, b->d, (size_t)K);
    return b->Kt;
}

/* S ← Diag(d) S + Ktᵀ Vc. */
static void state_update(const lat_chunk_problem *p, int n, cbuf *b, float *S)
{
    const int K = p->K, Vx = p->Vx;
    const float *Kt = state_keys(p, n, b);
    if (p->decay != LAT_DECAY_NONE)
        for (int i = 0; i < K; i++)
            lat_vec_scale(S + off(i, Vx), b->d[i], (size_t)Vx);
    lat_sgemm('T', 'N', K, Vx, n, 1.0f, Kt, K, b->Vc, Vx, 1.0f, S, Vx);
}

static int chunk_rows(const plan *pl, const lat_chunk_problem *p, int j)
{
    int t0 = j * pl->C;
    return p->T - t0 < pl->C ? p->T - t0 : pl->C;
}

static void load_chunk(const lat_chunk_problem *p, const plan *pl, int bh, int j, int n, cbuf *b)
{
    p->pack(p->ctx, bh, j * pl->C, n, b->Q, b->Kc, b->Vc, b->G);
    if (p->logw)
        p->logw(p->ctx, bh, j * pl->C, n, b->Gb, b->Gc);
    else
        cumsum(p, n, b->G, b->Gb);
}

/* Copy the initial state of slice bh into R (zeros when there is none). */
static void state_init(const lat_chunk_problem *p, int bh, float *R)
{
    size_t n = (size_t)p->K * (size_t)p->Vx;
    const float *S0 = p->state_in ? p->state_in + (size_t)bh * n : NULL;
    if (!S0)
        memset(R, 0, n * sizeof(float));
    else if (S0 != R)
        memcpy(R, S0, n * sizeof(float));
}

/* ------------------------------------------------------------------------- */
/* Drivers                                                                   */
/* ------------------------------------------------------------------------- */

/* The running state of slice bh: state_out when requested, else scratch. */
static float *slice_state(const lat_chunk_problem *p, float *Rbuf, int bh)
{
    return (p->state_out ? p->state_out : Rbuf) + off(bh, p->K * p->Vx);
}

/* Slices [lo, hi) on one thread, chunk-major: chunk j of every slice, then
 * chunk j+1. The states stay in L2, and the rows of one time step (H·K
 * floats apart in memory) are consumed together instead of one 4·K-byte
 * piece per DRAM page visit (≈ 1.4× faster at H = 8 than slice-major). */
static void fused_slices(const lat_chunk_problem *p, const plan *pl, int lo, int hi, cbuf *b,
                         float *Rbuf)
{
    for (int bh = lo; bh < hi; bh++)
        state_init(p, bh, slice_state(p, Rbuf, bh));
    if (p->causal) {
        for (int j = 0; j < pl->nchunks; j++) {
            const int n = chunk_rows(pl, p, j);
            for (int bh = lo; bh < hi; bh++) {
                float *R = slice_state(p, Rbuf, bh);
                load_chunk(p, pl, bh, j, n, b);
                intra_scores(p, pl, n, b);
                chunk_output(p, pl, n, b, R);
                p->emit(p->ctx, bh, j * pl->C, n, b->O);
                state_update(p, n, b, R);
            }
        }
        return;
    }
    /* non-causal: R = S0 + Σ Kcᵀ Vc, then O = Q R for every chunk */
    for (int j = 0; j < pl->nchunks; j++) {
        const int n = chunk_rows(pl, p, j);
        for (int bh = lo; bh < hi; bh++) {
            load_chunk(p, pl, bh, j, n, b);
            state_update(p, n, b, slice_state(p, Rbuf, bh));
        }
    }
    for (int j = 0; j < pl->nchunks; j++) {
        const int n = chunk_rows(pl, p, j);
        for (int bh = lo; bh < hi; bh++) {
            const float *R = slice_state(p, Rbuf, bh);
            load_chunk(p, pl, bh, j, n, b);
            lat_sgemm('N', 'N', n, p->Vx, p->K, 1.0f, b->Q, p->K, R, p->Vx, 0.0f, b->O, p->Vx);
            p->emit(p->ctx, bh, j * pl->C, n, b->O);
        }
    }
}

/* Split causal form. Hbuf [BH][W][K][Vx] holds ΔS_j after pass 1 and the
 * chunk-start state after pass 2; Dbuf [BH][W][K] the chunk decays. */
static void split_causal(const lat_chunk_problem *p, const plan *pl, cbuf *b, float *Hbuf,
                         float *Dbuf, float *Rbuf)
{
    const int BH = p->BH, K = p->K, Vx = p->Vx, W = pl->W, nt = pl->nt;
    const size_t KV = off(K, Vx);

#pragma omp for schedule(static)
    for (int bh = 0; bh < BH; bh++)
        state_init(p, bh, slice_state(p, Rbuf, bh));

    for (int w0 = 0; w0 < pl->nchunks; w0 += W) {
        const int nw = pl->nchunks - w0 < W ? pl->nchunks - w0 : W;
        /* pass 1: ΔS_j = Ktᵀ Vc and d_j, all chunks of the window */
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < BH * nw; it++) {
            int bh = it / nw, jj = it % nw, j = w0 + jj, n = chunk_rows(pl, p, j);
            float *H = Hbuf + (off(bh, W) + (size_t)jj) * KV;
            load_chunk(p, pl, bh, j, n, b);
            const float *Kt = state_keys(p, n, b);
            lat_sgemm('T', 'N', K, Vx, n, 1.0f, Kt, K, b->Vc, Vx, 0.0f, H, Vx);
            if (p->decay != LAT_DECAY_NONE)
                memcpy(Dbuf + (off(bh, W) + (size_t)jj) * (size_t)K, b->d,
                       sizeof(float) * (size_t)K);
        }
        /* pass 2: chunk-start states, element-wise, split over rows */
#pragma omp for schedule(static)
        for (int it = 0; it < BH * nt; it++) {
            int bh = it / nt;
            long i0, i1;
            lat_split(K, it % nt, nt, &i0, &i1);
            float *R = slice_state(p, Rbuf, bh);
            for (int jj = 0; jj < nw; jj++) {
                float *H = Hbuf + (off(bh, W) + (size_t)jj) * KV;
                const float *d = Dbuf + (off(bh, W) + (size_t)jj) * (size_t)K;
                for (long i = i0; i < i1; i++) {
                    float *Hi = H + (size_t)i * (size_t)Vx, *Ri = R + (size_t)i * (size_t)Vx;
                    const float di = p->decay != LAT_DECAY_NONE ? d[i] : 1.0f;
                    for (int x = 0; x < Vx; x++) {
                        float delta = Hi[x];
                        Hi[x] = Ri[x];
                        Ri[x] = di * Ri[x] + delta;
                    }
                }
            }
        }
        /* pass 3: outputs of all chunks of the window */
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < BH * nw; it++) {
            int bh = it / nw, jj = it % nw, j = w0 + jj, n = chunk_rows(pl, p, j);
            load_chunk(p, pl, bh, j, n, b);
            intra_scores(p, pl, n, b);
            chunk_output(p, pl, n, b, Hbuf + (off(bh, W) + (size_t)jj) * KV);
            p->emit(p->ctx, bh, j * pl->C, n, b->O);
        }
    }
}

/* Split non-causal form: partial key sums per (slice, segment), reduction,
 * then every chunk's readout. Pbuf [BH][nseg][K][Vx]. */
static void split_noncausal(const lat_chunk_problem *p, const plan *pl, cbuf *b, float *Pbuf,
                            float *Rbuf)
{
    const int BH = p->BH, K = p->K, Vx = p->Vx, nseg = pl->nseg, nt = pl->nt;
    const size_t KV = off(K, Vx);

#pragma omp for schedule(static)
    for (int it = 0; it < BH * nseg; it++) {
        int bh = it / nseg;
        long j0, j1;
        lat_split(pl->nchunks, it % nseg, nseg, &j0, &j1);
        float *P = Pbuf + (size_t)it * KV;
        memset(P, 0, KV * sizeof(float));
        for (long j = j0; j < j1; j++) {
            int n = chunk_rows(pl, p, (int)j);
            load_chunk(p, pl, bh, (int)j, n, b);
            lat_sgemm('T', 'N', K, Vx, n, 1.0f, b->Kc, K, b->Vc, Vx, 1.0f, P, Vx);
        }
    }
#pragma omp for schedule(static)
    for (int it = 0; it < BH * nt; it++) {
        int bh = it / nt;
        long i0, i1;
        lat_split(K, it % nt, nt, &i0, &i1);
        float *R = slice_state(p, Rbuf, bh);
        const float *S0 = p->state_in ? p->state_in + (size_t)bh * KV : NULL;
        for (size_t e = (size_t)i0 * (size_t)Vx; e < (size_t)i1 * (size_t)Vx; e++) {
            float acc = S0 ? S0[e] : 0.0f;
            for (int sg = 0; sg < nseg; sg++)
                acc += Pbuf[(off(bh, nseg) + (size_t)sg) * KV + e];
            R[e] = acc;
        }
    }
#pragma omp for schedule(dynamic, 1)
    for (int it = 0; it < BH * pl->nchunks; it++) {
        int bh = it / pl->nchunks, j = it % pl->nchunks, n = chunk_rows(pl, p, j);
        const float *R = slice_state(p, Rbuf, bh);
        load_chunk(p, pl, bh, j, n, b);
        lat_sgemm('N', 'N', n, Vx, K, 1.0f, b->Q, K, R, Vx, 0.0f, b->O, Vx);
        p->emit(p->ctx, bh, j * pl->C, n, b->O);
    }
}

size_t lat_chunk_workspace(const lat_chunk_problem *p, int nthreads)
{
    return make_plan(p, nthreads).total;
}

lat_status lat_chunk_run(const lat_chunk_problem *p, void *work, size_t work_bytes, int nthreads)
{
    if (!p->pack || !p->emit || p->K < 1 || p->Vx < 1 || p->BH < 1 || p->T < 1)
        return LAT_EINVAL;
    if (!p->causal && p->decay != LAT_DECAY_NONE)
        return LAT_EINVAL;
    if (p->logw && p->decay != LAT_DECAY_SCALAR)
        return LAT_EINVAL;
    const plan pl = make_plan(p, nthreads);
    if (!work || work_bytes < pl.total)
        return LAT_ENOMEM;
    float *Hbuf = (float *)((char *)work + pl.off_split);
    float *Dbuf = (float *)((char *)Hbuf + FL(pl.hbuf_floats));
    float *Rbuf = (float *)((char *)Dbuf + FL(pl.dbuf_floats));

#pragma omp parallel num_threads(pl.nt) if (pl.nt > 1)
    {
        cbuf b = carve(&pl, p, work, lat_thread_id());
        if (!pl.split) {
            long lo, hi;
            lat_split(p->BH, lat_thread_id(), pl.nt, &lo, &hi);
            fused_slices(p, &pl, (int)lo, (int)hi, &b, Rbuf);
        } else if (p->causal) {
            split_causal(p, &pl, &b, Hbuf, Dbuf, Rbuf);
        } else {
            split_noncausal(p, &pl, &b, Hbuf, Rbuf);
        }
    }
    return LAT_OK;
}
