"""The memory probe: what a training step needs against what the OS says is available, checked
before anything is allocated."""

from __future__ import annotations

import math
import os

import numpy as np

from seqtui.errors import ConfigError
from seqtui.models.charmodel import ModelConfig, parameter_shapes


def training_bytes(cfg: ModelConfig, batch_size: int, num_steps: int, dtype=np.float32,
                   optimizer_slots: int = 2) -> int:
    """A generous estimate of the memory one training step needs: parameters, gradients,
    optimizer moments, and the per-step activations forward keeps for backward."""
    n = sum(math.prod(shape) for _, shape in parameter_shapes(cfg))
    G, H, V = cfg.gates * cfg.hidden, cfg.hidden, cfg.vocab_size
    activations = batch_size * (num_steps + 1) * (cfg.num_layers * (2 * G + 4 * H) + 2 * V)
    return (n * (2 + optimizer_slots) + activations) * np.dtype(dtype).itemsize


def available_memory() -> int | None:
    """Bytes the OS says a new allocation can use (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_fits_in_memory(cfg: ModelConfig, batch_size: int, num_steps: int, dtype=np.float32) -> None:
    """ConfigError, before anything is allocated, when training would not fit in memory."""
    need, have = training_bytes(cfg, batch_size, num_steps, dtype), available_memory()
    if have is not None and need > 0.8 * have:
        raise ConfigError(
            f"{cfg.cell} {cfg.num_layers}x{cfg.hidden} with batch {batch_size} x {num_steps} steps needs "
            f"about {need / 2**30:.1f} GiB; {have / 2**30:.1f} GiB is available "
            f"(lower --hidden, --layers or --batch-size)")
