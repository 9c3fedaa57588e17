"""Recorded runs for the app's tests: config.json + events.jsonl written by hand, per schema v1.

The streams are deterministic (fixed times, a smooth falling perplexity), so screens rendered
from them are stable enough for snapshots. A "running" run names this test process in its pid
file: the engine treats its own pid as a live trainer.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

T0 = 1_750_000_000.0
SECONDS_PER_STEP = 0.05

TINY_TEXT = (
    "the time machine, by h. g. wells. the time traveller (for so it will be convenient to speak "
    "of him) was expounding a recondite matter to us. his grey eyes shone and twinkled, and his "
    "usually pale face was flushed and animated. the fire burned brightly, and the soft radiance "
    "of the incandescent lights in the lilies of silver caught the bubbles that flashed and "
    "passed in our glasses.\n"
) * 6


def base_config(**overrides) -> dict:
    from seqtui.engine.config import RunConfig

    cfg = RunConfig(corpus="genesis", hidden=128, epochs=5, progress_every=10, val_every=100,
                    grad_profile_every=50, sample_every=200, vocab_size=64).to_dict()
    cfg.update(overrides)
    return cfg


def ppl_at(step: int, start: float = 60.0, floor: float = 5.5, scale: float = 120.0) -> float:
    """A smooth training curve: from ``start`` down towards ``floor``, with a small ripple."""
    return floor + (start - floor) * math.exp(-step / scale) + 0.15 * math.sin(step / 7.0)


def profile(step: int, T: int = 35, bptt: str = "full") -> list[float]:
    """‖∂L/∂h_t‖ for t = 1..T: accumulating towards t = 1, less so as training goes on."""
    k = int(bptt.split(":")[1]) if bptt.startswith("truncated:") else None
    decay = 0.12 + 0.05 * math.exp(-step / 300)
    norms = []
    for t in range(1, T + 1):
        depth = (T - t) if k is None else (T - t) % k
        norms.append(0.02 * math.exp(decay * depth) / (1 + step / 500))
    return norms


def record_run(name: str, *, steps: int = 400, total_steps: int = 1000, status: str = "running",
               bptt: str = "full", root: Path | None = None, config: dict | None = None,
               baseline: float | None = 8.4, error: str | None = None, reason: str | None = None) -> Path:
    """Write a run directory whose events describe ``steps`` steps of training."""
    from seqtui.engine.runs import runs_root

    path = (root or runs_root()) / name
    path.mkdir(parents=True, exist_ok=True)
    mode, _, arg = bptt.partition(":")
    cfg = config or base_config(bptt=mode, bptt_k=int(arg) if mode == "truncated" else None)
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
    os.utime(path / "config.json", (T0, T0))
    events: list[dict] = []

    def emit(type_: str, step: int | None = None, dt: float = 0.0, **fields) -> None:
        t = T0 + (step or 0) * SECONDS_PER_STEP + dt
        event = {"v": 1, "type": type_, "time": t}
        if step is not None:
            event["step"] = step
        event.update(fields)
        events.append(event)

    spe = 200
    emit("start", 0, run=name, pid=12345, total_steps=total_steps, steps_per_epoch=spe,
         train_tokens=184_000, val_tokens=20_400, vocab_size=64, config=cfg, resumed=False)
    emit("compile", None, 0.1, state="start")
    emit("compile", None, 2.0, state="done", seconds=1.9)
    if baseline is not None:
        emit("baseline", None, 2.1, order=3, val_ppl=baseline)
    best = math.inf
    clipped_recent: list[bool] = []
    for step in range(10, steps + 1, 10):
        ppl = ppl_at(step)
        norm = 0.6 + 2.0 * math.exp(-step / 150) + 0.2 * math.sin(step / 13.0)
        clipped = norm > cfg.get("clip", 1.0) if cfg.get("clip") else False
        clipped_recent = (clipped_recent + [clipped])[-10:]
        emit("progress", step, 2.5, epoch=step / spe, tokens_per_s=41_250.0, loss=math.log(ppl),
             ppl=ppl, lr=cfg.get("lr", 0.002), grad_norm=norm, clipped=clipped,
             clip_rate=sum(clipped_recent) / len(clipped_recent))
        if step % 50 == 0:
            emit("grad_profile", step, 2.5, norms=profile(step, cfg.get("num_steps", 35), bptt), bptt=bptt)
        if step % 100 == 0:
            val = ppl_at(step) * 1.08
            best = min(best, val)
            emit("val", step, 2.6, epoch=step / spe, loss=math.log(val), ppl=val, best_ppl=best,
                 bits_per_char=math.log2(val))
        if step % 200 == 0:
            emit("sample", step, 2.7, prompt="I", temperature=0.8,
                 text="In the beginning God created the heaven and the earth. And the earth was "
                      "without form, and void; and darkness was upon the face of the deep.")
            emit("epoch", step, 2.7, epoch=step // spe, train_loss=math.log(ppl), train_ppl=ppl,
                 seconds=10.0, lr=cfg.get("lr", 0.002))
            emit("checkpoint", step, 2.8, kind="latest", path=str(path / "checkpoints" / "latest.safetensors"))
    if error:
        emit("error", steps, 3.0, message=error)
    if status != "running":
        end_status = {"finished": "finished", "stopped": "stopped", "failed": "failed"}[status]
        reason = reason or {"finished": "finished", "stopped": "SIGTERM", "failed": "error"}[status]
        emit("end", steps, 3.0, reason=reason, status=end_status, train_ppl=ppl_at(steps))
    with open(path / "events.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    if status == "running":
        (path / "pid").write_text(f"{os.getpid()}\n")
    else:
        (path / "pid").unlink(missing_ok=True)
    return path


class FakeGenerator:
    """Stands in for seqtui.models.generate.Generator: a fixed vocabulary, a deterministic stream."""

    VOCAB = set("abcdefghijklmnopqrstuvwxyz ,.\n")

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.prompt = ""

    def prime(self, prompt: str) -> list[str]:
        self.prompt = prompt
        return [c for c in prompt if c not in self.VOCAB]

    def sample(self, n, temperature=1.0, top_k=0, top_p=1.0, seed=None):
        import time

        text = "and the earth was without form, and void. "
        for i in range(n):
            if self.delay:
                time.sleep(self.delay)
            yield text[(i + (seed or 0)) % len(text)]


def fake_loader(delay: float = 0.0):
    """A ``generator_loader`` for make_app that never touches numba."""
    from seqtui.ui.screens.generate import LoadedModel

    def load(path):
        return LoadedModel(name=Path(path).name, make=lambda: FakeGenerator(delay), is_char=True,
                           step=400, val_ppl=6.1, kind="best")

    return load


def add_checkpoint_files(path: Path, step: int = 400, val: float = 6.1) -> None:
    """Empty checkpoint files so the Generate screen offers the run (the fake loader ignores them)."""
    ckpt = path / "checkpoints"
    ckpt.mkdir(exist_ok=True)
    (ckpt / "best.safetensors").write_bytes(b"")
    (ckpt / "best.json").write_text(json.dumps({"step": step, "best_val_ppl": val}))


def screen_text(app) -> str:
    """The current screen as plain text (what a terminal would show, without colours)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def pilot_test(fn):
    """Run an ``async def`` test with asyncio.run (the suite has no async pytest plugin)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def series_run(name: str = "sine-linear", model: str = "linear", tau: int = 4, epochs: int = 2) -> Path:
    """A finished series run made by the engine in this process (a linear model trains in ~1 s)."""
    from seqtui.engine.runs import start_run
    from seqtui.engine.series_trainer import SeriesTrainer
    from seqtui.models.series import SeriesRunConfig

    rd = start_run(SeriesRunConfig(source="sine", tau=tau, model=model, epochs=epochs), name=name,
                   detach=False)
    SeriesTrainer(rd).run()
    return rd.path


MEMO_TRAINING_TEXT = ("In the beginning God created the heaven and the earth. "
                      "and the earth was without form, and void. ") * 2


class FakeMemoIndex:
    """Stands in for seqtui.data.memorize.MemoIndex (no corpus, no kernels): matches against a
    fixed training text, character by character, like the real one."""

    def __init__(self, training: str = MEMO_TRAINING_TEXT):
        self.training = training
        self.scored: list[str] = []

    def score(self, text: str, threshold: int = 20):
        from seqtui.data.memorize import MemoScore, copied_spans
        import numpy as np

        self.scored.append(text)
        lens = np.zeros(len(text), np.int32)
        for i in range(len(text)):
            j = i
            while j < len(text) and text[i:j + 1] in self.training:
                j += 1
            lens[i] = j - i
        spans = copied_spans(lens, threshold)
        best = int(lens.argmax()) if len(text) else 0
        L = int(lens[best]) if len(text) else 0
        at = self.training.find(text[best:best + L]) if L else -1
        return MemoScore(length=len(text), threshold=threshold, longest_len=L, longest_at=at,
                         longest_sample_start=best if L else -1, longest_count=1 if L else 0,
                         longest_line=1 if L else None,
                         covered_fraction=sum(e - s for s, e in spans) / len(text) if len(text) else 0.0,
                         spans=spans, text=text, char_spans=list(spans),
                         longest_text=text[best:best + L] if L else None, match_lengths=lens)


def fake_memo_loader(index: FakeMemoIndex | None = None):
    """A ``memo_loader`` for make_app: every run gets the fake index (no tokenizing, no numba)."""
    index = index or FakeMemoIndex()
    return lambda path: index


def fake_estimator(line: str = "160,704 parameters · ~9 MiB · 1,250 steps ≈ 41 s at ~30,000 tok/s",
                   calls: list | None = None):
    """An ``estimator`` for make_app: a fixed line, no corpus, no calibration."""

    def estimate(config: dict) -> str:
        if calls is not None:
            calls.append(config)
        return line

    return estimate
