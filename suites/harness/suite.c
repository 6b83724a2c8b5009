/* suite.c — parser of suites/NAME.suite (format in suite.h) and expansion of a
 * suite into tasks in a deterministic order (so --shard and --resume agree
 * between machines and runs). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

typedef struct {
    const char *file;
    int line;
} ctx_t;

static int perr(const ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(const ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(lat_errf(), "%s: %s:%d: ", lat_prog, c->file, c->line);
    va_start(ap, fmt);
    vfprintf(lat_errf(), fmt, ap);
    va_end(ap);
    fputc('\n', lat_errf());
    return -1;
}

/* split on spaces and commas; returns count */
static int tokenize(char *s, char **tok, int max)
{
    int n = 0;
    for (char *p = strtok(s, " \t,\r"); p; p = strtok(NULL, " \t,\r")) {
        if (n >= max)
            return -1;
        tok[n++] = p;
    }
    return n;
}

static int parse_sel(const ctx_t *c, const char *w, lat_sel *out)
{
    char buf[128];
    if (strlen(w) >= sizeof buf)
        return perr(c, "name too long: '%.40s…'", w);
    strcpy(buf, w);
    char *dot = strchr(buf, '.');
    if (dot)
        *dot = 0;
    const lat_method *m = lat_find_method(buf);
    if (!m) {
        char known[4096] = "";
        for (int i = 0; i < lat_method_count(); i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, lat_method_at(i)->name, sizeof known - strlen(known) - 1);
        }
        return perr(c, "unknown method '%s' (known: %s)", buf, known);
    }
    out->m = m;
    out->f = NULL;
    if (dot) {
        out->f = lat_find_form(m, dot + 1);
        if (!out->f) {
            char known[512] = "";
            for (int i = 0; i < m->n_forms; i++) {
                strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
                strncat(known, m->forms[i].name, sizeof known - strlen(known) - 1);
            }
            return perr(c, "%s has no form '%s' (it has: %s)", m->name, dot + 1, known);
        }
    }
    return 0;
}

static int parse_ints(const ctx_t *c, const char *key, char **tok, int n, int *out, int *count, int lo, int hi)
{
    *count = 0;
    if (n == 0)
        return perr(c, "'%s' needs at least one value", key);
    for (int i = 0; i < n; i++) {
        long a, b;
        char *dd = strstr(tok[i], "..");
        if (strncmp(tok[i], "pow2:", 5) == 0 && dd) { /* pow2:256..65536 */
            *dd = 0;
            if (lat_parse_int(tok[i] + 5, &a) || lat_parse_int(dd + 2, &b) || a < 1 || b < a || b > hi)
                return perr(c, "'%s': bad power-of-two range (write pow2:LO..HI with %d <= LO <= HI <= %d)", key,
                            lo, hi);
            for (long v = 1; v <= b; v *= 2)
                if (v >= a) {
                    if (*count >= LAT_MAX_LIST)
                        return perr(c, "'%s': more than %d values", key, LAT_MAX_LIST);
                    out[(*count)++] = (int)v;
                }
            continue;
        }
        if (lat_parse_int(tok[i], &a) || a < lo || a > hi)
            return perr(c, "'%s': '%s' is not an integer in [%d, %d]", key, tok[i], lo, hi);
        if (*count >= LAT_MAX_LIST)
            return perr(c, "'%s': more than %d values", key, LAT_MAX_LIST);
        out[(*count)++] = (int)a;
    }
    return 0;
}

static int parse_threads(const ctx_t *c, char **tok, int n, lat_grid *g)
{
    int maxt = lat_max_threads();
    g->nthreads = 0;
    if (n == 0)
        return perr(c, "'threads' needs at least one value (integers, all, or 1..all)");
    for (int i = 0; i < n; i++) {
        if (!strcmp(tok[i], "all")) {
            g->threads[g->nthreads++] = maxt;
        } else if (!strcmp(tok[i], "1..all")) {
            for (int t = 1; t <= maxt && g->nthreads < LAT_MAX_LIST; t++)
                g->threads[g->nthreads++] = t;
        } else {
            long v;
            if (lat_parse_int(tok[i], &v) || v < 1 || v > 1024)
                return perr(c, "'threads': '%s' is not an integer in [1, 1024], 'all' or '1..all'", tok[i]);
            if (g->nthreads >= LAT_MAX_LIST)
                return perr(c, "'threads': more than %d values", LAT_MAX_LIST);
            g->threads[g->nthreads++] = (int)(v > maxt ? maxt : v);
        }
    }
    /* drop duplicates ("1 all" on a 1-core machine) */
    int k = 0;
    for (int i = 0; i < g->nthreads; i++) {
        int dup = 0;
        for (int j = 0; j < k; j++)
            dup |= g->threads[j] == g->threads[i];
        if (!dup)
            g->threads[k++] = g->threads[i];
    }
    g->nthreads = k;
    return 0;
}

static void grid_defaults(lat_grid *g)
{
    memset(g, 0, sizeof *g);
    g->B[0] = 1;
    g->nB = 1;
    g->H[0] = 8;
    g->nH = 1;
    g->D[0] = 64;
    g->nD = 1;
    g->threads[0] = lat_max_threads();
    g->nthreads = 1;
    g->reps = 5;
    g->min_time = 0.2;
    g->draws = 1;
    g->seed = 42;
    g->sharp[0] = 1.0;
    g->nsharp = 1;
    g->harsh[0] = 0;
    g->nharsh = 1;
}

static int directive(const ctx_t *c, lat_suite *s, lat_grid *g, char **tok, int n)
{
    const char *k = tok[0];
    char **v = tok + 1;
    int nv = n - 1;
    if (!g) {
        if (!strcmp(k, "suite")) {
            if (nv != 1 || strlen(v[0]) >= sizeof s->name)
                return perr(c, "'suite' takes one short name");
            strcpy(s->name, v[0]);
            return 0;
        }
        return perr(c, "'%s' outside a grid (start one with: grid bench|decode|accuracy NAME)", k);
    }
    if (!strcmp(k, "methods") || !strcmp(k, "exclude")) {
        int is_ex = k[0] == 'e';
        lat_sel *arr = is_ex ? g->excl : g->sel;
        int *cnt = is_ex ? &g->n_excl : &g->n_sel;
        if (nv == 0)
            return perr(c, "'%s' needs at least one method (or 'all')", k);
        for (int i = 0; i < nv; i++) {
            if (!strcmp(v[i], "all") && !is_ex) {
                for (int m = 0; m < lat_method_count(); m++) {
                    if (*cnt >= LAT_MAX_SEL)
                        return perr(c, "too many methods");
                    arr[(*cnt)++] = (lat_sel){lat_method_at(m), NULL};
                }
                continue;
            }
            if (*cnt >= LAT_MAX_SEL)
                return perr(c, "too many methods");
            if (parse_sel(c, v[i], &arr[*cnt]))
                return -1;
            (*cnt)++;
        }
        return 0;
    }
    if (!strcmp(k, "B"))
        return parse_ints(c, k, v, nv, g->B, &g->nB, 1, 1 << 16);
    if (!strcmp(k, "T"))
        return parse_ints(c, k, v, nv, g->T, &g->nT, 1, 1 << 24);
    if (!strcmp(k, "H"))
        return parse_ints(c, k, v, nv, g->H, &g->nH, 1, 4096);
    if (!strcmp(k, "D"))
        return parse_ints(c, k, v, nv, g->D, &g->nD, 1, 4096);
    if (!strcmp(k, "ctx"))
        return parse_ints(c, k, v, nv, g->ctx, &g->nctx, 1, 1 << 24);
    if (!strcmp(k, "threads"))
        return parse_threads(c, v, nv, g);
    if (!strcmp(k, "reps") || !strcmp(k, "draws")) {
        long x;
        if (nv != 1 || lat_parse_int(v[0], &x) || x < 1 || x > 1000)
            return perr(c, "'%s' takes one integer in [1, 1000]", k);
        *(k[0] == 'r' ? &g->reps : &g->draws) = (int)x;
        return 0;
    }
    if (!strcmp(k, "seed")) {
        long x;
        if (nv != 1 || lat_parse_int(v[0], &x) || x < 0)
            return perr(c, "'seed' takes one non-negative integer");
        g->seed = (uint64_t)x;
        return 0;
    }
    if (!strcmp(k, "min_time")) {
        double x;
        if (nv != 1 || lat_parse_double(v[0], &x) || !(x >= 0 && x <= 600))
            return perr(c, "'min_time' takes one number of seconds in [0, 600]");
        g->min_time = x;
        return 0;
    }
    if (!strcmp(k, "accuracy")) {
        if (nv != 1 || (strcmp(v[0], "on") && strcmp(v[0], "off")))
            return perr(c, "'accuracy' takes on or off");
        g->accuracy = !strcmp(v[0], "on");
        return 0;
    }
    if (!strcmp(k, "sharpness")) {
        g->nsharp = 0;
        if (nv == 0 || nv > LAT_MAX_LIST)
            return perr(c, "'sharpness' takes 1 to %d numbers", LAT_MAX_LIST);
        for (int i = 0; i < nv; i++) {
            double x;
            if (lat_parse_double(v[i], &x) || !(x > 0 && x <= 1e6))
                return perr(c, "'sharpness': '%s' is not a positive number", v[i]);
            g->sharp[g->nsharp++] = x;
        }
        return 0;
    }
    if (!strcmp(k, "inputs")) {
        g->nharsh = 0;
        if (nv == 0 || nv > 2)
            return perr(c, "'inputs' takes typical and/or harsh");
        for (int i = 0; i < nv; i++) {
            if (strcmp(v[i], "typical") && strcmp(v[i], "harsh"))
                return perr(c, "'inputs': '%s' is neither typical nor harsh", v[i]);
            g->harsh[g->nharsh++] = !strcmp(v[i], "harsh");
        }
        return 0;
    }
    if (!strcmp(k, "knob")) {
        if (nv < 2)
            return perr(c, "'knob' takes a method[.form] and name=value pairs");
        lat_sel sel;
        if (parse_sel(c, v[0], &sel))
            return -1;
        for (int i = 1; i < nv; i++) {
            char *eq = strchr(v[i], '=');
            long x;
            if (!eq || lat_parse_int(eq + 1, &x))
                return perr(c, "'knob': '%s' is not name=integer", v[i]);
            *eq = 0;
            const lat_knob *kn = NULL;
            for (int j = 0; j < sel.m->n_knobs; j++)
                if (!strcmp(sel.m->knobs[j].name, v[i]))
                    kn = &sel.m->knobs[j];
            if (!kn)
                return perr(c, "'knob': %s has no knob '%s' (see latbench list)", sel.m->name, v[i]);
            if (x < kn->min || x > kn->max)
                return perr(c, "'knob': %s=%ld outside [%d, %d]", v[i], x, kn->min, kn->max);
            if (g->nknobs >= 64)
                return perr(c, "too many knob overrides");
            g->knobs[g->nknobs++] = (lat_knob_set){sel, kn, (int)x};
        }
        return 0;
    }
    if (!strcmp(k, "limit")) {
        long x;
        if (nv != 3 || strcmp(v[1], "T") || lat_parse_int(v[2], &x) || x < 1)
            return perr(c, "'limit' takes: method[.form] T MAX");
        if (g->nlimits >= 64)
            return perr(c, "too many limits");
        if (parse_sel(c, v[0], &g->limits[g->nlimits].sel))
            return -1;
        g->limits[g->nlimits++].max_T = (int)x;
        return 0;
    }
    return perr(c, "unknown directive '%s' (allowed: methods exclude B T H D threads reps min_time accuracy knob "
                   "limit ctx sharpness inputs draws seed end)",
                k);
}

int lat_suite_parse_text(const char *text, const char *name, lat_suite *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", name);
    ctx_t c = {name, 0};
    lat_grid *g = NULL;
    const char *p = text;
    while (*p) {
        c.line++;
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[4096];
        if (len >= sizeof line)
            return perr(&c, "line longer than %zu characters", sizeof line - 1);
        memcpy(line, p, len);
        line[len] = 0;
        p += len + (e ? 1 : 0);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        for (char *q = line; *q; q++)
            if (!isprint((unsigned char)*q) && *q != '\t' && *q != '\r')
                return perr(&c, "non-printable character (byte 0x%02x)", (unsigned char)*q);
        char *tok[256];
        int n = tokenize(line, tok, 256);
        if (n < 0)
            return perr(&c, "too many words on one line");
        if (n == 0)
            continue;
        if (!strcmp(tok[0], "grid")) {
            if (g)
                return perr(&c, "'grid' inside grid '%s' (close it with 'end')", g->name);
            if (n != 3)
                return perr(&c, "'grid' takes a kind (bench, decode, accuracy) and a name");
            if (s->ngrids >= 16)
                return perr(&c, "more than 16 grids");
            g = &s->grids[s->ngrids];
            grid_defaults(g);
            if (!strcmp(tok[1], "bench"))
                g->kind = LAT_GRID_BENCH;
            else if (!strcmp(tok[1], "decode"))
                g->kind = LAT_GRID_DECODE;
            else if (!strcmp(tok[1], "accuracy"))
                g->kind = LAT_GRID_ACCURACY;
            else
                return perr(&c, "unknown grid kind '%s' (allowed: bench, decode, accuracy)", tok[1]);
            if (strlen(tok[2]) >= sizeof g->name)
                return perr(&c, "grid name too long");
            strcpy(g->name, tok[2]);
            for (int i = 0; i < s->ngrids; i++)
                if (!strcmp(s->grids[i].name, g->name))
                    return perr(&c, "grid name '%s' used twice", g->name);
            continue;
        }
        if (!strcmp(tok[0], "end")) {
            if (!g)
                return perr(&c, "'end' without a grid");
            if (n != 1)
                return perr(&c, "'end' takes nothing after it");
            if (g->n_sel == 0)
                return perr(&c, "grid '%s' has no 'methods' line", g->name);
            if (g->kind != LAT_GRID_DECODE && g->nT == 0)
                return perr(&c, "grid '%s' has no 'T' line", g->name);
            if (g->kind == LAT_GRID_DECODE && g->nctx == 0)
                return perr(&c, "decode grid '%s' has no 'ctx' line", g->name);
            s->ngrids++;
            g = NULL;
            continue;
        }
        if (directive(&c, s, g, tok, n))
            return -1;
    }
    if (g) {
        c.line++;
        return perr(&c, "grid '%s' is not closed (missing 'end')", g->name);
    }
    if (s->ngrids == 0) {
        c.line = c.line ? c.line : 1;
        return perr(&c, "no grid in the file (start one with: grid bench NAME)");
    }
    if (!s->name[0]) {
        const char *b = strrchr(name, '/');
        snprintf(s->name, sizeof s->name, "%s", b ? b + 1 : name);
        char *dot = strrchr(s->name, '.');
        if (dot)
            *dot = 0;
    }
    return 0;
}

int lat_suite_parse(const char *path, lat_suite *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(lat_errf(), "%s: cannot read suite %s: %s\n", lat_prog, path, strerror(errno));
        return -1;
    }
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    int too_big = !feof(f);
    fclose(f);
    if (too_big) {
        free(buf);
        fprintf(lat_errf(), "%s: %s: suite file larger than 1 MiB\n", lat_prog, path);
        return -1;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        free(buf);
        fprintf(lat_errf(), "%s: %s: not a text file (NUL byte)\n", lat_prog, path);
        return -1;
    }
    int rc = lat_suite_parse_text(buf, path, s);
    free(buf);
    return rc;
}

void lat_suite_path(const char *name, char *buf, size_t len)
{
    if (strchr(name, '/') || strstr(name, ".suite"))
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "suites/%s.suite", name);
}

/* ---- expansion -------------------------------------------------------------- */
static int sel_match(const lat_sel *s, const lat_method *m, const lat_form *f)
{
    return s->m == m && (!s->f || s->f == f);
}

static int excluded(const lat_grid *g, const lat_method *m, const lat_form *f)
{
    for (int i = 0; i < g->n_excl; i++)
        if (sel_match(&g->excl[i], m, f))
            return 1;
    return 0;
}

static int over_limit(const lat_grid *g, const lat_method *m, const lat_form *f, int T)
{
    for (int i = 0; i < g->nlimits; i++)
        if (sel_match(&g->limits[i].sel, m, f) && T > g->limits[i].max_T)
            return 1;
    return 0;
}

static int has_harsh(const lat_method *m)
{
    for (int i = 0; i < m->n_inputs; i++)
        if (m->inputs[i].harsh_dist != LAT_DIST_NONE)
            return 1;
    return 0;
}

#define LAT_MAX_TASKS 1000000

static int add_task(lat_task **arr, int *n, int *cap, const lat_task *t)
{
    if (*n >= LAT_MAX_TASKS)
        return -1;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *arr = realloc(*arr, sizeof(lat_task) * (size_t)*cap);
    }
    (*arr)[(*n)++] = *t;
    return 0;
}

int lat_suite_tasks(const lat_suite *s, lat_task **out)
{
    lat_task *arr = NULL;
    int n = 0, cap = 0;
    for (int gi = 0; gi < s->ngrids; gi++) {
        const lat_grid *g = &s->grids[gi];
        /* (method, form) pairs in selection order, each once */
        const lat_method *pm[512];
        const lat_form *pf[512];
        int np = 0;
        for (int i = 0; i < g->n_sel; i++) {
            const lat_method *m = g->sel[i].m;
            for (int fi = 0; fi < m->n_forms; fi++) {
                const lat_form *f = &m->forms[fi];
                if (g->sel[i].f && g->sel[i].f != f)
                    continue;
                if (g->kind == LAT_GRID_DECODE && (!m->decode_form || strcmp(f->name, m->decode_form)))
                    continue; /* decode grids time the decode form only */
                int dup = 0;
                for (int j = 0; j < np; j++)
                    dup |= pm[j] == m && pf[j] == f;
                if (!dup && !excluded(g, m, f) && np < 512) {
                    pm[np] = m;
                    pf[np++] = f;
                }
            }
        }
        int nT = g->kind == LAT_GRID_DECODE ? g->nctx : g->nT;
        for (int di = 0; di < g->nD; di++)
            for (int ti = 0; ti < nT; ti++)
                for (int pi = 0; pi < np; pi++)
                    for (int bi = 0; bi < g->nB; bi++)
                        for (int hi = 0; hi < g->nH; hi++)
                            for (int thi = 0; thi < g->nthreads; thi++)
                                for (int si = 0; si < (g->kind == LAT_GRID_ACCURACY ? g->nsharp : 1); si++)
                                    for (int xi = 0; xi < (g->kind == LAT_GRID_ACCURACY ? g->nharsh : 1); xi++) {
                                        lat_task t;
                                        memset(&t, 0, sizeof t);
                                        t.grid = g;
                                        lat_cell *c = &t.cell;
                                        c->m = pm[pi];
                                        c->f = pf[pi];
                                        lat_shape_defaults(c->m, &c->s);
                                        c->s.B = g->B[bi];
                                        c->s.H = g->H[hi];
                                        c->s.K = c->s.V = g->D[di];
                                        if (c->m->map_dim)
                                            c->m->map_dim(&c->s, g->D[di]);
                                        for (int pass = 0; pass < 2; pass++) {
                                            /* a knob can change the dimension map (based: K = d' =
                                             * features): map again with the knobs set, then put the
                                             * grid's knobs back over what the map derived */
                                            if (pass == 1 && c->m->map_dim)
                                                c->m->map_dim(&c->s, g->D[di]);
                                            for (int k = 0; k < g->nknobs; k++)
                                                if (sel_match(&g->knobs[k].sel, c->m, c->f))
                                                    *(int *)((char *)&c->s + g->knobs[k].knob->offset) =
                                                        g->knobs[k].value;
                                        }
                                        if (g->kind == LAT_GRID_DECODE) {
                                            t.ctx = g->ctx[ti];
                                            c->s.T = 1;
                                            c->s.pos = g->ctx[ti];
                                            c->s.ctx = g->ctx[ti] + 1;
                                        } else {
                                            c->s.T = g->T[ti];
                                        }
                                        if (over_limit(g, c->m, c->f, g->kind == LAT_GRID_DECODE ? t.ctx : c->s.T))
                                            continue;
                                        c->threads = g->threads[thi];
                                        c->seed = g->seed;
                                        c->min_reps = g->reps;
                                        c->min_time_s = g->min_time;
                                        c->warmup_s = 0.02;
                                        c->accuracy = g->accuracy;
                                        t.sharp = g->kind == LAT_GRID_ACCURACY ? g->sharp[si] : 1.0;
                                        c->harsh = g->kind == LAT_GRID_ACCURACY ? g->harsh[xi] : 0;
                                        if (c->harsh && !has_harsh(c->m))
                                            continue; /* same inputs as typical */
                                        if (add_task(&arr, &n, &cap, &t)) {
                                            fprintf(lat_errf(), "%s: %s: the suite expands to more than %d cells\n",
                                                    lat_prog, s->path, LAT_MAX_TASKS);
                                            free(arr);
                                            *out = NULL;
                                            return -1;
                                        }
                                    }
    }
    *out = arr;
    return n;
}

void lat_task_key(const lat_task *t, char *buf, size_t len)
{
    char knobs[256];
    lat_knob_string(t->cell.m, &t->cell.s, knobs, sizeof knobs);
    const lat_cell *c = &t->cell;
    snprintf(buf, len, "%s|%s|%s|%d|%d|%d|%d|%d|%s|%d|%llu|%d|%d|%g", t->grid->name, c->m->name, c->f->name, c->s.B,
             t->grid->kind == LAT_GRID_DECODE ? t->ctx : c->s.T, c->s.H, c->s.K, c->s.V, knobs, c->threads,
             (unsigned long long)c->seed, c->harsh, t->ctx, t->sharp);
}
