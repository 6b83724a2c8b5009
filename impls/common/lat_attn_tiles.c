/* lat_attn_tiles.c — tiled online-softmax engine, dense masked engine and
 * KV ring helpers (see lat_attn_tiles.h). The tiled kernel is the one of
 * impls/softmax.c (FlashAttention-2 with transposed tiles, packing,
 * prefetch, split-KV), generalized from "causal prefix" to "runs with a
 * band"; its products run in an AVX-512 micro-kernel (below), or in
 * lat_sgemm on other builds. */
#include <limits.h>

#include "lat_attn_tiles.h"

// --------------------------------------------------------------------------
// Plan and per-thread scratch of the tiled engine
// --------------------------------------------------------------------------

/* Query rows from which a key tile is packed before its products. */
#define AT_PACK_ROWS 16

/* Split-KV: fewest keys worth a thread of their own. */
#define AT_MIN_SPLIT_KEYS 256

typedef struct {
    int ns;              /* key splits per item (1 = off)             */
    size_t thread_bytes; /* per-thread scratch                        */
    size_t part_bytes;   /* one split's partial (m, ℓ, uᵀ) of an item  */
} at_plan;

static at_plan at_make_plan(const lat_attn_desc *d, int nthreads)
{
    const size_t fb = sizeof(float), q = (size_t)d->bq;
    at_plan p;
    p.ns = 1;
    if (nthreads > 1 && d->items > 0 && d->items < nthreads) {
        const long want = (nthreads + d->items - 1) / d->items;
        const long most = d->split_keys / AT_MIN_SPLIT_KEYS;
        p.ns = (int)(want < most ? want : (most > 1 ? most : 1));
    }
    p.thread_bytes = lat_align64(q * (size_t)d->K * fb) +             /* qt   */
                     lat_align64((size_t)d->bk * q * fb) +            /* st   */
                     lat_align64(q * (size_t)d->V * fb) +             /* ut   */
                     lat_align64((size_t)d->bk * (size_t)d->K * fb) + /* kp   */
                     lat_align64((size_t)d->bk * (size_t)d->V * fb) + /* vp   */
                     4 * lat_align64(q * fb) +                        /* m ℓ sh α */
                     2 * lat_align64((size_t)(d->max_runs > 0 ? d->max_runs : 1) * sizeof(lat_kv_run));
    p.part_bytes = p.ns > 1 ? lat_align64(q * (size_t)(d->V + 2) * fb) : 0;
    return p;
}

size_t lat_attn_tiled_workspace(const lat_attn_desc *d, int nthreads)
{
    const at_plan p = at_make_plan(d, nthreads);
    return lat_align64(p.thread_bytes) * (size_t)nthreads +
           p.part_bytes * (size_t)(d->items > 0 ? d->items : 0) * (size_t)p.ns;
}

/* Prefetch streams: rows of the next key tile (and, during an item's last
 * key tile, its output rows and the next item's queries and first key
 * tile), issued a few rows before each micro-kernel call instead of in one
 * burst: a burst of ~1000 lines fills the miss buffers and stalls the core
 * (the prefetch and packing loops took ~25% of block_local's time). Into L2
 * (prefetcht1): a key tile is larger than L1. */
typedef struct {
    const char *base[6];
    size_t ld[6];
    int n[6], bytes[6], rw[6];
    int ns, si, row; /* streams, cursor */
} at_pf;

#define AT_PF_ROWS 12 /* rows per micro-kernel call */

static void at_pf_add(at_pf *pf, const float *base, int n, int ld, int w, int rw)
{
    if (n <= 0 || pf->ns >= 6)
        return;
    const int i = pf->ns++;
    pf->base[i] = (const char *)base;
    pf->ld[i] = (size_t)ld * sizeof(float);
    pf->n[i] = n;
    pf->bytes[i] = w * (int)sizeof(float);
    pf->rw[i] = rw;
}

/* issue up to `rows` rows (rows < 0: all that are left) */
static void at_pf_step(at_pf *pf, int rows)
{
#if defined(__GNUC__)
    while (rows != 0 && pf->si < pf->ns) {
        const int i = pf->si;
        if (pf->row >= pf->n[i]) {
            pf->si++;
            pf->row = 0;
            continue;
        }
        const char *p = pf->base[i] + (size_t)pf->row * pf->ld[i];
        if (pf->rw[i])
            for (int o = 0; o < pf->bytes[i]; o += 64)
                __builtin_prefetch(p + o, 1, 2);
        else
            for (int o = 0; o < pf->bytes[i]; o += 64)
                __builtin_prefetch(p + o, 0, 2);
        pf->row++;
        rows--;
    }
#else
    (void)rows;
    pf->si = pf->ns;
#endif
}

static void at_pf_reset(at_pf *pf)
{
    at_pf_step(pf, -1);
    pf->ns = pf->si = pf->row = 0;
}

/* One query tile's running softmax, transposed (queries along the lanes):
 *   qt [K][nr]   the tile's queries,        sᵀ = Kₜ·qt   (sgemm NN)
 *   st [nc][nr]  scores, then P, of a key tile
 *   ut [V][nr]   running numerators,        uᵀ += Vₜᵀ·P  (sgemm TN)
 * so the row-wise bookkeeping (max, exp, sum, rescale) is element-wise
 * vector work, and both products are "broadcast a row element × a lane
 * vector" (the micro-kernel), or OpenBLAS's fast small-matrix NN/TN kernels
 * on the lat_sgemm path (its NT path is ~30% slower at these sizes). */
typedef struct {
    float *restrict qt, *restrict st, *restrict ut;
    float *restrict kp, *restrict vp; /* the key tile, packed [nc][K|V] */
    float *restrict m, *restrict l;   /* running max and denominator   */
    float *restrict sh, *restrict al; /* scratch: shift and rescale α  */
    lat_kv_run *runs, *runs2; /* the runs of this item and of the next */
    int ld; /* lanes per row of qt, st, ut: nr, or nr rounded up to 16 (AT_FAST) */
    at_pf pf;
} at_acc;

static void at_carve(at_acc *t, const lat_attn_desc *d, char *w)
{
    const size_t q = (size_t)d->bq, fb = sizeof(float);
    t->qt = (float *)w;
    w += lat_align64(q * (size_t)d->K * fb);
    t->st = (float *)w;
    w += lat_align64((size_t)d->bk * q * fb);
    t->ut = (float *)w;
    w += lat_align64(q * (size_t)d->V * fb);
    t->kp = (float *)w;
    w += lat_align64((size_t)d->bk * (size_t)d->K * fb);
    t->vp = (float *)w;
    w += lat_align64((size_t)d->bk * (size_t)d->V * fb);
    t->m = (float *)w;
    t->l = (float *)(w + lat_align64(q * fb));
    t->sh = (float *)(w + 2 * lat_align64(q * fb));
    t->al = (float *)(w + 3 * lat_align64(q * fb));
    t->runs = (lat_kv_run *)(w + 4 * lat_align64(q * fb));
    t->runs2 = (lat_kv_run *)((char *)t->runs +
                              lat_align64((size_t)(d->max_runs > 0 ? d->max_runs : 1) * sizeof(lat_kv_run)));
    t->pf.ns = t->pf.si = t->pf.row = 0;
}

// --------------------------------------------------------------------------
// Online-softmax update of one key tile
// --------------------------------------------------------------------------

/* at_update for a single query (T = 1 decode): the same steps on a
 * contiguous row of nc scores, with the vector helpers. */
static void at_update1(at_acc *t, int nc, int V)
{
    float *restrict st = t->st;
    const float mx = lat_vec_max(st, (size_t)nc), m_old = t->m[0];
    const float m_new = mx > m_old ? mx : m_old;
    if (m_new == -INFINITY) { /* no key yet: P = 0, nothing changes */
        memset(st, 0, (size_t)nc * sizeof(float));
        return;
    }
    for (int c = 0; c < nc; c++)
        st[c] -= m_new;
    lat_vec_exp(st, st, (size_t)nc);
    const float sum = lat_vec_sum(st, (size_t)nc);
    if (m_old == -INFINITY) { /* first keys: ℓ and u are still 0 */
        t->l[0] = sum;
    } else {
        const float alpha = lat_expf(m_old - m_new);
        t->l[0] = alpha * t->l[0] + sum;
        lat_vec_scale(t->ut, alpha, (size_t)V);
    }
    t->m[0] = m_new;
}

/* Online update with the scores of one key tile in st [nc][nr] (−∞ where
 * masked): st becomes P = exp(s − m_new), ℓ and uᵀ are rescaled by
 * α = exp(m_old − m_new). A query with no key so far keeps m = −∞: its
 * shift is taken as 0 so that no −∞ − (−∞) is formed (§0.6 guard). */
static void at_update(at_acc *t, int nr, int nc, int V)
{
    float *restrict st = t->st, *restrict m = t->m, *restrict sh = t->sh, *restrict al = t->al;
    if (nr == 1) { /* decode: one query, st is a plain row */
        at_update1(t, nc, V);
        return;
    }
    for (int r = 0; r < nr; r++)
        sh[r] = m[r];
    for (int c = 0; c < nc; c++) {
        const float *restrict row = st + (size_t)c * (size_t)nr;
        for (int r = 0; r < nr; r++)
            sh[r] = row[r] > sh[r] ? row[r] : sh[r];
    }
    for (int r = 0; r < nr; r++) {
        const float m_new = sh[r];
        sh[r] = m_new == -INFINITY ? 0.0f : m_new;
        al[r] = m[r] - sh[r]; /* −∞ for a query's first keys: α = 0 */
        m[r] = m_new;
    }
    lat_vec_exp(al, al, (size_t)nr);
    for (int c = 0; c < nc; c++) {
        float *restrict row = st + (size_t)c * (size_t)nr;
        for (int r = 0; r < nr; r++)
            row[r] -= sh[r];
    }
    lat_vec_exp(st, st, (size_t)nc * (size_t)nr);
    for (int r = 0; r < nr; r++)
        t->l[r] *= al[r];
    for (int c = 0; c < nc; c++) {
        const float *restrict row = st + (size_t)c * (size_t)nr;
        for (int r = 0; r < nr; r++)
            t->l[r] += row[r];
    }
    for (int j = 0; j < V; j++) {
        float *restrict u = t->ut + (size_t)j * (size_t)nr;
        for (int r = 0; r < nr; r++)
            u[r] *= al[r];
    }
}

// --------------------------------------------------------------------------
// Key tiles: packing, prefetch, band mask
// --------------------------------------------------------------------------

/* Copy nc key and value rows into the contiguous kp [nc][K], vp [nc][V].
 * The sources are rows H·K floats apart (K+V in a cache, l·H·K in a strided
 * class): read in place by OpenBLAS's small-matrix kernels, which do not
 * pack, such power-of-two strides thrash L1 sets and TLB and the GEMMs run at
 * half speed. Worth it once a tile has many query rows. */
static void at_pack(const float *k, int ldk, const float *v, int ldv, int nc, int K, int V, at_acc *t)
{
    for (int cc = 0; cc < nc; cc++) {
        const float *restrict ks = k + (size_t)cc * (size_t)ldk;
        const float *restrict vs = v + (size_t)cc * (size_t)ldv;
        float *restrict kp = t->kp + (size_t)cc * (size_t)K;
        float *restrict vp = t->vp + (size_t)cc * (size_t)V;
        for (int i = 0; i < K; i++)
            kp[i] = ks[i];
        for (int j = 0; j < V; j++)
            vp[j] = vs[j];
    }
}

/* Hint the cache lines of nc key and value rows (a no-op without
 * __builtin_prefetch): strided rows defeat the hardware prefetcher, and
 * fetching the next tile during this one measured +25% tokens/s in decode,
 * +5% in prefill. Always inlined: as a function of its own GCC 12 finds it
 * "const" and deletes the call. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void at_prefetch(const lat_kv_run *r, int c0, int nc, int K, int V)
{
#if defined(__GNUC__)
    for (int cc = c0; cc < c0 + nc; cc++) {
        const char *k = (const char *)(r->k + (size_t)cc * (size_t)r->ldk);
        const char *v = (const char *)(r->v + (size_t)cc * (size_t)r->ldv);
        for (size_t o = 0; o < (size_t)K * sizeof(float); o += 64)
            __builtin_prefetch(k + o);
        for (size_t o = 0; o < (size_t)V * sizeof(float); o += 64)
            __builtin_prefetch(v + o);
    }
#else
    (void)r, (void)c0, (void)nc, (void)K, (void)V;
#endif
}

/* −∞ into st [nc][nr] where key ca+cc of run r is outside the band of query
 * row r: visible iff kc − hi ≤ row ≤ kc − lo, kc = key − query-0 coordinate. */
static void at_mask(float *restrict st, int ld, const lat_kv_run *r, int ca, int nc, int qpos, int nr)
{
    for (int cc = 0; cc < nc; cc++) {
        const long kc = (long)r->pos + ca + cc - qpos;
        long rlo = r->hi >= LAT_BAND_OPEN ? 0 : kc - r->hi;
        long rhi = r->lo <= -LAT_BAND_OPEN ? nr - 1 : kc - r->lo;
        rlo = rlo < 0 ? 0 : (rlo > nr ? nr : rlo);
        rhi = rhi >= nr ? nr - 1 : (rhi < -1 ? -1 : rhi);
        float *row = st + (size_t)cc * (size_t)ld;
        if (rhi < rlo) { /* hidden from every row */
            for (int q = 0; q < nr; q++)
                row[q] = -INFINITY;
            continue;
        }
        for (long q = 0; q < rlo; q++)
            row[q] = -INFINITY;
        for (long q = rhi + 1; q < nr; q++)
            row[q] = -INFINITY;
    }
}

/* Trim run r to the keys some row of the tile can see (in place). */
static void at_trim(lat_kv_run *r, const lat_qtile *t)
{
    long c0 = 0, c1 = r->n; /* [c0, c1) */
    if (r->lo > -LAT_BAND_OPEN) {
        const long a = (long)t->pos + r->lo - r->pos;
        c0 = a > c0 ? a : c0;
    }
    if (r->hi < LAT_BAND_OPEN) {
        const long z = (long)t->pos + r->hi + t->nr - r->pos; /* last visible + 1 */
        c1 = z < c1 ? z : c1;
    }
    if (c1 <= c0) {
        r->n = 0;
        return;
    }
    r->k += (size_t)c0 * (size_t)r->ldk;
    r->v += (size_t)c0 * (size_t)r->ldv;
    r->pos += (int)c0;
    r->n = (int)(c1 - c0);
}


// --------------------------------------------------------------------------
// AVX-512 tile path: register-blocked products, lane-wise softmax update
// --------------------------------------------------------------------------

/* With AVX-512 the two products of a key tile run in the register-blocked
 * micro-kernel below instead of lat_sgemm: OpenBLAS's small-matrix kernels
 * (no packing, one call per product) reached ~60% of the FMA peak on these
 * 128×64×64 shapes, the broadcast kernel ~90% (the tile stays in L1/L2).
 * The tile's lanes (queries) are padded to a multiple of 16 (zero queries,
 * never written out), so every row of qt, st and uᵀ is whole vectors; the
 * rescale uᵀ ← α∘uᵀ is folded into the P·V product, and a key tile that the
 * band cuts is split into 16-key slices, each computed only on the 16-lane
 * groups of queries that see one of its keys (the diagonal of a causal tile
 * costs ~5/8 of the full tile instead of all of it). Other builds, decode
 * (one query) and tiles wider than the scratch keep the lat_sgemm path. */
#if defined(__AVX512F__)
#define AT_FAST 1
#define AT_L 16 /* lanes per vector */

/* C[i][0, 16·NR) for i < MR, two kinds (AL):
 *   0:  scale · Σ_k A[i·ai + k·ak] · B[k·ldb + (0, 16·NR)]        (sᵀ = Kₜ·qt)
 *   1:  al∘C[i] + Σ_k A[i·ai + k·ak] · B[k·ldb + (0, 16·NR)]      (uᵀ = α∘uᵀ + Vₜᵀ·P)
 * always inlined into the panel loops below, so the accumulators' set-up
 * and stores are specialized (a generic call per block cost ~70 cycles of
 * 1024: the products ran at 91% of peak instead of 98%). */
#define AT_MK(MR, NR, AL)                                                                          \
    static inline __attribute__((always_inline)) void at_mk_##MR##_##NR##_##AL(                    \
        int nk, const float *restrict A, size_t ai, size_t ak, const float *restrict B, size_t ldb,  \
        float *restrict C, size_t ldc, const float *restrict al, float scale)                      \
    {                                                                                              \
        __m512 acc[MR][NR];                                                                        \
        for (int v = 0; v < NR; v++) {                                                             \
            const __m512 g = AL ? _mm512_loadu_ps(al + AT_L * v) : _mm512_setzero_ps();            \
            for (int i = 0; i < MR; i++)                                                           \
                acc[i][v] = AL ? _mm512_mul_ps(g, _mm512_loadu_ps(C + (size_t)i * ldc + AT_L * v)) \
                               : _mm512_setzero_ps();                                              \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int k = 0; k < nk; k++) {                                     \
            const float *restrict b = B + (size_t)k * ldb, *restrict a = A + (size_t)k * ak;       \
            __m512 bv[NR];                                                                         \
            for (int v = 0; v < NR; v++)                                                           \
                bv[v] = _mm512_loadu_ps(b + AT_L * v);                                             \
            for (int i = 0; i < MR; i++) {                                                         \
                const __m512 x = _mm512_set1_ps(a[(size_t)i * ai]);                                \
                for (int v = 0; v < NR; v++)                                                       \
                    acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);                              \
            }                                                                                      \
        }                                                                                          \
        const __m512 sc = _mm512_set1_ps(scale);                                                   \
        for (int i = 0; i < MR; i++)                                                               \
            for (int v = 0; v < NR; v++)                                                           \
                _mm512_storeu_ps(C + (size_t)i * ldc + AT_L * v,                                   \
                                 AL ? acc[i][v] : _mm512_mul_ps(acc[i][v], sc));                   \
    }
#define AT_MK2(MR, NR) AT_MK(MR, NR, 0) AT_MK(MR, NR, 1)
#define AT_MK_4(NR) AT_MK2(1, NR) AT_MK2(2, NR) AT_MK2(3, NR) AT_MK2(4, NR)
#define AT_MK_8(NR) AT_MK_4(NR) AT_MK2(5, NR) AT_MK2(6, NR) AT_MK2(7, NR) AT_MK2(8, NR)
AT_MK_8(1) AT_MK_8(2) AT_MK_8(3) AT_MK_4(4)
AT_MK2(9, 1) AT_MK2(10, 1) AT_MK2(11, 1) AT_MK2(12, 1) AT_MK2(13, 1) AT_MK2(14, 1) AT_MK2(15, 1) AT_MK2(16, 1)

/* Panel: rows [0, m) of C over 16·NR lanes in MR-row blocks (MR × NR =
 * 4 × 4, 8 × 3, 8 × 2, 16 × 1: 16 to 24 accumulators; MR divides the usual
 * row counts 16, 64, 128), the tail by the shorter kernels; AT_PF_ROWS rows
 * of the prefetch streams before each block. */
#define AT_ARGS(i) nk, A + (size_t)(i) * ai, ai, ak, B, ldb, C + (size_t)(i) * ldc, ldc, al, scale
#define AT_T(MR, NR, AL)                                                                           \
    case MR:                                                                                       \
        at_mk_##MR##_##NR##_##AL(AT_ARGS(i));                                                      \
        break;
#define AT_PANEL(NR, MR, AL, TAILS)                                                                \
    static void at_panel_##NR##_##AL(int m, int nk, const float *A, size_t ai, size_t ak,          \
                                     const float *B, size_t ldb, float *C, size_t ldc,             \
                                     const float *al, float scale, at_pf *pf)                      \
    {                                                                                              \
        int i = 0;                                                                                 \
        for (; i + MR <= m; i += MR) {                                                             \
            at_pf_step(pf, AT_PF_ROWS);                                                            \
            at_mk_##MR##_##NR##_##AL(AT_ARGS(i));                                                  \
        }                                                                                          \
        switch (m - i) { TAILS(NR, AL) default: break; }                                           \
    }
#define AT_T3(NR, AL) AT_T(1, NR, AL) AT_T(2, NR, AL) AT_T(3, NR, AL)
#define AT_T7(NR, AL) AT_T3(NR, AL) AT_T(4, NR, AL) AT_T(5, NR, AL) AT_T(6, NR, AL) AT_T(7, NR, AL)
#define AT_T15(NR, AL)                                                                             \
    AT_T7(NR, AL) AT_T(8, NR, AL) AT_T(9, NR, AL) AT_T(10, NR, AL) AT_T(11, NR, AL)               \
        AT_T(12, NR, AL) AT_T(13, NR, AL) AT_T(14, NR, AL) AT_T(15, NR, AL)
AT_PANEL(1, 16, 0, AT_T15) AT_PANEL(1, 16, 1, AT_T15)
AT_PANEL(2, 8, 0, AT_T7) AT_PANEL(2, 8, 1, AT_T7)
AT_PANEL(3, 8, 0, AT_T7) AT_PANEL(3, 8, 1, AT_T7)
AT_PANEL(4, 4, 0, AT_T3) AT_PANEL(4, 4, 1, AT_T3)

typedef void (*at_panel_fn)(int, int, const float *, size_t, size_t, const float *, size_t, float *, size_t,
                            const float *, float, at_pf *);
static const at_panel_fn at_panels[2][4] = {
    {at_panel_1_0, at_panel_2_0, at_panel_3_0, at_panel_4_0},
    {at_panel_1_1, at_panel_2_1, at_panel_3_1, at_panel_4_1},
};

/* C[i][0, 16·nv) for i < m, the product of at_mk over all lanes, cut into
 * ≤ 4-vector column panels */
static void at_gemm(int nv, int m, int nk, const float *A, size_t ai, size_t ak, const float *B,
                    size_t ldb, float *C, size_t ldc, const float *al, float scale, at_pf *pf)
{
    for (int v0 = 0; v0 < nv; v0 += 4) {
        const int w = nv - v0 < 4 ? nv - v0 : 4;
        const size_t o = (size_t)AT_L * (size_t)v0;
        at_panels[al != NULL][w - 1](m, nk, A, ai, ak, B + o, ldb, C + o, ldc, al ? al + o : NULL, scale, pf);
    }
}

/* Online update of lanes [r0, r0 + 16·nv) with the scores st [nc][ld]
 * (−∞ where masked): the same steps and exp as at_update, one vector of
 * queries at a time; α is left in t->al for the P·V product. */
static void at_update_fast(at_acc *t, int r0, int nv, int nc)
{
    const size_t ld = (size_t)t->ld;
    for (int v = 0; v < nv; v++) {
        const int r = r0 + AT_L * v;
        float *restrict st = t->st + r;
        const __m512 m_old = _mm512_loadu_ps(t->m + r);
        __m512 mx0 = m_old, mx1 = m_old;
        int c = 0;
        for (; c + 2 <= nc; c += 2) {
            mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(st + (size_t)c * ld));
            mx1 = _mm512_max_ps(mx1, _mm512_loadu_ps(st + (size_t)(c + 1) * ld));
        }
        if (c < nc)
            mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(st + (size_t)c * ld));
        const __m512 m_new = _mm512_max_ps(mx0, mx1), ninf = _mm512_set1_ps(-INFINITY);
        const __m512 sh = _mm512_mask_mov_ps(m_new, _mm512_cmp_ps_mask(m_new, ninf, _CMP_EQ_OQ),
                                             _mm512_setzero_ps());
        const __m512 alpha = lat_exp16_neg(_mm512_sub_ps(m_old, sh)); /* −∞ → α = 0 */
        _mm512_storeu_ps(t->m + r, m_new);
        _mm512_storeu_ps(t->al + r, alpha);
        __m512 l0 = _mm512_mul_ps(_mm512_loadu_ps(t->l + r), alpha), l1 = _mm512_setzero_ps();
        for (c = 0; c + 2 <= nc; c += 2) {
            float *p0 = st + (size_t)c * ld, *p1 = p0 + ld;
            const __m512 e0 = lat_exp16_neg(_mm512_sub_ps(_mm512_loadu_ps(p0), sh));
            const __m512 e1 = lat_exp16_neg(_mm512_sub_ps(_mm512_loadu_ps(p1), sh));
            _mm512_storeu_ps(p0, e0);
            _mm512_storeu_ps(p1, e1);
            l0 = _mm512_add_ps(l0, e0);
            l1 = _mm512_add_ps(l1, e1);
        }
        if (c < nc) {
            float *p0 = st + (size_t)c * ld;
            const __m512 e0 = lat_exp16_neg(_mm512_sub_ps(_mm512_loadu_ps(p0), sh));
            _mm512_storeu_ps(p0, e0);
            l0 = _mm512_add_ps(l0, e0);
        }
        _mm512_storeu_ps(t->l + r, _mm512_add_ps(l0, l1));
    }
}

/* One block of a key tile: nc keys (k, v rows ldk, ldv apart, key 0 = key ca
 * of run r) against lanes [r0, r1) of the tile (multiples of 16); element
 * mask when `mask`. */
static void at_block(at_acc *a, const lat_attn_desc *d, const lat_kv_run *r, int ca, const float *k,
                     size_t ldk, const float *v, size_t ldv, int nc, int r0, int r1, int qpos, int mask)
{
    const size_t ld = (size_t)a->ld;
    const int nv = (r1 - r0) / AT_L;
    float *st = a->st + r0;
    at_gemm(nv, nc, d->K, k, ldk, 1, a->qt + r0, ld, st, ld, NULL, d->scale, &a->pf); /* sᵀ = Kₜ·qt */
    if (mask)
        at_mask(st, (int)ld, r, ca, nc, qpos + r0, r1 - r0);
    at_update_fast(a, r0, nv, nc);
    at_gemm(nv, d->V, nc, v, 1, ldv, st, ld, a->ut + r0, ld, a->al + r0, 1.0f, &a->pf); /* uᵀ = α∘uᵀ + Vₜᵀ·P */
}

/* A key tile the band cuts: 16-key slices, each on the lane groups that see
 * one of its keys (neighbouring slices with the same lanes merged). */
static void at_cut_tile(at_acc *a, const lat_attn_desc *d, const lat_qtile *t, const lat_kv_run *r, int ca,
                        const float *k, size_t ldk, const float *v, size_t ldv, int nc)
{
    const long kc0 = (long)r->pos + ca - t->pos; /* key 0 − query 0 */
    const int nr = t->nr, nrp = a->ld;
    const int lopen = r->lo <= -LAT_BAND_OPEN, hopen = r->hi >= LAT_BAND_OPEN;
    int bs = 0, br0 = 0, br1 = 0, bmask = 0; /* pending block [bs, c0) on lanes [br0, br1) */
    for (int c0 = 0;; c0 += AT_L) {
        const int done = c0 >= nc, ce = done ? nc : c0;
        int r0 = 0, r1 = 0, m = 0;
        if (!done) {
            const int c1 = c0 + AT_L < nc ? c0 + AT_L : nc;
            long qlo = hopen ? 0 : kc0 + c0 - r->hi, qhi = lopen ? nr - 1 : kc0 + c1 - 1 - r->lo;
            qlo = qlo < 0 ? 0 : qlo;
            qhi = qhi > nr - 1 ? nr - 1 : qhi;
            if (qhi >= qlo) {
                r0 = (int)(qlo / AT_L) * AT_L;
                r1 = (int)((qhi + AT_L) / AT_L) * AT_L;
                r1 = r1 < nrp ? r1 : nrp;
                m = (!lopen && kc0 + c0 - (r1 - 1) < r->lo) || (!hopen && kc0 + c1 - 1 - r0 > r->hi);
            }
        }
        if (!done && r0 == br0 && r1 == br1) {
            bmask |= m;
            continue;
        }
        if (br1 > br0 && ce > bs)
            at_block(a, d, r, ca + bs, k + (size_t)bs * ldk, ldk, v + (size_t)bs * ldv, ldv, ce - bs, br0, br1,
                     t->pos, bmask);
        if (done)
            break;
        bs = c0, br0 = r0, br1 = r1, bmask = m;
    }
}
#endif

/* lanes of a tile of nr rows: nr, or a multiple of 16 on the fast path */
static int at_lanes(const lat_attn_desc *d, int nr)
{
#if defined(AT_FAST)
    const int nrp = (nr + AT_L - 1) / AT_L * AT_L;
    if (nr >= 8 && nrp <= d->bq)
        return nrp;
#else
    (void)d;
#endif
    return nr;
}

// --------------------------------------------------------------------------
// One query tile over (a key slice of) its runs
// --------------------------------------------------------------------------

/* Hint all lines of n rows of w floats, ld apart (rw: 1 for a write):
 * strided query / output rows (a residue class, rows l·H·K floats apart)
 * miss one by one otherwise; asked for together, the misses overlap. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void at_prefetch_rows(const float *x, int n, int ld, int w, int rw)
{
#if defined(__GNUC__)
    for (int r = 0; r < n; r++) {
        const char *p = (const char *)(x + (size_t)r * (size_t)ld);
        for (size_t o = 0; o < (size_t)w * sizeof(float); o += 64) {
            if (rw)
                __builtin_prefetch(p + o, 1);
            else
                __builtin_prefetch(p + o, 0);
        }
    }
#else
    (void)x, (void)n, (void)ld, (void)w, (void)rw;
#endif
}

static void at_begin(at_acc *a, const lat_attn_desc *d, const lat_qtile *t, int use_init)
{
    const int K = d->K, V = d->V, nr = t->nr, ld = at_lanes(d, nr);
    a->ld = ld;
    at_prefetch_rows(t->q, nr, t->ldq, K, 0);
    if (use_init && t->init != NULL)
        at_prefetch_rows(t->init, nr, t->ld_init, V + 2, 0);
    lat_transpose(a->qt, (size_t)ld, t->q, (size_t)t->ldq, nr, K); /* qt = tile of Q, transposed */
    if (ld > nr) /* padding lanes: zero queries (finite scores, never written out) */
        for (int i = 0; i < K; i++)
            memset(a->qt + (size_t)i * (size_t)ld + nr, 0, (size_t)(ld - nr) * sizeof(float));
    for (int r = 0; r < ld; r++) {
        a->m[r] = -INFINITY;
        a->l[r] = 0.0f;
    }
    if (use_init && t->init != NULL) {
        for (int r = 0; r < nr; r++) {
            const float *p = t->init + (size_t)r * (size_t)t->ld_init;
            a->m[r] = p[0];
            a->l[r] = p[1];
        }
        lat_transpose(a->ut, (size_t)ld, t->init + 2, (size_t)t->ld_init, nr, V);
        if (ld > nr)
            for (int j = 0; j < V; j++)
                memset(a->ut + (size_t)j * (size_t)ld + nr, 0, (size_t)(ld - nr) * sizeof(float));
    } else {
        memset(a->ut, 0, (size_t)V * (size_t)ld * sizeof(float));
    }
}

/* Trim the runs of tile t to the band, then to keys [skip, skip + take) of
 * their concatenation; prefetch the first key tile (it then travels while
 * at_begin transposes the queries). */
static void at_select(const lat_attn_desc *d, const lat_qtile *t, lat_kv_run *runs, int nruns, long skip,
                      long take, int prefetch)
{
    long seen = 0;
    for (int i = 0; i < nruns; i++) {
        lat_kv_run *r = &runs[i];
        at_trim(r, t);
        const long lo = skip - seen, hi = skip + take - seen; /* slice in run coords */
        seen += r->n;
        long c0 = lo > 0 ? lo : 0, c1 = hi < r->n ? hi : r->n;
        if (c1 <= c0) {
            r->n = 0;
            continue;
        }
        r->k += (size_t)c0 * (size_t)r->ldk;
        r->v += (size_t)c0 * (size_t)r->ldv;
        r->pos += (int)c0;
        r->n = (int)(c1 - c0);
    }
    for (int i = 0; prefetch && i < nruns; i++)
        if (runs[i].n > 0) {
            at_prefetch(&runs[i], 0, runs[i].n < d->bk ? runs[i].n : d->bk, d->K, d->V);
            break;
        }
}

/* Rows of tile t over its selected runs (at_select): leaves the partial
 * (m, ℓ, uᵀ) in a. */
static void at_attend(at_acc *a, const lat_attn_desc *d, const lat_qtile *t, const lat_kv_run *runs,
                      int nruns, const lat_qtile *tn, const lat_kv_run *runs_n, int nruns_n)
{
    const int K = d->K, V = d->V, nr = t->nr, bk = d->bk;
    int ri = 0, ca = 0;
    while (ri < nruns && runs[ri].n == 0)
        ri++;
    while (ri < nruns) {
        const lat_kv_run *r = &runs[ri];
        const int cb = ca + bk < r->n ? ca + bk : r->n, nc = cb - ca;
        /* the next key tile travels from L3/DRAM during this one; during
         * the last, this item's output rows and the next item's queries and
         * first key tile (tn: the item this thread takes next) */
        int rn = ri, cn = cb;
        if (cn >= r->n) {
            rn = ri + 1;
            cn = 0;
            while (rn < nruns && runs[rn].n == 0)
                rn++;
        }
        at_pf_reset(&a->pf);
        if (rn < nruns) {
            const lat_kv_run *x = &runs[rn];
            const int n = (cn + bk < x->n ? cn + bk : x->n) - cn;
            at_pf_add(&a->pf, x->k + (size_t)cn * (size_t)x->ldk, n, x->ldk, K, 0);
            at_pf_add(&a->pf, x->v + (size_t)cn * (size_t)x->ldv, n, x->ldv, V, 0);
        } else {
            if (t->part != NULL)
                at_pf_add(&a->pf, t->part, nr, t->ld_part, V + 2, 1);
            else
                at_pf_add(&a->pf, t->o, nr, t->ldo, V, 1);
            if (tn != NULL) {
                at_pf_add(&a->pf, tn->q, tn->nr, tn->ldq, K, 0);
                if (tn->init != NULL)
                    at_pf_add(&a->pf, tn->init, tn->nr, tn->ld_init, V + 2, 0);
                for (int i = 0; i < nruns_n; i++)
                    if (runs_n[i].n > 0) {
                        const lat_kv_run *x = &runs_n[i];
                        const int n = bk < x->n ? bk : x->n;
                        at_pf_add(&a->pf, x->k, n, x->ldk, K, 0);
                        at_pf_add(&a->pf, x->v, n, x->ldv, V, 0);
                        break;
                    }
            }
        }

        const float *k = r->k + (size_t)ca * (size_t)r->ldk, *v = r->v + (size_t)ca * (size_t)r->ldv;
        int ldk = r->ldk, ldv = r->ldv;
        if (nr >= AT_PACK_ROWS && (ldk != K || ldv != V)) { /* not already packed */
            at_pack(k, ldk, v, ldv, nc, K, V, a);
            k = a->kp;
            v = a->vp;
            ldk = K;
            ldv = V;
        }
        const long dmin = (long)r->pos + ca - ((long)t->pos + nr - 1);
        const long dmax = (long)r->pos + cb - 1 - t->pos;
        const int cut = (r->lo > -LAT_BAND_OPEN && dmin < r->lo) || (r->hi < LAT_BAND_OPEN && dmax > r->hi);
#if defined(AT_FAST)
        if (a->ld % AT_L == 0) {
            if (cut)
                at_cut_tile(a, d, t, r, ca, k, (size_t)ldk, v, (size_t)ldv, nc);
            else
                at_block(a, d, r, ca, k, (size_t)ldk, v, (size_t)ldv, nc, 0, a->ld, t->pos, 0);
            ri = rn;
            ca = cn;
            continue;
        }
#endif
        at_pf_step(&a->pf, -1);
        lat_sgemm('N', 'N', nc, nr, K, d->scale, k, ldk, a->qt, nr, 0.0f, a->st, nr);
        if (cut)
            at_mask(a->st, nr, r, ca, nc, t->pos, nr);
        at_update(a, nr, nc, V);
        lat_sgemm('T', 'N', V, nr, nc, 1.0f, v, ldv, a->st, nr, 1.0f, a->ut, nr);
        ri = rn;
        ca = cn;
    }
}

/* o = uᵀ/ℓ transposed back (0 for a query with no key), or the partial.
 * Scales uᵀ in place (it is not used afterwards). */
static void at_finish(at_acc *a, const lat_attn_desc *d, const lat_qtile *t)
{
    const int V = d->V, nr = t->nr;
    if (t->part != NULL) {
        at_prefetch_rows(t->part, nr, t->ld_part, V + 2, 1);
        for (int r = 0; r < nr; r++) {
            float *p = t->part + (size_t)r * (size_t)t->ld_part;
            p[0] = a->m[r];
            p[1] = a->l[r];
        }
        lat_transpose(t->part + 2, (size_t)t->ld_part, a->ut, (size_t)a->ld, V, nr);
        return;
    }
    at_prefetch_rows(t->o, nr, t->ldo, V, 1);
    float *restrict inv = a->sh; /* scratch */
    for (int r = 0; r < nr; r++)
        inv[r] = a->l[r] > 0.0f ? 1.0f / a->l[r] : 0.0f;
    for (int j = 0; j < V; j++) {
        float *restrict u = a->ut + (size_t)j * (size_t)a->ld;
        for (int r = 0; r < nr; r++)
            u[r] *= inv[r];
    }
    lat_transpose(t->o, (size_t)t->ldo, a->ut, (size_t)a->ld, V, nr);
}

/* §0.6 merge of the ns split partials of one tile into a, then finish.
 * Empty partials (m = −∞) are skipped: no −∞ − (−∞). */
static void at_merge(at_acc *a, const lat_attn_desc *d, const at_plan *p, const lat_qtile *t,
                     const char *parts)
{
    const int V = d->V, nr = t->nr, bq = d->bq, ld = at_lanes(d, nr); /* the partials' lanes */
    a->ld = nr;
    for (int r = 0; r < nr; r++) {
        a->m[r] = -INFINITY;
        a->l[r] = 0.0f;
    }
    memset(a->ut, 0, (size_t)V * (size_t)nr * sizeof(float));
    for (int sp = 0; sp < p->ns; sp++) {
        const float *pm = (const float *)(parts + p->part_bytes * (size_t)sp);
        for (int r = 0; r < nr; r++)
            a->m[r] = pm[r] > a->m[r] ? pm[r] : a->m[r];
    }
    for (int sp = 0; sp < p->ns; sp++) {
        const float *pm = (const float *)(parts + p->part_bytes * (size_t)sp);
        const float *pl = pm + bq, *pu = pm + 2 * bq;
        for (int r = 0; r < nr; r++) {
            if (pm[r] == -INFINITY)
                continue;
            const float w = lat_expf(pm[r] - a->m[r]);
            a->l[r] += w * pl[r];
            for (int j = 0; j < V; j++)
                a->ut[(size_t)j * (size_t)nr + (size_t)r] += w * pu[(size_t)j * (size_t)ld + (size_t)r];
        }
    }
    at_finish(a, d, t);
}

/* keys of tile t after trimming (split-KV sizing) */
static long at_keys(const lat_kv_run *runs, int nruns, const lat_qtile *t)
{
    long n = 0;
    for (int i = 0; i < nruns; i++) {
        lat_kv_run r = runs[i];
        at_trim(&r, t);
        n += r.n;
    }
    return n;
}

/* Take items from the shared counter until one has rows: its tile and
 * trimmed runs, or −1 when none is left. */
static long at_take(const lat_attn_desc *d, long *next, lat_qtile *t, lat_kv_run *runs, int *nruns, int *bad,
                    int prefetch)
{
    for (;;) {
        long it;
#pragma omp atomic capture
        it = (*next)++;
        if (it >= d->items)
            return -1;
        memset(t, 0, sizeof *t);
        const int n = d->tile(d->ctx, it, t, runs);
        if (t->nr <= 0)
            continue;
        if (t->nr > d->bq || n > d->max_runs) {
#pragma omp atomic write
            *bad = 1;
            continue;
        }
        at_select(d, t, runs, n, 0, LONG_MAX, prefetch);
        *nruns = n;
        return it;
    }
}

lat_status lat_attn_tiled(const lat_attn_desc *d, void *work, size_t work_bytes, int nthreads)
{
    if (d->bq < 1 || d->bk < 1 || d->K < 1 || d->V < 1)
        return LAT_EINVAL;
    if (d->items <= 0)
        return LAT_OK;
    const at_plan p = at_make_plan(d, nthreads);
    if (work_bytes < lat_attn_tiled_workspace(d, nthreads))
        return LAT_ENOMEM;
    char *parts = (char *)work + lat_align64(p.thread_bytes) * (size_t)nthreads;
    const size_t item_parts = p.part_bytes * (size_t)p.ns;
    int bad = 0;

    long next = 0; /* ns == 1: the next item to take */
#pragma omp parallel num_threads(nthreads)
    {
        at_acc a;
        at_carve(&a, d, (char *)work + lat_align64(p.thread_bytes) * (size_t)lat_thread_id());

        if (p.ns == 1) {
            /* dynamic schedule, one item taken ahead: its queries and first
             * key tile are prefetched during the current item's last tile */
            lat_qtile tt[2];
            lat_kv_run *rr[2] = {a.runs, a.runs2};
            int nn[2] = {0, 0}, c = 0;
            long cur = at_take(d, &next, &tt[0], rr[0], &nn[0], &bad, 1);
            while (cur >= 0) {
                const long nxt = at_take(d, &next, &tt[c ^ 1], rr[c ^ 1], &nn[c ^ 1], &bad, 0);
                at_begin(&a, d, &tt[c], 1);
                at_attend(&a, d, &tt[c], rr[c], nn[c], nxt >= 0 ? &tt[c ^ 1] : NULL, rr[c ^ 1], nn[c ^ 1]);
                at_finish(&a, d, &tt[c]);
                cur = nxt;
                c ^= 1;
            }
            at_pf_reset(&a.pf);
        }

        if (p.ns > 1) {
#pragma omp for schedule(dynamic, 1)
        for (long wi = 0; wi < d->items * p.ns; wi++) {
            const long it = wi / p.ns;
            const int sp = (int)(wi % p.ns);
            lat_qtile t;
            memset(&t, 0, sizeof t);
            const int nruns = d->tile(d->ctx, it, &t, a.runs);
            if (t.nr <= 0)
                continue;
            if (t.nr > d->bq || nruns > d->max_runs) {
#pragma omp atomic write
                bad = 1;
                continue;
            }
            /* split-KV: share sp of the tile's keys; the partial is kept */
            const long total = at_keys(a.runs, nruns, &t);
            const long per = (total + p.ns - 1) / p.ns;
            float *part = (float *)(parts + item_parts * (size_t)it + p.part_bytes * (size_t)sp);
            at_acc pa = a;
            pa.m = part;
            pa.l = part + d->bq;
            pa.ut = part + 2 * d->bq;
            at_select(d, &t, a.runs, nruns, per * sp, per, 1);
            at_begin(&pa, d, &t, sp == 0); /* the initial partial counts once */
            at_attend(&pa, d, &t, a.runs, nruns, NULL, NULL, 0);
            at_pf_reset(&pa.pf);
        }
        }

        if (p.ns > 1) {
#pragma omp for schedule(static)
            for (long it = 0; it < d->items; it++) {
                lat_qtile t;
                memset(&t, 0, sizeof t);
                d->tile(d->ctx, it, &t, a.runs);
                if (t.nr > 0 && t.nr <= d->bq)
                    at_merge(&a, d, &p, &t, parts + item_parts * (size_t)it);
            }
        }
    }
    return bad ? LAT_EINVAL : LAT_OK;
}

// --------------------------------------------------------------------------
// Dense engine: materialized scores, row mask, row softmax
// --------------------------------------------------------------------------

static size_t ad_slice_bytes(const lat_attn_dense_desc *d)
{
    return lat_align64((size_t)d->rows * (size_t)d->S * sizeof(float)) +
           lat_align64((size_t)(d->max_segs > 0 ? d->max_segs : 1) * sizeof(lat_kv_run));
}

size_t lat_attn_dense_workspace(const lat_attn_dense_desc *d, int nthreads)
{
    return ad_slice_bytes(d) * (size_t)nthreads;
}

/* row[lo, hi) ← softmax (−∞ entries → 0), the rest ← 0; empty row → 0 */
static void ad_row_softmax(float *restrict row, int lo, int hi, int S)
{
    lo = lo < 0 ? 0 : lo;
    hi = hi > S ? S : hi;
    if (hi > lo) {
        const float m = lat_vec_max(row + lo, (size_t)(hi - lo));
        if (m == -INFINITY) {
            lo = hi = 0;
        } else {
            for (int j = lo; j < hi; j++)
                row[j] -= m;
            lat_vec_exp(row + lo, row + lo, (size_t)(hi - lo));
            lat_vec_scale(row + lo, 1.0f / lat_vec_sum(row + lo, (size_t)(hi - lo)), (size_t)(hi - lo));
        }
    } else {
        lo = hi = 0;
    }
    for (int j = 0; j < lo; j++)
        row[j] = 0.0f;
    for (int j = hi > lo ? hi : 0; j < S; j++)
        row[j] = 0.0f;
}

lat_status lat_attn_dense(const lat_attn_dense_desc *d, void *work, size_t work_bytes, int nthreads)
{
    if (d->rows < 1)
        return LAT_EINVAL;
    if (work_bytes < lat_attn_dense_workspace(d, nthreads))
        return LAT_ENOMEM;
    const int n = d->i1 - d->i0;
    if (n <= 0)
        return LAT_OK;
    const int nrb = (n + d->rows - 1) / d->rows;
    const long items = (long)d->B * d->H * nrb;
    const size_t slice = ad_slice_bytes(d);
    const int K = d->K, V = d->V, S = d->S, ldq = d->H * K, ldo = d->H * V;
    int bad = 0;

#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (long it = 0; it < items; it++) {
        const int rb = (int)(it % nrb), h = (int)((it / nrb) % d->H), b = (int)(it / nrb / d->H);
        char *w = (char *)work + slice * (size_t)lat_thread_id();
        float *P = (float *)w;
        lat_kv_run *segs = (lat_kv_run *)(w + lat_align64((size_t)d->rows * (size_t)S * sizeof(float)));
        const int r0 = d->i0 + rb * d->rows, nr = d->i1 - r0 < d->rows ? d->i1 - r0 : d->rows;
        const float *q = d->q + (((size_t)b * (size_t)d->T + (size_t)r0) * (size_t)d->H + (size_t)h) * (size_t)K;
        float *o = d->o + (((size_t)b * (size_t)d->T + (size_t)r0) * (size_t)d->H + (size_t)h) * (size_t)V;
        const int nseg = d->segs(d->ctx, b, h, segs);
        int col = 0;
        for (int g = 0; g < nseg; g++) {
            if (col + segs[g].n > S) {
#pragma omp atomic write
                bad = 1;
                break;
            }
            lat_sgemm('N', 'T', nr, segs[g].n, K, d->scale, q, ldq, segs[g].k, segs[g].ldk, 0.0f, P + col, S);
            col += segs[g].n;
        }
        for (int r = 0; r < nr; r++) {
            float *row = P + (size_t)r * (size_t)S;
            int lo = 0, hi = col;
            d->mask(d->ctx, b, h, r0 + r, row, col, &lo, &hi);
            ad_row_softmax(row, lo, hi > col ? col : hi, col);
        }
        /* O = P·V, segment by segment */
        float beta = 0.0f;
        col = 0;
        for (int g = 0; g < nseg && col + segs[g].n <= S; g++) {
            lat_sgemm('N', 'N', nr, V, segs[g].n, 1.0f, P + col, S, segs[g].v, segs[g].ldv, beta, o, ldo);
            col += segs[g].n;
            beta = 1.0f;
        }
        if (beta == 0.0f) /* no key at all */
            for (int r = 0; r < nr; r++)
                memset(o + (size_t)r * (size_t)ldo, 0, (size_t)V * sizeof(float));
    }
    return bad ? LAT_EINVAL : LAT_OK;
}

// --------------------------------------------------------------------------
// KV cache / ring buffer
// --------------------------------------------------------------------------

int lat_kv_ring_runs(const lat_shape *s, const float *ring, int R, int b, int h, int p0, int p1,
                     int lo, int hi, lat_kv_run *runs)
{
    if (p1 <= p0 || ring == NULL)
        return 0;
    const int slot = p0 % R, n = p1 - p0, n1 = n < R - slot ? n : R - slot;
    const int ld = s->K + s->V;
    runs[0] = (lat_kv_run){.k = ring + lat_kv_row(s, R, b, h, slot), .ldk = ld, .ldv = ld, .n = n1,
                           .pos = p0, .lo = lo, .hi = hi};
    runs[0].v = runs[0].k + s->K;
    if (n1 == n)
        return 1;
    runs[1] = (lat_kv_run){.k = ring + lat_kv_row(s, R, b, h, 0), .ldk = ld, .ldv = ld, .n = n - n1,
                           .pos = p0 + n1, .lo = lo, .hi = hi};
    runs[1].v = runs[1].k + s->K;
    return 2;
}

lat_kv_run lat_kv_call_run(const lat_shape *s, const float *k, const float *v, int b, int h, int p0,
                           int n, int step, int c0, int lo, int hi)
{
    const int t0 = p0 - s->pos;
    lat_kv_run r = {.k = k + lat_idx_bthd(s, b, t0, h, s->K), .v = v + lat_idx_bthd(s, b, t0, h, s->V),
                    .ldk = step * s->H * s->K, .ldv = step * s->H * s->V, .n = n, .pos = c0,
                    .lo = lo, .hi = hi};
    return r;
}

void lat_kv_write(const lat_args *a, int R)
{
    const lat_shape *s = a->shape;
    const float *in = a->state_in;
    float *out = a->state_out;
    const int K = s->K, V = s->V, W = K + V;
    const int nw = s->T < R ? s->T : R;        /* tokens that land     */
    const int first = s->T - nw;               /* first of them        */
    const int start = (int)(((long)s->pos + first) % R); /* its slot   */
    const int keep0 = (start + nw) % R, keep = R - nw;   /* kept slots */
    const size_t row = (size_t)W * sizeof(float);
#pragma omp parallel for collapse(2) num_threads(a->nthreads) schedule(static)
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            float *dst = out + lat_kv_row(s, R, b, h, 0);
            const float *src = in ? in + lat_kv_row(s, R, b, h, 0) : NULL;
            if (src != dst && keep > 0) { /* slots [keep0, keep0 + keep) mod R */
                const int k1 = keep0 + keep <= R ? keep : R - keep0;
                if (src) {
                    memcpy(dst + (size_t)keep0 * (size_t)W, src + (size_t)keep0 * (size_t)W, (size_t)k1 * row);
                    memcpy(dst, src, (size_t)(keep - k1) * row);
                } else {
                    memset(dst + (size_t)keep0 * (size_t)W, 0, (size_t)k1 * row);
                    memset(dst, 0, (size_t)(keep - k1) * row);
                }
            }
            for (int t = first; t < s->T; t++) {
                float *d = dst + (size_t)((s->pos + t) % R) * (size_t)W;
                memcpy(d, a->in[1] + lat_idx_bthd(s, b, t, h, K), (size_t)K * sizeof(float));
                memcpy(d + K, a->in[2] + lat_idx_bthd(s, b, t, h, V), (size_t)V * sizeof(float));
            }
        }
}
