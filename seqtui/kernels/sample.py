"""Generation: advance one stream (batch 1) token by token and draw the next token.

Sizes: V vocabulary, H hidden, L layers, G gates·H, S state slots (2 for LSTM: h, c; else 1).
The model lives in one flat parameter buffer (``params``) described by an offset table:
  offs (L, 4) int64  offsets of weight_ih, weight_hh, bias_ih, bias_hh of each layer
  fc   (2,) int64    offsets of fc.weight (V, H) and fc.bias (V,)
  w0_t (V, G)        layer 0's W_ihᵀ (a one-hot input is a row of it)
  state (S, L, 1, H) the recurrent state, updated in place
  logits (V,)        the next-token logits for the current state, updated in place
  nw, noffs, xpad    optional narrow copy of the weights (empty nw: use params): IEEE half bits
                     (uint16) of each layer's W_ih (layers > 0), W_hh and of fc.weight, rows
                     padded with zeros to Kp = xpad's length (a multiple of F16_LANES) and row
                     counts to a multiple of F16_ROWS; noffs (L+1, 2) int64: offsets of layer l's
                     W_ih and W_hh, and [L, 0] of fc.weight; xpad (Kp,) scratch, zero past H
Cells: 0 RNN, 1 GRU (r, z, n), 2 LSTM (i, f, g, o), PyTorch semantics — the same maths as the
training kernels in rnn.py / gru.py / lstm.py (activations shared through _math.py; tests
compare both). Draws use uniforms supplied by the caller, so a
seeded stream is reproducible and the kernels share no mutable state between threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from seqtui.kernels._math import F16_ROWS, _rows_dot_f16, _sigmoid, _tanh
from seqtui.kernels.config import NJIT, NJIT_FAST

# The cells as the jitted code sees them: a code, and its gate count by code. This mirrors
# seqtui.models.choices.GATES on purpose (the kernels import nothing from the rest of seqtui);
# tests/test_layers.py checks that the two agree.
CELL_CODES = {"rnn": 0, "gru": 1, "lstm": 2}
GATES = (1, 3, 4)


@njit(inline="always")
def _matvec(out, w, x, nw, off, xpad):
    """out[:R] = w (R, K) @ x (K,): float32/64 BLAS, or — when the narrow copy ``nw`` is given —
    its half-precision rows at ``off`` (R padded to F16_ROWS, K to xpad's length Kp; out must
    have the padded room)."""
    if nw.shape[0] == 0:
        np.dot(w, x, out[: w.shape[0]])
        return
    R, K = w.shape
    Kp = xpad.shape[0]
    for k in range(K):
        xpad[k] = x[k]
    for r0 in range(0, R, F16_ROWS):
        _rows_dot_f16(out, r0, nw, off + r0 * Kp, Kp, xpad, Kp)


@njit(**NJIT_FAST)
def _step(state, logits, token, params, offs, fc, w0_t, cell, gi, gh, nw, noffs, xpad):
    """Feed one token: update every layer's state, then the logits (in gh's room)."""
    L = state.shape[1]
    H = state.shape[3]
    G = w0_t.shape[1]
    V = logits.shape[0]
    one = params.dtype.type(1.0)
    for l in range(L):
        w_hh = params[offs[l, 1] : offs[l, 1] + G * H].reshape((G, H))
        b_ih = params[offs[l, 2] : offs[l, 2] + G]
        b_hh = params[offs[l, 3] : offs[l, 3] + G]
        h = state[0, l, 0]
        if l == 0:
            row = w0_t[token]
            for g in range(G):
                gi[g] = row[g] + b_ih[g]
        else:
            w_ih = params[offs[l, 0] : offs[l, 0] + G * H].reshape((G, H))
            _matvec(gi, w_ih, state[0, l - 1, 0], nw, noffs[l, 0], xpad)
            for g in range(G):
                gi[g] += b_ih[g]
        _matvec(gh, w_hh, h, nw, noffs[l, 1], xpad)
        if cell == 0:
            for k in range(H):
                h[k] = _tanh(gi[k] + gh[k] + b_hh[k])
        elif cell == 1:
            for k in range(H):
                r = _sigmoid(gi[k] + gh[k] + b_hh[k])
                z = _sigmoid(gi[H + k] + gh[H + k] + b_hh[H + k])
                n = _tanh(gi[2 * H + k] + r * (gh[2 * H + k] + b_hh[2 * H + k]))
                h[k] = (one - z) * n + z * h[k]
        else:
            c = state[1, l, 0]
            for k in range(H):
                i = _sigmoid(gi[k] + gh[k] + b_hh[k])
                f = _sigmoid(gi[H + k] + gh[H + k] + b_hh[H + k])
                g = _tanh(gi[2 * H + k] + gh[2 * H + k] + b_hh[2 * H + k])
                o = _sigmoid(gi[3 * H + k] + gh[3 * H + k] + b_hh[3 * H + k])
                c[k] = f * c[k] + i * g
                h[k] = o * _tanh(c[k])
    fc_w = params[fc[0] : fc[0] + V * H].reshape((V, H))
    fc_b = params[fc[1] : fc[1] + V]
    _matvec(gh, fc_w, state[0, L - 1, 0], nw, noffs[L, 0], xpad)
    for v in range(V):
        logits[v] = gh[v] + fc_b[v]


@njit(**NJIT)
def _draw(logits, temperature, top_k, top_p, u, probs):
    """One token id from the logits: greedy (temperature 0 or top_k 1), else a draw from
    softmax(logits / temperature) restricted to the top_k most likely (0 = all), then to the
    smallest most-likely prefix holding top_p of the remaining mass; ``u`` is uniform in [0, 1)."""
    V = logits.shape[0]
    best = 0
    for v in range(1, V):
        if logits[v] > logits[best]:
            best = v
    if temperature <= 0.0 or top_k == 1:
        return best
    m = np.float64(logits[best])
    for v in range(V):
        probs[v] = math.exp((np.float64(logits[v]) - m) / temperature)
    k = V if top_k <= 0 else min(top_k, V)
    if k == V and top_p >= 1.0:
        total = probs.sum()
        target = u * total
        cum = 0.0
        for v in range(V):
            cum += probs[v]
            if cum > target:
                return v
        return best
    order = np.argsort(-probs, kind="mergesort")  # most likely first, ties by id
    total = 0.0
    for i in range(k):
        total += probs[order[i]]
    if top_p < 1.0:
        cum = 0.0
        kept = 0
        while kept < k:
            cum += probs[order[kept]]
            kept += 1
            if cum >= top_p * total:
                break
        k = kept
        total = cum
    target = u * total
    cum = 0.0
    for i in range(k):
        cum += probs[order[i]]
        if cum > target:
            return order[i]
    return order[k - 1]


@njit(**NJIT)
def feed(state, logits, ids, params, offs, fc, w0_t, cell, nw, noffs, xpad):
    """Advance the stream over the given token ids (a prompt)."""
    n = max(w0_t.shape[1], logits.shape[0]) + F16_ROWS
    gi = np.empty(n, dtype=params.dtype)
    gh = np.empty(n, dtype=params.dtype)
    for i in range(ids.shape[0]):
        _step(state, logits, ids[i], params, offs, fc, w0_t, cell, gi, gh, nw, noffs, xpad)


@njit(**NJIT)
def generate(out, state, logits, params, offs, fc, w0_t, cell, nw, noffs, xpad, uniforms, temperature,
             top_k, top_p):
    """Draw out.shape[0] tokens one by one, feeding each back in (state and logits advance)."""
    n = max(w0_t.shape[1], logits.shape[0]) + F16_ROWS
    gi = np.empty(n, dtype=params.dtype)
    gh = np.empty(n, dtype=params.dtype)
    probs = np.empty(logits.shape[0], dtype=np.float64)
    for i in range(out.shape[0]):
        tok = _draw(logits, temperature, top_k, top_p, uniforms[i], probs)
        out[i] = tok
        _step(state, logits, tok, params, offs, fc, w0_t, cell, gi, gh, nw, noffs, xpad)
