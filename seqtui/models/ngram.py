"""k-th order Markov baseline with the Laplace smoothing of the RNN chapter's "Language Models".

With m = V (vocabulary size), n tokens and n(·) counts over the training ids:

    P̂(x)            = (n(x) + ε₁/m) / (n + ε₁)
    P̂(x′ | x)        = (n(x, x′) + ε₂·P̂(x′)) / (n(x) + ε₂)
    P̂(x″ | x, x′)    = (n(x, x′, x″) + ε₃·P̂(x″ | x′)) / (n(x, x′) + ε₃)        and so on,

where a context count n(x, …) counts the context's occurrences *followed by a token*, so every
conditional distribution sums to exactly 1. Positions with fewer than k predecessors use the
longest context they have. Perplexity is exp of the mean negative log-likelihood.

N-grams are stored as sorted int64 keys (base-V digits, last token least significant) with
their counts; lookups are binary searches, so memory is O(distinct n-grams), not V^k. Counting
streams the ids once per order — a dense table when V^n is small (characters), chunked
sort-and-merge otherwise — and perplexities are summed chunk by chunk, so a corpus of hundreds of
MB costs little more memory than its token array (which may be a memory-mapped file).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from seqtui.errors import ConfigError, CorpusError

MAX_ORDER = 12
DENSE_LIMIT = 1 << 24   # V**n up to this: count into a dense table (128 MiB of int64 at most)
CHUNK = 1 << 22         # tokens per chunk of sorted counting and of perplexity sums


def _lookup(keys: np.ndarray, counts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """counts[k] for each query key found in the sorted ``keys``, else 0 (float64)."""
    if keys.shape[0] == 0:
        return np.zeros(np.shape(q), dtype=np.float64)
    idx = np.searchsorted(keys, q)
    idx = np.minimum(idx, keys.shape[0] - 1)
    found = keys[idx] == q
    return np.where(found, counts[idx], 0).astype(np.float64)


def _ngram_keys(ids: np.ndarray, n: int, V: int) -> np.ndarray:
    from seqtui.kernels.text import ngram_keys

    return ngram_keys(np.ascontiguousarray(ids, dtype=np.int32), n, V)


def expand_eps(eps: float | Sequence[float], order: int) -> tuple[float, ...]:
    """ε₁ … ε_{k+1}: a single value or a list whose last value repeats; each must be > 0."""
    vals = [float(eps)] if np.isscalar(eps) else [float(e) for e in eps]  # type: ignore[arg-type]
    if not vals:
        raise ConfigError("give at least one smoothing constant ε")
    vals = (vals + [vals[-1]] * (order + 1))[: order + 1]
    if any(not math.isfinite(e) or e <= 0 for e in vals):
        raise ConfigError(f"smoothing constants must be finite and > 0; got {vals}")
    return tuple(vals)


class NGramModel:
    """A Laplace-smoothed k-th order model fitted on one token stream."""

    def __init__(self, order: int, vocab_size: int, eps: float | Sequence[float] = 1.0):
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 0 <= order <= MAX_ORDER:
            raise ConfigError(f"order must be an integer in [0, {MAX_ORDER}]; got {order!r}")
        if vocab_size < 1:
            raise ConfigError(f"vocab_size must be >= 1; got {vocab_size}")
        if (order + 1) * math.log2(max(vocab_size, 2)) >= 62:
            raise ConfigError(
                f"order {order} is too high for a vocabulary of {vocab_size:,} (n-gram keys would overflow)"
            )
        self.order = int(order)
        self.V = int(vocab_size)
        self.eps = expand_eps(eps, self.order)
        self.n = 0
        self.unigram = np.zeros(self.V, dtype=np.float64)
        # level j (1..k): sorted (j+1)-gram keys + counts, sorted j-gram context keys + counts
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.ctx_keys: list[np.ndarray] = []
        self.ctx_counts: list[np.ndarray] = []
        # the same counts as dense float64 tables (index = key) when V^n is small: O(1) lookups
        self.dense: list[tuple[np.ndarray, np.ndarray] | None] = []

    @classmethod
    def fit(cls, ids: np.ndarray, vocab_size: int, order: int, eps: float | Sequence[float] = 1.0) -> NGramModel:
        """Count unigrams … (k+1)-grams of ``ids``."""
        model = cls(order, vocab_size, eps)
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        if ids.shape[0] == 0:
            raise CorpusError("cannot fit an n-gram model on zero tokens")
        if ids.min() < 0 or ids.max() >= model.V:
            raise ConfigError(f"token ids must lie in [0, {model.V})")
        from seqtui.kernels.text import count_unigrams

        model.n = int(ids.shape[0])
        model.unigram = count_unigrams(ids, model.V).astype(np.float64)
        for j in range(1, model.order + 1):
            keys, counts, table = _count(ids, j + 1, model.V)
            model.dense.append(None if table is None else
                               (table.astype(np.float64), table.reshape(-1, model.V).sum(1).astype(np.float64)))
            ctx = keys // model.V
            ctx_keys, first = np.unique(ctx, return_index=True)
            ctx_counts = np.add.reduceat(counts, first) if counts.size else counts
            model.keys.append(keys)
            model.counts.append(counts)
            model.ctx_keys.append(ctx_keys)
            model.ctx_counts.append(ctx_counts)
        return model

    # -- probabilities -----------------------------------------------------------------------
    def unigram_probs(self) -> np.ndarray:
        e1 = self.eps[0]
        return (self.unigram + e1 / self.V) / (self.n + e1)

    def distribution(self, context: Sequence[int] | np.ndarray = ()) -> np.ndarray:
        """P̂(· | the last ≤ k tokens of ``context``): float64 (V,), sums to 1."""
        ctx = np.asarray(context, dtype=np.int64).ravel()
        ctx = ctx[max(0, ctx.shape[0] - self.order):] if self.order else ctx[:0]
        p = self.unigram_probs()
        cand = np.arange(self.V, dtype=np.int64)
        for j in range(1, ctx.shape[0] + 1):
            ctx_key = np.int64(0)
            for tok in ctx[ctx.shape[0] - j:]:
                ctx_key = ctx_key * self.V + tok
            c = _lookup(self.keys[j - 1], self.counts[j - 1], ctx_key * self.V + cand)
            cc = _lookup(self.ctx_keys[j - 1], self.ctx_counts[j - 1], np.array([ctx_key]))[0]
            e = self.eps[j]
            p = (c + e * p) / (cc + e)
        return p

    def log_probs(self, ids: np.ndarray, history: np.ndarray | None = None) -> np.ndarray:
        """log P̂(x_t | up to k previous tokens) for each token of ``ids`` (float64).

        ``history`` (e.g. the training tokens before a held-out tail) supplies the first contexts.
        """
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        h = 0
        if history is not None and self.order:
            tail = np.asarray(history, dtype=np.int32)[-self.order:]
            h = int(tail.shape[0])
            ids = np.concatenate([tail, ids])
        if ids.shape[0] and (ids.min() < 0 or ids.max() >= self.V):
            raise ConfigError(f"token ids must lie in [0, {self.V})")
        p = self.unigram_probs()[ids]
        for j in range(1, self.order + 1):
            if ids.shape[0] <= j:
                break
            full = _ngram_keys(ids, j + 1, self.V)  # key of ids[t-j .. t] at index t - j
            if self.dense[j - 1] is not None:
                table, ctx_table = self.dense[j - 1]
                c, cc = table[full], ctx_table[full // self.V]
            else:
                c = _lookup(self.keys[j - 1], self.counts[j - 1], full)
                cc = _lookup(self.ctx_keys[j - 1], self.ctx_counts[j - 1], full // self.V)
            e = self.eps[j]
            p[j:] = (c + e * p[j:]) / (cc + e)
        return np.log(p[h:])

    def perplexity(self, ids: np.ndarray, history: np.ndarray | None = None) -> float:
        """exp(mean negative log-likelihood) of ``ids``, summed chunk by chunk (bounded memory)."""
        n = np.asarray(ids).shape[0]
        if n == 0:
            raise CorpusError("cannot compute a perplexity on zero tokens")
        total = 0.0
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            before = history if start == 0 else ids[max(0, start - self.order):start]
            total += float(self.log_probs(ids[start:stop], before).sum())
        return float(np.exp(-total / n))

    def sample(
        self, length: int, seed: int | None = None, prompt: Sequence[int] = (), allow_unk: bool = False
    ) -> np.ndarray:
        """``length`` new token ids continuing ``prompt`` (or from scratch), drawn from P̂."""
        if length < 0:
            raise ConfigError(f"length must be >= 0; got {length}")
        rng = np.random.default_rng(seed)
        ctx = [int(t) for t in prompt]
        out = np.empty(int(length), dtype=np.int32)
        for i in range(int(length)):
            p = self.distribution(ctx[-self.order:] if self.order else ())
            if not allow_unk and self.V > 1:
                p = p.copy()
                p[0] = 0.0
                p /= p.sum()
            tok = int(rng.choice(self.V, p=p))
            out[i] = tok
            ctx.append(tok)
        return out


def _count(ids: np.ndarray, n: int, V: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(sorted distinct n-gram keys, their counts, the dense table or None) of ``ids``, in one
    streaming pass."""
    from seqtui.kernels.ngram import count_dense

    if V ** n <= DENSE_LIMIT:
        table = np.zeros(V ** n, dtype=np.int64)
        count_dense(table, ids, n, V)
        keys = np.flatnonzero(table).astype(np.int64)
        return keys, table[keys], table
    keys = np.zeros(0, np.int64)
    counts = np.zeros(0, np.int64)
    N = ids.shape[0]
    for start in range(0, max(N - n + 1, 0), CHUNK):
        stop = min(start + CHUNK + n - 1, N)  # n-grams starting in [start, start + CHUNK)
        k, c = np.unique(_ngram_keys(ids[start:stop], n, V), return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, k]), return_inverse=True)
        merged = np.zeros(keys.shape[0], np.int64)
        np.add.at(merged, inverse, np.concatenate([counts, c]))
        counts = merged
    return keys, counts, None


def baseline_perplexity(
    train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int, order: int = 3, eps: float | Sequence[float] = 1.0
) -> float:
    """Validation perplexity of a model fitted on ``train_ids`` (val continues train)."""
    model = NGramModel.fit(train_ids, vocab_size, order, eps)
    return model.perplexity(val_ids, history=train_ids)
