/* mobile_attention.c — fp64 references for Mobile Attention (Yao, Wang, Wu,
 * Wang, Long; ICML 2024; spec/attention.md §10.1, Appendix B), straight from
 * thuml/MobileAttention `Mobile_Attention.py` (self-attention, L = S = T).
 *
 * Flowformer's flow conservation with the flow sums over HEADS (head
 * competition), φ = sigmoid, ε = 1e-6, no 1/√D. Per token i, head h:
 *   q̃ = σ(q), k̃ = σ(k);   Q̄_i = Σ_h q̃_{h,i},  K̄_i = Σ_h k̃_{h,i}
 *   I_{h,i} = 1/⟨q̃_{h,i} + ε, K̄_i + ε⟩                  (incoming)
 *   O_{h,i} = 1/⟨k̃_{h,i} + ε, Q̄_i + ε⟩                  (outgoing)
 *   Î_{h,i} = ⟨q̃_{h,i} + ε, Σ_h' O_{h',i} k̃_{h',i} + ε⟩  (conserved sink)
 *   Ô_{h,i} = clamp(⟨k̃_{h,i} + ε, Σ_h' I_{h',i} q̃_{h',i} + ε⟩, −1, 1)
 *   alloc_{h,i} = σ(Î_{h,i}·T/S) = σ(Î_{h,i})
 *   comp_{h,j}  = T · softmax_j(Ô_{h,·})_j               (over the sequence)
 *   o_{h,i} = alloc_{h,i} · I_{h,i} · q̃_{h,i}ᵀ Σ_j k̃_{h,j} (comp_{h,j} v_{h,j})ᵀ
 * Non-causal only, stateless.
 *
 *   ref_mobile_attention            the code's order: flows, then the K×V
 *                                   product Σ_j k̃_j (comp_j v_j)ᵀ per head (O(T));
 *   ref_mobile_attention_quadratic  flows recomputed head sum by head sum, then
 *                                   the explicit T×T weights
 *                                   W_ij = alloc_i I_i ⟨q̃_i, k̃_j⟩ comp_j.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define MOB_EPS 1e-6

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

/* [B][T][H] */
static size_t at3(const lat_shape *s, int b, int t, int h)
{
    return ((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h;
}

typedef struct flows {
    double *fq, *fk;  /* σ(q), σ(k)  [B][T][H][K]                          */
    double *I, *alloc; /* incoming flow, allocation  [B][T][H]               */
    double *comp;      /* competition T·softmax_j(Ô)  [B][T][H]              */
} flows;

static void flows_free(flows *f)
{
    free(f->fq), free(f->fk), free(f->I), free(f->alloc), free(f->comp);
}

static int flows_alloc(const lat_shape *s, flows *f)
{
    const size_t n3 = (size_t)s->B * (size_t)s->T * (size_t)s->H, nk = n3 * (size_t)s->K;
    f->fq = malloc(sizeof(double) * nk);
    f->fk = malloc(sizeof(double) * nk);
    f->I = malloc(sizeof(double) * n3);
    f->alloc = malloc(sizeof(double) * n3);
    f->comp = malloc(sizeof(double) * n3);
    if (!f->fq || !f->fk || !f->I || !f->alloc || !f->comp) {
        flows_free(f);
        return 1;
    }
    return 0;
}

/* comp_{h,·} = T · softmax over the sequence of Ô_{h,·} (row max subtracted) */
static void competition(const lat_shape *s, flows *f, const double *Ohat)
{
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            double m = -INFINITY, z = 0.0;
            for (int j = 0; j < s->T; j++)
                m = Ohat[at3(s, b, j, h)] > m ? Ohat[at3(s, b, j, h)] : m;
            for (int j = 0; j < s->T; j++)
                z += exp(Ohat[at3(s, b, j, h)] - m);
            for (int j = 0; j < s->T; j++)
                f->comp[at3(s, b, j, h)] = (double)s->T * exp(Ohat[at3(s, b, j, h)] - m) / z;
        }
}

/* The code's order: head sums first, then every flow from them. */
static int flows_code(const lat_shape *s, const double *const *in, flows *f)
{
    const int K = s->K, H = s->H;
    if (flows_alloc(s, f))
        return 1;
    const size_t n3 = (size_t)s->B * (size_t)s->T * (size_t)H;
    double *Ohat = calloc(n3, sizeof(double)), *O = malloc(sizeof(double) * (size_t)H);
    double *Qb = malloc(sizeof(double) * (size_t)K), *Kb = malloc(sizeof(double) * (size_t)K);
    double *Ok = malloc(sizeof(double) * (size_t)K), *Iq = malloc(sizeof(double) * (size_t)K);
    if (!Ohat || !O || !Qb || !Kb || !Ok || !Iq) {
        free(Ohat), free(O), free(Qb), free(Kb), free(Ok), free(Iq);
        flows_free(f);
        return 1;
    }
    for (size_t e = 0; e < n3 * (size_t)K; e++) {
        f->fq[e] = ref_sigmoid(in[0][e]);
        f->fk[e] = ref_sigmoid(in[1][e]);
    }
    for (int b = 0; b < s->B; b++)
        for (int t = 0; t < s->T; t++) {
            for (int c = 0; c < K; c++) {
                Qb[c] = Kb[c] = Ok[c] = Iq[c] = 0.0;
                for (int h = 0; h < H; h++) {
                    Qb[c] += f->fq[at(s, b, t, h, K) + (size_t)c];
                    Kb[c] += f->fk[at(s, b, t, h, K) + (size_t)c];
                }
            }
            for (int h = 0; h < H; h++) {
                const double *q = f->fq + at(s, b, t, h, K), *k = f->fk + at(s, b, t, h, K);
                double si = 0.0, so = 0.0;
                for (int c = 0; c < K; c++) {
                    si += (q[c] + MOB_EPS) * (Kb[c] + MOB_EPS);
                    so += (k[c] + MOB_EPS) * (Qb[c] + MOB_EPS);
                }
                f->I[at3(s, b, t, h)] = 1.0 / si;
                O[h] = 1.0 / so;
            }
            for (int h = 0; h < H; h++)
                for (int c = 0; c < K; c++) {
                    Ok[c] += f->fk[at(s, b, t, h, K) + (size_t)c] * O[h];
                    Iq[c] += f->fq[at(s, b, t, h, K) + (size_t)c] * f->I[at3(s, b, t, h)];
                }
            for (int h = 0; h < H; h++) {
                const double *q = f->fq + at(s, b, t, h, K), *k = f->fk + at(s, b, t, h, K);
                double ci = 0.0, co = 0.0;
                for (int c = 0; c < K; c++) {
                    ci += (q[c] + MOB_EPS) * (Ok[c] + MOB_EPS);
                    co += (k[c] + MOB_EPS) * (Iq[c] + MOB_EPS);
                }
                co = co < -1.0 ? -1.0 : (co > 1.0 ? 1.0 : co);
                f->alloc[at3(s, b, t, h)] = ref_sigmoid(ci * ((double)s->T / (double)s->T)); /* ·L/S */
                Ohat[at3(s, b, t, h)] = co;
            }
        }
    competition(s, f, Ohat);
    free(Ohat), free(O), free(Qb), free(Kb), free(Ok), free(Iq);
    return 0;
}

lat_status ref_mobile_attention(const lat_shape *s, const double *const *in, const double *state_in,
                                double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T;
    (void)state_in, (void)state_out;
    flows f;
    if (flows_code(s, in, &f))
        return LAT_ENOMEM;
    double *S = malloc(sizeof(double) * (size_t)K * (size_t)V);
    if (!S) {
        flows_free(&f);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            /* kv = Σ_j k̃_j (comp_j v_j)ᵀ */
            memset(S, 0, sizeof(double) * (size_t)K * (size_t)V);
            for (int j = 0; j < T; j++) {
                const double *k = f.fk + at(s, b, j, h, K), *v = in[2] + at(s, b, j, h, V);
                const double cj = f.comp[at3(s, b, j, h)];
                for (int c = 0; c < K; c++)
                    for (int x = 0; x < V; x++)
                        S[(size_t)c * (size_t)V + (size_t)x] += k[c] * (v[x] * cj);
            }
            /* o_i = ((q̃_i I_i)ᵀ kv) · alloc_i */
            for (int i = 0; i < T; i++) {
                const double *q = f.fq + at(s, b, i, h, K);
                const double Ii = f.I[at3(s, b, i, h)], ai = f.alloc[at3(s, b, i, h)];
                double *o = out + at(s, b, i, h, V);
                for (int x = 0; x < V; x++) {
                    double acc = 0.0;
                    for (int c = 0; c < K; c++)
                        acc += (q[c] * Ii) * S[(size_t)c * (size_t)V + (size_t)x];
                    o[x] = acc * ai;
                }
            }
        }
    free(S);
    flows_free(&f);
    return LAT_OK;
}

lat_status ref_mobile_attention_quadratic(const lat_shape *s, const double *const *in,
                                          const double *state_in, double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, H = s->H;
    (void)state_in, (void)state_out;
    flows f;
    if (flows_alloc(s, &f))
        return LAT_ENOMEM;
    const size_t n3 = (size_t)s->B * (size_t)T * (size_t)H;
    double *Ohat = calloc(n3, sizeof(double)), *O = calloc(n3, sizeof(double));
    if (!Ohat || !O) {
        free(Ohat), free(O);
        flows_free(&f);
        return LAT_ENOMEM;
    }
    for (size_t e = 0; e < n3 * (size_t)K; e++) {
        f.fq[e] = ref_sigmoid(in[0][e]);
        f.fk[e] = ref_sigmoid(in[1][e]);
    }
    /* flows, each head sum formed inside the feature loop */
    for (int b = 0; b < s->B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const double *q = f.fq + at(s, b, t, h, K), *k = f.fk + at(s, b, t, h, K);
                double si = 0.0, so = 0.0;
                for (int c = 0; c < K; c++) {
                    double kb = 0.0, qb = 0.0;
                    for (int g = 0; g < H; g++) {
                        kb += f.fk[at(s, b, t, g, K) + (size_t)c];
                        qb += f.fq[at(s, b, t, g, K) + (size_t)c];
                    }
                    si += (q[c] + MOB_EPS) * (kb + MOB_EPS);
                    so += (k[c] + MOB_EPS) * (qb + MOB_EPS);
                }
                f.I[at3(s, b, t, h)] = 1.0 / si;
                O[at3(s, b, t, h)] = 1.0 / so;
            }
    for (int b = 0; b < s->B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const double *q = f.fq + at(s, b, t, h, K), *k = f.fk + at(s, b, t, h, K);
                double ci = 0.0, co = 0.0;
                for (int c = 0; c < K; c++) {
                    double ok = 0.0, iq = 0.0;
                    for (int g = 0; g < H; g++) {
                        ok += O[at3(s, b, t, g)] * f.fk[at(s, b, t, g, K) + (size_t)c];
                        iq += f.I[at3(s, b, t, g)] * f.fq[at(s, b, t, g, K) + (size_t)c];
                    }
                    ci += (q[c] + MOB_EPS) * (ok + MOB_EPS);
                    co += (k[c] + MOB_EPS) * (iq + MOB_EPS);
                }
                f.alloc[at3(s, b, t, h)] = ref_sigmoid(ci);
                Ohat[at3(s, b, t, h)] = co < -1.0 ? -1.0 : (co > 1.0 ? 1.0 : co);
            }
    competition(s, &f, Ohat);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const double *q = f.fq + at(s, b, i, h, K);
                double *o = out + at(s, b, i, h, V);
                for (int x = 0; x < V; x++)
                    o[x] = 0.0;
                for (int j = 0; j < T; j++) {
                    const double *k = f.fk + at(s, b, j, h, K), *v = in[2] + at(s, b, j, h, V);
                    double a = 0.0;
                    for (int c = 0; c < K; c++)
                        a += q[c] * k[c];
                    const double w = f.alloc[at3(s, b, i, h)] * f.I[at3(s, b, i, h)] * a * f.comp[at3(s, b, j, h)];
                    for (int x = 0; x < V; x++)
                        o[x] += w * v[x];
                }
            }
    free(Ohat), free(O);
    flows_free(&f);
    return LAT_OK;
}
