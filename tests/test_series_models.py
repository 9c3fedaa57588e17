"""Series models (issue 9): windows, AR least squares, MLP and real-valued RNN gradients, the book's
MLP result, standardization without leaks, k-step prediction, the τ-sweep, model state."""

from __future__ import annotations

import numpy as np
import pytest

from seqtui.data.series import load_series, sine_series
from seqtui.errors import CheckpointError, ConfigError, CorpusError
from seqtui.models import series as ms


@pytest.fixture(scope="module")
def book():
    return sine_series()  # n=1000, freq=0.01, noise=0.2, seed=0


def test_sine_matches_the_book_formula():
    s = load_series("sine:n=50,freq=0.03,noise=0.0")
    t = np.arange(1, 51)
    assert np.allclose(s.values, np.sin(0.03 * t))
    a, b = load_series("sine", n=200, seed=3), load_series("sine:n=200,seed=3")
    assert np.array_equal(a.values, b.values) and a.name == b.name
    assert abs(sine_series(n=100_000).values.std() - np.sqrt(0.5 + 0.04)) < 0.01


def test_windows_kernel_matches_numpy(book):
    x = book.values
    w = ms.make_windows(x, tau=4, split=600)
    z = (x - w.mean) / w.std
    ref = np.stack([z[i: x.size - 4 + i] for i in range(4)], axis=1)  # d2l's features
    assert w.X.shape == (996, 4) and np.allclose(w.X, ref) and np.allclose(w.y, z[4:])
    assert (w.n_train, w.n_val, w.boundary) == (600, 396, 604)
    assert ms.make_windows(x, tau=4, split=0.6).n_train == round(0.6 * 996)


def test_standardization_uses_training_part_only(book):
    x = book.values.copy()
    w = ms.make_windows(x, tau=4, split=600)
    assert w.mean == pytest.approx(x[:604].mean()) and w.std == pytest.approx(x[:604].std())
    leaked = x.copy()
    leaked[604:] = leaked[604:] * 50 + 100  # only validation points change
    w2 = ms.make_windows(leaked, tau=4, split=600)
    assert (w2.mean, w2.std) == (w.mean, w.std)
    assert np.array_equal(w2.X[:600], w.X[:600]) and np.array_equal(w2.y[:600], w.y[:600])
    m1, m2 = ms.make_model("linear", 4), ms.make_model("linear", 4)
    ms.fit(m1, w)
    ms.fit(m2, w2)
    assert np.array_equal(m1.params, m2.params)
    mlp1, mlp2 = ms.make_model("mlp", 4, seed=1), ms.make_model("mlp", 4, seed=1)
    h1 = ms.fit(mlp1, w, epochs=2).history[-1]
    h2 = ms.fit(mlp2, w2, epochs=2).history[-1]
    assert np.array_equal(mlp1.params, mlp2.params) and h1.train_mse == h2.train_mse


def test_linear_coefficients_equal_lstsq(book):
    x = book.values
    for tau, split in ((4, 600), (7, 0.5), (1, 900)):
        w = ms.make_windows(x, tau=tau, split=split)
        m = ms.make_model("linear", tau)
        ms.fit(m, w)
        coef, intercept = m.coefficients()
        n = w.n_train
        A = np.column_stack([np.stack([x[i: i + n] for i in range(tau)], axis=1), np.ones(n)])
        ref = np.linalg.lstsq(A, x[tau: tau + n], rcond=None)[0]
        assert np.allclose(np.append(coef, intercept), ref, atol=1e-6, rtol=0)
        # unstandardized training gives the same model on the original scale
        m_raw = ms.make_model("linear", tau)
        ms.fit(m_raw, ms.make_windows(x, tau=tau, split=split, standardize=False))
        assert np.allclose(np.append(*m_raw.coefficients()), ref, atol=1e-6)


def test_linear_ridge_and_range_mse(book):
    w = ms.make_windows(book.values, tau=4, split=600)
    m = ms.make_model("linear", 4)
    ms.fit(m, w)
    d = m.predict(w.X) - w.y
    assert m.range_mse(w.z, w.boundary, w.z.size) == pytest.approx(np.mean(d[600:] ** 2), rel=1e-9)
    r = ms.make_model("linear", 4, ridge=1e6)
    ms.fit(r, w)
    assert np.abs(r.params[:4]).sum() < 0.01 * np.abs(m.params[:4]).sum()


def _numeric_grad(model, X, y, eps=1e-6):
    g = np.zeros_like(model.params)
    for i in range(model.params.size):
        old = model.params[i]
        model.params[i] = old + eps
        fp = np.mean((model.predict(X) - y) ** 2)
        model.params[i] = old - eps
        fm = np.mean((model.predict(X) - y) ** 2)
        model.params[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def _check_grads(model, B=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, model.tau))
    y = rng.normal(size=B)
    loss = model.loss_and_grad(X, y)
    assert loss == pytest.approx(np.mean((model.predict(X) - y) ** 2), rel=1e-12)
    num = _numeric_grad(model, X, y)
    err = np.abs(model.grads - num).max() / max(1e-8, np.abs(num).max())
    assert err < 1e-6, (model.kind, err)


def test_mlp_forward_matches_reference_twin():
    m = ms.make_model("mlp", 3, hidden=5, seed=2)
    p = m.named_parameters()
    X = np.random.default_rng(1).normal(size=(7, 3))
    ref = np.maximum(X @ p["net.0.weight"].T + p["net.0.bias"], 0) @ p["net.2.weight"].T + p["net.2.bias"]
    assert np.allclose(m.predict(X), ref[:, 0], atol=1e-13)


def test_mlp_gradient_matches_finite_differences():
    _check_grads(ms.make_model("mlp", 3, hidden=4, seed=3))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_recurrent_real_input_gradient_matches_finite_differences(cell):
    _check_grads(ms.make_model(cell, 3, hidden=4, seed=5), B=3)


def test_recurrent_forward_matches_reference_twin():
    m = ms.make_model("rnn", 3, hidden=4, seed=1)
    p = m.named_parameters()
    X = np.random.default_rng(2).normal(size=(5, 3))
    h = np.zeros((5, 4))
    for t in range(3):
        h = np.tanh(X[:, t:t + 1] @ p["rnn.weight_ih_l0"].T + p["rnn.bias_ih_l0"]
                    + h @ p["rnn.weight_hh_l0"].T + p["rnn.bias_hh_l0"])
    assert np.allclose(m.predict(X), (h @ p["fc.weight"].T + p["fc.bias"])[:, 0], atol=1e-12)


def test_book_mlp_reaches_the_noise_floor(book):
    """The book's setup: τ = 4, 600 training windows, MLP 4→10→1, Adam lr 0.01, batch 16, 5 epochs."""
    w = ms.make_windows(book.values, tau=4, split=600, batch=16)
    finals = []
    for seed in range(3):
        m = ms.make_model("mlp", 4, hidden=10, seed=seed)
        seen = []
        res = ms.fit(m, w, epochs=5, batch=16, lr=0.01, optimizer="adam", seed=seed, on_epoch=seen.append)
        assert [h.epoch for h in seen] == [1, 2, 3, 4, 5] and res.history == seen
        finals.append(res.history[-1].train_mse)
    assert all(0.045 < f < 0.07 for f in finals), finals
    ev = ms.evaluate(m, w, ks=(1, 4, 16, 64))
    k = ev.kstep_mse
    assert ev.val_mse < 0.07 and k[1]["val"] == pytest.approx(ev.val_mse)
    assert k[1]["val"] < k[16]["val"] < k[64]["val"]  # multi-step predictions drift
    def wiggle(a):
        return np.nanmedian(np.abs(np.diff(a[w.boundary:])))

    assert wiggle(ev.kstep[64]) < 0.2 * wiggle(ev.one_step)  # and go flat


def test_fit_stops_when_callback_says_so_and_resumes_exactly(book):
    w = ms.make_windows(book.values, tau=4, split=600)
    full = ms.make_model("mlp", 4, seed=0)
    ms.fit(full, w, epochs=3)
    part = ms.make_model("mlp", 4, seed=0)
    res = ms.fit(part, w, epochs=3, on_epoch=lambda info: info.epoch == 2)
    assert res.stopped and len(res.history) == 2
    tensors, extra, meta = ms.checkpoint_state(part, res.optimizer, epoch=res.history[-1].epoch)
    assert set(extra) == {"optim.m", "optim.v"} and meta["optimizer"]["t"] == res.history[-1].steps
    import json

    from safetensors.numpy import load, save

    blob = load(save({**tensors, **extra}, metadata={"seqtui": json.dumps(meta)}))
    again, opt, epoch = ms.restore_state({k: v for k, v in blob.items() if not k.startswith("optim.")},
                                         {k: v for k, v in blob.items() if k.startswith("optim.")},
                                         json.loads(json.dumps(meta)))
    assert epoch == 2
    ms.fit(again, w, epochs=3, start_epoch=epoch, optimizer=opt)
    assert np.array_equal(again.params, full.params)


@pytest.mark.parametrize("kind", ["linear", "mlp", "gru"])
def test_state_round_trip(book, kind):
    w = ms.make_windows(book.values[:200], tau=3, split=0.7, batch=8)
    m = ms.make_model(kind, 3, hidden=4)
    ms.fit(m, w, epochs=1, batch=8)
    tensors, meta = m.state()
    import json

    meta = json.loads(json.dumps(meta))
    assert all(v.dtype == np.float64 for v in tensors.values())
    m2 = ms.from_state(tensors, meta)
    assert np.array_equal(m2.predict(w.X), m.predict(w.X)) and (m2.mean, m2.std) == (m.mean, m.std)
    bad = dict(tensors)
    bad[next(iter(bad))] = np.full_like(next(iter(tensors.values())), np.nan)
    with pytest.raises(CheckpointError):
        ms.from_state(bad, meta)
    with pytest.raises(CheckpointError):
        ms.from_state(tensors, {**meta, "version": 99})


def test_k_step_feeds_predictions_back(book):
    w = ms.make_windows(book.values, tau=4, split=600)
    m = ms.make_model("linear", 4)
    ms.fit(m, w)
    pred = ms.predict_k_step(m, w, ks=(1, 3))
    one = ms.predict_one_step(m, w)
    assert np.allclose(pred[1], one, equal_nan=True) and np.isnan(one[:4]).all()
    wt, c = m.coefficients()
    x = book.values
    t = 100  # 3-step: predict x[98], x[99], then x[100] from x[94..97] only
    hist = list(x[t - 6: t - 2])
    for _ in range(3):
        hist.append(float(np.dot(wt, hist[-4:]) + c))
    assert pred[3][t] == pytest.approx(hist[-1], rel=1e-9)
    assert np.isnan(pred[3][:6]).all() and np.isfinite(pred[3][6:]).all()


def test_tau_sweep_same_validation_targets(book):
    rows = ms.tau_sweep(book.values, max_tau=8, split=600)
    assert [r["tau"] for r in rows] == list(range(1, 9))
    w = ms.make_windows(book.values, tau=4, split=600)
    m = ms.make_model("linear", 4)
    ms.fit(m, w)
    ev = ms.evaluate(m, w, ks=(1,))
    assert rows[3]["val_mse"] == pytest.approx(ev.val_mse, rel=1e-9)
    assert rows[0]["val_mse"] > rows[3]["val_mse"]
    with pytest.raises(ConfigError):
        ms.tau_sweep(book.values[:40], max_tau=32, split=0.6)


def test_bad_settings():
    x = sine_series(n=100).values
    with pytest.raises(ConfigError):
        ms.make_windows(x, tau=0)
    with pytest.raises(ConfigError):
        ms.parse_ks("1,0")
    with pytest.raises(CorpusError, match="at least 6"):
        ms.make_windows(x[:5], tau=4)
    with pytest.raises(CorpusError, match="at least"):
        ms.make_windows(x[:30], tau=4, split=0.6, batch=32)
    with pytest.raises(CorpusError, match="constant"):
        ms.make_windows(np.ones(50), tau=4)
    with pytest.raises(ConfigError):
        ms.make_model("transformer", 4)


def test_real_series_from_statsmodels():
    from seqtui.data.series import list_series

    info = {i.name: i for i in list_series()}["sunspots"]
    if not info.available:
        pytest.skip("statsmodels not installed (pip install 'seqtui[series]')")
    s = load_series("sunspots")
    assert len(s) == 309 and s.time[0] == 1700 and s.values[:3].tolist() == [5.0, 11.0, 16.0]
    co2 = load_series("co2")
    assert len(co2) == 2284 and np.isfinite(co2.values).all()
    res = ms.run_series(ms.SeriesRunConfig(source="sunspots", model="linear", tau=9))
    assert res.evaluation.val_mse < np.var(s.values)
