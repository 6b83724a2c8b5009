/* sweep.h — suites, sweeps and merging of sharded runs. */
#ifndef LAT_SWEEP_H
#define LAT_SWEEP_H

#include "cli.h"
#include "suite.h"

typedef struct lat_sweep_opts {
    const char *suite;   /* name (suites/<name>.suite) or path */
    const char *out_dir; /* run folder */
    int resume, dry_run;
    int shard_i, shard_n; /* 1-based shard i of n; n ≤ 1 = all */
} lat_sweep_opts;

int lat_sweep(const lat_sweep_opts *o);
int lat_merge(const char *out_dir, char **srcs, int nsrc);
int lat_csv_repair(const char *path);
int lat_csv_column_each(const char *path, const char *col, void (*fn)(const char *, void *), void *arg);

#endif
