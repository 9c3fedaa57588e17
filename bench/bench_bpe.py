"""Byte-level BPE: seqtui's Numba kernels against Hugging Face ``tokenizers``, same text, same run.

Both learn ``--vocab`` tokens (256 bytes + merges) from the same text with the same rule: GPT-2
pre-tokenization (``ByteLevel(add_prefix_space=False, use_regex=True)``), ``min_frequency`` =
``--min-count``, the full byte alphabet. Printed: learning time (seqtui: chunk counting + the
merge kernel, compiled beforehand; tokenizers: ``train_from_iterator`` on the whole text as one
sequence), encoding throughput (MB = 10^6 bytes of UTF-8; seqtui: one kernel call over the whole
text; tokenizers: ``encode`` of the whole text and ``encode_batch`` over its lines, which uses
its thread pool; the ratio is against the faster), and agreement (identical merges, identical
token sequences for the whole text and for each line).

    python -m bench.bench_bpe [--corpus kjv] [--vocab 8000] [--repeat 3] [--compile]

``--compile`` also times a cold compile of the kernels in a child process with an empty Numba cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def hf_train(text: str, vocab: int, min_count: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=min_count, show_progress=False)
    tok.train_from_iterator([text], trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return tok, [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]


def _median_time(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


_COLD = """
import time
t0 = time.perf_counter()
from seqtui.data import bpe
v = bpe.learn_bpe("the cat the hat the mat " * 20, 260, cache=False)
v.encode_bytes(bpe._as_bytes("the cat the hat " * 10))
print(time.perf_counter() - t0)
"""


def cold_compile_seconds() -> float:
    """Import + first learn + first encode in a child with an empty Numba cache."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d, SEQTUI_CACHE_DIR=os.path.join(d, "cache"))
        out = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])


def run(corpus: str = "kjv", vocab: int = 8000, repeat: int = 3, min_count: int = 2) -> dict:
    from seqtui.data import bpe
    from seqtui.data.corpora import corpus_file, resolve_corpus

    path = corpus_file(resolve_corpus(corpus))
    text = path.read_text(encoding="utf-8")
    raw = text.encode("utf-8")
    data = np.frombuffer(raw, dtype=np.uint8)
    mb = len(raw) / 1e6
    res: dict = {"corpus": corpus, "mb": mb, "vocab": vocab}

    t0 = time.perf_counter()  # compile (or load from the Numba cache) on a small piece
    small = bpe.learn_bpe(data[:20000], 300, min_count, cache=False)
    small.encode_bytes(data[:20000])
    res["warmup_s"] = time.perf_counter() - t0

    res["learn_s"], v = _median_time(lambda: bpe.learn_bpe(data, vocab, min_count, cache=False), repeat)
    res["encode_s"], ids = _median_time(lambda: v.encode_bytes(data), repeat)

    try:
        import tokenizers  # noqa: F401
    except ImportError:
        res["hf"] = None
        return res
    res["hf_learn_s"], (tok, hf_merges) = _median_time(lambda: hf_train(text, vocab, min_count), 1)
    lines = text.splitlines(keepends=True)
    res["hf_encode_s"], enc = _median_time(lambda: tok.encode(text), repeat)
    res["hf_batch_s"], encs = _median_time(lambda: tok.encode_batch(lines), repeat)

    mine = [(v.itos[a], v.itos[b]) for a, b, _ in v.merges.tolist()]
    res["merges"] = (len(mine), len(hf_merges))
    res["merges_same"] = sum(x == y for x, y in zip(mine, hf_merges))
    first = next((i for i, (x, y) in enumerate(zip(mine, hf_merges)) if x != y), None)
    res["first_diff"] = first
    res["whole_same"] = [v.itos[i] for i in ids.tolist()] == enc.tokens
    res["tokens"] = (len(ids), len(enc.ids))
    res["lines"] = len(lines)
    res["lines_same"] = sum(v.tokens_of(line) == e.tokens for line, e in zip(lines, encs))
    res["round_trip"] = v.decode(ids) == text
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="kjv")
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also time a cold compile (child process)")
    a = ap.parse_args(argv)
    if a.compile:
        print(f"cold compile (empty Numba cache, import + first learn + first encode): {cold_compile_seconds():.1f} s")
    r = run(a.corpus, a.vocab, a.repeat, a.min_count)
    mb = r["mb"]
    print(f"corpus {r['corpus']}: {mb:.2f} MB, bpe_vocab {r['vocab']}, min_count {a.min_count}")
    print(f"compile/warm-up (seqtui kernels): {r['warmup_s']:.2f} s")
    target = "PASS" if r["learn_s"] < 30 else "FAIL"
    print(f"learn {r['vocab'] - 256} merges: seqtui {r['learn_s']:.2f} s   (target < 30 s: {target})"
          + (f"   tokenizers {r['hf_learn_s']:.2f} s" if "hf_learn_s" in r else ""))
    mine = mb / r["encode_s"]
    if "hf_encode_s" not in r:
        print(f"encode: seqtui {mine:.1f} MB/s   (tokenizers not installed: pip install tokenizers)")
        return
    hf_one, hf_batch = mb / r["hf_encode_s"], mb / r["hf_batch_s"]
    best = max(hf_one, hf_batch)
    ratio = mine / best
    print(f"encode: seqtui {mine:.1f} MB/s   tokenizers encode {hf_one:.1f} MB/s, encode_batch(lines) {hf_batch:.1f} MB/s"
          f"   seqtui/best = {ratio:.2f}x   (target >= 0.5x: {'PASS' if ratio >= 0.5 else 'FAIL'})")
    n_m, n_hf = r["merges"]
    print(f"agreement: merges {r['merges_same']}/{max(n_m, n_hf)} identical (seqtui {n_m}, tokenizers {n_hf}"
          + (f", first difference at {r['first_diff']}" if r["first_diff"] is not None else "") + ")")
    print(f"           whole text: {'identical' if r['whole_same'] else 'different'} token sequence "
          f"({r['tokens'][0]} vs {r['tokens'][1]} tokens); lines: {r['lines_same']}/{r['lines']} identical "
          f"({100 * r['lines_same'] / r['lines']:.2f}%); decode(encode(text)) == text: {r['round_trip']}")


if __name__ == "__main__":
    main()
