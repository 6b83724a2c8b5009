/* model.h — the two-layer task model of spec/claims.md B.6 ("Based recipe"),
 * fp64, forward and hand-written backward for one sequence at a time:
 *
 *   x0 = E[tok]                                  embedding, N(0, 0.02), no positions
 *   h0 = LN0(x0);  x1 = x0 + (conv(h0) ⊙ (W h0 + b) + h0)     layer 0: BaseConv
 *   h1 = LN1(x1);  x2 = x1 + MIXER(h1)                        layer 1: the method
 *   z  = LNf(x2);  logits = z · Eᵀ                             tied LM head
 *   loss = Σ cross-entropy at the labelled positions only
 *
 * BaseConv (zoology/mixers/base_conv.py, resid=True): conv = depthwise causal
 * conv1d, kernel 3, with bias (PyTorch Conv1d, padding 2, first L outputs:
 * conv(u)_t = b_d + Σ_j w[d][j]·u_{t−2+j}); W, b = nn.Linear(D, D); output
 * conv(u) ⊙ (W u + b) + u, added to the residual stream by the block.
 * Init as Zoology's _init_weights: embedding and Linear weights N(0, 0.02),
 * Linear biases 0, LayerNorm γ = 1, β = 0; the conv keeps PyTorch's default
 * (kaiming-uniform a = √5: weight and bias U(±1/√3) for fan-in 3). The mixer
 * draws its own parameters (mq_mixer.init). No dropout (Zoology: embedding
 * dropout 0.1, not used here: the runs are deterministic). No MLP (state
 * mixer = Identity, as in every Zoology MQAR sweep).
 *
 * The LM head is evaluated only at the labelled positions (everything else
 * is ignored by the loss, so this is exact); the final LayerNorm likewise. */
#ifndef MQ_MODEL_H
#define MQ_MODEL_H
#include "mq.h"
#include "tasks_data.h"
#include <stddef.h>
#include <stdint.h>

#define MQ_CONV_K 3

typedef struct mq_model {
    const mq_mixer *mix;
    mq_cfg cfg;          /* cfg.D is the model width */
    int V;
    size_t n_params, n_mix;
    /* parameter offsets (doubles) */
    size_t o_emb;        /* [V][D] */
    size_t o_ln0g, o_ln0b;
    size_t o_cw, o_cb;   /* [D][3], [D] */
    size_t o_pw, o_pb;   /* [D][D], [D] */
    size_t o_ln1g, o_ln1b;
    size_t o_lnfg, o_lnfb;
    size_t o_mix;        /* the mixer's n_mix parameters */
} mq_model;

/* Lays out the parameters. 0, or -1 (bad sizes). */
int mq_model_setup(mq_model *m, const mq_mixer *mix, const mq_cfg *c, int V);
void mq_model_init(const mq_model *m, double *p, uint64_t *rng);
/* mask[i] = 1 where AdamW applies weight decay: the embedding, the BaseConv
 * weight matrices (projection and conv taps) and every mixer parameter (the
 * mixer interface does not say which of its parameters are matrices;
 * Zoology's AdamW decays every parameter). 0 on LayerNorm and biases. */
void mq_model_decay_mask(const mq_model *m, unsigned char *mask);

/* Workspace doubles for one sequence of up to L_max tokens and nq_max labels
 * (forward, backward and the mixer's cache). */
size_t mq_model_ws_doubles(const mq_model *m, int L_max, int nq_max);

/* One example. Returns Σ cross-entropy over its labelled positions (natural
 * log); *correct (may be NULL) = labelled positions whose argmax over all V
 * logits (first index on ties) equals the target. dp != NULL: also the
 * backward pass, ACCUMULATING scale · ∂(Σ CE)/∂p into dp. ws: workspace. */
double mq_model_example(const mq_model *m, const double *p, const mq_example *x, double scale, double *dp,
                        double *ws, int *correct);

/* Whole-model central (4th-order) finite-difference check on a tiny MQAR batch (V 16,
 * L 12, K 2, two examples) with the mixer's small test config: every
 * parameter (at most max_params, random subset beyond). Returns the worst
 * relative error max|g − fd| / max|fd| over the parameter tensors (embedding,
 * LayerNorms, conv, projection, mixer); why gets a summary. */
double mq_model_gradcheck(const mq_mixer *mix, uint64_t seed, int max_params, char *why, size_t len);

#endif
