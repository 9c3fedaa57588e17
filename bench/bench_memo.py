"""Memorization meter: index build time, cached load time, and scoring time per sample.

Indexes the training split of a char corpus (KJV by default; ``--extra`` appends another text
file's characters, e.g. tinyshakespeare, to reach ~5 MB), into a temporary cache directory, then
scores 200-token samples: half copied from the training text with a few edits, half random.

    python -m bench.bench_memo [--corpus kjv] [--extra /work/shared/corpora/tinyshakespeare.txt]
                               [--sample 200] [--samples 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np


def run(corpus: str = "kjv", extra: str | None = None, sample_len: int = 200, samples: int = 200,
        val_fraction: float = 0.1) -> dict:
    os.environ["SEQTUI_CACHE_DIR"] = tempfile.mkdtemp(prefix="seqtui-bench-memo-")
    from seqtui.data.memorize import MemoIndex, _readonly
    from seqtui.data.text import TextConfig, load_dataset, split_train_val
    from seqtui.kernels.suffix import build_index, match_sample

    # warm the kernels (compile or load from the Numba cache) before timing anything
    tiny = _readonly(np.array([1, 2, 1], np.int32))  # the array types MemoIndex passes
    t0 = time.perf_counter()
    sa, lcp = build_index(tiny)
    match_sample(tiny, _readonly(sa), _readonly(lcp), np.array([1, 2], np.int32), 10)
    warm = time.perf_counter() - t0

    ds = load_dataset(TextConfig(corpus=corpus))
    train, _ = split_train_val(ds.ids, val_fraction)
    label = corpus
    if extra:
        more = ds.vocab.encode(open(extra, encoding="utf-8").read())
        ids = np.concatenate([np.asarray(train), more])
        label = f"{corpus}+{os.path.basename(extra)}"
        t0 = time.perf_counter()
        index = MemoIndex.from_ids(ids, key="bench", vocab=ds.vocab, newline_id=ds.vocab.stoi.get("\n"))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = MemoIndex.from_ids(ids, key="bench", vocab=ds.vocab, newline_id=ds.vocab.stoi.get("\n"))
        load_s = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        index = MemoIndex.build_or_load(ds, len(train))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = MemoIndex.build_or_load(ds, len(train))
        load_s = time.perf_counter() - t0
    assert again.loaded and not index.loaded
    n = len(index)
    rng = np.random.default_rng(0)
    V = len(ds.vocab)
    batch = []
    for k in range(samples):
        if k % 2 == 0:  # copied text with a few substitutions
            a = int(rng.integers(0, n - sample_len))
            s = np.array(index.ids[a: a + sample_len])
            s[rng.integers(0, sample_len, 4)] = rng.integers(1, V, 4)
        else:
            s = rng.integers(1, V, sample_len).astype(np.int32)
        batch.append(s)
    again.score(batch[0])  # first call: line table
    times = []
    for s in batch:
        t0 = time.perf_counter()
        again.score(s, threshold=20)
        times.append(time.perf_counter() - t0)
    copied = [again.score(s).covered_fraction for s in batch[::2]]
    return {
        "corpus": label, "train_tokens": n, "mb": n / 1e6, "warm_s": warm,
        "build_s": build_s, "load_s": load_s,
        "score_ms_median": 1e3 * statistics.median(times), "score_ms_max": 1e3 * max(times),
        "sample_tokens": sample_len, "copied_coverage_mean": float(np.mean(copied)),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="kjv")
    ap.add_argument("--extra", default=None, help="append this text file's characters to the training ids")
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--samples", type=int, default=200)
    a = ap.parse_args(argv)
    r = run(a.corpus, a.extra, a.sample, a.samples)
    print(f"corpus {r['corpus']}: {r['train_tokens']:,} training tokens ({r['mb']:.2f} M)")
    print(f"kernels ready (compile or cache load): {r['warm_s']:.2f} s")
    print(f"index build (suffix array + LCP + save): {r['build_s']:.2f} s   (target < 10 s for 5 MB)")
    print(f"index load from cache (memory map + spot check): {1e3 * r['load_s']:.1f} ms")
    print(f"score one {r['sample_tokens']}-token sample: median {r['score_ms_median']:.3f} ms, "
          f"max {r['score_ms_max']:.3f} ms   (target < 5 ms)")
    print(f"mean covered fraction of the copied-with-edits samples: {r['copied_coverage_mean']:.2f}")


if __name__ == "__main__":
    main()
