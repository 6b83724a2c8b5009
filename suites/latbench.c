/* latbench — benchmark and check the attention mechanisms of the
 * linear-attention literature behind one C interface (impls/common/lat.h).
 *
 *   latbench list                      methods, forms, knobs and defaults
 *   latbench run --method M --form F … one cell: time, memory, accuracy
 *   latbench check [--methods a,b]     every form vs its fp64 reference
 *
 * Every subcommand takes --help. Errors are one line on stderr, exit 2. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "harness/budget.h"
#include "harness/perf.h"
#include "harness/maps.h"
#include "harness/cell.h"
#include "harness/check.h"
#include "harness/claims.h"
#include "harness/cli.h"
#include "harness/harness.h"
#include "harness/report.h"
#include "harness/sweep.h"
#include "tasks/mqar.h"

/* ---- environment: pinning and single-threaded BLAS ------------------------ */
/* libgomp and OpenBLAS read their variables when the program loads, so set the
 * defaults and re-execute once if the caller did not choose them. */
static void ensure_env(char **argv)
{
    if (getenv("LATBENCH_ENV_SET"))
        return;
    setenv("LATBENCH_ENV_SET", "1", 1);
    if (!getenv("OMP_PLACES"))
        setenv("OMP_PLACES", "cores", 1);
    if (!getenv("OMP_PROC_BIND"))
        setenv("OMP_PROC_BIND", "close", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: go on with what we have (recorded in meta.json) */
}

/* ---- list ------------------------------------------------------------------ */
static int cmd_list(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: latbench list [--names]\n  Lists every registered method with its forms, knobs and "
               "defaults.\n  --names  one method name per line\n");
        return 0;
    }
    int names = argc > 1 && strcmp(argv[1], "--names") == 0;
    if (argc > 1 && !names)
        lat_die(2, "list: unknown option '%s' (allowed: --names, --help)", argv[1]);
    for (int i = 0; i < lat_method_count(); i++) {
        const lat_method *m = lat_method_at(i);
        if (names) {
            printf("%s\n", m->name);
            continue;
        }
        printf("%-14s %-13s forms:", m->name, m->family);
        for (int f = 0; f < m->n_forms; f++)
            printf(" %s", m->forms[f].name);
        printf("%s%s\n", m->decode_form ? "  decode:" : "", m->decode_form ? m->decode_form : "");
        printf("    %s\n    paper: %s\n    head dim D: %s\n", m->summary, m->paper,
               m->dim_map ? m->dim_map : "K = V = D");
        printf("    inputs:");
        for (int k = 0; k < m->n_inputs; k++)
            printf(" %s", m->inputs[k].name);
        printf("\n    knobs:");
        if (!m->n_knobs)
            printf(" (none)");
        for (int k = 0; k < m->n_knobs; k++)
            printf(" %s=%d [%d..%d]", m->knobs[k].name, m->knobs[k].def, m->knobs[k].min, m->knobs[k].max);
        printf("\n    tolerance: rel_rmse %.0e (state %.0e)%s%s\n", m->tol_out, m->tol_state,
               m->tol_note ? " — " : "", m->tol_note ? m->tol_note : "");
    }
    return 0;
}

/* ---- run ------------------------------------------------------------------- */
static void run_help(void)
{
    printf("usage: latbench run --method M --form F --B n --T n --H n --D n [options]\n"
           "  Runs one cell in a fresh process: warm-up, repetitions until --reps and\n"
           "  --min-time are both reached, median with spread, memory, accuracy.\n"
           "  --K n --V n        head dims (override D; some methods map D themselves)\n"
           "  --threads n        OpenMP threads (default: all cores)\n"
           "  --seed n           input seed (default 42)\n"
           "  --reps n           minimum repetitions (default 5)\n"
           "  --min-time s       minimum timed seconds (default 0.3)\n"
           "  --accuracy on|off  compare with the fp64 reference (default on)\n"
           "  --harsh            harsh input distributions (extreme gates)\n"
           "  --dump DIR         write inputs, output and reference output as .npy into DIR\n"
           "  --out DIR          run folder (default results/<UTC time>_<commit>)\n"
           "  --<knob> n         any knob the method lists (latbench list), e.g. --chunk 32\n");
}

static int cmd_run(int argc, char **argv)
{
    lat_cli_cell cc;
    if (lat_cli_parse_cell(argc, argv, &cc, run_help) != 0)
        return 2;
    lat_cell *c = &cc.cell;
    char run_dir[4096];
    if (cc.out_dir)
        snprintf(run_dir, sizeof run_dir, "%s", cc.out_dir);
    else {
        char id[128];
        lat_run_id(id, sizeof id);
        snprintf(run_dir, sizeof run_dir, "results/%s", id);
    }
    /* refuse before anything is written: too much memory, unwritable output */
    double est = lat_problem_estimate(c->m, &c->s, c->f, c->threads, c->accuracy || c->dump_dir);
    double avail = (double)lat_mem_available();
    if (est > 0.9 * avail)
        lat_die(2, "run: %s.%s at B=%d T=%d H=%d K=%d V=%d needs about %.2f GiB; %.2f GiB is available "
                   "(use a smaller T, B or H, or --accuracy off)",
                c->m->name, c->f->name, c->s.B, c->s.T, c->s.H, c->s.K, c->s.V, est / 1073741824.0,
                avail / 1073741824.0);
    if (lat_cli_prepare_dir(run_dir, "--out") != 0)
        return 2;
    if (c->dump_dir && lat_cli_prepare_dir(c->dump_dir, "--dump") != 0)
        return 2;
    lat_result r;
    if (lat_cell_run(c, &r) != 0)
        lat_die(1, "run: could not start the cell process: %s", strerror(errno));
    if (strcmp(r.state, "unsupported") == 0 || strcmp(r.state, "refused") == 0) {
        fprintf(stderr, "%s: run: %s.%s: %s: %s\n", lat_prog, c->m->name, c->f->name, r.state, r.reason);
        return 2;
    }
    lat_print_result(stdout, c, &r);
    char id[4096], path[4200];
    const char *slash = strrchr(run_dir, '/');
    snprintf(id, sizeof id, "%s", slash ? slash + 1 : run_dir);
    snprintf(path, sizeof path, "%s/meta.json", run_dir);
    struct stat sb;
    if (stat(path, &sb) != 0 && lat_write_meta(run_dir, id, NULL, "run") != 0)
        lat_die(2, "run: cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/bench.csv", run_dir);
    if (lat_bench_append(path, id, c, &r) != 0)
        lat_die(2, "run: cannot append to %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/samples.jsonl", run_dir);
    lat_samples_append(path, id, c, &r);
    printf("wrote %s/bench.csv\n", run_dir);
    return (strcmp(r.state, "ok") == 0 || strcmp(r.state, "noisy") == 0) ? 0 : 1;
}

/* ---- check ----------------------------------------------------------------- */
static void check_help(void)
{
    printf("usage: latbench check [--methods a,b] [--threads n] [--seed n] [--quiet] [--long T] [--out DIR]\n"
           "  Every form of every (or the named) method against its fp64 reference and its\n"
           "  other forms on awkward shapes, at 1 and at all threads; decode = prefill.\n"
           "  Exit status 1 if any case fails.\n"
           "  --long T   also run the long-sequence robustness case at this T (e.g. 65536)\n"
           "  --quiet    print only failures and the summary\n"
           "  --out DIR  also write every case as a row of DIR/check.csv\n");
}

static int cmd_check(int argc, char **argv)
{
    lat_check_opts o = {lat_max_threads(), 42, 0, 0.0, NULL, 0.0};
    const char *methods = NULL, *out = NULL;
    long long_T = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        double d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            check_help();
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--methods") && v) {
            methods = v;
            i++;
        } else if (!strcmp(a, "--out") && v) {
            out = v;
            i++;
        } else if (!strcmp(a, "--threads") && v && !lat_parse_int(v, &n) && n >= 1 && n <= 1024) {
            o.max_threads = (int)n;
            i++;
        } else if (!strcmp(a, "--seed") && v && !lat_parse_int(v, &n) && n >= 0) {
            o.seed = (uint64_t)n;
            i++;
        } else if (!strcmp(a, "--long") && v && !lat_parse_int(v, &n) && n >= 1 && n <= (1 << 24)) {
            long_T = n;
            i++;
        } else if (!strcmp(a, "--perturb") && v && !lat_parse_double(v, &d)) {
            o.perturb = d; /* test hook: proves the checker fails a wrong output */
            i++;
        } else {
            lat_die(2, "check: bad option '%s'%s (allowed: --methods a,b --threads n --seed n --long T --quiet --out DIR)", a,
                    v ? "" : " or missing value");
        }
    }
    const lat_method *todo[256];
    int nt = lat_cli_method_list(methods, todo, 256);
    if (nt < 0)
        return 2;
    if (out) {
        if (lat_cli_prepare_dir(out, "--out") != 0)
            return 2;
        char path[4200];
        snprintf(path, sizeof path, "%s/check.csv", out);
        o.csv = fopen(path, "w");
        if (!o.csv || fputs(LAT_CHECK_HEADER, o.csv) < 0)
            lat_die(2, "check: cannot write %s: %s", path, strerror(errno));
    }
    int fails = 0, passes = 0;
    for (int i = 0; i < nt; i++) {
        lat_check_method(todo[i], &o, &fails, &passes);
        if (long_T && !todo[i]->quadratic)
            lat_check_long(todo[i], &o, (int)long_T, &fails, &passes);
    }
    if (o.csv && fclose(o.csv) != 0)
        lat_die(2, "check: cannot finish check.csv in %s", out);
    printf("%d passed, %d failed\n", passes, fails);
    return fails ? 1 : 0;
}

/* ---- sweep / merge ---------------------------------------------------------- */
static void sweep_help(void)
{
    printf("usage: latbench sweep SUITE [--out DIR] [--resume] [--shard i/N] [--dry-run]\n"
           "  Runs every cell of suites/SUITE.suite (or a path), appending each row to\n"
           "  DIR/bench.csv, decode.csv or accuracy.csv as soon as its cell finishes.\n"
           "  --out DIR    run folder (default results/<UTC time>_<commit>)\n"
           "  --resume     skip cells already in DIR (after an interruption)\n"
           "  --shard i/N  only cells i, i+N, … (1-based); join shards with latbench merge\n"
           "  --dry-run    list the cells and their memory estimates\n");
}

static int cmd_sweep(int argc, char **argv)
{
    lat_sweep_opts o;
    memset(&o, 0, sizeof o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            sweep_help();
            return 0;
        } else if (!strcmp(a, "--resume")) {
            o.resume = 1;
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = 1;
        } else if (!strcmp(a, "--out") && v) {
            o.out_dir = v;
            i++;
        } else if (!strcmp(a, "--shard") && v) {
            if (sscanf(v, "%d/%d", &o.shard_i, &o.shard_n) != 2 || o.shard_n < 1 || o.shard_i < 1 ||
                o.shard_i > o.shard_n || o.shard_n > 100000)
                lat_die(2, "sweep: --shard takes i/N with 1 <= i <= N (got '%s')", v);
            i++;
        } else if (a[0] != '-' && !o.suite) {
            o.suite = a;
        } else {
            lat_die(2, "sweep: bad argument '%s'%s (see latbench sweep --help)", a,
                    (a[0] == '-' && !v) ? " or missing value" : "");
        }
    }
    if (!o.suite)
        lat_die(2, "sweep: which suite? (e.g. latbench sweep quick; files in suites/*.suite)");
    char dir[4096];
    if (!o.out_dir) {
        char id[128];
        lat_run_id(id, sizeof id);
        snprintf(dir, sizeof dir, "results/%s", id);
        o.out_dir = dir;
    }
    return lat_sweep(&o);
}

static int cmd_merge(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: latbench merge OUT_DIR RUN_DIR [RUN_DIR …]\n"
               "  Joins the rows of sharded runs (latbench sweep --shard) into one run folder,\n"
               "  dropping duplicate cells; meta.json of each shard is kept as meta_shardN.json.\n");
        return 0;
    }
    if (argc < 3)
        lat_die(2, "merge: give the output folder and at least one run folder (see --help)");
    return lat_merge(argv[1], argv + 2, argc - 2);
}

/* ---- roofline ----------------------------------------------------------------- */
typedef struct {
    const char *csv_path;
    long triad_elems;
} roof_job;

/* In a child process (OpenMP must not start in the parent, see lat_in_child). */
static void roof_measure(void *arg, void *out)
{
    roof_job *j = arg;
    FILE *csv = fopen(j->csv_path, "w");
    if (!csv)
        _exit(2);
    lat_roofline((lat_roof *)out, lat_max_threads(), j->triad_elems, csv);
    if (fclose(csv) != 0)
        _exit(2);
}

static int cmd_roofline(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: latbench roofline [--out DIR]\n"
                   "  Measures this machine's ceilings at 1..all threads (FMA peak, OpenBLAS sgemm on\n"
                   "  1024² and 64³ tiles, STREAM triad) into DIR/roofline.csv and DIR/meta.json.\n");
            return 0;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else {
            lat_die(2, "roofline: bad argument '%s' (allowed: --out DIR)", argv[i]);
        }
    }
    char dir[4096];
    if (!out) {
        char id[128];
        lat_run_id(id, sizeof id);
        snprintf(dir, sizeof dir, "results/%s", id);
        out = dir;
    }
    if (lat_cli_prepare_dir(out, "--out") != 0)
        return 2;
    char path[4200];
    snprintf(path, sizeof path, "%s/roofline.csv", out);
    FILE *csv = fopen(path, "w");
    if (!csv)
        lat_die(2, "roofline: cannot write %s: %s", path, strerror(errno));
    fclose(csv);
    lat_roof roof;
    roof_job job = {path, (long)(4 * lat_llc_bytes() / sizeof(float))};
    if (lat_in_child(roof_measure, &job, &roof, sizeof roof) != 0)
        lat_die(2, "roofline: the measurement failed (could not write %s?)", path);
    const char *slash = strrchr(out, '/');
    if (lat_write_meta(out, slash ? slash + 1 : out, &roof, "roofline") != 0)
        lat_die(2, "roofline: cannot write %s/meta.json", out);
    printf("wrote %s and %s/meta.json\n", path, out);
    return 0;
}

/* ---- claims ------------------------------------------------------------------- */
static void claims_help(void)
{
    printf("usage: latbench claims RUN [--tsv FILE] [--quiet]\n"
           "       latbench claims --check [--tsv FILE]\n"
           "  Evaluates every claim of FILE (default data/claims.tsv) against the run\n"
           "  folder's own CSVs and writes RUN/claims.md and RUN/claims.csv: the claim, what\n"
           "  the paper reported, the predicate, what this run measured and the verdict\n"
           "  (holds, does not hold, not measurable here, method not yet implemented).\n"
           "  The predicate language is described in suites/harness/claims.h.\n"
           "  --tsv FILE  the claims table\n"
           "  --check     only parse FILE: errors as file:line: reason, exit 2\n"
           "  --quiet     no line per claim on stdout\n");
}

static int cmd_claims(int argc, char **argv)
{
    const char *run = NULL, *tsv = "data/claims.tsv";
    int check_only = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            claims_help();
            return 0;
        } else if (!strcmp(a, "--tsv") && i + 1 < argc) {
            tsv = argv[++i];
        } else if (!strcmp(a, "--check")) {
            check_only = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] != '-' && !run) {
            run = a;
        } else {
            lat_die(2, "claims: bad argument '%s' (see latbench claims --help)", a);
        }
    }
    struct stat sb;
    if (!check_only && !run)
        lat_die(2, "claims: which run folder? (e.g. latbench claims results/<run>)");
    if (run && (stat(run, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        lat_die(2, "claims: run folder '%s' does not exist", run);
    lat_claims *c;
    if (lat_claims_load(tsv, &c, stderr) != 0)
        return 2;
    if (check_only) {
        printf("%s: %d claims, no error\n", tsv, lat_claims_count(c));
        lat_claims_free(c);
        return 0;
    }
    int n[4];
    if (lat_claims_report(c, run, tsv, quiet ? NULL : stdout, n) != 0)
        lat_die(2, "claims: cannot write claims.md / claims.csv into %s: %s", run, strerror(errno));
    printf("%d claims: %d hold, %d do not hold, %d not measurable here, %d method not yet implemented\n"
           "wrote %s/claims.md and %s/claims.csv\n",
           lat_claims_count(c), n[0], n[1], n[2], n[3], run, run);
    lat_claims_free(c);
    return 0;
}

/* ---- report / plots -------------------------------------------------------- */
static int cmd_report(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: latbench report RUN\n"
               "  Tables from RUN's CSVs: RUN/tables/{throughput,memory,accuracy,decode,scaling}.md and .tex\n"
               "  (booktabs), RUN/tables/summary.md, and RUN/scaling.csv (fitted exponents of time vs T).\n");
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-')
        lat_die(2, "report: give one run folder (e.g. latbench report results/<run>)");
    return lat_report(argv[1]);
}

static int cmd_plots(int argc, char **argv)
{
    const char *run = NULL, *scripts = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: latbench plots RUN [--scripts DIR]\n"
                   "  Runs every scripts/NAME.gp (gnuplot) on RUN: RUN/plots/NAME.png and NAME.pdf.\n"
                   "  --scripts DIR  where the .gp files are (default ./scripts, then next to the binary)\n");
            return 0;
        } else if (!strcmp(argv[i], "--scripts") && i + 1 < argc) {
            scripts = argv[++i];
        } else if (argv[i][0] != '-' && !run) {
            run = argv[i];
        } else {
            lat_die(2, "plots: bad argument '%s' (see latbench plots --help)", argv[i]);
        }
    }
    if (!run)
        lat_die(2, "plots: which run folder? (e.g. latbench plots results/<run>)");
    return lat_plots(run, scripts);
}

/* ---- main ------------------------------------------------------------------ */
static void usage(FILE *f)
{
    fprintf(f, "usage: latbench <command> [options]   (latbench <command> --help for each)\n"
               "commands:\n"
               "  list      methods, forms, knobs and defaults\n"
               "  run       one cell: timing, memory, accuracy (row into results/<run>/bench.csv)\n"
               "  check     every form of every method against its fp64 reference\n"
               "  sweep     run a suite (suites/*.suite) into a run folder, resumable\n"
               "  merge     join sharded sweeps\n"
               "  roofline  this machine's FMA peak, sgemm and triad ceilings\n"
               "  claims    verdicts for data/claims.tsv from a run's own data\n"
               "  report    tables (markdown, LaTeX) and scaling.csv from a run folder\n"
               "  plots     figures (gnuplot: PNG, PDF) from a run folder\n"
               "  budget    memory-budgeted generation throughput (batch that fits, tokens/s)\n"
               "  perf      fraction of this machine's peak per method and form (perf.csv)\n"
               "  maps      attention-map diagnostics: ranks, entropies, limits (maps.csv)\n"
               "  mqar      train the task models on MQAR / selective copying (accuracy vs state size)\n");
}

int main(int argc, char **argv)
{
    ensure_env(argv);
    /* FTZ/DAZ before any OpenMP thread exists, so every worker inherits it:
     * fp32 paths run as benchmarked, and fp64 references never crawl
     * through subnormals under harsh gates (flushing < 1e-308 changes no
     * result at any tolerance we use). */
    lat_set_ftz();
    lat_blas_single_thread();
    /* a file size limit (ulimit -f) is a full disk: writes fail with EFBIG
     * and the sweep stops with its rows intact, instead of a kill */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "list"))
        return cmd_list(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep"))
        return cmd_sweep(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge"))
        return cmd_merge(argc - 1, argv + 1);
    if (!strcmp(cmd, "roofline"))
        return cmd_roofline(argc - 1, argv + 1);
    if (!strcmp(cmd, "claims"))
        return cmd_claims(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "plots"))
        return cmd_plots(argc - 1, argv + 1);
    if (!strcmp(cmd, "budget"))
        return lat_cmd_budget(argc - 1, argv + 1);
    if (!strcmp(cmd, "perf"))
        return lat_cmd_perf(argc - 1, argv + 1);
    if (!strcmp(cmd, "maps"))
        return lat_cmd_maps(argc - 1, argv + 1);
    if (!strcmp(cmd, "mqar"))
        return lat_cmd_mqar(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s' (allowed: list, run, check, sweep, merge, roofline, claims, report, plots, budget, perf, maps, mqar)\n", lat_prog, cmd);
    return 2;
}
