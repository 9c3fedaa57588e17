"""Corpus text -> vocabulary + token ids, cached as ``.npy`` keyed by content and settings.

Presets: ``raw`` keeps every character (as char-rnn does); ``d2l`` is d2l 0.17's
``re.sub('[^A-Za-z]+', ' ', line).strip().lower()`` applied per line with the lines joined
without a separator (which is what gives The Time Machine its 170,580 characters).
Tokens: ``char`` (Unicode code points), ``word`` (whitespace-separated; under ``d2l`` the
runs of letters; a folder corpus's document separator is a word of its own) or ``bpe``
(byte-level byte-pair encoding, ``seqtui.data.bpe``: ``bpe_vocab`` tokens whose merges are
learned from the training part of the text only — see :func:`_encode_bpe` for how the held-out
tail is kept out).

Char tokens are encoded in two passes over a memory-mapped file, chunk by chunk (count, then
encode straight into a memory-mapped ``.npy``), so a 1 GB file needs memory near its token array.
Word tokens take one Numba pass (``kernels.text.scan_words``: a table of distinct words and each
token's index into it), then the vocabulary and a gather; ``_encode_words_reference`` is the
plain-Python twin the tests compare against.
Reloading memory-maps the cached array; a file's hash is remembered by (path, size, mtime) so
a second run starts at once.

Robustness: a UTF-8 byte-order mark is stripped (never a vocabulary character). Line endings
are kept as they are under ``raw`` (a CRLF file has ``\r`` tokens, as char-rnn does; convert
with ``dos2unix`` to drop them); ``d2l`` treats CR, LF and CRLF alike as line ends. A cache entry
that fails to load is removed and rebuilt (with a notice); without a writable cache directory
the tokens are built in memory (with a notice) and the run still works.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqtui import paths
from seqtui.data.corpora import (
    BOM,
    DOCUMENT_SEPARATOR,
    CorpusInfo,
    bad_utf8_error,
    binary_error,
    corpus_file,
    empty_error,
    resolve_corpus,
)
from seqtui.data.choices import ERRORS, PREPROCESS, TOKENS
from seqtui.errors import ConfigError, CorpusError
from seqtui.data.notices import notice
from seqtui.files import MiB, atomic_write, commit_temp, locked, read_text_bounded, temp_path, unwritable_dir
from seqtui.data.vocab import UNK, Vocab

CACHE_FORMAT = 2  # 2: a document separator is a word token of its own
CHUNK_BYTES = 1 << 24  # bytes per kernel call: bounds the scratch memory of a pass
BINARY_SNIFF = 8192  # a NUL among the first bytes reports "binary" before any UTF-8 error
_NON_LETTERS = re.compile(r"[^A-Za-z]+")
_LETTERS_OR_SEP = re.compile(r"[A-Za-z]+|" + DOCUMENT_SEPARATOR)
_ASCII_SPACE = b" \n\t\r\x0b\x0c"

Progress = Callable[[str, float], None]  # (phase, fraction done)


@dataclass(frozen=True)
class TextConfig:
    """How a corpus becomes tokens. ``max_tokens`` keeps only the first tokens (d2l uses 10,000)."""

    corpus: str
    preprocess: str = "raw"  # "raw" | "d2l"
    tokens: str = "char"  # "char" | "word"
    min_freq: int = 0  # tokens seen fewer times map to <unk>
    max_tokens: int | None = None
    errors: str = "strict"  # "strict" | "replace" (invalid UTF-8 -> U+FFFD)
    bpe_vocab: int | None = None  # tokens="bpe": byte tokens + learned tokens (>= 256); ids add <unk>
    # tokens="bpe" only: the share of the text (bytes) held out; merges are learned from the text
    # before it and Dataset.split(val_fraction) cuts the ids there (pass RunConfig.val_fraction)
    val_fraction: float = 0.0

    def validate(self) -> TextConfig:
        if self.preprocess not in PREPROCESS:
            raise ConfigError(f"preprocess must be one of {', '.join(PREPROCESS)}; got {self.preprocess!r}")
        if self.tokens not in TOKENS:
            raise ConfigError(f"tokens must be one of {', '.join(TOKENS)}; got {self.tokens!r}")
        if self.errors not in ERRORS:
            raise ConfigError(f"errors must be one of {', '.join(ERRORS)}; got {self.errors!r}")
        if not isinstance(self.min_freq, int) or self.min_freq < 0:
            raise ConfigError(f"min_freq must be an integer >= 0; got {self.min_freq!r}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens <= 0):
            raise ConfigError(f"max_tokens must be a positive integer or None; got {self.max_tokens!r}")
        if self.tokens == "bpe":
            from seqtui.data.bpe import check_bpe_vocab

            check_bpe_vocab(self.bpe_vocab)
            if self.min_freq:
                raise ConfigError("min_freq does not apply to bpe tokens (every byte is in the vocabulary)")
            if not 0.0 <= float(self.val_fraction) < 1.0:
                raise ConfigError(f"val_fraction must be in [0, 1); got {self.val_fraction!r}")
        return self


@dataclass
class Dataset:
    """A tokenized corpus. ``ids`` may be a (copy-on-write) memory map of the cache file."""

    vocab: Vocab
    ids: np.ndarray  # int32, all tokens (or the first max_tokens)
    fingerprint: str  # sha256 of file content + settings
    config: TextConfig
    corpus: CorpusInfo
    counts: np.ndarray  # int64 (V,): occurrences of each vocabulary id in the whole corpus
    source_bytes: int  # size of the corpus file
    cache_path: Path | None = None
    bpe_train_bytes: int | None = None  # bpe: UTF-8 bytes (after preprocessing) the merges came from
    bpe_train_tokens: int | None = None  # bpe: the ids of those bytes; the held-out tail starts here

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, held-out) ids. char/word: :func:`split_train_val`. bpe: split where the text the
        merges were learned from ends, which needs the ``val_fraction`` the dataset was built with."""
        if self.bpe_train_tokens is None:
            return split_train_val(self.ids, val_fraction)
        if float(val_fraction) != float(self.config.val_fraction):
            raise ConfigError(f"BPE merges were learned holding out {self.config.val_fraction:g} of the text; "
                              f"build the dataset with val_fraction={val_fraction:g}")
        n = int(self.ids.shape[0])
        at = min(self.bpe_train_tokens, n)
        if float(val_fraction) > 0 and at == n:
            raise CorpusError(f"corpus of {n} tokens is too short to hold out {val_fraction:.0%}")
        if at < 1:
            raise CorpusError(f"corpus of {n} tokens is too short to hold out {val_fraction:.0%}")
        return self.ids[:at], self.ids[at:]


# -- pure-Python reference transforms (prompts, tests) -------------------------------------------
def preprocess_text(text: str, preset: str) -> str:
    """Apply a preset to in-memory text (the kernels do the same on bytes)."""
    if preset == "raw":
        return text
    if preset == "d2l":
        # readlines() semantics: \r\n, \r and \n all end a line.
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return "".join(_NON_LETTERS.sub(" ", line).strip().lower() for line in lines)
    raise ConfigError(f"preprocess must be one of {', '.join(PREPROCESS)}; got {preset!r}")


def tokenize(text: str, tokens: str = "char", preset: str = "raw") -> list[str]:
    """Tokens of ``text`` under a preset, exactly as :func:`load_dataset` would count them."""
    if tokens == "char":
        return list(preprocess_text(text, preset))
    if tokens == "word":  # a document separator (a folder corpus) is a word of its own
        if preset == "d2l":
            return [w.lower() for w in _LETTERS_OR_SEP.findall(text)]
        preprocess_text("", preset)  # validates the preset name
        if DOCUMENT_SEPARATOR not in text:
            return text.split()
        words: list[str] = []
        for k, doc in enumerate(text.split(DOCUMENT_SEPARATOR)):
            if k:
                words.append(DOCUMENT_SEPARATOR)
            words += doc.split()
        return words
    if tokens == "bpe":
        raise ConfigError("bpe tokens need their vocabulary: use encode_prompt(vocab, text, 'bpe', preset)")
    raise ConfigError(f"tokens must be one of {', '.join(TOKENS)}; got {tokens!r}")


def encode_prompt(vocab: Vocab, text: str, tokens: str = "char", preset: str = "raw") -> np.ndarray:
    """Ids of ``text`` exactly as :func:`load_dataset` tokenized the corpus (any token kind)."""
    if tokens == "bpe" or getattr(vocab, "kind", None) == "bpe":
        return vocab.encode(preprocess_text(text, preset))
    return vocab.encode(tokenize(text, tokens, preset))


# -- content hashing -------------------------------------------------------------------------
def _tokens_dir() -> Path:
    return paths.cache_dir() / "tokens"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, remembered by (path, size, mtime_ns) in the cache."""
    st = path.stat()
    index_path = _tokens_dir() / "hashes.json"
    key = str(path.resolve())
    hit = _read_index(index_path).get(key)
    if isinstance(hit, dict) and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        return hit["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    try:  # read-modify-write under a lock beside the index, so concurrent runs lose no entry
        index_path.parent.mkdir(parents=True, exist_ok=True)
        with locked(index_path):
            index = _read_index(index_path)
            index[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            atomic_write(index_path, json.dumps(index))
    except OSError:
        pass  # a read-only cache: the hash is computed again next time
    return digest


def _read_index(index_path: Path) -> dict:
    try:
        index = json.loads(read_text_bounded(index_path, "hash index", 64 * MiB, CorpusError))
    except (CorpusError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _settings(cfg: TextConfig) -> dict:
    settings = {"preprocess": cfg.preprocess, "tokens": cfg.tokens, "min_freq": cfg.min_freq, "errors": cfg.errors}
    if cfg.tokens == "bpe":  # where the merges are learned depends on the split and the length
        from seqtui.data.bpe import MIN_COUNT, PRETOKENIZER

        settings.update(bpe_vocab=cfg.bpe_vocab, val_fraction=float(cfg.val_fraction), max_tokens=cfg.max_tokens,
                        bpe_min_count=MIN_COUNT, pretokenizer=PRETOKENIZER)
    return settings


def _digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# -- loading ---------------------------------------------------------------------------------
def load_dataset(cfg: TextConfig, progress: Progress | None = None) -> Dataset:
    """Tokenize a corpus (or memory-map its cached tokens); CorpusError/ConfigError on bad input."""
    cfg.validate()
    info = resolve_corpus(cfg.corpus)
    path = corpus_file(info, cfg.errors)
    if info.members:  # a directory or glob corpus: from here on, its joined file
        from dataclasses import replace as _replace

        from seqtui.data.corpora import joined_meta

        info = _replace(info, joined=path, documents=(joined_meta(path) or {}).get("documents", info.documents))
    size = path.stat().st_size
    if size == 0:
        raise empty_error(path)
    content = file_sha256(path)
    settings = _settings(cfg)
    bom = {"bom": "stripped"} if _has_bom(path) else {}  # files without a BOM keep their keys
    key = _digest({"format": CACHE_FORMAT, "content": content, **settings, **bom})
    fingerprint = _digest({"format": CACHE_FORMAT, "content": content, **settings, "max_tokens": cfg.max_tokens,
                           **bom})
    npy = _tokens_dir() / f"{key}.npy"
    meta_path = _tokens_dir() / f"{key}.json"
    loaded = _load_cached(npy, meta_path)
    if loaded is None:
        decode_cfg = cfg if cfg.errors != "skip-file" else _replace_errors(cfg, "strict")  # per document
        loaded = _build_cache(path, size, decode_cfg, npy, meta_path, content, progress)
        from seqtui.data.cache import enforce_cap

        enforce_cap(keep=(npy, meta_path, path))
    else:
        from seqtui.data.cache import touch

        touch(npy, meta_path)
    vocab, ids, counts, cache_path, meta = loaded
    if cfg.max_tokens is not None:
        ids = ids[: cfg.max_tokens]
    return Dataset(vocab, ids, fingerprint, cfg, info, counts, size, cache_path, meta.get("bpe_train_bytes"),
                   meta.get("bpe_train_tokens"))


def _replace_errors(cfg: TextConfig, errors: str) -> TextConfig:
    from dataclasses import replace

    return replace(cfg, errors=errors)


def _has_bom(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(BOM)) == BOM


def _load_cached(npy: Path, meta_path: Path):
    """(vocab, ids, counts, npy) from a cache entry; None if there is none. An entry that fails
    to load (truncated, corrupt, mismatched) is removed with a notice, so it is rebuilt."""
    if not npy.is_file() and not meta_path.is_file():
        return None
    meta = _read_meta(meta_path)
    problem = None
    if meta is None:
        problem = "its index entry is missing or unreadable"
    else:
        try:
            vocab = Vocab.from_json(meta["vocab"])
            counts = np.asarray(meta["counts"], dtype=np.int64)
            ids = np.load(npy, mmap_mode="c")
            if ids.dtype != np.int32 or ids.ndim != 1 or ids.shape[0] != int(meta["n_tokens"]):
                problem = f"it holds {ids.dtype} {ids.shape}, not {meta['n_tokens']} int32 tokens"
            elif counts.shape != (len(vocab),):
                problem = "its token counts do not match its vocabulary"
            else:
                return vocab, ids, counts, npy, meta
        except Exception as exc:  # np.load raises ValueError/OSError/EOFError on truncation
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    if npy.is_file():
        notice(f"token cache {npy} failed to load ({problem}); removed, rebuilding it")
    for f in (npy, meta_path):
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass
    return None


def _read_meta(meta_path: Path) -> dict | None:
    try:
        meta = json.loads(read_text_bounded(meta_path, "token cache index", 512 * MiB, CorpusError))
        return meta if isinstance(meta, dict) and meta.get("format") == CACHE_FORMAT else None
    except (CorpusError, ValueError):
        return None


def _build_cache(
    path: Path, size: int, cfg: TextConfig, npy: Path, meta_path: Path, content: str,
    progress: Progress | None,
) -> dict:
    data = np.memmap(path, dtype=np.uint8, mode="r")
    # A NUL near the start means binary, even if invalid UTF-8 comes first (as in most formats).
    nul = data[:BINARY_SNIFF].tobytes().find(b"\x00")
    if nul >= 0:
        raise binary_error(path, nul)
    base = len(BOM) if data[: len(BOM)].tobytes() == BOM else 0
    try:
        build = {"char": _encode_chars, "word": _encode_words, "bpe": _encode_bpe}[cfg.tokens]
        vocab, counts, tmp, in_memory, *extra = build(data[base:], _Where(path, base), cfg, npy, progress)
    finally:
        del data
    meta = {
        "format": CACHE_FORMAT,
        "content_sha256": content,
        "source": str(path),
        "corpus": cfg.corpus,  # as asked for (a name, a directory, a glob): `seqtui cache list`
        "settings": _settings(cfg),
        "n_tokens": int(counts.sum()),
        "vocab": vocab.to_json(),
        "counts": counts.tolist(),
    }
    if extra:
        meta.update(extra[0])
    if in_memory is None:
        try:
            commit_temp(tmp, npy)
            atomic_write_text(meta_path, json.dumps(meta))
            return vocab, np.load(npy, mmap_mode="c"), counts, npy, meta
        except OSError as exc:
            notice(f"cannot write the token cache in {unwritable_dir(npy.parent)} ({exc.strerror or exc}); "
                   "working in memory")
            in_memory = np.array(np.load(tmp if tmp.exists() else npy))
            for f in (tmp, npy, meta_path):
                try:
                    f.unlink(missing_ok=True)
                except OSError:
                    pass
    return vocab, in_memory, counts, None, meta


class _Where:
    """A corpus path plus the bytes skipped at its start (a BOM), so error offsets stay true."""

    def __init__(self, path: Path, base: int):
        self.path, self.base = path, base


def _chunks(size: int, chunk: int = CHUNK_BYTES):
    start = 0
    while start < size:
        yield start, min(start + chunk, size)
        start += chunk


def _raise_status(status: int, path: Path, offset: int) -> None:
    from seqtui.kernels.text import BAD_UTF8, NUL

    if status == BAD_UTF8:
        raise bad_utf8_error(path.path, path.base + offset)
    if status == NUL:
        raise binary_error(path.path, path.base + offset)


def _new_output(npy: Path, n: int, path: "_Where") -> tuple[Path | None, np.ndarray]:
    """A memory-mapped temp ``.npy`` for ``n`` ids; (None, an array) if the cache is not writable."""
    if n == 0:
        raise CorpusError(f"{path.path} has no tokens after preprocessing")
    tmp = temp_path(npy, ".npy")
    try:
        npy.parent.mkdir(parents=True, exist_ok=True)
        return tmp, np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int32, shape=(n,))
    except OSError as exc:
        notice(f"cannot write the token cache in {unwritable_dir(npy.parent)} ({exc.strerror or exc}); "
               "working in memory")
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        return None, np.empty(n, dtype=np.int32)


def _finish_output(tmp: Path | None, out: np.ndarray) -> np.ndarray | None:
    """Flush a mapped output (None: it is on disk at ``tmp``), or the in-memory array."""
    if tmp is None:
        return out
    out.flush()
    return None


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view, so kernels see one array type for mapped files and scratch buffers."""
    v = a.view()
    v.flags.writeable = False
    return v


def _scan(data: np.ndarray, path: Path, cfg: TextConfig, step, progress: Progress | None, phase: str) -> None:
    """Feed the mapped bytes to ``step(buf, final) -> (used, written, status, where)`` chunk by
    chunk, through the d2l filter when that preset is on; raise on bad bytes."""
    from seqtui.kernels.text import OK, d2l_filter

    size = data.shape[0]
    chunk = max(CHUNK_BYTES, 4)  # room for one whole UTF-8 sequence
    d2l, replace = cfg.preprocess == "d2l", cfg.errors == "replace"
    scratch = np.empty(min(chunk, size), dtype=np.uint8) if d2l else None
    d2l_state = np.zeros(2, dtype=np.int64)
    pos = 0
    while pos < size:
        end = min(pos + chunk, size)
        piece = data[pos:end]
        if d2l:
            used, k, status, where = d2l_filter(piece, end == size, replace, d2l_state, scratch)
            step(_readonly(scratch[:k]), True)
        else:
            used, _, status, where = step(piece, end == size)
        if status != OK:
            _raise_status(status, path, pos + where)
        pos += used
        if progress:
            progress(phase, pos / size)


def _encode_chars(data: np.ndarray, path: Path, cfg: TextConfig, npy: Path, progress: Progress | None):
    """Two Numba passes over the mapped bytes: count code points, then write ids."""
    from seqtui.kernels.text import MAX_CODEPOINT, count_chars, encode_chars

    replace = cfg.errors == "replace"
    counts = np.zeros(MAX_CODEPOINT, dtype=np.int64)  # calloc: only touched pages cost memory
    seen = np.zeros(MAX_CODEPOINT, dtype=np.int32)
    state = np.zeros(2, dtype=np.int64)  # [tokens, distinct code points]
    _scan(data, path, cfg, lambda buf, final: count_chars(buf, final, replace, state, counts, seen), progress, "count")
    seen = seen[: state[1]]  # first-appearance order
    vocab = Vocab.from_counts([(chr(c), int(counts[c])) for c in seen], min_freq=cfg.min_freq, is_char=True)
    table = vocab.char_table()
    vcounts = np.zeros(len(vocab), dtype=np.int64)
    np.add.at(vcounts, table[seen], counts[seen])  # rare chars (min_freq) add up in <unk>
    tmp, out = _new_output(npy, int(state[0]), path)
    written = 0

    def encode(buf, final):
        nonlocal written
        r = encode_chars(buf, final, replace, table, out[written:])
        written += r[1]
        return r

    _scan(data, path, cfg, encode, progress, "encode")
    in_memory = _finish_output(tmp, out)
    del out
    return vocab, vcounts, tmp, in_memory


def _word_chunks(data: np.ndarray, where: "_Where", errors: str):
    """Decoded text pieces cut at ASCII whitespace (so no word or character is split)."""
    path, base = where.path, where.base
    size = data.shape[0]
    pos = 0
    step = CHUNK_BYTES
    while pos < size:
        end = min(pos + step, size)
        raw = data[pos:end].tobytes()
        if end < size:
            cut = max(raw.rfind(bytes([b])) for b in _ASCII_SPACE) + 1
            if cut == 0:  # one enormous "word": read further
                step *= 2
                continue
            raw = raw[:cut]
        nul = raw.find(b"\x00")
        if nul >= 0:
            raise binary_error(path, base + pos + nul)
        try:
            text = raw.decode("utf-8", errors)
        except UnicodeDecodeError as exc:
            raise bad_utf8_error(path, base + pos + exc.start) from None
        yield pos + len(raw), text
        pos += len(raw)
        step = CHUNK_BYTES


def _encode_words(data: np.ndarray, path: Path, cfg: TextConfig, npy: Path, progress: Progress | None):
    """One Numba pass finds the words (a table of distinct words in first-appearance order, and
    each token's index into it); the vocabulary comes from that table and ids are a gather."""
    from seqtui.kernels.text import OK, new_word_table, scan_words

    size = data.shape[0]
    d2l, replace = cfg.preprocess == "d2l", cfg.errors == "replace"
    tables = new_word_table()
    state = np.zeros(2, dtype=np.int64)  # [distinct words, arena bytes]
    pieces = []
    pos = 0
    step = CHUNK_BYTES
    while pos < size:
        end = min(pos + step, size)
        piece = data[pos:end]
        scratch = np.empty(piece.shape[0] // 2 + 2, dtype=np.int32)
        used, written, status, where, *tables = scan_words(piece, end == size, d2l, replace, *tables,
                                                           state, scratch)
        if status != OK:
            _raise_status(status, path, pos + where)
        if used == 0 and end < size:  # one enormous word: read further
            step *= 2
            continue
        pieces.append(scratch[:written] if end == size else scratch[:written].copy())
        pos += used
        step = CHUNK_BYTES
        if progress:
            progress("count", pos / size)
    words = _word_list(*tables, state)
    counts = np.zeros(len(words), dtype=np.int64)
    for p in pieces:
        counts += np.bincount(p, minlength=len(words))
    # Vocab.from_counts(Counter(words)) in numpy: by count, ties by first appearance; a literal
    # "<unk>" in the text is <unk>
    order = np.argsort(-counts, kind="stable")
    keep = order[counts[order] >= cfg.min_freq]
    if UNK in words:
        keep = keep[keep != words.index(UNK)]
    vocab = Vocab([UNK, *map(words.__getitem__, keep.tolist())], is_char=False)
    word_id = np.zeros(len(words), dtype=np.int32)  # word index -> vocabulary id
    word_id[keep] = np.arange(1, keep.shape[0] + 1, dtype=np.int32)
    vcounts = np.empty(len(vocab), dtype=np.int64)
    vcounts[1:] = counts[keep]
    vcounts[0] = counts.sum() - vcounts[1:].sum()  # rare words (min_freq) and a literal "<unk>"
    total = sum(p.shape[0] for p in pieces)
    if total == 0:
        raise CorpusError(f"{path.path} has no tokens after preprocessing")
    try:
        return vocab, vcounts, _write_ids(npy, total, path, (word_id[p] for p in pieces), progress), None
    except OSError as exc:
        notice(f"cannot write the token cache in {unwritable_dir(npy.parent)} ({exc.strerror or exc}); "
               "working in memory")
        return vocab, vcounts, None, np.concatenate([word_id[p] for p in pieces])


def _word_list(table: np.ndarray, words: np.ndarray, arena: np.ndarray, state: np.ndarray) -> list[str]:
    """The distinct words found by :func:`scan_words`, in first-appearance order."""
    nd, au = int(state[0]), int(state[1])
    if nd == 0:
        return []
    out = arena[: au - 1].tobytes().decode("utf-8").split("\n")  # each word is followed by "\n"
    assert len(out) == nd
    return out


def _write_ids(npy: Path, n: int, path: "_Where", pieces, progress: Progress | None) -> Path:
    """Write ``pieces`` (int32 arrays, ``n`` ids in all) as a temp ``.npy`` beside ``npy``."""
    if n == 0:
        raise CorpusError(f"{path.path} has no tokens after preprocessing")
    npy.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(npy, ".npy")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int32)), "fortran_order": False, "shape": (n,)}
    done = 0
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for piece in pieces:
            f.write(np.ascontiguousarray(piece, dtype=np.int32).data)
            done += piece.shape[0]
            if progress:
                progress("encode", done / n)
    if done != n:  # pragma: no cover - a bug, not bad input
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"wrote {done} ids, expected {n}")
    return tmp


def _encode_words_reference(data: np.ndarray, path: Path, cfg: TextConfig, npy: Path, progress: Progress | None):
    """The pure-Python twin of :func:`_encode_words` (tests compare the two): two passes over
    decoded text, ``str.split`` / a regex per chunk, a ``Counter``, a dict lookup per word."""
    size = data.shape[0]
    counter: Counter[str] = Counter()
    for done, text in _word_chunks(data, path, cfg.errors):
        counter.update(tokenize(text, "word", cfg.preprocess))
        if progress:
            progress("count", done / size)
    vocab = Vocab.from_counts(counter, min_freq=cfg.min_freq, is_char=False)
    vcounts = np.zeros(len(vocab), dtype=np.int64)
    get = vocab.stoi.get
    for tok, n in counter.items():
        vcounts[get(tok, 0)] += n
    tmp, out = _new_output(npy, sum(counter.values()), path)
    written = 0
    for done, text in _word_chunks(data, path, cfg.errors):
        words = tokenize(text, "word", cfg.preprocess)
        out[written : written + len(words)] = np.fromiter((get(w, 0) for w in words), np.int32, len(words))
        written += len(words)
        if progress:
            progress("encode", done / size)
    in_memory = _finish_output(tmp, out)
    del out
    return vocab, vcounts, tmp, in_memory


def _encode_bpe(data: np.ndarray, path: Path, cfg: TextConfig, npy: Path, progress: Progress | None):
    """Byte-level BPE. The text (after the preset) is held in memory as UTF-8.

    The held-out tail is cut in bytes: the merges are learned from ``text[:cut]`` only, ``cut`` =
    the last safe pre-token boundary (``seqtui.data.bpe.safe_cut``: a space after a printable
    ASCII character) before ``(1 - val_fraction)`` of the bytes. Because ``cut`` is a pre-token
    boundary, the ids of the whole text are the ids of ``text[:cut]`` followed by those of the
    rest, so the held-out tokens start exactly at ``bpe_train_tokens`` and use no byte the merges
    saw: split with :meth:`Dataset.split`, not a token fraction. With ``max_tokens`` the bytes
    are those of the first ``max_tokens`` tokens, found by a short fixed-point iteration.
    """
    from seqtui.data.bpe import MIN_COUNT, learn_bpe, safe_cut, too_large_error

    where = path
    nul = data[:].tobytes().find(b"\x00")
    if nul >= 0:
        raise binary_error(where.path, where.base + nul)
    try:
        text = data.tobytes().decode("utf-8", cfg.errors)
    except UnicodeDecodeError as exc:
        raise bad_utf8_error(where.path, where.base + exc.start) from None
    text = preprocess_text(text, cfg.preprocess)
    raw = text.encode("utf-8", "surrogatepass")
    if not raw:
        raise CorpusError(f"{where.path} has no tokens after preprocessing")
    buf = np.frombuffer(raw, dtype=np.uint8)
    f = float(cfg.val_fraction)
    span = len(raw) if cfg.max_tokens is None else min(len(raw), cfg.max_tokens)  # a token has >= 1 byte
    for _ in range(5):
        cut = safe_cut(buf, int((1.0 - f) * span)) if f > 0 else span
        if progress:
            progress("count", 0.0)
        vocab = learn_bpe(buf[:cut], int(cfg.bpe_vocab), MIN_COUNT, allow_short=True)
        if progress:
            progress("encode", 0.0)
        ids = vocab.encode_bytes(buf)
        if cfg.max_tokens is None or len(ids) <= cfg.max_tokens:
            break
        covered = int(vocab.token_lengths[ids[: cfg.max_tokens]].sum())
        if covered <= span * 1.01:
            break
        span = covered
    if vocab.bpe_vocab < cfg.bpe_vocab:
        raise too_large_error(int(cfg.bpe_vocab), vocab.bpe_vocab, MIN_COUNT,
                              f"the training text ({cut:,} bytes before the held-out tail)" if f > 0 else "the text")
    ends = np.cumsum(vocab.token_lengths[ids])
    train_tokens = int(np.searchsorted(ends, cut, side="right"))
    if progress:
        progress("encode", 1.0)
    tmp, out = _new_output(npy, len(ids), where)
    out[:] = ids
    in_memory = _finish_output(tmp, out)
    del out
    counts = np.bincount(ids, minlength=len(vocab)).astype(np.int64)
    return vocab, counts, tmp, in_memory, {"bpe_train_bytes": int(cut), "bpe_train_tokens": train_tokens,
                                "text_bytes": len(raw)}


def split_train_val(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last ``val_fraction`` of the tokens (views, no copy)."""
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1); got {val_fraction!r}")
    n = int(ids.shape[0])
    n_val = int(round(n * float(val_fraction)))
    if n - n_val < 1:
        raise CorpusError(f"corpus of {n} tokens is too short to hold out {val_fraction:.0%}")
    return ids[: n - n_val], ids[n - n_val :]


def atomic_write_text(path: Path, text: str) -> None:
    """A cache file, written atomically (its directory is created on demand)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
