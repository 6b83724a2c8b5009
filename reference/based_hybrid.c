/* based_hybrid.c — fp64 references for the Based mixer of impls/based_hybrid.c:
 * o = Taylor linear attention (reference/based.c, on q, k of dim d′ = features)
 *   + causal sliding-window softmax (reference/sliding_window.c, on qs, ks of
 *     dim K, window w keys including self), both on the shared v.
 * Inputs {q, k, v, qs, ks}; state = one flat vector: [B][H][F][V+1] (Taylor)
 * then [B][H][w][K+V] (the window ring).
 *   ref_based_hybrid         ref_based (literal recurrence) + ref_sliding_window
 *   ref_based_hybrid_alt     ref_based_parallel (polynomial kernel) + ref_sliding_window_ring
 *   ref_based_hybrid_target  exact causal softmax(q·k/√d′) + the window branch
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static lat_shape lin(const lat_shape *s)
{
    lat_shape x = *s;
    x.K = x.features;
    return x;
}

static lat_status both(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                       double *state_out, lat_ref_fn fl, lat_ref_fn fw)
{
    const lat_shape l = lin(s);
    const size_t nl = (size_t)s->B * s->H * (size_t)ref_based_nfeat(&l) * (size_t)(s->V + 1);
    const size_t n = (size_t)s->B * s->T * s->H * s->V;
    double *o2 = malloc(sizeof(double) * n);
    if (!o2)
        return LAT_ENOMEM;
    const double *il[3] = {in[0], in[1], in[2]}, *iw[3] = {in[3], in[4], in[2]};
    lat_status st = fl(&l, il, state_in, out, state_out);
    if (st == LAT_OK)
        st = fw(s, iw, state_in ? state_in + nl : NULL, o2, state_out ? state_out + nl : NULL);
    if (st == LAT_OK)
        for (size_t i = 0; i < n; i++)
            out[i] += o2[i];
    free(o2);
    return st;
}

lat_status ref_based_hybrid(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                            double *state_out)
{
    return both(s, in, state_in, out, state_out, ref_based, ref_sliding_window);
}

lat_status ref_based_hybrid_alt(const lat_shape *s, const double *const *in, const double *state_in,
                                double *out, double *state_out)
{
    return both(s, in, state_in, out, state_out, ref_based_parallel, ref_sliding_window_ring);
}

lat_status ref_based_hybrid_target(const lat_shape *s, const double *const *in, const double *state_in,
                                   double *out, double *state_out)
{
    return both(s, in, NULL, out, NULL, ref_based_softmax, ref_sliding_window);
}
