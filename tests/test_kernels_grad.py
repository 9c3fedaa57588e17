"""Gradient checks: the kernels' backward pass against float64 central finite differences.

The numeric gradient is the fourth-order central difference
(f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)) / 12h with h = 1e-3: truncation ~h⁴ = 1e-12, rounding ~1e-13.

Tiny shapes (V=5, H=4, B=2, T=4) keep every check to a few hundred forward passes. The relative
error of each parameter is |analytic − numeric| / max(|analytic|, |numeric|, 1e-3·s), where s is
the largest numeric gradient of that tensor — entries far below the tensor's scale are compared
at that floor, since finite differences cannot resolve them better than ~1e-10 absolute.
"""

from __future__ import annotations

import numpy as np
import pytest

from seqtui.models.bptt import carry_scale_for

from _fixtures_kernels import CELLS, random_state, reference_forward, reference_nll, tiny_batch, tiny_model

EPS = 1e-5  # plain central differences for the ∂L/∂h_t check
STEP = 1e-3  # fourth-order differences for the parameter check
B, T = 2, 4


def _chunks(scale: np.ndarray) -> list[tuple[int, int]]:
    """Windows [a, b) between the steps where the carry is cut (scale 0)."""
    cuts = [t for t in range(1, len(scale)) if scale[t] == 0.0]
    edges = [0] + cuts + [len(scale)]
    return list(zip(edges[:-1], edges[1:]))


def _surrogate_loss(model, X, Y, chunk_states, chunks) -> float:
    """Mean NLL with the state detached at each cut: every chunk starts from a fixed state."""
    total = 0.0
    for (a, b), s in zip(chunks, chunk_states):
        total += model.evaluate(X[:, a:b], Y[:, a:b], s)[0]
    return total / X.size


def _numeric_grad(model, X, Y, state, scale) -> np.ndarray:
    chunks = _chunks(scale)
    states, s = [], state
    for a, b in chunks:  # the detached states, from the unperturbed parameters
        states.append(s)
        s = model.evaluate(X[:, a:b], Y[:, a:b], s)[2]
    grad = np.zeros_like(model.params)
    for i in range(model.params.size):
        old = model.params[i]
        f = []
        for k in (-2, -1, 1, 2):
            model.params[i] = old + k * STEP
            f.append(_surrogate_loss(model, X, Y, states, chunks))
        model.params[i] = old
        grad[i] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * STEP)
    return grad


def _max_rel_error(model, analytic: np.ndarray, numeric: np.ndarray) -> dict[str, float]:
    out = {}
    a_views = model._views(analytic)
    n_views = model._views(numeric)
    for name in a_views:
        a, n = a_views[name].ravel(), n_views[name].ravel()
        floor = 1e-3 * max(np.abs(n).max(), 1e-8)
        out[name] = float((np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)).max())
    return out


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("mode", ["full", "truncated"])
def test_gradients_match_finite_differences(cell, layers, mode):
    # parts=2 on the 2-layer models exercises the column-split path of every kernel too
    model = tiny_model(cell, layers, parts=2 if layers == 2 else 1, seed=layers)
    X, Y = tiny_batch(B=B, T=T, seed=3)
    state = random_state(model, B)
    scale = carry_scale_for(mode, T, k=2 if mode == "truncated" else None)
    stats = model.loss_and_grad(X, Y, state, scale)
    assert stats.finite
    analytic = model.grads.copy()
    numeric = _numeric_grad(model, X, Y, state, scale)
    errors = _max_rel_error(model, analytic, numeric)
    assert max(errors.values()) < 1e-6, errors
    if mode == "truncated":  # the cut really removes something: differs from the full gradient
        model.loss_and_grad(X, Y, state, carry_scale_for("full", T))
        assert np.abs(model.grads - analytic).max() > 1e-6


@pytest.mark.parametrize("cell", CELLS)
def test_loss_is_mean_nll_and_final_state_detached(cell):
    model = tiny_model(cell, 2)
    X, Y = tiny_batch(B=B, T=T, seed=5)
    state = random_state(model, B)
    stats = model.loss_and_grad(X, Y, state, None)
    logits, final = reference_forward(model.named_parameters(), cell, X, state)
    assert stats.loss == pytest.approx(reference_nll(logits, Y) / X.size, rel=1e-12)
    np.testing.assert_allclose(stats.state, final, rtol=0, atol=1e-12)
    before = stats.state.copy()
    model.loss_and_grad(X, Y, stats.state, None)  # used as the next window's initial state
    np.testing.assert_array_equal(stats.state, before)


@pytest.mark.parametrize("cell", CELLS)
def test_h_grad_norms_are_total_gradients_of_top_layer(cell):
    model = tiny_model(cell, 2, seed=7)
    X, Y = tiny_batch(B=B, T=T, seed=8)
    state = random_state(model, B)
    stats = model.loss_and_grad(X, Y, state, None)
    named = model.named_parameters()
    H = model.cfg.hidden
    expected = np.zeros(T)
    for t in range(T):
        g = np.zeros((B, H))
        for b in range(B):
            for j in range(H):
                up = reference_nll(reference_forward(named, cell, X, state, (t, b, j, EPS))[0], Y)
                down = reference_nll(reference_forward(named, cell, X, state, (t, b, j, -EPS))[0], Y)
                g[b, j] = (up - down) / (2 * EPS) / X.size
        expected[t] = np.linalg.norm(g)
    assert stats.h_grad_norms.shape == (T,) and stats.h_grad_norms.dtype == np.float64
    np.testing.assert_allclose(stats.h_grad_norms, expected, rtol=1e-6)


def test_randomized_with_p_one_is_exactly_full():
    model = tiny_model("gru", 2, parts=2)
    X, Y = tiny_batch(B=B, T=T)
    state = random_state(model, B)
    scale = carry_scale_for("randomized", T, p=1.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(scale, np.ones(T))
    model.loss_and_grad(X, Y, state, scale)
    randomized = model.grads.copy()
    model.loss_and_grad(X, Y, state, carry_scale_for("full", T))
    np.testing.assert_array_equal(randomized, model.grads)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_randomized_gradient_is_unbiased(cell):
    """Mean of the randomized-BPTT estimate over many draws → the full gradient.

    Tolerance: every parameter's mean lies within 5 standard errors of the full gradient
    (standard error = sample std / √draws, plus 1e-12), and the mean's overall relative error
    is below 5%. The draws are seeded, so the test is deterministic.
    """
    model = tiny_model(cell, 1, seed=2)
    X, Y = tiny_batch(B=B, T=T, seed=4)
    state = random_state(model, B)
    model.loss_and_grad(X, Y, state, carry_scale_for("full", T))
    full = model.grads.copy()
    rng = np.random.default_rng(123)
    draws = 4000
    total = np.zeros_like(full)
    total_sq = np.zeros_like(full)
    distinct = set()
    for _ in range(draws):
        scale = carry_scale_for("randomized", T, p=0.5, rng=rng)
        distinct.add(tuple(scale))
        model.loss_and_grad(X, Y, state, scale)
        total += model.grads
        total_sq += model.grads ** 2
    mean = total / draws
    se = np.sqrt(np.maximum(total_sq / draws - mean ** 2, 0.0) / draws)
    assert len(distinct) > 4  # the draws really vary
    assert np.all(np.abs(mean - full) <= 5 * se + 1e-12)
    assert np.linalg.norm(mean - full) / np.linalg.norm(full) < 0.05


def test_carry_scale_modes():
    np.testing.assert_array_equal(carry_scale_for("full", 5), np.ones(5))
    np.testing.assert_array_equal(carry_scale_for("truncated", 7, k=3), [1, 1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(carry_scale_for("truncated", 4, k=4), np.ones(4))
    xi = carry_scale_for("randomized", 10000, p=0.25, rng=np.random.default_rng(1))
    assert set(np.unique(xi)) == {0.0, 4.0}
    assert abs(xi.mean() - 1.0) < 0.1


@pytest.mark.parametrize("args", [("full", 0), ("sideways", 4), ("truncated", 4), ("randomized", 4)])
def test_carry_scale_rejects_bad_settings(args):
    from seqtui.errors import ConfigError

    with pytest.raises(ConfigError):
        carry_scale_for(args[0], args[1], rng=None)
