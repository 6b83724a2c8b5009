/* harness.h — the pieces of the `latbench` program (suites/latbench.c):
 * RNG and input generation, tracked allocation, timing statistics, error
 * metrics, NPY/CSV/JSON writers, machine metadata and the cell runner. */
#ifndef LAT_HARNESS_H
#define LAT_HARNESS_H

#include <stdio.h>
#include <stdint.h>

#include "../../impls/common/lat.h"

#define LAT_SCHEMA_VERSION 1

/* ---- RNG (rng.c): splitmix64, normal by Box–Muller, all in double ------- */
typedef struct lat_rng {
    uint64_t s;
    int has_spare;
    double spare;
} lat_rng;
void lat_rng_seed(lat_rng *r, uint64_t seed);
uint64_t lat_rng_u64(lat_rng *r);
/* lat_rng_uniform and lat_rng_normal are declared in lat.h (custom input
 * generators of the methods use them). */

/* ---- tracked, aligned allocation (alloc.c) --------------------------------- */
void *lat_alloc(size_t bytes);          /* 64-byte aligned; NULL on failure */
void lat_free(void *p);
size_t lat_alloc_current(void);
size_t lat_alloc_peak(void);
void lat_alloc_reset_peak(void);
size_t lat_mem_available(void);         /* MemAvailable from /proc/meminfo */
void lat_fill_nan(float *x, size_t n);

/* ---- problem buffers (inputs.c) -------------------------------------------- */
/* Every tensor of one cell: inputs in fp32 and (optionally) fp64 holding the
 * same fp32-rounded values, output, state in/out, workspace. */
typedef struct lat_problem {
    const lat_method *m;
    lat_shape s;
    int n_in;
    float *in32[16];
    double *in64[16];
    size_t in_count[16];
    size_t out_count, state_count;
    float *out32;
    float *state_in32;  /* NULL when the call has no initial state */
    double *state_in64;
    float *state_out32;
    void *work;
    size_t work_bytes;
} lat_problem;

/* Generate inputs from the seed (bit-identical for a given seed, whatever the
 * thread count). harsh → the descriptor's harsh distributions. with64 →
 * also keep fp64 copies for the reference. Returns 0 or -1 (no memory). */
int lat_problem_init(lat_problem *p, const lat_method *m, const lat_shape *s, uint64_t seed,
                     int harsh, int with64);
/* Allocate output, state_out and the workspace of `form` for nthreads. */
int lat_problem_buffers(lat_problem *p, const lat_form *f, int nthreads, int want_state);
void lat_problem_free(lat_problem *p);
/* Bytes a cell will allocate (inputs, fp64 copies, outputs, state, workspace,
 * reference buffers): refused up front when above the available memory. */
double lat_problem_estimate(const lat_method *m, const lat_shape *s, const lat_form *f,
                            int nthreads, int with_reference);
/* Accuracy suite: multiply the `sharpen` inputs (q, k) by factor; give the
 * `redraw` inputs (random features) the values of draw number `draw`. */
void lat_problem_sharpen(lat_problem *p, double factor);
int lat_problem_redraw(lat_problem *p, uint64_t seed, int draw, int harsh);
/* Run a form on p (NaN-poisons out/state_out/work first). */
lat_status lat_problem_run(lat_problem *p, const lat_form *f, int nthreads, int want_state);
/* The same call without poisoning (the timed repetitions). */
lat_status lat_problem_call(lat_problem *p, const lat_form *f, int nthreads, int want_state);

/* ---- metrics (metrics.c) --------------------------------------------------- */
typedef struct lat_err {
    double max_abs, max_rel, rel_rmse, nmse, worst_row;
    long nonfinite; /* NaN/Inf count in the tested output */
    long n;
} lat_err;
/* Compare got (float or double) against ref; rows of `row` elements. */
lat_err lat_compare_f32(const float *got, const double *ref, size_t n, size_t row);
lat_err lat_compare_f64(const double *got, const double *ref, size_t n, size_t row);

/* ---- statistics (stats.c) -------------------------------------------------- */
typedef struct lat_stats {
    int n;
    double min, max, median, mean, std, cv, p20, p80;
    int outliers; /* modified Z-score > 3.5 */
} lat_stats;
lat_stats lat_stats_compute(const double *x, int n);

/* ---- timing ---------------------------------------------------------------- */
double lat_now_ns(void);

/* ---- BLAS / threads (blas.c) ----------------------------------------------- */
void lat_blas_single_thread(void); /* force and verify OpenBLAS at 1 thread */
const char *lat_blas_config(void);
const char *lat_blas_core(void);
int lat_blas_num_threads(void);
int lat_max_threads(void);
void lat_set_ftz(void);

/* ---- NPY (npy.c) ----------------------------------------------------------- */
int lat_npy_write(const char *path, const void *data, int is_f64, const size_t *dims, int rank);
/* Reads back a float32/float64 .npy (for tests). Returns malloc'd data. */
void *lat_npy_read(const char *path, int *is_f64, size_t *dims, int *rank);

/* ---- metadata (sysinfo.c) -------------------------------------------------- */
typedef struct lat_roof {
    double sgemm_gflops[65];  /* by thread count, 0 = not measured */
    double triad_gbs[65];
    double peak_gflops_theory; /* per core × cores */
    double fma_peak_gflops[65]; /* measured FMA hand loop */
    double sgemm64_gflops[65];  /* sgemm on 64×64×64 tiles */
} lat_roof;
/* Measure the ceilings for 1..max_threads (roofline.c); rows into csv. */
int lat_roofline(lat_roof *roof, int max_threads, long triad_elems, FILE *csv);
/* Largest cache size in bytes (hwloc), for the triad's 4× rule. */
size_t lat_llc_bytes(void);
/* Write meta.json into dir (machine, topology, compiler, flags, commit,
 * OpenBLAS, OMP); roof may be NULL. Returns 0 or -1. */
int lat_write_meta(const char *dir, const char *run_id, const lat_roof *roof, const char *suite);
void lat_cpu_model(char *buf, size_t len);
const char *lat_git_commit(void);

/* ---- util (util.c) --------------------------------------------------------- */
int lat_mkdir_p(const char *path);         /* 0 or -1 with errno */
int lat_dir_writable(const char *path);
void lat_run_id(char *buf, size_t len);    /* <UTC time>_<commit> */
int lat_parse_int(const char *s, long *out); /* strict; 0 on success */
int lat_parse_double(const char *s, double *out);
int lat_parse_int_list(const char *s, int *out, int max); /* "1,2,4" → count or -1 */
int lat_in_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t size);
void lat_die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
extern const char *lat_prog; /* for error messages */
/* Where parsers write their one-line errors (stderr; fuzzers silence it). */
FILE *lat_errf(void);
void lat_set_errf(FILE *f);

#endif
