"""Word tokens: the Numba kernel path equals the Python reference path (vocabulary, counts, ids)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtui.data import text as text_mod
from seqtui.data.text import TextConfig, load_dataset, tokenize
from seqtui.errors import CorpusError
from seqtui.kernels.text import new_word_table, scan_words

# every code point str.split() splits on, per str.isspace()
SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
_ALPHABET = list("abcAB xyZ.,'-\n\t\r") + SPACES + ["é", "ß", "Ω", "😀", "\ufeff", "\u200b", "\x7f", "\x1b"]


def _both(tmp_path, content: bytes, monkeypatch=None, **cfg):
    """(vocab, counts, ids) from both paths over the same file."""
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    config = TextConfig(corpus=str(path), tokens="word", **cfg)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    got = []
    for fn in (text_mod._encode_words, text_mod._encode_words_reference):
        vocab, counts, tmp, in_memory = fn(data, text_mod._Where(path, 0), config,
                                           tmp_path / f"{fn.__name__}.npy", None)
        got.append((vocab, counts, np.load(tmp) if in_memory is None else in_memory))
    return got


def _kernel_words(s: str, d2l: bool, cut: int | None = None) -> list[str]:
    """Words of ``s`` by scan_words, optionally fed in two chunks cut at byte ``cut``."""
    data = np.frombuffer(s.encode("utf-8"), dtype=np.uint8)
    tables = new_word_table()
    state = np.zeros(2, np.int64)
    idx = []
    pos = 0
    bounds = [len(data)] if cut is None else [min(cut, len(data)), len(data)]
    for end in bounds:
        piece = data[pos:end]
        out = np.empty(piece.shape[0] // 2 + 2, np.int32)
        used, written, status, _, *tables = scan_words(piece, end == len(data), d2l, False, *tables, state, out)
        assert status == 0
        idx += out[:written].tolist()
        pos += used
    assert pos == len(data)
    _, words_, arena = tables
    nd = int(state[0])
    words = [arena[a: a + b].tobytes().decode() for a, b in words_[: 2 * nd].reshape(-1, 2).tolist()]
    assert words == text_mod._word_list(*tables, state)
    return [words[i] for i in idx]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(_ALPHABET), max_size=60), st.integers(0, 40))
def test_kernel_words_equal_str_split_and_d2l_letters(s, cut):
    raw = tokenize(s, "word", "raw")  # str.split(), but U+001E is a word (SPACES holds it)
    assert _kernel_words(s, False) == raw
    assert _kernel_words(s, True) == tokenize(s, "word", "d2l")
    assert _kernel_words(s, False, cut) == raw  # a cut anywhere, even inside a character
    assert _kernel_words(s, True, cut) == tokenize(s, "word", "d2l")


_PIECES = ["a", "Bc", "word", "eightchr", "ninechars", "x" * 15, "Y" * 63, "z" * 64, "q" * 70, " ", " ",
           "  ", "\n", "\t", "\x1c", "\x1f", "\x7f", ".", "é", "\u00a0", "\u3000", "\x1e", "\x1e\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=120).map("".join), st.integers(0, 400))
def test_long_texts_through_the_block_path(s, cut):
    """Mostly-ASCII texts long enough for the 64-byte block path, words of every length."""
    raw = tokenize(s, "word", "raw")
    assert _kernel_words(s, False) == raw
    assert _kernel_words(s, True) == tokenize(s, "word", "d2l")
    assert _kernel_words(s, False, cut) == raw
    assert _kernel_words(s, True, cut) == tokenize(s, "word", "d2l")


def test_each_unicode_space_splits():
    s = "".join(f"w{i}{sp}" for i, sp in enumerate(SPACES)) + "end\u180e\ufeffx"  # not spaces
    assert _kernel_words(s, False) == tokenize(s, "word", "raw")
    assert len(s.split()) == len(SPACES) + 1
    assert tokenize(s, "word", "raw").count("\x1e") == 1  # the document separator: a word


def test_a_document_separator_is_a_word_of_its_own():
    """A folder corpus ends each document with U+001E: word models see it (and can stop at it)."""
    s = "end of one\x1e\nthe next\x1eglued\x1e\x1e"
    want = ["end", "of", "one", "\x1e", "the", "next", "\x1e", "glued", "\x1e", "\x1e"]
    assert tokenize(s, "word", "raw") == want == _kernel_words(s, False)
    d2l = ["end", "of", "one", "\x1e", "the", "next", "\x1e", "glued", "\x1e", "\x1e"]
    assert tokenize(s.upper(), "word", "d2l") == d2l == _kernel_words(s.upper(), True)
    long = ("word " * 30 + "\x1e\n") * 5  # through the 64-byte block path
    assert _kernel_words(long, False) == tokenize(long, "word", "raw")
    assert tokenize(long, "word", "raw").count("\x1e") == 5


def _varied_text(seed: int, n_words: int = 3000) -> str:
    rng = np.random.default_rng(seed)
    vocab = ["the", "The", "THE", "and", "<unk>", "naïve", "café", "Ωmega", "x", "état", "😀", "co-op", "don't",
             "a\u200bb", "1984", "ok!", "ok"] + [f"w{i}" for i in range(400)]
    seps = [" ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u2003", "\u3000", "\x1c", "\x85", "\u2028", " , ", "\x1e\n"]
    out = []
    for _ in range(n_words):
        out.append(vocab[int(rng.zipf(1.3)) % len(vocab)])
        out.append(seps[int(rng.integers(0, len(seps)))])
    return "".join(out)


@pytest.mark.parametrize("preset", ["raw", "d2l"])
@pytest.mark.parametrize("min_freq", [0, 3])
def test_kernel_path_equals_python_path(tmp_path, preset, min_freq):
    content = _varied_text(1).encode("utf-8")
    (v1, c1, ids1), (v2, c2, ids2) = _both(tmp_path, content, preprocess=preset, min_freq=min_freq)
    assert v1 == v2 and v1.itos == v2.itos
    assert np.array_equal(c1, c2)
    assert ids1.dtype == np.int32 and np.array_equal(ids1, ids2)


def test_chunked_kernel_path_equals_python_path(tmp_path, monkeypatch):
    """Small chunks: words straddle chunk ends, the hash table and arena grow many times."""
    monkeypatch.setattr(text_mod, "CHUNK_BYTES", 97)
    content = _varied_text(2, 20000).encode("utf-8") + b" " + b"y" * 500 + b" tail"  # a word > chunk
    for preset in ("raw", "d2l"):
        (v1, c1, ids1), (v2, c2, ids2) = _both(tmp_path, content, preprocess=preset)
        assert v1.itos == v2.itos and np.array_equal(c1, c2) and np.array_equal(ids1, ids2)


def test_many_distinct_ascii_words(tmp_path):
    """Pure ASCII (the block path) with tables growing from inside it; some words > 8 bytes."""
    rng = np.random.default_rng(5)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABC"))
    words = ["".join(rng.choice(letters, int(rng.integers(1, 14)))) for _ in range(12000)]
    seps = np.array([" ", " ", " ", "\n", "  ", ", ", "\t"])
    text = "".join(w + str(rng.choice(seps)) for w in words + words[:3000])
    for preset in ("raw", "d2l"):
        (v1, c1, ids1), (v2, c2, ids2) = _both(tmp_path, text.encode(), preprocess=preset)
        assert v1.itos == v2.itos and np.array_equal(c1, c2) and np.array_equal(ids1, ids2)


def test_replace_mode_and_bad_utf8(tmp_path):
    content = b"ab\xffcd ef \xe2\x82 gh\xc3\xa9 \xed\xa0\x80z ab\xfecd"
    for preset in ("raw", "d2l"):
        (v1, c1, ids1), (v2, c2, ids2) = _both(tmp_path, content, preprocess=preset, errors="replace")
        assert v1.itos == v2.itos and np.array_equal(ids1, ids2)
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine words \xff here")
    with pytest.raises(CorpusError, match="11"):
        load_dataset(TextConfig(corpus=str(path), tokens="word"))


def test_load_dataset_words_uses_the_kernel(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("one two two three three three\u00a0four\n", encoding="utf-8")
    ds = load_dataset(TextConfig(corpus=str(path), tokens="word"))
    assert ds.vocab.itos == ["<unk>", "three", "two", "one", "four"]
    assert ds.ids.tolist() == [3, 2, 2, 1, 1, 1, 4]
    assert ds.counts.tolist() == [0, 3, 2, 1, 1]
