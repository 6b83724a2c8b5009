/* report.c — `latbench report RUN`: markdown and LaTeX (booktabs) tables from
 * the CSVs of a run folder, RUN/tables/summary.md, and RUN/scaling.csv (the
 * fitted scaling exponents, also used by the claims evaluator).
 *
 *   throughput  tokens/s median [p20–p80], GFLOP/s, % of the measured FMA peak
 *               and sgemm at that thread count, × the fastest softmax form
 *   memory      analytic bytes, workspace, state, allocator peak, peak RSS
 *   accuracy    rel_rmse vs fp64 by T and input set; by sharpness; vs softmax
 *   decode      per-token latency at each context; state vs KV-cache bytes
 *   scaling     slope of log t vs log T (with R²); 1 → all-thread speed-up
 *
 * Nothing here is measured: every number comes from a CSV of the run, and a
 * cell that is not in the run is printed as "–". Method names are never
 * special-cased except "softmax", the baseline of the "× softmax" column. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "report.h"

#define SCALING_T_LO 512
#define SCALING_T_HI 8192
#define MAX_SERIES 512
#define MAX_VALS 256

/* ---- row helpers ------------------------------------------------------------- */
static int usable(const lat_table *t, int r)
{
    const char *s = lat_table_get(t, r, "status");
    return !strcmp(s, "ok") || !strcmp(s, "noisy");
}

static int is_noisy(const lat_table *t, int r) { return !strcmp(lat_table_get(t, r, "status"), "noisy"); }

static int inum(const lat_table *t, int r, const char *col)
{
    double v = lat_table_num(t, r, col);
    return isfinite(v) ? (int)v : -1;
}

static int is_series(const lat_table *t, int r, const char *method, const char *form)
{
    return !strcmp(lat_table_get(t, r, "method"), method) && !strcmp(lat_table_get(t, r, "form"), form);
}

static int has_prefix(const char *s, const char *prefix)
{
    return prefix && !strncmp(s, prefix, strlen(prefix));
}

/* ---- formatting (rotating buffers: one table cell at a time) ------------------ */
static char *fbuf(void)
{
    static char ring[32][96];
    static int i;
    return ring[i++ % 32];
}

static const char *dash(void) { return "–"; }

static const char *si(double x) /* 83.2k, 1.23M */
{
    if (!isfinite(x))
        return dash();
    char *b = fbuf();
    const char *u[] = {"", "k", "M", "G", "T"};
    int i = 0;
    while (fabs(x) >= 999.5 && i < 4) {
        x /= 1000;
        i++;
    }
    snprintf(b, 96, fabs(x) < 9.995 ? "%.2f%s" : fabs(x) < 99.95 ? "%.1f%s" : "%.0f%s", x, u[i]);
    return b;
}

static const char *bytes(double x) /* 84.3 MiB */
{
    if (!isfinite(x) || x < 0)
        return dash();
    char *b = fbuf();
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (x >= 1023.5 && i < 4) {
        x /= 1024;
        i++;
    }
    snprintf(b, 96, i ? "%.3g %s" : "%.0f %s", x, u[i]);
    return b;
}

static const char *nsec(double ns) /* 12.3 µs */
{
    if (!isfinite(ns))
        return dash();
    char *b = fbuf();
    if (ns < 1e3)
        snprintf(b, 96, "%.3g ns", ns);
    else if (ns < 1e6)
        snprintf(b, 96, "%.3g µs", ns * 1e-3);
    else if (ns < 1e9)
        snprintf(b, 96, "%.3g ms", ns * 1e-6);
    else
        snprintf(b, 96, "%.3g s", ns * 1e-9);
    return b;
}

static const char *num(const char *fmt, double x)
{
    if (!isfinite(x))
        return dash();
    char *b = fbuf();
    snprintf(b, 96, fmt, x);
    return b;
}

static const char *ratio(double x) /* 0.51×, 22.4×, 3759× */
{
    return num(!isfinite(x) ? "%g" : x < 0.0995 ? "%.2g×" : x < 9.995 ? "%.2f×" : x < 99.95 ? "%.1f×" : "%.0f×", x);
}

static const char *pct(double x)
{
    return num(!isfinite(x) ? "%g" : x < 0.995 ? "%.2g%%" : x < 9.95 ? "%.1f%%" : "%.0f%%", x);
}

/* ---- tables: one model, written as markdown and as booktabs ------------------- */
#define TB_MAXCOL 40
typedef struct tb {
    char *title;
    int ncol;
    char *head[TB_MAXCOL];
    char align[TB_MAXCOL]; /* 'l' left, 'r' right, 'c' left in monospace (names) */
    int nrow, cap;
    char ***row;
    char *note; /* lines separated by '\n' */
} tb;

static char *vfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        lat_die(1, "report: out of memory");
    return s;
}

static void tb_init(tb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_init(tb *t, const char *fmt, ...)
{
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    t->title = vfmt(fmt, ap);
    va_end(ap);
}

static void tb_col(tb *t, char align, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void tb_col(tb *t, char align, const char *fmt, ...)
{
    if (t->ncol == TB_MAXCOL)
        return;
    va_list ap;
    va_start(ap, fmt);
    t->head[t->ncol] = vfmt(fmt, ap);
    va_end(ap);
    t->align[t->ncol++] = align;
}

static void tb_row(tb *t)
{
    if (t->nrow == t->cap)
        t->row = realloc(t->row, sizeof(char **) * (size_t)(t->cap = t->cap ? 2 * t->cap : 32));
    t->row[t->nrow++] = calloc((size_t)t->ncol, sizeof(char *));
}

static void tb_cell(tb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_cell(tb *t, const char *fmt, ...)
{
    char **r = t->row[t->nrow - 1];
    int c = 0;
    while (c < t->ncol && r[c])
        c++;
    if (c == t->ncol)
        return;
    va_list ap;
    va_start(ap, fmt);
    r[c] = vfmt(fmt, ap);
    va_end(ap);
}

static void tb_note(tb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_note(tb *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = vfmt(fmt, ap), *all = NULL;
    va_end(ap);
    if (asprintf(&all, "%s%s%s", t->note ? t->note : "", t->note ? "\n" : "", line) < 0)
        lat_die(1, "report: out of memory");
    free(line);
    free(t->note);
    t->note = all;
}

static void tb_free(tb *t)
{
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++)
            free(t->row[r][c]);
        free(t->row[r]);
    }
    for (int c = 0; c < t->ncol; c++)
        free(t->head[c]);
    free(t->row);
    free(t->title);
    free(t->note);
    memset(t, 0, sizeof *t);
}

static void tb_md(FILE *f, const tb *t)
{
    fprintf(f, "### %s\n\n|", t->title);
    for (int c = 0; c < t->ncol; c++)
        fprintf(f, " %s |", t->head[c]);
    fprintf(f, "\n|");
    for (int c = 0; c < t->ncol; c++)
        fprintf(f, "%s|", t->align[c] == 'r' ? "--:" : "---");
    fprintf(f, "\n");
    for (int r = 0; r < t->nrow; r++) {
        fprintf(f, "|");
        for (int c = 0; c < t->ncol; c++) {
            const char *v = t->row[r][c] ? t->row[r][c] : "";
            fprintf(f, t->align[c] == 'c' && *v ? " `%s` |" : " %s |", v);
        }
        fprintf(f, "\n");
    }
    if (t->note) {
        fprintf(f, "\n");
        for (const char *p = t->note; *p;) {
            size_t n = strcspn(p, "\n");
            fprintf(f, "%.*s%s\n", (int)n, p, p[n] ? "  " : "");
            p += n + (p[n] != 0);
        }
    }
    fprintf(f, "\n");
}

/* LaTeX text for a UTF-8 string: specials escaped, our few symbols mapped. */
static void tex_put(FILE *f, const char *s)
{
    static const char *map[][2] = {
        {"±", "$\\pm$"},     {"†", "$^\\dagger$"}, {"‡", "$^\\ddagger$"}, {"×", "$\\times$"},
        {"–", "--"},         {"—", "---"},         {"µ", "$\\mu$"},       {"²", "$^2$"},
        {"≤", "$\\le$"},     {"≥", "$\\ge$"},      {"→", "$\\to$"},       {"·", "$\\cdot$"},
        {"…", "\\dots{}"},   {"≈", "$\\approx$"},   {"−", "$-$"},          {"‖", "$\\|$"},
    };
    for (const char *p = s; *p;) {
        size_t k;
        for (k = 0; k < sizeof map / sizeof map[0]; k++)
            if (!strncmp(p, map[k][0], strlen(map[k][0])))
                break;
        if (k < sizeof map / sizeof map[0]) {
            fputs(map[k][1], f);
            p += strlen(map[k][0]);
            continue;
        }
        switch (*p) {
        case '_': case '%': case '&': case '#': case '$': case '{': case '}':
            fprintf(f, "\\%c", *p);
            break;
        case '~':
            fputs("\\textasciitilde{}", f);
            break;
        case '^':
            fputs("\\textasciicircum{}", f);
            break;
        case '\\':
            fputs("\\textbackslash{}", f);
            break;
        case '`':
            break;
        default:
            fputc(*p, f);
        }
        p++;
    }
}

static void tb_tex(FILE *f, const tb *t)
{
    fprintf(f, "\\caption{");
    tex_put(f, t->title);
    fprintf(f, "}\n\\begin{tabular}{");
    for (int c = 0; c < t->ncol; c++)
        fputc(t->align[c] == 'r' ? 'r' : 'l', f);
    fprintf(f, "}\n\\toprule\n");
    for (int c = 0; c < t->ncol; c++) {
        fputs(c ? " & " : "", f);
        tex_put(f, t->head[c]);
    }
    fprintf(f, " \\\\\n\\midrule\n");
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++) {
            const char *v = t->row[r][c] ? t->row[r][c] : "";
            fputs(c ? " & " : "", f);
            if (t->align[c] == 'c' && *v) {
                fputs("\\texttt{", f);
                tex_put(f, v);
                fputs("}", f);
            } else {
                tex_put(f, v);
            }
        }
        fprintf(f, " \\\\\n");
    }
    fprintf(f, "\\bottomrule\n\\end{tabular}\n");
    if (t->note) {
        fprintf(f, "\\par\\smallskip{\\footnotesize ");
        for (const char *p = t->note; *p; p++) {
            if (*p == '\n') {
                fputs("\\\\\n", f);
                continue;
            }
            char one[8] = {*p, 0};
            size_t len = 1;
            if ((unsigned char)*p >= 0xc0) /* keep a UTF-8 sequence together */
                while ((p[len] & 0xc0) == 0x80 && len < 4)
                    len++;
            memcpy(one, p, len);
            one[len] = 0;
            tex_put(f, one);
            p += len - 1;
        }
        fprintf(f, "}\n");
    }
}

/* ---- the run folder ---------------------------------------------------------- */
typedef struct run_ctx {
    const char *dir;
    char run_id[256], cpu[256], compiler[256], blas_core[128], commit[128], date[64];
    int meta_threads;
    lat_table bench, decode, acc, budget, perf;
    int have_bench, have_decode, have_acc, have_budget, have_perf;
    double fma[65], sgemm[65], triad[65]; /* by thread count; NaN = not measured */
    const char *roof_src;
} run_ctx;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t got;
    while ((got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap)
            s = realloc(s, cap *= 2);
    }
    s[n] = 0;
    fclose(f);
    return s;
}

/* Position after `"key":` (and spaces) inside [from, to), or NULL. */
static const char *json_find(const char *from, const char *to, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    for (const char *p = strstr(from, pat); p && p < to; p = strstr(p + 1, pat)) {
        const char *q = p + strlen(pat);
        while (*q == ' ' || *q == '\t' || *q == '\n')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ' || *q == '\t' || *q == '\n')
            q++;
        return q;
    }
    return NULL;
}

static void json_str(const char *js, const char *key, char *out, size_t len)
{
    out[0] = 0;
    const char *p = js ? json_find(js, js + strlen(js), key) : NULL;
    if (!p || *p != '"')
        return;
    size_t n = 0;
    for (p++; *p && *p != '"' && n + 1 < len; p++) {
        if (*p == '\\' && p[1])
            p++;
        out[n++] = *p;
    }
    out[n] = 0;
}

/* Number at key, or at obj.key when obj is given (meta.json's per-thread maps). */
static double json_num(const char *js, const char *obj, const char *key)
{
    if (!js)
        return NAN;
    const char *from = js, *to = js + strlen(js);
    if (obj) {
        const char *p = json_find(js, to, obj);
        if (!p || *p != '{')
            return NAN;
        from = p;
        to = strchr(p, '}');
        if (!to)
            return NAN;
    }
    const char *p = json_find(from, to, key);
    if (!p || p >= to)
        return NAN;
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

/* 1 loaded, 0 absent (or no complete header: nothing to report); dies when
 * the file exists but cannot be read or is not the expected CSV. */
static int load_csv(run_ctx *c, const char *name, lat_table *t, const char *must_have)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT)
            lat_die(2, "report: cannot read %s: %s", path, strerror(errno));
        return 0;
    }
    struct stat sb;
    int regular = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode);
    fclose(f);
    if (!regular)
        lat_die(2, "report: cannot read %s: not a regular file", path);
    if (lat_table_load(path, t) != 0) {
        fprintf(stderr, "%s: report: %s has no header line; skipped\n", lat_prog, path);
        return 0;
    }
    if (lat_table_col(t, must_have) < 0 || lat_table_col(t, "method") < 0 || lat_table_col(t, "status") < 0)
        lat_die(2, "report: %s is not a latbench %s (no '%s', 'method' or 'status' column)", path, name, must_have);
    return 1;
}

static void load_ceilings(run_ctx *c, const char *meta)
{
    for (int t = 0; t <= 64; t++)
        c->fma[t] = c->sgemm[t] = c->triad[t] = NAN;
    c->roof_src = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/roofline.csv", c->dir);
    lat_table r;
    if (lat_table_load(path, &r) == 0) {
        for (int i = 0; i < r.nrow; i++) {
            int t = inum(&r, i, "threads");
            if (t < 1 || t > 64)
                continue;
            c->fma[t] = lat_table_num(&r, i, "fma_peak_gflops");
            c->sgemm[t] = lat_table_num(&r, i, "sgemm_gflops");
            c->triad[t] = lat_table_num(&r, i, "triad_gbs");
            c->roof_src = "roofline.csv";
        }
        lat_table_free(&r);
    }
    if (c->roof_src || !meta)
        return;
    for (int t = 1; t <= 64; t++) {
        char k[16];
        snprintf(k, sizeof k, "%d", t);
        c->fma[t] = json_num(meta, "fma_peak_gflops", k);
        c->sgemm[t] = json_num(meta, "sgemm_gflops", k);
        c->triad[t] = json_num(meta, "triad_gbs", k);
        if (isfinite(c->fma[t]) || isfinite(c->sgemm[t]))
            c->roof_src = "meta.json";
    }
}

static void ctx_open(run_ctx *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    c->dir = dir;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        lat_die(2, "report: no run folder '%s' (give results/<run>, made by latbench sweep)", dir);
    c->have_bench = load_csv(c, "bench.csv", &c->bench, "t_med_ns");
    c->have_decode = load_csv(c, "decode.csv", &c->decode, "ctx");
    c->have_acc = load_csv(c, "accuracy.csv", &c->acc, "rel_rmse");
    c->have_budget = load_csv(c, "budget.csv", &c->budget, "tokens_per_s");
    c->have_perf = load_csv(c, "perf.csv", &c->perf, "frac_fma_peak");
    if (!c->have_bench && !c->have_decode && !c->have_acc)
        lat_die(2, "report: %s has no bench.csv, decode.csv or accuracy.csv (run latbench sweep SUITE --out %s first)",
                dir, dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char *meta = slurp(path);
    if (!meta)
        fprintf(stderr, "%s: report: %s missing; the machine line will say 'unknown'\n", lat_prog, path);
    json_str(meta, "run_id", c->run_id, sizeof c->run_id);
    if (!c->run_id[0]) {
        const char *slash = strrchr(dir, '/');
        snprintf(c->run_id, sizeof c->run_id, "%s", slash && slash[1] ? slash + 1 : dir);
    }
    json_str(meta, "cpu_model", c->cpu, sizeof c->cpu);
    json_str(meta, "compiler", c->compiler, sizeof c->compiler);
    json_str(meta, "openblas_core", c->blas_core, sizeof c->blas_core);
    json_str(meta, "git_commit", c->commit, sizeof c->commit);
    json_str(meta, "date_utc", c->date, sizeof c->date);
    double mt = json_num(meta, NULL, "max_threads");
    c->meta_threads = isfinite(mt) ? (int)mt : 0;
    load_ceilings(c, meta);
    free(meta);
}

/* ctx_open, and the run's tables/ folder created for the writers */
static void ctx_open_tables(run_ctx *c, const char *dir)
{
    ctx_open(c, dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/tables", dir);
    if (lat_mkdir_p(path) != 0)
        lat_die(2, "report: cannot create %s: %s", path, strerror(errno));
}

static void ctx_close(run_ctx *c)
{
    lat_table_free(&c->bench);
    lat_table_free(&c->decode);
    lat_table_free(&c->acc);
    lat_table_free(&c->budget);
    lat_table_free(&c->perf);
}

static void machine_line(const run_ctx *c, char *buf, size_t len)
{
    char thr[32] = "? threads";
    if (c->meta_threads > 0)
        snprintf(thr, sizeof thr, "%d threads", c->meta_threads);
    snprintf(buf, len, "%s | %s | %s | OpenBLAS %s", c->cpu[0] ? c->cpu : "unknown CPU", thr,
             c->compiler[0] ? c->compiler : "unknown compiler", c->blas_core[0] ? c->blas_core : "unknown");
}

/* ---- selections ---------------------------------------------------------------- */
typedef struct series {
    char method[64], form[64];
} series;

/* method.form pairs of the usable rows, in order of first appearance. */
static int series_of(const lat_table *t, series *out, int max)
{
    int n = 0;
    for (int r = 0; r < t->nrow; r++) {
        if (!usable(t, r))
            continue;
        const char *m = lat_table_get(t, r, "method"), *f = lat_table_get(t, r, "form");
        int k;
        for (k = 0; k < n; k++)
            if (!strcmp(out[k].method, m) && !strcmp(out[k].form, f))
                break;
        if (k == n && n < max) {
            snprintf(out[n].method, sizeof out[n].method, "%s", m);
            snprintf(out[n].form, sizeof out[n].form, "%s", f);
            n++;
        }
    }
    return n;
}

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static int cmp_dbl(const void *a, const void *b)
{
    return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b);
}

/* Sorted distinct values of integer column col over usable rows where each
 * given constraint (col = value, value ≥ 0) holds. */
static int distinct(const lat_table *t, const char *col, const char *c1, int v1, const char *c2, int v2, int *out)
{
    int n = 0;
    for (int r = 0; r < t->nrow; r++) {
        if (!usable(t, r) || (c1 && v1 >= 0 && inum(t, r, c1) != v1) || (c2 && v2 >= 0 && inum(t, r, c2) != v2))
            continue;
        int v = inum(t, r, col), k;
        if (v < 0)
            continue;
        for (k = 0; k < n && out[k] != v; k++)
            ;
        if (k == n && n < MAX_VALS)
            out[n++] = v;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_int);
    return n;
}

static int max_of(const int *v, int n) { return n ? v[n - 1] : -1; }
static int contains(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* The head dimension to show: 64 when measured, else the most frequent V. */
static int pick_D(const lat_table *t, int threads)
{
    int Ds[MAX_VALS], n = distinct(t, "V", "threads", threads, NULL, -1, Ds);
    if (contains(Ds, n, 64) || !n)
        return n ? 64 : -1;
    int best = Ds[0], best_count = 0;
    for (int i = 0; i < n; i++) {
        int count = 0;
        for (int r = 0; r < t->nrow; r++)
            count += usable(t, r) && inum(t, r, "V") == Ds[i] && inum(t, r, "threads") == threads;
        if (count > best_count) {
            best = Ds[i];
            best_count = count;
        }
    }
    return best;
}

/* A usable bench row of method.form at (T, V, threads); -1 = any value. Rows
 * of grids whose name starts with `prefer` win; otherwise the first one. */
static int find_bench(const lat_table *t, const series *s, int T, int V, int threads, const char *prefer)
{
    int first = -1;
    for (int r = 0; r < t->nrow; r++) {
        if (!usable(t, r) || !is_series(t, r, s->method, s->form) || (T >= 0 && inum(t, r, "T") != T) ||
            (V >= 0 && inum(t, r, "V") != V) || (threads >= 0 && inum(t, r, "threads") != threads))
            continue;
        if (has_prefix(lat_table_get(t, r, "grid"), prefer))
            return r;
        if (first < 0)
            first = r;
    }
    return first;
}

/* Status counts of the rows that are not shown, e.g. "2 refused, 1 failed". */
static int skipped_rows(const lat_table *t, char *buf, size_t len)
{
    char names[16][32];
    int counts[16], n = 0, total = 0;
    for (int r = 0; r < t->nrow; r++) {
        if (usable(t, r))
            continue;
        const char *s = lat_table_get(t, r, "status");
        int k;
        for (k = 0; k < n && strcmp(names[k], s); k++)
            ;
        if (k == n && n < 16) {
            snprintf(names[n], sizeof names[n], "%s", *s ? s : "(empty)");
            counts[n++] = 0;
        }
        if (k < n)
            counts[k]++;
        total++;
    }
    buf[0] = 0;
    for (int k = 0; k < n; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%d %s", k ? ", " : "", counts[k], names[k]);
    }
    return total;
}

/* ---- scaling fits (shared with claims) ------------------------------------------- */
typedef struct fit_group {
    lat_scaling_fit fit;
    int n, cap;
    double *logT, *logt;
    int *T;
} fit_group;

static void group_add(fit_group *g, int T, double t_ns)
{
    for (int i = 0; i < g->n; i++)
        if (g->T[i] == T)
            return; /* a T measured twice (another grid): the first row counts */
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 16;
        g->logT = realloc(g->logT, sizeof(double) * (size_t)g->cap);
        g->logt = realloc(g->logt, sizeof(double) * (size_t)g->cap);
        g->T = realloc(g->T, sizeof(int) * (size_t)g->cap);
    }
    g->T[g->n] = T;
    g->logT[g->n] = log((double)T);
    g->logt[g->n++] = log(t_ns);
}

int lat_report_scaling_table(const lat_table *b, int T_lo, int T_hi, lat_scaling_fit **fits)
{
    fit_group *g = NULL;
    int ng = 0, cap = 0;
    for (int r = 0; r < b->nrow; r++) {
        int T = inum(b, r, "T");
        double t = lat_table_num(b, r, "t_med_ns");
        if (!usable(b, r) || T < 1 || !(t > 0) || (T_lo > 0 && T < T_lo) || (T_hi > 0 && T > T_hi))
            continue;
        lat_scaling_fit key;
        memset(&key, 0, sizeof key);
        snprintf(key.method, sizeof key.method, "%s", lat_table_get(b, r, "method"));
        snprintf(key.form, sizeof key.form, "%s", lat_table_get(b, r, "form"));
        key.B = inum(b, r, "B");
        key.H = inum(b, r, "H");
        key.D = inum(b, r, "V");
        key.threads = inum(b, r, "threads");
        int k;
        for (k = 0; k < ng; k++) {
            const lat_scaling_fit *f = &g[k].fit;
            if (!strcmp(f->method, key.method) && !strcmp(f->form, key.form) && f->B == key.B && f->H == key.H &&
                f->D == key.D && f->threads == key.threads)
                break;
        }
        if (k == ng) {
            if (ng == cap)
                g = realloc(g, sizeof *g * (size_t)(cap = cap ? 2 * cap : 32));
            memset(&g[ng], 0, sizeof g[ng]);
            g[ng++].fit = key;
        }
        group_add(&g[k], T, t);
    }
    lat_scaling_fit *out = malloc(sizeof *out * (size_t)(ng ? ng : 1));
    int n = 0;
    for (int k = 0; k < ng; k++) {
        if (g[k].n >= 2) {
            lat_scaling_fit f = g[k].fit;
            f.slope = lat_fit_slope(g[k].logT, g[k].logt, g[k].n, NULL, &f.r2);
            f.n_points = g[k].n;
            f.T_min = f.T_max = g[k].T[0];
            for (int i = 1; i < g[k].n; i++) {
                f.T_min = g[k].T[i] < f.T_min ? g[k].T[i] : f.T_min;
                f.T_max = g[k].T[i] > f.T_max ? g[k].T[i] : f.T_max;
            }
            if (isfinite(f.slope))
                out[n++] = f;
        }
        free(g[k].logT);
        free(g[k].logt);
        free(g[k].T);
    }
    free(g);
    *fits = out;
    return n;
}

int lat_report_scaling(const char *run_dir, int T_lo, int T_hi, lat_scaling_fit **fits)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/bench.csv", run_dir);
    lat_table b;
    *fits = NULL;
    if (lat_table_load(path, &b) != 0)
        return -1;
    int n = lat_report_scaling_table(&b, T_lo, T_hi, fits);
    lat_table_free(&b);
    return n;
}

int lat_report_scaling_write(const char *path, const lat_scaling_fit *fits, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "method,form,D,threads,slope,r2,n_points,T_min,T_max,B,H\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s,%s,%d,%d,%.4f,%.4f,%d,%d,%d,%d,%d\n", fits[i].method, fits[i].form, fits[i].D,
                fits[i].threads, fits[i].slope, fits[i].r2, fits[i].n_points, fits[i].T_min, fits[i].T_max,
                fits[i].B, fits[i].H);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- throughput --------------------------------------------------------------------- */
/* The T values to show: 2048 and 8192 when measured, else the two largest. */
static int pick_T(const int *Ts, int n, int *out)
{
    int k = 0;
    if (contains(Ts, n, 2048))
        out[k++] = 2048;
    if (contains(Ts, n, 8192))
        out[k++] = 8192;
    if (k)
        return k;
    for (int i = n > 2 ? n - 2 : 0; i < n; i++)
        out[k++] = Ts[i];
    return k;
}

/* Fastest softmax form at (T, V, threads): its row, or -1. */
static int softmax_best(const lat_table *t, int T, int V, int threads)
{
    int best = -1;
    for (int r = 0; r < t->nrow; r++)
        if (usable(t, r) && !strcmp(lat_table_get(t, r, "method"), "softmax") && inum(t, r, "T") == T &&
            inum(t, r, "V") == V && inum(t, r, "threads") == threads &&
            (best < 0 || lat_table_num(t, r, "tokens_per_s") > lat_table_num(t, best, "tokens_per_s")))
            best = r;
    return best;
}

static void throughput_table(const run_ctx *c, int D, int threads, tb *t)
{
    const lat_table *b = &c->bench;
    int Ts[MAX_VALS], nT = distinct(b, "T", "V", D, "threads", threads, Ts), show[2];
    int ns = pick_T(Ts, nT, show);
    series s[MAX_SERIES];
    int nser = series_of(b, s, MAX_SERIES);
    tb_init(t, "Throughput at D = %d, %d thread%s", D, threads, threads > 1 ? "s" : "");
    tb_col(t, 'c', "method.form");
    tb_col(t, 'r', "T");
    tb_col(t, 'r', "tokens/s");
    tb_col(t, 'r', "p20–p80");
    tb_col(t, 'r', "GFLOP/s");
    tb_col(t, 'r', "%% FMA peak");
    tb_col(t, 'r', "%% sgemm");
    tb_col(t, 'r', "× softmax");
    char best_forms[256] = "";
    int any_noisy = 0, above = 0;
    double fma = threads <= 64 ? c->fma[threads] : NAN, sg = threads <= 64 ? c->sgemm[threads] : NAN;
    for (int i = 0; i < ns; i++) {
        int sm = softmax_best(b, show[i], D, threads);
        if (sm >= 0 && !strstr(best_forms, lat_table_get(b, sm, "form"))) {
            size_t l = strlen(best_forms);
            snprintf(best_forms + l, sizeof best_forms - l, "%s%s", l ? ", " : "", lat_table_get(b, sm, "form"));
        }
        double sm_tok = sm >= 0 ? lat_table_num(b, sm, "tokens_per_s") : NAN;
        for (int k = 0; k < nser; k++) {
            int r = find_bench(b, &s[k], show[i], D, threads, "throughput");
            if (r < 0)
                continue;
            double tok = lat_table_num(b, r, "tokens_per_s"), gf = lat_table_num(b, r, "gflops");
            double tokens = lat_table_num(b, r, "B") * show[i];
            double lo = tokens / (lat_table_num(b, r, "t_p80_ns") * 1e-9);
            double hi = tokens / (lat_table_num(b, r, "t_p20_ns") * 1e-9);
            any_noisy |= is_noisy(b, r);
            above |= gf > fma || gf > sg;
            tb_row(t);
            tb_cell(t, "%s.%s", s[k].method, s[k].form);
            tb_cell(t, "%d", show[i]);
            tb_cell(t, "%s%s", si(tok), is_noisy(b, r) ? "†" : "");
            tb_cell(t, "%s–%s", si(lo), si(hi));
            tb_cell(t, "%s", num("%.3g", gf));
            tb_cell(t, "%s", pct(100 * gf / fma));
            tb_cell(t, "%s", pct(100 * gf / sg));
            tb_cell(t, "%s", ratio(tok / sm_tok));
        }
    }
    tb_note(t, "B·T / median time; p20–p80: tokens/s at the 80th and 20th percentile times; GFLOP/s from each "
               "form's analytic FLOP count.");
    if (c->roof_src)
        tb_note(t, "FMA peak %s GFLOP/s and OpenBLAS sgemm %s GFLOP/s at %d thread%s (%s).",
                num("%.1f", fma), num("%.1f", sg), threads, threads > 1 ? "s" : "", c->roof_src);
    else
        tb_note(t, "No ceilings in this run: run latbench roofline --out %s.", c->dir);
    if (above)
        tb_note(t, "Above 100%%: the cell ran faster than the ceiling measured by latbench roofline (a ceiling "
                   "measured under load, or a different clock): re-measure the ceilings on a quiet machine.");
    if (best_forms[0])
        tb_note(t, "× softmax: tokens/s over the fastest softmax form at the same shape (here: %s).", best_forms);
    else
        tb_note(t, "× softmax: no softmax row at these shapes.");
    if (any_noisy)
        tb_note(t, "† noisy: coefficient of variation above 5%%.");
}

static int build_throughput(const run_ctx *c, tb *out, int max)
{
    if (!c->have_bench)
        return 0;
    int thr[MAX_VALS], nthr = distinct(&c->bench, "threads", NULL, -1, NULL, -1, thr);
    int threads = max_of(thr, nthr), D0 = pick_D(&c->bench, threads);
    if (threads < 1)
        return 0;
    int Ds[MAX_VALS], nD = distinct(&c->bench, "V", "threads", threads, NULL, -1, Ds), n = 0;
    throughput_table(c, D0, threads, &out[n++]); /* the chosen D first (summary shows it) */
    for (int i = 0; i < nD && n < max; i++)
        if (Ds[i] != D0)
            throughput_table(c, Ds[i], threads, &out[n++]);
    return n;
}

/* ---- memory ------------------------------------------------------------------------ */
static int build_memory(const run_ctx *c, tb *out, int max)
{
    const lat_table *b = &c->bench;
    if (!c->have_bench || max < 1)
        return 0;
    int thr[MAX_VALS], nthr = distinct(b, "threads", NULL, -1, NULL, -1, thr);
    int threads = max_of(thr, nthr), D = pick_D(b, threads);
    int Ts[MAX_VALS], nT = distinct(b, "T", "V", D, "threads", threads, Ts);
    if (threads < 1 || !nT)
        return 0;
    int T = contains(Ts, nT, 8192) ? 8192 : max_of(Ts, nT);
    tb *t = &out[0];
    tb_init(t, "Memory at T = %d, D = %d, %d thread%s", T, D, threads, threads > 1 ? "s" : "");
    tb_col(t, 'c', "method.form");
    tb_col(t, 'r', "analytic bytes");
    tb_col(t, 'r', "workspace");
    tb_col(t, 'r', "state");
    tb_col(t, 'r', "allocator peak");
    tb_col(t, 'r', "peak RSS");
    tb_col(t, 'r', "RSS at start");
    series s[MAX_SERIES];
    int nser = series_of(b, s, MAX_SERIES);
    for (int k = 0; k < nser; k++) {
        int r = find_bench(b, &s[k], T, D, threads, "throughput");
        if (r < 0)
            continue;
        tb_row(t);
        tb_cell(t, "%s.%s", s[k].method, s[k].form);
        tb_cell(t, "%s", bytes(lat_table_num(b, r, "bytes_model")));
        tb_cell(t, "%s", bytes(lat_table_num(b, r, "workspace_bytes")));
        tb_cell(t, "%s", bytes(lat_table_num(b, r, "state_bytes")));
        tb_cell(t, "%s", bytes(lat_table_num(b, r, "alloc_peak_bytes")));
        tb_cell(t, "%s", bytes(lat_table_num(b, r, "peak_rss_bytes")));
        tb_cell(t, "%s", bytes(lat_table_num(b, r, "rss_baseline_bytes")));
    }
    tb_note(t, "analytic bytes: the method's compulsory-traffic model (inputs, outputs, state); workspace: the "
               "form's scratch at this thread count; state: per the paper's formula.");
    tb_note(t, "allocator peak: high-water mark of the harness allocator during timing; peak RSS: of the cell's "
               "own child process (RSS at start: before any buffer was allocated).");
    return 1;
}

/* ---- accuracy ------------------------------------------------------------------------ */
static int find_acc(const lat_table *a, const series *s, int T, const char *inputs, double sharp)
{
    for (int r = 0; r < a->nrow; r++)
        if (usable(a, r) && is_series(a, r, s->method, s->form) && (T < 0 || inum(a, r, "T") == T) &&
            !strcmp(lat_table_get(a, r, "inputs"), inputs) &&
            fabs(lat_table_num(a, r, "sharpness") - sharp) <= 1e-9 * fabs(sharp))
            return r;
    return -1;
}

static int input_sets(const lat_table *a, char names[][32], int max)
{
    int n = 0;
    for (int r = 0; r < a->nrow; r++) {
        const char *s = lat_table_get(a, r, "inputs");
        int k;
        for (k = 0; k < n && strcmp(names[k], s); k++)
            ;
        if (usable(a, r) && k == n && n < max)
            snprintf(names[n++], 32, "%s", s);
    }
    return n;
}

static int sharpness_values(const lat_table *a, int T, double *out)
{
    int n = 0;
    for (int r = 0; r < a->nrow; r++) {
        double v = lat_table_num(a, r, "sharpness");
        if (!usable(a, r) || !isfinite(v) || (T >= 0 && inum(a, r, "T") != T))
            continue;
        int k;
        for (k = 0; k < n && out[k] != v; k++)
            ;
        if (k == n && n < MAX_VALS)
            out[n++] = v;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_dbl);
    return n;
}

static const char *err_cell(const lat_table *a, int r, int *failed)
{
    if (r < 0)
        return dash();
    int pass = inum(a, r, "passed");
    char *b = fbuf();
    snprintf(b, 96, "%s%s", num("%.2e", lat_table_num(a, r, "rel_rmse")), pass == 0 ? "‡" : "");
    if (pass == 0)
        *failed = 1;
    return b;
}

/* rel_rmse vs fp64, one column per T, at the lowest sharpness. */
static void accuracy_by_T(const run_ctx *c, tb *t, double sharp0)
{
    const lat_table *a = &c->acc;
    series s[MAX_SERIES];
    int nser = series_of(a, s, MAX_SERIES), Ts[MAX_VALS], failed = 0;
    char in[8][32];
    int nin = input_sets(a, in, 8), nT = 0;
    for (int r = 0; r < a->nrow; r++)
        if (usable(a, r) && fabs(lat_table_num(a, r, "sharpness") - sharp0) <= 1e-9 * fabs(sharp0) &&
            !contains(Ts, nT, inum(a, r, "T")) && nT < 16)
            Ts[nT++] = inum(a, r, "T");
    qsort(Ts, (size_t)nT, sizeof *Ts, cmp_int);
    tb_init(t, "Error vs the fp64 reference (rel_rmse) by sequence length");
    tb_col(t, 'c', "method.form");
    tb_col(t, 'l', "inputs");
    for (int i = 0; i < nT; i++)
        tb_col(t, 'r', "T = %d", Ts[i]);
    tb_col(t, 'r', "tolerance");
    for (int k = 0; k < nser; k++)
        for (int j = 0; j < nin; j++) {
            int any = -1;
            for (int i = 0; i < nT && any < 0; i++)
                any = find_acc(a, &s[k], Ts[i], in[j], sharp0);
            if (any < 0)
                continue;
            tb_row(t);
            tb_cell(t, "%s.%s", s[k].method, s[k].form);
            tb_cell(t, "%s", in[j]);
            for (int i = 0; i < nT; i++)
                tb_cell(t, "%s", err_cell(a, find_acc(a, &s[k], Ts[i], in[j], sharp0), &failed));
            tb_cell(t, "%s", num("%.0e", lat_table_num(a, any, "tol")));
        }
    tb_note(t, "rel_rmse = ‖out − ref‖ / ‖ref‖ of the fp32 form against the fp64 reference on the same inputs "
               "(sharpness %g).", sharp0);
    if (failed)
        tb_note(t, "‡ above the method's tolerance.");
}

/* rel_rmse vs fp64 by sharpness, at the T where sharpness was swept. */
static int accuracy_by_sharpness(const run_ctx *c, tb *t)
{
    const lat_table *a = &c->acc;
    int Ts[MAX_VALS], nT = distinct(a, "T", NULL, -1, NULL, -1, Ts), T = -1, best = 1;
    double sh[MAX_VALS];
    for (int i = 0; i < nT; i++) {
        int n = sharpness_values(a, Ts[i], sh);
        if (n > best) {
            best = n;
            T = Ts[i];
        }
    }
    if (T < 0)
        return 0;
    int nsh = sharpness_values(a, T, sh), failed = 0;
    if (nsh > 16)
        nsh = 16;
    series s[MAX_SERIES];
    int nser = series_of(a, s, MAX_SERIES);
    char in[8][32];
    int nin = input_sets(a, in, 8);
    tb_init(t, "Error vs the fp64 reference (rel_rmse) by input sharpness at T = %d", T);
    tb_col(t, 'c', "method.form");
    tb_col(t, 'l', "inputs");
    for (int i = 0; i < nsh; i++)
        tb_col(t, 'r', "×%g", sh[i]);
    for (int k = 0; k < nser; k++)
        for (int j = 0; j < nin; j++) {
            int found = 0;
            for (int i = 0; i < nsh; i++)
                found += find_acc(a, &s[k], T, in[j], sh[i]) >= 0;
            if (found < 2) /* not swept for this input set */
                continue;
            tb_row(t);
            tb_cell(t, "%s.%s", s[k].method, s[k].form);
            tb_cell(t, "%s", in[j]);
            for (int i = 0; i < nsh; i++)
                tb_cell(t, "%s", err_cell(a, find_acc(a, &s[k], T, in[j], sh[i]), &failed));
        }
    tb_note(t, "×s: q and k multiplied by s (sharper attention).");
    if (failed)
        tb_note(t, "‡ above the method's tolerance.");
    return 1;
}

/* Another row of the same (method.form, knobs, inputs, T, sharpness) that
 * wins over row r: more draws, or as many and earlier (two grids can measure
 * the same cell). */
static int superseded(const lat_table *a, int r)
{
    for (int q = 0; q < a->nrow; q++) {
        if (q == r || !usable(a, q) || !isfinite(lat_table_num(a, q, "vs_softmax_rel_rmse")) ||
            !is_series(a, q, lat_table_get(a, r, "method"), lat_table_get(a, r, "form")) ||
            strcmp(lat_table_get(a, q, "inputs"), lat_table_get(a, r, "inputs")) ||
            strcmp(lat_table_get(a, q, "knobs"), lat_table_get(a, r, "knobs")) ||
            inum(a, q, "T") != inum(a, r, "T") || lat_table_num(a, q, "sharpness") != lat_table_num(a, r, "sharpness"))
            continue;
        int dq = inum(a, q, "draws"), dr = inum(a, r, "draws");
        if (dq > dr || (dq == dr && q < r))
            return 1;
    }
    return 0;
}

/* "features=16;variant=0" → "features=16 variant=0" ("-": no knobs). */
static const char *knob_text(const char *k)
{
    char *b = fbuf();
    snprintf(b, 96, "%s", *k ? k : "-");
    for (char *p = b; *p; p++)
        if (*p == ';')
            *p = ' ';
    return b;
}

/* Softmax approximations: error of the fp64 method against exact softmax. */
static int accuracy_vs_softmax(const run_ctx *c, tb *t)
{
    const lat_table *a = &c->acc;
    int rows = 0;
    for (int r = 0; r < a->nrow; r++)
        rows += usable(a, r) && isfinite(lat_table_num(a, r, "vs_softmax_rel_rmse"));
    if (!rows)
        return 0;
    tb_init(t, "Error against exact softmax attention (methods that approximate it)");
    tb_col(t, 'c', "method.form");
    tb_col(t, 'l', "knobs");
    tb_col(t, 'l', "inputs");
    tb_col(t, 'r', "T");
    tb_col(t, 'r', "sharpness");
    tb_col(t, 'r', "draws");
    tb_col(t, 'r', "rel_rmse (mean ± std)");
    tb_col(t, 'r', "max_abs");
    series s[MAX_SERIES];
    int nser = series_of(a, s, MAX_SERIES);
    for (int k = 0; k < nser; k++)
        for (int r = 0; r < a->nrow; r++) {
            if (!usable(a, r) || !is_series(a, r, s[k].method, s[k].form) ||
                !isfinite(lat_table_num(a, r, "vs_softmax_rel_rmse")) || superseded(a, r))
                continue;
            tb_row(t);
            tb_cell(t, "%s.%s", s[k].method, s[k].form);
            tb_cell(t, "%s", knob_text(lat_table_get(a, r, "knobs")));
            tb_cell(t, "%s", lat_table_get(a, r, "inputs"));
            tb_cell(t, "%d", inum(a, r, "T"));
            tb_cell(t, "%g", lat_table_num(a, r, "sharpness"));
            tb_cell(t, "%d", inum(a, r, "draws"));
            tb_cell(t, "%s ± %s", num("%.3g", lat_table_num(a, r, "vs_softmax_rel_rmse")),
                    num("%.2g", lat_table_num(a, r, "vs_softmax_rel_rmse_std")));
            tb_cell(t, "%s", num("%.3g", lat_table_num(a, r, "vs_softmax_max_abs")));
        }
    tb_note(t, "The method's fp64 output against exact softmax on the same inputs; mean ± std over the random "
               "draws (feature maps, projections).");
    return 1;
}

static int build_accuracy(const run_ctx *c, tb *out, int max)
{
    if (!c->have_acc || max < 3)
        return 0;
    double sh[MAX_VALS], sharp0;
    int nsh = sharpness_values(&c->acc, -1, sh), n = 0;
    if (!nsh)
        return 0;
    sharp0 = sh[0]; /* the unscaled inputs when measured, else the mildest */
    for (int i = 0; i < nsh; i++)
        if (sh[i] == 1.0)
            sharp0 = 1.0;
    accuracy_by_T(c, &out[n++], sharp0);
    n += accuracy_by_sharpness(c, &out[n]);
    n += accuracy_vs_softmax(c, &out[n]);
    return n;
}

/* ---- decode ---------------------------------------------------------------------------- */
static int find_decode(const lat_table *d, const series *s, int ctx, int threads)
{
    for (int r = 0; r < d->nrow; r++)
        if (usable(d, r) && is_series(d, r, s->method, s->form) && inum(d, r, "ctx") == ctx &&
            inum(d, r, "threads") == threads)
            return r;
    return -1;
}

static void decode_table(const run_ctx *c, int threads, tb *t)
{
    const lat_table *d = &c->decode;
    int ctx[MAX_VALS], nctx = distinct(d, "ctx", "threads", threads, NULL, -1, ctx), any_noisy = 0;
    if (nctx > 12) /* keep the table printable: the first 11 and the last */
        ctx[11] = ctx[nctx - 1], nctx = 12;
    int cmax = max_of(ctx, nctx);
    series s[MAX_SERIES];
    int nser = series_of(d, s, MAX_SERIES);
    tb_init(t, "Decode: per-token latency by context length, %d thread%s", threads, threads > 1 ? "s" : "");
    tb_col(t, 'c', "method.form");
    for (int i = 0; i < nctx; i++)
        tb_col(t, 'r', "ctx %d", ctx[i]);
    tb_col(t, 'r', "growth");
    tb_col(t, 'r', "state @%d", cmax);
    tb_col(t, 'r', "KV cache @%d", cmax);
    for (int k = 0; k < nser; k++) {
        int first = -1, last = -1;
        for (int i = 0; i < nctx; i++) {
            int r = find_decode(d, &s[k], ctx[i], threads);
            if (r >= 0 && first < 0)
                first = r;
            if (r >= 0)
                last = r;
        }
        if (first < 0)
            continue;
        tb_row(t);
        tb_cell(t, "%s.%s", s[k].method, s[k].form);
        for (int i = 0; i < nctx; i++) {
            int r = find_decode(d, &s[k], ctx[i], threads);
            double B = r >= 0 ? lat_table_num(d, r, "B") : NAN;
            any_noisy |= r >= 0 && is_noisy(d, r);
            tb_cell(t, "%s%s", nsec(r >= 0 ? lat_table_num(d, r, "t_med_ns") / B : NAN),
                    r >= 0 && is_noisy(d, r) ? "†" : "");
        }
        tb_cell(t, "%s", first != last ? ratio(lat_table_num(d, last, "t_med_ns") / lat_table_num(d, first, "t_med_ns"))
                                       : dash());
        double st = lat_table_num(d, last, "state_bytes");
        if (!(st > 0))
            st = lat_table_num(d, last, "state_bytes_measured");
        tb_cell(t, "%s", bytes(st));
        tb_cell(t, "%s", bytes(lat_table_num(d, last, "kv_cache_bytes_equiv")));
    }
    tb_note(t, "Median time of one decode step (T = 1, state updated in place) divided by B; growth: latency at "
               "the longest context over the shortest.");
    tb_note(t, "state: the bytes the method carries from token to token for the B sequences at that context (for "
               "softmax, its KV cache); KV cache: what a softmax KV cache of the same context, H, K and V would hold.");
    if (any_noisy)
        tb_note(t, "† noisy: coefficient of variation above 5%%.");
}

static int build_decode(const run_ctx *c, tb *out, int max)
{
    if (!c->have_decode)
        return 0;
    int thr[MAX_VALS], nthr = distinct(&c->decode, "threads", NULL, -1, NULL, -1, thr), n = 0;
    for (int i = nthr - 1; i >= 0 && n < max; i--) /* all threads first */
        decode_table(c, thr[i], &out[n++]);
    return n;
}

/* ---- memory-budgeted generation (budget.csv, latbench budget) ------------------------- */
static int find_budget(const lat_table *b, const char *method, int P, int G)
{
    for (int r = 0; r < b->nrow; r++)
        if (!strcmp(lat_table_get(b, r, "method"), method) && inum(b, r, "P") == P && inum(b, r, "G") == G)
            return r;
    return -1;
}

static int build_budget(const run_ctx *c, tb *t)
{
    const lat_table *b = &c->budget;
    if (!c->have_budget || b->nrow == 0)
        return 0;
    int P[16], G[16], np = 0;
    for (int r = 0; r < b->nrow && np < 16; r++) {
        int p = inum(b, r, "P"), g = inum(b, r, "G"), dup = 0;
        for (int i = 0; i < np; i++)
            dup |= P[i] == p && G[i] == g;
        if (!dup)
            P[np] = p, G[np++] = g;
    }
    tb_init(t, "Memory-budgeted generation: sequences that fit and tokens/s (%s, %d layers, d_model %d)",
            bytes(lat_table_num(b, 0, "budget_bytes")), inum(b, 0, "layers"), inum(b, 0, "d_model"));
    tb_col(t, 'c', "method");
    for (int i = 0; i < np; i++) {
        tb_col(t, 'r', "batch %d+%d", P[i], G[i]);
        tb_col(t, 'r', "tokens/s %d+%d", P[i], G[i]);
        tb_col(t, 'r', "×softmax");
    }
    const char *seen[256];
    int nseen = 0;
    for (int r = 0; r < b->nrow && nseen < 256; r++) {
        const char *m = lat_table_get(b, r, "method");
        int dup = 0;
        for (int i = 0; i < nseen; i++)
            dup |= !strcmp(seen[i], m);
        if (dup)
            continue;
        seen[nseen++] = m;
        tb_row(t);
        tb_cell(t, "%s", m);
        for (int i = 0; i < np; i++) {
            int k = find_budget(b, m, P[i], G[i]), s = find_budget(b, "softmax", P[i], G[i]);
            int ok = k >= 0 && !strcmp(lat_table_get(b, k, "status"), "ok");
            int sok = s >= 0 && !strcmp(lat_table_get(b, s, "status"), "ok");
            tb_cell(t, "%s", k >= 0 ? num("%.0f", lat_table_num(b, k, "batch")) : dash());
            tb_cell(t, "%s", ok ? si(lat_table_num(b, k, "tokens_per_s")) : dash());
            tb_cell(t, "%s", ok && sok ? ratio(lat_table_num(b, k, "tokens_per_s") /
                                               lat_table_num(b, s, "tokens_per_s"))
                                       : dash());
        }
    }
    tb_note(t, "batch = sequences whose decode state (softmax: KV cache of prompt + generated tokens) fits in the "
               "budget after the weights, capped; tokens/s = batch·G / (prefill + G decode steps at that batch), "
               "mixer-only times over all layers (spec/claims.md A.3; suites/harness/budget.c).");
    return 1;
}

/* ---- performance (perf.csv, latbench perf) ---------------------------------------------- */
/* Issue 6's goal for a form: recurrent ≥ 50 % of the FMA peak, every other
 * (chunk, tiled, parallel, conv: dense products) ≥ 60 %. */
static double perf_goal(const char *form) { return !strcmp(form, "recurrent") ? 0.5 : 0.6; }

/* Best form per method at one shape (B 1, H 8, K = V = D, T, the run's
 * largest thread count); with_base: only cells that carry a baseline. */
static int build_perf_one(const run_ctx *c, tb *t, int T, int D, int with_base)
{
    const lat_table *p = &c->perf;
    int maxth = 0;
    for (int r = 0; r < p->nrow; r++)
        if (inum(p, r, "threads") > maxth)
            maxth = inum(p, r, "threads");
    int n = 0;
    for (int r = 0; r < p->nrow; r++) {
        const char *st = lat_table_get(p, r, "status");
        if (inum(p, r, "best_form") != 1 || inum(p, r, "threads") != maxth || (strcmp(st, "ok") && strcmp(st, "noisy")))
            continue;
        if (with_base ? !lat_table_get(p, r, "baseline")[0]
                      : (inum(p, r, "T") != T || inum(p, r, "K") != D || inum(p, r, "V") != D ||
                         inum(p, r, "B") != 1 || inum(p, r, "H") != 8))
            continue;
        if (!n++) {
            if (with_base)
                tb_init(t, "Against external CPU kernels at their shapes (%d threads)", maxth);
            else
                tb_init(t, "Fraction of this machine's FMA peak, best form per method (B 1, T %d, H 8, D %d, %d "
                           "threads)", T, D, maxth);
            tb_col(t, 'c', "method");
            tb_col(t, 'c', "best form");
            if (with_base)
                tb_col(t, 'c', "shape");
            tb_col(t, 'r', "tokens/s");
            if (with_base) {
                tb_col(t, 'c', "baseline");
                tb_col(t, 'r', "its tokens/s");
                tb_col(t, 'r', "ours / it");
                tb_col(t, 'c', "second baseline");
                tb_col(t, 'r', "its tokens/s");
                tb_col(t, 'r', "ours / it");
            } else {
                tb_col(t, 'r', "GFLOP/s");
                tb_col(t, 'r', "FMA peak");
                tb_col(t, 'r', "sgemm");
                tb_col(t, 'c', "goal");
                tb_col(t, 'r', "1→%d threads", maxth);
                tb_col(t, 'r', "× plainest form");
            }
        }
        const char *form = lat_table_get(p, r, "form");
        double fr = lat_table_num(p, r, "frac_fma_peak");
        tb_row(t);
        tb_cell(t, "%s", lat_table_get(p, r, "method"));
        tb_cell(t, "%s", form);
        if (with_base)
            tb_cell(t, "T %s, H %s, K %s, V %s", lat_table_get(p, r, "T"), lat_table_get(p, r, "H"),
                    lat_table_get(p, r, "K"), lat_table_get(p, r, "V"));
        tb_cell(t, "%s%s", si(lat_table_num(p, r, "tokens_per_s")), strcmp(st, "noisy") ? "" : "*");
        if (with_base) {
            const char *b2 = lat_table_get(p, r, "baseline2");
            tb_cell(t, "%s", lat_table_get(p, r, "baseline"));
            tb_cell(t, "%s", si(lat_table_num(p, r, "baseline_tokens_per_s")));
            tb_cell(t, "%s", ratio(lat_table_num(p, r, "ratio_vs_baseline")));
            tb_cell(t, "%s", b2[0] ? b2 : dash());
            tb_cell(t, "%s", si(lat_table_num(p, r, "baseline2_tokens_per_s")));
            tb_cell(t, "%s", ratio(lat_table_num(p, r, "ratio_vs_baseline2")));
        } else {
            tb_cell(t, "%s", num("%.1f", lat_table_num(p, r, "gflops")));
            tb_cell(t, "%s", pct(100 * fr));
            tb_cell(t, "%s", pct(100 * lat_table_num(p, r, "frac_sgemm")));
            tb_cell(t, "%s", !isfinite(fr) ? dash() : fr >= perf_goal(form) ? "met" : "below");
            tb_cell(t, "%s", ratio(lat_table_num(p, r, "scaling_1_to_all")));
            tb_cell(t, "%s", ratio(lat_table_num(p, r, "speedup_vs_plainest_form")));
        }
    }
    if (n && with_base)
        tb_note(t, "Baselines from data/perf_baselines.tsv (the first and second row that match the cell: the "
                   "figure quoted in issue 6 and, where there is one, the same library measured on the sample "
                   "run's machine).");
    else if (n)
        tb_note(t, "FLOPs are each form's analytic count; peak and sgemm are measured in the same run at the same "
                   "thread count (roofline.csv). Goal (issue 6): recurrent forms ≥ 50 %%, chunk / tiled / parallel "
                   "forms ≥ 60 %% of the FMA peak; 1 → all threads ≥ 1.8×. * = noisy cell (coefficient of variation of the repetitions above 5 %%"
                   ").");
    return n > 0;
}

static int build_perf(const run_ctx *c, tb *t)
{
    if (!c->have_perf)
        return 0;
    int n = 0;
    n += build_perf_one(c, &t[n], 8192, 64, 0);
    n += build_perf_one(c, &t[n], 8192, 128, 0);
    n += build_perf_one(c, &t[n], 0, 0, 1);
    return n;
}

/* ---- scaling ------------------------------------------------------------------------------ */
static void exponent_table(const run_ctx *c, const lat_scaling_fit *fits, int n, int bounded, tb *t)
{
    lat_scaling_fit *f = malloc(sizeof *f * (size_t)(n ? n : 1));
    memcpy(f, fits, sizeof *f * (size_t)n);
    /* a stable sort by (D, threads desc): insertion sort keeps appearance order */
    for (int i = 1; i < n; i++) {
        lat_scaling_fit x = f[i];
        int j = i - 1;
        while (j >= 0 && (f[j].D > x.D || (f[j].D == x.D && f[j].threads < x.threads))) {
            f[j + 1] = f[j];
            j--;
        }
        f[j + 1] = x;
    }
    tb_init(t, "Scaling exponent: slope of log time against log T");
    tb_col(t, 'c', "method.form");
    tb_col(t, 'r', "D");
    tb_col(t, 'r', "threads");
    tb_col(t, 'r', "exponent");
    tb_col(t, 'r', "R²");
    tb_col(t, 'r', "points");
    tb_col(t, 'r', "T range");
    for (int i = 0; i < n; i++) {
        tb_row(t);
        tb_cell(t, "%s.%s", f[i].method, f[i].form);
        tb_cell(t, "%d", f[i].D);
        tb_cell(t, "%d", f[i].threads);
        tb_cell(t, "%.2f", f[i].slope);
        tb_cell(t, "%.3f", f[i].r2);
        tb_cell(t, "%d", f[i].n_points);
        tb_cell(t, "%d–%d", f[i].T_min, f[i].T_max);
    }
    int two = 0;
    for (int i = 0; i < n; i++)
        two |= f[i].n_points == 2;
    if (bounded)
        tb_note(t, "Least-squares fit of log(median time) on log(T) over T in [%d, %d]: 1 = linear, 2 = quadratic "
                   "in T. Also in scaling.csv.", SCALING_T_LO, SCALING_T_HI);
    else
        tb_note(t, "Least-squares fit of log(median time) on log(T) over every T measured (none in [%d, %d]): "
                   "1 = linear, 2 = quadratic in T. Also in scaling.csv.", SCALING_T_LO, SCALING_T_HI);
    if (two)
        tb_note(t, "With 2 points the fit is exact (R² = 1) and says nothing about the quality of the power law.");
    free(f);
    (void)c;
}

static void speedup_table(const run_ctx *c, int threads, tb *t)
{
    const lat_table *b = &c->bench;
    int D = pick_D(b, threads);
    series s[MAX_SERIES];
    int nser = series_of(b, s, MAX_SERIES);
    tb_init(t, "Thread scaling: speed-up from 1 to %d threads at D = %d", threads, D);
    tb_col(t, 'c', "method.form");
    tb_col(t, 'r', "T");
    tb_col(t, 'r', "1 thread");
    tb_col(t, 'r', "%d threads", threads);
    tb_col(t, 'r', "speed-up");
    tb_col(t, 'r', "efficiency");
    int any_noisy = 0;
    for (int k = 0; k < nser; k++) {
        int Ts[MAX_VALS], nT = distinct(b, "T", "V", D, "threads", 1, Ts), r1 = -1, rn = -1;
        for (int i = nT - 1; i >= 0 && (r1 < 0 || rn < 0); i--) { /* the largest T with both */
            r1 = find_bench(b, &s[k], Ts[i], D, 1, "scaling");
            rn = find_bench(b, &s[k], Ts[i], D, threads, "scaling");
        }
        if (r1 < 0 || rn < 0)
            continue;
        double t1 = lat_table_num(b, r1, "t_med_ns"), tn = lat_table_num(b, rn, "t_med_ns");
        int nz1 = is_noisy(b, r1), nzn = is_noisy(b, rn);
        any_noisy |= nz1 | nzn;
        tb_row(t);
        tb_cell(t, "%s.%s", s[k].method, s[k].form);
        tb_cell(t, "%d", inum(b, r1, "T"));
        tb_cell(t, "%s%s", nsec(t1), nz1 ? "†" : "");
        tb_cell(t, "%s%s", nsec(tn), nzn ? "†" : "");
        tb_cell(t, "%s", ratio(t1 / tn));
        tb_cell(t, "%s", pct(100 * t1 / tn / threads));
    }
    tb_note(t, "Median times at the largest T measured at both thread counts (the `scaling` grid when present); "
               "efficiency = speed-up / threads.");
    if (any_noisy)
        tb_note(t, "† noisy: coefficient of variation above 5%%.");
}

static int build_scaling(const run_ctx *c, tb *out, int max, const lat_scaling_fit *fits, int nfits, int bounded)
{
    if (!c->have_bench || max < 2)
        return 0;
    int n = 0;
    if (nfits)
        exponent_table(c, fits, nfits, bounded, &out[n++]);
    int thr[MAX_VALS], nthr = distinct(&c->bench, "threads", NULL, -1, NULL, -1, thr);
    if (nthr > 1 && thr[0] == 1)
        speedup_table(c, max_of(thr, nthr), &out[n++]);
    return n;
}

/* ---- writing ------------------------------------------------------------------------------ */
typedef struct tables {
    tb thr[16], mem[1], acc[3], dec[16], sc[2], bud[1], perf[3];
    int nthr, nmem, nacc, ndec, nsc, nbud, nperf;
} tables;

/* Writes tables/NAME.md and NAME.tex; when there is no table, says why
 * (`empty`, default: no usable rows) and writes nothing. */
static void write_tables(const run_ctx *c, const char *name, const char *title, tb *t, int n, const char *empty)
{
    char path[4200], machine[1024];
    if (!n) {
        fprintf(stderr, "%s: report: %s: %s tables not written\n", lat_prog,
                empty ? empty : "no rows with status ok or noisy", name);
        return;
    }
    machine_line(c, machine, sizeof machine);
    snprintf(path, sizeof path, "%s/tables/%s.md", c->dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        lat_die(2, "report: cannot write %s: %s", path, strerror(errno));
    fprintf(f, "## %s — run %s\n\n%s\n\n", title, c->run_id, machine);
    for (int i = 0; i < n; i++)
        tb_md(f, &t[i]);
    if (fclose(f) != 0)
        lat_die(2, "report: cannot write %s", path);
    printf("wrote %s\n", path);

    snprintf(path, sizeof path, "%s/tables/%s.tex", c->dir, name);
    f = fopen(path, "w");
    if (!f)
        lat_die(2, "report: cannot write %s: %s", path, strerror(errno));
    fprintf(f, "%% latbench %s tables, run ", name);
    tex_put(f, c->run_id);
    fprintf(f, "\n%% Needs \\usepackage{booktabs}; \\input{} this file inside a table environment.\n"
               "%% Machine: ");
    tex_put(f, machine);
    fprintf(f, "\n\\centering\n");
    for (int i = 0; i < n; i++) {
        if (i)
            fprintf(f, "\\par\\bigskip\n");
        tb_tex(f, &t[i]);
    }
    if (fclose(f) != 0)
        lat_die(2, "report: cannot write %s", path);
    printf("wrote %s\n", path);
}

static void summary_section(FILE *f, const char *heading, const tb *t, int n, int max)
{
    if (!n)
        return;
    fprintf(f, "## %s\n\n", heading);
    for (int i = 0; i < n && i < max; i++)
        tb_md(f, &t[i]);
}

/* " a, b, c": the grids of the run's rows, in order of appearance. */
static void grid_list(const run_ctx *c, char *out, size_t len)
{
    out[0] = 0;
    const lat_table *all[] = {&c->bench, &c->decode, &c->acc};
    for (int k = 0; k < 3; k++)
        for (int r = 0; r < all[k]->nrow; r++) {
            const char *g = lat_table_get(all[k], r, "grid");
            char item[160];
            snprintf(item, sizeof item, " %s,", g);
            size_t l = strlen(out);
            if (*g && !strstr(out, item) && l + strlen(item) + 1 < len)
                snprintf(out + l, len - l, "%s", item);
        }
    if (out[0])
        out[strlen(out) - 1] = 0; /* the last comma */
}

/* One line per CSV: how many rows, and which were not shown (not ok/noisy). */
static void source_lines(FILE *f, const run_ctx *c)
{
    const struct {
        const char *name;
        const lat_table *t;
        int have;
    } src[] = {{"bench.csv", &c->bench, c->have_bench},
               {"decode.csv", &c->decode, c->have_decode},
               {"accuracy.csv", &c->acc, c->have_acc}};
    char skipped[512];
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        if (!src[i].have) {
            fprintf(f, "- %s: not in this run\n", src[i].name);
            continue;
        }
        int n = skipped_rows(src[i].t, skipped, sizeof skipped);
        fprintf(f, "- %s: %d rows%s%s%s\n", src[i].name, src[i].t->nrow, n ? "; not shown: " : "", skipped,
                n ? "" : ", all ok/noisy");
    }
}

static void write_summary(const run_ctx *c, const tables *tt)
{
    char path[4200], machine[1024], grids[1024];
    snprintf(path, sizeof path, "%s/tables/summary.md", c->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        lat_die(2, "report: cannot write %s: %s", path, strerror(errno));
    machine_line(c, machine, sizeof machine);
    fprintf(f, "%s\n\n# latbench — run %s\n\n", machine, c->run_id);
    grid_list(c, grids, sizeof grids);
    fprintf(f, "commit %s (meta.json written %s); grids:%s.", c->commit[0] ? c->commit : "unknown",
            c->date[0] ? c->date : "unknown date", grids[0] ? grids : " none");
    int t = c->meta_threads;
    if (c->roof_src && t >= 1 && t <= 64)
        fprintf(f, " Ceilings at %d threads (%s): FMA peak %s GFLOP/s, OpenBLAS sgemm %s GFLOP/s, triad %s GB/s.", t,
                c->roof_src, num("%.1f", c->fma[t]), num("%.1f", c->sgemm[t]), num("%.1f", c->triad[t]));
    fprintf(f, "\n\n");
    source_lines(f, c);
    fprintf(f, "\n");
    summary_section(f, "Throughput", tt->thr, tt->nthr, 1);
    summary_section(f, "Scaling", tt->sc, tt->nsc, 2);
    summary_section(f, "Memory", tt->mem, tt->nmem, 1);
    summary_section(f, "Decode", tt->dec, tt->ndec, 1);
    summary_section(f, "Memory-budgeted generation", tt->bud, tt->nbud, 1);
    summary_section(f, "Accuracy", tt->acc, tt->nacc, 1);
    fprintf(f, "More: throughput.md, memory.md, accuracy.md, decode.md, scaling.md, budget.md (and .tex) in this folder; "
               "figures in ../plots (latbench plots).\n");
    if (fclose(f) != 0)
        lat_die(2, "report: cannot write %s", path);
    printf("wrote %s\n", path);
}

static void write_scaling_csv(const run_ctx *c, const lat_scaling_fit *fits, int n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/scaling.csv", c->dir);
    if (lat_report_scaling_write(path, fits, n) != 0)
        lat_die(2, "report: cannot write %s: %s", path, strerror(errno));
    printf("wrote %s (%d fit%s)\n", path, n, n == 1 ? "" : "s");
}

static void free_all(tb *t, int n)
{
    for (int i = 0; i < n; i++)
        tb_free(&t[i]);
}

int lat_report_perf(const char *run_dir)
{
    run_ctx c;
    ctx_open_tables(&c, run_dir);
    tb t[3];
    int n = build_perf(&c, t);
    if (c.have_perf)
        write_tables(&c, "perf", "Performance", t, n, "no best form at the issue's shapes");
    free_all(t, n);
    ctx_close(&c);
    return n > 0 ? 0 : 1;
}

int lat_report(const char *run_dir)
{
    run_ctx c;
    ctx_open_tables(&c, run_dir);
    if (!c.have_bench)
        fprintf(stderr, "%s: report: %s has no bench.csv; throughput, memory and scaling tables skipped\n", lat_prog,
                run_dir);
    if (!c.have_decode)
        fprintf(stderr, "%s: report: %s has no decode.csv; decode tables skipped\n", lat_prog, run_dir);
    if (!c.have_acc)
        fprintf(stderr, "%s: report: %s has no accuracy.csv; accuracy tables skipped\n", lat_prog, run_dir);

    lat_scaling_fit *fits = NULL;
    int nfits = 0, bounded = 1;
    if (c.have_bench) {
        nfits = lat_report_scaling_table(&c.bench, SCALING_T_LO, SCALING_T_HI, &fits);
        if (nfits == 0) { /* e.g. a small test suite: fit what there is */
            free(fits);
            nfits = lat_report_scaling_table(&c.bench, 0, 0, &fits);
            bounded = 0;
        }
        write_scaling_csv(&c, fits, nfits);
    }

    static tables tt; /* large: not on the stack */
    tt.nthr = build_throughput(&c, tt.thr, 16);
    tt.nmem = build_memory(&c, tt.mem, 1);
    tt.nacc = build_accuracy(&c, tt.acc, 3);
    tt.ndec = build_decode(&c, tt.dec, 16);
    tt.nbud = build_budget(&c, tt.bud);
    tt.nperf = build_perf(&c, tt.perf);
    tt.nsc = build_scaling(&c, tt.sc, 2, fits, nfits, bounded);
    if (c.have_bench) {
        write_tables(&c, "throughput", "Throughput", tt.thr, tt.nthr, NULL);
        write_tables(&c, "memory", "Memory", tt.mem, tt.nmem, NULL);
        write_tables(&c, "scaling", "Scaling", tt.sc, tt.nsc,
                     "no method.form measured at two T or at 1 and more threads");
    }
    if (c.have_acc)
        write_tables(&c, "accuracy", "Accuracy", tt.acc, tt.nacc, NULL);
    if (c.have_decode)
        write_tables(&c, "decode", "Decode", tt.dec, tt.ndec, NULL);
    if (c.have_budget)
        write_tables(&c, "budget", "Memory-budgeted generation", tt.bud, tt.nbud, NULL);
    if (c.have_perf)
        write_tables(&c, "perf", "Performance", tt.perf, tt.nperf, "no best form at the issue's shapes");
    write_summary(&c, &tt);

    free_all(tt.thr, tt.nthr);
    free_all(tt.mem, tt.nmem);
    free_all(tt.acc, tt.nacc);
    free_all(tt.dec, tt.ndec);
    free_all(tt.bud, tt.nbud);
    free_all(tt.perf, tt.nperf);
    free_all(tt.sc, tt.nsc);
    free(fits);
    ctx_close(&c);
    return 0;
}
