/* flatten.c — fp64 references for FLatten's focused linear attention (Han et
 * al., ICCV 2023; spec/attention.md §5, the May-2024 "fix numerical
 * instability" code), on the shared core of reference/vision.c.
 *
 * Inputs (impls/flatten.c): 0 q, 1 k, 2 v, 3 pos (P, added to k), 4 scale
 * (raw s, divided out as softplus(s)), 5 dwc_w, 6 dwc_b.
 * Focused map on all heads' C channels of a token, written literally:
 *   x̃ = (ReLU(x) + 1e-6)/softplus(s),  φ(x) = ‖x̃‖ · x̃^p / ‖x̃^p‖   (p = variant)
 * ε = N·1e-6 (the code's mean-normalized form), causal (t+1)·1e-6 with t the
 * absolute position; DWC k = window (0: none) on the grid, causal: 1-D.
 *
 *   ref_flatten           literal recurrence (O(T))
 *   ref_flatten_parallel  explicit kernel matrix, scattered convs
 *   ref_flatten_rank_entropy  the FL1 diagnostic (below)
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static ref_vla_cfg flatten_cfg(const lat_shape *s)
{
    ref_vla_cfg c;
    memset(&c, 0, sizeof c);
    c.focused = 1;
    c.p = s->variant;
    c.eps_const = 0.0;
    c.eps_key = 1e-6;
    c.dwc = s->window;
    c.ms = 0;
    c.i_pos = 3, c.i_scale = 4, c.i_dwc_w = 5, c.i_dwc_b = 6, c.i_ms_dw = -1, c.i_ms_pw = -1;
    return c;
}

lat_status ref_flatten(const lat_shape *s, const double *const *in, const double *state_in,
                       double *out, double *state_out)
{
    ref_vla_cfg c = flatten_cfg(s);
    return ref_vla_recurrent(s, &c, in, state_in, out, state_out);
}

lat_status ref_flatten_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                                double *out, double *state_out)
{
    ref_vla_cfg c = flatten_cfg(s);
    return ref_vla_quadratic(s, &c, in, state_in, out, state_out);
}

/* ---- FL1 diagnostic ------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *x) { return (double)(splitmix(x) >> 11) * (1.0 / 9007199254740992.0); }

static double normal(uint64_t *x)
{
    double u1 = uniform(x), u2 = uniform(x);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* singular values of the n×n matrix A, one-sided Jacobi on a copy, on the
 * rows of Aᵀ (columns of A) */
static void singular_values(const double *A, int n, double *sv)
{
    double *U = malloc(sizeof(double) * (size_t)n * n); /* U[c][i] = A[i][c] */
    for (int i = 0; i < n; i++)
        for (int c = 0; c < n; c++)
            U[(size_t)c * n + i] = A[(size_t)i * n + c];
    for (int sweep = 0; sweep < 80; sweep++) {
        int rotated = 0;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) {
                double *up = U + (size_t)p * n, *uq = U + (size_t)q * n;
                double al = 0, be = 0, ga = 0;
                for (int i = 0; i < n; i++) {
                    al += up[i] * up[i];
                    be += uq[i] * uq[i];
                    ga += up[i] * uq[i];
                }
                if (fabs(ga) <= 1e-15 * sqrt(al * be) || ga == 0.0)
                    continue;
                rotated = 1;
                const double zeta = (be - al) / (2.0 * ga);
                const double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                const double cs = 1.0 / sqrt(1.0 + t * t), sn = cs * t;
                for (int i = 0; i < n; i++) {
                    const double a = up[i], b = uq[i];
                    up[i] = cs * a - sn * b;
                    uq[i] = sn * a + cs * b;
                }
            }
        if (!rotated)
            break;
    }
    for (int c = 0; c < n; c++) {
        double ss = 0;
        for (int i = 0; i < n; i++)
            ss += U[(size_t)c * n + i] * U[(size_t)c * n + i];
        sv[c] = sqrt(ss);
    }
    free(U);
}

static int numerical_rank(const double *A, int n)
{
    double *sv = malloc(sizeof(double) * (size_t)n), mx = 0;
    singular_values(A, n, sv);
    for (int i = 0; i < n; i++)
        mx = sv[i] > mx ? sv[i] : mx;
    int r = 0;
    for (int i = 0; i < n; i++)
        r += sv[i] > 1e-5 * mx;
    free(sv);
    return r;
}

static double mean_row_entropy(const double *A, int n)
{
    double tot = 0;
    for (int i = 0; i < n; i++) {
        double sum = 0, h = 0;
        for (int j = 0; j < n; j++)
            sum += A[(size_t)i * n + j];
        for (int j = 0; j < n; j++) {
            const double a = A[(size_t)i * n + j] / sum;
            if (a > 0)
                h -= a * log(a);
        }
        tot += h;
    }
    return tot / n;
}

/* FLatten row-normalized map a_ij = ⟨φ(q_i), φ(k_j)⟩ / (Σ_j ⟨·⟩ + N·1e-6),
 * one head (C = d), s = 0 (softplus = ln 2), focusing power p */
static void focused_map(const double *Q, const double *Kx, int N, int d, int p, double *A)
{
    double *fq = malloc(sizeof(double) * (size_t)N * d), *fk = malloc(sizeof(double) * (size_t)N * d);
    for (int side = 0; side < 2; side++) {
        const double *X = side ? Kx : Q;
        double *F = side ? fk : fq;
        for (int i = 0; i < N; i++) {
            double nx = 0, np = 0;
            for (int c = 0; c < d; c++) {
                const double z = X[(size_t)i * d + c];
                const double xt = ((z > 0 ? z : 0) + 1e-6) / log(2.0);
                F[(size_t)i * d + c] = xt;
                nx += xt * xt;
                np += pow(xt, 2.0 * p);
            }
            for (int c = 0; c < d; c++)
                F[(size_t)i * d + c] = sqrt(nx) * pow(F[(size_t)i * d + c], (double)p) / sqrt(np);
        }
    }
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int c = 0; c < d; c++)
                a += fq[(size_t)i * d + c] * fk[(size_t)j * d + c];
            A[(size_t)i * N + j] = a;
            sum += a;
        }
        for (int j = 0; j < N; j++)
            A[(size_t)i * N + j] /= sum + N * 1e-6;
    }
    free(fq), free(fk);
}

/* FL1 (claims.md): on an N-token grid (N = 196 → 14×14) with Q, K ~ N(0,1)
 * of width d (seeded), returns
 *   res[0] numerical rank (σ > 1e-5·σ_max) of the focused map (power p)
 *   res[1] rank of the softmax map softmax(QKᵀ/√d)
 *   res[2] rank of focused map + M_dwc (the 5×5 depthwise conv of one
 *          channel as an N×N matrix, weights U(−0.2, 0.2): PyTorch init)
 *   res[3] mean row entropy (nats) of the focused map
 *   res[4] mean row entropy of the ReLU map (the same with p = 1)
 *   res[5] mean row entropy of the softmax map
 *   res[6] rank of the ReLU map
 *   res[7] rank of M_dwc alone
 * Returns 0, or -1 on allocation failure. */
int ref_flatten_rank_entropy(int N, int d, int p, uint64_t seed, double res[8])
{
    double *Q = malloc(sizeof(double) * (size_t)N * d), *Kx = malloc(sizeof(double) * (size_t)N * d);
    double *A = malloc(sizeof(double) * (size_t)N * N), *M = calloc((size_t)N * N, sizeof(double));
    double *R = malloc(sizeof(double) * (size_t)N * N), *Sm = malloc(sizeof(double) * (size_t)N * N);
    if (!Q || !Kx || !A || !M || !R || !Sm) {
        free(Q), free(Kx), free(A), free(M), free(R), free(Sm);
        return -1;
    }
    uint64_t st = seed;
    for (size_t i = 0; i < (size_t)N * d; i++)
        Q[i] = normal(&st);
    for (size_t i = 0; i < (size_t)N * d; i++)
        Kx[i] = normal(&st);
    double w[25];
    for (int i = 0; i < 25; i++)
        w[i] = -0.2 + 0.4 * uniform(&st);
    int Hs, Ws;
    ref_vision_grid(N, &Hs, &Ws);
    for (int t = 0; t < N; t++) { /* out_t = Σ_taps w · v_(neighbor): row t of M */
        const int y = t / Ws, x = t % Ws;
        for (int a = 0; a < 5; a++)
            for (int e = 0; e < 5; e++) {
                const int yy = y + a - 2, xx = x + e - 2;
                if (yy >= 0 && yy < Hs && xx >= 0 && xx < Ws)
                    M[(size_t)t * N + yy * Ws + xx] += w[a * 5 + e];
            }
    }
    focused_map(Q, Kx, N, d, p, A);
    focused_map(Q, Kx, N, d, 1, R);
    for (int i = 0; i < N; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int c = 0; c < d; c++)
                a += Q[(size_t)i * d + c] * Kx[(size_t)j * d + c];
            Sm[(size_t)i * N + j] = a / sqrt((double)d);
            mx = Sm[(size_t)i * N + j] > mx ? Sm[(size_t)i * N + j] : mx;
        }
        for (int j = 0; j < N; j++)
            sum += (Sm[(size_t)i * N + j] = exp(Sm[(size_t)i * N + j] - mx));
        for (int j = 0; j < N; j++)
            Sm[(size_t)i * N + j] /= sum;
    }
    res[0] = numerical_rank(A, N);
    res[1] = numerical_rank(Sm, N);
    res[3] = mean_row_entropy(A, N);
    res[4] = mean_row_entropy(R, N);
    res[5] = mean_row_entropy(Sm, N);
    res[6] = numerical_rank(R, N);
    res[7] = numerical_rank(M, N);
    for (size_t i = 0; i < (size_t)N * N; i++)
        A[i] += M[i];
    res[2] = numerical_rank(A, N);
    free(Q), free(Kx), free(A), free(M), free(R), free(Sm);
    return 0;
}
