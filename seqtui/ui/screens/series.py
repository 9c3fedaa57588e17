"""Series: sequence models on a real-valued series (d2l "Working with Sequences").

Pick a source, τ, a model and the k values; Start trains a detached series run. One chart shows
the data, the 1-step and the k-step predictions over time with the train/validation boundary;
←/→ change the k shown. A side panel lists the MSE against k and, on ``w``, the linear τ-sweep.
A running run's epochs (train/val MSE) show live from its events; its predictions appear when
it ends. Every engine call runs in a thread worker (the sweep may compile kernels).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static
from textual.worker import get_current_worker

from seqtui.errors import SeqtuiError
from seqtui.ui.messages import (RunsChanged, SeriesData, SeriesEvents, SeriesRunFailed, StartSeriesRun,
                                StopRun, TauSweepDone)
from seqtui.ui.run_state import STATUS_MARK
from seqtui.ui.screens.base import WorkerErrors
from seqtui.ui.widgets.choice import Choice
from seqtui.ui.widgets.nav import NavBar
from seqtui.ui.widgets.series_plot import SeriesPlot, SeriesView
from seqtui.ui.widgets.stats_panel import status_style

MODELS = ("linear", "mlp", "rnn", "gru", "lstm")   # seqtui.models.series.MODELS (no numpy import here)
DEFAULT_KS = "1,4,16,64"
NO_RUNS = "(no series runs)"
POLL_SECONDS = 0.5
SWEEP_TAUS = (1, 2, 4, 8, 16, 32)
MAX_TAU = 32


def source_names() -> list[str]:
    try:
        from seqtui.data.series import list_series

        return [s.name for s in list_series() if s.available] or ["sine"]
    except Exception:  # noqa: BLE001 - a broken optional package must not stop the screen
        return ["sine"]


def fmt_mse(value: Any, digits: int = 4) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.{max(1, digits - 2)}e}"


def run_label(config: dict | None) -> str:
    """``mlp τ=4 H=10`` for a series run's config dict (``SeriesRunConfig.label``)."""
    cfg = series_config(config)
    return cfg.label() if cfg is not None else "?"


def series_config(config: dict | None):
    """The SeriesRunConfig of a run's config dict, or None when it is not a valid one."""
    if not config:
        return None
    from seqtui.models.series import SeriesRunConfig

    try:
        return SeriesRunConfig.from_dict({k: v for k, v in config.items() if k != "kind"})
    except (SeqtuiError, TypeError):
        return None


def short_source(source: Any) -> str:
    """``sine`` for ``sine:n=1000,...``; a file's name for a path."""
    text = str(source or "?")
    head = text.split(":", 1)[0]
    if head in ("sine", "sunspots", "co2", "nile", "elnino"):
        return head
    return Path(text).name or text


def mse_table(pred: dict | None, k: int | None, epochs: list[dict]) -> Table | Text:
    """MSE against k (validation and training targets), or the live epochs while training."""
    t = Table.grid(padding=(0, 1))
    if pred:
        t.add_column(no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_row(Text(" k", style="bold"), Text("val", style="bold"), Text("train", style="bold"), "")
        val = pred.get("kstep_mse") or {}
        train = pred.get("kstep_train_mse") or {}
        finite = [v for v in val.values() if isinstance(v, (int, float)) and math.isfinite(v)]
        top = max(finite, default=1.0) or 1.0
        for key in sorted(val, key=lambda s: int(s)):
            v = val[key]
            width = int(round(3 * v / top)) if isinstance(v, (int, float)) and math.isfinite(v) else 0
            mark = "▶" if k is not None and int(key) == k else " "
            style = "bold reverse" if mark == "▶" else ""
            t.add_row(Text(f"{mark}{key}", style=style), fmt_mse(v, 3), Text(fmt_mse(train.get(key), 3), style="dim"),
                      "█" * max(width, 1))
        return t
    if not epochs:
        return Text("MSE per k appears when the run ends", style="dim")
    t.add_column(no_wrap=True)
    t.add_column(justify="right", no_wrap=True)
    t.add_column(justify="right", no_wrap=True)
    t.add_row(Text("epoch", style="bold"), Text("train", style="bold"), Text("val", style="bold"))
    for e in epochs[-5:]:
        t.add_row(str(e.get("epoch")), fmt_mse(e.get("train_mse")), fmt_mse(e.get("val_mse")))
    return t


def sweep_text(rows: list[dict] | None, tau: int | None = None) -> Text:
    """The best τ and the validation MSE at a few τ (with a bar)."""
    if not rows:
        return Text("w: linear AR(τ) for τ = 1…32", style="dim")
    best = min(rows, key=lambda r: r["val_mse"])
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"best τ={best['tau']}  val {fmt_mse(best['val_mse'])}\n", style="bold")
    vals = [r["val_mse"] for r in rows]
    lo, hi = min(vals), max(vals)
    by_tau = {r["tau"]: r for r in rows}
    for t in (*SWEEP_TAUS, *(x for x in (tau,) if x and x not in SWEEP_TAUS)):
        r = by_tau.get(t)
        if r is None:
            continue
        width = 1 + int(round(6 * (r["val_mse"] - lo) / (hi - lo))) if hi > lo else 1
        style = "bold" if t == best["tau"] else ""
        out.append(f"τ={t:<3d}{fmt_mse(r['val_mse']):>8} ", style=style)
        out.append("▆" * width + "\n", style="dim" if t != best["tau"] else "bold")
    out.rstrip()
    return out


class SeriesScreen(WorkerErrors, Screen):
    """Train and read a τ-window model of a numeric series."""

    AUTO_FOCUS = ""   # ←/→ change k until a field is focused (tab)

    BINDINGS = [
        Binding("ctrl+s", "start", "Start run", priority=True),
        Binding("left", "k(-1)", "k", key_display="←→"),
        Binding("right", "k(1)", "k", show=False),
        Binding("w", "sweep", "τ sweep"),
        Binding("s", "stop", "Stop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None       # the run shown
        self.info: Any = None
        self.k: int | None = None
        self.events: dict[str, dict] = {}   # the last event of each type since the last start
        self.epochs: list[dict] = []
        self.pred: dict | None = None
        self.values: Any = None
        self.time: Any = None
        self.sweep: list[dict] | None = None
        self.sweep_source: str | None = None
        self._runs_version = -1
        self._paths: dict[str, Path] = {}
        self._bindings_for: tuple | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("series", id="nav")
        with Horizontal(id="ser-form"):
            yield Label("source", classes="ser-label")
            yield Choice(source_names(), "sine", id="ser-source")
            yield Label("τ", classes="ser-label")
            yield Input("4", id="ser-tau", compact=True, restrict=r"[0-9]*", max_length=4)
            yield Label("model", classes="ser-label")
            yield Choice(MODELS, "mlp", id="ser-model")
            yield Label("k", classes="ser-label")
            yield Input(DEFAULT_KS, id="ser-ks", compact=True, restrict=r"[0-9, ]*")
            yield Button("Start", id="ser-start", variant="primary", compact=True)
        with Horizontal(id="ser-run-row"):
            yield Label("run", classes="ser-label")
            yield Choice([NO_RUNS], id="ser-run")
            yield Static("", id="ser-progress")
        with Horizontal(id="ser-main"):
            yield SeriesPlot(id="ser-plot", empty_message="no series run yet: pick a source and press Start")
            with Vertical(id="ser-side"):
                yield Static("", id="ser-mse")
                yield Static("", id="ser-sweep")
        yield Static("", id="ser-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ser-plot").border_title = "series"
        self.query_one("#ser-mse").border_title = "MSE vs k"
        self.query_one("#ser-sweep").border_title = "τ sweep"
        for field in self.query(Input):
            field.cursor_blink = self.app.cursor_blink
        self._sync_runs()
        self._redraw()
        self.set_interval(2.0, self._tick)

    def _tick(self) -> None:
        """While visible: the runs list (status from pid liveness, new series runs)."""
        if self.is_current:
            self.app.refresh_runs()

    def on_screen_resume(self) -> None:
        self.app.refresh_runs()
        self._sync_runs()

    # -- which run ------------------------------------------------------------------------------
    def series_runs(self) -> list:
        return [r for r in self.app.runs if getattr(r, "kind", "text") == "series"]

    @on(RunsChanged)
    def _runs_changed(self) -> None:
        self._sync_runs()

    def _sync_runs(self) -> None:
        if self.app.runs_version == self._runs_version or not self.query("#ser-run"):
            return
        self._runs_version = self.app.runs_version
        runs = self.series_runs()
        self._paths = {r.name: r.path for r in runs}
        by_path = {r.path: r for r in runs}
        if self.path in by_path:
            self.info = by_path[self.path]
        choice = self.query_one("#ser-run", Choice)
        names = [r.name for r in runs] or [NO_RUNS]
        choice.options = names
        current = self.path.name if self.path is not None and self.path in by_path else None
        if current is None and runs and self.path is None:
            current = runs[0].name     # the newest
        with self.prevent(Choice.Changed):
            choice.value = current or names[0]
        choice.refresh()
        if current and (self.path is None or self.path.name != current):
            self.follow(self._paths[current])
        self._redraw()

    @on(Choice.Changed, "#ser-run")
    def _run_picked(self, event: Choice.Changed) -> None:
        path = self._paths.get(event.value)
        if path is not None and path != self.path:
            self.follow(path)

    def follow(self, path: Path | str, info: Any = None) -> None:
        """Show this run: its events, live, and its predictions once written."""
        path = Path(path)
        if info is not None:
            self.info = info
        elif self.path != path:
            self.info = next((r for r in self.series_runs() if r.path == path), None)
        if path == self.path:
            return
        self.path = path
        self.events, self.epochs, self.pred, self.values, self.time = {}, [], None, None, None
        choice = self.query_one("#ser-run", Choice)
        if path.name not in choice.options:
            choice.options = [o for o in choice.options if o != NO_RUNS] + [path.name]
            self._paths[path.name] = path
        with self.prevent(Choice.Changed):
            choice.value = path.name
        choice.refresh()
        self._follow(path)
        self._redraw()

    @work(thread=True, exclusive=True, group="series-follow", exit_on_error=False)
    def _follow(self, path: Path) -> None:
        """Thread worker: new events every POLL_SECONDS; predictions whenever their file changes."""
        from seqtui.engine.rundir import RunDir

        worker = get_current_worker()
        rd = RunDir(path)
        tail = rd.tail()
        seen: tuple | None = None
        data_sent = False
        while not worker.is_cancelled and self.app.is_running:
            events = tail.poll(max_bytes=4 << 20)
            if events:
                self.post_message(SeriesEvents(path, events))
            try:
                st = rd.predictions_path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            if stamp is not None and stamp != seen:
                seen = stamp
                self._load_predictions(rd, path)
                data_sent = True
            elif stamp is None and not data_sent:
                data_sent = True
                self._load_data(rd, path)
            if not path.exists():
                return
            if events and tail.offset < _size(tail.path):
                continue
            deadline = time.monotonic() + POLL_SECONDS
            while time.monotonic() < deadline and not worker.is_cancelled and self.app.is_running:
                time.sleep(0.05)

    def _load_predictions(self, rd, path: Path) -> None:
        from seqtui.engine.series_trainer import read_predictions

        try:
            pred = read_predictions(rd)
        except SeqtuiError as exc:
            self.post_message(SeriesData(path, error=str(exc)))
            return
        self.post_message(SeriesData(path, predictions=pred))

    def _load_data(self, rd, path: Path) -> None:
        """While the run trains: the series itself, so the chart is not empty."""
        from seqtui.data.series import load_series

        try:
            cfg = rd.config()
            s = load_series(cfg.source)
        except (SeqtuiError, AttributeError) as exc:
            self.post_message(SeriesData(path, error=str(exc)))
            return
        self.post_message(SeriesData(path, values=s.values, time=s.time))

    @on(SeriesEvents)
    def _on_events(self, message: SeriesEvents) -> None:
        if message.path != self.path:
            return
        for e in message.events:
            kind = e.get("type")
            if kind == "start":
                self.events = {"start": e}
                self.epochs = [x for x in self.epochs if (x.get("epoch") or 0) <= (e.get("epoch") or 0)]
            elif kind == "epoch":
                self.epochs = [x for x in self.epochs if x.get("epoch") != e.get("epoch")] + [e]
                self.events[kind] = e
            elif isinstance(kind, str):
                self.events[kind] = e
        self._redraw()

    @on(SeriesData)
    def _on_data(self, message: SeriesData) -> None:
        if message.path != self.path:
            return
        if message.error:
            self._status(message.error, error=True)
        if message.predictions is not None:
            self.pred = message.predictions
            ks = sorted(self.pred.get("kstep") or {})
            if ks and self.k not in ks:
                self.k = 16 if 16 in ks else ks[len(ks) // 2]
        if message.values is not None:
            self.values, self.time = message.values, message.time
        self._redraw()

    # -- drawing ----------------------------------------------------------------------------------
    def view(self) -> SeriesView | None:
        pred = self.pred
        values = pred.get("values") if pred else self.values
        if values is None:
            return None
        t = (pred.get("time") if pred else self.time)
        n = len(values)
        x = tuple(float(v) for v in t) if t is not None and len(t) == n else tuple(float(i) for i in range(n))
        if not pred:
            return SeriesView(x, tuple(float(v) for v in values))
        kstep = (pred.get("kstep") or {}).get(self.k)
        b = pred.get("boundary")
        boundary = x[b] if isinstance(b, int) and 0 <= b < n else None
        return SeriesView(x, tuple(float(v) for v in values),
                          tuple(float(v) for v in pred["one_step"]) if pred.get("one_step") is not None else (),
                          tuple(float(v) for v in kstep) if kstep is not None else (), self.k, boundary)

    def _redraw(self) -> None:
        info = self.info
        cfg = info.config if info is not None else None
        plot = self.query_one(SeriesPlot)
        if self.path is None:
            plot.border_title = "series"
            plot.show(None)
        else:
            label = run_label(cfg)
            plot.border_title = f"{self.path.name} · {short_source((cfg or {}).get('source'))} · {label}"
            waiting = "reading the run…" if self.pred is None else None
            plot.show(self.view(), waiting)
        self.query_one("#ser-progress", Static).update(self._progress_text())
        self.query_one("#ser-mse", Static).update(mse_table(self.pred, self.k, self.epochs))
        self.query_one("#ser-sweep", Static).update(
            Text("sweeping τ = 1…32…", style="italic") if self.sweep_source == "…" else
            sweep_text(self.sweep, (cfg or {}).get("tau") if cfg else None))
        if self.sweep and self.sweep_source:
            self.query_one("#ser-sweep").border_title = f"τ sweep · {short_source(self.sweep_source)}"
        key = (self.path, self.status)
        if key != self._bindings_for:
            self._bindings_for = key
            self.refresh_bindings()

    @property
    def status(self) -> str:
        end = self.events.get("end")
        if end is not None:
            return str(end.get("status") or "finished")
        if self.info is not None:
            return str(self.info.status)
        return "unknown" if self.path is not None else ""

    def _progress_text(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        if self.path is None:
            out.append(" no run", style="dim")
            return out
        status = self.status
        out.append(f" {STATUS_MARK.get(status, '?')} {status}", style=status_style(status))
        start = self.events.get("start") or {}
        total = (start.get("config") or {}).get("epochs") if isinstance(start.get("config"), dict) else None
        last = self.epochs[-1] if self.epochs else None
        if last is not None and not self.pred:
            out.append(f" · epoch {last.get('epoch')}" + (f"/{total}" if total else ""))
        if self.pred:
            out.append(f" · 1-step MSE train {fmt_mse(self.pred.get('train_mse'), 3)} "
                       f"val {fmt_mse(self.pred.get('val_mse'), 3)}")
        elif last is not None:
            out.append(f" · train {fmt_mse(last.get('train_mse'))} val {fmt_mse(last.get('val_mse'))}")
        progress = self.events.get("progress")
        if status == "running" and progress and isinstance(progress.get("windows_per_s"), (int, float)):
            out.append(f" · {progress['windows_per_s']:,.0f} win/s", style="dim")
        return out

    def _status(self, message: str, error: bool = False) -> None:
        self.query_one("#ser-status", Static).update(
            Text(("✗ " if error else " ") + message, style="bold red" if error else "dim",
                 no_wrap=True, overflow="ellipsis"))

    # -- actions ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "stop":
            return self.path is not None and self.status == "running"
        if action in ("k",):
            focused = self.focused
            return not isinstance(focused, (Input, Choice))
        return True

    def action_k(self, delta: int) -> None:
        ks = sorted((self.pred or {}).get("kstep") or {})
        if not ks:
            self._status("k-step predictions appear when the run has ended")
            return
        i = ks.index(self.k) if self.k in ks else 0
        self.k = ks[max(0, min(len(ks) - 1, i + delta))]
        self._redraw()

    def form_config(self) -> dict:
        """The SeriesRunConfig fields the form sets (checked by the engine, in a worker)."""
        tau_text = self.query_one("#ser-tau", Input).value.strip()
        return {"source": self.query_one("#ser-source", Choice).value,
                "tau": int(tau_text) if tau_text.isdigit() else tau_text,
                "model": self.query_one("#ser-model", Choice).value,
                "ks": self.query_one("#ser-ks", Input).value.strip() or DEFAULT_KS}

    def action_start(self) -> None:
        cfg = self.form_config()
        self._status(f"starting {cfg['model']} τ={cfg['tau']} on {cfg['source']}…")
        self.post_message(StartSeriesRun(cfg))

    @on(Button.Pressed, "#ser-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Input.Submitted)
    def _enter(self) -> None:
        self.action_start()

    @on(SeriesRunFailed)
    def _start_failed(self, message: SeriesRunFailed) -> None:
        self._status(message.message, error=True)

    def started(self, info: Any) -> None:
        """The app started a run from this screen: show it."""
        self._status(f"{info.name} training in the background (pid {info.pid})")
        self.set_focus(None)
        self.follow(info.path, info)

    def action_stop(self) -> None:
        if self.path is not None:
            self.post_message(StopRun(self.path))

    def action_sweep(self) -> None:
        cfg = series_config(self.info.config) if self.info is not None else None
        source = cfg.source if cfg is not None else self.query_one("#ser-source", Choice).value
        split = cfg.split if cfg is not None else 0.6
        tau = cfg.tau if cfg is not None else 4
        self.sweep_source = "…"
        self._redraw()
        self._tau_sweep(source, split, tau)

    @work(thread=True, exclusive=True, group="series-sweep", exit_on_error=False)
    def _tau_sweep(self, source: str, split, tau: int) -> None:
        from seqtui.data.series import load_series
        from seqtui.models.series import tau_sweep

        try:
            values = load_series(source).values
            rows, error = None, None
            for max_tau in (MAX_TAU, 16, 8, 4):
                try:
                    rows = tau_sweep(values, max_tau=max_tau, split=split, tau=min(tau, max_tau))
                    break
                except SeqtuiError as exc:
                    error = str(exc)
            self.post_message(TauSweepDone(source, rows, None if rows else error))
        except SeqtuiError as exc:
            self.post_message(TauSweepDone(source, None, str(exc)))

    @on(TauSweepDone)
    def _sweep_done(self, message: TauSweepDone) -> None:
        if message.error:
            self.sweep_source = None
            self._status(message.error, error=True)
        else:
            self.sweep, self.sweep_source = message.rows, message.source
        self._redraw()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
