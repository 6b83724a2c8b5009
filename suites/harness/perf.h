/* perf.h — `latbench perf`: fractions of the same-run peak (perf.c). */
#ifndef LAT_PERF_H
#define LAT_PERF_H
int lat_cmd_perf(int argc, char **argv);
/* perf.csv from the run's bench.csv rows of grid `grid` (and grid_*) and its
 * roofline.csv; 0 on success. */
int lat_perf_write(const char *run_dir, const char *grid, const char *baselines_path);
#endif
