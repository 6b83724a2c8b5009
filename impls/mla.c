/* mla.c — the cosFormer mechanism of modular linearized attention (MLA;
 * Agostinelli & Chen, arXiv 2304.08453, 2023; cosFormer: Qin et al., ICLR
 * 2022), forward core, fp32. Spec: spec/attention.md §10.2, Errata 6,
 * Appendix B. Source checked: OSU-STARLAB/Modular-Linearized-Attention
 * fairseq/modules/multihead_attention.py (cosformer_attn_baseline_train /
 * _infer, cosformer_attn_cache_infer).
 *
 * φ = ReLU, no 1/√K. Positions are 1-based and absolute: token t of a call is
 * i = pos + t + 1, θ_i = (π/2)·i/M. Features (variant 0, cosFormer):
 *     φ(x, i) = [ReLU(x)·sin θ_i ; ReLU(x)·cos θ_i]     (F = 2K features)
 * so that ⟨φ(q,i), φ(k,j)⟩ = ⟨ReLU q, ReLU k⟩·cos(π(i−j)/(2M)); variant 1
 * ("simple" mode of the code): φ(x) = ReLU(x), F = K. Per (b, h), causal:
 *     S_t = S_{t−1} + φ(k_t) v_tᵀ,   z_t = z_{t−1} + φ(k_t)
 *     o_t = S_tᵀ φ(q_t) / max(⟨z_t, φ(q_t)⟩, 0.1)       (current token included)
 * Non-causal (knob causal = 0, encoder self-attention): every query reads S, z
 * after all T tokens.
 * State [B][H][F][V+1]: row i = [S[i][0..V−1], z[i]]; rows 0..K−1 are the sin
 * part, K..2K−1 the cos part (the code's kTv_sin / kTv_cos and norm_sin /
 * norm_cos). Decode memory 2(K·V + K) floats (spec Appendix A), K(V+1) in
 * simple mode. state_in NULL → zeros.
 *
 * Decisions on the open points:
 *   M (the re-weighting length). Knob `window` = M when > 0; 0 (default) →
 *   M = ctx, i.e. pos + T for a whole-sequence call — the code's training /
 *   oracle-length path (M = tgt_len). A decode step must use the M of the
 *   sequence it continues (Errata 6: fixed in advance, the code uses a
 *   predicted length 1.625 × source steps or 0.8 × a learned prediction):
 *   the caller passes the planned length as ctx (the harness's decode check
 *   and decode suite do) or fixes it with --window. M is not stored in the
 *   state: keys inserted with one M and read with another give a different
 *   function, exactly as in the code. Positions past M make cos(π(i−j)/2M)
 *   negative and the 0.1 clamp active (tested with --window < T).
 *   Simple mode is variant 1 (the code's simple_attn_*: ReLU features, clamp
 *   0.1, no re-weighting).
 *
 * Forms
 *   recurrent  token by token: features from a per-call table of (sin θ,
 *              cos θ) (fp64 sin/cos rounded once), fused rank-1 update and
 *              readout per state row with the outputs in registers
 *              (lat_rec_step over F rows); z and the denominator by two
 *              F-vector ops. 4·F·(V+1) FLOPs/token. Also the decode step
 *              (T = 1, in place). Non-causal: all updates, then all readouts;
 *              the updates 4 tokens per pass over the state rows (the
 *              per-token update is bound by its state-row stores), the
 *              readouts of 32 tokens by one GEMM against the final state.
 *   chunk      causal: chunkwise on the GLA-family engine with no decay
 *              (impls/common/lat_chunk.c): Q = φ(q), Kc = φ(k), Vc = [v | 1]
 *              (the normalizer is the extra value column), features built in
 *              the pack callback from the angle table; 2C(F+V+1) + 4F(V+1)
 *              FLOPs/token. Non-causal: the parallel form's algorithm with
 *              C-token blocks (the engine's non-causal path packs — and
 *              featurizes — every chunk twice); 4F(V+1) FLOPs/token.
 *   parallel   non-causal only (the encoder's linearized path): per slice,
 *              S = S0 + Φ_Kᵀ V, z = Σ Φ_K (block sums) as GEMMs over token
 *              blocks (8192/F rows: one head's block of features fits L1), v
 *              read in place, then Num = Φ_Q S written straight into o and
 *              Den = Φ_Q z; the features of a block built token by token for
 *              all heads (whole H·K rows read, prefetched ahead), then one
 *              GEMM per head. 4F(V+1) FLOPs/token.
 *              causal = 1 → unsupported.
 * Memory: state F·(V+1) floats per slice. Workspace: a 2T-float angle table;
 *   recurrent, 32 rows of F floats per thread + F per item + one state per
 *   slice; chunk, the engine's (≈ 7CF + 2C(V+1) + C² floats per thread + one
 *   state per slice); parallel, H blocks of features per thread + one partial
 *   state per thread and slice + one state per slice.
 * Parallel axis: recurrent and chunk (causal), (b, h) slices statically
 *   split over the threads; when B·H does not keep the threads evenly busy
 *   recurrent splits the value columns (private column copies) and chunk
 *   runs the engine's two-pass scheme. Parallel (and non-causal chunk) is
 *   token-major: token blocks with all H heads of a block on one thread, one
 *   contiguous run of blocks per thread, a partial state per thread and
 *   slice summed in thread order, so each thread reads and writes whole
 *   H·K / H·V token rows (split by heads, each thread wrote half of every
 *   output row, and the 2-thread CPU time was up to 7-12 % above the
 *   1-thread one under load).
 * Numerics: every weight is ≥ 0 while positions stay within M, so the
 *   normalizer has no cancellation (T = 65536, harsh: rel_rmse ≤ 1.1e-6
 *   every form and mode, state ≤ 3e-6 — the recurrent form's token-by-token
 *   sums; chunk and parallel 3e-7 / 5e-7). With M < T (--window) weights change sign and the
 *   normalizer can cancel down to the clamp: at T = 65536, M = 5000 the
 *   rel_rmse stays ≤ 2.3e-6 but single rows reach 1e-2 relative error in
 *   fp32 — the conditioning of the function there, not of a form.
 * Defaults: causal = 1 (decoder self-attention, the setting MLA is about),
 *   chunk C = 64 (fla), window (M) = 0 → ctx, variant 0 (cosFormer).
 * Run: build/latbench run --method mla --form chunk --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench run --method mla --form parallel --causal 0 --B 1 --T 4096 --H 8 --D 64
 *      build/latbench check --methods mla
 */
#include "common/lat_chunk.h"

#define MLA_CLAMP 0.1f
#define NB 4           /* tokens per group of the recurrent form's non-causal keys  */
#define TOKEN_BLOCK 32 /* tokens per item visit (and per non-causal readout GEMM) */

// ---------------------------------------------------------------------------
// shapes and models
// ---------------------------------------------------------------------------

static int nfeat(const lat_shape *s) { return ref_mla_nfeat(s); }

static int mla_state_dims(const lat_shape *s, size_t dims[8])
{
    dims[0] = (size_t)s->B;
    dims[1] = (size_t)s->H;
    dims[2] = (size_t)nfeat(s);
    dims[3] = (size_t)s->V + 1;
    return 4;
}

static double n_slices(const lat_shape *s) { return (double)s->B * s->H; }

static double flops_recurrent(const lat_shape *s)
{
    return n_slices(s) * s->T * 4.0 * nfeat(s) * (s->V + 1.0);
}

static double flops_chunk(const lat_shape *s)
{
    double C = s->chunk < s->T ? s->chunk : s->T;
    double intra = s->causal ? 2.0 * C * (nfeat(s) + s->V + 1.0) : 0.0;
    return n_slices(s) * s->T * (intra + 4.0 * nfeat(s) * (s->V + 1.0));
}

static double state_bytes(const lat_shape *s) { return 4.0 * n_slices(s) * nfeat(s) * (s->V + 1.0); }

/* q, k, v read, o written, state read and written. */
static double bytes(const lat_shape *s)
{
    double tok = (double)s->B * s->T * s->H;
    return 4.0 * tok * (2.0 * s->K + 2.0 * s->V) + 2.0 * state_bytes(s);
}

/* Floats of n elements, rounded up to whole cache lines (64 B = 16 floats). */
static size_t lines(size_t n) { return lat_align64(n * sizeof(float)) / sizeof(float); }

// ---------------------------------------------------------------------------
// features
// ---------------------------------------------------------------------------

/* tab[2t], tab[2t+1] = sin θ, cos θ of token t of the call, θ = (π/2)·i/M with
 * i = pos + t + 1 — fp64 (the reference's expression) rounded once. ≈ 40 ns
 * a token: split over the threads from T = 1024 on (a serial table would be
 * ~1 % of a T = 4096 call). */
static void angle_table(const lat_shape *s, float *tab, int nthreads)
{
    if (s->variant == 1)
        return;
    const double M = (double)ref_mla_length(s);
    const int nt = s->T >= 1024 ? nthreads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int t = 0; t < s->T; t++) {
        const double th = (M_PI / 2.0) * (double)(s->pos + t + 1) / M;
        tab[2 * (size_t)t] = (float)sin(th);
        tab[2 * (size_t)t + 1] = (float)cos(th);
    }
}

/* f = φ(x) of token t: [ReLU(x)·sin θ_t ; ReLU(x)·cos θ_t], or ReLU(x). */
static void phi(float *restrict f, const float *restrict x, int K, const lat_shape *s,
                const float *restrict tab, int t)
{
    if (s->variant == 1) {
        for (int i = 0; i < K; i++)
            f[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    const float sn = tab[2 * (size_t)t], cs = tab[2 * (size_t)t + 1];
    for (int i = 0; i < K; i++) {
        const float r = x[i] > 0.0f ? x[i] : 0.0f;
        f[i] = r * sn;
        f[K + i] = r * cs;
    }
}

static inline float clamp_den(float d) { return d > MLA_CLAMP ? d : MLA_CLAMP; }

// ---------------------------------------------------------------------------
// recurrent form
// ---------------------------------------------------------------------------

typedef struct rec_plan {
    int nt, nvb, items; /* threads, value-column blocks per slice, BH·nvb */
    int wpad;           /* row stride of a private column block (nvb > 1) */
    size_t slice;       /* one thread's scratch: TOKEN_BLOCK feature rows  */
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    int BH = s->B * s->H, F = nfeat(s);
    p.nt = lat_useful_threads((double)BH * s->T * F * (s->V + 1), nthreads);
    p.nvb = lat_rec_col_blocks(BH, s->V, p.nt);
    p.items = BH * p.nvb;
    p.wpad = 16 * (((s->V + 15) / 16 + p.nvb - 1) / p.nvb);
    p.slice = TOKEN_BLOCK * lat_align64(sizeof(float) * (size_t)F);
    return p;
}

/* Layout (floats): [thread slices][angle table][z copy per item][scratch
 * state per slice, used when state_out is NULL][private column blocks]. */
static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    size_t F = (size_t)nfeat(s), BH = (size_t)s->B * (size_t)s->H, items = (size_t)p.items;
    size_t priv = p.nvb > 1 ? items * lines(F * (size_t)p.wpad) : 0;
    return p.slice * (size_t)p.nt + sizeof(float) * (lines(2 * (size_t)s->T) + lines(items * F) +
                                                     BH * lines(F * (size_t)(s->V + 1)) + priv);
}

/* Token rows of one head are H·K floats apart: prefetch a few tokens ahead
 * and walk tokens in blocks over every item of the thread (see gla.c). */
#define PREFETCH_AHEAD 16

static inline void prefetch_floats(const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        __builtin_prefetch(x + i);
}

/* One work item: value columns [j0, j1) of slice (b, h), working state S (row
 * stride lds: the slice's own [F][V+1] state, or a private copy of the
 * columns when the slice is split) and the item's copy z of the normalizer. */
typedef struct rec_item {
    int b, h, j0, j1;
    float *S;
    size_t lds;
    float *z;
} rec_item;

typedef struct rec_bufs {
    float *tab, *zbuf, *slots, *priv;
} rec_bufs;

static rec_item rec_item_at(const lat_args *a, const rec_plan *p, int it, const rec_bufs *w)
{
    const lat_shape *s = a->shape;
    const size_t F = (size_t)nfeat(s), FV1 = F * (size_t)(s->V + 1);
    const int bh = it / p->nvb;
    rec_item r = {bh / s->H, bh % s->H, 0, 0, NULL, (size_t)s->V + 1, NULL};
    r.z = w->zbuf + (size_t)it * F;
    lat_rec_col_range(s->V, p->nvb, it % p->nvb, &r.j0, &r.j1);
    if (p->nvb > 1) {
        r.S = w->priv + (size_t)it * lines(F * (size_t)p->wpad);
        r.lds = (size_t)p->wpad;
    } else {
        r.S = (a->state_out ? a->state_out : w->slots) + (size_t)bh * FV1;
    }
    return r;
}

/* Causal tokens [t0, t1): z += φ(k); den = max(⟨z, φ(q)⟩, 0.1); fused S update
 * and readout over the item's columns; o /= den. */
static void causal_tokens(const lat_args *a, const rec_item *r, int t0, int t1, float *restrict fk,
                          float *restrict fq, const float *tab)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, F = nfeat(s), w = r->j1 - r->j0;
    const float *q = a->in[0], *k = a->in[1], *v = a->in[2];
    for (int t = t0; t < t1; t++) {
        const size_t ik = lat_idx_bthd(s, r->b, t, r->h, K), iv = lat_idx_bthd(s, r->b, t, r->h, V);
        if (t + TOKEN_BLOCK < s->T) { /* this item's next block */
            const size_t pk = lat_idx_bthd(s, r->b, t + TOKEN_BLOCK, r->h, K);
            const size_t pv = lat_idx_bthd(s, r->b, t + TOKEN_BLOCK, r->h, V) + (size_t)r->j0;
            prefetch_floats(q + pk, K), prefetch_floats(k + pk, K), prefetch_floats(v + pv, w);
        }
        phi(fk, k + ik, K, s, tab, t);
        phi(fq, q + ik, K, s, tab, t);
        for (int i = 0; i < F; i++)
            r->z[i] += fk[i];
        const float den = clamp_den(lat_vec_dot(r->z, fq, (size_t)F));
        float *o = a->out + iv + r->j0;
        lat_rec_step(F, w, r->S, r->lds, NULL, fk, v + iv + r->j0, fq, o);
        lat_vec_scale(o, 1.0f / den, (size_t)w);
    }
}

/* ---- non-causal passes: keys are independent, so tokens go in groups of
 * NB — one load/store of each state row per group instead of per token (the
 * per-token rank-1 update is bound by its state-row stores). */

/* S[i][0..w) += Σ_u A[u][i]·x_u[0..w) for u < NB (rows of A ld floats apart). */
static void update_group(float *restrict S, size_t lds, int F, int w, const float *restrict A, size_t ld,
                         const float *restrict x0, const float *restrict x1, const float *restrict x2,
                         const float *restrict x3)
{
    for (int i = 0; i < F; i++) {
        const float c0 = A[i], c1 = A[ld + (size_t)i], c2 = A[2 * ld + (size_t)i], c3 = A[3 * ld + (size_t)i];
        if (c0 == 0.0f && c1 == 0.0f && c2 == 0.0f && c3 == 0.0f)
            continue; /* ReLU features: rows of zeros are common */
        float *restrict Si = S + (size_t)i * lds;
        for (int j = 0; j < w; j++)
            Si[j] += c0 * x0[j] + c1 * x1[j] + c2 * x2[j] + c3 * x3[j];
    }
}

/* Non-causal, pass 1 over tokens [t0, t1): z += φ(k), S += φ(k) vᵀ, NB
 * tokens at a time (A: NB feature rows, Fl floats apart). */
static void noncausal_keys(const lat_args *a, const rec_item *r, int t0, int t1, float *restrict A,
                           size_t Fl, const float *tab)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, F = nfeat(s), w = r->j1 - r->j0;
    for (int g = t0; g < t1; g += NB) {
        const float *x[NB];
        for (int u = 0; u < NB; u++) {
            const int t = g + u;
            float *f = A + (size_t)u * Fl;
            if (t >= t1) { /* a short last group: zero coefficients */
                memset(f, 0, sizeof(float) * (size_t)F);
                x[u] = x[0];
                continue;
            }
            if (t + PREFETCH_AHEAD < s->T) {
                prefetch_floats(a->in[1] + lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, K), K);
                prefetch_floats(a->in[2] + lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, V) + r->j0, w);
            }
            phi(f, a->in[1] + lat_idx_bthd(s, r->b, t, r->h, K), K, s, tab, t);
            for (int i = 0; i < F; i++)
                r->z[i] += f[i];
            x[u] = a->in[2] + lat_idx_bthd(s, r->b, t, r->h, V) + r->j0;
        }
        update_group(r->S, r->lds, F, w, A, Fl, x[0], x[1], x[2], x[3]);
    }
}

/* Non-causal, pass 2 over tokens [t0, t1) (≤ TOKEN_BLOCK) with the final S,
 * z: the query features into A, Num = A S for the whole group by one GEMM
 * written in place (the readouts share S; a per-token GEMV would reload
 * it), then o /= max(⟨z, φ(q)⟩, 0.1). */
static void noncausal_queries(const lat_args *a, const rec_item *r, int t0, int t1, float *restrict A,
                              size_t Fl, const float *tab)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, F = nfeat(s), w = r->j1 - r->j0, HV = s->H * V;
    for (int t = t0; t < t1; t++) {
        if (t + PREFETCH_AHEAD < s->T)
            prefetch_floats(a->in[0] + lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, K), K);
        phi(A + (size_t)(t - t0) * Fl, a->in[0] + lat_idx_bthd(s, r->b, t, r->h, K), K, s, tab, t);
    }
    float *o = a->out + lat_idx_bthd(s, r->b, t0, r->h, V) + r->j0;
    lat_sgemm('N', 'N', t1 - t0, w, F, 1.0f, A, (int)Fl, r->S, (int)r->lds, 0.0f, o, HV);
    for (int t = t0; t < t1; t++) {
        const float den = clamp_den(lat_vec_dot(r->z, A + (size_t)(t - t0) * Fl, (size_t)F));
        lat_vec_scale(o + (size_t)(t - t0) * (size_t)HV, 1.0f / den, (size_t)w);
    }
}

static lat_status mla_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const int F = nfeat(s), V = s->V, V1 = s->V + 1, T = s->T;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const size_t FV1 = (size_t)F * (size_t)V1;
    rec_bufs w;
    w.tab = (float *)((char *)a->work + p.slice * (size_t)p.nt);
    w.zbuf = w.tab + lines(2 * (size_t)T);
    w.slots = w.zbuf + lines((size_t)p.items * (size_t)F);
    w.priv = w.slots + (size_t)s->B * (size_t)s->H * lines(FV1);
    angle_table(s, w.tab, p.nt);

    /* one token: the non-causal readout sees the same state as the causal
     * one (S after the token), so decode steps take the fused path */
    const int causal = s->causal || T == 1;
#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        float *fk = lat_work_slice(a, p.slice, tid);
        const size_t Fl = lat_align64(sizeof(float) * (size_t)F) / sizeof(float);
        float *fq = fk + Fl;
        long lo, hi; /* this thread's items */
        lat_split(p.items, tid, p.nt, &lo, &hi);

        /* every item takes its copy of z0 and its columns of S0 before any
         * item writes z back (state_in may alias state_out) */
        for (long it = lo; it < hi; it++) {
            rec_item r = rec_item_at(a, &p, (int)it, &w);
            const float *S0 = a->state_in ? a->state_in + (size_t)(it / p.nvb) * FV1 : NULL;
            for (int i = 0; i < F; i++)
                r.z[i] = S0 ? S0[(size_t)i * (size_t)V1 + (size_t)V] : 0.0f;
            if (!S0)
                lat_copy_block(r.S, r.lds, NULL, 0, F, r.j1 - r.j0);
            else if (S0 != r.S)
                lat_copy_block(r.S, r.lds, S0 + r.j0, (size_t)V1, F, r.j1 - r.j0);
        }
#pragma omp barrier
        for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
            const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it, &w);
                if (causal)
                    causal_tokens(a, &r, t0, t1, fk, fq, w.tab);
                else
                    noncausal_keys(a, &r, t0, t1, fk, Fl, w.tab);
            }
        }
        if (!causal)
            for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
                const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
                for (long it = lo; it < hi; it++) {
                    rec_item r = rec_item_at(a, &p, (int)it, &w);
                    noncausal_queries(a, &r, t0, t1, fk, Fl, w.tab);
                }
            }
        /* write back: private column blocks, and z from one item per slice */
        for (long it = lo; it < hi; it++) {
            rec_item r = rec_item_at(a, &p, (int)it, &w);
            float *Sout = (a->state_out ? a->state_out : w.slots) + (size_t)(it / p.nvb) * FV1;
            if (p.nvb > 1 && a->state_out)
                lat_copy_block(Sout + r.j0, (size_t)V1, r.S, r.lds, F, r.j1 - r.j0);
            if (it % p.nvb == p.nvb - 1)
                for (int i = 0; i < F; i++)
                    Sout[(size_t)i * (size_t)V1 + (size_t)V] = r.z[i];
        }
    }
    return LAT_OK;
}

// ---------------------------------------------------------------------------
// chunk form (GLA-family engine, no decay)
// ---------------------------------------------------------------------------

typedef struct chunk_ctx {
    const lat_shape *s;
    const float *q, *k, *v, *tab;
    float *out;
} chunk_ctx;

/* Q = φ(q), Kc = φ(k), Vc = [v | 1]. */
static void mla_pack(const void *vctx, int bh, int t0, int n, float *restrict Q,
                     float *restrict Kc, float *restrict Vc, float *restrict G)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int K = s->K, V = s->V, F = nfeat(s), b = bh / s->H, h = bh % s->H;
    (void)G;
    for (int r = 0; r < n; r++) {
        const size_t ik = lat_idx_bthd(s, b, t0 + r, h, K), iv = lat_idx_bthd(s, b, t0 + r, h, V);
        if (t0 + r + PREFETCH_AHEAD < s->T) { /* rows H·K floats apart: not followed by the hardware */
            const size_t pk = lat_idx_bthd(s, b, t0 + r + PREFETCH_AHEAD, h, K);
            prefetch_floats(x->q + pk, K), prefetch_floats(x->k + pk, K);
            prefetch_floats(x->v + lat_idx_bthd(s, b, t0 + r + PREFETCH_AHEAD, h, V), V);
        }
        phi(Q + (size_t)r * (size_t)F, x->q + ik, K, s, x->tab, t0 + r);
        phi(Kc + (size_t)r * (size_t)F, x->k + ik, K, s, x->tab, t0 + r);
        memcpy(Vc + (size_t)r * (size_t)(V + 1), x->v + iv, sizeof(float) * (size_t)V);
        Vc[(size_t)r * (size_t)(V + 1) + (size_t)V] = 1.0f;
    }
}

/* o = Num / max(Den, 0.1), O rows = [Num | Den]. */
static void mla_emit(const void *vctx, int bh, int t0, int n, const float *restrict O)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int V = s->V, b = bh / s->H, h = bh % s->H;
    for (int r = 0; r < n; r++) {
        const float *Or = O + (size_t)r * (size_t)(V + 1);
        float *o = x->out + lat_idx_bthd(s, b, t0 + r, h, V);
        if (t0 + r + PREFETCH_AHEAD < s->T) {
            float *po = x->out + lat_idx_bthd(s, b, t0 + r + PREFETCH_AHEAD, h, V);
            for (int j = 0; j < V; j += 16)
                __builtin_prefetch(po + j, 1);
        }
        const float inv = 1.0f / clamp_den(Or[V]);
        for (int j = 0; j < V; j++)
            o[j] = Or[j] * inv;
    }
}

static lat_chunk_problem chunk_problem(const lat_shape *s, const lat_args *a, chunk_ctx *x)
{
    lat_chunk_problem p;
    memset(&p, 0, sizeof p);
    p.BH = s->B * s->H;
    p.T = s->T;
    p.K = nfeat(s);
    p.Vx = s->V + 1;
    p.C = s->chunk;
    p.c = s->chunk;
    p.decay = LAT_DECAY_NONE;
    p.causal = s->causal;
    p.pack = mla_pack;
    p.emit = mla_emit;
    p.ctx = x;
    if (a) {
        p.state_in = a->state_in;
        p.state_out = a->state_out;
    }
    return p;
}

static size_t ws_blocks(const lat_shape *s, int nthreads, int blk);
static lat_status noncausal_blocks(const lat_args *a, int blk);

/* causal: [angle table][engine workspace]; non-causal: the parallel form's
 * blocks with blk = C (the engine's non-causal path packs — and featurizes —
 * every chunk twice, once per pass). */
static size_t ws_chunk(const lat_shape *s, int nthreads)
{
    if (!s->causal)
        return ws_blocks(s, nthreads, s->chunk);
    lat_chunk_problem p = chunk_problem(s, NULL, NULL);
    return sizeof(float) * lines(2 * (size_t)s->T) + lat_chunk_workspace(&p, nthreads);
}

static lat_status mla_chunk(const lat_args *a)
{
    const lat_shape *s = a->shape;
    if (!s->causal)
        return noncausal_blocks(a, s->chunk);
    if (a->work_bytes < ws_chunk(s, a->nthreads))
        return LAT_ENOMEM;
    const size_t tab_bytes = sizeof(float) * lines(2 * (size_t)s->T);
    float *tab = (float *)a->work;
    angle_table(s, tab, a->nthreads);
    chunk_ctx x = {s, a->in[0], a->in[1], a->in[2], tab, a->out};
    lat_chunk_problem p = chunk_problem(s, a, &x);
    return lat_chunk_run(&p, (char *)a->work + tab_bytes, a->work_bytes - tab_bytes, a->nthreads);
}

// ---------------------------------------------------------------------------
// parallel form (non-causal): S = S0 + Φ_Kᵀ[V | 𝟙], O = Φ_Q S / max(·, 0.1)
// ---------------------------------------------------------------------------

typedef struct par_plan {
    int nt;       /* threads                                       */
    int blk;      /* tokens per GEMM block                         */
    long units;   /* B · ⌈T / blk⌉ token blocks, all heads of one  */
    size_t slice; /* one thread's scratch: H blocks of blk × F + H·F */
} par_plan;

static par_plan plan_parallel(const lat_shape *s, int nthreads, int blk)
{
    par_plan p;
    const int BH = s->B * s->H, F = nfeat(s);
    p.nt = lat_useful_threads((double)BH * s->T * F * (s->V + 1), nthreads);
    p.blk = blk < s->T ? blk : s->T;
    p.units = (long)s->B * ((s->T + p.blk - 1) / p.blk);
    p.slice = lat_align64(sizeof(float) * (size_t)s->H * (size_t)p.blk * (size_t)F) +
              lat_align64(sizeof(float) * (size_t)s->H * (size_t)F);
    return p;
}

/* [thread slices][angle table][partial state per thread and slice][state per slice] */
static size_t ws_blocks(const lat_shape *s, int nthreads, int blk)
{
    par_plan p = plan_parallel(s, nthreads, blk);
    size_t FV1 = (size_t)nfeat(s) * (size_t)(s->V + 1), BH = (size_t)s->B * (size_t)s->H;
    return p.slice * (size_t)p.nt +
           sizeof(float) * (lines(2 * (size_t)s->T) + (size_t)p.nt * BH * lines(FV1) + BH * lines(FV1));
}

/* Tokens [r0, r0 + n) of batch b, every head: φ of input x (q or k) into
 * Phi + h·ldp (n × F rows per head), token by token so that each token's
 * H·K row of x is read front to back (and prefetched PREFETCH_AHEAD tokens
 * ahead: rows of one head are H·K floats apart, a stride the hardware
 * prefetchers do not follow, the whole rows they do); when v is given, the
 * block's v rows (read next by the GEMMs) are prefetched too and colsum
 * (H × F) gets the block's column sums of each head's Phi. */
static void block_features(const lat_shape *s, const float *x, const float *v, const float *tab, int b,
                           long r0, int n, float *restrict Phi, size_t ldp, float *restrict colsum)
{
    const int K = s->K, F = nfeat(s), H = s->H;
    if (colsum)
        memset(colsum, 0, sizeof(float) * (size_t)H * (size_t)F);
    for (int r = 0; r < n; r++) {
        const int t = (int)(r0 + r);
        if (t + PREFETCH_AHEAD < s->T)
            prefetch_floats(x + lat_idx_bthd(s, b, t + PREFETCH_AHEAD, 0, K), H * K);
        if (v)
            prefetch_floats(v + lat_idx_bthd(s, b, t, 0, s->V), H * s->V);
        for (int h = 0; h < H; h++) {
            float *f = Phi + (size_t)h * ldp + (size_t)r * (size_t)F;
            phi(f, x + lat_idx_bthd(s, b, t, h, K), K, s, tab, t);
            if (colsum) {
                float *c = colsum + (size_t)h * (size_t)F;
                for (int i = 0; i < F; i++)
                    c[i] += f[i];
            }
        }
    }
}

/* The non-causal computation in token blocks of blk (parallel: par_block; chunk
 * with causal = 0: the chunk length C), token-major: the B·⌈T/blk⌉ blocks
 * (all H heads of a block on one thread) are split into one contiguous run
 * per thread, so a thread reads and writes whole token rows (all heads'
 * channels) and no cache line of o is written by two cores. */
static lat_status noncausal_blocks(const lat_args *a, int blk)
{
    const lat_shape *s = a->shape;
    if (a->work_bytes < ws_blocks(s, a->nthreads, blk))
        return LAT_ENOMEM;
    const par_plan p = plan_parallel(s, a->nthreads, blk);
    const int PB = p.blk, nt = p.nt;
    const int V = s->V, V1 = V + 1, F = nfeat(s), T = s->T, BH = s->B * s->H;
    const int HV = s->H * V, nblk = (T + PB - 1) / PB;
    const size_t FV1 = (size_t)F * (size_t)V1, ls = lines(FV1);
    float *tab = (float *)((char *)a->work + p.slice * (size_t)nt);
    float *part = tab + lines(2 * (size_t)T);     /* [nt][BH] partial [S | z] */
    float *slots = part + (size_t)nt * (size_t)BH * ls;
    angle_table(s, tab, nt);

#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int tid = lat_thread_id();
        const size_t ldp = (size_t)PB * (size_t)F; /* floats between the heads' feature blocks */
        float *Phi = lat_work_slice(a, p.slice, tid);
        float *vec = Phi + lat_align64(sizeof(float) * (size_t)s->H * ldp) / sizeof(float); /* H × F */
        long lo, hi; /* this thread's blocks: unit u = b·nblk + block */
        lat_split(p.units, tid, nt, &lo, &hi);
        float *Pt = part + (size_t)tid * (size_t)BH * ls;
        /* pass 1: partial [S | z] per slice over the thread's blocks; z by
         * block sums (a positive O(t) sum: token-by-token fp32 accumulation
         * would cost ~10× its error at T = 65536) */
        if (lo < hi)
            for (int b = (int)(lo / nblk); b <= (int)((hi - 1) / nblk); b++)
                memset(Pt + (size_t)b * (size_t)s->H * ls, 0, sizeof(float) * (size_t)s->H * ls);
        for (long u = lo; u < hi; u++) {
            const int b = (int)(u / nblk);
            const long r0 = (u % nblk) * PB;
            const int n = (int)(T - r0 < PB ? T - r0 : PB);
            block_features(s, a->in[1], a->in[2], tab, b, r0, n, Phi, ldp, vec);
            for (int h = 0; h < s->H; h++) {
                float *P = Pt + (size_t)(b * s->H + h) * ls;
                lat_sgemm('T', 'N', F, V, n, 1.0f, Phi + (size_t)h * ldp, F,
                          a->in[2] + lat_idx_bthd(s, b, (int)r0, h, V), HV, 1.0f, P, V1);
                for (int i = 0; i < F; i++)
                    P[(size_t)i * (size_t)V1 + (size_t)V] += vec[(size_t)h * (size_t)F + (size_t)i];
            }
        }
#pragma omp barrier
        /* pass 2: R = S0 + Σ partials of the threads holding blocks of the
         * slice's batch, in thread order; one slice per iteration */
#pragma omp for schedule(static)
        for (int bh = 0; bh < BH; bh++) {
            const long bu0 = (long)(bh / s->H) * nblk, bu1 = bu0 + nblk;
            float *R = (a->state_out ? a->state_out : slots) + (size_t)bh * FV1;
            if (a->state_in)
                memmove(R, a->state_in + (size_t)bh * FV1, sizeof(float) * FV1);
            else
                memset(R, 0, sizeof(float) * FV1);
            for (int th = 0; th < nt; th++) {
                long l0, l1;
                lat_split(p.units, th, nt, &l0, &l1);
                if (l0 >= l1 || l1 <= bu0 || l0 >= bu1)
                    continue;
                const float *Q = part + ((size_t)th * (size_t)BH + (size_t)bh) * ls;
                for (size_t e = 0; e < FV1; e++)
                    R[e] += Q[e];
            }
        }
        /* (implicit barrier) pass 3: o = Φ_Q S / max(Φ_Q z, 0.1), in place */
        for (long u = lo; u < hi; u++) {
            const int b = (int)(u / nblk);
            const long r0 = (u % nblk) * PB;
            const int n = (int)(T - r0 < PB ? T - r0 : PB);
            block_features(s, a->in[0], NULL, tab, b, r0, n, Phi, ldp, NULL);
            for (int h = 0; h < s->H; h++) {
                const float *R = (a->state_out ? a->state_out : slots) + (size_t)(b * s->H + h) * FV1;
                const float *Ph = Phi + (size_t)h * ldp;
                for (int i = 0; i < F; i++) /* the normalizer column, contiguous */
                    vec[i] = R[(size_t)i * (size_t)V1 + (size_t)V];
                float *o = a->out + lat_idx_bthd(s, b, (int)r0, h, V);
                lat_sgemm('N', 'N', n, V, F, 1.0f, Ph, F, R, V1, 0.0f, o, HV);
                for (int r = 0; r < n; r++) {
                    const float den = clamp_den(lat_vec_dot(Ph + (size_t)r * (size_t)F, vec, (size_t)F));
                    lat_vec_scale(o + (size_t)r * (size_t)HV, 1.0f / den, (size_t)V);
                }
            }
        }
    }
    return LAT_OK;
}

/* Token block of the parallel form: a block of features stays in L1 (32 KB;
 * measured at D = 64: 64-row blocks of mla's 2K features 10% faster than 256,
 * 128-row blocks of linrec's K features 5% faster than 256). */
static int par_block(const lat_shape *s)
{
    const int b = 8192 / nfeat(s);
    return b < 32 ? 32 : (b > 256 ? 256 : b);
}

static size_t ws_parallel(const lat_shape *s, int nthreads) { return ws_blocks(s, nthreads, par_block(s)); }

static double flops_parallel(const lat_shape *s) { return flops_recurrent(s); }

static lat_status mla_parallel(const lat_args *a)
{
    if (a->shape->causal)
        return LAT_UNSUPPORTED; /* the parallel form is the non-causal one */
    return noncausal_blocks(a, par_block(a->shape));
}

// ---------------------------------------------------------------------------
// descriptor
// ---------------------------------------------------------------------------

static const lat_input mla_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 1e-3, .hb = 0.0,
     .doc = "queries [B][T][H][K], N(0,1); harsh N(0,1)·1e-3 (spec §0.4 'tiny' set: the 0.1 "
            "denominator clamp is active for most rows)",
     .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 1e-3, .hb = 0.0,
     .doc = "keys [B][T][H][K], N(0,1); harsh N(0,1)·1e-3", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
};

static const lat_knob mla_knobs[] = {
    LAT_KNOB(causal, 1, 0, 1, "1 causal (decoder, prefix sums), 0 non-causal (encoder, one global state)"),
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the chunk form (fla: 64)"),
    LAT_KNOB(window, 0, 0, 1 << 30,
             "cosFormer length M of the sin/cos(pi i/2M) re-weighting; 0 = ctx (pos + T: the whole "
             "sequence, the code's oracle length)"),
    LAT_KNOB(variant, 0, 0, 1, "0 cosFormer (ReLU x sin/cos re-weighting), 1 simple (ReLU only)"),
};

static const lat_form mla_forms[] = {
    {"recurrent", mla_recurrent, ws_recurrent, flops_recurrent,
     "token by token, fused rank-1 update and readout over the 2K sin/cos features, SIMD over V"},
    {"chunk", mla_chunk, ws_chunk, flops_chunk,
     "causal: chunkwise on the GLA-family engine (no decay), normalizer as an extra value column; non-causal: C-token blocks"},
    {"parallel", mla_parallel, ws_parallel, flops_parallel,
     "non-causal only: S = Phi_K^T [V|1] and O = Phi_Q S as L1-sized token-block GEMMs, in place"},
};

const lat_method lat_method_mla = {
    .name = "mla",
    .family = "linear",
    .paper = "Agostinelli & Chen, Improving Autoregressive NLP Tasks via Modular Linearized Attention, "
             "2023 (arXiv 2304.08453); cosFormer: Qin et al., ICLR 2022",
    .summary = "cosFormer: ReLU features re-weighted by sin/cos(pi i/2M), denominator clamp 0.1",
    .dim_map = "K = V = D (2K features)",
    .inputs = mla_inputs,
    .n_inputs = (int)(sizeof mla_inputs / sizeof mla_inputs[0]),
    .knobs = mla_knobs,
    .n_knobs = (int)(sizeof mla_knobs / sizeof mla_knobs[0]),
    .forms = mla_forms,
    .n_forms = (int)(sizeof mla_forms / sizeof mla_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = mla_state_dims,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = NULL,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_mla,
    .reference_alt = ref_mla_parallel,
    .tol_out = 1e-5,
    .tol_state = 1e-4,
    .approximates_softmax = 0,
    .tol_note = "state tolerance 1e-4: the state is an O(t)-growing prefix sum accumulated token by "
                "token in fp32 by the recurrent form",
};
