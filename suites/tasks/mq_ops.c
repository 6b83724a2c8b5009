/* mq_ops.c — see mq_ops.h. */
#include "mq_ops.h"
#include <cblas.h>
#include <string.h>

uint64_t mq_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double mq_rng_uniform(uint64_t *s) { return (double)(mq_rng_next(s) >> 11) * 0x1.0p-53; }

double mq_rng_normal(uint64_t *s)
{
    /* Box–Muller on (0, 1]; one value per call keeps the stream simple. */
    double u1 = 1.0 - mq_rng_uniform(s), u2 = mq_rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void mq_fill_normal(double *p, size_t n, double std, uint64_t *s)
{ for (size_t i = 0; i < n; i++) p[i] = std * mq_rng_normal(s); }
void mq_fill_uniform(double *p, size_t n, double lo, double hi, uint64_t *s)
{ for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * mq_rng_uniform(s); }
void mq_fill_const(double *p, size_t n, double v)
{ for (size_t i = 0; i < n; i++) p[i] = v; }

void mq_gemm(int transA, int transB, int M, int N, int K, double alpha,
             const double *A, int lda, const double *B, int ldb, double beta,
             double *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {   /* BLAS leaves C untouched for K = 0 only when beta = 1 */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void mq_linear_fwd(int L, int in, int out, const double *x, int ldx,
                   const double *W, const double *b, double *y, int ldy)
{
    mq_gemm(0, 1, L, out, in, 1.0, x, ldx, W, in, 0.0, y, ldy);
    if (b)
        for (int t = 0; t < L; t++)
            for (int o = 0; o < out; o++) y[(size_t)t * ldy + o] += b[o];
}

void mq_linear_bwd(int L, int in, int out, const double *x, int ldx,
                   const double *W, const double *dy, int ldy,
                   double *dx, int lddx, double *dW, double *db)
{
    if (dx) mq_gemm(0, 0, L, in, out, 1.0, dy, ldy, W, in, 1.0, dx, lddx);
    mq_gemm(1, 0, out, in, L, 1.0, dy, ldy, x, ldx, 1.0, dW, in);
    if (db)
        for (int t = 0; t < L; t++)
            for (int o = 0; o < out; o++) db[o] += dy[(size_t)t * ldy + o];
}

void mq_layernorm_fwd(int L, int D, const double *x, const double *g, const double *b,
                      double *y, double *xhat, double *rstd)
{
    for (int t = 0; t < L; t++) {
        const double *xr = x + (size_t)t * D;
        double mu = 0, var = 0;
        for (int i = 0; i < D; i++) mu += xr[i];
        mu /= D;
        for (int i = 0; i < D; i++) var += (xr[i] - mu) * (xr[i] - mu);
        var /= D;
        double r = 1.0 / sqrt(var + 1e-5);
        rstd[t] = r;
        for (int i = 0; i < D; i++) {
            double h = (xr[i] - mu) * r;
            xhat[(size_t)t * D + i] = h;
            y[(size_t)t * D + i] = h * g[i] + b[i];
        }
    }
}

void mq_layernorm_bwd(int L, int D, const double *xhat, const double *rstd, const double *g,
                      const double *dy, double *dx, double *dg, double *db)
{
    for (int t = 0; t < L; t++) {
        const double *h = xhat + (size_t)t * D, *d = dy + (size_t)t * D;
        double s1 = 0, s2 = 0;
        for (int i = 0; i < D; i++) {
            double dh = d[i] * g[i];
            s1 += dh; s2 += dh * h[i];
            dg[i] += d[i] * h[i];
            db[i] += d[i];
        }
        s1 /= D; s2 /= D;
        for (int i = 0; i < D; i++)
            dx[(size_t)t * D + i] = rstd[t] * (d[i] * g[i] - s1 - h[i] * s2);
    }
}
