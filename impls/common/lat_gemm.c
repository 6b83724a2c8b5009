/* lat_gemm.c — the fp32 GEMM every chunkwise/tiled form uses. Row-major, one
 * thread: callers are already inside an OpenMP region, and the harness keeps
 * OpenBLAS single-threaded (suites/harness/blas.c checks it at start-up). */
#include <cblas.h>

#include "lat_kernel.h"

void lat_sgemm(char transa, char transb, int M, int N, int Kd, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (Kd <= 0) { /* C = beta·C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * (size_t)ldc + (size_t)j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * (size_t)ldc + (size_t)j];
        return;
    }
    cblas_sgemm(CblasRowMajor, transa == 'T' ? CblasTrans : CblasNoTrans,
                transb == 'T' ? CblasTrans : CblasNoTrans, M, N, Kd, alpha, A, lda, B, ldb,
                beta, C, ldc);
}
