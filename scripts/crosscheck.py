#!/usr/bin/python3
"""crosscheck.py — an independent numpy (fp64) cross-check of every latbench method.

For every registered method (`latbench list --names`), every form and a few knob cases, runs

    latbench run --method M --form F --B 2 --T 37 --H 2 --D 16 --threads 2 --reps 1 \
                 --min-time 0 --dump DIR --out DIR/run [--knob value ...]

loads the dumped inputs (float32 .npy, as `latbench list` names them) and the call as
resolved (shape.json: B, T, H, K, V, pos, ctx, every knob), recomputes the output — and the
final state where the method has one — in numpy float64 from the equations of
/work/shared/spec/attention.md and /work/shared/spec/recurrent.md, and compares:

    out.npy        the fp32 optimized form     rel. RMSE <= the method's tolerance (latbench list)
    ref_out.npy    the C fp64 reference        rel. RMSE <= 1e-9 (the two fp64 oracles agree)
    state_out.npy / ref_state_out.npy          the same two thresholds, with the state tolerance

(rel. RMSE = ||x - numpy|| / ||numpy||.) This file is written from the spec's equations, not
ported from the C code. Where the spec leaves a convention open (layout, gate parametrization,
eps, window convention, ...), the C method's header comment was read for it; every such
convention is marked "C convention" next to the method below.

Cases (METHODS below): per method the paper defaults plus, for every knob that changes the
function (causal, window, stride, variant, features, n_state, groups, expand, agents, ...), at
least one other value (windows and strides below T so that the sparse patterns matter), and a
few size overrides (K != V, other H, a 5 x 7 grid for the vision methods). The algorithmic knobs
(chunk 16, subchunk 8, tile_q 16, tile_k 8) are set small so that the chunked and tiled forms run
several chunks and tiles at T = 37. A case a form declares unsupported (`latbench run` exits with
"unsupported", e.g. a non-causal-only form under causal = 1) is a SKIP; a form that no case
reaches is a FAIL.

A method registered in the build that this script has no implementation of is a FAIL
("no independent implementation"), so a new method cannot silently skip the cross-check.

Usage: crosscheck.py [--latbench PATH] [--methods a,b] [--keep DIR] [--verbose]
Exit status: 0 all passed, 1 any failure, 2 usage error or numpy missing.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    sys.stderr.write("crosscheck: numpy is missing; install the Debian package python3-numpy "
                     "(sudo apt-get install python3-numpy) and run with /usr/bin/python3\n")
    sys.exit(2)

SHAPE = dict(B=2, T=37, H=2, D=16)   # small and awkward: T prime, several chunks/tiles
THREADS = 2
REF_TOL = 1e-9                        # numpy fp64 vs the C fp64 reference
DEFAULT_TOL = 1e-4                    # when `latbench list` prints no tolerance

# Algorithmic knobs (they do not change the function) are set small in every case so that the
# chunk / tiled forms really run several chunks, sub-chunks and tiles at T = 37.
ALGO_KNOBS = dict(chunk=16, subchunk=8, tile_q=16, tile_k=8)


# ================================================================================================
# helpers
# ================================================================================================
def softplus(x):
    # spec recurrent.md §0.1: threshold 20 (Mamba CUDA kernel, ggml)
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def logsigmoid(x):
    return -np.logaddexp(0.0, -x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def silu(x):
    return x * sigmoid(x)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def masked_softmax(q, k, v, allowed, scale):
    """Softmax attention restricted to an allowed set (attention.md §1, §2).
    q [B,T,H,K], k [B,S,H,K], v [B,S,H,V]; allowed: bool [T,S] or [H,T,S].
    A query with an empty allowed set outputs 0 (§1 pitfalls)."""
    s = scale * np.einsum('bthk,bshk->bhts', q, k)
    allowed = np.asarray(allowed, dtype=bool)
    if allowed.ndim == 2:
        allowed = allowed[None, None]
    else:
        allowed = allowed[None]
    s = np.where(allowed, s, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.where(allowed, np.exp(s - m), 0.0)
    den = p.sum(-1, keepdims=True)
    p = np.divide(p, den, out=np.zeros_like(p), where=den > 0)
    return np.einsum('bhts,bshv->bthv', p, v)


def kv_rows(k, v):
    """[B,T,H,K], [B,T,H,V] -> rows [B,H,T,K+V] (a KV-cache row: K key floats, then V values)."""
    return np.concatenate([k, v], axis=-1).transpose(0, 2, 1, 3)


def ring_state(k, v, R, pos=0):
    """Ring buffer of R slots, token p in slot p mod R (the last R tokens), unwritten slots 0.
    C convention (sliding_window.c, block_local.c): [B][H][R][K+V]."""
    B, T, H, K = k.shape
    V = v.shape[-1]
    st = np.zeros((B, H, R, K + V))
    rows = kv_rows(k, v)
    for t in range(max(0, T - R), T):
        st[:, :, (pos + t) % R, :] = rows[:, :, t, :]
    return st


def kv_cache_state(k, v, ctx):
    """KV cache [B][H][ctx][K+V], token t in row t, rows >= T zero (softmax.c convention)."""
    B, T, H, K = k.shape
    st = np.zeros((B, H, ctx, K + v.shape[-1]))
    st[:, :, :T, :] = kv_rows(k, v)
    return st


def idx_grid(T):
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    return i, j


# ================================================================================================
# the methods (numpy fp64, from the spec's equations)
# Each takes (x: dict of float64 input arrays, s: shape.json dict) and returns (out, state|None).
# ================================================================================================

# ---- softmax: attention.md §1 --------------------------------------------------------------------
# C convention: state = KV cache [B][H][ctx][K+V] (softmax.c header); tau = 1/sqrt(K).
def m_softmax(x, s):
    q, k, v = x['q'], x['k'], x['v']
    T, K = s['T'], s['K']
    i, j = idx_grid(T)
    allowed = (j <= i) if s['knobs']['causal'] else np.ones((T, T), bool)
    o = masked_softmax(q, k, v, allowed, 1 / math.sqrt(K))
    return o, kv_cache_state(k, v, s['ctx'])


# ---- sliding_window: attention.md §2.1 -----------------------------------------------------------
# Spec (recommended, App. C.1): w = keys including self, A(i) = [max(0, i-w+1), i].
# C convention: state = ring of w slots [B][H][w][K+V], token p in slot p mod w.
def m_sliding_window(x, s):
    q, k, v = x['q'], x['k'], x['v']
    T, K, w = s['T'], s['K'], s['knobs']['window']
    i, j = idx_grid(T)
    o = masked_softmax(q, k, v, (j <= i) & (i - j < w), 1 / math.sqrt(K))
    return o, ring_state(k, v, w)


# ---- block_local: attention.md §2.4 --------------------------------------------------------------
# C conventions (block_local.c header): block size b = `window` (variants 0, 1); variant 1 =
# own + previous block (+ next block when non-causal; lucidrains local-attention); variants 2, 3 =
# BlockBERT with n_blk = 2, 3 blocks of b = ceil(T/n_blk), head h attends key block
# (x + h mod n) mod n of query block x; state = ring of R = b (v0), 2b (v1), `window` (BlockBERT)
# slots.
def m_block_local(x, s):
    q, k, v = x['q'], x['k'], x['v']
    T, K, H = s['T'], s['K'], s['H']
    kn = s['knobs']
    var, causal, w = kn['variant'], kn['causal'], kn['window']
    i, j = idx_grid(T)
    if var in (0, 1):
        b = w
        bi, bj = i // b, j // b
        if var == 0:
            allowed = bj == bi
        else:
            allowed = (bj >= bi - 1) & (bj <= bi + (0 if causal else 1))
        if causal:
            allowed = allowed & (j <= i)
        R = b if var == 0 else 2 * b
    else:
        n = 2 if var == 2 else 3
        b = -(-T // n)
        bi, bj = i // b, j // b
        allowed = np.stack([bj == (bi + h % n) % n for h in range(H)])
        if causal:
            allowed = allowed & (j <= i)[None]
        R = w
    o = masked_softmax(q, k, v, allowed, 1 / math.sqrt(K))
    return o, ring_state(k, v, R)


# ---- sparse_strided: attention.md §2.5 -----------------------------------------------------------
# Spec: strided A1 = {i-l < j <= i} (the code's l keys), A2 = {j <= i, (i-j) mod l = 0};
# fixed F1 = {j <= i, j//l = i//l}, F2 = {j <= i, j mod l >= l-c}.
# C conventions (sparse_strided.c): the two head types merged into one head (set union);
# l = `stride`, 0 -> ceil(sqrt(ctx)); c = `window` clamped to l; state = KV cache [B][H][ctx][K+V].
def m_sparse_strided(x, s):
    q, k, v = x['q'], x['k'], x['v']
    T, K = s['T'], s['K']
    kn = s['knobs']
    n = s['ctx']
    l = kn['stride']
    if l == 0:
        l = math.isqrt(n)
        if l * l < n:
            l += 1
    i, j = idx_grid(T)
    causal = j <= i
    if kn['variant'] == 0:
        allowed = causal & ((i - j < l) | ((i - j) % l == 0))
    else:
        c = min(kn['window'], l)
        allowed = causal & ((j // l == i // l) | (j % l >= l - c))
    o = masked_softmax(q, k, v, allowed, 1 / math.sqrt(K))
    return o, kv_cache_state(k, v, n)


# ---- longformer: attention.md §2.2, §2.3, errata 3 -----------------------------------------------
# Spec: non-causal; W(i) = {i + d m : |m| <= w1} ∩ [0,T); non-global rows attend G ∪ (W(i) \ G)
# with the local projections; global rows attend every key with q_g, k_g, v_g.
# C conventions (longformer.c): w1 = `window` (one-sided), d = `stride`, G = the first
# min(agents, T) tokens; no state.
def m_longformer(x, s):
    T, K = s['T'], s['K']
    kn = s['knobs']
    w1, d, g = kn['window'], kn['stride'], min(kn['agents'], s['T'])
    i, j = idx_grid(T)
    band = ((j - i) % d == 0) & (np.abs(j - i) <= d * w1)
    allowed = band | (j < g)
    tau = 1 / math.sqrt(K)
    o = masked_softmax(x['q'], x['k'], x['v'], allowed, tau)
    if g > 0:
        og = masked_softmax(x['q_g'], x['k_g'], x['v_g'], np.ones((T, T), bool), tau)
        o[:, :g] = og[:, :g]
    return o, None


# ---- linear_attn: attention.md §3 ----------------------------------------------------------------
# Spec: phi = elu + 1, eps = 1e-6 (fast-transformers), no 1/sqrt(D); quadratic equivalent
# o_i = sum_j a_ij v_j / (sum_j a_ij + eps), a_ij = <phi(q_i), phi(k_j)> [j <= i].
# C convention: state [B][H][K][V+1] = [S | z] (z as an extra value column).
def m_linear_attn(x, s):
    fq, fk, v = elu(x['q']) + 1, elu(x['k']) + 1, x['v']
    T = s['T']
    a = np.einsum('bthk,bshk->bhts', fq, fk)
    if s['knobs']['causal']:
        i, j = idx_grid(T)
        a = a * (j <= i)
    num = np.einsum('bhts,bshv->bthv', a, v)
    den = a.sum(-1).transpose(0, 2, 1)[..., None]
    o = num / (den + 1e-6)
    S = np.einsum('bthk,bthv->bhkv', fk, v)
    z = fk.sum(1)[..., None]
    return o, np.concatenate([S, z], axis=-1)


# ---- generic diagonal-decay recurrence (recurrent.md §0.2, §0.4) --------------------------------
def gated_recurrence(q, k, v, logdecay, scale=1.0, S0=None):
    """S_t = Diag(e^{g_t}) S_{t-1} + k_t v_t^T, o_t = scale * S_t^T q_t.
    q, k, logdecay [B,T,H,K] (or logdecay [B,T,H] scalar); v [B,T,H,V]."""
    B, T, H, K = k.shape
    V = v.shape[-1]
    S = np.zeros((B, H, K, V)) if S0 is None else S0.copy()
    o = np.zeros((B, T, H, V))
    for t in range(T):
        g = logdecay[:, t]
        a = np.exp(g)[..., None] if g.ndim == 3 else np.exp(g)[..., None, None]
        S = a * S + np.einsum('bhk,bhv->bhkv', k[:, t], v[:, t])
        o[:, t] = scale * np.einsum('bhk,bhkv->bhv', q[:, t], S)
    return o, S


# ---- gla: recurrent.md §2.3 ----------------------------------------------------------------------
# Spec: S_t = Diag(alpha_t) S_{t-1} + k v^T, o = s S^T q, s = K^-1/2, g = log alpha (input).
def m_gla(x, s):
    return gated_recurrence(x['q'], x['k'], x['v'], x['g'], 1 / math.sqrt(s['K']))


# ---- retnet: recurrent.md §1 ---------------------------------------------------------------------
# Spec: gamma_h = 1 - 2^(-5-h), S_n = gamma S_{n-1} + k v^T, o = s S^T q, s = K^-1/2;
# xPos (variant 1, C convention: applied inside the method at positions pos + t): torchscale
# interleaved pairs, theta_j = 10000^(-j/(K/2-1)), q and k rotated the same way (§1.3).
def xpos_rotate(x, pos0):
    B, T, H, K = x.shape
    half = K // 2
    theta = 10000.0 ** (-np.arange(half) / (half - 1)) if half > 1 else np.ones(1)
    ang = (pos0 + np.arange(T))[:, None] * theta[None, :]          # [T, K/2]
    c, sn = np.cos(ang)[None, :, None, :], np.sin(ang)[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    y = np.empty_like(x)
    y[..., 0::2] = x0 * c - x1 * sn
    y[..., 1::2] = x1 * c + x0 * sn
    return y


def m_retnet(x, s):
    q, k, v = x['q'], x['k'], x['v']
    B, T, H, K = q.shape
    if s['knobs']['variant'] == 1:
        q, k = xpos_rotate(q, s['pos']), xpos_rotate(k, s['pos'])
    lg = np.log1p(-2.0 ** (-5.0 - np.arange(H)))                     # [H]
    g = np.broadcast_to(lg[None, None, :], (B, T, H))
    return gated_recurrence(q, k, v, g, 1 / math.sqrt(K))


# ---- hgrn2: recurrent.md §4 ----------------------------------------------------------------------
# Spec: S_t = Diag(f_t) S_{t-1} + (1 - f_t) i_t^T, o = s S^T q, s = 1 (original code, errata 5).
# C conventions (hgrn2.c): input g = log f; a head of K = V = D channels is split into D/n
# HGRN2 heads of n channels (knob expand = n), group gi = channels [gi n, (gi+1) n) of q, g, i;
# state [B][H][K/n][n][n] (group, key row, value column).
def m_hgrn2(x, s):
    q, g, inp = x['q'], x['g'], x['i']
    B, T, H, K = q.shape
    n = s['knobs']['expand']
    G = K // n
    qq = q.reshape(B, T, H * G, n)
    gg = g.reshape(B, T, H * G, n)
    ii = inp.reshape(B, T, H * G, n)
    kk = -np.expm1(gg)                                                 # 1 - f
    o, S = gated_recurrence(qq, kk, ii, gg, 1.0)
    return o.reshape(B, T, H, K), S.reshape(B, H, G, n, n)


# ---- rwkv6: recurrent.md §7.3 --------------------------------------------------------------------
# Spec: o_t = r_t^T S_{t-1} + (r_t . (u ⊙ k_t)) v_t, S_t = Diag(w_t) S_{t-1} + k_t v_t^T,
# w = exp(-exp(w_raw)), no scale. C convention: input w_raw, u [H][K].
def m_rwkv6(x, s):
    r, k, v, wr, u = x['r'], x['k'], x['v'], x['w_raw'], x['u']
    B, T, H, K = r.shape
    V = v.shape[-1]
    S = np.zeros((B, H, K, V))
    o = np.zeros((B, T, H, V))
    for t in range(T):
        bonus = np.einsum('bhk,hk,bhk->bh', r[:, t], u, k[:, t])
        o[:, t] = np.einsum('bhk,bhkv->bhv', r[:, t], S) + bonus[..., None] * v[:, t]
        w = np.exp(-np.exp(wr[:, t]))
        S = w[..., None] * S + np.einsum('bhk,bhv->bhkv', k[:, t], v[:, t])
    return o, S


# ---- deltanet / gated_deltanet: recurrent.md §3.3 ------------------------------------------------
# Spec: u_t = beta_t (v_t - S~^T k_t), S_t = S~ + k_t u_t^T, S~ = e^{a_t} S_{t-1} (gated) or
# S_{t-1}; o_t = s S_t^T q_t, s = K^-1/2; q, k L2-normalized x / sqrt(sum x^2 + 1e-6) (§3.2).
# C convention: the L2 normalization is inside the method (raw q, k inputs); scalar beta [B,T,H];
# gated: a [B,T,H] = log-decay.
def l2norm(x):
    return x / np.sqrt((x * x).sum(-1, keepdims=True) + 1e-6)


def delta_rule(x, s, gated):
    q, k, v, beta = l2norm(x['q']), l2norm(x['k']), x['v'], x['beta']
    B, T, H, K = q.shape
    V = v.shape[-1]
    sc = 1 / math.sqrt(K)
    S = np.zeros((B, H, K, V))
    o = np.zeros((B, T, H, V))
    for t in range(T):
        if gated:
            S = np.exp(x['a'][:, t])[..., None, None] * S
        u = beta[:, t][..., None] * (v[:, t] - np.einsum('bhkv,bhk->bhv', S, k[:, t]))
        S = S + np.einsum('bhk,bhv->bhkv', k[:, t], u)
        o[:, t] = sc * np.einsum('bhk,bhkv->bhv', q[:, t], S)
    return o, S


def m_deltanet(x, s):
    return delta_rule(x, s, False)


def m_gated_deltanet(x, s):
    return delta_rule(x, s, True)


# ---- mlstm: recurrent.md §9.4 --------------------------------------------------------------------
# Spec: stabilized recurrence, k^ = k/sqrt(K), log f = logsigmoid(f~), i = e^{i~},
# h = C^T q / (max(|n^T q|, e^{-m}) + eps), eps = 1e-6, m0 = 0 (xlstm step code).
# C convention: state [B][H][K*V + K + 1] = C (key-major, stabilized), n, m.
def m_mlstm(x, s):
    q, k, v, ig, fg = x['q'], x['k'], x['v'], x['igate'], x['fgate']
    B, T, H, K = q.shape
    V = v.shape[-1]
    kh = k / math.sqrt(K)
    C = np.zeros((B, H, K, V))
    n = np.zeros((B, H, K))
    m = np.zeros((B, H))
    o = np.zeros((B, T, H, V))
    for t in range(T):
        lf = logsigmoid(fg[:, t])
        mn = np.maximum(lf + m, ig[:, t])
        fp = np.exp(lf + m - mn)
        ip = np.exp(ig[:, t] - mn)
        C = fp[..., None, None] * C + ip[..., None, None] * np.einsum('bhk,bhv->bhkv', kh[:, t], v[:, t])
        n = fp[..., None] * n + ip[..., None] * kh[:, t]
        m = mn
        num = np.einsum('bhkv,bhk->bhv', C, q[:, t])
        den = np.maximum(np.abs((n * q[:, t]).sum(-1)), np.exp(-m)) + 1e-6
        o[:, t] = num / den[..., None]
    st = np.concatenate([C.reshape(B, H, K * V), n, m[..., None]], axis=-1)
    return o, st


# ---- mamba2: recurrent.md §6.3 -------------------------------------------------------------------
# Spec: dt = softplus(dt_raw + dt_bias), A = -exp(A_log), h_t = exp(dt A) h + (dt x_t) B_t^T (P x N),
# y = h C + D x; head h uses group h // (H/G).
# C conventions (mamba2.c): P = V, N = n_state; D per head; no z gate / norm; state [B][H][N][P]
# (the key-major S = h^T).
def m_mamba2(x, s):
    X, dt_raw, dtb, Alog, Bm, Cm, Dk = (x['x'], x['dt'], x['dt_bias'], x['A_log'], x['B'], x['C'],
                                        x['D'])
    B_, T, H, P = X.shape
    G, N = Bm.shape[2], Bm.shape[3]
    grp = np.arange(H) // (H // G)
    Bh, Ch = Bm[:, :, grp, :], Cm[:, :, grp, :]                       # [B,T,H,N]
    dt = softplus(dt_raw + dtb[None, None, :])                        # [B,T,H]
    A = -np.exp(Alog)
    h = np.zeros((B_, H, P, N))
    y = np.zeros((B_, T, H, P))
    for t in range(T):
        dA = np.exp(dt[:, t] * A[None, :])
        h = dA[..., None, None] * h + np.einsum('bhp,bhn->bhpn', dt[:, t][..., None] * X[:, t], Bh[:, t])
        y[:, t] = np.einsum('bhpn,bhn->bhp', h, Ch[:, t]) + Dk[None, :, None] * X[:, t]
    return y, h.transpose(0, 1, 3, 2)


# ---- mamba: recurrent.md §5.3 --------------------------------------------------------------------
# Spec: delta = softplus(delta_raw + delta_bias), A = -exp(A_log), B-bar = delta B (Euler),
# h = exp(delta A) h + delta B u, y = (sum_n C h + D u) silu(z).
# C conventions (mamba.c): channels Dm = H*V; channel d reads group d // (Dm/G); state [B][Dm][N].
def m_mamba(x, s):
    u, dtr, dtb, Alog, Bm, Cm, Dk, z = (x['u'], x['dt'], x['dt_bias'], x['A_log'], x['B'], x['C'],
                                        x['D'], x['z'])
    B_, T, Dm = u.shape
    G, N = Bm.shape[2], Bm.shape[3]
    grp = np.arange(Dm) // (Dm // G)
    Bd, Cd = Bm[:, :, grp, :], Cm[:, :, grp, :]                       # [B,T,Dm,N]
    A = -np.exp(Alog)                                                 # [Dm,N]
    dl = softplus(dtr + dtb[None, None, :])
    h = np.zeros((B_, Dm, N))
    y = np.zeros((B_, T, Dm))
    for t in range(T):
        h = np.exp(dl[:, t][..., None] * A[None]) * h + (dl[:, t] * u[:, t])[..., None] * Bd[:, t]
        y[:, t] = ((h * Cd[:, t]).sum(-1) + Dk[None] * u[:, t]) * silu(z[:, t])
    return y, h


# ---- s4d: recurrent.md §8 ------------------------------------------------------------------------
# Spec: ZOH, A-bar = exp(dt A), B-bar = (exp(dt A) - 1)/A * B, B = 1, x = A-bar x + B-bar u,
# y = 2 Re sum_n C_n x_n + D u.
# C conventions (s4d.c): dt = exp(log_dt), A = -exp(log_A_real) + i A_imag (s4d.py parameters),
# channels Dm = H*V, M = N/2 modes; state [B][Dm][2][M] (real parts, then imaginary parts).
def m_s4d(x, s):
    u = x['u']
    B_, T, Dm = u.shape
    dt = np.exp(x['log_dt'])[:, None]
    A = -np.exp(x['log_A_real']) + 1j * x['A_imag']                  # [Dm,M]
    C = x['C_re'] + 1j * x['C_im']
    Ab = np.exp(dt * A)
    Bb = (Ab - 1.0) / A
    M = A.shape[1]
    st = np.zeros((B_, Dm, M), complex)
    y = np.zeros((B_, T, Dm))
    for t in range(T):
        st = Ab[None] * st + Bb[None] * u[:, t][..., None]
        y[:, t] = 2.0 * np.real((C[None] * st).sum(-1)) + x['D'][None] * u[:, t]
    return y, np.stack([st.real, st.imag], axis=2)


# ---- performer: attention.md §4.1, errata 1 ------------------------------------------------------
# Spec: x' = D^-1/4 x, a_r = <w_r, x'>, n = |x'|^2/2,
#   phi_Q(q)_r = M^-1/2 (exp(a_r(q) - n(q) - max_r a_r(q)) + eps_f)
#   phi_K(k)_r = M^-1/2 (exp(a_r(k) - n(k) - c) + eps_f),  c one constant for all keys
#   o = S^T phi_Q / R, R += 2 delta if |R| <= delta (google, delta = 1e-6); eps_f = 1e-6 (errata 1).
# C conventions (performer.c): W [M][K] an input shared by heads; causal c = c_t, the RUNNING max
# over keys j <= t (spec App. C.5 option (a)) of max_r a_r(k_j); non-causal c = max over all keys;
# variant bits: 1 iid W (does not change the function given W), 2 trig features SM^trig with M/2
# frequencies (first M/2 rows of W), phi = (M/2)^-1/2 [sin a; cos a] blocks, key factor
# e^{n(k) - c_t} with c_t the running max of n(k_j), query factor e^{n(q)} dropped, no eps_f;
# 4 eps_f = 1e-4. State flat per slice: U [M][V+1] = sum_j e^{a(k_j) - n(k_j) - c}[v_j|1] (no eps_f,
# no 1/M; trig: e^{n(k_j) - c}[sin; cos](k_j)), P [V+1] = sum_j [v_j|1], c.
def m_performer(x, s):
    q, k, v, W = x['q'], x['k'], x['v'], x['W']
    B, T, H, K = q.shape
    V = v.shape[-1]
    kn = s['knobs']
    var, causal = kn['variant'], kn['causal']
    M = W.shape[0]
    trig = bool(var & 2)
    epsf = 0.0 if trig else (1e-4 if var & 4 else 1e-6)
    delta = 1e-6
    sc = K ** -0.25
    qp, kp = q * sc, k * sc
    nq, nk = (qp * qp).sum(-1) / 2, (kp * kp).sum(-1) / 2            # [B,T,H]
    if trig:
        Mh = M // 2
        aq, ak = qp @ W[:Mh].T, kp @ W[:Mh].T                         # [B,T,H,Mh]
        fq = np.concatenate([np.sin(aq), np.cos(aq)], -1) / math.sqrt(Mh)
        bk = np.concatenate([np.sin(ak), np.cos(ak)], -1)            # key features before the factor
        ell = nk                                                      # offset statistic per key
        kexp = nk                                                     # key factor exponent: +n(k) - c
        key_feat = lambda c: bk * np.exp(kexp - c)[..., None]
        kscale = 1 / math.sqrt(Mh)
    else:
        aq, ak = qp @ W.T, kp @ W.T                                   # [B,T,H,M]
        fq = (np.exp(aq - nq[..., None] - aq.max(-1, keepdims=True)) + epsf) / math.sqrt(M)
        ell = ak.max(-1)
        key_feat = lambda c: np.exp(ak - nk[..., None] - c[..., None])
        kscale = 1 / math.sqrt(M)
    if causal:
        c = np.maximum.accumulate(ell, axis=1)                        # [B,T,H] running max
    else:
        c = np.broadcast_to(ell.max(1, keepdims=True), ell.shape)
    o = np.zeros((B, T, H, V))
    vx = np.concatenate([v, np.ones((B, T, H, 1))], -1)
    for t in range(T):
        ct = c[:, t]                                                  # [B,H]
        n_keys = t + 1 if causal else T
        e = key_feat(ct[:, None, :])[:, :n_keys]                      # [B,n,H,F] (no eps_f, no scale)
        phik = kscale * (e + epsf)
        w = np.einsum('bhf,bjhf->bjh', fq[:, t], phik)                # [B,n,H]
        nr = np.einsum('bjh,bjhv->bhv', w, vx[:, :n_keys])
        R = nr[..., V]
        R = np.where(np.abs(R) <= delta, R + 2 * delta, R)
        o[:, t] = nr[..., :V] / R[..., None]
    cT = c[:, -1]
    U = np.einsum('bjhf,bjhv->bhfv', key_feat(cT[:, None, :]), vx)
    P = vx.sum(1)
    st = np.concatenate([U.reshape(B, H, -1), P, cT[..., None]], -1)
    return o, st


# ---- rfa: attention.md §4.2, recurrent.md §10 ----------------------------------------------------
# Spec: x^ = x/(|x| + 1e-3), phi(x) = Dr^-1/2 [sin(W_h x^); cos(W_h x^)] (blocks, errata 4),
# S_t = S_{t-1} + phi(k) v^T, z likewise (RFA); gated: S_t = g S_{t-1} + (1-g) phi(k) v^T;
# o = S^T phi(q) / max(<phi(q), z>, eps_R), eps_R = 10/Dr (the code's clamp 0.1 converted).
# C conventions (rfa.c): sigma = 1, tau = 1 (W_eff = W, W [H][Dr][K] an input), gate as
# lg = log g [B,T,H] (read by variant 1 only); state [B][H][2Dr][V+1] = [S | z].
def m_rfa(x, s):
    q, k, v, W, lg = x['q'], x['k'], x['v'], x['W'], x['lg']
    B, T, H, K = q.shape
    V = v.shape[-1]
    Dr = W.shape[1]
    gated = s['knobs']['variant'] == 1

    def phi(z):
        zh = z / (np.sqrt((z * z).sum(-1, keepdims=True)) + 1e-3)
        a = np.einsum('bthk,hrk->bthr', zh, W)
        return np.concatenate([np.sin(a), np.cos(a)], -1) / math.sqrt(Dr)

    fq, fk = phi(q), phi(k)
    vx = np.concatenate([v, np.ones((B, T, H, 1))], -1)
    S = np.zeros((B, H, 2 * Dr, V + 1))
    o = np.zeros((B, T, H, V))
    epsR = 10.0 / Dr
    for t in range(T):
        upd = np.einsum('bhf,bhv->bhfv', fk[:, t], vx[:, t])
        if gated:
            g = np.exp(lg[:, t])[..., None, None]
            S = g * S + (1 - g) * upd
        else:
            S = S + upd
        nr = np.einsum('bhf,bhfv->bhv', fq[:, t], S)
        o[:, t] = nr[..., :V] / np.maximum(nr[..., V], epsR)[..., None]
    return o, S


# ---- based: attention.md §9, errata 2 ------------------------------------------------------------
# Spec: kernel 1 + s + s^2/2, s = <q,k>/sqrt(d'), causal, o = sum kappa v / (sum kappa + eps);
# feature maps full [1, x/d'^1/4, vec(x x^T)/(sqrt2 sqrt d')] and compressed
# [1, x/d'^1/4, x_c^2/(sqrt2 sqrt d'), x_a x_b/sqrt d' (a<b)].
# C conventions (based.c): d' = K = `features`; variant bit 0 full map (else compressed, pairs a<b
# row-major), bit 1 eps = 1e-6 (fla; else 1e-12, Based); state [B][H][F][V+1] = sum phi(k)[v|1]^T.
def taylor_features(xx, full):
    d = xx.shape[-1]
    r4, r2 = d ** 0.25, math.sqrt(d)
    parts = [np.ones(xx.shape[:-1] + (1,)), xx / r4]
    if full:
        outer = xx[..., :, None] * xx[..., None, :]
        parts.append(outer.reshape(xx.shape[:-1] + (d * d,)) / (math.sqrt(2) * r2))
    else:
        parts.append(xx * xx / (math.sqrt(2) * r2))
        a, b = np.triu_indices(d, 1)
        parts.append(xx[..., a] * xx[..., b] / r2)
    return np.concatenate(parts, -1)


def based_branch(q, k, v, variant):
    B, T, H, d = q.shape
    eps = 1e-6 if variant & 2 else 1e-12
    sdot = np.einsum('bthk,bshk->bhts', q, k) / math.sqrt(d)
    kap = 1 + sdot + sdot * sdot / 2
    i, j = idx_grid(T)
    kap = kap * (j <= i)
    num = np.einsum('bhts,bshv->bthv', kap, v)
    den = kap.sum(-1).transpose(0, 2, 1)[..., None]
    o = num / (den + eps)
    fk = taylor_features(k, variant & 1)
    vx = np.concatenate([v, np.ones(v.shape[:-1] + (1,))], -1)
    st = np.einsum('bthf,bthv->bhfv', fk, vx)
    return o, st


def m_based(x, s):
    d = s['knobs']['features']
    if x['q'].shape[-1] != d:
        # the knob says d' = features; a call whose q, k have another width did not apply it
        raise ValueError("knob features=%d but q, k have d' = K = %d: the features knob was not "
                         "applied (the call ran d' = %d)" % (d, x['q'].shape[-1], x['q'].shape[-1]))
    return based_branch(x['q'], x['k'], x['v'], s['knobs']['variant'])


# ---- based_hybrid: attention.md §9 (+ §2.1) ------------------------------------------------------
# C conventions (based_hybrid.c): o = Taylor branch (q, k, v; as `based`) + causal sliding-window
# softmax branch (qs, ks, v; w = `window` keys incl. self, tau = 1/sqrt(K)) — the sum of the two
# normalized outputs; state one flat vector: the Taylor state [B][H][F][V+1], then the ring
# [B][H][w][K+V].
def m_based_hybrid(x, s):
    o1, st1 = based_branch(x['q'], x['k'], x['v'], s['knobs']['variant'])
    o2, st2 = m_sliding_window(dict(q=x['qs'], k=x['ks'], v=x['v']),
                               dict(s, knobs=dict(window=s['knobs']['window'])))
    return o1 + o2, np.concatenate([st1.ravel(), st2.ravel()])


# ---- mobile_attention: attention.md §10.1 --------------------------------------------------------
# Spec: q~ = sigmoid(q), k~ = sigmoid(k); flows summed over HEADS per token; eps = 1e-6 added
# elementwise; I, O, I^, O^ (clamped to [-1, 1]); alloc = sigmoid(I^ T/S), comp = S softmax_j(O^);
# o = alloc I q~^T sum_j k~_j (comp_j v_j)^T; no 1/sqrt(D); non-causal self-attention (S = T).
# No C convention needed beyond the layout (no state).
def m_mobile_attention(x, s):
    q, k, v = sigmoid(x['q']), sigmoid(x['k']), x['v']               # [B,T,H,K]
    eps = 1e-6
    T = q.shape[1]
    Qbar, Kbar = q.sum(2, keepdims=True), k.sum(2, keepdims=True)    # [B,T,1,K]
    I = 1.0 / ((q + eps) * (Kbar + eps)).sum(-1)                      # [B,T,H]
    O = 1.0 / ((k + eps) * (Qbar + eps)).sum(-1)
    Ihat = ((q + eps) * ((O[..., None] * k).sum(2, keepdims=True) + eps)).sum(-1)
    Ohat = np.clip(((k + eps) * ((I[..., None] * q).sum(2, keepdims=True) + eps)).sum(-1), -1.0, 1.0)
    alloc = sigmoid(Ihat * T / T)
    e = np.exp(Ohat - Ohat.max(1, keepdims=True))
    comp = T * e / e.sum(1, keepdims=True)                            # softmax over the sequence j
    kv = np.einsum('bjhk,bjhv->bhkv', k, comp[..., None] * v)
    o = (alloc * I)[..., None] * np.einsum('bthk,bhkv->bthv', q, kv)
    return o, None


# ---- mla (cosFormer): attention.md §10.2, errata 6 ------------------------------------------------
# Spec: phi = ReLU, no 1/sqrt(D), 1-based positions, pair weight <ReLU q_i, ReLU k_j> cos(pi(i-j)/2M)
# (= the sin/cos feature split), o = sum w v / max(sum w, 0.1) (the clamp); causal j <= i or all;
# "simple" mode = ReLU features without re-weighting, same clamp.
# C conventions (mla.c): M = `window` when > 0, else ctx (= pos + T, the code's oracle length);
# variant 1 = simple mode; state [B][H][F][V+1], rows 0..K-1 the sin part, K..2K-1 the cos part
# (F = K in simple mode), column V the normalizer z.
def m_mla(x, s):
    q, k, v = np.maximum(x['q'], 0), np.maximum(x['k'], 0), x['v']
    B, T, H, K = q.shape
    kn = s['knobs']
    M = kn['window'] if kn['window'] > 0 else s['ctx']
    pos1 = s['pos'] + np.arange(T) + 1.0                              # 1-based absolute positions
    w = np.einsum('bthk,bshk->bhts', q, k)
    if kn['variant'] == 0:
        w = w * np.cos(np.pi * (pos1[:, None] - pos1[None, :]) / (2 * M))[None, None]
    if kn['causal']:
        i, j = idx_grid(T)
        w = w * (j <= i)
    num = np.einsum('bhts,bshv->bthv', w, v)
    den = w.sum(-1).transpose(0, 2, 1)[..., None]
    o = num / np.maximum(den, 0.1)
    if kn['variant'] == 0:
        th = (np.pi / 2) * pos1 / M
        fk = np.concatenate([k * np.sin(th)[None, :, None, None], k * np.cos(th)[None, :, None, None]], -1)
    else:
        fk = k
    vx = np.concatenate([v, np.ones((B, T, H, 1))], -1)
    return o, np.einsum('bthf,bthv->bhfv', fk, vx)


# ---- linrec: attention.md §10.3 ------------------------------------------------------------------
# Spec: q^ = elu(q)/|elu(q)|, k^ likewise (per token over its D features), O = Q^ (K^T V)/sqrt(D),
# no row normalizer; causal adaptation: prefix sums S_t = sum_{j<=t} k^_j v_j^T.
# C conventions (linrec.c): norm guard max(|.|, 1e-8) in both modes (the adaptation's);
# default causal = 0 (the paper's layer); state [B][H][K][V] = S.
def m_linrec(x, s):
    def feat(z):
        e = elu(z)
        return e / np.maximum(np.sqrt((e * e).sum(-1, keepdims=True)), 1e-8)
    q, k, v = feat(x['q']), feat(x['k']), x['v']
    T, K = q.shape[1], q.shape[-1]
    a = np.einsum('bthk,bshk->bhts', q, k)
    if s['knobs']['causal']:
        i, j = idx_grid(T)
        a = a * (j <= i)
    o = np.einsum('bhts,bshv->bthv', a, v) / math.sqrt(K)
    return o, np.einsum('bthk,bthv->bhkv', k, v)


# ---- the vision family: FLatten §5, EfficientViT §7, SLAB §8 (attention.md) -----------------------
# Shared spec pieces: tokens are an Hs x Ws grid in row-major order n = y Ws + x (§0.1); DWC is a
# PyTorch-style depthwise cross-correlation, DWC(V)[(y,x), c] = b_c + sum_{a,e} w[c,a,e]
# V[(y+a-k//2, x+e-k//2), c], zero outside the grid (§5 step 7); causal variants (App. C.9):
# prefix sums j <= i and a causal depthwise 1-D conv over time, b + sum_{u<k} w_u v_{t-u}.
# C conventions (lat_vision.h, flatten.c, slab.c, efficientvit.c): Hs = the largest divisor of T
# not above sqrt(T) (a prime T is a 1 x T grid); DWC weights [V][k*k] (causal [V][k]), row-major
# (a, e), shared by all heads, bias [V]; knob window = k (0 = no DWC); causal state per slice
# [K][V+1] = [S | z], then the conv tail of k-1 rows, row u = v at position T-1-u (zero before 0).
def grid_of(T):
    hs = 1
    for d in range(1, math.isqrt(T) + 1):
        if T % d == 0:
            hs = d
    return hs, T // hs


def dwc2d(x, w, b, k, T):
    """x [B,T,H,C] on the grid, w [C, k*k], b [C] or None -> [B,T,H,C]."""
    hs, ws = grid_of(T)
    B, _, H, C = x.shape
    g = x.reshape(B, hs, ws, H, C)
    r = k // 2
    pad = np.zeros((B, hs + 2 * r, ws + 2 * r, H, C))
    pad[:, r:r + hs, r:r + ws] = g
    out = np.zeros_like(g) if b is None else np.broadcast_to(b, g.shape).copy()
    for a in range(k):
        for e in range(k):
            out += w[:, a * k + e] * pad[:, a:a + hs, e:e + ws]
    return out.reshape(B, T, H, C)


def dwc1d_causal(x, w, b):
    """x [B,T,H,C], w [C, k] (w[:, u] multiplies x_{t-u}), b [C] or None."""
    k = w.shape[1]
    out = np.zeros_like(x) if b is None else np.broadcast_to(b, x.shape).copy()
    for u in range(k):
        out[:, u:] += w[:, u] * x[:, :x.shape[1] - u]
    return out


def conv_tail(v, k):
    """The causal conv state: k-1 rows, row u = v at position T-1-u -> [B,H,(k-1)*V]."""
    B, T, H, V = v.shape
    tail = np.zeros((B, H, max(k - 1, 0), V))
    for u in range(k - 1):
        if T - 1 - u >= 0:
            tail[:, :, u] = v[:, T - 1 - u]
    return tail.reshape(B, H, -1)


def kernel_linear_attention(fq, fk, v, causal, eps_fn):
    """o_i = sum_j <fq_i, fk_j> v_j / (sum_j <fq_i, fk_j> + eps(i)), j <= i when causal;
    eps_fn(n_keys) -> eps per query (n_keys = keys seen). Returns o and the state [S | z]."""
    B, T, H, F = fq.shape
    a = np.einsum('bthk,bshk->bhts', fq, fk)
    i, j = idx_grid(T)
    if causal:
        a = a * (j <= i)
        nkeys = np.arange(1, T + 1)
    else:
        nkeys = np.full(T, T)
    num = np.einsum('bhts,bshv->bthv', a, v)
    den = a.sum(-1).transpose(0, 2, 1)[..., None] + eps_fn(nkeys)[None, :, None, None]
    o = num / den
    vx = np.concatenate([v, np.ones(v.shape[:-1] + (1,))], -1)
    return o, np.einsum('bthf,bthv->bhfv', fk, vx)


def vision_dwc(x, s, v):
    k = s['knobs']['window']
    if k == 0:
        return 0.0, k
    if s['knobs']['causal']:
        return dwc1d_causal(v, x['dwc_w'], x['dwc_b']), k
    return dwc2d(v, x['dwc_w'], x['dwc_b'], k, s['T']), k


# FLatten (§5): k <- k + P; x~ = (ReLU(x) + 1e-6)/softplus(s); phi = |x~| x~^p/|x~^p| with the
# norms over ALL C = H K channels of the token; eps = N 1e-6 (the May-2024 code); + DWC(V).
# C conventions (flatten.c): P an input [B][T][H][K]; s [H K] (channel h K + i); knob variant = p;
# causal eps = (t+1) 1e-6, t the absolute position (the keys seen).
def m_flatten(x, s):
    B, T, H, K = x['q'].shape
    p = s['knobs']['variant']
    sp = softplus(x['scale']).reshape(H, K)

    def focus(z):
        zt = (np.maximum(z, 0) + 1e-6) / sp                           # [B,T,H,K]
        flat = zt.reshape(B, T, H * K)
        zp = flat ** p
        phi = np.linalg.norm(flat, axis=-1, keepdims=True) * zp / np.linalg.norm(zp, axis=-1, keepdims=True)
        return phi.reshape(B, T, H, K)

    fq, fk = focus(x['q']), focus(x['k'] + x['pos'])
    causal = s['knobs']['causal']
    o, st = kernel_linear_attention(fq, fk, x['v'], causal, lambda n: n * 1e-6)
    dw, k = vision_dwc(x, s, x['v'])
    o = o + dw
    if not causal:
        return o, None
    return o, np.concatenate([st.reshape(B, H, -1), conv_tail(x['v'], k)], -1)


# SLAB (§8): k <- k + P; phi = ReLU (no floor); eps = 1e-6; + DWC(V) (as FLatten); no 1/sqrt(D).
def m_slab(x, s):
    B, T, H, K = x['q'].shape
    causal = s['knobs']['causal']
    o, st = kernel_linear_attention(np.maximum(x['q'], 0), np.maximum(x['k'] + x['pos'], 0), x['v'],
                                    causal, lambda n: np.full(n.shape, 1e-6))
    dw, k = vision_dwc(x, s, x['v'])
    o = o + dw
    if not causal:
        return o, None
    return o, np.concatenate([st.reshape(B, H, -1), conv_tail(x['v'], k)], -1)


# EfficientViT (§7): phi = ReLU, eps = 1e-15, no 1/sqrt(d); multi-scale tokens (scales (5,)):
# agg = GroupConv1x1_{3H groups}(DWConv_{5x5}(q|k|v)), no biases, output heads = cat([qkv, agg]).
# C conventions (efficientvit.c): variant 1 = the aggregated heads, output [B][T][2H][V] (heads
# H..2H-1 from head h - H); ms_dw [H][2K+V][25] (causal [..][5]) over the channels q|k|v of each
# head; ms_pw [H][K*K | K*K | V*V], each block (out, in) row-major; causal: the depthwise conv becomes
# causal 1-D; causal state per batch: the 2H heads' [K][V+1] (S | z), then the aggregation tail of
# 4 rows [H][2K+V] (row u = the raw q|k|v of position T-1-u); variant 0 state [B][H][K][V+1].
def m_efficientvit(x, s):
    q, k, v = x['q'], x['k'], x['v']
    B, T, H, K = q.shape
    V = v.shape[-1]
    causal, var = s['knobs']['causal'], s['knobs']['variant']
    eps = lambda n: np.full(n.shape, 1e-15)
    if var == 1:
        qkv = np.concatenate([q, k, v], -1)                           # [B,T,H,2K+V]
        dw = x['ms_dw']                                               # [H, 2K+V, taps]
        agg = np.zeros_like(qkv)
        for h in range(H):
            xh = qkv[:, :, h:h + 1]
            agg[:, :, h:h + 1] = (dwc1d_causal(xh, dw[h], None) if causal
                                  else dwc2d(xh, dw[h], None, 5, T))
        pw = x['ms_pw']
        Wq = pw[:, :K * K].reshape(H, K, K)
        Wk = pw[:, K * K:2 * K * K].reshape(H, K, K)
        Wv = pw[:, 2 * K * K:].reshape(H, V, V)
        q2 = np.einsum('hoi,bthi->btho', Wq, agg[..., :K])
        k2 = np.einsum('hoi,bthi->btho', Wk, agg[..., K:2 * K])
        v2 = np.einsum('hoi,bthi->btho', Wv, agg[..., 2 * K:])
        q, k, v = (np.concatenate([q, q2], 2), np.concatenate([k, k2], 2), np.concatenate([v, v2], 2))
    o, st = kernel_linear_attention(np.maximum(q, 0), np.maximum(k, 0), v, causal, eps)
    if not causal:
        return o, None
    if var == 0:
        return o, st
    tail = np.zeros((B, 4, H, 2 * K + V))
    for u in range(4):
        if T - 1 - u >= 0:
            tail[:, u] = qkv[:, T - 1 - u]
    return o, np.concatenate([st.reshape(B, -1), tail.reshape(B, -1)], -1)



# Agent attention (§6): A = AdaptiveAvgPool_{p x p}(Q) per head (bins [floor(a Hs/p), ceil((a+1) Hs/p))
# for rows and columns, agent index a_row p + a_col), P_A = softmax_rows(tau A K^T + B1),
# V_A = P_A V, P_Q = softmax_rows(tau Q A^T + B2), O = P_Q V_A + DWC(V), tau = D^-1/2;
# DWC over all C channels with per-channel weights (not shared across heads), padding k//2, + bias.
# C conventions (agent.c): n = knob agents = p^2 (must be square), B1 [H][n][T] and B2 [H][T][n]
# plain inputs; DWC weights [H][V][k*k], bias [H][V]; knob window = k (0 = no DWC); grid as above;
# non-causal only, no state.
def m_agent(x, s):
    q, k, v = x['q'], x['k'], x['v']
    B, T, H, K = q.shape
    n = s['knobs']['agents']
    p = math.isqrt(n)
    hs, ws = grid_of(T)
    tau = 1 / math.sqrt(K)
    qg = q.reshape(B, hs, ws, H, K)
    A = np.zeros((B, n, H, K))
    for ar in range(p):
        r0, r1 = (ar * hs) // p, -(-((ar + 1) * hs) // p)
        for ac in range(p):
            c0, c1 = (ac * ws) // p, -(-((ac + 1) * ws) // p)
            A[:, ar * p + ac] = qg[:, r0:r1, c0:c1].mean(axis=(1, 2))

    def softmax_rows(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    PA = softmax_rows(tau * np.einsum('bahk,bjhk->bhaj', A, k) + x['bias_ak'][None])    # [B,H,n,T]
    VA = np.einsum('bhaj,bjhv->bhav', PA, v)
    PQ = softmax_rows(tau * np.einsum('bihk,bahk->bhia', q, A) + x['bias_qa'][None])    # [B,H,T,n]
    o = np.einsum('bhia,bhav->bihv', PQ, VA)
    kk = s['knobs']['window']
    if kk > 0:
        for h in range(H):
            o[:, :, h:h + 1] += dwc2d(v[:, :, h:h + 1], x['dwc_w'][h], x['dwc_b'][h], kk, T)
    return o, None


# ================================================================================================
# registry: numpy implementation and knob cases per method
# Each case is a dict of knobs passed on the command line (ALGO_KNOBS are added where the method
# has them; the keys K and V are passed as --K / --V, overriding the head dims of --D 16); the
# first case uses the paper defaults, the others change the function (or the shape: K != V).
# ================================================================================================
METHODS = {
    'softmax': (m_softmax, [{}, {'causal': 0}]),
    'linear_attn': (m_linear_attn, [{}, {'causal': 0}]),
    'gla': (m_gla, [{}, {'variant': 1, 'K': 8, 'V': 12}]),         # variant: algorithm only
    'retnet': (m_retnet, [{}, {'variant': 1}]),                        # xPos rotation
    'mlstm': (m_mlstm, [{}, {'K': 8, 'V': 12}]),
    'mamba2': (m_mamba2, [{}, {'n_state': 8, 'groups': 2}]),
    'mamba': (m_mamba, [{}, {'n_state': 4, 'groups': 2}]),
    'rwkv6': (m_rwkv6, [{}, {'variant': 1}]),                          # variant: algorithm only
    's4d': (m_s4d, [{}, {'n_state': 6}]),
    'hgrn2': (m_hgrn2, [{}, {'expand': 4}, {'expand': 1, 'variant': 1}]),
    'deltanet': (m_deltanet, [{}, {'K': 8, 'V': 12}]),
    'gated_deltanet': (m_gated_deltanet, [{}, {'K': 12, 'V': 8}]),
    'sliding_window': (m_sliding_window, [{}, {'window': 7}, {'window': 1}]),
    'block_local': (m_block_local, [{}, {'window': 8}, {'window': 8, 'causal': 0},
                                    {'window': 6, 'variant': 1}, {'window': 6, 'variant': 1, 'causal': 0},
                                    {'causal': 0, 'variant': 2}, {'causal': 0, 'variant': 3, 'window': 16}]),
    # trig (sin/cos) features (variant bit 2) give SIGNED denominators that come close to 0 on
    # some rows: fp32 error there grows like 1/|denominator| (measured: one row of norm 4844 against a
    # median of 4 carries the whole 1.8e-4; without it 1.2e-5). That is the instability the
    # Performer paper shows for trig features (claim G4c), not a kernel bug: those cases are held to
    # 5e-4 against the fp32 form, and still to 1e-9 between the two fp64 oracles.
    'performer': (m_performer, [{}, {'causal': 0}, {'variant': 4}, {'variant': 3, 'features': 64, '_tol': 5e-4},
                                {'variant': 2, 'causal': 0, 'features': 32, '_tol': 5e-4}]),
    'based': (m_based, [{}, {'variant': 3}, {'K': 8, 'features': 8, 'variant': 1}, {'features': 8}]),
    'sparse_strided': (m_sparse_strided, [{}, {'stride': 5}, {'variant': 1}, {'variant': 1, 'stride': 6, 'window': 2}]),
    'rfa': (m_rfa, [{}, {'variant': 1}, {'variant': 1, 'features': 8}]),
    'longformer': (m_longformer, [{}, {'window': 3}, {'window': 3, 'stride': 2, 'agents': 2},
                                  {'window': 2, 'stride': 3, 'agents': 0}, {'window': 0, 'agents': 40}]),
    'based_hybrid': (m_based_hybrid, [{}, {'window': 5}, {'window': 9, 'variant': 3, 'features': 8}]),
    'mobile_attention': (m_mobile_attention, [{}, {'H': 3, 'K': 8, 'V': 12}]),
    'mla': (m_mla, [{}, {'causal': 0}, {'window': 20}, {'window': 20, 'causal': 0}, {'variant': 1},
                    {'variant': 1, 'causal': 0}]),
    'linrec': (m_linrec, [{}, {'causal': 1}]),
    # vision methods: T = 37 is a 1 x 37 grid; T = 35 a 5 x 7 one, T = 36 a 6 x 6 one
    'flatten': (m_flatten, [{}, {'T': 35}, {'T': 36, 'variant': 2, 'window': 3}, {'T': 35, 'window': 0, 'variant': 5},
                            {'causal': 1}, {'T': 35, 'causal': 1, 'window': 3, 'variant': 4}]),
    'slab': (m_slab, [{}, {'T': 35}, {'T': 36, 'window': 3}, {'causal': 1}, {'T': 35, 'causal': 1, 'window': 0}]),
    'efficientvit': (m_efficientvit, [{}, {'T': 35}, {'T': 35, 'variant': 1}, {'variant': 1},
                                      {'causal': 1}, {'T': 35, 'causal': 1, 'variant': 1}]),
    'agent': (m_agent, [{}, {'T': 35, 'agents': 4}, {'T': 36, 'agents': 9, 'window': 5}, {'T': 35, 'agents': 16},
                        {'agents': 1, 'window': 0}, {'T': 36, 'agents': 36}]),
}


# ================================================================================================
# driver
# ================================================================================================
def parse_list(text):
    """`latbench list` -> {method: {'forms': [...], 'knobs': {name: default}, 'tol': x, 'tol_state': y}}"""
    info, cur = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace():
            name = line.split()[0]
            m = re.search(r'forms:\s*(.*?)(\s+decode:|$)', line)
            cur = info.setdefault(name, dict(forms=m.group(1).split() if m else [], knobs={},
                                             tol=None, tol_state=None))
        elif cur is not None:
            st = line.strip()
            if st.startswith('knobs:'):
                for km in re.finditer(r'(\w+)=(-?\d+)\s*\[', st):
                    cur['knobs'][km.group(1)] = int(km.group(2))
            elif st.startswith('tolerance:'):
                m = re.search(r'rel_rmse\s+([0-9.eE+-]+)(?:\s*\(state\s+([0-9.eE+-]+)\))?', st)
                if m:
                    cur['tol'] = float(m.group(1))
                    if m.group(2):
                        cur['tol_state'] = float(m.group(2))
    return info


def rel(a, b):
    """||a - b|| / ||b|| (b = the numpy fp64 result); absolute when ||b|| = 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size != b.size:
        raise ValueError('dumped shape %s, numpy shape %s' % (a.shape, b.shape))
    a, b = a.ravel(), b.ravel()
    if not np.all(np.isfinite(a)):
        return float('inf')
    nb = np.linalg.norm(b)
    d = np.linalg.norm(a - b)
    return float(d / nb) if nb > 0 else float(d)


def fmt(x):
    return '-' if x is None else ('%.2e' % x)


SHAPE_KEYS = ('B', 'T', 'H', 'D', 'K', 'V')   # case keys passed as sizes, not knobs
LINE = '%-16s %-9s %-34s %9s %9s %9s %9s  %s'


def run_case(lb, method, form, case_knobs, d, verbose):
    """latbench run with the small shape, a case's size overrides and knobs; dump into d."""
    sizes = dict(SHAPE)
    sizes.update({kk: vv for kk, vv in case_knobs.items() if kk in SHAPE_KEYS})
    cmd = [lb, 'run', '--method', method, '--form', form]
    for key in SHAPE_KEYS:
        if key in sizes:
            cmd += ['--' + key, str(sizes[key])]
    cmd += ['--threads', str(THREADS), '--reps', '1', '--min-time', '0', '--dump', d, '--out',
            os.path.join(d, 'run')]
    for kk, vv in case_knobs.items():
        if kk not in SHAPE_KEYS:
            cmd += ['--' + kk, str(vv)]
    os.makedirs(d, exist_ok=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if verbose:
        sys.stdout.write('  $ ' + ' '.join(cmd) + '\n' + p.stdout + p.stderr)
    return p


def check_dump(fn, d):
    """Recompute the dumped call in numpy; returns [vs out, vs ref_out, vs state, vs ref_state]."""
    with open(os.path.join(d, 'shape.json')) as fp:
        sh = json.load(fp)
    outputs = ('out.npy', 'ref_out.npy', 'state_out.npy', 'ref_state_out.npy')
    ins = {f[:-4]: np.load(os.path.join(d, f)).astype(np.float64)
           for f in os.listdir(d) if f.endswith('.npy') and f not in outputs}
    with np.errstate(all='ignore'):
        o, st = fn(ins, sh)
    errs = [rel(np.load(os.path.join(d, 'out.npy')), o), rel(np.load(os.path.join(d, 'ref_out.npy')), o),
            None, None]
    has_st = os.path.exists(os.path.join(d, 'state_out.npy'))
    if has_st and st is None:
        raise ValueError('the method dumps a state that this script does not model')
    if st is not None and not has_st:
        raise ValueError('no state dumped (state_out.npy missing)')
    if st is not None:
        errs[2] = rel(np.load(os.path.join(d, 'state_out.npy')), st)
        errs[3] = rel(np.load(os.path.join(d, 'ref_state_out.npy')), st)
    return errs


def main():
    ap = argparse.ArgumentParser(description='Independent numpy fp64 cross-check of every latbench method.')
    ap.add_argument('--latbench', default='build/latbench', help='path of the latbench binary')
    ap.add_argument('--methods', default='', help='comma-separated methods (default: all registered)')
    ap.add_argument('--keep', default='', help='keep every dump under this directory')
    ap.add_argument('--verbose', action='store_true', help='print every latbench command and its output')
    a = ap.parse_args()

    lb = a.latbench
    if not (os.path.isfile(lb) and os.access(lb, os.X_OK)):
        sys.stderr.write('crosscheck: %s is not an executable latbench (build it: make, or pass --latbench)\n' % lb)
        return 2
    try:
        names = subprocess.run([lb, 'list', '--names'], stdout=subprocess.PIPE, check=True,
                               universal_newlines=True).stdout.split()
        info = parse_list(subprocess.run([lb, 'list'], stdout=subprocess.PIPE, check=True,
                                         universal_newlines=True).stdout)
    except (subprocess.CalledProcessError, OSError) as e:
        sys.stderr.write('crosscheck: `%s list` failed: %s\n' % (lb, e))
        return 2
    if a.methods:
        want = [m for m in a.methods.split(',') if m]
        unknown = [m for m in want if m not in names]
        if unknown:
            sys.stderr.write('crosscheck: not registered in %s: %s (registered: %s)\n'
                             % (lb, ', '.join(unknown), ', '.join(names)))
            return 2
        names = [m for m in names if m in want]

    root = a.keep or tempfile.mkdtemp(prefix='latbench-crosscheck-')
    os.makedirs(root, exist_ok=True)
    npass = nfail = nskip = 0
    t0 = time.time()
    print('crosscheck: B=%(B)d T=%(T)d H=%(H)d D=%(D)d' % SHAPE + ', %d threads; numpy fp64 vs out (fp32 form, '
          'the method\'s tolerance) and vs ref_out (C fp64 reference, %.0e); rel. RMSE' % (THREADS, REF_TOL))
    print(LINE % ('method', 'form', 'case', 'vs out', 'vs ref', 'state', 'ref st', 'verdict'))

    def report(mname, form, kstr, errs, verdict):
        print(LINE % (mname, form, kstr, fmt(errs[0]), fmt(errs[1]), fmt(errs[2]), fmt(errs[3]), verdict))
        sys.stdout.flush()

    for mname in names:
        mi = info.get(mname, dict(forms=[], knobs={}, tol=None, tol_state=None))
        if mname not in METHODS:
            report(mname, '*', '-', [None] * 4, 'FAIL (no independent implementation)')
            nfail += 1
            continue
        fn, cases = METHODS[mname]
        tol = mi['tol'] if mi['tol'] is not None else DEFAULT_TOL
        tol_st = mi['tol_state'] if mi['tol_state'] is not None else tol
        checked = dict((f, 0) for f in mi['forms'])
        for ci, case in enumerate(cases):
            tol_case = case.get('_tol', tol)   # a documented per-case tolerance (see the case's comment)
            case = {kk: vv for kk, vv in case.items() if not kk.startswith('_')}
            knobs = {kk: vv for kk, vv in ALGO_KNOBS.items() if kk in mi['knobs']}
            knobs.update(case)
            gone = [kk for kk in case if kk not in mi['knobs'] and kk not in SHAPE_KEYS]
            kstr = ','.join('%s=%s' % kv for kv in case.items()) or 'defaults'
            for form in mi['forms']:
                d = os.path.join(root, '%s.%s.%d' % (mname, form, ci))
                errs, why = [None] * 4, ''
                if gone:
                    why = 'knob(s) %s no longer offered by the method' % ','.join(gone)
                else:
                    p = run_case(lb, mname, form, knobs, d, a.verbose)
                    if not os.path.exists(os.path.join(d, 'out.npy')):
                        msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
                        msg = msg[-1] if msg else ''
                        if ': unsupported' in msg:   # the form declares this case outside its domain
                            report(mname, form, kstr, errs, 'SKIP (%s)' % msg.split(': ', 2)[-1])
                            nskip += 1
                            shutil.rmtree(d, ignore_errors=True)
                            continue
                        why = 'latbench run wrote no dump (exit %d: %s)' % (p.returncode, msg)
                if not why:
                    try:
                        errs = check_dump(fn, d)
                    except Exception as e:  # a shape mismatch, a missing input, an inconsistent call
                        why = '%s: %s' % (type(e).__name__, e)
                if not why:
                    fails = []
                    if not errs[0] <= tol_case:
                        fails.append('out %.2e > %.0e' % (errs[0], tol_case))
                    if not errs[1] <= REF_TOL:
                        fails.append('ref_out %.2e > %.0e' % (errs[1], REF_TOL))
                    if errs[2] is not None and not errs[2] <= tol_st:
                        fails.append('state %.2e > %.0e' % (errs[2], tol_st))
                    if errs[3] is not None and not errs[3] <= REF_TOL:
                        fails.append('ref_state %.2e > %.0e' % (errs[3], REF_TOL))
                    why = '; '.join(fails)
                checked[form] += 1
                if why:
                    report(mname, form, kstr, errs, 'FAIL (%s)' % why)
                    nfail += 1
                else:
                    report(mname, form, kstr, errs, 'PASS')
                    npass += 1
                    if not a.keep:
                        shutil.rmtree(d, ignore_errors=True)
        for form, n in checked.items():   # every form must have been compared at least once
            if n == 0:
                report(mname, form, '-', [None] * 4, 'FAIL (no case of this form ran: all unsupported)')
                nfail += 1
    if not a.keep:
        if nfail == 0:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print('dumps of the failing cases kept in %s' % root)
    print('crosscheck: %.1f s' % (time.time() - t0))
    print('%d passed, %d failed%s' % (npass, nfail, ', %d skipped (unsupported by the form)' % nskip if nskip else ''))
    return 1 if nfail else 0


if __name__ == '__main__':
    sys.exit(main())
