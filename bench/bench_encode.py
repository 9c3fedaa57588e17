"""Char-encoding throughput: the Numba kernels against plain Python, same bytes, same run.

Both sides start from the corpus's UTF-8 bytes in memory and end with a vocabulary and an
int32 id array: Numba = count pass + vocabulary + encode pass (``seqtui.kernels.text``);
Python = ``bytes.decode`` + ``collections.Counter`` + a dict lookup per character.

    python -m bench.bench_encode [--corpus kjv] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import numpy as np


def encode_numba(data: np.ndarray):
    """Vocabulary + ids via the two kernels (one chunk: the whole buffer)."""
    from seqtui.kernels.text import MAX_CODEPOINT, count_chars, encode_chars
    from seqtui.data.vocab import Vocab

    counts = np.zeros(MAX_CODEPOINT, dtype=np.int64)
    seen = np.zeros(MAX_CODEPOINT, dtype=np.int32)
    state = np.zeros(2, dtype=np.int64)
    count_chars(data, True, False, state, counts, seen)
    seen = seen[: state[1]]
    vocab = Vocab.from_counts([(chr(c), int(counts[c])) for c in seen], is_char=True)
    out = np.empty(int(state[0]), dtype=np.int32)
    encode_chars(data, True, False, vocab.char_table(), out)
    return vocab, out


def encode_python(raw: bytes):
    """The same result with the standard library only."""
    from seqtui.data.vocab import Vocab

    text = raw.decode("utf-8")
    vocab = Vocab.from_counts(Counter(text), is_char=True)
    stoi = vocab.stoi
    ids = np.array([stoi[c] for c in text], dtype=np.int32)
    return vocab, ids


def time_calls(fn, repeat: int) -> list[float]:
    """Wall seconds of ``repeat`` calls of ``fn`` (the benches' one timing loop)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def run(corpus: str = "kjv", repeat: int = 5, python_repeat: int = 2) -> dict:
    """Measure both encoders on ``corpus``; returns the figures (MB = 10^6 bytes)."""
    from seqtui.data.corpora import corpus_file, resolve_corpus

    path = corpus_file(resolve_corpus(corpus))
    raw = path.read_bytes()
    data = np.frombuffer(raw, dtype=np.uint8)
    t0 = time.perf_counter()
    v_fast, ids_fast = encode_numba(data)  # first call: loads or compiles the kernels
    first_call = time.perf_counter() - t0
    v_py, ids_py = encode_python(raw)
    if v_fast != v_py or not np.array_equal(ids_fast, ids_py):
        raise AssertionError("Numba and Python encodings differ")
    numba_s = statistics.median(time_calls(lambda: encode_numba(data), repeat))
    python_s = statistics.median(time_calls(lambda: encode_python(raw), python_repeat))
    mb = len(raw) / 1e6
    return {
        "corpus": corpus,
        "bytes": len(raw),
        "chars": int(ids_fast.shape[0]),
        "vocab_size": len(v_fast),
        "numba_first_call_s": first_call,
        "numba_s": numba_s,
        "python_s": python_s,
        "numba_mb_s": mb / numba_s,
        "python_mb_s": mb / python_s,
        "speedup": python_s / numba_s,
    }


def main(argv: list[str] | None = None) -> dict:
    """Print the throughput of both encoders and their ratio (`seqtui bench` can call this)."""
    parser = argparse.ArgumentParser(prog="bench_encode", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="kjv", help="corpus name or path (default: kjv, 4.3 MB)")
    parser.add_argument("--repeat", type=int, default=5, help="timed Numba runs (median)")
    args = parser.parse_args(argv)
    r = run(args.corpus, max(1, args.repeat))
    print(f"char encoding of {r['corpus']}: {r['bytes']:,} bytes -> {r['chars']:,} ids, vocabulary {r['vocab_size']}")
    print(f"  numba   {r['numba_mb_s']:8.1f} MB/s   ({r['numba_s'] * 1e3:7.1f} ms; first call {r['numba_first_call_s']:.2f} s)")
    print(f"  python  {r['python_mb_s']:8.1f} MB/s   ({r['python_s'] * 1e3:7.1f} ms; decode + Counter + dict lookups)")
    print(f"  ratio   {r['speedup']:8.1f}x  (goal: >= 100 MB/s and >= 20x)")
    return r


if __name__ == "__main__":
    main()
