/* slab.c — SLAB simplified linear attention (Guo, Chen, Tang, Wang; "SLAB:
 * Efficient Transformers with Simplified Linear Attention and Progressive
 * Re-parameterized Batch Normalization", ICML 2024, arXiv 2405.11582),
 * forward core, fp32. Spec: spec/attention.md §8; code xinghaochen/SLAB
 * classification/models/slab_swin.py::SimplifiedLinearAttention.
 *
 * Per head, non-causal on the Hs×Ws grid of the T tokens, k ← k + P_t:
 *     o_i = ReLU(q_i)ᵀ Σ_j ReLU(k_j) v_jᵀ / (⟨ReLU(q_i), Σ_j ReLU(k_j)⟩ + 1e-6) + DWC(V)_i
 * ReLU kernel with no floor (a row with ReLU(q) = 0 gives 0/1e-6 = 0 plus the
 * DWC), no 1/√D, ε = 1e-6 on the sum (not N·1e-6 as FLatten), the attention
 * in fp32 as the code. DWC: 5×5 depthwise conv of V, weights [V][k][k] and
 * bias [V] shared by all heads (as FLatten). The code's cost-based order
 * switch (N×N form when N ≤ D) gives the same value; here the kv-first
 * order always. PRepBN (the paper's other half) is an affine map folded into
 * the q/k/v projections at inference (spec §8): not part of this function.
 *
 * Decisions on the open points (spec Appendix C.9):
 *   grid      T = Hs×Ws row-major, Hs the largest divisor of T not above √T
 *             (63 → 7×9, 65 → 5×13, prime → 1×T): every T runs.
 *   causal    (knob causal = 1, not in the paper): j ≤ i, ε = 1e-6, causal
 *             depthwise 1-D conv o_t += b + Σ_{u<k} w_u ∘ v_{t−u}; keeps a
 *             state and decodes (form recurrent).
 *   inputs    P [B][T][H][K] per token (one [T][C] N(0, 0.02²) draw repeated
 *             over the batch; zero-init in the paper), DWC weights and bias
 *             U(±1/√taps) (PyTorch conv init).
 *   knobs     window = DWC kernel k (5; 0 = no DWC).
 *
 * State (causal only) [B][H][K(V+1) + (k−1)V]: [S | z] then the conv tail
 *   (row u = v at position pos−1−u); D·Dv + D + (k−1)·Dv floats per head.
 * Forms, cost, memory, threads: as flatten.c (shared engine lat_vision.c)
 *   without the focusing pre-pass: 4K(V+1) + 2k²V + V per head and token.
 *   Measured (1 thread, CPU time, B1 T8192 H8 D64): parallel ≈ 58 GFLOP/s,
 *   causal chunk ≈ 69, causal recurrent ≈ 41; SL1: at N = 3136, d = 32,
 *   H = 2 the parallel form takes ≈ 0.74× FLatten's time.
 * Run: build/latbench run --method slab --form parallel --B 1 --T 3136 --H 2 --D 32 --threads 2
 *      build/latbench check --methods slab
 */
#include "common/lat_vision.h"

static lat_vla config(const lat_shape *s, const lat_args *a)
{
    lat_vla c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.map = LAT_VLA_RELU;
    c.floor = 0.0f;
    c.eps_const = 1e-6;
    c.eps_key = 0.0;
    c.dwc = s->window;
    c.has_pos = 1;
    if (a) {
        c.q = a->in[0], c.k = a->in[1], c.v = a->in[2], c.pos = a->in[3];
        c.dwc_w = a->in[4], c.dwc_b = a->in[5];
    }
    return c;
}

#define FORM(name, kind)                                                                     \
    static lat_status name##_run(const lat_args *a)                                         \
    {                                                                                        \
        lat_vla c = config(a->shape, a);                                                     \
        return lat_vla_run(&c, kind, a);                                                     \
    }                                                                                        \
    static size_t name##_ws(const lat_shape *s, int nthreads)                               \
    {                                                                                        \
        lat_vla c = config(s, NULL);                                                         \
        return lat_vla_workspace(&c, kind, nthreads);                                        \
    }                                                                                        \
    static double name##_flops(const lat_shape *s)                                          \
    {                                                                                        \
        lat_vla c = config(s, NULL);                                                         \
        return lat_vla_flops(&c, kind);                                                      \
    }
FORM(sl_parallel, LAT_VLA_PARALLEL)
FORM(sl_chunk, LAT_VLA_CHUNK)
FORM(sl_recurrent, LAT_VLA_RECURRENT)
#undef FORM

static int taps(const lat_shape *s) { return s->causal ? s->window : s->window * s->window; }

static int dims_state(const lat_shape *s, size_t dims[8])
{
    lat_vla c = config(s, NULL);
    dims[0] = (size_t)s->B;
    dims[1] = s->causal ? (size_t)s->H : 0;
    dims[2] = s->causal ? lat_vla_state_floats(&c) / (size_t)s->H : 0;
    return 3;
}

static int dims_dwc_w(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->V;
    dims[1] = (size_t)taps(s);
    return 2;
}

static int dims_dwc_b(const lat_shape *s, size_t dims[8])
{
    dims[0] = s->window > 0 ? (size_t)s->V : 0;
    return 1;
}

static double state_bytes(const lat_shape *s)
{
    lat_vla c = config(s, NULL);
    return 4.0 * (double)s->B * (double)lat_vla_state_floats(&c);
}

static double bytes(const lat_shape *s)
{
    lat_vla c = config(s, NULL);
    return lat_vla_bytes(&c) + 4.0 * (double)(taps(s) + 1) * s->V;
}

static lat_status validate(const lat_shape *s, char *why, size_t len)
{
    if (s->window > 0 && s->window % 2 == 0)
        return lat_unsupported(why, len, "DWC kernel window=%d must be odd (or 0 for none)", s->window);
    return LAT_OK;
}

static void gen_pos(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const size_t per = count / (size_t)s->B;
    for (size_t i = 0; i < per; i++)
        x[i] = (harsh ? 1.0 : 0.02) * lat_rng_normal(rng);
    for (int b = 1; b < s->B; b++)
        memcpy(x + (size_t)b * per, x, per * sizeof(double));
}

static void gen_dwc(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const double bound = 1.0 / sqrt((double)(taps(s) > 0 ? taps(s) : 1));
    (void)harsh;
    for (size_t i = 0; i < count; i++)
        x[i] = bound * (2.0 * lat_rng_uniform(rng) - 1.0);
}

static const lat_input sl_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 2.0, .hb = -3.0,
     .doc = "queries [B][T][H][K], N(0,1); harsh 2·N(0,1) − 3 (7% of features nonzero, ~1% of "
            "rows all zero: the 0/1e-6 path)",
     .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 2.0, .hb = -3.0,
     .doc = "keys [B][T][H][K], N(0,1); harsh as q", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
    {.name = "pos", .dims = lat_dims_bthk, .dist = LAT_DIST_CUSTOM, .custom = gen_pos,
     .harsh_dist = LAT_DIST_CUSTOM, .doc = "positional encoding P added to k [B][T][H][K]: one "
     "N(0, 0.02²) [T][C] draw repeated over the batch (harsh N(0,1))"},
    {.name = "dwc_w", .dims = dims_dwc_w, .dist = LAT_DIST_CUSTOM, .custom = gen_dwc, .whole = 1,
     .doc = "DWC weights [V][k·k] (causal [V][k]) shared by the heads, U(±1/√taps)"},
    {.name = "dwc_b", .dims = dims_dwc_b, .dist = LAT_DIST_CUSTOM, .custom = gen_dwc, .whole = 1,
     .doc = "DWC bias [V], U(±1/√taps)"},
};

static const lat_knob sl_knobs[] = {
    LAT_KNOB(causal, 0, 0, 1, "0 non-causal on the image grid (the paper); 1 causal variant "
                              "(prefix sums, causal 1-D DWC)"),
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the chunk form"),
    LAT_KNOB(window, 5, 0, 9, "DWC kernel size k (odd; 0 = no DWC branch)"),
};

static const lat_form sl_forms[] = {
    {"parallel", sl_parallel_run, sl_parallel_ws, sl_parallel_flops,
     "non-causal: ReLU(K)^T[V|1] then ReLU(Q)·that (two GEMMs, kv-first); causal: masked "
     "quadratic blocks"},
    {"chunk", sl_chunk_run, sl_chunk_ws, sl_chunk_flops,
     "chunkwise on the GLA-family engine (no decay), the causal workhorse"},
    {"recurrent", sl_recurrent_run, sl_recurrent_ws, sl_recurrent_flops,
     "token by token (lat_rec_step on [v|1]); the decode step of the causal variant"},
};

const lat_method lat_method_slab = {
    .name = "slab",
    .family = "linear",
    .paper = "Guo et al., SLAB: Efficient Transformers with Simplified Linear Attention and "
             "Progressive Re-parameterized Batch Normalization, ICML 2024 (arXiv 2405.11582)",
    .summary = "simplified linear attention: ReLU kernel, eps 1e-6, + 5×5 DWC on V, pos. enc. on K; "
               "T tokens on an Hs×Ws grid",
    .dim_map = "K = V = D; grid Hs×Ws = T (Hs the largest divisor of T not above √T)",
    .inputs = sl_inputs,
    .n_inputs = (int)(sizeof sl_inputs / sizeof sl_inputs[0]),
    .knobs = sl_knobs,
    .n_knobs = (int)(sizeof sl_knobs / sizeof sl_knobs[0]),
    .forms = sl_forms,
    .n_forms = (int)(sizeof sl_forms / sizeof sl_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = dims_state,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = validate,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_slab,
    .reference_alt = ref_slab_parallel,
    .tol_out = 1e-5,
    .tol_state = 1e-4,
    .approximates_softmax = 0,
    .softmax_target = lat_vision_softmax_target,
    .quadratic = 0,
    .tol_note = "state tolerance 1e-4: the causal state is an O(t)-growing prefix sum accumulated "
                "in fp32",
};
