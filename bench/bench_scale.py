"""Cost as the corpus grows: time and peak memory of every command on a few-hundred-MB corpus.

    python -m bench.bench_scale              # builds a ~335 MB corpus (the bundled KJV, repeated)
    python -m bench.bench_scale --mb 100     # a smaller one

Each command runs in a child process with its own empty data and cache directories; its peak
resident memory comes from ``os.wait4`` (the child's own rusage). The goal is a peak below 1.5×
the int32 token array plus the model, n-gram counting at ≥ 100 MB/s of text, and a first
progress event within 10 s of ``train`` on a cached corpus. The table prints each figure
beside its goal, and the machine's load average (these are wall-clock figures).
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


def build_corpus(directory: Path, mb: float) -> Path:
    """The bundled KJV repeated to about ``mb`` MB (no download: it comes with the package)."""
    from seqtui.data.corpora import corpus_file, resolve_corpus

    base = corpus_file(resolve_corpus("kjv")).read_bytes()
    path = directory / "big.txt"
    with open(path, "wb") as f:
        for _ in range(max(1, round(mb * 1e6 / len(base)))):
            f.write(base)
    return path


def run(argv: list[str], env: dict) -> tuple[float, int, str, int]:
    """(seconds, peak RSS bytes, stdout, exit code) of ``python -m seqtui ARGV`` in a child."""
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "seqtui", *argv], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = child.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_maxrss * 1024, out, child.returncode


def first_progress_seconds(run_dir: Path) -> float | None:
    """Seconds from the run's config being written to its first progress event."""
    from seqtui.engine.rundir import RunDir

    rd = RunDir(run_dir)
    created = rd.config_path.stat().st_mtime
    for e in rd.events():
        if e.get("type") == "progress":
            return float(e["time"]) - created
    return None


def counting_mb_per_s(corpus: Path, env: dict) -> float:
    """n-gram counting alone (bigrams of characters), in MB of text per second, in a child."""
    code = (
        "import time, json, sys\n"
        "from seqtui.data.text import TextConfig, load_dataset\n"
        "from seqtui.models.ngram import NGramModel\n"
        f"ds = load_dataset(TextConfig({str(corpus)!r}))\n"
        "NGramModel.fit(ds.ids[:100_000], len(ds.vocab), 1)  # compile\n"
        "t = time.perf_counter(); NGramModel.fit(ds.ids, len(ds.vocab), 1)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t}))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return corpus.stat().st_size / 1e6 / json.loads(out.stdout.splitlines()[-1])["seconds"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=335.0, help="corpus size in MB")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seqtui-scale-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, SEQTUI_DATA_DIR=str(tmp / "data"), SEQTUI_CACHE_DIR=str(tmp / "cache"))
        corpus = build_corpus(tmp, args.mb)
        size = corpus.stat().st_size
        tokens_bytes = 4 * size  # int32 per character (this corpus is ASCII)
        rows = []
        model = 32  # hidden 32: the model is a few KB; the token array dominates
        for label, argv, extra in (
            ("train (first: encode + cache)", ["train", str(corpus), "--hidden", str(model), "--steps", "20",
                                              "-q", "--name", "cold"], "cold"),
            ("train (cached)", ["train", str(corpus), "--hidden", str(model), "--steps", "20", "-q",
                                "--name", "warm"], "warm"),
            ("ngram --order 1", ["ngram", str(corpus), "--order", "1", "--length", "50"], None),
            ("ngram --order 2", ["ngram", str(corpus), "--order", "2", "--length", "50"], None),
            ("corpora show", ["corpora", "show", str(corpus)], None),
        ):
            seconds, rss, out, code = run(argv, env)
            if code != 0:
                raise SystemExit(f"{label} failed ({code}):\n{out[-2000:]}")
            first = first_progress_seconds(tmp / "data" / "runs" / extra) if extra else None
            rows.append((label, seconds, rss, first))
        mbps = counting_mb_per_s(corpus, env)
    print(f"corpus {size / 1e6:,.0f} MB ({size:,} chars), int32 tokens {tokens_bytes / 2**30:.2f} GiB, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'command':<32} {'seconds':>8} {'peak RSS':>10} {'× tokens':>9} {'first progress':>15}")
    for label, seconds, rss, first in rows:
        ratio = rss / tokens_bytes
        fp = f"{first:.1f} s" if first is not None else ""
        print(f"{label:<32} {seconds:>8.1f} {rss / 2**30:>8.2f} G {ratio:>8.2f}× {fp:>15}")
    print(f"n-gram counting (bigrams): {mbps:,.0f} MB/s of text (goal ≥ 100)")
    print("goals: peak ≤ 1.5× tokens + model; first progress of a cached train ≤ 10 s")


if __name__ == "__main__":
    main()
