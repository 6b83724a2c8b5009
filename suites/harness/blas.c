/* blas.c — keep OpenBLAS single-threaded (the kernels call it from inside
 * OpenMP regions; a threaded OpenBLAS there oversubscribes the cores or, for
 * OpenMP builds, silently overrides the setting — OpenBLAS #5806), record its
 * configuration, and set FTZ/DAZ for the fp32 paths. */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#include <pmmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "harness.h"

/* Not in every cblas.h: declare what OpenBLAS exports. */
extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

void lat_blas_single_thread(void)
{
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    openblas_set_num_threads(1);
    if (openblas_get_num_threads() != 1) {
        fprintf(stderr, "%s: OpenBLAS refuses to run single-threaded (it reports %d threads); "
                        "set OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 for BLAS and rerun\n",
                lat_prog, openblas_get_num_threads());
        exit(2);
    }
}

const char *lat_blas_config(void) { return openblas_get_config(); }
const char *lat_blas_core(void) { return openblas_get_corename(); }
int lat_blas_num_threads(void) { return openblas_get_num_threads(); }

int lat_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

void lat_set_ftz(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}
