"""Token vocabulary: id 0 is ``<unk>``, then reserved tokens, then tokens by descending frequency.

Ties are broken by first occurrence, so a vocabulary is a pure function of the token stream
(the same rule d2l's ``Vocab`` follows). Importing this module does not import numba.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from seqtui.errors import CheckpointError, ConfigError

UNK = "<unk>"
JSON_VERSION = 1
_MAX_CODEPOINT = 0x110000
# Char strings longer than this are encoded by the Numba kernel instead of a Python loop.
_KERNEL_THRESHOLD = 1 << 16


class Vocab:
    """A bijection between tokens (strings) and ids (``np.int32``); unknown tokens map to 0."""

    unk = 0

    def __init__(self, itos: Sequence[str], is_char: bool = True, reserved: Sequence[str] = ()):
        itos = list(itos)
        if not itos or itos[0] != UNK:
            raise ConfigError(f"a vocabulary must start with {UNK!r}")
        try:  # C speed for 10^5 words; the loop below only names the culprit
            stoi: dict[str, int] = dict(zip(itos, range(len(itos))))
            ok = len(stoi) == len(itos) and set(map(type, itos)) == {str}
        except TypeError:  # an unhashable token
            ok = False
        if not ok:
            stoi = {}
            for i, tok in enumerate(itos):  # find the culprit
                if not isinstance(tok, str) or tok in stoi:
                    raise ConfigError(f"vocabulary token {i} is not a new string: {tok!r}")
                stoi[tok] = i
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = stoi
        self.is_char = bool(is_char)
        self.reserved: tuple[str, ...] = tuple(reserved)
        self._table: np.ndarray | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        min_freq: int = 0,
        reserved: Sequence[str] = (),
        is_char: bool | None = None,
    ) -> Vocab:
        """Count ``tokens`` (a string is a sequence of chars) and order them by frequency."""
        if is_char is None:
            is_char = isinstance(tokens, str)
        return cls.from_counts(Counter(tokens), min_freq=min_freq, reserved=reserved, is_char=is_char)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int] | Iterable[tuple[str, int]],
        min_freq: int = 0,
        reserved: Sequence[str] = (),
        is_char: bool = True,
    ) -> Vocab:
        """Build from token counts given in first-occurrence order (a ``Counter`` keeps that order)."""
        if min_freq < 0:
            raise ConfigError(f"min_freq must be >= 0, got {min_freq}")
        items = list(counts.items()) if isinstance(counts, Mapping) else list(counts)
        # sorted() is stable, so equal counts keep their first-occurrence order.
        ordered = sorted(items, key=lambda kv: -kv[1])
        itos = [UNK] + [t for t in reserved if t != UNK]
        taken = set(itos)
        for tok, n in ordered:
            if n < min_freq:
                break
            if tok not in taken:
                itos.append(tok)
                taken.add(tok)
        return cls(itos, is_char=is_char, reserved=[t for t in reserved if t != UNK])

    # -- lookups ---------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """"char", "word" or (for :class:`seqtui.data.bpe.BPEVocab`) "bpe": the JSON ``kind``."""
        return "char" if self.is_char else "word"

    def __len__(self) -> int:
        return len(self.itos)

    def join(self, tokens) -> str:
        """The text a sequence of generated tokens spells: chars joined, words with spaces."""
        return ("" if self.is_char else " ").join(tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.is_char == other.is_char

    def __repr__(self) -> str:
        kind = "char" if self.is_char else "word"
        return f"Vocab({kind}, {len(self)} tokens: {self.itos[:8]!r}{'...' if len(self) > 8 else ''})"

    def tokens_of(self, text: str) -> list[str]:
        """Split raw text the way this vocabulary counts it: characters, or whitespace words."""
        return list(text) if self.is_char else text.split()

    def encode(self, text_or_tokens: str | Iterable[str]) -> np.ndarray:
        """Ids (int32) of a string (split per :meth:`tokens_of`) or of a sequence of tokens."""
        if isinstance(text_or_tokens, str):
            if self.is_char and len(text_or_tokens) > _KERNEL_THRESHOLD:
                return self._encode_chars_fast(text_or_tokens)
            tokens: Iterable[str] = self.tokens_of(text_or_tokens)
        else:
            tokens = text_or_tokens
        get = self.stoi.get
        return np.fromiter((get(t, 0) for t in tokens), dtype=np.int32)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """Text of ``ids``: chars are concatenated, words joined by one space."""
        itos = self.itos
        n = len(itos)
        out = []
        for i in np.asarray(ids, dtype=np.int64).ravel().tolist():
            if not 0 <= i < n:
                raise ConfigError(f"token id {i} is outside the vocabulary (size {n})")
            out.append(itos[i])
        return ("" if self.is_char else " ").join(out)

    def char_table(self) -> np.ndarray:
        """Dense codepoint -> id table (int32, 0x110000 entries) used by the encoding kernel."""
        if self._table is None:
            table = np.zeros(_MAX_CODEPOINT, dtype=np.int32)
            for tok, i in self.stoi.items():
                if len(tok) == 1:
                    table[ord(tok)] = i
            self._table = table
        return self._table

    def _encode_chars_fast(self, text: str) -> np.ndarray:
        from seqtui.kernels.text import encode_text_bytes

        data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        return encode_text_bytes(data, self.char_table(), d2l=False)

    # -- persistence -----------------------------------------------------------------------
    def to_json(self) -> dict:
        """A JSON-ready dict; :meth:`from_json` restores an equal vocabulary."""
        return {
            "version": JSON_VERSION,
            "kind": "char" if self.is_char else "word",
            "itos": list(self.itos),
            "reserved": list(self.reserved),
        }

    @classmethod
    def from_json(cls, d: Mapping) -> Vocab:  # noqa: C901 - one check per field
        """Inverse of :meth:`to_json`; CheckpointError on anything malformed."""
        try:
            if d.get("kind") == "bpe":
                from seqtui.data.bpe import BPEVocab

                return BPEVocab.from_json(d)
            if d.get("version") != JSON_VERSION:
                raise CheckpointError(f"unsupported vocabulary version {d.get('version')!r}")
            kind = d["kind"]
            if kind not in ("char", "word"):
                raise CheckpointError(f"vocabulary kind must be 'char', 'word' or 'bpe', got {kind!r}")
            itos = d["itos"]
            if not isinstance(itos, list):
                raise CheckpointError("vocabulary 'itos' must be a list of strings")
            reserved = d.get("reserved", ())
            if not isinstance(reserved, (list, tuple)) or not all(isinstance(t, str) for t in reserved):
                raise CheckpointError("vocabulary 'reserved' must be a list of strings")
            check_entries(itos, kind, reserved)
            return cls(itos, is_char=kind == "char", reserved=reserved)
        except ConfigError as exc:
            raise CheckpointError(f"bad vocabulary: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"bad vocabulary JSON: missing or malformed {exc}") from None


def _is_control(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\n\t"


def check_entries(itos: Sequence, kind: str, reserved: Sequence[str] = ()) -> None:
    """CheckpointError unless every entry is what its tokenization can produce: a char vocabulary
    holds single code points (besides ``<unk>`` and reserved tokens); a word vocabulary holds
    non-empty words without whitespace or control characters."""
    special = {UNK, *reserved}
    for i, tok in enumerate(itos):
        if not isinstance(tok, str):
            raise CheckpointError(f"bad vocabulary: entry {i} is not a string")
        if tok in special:
            continue
        shown = tok.encode("unicode_escape").decode("ascii")[:40]
        if kind == "char":
            if len(tok) != 1:
                raise CheckpointError(f"bad vocabulary: char entry {i} is {len(tok)} characters ({shown!r})")
            if 0xD800 <= ord(tok) <= 0xDFFF:
                raise CheckpointError(f"bad vocabulary: char entry {i} is a lone surrogate")
        else:
            if not tok or len(tok.split()) != 1 or tok.split()[0] != tok:
                raise CheckpointError(f"bad vocabulary: word entry {i} ({shown!r}) is empty or holds whitespace")
            if any(_is_control(ch) for ch in tok):
                raise CheckpointError(f"bad vocabulary: word entry {i} ({shown!r}) holds control characters")
