"""GRU layer (PyTorch ``nn.GRU``, gates r, z, n): recurrence forward and backward over a window.

Sizes: T steps, B batch, H hidden, G = 3H, P parts (hidden columns split over the cores).

    r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)      z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
    n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))     h' = (1 − z) ⊙ n + z ⊙ h
The caller computes xg = x W_ihᵀ + b_ih + (b_hr, b_hz, 0) for all steps at once and the weight
gradients as big products; these kernels hold the recurrence. Buffers are time-major, C-contiguous:
  hs   (T+1, B, H)  hs[0] = h_{-1}, hs[t+1] = h_t
  xsrc, xrow        input projection (with b_ih and the r, z parts of b_hh) of row b at step
                    t: xsrc[xrow[t, b]] (layer 0: a gather of W_ihᵀ rows by token id; above it:
                    (T·B, G) from one product, xrow[t, b] = t·B + b)
  acts (T, B, 4H)   r | z | n | hn  (hn = h_{t-1} W_hnᵀ + b_hn, needed for ∂r)
  dgi  (T, B, G)    ∂L/∂xg  (gradient of W_ih, b_ih and of the layer input)
  dgh  (T, B, G)    ∂L/∂(h_{t-1} W_hhᵀ + b_hh)  (gradient of W_hh, b_hh and of h_{t-1})
Part p covers hidden columns [c0, c1); each step's tasks take row groups × chunks of parts, as
in rnn.py (``_math.row_split``). W_hh is packed into NR-column panel strips
(``linear.pack_panel``): part p's forward strips hold its r|z|n columns of h W_hhᵀ side by
side; its backward strips W_hh's columns [c0, c1).
Products run MR rows at a time with the register-tiled ``_tile``; the gate arithmetic runs on
each row block while it is still in L1.
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

from seqtui.kernels._math import (MR, NR, _add, _part, _sigmoid_sum, _strip_rows, _tanh, _task_scratch,
                                  _task_span)
from seqtui.kernels.config import NJIT_PARALLEL


@njit(**NJIT_PARALLEL)
def gru_forward(hs, acts, xsrc, xrow, wp, strip0, b_hh, nparts, ngroups, nchunks):
    """Run the GRU over T steps from hs[0]; write hs[1:] and the gate activations.

    The input projection of row b at step t is xsrc[xrow[t, b]] and must already hold
    b_ih + (b_hr, b_hz, 0); b_hh is only read for b_hn (inside r ⊙ (…)). wp, strip0: the forward
    panels.
    """
    T, B = xrow.shape
    G = xsrc.shape[1]
    H = G // 3
    scratch = _task_scratch(hs, strip0, nparts, B, ngroups * nchunks)
    for t in range(T):
        for task in prange(ngroups * nchunks):  # row group × chunk of parts (``row_split``)
            r0, r1, p0, p1 = _task_span(task, ngroups, nchunks, nparts, B)
            buf = scratch[task]
            for p in range(p0, p1):
                c0, c1, s0, ns, ldc = _part(p, nparts, H, strip0)
                c = c1 - c0
                bn = b_hh[2 * H + c0 : 2 * H + c1]
                for q in range(ns):
                    _strip_rows(buf, q * NR, ldc, hs, t * B * H + r0 * H, H, r1 - r0,
                                wp, (s0 + q) * H * NR, H)
                for b in range(r0, r1):
                    x = xsrc[xrow[t, b]]
                    a = buf[(b - r0) * ldc : (b - r0) * ldc + 3 * c]
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
def gru_backward(dgi, dgh, norms, dhs, hs, acts, wp, strip0, carry_scale, nparts, ngroups, nchunks):
    """Backward through the recurrence from t = T-1 down to 0.

    dhs (T, B, H) is ∂L/∂h_t from above; the carry from step t+1 (through z ⊙ h and through
    h W_hhᵀ) is multiplied by carry_scale[t+1]. wp, strip0: the backward panels (W_hh's
    columns of each part). Writes dgi, dgh and the squared norms of the total ∂L/∂h_t per part p
    and MR-row block r into norms[p·⌈B/MR⌉ + r, t] (float64; the caller sums them).
    """
    T, B, H = dhs.shape
    G = 3 * H
    one = hs.dtype.type(1.0)
    nblk = -(-B // MR)  # MR-row blocks of the batch (the norms' rows)
    scratch = _task_scratch(hs, strip0, nparts, B, ngroups * nchunks)
    dh = np.zeros((B, H), dtype=hs.dtype)  # ∂L/∂h_t (then h_{t-1}); each part owns its columns
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
                        _strip_rows(buf, q * NR, ldc, dgh, (t + 1) * B * G + r0 * G, G, r1 - r0,
                                    wp, (s0 + q) * G * NR, G)
                for b in range(r0, r1):
                    d = dh[b, c0:c1]
                    up = dhs[t, b, c0:c1]
                    if s != 0.0:
                        zn = acts[t + 1, b, H + c0 : H + c1]
                        a = buf[(b - r0) * ldc : (b - r0) * ldc + c]
                        for j in range(c):
                            d[j] = up[j] + sc * (d[j] * zn[j] + a[j])
                    else:
                        d[:] = up
                    for j in range(c):
                        sq += np.float64(d[j]) * np.float64(d[j])
                    if b % MR == MR - 1 or b == r1 - 1:  # a row block ends: its share of the norm
                        norms[p * nblk + b // MR, t] = sq
                        sq = 0.0
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
