"""A 4-trial sweep of small GRUs on 2 Dask workers × 1 thread, against the same four trials
trained one after another (`seqtui train`, each with the machine to itself).

    python -m bench.bench_sweep                 # H=64 GRUs, 600 steps each
    python -m bench.bench_sweep --steps 300 --hidden 32

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
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=64)
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
                  "--no-prune", "--study", "bench", "--json"]
    sweep_s, out = run(sweep_args, env)
    rows = json.loads(out.stdout)["rows"]
    assert [r["status"] for r in rows] == ["finished"] * 4, rows
    starts, ends, sweep_rates = [], [], []
    for r in rows:
        events = RunDir(r["path"]).events()
        starts.append(events[0]["time"])
        ends.append(events[-1]["time"])
        sweep_rates.append(_rate(events))
    trials_s = max(ends) - min(starts)

    seq = {}
    for label, extra in (("threads 1", ["--threads", "1"]), ("default threads", [])):
        if label == "default threads" and not a.default_threads:
            continue
        total, rates = 0.0, []
        for i, lr in enumerate(lrs):
            name = f"seq-{label.split()[0]}-{i}"
            dt, _ = run(["train", str(text), *common, "--lr", lr, "--steps", str(a.steps), "--quiet",
                         "--name", name, *extra], env)
            total += dt
            rates.append(_rate(RunDir(tmp / "data" / "runs" / name).events()))
        seq[label] = (total, sum(rates) / len(rates))

    print(f"4 GRU H={a.hidden} trials × {a.steps} steps (B=32, T=35), {os.cpu_count()} cores, "
          f"load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"  sweep, 2 workers × 1 thread:      {sweep_s:7.1f} s whole command, "
          f"{trials_s:7.1f} s first start → last end, {sum(sweep_rates) / 4:,.0f} tok/s per trial")
    for label, (total, rate) in seq.items():
        print(f"  one after another ({label:>15}): {total:7.1f} s, {rate:,.0f} tok/s per trial;  "
              f"sweep/sequential {sweep_s / total:.2f}× (trials only {trials_s / total:.2f}×)")
    print("  goal: ≤ 0.60×")


if __name__ == "__main__":
    main()
