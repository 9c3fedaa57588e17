"""Output layer: fused softmax + cross-entropy over all T·B rows at once.

Sizes: N rows (T·B), V vocabulary. The linear product logits = h W_fcᵀ + b_fc is one big GEMM
done by the caller; this module holds the row-wise, numerically stable part:
loss_row = log Σ_v exp(z_v − m) − (z_y − m) with m = max_v z_v, accumulated in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from seqtui.kernels.config import NJIT_PARALLEL


@njit(**NJIT_PARALLEL)
def softmax_ce_forward_backward(logits, targets, scale, nparts):
    """Σ_rows NLL (float64); overwrites ``logits`` (N, V) with scale·(softmax − onehot(target)).

    ``scale`` is 1/N for a mean loss. Non-finite logits give a non-finite loss (no fastmath
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
            s = 0.0
            for v in range(V):
                e = math.exp(np.float64(row[v] - m))
                row[v] = e
                s += e
            total += math.log(s)
            inv = sc / s
            for v in range(V):
                row[v] = logits.dtype.type(row[v] * inv)
            row[y] -= sc
        partial[p] = total
    return partial.sum()


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
            s = 0.0
            for v in range(V):
                s += math.exp(np.float64(row[v] - m))
            total += math.log(s) - np.float64(row[targets[n]] - m)
        partial[p] = total
    return partial.sum()
