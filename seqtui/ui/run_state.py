"""What the app knows about one run, folded from its events.jsonl (no Textual, no numpy).

The screens never read files: a tail worker feeds new events to :meth:`RunState.ingest` and the
screens redraw from this object at most twice a second. Everything derived here (ETA, clip rate,
curves) comes from event fields and event times, so a recorded stream always renders the same.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# How many recent events of each kind the dashboards keep (curves keep everything).
GRAD_HISTORY = 300
PROFILE_HISTORY = 60
RATE_WINDOW = 20  # progress events used for steps/s (and so the ETA)


@dataclass
class RunState:
    """A run as seen through its events; ``version`` changes whenever anything visible does."""

    path: Path
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "unknown"            # from runs.get_run: running | stopped | finished | failed
    reason: str | None = None
    start: dict | None = None          # the last `start` event
    compile: dict | None = None        # the last `compile` event
    last_progress: dict | None = None
    last_val: dict | None = None
    last_epoch: dict | None = None
    last_sample: dict | None = None
    baseline: dict | None = None
    end: dict | None = None            # the `end` after the last `start`, if any
    errors: list[str] = field(default_factory=list)
    train: list[tuple[int, float]] = field(default_factory=list)   # (step, train ppl)
    val: list[tuple[int, float]] = field(default_factory=list)     # (step, val ppl)
    grad_norms: deque = field(default_factory=lambda: deque(maxlen=GRAD_HISTORY))  # (step, norm, clipped)
    profiles: deque = field(default_factory=lambda: deque(maxlen=PROFILE_HISTORY))  # grad_profile events
    _rate: deque = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))  # (time, step) this segment
    version: int = 0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.name:
            self.name = self.path.name

    # -- folding events ------------------------------------------------------------------------
    def ingest(self, events: Iterable[dict]) -> bool:
        """Fold new events in order; returns True if anything changed."""
        changed = False
        for event in events:
            handler = _HANDLERS.get(event.get("type"))
            if handler is not None:
                handler(self, event)
                changed = True
        if changed:
            self.version += 1
        return changed

    def set_status(self, status: str, reason: str | None = None, config: dict | None = None) -> None:
        """Record the status derived by the engine (pid liveness is not in the events)."""
        if config and config != self.config:
            self.config = dict(config)
            self.version += 1
        if (status, reason) != (self.status, self.reason):
            self.status, self.reason = status, reason
            self.version += 1

    def _on_start(self, e: dict) -> None:
        self.start, self.end, self.compile = e, None, None
        if isinstance(e.get("config"), dict):
            self.config = dict(e["config"])
        step = _int(e.get("step"))
        # A resume from an earlier checkpoint re-trains some steps: drop the points after it.
        self.train = [p for p in self.train if p[0] <= step]
        self.val = [p for p in self.val if p[0] <= step]
        self._rate.clear()
        self._rate.append((float(e.get("time") or 0.0), step))

    def _on_compile(self, e: dict) -> None:
        self.compile = e

    def _on_progress(self, e: dict) -> None:
        self.last_progress = e
        step, ppl = _int(e.get("step")), _num(e.get("ppl"))
        if ppl is not None:
            self.train.append((step, ppl))
        norm = _num(e.get("grad_norm"))
        if norm is not None:
            self.grad_norms.append((step, norm, bool(e.get("clipped"))))
        self._rate.append((float(e.get("time") or 0.0), step))

    def _on_val(self, e: dict) -> None:
        self.last_val = e
        ppl = _num(e.get("ppl"))
        if ppl is not None:
            self.val.append((_int(e.get("step")), ppl))

    def _on_epoch(self, e: dict) -> None:
        self.last_epoch = e

    def _on_profile(self, e: dict) -> None:
        if isinstance(e.get("norms"), list) and e["norms"]:
            self.profiles.append(e)

    def _on_sample(self, e: dict) -> None:
        self.last_sample = e

    def _on_baseline(self, e: dict) -> None:
        if _num(e.get("val_ppl")) is not None:
            self.baseline = e

    def _on_error(self, e: dict) -> None:
        self.errors.append(str(e.get("message") or "unknown error"))

    def _on_end(self, e: dict) -> None:
        self.end = e

    # -- derived numbers -----------------------------------------------------------------------
    @property
    def step(self) -> int:
        steps = [_int(e.get("step")) for e in (self.last_progress, self.last_val, self.start, self.end) if e]
        return max(steps, default=0)

    @property
    def total_steps(self) -> int | None:
        return _int(self.start.get("total_steps")) or None if self.start else None

    @property
    def steps_per_epoch(self) -> int | None:
        return _int(self.start.get("steps_per_epoch")) or None if self.start else None

    @property
    def epoch(self) -> float:
        if self.last_progress and _num(self.last_progress.get("epoch")) is not None:
            return float(self.last_progress["epoch"])
        spe = self.steps_per_epoch
        return self.step / spe if spe else 0.0

    @property
    def total_epochs(self) -> float | None:
        """The epochs asked for (config ``epochs``, or the default when neither epochs nor steps
        is set), not the trainer's step count divided by steps per epoch, which is rounded
        and changes on resume; a steps-limited run shows steps / steps per epoch."""
        from seqtui.engine.config import DEFAULT_EPOCHS

        cfg = self.config or {}
        if cfg.get("epochs"):
            return float(cfg["epochs"])
        if cfg and cfg.get("steps") is None:
            return float(DEFAULT_EPOCHS)
        spe, total = self.steps_per_epoch, self.total_steps
        return total / spe if spe and total else None

    @property
    def best_val(self) -> float | None:
        if self.last_val and _num(self.last_val.get("best_ppl")) is not None:
            return float(self.last_val["best_ppl"])
        return min((p for _, p in self.val), default=None)

    @property
    def steps_per_second(self) -> float | None:
        """Optimizer steps per second over the last few progress events of this segment."""
        if len(self._rate) < 2:
            return None
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    @property
    def eta_seconds(self) -> float | None:
        total, rate = self.total_steps, self.steps_per_second
        if total is None or rate is None or self.end is not None or self.status == "gone":
            return None
        return max(0.0, (total - self.step) / rate)

    @property
    def clip(self) -> float | None:
        return _num(self.config.get("clip"))

    @property
    def clip_rate(self) -> float | None:
        return _num(self.last_progress.get("clip_rate")) if self.last_progress else None

    @property
    def compiling(self) -> bool:
        return bool(self.compile and self.compile.get("state") == "start" and self.end is None)

    @property
    def model_label(self) -> str:
        return model_label(self.config)

    def load_info(self, info: Any) -> None:
        """Take status, reason and config from a :class:`seqtui.engine.runs.RunInfo`."""
        self.set_status(info.status, info.reason, info.config or None)


def model_label(config: dict) -> str:
    """``GRU 1×128`` from a run config."""
    cell = str(config.get("cell") or "?").upper()
    return f"{cell} {config.get('layers') or 1}×{config.get('hidden') or '?'}"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


_HANDLERS = {
    "start": RunState._on_start,
    "compile": RunState._on_compile,
    "progress": RunState._on_progress,
    "val": RunState._on_val,
    "epoch": RunState._on_epoch,
    "grad_profile": RunState._on_profile,
    "sample": RunState._on_sample,
    "baseline": RunState._on_baseline,
    "error": RunState._on_error,
    "end": RunState._on_end,
}


# -- formatting helpers shared by the widgets ----------------------------------------------------
def fmt_duration(seconds: float | None) -> str:
    """``3m 12s``, ``1h 04m``, ``—`` for unknown (one format with the engine's estimate)."""
    from seqtui.engine.estimate import format_seconds

    return format_seconds(seconds)


def fmt_ppl(value: float | None) -> str:
    """Perplexity with three significant digits (``5.83``, ``28.4``, ``1,204``)."""
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_sci(value: float | None) -> str:
    """A gradient norm: ``0.84``, ``3.1e-02``."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if 0.01 <= abs(value) < 1000:
        return f"{value:.3g}"
    return f"{value:.1e}"


STATUS_MARK = {"running": "●", "stopped": "■", "finished": "✓", "failed": "✗", "gone": "∅",
               "unknown": "?"}


class BestBpc:
    """The best validation bits per character of each text run (``val`` events' ``bits_per_char``),
    read incrementally: each run's events.jsonl is tailed, so a refresh reads only new lines.
    Called from the runs-list worker thread."""

    MAX_BYTES = 8 << 20   # per run and refresh: a huge log is read over a few refreshes

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._tails: dict[Path, tuple[Any, float | None]] = {}

    def update(self, runs: Iterable[Any]) -> dict[Path, float]:
        from seqtui.engine.rundir import RunDir

        out: dict[Path, float] = {}
        with self._lock:
            for info in runs:
                if getattr(info, "kind", "text") == "series":
                    continue
                tail, best = self._tails.get(info.path) or (RunDir(info.path).tail(), None)
                before = tail.offset
                events = tail.poll(max_bytes=self.MAX_BYTES)
                if tail.offset < before:  # the log was replaced: start over
                    best = None
                for e in events:
                    if e.get("type") == "val":
                        bpc = _num(e.get("bits_per_char"))
                        if bpc is not None and (best is None or bpc < best):
                            best = bpc
                self._tails[info.path] = (tail, best)
                if best is not None:
                    out[info.path] = best
        return out
