"""Real-valued series kernels: τ-windows, the AR(τ) normal equations, and the MLP τ→H→1 pair.

Sizes: N points of the series, τ window length (features per row), M rows (windows), H hidden.
  x    (N,)      the series (float64)
  X    (M, τ)    windows: X[i, j] = (x[i + j] - mean) · inv_std, row i's label y[i] = z[i + τ]
  params (P,)    the MLP's flat buffer, P = H·τ + H + H + 1, PyTorch ``nn.Sequential(Linear(τ, H),
                 ReLU(), Linear(H, 1))`` order: net.0.weight (H, τ) | net.0.bias (H,) |
                 net.2.weight (1, H) | net.2.bias (1,)
  hid  (M, H)    ReLU(X W1ᵀ + b1), stored by forward for backward
Entry kernels are serial (the shapes are tiny, or the work is memory-bound) and cached; every
kernel's call graph stays inside this module.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT, NJIT_FAST


@njit(**NJIT_FAST)
def windows_forward(X, y, x, mean, inv_std):
    """X[i, j] = (x[i + j] - mean)·inv_std and y[i] = (x[i + τ] - mean)·inv_std for i < M = N - τ."""
    M, tau = X.shape
    for i in range(M):
        for j in range(tau):
            X[i, j] = (x[i + j] - mean) * inv_std
        y[i] = (x[i + tau] - mean) * inv_std


@njit(**NJIT)
def ar_normal_equations(A, b, z, tau, t0, t1):
    """A (τ+1, τ+1) = Σ r rᵀ and b (τ+1,) = Σ r·z[t] over targets t in [t0, t1), where
    r = (z[t-τ], …, z[t-1], 1): the least-squares system of the AR(τ) fit, without windows in memory."""
    K = tau + 1
    for i in range(K):
        b[i] = 0.0
        for j in range(K):
            A[i, j] = 0.0
    r = np.empty(K)
    r[tau] = 1.0
    for t in range(t0, t1):
        for j in range(tau):
            r[j] = z[t - tau + j]
        zt = z[t]
        for i in range(K):
            ri = r[i]
            b[i] += ri * zt
            for j in range(i, K):
                A[i, j] += ri * r[j]
    for i in range(K):
        for j in range(i):
            A[i, j] = A[j, i]


@njit(**NJIT_FAST)
def mlp_forward(out, hid, params, X, H):
    """out[i] = w2 · ReLU(W1 X[i] + b1) + b2 for every row; hid keeps the ReLU outputs."""
    M, tau = X.shape
    o_b1 = H * tau
    o_w2 = o_b1 + H
    o_b2 = o_w2 + H
    for i in range(M):
        acc = params[o_b2]
        for h in range(H):
            a = params[o_b1 + h]
            for j in range(tau):
                a += params[h * tau + j] * X[i, j]
            if a < 0.0:
                a = 0.0
            hid[i, h] = a
            acc += params[o_w2 + h] * a
        out[i] = acc


@njit(**NJIT_FAST)
def mlp_backward(grads, params, X, hid, dout, H):
    """Adds ∂L/∂params into grads given dout[i] = ∂L/∂out[i] (forward's loop reversed)."""
    M, tau = X.shape
    o_b1 = H * tau
    o_w2 = o_b1 + H
    o_b2 = o_w2 + H
    for i in range(M):
        d = dout[i]
        grads[o_b2] += d
        for h in range(H):
            a = hid[i, h]
            grads[o_w2 + h] += d * a
            if a > 0.0:
                da = d * params[o_w2 + h]
                grads[o_b1 + h] += da
                for j in range(tau):
                    grads[h * tau + j] += da * X[i, j]
