"""Output layer: fused softmax + cross-entropy over all T·B rows at once.

Sizes: N rows (T·B), V vocabulary. The linear product logits = h W_fcᵀ + b_fc is one big GEMM
done by the caller; this module holds the row-wise, numerically stable part:
loss_row = log Σ_v exp(z_v − m) − (z_y − m) with m = max_v z_v, accumulated in float64.
float32 uses a vectorizable exp (Cephes' expf: Cody–Waite reduction + degree-5 polynomial,
≈ 1 ulp); float64 uses libm's exp so gradient checks see exact maths.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from seqtui.kernels.config import FASTMATH, NJIT_PARALLEL


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (2^n from its exponent field)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


def _exp(x):  # pragma: no cover - replaced by the overload inside jitted code
    return math.exp(x)


@overload(_exp, inline="always", jit_options=dict(fastmath=FASTMATH, error_model="numpy"))
def _exp_impl(x):
    if x == types.float32:

        def impl(x):
            x = min(max(x, np.float32(-87.0)), np.float32(88.0))
            n = math.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
            nf = np.float32(n)
            r = x - nf * np.float32(0.693359375) - nf * np.float32(-2.12194440e-4)
            p = np.float32(1.9875691500e-4)
            p = p * r + np.float32(1.3981999507e-3)
            p = p * r + np.float32(8.3334519073e-3)
            p = p * r + np.float32(4.1665795894e-2)
            p = p * r + np.float32(1.6666665459e-1)
            p = p * r + np.float32(5.0000001201e-1)
            e = p * r * r + r + np.float32(1.0)
            return e * _float32_from_bits(np.int32((n + 127) << 23))

        return impl
    return lambda x: math.exp(x)


@njit(**NJIT_PARALLEL)
def softmax_ce_forward_backward(logits, targets, scale, nparts):
    """Σ_rows NLL (float64); overwrites ``logits`` (N, V) with scale·(softmax − onehot(target)).

    ``scale`` is 1/N for a mean loss. Non-finite logits give a non-finite loss (no fast-math
    no-NaN assumption here), which the caller checks.
    """
    N, V = logits.shape
    sc = logits.dtype.type(scale)
    partial = np.zeros(nparts, dtype=np.float64)
    for p in prange(nparts):
        total = 0.0
        for n in range(p * N // nparts, (p + 1) * N // nparts):
            row = logits[n]
            m = row[0]
            for v in range(1, V):
                m = max(m, row[v])
            y = targets[n]
            total -= np.float64(row[y] - m)
            for v in range(V):
                row[v] = _exp(row[v] - m)
            s = logits.dtype.type(0.0)  # ≤ V terms, each ≤ 1: the row's dtype is accurate enough
            for v in range(V):
                s += row[v]
            total += math.log(np.float64(s))
            inv = logits.dtype.type(scale / np.float64(s))
            for v in range(V):
                row[v] *= inv
            row[y] -= sc
        partial[p] = total
    return partial.sum()


@njit(**NJIT_PARALLEL)
def softmax_ce_forward(logits, targets, nparts):
    """Σ_rows NLL (float64) without gradients; ``logits`` is left unchanged."""
    N, V = logits.shape
    partial = np.zeros(nparts, dtype=np.float64)
    for p in prange(nparts):
        total = 0.0
        for n in range(p * N // nparts, (p + 1) * N // nparts):
            row = logits[n]
            m = row[0]
            for v in range(1, V):
                m = max(m, row[v])
            s = logits.dtype.type(0.0)
            for v in range(V):
                s += _exp(row[v] - m)
            total += math.log(np.float64(s)) - np.float64(row[targets[n]] - m)
        partial[p] = total
    return partial.sum()
