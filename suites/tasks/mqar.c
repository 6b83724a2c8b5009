/* mqar.c — `latbench mqar`: trains the two-layer task model of spec/claims.md
 * B.6 (model.h) with every registered trainable mixer (mixers.def) on MQAR
 * (B.1) and selective copying (B.3), fp64 on the CPU, and writes
 *
 *   RUN/mqar.csv          one row per (finished run, test slice)
 *   RUN/mqar_lr.csv       the learning-rate search runs (same columns)
 *   RUN/selcopy.csv       selective copying, one row per run
 *   RUN/mqar.md, .tex     best LR per (method, size), mean ± sd over seeds
 *   RUN/mqar_summary.csv  the same numbers, one row per (tier, method, size,
 *                         slice): what scripts/mqar.gp plots
 *   RUN/meta.json         machine and build (if not there yet)
 *
 * Tiers (B.6, sized for 2 cores; --steps/--seeds/--lr/--sizes override):
 *   tiny      tests only: V 64, train (32,2)×512, test (32,2), 20 steps × 16,
 *             each mixer's middle size, LR 3e-3, 1 seed.
 *   smoke     V 256, train (64,4)×10k, test (64,4)×1000, fillers 0,
 *             1000 steps × 64, LR 3e-3, 1 seed, middle size; mixers softmax,
 *             linear_attn, gla, mamba (those registered; else the first four).
 *   core      V 1024, train (128,8)×20k (fixed), test (128,8)×1000 and
 *             (256,16)×1000, fillers 0, MQ_CORE_STEPS steps × 64; every mixer
 *             × its B.6 sizes × seeds {0,1,2}; LR grid {1e-3, 3e-3} (softmax,
 *             sliding_window) or {1e-3, 3e-3, 1e-2} (the linear / recurrent /
 *             SSM mixers), searched ONCE per method at its middle size with
 *             seed 0, chosen by accuracy on a validation split (1000 fresh
 *             examples of the training distribution — never the test set),
 *             then reused for every size and seed.
 *   tradeoff  V 1024, train mixture (64,4),(128,8),(256,16) ×10k each,
 *             random fillers; test (64,4),(128,8),(256,16),(256,64),(512,128)
 *             ×500; MQ_TRADEOFF_STEPS steps × 64; every size, seed 0; the
 *             core tier's chosen LR when the run folder has it (else the
 *             same search as core).
 *   selcopy   A 16, M 8, L_noise 240 (length 256), train 20k fixed, test 1000,
 *             MQ_SELCOPY_STEPS steps × 32, LR 1e-3, middle size, seed 0.
 *   full      core + tradeoff + selcopy (the ≈ 6 h budget on 2 cores).
 *
 * mqar.csv columns (one row per run and test slice; acc is that slice's):
 *   task,tier,method,size_knob,size,knobs,D,H,V,L_train,K_train,L,pairs,n_test,
 *   state_bytes,params,lr,seed,steps,batch,train_loss,val_acc,acc,acc_all,
 *   test_loss,sec,omp_threads,status
 * L, pairs = the test slice; L_train, K_train = the training slices joined by
 * '+'; state_bytes = the mixer's Zoology formula at the slice's L (fp32
 * bytes; only softmax depends on L); knobs = "<size_knob>=<size>" (empty for
 * the knob D); acc_all = mean accuracy over the run's test slices;
 * train_loss = mean batch loss over the last 5% of steps; val_acc = the
 * validation accuracy the LR search ranks by; sec = wall seconds of training
 * and evaluation; omp_threads = threads used (the numbers do not depend on
 * it); status ok | diverged (a
 * non-finite loss stopped training; the row still reports the accuracy of
 * the last finite parameters).
 *
 * Resume (--resume): a run whose key — every config column (tier, method,
 * size, D, H, V, lr, seed, steps, batch) — already has all its rows is
 * skipped; a torn last line is cut off first. Each finished run's rows are
 * appended and flushed (fsync) at once. SIGINT: the current run is dropped,
 * the tables are written from what is finished, exit 130 (a second SIGINT
 * kills). Progress and ETA go to stderr. Results are identical for a seed
 * whatever the thread count (train.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../harness/cli.h"
#include "../harness/harness.h"
#include "../harness/table.h"
#include "model.h"
#include "mq.h"
#include "mq_ops.h"
#include "mqar.h"
#include "tasks_data.h"
#include "train.h"

/* Step counts of the budgeted tiers. Measured (AMD EPYC Zen4, 2 cores, fp64, one thread's CPU
 * time per sequence fwd+bwd at L 128, V 1024): 0.75–1.6 ms by mixer (softmax 0.97 ms), i.e. a
 * core step of 64 sequences ≈ 33 ms on 2 idle cores and a 2000-step run ≈ 70–140 s incl.
 * evaluation. Projection for `--tier full` with 15 mixers (157 core runs incl. the LR search,
 * 43 tradeoff, 15 selcopy): ≈ 4.6 h on 2 idle cores (`--dry-run` times 3 steps per case on
 * this machine and prints its own projection). Softmax reaches 1.000 on (128, 8) and
 * (256, 16) in 2000 steps; GLA 0.93 / 0.68 (d_k 32). */
#define MQ_CORE_STEPS 2000
#define MQ_TRADEOFF_STEPS 2500
#define MQ_SELCOPY_STEPS 2000
#define MQ_DATA_SEED 123

#define MAX_SLICES 6
#define MAX_LR 8
#define MAX_SEEDS 16
#define MAX_SIZES 8

enum { TASK_MQAR = 0, TASK_SELCOPY = 1 };

typedef struct {
    int L, K, n;
} slice_t;

typedef struct {
    const char *name;
    int task, V;
    int n_train;
    slice_t train[3];
    int n_test;
    slice_t test[MAX_SLICES];
    int n_val; /* validation examples per training slice (LR search) */
    int random_fill;
    int steps, batch, n_seeds, all_sizes, tune;
    int reuse_core_lr;
    double lr_attn[3];
    int n_lr_attn;
    double lr_other[3];
    int n_lr_other;
    int A, M, L_noise; /* selective copying */
} tier_t;

static const tier_t k_tiers[] = {
    {"tiny", TASK_MQAR, 64, 1, {{32, 2, 512}}, 1, {{32, 2, 128}}, 64, 0, 20, 16, 1, 0, 0, 0,
     {3e-3}, 1, {3e-3}, 1, 0, 0, 0},
    {"smoke", TASK_MQAR, 256, 1, {{64, 4, 10000}}, 1, {{64, 4, 1000}}, 500, 0, 1000, 64, 1, 0, 0, 0,
     {3e-3}, 1, {3e-3}, 1, 0, 0, 0},
    {"core", TASK_MQAR, 1024, 1, {{128, 8, 20000}}, 2, {{128, 8, 1000}, {256, 16, 1000}}, 1000, 0,
     MQ_CORE_STEPS, 64, 3, 1, 1, 0, {1e-3, 3e-3}, 2, {1e-3, 3e-3, 1e-2}, 3, 0, 0, 0},
    {"tradeoff", TASK_MQAR, 1024, 3, {{64, 4, 10000}, {128, 8, 10000}, {256, 16, 10000}}, 5,
     {{64, 4, 500}, {128, 8, 500}, {256, 16, 500}, {256, 64, 500}, {512, 128, 500}}, 300, 1,
     MQ_TRADEOFF_STEPS, 64, 1, 1, 1, 1, {1e-3, 3e-3}, 2, {1e-3, 3e-3, 1e-2}, 3, 0, 0, 0},
    {"selcopy", TASK_SELCOPY, 16, 1, {{256, 8, 20000}}, 1, {{256, 8, 1000}}, 0, 0, MQ_SELCOPY_STEPS, 32, 1, 0, 0,
     0, {1e-3}, 1, {1e-3}, 1, 16, 8, 240},
};
#define N_TIERS ((int)(sizeof k_tiers / sizeof k_tiers[0]))

static const tier_t *find_tier(const char *n)
{
    for (int i = 0; i < N_TIERS; i++)
        if (!strcmp(k_tiers[i].name, n))
            return &k_tiers[i];
    return NULL;
}

/* ---- options ----------------------------------------------------------------- */
typedef struct {
    const char *tier, *mixers, *out;
    int sizes[MAX_SIZES], n_sizes;
    double lrs[MAX_LR];
    int n_lr;
    int seeds[MAX_SEEDS], n_seeds;
    int steps, threads, resume, gradcheck, dry_run;
} opts_t;

static void mqar_help(void)
{
    printf("usage: latbench mqar [--tier smoke|core|tradeoff|selcopy|full|tiny] [--mixers a,b] [--sizes n,…]\n"
           "                     [--lr x,…] [--seeds n,…] [--steps N] [--threads n] [--out RUN_DIR]\n"
           "                     [--resume] [--gradcheck] [--dry-run]\n"
           "  Trains the two-layer task model (embedding → BaseConv → MIXER → tied head, fp64) with\n"
           "  each trainable mixer on MQAR / selective copying (spec/claims.md Part B, tiers of B.6)\n"
           "  and writes RUN_DIR/mqar.csv (one row per run and test slice), mqar_lr.csv (the LR\n"
           "  search), selcopy.csv, mqar.md / mqar.tex / mqar_summary.csv. Default tier: smoke.\n"
           "  --tier T      smoke (minutes), core (B.6 main test), tradeoff (state-size curves),\n"
           "                selcopy, full (core + tradeoff + selcopy, ≈ 6 h on 2 cores), tiny (tests)\n"
           "  --mixers a,b  only these mixers (default: all registered; smoke: a few)\n"
           "  --sizes n,…   state-knob values for every mixer (default: each mixer's B.6 sweep)\n"
           "  --lr x,…      learning-rate grid (default: the tier's; >1 value = search at the middle size)\n"
           "  --seeds n,…   model seeds (default: the tier's, from 0)\n"
           "  --steps N     training steps per run (default: the tier's)\n"
           "  --threads n   OpenMP threads (default: all; results do not depend on it)\n"
           "  --out DIR     run folder (default results/<UTC time>_<commit>)\n"
           "  --resume      skip runs already in DIR (after an interruption)\n"
           "  --gradcheck   whole-model finite-difference check and a 20-step training that must\n"
           "                lower the loss, per mixer; thread-count determinism; no files\n"
           "  --dry-run     list the runs and project their cost from a few timed steps\n");
}

static int parse_dlist(const char *s, double *out, int max)
{
    char buf[1024];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        double v;
        if (n >= max || lat_parse_double(t, &v) || !(v > 0) || v > 1)
            return -1;
        out[n++] = v;
    }
    return n ? n : -1;
}

static int parse_ilist(const char *s, int *out, int max, int lo)
{
    char buf[1024];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long v;
        if (n >= max || lat_parse_int(t, &v) || v < lo || v > 1000000)
            return -1;
        out[n++] = (int)v;
    }
    return n ? n : -1;
}

/* ---- SIGINT --------------------------------------------------------------------- */
static volatile sig_atomic_t g_stop;
static void on_sigint(int sig)
{
    g_stop = 1;
    signal(sig, SIG_DFL); /* a second ^C kills */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void fmt_dur(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, len, "?");
    else if (s < 100)
        snprintf(buf, len, "%.0f s", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, len, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static int is_attention(const mq_mixer *m)
{
    return !strcmp(m->name, "softmax") || !strcmp(m->name, "sliding_window");
}

/* ---- data of a tier ---------------------------------------------------------------- */
typedef struct {
    mq_dataset train, val, test[MAX_SLICES];
    int ok;
} tier_data;

static void tier_data_free(tier_data *d)
{
    mq_dataset_free(&d->train);
    mq_dataset_free(&d->val);
    for (int i = 0; i < MAX_SLICES; i++)
        mq_dataset_free(&d->test[i]);
    d->ok = 0;
}

static int tier_data_build(const tier_t *t, tier_data *d)
{
    memset(d, 0, sizeof *d);
    size_t ints = 0;
    int n = 0;
    for (int i = 0; i < t->n_train; i++) {
        ints += (size_t)t->train[i].n * (size_t)(t->train[i].L + 2 * t->train[i].K);
        n += t->train[i].n;
    }
    if (mq_dataset_init(&d->train, t->V, n, ints) || mq_dataset_init(&d->val, t->V, 16, 4096))
        return -1;
    for (int i = 0; i < t->n_train; i++) {
        const slice_t *s = &t->train[i];
        int rc = t->task == TASK_MQAR
                     ? mq_mqar_append(&d->train, s->L, s->K, s->n, 0.01, t->random_fill,
                                      mq_data_seed(MQ_DATA_SEED, MQ_SPLIT_TRAIN, i))
                     : mq_selcopy_append(&d->train, t->A, t->M, t->L_noise, s->n,
                                         mq_data_seed(MQ_DATA_SEED, MQ_SPLIT_TRAIN, i));
        if (rc)
            return -1;
        if (t->n_val && t->task == TASK_MQAR &&
            mq_mqar_append(&d->val, s->L, s->K, t->n_val, 0.01, t->random_fill,
                           mq_data_seed(MQ_DATA_SEED, MQ_SPLIT_VAL, i)))
            return -1;
    }
    for (int i = 0; i < t->n_test; i++) {
        const slice_t *s = &t->test[i];
        if (mq_dataset_init(&d->test[i], t->V, s->n, (size_t)s->n * (size_t)(s->L + 2 * s->K)))
            return -1;
        int rc = t->task == TASK_MQAR
                     ? mq_mqar_append(&d->test[i], s->L, s->K, s->n, 0.01, t->random_fill,
                                      mq_data_seed(MQ_DATA_SEED, MQ_SPLIT_TEST, i))
                     : mq_selcopy_append(&d->test[i], t->A, t->M, t->L_noise, s->n,
                                         mq_data_seed(MQ_DATA_SEED, MQ_SPLIT_TEST, i));
        if (rc)
            return -1;
    }
    char why[256];
    if (mq_dataset_validate(&d->train, why, sizeof why) || mq_dataset_validate(&d->val, why, sizeof why)) {
        fprintf(stderr, "%s: mqar: generated data is invalid: %s\n", lat_prog, why);
        return -1;
    }
    d->ok = 1;
    return 0;
}

/* ---- runs and jobs --------------------------------------------------------------------- */
enum { JOB_TUNE = 0, JOB_FINAL = 1, JOB_PROMOTE = 2, JOB_SELCOPY = 3 };

typedef struct {
    const tier_t *tier;
    const mq_mixer *mx;
    int size, seed, kind;
    double lr;          /* 0 = resolved when reached (the search's choice) */
    double cost;        /* relative cost units (steps × batch × mean L + evaluation) */
} job_t;

typedef struct {
    job_t *j;
    int n, cap;
} jobs_t;

static void jobs_add(jobs_t *J, job_t j)
{
    if (J->n == J->cap) {
        J->cap = J->cap ? 2 * J->cap : 64;
        J->j = realloc(J->j, sizeof(job_t) * (size_t)J->cap);
        if (!J->j)
            lat_die(1, "mqar: out of memory");
    }
    J->j[J->n++] = j;
}

static double run_cost(const tier_t *t, int steps)
{
    double tl = 0, tn = 0, ev = 0;
    for (int i = 0; i < t->n_train; i++) {
        tl += (double)t->train[i].n * t->train[i].L;
        tn += t->train[i].n;
        ev += (double)t->n_val * t->train[i].L;
    }
    for (int i = 0; i < t->n_test; i++)
        ev += (double)t->test[i].n * t->test[i].L * (t->test[i].L / 128.0 > 1 ? t->test[i].L / 128.0 : 1);
    return (double)steps * t->batch * (tl / tn) + ev / 3.0;
}

static int mixer_sizes(const mq_mixer *m, const opts_t *o, int *out)
{
    if (o->n_sizes) {
        memcpy(out, o->sizes, sizeof(int) * (size_t)o->n_sizes);
        return o->n_sizes;
    }
    int n = 0;
    while (n < 4 && m->sizes[n] > 0) {
        out[n] = m->sizes[n];
        n++;
    }
    if (!n) { /* a mixer without a sweep: the default config's value */
        mq_cfg c = mq_cfg_default();
        const char *k = m->size_knob;
        out[n++] = !strcmp(k, "dk") ? c.dk : !strcmp(k, "feat") ? c.feat : !strcmp(k, "window") ? c.window
                 : !strcmp(k, "n_state") ? c.n_state : c.D;
    }
    return n;
}

static int middle_size(const int *sizes, int n) { return sizes[(n - 1) / 2]; }

/* ---- CSV ------------------------------------------------------------------------------------ */
#define MQAR_HEADER                                                                                          \
    "task,tier,method,size_knob,size,knobs,D,H,V,L_train,K_train,L,pairs,n_test,state_bytes,params,lr,seed," \
    "steps,batch,train_loss,val_acc,acc,acc_all,test_loss,sec,omp_threads,status\n"
#define SELCOPY_HEADER                                                                                        \
    "task,tier,method,size_knob,size,knobs,D,H,V,M,L,n_test,state_bytes,params,lr,seed,steps,batch,train_loss," \
    "acc,test_loss,sec,omp_threads,status\n"

/* Cuts a torn last line, then opens for append (header when empty). */
static FILE *open_csv(const char *path, const char *header)
{
    FILE *f = fopen(path, "r+");
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f), keep = len;
        while (keep > 0) {
            fseek(f, keep - 1, SEEK_SET);
            if (fgetc(f) == '\n')
                break;
            keep--;
        }
        if (keep < len) {
            fflush(f);
            if (ftruncate(fileno(f), keep) != 0) {
                fclose(f);
                return NULL;
            }
        }
        fclose(f);
        if (keep > 0) { /* the header must be ours */
            FILE *r = fopen(path, "r");
            char line[2048] = "";
            if (!r || !fgets(line, sizeof line, r) || strcmp(line, header)) {
                if (r)
                    fclose(r);
                fprintf(stderr, "%s: mqar: %s has other columns than this version writes (move it away)\n",
                        lat_prog, path);
                return NULL;
            }
            fclose(r);
        }
    }
    f = fopen(path, "a");
    if (!f)
        return NULL;
    if (ftell(f) == 0 && fputs(header, f) < 0) {
        fclose(f);
        return NULL;
    }
    fflush(f);
    return f;
}

static void flush_sync(FILE *f)
{
    fflush(f);
    fsync(fileno(f));
}

static void key_of(char *buf, size_t len, const char *tier, const char *method, const char *size, const char *D,
                   const char *H, const char *V, const char *lr, const char *seed, const char *steps,
                   const char *batch)
{
    snprintf(buf, len, "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s", tier, method, size, D, H, V, lr, seed, steps, batch);
}

/* Rows per key in a loaded table (linear scan: the tables are small). */
static int rows_with_key(const lat_table *t, const char *key)
{
    int n = 0;
    char k[512];
    for (int r = 0; r < t->nrow; r++) {
        key_of(k, sizeof k, lat_table_get(t, r, "tier"), lat_table_get(t, r, "method"), lat_table_get(t, r, "size"),
               lat_table_get(t, r, "D"), lat_table_get(t, r, "H"), lat_table_get(t, r, "V"), lat_table_get(t, r, "lr"),
               lat_table_get(t, r, "seed"), lat_table_get(t, r, "steps"), lat_table_get(t, r, "batch"));
        n += !strcmp(k, key);
    }
    return n;
}

typedef struct {
    char dir[4096];
    char mqar[4200], lr[4200], sel[4200];
    FILE *f_mqar, *f_lr, *f_sel;
} outputs;

/* The CSV of a job kind, opened on first use (dies when it cannot be). */
static FILE *csv_for(outputs *o, int kind)
{
    FILE **f = kind == JOB_TUNE ? &o->f_lr : kind == JOB_SELCOPY ? &o->f_sel : &o->f_mqar;
    const char *path = kind == JOB_TUNE ? o->lr : kind == JOB_SELCOPY ? o->sel : o->mqar;
    errno = 0;
    if (!*f && !(*f = open_csv(path, kind == JOB_SELCOPY ? SELCOPY_HEADER : MQAR_HEADER)))
        lat_die(2, "mqar: cannot write %s: %s", path, errno ? strerror(errno) : "unexpected columns");
    return *f;
}

static void job_key(const job_t *j, double lr, int steps, char *buf, size_t len)
{
    mq_cfg c = mq_cfg_default();
    mq_cfg_set_size(j->mx, &c, j->size);
    char s[32], D[16], H[16], V[16], l[32], sd[16], st[16], b[16];
    snprintf(s, sizeof s, "%d", j->size);
    snprintf(D, sizeof D, "%d", c.D);
    snprintf(H, sizeof H, "%d", c.H);
    snprintf(V, sizeof V, "%d", j->tier->V);
    snprintf(l, sizeof l, "%g", lr);
    snprintf(sd, sizeof sd, "%d", j->seed);
    snprintf(st, sizeof st, "%d", steps);
    snprintf(b, sizeof b, "%d", j->tier->batch);
    key_of(buf, len, j->tier->name, j->mx->name, s, D, H, V, l, sd, st, b);
}

/* Is the run already in path (all its rows)? */
static int run_done(const char *path, const char *key, int nrows)
{
    lat_table t;
    if (lat_table_load(path, &t) != 0)
        return 0;
    int n = rows_with_key(&t, key);
    lat_table_free(&t);
    return n >= nrows;
}

/* ---- one training run ---------------------------------------------------------------------- */
typedef struct {
    double acc[MAX_SLICES], loss[MAX_SLICES], val_acc, acc_all, sec;
    mq_train_result tr;
    size_t params;
    int ok;
} run_result;

typedef struct {
    const char *label;
    double t0, last;
    int quiet;
} prog_ctx;

static void on_progress(void *ctx, int step, int steps, double loss)
{
    prog_ctx *p = ctx;
    double t = now_s();
    if (p->quiet || (t - p->last < 20 && step < steps))
        return;
    p->last = t;
    char eta[32];
    fmt_dur((t - p->t0) / step * (steps - step), eta, sizeof eta);
    fprintf(stderr, "  %s: step %d/%d loss %.4f (%.0f s, run ends in %s)\n", p->label, step, steps, loss, t - p->t0,
            eta);
}

static int do_run(const job_t *j, double lr, int steps, int threads, const tier_data *d, const char *label, int quiet,
                  run_result *res)
{
    memset(res, 0, sizeof *res);
    mq_cfg c = mq_cfg_default();
    if (mq_cfg_set_size(j->mx, &c, j->size) != 0)
        return -1;
    mq_model m;
    if (mq_model_setup(&m, j->mx, &c, j->tier->V) != 0)
        return -1;
    double *p = malloc(sizeof(double) * m.n_params);
    if (!p)
        return -1;
    uint64_t rng = 0x243F6A8885A308D3ull ^ ((uint64_t)(j->seed + 1) * 0x9E3779B97F4A7C15ull);
    mq_model_init(&m, p, &rng);
    mq_train_opts o = mq_train_defaults();
    o.steps = steps;
    o.batch = j->tier->batch;
    o.lr = lr;
    o.seed = (uint64_t)j->seed + 1;
    o.threads = threads;
    o.stop = &g_stop;
    prog_ctx pc = {label, now_s(), now_s(), quiet};
    o.progress = on_progress;
    o.progress_ctx = &pc;
    o.log_every = 50;
    double t0 = now_s();
    if (mq_train(&m, p, &d->train, &o, &res->tr) != 0) {
        free(p);
        return -1;
    }
    if (res->tr.interrupted) {
        free(p);
        return 1;
    }
    res->val_acc = NAN;
    if (d->val.n && mq_evaluate(&m, p, &d->val, threads, &res->val_acc, NULL) != 0) {
        free(p);
        return -1;
    }
    double s = 0;
    for (int i = 0; i < j->tier->n_test; i++) {
        if (mq_evaluate(&m, p, &d->test[i], threads, &res->acc[i], &res->loss[i]) != 0) {
            free(p);
            return -1;
        }
        s += res->acc[i];
    }
    res->acc_all = s / j->tier->n_test;
    res->sec = now_s() - t0;
    res->params = m.n_params;
    res->ok = !res->tr.diverged;
    free(p);
    return 0;
}

static void join_slices(const tier_t *t, char *Ls, char *Ks, size_t len)
{
    Ls[0] = Ks[0] = 0;
    for (int i = 0; i < t->n_train; i++) {
        size_t a = strlen(Ls), b = strlen(Ks);
        snprintf(Ls + a, len - a, "%s%d", i ? "+" : "", t->task == TASK_SELCOPY ? t->L_noise + 2 * t->M : t->train[i].L);
        snprintf(Ks + b, len - b, "%s%d", i ? "+" : "", t->task == TASK_SELCOPY ? t->M : t->train[i].K);
    }
}

static int threads_used(int want)
{
#ifdef _OPENMP
    return want > 0 ? want : omp_get_max_threads();
#else
    (void)want;
    return 1;
#endif
}

static int write_rows(FILE *f, const job_t *j, double lr, int steps, int threads, const run_result *r)
{
    const tier_t *t = j->tier;
    mq_cfg c = mq_cfg_default();
    mq_cfg_set_size(j->mx, &c, j->size);
    char knobs[64] = "", Ls[64], Ks[64];
    if (strcmp(j->mx->size_knob, "D"))
        snprintf(knobs, sizeof knobs, "%s=%d", j->mx->size_knob, j->size);
    join_slices(t, Ls, Ks, sizeof Ls);
    for (int i = 0; i < t->n_test; i++) {
        if (t->task == TASK_MQAR)
            fprintf(f, "mqar,%s,%s,%s,%d,%s,%d,%d,%d,%s,%s,%d,%d,%d,%.0f,%zu,%g,%d,%d,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.2f,%d,%s\n",
                    t->name, j->mx->name, j->mx->size_knob, j->size, knobs, c.D, c.H, t->V, Ls, Ks, t->test[i].L,
                    t->test[i].K, t->test[i].n, j->mx->state_bytes(&c, t->test[i].L), r->params, lr, j->seed, steps,
                    t->batch, r->tr.loss_last, r->val_acc, r->acc[i], r->acc_all, r->loss[i], r->sec,
                    threads_used(threads), r->ok ? "ok" : "diverged");
        else
            fprintf(f, "selcopy,%s,%s,%s,%d,%s,%d,%d,%d,%d,%d,%d,%.0f,%zu,%g,%d,%d,%d,%.6f,%.6f,%.6f,%.2f,%d,%s\n",
                    t->name, j->mx->name, j->mx->size_knob, j->size, knobs, c.D, c.H, t->V, t->M, t->L_noise + 2 * t->M,
                    t->test[i].n, j->mx->state_bytes(&c, t->L_noise + 2 * t->M), r->params, lr, j->seed, steps,
                    t->batch, r->tr.loss_last, r->acc[i], r->loss[i], r->sec, threads_used(threads),
                    r->ok ? "ok" : "diverged");
    }
    flush_sync(f);
    return ferror(f) ? -1 : 0;
}

/* The LR search's choice for (tier, method) from mqar_lr.csv: the best mean
 * val_acc (diverged runs rank last; ties: the grid's earlier LR). 0 when the
 * search is incomplete. */
static double chosen_lr(const char *lr_path, const char *tier, const char *method, const double *grid, int n_grid,
                        int size, int seed, int steps, int batch, int *complete)
{
    lat_table t;
    *complete = 0;
    if (lat_table_load(lr_path, &t) != 0)
        return 0;
    double best = -2, best_lr = 0;
    int found = 0;
    for (int g = 0; g < n_grid; g++) {
        char l[32];
        snprintf(l, sizeof l, "%g", grid[g]);
        double v = NAN;
        for (int r = 0; r < t.nrow; r++) {
            if (strcmp(lat_table_get(&t, r, "tier"), tier) || strcmp(lat_table_get(&t, r, "method"), method) ||
                strcmp(lat_table_get(&t, r, "lr"), l) || lat_table_num(&t, r, "size") != size ||
                lat_table_num(&t, r, "seed") != seed || lat_table_num(&t, r, "steps") != steps ||
                lat_table_num(&t, r, "batch") != batch)
                continue;
            v = strcmp(lat_table_get(&t, r, "status"), "ok") ? -1 : lat_table_num(&t, r, "val_acc");
            if (isnan(v))
                v = lat_table_num(&t, r, "acc_all");
            break;
        }
        if (isnan(v))
            continue;
        found++;
        if (v > best) {
            best = v;
            best_lr = grid[g];
        }
    }
    lat_table_free(&t);
    *complete = found == n_grid;
    return best_lr;
}

/* The core tier's LR for a method, if this run folder has one: the search's
 * choice, or the single LR of its core rows. 0 = none. */
static double core_lr(const outputs *out, const mq_mixer *mx)
{
    lat_table t;
    double lr = 0;
    if (lat_table_load(out->mqar, &t) == 0) {
        for (int r = 0; r < t.nrow && !lr; r++)
            if (!strcmp(lat_table_get(&t, r, "tier"), "core") && !strcmp(lat_table_get(&t, r, "method"), mx->name))
                lr = lat_table_num(&t, r, "lr");
        lat_table_free(&t);
    }
    return lr > 0 ? lr : 0;
}

/* ---- tables ------------------------------------------------------------------------------------ */
typedef struct {
    char tier[32], method[64], knob[32];
    int size;
    double lr;
    int n_slices;
    int sL[MAX_SLICES], sK[MAX_SLICES];
    double sb[MAX_SLICES];
    double acc[MAX_SLICES][MAX_SEEDS];
    int nseed[MAX_SLICES];
    double all[MAX_SEEDS], loss[MAX_SEEDS];
    int nall;
    int diverged;
} group_t;

static void mean_sd(const double *v, int n, double *m, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *m = n ? s / n : NAN;
    for (int i = 0; i < n; i++)
        q += (v[i] - *m) * (v[i] - *m);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static int load_groups(const char *path, group_t **out)
{
    lat_table t;
    *out = NULL;
    if (lat_table_load(path, &t) != 0)
        return 0;
    int n = 0, cap = 0;
    group_t *g = NULL;
    for (int r = 0; r < t.nrow; r++) {
        const char *st = lat_table_get(&t, r, "status");
        if (strcmp(st, "ok") && strcmp(st, "diverged"))
            continue;
        const char *tier = lat_table_get(&t, r, "tier"), *method = lat_table_get(&t, r, "method");
        int size = (int)lat_table_num(&t, r, "size");
        double lr = lat_table_num(&t, r, "lr");
        int k = 0;
        while (k < n && !(g[k].size == size && g[k].lr == lr && !strcmp(g[k].tier, tier) && !strcmp(g[k].method, method)))
            k++;
        if (k == n) {
            if (n == cap) {
                cap = cap ? 2 * cap : 32;
                g = realloc(g, sizeof(group_t) * (size_t)cap);
            }
            memset(&g[n], 0, sizeof g[n]);
            snprintf(g[n].tier, sizeof g[n].tier, "%s", tier);
            snprintf(g[n].method, sizeof g[n].method, "%s", method);
            snprintf(g[n].knob, sizeof g[n].knob, "%s", lat_table_get(&t, r, "size_knob"));
            g[n].size = size;
            g[n].lr = lr;
            n++;
        }
        group_t *G = &g[k];
        int L = (int)lat_table_num(&t, r, "L");
        int K = lat_table_col(&t, "pairs") >= 0 ? (int)lat_table_num(&t, r, "pairs") : (int)lat_table_num(&t, r, "M");
        int s = 0;
        while (s < G->n_slices && !(G->sL[s] == L && G->sK[s] == K))
            s++;
        if (s == G->n_slices) {
            if (s == MAX_SLICES)
                continue;
            G->sL[s] = L;
            G->sK[s] = K;
            G->sb[s] = lat_table_num(&t, r, "state_bytes");
            G->n_slices++;
        }
        if (G->nseed[s] < MAX_SEEDS)
            G->acc[s][G->nseed[s]++] = lat_table_num(&t, r, "acc");
        if (s == 0 && G->nall < MAX_SEEDS) {
            double a = lat_table_col(&t, "acc_all") >= 0 ? lat_table_num(&t, r, "acc_all") : lat_table_num(&t, r, "acc");
            G->all[G->nall] = a;
            G->loss[G->nall++] = lat_table_num(&t, r, "train_loss");
        }
        G->diverged |= !strcmp(st, "diverged");
    }
    lat_table_free(&t);
    *out = g;
    return n;
}

/* Keeps, per (tier, method, size), the LR with the best mean overall accuracy. */
static int best_groups(group_t *g, int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        double mi, sd;
        mean_sd(g[i].all, g[i].nall, &mi, &sd);
        int k = 0;
        while (k < m && !(g[k].size == g[i].size && !strcmp(g[k].tier, g[i].tier) && !strcmp(g[k].method, g[i].method)))
            k++;
        if (k == m)
            g[m++] = g[i];
        else {
            double mk;
            mean_sd(g[k].all, g[k].nall, &mk, &sd);
            if (mi > mk)
                g[k] = g[i];
        }
    }
    return m;
}

static void tex_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '_' || *s == '&' || *s == '%' || *s == '#')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static int write_tables(const outputs *out)
{
    group_t *g = NULL, *sc = NULL;
    int n = best_groups(g, load_groups(out->mqar, &g));
    int ns = best_groups(sc, load_groups(out->sel, &sc));
    if (!n && !ns) {
        free(g);
        free(sc);
        return 0;
    }
    char pmd[4300], ptex[4300], psum[4300];
    snprintf(pmd, sizeof pmd, "%s/mqar.md", out->dir);
    snprintf(ptex, sizeof ptex, "%s/mqar.tex", out->dir);
    snprintf(psum, sizeof psum, "%s/mqar_summary.csv", out->dir);
    FILE *md = fopen(pmd, "w"), *tex = fopen(ptex, "w"), *sum = fopen(psum, "w");
    if (!md || !tex || !sum) {
        if (md) fclose(md);
        if (tex) fclose(tex);
        if (sum) fclose(sum);
        free(g);
        free(sc);
        return -1;
    }
    fprintf(md, "# Task accuracy (MQAR, selective copying)\n\n"
                "Two-layer fp64 models (embedding → BaseConv → mixer → tied head; spec/claims.md B.6), trained on\n"
                "this machine. Per (method, size): the learning rate with the best mean overall accuracy,\n"
                "then accuracy per test slice (L, K pairs) as mean ± sample sd over the seeds (n). State\n"
                "bytes: the Zoology formula (fp32) at the slice's L (only softmax grows with L; shown at the\n"
                "longest slice). Rows marked † had a diverged seed.\n");
    fprintf(tex, "%% Task accuracy tables (latbench mqar). Needs \\usepackage{booktabs}.\n");
    fprintf(sum, "task,tier,method,form,size_knob,size,state_bytes,L,pairs,lr,n_seeds,acc_mean,acc_sd,acc_all_mean\n");
    for (int pass = 0; pass < 2; pass++) {
        group_t *G = pass ? sc : g;
        int nG = pass ? ns : n;
        /* tiers in order of first appearance */
        for (int i = 0; i < nG; i++) {
            int first = 1;
            for (int k = 0; k < i; k++)
                first &= strcmp(G[k].tier, G[i].tier) != 0;
            if (!first)
                continue;
            const group_t *h = &G[i];
            fprintf(md, "\n## %s — tier %s\n\n| method | size | state bytes | lr | n |", pass ? "Selective copying" : "MQAR",
                    h->tier);
            for (int s = 0; s < h->n_slices; s++)
                fprintf(md, pass ? " acc (L %d, M %d) |" : " acc (%d, %d) |", h->sL[s], h->sK[s]);
            fprintf(md, "%s train loss |\n|---|---|---:|---:|---:|", h->n_slices > 1 ? " overall |" : "");
            for (int s = 0; s < h->n_slices + (h->n_slices > 1); s++)
                fprintf(md, "---:|");
            fprintf(md, "---:|\n");
            fprintf(tex, "\n%% %s, tier %s\n\\begin{tabular}{ll r r r", pass ? "selective copying" : "MQAR", h->tier);
            for (int s = 0; s < h->n_slices + (h->n_slices > 1); s++)
                fprintf(tex, " r");
            fprintf(tex, "}\n\\toprule\nmethod & size & state bytes & lr & $n$");
            for (int s = 0; s < h->n_slices; s++)
                fprintf(tex, pass ? " & L %d, M %d" : " & (%d, %d)", h->sL[s], h->sK[s]);
            fprintf(tex, "%s \\\\\n\\midrule\n", h->n_slices > 1 ? " & overall" : "");
            for (int k = i; k < nG; k++) {
                const group_t *r = &G[k];
                if (strcmp(r->tier, h->tier))
                    continue;
                double mall, sall, ml, sl;
                mean_sd(r->all, r->nall, &mall, &sall);
                mean_sd(r->loss, r->nall, &ml, &sl);
                double sbmax = 0;
                for (int s = 0; s < r->n_slices; s++)
                    sbmax = r->sb[s] > sbmax ? r->sb[s] : sbmax;
                fprintf(md, "| %s%s | %s=%d | %.3g | %g | %d |", r->method, r->diverged ? " †" : "", r->knob, r->size,
                        sbmax, r->lr, r->nall);
                tex_escape(tex, r->method);
                fprintf(tex, "%s & ", r->diverged ? "$^\\dagger$" : "");
                tex_escape(tex, r->knob);
                fprintf(tex, "=%d & %.3g & %g & %d", r->size, sbmax, r->lr, r->nall);
                for (int s = 0; s < h->n_slices; s++) {
                    int ss = 0;
                    while (ss < r->n_slices && !(r->sL[ss] == h->sL[s] && r->sK[ss] == h->sK[s]))
                        ss++;
                    if (ss == r->n_slices) {
                        fprintf(md, " – |");
                        fprintf(tex, " & --");
                        continue;
                    }
                    double m, sd;
                    mean_sd(r->acc[ss], r->nseed[ss], &m, &sd);
                    if (r->nseed[ss] > 1) {
                        fprintf(md, " %.3f ± %.3f |", m, sd);
                        fprintf(tex, " & $%.3f \\pm %.3f$", m, sd);
                    } else {
                        fprintf(md, " %.3f |", m);
                        fprintf(tex, " & $%.3f$", m);
                    }
                    fprintf(sum, "%s,%s,%s,%s,%s,%d,%.0f,%d,%d,%g,%d,%.6f,%.6f,%.6f\n", pass ? "selcopy" : "mqar",
                            r->tier, r->method, r->tier, r->knob, r->size, r->sb[ss], r->sL[ss], r->sK[ss], r->lr,
                            r->nseed[ss], m, sd, mall);
                }
                if (h->n_slices > 1 && r->nall > 1) {
                    fprintf(md, " %.3f ± %.3f |", mall, sall);
                    fprintf(tex, " & $%.3f \\pm %.3f$", mall, sall);
                } else if (h->n_slices > 1) {
                    fprintf(md, " %.3f |", mall);
                    fprintf(tex, " & $%.3f$", mall);
                }
                fprintf(md, " %.4f |\n", ml);
                fprintf(tex, " \\\\\n");
            }
            fprintf(tex, "\\bottomrule\n\\end{tabular}\n");
        }
    }
    int bad = ferror(md) || ferror(tex) || ferror(sum);
    bad |= fclose(md) != 0;
    bad |= fclose(tex) != 0;
    bad |= fclose(sum) != 0;
    free(g);
    free(sc);
    return bad ? -1 : 0;
}

/* ---- --gradcheck ---------------------------------------------------------------------------------- */
/* Trains the tiny tier for `steps`; loss0/loss1 (may be NULL): mean cross-entropy over the
 * whole training set before and after (a noise-free "did it learn" signal). */
static int tiny_train(const mq_mixer *mx, int threads, int steps, mq_train_result *tr, double **params, size_t *np,
                      double *loss0, double *loss1)
{
    const tier_t *t = find_tier("tiny");
    tier_data d;
    if (tier_data_build(t, &d) != 0) {
        tier_data_free(&d);
        return -1;
    }
    int sizes[MAX_SIZES];
    opts_t none;
    memset(&none, 0, sizeof none);
    int ns = mixer_sizes(mx, &none, sizes);
    mq_cfg c = mq_cfg_default();
    mq_cfg_set_size(mx, &c, middle_size(sizes, ns));
    mq_model m;
    if (mq_model_setup(&m, mx, &c, t->V) != 0) {
        tier_data_free(&d);
        return -1;
    }
    double *p = malloc(sizeof(double) * m.n_params);
    uint64_t rng = 77;
    mq_model_init(&m, p, &rng);
    mq_train_opts o = mq_train_defaults();
    o.steps = steps;
    o.batch = t->batch;
    o.lr = 3e-3;
    o.threads = threads;
    double acc;
    if (loss0)
        mq_evaluate(&m, p, &d.train, threads, &acc, loss0);
    int rc = mq_train(&m, p, &d.train, &o, tr);
    if (loss1)
        mq_evaluate(&m, p, &d.train, threads, &acc, loss1);
    tier_data_free(&d);
    if (params) {
        *params = p;
        *np = m.n_params;
    } else
        free(p);
    return rc;
}

static int cmd_gradcheck(const mq_mixer **mx, int nm, int threads)
{
    int pass = 0, fail = 0;
    for (int i = 0; i < nm; i++) {
        char why[256];
        double e = mq_model_gradcheck(mx[i], 4242 + (uint64_t)i, 300, why, sizeof why);
        int ok = e <= 1e-6;
        printf("%s model-grad %-16s %s\n", ok ? "PASS" : "FAIL", mx[i]->name, why);
        ok ? pass++ : fail++;
        mq_train_result tr;
        double l0, l1;
        if (tiny_train(mx[i], threads, 20, &tr, NULL, NULL, &l0, &l1) != 0) {
            printf("FAIL train-20   %-16s could not train\n", mx[i]->name);
            fail++;
            continue;
        }
        ok = !tr.diverged && l1 < l0;
        printf("%s train-20   %-16s training-set loss %.4f → %.4f after %d steps (%.2f s)\n", ok ? "PASS" : "FAIL",
               mx[i]->name, l0, l1, tr.steps_done, tr.seconds);
        ok ? pass++ : fail++;
    }
    if (nm > 0) { /* bit-identical whatever the thread count */
        double *p1 = NULL, *p2 = NULL;
        size_t n1 = 0, n2 = 0;
        mq_train_result a, b;
        int ok = tiny_train(mx[0], 1, 10, &a, &p1, &n1, NULL, NULL) == 0 &&
                 tiny_train(mx[0], 3, 10, &b, &p2, &n2, NULL, NULL) == 0 &&
                 n1 == n2 && memcmp(p1, p2, sizeof(double) * n1) == 0;
        printf("%s determinism %-15s 10 steps on 1 and 3 threads: parameters %s\n", ok ? "PASS" : "FAIL", mx[0]->name,
               ok ? "bit-identical" : "differ");
        ok ? pass++ : fail++;
        free(p1);
        free(p2);
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}

/* ---- planning --------------------------------------------------------------------------------------- */
static void lr_grid(const tier_t *t, const mq_mixer *mx, const opts_t *o, double *g, int *n)
{
    if (o->n_lr) {
        memcpy(g, o->lrs, sizeof(double) * (size_t)o->n_lr);
        *n = o->n_lr;
    } else if (is_attention(mx)) {
        memcpy(g, t->lr_attn, sizeof(double) * (size_t)t->n_lr_attn);
        *n = t->n_lr_attn;
    } else {
        memcpy(g, t->lr_other, sizeof(double) * (size_t)t->n_lr_other);
        *n = t->n_lr_other;
    }
}

static void plan_tier(jobs_t *J, const tier_t *t, const mq_mixer **mx, int nm, const opts_t *o, int core_in_run,
                      const outputs *out)
{
    int steps = o->steps ? o->steps : t->steps;
    double cost = run_cost(t, steps);
    for (int i = 0; i < nm; i++) {
        int sizes[MAX_SIZES], ns = mixer_sizes(mx[i], o, sizes);
        int mid = middle_size(sizes, ns);
        int seeds[MAX_SEEDS], nsd;
        if (o->n_seeds) {
            nsd = o->n_seeds;
            memcpy(seeds, o->seeds, sizeof(int) * (size_t)nsd);
        } else {
            nsd = t->n_seeds;
            for (int s = 0; s < nsd; s++)
                seeds[s] = s;
        }
        double grid[MAX_LR];
        int ng;
        lr_grid(t, mx[i], o, grid, &ng);
        if (t->task == TASK_SELCOPY) {
            for (int g = 0; g < ng; g++)
                for (int s = 0; s < nsd; s++)
                    jobs_add(J, (job_t){t, mx[i], mid, seeds[s], JOB_SELCOPY, grid[g], cost});
            continue;
        }
        double fixed = 0;
        if (ng == 1)
            fixed = grid[0];
        else if (t->reuse_core_lr && !o->n_lr) {
            fixed = core_lr(out, mx[i]);
            if (!fixed && core_in_run)
                fixed = -1; /* the core tier of this invocation decides */
        }
        int tuned = 0;
        if (!fixed && t->tune) {
            for (int g = 0; g < ng; g++)
                jobs_add(J, (job_t){t, mx[i], mid, seeds[0], JOB_TUNE, grid[g], cost});
            jobs_add(J, (job_t){t, mx[i], mid, seeds[0], JOB_PROMOTE, 0, 0});
            tuned = 1;
        }
        const int *szs = t->all_sizes ? sizes : &mid;
        int nsz = t->all_sizes ? ns : 1;
        /* no search in this tier and several LRs: every LR is a final run */
        int nl = (!fixed && !tuned) ? ng : 1;
        for (int g = 0; g < nl; g++)
            for (int z = 0; z < nsz; z++)
                for (int s = 0; s < nsd; s++) {
                    if (tuned && szs[z] == mid && s == 0)
                        continue;
                    jobs_add(J, (job_t){t, mx[i], szs[z], seeds[s], JOB_FINAL, nl > 1 ? grid[g] : fixed, cost});
                }
    }
}

/* The LR of a JOB_FINAL whose lr is 0 (this tier's search) or −1 (core's). */
static double resolve_lr(const job_t *j, const opts_t *o, const outputs *out)
{
    if (j->lr > 0)
        return j->lr;
    if (j->lr < 0) {
        double l = core_lr(out, j->mx);
        if (l > 0)
            return l;
    }
    int sizes[MAX_SIZES], ns = mixer_sizes(j->mx, o, sizes);
    double grid[MAX_LR];
    int ng, complete;
    lr_grid(j->tier, j->mx, o, grid, &ng);
    int seed0 = o->n_seeds ? o->seeds[0] : 0;
    double l = chosen_lr(out->lr, j->tier->name, j->mx->name, grid, ng, middle_size(sizes, ns), seed0,
                         o->steps ? o->steps : j->tier->steps, j->tier->batch, &complete);
    return complete ? l : 0;
}

/* Copies the chosen search run's rows from mqar_lr.csv to mqar.csv. */
static int promote(const job_t *j, const opts_t *o, outputs *out)
{
    double grid[MAX_LR];
    int ng, complete;
    lr_grid(j->tier, j->mx, o, grid, &ng);
    int steps = o->steps ? o->steps : j->tier->steps;
    double lr = chosen_lr(out->lr, j->tier->name, j->mx->name, grid, ng, j->size, j->seed, steps, j->tier->batch,
                          &complete);
    if (!complete)
        return -1;
    char key[512];
    job_key(j, lr, steps, key, sizeof key);
    if (run_done(out->mqar, key, j->tier->n_test))
        return 0;
    lat_table t;
    if (lat_table_load(out->lr, &t) != 0)
        return -1;
    csv_for(out, JOB_FINAL);
    int nr = 0;
    for (int r = 0; r < t.nrow; r++) {
        char k[512];
        key_of(k, sizeof k, lat_table_get(&t, r, "tier"), lat_table_get(&t, r, "method"), lat_table_get(&t, r, "size"),
               lat_table_get(&t, r, "D"), lat_table_get(&t, r, "H"), lat_table_get(&t, r, "V"), lat_table_get(&t, r, "lr"),
               lat_table_get(&t, r, "seed"), lat_table_get(&t, r, "steps"), lat_table_get(&t, r, "batch"));
        if (strcmp(k, key))
            continue;
        for (int c = 0; c < t.ncol; c++)
            fprintf(out->f_mqar, "%s%s", c ? "," : "", t.cell[r][c]);
        fputc('\n', out->f_mqar);
        nr++;
    }
    lat_table_free(&t);
    flush_sync(out->f_mqar);
    fprintf(stderr, "mqar: %s %s: learning rate %g chosen (validation accuracy) and kept as seed %d's run\n",
            j->tier->name, j->mx->name, lr, j->seed);
    return nr ? 0 : -1;
}

/* ---- the command ------------------------------------------------------------------------------------ */
int lat_cmd_mqar(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    o.tier = "smoke";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            mqar_help();
            return 0;
        } else if (!strcmp(a, "--resume")) {
            o.resume = 1;
        } else if (!strcmp(a, "--gradcheck")) {
            o.gradcheck = 1;
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = 1;
        } else if (!strcmp(a, "--tier") && v) {
            if (strcmp(v, "full") && !find_tier(v))
                lat_die(2, "mqar: unknown tier '%s' (allowed: smoke, core, tradeoff, selcopy, full, tiny)", v);
            o.tier = v;
            i++;
        } else if (!strcmp(a, "--mixers") && v) {
            o.mixers = v;
            i++;
        } else if (!strcmp(a, "--out") && v) {
            o.out = v;
            i++;
        } else if (!strcmp(a, "--sizes") && v) {
            if ((o.n_sizes = parse_ilist(v, o.sizes, MAX_SIZES, 1)) < 0)
                lat_die(2, "mqar: --sizes takes positive integers n,… (at most %d), got '%s'", MAX_SIZES, v);
            i++;
        } else if (!strcmp(a, "--lr") && v) {
            if ((o.n_lr = parse_dlist(v, o.lrs, MAX_LR)) < 0)
                lat_die(2, "mqar: --lr takes learning rates in (0, 1] x,… (at most %d), got '%s'", MAX_LR, v);
            i++;
        } else if (!strcmp(a, "--seeds") && v) {
            if ((o.n_seeds = parse_ilist(v, o.seeds, MAX_SEEDS, 0)) < 0)
                lat_die(2, "mqar: --seeds takes integers ≥ 0 n,… (at most %d), got '%s'", MAX_SEEDS, v);
            i++;
        } else if (!strcmp(a, "--steps") && v && !lat_parse_int(v, &n) && n >= 1 && n <= 10000000) {
            o.steps = (int)n;
            i++;
        } else if (!strcmp(a, "--threads") && v && !lat_parse_int(v, &n) && n >= 1 && n <= 1024) {
            o.threads = (int)n;
            i++;
        } else {
            lat_die(2, "mqar: bad option '%s'%s (see latbench mqar --help)", a,
                    (a[0] == '-' && !v) ? " or missing value" : "");
        }
    }
    /* mixers */
    const mq_mixer *mx[256];
    int nm = 0;
    if (o.mixers) {
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", o.mixers);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t && nm < 256; t = strtok_r(NULL, ",", &save)) {
            const mq_mixer *m = mq_find_mixer(t);
            if (!m) {
                char known[2048] = "";
                for (int k = 0; k < mq_n_mixers; k++)
                    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "",
                             mq_mixers[k]->name);
                lat_die(2, "mqar: unknown mixer '%s' (registered: %s)", t, known);
            }
            mx[nm++] = m;
        }
    } else if (!strcmp(o.tier, "smoke") && !o.gradcheck) {
        static const char *const pref[] = {"softmax", "linear_attn", "gla", "mamba"};
        for (int k = 0; k < 4; k++)
            if (mq_find_mixer(pref[k]))
                mx[nm++] = mq_find_mixer(pref[k]);
        for (int k = 0; k < mq_n_mixers && nm < 4; k++) {
            int have = 0;
            for (int q = 0; q < nm; q++)
                have |= mx[q] == mq_mixers[k];
            if (!have)
                mx[nm++] = mq_mixers[k];
        }
    } else {
        for (int k = 0; k < mq_n_mixers && nm < 256; k++)
            mx[nm++] = mq_mixers[k];
    }
    if (!nm)
        lat_die(2, "mqar: no trainable mixer is registered (suites/tasks/mixers.def)");
    for (int i = 0; i < nm; i++) { /* sizes must be settable */
        mq_cfg c = mq_cfg_default();
        if (mq_cfg_set_size(mx[i], &c, 1) != 0)
            lat_die(2, "mqar: mixer %s has an unknown size knob '%s'", mx[i]->name, mx[i]->size_knob);
    }
    if (o.gradcheck)
        return cmd_gradcheck(mx, nm, o.threads);

    /* run folder */
    outputs out;
    memset(&out, 0, sizeof out);
    if (o.out)
        snprintf(out.dir, sizeof out.dir, "%s", o.out);
    else {
        char id[128];
        lat_run_id(id, sizeof id);
        snprintf(out.dir, sizeof out.dir, "results/%s", id);
    }
    snprintf(out.mqar, sizeof out.mqar, "%s/mqar.csv", out.dir);
    snprintf(out.lr, sizeof out.lr, "%s/mqar_lr.csv", out.dir);
    snprintf(out.sel, sizeof out.sel, "%s/selcopy.csv", out.dir);

    /* plan */
    const tier_t *tiers[4];
    int nt = 0;
    if (!strcmp(o.tier, "full")) {
        tiers[nt++] = find_tier("core");
        tiers[nt++] = find_tier("tradeoff");
        tiers[nt++] = find_tier("selcopy");
    } else {
        tiers[nt++] = find_tier(o.tier);
    }
    jobs_t J = {0};
    int core_in_run = 0;
    for (int t = 0; t < nt; t++) {
        plan_tier(&J, tiers[t], mx, nm, &o, core_in_run, &out);
        core_in_run |= !strcmp(tiers[t]->name, "core");
    }
    int nthr = threads_used(o.threads);

    if (o.dry_run) {
        /* time a few steps per (tier, mixer, size) and project */
        double total = 0;
        printf("# latbench mqar --dry-run: %d runs (tier %s, %d mixers, %d threads); seconds projected from 3 timed "
               "steps per (tier, mixer, size) plus evaluation\n",
               J.n, o.tier, nm, nthr);
        const tier_t *cur = NULL;
        tier_data d;
        memset(&d, 0, sizeof d);
        typedef struct { const tier_t *t; const mq_mixer *m; int size; double sec_per_step; } tcache;
        tcache tc[1024];
        int ntc = 0;
        for (int k = 0; k < J.n; k++) {
            job_t *j = &J.j[k];
            if (j->kind == JOB_PROMOTE)
                continue;
            int steps = o.steps ? o.steps : j->tier->steps;
            double sps = -1;
            for (int q = 0; q < ntc; q++)
                if (tc[q].t == j->tier && tc[q].m == j->mx && tc[q].size == j->size)
                    sps = tc[q].sec_per_step;
            if (sps < 0) {
                if (cur != j->tier) {
                    if (cur)
                        tier_data_free(&d);
                    if (tier_data_build(j->tier, &d) != 0)
                        lat_die(1, "mqar: out of memory building the %s data", j->tier->name);
                    cur = j->tier;
                }
                mq_cfg c = mq_cfg_default();
                mq_cfg_set_size(j->mx, &c, j->size);
                mq_model m;
                mq_model_setup(&m, j->mx, &c, j->tier->V);
                double *p = malloc(sizeof(double) * m.n_params);
                uint64_t rng = 1;
                mq_model_init(&m, p, &rng);
                mq_train_opts to = mq_train_defaults();
                to.steps = 1;
                to.batch = j->tier->batch;
                to.threads = o.threads;
                mq_train_result tr;
                mq_train(&m, p, &d.train, &to, &tr); /* warm-up */
                to.steps = 3;
                mq_train(&m, p, &d.train, &to, &tr);
                sps = tr.seconds / 3;
                free(p);
                if (ntc < 1024)
                    tc[ntc++] = (tcache){j->tier, j->mx, j->size, sps};
            }
            double ev = 0, tl = 0, tn = 0; /* evaluation ≈ a third of a training sequence per example */
            for (int i = 0; i < j->tier->n_train; i++) {
                tl += (double)j->tier->train[i].n * j->tier->train[i].L;
                tn += j->tier->train[i].n;
            }
            double per_tok = sps / (j->tier->batch * (tl / tn));
            for (int i = 0; i < j->tier->n_test; i++)
                ev += (double)j->tier->test[i].n * j->tier->test[i].L * per_tok / 3;
            ev += (double)j->tier->n_val * j->tier->n_train * (tl / tn) * per_tok / 3;
            double sec = sps * steps + ev;
            total += sec;
            char dur[32];
            fmt_dur(sec, dur, sizeof dur);
            char lrs[32];
            if (j->lr > 0)
                snprintf(lrs, sizeof lrs, "%g", j->lr);
            else
                snprintf(lrs, sizeof lrs, "%s", j->lr < 0 ? "core's" : "searched");
            printf("%-8s %-16s %s=%-4d seed %-2d lr %-8s %-7s %6d steps  %.1f ms/step  ≈ %s\n", j->tier->name,
                   j->mx->name, j->mx->size_knob, j->size, j->seed, lrs,
                   j->kind == JOB_TUNE ? "search" : j->kind == JOB_SELCOPY ? "selcopy" : "final", steps, sps * 1e3, dur);
        }
        if (cur)
            tier_data_free(&d);
        char dur[32];
        fmt_dur(total, dur, sizeof dur);
        printf("projected total: %s (%.0f s) on %d threads\n", dur, total, nthr);
        free(J.j);
        return 0;
    }

    if (lat_cli_prepare_dir(out.dir, "--out") != 0 || lat_cli_lock_dir(out.dir, "--out") != 0)
        return 2;
    struct stat sb;
    if (!o.resume && (stat(out.mqar, &sb) == 0 || stat(out.sel, &sb) == 0 || stat(out.lr, &sb) == 0))
        lat_die(2, "mqar: %s already has mqar results (use --resume to continue it, or another --out)", out.dir);
    char mpath[4300];
    snprintf(mpath, sizeof mpath, "%s/meta.json", out.dir);
    if (stat(mpath, &sb) != 0) {
        const char *slash = strrchr(out.dir, '/');
        if (lat_write_meta(out.dir, slash ? slash + 1 : out.dir, NULL, "mqar") != 0)
            lat_die(2, "mqar: cannot write %s: %s", mpath, strerror(errno));
    }
    /* a CSV is opened (a torn last line cut, the header checked) when a run needs it */

    signal(SIGINT, on_sigint);
    double total_cost = 0, done_cost = 0, spent = 0;
    for (int k = 0; k < J.n; k++)
        total_cost += J.j[k].cost;
    const tier_t *cur = NULL;
    tier_data d;
    memset(&d, 0, sizeof d);
    int n_run = 0, n_skip = 0, status = 0;
    double t_start = now_s();
    fprintf(stderr, "mqar: %d runs planned (tier %s, %d mixers, %d threads) into %s\n", J.n, o.tier, nm, nthr, out.dir);
    for (int k = 0; k < J.n && !g_stop; k++) {
        job_t *j = &J.j[k];
        int steps = o.steps ? o.steps : j->tier->steps;
        if (j->kind == JOB_PROMOTE) {
            if (promote(j, &o, &out) != 0) {
                fprintf(stderr, "%s: mqar: %s %s: the learning-rate search is incomplete\n", lat_prog, j->tier->name,
                        j->mx->name);
                status = 1;
            }
            continue;
        }
        double lr = j->kind == JOB_FINAL ? resolve_lr(j, &o, &out) : j->lr;
        if (!(lr > 0)) {
            fprintf(stderr, "%s: mqar: %s %s: no learning rate (search incomplete): skipped\n", lat_prog,
                    j->tier->name, j->mx->name);
            status = 1;
            total_cost -= j->cost;
            continue;
        }
        const char *path = j->kind == JOB_TUNE ? out.lr : j->kind == JOB_SELCOPY ? out.sel : out.mqar;
        FILE *f = csv_for(&out, j->kind);
        char key[512];
        job_key(j, lr, steps, key, sizeof key);
        if (run_done(path, key, j->tier->n_test)) {
            n_skip++;
            total_cost -= j->cost;
            continue;
        }
        if (cur != j->tier) {
            if (cur)
                tier_data_free(&d);
            if (tier_data_build(j->tier, &d) != 0)
                lat_die(1, "mqar: out of memory building the %s data", j->tier->name);
            cur = j->tier;
        }
        char label[256];
        snprintf(label, sizeof label, "[%d/%d] %s %s %s=%d lr %g seed %d%s", k + 1, J.n, j->tier->name, j->mx->name,
                 j->mx->size_knob, j->size, lr, j->seed, j->kind == JOB_TUNE ? " (LR search)" : "");
        run_result r;
        int rc = do_run(j, lr, steps, o.threads, &d, label, 0, &r);
        if (rc == 1)
            break; /* interrupted */
        if (rc != 0)
            lat_die(1, "mqar: %s: out of memory", label);
        if (write_rows(f, j, lr, steps, o.threads, &r) != 0)
            lat_die(2, "mqar: cannot append to %s: %s", path, strerror(errno));
        n_run++;
        spent += r.sec;
        done_cost += j->cost;
        char eta[32], took[32], acc[512] = "";
        fmt_dur(spent / done_cost * (total_cost - done_cost), eta, sizeof eta);
        fmt_dur(r.sec, took, sizeof took);
        for (int s = 0; s < j->tier->n_test; s++)
            snprintf(acc + strlen(acc), sizeof acc - strlen(acc), " (%d,%d) %.3f", j->tier->test[s].L,
                     j->tier->test[s].K, r.acc[s]);
        fprintf(stderr, "mqar %s: acc%s | loss %.4f%s | %s | ETA %s\n", label, acc, r.tr.loss_last,
                r.ok ? "" : " DIVERGED", took, eta);
    }
    if (cur)
        tier_data_free(&d);
    if (out.f_mqar)
        fclose(out.f_mqar);
    if (out.f_lr)
        fclose(out.f_lr);
    if (out.f_sel)
        fclose(out.f_sel);
    if (write_tables(&out) != 0)
        lat_die(2, "mqar: cannot write the tables in %s: %s", out.dir, strerror(errno));
    char dur[32];
    fmt_dur(now_s() - t_start, dur, sizeof dur);
    free(J.j);
    if (g_stop) {
        fprintf(stderr, "mqar: interrupted after %d runs (%s); continue with: latbench mqar --tier %s --out %s --resume\n",
                n_run, dur, o.tier, out.dir);
        return 130;
    }
    printf("mqar: %d runs (%d already done) in %s; results and tables (mqar.md, mqar.tex) in %s\n", n_run, n_skip,
           dur, out.dir);
    return status;
}
