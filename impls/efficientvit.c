/* efficientvit.c — EfficientViT ReLU linear attention with multi-scale token
 * aggregation (Cai, Li, Hu, Gan, Han; "EfficientViT: Multi-Scale Linear
 * Attention for High-Resolution Dense Prediction", ICCV 2023, arXiv
 * 2205.14756), forward core, fp32. Spec: spec/attention.md §7, Appendix B;
 * code mit-han-lab/efficientvit efficientvit/models/nn/ops.py::LiteMLA. (Not
 * Microsoft's EfficientViT, CVPR 2023, cascaded group attention.)
 *
 * Per head, non-causal on the Hs×Ws grid:
 *     o_i = Σ_j ⟨ReLU(q_i), ReLU(k_j)⟩ v_j / (Σ_j ⟨ReLU(q_i), ReLU(k_j)⟩ + 1e-15)
 *         = (Σ_j v_j ReLU(k_j)ᵀ) ReLU(q_i) / (⟨ReLU(q_i), Σ_j ReLU(k_j)⟩ + 1e-15)
 * No 1/√d, ε = 1e-15 (part of the function, Appendix B); the code's padding
 * trick (a row of ones under V) is exactly the [V | 1] value block here, so
 * numerator and denominator come out of the same GEMMs. A zero denominator
 * (ReLU(q) = 0) has a zero numerator: o = 0/ε = 0.
 * variant 1 — multi-scale tokens (LiteMLA scales = (5,)): for each head h,
 *     [q' | k' | v'] = GroupConv1×1_{3H groups}( DWConv_{5×5}( [q | k | v] ) )
 * (no biases: use_bias = False), and heads H..2H−1 of the output are the core
 * formula on q', k', v' of head h − H (torch.cat([qkv, agg]) order): the
 * output is [B][T][2H][V]. The aggregation runs as a pre-pass (depthwise conv
 * on the grid, then one GEMM per (b, h, q|k|v)) into the workspace.
 *
 * Decisions on the open points (spec Appendix C.9):
 *   grid      T = Hs×Ws row-major, Hs the largest divisor of T not above √T
 *             (prime T → 1×T): every T runs.
 *   variant   0 by default: the ReLU attention core that the claims compare
 *             (EV1); 1 adds the aggregated heads (the model's default).
 *   causal    (knob causal = 1, not in the paper): ReLU causal linear
 *             attention with ε = 1e-15; with variant 1 the depthwise conv of
 *             the aggregation becomes causal 1-D over time (weights
 *             [H][2K+V][5]); keeps a state and decodes (form recurrent).
 *   inputs    aggregation weights with PyTorch's conv init: depthwise
 *             U(±1/√taps), pointwise U(±1/√d) (groups of d = K, K, V
 *             channels, layout [H][K·K | K·K | V·V], rows = out channels).
 *
 * State (causal only): variant 0 [B][H][K][V+1] = [S | z] per head, d(d+1)
 *   floats (spec §7); variant 1 [B][2H·K(V+1) + 4·H(2K+V)]: the 2H heads'
 *   states, then the last 4 raw q|k|v rows of every head (conv tail).
 * Forms, threads: as flatten.c (shared engine lat_vision.c). Cost per
 *   output head and token 4K(V+1) + V; variant 1 doubles the heads and adds
 *   2·25·(2K+V) + 2(2K² + V²) per input head and token. No exp() anywhere
 *   on this path (EV1). Measured (1 thread, CPU time, B1 T8192 H8 D64; FMA
 *   peak ≈ 117): parallel ≈ 68 GFLOP/s (the GEMMs ≈ 2/3 of the time; the
 *   q/k/v row streams, ≈ 48 MB, and the o writes, non-temporal, bound the
 *   rest), causal chunk ≈ 74, causal recurrent ≈ 45.
 * Run: build/latbench run --method efficientvit --form parallel --B 1 --T 4096 --H 8 --D 32 --threads 2
 *      build/latbench check --methods efficientvit
 */
#include "common/lat_vision.h"

#define EV_SCALE 5 /* LiteMLA scales = (5,) */

static lat_vla config(const lat_shape *s, const lat_args *a)
{
    lat_vla c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.map = LAT_VLA_RELU;
    c.floor = 0.0f;
    c.eps_const = 1e-15;
    c.eps_key = 0.0;
    c.dwc = 0;
    c.ms = s->variant ? EV_SCALE : 0;
    if (a) {
        c.q = a->in[0], c.k = a->in[1], c.v = a->in[2];
        c.ms_dw = a->in[3], c.ms_pw = a->in[4];
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
FORM(ev_parallel, LAT_VLA_PARALLEL)
FORM(ev_chunk, LAT_VLA_CHUNK)
FORM(ev_recurrent, LAT_VLA_RECURRENT)
#undef FORM

static int out_heads(const lat_shape *s) { return s->variant ? 2 * s->H : s->H; }

static int dims_out(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->B;
    dims[1] = (size_t)s->T;
    dims[2] = (size_t)out_heads(s);
    dims[3] = (size_t)s->V;
    return 4;
}

static int dims_state(const lat_shape *s, size_t dims[8])
{
    lat_vla c = config(s, NULL);
    dims[0] = (size_t)s->B;
    if (!s->causal) {
        dims[1] = 0;
        return 2;
    }
    if (s->variant) {
        dims[1] = lat_vla_state_floats(&c);
        return 2;
    }
    dims[1] = (size_t)s->H;
    dims[2] = (size_t)s->K;
    dims[3] = (size_t)s->V + 1;
    return 4;
}

static int dims_ms_dw(const lat_shape *s, size_t dims[8])
{
    dims[0] = s->variant ? (size_t)s->H : 0;
    dims[1] = 2 * (size_t)s->K + (size_t)s->V;
    dims[2] = s->causal ? EV_SCALE : EV_SCALE * EV_SCALE;
    return 3;
}

static int dims_ms_pw(const lat_shape *s, size_t dims[8])
{
    dims[0] = s->variant ? (size_t)s->H : 0;
    dims[1] = 2 * (size_t)s->K * (size_t)s->K + (size_t)s->V * (size_t)s->V;
    return 2;
}

static double state_bytes(const lat_shape *s)
{
    lat_vla c = config(s, NULL);
    return 4.0 * (double)s->B * (double)lat_vla_state_floats(&c);
}

static double bytes(const lat_shape *s)
{
    lat_vla c = config(s, NULL);
    double params = 0.0;
    if (s->variant)
        params = (double)lat_dims_count(dims_ms_dw, s) + (double)lat_dims_count(dims_ms_pw, s);
    return lat_vla_bytes(&c) + 4.0 * params;
}

static void gen_ms_dw(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const double bound = 1.0 / sqrt((double)(s->causal ? EV_SCALE : EV_SCALE * EV_SCALE));
    (void)harsh;
    for (size_t i = 0; i < count; i++)
        x[i] = bound * (2.0 * lat_rng_uniform(rng) - 1.0);
}

static void gen_ms_pw(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const size_t K2 = (size_t)s->K * (size_t)s->K, per = 2 * K2 + (size_t)s->V * (size_t)s->V;
    (void)harsh;
    for (size_t i = 0; i < count; i++) {
        const double fan_in = (i % per) < 2 * K2 ? (double)s->K : (double)s->V;
        x[i] = (2.0 * lat_rng_uniform(rng) - 1.0) / sqrt(fan_in);
    }
}

static const lat_input ev_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 2.0, .hb = -3.0,
     .doc = "queries [B][T][H][K], N(0,1); harsh 2·N(0,1) − 3 (7% of ReLU features nonzero, ~1% "
            "of rows all zero: the 0/1e-15 path)",
     .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 2.0, .hb = -3.0,
     .doc = "keys [B][T][H][K], N(0,1); harsh as q", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
    {.name = "ms_dw", .dims = dims_ms_dw, .dist = LAT_DIST_CUSTOM, .custom = gen_ms_dw, .whole = 1,
     .doc = "variant 1: aggregation depthwise weights [H][2K+V][25] (causal [..][5]), U(±1/√taps); "
            "empty for variant 0"},
    {.name = "ms_pw", .dims = dims_ms_pw, .dist = LAT_DIST_CUSTOM, .custom = gen_ms_pw, .whole = 1,
     .doc = "variant 1: grouped pointwise weights [H][K·K | K·K | V·V] (out, in), U(±1/√d); "
            "empty for variant 0"},
};

static const lat_knob ev_knobs[] = {
    LAT_KNOB(causal, 0, 0, 1, "0 non-causal on the image grid (the paper); 1 causal variant"),
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the chunk form"),
    LAT_KNOB(variant, 0, 0, 1, "0 ReLU linear attention core; 1 + multi-scale aggregated heads "
                               "(scales = (5,), output 2H heads)"),
};

static const lat_form ev_forms[] = {
    {"parallel", ev_parallel_run, ev_parallel_ws, ev_parallel_flops,
     "non-causal: ReLU(K)^T[V|1] then ReLU(Q)·that (LiteMLA relu_linear_att); causal: masked "
     "quadratic blocks"},
    {"chunk", ev_chunk_run, ev_chunk_ws, ev_chunk_flops,
     "chunkwise on the GLA-family engine (no decay), the causal workhorse"},
    {"recurrent", ev_recurrent_run, ev_recurrent_ws, ev_recurrent_flops,
     "token by token (lat_rec_step on [v|1]); the decode step of the causal variant"},
};

/* Type II (informational: a different function, not an approximation):
 * exact softmax attention softmax(q·k/√K) v on the same q, k, v (with the call's causality).
 * Its fp64 oracle costs T², so it stops at T = 2048 (the accuracy suite's
 * larger cells report type I only). */
static lat_status ev_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                             double *out, double *state_out)
{
    if (s->variant)
        return LAT_UNSUPPORTED; /* 2H output heads: no softmax counterpart */
    return lat_vision_softmax_target(s, in, state_in, out, state_out);
}

const lat_method lat_method_efficientvit = {
    .name = "efficientvit",
    .family = "linear",
    .paper = "Cai et al., EfficientViT: Multi-Scale Linear Attention for High-Resolution Dense "
             "Prediction, ICCV 2023 (arXiv 2205.14756)",
    .summary = "ReLU linear attention (eps 1e-15, no 1/sqrt(d)); variant 1 adds the multi-scale "
               "aggregated heads; T tokens on an Hs×Ws grid",
    .dim_map = "K = V = D (the paper's d = 16/32); variant 1: 2H output heads; grid Hs×Ws = T "
               "(Hs the largest divisor of T not above √T)",
    .inputs = ev_inputs,
    .n_inputs = (int)(sizeof ev_inputs / sizeof ev_inputs[0]),
    .knobs = ev_knobs,
    .n_knobs = (int)(sizeof ev_knobs / sizeof ev_knobs[0]),
    .forms = ev_forms,
    .n_forms = (int)(sizeof ev_forms / sizeof ev_forms[0]),
    .out_dims = dims_out,
    .state_dims = dims_state,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = NULL,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_efficientvit,
    .reference_alt = ref_efficientvit_parallel,
    .tol_out = 1e-5,
    .tol_state = 1e-4,
    .approximates_softmax = 0,
    .softmax_target = ev_softmax,
    .quadratic = 0,
    .tol_note = "state tolerance 1e-4: the causal state is an O(t)-growing prefix sum accumulated "
                "in fp32",
};
