"""Batched (non-recurrent) layers: the one-hot input's gradient and the big products of a step.

The product x_t W_ihᵀ for one-hot x_t is a row of W_ihᵀ: the recurrence kernels gather it by
token id from W_ihᵀ + biases (``transpose`` makes that copy), and ``onehot_backward`` scatters
the gradient back. Products over all T·B rows (input projections, output layer, weight
gradients) run on the register-tiled ``_math._tile`` over packed panels, split over the cores by
blocks of rows, so one thread pool (OpenMP) does all the parallel work and no result depends on
how the work is split.

Sizes: T steps, B batch, V vocabulary, G gates·H, K/M/N matrix sizes.
  ids  (T, B) int32 token ids (time-major)
  w_t  (V, G)  W_ihᵀ (a C-contiguous transposed copy, so each gather reads one row)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from seqtui.kernels._math import MR, NR, _strip_rows, _tile
from seqtui.kernels.config import NJIT_PARALLEL

KC = 192  # k block of the weight-gradient product
CHUNK = 4  # MR-row blocks per chunk of matmul_panel (each strip block is reused by all of them)


@njit(**NJIT_PARALLEL)
def onehot_backward(dw_t, dbias, dxg, ids, nparts):
    """dw_t (V, G) = Σ over (t, b) with ids[t, b] = v of dxg[t, b] (overwritten), and
    dbias (G,) = Σ_v dw_t[v] (every row of dxg lands in exactly one v); parts own gate columns."""
    T, B, G = dxg.shape
    V = dw_t.shape[0]
    for p in prange(nparts):
        g0 = p * G // nparts
        g1 = (p + 1) * G // nparts
        for v in range(V):
            dw_t[v, g0:g1] = 0
        for t in range(T):
            for b in range(B):
                dst = dw_t[ids[t, b], g0:g1]
                src = dxg[t, b, g0:g1]
                for g in range(g1 - g0):
                    dst[g] += src[g]
        acc = dbias[g0:g1]
        acc[:] = 0
        for v in range(V):
            src = dw_t[v, g0:g1]
            for g in range(g1 - g0):
                acc[g] += src[g]


@njit(**NJIT_PARALLEL)
def matmul_panel(out, a, wp, bias, nparts):
    """out (M, N) = a (M, K) @ W + bias, W given as NR-column panel strips wp (S·K·NR,) from
    ``pack_panel`` (S·NR ≥ N; e.g. Wᵀ of a weight W (N, K) packed by rows). ``bias`` (N,) or
    empty. Parts own blocks of MR rows, taken CHUNK blocks at a time: each k block of a strip is
    reused from L1 by all of them (``_strip_rows``); the tiles land in the part's scratch and
    their N valid columns are copied out with the bias added. Each element is one fused multiply-add chain
    over k = 0..K-1, so neither parts nor threads change a bit.
    """
    M, K = a.shape
    N = out.shape[1]
    S = wp.shape[0] // (K * NR) if K > 0 else 0
    ldc = S * NR
    nrb = -(-M // MR)
    scratch = np.empty((nparts, CHUNK * MR * ldc), dtype=out.dtype)
    with_bias = bias.shape[0] > 0
    for p in prange(nparts):
        buf = scratch[p]
        rb1 = (p + 1) * nrb // nparts
        for rb in range(p * nrb // nparts, rb1, CHUNK):
            i0 = rb * MR
            mr = min(min(rb + CHUNK, rb1) * MR, M) - i0
            for s in range(S):
                _strip_rows(buf, s * NR, ldc, a, i0 * K, K, mr, wp, s * K * NR, K)
            if K == 0:
                buf[:] = 0
            for i in range(mr):
                row = out[i0 + i]
                src = buf[i * ldc : i * ldc + N]
                if with_bias:
                    for j in range(N):
                        row[j] = src[j] + bias[j]
                else:
                    for j in range(N):
                        row[j] = src[j]


@njit(**NJIT_PARALLEL)
def matmul_tn(out, sums, a, b, nparts):
    """out (M, N) = aᵀ @ b for a (K, M), b (K, N) C-contiguous — a weight gradient summed over
    K = T·B rows, with the register-tiled ``_tile`` — and, unless ``sums`` is empty,
    sums (M,) = Σ_k a[k] (the matching bias gradient) in the same pass over a.

    k runs in blocks of KC. For each block, b's rows are packed into NR-column strips (kc, NR)
    (unless out has few rows: then the tile reads b in place) and each part packs its own MR-row
    blocks of aᵀ into (kc, MR) blocks (contiguous: the tile then streams through L1 and the
    prefetchers keep up); parts own blocks of MR rows of out. Each element is one chain of fused multiply-adds over k = 0..K-1, so neither the parts
    nor the threads change a bit. Shapes that are not whole tiles go through a padded out.
    """
    K, M = a.shape
    N = out.shape[1]
    Mp = -(-M // MR) * MR
    Np = -(-N // NR) * NR
    ns = Np // NR
    nrb = Mp // MR
    direct = Mp == M and Np == N
    cp = out if direct else np.empty((Mp, Np), dtype=out.dtype)
    # few rows of out reuse a packed strip of b too little to pay for packing it: the tile then
    # reads b's rows in place (whole strips only; measured in bench/results, same bits either way)
    in_place = Np == N and (M <= 64 or (N <= 256 and M <= 768))
    bpk = np.zeros(0 if in_place else ns * KC * NR, dtype=out.dtype)
    most = 0
    for p in range(nparts):
        most = max(most, (p + 1) * nrb // nparts - p * nrb // nparts)
    apk = np.zeros((nparts, most * KC * MR), dtype=out.dtype)
    af = a.reshape(-1)  # flat views: plain index arithmetic in the packing loops
    bf = b.reshape(-1)
    want = sums.shape[0] > 0
    if want:
        sums[:] = 0
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        for p in prange(0 if in_place else nparts):
            for s in range(p * ns // nparts, (p + 1) * ns // nparts):
                n0 = s * NR
                w = min(N, n0 + NR) - n0
                for k in range(kc):
                    src = (k0 + k) * N + n0
                    dst = (s * KC + k) * NR
                    if w == NR:  # fixed length: unrolled vector copies
                        for n in range(NR):
                            bpk[dst + n] = bf[src + n]
                    else:
                        for n in range(w):
                            bpk[dst + n] = bf[src + n]
        for p in prange(nparts):
            rb0 = p * nrb // nparts
            rb1 = (p + 1) * nrb // nparts
            mine = apk[p]
            for rb in range(rb0, rb1):
                i0 = rb * MR
                h = min(MR, M - i0)
                d0 = (rb - rb0) * KC * MR
                if h == MR:  # fixed length: unrolled vector copies
                    for k in range(kc):
                        src = (k0 + k) * M + i0
                        dst = d0 + k * MR
                        for i in range(MR):
                            mine[dst + i] = af[src + i]
                else:
                    for k in range(kc):
                        src = (k0 + k) * M + i0
                        dst = d0 + k * MR
                        for i in range(h):
                            mine[dst + i] = af[src + i]
                if want:  # Σ_k in k order for each of the part's rows (MR running sums)
                    acc = np.zeros(MR, dtype=out.dtype)
                    for i in range(h):
                        acc[i] = sums[i0 + i]
                    for k in range(kc):
                        src = d0 + k * MR
                        for i in range(MR):
                            acc[i] += mine[src + i]
                    for i in range(h):
                        sums[i0 + i] = acc[i]
            for s in range(ns):
                # strip s of b for this k block: b's rows in place, or the packed strip
                w, w_off, ldw = (bf, k0 * N + s * NR, N) if in_place else (bpk, s * KC * NR, NR)
                for rb in range(rb0, rb1):
                    i0 = rb * MR
                    _tile(cp, i0 * Np + s * NR, Np, mine, (rb - rb0) * KC * MR, 1, MR, min(MR, M - i0),
                          w, w_off, ldw, kc, k0 > 0)
    if not direct:
        out[:, :] = cp[:M, :N]


@njit(**NJIT_PARALLEL)
def pack_panel(wp, w, cols, by_rows, nparts):
    """Pack the weight matrix w into NR-column panel strips for ``_math._tile``.

    wp (S·K·NR,): strip s is a C-contiguous (K, NR) block whose column n is w's row
    cols[s·NR + n] (by_rows, K = w.shape[1]) or w's column cols[s·NR + n] (K = w.shape[0]);
    cols = -1 gives a zero column (padding). Parts own blocks of strips.
    """
    S = cols.shape[0] // NR
    K = w.shape[1] if by_rows else w.shape[0]
    zero = wp.dtype.type(0.0)
    for p in prange(nparts):
        for s in range(p * S // nparts, (p + 1) * S // nparts):
            strip = wp[s * K * NR : (s + 1) * K * NR].reshape((K, NR))
            src = cols[s * NR : (s + 1) * NR]
            for k in range(K):
                dst = strip[k]
                for n in range(NR):
                    r = src[n]
                    if r < 0:
                        dst[n] = zero
                    elif by_rows:
                        dst[n] = w[r, k]
                    else:
                        dst[n] = w[k, r]


@njit(**NJIT_PARALLEL)
def transpose(out, a, nparts):
    """out (N, M) = aᵀ for a (M, N), in 32×32 tiles; parts own row blocks of out."""
    M, N = a.shape
    for p in prange(nparts):
        r0 = p * N // nparts
        r1 = (p + 1) * N // nparts
        for i0 in range(r0, r1, 32):
            i1 = min(i0 + 32, r1)
            for j0 in range(0, M, 32):
                j1 = min(j0 + 32, M)
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        out[i, j] = a[j, i]
