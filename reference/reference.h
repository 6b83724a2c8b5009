/* reference.h — the fp64 oracles, one per method (reference/<method>.c).
 *
 * Each is written straight from the paper's equations, with no OpenMP inside
 * a slice, no BLAS and no fast-math (built with -O2 -fno-fast-math
 * -ffp-contract=off). Signature: lat_ref_fn of impls/common/lat.h — same
 * buffers and layouts as the fp32 forms, in double. */
#ifndef LAT_REFERENCE_H
#define LAT_REFERENCE_H

#include <math.h>

#include "../impls/common/lat.h"

/* softmax.c */
lat_status ref_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                       double *out, double *state_out);
/* linear_attn.c: quadratic (masked kernel matrix) form and literal recurrence */
lat_status ref_linear_attn(const lat_shape *s, const double *const *in, const double *state_in,
                           double *out, double *state_out);
lat_status ref_linear_attn_recurrent(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out);
/* gla.c: literal recurrence and the quadratic (global cumsum) form */
lat_status ref_gla(const lat_shape *s, const double *const *in, const double *state_in,
                   double *out, double *state_out);
lat_status ref_gla_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out);

/* retnet.c: literal recurrence and the parallel (decay-mask) form; γ_h and the
 * torchscale xPos rotation shared with impls/retnet.c */
lat_status ref_retnet(const lat_shape *s, const double *const *in, const double *state_in,
                      double *out, double *state_out);
lat_status ref_retnet_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                               double *out, double *state_out);
double ref_retnet_log_gamma(int h);
void ref_retnet_rotate(double *y, const double *x, int K, long n);
/* hgrn2.c: literal recurrence (k = 1 − f) and the GLA quadratic form */
lat_status ref_hgrn2(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out);
lat_status ref_hgrn2_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
/* rwkv6.c: literal wkv6 recurrence and the parallel (global cumsum) form */
lat_status ref_rwkv6(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out);
lat_status ref_rwkv6_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);

/* mamba.c: literal selective-scan recurrence and the per-channel GLA quadratic form */
lat_status ref_mamba(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out);
lat_status ref_mamba_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
/* mamba2.c: literal SSD recurrence and the quadratic (1-semiseparable mask) form */
lat_status ref_mamba2(const lat_shape *s, const double *const *in, const double *state_in,
                      double *out, double *state_out);
lat_status ref_mamba2_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                               double *out, double *state_out);
/* s4d.c: literal complex-mode recurrence and the direct Vandermonde convolution */
lat_status ref_s4d(const lat_shape *s, const double *const *in, const double *state_in,
                   double *out, double *state_out);
lat_status ref_s4d_conv(const lat_shape *s, const double *const *in, const double *state_in,
                        double *out, double *state_out);
/* mlstm.c: literal stabilized recurrence and the stabilized parallel (log-max) form */
lat_status ref_mlstm(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out);
lat_status ref_mlstm_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);

/* deltanet.c: literal recurrence and the WY/UT-transform chunk form */
lat_status ref_deltanet(const lat_shape *s, const double *const *in, const double *state_in,
                        double *out, double *state_out);
lat_status ref_deltanet_chunk(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
/* gated_deltanet.c: literal recurrence and the gated UT-transform chunk form */
lat_status ref_gated_deltanet(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
lat_status ref_gated_deltanet_chunk(const lat_shape *s, const double *const *in,
                                    const double *state_in, double *out, double *state_out);

/* masked_softmax.c: the dense masked softmax shared by the sparse / blockwise
 * patterns (§2), softmax over an enumerated key list (their reference_alt),
 * KV-ring helpers and the exact-softmax target. allowed(i, j): query row i of
 * this call may see key j (absolute position) of the nk-key sequence;
 * ranges (optional, NULL → [0, nk)): ≤ 8 disjoint intervals [lo, hi) of j
 * that contain A(i), returns their count. */
typedef struct ref_mask {
    int (*allowed)(const void *ctx, int b, int h, int i, int j);
    int (*ranges)(const void *ctx, int b, int h, int i, int *lo, int *hi);
    const void *ctx;
} ref_mask;
lat_status ref_masked_softmax(const lat_shape *s, const double *q, const double *k, const double *v,
                              int nk, const ref_mask *mask, double *out);
void ref_softmax_keys(int K, int V, const double *q, const double *const *ks, const double *const *vs,
                      int n, double *w, double *o);
/* [B][pos+T][H][K|V] key/value sequences: positions ≥ max(0, pos−R) of the
 * prefix from the ring [B][H][R][K+V] (slot p mod R), older ones 0 */
lat_status ref_kv_sequence(const lat_shape *s, const double *k, const double *v, const double *ring,
                           int R, double **kf, double **vf);
void ref_kv_ring_write(const lat_shape *s, const double *k, const double *v, const double *state_in,
                       double *state_out, int R);
lat_status ref_exact_softmax(const lat_shape *s, const double *const *in, int causal, double *out);
/* sliding_window.c: dense masked form, literal rolling-buffer (ring) decode */
lat_status ref_sliding_window(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
lat_status ref_sliding_window_ring(const lat_shape *s, const double *const *in,
                                   const double *state_in, double *out, double *state_out);
lat_status ref_sliding_window_target(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out);
/* block_local.c: dense masked form, per-block enumeration; the block size
 * and the ring length (shared with impls/block_local.c) */
lat_status ref_block_local(const lat_shape *s, const double *const *in, const double *state_in,
                           double *out, double *state_out);
lat_status ref_block_local_blocks(const lat_shape *s, const double *const *in,
                                  const double *state_in, double *out, double *state_out);
lat_status ref_block_local_target(const lat_shape *s, const double *const *in,
                                  const double *state_in, double *out, double *state_out);
int ref_block_local_size(const lat_shape *s);
int ref_block_local_ring(const lat_shape *s);
/* sparse_strided.c: dense masked form, enumerated A1 ∪ A2 / F1 ∪ F2; the
 * stride l and summary width c (shared with impls/sparse_strided.c) */
lat_status ref_sparse_strided(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
lat_status ref_sparse_strided_sets(const lat_shape *s, const double *const *in,
                                   const double *state_in, double *out, double *state_out);
lat_status ref_sparse_strided_target(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out);
int ref_sparse_strided_stride(const lat_shape *s);
int ref_sparse_strided_summary(const lat_shape *s);
/* longformer.c: dense masked form, the code's "globals prepended + band"
 * enumeration */
lat_status ref_longformer(const lat_shape *s, const double *const *in, const double *state_in,
                          double *out, double *state_out);
lat_status ref_longformer_listed(const lat_shape *s, const double *const *in,
                                 const double *state_in, double *out, double *state_out);
lat_status ref_longformer_target(const lat_shape *s, const double *const *in,
                                 const double *state_in, double *out, double *state_out);

/* performer.c: literal recurrence (running-max key offset) and quadratic form */
lat_status ref_performer(const lat_shape *s, const double *const *in, const double *state_in,
                         double *out, double *state_out);
lat_status ref_performer_parallel(const lat_shape *s, const double *const *in,
                                  const double *state_in, double *out, double *state_out);
size_t ref_performer_state_len(const lat_shape *s);
/* based.c: literal recurrence on the Taylor features, quadratic polynomial
 * kernel form, the exact causal softmax(q.k/sqrt(d')) target, shared helpers */
lat_status ref_based(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out);
lat_status ref_based_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
lat_status ref_based_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                             double *out, double *state_out);
int ref_based_nfeat(const lat_shape *s);
void ref_based_phi(const lat_shape *s, const double *x, double *f);
/* rfa.c: literal (gated) recurrence, quadratic log-space form, exact
 * (gated) softmax over the cosine similarity as the softmax target */
lat_status ref_rfa(const lat_shape *s, const double *const *in, const double *state_in,
                   double *out, double *state_out);
lat_status ref_rfa_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out);
lat_status ref_rfa_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                           double *out, double *state_out);
/* based_hybrid.c: Taylor branch (based.c) + window branch (sliding_window.c) */
lat_status ref_based_hybrid(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out);
lat_status ref_based_hybrid_alt(const lat_shape *s, const double *const *in, const double *state_in,
                                double *out, double *state_out);
lat_status ref_based_hybrid_target(const lat_shape *s, const double *const *in,
                                   const double *state_in, double *out, double *state_out);
/* mobile_attention.c: the code's order (flows, then K×V product; O(T)) and
 * the explicit T×T weights with head sums recomputed per feature */
lat_status ref_mobile_attention(const lat_shape *s, const double *const *in, const double *state_in,
                                double *out, double *state_out);
lat_status ref_mobile_attention_quadratic(const lat_shape *s, const double *const *in,
                                          const double *state_in, double *out, double *state_out);
/* mla.c: cosFormer literal recurrence and the quadratic cos(π(i−j)/2M) kernel
 * form; the re-weighting length M and the feature count (shared with impls/mla.c) */
lat_status ref_mla(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                   double *state_out);
lat_status ref_mla_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out);
int ref_mla_length(const lat_shape *s);
int ref_mla_nfeat(const lat_shape *s);
/* linrec.c: elu-norm literal recurrence and the quadratic explicit-weight form */
lat_status ref_linrec(const lat_shape *s, const double *const *in, const double *state_in,
                      double *out, double *state_out);
lat_status ref_linrec_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                               double *out, double *state_out);
/* vision.c: fp64 core of the vision linear-attention family (FLatten, SLAB,
 * EfficientViT): literal recurrence and quadratic kernel form, one
 * configuration per method; the grid rule Hs·Ws = T (Hs largest divisor ≤ √T) */
typedef struct ref_vla_cfg {
    int focused, p;            /* FLatten focused map, power p (else ReLU + floor) */
    double floor;              /* added after the ReLU                              */
    double eps_const, eps_key; /* ε = eps_const + eps_key·(keys seen by the query)  */
    int dwc, ms;               /* DWC / aggregation kernel sizes (0: none)          */
    int i_pos, i_scale, i_dwc_w, i_dwc_b, i_ms_dw, i_ms_pw; /* input indices, -1: none */
} ref_vla_cfg;
void ref_vision_grid(int T, int *Hs, int *Ws);
lat_status ref_vla_recurrent(const lat_shape *s, const ref_vla_cfg *c, const double *const *in,
                             const double *state_in, double *out, double *state_out);
lat_status ref_vla_quadratic(const lat_shape *s, const ref_vla_cfg *c, const double *const *in,
                             const double *state_in, double *out, double *state_out);
/* flatten.c: focused linear attention (recurrence, quadratic form); FL1
 * diagnostic: ranks and row entropies of N×N maps (res: see flatten.c) */
lat_status ref_flatten(const lat_shape *s, const double *const *in, const double *state_in,
                       double *out, double *state_out);
lat_status ref_flatten_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                                double *out, double *state_out);
int ref_flatten_rank_entropy(int N, int d, int p, uint64_t seed, double res[8]);
/* slab.c: simplified linear attention (recurrence, quadratic form) */
lat_status ref_slab(const lat_shape *s, const double *const *in, const double *state_in,
                    double *out, double *state_out);
lat_status ref_slab_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                             double *out, double *state_out);
/* efficientvit.c: ReLU linear attention (+ multi-scale heads): recurrence, quadratic form */
lat_status ref_efficientvit(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out);
lat_status ref_efficientvit_parallel(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out);
/* agent.c: agent attention, explicit n×N and N×n softmax matrices, and the
 * key-streamed online-softmax form (§0.6 merge); AG1 limit diagnostic */
lat_status ref_agent(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out);
lat_status ref_agent_streamed(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out);
int ref_agent_identity_gap(int side, int d, uint64_t seed, double res[4]);
/* ==== add new methods' prototypes above this line (one block per method) ==== */

/* ---- small fp64 helpers shared by the references ------------------------- */
static inline double ref_logsigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static inline double ref_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
static inline double ref_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }
static inline double ref_elu1(double x) { return x > 0 ? x + 1.0 : exp(x); } /* elu(x) + 1 */

#endif
