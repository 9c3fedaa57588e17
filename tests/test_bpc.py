"""Bits per character in `eval --json` and `ngram --json` (issue 14): exact, <unk> charged its
spelling with a character unigram fitted on the training text."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from _fixtures_engine import run_main, tiny_corpus

TINY = ["--hidden", "8", "--num-steps", "8", "--batch-size", "4", "--sample-every", "0", "-q"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("bpc-corpus"))


def _train(name, corpus, *extra):
    from seqtui.cli import main

    try:
        main(["train", str(corpus), "--name", name, "--epochs", "1", "--seed", "2", *TINY, *extra])
    except SystemExit as exc:  # pragma: no cover
        assert exc.code in (0, None)


@pytest.fixture(scope="module")
def char_run(corpus):
    _train("bpc-char", corpus)
    return "bpc-char"


@pytest.fixture(scope="module")
def word_run(corpus):
    _train("bpc-word", corpus, "--tokens", "word")
    return "bpc-word"


def test_eval_char_bpc_is_bits_per_token(char_run, capsys):
    code, out, err = run_main(["eval", char_run, "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["bits_per_char"] == pytest.approx(r["bits_per_token"], rel=1e-12)
    code, out, _ = run_main(["eval", char_run], capsys)
    assert "bits per char" in out


def test_eval_word_bpc_counts_spaces_and_charges_unknown_words(word_run, corpus, capsys, tmp_path):
    code, out, err = run_main(["eval", word_run, "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    # word tokens: the characters of the evaluated words plus one space between them
    assert 0 < r["bits_per_char"] < r["bits_per_token"]
    other = tmp_path / "other.txt"
    other.write_text("the time machine zyzzyva of brass and crystal qqqq " * 8)
    code, out, err = run_main(["eval", word_run, "--corpus", str(other), "--json"], capsys)
    assert code == 0, err
    r2 = json.loads(out)
    assert r2["unk_fraction"] > 0 and math.isfinite(r2["bits_per_char"])
    # by hand: the NLL without the spelling charge gives a lower number
    from seqtui.cli.evaluate import predicted_positions, spelling_model
    from seqtui.data.stats import bits_per_char
    from seqtui.data.text import tokenize

    toks = tokenize(other.read_text(), "word")
    from seqtui.engine.runs import get_run

    cfg = get_run(word_run).config
    pos = predicted_positions(len(toks), cfg["num_steps"], cfg["batch_size"], cfg["seed"])
    sub = [toks[i] for i in pos]
    chars = len(" ".join(sub))
    plain = bits_per_char(r2["loss"] * r2["tokens"], chars)
    train_words = tokenize(corpus.read_text(), "word")
    n_train = len(train_words) - round(len(train_words) * cfg["val_fraction"])
    spell = spelling_model(train_words[:n_train], False)
    charge = sum(spell.nats(w) for w in sub if w in ("zyzzyva", "qqqq"))
    assert r2["bits_per_char"] == pytest.approx(plain + charge / math.log(2) / chars, rel=1e-9)


def test_predicted_positions_match_the_evaluated_tokens():
    from seqtui.cli.evaluate import predicted_positions
    from seqtui.engine.evaluate import eval_batch_size

    for n, T, B in ((100, 8, 4), (37, 8, 4), (9, 8, 4), (2, 8, 4)):
        pos = predicted_positions(n, T, B)
        assert len(set(pos.tolist())) == len(pos) and pos.min() >= 1 and pos.max() < n
        t = min(T, n - 1)
        assert len(pos) % t == 0 and eval_batch_size(n, B, t) * t <= len(pos)


def test_ngram_json_reports_bits_per_char(corpus, capsys):
    code, out, err = run_main(["ngram", str(corpus), "--json", "--length", "0"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["bits_per_char"] == pytest.approx(math.log2(r["val_ppl"]), rel=1e-9)
    code, out, _ = run_main(["ngram", str(corpus), "--tokens", "word", "--json", "--length", "0"], capsys)
    r = json.loads(out)
    assert 0 < r["bits_per_char"] < math.log2(r["val_ppl"])


def test_ngram_word_bpc_with_unknown_words_by_hand(corpus, capsys):
    from seqtui.cli.evaluate import spelling_model
    from seqtui.data.text import tokenize

    code, out, err = run_main(["ngram", str(corpus), "--tokens", "word", "--min-freq", "30", "--json",
                               "--length", "0", "--order", "0"], capsys)
    assert code == 0, err
    r = json.loads(out)
    words = tokenize(corpus.read_text(), "word")
    n_train = r["train_tokens"]
    val = words[n_train:]
    spell = spelling_model(words[:n_train], False)
    nll = math.log(r["val_ppl"]) * len(val)
    from collections import Counter

    counts = Counter(words)
    charge = sum(spell.nats(w) for w in val if counts[w] < 30)
    assert charge > 0
    assert r["bits_per_char"] == pytest.approx((nll + charge) / math.log(2) / len(" ".join(val)), rel=1e-9)
    assert "spelling" in run_main(["ngram", "--help"], capsys)[1]
    assert "spelling" in run_main(["eval", "--help"], capsys)[1]
