/* mqar_ref.c — published MQAR points (spec B.2) against a run's own results;
 * see mqar_ref.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqar_ref.h"
#include "table.h"

enum { R_ID, R_SOURCE, R_MODEL, R_METHOD, R_TIER, R_L, R_PAIRS, R_D, R_MATCH, R_STATE, R_ACC, R_TOL, R_NCOL };
static const char *const k_cols[R_NCOL] = {"id", "source", "model",       "method", "tier", "L",
                                           "pairs", "D",    "match", "state_bytes", "acc", "tol"};

typedef struct {
    char *f[R_NCOL];
    int line;
} ref_row;

/* Splits s in place at tabs into at most max fields; returns the count. */
static int split_tabs(char *s, char **f, int max)
{
    int n = 0;
    for (;;) {
        if (n == max)
            return max + 1;
        f[n++] = s;
        char *t = strchr(s, '\t');
        if (!t)
            return n;
        *t = 0;
        s = t + 1;
    }
}

static int load_refs(const char *path, ref_row **out, char **buf_out, FILE *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (err)
            fprintf(err, "claims: cannot read %s (the MQAR reference points)\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(fp);
    if (!buf)
        return -1;
    buf[len] = 0;
    int n = 0, ncap = 64, header = 0, lineno = 0, idx[R_NCOL];
    ref_row *rows = malloc(sizeof *rows * (size_t)ncap);
    for (char *line = buf, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = 0;
        if (!l || line[0] == '#')
            continue;
        char *f[R_NCOL + 1];
        int nf = split_tabs(line, f, R_NCOL);
        if (!header) {
            for (int c = 0; c < R_NCOL; c++) {
                idx[c] = -1;
                for (int k = 0; k < nf && k < R_NCOL; k++)
                    if (!strcmp(f[k], k_cols[c]))
                        idx[c] = k;
                if (idx[c] < 0) {
                    if (err)
                        fprintf(err, "%s:%d: the header has no column '%s'\n", path, lineno, k_cols[c]);
                    free(rows), free(buf);
                    return -1;
                }
            }
            header = 1;
            continue;
        }
        if (nf != R_NCOL) {
            if (err)
                fprintf(err, "%s:%d: %d fields, expected %d (tab-separated)\n", path, lineno,
                        nf > R_NCOL ? R_NCOL + 1 : nf, R_NCOL);
            free(rows), free(buf);
            return -1;
        }
        if (n == ncap)
            rows = realloc(rows, sizeof *rows * (size_t)(ncap *= 2));
        for (int c = 0; c < R_NCOL; c++)
            rows[n].f[c] = f[idx[c]];
        rows[n].line = lineno;
        char *end;
        double acc = strtod(rows[n].f[R_ACC], &end), tol = strtod(rows[n].f[R_TOL], &end);
        if (!(acc >= 0 && acc <= 1) || !(tol >= 0 && tol < 1)) {
            if (err)
                fprintf(err, "%s:%d: acc and tol must be numbers in [0, 1]\n", path, lineno);
            free(rows), free(buf);
            return -1;
        }
        n++;
    }
    *out = rows;
    *buf_out = buf;
    return n;
}

/* Is summary row i an MQAR row of the reference's mixer in tier (and, for a
 * per-slice point, of its test slice)? */
static int row_of(const lat_table *s, int i, const char *tier, const ref_row *r)
{
    if (strcmp(lat_table_get(s, i, "task"), "mqar") || strcmp(lat_table_get(s, i, "tier"), tier) ||
        strcmp(lat_table_get(s, i, "method"), r->f[R_METHOD]))
        return 0;
    return !strcmp(r->f[R_L], "-") ||
           (lat_table_num(s, i, "L") == atof(r->f[R_L]) && lat_table_num(s, i, "pairs") == atof(r->f[R_PAIRS]));
}

/* The first tier of the row's list that has rows of the method (and slice). */
static int pick_tier(const lat_table *s, const ref_row *r, char *tier, size_t len)
{
    char list[128];
    snprintf(list, sizeof list, "%s", r->f[R_TIER]);
    for (char *p = list, *e; p; p = e) {
        e = strchr(p, '|');
        if (e)
            *e++ = 0;
        for (int i = 0; i < s->nrow; i++)
            if (row_of(s, i, p, r)) {
                snprintf(tier, len, "%s", p);
                return 1;
            }
    }
    return 0;
}

typedef struct {
    int verdict;
    double ours, sd, state;
    int n_seeds;
    char size[200], why[300];
} ref_result;

static void compare(const lat_table *s, const ref_row *r, ref_result *o)
{
    memset(o, 0, sizeof *o);
    o->verdict = LAT_REF_NC;
    o->ours = NAN;
    if (!strcmp(r->f[R_METHOD], "-")) {
        snprintf(o->why, sizeof o->why, "latbench has no %s mixer", r->f[R_MODEL]);
        return;
    }
    char tier[128];
    int slice = strcmp(r->f[R_L], "-") != 0;
    if (!pick_tier(s, r, tier, sizeof tier)) {
        if (slice)
            snprintf(o->why, sizeof o->why, "no %s run tested on (L %s, %s pairs) in tier %s", r->f[R_METHOD],
                     r->f[R_L], r->f[R_PAIRS], r->f[R_TIER]);
        else
            snprintf(o->why, sizeof o->why, "no %s run in tier %s", r->f[R_METHOD], r->f[R_TIER]);
        return;
    }
    double want_state = atof(r->f[R_STATE]);
    int by_size = !strncmp(r->f[R_MATCH], "size=", 5);
    double want_size = by_size ? atof(r->f[R_MATCH] + 5) : 0;
    /* Candidate rows: the method's rows in the tier; for a slice point that
     * slice; for an overall point the row of the largest L (state bytes of
     * attention grow with L; the fixed-state mixers' do not). */
    int best = -1;
    double best_d = INFINITY, near_state = NAN;
    char near_size[64] = "";
    for (int i = 0; i < s->nrow; i++) {
        if (!row_of(s, i, tier, r))
            continue;
        double size = lat_table_num(s, i, "size"), st = lat_table_num(s, i, "state_bytes");
        double d;
        if (by_size)
            d = size == want_size ? -lat_table_num(s, i, "L") : INFINITY;
        else
            d = fabs(log(st / want_state)) - 1e-9 * lat_table_num(s, i, "L");
        if (!(d < best_d))
            continue;
        best_d = d, best = i;
        near_state = st;
        snprintf(near_size, sizeof near_size, "%s=%s", lat_table_get(s, i, "size_knob"),
                 lat_table_get(s, i, "size"));
    }
    if (best < 0) {
        snprintf(o->why, sizeof o->why, "no %s run with %s = %s in tier %s", r->f[R_METHOD],
                 by_size ? "its size knob" : "a state", by_size ? r->f[R_MATCH] + 5 : r->f[R_STATE], tier);
        return;
    }
    if (!by_size && best_d > log(2.0) + 1e-9) {
        snprintf(o->why, sizeof o->why, "our nearest %s state is %.3g bytes (%s), more than 2× away",
                 r->f[R_METHOD], near_state, near_size);
        return;
    }
    o->ours = slice ? lat_table_num(s, best, "acc_mean") : lat_table_num(s, best, "acc_all_mean");
    o->sd = slice ? lat_table_num(s, best, "acc_sd") : NAN;
    o->n_seeds = (int)lat_table_num(s, best, "n_seeds");
    o->state = near_state;
    snprintf(o->size, sizeof o->size, "%s, %s", tier, near_size);
    if (!isfinite(o->ours)) {
        snprintf(o->why, sizeof o->why, "our %s accuracy is missing", r->f[R_METHOD]);
        return;
    }
    double tol = atof(r->f[R_TOL]), pub = atof(r->f[R_ACC]);
    o->verdict = fabs(o->ours - pub) <= tol + 1e-12 ? LAT_REF_AGREES : LAT_REF_DIFFERS;
}

int lat_mqar_refpoints(FILE *f, const char *run_dir, const char *refs_tsv, int counts[3], FILE *err)
{
    int cnt[3] = {0, 0, 0};
    if (counts)
        memcpy(counts, cnt, sizeof cnt);
    char path[4200];
    snprintf(path, sizeof path, "%s/mqar_summary.csv", run_dir);
    lat_table s;
    if (lat_table_load(path, &s) != 0 || s.nrow == 0) {
        lat_table_free(&s);
        return 0;
    }
    ref_row *rows = NULL;
    char *buf = NULL;
    int n = load_refs(refs_tsv, &rows, &buf, err);
    if (n < 0) {
        lat_table_free(&s);
        return -1;
    }
    ref_result *res = calloc((size_t)n + 1, sizeof *res);
    for (int i = 0; i < n; i++) {
        compare(&s, &rows[i], &res[i]);
        cnt[res[i].verdict]++;
    }
    fprintf(f, "\n## MQAR: published reference points (spec B.2)\n\n");
    fprintf(f, "%d published points from `%s`: %d agree within the figure's read-off tolerance, %d differ, "
               "%d not comparable here.\n\n", n, refs_tsv, cnt[0], cnt[1], cnt[2]);
    fprintf(f, "Ours: this run's `mqar_summary.csv` (best LR per mixer and size, mean over seeds). Our "
               "setting is B.6's, sized for 2 cores: V 1024 (the papers: 8192), D 64, 2000–2500 steps × 64; "
               "the core tier trains on (128, 8) alone, the trade-off tier on the mixture (64, 4), (128, 8), "
               "(256, 16) and its overall accuracy is the mean over the test slices (64, 4) … (512, 128) "
               "(the README figure: 7 slices up to (1024, 256)). Fig. 2 columns D = 128…512 need wider "
               "models than B.6's and are not run. State bytes: Zoology formulas (fp32).\n\n");
    fprintf(f, "| id | model — source | published | ours (tier, size) | our state bytes | Δ | verdict |\n");
    fprintf(f, "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const ref_row *r = &rows[i];
        const ref_result *o = &res[i];
        char pub[96], ours[128], st[32], dl[32];
        if (strcmp(r->f[R_L], "-"))
            snprintf(pub, sizeof pub, "%s on (%s, %s), D %s", r->f[R_ACC], r->f[R_L], r->f[R_PAIRS], r->f[R_D]);
        else
            snprintf(pub, sizeof pub, "%s @ %s bytes, D %s", r->f[R_ACC], r->f[R_STATE], r->f[R_D]);
        if (isfinite(o->ours)) {
            if (isfinite(o->sd) && o->n_seeds > 1)
                snprintf(ours, sizeof ours, "%.3f ± %.3f (%s; %d seeds)", o->ours, o->sd, o->size, o->n_seeds);
            else
                snprintf(ours, sizeof ours, "%.3f (%s)", o->ours, o->size);
            snprintf(st, sizeof st, "%.3g", o->state);
            snprintf(dl, sizeof dl, "%+.3f", o->ours - atof(r->f[R_ACC]));
        } else {
            snprintf(ours, sizeof ours, "—");
            snprintf(st, sizeof st, "—");
            snprintf(dl, sizeof dl, "—");
        }
        const char *src = !strcmp(r->f[R_SOURCE], "zoo-fig2") ? "Zoology Fig. 2"
                          : !strcmp(r->f[R_SOURCE], "zoo-readme") ? "Zoology README trade-off figure"
                                                                   : r->f[R_SOURCE];
        char verdict[260];
        if (o->verdict == LAT_REF_AGREES)
            snprintf(verdict, sizeof verdict, "agrees (±%s)", r->f[R_TOL]);
        else if (o->verdict == LAT_REF_DIFFERS)
            snprintf(verdict, sizeof verdict, "differs by %s (tolerance ±%s)", dl, r->f[R_TOL]);
        else
            snprintf(verdict, sizeof verdict, "not comparable: %s", o->why);
        fprintf(f, "| %s | %s — %s | %s | %s | %s | %s | %s |\n", r->f[R_ID], r->f[R_MODEL], src, pub, ours, st,
                dl, verdict);
    }
    free(res);
    free(rows);
    free(buf);
    lat_table_free(&s);
    if (counts)
        memcpy(counts, cnt, sizeof cnt);
    return n;
}
