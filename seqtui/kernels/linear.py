"""One-hot input layer: the product x_t W_ihᵀ for one-hot x_t is a row gather of W_ihᵀ.

Sizes: T steps, B batch, V vocabulary, G gates·H.
  ids  (T, B) int32 token ids (time-major)
  w_t  (V, G)  W_ihᵀ (a C-contiguous transposed copy, so each gather reads one row)
  xg   (T, B, G) the projection, biases included
"""

from __future__ import annotations

from numba import njit, prange

from seqtui.kernels.config import NJIT_PARALLEL


@njit(**NJIT_PARALLEL)
def onehot_forward(xg, ids, w_t, bias, nparts):
    """xg[t, b] = w_t[ids[t, b]] + bias  (bias = b_ih, plus b_hh when the cell folds it in)."""
    T, B, G = xg.shape
    for p in prange(nparts):
        for t in range(p * T // nparts, (p + 1) * T // nparts):
            for b in range(B):
                row = w_t[ids[t, b]]
                for g in range(G):
                    xg[t, b, g] = row[g] + bias[g]


@njit(**NJIT_PARALLEL)
def onehot_backward(dw_t, dxg, ids, nparts):
    """dw_t[v] += Σ over (t, b) with ids[t, b] = v of dxg[t, b]; parts own gate columns."""
    T, B, G = dxg.shape
    for p in prange(nparts):
        g0 = p * G // nparts
        g1 = (p + 1) * G // nparts
        for t in range(T):
            for b in range(B):
                v = ids[t, b]
                for g in range(g0, g1):
                    dw_t[v, g] += dxg[t, b, g]
