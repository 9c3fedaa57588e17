"""d2l's two minibatch samplers, deterministic given (seed, epoch) and randomly accessible.

*random*: drop the first d tokens (d uniform in [0, T)), cut the rest into non-overlapping
length-T subsequences, shuffle them, group B at a time; the incomplete remainder is dropped.
*sequential*: offset d uniform in [0, T) (d2l draws from [0, T] inclusive, an off-by-one we do
not copy), then the stream is split into B rows so row r of batch i+1 continues row r of
batch i and the hidden state can be carried across batches.

For a corpus shorter than (B + 1)·T the offset range shrinks to [0, N - B·T) so that any corpus
of at least ``min_tokens`` = B·T + 1 tokens yields one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqtui.errors import ConfigError, CorpusError

from seqtui.data.choices import SAMPLINGS


def _check(sampling: str, batch_size: int, num_steps: int) -> None:
    if sampling not in SAMPLINGS:
        raise ConfigError(f"sampling must be 'random' or 'sequential'; got {sampling!r}")
    for name, v in (("batch_size", batch_size), ("num_steps", num_steps)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ConfigError(f"{name} must be a positive integer; got {v!r}")


def min_tokens(sampling: str, batch_size: int, num_steps: int) -> int:
    """The shortest token stream that yields one batch: B windows of T plus one target token."""
    _check(sampling, batch_size, num_steps)
    return int(batch_size) * int(num_steps) + 1


@dataclass
class EpochBatches:
    """One epoch's batches. ``batch(i)`` rebuilds batch i from (seed, epoch) alone."""

    ids: np.ndarray
    sampling: str
    batch_size: int
    num_steps: int
    seed: int
    epoch: int
    offset: int  # tokens dropped at the start (d)
    num_batches: int
    _order: np.ndarray | None = None  # random: shuffled subsequence indices (B * num_batches,)
    _row_len: int = 0  # sequential: tokens per row

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        for i in range(self.num_batches):
            yield self.batch(i)

    def starts(self, i: int) -> np.ndarray:
        """Corpus position of the first token of each row of batch i (int64, (B,))."""
        self._check_index(i)
        B, T = self.batch_size, self.num_steps
        if self.sampling == "random":
            assert self._order is not None
            return self.offset + self._order[i * B : (i + 1) * B] * T
        return self.offset + np.arange(B, dtype=np.int64) * self._row_len + i * T

    def batch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(X, Y): int32 (B, T), C-contiguous; Y[r, t] is the token after X[r, t] in the corpus."""
        from seqtui.kernels.windows import gather_windows, sequential_windows

        self._check_index(i)
        B, T = self.batch_size, self.num_steps
        X = np.empty((B, T), dtype=np.int32)
        Y = np.empty((B, T), dtype=np.int32)
        if self.sampling == "random":
            gather_windows(self.ids, self.starts(i), T, X, Y)
        else:
            sequential_windows(self.ids, self.offset, self._row_len, i * T, T, X, Y)
        return X, Y

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.num_batches:
            raise IndexError(f"batch {i} out of range (epoch has {self.num_batches})")


def _as_ids(ids: np.ndarray) -> np.ndarray:
    """A 1-D int32 ndarray (a memmap becomes a plain view, so kernels see one type)."""
    a = np.asarray(ids)
    if a.ndim != 1:
        raise ConfigError(f"token ids must be 1-D; got shape {a.shape}")
    if a.dtype != np.int32:
        a = a.astype(np.int32)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a


def make_epoch(
    ids: np.ndarray, sampling: str, batch_size: int, num_steps: int, seed: int, epoch: int
) -> EpochBatches:
    """The batches of one epoch; CorpusError if ``ids`` is shorter than :func:`min_tokens`."""
    _check(sampling, batch_size, num_steps)
    B, T = int(batch_size), int(num_steps)
    ids = _as_ids(ids)
    n = int(ids.shape[0])
    need = min_tokens(sampling, B, T)
    if n < need:
        raise CorpusError(
            f"corpus has {n:,} tokens; {sampling} sampling with batch {B} x {T} steps needs at least {need:,}"
        )
    rng = np.random.default_rng((int(seed), int(epoch)))
    offset = int(rng.integers(0, min(T, n - B * T)))  # d in [0, T), shrunk for tiny corpora
    if sampling == "random":
        num_subseqs = (n - offset - 1) // T
        num_batches = num_subseqs // B
        order = rng.permutation(num_subseqs)[: num_batches * B].astype(np.int64)
        return EpochBatches(ids, sampling, B, T, int(seed), int(epoch), offset, num_batches, _order=order)
    row_len = (n - offset - 1) // B
    num_batches = row_len // T
    return EpochBatches(ids, sampling, B, T, int(seed), int(epoch), offset, num_batches, _row_len=row_len)
