"""Word-tokenization throughput: the Numba path against the Python reference path, same file.

Both are the functions ``load_dataset`` uses for ``tokens="word"``
(``seqtui.data.text._encode_words`` and its twin ``_encode_words_reference``): memory-mapped
bytes in, vocabulary + counts + a memory-mapped int32 ``.npy`` of ids out. Checked equal first.

    python -m bench.bench_words [--corpus kjv] [--preset raw|d2l|both] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from .bench_encode import time_calls


def run(corpus: str = "kjv", preset: str = "raw", repeat: int = 5, python_repeat: int = 3) -> dict:
    from seqtui.data import text as text_mod
    from seqtui.data.corpora import corpus_file, resolve_corpus

    path = corpus_file(resolve_corpus(corpus)) if not Path(corpus).is_file() else Path(corpus)
    cfg = text_mod.TextConfig(corpus=str(path), tokens="word", preprocess=preset)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out_dir = Path(tempfile.mkdtemp(prefix="seqtui-bench-words-"))

    def numba_path():
        return text_mod._encode_words(data, text_mod._Where(path, 0), cfg, out_dir / "numba.npy", None)[:3]

    def python_path():
        return text_mod._encode_words_reference(data, text_mod._Where(path, 0), cfg, out_dir / "python.npy",
                                                None)[:3]

    t0 = time.perf_counter()
    v1, c1, tmp1 = numba_path()  # first call: loads or compiles the kernel
    first = time.perf_counter() - t0
    v2, c2, tmp2 = python_path()
    if v1 != v2 or not np.array_equal(c1, c2) or not np.array_equal(np.load(tmp1), np.load(tmp2)):
        raise AssertionError("Numba and Python word tokenizations differ")
    # best of N: other processes on a shared machine only ever add time
    numba_s = min(time_calls(numba_path, repeat))
    python_s = min(time_calls(python_path, python_repeat))
    mb = data.shape[0] / 1e6
    return {"corpus": corpus, "preset": preset, "bytes": int(data.shape[0]), "words": int(c1.sum()),
            "vocab_size": len(v1), "numba_first_call_s": first, "numba_s": numba_s, "python_s": python_s,
            "numba_mb_s": mb / numba_s, "python_mb_s": mb / python_s, "speedup": python_s / numba_s}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="kjv", help="a corpus name or a text file")
    ap.add_argument("--preset", default="both", choices=["raw", "d2l", "both"])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    for preset in (["raw", "d2l"] if a.preset == "both" else [a.preset]):
        r = run(a.corpus, preset, a.repeat)
        print(f"{r['corpus']} ({r['bytes'] / 1e6:.2f} MB, preset {preset}): {r['words']:,} words, "
              f"vocab {r['vocab_size']:,}")
        print(f"  numba  {r['numba_mb_s']:7.1f} MB/s  ({r['numba_s']:.3f} s; first call {r['numba_first_call_s']:.2f} s)")
        print(f"  python {r['python_mb_s']:7.1f} MB/s  ({r['python_s']:.3f} s)")
        print(f"  ratio  {r['speedup']:7.1f}x   (targets: >= 100 MB/s and >= 10x)")


if __name__ == "__main__":
    main()
