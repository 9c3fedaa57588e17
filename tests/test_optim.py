"""Gradient clipping, SGD and Adam against hand-computed values; optimizer state round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqtui.errors import CheckpointError, ConfigError
from seqtui.models.optim import SGD, Adam, clip_grad_norm, grad_norm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_scales_to_theta_when_norm_exceeds_it(dtype):
    g = np.array([3.0, 4.0, 0.0, 12.0], dtype)  # norm 13
    norm, clipped = clip_grad_norm(g, 1.3)
    assert norm == pytest.approx(13.0, rel=1e-12) and clipped
    np.testing.assert_allclose(g, [0.3, 0.4, 0.0, 1.2], rtol=1e-6)
    assert g.dtype == dtype


def test_clip_leaves_small_gradients_alone():
    g = np.array([0.3, -0.4], np.float32)
    norm, clipped = clip_grad_norm(g, 1.0)
    assert norm == pytest.approx(0.5, rel=1e-6) and not clipped
    np.testing.assert_array_equal(g, np.array([0.3, -0.4], np.float32))
    _, clipped = clip_grad_norm(g, norm)  # a norm equal to θ does not clip
    assert not clipped


def test_a_step_reports_the_norm_that_clipping_would_compute():
    """loss_and_grad's grad_norm is grad_norm(grads), bit for bit: the trainer passes it to
    clip_grad_norm instead of a second pass over the gradient, with the same result."""
    from seqtui.models.charmodel import CharModel, ModelConfig

    model = CharModel(ModelConfig("gru", 11, 16, 1), seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, 11, (4, 6)), rng.integers(0, 11, (4, 6))
    stats = model.loss_and_grad(X, Y, None, None)
    assert stats.grad_norm == grad_norm(model.grads) and stats.finite
    a, b = model.grads.copy(), model.grads.copy()
    assert clip_grad_norm(a, 0.01, norm=stats.grad_norm) == clip_grad_norm(b, 0.01)
    np.testing.assert_array_equal(a, b)


def test_clip_norm_accumulates_in_float64():
    g = np.full(1_000_003, 1e-3, np.float32)
    assert grad_norm(g) == pytest.approx(math.sqrt(1_000_003) * float(np.float32(1e-3)), rel=1e-9)


def test_clip_reports_non_finite_norm_without_scaling():
    g = np.array([1.0, np.nan, 2.0])
    norm, clipped = clip_grad_norm(g, 1.0)
    assert math.isnan(norm) and not clipped
    assert g[0] == 1.0 and g[2] == 2.0
    norm, _ = clip_grad_norm(np.array([np.inf, 1.0]), 1.0)
    assert math.isinf(norm)
    with pytest.raises(ConfigError):
        clip_grad_norm(np.ones(3), 0.0)


def test_sgd_step():
    p = np.array([1.0, -2.0, 0.5], np.float32)
    g = np.array([0.5, 0.25, -1.0], np.float32)
    opt = SGD(lr=0.1)
    opt.step(p, g)
    np.testing.assert_allclose(p, [0.95, -2.025, 0.6], rtol=1e-6)
    opt.step(p, g, lr=1.0)  # an explicit lr (decay) overrides
    np.testing.assert_allclose(p, [0.45, -2.275, 1.6], rtol=1e-6)
    assert opt.state_dict()["lr"] == 0.1
    other = SGD(1.0)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.1
    with pytest.raises(ConfigError):
        SGD(lr=0)


def test_adam_two_steps_by_hand():
    p = np.array([1.0, -1.0])
    g1 = np.array([0.1, -0.2])
    g2 = np.array([0.3, 0.4])
    opt = Adam(lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    opt.step(p, g1)
    # step 1: m = 0.1 g, v = 0.01 g², m̂ = g, v̂ = g² → update = lr · g / (|g| + eps)
    expected = np.array([1.0, -1.0]) - 0.01 * g1 / (np.abs(g1) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    opt.step(p, g2)
    m = 0.9 * (0.1 * g1) + 0.1 * g2
    v = 0.99 * (0.01 * g1 ** 2) + 0.01 * g2 ** 2
    mhat = m / (1 - 0.9 ** 2)
    vhat = v / (1 - 0.99 ** 2)
    expected = expected - 0.01 * mhat / (np.sqrt(vhat) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    assert opt.t == 2


def test_adam_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((5, 10)).astype(np.float32)
    p1 = rng.standard_normal(10).astype(np.float32)
    p2 = p1.copy()
    a = Adam(lr=0.05)
    for g in grads[:3]:
        a.step(p1, g)
    state = a.state_dict()
    assert set(state) >= {"lr", "beta1", "beta2", "eps", "t", "m", "v"}
    assert all(isinstance(v, (int, float, np.ndarray)) for v in state.values())
    b = Adam(lr=1.0)
    b.load_state_dict(state)
    p2[...] = p1
    for g in grads[3:]:
        a.step(p1, g)
        b.step(p2, g)
    np.testing.assert_array_equal(p1, p2)


def test_adam_rejects_bad_state():
    good = Adam().state_dict()
    with pytest.raises(CheckpointError):
        Adam().load_state_dict({"lr": 0.1})
    with pytest.raises(CheckpointError):
        Adam().load_state_dict(dict(good, t=3))  # steps taken but no moments
    bad = dict(good, t=1, m=np.zeros(3, np.float32), v=np.zeros(4, np.float32))
    with pytest.raises(CheckpointError):
        Adam().load_state_dict(bad)
    opt = Adam()
    opt.load_state_dict(dict(good, t=1, m=np.zeros(3, np.float32), v=np.zeros(3, np.float32)))
    with pytest.raises(CheckpointError, match="do not match"):
        opt.step(np.zeros(4, np.float32), np.zeros(4, np.float32))


def test_adam_matches_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p = rng.standard_normal(7)
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.003, betas=(0.8, 0.95), eps=1e-6)
    opt = Adam(lr=0.003, betas=(0.8, 0.95), eps=1e-6)
    for _ in range(4):
        g = rng.standard_normal(7)
        opt.step(p, g)
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12)

