"""Vocabulary: ordering rule, min_freq, reserved tokens, encode/decode and JSON round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtui.errors import CheckpointError, ConfigError
from seqtui.data.vocab import UNK, Vocab


def test_order_is_frequency_then_first_occurrence():
    v = Vocab.build("abbcccdd")
    # c:3, then b and d tie at 2 (b seen first), then a:1
    assert v.itos == [UNK, "c", "b", "d", "a"]
    assert v.is_char
    assert v.stoi["b"] == 2


def test_ties_follow_first_occurrence_not_alphabet():
    assert Vocab.build("zyxzyx").itos == [UNK, "z", "y", "x"]


def test_reserved_tokens_follow_unk():
    v = Vocab.build(["b", "a", "a"], reserved=["<pad>", "<eos>"], is_char=False)
    assert v.itos == [UNK, "<pad>", "<eos>", "a", "b"]
    assert not v.is_char


def test_min_freq_maps_rare_tokens_to_unk():
    v = Vocab.build("aaabbc", min_freq=2)
    assert v.itos == [UNK, "a", "b"]
    assert v.encode("abcx").tolist() == [1, 2, 0, 0]


def test_min_freq_negative_is_a_config_error():
    with pytest.raises(ConfigError):
        Vocab.build("abc", min_freq=-1)


def test_encode_returns_int32_and_decode_inverts():
    v = Vocab.build("hello world")
    ids = v.encode("hello")
    assert ids.dtype == np.int32
    assert v.decode(ids) == "hello"


def test_word_vocab_joins_with_spaces():
    v = Vocab.build("the cat the dog".split(), is_char=False)
    assert v.itos[:2] == [UNK, "the"]
    assert v.decode(v.encode("the dog  the")) == "the dog the"


def test_decode_rejects_ids_outside_the_vocabulary():
    v = Vocab.build("ab")
    with pytest.raises(ConfigError, match="outside"):
        v.decode([0, 7])


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_char_round_trip(text):
    v = Vocab.build(text)
    assert v.decode(v.encode(text)) == text
    assert len(v) == len(set(text)) + 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=5), min_size=1, max_size=50))
def test_word_round_trip(words):
    v = Vocab.build(words, is_char=False)
    assert v.decode(v.encode(words)).split() == words


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=100), st.lists(st.sampled_from(["<pad>", "<eos>", "<bos>"]), unique=True))
def test_json_round_trip(text, reserved):
    v = Vocab.build(text, reserved=reserved, is_char=True)
    w = Vocab.from_json(json.loads(json.dumps(v.to_json())))
    assert w == v and w.itos == v.itos and w.reserved == v.reserved


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"version": 1, "kind": "char"},
        {"version": 1, "kind": "glyph", "itos": [UNK]},
        {"version": 1, "kind": "char", "itos": ["a", UNK]},
        {"version": 1, "kind": "char", "itos": [UNK, "a", "a"]},
        {"version": 1, "kind": "char", "itos": "abc"},
        {"version": 9, "kind": "char", "itos": [UNK]},
    ],
)
def test_from_json_rejects_malformed_input(bad):
    with pytest.raises(CheckpointError):
        Vocab.from_json(bad)


def test_long_strings_use_the_kernel_and_agree_with_python():
    rng = np.random.default_rng(0)
    alphabet = list("abc xyz\n") + ["é", "😀", "中"]
    text = "".join(rng.choice(alphabet, size=70_000))
    v = Vocab.build(text[:1000] + "q")  # some chars of the long text may be unknown
    fast = v.encode(text)
    slow = np.array([v.stoi.get(c, 0) for c in text], dtype=np.int32)
    assert len(text) > 65_536
    assert fast.dtype == np.int32
    np.testing.assert_array_equal(fast, slow)


def test_kind_and_bpe_json_dispatch():
    from seqtui.data.bpe import BPEVocab, learn_bpe

    assert Vocab.build("ab").kind == "char" and Vocab.build(["a"], is_char=False).kind == "word"
    v = learn_bpe("ab ab ab", 257, cache=False)
    back = Vocab.from_json(json.loads(json.dumps(v.to_json())))
    assert isinstance(back, BPEVocab) and back.kind == "bpe" and back == v
    with pytest.raises(CheckpointError, match="'char', 'word' or 'bpe'"):
        Vocab.from_json({"version": 1, "kind": "piece", "itos": ["<unk>"]})
