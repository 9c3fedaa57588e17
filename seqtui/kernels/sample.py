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
``generate_shared`` lets several threads share each token (blocks of hidden units, each core
keeping its share of the narrow weights in its own cache); same bits as ``generate``.
Cells: 0 RNN, 1 GRU (r, z, n), 2 LSTM (i, f, g, o), PyTorch semantics — the same maths as the
training kernels in rnn.py / gru.py / lstm.py (activations shared through _math.py; tests
compare both). Draws use uniforms supplied by the caller, so a
seeded stream is reproducible and the kernels share no mutable state between threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from seqtui.kernels._math import (F16_ROWS, _add, _atomic_add, _atomic_cas, _atomic_load, _rows_dot_f16,
                                  _sigmoid_sum, _spun, _tanh, _tanh_sum)
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
def _cell_units(cell, state, l, gi, gh, b_hh, u0, u1, t):
    """The cell update of layer l's hidden units [u0, u1) from the gate pre-activations: gi the
    input side (b_ih included), gh the recurrent side (b_hh not yet), both indexed q·H + unit;
    gi, gh and the scratch t (as long as gi) are overwritten there. Loops of two or three arrays
    each, so that they vectorize (see ``_math``)."""
    H = state.shape[3]
    h = state[0, l, 0][u0:u1]
    one = h.dtype.type(1.0)
    n = u1 - u0
    gates = GATES[cell]
    for q in range(gates):  # t = gi + gh for every gate (GRU's n: gh + b_hh, see below)
        a = q * H + u0
        if cell == 1 and q == 2:
            _add(t[a : a + n], gh[a : a + n], b_hh[a : a + n])
        else:
            _add(t[a : a + n], gi[a : a + n], gh[a : a + n])
    if cell == 0:
        _tanh_sum(h, t[u0:u1], b_hh[u0:u1])
        return
    r, z = gi[u0:u1], gi[H + u0 : H + u1]
    _sigmoid_sum(r, t[u0:u1], b_hh[u0:u1])  # GRU r | LSTM i
    _sigmoid_sum(z, t[H + u0 : H + u1], b_hh[H + u0 : H + u1])  # GRU z | LSTM f
    a = 2 * H + u0
    if cell == 1:
        tn = t[a : a + n]
        for j in range(n):
            tn[j] *= r[j]
        nn = gh[a : a + n]
        _tanh_sum(nn, gi[a : a + n], tn)
        for j in range(n):
            h[j] = (one - z[j]) * nn[j] + z[j] * h[j]
        return
    g, o = gi[a : a + n], gi[3 * H + u0 : 3 * H + u1]
    _tanh_sum(g, t[a : a + n], b_hh[a : a + n])
    _sigmoid_sum(o, t[3 * H + u0 : 3 * H + u1], b_hh[3 * H + u0 : 3 * H + u1])
    ig = t[u0:u1]
    for j in range(n):
        ig[j] = r[j] * g[j]
    c = state[1, l, 0][u0:u1]
    for j in range(n):
        c[j] = z[j] * c[j] + ig[j]
    for j in range(n):
        h[j] = o[j] * _tanh(c[j])


@njit(inline="always")
def _output(logits, state, params, fc, nw, noffs, xpad, gh):
    """The next-token logits from the top layer's state (gh is scratch with the padded room)."""
    L = state.shape[1]
    H = state.shape[3]
    V = logits.shape[0]
    fc_w = params[fc[0] : fc[0] + V * H].reshape((V, H))
    fc_b = params[fc[1] : fc[1] + V]
    _matvec(gh, fc_w, state[0, L - 1, 0], nw, noffs[L, 0], xpad)
    for v in range(V):
        logits[v] = gh[v] + fc_b[v]


@njit(**NJIT_FAST)
def _step(state, logits, token, params, offs, fc, w0_t, cell, gi, gh, t, nw, noffs, xpad):
    """Feed one token: update every layer's state, then the logits (in gh's room)."""
    L = state.shape[1]
    H = state.shape[3]
    G = w0_t.shape[1]
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
        _cell_units(cell, state, l, gi, gh, b_hh, 0, H, t)
    _output(logits, state, params, fc, nw, noffs, xpad, gh)


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
    t = np.empty(n, dtype=params.dtype)
    for i in range(ids.shape[0]):
        _step(state, logits, ids[i], params, offs, fc, w0_t, cell, gi, gh, t, nw, noffs, xpad)


@njit(**NJIT)
def generate(out, state, logits, params, offs, fc, w0_t, cell, nw, noffs, xpad, uniforms, temperature,
             top_k, top_p):
    """Draw out.shape[0] tokens one by one, feeding each back in (state and logits advance)."""
    n = max(w0_t.shape[1], logits.shape[0]) + F16_ROWS
    gi = np.empty(n, dtype=params.dtype)
    gh = np.empty(n, dtype=params.dtype)
    t = np.empty(n, dtype=params.dtype)
    probs = np.empty(logits.shape[0], dtype=np.float64)
    for i in range(out.shape[0]):
        tok = _draw(logits, temperature, top_k, top_p, uniforms[i], probs)
        out[i] = tok
        _step(state, logits, tok, params, offs, fc, w0_t, cell, gi, gh, t, nw, noffs, xpad)


_CLAIMED = 0  # sync[_CLAIMED]: tasks taken so far (tasks are numbered in the order they must run)
_DONE = 8  # sync[_DONE] (another cache line): tasks finished
STEAL_SPINS = 2000  # a ready task of another thread is taken after this many looks (≈ 10–50 µs)


@njit(**NJIT_FAST)
def _layer_task(j, ntasks, l, tok, i, state, params, offs, w0_t, cell, nw, noffs, gi, gh, t, pads):
    """Task j of layer l at token i: the gate rows of hidden-unit block j (whole F16_ROWS
    blocks), its cell update, and its units of the layer's new state in pads[(i + 1) % 2]."""
    H = state.shape[3]
    G = w0_t.shape[1]
    Kp = pads.shape[2]
    nb = H // F16_ROWS
    u0 = (j * nb // ntasks) * F16_ROWS
    u1 = ((j + 1) * nb // ntasks) * F16_ROWS
    old, new = i % 2, (i + 1) % 2
    b_ih = params[offs[l, 2] : offs[l, 2] + G]
    b_hh = params[offs[l, 3] : offs[l, 3] + G]
    for q in range(G // H):
        g0 = q * H + u0
        g1 = q * H + u1
        if l == 0:
            row = w0_t[tok]
            for g in range(g0, g1):
                gi[g] = row[g] + b_ih[g]
        else:
            for r in range(g0, g1, F16_ROWS):
                _rows_dot_f16(gi, r, nw, noffs[l, 0] + r * Kp, Kp, pads[new, l - 1], Kp)
            for g in range(g0, g1):
                gi[g] += b_ih[g]
        for r in range(g0, g1, F16_ROWS):
            _rows_dot_f16(gh, r, nw, noffs[l, 1] + r * Kp, Kp, pads[old, l], Kp)
    _cell_units(cell, state, l, gi, gh, b_hh, u0, u1, t)
    h = state[0, l, 0]
    pn = pads[new, l]
    for k in range(u0, u1):
        pn[k] = h[k]


@njit(**NJIT_FAST)
def _output_task(j, ntasks, i, logits, params, fc, nw, noffs, lo, pads):
    """Task j of the output layer at token i: its block of the logits' rows."""
    L = pads.shape[1]
    V = logits.shape[0]
    Kp = pads.shape[2]
    nv = -(-V // F16_ROWS)
    v0 = (j * nv // ntasks) * F16_ROWS
    v1 = min(V, ((j + 1) * nv // ntasks) * F16_ROWS)
    fc_b = params[fc[1] : fc[1] + V]
    for r in range(v0, v1, F16_ROWS):
        _rows_dot_f16(lo, r, nw, noffs[L, 0] + r * Kp, Kp, pads[(i + 1) % 2, L - 1], Kp)
    for v in range(v0, v1):
        logits[v] = lo[v] + fc_b[v]


@njit(**NJIT_FAST)
def generate_shared(me, nthreads, ntasks, sync, out, state, logits, params, offs, fc, w0_t, cell, nw,
                    noffs, uniforms, temperature, top_k, top_p, gi, gh, t, lo, pads, probs):
    """``generate`` shared by ``nthreads`` threads that each call this with their own ``me`` (and
    the same everything else; the caller's threads, the GIL released).

    Each token is L + 1 phases — every layer, then the logits — of ``ntasks`` tasks each (blocks
    of hidden units; blocks of the logits' rows). The tasks are numbered in the order the phases
    must run and the threads take them one by one (an atomic counter, sync[_CLAIMED]), each only
    once every earlier phase is done (sync[_DONE]): no thread ever waits for a task nobody has
    started, so a thread the OS does not schedule — or one that never comes — only means the
    others do its share; one thread alone does it all. Thread ``me`` takes the tasks
    j ≡ me (mod nthreads) — its share of the weights stays in its core's cache — and another's
    only after STEAL_SPINS, then at once until that one shows up. Each thread draws each token
    itself from the finished logits (the same ``_draw`` on the same numbers). Every row is the
    same ``_rows_dot_f16`` as in ``generate``, so the result is bit-identical to it, whoever runs
    which task. Returns once every task is done.

    Scratch shared by the threads: gi, gh, t, lo as in ``generate``; pads (2, L, Kp), zero past H,
    pads[0, l, :H] = layer l's state (then [i % 2] holds every layer's state before token i, and
    [(i + 1) % 2] after it); probs (nthreads, V) float64, a row per thread; sync (16,) int64 zeros.
    Needs the narrow copy and H a multiple of F16_ROWS.
    """
    L = state.shape[1]
    phases = L + 1
    total = out.shape[0] * phases * ntasks
    drawn, tok, spins, waited, eager, seen = -1, 0, 0, 0, False, 0
    while True:
        c = _atomic_load(sync, _CLAIMED)
        if c >= total:
            break
        if c > seen:  # another thread has taken tasks since: it is running, leave it its own
            eager = False
        s = c // ntasks
        if _atomic_load(sync, _DONE) < s * ntasks:  # an earlier phase is still running
            spins = _spun(spins)
            continue
        mine = (c % ntasks) % nthreads == me  # the task this thread ran last token (its cache)
        if not (mine or eager):
            waited += 1
            if waited < STEAL_SPINS:  # give its owner a moment, then take it
                continue
        if _atomic_cas(sync, _CLAIMED, c, c + 1) != c:  # another thread took it first
            continue
        eager = eager or not mine
        waited = 0
        seen = c + 1
        i, ph, j = s // phases, s % phases, c % ntasks
        if ph < L:
            if ph == 0 and drawn < i:
                tok = _draw(logits, temperature, top_k, top_p, uniforms[i], probs[me])
                drawn = i
                if j == 0:
                    out[i] = tok
            _layer_task(j, ntasks, ph, tok, i, state, params, offs, w0_t, cell, nw, noffs, gi, gh, t,
                        pads)
        else:
            _output_task(j, ntasks, i, logits, params, fc, nw, noffs, lo, pads)
        _atomic_add(sync, _DONE, 1)
    while _atomic_load(sync, _DONE) < total:  # the others' last tasks
        spins = _spun(spins)
