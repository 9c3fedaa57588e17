"""Byte-pair encoding kernels: pre-tokenization, chunk counting, merge learning, encoding.

Sizes: N bytes of text, W distinct chunks ("words"), S symbols over the distinct chunks, P pairs,
M merges, V vocabulary (ids: 0 ``<unk>``, 1..256 the bytes 0..255, then merged tokens).

Pre-tokenization is GPT-2's regex, as Hugging Face ``tokenizers``' ``ByteLevel`` pre-tokenizer runs it:
``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``, written out
as a scanner over UTF-8 bytes with a code point -> class table (0 other, 1 letter, 2 number,
3 white space; built in Python from ``unicodedata``). Bytes that are not valid UTF-8 are "other".

``learn_merges`` is the algorithm of ``tokenizers``' ``BpeTrainer``, step for step, so the two learn
the same merges: pair counts over the distinct chunks weighted by their frequency, a lazy max-heap
ordered by (count desc, pair asc in the trainer's id order), each heap entry carrying the chunks where
its pair was formed; merging a pair rewrites only those chunks and applies the count changes of
the neighbouring pairs (no recount). ``rank`` maps a seqtui id to the trainer's id (its tie order).

``encode_bytes`` splits into chunks and merges each chunk by rank (lowest rank first, leftmost
first; a rescan per merged pair for short chunks, a heap for long ones), remembering each
distinct chunk's ids in a hash table for the rest of the call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT

OTHER = 0
LETTER = 1
NUMBER = 2
SPACE = 3
EMPTY = -1
LONG_CHUNK = 48  # longer chunks are merged with a heap (O(L log L)) instead of rescans (O(L^2))
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


# -- pre-tokenization ------------------------------------------------------------------------------
@njit
def _char(buf, i, n):
    """(code point, length) at ``buf[i]``; an invalid or truncated sequence is one byte, cp -1."""
    b0 = np.int64(buf[i])
    if b0 < 0x80:
        return b0, 1
    if 0xC2 <= b0 <= 0xDF:
        need = 1
        cp = b0 & 0x1F
    elif 0xE0 <= b0 <= 0xEF:
        need = 2
        cp = b0 & 0x0F
    elif 0xF0 <= b0 <= 0xF4:
        need = 3
        cp = b0 & 0x07
    else:
        return -1, 1
    if i + need >= n:
        return -1, 1
    for k in range(1, need + 1):
        b = np.int64(buf[i + k])
        if (b & 0xC0) != 0x80:
            return -1, 1
        cp = (cp << 6) | (b & 0x3F)
    if cp >= 0x110000:
        return -1, 1
    return cp, need + 1


@njit(inline="always")
def _class(buf, i, n, cls):
    """(class, length) of the character at ``buf[i]`` (ASCII inline, the rest out of line)."""
    b = buf[i]
    if b < 0x80:
        return np.int64(cls[b]), 1
    return _class_multibyte(buf, i, n, cls)


@njit
def _class_multibyte(buf, i, n, cls):
    cp, ln = _char(buf, i, n)
    if cp < 0:
        return OTHER, ln
    return np.int64(cls[cp]), ln


@njit
def _chunk_end(buf, i, n, cls):
    """End of the pre-token that starts at ``buf[i]`` (GPT-2's regex, leftmost alternative first)."""
    b = buf[i]
    if b == 39 and i + 1 < n:  # 's 't 'm 'd 're 've 'll
        b1 = buf[i + 1]
        if b1 == 115 or b1 == 116 or b1 == 109 or b1 == 100:
            return i + 2
        if i + 2 < n:
            b2 = buf[i + 2]
            if (b1 == 114 and b2 == 101) or (b1 == 118 and b2 == 101) or (b1 == 108 and b2 == 108):
                return i + 3
    k, ln = _class(buf, i, n, cls)
    j = i
    if b == 32 and i + 1 < n:  # " ?" then a run of letters, numbers or others
        k1, _ = _class(buf, i + 1, n, cls)
        if k1 != SPACE:
            k = k1
            j = i + 1
    if k != SPACE:
        while j < n:
            kj, lj = _class(buf, j, n, cls)
            if kj != k:
                break
            j += lj
        return j
    # white space: \s+(?!\S) gives back its last character when non-space follows, else \s+
    j = i
    last = i
    count = 0
    while j < n:
        kj, lj = _class(buf, j, n, cls)
        if kj != SPACE:
            break
        last = j
        j += lj
        count += 1
    if j < n and count >= 2:
        return last
    return j


@njit(**NJIT)
def chunk_bounds(buf, cls):
    """End offset of every pre-token of ``buf`` (int64); the first starts at 0."""
    n = buf.shape[0]
    out = np.empty(n, dtype=np.int64)
    m = 0
    i = 0
    while i < n:
        i = _chunk_end(buf, i, n, cls)
        out[m] = i
        m += 1
    return out[:m].copy()


# -- byte-string hash table ---------------------------------------------------------------------
@njit(inline="always")
def _fnv(buf, s, e):
    h = _FNV_OFFSET
    for k in range(s, e):
        h = (h ^ np.uint64(buf[k])) * _FNV_PRIME
    return h


@njit
def _find_bytes(table, ent_hash, ent_start, ent_len, src, buf, s, e, h):
    """Slot of the entry equal to ``buf[s:e]`` (its bytes live in ``src``), or of the empty slot
    where it goes. ``table`` has a power-of-two size and holds entry indices (or EMPTY)."""
    mask = table.shape[0] - 1
    slot = np.int64(h & np.uint64(mask))
    ln = e - s
    while True:
        ent = table[slot]
        if ent == EMPTY:
            return slot
        if ent_hash[ent] == h and ent_len[ent] == ln:
            st = ent_start[ent]
            same = True
            for k in range(ln):
                if src[st + k] != buf[s + k]:
                    same = False
                    break
            if same:
                return slot
        slot = (slot + 1) & mask


@njit
def _rehash(table, ent_hash, n_ent):
    new = np.full(table.shape[0] * 2, EMPTY, dtype=np.int64)
    mask = new.shape[0] - 1
    for ent in range(n_ent):
        slot = np.int64(ent_hash[ent] & np.uint64(mask))
        while new[slot] != EMPTY:
            slot = (slot + 1) & mask
        new[slot] = ent
    return new


@njit
def _grow(a, n):
    if n < a.shape[0]:
        return a
    b = np.empty(max(2 * a.shape[0], 16), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(**NJIT)
def count_chunks(buf, cls):
    """Distinct pre-tokens of ``buf`` in first-occurrence order: (start, length, count) int64 arrays,
    and the number of chunks."""
    n = buf.shape[0]
    table = np.full(1024, EMPTY, dtype=np.int64)
    ent_hash = np.empty(512, dtype=np.uint64)
    ent_start = np.empty(512, dtype=np.int64)
    ent_len = np.empty(512, dtype=np.int64)
    ent_count = np.empty(512, dtype=np.int64)
    n_ent = 0
    chunks = 0
    i = 0
    while i < n:
        e = _chunk_end(buf, i, n, cls)
        h = _fnv(buf, i, e)
        slot = _find_bytes(table, ent_hash, ent_start, ent_len, buf, buf, i, e, h)
        if table[slot] == EMPTY:
            ent_hash = _grow(ent_hash, n_ent)
            ent_start = _grow(ent_start, n_ent)
            ent_len = _grow(ent_len, n_ent)
            ent_count = _grow(ent_count, n_ent)
            table[slot] = n_ent
            ent_hash[n_ent] = h
            ent_start[n_ent] = i
            ent_len[n_ent] = e - i
            ent_count[n_ent] = 1
            n_ent += 1
            if 2 * n_ent > table.shape[0]:
                table = _rehash(table, ent_hash, n_ent)
        else:
            ent_count[table[slot]] += 1
        chunks += 1
        i = e
    return ent_start[:n_ent].copy(), ent_len[:n_ent].copy(), ent_count[:n_ent].copy(), chunks


# -- learning -----------------------------------------------------------------------------------
@njit(inline="always")
def _mix(key):
    x = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return x ^ (x >> np.uint64(29))


@njit
def _pair_slot(ptable, pkeys, key):
    mask = ptable.shape[0] - 1
    slot = np.int64(_mix(key) & np.uint64(mask))
    while True:
        p = ptable[slot]
        if p == EMPTY or pkeys[p] == key:
            return slot
        slot = (slot + 1) & mask


@njit
def _pair_rehash(ptable, pkeys, n_pairs):
    new = np.full(ptable.shape[0] * 2, EMPTY, dtype=np.int64)
    mask = new.shape[0] - 1
    for p in range(n_pairs):
        slot = np.int64(_mix(pkeys[p]) & np.uint64(mask))
        while new[slot] != EMPTY:
            slot = (slot + 1) & mask
        new[slot] = p
    return new


@njit
def _before(c1, k1, c2, k2):
    """Heap order: a higher count first, then the smaller pair (in the trainer's id order)."""
    return c1 > c2 or (c1 == c2 and k1 < k2)


@njit
def _heap_push(hc, hk, hp, hl, size, c, k, p, lst):
    hc = _grow(hc, size)
    hk = _grow(hk, size)
    hp = _grow(hp, size)
    hl = _grow(hl, size)
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(c, k, hc[parent], hk[parent]):
            break
        hc[i] = hc[parent]
        hk[i] = hk[parent]
        hp[i] = hp[parent]
        hl[i] = hl[parent]
        i = parent
    hc[i] = c
    hk[i] = k
    hp[i] = p
    hl[i] = lst
    return hc, hk, hp, hl, size + 1


@njit
def _heap_pop(hc, hk, hp, hl, size):
    """Remove the top (the caller has read it); returns the new size."""
    size -= 1
    c = hc[size]
    k = hk[size]
    p = hp[size]
    lst = hl[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _before(hc[child + 1], hk[child + 1], hc[child], hk[child]):
            child += 1
        if not _before(hc[child], hk[child], c, k):
            break
        hc[i] = hc[child]
        hk[i] = hk[child]
        hp[i] = hp[child]
        hl[i] = hl[child]
        i = child
    if size > 0:
        hc[i] = c
        hk[i] = k
        hp[i] = p
        hl[i] = lst
    return size


@njit(**NJIT)
def learn_merges(sym, wstart, wlen, wfreq, tok_bytes, tok_start, tok_len, rank, target, min_count):
    """Learn merges until the vocabulary has ``target`` tokens (ids, ``<unk>`` included).

    sym: int32 (S,) the byte ids of every distinct chunk, chunk w at ``sym[wstart[w]:][:wlen[w]]``
    (rewritten in place); wfreq: int64 (W,) chunk counts. tok_bytes/tok_start/tok_len: the bytes of
    the ids so far (257 of them); rank: int64, the tie order of each id (the trainer's ids).
    Stops early when no pair occurs ``min_count`` times (or at all).
    Returns (merges int32 (M, 3) = left, right, result id; number of tokens; tok_bytes, tok_start,
    tok_len, rank grown to cover the new tokens).
    """
    V0 = tok_start.shape[0]
    base = np.int64(target + 8)  # pair key = left * base + right
    n_words = wstart.shape[0]
    # pairs: dense ids p with key, count; hashed by key
    cap = 1024
    while cap < 4 * sym.shape[0]:
        cap *= 2
    ptable = np.full(cap, EMPTY, dtype=np.int64)
    pkeys = np.empty(cap // 2, dtype=np.int64)
    pcount = np.zeros(cap // 2, dtype=np.int64)
    n_pairs = 0
    # position lists: linked nodes (word, next); a heap entry owns one list
    nword = np.empty(max(sym.shape[0], 16), dtype=np.int64)
    nnext = np.empty(max(sym.shape[0], 16), dtype=np.int64)
    n_nodes = 0
    # per pair, the list being gathered in this round (head, and the last word added to it)
    ghead = np.full(cap // 2, EMPTY, dtype=np.int64)
    glast = np.full(cap // 2, EMPTY, dtype=np.int64)
    touched = np.empty(64, dtype=np.int64)
    n_touched = 0
    # the initial count, with every (pair, chunk) position
    for w in range(n_words):
        s = wstart[w]
        for t in range(s, s + wlen[w] - 1):
            key = np.int64(sym[t]) * base + sym[t + 1]
            slot = _pair_slot(ptable, pkeys, key)
            p = ptable[slot]
            if p == EMPTY:
                pkeys = _grow(pkeys, n_pairs)
                pcount = _grow(pcount, n_pairs)
                ghead = _grow(ghead, n_pairs)
                glast = _grow(glast, n_pairs)
                p = n_pairs
                ptable[slot] = p
                pkeys[p] = key
                pcount[p] = 0
                ghead[p] = EMPTY
                glast[p] = EMPTY
                n_pairs += 1
                if 2 * n_pairs > ptable.shape[0]:
                    ptable = _pair_rehash(ptable, pkeys, n_pairs)
            pcount[p] += wfreq[w]
            if glast[p] != w:
                nword = _grow(nword, n_nodes)
                nnext = _grow(nnext, n_nodes)
                nword[n_nodes] = w
                nnext[n_nodes] = ghead[p]
                ghead[p] = n_nodes
                glast[p] = w
                n_nodes += 1
    hc = np.empty(max(n_pairs, 16), dtype=np.int64)
    hk = np.empty(max(n_pairs, 16), dtype=np.int64)
    hp = np.empty(max(n_pairs, 16), dtype=np.int64)
    hl = np.empty(max(n_pairs, 16), dtype=np.int64)
    hsize = 0
    for p in range(n_pairs):
        a = pkeys[p] // base
        b = pkeys[p] % base
        hc, hk, hp, hl, hsize = _heap_push(hc, hk, hp, hl, hsize, pcount[p], rank[a] * base + rank[b], p, ghead[p])
        ghead[p] = EMPTY
        glast[p] = EMPTY
    # token bytes, and a table of them to find a merge whose result already exists
    n_tok = V0
    most = min(target, V0 + sym.shape[0])  # each new token removes at least one symbol
    ttable = np.full(1024, EMPTY, dtype=np.int64)
    while ttable.shape[0] < 4 * most:
        ttable = np.full(ttable.shape[0] * 2, EMPTY, dtype=np.int64)
    thash = np.empty(tok_start.shape[0], dtype=np.uint64)
    for t in range(n_tok):
        thash[t] = _fnv(tok_bytes, tok_start[t], tok_start[t] + tok_len[t])
        if tok_len[t] > 0:
            slot = _find_bytes(ttable, thash, tok_start, tok_len, tok_bytes, tok_bytes,
                               tok_start[t], tok_start[t] + tok_len[t], thash[t])
            ttable[slot] = t
    pool_used = tok_start[n_tok - 1] + tok_len[n_tok - 1]
    merges = np.empty((max(2 * (most - V0), 16), 3), dtype=np.int32)
    n_merges = 0
    while n_tok < target and hsize > 0 and n_merges < merges.shape[0]:
        c = hc[0]
        p = hp[0]
        lst = hl[0]
        key_rank = hk[0]
        hsize = _heap_pop(hc, hk, hp, hl, hsize)
        if c != pcount[p]:  # stale: back in with the current count
            hc, hk, hp, hl, hsize = _heap_push(hc, hk, hp, hl, hsize, pcount[p], key_rank, p, lst)
            continue
        if c < 1 or c < min_count:
            break
        a = np.int32(pkeys[p] // base)
        b = np.int32(pkeys[p] % base)
        # the new token's bytes: reuse the id of an equal token if there is one
        la = tok_len[a]
        lb = tok_len[b]
        need = pool_used + la + lb
        if need > tok_bytes.shape[0]:
            grown = np.empty(2 * need, dtype=np.uint8)
            grown[:pool_used] = tok_bytes[:pool_used]
            tok_bytes = grown
        for k in range(la):
            tok_bytes[pool_used + k] = tok_bytes[tok_start[a] + k]
        for k in range(lb):
            tok_bytes[pool_used + la + k] = tok_bytes[tok_start[b] + k]
        h = _fnv(tok_bytes, pool_used, need)
        slot = _find_bytes(ttable, thash, tok_start, tok_len, tok_bytes, tok_bytes, pool_used, need, h)
        if ttable[slot] != EMPTY:
            new = np.int32(ttable[slot])
        else:
            new = np.int32(n_tok)
            tok_start = _grow(tok_start, n_tok)
            tok_len = _grow(tok_len, n_tok)
            thash = _grow(thash, n_tok)
            rank = _grow(rank, n_tok)
            tok_start[n_tok] = pool_used
            tok_len[n_tok] = la + lb
            thash[n_tok] = h
            rank[n_tok] = n_tok - 1  # the trainer's next id (it has no <unk>)
            ttable[slot] = n_tok
            pool_used = need
            n_tok += 1
        merges[n_merges, 0] = a
        merges[n_merges, 1] = b
        merges[n_merges, 2] = new
        n_merges += 1
        # rewrite the chunks of this entry's list, gathering the count changes
        node = lst
        while node != EMPTY:
            w = nword[node]
            node = nnext[node]
            s = wstart[w]
            L = wlen[w]
            f = wfreq[w]
            r = s
            out = s
            end = s + L
            while r < end:
                if r + 1 < end and sym[r] == a and sym[r + 1] == b:
                    for side in range(2):
                        if side == 0:
                            if out == s:
                                continue
                            x = np.int64(sym[out - 1])
                            k_old = x * base + a
                            k_new = x * base + new
                        else:
                            if r + 2 >= end:
                                continue
                            y = np.int64(sym[r + 2])
                            k_old = np.int64(b) * base + y
                            k_new = np.int64(new) * base + y
                        # the old neighbour pair loses f
                        slot = _pair_slot(ptable, pkeys, k_old)
                        pcount[ptable[slot]] -= f
                        # the new neighbour pair gains f and remembers the chunk
                        slot = _pair_slot(ptable, pkeys, k_new)
                        q = ptable[slot]
                        if q == EMPTY:
                            pkeys = _grow(pkeys, n_pairs)
                            pcount = _grow(pcount, n_pairs)
                            ghead = _grow(ghead, n_pairs)
                            glast = _grow(glast, n_pairs)
                            q = n_pairs
                            ptable[slot] = q
                            pkeys[q] = k_new
                            pcount[q] = 0
                            ghead[q] = EMPTY
                            glast[q] = EMPTY
                            n_pairs += 1
                            if 2 * n_pairs > ptable.shape[0]:
                                ptable = _pair_rehash(ptable, pkeys, n_pairs)
                        pcount[q] += f
                        if ghead[q] == EMPTY:
                            touched = _grow(touched, n_touched)
                            touched[n_touched] = q
                            n_touched += 1
                        if glast[q] != w:
                            nword = _grow(nword, n_nodes)
                            nnext = _grow(nnext, n_nodes)
                            nword[n_nodes] = w
                            nnext[n_nodes] = ghead[q]
                            ghead[q] = n_nodes
                            glast[q] = w
                            n_nodes += 1
                    sym[out] = new
                    out += 1
                    r += 2
                else:
                    sym[out] = sym[r]
                    out += 1
                    r += 1
            wlen[w] = out - s
        # the pairs formed this round enter the heap with the chunks where they were formed
        for t in range(n_touched):
            q = touched[t]
            if pcount[q] > 0:
                x = pkeys[q] // base
                y = pkeys[q] % base
                hc, hk, hp, hl, hsize = _heap_push(hc, hk, hp, hl, hsize, pcount[q], rank[x] * base + rank[y],
                                                   q, ghead[q])
            ghead[q] = EMPTY
            glast[q] = EMPTY
        n_touched = 0
    return (merges[:n_merges].copy(), n_tok, tok_bytes[:pool_used].copy(), tok_start[:n_tok].copy(),
            tok_len[:n_tok].copy(), rank[:n_tok].copy())


# -- encoding -----------------------------------------------------------------------------------
@njit
def _merge_table(merges, base):
    """Open-addressing table: pair key -> index of its merge (the last one, as the trainer's map keeps)."""
    m = merges.shape[0]
    cap = 64
    while cap < 4 * m:
        cap *= 2
    table = np.full(cap, EMPTY, dtype=np.int64)
    keys = np.empty(max(m, 1), dtype=np.int64)
    mask = cap - 1
    for i in range(m):
        key = np.int64(merges[i, 0]) * base + merges[i, 1]
        keys[i] = key
        slot = np.int64(_mix(key) & np.uint64(mask))
        while table[slot] != EMPTY and keys[table[slot]] != key:
            slot = (slot + 1) & mask
        table[slot] = i
    return table, keys


@njit(inline="always")
def _merge_rank(table, keys, key):
    mask = table.shape[0] - 1
    slot = np.int64(_mix(key) & np.uint64(mask))
    while True:
        i = table[slot]
        if i == EMPTY:
            return -1
        if keys[i] == key:
            return i
        slot = (slot + 1) & mask


@njit
def _bpe_chunk(buf, s, e, table, keys, merges, base, work):
    """Merge the byte ids of ``buf[s:e]`` by rank into ``work``; returns the token count."""
    L = e - s
    for k in range(L):
        work[k] = np.int32(buf[s + k]) + 1
    while L > 1:
        best = -1
        for k in range(L - 1):
            r = _merge_rank(table, keys, np.int64(work[k]) * base + work[k + 1])
            if r >= 0 and (best < 0 or r < best):
                best = r
        if best < 0:
            break
        a = merges[best, 0]
        b = merges[best, 1]
        new = merges[best, 2]
        out = 0
        r = 0
        while r < L:
            if r + 1 < L and work[r] == a and work[r + 1] == b:
                work[out] = new
                r += 2
            else:
                work[out] = work[r]
                r += 1
            out += 1
        L = out
    return L


@njit
def _bpe_chunk_long(buf, s, e, table, keys, merges, base, work):
    """``_bpe_chunk`` for long chunks in O(L log L): symbols in a linked list, candidate merges in
    a min-heap by (rank, position), stale entries skipped when popped (the tokenizers way)."""
    L = e - s
    sym = np.empty(L, dtype=np.int32)
    nxt = np.empty(L, dtype=np.int64)
    prv = np.empty(L, dtype=np.int64)
    alive = np.ones(L, dtype=np.bool_)
    for k in range(L):
        sym[k] = np.int32(buf[s + k]) + 1
        nxt[k] = k + 1 if k + 1 < L else -1
        prv[k] = k - 1
    hr = np.empty(max(2 * L, 16), dtype=np.int64)  # rank
    hq = np.empty(max(2 * L, 16), dtype=np.int64)  # position
    size = 0
    for k in range(L - 1):
        r = _merge_rank(table, keys, np.int64(sym[k]) * base + sym[k + 1])
        if r >= 0:
            hr, hq, size = _minheap_push(hr, hq, size, r, k)
    while size > 0:
        r = hr[0]
        pos = hq[0]
        size = _minheap_pop(hr, hq, size)
        if not alive[pos] or nxt[pos] < 0:
            continue
        right = nxt[pos]
        if _merge_rank(table, keys, np.int64(sym[pos]) * base + sym[right]) != r:
            continue
        sym[pos] = merges[r, 2]
        alive[right] = False
        nxt[pos] = nxt[right]
        if nxt[right] >= 0:
            prv[nxt[right]] = pos
        if prv[pos] >= 0:
            q = _merge_rank(table, keys, np.int64(sym[prv[pos]]) * base + sym[pos])
            if q >= 0:
                hr, hq, size = _minheap_push(hr, hq, size, q, prv[pos])
        if nxt[pos] >= 0:
            q = _merge_rank(table, keys, np.int64(sym[pos]) * base + sym[nxt[pos]])
            if q >= 0:
                hr, hq, size = _minheap_push(hr, hq, size, q, pos)
    m = 0
    k = 0
    while k >= 0:
        work[m] = sym[k]
        m += 1
        k = nxt[k]
    return m


@njit
def _minheap_push(hr, hq, size, r, q):
    hr = _grow(hr, size)
    hq = _grow(hq, size)
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if hr[parent] < r or (hr[parent] == r and hq[parent] < q):
            break
        hr[i] = hr[parent]
        hq[i] = hq[parent]
        i = parent
    hr[i] = r
    hq[i] = q
    return hr, hq, size + 1


@njit
def _minheap_pop(hr, hq, size):
    size -= 1
    r = hr[size]
    q = hq[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and (hr[child + 1] < hr[child] or (hr[child + 1] == hr[child] and hq[child + 1] < hq[child])):
            child += 1
        if r < hr[child] or (r == hr[child] and q < hq[child]):
            break
        hr[i] = hr[child]
        hq[i] = hq[child]
        i = child
    if size > 0:
        hr[i] = r
        hq[i] = q
    return size


@njit(**NJIT)
def encode_bytes(buf, cls, merges, vocab_size):
    """Token ids (int32) of ``buf``: pre-tokens merged by rank, each distinct chunk merged once."""
    n = buf.shape[0]
    base = np.int64(vocab_size + 8)
    table, keys = _merge_table(merges, base)
    out = np.empty(n, dtype=np.int32)
    n_out = 0
    work = np.empty(256, dtype=np.int32)
    ctable = np.full(1024, EMPTY, dtype=np.int64)
    c_hash = np.empty(512, dtype=np.uint64)
    c_start = np.empty(512, dtype=np.int64)
    c_len = np.empty(512, dtype=np.int64)
    c_ids = np.empty(512, dtype=np.int64)  # offset of the chunk's ids in ``out``
    c_n = np.empty(512, dtype=np.int64)
    n_ent = 0
    i = 0
    while i < n:
        e = _chunk_end(buf, i, n, cls)
        if e - i == 1:  # one byte: no merge can apply
            out[n_out] = np.int32(buf[i]) + 1
            n_out += 1
            i = e
            continue
        h = _fnv(buf, i, e)
        slot = _find_bytes(ctable, c_hash, c_start, c_len, buf, buf, i, e, h)
        ent = ctable[slot]
        if ent != EMPTY:
            src = c_ids[ent]
            for k in range(c_n[ent]):
                out[n_out + k] = out[src + k]
            n_out += c_n[ent]
        else:
            if e - i > work.shape[0]:
                work = np.empty(2 * (e - i), dtype=np.int32)
            if e - i <= LONG_CHUNK:
                m = _bpe_chunk(buf, i, e, table, keys, merges, base, work)
            else:
                m = _bpe_chunk_long(buf, i, e, table, keys, merges, base, work)
            for k in range(m):
                out[n_out + k] = work[k]
            c_hash = _grow(c_hash, n_ent)
            c_start = _grow(c_start, n_ent)
            c_len = _grow(c_len, n_ent)
            c_ids = _grow(c_ids, n_ent)
            c_n = _grow(c_n, n_ent)
            ctable[slot] = n_ent
            c_hash[n_ent] = h
            c_start[n_ent] = i
            c_len[n_ent] = e - i
            c_ids[n_ent] = n_out
            c_n[n_ent] = m
            n_ent += 1
            if 2 * n_ent > ctable.shape[0]:
                ctable = _rehash(ctable, c_hash, n_ent)
            n_out += m
        i = e
    return out[:n_out].copy()
