"""Shared helpers for the kernel/model tests: a plain NumPy reference model and tiny batches.

The reference follows PyTorch's documented equations for nn.RNN / nn.GRU / nn.LSTM + nn.Linear,
one step and one sample at a time, in float64, with no shared code with seqtui's kernels.
"""

from __future__ import annotations

import numpy as np

from seqtui.models.charmodel import CharModel, ModelConfig

CELLS = ("rnn", "gru", "lstm")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_forward(named: dict, cell: str, X: np.ndarray, state: np.ndarray, bump=None):
    """Logits (B, T, V) and final state (S, L, B, H) of the model ``named`` (float64).

    ``bump`` = (t, b, j, eps) adds eps to the top layer's h_t[b, j] right after it is computed
    (it then feeds the output layer and the next step), so finite differences of the loss in eps
    give the total ∂L/∂h_t.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in named.items()}
    B, T = X.shape
    S, L, _, H = state.shape
    V = p["fc.bias"].shape[0]
    h = [state[0, k].astype(np.float64).copy() for k in range(L)]
    c = [state[1, k].astype(np.float64).copy() for k in range(L)] if cell == "lstm" else None
    logits = np.zeros((B, T, V))
    for t in range(T):
        x = np.eye(V)[X[:, t]]  # one-hot (B, V)
        for k in range(L):
            w_ih, w_hh = p[f"rnn.weight_ih_l{k}"], p[f"rnn.weight_hh_l{k}"]
            b_ih, b_hh = p[f"rnn.bias_ih_l{k}"], p[f"rnn.bias_hh_l{k}"]
            gi = x @ w_ih.T + b_ih
            gh = h[k] @ w_hh.T + b_hh
            if cell == "rnn":
                h[k] = np.tanh(gi + gh)
            elif cell == "gru":
                r = sigmoid(gi[:, :H] + gh[:, :H])
                z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
                n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                h[k] = (1 - z) * n + z * h[k]
            else:
                i = sigmoid(gi[:, :H] + gh[:, :H])
                f = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
                g = np.tanh(gi[:, 2 * H:3 * H] + gh[:, 2 * H:3 * H])
                o = sigmoid(gi[:, 3 * H:] + gh[:, 3 * H:])
                c[k] = f * c[k] + i * g
                h[k] = o * np.tanh(c[k])
            if bump is not None and k == L - 1 and bump[0] == t:
                h[k] = h[k].copy()
                h[k][bump[1], bump[2]] += bump[3]
            x = h[k]
        logits[:, t] = x @ p["fc.weight"].T + p["fc.bias"]
    final = np.stack([np.stack(h)] + ([np.stack(c)] if cell == "lstm" else []))
    return logits, final


def reference_nll(logits: np.ndarray, Y: np.ndarray) -> float:
    """Sum over all positions of −log softmax(logits)[y]."""
    m = logits.max(-1, keepdims=True)
    logz = np.log(np.exp(logits - m).sum(-1)) + m[..., 0]
    picked = np.take_along_axis(logits, Y[..., None], -1)[..., 0]
    return float((logz - picked).sum())


def tiny_model(cell: str, layers: int = 1, V: int = 5, H: int = 4, dtype=np.float64, parts=1,
               seed: int = 0) -> CharModel:
    return CharModel(ModelConfig(cell, V, H, layers), seed=seed, dtype=dtype, parts=parts)


def tiny_batch(V: int = 5, B: int = 2, T: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, V, (B, T)).astype(np.int32)
    Y = rng.integers(0, V, (B, T)).astype(np.int32)
    return X, Y


def random_state(model: CharModel, B: int, seed: int = 1, scale: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(model.init_state(B).shape)).astype(model.dtype)
