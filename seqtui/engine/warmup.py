"""Compiling the kernels before they are needed, and saying which ones compile.

Numba compiles a kernel the first time it is called with new types and caches the machine code
on disk; a fresh install pays that once. This module:

- ``watch_compiles(callback)``: reports each kernel as it compiles (Numba's ``numba:compile``
  event; cache hits are silent), so the trainer and ``seqtui warmup`` can show progress;
- ``warm(cell, dtype)``: runs every path a training run of that cell uses (encoding, the n-gram
  baseline, forward/backward, clipping, both optimizers, evaluation, sampling) on tiny data;
- ``python -m seqtui.engine.warmup [--cells gru,lstm] [--jobs N]``: warms several cells in
  parallel processes (each kernel has its own cache file, so N cores cut the wall time by ~N),
  holding a shared lock so a trainer that starts meanwhile waits for the cache instead of
  compiling the same kernels again (``compile_lock``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from seqtui import paths

LOCK_NAME = "compile.lock"


@contextlib.contextmanager
def watch_compiles(callback: Callable[[str, float], None]) -> Iterator[None]:
    """Call ``callback(kernel name, seconds)`` after each kernel Numba compiles in this block."""
    import numba.core.event as ev

    class _Listener(ev.Listener):
        def __init__(self) -> None:
            self.started: list[float] = []

        def on_start(self, event) -> None:
            self.started.append(time.perf_counter())

        def on_end(self, event) -> None:
            t0 = self.started.pop() if self.started else time.perf_counter()
            func = getattr((event.data or {}).get("dispatcher"), "py_func", None)
            module = getattr(func, "__module__", "") or ""
            if module.startswith("seqtui.kernels."):  # not Numba's own overloads compiled inside
                callback(f"{module.rsplit('.', 1)[-1]}.{func.__name__}", time.perf_counter() - t0)

    listener = _Listener()
    ev.register("numba:compile", listener)
    try:
        yield
    finally:
        ev.unregister("numba:compile", listener)


@contextlib.contextmanager
def compile_lock(shared: bool) -> Iterator[None]:
    """A lock beside the caches: warm-up processes hold it shared, a trainer takes it exclusively
    (so it waits for a running warm-up rather than compiling the same kernels twice). Where no
    lock can be taken (a read-only cache), nothing waits."""
    import fcntl

    try:
        directory = paths.cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


PARTS = ("model", "extras")  # split so that even one cell compiles on two cores at once


def _cached(dispatcher) -> bool:
    """True if Numba's cache holds a compiled version of this kernel (its index file exists)."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # another Numba: assume not, a warm-up then only costs a cache load
        return False


def extras_cached() -> bool:
    """Are the kernels beside the training path (n-gram, sampling) compiled already?"""
    from seqtui.kernels import ngram, sample

    return all(map(_cached, (ngram.count_dense, sample.feed, sample.generate)))


def start_extras(cell: str, dtype: str) -> subprocess.Popen | None:
    """Compile the n-gram and sampling kernels in a second process while this one compiles the
    training path (a fresh install's first run uses both cores); None when they are cached."""
    if extras_cached():
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "seqtui.engine.warmup", "--part", "extras", "--cells", cell,
             "--dtype", dtype, "--no-lock", "-q"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def warm(cell: str = "gru", dtype: str = "float32", parts: tuple[str, ...] = PARTS) -> None:
    """Run, on tiny data, every kernel path a training run of ``cell`` uses: ``model`` (forward,
    backward, clipping, optimizers, evaluation) and ``extras`` (encoding, n-gram, sampling)."""
    import numpy as np

    from seqtui.data.text import TextConfig, load_dataset
    from seqtui.models.charmodel import CharModel, ModelConfig

    with tempfile.TemporaryDirectory(prefix="seqtui-warmup-") as tmp:
        corpus = Path(tmp) / "warmup.txt"
        corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 40, encoding="utf-8")
        datasets = [load_dataset(TextConfig(str(corpus), tokens=t))
                    for t in (("char", "word") if "extras" in parts else ("char",))]
    ds = datasets[0]
    ids = np.ascontiguousarray(ds.ids, dtype=np.int32)
    model = CharModel(ModelConfig(cell=cell, vocab_size=len(ds.vocab), hidden=8, num_layers=2),
                      seed=0, dtype=np.dtype(dtype))
    if "model" in parts:
        _warm_model(model, ids)
    if "extras" in parts:
        _warm_extras(model, ds, ids)


def _warm_model(model, ids) -> None:
    from seqtui.models.bptt import carry_scale_for
    from seqtui.models.optim import SGD, Adam, clip_grad_norm

    B, T = 4, 8
    X = ids[: B * T].reshape(B, T)
    Y = ids[1: B * T + 1].reshape(B, T)
    for mode in ("full", "truncated"):
        cs = carry_scale_for(mode, T, k=3 if mode == "truncated" else None)
        model.loss_and_grad(X, Y, model.init_state(B), cs)
    clip_grad_norm(model.grads, 1.0)
    for opt in (SGD(0.1), Adam(0.01)):
        opt.step(model.params, model.grads)
    model.evaluate(X[:1], Y[:1], model.init_state(1))


def _warm_extras(model, ds, ids) -> None:
    from seqtui.models.generate import Generator
    from seqtui.models.ngram import baseline_perplexity

    baseline_perplexity(ids[:1000], ids[1000:1400], len(ds.vocab), order=3)
    gen = Generator(model, ds.vocab)
    gen.prime(ds.vocab.itos[-1])
    list(gen.sample(3, seed=0))
    list(gen.sample(3, temperature=0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqtui.engine.warmup", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="gru", help="comma-separated cells to compile for")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--jobs", type=int, default=0, help="parallel processes (default: the cores)")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a child: one task here
    parser.add_argument("--no-lock", action="store_true", help=argparse.SUPPRESS)  # a trainer's own helper
    args = parser.parse_args(argv)
    cells = [c for c in args.cells.split(",") if c]
    from seqtui.models.choices import CELLS, DTYPES

    for cell in cells:
        if cell not in CELLS:
            print(f"error: unknown cell {cell!r} (choose from {', '.join(CELLS)})", file=sys.stderr)
            return 2
    if args.dtype not in DTYPES:
        print(f"error: unknown dtype {args.dtype!r}", file=sys.stderr)
        return 2

    def say(name: str, seconds: float) -> None:
        if not args.quiet:
            print(f"compiled {name} in {seconds:.1f} s", flush=True)

    with (contextlib.nullcontext() if args.no_lock else compile_lock(shared=True)):
        from seqtui.models.threads import available_cpus

        jobs = args.jobs or available_cpus()
        if args.part or jobs == 1:
            with watch_compiles(say):
                for cell in cells:
                    warm(cell, args.dtype, (args.part,) if args.part else PARTS)
            return 0
        # extras are the same kernels for every cell: compile them once
        pending = [(cell, "model") for cell in cells] + [(cells[0], "extras")]
        running: list[subprocess.Popen] = []
        status = 0
        while pending or running:
            while pending and len(running) < jobs:
                cell, part = pending.pop(0)
                running.append(subprocess.Popen(
                    [sys.executable, "-m", "seqtui.engine.warmup", "--part", part, "--cells", cell,
                     "--dtype", args.dtype] + (["-q"] if args.quiet else [])))
            time.sleep(0.05)
            for child in [c for c in running if c.poll() is not None]:
                status = status or child.returncode
                running.remove(child)
        return status


if __name__ == "__main__":
    sys.exit(main())
