/* deltanet.c — trainable DeltaNet mixer (issue 7 task models): the delta rule
 * (Schlag et al. 2021; Yang et al., NeurIPS 2024, arXiv 2406.06484) in the fla
 * DeltaNet layer as Zoology runs it (zoology/mixers/delta_net.py), fp64, with
 * its hand-written backward (mq_delta_core.c).
 *
 * Sequence op: exactly impls/deltanet.c's function (spec/recurrent.md §3.3):
 * L2-normalized q, k inside the op (x/sqrt(‖x‖² + 1e-6), fla l2norm), scalar
 * β ∈ (0, 1) per head and token, key-major state S ∈ R^{K×V},
 * u_t = β_t (v_t − S_{t−1}ᵀk̂_t), S_t = S_{t−1} + k̂_t u_tᵀ, o_t = K^{−1/2} S_tᵀq̂_t.
 *
 * Layer (fla DeltaNet with use_short_conv = False, use_gate = False,
 * qk_activation = silu, qk_norm = l2, use_beta = True):
 *   q, k = silu(x W_q), silu(x W_k) (H·K), v = silu(x W_v) (D), β = σ(x W_β);
 *   o = op(q, k, v, β); y = RMSNorm_head(o) (eps 1e-5, weight [V] shared by the
 *   heads, init 1) W_o. No biases (fla). K = dk per head, V = D/H per head.
 * Init: all projections N(0, 0.02) (Zoology's _init_weights re-initializes
 *   every nn.Linear so; its residual rescaling applies to `out_proj`/`fc2`,
 *   not fla's `o_proj`), RMSNorm weight 1.
 * Differences from Zoology's run: no ShortConvolution (k = 4) on q, k, v —
 *   layer 0 of the B.6 model already is a short causal conv, and fla's
 *   no-conv branch (silu on q, k, v) is used instead; fp64 instead of bf16.
 * State size: Zoology's H·d_k·d_v fp32 bytes = 4·dk·D (B.2).
 * Backward: BPTT over the recurrence with the state checkpointed every 16
 *   tokens (recomputed in the backward pass).
 */
#include "mq_delta_core.h"

static size_t dn_n_params(const mq_cfg *c) { return mq_deltalayer_n_params(c, 0); }
static void dn_init(const mq_cfg *c, double *p, uint64_t *rng) { mq_deltalayer_init(c, 0, p, rng); }
static size_t dn_cache(const mq_cfg *c, int L) { return mq_deltalayer_cache_doubles(c, 0, L); }
static void dn_fwd(const mq_cfg *c, const double *p, int L, const double *x, double *y, double *cache)
{
    mq_deltalayer_forward(c, 0, p, L, x, y, cache);
}
static void dn_bwd(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                   const double *dy, double *dx, double *dp)
{
    mq_deltalayer_backward(c, 0, p, L, x, cache, dy, dx, dp);
}

const mq_mixer mq_mixer_deltanet = {
    .name = "deltanet",
    .size_knob = "dk",
    .sizes = { 16, 32, 64, 0 },
    .doc = "fla DeltaNet layer w/o short conv: q,k,v=silu(xW), beta=sigmoid(xW_b), l2-normed q,k in "
           "the delta rule (impls/deltanet.c), per-head RMSNorm, W_o; all W ~ N(0,0.02); "
           "state 4*dk*D bytes (Zoology H*dk*dv)",
    .n_params = dn_n_params,
    .init = dn_init,
    .cache_doubles = dn_cache,
    .forward = dn_fwd,
    .backward = dn_bwd,
    .state_bytes = mq_deltalayer_state_bytes,
};
