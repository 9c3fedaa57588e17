"""LSTM layer (PyTorch ``nn.LSTM``, gates i, f, g, o): recurrence forward and backward over a window.

Sizes: T steps, B batch, H hidden, G = 4H, P parts (hidden columns split over the cores).

    i, f, o = σ(x W_i·ᵀ + h W_h·ᵀ + b)     g = tanh(x W_igᵀ + h W_hgᵀ + b)
    c' = f ⊙ c + i ⊙ g                      h' = o ⊙ tanh(c')
The caller computes xg = x W_ihᵀ + b_ih + b_hh for all steps at once and the weight gradients
as big products; these kernels hold the recurrence. Buffers are time-major, C-contiguous:
  hs, cs (T+1, B, H)  [0] = initial state, [t+1] = state after step t
  xg     (T, B, G)    input projection with both biases
  acts   (T, B, 5H)   i | f | g | o | tanh(c_t)
  dg     (T, B, G)    ∂L/∂(gate pre-activations): the gradient of W_ih, W_hh, both biases, inputs
Part p owns hidden columns [c0, c1); ``w_hh_parts`` is W_hh with its rows regrouped part by
part (i, f, g, o rows of part 0, then of part 1), so part p's block is rows [4·c0, 4·c1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from seqtui.kernels.config import FASTMATH, NJIT_PARALLEL

# --- activations (duplicated per module on purpose: a cached kernel's call graph stays here) ---


def _tanh(x):  # pragma: no cover - replaced by the overload inside jitted code
    return math.tanh(x)


@overload(_tanh, inline="always", jit_options=dict(fastmath=FASTMATH, error_model="numpy"))
def _tanh_impl(x):
    """float32: clamped rational approximation (max error ≈ 3.5e-7, vectorizes); float64: libm
    (exact, so float64 gradient checks see the true derivative 1 - tanh²)."""
    if x == types.float32:

        def impl(x):
            x = min(max(x, np.float32(-7.90531110763549805)), np.float32(7.90531110763549805))
            x2 = x * x
            p = np.float32(-2.76076847742355e-16)
            p = p * x2 + np.float32(2.00018790482477e-13)
            p = p * x2 + np.float32(-8.60467152213735e-11)
            p = p * x2 + np.float32(5.12229709037114e-08)
            p = p * x2 + np.float32(1.48572235717979e-05)
            p = p * x2 + np.float32(6.37261928875436e-04)
            p = p * x2 + np.float32(4.89352455891786e-03)
            q = np.float32(1.19825839466702e-06)
            q = q * x2 + np.float32(1.18534705686654e-04)
            q = q * x2 + np.float32(2.26843463243900e-03)
            q = q * x2 + np.float32(4.89352518554385e-03)
            return x * p / q

        return impl
    return lambda x: math.tanh(x)


def _sigmoid(x):  # pragma: no cover - replaced by the overload inside jitted code
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@overload(_sigmoid, inline="always", jit_options=dict(fastmath=FASTMATH, error_model="numpy"))
def _sigmoid_impl(x):
    """σ(x) = ½ + ½·tanh(x/2): vectorizes in float32, exact in float64."""
    if x == types.float32:
        return lambda x: np.float32(0.5) + np.float32(0.5) * _tanh(np.float32(0.5) * x)
    return lambda x: 0.5 + 0.5 * _tanh(0.5 * x)


@njit(inline="always")
def _sigmoid_sum(out, x, y):
    """out = σ(x + y), elementwise over 1-D slices."""
    for j in range(out.shape[0]):
        out[j] = _sigmoid(x[j] + y[j])


@njit(inline="always")
def _tanh_sum(out, x, y):
    """out = tanh(x + y), elementwise over 1-D slices."""
    for j in range(out.shape[0]):
        out[j] = _tanh(x[j] + y[j])


@njit(inline="always")
def _cols(p, nparts, H):
    """Hidden columns [c0, c1) of part p."""
    return p * H // nparts, (p + 1) * H // nparts


@njit(inline="always")
def _scratch(buf, p, B, c):
    """A C-contiguous (B, c) view at the start of part p's scratch row."""
    return buf[p, : B * c].reshape((B, c))


# The elementwise work runs as short loops over contiguous row slices, each touching two to four
# arrays: LLVM then vectorizes them (one loop over many arrays gets no SIMD: too many aliasing checks).


@njit(**NJIT_PARALLEL)
def lstm_forward(hs, cs, acts, xg, w_hh_parts, nparts):
    """Run the LSTM over T steps from (hs[0], cs[0]); write hs[1:], cs[1:] and the activations."""
    T, B, G = xg.shape
    H = G // 4
    scratch = np.empty((nparts, 4 * B * (H // nparts + 1)), dtype=hs.dtype)
    for t in range(T):
        for p in prange(nparts):
            c0, c1 = _cols(p, nparts, H)
            c = c1 - c0
            acc = _scratch(scratch, p, B, 4 * c)
            np.dot(hs[t], w_hh_parts[4 * c0 : 4 * c1].T, acc)
            for b in range(B):
                x = xg[t, b]
                a = acc[b]
                g = acts[t, b]
                i = g[c0:c1]
                f = g[H + c0 : H + c1]
                gg = g[2 * H + c0 : 2 * H + c1]
                o = g[3 * H + c0 : 3 * H + c1]
                tc = g[4 * H + c0 : 4 * H + c1]
                _sigmoid_sum(i, x[c0:c1], a[:c])
                _sigmoid_sum(f, x[H + c0 : H + c1], a[c : 2 * c])
                _tanh_sum(gg, x[2 * H + c0 : 2 * H + c1], a[2 * c : 3 * c])
                _sigmoid_sum(o, x[3 * H + c0 : 3 * H + c1], a[3 * c :])
                cp = cs[t, b, c0:c1]
                cn = cs[t + 1, b, c0:c1]
                for j in range(c):
                    cn[j] = f[j] * cp[j] + i[j] * gg[j]
                for j in range(c):
                    tc[j] = _tanh(cn[j])
                h = hs[t + 1, b, c0:c1]
                for j in range(c):
                    h[j] = o[j] * tc[j]


@njit(**NJIT_PARALLEL)
def lstm_backward(dg, norms, dhs, cs, acts, w_hh_t, carry_scale, nparts):
    """Backward through the recurrence from t = T-1 down to 0.

    dhs (T, B, H) is ∂L/∂h_t from above; the carry from step t+1 into (h_t, c_t) is multiplied
    by carry_scale[t+1]. w_hh_t is W_hhᵀ, C-contiguous (H, G). Writes dg and the per-part
    squared norms of the total ∂L/∂h_t into norms (P, T), float64.
    """
    T, B, H = dhs.shape
    one = cs.dtype.type(1.0)
    scratch = np.empty((nparts, B * (H // nparts + 1)), dtype=cs.dtype)
    dh = np.zeros((B, H), dtype=cs.dtype)  # ∂L/∂h_t; each part owns its columns
    dc = np.zeros((B, H), dtype=cs.dtype)  # ∂L/∂c_t (then c_{t-1})
    for t in range(T - 1, -1, -1):
        s = carry_scale[t + 1] if t + 1 < T else 0.0
        sc = cs.dtype.type(s)
        for p in prange(nparts):
            c0, c1 = _cols(p, nparts, H)
            c = c1 - c0
            acc = _scratch(scratch, p, B, c)
            if s != 0.0:
                np.dot(dg[t + 1], w_hh_t[c0:c1].T, acc)
            sq = 0.0
            for b in range(B):
                d = dh[b, c0:c1]
                dcb = dc[b, c0:c1]
                up = dhs[t, b, c0:c1]
                g = acts[t, b]
                o = g[3 * H + c0 : 3 * H + c1]
                tc = g[4 * H + c0 : 4 * H + c1]
                if s != 0.0:
                    a = acc[b]
                    for j in range(c):
                        d[j] = up[j] + sc * a[j]
                    fn = acts[t + 1, b, H + c0 : H + c1]
                    for j in range(c):
                        dcb[j] = sc * dcb[j] * fn[j] + d[j] * o[j] * (one - tc[j] * tc[j])
                else:
                    d[:] = up
                    for j in range(c):
                        dcb[j] = d[j] * o[j] * (one - tc[j] * tc[j])
                for j in range(c):
                    sq += np.float64(d[j]) * np.float64(d[j])
                i = g[c0:c1]
                f = g[H + c0 : H + c1]
                gg = g[2 * H + c0 : 2 * H + c1]
                cp = cs[t, b, c0:c1]
                dgb = dg[t, b]
                di = dgb[c0:c1]
                df = dgb[H + c0 : H + c1]
                dgg = dgb[2 * H + c0 : 2 * H + c1]
                do = dgb[3 * H + c0 : 3 * H + c1]
                for j in range(c):
                    di[j] = dcb[j] * gg[j] * i[j] * (one - i[j])
                for j in range(c):
                    df[j] = dcb[j] * cp[j] * f[j] * (one - f[j])
                for j in range(c):
                    dgg[j] = dcb[j] * i[j] * (one - gg[j] * gg[j])
                for j in range(c):
                    do[j] = d[j] * tc[j] * o[j] * (one - o[j])
            norms[p, t] = sq
