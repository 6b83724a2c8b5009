/* slab.c — fp64 references for SLAB's simplified linear attention (Guo et
 * al., ICML 2024; spec/attention.md §8), on the shared core of
 * reference/vision.c.
 *
 * Inputs (impls/slab.c): 0 q, 1 k, 2 v, 3 pos (P, added to k), 4 dwc_w, 5 dwc_b.
 *   φ = ReLU (no floor), ε = 1e-6 (sum form, not N·1e-6), no 1/√D,
 *   o_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / (⟨φ(q_i), Σ_j φ(k_j)⟩ + 1e-6) + DWC(V)_i
 * DWC k = window (5; 0: none) on the grid; causal variant: j ≤ i and a
 * causal 1-D depthwise conv. PRepBN folds into the q/k/v projections (§8) and
 * is not part of this function.
 *
 *   ref_slab           literal recurrence (O(T))
 *   ref_slab_parallel  explicit kernel matrix, scattered convs
 */
#include <string.h>

#include "reference.h"

static ref_vla_cfg slab_cfg(const lat_shape *s)
{
    ref_vla_cfg c;
    memset(&c, 0, sizeof c);
    c.focused = 0;
    c.floor = 0.0;
    c.eps_const = 1e-6;
    c.eps_key = 0.0;
    c.dwc = s->window;
    c.i_pos = 3, c.i_scale = -1, c.i_dwc_w = 4, c.i_dwc_b = 5, c.i_ms_dw = -1, c.i_ms_pw = -1;
    return c;
}

lat_status ref_slab(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                    double *state_out)
{
    ref_vla_cfg c = slab_cfg(s);
    return ref_vla_recurrent(s, &c, in, state_in, out, state_out);
}

lat_status ref_slab_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                             double *out, double *state_out)
{
    ref_vla_cfg c = slab_cfg(s);
    return ref_vla_quadratic(s, &c, in, state_in, out, state_out);
}
