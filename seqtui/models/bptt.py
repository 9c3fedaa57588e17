"""Backpropagation through time: the per-step factors that make BPTT full, truncated or randomized."""

from __future__ import annotations

import numpy as np

from seqtui.errors import ConfigError


def carry_scale_for(mode: str, T: int, k: int | None = None, p: float | None = None,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Factors (T,) on the gradient flowing from step t back into the state of step t-1.

    full: ones. truncated k: 0 where t % k == 0 (t > 0) — the gradient is cut every k steps.
    randomized p (Tallec & Ollivier): ξ_t = 1/p with probability p, else 0, so E[ξ_t] = 1 and the
    expected gradient is the full one; p = 1 gives exactly ``full``. Entry 0 feeds the detached
    initial state and is never used.
    """
    if T < 1:
        raise ConfigError(f"num_steps must be >= 1, got {T}")
    scale = np.ones(T, dtype=np.float64)
    if mode == "full":
        return scale
    if mode == "truncated":
        if k is None or int(k) < 1:
            raise ConfigError(f"truncated BPTT needs k >= 1, got {k!r}")
        scale[np.arange(T) % int(k) == 0] = 0.0
        scale[0] = 1.0
        return scale
    if mode == "randomized":
        if p is None or not (0.0 < float(p) <= 1.0):
            raise ConfigError(f"randomized BPTT needs p in (0, 1], got {p!r}")
        if rng is None:
            raise ConfigError("randomized BPTT needs a random generator")
        keep = rng.random(T) < float(p)
        return np.where(keep, 1.0 / float(p), 0.0)
    raise ConfigError(f"unknown BPTT mode {mode!r} (choose full, truncated or randomized)")
