/* unit.c — unit tests of the harness pieces: statistics, NPY writer read
 * back, CSV schema, RNG determinism, registry consistency, metrics, the vector
 * exp. Prints one line per test and "N passed, N failed"; exit 1 on failure. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../impls/common/lat_vec.h"
#include "../suites/harness/cell.h"
#include "../suites/harness/harness.h"

static int passed, failed;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            passed++;                                      \
        } else {                                           \
            failed++;                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
            printf(__VA_ARGS__);                           \
            printf("\n");                                  \
        }                                                  \
    } while (0)

static void test_stats(void)
{
    double x[] = {5, 1, 4, 2, 3};
    lat_stats s = lat_stats_compute(x, 5);
    CHECK(s.median == 3 && s.min == 1 && s.max == 5, "median/min/max %g %g %g", s.median, s.min, s.max);
    CHECK(fabs(s.p20 - 1.8) < 1e-12 && fabs(s.p80 - 4.2) < 1e-12, "p20 %g p80 %g", s.p20, s.p80);
    CHECK(fabs(s.mean - 3) < 1e-12 && fabs(s.std - sqrt(2.5)) < 1e-12, "mean %g std %g", s.mean, s.std);
    double y[] = {10, 11, 9, 10.5, 9.5, 10, 11, 9, 10.2, 100};
    lat_stats t = lat_stats_compute(y, 10);
    CHECK(t.outliers == 1, "outlier detection: median %g outliers %d", t.median, t.outliers);
    double z[] = {7};
    lat_stats u = lat_stats_compute(z, 1);
    CHECK(u.median == 7 && u.std == 0 && u.cv == 0, "single sample");
    printf("stats: ok\n");
}

static void test_rng(void)
{
    lat_rng a, b;
    lat_rng_seed(&a, 42);
    lat_rng_seed(&b, 42);
    int same = 1;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 200000; i++) {
        double x = lat_rng_normal(&a), y = lat_rng_normal(&b);
        same &= x == y;
        sum += x;
        sum2 += x * x;
    }
    CHECK(same, "same seed gives the same stream");
    double mean = sum / 200000, var = sum2 / 200000 - mean * mean;
    CHECK(fabs(mean) < 0.01 && fabs(var - 1) < 0.02, "normal moments mean %g var %g", mean, var);
    lat_rng_seed(&b, 43);
    lat_rng_seed(&a, 42);
    CHECK(lat_rng_u64(&a) != lat_rng_u64(&b), "different seeds differ");
    /* problem inputs: bit-identical across calls (and so across thread counts:
     * generation is sequential) and equal with or without fp64 copies */
    const lat_method *m = lat_method_at(0);
    lat_shape s;
    memset(&s, 0, sizeof s);
    lat_shape_defaults(m, &s);
    s.B = 2;
    s.T = 70000;
    s.H = 1;
    s.K = s.V = 4;
    lat_problem p, q;
    lat_problem_init(&p, m, &s, 7, 0, 0);
    lat_problem_init(&q, m, &s, 7, 0, 1);
    int eq = 1;
    for (int i = 0; i < m->n_inputs; i++)
        eq &= memcmp(p.in32[i], q.in32[i], p.in_count[i] * sizeof(float)) == 0;
    for (size_t j = 0; j < q.in_count[0]; j++)
        eq &= q.in64[0][j] == (double)q.in32[0][j];
    CHECK(eq, "inputs identical with and without fp64 copies, fp64 = fp32-rounded");
    lat_problem_free(&p);
    lat_problem_free(&q);
    printf("rng: ok\n");
}

static void test_npy(void)
{
    char dir[] = "/tmp/latbench-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/x.npy", dir);
    float x[2 * 3 * 5];
    for (int i = 0; i < 30; i++)
        x[i] = (float)i * 0.5f - 3.0f;
    size_t dims[3] = {2, 3, 5};
    CHECK(lat_npy_write(path, x, 0, dims, 3) == 0, "npy write");
    int f64 = -1, rank = 0;
    size_t d[8];
    float *y = lat_npy_read(path, &f64, d, &rank);
    CHECK(y && !f64 && rank == 3 && d[0] == 2 && d[1] == 3 && d[2] == 5, "npy header read back");
    CHECK(y && memcmp(x, y, sizeof x) == 0, "npy data read back");
    free(y);
    /* header length is a multiple of 64 (npy format rule) */
    FILE *f = fopen(path, "rb");
    unsigned char h[10];
    CHECK(fread(h, 1, 10, f) == 10 && (10 + (h[8] | h[9] << 8)) % 64 == 0, "npy header alignment");
    fclose(f);
    double z[4] = {1, 2, 3, 4};
    size_t d1[1] = {4};
    snprintf(path, sizeof path, "%s/z.npy", dir);
    CHECK(lat_npy_write(path, z, 1, d1, 1) == 0, "npy f64 write");
    double *w = lat_npy_read(path, &f64, d, &rank);
    CHECK(w && f64 && rank == 1 && d[0] == 4 && w[3] == 4, "npy f64 rank-1 read back");
    free(w);
    unlink(path);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    unlink(path);
    rmdir(dir);
    printf("npy: ok\n");
}

static int count_fields(const char *line)
{
    int n = 1;
    for (const char *p = line; *p && *p != '\n'; p++)
        n += *p == ',';
    return n;
}

static void test_csv(void)
{
    char dir[] = "/tmp/latbench-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/bench.csv", dir);
    lat_cell c;
    memset(&c, 0, sizeof c);
    c.m = lat_method_at(0);
    c.f = &c.m->forms[0];
    lat_shape_defaults(c.m, &c.s);
    c.s.B = 1;
    c.s.T = 8;
    c.s.H = 2;
    c.s.K = c.s.V = 16;
    c.threads = 1;
    lat_result r;
    memset(&r, 0, sizeof r);
    strcpy(r.state, "ok");
    strcpy(r.reason, "has, a comma\nand newline");
    r.t.n = 5;
    r.t.median = 1000;
    CHECK(lat_bench_append(path, "run1", &c, &r) == 0, "append 1");
    CHECK(lat_bench_append(path, "run1", &c, &r) == 0, "append 2");
    FILE *f = fopen(path, "r");
    char line[8192];
    int nlines = 0, hdr_fields = 0, ok = 1;
    while (fgets(line, sizeof line, f)) {
        if (nlines == 0) {
            hdr_fields = count_fields(line);
            ok &= strncmp(line, "schema_version,run_id,grid,method,form", 38) == 0;
        } else {
            ok &= count_fields(line) == hdr_fields;
            ok &= line[strlen(line) - 1] == '\n';
        }
        nlines++;
    }
    fclose(f);
    CHECK(nlines == 3, "one header and two rows (got %d lines)", nlines);
    CHECK(ok, "every row has the header's %d fields and ends in a newline", hdr_fields);
    CHECK(count_fields(lat_bench_header()) == hdr_fields, "header field count");
    unlink(path);
    rmdir(dir);
    printf("csv: ok\n");
}

static void test_registry(void)
{
    int n = lat_method_count();
    CHECK(n >= 3, "at least the three foundation methods (%d)", n);
    for (int i = 0; i < n; i++) {
        const lat_method *m = lat_method_at(i);
        CHECK(lat_find_method(m->name) == m, "find %s", m->name);
        CHECK(m->reference && m->n_forms > 0 && m->out_dims && m->n_inputs > 0, "%s descriptor complete", m->name);
        CHECK(m->paper && m->summary && m->family, "%s has paper, summary, family", m->name);
        CHECK(m->tol_out > 0 && m->tol_out <= 1e-2, "%s tolerance sane (%g)", m->name, m->tol_out);
        CHECK(m->tol_out <= 1e-5 || m->tol_note, "%s: tolerance %g looser than 1e-5 needs a tol_note", m->name,
              m->tol_out);
        for (int f = 0; f < m->n_forms; f++) {
            CHECK(m->forms[f].run && m->forms[f].flops, "%s.%s has run and flops", m->name, m->forms[f].name);
            CHECK(lat_find_form(m, m->forms[f].name) == &m->forms[f], "find form");
        }
        if (m->decode_form)
            CHECK(lat_find_form(m, m->decode_form) != NULL, "%s decode form exists", m->name);
        for (int j = i + 1; j < n; j++)
            CHECK(strcmp(m->name, lat_method_at(j)->name) != 0, "duplicate name %s", m->name);
    }
    CHECK(lat_find_method("no-such-method") == NULL, "unknown method");
    printf("registry: ok\n");
}

static void test_metrics(void)
{
    double ref[4] = {1, 2, 3, 4};
    float got[4] = {1, 2, 3, 4};
    lat_err e = lat_compare_f32(got, ref, 4, 2);
    CHECK(e.rel_rmse == 0 && e.max_abs == 0 && e.nonfinite == 0, "exact");
    got[3] = 5;
    e = lat_compare_f32(got, ref, 4, 2);
    CHECK(fabs(e.rel_rmse - 1 / sqrt(30.0)) < 1e-12 && e.max_abs == 1, "rel_rmse %g", e.rel_rmse);
    CHECK(fabs(e.worst_row - 1 / 5.0) < 1e-12, "worst row %g", e.worst_row);
    got[0] = NAN;
    e = lat_compare_f32(got, ref, 4, 2);
    CHECK(e.nonfinite == 1, "NaN counted");
    printf("metrics: ok\n");
}

static void test_exp(void)
{
    double worst = 0;
    for (float x = -87.0f; x < 88.5f; x += 0.0137f) {
        float y = lat_expf(x);
        double r = exp((double)x);
        double rel = fabs(y - r) / r;
        if (rel > worst)
            worst = rel;
    }
    CHECK(worst < 5e-7, "scalar exp max rel error %g", worst);
    float xs[37], ys[37];
    for (int i = 0; i < 37; i++)
        xs[i] = -90.0f + 5.0f * i;
    xs[0] = -INFINITY;
    lat_vec_exp(ys, xs, 37);
    int ok = ys[0] == 0.0f;
    for (int i = 1; i < 37; i++) {
        double r = exp((double)xs[i]);
        ok &= r > 3.4028234663852886e38 ? isinf(ys[i]) : (r < 1e-38 ? ys[i] < 1e-37 : fabs(ys[i] - r) / r < 5e-7);
    }
    CHECK(ok, "vector exp agrees with libm, -inf → 0, overflow → inf");
    printf("exp: ok\n");
}

int main(void)
{
    test_stats();
    test_rng();
    test_npy();
    test_csv();
    test_registry();
    test_metrics();
    test_exp();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
