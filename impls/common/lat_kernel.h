/* lat_kernel.h — what a method's impl file includes: the interface, the
 * vector helpers, GEMM wrappers, thread-range and workspace helpers, and the
 * fp64 reference prototypes. */
#ifndef LAT_KERNEL_H
#define LAT_KERNEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lat.h"
#include "lat_vec.h"
#include "../../reference/reference.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- index helpers for the time-major layout ------------------------------ */
/* element (b, t, h, 0) of a [B][T][H][D] tensor */
static inline size_t lat_idx_bthd(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}
/* element (b, t, h) of a [B][T][H] tensor */
static inline size_t lat_idx_bth(const lat_shape *s, int b, int t, int h)
{
    return ((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h;
}
/* element (b, h, 0, 0) of a [B][H][K][V] state */
static inline size_t lat_idx_state(const lat_shape *s, int b, int h)
{
    return ((size_t)b * (size_t)s->H + (size_t)h) * (size_t)s->K * (size_t)s->V;
}

/* ---- threads -------------------------------------------------------------- */
/* Static split of n items over nth workers: [*lo, *hi) for worker ith. */
static inline void lat_split(long n, int ith, int nth, long *lo, long *hi)
{
    long per = (n + nth - 1) / nth;
    *lo = per * ith;
    *hi = *lo + per < n ? *lo + per : n;
    if (*lo > n)
        *lo = n;
}

static inline int lat_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- workspace ------------------------------------------------------------ */
/* Round a byte count up to a cache line (per-thread slices never share one). */
static inline size_t lat_align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Slice `which` of `per_thread` bytes from the workspace. */
static inline float *lat_work_slice(const lat_args *a, size_t per_thread, int which)
{
    return (float *)((char *)a->work + lat_align64(per_thread) * (size_t)which);
}

/* ---- GEMM (row-major, fp32), single-threaded: callable inside OpenMP ------- */
/* C[M×N] = alpha · op(A)·op(B) + beta · C; trans flags 'N' or 'T'. lda, ldb,
 * ldc are row strides. Dispatches to OpenBLAS (kept at one thread by the
 * harness, see suites/harness/blas.c). */
void lat_sgemm(char transa, char transb, int M, int N, int Kd, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc);

/* ---- misc ------------------------------------------------------------------ */
static inline float lat_logsigmoidf(float x)
{
    return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x));
}

/* Validation helper: writes the reason and returns LAT_UNSUPPORTED. */
lat_status lat_unsupported(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
