"""Runs: every run with status, corpus, model and best validation perplexity; attach, stop,
resume, delete (after confirmation) and compare two runs' curves.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Label, Static

from seqtui.ui.messages import AttachRun, RemoveRun, ResumeRun, RunsChanged, StopRun
from seqtui.ui.screens.base import WorkerErrors
from seqtui.ui.screens.series import fmt_mse, run_label as series_label, short_source
from seqtui.ui.widgets.nav import NavBar
from seqtui.ui.widgets.ppl_plot import PerplexityPlot, Series, rich_color
from seqtui.ui.run_state import STATUS_MARK, RunState, fmt_ppl, model_label
from seqtui.ui.widgets.stats_panel import status_style

REFRESH_SECONDS = 2.0
COMPARE_COLORS = (("cyan", "blue"), ("orange", "red"))


COLUMNS = ("", "run", "status", "data", "model", "step", "best val", "bpc")
EARLY = "early-stopped"


def status_text(info) -> Text:
    """``✓ finished``; a run that stopped itself for lack of progress says ``✓ early-stopped``."""
    if info.status == "finished" and info.reason == EARLY:
        return Text(f"{STATUS_MARK['finished']} {EARLY}", style="cyan")
    return Text(f"{STATUS_MARK.get(info.status, '?')} {info.status}", style=status_style(info.status))


def fmt_bpc(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def is_series(info) -> bool:
    return getattr(info, "kind", "text") == "series"


def run_model(info) -> str:
    """``GRU 1×128`` for a text run, ``mlp τ=4 H=10`` for a series run."""
    cfg = info.config or {}
    if is_series(info):
        return series_label(cfg)
    return model_label(cfg) if cfg else "?"


def run_source(info) -> str:
    cfg = info.config or {}
    if is_series(info):
        return short_source(cfg.get("source"))
    return Path(str(cfg.get("corpus") or "?")).name


def run_row(info, marked: bool, bpc: float | None = None) -> tuple:
    """The table cells of one RunInfo (``bpc``: its best validation bits per character)."""
    step = f"{info.last_step:,}" + (f"/{info.total_steps:,}" if info.total_steps else "")
    status = status_text(info)
    best = (Text(f"mse {fmt_mse(info.best_val_mse)}") if is_series(info)
            else Text(fmt_ppl(info.best_val_ppl)))
    # Text, not str: a DataTable reads str cells as markup ("[x]" in a corpus path would vanish)
    return ("◆" if marked else " ", Text(info.name), status, Text(run_source(info)),
            Text(run_model(info)), Text(step), best, Text(fmt_bpc(bpc)))


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no before something that cannot be undone."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(Text(self.question), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Delete (y)", id="yes", variant="error", compact=True)
                yield Button("Keep (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no").focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class CompareScreen(WorkerErrors, Screen):
    """Two runs' train and validation curves on one plot (escape returns)."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, paths: list[Path], bpc: dict | None = None) -> None:
        super().__init__()
        self.paths = paths
        self.bpc = bpc or {}

    def compose(self) -> ComposeResult:
        yield NavBar("runs", id="nav")
        yield Static(" loading…", id="compare-title")
        yield PerplexityPlot(id="compare-plot", empty_message="loading events…")
        yield Static("", id="compare-legend")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-plot").border_title = "perplexity (log scale) · ⠤ train, ▄ val"
        self._load()

    @work(thread=True, exit_on_error=False)
    def _load(self) -> None:
        from seqtui.engine.rundir import RunDir

        states = []
        for path in self.paths:
            state = RunState(path)
            events = RunDir(path).events()
            state.ingest(events)
            bpcs = [e["bits_per_char"] for e in events if e.get("type") == "val"
                    and isinstance(e.get("bits_per_char"), (int, float))]
            if bpcs:
                self.bpc[path] = min(bpcs)
            states.append(state)
        # ranked by bits per character (comparable across vocabularies), then by perplexity
        states.sort(key=lambda s: (self.bpc.get(s.path, float("inf")), s.best_val or float("inf")))
        self.app.call_from_thread(self._show, states)

    def _show(self, states: list[RunState]) -> None:
        series = []
        legend = Text(no_wrap=True, overflow="ellipsis")
        for rank, (state, (c_train, c_val)) in enumerate(zip(states, COMPARE_COLORS), 1):
            series.append(Series(f"{state.name} train", tuple(state.train), c_train))
            if state.val:
                series.append(Series(f"{state.name} val", tuple(state.val), c_val, marker="hd"))
            bpc = self.bpc.get(state.path)
            legend.append(f" {rank}. {state.name}: {state.model_label}, val {fmt_ppl(state.best_val)}"
                          + (f", {bpc:.3f} bpc " if bpc is not None else " "),
                          style=f"bold {rich_color(c_train)}")
        self.query_one(PerplexityPlot).set_curves(series)
        self.query_one("#compare-title", Static).update(
            Text(" compare " + "  vs  ".join(s.name for s in states) + "  (best bits per char first)",
                 style="bold", no_wrap=True, overflow="ellipsis"))
        self.query_one("#compare-legend", Static).update(legend)


class RunsTable(DataTable):
    """The runs table; enter attaches (shown in the footer)."""

    BINDINGS = [Binding("enter", "select_cursor", "Attach")]


class RunsScreen(Screen):
    """The runs table, refreshed every 2 s while visible."""

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("u", "resume", "Resume"),
        Binding("x,delete", "delete", "Delete"),
        Binding("space", "mark", "Mark"),
        Binding("v", "compare", "Compare"),
        Binding("o", "order", "Order"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[str] = []
        self._shown_version = -1
        self._by_name: dict[str, object] = {}
        self._bindings_for: tuple | None = None
        self.order = "newest"   # or "bpc": best bits per character first

    def compose(self) -> ComposeResult:
        yield NavBar("runs", id="nav")
        yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self._add_columns(table, [])
        self.set_interval(REFRESH_SECONDS, self._tick)
        self.refresh_view()

    def on_screen_resume(self) -> None:
        """Coming back: rows older than one refresh are hidden behind a loading indicator until
        the fresh list arrives (a second or two of stale statuses and deleted runs otherwise)."""
        self.app.refresh_runs()
        when = getattr(self.app, "runs_time", None)
        if when is not None and time.monotonic() - when > REFRESH_SECONDS:
            self.query_one(DataTable).loading = True
        else:
            self.refresh_view()

    def _tick(self) -> None:
        if self.is_current:
            self.app.refresh_runs()  # answered by RunsChanged

    @on(RunsChanged)
    def _runs_changed(self) -> None:
        self.query_one(DataTable).loading = False
        self.refresh_view()

    def refresh_view(self) -> None:
        if self.app.runs_version == self._shown_version or not self.query(DataTable):
            return  # unchanged, or not composed yet (a runs list can arrive before the widgets)
        self._shown_version = self.app.runs_version
        runs = list(self.app.runs)
        bpc = getattr(self.app, "runs_bpc", {})
        if self.order == "bpc":
            runs.sort(key=lambda r: bpc.get(r.path, float("inf")))
        self._by_name = {r.name: r for r in runs}
        self.marked = [m for m in self.marked if m in self._by_name]
        table = self.query_one(DataTable)
        cursor_key = self.selected_name
        rows = [run_row(info, info.name in self.marked, bpc.get(info.path)) for info in runs]
        table.clear(columns=True)
        self._add_columns(table, rows)
        for info, row in zip(runs, rows):
            table.add_row(*row, key=info.name)
        if cursor_key in self._by_name:
            table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
        order = " · best bpc first" if self.order == "bpc" else ""
        self.query_one(NavBar).set_status(f"{len(runs)} run" + ("" if len(runs) == 1 else "s") + order)
        self._show_detail()

    @staticmethod
    def _add_columns(table: DataTable, rows: list[tuple]) -> None:
        """Columns as wide as their content: whole run names, step counts and sizes."""
        for i, label in enumerate(COLUMNS):
            cells = [Text(str(r[i])) if not isinstance(r[i], Text) else r[i] for r in rows]
            width = max([len(label), 1, *(c.cell_len for c in cells)])
            table.add_column(label, width=width, key=label or "mark")

    @property
    def selected_name(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - cursor outside the rows
            return None

    @property
    def selected(self):
        return self._by_name.get(self.selected_name or "")

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        info = self.selected
        key = (info.status if info else None, len(self.marked), self.selected_name in self.marked)
        if key != self._bindings_for:  # stop/resume/compare depend on the highlighted run
            self._bindings_for = key
            self.refresh_bindings()
        detail = self.query_one("#runs-detail", Static)
        if info is None:
            detail.update(Text(" no runs yet — start one on the Train screen (F3, n)", style="dim"))
            return
        from seqtui.engine.runs import runs_root

        cfg = info.config or {}
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {info.name}", style="bold")
        if cfg and is_series(info):
            text.append(f"  series {run_model(info)} on {run_source(info)} · {cfg.get('epochs')} epochs · "
                        f"batch {cfg.get('batch')} · {cfg.get('optimizer')} lr {cfg.get('lr')}", style="dim")
        elif cfg:
            text.append(f"  {model_label(cfg)} · B{cfg.get('batch_size')} T{cfg.get('num_steps')} · "
                        f"{cfg.get('optimizer')} lr {cfg.get('lr')} · bptt {cfg.get('bptt')}", style="dim")
        if info.path.parent != runs_root():
            text.append(f"\n {info.path}", style="dim")
        if info.reason and info.reason != info.status:
            style = "bold red" if info.status == "failed" else "dim"
            text.append(f"\n {info.status}: {info.reason}", style=style)
        if self.marked:
            text.append(f"\n marked for compare: {', '.join(self.marked)} (v compares)", style="italic")
        detail.update(text)

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        info = self.selected
        if action == "stop":
            return info is not None and info.status == "running"
        if action == "resume":
            return info is not None and info.status in ("stopped", "failed")
        if action in ("delete", "mark"):
            return info is not None
        if action == "compare":
            return len(self.marked) >= 2 or (len(self.marked) == 1 and info is not None
                                             and info.name not in self.marked)
        return True

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_attach()

    def action_attach(self) -> None:
        info = self.selected
        if info is None:
            return
        self.post_message(AttachRun(info.path, info))

    def action_stop(self) -> None:
        if self.selected is not None:
            self.post_message(StopRun(self.selected.path))

    def action_resume(self) -> None:
        if self.selected is not None:
            self.post_message(ResumeRun(self.selected.path))

    def action_delete(self) -> None:
        info = self.selected
        if info is None:
            return
        if info.status == "running":
            self.notify(f"{info.name} is running; stop it first (s)", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.post_message(RemoveRun(info.path))

        self.app.push_screen(ConfirmScreen(f"Delete run {info.name} and its checkpoints?"), done)

    def action_order(self) -> None:
        """Newest first, or best bits per character first (the ranking the compare view uses)."""
        self.order = "bpc" if self.order == "newest" else "newest"
        self._shown_version = -1
        self.refresh_view()
        self.notify("best bits per character first" if self.order == "bpc" else "newest first",
                    title="runs order", timeout=2)

    def action_mark(self) -> None:
        name = self.selected_name
        if name is None:
            return
        if name in self.marked:
            self.marked.remove(name)
        else:
            self.marked = (self.marked + [name])[-2:]
        table = self.query_one(DataTable)
        for row_key in list(table.rows):
            table.update_cell(row_key, "mark", "◆" if row_key.value in self.marked else " ")
        self._show_detail()

    def action_compare(self) -> None:
        names = list(self.marked)
        if len(names) == 1 and self.selected_name and self.selected_name not in names:
            names.append(self.selected_name)
        if len(names) < 2:
            self.notify("mark two runs with space, then press v", severity="warning")
            return
        self.app.push_screen(CompareScreen([self._by_name[n].path for n in names[:2]],
                                           dict(getattr(self.app, "runs_bpc", {}))))
