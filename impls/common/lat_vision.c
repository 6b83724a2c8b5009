/* lat_vision.c — the vision linear-attention engine (see lat_vision.h).
 *
 * A call runs in up to three steps:
 *   1. pre-passes over tokens (threads over (b, t) or (b, h, q|k|v)):
 *      FLatten's two focusing scalars per token for q and for k (norms over
 *      all heads), EfficientViT's aggregated heads (depthwise conv on the
 *      grid or causal 1-D, then the grouped pointwise conv as GEMMs);
 *   2. the form proper over B·Ho slices: feature rows are built on the fly
 *      from the inputs (pack), [Num | Den] rows come out of GEMMs or
 *      lat_rec_step, and emit divides, then adds the DWC rows (the
 *      non-causal parallel form: numerators in a scratch block, then one
 *      fused o = num/den + DWC pass over all heads; see parallel_noncausal);
 *   3. causal calls with state_out: linear states, then the conv tails
 *      (written last: emit reads the old tails, which may alias them).
 */
#include "lat_vision.h"
#include "../../reference/reference.h"

#include <stdlib.h>

#define FL(n) lat_align64((size_t)(n) * sizeof(float))

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Part `part` of `parts` of a span of n floats into L2 (prefetcht1): the
 * parallel form fetches the next sub-block's token rows this way, a slice
 * before each head's GEMM, so the DRAM streams are under way before the
 * feature pass needs them (A/B: ≈ 10 % more CPU time without it). */
static inline void prefetch_span_l2(const float *x, size_t n, int part, int parts)
{
    const size_t lines = (n + 15) / 16, l0 = lines * (size_t)part / (size_t)parts,
                 l1 = lines * (size_t)(part + 1) / (size_t)parts;
    for (size_t l = l0; l < l1; l++)
        __builtin_prefetch(x + 16 * l, 0, 2);
}

/* ------------------------------------------------------------------------- */
/* Grid and depthwise convolutions                                           */
/* ------------------------------------------------------------------------- */

void lat_grid(int T, int *Hs, int *Ws)
{
    int h = (int)floor(sqrt((double)T));
    while (h > 1 && T % h != 0)
        h--;
    if (h < 1)
        h = 1;
    *Hs = h;
    *Ws = T / h;
}

void lat_dwc_transpose(float *restrict wT, const float *restrict w, int ch, int taps)
{
    for (int c = 0; c < ch; c++)
        for (int u = 0; u < taps; u++)
            wT[(size_t)u * (size_t)ch + (size_t)c] = w[(size_t)c * (size_t)taps + (size_t)u];
}

/* The convolutions keep a block of BW output channels in registers across
 * all taps: fixed-width loops of fmaf (the build's -std=c11 turns off FMA
 * contraction, fmaf asks for it explicitly) that the compiler turns into
 * vector FMAs. One kernel per block width, then a scalar tail. */
#define DWC_BLOCK(BW)                                                                          \
    static inline void dwc2d_block##BW(int Hs, int Ws, int k, int ch, const float *restrict wT,  \
                                       const float *restrict bias, const float *restrict x,     \
                                       size_t ldx, float *ot, const float *oin, int y, int xc,   \
                                       int c0, int add, float os)                                \
    {                                                                                            \
        const int r = k / 2;                                                                     \
        const int a0 = imax(0, r - y), a1 = imin(k, Hs - y + r);                                 \
        const int e0 = imax(0, r - xc), e1 = imin(k, Ws - xc + r);                               \
        float acc[BW];                                                                           \
        for (int c = 0; c < BW; c++)                                                             \
            acc[c] = (add ? oin[c0 + c] * os : 0.0f) + (bias ? bias[c0 + c] : 0.0f);             \
        for (int a = a0; a < a1; a++) {                                                          \
            const float *xr = x + ((size_t)(y + a - r) * (size_t)Ws + (size_t)(xc + e0 - r)) * ldx \
                              + c0;                                                              \
            const float *wr = wT + (size_t)(a * k + e0) * (size_t)ch + c0;                       \
            for (int e = e0; e < e1; e++, xr += ldx, wr += ch)                                   \
                for (int c = 0; c < BW; c++)                                                     \
                    acc[c] = fmaf(wr[c], xr[c], acc[c]);                                         \
        }                                                                                        \
        for (int c = 0; c < BW; c++)                                                             \
            ot[c0 + c] = acc[c];                                                                 \
    }                                                                                            \
    static inline void dwc1d_block##BW(int k, int ch, const float *restrict wT,                  \
                                       const float *restrict bias, const float *restrict x,     \
                                       size_t ldx, const float *restrict tail, size_t ldt,       \
                                       float *restrict ot, int t, int c0, int add)               \
    {                                                                                            \
        float acc[BW];                                                                           \
        for (int c = 0; c < BW; c++)                                                             \
            acc[c] = (add ? ot[c0 + c] : 0.0f) + (bias ? bias[c0 + c] : 0.0f);                   \
        for (int u = 0; u < k; u++) {                                                            \
            const int tt = t - u;                                                                \
            const float *xs = tt >= 0 ? x + (size_t)tt * ldx                                     \
                                      : (tail ? tail + (size_t)(-1 - tt) * ldt : NULL);          \
            if (!xs)                                                                             \
                continue;                                                                        \
            const float *wr = wT + (size_t)u * (size_t)ch + c0;                                  \
            for (int c = 0; c < BW; c++)                                                         \
                acc[c] = fmaf(wr[c], xs[c0 + c], acc[c]);                                        \
        }                                                                                        \
        for (int c = 0; c < BW; c++)                                                             \
            ot[c0 + c] = acc[c];                                                                 \
    }
DWC_BLOCK(64)
DWC_BLOCK(16)
DWC_BLOCK(1)
#undef DWC_BLOCK

void lat_dwc2d_rows(int Hs, int Ws, int k, int ch, const float *restrict wT,
                    const float *restrict bias, const float *restrict x, size_t ldx,
                    float *restrict o, size_t ldo, int t0, int t1, int add)
{
    for (int t = t0; t < t1; t++) {
        const int y = t / Ws, xc = t % Ws;
        float *ot = o + (size_t)t * ldo;
        int c0 = 0;
        for (; c0 + 64 <= ch; c0 += 64)
            dwc2d_block64(Hs, Ws, k, ch, wT, bias, x, ldx, ot, ot, y, xc, c0, add, 1.0f);
        for (; c0 + 16 <= ch; c0 += 16)
            dwc2d_block16(Hs, Ws, k, ch, wT, bias, x, ldx, ot, ot, y, xc, c0, add, 1.0f);
        for (; c0 < ch; c0++)
            dwc2d_block1(Hs, Ws, k, ch, wT, bias, x, ldx, ot, ot, y, xc, c0, add, 1.0f);
    }
}

/* Column tiles of DWC_CT outputs, all rows of the range in each tile: the
 * k source rows of a tile (all heads) stay in L2, where whole grid rows of
 * all heads (k·Ws·H·V floats) would not. */
#define DWC_CT 16

/* Register-blocked interior kernel (k = 3, 5, 7): DWC_NO adjacent output
 * columns of one head and one vector of channels at once, the k weight
 * vectors of a kernel row in registers, each source column loaded once per
 * kernel row for all the outputs it feeds ((k + DWC_NO − 1) + k loads for
 * k·DWC_NO FMAs, against 2 loads per FMA one output at a time). Same taps in
 * the same order as dwc2d_block*, so the result is bitwise that of the
 * generic path. AVX-512: 16 channels, masked tail; AVX2: 8 channels, whole
 * vectors only (ch % 8 == 0, else the generic path). */
#define DWC_NO 8
#if defined(__AVX512F__)
#include <immintrin.h>
#define DWC_VW 16
typedef __m512 dwc_vec;
typedef __mmask16 dwc_mask;
#define DWC_LOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define DWC_STORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define DWC_STREAM(p, v) _mm512_stream_ps(p, v)
#define DWC_FMA _mm512_fmadd_ps
#define DWC_ADD _mm512_add_ps
#define DWC_MUL _mm512_mul_ps
#define DWC_SET1 _mm512_set1_ps
#define DWC_ZERO _mm512_setzero_ps
#define DWC_MASK(n) ((n) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n)) - 1u))
#define DWC_CH_OK(ch) 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DWC_VW 8
typedef __m256 dwc_vec;
typedef int dwc_mask;
#define DWC_LOAD(p, m) ((void)(m), _mm256_loadu_ps(p))
#define DWC_STORE(p, m, v) ((void)(m), _mm256_storeu_ps(p, v))
#define DWC_STREAM(p, v) _mm256_stream_ps(p, v)
#define DWC_FMA _mm256_fmadd_ps
#define DWC_ADD _mm256_add_ps
#define DWC_MUL _mm256_mul_ps
#define DWC_SET1 _mm256_set1_ps
#define DWC_ZERO _mm256_setzero_ps
#define DWC_MASK(n) 0
#define DWC_CH_OK(ch) ((ch) % 8 == 0)
#endif

#ifdef DWC_VW
/* rows[a] (a ∈ [a0, a1)): kernel row a's source at column xc − r, lds floats
 * between columns; o, oi: output xc and its old value (ldo, ldi floats to the
 * next output); os: the scales of the DWC_NO old values (NULL: 1); nts:
 * non-temporal stores (whole aligned vectors: the caller checks).
 * (Row pointers rather than (x, y): GCC keeps the accumulators in registers
 * across the kernel rows, where the (x, y) form spilled them every row.) */
#define DWC_GROUP(KS)                                                                             \
    static void dwc_group##KS(const float *restrict wT, int ch, const float *restrict bias,        \
                              const float *const *rows, size_t lds, float *o, size_t ldo,         \
                              const float *oi, size_t ldi, int a0, int a1, int c0, dwc_mask m,    \
                              int add, const float *restrict os, int nts)                         \
    {                                                                                             \
        dwc_vec acc[DWC_NO];                                                                      \
        const dwc_vec bv = bias ? DWC_LOAD(bias + c0, m) : DWC_ZERO();                            \
        _Pragma("GCC unroll 8") for (int j = 0; j < DWC_NO; j++) {                                \
            dwc_vec init = DWC_ZERO();                                                            \
            if (add) {                                                                            \
                init = DWC_LOAD(oi + (size_t)j * ldi + c0, m);                                    \
                if (os)                                                                           \
                    init = DWC_MUL(init, DWC_SET1(os[j]));                                        \
            }                                                                                     \
            acc[j] = DWC_ADD(init, bv);                                                           \
        }                                                                                         \
        for (int a = a0; a < a1; a++) {                                                           \
            dwc_vec w[KS];                                                                        \
            _Pragma("GCC unroll 9") for (int e = 0; e < KS; e++)                                  \
                w[e] = DWC_LOAD(wT + (size_t)(a * KS + e) * (size_t)ch + c0, m);                  \
            const float *xr = rows[a];                                                            \
            _Pragma("GCC unroll 16") for (int sc = 0; sc < DWC_NO + KS - 1; sc++) {               \
                const dwc_vec xv = DWC_LOAD(xr + (size_t)sc * lds, m);                            \
                _Pragma("GCC unroll 8") for (int j = 0; j < DWC_NO; j++) {                        \
                    const int e = sc - j;                                                         \
                    if (e >= 0 && e < KS)                                                         \
                        acc[j] = DWC_FMA(w[e], xv, acc[j]);                                       \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        if (nts)                                                                                  \
            _Pragma("GCC unroll 8") for (int j = 0; j < DWC_NO; j++)                              \
                DWC_STREAM(o + (size_t)j * ldo + c0, acc[j]);                                     \
        else                                                                                      \
            _Pragma("GCC unroll 8") for (int j = 0; j < DWC_NO; j++)                              \
                DWC_STORE(o + (size_t)j * ldo + c0, m, acc[j]);                                   \
    }
DWC_GROUP(3)
DWC_GROUP(5)
DWC_GROUP(7)
#undef DWC_GROUP
#endif

/* One output (y, xc) of one head, all channels, the generic kernels: ot =
 * os·oin + bias + taps (oin: the old value, ot itself or elsewhere). */
static inline void dwc2d_one(int Hs, int Ws, int k, int ch, const float *restrict wT, const float *restrict bias,
                             const float *restrict x, size_t ldx, float *ot, const float *oin, int y, int xc,
                             int add, float os)
{
    int c0 = 0;
    for (; c0 + 64 <= ch; c0 += 64)
        dwc2d_block64(Hs, Ws, k, ch, wT, bias, x, ldx, ot, oin, y, xc, c0, add, os);
    for (; c0 + 16 <= ch; c0 += 16)
        dwc2d_block16(Hs, Ws, k, ch, wT, bias, x, ldx, ot, oin, y, xc, c0, add, os);
    for (; c0 < ch; c0++)
        dwc2d_block1(Hs, Ws, k, ch, wT, bias, x, ldx, ot, oin, y, xc, c0, add, os);
}

/* Where dwc2d_heads finds the old output values it adds (add = 1): the
 * outputs themselves, or (src) a separate buffer, value of (head h, row t)
 * at src[h·hs + (t − t0)·ld]; each scaled by scale[h·sh + t − t0] (scale
 * NULL: 1). stream: write the outputs with non-temporal stores where whole
 * 64-byte-aligned vectors allow (the parallel form: o is written once and
 * not read again, so no read-for-ownership of its lines). */
typedef struct dwc_old {
    const float *src, *scale;
    size_t ld, hs, sh;
    int stream;
} dwc_old;

/* lat_dwc2d_heads with the old values of dwc_old: o = s·old + DWC(x) in one
 * pass (the parallel form's o = num/den + DWC, num in a scratch block). */
static void dwc2d_heads(int Hs, int Ws, int k, int ch, int nh, const float *restrict wT, size_t wstride,
                        const float *restrict bias, size_t bstride, const float *restrict x, size_t ldx,
                        size_t hx, float *o, size_t ldo, size_t ho, int t0, int t1, int add, const dwc_old *old)
{
    if (t1 <= t0)
        return;
    const int y0 = t0 / Ws, y1 = (t1 - 1) / Ws, r = k / 2;
    const float *osrc = old ? old->src : NULL, *oscl = old ? old->scale : NULL;
#ifdef DWC_VW
    const int grp = (k == 3 || k == 5 || k == 7) && DWC_CH_OK(ch), nc = (ch + DWC_VW - 1) / DWC_VW;
    /* streaming: every vector whole and aligned */
    const int nts = old && old->stream && ch % DWC_VW == 0 && ldo % DWC_VW == 0 && ho % DWC_VW == 0 &&
                    ((uintptr_t)o % (DWC_VW * sizeof(float))) == 0;
#endif
    /* tiles [0, r + DWC_CT), then DWC_CT wide: past the r border columns a
     * tile holds whole groups of DWC_NO */
    for (int xt = 0, xn = r + DWC_CT; xt < Ws; xt = xn, xn += DWC_CT)
        for (int y = y0; y <= y1; y++) {
            const int xs = imax(xt, y == y0 ? t0 % Ws : 0);
            const int xe = imin(xn, y == y1 ? (t1 - 1) % Ws + 1 : Ws);
#ifdef DWC_VW
            const int a0 = imax(0, r - y), a1 = imin(k, Hs - y + r);
#endif
            for (int h = 0; h < nh; h++) {
                const float *wh = wT + (size_t)h * wstride, *bh = bias ? bias + (size_t)h * bstride : NULL;
                const float *xh = x + (size_t)h * hx;
                float *oh = o + (size_t)(y * Ws) * ldo + (size_t)h * ho; /* output column 0 of row y */
                for (int xc = xs; xc < xe;) {
                    const size_t it = (size_t)(y * Ws + xc - t0); /* row index in the old-value buffers */
                    const float *oi = osrc ? osrc + (size_t)h * old->hs + it * old->ld : oh + (size_t)xc * ldo;
                    const float *os = oscl ? oscl + (size_t)h * old->sh + it : NULL;
#ifdef DWC_VW
                    if (grp && xc - r >= 0 && xc + DWC_NO <= xe && xc + DWC_NO - 1 + r < Ws) {
                        for (int ci = 0; ci < nc; ci++) {
                            const int c0 = ci * DWC_VW;
                            const dwc_mask m = DWC_MASK(ch - c0);
                            const float *rows[7];
                            for (int a = a0; a < a1; a++)
                                rows[a] = xh + ((size_t)(y + a - r) * (size_t)Ws + (size_t)(xc - r)) * ldx + c0;
                            const size_t ldi = osrc ? old->ld : ldo;
                            if (k == 3)
                                dwc_group3(wh, ch, bh, rows, ldx, oh + (size_t)xc * ldo, ldo, oi, ldi, a0, a1, c0, m,
                                           add, os, nts);
                            else if (k == 5)
                                dwc_group5(wh, ch, bh, rows, ldx, oh + (size_t)xc * ldo, ldo, oi, ldi, a0, a1, c0, m,
                                           add, os, nts);
                            else
                                dwc_group7(wh, ch, bh, rows, ldx, oh + (size_t)xc * ldo, ldo, oi, ldi, a0, a1, c0, m,
                                           add, os, nts);
                        }
                        xc += DWC_NO;
                        continue;
                    }
#endif
                    dwc2d_one(Hs, Ws, k, ch, wh, bh, xh, ldx, oh + (size_t)xc * ldo, oi, y, xc, add, os ? *os : 1.0f);
                    xc++;
                }
            }
        }
}

void lat_dwc2d_heads(int Hs, int Ws, int k, int ch, int nh, const float *restrict wT, size_t wstride,
                     const float *restrict bias, size_t bstride, const float *restrict x, size_t ldx,
                     size_t hx, float *restrict o, size_t ldo, size_t ho, int t0, int t1, int add)
{
    dwc2d_heads(Hs, Ws, k, ch, nh, wT, wstride, bias, bstride, x, ldx, hx, o, ldo, ho, t0, t1, add, NULL);
}

void lat_dwc1d_rows(int k, int ch, const float *restrict wT, const float *restrict bias,
                    const float *restrict x, size_t ldx, const float *restrict tail,
                    size_t ldt, float *restrict o, size_t ldo, int t0, int t1, int add)
{
    for (int t = t0; t < t1; t++) {
        float *ot = o + (size_t)t * ldo;
        int c0 = 0;
        for (; c0 + 64 <= ch; c0 += 64)
            dwc1d_block64(k, ch, wT, bias, x, ldx, tail, ldt, ot, t, c0, add);
        for (; c0 + 16 <= ch; c0 += 16)
            dwc1d_block16(k, ch, wT, bias, x, ldx, tail, ldt, ot, t, c0, add);
        for (; c0 < ch; c0++)
            dwc1d_block1(k, ch, wT, bias, x, ldx, tail, ldt, ot, t, c0, add);
    }
}

/* ------------------------------------------------------------------------- */
/* Plan and workspace                                                        */
/* ------------------------------------------------------------------------- */

int lat_vla_heads(const lat_vla *c) { return c->ms > 0 ? 2 * c->s->H : c->s->H; }

/* floats of one slice's state: [K][V+1] plus the DWC tail */
static size_t slice_floats(const lat_vla *c)
{
    const lat_shape *s = c->s;
    return (size_t)s->K * (size_t)(s->V + 1) + (c->dwc > 0 ? (size_t)(c->dwc - 1) * (size_t)s->V : 0);
}

static size_t ms_width(const lat_shape *s) { return 2 * (size_t)s->K + (size_t)s->V; }

size_t lat_vla_state_floats(const lat_vla *c)
{
    if (!c->s->causal)
        return 0;
    size_t n = (size_t)lat_vla_heads(c) * slice_floats(c);
    if (c->ms > 0)
        n += (size_t)(c->ms - 1) * (size_t)c->s->H * ms_width(c->s);
    return n;
}

#define PAR_TB 256 /* token block of the non-causal parallel form */
#define PAR_C 64   /* query block of the causal (quadratic) parallel form */
#ifndef P1B
#define P1B 128    /* token sub-block of the non-causal passes (features of all heads, GEMM M) */
#endif

typedef struct vplan {
    int nt, B, T, H, K, V, Ho, BH;
    size_t W;                      /* 2K+V: row of the aggregated heads  */
    int dtaps, mtaps;              /* taps of the DWC and the aggregation */
    /* byte offsets of the shared regions */
    size_t o_isp, o_fsc, o_fscr, o_dwT, o_msT, o_agg, o_mstmp, mstmp_per, o_Sw, o_form;
    /* parallel form */
    size_t o_kv, o_thr, per_thread; /* partial key sums, per-thread scratch */
    size_t total;
} vplan;

static lat_chunk_problem chunk_problem(const lat_vla *c)
{
    const lat_shape *s = c->s;
    lat_chunk_problem p;
    memset(&p, 0, sizeof p);
    p.BH = s->B * lat_vla_heads(c);
    p.T = s->T;
    p.K = s->K;
    p.Vx = s->V + 1;
    p.C = s->chunk > 0 ? s->chunk : 64;
    p.c = p.C;
    p.decay = LAT_DECAY_NONE;
    p.causal = s->causal;
    return p;
}

static vplan make_plan(const lat_vla *c, lat_vla_form f, int nthreads)
{
    const lat_shape *s = c->s;
    vplan p;
    memset(&p, 0, sizeof p);
    p.B = s->B, p.T = s->T, p.H = s->H, p.K = s->K, p.V = s->V;
    p.Ho = lat_vla_heads(c);
    p.BH = p.B * p.Ho;
    p.W = ms_width(s);
    p.dtaps = c->dwc > 0 ? (s->causal ? c->dwc : c->dwc * c->dwc) : 0;
    p.mtaps = c->ms > 0 ? (s->causal ? c->ms : c->ms * c->ms) : 0;
    p.nt = lat_useful_threads((double)p.BH * p.T * p.K * (p.V + 1), nthreads < 1 ? 1 : nthreads);
    const size_t K = (size_t)p.K, V1 = (size_t)p.V + 1, T = (size_t)p.T, nt = (size_t)p.nt;
    size_t o = 0;
    p.o_isp = o;
    o += c->map == LAT_VLA_FOCUSED ? FL((size_t)p.H * K) : 0;
    p.o_fsc = o;
    o += c->map == LAT_VLA_FOCUSED ? FL((size_t)p.B * T * 4) : 0;
    p.o_fscr = o;
    o += c->map == LAT_VLA_FOCUSED ? 2 * FL((size_t)p.H * K) * nt : 0;
    p.o_dwT = o;
    o += FL((size_t)p.dtaps * (size_t)p.V);
    p.o_msT = o;
    o += c->ms > 0 ? FL((size_t)p.H * (size_t)p.mtaps * p.W) : 0;
    p.o_agg = o;
    o += c->ms > 0 ? FL((size_t)p.B * T * (size_t)p.H * p.W) : 0;
    p.o_mstmp = o;
    p.mstmp_per = c->ms > 0 ? FL(T * (size_t)(p.K > p.V ? p.K : p.V)) : 0;
    o += p.mstmp_per * nt;
    p.o_Sw = o;
    o += FL((size_t)p.BH * K * V1);
    p.o_form = o;
    if (f == LAT_VLA_PARALLEL && !s->causal) {
        p.o_kv = o; /* reduced [S | z] per slice, then a partial per thread and slice */
        o += (size_t)p.BH * FL(K * V1) * (nt + 1);
        p.o_thr = o;
        p.per_thread = FL((size_t)p.Ho * (size_t)P1B * K) + FL((size_t)p.Ho * K) + FL((size_t)p.Ho * (size_t)P1B) +
                       FL((size_t)p.Ho * (size_t)P1B * (size_t)p.V);
        o += p.per_thread * nt;
    } else if (f == LAT_VLA_PARALLEL) {
        p.per_thread = FL(T * K) + FL(T * V1) + FL((size_t)PAR_C * K) + FL((size_t)PAR_C * T) +
                       FL((size_t)PAR_C * V1);
        o += p.per_thread * nt;
    } else if (f == LAT_VLA_CHUNK) {
        lat_chunk_problem cp = chunk_problem(c);
        o += lat_align64(lat_chunk_workspace(&cp, nthreads < 1 ? 1 : nthreads));
    } else {
        p.per_thread = 2 * FL(K) + FL(V1);
        o += p.per_thread * nt;
    }
    p.total = o;
    return p;
}

size_t lat_vla_workspace(const lat_vla *c, lat_vla_form f, int nthreads)
{
    return make_plan(c, f, nthreads).total;
}

/* ------------------------------------------------------------------------- */
/* Rows: sources, features, emit                                             */
/* ------------------------------------------------------------------------- */

typedef struct vctx {
    const lat_vla *c;
    const vplan *pl;
    int Hs, Ws, causal, pos;
    size_t SS, BS;         /* state floats per slice, per batch        */
    const float *isp;      /* [H·K] 1/softplus(s)                      */
    float *fsc;            /* [B][T][4] (1/max, r) for q, then for k   */
    const float *dwT;      /* [taps][V]                                */
    const float *agg;      /* [B][T][H][2K+V]                          */
    const float *state_in; /* causal calls only (conv tails)           */
    float *out;
} vctx;

/* row (b, t) of output head hh: q (which 0), k (1) or v (2), and its token stride */
static inline const float *src_row(const vctx *x, int which, int b, int t, int hh, size_t *ld)
{
    const vplan *p = x->pl;
    const size_t bt = (size_t)b * (size_t)p->T + (size_t)t;
    if (hh < p->H) {
        const int d = which == 2 ? p->V : p->K;
        if (ld)
            *ld = (size_t)p->H * (size_t)d;
        const float *base = which == 0 ? x->c->q : which == 1 ? x->c->k : x->c->v;
        return base + (bt * (size_t)p->H + (size_t)hh) * (size_t)d;
    }
    if (ld)
        *ld = (size_t)p->H * p->W;
    return x->agg + (bt * (size_t)p->H + (size_t)(hh - p->H)) * p->W + (size_t)which * (size_t)p->K;
}

static inline void powp(float *restrict f, int n, int pw)
{
    if (pw == 3) {
        for (int i = 0; i < n; i++)
            f[i] = f[i] * f[i] * f[i];
    } else if (pw == 2) {
        for (int i = 0; i < n; i++)
            f[i] = f[i] * f[i];
    } else if (pw > 3) {
        for (int i = 0; i < n; i++) {
            const float z = f[i];
            float y = z;
            for (int e = 1; e < pw; e++)
                y *= z;
            f[i] = y;
        }
    }
}

/* Rows of one head are H·K floats apart, a stride the hardware prefetchers
 * do not follow across pages: every row builder fetches the row PF_AHEAD
 * tokens ahead (see linear_attn.c). */
#define PF_AHEAD 16

static inline void prefetch_floats(const float *x, int n, int write)
{
    if (write)
        for (int i = 0; i < n; i += 16)
            __builtin_prefetch(x + i, 1);
    else
        for (int i = 0; i < n; i += 16)
            __builtin_prefetch(x + i, 0);
}

/* φ row of q (isk 0) or k (isk 1) for token (b, t), output head hh */
static void feature(const vctx *x, int isk, int b, int t, int hh, float *restrict f)
{
    const vplan *p = x->pl;
    const int K = p->K;
    const float *src = src_row(x, isk, b, t, hh, NULL);
    const float *pos = NULL;
    if (isk && x->c->pos && hh < p->H)
        pos = x->c->pos + (((size_t)b * (size_t)p->T + (size_t)t) * (size_t)p->H + (size_t)hh) * (size_t)K;
    if (t + PF_AHEAD < p->T) {
        prefetch_floats(src_row(x, isk, b, t + PF_AHEAD, hh, NULL), K, 0);
        if (pos)
            prefetch_floats(pos + (size_t)PF_AHEAD * (size_t)p->H * (size_t)K, K, 0);
    }
    if (x->c->map == LAT_VLA_RELU) {
        const float fl = x->c->floor;
        if (pos)
            for (int i = 0; i < K; i++) {
                const float z = src[i] + pos[i];
                f[i] = (z > 0.0f ? z : 0.0f) + fl;
            }
        else
            for (int i = 0; i < K; i++)
                f[i] = (src[i] > 0.0f ? src[i] : 0.0f) + fl;
        return;
    }
    const float *sc = x->fsc + ((size_t)b * (size_t)p->T + (size_t)t) * 4 + 2 * (size_t)isk;
    const float invm = sc[0], r = sc[1];
    const float *isp = x->isp + (size_t)hh * (size_t)K;
    if (pos)
        for (int i = 0; i < K; i++)
            f[i] = src[i] + pos[i];
    else
        memcpy(f, src, sizeof(float) * (size_t)K);
    for (int i = 0; i < K; i++)
        f[i] = ((f[i] > 0.0f ? f[i] : 0.0f) + 1e-6f) * isp[i] * invm;
    powp(f, K, x->c->p);
    lat_vec_scale(f, r, (size_t)K);
}

/* [v | 1] row */
static inline void value_row(const vctx *x, int b, int t, int hh, float *restrict vx)
{
    const int V = x->pl->V;
    if (t + PF_AHEAD < x->pl->T)
        prefetch_floats(src_row(x, 2, b, t + PF_AHEAD, hh, NULL), V, 0);
    memcpy(vx, src_row(x, 2, b, t, hh, NULL), sizeof(float) * (size_t)V);
    vx[V] = 1.0f;
}

static const float *tail_of(const vctx *x, int b, int hh)
{
    if (!x->state_in || x->c->dwc <= 0)
        return NULL;
    return x->state_in + (size_t)b * x->BS + (size_t)hh * x->SS +
           (size_t)x->pl->K * (size_t)(x->pl->V + 1);
}

static inline float *out_slice(const vctx *x, int b, int hh)
{
    const vplan *p = x->pl;
    return x->out + ((size_t)b * (size_t)p->T * (size_t)p->Ho + (size_t)hh) * (size_t)p->V;
}

static inline float eps_at(const vctx *x, int t)
{
    const double keys = x->causal ? (double)x->pos + t + 1.0 : (double)x->pl->T;
    return (float)(x->c->eps_const + x->c->eps_key * keys);
}

/* o rows t0 .. t0+n-1 of slice (b, hh) += DWC(V) rows */
static void dwc_rows(const vctx *x, int b, int hh, int t0, int n)
{
    if (x->c->dwc <= 0)
        return;
    const vplan *p = x->pl;
    const int V = p->V;
    const size_t ldo = (size_t)p->Ho * (size_t)V;
    size_t ldv;
    const float *v0 = src_row(x, 2, b, 0, hh, &ldv);
    if (x->causal)
        lat_dwc1d_rows(x->c->dwc, V, x->dwT, x->c->dwc_b, v0, ldv, tail_of(x, b, hh), (size_t)V, out_slice(x, b, hh),
                       ldo, t0, t0 + n, 1);
    else
        lat_dwc2d_rows(x->Hs, x->Ws, x->c->dwc, V, x->dwT, x->c->dwc_b, v0, ldv, out_slice(x, b, hh), ldo, t0,
                       t0 + n, 1);
}

/* prefetch, for row t: the output row PF_AHEAD ahead (written) and the DWC's
 * farthest source row PF_AHEAD ahead */
static inline void emit_prefetch(const vctx *x, int b, int hh, int t)
{
    const vplan *p = x->pl;
    const size_t ldo = (size_t)p->Ho * (size_t)p->V;
    if (t + PF_AHEAD < p->T)
        prefetch_floats(out_slice(x, b, hh) + (size_t)(t + PF_AHEAD) * ldo, p->V, 1);
    if (x->c->dwc > 0) {
        const int ahead = PF_AHEAD + (x->causal ? 0 : (x->c->dwc / 2) * (x->Ws + 1));
        if (t + ahead < p->T)
            prefetch_floats(src_row(x, 2, b, t + ahead, hh, NULL), p->V, 0);
    }
}

/* Rows t0 .. t0+n-1 of slice (b, hh) from O rows [Num | Den] (row stride ldO):
 * o = Num / (Den + ε(t)), then + DWC(V) rows. */
static void emit_rows(const vctx *x, int b, int hh, int t0, int n, const float *restrict O, size_t ldO)
{
    const vplan *p = x->pl;
    const int V = p->V;
    const size_t ldo = (size_t)p->Ho * (size_t)V;
    float *o0 = out_slice(x, b, hh);
    for (int r = 0; r < n; r++) {
        const int t = t0 + r;
        emit_prefetch(x, b, hh, t);
        const float *Or = O + (size_t)r * ldO;
        const float inv = 1.0f / (Or[V] + eps_at(x, t));
        float *o = o0 + (size_t)t * ldo;
        for (int j = 0; j < V; j++)
            o[j] = Or[j] * inv;
    }
    dwc_rows(x, b, hh, t0, n);
}

/* ------------------------------------------------------------------------- */
/* Pre-passes                                                                */
/* ------------------------------------------------------------------------- */

/* y ← invm·y and yp = y^p (powp's products, in its order), one pass */
static inline void scale_pow(float *restrict y, float *restrict yp, float invm, size_t C, int pw)
{
    if (pw == 3)
        for (size_t i = 0; i < C; i++) {
            const float z = invm * y[i];
            y[i] = z;
            yp[i] = z * z * z;
        }
    else if (pw == 2)
        for (size_t i = 0; i < C; i++) {
            const float z = invm * y[i];
            y[i] = z;
            yp[i] = z * z;
        }
    else {
        for (size_t i = 0; i < C; i++) {
            y[i] = invm * y[i];
            yp[i] = y[i];
        }
        powp(yp, (int)C, pw);
    }
}

/* FLatten's focusing core for one token row xr (+ pr, the positional row, or
 * NULL) of C = H·K channels: x̃ = (ReLU(x) + 1e-6)·isp, m = max x̃; leaves
 * y = x̃/m and yp = (x̃/m)^p, returns 1/m in *invm and r = ‖x̃‖/‖(x̃/m)^p‖
 * (the features are r·yp). Vector passes over the C floats of y, yp. */
static float focus_core(const lat_vla *c, const float *isp, const float *restrict xr, const float *restrict pr,
                        float *restrict y, float *restrict yp, size_t C, float *invm_out)
{
    if (pr)
        for (size_t i = 0; i < C; i++) {
            const float z = xr[i] + pr[i];
            y[i] = ((z > 0.0f ? z : 0.0f) + 1e-6f) * isp[i];
        }
    else
        for (size_t i = 0; i < C; i++)
            y[i] = ((xr[i] > 0.0f ? xr[i] : 0.0f) + 1e-6f) * isp[i];
    const float m = lat_vec_max(y, C), invm = 1.0f / m;
    scale_pow(y, yp, invm, C, c->p);
    const double nx2 = lat_vec_dot(y, y, C), ny2 = lat_vec_dot(yp, yp, C);
    *invm_out = invm;
    return (float)((double)m * sqrt(nx2 / ny2));
}

/* FLatten: for token bt (of all B·T) and q (isk 0) or k (1): m = max x̃,
 * r = ‖x̃‖/‖(x̃/m)^p‖ over the token's C = H·K channels (fsc = [1/m, r] for
 * q, then for k); y, yp: C floats of scratch each. */
static void focus_token(const lat_vla *c, const float *isp, float *fsc, long bt, int isk, float *restrict y,
                        float *restrict yp, size_t C)
{
    const float *xr = (isk ? c->k : c->q) + (size_t)bt * C;
    const float *pr = isk && c->pos ? c->pos + (size_t)bt * C : NULL;
    float invm;
    const float r = focus_core(c, isp, xr, pr, y, yp, C, &invm);
    fsc[(size_t)bt * 4 + 2 * (size_t)isk] = invm;
    fsc[(size_t)bt * 4 + 2 * (size_t)isk + 1] = r;
}

/* 1/softplus(s) of the learned scale, C = H·K values */
static void focus_scale(const lat_vla *c, const vplan *p, float *isp)
{
    const size_t C = (size_t)p->H * (size_t)p->K;
    for (size_t i = 0; i < C; i++) {
        const double sv = c->scale ? c->scale[i] : 0.0;
        const double sp = sv > 20.0 ? sv : log1p(exp(sv));
        isp[i] = (float)(1.0 / sp);
    }
}

/* The focusing scalars of every token, q and k (the chunk, recurrent and
 * causal parallel forms; the non-causal parallel form computes them token by
 * token inside its passes, where it reads each token's rows anyway). */
static void focus_pass(const lat_vla *c, const vplan *p, const float *isp, float *fsc, char *scr)
{
    const size_t C = (size_t)p->H * (size_t)p->K;
    const long n = (long)p->B * p->T;
    const int nt = n > 64 ? p->nt : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *y = (float *)(scr + 2 * FL(C) * (size_t)lat_thread_id()), *yp = y + FL(C) / sizeof(float);
#pragma omp for schedule(static)
        for (long bt = 0; bt < n; bt++)
            for (int isk = 0; isk < 2; isk++)
                focus_token(c, isp, fsc, bt, isk, y, yp, C);
    }
}

/* EfficientViT multi-scale aggregation: for each (b, h) and each of q, k, v:
 * depthwise conv over the grid (causal: over time, with the tail from the
 * state), then the pointwise d×d conv of the group as one GEMM into agg. */
static void ms_pass(const lat_vla *c, const vplan *p, const vctx *x, float *msT, float *agg,
                    char *tmp_base)
{
    const int H = p->H, K = p->K, V = p->V, T = p->T;
    const size_t W = p->W, taps = (size_t)p->mtaps;
    const size_t off[3] = {0, (size_t)K, 2 * (size_t)K};
    const int dd[3] = {K, K, V};
    /* per head: [taps][K] (q), [taps][K] (k), [taps][V] (v) */
    for (int h = 0; h < H; h++)
        for (int part = 0; part < 3; part++)
            lat_dwc_transpose(msT + (size_t)h * taps * W + taps * off[part],
                              c->ms_dw + ((size_t)h * W + off[part]) * taps, dd[part], (int)taps);
    const int items = p->B * H * 3;
#pragma omp parallel for num_threads(p->nt) schedule(dynamic, 1) if (p->nt > 1)
    for (int it = 0; it < items; it++) {
        const int b = it / (3 * H), h = (it / 3) % H, part = it % 3, d = dd[part];
        float *tmp = (float *)(tmp_base + p->mstmp_per * (size_t)lat_thread_id());
        const float *src = part == 0 ? c->q : part == 1 ? c->k : c->v;
        const float *x0 = src + ((size_t)b * (size_t)T * (size_t)H + (size_t)h) * (size_t)d;
        const size_t ldx = (size_t)H * (size_t)d;
        const float *wT = msT + (size_t)h * taps * W + taps * off[part];
        if (x->causal) {
            const float *tail = x->state_in ? x->state_in + (size_t)b * x->BS + (size_t)p->Ho * x->SS +
                                                  (size_t)h * W + off[part]
                                            : NULL;
            lat_dwc1d_rows(c->ms, d, wT, NULL, x0, ldx, tail, (size_t)H * W, tmp, (size_t)d, 0, T, 0);
        } else {
            lat_dwc2d_rows(x->Hs, x->Ws, c->ms, d, wT, NULL, x0, ldx, tmp, (size_t)d, 0, T, 0);
        }
        const float *Wp = c->ms_pw + (size_t)h * (2 * (size_t)K * (size_t)K + (size_t)V * (size_t)V) +
                          (size_t)part * (size_t)K * (size_t)K;
        lat_sgemm('N', 'T', T, d, d, 1.0f, tmp, d, Wp, d, 0.0f,
                  agg + (size_t)b * (size_t)T * (size_t)H * W + (size_t)h * W + off[part], (int)((size_t)H * W));
    }
}

/* Causal calls: the conv tails of state_out (after every output row was
 * emitted: they may alias state_in's). Tail row u = x at position pos+T−1−u:
 * an input row when T−1−u ≥ 0, else old tail row u−T (rows written in
 * descending u, so an aliased old row is read before it is overwritten). */
static void write_tails(const lat_vla *c, const vplan *p, const vctx *x, float *state_out)
{
    const int T = p->T, V = p->V;
    if (c->dwc > 1) {
        const int nt = p->BH >= 2 ? p->nt : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int bh = 0; bh < p->BH; bh++) {
            const int b = bh / p->Ho, hh = bh % p->Ho;
            float *dst = state_out + (size_t)b * x->BS + (size_t)hh * x->SS + (size_t)p->K * (size_t)(V + 1);
            const float *old = tail_of(x, b, hh);
            for (int u = c->dwc - 2; u >= 0; u--) {
                float *row = dst + (size_t)u * (size_t)V;
                if (T - 1 - u >= 0)
                    memcpy(row, src_row(x, 2, b, T - 1 - u, hh, NULL), sizeof(float) * (size_t)V);
                else if (old)
                    memmove(row, old + (size_t)(u - T) * (size_t)V, sizeof(float) * (size_t)V);
                else
                    memset(row, 0, sizeof(float) * (size_t)V);
            }
        }
    }
    if (c->ms > 1) {
        const size_t W = p->W, HW = (size_t)p->H * W;
        for (int b = 0; b < p->B; b++) {
            float *dst = state_out + (size_t)b * x->BS + (size_t)p->Ho * x->SS;
            const float *old = x->state_in ? x->state_in + (size_t)b * x->BS + (size_t)p->Ho * x->SS : NULL;
            for (int u = c->ms - 2; u >= 0; u--) {
                float *row = dst + (size_t)u * HW;
                const int t = T - 1 - u;
                if (t >= 0) {
                    const size_t bt = (size_t)b * (size_t)T + (size_t)t;
                    for (int h = 0; h < p->H; h++) {
                        float *rh = row + (size_t)h * W;
                        memcpy(rh, c->q + (bt * (size_t)p->H + (size_t)h) * (size_t)p->K,
                               sizeof(float) * (size_t)p->K);
                        memcpy(rh + p->K, c->k + (bt * (size_t)p->H + (size_t)h) * (size_t)p->K,
                               sizeof(float) * (size_t)p->K);
                        memcpy(rh + 2 * p->K, c->v + (bt * (size_t)p->H + (size_t)h) * (size_t)V,
                               sizeof(float) * (size_t)V);
                    }
                } else if (old) {
                    memmove(row, old + (size_t)(u - T) * HW, sizeof(float) * HW);
                } else {
                    memset(row, 0, sizeof(float) * HW);
                }
            }
        }
    }
}

/* linear part [K][V+1] of slice bh in a state buffer */
static inline size_t lin_off(const vctx *x, int bh)
{
    return (size_t)(bh / x->pl->Ho) * x->BS + (size_t)(bh % x->pl->Ho) * x->SS;
}

/* ------------------------------------------------------------------------- */
/* Forms                                                                     */
/* ------------------------------------------------------------------------- */

/* o rows r < n (ldo apart) = s[r]·N rows (ldN apart), V floats each: the
 * numerators of a head without DWC, scaled on the way out of the scratch
 * block; non-temporal stores when the rows are whole aligned vectors (o is
 * not read again). */
static void scale_rows_out(float *o, size_t ldo, const float *restrict N, size_t ldN, const float *restrict s, int n,
                           int V)
{
    for (int r = 0; r < n; r++) {
        float *orow = o + (size_t)r * ldo;
        const float *nr = N + (size_t)r * ldN;
        int j = 0;
#if defined(__AVX512F__)
        if ((uintptr_t)orow % 64 == 0)
            for (const __m512 sv = _mm512_set1_ps(s[r]); j + 16 <= V; j += 16)
                _mm512_stream_ps(orow + j, _mm512_mul_ps(sv, _mm512_loadu_ps(nr + j)));
#elif defined(__AVX2__)
        if ((uintptr_t)orow % 32 == 0)
            for (const __m256 sv = _mm256_set1_ps(s[r]); j + 8 <= V; j += 8)
                _mm256_stream_ps(orow + j, _mm256_mul_ps(sv, _mm256_loadu_ps(nr + j)));
#endif
        for (; j < V; j++)
            orow[j] = s[r] * nr[j];
    }
}

/* non-causal, token-major: the B·(T/tb) token blocks (tb ≤ PAR_TB tokens,
 * all Ho heads of a block on one thread) are split into one contiguous run
 * per thread, so every thread reads and writes whole token rows (all heads'
 * channels: no cache line of o is written by, or prefetched into, two cores)
 * and the DWC runs over all H heads at once. Sub-blocks of P1B tokens inside
 * a block: their feature rows of all heads (token_features: each token's H·K
 * row read once, FLatten's focusing computed once per token and reused for
 * every head) and M ≤ P1B GEMMs (OpenBLAS's small kernels: no packing, and
 * with beta 0 no zeroing pass over C); while a head's GEMM runs, the next
 * sub-block's input rows are on their way into L2 (prefetch_span_l2).
 * Pass 1: per thread and slice a partial [S | z] over its blocks; V is read
 * in place by the GEMMs (N = V columns, no [v | 1] copy), z = Σ φ(k) a
 * column sum of the feature block. Pass 2: the partials summed per slice in
 * thread order (fixed for a given thread count). Pass 3: per sub-block the
 * reciprocal denominators 1/(⟨φ(q), z⟩ + ε) as the φ(q) rows are built,
 * per head the numerators φ(Q)·S into a scratch block (L2-resident, not the
 * cold rows of o), then one pass over the sub-block's rows of the H input
 * heads writes o = num·(1/den) + DWC(V) (dwc2d_heads with the scratch as
 * its scaled initial values, non-temporal stores): o is written once and
 * never read back. Heads without a DWC: scale_rows_out. Same operations in
 * the same order as the previous two-pass version (numerators into o, a
 * scale pass, a DWC pass adding into o): bitwise the same output. */
static int par_tb(const vplan *p)
{
    const int want = (4 * p->nt + p->B - 1) / p->B; /* ≥ 4 blocks per thread when T allows */
    const int tb = (p->T + want - 1) / want;
    return tb > PAR_TB ? PAR_TB : (tb < 16 ? 16 : tb);
}

/* φ rows of token (b, t) for all Ho output heads, head hh's at F + hh·fh;
 * z (Ho·K, or NULL) += them; zq (Ho·K, or NULL): iq[hh·iqh] = 1/(⟨φ, zq_hh⟩
 * + ε(t)). The input heads read the token's H·K row (and
 * P's) once, front to back; FLatten's two focusing scalars come from that
 * pass and the features are r·(x̃/m)^p of it (the values feature() gives,
 * bitwise); fy: 2·FL(H·K) bytes of scratch (FLatten). Aggregated heads
 * (hh ≥ H) go through feature(). */
static void token_features(const vctx *x, int isk, int b, int t, float *restrict F, size_t fh,
                           float *restrict z, float *restrict fy, const float *restrict zq, float *restrict iq,
                           size_t iqh)
{
    const vplan *p = x->pl;
    const int K = p->K, H = p->H;
    const size_t HK = (size_t)H * (size_t)K, bt = (size_t)b * (size_t)p->T + (size_t)t;
    const float *src = (isk ? x->c->k : x->c->q) + bt * HK;
    const float *pos = isk && x->c->pos ? x->c->pos + bt * HK : NULL;
    if (t + PF_AHEAD < p->T) {
        prefetch_floats(src + (size_t)PF_AHEAD * HK, (int)HK, 0);
        if (pos)
            prefetch_floats(pos + (size_t)PF_AHEAD * HK, (int)HK, 0);
    }
    if (x->c->map == LAT_VLA_FOCUSED) {
        float *y = fy, *yp = fy + FL(HK) / sizeof(float), invm;
        const float r = focus_core(x->c, x->isp, src, pos, y, yp, HK, &invm);
        for (int h = 0; h < H; h++) {
            float *f = F + (size_t)h * fh;
            const float *s = yp + (size_t)h * (size_t)K;
            for (int i = 0; i < K; i++)
                f[i] = r * s[i];
        }
    } else {
        const float fl = x->c->floor;
        for (int h = 0; h < H; h++) {
            float *f = F + (size_t)h * fh;
            const float *s = src + (size_t)h * (size_t)K;
            if (pos) {
                const float *ps = pos + (size_t)h * (size_t)K;
                for (int i = 0; i < K; i++) {
                    const float v = s[i] + ps[i];
                    f[i] = (v > 0.0f ? v : 0.0f) + fl;
                }
            } else {
                for (int i = 0; i < K; i++)
                    f[i] = (s[i] > 0.0f ? s[i] : 0.0f) + fl;
            }
        }
    }
    for (int hh = H; hh < p->Ho; hh++)
        feature(x, isk, b, t, hh, F + (size_t)hh * fh);
    if (z)
        for (int hh = 0; hh < p->Ho; hh++) {
            const float *f = F + (size_t)hh * fh;
            float *zh = z + (size_t)hh * (size_t)K;
            for (int i = 0; i < K; i++)
                zh[i] += f[i];
        }
    if (zq) /* queries: 1/(⟨φ(q), z⟩ + ε) per head while the rows are in L1 */
        for (int hh = 0; hh < p->Ho; hh++)
            iq[(size_t)hh * iqh] =
                1.0f / (lat_vec_dot(F + (size_t)hh * fh, zq + (size_t)hh * (size_t)K, (size_t)K) + eps_at(x, t));
}

static void parallel_noncausal(const vctx *x, const vplan *p, char *work)
{
    const int K = p->K, V = p->V, V1 = p->V + 1, T = p->T, H = p->H, BH = p->BH, nt = p->nt;
    const size_t KV = (size_t)K * (size_t)V1, kvs = FL(KV) / sizeof(float);
    const int tb = par_tb(p), nblk = (T + tb - 1) / tb;
    float *kvred = (float *)(work + p->o_kv);  /* [BH] reduced [S | z]            */
    float *kvpart = kvred + (size_t)BH * kvs;  /* [nt][BH] per-thread partials    */
    const size_t ldo = (size_t)p->Ho * (size_t)V, fh = (size_t)P1B * (size_t)K, fhv = (size_t)P1B * (size_t)V;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int tid = lat_thread_id();
        char *mine = work + p->o_thr + p->per_thread * (size_t)tid;
        float *F = (float *)mine;                                         /* [Ho][P1B][K] */
        float *zc = (float *)(mine + FL((size_t)p->Ho * fh));             /* [Ho][K]      */
        float *inv = zc + FL((size_t)p->Ho * (size_t)K) / sizeof(float);  /* [Ho][P1B]    */
        float *num = inv + FL((size_t)p->Ho * (size_t)P1B) / sizeof(float); /* [Ho][P1B][V] */
        const size_t HK = (size_t)H * (size_t)K;
        float *fy = x->c->map == LAT_VLA_FOCUSED ? (float *)(work + p->o_fscr + 2 * FL(HK) * (size_t)tid) : NULL;
        long lo, hi; /* this thread's blocks: unit u = b·nblk + block */
        lat_split((long)p->B * nblk, tid, nt, &lo, &hi);
        float *P = kvpart + (size_t)tid * (size_t)BH * kvs;
        if (lo < hi) /* the partials of the batches this thread touches */
            for (int b = (int)(lo / nblk); b <= (int)((hi - 1) / nblk); b++)
                for (int hh = 0; hh < p->Ho; hh++)
                    memset(P + (size_t)(b * p->Ho + hh) * kvs, 0, sizeof(float) * KV);
        for (long u = lo; u < hi; u++) {
            const int b = (int)(u / nblk), tu = (int)(u % nblk) * tb, nu = imin(tb, T - tu);
            for (int t0 = tu; t0 < tu + nu; t0 += P1B) {
                const int n = imin(P1B, tu + nu - t0);
                memset(zc, 0, sizeof(float) * (size_t)p->Ho * (size_t)K);
                for (int r = 0; r < n; r++) {
                    if (t0 + r + PF_AHEAD < T) /* the v rows of all input heads, contiguous */
                        prefetch_floats(src_row(x, 2, b, t0 + r + PF_AHEAD, 0, NULL), H * V, 0);
                    token_features(x, 1, b, t0 + r, F + (size_t)r * (size_t)K, fh, zc, fy, NULL, NULL, 0);
                }
                const int tn = t0 + n, nn = imin(P1B, T - tn); /* the next sub-block's rows */
                const size_t bt = (size_t)b * (size_t)T + (size_t)tn;
                for (int hh = 0; hh < p->Ho; hh++) {
                    if (nn > 0) {
                        prefetch_span_l2(x->c->k + bt * HK, (size_t)nn * HK, hh, p->Ho);
                        prefetch_span_l2(x->c->v + bt * (size_t)H * (size_t)V, (size_t)nn * (size_t)H * (size_t)V, hh,
                                         p->Ho);
                        if (x->c->pos)
                            prefetch_span_l2(x->c->pos + bt * HK, (size_t)nn * HK, hh, p->Ho);
                    }
                    float *KVp = P + (size_t)(b * p->Ho + hh) * kvs;
                    const float *z = zc + (size_t)hh * (size_t)K;
                    size_t ldv;
                    const float *v0 = src_row(x, 2, b, t0, hh, &ldv);
                    lat_sgemm('T', 'N', K, V, n, 1.0f, F + (size_t)hh * fh, K, v0, (int)ldv, 1.0f, KVp, V1);
                    for (int i = 0; i < K; i++)
                        KVp[(size_t)i * (size_t)V1 + (size_t)V] += z[i];
                }
            }
        }
#pragma omp barrier
        /* Σ over the threads that hold a partial of the slice, in thread order */
#pragma omp for schedule(static)
        for (int bh = 0; bh < BH; bh++) {
            const int b = bh / p->Ho;
            float *D = kvred + (size_t)bh * kvs;
            int first = 1;
            for (int th = 0; th < nt; th++) {
                long l0, l1;
                lat_split((long)p->B * nblk, th, nt, &l0, &l1);
                if (l0 >= l1 || l1 <= (long)b * nblk || l0 >= (long)(b + 1) * nblk)
                    continue;
                const float *Q = kvpart + ((size_t)th * (size_t)BH + (size_t)bh) * kvs;
                if (first)
                    memcpy(D, Q, sizeof(float) * KV);
                else
                    for (size_t e = 0; e < KV; e++)
                        D[e] += Q[e];
                first = 0;
            }
        }
        /* (implicit barrier) */
        int zb = -1; /* batch whose z columns are in zc */
        for (long u = lo; u < hi; u++) {
            const int b = (int)(u / nblk), tu = (int)(u % nblk) * tb, nu = imin(tb, T - tu);
            if (zb != b) {
                for (int hh = 0; hh < p->Ho; hh++) {
                    const float *R = kvred + (size_t)(b * p->Ho + hh) * kvs;
                    for (int i = 0; i < K; i++)
                        zc[(size_t)hh * (size_t)K + (size_t)i] = R[(size_t)i * (size_t)V1 + (size_t)V];
                }
                zb = b;
            }
            for (int t0 = tu; t0 < tu + nu; t0 += P1B) {
                const int n = imin(P1B, tu + nu - t0);
                for (int r = 0; r < n; r++)
                    token_features(x, 0, b, t0 + r, F + (size_t)r * (size_t)K, fh, NULL, fy, zc, inv + r, P1B);
                const int tn = t0 + n, nn = imin(P1B, T - tn); /* the next sub-block's q rows */
                const size_t bt = (size_t)b * (size_t)T + (size_t)tn;
                for (int hh = 0; hh < p->Ho; hh++) {
                    if (nn > 0)
                        prefetch_span_l2(x->c->q + bt * HK, (size_t)nn * HK, hh, p->Ho);
                    const float *R = kvred + (size_t)(b * p->Ho + hh) * kvs, *Fh = F + (size_t)hh * fh;
                    float *ih = inv + (size_t)hh * P1B, *Nh = num + (size_t)hh * fhv;
                    lat_sgemm('N', 'N', n, V, K, 1.0f, Fh, K, R, V1, 0.0f, Nh, V);
                    if (hh >= H || x->c->dwc <= 0) /* no DWC to fold the scale into */
                        scale_rows_out(out_slice(x, b, hh) + (size_t)t0 * ldo, ldo, Nh, (size_t)V, ih, n, V);
                }
                /* o = num·(1/den) + DWC(V) over the sub-block's rows of the H
                 * input heads (weights shared by the heads: one weight row
                 * serves them all), o written once */
                if (x->c->dwc > 0) {
                    size_t ldv;
                    const float *v0 = src_row(x, 2, b, 0, 0, &ldv);
                    const dwc_old old = {num, inv, (size_t)V, fhv, P1B, 1};
                    dwc2d_heads(x->Hs, x->Ws, x->c->dwc, V, H, x->dwT, 0, x->c->dwc_b, 0, v0, ldv, (size_t)V,
                                out_slice(x, b, 0), ldo, (size_t)V, t0, t0 + n, 1, &old);
                }
            }
        }
#if defined(__AVX2__) || defined(__AVX512F__)
        _mm_sfence(); /* the non-temporal stores of o */
#endif
    }
}

/* causal: the masked quadratic form per query block; state = S0 + Φ_Kᵀ[V | 1] */
static void parallel_causal(const vctx *x, const vplan *p, char *work, const float *state_in,
                            float *state_out)
{
    const int K = p->K, V1 = p->V + 1, T = p->T, nblk = (T + PAR_C - 1) / PAR_C;
    const size_t sz_fk = FL((size_t)T * (size_t)K), sz_vx = FL((size_t)T * (size_t)V1);
    const size_t sz_fq = FL((size_t)PAR_C * (size_t)K), sz_a = FL((size_t)PAR_C * (size_t)T);
#pragma omp parallel num_threads(p->nt) if (p->nt > 1)
    {
        const int tid = lat_thread_id();
        char *mine = work + p->o_form + p->per_thread * (size_t)tid;
        float *FK = (float *)mine, *VX = (float *)(mine + sz_fk), *FQ = (float *)(mine + sz_fk + sz_vx);
        float *A = (float *)(mine + sz_fk + sz_vx + sz_fq), *O = (float *)(mine + sz_fk + sz_vx + sz_fq + sz_a);
        int packed = -1;
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < p->BH * nblk; it++) {
            const int bh = it / nblk, b = bh / p->Ho, hh = bh % p->Ho;
            const int i0 = (it % nblk) * PAR_C, n = imin(PAR_C, T - i0), i1 = i0 + n;
            if (packed != bh) {
                for (int t = 0; t < T; t++) {
                    feature(x, 1, b, t, hh, FK + (size_t)t * (size_t)K);
                    value_row(x, b, t, hh, VX + (size_t)t * (size_t)V1);
                }
                packed = bh;
            }
            for (int r = 0; r < n; r++)
                feature(x, 0, b, i0 + r, hh, FQ + (size_t)r * (size_t)K);
            lat_sgemm('N', 'T', n, i1, K, 1.0f, FQ, K, FK, K, 0.0f, A, i1);
            for (int r = 0; r < n; r++) /* mask: key j > query i0 + r */
                memset(A + (size_t)r * (size_t)i1 + i0 + r + 1, 0, sizeof(float) * (size_t)(n - r - 1));
            lat_sgemm('N', 'N', n, V1, i1, 1.0f, A, i1, VX, V1, 0.0f, O, V1);
            if (state_in)
                lat_sgemm('N', 'N', n, V1, K, 1.0f, FQ, K, state_in + lin_off(x, bh), V1, 1.0f, O, V1);
            emit_rows(x, b, hh, i0, n, O, (size_t)V1);
        }
        /* (implicit barrier: every read of state_in is done) */
        if (state_out) {
#pragma omp for schedule(static)
            for (int bh = 0; bh < p->BH; bh++) {
                const int b = bh / p->Ho, hh = bh % p->Ho;
                if (packed != bh) {
                    for (int t = 0; t < T; t++) {
                        feature(x, 1, b, t, hh, FK + (size_t)t * (size_t)K);
                        value_row(x, b, t, hh, VX + (size_t)t * (size_t)V1);
                    }
                    packed = bh;
                }
                float *S = state_out + lin_off(x, bh);
                const float *S0 = state_in ? state_in + lin_off(x, bh) : NULL;
                if (S0 != S)
                    for (int i = 0; i < K; i++) {
                        if (S0)
                            memcpy(S + (size_t)i * (size_t)V1, S0 + (size_t)i * (size_t)V1, sizeof(float) * (size_t)V1);
                        else
                            memset(S + (size_t)i * (size_t)V1, 0, sizeof(float) * (size_t)V1);
                    }
                lat_sgemm('T', 'N', K, V1, T, 1.0f, FK, K, VX, V1, 1.0f, S, V1);
            }
        }
    }
}

typedef struct chunk_ctx {
    const vctx *x;
} chunk_ctx;

static void chunk_pack(const void *vctx_, int bh, int t0, int n, float *restrict Q, float *restrict Kc,
                       float *restrict Vc, float *restrict G)
{
    const vctx *x = ((const chunk_ctx *)vctx_)->x;
    const int K = x->pl->K, V1 = x->pl->V + 1, b = bh / x->pl->Ho, hh = bh % x->pl->Ho;
    (void)G;
    for (int r = 0; r < n; r++) {
        feature(x, 0, b, t0 + r, hh, Q + (size_t)r * (size_t)K);
        feature(x, 1, b, t0 + r, hh, Kc + (size_t)r * (size_t)K);
        value_row(x, b, t0 + r, hh, Vc + (size_t)r * (size_t)V1);
    }
}

static void chunk_emit(const void *vctx_, int bh, int t0, int n, const float *restrict O)
{
    const vctx *x = ((const chunk_ctx *)vctx_)->x;
    emit_rows(x, bh / x->pl->Ho, bh % x->pl->Ho, t0, n, O, (size_t)x->pl->V + 1);
}

static lat_status run_chunk(const vctx *x, const vplan *p, char *work, const lat_args *a, float *Sw)
{
    lat_chunk_problem cp = chunk_problem(x->c);
    chunk_ctx cc = {x};
    cp.pack = chunk_pack;
    cp.emit = chunk_emit;
    cp.ctx = &cc;
    const size_t KV1 = (size_t)p->K * (size_t)(p->V + 1);
    if (x->causal && a->state_in) {
        for (int bh = 0; bh < p->BH; bh++)
            memcpy(Sw + (size_t)bh * KV1, a->state_in + lin_off(x, bh), sizeof(float) * KV1);
        cp.state_in = Sw;
    }
    if (x->causal && a->state_out)
        cp.state_out = Sw;
    const size_t eng = lat_align64(lat_chunk_workspace(&cp, a->nthreads < 1 ? 1 : a->nthreads));
    lat_status st = lat_chunk_run(&cp, work + p->o_form, eng, a->nthreads < 1 ? 1 : a->nthreads);
    if (st != LAT_OK)
        return st;
    if (x->causal && a->state_out)
        for (int bh = 0; bh < p->BH; bh++)
            memcpy(a->state_out + lin_off(x, bh), Sw + (size_t)bh * KV1, sizeof(float) * KV1);
    return LAT_OK;
}

/* Token by token per slice: causal S += φ(k)[v | 1]ᵀ then o = Sᵀφ(q) (one
 * pass, lat_rec_step); non-causal all updates, then all readouts. Threads
 * own contiguous slices and walk them token-block-major (REC_TB tokens of
 * every slice, then the next block). */
#define REC_TB 32

static float *rec_state(const vctx *x, const lat_args *a, float *Sw, int bh)
{
    const size_t KV1 = (size_t)x->pl->K * (size_t)(x->pl->V + 1);
    return (x->causal && a->state_out) ? a->state_out + lin_off(x, bh) : Sw + (size_t)bh * KV1;
}

static void run_recurrent(const vctx *x, const vplan *p, char *work, const lat_args *a, float *Sw)
{
    const int K = p->K, V = p->V, V1 = p->V + 1, T = p->T;
    const size_t KV1 = (size_t)K * (size_t)V1;
    const int nt = p->BH < p->nt ? p->BH : p->nt;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int tid = lat_thread_id();
        char *mine = work + p->o_form + p->per_thread * (size_t)tid;
        float *fk = (float *)mine, *fq = (float *)(mine + FL(K));
        float *orow = (float *)(mine + 2 * FL(K));
        long lo, hi;
        lat_split(p->BH, tid, nt, &lo, &hi);
        for (long bh = lo; bh < hi; bh++) {
            float *S = rec_state(x, a, Sw, (int)bh);
            const float *S0 = (x->causal && a->state_in) ? a->state_in + lin_off(x, (int)bh) : NULL;
            if (!S0)
                memset(S, 0, sizeof(float) * KV1);
            else if (S0 != S)
                memcpy(S, S0, sizeof(float) * KV1);
        }
        for (int pass = 0; pass < (x->causal ? 1 : 2); pass++)
            for (int t0 = 0; t0 < T; t0 += REC_TB) {
                const int t1 = t0 + REC_TB < T ? t0 + REC_TB : T;
                for (long bh = lo; bh < hi; bh++) {
                    const int b = (int)bh / p->Ho, hh = (int)bh % p->Ho;
                    float *S = rec_state(x, a, Sw, (int)bh);
                    for (int t = t0; t < t1; t++) {
                        size_t ldv;
                        const float *vt = src_row(x, 2, b, t, hh, &ldv);
                        if (t + PF_AHEAD < T)
                            prefetch_floats(vt + (size_t)PF_AHEAD * ldv, V, 0);
                        if (x->causal) { /* S[:, :V] on lat_rec_step, z = S[:, V] beside */
                            feature(x, 1, b, t, hh, fk);
                            feature(x, 0, b, t, hh, fq);
                            lat_rec_step(K, V, S, (size_t)V1, NULL, fk, vt, fq, orow);
                            float den = 0.0f;
                            for (int i = 0; i < K; i++) {
                                S[(size_t)i * (size_t)V1 + (size_t)V] += fk[i];
                                den += fq[i] * S[(size_t)i * (size_t)V1 + (size_t)V];
                            }
                            orow[V] = den;
                            emit_rows(x, b, hh, t, 1, orow, (size_t)V1);
                        } else if (pass == 0) {
                            feature(x, 1, b, t, hh, fk);
                            for (int i = 0; i < K; i++) {
                                lat_vec_axpy(S + (size_t)i * (size_t)V1, fk[i], vt, (size_t)V);
                                S[(size_t)i * (size_t)V1 + (size_t)V] += fk[i];
                            }
                        } else {
                            feature(x, 0, b, t, hh, fq);
                            memset(orow, 0, sizeof(float) * (size_t)V1);
                            for (int i = 0; i < K; i++)
                                lat_vec_axpy(orow, fq[i], S + (size_t)i * (size_t)V1, (size_t)V1);
                            emit_rows(x, b, hh, t, 1, orow, (size_t)V1);
                        }
                    }
                }
            }
    }
}

lat_status lat_vla_run(const lat_vla *c, lat_vla_form f, const lat_args *a)
{
    const lat_shape *s = c->s;
    const vplan p = make_plan(c, f, a->nthreads);
    if (!a->work || a->work_bytes < p.total)
        return LAT_ENOMEM;
    char *work = (char *)a->work;
    vctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.pl = &p;
    lat_grid(s->T, &x.Hs, &x.Ws);
    x.causal = s->causal;
    x.pos = s->pos;
    x.SS = slice_floats(c);
    x.BS = lat_vla_state_floats(c);
    x.state_in = s->causal ? a->state_in : NULL;
    x.out = a->out;
    float *Sw = (float *)(work + p.o_Sw);
    if (c->map == LAT_VLA_FOCUSED) {
        float *isp = (float *)(work + p.o_isp), *fsc = (float *)(work + p.o_fsc);
        focus_scale(c, &p, isp);
        if (!(f == LAT_VLA_PARALLEL && !s->causal))
            focus_pass(c, &p, isp, fsc, work + p.o_fscr);
        x.isp = isp;
        x.fsc = fsc;
    }
    if (c->dwc > 0) {
        float *dwT = (float *)(work + p.o_dwT);
        lat_dwc_transpose(dwT, c->dwc_w, s->V, p.dtaps);
        x.dwT = dwT;
    }
    if (c->ms > 0) {
        float *agg = (float *)(work + p.o_agg);
        ms_pass(c, &p, &x, (float *)(work + p.o_msT), agg, work + p.o_mstmp);
        x.agg = agg;
    }
    float *state_out = s->causal ? a->state_out : NULL;
    lat_status st = LAT_OK;
    switch (f) {
    case LAT_VLA_PARALLEL:
        if (s->causal)
            parallel_causal(&x, &p, work, x.state_in, state_out);
        else
            parallel_noncausal(&x, &p, work);
        break;
    case LAT_VLA_CHUNK: st = run_chunk(&x, &p, work, a, Sw); break;
    case LAT_VLA_RECURRENT: run_recurrent(&x, &p, work, a, Sw); break;
    }
    if (st == LAT_OK && state_out)
        write_tails(c, &p, &x, state_out);
    return st;
}

/* ------------------------------------------------------------------------- */
/* Models                                                                    */
/* ------------------------------------------------------------------------- */

double lat_vla_flops(const lat_vla *c, lat_vla_form f)
{
    const lat_shape *s = c->s;
    const double B = s->B, T = s->T, H = s->H, K = s->K, V = s->V, Ho = lat_vla_heads(c);
    double att; /* per slice */
    if (f == LAT_VLA_PARALLEL && s->causal) {
        att = 0.0; /* Σ over query blocks of 2·n·i1·(K + V + 1) */
        for (int i0 = 0; i0 < s->T; i0 += PAR_C) {
            const double n = imin(PAR_C, s->T - i0);
            att += 2.0 * n * (i0 + n) * (K + V + 1.0);
        }
    } else if (f == LAT_VLA_CHUNK && s->causal) {
        const double C = s->chunk < s->T ? s->chunk : s->T;
        att = T * (2.0 * C * (K + V + 1.0) + 4.0 * K * (V + 1.0));
    } else {
        att = T * 4.0 * K * (V + 1.0);
    }
    double per_row = V; /* normalization */
    if (c->dwc > 0)
        per_row += 2.0 * V * (s->causal ? c->dwc : c->dwc * c->dwc);
    if (c->has_pos)
        per_row += K;
    double flops = B * Ho * (att + T * per_row);
    if (c->map == LAT_VLA_FOCUSED) /* ≈ (p + 7)·C per token for q and for k (spec §5) */
        flops += B * T * 2.0 * (c->p + 7.0) * H * K;
    if (c->ms > 0) {
        const double W = 2.0 * K + V, taps = s->causal ? c->ms : c->ms * c->ms;
        flops += B * T * H * (2.0 * taps * W + 2.0 * (2.0 * K * K + V * V));
    }
    return flops;
}

double lat_vla_bytes(const lat_vla *c)
{
    const lat_shape *s = c->s;
    const double tok = (double)s->B * s->T * s->H;
    double elems = tok * (2.0 * s->K + s->V) + (double)s->B * s->T * lat_vla_heads(c) * s->V;
    if (c->has_pos)
        elems += tok * s->K;
    elems += 2.0 * (double)s->B * (double)lat_vla_state_floats(c);
    return 4.0 * elems;
}

lat_status lat_vision_softmax_target(const lat_shape *s, const double *const *in, const double *state_in,
                                     double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    if (s->T > 2048)
        return LAT_UNSUPPORTED;
    return ref_exact_softmax(s, in, s->causal, out);
}
