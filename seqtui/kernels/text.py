"""Text kernels: UTF-8 bytes -> code points -> ids, and n-gram counting over ids.

Sizes: N bytes in a chunk, V vocabulary size, n n-gram order.

One decoder (``_decode``) feeds three entry kernels: ``count_chars`` (pass 1: code point counts
and the order of first appearance, for the vocabulary), ``encode_chars`` (pass 2: ids through a
dense code point -> id table) and ``d2l_filter`` (the d2l preset, bytes -> lowercase ASCII
letters and spaces, run before the other two). ASCII takes a fast path. Each stops before an
incomplete trailing sequence unless ``final``, so a file can be fed in chunks, and reports the
first invalid byte (strict) or substitutes U+FFFD exactly as ``bytes.decode('utf-8', 'replace')``
does (one U+FFFD per maximal invalid subpart). A NUL byte is reported: it means a binary file.

All three return (bytes consumed, tokens or bytes written, status, offset of the problem or -1).
The d2l preset is d2l 0.17's ``re.sub('[^A-Za-z]+', ' ', line).strip().lower()`` per line,
lines joined without a separator.
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
def _plain_ascii(b):
    """1..127: a code point by itself (0 is NUL, >= 128 starts a multi-byte sequence)."""
    return np.uint8(b - np.uint8(1)) < np.uint8(0x7F)


@njit(**NJIT)
def count_chars(buf, final, replace, state, counts, seen):
    """Pass 1 over a chunk: ``counts[cp] += 1`` per code point; a code point seen for the first
    time is appended to ``seen`` (so ``seen`` is in first-appearance order).

    ``state`` = [tokens so far, len(seen)], carried across chunks. Runs of already-seen ASCII
    are counted four bytes at a time into four histograms (independent increments).
    """
    n = buf.shape[0]
    lanes = np.zeros((4, 128), dtype=np.int64)
    known = np.zeros(128, dtype=np.bool_)
    for b in range(128):
        known[b] = counts[b] > 0
    i = 0
    emitted = 0
    ns = state[1]
    status = OK
    where = -1
    while i < n:
        if i + 4 <= n:
            b0 = buf[i]
            b1 = buf[i + 1]
            b2 = buf[i + 2]
            b3 = buf[i + 3]
            if (_plain_ascii(b0) and _plain_ascii(b1) and _plain_ascii(b2) and _plain_ascii(b3)
                    and known[b0] and known[b1] and known[b2] and known[b3]):
                lanes[0, b0] += 1
                lanes[1, b1] += 1
                lanes[2, b2] += 1
                lanes[3, b3] += 1
                i += 4
                emitted += 4
                continue
        b = buf[i]
        if _plain_ascii(b):
            if not known[b]:
                known[b] = True
                seen[ns] = b
                ns += 1
            lanes[0, b] += 1
            emitted += 1
            i += 1
            continue
        cp, length, st = _decode(buf, i, n, final)
        if st == 2:
            break
        if (st == 1 and not replace) or cp == 0:
            status = BAD_UTF8 if cp != 0 else NUL
            where = i
            break
        i += length
        c = counts[cp]
        if c == 0:
            seen[ns] = cp
            ns += 1
        counts[cp] = c + 1
        emitted += 1
    for b in range(128):
        counts[b] += lanes[0, b] + lanes[1, b] + lanes[2, b] + lanes[3, b]
    state[0] += emitted
    state[1] = ns
    return i, emitted, status, where


@njit(**NJIT)
def encode_chars(buf, final, replace, table, out):
    """Pass 2 over a chunk: ``out[k] = table[cp]`` for the k-th code point (room for N)."""
    n = buf.shape[0]
    i = 0
    emitted = 0
    status = OK
    where = -1
    while i < n:
        if _plain_ascii(buf[i]):  # a run of ASCII: byte j goes to out[j + shift]
            shift = emitted - i
            j = i
            while j < n and _plain_ascii(buf[j]):
                out[j + shift] = table[buf[j]]
                j += 1
            emitted += j - i
            i = j
            continue
        cp, length, st = _decode(buf, i, n, final)
        if st == 2:
            break
        if (st == 1 and not replace) or cp == 0:
            status = BAD_UTF8 if cp != 0 else NUL
            where = i
            break
        i += length
        out[emitted] = table[cp]
        emitted += 1
    return i, emitted, status, where


@njit(**NJIT)
def d2l_filter(buf, final, replace, state, out):
    """The d2l preset on a chunk: letters lowercased, each run of other characters inside a line
    becomes one space, nothing at line ends; writes ASCII bytes to ``out`` (room for N).

    ``state`` = [space pending, line has a letter], carried across chunks. Non-ASCII input is
    still decoded, so bad UTF-8 and NUL bytes are reported as by the other kernels.
    """
    n = buf.shape[0]
    i = 0
    k = 0
    pending = state[0]
    started = state[1]
    status = OK
    where = -1
    while i < n:
        b = np.int64(buf[i])
        if b >= 0x80 or b == 0:
            cp, length, st = _decode(buf, i, n, final)
            if st == 2:
                break
            if (st == 1 and not replace) or cp == 0:
                status = BAD_UTF8 if cp != 0 else NUL
                where = i
                break
            i += length
            if started:
                pending = 1
            continue
        i += 1
        if b == 10 or b == 13:  # \n, \r and \r\n all end a line (readlines semantics)
            pending = 0
            started = 0
            continue
        if 65 <= b <= 90:
            b += 32
        elif b < 97 or b > 122:
            if started:
                pending = 1
            continue
        if pending:
            out[k] = 32
            k += 1
            pending = 0
        out[k] = b
        k += 1
        started = 1
    state[0] = pending
    state[1] = started
    return i, k, status, where


def encode_text_bytes(data: np.ndarray, table: np.ndarray, d2l: bool = False) -> np.ndarray:
    """Ids of a whole in-memory UTF-8 buffer (invalid bytes become U+FFFD's id, NUL stops)."""
    if d2l:
        filtered = np.empty(data.shape[0], dtype=np.uint8)
        _, k, _, _ = d2l_filter(data, True, True, np.zeros(2, dtype=np.int64), filtered)
        data = filtered[:k]
        data.flags.writeable = False  # one array type for every caller: fewer compilations
    out = np.empty(data.shape[0], dtype=np.int32)
    _, k, _, _ = encode_chars(data, True, True, table, out)
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
