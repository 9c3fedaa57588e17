"""n-gram counting over a token stream, in one pass and bounded memory.

Sizes: N tokens, V vocabulary, n the n-gram length. A key is the n-gram's base-V number (last
token least significant), so ``key // V`` is its context's key.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT


@njit(**NJIT)
def count_dense(counts, ids, n, V):
    """counts[key] += 1 for every n-gram of ``ids`` (counts has V**n entries, int64).

    A rolling key reads each token once (drop the oldest digit by a subtraction, append the
    new one), so the stream may be a memory-mapped file of any size."""
    N = ids.shape[0]
    if N < n:
        return
    top = np.int64(1)  # V**(n-1): the weight of the oldest digit
    for _ in range(n - 1):
        top *= V
    key = np.int64(0)
    for i in range(n):
        key = key * V + ids[i]
    counts[key] += 1
    for i in range(n, N):
        key = (key - ids[i - n] * top) * V + ids[i]
        counts[key] += 1
