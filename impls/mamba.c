/* mamba.c — Mamba-1 selective scan S6 (Gu & Dao 2023, arXiv 2312.00752;
 * COLM 2024), the scan kernel with its D skip and z gate, fp32.
 * Spec: spec/recurrent.md §5.
 *
 * Recurrence (Dm = H·V channels, N = n_state, G = groups; channel d reads
 * group d / (Dm/G) of B and C):
 *     δ_t[d]   = softplus(δ_raw_t[d] + δ_bias[d])   (threshold 20),  A = −exp(A_log)
 *     h_t[d,n] = exp(δ_t[d] A[d,n]) h_{t−1}[d,n] + δ_t[d] B_t[n] u_t[d]
 *     y_t[d]   = (Σ_n C_t[n] h_t[d,n] + D[d] u_t[d]) · silu(z_t[d])
 * B̄ = δ·B (Euler), as selective_scan_ref, the CUDA kernel and ggml (§5.3).
 * Inputs: u, δ_raw, z [B][T][Dm]; δ_bias [Dm], A_log [Dm][N], D [Dm]
 *   (parameters, passed whole); B, C [B][T][G][N].
 * State h [B][Dm][N] (mamba / ggml layout); h0 = 0 when absent.
 *
 * Forms
 *   recurrent  the sequential scan, vectorized over channels. AVX-512 path:
 *              16-channel slabs (one zmm = 16 channels of one state n; one
 *              slab per cache line of u, δ_raw, z, out), threads own
 *              contiguous slab ranges; per block of 16 tokens, pass 1
 *              computes δ = softplus(·), δu, silu(z), D·u·silu(z) for up to
 *              64 slabs at once, token by token (each input row read front
 *              to back), then per slab pass 2 the scan with the 16 state
 *              vectors in registers: e = exp(δ A[·, n]) by a table exp (2^{k/16} from a
 *              16-entry register table via vpermps, a cubic on |r| ≤ ln2/32,
 *              ≤ 1 ulp, A pre-scaled by 16/ln2 once per call), h = e ⊙ h +
 *              δu·B_n, y += C_n h. Portable path (no AVX-512): the same scan
 *              with the state block transposed to [N][W] in the workspace and
 *              lat_vec_exp. 6·Dm·N FLOPs (§5.3) + Dm·(N + 2) exps per token.
 *              Bound (AVX-512, Zen4): the decay exp. The counted update is 4
 *              FMA-unit instructions per 16 (d, n) lanes (δ·A, δu·B, the h
 *              FMA, the y FMA: ≤ 75 % of peak with a free exp); the exp adds
 *              3 more (2 FMA, a mul; its δ·A is counted) plus the final FMA
 *              and 7 add/permute/integer ops: pass 2 alone ≈ 9 cycles per 16
 *              lanes (≈ 33 % of peak on the 6 counted FLOPs); pass 1
 *              (softplus, silu, 2 divisions per 16 channels) adds ≈ 3 and
 *              streaming u, δ_raw, z, out from DRAM ≈ 2: ≈ 14–15 cycles per
 *              16 lanes at B=1 T=8192 H=8, one thread (≈ 20 % of peak, CPU
 *              time; the previous lat_exp16 kernel took ≈ 30) when pass 1
 *              read 64 bytes per slab; whole rows (MB_SG) took ≈ 1/4 off
 *              that (pass 1's load stalls). Also the
 *              decode step (T = 1, state in place).
 *   No chunked or parallel-scan form: per channel S6 is GLA with K = N and
 *   V = 1 (§5.6), so a chunk form has no matmul reuse; measured with the
 *   GLA-family engine (per-key decay, K = 16, Vx = 1, C = 64, c = 16) it ran
 *   ≈ 27× slower than this scan at B=1 T=8192 H=8 D=64, one thread (897
 *   against 33 ms CPU time), and it would not remove a single exp. The
 *   blocked two-pass scan of §5.5 only pays when B·Dm/16 < threads, which
 *   the channel blocks below already avoid down to 16 channels per thread.
 * Memory: state Dm·N floats per batch element. Workspace (AVX-512): per
 *   (b, 16-channel slab) the state and A·16/ln2 (2·16·N floats), per thread
 *   4·16·16·64 floats (256 KiB) of block buffers; portable: per (b, channel block) the
 *   transposed state and A (2·N·W floats), per thread N + 5W floats.
 * Parallel axis: (b, channel slab/block) items, statically split; each thread
 *   walks its items token-block-major so that a token's rows are read
 *   together. Slabs/blocks never straddle a group; portable blocks are ≤ 64
 *   channels, smaller (≥ 16) when there are fewer items than threads.
 * Defaults: N = 16 (mamba_simple d_state), G = 1; dt_bias = softplus⁻¹(dt),
 *   dt log-uniform in [1e-3, 0.1] floored at 1e-4; A_log = log(1..N)
 *   (S4D-Real init, A[d,n] = −(n+1)); δ_raw ~ 0.5·N(0,1); u, B, C, z ~
 *   N(0,1) (spec §5.4 test data).
 * Decisions: the sweep's D maps to channels Dm = H·D (DESIGN §2; V = D is the
 *   channels per "head", K is not used); the kernel takes A_log, not A
 *   (task brief; mamba_ssm computes A = −exp(A_log) right before the scan);
 *   the causal conv, x_proj and dt_proj of the block are outside the kernel
 *   (as in selective_scan_fn), so the state holds h only, no conv taps; the
 *   test D skip is N(1, 0.5²) instead of the constant 1 so that a channel
 *   indexing error shows; harsh inputs: δ_raw ~ 3·N(0,1) (δ from ~1e-7 to
 *   ~7) and A_log ~ U(−3, 4) (A from −0.05 to −55), i.e. decays from 1 − 1e-9
 *   to e^{−380}.
 * Run: build/latbench run --method mamba --form recurrent --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench check --methods mamba
 */
#include "common/lat_chunk.h"

/* ---- shapes and models --------------------------------------------------- */

static int mb_channels(const lat_shape *s) { return s->H * s->V; }

static int mb_dims_btd(const lat_shape *s, size_t d[8]) /* u, δ_raw, z, y */
{
    d[0] = (size_t)s->B, d[1] = (size_t)s->T, d[2] = (size_t)mb_channels(s);
    return 3;
}

static int mb_dims_d(const lat_shape *s, size_t d[8]) /* δ_bias, D */
{
    d[0] = (size_t)mb_channels(s);
    return 1;
}

static int mb_dims_dn(const lat_shape *s, size_t d[8]) /* A_log */
{
    d[0] = (size_t)mb_channels(s), d[1] = (size_t)s->n_state;
    return 2;
}

static int mb_dims_bc(const lat_shape *s, size_t d[8]) /* B, C */
{
    d[0] = (size_t)s->B, d[1] = (size_t)s->T, d[2] = (size_t)s->groups, d[3] = (size_t)s->n_state;
    return 4;
}

static int mb_dims_state(const lat_shape *s, size_t d[8]) /* h [B][Dm][N] */
{
    d[0] = (size_t)s->B, d[1] = (size_t)mb_channels(s), d[2] = (size_t)s->n_state;
    return 3;
}

static double flops_recurrent(const lat_shape *s)
{
    return (double)s->B * s->T * mb_channels(s) * 6.0 * s->n_state;
}

static double state_bytes(const lat_shape *s) { return 4.0 * s->B * mb_channels(s) * (double)s->n_state; }

/* u, δ_raw, z read, y written, B and C read, state read and written. */
static double bytes(const lat_shape *s)
{
    double tok = (double)s->B * s->T;
    return 4.0 * tok * (4.0 * mb_channels(s) + 2.0 * s->groups * s->n_state) + 2.0 * state_bytes(s);
}

static lat_status mb_validate(const lat_shape *s, char *why, size_t len)
{
    if (s->groups < 1 || mb_channels(s) % s->groups != 0)
        return lat_unsupported(why, len, "groups=%d must divide the channels H*V=%d", s->groups, mb_channels(s));
    return LAT_OK;
}

/* ---- recurrent form: AVX-512 fused scan ---------------------------------- */
#if defined(__AVX512F__)

/* e^{x·ln2/16} = 2^{x/16} for the decay argument x = δ·A·16/ln2 ≤ 0 (A
 * pre-scaled once per call). x = k + r, k = round(x) by the magic-number add
 * (r = x − k exact, |r| ≤ ½); 2^{k/16} = 2^{⌊k/16⌋}·2^{j/16}, j = k mod 16,
 * from a 16-entry table held in a register (one vpermps on the low index bits
 * of x + magic) with ⌊k/16⌋ added to the exponent bits by an integer add: tab
 * holds bits(2^{j/16}) − j·2^19 and the bits of x + magic shifted left by 19
 * are ⌊k/16⌋·2^23 + j·2^19. 2^{r/16} − 1 = r·(c1 + c2 r + c3 r²), minimax
 * (relative truncation 1.6e-9), and the result s + s·(2^{r/16} − 1) is one
 * rounding. Measured over [−87, 0]: max 0.98 ulp, rms 0.38 ulp (lat_exp16:
 * 1.26, 0.43). x is clamped at −2015 (e^{−87.3} ≈ 1.2e-38, the smallest
 * value that keeps 2^{⌊k/16⌋} normal): below it the true value is a
 * denormal, and 1.2e-38 instead of it is invisible next to δ·B·u. Also
 * −inf → 1.2e-38; cost: 4 FMA-unit ops (mul, 2 FMA, FMA), 3 adds, a max,
 * a permute, a shift and an integer add per 16 decays. */
static inline __m512 mb_exp2_16(__m512 x, __m512 tab)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f); /* 1.5·2^23: rounds to integers */
    x = _mm512_max_ps(x, _mm512_set1_ps(-2015.0f));
    const __m512 t = _mm512_add_ps(x, magic);
    const __m512 r = _mm512_sub_ps(x, _mm512_sub_ps(t, magic));
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.3550326292e-5f), r, _mm512_set1_ps(9.3841518756e-4f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.3321698917e-2f));
    p = _mm512_mul_ps(p, r);
    const __m512i tb = _mm512_castps_si512(t);
    const __m512 sc = _mm512_castsi512_ps(
        _mm512_add_epi32(_mm512_castps_si512(_mm512_permutexvar_ps(tb, tab)), _mm512_slli_epi32(tb, 19)));
    return _mm512_fmadd_ps(sc, p, sc);
}

static __m512 mb_exp2_16_table(void)
{
    float tab[16];
    for (int j = 0; j < 16; j++) {
        const float v = (float)exp2((double)j / 16.0);
        int32_t bits;
        memcpy(&bits, &v, 4);
        bits -= j * (1 << 19);
        memcpy(&tab[j], &bits, 4);
    }
    return _mm512_loadu_ps(tab);
}

/* e^x for x ≤ 0 (the softplus and gate exponentials, raw inputs): the same
 * table and cubic as mb_exp2_16, with a Cody–Waite reduction r = x − k·ln2/16
 * (k·L_hi exact for |k| < 2^12) instead of the pre-scaled argument, so the
 * input is not rounded. Max 1 ulp; 0 below −87.3 (and for −inf), NaN → NaN
 * (so that z·e^{z} in the gate is 0, not z·1.2e-38, for z → −∞). */
static inline __m512 mb_exp16n(__m512 x, __m512 tab)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_NLT_UQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(23.0831206542f), magic); /* 16/ln2 */
    const __m512 k = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(4.331970214844e-2f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.996636456170e-06f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.6666074467e-01f), r, _mm512_set1_ps(5.0001619525e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_mul_ps(p, r);
    const __m512i tb = _mm512_castps_si512(t);
    const __m512 sc = _mm512_castsi512_ps(
        _mm512_add_epi32(_mm512_castps_si512(_mm512_permutexvar_ps(tb, tab)), _mm512_slli_epi32(tb, 19)));
    return _mm512_maskz_fmadd_ps(live, sc, p, sc);
}

/* e^{−|x|} ∈ (0, 1]: the bounded exponential softplus and silu are built on */
static inline __m512 mb_exp_negabs16(__m512 x, __m512 tab)
{
    return mb_exp16n(_mm512_min_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), x)), tab);
}

/* softplus(x), threshold 20: max(x, 0) + log1p(e), e = e^{−|x|} ∈ (0, 1],
 * log1p(e) = 2·atanh(s), s = e/(2 + e) ≤ 1/3, by its odd series to s^15
 * (truncation < 2e-9 relative), as softplus_vec of the portable path. */
static inline __m512 mb_softplus16(__m512 x, __m512 tab)
{
    const __m512 e = mb_exp_negabs16(x, tab);
    const __m512 sv = _mm512_div_ps(e, _mm512_add_ps(_mm512_set1_ps(2.0f), e));
    const __m512 s2 = _mm512_mul_ps(sv, sv);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 15.0f), s2, _mm512_set1_ps(1.0f / 13.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 11.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 9.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 7.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 5.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 3.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f));
    const __m512 sp = _mm512_fmadd_ps(_mm512_add_ps(sv, sv), p, _mm512_max_ps(x, _mm512_setzero_ps()));
    return _mm512_mask_mov_ps(sp, _mm512_cmp_ps_mask(x, _mm512_set1_ps(20.0f), _CMP_GT_OQ), x);
}

/* silu(z) = z·σ(z), σ(z) = 1/(1 + e^{−z}) for z ≥ 0 and e^{z}/(1 + e^{z})
 * below, from e = e^{−|z|} (never overflows). */
static inline __m512 mb_silu16(__m512 z, __m512 tab)
{
    const __m512 e = mb_exp_negabs16(z, tab);
    const __m512 num = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ), e);
    return _mm512_div_ps(_mm512_mul_ps(z, num), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* Tokens per block (per-token vectors of a slab precomputed). All slabs of a
 * thread walk a block before the next, so each token row is read together
 * (measured: 10–20 % faster at T = 8192 than walking 4 or 8 slabs through the
 * whole sequence, whose per-slab strided rows the prefetchers serve worse);
 * 16 and 32 tokens measure alike once pass 1 reads rows whole (MB_SG). */
#define MB_TB 16

typedef struct mb_slab {
    int b, g, d0;    /* batch, group, first channel       */
    __mmask16 m;     /* live channel lanes                 */
    float *hT;       /* [N][16] state, channel lanes       */
    const float *AT; /* [N][16] A·16/ln2 (pads 0)          */
} mb_slab;

/* Slabs whose per-token vectors pass 1 computes together: a thread reads a
 * token's u, δ_raw and z rows of up to MB_SG·16 channels front to back, not
 * 64 bytes per slab a slab's scan apart. With 64 bytes per slab, pass 1 spent
 * about a third of the kernel's samples stalled on those loads (perf record,
 * B 1, T 8192, 1024 channels, N 16, one thread); reading rows whole made the
 * kernel ≈ 1.35× faster on one thread and ≈ 1.3× on two (32 to 64 slabs,
 * 16 or 32 tokens: alike within this VM's noise). Buffers per thread:
 * 4·16·MB_TB·MB_SG floats = 256 KiB, in L2. */
#define MB_SG 64

/* Block buffers of one slab, [MB_TB][16] each (per thread: MB_SG of them). */
typedef struct mb_buf {
    float *delta, *du, *gate, *dug; /* δ, δ·u, silu(z), D·u·silu(z) */
} mb_buf;

static mb_buf mb_buf_at(float *base, int j)
{
    mb_buf b;
    b.delta = base + (size_t)j * 4 * 16 * MB_TB;
    b.du = b.delta + 16 * MB_TB;
    b.gate = b.du + 16 * MB_TB;
    b.dug = b.gate + 16 * MB_TB;
    return b;
}

/* Pass 1 over the slabs sl[0..ns) of one batch element for tokens [t0, t1):
 * per token and slab (16 channels) δ, δu, silu(z), D·u·silu(z) into the
 * slab's block buffers, token-major so that each row is read front to back,
 * with a prefetch of the same lines one block ahead. */
static void mb_pass1(const lat_args *a, const mb_slab *sl, int ns, int t0, int t1, __m512 tab, float *bufs)
{
    const lat_shape *s = a->shape;
    const int Dm = mb_channels(s), T = s->T;
    const float *u = a->in[0], *dtr = a->in[1], *z = a->in[7];
    for (int t = t0; t < t1; t++) {
        const int i = 16 * (t - t0);
        for (int j = 0; j < ns; j++) {
            const __mmask16 m = sl[j].m;
            const size_t ic = ((size_t)sl[j].b * T + t) * Dm + sl[j].d0;
            if (t + MB_TB < T) {
                const size_t pc = ic + (size_t)MB_TB * Dm;
                __builtin_prefetch(u + pc), __builtin_prefetch(dtr + pc), __builtin_prefetch(z + pc);
            }
            const mb_buf bf = mb_buf_at(bufs, j);
            const __m512 bias = _mm512_maskz_loadu_ps(m, a->in[2] + sl[j].d0);
            const __m512 Dv = _mm512_maskz_loadu_ps(m, a->in[6] + sl[j].d0);
            const __m512 delta = mb_softplus16(_mm512_add_ps(_mm512_maskz_loadu_ps(m, dtr + ic), bias), tab);
            const __m512 uv = _mm512_maskz_loadu_ps(m, u + ic);
            const __m512 g = mb_silu16(_mm512_maskz_loadu_ps(m, z + ic), tab);
            _mm512_store_ps(bf.delta + i, delta);
            _mm512_store_ps(bf.du + i, _mm512_mul_ps(delta, uv));
            _mm512_store_ps(bf.gate + i, g);
            _mm512_store_ps(bf.dug + i, _mm512_mul_ps(_mm512_mul_ps(Dv, uv), g));
        }
    }
}

/* Pass 2 of one slab, tokens [t0, t1), from its block buffers: the scan, per
 * token and state n e = exp(δ A[·, n]), h = e ⊙ h + δu·B_n, y += C_n h, then
 * out = y·silu(z) + D·u·silu(z). N = 16: the 16 state vectors stay in
 * registers for the block (≈ 8 % faster than reloading them from L1, which
 * the general-N loop does). */
static inline __attribute__((always_inline)) void mb_slab_tokens(const lat_args *a, const mb_slab *sl, int t0,
                                                                 int t1, int N, __m512 tab, const mb_buf *bf)
{
    const lat_shape *s = a->shape;
    const int Dm = mb_channels(s), G = s->groups, T = s->T;
    const float *Bm = a->in[4], *Cm = a->in[5];
    const __mmask16 m = sl->m;
    float *restrict hT = sl->hT;
    const float *restrict AT = sl->AT;
    if (N == 16) {
        __m512 h[16];
        for (int n = 0; n < 16; n++)
            h[n] = _mm512_load_ps(hT + 16 * n);
        for (int t = t0; t < t1; t++) {
            const int i = 16 * (t - t0);
            const size_t ig = (((size_t)sl->b * T + t) * G + sl->g) * (size_t)16;
            const float *restrict Bt = Bm + ig, *restrict Ct = Cm + ig;
            const __m512 delta = _mm512_load_ps(bf->delta + i), du = _mm512_load_ps(bf->du + i);
            __m512 y0 = _mm512_setzero_ps(), y1 = _mm512_setzero_ps();
#pragma GCC unroll 16
            for (int n = 0; n < 16; n += 2) {
                const __m512 e0 = mb_exp2_16(_mm512_mul_ps(delta, _mm512_load_ps(AT + 16 * n)), tab);
                const __m512 e1 = mb_exp2_16(_mm512_mul_ps(delta, _mm512_load_ps(AT + 16 * n + 16)), tab);
                h[n] = _mm512_fmadd_ps(e0, h[n], _mm512_mul_ps(du, _mm512_set1_ps(Bt[n])));
                h[n + 1] = _mm512_fmadd_ps(e1, h[n + 1], _mm512_mul_ps(du, _mm512_set1_ps(Bt[n + 1])));
                y0 = _mm512_fmadd_ps(h[n], _mm512_set1_ps(Ct[n]), y0);
                y1 = _mm512_fmadd_ps(h[n + 1], _mm512_set1_ps(Ct[n + 1]), y1);
            }
            const size_t ic = ((size_t)sl->b * T + t) * Dm + sl->d0;
            const __m512 o = _mm512_fmadd_ps(_mm512_add_ps(y0, y1), _mm512_load_ps(bf->gate + i),
                                             _mm512_load_ps(bf->dug + i));
            if (m == 0xFFFF)
                _mm512_storeu_ps(a->out + ic, o);
            else
                _mm512_mask_storeu_ps(a->out + ic, m, o);
        }
        for (int n = 0; n < 16; n++)
            _mm512_store_ps(hT + 16 * n, h[n]);
        return;
    }
    for (int t = t0; t < t1; t++) {
        const int i = 16 * (t - t0);
        const size_t ig = (((size_t)sl->b * T + t) * G + sl->g) * (size_t)N;
        const float *restrict Bt = Bm + ig, *restrict Ct = Cm + ig;
        const __m512 delta = _mm512_load_ps(bf->delta + i), du = _mm512_load_ps(bf->du + i);
        __m512 y0 = _mm512_setzero_ps(), y1 = _mm512_setzero_ps();
        int n = 0;
#pragma GCC unroll 8
        for (; n + 2 <= N; n += 2) {
            const __m512 e0 = mb_exp2_16(_mm512_mul_ps(delta, _mm512_load_ps(AT + 16 * n)), tab);
            const __m512 e1 = mb_exp2_16(_mm512_mul_ps(delta, _mm512_load_ps(AT + 16 * n + 16)), tab);
            const __m512 h0 =
                _mm512_fmadd_ps(e0, _mm512_load_ps(hT + 16 * n), _mm512_mul_ps(du, _mm512_set1_ps(Bt[n])));
            const __m512 h1 =
                _mm512_fmadd_ps(e1, _mm512_load_ps(hT + 16 * n + 16), _mm512_mul_ps(du, _mm512_set1_ps(Bt[n + 1])));
            _mm512_store_ps(hT + 16 * n, h0);
            _mm512_store_ps(hT + 16 * n + 16, h1);
            y0 = _mm512_fmadd_ps(h0, _mm512_set1_ps(Ct[n]), y0);
            y1 = _mm512_fmadd_ps(h1, _mm512_set1_ps(Ct[n + 1]), y1);
        }
        if (n < N) {
            const __m512 e0 = mb_exp2_16(_mm512_mul_ps(delta, _mm512_load_ps(AT + 16 * n)), tab);
            const __m512 h0 =
                _mm512_fmadd_ps(e0, _mm512_load_ps(hT + 16 * n), _mm512_mul_ps(du, _mm512_set1_ps(Bt[n])));
            _mm512_store_ps(hT + 16 * n, h0);
            y0 = _mm512_fmadd_ps(h0, _mm512_set1_ps(Ct[n]), y0);
        }
        const size_t ic = ((size_t)sl->b * T + t) * Dm + sl->d0;
        const __m512 o = _mm512_fmadd_ps(_mm512_add_ps(y0, y1), _mm512_load_ps(bf->gate + i),
                                         _mm512_load_ps(bf->dug + i));
        if (m == 0xFFFF)
            _mm512_storeu_ps(a->out + ic, o);
        else
            _mm512_mask_storeu_ps(a->out + ic, m, o);
    }
}

typedef struct rec_plan {
    int nt;             /* threads                                */
    int nsg;            /* 16-channel slabs per group             */
    int items;          /* B·G·nsg                                */
    size_t item_floats; /* hT and AT of one slab                  */
    size_t buf_floats;  /* block buffers of one thread            */
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    const int Dm = mb_channels(s), per_g = Dm / s->groups;
    p.nt = lat_useful_threads((double)s->B * Dm * s->n_state * s->T, nthreads);
    p.nsg = (per_g + 15) / 16;
    p.items = s->B * s->groups * p.nsg;
    if (p.nt > p.items)
        p.nt = p.items;
    p.item_floats = 2 * 16 * (size_t)s->n_state;
    p.buf_floats = (size_t)MB_SG * 4 * 16 * MB_TB;
    return p;
}

static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    return sizeof(float) * (p.item_floats * (size_t)p.items + p.buf_floats * (size_t)p.nt);
}

static mb_slab slab_at(const lat_args *a, const rec_plan *p, long it)
{
    const lat_shape *s = a->shape;
    const int per_g = mb_channels(s) / s->groups, k = (int)(it % p->nsg);
    mb_slab r;
    r.b = (int)(it / ((long)s->groups * p->nsg));
    r.g = (int)(it / p->nsg) % s->groups;
    r.d0 = r.g * per_g + 16 * k;
    const int w = per_g - 16 * k < 16 ? per_g - 16 * k : 16;
    r.m = (__mmask16)((1u << w) - 1u);
    r.hT = (float *)a->work + p->item_floats * (size_t)it;
    r.AT = r.hT + 16 * (size_t)s->n_state;
    return r;
}

static lat_status mb_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const int T = s->T, N = s->n_state, Dm = mb_channels(s);

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        const __m512 tab = mb_exp2_16_table();
        float *bufs = (float *)a->work + p.item_floats * (size_t)p.items + p.buf_floats * (size_t)tid;
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) { /* A·16/ln2 and h0, channel lanes */
            mb_slab r = slab_at(a, &p, it);
            float *AT = r.hT + 16 * (size_t)N;
            memset(r.hT, 0, sizeof(float) * p.item_floats);
            for (int j = 0; j < 16; j++) {
                if (!(r.m >> j & 1))
                    continue;
                float tmp[16];
                for (int n0 = 0; n0 < N; n0 += 16) {
                    const int nn = N - n0 < 16 ? N - n0 : 16;
                    lat_vec_exp(tmp, a->in[3] + (size_t)(r.d0 + j) * N + n0, (size_t)nn);
                    for (int n = 0; n < nn; n++)
                        AT[(size_t)(n0 + n) * 16 + j] = (float)(-(double)tmp[n] * (16.0 / 0.693147180559945309));
                }
                if (a->state_in) {
                    const float *h0 = a->state_in + ((size_t)r.b * Dm + r.d0 + j) * N;
                    for (int n = 0; n < N; n++)
                        r.hT[(size_t)n * 16 + j] = h0[n];
                }
            }
        }
        for (int t0 = 0; t0 < T; t0 += MB_TB) {
            const int t1 = t0 + MB_TB < T ? t0 + MB_TB : T;
            for (long g0 = lo; g0 < hi;) { /* groups of ≤ MB_SG slabs of one batch element */
                mb_slab sl[MB_SG];
                int ns = 0;
                for (; g0 < hi && ns < MB_SG; g0++, ns++) {
                    sl[ns] = slab_at(a, &p, g0);
                    if (ns > 0 && sl[ns].b != sl[0].b)
                        break;
                }
                mb_pass1(a, sl, ns, t0, t1, tab, bufs);
                for (int j = 0; j < ns; j++) {
                    const mb_buf bf = mb_buf_at(bufs, j);
                    if (N == 16)
                        mb_slab_tokens(a, &sl[j], t0, t1, 16, tab, &bf);
                    else
                        mb_slab_tokens(a, &sl[j], t0, t1, N, tab, &bf);
                }
            }
        }
        if (a->state_out)
            for (long it = lo; it < hi; it++) {
                mb_slab r = slab_at(a, &p, it);
                for (int j = 0; j < 16; j++) {
                    if (!(r.m >> j & 1))
                        continue;
                    float *h = a->state_out + ((size_t)r.b * Dm + r.d0 + j) * N;
                    for (int n = 0; n < N; n++)
                        h[n] = r.hT[(size_t)n * 16 + j];
                }
            }
    }
    return LAT_OK;
}

#else /* portable path: plain C loops the compiler vectorizes + lat_vec_exp */

/* y = softplus(x) = x > 20 ? x : max(x, 0) + log1p(e^{−|x|}); log1p(e) for
 * e ∈ (0, 1] as 2·atanh(s), s = e/(2+e) ≤ 1/3, by its odd series (truncation
 * < 2e-9 relative). tmp: n floats. */
static void softplus_vec(float *restrict y, const float *restrict x, int n, float *restrict tmp)
{
    for (int i = 0; i < n; i++)
        tmp[i] = x[i] < 0.0f ? x[i] : -x[i];
    lat_vec_exp(tmp, tmp, (size_t)n);
    for (int i = 0; i < n; i++) {
        const float e = tmp[i], sv = e / (2.0f + e), s2 = sv * sv;
        float p = 1.0f / 15.0f;
        p = p * s2 + 1.0f / 13.0f;
        p = p * s2 + 1.0f / 11.0f;
        p = p * s2 + 1.0f / 9.0f;
        p = p * s2 + 1.0f / 7.0f;
        p = p * s2 + 1.0f / 5.0f;
        p = p * s2 + 1.0f / 3.0f;
        p = p * s2 + 1.0f;
        const float pos = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = x[i] > 20.0f ? x[i] : pos + 2.0f * sv * p;
    }
}


#define MB_W 64 /* channels per block (multiple of 16) */

typedef struct rec_plan {
    int nt;      /* threads                                         */
    int W, nbg;  /* block width (multiple of 16), blocks per group  */
    int items;   /* B·G·nbg                                         */
    size_t item_floats, thread_floats;
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    const int Dm = mb_channels(s), G = s->groups, per_g = Dm / G, N = s->n_state;
    const int n16 = (per_g + 15) / 16;
    p.nt = lat_useful_threads((double)s->B * Dm * N * s->T, nthreads);
    int nb = (per_g + MB_W - 1) / MB_W;
    if ((long)s->B * G * nb < p.nt) { /* too few items: narrower blocks, ≥ 16 channels */
        int want = (p.nt + s->B * G - 1) / (s->B * G);
        nb = want < n16 ? want : n16;
    }
    p.W = 16 * ((n16 + nb - 1) / nb);
    p.nbg = (per_g + p.W - 1) / p.W;
    p.items = s->B * G * p.nbg;
    p.item_floats = lat_align64(sizeof(float) * 2 * (size_t)N * p.W) / sizeof(float);
    p.thread_floats = lat_align64(sizeof(float) * ((size_t)N + 5 * (size_t)p.W)) / sizeof(float);
    return p;
}

static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    return sizeof(float) * (p.item_floats * (size_t)p.items + p.thread_floats * (size_t)p.nt);
}

typedef struct rec_item {
    int b, g, d0, w; /* batch, group, first channel, channels (≤ W) */
    float *hT, *AT;  /* [N][W] transposed state and A (pads zero)   */
} rec_item;

static rec_item rec_item_at(const lat_args *a, const rec_plan *p, int it)
{
    const lat_shape *s = a->shape;
    const int per_g = mb_channels(s) / s->groups, blk = it % p->nbg;
    rec_item r;
    r.b = it / (s->groups * p->nbg);
    r.g = (it / p->nbg) % s->groups;
    r.d0 = r.g * per_g + blk * p->W;
    r.w = per_g - blk * p->W < p->W ? per_g - blk * p->W : p->W;
    r.hT = (float *)a->work + p->item_floats * (size_t)it;
    r.AT = r.hT + (size_t)s->n_state * p->W;
    return r;
}

typedef struct rec_scratch {
    float *arow;                 /* [N] one row of A while loading        */
    float *delta, *du, *y, *tmp; /* [W] each (+ [W] spare for tmp)      */
} rec_scratch;

#define PREFETCH_AHEAD 16
#define TOKEN_BLOCK 32

static inline void prefetch_floats(const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        __builtin_prefetch(x + i);
}

/* Load A (as −exp(A_log)) and h0 of an item, transposed to [N][W]. */
static void item_load(const lat_args *a, const rec_plan *p, const rec_item *r, float *restrict tmp)
{
    const lat_shape *s = a->shape;
    const int N = s->n_state, W = p->W, Dm = mb_channels(s);
    memset(r->hT, 0, sizeof(float) * 2 * (size_t)N * W);
    for (int j = 0; j < r->w; j++) {
        lat_vec_exp(tmp, a->in[3] + (size_t)(r->d0 + j) * N, (size_t)N);
        for (int n = 0; n < N; n++)
            r->AT[(size_t)n * W + j] = -tmp[n];
        if (a->state_in) {
            const float *h0 = a->state_in + ((size_t)r->b * Dm + r->d0 + j) * N;
            for (int n = 0; n < N; n++)
                r->hT[(size_t)n * W + j] = h0[n];
        }
    }
}

static void item_store(const lat_args *a, const rec_item *r, int W)
{
    const lat_shape *s = a->shape;
    const int N = s->n_state, Dm = mb_channels(s);
    for (int j = 0; j < r->w; j++) {
        float *h = a->state_out + ((size_t)r->b * Dm + r->d0 + j) * N;
        for (int n = 0; n < N; n++)
            h[n] = r->hT[(size_t)n * W + j];
    }
}

/* Tokens [t0, t1) of one item. */
static void item_tokens(const lat_args *a, const rec_plan *p, const rec_item *r, int t0, int t1,
                        const rec_scratch *x)
{
    const lat_shape *s = a->shape;
    const int N = s->n_state, W = p->W, w = r->w, Dm = mb_channels(s), G = s->groups;
    const float *u = a->in[0], *dtr = a->in[1], *dtb = a->in[2] + r->d0, *Bm = a->in[4], *Cm = a->in[5];
    const float *Dsk = a->in[6] + r->d0, *z = a->in[7];
    float *restrict delta = x->delta, *restrict du = x->du, *restrict y = x->y;
    float *restrict hT = r->hT;
    const float *restrict AT = r->AT;
    for (int t = t0; t < t1; t++) {
        const size_t ic = ((size_t)r->b * s->T + t) * Dm + r->d0;
        const size_t ig = (((size_t)r->b * s->T + t) * G + r->g) * (size_t)N;
        if (t + PREFETCH_AHEAD < s->T) {
            const size_t pc = ic + (size_t)PREFETCH_AHEAD * Dm, pg = ig + (size_t)PREFETCH_AHEAD * G * N;
            prefetch_floats(u + pc, w), prefetch_floats(dtr + pc, w), prefetch_floats(z + pc, w);
            prefetch_floats(Bm + pg, N), prefetch_floats(Cm + pg, N);
        }
        /* δ = softplus(δ_raw + bias) (pads: δ = 0), δu */
        for (int j = 0; j < w; j++)
            y[j] = dtr[ic + j] + dtb[j];
        softplus_vec(delta, y, w, x->tmp);
        for (int j = w; j < W; j++)
            delta[j] = 0.0f;
        for (int j = 0; j < w; j++)
            du[j] = delta[j] * u[ic + j];
        for (int j = w; j < W; j++)
            du[j] = 0.0f;
        /* per 16-channel slab and state n: e = exp(δ A[·, n]), h = e ⊙ h + δu·B_n,
         * y = Σ_n C_n h with y in registers */
        const float *restrict Bt = Bm + ig, *restrict Ct = Cm + ig;
        for (int j0 = 0; j0 < W; j0 += 16) {
            float acc[16] = {0};
            for (int n = 0; n < N; n++) {
                const float bn = Bt[n], cn = Ct[n];
                float *restrict hp = hT + (size_t)n * W + j0;
                const float *restrict ap = AT + (size_t)n * W + j0;
                float ev[16];
                for (int l = 0; l < 16; l++)
                    ev[l] = delta[j0 + l] * ap[l];
                lat_vec_exp(ev, ev, 16);
#pragma omp simd
                for (int l = 0; l < 16; l++) {
                    const float h = fmaf(ev[l], hp[l], du[j0 + l] * bn);
                    hp[l] = h;
                    acc[l] = fmaf(cn, h, acc[l]);
                }
            }
            for (int l = 0; l < 16; l++)
                y[j0 + l] = acc[l];
        }
        /* out = (y + D u) · silu(z),  silu(z) = z / (1 + e^{−z}) */
        for (int j = 0; j < w; j++)
            x->tmp[j] = -z[ic + j];
        lat_vec_exp(x->tmp, x->tmp, (size_t)w);
        float *o = a->out + ic;
        for (int j = 0; j < w; j++)
            o[j] = (y[j] + Dsk[j] * u[ic + j]) * (z[ic + j] / (1.0f + x->tmp[j]));
    }
}

static lat_status mb_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const int T = s->T, N = s->n_state;
    float *tbase = (float *)a->work + p.item_floats * (size_t)p.items;

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        rec_scratch x;
        x.arow = tbase + p.thread_floats * (size_t)tid;
        x.delta = x.arow + N;
        x.du = x.delta + p.W;
        x.y = x.du + p.W;
        x.tmp = x.y + p.W; /* 2W floats (softplus, gate) or N (A) */
        float *atmp = x.arow;
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) {
            rec_item r = rec_item_at(a, &p, (int)it);
            item_load(a, &p, &r, atmp);
        }
        for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
            const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it);
                item_tokens(a, &p, &r, t0, t1, &x);
            }
        }
        if (a->state_out)
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it);
                item_store(a, &r, p.W);
            }
    }
    return LAT_OK;
}

#endif /* __AVX512F__ */

/* ---- descriptor ---------------------------------------------------------- */

/* The harness's RNG (suites/harness/rng.c), for the custom generators. */

/* δ_bias = softplus⁻¹(dt), dt log-uniform in [1e-3, 1e-1] floored at 1e-4
 * (mamba_simple dt_init). */
static void gen_dt_bias(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    for (size_t i = 0; i < count; i++) {
        double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * lat_rng_uniform(rng));
        dt = dt < 1e-4 ? 1e-4 : dt;
        x[i] = dt + log(-expm1(-dt));
    }
}

/* A_log [Dm][N]: typical log(n + 1) (A[d,n] = −(n+1), the S4D-Real init of
 * mamba_simple); harsh U(−3, 4). */
static void gen_a_log(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const size_t N = (size_t)s->n_state;
    for (size_t i = 0; i < count; i++)
        x[i] = harsh ? -3.0 + 7.0 * lat_rng_uniform(rng) : log((double)(i % N) + 1.0);
}

static const lat_input mb_inputs[] = {
    {.name = "u", .dims = mb_dims_btd, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "scan input u [B][T][Dm] (the conv output), N(0,1)"},
    {.name = "dt", .dims = mb_dims_btd, .dist = LAT_DIST_NORMAL, .a = 0.5, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0,
     .doc = "delta_raw [B][T][Dm], 0.5*N(0,1); delta = softplus(delta_raw + dt_bias); harsh 3*N(0,1)"},
    {.name = "dt_bias", .dims = mb_dims_d, .dist = LAT_DIST_CUSTOM, .custom = gen_dt_bias, .whole = 1,
     .doc = "dt_bias [Dm] = softplus^-1(dt), dt log-uniform in [1e-3, 0.1] (mamba_simple init)"},
    {.name = "A_log", .dims = mb_dims_dn, .dist = LAT_DIST_CUSTOM, .custom = gen_a_log, .whole = 1,
     .doc = "A_log [Dm][N], A = -exp(A_log): log(1..N) (init, A = -(n+1)); harsh U(-3, 4)"},
    {.name = "B", .dims = mb_dims_bc, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "B [B][T][G][N], N(0,1)", .sharpen = 1},
    {.name = "C", .dims = mb_dims_bc, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "C [B][T][G][N], N(0,1)", .sharpen = 1},
    {.name = "D", .dims = mb_dims_d, .dist = LAT_DIST_NORMAL, .a = 0.5, .b = 1.0, .whole = 1,
     .doc = "D skip [Dm], N(1, 0.5^2) (init 1)"},
    {.name = "z", .dims = mb_dims_btd, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "gate z [B][T][Dm], N(0,1); y *= silu(z)"},
};

static const lat_knob mb_knobs[] = {
    LAT_KNOB(causal, 1, 1, 1, "causal only (declared so that the harness treats the method as causal)"),
    LAT_KNOB(n_state, 16, 1, 1024, "SSM state size N (d_state; mamba_simple 16)"),
    LAT_KNOB(groups, 1, 1, 4096, "B/C groups G (channel d reads group d/(Dm/G)); must divide H*V"),
};

static const lat_form mb_forms[] = {
    {"recurrent", mb_recurrent, ws_recurrent, flops_recurrent,
     "sequential selective scan, vectorized over channels, vector exp of the N x W decays per token"},
};

const lat_method lat_method_mamba = {
    .name = "mamba",
    .family = "ssm",
    .paper = "Gu & Dao, Mamba: Linear-Time Sequence Modeling with Selective State Spaces, "
             "arXiv 2312.00752 (COLM 2024)",
    .summary = "selective SSM (S6) scan with softplus dt, D skip and silu(z) gate (N = 16)",
    .dim_map = "channels Dm = H*D (V = D per head), N = n_state (16); K is not used",
    .inputs = mb_inputs,
    .n_inputs = (int)(sizeof mb_inputs / sizeof mb_inputs[0]),
    .knobs = mb_knobs,
    .n_knobs = (int)(sizeof mb_knobs / sizeof mb_knobs[0]),
    .forms = mb_forms,
    .n_forms = (int)(sizeof mb_forms / sizeof mb_forms[0]),
    .out_dims = mb_dims_btd,
    .state_dims = mb_dims_state,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = mb_validate,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_mamba,
    .reference_alt = ref_mamba_parallel,
    /* Measured rel_rmse vs fp64 (seed 42): ≤ 2.6e-7 (output and state),
     * typical or harsh, T up to 65536 (check --long): dA = exp(δA) changes
     * every token, so its fp32 rounding does not add up coherently. */
    .tol_out = 1e-5,
    .tol_state = 1e-5,
    .approximates_softmax = 0,
    .tol_note = NULL,
};
