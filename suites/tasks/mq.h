/* mq.h — task-accuracy models (issue 7): the sequence-mixer interface.
 *
 * latbench trains small two-layer models on synthetic recall tasks (MQAR,
 * selective copying; spec/claims.md Part B) in fp64 on the CPU. The model
 * (suites/tasks/model.c) is the "Based recipe": embedding → [LN → short
 * gated conv → +] → [LN → MIXER → +] → LN → tied head. Everything but the
 * mixer is shared; a mixer is the method under test, with its own learned
 * projections (q, k, v, gates, output), its forward pass and its hand-written
 * backward pass (backpropagation through time over its recurrent form, or
 * the parallel form where that is simpler), checked against central finite
 * differences by `mq_gradcheck_mixer` (make test).
 *
 * Conventions
 *   - fp64 everywhere (the gradient check demands ≤ 1e-6 relative error).
 *   - One sequence per call: x is [L][D] row-major, y is [L][D] (the mixer's
 *     output, before the residual add, which the model does).
 *   - `forward` with cache != NULL stores what `backward` needs in cache
 *     (cache_doubles(c, L) doubles, owned by the caller; it may also serve as
 *     the backward pass's scratch). forward with cache == NULL is inference.
 *   - `backward` OVERWRITES dx [L][D] and ACCUMULATES (+=) into dp
 *     [n_params]. It may scribble on cache.
 *   - Calls must be thread-safe for distinct (cache, y, dx, dp): the trainer
 *     runs one sequence per OpenMP thread with per-thread dp. No globals, no
 *     malloc in forward/backward, BLAS only through mq_ops (single-threaded).
 *   - `init` draws every parameter from rng at the paper's init scale.
 *   - state_bytes: the Zoology formula (spec/claims.md B.2) for the decode
 *     state of this mixer at sequence length L, fp32 bytes.
 */
#ifndef MQ_H
#define MQ_H
#include <stddef.h>
#include <stdint.h>

typedef struct mq_cfg {
    int D;        /* model width (B.6: 64) */
    int H;        /* mixer heads (1 unless the method needs more) */
    int dk;       /* key dim per head: GLA / RetNet / DeltaNet / HGRN2 / mLSTM state knob */
    int feat;     /* feature dim: linear_attn f, based f (Taylor input dim), performer m */
    int window;   /* sliding_window w */
    int n_state;  /* Mamba / Mamba-2 / S4D N */
    int expand;   /* Mamba inner expansion (2) */
} mq_cfg;

typedef struct mq_mixer {
    const char *name;      /* the latbench method name (latbench list) */
    const char *size_knob; /* the mq_cfg field the state-size sweep varies: "dk", "feat",
                              "window", "n_state", or "D" for softmax */
    int sizes[4];          /* B.6's sweep of that knob: up to 4 values, a 0 ends a shorter list */
    const char *doc;       /* one line: parametrization, init, what differs from the paper */
    size_t (*n_params)(const mq_cfg *c);
    void   (*init)(const mq_cfg *c, double *p, uint64_t *rng);
    size_t (*cache_doubles)(const mq_cfg *c, int L);
    void   (*forward)(const mq_cfg *c, const double *p, int L, const double *x,
                      double *y, double *cache);
    void   (*backward)(const mq_cfg *c, const double *p, int L, const double *x,
                       double *cache, const double *dy, double *dx, double *dp);
    double (*state_bytes)(const mq_cfg *c, int L);
} mq_mixer;

/* Registry (suites/tasks/mixers.def, X-macro like impls/methods.def). */
#define MQ_MIXER(name) extern const mq_mixer mq_mixer_##name;
#include "mixers.def"
#undef MQ_MIXER
extern const mq_mixer *const mq_mixers[];
extern const int mq_n_mixers;
const mq_mixer *mq_find_mixer(const char *name);

/* Sets c->(size_knob) = value. Returns 0, or -1 for an unknown knob. */
int mq_cfg_set_size(const mq_mixer *m, mq_cfg *c, int value);
/* Defaults of B.6: D = 64, H = 1, dk = 64, feat = 16, window = 64, n_state = 16, expand = 2. */
mq_cfg mq_cfg_default(void);

/* Central (4th-order) finite-difference check of a mixer's backward at (c, L): random
 * params, x and dy; loss = <y, dy>. Compares every parameter gradient (or a
 * random subset of at most max_params) and every dx entry. Returns the worst
 * relative error, max|g - fd| / max(1e-8 scale, max|fd|) per tensor. */
double mq_gradcheck_mixer(const mq_mixer *m, const mq_cfg *c, int L, uint64_t seed,
                          int max_params, char *why, size_t why_len);

#endif
