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
def _cols(p, nparts, H):
    """Hidden columns [c0, c1) of part p."""
    return p * H // nparts, (p + 1) * H // nparts


@njit(inline="always")
def _scratch(buf, p, B, c):
    """A C-contiguous (B, c) view at the start of part p's scratch row."""
    return buf[p, : B * c].reshape((B, c))


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
                for j in range(c):
                    k = c0 + j
                    i = _sigmoid(xg[t, b, k] + acc[b, j])
                    f = _sigmoid(xg[t, b, H + k] + acc[b, c + j])
                    g = _tanh(xg[t, b, 2 * H + k] + acc[b, 2 * c + j])
                    o = _sigmoid(xg[t, b, 3 * H + k] + acc[b, 3 * c + j])
                    cn = f * cs[t, b, k] + i * g
                    tc = _tanh(cn)
                    cs[t + 1, b, k] = cn
                    hs[t + 1, b, k] = o * tc
                    acts[t, b, k] = i
                    acts[t, b, H + k] = f
                    acts[t, b, 2 * H + k] = g
                    acts[t, b, 3 * H + k] = o
                    acts[t, b, 4 * H + k] = tc


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
    dc_next = np.zeros((B, H), dtype=cs.dtype)  # ∂L/∂c_{t+1}, each part owns its columns
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
                for j in range(c):
                    k = c0 + j
                    dh = dhs[t, b, k]
                    dc = cs.dtype.type(0.0)
                    if s != 0.0:
                        dh += sc * acc[b, j]
                        dc = sc * dc_next[b, k] * acts[t + 1, b, H + k]
                    sq += np.float64(dh) * np.float64(dh)
                    i = acts[t, b, k]
                    f = acts[t, b, H + k]
                    g = acts[t, b, 2 * H + k]
                    o = acts[t, b, 3 * H + k]
                    tc = acts[t, b, 4 * H + k]
                    dc += dh * o * (one - tc * tc)
                    dg[t, b, k] = dc * g * i * (one - i)
                    dg[t, b, H + k] = dc * cs[t, b, k] * f * (one - f)
                    dg[t, b, 2 * H + k] = dc * i * (one - g * g)
                    dg[t, b, 3 * H + k] = dh * tc * o * (one - o)
                    dc_next[b, k] = dc
            norms[p, t] = sq
