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
def matmul_tn(out, a, b, nparts):
    """out (M, N) = aᵀ @ b for a (K, M), b (K, N) C-contiguous — a weight gradient summed over
    K = T·B rows. Part p multiplies its block of the K rows; the partial products are summed."""
    K = a.shape[0]
    M, N = out.shape
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


@njit(**NJIT_PARALLEL)
def gather_rows(out, a, rows, nparts):
    """out[i] = a[rows[i]]; parts own row blocks of out."""
    n = rows.shape[0]
    for p in prange(nparts):
        for i in range(p * n // nparts, (p + 1) * n // nparts):
            out[i] = a[rows[i]]
