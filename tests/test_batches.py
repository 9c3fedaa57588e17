"""Samplers: property tests in corpus coordinates (ids = arange, so a token is its position)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtui.data.batches import make_epoch, min_tokens
from seqtui.errors import ConfigError, CorpusError

shapes = st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(0, 200), st.integers(0, 2**31), st.integers(0, 5))


def _epoch(sampling, B, T, extra, seed, epoch):
    n = min_tokens(sampling, B, T) + extra
    ids = np.arange(n, dtype=np.int32)
    return ids, make_epoch(ids, sampling, B, T, seed, epoch)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["random", "sequential"]), shapes)
def test_shapes_and_targets_shifted_by_one(sampling, shape):
    B, T, extra, seed, epoch = shape
    ids, e = _epoch(sampling, B, T, extra, seed, epoch)
    assert e.num_batches >= 1
    assert 0 <= e.offset < T
    for i in range(e.num_batches):
        X, Y = e.batch(i)
        assert X.shape == Y.shape == (B, T)
        assert X.dtype == Y.dtype == np.int32
        assert X.flags.c_contiguous and Y.flags.c_contiguous
        # corpus coordinates: row r covers starts[r] .. starts[r]+T-1, targets one token later
        np.testing.assert_array_equal(X, e.starts(i)[:, None] + np.arange(T))
        np.testing.assert_array_equal(Y, X + 1)
        assert Y.max() < len(ids)


@settings(max_examples=80, deadline=None)
@given(shapes)
def test_random_sampling_uses_each_subsequence_at_most_once(shape):
    B, T, extra, seed, epoch = shape
    ids, e = _epoch("random", B, T, extra, seed, epoch)
    starts = np.concatenate([e.starts(i) for i in range(e.num_batches)])
    assert len(np.unique(starts)) == len(starts) == e.num_batches * B
    assert np.all((starts - e.offset) % T == 0)  # non-overlapping, aligned after dropping d
    num_subseqs = (len(ids) - e.offset - 1) // T
    assert e.num_batches == num_subseqs // B  # only the incomplete remainder is dropped


@settings(max_examples=80, deadline=None)
@given(shapes)
def test_sequential_rows_continue_across_batches(shape):
    B, T, extra, seed, epoch = shape
    ids, e = _epoch("sequential", B, T, extra, seed, epoch)
    prev = None
    for i in range(e.num_batches):
        X, _ = e.batch(i)
        if prev is not None:
            np.testing.assert_array_equal(X[:, 0], prev[:, -1] + 1)
        prev = X
    row_len = (len(ids) - e.offset - 1) // B
    assert e.num_batches == row_len // T


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["random", "sequential"]), shapes)
def test_same_seed_and_epoch_give_the_same_batches(sampling, shape):
    B, T, extra, seed, epoch = shape
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, size=min_tokens(sampling, B, T) + extra).astype(np.int32)
    a = make_epoch(ids, sampling, B, T, seed, epoch)
    b = make_epoch(ids.copy(), sampling, B, T, seed, epoch)
    assert a.num_batches == b.num_batches
    for i in reversed(range(a.num_batches)):  # random access: order of requests does not matter
        for x, y in zip(a.batch(i), b.batch(i)):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_epochs_and_seeds_vary_and_offset_never_reaches_num_steps(sampling):
    T = 5
    ids = np.arange(1000, dtype=np.int32)
    offsets = {make_epoch(ids, sampling, 4, T, s, 0).offset for s in range(200)}
    assert offsets == set(range(T))  # d uniform in [0, T): never T (d2l's off-by-one)
    firsts = {tuple(make_epoch(ids, sampling, 4, T, 0, ep).starts(0)) for ep in range(20)}
    assert len(firsts) > 1


@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_min_tokens_is_one_window_per_row_plus_one(sampling):
    B, T = 3, 4
    need = min_tokens(sampling, B, T)
    assert need == B * T + 1
    ids = np.arange(need, dtype=np.int32)
    for seed in range(20):
        assert make_epoch(ids, sampling, B, T, seed, 0).num_batches == 1
    with pytest.raises(CorpusError, match=f"needs at least {need}"):
        make_epoch(ids[:-1], sampling, B, T, 0, 0)


@pytest.mark.parametrize("B,T", [(0, 5), (5, 0), (-1, 5), (2, -3), (2.5, 3)])
def test_nonpositive_sizes_are_config_errors(B, T):
    with pytest.raises(ConfigError, match="positive integer"):
        make_epoch(np.arange(100, dtype=np.int32), "random", B, T, 0, 0)
    with pytest.raises(ConfigError):
        min_tokens("sequential", B, T)


def test_unknown_sampling_and_bad_index():
    ids = np.arange(100, dtype=np.int32)
    with pytest.raises(ConfigError):
        make_epoch(ids, "shuffled", 2, 3, 0, 0)
    e = make_epoch(ids, "random", 2, 3, 0, 0)
    with pytest.raises(IndexError):
        e.batch(e.num_batches)


def test_memmapped_and_int64_ids_work(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(500, dtype=np.int32))
    mm = np.load(path, mmap_mode="c")
    e = make_epoch(mm, "sequential", 4, 7, 1, 2)
    X, Y = e.batch(0)
    np.testing.assert_array_equal(Y, X + 1)
    e64 = make_epoch(np.arange(500, dtype=np.int64), "sequential", 4, 7, 1, 2)
    np.testing.assert_array_equal(e64.batch(0)[0], X)
