"""Text pipeline: the UTF-8/d2l kernels against Python, chunked encoding, cache, bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtui.data import text as text_mod
from seqtui.errors import ConfigError, CorpusError
from seqtui.kernels.text import MAX_CODEPOINT, count_chars, count_unigrams, encode_text_bytes, ngram_keys
from seqtui.data.text import TextConfig, load_dataset, preprocess_text, split_train_val, tokenize
from seqtui.data.vocab import Vocab

IDENTITY = np.arange(0x110000, dtype=np.int32)  # code point -> itself

# Bytes that exercise every branch of the decoder: ASCII, continuation, lead bytes, overlongs.
_TRICKY = st.lists(
    st.sampled_from([0x41, 0x0A, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0,
                     0xE1, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF]),
    max_size=24,
).map(bytes)


def _kernel_decode(data: bytes, d2l: bool = False) -> str:
    ids = encode_text_bytes(np.frombuffer(data, dtype=np.uint8), IDENTITY, d2l=d2l)
    return "".join(map(chr, ids.tolist()))


@settings(max_examples=300, deadline=None)
@given(st.one_of(_TRICKY, st.binary(max_size=40)))
def test_kernel_replaces_bad_utf8_exactly_like_python(data):
    data = data.replace(b"\x00", b"")  # NUL is reported separately (binary file)
    assert _kernel_decode(data) == data.decode("utf-8", "replace")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abXYZ -.,!'\n\r\t9") + ["é", "ß", "😀"]), max_size=80))
def test_kernel_d2l_matches_python_reference(s):
    assert _kernel_decode(s.encode("utf-8"), d2l=True) == preprocess_text(s, "d2l")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aab  c\n.XY") + ["é", "😀"]), max_size=120), st.integers(1, 9))
def test_count_kernel_counts_and_orders_like_counter(s, cut):
    """Fed in two chunks (cut anywhere, even inside a character): counts and first appearances."""
    data = np.frombuffer(s.encode("utf-8"), dtype=np.uint8)
    counts = np.zeros(MAX_CODEPOINT, dtype=np.int64)
    seen = np.zeros(MAX_CODEPOINT, dtype=np.int32)
    state = np.zeros(2, dtype=np.int64)
    cut = min(cut, len(data))
    used, _, status, _ = count_chars(data[:cut], False, False, state, counts, seen)
    count_chars(data[used:], True, False, state, counts, seen)
    ref = Counter(s)
    assert [chr(c) for c in seen[: state[1]]] == list(ref)  # Counter keeps first-appearance order
    assert {chr(c): int(counts[c]) for c in seen[: state[1]]} == dict(ref)
    assert state[0] == len(s) and status == 0


def test_d2l_preset_by_hand():
    s = "The Time-Machine!\n  by H. G. Wells [1898]\r\n\nI\n"
    # per line: non-letters -> one space, strip, lower; lines joined with nothing between
    assert preprocess_text(s, "d2l") == "the time machineby h g wellsi"
    assert tokenize(s, "word", "d2l") == ["the", "time", "machine", "by", "h", "g", "wells", "i"]
    assert tokenize(s, "word", "raw") == ["The", "Time-Machine!", "by", "H.", "G.", "Wells", "[1898]", "I"]


def test_unknown_preset_or_token_kind_is_a_config_error():
    with pytest.raises(ConfigError):
        preprocess_text("x", "lower")
    with pytest.raises(ConfigError):
        tokenize("x", "bytes")
    with pytest.raises(ConfigError):
        TextConfig("x", min_freq=-1).validate()
    with pytest.raises(ConfigError):
        TextConfig("x", max_tokens=0).validate()


SAMPLE = "Hello, wörld! 😀 Ünïcode\nline two\r\nthree -- 3 four\n" * 7


@pytest.fixture
def sample_file(tmp_path):
    p = tmp_path / "sample.txt"
    p.write_text(SAMPLE, encoding="utf-8", newline="")
    return p


@pytest.mark.parametrize("preset", ["raw", "d2l"])
@pytest.mark.parametrize("tokens", ["char", "word"])
def test_dataset_matches_python_reference(sample_file, preset, tokens):
    ds = load_dataset(TextConfig(str(sample_file), preprocess=preset, tokens=tokens))
    ref_tokens = tokenize(SAMPLE, tokens, preset)
    ref_vocab = Vocab.build(ref_tokens, is_char=tokens == "char")
    assert ds.vocab == ref_vocab
    np.testing.assert_array_equal(np.asarray(ds.ids), ref_vocab.encode(ref_tokens))
    assert ds.ids.dtype == np.int32
    assert ds.counts.sum() == len(ref_tokens)
    assert ds.counts[ds.vocab.stoi[ref_vocab.itos[1]]] == max(ref_tokens.count(t) for t in set(ref_tokens))


@pytest.mark.parametrize("preset", ["raw", "d2l"])
@pytest.mark.parametrize("tokens", ["char", "word"])
def test_chunked_encoding_matches_reference(tmp_path, monkeypatch, tokens, preset):
    p = tmp_path / "chunked.txt"
    p.write_text(SAMPLE, encoding="utf-8", newline="")
    monkeypatch.setattr(text_mod, "CHUNK_BYTES", 5)  # cuts through 2- and 4-byte characters and lines
    ds = load_dataset(TextConfig(str(p), tokens=tokens, preprocess=preset))
    ref_tokens = tokenize(SAMPLE, tokens, preset)
    ref = Vocab.build(ref_tokens, is_char=tokens == "char")
    assert ds.vocab == ref
    np.testing.assert_array_equal(np.asarray(ds.ids), ref.encode(ref_tokens))


def test_cache_is_memory_mapped_and_keyed_by_content_and_settings(sample_file):
    a = load_dataset(TextConfig(str(sample_file)))
    b = load_dataset(TextConfig(str(sample_file)))
    assert isinstance(b.ids, np.memmap) and b.cache_path == a.cache_path
    assert a.fingerprint == b.fingerprint
    c = load_dataset(TextConfig(str(sample_file), preprocess="d2l"))
    assert c.fingerprint != a.fingerprint and c.cache_path != a.cache_path
    d = load_dataset(TextConfig(str(sample_file), max_tokens=10))
    assert len(d) == 10 and d.fingerprint != a.fingerprint and d.cache_path == a.cache_path
    sample_file.write_text(SAMPLE + "zzz", encoding="utf-8", newline="")
    e = load_dataset(TextConfig(str(sample_file)))
    assert e.fingerprint != a.fingerprint and len(e) == len(a) + 3 and "z" in e.vocab


def test_min_freq_and_unk_counts(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("aaaabbbc", encoding="utf-8")
    ds = load_dataset(TextConfig(str(p), min_freq=2))
    assert ds.vocab.itos == ["<unk>", "a", "b"]
    assert ds.counts.tolist() == [1, 4, 3]
    assert np.asarray(ds.ids).tolist() == [1, 1, 1, 1, 2, 2, 2, 0]


def test_empty_file(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_bytes(b"")
    with pytest.raises(CorpusError, match="empty"):
        load_dataset(TextConfig(str(p)))


@pytest.mark.parametrize("tokens", ["char", "word"])
def test_nul_byte_means_binary(tmp_path, tokens):
    p = tmp_path / "bin.dat"
    p.write_bytes(b"abc def\x00ghi")
    with pytest.raises(CorpusError, match=r"binary \(NUL byte at offset 7\)"):
        load_dataset(TextConfig(str(p), tokens=tokens))


@pytest.mark.parametrize("tokens", ["char", "word"])
def test_invalid_utf8_says_where_and_replace_recovers(tmp_path, tokens):
    p = tmp_path / "latin1.txt"
    p.write_bytes("first line\nsecond caf".encode() + b"\xe9 au lait\n")
    with pytest.raises(CorpusError, match=r"byte 21 \(line 2, column 11\).*--errors replace"):
        load_dataset(TextConfig(str(p), tokens=tokens))
    ds = load_dataset(TextConfig(str(p), tokens=tokens, errors="replace"))
    assert "\ufffd" in ds.vocab.decode(ds.ids)


def test_d2l_with_no_letters_has_no_tokens(tmp_path):
    p = tmp_path / "digits.txt"
    p.write_text("123 456\n789\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no tokens"):
        load_dataset(TextConfig(str(p), preprocess="d2l"))


def test_split_train_val_holds_out_the_tail():
    ids = np.arange(100, dtype=np.int32)
    tr, va = split_train_val(ids, 0.1)
    assert tr.tolist() == list(range(90)) and va.tolist() == list(range(90, 100))
    tr, va = split_train_val(ids, 0.0)
    assert len(tr) == 100 and len(va) == 0
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ConfigError):
            split_train_val(ids, bad)
    with pytest.raises(CorpusError):
        split_train_val(ids[:1], 0.9)


def test_counting_kernels_against_numpy():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 7, size=500).astype(np.int32)
    np.testing.assert_array_equal(count_unigrams(ids, 7), np.bincount(ids, minlength=7))
    keys = ngram_keys(ids, 3, 7)
    expect = ids[:-2].astype(np.int64) * 49 + ids[1:-1] * 7 + ids[2:]
    np.testing.assert_array_equal(keys, expect)
    assert ngram_keys(ids[:2], 3, 7).shape == (0,)


def test_bpe_settings_are_validated(tmp_path):
    from seqtui.data.text import TextConfig

    with pytest.raises(ConfigError, match="≥ 256"):
        TextConfig("x", tokens="bpe", bpe_vocab=255).validate()
    with pytest.raises(ConfigError, match="min_freq does not apply"):
        TextConfig("x", tokens="bpe", bpe_vocab=300, min_freq=2).validate()
    with pytest.raises(ConfigError, match="val_fraction"):
        TextConfig("x", tokens="bpe", bpe_vocab=300, val_fraction=1.5).validate()
    TextConfig("x", tokens="bpe", bpe_vocab=256, val_fraction=0.1).validate()
    TextConfig("x", bpe_vocab=None).validate()  # char tokens ignore the BPE fields


# -- issue 13 (hardening): caches heal, a read-only cache works in memory, BOM -------------------
def test_a_broken_cache_entry_is_removed_and_rebuilt(tmp_path, capsys):
    from seqtui.data.text import TextConfig, load_dataset

    p = tmp_path / "c.txt"
    p.write_text("abcabc hello " * 50)
    first = load_dataset(TextConfig(str(p)))
    npy = first.cache_path
    expected = np.array(first.ids)
    del first
    npy.write_bytes(npy.read_bytes()[:100])
    again = load_dataset(TextConfig(str(p)))
    assert "failed to load" in capsys.readouterr().err
    assert np.array_equal(np.array(again.ids), expected)
    npy.write_bytes(b"garbage")
    assert np.array_equal(np.array(load_dataset(TextConfig(str(p))).ids), expected)


def test_without_a_writable_cache_tokens_are_built_in_memory(tmp_path, monkeypatch, capsys):
    from seqtui.data.text import TextConfig, load_dataset

    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("SEQTUI_CACHE_DIR", str(tmp_path / "file" / "cache"))
    p = tmp_path / "c.txt"
    p.write_text("abc def " * 40)
    for tokens in ("char", "word"):
        ds = load_dataset(TextConfig(str(p), tokens=tokens))
        assert ds.cache_path is None and len(ds) > 0
    assert "working in memory" in capsys.readouterr().err


def test_a_bom_never_becomes_a_token(tmp_path):
    from seqtui.data.text import TextConfig, load_dataset

    plain, bom = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_bytes(b"abc abc\n" * 10)
    bom.write_bytes(b"\xef\xbb\xbf" + b"abc abc\n" * 10)
    a, b = load_dataset(TextConfig(str(plain))), load_dataset(TextConfig(str(bom)))
    assert "\ufeff" not in b.vocab.itos and a.vocab == b.vocab
    assert np.array_equal(np.array(a.ids), np.array(b.ids))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xef\xbb\xbfab\xffcd")
    with pytest.raises(CorpusError, match="byte 5"):  # offsets count the BOM: they stay true
        load_dataset(TextConfig(str(bad)))
