/* inputs.c — a cell's buffers: inputs drawn from the descriptor's value
 * distributions (deterministic from the seed, one RNG stream per input),
 * fp64 copies holding the same fp32-rounded values (so the reference and the
 * fp32 form compute the same function on the same numbers), and the output,
 * state and workspace buffers of a form. */
#include <math.h>
#include <string.h>

#include "harness.h"

static double apply_dist(lat_dist d, double a, double b, double c, double x, lat_rng *r)
{
    switch (d) {
    case LAT_DIST_NORMAL:
    case LAT_DIST_UNIT_NORMAL: return a * x + b;
    case LAT_DIST_UNIFORM: return a + (b - a) * lat_rng_uniform(r);
    case LAT_DIST_LOGSIGMOID: {
        double z = a * x + b;
        double ls = z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z));
        return ls / (c != 0 ? c : 1.0);
    }
    case LAT_DIST_SIGMOID: {
        double z = a * x + b;
        return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
    }
    case LAT_DIST_SOFTPLUS: {
        double z = a * x + b;
        return z > 20 ? z : log1p(exp(z));
    }
    case LAT_DIST_CONST: return a;
    case LAT_DIST_NONE:
    case LAT_DIST_CUSTOM: break;
    }
    return 0.0;
}

/* Fill x with input `in`'s distribution. */
static void generate(const lat_input *in, const lat_shape *s, double *x, size_t count, lat_rng *r,
                     int harsh)
{
    lat_dist d = in->dist;
    double a = in->a, b = in->b, c = in->c;
    if (harsh && in->harsh_dist != LAT_DIST_NONE) {
        d = in->harsh_dist;
        a = in->ha;
        b = in->hb;
        c = in->hc;
    }
    if (d == LAT_DIST_CUSTOM) {
        in->custom(x, count, s, r, harsh);
        return;
    }
    for (size_t i = 0; i < count; i++)
        x[i] = apply_dist(d, a, b, c, d == LAT_DIST_UNIFORM ? 0.0 : lat_rng_normal(r), r);
    if (d == LAT_DIST_UNIT_NORMAL) { /* L2-normalize each last-dim row */
        size_t dims[8];
        int rank = in->dims(s, dims);
        size_t row = dims[rank - 1];
        for (size_t i = 0; i < count; i += row) {
            double n2 = 0;
            for (size_t j = 0; j < row; j++)
                n2 += x[i + j] * x[i + j];
            double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0.0;
            for (size_t j = 0; j < row; j++)
                x[i + j] *= inv;
        }
    }
}

/* Values are drawn in blocks of whole last-dim rows so that, without fp64
 * copies, no full-size double staging buffer inflates the cell's memory;
 * the stream (and so every value) is the same either way. */
static int fill_input(const lat_input *in, const lat_shape *s, float *x32, double *x64, size_t n,
                      uint64_t seed, int harsh)
{
    lat_rng r;
    lat_rng_seed(&r, seed);
    size_t dims[8];
    int rank = in->dims(s, dims);
    size_t row = rank ? dims[rank - 1] : 1;
    size_t block = in->dist == LAT_DIST_CUSTOM ? n : row * ((65536 + row - 1) / row);
    if (block > n)
        block = n;
    double *tmp = x64 ? x64 : lat_alloc((block ? block : 1) * sizeof(double));
    if (!tmp)
        return -1;
    for (size_t off = 0; off < n; off += block) {
        size_t cnt = n - off < block ? n - off : block;
        double *t = x64 ? x64 + off : tmp;
        generate(in, s, t, cnt, &r, harsh);
        for (size_t j = 0; j < cnt; j++) {
            x32[off + j] = (float)t[j];
            t[j] = (double)x32[off + j];
        }
    }
    if (!x64)
        lat_free(tmp);
    return 0;
}

int lat_problem_init(lat_problem *p, const lat_method *m, const lat_shape *s, uint64_t seed,
                     int harsh, int with64)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    p->s = *s;
    p->n_in = m->n_inputs;
    for (int i = 0; i < m->n_inputs; i++) {
        size_t n = lat_dims_count(m->inputs[i].dims, s);
        p->in_count[i] = n;
        p->in32[i] = lat_alloc(n * sizeof(float));
        if (with64)
            p->in64[i] = lat_alloc(n * sizeof(double));
        if (!p->in32[i] || (with64 && !p->in64[i]))
            return -1;
        uint64_t sub = seed * 1000003ull + (uint64_t)i * 7919ull + 1;
        if (fill_input(&m->inputs[i], s, p->in32[i], p->in64[i], n, sub, harsh))
            return -1;
    }
    p->out_count = lat_dims_count(m->out_dims, s);
    p->state_count = m->state_dims ? lat_dims_count(m->state_dims, s) : 0;
    return 0;
}

int lat_problem_buffers(lat_problem *p, const lat_form *f, int nthreads, int want_state)
{
    p->out32 = lat_alloc(p->out_count * sizeof(float));
    if (!p->out32)
        return -1;
    if (want_state && p->state_count) {
        p->state_out32 = lat_alloc(p->state_count * sizeof(float));
        if (!p->state_out32)
            return -1;
    }
    p->work_bytes = f->workspace ? f->workspace(&p->s, nthreads) : 0;
    if (p->work_bytes) {
        p->work = lat_alloc(p->work_bytes);
        if (!p->work)
            return -1;
    }
    return 0;
}

void lat_problem_free(lat_problem *p)
{
    for (int i = 0; i < p->n_in; i++) {
        lat_free(p->in32[i]);
        lat_free(p->in64[i]);
    }
    lat_free(p->out32);
    lat_free(p->state_in32);
    lat_free(p->state_in64);
    lat_free(p->state_out32);
    lat_free(p->work);
    memset(p, 0, sizeof *p);
}

double lat_problem_estimate(const lat_method *m, const lat_shape *s, const lat_form *f, int nthreads,
                            int with_reference)
{
    double in = 0;
    for (int i = 0; i < m->n_inputs; i++)
        in += (double)lat_dims_count(m->inputs[i].dims, s);
    double out = (double)lat_dims_count(m->out_dims, s);
    double st = m->state_dims ? (double)lat_dims_count(m->state_dims, s) : 0;
    double bytes = 4 * (in + out + 2 * st); /* fp32 inputs, output, state in/out */
    bytes += 8 * in;                         /* fp64 staging during generation */
    if (f && f->workspace)
        bytes += (double)f->workspace(s, nthreads);
    if (with_reference)
        bytes += 8 * (in + out + 2 * st); /* fp64 reference buffers */
    return bytes;
}

lat_status lat_problem_run(lat_problem *p, const lat_form *f, int nthreads, int want_state)
{
    lat_fill_nan(p->out32, p->out_count);
    if (want_state && p->state_out32 && p->state_out32 != p->state_in32)
        lat_fill_nan(p->state_out32, p->state_count);
    if (p->work)
        lat_fill_nan((float *)p->work, p->work_bytes / sizeof(float));
    return lat_problem_call(p, f, nthreads, want_state);
}

lat_status lat_problem_call(lat_problem *p, const lat_form *f, int nthreads, int want_state)
{
    lat_args a = {
        .shape = &p->s,
        .in = (const float *const *)p->in32,
        .state_in = p->state_in32,
        .out = p->out32,
        .state_out = want_state ? p->state_out32 : NULL,
        .work = p->work,
        .work_bytes = p->work_bytes,
        .nthreads = nthreads,
    };
    return f->run(&a);
}

void lat_problem_sharpen(lat_problem *p, double factor)
{
    if (factor == 1.0)
        return;
    for (int i = 0; i < p->n_in; i++) {
        if (!p->m->inputs[i].sharpen)
            continue;
        for (size_t j = 0; j < p->in_count[i]; j++) {
            p->in32[i][j] = (float)((double)p->in32[i][j] * factor);
            if (p->in64[i])
                p->in64[i][j] = (double)p->in32[i][j];
        }
    }
}

int lat_problem_redraw(lat_problem *p, uint64_t seed, int draw, int harsh)
{
    for (int i = 0; i < p->n_in; i++) {
        if (!p->m->inputs[i].redraw)
            continue;
        uint64_t sub = seed * 1000003ull + (uint64_t)i * 7919ull + 1 + (uint64_t)draw * 0x5851F42D4C957F2Dull;
        if (fill_input(&p->m->inputs[i], &p->s, p->in32[i], p->in64[i], p->in_count[i], sub, harsh))
            return -1;
    }
    return 0;
}
