/* based_hybrid.c — Based as one mixer: Taylor linear attention + a small
 * causal sliding-window softmax (Arora et al., ICML 2024, arXiv 2402.18668),
 * fp32. Spec: spec/attention.md §9 (+ §2.1 for the window, Appendix C.1).
 * Reference: reference/based_hybrid.c.
 *
 *   o_t = o_t^{Taylor}(q_t, k_{≤t}, v) + o_t^{SWA}(qs_t, ks_{t−w+1..t}, v)
 * DECISION (how the two are combined): the SUM of the two normalized branch
 * outputs, each on its own q/k projections and the shared v. In the Based
 * architecture the two are separate residual layers (spec §9: Taylor layers
 * {1,6,…}, SWA layers {2,7,…}); applied in parallel on the same residual
 * stream, x + LA(x) + SWA(x) is exactly this sum, so it is the one-mixer
 * reading that keeps each branch the paper's function (no shared
 * normalizer, no learned mix weight). The Taylor branch is `based` (d′ = 16,
 * compressed F = 153, ε = 1e-12); the window branch is `sliding_window`
 * (τ = 1/√K, w keys including self).
 * DECISION (window): knob window = 64 keys including self (task default,
 * Appendix C.1 convention; Based's config, flash-attn (64, 0), is 65: --window 65).
 * Inputs: q, k [B][T][H][d′] (Taylor branch, d′ = knob features = 16),
 *   v [B][T][H][V], qs, ks [B][T][H][K] (window branch, K = D).
 * State: ONE flat vector (rank 1), the two branch states back to back:
 *   [B][H][F][V+1] (Taylor S | z), then [B][H][w][K+V] (the window's ring, token
 *   p in slot p mod w) — so each branch runs on its part in place (decode).
 *   state_bytes = 4·B·H·(F(V+1) + w(K+V)) = 4·BH·(9 945 + 8 192) at D = 64.
 * Forms (each the sum of a `based` form and sliding_window's `tiled` form,
 * called through their descriptors — no code copied):
 *   recurrent  based.recurrent + sliding_window.tiled (also the decode step)
 *   chunk      based.chunk     + sliding_window.tiled
 * The window branch is written to the output first, the Taylor branch into
 * the workspace, then added (threads: each branch's own scheme).
 * Softmax target (accuracy II): based's target (exact causal softmax of
 * q·k/√d′) + the window branch (exact already): the error is the Taylor
 * branch's approximation error.
 * Run: build/latbench run --method based_hybrid --form chunk --B 1 --T 4096 --H 8 --D 64 --threads 2
 */
#include <stdlib.h>
#include <string.h>

#include "common/lat_kernel.h"
#include "../reference/reference.h"

static lat_shape lin_shape(const lat_shape *s)
{
    lat_shape x;
    memset(&x, 0, sizeof x);
    lat_shape_defaults(&lat_method_based, &x);
    x.B = s->B, x.T = s->T, x.H = s->H, x.V = s->V, x.pos = s->pos, x.ctx = s->ctx;
    x.K = x.features = s->features;
    x.chunk = s->chunk;
    x.variant = s->variant;
    return x;
}
static lat_shape swa_shape(const lat_shape *s)
{
    lat_shape x;
    memset(&x, 0, sizeof x);
    lat_shape_defaults(&lat_method_sliding_window, &x);
    x.B = s->B, x.T = s->T, x.H = s->H, x.K = s->K, x.V = s->V, x.pos = s->pos, x.ctx = s->ctx;
    x.window = s->window;
    return x;
}
static size_t lin_state_count(const lat_shape *s)
{
    lat_shape l = lin_shape(s);
    return lat_dims_count(lat_method_based.state_dims, &l);
}
static size_t swa_state_count(const lat_shape *s)
{
    lat_shape w = swa_shape(s);
    return lat_dims_count(lat_method_sliding_window.state_dims, &w);
}

static int bh_state_dims(const lat_shape *s, size_t dims[8])
{
    dims[0] = lin_state_count(s) + swa_state_count(s);
    return 1;
}
static int bh_dims_lin(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->B, dims[1] = (size_t)s->T, dims[2] = (size_t)s->H, dims[3] = (size_t)s->features;
    return 4;
}

static const lat_form *lin_form(const char *name) { return lat_find_form(&lat_method_based, name); }
static const lat_form *swa_form(void) { return lat_find_form(&lat_method_sliding_window, "tiled"); }

static double state_bytes(const lat_shape *s)
{
    lat_shape l = lin_shape(s), w = swa_shape(s);
    return lat_method_based.state_bytes(&l) + lat_method_sliding_window.state_bytes(&w);
}
static double bytes(const lat_shape *s)
{
    lat_shape l = lin_shape(s), w = swa_shape(s);
    /* v is read by both branches, o written by both (one add pass) */
    return lat_method_based.bytes(&l) + lat_method_sliding_window.bytes(&w);
}
static double flops_of(const char *name, const lat_shape *s)
{
    lat_shape l = lin_shape(s), w = swa_shape(s);
    return lin_form(name)->flops(&l) + swa_form()->flops(&w) + (double)s->B * s->T * s->H * s->V;
}
static double flops_recurrent(const lat_shape *s) { return flops_of("recurrent", s); }
static double flops_chunk(const lat_shape *s) { return flops_of("chunk", s); }

static size_t ws_of(const char *name, const lat_shape *s, int nthreads)
{
    lat_shape l = lin_shape(s), w = swa_shape(s);
    const lat_form *fl = lin_form(name), *fw = swa_form();
    size_t a = fl->workspace ? fl->workspace(&l, nthreads) : 0;
    size_t b = fw->workspace ? fw->workspace(&w, nthreads) : 0;
    return lat_align64(a > b ? a : b) + lat_align64(sizeof(float) * (size_t)s->B * s->T * s->H * s->V);
}
static size_t ws_recurrent(const lat_shape *s, int n) { return ws_of("recurrent", s, n); }
static size_t ws_chunk(const lat_shape *s, int n) { return ws_of("chunk", s, n); }

static lat_status run_of(const char *name, const lat_args *a)
{
    const lat_shape *s = a->shape;
    lat_shape l = lin_shape(s), w = swa_shape(s);
    const lat_form *fl = lin_form(name), *fw = swa_form();
    const size_t need = ws_of(name, s, a->nthreads);
    if (a->work_bytes < need)
        return LAT_ENOMEM;
    size_t wl = fl->workspace ? fl->workspace(&l, a->nthreads) : 0;
    size_t ww = fw->workspace ? fw->workspace(&w, a->nthreads) : 0;
    const size_t sub = lat_align64(wl > ww ? wl : ww);
    float *olin = (float *)((char *)a->work + sub);
    const size_t nl = lin_state_count(s);
    const float *in_l[3] = {a->in[0], a->in[1], a->in[2]};
    const float *in_w[3] = {a->in[3], a->in[4], a->in[2]};
    lat_args al = {&l, in_l, a->state_in, olin, a->state_out, a->work, wl, a->nthreads};
    lat_args aw = {&w, in_w, a->state_in ? a->state_in + nl : NULL, a->out, a->state_out ? a->state_out + nl : NULL,
                   a->work, ww, a->nthreads};
    lat_status st = fw->run(&aw);
    if (st != LAT_OK)
        return st;
    st = fl->run(&al);
    if (st != LAT_OK)
        return st;
    const size_t n = (size_t)s->B * s->T * s->H * s->V;
    const int nt = n > 65536 ? a->nthreads : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (size_t i = 0; i < n; i++)
        a->out[i] += olin[i];
    return LAT_OK;
}
static lat_status hy_recurrent(const lat_args *a) { return run_of("recurrent", a); }
static lat_status hy_chunk(const lat_args *a) { return run_of("chunk", a); }

static void hy_map_dim(lat_shape *s, int D)
{
    s->K = s->V = D;
    if (s->features <= 0)
        s->features = 16;
}

static lat_status hy_validate(const lat_shape *s, char *why, size_t len)
{
    lat_shape l = lin_shape(s), w = swa_shape(s);
    lat_status st = lat_shape_check(&lat_method_based, &l, why, len);
    return st != LAT_OK ? st : lat_shape_check(&lat_method_sliding_window, &w, why, len);
}

static const lat_input hy_inputs[] = {
    {.name = "q", .dims = bh_dims_lin, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0,
     .doc = "Taylor-branch queries [B][T][H][d'], N(0,1); harsh 3*N(0,1)", .sharpen = 1},
    {.name = "k", .dims = bh_dims_lin, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0,
     .doc = "Taylor-branch keys [B][T][H][d'], N(0,1); harsh 3*N(0,1)", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V] (shared), N(0,1)"},
    {.name = "qs", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0,
     .doc = "window-branch queries [B][T][H][K], N(0,1); harsh 3*N(0,1)", .sharpen = 1},
    {.name = "ks", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0,
     .doc = "window-branch keys [B][T][H][K], N(0,1); harsh 3*N(0,1)", .sharpen = 1},
};

static const lat_knob hy_knobs[] = {
    LAT_KNOB(features, 16, 1, 64, "Taylor feature dim d' (Based: 16)"),
    LAT_KNOB(window, 64, 1, 1 << 20, "window keys including self (task/paper 64; Based's flash-attn (64,0) = 65)"),
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the Taylor branch's chunk form"),
    LAT_KNOB(variant, 0, 0, 3, "Taylor branch bits as in based: 1 full map, 2 eps 1e-6"),
};

static const lat_form hy_forms[] = {
    {"recurrent", hy_recurrent, ws_recurrent, flops_recurrent, "based.recurrent + sliding_window.tiled, summed"},
    {"chunk", hy_chunk, ws_chunk, flops_chunk, "based.chunk + sliding_window.tiled, summed"},
};

const lat_method lat_method_based_hybrid = {
    .name = "based_hybrid",
    .family = "linear",
    .paper = "Arora et al., Simple linear attention language models balance the recall-throughput "
             "tradeoff, ICML 2024 (arXiv 2402.18668)",
    .summary = "Based mixer: Taylor linear attention (d'=16) + sliding-window softmax (w=64), outputs summed",
    .dim_map = "K = V = D (window branch); Taylor branch d' = features (16), F = 153",
    .inputs = hy_inputs,
    .n_inputs = (int)(sizeof hy_inputs / sizeof hy_inputs[0]),
    .knobs = hy_knobs,
    .n_knobs = (int)(sizeof hy_knobs / sizeof hy_knobs[0]),
    .forms = hy_forms,
    .n_forms = (int)(sizeof hy_forms / sizeof hy_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = bh_state_dims,
    .decode_form = "recurrent",
    .map_dim = hy_map_dim,
    .validate = hy_validate,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_based_hybrid,
    .reference_alt = ref_based_hybrid_alt,
    .tol_out = 1e-5,
    .tol_state = 1e-4,
    .approximates_softmax = 1,
    .softmax_target = ref_based_hybrid_target,
    .tol_note = "state 1e-4: the Taylor branch's order-2 state is an O(t)-growing prefix sum (see based)",
};
