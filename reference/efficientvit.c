/* efficientvit.c — fp64 references for EfficientViT's ReLU linear attention
 * and multi-scale aggregation (Cai et al., ICCV 2023; spec/attention.md §7,
 * LiteMLA), on the shared core of reference/vision.c.
 *
 * Inputs (impls/efficientvit.c): 0 q, 1 k, 2 v, 3 ms_dw, 4 ms_pw.
 *   o_i = Σ_j ⟨ReLU(q_i), ReLU(k_j)⟩ v_j / (Σ_j ⟨ReLU(q_i), ReLU(k_j)⟩ + 1e-15)
 * no 1/√d. variant 1 (scales = (5,)): heads H..2H−1 run the same on
 *   [q' | k' | v'] = GroupConv1×1_{3H groups}(DWConv5×5(q | k | v)) of head h
 * (no biases: LiteMLA use_bias = False); causal variant: j ≤ i and a causal
 * 1-D depthwise conv in the aggregation.
 *
 *   ref_efficientvit           literal recurrence (O(T))
 *   ref_efficientvit_parallel  explicit kernel matrix, scattered convs
 */
#include <string.h>

#include "reference.h"

static ref_vla_cfg evit_cfg(const lat_shape *s)
{
    ref_vla_cfg c;
    memset(&c, 0, sizeof c);
    c.focused = 0;
    c.floor = 0.0;
    c.eps_const = 1e-15;
    c.eps_key = 0.0;
    c.dwc = 0;
    c.ms = s->variant ? 5 : 0;
    c.i_pos = -1, c.i_scale = -1, c.i_dwc_w = -1, c.i_dwc_b = -1, c.i_ms_dw = 3, c.i_ms_pw = 4;
    return c;
}

lat_status ref_efficientvit(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out)
{
    ref_vla_cfg c = evit_cfg(s);
    return ref_vla_recurrent(s, &c, in, state_in, out, state_out);
}

lat_status ref_efficientvit_parallel(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out)
{
    ref_vla_cfg c = evit_cfg(s);
    return ref_vla_quadratic(s, &c, in, state_in, out, state_out);
}
