"""The Textual app: screens as modes, the attached run's event tail, and the engine calls.

The app never trains in its own process: it starts runs with ``seqtui.engine.runs.start_run``
(a detached subprocess) and tails their ``events.jsonl`` in a thread worker, so quitting the
app or losing SSH never stops training and reopening re-attaches. Every engine call that can
take time (listing runs, stopping, loading a model) runs in a thread worker; errors become
notifications and the app keeps running. ``make_app`` is shared by the CLI and the tests.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.worker import Worker, get_current_worker

from seqtui.errors import SeqtuiError
from seqtui.ui.messages import (AttachRun, RemoveRun, ResumeRun, RunEvents, RunGone, RunsChanged, RunsListed,
                                RunStatus, SeriesRunFailed, StartRun, StartSeriesRun, StopRun)
from seqtui.ui.screens.base import report_worker_error
from seqtui.ui.screen_list import SCREENS, css_paths, modes
from seqtui.ui.screens.generate import load_generator
from seqtui.ui.screens.help import HelpScreen
from seqtui.ui.screens.too_small import TooSmallScreen, too_small
from seqtui.ui.screens.train import TrainScreen
from seqtui.ui.memo import MemoIndexes, load_memo_index
from seqtui.ui.run_state import BestBpc, RunState

CRASH_LOG = "seqtui-crash.log"  # under the system temp dir: the traceback of an unexpected error


def _guard_command_list() -> None:
    """Textual 8.2.8: PgUp/PgDn in the palette while its list is being refilled (keys typed in a
    burst) raises ``KeyError`` from ``OptionList._move_page`` (lines not measured yet) and ends
    the app. Ignore that page move; the next key works normally."""
    original = CommandList._move_page
    if getattr(original, "_seqtui_guard", False):
        return

    def _move_page(self, direction):  # type: ignore[no-untyped-def]
        try:
            original(self, direction)
        except (KeyError, IndexError):
            pass

    _move_page._seqtui_guard = True  # type: ignore[attr-defined]
    CommandList._move_page = _move_page  # type: ignore[method-assign]


_guard_command_list()


class SeqtuiPalette(CommandPalette):
    """Textual's palette, except that closing it while it still gathers hits (a key burst:
    ctrl+p, letters, esc or an F-key) does not end the app with ``NoMatches('CommandList')``."""

    @work(exclusive=True, group=CommandPalette._GATHER_COMMANDS_GROUP)
    async def _gather_commands(self, search_value: str) -> None:
        try:
            await CommandPalette._gather_commands.__wrapped__(self, search_value)  # type: ignore[attr-defined]
        except NoMatches:
            pass  # its list is gone (closed, or left behind on another mode's stack)

POLL_SECONDS = 0.5      # events.jsonl tail
STATUS_SECONDS = 2.0    # pid liveness / status of the attached run
BACKLOG_BYTES = 4 << 20  # read a long run's history in slices, one message each


class SeqtuiCommands(Provider):
    """Command-palette entries for the main actions (ctrl+p)."""

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app: SeqtuiApp = self.app  # type: ignore[assignment]
        cmds = [(f"Go to {e.label}", partial(app.action_goto, e.mode), f"{e.fkey.upper()} or {e.letter}")
                for e in SCREENS]
        cmds += [
            ("New training run", app.action_new_run, "open the Train form"),
            ("Stop the attached run", app.stop_attached, "SIGTERM: it checkpoints and exits"),
            ("Resume the attached run", app.resume_attached, "continue from its latest checkpoint"),
            ("Attach to the newest run", app.attach_newest, "re-read the runs directory"),
            ("Help: keys and what the screens show", app.action_help, "F1 or ?"),
        ]
        return cmds

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class SeqtuiApp(App):
    """Corpora → Train → Gradients → Runs → Generate, one mode (screen stack) each."""

    TITLE = "seqtui"
    CSS_PATH = css_paths()
    MODES = modes()
    DEFAULT_MODE = "train"
    COMMANDS = App.COMMANDS | {SeqtuiCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),  # shown: the footer says how to leave
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
        *[Binding(e.fkey, f"goto('{e.mode}')", e.label, show=False, priority=True) for e in SCREENS],
        *[Binding(e.letter, f"goto('{e.mode}')", e.label, show=False) for e in SCREENS],
    ]

    def __init__(self, *, corpus: str | None = None, run: str | None = None,
                 screen: str = "train", poll_seconds: float = POLL_SECONDS,
                 generator_loader: Callable[[Path], Any] | None = None,
                 attach: bool = True, ansi_color: bool | None = None,
                 cursor_blink: bool = True, memo_loader: Callable[[Path], Any] | None = None,
                 estimator: Callable[[dict], str] | None = None) -> None:
        super().__init__(ansi_color=ansi_color)
        if ansi_color:
            # the terminal's own 16 colours for frames and titles too (the default theme's are
            # truecolor: 256-colour approximations, near-white titles on a light terminal)
            self.theme = "ansi-dark"
        self.preselect_corpus = corpus
        self.initial_run = run
        self.initial_screen = screen
        self.poll_seconds = poll_seconds
        self.generator_loader = generator_loader or load_generator
        self.memo = MemoIndexes(memo_loader or load_memo_index)  # memorization indexes by run
        self.estimator = estimator       # config dict -> the form's estimate line (None: the engine's)
        self.auto_attach = attach
        self.cursor_blink = cursor_blink          # off for snapshots
        self.state: RunState | None = None
        self.attaching = attach          # True until the startup look-up decided
        self.runs: list = []             # the last list_runs() snapshot
        self.runs_version = 0
        self.runs_bpc: dict[Path, float] = {}   # best validation bits per character by run path
        self.runs_time: float | None = None       # when the runs list was read (monotonic)
        self.bpc = BestBpc()
        self.corpus_stats: dict[str, dict] = {}
        self._attached_at = 0.0
        self.crash_line = ""             # set when an unexpected exception ended the app

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification is plain text: run names, corpus hints (``pip install
        'seqtui[shakespeare]'``), paths and errors are data, never Rich markup."""
        super().notify(str(message), title=str(title), severity=severity, timeout=timeout, markup=False)

    # -- an unexpected exception: exit 1 with one line, the traceback goes to a file ---------------
    def _fatal_error(self) -> None:
        import tempfile
        import traceback

        error = self._exception
        log = Path(tempfile.gettempdir()) / CRASH_LOG
        try:
            log.write_text("".join(traceback.format_exception(error)) if error else "", encoding="utf-8")
            where = f" (traceback in {log})"
        except OSError:
            where = ""
        self.bell()
        self._return_code = 1
        self.crash_line = (f"seqtui: internal error, the app stopped: {type(error).__name__}: {error}"
                           f"{where}; runs keep training")
        self._close_messages_no_wait()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the app; an unexpected error exits the process with status 1, not 0."""
        import sys

        result = super().run(*args, **kwargs)
        if self.crash_line:
            print(self.crash_line.replace("\n", " "), file=sys.stderr)
        if self.return_code:
            raise SystemExit(self.return_code)
        return result

    # -- start-up -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.initial_screen != self.DEFAULT_MODE:
            self.switch_mode(self.initial_screen)
        if self.auto_attach:
            self._initial_attach(self.initial_run)
        self.call_after_refresh(self._check_size)
        self.refresh_runs()

    @work(thread=True, exit_on_error=False, group="attach")
    def _initial_attach(self, run: str | None) -> None:
        """Re-attach to the named run, else the newest running one, else the newest one."""
        from seqtui.engine.runs import get_run, list_runs

        try:
            if run:
                info = get_run(run)
            else:
                runs = [r for r in list_runs() if getattr(r, "kind", "text") != "series"]
                info = next((r for r in runs if r.status == "running"), runs[0] if runs else None)
            if info is not None and getattr(info, "kind", "text") == "series":  # `--run` a series run
                self.call_from_thread(self.post_message, AttachRun(info.path, info))
            elif info is not None:
                self.call_from_thread(self.attach, info.path, info)
        except SeqtuiError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", title="run")
        finally:
            self.call_from_thread(setattr, self, "attaching", False)

    def attach_newest(self) -> None:
        self.attaching = True
        self._initial_attach(None)

    # -- the attached run ---------------------------------------------------------------------
    def attach(self, path: Path | str, info: Any = None) -> None:
        """Follow a run: a fresh RunState fed by a tail worker (replacing any previous one)."""
        path = Path(path)
        if self.state is not None and self.state.path == path:
            return
        self.state = RunState(path)
        if info is not None:
            self.state.load_info(info)
        self._attached_at = time.time()
        self.attaching = False
        self.run_worker(partial(self._tail_run, path), thread=True, exclusive=True, group="tail",
                        name=f"tail {path.name}", exit_on_error=False)

    def _tail_run(self, path: Path) -> None:
        """Thread worker: post new events (≤ every poll_seconds) and the status (every 2 s)."""
        from seqtui.engine.rundir import RunDir
        from seqtui.engine.runs import get_run

        worker = get_current_worker()
        tail = RunDir(path).tail()
        backlog, next_status = True, 0.0
        # is_running also ends the loop if the app died without cancelling its workers.
        while not worker.is_cancelled and self.is_running:
            events = tail.poll(max_bytes=BACKLOG_BYTES)
            if events:
                self.post_message(RunEvents(path, events, backlog))
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_SECONDS
                try:
                    self.post_message(RunStatus(get_run(path)))
                except SeqtuiError as exc:
                    if not path.exists():  # deleted under us: say so once and stop following
                        self.post_message(RunGone(path, str(exc)))
                        return
            if len(events) and tail.offset < _size(tail.path):
                continue  # still reading history: no sleep
            backlog = False
            deadline = time.monotonic() + self.poll_seconds
            while time.monotonic() < deadline and not worker.is_cancelled and self.is_running:
                time.sleep(0.05)

    @on(RunEvents)
    def _run_events(self, message: RunEvents) -> None:
        if self.state is None or message.path != self.state.path:
            return
        self.state.ingest(message.events)
        if message.backlog:
            return
        for event in message.events:
            if float(event.get("time") or 0) < self._attached_at - 1:
                continue
            kind = event.get("type")
            if kind == "error":
                self.notify(str(event.get("message")), title=f"run {self.state.name}", severity="error")
            elif kind == "end":
                status = event.get("status")
                text = f"{event.get('reason')} at step {int(event.get('step') or 0):,}"
                severity = {"failed": "error", "stopped": "warning"}.get(status, "information")
                self.notify(text, title=f"run {self.state.name} {status}", severity=severity)
            elif kind == "compile" and event.get("state") == "done":
                self.notify(f"kernels compiled in {float(event.get('seconds') or 0):.1f} s",
                            title="numba", timeout=3)

    @on(RunGone)
    def _run_gone(self, message: RunGone) -> None:
        if self.state is None or message.path != self.state.path or self.state.status == "gone":
            return
        self.state.set_status("gone", "its run directory was deleted")
        self.notify(f"{message.path} was deleted; nothing more to follow", title=f"run {self.state.name} gone",
                    severity="warning")
        self.refresh_runs()

    @on(RunStatus)
    def _run_status(self, message: RunStatus) -> None:
        if self.state is not None and message.info.path == self.state.path:
            self.state.load_info(message.info)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """An unexpected exception in the app's own workers becomes a notification."""
        report_worker_error(self, event)

    # -- runs list ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def refresh_runs(self) -> None:
        from seqtui.engine.runs import list_runs

        try:
            runs = list_runs()
            self.post_message(RunsListed(runs, self.bpc.update(runs)))
        except SeqtuiError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")

    @on(RunsListed)
    def _runs_listed(self, message: RunsListed) -> None:
        self.runs = message.runs
        self.runs_bpc = message.bpc
        self.runs_time = time.monotonic()
        self.runs_version += 1
        screen = self._active_screen()
        if screen is not None:
            screen.post_message(RunsChanged())

    def _active_screen(self):
        """The screen on top, or None while the app is closing (a worker's late result)."""
        from textual.app import ScreenStackError

        try:
            return self.screen
        except ScreenStackError:
            return None

    # -- what screens ask for (messages; the screens never call the engine) ---------------------
    @on(StartRun)
    def _on_start(self, message: StartRun) -> None:
        self.start_training(message.config, message.name)

    @on(StopRun)
    def _on_stop(self, message: StopRun) -> None:
        self.stop_run(message.path)

    @on(ResumeRun)
    def _on_resume(self, message: ResumeRun) -> None:
        self.resume_run(message.path)

    @on(RemoveRun)
    def _on_remove(self, message: RemoveRun) -> None:
        self.remove_run(message.path)

    @on(AttachRun)
    def _on_attach(self, message: AttachRun) -> None:
        if getattr(message.info, "kind", "text") == "series":  # a series run lives on its own screen
            self.switch_mode("series")
            self.call_after_refresh(self._show_series, message.path, message.info)
            return
        self.attach(message.path, message.info)
        self.switch_mode("train")
        screen = self.screen
        if isinstance(screen, TrainScreen):
            screen.show_live()

    # -- engine actions (thread workers; errors become notifications) ---------------------------
    def start_training(self, config: dict, name: str | None = None) -> None:
        self._start_worker(config, name)

    @work(thread=True, exit_on_error=False, group="engine")
    def _start_worker(self, config: dict, name: str | None) -> None:
        from seqtui.engine.runs import start_run

        try:
            info = start_run(config, name=name).info()
        except SeqtuiError as exc:
            self.call_from_thread(self.notify, str(exc), title="cannot start", severity="error")
            return
        except OSError as exc:
            self.call_from_thread(self.notify, f"{exc.strerror or exc}", title="cannot start",
                                  severity="error")
            return
        self.call_from_thread(self._started, info)

    def _started(self, info: Any) -> None:
        self.state = None
        self.attach(info.path, info)
        self.notify(f"training in the background (pid {info.pid}); quitting the app does not stop it",
                    title=f"run {info.name} started", timeout=4)
        self.refresh_runs()
        if self.current_mode != "train":
            self.switch_mode("train")
        screen = self._active_screen()
        if isinstance(screen, TrainScreen):
            screen.show_live()

    @on(StartSeriesRun)
    def _on_start_series(self, message: StartSeriesRun) -> None:
        self._start_series_worker(message.config)

    @work(thread=True, exit_on_error=False, group="engine")
    def _start_series_worker(self, config: dict) -> None:
        from seqtui.engine.runs import start_run
        from seqtui.models.series import SeriesRunConfig

        try:
            info = start_run(SeriesRunConfig(**config).validate(), name=None).info()
        except SeqtuiError as exc:
            self.call_from_thread(self._series_failed, str(exc))
            return
        except OSError as exc:
            self.call_from_thread(self._series_failed, f"{exc.strerror or exc}")
            return
        self.call_from_thread(self._series_started, info)

    def _series_failed(self, message: str) -> None:
        self.notify(message, title="cannot start", severity="error")
        screen = self._active_screen()
        if self.current_mode == "series" and screen is not None:
            screen.post_message(SeriesRunFailed(message))

    def _series_started(self, info: Any) -> None:
        self.notify(f"training in the background (pid {info.pid}); quitting the app does not stop it",
                    title=f"run {info.name} started", timeout=4)
        self.refresh_runs()
        if self.current_mode != "series":
            self.switch_mode("series")
        self.call_after_refresh(self._show_series, info.path, info, True)

    def _show_series(self, path: Path, info: Any = None, started: bool = False) -> None:
        from seqtui.ui.screens.series import SeriesScreen

        screen = self._active_screen()
        if isinstance(screen, SeriesScreen):
            if started:
                screen.started(info)
            else:
                screen.follow(path, info)

    def stop_attached(self) -> None:
        if self.state is None:
            self.notify("no run attached", severity="warning")
            return
        self.stop_run(self.state.path)

    def resume_attached(self) -> None:
        if self.state is None:
            self.notify("no run attached", severity="warning")
            return
        self.resume_run(self.state.path)

    @work(thread=True, exit_on_error=False, group="engine")
    def stop_run(self, path: Path) -> None:
        from seqtui.engine.runs import stop_run

        self.call_from_thread(self.notify, f"stopping {Path(path).name}… (it saves a checkpoint first)",
                              timeout=3)
        try:
            info = stop_run(str(path))
        except SeqtuiError as exc:
            self.call_from_thread(self.notify, str(exc), title="stop", severity="error")
            return
        self.post_message(RunStatus(info))
        self.refresh_runs()

    @work(thread=True, exit_on_error=False, group="engine")
    def resume_run(self, path: Path) -> None:
        from seqtui.engine.runs import resume_run

        try:
            info = resume_run(str(path))
        except SeqtuiError as exc:
            self.call_from_thread(self.notify, str(exc), title="resume", severity="error")
            return
        self.post_message(RunStatus(info))
        self.call_from_thread(self.notify, f"resumed {info.name} (pid {info.pid})", timeout=3)
        self.refresh_runs()

    @work(thread=True, exit_on_error=False, group="engine")
    def remove_run(self, path: Path) -> None:
        from seqtui.engine.runs import remove_run

        try:
            removed = remove_run(str(path))
        except SeqtuiError as exc:
            self.call_from_thread(self.notify, str(exc), title="delete", severity="error")
            return
        if self.state is not None and self.state.path == Path(removed):
            self.call_from_thread(self._detach)
        self.call_from_thread(self.notify, f"deleted {Path(removed).name}", timeout=3)
        self.refresh_runs()

    def _detach(self) -> None:
        self.workers.cancel_group(self, "tail")
        self.state = None

    def pop_screen(self) -> Any:
        """Keys queued behind the one that closed a palette or dialog (enter, esc in a burst)
        can close it twice; the second pop must not end the app with ScreenStackError."""
        if len(self.screen_stack) <= 1:
            from textual.await_complete import AwaitComplete

            async def _nothing() -> None:
                return None

            return AwaitComplete(_nothing())
        return super().pop_screen()

    def action_command_palette(self) -> None:
        # No fixed id: a palette left on another mode's stack must not clash (DuplicateIds).
        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(SeqtuiPalette())

    # -- a terminal too small to use ---------------------------------------------------------------
    def on_resize(self, event: Any) -> None:
        self.call_after_refresh(self._check_size)

    def _check_size(self) -> None:
        small = too_small(*self.size)
        showing = isinstance(self.screen, TooSmallScreen)
        if small and not showing:
            self.push_screen(TooSmallScreen())
        elif not small and showing:
            self.pop_screen()

    # -- navigation -----------------------------------------------------------------------------
    def action_goto(self, mode: str) -> None:
        if isinstance(self.screen, TooSmallScreen):
            return  # the notice stays until the terminal grows
        if isinstance(self.screen, CommandPalette):
            # an F-key while the palette is open: close it here, or its own dismiss later pops
            # the new mode's only screen (ScreenStackError)
            self.pop_screen()
        if self.current_mode != mode:
            self.switch_mode(mode)
        elif len(self.screen_stack) > 1:
            self.pop_screen()

    def action_leave_field(self) -> None:
        """esc: take the focus out of a text field so the letter shortcuts work."""
        self.screen.set_focus(None)

    def action_help(self) -> None:
        if not isinstance(self.screen, (HelpScreen, TooSmallScreen)):
            self.push_screen(HelpScreen())

    def action_new_run(self, corpus: str | None = None) -> None:
        self.switch_mode("train")
        screen = self.screen
        if isinstance(screen, TrainScreen):
            screen.show_form(corpus)
        else:  # pragma: no cover - the train mode's base screen is a TrainScreen
            self.call_after_refresh(self.action_new_run, corpus)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def make_app(**options: Any) -> SeqtuiApp:
    """The app with the given options (``corpus``, ``run``, ``screen``, ...): CLI and tests share it."""
    return SeqtuiApp(**options)
