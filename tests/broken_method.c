/* broken_method.c — a deliberately wrong kernel, built only into
 * build/latbench-broken, to prove that `latbench check` fails it.
 *
 * It claims to be causal linear attention (same inputs, state and fp64
 * reference as linear_attn) but its recurrent form reads the state out
 * BEFORE adding the current token — the classic off-by-one of this family.
 * Everything else (shapes, NaN handling, state) is right, so only the
 * numerical comparison can catch it. */
#include "../impls/common/lat_kernel.h"

static float phi(float x) { return x > 0 ? x + 1.0f : expf(x); }

static lat_status broken_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            float *S = a->state_out ? a->state_out + ((size_t)b * s->H + h) * K * (V + 1) : NULL;
            float local[64 * 65];
            if (!S) {
                if (K * (V + 1) > 64 * 65)
                    return LAT_UNSUPPORTED;
                S = local;
            }
            for (int i = 0; i < K * (V + 1); i++)
                S[i] = a->state_in ? a->state_in[((size_t)b * s->H + h) * K * (V + 1) + i] : 0.0f;
            for (int t = 0; t < s->T; t++) {
                const float *q = a->in[0] + lat_idx_bthd(s, b, t, h, K);
                const float *k = a->in[1] + lat_idx_bthd(s, b, t, h, K);
                const float *v = a->in[2] + lat_idx_bthd(s, b, t, h, V);
                float *o = a->out + lat_idx_bthd(s, b, t, h, V);
                float den = 1e-6f;
                for (int j = 0; j < V; j++)
                    o[j] = 0;
                for (int i = 0; i < K; i++) { /* BUG: readout before the update */
                    for (int j = 0; j < V; j++)
                        o[j] += phi(q[i]) * S[i * (V + 1) + j];
                    den += phi(q[i]) * S[i * (V + 1) + V];
                }
                for (int j = 0; j < V; j++)
                    o[j] /= den;
                for (int i = 0; i < K; i++) {
                    for (int j = 0; j < V; j++)
                        S[i * (V + 1) + j] += phi(k[i]) * v[j];
                    S[i * (V + 1) + V] += phi(k[i]);
                }
            }
        }
    return LAT_OK;
}

static double flops(const lat_shape *s) { return 4.0 * s->B * s->T * s->H * s->K * s->V; }

static int state_dims(const lat_shape *s, size_t d[8])
{
    d[0] = (size_t)s->B;
    d[1] = (size_t)s->H;
    d[2] = (size_t)s->K;
    d[3] = (size_t)s->V + 1;
    return 4;
}

static const lat_input inputs[] = {
    {"q", lat_dims_bthk, LAT_DIST_NORMAL, 1, 0, 0, LAT_DIST_NONE, 0, 0, 0, NULL, "queries", 1, 0, 0},
    {"k", lat_dims_bthk, LAT_DIST_NORMAL, 1, 0, 0, LAT_DIST_NONE, 0, 0, 0, NULL, "keys", 1, 0, 0},
    {"v", lat_dims_bthv, LAT_DIST_NORMAL, 1, 0, 0, LAT_DIST_NONE, 0, 0, 0, NULL, "values", 0, 0, 0},
};
static const lat_knob knobs[] = {LAT_KNOB(causal, 1, 1, 1, "causal only")};
static const lat_form forms[] = {{"recurrent", broken_recurrent, NULL, flops, "off-by-one readout"}};

const lat_method lat_method_broken_linear_attn = {
    .name = "broken_linear_attn", .family = "test", .paper = "none (negative test)",
    .summary = "linear attention with an off-by-one readout: check must fail it",
    .inputs = inputs, .n_inputs = 3, .knobs = knobs, .n_knobs = 1, .forms = forms, .n_forms = 1,
    .out_dims = lat_dims_bthv, .state_dims = state_dims, .decode_form = "recurrent",
    .reference = ref_linear_attn, .tol_out = 1e-5, .tol_state = 1e-5,
};
