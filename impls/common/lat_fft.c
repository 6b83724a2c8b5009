/* lat_fft.c — batched Stockham FFT over LAT_FFT_LANES lanes (see lat_fft.h).
 *
 * Stage with sub-transform length len and stride s (len·s = n): for p < len/4,
 * q < s, with a..d = x[q + s(p + j·len/4)], j = 0..3, and w = e^{−2πi p/len}:
 *     y[q + s(4p)]   = (a + c) + (b + d)
 *     y[q + s(4p+1)] = w  ((a − c) − i(b − d))
 *     y[q + s(4p+2)] = w² ((a + c) − (b + d))
 *     y[q + s(4p+3)] = w³ ((a − c) + i(b − d))
 * then len /= 4, s *= 4 (the OTFFT radix-4 Stockham kernel); a last radix-2
 * stage (len = 2) when log2 n is odd. The q and lane loops are one contiguous
 * run of s·LANES floats. The twiddle of (p, len) is table entry p·s.
 */
#include <math.h>

#include "lat_fft.h"

#define L LAT_FFT_LANES

void lat_fft_twiddles(int n, int k0, int k1, float *twr, float *twi)
{
    const double w = -2.0 * 3.14159265358979323846 / (double)n;
    for (int k = k0; k < k1; k++) {
        twr[k] = (float)cos(w * k);
        twi[k] = (float)sin(w * k);
    }
}

/* One group of radix-4 butterflies over a contiguous run of lanes. */
static inline void bfly4(long run, const float *restrict ar, const float *restrict ai,
                         const float *restrict br, const float *restrict bi, const float *restrict cr,
                         const float *restrict ci, const float *restrict dr, const float *restrict di,
                         float *restrict y0r, float *restrict y0i, float *restrict y1r, float *restrict y1i,
                         float *restrict y2r, float *restrict y2i, float *restrict y3r, float *restrict y3i,
                         float w1r, float w1i, float w2r, float w2i, float w3r, float w3i)
{
    for (long i = 0; i < run; i++) {
        const float apcr = ar[i] + cr[i], apci = ai[i] + ci[i];
        const float amcr = ar[i] - cr[i], amci = ai[i] - ci[i];
        const float bpdr = br[i] + dr[i], bpdi = bi[i] + di[i];
        const float bmdr = br[i] - dr[i], bmdi = bi[i] - di[i];
        y0r[i] = apcr + bpdr;
        y0i[i] = apci + bpdi;
        const float t1r = amcr + bmdi, t1i = amci - bmdr; /* (a−c) − i(b−d) */
        y1r[i] = fmaf(t1r, w1r, -t1i * w1i);
        y1i[i] = fmaf(t1r, w1i, t1i * w1r);
        const float t2r = apcr - bpdr, t2i = apci - bpdi;
        y2r[i] = fmaf(t2r, w2r, -t2i * w2i);
        y2i[i] = fmaf(t2r, w2i, t2i * w2r);
        const float t3r = amcr - bmdi, t3i = amci + bmdr; /* (a−c) + i(b−d) */
        y3r[i] = fmaf(t3r, w3r, -t3i * w3i);
        y3i[i] = fmaf(t3r, w3i, t3i * w3r);
    }
}

static void radix4(int len, int s, const float *xr, const float *xi, float *yr, float *yi,
                   const float *twr, const float *twi)
{
    const int m = len / 4;
    const long run = (long)s * L, q = run * m; /* floats of one (p, ·) group; quarter */
    for (int p = 0; p < m; p++) {
        const long ps = (long)p * s;
        const float *a_r = xr + run * p, *a_i = xi + run * p;
        float *y_r = yr + run * 4 * p, *y_i = yi + run * 4 * p;
        bfly4(run, a_r, a_i, a_r + q, a_i + q, a_r + 2 * q, a_i + 2 * q, a_r + 3 * q, a_i + 3 * q, y_r, y_i,
              y_r + run, y_i + run, y_r + 2 * run, y_i + 2 * run, y_r + 3 * run, y_i + 3 * run, twr[ps], twi[ps],
              twr[2 * ps], twi[2 * ps], twr[3 * ps], twi[3 * ps]);
    }
}

/* last stage, len = 2 (twiddle 1) */
static void radix2(int s, const float *restrict xr, const float *restrict xi, float *restrict yr,
                   float *restrict yi)
{
    const long run = (long)s * L;
    for (long i = 0; i < run; i++) {
        const float ar = xr[i], ai = xi[i], br = xr[run + i], bi = xi[run + i];
        yr[i] = ar + br;
        yi[i] = ai + bi;
        yr[run + i] = ar - br;
        yi[run + i] = ai - bi;
    }
}

int lat_fft_forward(int n, float *re, float *im, float *sre, float *sim, const float *twr,
                    const float *twi)
{
    float *xr = re, *xi = im, *yr = sre, *yi = sim;
    int in_scratch = 0, s = 1, len = n;
    for (; len >= 4; len /= 4, s *= 4) {
        radix4(len, s, xr, xi, yr, yi, twr, twi);
        float *t = xr; xr = yr; yr = t;
        t = xi; xi = yi; yi = t;
        in_scratch ^= 1;
    }
    if (len == 2) {
        radix2(s, xr, xi, yr, yi);
        in_scratch ^= 1;
    }
    return in_scratch;
}
