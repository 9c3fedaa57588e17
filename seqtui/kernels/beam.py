"""Beam search step: keep the ``width`` most likely extensions of the live hypotheses.

Sizes: W beam width, V vocabulary, S state slots, L layers, H hidden.
  logits (W, V)           next-token logits of each live hypothesis (rows >= live ignored)
  scores (W,) float64     cumulative log-probability of each live hypothesis
  states (W, S, L, 1, H)  each hypothesis' recurrent state (a batch-1 state per row, as the
                          generation kernels in sample.py take it); reordered in place
The log-softmax is taken in float64. Candidates are ranked by score, ties by (parent, token)
ascending, so width 1 picks the first maximal logit: exactly greedy decoding.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT


@njit(**NJIT)
def beam_step(logits, scores, live, states, scratch, parents, tokens, new_scores):
    """Select the top ``width = parents.shape[0]`` of the live·V candidates, best first: writes
    parents, tokens, new_scores and moves each survivor's parent state into its row of
    ``states`` (``scratch`` has the shape of ``states``). Returns the number kept,
    min(width, live·V)."""
    W = parents.shape[0]
    V = logits.shape[1]
    best = np.empty(W, dtype=np.float64)
    where = np.empty(W, dtype=np.int64)
    count = 0
    for w in range(live):
        row = logits[w]
        m = np.float64(row[0])
        for v in range(1, V):
            if row[v] > m:
                m = np.float64(row[v])
        total = 0.0
        for v in range(V):
            total += math.exp(np.float64(row[v]) - m)
        base = scores[w] - m - math.log(total)
        for v in range(V):
            cand = base + np.float64(row[v])
            if count == W and not cand > best[W - 1]:
                continue
            pos = count if count < W else W - 1
            while pos > 0 and best[pos - 1] < cand:  # equal scores keep the earlier candidate first
                best[pos] = best[pos - 1]
                where[pos] = where[pos - 1]
                pos -= 1
            best[pos] = cand
            where[pos] = w * V + v
            if count < W:
                count += 1
    for j in range(count):
        parents[j] = where[j] // V
        tokens[j] = where[j] % V
        new_scores[j] = best[j]
        scratch[j] = states[parents[j]]
    for j in range(count):
        states[j] = scratch[j]
    return count
