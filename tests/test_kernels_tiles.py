"""The register-tiled products (``_math._tile``, packed panels, ``linear.matmul_tn``) against
NumPy on tiny and odd shapes, thread-count independence for 1..4 threads, and the Numba cache key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ODD = [(1, 1, 1), (3, 5, 7), (1, 33, 40), (8, 32, 32), (9, 64, 65), (17, 3, 100)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", ODD)
def test_matmul_tn_matches_numpy(M, K, N, dtype):
    from seqtui.kernels import linear

    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    a = rng.standard_normal((K, M)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    ref = a.T.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 2e-5 * max(1, K) ** 0.5
    for parts in (1, 2, 3):
        out = np.full((M, N), np.nan, dtype)
        sums = np.full(M, np.nan, dtype)
        linear.matmul_tn(out, sums, a, b, parts)
        np.testing.assert_allclose(out, ref, rtol=0, atol=tol)
        np.testing.assert_allclose(sums, a.astype(np.float64).sum(axis=0), rtol=0, atol=tol)
        if parts == 1:
            first = out.copy(), sums.copy()
        else:
            np.testing.assert_array_equal(out, first[0])  # parts never change a bit
            np.testing.assert_array_equal(sums, first[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell,H,parts", [("rnn", 1, 1), ("rnn", 5, 2), ("gru", 7, 3), ("lstm", 33, 2),
                                          ("gru", 64, 2)])
@pytest.mark.parametrize("forward", [True, False])
def test_packed_panels_give_the_plain_product(cell, H, parts, forward, dtype):
    """pack_panel + the panel layout reproduce h W_hhᵀ (forward) and δ W_hh (backward)."""
    from seqtui.kernels import linear
    from seqtui.kernels._math import NR, panel_index, panel_reference

    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    G = gates * H
    rng = np.random.default_rng(H)
    w = rng.standard_normal((G, H)).astype(dtype)
    cols, strip0 = panel_index(H, gates, parts, forward)
    K = H if forward else G
    wp = np.full(cols.size * K, np.nan, dtype)
    linear.pack_panel(wp, w, cols, forward, parts)
    panels = wp.reshape(-1, K, NR)
    for s, strip in enumerate(panels):  # each strip is the (K, NR) block of its columns
        for n, src in enumerate(cols[s * NR:(s + 1) * NR]):
            want = 0.0 if src < 0 else (w[src] if forward else w[:, src])
            np.testing.assert_array_equal(strip[:, n], want)
    a = rng.standard_normal((3, K))
    dense = panel_reference(a, w, cols, forward)
    full = a @ (w.T if forward else w)
    for n, src in enumerate(cols):
        if src >= 0:
            np.testing.assert_allclose(dense[:, n], full[:, src], rtol=1e-12, atol=1e-12)
    assert strip0[-1] == panels.shape[0]


_THREADS_SCRIPT = textwrap.dedent(r"""
    import sys
    import numpy as np
    from seqtui.models.charmodel import CharModel, ModelConfig
    import numba
    assert numba.config.NUMBA_NUM_THREADS >= 4, numba.config.NUMBA_NUM_THREADS
    bad = []
    for cell in ("rnn", "gru", "lstm"):
        for dtype in (np.float32, np.float64):
            for H, B in ((40, 3), (70, 9), (70, 33)):  # 1, 2 and 5 row blocks
                rng = np.random.default_rng(0)
                X = rng.integers(0, 6, (B, 5)).astype(np.int32)
                Y = rng.integers(0, 6, (B, 5)).astype(np.int32)
                runs = []
                for threads in (1, 2, 3, 4):
                    m = CharModel(ModelConfig(cell, 6, H, 2), seed=1, dtype=dtype, parts=4, threads=threads)
                    st = m.loss_and_grad(X, Y, None, None)
                    lg, _ = m.logits(X)
                    runs.append((st.loss, m.grads.copy(), st.state, st.h_grad_norms, lg))
                for r in runs[1:]:
                    same = r[0] == runs[0][0] and all(np.array_equal(x, y) for x, y in zip(r[1:], runs[0][1:]))
                    if not same:
                        bad.append((cell, dtype.__name__, H, B))
    print("BAD" if bad else "OK", bad)
""")


def test_results_are_bit_identical_for_one_to_four_threads():
    """Parts are fixed by the model; 1, 2, 3 or 4 OpenMP threads run them (on any machine)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="4")
    proc = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OK"), proc.stdout


def test_cache_key_changes_when_any_kernel_source_changes(tmp_path):
    from seqtui.kernels import config

    tree = tmp_path / "kernels"
    shutil.copytree(config.KERNELS_DIR, tree, ignore=shutil.ignore_patterns("__pycache__"))
    key = config.source_key(tree)
    assert key == config.source_key(config.KERNELS_DIR) and len(key) == 16
    helper = tree / "_math.py"
    text = helper.read_bytes()
    helper.write_bytes(text.replace(b"max error", b"max errot", 1))  # one byte in a helper
    assert config.source_key(tree) != key
    helper.write_bytes(text)
    assert config.source_key(tree) == key
    (tree / "new_kernel.py").write_text("")
    assert config.source_key(tree) != key


def test_cache_dir_is_keyed_and_shared_with_child_processes():
    from seqtui.kernels import config

    import numba

    assert numba.config.CACHE_DIR == config.cache_dir()
    assert Path(numba.config.CACHE_DIR).name == config.source_key()
    child = subprocess.run([sys.executable, "-c", "import numba, seqtui.kernels.config; "
                            "print(numba.config.CACHE_DIR)"], capture_output=True, text=True,
                           env=dict(os.environ), timeout=120)
    assert child.stdout.strip() == numba.config.CACHE_DIR
    # a child given a fresh base (the bench's cold-compile run) keys that base instead
    fresh = dict(os.environ, NUMBA_CACHE_DIR="/tmp/elsewhere")
    assert config.cache_dir(fresh) == os.path.join("/tmp/elsewhere", config.source_key())


def test_row_split_cuts_rows_first_and_columns_for_big_panels():
    """Row groups (whole MR-row blocks) while the W_hh panel fits in half a core's L2; columns
    (part chunks) past that, or for threads beyond the row blocks. Any cut gives the same bits
    (the threads test above runs 1, 2 and 5 row blocks on 1–4 threads)."""
    from seqtui.kernels._math import L2_BYTES, MR, row_split

    small, big = L2_BYTES // 4, L2_BYTES
    assert row_split(2, 32, small) == (2, 1)
    assert row_split(1, 32, small) == (1, 1)
    assert row_split(16, 4 * MR, small) == (4, 4)  # 4 row blocks, then columns
    assert row_split(2, MR - 1, small) == (1, 2)  # one row block: columns only
    assert row_split(2, 32, big) == (1, 2) and row_split(4, 32, big) == (1, 4)
