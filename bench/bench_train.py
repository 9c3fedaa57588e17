"""Training and generation throughput of seqtui's kernels, against PyTorch CPU in the same run.

    python -m bench.bench_train            # all rows, PyTorch if importable, compile times
    python -m bench.bench_train --rows rnn256,gen512 --repeats 3 --no-compile

Training rows: float32, B=32, T=35, V=28, one layer, full BPTT, a whole step (forward, backward,
global-norm clip θ=1, SGD lr 1) on random tokens. PyTorch runs the same model:
``nn.RNN/GRU/LSTM`` on one-hot inputs + ``nn.Linear`` + ``cross_entropy`` + ``clip_grad_norm_``
+ ``SGD``, with 1 and with 2 threads — the faster counts. Each repeat times them back to back
(interleaved, so machine load hits all alike); the table shows medians. FLOP/s counts ≈ 6gH² + 6HV per token (g gates: 1 RNN, 3 GRU, 4 LSTM).
Generation: one stream of an RNN H=512, temperature 1, characters per second.
Compile: a fresh Numba cache in a child process (cold: every kernel), then a second child with
that cache (warm: import + the first training step).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

B, T, V = 32, 35, 28


def fma_peak_gflops() -> float:
    """This machine's single-precision FMA peak: cores × GHz × FLOPs/cycle (two FMA pipes:
    64 with AVX-512, 32 with AVX2+FMA, 16 otherwise), read from /proc/cpuinfo; 340 if unknown."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return 340.0
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    mhz = [float(ln.split(":", 1)[1]) for ln in info.splitlines() if ln.startswith("cpu MHz")]
    if not mhz:
        return 340.0
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 16
    return len(mhz) * max(mhz) / 1000 * per_cycle


PEAK_GFLOPS = fma_peak_gflops()
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
ROWS = {"rnn256": ("rnn", 256), "rnn512": ("rnn", 512), "gru256": ("gru", 256),
        "lstm256": ("lstm", 256), "gen512": ("gen", 512)}
TARGETS = {"rnn256": "≥1.5× torch", "rnn512": "≥1.5× torch, ≥100k tok/s", "gru256": "≥1.5× torch",
           "lstm256": "≥1.5× torch", "gen512": "≥50k chars/s"}


def flops_per_token(cell: str, H: int) -> float:
    g = GATES[cell]
    return 6.0 * g * H * H + 6.0 * H * V


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (B, T)).astype(np.int32), rng.integers(0, V, (B, T)).astype(np.int32)


def seqtui_step(cell: str, H: int, threads: int | None):
    """A closure running one seqtui training step."""
    from seqtui.models.charmodel import CharModel, ModelConfig
    from seqtui.models.optim import SGD, clip_grad_norm

    model = CharModel(ModelConfig(cell, V, H, 1), seed=0, threads=threads)
    opt = SGD(1.0)
    X, Y = _batch()
    state = model.init_state(B)

    def step():
        stats = model.loss_and_grad(X, Y, state, None)
        clip_grad_norm(model.grads, 1.0)
        opt.step(model.params, model.grads)
        return stats.loss

    step.model = model
    return step


def torch_step(cell: str, H: int, threads: int = 2):
    """A closure running the same step in PyTorch, or None when torch is not importable."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    rnn = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](V, H)
    fc = torch.nn.Linear(H, V)
    params = list(rnn.parameters()) + list(fc.parameters())
    opt = torch.optim.SGD(params, lr=1.0)
    Xn, Yn = _batch()
    torch.set_num_threads(threads)
    X = torch.from_numpy(Xn.T.astype(np.int64))
    Y = torch.from_numpy(Yn.T.reshape(-1).astype(np.int64))

    def step():
        torch.set_num_threads(threads)
        out, _ = rnn(torch.nn.functional.one_hot(X, V).float())
        loss = torch.nn.functional.cross_entropy(fc(out.reshape(-1, H)), Y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    return step


def _time(fn, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def bench_training(cell: str, H: int, repeats: int, inner: int, threads: int | None,
                   use_torch: bool, best: bool = False) -> dict:
    ours = seqtui_step(cell, H, threads)
    # PyTorch's better setting counts: 2 threads, or 1 when another process holds a core
    theirs = [torch_step(cell, H, k) for k in (1, 2)] if use_torch else []
    theirs = [f for f in theirs if f is not None]
    for _ in range(12):  # warm up (and let the thread tuner measure both settings)
        ours()
    for f in theirs:
        for _ in range(3):
            f()
    t_ours, t_torch = [], [[] for _ in theirs]
    for _ in range(repeats):
        t_ours.append(_time(ours, inner))
        for f, times in zip(theirs, t_torch):
            times.append(_time(f, inner))
    tok = B * T
    stat = min if best else statistics.median
    row = {"ours": tok / stat(t_ours)}
    row["torch"] = max(tok / stat(t) for t in t_torch) if theirs else None
    row["gflops"] = row["ours"] * flops_per_token(cell, H) / 1e9
    model = ours.model
    row["threads"] = model.threads if model.threads is not None else max(
        (t.current for t in model._tuners.values()), default=1)
    return row


def bench_generation(H: int, n: int = 20000) -> float:
    from seqtui.models.generate import Generator
    from seqtui.models.charmodel import CharModel, ModelConfig
    from seqtui.data.vocab import Vocab

    vocab = Vocab(["<unk>", " "] + [chr(ord("a") + i) for i in range(V - 2)])
    gen = Generator(CharModel(ModelConfig("rnn", V, H, 1), seed=0), vocab)
    gen.prime("the time machine")
    for _ in gen.sample(200, seed=0):
        pass
    best = 0.0
    for rep in range(3):
        start = time.perf_counter()
        for _ in gen.sample(n, temperature=1.0, seed=rep):
            pass
        best = max(best, n / (time.perf_counter() - start))
    return best


_WARMUP = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
from seqtui.models.charmodel import CharModel, ModelConfig
from seqtui.models.optim import SGD, Adam, clip_grad_norm
X = np.zeros((2, 3), np.int32)
cells = sys.argv[1].split(",")
for cell in cells:
    m = CharModel(ModelConfig(cell, 5, 64, 2), threads=1)
    m.loss_and_grad(X, X, None, None)
    if cell == cells[0]:
        print("first_step", time.perf_counter() - t0, flush=True)
    m.evaluate(X, X, None)
    clip_grad_norm(m.grads, 1.0); SGD(1.0).step(m.params, m.grads); Adam().step(m.params, m.grads)
    from seqtui.models.generate import Generator
    from seqtui.data.vocab import Vocab
    g = Generator(m, Vocab(["<unk>", "a", "b", "c", "d"]))
    g.prime("ab"); list(g.sample(3, seed=0))
print("all", time.perf_counter() - t0, flush=True)
"""


def compile_times() -> dict:
    """Cold compile of every float32 kernel, then the first step in a new process with that cache."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="seqtui-bench-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for phase in ("cold", "warm"):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _WARMUP, "rnn,gru,lstm"], env=env,
                                  capture_output=True, text=True)
            total = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.strip().splitlines()[-1])
            lines = dict(line.split() for line in proc.stdout.splitlines())
            out[phase] = {"process": total, "first_step": float(lines["first_step"]),
                          "all": float(lines["all"])}
    return out


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_train", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--inner", type=int, default=10, help="steps per timed repeat")
    ap.add_argument("--threads", default="auto", help="auto (tuned), 1 or 2")
    ap.add_argument("--best", action="store_true",
                    help="best repeat instead of the median (for a machine shared with other work)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown row {unknown[0]!r}")
    threads = None if args.threads == "auto" else int(args.threads)
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    use_torch = torch_version is not None and not args.no_torch
    print(f"seqtui bench: B={B} T={T} V={V} float32, {os.cpu_count()} CPUs, load {_load()}, "
          f"torch {torch_version if use_torch else 'not used'}, "
          f"{'best' if args.best else 'median'} of {args.repeats}×{args.inner} steps, "
          f"FMA peak {PEAK_GFLOPS:.0f} GFLOP/s", flush=True)
    print(f"{'row':9} {'seqtui':>12} {'torch':>12} {'ratio':>6} {'GFLOP/s':>8} {'%peak':>6} {'thr':>3}  target",
          flush=True)
    for name in rows:
        cell, H = ROWS[name]
        if cell == "gen":
            cps = bench_generation(H)
            print(f"{name:9} {cps:>10,.0f}/s {'':>12} {'':>6} {'':>8} {'':>6} {'':>3}  {TARGETS[name]}"
                  f" {'MET' if cps >= 50_000 else 'missed'}", flush=True)
            continue
        r = bench_training(cell, H, args.repeats, args.inner, threads, use_torch, args.best)
        ratio = r["ours"] / r["torch"] if r["torch"] else None
        met = ratio is not None and ratio >= 1.5 and (name != "rnn512" or r["ours"] >= 100_000)
        torch_s = f"{r['torch']:>10,.0f}/s" if r["torch"] else f"{'-':>12}"
        ratio_s = f"{ratio:>5.2f}×" if ratio else f"{'-':>6}"
        print(f"{name:9} {r['ours']:>10,.0f}/s {torch_s} {ratio_s} {r['gflops']:>8.1f} "
              f"{100 * r['gflops'] / PEAK_GFLOPS:>5.1f}% {r['threads']:>3}  {TARGETS[name]} "
              f"{'MET' if met else 'missed' if ratio else '?'}", flush=True)
    if not args.no_compile:
        ct = compile_times()
        print(f"compile: cold {ct['cold']['all']:.1f} s for every kernel (child process "
              f"{ct['cold']['process']:.1f} s); warm cache: first step {ct['warm']['first_step']:.2f} s "
              f"after start (target < 1 s)", flush=True)
    print(f"load at end {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
