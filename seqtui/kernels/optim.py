"""Optimizer kernels: single loops over the flat parameter / gradient / moment buffers.

Sizes: P parameters (every tensor of the model, concatenated). Sums are accumulated in float64.
The norm kernel uses no fast-math (a NaN/Inf gradient must give a NaN/Inf norm).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT, NJIT_FAST


@njit(**NJIT)
def sum_squares(g):
    """Σ g² in float64 (NaN/Inf propagate)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    n = g.shape[0]
    m = n - n % 4
    for i in range(0, m, 4):
        a = np.float64(g[i])
        b = np.float64(g[i + 1])
        c = np.float64(g[i + 2])
        d = np.float64(g[i + 3])
        s0 += a * a
        s1 += b * b
        s2 += c * c
        s3 += d * d
    for i in range(m, n):
        a = np.float64(g[i])
        s0 += a * a
    return (s0 + s1) + (s2 + s3)


@njit(**NJIT_FAST)
def scale(g, factor):
    """g *= factor."""
    f = g.dtype.type(factor)
    for i in range(g.shape[0]):
        g[i] *= f


@njit(**NJIT_FAST)
def sgd_step(params, grads, lr):
    """params -= lr · grads."""
    a = params.dtype.type(lr)
    for i in range(params.shape[0]):
        params[i] -= a * grads[i]


@njit(**NJIT_FAST)
def adam_step(params, grads, m, v, lr, beta1, beta2, eps, t):
    """One Adam step (PyTorch's, without weight decay); t is the 1-based step count."""
    dt = params.dtype.type
    b1 = dt(beta1)
    b2 = dt(beta2)
    c1 = dt(1.0 - beta1)
    c2 = dt(1.0 - beta2)
    step = dt(lr / (1.0 - beta1**t))
    inv_bc2 = dt(1.0 / math.sqrt(1.0 - beta2**t))
    e = dt(eps)
    for i in range(params.shape[0]):
        g = grads[i]
        mi = b1 * m[i] + c1 * g
        vi = b2 * v[i] + c2 * g * g
        m[i] = mi
        v[i] = vi
        params[i] -= step * mi / (np.sqrt(vi) * inv_bc2 + e)
