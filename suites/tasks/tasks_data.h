/* tasks_data.h — synthetic recall data for the task-accuracy models (issue 7):
 * MQAR (spec/claims.md B.1, after zoology/data/multiquery_ar.py) and
 * selective copying (B.3, after state-spaces/s4 torch_copying_data with
 * variable=True).
 *
 * An example is a token sequence with a few labelled positions: the model is
 * scored (loss and accuracy) only there, which is exact — every other label
 * of these tasks is "ignore" (−100 in the PyTorch code).
 *
 * Seeds (B.1): one data seed (default 123, as Zoology's DataConfig) gives
 * every segment — one (L, K) slice of a split — its own generator seed:
 * training segments draw from [0, 2³¹), test segments from [2³¹, 2³²), so
 * train and test streams never share a seed. A validation split (used only to
 * pick the learning rate) is drawn from the training range with its own
 * segment numbers. The data does not depend on the model seed. */
#ifndef MQ_TASKS_DATA_H
#define MQ_TASKS_DATA_H
#include <stddef.h>
#include <stdint.h>

typedef struct mq_example {
    int L;          /* tokens */
    int nq;         /* labelled positions */
    const int *tok; /* [L] ids in [0, V) */
    const int *pos; /* [nq] labelled positions, increasing */
    const int *tgt; /* [nq] the target id at each of them */
} mq_example;

typedef struct mq_dataset {
    int n, cap;          /* examples held / allocated */
    int V;               /* vocabulary (logits are over all V ids) */
    int L_max, nq_max;   /* largest example (workspace sizing) */
    mq_example *ex;
    int *buf;            /* backing store for tok, pos, tgt */
    size_t *off;         /* [cap][3] offsets of tok, pos, tgt in buf (pointers are rebuilt on growth) */
    size_t buf_used, buf_cap;
} mq_dataset;

/* Split a seed belongs to. */
enum { MQ_SPLIT_TRAIN = 0, MQ_SPLIT_TEST = 1, MQ_SPLIT_VAL = 2 };
/* The generator seed of segment `segment` of split `split` (see above). */
uint64_t mq_data_seed(uint64_t data_seed, int split, int segment);

/* Empty dataset over vocabulary V with room for n examples and `ints` ints of
 * token/label storage (it grows on demand). 0, or -1 when out of memory. */
int  mq_dataset_init(mq_dataset *d, int V, int n, size_t ints);
void mq_dataset_free(mq_dataset *d);

/* MQAR, B.1: appends n examples of length L with K key–value pairs.
 * Keys: K distinct ids from {1, …, V/2−1}; values: K distinct ids from
 * {V/2, …, V−1}; context k₁ v₁ … k_K v_K at positions 0 … 2K−1; the query
 * region has S = (L−2K)/2 slots at even offsets, K of them drawn without
 * replacement with probability ∝ (i+1)^(a−1) (a = power_a, Zoology 0.01) by
 * successive draws renormalised over the remaining slots (numpy's
 * choice(replace=False, p)); key k_j goes to position 2K + 2·g_j, whose
 * target is v_j. Fillers are 0, or uniform ids from [0, V) when random_fill
 * (these may collide with keys and values, as in Zoology). Needs L even,
 * V > L, 4K ≤ L, K ≤ V/2 − 1. 0, or -1 (bad arguments or out of memory). */
int mq_mqar_append(mq_dataset *d, int L, int K, int n, double power_a, int random_fill, uint64_t seed);

/* Selective copying, B.3: alphabet A (0 = blank, 1 … A−2 data, A−1 = marker).
 * M data tokens uniform from {1, …, A−2} at M sorted distinct positions among
 * the first L_noise + M, blanks elsewhere, then M markers; the i-th marker
 * position's target is the i-th data token. Length L_noise + 2M.
 * 0, or -1 (bad arguments or out of memory). */
int mq_selcopy_append(mq_dataset *d, int A, int M, int L_noise, int n, uint64_t seed);

/* Checks every example's invariants (ids in range, positions increasing and
 * inside the sequence). 0, or -1 with a reason in why. */
int mq_dataset_validate(const mq_dataset *d, char *why, size_t len);

#endif
