/* gated_deltanet.c — trainable Gated DeltaNet mixer (issue 7 task models): the
 * delta rule with a data-dependent scalar decay per head (Yang, Kautz,
 * Hatamizadeh, ICLR 2025, arXiv 2412.06464) in the fla GatedDeltaNet layer as
 * Zoology runs it (zoology/mixers/gated_delta_net.py), fp64, with its
 * hand-written backward (mq_delta_core.c, shared with deltanet).
 *
 * Sequence op: exactly impls/gated_deltanet.c's function (spec/recurrent.md
 * §3.3): L2-normalized q, k inside the op, S̃ = e^{a_t} S_{t−1} (decay first),
 * u_t = β_t (v_t − S̃ᵀk̂_t), S_t = S̃ + k̂_t u_tᵀ, o_t = K^{−1/2} S_tᵀq̂_t.
 *
 * Layer (fla GatedDeltaNet with use_short_conv = False, use_gate = False):
 *   q, k, v = silu(x W_q), silu(x W_k), silu(x W_v); β = σ(x W_β);
 *   a = −exp(A_log)·softplus(x W_a + dt_bias) (per head; the official code's
 *   gate, softplus with PyTorch's threshold 20); o = op(q, k, v, β, a);
 *   y = RMSNorm_head(o) (eps 1e-5, weight [V] shared by the heads) W_o.
 *   K = dk per head, V = D/H per head (Zoology uses expand_v = 2; here d_v = D
 *   so the state sweep matches DeltaNet's).
 * Init: projections N(0, 0.02) (Zoology re-init of nn.Linear); A ~ U(0, 16],
 *   A_log = log A; dt log-uniform in [1e-3, 0.1] (floor 1e-4), dt_bias =
 *   softplus⁻¹(dt) — the official code's; RMSNorm weight 1. The unused D
 *   parameter of the official layer is omitted.
 * Differences from Zoology's run: no ShortConvolution on q, k, v (layer 0 of
 *   the B.6 model is the short conv; fla's no-conv branch applies silu), fp64.
 * State size: Zoology's H·d_k·d_v fp32 bytes = 4·dk·D.
 * Backward: BPTT, state checkpointed every 16 tokens; da_t = ⟨dS̃_t, S̃_t⟩.
 */
#include "mq_delta_core.h"

static size_t gdn_n_params(const mq_cfg *c) { return mq_deltalayer_n_params(c, 1); }
static void gdn_init(const mq_cfg *c, double *p, uint64_t *rng) { mq_deltalayer_init(c, 1, p, rng); }
static size_t gdn_cache(const mq_cfg *c, int L) { return mq_deltalayer_cache_doubles(c, 1, L); }
static void gdn_fwd(const mq_cfg *c, const double *p, int L, const double *x, double *y, double *cache)
{
    mq_deltalayer_forward(c, 1, p, L, x, y, cache);
}
static void gdn_bwd(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                    const double *dy, double *dx, double *dp)
{
    mq_deltalayer_backward(c, 1, p, L, x, cache, dy, dx, dp);
}

const mq_mixer mq_mixer_gated_deltanet = {
    .name = "gated_deltanet",
    .size_knob = "dk",
    .sizes = { 16, 32, 64, 0 },
    .doc = "fla GatedDeltaNet layer w/o short conv: deltanet + decay a=-exp(A_log)*softplus(xW_a+dt_bias) "
           "(A~U(0,16), dt log-U[1e-3,0.1]) as impls/gated_deltanet.c; W ~ N(0,0.02); "
           "state 4*dk*D bytes (Zoology H*dk*dv)",
    .n_params = gdn_n_params,
    .init = gdn_init,
    .cache_doubles = gdn_cache,
    .forward = gdn_fwd,
    .backward = gdn_bwd,
    .state_bytes = mq_deltalayer_state_bytes,
};
