"""A run directory as one object: the only module that spells a run directory's file names.

Layout::

    .seqtui-run        marker: proves the folder is a seqtui run (written first, exclusively)
    config.json        RunConfig, whole (fingerprint/vocab_size filled in when training starts)
    events.jsonl       one JSON event per line (seqtui.engine.events)
    pid                pid of the training process while it runs
    train.log          stdout/stderr of a detached run
    checkpoints/       latest.safetensors + latest.json, best.safetensors + best.json
    predictions.safetensors   a series run's evaluation: the series, 1-step and k-step predictions
                       (float64 arrays) and MSE per k (JSON in the header); written when it ends
                       and by `seqtui series predict`

Kinds: a text run's config has no ``kind`` (or ``"kind": "text"``) and is a RunConfig; a series
run's config is ``{"kind": "series", ...SeriesRunConfig fields}``. ``config()`` returns the right
one, ``kind()`` says which without parsing it.

Status: a live training pid → ``running``; otherwise the last ``end`` event's status
(``finished``/``stopped``/``failed``) when it follows the last ``start``; a run whose process
died without an ``end`` event (kill -9, power loss) is ``stopped`` and resumable.
Importing this module is cheap (no numpy, no numba): the app polls it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from seqtui.engine.events import EventTail, EventWriter, iter_events_reversed, read_events
from seqtui.errors import CheckpointError, RunError
from seqtui.files import KiB, MiB, atomic_write, read_text_bounded

MARKER = ".seqtui-run"
CONFIG = "config.json"
EVENTS = "events.jsonl"
PID = "pid"
LOG = "train.log"
CHECKPOINTS = "checkpoints"
PREDICTIONS = "predictions.safetensors"
STOP_REQUEST = "stop.request"  # `runs stop` of a sweep trial: its sweep's client stops that trial
RUN_KINDS = ("text", "series")
PREDICTIONS_FORMAT = 1
MAX_PREDICTIONS_HEADER = 64 * MiB
KINDS = ("best", "latest")               # best_or_latest order
STATUSES = ("running", "stopped", "finished", "failed")
MAX_META_BYTES = 64 * MiB                # a checkpoint's JSON mirror (the vocabulary of a word model)
_LEGACY = {CONFIG, EVENTS, PID, LOG, CHECKPOINTS}  # what a v0.1 run dir (no marker) may hold
_CHECKPOINT_FILE_SUFFIXES = (".safetensors", ".json")


def unwritable(path, exc: OSError) -> RunError:
    """The one message for a run directory the disk refused to write to."""
    return RunError(f"cannot write to run dir {path}: {exc.strerror or exc}")


@dataclass
class RunInfo:
    """What a run directory says about a run (a snapshot; read it again to refresh)."""

    name: str
    path: Path
    status: str                       # "running" | "stopped" | "finished" | "failed"
    config: dict[str, Any]            # the config file as written ({} if unreadable)
    last_step: int = 0
    best_val_ppl: float | None = None
    pid: int | None = None            # the live training process, else None
    total_steps: int | None = None    # from the last `start` event
    last_ppl: float | None = None     # train perplexity of the last `progress` event
    reason: str | None = None         # `end` reason, or the last `error` message when failed
    created: float | None = None      # mtime of the config file (unix seconds)
    kind: str = "text"                # "text" | "series" (the config's "kind")
    best_val_mse: float | None = None  # series: best 1-step validation MSE (original scale)
    last_mse: float | None = None      # series: train MSE of the last `progress` or `epoch` event

    @property
    def dir(self) -> "RunDir":
        return RunDir(self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": str(self.path), "status": self.status,
            "last_step": self.last_step, "total_steps": self.total_steps,
            "best_val_ppl": self.best_val_ppl, "last_ppl": self.last_ppl, "pid": self.pid,
            "reason": self.reason, "created": self.created, "config": self.config,
            "kind": self.kind, "best_val_mse": self.best_val_mse, "last_mse": self.last_mse,
        }


class RunDir:
    """One run's directory: its files, its config, events, checkpoints, pid and status."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __fspath__(self) -> str:  # a RunDir is accepted wherever a path is
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    # -- paths ------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS

    @property
    def log_path(self) -> Path:
        return self.path / LOG

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def predictions_path(self) -> Path:
        """A series run's evaluation (see ``write_predictions``)."""
        return self.path / PREDICTIONS

    def checkpoint(self, kind: str) -> Path:
        """The safetensors file of a checkpoint kind (it may not exist)."""
        if kind not in KINDS:
            raise CheckpointError(f"unknown checkpoint kind {kind!r} (best or latest)")
        return self.checkpoints_dir / f"{kind}.safetensors"

    def checkpoint_meta_path(self, kind: str) -> Path:
        """The JSON mirror of a checkpoint's metadata, for people and the app."""
        return self.checkpoint(kind).with_suffix(".json")

    def has_checkpoint(self, kind: str | None = None) -> bool:
        kinds = KINDS if kind is None else (kind,)
        return any(self.checkpoint(k).is_file() for k in kinds)

    def best_or_latest(self, kind: str | None = None) -> Path:
        """The checkpoint to load for generation/evaluation: ``kind``, else best, else latest."""
        if kind is not None:
            path = self.checkpoint(kind)
            if not os.path.lexists(path):
                raise CheckpointError(f"run {self.name!r} has no {kind} checkpoint")
            return path
        for k in KINDS:
            path = self.checkpoint(k)
            if os.path.lexists(path):  # a bad link is reported by the loader, truly
                return path
        raise CheckpointError(f"run {self.name!r} has no checkpoint yet")

    def checkpoint_meta(self, kind: str) -> dict[str, Any] | None:
        """The JSON mirror of a checkpoint's metadata, or None if missing or unreadable."""
        try:
            text = read_text_bounded(self.checkpoint_meta_path(kind), "checkpoint metadata",
                                     MAX_META_BYTES, CheckpointError)
            meta = json.loads(text)
        except (CheckpointError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    # -- what it is ---------------------------------------------------------------------------------
    def is_run(self) -> bool:
        """A directory with the marker, or (a v0.1 run) a config or event log."""
        p = self.path
        return p.is_dir() and any((p / n).exists() for n in (MARKER, CONFIG, EVENTS))

    def verify_owned(self) -> None:
        """RunError unless this is provably a seqtui run directory, safe to delete.

        Not a symlink; either our marker, or (v0.1, before markers) nothing but run files."""
        p = self.path
        try:
            st = os.lstat(p)
        except OSError:
            raise RunError(f"{p} does not exist") from None
        if stat.S_ISLNK(st.st_mode):
            raise RunError(f"{p} is a symlink; refusing to delete through it")
        if not stat.S_ISDIR(st.st_mode):
            raise RunError(f"{p} is not a directory")
        if self._has_marker():
            return
        names = {e.name for e in os.scandir(p)}
        strangers = sorted(n for n in names if n not in _LEGACY and not n.startswith(f".{CONFIG}."))
        if CONFIG not in names or strangers:
            extra = f" (it holds {strangers[0]!r})" if strangers else ""
            raise RunError(f"{p} is not a seqtui run directory{extra}; refusing to delete it")
        config = self.config_dict()
        if (p / CONFIG).is_symlink() or not {"corpus", "cell"} <= set(config):
            raise RunError(f"{p / CONFIG} is not a seqtui run config; refusing to delete {p}")
        ck = p / CHECKPOINTS
        if ck.is_symlink() or (ck.is_dir() and any(not e.name.lstrip(".").startswith(KINDS)
                                                  for e in os.scandir(ck))):
            raise RunError(f"{ck} holds files that are not checkpoints; refusing to delete it")

    def _has_marker(self) -> bool:
        """Our marker: a small regular file (not a link) holding what ``claim`` writes."""
        marker = self.path / MARKER
        try:
            st = os.lstat(marker)
            if not stat.S_ISREG(st.st_mode) or st.st_size > KiB:
                return False
            return json.loads(marker.read_text(encoding="utf-8")).get("seqtui_run") == 1
        except (OSError, ValueError, AttributeError):
            return False

    def registered_link(self) -> Path | None:
        """The symlink under the runs folder that lists this run (``train --run-dir``), if any."""
        if not self._has_marker():
            return None
        try:
            link = json.loads((self.path / MARKER).read_text(encoding="utf-8")).get("link")
        except (OSError, ValueError):
            return None
        return Path(link) if isinstance(link, str) else None

    def register_link(self, link: Path) -> None:
        """Record in the marker that ``link`` (a symlink to this directory) lists the run."""
        atomic_write(self.path / MARKER, json.dumps({"seqtui_run": 1, "link": str(link)}) + "\n")

    def is_link_of_ours(self, link: Path) -> bool:
        """``link`` is the symlink seqtui made to list this run (and still points here)."""
        try:
            registered = self.registered_link()
            return (registered is not None and os.path.islink(link)
                    and _same_entry(registered, Path(link))
                    and os.path.realpath(link) == os.path.realpath(self.path))
        except OSError:
            return False

    def identity(self) -> tuple[int, int] | None:
        """(device, inode) of the directory, or None if it is gone."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def still_ours(self, identity: tuple[int, int] | None) -> bool:
        """True while the directory exists, is the same one, and still has its config."""
        return identity is not None and self.identity() == identity and self.config_path.exists()

    # -- creating -----------------------------------------------------------------------------------
    def claim(self, config: dict[str, Any], taken: str) -> None:
        """Make an empty directory this run: the marker exclusively (O_EXCL), then the config."""
        p = self.path
        if any(os.scandir(p)):
            raise RunError(taken)
        try:
            fd = os.open(p / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RunError(taken) from None
        except OSError as exc:
            raise unwritable(p, exc) from None
        with os.fdopen(fd, "w") as f:
            f.write('{"seqtui_run": 1}\n')
        self.write_config(config)

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the config file atomically."""
        try:
            atomic_write(self.config_path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise unwritable(self.path, exc) from None

    # -- reading ------------------------------------------------------------------------------------
    def config(self):
        """The run's config: a RunConfig for a text run, a ``seqtui.models.series.SeriesRunConfig``
        for a series run (ConfigError if missing, unreadable or malformed)."""
        from seqtui.engine.config import MAX_CONFIG_BYTES, RunConfig
        from seqtui.errors import ConfigError

        text = read_text_bounded(self.config_path, "config", MAX_CONFIG_BYTES, ConfigError)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"config {self.config_path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("a run config must be a JSON object")
        data = dict(data)
        kind = data.pop("kind", "text")
        if kind == "series":
            from seqtui.models.series import SeriesRunConfig

            return SeriesRunConfig.from_dict(data)
        if kind != "text":
            raise ConfigError(f"config {self.config_path} has an unknown run kind {kind!r}")
        return RunConfig.from_dict(data)

    def kind(self) -> str:
        """"text" or "series", from the config file (cheap: no config object is built)."""
        kind = self.config_dict().get("kind", "text")
        return kind if kind in RUN_KINDS else "text"

    def config_dict(self) -> dict[str, Any]:
        """The config file as a plain dict for listings ({} if unreadable)."""
        try:
            data = json.loads(read_text_bounded(self.config_path, "config", 256 * KiB, RunError))
        except (RunError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # -- a series run's predictions --------------------------------------------------------------------
    def write_predictions(self, arrays: dict[str, Any], meta: dict[str, Any]) -> Path:
        """Replace the predictions file atomically: float arrays by name (``values``, ``one_step``,
        ``kstep.<k>``, optional ``time``) and JSON metadata (MSEs) in the safetensors header."""
        import numpy as np
        from safetensors.numpy import save as st_save

        header = dict(meta, format=PREDICTIONS_FORMAT)
        data = st_save({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()},
                       metadata={"seqtui": json.dumps(header, ensure_ascii=False, allow_nan=False)})
        try:
            atomic_write(self.predictions_path, data)
        except OSError as exc:
            raise unwritable(self.path, exc) from None
        return self.predictions_path

    def predictions_meta(self) -> dict[str, Any] | None:
        """The predictions' metadata (MSE per k, boundary, ...) without the arrays; None if absent
        or unreadable. Cheap: reads only the header, imports no numpy."""
        try:
            with open(self.predictions_path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    return None
                n = int.from_bytes(head, "little")
                if n > MAX_PREDICTIONS_HEADER:
                    return None
                header = json.loads(f.read(n))
            meta = json.loads(header["__metadata__"]["seqtui"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return meta if isinstance(meta, dict) and meta.get("format") == PREDICTIONS_FORMAT else None

    def read_predictions(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(arrays by name as float64 numpy arrays, metadata); CheckpointError if missing or corrupt."""
        from safetensors.numpy import load as st_load

        meta = self.predictions_meta()
        try:
            data = self.predictions_path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"run {self.name!r} has no predictions yet "
                                  f"(`seqtui series predict {self.name}` writes them)") from None
        except OSError as exc:
            raise CheckpointError(f"cannot read {self.predictions_path}: {exc.strerror or exc}") from None
        if meta is None:
            raise CheckpointError(f"{self.predictions_path} is corrupt or truncated")
        try:
            arrays = st_load(data)
        except Exception:  # safetensors raises its own error type for every malformation
            raise CheckpointError(f"{self.predictions_path} is corrupt or truncated") from None
        return arrays, meta

    def events(self) -> list[dict]:
        return read_events(self.events_path)

    def events_reversed(self) -> Iterator[dict]:
        return iter_events_reversed(self.events_path)

    def tail(self, offset: int = 0) -> EventTail:
        return EventTail(self.events_path, offset)

    def event_writer(self, listeners=()) -> EventWriter:
        """The run's event log, every event checked against the schema."""
        return EventWriter(self.events_path, listeners, strict=True)

    def append_event(self, type_: str, **fields: Any) -> dict:
        """One event, appended (for writers other than the trainer: a sweep, a test)."""
        with self.event_writer() as w:
            return w.emit(type_, **fields)

    def progress_since_restart(self) -> int:
        """The highest step the events record since the last ``restart`` event (0: none)."""
        reached = 0
        try:
            for event in self.events_reversed():
                if event.get("type") == "restart":
                    break
                step = event.get("step")
                if isinstance(step, int) and step > reached:
                    reached = step
        except OSError:
            return 0
        return reached

    def open_log(self):
        try:
            return open(self.log_path, "ab")
        except OSError as exc:
            raise unwritable(self.path, exc) from None

    # -- the training process -----------------------------------------------------------------------
    def read_pid(self) -> int | None:
        try:
            text = (self.path / PID).read_text().strip()
            return int(text) if text else None
        except (OSError, ValueError):
            return None

    def write_pid(self, pid: int | None = None) -> None:
        """Record the training pid (atomically: a reader never sees a half-written number)."""
        atomic_write(self.path / PID, f"{pid or os.getpid()}\n")

    def clear_pid(self) -> None:
        """Remove the pid file if it names this process (called on a clean exit)."""
        if self.read_pid() == os.getpid():
            try:
                (self.path / PID).unlink()
            except OSError:
                pass

    def request_stop(self) -> None:
        """Ask the process that trains this run by proxy (a sweep's client) to stop it alone."""
        try:
            atomic_write(self.path / STOP_REQUEST, f"{os.getpid()}\n")
        except OSError as exc:
            raise unwritable(self.path, exc) from None

    def take_stop_request(self) -> bool:
        """True (once) if a stop was requested: the request is removed as it is read."""
        try:
            (self.path / STOP_REQUEST).unlink()
            return True
        except OSError:
            return False

    def info(self) -> RunInfo:
        """Status and summary, from the config, the pid and the events after the last start."""
        from seqtui.engine.process import pid_is_training

        config = self.config_dict()
        try:
            created = self.config_path.stat().st_mtime
        except OSError:
            created = None
        pid = self.read_pid()
        alive = pid is not None and pid_is_training(pid)
        summary = _summarize(self.events_reversed())
        end = summary["end"]
        if alive:
            status = "running"
        elif end is not None:
            status = end.get("status") or "stopped"
            if status not in STATUSES:
                status = "failed"
        else:
            status = "stopped"
        reason = None
        if not alive and end is not None:
            reason = end.get("reason")
            if status == "failed" and summary["error"]:
                reason = summary["error"]
        kind = config.get("kind", "text")
        kind = kind if kind in RUN_KINDS else "text"
        best = summary["best_val_ppl"]
        best_mse = summary["best_val_mse"]
        if kind == "text" and best is None:
            best = (self.checkpoint_meta("best") or {}).get("best_val_ppl")
            best = float(best) if isinstance(best, (int, float)) else None
        if kind == "series" and best_mse is None:
            best_mse = (self.checkpoint_meta("best") or {}).get("best_val_mse")
            best_mse = float(best_mse) if isinstance(best_mse, (int, float)) else None
        return RunInfo(name=self.name, path=self.path, status=status, config=config,
                       last_step=summary["last_step"], best_val_ppl=best,
                       pid=pid if alive else None, total_steps=summary["total_steps"],
                       last_ppl=summary["last_ppl"], reason=reason, created=created, kind=kind,
                       best_val_mse=best_mse, last_mse=summary["last_mse"])

    # -- removing -----------------------------------------------------------------------------------
    def remove(self) -> None:
        """Delete the directory after proving it is a run (never follows a symlink out of it)."""
        self.verify_owned()
        link = self.registered_link()
        ours = link is not None and self.is_link_of_ours(link)
        try:
            shutil.rmtree(self.path)
        except OSError as exc:
            raise RunError(f"cannot remove {self.path}: {exc.strerror or exc}") from None
        if ours:
            try:
                os.unlink(link)
            except OSError:
                pass


def _same_entry(a: Path, b: Path) -> bool:
    """Two paths name the same directory entry (their parents resolved, not the entries)."""
    return a.name == b.name and os.path.realpath(a.parent) == os.path.realpath(b.parent)


def _summarize(events: Iterator[dict]) -> dict[str, Any]:
    """Scan events backwards until the last `start`: step, end, best val ppl, last train ppl."""
    out: dict[str, Any] = {"last_step": 0, "end": None, "best_val_ppl": None, "last_ppl": None,
                           "total_steps": None, "error": None, "best_val_mse": None, "last_mse": None}
    step_seen = False
    for event in events:
        kind = event.get("type")
        if not step_seen and isinstance(event.get("step"), int):
            out["last_step"], step_seen = event["step"], True
        if kind == "end" and out["end"] is None:
            out["end"] = event
        elif kind == "error" and out["error"] is None:
            out["error"] = event.get("message")
        elif kind == "progress":
            if out["last_ppl"] is None:
                out["last_ppl"] = event.get("ppl")
            if out["last_mse"] is None:
                out["last_mse"] = event.get("mse")
        elif kind == "epoch" and out["last_mse"] is None:
            out["last_mse"] = event.get("train_mse")  # a series run: the newest train MSE
        elif kind == "val":
            if out["best_val_ppl"] is None:
                out["best_val_ppl"] = event.get("best_ppl")
            if out["best_val_mse"] is None:
                out["best_val_mse"] = event.get("best_mse")
        elif kind == "start":
            out["total_steps"] = event.get("total_steps")
            break
    return out
