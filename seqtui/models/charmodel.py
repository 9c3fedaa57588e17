"""Character-level language model (RNN / GRU / LSTM + linear output) over one flat parameter buffer.

Sizes: B batch, T num_steps, H hidden, V vocabulary, L layers, G gates·H, N = T·B rows, P parts.

Parameters and gradients are single flat arrays carved into views with PyTorch's names, shapes
and gate order (``rnn.weight_ih_l0`` …, ``fc.weight``, ``fc.bias``), so a checkpoint loads
straight into ``torch.nn.RNN/GRU/LSTM`` + ``nn.Linear``. A training step runs the Numba
recurrence kernels (``seqtui.kernels.rnn/gru/lstm``) between big batched products: the input
projection of all T steps, the output layer and softmax-CE over all N rows, and the weight
gradients as one product each over all N rows. Every product runs on the register-tiled
``kernels._math._tile`` over weights repacked once per step into panel strips (W_hh for the
recurrence, forward and backward layouts), so each output element is one fixed chain of fused
multiply-adds: ``threads`` (who runs the work) change no bit, ``parts`` (how it is cut) only
the summation order of the loss and of the ∂L/∂h norms.
Importing this module does not import numba (kernels load on first use).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from seqtui.errors import CheckpointError, ConfigError
from seqtui.models.choices import CELLS, GATES, INITS
from seqtui.models.threads import ThreadTuner, available_cpus, kernel_threads





def default_parts(hidden: int) -> int:
    """How many pieces a step's work is cut into when the caller does not say: a property of the
    shape only (so a run gives the same bits on any machine), enough for up to 16 cores and
    wide enough (≥ 32 hidden columns a part) for the recurrence's register tiles."""
    return max(1, min(16, hidden // 32))


@dataclass
class ModelConfig:
    """What defines a model's shapes: the cell, the vocabulary size, hidden width and depth."""

    cell: str
    vocab_size: int
    hidden: int
    num_layers: int = 1

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r} (choose rnn, gru or lstm)")
        for what, value, low in (("vocab_size", self.vocab_size, 2), ("hidden", self.hidden, 1),
                                 ("num_layers", self.num_layers, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
        self.vocab_size = int(self.vocab_size)
        self.hidden = int(self.hidden)
        self.num_layers = int(self.num_layers)

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def state_slots(self) -> int:
        """S: 2 for the LSTM (h, c), else 1."""
        return 2 if self.cell == "lstm" else 1


def parameter_shapes(cfg: ModelConfig) -> list[tuple[str, tuple[int, ...]]]:
    """PyTorch names and shapes, in PyTorch's ``named_parameters()`` order."""
    G, H, V = cfg.gates * cfg.hidden, cfg.hidden, cfg.vocab_size
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for k in range(cfg.num_layers):
        shapes += [(f"rnn.weight_ih_l{k}", (G, V if k == 0 else H)), (f"rnn.weight_hh_l{k}", (G, H)),
                   (f"rnn.bias_ih_l{k}", (G,)), (f"rnn.bias_hh_l{k}", (G,))]
    return shapes + [("fc.weight", (V, H)), ("fc.bias", (V,))]


def check_named(cfg: ModelConfig, dtype, tensors, where: str = "") -> None:
    """CheckpointError unless ``tensors`` are exactly the model's: names, shapes, dtype, finite."""
    at = f"{where}: " if where else ""
    expected = dict(parameter_shapes(cfg))
    dtype = np.dtype(dtype)
    for name in tensors:
        if name not in expected:
            raise CheckpointError(f"{at}unexpected tensor {name!r} for a {cfg.num_layers}-layer "
                                  f"{cfg.cell} with hidden {cfg.hidden}")
    for name, shape in expected.items():
        if name not in tensors:
            raise CheckpointError(f"{at}missing tensor {name!r}")
        arr = np.asarray(tensors[name])
        if tuple(arr.shape) != shape:
            raise CheckpointError(f"{at}{name} has shape {tuple(arr.shape)}, expected {shape}")
        if arr.dtype != dtype:
            raise CheckpointError(f"{at}{name} has dtype {arr.dtype}, expected {dtype}")
        if not np.all(np.isfinite(arr)):
            raise CheckpointError(f"{at}{name} contains NaN/Inf")


@dataclass
class StepStats:
    """What one training window reports."""

    loss: float               # mean NLL per token (float64)
    state: np.ndarray         # final state (S, L, B, H), detached: the next window's initial state
    h_grad_norms: np.ndarray  # (T,) float64: ‖∂L/∂h_t‖ of the top layer for t = 1..T
    finite: bool              # False when the loss or any gradient is NaN/Inf
    grad_norm: float = math.nan  # global L2 norm of the gradient (optim.grad_norm): clip reuses it


class _Layer:
    """Per-layer work buffers for one (B, T) shape: what backward needs from forward."""

    def __init__(self, cell: str, T: int, B: int, H: int, G: int, dtype: np.dtype, first: bool) -> None:
        self.hs = np.zeros((T + 1, B, H), dtype)
        self.cs = np.zeros((T + 1, B, H), dtype) if cell == "lstm" else None
        width = {"rnn": 0, "gru": 4 * H, "lstm": 5 * H}[cell]
        self.acts = np.zeros((T, B, width), dtype)
        # the input projection of every step; the first layer gathers rows of W_ihᵀ + biases instead
        self.xg = np.zeros((0 if first else T * B, G), dtype)
        self.dgi = np.zeros((T, B, G), dtype)
        self.dgh = np.zeros((T, B, G), dtype) if cell == "gru" else self.dgi


class _Workspace:
    """All buffers of a training step for one (B, T) shape, reused across steps."""

    def __init__(self, cfg: ModelConfig, T: int, B: int, parts: int, dtype: np.dtype,
                 panel_sizes: tuple[int, int]) -> None:
        H, V, G = cfg.hidden, cfg.vocab_size, cfg.gates * cfg.hidden
        self.layers = [_Layer(cfg.cell, T, B, H, G, dtype, k == 0) for k in range(cfg.num_layers)]
        self.rows = np.arange(T * B, dtype=np.int32).reshape(T, B)  # xg's row of (t, b)
        self.x0 = np.zeros((V, G), dtype)  # layer 0: W_ihᵀ + biases, one row per token
        self.logits = np.zeros((T * B, V), dtype)
        self.panel_f = np.zeros(panel_sizes[0], dtype)  # W_hh packed for h W_hhᵀ (forward)
        self.panel_b = np.zeros(panel_sizes[1], dtype)  # W_hh packed for δ W_hh (backward)
        self.w_ih0_t = np.zeros((V, G), dtype)  # layer 0's W_ihᵀ (one-hot gather)
        self.dh = np.zeros((T, B, H), dtype)
        self.dw0_t = np.zeros((V, G), dtype)
        self.db0 = np.zeros(G, dtype)
        self.no_sums = np.zeros(0, dtype)  # "no bias gradient wanted" for matmul_tn
        self.dense = np.zeros(0, dtype)    # panel strips of a dense weight (see _pack_dense)
        from seqtui.kernels._math import MR

        self.parts = parts
        self.norms = np.zeros((parts * -(-B // MR), T), np.float64)  # per (part, MR-row block)


def _row_split(B: int, panel: np.ndarray) -> tuple[int, int]:
    """(row groups, part chunks) of the recurrence kernels for the threads in force now."""
    from numba import get_num_threads

    from seqtui.kernels._math import row_split

    return row_split(get_num_threads(), B, panel.nbytes)


class CharModel:
    """An RNN/GRU/LSTM language model with a linear output layer, PyTorch-compatible parameters.

    Every step's work is cut into ``parts`` pieces (hidden columns of the recurrence, row blocks of
    the big products; None = :func:`default_parts`, which depends on the shape only, never on the
    machine); ``threads`` run them: None tunes among 1 … min(parts, cores in the affinity mask)
    from measured step times (see :class:`ThreadTuner`) — the result does not depend on it, only
    on ``parts``.
    """

    def __init__(self, cfg: ModelConfig, seed: int = 0, dtype=np.float32, parts: int | None = None,
                 threads: int | None = None, init: str = "pytorch"):
        self.cfg = cfg
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ConfigError(f"model dtype must be float32 or float64, got {self.dtype}")
        if parts is None:
            parts = default_parts(cfg.hidden)
        self.parts = min(int(parts), cfg.hidden)
        if self.parts < 1:
            raise ConfigError(f"parts must be >= 1, got {parts}")
        if threads is not None and int(threads) < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.threads = None if threads is None else int(threads)
        # below H = 64 a step is too small for a second thread to pay for its barriers
        self._max_threads = min(self.parts, available_cpus()) if cfg.hidden >= 64 else 1
        self._tuners: dict[tuple[str, int, int], ThreadTuner] = {}
        self._shapes = parameter_shapes(cfg)
        sizes = [math.prod(s) for _, s in self._shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._offsets = {name: int(off) for (name, _), off in zip(self._shapes, offsets[:-1])}
        self.params = np.empty(int(offsets[-1]), self.dtype)
        self.grads = np.zeros_like(self.params)
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        rng = np.random.default_rng(seed)
        if init == "pytorch":  # every RNN tensor and nn.Linear(H, V): U(±1/√H)
            bound = 1.0 / math.sqrt(cfg.hidden)
            self.params[:] = rng.uniform(-bound, bound, self.params.size)
        self._p = self._views(self.params)
        if init == "d2l":  # d2l's from-scratch models: weights N(0, 0.01²), biases zero
            for name, view in self._p.items():
                view[...] = 0.0 if "bias" in name else rng.normal(0.0, 0.01, view.shape)
        self._g = self._views(self.grads)
        L = cfg.num_layers
        self.layer_offsets = np.array(
            [[self._offsets[f"rnn.{w}_l{k}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
             for k in range(L)], dtype=np.int64)
        self.fc_offsets = np.array([self._offsets["fc.weight"], self._offsets["fc.bias"]], np.int64)
        self._workspaces: dict[tuple[int, int], _Workspace] = {}
        self._panels: tuple | None = None
        self._dense_cols: dict[tuple[int, bool], np.ndarray] = {}

    # -- parameters ------------------------------------------------------------------------
    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[self._offsets[name]: self._offsets[name] + math.prod(shape)].reshape(shape)
                for name, shape in self._shapes}

    @property
    def num_params(self) -> int:
        return int(self.params.size)

    def named_parameters(self) -> dict[str, np.ndarray]:
        """Views into ``params`` by PyTorch name (writing to them changes the model)."""
        return dict(self._p)

    def named_grads(self) -> dict[str, np.ndarray]:
        """Views into ``grads`` by PyTorch name."""
        return dict(self._g)

    def load_named(self, tensors: dict[str, np.ndarray]) -> None:
        """Copy tensors in by PyTorch name; CheckpointError unless names, shapes and dtype match."""
        check_named(self.cfg, self.dtype, tensors)
        for name, _ in self._shapes:
            self._p[name][...] = tensors[name]

    def init_state(self, batch_size: int) -> np.ndarray:
        """Zeros of shape (S, L, B, H)."""
        c = self.cfg
        return np.zeros((c.state_slots, c.num_layers, int(batch_size), c.hidden), self.dtype)

    # -- checks ----------------------------------------------------------------------------
    def _check_ids(self, X: np.ndarray, what: str) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1 or X.dtype.kind not in "iu":
            raise ConfigError(f"{what} must be a non-empty (B, T) integer array, got {X.dtype} {X.shape}")
        lo, hi = int(X.min()), int(X.max())
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise ConfigError(f"{what} holds token id {lo if lo < 0 else hi} outside the "
                              f"vocabulary (size {self.cfg.vocab_size})")
        return np.ascontiguousarray(X.T, dtype=np.int32)  # time-major (T, B)

    def _check_state(self, state: np.ndarray | None, B: int) -> np.ndarray:
        if state is None:
            return self.init_state(B)
        state = np.asarray(state)
        want = self.init_state(B).shape
        if state.shape != want:
            raise ConfigError(f"state has shape {state.shape}, expected {want}")
        return state

    def _panel_layout(self):
        """(forward cols, strip0, backward cols, strip0) of the packed W_hh panels (per parts)."""
        if self._panels is None or self._panels[0] != self.parts:
            from seqtui.kernels._math import panel_index

            H, P, g = self.cfg.hidden, self.parts, self.cfg.gates
            self._panels = (P,) + panel_index(H, g, P, True) + panel_index(H, g, P, False)
        return self._panels[1:]

    def _workspace(self, T: int, B: int) -> _Workspace:
        ws = self._workspaces.get((T, B))
        if ws is None or ws.parts != self.parts:
            if len(self._workspaces) > 4:
                self._workspaces.clear()
            cols_f, _, cols_b, _ = self._panel_layout()
            H, G = self.cfg.hidden, self.cfg.gates * self.cfg.hidden
            sizes = (cols_f.size * H, cols_b.size * G)
            ws = self._workspaces[(T, B)] = _Workspace(self.cfg, T, B, self.parts, self.dtype, sizes)
        return ws

    def _pack(self, ws: _Workspace, w_hh: np.ndarray, forward: bool):
        """W_hh packed into the forward or backward panel strips: (panel, strip0)."""
        from seqtui.kernels import linear

        cols_f, s0_f, cols_b, s0_b = self._panel_layout()
        if forward:
            linear.pack_panel(ws.panel_f, w_hh, cols_f, True, self.parts)
            return ws.panel_f, s0_f
        linear.pack_panel(ws.panel_b, w_hh, cols_b, False, self.parts)
        return ws.panel_b, s0_b

    def _pack_dense(self, ws: _Workspace, w: np.ndarray, transposed: bool) -> np.ndarray:
        """A weight w (R, C) as panel strips for ``linear.matmul_panel``: of wᵀ (x @ wᵀ, K = C) or
        of w itself (x @ w, K = R)."""
        from seqtui.kernels import linear
        from seqtui.kernels._math import NR

        R, C = w.shape
        n = R if transposed else C
        key = (n, transposed)
        cols = self._dense_cols.get(key)
        if cols is None:
            cols = self._dense_cols[key] = np.concatenate(
                [np.arange(n), -np.ones(-n % NR, np.int64)]).astype(np.int64)
        K = C if transposed else R
        size = cols.size * K
        if ws.dense.size < size:
            ws.dense = np.zeros(size, self.dtype)
        out = ws.dense[:size]
        linear.pack_panel(out, w, cols, transposed, self.parts)
        return out

    # -- forward ---------------------------------------------------------------------------
    def _forward(self, ids: np.ndarray, state: np.ndarray) -> _Workspace:
        """Run every layer over the window; leaves the hidden states and the logits."""
        from seqtui.kernels import gru, linear, lstm, rnn

        T, B = ids.shape
        cfg, P, p = self.cfg, self.parts, self._p
        H, N = cfg.hidden, T * B
        ws = self._workspace(T, B)
        split = _row_split(B, ws.panel_f)
        for k, lay in enumerate(ws.layers):
            w_ih, w_hh = p[f"rnn.weight_ih_l{k}"], p[f"rnn.weight_hh_l{k}"]
            b_ih, b_hh = p[f"rnn.bias_ih_l{k}"], p[f"rnn.bias_hh_l{k}"]
            bias = b_ih + b_hh  # folded into the input projection (GRU: all but b_hn)
            if cfg.cell == "gru":
                bias[2 * H:] = b_ih[2 * H:]
            if k == 0:  # a one-hot input: x_t W_ihᵀ + bias is a row of W_ihᵀ + bias, gathered by id
                linear.transpose(ws.w_ih0_t, w_ih, P)
                np.add(ws.w_ih0_t, bias, out=ws.x0)
                xsrc, xrow = ws.x0, ids
            else:
                linear.matmul_panel(lay.xg, ws.layers[k - 1].hs[1:].reshape(N, H),
                                    self._pack_dense(ws, w_ih, True), bias, P)
                xsrc, xrow = lay.xg, ws.rows
            lay.hs[0] = state[0, k]
            wp, s0 = self._pack(ws, w_hh, True)
            if cfg.cell == "rnn":
                rnn.rnn_forward(lay.hs, xsrc, xrow, wp, s0, P, *split)
            elif cfg.cell == "gru":
                gru.gru_forward(lay.hs, lay.acts, xsrc, xrow, wp, s0, b_hh, P, *split)
            else:
                lay.cs[0] = state[1, k]
                lstm.lstm_forward(lay.hs, lay.cs, lay.acts, xsrc, xrow, wp, s0, P, *split)
        top = ws.layers[-1].hs[1:].reshape(N, H)
        linear.matmul_panel(ws.logits, top, self._pack_dense(ws, p["fc.weight"], True), p["fc.bias"], P)
        return ws

    def _final_state(self, ws: _Workspace) -> np.ndarray:
        out = np.empty((self.cfg.state_slots, self.cfg.num_layers) + ws.layers[0].hs.shape[1:], self.dtype)
        for k, lay in enumerate(ws.layers):
            out[0, k] = lay.hs[-1]
            if lay.cs is not None:
                out[1, k] = lay.cs[-1]
        return out

    def logits(self, X: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits (B, T, V) of every position and the final state (no gradients)."""
        ids = self._check_ids(X, "X")
        T, B = ids.shape
        with self._timed("logits", T, B):
            ws = self._forward(ids, self._check_state(state, B))
        out = ws.logits.reshape(T, B, -1).transpose(1, 0, 2).copy()
        return out, self._final_state(ws)

    def evaluate(self, X: np.ndarray, Y: np.ndarray, state: np.ndarray | None = None
                 ) -> tuple[float, int, np.ndarray]:
        """(sum of NLL over the B·T targets, B·T, final state), without gradients."""
        from seqtui.kernels import output

        ids = self._check_ids(X, "X")
        targets = self._check_ids(Y, "Y")
        if targets.shape != ids.shape:
            raise ConfigError(f"Y has shape {np.shape(Y)}, expected {np.shape(X)}")
        T, B = ids.shape
        with self._timed("eval", T, B):
            ws = self._forward(ids, self._check_state(state, B))
            total = output.softmax_ce_forward(ws.logits, targets.reshape(-1), self.parts)
        return float(total), T * B, self._final_state(ws)

    # -- training --------------------------------------------------------------------------
    def loss_and_grad(self, X: np.ndarray, Y: np.ndarray, state: np.ndarray | None,
                      carry_scale: np.ndarray | None) -> StepStats:
        """Forward + backward over one window; overwrites ``grads`` with ∂(mean NLL)/∂params."""
        ids, targets, carry_scale = self._train_args(X, Y, carry_scale)
        T, B = ids.shape
        state = self._check_state(state, B)
        with self._timed("train", T, B):
            return self._backward(self._forward(ids, state), ids, targets, carry_scale)

    def compile_backward(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Run only the backward kernels, on a workspace no forward pass has filled (the values
        mean nothing): a helper process compiles them so while the trainer compiles the forward
        ones (``engine.warmup``). The longest first — the cell's recurrence, the weight-gradient
        product, on scratch — so that what the trainer compiles meanwhile (the panel packing and
        product in its forward pass, then ``compile_backward_tail``) is in the cache when the
        backward pass reaches it. Leaves ``grads`` undefined."""
        from seqtui.kernels import linear

        ids, targets, carry_scale = self._train_args(X, Y, None)
        ws = self._workspace(*ids.shape)
        lay = ws.layers[-1]
        self._recurrence_backward(ws, lay, ws.panel_b, self._panel_layout()[3], carry_scale,
                                  _row_split(ids.shape[1], ws.panel_b))
        H = self.cfg.hidden
        linear.matmul_tn(self._g["rnn.weight_hh_l0"], self._g["rnn.bias_hh_l0"],
                         lay.dgi.reshape(-1, lay.dgi.shape[-1]), lay.hs[:-1].reshape(-1, H), self.parts)
        self._backward(ws, ids, targets, carry_scale)

    def compile_backward_tail(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Compile the backward pass's last kernels (the one-hot input's gradient, the gradient
        norm) on scratch: a trainer does this after its forward part, so that its helper, which
        compiles the backward pass in order, finds them in the cache when it gets there."""
        from seqtui.kernels import linear, optim

        ids = self._train_args(X, Y, None)[0]
        ws = self._workspace(*ids.shape)
        linear.onehot_backward(ws.dw0_t, ws.db0, ws.layers[0].dgi, ids, self.parts)
        optim.sum_squares(self.grads)

    def _train_args(self, X, Y, carry_scale):
        """The checked ids, targets (T, B) and carry scale (T,) float64 of a training call."""
        ids = self._check_ids(X, "X")
        targets = self._check_ids(Y, "Y")
        if targets.shape != ids.shape:
            raise ConfigError(f"Y has shape {np.shape(Y)}, expected {np.shape(X)}")
        T = ids.shape[0]
        if carry_scale is None:
            carry_scale = np.ones(T)
        carry_scale = np.ascontiguousarray(carry_scale, dtype=np.float64)
        if carry_scale.shape != (T,):
            raise ConfigError(f"carry_scale has shape {carry_scale.shape}, expected ({T},)")
        return ids, targets, carry_scale

    @contextmanager
    def _timed(self, kind: str, T: int, B: int):
        """Run the kernels on the fixed or the tuned thread count (tuned per call kind and shape)."""
        if self.threads is not None:
            with kernel_threads(self.threads):
                yield
            return
        tuner = self._tuners.get((kind, T, B))
        if tuner is None:
            if len(self._tuners) > 16:
                self._tuners.clear()
            tuner = self._tuners[(kind, T, B)] = ThreadTuner(self._max_threads)
        threads = tuner.pick()
        start = time.perf_counter()
        with kernel_threads(threads):
            yield
        tuner.record(threads, time.perf_counter() - start)

    def _recurrence_backward(self, ws: _Workspace, lay, wp, s0, carry_scale, split) -> None:
        """One layer's backward recurrence kernel (its cell's), from ws.dh into lay.dgi (and dgh)."""
        from seqtui.kernels import gru, lstm, rnn

        P = self.parts
        if self.cfg.cell == "rnn":
            rnn.rnn_backward(lay.dgi, ws.norms, ws.dh, lay.hs, wp, s0, carry_scale, P, *split)
        elif self.cfg.cell == "gru":
            gru.gru_backward(lay.dgi, lay.dgh, ws.norms, ws.dh, lay.hs, lay.acts, wp, s0, carry_scale, P,
                             *split)
        else:
            lstm.lstm_backward(lay.dgi, ws.norms, ws.dh, lay.cs, lay.acts, wp, s0, carry_scale, P, *split)

    def _backward(self, ws: _Workspace, ids, targets, carry_scale) -> StepStats:
        """The loss of the forward pass in ``ws`` and every gradient (into ``grads``)."""
        from seqtui.kernels import linear, optim, output

        T, B = ids.shape
        cfg, P, p, g = self.cfg, self.parts, self._p, self._g
        H, G, N, L = cfg.hidden, cfg.gates * cfg.hidden, T * B, cfg.num_layers
        split = _row_split(B, ws.panel_b)

        # output layer: fused softmax-CE, then its weight and bias gradients and ∂L/∂h of the top layer
        loss_sum = output.softmax_ce_forward_backward(ws.logits, targets.reshape(-1), 1.0 / N, P)
        dlogits = ws.logits
        top = ws.layers[-1].hs[1:].reshape(N, H)
        linear.matmul_tn(g["fc.weight"], g["fc.bias"], dlogits, top, P)
        linear.matmul_panel(ws.dh.reshape(N, H), dlogits, self._pack_dense(ws, p["fc.weight"], False),
                            ws.no_sums, P)

        h_norms = None
        for k in range(L - 1, -1, -1):
            lay = ws.layers[k]
            self._recurrence_backward(ws, lay, *self._pack(ws, p[f"rnn.weight_hh_l{k}"], False), carry_scale,
                                      split)
            if k == L - 1:
                h_norms = np.sqrt(ws.norms.sum(axis=0))
            dgi = lay.dgi.reshape(N, G)
            dgh = dgi if lay.dgh is lay.dgi else lay.dgh.reshape(N, G)
            # W_hh and b_hh from ∂(h W_hhᵀ + b_hh); W_ih and b_ih from ∂xg (the same for RNN, LSTM)
            linear.matmul_tn(g[f"rnn.weight_hh_l{k}"], g[f"rnn.bias_hh_l{k}"], dgh,
                             lay.hs[:-1].reshape(N, H), P)
            b_ih = g[f"rnn.bias_ih_l{k}"] if dgi is not dgh else ws.no_sums
            if k == 0:
                linear.onehot_backward(ws.dw0_t, ws.db0, lay.dgi, ids, P)
                g["rnn.weight_ih_l0"][...] = ws.dw0_t.T
                if dgi is not dgh:
                    b_ih[...] = ws.db0
            else:
                below = ws.layers[k - 1].hs[1:].reshape(N, H)
                linear.matmul_tn(g[f"rnn.weight_ih_l{k}"], b_ih, dgi, below, P)
                linear.matmul_panel(ws.dh.reshape(N, H), dgi,
                                    self._pack_dense(ws, p[f"rnn.weight_ih_l{k}"], False), ws.no_sums, P)
            if dgi is dgh:
                g[f"rnn.bias_ih_l{k}"][...] = g[f"rnn.bias_hh_l{k}"]

        loss = loss_sum / N
        norm = math.sqrt(optim.sum_squares(self.grads))
        return StepStats(loss=float(loss), state=self._final_state(ws), h_grad_norms=h_norms,
                         finite=math.isfinite(loss) and math.isfinite(norm), grad_norm=norm)
