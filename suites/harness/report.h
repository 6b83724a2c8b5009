/* report.h — `latbench report RUN` (tables) and `latbench plots RUN` (figures)
 * from the CSVs of a run folder, and the scaling-exponent fit that the claims
 * evaluator shares.
 *
 * Tables: RUN/tables/{throughput,memory,accuracy,decode,scaling}.{md,tex} and
 * RUN/tables/summary.md; RUN/scaling.csv. Rows whose status is not ok/noisy are
 * skipped; noisy timings carry a dagger. A sweep's head dimension D is read as
 * the V column (every method maps D to V; K may differ, e.g. a state size).
 * Figures: every scripts/NAME.gp is run as `gnuplot -e "run='RUN'" NAME.gp`
 * and writes RUN/plots/NAME.png and NAME.pdf. */
#ifndef LAT_REPORT_H
#define LAT_REPORT_H

#include "table.h"

/* One fitted scaling exponent: log(t_med_ns) = slope · log(T) + c over the
 * distinct T of one (method, form, B, H, D, threads) group of bench.csv. */
typedef struct lat_scaling_fit {
    char method[64], form[64];
    int B, H, D, threads;
    double slope, r2;   /* slope 1 = linear in T, 2 = quadratic */
    int n_points;       /* distinct T values used (≥ 2) */
    int T_min, T_max;
} lat_scaling_fit;

/* Fits every group of the bench table `bench` (rows with status ok or noisy,
 * all grids; at a T measured twice the first row counts) using only T in
 * [T_lo, T_hi] (0 = unbounded). Groups with fewer than two distinct T are
 * left out. *fits receives a malloc'd array (free() it) in the order groups
 * first appear; returns the number of fits. */
int lat_report_scaling_table(const lat_table *bench, int T_lo, int T_hi, lat_scaling_fit **fits);

/* The same on run_dir/bench.csv. Returns the number of fits, or -1 when
 * bench.csv is missing or unreadable (*fits = NULL). */
int lat_report_scaling(const char *run_dir, int T_lo, int T_hi, lat_scaling_fit **fits);

/* Writes fits as CSV (method,form,D,threads,slope,r2,n_points,T_min,T_max,B,H);
 * 0 or -1. */
int lat_report_scaling_write(const char *path, const lat_scaling_fit *fits, int n);

/* `latbench report RUN`: writes the tables and scaling.csv. Exits 2 with one
 * line on a missing run folder or unreadable CSV; returns 0. */
int lat_report(const char *run_dir);

/* Only tables/perf.md and perf.tex from RUN/perf.csv (latbench perf). */
int lat_report_perf(const char *run_dir);

/* `latbench plots RUN`: runs every *.gp of scripts_dir (NULL → ./scripts,
 * then <dir of the executable>/../scripts) on the run folder. Exits 2 with
 * one line when gnuplot, the scripts or the run folder are missing; returns
 * 0 when every script ran, 1 when one failed. */
int lat_plots(const char *run_dir, const char *scripts_dir);

#endif
