"""Window kernels: cut (X, Y) minibatches out of a token stream. Y is X shifted by one token.

Sizes: B batch, T num_steps, N tokens. The randomness (offset, permutation) is drawn by the
caller from ``np.random.default_rng((seed, epoch))`` so batches are reproducible and any batch
of an epoch can be rebuilt on its own (exact resume).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT


@njit(**NJIT)
def gather_windows(ids, starts, T, X, Y):
    """Random sampling: row r is ``ids[starts[r] : starts[r] + T]``, Y one token later."""
    for r in range(starts.shape[0]):
        s = starts[r]
        for t in range(T):
            X[r, t] = ids[s + t]
            Y[r, t] = ids[s + t + 1]


@njit(**NJIT)
def sequential_windows(ids, offset, row_len, col, T, X, Y):
    """Sequential partitioning: ``ids[offset : offset + B * row_len]`` is viewed as B rows of
    ``row_len`` tokens; the batch is columns ``col : col + T`` of those rows (Y one token on)."""
    for r in range(X.shape[0]):
        base = offset + r * row_len + col
        for t in range(T):
            X[r, t] = ids[base + t]
            Y[r, t] = ids[base + t + 1]
