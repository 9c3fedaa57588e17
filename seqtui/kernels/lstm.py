"""LSTM layer (PyTorch ``nn.LSTM``, gates i, f, g, o): recurrence forward and backward over a window.

Sizes: T steps, B batch, H hidden, G = 4H, P parts (hidden columns split over the cores).

    i, f, o = σ(x W_i·ᵀ + h W_h·ᵀ + b)     g = tanh(x W_igᵀ + h W_hgᵀ + b)
    c' = f ⊙ c + i ⊙ g                      h' = o ⊙ tanh(c')
The caller computes xg = x W_ihᵀ + b_ih + b_hh for all steps at once and the weight gradients
as big products; these kernels hold the recurrence. Buffers are time-major, C-contiguous:
  hs, cs (T+1, B, H)  [0] = initial state, [t+1] = state after step t
  xsrc, xrow          input projection with both biases of row b at step t: xsrc[xrow[t, b]]
                      (layer 0: a gather of W_ihᵀ rows by token id; above it (T·B, G) from one
                      product, xrow[t, b] = t·B + b)
  acts   (T, B, 5H)   i | f | g | o | tanh(c_t)
  dg     (T, B, G)    ∂L/∂(gate pre-activations): the gradient of W_ih, W_hh, both biases, inputs
Part p covers hidden columns [c0, c1); each step's tasks take row groups × chunks of parts, as
in rnn.py (``_math.row_split``). W_hh is packed into NR-column panel strips
(``linear.pack_panel``): part p's forward strips hold its i|f|g|o columns of h W_hhᵀ side by
side; its backward strips W_hh's columns [c0, c1). Products run MR rows at a time with the
register-tiled ``_tile``; the gate arithmetic and the cell update run on each row block while
it is still in L1.
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

from seqtui.kernels._math import (MR, NR, _part, _sigmoid_sum, _strip_rows, _tanh, _tanh_sum,
                                  _task_scratch, _task_span)
from seqtui.kernels.config import NJIT_PARALLEL


@njit(**NJIT_PARALLEL)
def lstm_forward(hs, cs, acts, xsrc, xrow, wp, strip0, nparts, ngroups, nchunks):
    """Run the LSTM over T steps from (hs[0], cs[0]); write hs[1:], cs[1:] and the activations.
    wp, strip0: the forward panels."""
    T, B = xrow.shape
    G = xsrc.shape[1]
    H = G // 4
    scratch = _task_scratch(hs, strip0, nparts, B, ngroups * nchunks)
    for t in range(T):
        for task in prange(ngroups * nchunks):  # row group × chunk of parts (``row_split``)
            r0, r1, p0, p1 = _task_span(task, ngroups, nchunks, nparts, B)
            buf = scratch[task]
            for p in range(p0, p1):
                c0, c1, s0, ns, ldc = _part(p, nparts, H, strip0)
                c = c1 - c0
                for q in range(ns):
                    _strip_rows(buf, q * NR, ldc, hs, t * B * H + r0 * H, H, r1 - r0,
                                wp, (s0 + q) * H * NR, H)
                for b in range(r0, r1):
                    x = xsrc[xrow[t, b]]
                    a = buf[(b - r0) * ldc : (b - r0) * ldc + 4 * c]
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
def lstm_backward(dg, norms, dhs, cs, acts, wp, strip0, carry_scale, nparts, ngroups, nchunks):
    """Backward through the recurrence from t = T-1 down to 0.

    dhs (T, B, H) is ∂L/∂h_t from above; the carry from step t+1 into (h_t, c_t) is multiplied
    by carry_scale[t+1]. wp, strip0: the backward panels (W_hh's columns of each part). Writes
    dg and the squared norms of the total ∂L/∂h_t per part p and MR-row block r into
    norms[p·⌈B/MR⌉ + r, t] (float64; the caller sums them).
    """
    T, B, H = dhs.shape
    G = 4 * H
    one = cs.dtype.type(1.0)
    nblk = -(-B // MR)  # MR-row blocks of the batch (the norms' rows)
    scratch = _task_scratch(cs, strip0, nparts, B, ngroups * nchunks)
    dh = np.zeros((B, H), dtype=cs.dtype)  # ∂L/∂h_t; each part owns its columns
    dc = np.zeros((B, H), dtype=cs.dtype)  # ∂L/∂c_t (then c_{t-1})
    for t in range(T - 1, -1, -1):
        s = carry_scale[t + 1] if t + 1 < T else 0.0
        sc = cs.dtype.type(s)
        for task in prange(ngroups * nchunks):  # row group × chunk of parts (``row_split``)
            r0, r1, p0, p1 = _task_span(task, ngroups, nchunks, nparts, B)
            buf = scratch[task]
            for p in range(p0, p1):
                c0, c1, s0, ns, ldc = _part(p, nparts, H, strip0)
                c = c1 - c0
                sq = 0.0
                if s != 0.0:
                    for q in range(ns):
                        _strip_rows(buf, q * NR, ldc, dg, (t + 1) * B * G + r0 * G, G, r1 - r0,
                                    wp, (s0 + q) * G * NR, G)
                for b in range(r0, r1):
                    d = dh[b, c0:c1]
                    dcb = dc[b, c0:c1]
                    up = dhs[t, b, c0:c1]
                    g = acts[t, b]
                    o = g[3 * H + c0 : 3 * H + c1]
                    tc = g[4 * H + c0 : 4 * H + c1]
                    if s != 0.0:
                        a = buf[(b - r0) * ldc : (b - r0) * ldc + c]
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
                    if b % MR == MR - 1 or b == r1 - 1:  # a row block ends: its share of the norm
                        norms[p * nblk + b // MR, t] = sq
                        sq = 0.0
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
