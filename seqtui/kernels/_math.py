"""Helpers shared by the kernels: activations, part bounds and the register-blocked tile product.

Kept once, here. Numba's cache does not notice edits to jitted callees in another module, so
``seqtui.kernels.config`` keys the cache directory on a hash of every source file in
``seqtui/kernels/``: an edit here recompiles every kernel that inlines these helpers.

Sizes: B batch, H hidden, G gates·H, K the reduced dimension, MR × NR the register tile.

The tile product ``_tile`` is the heart of the recurrence kernels. It computes one MR × NR block
C = A[rows, :K] · P for a *panel strip* P (K, NR) stored contiguously (a weight matrix repacked
once per training step, see ``panel_index`` and ``linear.pack_panel``): MR·NR/L vector
accumulators stay in registers for the whole K loop, each step loads NR/L vectors of P and
broadcasts MR scalars of A. Every output element is the same fused-multiply-add chain over
k = 0..K-1, whatever the tile, part or thread that computes it — so how the work is cut never
changes a bit of the result.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from seqtui.kernels.config import FASTMATH, VECTOR_BYTES

# Register tile: with 512-bit vectors (32 registers) 8 rows × 32 float32 = 16 accumulators;
# with 256-bit vectors (16 registers) 4 rows × 24 float32 = 12 accumulators. float64 uses the
# same NR in elements (twice the vectors: it only has to be exact, for gradient checks).
MR = 8 if VECTOR_BYTES >= 64 else 4
NR = 32 if VECTOR_BYTES >= 64 else 24

# --- activations --------------------------------------------------------------------------


def _tanh(x):  # pragma: no cover - replaced by the overload inside jitted code
    return math.tanh(x)


@overload(_tanh, inline="always", jit_options=dict(fastmath=FASTMATH, error_model="numpy"))
def _tanh_impl(x):
    """float32: clamped rational approximation (max error ≈ 3.5e-7, vectorizes); float64: libm
    (exact, so float64 gradient checks see the true derivative 1 - tanh²)."""
    if x == types.float32:

        def impl(x):
            x = min(max(x, np.float32(-7.90531110763549805)), np.float32(7.90531110763549805))
            x2 = x * x
            p = np.float32(-2.76076847742355e-16)
            p = p * x2 + np.float32(2.00018790482477e-13)
            p = p * x2 + np.float32(-8.60467152213735e-11)
            p = p * x2 + np.float32(5.12229709037114e-08)
            p = p * x2 + np.float32(1.48572235717979e-05)
            p = p * x2 + np.float32(6.37261928875436e-04)
            p = p * x2 + np.float32(4.89352455891786e-03)
            q = np.float32(1.19825839466702e-06)
            q = q * x2 + np.float32(1.18534705686654e-04)
            q = q * x2 + np.float32(2.26843463243900e-03)
            q = q * x2 + np.float32(4.89352518554385e-03)
            return x * p / q

        return impl
    return lambda x: math.tanh(x)


def _sigmoid(x):  # pragma: no cover - replaced by the overload inside jitted code
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@overload(_sigmoid, inline="always", jit_options=dict(fastmath=FASTMATH, error_model="numpy"))
def _sigmoid_impl(x):
    """σ(x) = ½ + ½·tanh(x/2): vectorizes in float32, exact in float64."""
    if x == types.float32:
        return lambda x: np.float32(0.5) + np.float32(0.5) * _tanh(np.float32(0.5) * x)
    return lambda x: 0.5 + 0.5 * _tanh(0.5 * x)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (2^n from its exponent field)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


def _exp(x):  # pragma: no cover - replaced by the overload inside jitted code
    return math.exp(x)


@overload(_exp, inline="always", jit_options=dict(fastmath=FASTMATH, error_model="numpy"))
def _exp_impl(x):
    if x == types.float32:

        def impl(x):
            x = min(max(x, np.float32(-87.0)), np.float32(88.0))
            n = math.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
            nf = np.float32(n)
            r = x - nf * np.float32(0.693359375) - nf * np.float32(-2.12194440e-4)
            p = np.float32(1.9875691500e-4)
            p = p * r + np.float32(1.3981999507e-3)
            p = p * r + np.float32(8.3334519073e-3)
            p = p * r + np.float32(4.1665795894e-2)
            p = p * r + np.float32(1.6666665459e-1)
            p = p * r + np.float32(5.0000001201e-1)
            e = p * r * r + r + np.float32(1.0)
            return e * _float32_from_bits(np.int32((n + 127) << 23))

        return impl
    return lambda x: math.exp(x)


# Elementwise loops over contiguous 1-D slices, each touching two or three arrays: LLVM then
# vectorizes them (one loop over many arrays gets no SIMD: too many aliasing checks).


@njit(inline="always")
def _sigmoid_sum(out, x, y):
    """out = σ(x + y)."""
    for j in range(out.shape[0]):
        out[j] = _sigmoid(x[j] + y[j])


@njit(inline="always")
def _tanh_sum(out, x, y):
    """out = tanh(x + y)."""
    for j in range(out.shape[0]):
        out[j] = _tanh(x[j] + y[j])


@njit(inline="always")
def _add(out, x, y):
    """out = x + y."""
    for j in range(out.shape[0]):
        out[j] = x[j] + y[j]


def _l2_bytes() -> int:
    """One core's L2 cache (sysfs), or 1 MiB where it cannot be read."""
    try:
        text = open("/sys/devices/system/cpu/cpu0/cache/index2/size").read().strip().upper()
        return int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20}[text[-1]]
    except (OSError, ValueError, KeyError, IndexError):
        return 1 << 20


L2_BYTES = _l2_bytes()


def row_split(threads: int, B: int, panel_bytes: int) -> tuple[int, int]:
    """How the recurrence kernels cut one step over ``threads``: (row groups, part chunks).

    Rows first — a row's recurrence needs only its own previous state, so row groups never read
    what another core just wrote — in whole MR-row blocks, while every core can keep the whole
    W_hh panel (``panel_bytes``) in half its L2; a larger panel is cut by columns (the parts), so
    each core streams only its share (measured: row groups 1.26× faster for RNN 256, 1.4× slower
    for GRU 512's 3 MB panel). The cut never changes a result."""
    if panel_bytes > L2_BYTES // 2:
        return 1, max(1, threads)
    groups = max(1, min(threads, -(-B // MR)))
    return groups, max(1, threads // groups)


@njit(inline="always")
def _task_span(task, ngroups, nchunks, nparts, B):
    """Batch rows [r0, r1) and parts [p0, p1) of one task of a recurrence step (``row_split``):
    row group task // nchunks (whole MR-row blocks, split evenly), chunk task % nchunks of parts."""
    nblk = -(-B // MR)
    g, pc = task // nchunks, task % nchunks
    r0 = (g * nblk // ngroups) * MR
    r1 = min(B, ((g + 1) * nblk // ngroups) * MR)
    return r0, r1, pc * nparts // nchunks, (pc + 1) * nparts // nchunks


@njit(inline="always")
def _task_scratch(like, strip0, nparts, B, ntasks):
    """One tile buffer per task: every MR-row block of the batch × the widest part's strips."""
    smax = 0
    for p in range(nparts):
        smax = max(smax, strip0[p + 1] - strip0[p])
    return np.empty((ntasks, -(-B // MR) * MR * smax * NR), dtype=like.dtype)


@njit(inline="always")
def _cols(p, nparts, H):
    """Hidden columns [c0, c1) of part p."""
    return p * H // nparts, (p + 1) * H // nparts


@njit(inline="always")
def _part(p, nparts, H, strip0):
    """Part p's hidden columns [c0, c1), its first panel strip, strip count and tile row length."""
    c0, c1 = _cols(p, nparts, H)
    s0 = strip0[p]
    ns = strip0[p + 1] - s0
    return c0, c1, s0, ns, ns * NR


# --- the tile product -------------------------------------------------------------------------


@intrinsic
def _tile(typingctx, c, c_off, ldc, a, a_off, a_si, a_sk, mr, w, w_off, ldw, K, accumulate):
    """c[c_off + i·ldc + n] (+)= Σ_k a[a_off + i·a_si + k·a_sk] · w[w_off + k·ldw + n]
    for i < MR, n < NR.

    All arrays C-contiguous with one float dtype; offsets and strides in elements. A panel strip
    has ldw = NR; a weight gradient reads a row block of a transposed (a_si = 1) and b in place
    (ldw = its row length). Rows i ≥ mr (a short last row block) re-read row mr − 1 and their
    results land in c's rows ≥ mr, which the caller ignores (c must have MR rows of room).
    ``accumulate`` starts from c's values instead of zero (a product split over blocks of k: the
    chain of fused multiply-adds, hence every bit, is the same). K may be 0.
    """
    if not (isinstance(c, types.Array) and isinstance(a, types.Array) and isinstance(w, types.Array)):
        return None
    if not (c.dtype == a.dtype == w.dtype and c.dtype in (types.float32, types.float64)):
        return None
    sig = types.void(c, types.intp, types.intp, a, types.intp, types.intp, types.intp, types.intp,
                     w, types.intp, types.intp, types.intp, types.boolean)

    def codegen(context, builder, signature, args):
        c_, c_off_, ldc_, a_, a_off_, a_si_, a_sk_, mr_, w_, w_off_, ldw_, K_, acc_ = args
        ct, at, wt = signature.args[0], signature.args[3], signature.args[8]
        dt = context.get_data_type(at.dtype)
        isz = at.dtype.bitwidth // 8
        lanes = VECTOR_BYTES // isz
        nv = NR // lanes
        vty = ir.VectorType(dt, lanes)
        intp = context.get_value_type(types.intp)
        i32 = ir.IntType(32)

        def const(v):
            return ir.Constant(intp, v)

        cptr = builder.gep(context.make_array(ct)(context, builder, c_).data, [c_off_])
        aptr = builder.gep(context.make_array(at)(context, builder, a_).data, [a_off_])
        wptr = builder.gep(context.make_array(wt)(context, builder, w_).data, [w_off_])
        last = builder.sub(mr_, const(1))
        rows = []
        for i in range(MR):
            ri = builder.select(builder.icmp_signed("<", const(i), mr_), const(i), last)
            rows.append(builder.gep(aptr, [builder.mul(ri, a_si_)]))
        name = "llvm.fma.v%d%s" % (lanes, "f32" if isz == 4 else "f64")
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]), name)
        zero = ir.Constant(vty, None)
        accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(nv)] for _ in range(MR)]
        cvec = [[builder.bitcast(builder.gep(cptr, [builder.add(builder.mul(const(i), ldc_), const(v * lanes))]),
                                 vty.as_pointer()) for v in range(nv)] for i in range(MR)]
        with builder.if_then(builder.trunc(acc_, ir.IntType(1)) if acc_.type != ir.IntType(1) else acc_):
            for i in range(MR):
                for v in range(nv):
                    builder.store(builder.load(cvec[i][v], align=isz), accs[i][v])
        undef = ir.Constant(vty, ir.Undefined)
        splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
        with cgutils.for_range(builder, K_) as loop:
            k = loop.index
            wk = builder.gep(wptr, [builder.mul(k, ldw_)])
            ak = builder.mul(k, a_sk_)
            ws = [builder.load(builder.bitcast(builder.gep(wk, [const(v * lanes)]), vty.as_pointer()),
                               align=isz) for v in range(nv)]
            for i in range(MR):
                s = builder.load(builder.gep(rows[i], [ak]))
                bv = builder.shuffle_vector(builder.insert_element(undef, s, ir.Constant(i32, 0)),
                                            undef, splat)
                for v in range(nv):
                    builder.store(builder.call(fma, [bv, ws[v], builder.load(accs[i][v])]), accs[i][v])
        for i in range(MR):
            for v in range(nv):
                builder.store(builder.load(accs[i][v]), cvec[i][v], align=isz)
        return context.get_dummy_value()

    return sig, codegen


KB = 128  # k block of _strip_rows: a (KB, NR) block of a strip (16 KB fp32) stays in L1


@njit(inline="always")
def _strip_rows(buf, c_off, ldc, a, a_off, lda, B, wp, w_off, K):
    """buf[i·ldc + c_off + n] = Σ_k a[a_off + i·lda + k] · wp[w_off + k·NR + n] for all B rows
    i (rounded up to whole MR blocks: buf needs that many rows) and n < NR: one panel strip
    (K, NR) times B rows of a, in k blocks of KB so that each block of the strip is loaded into
    L1 once and reused by every MR-row block. Each element is the same fused multiply-add chain
    over k = 0..K-1 as one unblocked ``_tile`` (the blocks accumulate in buf). K ≥ 1."""
    for k0 in range(0, K, KB):
        kc = min(KB, K - k0)
        for r0 in range(0, B, MR):
            _tile(buf, r0 * ldc + c_off, ldc, a, a_off + r0 * lda + k0, lda, 1, min(MR, B - r0),
                  wp, w_off + k0 * NR, NR, kc, k0 > 0)


def panel_index(H: int, gates: int, nparts: int, forward: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which weight row (forward) or column (backward) feeds each panel column, and where each
    part's strips start.

    Forward (h_{t-1} W_hhᵀ): part p's columns are the gate rows q·H + [c0, c1) of W_hh for each
    gate q in turn (so the tile holds p's r|z|n or i|f|g|o pre-activations side by side).
    Backward (δ W_hh, δ (B, G)): part p's columns are W_hh's columns [c0, c1).
    Each part's columns are padded with -1 (zeros in the panel) to a whole number of NR strips.
    Returns (cols (S·NR,) int64, strip0 (P+1,) int64).
    """
    cols: list[int] = []
    strip0 = [0]
    for p in range(nparts):
        c0, c1 = p * H // nparts, (p + 1) * H // nparts
        idx = [q * H + u for q in range(gates) for u in range(c0, c1)] if forward else list(range(c0, c1))
        ns = -(-len(idx) // NR)
        cols += idx + [-1] * (ns * NR - len(idx))
        strip0.append(strip0[-1] + ns)
    return np.array(cols, np.int64), np.array(strip0, np.int64)


def panel_reference(a: np.ndarray, w: np.ndarray, cols: np.ndarray, forward: bool) -> np.ndarray:
    """Plain NumPy twin of the packed product, for tests: a (M, K) times the panel columns."""
    dense = np.zeros((a.shape[1], cols.size), dtype=np.float64)
    for n, src in enumerate(cols):
        if src >= 0:
            dense[:, n] = w[src] if forward else w[:, src]
    return a.astype(np.float64) @ dense


# --- narrow (IEEE half) weights for generation ------------------------------------------------

F16_ROWS = 8    # rows per _rows_dot_f16 call
F16_LANES = 16  # k step: the padded row length Kp is a multiple of it


@intrinsic
def _rows_dot_f16(typingctx, out, o_off, w, w_off, ldw, x, Kp):
    """out[o_off + r] = Σ_{k<Kp} half(w[w_off + r·ldw + k]) · x[k]  for r < F16_ROWS.

    w is a uint16 array holding IEEE half-precision bits (a generation copy of a weight matrix,
    rows padded with zeros to Kp, a multiple of F16_LANES); x (float32 or float64) has Kp
    elements. One pass reads each weight as 2 bytes — half the memory traffic of float32, which
    is what bounds one stream's generation speed. Summation: F16_LANES partial sums per row
    over k, then a fixed pairwise tree.
    """
    if not (isinstance(out, types.Array) and isinstance(w, types.Array) and isinstance(x, types.Array)):
        return None
    if w.dtype != types.uint16 or out.dtype != x.dtype or x.dtype not in (types.float32, types.float64):
        return None
    sig = types.void(out, types.intp, w, types.intp, types.intp, x, types.intp)

    def codegen(context, builder, signature, args):
        out_, o_off_, w_, w_off_, ldw_, x_, Kp_ = args
        ot, wt, xt = signature.args[0], signature.args[2], signature.args[5]
        dt = context.get_data_type(xt.dtype)
        isz = xt.dtype.bitwidth // 8
        L = F16_LANES
        vty = ir.VectorType(dt, L)
        hty = ir.VectorType(ir.HalfType(), L)
        intp = context.get_value_type(types.intp)
        i32 = ir.IntType(32)

        def const(v):
            return ir.Constant(intp, v)

        optr = builder.gep(context.make_array(ot)(context, builder, out_).data, [o_off_])
        wptr = builder.gep(context.make_array(wt)(context, builder, w_).data, [w_off_])
        xptr = context.make_array(xt)(context, builder, x_).data
        name = "llvm.fma.v%d%s" % (L, "f32" if isz == 4 else "f64")
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]), name)
        accs = [cgutils.alloca_once_value(builder, ir.Constant(vty, None)) for _ in range(F16_ROWS)]
        rows = [builder.gep(wptr, [builder.mul(const(r), ldw_)]) for r in range(F16_ROWS)]
        n = builder.sdiv(Kp_, const(L))
        with cgutils.for_range(builder, n) as loop:
            k = builder.mul(loop.index, const(L))
            xv = builder.load(builder.bitcast(builder.gep(xptr, [k]), vty.as_pointer()), align=isz)
            for r in range(F16_ROWS):
                hv = builder.load(builder.bitcast(builder.gep(rows[r], [k]), hty.as_pointer()), align=2)
                wv = builder.fpext(hv, vty)
                builder.store(builder.call(fma, [wv, xv, builder.load(accs[r])]), accs[r])
        for r in range(F16_ROWS):
            v = builder.load(accs[r])
            width = L
            while width > 1:  # pairwise tree: lanes [0, w/2) + [w/2, w)
                width //= 2
                lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, width), list(range(width))))
                hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, width),
                                                              list(range(width, 2 * width))))
                v = builder.fadd(lo, hi)
            total = builder.extract_element(v, ir.Constant(i32, 0))
            builder.store(total, builder.gep(optr, [const(r)]))
        return context.get_dummy_value()

    return sig, codegen


# --- atomics, for the threads of one parallel region that meet at barriers -------------------


def _item_pointer(context, builder, aty, a, i):
    return cgutils.get_item_pointer(context, builder, aty, context.make_array(aty)(context, builder, a), [i])


@intrinsic
def _atomic_add(typingctx, a, i, v):
    """a[i] += v as one atomic step (an int64 array; sequentially consistent); the old value."""
    if not (isinstance(a, types.Array) and a.dtype == types.int64):
        return None
    sig = types.int64(a, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, a, i):
    """a[i], read atomically (sequentially consistent: what was written before the matching
    atomic write is visible after it)."""
    if not (isinstance(a, types.Array) and a.dtype == types.int64):
        return None
    sig = types.int64(a, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

    return sig, codegen


@intrinsic
def _atomic_cas(typingctx, a, i, expected, new):
    """If a[i] == expected, a[i] = new — one atomic step; returns the value a[i] had (so the
    swap happened iff it equals ``expected``)."""
    if not (isinstance(a, types.Array) and a.dtype == types.int64):
        return None
    sig = types.int64(a, types.intp, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.extract_value(builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst"), 0)

    return sig, codegen


@intrinsic
def _sched_yield(typingctx):
    """libc's sched_yield(): let another thread run on this core (a waiter's partner may need it)."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        return builder.call(fn, [])

    return sig, codegen


SPINS_PER_YIELD = 50_000  # a waiting thread spins this often (≈ 0.5–2 ms), then yields its core once


@njit(inline="always")
def _spun(spins):
    """One more turn of a waiting loop: every SPINS_PER_YIELD turns, yield the core once."""
    if spins + 1 == SPINS_PER_YIELD:
        _sched_yield()
        return 0
    return spins + 1
