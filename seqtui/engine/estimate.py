"""Before a run starts: its parameter count, the memory it needs, and how long it will take.

The duration comes from a calibration — a few timed training steps of the same model shape on
this machine (random tokens; the data does not change the cost) — cached per shape and machine
in ``paths.cache_dir()/calibration.json``, so the second estimate for a shape is instant.
Validation and sampling are counted too. Checked against real runs in ``bench/bench_estimate.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass
from typing import Any

from seqtui import paths
from seqtui.engine.config import RunConfig
from seqtui.files import MiB, atomic_write

CALIBRATION_FILE = "calibration.json"
CALIBRATION_STEPS = 6     # timed steps (after one untimed step that loads or compiles the kernels)
MAX_CALIBRATION_SECONDS = 3.0  # a huge model is timed on fewer steps
EVAL_COST = 1 / 3         # a forward-only token costs about a third of a training token


@dataclass
class Estimate:
    """What a run will cost, before it starts."""

    params: int
    memory_bytes: int
    steps: int
    seconds: float
    tokens_per_s: float
    calibrated_now: bool     # False: the step time came from the cache

    def to_json(self) -> dict[str, Any]:
        return {"params": self.params, "memory_bytes": self.memory_bytes, "steps": self.steps,
                "seconds": self.seconds, "tokens_per_s": self.tokens_per_s}

    def line(self) -> str:
        return (f"{self.params:,} parameters · ~{self.memory_bytes / MiB:,.0f} MiB · "
                f"{self.steps:,} steps ≈ {format_seconds(self.seconds)} at ~{self.tokens_per_s:,.0f} tok/s")


def format_seconds(seconds: float | None) -> str:
    """``45s``, ``3m 12s``, ``1h 04m``; ``—`` for unknown (the app's ETA uses it too)."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _machine() -> str:
    from seqtui.models.threads import available_cpus

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.machine()}|{cpu}|{available_cpus()}"


def _shape_key(cfg: RunConfig, vocab_size: int) -> str:
    shape = [cfg.cell, cfg.hidden, cfg.layers, vocab_size, cfg.batch_size, cfg.num_steps, cfg.dtype,
             cfg.optimizer, cfg.threads, _machine()]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:24]


def step_seconds(cfg: RunConfig, vocab_size: int) -> tuple[float, bool]:
    """(seconds per training step of this shape on this machine, measured now?)."""
    path = paths.cache_dir() / CALIBRATION_FILE
    key = _shape_key(cfg, vocab_size)
    try:
        table = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    if isinstance(table.get(key), (int, float)) and table[key] > 0:
        return float(table[key]), False
    seconds = _calibrate(cfg, vocab_size)
    table[key] = seconds
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(table))
    except OSError:
        pass  # a read-only cache: calibrate again next time
    return seconds, True


def _calibrate(cfg: RunConfig, vocab_size: int) -> float:
    """Median time of a few full training steps (forward, backward, clip, update) of this shape."""
    import numpy as np

    from seqtui.engine.trainer import _threads
    from seqtui.models.bptt import carry_scale_for
    from seqtui.models.charmodel import CharModel
    from seqtui.models.optim import SGD, Adam, clip_grad_norm

    model = CharModel(cfg.model_config(vocab_size), seed=0, dtype=np.dtype(cfg.dtype),
                      threads=_threads(cfg.threads))
    opt = SGD(cfg.lr) if cfg.optimizer == "sgd" else Adam(cfg.lr)
    rng = np.random.default_rng(0)
    B, T = cfg.batch_size, cfg.num_steps
    ids = rng.integers(0, vocab_size, size=(B, T + 1)).astype(np.int32)
    X, Y = np.ascontiguousarray(ids[:, :-1]), np.ascontiguousarray(ids[:, 1:])
    cs = carry_scale_for("full", T)
    times: list[float] = []
    for i in range(CALIBRATION_STEPS + 1):
        t0 = time.perf_counter()
        model.loss_and_grad(X, Y, model.init_state(B), cs)
        clip_grad_norm(model.grads, 1.0)
        opt.step(model.params, model.grads)
        if i:  # the first step loads (or compiles) the kernels
            times.append(time.perf_counter() - t0)
            if sum(times) > MAX_CALIBRATION_SECONDS:
                break
    return sorted(times)[len(times) // 2]


def total_steps(cfg: RunConfig, train_tokens: int) -> int:
    """The run's step budget: --steps, or epochs × batches per epoch (offset d ≈ T/2 on average)."""
    if cfg.steps is not None:
        return int(cfg.steps)
    B, T = cfg.batch_size, cfg.num_steps
    per_epoch = max(0, (train_tokens - T // 2 - 1) // T // B)
    return int(cfg.total_epochs() or 0) * per_epoch


def estimate(cfg: RunConfig, vocab_size: int, train_tokens: int, val_tokens: int) -> Estimate:
    """Parameter count, memory and duration of ``cfg`` on a corpus with these token counts."""
    from seqtui.models.charmodel import parameter_shapes
    from seqtui.models.memory import training_bytes

    mcfg = cfg.model_config(vocab_size)
    import numpy as np

    params = sum(math.prod(s) for _, s in parameter_shapes(mcfg))
    memory = training_bytes(mcfg, cfg.batch_size, cfg.num_steps, np.dtype(cfg.dtype))
    per_step, fresh = step_seconds(cfg, vocab_size)
    steps = total_steps(cfg, train_tokens)
    tokens_per_step = cfg.batch_size * cfg.num_steps
    seconds = steps * per_step
    if val_tokens and cfg.val_fraction > 0:
        from seqtui.engine.trainer import VAL_TOKENS_LIMIT

        validations = (cfg.total_epochs() or 0) + (steps // cfg.val_every if cfg.val_every else 0) + 1
        seconds += validations * min(val_tokens, VAL_TOKENS_LIMIT) / tokens_per_step * per_step * EVAL_COST
    return Estimate(params, memory, steps, seconds, tokens_per_step / per_step, fresh)


def estimate_for(cfg: RunConfig) -> Estimate:
    """The estimate for a validated config, loading (or mapping the cached tokens of) its corpus."""
    from seqtui.engine.prepare import prepare_data, resolve_corpus_path

    cfg = resolve_corpus_path(cfg.validate())
    data = prepare_data(cfg)
    return estimate(cfg, len(data.dataset.vocab), len(data.train_ids),
                    len(data.val_ids) if data.val_batch else 0)



def main() -> int:
    """``python -m seqtui.engine.estimate`` < config JSON: print the estimate line (exit 0) or a
    one-line error on stderr (exit 2). The app runs this in a child process, so the calibration's
    compile and timed steps never hold its GIL (its screen keeps its beat)."""
    import sys

    from seqtui.errors import SeqtuiError

    try:
        cfg = RunConfig.from_dict(json.loads(sys.stdin.read() or "null"))
        print(estimate_for(cfg).line())
    except SeqtuiError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"bad config: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
