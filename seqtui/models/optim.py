"""Gradient clipping by global norm, SGD and Adam over the model's flat buffers.

Optimizer state is plain arrays and numbers (``state_dict``), so the run engine can store it in
safetensors + JSON without pickle. Importing this module does not import numba.
"""

from __future__ import annotations

import math

import numpy as np

from seqtui.errors import CheckpointError, ConfigError


def grad_norm(grads: np.ndarray) -> float:
    """Global L2 norm of the flat gradient (accumulated in float64; NaN/Inf propagate)."""
    from seqtui.kernels import optim as k

    return math.sqrt(k.sum_squares(np.ascontiguousarray(grads).reshape(-1)))


def clip_grad_norm(grads: np.ndarray, theta: float, norm: float | None = None) -> tuple[float, bool]:
    """Scale ``grads`` in place to norm θ when its norm exceeds θ (d2l's ``grad_clipping``).

    Returns (pre-clip norm, clipped?). A non-finite norm is returned as is and nothing is scaled:
    the caller reports the divergence instead of hiding it. ``norm``: ``grad_norm(grads)`` if the
    caller has it already (``StepStats.grad_norm``), which saves a pass over the gradient.
    """
    from seqtui.kernels import optim as k

    if not theta > 0:
        raise ConfigError(f"clip θ must be > 0, got {theta!r}")
    norm = grad_norm(grads) if norm is None else float(norm)
    if not math.isfinite(norm) or norm <= theta:
        return norm, False
    k.scale(grads.reshape(-1), theta / norm)
    return norm, True


def _check_lr(lr: float) -> float:
    lr = float(lr)
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"learning rate must be > 0, got {lr!r}")
    return lr


class SGD:
    """params -= lr · grads (d2l's ``sgd``; the loss is already a mean over the batch)."""

    def __init__(self, lr: float = 1.0) -> None:
        self.lr = _check_lr(lr)

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float | None = None) -> None:
        from seqtui.kernels import optim as k

        k.sgd_step(params.reshape(-1), grads.reshape(-1), self.lr if lr is None else float(lr))

    def state_dict(self) -> dict[str, np.ndarray | float | int]:
        return {"kind": 0, "lr": self.lr}

    def load_state_dict(self, d: dict) -> None:
        try:
            self.lr = _check_lr(d["lr"])
        except (KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"bad SGD state: {exc}") from None


class Adam:
    """PyTorch's Adam (no weight decay): moments m, v in the parameter dtype, step count t."""

    def __init__(self, lr: float = 0.002, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr = _check_lr(lr)
        b1, b2 = (float(b) for b in betas)
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ConfigError(f"Adam betas must be in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ConfigError(f"Adam eps must be > 0, got {eps!r}")
        self.betas = (b1, b2)
        self.eps = float(eps)
        self.t = 0
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float | None = None) -> None:
        from seqtui.kernels import optim as k

        flat = params.reshape(-1)
        if self.m is None:
            self.m = np.zeros_like(flat)
            self.v = np.zeros_like(flat)
        elif self.m.shape != flat.shape or self.m.dtype != flat.dtype:
            raise CheckpointError(f"Adam moments ({self.m.dtype} {self.m.shape}) do not match the "
                                  f"parameters ({flat.dtype} {flat.shape})")
        self.t += 1
        k.adam_step(flat, grads.reshape(-1), self.m, self.v, self.lr if lr is None else float(lr),
                    self.betas[0], self.betas[1], self.eps, self.t)

    def state_dict(self) -> dict[str, np.ndarray | float | int]:
        d: dict[str, np.ndarray | float | int] = {
            "kind": 1, "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1],
            "eps": self.eps, "t": self.t}
        if self.m is not None:
            d["m"] = self.m.copy()
            d["v"] = self.v.copy()
        return d

    def load_state_dict(self, d: dict) -> None:
        try:
            lr, b1, b2, eps, t = (d["lr"], d["beta1"], d["beta2"], d["eps"], int(d["t"]))
            m = d.get("m")
            v = d.get("v")
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"bad Adam state: missing or invalid {exc}") from None
        if (m is None) != (v is None) or t < 0 or (t > 0 and m is None):
            raise CheckpointError("bad Adam state: moments and step count disagree")
        if m is not None:
            m, v = np.asarray(m), np.asarray(v)
            if m.shape != v.shape or m.ndim != 1 or m.dtype != v.dtype:
                raise CheckpointError("bad Adam state: moment arrays differ in shape or dtype")
        try:
            self.__init__(lr, (b1, b2), eps)
        except ConfigError as exc:
            raise CheckpointError(f"bad Adam state: {exc}") from None
        self.t = t
        if m is not None:
            self.m = np.array(m, copy=True)
            self.v = np.array(v, copy=True)
