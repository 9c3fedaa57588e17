"""Output layer: fused softmax + cross-entropy over all T·B rows at once.

Sizes: N rows (T·B), V vocabulary. The linear product logits = h W_fcᵀ + b_fc is one big GEMM
done by the caller; this module holds the row-wise, numerically stable part:
loss_row = log Σ_v exp(z_v − m) − (z_y − m) with m = max_v z_v, accumulated in float64.
float32 uses a vectorizable exp (Cephes' expf: Cody–Waite reduction + degree-5 polynomial,
≈ 1 ulp); float64 uses libm's exp so gradient checks see exact maths.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from seqtui.kernels._math import _exp
from seqtui.kernels.config import NJIT_PARALLEL


@njit(inline="always")
def _ordered_sum(x):
    """Σ x in index order. (``x.sum()`` inside a parallel kernel becomes a parallel reduction
    whose order, hence whose last bit, depends on the thread count.)"""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i]
    return total


@njit(**NJIT_PARALLEL)
def softmax_ce_forward_backward(logits, targets, scale, nparts):
    """Σ_rows NLL (float64); overwrites ``logits`` (N, V) with scale·(softmax − onehot(target)).

    ``scale`` is 1/N for a mean loss. Non-finite logits give a non-finite loss (no fast-math
    no-NaN assumption here), which the caller checks.
    """
    N, V = logits.shape
    sc = logits.dtype.type(scale)
    partial = np.zeros(nparts, dtype=np.float64)
    for p in prange(nparts):
        total = 0.0
        for n in range(p * N // nparts, (p + 1) * N // nparts):
            row = logits[n]
            m = row[0]
            for v in range(1, V):
                m = max(m, row[v])
            y = targets[n]
            total -= np.float64(row[y] - m)
            for v in range(V):
                row[v] = _exp(row[v] - m)
            s = logits.dtype.type(0.0)  # ≤ V terms, each ≤ 1: the row's dtype is accurate enough
            for v in range(V):
                s += row[v]
            total += math.log(np.float64(s))
            inv = logits.dtype.type(scale / np.float64(s))
            for v in range(V):
                row[v] *= inv
            row[y] -= sc
        partial[p] = total
    return _ordered_sum(partial)


@njit(**NJIT_PARALLEL)
def softmax_ce_forward(logits, targets, nparts):
    """Σ_rows NLL (float64) without gradients; ``logits`` is left unchanged."""
    N, V = logits.shape
    partial = np.zeros(nparts, dtype=np.float64)
    for p in prange(nparts):
        total = 0.0
        for n in range(p * N // nparts, (p + 1) * N // nparts):
            row = logits[n]
            m = row[0]
            for v in range(1, V):
                m = max(m, row[v])
            s = logits.dtype.type(0.0)
            for v in range(V):
                s += _exp(row[v] - m)
            total += math.log(np.float64(s)) - np.float64(row[targets[n]] - m)
        partial[p] = total
    return _ordered_sum(partial)
