"""Sequence models on a real-valued series (issue 9, "Working with Sequences"): τ-windows, AR(τ)
least squares, an MLP τ→H→1, RNN/GRU/LSTM with a dense input projection, k-step prediction.

Sizes: N points, τ window (features), M = N - τ windows, H hidden, G gates·H, B batch.

Every model works on the *standardized* series z = (x - mean) / std, with mean and std taken
from the training part only (the points the training windows touch); predictions and every MSE
reported to the user are on the original scale. All arrays are float64 (the shapes are small; the
gradient checks need float64 anyway).

Pipeline::

    s = load_series("sine")                          # seqtui.data.series
    w = make_windows(s.values, tau=4, split=600)     # Windows: X (M, τ), y (M,), n_train, mean, std
    m = make_model("mlp", tau=4, hidden=10, seed=0)
    hist = fit(m, w, epochs=5, batch=16, lr=0.01, optimizer="adam", seed=0, on_epoch=print)
    ev = evaluate(m, w, ks=(1, 4, 16, 64))           # one_step (N,), kstep {k: (N,)}, MSEs
    tensors, meta = m.state(); m2 = from_state(tensors, meta)
    tensors, optim_arrays, meta = checkpoint_state(m, hist.optimizer, epoch=5)   # for safetensors
    m, opt, epoch = restore_state(tensors, optim_arrays, meta)                  # resume: fit(..., optimizer=opt, start_epoch=epoch)
    rows = tau_sweep(s.values, max_tau=32, split=600)    # [{tau, train_mse, val_mse}]
    res = run_series(SeriesRunConfig(source="sine", model="mlp", split=600))   # all of the above

Importing this module imports numpy only; the kernels (``seqtui.kernels.series`` and the
recurrence kernels) load on first use.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from seqtui.errors import CheckpointError, ConfigError, CorpusError
from seqtui.models.threads import kernel_threads

MODELS = ("linear", "mlp", "rnn", "gru", "lstm")
OPTIMIZERS = ("adam", "sgd")
DEFAULT_KS = (1, 4, 16, 64)
MAX_K = 10_000
STATE_VERSION = 1
_CHUNK = 65536  # rows per prediction call (bounds memory on long series)


def _int(value, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def parse_ks(ks) -> tuple[int, ...]:
    """k values for k-step prediction: "1,4,16,64" or a sequence; each a positive integer <= MAX_K."""
    if isinstance(ks, str):
        parts = [p.strip() for p in ks.split(",") if p.strip()]
        if not parts:
            raise ConfigError("k must be a comma-separated list of positive integers, e.g. 1,4,16,64")
        out = []
        for p in parts:
            if not p.isdigit() or int(p) < 1:
                raise ConfigError(f"k must be a positive integer, got {p!r}")
            out.append(int(p))
    else:
        out = [_int(k, "k") for k in ks]
        if not out:
            raise ConfigError("at least one k is needed")
    if max(out) > MAX_K:
        raise ConfigError(f"k must be <= {MAX_K}, got {max(out)}")
    return tuple(sorted(set(out)))


# ============================================================================ windows
@dataclass
class Windows:
    """τ-windows of a standardized series with a chronological train/validation split.

    Window i has features z[i : i+τ] and label z[i+τ]; windows [0, n_train) train, the rest
    validate, so validation targets are the points t >= ``boundary`` = τ + n_train.
    """

    values: np.ndarray  # (N,) original series, float64
    z: np.ndarray       # (N,) standardized series
    tau: int
    X: np.ndarray       # (M, τ) features (standardized), C-contiguous
    y: np.ndarray       # (M,) labels (standardized)
    n_train: int
    mean: float
    std: float
    name: str = ""

    @property
    def boundary(self) -> int:
        return self.tau + self.n_train

    @property
    def n_val(self) -> int:
        return self.X.shape[0] - self.n_train

    def to_json(self) -> dict:
        return {"name": self.name, "length": int(self.values.size), "tau": self.tau, "windows": int(self.X.shape[0]),
                "n_train": self.n_train, "n_val": self.n_val, "boundary": self.boundary,
                "mean": self.mean, "std": self.std}


def split_count(n_windows: int, split) -> int:
    """Training windows for ``split``: an integer count, or a fraction in (0, 1) of the windows."""
    if isinstance(split, bool):
        raise ConfigError(f"split must be a count or a fraction in (0, 1), got {split!r}")
    if isinstance(split, str):
        try:
            split = float(split) if any(c in split for c in ".eE") else int(split)
        except ValueError:
            raise ConfigError(f"split must be a count or a fraction in (0, 1), got {split!r}") from None
    if isinstance(split, (float, np.floating)):
        f = float(split)
        if not 0.0 < f < 1.0:
            if f >= 1.0 and f.is_integer():
                return int(f)
            raise ConfigError(f"split fraction must be in (0, 1), got {split!r}")
        return int(round(f * n_windows))
    if isinstance(split, (int, np.integer)):
        if split < 1:
            raise ConfigError(f"split count must be >= 1 window, got {split}")
        return int(split)
    raise ConfigError(f"split must be a count or a fraction in (0, 1), got {split!r}")


def min_length(tau: int, split, batch: int = 1) -> int:
    """The shortest series with at least ``batch`` (and >= 1) training windows and one validation
    window (a count split smaller than the batch never fits: ConfigError)."""
    tau = _int(tau, "tau")
    batch = max(1, _int(batch, "batch"))
    probe = split_count(1000, split)
    if not isinstance(split, (float, np.floating)) or float(split) >= 1.0:
        if probe < batch:
            raise ConfigError(f"split {split!r} is fewer training windows than one batch of {batch}")
        return tau + probe + 1
    f = float(split)
    m = max(2, int((batch - 0.5) / f) - 2)
    while not (split_count(m, f) >= batch and m - split_count(m, f) >= 1):
        m += 1
    return tau + m


def make_windows(values, tau: int, split=0.6, standardize: bool = True, batch: int = 1,
                 name: str = "") -> Windows:
    """Standardize with training-part statistics, then cut the τ-windows (a Numba kernel).

    ``batch``: the minibatch the training will use; the training part must hold at least one.
    CorpusError when the series is too short (with the minimum length) or its training part is
    constant; ConfigError for τ <= 0 or a bad split.
    """
    from seqtui.kernels import series as k

    tau = _int(tau, "tau")
    batch = _int(batch, "batch")
    x = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    label = f"series {name!r}" if name else "the series"
    n = x.size
    if n < tau + 2:
        raise CorpusError(f"{label} has {n} points; τ = {tau} needs at least {tau + 2}")
    if not np.all(np.isfinite(x)):
        i = int(np.flatnonzero(~np.isfinite(x))[0])
        raise CorpusError(f"{label} has a NaN/inf value at position {i}")
    M = n - tau
    n_train = split_count(M, split)
    if n_train < max(1, batch) or n_train >= M:
        need = min_length(tau, split, batch)
        what = (f"{n_train} training windows, fewer than one batch of {batch}" if n_train < max(1, batch)
                else f"no validation windows (split {split!r} >= the {M} windows)")
        raise CorpusError(f"{label} has {n} points: {what}; τ = {tau}, split {split!r} and batch {batch} "
                          f"need at least {need} points")
    train = x[: tau + n_train]
    if standardize:
        mean = float(train.mean())
        std = float(train.std())
        if not std > 0 or not math.isfinite(std) or std < 1e-12 * max(1.0, abs(mean)):
            raise CorpusError(f"{label} is constant over its training part (std 0): nothing to predict")
    else:
        mean, std = 0.0, 1.0
        if float(train.std()) == 0.0:
            raise CorpusError(f"{label} is constant over its training part (std 0): nothing to predict")
    X = np.empty((M, tau), np.float64)
    y = np.empty(M, np.float64)
    k.windows_forward(X, y, x, mean, 1.0 / std)
    z = (x - mean) / std
    return Windows(values=x, z=z, tau=tau, X=X, y=y, n_train=n_train, mean=mean, std=std, name=name)


# ============================================================================ models
class _Base:
    kind = ""

    def __init__(self, tau: int, seed: int = 0):
        self.tau = _int(tau, "tau")
        self.seed = int(seed)
        self.mean = 0.0
        self.std = 1.0
        self._shapes: list[tuple[str, tuple[int, ...]]] = self.parameter_shapes()
        sizes = [math.prod(s) for _, s in self._shapes]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.params = np.zeros(int(self._offsets[-1]), np.float64)
        self.grads = np.zeros_like(self.params)

    # -- parameters ----------------------------------------------------------------------
    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _view(self, flat: np.ndarray, name: str) -> np.ndarray:
        i = [n for n, _ in self._shapes].index(name)
        return flat[self._offsets[i]: self._offsets[i + 1]].reshape(self._shapes[i][1])

    def named_parameters(self) -> dict[str, np.ndarray]:
        """Views into ``params`` by PyTorch-style name (standardized scale)."""
        return {n: self._view(self.params, n) for n, _ in self._shapes}

    def named_grads(self) -> dict[str, np.ndarray]:
        return {n: self._view(self.grads, n) for n, _ in self._shapes}

    @property
    def num_params(self) -> int:
        return int(self.params.size)

    def config(self) -> dict:
        return {"kind": self.kind, "tau": self.tau, "seed": self.seed}

    # -- state for checkpoints -------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(named float64 arrays, JSON-able metadata) — what a safetensors checkpoint holds."""
        tensors = {n: v.copy() for n, v in self.named_parameters().items()}
        meta = {"version": STATE_VERSION, "model": self.config(), "mean": self.mean, "std": self.std}
        return tensors, meta

    def load_named(self, tensors: dict[str, np.ndarray]) -> None:
        expected = dict(self._shapes)
        for name in tensors:
            if name not in expected:
                raise CheckpointError(f"unexpected tensor {name!r} for a {self.kind} model")
        for name, shape in expected.items():
            if name not in tensors:
                raise CheckpointError(f"missing tensor {name!r}")
            arr = np.asarray(tensors[name])
            if tuple(arr.shape) != shape:
                raise CheckpointError(f"{name} has shape {tuple(arr.shape)}, expected {shape}")
            if arr.dtype.kind != "f":
                raise CheckpointError(f"{name} has dtype {arr.dtype}, expected float")
            if not np.all(np.isfinite(arr)):
                raise CheckpointError(f"{name} contains NaN/Inf")
        for name in expected:
            self._view(self.params, name)[...] = tensors[name]

    # -- prediction ------------------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Standardized predictions (M,) for standardized windows X (M, τ), in row chunks."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.tau:
            raise ConfigError(f"windows must have shape (M, {self.tau}), got {X.shape}")
        out = np.empty(X.shape[0], np.float64)
        for i in range(0, X.shape[0], _CHUNK):
            out[i: i + _CHUNK] = self._predict(X[i: i + _CHUNK])
        return out

    def _predict(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def loss_and_grad(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean squared error over the rows (standardized scale); overwrites ``grads``."""
        raise ConfigError(f"the {self.kind} model is fitted in closed form, not by gradients")


class LinearAR(_Base):
    """AR(τ): z_t ≈ w · z[t-τ : t] + c, fitted by (ridge) least squares in closed form."""

    kind = "linear"

    def __init__(self, tau: int, ridge: float = 0.0, seed: int = 0):
        ridge = float(ridge)
        if not (ridge >= 0 and math.isfinite(ridge)):
            raise ConfigError(f"ridge must be >= 0, got {ridge!r}")
        self.ridge = ridge
        super().__init__(tau, seed)

    def parameter_shapes(self):
        return [("linear.weight", (1, self.tau)), ("linear.bias", (1,))]

    def config(self) -> dict:
        return {**super().config(), "ridge": self.ridge}

    def fit_range(self, z: np.ndarray, t0: int, t1: int) -> None:
        """Least squares over targets t in [t0, t1) of the standardized series z."""
        A, b = _normal_equations(z, self.tau, t0, t1)
        if self.ridge > 0:
            A[np.arange(self.tau), np.arange(self.tau)] += self.ridge
        coef = _solve(A, b)
        self.params[: self.tau] = coef[: self.tau]
        self.params[self.tau] = coef[self.tau]

    def fit_windows(self, w: Windows) -> None:
        self.mean, self.std = w.mean, w.std
        self.fit_range(w.z, w.tau, w.boundary)

    def coefficients(self) -> tuple[np.ndarray, float]:
        """(τ weights on x[t-τ], …, x[t-1], intercept) on the original scale of the series."""
        w = self.params[: self.tau].copy()
        c = float(self.params[self.tau])
        return w, float(self.mean * (1.0 - w.sum()) + self.std * c)

    def _predict(self, X):
        return X @ self.params[: self.tau] + self.params[self.tau]

    def range_mse(self, z: np.ndarray, t0: int, t1: int) -> float:
        """Mean squared 1-step error (standardized) over targets [t0, t1), without building windows."""
        if t1 <= t0:
            return float("nan")
        A, b = _normal_equations(z, self.tau, t0, t1)
        c = self.params
        zz = float(np.dot(z[t0:t1], z[t0:t1]))
        return max(0.0, float(c @ A @ c - 2.0 * c @ b + zz)) / (t1 - t0)


def _normal_equations(z, tau, t0, t1):
    from seqtui.kernels import series as k

    A = np.empty((tau + 1, tau + 1), np.float64)
    b = np.empty(tau + 1, np.float64)
    k.ar_normal_equations(A, b, z, tau, t0, t1)
    return A, b


def _solve(A, b):
    try:
        L = np.linalg.cholesky(A)
        return np.linalg.solve(L.T, np.linalg.solve(L, b))
    except np.linalg.LinAlgError:  # singular (e.g. fewer windows than τ + 1): minimum-norm solution
        return np.linalg.lstsq(A, b, rcond=None)[0]


class MLP(_Base):
    """τ → H → 1 with ReLU (PyTorch ``nn.Sequential(Linear(τ, H), ReLU(), Linear(H, 1))``),
    Xavier-uniform weights, PyTorch default biases U(±1/√fan_in)."""

    kind = "mlp"

    def __init__(self, tau: int, hidden: int = 10, seed: int = 0):
        self.hidden = _int(hidden, "hidden")
        super().__init__(tau, seed)
        rng = np.random.default_rng(seed)
        H, T = self.hidden, self.tau
        p = self.named_parameters()
        p["net.0.weight"][...] = rng.uniform(-1, 1, (H, T)) * math.sqrt(6.0 / (T + H))
        p["net.0.bias"][...] = rng.uniform(-1, 1, H) / math.sqrt(T)
        p["net.2.weight"][...] = rng.uniform(-1, 1, (1, H)) * math.sqrt(6.0 / (H + 1))
        p["net.2.bias"][...] = rng.uniform(-1, 1, 1) / math.sqrt(H)
        self._hid = np.zeros((0, H))

    def parameter_shapes(self):
        H, T = self.hidden, self.tau
        return [("net.0.weight", (H, T)), ("net.0.bias", (H,)), ("net.2.weight", (1, H)), ("net.2.bias", (1,))]

    def config(self) -> dict:
        return {**super().config(), "hidden": self.hidden}

    def _forward(self, X):
        from seqtui.kernels import series as k

        M = X.shape[0]
        if self._hid.shape[0] < M:
            self._hid = np.empty((M, self.hidden))
        hid = self._hid[:M]
        out = np.empty(M)
        k.mlp_forward(out, hid, self.params, X, self.hidden)
        return out, hid

    def _predict(self, X):
        return self._forward(X)[0]

    def loss_and_grad(self, X, y) -> float:
        from seqtui.kernels import series as k

        X = np.ascontiguousarray(X, dtype=np.float64)
        out, hid = self._forward(X)
        diff = out - y
        self.grads[:] = 0.0
        k.mlp_backward(self.grads, self.params, X, hid, diff * (2.0 / X.shape[0]), self.hidden)
        return float(np.dot(diff, diff) / X.shape[0])


class _Recurrence:
    """The one place that calls the recurrence kernels ``seqtui.kernels.rnn/gru/lstm``.

    Their signatures belong to the kernel engineer; if they change, adapt ``forward``/``backward``
    here only. Buffers are time-major: hs (T+1, B, H), xg/dgi/dgh (T, B, G). nparts = 1 on one
    thread with single-threaded BLAS (the series models are small: a second thread or BLAS pool
    only oversubscribes the cores; one part also means W_hh needs no regrouping).
    """

    def __init__(self, cell: str, hidden: int):
        self.cell = cell
        self.H = hidden
        self.G = {"rnn": 1, "gru": 3, "lstm": 4}[cell] * hidden

    def forward(self, xg: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray) -> dict:
        """Run the cell over T steps from a zero state; returns the buffers backward needs."""
        with kernel_threads(1):
            return self._forward(xg, w_hh, b_hh)

    def backward(self, dhs: np.ndarray, buf: dict, w_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dgi, dgh): ∂L/∂xg and ∂L/∂(h_{t-1} W_hhᵀ + b_hh), full BPTT over the window."""
        with kernel_threads(1):
            return self._backward(dhs, buf, w_hh)

    def _pack(self, w_hh: np.ndarray, forward: bool) -> tuple[np.ndarray, np.ndarray]:
        """W_hh as the recurrence kernels' panel strips, one part: (panel, strip0)."""
        from seqtui.kernels import linear
        from seqtui.kernels._math import panel_index

        cols, strip0 = panel_index(self.H, self.G // self.H, 1, forward)
        K = w_hh.shape[1] if forward else w_hh.shape[0]
        wp = np.zeros(cols.size * K, dtype=w_hh.dtype)
        linear.pack_panel(wp, np.ascontiguousarray(w_hh), cols, forward, 1)
        return wp, strip0

    def _forward(self, xg, w_hh, b_hh):
        from numba import get_num_threads

        from seqtui.kernels import gru, lstm, rnn
        from seqtui.kernels._math import row_split

        T, B, _ = xg.shape
        H = self.H
        buf = {"hs": np.zeros((T + 1, B, H)), "xg": xg}
        wp, s0 = self._pack(w_hh, True)
        xsrc = np.ascontiguousarray(xg).reshape(T * B, -1)  # row t·B + b is step t of sequence b
        xrow = np.arange(T * B, dtype=np.int32).reshape(T, B)
        split = row_split(get_num_threads(), B, wp.nbytes)
        if self.cell == "rnn":
            rnn.rnn_forward(buf["hs"], xsrc, xrow, wp, s0, 1, *split)
        elif self.cell == "gru":
            buf["acts"] = np.zeros((T, B, 4 * H))
            gru.gru_forward(buf["hs"], buf["acts"], xsrc, xrow, wp, s0, np.ascontiguousarray(b_hh), 1,
                            *split)
        else:
            buf["cs"] = np.zeros((T + 1, B, H))
            buf["acts"] = np.zeros((T, B, 5 * H))
            lstm.lstm_forward(buf["hs"], buf["cs"], buf["acts"], xsrc, xrow, wp, s0, 1, *split)
        return buf

    def _backward(self, dhs, buf, w_hh):
        from numba import get_num_threads

        from seqtui.kernels import gru, lstm, rnn
        from seqtui.kernels._math import MR, row_split

        T, B, H = dhs.shape
        wp, s0 = self._pack(w_hh, False)
        split = row_split(get_num_threads(), B, wp.nbytes)
        norms = np.zeros((-(-B // MR), T), np.float64)  # per MR-row block (one part)
        carry = np.ones(T, np.float64)
        dgi = np.zeros((T, B, self.G))
        if self.cell == "rnn":
            rnn.rnn_backward(dgi, norms, dhs, buf["hs"], wp, s0, carry, 1, *split)
            return dgi, dgi
        if self.cell == "gru":
            dgh = np.zeros((T, B, self.G))
            gru.gru_backward(dgi, dgh, norms, dhs, buf["hs"], buf["acts"], wp, s0, carry, 1, *split)
            return dgi, dgh
        lstm.lstm_backward(dgi, norms, dhs, buf["cs"], buf["acts"], wp, s0, carry, 1, *split)
        return dgi, dgi


class Recurrent(_Base):
    """RNN/GRU/LSTM over the τ values of a window (one real feature per step, a dense input
    projection instead of the one-hot gather), a linear head on the last hidden state, MSE.
    PyTorch names, shapes and init U(±1/√H): rnn.weight_ih_l0 (G, 1), rnn.weight_hh_l0 (G, H),
    rnn.bias_ih_l0, rnn.bias_hh_l0 (G,), fc.weight (1, H), fc.bias (1,)."""

    def __init__(self, cell: str, tau: int, hidden: int = 16, seed: int = 0):
        if cell not in ("rnn", "gru", "lstm"):
            raise ConfigError(f"unknown cell {cell!r} (choose rnn, gru or lstm)")
        self.kind = cell
        self.hidden = _int(hidden, "hidden")
        self.features = 1
        self._cell = _Recurrence(cell, self.hidden)
        super().__init__(tau, seed)
        bound = 1.0 / math.sqrt(self.hidden)
        self.params[:] = np.random.default_rng(seed).uniform(-bound, bound, self.params.size)

    def parameter_shapes(self):
        G, H, F = self._cell.G, self.hidden, self.features
        return [("rnn.weight_ih_l0", (G, F)), ("rnn.weight_hh_l0", (G, H)), ("rnn.bias_ih_l0", (G,)),
                ("rnn.bias_hh_l0", (G,)), ("fc.weight", (1, H)), ("fc.bias", (1,))]

    def config(self) -> dict:
        return {**super().config(), "hidden": self.hidden}

    def _forward(self, X):
        p = self.named_parameters()
        H = self.hidden
        xs = np.ascontiguousarray(X.T)[:, :, None]  # (T, B, F)
        bias = p["rnn.bias_ih_l0"] + p["rnn.bias_hh_l0"]
        if self.kind == "gru":  # b_hn stays inside r ⊙ (h W_hnᵀ + b_hn)
            bias[2 * H:] = p["rnn.bias_ih_l0"][2 * H:]
        xg = np.ascontiguousarray(xs @ p["rnn.weight_ih_l0"].T + bias)
        buf = self._cell.forward(xg, p["rnn.weight_hh_l0"], p["rnn.bias_hh_l0"])
        out = buf["hs"][-1] @ p["fc.weight"][0] + p["fc.bias"][0]
        return out, buf, xs

    def _predict(self, X):
        return self._forward(X)[0]

    def loss_and_grad(self, X, y) -> float:
        X = np.ascontiguousarray(X, dtype=np.float64)
        T, B, H = self.tau, X.shape[0], self.hidden
        p, g = self.named_parameters(), self.named_grads()
        out, buf, xs = self._forward(X)
        diff = out - y
        dout = diff * (2.0 / B)
        h_last = buf["hs"][-1]
        g["fc.weight"][0] = dout @ h_last
        g["fc.bias"][0] = dout.sum()
        dhs = np.zeros((T, B, H))
        dhs[T - 1] = dout[:, None] * p["fc.weight"][0][None, :]
        dgi, dgh = self._cell.backward(dhs, buf, p["rnn.weight_hh_l0"])
        G = self._cell.G
        g["rnn.weight_ih_l0"][...] = dgi.reshape(T * B, G).T @ xs.reshape(T * B, self.features)
        g["rnn.bias_ih_l0"][...] = dgi.sum(axis=(0, 1))
        g["rnn.weight_hh_l0"][...] = dgh.reshape(T * B, G).T @ buf["hs"][:-1].reshape(T * B, H)
        g["rnn.bias_hh_l0"][...] = dgh.sum(axis=(0, 1))
        return float(np.dot(diff, diff) / B)


def make_model(kind: str, tau: int, hidden: int | None = None, seed: int = 0, ridge: float = 0.0):
    """A fresh model: "linear" (ridge), "mlp" (hidden default 10), "rnn"/"gru"/"lstm" (hidden default 16)."""
    if kind == "linear":
        return LinearAR(tau, ridge=ridge, seed=seed)
    if kind == "mlp":
        return MLP(tau, hidden=10 if hidden is None else hidden, seed=seed)
    if kind in ("rnn", "gru", "lstm"):
        return Recurrent(kind, tau, hidden=16 if hidden is None else hidden, seed=seed)
    raise ConfigError(f"unknown series model {kind!r} (choose {', '.join(MODELS)})")


def from_state(tensors: dict[str, np.ndarray], meta: dict):
    """Rebuild a model from :meth:`state` output (CheckpointError on a malformed state)."""
    try:
        if int(meta.get("version", -1)) != STATE_VERSION:
            raise CheckpointError(f"unsupported series model state version {meta.get('version')!r}")
        cfg = dict(meta["model"])
        kind = cfg.pop("kind")
        mean, std = float(meta["mean"]), float(meta["std"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"bad series model metadata: {exc}") from None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise CheckpointError(f"bad series model metadata: mean {mean}, std {std}")
    try:
        model = make_model(kind, cfg["tau"], hidden=cfg.get("hidden"), seed=cfg.get("seed", 0),
                           ridge=cfg.get("ridge", 0.0))
    except (ConfigError, KeyError) as exc:
        raise CheckpointError(f"bad series model metadata: {exc}") from None
    model.load_named(tensors)
    model.mean, model.std = mean, std
    return model


def checkpoint_state(model, optimizer=None, epoch: int = 0, extra_meta: dict | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """(model tensors, ``optim.*`` arrays, JSON metadata) for one safetensors file: the model's
    named float64 arrays, Adam's moments as ``optim.m``/``optim.v``, and in the metadata the model
    config, mean/std, epochs completed and the optimizer's scalars. Inverse: :func:`restore_state`."""
    tensors, meta = model.state()
    extra: dict[str, np.ndarray] = {}
    if optimizer is not None:
        scalars = {}
        for key, value in optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                extra[f"optim.{key}"] = value
            else:
                scalars[key] = value
        meta["optimizer"] = scalars
    meta["epoch"] = int(epoch)
    if extra_meta:
        meta.update(extra_meta)
    return tensors, extra, meta


def restore_state(tensors: dict[str, np.ndarray], extra: dict[str, np.ndarray], meta: dict):
    """(model, optimizer or None, epochs completed) from :func:`checkpoint_state` output; pass them
    to ``fit(model, windows, optimizer=opt, start_epoch=epoch)`` to resume exactly."""
    from seqtui.models.optim import SGD, Adam

    model = from_state(tensors, meta)
    opt = None
    scalars = meta.get("optimizer")
    if scalars is not None:
        if not isinstance(scalars, dict) or scalars.get("kind") not in (0, 1):
            raise CheckpointError(f"bad optimizer state in a series checkpoint: {scalars!r}")
        d = dict(scalars)
        for key, value in extra.items():
            if key.startswith("optim."):
                d[key[len("optim."):]] = np.asarray(value)
        opt = SGD(1.0) if d["kind"] == 0 else Adam()
        opt.load_state_dict(d)
    try:
        epoch = int(meta.get("epoch", 0))
    except (TypeError, ValueError):
        raise CheckpointError(f"bad epoch in a series checkpoint: {meta.get('epoch')!r}") from None
    return model, opt, epoch


# ============================================================================ training
@dataclass
class EpochInfo:
    """What ``fit`` reports after each epoch (MSEs on the original scale)."""

    epoch: int            # epochs completed (1-based)
    steps: int            # optimizer steps so far
    train_loss: float     # mean of the minibatch losses during the epoch
    train_mse: float      # 1-step MSE over all training windows after the epoch
    val_mse: float        # 1-step MSE over the validation windows after the epoch
    seconds: float
    lr: float
    grad_norm: float      # the last step's pre-clip gradient norm (standardized scale)

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


@dataclass
class FitResult:
    history: list[EpochInfo] = field(default_factory=list)
    optimizer: object | None = None   # the SGD/Adam instance (state_dict() for checkpoints)
    stopped: bool = False             # True when on_epoch asked to stop
    seconds: float = 0.0


def make_optimizer(name: str, lr: float):
    from seqtui.models.optim import SGD, Adam

    if name == "adam":
        return Adam(lr)
    if name == "sgd":
        return SGD(lr)
    raise ConfigError(f"unknown optimizer {name!r} (choose {', '.join(OPTIMIZERS)})")


def fit(model, windows: Windows, epochs: int = 5, batch: int = 16, lr: float = 0.01, optimizer="adam",
        seed: int = 0, clip: float | None = None, start_epoch: int = 0,
        on_epoch: Callable[[EpochInfo], bool | None] | None = None,
        on_step: Callable[[int, float], None] | None = None) -> FitResult:
    """Train ``model`` on the training windows: shuffled minibatches (order from
    ``default_rng((seed, epoch))``, so epoch e can be resumed exactly), MSE, Adam or SGD, optional
    clipping by global norm. ``optimizer`` is "adam"/"sgd" or an SGD/Adam instance (resume: load its
    state_dict first). ``on_epoch(info)`` returning True stops after that epoch. The linear model is
    solved in closed form (one EpochInfo). TrainingDiverged on a NaN/Inf loss.
    """
    with np.errstate(all="ignore"):  # a diverging loss is reported as TrainingDiverged, not warnings
        return _fit(model, windows, epochs, batch, lr, optimizer, seed, clip, start_epoch, on_epoch, on_step)


def _fit(model, windows, epochs, batch, lr, optimizer, seed, clip, start_epoch, on_epoch, on_step) -> FitResult:
    from seqtui.errors import TrainingDiverged
    from seqtui.models.optim import clip_grad_norm, grad_norm

    if model.tau != windows.tau:
        raise ConfigError(f"model τ = {model.tau} but windows τ = {windows.tau}")
    epochs = _int(epochs, "epochs", 0)
    batch = _int(batch, "batch")
    start_epoch = _int(start_epoch, "start_epoch", 0)
    if clip is not None and not float(clip) > 0:
        raise ConfigError(f"clip must be > 0, got {clip!r}")
    if windows.n_train < batch and model.kind != "linear":
        raise CorpusError(f"{windows.n_train} training windows are fewer than one batch of {batch}")
    model.mean, model.std = windows.mean, windows.std
    result = FitResult()
    t_start = time.perf_counter()
    s2 = windows.std ** 2
    if model.kind == "linear":
        model.fit_windows(windows)
        tr, va = _split_mse(model, windows)
        info = EpochInfo(1, 0, tr, tr, va, time.perf_counter() - t_start, 0.0, 0.0)
        result.history.append(info)
        if on_epoch is not None:
            on_epoch(info)
        result.seconds = time.perf_counter() - t_start
        return result
    opt = make_optimizer(optimizer, lr) if isinstance(optimizer, str) else optimizer
    result.optimizer = opt
    Xtr, ytr = windows.X[: windows.n_train], windows.y[: windows.n_train]
    steps = start_epoch * math.ceil(windows.n_train / batch)
    gnorm = float("nan")
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        perm = np.random.default_rng((seed, epoch)).permutation(windows.n_train)
        total, count = 0.0, 0
        for i in range(0, windows.n_train, batch):
            idx = perm[i: i + batch]
            loss = model.loss_and_grad(Xtr[idx], ytr[idx])
            if not math.isfinite(loss):
                raise TrainingDiverged(f"the loss became {loss} at epoch {epoch + 1}, step {steps + 1}; "
                                       "lower the learning rate or set a clip")
            if clip is not None:
                gnorm, _ = clip_grad_norm(model.grads, float(clip))
            elif on_step is not None or i + batch >= windows.n_train:
                gnorm = grad_norm(model.grads)
            opt.step(model.params, model.grads)
            steps += 1
            total += loss * idx.size
            count += idx.size
            if on_step is not None:
                on_step(steps, loss * s2)
        tr, va = _split_mse(model, windows)
        info = EpochInfo(epoch + 1, steps, total / count * s2, tr, va, time.perf_counter() - t0, opt.lr, gnorm)
        result.history.append(info)
        if on_epoch is not None and on_epoch(info) is True:
            result.stopped = True
            break
    result.seconds = time.perf_counter() - t_start
    return result


def _split_mse(model, w: Windows) -> tuple[float, float]:
    """1-step MSE (original scale) over the training and the validation windows."""
    s2 = w.std ** 2
    if model.kind == "linear":
        return (model.range_mse(w.z, w.tau, w.boundary) * s2, model.range_mse(w.z, w.boundary, w.z.size) * s2)
    d = model.predict(w.X) - w.y
    d2 = d * d
    tr = float(d2[: w.n_train].mean()) * s2
    va = float(d2[w.n_train:].mean()) * s2 if w.n_val else float("nan")
    return tr, va


# ============================================================================ prediction
def predict_one_step(model, w: Windows) -> np.ndarray:
    """(N,) original-scale 1-step-ahead predictions: out[t] from x[t-τ : t]; NaN for t < τ."""
    out = np.full(w.values.size, np.nan)
    out[w.tau:] = model.predict(w.X) * w.std + w.mean
    return out


def predict_k_step(model, w: Windows, ks=DEFAULT_KS) -> dict[int, np.ndarray]:
    """{k: (N,)} original-scale k-step-ahead predictions from every start point, feeding each
    prediction back as an input: out[k][t] is predicted from x[t-k-τ+1 : t-k+1] alone (k = 1 is the
    1-step prediction); NaN where t < τ + k - 1."""
    ks = parse_ks(ks)
    kmax = max(ks)
    tau, n = w.tau, w.values.size
    res = {k: np.full(n, np.nan) for k in ks}
    M = w.X.shape[0]  # start points s = 0..M-1 (observations z[s : s+τ])
    rows = max(1, _CHUNK // max(1, kmax // 16 + 1))
    for s0 in range(0, M, rows):
        s1 = min(M, s0 + rows)
        F = np.empty((s1 - s0, tau + kmax))
        F[:, :tau] = w.X[s0:s1]
        for i in range(kmax):
            F[:, tau + i] = model.predict(np.ascontiguousarray(F[:, i: i + tau]))
        for k in ks:
            # row s predicts target t = s + τ + k - 1; keep the targets inside the series
            last = min(s1, n - tau - k + 1)
            if last > s0:
                res[k][s0 + tau + k - 1: last + tau + k - 1] = F[: last - s0, tau + k - 1] * w.std + w.mean
    return res


@dataclass
class Evaluation:
    """Everything a Series screen plots: the data, 1-step and k-step predictions, MSE vs k."""

    values: np.ndarray                 # (N,) the series
    boundary: int                      # first validation target index
    one_step: np.ndarray               # (N,) 1-step predictions (NaN for t < τ)
    kstep: dict[int, np.ndarray]       # {k: (N,)} k-step predictions (NaN where undefined)
    train_mse: float                   # 1-step, original scale
    val_mse: float
    kstep_mse: dict[int, dict]         # {k: {"train": mse|nan, "val": mse|nan, "n_train": int, "n_val": int}}

    def to_json(self, arrays: bool = False) -> dict:
        def f(v):
            return None if not math.isfinite(v) else float(v)
        d = {"train_mse": f(self.train_mse), "val_mse": f(self.val_mse), "boundary": self.boundary,
             "kstep_mse": {str(k): f(v["val"]) for k, v in self.kstep_mse.items()},
             "kstep_train_mse": {str(k): f(v["train"]) for k, v in self.kstep_mse.items()}}
        if arrays:
            d["one_step"] = [f(v) for v in self.one_step]
            d["kstep"] = {str(k): [f(v) for v in a] for k, a in self.kstep.items()}
        return d


def evaluate(model, w: Windows, ks=DEFAULT_KS) -> Evaluation:
    """1-step predictions over the whole series, k-step predictions for every k, and MSE per k on
    the training targets (t < boundary) and on the validation targets (t >= boundary)."""
    ks = parse_ks(ks)
    with np.errstate(all="ignore"):  # fed-back predictions of a poor model may overflow: inf MSE, no warnings
        one = predict_one_step(model, w)
        kp = predict_k_step(model, w, ks)
    if 1 in kp:
        kp[1] = one  # the same numbers; one array
    b = w.boundary
    x = w.values

    def mse(pred, lo, hi):
        d = pred[lo:hi] - x[lo:hi]
        d = d[np.isfinite(d)]
        return (float(np.mean(d * d)) if d.size else float("nan")), int(d.size)

    table = {}
    for k in ks:
        tr, ntr = mse(kp[k], 0, b)
        va, nva = mse(kp[k], b, x.size)
        table[k] = {"train": tr, "val": va, "n_train": ntr, "n_val": nva}
    tr1, _ = mse(one, 0, b)
    va1, _ = mse(one, b, x.size)
    return Evaluation(values=x, boundary=b, one_step=one, kstep={k: kp[k] for k in ks}, train_mse=tr1,
                      val_mse=va1, kstep_mse=table)


def tau_sweep(values, max_tau: int = 32, split=0.6, tau: int = 4, ridge: float = 0.0,
              standardize: bool = True, name: str = "") -> list[dict]:
    """Validation (and training) 1-step MSE of the linear AR(τ') model for τ' = 1..max_tau.

    Every τ' uses the same split point (the ``boundary`` of ``make_windows(values, tau, split)``)
    and the same standardization, so the validation targets are identical across τ'.
    """
    max_tau = _int(max_tau, "max_tau")
    base = make_windows(values, tau, split, standardize, name=name)
    b, z = base.boundary, base.z
    if b - max_tau < max_tau + 1:
        raise ConfigError(f"max τ = {max_tau} is too large: the training part has {b} points "
                          f"(needs at least {2 * max_tau + 1})")
    s2 = base.std ** 2
    rows = []
    for t in range(1, max_tau + 1):
        m = LinearAR(t, ridge=ridge)
        m.mean, m.std = base.mean, base.std
        m.fit_range(z, t, b)
        rows.append({"tau": t, "train_mse": m.range_mse(z, t, b) * s2, "val_mse": m.range_mse(z, b, z.size) * s2})
    return rows


# ============================================================================ one call for a run
@dataclass
class SeriesRunConfig:
    """Everything a series run needs (what ``seqtui series fit`` takes; the engine can store it whole)."""

    source: str = "sine"
    tau: int = 4
    split: float | int = 0.6       # training windows: a count, or a fraction of the windows
    standardize: bool = True
    model: str = "mlp"             # linear | mlp | rnn | gru | lstm
    hidden: int | None = None      # mlp 10, rnn/gru/lstm 16
    epochs: int = 5
    batch: int = 16
    lr: float = 0.01
    optimizer: str = "adam"        # adam | sgd
    clip: float | None = None      # global-norm clipping (recurrent models: e.g. 1.0)
    ridge: float = 0.0             # linear only
    seed: int = 0                  # init and shuffling
    ks: tuple[int, ...] = DEFAULT_KS

    def validate(self) -> "SeriesRunConfig":
        if self.model not in MODELS:
            raise ConfigError(f"unknown series model {self.model!r} (choose {', '.join(MODELS)})")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r} (choose {', '.join(OPTIMIZERS)})")
        _int(self.tau, "tau")
        _int(self.epochs, "epochs", 0)
        _int(self.batch, "batch")
        if self.hidden is not None:
            _int(self.hidden, "hidden")
        try:
            lr = float(self.lr)
            clip = None if self.clip is None else float(self.clip)
            ridge = float(self.ridge)
        except (TypeError, ValueError):
            raise ConfigError(f"lr, clip and ridge must be numbers, got {self.lr!r}, {self.clip!r}, "
                              f"{self.ridge!r}") from None
        if not (lr > 0 and math.isfinite(lr)):
            raise ConfigError(f"learning rate must be > 0, got {self.lr!r}")
        if clip is not None and not (clip > 0 and math.isfinite(clip)):
            raise ConfigError(f"clip must be > 0, got {self.clip!r}")
        if not (ridge >= 0 and math.isfinite(ridge)):
            raise ConfigError(f"ridge must be >= 0, got {self.ridge!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ConfigError("a series source is needed: a name from `seqtui series list`, or PATH[:COLUMN]")
        _int(self.seed, "seed", 0)
        self.ks = parse_ks(self.ks)
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ks"] = list(self.ks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesRunConfig":
        if not isinstance(d, dict):
            raise ConfigError("a series run config must be a JSON object")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown series setting(s): {', '.join(sorted(unknown))}")
        return cls(**d).validate()

    def label(self) -> str:
        """The model in a few characters, for listings: ``mlp τ=4 H=10``, ``linear τ=4``."""
        if self.model == "linear":
            return f"linear τ={self.tau}" + (f" ridge={self.ridge:g}" if self.ridge else "")
        hidden = self.hidden if self.hidden is not None else (10 if self.model == "mlp" else 16)
        return f"{self.model} τ={self.tau} H={hidden}"


@dataclass
class SeriesResult:
    config: SeriesRunConfig
    windows: Windows
    model: object
    fit: FitResult
    evaluation: Evaluation

    def to_json(self) -> dict:
        ev = self.evaluation.to_json()
        d = {"source": self.windows.name, "model": self.config.model, "tau": self.windows.tau,
             "num_params": self.model.num_params, **self.windows.to_json(), **ev,
             "epochs": [h.to_json() for h in self.fit.history], "seconds": self.fit.seconds,
             "config": self.config.to_dict()}
        d["source"] = self.windows.name
        if self.config.model == "linear":
            w, c = self.model.coefficients()
            d["coef"] = [float(v) for v in w] + [c]
        return d


def run_series(cfg: SeriesRunConfig, on_epoch=None, on_step=None, series=None) -> SeriesResult:
    """Load the source, cut the windows, build, fit and evaluate the model in this process."""
    from seqtui.data.series import load_series

    cfg.validate()
    s = series if series is not None else load_series(cfg.source)
    batch = 1 if cfg.model == "linear" else cfg.batch
    w = make_windows(s.values, cfg.tau, cfg.split, cfg.standardize, batch=batch, name=s.name)
    model = make_model(cfg.model, cfg.tau, hidden=cfg.hidden, seed=cfg.seed, ridge=cfg.ridge)
    res = fit(model, w, epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr, optimizer=cfg.optimizer, seed=cfg.seed,
              clip=cfg.clip, on_epoch=on_epoch, on_step=on_step)
    return SeriesResult(cfg, w, model, res, evaluate(model, w, cfg.ks))
