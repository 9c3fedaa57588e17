"""Sweeps: many training runs as one search, on Dask distributed, chosen and pruned by Optuna.

``space`` parses the search space, ``study`` keeps the Optuna study (only the client opens it),
``cluster`` starts or reaches the Dask cluster, ``trial`` is the task one worker runs per trial,
``driver`` is the client's loop, ``results`` the ranked table. A trial is an ordinary run
(``seqtui.engine``), tagged with its sweep and trial number. dask and optuna are optional
(``pip install 'seqtui[sweep]'``); importing this package does not import them.
"""

from __future__ import annotations

import importlib.util

from seqtui.errors import SeqtuiError

INSTALL_HINT = "pip install 'seqtui[sweep]'"


class MissingDependency(SeqtuiError):
    """dask/distributed or optuna is not installed."""


def require() -> None:
    """MissingDependency (one line: how to install) unless dask.distributed and optuna import."""
    missing = [name for name in ("distributed", "optuna") if not _importable(name)]
    if missing:
        raise MissingDependency(f"seqtui sweep needs {' and '.join(missing)}: {INSTALL_HINT}")


def _importable(name: str) -> bool:
    import sys

    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
