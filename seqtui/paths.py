"""Where seqtui keeps user data (registered corpora, runs) and caches (token arrays).

``SEQTUI_DATA_DIR`` / ``SEQTUI_CACHE_DIR`` override the platformdirs locations (tests use them).
Importing this module is cheap: no numba, no numpy.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """User data: registered corpora, runs."""
    env = os.environ.get("SEQTUI_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("seqtui", appauthor=False))


def cache_dir() -> Path:
    """Caches that can be rebuilt: encoded token arrays."""
    env = os.environ.get("SEQTUI_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("seqtui", appauthor=False))


def runs_dir() -> Path:
    """Where named runs live (``runs/NAME``)."""
    return data_dir() / "runs"
