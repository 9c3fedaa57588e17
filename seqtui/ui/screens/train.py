"""Train: a form for a new run, or the attached run live — perplexity, speed, gradients, a sample.

The run trains in its own process; this screen redraws from the app's RunState at most twice
a second (the plot only when a curve changed), so a long run costs little on a slow link.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Footer, Static

from seqtui.ui.memo import memo_line, memo_text
from seqtui.ui.messages import MemoScored, ResumeRun, StartRun, StopRun
from seqtui.ui.screens.train_form import TrainForm
from seqtui.ui.widgets.nav import NavBar
from seqtui.ui.widgets.ppl_plot import PerplexityPlot, Series
from seqtui.ui.run_state import STATUS_MARK, RunState
from seqtui.ui.widgets.sample_panel import SamplePanel
from seqtui.ui.widgets.stats_panel import StatsPanel

REFRESH_SECONDS = 0.5   # numbers
PLOT_SECONDS = 1.0      # the plot redraws every cell it covers: at most once a second


def run_title(state: RunState) -> Text:
    """``kjv-gru · genesis · GRU 1×128 · B32 T35 · bptt full   ● running``."""
    cfg = state.config
    bptt = cfg.get("bptt") or "full"
    if bptt == "truncated" and cfg.get("bptt_k"):
        bptt += f":{cfg['bptt_k']}"
    elif bptt == "randomized" and cfg.get("bptt_p"):
        bptt += f":{cfg['bptt_p']:g}"
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f" {state.name}", style="bold")
    corpus = Path(str(cfg.get("corpus") or "?")).name
    out.append(f" · {corpus} · {state.model_label} · "
               f"B{cfg.get('batch_size', '?')} T{cfg.get('num_steps', '?')} · bptt {bptt}")
    return out


def curves(state: RunState) -> tuple[list[Series], tuple[str, float] | None]:
    """The plot's series for a run: train (progress events) and val, plus the n-gram line."""
    series = [Series("train", tuple(state.train), "cyan")]
    if state.val:
        series.append(Series("val", tuple(state.val), "orange", marker="hd" if len(state.val) > 1 else "dot"))
    ref = None
    if state.baseline:
        ref = (f"{state.baseline.get('order', '?')}-gram", float(state.baseline["val_ppl"]))
    return series, ref


class TrainScreen(Screen):
    """The live dashboard of the attached run; ``n`` opens the form for a new run."""

    AUTO_FOCUS = ""  # no auto focus: the form takes focus only when it is shown
    _plotted_at = 0.0
    _bindings_for: tuple | None = None
    _memo_key: tuple | None = None     # the sample being (or last) scored for memorization
    memo_score = None                  # its MemoScore (None: not yet, or no index)

    BINDINGS = [
        Binding("n", "new_run", "New run"),
        Binding("s", "stop", "Stop"),
        Binding("u", "resume", "Resume"),
        Binding("escape", "cancel_form", "Back to the run"),
    ]

    def compose(self) -> ComposeResult:
        yield NavBar("train", id="nav")
        with ContentSwitcher(initial="live", id="train-switcher"):
            with Vertical(id="live"):
                yield Static("", id="live-title")
                with Horizontal(id="live-top"):
                    yield PerplexityPlot(id="ppl-plot")
                    yield StatsPanel(id="stats")
                yield SamplePanel("sample", id="sample")
            yield TrainForm(corpus_names=self._corpus_names(), corpus=self.app.preselect_corpus,
                            id="form")
        yield Footer()

    def _corpus_names(self) -> list[str]:
        try:
            from seqtui.data.corpora import known_names

            return known_names()
        except Exception:  # noqa: BLE001 - a broken registry must not stop the screen
            return []

    def on_mount(self) -> None:
        self.query_one("#ppl-plot").border_title = "perplexity (log scale)"
        self.query_one("#stats").border_title = "now"
        self.set_interval(REFRESH_SECONDS, self.refresh_view)
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    @property
    def showing_form(self) -> bool:
        return self.query_one(ContentSwitcher).current == "form"

    def show_form(self, corpus: str | None = None) -> None:
        self.query_one(ContentSwitcher).current = "form"
        form = self.query_one(TrainForm)
        if corpus:
            form.set_value("corpus", corpus)
        self.call_after_refresh(self._focus_form)
        self.refresh_bindings()

    def _focus_form(self) -> None:
        self.query_one("#f-corpus").focus()

    def show_live(self) -> None:
        self.query_one(ContentSwitcher).current = "live"
        self.set_focus(None)
        self.refresh_bindings()
        self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the app's RunState; cheap when nothing changed."""
        if not self.is_current:
            return
        state: RunState | None = self.app.state
        nav = self.query_one(NavBar)
        if state is None:
            nav.set_status("no run")
            if not self.showing_form and not self.app.attaching:
                self.show_form()
            return
        nav.set_status(f"{STATUS_MARK.get(state.status, '?')} {state.name}")
        self.query_one("#live-title", Static).update(run_title(state))
        now = time.monotonic()
        if now - self._plotted_at >= PLOT_SECONDS or state.status != "running":
            self._plotted_at = now
            series, ref = curves(state)
            self.query_one(PerplexityPlot).set_curves(series, ref)
        self.query_one(StatsPanel).show(state)
        sample = state.last_sample
        panel = self.query_one(SamplePanel)
        if sample:
            text = str(sample.get("text", ""))
            key = (state.path, sample.get("step"), text)
            if key != self._memo_key:
                self._memo_key, self.memo_score = key, None
                self._score_sample(key)
            score = self.memo_score
            panel.show(memo_text(text, score),
                       f"sample · step {int(sample.get('step') or 0):,} · T {sample.get('temperature', '?')}",
                       memo_line(score, str(state.config.get("tokens") or "char") == "char"))
        elif state.errors:
            panel.show(state.errors[-1], "error", style="bold red")
        else:
            panel.show("the trainer writes a sample every sample_every steps", "sample", style="dim")
        key = (state.path, state.status)
        if key != self._bindings_for:  # the footer recomposes on every refresh_bindings
            self._bindings_for = key
            self.refresh_bindings()

    @work(thread=True, exclusive=True, group="memo", exit_on_error=False)
    def _score_sample(self, key: tuple) -> None:
        """Thread worker: the sample's memorization figures (builds the run's index once)."""
        path, _step, text = key
        self.post_message(self.app.memo.scored(key, path, text))

    @on(MemoScored)
    def _memo_scored(self, message: MemoScored) -> None:
        if message.key == self._memo_key and message.score is not None:
            self.memo_score = message.score
            self.refresh_view()

    # -- actions -----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        state = self.app.state
        if action == "stop":
            return not self.showing_form and state is not None and state.status == "running"
        if action == "resume":
            return (not self.showing_form and state is not None
                    and state.status in ("stopped", "failed"))
        if action == "new_run":
            return not self.showing_form
        if action == "cancel_form":
            return self.showing_form and state is not None
        return True

    def action_new_run(self) -> None:
        self.show_form()

    def action_cancel_form(self) -> None:
        self.show_live()

    def action_stop(self) -> None:
        if self.app.state is not None:
            self.post_message(StopRun(self.app.state.path))

    def action_resume(self) -> None:
        if self.app.state is not None:
            self.post_message(ResumeRun(self.app.state.path))

    @on(Button.Pressed, "#form-cancel")
    def _cancel(self) -> None:
        if self.app.state is not None:
            self.show_live()
        else:
            self.notify("no run yet: fill in the form and press ctrl+s", severity="warning")

    @on(TrainForm.Submitted)
    def _submitted(self, event: TrainForm.Submitted) -> None:
        self.post_message(StartRun(event.config, event.name))
