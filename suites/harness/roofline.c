/* roofline.c — `latbench roofline`: this machine's ceilings at each thread
 * count, measured with the same pinning as the benchmarks:
 *   fma_peak   12 independent vector FMA chains per thread (FMA issue limit)
 *   sgemm      OpenBLAS sgemm, n = 1024, one single-threaded call per thread
 *              (how the kernels use BLAS: inside OpenMP regions)
 *   sgemm64    the same on 64×64×64 tiles (the chunkwise forms' shape)
 *   triad      STREAM triad over 3 arrays of 4× the last-level cache
 *   theoretical clock × 2 FMA pipes × vector width × 2 FLOPs × cores
 * Written to roofline.csv and into meta.json; every table and figure quotes
 * cells as fractions of these. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "harness.h"

float lat_fma_loop(long iters, float seed, int *width);
void lat_triad(float *restrict a, const float *restrict b, const float *restrict c, float s, long n,
               int nthreads);

static double best_of(double *x, int n)
{
    double b = x[0];
    for (int i = 1; i < n; i++)
        b = x[i] < b ? x[i] : b;
    return b;
}

double lat_roof_fma(int threads)
{
    const long iters = 4000000;
    int width = 1;
    double t[5];
    volatile float sink = 0;
    for (int r = 0; r < 5; r++) {
        double a = lat_now_ns();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        {
            int w;
            sink += lat_fma_loop(iters, 1.0f, &w);
        }
        t[r] = (lat_now_ns() - a) * 1e-9;
    }
    lat_fma_loop(1, 1.0f, &width);
    return (double)iters * 12 * width * 2 * threads / best_of(t, 5) * 1e-9;
}

static double roof_sgemm(int threads, int n, int inner_reps)
{
    size_t sz = (size_t)n * (size_t)n;
    float **A = calloc((size_t)threads, sizeof(float *)), **Bm = calloc((size_t)threads, sizeof(float *)),
          **C = calloc((size_t)threads, sizeof(float *));
    for (int i = 0; i < threads; i++) {
        A[i] = lat_alloc(sz * 4);
        Bm[i] = lat_alloc(sz * 4);
        C[i] = lat_alloc(sz * 4);
        for (size_t j = 0; j < sz; j++) {
            A[i][j] = (float)((j % 7) - 3) * 0.01f;
            Bm[i][j] = (float)((j % 5) - 2) * 0.01f;
            C[i][j] = 0;
        }
    }
    double t[5];
    for (int r = 0; r < 6; r++) {
        double a = lat_now_ns();
#pragma omp parallel num_threads(threads)
        {
            int id = 0;
#ifdef _OPENMP
            id = omp_get_thread_num();
#endif
            for (int k = 0; k < inner_reps; k++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A[id], n, Bm[id], n, 0.0f,
                            C[id], n);
        }
        if (r > 0)
            t[r - 1] = (lat_now_ns() - a) * 1e-9;
    }
    for (int i = 0; i < threads; i++) {
        lat_free(A[i]);
        lat_free(Bm[i]);
        lat_free(C[i]);
    }
    free(A);
    free(Bm);
    free(C);
    return 2.0 * n * n * (double)n * inner_reps * threads / best_of(t, 5) * 1e-9;
}

static double roof_triad(int threads, long n)
{
    float *a = lat_alloc((size_t)n * 4), *b = lat_alloc((size_t)n * 4), *c = lat_alloc((size_t)n * 4);
    if (!a || !b || !c) {
        lat_free(a);
        lat_free(b);
        lat_free(c);
        return 0;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long i = 0; i < n; i++) { /* first touch by the thread that uses it */
        a[i] = 0;
        b[i] = 1;
        c[i] = 2;
    }
    double t[10];
    for (int r = 0; r < 11; r++) {
        double s = lat_now_ns();
        lat_triad(a, b, c, 3.0f, n, threads);
        if (r > 0)
            t[r - 1] = (lat_now_ns() - s) * 1e-9;
    }
    lat_free(a);
    lat_free(b);
    lat_free(c);
    return 12.0 * (double)n / best_of(t, 10) * 1e-9;
}

static double cpu_mhz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    double mhz = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
            break;
    if (f)
        fclose(f);
    return mhz;
}

int lat_roofline(lat_roof *roof, int max_threads, long triad_elems, FILE *csv)
{
    memset(roof, 0, sizeof *roof);
    int width = 1;
    lat_fma_loop(1, 1.0f, &width);
    roof->peak_gflops_theory = cpu_mhz() * 1e-3 * 2 * width * 2 * max_threads;
    if (csv)
        fprintf(csv, "threads,fma_peak_gflops,sgemm_gflops,sgemm64_gflops,triad_gbs,peak_gflops_theoretical\n");
    for (int t = 1; t <= max_threads && t <= 64; t++) {
        roof->fma_peak_gflops[t] = lat_roof_fma(t);
        roof->sgemm_gflops[t] = roof_sgemm(t, 1024, 1);
        roof->sgemm64_gflops[t] = roof_sgemm(t, 64, 2000);
        roof->triad_gbs[t] = roof_triad(t, triad_elems);
        fprintf(stderr, "roofline: %d thread%s: FMA peak %.1f GFLOP/s, sgemm %.1f GFLOP/s (64-tiles %.1f), "
                        "triad %.1f GB/s\n",
                t, t > 1 ? "s" : "", roof->fma_peak_gflops[t], roof->sgemm_gflops[t], roof->sgemm64_gflops[t],
                roof->triad_gbs[t]);
        if (csv)
            fprintf(csv, "%d,%.3f,%.3f,%.3f,%.3f,%.3f\n", t, roof->fma_peak_gflops[t], roof->sgemm_gflops[t],
                    roof->sgemm64_gflops[t], roof->triad_gbs[t], roof->peak_gflops_theory * t / max_threads);
    }
    return 0;
}
