"""Vanilla RNN layer (PyTorch ``nn.RNN``, tanh): recurrence forward and backward over a window.

Sizes: T steps, B batch, H hidden, P parts (hidden columns split over the cores), MR × NR tile.

Everything that is not sequential (the input projection x_t W_ihᵀ + b_ih + b_hh for all steps, the
weight gradients) is done by the caller as a few big products; these kernels hold only the
recurrence. Buffers are time-major and C-contiguous:
  hs  (T+1, B, H)  hs[0] = the initial state h_{-1}, hs[t+1] = h_t
  xsrc, xrow       the input projection of every step (biases included): row b of step t is
                   xsrc[xrow[t, b]] — for the first layer xsrc is W_ihᵀ + biases (V, H) and xrow
                   the token ids (a one-hot product is a gather), above it xsrc is (T·B, H) from
                   one big product and xrow[t, b] = t·B + b
  dxg (T, B, H)    ∂L/∂(pre-activation) of every step — the gradient of W_ih, W_hh and both biases
  wp, strip0       W_hh packed into NR-column panel strips (``linear.pack_panel`` with
                   ``_math.panel_index``): forward panels hold W_hhᵀ's columns of each part,
                   backward panels W_hh's columns of each part
Each step is one parallel region of ngroups × nchunks tasks (``_math.row_split``): a task takes
a group of whole MR-row blocks of the batch and a chunk of the parts, and computes those parts'
hidden columns [p·H/P, (p+1)·H/P) for its rows with the register-tiled ``_tile`` product, the
elementwise work following on each row block while it is in L1. Rows are split first: a row's
recurrence needs only its own previous state, so a core never waits for the lines another core
just wrote (cutting the columns instead made two threads only 1.1–1.4× faster than one). No cut
changes a bit of the result.
Each task's rows and parts, each part's columns and strips and the tile scratch come from
``_math`` (``_task_span``, ``_part``, ``_task_scratch``); the part loop and its strip-blocked tile
calls repeat in rnn.py, gru.py and lstm.py on purpose: each cell fuses its own gate arithmetic
into that loop, written in place beside its
forward/backward twin (a shared driver taking the epilogue as a function is a possible
follow-up, to be measured first: this loop is the hot path).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from seqtui.kernels._math import MR, NR, _part, _strip_rows, _tanh, _task_scratch, _task_span
from seqtui.kernels.config import NJIT_PARALLEL


@njit(**NJIT_PARALLEL)
def rnn_forward(hs, xsrc, xrow, wp, strip0, nparts, ngroups, nchunks):
    """h_t = tanh(x_t + h_{t-1} W_hhᵀ) for t = 0..T-1, written to hs[1:] (hs[0] is h_{-1}); x_t of
    row b is xsrc[xrow[t, b]] (see the module docstring)."""
    T, B = xrow.shape
    H = xsrc.shape[1]
    scratch = _task_scratch(hs, strip0, nparts, B, ngroups * nchunks)
    for t in range(T):
        for task in prange(ngroups * nchunks):  # row group × chunk of parts (``row_split``)
            r0, r1, p0, p1 = _task_span(task, ngroups, nchunks, nparts, B)
            buf = scratch[task]
            for p in range(p0, p1):
                c0, c1, s0, ns, ldc = _part(p, nparts, H, strip0)
                c = c1 - c0
                for s in range(ns):
                    _strip_rows(buf, s * NR, ldc, hs, t * B * H + r0 * H, H, r1 - r0,
                                wp, (s0 + s) * H * NR, H)
                for b in range(r0, r1):
                    x = xsrc[xrow[t, b], c0:c1]
                    ho = hs[t + 1, b, c0:c1]
                    a = buf[(b - r0) * ldc : (b - r0) * ldc + c]
                    for j in range(c):
                        ho[j] = _tanh(x[j] + a[j])


@njit(**NJIT_PARALLEL)
def rnn_backward(dxg, norms, dhs, hs, wp, strip0, carry_scale, nparts, ngroups, nchunks):
    """Backward through the recurrence, from t = T-1 down to 0.

    dhs (T, B, H) is ∂L/∂h_t from above (the output layer or the next layer's input); the carry
    from step t+1 is multiplied by carry_scale[t+1] (truncated / randomized BPTT). Writes dxg and
    the squared norms of the total ∂L/∂h_t per part p and MR-row block r into
    norms[p·⌈B/MR⌉ + r, t] (float64; the caller sums them).
    wp, strip0: the backward panels (W_hh's columns of each part).
    """
    T, B, H = dhs.shape
    one = hs.dtype.type(1.0)
    nblk = -(-B // MR)  # MR-row blocks of the batch (the norms' rows)
    scratch = _task_scratch(hs, strip0, nparts, B, ngroups * nchunks)
    for t in range(T - 1, -1, -1):
        s = carry_scale[t + 1] if t + 1 < T else 0.0
        sc = hs.dtype.type(s)
        for task in prange(ngroups * nchunks):  # row group × chunk of parts (``row_split``)
            r0, r1, p0, p1 = _task_span(task, ngroups, nchunks, nparts, B)
            buf = scratch[task]
            for p in range(p0, p1):
                c0, c1, s0, ns, ldc = _part(p, nparts, H, strip0)
                c = c1 - c0
                sq = 0.0
                if s != 0.0:
                    for q in range(ns):
                        _strip_rows(buf, q * NR, ldc, dxg, (t + 1) * B * H + r0 * H, H, r1 - r0,
                                    wp, (s0 + q) * H * NR, H)
                for b in range(r0, r1):
                    up = dhs[t, b, c0:c1]
                    h = hs[t + 1, b, c0:c1]
                    d = dxg[t, b, c0:c1]
                    if s != 0.0:
                        a = buf[(b - r0) * ldc : (b - r0) * ldc + c]
                        for j in range(c):
                            d[j] = up[j] + sc * a[j]
                    else:
                        d[:] = up
                    for j in range(c):
                        sq += np.float64(d[j]) * np.float64(d[j])
                    if b % MR == MR - 1 or b == r1 - 1:  # a row block ends: its share of the norm
                        norms[p * nblk + b // MR, t] = sq
                        sq = 0.0
                    for j in range(c):
                        d[j] = d[j] * (one - h[j] * h[j])
