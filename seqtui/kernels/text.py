"""Text kernels: UTF-8 bytes -> code points (with the d2l preset applied on the fly) -> ids.

Sizes: N bytes in a chunk, V vocabulary size, n n-gram order.

One decoder (``_decode``) feeds two entry kernels that walk the same bytes the same way:
``count_chars`` (pass 1: code point counts and first positions, for the vocabulary) and
``encode_chars`` (pass 2: ids through a dense code point -> id table). Both stop before an
incomplete trailing sequence unless ``final``, so a file can be fed in chunks, and report the
first invalid byte (strict) or substitute U+FFFD exactly as ``bytes.decode('utf-8', 'replace')``
does (one U+FFFD per maximal invalid subpart). A NUL byte is reported: it means a binary file.

The ``state`` array carries the d2l preset across chunks: [pending_space, line_has_letter,
tokens_emitted]. The d2l preset is d2l 0.17's ``re.sub('[^A-Za-z]+', ' ', line).strip().lower()``
per line, lines joined without a separator.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT

OK = 0
BAD_UTF8 = 1
NUL = 2
REPLACEMENT = 0xFFFD
MAX_CODEPOINT = 0x110000


@njit(inline="always")
def _decode(buf, i, n, final):
    """One code point at ``buf[i]``: (code point, length, status) where status 0 ok,
    1 invalid (length = bytes of the maximal invalid subpart), 2 needs more bytes."""
    b0 = np.int64(buf[i])
    if b0 < 0x80:
        return b0, 1, 0
    if 0xC2 <= b0 <= 0xDF:
        need = 1
        lo = 0x80
        hi = 0xBF
        cp = b0 & 0x1F
    elif 0xE0 <= b0 <= 0xEF:
        need = 2
        lo = 0xA0 if b0 == 0xE0 else 0x80
        hi = 0x9F if b0 == 0xED else 0xBF
        cp = b0 & 0x0F
    elif 0xF0 <= b0 <= 0xF4:
        need = 3
        lo = 0x90 if b0 == 0xF0 else 0x80
        hi = 0x8F if b0 == 0xF4 else 0xBF
        cp = b0 & 0x07
    else:
        return REPLACEMENT, 1, 1
    for k in range(1, need + 1):
        if i + k >= n:
            if final:
                return REPLACEMENT, k, 1
            return 0, k, 2
        b = np.int64(buf[i + k])
        if k > 1:
            lo = 0x80
            hi = 0xBF
        if b < lo or b > hi:
            return REPLACEMENT, k, 1
        cp = (cp << 6) | (b & 0x3F)
    return cp, need + 1, 0


@njit(inline="always")
def _d2l_map(cp, state):
    """The d2l preset on one code point: returns (space_first, out) with out = -1 for nothing."""
    if cp == 10 or cp == 13:
        state[0] = 0
        state[1] = 0
        return False, -1
    if 65 <= cp <= 90:
        cp += 32
    elif not 97 <= cp <= 122:
        if state[1] != 0:
            state[0] = 1
        return False, -1
    space = state[0] != 0
    state[0] = 0
    state[1] = 1
    return space, cp


@njit(**NJIT)
def count_chars(buf, final, replace, d2l, state, counts, first):
    """Pass 1 over a chunk: add code point counts and first token positions.

    Returns (bytes consumed, tokens emitted, status, byte offset of the problem or -1).
    """
    n = buf.shape[0]
    i = 0
    emitted = 0
    pos = state[2]
    while i < n:
        cp, length, status = _decode(buf, i, n, final)
        if status == 2:
            break
        if status == 1 and not replace:
            state[2] = pos
            return i, emitted, BAD_UTF8, i
        if cp == 0:
            state[2] = pos
            return i, emitted, NUL, i
        i += length
        if d2l:
            space, cp = _d2l_map(cp, state)
            if cp < 0:
                continue
            if space:
                counts[32] += 1
                if first[32] < 0:
                    first[32] = pos
                pos += 1
                emitted += 1
        counts[cp] += 1
        if first[cp] < 0:
            first[cp] = pos
        pos += 1
        emitted += 1
    state[2] = pos
    return i, emitted, OK, -1


@njit(**NJIT)
def encode_chars(buf, final, replace, d2l, state, table, out):
    """Pass 2 over a chunk: write ids ``table[code point]`` to ``out`` (room for N tokens).

    Returns the same tuple as :func:`count_chars`.
    """
    n = buf.shape[0]
    i = 0
    emitted = 0
    while i < n:
        cp, length, status = _decode(buf, i, n, final)
        if status == 2:
            break
        if status == 1 and not replace:
            state[2] += emitted
            return i, emitted, BAD_UTF8, i
        if cp == 0:
            state[2] += emitted
            return i, emitted, NUL, i
        i += length
        if d2l:
            space, cp = _d2l_map(cp, state)
            if cp < 0:
                continue
            if space:
                out[emitted] = table[32]
                emitted += 1
        out[emitted] = table[cp]
        emitted += 1
    state[2] += emitted
    return i, emitted, OK, -1


def encode_text_bytes(data: np.ndarray, table: np.ndarray, d2l: bool = False) -> np.ndarray:
    """Ids of a whole in-memory UTF-8 buffer (invalid bytes become U+FFFD's id)."""
    out = np.empty(data.shape[0], dtype=np.int32)
    state = np.zeros(3, dtype=np.int64)
    _, k, _, _ = encode_chars(data, True, True, d2l, state, table, out)
    return out[:k].copy()


@njit(**NJIT)
def count_unigrams(ids, V):
    """Occurrences of each id in ``ids`` (int64, length V)."""
    counts = np.zeros(V, dtype=np.int64)
    for i in range(ids.shape[0]):
        counts[ids[i]] += 1
    return counts


@njit(**NJIT)
def ngram_keys(ids, n, V):
    """Key of the n-gram starting at each position: sum ids[i+j] * V**(n-1-j) (int64).

    The last token is the least significant digit, so key // V is the key of its context.
    The caller checks that V**n fits in int64.
    """
    m = ids.shape[0] - n + 1
    if m < 0:
        m = 0
    keys = np.empty(m, dtype=np.int64)
    for i in range(m):
        k = np.int64(0)
        for j in range(n):
            k = k * V + ids[i + j]
        keys[i] = k
    return keys
