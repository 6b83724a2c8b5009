/* lat_step.h — recurrent step kernels beyond lat_rec_step (lat_chunk.h), for
 * methods whose output reads the state BEFORE the current token's update
 * (RWKV-4/5/6 "bonus" read-outs; exclusive read-outs with cv = 0).
 * Same conventions as lat_rec_step: state [K][·] row-major with row stride
 * lds, the w value columns handled here, outputs kept in registers. */
#ifndef LAT_STEP_H
#define LAT_STEP_H

#include "lat_chunk.h"

/* One token on the w value columns of S (row stride lds):
 *   o[:]    = cv·v[:] + Σ_i q[i]·S[i][:]      (S before this token's update)
 *   S[i][:] = alpha[i]·S[i][:] + k[i]·v[:]    (alpha NULL → alpha = 1)
 * o is written, not accumulated. One pass over the state. */
void lat_rec_step_pre(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                      const float *restrict k, const float *restrict v, const float *restrict q,
                      float cv, float *restrict o);

#endif
