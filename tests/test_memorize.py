"""Memorization meter: suffix array/LCP vs a naive reference, scoring vs brute force, the cache."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from seqtui.data.memorize import MemoCacheWarning, MemoIndex, copied_spans, token_offsets
from seqtui.data.text import TextConfig, load_dataset
from seqtui.errors import ConfigError
from seqtui.kernels.suffix import build_index, match_sample, spot_check


def naive_index(ids):
    n = len(ids)
    seq = list(ids)
    sa = sorted(range(n), key=lambda i: seq[i:])  # a prefix sorts before its extensions
    lcp = [0] * n
    for j in range(1, n):
        a, b = sa[j - 1], sa[j]
        h = 0
        while a + h < n and b + h < n and seq[a + h] == seq[b + h]:
            h += 1
        lcp[j] = h
    return sa, lcp


def brute_match(text, pat):
    """For each i: the longest L with pat[i:i+L] in text (no negative tokens), its positions."""
    t = list(text)
    out = []
    for i in range(len(pat)):
        L = 0
        while i + L < len(pat) and pat[i + L] >= 0:
            piece = list(pat[i: i + L + 1])
            if not any(t[p: p + L + 1] == piece for p in range(len(t) - L)):
                break
            L += 1
        occ = [p for p in range(len(t) - L + 1) if L and t[p: p + L] == list(pat[i: i + L])]
        out.append((L, occ))
    return out


def _cases():
    rng = np.random.default_rng(7)
    yield np.array([3], np.int32)
    yield np.array([0], np.int32)
    yield np.zeros(17, np.int32)  # all equal
    yield np.array([1, 2] * 9, np.int32)
    yield np.array([2, 1, 1, 2, 1, 1, 2, 1], np.int32)
    for _ in range(120):
        n = int(rng.integers(1, 48))
        yield rng.integers(0, int(rng.integers(1, 5)), n).astype(np.int32)
    yield rng.integers(0, 200, 300).astype(np.int32)
    # long tied groups: the sorting path for big groups in the Larsson–Sadakane passes
    yield np.zeros(200, np.int32)
    yield np.tile(np.array([0, 1, 1], np.int32), 90)
    block = rng.integers(0, 2, 60).astype(np.int32)
    yield np.concatenate([block, rng.integers(0, 2, 20), block, block, rng.integers(0, 3, 50)]).astype(np.int32)


@pytest.mark.parametrize("ids", list(_cases()), ids=lambda a: f"n{len(a)}")
def test_suffix_and_lcp_arrays_equal_naive_reference(ids):
    sa, lcp = build_index(ids)
    ref_sa, ref_lcp = naive_index(ids)
    assert sa.dtype == np.int32 and lcp.dtype == np.int32
    assert sa.tolist() == ref_sa
    assert lcp.tolist() == ref_lcp
    probes = np.arange(len(ids), dtype=np.int64)
    assert spot_check(ids, sa, lcp, probes)


def test_matching_statistics_equal_brute_force():
    rng = np.random.default_rng(3)
    for trial in range(150):
        n = int(rng.integers(1, 60))
        V = int(rng.integers(1, 5))
        text = rng.integers(0, V, n).astype(np.int32)
        if trial % 3 == 0:  # a sample that copies a piece of the text
            a = int(rng.integers(0, n))
            pat = np.concatenate([rng.integers(0, V + 1, 3), text[a: a + 12], rng.integers(0, V, 4)])
        else:
            pat = rng.integers(-1, V + 1, int(rng.integers(0, 30)))
        pat = pat.astype(np.int32)
        sa, lcp = build_index(text)
        lens, where, best, count = match_sample(text, sa, lcp, pat, 1000)
        ref = brute_match(text, pat)
        assert lens.tolist() == [L for L, _ in ref]
        for i, (L, occ) in enumerate(ref):
            if L:
                w = int(where[i])
                assert text[w: w + L].tolist() == pat[i: i + L].tolist()
            else:
                assert where[i] == -1
        if len(pat) and max(lens) > 0:
            assert best == int(np.argmax(lens))
            assert count == len(ref[best][1])
            assert where[best] == ref[best][1][0]  # earliest occurrence


def test_copied_spans_merge_overlaps_only():
    lens = np.array([3, 2, 1, 0, 2, 1, 2, 1, 0], np.int32)
    assert copied_spans(lens, 2) == [(0, 3), (4, 6), (6, 8)]
    assert copied_spans(lens, 3) == [(0, 3)]
    assert copied_spans(lens, 4) == []


def _index(text, **kw):
    from seqtui.data.vocab import Vocab

    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    return MemoIndex.from_ids(ids, vocab=vocab, newline_id=vocab.stoi.get("\n"), **kw), vocab


def test_score_figures_spans_and_lines():
    train = "the cat sat on the mat\nthe dog ate my homework\nall is well\n"
    index, vocab = _index(train)
    sample = "xx the dog ate my homework!! qq"
    s = index.score(sample, threshold=8)
    assert s.longest_text == "the dog ate my homework"  # " the": the training text has "\nthe"
    assert s.longest_len == len(s.longest_text) and s.longest_line == 2
    assert s.longest_sample_start == sample.index(s.longest_text)
    assert train[s.longest_at: s.longest_at + s.longest_len] == s.longest_text
    assert s.longest_line == 1 + train[: s.longest_at].count("\n")
    assert s.longest_count == 1
    assert s.spans == [(s.longest_sample_start, s.longest_sample_start + s.longest_len)]
    assert s.char_spans == s.spans and s.text == sample
    assert s.covered_fraction == pytest.approx(s.longest_len / len(sample))
    d = s.to_json()
    assert json.loads(json.dumps(d)) == d and d["longest_len"] == s.longest_len
    # the same sample as ids: spans over vocab.decode(ids), <unk> (here "x", "!", "q") matches nothing
    ids = vocab.encode(sample)
    s2 = index.score(ids, threshold=8)
    assert s2.spans == s.spans and s2.longest_len == s.longest_len
    assert s2.text[s2.char_spans[0][0]: s2.char_spans[0][1]] == s.longest_text
    # nothing copied
    s3 = index.score("qqqq", threshold=2)
    assert (s3.longest_len, s3.longest_at, s3.spans, s3.covered_fraction) == (0, -1, [], 0.0)
    assert index.score("", threshold=2).length == 0
    with pytest.raises(ConfigError):
        index.score("abc", threshold=0)


def test_word_token_offsets():
    starts, ends, text = token_offsets("a  bc\u00a0d\u2003ee", "word", "raw")
    assert [text[a:b] for a, b in zip(starts, ends)] == "a  bc\u00a0d\u2003ee".split()
    starts, ends, text = token_offsets("Hi, there-you", "word", "d2l")
    assert [text[a:b] for a, b in zip(starts, ends)] == ["Hi", "there", "you"]


def _is_mapped(a) -> bool:
    while a is not None and not isinstance(a, np.memmap):
        a = getattr(a, "base", None)
    return a is not None


@pytest.fixture()
def dataset(tmp_path):
    p = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "eps"]
    p.write_text("\n".join(" ".join(rng.choice(words, 6)) for _ in range(60)) + "\n", encoding="utf-8")
    return load_dataset(TextConfig(corpus=str(p)))


def test_cache_build_load_and_corrupt_rebuild(dataset):
    n_train = len(dataset.ids) - 50
    built = MemoIndex.build_or_load(dataset, n_train)
    assert not built.loaded and len(built) == n_train
    sa_path, lcp_path, meta_path = MemoIndex._files(built.path)
    assert sa_path.is_file() and lcp_path.is_file() and meta_path.is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean load says nothing
        again = MemoIndex.build_or_load(dataset, n_train)
    assert again.loaded and _is_mapped(again.sa) and _is_mapped(again.lcp) and not _is_mapped(built.sa)
    assert np.array_equal(again.sa, built.sa) and np.array_equal(again.lcp, built.lcp)
    sample = dataset.ids[10:40]
    assert again.score(sample).to_json() == built.score(sample).to_json()
    assert again.score(sample).longest_len == 30
    # another training length is another index
    other = MemoIndex.build_or_load(dataset, n_train - 1)
    assert other.path != built.path
    # truncated file: rebuilt with a notice
    sa_path.write_bytes(sa_path.read_bytes()[:-7])
    notes = []
    fixed = MemoIndex.build_or_load(dataset, n_train, notice=notes.append)
    assert not fixed.loaded and len(notes) == 1 and "rebuilding" in notes[0]
    assert np.array_equal(fixed.sa, built.sa)
    assert MemoIndex.build_or_load(dataset, n_train).loaded
    # same size, wrong contents: caught by the spot check
    bad = np.load(sa_path)
    np.save(sa_path, bad[::-1].copy())
    with pytest.warns(MemoCacheWarning, match="do not match"):
        MemoIndex.build_or_load(dataset, n_train)
    # garbage JSON
    meta_path.write_text("{not json")
    with pytest.warns(MemoCacheWarning):
        assert not MemoIndex.build_or_load(dataset, n_train).loaded
    assert MemoIndex.build_or_load(dataset, n_train).loaded
    with pytest.raises(ConfigError):
        MemoIndex.build_or_load(dataset, 0)


def test_bpe_spans_are_character_offsets_of_the_decoded_text():
    """BPE tokens' display strings are byte-level symbols ("Ġ", "Ã©"): the highlighted spans
    count the decoded text's characters instead, and never split a multi-byte character."""
    from seqtui.data.bpe import learn_bpe
    from seqtui.data.memorize import bpe_offsets

    train = "café au lait, s'il vous plaît — 東京タワー\n" * 30
    vocab = learn_bpe(train, 280, cache=False)
    ids = vocab.encode(train)
    index = MemoIndex.from_ids(ids, vocab=vocab, tokens="bpe", newline_id=None)
    sample = "zz café au lait, s'il vous plaît — 東京 yy"
    s = index.score(sample, threshold=4)
    assert s.text == sample and s.char_spans
    for (a, b) in s.char_spans:
        assert 0 <= a < b <= len(sample)
    longest = max(s.char_spans, key=lambda ab: ab[1] - ab[0])
    assert "café au lait, s'il vous plaît" in sample[longest[0]: longest[1]]
    by_ids = index.score(vocab.encode(sample), threshold=4)  # as generation scores a sample
    assert (by_ids.text, by_ids.char_spans) == (s.text, s.char_spans)
    # a token split inside a character: byte tokens of "é" (2 bytes) and "東" (3 bytes)
    byte_ids = [b + 1 for b in "é東x".encode()]  # id 0 is reserved: byte b is id b + 1
    starts, ends, text = bpe_offsets(vocab, np.array(byte_ids))
    assert text == "é東x"
    assert list(starts) == [0, 0, 1, 1, 1, 2] and list(ends) == [1, 1, 2, 2, 2, 3]
    # invalid UTF-8 (a lone continuation byte) is replaced as decode does, offsets stay in range
    starts, ends, text = bpe_offsets(vocab, np.array([0x80 + 1, ord("a") + 1]))
    assert text == "\ufffda" and list(starts) == [0, 1] and list(ends) == [1, 2]
