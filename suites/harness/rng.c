/* rng.c — splitmix64 and Box–Muller normals, in double. A seed fully
 * determines every generated input (no thread-dependent streams). */
#include <math.h>

#include "harness.h"

void lat_rng_seed(lat_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x9E3779B97F4A7C15ull;
    r->has_spare = 0;
    r->spare = 0;
}

uint64_t lat_rng_u64(lat_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double lat_rng_uniform(lat_rng *r) { return (double)(lat_rng_u64(r) >> 11) * 0x1.0p-53; }

double lat_rng_normal(lat_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do
        u1 = lat_rng_uniform(r);
    while (u1 <= 0.0);
    u2 = lat_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}
