"""A 4-trial sweep of small GRUs on 2 Dask workers × 1 thread, against the same four trials
trained one after another (`seqtui train`, each with the machine to itself), and a control: the same trials as two plain
`seqtui train` processes at a time (what this machine gives two concurrent trials, no Dask).

    python -m bench.bench_sweep                 # H=64 GRUs, 2000 steps each, best of 3
    python -m bench.bench_sweep --steps 300 --hidden 32 --repeats 1

The sweep is timed whole (LocalCluster start, workers importing and loading the kernel cache,
the four trials, shutdown) and also from its first trial's start to its last trial's end. The
sequential baseline runs each trial as `seqtui train` twice over: with --threads 1 (the same
per-trial work) and with the default threads (what one would do without a sweep). Goal: the
sweep takes ≤ 0.6× the sequential time. Needs `pip install 'seqtui[sweep]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqtui.engine.rundir import RunDir

WORDS = ("the time traveller said that it was a strange machine of brass and crystal and we "
         "looked at it for a long while before anyone spoke of what it meant").split()


def corpus(directory: Path, n_words: int = 60_000) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), n_words)]
    path = directory / "bench.txt"
    path.write_text("\n".join(" ".join(words[i:i + 12]) for i in range(0, n_words, 12)) + "\n")
    return path


def run(args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "seqtui", *args], env=env, capture_output=True,
                         text=True)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"seqtui {' '.join(args[:2])} failed:\n{out.stderr[-3000:]}")
    return dt, out


def _rate(events: list[dict]) -> float:
    rates = [e["tokens_per_s"] for e in events if e.get("type") == "progress"
             and isinstance(e.get("tokens_per_s"), (int, float))]
    return sum(rates) / max(len(rates), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--default-threads", action="store_true",
                    help="Also time the sequential trials with the default threads.")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="seqtui-bench-sweep-"))
    text = corpus(tmp)
    env = dict(os.environ, SEQTUI_DATA_DIR=str(tmp / "data"), SEQTUI_CACHE_DIR=str(tmp / "cache"),
               PYTHONUNBUFFERED="1")
    lrs = ["0.002", "0.003", "0.004", "0.005"]
    common = ["--cell", "gru", "--hidden", str(a.hidden), "--batch-size", "32", "--num-steps", "35",
              "--sample-every", "0", "--grad-profile-every", "0", "--val-every", "0",
              "--progress-every", "50"]
    # warm the token cache and the kernel cache once, outside every timing
    run(["train", str(text), *common, "--steps", "5", "--quiet", "--name", "warm"], env)

    sweep_args = ["sweep", str(text), *common, "--budget", f"{a.steps}steps", "--search", "grid",
                  "--param", "lr=" + ",".join(lrs), "--workers", "2", "--threads-per-trial", "1",
                  "--no-prune", "--json"]
    labels = ["threads 1"] + (["default threads"] if a.default_threads else [])
    results: dict[str, list[tuple[float, float, float]]] = {"sweep": [], "pairs": []}
    for label in labels:
        results[label] = []
    for rep in range(a.repeats):  # interleaved, so load from elsewhere hits both alike
        sweep_s, out = run([*sweep_args, "--study", f"bench-{rep}"], env)
        rows = json.loads(out.stdout)["rows"]
        assert [r["status"] for r in rows] == ["finished"] * 4, rows
        starts, ends, rates = [], [], []
        for r in rows:
            events = RunDir(r["path"]).events()
            starts.append(events[0]["time"])
            ends.append(events[-1]["time"])
            rates.append(_rate(events))
        results["sweep"].append((sweep_s, max(ends) - min(starts), sum(rates) / 4))
        # the control: two plain `seqtui train` processes at a time, no Dask — what this machine
        # gives two concurrent trials right now (other tenants' load included)
        t0, rates = time.perf_counter(), []
        for pair in ((0, 1), (2, 3)):
            procs = [subprocess.Popen([sys.executable, "-m", "seqtui", "train", str(text), *common,
                                       "--lr", lrs[i], "--steps", str(a.steps), "--quiet",
                                       "--threads", "1", "--name", f"pair-{rep}-{i}"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in pair]
            for p in procs:
                p.wait()
            rates += [_rate(RunDir(tmp / "data" / "runs" / f"pair-{rep}-{i}").events()) for i in pair]
        pair_s = time.perf_counter() - t0
        results["pairs"].append((pair_s, pair_s, sum(rates) / 4))
        for label in labels:
            extra = ["--threads", "1"] if label == "threads 1" else []
            total, rates = 0.0, []
            for i, lr in enumerate(lrs):
                name = f"seq-{label.split()[0]}-{rep}-{i}"
                dt, _ = run(["train", str(text), *common, "--lr", lr, "--steps", str(a.steps),
                             "--quiet", "--name", name, *extra], env)
                total += dt
                rates.append(_rate(RunDir(tmp / "data" / "runs" / name).events()))
            results[label].append((total, total, sum(rates) / 4))

    best = {k: min(v) for k, v in results.items()}
    print(f"4 GRU H={a.hidden} trials × {a.steps} steps (B=32, T=35), {os.cpu_count()} cores, "
          f"best of {a.repeats} interleaved; load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    s_whole, s_trials, s_rate = best["sweep"]
    print(f"  sweep, 2 workers × 1 thread: {s_whole:6.1f} s whole command ({s_trials:.1f} s first "
          f"trial start → last end), {s_rate:,.0f} tok/s per trial;  all: "
          + ", ".join(f"{w:.1f}" for w, _, _ in results["sweep"]))
    p_total, _, p_rate = best["pairs"]
    print(f"  control, 2 plain processes at a time (no Dask): {p_total:6.1f} s, {p_rate:,.0f} tok/s "
          "per trial;  all: " + ", ".join(f"{w:.1f}" for w, _, _ in results["pairs"]))
    for label in labels:
        total, _, rate = best[label]
        print(f"  one after another, {label}: {total:6.1f} s, {rate:,.0f} tok/s per trial;  all: "
              + ", ".join(f"{w:.1f}" for w, _, _ in results[label]))
        print(f"  ratio sweep/sequential ({label}): {s_whole / total:.2f}× whole command, "
              f"{s_trials / total:.2f}× trials only   (goal ≤ 0.60×); the control: "
              f"{p_total / total:.2f}×")


if __name__ == "__main__":
    main()
