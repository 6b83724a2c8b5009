/* train.h — AdamW training and evaluation of the task model (model.h).
 *
 * Optimiser (spec/claims.md B.2/B.6): AdamW, β = (0.9, 0.999), ε = 1e-8,
 * decoupled weight decay (0.1) on the parameters of mq_model_decay_mask;
 * learning rate: cosine from lr to 0 over the run, lr_t = lr·½(1 + cos(π·t/T))
 * for steps t = 0 … T−1, after an optional linear warm-up of `warmup` steps
 * (default 0: Zoology uses none, and none was needed here); gradient clipping
 * to global L2 norm 1.0 (a standard safeguard: Zoology/HF default; it is
 * inactive once training settles). Loss: mean cross-entropy over every
 * labelled position of the batch.
 *
 * Data order: the fixed training set is reshuffled every epoch with a
 * permutation drawn from the model seed; batches are consecutive slices.
 *
 * Parallelism and determinism: the batch is cut into MQ_GROUPS fixed groups
 * of consecutive sequences; OpenMP threads take whole groups; each group
 * accumulates its gradient sequentially into its own buffer, and the buffers
 * are summed in group order (elementwise, so also in parallel). Norms are
 * summed over fixed parameter blocks, then blocks in order. The result is
 * bit-identical for a given seed whatever the thread count. */
#ifndef MQ_TRAIN_H
#define MQ_TRAIN_H
#include "model.h"
#include "tasks_data.h"
#include <signal.h>

#define MQ_GROUPS 8

typedef struct mq_train_opts {
    int steps, batch, warmup;
    double lr, wd, beta1, beta2, eps, clip;
    uint64_t seed;                       /* shuffling (the model init is the caller's) */
    int threads;                         /* 0: OpenMP's default */
    volatile sig_atomic_t *stop;         /* non-NULL and set: return after the current step */
    /* called every log_every steps (and at the end) on the calling thread */
    void (*progress)(void *ctx, int step, int steps, double loss);
    void *progress_ctx;
    int log_every;
} mq_train_opts;

/* Defaults: batch 64, AdamW (0.9, 0.999, 1e-8), wd 0.1, clip 1.0, no warm-up. */
mq_train_opts mq_train_defaults(void);

typedef struct mq_train_result {
    double loss_first;   /* mean batch loss over the first 5% of steps (at least 1) */
    double loss_last;    /* mean batch loss over the last 5% of steps done */
    int steps_done;      /* completed updates */
    int diverged;        /* a non-finite loss or gradient: stopped before that update */
    int interrupted;     /* *stop was set */
    double seconds;
} mq_train_result;

/* Trains p (already initialised) on train. 0, or -1 when out of memory. */
int mq_train(const mq_model *m, double *p, const mq_dataset *train, const mq_train_opts *o, mq_train_result *r);

/* Accuracy on a set: per example the fraction of its labelled positions whose
 * argmax over all V logits equals the target, then the mean over examples
 * (B.1 step 6). *loss (may be NULL) = mean cross-entropy per labelled
 * position. 0, or -1 when out of memory. */
int mq_evaluate(const mq_model *m, const double *p, const mq_dataset *d, int threads, double *acc, double *loss);

#endif
