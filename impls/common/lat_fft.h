/* lat_fft.h — a small batched complex FFT for convolution forms (S4D).
 *
 * n = 2^m points; every point is a vector of LAT_FFT_LANES independent lanes
 * (e.g. 16 channels), stored as split real / imaginary arrays laid out
 * [n][LAT_FFT_LANES]. Lanes are the SIMD axis: every butterfly is a plain C
 * loop over contiguous floats that the compiler vectorizes, whatever the
 * stage's stride. Stockham autosort (no bit reversal), radix 4 with one
 * radix-2 stage when m is odd; twiddles from a table made once per size.
 */
#ifndef LAT_FFT_H
#define LAT_FFT_H

#define LAT_FFT_LANES 16

/* Twiddle table of an n-point forward transform: twr[k] + i·twi[k] =
 * exp(−2πi k/n), k = 0 .. n−1, computed in double (entries [k0, k1) only, so
 * that threads can share the work). */
void lat_fft_twiddles(int n, int k0, int k1, float *twr, float *twi);

/* Forward transform X[k] = Σ_j x[j] e^{−2πi jk/n} of every lane of (re, im),
 * using (sre, sim) as scratch of the same size. Returns 0 when the result is
 * in (re, im), 1 when it is in (sre, sim). n must be a power of two ≥ 1.
 * Inverse: conjugate the input and the output (and divide by n). */
int lat_fft_forward(int n, float *re, float *im, float *sre, float *sim, const float *twr,
                    const float *twi);

#endif
