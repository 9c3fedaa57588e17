"""Runs: listing, resolving, starting (validated, detached), stopping, resuming and removing.

A run is a process plus a directory (``seqtui.engine.rundir.RunDir`` owns the directory's
layout and status). Importing this module is cheap (no numpy, no numba): the app polls it.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from seqtui import paths
from seqtui.engine.process import pid_is_training, reap_children, spawn_worker
from seqtui.engine.rundir import STATUSES, RunDir, RunInfo
from seqtui.errors import ConfigError, RunError

MAX_NAME = 100


# ---------------------------------------------------------------------------------------------
# Finding runs
def runs_root() -> Path:
    """Where named runs live."""
    return paths.runs_dir()


def resolve_run_path(name_or_path: str | os.PathLike) -> Path:
    """A run name (under runs_root()) or a run-dir path → its directory; RunError if unknown."""
    text = str(name_or_path)
    if not text:
        raise RunError("no run given")
    if os.sep not in text and text not in (".", ".."):
        candidate = RunDir(runs_root() / text)
        if candidate.is_run():
            return candidate.path
    path = Path(text).expanduser()
    if RunDir(path).is_run():
        return path.resolve()
    raise RunError(f"unknown run {text!r} (see `seqtui runs list`)")


def get_dir(name_or_path: str | os.PathLike) -> RunDir:
    return RunDir(resolve_run_path(name_or_path))


def list_runs() -> list[RunInfo]:
    """All runs under runs_root(), newest first."""
    reap_children()
    root = runs_root()
    if not root.is_dir():
        return []
    runs = [d.info() for d in map(RunDir, root.iterdir()) if d.is_run()]
    runs.sort(key=lambda r: (r.created or 0.0, r.name), reverse=True)
    return runs


def get_run(name_or_path: str | os.PathLike) -> RunInfo:
    """One run by name or path; RunError if unknown."""
    reap_children()
    return get_dir(name_or_path).info()


# ---------------------------------------------------------------------------------------------
# Creating runs
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def default_name(config: dict[str, Any]) -> str:
    """``<corpus stem>-<cell>``, e.g. ``kjv-gru``; a series run ``<source>-<model>``, e.g.
    ``sine-mlp``, ``sunspots-linear`` (made unique with -2, -3, ... on creation)."""
    if config.get("kind") == "series":
        source = str(config.get("source") or "series")
        source = Path(source).name if os.sep in source else source
        source = source.split(":", 1)[0]
        stem = source.rsplit(".", 1)[0] if "." in source[1:] else source
        stem = _NAME_OK.sub("-", stem).strip("-.") or "series"
        return f"{stem}-{config.get('model') or 'mlp'}"
    corpus = Path(str(config.get("corpus") or "run")).name
    stem = corpus.rsplit(".", 1)[0] if "." in corpus[1:] else corpus
    stem = _NAME_OK.sub("-", stem).strip("-.") or "run"
    return f"{stem}-{config.get('cell') or 'rnn'}"


def check_name(name: str) -> str:
    if not name or _NAME_OK.search(name) or name.startswith((".", "-")) or len(name) > MAX_NAME:
        raise RunError(f"bad run name {name!r} (use letters, digits, '.', '_', '-', at most "
                       f"{MAX_NAME}, not starting with '.' or '-')")
    return name


def create_run_dir(config: dict[str, Any], name: str | None = None,
                   run_dir: str | os.PathLike | None = None, listed: bool = False) -> Path:
    """Claim a new run directory and write its config; never reuses an existing run.

    ``run_dir``: an explicit path (must not exist, or be an empty directory). ``name``: exactly
    that name (RunError if taken). Neither: ``default_name`` with -2, -3, ... until one is free.
    ``listed``: a ``run_dir`` outside the runs folder also gets a link there (``start_run``).
    """
    if run_dir is not None:
        path = Path(run_dir).expanduser().resolve()
        _mkdir(path, parents=True, exist_ok=True)
        RunDir(path).claim(config, taken=f"run dir {path} is not empty")
        if listed:
            _list_elsewhere(RunDir(path))
        return path
    root = runs_root()
    _mkdir(root, parents=True, exist_ok=True, what="runs directory")
    if name is not None:
        path = root / check_name(name)
        if not _mkdir(path, exist_ok=False):
            raise RunError(f"run {name!r} already exists (pick another --name)")
        RunDir(path).claim(config, taken=f"run {name!r} already exists")
        return path
    base = default_name(config)
    for i in range(1, 10_000):
        path = root / (base if i == 1 else f"{base}-{i}")
        if _mkdir(path, exist_ok=False):
            RunDir(path).claim(config, taken=f"run dir {path} is not empty")
            return path
    raise RunError(f"too many runs named {base}-N")  # pragma: no cover


def _list_elsewhere(rd: RunDir) -> None:
    """A run made with ``--run-dir`` outside the runs folder is listed there too: a symlink
    ``runs/NAME`` (made unique) that the run's marker names, so `runs list` shows it and
    `runs rm NAME` removes both. Best effort: a runs folder that cannot be written is skipped."""
    root = runs_root()
    try:
        if rd.path.parent.resolve() == root.resolve():
            return
        root.mkdir(parents=True, exist_ok=True)
        base = _NAME_OK.sub("-", rd.path.name).strip("-.") or "run"
        for i in range(1, 1000):
            link = root / (base if i == 1 else f"{base}-{i}")
            try:
                os.symlink(rd.path, link, target_is_directory=True)
            except FileExistsError:
                continue
            rd.register_link(link)
            return
    except OSError:
        return


def _mkdir(path: Path, parents: bool = False, exist_ok: bool = False, what: str = "run dir") -> bool:
    """mkdir; False if it exists (and exist_ok is False); RunError naming the directory otherwise."""
    try:
        path.mkdir(parents=parents, exist_ok=exist_ok)
    except FileExistsError:
        return False
    except OSError as exc:
        from seqtui.files import unwritable_dir

        blocker = unwritable_dir(path.parent)
        where = "" if blocker == path.parent else (
            f" ({blocker} is a file, not a directory)" if blocker.is_file() else f" (in {blocker})")
        raise RunError(f"cannot create {what} {path}: {exc.strerror or exc}{where}") from None
    return True


def start_run(config, name: str | None = None, run_dir: str | os.PathLike | None = None,
              detach: bool = True) -> RunDir:
    """The one way to start a run, for the CLI and the app alike.

    Validates the config and the data (``prepare.preflight``: corpus, length, memory) before
    anything is created, claims the run directory and, with ``detach``, starts the trainer
    process in the background. Without ``detach`` the caller trains it (``Trainer(rundir)``).
    A ``SeriesRunConfig`` (or a dict with ``"kind": "series"``) starts a series run
    (``start_series_run``).
    """
    from seqtui.engine.config import RunConfig

    if _is_series(config):
        return start_series_run(config, name=name, run_dir=run_dir, detach=detach)[0]
    from seqtui.engine.prepare import preflight

    if isinstance(config, dict) and config.get("kind") == "text":
        config = {k: v for k, v in config.items() if k != "kind"}
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    if name is not None:
        check_name(name)
    cfg = preflight(cfg)
    rd = RunDir(create_run_dir(cfg.to_dict(), name=name, run_dir=run_dir, listed=True))
    if detach:
        spawn_worker(rd)
    return rd


def _is_series(config) -> bool:
    if isinstance(config, dict):
        return config.get("kind") == "series"
    return type(config).__name__ == "SeriesRunConfig"


def start_series_run(config, name: str | None = None, run_dir: str | os.PathLike | None = None,
                     detach: bool = True, series=None):
    """Start a series run → (RunDir, the loaded Series).

    ``config``: a ``seqtui.models.series.SeriesRunConfig`` or its dict (``"kind": "series"``
    allowed). The preflight (``series_trainer.series_preflight``: settings, the series loads, is
    long enough and not constant, the model builds) runs before anything is created; a file
    source is stored as an absolute path. With ``detach`` the worker trains it in the
    background; otherwise the caller does (``SeriesTrainer(rundir, series=series).run()``).
    """
    from seqtui.engine.series_trainer import config_file_dict, series_preflight
    from seqtui.models.series import SeriesRunConfig

    if isinstance(config, dict):
        config = SeriesRunConfig.from_dict({k: v for k, v in config.items() if k != "kind"})
    elif not isinstance(config, SeriesRunConfig):
        raise ConfigError(f"not a series run config: {type(config).__name__}")
    if name is not None:
        check_name(name)
    cfg, loaded = series_preflight(config, series)
    rd = RunDir(create_run_dir(config_file_dict(cfg), name=name, run_dir=run_dir))
    if detach:
        spawn_worker(rd)
    return rd, loaded


# ---------------------------------------------------------------------------------------------
# Controlling runs
def stop_run(name_or_path: str | os.PathLike, timeout: float = 60.0,
             sig: int = signal.SIGTERM) -> RunInfo:
    """Ask a running run to stop (SIGTERM: it checkpoints, writes `end`, exits) and wait."""
    if not 0 <= timeout <= 86_400:
        raise ConfigError(f"timeout must be in 0..86400 seconds, got {timeout:g}")
    run = get_run(name_or_path)
    if run.status != "running" or run.pid is None:
        raise RunError(f"run {run.name!r} is not running ({run.status})")
    trial = (run.config or {}).get("sweep") is not None
    if trial:  # its pid is the sweep's client, which stops this trial alone and goes on
        run.dir.request_stop()
    else:
        try:
            os.kill(run.pid, sig)
        except ProcessLookupError:
            return get_run(run.path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap_children()
        if not pid_is_training(run.pid) or (trial and get_run(run.path).status != "running"):
            return get_run(run.path)
        time.sleep(0.05)
    raise RunError(f"run {run.name!r} (pid {run.pid}) did not stop within {timeout:g} s")


def resume_run(name_or_path: str | os.PathLike) -> RunInfo:
    """Continue a stopped or failed run in the background from its latest checkpoint."""
    run = get_run(name_or_path)
    check_resumable(run, kinds=("text", "series"))
    spawn_worker(run.dir)
    return run.dir.info()


def check_resumable(run: RunInfo, kinds: tuple[str, ...] = ("text",)) -> None:
    """RunError unless ``run`` can be continued by a trainer of one of ``kinds`` (a foreground
    `seqtui train --resume` is the text trainer; `runs resume` and ``resume_run`` handle both)."""
    if run.kind not in kinds:
        raise RunError(f"run {run.name!r} is a {run.kind} run; continue it with `seqtui runs resume {run.name}`")
    if run.status == "running":
        raise RunError(f"run {run.name!r} is already running (pid {run.pid})")
    if run.status == "finished" and not _budget_left(run.config, *_position(run.dir)):
        raise RunError(f"run {run.name!r} already finished; extend it with "
                       f"`seqtui runs resume {run.name} --steps N` (or --epochs N)")


def _position(rd: RunDir) -> tuple[int, int]:
    """(step, epoch) a resume starts from: the latest checkpoint's, else best's, else 0."""
    from seqtui.engine.checkpoint import read_checkpoint_meta
    from seqtui.errors import SeqtuiError

    for kind in ("latest", "best"):
        if os.path.lexists(rd.checkpoint(kind)):
            try:
                meta = read_checkpoint_meta(rd.checkpoint(kind))
                return int(meta.get("step") or 0), int(meta.get("epoch") or 0)
            except (SeqtuiError, TypeError, ValueError):
                continue
    return 0, 0


def _budget_left(cfg: dict, step: int, epoch: int) -> bool:
    """A finished run whose budget was raised (``--steps``/``--epochs``) has steps left."""
    if isinstance(cfg.get("steps"), int):
        return cfg["steps"] > step
    if isinstance(cfg.get("epochs"), int):
        return cfg["epochs"] > epoch
    return False


def prepare_resume(name_or_path: str | os.PathLike, steps: int | None = None,
                   epochs: int | None = None, fresh: bool = False,
                   say=None) -> RunInfo:
    """Check that a run can continue, and set it up to: ``steps``/``epochs`` raise its budget
    (a finished run continues); ``fresh`` lets a run with no checkpoint left start over (a
    ``restart`` event records it). ``say(line)`` hears what the resume will do differently
    (continuing from ``best`` because ``latest`` is missing or unreadable). RunError otherwise."""
    from seqtui.engine.checkpoint import read_checkpoint_meta
    from seqtui.errors import SeqtuiError

    run = get_run(name_or_path)
    rd = run.dir
    if run.kind != "text":
        check_resumable(run)  # a series run: says to continue it with `seqtui runs resume`
    if run.status == "running":
        raise RunError(f"run {run.name!r} is already running (pid {run.pid})")
    if steps is not None and epochs is not None:
        raise ConfigError("give --steps or --epochs, not both")
    metas = {}
    for kind in ("latest", "best"):
        if os.path.lexists(rd.checkpoint(kind)):
            try:
                metas[kind] = read_checkpoint_meta(rd.checkpoint(kind))
            except SeqtuiError as exc:
                metas[kind] = exc
    usable = {k: m for k, m in metas.items() if isinstance(m, dict)}
    at_step, at_epoch = _position(rd)
    new_cfg = None  # every check first: a refused resume changes nothing
    if steps is not None or epochs is not None:
        if steps is not None and steps <= at_step:
            raise RunError(f"run {run.name!r} is at step {at_step}; --steps must be more than that")
        if epochs is not None and epochs <= at_epoch:
            raise RunError(f"run {run.name!r} is in epoch {at_epoch}; --epochs must be more than that")
        changes = {"steps": steps} if steps is not None else {"epochs": epochs}
        new_cfg = rd.config().with_overrides(**changes).validate()
    cfg_now = new_cfg.to_dict() if new_cfg is not None else rd.config_dict()
    if run.status == "finished" and not _budget_left(cfg_now, at_step, at_epoch):
        check_resumable(run)
    reached = rd.progress_since_restart() if not metas else 0
    if reached > 0 and not fresh:
        raise RunError(f"run {run.name!r} reached step {reached} but has no checkpoint left; "
                       f"resuming would start over: add --fresh to start it from step 0")
    if new_cfg is not None:
        rd.write_config(new_cfg.to_dict())
    if reached > 0:  # --fresh: record the restart, so the trainer knows it was asked for
        rd.append_event("restart", step=0, reason="fresh", previous_step=reached)
    elif "latest" not in usable and "best" in usable and say is not None:
        why = "missing" if "latest" not in metas else f"unreadable ({metas['latest']})"
        say(f"latest checkpoint is {why}; continuing from the best checkpoint "
            f"(step {usable['best'].get('step')})")
    return get_run(run.path)


def check_removable(name_or_path: str | os.PathLike) -> RunInfo:
    """The run ``name_or_path`` names, if it may be deleted: not running, not reached through a
    symlink (the link, not its target, is what was named), provably a seqtui run directory."""
    text = str(name_or_path)
    named = runs_root() / text if text and os.sep not in text and text not in (".", "..") \
        and os.path.lexists(runs_root() / text) else Path(text).expanduser()
    if os.path.islink(named):
        target = RunDir(Path(os.path.realpath(named)))
        in_root = os.path.realpath(named.parent) == os.path.realpath(runs_root())
        if not (in_root and target.is_link_of_ours(named)):
            raise RunError(f"{named} is a symlink; refusing to delete through it (name the run's own directory)")
        name_or_path = target.path  # a --run-dir run listed by its link: remove both
    run = get_run(name_or_path)
    if run.status == "running":
        raise RunError(f"run {run.name!r} is running; stop it first (`seqtui runs stop {run.name}`)")
    run.dir.verify_owned()
    return run


def remove_run(name_or_path: str | os.PathLike) -> Path:
    """Delete a run directory (refuses while it is running, and anything not provably a run)."""
    run = check_removable(name_or_path)
    run.dir.remove()
    return run.path


__all__ = [
    "RunDir", "RunInfo", "STATUSES", "runs_root", "list_runs", "get_run", "get_dir", "start_run",
    "start_series_run",
    "stop_run", "resume_run", "remove_run", "create_run_dir", "resolve_run_path", "ConfigError",
]
