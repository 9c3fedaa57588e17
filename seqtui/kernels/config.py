"""One place for Numba flags and threading set-up, imported first by every kernel module.

- Entry kernels are ``nogil`` (a UI thread keeps its beat while a kernel runs) and ``cache``d.
- The threading layer is pinned to OpenMP: the default fallback, workqueue, aborts the process
  when two Python threads call parallel kernels at once, and costs ~130 µs per parallel region.
- ``fastmath`` is never the full set: it would remove NaN checks. ``FASTMATH`` below keeps them.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")

import numba  # noqa: E402

if numba.config.THREADING_LAYER == "default":  # pragma: no cover - set by the env var above
    numba.config.THREADING_LAYER = "omp"

# Fast-math flags that keep NaN/Inf semantics (so np.isnan / np.isfinite checks survive).
FASTMATH = {"contract", "reassoc", "arcp", "nsz"}

# Flags for entry kernels (called from Python) and for internal helpers.
NJIT = dict(cache=True, nogil=True)
NJIT_FAST = dict(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
NJIT_PARALLEL = dict(cache=True, nogil=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
