"""Generator: greedy / temperature / top-k / top-p draws, state kept between calls, prompts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from seqtui.errors import ConfigError
from seqtui.models.generate import Generator
from seqtui.models.charmodel import CharModel, ModelConfig
from seqtui.data.vocab import Vocab

TEXT = "the quick brown fox jumps over the lazy dog"
VOCAB = Vocab.build(TEXT)


def _model(cell="rnn", layers=2, seed=0) -> CharModel:
    return CharModel(ModelConfig(cell, len(VOCAB), 16, layers), seed=seed, parts=2)


def _fixed_distribution_model(logits) -> CharModel:
    """A model whose next-token logits are always ``logits``: zero weights, fc.bias = logits."""
    model = CharModel(ModelConfig("rnn", len(logits), 4, 1), seed=0)
    model.params[...] = 0
    model.named_parameters()["fc.bias"][...] = logits
    return model


def _vocab_of_size(n) -> Vocab:
    return Vocab(["<unk>"] + [chr(ord("a") + i) for i in range(n - 1)])


def test_greedy_is_deterministic_and_top_k_one_is_greedy():
    a = Generator(_model(), VOCAB)
    b = Generator(_model(), VOCAB)
    a.prime("the ")
    b.prime("the ")
    greedy = "".join(a.sample(40, temperature=0))
    assert greedy == "".join(b.sample(40, temperature=0))
    c = Generator(_model(), VOCAB)
    c.prime("the ")
    assert "".join(c.sample(40, temperature=1.5, top_k=1, seed=3)) == greedy


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_greedy_continuation_matches_model_forward(cell):
    """The generation kernel's step equals the training kernels' forward pass."""
    model = _model(cell, seed=4)
    gen = Generator(model, VOCAB)
    gen.prime("lazy do")
    tokens = list(gen.sample(12, temperature=0))
    ids = VOCAB.encode("lazy do" + "".join(tokens))
    logits, _ = model.logits(ids[None, :-1])
    np.testing.assert_array_equal(logits[0, 6:].argmax(-1), ids[7:])
    _, final = model.logits(ids[None])  # the stream has fed its last token back in
    np.testing.assert_allclose(gen.state, final, atol=1e-5)


def test_seeded_draws_are_reproducible_and_vary_with_seed():
    gen = Generator(_model(), VOCAB)
    start = gen.state.copy()
    one = "".join(gen.sample(60, temperature=1.0, seed=7))
    gen.reset()
    np.testing.assert_array_equal(gen.state, start)
    assert "".join(gen.sample(60, temperature=1.0, seed=7)) == one
    gen.reset()
    assert "".join(gen.sample(60, temperature=1.0, seed=8)) != one


def test_state_is_kept_between_calls():
    gen = Generator(_model("gru"), VOCAB)
    gen.prime("over ")
    whole = "".join(gen.sample(30, temperature=0))
    gen.reset()
    gen.prime("over ")
    parts = "".join(gen.sample(10, temperature=0)) + "".join(gen.sample(20, temperature=0))
    assert parts == whole
    # priming again continues from where the stream stands (the user keeps typing)
    gen.reset()
    gen.prime("ov")
    gen.prime("er ")
    assert "".join(gen.sample(30, temperature=0)) == whole


def test_stopping_early_rewinds_to_the_last_token_given():
    gen = Generator(_model("lstm"), VOCAB)
    gen.prime("fox ")
    whole = "".join(gen.sample(100, temperature=0))
    gen.reset()
    gen.prime("fox ")
    stream = gen.sample(100, temperature=0)
    first = [next(stream) for _ in range(70)]  # past the first 64-token chunk
    stream.close()
    rest = "".join(gen.sample(30, temperature=0))
    assert "".join(first) + rest == whole


def test_unknown_prompt_chars_are_reported():
    gen = Generator(_model(), VOCAB)
    assert gen.prime("the fox") == []
    assert gen.prime("Zebra!") == ["Z", "!"]


def test_temperature_sharpens_and_flattens_the_distribution():
    logits = np.array([0.0, 2.0, 1.0, 0.5, -1.0], np.float32)
    gen = Generator(_fixed_distribution_model(logits), _vocab_of_size(5))
    n = 20000
    for temperature in (0.5, 1.0, 2.0):
        draws = [int(ord(t) - ord("a") + 1) if t != "<unk>" else 0
                 for t in gen.sample(n, temperature=temperature, seed=1)]
        freq = np.bincount(draws, minlength=5) / n
        p = np.exp(logits / temperature)
        p /= p.sum()
        # 5 standard deviations of a binomial proportion
        assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n)), (temperature, freq, p)


def test_top_k_and_top_p_restrict_the_support():
    logits = np.log(np.array([0.05, 0.4, 0.3, 0.15, 0.1], np.float32))
    vocab = _vocab_of_size(5)
    gen = Generator(_fixed_distribution_model(logits), vocab)
    top2 = set(gen.sample(3000, top_k=2, seed=2))
    assert top2 == {"a", "b"}  # ids 1 and 2
    top_p = list(gen.sample(6000, top_p=0.8, seed=3))  # 0.4 + 0.3 < 0.8 ≤ 0.4 + 0.3 + 0.15
    assert set(top_p) == {"a", "b", "c"}
    share = top_p.count("a") / len(top_p)
    assert abs(share - 0.4 / 0.85) < 0.03  # renormalised over the kept set
    assert set(gen.sample(500, top_p=0.1, seed=4)) == {"a"}  # only the most likely
    both = set(gen.sample(3000, top_k=3, top_p=0.5, seed=5))  # top-k first, then top-p
    assert both == {"a", "b"}


def test_bad_settings_are_user_errors():
    gen = Generator(_model(), VOCAB)
    for kwargs in (dict(temperature=-1), dict(top_k=-1), dict(top_p=0.0), dict(top_p=1.5)):
        with pytest.raises(ConfigError):
            gen.sample(5, **kwargs)
    with pytest.raises(ConfigError):
        gen.sample(-1)
    with pytest.raises(ConfigError, match="vocabulary"):
        Generator(_model(), _vocab_of_size(4))


def test_generators_in_threads_do_not_interfere():
    model = _model("gru")
    expected = {}
    for seed in range(4):
        gen = Generator(model, VOCAB)
        expected[seed] = "".join(gen.sample(300, temperature=1.0, seed=seed))
    got = {}

    def run(seed):
        gen = Generator(model, VOCAB)
        got[seed] = "".join(gen.sample(300, temperature=1.0, seed=seed))

    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def _trained_model(cell, H=256, steps=120):
    """A float32 model trained briefly on real text (pydoc topics), and its vocabulary."""
    from pydoc_data.topics import topics

    from seqtui.models.optim import Adam, clip_grad_norm

    text = "".join(topics[k] for k in sorted(topics))[:40_000]
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    model = CharModel(ModelConfig(cell, len(vocab), H, 1), seed=0)
    opt, B, T = Adam(lr=0.005), 16, 32
    rng = np.random.default_rng(0)
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - T - 1, B)
        X = np.stack([ids[s:s + T] for s in starts])
        Y = np.stack([ids[s + 1:s + T + 1] for s in starts])
        model.loss_and_grad(X, Y, None, None)
        clip_grad_norm(model.grads, 1.0)
        opt.step(model.params, model.grads)
    return model, vocab, text


def _stream_perplexity(gen, vocab, text):
    """exp(mean NLL) of each next char of ``text`` under the generator's logits, fed one by one."""
    nll = 0.0
    for ch in text:
        z = gen.logits.astype(np.float64)
        z = z - z.max()
        nll += np.log(np.exp(z).sum()) - z[vocab.encode([ch])[0]]
        gen.prime(ch)
    return float(np.exp(nll / len(text)))


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_float16_generation_moves_perplexity_by_less_than_half_a_percent(cell):
    model, vocab, text = _trained_model(cell)
    held_out = text[-1500:]
    exact = _stream_perplexity(Generator(model, vocab, precision="float32"), vocab, held_out)
    narrow = _stream_perplexity(Generator(model, vocab, precision="float16"), vocab, held_out)
    assert exact < 0.6 * len(vocab)  # the model has learned something
    assert abs(narrow / exact - 1) < 0.005, (exact, narrow)
    # and "auto" picks float16 for this width
    assert Generator(model, vocab).precision == "float16"


def test_float16_generation_follows_refresh_and_rejects_float64():
    model = CharModel(ModelConfig("rnn", len(VOCAB), 32, 2), seed=0)
    gen = Generator(model, VOCAB, precision="float16")
    model.params[...] *= 0.5  # the matrices' copy was taken at construction: refresh it
    gen.refresh()
    gen.reset()
    ref = Generator(model, VOCAB, precision="float16")
    assert "".join(gen.sample(50, temperature=0)) == "".join(ref.sample(50, temperature=0))
    with pytest.raises(ConfigError, match="float32"):
        Generator(CharModel(ModelConfig("rnn", len(VOCAB), 8, 1), dtype=np.float64), VOCAB,
                  precision="float16")
    with pytest.raises(ConfigError, match="precision"):
        Generator(model, VOCAB, precision="int8")


@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("gru", 2), ("lstm", 2)])
def test_generation_shared_by_threads_is_bit_identical(cell, layers):
    """generate_shared (each token cut into tasks of hidden units, taken by several threads)
    gives the very tokens, state and logits of the one-thread kernel: for 2 and 3 tasks on 2 and
    3 threads, and when fewer threads come than it was told (one thread told of 2 must not wait
    for the other) — and a Generator on a wide model uses it, with the same text as one thread."""
    from concurrent.futures import ThreadPoolExecutor

    from seqtui.kernels import sample

    model = CharModel(ModelConfig(cell, len(VOCAB), 48, layers), seed=1)
    gen = Generator(model, VOCAB, precision="float16")
    gen.prime("the quick")
    args, n = gen.kernel_args(), 300
    u = np.random.default_rng(0).random(n)
    params, offs, fc, w0_t, cell_code, nw, noffs, xpad = args
    L, V = model.cfg.num_layers, len(VOCAB)
    results = []
    for tasks, threads, told in ((1, 1, 1), (2, 2, 2), (3, 2, 2), (2, 1, 2), (3, 3, 3)):
        state, logits, out = gen.state.copy(), gen.logits.copy(), np.empty(n, np.int32)
        if tasks == 1:
            sample.generate(out, state, logits, *args, u, 1.0, 0, 1.0)
        else:
            scratch = [np.empty(w0_t.shape[1] + V + 8, np.float32) for _ in range(4)]
            pads = np.zeros((2, L, xpad.shape[0]), np.float32)
            pads[0, :, :48] = state[0, :, 0]
            shared = (told, tasks, np.zeros(16, np.int64), out, state, logits, *args[:7], u, 1.0, 0, 1.0,
                      *scratch, pads, np.empty((told, V)))
            with ThreadPoolExecutor(threads) as pool:
                for f in [pool.submit(sample.generate_shared, me, *shared) for me in range(threads)]:
                    f.result()
        results.append((out, state, logits))
    assert len(set(results[0][0].tolist())) > 3  # a real stream, not one token repeated
    for out, state, logits in results[1:]:
        assert np.array_equal(out, results[0][0])
        assert np.array_equal(state, results[0][1]) and np.array_equal(logits, results[0][2])

    wide = Generator(CharModel(ModelConfig("lstm", len(VOCAB), 256, 1), seed=0, threads=2), VOCAB)
    assert wide.precision == "float16" and wide.parts == 2
    one = Generator(CharModel(ModelConfig("lstm", len(VOCAB), 256, 1), seed=0, threads=1), VOCAB)
    assert one.parts == 1
    text = "".join(wide.sample(3000, seed=5))  # 16, 32, … tokens a call: the tuner tries both
    assert wide._timed == {1, 2}
    assert text == "".join(one.sample(3000, seed=5))
