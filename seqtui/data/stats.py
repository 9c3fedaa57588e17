"""Corpus statistics for `seqtui corpora show` and the app: sizes, preview, Zipf data.

``corpus_stats`` tokenizes through :func:`seqtui.data.text.load_dataset` (so the second call reads
the cache); ``zipf_stats`` gives the most frequent uni/bi/trigrams and rank-frequency arrays
(counts sorted in descending order, for a log-log plot). ``bits_per_char`` /
``text_bits_per_char`` put models with different tokens (char, word, BPE) on one scale.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from seqtui.data.corpora import CorpusInfo, corpus_file, read_corpus_text
from seqtui.data.vocab import Vocab
from seqtui.errors import ConfigError


@dataclass(frozen=True)
class NGramCount:
    tokens: tuple[str, ...]
    count: int
    text: str  # the tokens joined as the vocabulary decodes them ("th", "of the")


@dataclass
class ZipfStats:
    tokens: int  # length of the token stream
    top: dict[int, list[NGramCount]]  # n -> most frequent n-grams, descending
    rank_freq: dict[int, np.ndarray]  # n -> int64 counts of every distinct n-gram, descending


@dataclass
class CorpusStats:
    info: CorpusInfo
    bytes: int  # size of the text file
    chars: int  # characters (code points) with the raw preset
    vocab_size: int  # distinct characters + <unk>
    preview: str  # the first characters of the text
    top_tokens: list[tuple[str, int]]  # most frequent characters
    fingerprint: str
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        i = self.info
        return {
            "name": i.name, "title": i.title, "kind": i.kind, "path": str(i.path) if i.path else None,
            "licence": i.licence, "source": i.source, "description": i.description,
            "bytes": self.bytes, "chars": self.chars, "vocab_size": self.vocab_size,
            "preview": self.preview, "top_tokens": [[t, c] for t, c in self.top_tokens],
            "fingerprint": self.fingerprint, **self.extra,
        }


def _ngram_counts(ids: np.ndarray, V: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct n-gram keys, counts), most frequent first, ties by key."""
    from seqtui.kernels.text import ngram_keys

    ids = np.ascontiguousarray(ids, dtype=np.int32)
    keys, counts = np.unique(ngram_keys(ids, n, V), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return keys[order], counts[order].astype(np.int64)


def _decode_key(key: int, V: int, n: int, vocab: Vocab) -> tuple[str, ...]:
    toks = []
    for _ in range(n):
        key, tok = divmod(int(key), V)
        toks.append(vocab.itos[tok])
    return tuple(reversed(toks))


def _top(keys: np.ndarray, counts: np.ndarray, n: int, vocab: Vocab, top: int) -> list[NGramCount]:
    joiner = "" if vocab.is_char else " "
    out = []
    for k, c in zip(keys[:top].tolist(), counts[:top].tolist()):
        toks = _decode_key(k, len(vocab), n, vocab)
        out.append(NGramCount(toks, int(c), joiner.join(toks)))
    return out


def top_ngrams(ids: np.ndarray, vocab: Vocab, n: int, top: int = 10) -> list[NGramCount]:
    """The ``top`` most frequent n-grams of ``ids``."""
    keys, counts = _ngram_counts(ids, len(vocab), n)
    return _top(keys, counts, n, vocab, top)


def rank_frequency(ids: np.ndarray, vocab_size: int, n: int = 1) -> np.ndarray:
    """Counts of every distinct n-gram, descending (Zipf: log count against log rank)."""
    return _ngram_counts(ids, vocab_size, n)[1]


def zipf_stats(ids: np.ndarray, vocab: Vocab, top: int = 10, orders: tuple[int, ...] = (1, 2, 3)) -> ZipfStats:
    """Top n-grams and rank-frequency arrays for each n in ``orders``."""
    tops: dict[int, list[NGramCount]] = {}
    rf: dict[int, np.ndarray] = {}
    for n in orders:
        keys, counts = _ngram_counts(ids, len(vocab), n)
        rf[n] = counts
        tops[n] = _top(keys, counts, n, vocab, top)
    return ZipfStats(int(np.asarray(ids).shape[0]), tops, rf)


def corpus_stats(name_or_path: str, preview_chars: int = 600, top: int = 12, errors: str = "strict") -> CorpusStats:
    """Size, characters, vocabulary, preview and most frequent characters of a corpus (raw chars)."""
    from seqtui.data.text import TextConfig, load_dataset

    ds = load_dataset(TextConfig(name_or_path, errors=errors))
    info = replace(ds.corpus, path=corpus_file(ds.corpus), size_bytes=ds.source_bytes)
    preview = read_corpus_text(info, errors=errors, max_bytes=preview_chars * 4)[:preview_chars]
    order = np.argsort(-ds.counts, kind="stable")
    top_tokens = [(ds.vocab.itos[i], int(ds.counts[i])) for i in order[:top] if ds.counts[i] > 0]
    return CorpusStats(info, ds.source_bytes, len(ds), len(ds.vocab), preview, top_tokens, ds.fingerprint)


# -- bits per character (comparing tokenizations) ---------------------------------------------------
LN2 = math.log(2.0)


def bits_per_char(total_nll: float, num_chars: int) -> float:
    """Bits per character of a text from a model's total NLL (nats) over the tokens that encode it:
    ``total_nll / ln 2 / num_chars``. Comparable across char, word and BPE tokens of the same text."""
    if int(num_chars) <= 0:
        raise ConfigError(f"bits per character needs at least one character; got {num_chars}")
    return float(total_nll) / LN2 / int(num_chars)


@dataclass
class CharUnigram:
    """Laplace-smoothed character unigram fitted on training text, used to charge ``<unk>``:
    P(c) = (n(c) + 1) / (N + K + 1), K distinct characters, one extra share for every unseen one.
    A spelling ends with a space (the word's end), so ``nats(w)`` = -Σ ln P(c) over ``w + " "``."""

    counts: dict[str, int]
    total: int

    @classmethod
    def fit(cls, text: str) -> CharUnigram:
        c = Counter(text)
        return cls(dict(c), sum(c.values()))

    def nats(self, word: str, end: str = " ") -> float:
        denom = math.log(self.total + len(self.counts) + 1)
        get = self.counts.get
        return sum(denom - math.log(get(ch, 0) + 1) for ch in word + end)


def text_bits_per_char(total_nll: float, ids: np.ndarray, vocab: Vocab, tokens: Sequence[str] | None = None,
                       spell: CharUnigram | None = None) -> float:
    """Bits per character of the text ``ids`` encode, charging each ``<unk>`` the cost of spelling it.

    bpe: characters of ``vocab.decode(ids)``; no ``<unk>`` can occur. char/word: ``tokens`` are the
    actual tokens at each id (``tokenize(text, kind, preset)``, same length as ``ids``); the text is
    ``"".join(tokens)`` (char) or ``" ".join(tokens)`` (word: the text a word model reads, one space
    between words); a token the vocabulary maps to ``<unk>`` adds ``spell.nats(token)`` — the
    character unigram ``spell`` fitted on the training text spells it and a space ends it
    (char tokens: the character alone, no end) — to ``total_nll``.
    """
    ids = np.asarray(ids)
    known = text_chars(ids, vocab)
    if known is not None:  # BPE, or no <unk>: the ids tell the length (no tokens needed)
        return bits_per_char(total_nll, known)
    if tokens is None:
        raise ConfigError("char and word bits per character with <unk> need the tokens the ids stand for")
    if len(tokens) != ids.shape[0]:
        raise ConfigError(f"{len(tokens)} tokens for {ids.shape[0]} ids")
    joiner = "" if vocab.is_char else " "
    extra = 0.0
    unk = np.flatnonzero(ids == vocab.unk).tolist()
    if unk:
        if spell is None:
            raise ConfigError("<unk> tokens need a spelling model (CharUnigram.fit(training text))")
        end = "" if vocab.is_char else " "
        extra = sum(spell.nats(tokens[i], end) for i in unk)
    return bits_per_char(float(total_nll) + extra, len(joiner.join(tokens)))


def text_chars(ids: np.ndarray, vocab: Vocab) -> int | None:
    """Characters of the text ``ids`` encode, when the ids alone tell it exactly: always for BPE,
    and for char/word tokens when no ``<unk>`` hides a token's spelling (word tokens: one space
    between words). Counted in NumPy: no string of the text is built. None otherwise."""
    ids = np.asarray(ids)
    n = int(ids.shape[0])
    if getattr(vocab, "kind", None) == "bpe":
        return int(vocab.num_chars(ids)) if n else 0
    if np.any(ids == vocab.unk):
        return None
    if vocab.is_char:
        return n
    lengths = np.fromiter((len(t) for t in vocab.itos), dtype=np.int64, count=len(vocab))
    return int(lengths[ids].sum()) + max(n - 1, 0)


def chars_per_token(ids: np.ndarray, vocab: Vocab) -> float | None:
    """Characters per token of the text ``ids`` encode (``text_chars``), or None when unknown (an
    ``<unk>`` hides a spelling: ``seqtui eval`` then charges it, ``text_bits_per_char``)."""
    n = int(np.asarray(ids).shape[0])
    chars = text_chars(ids, vocab) if n else None
    return None if chars is None else chars / n
