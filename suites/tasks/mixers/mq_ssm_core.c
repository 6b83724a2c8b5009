/* mq_ssm_core.c — see mq_ssm_core.h. */
#include "mq_ssm_core.h"

void mq_arr_silu(size_t n, const double *x, double *y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = mq_vsilu(x[i]);
}

void mq_dconv_fwd(int L, int C, int W, const double *x, int ldx, const double *wT,
                  const double *b, double *y, int ldy)
{
    for (int t = 0; t < L; t++) {
        double *yt = y + (size_t)t * ldy;
        for (int c = 0; c < C; c++)
            yt[c] = b ? b[c] : 0.0;
        for (int j = 0; j < W; j++) {
            const int s = t - (W - 1) + j;
            if (s < 0)
                continue;
            const double *xs = x + (size_t)s * ldx, *wj = wT + (size_t)j * C;
#pragma omp simd
            for (int c = 0; c < C; c++)
                yt[c] = fma(wj[c], xs[c], yt[c]);
        }
    }
}

void mq_dconv_bwd(int L, int C, int W, const double *x, int ldx, const double *wT,
                  const double *dy, int lddy, double *dx, int lddx, double *dwT, double *db)
{
    for (int t = 0; t < L; t++) {
        const double *dyt = dy + (size_t)t * lddy;
        if (db)
            for (int c = 0; c < C; c++)
                db[c] += dyt[c];
        for (int j = 0; j < W; j++) {
            const int s = t - (W - 1) + j;
            if (s < 0)
                continue;
            const double *xs = x + (size_t)s * ldx, *wj = wT + (size_t)j * C;
            double *dxs = dx + (size_t)s * lddx, *dwj = dwT + (size_t)j * C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                dwj[c] = fma(dyt[c], xs[c], dwj[c]);
                dxs[c] = fma(wj[c], dyt[c], dxs[c]);
            }
        }
    }
}

void mq_headnorm_fwd(int L, int D, int H, int layernorm, double eps, const double *x,
                     const double *w, int w_per_feature, double *y, double *xhat, double *rstd)
{
    const int G = D / H;
    for (int t = 0; t < L; t++)
        for (int h = 0; h < H; h++) {
            const size_t o = (size_t)t * D + (size_t)h * G;
            const double *xr = x + o;
            const double *wr = w + (w_per_feature ? (size_t)h * G : 0);
            double mu = 0.0;
            if (layernorm) {
                for (int i = 0; i < G; i++)
                    mu += xr[i];
                mu /= G;
            }
            double ss = 0.0;
            for (int i = 0; i < G; i++)
                ss += (xr[i] - mu) * (xr[i] - mu);
            const double r = 1.0 / sqrt(ss / G + eps);
            rstd[(size_t)t * H + h] = r;
            for (int i = 0; i < G; i++) {
                const double v = (xr[i] - mu) * r;
                xhat[o + i] = v;
                y[o + i] = v * wr[i];
            }
        }
}

void mq_headnorm_bwd(int L, int D, int H, int layernorm, const double *xhat, const double *rstd,
                     const double *w, int w_per_feature, const double *dy, double *dx, double *dw)
{
    const int G = D / H;
    for (int t = 0; t < L; t++)
        for (int h = 0; h < H; h++) {
            const size_t o = (size_t)t * D + (size_t)h * G;
            const double *xh = xhat + o, *d = dy + o;
            const double *wr = w + (w_per_feature ? (size_t)h * G : 0);
            double *dwr = dw + (w_per_feature ? (size_t)h * G : 0);
            double s1 = 0.0, s2 = 0.0;
            for (int i = 0; i < G; i++) {
                const double g = d[i] * wr[i];
                s1 += g;
                s2 += g * xh[i];
                dwr[i] += d[i] * xh[i];
            }
            s1 /= G;
            s2 /= G;
            if (!layernorm)
                s1 = 0.0;
            const double r = rstd[(size_t)t * H + h];
            for (int i = 0; i < G; i++)
                dx[o + i] = r * (d[i] * wr[i] - s1 - xh[i] * s2);
        }
}
