/* metrics.c — accuracy of an output against its fp64 reference:
 * max_abs, max_rel (atol 1e-6 + |ref|), rel_rmse = ‖Δ‖/‖ref‖ (fla's ratio),
 * nmse = Σ Δ² / Σ ref² (ggml's), worst_row = max_row ‖Δ_row‖ / ‖ref_row‖
 * (catches one bad row), and the count of NaN/Inf values. */
#include <math.h>

#include "harness.h"

#define COMPARE_BODY(GOT)                                                         \
    lat_err e = {0, 0, 0, 0, 0, 0, (long)n};                                      \
    double se = 0, sr = 0, row_se = 0, row_sr = 0;                                \
    if (row == 0)                                                                 \
        row = n ? n : 1;                                                          \
    for (size_t i = 0; i < n; i++) {                                              \
        double g = (double)(GOT)[i], r = ref[i];                                  \
        if (!isfinite(g)) {                                                       \
            e.nonfinite++;                                                        \
            continue;                                                             \
        }                                                                         \
        double d = fabs(g - r);                                                   \
        if (d > e.max_abs)                                                        \
            e.max_abs = d;                                                        \
        double rel = d / (1e-6 + fabs(r));                                        \
        if (rel > e.max_rel)                                                      \
            e.max_rel = rel;                                                      \
        se += d * d;                                                              \
        sr += r * r;                                                              \
        row_se += d * d;                                                          \
        row_sr += r * r;                                                          \
        if ((i + 1) % row == 0) {                                                 \
            double w = row_se == 0 ? 0 : sqrt(row_se) / fmax(sqrt(row_sr), 1e-30); \
            if (w > e.worst_row)                                                  \
                e.worst_row = w;                                                  \
            row_se = row_sr = 0;                                                  \
        }                                                                         \
    }                                                                             \
    e.nmse = se == 0 ? 0 : se / fmax(sr, 1e-300);                                 \
    e.rel_rmse = sqrt(e.nmse);                                                    \
    return e;

lat_err lat_compare_f32(const float *got, const double *ref, size_t n, size_t row) { COMPARE_BODY(got) }
lat_err lat_compare_f64(const double *got, const double *ref, size_t n, size_t row) { COMPARE_BODY(got) }
