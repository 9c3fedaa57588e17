"""Batched (non-recurrent) layers: the one-hot input gather and the big products of a step.

The product x_t W_ihᵀ for one-hot x_t is a row gather of W_ihᵀ. Products over all T·B rows
(input projections, output layer, weight gradients) are split over the cores by rows, each
part one single-threaded BLAS call, so one thread pool (OpenMP) does all the parallel work.

Sizes: T steps, B batch, V vocabulary, G gates·H, K/M/N matrix sizes.
  ids  (T, B) int32 token ids (time-major)
  w_t  (V, G)  W_ihᵀ (a C-contiguous transposed copy, so each gather reads one row)
  xg   (T, B, G) the projection, biases included
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from seqtui.kernels._math import NR
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


@njit(**NJIT_PARALLEL)
def matmul_rows(out, a, b, nparts):
    """out (M, N) = a (M, K) @ b (K, N); part p computes a block of rows of out with one
    single-threaded BLAS call (a C-contiguous; b C- or F-contiguous, e.g. a weight's ``.T``)."""
    M = out.shape[0]
    for p in prange(nparts):
        r0 = p * M // nparts
        r1 = (p + 1) * M // nparts
        if r1 > r0:
            np.dot(a[r0:r1], b, out[r0:r1])


@njit(**NJIT_PARALLEL)
def matmul_tn(out, a, b, scratch, nparts):
    """out (M, N) = aᵀ @ b for a (K, M), b (K, N) C-contiguous — a weight gradient summed over
    K = T·B rows.

    Wide outputs (M ≥ 16·P) are split by rows of out: part p copies its columns of a into
    its piece of ``scratch`` (≥ K·M elements) and makes one BLAS call, no reduction. Narrow
    ones (the output layer, M = V) split K and sum the P partial products in part order.
    """
    K = a.shape[0]
    M, N = out.shape
    if M >= 16 * nparts and scratch.shape[0] >= K * M:
        for p in prange(nparts):
            m0 = p * M // nparts
            m1 = (p + 1) * M // nparts
            mb = m1 - m0
            cols = scratch[K * m0 : K * m1].reshape((K, mb))
            for k in range(K):
                src = a[k, m0:m1]
                dst = cols[k]
                for j in range(mb):
                    dst[j] = src[j]
            np.dot(cols.T, b, out[m0:m1])
        return
    partial = np.empty((max(nparts - 1, 0), M, N), dtype=out.dtype)
    for p in prange(nparts):
        k0 = p * K // nparts
        k1 = (p + 1) * K // nparts
        dst = out if p == 0 else partial[p - 1]
        if k1 > k0:
            np.dot(a[k0:k1].T, b[k0:k1], dst)
        else:
            dst[:] = 0
    if nparts > 1:
        for p in prange(nparts):
            r0 = p * M // nparts
            r1 = (p + 1) * M // nparts
            for q in range(nparts - 1):
                for i in range(r0, r1):
                    for j in range(N):
                        out[i, j] += partial[q, i, j]


@njit(**NJIT_PARALLEL)
def pack_panel(wp, w, cols, by_rows, nparts):
    """Pack the weight matrix w into NR-column panel strips for ``_math._tile``.

    wp (S·K·NR,): strip s is a C-contiguous (K, NR) block whose column n is w's row
    cols[s·NR + n] (by_rows, K = w.shape[1]) or w's column cols[s·NR + n] (K = w.shape[0]);
    cols = -1 gives a zero column (padding). Parts own blocks of strips.
    """
    S = cols.shape[0] // NR
    K = w.shape[1] if by_rows else w.shape[0]
    zero = wp.dtype.type(0.0)
    for p in prange(nparts):
        for s in range(p * S // nparts, (p + 1) * S // nparts):
            strip = wp[s * K * NR : (s + 1) * K * NR].reshape((K, NR))
            src = cols[s * NR : (s + 1) * NR]
            if by_rows:
                for n in range(NR):
                    r = src[n]
                    if r < 0:
                        for k in range(K):
                            strip[k, n] = zero
                    else:
                        row = w[r]
                        for k in range(K):
                            strip[k, n] = row[k]
            else:
                for k in range(K):
                    row = w[k]
                    dst = strip[k]
                    for n in range(NR):
                        r = src[n]
                        dst[n] = row[r] if r >= 0 else zero


@njit(**NJIT_PARALLEL)
def colsum(out, a, nparts):
    """out (N,) = Σ_rows a (K, N): a bias gradient; parts own column blocks."""
    K, N = a.shape
    for p in prange(nparts):
        c0 = p * N // nparts
        c1 = (p + 1) * N // nparts
        acc = np.zeros(c1 - c0, dtype=out.dtype)  # local: no aliasing with ``a``, so it vectorizes
        for k in range(K):
            row = a[k, c0:c1]
            for j in range(c1 - c0):
                acc[j] += row[j]
        out[c0:c1] = acc


@njit(**NJIT_PARALLEL)
def add_bias(x, bias, nparts):
    """x (M, N) += bias (N,) on every row; parts own row blocks."""
    M, N = x.shape
    for p in prange(nparts):
        for i in range(p * M // nparts, (p + 1) * M // nparts):
            for j in range(N):
                x[i, j] += bias[j]


@njit(**NJIT_PARALLEL)
def transpose(out, a, nparts):
    """out (N, M) = aᵀ for a (M, N), in 32×32 tiles; parts own row blocks of out."""
    M, N = a.shape
    for p in prange(nparts):
        r0 = p * N // nparts
        r1 = (p + 1) * N // nparts
        for i0 in range(r0, r1, 32):
            i1 = min(i0 + 32, r1)
            for j0 in range(0, M, 32):
                j1 = min(j0 + 32, M)
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        out[i, j] = a[j, i]
