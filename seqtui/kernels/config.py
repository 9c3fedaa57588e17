"""One place for Numba flags, threading set-up and the cache directory, imported first by every
kernel module.

- Entry kernels are ``nogil`` (a UI thread keeps its beat while a kernel runs) and ``cache``d.
- The threading layer is pinned to OpenMP: the default fallback, workqueue, aborts the process
  when two Python threads call parallel kernels at once, and costs ~130 µs per parallel region.
- ``fastmath`` is never the full set: it would remove NaN checks. ``FASTMATH`` below keeps them.
- The cache directory is ``<base>/<key>``: base is ``NUMBA_CACHE_DIR`` (or Numba's user-wide
  default) and key a hash of every source file in ``seqtui/kernels/``. Numba's own cache only
  notices edits to the file that defines a kernel, not to jitted helpers it inlines from another
  module (``_math.py``); with the key, any edit in this folder recompiles everything. Child
  processes inherit the environment and compute the same key, so they share one cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")

KERNELS_DIR = Path(__file__).resolve().parent
_BASE_ENV = "SEQTUI_NUMBA_CACHE_BASE"  # the base directory, remembered for child processes


def source_key(folder: Path = KERNELS_DIR) -> str:
    """sha256 (first 16 hex digits) over the names and bytes of every ``*.py`` under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir(environ=os.environ) -> str:
    """``<base>/<source_key()>``, base from the environment (see the module docstring)."""
    base = environ.get("NUMBA_CACHE_DIR")
    remembered = environ.get(_BASE_ENV)
    if base and remembered and os.path.dirname(os.path.normpath(base)) == os.path.normpath(remembered):
        base = remembered  # inherited from a parent that already keyed it
    if not base:
        from numba.misc.appdirs import AppDirs

        base = AppDirs(appname="numba", appauthor=False).user_cache_dir
    return os.path.join(base, source_key())


_CACHE_DIR = cache_dir()
os.environ[_BASE_ENV] = os.path.dirname(_CACHE_DIR)
os.environ["NUMBA_CACHE_DIR"] = _CACHE_DIR  # read by numba at import (and on config reloads)

import numba  # noqa: E402

numba.config.CACHE_DIR = _CACHE_DIR  # in case numba was imported before this module

if numba.config.THREADING_LAYER == "default":  # pragma: no cover - set by the env var above
    numba.config.THREADING_LAYER = "omp"


def _vector_bytes() -> int:
    """Widest SIMD register of the host: 64 with AVX-512, else 32 (AVX2 / NEON-class)."""
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
        return 64 if features.get("avx512f", False) else 32
    except Exception:  # pragma: no cover - exotic hosts
        return 32


VECTOR_BYTES = _vector_bytes()

# Fast-math flags that keep NaN/Inf semantics (so np.isnan / np.isfinite checks survive).
FASTMATH = {"contract", "reassoc", "arcp", "nsz"}

# Flags for entry kernels (called from Python) and for internal helpers.
NJIT = dict(cache=True, nogil=True)
NJIT_FAST = dict(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
NJIT_PARALLEL = dict(cache=True, nogil=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
