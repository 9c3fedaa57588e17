"""Runs: a training process plus a directory. Listing, status, start (detached), stop, resume, rm.

Run directory (``paths.runs_dir()/NAME`` or any path)::

    config.json        RunConfig, whole (fingerprint/vocab_size filled in when training starts)
    events.jsonl       one JSON event per line (seqtui.engine.events)
    pid                pid of the training process while it runs
    train.log          stdout/stderr of a detached run
    checkpoints/       latest.safetensors + latest.json, best.safetensors + best.json

Status: a live training pid → ``running``; otherwise the last ``end`` event's status
(``finished``/``stopped``/``failed``) when it follows the last ``start``; a run whose process
died without an ``end`` event (kill -9, power loss) is ``stopped`` and resumable.
Importing this module is cheap (no numpy, no numba): the TUI polls it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqtui import paths
from seqtui.engine.events import iter_events_reversed
from seqtui.errors import ConfigError, RunError

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"
PID_FILE = "pid"
LOG_FILE = "train.log"
CHECKPOINT_DIR = "checkpoints"
STATUSES = ("running", "stopped", "finished", "failed")

# Popen objects of runs started by this process, polled so finished children do not linger as
# zombies (a zombie's pid still answers kill(pid, 0)).
_children: dict[int, subprocess.Popen] = {}


@dataclass
class RunInfo:
    """What a run directory says about a run (a snapshot; call get_run again to refresh)."""

    name: str
    path: Path
    status: str                       # "running" | "stopped" | "finished" | "failed"
    config: dict[str, Any]            # config.json ({} if unreadable)
    last_step: int = 0
    best_val_ppl: float | None = None
    pid: int | None = None            # the live training process, else None
    total_steps: int | None = None    # from the last `start` event
    last_ppl: float | None = None     # train perplexity of the last `progress` event
    reason: str | None = None         # `end` reason, or the last `error` message when failed
    created: float | None = None      # mtime of config.json (unix seconds)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def checkpoints_path(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": str(self.path), "status": self.status,
            "last_step": self.last_step, "total_steps": self.total_steps,
            "best_val_ppl": self.best_val_ppl, "last_ppl": self.last_ppl, "pid": self.pid,
            "reason": self.reason, "created": self.created, "config": self.config,
        }


# ---------------------------------------------------------------------------------------------
# Finding runs
def runs_root() -> Path:
    """Where named runs live."""
    return paths.runs_dir()


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / CONFIG_FILE).exists() or (path / EVENTS_FILE).exists())


def resolve_run_path(name_or_path: str | os.PathLike) -> Path:
    """A run name (under runs_root()) or a run-dir path → its directory; RunError if unknown."""
    text = str(name_or_path)
    if not text:
        raise RunError("no run given")
    if os.sep not in text and text not in (".", ".."):
        candidate = runs_root() / text
        if _is_run_dir(candidate):
            return candidate
    path = Path(text).expanduser()
    if _is_run_dir(path):
        return path.resolve()
    raise RunError(f"unknown run {text!r} (see `seqtui runs list`)")


def list_runs() -> list[RunInfo]:
    """All runs under runs_root(), newest first."""
    _reap_children()
    root = runs_root()
    if not root.is_dir():
        return []
    runs = [_read_run(p) for p in root.iterdir() if _is_run_dir(p)]
    runs.sort(key=lambda r: (r.created or 0.0, r.name), reverse=True)
    return runs


def get_run(name_or_path: str | os.PathLike) -> RunInfo:
    """One run by name or path; RunError if unknown."""
    _reap_children()
    return _read_run(resolve_run_path(name_or_path))


def _read_run(path: Path) -> RunInfo:
    config: dict[str, Any] = {}
    created = None
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        created = (path / CONFIG_FILE).stat().st_mtime
        if not isinstance(config, dict):
            config = {}
    except (OSError, ValueError):
        pass
    pid = read_pid(path)
    alive = pid is not None and pid_is_training(pid)
    summary = _summarize_events(path / EVENTS_FILE)
    if alive:
        status = "running"
    elif summary["end"] is not None:
        status = summary["end"].get("status") or "stopped"
        if status not in STATUSES:
            status = "failed"
    else:
        status = "stopped"
    reason = None
    if not alive and summary["end"] is not None:
        reason = summary["end"].get("reason")
        if status == "failed" and summary["error"]:
            reason = summary["error"]
    best = summary["best_val_ppl"]
    if best is None:
        best = _best_from_checkpoint(path)
    return RunInfo(
        name=path.name, path=path, status=status, config=config,
        last_step=summary["last_step"], best_val_ppl=best, pid=pid if alive else None,
        total_steps=summary["total_steps"], last_ppl=summary["last_ppl"], reason=reason,
        created=created,
    )


def _summarize_events(events_path: Path) -> dict[str, Any]:
    """Scan events backwards until the last `start`: step, end, best val ppl, last train ppl."""
    out: dict[str, Any] = {"last_step": 0, "end": None, "best_val_ppl": None, "last_ppl": None,
                           "total_steps": None, "error": None}
    step_seen = False
    for event in iter_events_reversed(events_path):
        kind = event.get("type")
        if not step_seen and isinstance(event.get("step"), int):
            out["last_step"], step_seen = event["step"], True
        if kind == "end" and out["end"] is None:
            out["end"] = event
        elif kind == "error" and out["error"] is None:
            out["error"] = event.get("message")
        elif kind == "progress" and out["last_ppl"] is None:
            out["last_ppl"] = event.get("ppl")
        elif kind == "val" and out["best_val_ppl"] is None:
            out["best_val_ppl"] = event.get("best_ppl")
        elif kind == "start":
            out["total_steps"] = event.get("total_steps")
            break
    return out


def _best_from_checkpoint(path: Path) -> float | None:
    try:
        meta = json.loads((path / CHECKPOINT_DIR / "best.json").read_text(encoding="utf-8"))
        value = meta.get("best_val_ppl")
        return float(value) if value is not None else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------
# Process bookkeeping
def read_pid(path: Path) -> int | None:
    try:
        text = (path / PID_FILE).read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def write_pid(path: Path, pid: int | None = None) -> None:
    """Record the training pid (atomically: a reader never sees a half-written number)."""
    tmp = path / f".{PID_FILE}.{os.getpid()}"
    tmp.write_text(f"{pid or os.getpid()}\n")
    os.replace(tmp, path / PID_FILE)


def clear_pid(path: Path) -> None:
    """Remove the pid file if it names this process (called on a clean exit)."""
    if read_pid(path) == os.getpid():
        try:
            (path / PID_FILE).unlink()
        except OSError:
            pass


def pid_is_training(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) seqtui process, not a recycled pid."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True  # training in this very process (tests, an in-process trainer)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rindex(")") + 2:].startswith(("Z", "X")):
                return False
            cmdline = (proc / "cmdline").read_bytes()
            return b"seqtui" in cmdline
        except (OSError, ValueError):
            return False
    return True


def _reap_children() -> None:
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


# ---------------------------------------------------------------------------------------------
# Creating runs
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def default_name(config: dict[str, Any]) -> str:
    """``<corpus stem>-<cell>``, e.g. ``kjv-gru`` (made unique with -2, -3, ... on creation)."""
    corpus = Path(str(config.get("corpus") or "run")).name
    stem = corpus.rsplit(".", 1)[0] if "." in corpus[1:] else corpus
    stem = _NAME_OK.sub("-", stem).strip("-.") or "run"
    return f"{stem}-{config.get('cell') or 'rnn'}"


def check_name(name: str) -> str:
    if not name or _NAME_OK.search(name) or name.startswith(".") or len(name) > 100:
        raise RunError(f"bad run name {name!r} (use letters, digits, '.', '_', '-')")
    return name


def create_run_dir(config: dict[str, Any], name: str | None = None,
                   run_dir: str | os.PathLike | None = None) -> Path:
    """Claim a new run directory and write its config.json; never reuses an existing run.

    ``run_dir``: an explicit path (must not exist, or be an empty directory). ``name``: exactly
    that name (RunError if taken). Neither: ``default_name`` with -2, -3, ... until one is free.
    """
    if run_dir is not None:
        path = Path(run_dir).expanduser().resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create run dir {path}: {exc.strerror or exc}") from None
        _claim(path, config, taken=f"run dir {path} is not empty")
        return path
    root = runs_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create runs directory {root}: {exc.strerror or exc}") from None
    if name is not None:
        path = root / check_name(name)
        try:
            path.mkdir(exist_ok=False)
        except FileExistsError:
            raise RunError(f"run {name!r} already exists (pick another --name)") from None
        except OSError as exc:
            raise RunError(f"cannot create run dir {path}: {exc.strerror or exc}") from None
        _claim(path, config, taken=f"run {name!r} already exists")
        return path
    base = default_name(config)
    for i in range(1, 10_000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"cannot create run dir {path}: {exc.strerror or exc}") from None
        _claim(path, config, taken=f"run dir {path} is not empty")
        return path
    raise RunError(f"too many runs named {base}-N")  # pragma: no cover


def _claim(path: Path, config: dict[str, Any], taken: str) -> None:
    """Create config.json exclusively (O_EXCL): the atomic claim on a run directory."""
    if any(p.name != CONFIG_FILE for p in path.iterdir()):
        raise RunError(taken)
    try:
        fd = os.open(path / CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise RunError(taken) from None
    except OSError as exc:
        raise RunError(f"cannot write to run dir {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Replace config.json atomically (the trainer fills in fingerprint and vocab_size)."""
    tmp = path / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path / CONFIG_FILE)


def spawn_training(path: Path) -> int:
    """Start ``python -m seqtui train --resume PATH`` detached: own session, no terminal.

    stdin is /dev/null and stdout/stderr go to ``train.log``, so the process survives the
    terminal closing (no SIGHUP reaches a process outside the terminal's session, and the
    child ignores SIGHUP besides); the pid is written to ``pid`` before returning.
    """
    env = dict(os.environ)
    env["SEQTUI_DETACHED"] = "1"
    env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        log = open(path / LOG_FILE, "ab")
    except OSError as exc:
        raise RunError(f"cannot write to run dir {path}: {exc.strerror or exc}") from None
    with log:
        child = subprocess.Popen(
            [sys.executable, "-m", "seqtui", "train", "--resume", str(path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=str(path), env=env,
        )
    _children[child.pid] = child
    write_pid(path, child.pid)
    return child.pid


def start_run(config: dict[str, Any], name: str | None = None,
              run_dir: str | os.PathLike | None = None) -> RunInfo:
    """Validate ``config``, create the run directory and start training it in the background."""
    from seqtui.data.corpora import resolve_corpus
    from seqtui.engine.config import RunConfig

    cfg = RunConfig.from_dict(config).validate()
    info = resolve_corpus(cfg.corpus)  # CorpusError now, not in the background child's log
    if info.kind == "path" and info.path is not None:  # the child's cwd is the run dir
        cfg = cfg.replace(corpus=str(info.path))
    path = create_run_dir(cfg.to_dict(), name=name, run_dir=run_dir)
    spawn_training(path)
    return _read_run(path)


# ---------------------------------------------------------------------------------------------
# Controlling runs
def stop_run(name_or_path: str | os.PathLike, timeout: float = 60.0,
             sig: int = signal.SIGTERM) -> RunInfo:
    """Ask a running run to stop (SIGTERM: it checkpoints, writes `end`, exits) and wait."""
    run = get_run(name_or_path)
    if run.status != "running" or run.pid is None:
        raise RunError(f"run {run.name!r} is not running ({run.status})")
    try:
        os.kill(run.pid, sig)
    except ProcessLookupError:
        return get_run(run.path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap_children()
        if not pid_is_training(run.pid):
            return get_run(run.path)
        time.sleep(0.05)
    raise RunError(f"run {run.name!r} (pid {run.pid}) did not stop within {timeout:g} s")


def resume_run(name_or_path: str | os.PathLike) -> RunInfo:
    """Continue a stopped or failed run in the background from its latest checkpoint."""
    run = get_run(name_or_path)
    check_resumable(run)
    spawn_training(run.path)
    return _read_run(run.path)


def check_resumable(run: RunInfo) -> None:
    if run.status == "running":
        raise RunError(f"run {run.name!r} is already running (pid {run.pid})")
    if run.status == "finished":
        raise RunError(f"run {run.name!r} already finished")


def remove_run(name_or_path: str | os.PathLike) -> Path:
    """Delete a run directory (refuses while it is running). Returns the removed path."""
    run = get_run(name_or_path)
    if run.status == "running":
        raise RunError(f"run {run.name!r} is running; stop it first (`seqtui runs stop {run.name}`)")
    try:
        shutil.rmtree(run.path)
    except OSError as exc:
        raise RunError(f"cannot remove {run.path}: {exc.strerror or exc}") from None
    return run.path


__all__ = [
    "RunInfo", "runs_root", "list_runs", "get_run", "start_run", "stop_run", "resume_run",
    "remove_run", "create_run_dir", "resolve_run_path", "spawn_training", "ConfigError",
]
