/* suite.h — sweep definitions (suites/NAME.suite) and their expansion into cells.
 *
 * Format (one directive per line, '#' starts a comment):
 *
 *   suite quick                      name (optional; defaults to the file name)
 *   grid bench throughput            start a grid: kind (bench | decode | accuracy) and name
 *     methods all                    all | method | method.form, comma/space separated
 *     exclude softmax.parallel       drop these (same syntax)
 *     B 1                            integer lists (space or comma separated)
 *     T 512 1024 2048                … also pow2:256..65536 for powers of two
 *     H 8
 *     D 64 128                       head dimension (each method maps it: latbench list)
 *     threads 1 all                  integers, `all` (= every core) or `1..all`
 *     reps 5                         minimum repetitions
 *     min_time 0.2                   minimum timed seconds per cell
 *     accuracy off                   compare each cell with the fp64 reference (bench)
 *     knob gla.chunk chunk=32        knob override for a method or method.form
 *     limit softmax.parallel T 4096  do not generate cells above this T (time budget)
 *     ctx 256 1024 32768             decode: context lengths
 *     sharpness 1 3                  accuracy: q/k multipliers
 *     inputs typical harsh           accuracy: input distributions
 *     draws 5                        accuracy: random-feature draws
 *     seed 42
 *   end
 *
 * Unknown directives, bad numbers, unknown methods/forms/knobs and directives
 * outside a grid are errors with the file, line number and reason. */
#ifndef LAT_SUITE_H
#define LAT_SUITE_H

#include "cell.h"

#define LAT_MAX_LIST 32
#define LAT_MAX_SEL 256

typedef enum { LAT_GRID_BENCH, LAT_GRID_DECODE, LAT_GRID_ACCURACY } lat_grid_kind;

typedef struct lat_sel { /* a method, or one of its forms (f == NULL: all) */
    const lat_method *m;
    const lat_form *f;
} lat_sel;

typedef struct lat_knob_set {
    lat_sel sel;
    const lat_knob *knob;
    int value;
} lat_knob_set;

typedef struct lat_limit {
    lat_sel sel;
    int max_T;
} lat_limit;

typedef struct lat_grid {
    lat_grid_kind kind;
    char name[64];
    lat_sel sel[LAT_MAX_SEL];
    int n_sel;
    lat_sel excl[LAT_MAX_SEL];
    int n_excl;
    int B[LAT_MAX_LIST], nB, T[LAT_MAX_LIST], nT, H[LAT_MAX_LIST], nH, D[LAT_MAX_LIST], nD;
    int threads[LAT_MAX_LIST], nthreads;
    int ctx[LAT_MAX_LIST], nctx;
    double sharp[LAT_MAX_LIST];
    int nsharp;
    int harsh[2], nharsh;
    int reps, draws, accuracy;
    double min_time;
    uint64_t seed;
    lat_knob_set knobs[64];
    int nknobs;
    lat_limit limits[64];
    int nlimits;
} lat_grid;

typedef struct lat_suite {
    char name[64];
    char path[1024];
    lat_grid grids[16];
    int ngrids;
} lat_suite;

/* A fully specified unit of work, in deterministic order. */
typedef struct lat_task {
    const lat_grid *grid;
    lat_cell cell;
    int ctx;        /* decode: context length */
    double sharp;   /* accuracy: q/k multiplier */
} lat_task;

/* Parse a suite file: 0, or -1 after printing "file:line: reason". */
int lat_suite_parse(const char *path, lat_suite *s);
/* Parse from a string (tests, fuzzing); name is used in messages. */
int lat_suite_parse_text(const char *text, const char *name, lat_suite *s);
/* Expand into tasks (malloc'd array); returns the count, or -1 (message
 * printed) when the suite expands to more than a million cells. */
int lat_suite_tasks(const lat_suite *s, lat_task **out);
/* Identity of a task for --resume and merge: the same string a CSV row of it
 * yields (lat_row_key). */
void lat_task_key(const lat_task *t, char *buf, size_t len);
/* Where a suite name resolves: "quick" → suites/quick.suite. */
void lat_suite_path(const char *name, char *buf, size_t len);

#endif
