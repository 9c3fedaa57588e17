"""Memorization meter: how much of a sample is copied from the training text.

The index is a suffix array + LCP array over the training token ids (``seqtui.kernels.suffix``),
built once per (dataset fingerprint, training length) and cached beside the token cache as
``.npy`` files (``cache_dir()/memo/<key>.{sa,lcp}.npy`` + ``<key>.json``, written atomically:
temp file, fsync, rename, fsync of the directory; the JSON is written last and commits the
pair). Loading memory-maps them; a missing, truncated or inconsistent file is rebuilt with a
notice. Scoring a sample computes, for every sample position, the longest prefix that occurs in
the training text (matching statistics, one binary search per position):

    index = MemoIndex.build_or_load(dataset, n_train=len(train_ids))
    s = index.score(sample_ids_or_text, threshold=20)
    s.longest_len, s.longest_at, s.longest_line, s.covered_fraction, s.spans, s.to_json()

``<unk>`` in a sample matches nothing (copied text is text the model could have seen).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqtui import paths
from seqtui.files import commit_temp, fsync_dir, temp_path
from seqtui.errors import ConfigError

MEMO_FORMAT = 1
DEFAULT_THRESHOLD = 20
COUNT_CAP = 1000  # occurrences of the longest match are counted up to this
_PROBES = 512  # ranks spot-checked when a cached index is loaded

Notice = Callable[[str], None]


class MemoCacheWarning(UserWarning):
    """A cached memorization index was unusable and has been rebuilt (or could not be saved)."""


@dataclass
class MemoScore:
    """How much of one sample occurs verbatim in the training text.

    Positions and lengths are in tokens of the sample (``spans``: [start, end) pairs, merged
    where they overlap) and of the training ids (``longest_at``). ``char_spans`` are the same
    spans as character offsets into ``text`` (the sample as text), when a vocabulary is known.
    """

    length: int  # sample tokens
    threshold: int  # a copied substring counts toward coverage from this many tokens
    longest_len: int  # tokens of the longest substring also in the training text (0: none)
    longest_at: int  # its first position in the training ids (-1 if none)
    longest_sample_start: int  # where it starts in the sample (-1 if none)
    longest_count: int  # occurrences in the training text (capped at COUNT_CAP)
    longest_line: int | None  # 1-based line of longest_at in the training text (char tokens)
    covered_fraction: float  # share of sample tokens inside copied substrings >= threshold
    spans: list[tuple[int, int]]
    text: str | None = None
    char_spans: list[tuple[int, int]] | None = None
    longest_text: str | None = None
    match_lengths: np.ndarray = field(default=None, repr=False)  # int32 (m,): per position

    def to_json(self) -> dict:
        """JSON-ready figures (no per-position array)."""
        return {
            "tokens": self.length,
            "threshold": self.threshold,
            "longest_len": self.longest_len,
            "longest_at": self.longest_at,
            "longest_sample_start": self.longest_sample_start,
            "longest_count": self.longest_count,
            "longest_line": self.longest_line,
            "longest_text": self.longest_text,
            "covered_fraction": self.covered_fraction,
            "spans": [list(s) for s in self.spans],
            "char_spans": None if self.char_spans is None else [list(s) for s in self.char_spans],
        }


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous int32 view: one array type for mapped files and fresh arrays,
    so each kernel compiles once."""
    v = np.ascontiguousarray(a, dtype=np.int32).view(np.ndarray)
    v.flags.writeable = False
    return v


def copied_spans(lens: np.ndarray, threshold: int) -> list[tuple[int, int]]:
    """Union of [i, i + lens[i]) over positions with lens[i] >= threshold (overlaps merged)."""
    spans: list[tuple[int, int]] = []
    for i in np.flatnonzero(lens >= threshold).tolist():
        end = i + int(lens[i])
        if spans and i < spans[-1][1]:
            if end > spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
        else:
            spans.append((i, end))
    return spans


def _memo_dir() -> Path:
    return paths.cache_dir() / "memo"


def _atomic_write(path: Path, write: Callable) -> None:
    """``write(f)`` into a temp file beside ``path``, then commit it atomically (seqtui.files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
        commit_temp(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class MemoIndex:
    """Suffix array + LCP over training ids; answers :meth:`score` for samples."""

    def __init__(self, ids: np.ndarray, sa: np.ndarray, lcp: np.ndarray, key: str | None = None, *,
                 vocab=None, tokens: str = "char", preset: str = "raw", newline_id: int | None = None,
                 path: Path | None = None, loaded: bool = False, build_seconds: float | None = None):
        self.ids = _readonly(ids)
        self.sa = _readonly(sa)
        self.lcp = _readonly(lcp)
        self.key = key
        self.vocab = vocab
        self.tokens = tokens
        self.preset = preset
        self.newline_id = newline_id
        self.path = path  # cache_dir()/memo/<key> (files add .sa.npy, .lcp.npy, .json), or None
        self.loaded = loaded  # True: memory-mapped from the cache; False: built in this process
        self.build_seconds = build_seconds
        self._newlines: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def build_or_load(cls, dataset, n_train: int | None = None, *, notice: Notice | None = None,
                      progress: Callable[[str, float], None] | None = None) -> MemoIndex:
        """The index over ``dataset.ids[:n_train]`` (the training split; all ids if None),
        cached under the dataset's fingerprint and that length."""
        n = len(dataset.ids) if n_train is None else int(n_train)
        if not 0 < n <= len(dataset.ids):
            raise ConfigError(f"n_train must be in 1..{len(dataset.ids)}, got {n_train!r}")
        vocab = dataset.vocab
        cfg = dataset.config
        key = hashlib.sha256(json.dumps(
            {"format": MEMO_FORMAT, "fingerprint": dataset.fingerprint, "n": n}, sort_keys=True
        ).encode()).hexdigest()[:32]
        newline_id = vocab.stoi.get("\n") if vocab.is_char else None
        return cls.from_ids(dataset.ids[:n], key, vocab=vocab, tokens=cfg.tokens, preset=cfg.preprocess,
                            newline_id=newline_id, notice=notice, progress=progress)

    @classmethod
    def from_ids(cls, ids: np.ndarray, key: str | None = None, *, vocab=None, tokens: str = "char",
                 preset: str = "raw", newline_id: int | None = None, notice: Notice | None = None,
                 progress: Callable[[str, float], None] | None = None) -> MemoIndex:
        """The index over ``ids`` (int32 >= 0). With a ``key`` (a file-name-safe string naming
        exactly these ids) it is cached as ``cache_dir()/memo/<key>.*``; without, built in memory."""
        ids = _readonly(ids)
        if ids.ndim != 1 or ids.shape[0] == 0:
            raise ConfigError("a memorization index needs a non-empty 1-D token id array")
        if ids.shape[0] >= 2**31 - 1:
            raise ConfigError(f"a memorization index holds < 2^31 tokens, got {ids.shape[0]}")
        extra = dict(vocab=vocab, tokens=tokens, preset=preset, newline_id=newline_id)
        base = None if key is None else _memo_dir() / key
        if base is not None:
            loaded, why = cls._load(base, ids)
            if loaded is not None:
                sa, lcp, meta = loaded
                return cls(ids, sa, lcp, key, path=base, loaded=True,
                           build_seconds=meta.get("build_seconds"), **extra)
            if why:
                _notify(notice, f"memorization index {base}.* was unusable ({why}); rebuilding it")
        if progress:
            progress("index", 0.0)
        from seqtui.kernels.suffix import build_index

        t0 = time.perf_counter()
        if int(ids.min()) < 0:
            raise ConfigError("token ids must be >= 0")
        sa, lcp = build_index(ids)
        seconds = time.perf_counter() - t0
        if progress:
            progress("index", 1.0)
        if base is not None:
            try:
                cls._save(base, sa, lcp, {"format": MEMO_FORMAT, "key": key, "n": int(ids.shape[0]),
                                          "build_seconds": seconds, "max_lcp": int(lcp.max())})
            except OSError as exc:
                _notify(notice, f"could not save the memorization index to {base}.*: {exc}")
        return cls(ids, sa, lcp, key, path=base, loaded=False,
                   build_seconds=seconds, **extra)

    @staticmethod
    def _files(base: Path) -> tuple[Path, Path, Path]:
        return (base.with_name(base.name + ".sa.npy"), base.with_name(base.name + ".lcp.npy"),
                base.with_name(base.name + ".json"))

    @classmethod
    def _load(cls, base: Path, ids: np.ndarray):
        """((sa, lcp, meta), None) from the cache, or (None, reason) — reason None if absent."""
        sa_path, lcp_path, meta_path = cls._files(base)
        if not (meta_path.exists() or sa_path.exists() or lcp_path.exists()):
            return None, None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != MEMO_FORMAT:
                return None, "unknown format"
            n = int(ids.shape[0])
            if meta.get("n") != n:
                return None, f"built for {meta.get('n')} tokens, not {n}"
            sa = np.load(sa_path, mmap_mode="r", allow_pickle=False)
            lcp = np.load(lcp_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, TypeError, EOFError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        for name, a in (("suffix array", sa), ("LCP array", lcp)):
            if a.dtype != np.int32 or a.shape != (n,):
                return None, f"{name} is {a.dtype} {a.shape}, expected int32 ({n},)"
        from seqtui.kernels.suffix import spot_check

        rng = np.random.default_rng(n)
        probes = rng.integers(0, n, min(_PROBES, n)).astype(np.int64)
        if not spot_check(ids, _readonly(sa), _readonly(lcp), probes):
            return None, "its contents do not match the training text"
        return (sa, lcp, meta), None

    @classmethod
    def _save(cls, base: Path, sa: np.ndarray, lcp: np.ndarray, meta: dict) -> None:
        sa_path, lcp_path, meta_path = cls._files(base)
        meta_path.unlink(missing_ok=True)  # the pair is valid again only once the JSON is back
        _atomic_write(sa_path, lambda f: np.save(f, sa, allow_pickle=False))
        _atomic_write(lcp_path, lambda f: np.save(f, lcp, allow_pickle=False))
        _atomic_write(meta_path, lambda f: f.write(json.dumps(meta).encode()))
        fsync_dir(base.parent)

    # -- scoring ---------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """Ids of a text sample, tokenized as the dataset was (needs the vocabulary)."""
        if self.vocab is None:
            raise ConfigError("this memorization index has no vocabulary: score token ids instead")
        from seqtui.data.text import encode_prompt

        return encode_prompt(self.vocab, text, self.tokens, self.preset)

    def score(self, sample: str | Sequence[int] | np.ndarray, threshold: int = DEFAULT_THRESHOLD,
              ) -> MemoScore:
        """Memorization figures of one sample (token ids, or text if the index has a vocabulary)."""
        if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
            raise ConfigError(f"memorization threshold must be an integer >= 1, got {threshold!r}")
        threshold = int(threshold)
        text = sample if isinstance(sample, str) else None
        ids = self.encode(text) if text is not None else np.asarray(sample)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ConfigError(f"a sample must be a 1-D array of token ids, got {ids.dtype} {ids.shape}")
        pat = ids.astype(np.int32)  # a fresh writable array: one kernel signature
        if self.vocab is not None:
            pat[pat == self.vocab.unk] = -1  # <unk> matches nothing
        from seqtui.kernels.suffix import match_sample

        lens, where, best, count = match_sample(self.ids, self.sa, self.lcp, pat, COUNT_CAP)
        m = int(pat.shape[0])
        spans = copied_spans(lens, threshold)
        covered = sum(e - s for s, e in spans)
        L = int(lens[best]) if m else 0
        at = int(where[best]) if L else -1
        score = MemoScore(
            length=m, threshold=threshold, longest_len=L, longest_at=at,
            longest_sample_start=int(best) if L else -1, longest_count=int(count) if L else 0,
            longest_line=self.line_of(at) if L else None,
            covered_fraction=covered / m if m else 0.0, spans=spans, match_lengths=lens,
        )
        if self.vocab is not None:
            self._add_text(score, ids, text)
        return score

    def line_of(self, offset: int) -> int | None:
        """1-based line number of a training position (None unless newline is a token)."""
        if self.newline_id is None:
            return None
        if self._newlines is None:
            self._newlines = np.flatnonzero(self.ids == self.newline_id)
        return int(np.searchsorted(self._newlines, offset, side="left")) + 1

    def _add_text(self, score: MemoScore, ids: np.ndarray, text: str | None) -> None:
        vocab = self.vocab
        if score.longest_len:
            score.longest_text = vocab.decode(self.ids[score.longest_at: score.longest_at + score.longest_len])
        if vocab.kind == "bpe":  # byte-level tokens: decode(encode(text)) == text
            starts, ends, text = bpe_offsets(vocab, ids)
        elif text is None:  # spans over vocab.decode(ids)
            text = vocab.decode(ids)
            sep = 0 if vocab.is_char else 1
            lens = np.array([len(vocab.itos[i]) for i in ids.tolist()], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(lens + sep)])[:-1]
            ends = starts + lens
        else:
            starts, ends, text = token_offsets(text, self.tokens, self.preset)
        score.text = text
        score.char_spans = [(int(starts[s]), int(ends[e - 1])) for s, e in score.spans]


def bpe_offsets(vocab, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(start, end) character offsets of each BPE token in the decoded text, and that text
    (invalid UTF-8 replaced, as ``decode`` does). A token whose bytes begin or end inside a
    multi-byte character covers the whole character, so a span never splits one; offsets count
    characters, not the tokens' display strings."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out: list[str] = []
    n = 0  # characters decoded so far
    starts, ends = [], []
    for i in np.asarray(ids).tolist():
        starts.append(n)  # a pending partial character is the one at n: it starts there
        piece = decoder.decode(vocab.token_bytes(i))
        out.append(piece)
        n += len(piece)
        ends.append(n + (1 if decoder.getstate()[0] else 0))  # … and ends with its character
    out.append(decoder.decode(b"", final=True))
    text = "".join(out)
    return np.array(starts, np.int64), np.minimum(np.array(ends, np.int64), len(text)), text


def token_offsets(text: str, tokens: str, preset: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(start, end) character offsets of each token of ``text`` as tokenized by
    :func:`seqtui.data.text.tokenize`, and the string they index (the d2l-preprocessed text for
    d2l characters, else ``text`` itself)."""
    import re

    from seqtui.data.text import preprocess_text

    if tokens == "char":
        text = preprocess_text(text, preset)
        pos = np.arange(len(text), dtype=np.int64)
        return pos, pos + 1, text
    # as tokenize: re's \s is str.isspace(); the document separator is a word of its own
    pattern = (r"[A-Za-z]+" if preset == "d2l" else r"[^\s]+") + "|\x1e"
    found = [(m.start(), m.end()) for m in re.finditer(pattern, text)]
    a = np.array(found, dtype=np.int64).reshape(-1, 2)
    return a[:, 0], a[:, 1], text


def _notify(notice: Notice | None, message: str) -> None:
    if notice is not None:
        notice(message)
    else:
        warnings.warn(message, MemoCacheWarning, stacklevel=3)
