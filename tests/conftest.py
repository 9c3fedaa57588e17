"""Shared test set-up: isolated user data/cache dirs and one shared Numba cache for the suite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Set before any seqtui/numba import so subprocesses inherit them too.
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
_tmp = Path(tempfile.mkdtemp(prefix="seqtui-tests-"))
os.environ["SEQTUI_DATA_DIR"] = str(_tmp / "data")
os.environ["SEQTUI_CACHE_DIR"] = str(_tmp / "cache")
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
