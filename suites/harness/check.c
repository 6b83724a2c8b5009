/* check.c — `latbench check`: every form of every method against its fp64
 * reference and against its other forms, on awkward shapes (T ∈ {1, 2, 63,
 * 64, 65, 1000}, K ≠ V, B·H below and above the thread count), with and
 * without an initial state, typical and harsh inputs, at 1 thread and at all
 * threads; decode token by token against prefill; the two fp64 forms against
 * each other. Outputs are NaN-poisoned before every call. One line per case;
 * non-zero exit on any failure. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cell.h"
#include "check.h"

typedef struct {
    int fails, passes, skips;
    const lat_check_opts *o;
} tally;

/* One case: printed (unless passing in --quiet mode) and, with --out, a row of
 * check.csv. cmp says what was compared: "ref" (form vs the fp64 reference),
 * "form:<other>" (vs another form), "decode" (token by token vs the
 * reference prefill), "ref-alt" (the two fp64 forms). */
static void line(tally *t, int pass, const lat_method *m, const char *form, const char *cmp, int thr,
                 const lat_shape *s, int harsh, const lat_err *e, const lat_err *se, double tol)
{
    if (pass)
        t->passes++;
    else
        t->fails++;
    if (t->o->csv) {
        char knobs[256];
        lat_knob_string(m, s, knobs, sizeof knobs);
        fprintf(t->o->csv, "%s,%s,%s,%d,%d,%d,%d,%d,%s,%d,%s,%d,%.4g,%.4g,%.4g,%.4g,%ld,%.0e,%d\n", m->name, form,
                cmp, s->B, s->T, s->H, s->K, s->V, knobs, thr, harsh ? "harsh" : "typical", s->pos, e->rel_rmse,
                e->max_abs, e->worst_row, se ? se->rel_rmse : 0.0, e->nonfinite + (se ? se->nonfinite : 0), tol,
                pass);
    }
    if (pass && t->o->quiet)
        return;
    char what[128];
    if (!strcmp(cmp, "ref"))
        snprintf(what, sizeof what, "%s.%s thr%d", m->name, form, thr);
    else if (!strcmp(cmp, "decode"))
        snprintf(what, sizeof what, "%s.decode(%s)", m->name, form);
    else if (!strcmp(cmp, "ref-alt"))
        snprintf(what, sizeof what, "%s.ref-vs-alt", m->name);
    else
        snprintf(what, sizeof what, "%s.%s=%s", m->name, form, cmp + 5);
    printf("%-28s B%d T%d H%d K%d V%d%s%s  rel_rmse %.2e  max_abs %.2e  worst_row %.2e", what, s->B, s->T, s->H,
           s->K, s->V, harsh ? " harsh" : "", s->pos ? " +state" : "", e->rel_rmse, e->max_abs, e->worst_row);
    if (se)
        printf("  state %.2e", se->rel_rmse);
    if (e->nonfinite || (se && se->nonfinite))
        printf("  non-finite %ld", e->nonfinite + (se ? se->nonfinite : 0));
    printf("  tol %.0e  %s\n", tol, pass ? "PASS" : "FAIL");
    fflush(stdout);
}

static int err_ok(const lat_err *e, double tol)
{
    return e->nonfinite == 0 && (e->rel_rmse <= tol || e->max_abs <= 1e-6);
}

static size_t last_dim(lat_dims_fn f, const lat_shape *s)
{
    size_t d[8];
    int r = f(s, d);
    return d[r - 1];
}

/* fp64 initial state: the reference run over a prefix of `pos` tokens drawn
 * from another seed — always a state the method can really reach. */
static double *prefix_state(const lat_method *m, const lat_shape *s, uint64_t seed, int harsh)
{
    lat_shape ps = *s;
    ps.T = s->pos;
    ps.pos = 0;
    ps.ctx = lat_shape_ctx(s);
    lat_problem pp;
    if (lat_problem_init(&pp, m, &ps, seed + 7777, harsh, 1))
        return NULL;
    double *out = lat_alloc(pp.out_count * sizeof(double));
    double *st = lat_alloc(pp.state_count * sizeof(double));
    m->reference(&ps, (const double *const *)pp.in64, NULL, out, st);
    lat_free(out);
    lat_problem_free(&pp);
    return st;
}

static int has_knob(const lat_method *m, const char *name)
{
    for (int i = 0; i < m->n_knobs; i++)
        if (!strcmp(m->knobs[i].name, name))
            return 1;
    return 0;
}

static void perturb(const lat_check_opts *o, float *x, size_t n)
{
    if (o->perturb != 0 && n)
        x[n / 2] += (float)o->perturb;
}

/* One shape: all forms × thread counts vs the reference, cross-form, decode. */
static void check_shape(tally *t, const lat_method *m, const lat_shape *s, int harsh, uint64_t seed)
{
    const lat_check_opts *o = t->o;
    char why[256];
    if (lat_shape_check(m, s, why, sizeof why) != LAT_OK) {
        t->skips++;
        if (!o->quiet)
            printf("%-28s B%d T%d H%d K%d V%d  unsupported: %s  SKIP\n", m->name, s->B, s->T, s->H, s->K, s->V, why);
        return;
    }
    lat_problem p;
    if (lat_problem_init(&p, m, s, seed, harsh, 1)) {
        t->fails++;
        printf("%s: out of memory generating inputs  FAIL\n", m->name);
        return;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "%s%s", harsh ? " harsh" : "", s->pos ? " +state" : "");
    if (s->pos) {
        p.state_in64 = prefix_state(m, s, seed, harsh);
        p.state_in32 = lat_alloc(p.state_count * sizeof(float));
        for (size_t i = 0; i < p.state_count; i++)
            p.state_in32[i] = (float)p.state_in64[i];
        /* the reference sees the same fp32-rounded state as the forms */
        for (size_t i = 0; i < p.state_count; i++)
            p.state_in64[i] = (double)p.state_in32[i];
    }
    double *ref = lat_alloc(p.out_count * sizeof(double));
    double *ref_state = p.state_count ? lat_alloc(p.state_count * sizeof(double)) : NULL;
    lat_status rs = m->reference(s, (const double *const *)p.in64, p.state_in64, ref, ref_state);
    if (rs != LAT_OK) {
        t->fails++;
        printf("%-28s B%d T%d H%d K%d V%d%s  reference returned %s  FAIL\n", m->name, s->B, s->T, s->H, s->K, s->V,
               extra, lat_status_name(rs));
        goto done;
    }
    size_t orow = last_dim(m->out_dims, s), srow = p.state_count ? last_dim(m->state_dims, s) : 1;

    /* the second fp64 form agrees with the first (validates the spec itself) */
    if (m->reference_alt && s->T <= 512) {
        double *alt = lat_alloc(p.out_count * sizeof(double));
        double *alt_state = p.state_count ? lat_alloc(p.state_count * sizeof(double)) : NULL;
        m->reference_alt(s, (const double *const *)p.in64, p.state_in64, alt, alt_state);
        lat_err e = lat_compare_f64(alt, ref, p.out_count, orow);
        lat_err se = {0};
        if (p.state_count)
            se = lat_compare_f64(alt_state, ref_state, p.state_count, srow);
        line(t, err_ok(&e, 1e-10) && err_ok(&se, 1e-10), m, "reference", "ref-alt", 1, s, harsh, &e,
             p.state_count ? &se : NULL, 1e-10);
        lat_free(alt);
        lat_free(alt_state);
    }

    float *first_out = NULL;
    const char *first_name = NULL;
    int thr[2] = {1, o->max_threads};
    for (int fi = 0; fi < m->n_forms; fi++) {
        const lat_form *f = &m->forms[fi];
        for (int ti = 0; ti < 2; ti++) {
            if (ti == 1 && thr[1] == 1)
                break;
            if (o->max_form_flops > 0 && f->flops && f->flops(s) > o->max_form_flops) {
                t->skips++; /* a quadratic form at T = 65536: covered at T <= 1000 */
                if (!o->quiet)
                    printf("%s.%s B%d T%d: %.3g FLOPs above the long-check budget  SKIP\n", m->name, f->name,
                           s->B, s->T, f->flops(s));
                break;
            }
            lat_problem_buffers(&p, f, thr[ti], 1);
#ifdef _OPENMP
            omp_set_num_threads(thr[ti]);
#endif
            lat_status st = lat_problem_run(&p, f, thr[ti], 1);
            if (st != LAT_OK) {
                lat_err z = {0};
                if (st == LAT_UNSUPPORTED) {
                    t->skips++;
                    if (!o->quiet)
                        printf("%s.%s thr%d B%d T%d H%d K%d V%d%s  unsupported  SKIP\n", m->name, f->name, thr[ti],
                               s->B, s->T, s->H, s->K, s->V, extra);
                } else {
                    z.nonfinite = 1;
                    line(t, 0, m, f->name, "ref", thr[ti], s, harsh, &z, NULL, m->tol_out);
                }
            } else {
                perturb(o, p.out32, p.out_count);
                lat_err e = lat_compare_f32(p.out32, ref, p.out_count, orow);
                lat_err se = {0};
                if (p.state_count)
                    se = lat_compare_f32(p.state_out32, ref_state, p.state_count, srow);
                line(t, err_ok(&e, m->tol_out) && (!p.state_count || err_ok(&se, m->tol_state)), m, f->name, "ref",
                     thr[ti], s, harsh, &e, p.state_count ? &se : NULL, m->tol_out);
                /* cross-form: this form's output against the first form's */
                if (!first_out) {
                    first_out = lat_alloc(p.out_count * sizeof(float));
                    memcpy(first_out, p.out32, p.out_count * sizeof(float));
                    first_name = f->name;
                } else if (ti == 0) {
                    double *a = lat_alloc(p.out_count * sizeof(double));
                    for (size_t i = 0; i < p.out_count; i++)
                        a[i] = first_out[i];
                    lat_err x = lat_compare_f32(p.out32, a, p.out_count, orow);
                    char cmp[96];
                    snprintf(cmp, sizeof cmp, "form:%s", first_name);
                    line(t, err_ok(&x, 2 * m->tol_out), m, f->name, cmp, 1, s, harsh, &x, NULL, 2 * m->tol_out);
                    lat_free(a);
                }
            }
            lat_free(p.out32);
            lat_free(p.state_out32);
            lat_free(p.work);
            p.out32 = NULL;
            p.state_out32 = NULL;
            p.work = NULL;
        }
    }

    /* decode: token by token from the same initial state equals prefill */
    const lat_form *df = m->decode_form ? lat_find_form(m, m->decode_form) : NULL;
    if (df && (s->causal != 0 || !has_knob(m, "causal")) && s->T <= 1000) {
        lat_shape ds = *s;
        ds.T = 1;
        ds.ctx = lat_shape_ctx(s);
        lat_problem d;
        memset(&d, 0, sizeof d);
        d.m = m;
        d.s = ds;
        d.n_in = m->n_inputs;
        d.out_count = lat_dims_count(m->out_dims, &ds);
        d.state_count = p.state_count;
        for (int i = 0; i < m->n_inputs; i++)
            d.in32[i] = lat_alloc(lat_dims_count(m->inputs[i].dims, &ds) * sizeof(float));
        float *state = lat_alloc((p.state_count ? p.state_count : 1) * sizeof(float));
        if (p.state_in32)
            memcpy(state, p.state_in32, p.state_count * sizeof(float));
        else
            memset(state, 0, (p.state_count ? p.state_count : 1) * sizeof(float));
        float *all = lat_alloc(p.out_count * sizeof(float));
        d.s.pos = s->pos + s->T - 1; /* size the workspace for the longest prefix */
        lat_problem_buffers(&d, df, o->max_threads, 0);
        int bad = 0;
        for (int tt = 0; tt < s->T && !bad; tt++) {
            ds.pos = s->pos + tt;
            d.s = ds;
            /* slice token tt of every [B][T][…] input; parameters go whole */
            for (int i = 0; i < m->n_inputs; i++) {
                if (m->inputs[i].whole) {
                    if (tt == 0)
                        memcpy(d.in32[i], p.in32[i], p.in_count[i] * sizeof(float));
                    continue;
                }
                size_t per_b = p.in_count[i] / ((size_t)s->B * (size_t)s->T);
                for (int b = 0; b < s->B; b++)
                    memcpy(d.in32[i] + (size_t)b * per_b, p.in32[i] + ((size_t)b * s->T + (size_t)tt) * per_b,
                           per_b * sizeof(float));
            }
            d.state_in32 = (tt == 0 && !p.state_in32) ? NULL : state;
            d.state_out32 = state;
            lat_status st = lat_problem_run(&d, df, o->max_threads, 1);
            if (st != LAT_OK)
                bad = 1;
            size_t per_b = p.out_count / ((size_t)s->B * (size_t)s->T);
            for (int b = 0; b < s->B; b++)
                memcpy(all + ((size_t)b * s->T + (size_t)tt) * per_b, d.out32 + (size_t)b * per_b,
                       per_b * sizeof(float));
        }
        d.state_in32 = NULL;
        d.state_out32 = NULL;
        lat_err e = lat_compare_f32(all, ref, p.out_count, orow);
        lat_err se = {0};
        if (p.state_count)
            se = lat_compare_f32(state, ref_state, p.state_count, srow);
        if (bad)
            e.nonfinite = 1;
        line(t, err_ok(&e, m->tol_out) && (!p.state_count || err_ok(&se, m->tol_state)), m, df->name, "decode",
             o->max_threads, s, harsh, &e, p.state_count ? &se : NULL, m->tol_out);
        lat_free(all);
        lat_free(state);
        lat_problem_free(&d);
    }
    lat_free(first_out);
done:
    lat_free(ref);
    lat_free(ref_state);
    lat_problem_free(&p);
}

int lat_check_method(const lat_method *m, const lat_check_opts *o, int *fails, int *passes)
{
    tally t = {0, 0, 0, o};
    static const int Ts[] = {1, 2, 63, 64, 65, 1000};
    /* (B, H, D, K≠V): B·H = 1 (below the thread count) and 6 (above it) */
    static const struct { int B, H, D, kv_differ; } bh[] = {{1, 1, 64, 1}, {2, 3, 32, 1}};
    int any_harsh = 0;
    for (int i = 0; i < m->n_inputs; i++)
        any_harsh |= m->inputs[i].harsh_dist != LAT_DIST_NONE;
    int causal_opts = 1; /* methods with a causal knob are checked both ways */
    for (int i = 0; i < m->n_knobs; i++)
        if (strcmp(m->knobs[i].name, "causal") == 0 && m->knobs[i].min == 0 && m->knobs[i].max == 1)
            causal_opts = 2;
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        for (size_t bi = 0; bi < sizeof bh / sizeof bh[0]; bi++) {
            for (int ci = 0; ci < causal_opts; ci++) {
                lat_shape s;
                memset(&s, 0, sizeof s);
                lat_shape_defaults(m, &s);
                s.B = bh[bi].B;
                s.H = bh[bi].H;
                s.T = Ts[ti];
                s.K = s.V = bh[bi].D;
                if (m->map_dim)
                    m->map_dim(&s, bh[bi].D);
                else if (bh[bi].kv_differ)
                    s.V = bi == 0 ? 48 : 64; /* K ≠ V */
                if (causal_opts == 2)
                    s.causal = ci == 0 ? 1 : 0;
                if (ci == 1 && Ts[ti] == 1000)
                    continue; /* non-causal: the short shapes suffice */
                uint64_t seed = o->seed + ti * 31 + bi * 7 + (uint64_t)ci;
                check_shape(&t, m, &s, 0, seed);
                if (m->state_dims && (Ts[ti] == 1 || Ts[ti] == 65)) {
                    lat_shape ss = s;
                    ss.pos = 17; /* continue from a 17-token prefix */
                    check_shape(&t, m, &ss, 0, seed + 1);
                }
                if (any_harsh && Ts[ti] >= 64)
                    check_shape(&t, m, &s, 1, seed + 2);
            }
        }
    }
    *fails += t.fails;
    *passes += t.passes;
    return t.fails;
}

/* Long-sequence robustness: T = 65536 with the harsh inputs must stay finite
 * and within tolerance for every form (the reference is the literal
 * recurrence, affordable for linear-time methods; quadratic methods skip). */
int lat_check_long(const lat_method *m, const lat_check_opts *o, int T, int *fails, int *passes)
{
    lat_check_opts lo = *o;
    lo.max_form_flops = 2e10; /* forms costing more (the T² ones) are skipped */
    o = &lo;
    tally t = {0, 0, 0, o};
    lat_shape s;
    memset(&s, 0, sizeof s);
    lat_shape_defaults(m, &s);
    s.B = 1;
    s.H = 2;
    s.T = T;
    s.K = s.V = 64;
    if (m->map_dim)
        m->map_dim(&s, 64);
    int harsh = 0;
    for (int i = 0; i < m->n_inputs; i++)
        harsh |= m->inputs[i].harsh_dist != LAT_DIST_NONE;
    check_shape(&t, m, &s, harsh, o->seed + 99);
    *fails += t.fails;
    *passes += t.passes;
    return t.fails;
}
