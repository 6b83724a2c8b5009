/* cell.h — one benchmark cell (method, form, shape, threads) and its row. */
#ifndef LAT_CELL_H
#define LAT_CELL_H

#include "harness.h"

typedef struct lat_cell {
    const lat_method *m;
    const lat_form *f;
    lat_shape s;
    int threads;
    uint64_t seed;
    int min_reps;      /* ≥ this many timed repetitions …             */
    double min_time_s; /* … and at least this much timed time         */
    double warmup_s;   /* warm-up time before timing                  */
    int accuracy;      /* compare against the fp64 reference          */
    int harsh;         /* harsh input distributions                   */
    const char *dump_dir; /* write .npy of inputs/outputs (NULL = no) */
    /* what the cell measures: bench (throughput and memory of a form),
     * decode (per-token latency of the decode form at context s.pos, state
     * filled with N(0, 0.1²) values), accuracy (errors only: fp64 reference,
     * and exact softmax for approximations, over `draws` random-feature
     * draws, q/k multiplied by `sharp`). */
    enum { LAT_MODE_BENCH, LAT_MODE_DECODE, LAT_MODE_ACCURACY } mode;
    double sharp;
    int draws;
    const char *grid;     /* sweep grid name (CSV column), NULL for run */
    const char *key;      /* sweep cell identity for --resume, NULL for run */
} lat_cell;

#define LAT_MAX_SAMPLES 2000

typedef struct lat_result {
    lat_status status;
    char state[16];     /* ok | unsupported | failed | refused | crashed | noisy */
    char reason[256];
    int warmup_reps;
    lat_stats t;        /* ns */
    double tokens_per_s, gflops, gbytes_per_s, flop_per_byte;
    double flops, bytes_model, state_bytes;
    double workspace_bytes, alloc_peak_bytes, peak_rss_bytes, rss_baseline_bytes;
    double mem_estimate_bytes;
    int has_acc;
    lat_err err, state_err;
    int acc_pass;
    /* accuracy II: against exact softmax attention (mean/std over draws) */
    int has_sm;
    double sm_rel_rmse, sm_rel_rmse_std, sm_max_abs;
    double state_bytes_measured; /* decode: bytes of the state buffer */
    int nsamples;
    double samples[LAT_MAX_SAMPLES];
} lat_result;

/* Runs the cell in a fresh child process (so peak RSS is the cell's own and
 * a crash cannot take the caller down). Fills r; returns 0, or -1 when the
 * child could not be started. */
int lat_cell_run(const lat_cell *c, lat_result *r);

/* "chunk=64;subchunk=16": the knobs this method reads, in its order. */
void lat_knob_string(const lat_method *m, const lat_shape *s, char *buf, size_t len);

/* CSV files: bench.csv (bench cells), decode.csv, accuracy.csv. Rows are
 * written with a single write() on an O_APPEND descriptor and fsync'd, so an
 * interrupted run keeps every finished row intact; the header is written when
 * the file is empty. The last column, cell_key, identifies the cell for
 * --resume and merge. */
const char *lat_bench_header(void);
const char *lat_decode_header(void);
const char *lat_accuracy_header(void);
int lat_bench_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r);
int lat_decode_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r);
int lat_accuracy_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r);
int lat_csv_append_line(const char *path, const char *header, const char *line);
void lat_print_result(FILE *f, const lat_cell *c, const lat_result *r);
/* Append one JSON line with the raw samples (samples.jsonl). */
int lat_samples_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r);

#endif
