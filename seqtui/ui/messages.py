"""Messages that worker threads post to the app (``post_message`` is thread-safe).

Workers only call the engine and post these; handlers on the UI thread fold them into state.
Progress-like messages override ``can_replace`` so a newer one replaces a queued older one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message


class RunEvents(Message):
    """New complete lines from a tailed run's events.jsonl."""

    def __init__(self, path: Path, events: list[dict], backlog: bool = False) -> None:
        super().__init__()
        self.path = path
        self.events = events
        self.backlog = backlog  # True while reading what was written before the app attached


class RunStatus(Message):
    """The engine's view of a run (status from pid liveness + the last `end` event)."""

    def __init__(self, info: Any) -> None:
        super().__init__()
        self.info = info

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunStatus) and message.info.path == self.info.path


class RunGone(Message):
    """The tailed run's directory disappeared (deleted while the app followed it)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__()
        self.path = path
        self.reason = reason


class RunsListed(Message):
    """A fresh ``list_runs()`` snapshot for the Runs and Generate screens."""

    def __init__(self, runs: list, bpc: dict | None = None) -> None:
        super().__init__()
        self.runs = runs
        self.bpc = bpc or {}   # run path -> best validation bits per character

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsListed)


class GenerationUpdate(Message):
    """The continuation so far (posted ~10×/s, not per token) and, when ``done``, the end."""

    def __init__(self, serial: int, text: str, tokens: int, seconds: float, done: bool = False,
                 unknown: list[str] | None = None, error: str | None = None) -> None:
        super().__init__()
        self.serial = serial      # which request this answers; stale ones are ignored
        self.text = text
        self.tokens = tokens
        self.seconds = seconds
        self.done = done
        self.unknown = unknown or []
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return (isinstance(message, GenerationUpdate) and message.serial == self.serial
                and not message.done)


class CorpusStats(Message):
    """Statistics of one corpus computed in a worker (or the error that stopped them)."""

    def __init__(self, name: str, stats: dict | None, error: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.stats = stats
        self.error = error


# -- requests: screens post these, the app handles them (screens never call engine actions) ----
class StartRun(Message):
    """Start a new run with this validated config (and optional run name)."""

    def __init__(self, config: dict, name: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.name = name


class RunRequest(Message):
    """A request about one run directory."""

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)


class StopRun(RunRequest):
    """Stop the run (SIGTERM: it checkpoints and exits)."""


class ResumeRun(RunRequest):
    """Continue the run from its latest checkpoint."""


class RemoveRun(RunRequest):
    """Delete the run directory (the screen asked for confirmation)."""


class AttachRun(RunRequest):
    """Follow this run and show it live on the Train screen."""

    def __init__(self, path: Path | str, info: Any = None) -> None:
        super().__init__(path)
        self.info = info


class RunsChanged(Message, bubble=False):
    """The app has a new runs list (``app.runs``); sent to the current screen."""


# -- the Series screen ---------------------------------------------------------------------------
class StartSeriesRun(Message):
    """Start a series run with this SeriesRunConfig dict (the app answers on the Series screen)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config


class SeriesRunFailed(Message, bubble=False):
    """start_run refused a series run: its one-line message (sent to the Series screen)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class SeriesEvents(Message):
    """New events of the series run the Series screen follows."""

    def __init__(self, path: Path, events: list[dict]) -> None:
        super().__init__()
        self.path = path
        self.events = events


class SeriesData(Message):
    """A series run's predictions (``read_predictions``), or only its data while it trains, or an error."""

    def __init__(self, path: Path, predictions: dict | None = None, values: Any = None, time: Any = None,
                 error: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.predictions = predictions
        self.values = values
        self.time = time
        self.error = error


class TauSweepDone(Message):
    """``tau_sweep`` rows for a source (or the error that stopped it)."""

    def __init__(self, source: str, rows: list[dict] | None, error: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.rows = rows
        self.error = error


class MemoScored(Message):
    """Memorization figures of one sample (``MemoScore`` or None when the run has no index)."""

    def __init__(self, key: Any, score: Any, error: str | None = None) -> None:
        super().__init__()
        self.key = key        # what was scored: the screen compares it with what it shows
        self.score = score
        self.error = error
