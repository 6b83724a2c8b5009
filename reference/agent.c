/* agent.c — fp64 references for Agent attention (Han et al., ECCV 2024,
 * "Agent Attention: On the Integration of Softmax and Linear Attention";
 * spec/attention.md §6; code agent_swin.py / agent_pvt.py AgentAttention).
 *
 * Inputs (impls/agent.c): 0 q, 1 k, 2 v, 3 bias_ak = B1 [H][n][T],
 * 4 bias_qa = B2 [H][T][n], 5 dwc_w [H][V][k·k], 6 dwc_b [H][V].
 * Per (b, h), τ = K^{-1/2}, on the Hs×Ws grid (Hs the largest divisor of T
 * with Hs² ≤ T), n = p² agents:
 *   A   = AdaptiveAvgPool_{p×p}(Q) (bins [⌊a·Hs/p⌋, ⌈(a+1)·Hs/p⌉) × the same
 *         for columns, agent a_row·p + a_col)
 *   P_A = softmax_rows(τ A Kᵀ + B1)   (n×N),   V_A = P_A V
 *   P_Q = softmax_rows(τ Q Aᵀ + B2)   (N×n),   O = P_Q V_A + DWC(V)
 * DWC: k×k depthwise conv over all H·V channels (per-channel weights), zero
 * padding k/2, plus bias.
 *
 *   ref_agent           explicit n×N and N×n matrices, gathered conv
 *   ref_agent_streamed  per agent an online softmax over the keys one at a
 *                       time (§0.6 merge of (m, ℓ, u)), each query's softmax
 *                       over agents by the same merge, scattered conv
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static int side_of(int n)
{
    int p = (int)floor(sqrt((double)n) + 0.5);
    while (p * p > n)
        p--;
    while ((p + 1) * (p + 1) <= n)
        p++;
    return p;
}

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * s->T + t) * s->H + h) * (size_t)D;
}

/* τ·A of slice (b, h): [n][K] */
static void pool_agents(const lat_shape *s, const double *q, int b, int h, double *A)
{
    const int n = s->agents, p = side_of(n), K = s->K;
    int Hs, Ws;
    ref_vision_grid(s->T, &Hs, &Ws);
    for (int ar = 0; ar < p; ar++)
        for (int ac = 0; ac < p; ac++) {
            const int r0 = ar * Hs / p, r1 = ((ar + 1) * Hs + p - 1) / p;
            const int c0 = ac * Ws / p, c1 = ((ac + 1) * Ws + p - 1) / p;
            double *a = A + (size_t)(ar * p + ac) * K;
            for (int c = 0; c < K; c++)
                a[c] = 0.0;
            for (int y = r0; y < r1; y++)
                for (int x = c0; x < c1; x++)
                    for (int c = 0; c < K; c++)
                        a[c] += q[at(s, b, y * Ws + x, h, K) + c];
            const double inv = 1.0 / ((double)(r1 - r0) * (c1 - c0));
            for (int c = 0; c < K; c++)
                a[c] *= inv / sqrt((double)K);
        }
}

/* gathered depthwise conv: o += b + Σ_taps w ∘ v(neighbor) */
static void dwc_gather(const lat_shape *s, const double *const *in, int b, int h, double *out)
{
    const int k = s->window, V = s->V, r = k / 2;
    if (k <= 0)
        return;
    int Hs, Ws;
    ref_vision_grid(s->T, &Hs, &Ws);
    const double *w = in[5] + (size_t)h * V * k * k, *bias = in[6] + (size_t)h * V;
    for (int t = 0; t < s->T; t++) {
        const int y = t / Ws, x = t % Ws;
        for (int c = 0; c < V; c++) {
            double acc = bias[c];
            for (int a = 0; a < k; a++)
                for (int e = 0; e < k; e++) {
                    const int yy = y + a - r, xx = x + e - r;
                    if (yy >= 0 && yy < Hs && xx >= 0 && xx < Ws)
                        acc += w[((size_t)c * k + a) * k + e] * in[2][at(s, b, yy * Ws + xx, h, V) + c];
                }
            out[at(s, b, t, h, V) + c] += acc;
        }
    }
}

lat_status ref_agent(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                     double *state_out)
{
    (void)state_in, (void)state_out;
    const int n = s->agents, K = s->K, V = s->V, T = s->T, H = s->H;
    double *A = malloc(sizeof(double) * (size_t)n * K), *PA = malloc(sizeof(double) * (size_t)n * T);
    double *VA = malloc(sizeof(double) * (size_t)n * V), *PQ = malloc(sizeof(double) * (size_t)n);
    if (!A || !PA || !VA || !PQ) {
        free(A), free(PA), free(VA), free(PQ);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < H; h++) {
            pool_agents(s, in[0], b, h, A); /* A already carries τ */
            const double *B1 = in[3] + (size_t)h * n * T, *B2 = in[4] + (size_t)h * T * n;
            for (int a = 0; a < n; a++) { /* P_A row a: softmax over the T keys */
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < T; j++) {
                    double z = 0.0;
                    for (int c = 0; c < K; c++)
                        z += A[(size_t)a * K + c] * in[1][at(s, b, j, h, K) + c];
                    z += B1[(size_t)a * T + j];
                    PA[(size_t)a * T + j] = z;
                    mx = z > mx ? z : mx;
                }
                for (int j = 0; j < T; j++)
                    sum += (PA[(size_t)a * T + j] = exp(PA[(size_t)a * T + j] - mx));
                for (int j = 0; j < T; j++)
                    PA[(size_t)a * T + j] /= sum;
                for (int c = 0; c < V; c++) { /* V_A = P_A V */
                    double acc = 0.0;
                    for (int j = 0; j < T; j++)
                        acc += PA[(size_t)a * T + j] * in[2][at(s, b, j, h, V) + c];
                    VA[(size_t)a * V + c] = acc;
                }
            }
            for (int i = 0; i < T; i++) { /* P_Q row i: softmax over the n agents */
                double mx = -INFINITY, sum = 0.0;
                for (int a = 0; a < n; a++) {
                    double z = 0.0;
                    for (int c = 0; c < K; c++)
                        z += in[0][at(s, b, i, h, K) + c] * A[(size_t)a * K + c];
                    PQ[a] = z + B2[(size_t)i * n + a];
                    mx = PQ[a] > mx ? PQ[a] : mx;
                }
                for (int a = 0; a < n; a++)
                    sum += (PQ[a] = exp(PQ[a] - mx));
                for (int c = 0; c < V; c++) {
                    double acc = 0.0;
                    for (int a = 0; a < n; a++)
                        acc += PQ[a] / sum * VA[(size_t)a * V + c];
                    out[at(s, b, i, h, V) + c] = acc;
                }
            }
            dwc_gather(s, in, b, h, out);
        }
    free(A), free(PA), free(VA), free(PQ);
    return LAT_OK;
}

/* (m, ℓ, u) ← merge with one scored item (score z, value row x) */
static void merge_one(double *m, double *l, double *u, double z, const double *x, int V, size_t ldx)
{
    if (z > *m) {
        const double sc = exp(*m - z); /* *m = −∞ → 0 */
        *l = *l * sc + 1.0;
        for (int c = 0; c < V; c++)
            u[c] = u[c] * sc + x[(size_t)c * ldx];
        *m = z;
    } else {
        const double w = exp(z - *m);
        *l += w;
        for (int c = 0; c < V; c++)
            u[c] += w * x[(size_t)c * ldx];
    }
}

lat_status ref_agent_streamed(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    const int n = s->agents, K = s->K, V = s->V, T = s->T, H = s->H;
    double *A = malloc(sizeof(double) * (size_t)n * K), *VA = malloc(sizeof(double) * (size_t)n * V);
    double *u = malloc(sizeof(double) * (size_t)V);
    if (!A || !VA || !u) {
        free(A), free(VA), free(u);
        return LAT_ENOMEM;
    }
    int Hs, Ws;
    ref_vision_grid(T, &Hs, &Ws);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < H; h++) {
            pool_agents(s, in[0], b, h, A);
            const double *B1 = in[3] + (size_t)h * n * T, *B2 = in[4] + (size_t)h * T * n;
            for (int a = 0; a < n; a++) {
                double m = -INFINITY, l = 0.0;
                memset(u, 0, sizeof(double) * (size_t)V);
                for (int j = 0; j < T; j++) {
                    double z = B1[(size_t)a * T + j];
                    for (int c = 0; c < K; c++)
                        z += A[(size_t)a * K + c] * in[1][at(s, b, j, h, K) + c];
                    merge_one(&m, &l, u, z, in[2] + at(s, b, j, h, V), V, 1);
                }
                for (int c = 0; c < V; c++)
                    VA[(size_t)a * V + c] = u[c] / l;
            }
            for (int i = 0; i < T; i++) {
                double m = -INFINITY, l = 0.0;
                memset(u, 0, sizeof(double) * (size_t)V);
                for (int a = 0; a < n; a++) {
                    double z = B2[(size_t)i * n + a];
                    for (int c = 0; c < K; c++)
                        z += in[0][at(s, b, i, h, K) + c] * A[(size_t)a * K + c];
                    merge_one(&m, &l, u, z, VA + (size_t)a * V, V, 1);
                }
                for (int c = 0; c < V; c++)
                    out[at(s, b, i, h, V) + c] = u[c] / l;
            }
            /* conv as scatters: bias once, then each source adds its taps */
            const int k = s->window, r = k / 2;
            if (k > 0) {
                const double *w = in[5] + (size_t)h * V * k * k, *bias = in[6] + (size_t)h * V;
                for (int t = 0; t < T; t++)
                    for (int c = 0; c < V; c++)
                        out[at(s, b, t, h, V) + c] += bias[c];
                for (int j = 0; j < T; j++) {
                    const int ys = j / Ws, xs = j % Ws;
                    for (int a = 0; a < k; a++)
                        for (int e = 0; e < k; e++) {
                            const int y = ys - a + r, x = xs - e + r;
                            if (y < 0 || y >= Hs || x < 0 || x >= Ws)
                                continue;
                            for (int c = 0; c < V; c++)
                                out[at(s, b, y * Ws + x, h, V) + c] +=
                                    w[((size_t)c * k + a) * k + e] * in[2][at(s, b, j, h, V) + c];
                        }
                }
            }
        }
    free(A), free(VA), free(u);
    return LAT_OK;
}

/* ---- AG1 diagnostic ------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double normal(uint64_t *x)
{
    double u1 = (double)(splitmix(x) >> 11) * (1.0 / 9007199254740992.0);
    double u2 = (double)(splitmix(x) >> 11) * (1.0 / 9007199254740992.0);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* AG1 (claims.md): agent attention against exact softmax attention
 * softmax(QKᵀ/√d)V on a side×side grid (N = side²), Q, K, V ~ N(0,1) of
 * width d (seeded), no DWC:
 *   res[0] max |agent − softmax| at n = N (identity pooling: every bin is one
 *          token, A = τQ) with B1 = 0 and B2 routing query i to its own agent
 *          (0 on the diagonal, −1e300 elsewhere): P_Q = I, the exact limit
 *   res[1] max |agent − softmax| at n = N with B1 = B2 = 0 (agents = queries,
 *          O = σ(QQᵀ/√d)·σ(QKᵀ/√d)V: not softmax attention)
 *   res[2] relative Frobenius error of res[1]'s output
 *   res[3] relative Frobenius error at n = 49 pooled agents, B1 = B2 = 0
 * Returns 0, or -1 on allocation failure. */
int ref_agent_identity_gap(int side, int d, uint64_t seed, double res[4])
{
    const int N = side * side;
    lat_shape s;
    memset(&s, 0, sizeof s);
    s.B = 1, s.T = N, s.H = 1, s.K = d, s.V = d, s.agents = N, s.window = 0;
    double *q = malloc(sizeof(double) * (size_t)N * d), *k = malloc(sizeof(double) * (size_t)N * d);
    double *v = malloc(sizeof(double) * (size_t)N * d), *b1 = calloc((size_t)N * N, sizeof(double));
    double *b2 = calloc((size_t)N * N, sizeof(double)), *oa = malloc(sizeof(double) * (size_t)N * d);
    double *os = malloc(sizeof(double) * (size_t)N * d), dummy = 0.0;
    if (!q || !k || !v || !b1 || !b2 || !oa || !os) {
        free(q), free(k), free(v), free(b1), free(b2), free(oa), free(os);
        return -1;
    }
    uint64_t st = seed;
    for (size_t i = 0; i < (size_t)N * d; i++)
        q[i] = normal(&st);
    for (size_t i = 0; i < (size_t)N * d; i++)
        k[i] = normal(&st);
    for (size_t i = 0; i < (size_t)N * d; i++)
        v[i] = normal(&st);
    const double *in[7] = {q, k, v, b1, b2, &dummy, &dummy};
    ref_exact_softmax(&s, in, 0, os);
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < (size_t)N * N; i++) /* routing bias on pass 0 only */
            b2[i] = (pass == 0 && i / (size_t)N != i % (size_t)N) ? -1e300 : 0.0;
        s.agents = pass == 2 ? 49 : N;
        ref_agent(&s, in, NULL, oa, NULL);
        double mx = 0, num = 0, den = 0;
        for (size_t i = 0; i < (size_t)N * d; i++) {
            const double e = fabs(oa[i] - os[i]);
            mx = e > mx ? e : mx;
            num += e * e;
            den += os[i] * os[i];
        }
        if (pass == 0)
            res[0] = mx;
        else if (pass == 1)
            res[1] = mx, res[2] = sqrt(num / den);
        else
            res[3] = sqrt(num / den);
    }
    free(q), free(k), free(v), free(b1), free(b2), free(oa), free(os);
    return 0;
}
