"""events.jsonl: one JSON object per line, appended and flushed as it happens (schema version 1).

The writer emits each event with a single ``write`` on an ``O_APPEND`` descriptor, so a reader
never sees a torn line unless the writer dies mid-write; the tail reader only returns complete
lines and keeps the partial rest for the next poll. Importing this module is cheap (no numpy).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

VERSION = 1


@dataclass(frozen=True)
class EventType:
    """One event type of the schema: its required fields and the optional ones, with a line of help."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    help: str = ""
    one_of: tuple[str, ...] = ()   # at least one of these is required (a text `val` has ppl, a series one mse)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.one_of + self.optional


# The schema of version 1, written once: the trainer's writer checks against it, the docs table
# is generated from it, readers (runs show, the CLI display, the app's RunState) use its names.
# Every event also has "v", "type" and "time" (unix seconds). Readers ignore unknown types/fields.
SCHEMA: dict[str, EventType] = {t.name: t for t in (
    EventType("start", ("run", "pid", "step", "total_steps"),
              ("steps_per_epoch", "train_tokens", "val_tokens", "vocab_size", "config", "resumed", "epoch",
               "kind", "train_windows", "val_windows", "num_params"),
              "training (re)started at `step` of `total_steps`; `config` is the whole RunConfig (a series "
              "run: `kind` series, its SeriesRunConfig, windows instead of tokens)"),
    EventType("compile", ("state",), ("seconds", "kernel", "count"),
              "kernels compiling: state start|kernel|done; each `kernel` event names one compiled "
              "kernel (its `count` so far); seconds of that kernel, or in all on done"),
    EventType("progress", ("step",), ("epoch", "tokens_per_s", "loss", "ppl", "lr", "grad_norm",
                                      "clipped", "clip_rate", "mse", "windows_per_s"),
              "mean loss/ppl (series: minibatch `mse`) since the last progress; grad_norm before clipping; "
              "clip_rate over 100 steps"),
    EventType("val", ("step",), ("epoch", "loss", "best_ppl", "tokens", "bits_per_char", "best_mse", "train_mse", "windows"),
              "held-out perplexity over `tokens` tokens (periodic ones read at most 2M); a series run: 1-step "
              "`mse` over `windows` validation windows", one_of=("ppl", "mse")),
    EventType("epoch", ("step", "epoch"), ("train_loss", "train_ppl", "seconds", "lr", "train_mse", "val_mse"),
              "an epoch completed: token-weighted train loss/ppl; a series run: 1-step train/val MSE after it"),
    EventType("kstep", ("step", "mse"), ("train_mse", "checkpoint"),
              "a series run's k-step MSE of its `checkpoint` (best|latest): {k: MSE} on the validation "
              "(`mse`) and training (`train_mse`) targets"),
    EventType("grad_profile", ("step", "norms"), ("bptt",), "‖∂L/∂h_t‖ for t = 1..T of the top layer"),
    EventType("sample", ("step", "text"), ("prompt", "temperature"), "a training-time sample"),
    EventType("checkpoint", ("step", "kind"), ("path",), "a checkpoint (latest|best) was written"),
    EventType("baseline", ("order", "val_ppl"), ("train_tokens", "val_tokens"),
              "the n-gram baseline's validation perplexity (a reference line)"),
    EventType("notice", ("message",), ("step", "kind"),
              "something the user should know that is not an error (`kind` e.g. resumed_from_best, early_stop)"),
    EventType("restart", ("step",), ("reason", "previous_step"),
              "the run starts over from step 0 (`runs resume --fresh`), after reaching `previous_step`"),
    EventType("error", ("message",), (), "a one-line error; an `end` with status failed follows"),
    EventType("end", ("step", "reason", "status"), ("train_ppl", "train_mse", "val_mse"),
              "reason finished|early-stopped|interrupted|SIGTERM|SIGHUP|diverged|error|run dir gone|pruned|"
              "stop requested; "
              "status finished|stopped|failed"),
)}
TYPES = tuple(SCHEMA)


def check_event(type_: str, fields: dict[str, Any]) -> None:
    """ValueError unless ``fields`` fit the schema of ``type_`` (a writer's bug, not user input)."""
    spec = SCHEMA.get(type_)
    if spec is None:
        raise ValueError(f"unknown event type {type_!r}")
    missing = [f for f in spec.required if f not in fields]
    if spec.one_of and not any(f in fields for f in spec.one_of):
        missing.append(" or ".join(spec.one_of))
    unknown = [f for f in fields if f not in spec.fields]
    if missing or unknown:
        raise ValueError(f"event {type_!r}: missing {missing}, unknown {unknown}")


def schema_markdown() -> str:
    """The schema as the Markdown table of docs/architecture.md (a test keeps the doc current)."""
    rows = ["| type | fields (optional in italics) | meaning |", "|---|---|---|"]
    for t in SCHEMA.values():
        names = [f"`{f}`" for f in t.required]
        if t.one_of:
            names.append(" or ".join(f"`{f}`" for f in t.one_of))
        names += [f"*`{f}`*" for f in t.optional]
        rows.append(f"| `{t.name}` | {', '.join(names)} | {t.help} |")
    return "\n".join(rows)


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, NaN/Inf floats to null (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalar or array
    if tolist is not None:
        return _jsonable(tolist())
    raise TypeError(f"cannot write {type(value).__name__} into an event")


def encode_event(type_: str, fields: dict[str, Any], now: float | None = None) -> bytes:
    """One event as a JSON line (bytes, newline-terminated)."""
    event = {"v": VERSION, "type": type_, "time": time.time() if now is None else now}
    event.update(_jsonable(fields))
    return (json.dumps(event, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


class EventWriter:
    """Appends events to ``path``; each ``emit`` is one flushed line. Listeners see every event."""

    def __init__(self, path: str | os.PathLike, listeners=(), strict: bool = False):
        self.path = Path(path)
        self.listeners = list(listeners)
        self.strict = strict  # check every event against SCHEMA (the trainer's writer does)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, type_: str, *, sync: bool = False, **fields: Any) -> dict:
        """Append one event and return it as a dict; ``sync`` also fsyncs (used for ``end``)."""
        if self.strict:
            check_event(type_, fields)
        line = encode_event(type_, fields)
        self._write(line, sync)
        event = json.loads(line)
        for listener in self.listeners:
            listener(event)
        return event

    def append(self, event: dict, sync: bool = False) -> None:
        """Append an event made elsewhere as it is, its time kept (a sweep copying a remote
        trial's events into the local run directory). Listeners are not called."""
        self._write((json.dumps(_jsonable(event), ensure_ascii=False, allow_nan=False) + "\n")
                    .encode("utf-8"), sync)

    def _write(self, line: bytes, sync: bool) -> None:
        """One ``write`` per line on the O_APPEND descriptor (a reader never sees a torn line)."""
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]
        if sync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except OSError:
            pass


class EventTail:
    """Incremental reader: each ``poll()`` returns the complete lines added since the last poll.

    A missing file reads as empty; a file that shrank (removed and recreated) is read again from
    the start; a malformed complete line is skipped (readers must survive a crash mid-write).
    """

    def __init__(self, path: str | os.PathLike, offset: int = 0):
        self.path = Path(path)
        self.offset = offset
        self._partial = b""

    def poll(self, max_bytes: int | None = None) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # truncated or replaced: start again
                    self.offset, self._partial = 0, b""
                f.seek(self.offset)
                chunk = f.read() if max_bytes is None else f.read(max_bytes)
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when data ended with a newline
        return [e for e in map(_parse, lines) if e is not None]


def _parse(line: bytes) -> dict | None:
    line = line.strip()
    if not line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "type" in event else None


def read_events(path: str | os.PathLike) -> list[dict]:
    """Every complete event in the file (empty if it does not exist)."""
    return EventTail(path).poll()


def iter_events_reversed(path: str | os.PathLike, block: int = 1 << 16) -> Iterator[dict]:
    """Complete events from the end of the file backwards, reading only as much as needed."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        pos = os.fstat(f.fileno()).st_size
        carry = b""  # the start of a line whose beginning lies in the next (earlier) block
        skip_partial = True  # drop an unterminated last line (a writer mid-write)
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            data = f.read(pos - start) + carry
            pos = start
            if skip_partial:
                cut = data.rfind(b"\n")
                if cut < 0:
                    continue  # all of this block belongs to the unterminated line
                data, skip_partial = data[: cut + 1], False
            lines = data.split(b"\n")
            carry = lines.pop(0) if pos > 0 else b""
            for line in reversed(lines):
                event = _parse(line)
                if event is not None:
                    yield event
