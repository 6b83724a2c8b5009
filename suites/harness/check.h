/* check.h — the correctness gate (`latbench check`). */
#ifndef LAT_CHECK_H
#define LAT_CHECK_H

#include "harness.h"

typedef struct lat_check_opts {
    int max_threads;
    uint64_t seed;
    int quiet;      /* print failures only */
    double perturb; /* test hook: add this to one output element of every form */
    FILE *csv;      /* --out: rows of check.csv (lat_check_header) */
    double max_form_flops; /* > 0: skip forms above this many FLOPs (long check) */
} lat_check_opts;

#define LAT_CHECK_HEADER                                                                                  \
    "method,form,cmp,B,T,H,K,V,knobs,threads,inputs,pos,rel_rmse,max_abs,worst_row,state_rel_rmse,nonfinite,tol," \
    "passed\n"

/* Returns the number of failed cases of method m (also added to fails, passes). */
int lat_check_method(const lat_method *m, const lat_check_opts *o, int *fails, int *passes);
int lat_check_long(const lat_method *m, const lat_check_opts *o, int T, int *fails, int *passes);

#endif
