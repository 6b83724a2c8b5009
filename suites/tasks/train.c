/* train.c — AdamW training and evaluation of the task model (see train.h). */
#include "train.h"
#include "mq_ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define NORM_BLOCK 4096

static int n_threads(int want)
{
#ifdef _OPENMP
    return want > 0 ? want : omp_get_max_threads();
#else
    (void)want;
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

mq_train_opts mq_train_defaults(void)
{
    mq_train_opts o;
    memset(&o, 0, sizeof o);
    o.steps = 1000;
    o.batch = 64;
    o.warmup = 0;
    o.lr = 1e-3;
    o.wd = 0.1;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    o.clip = 1.0;
    o.seed = 1;
    o.log_every = 100;
    return o;
}

static void shuffle(int *perm, int n, uint64_t *rng)
{
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(mq_rng_uniform(rng) * (i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int mq_train(const mq_model *m, double *p, const mq_dataset *train, const mq_train_opts *o, mq_train_result *r)
{
    memset(r, 0, sizeof *r);
    const int nthr = n_threads(o->threads), B = o->batch, G = B < MQ_GROUPS ? B : MQ_GROUPS;
    const size_t np = m->n_params, nws = mq_model_ws_doubles(m, train->L_max, train->nq_max);
    const size_t nblk = (np + NORM_BLOCK - 1) / NORM_BLOCK;
    if (train->n < 1 || B < 1 || o->steps < 0)
        return -1;
    double *gbuf = malloc(sizeof(double) * np * (size_t)G), *grad = malloc(sizeof(double) * np);
    double *m1 = calloc(np, sizeof(double)), *m2 = calloc(np, sizeof(double));
    double *ws = malloc(sizeof(double) * nws * (size_t)nthr), *blk = malloc(sizeof(double) * nblk);
    double *losses = malloc(sizeof(double) * (size_t)(o->steps + 1)), gloss[MQ_GROUPS];
    unsigned char *mask = malloc(np);
    int *perm = malloc(sizeof(int) * (size_t)train->n), *bidx = malloc(sizeof(int) * (size_t)B);
    if (!gbuf || !grad || !m1 || !m2 || !ws || !blk || !losses || !mask || !perm || !bidx) {
        free(gbuf); free(grad); free(m1); free(m2); free(ws); free(blk); free(losses); free(mask); free(perm); free(bidx);
        return -1;
    }
    mq_model_decay_mask(m, mask);
    uint64_t rng = o->seed * 0x2545F4914F6CDD1Dull + 0x1234567ull;
    shuffle(perm, train->n, &rng);
    int cursor = 0;
    double t0 = now_s(), log_sum = 0;
    int log_n = 0;
    for (int step = 0; step < o->steps; step++) {
        if (o->stop && *o->stop) {
            r->interrupted = 1;
            break;
        }
        int nq_total = 0;
        for (int b = 0; b < B; b++) {
            if (cursor == train->n) {
                shuffle(perm, train->n, &rng);
                cursor = 0;
            }
            bidx[b] = perm[cursor++];
            nq_total += train->ex[bidx[b]].nq;
        }
        const double scale = nq_total ? 1.0 / nq_total : 0.0;
#pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
        for (int g = 0; g < G; g++) {
            double *gb = gbuf + np * (size_t)g, *w = ws + nws * (size_t)thread_id();
            memset(gb, 0, sizeof(double) * np);
            double s = 0;
            for (int b = g * B / G; b < (g + 1) * B / G; b++)
                s += mq_model_example(m, p, &train->ex[bidx[b]], scale, gb, w, NULL);
            gloss[g] = s;
        }
        double loss = 0;
        for (int g = 0; g < G; g++)
            loss += gloss[g];
        loss *= scale;
#pragma omp parallel for num_threads(nthr) schedule(static)
        for (size_t k = 0; k < nblk; k++) {
            size_t lo = k * NORM_BLOCK, hi = lo + NORM_BLOCK < np ? lo + NORM_BLOCK : np;
            double ss = 0;
            for (size_t i = lo; i < hi; i++) {
                double s = 0;
                for (int g = 0; g < G; g++)
                    s += gbuf[np * (size_t)g + i];
                grad[i] = s;
                ss += s * s;
            }
            blk[k] = ss;
        }
        double nrm2 = 0;
        for (size_t k = 0; k < nblk; k++)
            nrm2 += blk[k];
        if (!isfinite(loss) || !isfinite(nrm2)) { /* stop before the update: p stays finite */
            r->diverged = 1;
            break;
        }
        const double nrm = sqrt(nrm2), cf = (o->clip > 0 && nrm > o->clip) ? o->clip / (nrm + 1e-6) : 1.0;
        double lr;
        if (step < o->warmup)
            lr = o->lr * (step + 1) / o->warmup;
        else {
            int T = o->steps - o->warmup;
            lr = o->lr * 0.5 * (1.0 + cos(3.141592653589793 * (step - o->warmup) / (T > 0 ? T : 1)));
        }
        const double bc1 = 1.0 - pow(o->beta1, step + 1), bc2 = 1.0 - pow(o->beta2, step + 1);
        const double b1 = o->beta1, b2 = o->beta2, wd = o->wd, eps = o->eps;
#pragma omp parallel for num_threads(nthr) schedule(static)
        for (size_t i = 0; i < np; i++) {
            double g = grad[i] * cf;
            if (mask[i])
                p[i] -= lr * wd * p[i];
            m1[i] = b1 * m1[i] + (1 - b1) * g;
            m2[i] = b2 * m2[i] + (1 - b2) * g * g;
            p[i] -= lr * (m1[i] / bc1) / (sqrt(m2[i] / bc2) + eps);
        }
        losses[step] = loss;
        r->steps_done = step + 1;
        log_sum += loss;
        log_n++;
        if (o->progress && o->log_every > 0 && ((step + 1) % o->log_every == 0 || step + 1 == o->steps)) {
            o->progress(o->progress_ctx, step + 1, o->steps, log_sum / log_n);
            log_sum = 0;
            log_n = 0;
        }
    }
    int n = r->steps_done, k = o->steps / 20 > 1 ? o->steps / 20 : 1;
    if (n > 0) {
        int a = k < n ? k : n;
        double s = 0;
        for (int i = 0; i < a; i++)
            s += losses[i];
        r->loss_first = s / a;
        s = 0;
        for (int i = n - a; i < n; i++)
            s += losses[i];
        r->loss_last = s / a;
    } else {
        r->loss_first = r->loss_last = NAN;
    }
    r->seconds = now_s() - t0;
    free(gbuf); free(grad); free(m1); free(m2); free(ws); free(blk); free(losses); free(mask); free(perm); free(bidx);
    return 0;
}

int mq_evaluate(const mq_model *m, const double *p, const mq_dataset *d, int threads, double *acc, double *loss)
{
    const int nthr = n_threads(threads);
    const size_t nws = mq_model_ws_doubles(m, d->L_max, d->nq_max);
    double *ws = malloc(sizeof(double) * nws * (size_t)nthr);
    double *ea = malloc(sizeof(double) * (size_t)(d->n + 1)), *el = malloc(sizeof(double) * (size_t)(d->n + 1));
    if (!ws || !ea || !el) {
        free(ws); free(ea); free(el);
        return -1;
    }
#pragma omp parallel for num_threads(nthr) schedule(dynamic, 8)
    for (int i = 0; i < d->n; i++) {
        int ok = 0;
        el[i] = mq_model_example(m, p, &d->ex[i], 1.0, NULL, ws + nws * (size_t)thread_id(), &ok);
        ea[i] = d->ex[i].nq ? (double)ok / d->ex[i].nq : 0.0;
    }
    double sa = 0, sl = 0;
    long nq = 0;
    for (int i = 0; i < d->n; i++) {
        sa += ea[i];
        sl += el[i];
        nq += d->ex[i].nq;
    }
    *acc = d->n ? sa / d->n : NAN;
    if (loss)
        *loss = nq ? sl / (double)nq : NAN;
    free(ws); free(ea); free(el);
    return 0;
}
