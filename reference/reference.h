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

/* ==== add new methods' prototypes above this line (one block per method) ==== */

/* ---- small fp64 helpers shared by the references ------------------------- */
static inline double ref_logsigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static inline double ref_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
static inline double ref_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }
static inline double ref_elu1(double x) { return x > 0 ? x + 1.0 : exp(x); } /* elu(x) + 1 */

#endif
