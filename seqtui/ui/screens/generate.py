"""Generate: pick a run, type a prompt, watch the continuation stream; it restarts as you type.

Sampling runs in a thread worker (the kernels release the GIL). The worker checks
``is_cancelled`` between tokens, so a newer request (a keystroke, after a short debounce)
supersedes it at once, and it posts the text at most ten times a second — a layout pass per
character would cost ~200 KiB/s on an SSH link.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static
from textual.worker import get_current_worker

from seqtui.errors import SeqtuiError
from textual import events
from seqtui.ui.memo import memo_line, memo_text
from seqtui.ui.messages import GenerationUpdate, MemoScored, RunsChanged
from seqtui.ui.widgets.choice import Choice
from seqtui.ui.screens.base import WorkerErrors
from seqtui.ui.widgets.nav import NavBar
from seqtui.ui.run_state import fmt_ppl

DEBOUNCE_SECONDS = 0.25
UPDATE_SECONDS = 0.1          # streamed text reaches the screen ~10×/s
TOP_K_STEPS = (0, 1, 2, 3, 5, 10, 20, 40)
LENGTH_STEPS = (50, 100, 200, 400, 800, 1600)
NO_RUNS = "(no trained runs)"
clock = time.monotonic  # tests replace it to make timings reproducible


@dataclass
class LoadedModel:
    """A run's model ready to sample: ``make()`` returns a fresh Generator sharing the weights."""

    name: str
    make: Callable[[], Any]
    is_char: bool = True
    step: int | None = None
    val_ppl: float | None = None
    kind: str = ""


def checkpoint_meta(path: Path) -> tuple[str, dict] | None:
    """(kind, mirrored JSON metadata) of the checkpoint generation uses: best, else latest."""
    from seqtui.engine.rundir import KINDS, RunDir

    rd = RunDir(path)
    for kind in KINDS:
        if rd.has_checkpoint(kind):
            return kind, rd.checkpoint_meta(kind) or {}
    return None


def has_checkpoint(path: Path) -> bool:
    from seqtui.engine.rundir import RunDir

    return RunDir(path).has_checkpoint()


def load_generator(path: Path) -> LoadedModel:
    """Load a run's model through the engine (imports numba: call it in a worker)."""
    from seqtui.engine.loading import load_run_model
    from seqtui.models.generate import Generator

    found = checkpoint_meta(path)
    kind, meta = found if found else ("", {})
    model, vocab, _config = load_run_model(str(path))
    step = meta.get("step")
    val = meta.get("best_val_ppl")
    return LoadedModel(
        name=Path(path).name, make=lambda: Generator(model, vocab), is_char=bool(vocab.is_char),
        step=int(step) if isinstance(step, int) else None,
        val_ppl=float(val) if isinstance(val, (int, float)) else None, kind=kind,
    )


def settings_line(temperature: float, top_k: int, length: int, seed: int) -> str:
    return f" T {temperature:.2f}  top-k {top_k or 'off'}  length {length}  seed {seed}"


class PromptInput(Input):
    """The prompt is one line: a pasted newline becomes a space, and the app says so (Textual's
    Input would keep only the paste's first line, silently)."""

    def _on_paste(self, event: events.Paste) -> None:
        text = event.text or ""
        if "\n" not in text and "\r" not in text:
            super()._on_paste(event)
            return
        line = " ".join(text.splitlines())
        selection = self.selection
        if selection.is_empty:
            self.insert_text_at_cursor(line)
        else:
            self.replace(line, *selection)
        event.stop()
        self.notify("the prompt is one line: the pasted newlines became spaces", title="prompt",
                    timeout=4)


class GenerateScreen(WorkerErrors, Screen):
    """Prompt in, continuation out, live."""

    BINDINGS = [
        # priority: the prompt Input would otherwise take these keys for scrolling
        Binding("up", "temperature(0.1)", "temperature", key_display="↑↓", priority=True),
        Binding("down", "temperature(-0.1)", "temperature", show=False, priority=True),
        Binding("shift+up", "top_k(1)", "top-k", key_display="⇧↑↓", priority=True),
        Binding("shift+down", "top_k(-1)", "top-k", show=False, priority=True),
        Binding("pageup", "length(1)", "length", key_display="PgUp/Dn", priority=True),
        Binding("pagedown", "length(-1)", "length", show=False, priority=True),
        Binding("ctrl+r", "reroll", "re-roll"),
        # after esc the letters are shortcuts (other screens); these bring the prompt back
        Binding("slash", "type", "prompt", key_display="/"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.temperature = 0.8
        self.top_k = 0
        self.length = 200
        self.seed = 1
        self.serial = 0
        self.run_path: Path | None = None
        self.loaded: dict[Path, LoadedModel] = {}
        self._debounce: Timer | None = None
        self._runs_version = -1
        self._started = 0.0
        self.unknown: list[str] = []
        self._paths: dict[str, Path] = {}
        self.updates_shown = 0  # text updates drawn (a few per second, not one per token)
        self.memo_score = None  # memorization figures of the finished continuation
        self._last: GenerationUpdate | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("generate", id="nav")
        with Horizontal(id="gen-pick"):
            yield Label(" run ", id="gen-run-label")
            yield Choice([NO_RUNS], id="gen-run")
            yield Static("", id="gen-run-info")
        yield PromptInput(placeholder="type a prompt; the continuation follows as you type", id="gen-prompt",
                          select_on_focus=False)
        with VerticalScroll(id="gen-out"):
            yield Static("", id="gen-text")
        yield Static("", id="gen-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#gen-prompt").border_title = "prompt"
        self.query_one("#gen-out").border_title = "continuation"
        self._sync_runs()
        self._show_status()
        prompt = self.query_one("#gen-prompt", Input)
        prompt.cursor_blink = self.app.cursor_blink
        prompt.focus()

    def on_screen_resume(self) -> None:
        self.app.refresh_runs()
        self._sync_runs()

    # -- which run ----------------------------------------------------------------------------
    def _sync_runs(self) -> None:
        """Offer runs that have a checkpoint; prefer the attached one the first time."""
        if not self.is_current or self.app.runs_version == self._runs_version:
            return
        self._runs_version = self.app.runs_version
        names = [r.name for r in self.app.runs if has_checkpoint(r.path)]
        self._paths = {r.name: r.path for r in self.app.runs}
        choice = self.query_one("#gen-run", Choice)
        current = choice.value if choice.value in names else None
        if current is None and self.app.state is not None and self.app.state.name in names:
            current = self.app.state.name
        choice.options = names or [NO_RUNS]
        with self.prevent(Choice.Changed):
            choice.value = current or choice.options[0]
        choice.refresh()
        self._select(choice.value)

    @on(RunsChanged)
    def _runs_changed(self) -> None:
        self._sync_runs()

    @on(Choice.Changed, "#gen-run")
    def _run_changed(self, event: Choice.Changed) -> None:
        self._select(event.value)

    def _select(self, name: str) -> None:
        path = self._paths.get(name) if name != NO_RUNS else None
        info = self.query_one("#gen-run-info", Static)
        if path is None:
            self.run_path = None
            info.update(Text("  train a run first (F3)", style="dim"))
            return
        if path == self.run_path:
            return
        self.run_path = path
        if path in self.loaded:  # loaded before: say what it is now, not "loading…"
            self._show_loaded(self.loaded[path])
        else:
            info.update(Text("  loading…", style="dim"))
        self.restart(now=True)

    # -- keys ---------------------------------------------------------------------------------
    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(3.0, max(0.05, self.temperature + delta)), 2)
        self.restart(now=True)

    def action_top_k(self, delta: int) -> None:
        i = TOP_K_STEPS.index(self.top_k) if self.top_k in TOP_K_STEPS else 0
        self.top_k = TOP_K_STEPS[min(len(TOP_K_STEPS) - 1, max(0, i + delta))]
        self.restart(now=True)

    def action_length(self, delta: int) -> None:
        i = LENGTH_STEPS.index(self.length) if self.length in LENGTH_STEPS else 2
        self.length = LENGTH_STEPS[min(len(LENGTH_STEPS) - 1, max(0, i + delta))]
        self.restart(now=True)

    @property
    def typing(self) -> bool:
        """True while the prompt has the focus (letters type); False after esc (letters are keys)."""
        return self.focused is self.query_one("#gen-prompt", Input)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "type":
            return not self.typing
        return True

    def action_type(self) -> None:
        self.query_one("#gen-prompt", Input).focus()

    def on_descendant_focus(self) -> None:
        self._focus_changed()

    def on_descendant_blur(self) -> None:
        self.call_after_refresh(self._focus_changed)

    def _focus_changed(self) -> None:
        self.refresh_bindings()
        self._show_status()

    def action_reroll(self) -> None:
        self.seed += 1
        self.restart(now=True)

    @on(Input.Submitted, "#gen-prompt")
    def _submitted(self) -> None:
        self.action_reroll()

    @on(Input.Changed, "#gen-prompt")
    def _typed(self) -> None:
        self.restart()

    # -- generating -----------------------------------------------------------------------------
    def restart(self, now: bool = False) -> None:
        """(Re)start generation, after a short pause in typing unless ``now``."""
        self._show_status()
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        if now:
            self._launch()
        else:
            self._debounce = self.set_timer(DEBOUNCE_SECONDS, self._launch)

    def _launch(self) -> None:
        self._debounce = None
        if self.run_path is None:
            return
        self.serial += 1
        prompt = self.query_one("#gen-prompt", Input).value
        self._generate(self.serial, self.run_path, prompt, self.length, self.temperature,
                       self.top_k, self.seed)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, serial: int, path: Path, prompt: str, length: int, temperature: float,
                  top_k: int, seed: int) -> None:
        worker = get_current_worker()
        t0 = clock()
        try:
            loaded = self.loaded.get(path)
            if loaded is None:
                loaded = self.app.generator_loader(path)
                self.loaded[path] = loaded
                self.app.call_from_thread(self._show_loaded, loaded)
            if worker.is_cancelled:
                return
            gen = loaded.make()
            unknown = list(gen.prime(prompt))
            sep = "" if loaded.is_char else " "
            pieces: list[str] = []
            last = clock()
            for token in gen.sample(length, temperature=temperature, top_k=top_k, seed=seed):
                if worker.is_cancelled:
                    return
                pieces.append(token)
                now = clock()
                if now - last >= UPDATE_SECONDS:
                    last = now
                    self.post_message(GenerationUpdate(serial, sep.join(pieces), len(pieces),
                                                       now - t0, unknown=unknown))
            self.post_message(GenerationUpdate(serial, sep.join(pieces), len(pieces),
                                               clock() - t0, done=True, unknown=unknown))
        except SeqtuiError as exc:
            self.post_message(GenerationUpdate(serial, "", 0, 0.0, done=True, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint must not kill the app
            self.post_message(GenerationUpdate(serial, "", 0, 0.0, done=True,
                                               error=f"{type(exc).__name__}: {exc}"))

    def _show_loaded(self, loaded: LoadedModel) -> None:
        if self.run_path is None or loaded.name != self.run_path.name:
            return
        parts = [f"{loaded.kind} checkpoint" if loaded.kind else "checkpoint"]
        if loaded.step is not None:
            parts.append(f"step {loaded.step:,}")
        if loaded.val_ppl is not None:
            parts.append(f"val {fmt_ppl(loaded.val_ppl)}")
        self.query_one("#gen-run-info", Static).update(Text("  " + " · ".join(parts), style="dim"))

    @on(GenerationUpdate)
    def _update(self, message: GenerationUpdate) -> None:
        if message.serial != self.serial:
            return  # an answer to an older request
        if message.error:
            self.query_one("#gen-text", Static).update(Text(message.error, style="bold red"))
            self.notify(message.error, title="generate", severity="error")
            return
        self.updates_shown += 1
        self._last = message
        self.memo_score = None
        self._draw_text(message)
        if message.done and message.text and self.run_path is not None:
            self._score(message.serial, self.run_path, message.text)
        self.query_one("#gen-out", VerticalScroll).scroll_end(animate=False)  # newest text in view
        rate = message.tokens / message.seconds if message.seconds > 0 else 0
        state = "" if message.done else " …"
        self.query_one("#gen-out").border_subtitle = (
            f"{message.tokens} tokens · {message.seconds * 1000:.0f} ms{state}" if message.done
            else f"{message.tokens} tokens · {rate:,.0f}/s{state}")
        self.unknown = message.unknown
        self._show_status()

    def _draw_text(self, message: GenerationUpdate) -> None:
        prompt = self.query_one("#gen-prompt", Input).value
        sep = "" if self._is_char() else " "
        text = Text(prompt, style="dim")
        if message.text:
            text.append(sep)
            text.append(memo_text(message.text, self.memo_score, style="bold"))
        self.query_one("#gen-text", Static).update(text)

    def _is_char(self) -> bool:
        loaded = self.loaded.get(self.run_path) if self.run_path is not None else None
        return loaded is None or loaded.is_char

    @work(thread=True, exclusive=True, group="memo", exit_on_error=False)
    def _score(self, serial: int, path: Path, text: str) -> None:
        """Thread worker: memorization figures of the continuation (the run's index, built once)."""
        self.post_message(self.app.memo.scored(serial, path, text))

    @on(MemoScored)
    def _memo_scored(self, message: MemoScored) -> None:
        if message.key != self.serial or message.score is None or self._last is None:
            return
        self.memo_score = message.score
        self._draw_text(self._last)
        self._show_status()

    def _show_status(self) -> None:
        status = Text(settings_line(self.temperature, self.top_k, self.length, self.seed),
                      no_wrap=True, overflow="ellipsis")
        # most important first: the line shows at most 3 rows (generate.tcss), so a memorization
        # line arriving later must not push the unknown-character warning out of view
        if self.unknown:
            shown = " ".join(repr(u) for u in dict.fromkeys(self.unknown))
            status.append(f"\n ⚠ not in the vocabulary, read as <unk>: {shown}", style="bold yellow")
        if self.is_mounted and not self.typing:
            status.append("\n letters are shortcuts now: / returns to the prompt", style="bold reverse")
        if self.memo_score is not None:
            status.append(f"\n {memo_line(self.memo_score, self._is_char())}", style="yellow")
        self.query_one("#gen-status", Static).update(status)
