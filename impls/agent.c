/* agent.c — Agent attention (Han, Ye, Han, Pan, Wan, Song, Huang; "Agent
 * Attention: On the Integration of Softmax and Linear Attention", ECCV 2024,
 * arXiv 2312.08874), forward core, fp32. Spec: spec/attention.md §6; code
 * LeapLabTHU/Agent-Attention agent_transformer/models/agent_swin.py,
 * agent_pvt.py (AgentAttention).
 *
 * Per (b, h), τ = K^{-1/2} in both softmaxes, on the Hs×Ws grid of the T
 * tokens, n = p² agent tokens:
 *     A   = AdaptiveAvgPool_{p×p}(Q)                          (n×K, per head)
 *     P_A = softmax_rows(τ A Kᵀ + B1),   V_A = P_A V          (agent aggregation)
 *     P_Q = softmax_rows(τ Q Aᵀ + B2),   O = P_Q V_A + DWC(V) (agent broadcast)
 * i.e. the generalized linear attention σ(QAᵀ)σ(AKᵀ)V of rank ≤ n. Pooling
 * bins are PyTorch's adaptive ones, rows [⌊a·Hs/p⌋, ⌈(a+1)·Hs/p⌉) and the
 * same for columns (they overlap when p does not divide the side and repeat
 * when p > side; agent a_row·p + a_col). DWC: k×k depthwise conv over all
 * H·V channels (per-channel weights [H][V][k·k], bias [H][V]), padding k/2.
 *
 * Efficient form (spec §6): P_A is an online softmax (§0.6) over key tiles of
 * 256 with n "queries": per tile one GEMM τA·K_tileᵀ (n×256, K read in place
 * with its H·K row stride), bias, running max/sum per agent, one GEMM of the
 * exponentials with V_tile; P_Q is a softmax over only n entries per query,
 * on blocks of 256 queries: GEMM Q·(τA)ᵀ, bias, row softmax, GEMM with V_A
 * written straight into o, then the DWC rows added.
 *
 * Decisions on the open points (spec §6, Appendix C.8):
 *   grid      T = Hs×Ws row-major, Hs the largest divisor of T not above √T
 *             (63 → 7×9, 1 → 1×1, prime → 1×T); pooling is defined for any
 *             grid, also when n > T (bins repeat): every T runs.
 *   biases    B1 [H][n][T] and B2 [H][T][n] are plain inputs (the spec's
 *             choice; the code builds them from 7×7 tables bilinearly resized
 *             plus row/column terms), N(0, 0.02²) (the code's trunc-normal
 *             std 0.02 init); harsh N(0, 5²) with q, k × 4.
 *   DWC       PyTorch conv init U(±1/√taps); knob window = k (3; 0 = none).
 *   causal    not offered: agents pooled from Q depend on every token (the
 *             spec's causal proposal needs input-independent agents, a
 *             different model). No state, no decode.
 *   agents    knob agents = n (49, must be a square; DeiT/Swin/PVT stage 3–4
 *             default; 9/16 in early stages). n = N on a square grid pools
 *             every token to itself (identity pooling, the AG1 limit).
 * Cost per head: 4nT(K+V) (four GEMMs) + 2k²TV (DWC) + TK (pooling) + ≈5nT
 *   softmax work, 2nT exps. Memory: workspace ≈ n(K+V) + 256·n floats per
 *   thread and n(V+2) per (slice, token part); no T-sized buffers.
 * Parallel axis: aggregation over (b, h) slices (when B·H does not fill the
 *   threads each slice's keys are split into parts, partial (m, ℓ, u) merged
 *   in a fixed order by the §0.6 rule); broadcast token-major: query blocks
 *   (≤ 256 tokens, ≥ 4 per thread when T allows) with all H heads of a block
 *   on one thread, one contiguous run of blocks per thread, so a thread
 *   writes whole output rows and the block's DWC runs over all H heads at
 *   once (column-tiled, lat_dwc2d_heads). Splitting the heads instead (each
 *   thread writing half of every H·V output row) doubled the DWC's CPU time
 *   at 2 threads (6.9 → 14 ms of 44 ms, B1 T8192 H8 D64: lines of o and v
 *   shared or prefetched across the cores); token-major it stays 7 ms.
 * Measured (1 thread, CPU time, B1 T8192 H8 D64): ≈ 41 GFLOP/s; the biases
 *   B1, B2 (2·n·T floats per head, as large as the inputs) and the small-n
 *   GEMM packing bound it. AG1: at N = 3136, n = 49, d = 64, H = 2 it takes
 *   ≈ 0.05× the time of tiled exact softmax.
 * Run: build/latbench run --method agent --form parallel --B 1 --T 3136 --H 2 --D 64 --threads 2
 *      build/latbench check --methods agent
 */
#include "common/lat_vision.h"

#define AG_KT 1024 /* key tile of the aggregation softmax */
#define AG_QB 256 /* query block of the broadcast softmax */
#define FL(n) lat_align64((size_t)(n) * sizeof(float))

static int side_of(int n)
{
    int p = (int)floor(sqrt((double)n) + 0.5);
    while (p * p > n)
        p--;
    while ((p + 1) * (p + 1) <= n)
        p++;
    return p;
}

static int taps(const lat_shape *s) { return s->window * s->window; }

/* ---- plan ------------------------------------------------------------------ */

typedef struct ag_plan {
    int nt, BH, parts, items, n, p;
    size_t part_floats;            /* m[n], ℓ[n], U[n][V] of one item   */
    size_t av_floats;              /* τA [n][K] and V_A [n][V] of one item */
    size_t o_wT, o_part, o_av, o_thr, per_thread, total;
} ag_plan;

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static ag_plan make_plan(const lat_shape *s, int nthreads)
{
    ag_plan p;
    memset(&p, 0, sizeof p);
    p.n = s->agents;
    p.p = side_of(p.n);
    p.BH = s->B * s->H;
    p.nt = lat_useful_threads((double)p.BH * s->T * p.n * (s->K + s->V) / 8.0, nthreads < 1 ? 1 : nthreads);
    p.parts = (p.nt > 1 && p.BH % p.nt != 0 && p.BH < 4 * p.nt) ? p.nt / gcd(p.BH, p.nt) : 1;
    if (p.parts > s->T)
        p.parts = s->T;
    p.items = p.BH * p.parts;
    const size_t n = (size_t)p.n, K = (size_t)s->K, V = (size_t)s->V;
    p.part_floats = FL(2 * n + n * V) / sizeof(float);
    p.av_floats = (FL(n * K) + FL(n * V)) / sizeof(float);
    p.o_wT = 0;
    p.o_part = FL((size_t)s->H * (size_t)taps(s) * V);
    p.o_av = p.o_part + (size_t)p.items * p.part_floats * sizeof(float);
    p.o_thr = p.o_av + (size_t)p.items * p.av_floats * sizeof(float);
    const size_t tile = n * (size_t)(AG_KT > AG_QB ? AG_KT : AG_QB);
    p.per_thread = FL(tile);
    p.total = p.o_thr + p.per_thread * (size_t)p.nt;
    return p;
}

static size_t ag_ws(const lat_shape *s, int nthreads) { return make_plan(s, nthreads).total; }

/* ---- kernels --------------------------------------------------------------- */

/* τ·A of slice (b, h) = τ · AdaptiveAvgPool_{p×p}(Q): [n][K] */
static void pool_agents(const lat_shape *s, const ag_plan *p, const float *q, int b, int h, int Hs, int Ws,
                        float *restrict A)
{
    const int K = s->K, P = p->p;
    const size_t ld = (size_t)s->H * (size_t)K;
    const float *q0 = q + lat_idx_bthd(s, b, 0, h, K);
    const float tau = 1.0f / sqrtf((float)K);
    for (int ar = 0; ar < P; ar++)
        for (int ac = 0; ac < P; ac++) {
            const int r0 = ar * Hs / P, r1 = ((ar + 1) * Hs + P - 1) / P;
            const int c0 = ac * Ws / P, c1 = ((ac + 1) * Ws + P - 1) / P;
            float *a = A + (size_t)(ar * P + ac) * (size_t)K;
            memset(a, 0, sizeof(float) * (size_t)K);
            for (int y = r0; y < r1; y++)
                for (int x = c0; x < c1; x++) {
                    const float *qr = q0 + (size_t)(y * Ws + x) * ld;
                    for (int c = 0; c < K; c++)
                        a[c] += qr[c];
                }
            lat_vec_scale(a, tau / (float)((r1 - r0) * (c1 - c0)), (size_t)K);
        }
}

/* keys [u0, u1) of slice (b, h): partial (m, ℓ, U) of the n agent rows */
static void aggregate(const lat_shape *s, const ag_plan *p, const lat_args *a, int b, int h, long u0, long u1,
                      const float *restrict A, float *restrict S, float *restrict part)
{
    const int n = p->n, K = s->K, V = s->V, T = s->T;
    float *m = part, *l = part + n, *U = part + 2 * n;
    const float *B1 = a->in[3] + (size_t)h * (size_t)n * (size_t)T;
    for (int r = 0; r < n; r++)
        m[r] = -INFINITY, l[r] = 0.0f;
    memset(U, 0, sizeof(float) * (size_t)n * (size_t)V);
    for (long j0 = u0; j0 < u1; j0 += AG_KT) {
        const int nk = (int)(u1 - j0 < AG_KT ? u1 - j0 : AG_KT);
        lat_sgemm('N', 'T', n, nk, K, 1.0f, A, K, a->in[1] + lat_idx_bthd(s, b, (int)j0, h, K),
                  s->H * K, 0.0f, S, nk);
        for (int r = 0; r < n; r++) {
            float *row = S + (size_t)r * (size_t)nk;
            const float *bias = B1 + (size_t)r * (size_t)T + j0;
            for (int j = 0; j < nk; j++)
                row[j] += bias[j];
            const float mt = lat_vec_max(row, (size_t)nk);
            const float mn = mt > m[r] ? mt : m[r];
            const float sc = lat_expf(m[r] - mn); /* m = −∞ → 0 */
            for (int j = 0; j < nk; j++)
                row[j] -= mn;
            lat_vec_exp(row, row, (size_t)nk);
            l[r] = l[r] * sc + lat_vec_sum(row, (size_t)nk);
            if (sc != 1.0f)
                lat_vec_scale(U + (size_t)r * (size_t)V, sc, (size_t)V);
            m[r] = mn;
        }
        lat_sgemm('N', 'N', n, V, nk, 1.0f, S, nk, a->in[2] + lat_idx_bthd(s, b, (int)j0, h, V), s->H * V,
                  1.0f, U, V);
    }
}

/* V_A = merged U / ℓ over the parts of a slice (fixed order) */
static void merge_parts(const ag_plan *p, int V, const float *parts, float *restrict VA)
{
    const int n = p->n;
    for (int r = 0; r < n; r++) {
        float M = -INFINITY;
        for (int pp = 0; pp < p->parts; pp++) {
            const float mp = parts[(size_t)pp * p->part_floats + (size_t)r];
            M = mp > M ? mp : M;
        }
        float l = 0.0f, *va = VA + (size_t)r * (size_t)V;
        memset(va, 0, sizeof(float) * (size_t)V);
        for (int pp = 0; pp < p->parts; pp++) {
            const float *pt = parts + (size_t)pp * p->part_floats;
            const float sc = lat_expf(pt[r] - M); /* empty part: −∞ → 0 */
            l += pt[n + r] * sc;
            if (sc > 0.0f)
                lat_vec_axpy(va, sc, pt + 2 * (size_t)n + (size_t)r * (size_t)V, (size_t)V);
        }
        lat_vec_scale(va, 1.0f / l, (size_t)V);
    }
}

/* queries [u0, u1) of slice (b, h): o = softmax(Q(τA)ᵀ + B2) V_A (the DWC
 * rows are added by the caller, several heads at once) */
static void broadcast(const lat_shape *s, const ag_plan *p, const lat_args *a, int b, int h, long u0, long u1,
                      const float *restrict A, const float *restrict VA, float *restrict S)
{
    const int n = p->n, K = s->K, V = s->V, T = s->T;
    const float *B2 = a->in[4] + (size_t)h * (size_t)T * (size_t)n;
    float *o0 = a->out + lat_idx_bthd(s, b, 0, h, V);
    const size_t ldo = (size_t)s->H * (size_t)V;
    for (long t0 = u0; t0 < u1; t0 += AG_QB) {
        const int nq = (int)(u1 - t0 < AG_QB ? u1 - t0 : AG_QB);
        lat_sgemm('N', 'T', nq, n, K, 1.0f, a->in[0] + lat_idx_bthd(s, b, (int)t0, h, K), s->H * K, A, K,
                  0.0f, S, n);
        for (int r = 0; r < nq; r++) {
            float *row = S + (size_t)r * (size_t)n;
            const float *bias = B2 + (size_t)(t0 + r) * (size_t)n;
            for (int j = 0; j < n; j++)
                row[j] += bias[j];
            const float mx = lat_vec_max(row, (size_t)n);
            for (int j = 0; j < n; j++)
                row[j] -= mx;
            lat_vec_exp(row, row, (size_t)n);
            lat_vec_scale(row, 1.0f / lat_vec_sum(row, (size_t)n), (size_t)n);
        }
        lat_sgemm('N', 'N', nq, V, n, 1.0f, S, n, VA, V, 0.0f, o0 + (size_t)t0 * ldo, (int)ldo);
    }
}

static lat_status ag_parallel(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const ag_plan p = make_plan(s, a->nthreads);
    if (!a->work || a->work_bytes < p.total)
        return LAT_ENOMEM;
    char *work = (char *)a->work;
    int Hs, Ws;
    lat_grid(s->T, &Hs, &Ws);
    float *wT = (float *)(work + p.o_wT), *parts = (float *)(work + p.o_part);
    if (s->window > 0)
        for (int h = 0; h < s->H; h++)
            lat_dwc_transpose(wT + (size_t)h * (size_t)taps(s) * (size_t)s->V,
                              a->in[5] + (size_t)h * (size_t)s->V * (size_t)taps(s), s->V, taps(s));
    const size_t nK = FL((size_t)p.n * (size_t)s->K);
    /* query blocks of qbs ≤ AG_QB tokens, at least 4 per thread when T allows */
    const int want = (4 * p.nt + s->B - 1) / s->B;
    int qbs = (s->T + want - 1) / want;
    qbs = qbs > AG_QB ? AG_QB : (qbs < 16 ? 16 : qbs);
    const long nqb = (s->T + qbs - 1) / qbs; /* query blocks per batch */
    const size_t ldo = (size_t)s->H * (size_t)s->V;
#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        float *S = (float *)(work + p.o_thr + p.per_thread * (size_t)tid);
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) {
            const int bh = (int)(it / p.parts);
            long u0, u1;
            lat_split(s->T, (int)(it % p.parts), p.parts, &u0, &u1);
            float *A = (float *)(work + p.o_av) + (size_t)it * p.av_floats;
            pool_agents(s, &p, a->in[0], bh / s->H, bh % s->H, Hs, Ws, A);
            aggregate(s, &p, a, bh / s->H, bh % s->H, u0, u1, A, S, parts + (size_t)it * p.part_floats);
        }
#pragma omp barrier
        for (long it = lo; it < hi; it++) {
            float *VA = (float *)(work + p.o_av) + (size_t)it * p.av_floats + nK / sizeof(float);
            merge_parts(&p, s->V, parts + (size_t)(it / p.parts) * (size_t)p.parts * p.part_floats, VA);
        }
#pragma omp barrier
        /* broadcast: query blocks split over the threads token-major, every
         * head of a block on one thread, so each thread writes whole output
         * rows (all H·V channels of its tokens: no cache line of o is shared
         * with, or prefetched away from, another core) and the DWC of a
         * block runs over all H heads at once (each token's H·V source row
         * contiguous) */
        long q0, q1;
        lat_split((long)s->B * nqb, tid, p.nt, &q0, &q1);
        for (long qb = q0; qb < q1; qb++) {
            const int b = (int)(qb / nqb);
            const long t0 = (qb % nqb) * qbs, t1 = t0 + qbs < s->T ? t0 + qbs : s->T;
            for (int h = 0; h < s->H; h++) {
                const float *A = (float *)(work + p.o_av) + (size_t)(b * s->H + h) * (size_t)p.parts * p.av_floats;
                broadcast(s, &p, a, b, h, t0, t1, A, A + nK / sizeof(float), S);
            }
            if (s->window > 0) {
                const size_t ws = (size_t)taps(s) * (size_t)s->V;
                lat_dwc2d_heads(Hs, Ws, s->window, s->V, s->H, wT, ws, a->in[6], (size_t)s->V,
                                a->in[2] + lat_idx_bthd(s, b, 0, 0, s->V), ldo, (size_t)s->V,
                                a->out + lat_idx_bthd(s, b, 0, 0, s->V), ldo, (size_t)s->V, (int)t0, (int)t1, 1);
            }
        }
    }
    return LAT_OK;
}

/* ---- models and descriptor -------------------------------------------------- */

static double flops_parallel(const lat_shape *s)
{
    const double n = s->agents, T = s->T, K = s->K, V = s->V;
    return (double)s->B * s->H * (4.0 * n * T * (K + V) + 2.0 * taps(s) * T * V + T * K + 5.0 * n * T);
}

static double bytes(const lat_shape *s)
{
    const double tok = (double)s->B * s->T * s->H;
    return 4.0 * (tok * (2.0 * s->K + 2.0 * s->V) + 2.0 * (double)s->H * s->agents * s->T +
                  (double)s->H * s->V * (taps(s) + 1.0));
}

static lat_status validate(const lat_shape *s, char *why, size_t len)
{
    const int p = side_of(s->agents);
    if (p * p != s->agents)
        return lat_unsupported(why, len, "agents=%d is not a square (2-D pooling to p×p)", s->agents);
    if (s->window > 0 && s->window % 2 == 0)
        return lat_unsupported(why, len, "DWC kernel window=%d must be odd (or 0 for none)", s->window);
    return LAT_OK;
}

static int dims_b1(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->H, dims[1] = (size_t)s->agents, dims[2] = (size_t)s->T;
    return 3;
}

static int dims_b2(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->H, dims[1] = (size_t)s->T, dims[2] = (size_t)s->agents;
    return 3;
}

static int dims_dwc_w(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->H, dims[1] = (size_t)s->V, dims[2] = (size_t)taps(s);
    return 3;
}

static int dims_dwc_b(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->H, dims[1] = s->window > 0 ? (size_t)s->V : 0;
    return 2;
}

static void gen_dwc(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const double bound = 1.0 / sqrt((double)(taps(s) > 0 ? taps(s) : 1));
    (void)harsh;
    for (size_t i = 0; i < count; i++)
        x[i] = bound * (2.0 * lat_rng_uniform(rng) - 1.0);
}

static const lat_input ag_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 4.0, .hb = 0.0,
     .doc = "queries [B][T][H][K], N(0,1); harsh N(0, 4²) (peaked softmaxes)", .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 4.0, .hb = 0.0, .doc = "keys [B][T][H][K], N(0,1); harsh N(0, 4²)",
     .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
    {.name = "bias_ak", .dims = dims_b1, .dist = LAT_DIST_NORMAL, .a = 0.02, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 5.0, .hb = 0.0, .whole = 1,
     .doc = "agent bias B1 [H][n][T] (agent→key), N(0, 0.02²) (trunc-normal 0.02 init); harsh N(0, 5²)"},
    {.name = "bias_qa", .dims = dims_b2, .dist = LAT_DIST_NORMAL, .a = 0.02, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 5.0, .hb = 0.0, .whole = 1,
     .doc = "agent bias B2 [H][T][n] (query→agent), N(0, 0.02²); harsh N(0, 5²)"},
    {.name = "dwc_w", .dims = dims_dwc_w, .dist = LAT_DIST_CUSTOM, .custom = gen_dwc, .whole = 1,
     .doc = "DWC weights [H][V][k·k] (per channel), U(±1/√taps)"},
    {.name = "dwc_b", .dims = dims_dwc_b, .dist = LAT_DIST_CUSTOM, .custom = gen_dwc, .whole = 1,
     .doc = "DWC bias [H][V], U(±1/√taps)"},
};

static const lat_knob ag_knobs[] = {
    LAT_KNOB(agents, 49, 1, 65536, "agent tokens n = p² (49: DeiT, Swin/PVT stages 3-4; 9, 16 early)"),
    LAT_KNOB(window, 3, 0, 9, "DWC kernel size k (odd; 0 = no DWC branch)"),
};

static const lat_form ag_forms[] = {
    {"parallel", ag_parallel, ag_ws, flops_parallel,
     "pooled agents; aggregation as an online softmax over key tiles, broadcast softmax over n "
     "per query block; all products GEMMs"},
};

/* Type II (informational: a different function, not an approximation):
 * exact softmax attention softmax(q·k/√K) v on the same q, k, v (non-causal).
 * Its fp64 oracle costs T², so it stops at T = 2048 (the accuracy suite's
 * larger cells report type I only). */
static lat_status ag_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                             double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    if (s->T > 2048)
        return LAT_UNSUPPORTED;
    return ref_exact_softmax(s, in, 0, out);
}

const lat_method lat_method_agent = {
    .name = "agent",
    .family = "linear",
    .paper = "Han et al., Agent Attention: On the Integration of Softmax and Linear Attention, "
             "ECCV 2024 (arXiv 2312.08874)",
    .summary = "agent attention: n pooled agent tokens (49), two softmaxes with agent biases, 3×3 DWC; "
               "non-causal on an Hs×Ws grid",
    .dim_map = "K = V = D; n = agents; grid Hs×Ws = T (Hs the largest divisor of T not above √T)",
    .inputs = ag_inputs,
    .n_inputs = (int)(sizeof ag_inputs / sizeof ag_inputs[0]),
    .knobs = ag_knobs,
    .n_knobs = (int)(sizeof ag_knobs / sizeof ag_knobs[0]),
    .forms = ag_forms,
    .n_forms = (int)(sizeof ag_forms / sizeof ag_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = NULL,
    .decode_form = NULL,
    .map_dim = NULL,
    .validate = validate,
    .bytes = bytes,
    .state_bytes = NULL,
    .reference = ref_agent,
    .reference_alt = ref_agent_streamed,
    .tol_out = 1e-5,
    .tol_state = 1e-5,
    .approximates_softmax = 0,
    .softmax_target = ag_softmax,
    .quadratic = 0,
    .tol_note = NULL,
};
