/* flatten.c — FLatten focused linear attention (Han, Pan, Han, Song, Huang;
 * "FLatten Transformer: Vision Transformer using Focused Linear Attention",
 * ICCV 2023, arXiv 2308.00442), forward core, fp32. Spec: spec/attention.md
 * §5, Appendix B/C.7; code LeapLabTHU/FLatten-Transformer flatten_swin.py
 * after the May-2024 "fix numerical instability" commits.
 *
 * Per token, on all C = H·K channels (the norms span every head, as in the
 * official code):
 *     k ← k + P_t;  x̃ = (ReLU(x) + 1e-6) / softplus(s);  φ(x) = ‖x̃‖ · x̃^p / ‖x̃^p‖
 * then per head, non-causal on the Hs×Ws grid of the T tokens:
 *     o_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / (⟨φ(q_i), Σ_j φ(k_j)⟩ + N·1e-6) + DWC(V)_i
 * N·1e-6 is the code's z = 1/(⟨q, mean_j k_j⟩ + 1e-6) with KV scaled by 1/N
 * (the pre-2024 code had + 1e-6 on the sum). DWC: k×k depthwise conv of V,
 * weights [V][k][k] and bias [V] shared by all heads, zero padding k/2,
 * PyTorch cross-correlation. No 1/√D anywhere.
 * fp32 evaluation of φ (spec §5 pitfalls): φ = r·(x̃/m)^p with m = max_c x̃_c
 * and r = ‖x̃‖/‖(x̃/m)^p‖, so no power overflows (x^{2p}) or underflows to
 * 0/0; m and r of every token (for q and for k) come from one pre-pass over
 * its C channels. The fp64 reference evaluates ‖x̃‖·x̃^p/‖x̃^p‖ literally.
 *
 * Decisions on the open points (spec Appendix C.7, C.9):
 *   grid      T tokens = Hs×Ws, row-major, Hs the largest divisor of T not
 *             above √T (63 → 7×9, 65 → 5×13, 1000 → 25×40, 8192 → 64×128,
 *             1 → 1×1, prime → 1×T): every T runs; the code assumes square.
 *   causal    (knob causal = 1, not in the paper): j ≤ i, ε = (t+1)·1e-6
 *             with t the absolute position (the mean over the keys seen,
 *             as the non-causal code), and the DWC becomes a causal depthwise
 *             1-D conv over time, o_t += b + Σ_{u<k} w_u ∘ v_{t−u} (weights
 *             [V][k]). It keeps a state and decodes (form recurrent).
 *   inputs    P (positional encoding, zero-init in the paper) is passed per
 *             token [B][T][H][K] (one [T][C] draw repeated over the batch),
 *             N(0, 0.02²), so a causal/decoding call sees P at its absolute
 *             position; s (zero-init) is drawn N(0, 0.5²) — a constant s would
 *             cancel in φ up to ε and leave the per-channel path untested;
 *             DWC weights and bias U(±1/√taps) (PyTorch conv init).
 *   knobs     variant = the focusing factor p (3; the paper ablates 2..6),
 *             window = the DWC kernel k (5; 0 = no DWC, the rank ablation).
 *
 * State (causal only) [B][H][K(V+1) + (k−1)V]: per slice [K][V+1] = [S | z]
 *   (z the normalizer as a column of ones appended to v), then the conv tail,
 *   row u = v at position pos−1−u. Paper-formula decode memory: D·Dv + D +
 *   (k−1)·Dv floats per head (spec Appendix A). Non-causal calls keep none.
 * Forms (lat_vision.c): parallel (non-causal: kv-first GEMMs over sub-blocks
 *   of 128 tokens, V read in place, the official order, the focusing map
 *   evaluated once per token for all heads, o = num/den + DWC written in one
 *   pass; causal: masked quadratic blocks, T² — a cross-check), chunk (the
 *   GLA-family engine, no decay; the causal workhorse), recurrent (token by
 *   token, the decode step).
 * Cost per head and token: 4K(V+1) (two GEMMs) + 2k²V (DWC) + V, plus
 *   ≈ 2(p+7)·C per token for the focusing pre-pass; the causal chunk form
 *   adds 2C(K+V+1), the causal parallel form ≈ T(K+V+1). Memory: state
 *   K(V+1) + (k−1)V per slice; workspace 4 floats per token (focusing
 *   scalars; not the non-causal parallel form) + per thread a sub-block of
 *   features and numerators (128·H·(K+V) floats) + one K(V+1) sum per
 *   (slice, part).
 * Parallel axis: (b, h) slices, token-block-major within a thread; when B·H
 *   does not fill the threads the parallel form splits each slice's tokens
 *   (partial key sums reduced in a fixed order), the chunk form runs the
 *   engine's two-pass scheme, the recurrent form uses min(B·H, threads).
 * Measured (this machine, 1 thread, CPU time, B1 T8192 H8 D64; FMA peak
 *   ≈ 117 GFLOP/s, sgemm 97): parallel ≈ 58 GFLOP/s (≈ 1.3× the previous
 *   kernel, which evaluated the focusing map twice per token; the GEMMs run
 *   at ≈ 95 inside OpenBLAS, the DWC and the q/k/P/V row streams are
 *   memory-latency bound), causal chunk ≈ 57, causal recurrent
 *   ≈ 33 (lat_rec_step's state load/store per token, plus the per-token
 *   focusing and conv). FL2: at N = 3136, d = 32, H = 2 the parallel form
 *   (DWC included) takes ≈ 1/27 of the time of tiled exact softmax.
 * Run: build/latbench run --method flatten --form parallel --B 1 --T 3136 --H 2 --D 32 --threads 2
 *      build/latbench run --method flatten --form chunk --causal 1 --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench check --methods flatten
 */
#include "common/lat_vision.h"

/* ---- configuration -------------------------------------------------------- */

static lat_vla config(const lat_shape *s, const lat_args *a)
{
    lat_vla c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.map = LAT_VLA_FOCUSED;
    c.p = s->variant;
    c.eps_const = 0.0;
    c.eps_key = 1e-6;
    c.dwc = s->window;
    c.has_pos = 1;
    if (a) {
        c.q = a->in[0], c.k = a->in[1], c.v = a->in[2], c.pos = a->in[3], c.scale = a->in[4];
        c.dwc_w = a->in[5], c.dwc_b = a->in[6];
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
FORM(fl_parallel, LAT_VLA_PARALLEL)
FORM(fl_chunk, LAT_VLA_CHUNK)
FORM(fl_recurrent, LAT_VLA_RECURRENT)
#undef FORM

/* ---- shapes and models ------------------------------------------------------ */

static int taps(const lat_shape *s) { return s->causal ? s->window : s->window * s->window; }

static int dims_state(const lat_shape *s, size_t dims[8])
{
    lat_vla c = config(s, NULL);
    dims[0] = (size_t)s->B;
    dims[1] = s->causal ? (size_t)s->H : 0;
    dims[2] = s->causal ? lat_vla_state_floats(&c) / (size_t)s->H : 0;
    return 3;
}

static int dims_scale(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->H * (size_t)s->K;
    return 1;
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
    return lat_vla_bytes(&c) + 4.0 * ((double)s->H * s->K + (double)(taps(s) + 1) * s->V);
}

static lat_status validate(const lat_shape *s, char *why, size_t len)
{
    if (s->window > 0 && s->window % 2 == 0)
        return lat_unsupported(why, len, "DWC kernel window=%d must be odd (or 0 for none)", s->window);
    return LAT_OK;
}

/* ---- inputs --------------------------------------------------------------- */

/* P: one [T][H][K] draw, the same for every batch (a model parameter) */
static void gen_pos(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const size_t per = count / (size_t)s->B;
    for (size_t i = 0; i < per; i++)
        x[i] = (harsh ? 1.0 : 0.02) * lat_rng_normal(rng);
    for (int b = 1; b < s->B; b++)
        memcpy(x + (size_t)b * per, x, per * sizeof(double));
}

/* PyTorch Conv init: U(±1/√fan_in), fan_in = taps for a depthwise conv */
static void gen_dwc(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const double bound = 1.0 / sqrt((double)(taps(s) > 0 ? taps(s) : 1));
    (void)harsh;
    for (size_t i = 0; i < count; i++)
        x[i] = bound * (2.0 * lat_rng_uniform(rng) - 1.0);
}

static const lat_input fl_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 4.0, .hb = -2.0,
     .doc = "queries [B][T][H][K], N(0,1); harsh 4·N(0,1) − 2 (most channels at the ReLU floor, "
            "the rest large)",
     .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 4.0, .hb = -2.0,
     .doc = "keys [B][T][H][K], N(0,1); harsh as q", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
    {.name = "pos", .dims = lat_dims_bthk, .dist = LAT_DIST_CUSTOM, .custom = gen_pos,
     .harsh_dist = LAT_DIST_CUSTOM, .doc = "positional encoding P added to k [B][T][H][K]: one "
     "N(0, 0.02²) [T][C] draw repeated over the batch (harsh N(0,1))"},
    {.name = "scale", .dims = dims_scale, .dist = LAT_DIST_NORMAL, .a = 0.5, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .whole = 1,
     .doc = "learned scale s [H·K] (features divided by softplus(s)): N(0, 0.5²); harsh N(0, 3²), "
            "1/softplus(s) up to ~1e4"},
    {.name = "dwc_w", .dims = dims_dwc_w, .dist = LAT_DIST_CUSTOM, .custom = gen_dwc, .whole = 1,
     .doc = "DWC weights [V][k·k] (causal [V][k]) shared by the heads, U(±1/√taps)"},
    {.name = "dwc_b", .dims = dims_dwc_b, .dist = LAT_DIST_CUSTOM, .custom = gen_dwc, .whole = 1,
     .doc = "DWC bias [V], U(±1/√taps)"},
};

static const lat_knob fl_knobs[] = {
    LAT_KNOB(causal, 0, 0, 1, "0 non-causal on the image grid (the paper); 1 causal variant "
                              "(prefix sums, (t+1)·1e-6, causal 1-D DWC)"),
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the chunk form"),
    LAT_KNOB(window, 5, 0, 9, "DWC kernel size k (odd; 0 = no DWC branch)"),
    LAT_KNOB(variant, 3, 1, 8, "focusing factor p of phi_p (paper default 3)"),
};

static const lat_form fl_forms[] = {
    {"parallel", fl_parallel_run, fl_parallel_ws, fl_parallel_flops,
     "non-causal: phi(K)^T[V|1] then phi(Q)·that (two GEMMs, official order); causal: masked "
     "quadratic blocks"},
    {"chunk", fl_chunk_run, fl_chunk_ws, fl_chunk_flops,
     "chunkwise on the GLA-family engine (no decay), the causal workhorse"},
    {"recurrent", fl_recurrent_run, fl_recurrent_ws, fl_recurrent_flops,
     "token by token (lat_rec_step on [v|1]); the decode step of the causal variant"},
};

const lat_method lat_method_flatten = {
    .name = "flatten",
    .family = "linear",
    .paper = "Han et al., FLatten Transformer: Vision Transformer using Focused Linear Attention, "
             "ICCV 2023 (arXiv 2308.00442)",
    .summary = "focused linear attention (p = 3, norms over all heads, N·1e-6) + 5×5 DWC on V; "
               "T tokens on an Hs×Ws grid (Hs largest divisor ≤ √T)",
    .dim_map = "K = V = D; grid Hs×Ws = T (Hs the largest divisor of T not above √T)",
    .inputs = fl_inputs,
    .n_inputs = (int)(sizeof fl_inputs / sizeof fl_inputs[0]),
    .knobs = fl_knobs,
    .n_knobs = (int)(sizeof fl_knobs / sizeof fl_knobs[0]),
    .forms = fl_forms,
    .n_forms = (int)(sizeof fl_forms / sizeof fl_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = dims_state,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = validate,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_flatten,
    .reference_alt = ref_flatten_parallel,
    .tol_out = 1e-5,
    .tol_state = 1e-4,
    .approximates_softmax = 0,
    .softmax_target = lat_vision_softmax_target,
    .quadratic = 0,
    .tol_note = "state tolerance 1e-4: the causal state is an O(t)-growing prefix sum accumulated "
                "in fp32",
};
