"""Byte-level BPE: round trips, kernels against their Python twins, learning against a recount per
merge, the held-out tail, the merge cache, corrupt merges, the streaming decoder, bounds, bits per
character, and (when installed) agreement with Hugging Face tokenizers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqtui.data import bpe
from seqtui.data.bpe import BPEVocab, learn_bpe, learn_reference, pretokenize
from seqtui.data.stats import CharUnigram, bits_per_char, text_bits_per_char
from seqtui.data.text import TextConfig, encode_prompt, load_dataset, split_train_val, tokenize
from seqtui.data.vocab import Vocab
from seqtui.errors import CheckpointError, ConfigError

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n"
    "First Citizen:\nFirst, you know Caius Marcius is chief enemy to the people.\n\n"
    "All:\nWe know't, we know't.\n\nFirst Citizen:\nLet us kill him, and we'll have corn at our own price.\n"
    "Is't a verdict? 1:1 In the beginning — café, naïve, 中文字 😀 12,345.\t  tabs   and  spaces \n"
) * 3


@pytest.fixture(scope="module")
def vocab() -> BPEVocab:
    return learn_bpe(TEXT, 400, cache=False)


def kernel_encode(v: BPEVocab, text: str) -> list[int]:
    return v.encode_bytes(np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)).tolist()


# -- round trips and twins --------------------------------------------------------------------------
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_decode_encode_round_trips_any_text(vocab, text):
    ids = vocab.encode(text)
    assert ids.dtype == np.int32
    assert vocab.decode(ids) == text
    assert vocab.decode(kernel_encode(vocab, text)) == text
    assert 0 not in ids.tolist()  # never <unk>


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list("ab 'stre\n\t!1é中\u00a0\u3000😀")) | st.characters(), max_size=60))
def test_kernel_encoding_and_pretokenizer_match_python_twins(vocab, text):
    assert kernel_encode(vocab, text) == vocab.encode(text).tolist()
    from seqtui.kernels.bpe import chunk_bounds

    raw = text.encode("utf-8", "surrogatepass")
    ends = chunk_bounds(bpe._as_bytes(raw), bpe.class_table()).tolist()
    assert [raw[a:b] for a, b in zip([0, *ends[:-1]], ends)] == [c.encode("utf-8", "surrogatepass") for c in pretokenize(text)]


def test_lone_surrogates_and_nul_round_trip(vocab):
    for text in ("\ud800x", "a\udfff b", "\x00\x00 z", "é" * 2000 + "\ud83d"):
        assert vocab.decode(vocab.encode(text)) == text
        assert vocab.decode(kernel_encode(vocab, text)) == text


def test_pretokenizer_by_hand():
    assert pretokenize("Hello  world's\n\n  x 12ab !!'s \u00a0y") == [
        "Hello", " ", " world", "'s", "\n\n ", " x", " 12", "ab", " !!'", "s", " ", "\u00a0", "y"]
    assert pretokenize("don't I'll 'twas") == ["don", "'t", " I", "'ll", " '", "twas"]
    assert pretokenize("end  ") == ["end", "  "]


def test_long_text_uses_the_kernel_and_agrees(vocab):
    text = TEXT * 3
    assert len(text) > bpe._PY_ENCODE_LIMIT
    assert vocab.encode(text).tolist() == bpe._encode_py(text, vocab._ranks, vocab.merges)
    assert vocab.decode(vocab.encode(text)) == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list("FirstCizenpeakvd中文")), min_size=49, max_size=400))
def test_long_chunks_merge_by_heap_like_the_twin(vocab, word):
    from seqtui.kernels.bpe import LONG_CHUNK

    assert len(word.encode()) > LONG_CHUNK  # one pre-token, merged by the heap path
    assert kernel_encode(vocab, word) == bpe._encode_py(word, vocab._ranks, vocab.merges)


def test_tokens_of_are_display_strings(vocab):
    toks = vocab.tokens_of("Speak, speak.")
    assert "".join(toks).replace("Ġ", " ") == "Speak, speak."
    assert vocab.encode(toks).tolist() == vocab.encode("Speak, speak.").tolist()
    assert vocab.kind == "bpe" and len(vocab) == 401 and vocab.bpe_vocab == 400


# -- learning ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text,n", [
    (TEXT, 420), ("aaaa aaaa aaa aaab abab", 270), ("ab ab ab ba ba ba", 300), ("xyz", 256),
    ("the the the then then they", 280),
])
def test_incremental_learning_equals_a_recount_per_merge(text, n):
    ref = learn_reference(text, n, min_count=1)
    got = [tuple(m) for m in bpe.learn_merges_raw(bpe._as_bytes(text), n + 1, 1)[0].tolist()]
    assert got == ref


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aab c\n'st")), max_size=80), st.integers(256, 320),
       st.integers(1, 3))
def test_incremental_learning_equals_recount_property(text, n, min_count):
    ref = learn_reference(text, n, min_count=min_count)
    got = [tuple(m) for m in bpe.learn_merges_raw(bpe._as_bytes(text), n + 1, min_count)[0].tolist()]
    assert got == ref


def test_ties_go_to_the_smaller_pair_in_the_trainers_order():
    # "ab" and "yz" both occur twice; tokenizers' ids put '!'..'~' in byte order: (a, b) first
    v = learn_bpe("yz ab yz ab", 257, cache=False)
    assert v.itos[257] == "ab"
    # a space is Ġ (after every printable byte): ("a","b") beats ("Ġ","a") at equal counts
    v = learn_bpe("ab ab", 257, cache=False)
    assert v.itos[257] == "ab"


def test_bpe_vocab_bounds():
    with pytest.raises(ConfigError, match="must be ≥ 256 \\(the byte alphabet\\)"):
        learn_bpe(TEXT, 255)
    with pytest.raises(ConfigError, match="≥ 256"):
        TextConfig("x", tokens="bpe", bpe_vocab=100).validate()
    with pytest.raises(ConfigError, match="≥ 256"):
        TextConfig("x", tokens="bpe").validate()
    with pytest.raises(ConfigError) as exc:
        learn_bpe("abc abc", 10_000, cache=False)
    msg = str(exc.value)
    assert "merging stopped at" in msg and "use bpe_vocab <= 258" in msg and "\n" not in msg
    assert len(learn_bpe("abc abc", 258, cache=False)) == 259
    assert len(learn_bpe("", 256, cache=False)) == 257  # the bytes alone


def test_merge_cache_is_keyed_by_text_and_settings():
    info: dict = {}
    text = TEXT + "cache test"
    a = learn_bpe(text, 300, info=info)
    assert info["cache"] == "miss" and info["path"].is_file()
    b = learn_bpe(text, 300, info=info)
    assert info["cache"] == "hit" and a == b
    c = learn_bpe(text, 280, info=info)  # a smaller vocabulary: a prefix of the cached merges
    assert info["cache"] == "hit" and c == learn_bpe(text, 280, cache=False)
    learn_bpe(text, 320, info=info)  # larger than cached: learned again
    assert info["cache"] == "miss"
    learn_bpe(text, 300, min_count=3, info=info)
    assert info["cache"] == "miss"
    learn_bpe(text + "!", 300, info=info)
    assert info["cache"] == "miss"


# -- datasets -------------------------------------------------------------------------------------
def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_held_out_tail_does_not_influence_merges(tmp_path):
    head = TEXT * 2
    tail1 = ("zq xv zq xv kj kj " * 20)[:300]  # under val_fraction of the text: the cut is in the head
    tail2 = ("the First Citizen speaks " * 20)[:300]
    f = 0.15
    ds1 = load_dataset(TextConfig(_write(tmp_path, "a.txt", head + tail1), tokens="bpe", bpe_vocab=330, val_fraction=f))
    ds2 = load_dataset(TextConfig(_write(tmp_path, "b.txt", head + tail2), tokens="bpe", bpe_vocab=330, val_fraction=f))
    assert ds1.vocab == ds2.vocab
    cut = ds1.bpe_train_bytes
    assert cut == ds2.bpe_train_bytes and cut <= len(head.encode())
    assert ds1.vocab == learn_bpe(head.encode()[:cut], 330, cache=False)
    # no held-out byte was seen: the held-out tokens start exactly at the cut
    for ds in (ds1, ds2):
        train, val = ds.split(f)
        assert int(ds.vocab.token_lengths[train].sum()) == cut
        assert len(val) / len(ds) == pytest.approx(f, abs=0.1)  # a byte share: unseen text takes more tokens
        assert ds.vocab.decode(ds.ids) == (head + (tail1 if ds is ds1 else tail2))
    with pytest.raises(ConfigError, match="val_fraction=0.2"):
        ds1.split(0.2)


def test_dataset_cache_and_prompts(tmp_path):
    path = _write(tmp_path, "c.txt", TEXT)
    cfg = TextConfig(path, tokens="bpe", bpe_vocab=300, val_fraction=0.1)
    ds = load_dataset(cfg)
    assert isinstance(ds.vocab, BPEVocab) and len(ds.vocab) == 301
    assert ds.counts.sum() == len(ds) and ds.counts[0] == 0
    again = load_dataset(cfg)
    assert again.cache_path == ds.cache_path and np.array_equal(again.ids, ds.ids)
    other = load_dataset(TextConfig(path, tokens="bpe", bpe_vocab=310, val_fraction=0.1))
    assert other.cache_path != ds.cache_path and other.fingerprint != ds.fingerprint
    assert encode_prompt(ds.vocab, "Speak, speak.", "bpe").tolist() == ds.vocab.encode("Speak, speak.").tolist()
    with pytest.raises(ConfigError, match="encode_prompt"):
        tokenize("x", "bpe")
    short = load_dataset(TextConfig(path, tokens="bpe", bpe_vocab=300, val_fraction=0.1, max_tokens=200))
    assert len(short) == 200
    train, val = short.split(0.1)
    assert int(short.vocab.token_lengths[train].sum()) == short.bpe_train_bytes
    assert 5 <= len(val) <= 40
    chars = load_dataset(TextConfig(path))
    assert [len(a) for a in chars.split(0.1)] == [len(a) for a in split_train_val(chars.ids, 0.1)]


# -- persistence -----------------------------------------------------------------------------
def test_json_round_trip(vocab):
    d = json.loads(json.dumps(vocab.to_json()))
    back = Vocab.from_json(d)
    assert isinstance(back, BPEVocab) and back == vocab and back.itos == vocab.itos
    assert back.encode(TEXT).tolist() == vocab.encode(TEXT).tolist()


@pytest.mark.parametrize("corrupt,match", [
    (lambda d: d["merges"].__setitem__(0, [0, 5]), "out-of-range"),
    (lambda d: d["merges"].__setitem__(0, [-3, 5]), "out-of-range"),
    (lambda d: d["merges"].__setitem__(0, [1, 9999]), "not made yet"),
    (lambda d: d["merges"].__setitem__(0, [258, 2]), "not made yet"),
    (lambda d: d["merges"].__setitem__(3, [1, 2, 3]), "pair of integer ids"),
    (lambda d: d["merges"].__setitem__(3, ["a", "b"]), "pair of integer ids"),
    (lambda d: d["merges"].pop(), "merges make"),
    (lambda d: d["itos"].__setitem__(300, "Ġzzz"), "its merges spell"),
    (lambda d: d.__setitem__("merges", "oops"), "must be lists"),
    (lambda d: d.__setitem__("itos", []), "merges make"),
    (lambda d: d.__setitem__("itos", d["itos"][1:] + ["x"]), "must be '<unk>'|its merges spell"),
    (lambda d: d.__setitem__("version", 7), "version"),
])
def test_corrupt_merges_are_rejected(vocab, corrupt, match):
    d = json.loads(json.dumps(vocab.to_json()))
    corrupt(d)
    with pytest.raises(CheckpointError, match=match) as exc:
        Vocab.from_json(d)
    assert "\n" not in str(exc.value)


# -- streaming decoder -----------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_stream_decoder_never_splits_a_character(text):
    v = learn_bpe("ab ab", 256, cache=False)  # bytes only: every multi-byte character is cut
    dec = v.stream_decoder()
    pieces = [dec.feed(i) for i in v.encode(text).tolist()]
    pieces.append(dec.flush())
    assert "".join(pieces) == text
    done = ""
    for p in pieces:
        done += p
        assert text.startswith(done)  # whole characters only, never a U+FFFD stand-in
    assert dec.pending() == b""


def test_stream_decoder_holds_back_and_flushes():
    v = learn_bpe("ab ab", 256, cache=False)
    dec = v.stream_decoder()
    ids = v.encode("😀").tolist()
    assert len(ids) == 4
    assert [dec.feed(i) for i in ids[:3]] == ["", "", ""] and dec.pending() == "😀".encode()[:3]
    assert dec.feed(ids[3]) == "😀"
    assert [dec.feed(v.itos[i]) for i in ids] == ["", "", "", "😀"]  # display strings work too
    dec.feed(ids[0])
    assert dec.flush() == "\ufffd"  # a cut character at the very end


# -- bits per character ----------------------------------------------------------------------
def test_bits_per_char():
    assert bits_per_char(math.log(2) * 10, 5) == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        bits_per_char(1.0, 0)


def test_text_bits_per_char_bpe_char_and_word(vocab):
    text = "Speak, speak. café"
    ids = vocab.encode(text)
    nll = 3.0 * len(ids)
    assert text_bits_per_char(nll, ids, vocab) == pytest.approx(nll / math.log(2) / len(text))
    chars = Vocab.build("abc")
    toks = list("abca")
    assert text_bits_per_char(4.0, chars.encode(toks), chars, toks) == pytest.approx(4 / math.log(2) / 4)
    # no <unk>: the ids alone give the length, no token list needed (a 30M-token held-out part)
    assert text_bits_per_char(4.0, chars.encode(toks), chars) == pytest.approx(4 / math.log(2) / 4)
    known = Vocab.build(["the", "cat", "sat"], is_char=False)
    assert text_bits_per_char(2.0, known.encode(["the", "cat"]), known) == pytest.approx(2 / math.log(2) / 7)
    words = Vocab.build(["the", "cat", "the"], is_char=False)
    toks = ["the", "dog", "cat"]
    spell = CharUnigram.fit("the cat the dog")
    ids = words.encode(toks)
    assert ids.tolist()[1] == 0
    extra = spell.nats("dog")  # d, o, g and the space that ends it
    assert extra == pytest.approx(sum(math.log(15 + 9 + 1) - math.log(spell.counts.get(c, 0) + 1) for c in "dog "))
    assert text_bits_per_char(5.0, ids, words, toks, spell) == pytest.approx((5.0 + extra) / math.log(2) / 11)
    with pytest.raises(ConfigError, match="spelling"):
        text_bits_per_char(5.0, ids, words, toks)


# -- Hugging Face tokenizers -------------------------------------------------------------------
def test_same_merges_and_encodings_as_tokenizers():
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    for n, min_count in ((400, 2), (330, 1)):
        tok = tokenizers.Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        trainer = trainers.BpeTrainer(vocab_size=n, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      min_frequency=min_count, show_progress=False)
        tok.train_from_iterator([TEXT], trainer)
        hf = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in json.loads(tok.to_str())["model"]["merges"]]
        v = learn_bpe(TEXT, n, min_count=min_count, cache=False)
        assert [(v.itos[a], v.itos[b]) for a, b, _ in v.merges.tolist()] == hf
        for line in TEXT.splitlines(keepends=True)[:20] + [TEXT]:
            assert v.tokens_of(line) == tok.encode(line).tokens
