/* sweep.c — `latbench sweep SUITE`: run every cell of a suite, appending each
 * row (bench.csv, decode.csv or accuracy.csv by grid kind) the moment its
 * cell finishes, so an interrupted sweep loses no finished row.
 *   --resume     skip cells whose row is already in the run folder
 *   --shard i/N  run only cells i, i+N, i+2N, … (1-based) — a Slurm array
 *                splits a grid this way; `latbench merge` joins the shards
 *   --dry-run    list the cells with their memory estimates, run nothing
 * SIGINT/SIGTERM: the current cell finishes, its row is written, then exit. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sweep.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char *csv_name(lat_grid_kind k)
{
    return k == LAT_GRID_DECODE ? "decode.csv" : k == LAT_GRID_ACCURACY ? "accuracy.csv" : "bench.csv";
}

/* ---- reading rows back ------------------------------------------------------- */
/* A file whose last line lacks its newline was cut mid-write (a kill during
 * write): drop that fragment so the file ends on a complete row. */
int lat_csv_repair(const char *path)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t keep = size;
    char c;
    while (keep > 0) {
        if (pread(fd, &c, 1, keep - 1) != 1)
            break;
        if (c == '\n')
            break;
        keep--;
    }
    int rc = 0;
    if (keep != size)
        rc = ftruncate(fd, keep);
    close(fd);
    return rc;
}

/* Calls fn for the value of column `col` in every complete data row. */
int lat_csv_column_each(const char *path, const char *col, void (*fn)(const char *, void *), void *arg)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int idx = -1, lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n')
            break; /* incomplete */
        line[len - 1] = 0;
        char *save = NULL;
        int i = 0;
        if (lineno++ == 0) {
            for (char *t = strtok_r(line, ",", &save); t; t = strtok_r(NULL, ",", &save), i++)
                if (!strcmp(t, col))
                    idx = i;
            if (idx < 0)
                break;
            continue;
        }
        /* empty fields matter: walk commas by hand */
        char *p = line;
        for (i = 0; i < idx && p; i++) {
            p = strchr(p, ',');
            if (p)
                p++;
        }
        if (!p)
            continue;
        char *e = strchr(p, ',');
        if (e)
            *e = 0;
        fn(p, arg);
    }
    free(line);
    fclose(f);
    return 0;
}

/* a tiny string set (open addressing) for the keys of finished cells */
typedef struct {
    char **v;
    size_t cap, n;
} strset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int set_has(const strset *s, const char *k)
{
    if (!s->cap)
        return 0;
    for (size_t i = hash_str(k) % s->cap;; i = (i + 1) % s->cap) {
        if (!s->v[i])
            return 0;
        if (!strcmp(s->v[i], k))
            return 1;
    }
}

static void set_add(strset *s, const char *k)
{
    if (set_has(s, k))
        return;
    if (2 * (s->n + 1) > s->cap) {
        strset t = {calloc(s->cap ? s->cap * 2 : 1024, sizeof(char *)), s->cap ? s->cap * 2 : 1024, 0};
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i])
                set_add(&t, s->v[i]);
        for (size_t i = 0; i < s->cap; i++)
            free(s->v[i]);
        free(s->v);
        *s = t;
    }
    size_t i = hash_str(k) % s->cap;
    while (s->v[i])
        i = (i + 1) % s->cap;
    s->v[i] = strdup(k);
    s->n++;
}

static void set_free(strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static void add_key(const char *k, void *arg) { set_add((strset *)arg, k); }

/* ---- the sweep ------------------------------------------------------------------ */
static void fmt_dur(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t < 90)
        snprintf(buf, len, "%lds", t);
    else if (t < 5400)
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
}

int lat_sweep(const lat_sweep_opts *o)
{
    char path[4200];
    lat_suite_path(o->suite, path, sizeof path);
    lat_suite *suite = calloc(1, sizeof *suite);
    if (lat_suite_parse(path, suite) != 0) {
        free(suite);
        return 2;
    }
    lat_task *tasks = NULL;
    int ntask = lat_suite_tasks(suite, &tasks);
    if (ntask < 0) {
        free(suite);
        return 2;
    }

    if (o->dry_run) {
        int k = 0;
        for (int i = 0; i < ntask; i++) {
            if (o->shard_n > 1 && i % o->shard_n != o->shard_i - 1)
                continue;
            lat_task *t = &tasks[i];
            double est = lat_problem_estimate(t->cell.m, &t->cell.s, t->cell.f, t->cell.threads,
                                              t->cell.accuracy || t->grid->kind == LAT_GRID_ACCURACY);
            char knobs[256];
            lat_knob_string(t->cell.m, &t->cell.s, knobs, sizeof knobs);
            char mf[128];
            snprintf(mf, sizeof mf, "%s.%s", t->cell.m->name, t->cell.f->name);
            printf("%5d  %-14s %-26s B=%d %s=%d H=%d K=%d V=%d [%s] threads=%d  ~%.1f MiB\n", ++k, t->grid->name,
                   mf, t->cell.s.B, t->grid->kind == LAT_GRID_DECODE ? "ctx" : "T",
                   t->grid->kind == LAT_GRID_DECODE ? t->ctx : t->cell.s.T, t->cell.s.H, t->cell.s.K, t->cell.s.V,
                   knobs, t->cell.threads, est / 1048576.0);
        }
        printf("%d cells\n", k);
        free(tasks);
        free(suite);
        return 0;
    }

    /* the run folder: refuse an unwritable one before anything runs */
    if (lat_cli_prepare_dir(o->out_dir, "--out") != 0 || lat_cli_lock_dir(o->out_dir, "--out") != 0) {
        free(tasks);
        free(suite);
        return 2;
    }
    const char *slash = strrchr(o->out_dir, '/');
    const char *run_id = slash ? slash + 1 : o->out_dir;
    snprintf(path, sizeof path, "%s/meta.json", o->out_dir);
    struct stat sb;
    if (stat(path, &sb) != 0 && lat_write_meta(o->out_dir, run_id, NULL, suite->name) != 0) {
        fprintf(stderr, "%s: sweep: cannot write %s: %s\n", lat_prog, path, strerror(errno));
        free(tasks);
        free(suite);
        return 2;
    }

    strset done = {0};
    const char *files[] = {"bench.csv", "decode.csv", "accuracy.csv"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", o->out_dir, files[i]);
        if (lat_csv_repair(path) != 0) {
            fprintf(stderr, "%s: sweep: cannot repair %s: %s\n", lat_prog, path, strerror(errno));
            return 2;
        }
        if (o->resume)
            lat_csv_column_each(path, "cell_key", add_key, &done);
    }
    /* without --resume a folder that already has rows of this suite would
     * get duplicates: refuse, and say how to continue */
    if (!o->resume) {
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", o->out_dir, files[i]);
            if (stat(path, &sb) == 0 && sb.st_size > 0) {
                fprintf(stderr,
                        "%s: sweep: %s already has rows; add --resume to continue it, or choose another --out\n",
                        lat_prog, path);
                free(tasks);
                free(suite);
                return 2;
            }
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int mine = 0, todo = 0;
    for (int i = 0; i < ntask; i++)
        if (o->shard_n <= 1 || i % o->shard_n == o->shard_i - 1)
            mine++;
    char **keys = calloc((size_t)ntask, sizeof(char *));
    for (int i = 0; i < ntask; i++) {
        char k[512];
        lat_task_key(&tasks[i], k, sizeof k);
        keys[i] = strdup(k);
        if ((o->shard_n <= 1 || i % o->shard_n == o->shard_i - 1) && !set_has(&done, k))
            todo++;
    }
    fprintf(stderr, "%s: sweep %s: %d cells%s, %d to run, into %s\n", lat_prog, suite->name, mine,
            o->shard_n > 1 ? " in this shard" : "", todo, o->out_dir);
    double t0 = lat_now_ns();
    int ran = 0, bad_rows = 0, status = 0;
    for (int i = 0; i < ntask && !stop_requested; i++) {
        if (o->shard_n > 1 && i % o->shard_n != o->shard_i - 1)
            continue;
        if (set_has(&done, keys[i]))
            continue;
        lat_task *t = &tasks[i];
        lat_cell c = t->cell;
        c.grid = t->grid->name;
        c.key = keys[i];
        c.mode = t->grid->kind == LAT_GRID_DECODE     ? LAT_MODE_DECODE
                 : t->grid->kind == LAT_GRID_ACCURACY ? LAT_MODE_ACCURACY
                                                      : LAT_MODE_BENCH;
        c.sharp = t->sharp;
        c.draws = t->grid->draws;
        lat_result *r = calloc(1, sizeof *r);
        if (lat_cell_run(&c, r) != 0) {
            snprintf(r->state, sizeof r->state, "crashed");
            snprintf(r->reason, sizeof r->reason, "could not start the cell process: %s", strerror(errno));
        }
        snprintf(path, sizeof path, "%s/%s", o->out_dir, csv_name(t->grid->kind));
        int wrc = c.mode == LAT_MODE_DECODE     ? lat_decode_append(path, run_id, &c, r)
                  : c.mode == LAT_MODE_ACCURACY ? lat_accuracy_append(path, run_id, &c, r)
                                                : lat_bench_append(path, run_id, &c, r);
        if (wrc != 0) {
            fprintf(stderr, "%s: sweep: cannot append to %s: %s — stopping; finished rows are intact\n", lat_prog,
                    path, strerror(errno));
            free(r);
            status = 2;
            break;
        }
        if (c.mode == LAT_MODE_BENCH && r->nsamples) {
            snprintf(path, sizeof path, "%s/samples.jsonl", o->out_dir);
            lat_samples_append(path, run_id, &c, r);
        }
        if (strcmp(r->state, "failed") == 0 || strcmp(r->state, "crashed") == 0)
            bad_rows++;
        ran++;
        double el = (lat_now_ns() - t0) * 1e-9;
        char e1[32], e2[32];
        fmt_dur(el, e1, sizeof e1);
        fmt_dur(el / ran * (todo - ran), e2, sizeof e2);
        fprintf(stderr, "[%d/%d] %s.%s %s=%d D(K,V)=%d,%d thr=%d  %s%s%s  (%s elapsed, ETA %s)\n", ran, todo,
                c.m->name, c.f->name, c.mode == LAT_MODE_DECODE ? "ctx" : "T",
                c.mode == LAT_MODE_DECODE ? t->ctx : c.s.T, c.s.K, c.s.V, c.threads, r->state,
                r->reason[0] ? ": " : "", r->reason, e1, e2);
        free(r);
    }
    for (int i = 0; i < ntask; i++)
        free(keys[i]);
    free(keys);
    set_free(&done);
    free(tasks);
    free(suite);
    if (stop_requested) {
        fprintf(stderr, "%s: sweep interrupted after %d cells; every finished row is saved — rerun with --resume "
                        "--out %s to complete it\n",
                lat_prog, ran, o->out_dir);
        return 130;
    }
    if (bad_rows)
        fprintf(stderr, "%s: sweep: %d cells failed or crashed (status column)\n", lat_prog, bad_rows);
    return status;
}

/* ---- merge ----------------------------------------------------------------------- */
/* Appends the complete, not yet seen rows of src/name to dst/name. */
static int merge_file(const char *dst_dir, const char *src_dir, const char *name, strset *seen, long *rows,
                      long *dups)
{
    char sp[4200], dp[4200];
    snprintf(sp, sizeof sp, "%s/%s", src_dir, name);
    snprintf(dp, sizeof dp, "%s/%s", dst_dir, name);
    FILE *in = fopen(sp, "r");
    if (!in)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int idx = -1, lineno = 0;
    char *header = NULL;
    while ((len = getline(&line, &cap, in)) > 0) {
        if (line[len - 1] != '\n')
            break;
        if (lineno++ == 0) {
            header = strdup(line);
            char *h = strdup(line);
            h[len - 1] = 0;
            char *save = NULL;
            int i = 0;
            for (char *t = strtok_r(h, ",", &save); t; t = strtok_r(NULL, ",", &save), i++)
                if (!strcmp(t, "cell_key"))
                    idx = i;
            free(h);
            continue;
        }
        char *p = line;
        for (int i = 0; i < idx && p; i++) {
            p = strchr(p, ',');
            if (p)
                p++;
        }
        char key[1024] = "";
        if (p) {
            size_t kl = strcspn(p, ",\n");
            snprintf(key, sizeof key, "%.*s", (int)kl, p);
        }
        if (idx >= 0 && key[0] && set_has(seen, key)) {
            (*dups)++;
            continue;
        }
        if (key[0])
            set_add(seen, key);
        if (lat_csv_append_line(dp, header, line) != 0) {
            free(line);
            free(header);
            fclose(in);
            return -1;
        }
        (*rows)++;
    }
    free(line);
    free(header);
    fclose(in);
    return 0;
}

int lat_merge(const char *out_dir, char **srcs, int nsrc)
{
    if (lat_cli_prepare_dir(out_dir, "merge") != 0)
        return 2;
    const char *files[] = {"bench.csv", "decode.csv", "accuracy.csv", "samples.jsonl"};
    char p[4200];
    struct stat sb;
    for (int f = 0; f < 3; f++) {
        snprintf(p, sizeof p, "%s/%s", out_dir, files[f]);
        if (stat(p, &sb) == 0 && sb.st_size > 0) {
            fprintf(stderr, "%s: merge: %s already exists; merge into an empty folder\n", lat_prog, p);
            return 2;
        }
    }
    for (int i = 0; i < nsrc; i++) {
        snprintf(p, sizeof p, "%s/meta.json", srcs[i]);
        if (stat(srcs[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "%s: merge: %s is not a run folder\n", lat_prog, srcs[i]);
            return 2;
        }
    }
    long rows = 0, dups = 0;
    for (int f = 0; f < 3; f++) {
        strset seen = {0};
        for (int i = 0; i < nsrc; i++)
            if (merge_file(out_dir, srcs[i], files[f], &seen, &rows, &dups) != 0) {
                fprintf(stderr, "%s: merge: cannot write into %s: %s\n", lat_prog, out_dir, strerror(errno));
                set_free(&seen);
                return 2;
            }
        set_free(&seen);
    }
    /* raw samples and the first shard's metadata come along as they are */
    for (int i = 0; i < nsrc; i++) {
        snprintf(p, sizeof p, "%s/samples.jsonl", srcs[i]);
        FILE *in = fopen(p, "r");
        if (!in)
            continue;
        snprintf(p, sizeof p, "%s/samples.jsonl", out_dir);
        FILE *out = fopen(p, "a");
        char buf[65536];
        size_t n;
        while (out && (n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        if (out)
            fclose(out);
        fclose(in);
    }
    for (int i = 0; i < nsrc; i++) {
        char dst[4200];
        snprintf(p, sizeof p, "%s/meta.json", srcs[i]);
        snprintf(dst, sizeof dst, "%s/meta_shard%d.json", out_dir, i + 1);
        FILE *in = fopen(p, "r");
        if (!in)
            continue;
        FILE *out = fopen(dst, "w");
        char buf[65536];
        size_t n;
        while (out && (n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        if (out)
            fclose(out);
        fclose(in);
        if (i == 0) {
            snprintf(dst, sizeof dst, "%s/meta.json", out_dir);
            if (stat(dst, &sb) != 0) {
                in = fopen(p, "r");
                out = fopen(dst, "w");
                while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
                    fwrite(buf, 1, n, out);
                if (in)
                    fclose(in);
                if (out)
                    fclose(out);
            }
        }
    }
    printf("merged %d run folders into %s: %ld rows, %ld duplicates dropped\n", nsrc, out_dir, rows, dups);
    return 0;
}
