/* perf.c — `latbench perf`: how close each method's forms come to this
 * machine's own ceilings (issue 6), measured in one run.
 *
 *   1. roofline: the FMA peak and OpenBLAS sgemm at 1..all threads, measured
 *      now into RUN/roofline.csv (skipped when the run already has it);
 *   2. the `perf` suite (suites/perf.suite: every method and form, T 2048,
 *      8192, 32768, D 64 and 128, 1 and all threads; resumable);
 *   3. RUN/perf.csv and RUN/tables/perf.md/.tex: per cell tokens/s, GFLOP/s
 *      on the form's analytic FLOPs, the fraction of the same-run FMA peak
 *      and sgemm at that thread count, the speed-up over the method's
 *      plainest form (its literal recurrence, or the naive parallel form when
 *      it has no recurrence) at the same shape, the 1 → all-threads
 *      speed-up, and the ratio to the external baselines of
 *      data/perf_baselines.tsv (ggml, PyTorch) at their shapes: the first
 *      matching row (baseline) and a second one (baseline2), so a figure
 *      quoted from elsewhere and one measured beside us both show.
 * A speed goal is read from these ratios, measured in one run — never from a
 * timed unit test. */
#include "perf.h"
#include "harness.h"
#include "report.h"
#include "sweep.h"
#include "table.h"
#include <errno.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *perf_header =
    "method,form,B,T,H,K,V,knobs,threads,status,tokens_per_s,gflops,frac_fma_peak,frac_sgemm,plainest_form,"
    "speedup_vs_plainest_form,scaling_1_to_all,best_form,baseline,baseline_tokens_per_s,ratio_vs_baseline,"
    "baseline2,baseline2_tokens_per_s,ratio_vs_baseline2\n";

/* the literal form of a method: its recurrence, else its naive parallel form */
static const char *plainest(const lat_method *m)
{
    if (lat_find_form(m, "recurrent"))
        return "recurrent";
    if (lat_find_form(m, "parallel"))
        return "parallel";
    return m->n_forms ? m->forms[0].name : "";
}

/* the perf suite's grids: "perf" and "perf_*" */
static int in_grid(const lat_table *t, int r, const char *grid)
{
    const char *g = lat_table_get(t, r, "grid");
    size_t l = strlen(grid);
    return !strncmp(g, grid, l) && (g[l] == 0 || g[l] == '_');
}

static int usable(const lat_table *t, int r)
{
    const char *s = lat_table_get(t, r, "status");
    return !strcmp(s, "ok") || !strcmp(s, "noisy");
}

static int same_shape(const lat_table *t, int a, int b)
{
    static const char *cols[] = {"method", "B", "T", "H", "K", "V"};
    for (int i = 0; i < 6; i++)
        if (strcmp(lat_table_get(t, a, cols[i]), lat_table_get(t, b, cols[i])))
            return 0;
    return 1;
}

/* the method's knobs other than chunk-like tuning knobs must match too, so a
 * grid with n_state=16 is not compared with n_state=64 */
static int same_knobs(const lat_table *t, int a, int b)
{
    return !strcmp(lat_table_get(t, a, "knobs"), lat_table_get(t, b, "knobs"));
}

typedef struct baseline {
    char method[64], source[128];
    int B, T, H, K, V, threads;
    char knobs[128];
    double tokens_per_s;
} baseline;

/* data/perf_baselines.tsv: method, source, B, T, H, K, V (0 = any), knobs ("-" = any), threads,
 * tokens_per_s, note */
static int load_baselines(const char *path, baseline *b, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[2048];
    int n = 0, lineno = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n' || !strncmp(line, "method\t", 7))
            continue;
        baseline x;
        memset(&x, 0, sizeof x);
        char *fld[12];
        int nf = 0;
        for (char *p = line, *tok; nf < 12 && (tok = strsep(&p, "\t\n"));)
            fld[nf++] = tok;
        if (nf < 10) {
            fprintf(stderr, "%s: perf: %s:%d: expected 10 tab-separated fields, got %d — line ignored\n", lat_prog,
                    path, lineno, nf);
            continue;
        }
        snprintf(x.method, sizeof x.method, "%s", fld[0]);
        snprintf(x.source, sizeof x.source, "%s", fld[1]);
        x.B = atoi(fld[2]), x.T = atoi(fld[3]), x.H = atoi(fld[4]), x.K = atoi(fld[5]), x.V = atoi(fld[6]);
        snprintf(x.knobs, sizeof x.knobs, "%s", fld[7]);
        x.threads = atoi(fld[8]);
        x.tokens_per_s = atof(fld[9]);
        if (x.tokens_per_s > 0)
            b[n++] = x;
    }
    fclose(f);
    return n;
}

/* knobs "a=1;b=2" contains every "k=v" of want ("-" = anything) */
static int knobs_match(const char *have, const char *want)
{
    if (!want[0] || !strcmp(want, "-"))
        return 1;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", want);
    for (char *p = buf, *tok; (tok = strsep(&p, ";"));) {
        if (!tok[0])
            continue;
        const char *h = strstr(have, tok);
        size_t l = strlen(tok);
        if (!h || (h != have && h[-1] != ';') || (h[l] && h[l] != ';'))
            return 0;
    }
    return 1;
}

int lat_perf_write(const char *run_dir, const char *grid, const char *baselines_path)
{
    char path[4200];
    lat_table bt, rt;
    snprintf(path, sizeof path, "%s/bench.csv", run_dir);
    if (lat_table_load(path, &bt) != 0) {
        fprintf(stderr, "%s: perf: %s: no bench.csv (run latbench perf %s first)\n", lat_prog, run_dir, run_dir);
        return 2;
    }
    snprintf(path, sizeof path, "%s/roofline.csv", run_dir);
    if (lat_table_load(path, &rt) != 0 || rt.nrow == 0) {
        fprintf(stderr, "%s: perf: %s: no roofline.csv: the fractions of peak need the same run's ceilings\n",
                lat_prog, run_dir);
        lat_table_free(&bt);
        return 2;
    }
    double fma[257], sgemm[257];
    for (int i = 0; i < 257; i++)
        fma[i] = sgemm[i] = NAN;
    for (int r = 0; r < rt.nrow; r++) {
        int th = (int)lat_table_num(&rt, r, "threads");
        if (th >= 1 && th <= 256) {
            fma[th] = lat_table_num(&rt, r, "fma_peak_gflops");
            sgemm[th] = lat_table_num(&rt, r, "sgemm_gflops");
        }
    }
    baseline base[64];
    int nbase = load_baselines(baselines_path, base, 64);
    int maxth = 1;
    for (int r = 0; r < bt.nrow; r++)
        if (in_grid(&bt, r, grid) && (int)lat_table_num(&bt, r, "threads") > maxth)
            maxth = (int)lat_table_num(&bt, r, "threads");

    char tmp[4200];
    snprintf(path, sizeof path, "%s/perf.csv", run_dir);
    snprintf(tmp, sizeof tmp, "%s/perf.csv.tmp", run_dir);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "%s: perf: cannot write %s: %s\n", lat_prog, tmp, strerror(errno));
        lat_table_free(&bt);
        lat_table_free(&rt);
        return 2;
    }
    fputs(perf_header, f);
    int rows = 0;
    for (int r = 0; r < bt.nrow; r++) {
        if (!in_grid(&bt, r, grid))
            continue;
        const char *mname = lat_table_get(&bt, r, "method"), *form = lat_table_get(&bt, r, "form");
        const lat_method *m = lat_find_method(mname);
        int th = (int)lat_table_num(&bt, r, "threads");
        int ok = usable(&bt, r);
        double tps = lat_table_num(&bt, r, "tokens_per_s"), gf = lat_table_num(&bt, r, "gflops");
        double t = lat_table_num(&bt, r, "t_med_ns");
        const char *plain = m ? plainest(m) : "";
        double sp = NAN, sc = NAN;
        int best = ok;
        for (int q = 0; q < bt.nrow; q++) {
            if (q == r || !in_grid(&bt, q, grid) || !usable(&bt, q) ||
                !same_shape(&bt, r, q))
                continue;
            int thq = (int)lat_table_num(&bt, q, "threads");
            double tq = lat_table_num(&bt, q, "t_med_ns");
            const char *fq = lat_table_get(&bt, q, "form");
            if (thq == th && !strcmp(fq, plain) && ok)
                sp = tq / t;
            if (thq == 1 && th == maxth && maxth > 1 && !strcmp(fq, form) && same_knobs(&bt, r, q) && ok)
                sc = tq / t;
            if (thq == th && strcmp(fq, form) && tq < t)
                best = 0;
        }
        if (ok && !strcmp(form, plain))
            sp = 1.0;
        /* the first two rows of the baselines file that match this cell (e.g.
         * the figure and the same library measured beside us) */
        const baseline *bl = NULL, *bl2 = NULL;
        for (int i = 0; i < nbase && ok && !bl2; i++)
            if (!strcmp(base[i].method, mname) && base[i].B == (int)lat_table_num(&bt, r, "B") &&
                base[i].T == (int)lat_table_num(&bt, r, "T") && base[i].H == (int)lat_table_num(&bt, r, "H") &&
                (!base[i].K || base[i].K == (int)lat_table_num(&bt, r, "K")) &&
                (!base[i].V || base[i].V == (int)lat_table_num(&bt, r, "V")) &&
                base[i].threads == th && knobs_match(lat_table_get(&bt, r, "knobs"), base[i].knobs)) {
                if (bl)
                    bl2 = &base[i];
                else
                    bl = &base[i];
            }
        double pk = th >= 1 && th <= 256 ? fma[th] : NAN, sg = th >= 1 && th <= 256 ? sgemm[th] : NAN;
        fprintf(f, "%s,%s,%s,%s,%s,%s,%s,%s,%d,%s,%.6g,%.6g,%.4f,%.4f,%s,%.4g,%.4g,%d,%s,%.6g,%.4g,%s,%.6g,%.4g\n",
                mname, form,
                lat_table_get(&bt, r, "B"), lat_table_get(&bt, r, "T"), lat_table_get(&bt, r, "H"),
                lat_table_get(&bt, r, "K"), lat_table_get(&bt, r, "V"), lat_table_get(&bt, r, "knobs"), th,
                lat_table_get(&bt, r, "status"), ok ? tps : NAN, ok ? gf : NAN, ok ? gf / pk : NAN,
                ok ? gf / sg : NAN, plain, sp, sc, best, bl ? bl->source : "", bl ? bl->tokens_per_s : NAN,
                bl ? tps / bl->tokens_per_s : NAN, bl2 ? bl2->source : "", bl2 ? bl2->tokens_per_s : NAN,
                bl2 ? tps / bl2->tokens_per_s : NAN);
        rows++;
    }
    int bad = fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "%s: perf: cannot write %s: %s\n", lat_prog, path, strerror(errno));
        lat_table_free(&bt);
        lat_table_free(&rt);
        return 2;
    }
    printf("wrote %s (%d rows)\n", path, rows);
    lat_table_free(&bt);
    lat_table_free(&rt);
    return rows ? 0 : 1;
}

/* runs `latbench <args>` (this very binary) and returns its exit status */
static int self_run(char *const args[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* libgomp bound this process's initial thread to the first OpenMP
         * place (OMP_PROC_BIND); a re-executed latbench would inherit that
         * one-core mask and see one processor: give it every CPU back */
        cpu_set_t all;
        CPU_ZERO(&all);
        long ncpu = sysconf(_SC_NPROCESSORS_CONF);
        for (long c = 0; c < ncpu && c < CPU_SETSIZE; c++)
            CPU_SET((int)c, &all);
        sched_setaffinity(0, sizeof all, &all);
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int lat_cmd_perf(int argc, char **argv)
{
    const char *run = NULL, *suite = "perf", *baselines = "data/perf_baselines.tsv";
    int table_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: latbench perf [RUN] [--suite NAME] [--baselines FILE] [--table-only]\n"
                   "  The performance benchmark (issue 6): this machine's FMA peak and sgemm, then every\n"
                   "  method and form of the suite (default suites/perf.suite), resumable, into RUN\n"
                   "  (default results/<new run>); writes RUN/perf.csv with each cell's fraction of the\n"
                   "  same-run peak, speed-up over the plainest form, 1 → all-threads scaling and the\n"
                   "  ratio to data/perf_baselines.tsv. --table-only recomputes perf.csv from RUN.\n");
            return 0;
        } else if (!strcmp(a, "--suite") && i + 1 < argc)
            suite = argv[++i];
        else if (!strcmp(a, "--baselines") && i + 1 < argc)
            baselines = argv[++i];
        else if (!strcmp(a, "--table-only"))
            table_only = 1;
        else if (a[0] != '-' && !run)
            run = a;
        else
            lat_die(2, "perf: bad argument '%s' (latbench perf --help)", a);
    }
    char dir[4096];
    if (!run) {
        if (table_only)
            lat_die(2, "perf: --table-only needs the run folder");
        char id[200];
        lat_run_id(id, sizeof id);
        snprintf(dir, sizeof dir, "results/%s", id);
        run = dir;
    }
    if (!table_only) {
        if (lat_mkdir_p(run) != 0)
            lat_die(2, "perf: cannot create the folder %s: %s", run, strerror(errno));
        char path[4200];
        snprintf(path, sizeof path, "%s/roofline.csv", run);
        struct stat sb;
        if (stat(path, &sb) != 0 || sb.st_size == 0) {
            char *args[] = {"latbench", "roofline", "--out", (char *)run, NULL};
            if (self_run(args) != 0)
                lat_die(2, "perf: the roofline measurement failed");
        }
        lat_sweep_opts o = {.suite = suite, .out_dir = run, .resume = 1};
        int rc = lat_sweep(&o);
        if (rc != 0)
            return rc;
    }
    char grid[64];
    snprintf(grid, sizeof grid, "%s", "perf");
    int rc = lat_perf_write(run, grid, baselines);
    if (rc == 0)
        lat_report_perf(run); /* tables/perf.md, perf.tex */
    return rc;
}
