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
from numba.cpython.unsafe.numbers import trailing_zeros

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


# --- words ------------------------------------------------------------------------------------
# Word tokens at kernel speed: ``str.split()`` words (raw preset) or ASCII letter runs lowercased
# (d2l preset), found in one pass over UTF-8 bytes. Distinct words live in a hash table (open
# addressing, linear probing) numbered in order of first appearance, so the caller builds exactly
# the vocabulary ``Counter(words)`` would give. A table slot holds a word's first 8 bytes packed
# into an int64 and its length, which identify a word of <= 8 bytes outright (no byte compare);
# longer words also compare their tail in the arena. Sizes: N bytes in a chunk, D distinct words,
# A bytes of distinct words, S table slots (a power of two, >= 1.6·D).
WORD_TABLE_START = 1 << 12  # initial distinct-word capacity
_GROW = 3  # internal status: an array is full
RECORD = 0x1E  # U+001E, the document separator of a folder corpus: a word of its own
_MIX1 = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64
_MIX2 = -49064778989728563  # 0xff51afd7ed558ccd as int64


def new_word_table():
    """Empty (table, words, arena) for :func:`scan_words`: ``table`` (int64, 2·S: per slot the
    word's first 8 bytes packed, and index + 1 | length << 32; 0 = empty slot), ``words`` (int64,
    2·D: per word its arena offset and byte length) and ``arena`` (uint8: the words' UTF-8 bytes,
    each followed by "\\n", which no word holds)."""
    cap = WORD_TABLE_START
    return np.zeros(4 * cap, np.int64), np.zeros(2 * cap, np.int64), np.zeros(16 * cap, np.uint8)


@njit(cache=True)
def _unicode_space(cp):
    """``str.isspace()`` for a code point >= 0x80 (the ASCII ones are in the class table)."""
    return (cp == 0x85 or cp == 0xA0 or cp == 0x1680 or (0x2000 <= cp <= 0x200A) or cp == 0x2028
            or cp == 0x2029 or cp == 0x202F or cp == 0x205F or cp == 0x3000)


@njit(cache=True)
def _push(cur, k, c, packed, tail):
    """Append byte ``c`` to the current word: (packed first 8 bytes, hash of the rest)."""
    cur[k] = c
    if k < 8:
        packed |= np.int64(c) << (8 * k)
    else:
        tail = tail * 31 + np.int64(c)
    return packed, tail


@njit(cache=True)
def _slot(packed, tail, k, mask):
    x = packed ^ (tail * _MIX1) ^ np.int64(k)
    x ^= x >> 33
    x *= _MIX2
    x ^= x >> 29
    return x & mask


@njit(cache=True)
def _grown(a, need):
    """A copy of ``a`` with room for at least ``need`` items (doubling)."""
    size = a.shape[0]
    while size < need:
        size *= 2
    b = np.zeros(size, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _rehash(table, words, arena, nd, size):
    """A table of ``size`` slots holding words 0..nd-1."""
    new = np.zeros(2 * size, dtype=np.int64)
    mask = size - 1
    for w in range(nd):
        s = words[2 * w]
        k = words[2 * w + 1]
        packed = np.int64(0)
        tail = np.int64(0)
        for j in range(k):
            c = np.int64(arena[s + j])
            if j < 8:
                packed |= c << (8 * j)
            else:
                tail = tail * 31 + c
        slot = _slot(packed, tail, k, mask)
        while new[2 * slot + 1] != 0:
            slot = (slot + 1) & mask
        new[2 * slot] = packed
        new[2 * slot + 1] = (w + 1) | (k << 32)
    return new


@njit(cache=True)
def _find(table, words, arena, packed, tail, k, src, off, fold, mask):
    """(slot, word index or -1) of the word ``src[off:off+k] | fold`` (packed/tail: its key)."""
    slot = _slot(packed, tail, k, mask)
    while True:
        e = table[2 * slot + 1]
        if e == 0:
            return slot, -1
        if table[2 * slot] == packed and (e >> 32) == k:
            w = (e & 0xFFFFFFFF) - 1
            same = True
            if k > 8:
                s = words[2 * w]
                for j in range(8, k):
                    if arena[s + j] != (src[off + j] | fold):
                        same = False
                        break
            if same:
                return slot, w
        slot = (slot + 1) & mask


@njit(cache=True)
def _fits(table, words, arena, nd, au, k):
    return au + k + 1 <= arena.shape[0] and 2 * nd + 2 <= words.shape[0] and 16 * (nd + 1) <= 5 * table.shape[0]


@njit(cache=True)
def _add(table, words, arena, nd, au, slot, packed, k, src, off, fold):
    """Store a new word and a "\\n" after it (the caller checked :func:`_fits`)."""
    for j in range(k):
        arena[au + j] = src[off + j] | fold
    arena[au + k] = 10
    words[2 * nd] = au
    words[2 * nd + 1] = k
    table[2 * slot] = packed
    table[2 * slot + 1] = (nd + 1) | (np.int64(k) << 32)


@njit(cache=True, nogil=True)
def _scan_words(buf, i, final, d2l, replace, word, cur, table, words, arena, state, out, written):
    """The loop of :func:`scan_words` from byte ``i``; stops with status _GROW (consumed = the
    start of the word that did not fit, and its length so far) when ``cur`` (the current word,
    normalized) or a table must grow. Arrays are never reassigned in here: a reassigned array
    brings reference counting into the loop (5x slower).

    Two paths: 64-byte blocks of plain ASCII get their word bounds from a bit mask (no branch
    per byte); anything else, and words crossing a block end, go byte by byte."""
    n = buf.shape[0]
    fold = np.uint8(32) if d2l else np.uint8(0)
    fold8 = np.int64(0x2020202020202020) if d2l else np.int64(0)
    nd = state[0]
    au = state[1]
    mask = table.shape[0] // 2 - 1
    cap = cur.shape[0] - 4
    k = 0
    packed = np.int64(0)
    tail = np.int64(0)
    wstart = i
    status = OK
    where = -1
    block_from = i  # no block path before this byte
    one = np.uint64(1)
    while True:
        if k == 0 and i >= block_from and i + 72 <= n:
            m = np.uint64(0)
            acc = np.uint8(0)
            nul = False
            for j in range(64):
                b = buf[i + j]
                acc |= b
                nul |= b == 0 or b == RECORD  # NUL or a document separator: byte by byte
                m |= np.uint64(word[b & 127]) << np.uint64(j)
            if acc >= 128 or nul:
                block_from = i + 64
            else:
                base = i
                i = base + 64
                while m != 0:
                    s = np.int64(trailing_zeros(m))
                    rest = ~(m >> np.uint64(s))
                    e = 64 - s if rest == 0 else np.int64(trailing_zeros(rest))
                    w0 = base + s
                    if s + e >= 64:  # reaches the block end: byte by byte from its start
                        i = w0
                        block_from = w0 + 1
                        break
                    packed = np.int64(0)
                    for j in range(8):  # w0 + 8 <= n: the block has 8 bytes of slack
                        packed |= np.int64(buf[w0 + j]) << (8 * j)
                    if e < 8:
                        packed &= (np.int64(1) << (8 * e)) - 1
                        packed |= fold8 & ((np.int64(1) << (8 * e)) - 1)
                    else:
                        packed |= fold8
                    tail = np.int64(0)
                    for j in range(8, e):
                        tail = tail * 31 + np.int64(buf[w0 + j] | fold)
                    slot, idx = _find(table, words, arena, packed, tail, e, buf, w0, fold, mask)
                    if idx < 0:
                        if not _fits(table, words, arena, nd, au, e):
                            status = _GROW
                            wstart = w0  # resume here; the caller makes room for e bytes
                            k = e
                            break
                        _add(table, words, arena, nd, au, slot, packed, e, buf, w0, fold)
                        idx = nd
                        nd += 1
                        au += e + 1
                    out[written] = idx
                    written += 1
                    m &= ~((one << np.uint64(s + e)) - one)
                if status != OK:
                    break
                packed = np.int64(0)
                tail = np.int64(0)
                continue
        while i < n:  # a run of ASCII word characters
            b = buf[i]
            if b >= 128 or word[b] == 0:
                break
            if k == 0:
                wstart = i
            if k >= cap:
                status = _GROW
                break
            packed, tail = _push(cur, k, b | fold, packed, tail)
            k += 1
            i += 1
        if status != OK:
            break
        sep = True
        length = 1
        at_end = i >= n
        if at_end:
            if not (final and k > 0):
                break
        else:
            b = buf[i]
            if b >= 0x80:
                cp, length, st = _decode(buf, i, n, final)
                if st == 2:  # an incomplete sequence: next chunk
                    break
                if st == 1 and not replace:
                    status = BAD_UTF8
                    where = i
                    break
                if not d2l and (st == 1 or not _unicode_space(cp)):
                    sep = False
                    if k == 0:
                        wstart = i
                    if k >= cap:
                        status = _GROW
                        break
                    if st == 1:  # U+FFFD
                        packed, tail = _push(cur, k, np.uint8(0xEF), packed, tail)
                        packed, tail = _push(cur, k + 1, np.uint8(0xBF), packed, tail)
                        packed, tail = _push(cur, k + 2, np.uint8(0xBD), packed, tail)
                        k += 3
                    else:
                        for j in range(length):
                            packed, tail = _push(cur, k, buf[i + j], packed, tail)
                            k += 1
            elif b == 0:
                status = NUL
                where = i
                break
        # the word ends: look it up, add it if new; a document separator then is a word itself
        flushes = 2 if not at_end and buf[i] == RECORD else 1
        while flushes > 0:
            if sep and k > 0:
                slot, idx = _find(table, words, arena, packed, tail, k, cur, 0, np.uint8(0), mask)
                if idx < 0:
                    if not _fits(table, words, arena, nd, au, k):
                        status = _GROW
                        break
                    _add(table, words, arena, nd, au, slot, packed, k, cur, 0, np.uint8(0))
                    idx = nd
                    nd += 1
                    au += k + 1
                out[written] = idx
                written += 1
                k = 0
                packed = np.int64(0)
                tail = np.int64(0)
            flushes -= 1
            if flushes:  # the separator, as a one-byte word (resumed from here if it must grow)
                wstart = i
                packed, tail = _push(cur, 0, np.uint8(RECORD), packed, tail)
                k = 1
        if status != OK:
            break
        if at_end:
            break
        i += length
    if k > 0 and (status == OK or status == _GROW):  # resume at the word's start
        i = wstart
    state[0] = nd
    state[1] = au
    return i, written, status, where, k


@njit(**NJIT)
def scan_words(buf, final, d2l, replace, table, words, arena, state, out):
    """One chunk of word tokenization: ``out[k]`` = index (first-appearance order) of the k-th
    word of ``buf``; the tables of :func:`new_word_table` grow as needed and are returned.

    ``state`` = [distinct words, arena bytes used], carried across chunks with the arrays. A word
    is a maximal run of non-``str.isspace()`` code points (raw), or of ASCII letters lowercased
    (``d2l``: everything else separates); U+001E (``RECORD``, which ends each document of a folder
    corpus) is a word of its own in both. Invalid UTF-8 is reported (strict) or becomes U+FFFD
    (``replace``; a word character under raw, a separator under d2l); NUL is reported. Unless
    ``final``, a word touching the end of the chunk is left for the next call (bytes consumed
    stops before it; 0 means one word fills the chunk: pass a bigger one).

    Returns (bytes consumed, words written, status, offset of the problem or -1, table, words,
    arena). ``out`` (int32) needs room for N // 2 + 1 words.
    """
    word = np.zeros(128, dtype=np.uint8)  # ASCII byte -> 1 word character, 0 separator
    for b in range(128):
        if d2l:
            word[b] = 1 if (65 <= b <= 90 or 97 <= b <= 122) else 0
        else:
            word[b] = 0 if (b == 0 or 9 <= b <= 13 or 28 <= b <= 32) else 1
    cur = np.empty(256, dtype=np.uint8)
    i = 0
    written = 0
    while True:
        i, written, status, where, k = _scan_words(buf, i, final, d2l, replace, word, cur, table, words,
                                                   arena, state, out, written)
        if status != _GROW:
            break
        nd = state[0]
        if k >= cur.shape[0] - 4:
            cur = _grown(cur, 2 * (k + 4))
        if state[1] + k + 1 > arena.shape[0]:
            arena = _grown(arena, state[1] + k + 1)
        if 2 * nd + 2 > words.shape[0]:
            words = _grown(words, 2 * nd + 2)
        if 16 * (nd + 1) > 5 * table.shape[0]:
            table = _rehash(table, words, arena, nd, table.shape[0])  # twice the slots
    return i, written, status, where, table, words, arena
