"""n-gram baseline: the Laplace formulas by hand, normalization, perplexity, sampling, Zipf data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtui.errors import ConfigError, CorpusError
from seqtui.models.ngram import NGramModel, baseline_perplexity, expand_eps
from seqtui.data.stats import rank_frequency, top_ngrams, zipf_stats
from seqtui.data.vocab import Vocab

# tokens a b a b a c, ids 1 2 1 2 1 3, V = 4 (id 0 is <unk>, never seen)
IDS = np.array([1, 2, 1, 2, 1, 3], dtype=np.int32)
V = 4


def test_laplace_unigram_by_hand():
    m = NGramModel.fit(IDS, V, order=0, eps=2.0)
    # P(x) = (n(x) + e1/m) / (n + e1) with n = 6, m = 4, e1 = 2
    expect = np.array([0 + 0.5, 3 + 0.5, 2 + 0.5, 1 + 0.5]) / 8
    np.testing.assert_allclose(m.distribution(), expect)


def test_laplace_bigram_and_trigram_by_hand():
    m = NGramModel.fit(IDS, V, order=2, eps=(1.0, 2.0, 4.0))
    p0 = (np.array([0, 3, 2, 1]) + 1 / 4) / (6 + 1)
    # context "a" (id 1) is followed by b, b, c: n(a) = 3 as a context
    p1_a = (np.array([0, 0, 2, 1]) + 2 * p0) / (3 + 2)
    np.testing.assert_allclose(m.distribution([1]), p1_a)
    # context "b a" occurs twice, followed by b then c
    p2_ba = (np.array([0, 0, 1, 1]) + 4 * p1_a) / (2 + 4)
    np.testing.assert_allclose(m.distribution([2, 1]), p2_ba)
    # only the last k = 2 tokens count
    np.testing.assert_allclose(m.distribution([3, 3, 2, 1]), p2_ba)
    # an unseen context falls back to the lower order entirely: (0 + e*p)/(0 + e) = p
    np.testing.assert_allclose(m.distribution([3, 1]), p1_a)


def test_log_probs_by_hand_and_perplexity():
    m = NGramModel.fit(IDS, V, order=1, eps=1.0)
    lp = m.log_probs(IDS)
    expect = [math.log(m.distribution([])[IDS[0]])]
    expect += [math.log(m.distribution([IDS[t - 1]])[IDS[t]]) for t in range(1, len(IDS))]
    np.testing.assert_allclose(lp, expect)
    assert m.perplexity(IDS) == pytest.approx(math.exp(-np.mean(expect)))
    # history supplies the first context
    lp_h = m.log_probs(IDS[3:], history=IDS[:3])
    np.testing.assert_allclose(lp_h, expect[3:])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=60),
    st.integers(0, 3),
    st.lists(st.floats(0.01, 10), min_size=1, max_size=4),
    st.lists(st.integers(0, 5), max_size=4),
)
def test_every_conditional_distribution_sums_to_one(tokens, order, eps, context):
    m = NGramModel.fit(np.array(tokens, dtype=np.int32), 6, order, eps)
    p = m.distribution(context)
    assert p.shape == (6,)
    assert np.all(p > 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_higher_order_fits_training_text_better():
    rng = np.random.default_rng(0)
    # a text with strong bigram structure: a deterministic cycle with a little noise
    ids = np.array([(i % 5) + 1 if rng.random() > 0.05 else 6 for i in range(3000)], dtype=np.int32)
    ppl = [NGramModel.fit(ids, 7, k, 0.1).perplexity(ids) for k in range(3)]
    assert ppl[0] > ppl[1] >= ppl[2] * 0.999
    assert ppl[0] == pytest.approx(5.6, rel=0.1)  # ~uniform over 5 symbols, plus noise


def test_sampling_is_reproducible_and_avoids_unk():
    m = NGramModel.fit(IDS, V, order=1, eps=1.0)
    a = m.sample(50, seed=3)
    assert a.tolist() == m.sample(50, seed=3).tolist()
    assert a.dtype == np.int32 and a.shape == (50,)
    assert 0 not in a.tolist()
    assert set(m.sample(200, seed=1, allow_unk=True).tolist()) <= {0, 1, 2, 3}


def test_baseline_perplexity_on_held_out_tail():
    ids = np.tile(np.array([1, 2, 3], dtype=np.int32), 100)
    ppl = baseline_perplexity(ids[:240], ids[240:], 4, order=2, eps=0.01)
    assert 1.0 <= ppl < 1.05


@pytest.mark.parametrize(
    "kwargs",
    [dict(order=-1), dict(order=2.5), dict(order=13), dict(eps=0.0), dict(eps=[1.0, -1.0]), dict(eps=[])],
)
def test_bad_hyperparameters(kwargs):
    args = dict(order=1, eps=1.0) | kwargs
    with pytest.raises(ConfigError):
        NGramModel.fit(IDS, V, args["order"], args["eps"])


def test_overflowing_order_and_empty_input():
    with pytest.raises(ConfigError, match="too high"):
        NGramModel(order=5, vocab_size=100_000)
    with pytest.raises(CorpusError):
        NGramModel.fit(np.array([], dtype=np.int32), 4, 1)
    with pytest.raises(ConfigError):
        NGramModel.fit(np.array([7], dtype=np.int32), 4, 1)


def test_expand_eps_repeats_the_last_value():
    assert expand_eps([1, 2], 3) == (1.0, 2.0, 2.0, 2.0)
    assert expand_eps(0.5, 0) == (0.5,)


def test_zipf_statistics():
    vocab = Vocab.build("abracadabra")
    ids = vocab.encode("abracadabra")
    top1 = top_ngrams(ids, vocab, 1, top=2)
    assert [(g.text, g.count) for g in top1] == [("a", 5), ("b", 2)]
    top2 = top_ngrams(ids, vocab, 2, top=3)
    assert [(g.text, g.count) for g in top2][:2] == [("ab", 2), ("br", 2)]
    assert top2[0].tokens == ("a", "b")
    rf = rank_frequency(ids, len(vocab), 3)
    assert rf.tolist() == [2, 2, 1, 1, 1, 1, 1]  # abr, bra twice; rac aca cad ada dab once
    z = zipf_stats(ids, vocab, top=5)
    assert set(z.top) == {1, 2, 3} and z.tokens == 11
    assert z.rank_freq[1].tolist() == [5, 2, 2, 1, 1]
    word = Vocab.build("the cat the dog".split(), is_char=False)
    assert top_ngrams(word.encode("the cat the dog the cat"), word, 2, top=1)[0].text == "the cat"


def test_streamed_counting_and_chunked_perplexity_equal_the_whole_array(monkeypatch):
    """Dense and sorted counting agree, and chunk boundaries change no perplexity."""
    from seqtui.models import ngram as ng

    rng = np.random.default_rng(7)
    ids = rng.integers(0, 9, size=5_003).astype(np.int32)
    whole = ng.NGramModel.fit(ids, 9, 3)
    ref = float(np.exp(-whole.log_probs(ids[4000:], history=ids[:4000]).mean()))
    monkeypatch.setattr(ng, "DENSE_LIMIT", 1)   # force the chunked sort-and-merge path
    monkeypatch.setattr(ng, "CHUNK", 97)        # and many chunk boundaries
    sparse = ng.NGramModel.fit(ids, 9, 3)
    for a, b in zip(whole.keys + whole.counts, sparse.keys + sparse.counts):
        np.testing.assert_array_equal(a, b)
    assert sparse.perplexity(ids[4000:], history=ids[:4000]) == pytest.approx(ref, rel=1e-12)
