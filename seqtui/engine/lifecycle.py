"""What every training process of a run shares, whatever it trains: the event log, signals, the
pid file, the watch on its run directory, and turning every way of ending into one `end` event.

A subclass implements ``_train() -> status`` and may override ``_session()`` (a context around
it), ``_step()`` and ``_end_fields()`` (what the `end` event carries).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from seqtui.engine.events import EventWriter
from seqtui.engine.rundir import RunDir, unwritable
from seqtui.errors import SeqtuiError, TrainingDiverged

SIGNAL_REASONS = {signal.SIGINT: "interrupted", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
SIGNALS_BY_REASON = {reason: sig for sig, reason in SIGNAL_REASONS.items()}
DIR_CHECK_SECONDS = 2.0   # how often training checks that its run directory still exists
DIR_GONE = "run dir gone"
Listener = Callable[[dict], None]


def exit_code(stop_reason: str | None) -> int:
    """A trainer process's exit code: 0 finished, 128 + signal number when a signal stopped it."""
    sig = SIGNALS_BY_REASON.get(stop_reason or "")
    return 0 if sig is None else 128 + int(sig)


class RunProcess:
    """The shell of one run's training process (see the module docstring)."""

    def __init__(self, run_dir, listeners: tuple[Listener, ...] = (), detached: bool = False):
        self.detached = detached  # a detached worker ignores SIGHUP: it has no terminal to lose
        self.rundir = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
        self.run_dir = self.rundir.path
        self.listeners = tuple(listeners)
        self.stop_reason: str | None = None
        self.events: EventWriter | None = None
        self._ended = False
        self._identity = self.rundir.identity()
        self._next_dir_check = 0.0

    # -- hooks ------------------------------------------------------------------------------------
    def _train(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _session(self):
        return contextlib.nullcontext()

    def _step(self) -> int:
        return 0

    def _end_fields(self) -> dict[str, Any]:
        return {}

    # -- control ------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "interrupted") -> None:
        """Ask the loop to checkpoint and end at the next step boundary (thread/signal safe)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def _on_signal(self, signum, frame) -> None:
        self.request_stop(SIGNAL_REASONS.get(signum, "interrupted"))

    def _install_signals(self) -> dict:
        """SIGINT, SIGTERM and SIGHUP checkpoint and stop; a detached worker ignores SIGHUP (it
        runs in its own session, so no terminal hangup reaches it, and a stray one must not stop it)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in SIGNAL_REASONS:
            ignore = sig == signal.SIGHUP and self.detached
            old[sig] = signal.signal(sig, signal.SIG_IGN if ignore else self._on_signal)
        return old

    def _check_run_dir(self, now: bool = False) -> None:
        """Stop (without writing anything more) if the run directory was deleted or replaced."""
        t = time.monotonic()
        if not now and t < self._next_dir_check:
            return
        self._next_dir_check = t + DIR_CHECK_SECONDS
        if not self.rundir.still_ours(self._identity):
            self.request_stop(DIR_GONE)

    # -- entry --------------------------------------------------------------------------------------
    def run(self) -> str:
        """Train to the end or a stop; returns the status. Every failure ends with an `end` event."""
        try:
            self.events = self.rundir.event_writer(self.listeners)
        except OSError as exc:
            raise unwritable(self.run_dir, exc) from None
        old_handlers = self._install_signals()
        self.rundir.write_pid()
        try:
            with self._session():
                return self._train()
        except TrainingDiverged as exc:
            if not self._ended:
                self._fail(str(exc), "diverged")
            raise
        except SeqtuiError as exc:
            self._fail(str(exc), "error")
            raise
        except KeyboardInterrupt:  # a second Ctrl-C while saving, or during data loading
            self._end("interrupted", "stopped")
            raise
        except OSError as exc:  # the disk refused a write (events, config)
            error = unwritable(self.run_dir, exc)
            self._fail(str(error), "error")
            raise error from None
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}".splitlines()[0], "error")
            raise
        finally:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            self.rundir.clear_pid()
            self.events.close()

    # -- events -------------------------------------------------------------------------------------
    def _emit(self, type_: str, **fields: Any) -> dict:
        assert self.events is not None
        event = self.events.emit(type_, **fields)
        if type_ == "end":
            self._ended = True
        return event

    def _try_emit(self, type_: str, **fields: Any) -> None:
        """Emit, but a disk that refuses even this must not mask the original error."""
        try:
            self._emit(type_, **fields)
        except OSError:
            pass

    def _end(self, reason: str, status: str, **fields: Any) -> None:
        """The one `end` event (fsynced), with the subclass's fields."""
        self._try_emit("end", sync=True, step=self._step(), reason=reason, status=status,
                       **{**self._end_fields(), **fields})

    def _fail(self, message: str, reason: str) -> None:
        self._try_emit("error", message=message)
        self._end(reason, "failed")
