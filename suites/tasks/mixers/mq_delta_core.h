/* mq_delta_core.h — the delta rule (DeltaNet) with an optional scalar decay
 * gate (Gated DeltaNet) as a trainable fp64 sequence op with its hand-written
 * backward pass, and the DeltaNet / Gated DeltaNet layer built on it
 * (suites/tasks/mixers/deltanet.c, gated_deltanet.c).
 *
 * The op is impls/deltanet.c / impls/gated_deltanet.c's function, per head h,
 * key-major state S ∈ R^{K×V}, S_0 = 0, s = K^{−1/2}:
 *     k̂_t = k_t / sqrt(‖k_t‖² + 1e-6),  q̂_t = q_t / sqrt(‖q_t‖² + 1e-6)  (fla l2norm)
 *     α_t = e^{a_t}  (a_t ≤ 0 the log-decay; α = 1 for DeltaNet)
 *     S̃ = α_t S_{t−1},  u_t = β_t (v_t − S̃ᵀ k̂_t),  S_t = S̃ + k̂_t u_tᵀ
 *     o_t = s · S_tᵀ q̂_t                                   (after the update)
 * Inputs q, k [L][·] (head h at columns h·K), v [L][·] (head h at h·V),
 * β [L][·] (head h at column h), a likewise (NULL → DeltaNet); each with its
 * own row stride. Output o [L][·] (head h at h·V).
 *
 * Backward: backpropagation through time over the recurrence. The forward
 * keeps S at every MQ_DELTA_CHUNK-th token; the backward recomputes the
 * chunk's states S_{t−1} from there (3KV FLOPs/token) and applies, per token,
 *     dS += s q̂ doᵀ;  du = dSᵀk̂;  dk̂ = dS u;  dv = β du;  dβ = du·(v − p);
 *     dp = −β du;  dS̃ = dS + k̂ dpᵀ;  dk̂ += S̃ dp;  dq̂ = s(S̃ do + k̂ (u·do));
 *     da = ⟨dS̃, S̃⟩;  dS ← α dS̃
 * (p = S̃ᵀk̂, S̃ = α S_{t−1}) in ONE pass over the rows of the K×V adjoint per
 * token: the dS̃ half of token t fused with the readout half of token t − 1,
 * rows in fours (≈ 17KV FLOPs/token); then through the l2norm:
 * dx = r(dx̂ − x̂(x̂·dx̂)), r = 1/sqrt(‖x‖² + 1e-6). Inference (no cache) runs
 * the same forward over blocks of tokens with the state carried.
 */
#ifndef MQ_DELTA_CORE_H
#define MQ_DELTA_CORE_H
#include <stddef.h>
#include <stdint.h>

#include "../mq.h"

#define MQ_DELTA_CHUNK 16

typedef struct {
    int L, H, K, V;
    const double *q, *k, *v, *beta, *a;   /* a == NULL: ungated (DeltaNet) */
    int ldq, ldk, ldv, ldb, lda;
} mq_delta_io;

/* doubles of cache the op needs (forward saves + backward scratch) */
size_t mq_delta_cache_doubles(int L, int H, int K, int V);
/* o [L][ldo] (head h at column h·V); training call over the whole sequence */
void mq_delta_fwd(const mq_delta_io *io, double *o, int ldo, double *cache);
/* inference: io->L tokens continuing from the state kept in work
 * (mq_delta_span_doubles(n ≥ io->L, …) doubles; first = 1 starts from S = 0) */
size_t mq_delta_span_doubles(int n, int H, int K, int V);
void mq_delta_span(const mq_delta_io *io, double *o, int ldo, double *work, int first);
/* do_ [L][lddo]; writes (overwrites) dq, dk [L][lddqk], dv [L][lddv],
 * dbeta, da [L][lddg] (da ignored when ungated). cache from mq_delta_fwd. */
void mq_delta_bwd(const mq_delta_io *io, const double *do_, int lddo, double *dq, double *dk,
                  int lddqk, double *dv, int lddv, double *dbeta, double *da, int lddg,
                  double *cache);

/* The layer (fla DeltaNet / GatedDeltaNet with use_short_conv = False, as
 * Zoology configures them otherwise; see deltanet.c for the parametrization). */
size_t mq_deltalayer_n_params(const mq_cfg *c, int gated);
void   mq_deltalayer_init(const mq_cfg *c, int gated, double *p, uint64_t *rng);
size_t mq_deltalayer_cache_doubles(const mq_cfg *c, int gated, int L);
void   mq_deltalayer_forward(const mq_cfg *c, int gated, const double *p, int L, const double *x,
                             double *y, double *cache);
void   mq_deltalayer_backward(const mq_cfg *c, int gated, const double *p, int L, const double *x,
                              double *cache, const double *dy, double *dx, double *dp);
double mq_deltalayer_state_bytes(const mq_cfg *c, int L);

#endif
