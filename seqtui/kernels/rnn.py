"""Vanilla RNN layer (PyTorch ``nn.RNN``, tanh): recurrence forward and backward over a window.

Sizes: T steps, B batch, H hidden, P parts (hidden columns split over the cores).

Everything that is not sequential (the input projection x_t W_ihᵀ + b_ih + b_hh for all steps, the
weight gradients) is done by the caller as a few big products; these kernels hold only the
recurrence. Buffers are time-major and C-contiguous:
  hs  (T+1, B, H)  hs[0] = the initial state h_{-1}, hs[t+1] = h_t
  xg  (T, B, H)    the input projection of every step (biases included)
  dxg (T, B, H)    ∂L/∂(pre-activation) of every step — the gradient of W_ih, W_hh and both biases
Each step is one parallel region: part p computes hidden columns [p·H/P, (p+1)·H/P) from the
whole previous state with its own rows of W_hh (forward) or of W_hhᵀ (backward), with
single-threaded BLAS inside (the caller limits it) and the elementwise work fused into the store.
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


@njit(inline="always")
def _cols(p, nparts, H):
    """Hidden columns [c0, c1) of part p."""
    return p * H // nparts, (p + 1) * H // nparts


@njit(inline="always")
def _scratch(buf, p, B, c):
    """A C-contiguous (B, c) view at the start of part p's scratch row."""
    return buf[p, : B * c].reshape((B, c))


@njit(**NJIT_PARALLEL)
def rnn_forward(hs, xg, w_hh, nparts):
    """h_t = tanh(xg_t + h_{t-1} W_hhᵀ) for t = 0..T-1, written to hs[1:] (hs[0] is h_{-1})."""
    T, B, H = xg.shape
    scratch = np.empty((nparts, B * (H // nparts + 1)), dtype=hs.dtype)
    for t in range(T):
        for p in prange(nparts):
            c0, c1 = _cols(p, nparts, H)
            c = c1 - c0
            acc = _scratch(scratch, p, B, c)
            np.dot(hs[t], w_hh[c0:c1].T, acc)
            for b in range(B):
                for j in range(c):
                    hs[t + 1, b, c0 + j] = _tanh(xg[t, b, c0 + j] + acc[b, j])


@njit(**NJIT_PARALLEL)
def rnn_backward(dxg, norms, dhs, hs, w_hh_t, carry_scale, nparts):
    """Backward through the recurrence, from t = T-1 down to 0.

    dhs (T, B, H) is ∂L/∂h_t from above (the output layer or the next layer's input); the carry
    from step t+1 is multiplied by carry_scale[t+1] (truncated / randomized BPTT). Writes dxg and
    the per-part squared norms of the total ∂L/∂h_t into norms (P, T), float64.
    w_hh_t is W_hhᵀ, C-contiguous (H, H).
    """
    T, B, H = dhs.shape
    scratch = np.empty((nparts, B * (H // nparts + 1)), dtype=hs.dtype)
    for t in range(T - 1, -1, -1):
        s = carry_scale[t + 1] if t + 1 < T else 0.0
        for p in prange(nparts):
            c0, c1 = _cols(p, nparts, H)
            c = c1 - c0
            acc = _scratch(scratch, p, B, c)
            if s != 0.0:
                np.dot(dxg[t + 1], w_hh_t[c0:c1].T, acc)
            else:
                acc[:] = 0.0
            sc = hs.dtype.type(s)
            sq = 0.0
            for b in range(B):
                for j in range(c):
                    dh = dhs[t, b, c0 + j] + sc * acc[b, j]
                    sq += np.float64(dh) * np.float64(dh)
                    h = hs[t + 1, b, c0 + j]
                    dxg[t, b, c0 + j] = dh * (hs.dtype.type(1.0) - h * h)
            norms[p, t] = sq
