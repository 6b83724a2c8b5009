/* vision.c — fp64 core shared by the references of the vision linear-attention
 * family (spec/attention.md §5 FLatten, §7 EfficientViT, §8 SLAB), written
 * from the spec's equations; each method is a ref_vla_cfg (reference.h).
 *
 * Per (b, h) slice, with φ the method's feature map (FLatten: the focused map
 * on all heads' channels of the token, literally ‖x‖·x^p/‖x^p‖), k ← k + P:
 *   non-causal  S = Σ_j φ(k_j) v_jᵀ, z = Σ_j φ(k_j) over all T tokens,
 *               o_i = Sᵀφ(q_i) / (⟨z, φ(q_i)⟩ + ε(T)) + DWC2d(V)_i
 *   causal      S_t = S_{t−1} + φ(k_t) v_tᵀ, z_t likewise (current token
 *               included), o_t = S_tᵀφ(q_t) / (⟨z_t, φ(q_t)⟩ + ε(pos+t+1))
 *               + b + Σ_u w_u ∘ v_{t−u}  (v before the call from the state tail)
 * ε(n) = eps_const + eps_key·n. EfficientViT's multi-scale heads (ms > 0):
 * heads H..2H−1 run the same on q', k', v' = PW(DWConv(q|k|v)) of head h − H.
 *
 *   ref_vla_recurrent  the literal recurrence above, token by token, O(T)
 *   ref_vla_quadratic  the §0.5 recipe: explicit kernel matrix a_ij =
 *                      ⟨φ(q_i), φ(k_j)⟩ (masked j ≤ i when causal), the state's
 *                      terms added, convs written as scatters from each source
 *                      token (a different summation than the gathers above)
 *
 * State (causal calls), per batch: Ho slices of [K][V+1] = [S | z] each with
 * its DWC tail [(k−1)][V] (row u = v at position pos−1−u), then the
 * aggregation tail [(ms−1)][H][2K+V] of raw q|k|v rows. Non-causal: none.
 * Grid: Hs·Ws = T, Hs the largest divisor of T with Hs² ≤ T.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

void ref_vision_grid(int T, int *Hs, int *Ws)
{
    int best = 1;
    for (int h = 1; (long)h * h <= (long)T; h++)
        if (T % h == 0)
            best = h;
    *Hs = best;
    *Ws = T / best;
}

static double softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }

typedef struct rctx {
    const lat_shape *s;
    const ref_vla_cfg *c;
    const double *const *in;
    const double *state_in; /* causal only */
    int B, T, H, K, V, Ho, W, Hs, Ws;
    size_t SS, BS;
    double *agg;            /* quadratic form: all aggregated rows [B][T][H][W] */
    double *tok;            /* scratch: one token's H·K features           */
} rctx;

static size_t qk_at(const rctx *x, int b, int t, int h) { return (((size_t)b * x->T + t) * x->H + h) * x->K; }
static size_t v_at(const rctx *x, int b, int t, int h) { return (((size_t)b * x->T + t) * x->H + h) * x->V; }

/* raw channel ch of [q | k | v] of head h at position t of batch b; t < 0:
 * the aggregation tail of the state (or 0) */
static double raw_qkv(const rctx *x, int b, int t, int h, int ch)
{
    if (t < 0) {
        if (!x->state_in)
            return 0.0;
        const size_t base = (size_t)b * x->BS + (size_t)x->Ho * x->SS;
        return x->state_in[base + ((size_t)(-1 - t) * x->H + h) * x->W + ch];
    }
    if (ch < x->K)
        return x->in[0][qk_at(x, b, t, h) + ch];
    if (ch < 2 * x->K)
        return x->in[1][qk_at(x, b, t, h) + ch - x->K];
    return x->in[2][v_at(x, b, t, h) + ch - 2 * x->K];
}

/* aggregated row [q' | k' | v'] of head h at token t: depthwise conv (grid or
 * causal over time, no bias), then the d×d pointwise conv of each group */
static void agg_gather(const rctx *x, int b, int t, int h, double *out)
{
    const int W = x->W, m = x->c->ms, K = x->K, V = x->V;
    const double *dw = x->in[x->c->i_ms_dw], *pw = x->in[x->c->i_ms_pw];
    double *dwo = malloc(sizeof(double) * (size_t)W);
    for (int ch = 0; ch < W; ch++) {
        double acc = 0.0;
        if (x->s->causal) {
            for (int u = 0; u < m; u++)
                acc += dw[((size_t)h * W + ch) * m + u] * raw_qkv(x, b, t - u, h, ch);
        } else {
            const int y = t / x->Ws, xc = t % x->Ws, r = m / 2;
            for (int a = 0; a < m; a++)
                for (int e = 0; e < m; e++) {
                    const int yy = y + a - r, xx = xc + e - r;
                    if (yy >= 0 && yy < x->Hs && xx >= 0 && xx < x->Ws)
                        acc += dw[(((size_t)h * W + ch) * m + a) * m + e] * raw_qkv(x, b, yy * x->Ws + xx, h, ch);
                }
        }
        dwo[ch] = acc;
    }
    const double *Wh = pw + (size_t)h * (2 * (size_t)K * K + (size_t)V * V);
    for (int g = 0; g < 3; g++) {
        const int d = g < 2 ? K : V, o0 = g * K;
        const double *Wg = Wh + (size_t)g * K * K;
        for (int i = 0; i < d; i++) {
            double acc = 0.0;
            for (int j = 0; j < d; j++)
                acc += Wg[(size_t)i * d + j] * dwo[o0 + j];
            out[o0 + i] = acc;
        }
    }
    free(dwo);
}

/* all aggregated rows by scatters: each source position adds its taps to the
 * outputs it reaches, then the pointwise convs */
static double *agg_scatter(const rctx *x)
{
    const int W = x->W, m = x->c->ms, K = x->K, V = x->V, T = x->T, H = x->H;
    const double *dw = x->in[x->c->i_ms_dw], *pw = x->in[x->c->i_ms_pw];
    double *d = calloc((size_t)x->B * T * H * W, sizeof(double));
    double *a = malloc(sizeof(double) * (size_t)x->B * T * H * W);
    if (!d || !a) {
        free(d), free(a);
        return NULL;
    }
    for (int b = 0; b < x->B; b++)
        for (int h = 0; h < H; h++)
            for (int ch = 0; ch < W; ch++) {
                if (x->s->causal) {
                    for (int j = -(m - 1); j < T; j++) {
                        const double vj = raw_qkv(x, b, j, h, ch);
                        for (int u = 0; u < m; u++)
                            if (j + u >= 0 && j + u < T)
                                d[(((size_t)b * T + j + u) * H + h) * W + ch] += dw[((size_t)h * W + ch) * m + u] * vj;
                    }
                } else {
                    const int r = m / 2;
                    for (int j = 0; j < T; j++) {
                        const int ys = j / x->Ws, xs = j % x->Ws;
                        const double vj = raw_qkv(x, b, j, h, ch);
                        for (int aa = 0; aa < m; aa++)
                            for (int e = 0; e < m; e++) {
                                const int y = ys - aa + r, xx = xs - e + r;
                                if (y >= 0 && y < x->Hs && xx >= 0 && xx < x->Ws)
                                    d[(((size_t)b * T + y * x->Ws + xx) * H + h) * W + ch] +=
                                        dw[(((size_t)h * W + ch) * m + aa) * m + e] * vj;
                            }
                    }
                }
            }
    for (size_t row = 0; row < (size_t)x->B * T * H; row++) {
        const int h = (int)(row % (size_t)H);
        const double *Wh = pw + (size_t)h * (2 * (size_t)K * K + (size_t)V * V);
        for (int g = 0; g < 3; g++) {
            const int dd = g < 2 ? K : V, o0 = g * K;
            for (int i = 0; i < dd; i++) {
                double acc = 0.0;
                for (int j = 0; j < dd; j++)
                    acc += Wh[(size_t)g * K * K + (size_t)i * dd + j] * d[row * W + o0 + j];
                a[row * W + o0 + i] = acc;
            }
        }
    }
    free(d);
    return a;
}

/* φ of q (isk 0) or k (isk 1) for output head hh at token t */
static void phi(rctx *x, int isk, int b, int t, int hh, double *f)
{
    const ref_vla_cfg *c = x->c;
    const int K = x->K, H = x->H;
    if (hh >= H) { /* aggregated head: ReLU(x') + floor */
        double *row = malloc(sizeof(double) * (size_t)x->W);
        if (x->agg)
            memcpy(row, x->agg + (((size_t)b * x->T + t) * H + hh - H) * x->W, sizeof(double) * (size_t)x->W);
        else
            agg_gather(x, b, t, hh - H, row);
        for (int i = 0; i < K; i++) {
            const double z = row[isk * K + i];
            f[i] = (z > 0 ? z : 0.0) + c->floor;
        }
        free(row);
        return;
    }
    const double *src = x->in[isk] + qk_at(x, b, t, 0);
    const double *pos = isk && c->i_pos >= 0 ? x->in[c->i_pos] + qk_at(x, b, t, 0) : NULL;
    if (!c->focused) {
        for (int i = 0; i < K; i++) {
            const double z = src[(size_t)hh * K + i] + (pos ? pos[(size_t)hh * K + i] : 0.0);
            f[i] = (z > 0 ? z : 0.0) + c->floor;
        }
        return;
    }
    /* FLatten: x̃ = (ReLU(x) + 1e-6)/softplus(s) on all C = H·K channels,
     * φ = ‖x̃‖ · x̃^p / ‖x̃^p‖, then head hh's slice */
    const int C = H * K;
    double *xt = x->tok, nx = 0.0, np = 0.0;
    for (int i = 0; i < C; i++) {
        const double z = src[i] + (pos ? pos[i] : 0.0);
        const double sc = c->i_scale >= 0 ? x->in[c->i_scale][i] : 0.0;
        xt[i] = ((z > 0 ? z : 0.0) + 1e-6) / softplus(sc);
        nx += xt[i] * xt[i];
        const double xp = pow(xt[i], (double)c->p);
        np += xp * xp;
    }
    nx = sqrt(nx);
    np = sqrt(np);
    for (int i = 0; i < K; i++)
        f[i] = nx * pow(xt[(size_t)hh * K + i], (double)c->p) / np;
}

/* value row of output head hh at token t (t < 0: from the DWC tail) */
static void vrow(const rctx *x, int b, int t, int hh, double *v)
{
    const int V = x->V;
    if (hh >= x->H) {
        double *row = malloc(sizeof(double) * (size_t)x->W);
        if (x->agg)
            memcpy(row, x->agg + (((size_t)b * x->T + t) * x->H + hh - x->H) * x->W, sizeof(double) * (size_t)x->W);
        else
            agg_gather(x, b, t, hh - x->H, row);
        memcpy(v, row + 2 * x->K, sizeof(double) * (size_t)V);
        free(row);
        return;
    }
    memcpy(v, x->in[2] + v_at(x, b, t, hh), sizeof(double) * (size_t)V);
}

/* DWC source value: v of head hh at position t, channel c (t < 0: state tail) */
static double dwc_src(const rctx *x, int b, int t, int hh, int c)
{
    if (t >= 0)
        return x->in[2][v_at(x, b, t, hh) + c];
    if (!x->state_in)
        return 0.0;
    return x->state_in[(size_t)b * x->BS + (size_t)hh * x->SS + (size_t)x->K * (x->V + 1) +
                       (size_t)(-1 - t) * x->V + c];
}

static double eps_of(const rctx *x, double keys) { return x->c->eps_const + x->c->eps_key * keys; }

static int init_ctx(rctx *x, const lat_shape *s, const ref_vla_cfg *c, const double *const *in,
                    const double *state_in)
{
    memset(x, 0, sizeof *x);
    x->s = s, x->c = c, x->in = in;
    x->B = s->B, x->T = s->T, x->H = s->H, x->K = s->K, x->V = s->V;
    x->Ho = c->ms > 0 ? 2 * s->H : s->H;
    x->W = 2 * s->K + s->V;
    ref_vision_grid(s->T, &x->Hs, &x->Ws);
    x->SS = (size_t)s->K * (s->V + 1) + (c->dwc > 0 ? (size_t)(c->dwc - 1) * s->V : 0);
    x->BS = (size_t)x->Ho * x->SS + (c->ms > 0 ? (size_t)(c->ms - 1) * s->H * x->W : 0);
    x->state_in = s->causal ? state_in : NULL;
    x->tok = malloc(sizeof(double) * (size_t)s->H * s->K);
    return x->tok ? 0 : -1;
}

/* conv tails of state_out (causal): DWC tails per slice, aggregation tail */
static void write_tails(const rctx *x, double *state_out)
{
    const int T = x->T, V = x->V;
    for (int b = 0; b < x->B; b++) {
        if (x->c->dwc > 1)
            for (int hh = 0; hh < x->Ho; hh++)
                for (int u = x->c->dwc - 2; u >= 0; u--) /* descending: safe if aliased */
                    for (int c = 0; c < V; c++) /* position pos+T−1−u */
                        state_out[(size_t)b * x->BS + (size_t)hh * x->SS + (size_t)x->K * (V + 1) + (size_t)u * V + c] =
                            hh < x->H ? dwc_src(x, b, T - 1 - u, hh, c) : 0.0;
        if (x->c->ms > 1)
            for (int u = x->c->ms - 2; u >= 0; u--)
                for (int h = 0; h < x->H; h++)
                    for (int ch = 0; ch < x->W; ch++)
                        state_out[(size_t)b * x->BS + (size_t)x->Ho * x->SS + ((size_t)u * x->H + h) * x->W + ch] =
                            raw_qkv(x, b, T - 1 - u, h, ch);
    }
}

/* o_t += DWC(V)_t of slice (b, hh), gather form */
static void dwc_gather(const rctx *x, int b, int t, int hh, double *o)
{
    const ref_vla_cfg *c = x->c;
    if (c->dwc <= 0 || hh >= x->H)
        return;
    const double *w = x->in[c->i_dwc_w], *bias = x->in[c->i_dwc_b];
    const int k = c->dwc, V = x->V;
    for (int ch = 0; ch < V; ch++) {
        double acc = bias[ch];
        if (x->s->causal) {
            for (int u = 0; u < k; u++)
                acc += w[(size_t)ch * k + u] * dwc_src(x, b, t - u, hh, ch);
        } else {
            const int y = t / x->Ws, xc = t % x->Ws, r = k / 2;
            for (int a = 0; a < k; a++)
                for (int e = 0; e < k; e++) {
                    const int yy = y + a - r, xx = xc + e - r;
                    if (yy >= 0 && yy < x->Hs && xx >= 0 && xx < x->Ws)
                        acc += w[((size_t)ch * k + a) * k + e] * dwc_src(x, b, yy * x->Ws + xx, hh, ch);
                }
        }
        o[ch] += acc;
    }
}

lat_status ref_vla_recurrent(const lat_shape *s, const ref_vla_cfg *c, const double *const *in,
                             const double *state_in, double *out, double *state_out)
{
    rctx x;
    if (init_ctx(&x, s, c, in, state_in))
        return LAT_ENOMEM;
    const int K = s->K, V = s->V, V1 = s->V + 1, T = s->T;
    double *S = malloc(sizeof(double) * (size_t)K * V1);
    double *fq = malloc(sizeof(double) * (size_t)K), *fk = malloc(sizeof(double) * (size_t)K);
    double *vt = malloc(sizeof(double) * (size_t)V);
    if (!S || !fq || !fk || !vt) {
        free(S), free(fq), free(fk), free(vt), free(x.tok);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int hh = 0; hh < x.Ho; hh++) {
            const size_t st = (size_t)b * x.BS + (size_t)hh * x.SS;
            for (size_t e = 0; e < (size_t)K * V1; e++)
                S[e] = x.state_in ? x.state_in[st + e] : 0.0;
            for (int pass = 0; pass < (s->causal ? 1 : 2); pass++)
                for (int t = 0; t < T; t++) {
                    if (s->causal || pass == 0) { /* S += φ(k_t) [v_t, 1]ᵀ */
                        phi(&x, 1, b, t, hh, fk);
                        vrow(&x, b, t, hh, vt);
                        for (int i = 0; i < K; i++) {
                            for (int j = 0; j < V; j++)
                                S[(size_t)i * V1 + j] += fk[i] * vt[j];
                            S[(size_t)i * V1 + V] += fk[i];
                        }
                    }
                    if (s->causal || pass == 1) { /* o = Sᵀφ(q) / (⟨z, φ(q)⟩ + ε) */
                        phi(&x, 0, b, t, hh, fq);
                        double den = 0.0;
                        for (int i = 0; i < K; i++)
                            den += fq[i] * S[(size_t)i * V1 + V];
                        den += eps_of(&x, s->causal ? (double)s->pos + t + 1 : (double)T);
                        double *o = out + (((size_t)b * T + t) * x.Ho + hh) * V;
                        for (int j = 0; j < V; j++) {
                            double acc = 0.0;
                            for (int i = 0; i < K; i++)
                                acc += fq[i] * S[(size_t)i * V1 + j];
                            o[j] = acc / den;
                        }
                        dwc_gather(&x, b, t, hh, o);
                    }
                }
            if (s->causal && state_out)
                memcpy(state_out + st, S, sizeof(double) * (size_t)K * V1);
        }
    if (s->causal && state_out)
        write_tails(&x, state_out);
    free(S), free(fq), free(fk), free(vt), free(x.tok);
    return LAT_OK;
}

lat_status ref_vla_quadratic(const lat_shape *s, const ref_vla_cfg *c, const double *const *in,
                             const double *state_in, double *out, double *state_out)
{
    rctx x;
    if (init_ctx(&x, s, c, in, state_in))
        return LAT_ENOMEM;
    const int K = s->K, V = s->V, V1 = s->V + 1, T = s->T;
    if (c->ms > 0)
        x.agg = agg_scatter(&x);
    double *FQ = malloc(sizeof(double) * (size_t)T * K), *FK = malloc(sizeof(double) * (size_t)T * K);
    double *VV = malloc(sizeof(double) * (size_t)T * V), *num = malloc(sizeof(double) * (size_t)V);
    if (!FQ || !FK || !VV || !num || (c->ms > 0 && !x.agg)) {
        free(FQ), free(FK), free(VV), free(num), free(x.tok), free(x.agg);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int hh = 0; hh < x.Ho; hh++) {
            const size_t st = (size_t)b * x.BS + (size_t)hh * x.SS;
            const double *S0 = x.state_in ? x.state_in + st : NULL;
            for (int t = 0; t < T; t++) {
                phi(&x, 0, b, t, hh, FQ + (size_t)t * K);
                phi(&x, 1, b, t, hh, FK + (size_t)t * K);
                vrow(&x, b, t, hh, VV + (size_t)t * V);
            }
            for (int i = 0; i < T; i++) {
                double den = 0.0;
                for (int j = 0; j < V; j++)
                    num[j] = 0.0;
                const int jmax = s->causal ? i : T - 1;
                for (int jj = 0; jj <= jmax; jj++) { /* a_ij = ⟨φ(q_i), φ(k_j)⟩ */
                    double a = 0.0;
                    for (int e = 0; e < K; e++)
                        a += FQ[(size_t)i * K + e] * FK[(size_t)jj * K + e];
                    for (int j = 0; j < V; j++)
                        num[j] += a * VV[(size_t)jj * V + j];
                    den += a;
                }
                if (S0)
                    for (int e = 0; e < K; e++) {
                        for (int j = 0; j < V; j++)
                            num[j] += FQ[(size_t)i * K + e] * S0[(size_t)e * V1 + j];
                        den += FQ[(size_t)i * K + e] * S0[(size_t)e * V1 + V];
                    }
                den += eps_of(&x, s->causal ? (double)s->pos + i + 1 : (double)T);
                double *o = out + (((size_t)b * T + i) * x.Ho + hh) * V;
                for (int j = 0; j < V; j++)
                    o[j] = num[j] / den;
            }
            if (s->causal && state_out)
                for (int e = 0; e < K; e++)
                    for (int j = 0; j <= V; j++) {
                        double acc = S0 ? S0[(size_t)e * V1 + j] : 0.0;
                        for (int t = 0; t < T; t++)
                            acc += FK[(size_t)t * K + e] * (j < V ? VV[(size_t)t * V + j] : 1.0);
                        state_out[st + (size_t)e * V1 + j] = acc;
                    }
            /* DWC as scatters: source position j adds w_tap ∘ v_j to the
             * outputs it reaches; the bias once per output */
            if (c->dwc > 0 && hh < x.H) {
                const double *w = in[c->i_dwc_w], *bias = in[c->i_dwc_b];
                const int k = c->dwc, r = k / 2;
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < V; j++)
                        out[(((size_t)b * T + t) * x.Ho + hh) * V + j] += bias[j];
                for (int jsrc = s->causal ? -(k - 1) : 0; jsrc < T; jsrc++)
                    for (int j = 0; j < V; j++) {
                        const double vj = dwc_src(&x, b, jsrc, hh, j);
                        if (s->causal) {
                            for (int u = 0; u < k; u++)
                                if (jsrc + u >= 0 && jsrc + u < T)
                                    out[(((size_t)b * T + jsrc + u) * x.Ho + hh) * V + j] += w[(size_t)j * k + u] * vj;
                        } else {
                            const int ys = jsrc / x.Ws, xs = jsrc % x.Ws;
                            for (int a = 0; a < k; a++)
                                for (int e = 0; e < k; e++) {
                                    const int y = ys - a + r, xx = xs - e + r;
                                    if (y >= 0 && y < x.Hs && xx >= 0 && xx < x.Ws)
                                        out[(((size_t)b * T + y * x.Ws + xx) * x.Ho + hh) * V + j] +=
                                            w[((size_t)j * k + a) * k + e] * vj;
                                }
                        }
                    }
            }
        }
    if (s->causal && state_out)
        write_tails(&x, state_out);
    free(FQ), free(FK), free(VV), free(num), free(x.tok), free(x.agg);
    return LAT_OK;
}
