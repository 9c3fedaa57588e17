"""A small model learns real text: Python's own pydoc topic help (stdlib ``pydoc_data``).

Float32, the production kernels, Adam with clipping, sequential windows with the state carried
over (detached), a few hundred steps (a few seconds). The loss must fall well below both its
starting value (≈ log V) and the unigram entropy of the text, which no model without context
can beat.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqtui.models.bptt import carry_scale_for
from seqtui.models.charmodel import CharModel, ModelConfig
from seqtui.models.optim import Adam, SGD, clip_grad_norm
from seqtui.data.vocab import Vocab


def _text() -> str:
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))[:60_000]


def _train(cell, steps, opt, B=16, T=32, H=64, bptt="full"):
    text = _text()
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    model = CharModel(ModelConfig(cell, len(vocab), H, 1), seed=0)
    # sequential partitioning: B parallel streams, each window continues the previous one
    per = len(ids) // B
    streams = ids[: per * B].reshape(B, per)
    state = model.init_state(B)
    rng = np.random.default_rng(0)
    losses = []
    for step in range(steps):
        s = (step * T) % (per - T - 1)
        if s < T:
            state = model.init_state(B)
        X, Y = streams[:, s : s + T], streams[:, s + 1 : s + T + 1]
        stats = model.loss_and_grad(X, Y, state, carry_scale_for(bptt, T, k=8, p=0.5, rng=rng))
        assert stats.finite
        state = stats.state
        clip_grad_norm(model.grads, 1.0)
        opt.step(model.params, model.grads)
        losses.append(stats.loss)
    counts = np.bincount(ids, minlength=len(vocab))
    p = counts[counts > 0] / counts.sum()
    unigram_entropy = float(-(p * np.log(p)).sum())
    return np.array(losses), unigram_entropy, math.log(len(vocab))


@pytest.mark.parametrize("cell,opt", [("gru", "adam"), ("rnn", "sgd")])
def test_loss_decreases_on_real_text(cell, opt):
    optimizer = Adam(lr=0.01) if opt == "adam" else SGD(lr=1.0)
    losses, unigram, uniform = _train(cell, 300, optimizer)
    first, last = losses[0], losses[-20:].mean()
    assert abs(first - uniform) < 0.1 * uniform  # starts near log V
    assert last < unigram - 0.4, (last, unigram)  # uses context
    assert last < 0.65 * first, (first, last)
