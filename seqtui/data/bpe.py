"""Byte-level byte-pair encoding: learning, encoding, decoding, a streaming decoder, a merge cache.

Ids: 0 is ``<unk>`` (kept for the project's convention; never produced), 1..256 are the bytes
0..255, then one id per learned token. ``bpe_vocab`` counts the byte tokens and the learned ones
(as ``tokenizers``' ``vocab_size`` does), so a vocabulary has ``bpe_vocab + 1`` ids.

Pre-tokenization is GPT-2's regex (``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+|
?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``), the rule of ``tokenizers.pre_tokenizers.ByteLevel(
add_prefix_space=False, use_regex=True)``; merges never cross a pre-token. \\p{L}, \\p{N} and \\s
come from Python's ``unicodedata`` (general categories L*, N*; \\s = the White_Space property).

Learning follows ``tokenizers``' ``BpeTrainer`` step for step (see ``seqtui.kernels.bpe``):
the most frequent adjacent pair (over the distinct pre-tokens, weighted by their counts;
overlapping pairs such as the two in "aaa" both count) is merged; **ties go to the smaller
pair in the trainer's id order** — the byte alphabet sorted by GPT-2's printable stand-in
characters (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``, then the other bytes in byte order), then
learned tokens by age — which is exactly the order of the trainer's ``BinaryHeap``. A merge whose
result equals an existing token reuses that token (as the trainer does). Learning stops at
``bpe_vocab`` tokens or when no pair occurs ``min_count`` times (the trainer's ``min_frequency``).

Against ``tokenizers`` (``BpeTrainer(vocab_size=bpe_vocab, initial_alphabet=ByteLevel.alphabet(),
min_frequency=min_count)`` trained on the same text as one sequence), merges and encodings are
identical (``bench/bench_bpe.py``: KJV and Tiny Shakespeare, every merge and every token). Known
differences of rule: (1) character classes come from Python's Unicode tables (14.0 on Python
3.11) while Oniguruma's are newer: code points unassigned in 14.0 but letters or digits later
split differently (9,392 code points, all category Cn here); (2) ``Tokenizer.train(files)``
pre-tokenizes line by line: a white-space run that crosses a line end and continues (``"\n\n\n"``,
``" \n"`` before more space) is cut at the line end there, and whole-text chunks here — feed it
the text as one sequence (``train_from_iterator([text])``) to compare; (3) encoding a text
with a duplicated pair in the merges (possible only when two merges spell the same token)
uses the later rank, as tokenizers' merge map does (never seen on real text; the learning kernel
reuses the token's id, as the trainer does).

Display strings (``itos``): each byte as GPT-2's stand-in character (space is ``Ġ``, newline ``Ċ``),
so a token reads like the entries of a ``tokenizers`` vocab.json ("Ġthe"). Text is bytes:
``decode`` concatenates token bytes, ``stream_decoder`` never cuts a UTF-8 character.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from seqtui import paths
from seqtui.data.vocab import UNK, Vocab
from seqtui.files import atomic_write, commit_temp, temp_path
from seqtui.errors import CheckpointError, ConfigError

BYTE_ALPHABET = 256
JSON_VERSION = 1
CACHE_FORMAT = 1
PRETOKENIZER = "gpt2"
MIN_COUNT = 2  # a merge must occur at least twice (tokenizers' min_frequency)
_PY_ENCODE_LIMIT = 1024  # shorter strings are encoded in Python (no numba import for a prompt)
_OTHER, _LETTER, _NUMBER, _SPACE = 0, 1, 2, 3
# Unicode White_Space (what \s means in tokenizers' Oniguruma regex)
_WHITE_SPACE = [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
                0x202F, 0x205F, 0x3000]


def _bytes_to_unicode() -> list[str]:
    """GPT-2's printable stand-in for each byte (what tokenizers' ByteLevel shows)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [""] * 256
    for b, c in zip(bs, cs):
        chars[b] = chr(c)
    return chars


BYTE_CHARS: list[str] = _bytes_to_unicode()
_CHAR_BYTE = {c: b for b, c in enumerate(BYTE_CHARS)}
# tokenizers' id of each byte: its alphabet sorted by stand-in character
HF_BYTE_RANK = np.argsort(np.argsort([ord(c) for c in BYTE_CHARS], kind="stable"), kind="stable").astype(np.int64)


# -- character classes ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def class_table() -> np.ndarray:
    """uint8 (0x110000,): 0 other, 1 letter (L*), 2 number (N*), 3 white space; cached on disk."""
    path = paths.cache_dir() / "bpe" / f"uniclass-{unicodedata.unidata_version}.npy"
    try:
        table = np.load(path)
        if table.dtype == np.uint8 and table.shape == (0x110000,):
            table.flags.writeable = False
            return table
    except (OSError, ValueError):
        pass
    cat = unicodedata.category
    kinds = {"L": _LETTER, "N": _NUMBER}
    table = np.fromiter((kinds.get(cat(chr(c))[0], 0) for c in range(0x110000)), np.uint8, 0x110000)
    table[_WHITE_SPACE] = _SPACE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path, ".npy")
        np.save(tmp, table)
        commit_temp(tmp, path)
    except OSError:
        pass
    table.flags.writeable = False
    return table


# -- Python reference twins (prompts, tests) -----------------------------------------------------
def pretokenize(text: str) -> list[str]:
    """GPT-2 pre-tokens of ``text`` (the reference twin of the kernel's scanner)."""
    cls = class_table()
    n = len(text)
    kind = [int(cls[ord(ch)]) for ch in text]
    out = []
    i = 0
    while i < n:
        out.append(text[i:_chunk_end_py(text, kind, i, n)])
        i += len(out[-1])
    return out


def _chunk_end_py(text: str, kind: list[int], i: int, n: int) -> int:
    if text[i] == "'" and i + 1 < n:
        if text[i + 1] in "stmd":
            return i + 2
        if text[i + 1 : i + 3] in ("re", "ve", "ll"):
            return i + 3
    k, j = kind[i], i
    if text[i] == " " and i + 1 < n and kind[i + 1] != _SPACE:
        k, j = kind[i + 1], i + 1
    if k != _SPACE:
        while j < n and kind[j] == k:
            j += 1
        return j
    j = i
    while j < n and kind[j] == _SPACE:
        j += 1
    return j - 1 if j < n and j - i >= 2 else j


def learn_reference(text: str, bpe_vocab: int, min_count: int = MIN_COUNT) -> list[tuple[int, int, int]]:
    """Merges (left, right, result) learned by recounting every pair after every merge: the slow,
    obviously correct twin of the kernel (same tie rule: higher count, then the smaller pair
    in the trainer's id order)."""
    from collections import Counter

    words = Counter(tuple(b + 1 for b in w.encode("utf-8", "surrogatepass")) for w in pretokenize(text))
    words_l = [[list(w), f] for w, f in words.items()]
    tok = [b""] + [bytes([b]) for b in range(256)]
    index = {t: i for i, t in enumerate(tok) if t}
    rank = [0] + HF_BYTE_RANK.tolist()
    merges = []
    while len(tok) < bpe_vocab + 1:
        counts: Counter = Counter()
        for w, f in words_l:
            for x, y in zip(w, w[1:]):
                counts[(x, y)] += f
        if not counts:
            break
        (a, b), c = min(counts.items(), key=lambda kv: (-kv[1], rank[kv[0][0]], rank[kv[0][1]]))
        if c < max(1, min_count):
            break
        t = tok[a] + tok[b]
        new = index.get(t)
        if new is None:
            new = len(tok)
            tok.append(t)
            index[t] = new
            rank.append(new - 1)
        merges.append((a, b, new))
        for entry in words_l:
            entry[0] = _merge_word(entry[0], a, b, new)
    return merges


def _merge_word(w: list[int], a: int, b: int, new: int) -> list[int]:
    out, r = [], 0
    while r < len(w):
        if r + 1 < len(w) and w[r] == a and w[r + 1] == b:
            out.append(new)
            r += 2
        else:
            out.append(w[r])
            r += 1
    return out


def _encode_py(text: str, ranks: dict, merges: np.ndarray) -> list[int]:
    out: list[int] = []
    for chunk in pretokenize(text):
        w = [b + 1 for b in chunk.encode("utf-8", "surrogatepass")]
        while len(w) > 1:
            best = min((ranks.get(p, 1 << 62) for p in zip(w, w[1:])), default=1 << 62)
            if best == 1 << 62:
                break
            a, b, new = (int(x) for x in merges[best])
            w = _merge_word(w, a, b, new)
        out.extend(w)
    return out


# -- the vocabulary ---------------------------------------------------------------------------
class BPEVocab(Vocab):
    """A byte-level BPE vocabulary: ``merges`` int32 (M, 3) rows (left, right, result id) in rank order.

    ``itos`` holds display strings; ``token_bytes(i)`` the bytes a token stands for.
    """

    kind = "bpe"

    def __init__(self, merges: np.ndarray):
        merges = np.ascontiguousarray(np.asarray(merges, dtype=np.int32).reshape(-1, 3))
        toks = [b""] + [bytes([b]) for b in range(256)]
        for a, b, new in merges.tolist():
            if new == len(toks):
                toks.append(toks[a] + toks[b])
        self._bytes: list[bytes] = toks
        itos = [UNK] + ["".join(BYTE_CHARS[x] for x in t) for t in toks[1:]]
        super().__init__(itos, is_char=False)
        self.merges = merges
        self._ranks = {(int(a), int(b)): i for i, (a, b, _) in enumerate(merges.tolist())}
        self.token_lengths = np.array([len(t) for t in toks], dtype=np.int64)  # bytes per token

    @property
    def bpe_vocab(self) -> int:
        """Tokens other than ``<unk>`` (the ``bpe_vocab`` setting this vocabulary satisfies)."""
        return len(self) - 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BPEVocab) and np.array_equal(self.merges, other.merges)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BPEVocab({len(self)} ids, {len(self.merges)} merges: {self.itos[257:263]!r}...)"

    def token_bytes(self, i: int) -> bytes:
        return self._bytes[int(i)]

    def tokens_of(self, text: str) -> list[str]:
        """Display strings of the tokens of ``text`` (so ``encode(tokens_of(t)) == encode(t)``)."""
        itos = self.itos
        return [itos[i] for i in self.encode(text).tolist()]

    def encode(self, text_or_tokens: str | Iterable[str]) -> np.ndarray:
        """Ids (int32) of a string, or of display strings (an unknown one maps to 0)."""
        if not isinstance(text_or_tokens, str):
            return super().encode(text_or_tokens)
        if len(text_or_tokens) <= _PY_ENCODE_LIMIT:
            return np.array(_encode_py(text_or_tokens, self._ranks, self.merges), dtype=np.int32)
        data = np.frombuffer(text_or_tokens.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        return self.encode_bytes(data)

    def encode_bytes(self, data: np.ndarray) -> np.ndarray:
        """Ids of a UTF-8 buffer (uint8) through the Numba kernel."""
        from seqtui.kernels.bpe import encode_bytes

        data = data.view()
        data.flags.writeable = False  # one array type for every caller: one compilation
        return encode_bytes(data, class_table(), self.merges, len(self))

    def decode_bytes(self, ids: Iterable[int] | np.ndarray) -> bytes:
        toks, n = self._bytes, len(self._bytes)
        out = []
        for i in np.asarray(ids, dtype=np.int64).ravel().tolist():
            if not 0 <= i < n:
                raise ConfigError(f"token id {i} is outside the vocabulary (size {n})")
            out.append(toks[i])
        return b"".join(out)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """The text of ``ids``; bytes that are not UTF-8 (a cut character) become U+FFFD."""
        data = self.decode_bytes(ids)
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")

    def join(self, tokens) -> str:
        """The text generated tokens (display strings or ids) spell, decoded as UTF-8 bytes."""
        dec = self.stream_decoder()
        return "".join(dec.feed(t) for t in tokens) + dec.flush()

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self)

    def num_chars(self, ids) -> int:
        """Characters (code points) of the decoded text (for bits per character)."""
        return len(self.decode(ids))

    # -- persistence -----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "version": JSON_VERSION,
            "kind": "bpe",
            "pretokenizer": PRETOKENIZER,
            "itos": list(self.itos),
            "merges": self.merges[:, :2].tolist(),
        }

    @classmethod
    def from_json(cls, d: Mapping) -> BPEVocab:
        """Inverse of :meth:`to_json`; CheckpointError (one line) on anything malformed."""
        if d.get("version") != JSON_VERSION:
            raise CheckpointError(f"unsupported BPE vocabulary version {d.get('version')!r}")
        if d.get("pretokenizer", PRETOKENIZER) != PRETOKENIZER:
            raise CheckpointError(f"unknown BPE pre-tokenizer {d.get('pretokenizer')!r}")
        merges, itos = d.get("merges"), d.get("itos")
        if not isinstance(merges, list) or not isinstance(itos, list):
            raise CheckpointError("bad BPE vocabulary: 'merges' and 'itos' must be lists")
        return cls(replay_merges(merges, expect_tokens=len(itos), itos=itos))


def replay_merges(pairs: Sequence, expect_tokens: int | None = None, itos: Sequence[str] | None = None) -> np.ndarray:
    """(left, right) pairs -> (M, 3) merges with result ids (an existing equal token is reused);
    CheckpointError on an out-of-range id, a pair using an id not made yet, a malformed pair or a
    token count (or display string) that does not match."""
    toks: dict[bytes, int] = {bytes([b]): b + 1 for b in range(256)}
    lens = [b""] + [bytes([b]) for b in range(256)]
    out = np.empty((len(pairs), 3), dtype=np.int32)
    for k, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(type(x) is int for x in pair):
            raise CheckpointError(f"bad BPE merge {k}: expected a pair of integer ids, got {pair!r}")
        a, b = pair
        n = len(lens)
        for x in (a, b):
            if not 1 <= x < n:
                what = "an id not made yet" if x >= n else "an out-of-range id"
                raise CheckpointError(f"bad BPE merge {k}: {what} ({x}; ids 1..{n - 1} exist at that point)")
        t = lens[a] + lens[b]
        new = toks.get(t)
        if new is None:
            new = len(lens)
            toks[t] = new
            lens.append(t)
        out[k] = (a, b, new)
    if expect_tokens is not None and expect_tokens != len(lens):
        raise CheckpointError(f"bad BPE vocabulary: {len(pairs)} merges make {len(lens)} ids but 'itos' has {expect_tokens}")
    if itos is not None:
        for i, t in enumerate(lens[1:], 1):
            if itos[i] != "".join(BYTE_CHARS[x] for x in t):
                raise CheckpointError(f"bad BPE vocabulary: token {i} is {itos[i]!r}, its merges spell "
                                      f"{''.join(BYTE_CHARS[x] for x in t)!r}")
        if itos[0] != UNK:
            raise CheckpointError(f"bad BPE vocabulary: id 0 must be {UNK!r}")
    return out


class StreamDecoder:
    """Text of tokens as they arrive: ``feed(id)`` returns the characters completed so far and keeps
    an incomplete UTF-8 sequence for the next call; ``flush()`` ends the stream (a sequence left
    incomplete becomes U+FFFD, as ``bytes.decode(errors='replace')`` does)."""

    def __init__(self, vocab: BPEVocab):
        self.vocab = vocab
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int | str) -> str:
        """Add one token — an id, or a display string as ``Generator.sample`` yields them."""
        i = self.vocab.stoi[token] if isinstance(token, str) else int(token)
        if not 0 <= i < len(self.vocab):
            raise ConfigError(f"token id {i} is outside the vocabulary (size {len(self.vocab)})")
        return self._dec.decode(self.vocab.token_bytes(i), final=False)

    def flush(self) -> str:
        out = self._dec.decode(b"", final=True)
        self._dec.reset()
        return out

    def pending(self) -> bytes:
        """Bytes held back (the start of a character not yet complete)."""
        return self._dec.getstate()[0]


# -- learning ---------------------------------------------------------------------------------
def _as_bytes(text: str | bytes | np.ndarray) -> np.ndarray:
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = np.frombuffer(text, dtype=np.uint8)
    else:
        data = np.asarray(text, dtype=np.uint8)
    data = data.view()
    data.flags.writeable = False
    return data


def learn_merges_raw(data: np.ndarray, target_tokens: int, min_count: int = MIN_COUNT) -> tuple[np.ndarray, int, bool]:
    """Run the learning kernel on UTF-8 bytes: (merges (M, 3), ids made incl. <unk>, exhausted)."""
    from seqtui.kernels.bpe import count_chunks, learn_merges

    data = _as_bytes(data)
    starts, lens, freq, _ = count_chunks(data, class_table())
    idx = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()), dtype=np.int64)
    sym = data[idx].astype(np.int32) + 1
    wstart = (np.cumsum(lens) - lens).astype(np.int64)
    wlen = lens.astype(np.int64).copy()
    tok_bytes = np.arange(256, dtype=np.uint8)
    tok_start = np.concatenate([[0], np.arange(256)]).astype(np.int64)
    tok_len = np.concatenate([[0], np.ones(256)]).astype(np.int64)
    rank = np.concatenate([[0], HF_BYTE_RANK]).astype(np.int64)
    merges, n_tok, *_ = learn_merges(sym, wstart, wlen, freq.astype(np.int64), tok_bytes, tok_start,
                                     tok_len, rank, int(target_tokens), int(min_count))
    return merges, int(n_tok), int(n_tok) < int(target_tokens)


def _bpe_dir() -> Path:
    return paths.cache_dir() / "bpe"


def _prefix(merges: np.ndarray, target_tokens: int) -> np.ndarray:
    """The merges a run to ``target_tokens`` ids makes: those before the vocabulary is that big."""
    n = 257
    for k, new in enumerate(merges[:, 2].tolist()):
        if n >= target_tokens:
            return merges[:k]
        if new == n:
            n += 1
    return merges


def learn_bpe(text: str | bytes | np.ndarray, bpe_vocab: int, min_count: int = MIN_COUNT,
              cache: bool = True, info: dict | None = None, allow_short: bool = False) -> BPEVocab:
    """Learn a vocabulary of ``bpe_vocab`` tokens (bytes + merged) from ``text``.

    ConfigError if ``bpe_vocab < 256`` or the text runs out of pairs first (the message says the
    largest vocabulary it supports). With ``cache`` the merges are kept under
    ``cache_dir()/bpe`` keyed by the text's SHA-256 and the settings; a later request for the same
    text and a vocabulary no larger reuses a prefix of them. ``info`` (a dict) receives
    ``cache`` ("hit" or "miss"), ``key`` and ``path``. ``allow_short`` returns the smaller
    vocabulary instead of raising.
    """
    check_bpe_vocab(bpe_vocab)
    if not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"min_count must be an integer >= 1; got {min_count!r}")
    data = _as_bytes(text)
    target = int(bpe_vocab) + 1
    key = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, "pretokenizer": PRETOKENIZER,
                                     "min_count": min_count}).encode() + b"\0" + data.tobytes()).hexdigest()
    path = _bpe_dir() / f"{key}.json"
    hit = _read_cache(path) if cache else None
    if hit is not None and (hit["n_tokens"] >= target or hit["exhausted"]):
        merges, n_tok, exhausted = hit["merges"], hit["n_tokens"], hit["exhausted"]
        status = "hit"
    else:
        merges, n_tok, exhausted = learn_merges_raw(data, target, min_count)
        status = "miss"
        if cache:
            _write_cache(path, merges, n_tok, exhausted)
    if info is not None:
        info.update(cache=status, key=key, path=path)
    if n_tok < target and not allow_short:
        raise too_large_error(bpe_vocab, n_tok - 1, min_count)
    return BPEVocab(_prefix(merges, target))


def too_large_error(bpe_vocab: int, reached: int, min_count: int = MIN_COUNT, what: str = "this text") -> ConfigError:
    return ConfigError(
        f"bpe_vocab {bpe_vocab} is more than {what} supports: merging stopped at {reached} tokens "
        f"(no pair occurs {min_count} times); use bpe_vocab <= {reached}")


def check_bpe_vocab(bpe_vocab) -> None:
    if not isinstance(bpe_vocab, int) or isinstance(bpe_vocab, bool) or bpe_vocab < BYTE_ALPHABET:
        raise ConfigError(f"bpe_vocab must be ≥ 256 (the byte alphabet); got {bpe_vocab!r}")


def _read_cache(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("format") != CACHE_FORMAT:
            return None
        merges = replay_merges(d["merges"])
        return {"merges": merges, "n_tokens": int(d["n_tokens"]), "exhausted": bool(d["exhausted"])}
    except (OSError, ValueError, KeyError, TypeError, CheckpointError):
        return None


def _write_cache(path: Path, merges: np.ndarray, n_tok: int, exhausted: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"format": CACHE_FORMAT, "pretokenizer": PRETOKENIZER, "n_tokens": n_tok,
                                   "exhausted": exhausted, "merges": merges[:, :2].tolist()}))


def safe_cut(data: np.ndarray, limit: int) -> int:
    """The largest ``p < limit`` where a space follows a printable ASCII character: always a
    pre-token boundary, and ``data[:p]`` splits into the same pre-tokens alone as inside the
    whole text. Without one, the last character boundary (then only the last pre-token may differ)."""
    n = int(data.shape[0])
    limit = max(0, min(int(limit), n))
    if limit >= n:
        return n
    if limit == 0:
        return 0
    raw = data[:limit].tobytes()  # nothing at or after ``limit`` decides (it may be held out)
    p = raw.rfind(b" ")
    while p > 0:
        if 0x21 <= raw[p - 1] <= 0x7E:
            return p
        p = raw.rfind(b" ", 0, p)
    p = limit - 1
    while p > 0 and 0x80 <= raw[p] < 0xC0:
        p -= 1
    return max(p, 0)
