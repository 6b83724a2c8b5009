/* mq_registry.c — the mixer registry (mixers.def), config defaults, and the
 * finite-difference gradient check every mixer must pass (make test). */
#include "mq.h"
#include "mq_ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const mq_mixer *const mq_mixers[] = {
#define MQ_MIXER(name) &mq_mixer_##name,
#include "mixers.def"
#undef MQ_MIXER
    NULL
};
const int mq_n_mixers = (int)(sizeof mq_mixers / sizeof mq_mixers[0]) - 1;

const mq_mixer *mq_find_mixer(const char *name)
{
    for (int i = 0; i < mq_n_mixers; i++)
        if (strcmp(mq_mixers[i]->name, name) == 0) return mq_mixers[i];
    return NULL;
}

mq_cfg mq_cfg_default(void)
{
    mq_cfg c = { .D = 64, .H = 1, .dk = 64, .feat = 16, .window = 64, .n_state = 16, .expand = 2 };
    return c;
}

int mq_cfg_set_size(const mq_mixer *m, mq_cfg *c, int v)
{
    const char *k = m->size_knob;
    if (!strcmp(k, "dk")) c->dk = v;
    else if (!strcmp(k, "feat")) c->feat = v;
    else if (!strcmp(k, "window")) c->window = v;
    else if (!strcmp(k, "n_state")) c->n_state = v;
    else if (!strcmp(k, "D")) c->D = v;
    else return -1;
    return 0;
}

/* 4th-order central difference: truncation error O(h⁴), so a correct
 * backward lands near 1e-11, far from the 1e-6 limit */
static double fd4(double lp, double lm, double lp2, double lm2, double h)
{
    return (8 * (lp - lm) - (lp2 - lm2)) / (12 * h);
}

static double loss_of(const mq_mixer *m, const mq_cfg *c, const double *p, int L,
                      const double *x, const double *dy, double *y)
{
    m->forward(c, p, L, x, y, NULL);
    double s = 0;
    for (size_t i = 0; i < (size_t)L * c->D; i++) s += y[i] * dy[i];
    return s;
}

double mq_gradcheck_mixer(const mq_mixer *m, const mq_cfg *c, int L, uint64_t seed,
                          int max_params, char *why, size_t why_len)
{
    uint64_t rng = seed;
    size_t np = m->n_params(c), nx = (size_t)L * c->D;
    double *p = calloc(np, sizeof *p), *dp = calloc(np, sizeof *dp);
    double *x = malloc(nx * sizeof *x), *dx = malloc(nx * sizeof *dx);
    double *dy = malloc(nx * sizeof *dy), *y = malloc(nx * sizeof *y);
    double *cache = malloc((m->cache_doubles(c, L) + 1) * sizeof *cache);
    if (!p || !dp || !x || !dx || !dy || !y || !cache) {
        snprintf(why, why_len, "out of memory");
        free(p); free(dp); free(x); free(dx); free(dy); free(y); free(cache);
        return INFINITY;
    }
    m->init(c, p, &rng);
    for (size_t i = 0; i < np; i++) p[i] += 0.05 * mq_rng_normal(&rng);  /* break symmetric points */
    mq_fill_normal(x, nx, 1.0, &rng);
    mq_fill_normal(dy, nx, 1.0, &rng);

    m->forward(c, p, L, x, y, cache);
    m->backward(c, p, L, x, cache, dy, dx, dp);

    const double h = 1e-4;
    double worst = 0;
    /* parameters */
    double num = 0, den = 0; size_t worst_i = 0;
    size_t n_check = (max_params > 0 && np > (size_t)max_params) ? (size_t)max_params : np;
    for (size_t j = 0; j < n_check; j++) {
        size_t i = n_check == np ? j : (size_t)(mq_rng_next(&rng) % np);
        double save = p[i];
        p[i] = save + h; double lp = loss_of(m, c, p, L, x, dy, y);
        p[i] = save - h; double lm = loss_of(m, c, p, L, x, dy, y);
        p[i] = save + 2 * h; double lp2 = loss_of(m, c, p, L, x, dy, y);
        p[i] = save - 2 * h; double lm2 = loss_of(m, c, p, L, x, dy, y);
        p[i] = save;
        double fd = fd4(lp, lm, lp2, lm2, h), e = fabs(fd - dp[i]);
        if (e > num) { num = e; worst_i = i; }
        if (fabs(fd) > den) den = fabs(fd);
    }
    double ep = num / (den > 1e-8 ? den : 1e-8);
    /* inputs */
    double nx_num = 0, nx_den = 0; size_t worst_x = 0;
    for (size_t i = 0; i < nx; i++) {
        double save = x[i];
        x[i] = save + h; double lp = loss_of(m, c, p, L, x, dy, y);
        x[i] = save - h; double lm = loss_of(m, c, p, L, x, dy, y);
        x[i] = save + 2 * h; double lp2 = loss_of(m, c, p, L, x, dy, y);
        x[i] = save - 2 * h; double lm2 = loss_of(m, c, p, L, x, dy, y);
        x[i] = save;
        double fd = fd4(lp, lm, lp2, lm2, h), e = fabs(fd - dx[i]);
        if (e > nx_num) { nx_num = e; worst_x = i; }
        if (fabs(fd) > nx_den) nx_den = fabs(fd);
    }
    double ex = nx_num / (nx_den > 1e-8 ? nx_den : 1e-8);
    worst = ep > ex ? ep : ex;
    snprintf(why, why_len, "params %zu (checked %zu): rel err %.2e (worst index %zu); dx rel err %.2e (worst index %zu)",
             np, n_check, ep, worst_i, ex, worst_x);
    free(p); free(dp); free(x); free(dx); free(dy); free(y); free(cache);
    return worst;
}
