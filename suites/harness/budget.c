/* budget.c — `latbench budget`: memory-budgeted generation throughput
 * (spec/claims.md A.3), the CPU test of the mechanism behind the Mamba (MB2),
 * RetNet (RN2b) and Based (BL1c) throughput claims: without a KV cache a
 * fixed memory budget holds many more sequences at once.
 *
 * Model (A.3): d_model = H·D (default 8·64 = 512), `layers` layers (8), a
 * memory budget M (1 GiB). Per method and (prompt P, generated G):
 *   bytes/seq  = layers · state_bytes(method, context P + G)   (the method's
 *                analytic decode state: the KV cache for softmax, the ring
 *                buffer for sliding windows, the recurrent state otherwise)
 *                + 16·d_model·4 activation bytes per sequence
 *   weights    = layers · 12·d_model²·4 (attention/mixer projections 4d², MLP 8d²)
 *   batch      = min(cap, floor((M − weights) / bytes/seq))
 *   throughput = batch·G / (layers · (batch·t_prefill(1, P) + G·t_step(batch, P + G/2)))
 * Both times are mixer-only, measured here in child processes like every
 * other cell: t_prefill is the fastest of the method's forms whose analytic
 * FLOPs are within 4× of its cheapest form (so a linear-time method is not
 * timed on its quadratic check form), at batch 1 and scaled by the batch
 * (prefill cost is linear in the batch on a CPU: no idle matrix units to
 * fill); t_step is the decode form measured at the full batch with the
 * context at the mid-point of generation. Projections and MLPs cost the same
 * for every method and are left out: the ratio isolates the mixer.
 *
 * Output: RUN/budget.csv, one row per (method, P, G), appended and fsync'd
 * as it finishes; --resume skips rows already there. */
#include "budget.h"
#include "cli.h"
#include "harness.h"
#include "sweep.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_POINTS 16
#define MAX_DONE 4096

static volatile sig_atomic_t budget_stop;
static void on_stop(int sig)
{
    (void)sig;
    budget_stop = 1;
}

static const char *budget_header =
    "run_id,method,decode_form,prefill_form,P,G,budget_bytes,layers,d_model,H,head_K,head_V,threads,bytes_per_seq,"
    "weights_bytes,batch,prefill_s,step_s,tokens_per_s,status,reason,cell_key\n";

static void help(void)
{
    printf("usage: latbench budget [--out DIR] [--methods a,b] [--points P:G,...] [--budget-gib x]\n"
           "                       [--layers n] [--H n] [--D n] [--cap n] [--threads n] [--reps n] [--resume]\n"
           "  Memory-budgeted generation throughput (spec/claims.md A.3): how many sequences fit\n"
           "  in the budget with each method's decode state, and the tokens/s generated at that\n"
           "  batch. Writes DIR/budget.csv. Defaults: every method with a decode form, points\n"
           "  2048:128,2048:1024,8192:128, 1 GiB, 8 layers, H 8, D 64, cap 256, all threads.\n");
}

typedef struct {
    char **keys;
    int n;
} keyset;
static void add_key(const char *k, void *arg)
{
    keyset *s = arg;
    if (s->n < MAX_DONE)
        s->keys[s->n++] = strdup(k);
}
static int has_key(const keyset *s, const char *k)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i], k))
            return 1;
    return 0;
}

/* Times one cell; returns the median in seconds, or a negative number with
 * the reason in why. */
static double time_cell(lat_cell *c, char *why, size_t why_len)
{
    lat_result *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    double t = -1;
    if (lat_cell_run(c, r) != 0)
        snprintf(why, why_len, "could not start the cell process: %s", strerror(errno));
    else if (strcmp(r->state, "ok") && strcmp(r->state, "noisy")) {
        snprintf(why, why_len, "%s.%s B=%d T=%d: %s: %s", c->m->name, c->f->name, c->s.B, c->s.T, r->state,
                 r->reason);
        if (!strcmp(r->state, "unsupported"))
            t = -2;
    }
    else
        t = r->t.median * 1e-9;
    free(r);
    return t;
}

static void base_cell(lat_cell *c, const lat_method *m, int H, int D, int threads, int reps)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    lat_shape_defaults(m, &c->s);
    c->s.B = 1;
    c->s.H = H;
    c->s.K = c->s.V = D;
    if (m->map_dim)
        m->map_dim(&c->s, D);
    /* generation is autoregressive: methods whose default is the paper's
     * non-causal function (the vision family, linrec) run their causal variant */
    for (int k = 0; k < m->n_knobs; k++)
        if (!strcmp(m->knobs[k].name, "causal"))
            c->s.causal = 1;
    c->threads = threads;
    c->seed = 42;
    c->min_reps = reps;
    c->min_time_s = 0.05;
    c->warmup_s = 0.02;
    c->grid = "budget";
    c->mode = LAT_MODE_BENCH;
}

/* Fastest prefill form at batch 1 and length P (forms within 4× of the
 * cheapest analytic FLOPs). */
static double prefill_time(const lat_method *m, int P, int H, int D, int threads, int reps, const char **form,
                           char *why, size_t why_len)
{
    lat_cell c;
    base_cell(&c, m, H, D, threads, reps);
    c.s.T = P;
    double fmin = INFINITY;
    for (int i = 0; i < m->n_forms; i++)
        if (m->forms[i].flops) {
            double f = m->forms[i].flops(&c.s);
            if (f > 0 && f < fmin)
                fmin = f;
        }
    double best = -1;
    *form = "";
    for (int i = 0; i < m->n_forms && !budget_stop; i++) {
        const lat_form *f = &m->forms[i];
        if (f->flops && isfinite(fmin) && f->flops(&c.s) > 4 * fmin)
            continue;
        c.f = f;
        char w[512];
        if (lat_shape_check(m, &c.s, w, sizeof w) != LAT_OK)
            continue;
        double t = time_cell(&c, w, sizeof w);
        if (t < 0) {
            snprintf(why, why_len, "%s", w);
            continue;
        }
        if (best < 0 || t < best) {
            best = t;
            *form = f->name;
        }
    }
    return best;
}

int lat_cmd_budget(int argc, char **argv)
{
    const char *out = NULL, *methods_csv = NULL, *points_csv = "2048:128,2048:1024,8192:128";
    double gib = 1.0;
    int layers = 8, H = 8, D = 64, cap = 256, threads = lat_max_threads(), reps = 3, resume = 0;
    for (int i = 1; i < argc; i++) { /* argv[0] is "budget" */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--resume")) {
            resume = 1;
            continue;
        }
        if (!v)
            lat_die(2, "budget: %s needs a value (latbench budget --help)", a);
        i++;
        if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--methods"))
            methods_csv = v;
        else if (!strcmp(a, "--points"))
            points_csv = v;
        else if (!strcmp(a, "--budget-gib")) {
            if (lat_parse_double(v, &gib) || !(gib > 0 && gib <= 1024))
                lat_die(2, "budget: --budget-gib must be a number in (0, 1024], not '%s'", v);
        } else {
            int *dst = !strcmp(a, "--layers") ? &layers : !strcmp(a, "--H") ? &H : !strcmp(a, "--D") ? &D
                       : !strcmp(a, "--cap") ? &cap : !strcmp(a, "--threads") ? &threads
                       : !strcmp(a, "--reps") ? &reps : NULL;
            if (!dst)
                lat_die(2, "budget: unknown option '%s' (latbench budget --help)", a);
            if (lat_parse_int(v, &n) || n < 1 || n > 1 << 20)
                lat_die(2, "budget: %s must be a positive integer, not '%s'", a, v);
            *dst = (int)n;
        }
    }
    if (threads > lat_max_threads())
        lat_die(2, "budget: --threads %d exceeds the %d cores of this machine", threads, lat_max_threads());
    int P[MAX_POINTS], G[MAX_POINTS], npts = 0;
    for (const char *s = points_csv; *s;) {
        int p, g, used = 0;
        if (npts == MAX_POINTS || sscanf(s, "%d:%d%n", &p, &g, &used) != 2 || p < 1 || g < 1 || p > 1 << 20 ||
            g > 1 << 20)
            lat_die(2, "budget: --points must be a comma-separated list of PROMPT:GENERATED pairs (at most %d), "
                       "e.g. 2048:128,8192:128; got '%s'",
                    MAX_POINTS, points_csv);
        P[npts] = p;
        G[npts++] = g;
        s += used;
        if (*s == ',')
            s++;
        else if (*s)
            lat_die(2, "budget: --points: unexpected '%s' (use PROMPT:GENERATED,...)", s);
    }
    const lat_method *ms[256];
    int nm = lat_cli_method_list(methods_csv, ms, 256);
    if (nm < 0)
        return 2;
    char dir[4096], id[4096], path[8192];
    if (out)
        snprintf(dir, sizeof dir, "%s", out);
    else {
        lat_run_id(id, sizeof id);
        snprintf(dir, sizeof dir, "results/%.200s", id);
    }
    if (lat_cli_prepare_dir(dir, "--out") != 0 || lat_cli_lock_dir(dir, "--out") != 0)
        return 2;
    const char *slash = strrchr(dir, '/');
    snprintf(id, sizeof id, "%s", slash ? slash + 1 : dir);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    struct stat sb;
    if (stat(path, &sb) != 0 && lat_write_meta(dir, id, NULL, "budget") != 0)
        lat_die(2, "budget: cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/budget.csv", dir);
    keyset done = {calloc(MAX_DONE, sizeof(char *)), 0};
    if (!done.keys)
        lat_die(2, "budget: out of memory");
    if (resume)
        lat_csv_column_each(path, "cell_key", add_key, &done);
    else if (stat(path, &sb) == 0 && sb.st_size > 0)
        lat_die(2, "budget: %s already has rows; use --resume to complete it or another --out", path);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const double budget = gib * 1073741824.0;
    const double d_model = (double)H * D;
    const double weights = layers * 12.0 * d_model * d_model * 4.0;
    int status = 0, rows = 0;
    for (int mi = 0; mi < nm && !budget_stop; mi++) {
        const lat_method *m = ms[mi];
        if (!m->decode_form || !m->state_bytes)
            continue; /* non-causal methods do not generate */
        const lat_form *df = lat_find_form(m, m->decode_form);
        double cached_t1[MAX_POINTS];
        const char *cached_form[MAX_POINTS];
        for (int pi = 0; pi < npts && !budget_stop; pi++) {
            char key[256], why[512] = "", line[8192];
            snprintf(key, sizeof key, "%s|%d|%d|%.0f|%d|%d|%d|%d|%d", m->name, P[pi], G[pi], budget, layers, H, D,
                     cap, threads);
            if (has_key(&done, key))
                continue;
            lat_cell c;
            base_cell(&c, m, H, D, threads, reps);
            c.s.T = 1;
            c.s.pos = P[pi] + G[pi] - 1;
            c.s.ctx = P[pi] + G[pi];
            double bps = layers * m->state_bytes(&c.s) + 16.0 * d_model * 4.0;
            double fit = floor((budget - weights) / bps);
            int batch = fit > cap ? cap : (int)fit;
            double t1 = -1, ts = -1, tps = 0;
            const char *pform = "";
            const char *state = "ok";
            if (batch < 1) {
                state = "refused";
                snprintf(why, sizeof why, "one sequence needs %.3g bytes; the budget leaves %.3g after weights", bps,
                         budget - weights);
            } else {
                /* prefill at batch 1, shared between points with the same P */
                for (int q = 0; q < pi; q++)
                    if (P[q] == P[pi] && cached_t1[q] > 0) {
                        t1 = cached_t1[q];
                        pform = cached_form[q];
                    }
                if (t1 < 0)
                    t1 = prefill_time(m, P[pi], H, D, threads, reps, &pform, why, sizeof why);
                /* one decode step at the full batch, mid-generation context */
                c.f = df;
                c.mode = LAT_MODE_DECODE;
                c.s.B = batch;
                c.s.pos = P[pi] + G[pi] / 2;
                c.s.ctx = c.s.pos + 1;
                if (t1 > 0 && !budget_stop)
                    ts = time_cell(&c, why, sizeof why);
                if (t1 > 0 && ts > 0)
                    tps = batch * (double)G[pi] / (layers * (batch * t1 + G[pi] * ts));
                else
                    state = (t1 == -2 || ts == -2) ? "unsupported" : "failed";
            }
            cached_t1[pi] = t1;
            cached_form[pi] = pform;
            if (budget_stop)
                break;
            for (char *p = why; *p; p++)
                if (*p == ',' || *p == '\n' || *p == '"')
                    *p = ';';
            snprintf(line, sizeof line, "%s,%s,%s,%s,%d,%d,%.0f,%d,%.0f,%d,%d,%d,%d,%.0f,%.0f,%d,%.6g,%.6g,%.6g,%s,%s,%s\n",
                     id, m->name, m->decode_form, pform, P[pi], G[pi], budget, layers, d_model, H, c.s.K, c.s.V,
                     threads, bps, weights, batch < 0 ? 0 : batch, t1 > 0 ? t1 * batch : 0, ts > 0 ? ts : 0, tps,
                     state, why, key);
            if (lat_csv_append_line(path, budget_header, line) != 0) {
                fprintf(stderr, "%s: budget: cannot append to %s: %s — stopping; finished rows are intact\n",
                        lat_prog, path, strerror(errno));
                status = 2;
                budget_stop = 1;
                break;
            }
            rows++;
            fprintf(stderr, "[budget] %s P=%d G=%d: batch %d, %.4g tokens/s%s%s\n", m->name, P[pi], G[pi],
                    batch < 0 ? 0 : batch, tps, why[0] ? " — " : "", why);
            if (!strcmp(state, "failed"))
                status = status ? status : 1; /* "refused" (does not fit) is a finding, not an error */
        }
    }
    for (int i = 0; i < done.n; i++)
        free(done.keys[i]);
    free(done.keys);
    if (budget_stop && status != 2) {
        fprintf(stderr, "%s: budget interrupted; %d rows saved in %s — rerun with --resume --out %s\n", lat_prog,
                rows, path, dir);
        return 130;
    }
    printf("wrote %s (%d rows)\n", path, rows);
    return status;
}
