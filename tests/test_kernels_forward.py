"""Forward pass, parameter layout and input checks of CharModel against a plain NumPy reference
(and against PyTorch when it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from seqtui.errors import CheckpointError, ConfigError
from seqtui.models.charmodel import CharModel, ModelConfig, parameter_shapes

from _fixtures_kernels import CELLS, random_state, reference_forward, reference_nll, tiny_batch, tiny_model


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_forward_matches_numpy_reference_float64(cell, layers):
    model = tiny_model(cell, layers, V=6, H=5, parts=layers, seed=11)
    X, _ = tiny_batch(V=6, B=3, T=5, seed=2)
    state = random_state(model, 3)
    logits, final = model.logits(X, state)
    ref_logits, ref_final = reference_forward(model.named_parameters(), cell, X, state)
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-13)
    np.testing.assert_allclose(final, ref_final, rtol=0, atol=1e-13)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_float32_close_to_float64_reference(cell):
    """float32 uses a rational tanh (error ≈ 3.5e-7): logits stay within 2e-5 of exact maths."""
    model = tiny_model(cell, 2, V=6, H=8, dtype=np.float32, parts=2, seed=4)
    X, _ = tiny_batch(V=6, B=3, T=6, seed=3)
    state = random_state(model, 3)
    logits, final = model.logits(X, state)
    assert logits.dtype == np.float32 and final.dtype == np.float32
    ref_logits, ref_final = reference_forward(model.named_parameters(), cell, X, state)
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=2e-5)
    np.testing.assert_allclose(final, ref_final, rtol=0, atol=2e-5)


def test_float32_tanh_approximation_on_a_wide_range():
    """h = tanh(pre) for an RNN with identity-like input: covers the clamp and the small range."""
    model = tiny_model("rnn", 1, V=5, H=4, dtype=np.float32)
    p = model.named_parameters()
    for name in p:
        p[name][...] = 0
    pre = np.array([-30.0, -8.0, -3.3, -0.7, -1e-4, 0.0, 2e-3, 0.9, 4.2, 9.0], np.float32)
    X = np.zeros((1, pre.size), np.int32)
    # h_t = tanh(b_ih) with b_ih sweeping over pre: feed one value per step through b_ih
    got = []
    for v in pre:
        p["rnn.bias_ih_l0"][...] = v
        _, final = model.logits(X[:, :1])
        got.append(final[0, 0, 0, 0])
    np.testing.assert_allclose(np.array(got), np.tanh(pre.astype(np.float64)), rtol=0, atol=6e-7)


@pytest.mark.parametrize("cell", CELLS)
def test_parts_split_gives_same_result(cell):
    X, Y = tiny_batch(V=5, B=2, T=4, seed=9)
    grads = []
    for parts in (1, 2, 3):
        model = tiny_model(cell, 2, H=7, parts=parts, seed=5)
        stats = model.loss_and_grad(X, Y, random_state(model, 2), None)
        grads.append((stats.loss, model.grads.copy(), stats.h_grad_norms))
    for loss, g, norms in grads[1:]:
        assert loss == pytest.approx(grads[0][0], rel=1e-14)
        np.testing.assert_allclose(g, grads[0][1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(norms, grads[0][2], rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_thread_count_does_not_change_a_bit(cell):
    """The work is cut into ``parts`` pieces whatever the threads; 1 or 2 threads run them."""
    X, Y = tiny_batch(V=5, B=3, T=4, seed=2)
    runs = []
    for threads in (1, 2):
        model = tiny_model(cell, 2, H=6, dtype=np.float32, parts=2, seed=3)
        model.threads = threads
        stats = model.loss_and_grad(X, Y, random_state(model, 3), None)
        runs.append((stats.loss, model.grads.copy(), stats.state, stats.h_grad_norms))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1:], runs[1][1:]):
        np.testing.assert_array_equal(a, b)


def test_thread_tuner_keeps_the_faster_setting():
    from seqtui.models.threads import ThreadTuner

    tuner = ThreadTuner(2, probe_every=10)
    picks = []
    for _ in range(40):
        k = tuner.pick()
        picks.append(k)
        tuner.record(k, 1.0 if k == 2 else 0.1)  # one thread is faster here
    assert set(picks[:6]) == {1, 2}  # both measured at the start
    assert tuner.current == 1
    assert picks[10:].count(2) <= 4  # afterwards only occasional probes
    assert ThreadTuner(1).pick() == 1


@pytest.mark.parametrize("cell", CELLS)
def test_evaluate_sum_nll_and_sequential_carry(cell):
    model = tiny_model(cell, 2, seed=6)
    X, Y = tiny_batch(B=2, T=6, seed=1)
    total, n, final = model.evaluate(X, Y, None)
    ref_logits, ref_final = reference_forward(model.named_parameters(), cell, X, model.init_state(2))
    assert n == X.size
    assert total == pytest.approx(reference_nll(ref_logits, Y), rel=1e-13)
    # two halves with the state carried over give the same sum and final state
    t1, _, s1 = model.evaluate(X[:, :3], Y[:, :3], None)
    t2, _, s2 = model.evaluate(X[:, 3:], Y[:, 3:], s1)
    assert t1 + t2 == pytest.approx(total, rel=1e-13)
    np.testing.assert_allclose(s2, final, atol=1e-14)
    np.testing.assert_allclose(final, ref_final, atol=1e-13)


def test_named_parameters_follow_pytorch_layout():
    cfg = ModelConfig("gru", vocab_size=7, hidden=6, num_layers=2)
    model = CharModel(cfg, seed=0)
    named = model.named_parameters()
    assert list(named) == [n for n, _ in parameter_shapes(cfg)]
    assert named["rnn.weight_ih_l0"].shape == (18, 7)
    assert named["rnn.weight_ih_l1"].shape == (18, 6)
    assert named["rnn.weight_hh_l1"].shape == (18, 6)
    assert named["fc.weight"].shape == (7, 6) and named["fc.bias"].shape == (7,)
    assert sum(v.size for v in named.values()) == model.params.size
    for v in named.values():  # views into the flat buffer
        assert np.shares_memory(v, model.params)
        assert np.abs(v).max() <= 1 / np.sqrt(6)
    assert model.params.dtype == np.float32
    assert model.init_state(3).shape == (1, 2, 3, 6)
    assert CharModel(ModelConfig("lstm", 5, 4, 3)).init_state(2).shape == (2, 3, 2, 4)
    # the same seed gives the same model, another seed another
    np.testing.assert_array_equal(CharModel(cfg, seed=0).params, model.params)
    assert not np.array_equal(CharModel(cfg, seed=1).params, model.params)


def test_load_named_round_trip_and_errors():
    a = tiny_model("lstm", 2, dtype=np.float32, seed=1)
    b = tiny_model("lstm", 2, dtype=np.float32, seed=2)
    b.load_named({k: v.copy() for k, v in a.named_parameters().items()})
    np.testing.assert_array_equal(a.params, b.params)
    good = {k: v.copy() for k, v in a.named_parameters().items()}
    bad_name = dict(good, **{"rnn.weight_ih_l2": good["rnn.weight_ih_l1"]})
    with pytest.raises(CheckpointError, match="unexpected"):
        b.load_named(bad_name)
    missing = {k: v for k, v in good.items() if k != "fc.bias"}
    with pytest.raises(CheckpointError, match="missing"):
        b.load_named(missing)
    with pytest.raises(CheckpointError, match="shape"):
        b.load_named(dict(good, **{"fc.bias": np.zeros(4, np.float32)}))
    with pytest.raises(CheckpointError, match="dtype"):
        b.load_named(dict(good, **{"fc.bias": good["fc.bias"].astype(np.float64)}))
    nan = good["fc.bias"].copy()
    nan[0] = np.nan
    with pytest.raises(CheckpointError, match="NaN"):
        b.load_named(dict(good, **{"fc.bias": nan}))


@pytest.mark.parametrize("kwargs", [dict(cell="tcn", vocab_size=5, hidden=4), dict(cell="rnn", vocab_size=1, hidden=4),
                                    dict(cell="rnn", vocab_size=5, hidden=0), dict(cell="gru", vocab_size=5, hidden=4, num_layers=0),
                                    dict(cell="gru", vocab_size=5, hidden=4.5)])
def test_model_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        ModelConfig(**kwargs)


def test_bad_batches_are_user_errors():
    model = tiny_model("rnn", 1)
    X, Y = tiny_batch()
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        model.loss_and_grad(X + 5, Y, None, None)
    with pytest.raises(ConfigError, match="Y has shape"):
        model.loss_and_grad(X, Y[:, :2], None, None)
    with pytest.raises(ConfigError, match="state has shape"):
        model.loss_and_grad(X, Y, model.init_state(3), None)
    with pytest.raises(ConfigError, match="carry_scale"):
        model.loss_and_grad(X, Y, None, np.ones(2))
    with pytest.raises(ConfigError, match="integer"):
        model.evaluate(X.astype(np.float32), Y, None)


@pytest.mark.parametrize("cell", CELLS)
def test_non_finite_loss_or_gradients_are_reported(cell):
    model = tiny_model(cell, 1, dtype=np.float32)
    X, Y = tiny_batch()
    assert model.loss_and_grad(X, Y, None, None).finite
    model.named_parameters()["rnn.weight_hh_l0"][0, 0] = np.nan
    stats = model.loss_and_grad(X, Y, None, None)
    assert not stats.finite
    model = tiny_model(cell, 1, dtype=np.float32)
    model.named_parameters()["fc.weight"][...] = 0
    model.named_parameters()["fc.bias"][...] = [3e38, -3e38, 3e38, -3e38, 3e38]  # gaps overflow float32
    assert np.isin(Y, [1, 3]).any()
    assert not model.loss_and_grad(X, Y, None, None).finite


@pytest.mark.parametrize("cell", CELLS)
def test_matches_pytorch_when_installed(cell):
    torch = pytest.importorskip("torch")
    V, H, L, B, T = 6, 5, 2, 3, 5
    model = tiny_model(cell, L, V=V, H=H, parts=2, seed=8)
    X, Y = tiny_batch(V=V, B=B, T=T, seed=4)
    state = random_state(model, B)
    stats = model.loss_and_grad(X, Y, state, None)

    rnn = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](V, H, L).double()
    fc = torch.nn.Linear(H, V).double()
    named = model.named_parameters()
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            p.copy_(torch.from_numpy(named["rnn." + name]))
        fc.weight.copy_(torch.from_numpy(named["fc.weight"]))
        fc.bias.copy_(torch.from_numpy(named["fc.bias"]))
    x = torch.nn.functional.one_hot(torch.from_numpy(X.T.astype(np.int64)), V).double()
    s = torch.from_numpy(state)
    out, hn = rnn(x, (s[0], s[1]) if cell == "lstm" else s[0])
    loss = torch.nn.functional.cross_entropy(fc(out.reshape(-1, H)), torch.from_numpy(Y.T.reshape(-1).astype(np.int64)))
    loss.backward()
    assert stats.loss == pytest.approx(loss.item(), rel=1e-12)
    final = torch.stack(hn) if cell == "lstm" else hn[None]
    np.testing.assert_allclose(stats.state, final.detach().numpy(), atol=1e-13)
    grads = model.named_grads()
    for name, p in rnn.named_parameters():
        np.testing.assert_allclose(grads["rnn." + name], p.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(grads["fc.weight"], fc.weight.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(grads["fc.bias"], fc.bias.grad.numpy(), atol=1e-13)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-14), (np.float32, 1e-6)])
def test_fused_softmax_cross_entropy(dtype, tol):
    """Loss and gradient of the fused kernel vs NumPy in float64, over wide logit ranges
    (float32 uses a polynomial exp; rows with −200 and +50 exercise its clamps)."""
    from seqtui.kernels import output

    rng = np.random.default_rng(0)
    z = (rng.standard_normal((300, 7)) * 8).astype(dtype)
    z[0, 3] = -200.0
    z[1, :] = 50.0
    z[2, 4] = 80.0
    y = rng.integers(0, 7, 300).astype(np.int32)
    z64 = z.astype(np.float64)
    m = z64.max(1, keepdims=True)
    e = np.exp(z64 - m)
    s = e.sum(1, keepdims=True)
    loss = float((np.log(s[:, 0]) - (z64[np.arange(300), y] - m[:, 0])).sum())
    grad = e / s / 300
    grad[np.arange(300), y] -= 1 / 300
    for parts in (1, 2):
        assert output.softmax_ce_forward(z, y, parts) == pytest.approx(loss, rel=tol)
        g = z.copy()
        assert output.softmax_ce_forward_backward(g, y, 1 / 300, parts) == pytest.approx(loss, rel=tol)
        np.testing.assert_allclose(g, grad, rtol=0, atol=tol / 300)
