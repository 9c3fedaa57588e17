"""Suffix array + LCP over token ids, and matching statistics of a sample against it.

Sizes: n training tokens, m sample tokens.

- ``build_index(ids) -> (sa, lcp)``: prefix doubling — Manber–Myers rounds (a counting sort
  of the whole array) while most suffixes are still tied, then Larsson–Sadakane passes that
  re-sort only the tied groups; O(n log L) for L the longest repeat; ``lcp[j]`` = common prefix of suffixes ``sa[j-1]``
  and ``sa[j]`` (Kasai), ``lcp[0] = 0``. A shorter suffix sorts before a longer one it prefixes.
- ``match_sample(ids, sa, lcp, pat, cap)``: for each sample position i, the longest prefix of
  ``pat[i:]`` that occurs in ``ids`` (matching statistics), by one binary search over the suffix
  array per position (the best match is a neighbour of the pattern's insertion point); O(m log n)
  comparisons, each starting at min(lcp with the two bounds). A negative ``pat`` value matches
  nothing (the caller maps ``<unk>`` to -1).
- ``spot_check(ids, sa, lcp, probes)``: cheap consistency check of a cached index.

All arrays int32; entry kernels ``nogil`` and cached, their call graphs stay in this module.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqtui.kernels.config import NJIT


@njit(cache=True, nogil=True)
def _refine(sa, rank, n, k):
    """Larsson–Sadakane: finish a suffix array sorted by k-prefixes (``rank`` dense group
    numbers) by re-sorting only the groups still unsorted, doubling k each pass. A group's rank
    becomes the SA index where it starts; ranks refined earlier in a pass are only more exact.
    Leaves ``rank`` = the inverse suffix array."""
    gs = np.empty(n, dtype=np.int32)  # unsorted groups: start in sa, length
    gl = np.empty(n, dtype=np.int32)
    ng = 0
    j = 0
    while j < n:
        q = rank[sa[j]]
        e = j + 1
        while e < n and rank[sa[e]] == q:
            e += 1
        for t in range(j, e):
            rank[sa[t]] = j
        if e - j > 1:
            gs[ng] = j
            gl[ng] = e - j
            ng += 1
        j = e
    keys = np.empty(n, dtype=np.int64)
    mem = np.empty(n, dtype=np.int32)
    ngs = np.empty(n, dtype=np.int32)
    ngl = np.empty(n, dtype=np.int32)
    while ng > 0:
        nn = 0
        for g in range(ng):
            s = gs[g]
            L = gl[g]
            for t in range(L):
                x = sa[s + t]
                mem[t] = x
                keys[t] = rank[x + k] if x + k < n else -1
            if L <= 32:  # insertion sort by key
                for t in range(1, L):
                    kk = keys[t]
                    mm = mem[t]
                    u = t
                    while u > 0 and keys[u - 1] > kk:
                        keys[u] = keys[u - 1]
                        mem[u] = mem[u - 1]
                        u -= 1
                    keys[u] = kk
                    mem[u] = mm
            else:
                order = np.argsort(keys[:L])
                sk = keys[:L][order]
                sm = mem[:L][order]
                keys[:L] = sk
                mem[:L] = sm
            t0 = 0
            for t in range(1, L + 1):
                if t == L or keys[t] != keys[t0]:
                    for u in range(t0, t):
                        sa[s + u] = mem[u]
                        rank[mem[u]] = s + t0
                    if t - t0 > 1:
                        ngs[nn] = s + t0
                        ngl[nn] = t - t0
                        nn += 1
                    t0 = t
        gs, ngs = ngs, gs
        gl, ngl = ngl, gl
        ng = nn
        k *= 2
    return k


@njit(**NJIT)
def build_index(ids):
    """Suffix array and LCP array (both int32, length n) of ``ids`` (int32 >= 0)."""
    n = ids.shape[0]
    sa = np.empty(n, dtype=np.int32)
    lcp = np.zeros(n, dtype=np.int32)
    if n == 0:
        return sa, lcp
    # round 0: counting sort by the first token, ranks = distinct first tokens
    vmax = 0
    for i in range(n):
        if ids[i] > vmax:
            vmax = ids[i]
    cnt = np.zeros(max(vmax + 2, n + 1), dtype=np.int64)
    for i in range(n):
        cnt[ids[i] + 1] += 1
    for v in range(1, vmax + 2):
        cnt[v] += cnt[v - 1]
    for i in range(n):
        v = ids[i]
        sa[cnt[v]] = i
        cnt[v] += 1
    rank = np.empty(n, dtype=np.int32)
    new = np.empty(n, dtype=np.int32)
    tmp = np.empty(n, dtype=np.int32)
    r = 0
    rank[sa[0]] = 0
    for j in range(1, n):
        if ids[sa[j]] != ids[sa[j - 1]]:
            r += 1
        rank[sa[j]] = r
    k = 1
    while r < n - 1 and 16 * (r + 1) < n:  # whole-array rounds while nearly all suffixes are tied
        # order by the second key (rank at i + k; past the end is smallest) ...
        p = 0
        for i in range(max(n - k, 0), n):
            tmp[p] = i
            p += 1
        for j in range(n):
            if sa[j] >= k:
                tmp[p] = sa[j] - k
                p += 1
        # ... then a stable counting sort by the first key
        for v in range(r + 2):
            cnt[v] = 0
        for i in range(n):
            cnt[rank[i] + 1] += 1
        for v in range(1, r + 2):
            cnt[v] += cnt[v - 1]
        for j in range(n):
            x = tmp[j]
            q = rank[x]
            sa[cnt[q]] = x
            cnt[q] += 1
        a = sa[0]
        new[a] = 0
        r = 0
        for j in range(1, n):
            b = sa[j]
            ra2 = rank[a + k] if a + k < n else -1
            rb2 = rank[b + k] if b + k < n else -1
            if rank[a] != rank[b] or ra2 != rb2:
                r += 1
            new[b] = r
            a = b
        rank, new = new, rank
        k *= 2
    if r < n - 1:
        k = _refine(sa, rank, n, k)
    # Kasai: rank is now the inverse suffix array
    h = 0
    for i in range(n):
        q = rank[i]
        if q > 0:
            j = sa[q - 1]
            while i + h < n and j + h < n and ids[i + h] == ids[j + h]:
                h += 1
            lcp[q] = h
            if h > 0:
                h -= 1
        else:
            h = 0
    return sa, lcp


@njit(**NJIT)
def match_sample(ids, sa, lcp, pat, cap):
    """Matching statistics of ``pat`` against ``ids``.

    Returns (lens, where, best, count): ``lens[i]`` tokens of ``pat[i:]`` occur at
    ``ids[where[i]:]`` (where = -1 if lens = 0); ``best`` is the first position with the largest
    length; ``count`` how many times that longest substring occurs in ``ids`` (at most ``cap``).
    """
    n = ids.shape[0]
    m = pat.shape[0]
    lens = np.zeros(m, dtype=np.int32)
    where = np.full(m, -1, dtype=np.int32)
    ranks = np.full(m, -1, dtype=np.int64)
    stop = m  # pattern i ends at the first negative value at or after i
    for i in range(m - 1, -1, -1):
        if pat[i] < 0:
            stop = i
        plen = stop - i
        if plen == 0 or n == 0:
            continue
        lo = -1
        hi = n
        llo = 0
        lhi = 0
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            d = min(llo, lhi)
            s = sa[mid]
            while d < plen and s + d < n and ids[s + d] == pat[i + d]:
                d += 1
            if d == plen:  # pat is a prefix of the suffix: suffix >= pat
                hi = mid
                lhi = d
            elif s + d == n or ids[s + d] < pat[i + d]:
                lo = mid
                llo = d
            else:
                hi = mid
                lhi = d
        if lhi >= llo and hi < n:
            lens[i] = lhi
            ranks[i] = hi
        elif lo >= 0:
            lens[i] = llo
            ranks[i] = lo
        if lens[i] > 0:
            where[i] = sa[ranks[i]]
    best = 0
    for i in range(1, m):
        if lens[i] > lens[best]:
            best = i
    count = 0
    if m > 0 and lens[best] > 0:
        # the ranks [lo, hi) around the match whose suffixes share its L tokens: every occurrence
        L = lens[best]
        q = ranks[best]
        lo = q
        hi = q + 1
        while lo > 0 and lcp[lo] >= L and hi - lo < cap:  # lcp[lo] joins ranks lo - 1 and lo
            lo -= 1
        while hi < n and lcp[hi] >= L and hi - lo < cap:
            hi += 1
        count = hi - lo
        first = sa[q]
        for j in range(lo, hi):  # report the earliest occurrence seen
            if sa[j] < first:
                first = sa[j]
        where[best] = first
    return lens, where, best, count


@njit(**NJIT)
def spot_check(ids, sa, lcp, probes):
    """True if ``sa`` holds valid positions and, at each probed rank j >= 1, suffix sa[j-1] <
    suffix sa[j] with exactly ``lcp[j]`` tokens in common (bounded work per probe)."""
    n = ids.shape[0]
    if sa.shape[0] != n or lcp.shape[0] != n:
        return False
    for j in range(n):
        if sa[j] < 0 or sa[j] >= n:
            return False
    if n > 0 and lcp[0] != 0:
        return False
    for t in range(probes.shape[0]):
        j = probes[t]
        if j < 1 or j >= n:
            continue
        a = sa[j - 1]
        b = sa[j]
        h = lcp[j]
        if h < 0 or a + h > n or b + h > n:
            return False
        lim = min(h, 4096)
        for d in range(lim):  # a longer common prefix is trusted after 4096 tokens
            if ids[a + d] != ids[b + d]:
                return False
        if h == lim:  # the next token decides the order (a's suffix may end first)
            if b + h == n:
                return False
            if a + h < n and ids[a + h] >= ids[b + h]:
                return False
    return True
