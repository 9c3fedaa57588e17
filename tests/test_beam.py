"""Beam search: width 1 is greedy, a wide beam is exact, wider beams never lose to greedy here."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seqtui.data.vocab import Vocab
from seqtui.errors import ConfigError
from seqtui.kernels.beam import beam_step
from seqtui.models.beam import beam_search
from seqtui.models.charmodel import CharModel, ModelConfig
from seqtui.models.generate import Generator

TEXT = "the quick brown fox jumps over the lazy dog"
VOCAB = Vocab.build(TEXT)


def _model(cell="rnn", V=len(VOCAB), H=16, layers=1, seed=0, scale=1.0) -> CharModel:
    m = CharModel(ModelConfig(cell, V, H, layers), seed=seed, parts=1)
    m.params *= scale  # sharper distributions: more disagreement between greedy and beam
    return m


def _logprob(model, prompt_ids, ids) -> float:
    """log P(ids | prompt) by the training forward pass (an independent path)."""
    seq = np.concatenate([np.asarray(prompt_ids, np.int32), np.asarray(ids, np.int32)])
    if len(prompt_ids) == 0:
        raise ValueError("needs a prompt")
    logits, _ = model.logits(seq[None, :-1])
    z = logits[0].astype(np.float64)
    lp = z - z.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    P = len(prompt_ids)
    return float(sum(lp[P - 1 + t, ids[t]] for t in range(len(ids))))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_width_one_is_greedy(cell):
    model = _model(cell, layers=2, seed=3, scale=3.0)
    prompt = VOCAB.encode("the ")
    ids, lp = beam_search(model, VOCAB, prompt, 30, 1)
    gen = Generator(model, VOCAB)
    gen.prime("the ")
    greedy = list(gen.sample(30, temperature=0))
    assert [VOCAB.itos[i] for i in ids.tolist()] == greedy
    assert lp == pytest.approx(_logprob(model, prompt, ids), abs=1e-3)
    ids2, lp2 = beam_search(model, VOCAB, "the ", 30, 1)  # a text prompt primes like Generator.prime
    assert ids2.tolist() == ids.tolist() and lp2 == lp


@pytest.mark.parametrize("seed", range(6))
def test_wider_beams_score_at_least_greedy(seed):
    model = _model("gru", seed=seed, scale=4.0)
    prompt = VOCAB.encode("a")
    greedy_ids, greedy = beam_search(model, VOCAB, prompt, 12, 1)
    for width in (2, 4, 8):
        ids, lp = beam_search(model, VOCAB, prompt, 12, width)
        assert lp >= greedy - 1e-12
        assert lp == pytest.approx(_logprob(model, prompt, ids), abs=1e-3)
        plain_ids, plain = beam_search(model, VOCAB, prompt, 12, width, keep_greedy=False)
        assert lp == max(plain, greedy)
        assert plain == pytest.approx(_logprob(model, prompt, plain_ids), abs=1e-3)
    if seed == 5:  # the reason for keep_greedy: a plain beam of 2 loses the greedy path here
        assert beam_search(model, VOCAB, prompt, 12, 2, keep_greedy=False)[1] < greedy


def test_wide_beam_is_exhaustive_search():
    V, n = 4, 4
    vocab = Vocab(["<unk>", "a", "b", "c"])
    for seed in range(3):
        model = _model("lstm", V=V, H=8, seed=seed, scale=3.0)
        prompt = np.array([1, 2], np.int32)
        ids, lp = beam_search(model, vocab, prompt, n, V ** (n - 1), keep_greedy=False)  # exhaustive
        best = max(itertools.product(range(V), repeat=n), key=lambda s: _logprob(model, prompt, s))
        assert lp == pytest.approx(_logprob(model, prompt, best), abs=1e-4)
        assert ids.tolist() == list(best)


def test_bad_arguments_and_edges():
    model = _model()
    for w in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="beam width"):
            beam_search(model, VOCAB, [1], 5, w)
    with pytest.raises(ConfigError, match="beam length"):
        beam_search(model, VOCAB, [1], -1, 2)
    with pytest.raises(ConfigError, match="prompt ids"):
        beam_search(model, VOCAB, [len(VOCAB)], 3, 2)
    ids, lp = beam_search(model, VOCAB, [1], 0, 3)
    assert ids.shape == (0,) and lp == 0.0
    ids, lp = beam_search(model, VOCAB, [], 5, 100)  # empty prompt: from the zero state; W > V
    assert ids.shape == (5,) and lp <= 0.0


def test_beam_step_ranks_and_reorders():
    logits = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], np.float32))
    scores = np.array([np.log(0.6), np.log(0.4)])
    states = np.arange(2 * 2, dtype=np.float32).reshape(2, 1, 1, 1, 2)
    parents = np.zeros(2, np.int64)
    tokens = np.zeros(2, np.int32)
    new = np.zeros(2)
    k = beam_step(logits, scores, 2, states, np.empty_like(states), parents, tokens, new)
    # candidates: 0.30 (0,0), 0.18 (0,1), 0.12 (0,2), 0.04, 0.04, 0.32 (1,2)
    assert k == 2 and parents.tolist() == [1, 0] and tokens.tolist() == [2, 0]
    assert np.exp(new).tolist() == pytest.approx([0.32, 0.30], rel=1e-5)
    assert states[:, 0, 0, 0].tolist() == [[2.0, 3.0], [0.0, 1.0]]
