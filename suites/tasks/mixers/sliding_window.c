/* sliding_window.c — trainable causal sliding-window softmax attention for
 * the task models (suites/tasks/mq.h): latbench's `sliding_window` method
 * (impls/sliding_window.c, spec/attention.md §2.1) with learned projections.
 *
 * Window convention as the inference method: w = number of keys INCLUDING
 * the query, A(i) = [max(0, i−w+1), i] (FLA naive.py; flash-attn (w−1, 0)).
 * Everything else — one Linear(D, 3D) for q, k, v, per-head τ = 1/√(D/H),
 * output Linear(D, D), init W_qkv ~ N(0, 0.02), W_o ~ N(0, 0.01), biases 0,
 * no positions, no dropout — is softmax.c's, whose core this file calls with
 * the band (the forward zeroes P outside the band, so the backward is the
 * same). Dense masked L×L per head (the `parallel` form).
 * State (Zoology, B.2): the rolling KV buffer, 2·D·w values, 4 bytes each.
 * Size knob: window w ∈ {8, 16, 32, 64} (B.6). */
#include "../mq.h"
#include "../mq_ops.h"

/* The attention core of softmax.c (window 0 = full causal). */
size_t mq_attn_n_params(const mq_cfg *c);
void mq_attn_init(const mq_cfg *c, double *p, uint64_t *rng);
size_t mq_attn_cache_doubles(const mq_cfg *c, int L);
void mq_attn_forward(const mq_cfg *c, int window, const double *p, int L, const double *x, double *y, double *cache);
void mq_attn_backward(const mq_cfg *c, int window, const double *p, int L, const double *x, double *cache,
                      const double *dy, double *dx, double *dp);

static int win(const mq_cfg *c) { return c->window > 0 ? c->window : 1; }

static size_t sw_n_params(const mq_cfg *c) { return mq_attn_n_params(c); }
static void sw_init(const mq_cfg *c, double *p, uint64_t *rng) { mq_attn_init(c, p, rng); }
static size_t sw_cache(const mq_cfg *c, int L) { return mq_attn_cache_doubles(c, L); }
static void sw_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y, double *cache)
{
    mq_attn_forward(c, win(c), p, L, x, y, cache);
}
static void sw_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache, const double *dy,
                        double *dx, double *dp)
{
    mq_attn_backward(c, win(c), p, L, x, cache, dy, dx, dp);
}
static double sw_state_bytes(const mq_cfg *c, int L)
{
    (void)L; /* Zoology's formula: the full window, whatever L */
    return 2.0 * c->D * win(c) * 4.0;
}

const mq_mixer mq_mixer_sliding_window = {
    .name = "sliding_window",
    .size_knob = "window",
    .sizes = {8, 16, 32, 64}, /* all four slots: not 0-terminated (readers stop at 4) */
    .doc = "causal sliding-window softmax, w keys incl. self (impls/sliding_window.c), H heads (1), tau 1/sqrt(D/H), "
           "no positions; W_qkv N(0,0.02), W_o N(0,0.01), biases 0; state 2*D*w*4 bytes (rolling KV buffer)",
    .n_params = sw_n_params,
    .init = sw_init,
    .cache_doubles = sw_cache,
    .forward = sw_forward,
    .backward = sw_backward,
    .state_bytes = sw_state_bytes,
};
