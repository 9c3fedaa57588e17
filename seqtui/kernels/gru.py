"""GRU layer (PyTorch ``nn.GRU``, gates r, z, n): recurrence forward and backward over a window.

Sizes: T steps, B batch, H hidden, G = 3H, P parts (hidden columns split over the cores).

    r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)      z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
    n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))     h' = (1 − z) ⊙ n + z ⊙ h
The caller computes xg = x W_ihᵀ + b_ih + (b_hr, b_hz, 0) for all steps at once and the weight gradients as big
products; these kernels hold the recurrence. Buffers are time-major, C-contiguous:
  hs   (T+1, B, H)  hs[0] = h_{-1}, hs[t+1] = h_t
  xg   (T, B, G)    input projection (with b_ih and the r, z parts of b_hh)
  acts (T, B, 4H)   r | z | n | hn  (hn = h_{t-1} W_hnᵀ + b_hn, needed for ∂r)
  dgi  (T, B, G)    ∂L/∂xg  (gradient of W_ih, b_ih and of the layer input)
  dgh  (T, B, G)    ∂L/∂(h_{t-1} W_hhᵀ + b_hh)  (gradient of W_hh, b_hh and of h_{t-1})
Part p owns hidden columns [c0, c1) and, in the forward pass, the rows of W_hh that produce
them: ``w_hh_parts`` is W_hh with its rows regrouped part by part (r, z, n rows of part 0, then
of part 1), so part p's block is the contiguous rows [3·c0, 3·c1).
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
def _add(out, x, y):
    """out = x + y, elementwise over 1-D slices."""
    for j in range(out.shape[0]):
        out[j] = x[j] + y[j]


@njit(inline="always")
def _cols(p, nparts, H):
    """Hidden columns [c0, c1) of part p."""
    return p * H // nparts, (p + 1) * H // nparts


@njit(inline="always")
def _scratch(buf, p, B, c):
    """A C-contiguous (B, c) view at the start of part p's scratch row."""
    return buf[p, : B * c].reshape((B, c))


# The elementwise work runs as short loops over contiguous row slices, each touching two or three
# arrays: LLVM then vectorizes them (one loop over many arrays gets no SIMD: too many aliasing checks).


@njit(**NJIT_PARALLEL)
def gru_forward(hs, acts, xg, w_hh_parts, b_hh, nparts):
    """Run the GRU over T steps from hs[0]; write hs[1:] and the gate activations.

    xg must already hold b_ih + (b_hr, b_hz, 0); b_hh is only read for b_hn (inside r ⊙ (…)).
    """
    T, B, G = xg.shape
    H = G // 3
    scratch = np.empty((nparts, 3 * B * (H // nparts + 1)), dtype=hs.dtype)
    for t in range(T):
        for p in prange(nparts):
            c0, c1 = _cols(p, nparts, H)
            c = c1 - c0
            acc = _scratch(scratch, p, B, 3 * c)
            np.dot(hs[t], w_hh_parts[3 * c0 : 3 * c1].T, acc)
            bn = b_hh[2 * H + c0 : 2 * H + c1]
            for b in range(B):
                x = xg[t, b]
                a = acc[b]
                g = acts[t, b]
                r = g[c0:c1]
                z = g[H + c0 : H + c1]
                n = g[2 * H + c0 : 2 * H + c1]
                hn = g[3 * H + c0 : 3 * H + c1]
                _sigmoid_sum(r, x[c0:c1], a[:c])
                _sigmoid_sum(z, x[H + c0 : H + c1], a[c : 2 * c])
                _add(hn, a[2 * c :], bn)
                xn = x[2 * H + c0 : 2 * H + c1]
                for j in range(c):
                    n[j] = _tanh(xn[j] + r[j] * hn[j])
                hp = hs[t, b, c0:c1]
                ho = hs[t + 1, b, c0:c1]
                for j in range(c):
                    ho[j] = n[j] + z[j] * (hp[j] - n[j])


@njit(**NJIT_PARALLEL)
def gru_backward(dgi, dgh, norms, dhs, hs, acts, w_hh_t, carry_scale, nparts):
    """Backward through the recurrence from t = T-1 down to 0.

    dhs (T, B, H) is ∂L/∂h_t from above; the carry from step t+1 (through z ⊙ h and through
    h W_hhᵀ) is multiplied by carry_scale[t+1]. w_hh_t is W_hhᵀ, C-contiguous (H, G). Writes
    dgi, dgh and the per-part squared norms of the total ∂L/∂h_t into norms (P, T), float64.
    """
    T, B, H = dhs.shape
    one = hs.dtype.type(1.0)
    scratch = np.empty((nparts, B * (H // nparts + 1)), dtype=hs.dtype)
    dh = np.zeros((B, H), dtype=hs.dtype)  # ∂L/∂h_t (then h_{t-1}); each part owns its columns
    for t in range(T - 1, -1, -1):
        s = carry_scale[t + 1] if t + 1 < T else 0.0
        sc = hs.dtype.type(s)
        for p in prange(nparts):
            c0, c1 = _cols(p, nparts, H)
            c = c1 - c0
            acc = _scratch(scratch, p, B, c)
            if s != 0.0:
                np.dot(dgh[t + 1], w_hh_t[c0:c1].T, acc)
            sq = 0.0
            for b in range(B):
                d = dh[b, c0:c1]
                up = dhs[t, b, c0:c1]
                if s != 0.0:
                    zn = acts[t + 1, b, H + c0 : H + c1]
                    a = acc[b]
                    for j in range(c):
                        d[j] = up[j] + sc * (d[j] * zn[j] + a[j])
                else:
                    d[:] = up
                for j in range(c):
                    sq += np.float64(d[j]) * np.float64(d[j])
                g = acts[t, b]
                r = g[c0:c1]
                z = g[H + c0 : H + c1]
                n = g[2 * H + c0 : 2 * H + c1]
                hn = g[3 * H + c0 : 3 * H + c1]
                hp = hs[t, b, c0:c1]
                gi = dgi[t, b]
                gh = dgh[t, b]
                dr = gi[c0:c1]
                dz = gi[H + c0 : H + c1]
                dn = gi[2 * H + c0 : 2 * H + c1]
                for j in range(c):
                    dn[j] = d[j] * (one - z[j]) * (one - n[j] * n[j])
                for j in range(c):
                    dz[j] = d[j] * (hp[j] - n[j]) * z[j] * (one - z[j])
                for j in range(c):
                    dr[j] = dn[j] * hn[j] * r[j] * (one - r[j])
                gh[c0:c1] = dr
                gh[H + c0 : H + c1] = dz
                dhn = gh[2 * H + c0 : 2 * H + c1]
                for j in range(c):
                    dhn[j] = dn[j] * r[j]
            norms[p, t] = sq
