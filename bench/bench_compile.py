"""A first run on a fresh install: seconds from `seqtui train` to its first progress event.

    python -m bench.bench_compile

Rows (each in child processes with an empty Numba cache where it says "fresh"):
- fresh: the app's default run (GRU 1×128 on genesis, the form's defaults) — compile + start;
- warm: the same run again, in a new process, with that cache — the cost of every later run;
- warmup: `seqtui warmup --cells gru` on a fresh cache (parallel processes), then the run.
Goals (issue 12): ≤ 15 s to the first progress event fresh, ≤ 3 s warm. Wall-clock figures: the
load average is printed beside them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = ["train", "genesis", "--cell", "gru", "--hidden", "128", "--steps", "20", "--progress-every", "1",
       "--sample-every", "200", "--val-every", "100", "-q"]


def first_progress(env: dict, name: str) -> tuple[float, float]:
    """(seconds to the first progress event, seconds to the end) of one run in a child."""
    from seqtui.engine.rundir import RunDir

    t0 = time.time()
    subprocess.run([sys.executable, "-m", "seqtui", *RUN, "--name", name], env=env, check=True,
                   capture_output=True)
    end = time.time() - t0
    rd = RunDir(Path(env["SEQTUI_DATA_DIR"]) / "runs" / name)
    first = next(e["time"] for e in rd.events() if e["type"] == "progress")
    return first - t0, end


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="seqtui-compile-") as tmp:
        tmp = Path(tmp)

        def env_for(tag: str) -> dict:
            return dict(os.environ, NUMBA_CACHE_DIR=str(tmp / f"numba-{tag}"),
                        SEQTUI_DATA_DIR=str(tmp / f"data-{tag}"), SEQTUI_CACHE_DIR=str(tmp / f"cache-{tag}"))

        rows = []
        env = env_for("a")
        rows.append(("fresh cache", *first_progress(env, "fresh")))
        rows.append(("warm cache (new process)", *first_progress(env, "warm")))
        env = env_for("b")
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "seqtui", "warmup", "--cells", "gru", "-q"], env=env, check=True)
        warm_s = time.time() - t0
        rows.append((f"after `seqtui warmup` ({warm_s:.1f} s)", *first_progress(env, "after")))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    print(f"{'run (GRU 1x128 on genesis, 20 steps)':<40} {'first progress':>15} {'whole run':>10}")
    for label, first, end in rows:
        print(f"{label:<40} {first:>13.1f} s {end:>8.1f} s")
    print("goals: fresh ≤ 15 s, warm ≤ 3 s to the first progress event")


if __name__ == "__main__":
    main()
