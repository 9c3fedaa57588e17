"""Training and generation throughput of seqtui's kernels, against PyTorch CPU in the same run.

    python -m bench.bench_train            # all rows, PyTorch if importable, compile times
    python -m bench.bench_train --rows rnn256,gen512 --repeats 3 --no-compile

Training rows: float32, B=32, T=35, V=28, one layer (lstm2x256: two), full BPTT, a whole step
(forward, backward, global-norm clip θ=1, SGD lr 1) on random tokens. PyTorch runs the same
model: ``nn.RNN/GRU/LSTM`` on one-hot inputs + ``nn.Linear`` + ``cross_entropy`` +
``clip_grad_norm_`` + ``SGD``, with 1 and with 2 threads — the faster counts. seqtui runs with
each fixed thread count of ``--threads`` (one column each; the faster counts). Each repeat times
them all back to back (interleaved, so machine load hits all alike); the table shows medians
(``--best``: best repeats). FLOP/s counts ≈ 6gH²(2L−1) + 6HV per token (g gates: 1 RNN, 3 GRU,
4 LSTM; L layers). The peak is *measured* in the same run (a float32 2048³ GEMM on every
allowed core, before, between and after the rows; the best counts), not computed from CPU flags.
Target per row: 2× PyTorch, or — where 2× PyTorch would need more than 80% of the measured
peak — 80% of that peak; the table says which applies.
Generation: one stream of an RNN H=512, temperature 1, characters per second (target 100k).
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


def measured_peak_gflops(n: int = 2048, repeats: int = 4) -> float:
    """Attainable single-precision rate of this machine right now: the best of ``repeats``
    n³ float32 GEMMs (NumPy's OpenBLAS) on every core in the affinity mask, in GFLOP/s."""
    from threadpoolctl import threadpool_limits

    from seqtui.models.threads import available_cpus

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    with threadpool_limits(available_cpus(), user_api="blas"):
        np.dot(a, b, out=c)
        best = min(_time(lambda: np.dot(a, b, out=c), 1) for _ in range(repeats))
    time.sleep(BLAS_SETTLE)  # OpenBLAS's threads spin on the cores for a while after a call
    return 2.0 * n**3 / best / 1e9


BLAS_SETTLE = 0.5  # seconds; measured: generation right after the GEMMs ran 20% slower
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# name: (cell, hidden, layers)
ROWS = {"rnn256": ("rnn", 256, 1), "rnn512": ("rnn", 512, 1), "gru256": ("gru", 256, 1),
        "gru512": ("gru", 512, 1), "lstm256": ("lstm", 256, 1), "lstm512": ("lstm", 512, 1),
        "lstm2x256": ("lstm", 256, 2), "gen512": ("gen", 512, 1)}
GEN_TARGET = 100_000  # chars/s
RATIO_TARGET = 2.0    # × PyTorch CPU, same run
PEAK_SHARE = 0.8      # … or this share of the measured peak when 2× PyTorch would need more


def flops_per_token(cell: str, H: int, layers: int = 1) -> float:
    """≈ 6 FLOPs per multiply-add weight per token (forward 2, backward 4): every layer's W_hh
    (g·H²), the W_ih of layers above the first (g·H²; layer 0's one-hot input is a gather) and
    the output layer (H·V)."""
    g = GATES[cell]
    return 6.0 * g * H * H * (2 * layers - 1) + 6.0 * H * V


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (B, T)).astype(np.int32), rng.integers(0, V, (B, T)).astype(np.int32)


def seqtui_step(cell: str, H: int, layers: int, threads: int | None):
    """A closure running one seqtui training step."""
    from seqtui.models.charmodel import CharModel, ModelConfig
    from seqtui.models.optim import SGD, clip_grad_norm

    model = CharModel(ModelConfig(cell, V, H, layers), seed=0, threads=threads)
    opt = SGD(1.0)
    X, Y = _batch()
    state = model.init_state(B)

    def step():
        stats = model.loss_and_grad(X, Y, state, None)
        clip_grad_norm(model.grads, 1.0, norm=stats.grad_norm)  # as the trainer: one norm pass
        opt.step(model.params, model.grads)
        return stats.loss

    step.model = model
    return step


def torch_step(cell: str, H: int, layers: int, threads: int = 2):
    """A closure running the same step in PyTorch, or None when torch is not importable."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    rnn = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](V, H, layers)
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


def bench_training(cell: str, H: int, layers: int, repeats: int, inner: int, threads: list[int],
                   use_torch: bool, best: bool = False) -> dict:
    """tok/s of seqtui at each fixed thread count and of PyTorch at 1 and 2 threads (its faster
    setting counts), timed back to back in every repeat so machine load hits all alike."""
    ours = {k: seqtui_step(cell, H, layers, k) for k in threads}
    theirs = [torch_step(cell, H, layers, k) for k in (1, 2)] if use_torch else []
    theirs = [f for f in theirs if f is not None]
    for f in list(ours.values()) + theirs:
        for _ in range(3):
            f()
    t_ours = {k: [] for k in ours}
    t_torch = [[] for _ in theirs]
    for _ in range(repeats):
        for k, f in ours.items():
            t_ours[k].append(_time(f, inner))
        for f, times in zip(theirs, t_torch):
            times.append(_time(f, inner))
    tok = B * T
    stat = min if best else statistics.median
    row = {"by_threads": {k: tok / stat(t) for k, t in t_ours.items()}}
    row["threads"] = max(row["by_threads"], key=row["by_threads"].get)
    row["ours"] = row["by_threads"][row["threads"]]
    row["torch"] = max(tok / stat(t) for t in t_torch) if theirs else None
    row["gflops"] = row["ours"] * flops_per_token(cell, H, layers) / 1e9
    return row


def bench_generation(H: int, n: int = 20000, threads: int | None = None) -> float:
    from seqtui.models.generate import Generator
    from seqtui.models.charmodel import CharModel, ModelConfig
    from seqtui.data.vocab import Vocab

    vocab = Vocab(["<unk>", " "] + [chr(ord("a") + i) for i in range(V - 2)])
    gen = Generator(CharModel(ModelConfig("rnn", V, H, 1), seed=0, threads=threads), vocab)
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


def criterion(row: dict, cell: str, H: int, layers: int, peak: float) -> tuple[str, bool]:
    """Which target applies — 2× PyTorch, or 80% of the measured peak when 2× PyTorch would
    need more than that — and whether the row meets it."""
    if not row["torch"]:
        return "?", False
    need = RATIO_TARGET * row["torch"] * flops_per_token(cell, H, layers) / 1e9
    if need > PEAK_SHARE * peak:
        return f"{100 * PEAK_SHARE:.0f}% peak", row["gflops"] >= PEAK_SHARE * peak
    return f"{RATIO_TARGET:g}x torch", row["ours"] >= RATIO_TARGET * row["torch"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_train", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--inner", type=int, default=10, help="steps per timed repeat")
    ap.add_argument("--threads", default="1,2", help="comma list of seqtui thread counts (columns)")
    ap.add_argument("--best", action="store_true",
                    help="best repeat instead of the median (for a machine shared with other work)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown row {unknown[0]!r}")
    threads = [int(k) for k in args.threads.split(",") if k.strip()]
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    use_torch = torch_version is not None and not args.no_torch
    from seqtui.models.threads import available_cpus

    peaks = [measured_peak_gflops()]
    print(f"seqtui bench: B={B} T={T} V={V} float32, {available_cpus()} CPUs in affinity mask, "
          f"load {_load()}, torch {torch_version if use_torch else 'not used'}, "
          f"{'best' if args.best else 'median'} of {args.repeats}×{args.inner} steps", flush=True)
    results = []
    for name in rows:  # measure everything first; the peak is re-measured before every row
        cell, H, layers = ROWS[name]
        if cell == "gen":
            results.append((name, {k: bench_generation(H, threads=k) for k in threads}))
        else:
            results.append((name, bench_training(cell, H, layers, args.repeats, args.inner, threads,
                                                 use_torch, args.best)))
        peaks.append(measured_peak_gflops())
        print(f"  measured {name} (load {_load()})", flush=True)
    peak = max(peaks)
    print(f"measured peak: {peak:.0f} GFLOP/s = the best of {len(peaks)} float32 2048³ GEMMs (NumPy "
          f"BLAS, {available_cpus()} threads) taken before, between and after the rows "
          f"(lowest {min(peaks):.0f}); target per row: {RATIO_TARGET:g}× torch, or "
          f"{100 * PEAK_SHARE:.0f}% of that peak where {RATIO_TARGET:g}× torch would need more", flush=True)
    thr_cols = " ".join(f"{f'{k} thr':>10}" for k in threads)
    print(f"{'row':10} {thr_cols} {'torch':>10} {'ratio':>6} {'GFLOP/s':>8} {'%peak':>6}  {'criterion':11} met",
          flush=True)
    for name, r in results:
        cell, H, layers = ROWS[name]
        if cell == "gen":
            cps = max(r.values())
            cols = " ".join(f"{r[k]:>10,.0f}" for k in threads)
            print(f"{name:10} {cols} {'':>10} {'':>6} {'':>8} {'':>6}  {f'{GEN_TARGET // 1000}k chars/s':11} "
                  f"{'MET' if cps >= GEN_TARGET else 'missed'}  (chars/s)", flush=True)
            continue
        ratio = r["ours"] / r["torch"] if r["torch"] else None
        which, met = criterion(r, cell, H, layers, peak)
        cols = " ".join(f"{r['by_threads'][k]:>10,.0f}" for k in threads)
        torch_s = f"{r['torch']:>10,.0f}" if r["torch"] else f"{'-':>10}"
        ratio_s = f"{ratio:>5.2f}×" if ratio else f"{'-':>6}"
        print(f"{name:10} {cols} {torch_s} {ratio_s} {r['gflops']:>8.1f} {100 * r['gflops'] / peak:>5.1f}%  "
              f"{which:11} {'MET' if met else 'missed'}", flush=True)
    print("(training rows in tok/s; ratio, GFLOP/s and %peak from the faster thread column)", flush=True)
    if not args.no_compile:
        ct = compile_times()
        print(f"compile: cold {ct['cold']['all']:.1f} s for every kernel (child process "
              f"{ct['cold']['process']:.1f} s); warm cache: first step {ct['warm']['first_step']:.2f} s "
              f"after start (target < 1 s)", flush=True)
    print(f"load at end {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
