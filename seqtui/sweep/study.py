"""The Optuna study: where it lives, how trials are chosen and pruned. Only the client opens it.

Storage: ``seqtui.paths.data_dir()/sweeps/NAME.db`` (SQLite) by default, or any database URL
(``--storage``). The study remembers what it searches (``user_attrs["seqtui"]``: the search
kind, the space, the base config, the trial count), so re-running the same command resumes it
and a different command under the same name is refused. Samplers: grid (every point once),
random, TPE; the median pruner stops a trial whose validation perplexity is worse than the
median of finished trials at the same step.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from seqtui import paths
from seqtui.errors import ConfigError, SeqtuiError

SEARCHES = ("grid", "random", "tpe")
ATTR = "seqtui"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class StudyError(SeqtuiError):
    """The study's storage cannot be opened, or the study does not match the command."""


def sweeps_dir() -> Path:
    return paths.data_dir() / "sweeps"


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigError(f"bad sweep name {name!r} (use letters, digits, '.', '_', '-')")
    return name


def storage_url(name: str, storage: str | None) -> str:
    """The database URL: ``storage`` as given, or the default SQLite file for ``name``."""
    if storage:
        if "://" not in storage:  # a plain path: an SQLite file
            return f"sqlite:///{Path(storage).expanduser().resolve()}"
        return storage
    d = sweeps_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"cannot create {d}: {exc.strerror or exc}") from None
    return f"sqlite:///{d / (name + '.db')}"


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.logging.disable_propagation()
    logging.getLogger("sqlalchemy").setLevel(logging.ERROR)
    return optuna


def open_storage(url: str):
    """Optuna storage for ``url``; StudyError in one line when it cannot be opened."""
    optuna = _quiet_optuna()
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if path.parent and not path.parent.is_dir():
            raise StudyError(f"cannot open study storage {url}: {path.parent} is not a directory")
        if path.exists() and not path.is_file():
            raise StudyError(f"cannot open study storage {url}: {path} is not a file")
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as exc:  # sqlalchemy/optuna errors of every kind: bad URL, no driver, refused
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyError(f"cannot open study storage {_safe(url)}: {detail[:200]}") from None


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {}


def _safe(url: str) -> str:
    """A URL without its password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def make_sampler(search: str, space, seed: int, trials: int = 20):
    optuna = _quiet_optuna()
    if search == "grid":
        return _grid_sampler()(space.grid(), seed=seed)
    if search == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search == "tpe":
        # random trials before TPE models the space: half the sweep, 2..10
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 2)))
    raise ConfigError(f"unknown search {search!r} (choose from {', '.join(SEARCHES)})")


def _grid_sampler():
    """GridSampler without its ``study.stop()`` once every point was tried: that call is only
    allowed inside ``study.optimize``; with ask/tell the sweep asks for no more than the grid."""
    import optuna

    class Grid(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values) -> None:
            return None

    return Grid


def make_pruner(prune: bool, trials: int):
    """The median pruner, with a warm-up that fits small sweeps (a fifth of the trials, 1..5)."""
    optuna = _quiet_optuna()
    if not prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, trials // 5)),
                                       n_warmup_steps=0, interval_steps=1)


def open_study(name: str, url: str, search: str, space, seed: int, prune: bool, trials: int,
               meta: dict[str, Any]):
    """Create the study, or load it when it exists with the same ``meta``; StudyError otherwise."""
    optuna = _quiet_optuna()
    storage = open_storage(url)
    sampler = make_sampler(search, space, seed, trials)
    pruner = make_pruner(prune, trials)
    existing = {s.study_name: s for s in _summaries(storage, url)}
    if name in existing:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        stored = study.user_attrs.get(ATTR)
        if stored is not None and _comparable(stored) != _comparable(meta):
            diff = _first_difference(stored, meta)
            raise StudyError(f"sweep {name!r} exists with different settings ({diff}); give "
                             "another --study name or the same command")
        return study, True
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction="minimize")
    except Exception as exc:
        raise StudyError(f"cannot create sweep {name!r} in {_safe(url)}: "
                         f"{str(exc).splitlines()[0][:200]}") from None
    study.set_user_attr(ATTR, meta)
    return study, False


def load_study(name: str, url: str):
    """An existing study, for ``sweep show`` (StudyError if there is none of that name)."""
    optuna = _quiet_optuna()
    storage = open_storage(url)
    names = [s.study_name for s in _summaries(storage, url)]
    if name not in names:
        raise StudyError(f"no sweep named {name!r} in {_safe(url)}"
                         + (f" (it has {', '.join(names[:5])})" if names else ""))
    return optuna.load_study(study_name=name, storage=storage)


def _summaries(storage, url: str):
    import optuna

    try:
        return optuna.get_all_study_summaries(storage, include_best_trial=False)
    except Exception as exc:
        raise StudyError(f"cannot read study storage {_safe(url)}: "
                         f"{str(exc).splitlines()[0][:200]}") from None


def list_sweeps() -> list[Path]:
    """The default SQLite files (one per sweep name)."""
    d = sweeps_dir()
    return sorted(d.glob("*.db")) if d.is_dir() else []


def _comparable(meta: dict[str, Any]) -> str:
    keep = {k: v for k, v in meta.items() if k not in ("trials", "created", "workers")}
    return json.dumps(keep, sort_keys=True)


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    for key in sorted(set(a) | set(b)):
        if key in ("trials", "created", "workers"):
            continue
        if key == "base" and isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            for k in sorted(set(a[key]) | set(b[key])):
                if a[key].get(k) != b[key].get(k):
                    return f"{k}: {a[key].get(k)!r} then, {b[key].get(k)!r} now"
        if json.dumps(a.get(key), sort_keys=True) != json.dumps(b.get(key), sort_keys=True):
            return f"{key} differs"
    return "settings differ"
