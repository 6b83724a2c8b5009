/* stats.c — order statistics of repeated timings: median (the headline),
 * min, p20/p80, max, mean, std, cv, and outliers by modified Z-score. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation between closest ranks (numpy's default). */
static double quantile(const double *sorted, int n, double q)
{
    if (n == 1)
        return sorted[0];
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    double f = pos - lo;
    return sorted[lo] * (1 - f) + sorted[hi] * f;
}

lat_stats lat_stats_compute(const double *x, int n)
{
    lat_stats st;
    memset(&st, 0, sizeof st);
    st.n = n;
    if (n <= 0)
        return st;
    double *s = malloc(sizeof(double) * (size_t)n);
    memcpy(s, x, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    st.min = s[0];
    st.max = s[n - 1];
    st.median = quantile(s, n, 0.5);
    st.p20 = quantile(s, n, 0.2);
    st.p80 = quantile(s, n, 0.8);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    st.mean = sum / n;
    double var = 0;
    for (int i = 0; i < n; i++)
        var += (s[i] - st.mean) * (s[i] - st.mean);
    st.std = n > 1 ? sqrt(var / (n - 1)) : 0.0;
    st.cv = st.mean > 0 ? st.std / st.mean : 0.0;
    /* modified Z-score (Iglewicz–Hoaglin): 0.6745·|x − med| / MAD > 3.5 */
    double *dev = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++)
        dev[i] = fabs(s[i] - st.median);
    qsort(dev, (size_t)n, sizeof(double), cmp_double);
    double mad = quantile(dev, n, 0.5);
    if (mad > 0)
        for (int i = 0; i < n; i++)
            if (0.6745 * fabs(s[i] - st.median) / mad > 3.5)
                st.outliers++;
    free(dev);
    free(s);
    return st;
}
