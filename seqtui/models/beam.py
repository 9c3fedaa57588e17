"""Beam search: the most likely continuation of a prompt under a CharModel, with its log-probability.

The prompt primes one stream exactly as :class:`~seqtui.models.generate.Generator` does (zero
state, then every prompt token fed); then each step extends the ``width`` best hypotheses by
every token, keeps the ``width`` best of the width·V candidates (``seqtui.kernels.beam``), and
advances each survivor's state by its token with the generator's own step kernel
(``seqtui.kernels.sample.feed``, batch 1 per hypothesis). All hypotheses have the same length, so
scores are plain sums of natural-log probabilities. ``width = 1`` is greedy decoding
(temperature 0), token for token.

A beam can prune the greedy path and end less likely than greedy decoding (a random GRU in the
tests does at width 2). So by default a greedy stream runs alongside (1/width more work) and is
returned when it scores higher: ``--beam W`` never gives a less likely continuation than
temperature 0. ``keep_greedy=False`` gives the plain beam.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seqtui.errors import ConfigError
from seqtui.models.charmodel import CharModel
from seqtui.models.generate import Generator


def beam_search(model: CharModel, vocab, prompt_ids: Sequence[int] | np.ndarray | str, length: int,
                width: int, keep_greedy: bool = True) -> tuple[np.ndarray, float]:
    """(ids, logprob): the ``length`` tokens (int32) after the prompt found by a beam of ``width``
    hypotheses, and their total log-probability (natural log) given the prompt.

    ``prompt_ids`` are token ids (or a string, primed with ``Generator.prime``). ConfigError on
    width < 1, length < 0, or ids outside the vocabulary. ``keep_greedy``: return the greedy
    continuation instead if it is more likely than the beam's best.
    """
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ConfigError(f"beam width must be an integer >= 1, got {width!r}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ConfigError(f"beam length must be an integer >= 0, got {length!r}")
    from seqtui.kernels import sample

    gen = Generator(model, vocab)  # checks that the vocabulary fits the model
    V = model.cfg.vocab_size
    args = gen.kernel_args()  # the sampling kernels' state handling, shared
    if isinstance(prompt_ids, str):
        gen.prime(prompt_ids)
    else:
        ids = np.asarray(prompt_ids)
        if ids.size and (ids.ndim != 1 or ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= V):
            raise ConfigError(f"prompt ids must be a 1-D array of ids in 0..{V - 1}")
        if ids.size:
            sample.feed(gen.state, gen.logits, ids.astype(np.int32), *args)
    ids, score = _beam(gen.state, gen.logits, int(length), int(width), args)
    if keep_greedy and width > 1:
        greedy, greedy_score = _beam(gen.state, gen.logits, int(length), 1, args)
        if greedy_score > score:
            return greedy, greedy_score
    return ids, score


def _beam(state: np.ndarray, first_logits: np.ndarray, length: int, W: int, args) -> tuple[np.ndarray, float]:
    """The beam from one primed stream (``state`` (S, L, 1, H) and its next-token logits)."""
    from seqtui.kernels import beam as beam_kernels
    from seqtui.kernels import sample

    V = first_logits.shape[0]
    states = np.empty((W,) + state.shape, dtype=state.dtype)
    scratch = np.empty_like(states)
    logits = np.empty((W, V), dtype=first_logits.dtype)
    states[0] = state
    logits[0] = first_logits
    scores = np.zeros(W, dtype=np.float64)
    new_scores = np.zeros(W, dtype=np.float64)
    parents = np.zeros(W, dtype=np.int64)
    tokens = np.zeros(W, dtype=np.int32)
    hist_tokens = np.zeros((length, W), dtype=np.int32)
    hist_parents = np.zeros((length, W), dtype=np.int64)
    live = 1
    for t in range(length):
        live = beam_kernels.beam_step(logits, scores, live, states, scratch, parents, tokens, new_scores)
        hist_tokens[t, :live] = tokens[:live]
        hist_parents[t, :live] = parents[:live]
        scores[:live] = new_scores[:live]
        if t + 1 < length:  # the last tokens need no state
            for w in range(live):
                sample.feed(states[w], logits[w], tokens[w : w + 1], *args)
    out = np.zeros(length, dtype=np.int32)
    j = 0  # hypothesis 0 is the best
    for t in range(length - 1, -1, -1):
        out[t] = hist_tokens[t, j]
        j = int(hist_parents[t, j])
    return out, float(scores[0]) if length else 0.0
