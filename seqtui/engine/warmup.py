"""Compiling the kernels before they are needed, and saying which ones compile.

Numba compiles a kernel the first time it is called with new types and caches the machine code
on disk; a fresh install pays that once. This module:

- ``watch_compiles(callback)``: reports each kernel as it compiles (Numba's ``numba:compile``
  event; cache hits are silent), so the trainer and ``seqtui warmup`` can show progress;
- ``warm(cell, dtype)``: runs every path a training run of that cell uses (encoding, the n-gram
  baseline, forward/backward, clipping, both optimizers, evaluation, sampling) on tiny data;
- ``Helper``: a trainer's own helper process, compiling the backward pass and then the n-gram and
  sampling kernels on the other core while the trainer compiles the forward pass; it reports each
  kernel on a pipe, and the trainer waits for the backward part before its first step;
- ``python -m seqtui.engine.warmup [--cells gru,lstm] [--jobs N]``: warms several cells in
  parallel processes (each kernel has its own cache file, so N cores cut the wall time by ~N),
  holding a shared lock so a trainer that starts meanwhile waits for the cache instead of
  compiling the same kernels again (``compile_lock``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
HELPER_PARTS = ("backward", "extras")  # a trainer's helper: what the trainer itself does not compile


def _cached(dispatcher) -> bool:
    """True if Numba's cache holds a compiled version of this kernel (its index file exists)."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # another Numba: assume not, a warm-up then only costs a cache load
        return False


def part_cached(part: str, cell: str) -> bool:
    """Are the kernels of a helper part (``HELPER_PARTS``) compiled already?"""
    import importlib

    from seqtui.kernels import linear, ngram, sample

    if part == "backward":
        cell_kernels = importlib.import_module(f"seqtui.kernels.{cell}")
        return all(map(_cached, (getattr(cell_kernels, f"{cell}_backward"), linear.matmul_tn)))
    return all(map(_cached, (ngram.count_dense, sample.feed, sample.generate, sample.generate_shared)))


class Helper:
    """A process compiling ``HELPER_PARTS`` of a run's kernels into the shared cache. It prints one
    JSON line per compiled kernel and per finished part; a thread reads them into a queue."""

    def __init__(self, cell: str, dtype: str) -> None:
        import queue
        import threading

        self.parts = [p for p in HELPER_PARTS if not part_cached(p, cell)]
        self.done: set[str] = set()
        self.ended = False  # its pipe closed: nothing more will come
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        if not self.parts:
            return
        argv = [sys.executable, "-m", "seqtui.engine.warmup", "--cells", cell, "--dtype", dtype,
                "--no-lock", "--report"]
        for part in self.parts:
            argv += ["--part", part]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self.parts = []
            return
        threading.Thread(target=self._read, name="seqtui-compile-helper", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                self._lines.put(msg)
        self._lines.put(None)  # the helper ended

    def wait_for(self, part: str, on_kernel: Callable[[str, float], None],
                 stopping: Callable[[], bool], timeout: float = 600.0) -> bool:
        """Block until the helper has compiled ``part`` (calling ``on_kernel`` for each kernel it
        reports), it ended, ``stopping()`` or ``timeout``. True if the part is in the cache."""
        import queue

        if part not in self.parts:
            return False
        deadline = time.monotonic() + timeout
        while (part not in self.done and not self.ended and time.monotonic() < deadline
               and not stopping()):
            try:
                msg = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if msg is None:
                self.ended = True
            elif "done" in msg:
                self.done.add(str(msg["done"]))
            elif "kernel" in msg:
                on_kernel(str(msg["kernel"]), float(msg.get("seconds", 0.0)))
        return part in self.done

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()


def warm(cell: str = "gru", dtype: str = "float32", parts: tuple[str, ...] = PARTS) -> None:
    """Run, on tiny data, every kernel path a training run of ``cell`` uses: ``model`` (forward,
    backward, clipping, optimizers, evaluation) and ``extras`` (encoding, n-gram, sampling);
    ``backward`` is the backward pass alone (a trainer's helper, ``Helper``)."""
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
    if "backward" in parts:
        B, T = 4, 8
        model.compile_backward(ids[: B * T].reshape(B, T), ids[1: B * T + 1].reshape(B, T))
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
    import numpy as np

    from seqtui.models.generate import Generator
    from seqtui.models.ngram import baseline_perplexity

    baseline_perplexity(ids[:1000], ids[1000:1400], len(ds.vocab), order=3)
    gen = Generator(model, ds.vocab)
    gen.prime(ds.vocab.itos[-1])
    list(gen.sample(3, seed=0))
    list(gen.sample(3, temperature=0.0))
    if model.dtype == np.float32:  # wide float32 models generate on every core: that kernel too
        from seqtui.kernels import sample

        wide = Generator(model, ds.vocab, precision="float16")
        out = np.empty(2, np.int32)
        sample.generate_shared(0, *wide.shared_args(1, out, wide.kernel_args(), np.zeros(2), 1.0, 0, 1.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqtui.engine.warmup", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="gru", help="comma-separated cells to compile for")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--jobs", type=int, default=0, help="parallel processes (default: the cores)")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("--part", action="append", choices=PARTS + HELPER_PARTS[:1],
                        help=argparse.SUPPRESS)  # a child: these tasks, in order
    parser.add_argument("--no-lock", action="store_true", help=argparse.SUPPRESS)  # a trainer's own helper
    parser.add_argument("--report", action="store_true", help=argparse.SUPPRESS)  # JSON lines for a Helper
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
        if args.report:
            print(json.dumps({"kernel": name, "seconds": round(seconds, 3)}), flush=True)
        elif not args.quiet:
            print(f"compiled {name} in {seconds:.1f} s", flush=True)

    with (contextlib.nullcontext() if args.no_lock else compile_lock(shared=True)):
        from seqtui.models.threads import available_cpus

        jobs = args.jobs or available_cpus()
        if args.part or jobs == 1:
            with watch_compiles(say):
                for part in args.part or [",".join(PARTS)]:
                    for cell in cells:
                        warm(cell, args.dtype, tuple(part.split(",")))
                    if args.report:
                        print(json.dumps({"done": part}), flush=True)
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
