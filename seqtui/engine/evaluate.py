"""Perplexity of a model over a token stream: the trainer's validation and `seqtui eval` share it."""

from __future__ import annotations

import math

import numpy as np

from seqtui.errors import CorpusError


def eval_batch_size(n_tokens: int, batch_size: int, num_steps: int) -> int:
    """The largest batch ≤ ``batch_size`` whose sequential windows fit ``n_tokens`` (0 if none)."""
    from seqtui.data.batches import min_tokens

    for b in range(min(batch_size, n_tokens), 0, -1):
        if n_tokens >= min_tokens("sequential", b, num_steps):
            return b
    return 0


def evaluate_ids(model, ids: np.ndarray, num_steps: int, batch_size: int, seed: int = 0) -> dict:
    """Mean NLL over sequential windows (state carried) → tokens, loss, ppl, bits per token.

    Windows are those of ``make_epoch(ids, "sequential", b, T, seed, 0)`` with b from
    :func:`eval_batch_size`, so evaluating a run's held-out split reproduces its logged val ppl.
    """
    from seqtui.data.batches import make_epoch

    n = len(ids)
    if n < 2:
        raise CorpusError(f"need at least 2 tokens to evaluate, got {n}")
    T = min(num_steps, n - 1)
    B = eval_batch_size(n, batch_size, T)
    eb = make_epoch(np.ascontiguousarray(ids, dtype=np.int32), "sequential", B, T, seed, 0)
    state = model.init_state(B)
    nll, count = 0.0, 0
    for i in range(eb.num_batches):
        X, Y = eb.batch(i)
        s, k, state = model.evaluate(X, Y, state)
        nll += float(s)
        count += int(k)
    loss = nll / max(count, 1)
    ppl = math.exp(loss) if loss < 700 else math.inf
    return {"tokens": count, "loss": loss, "ppl": ppl, "bits_per_token": loss / math.log(2)}
