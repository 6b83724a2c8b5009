/* lat_delta.h — shared fp32 engine of the delta-rule methods (DeltaNet and
 * Gated DeltaNet, spec/recurrent.md §3), per (b, h) slice:
 *
 *     S̃ = e^{a_t} S_{t−1},  u_t = β_t (v_t − S̃ᵀ k̂_t),  S_t = S̃ + k̂_t u_tᵀ,
 *     o_t = S_tᵀ q̂_t
 *
 * with k̂ = k / sqrt(Σk² + 1e-6), q̂ = s·q / sqrt(Σq² + 1e-6) (fla l2norm, the
 * eps inside the root; s = K^{−1/2}) and a_t ≡ 0 for DeltaNet. Key-major state
 * [B][H][K][V] (lat_dims_bhkv). Inputs of the call: in[0] q, in[1] k
 * [B][T][H][K], in[2] v [B][T][H][V], in[3] β [B][T][H] and, gated only,
 * in[4] a [B][T][H] (log-decay ≤ 0).
 *
 * Kernels (used by the forms; the first and last are generic):
 *   lat_rec_update_read2  one pass over the state rows: rank-1 update, then
 *                         two readouts of the updated rows, accumulators in
 *                         registers;
 *   lat_rec_delta_tokens  a block of delta-rule tokens on ≤ 32-column blocks
 *                         of the state, readouts and deltas in registers;
 *   lat_solve_unit_lower  forward substitution X ← (I + L)⁻¹ X for a strictly
 *                         lower-triangular L and a multi-column X.
 * And the two forms (their math, cost and threading: lat_delta.c header).
 */
#ifndef LAT_DELTA_H
#define LAT_DELTA_H

#include "lat_chunk.h" /* lat_rec_col_blocks, lat_useful_threads */

/* One pass over the K rows of S (w columns, row stride lds):
 *   u != NULL:  S[i][:] = alpha·S[i][:] + k[i]·u[:]
 *   x != NULL:  ox[:]   = Σ_i x[i]·S[i][:]     (rows after the update)
 *   y != NULL:  oy[:]   = Σ_i y[i]·S[i][:]
 * ox and oy are written, not accumulated. */
void lat_rec_update_read2(int K, int w, float *restrict S, size_t lds, float alpha,
                          const float *restrict k, const float *restrict u,
                          const float *restrict x, float *restrict ox,
                          const float *restrict y, float *restrict oy);

/* n tokens of the delta rule on w value columns of S (row stride lds), with
 * P = S_{−1}ᵀ k̂_0 and R = S_{−1}ᵀ q̂_0 on entry (the readouts of the state
 * before the first token), per token t:
 *     α = al[t] (al NULL → 1),  u = be[t]·(vb_t − α P),  ob_t = α R + kq[t]·u
 *     S[i][:] ← α S[i][:] + kn_t[i]·u
 *     P ← Sᵀ kn_{t+1},  R ← Sᵀ qn_{t+1}      (skipped after the last token
 *                                             when more = 0)
 * kn, qn: n (+1 when more) rows of K; vb, ob: rows of stride ldv, ldo; P, R: w
 * floats, updated for the token after the n-th. kq[t] = kn_t·qn_t. */
void lat_rec_delta_tokens(int K, int w, int n, int more, float *restrict S, size_t lds,
                          const float *restrict kn, const float *restrict qn,
                          const float *restrict kq, const float *restrict be,
                          const float *restrict al, const float *restrict vb, size_t ldv,
                          float *restrict ob, size_t ldo, float *restrict P, float *restrict R);

/* X ← (I + L)⁻¹ X by forward substitution, row by row:
 *   X[r][:] −= Σ_{m<r} L[r][m]·X[m][:]
 * L is n×n with row stride ldl; only its strict lower triangle is read. X is
 * n×w with row stride ldx. No division: I + L is unit lower-triangular. */
void lat_solve_unit_lower(int n, int w, const float *restrict L, int ldl, float *restrict X,
                          size_t ldx);

/* ---- the delta-rule forms (gated: 0 DeltaNet, 1 Gated DeltaNet) ---------- */
size_t lat_delta_recurrent_workspace(const lat_shape *s, int nthreads);
lat_status lat_delta_recurrent(const lat_args *a, int gated);
size_t lat_delta_chunk_workspace(const lat_shape *s, int nthreads);
lat_status lat_delta_chunk(const lat_args *a, int gated);

#endif
