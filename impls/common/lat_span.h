/* lat_span.h — rescaled-state span engine for the recurrent forms of the
 * gated ("GLA") family, S_t = Diag(α_t) S_{t−1} + k_t v_tᵀ, o_t = S_tᵀ q_t.
 *
 * Over a span of n tokens of one slice, with the per-row running product of
 * the decays from the span start P_i(t) = Π_{s ≤ t} α_{s,i}:
 *     S(t) = Diag(P(t)) S̃(t),   S̃(t) = S0 + Σ_{s ≤ t} (k_s ⊘ P(s)) v_sᵀ,
 *     o_t  = Σ_i (q_{t,i} P_i(t)) S̃_i(t),
 * so a token costs two FMAs per state element (S̃ += k̃ vᵀ, o += q̃ᵀ S̃)
 * instead of three vector FP ops (decay, update, readout), and the state is
 * rescaled once per span: S ← Diag(P(n)) S̃. A tile of state rows × value
 * columns stays in registers for the whole span; the outputs of a token
 * accumulate over the row tiles in the output row itself.
 *
 * Numerics. P is a running product in fp32 and k̃_s = k_s / P(s) one
 * correctly rounded division, so the weight a term carries at a later token,
 * P(t)/P(s), shares the rounding of P(s) exactly: only the factors s < u ≤ t
 * contribute rounding, as in the plain recurrence (an exp of an fp32
 * cumsum would put an error of ulp(|ln P|) on every weight instead). A span
 * ends before any P_i would drop below LAT_SPAN_PMIN (2^−58, ln P ≈ −40),
 * which bounds |k̃| ≤ 2^58 |k| and keeps every product far from fp32 overflow
 * and from the flush-to-zero range; a token whose own decay is below the
 * bound (α underflowing to 0 included) is left to the plain step
 * (lat_rec_step), the preparation returns n = 0 for it. Rounding errors
 * of S̃ are relative to the largest term added, and scale with P(t) on the
 * way out: the same bound Σ |k v| P(t)/P(s) + P(t)|S0| as the plain
 * recurrence.
 *
 * Use (one slice, tokens t0 … t1):
 *     while t < t1:
 *         n = lat_span_prep_key(…) / lat_span_prep_scalar(…)   (≤ LAT_SPAN_MAX)
 *         n == 0 ? lat_rec_step(token t), t += 1
 *                : lat_span_run(n tokens), t += n
 * Read-before-update recurrences (RWKV-6: o_t = r_tᵀ S_{t−1} + bonus)
 * use lat_span_run_pre with q̃_t = q_t ⊙ P(t−1) and their own preparation
 * (impls/rwkv6.c), the same span bound and plain-step fallback
 * (lat_rec_step_pre).
 * Paths: AVX-512 (8 rows × 32 columns in registers), AVX2+FMA (4 rows × 16
 * columns), portable C; chosen at build time like lat_vec.h.
 */
#ifndef LAT_SPAN_H
#define LAT_SPAN_H

#include "lat_kernel.h"

#define LAT_SPAN_MAX 64          /* tokens per span, at most (buffers)        */
#define LAT_SPAN_PMIN 0x1p-58f   /* smallest running decay product of a span  */

/* Lines to prefetch into L2 while a span runs (the kernel itself touches
 * only L1-resident data, so this is where the next tokens' strided input rows
 * can be fetched without a burst): up to LAT_SPAN_NSTREAM streams of `rows`
 * rows of `bytes` bytes, `stride` bytes apart; `write` → prefetch for
 * writing (output rows). Issued one line per token step of the kernel. */
#define LAT_SPAN_NSTREAM 6
typedef struct lat_span_stream {
    const void *p;
    size_t stride;
    int rows, bytes, write;
} lat_span_stream;
typedef struct lat_span_pf {
    lat_span_stream s[LAT_SPAN_NSTREAM];
    int ns;
} lat_span_pf;

/* The prefetch streams of a span that the next item of a recurrent form
 * needs, for its tokens [tp, tp + n) (cut at T): the rows of the nk inputs
 * kin [B][T][H][K] (nk ≤ 4, in that order), then of v and of the output
 * (for writing) [B][T][H][V] at the item's value columns [j0, j1); head h
 * of batch b. ns = 0 when no token is left. */
lat_span_pf lat_span_pf_item(const lat_shape *s, int b, int h, int j0, int j1, int tp, int n, int nk,
                             const float *const kin[], const float *v, const float *out);

/* Span of n ≤ LAT_SPAN_MAX tokens on the w value columns of S (row stride
 * lds), K rows:
 *   Qt[t][K] = q̃_t = q_t ⊙ P(t) (score scale included), Kt[t][K] = k̃_t (row
 *   stride ldqk for both), v rows v + t·ldv, outputs o + t·ldo (written),
 *   Pn[K] = P(n), or NULL when every decay is 1:
 *     o_t = Σ_i Qt[t][i] · (S + Σ_{s ≤ t} Kt[s] v_sᵀ)_i,
 *     S  ← Diag(Pn) (S + Σ_{t < n} Kt[t] v_tᵀ).
 * pf (NULL → none): lines to prefetch meanwhile (see lat_span_pf). */
void lat_span_run(int K, int w, int n, float *restrict S, size_t lds, const float *restrict Qt,
                  const float *restrict Kt, size_t ldqk, const float *restrict v, size_t ldv,
                  float *restrict o, size_t ldo, const float *restrict Pn, const lat_span_pf *pf);

/* Read-before-update variant (RWKV-6: o_t = r_tᵀ S_{t−1} + β_t v_t, then
 * S_t = Diag(α_t) S_{t−1} + k_t v_tᵀ). With Qt[t] = q̃_t = q_t ⊙ P(t−1)
 * (P(−1) = 1: the decays BEFORE token t) and Kt[t] = k̃_t = k_t ⊘ P(t) as
 * above, bt[t] = β_t (NULL → 0):
 *     o_t = β_t v_t + Σ_i Qt[t][i] · (S + Σ_{s < t} Kt[s] v_sᵀ)_i,
 *     S  ← Diag(Pn) (S + Σ_{t < n} Kt[t] v_tᵀ),
 * the same two FMAs per state element and token, the read-out first (and
 * off the update's dependency chain). The bonus is added first, to the
 * first row tile's partial sum (one multiply per token and column). Every
 * factor is a product of decays ≤ 1, so no token's decay is ever divided
 * out: a decay of 0 ends a span like any P below LAT_SPAN_PMIN. */
void lat_span_run_pre(int K, int w, int n, float *restrict S, size_t lds, const float *restrict Qt,
                      const float *restrict Kt, size_t ldqk, const float *restrict bt,
                      const float *restrict v, size_t ldv, float *restrict o, size_t ldo,
                      const float *restrict Pn, const lat_span_pf *pf);

/* Per-key decays given as log-decays g ≤ 0 (GLA's log-gates; α = e^{g} by
 * lat_vec_exp, so α underflowing to 0 is fine): the longest span of at most
 * nmax tokens from token rows g + t·ldg, q + t·ldq, k + t·ldk ([K] each).
 * Fills Qt[t][i] = (qscale·q_{t,i})·P_i(t), Kt[t][i] = k_{t,i} / P_i(t) (row
 * stride K) and Pn = P(n); returns n, 0 when token 0 has a decay below
 * LAT_SPAN_PMIN or nmax ≤ 1 (a lone token — a decode step — is cheaper as
 * one lat_rec_step than as a span). The other preparations do the same. */
int lat_span_prep_key(int K, int nmax, const float *restrict g, size_t ldg, const float *restrict q,
                      size_t ldq, float qscale, const float *restrict k, size_t ldk, float *restrict Qt,
                      float *restrict Kt, float *restrict Pn);

/* Per-key decays given as α itself (0 ≤ α ≤ 1, computed by the caller, e.g.
 * HGRN2's forget gate f = e^{g} next to its key 1 − f): as
 * lat_span_prep_key with token rows alpha + t·lda instead of e^{g}. */
int lat_span_prep_alpha(int K, int nmax, const float *restrict alpha, size_t lda, const float *restrict q,
                        size_t ldq, float qscale, const float *restrict k, size_t ldk, float *restrict Qt,
                        float *restrict Kt, float *restrict Pn);

/* Scalar decays alpha[t] (one per token): as above with P(t) = Π α, the
 * optional per-token scales qs[t] on q and ks[t] on k (NULL → 1):
 * Qt[t] = (qs_t·P(t))·q_t, Kt[t] = (ks_t / P(t))·k_t, Pn[0..K) = P(n). */
int lat_span_prep_scalar(int K, int nmax, const float *restrict alpha, const float *restrict q,
                         size_t ldq, const float *restrict qs, const float *restrict k, size_t ldk,
                         const float *restrict ks, float *restrict Qt, float *restrict Kt,
                         float *restrict Pn);

#endif
