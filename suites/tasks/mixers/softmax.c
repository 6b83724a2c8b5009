/* softmax.c — trainable causal softmax attention for the task models
 * (suites/tasks/mq.h), the same function as latbench's `softmax` method
 * (impls/softmax.c, spec/attention.md §1) with learned projections around it.
 *
 *   [q | k | v] = x·W_qkvᵀ + b_qkv            (Zoology MHA: one Linear(D, 3D))
 *   per head h (H heads of d = D/H channels), τ = 1/√d:
 *     s_ij = τ·⟨q_i, k_j⟩ for j ≤ i (causal), o_i = Σ_j softmax_j(s_i·) v_j
 *   y = concat_h(o)·W_oᵀ + b_o
 *
 * No position embedding (B.6: the short conv of layer 0 supplies order, every
 * mixer sees the same inputs), no attention dropout (Zoology: 0.1; runs here
 * are deterministic).
 * Init (Zoology _init_weights): W_qkv ~ N(0, 0.02), W_o ~ N(0, 0.02/√(2·2))
 * (its out_proj rescale for 2 layers), biases 0.
 * Forward: per head the full L×L score block by mq_gemm, masked row softmax,
 * O = P·V by mq_gemm (the `parallel` form). Backward by hand:
 *   dP = dO·Vᵀ, dV = Pᵀ·dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = τ·dS·K, dK = τ·dSᵀ·Q.
 * State (Zoology, B.2): the KV cache, 2·D·L values, 4 bytes each.
 * Size knob: "D" with the single size 64 (B.6 fixes D = 64; attention has no
 * separate state knob — its state grows with L instead).
 *
 * sliding_window.c reuses this file's core with a band mask (w keys
 * including the query, impls/sliding_window.c's convention). */
#include "../mq.h"
#include "../mq_ops.h"
#include <math.h>
#include <string.h>

/* Shared with sliding_window.c (window 0 = full causal). */
size_t mq_attn_n_params(const mq_cfg *c);
void mq_attn_init(const mq_cfg *c, double *p, uint64_t *rng);
size_t mq_attn_cache_doubles(const mq_cfg *c, int L);
void mq_attn_forward(const mq_cfg *c, int window, const double *p, int L, const double *x, double *y, double *cache);
void mq_attn_backward(const mq_cfg *c, int window, const double *p, int L, const double *x, double *cache,
                      const double *dy, double *dx, double *dp);

size_t mq_attn_n_params(const mq_cfg *c)
{
    size_t D = (size_t)c->D;
    return 3 * D * D + 3 * D + D * D + D;
}

void mq_attn_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    size_t D = (size_t)c->D;
    mq_fill_normal(p, 3 * D * D, 0.02, rng);
    mq_fill_const(p + 3 * D * D, 3 * D, 0.0);
    mq_fill_normal(p + 3 * D * D + 3 * D, D * D, 0.02 / sqrt(2.0 * 2), rng);
    mq_fill_const(p + 4 * D * D + 3 * D, D, 0.0);
}

/* cache: qkv [L][3D] | P [H][L][L] | O [L][D] | scratch: dO [L][D], dqkv [L][3D], dP [L][L] */
size_t mq_attn_cache_doubles(const mq_cfg *c, int L)
{
    size_t D = (size_t)c->D, LL = (size_t)L * (size_t)L, H = (size_t)(c->H > 0 ? c->H : 1);
    return (size_t)L * 3 * D + H * LL + (size_t)L * D + (size_t)L * D + (size_t)L * 3 * D + LL;
}

static int heads(const mq_cfg *c) { return c->H > 0 && c->D % c->H == 0 ? c->H : 1; }

void mq_attn_forward(const mq_cfg *c, int window, const double *p, int L, const double *x, double *y, double *cache)
{
    const int D = c->D, H = heads(c), dh = D / H, D3 = 3 * D;
    const size_t LL = (size_t)L * L;
    const double *Wqkv = p, *bqkv = p + 3 * (size_t)D * D, *Wo = bqkv + D3, *bo = Wo + (size_t)D * D;
    const double tau = 1.0 / sqrt((double)dh);
    if (cache) { /* training (and the task model's evaluation): the parallel form */
        double *qkv = cache, *P = qkv + (size_t)L * D3, *O = P + (size_t)H * LL;
        mq_linear_fwd(L, D, D3, x, D, Wqkv, bqkv, qkv, D3);
        for (int h = 0; h < H; h++) {
            double *Ph = P + (size_t)h * LL;
            mq_gemm(0, 1, L, L, dh, tau, qkv + h * dh, D3, qkv + D + h * dh, D3, 0.0, Ph, L);
            for (int i = 0; i < L; i++) {
                double *r = Ph + (size_t)i * L;
                int lo = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
                double mx = -INFINITY, s = 0;
                for (int j = lo; j <= i; j++)
                    mx = r[j] > mx ? r[j] : mx;
                for (int j = 0; j < lo; j++)
                    r[j] = 0;
                for (int j = lo; j <= i; j++) {
                    r[j] = exp(r[j] - mx);
                    s += r[j];
                }
                double inv = 1.0 / s;
                for (int j = lo; j <= i; j++)
                    r[j] *= inv;
                for (int j = i + 1; j < L; j++)
                    r[j] = 0;
            }
            mq_gemm(0, 0, L, dh, L, 1.0, Ph, L, qkv + 2 * D + h * dh, D3, 0.0, O + h * dh, D);
        }
        mq_linear_fwd(L, D, D, O, D, Wo, bo, y, D);
        return;
    }
    /* cache == NULL (the interface's inference call; mq_gradcheck_mixer uses it): no scratch is
     * given, so row by row with an online softmax (spec §0.6), keys and values recomputed from x —
     * O(L²·D²), a second, independent code path that the gradient check compares against.
     * Needs D ≤ 512 (stack rows); the trainer always passes a cache. */
    if (D > 512)
        return;
    for (int i = 0; i < L; i++) {
        double o[512], q[512];
        int lo = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
        /* q_i */
        for (int e = 0; e < D; e++) {
            double s = bqkv[e];
            for (int d = 0; d < D; d++)
                s += Wqkv[(size_t)e * D + d] * x[(size_t)i * D + d];
            q[e] = s;
        }
        for (int h = 0; h < H; h++) {
            double mx = -INFINITY, den = 0;
            double *oh = o + h * dh;
            for (int e = 0; e < dh; e++)
                oh[e] = 0;
            for (int j = lo; j <= i; j++) {
                double sc = 0;
                for (int e = 0; e < dh; e++) {
                    double kj = bqkv[D + h * dh + e];
                    for (int d = 0; d < D; d++)
                        kj += Wqkv[(size_t)(D + h * dh + e) * D + d] * x[(size_t)j * D + d];
                    sc += q[h * dh + e] * kj;
                }
                sc *= tau;
                double nm = sc > mx ? sc : mx, a = exp(mx - nm), b = exp(sc - nm);
                den = den * a + b;
                for (int e = 0; e < dh; e++) {
                    double vj = bqkv[2 * D + h * dh + e];
                    for (int d = 0; d < D; d++)
                        vj += Wqkv[(size_t)(2 * D + h * dh + e) * D + d] * x[(size_t)j * D + d];
                    oh[e] = oh[e] * a + b * vj;
                }
                mx = nm;
            }
            for (int e = 0; e < dh; e++)
                oh[e] /= den;
        }
        for (int e = 0; e < D; e++) {
            double s = bo[e];
            for (int d = 0; d < D; d++)
                s += Wo[(size_t)e * D + d] * o[d];
            y[(size_t)i * D + e] = s;
        }
    }
}

void mq_attn_backward(const mq_cfg *c, int window, const double *p, int L, const double *x, double *cache,
                      const double *dy, double *dx, double *dp)
{
    const int D = c->D, H = heads(c), dh = D / H, D3 = 3 * D;
    const size_t LL = (size_t)L * L;
    const double *Wqkv = p, *Wo = p + 3 * (size_t)D * D + D3;
    double *dWqkv = dp, *dbqkv = dp + 3 * (size_t)D * D, *dWo = dbqkv + D3, *dbo = dWo + (size_t)D * D;
    const double tau = 1.0 / sqrt((double)dh);
    double *qkv = cache, *P = qkv + (size_t)L * D3, *O = P + (size_t)H * LL;
    double *dO = O + (size_t)L * D, *dqkv = dO + (size_t)L * D, *dP = dqkv + (size_t)L * D3;
    (void)window; /* the mask is carried by P (zeros outside the band) */
    memset(dO, 0, sizeof(double) * (size_t)L * D);
    mq_linear_bwd(L, D, D, O, D, Wo, dy, D, dO, D, dWo, dbo);
    for (int h = 0; h < H; h++) {
        const double *Ph = P + (size_t)h * LL;
        const double *Q = qkv + h * dh, *K = qkv + D + h * dh, *Vv = qkv + 2 * D + h * dh;
        double *dQ = dqkv + h * dh, *dK = dqkv + D + h * dh, *dV = dqkv + 2 * D + h * dh;
        /* dP = dO_h · V_hᵀ,  dV_h = P_hᵀ · dO_h */
        mq_gemm(0, 1, L, L, dh, 1.0, dO + h * dh, D, Vv, D3, 0.0, dP, L);
        mq_gemm(1, 0, L, dh, L, 1.0, Ph, L, dO + h * dh, D, 0.0, dV, D3);
        for (int i = 0; i < L; i++) { /* dS = P ⊙ (dP − Σ_j P dP), scaled by τ */
            const double *pr = Ph + (size_t)i * L;
            double *r = dP + (size_t)i * L, s = 0;
            for (int j = 0; j <= i; j++)
                s += pr[j] * r[j];
            for (int j = 0; j <= i; j++)
                r[j] = tau * pr[j] * (r[j] - s);
            for (int j = i + 1; j < L; j++)
                r[j] = 0;
        }
        mq_gemm(0, 0, L, dh, L, 1.0, dP, L, K, D3, 0.0, dQ, D3);
        mq_gemm(1, 0, L, dh, L, 1.0, dP, L, Q, D3, 0.0, dK, D3);
    }
    memset(dx, 0, sizeof(double) * (size_t)L * D);
    mq_linear_bwd(L, D, D3, x, D, Wqkv, dqkv, D3, dx, D, dWqkv, dbqkv);
}

static size_t sm_n_params(const mq_cfg *c) { return mq_attn_n_params(c); }
static void sm_init(const mq_cfg *c, double *p, uint64_t *rng) { mq_attn_init(c, p, rng); }
static size_t sm_cache(const mq_cfg *c, int L) { return mq_attn_cache_doubles(c, L); }
static void sm_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y, double *cache)
{
    mq_attn_forward(c, 0, p, L, x, y, cache);
}
static void sm_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache, const double *dy,
                        double *dx, double *dp)
{
    mq_attn_backward(c, 0, p, L, x, cache, dy, dx, dp);
}
static double sm_state_bytes(const mq_cfg *c, int L) { return 2.0 * c->D * L * 4.0; }

const mq_mixer mq_mixer_softmax = {
    .name = "softmax",
    .size_knob = "D",
    .sizes = {64, 0},
    .doc = "causal softmax attention, H heads (1), tau 1/sqrt(D/H), no positions; W_qkv N(0,0.02), W_o N(0,0.01), "
           "biases 0 (Zoology MHA, no dropout); state 2*D*L*4 bytes (KV cache)",
    .n_params = sm_n_params,
    .init = sm_init,
    .cache_doubles = sm_cache,
    .forward = sm_forward,
    .backward = sm_backward,
    .state_bytes = sm_state_bytes,
};
