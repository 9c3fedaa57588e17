"""How good is the time estimate? The estimate of a run against the run's real duration.

    python -m bench.bench_estimate                 # the app's default run, 2 epochs
    python -m bench.bench_estimate --epochs 20     # the form's full default (20 epochs)

The estimate (seqtui.engine.estimate) calibrates a few steps of the same shape; the real figure
is the time from the run's `start` event to its `end` event (data loading and compile excluded,
as the estimate assumes a warm cache). Goal (issue 11): within ±30%.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--corpus", default="genesis")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seqtui-estimate-") as tmp:
        env = dict(os.environ, SEQTUI_DATA_DIR=str(Path(tmp) / "data"), SEQTUI_CACHE_DIR=str(Path(tmp) / "cache"))
        run = ["train", args.corpus, "--cell", "gru", "--hidden", "128", "--epochs", str(args.epochs),
               "--val-every", "100", "--sample-every", "200", "--grad-profile-every", "25"]
        subprocess.run([sys.executable, "-m", "seqtui", "warmup", "-q"], env=env, check=True)
        os.environ.update(env)
        from seqtui.engine.config import RunConfig
        from seqtui.engine.estimate import estimate_for

        est = estimate_for(RunConfig(corpus=args.corpus, cell="gru", hidden=128, epochs=args.epochs,
                                     val_every=100, sample_every=200, grad_profile_every=25))
        out, seconds = est.line(), est.seconds
        subprocess.run([sys.executable, "-m", "seqtui", *run, "-q", "--name", "real"], env=env, check=True)
        from seqtui.engine.rundir import RunDir

        events = RunDir(Path(tmp) / "data" / "runs" / "real").events()
        start = next(e["time"] for e in events if e["type"] == "compile" and e["state"] == "done")
        end = next(e["time"] for e in events if e["type"] == "end")
    real = end - start
    print(f"estimate: {out}")
    print(f"real training time {real:.1f} s; estimate/real = {seconds / real:.2f} (goal 0.7–1.3); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
