"""Corpora: bundled and user corpora with size, characters, vocabulary, a preview, the most
frequent tokens and a rank-frequency (Zipf) plot; add a file by path; train on the selection.

Statistics need the whole text (a bundled corpus may first be extracted), so they are
computed in a thread worker and cached for the session.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static
from textual_plotext import PlotextPlot

from seqtui.errors import SeqtuiError
from seqtui.ui.messages import CorpusStats
from seqtui.ui.screens.base import DATASET_LOCK, WorkerErrors
from seqtui.ui.widgets.nav import NavBar

PREVIEW_CHARS = 600
TOP_TOKENS = 12
ZIPF_POINTS = 60


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"  # pragma: no cover


def log_spaced(counts, points: int = ZIPF_POINTS) -> list[tuple[int, int]]:
    """(rank, count) at about ``points`` ranks spread evenly in log space (ranks from 1)."""
    n = len(counts)
    if n == 0:
        return []
    top = math.log10(n)
    ranks = sorted({max(1, min(n, int(round(10 ** (top * i / points))))) for i in range(points + 1)})
    return [(r, int(counts[r - 1])) for r in ranks]


def corpus_stats(name: str) -> dict:
    """Size, characters, vocabulary, top n-grams and Zipf data of one corpus (via seqtui.data.stats).

    Tokenizes through the same cached pipeline as training (Numba): call it in a worker.
    """
    from seqtui.data.stats import corpus_stats as library_stats
    from seqtui.data.stats import zipf_stats
    from seqtui.data.text import TextConfig, load_dataset

    with DATASET_LOCK:
        cs = library_stats(name, preview_chars=PREVIEW_CHARS, top=TOP_TOKENS)
        ds = load_dataset(TextConfig(name))
        z = zipf_stats(ds.ids, ds.vocab, top=8, orders=(1, 2, 3))
    return {
        "bytes": cs.bytes,
        "chars": cs.chars,
        "vocab_size": cs.vocab_size,
        "top_chars": cs.top_tokens,
        "top": {n: [g.text for g in z.top[n]] for n in (2, 3)},
        "zipf": {n: log_spaced(z.rank_freq[n]) for n in (1, 2, 3)},
        "preview": cs.preview,
    }


def show_char(c: str) -> str:
    return {"\n": "⏎", " ": "␠", "\t": "⇥"}.get(c, c)


class AddCorpusScreen(WorkerErrors, ModalScreen):
    """Name + path of a UTF-8 file; validated by the engine, errors shown inline."""

    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = self.app.cursor_blink
        self.query_one("#add-path").focus()

    def compose(self) -> ComposeResult:
        with Vertical(id="add-box"):
            yield Label("Add a corpus (a UTF-8 text file; it is checked, not copied)", id="add-title")
            yield Input(placeholder="path, e.g. ~/texts/poems.txt", id="add-path")
            yield Input(placeholder="name (letters, digits, . _ -)", id="add-name")
            yield Static("", id="add-error")
            with Horizontal(id="add-buttons"):
                yield Button("Add", id="add-ok", variant="primary", compact=True)
                yield Button("Cancel", id="add-cancel", compact=True)

    @on(Input.Changed, "#add-path")
    def _suggest_name(self, event: Input.Changed) -> None:
        name = self.query_one("#add-name", Input)
        if not name.has_focus:
            stem = Path(event.value.strip()).stem
            name.value = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem)[:64]

    @on(Input.Submitted)
    @on(Button.Pressed, "#add-ok")
    def _add(self) -> None:
        path = self.query_one("#add-path", Input).value.strip()
        name = self.query_one("#add-name", Input).value.strip()
        self.query_one("#add-error", Static).update(Text("checking…", style="dim"))
        self._register(name, path)

    @on(Button.Pressed, "#add-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _register(self, name: str, path: str) -> None:
        from seqtui.data.corpora import add_corpus

        try:
            info = add_corpus(name, path)
        except SeqtuiError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self.dismiss, info.name)

    def _failed(self, message: str) -> None:
        self.query_one("#add-error", Static).update(Text("✗ " + message, style="bold red"))


class CorporaTable(DataTable):
    """The corpus list; enter opens the Train form with the highlighted corpus."""

    BINDINGS = [Binding("enter", "select_cursor", "Train on it")]


class CorporaScreen(WorkerErrors, Screen):
    """The corpus list on the left, the selected corpus's details on the right."""

    BINDINGS = [Binding("a", "add", "Add file")]

    def __init__(self) -> None:
        super().__init__()
        self._infos: dict[str, object] = {}
        self._computing: set[str] = set()  # one statistics worker per corpus

    def compose(self) -> ComposeResult:
        yield NavBar("corpora", id="nav")
        with Horizontal(id="corpora-body"):
            yield CorporaTable(id="corpora-table", cursor_type="row")
            with VerticalScroll(id="corpus-detail"):
                yield Static("", id="corpus-about")
                yield Static("", id="corpus-stats")
                yield PlotextPlot(id="zipf")
                yield Static("", id="corpus-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#zipf").border_title = "Zipf: log₁₀ count vs log₁₀ rank (characters)"
        self.query_one("#corpus-preview").border_title = "preview"
        table = self.query_one(DataTable)
        table.add_column("corpus", width=14, key="name")
        table.add_column("size", width=8, key="size")
        self.reload()
        table.focus()

    def reload(self, select: str | None = None) -> None:
        from seqtui.data.corpora import list_corpora

        try:
            infos = list_corpora()
        except SeqtuiError as exc:
            self.notify(str(exc), severity="error")
            infos = []
        self._infos = {i.name: i for i in infos}
        table = self.query_one(DataTable)
        table.clear()
        for info in infos:
            size = human_bytes(info.size_bytes)
            if not info.available:
                size = "missing"
            name = Text(info.name, style="" if info.available else "dim")
            table.add_row(name, size, key=info.name)
        want = select or self.app.preselect_corpus
        if want in self._infos:
            table.move_cursor(row=table.get_row_index(want), animate=False)
        self._show_selected()

    @property
    def selected(self):
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001
            return None
        return self._infos.get(key)

    @on(DataTable.RowHighlighted)
    def _show_selected(self) -> None:
        info = self.selected
        about = self.query_one("#corpus-about", Static)
        if info is None:
            about.update("no corpora")
            return
        text = Text()
        text.append(info.title, style="bold")
        text.append(f"  [{info.kind}]\n", style="dim")
        if info.description:
            text.append(info.description + "\n")
        if info.licence:
            text.append(f"licence: {info.licence}\n", style="dim")
        if not info.available:
            text.append(f"not available: {info.install_hint}\n", style="bold yellow")
        about.update(text)
        stats = self.app.corpus_stats.get(info.name)
        if stats is not None:
            self._show_stats(info.name, stats)
        elif info.available:
            self._clear_stats("computing statistics… (the first time reads and encodes the corpus)")
            if info.name not in self._computing:
                self._computing.add(info.name)
                self._compute(info.name)
        else:
            self._clear_stats("")

    def _clear_stats(self, message: str) -> None:
        self.query_one("#corpus-stats", Static).update(Text(message, style="dim"))
        self.query_one("#corpus-preview", Static).update("")
        plot = self.query_one("#zipf", PlotextPlot)
        plot.plt.clear_data()
        plot.display = False

    @work(thread=True, group="corpus-stats", exit_on_error=False)
    def _compute(self, name: str) -> None:
        try:
            self.post_message(CorpusStats(name, corpus_stats(name)))
        except SeqtuiError as exc:
            self.post_message(CorpusStats(name, None, str(exc)))
        except OSError as exc:
            self.post_message(CorpusStats(name, None, f"{exc.strerror or exc}"))
        except Exception as exc:  # noqa: BLE001 - shown, and the corpus can be tried again
            self.post_message(CorpusStats(name, None, f"{type(exc).__name__}: {exc}"))

    @on(CorpusStats)
    def _stats_ready(self, message: CorpusStats) -> None:
        self._computing.discard(message.name)
        if message.stats is None:
            self.notify(message.error or "cannot read corpus", title=message.name, severity="error")
            if self.selected is not None and self.selected.name == message.name:
                self._clear_stats("✗ " + (message.error or "cannot read corpus"))
            return
        self.app.corpus_stats[message.name] = message.stats
        if self.selected is not None and self.selected.name == message.name:
            self._show_stats(message.name, message.stats)

    def _show_stats(self, name: str, stats: dict) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row("size", f"{human_bytes(stats['bytes'])} · {stats['chars']:,} characters · "
                             f"vocabulary {stats['vocab_size']} (with <unk>)")
        grid.add_row("top chars", Text(" ".join(show_char(c) for c, _ in stats["top_chars"])))
        for n, label in ((2, "bigrams"), (3, "trigrams")):
            grid.add_row(f"top {label}", Text("  ".join("".join(map(show_char, g)) for g in stats["top"][n])))
        self.query_one("#corpus-stats", Static).update(grid)
        self.query_one("#corpus-preview", Static).update(Text(stats["preview"]))
        plot = self.query_one("#zipf", PlotextPlot)
        plot.display = any(stats["zipf"].values())
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        for n, color in ((1, "cyan"), (2, "orange"), (3, "green")):
            points = stats["zipf"].get(n) or []
            if points:
                plt.plot([math.log10(r) for r, _ in points], [math.log10(c) for _, c in points],
                         marker="braille", color=color)
        plot.border_subtitle = Text.assemble(("━ unigram ", "cyan"), ("━ bigram ", "yellow"),
                                             ("━ trigram", "green"))
        plot.refresh()

    # -- actions ---------------------------------------------------------------------------------
    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_train()

    def action_train(self) -> None:
        info = self.selected
        if info is None:
            return
        if not info.available:
            self.notify(f"{info.name} is not available: {info.install_hint}", severity="warning")
            return
        self.app.action_new_run(info.name)

    def action_add(self) -> None:
        def added(name: str | None) -> None:
            if name:
                self.notify(f"added corpus {name}", timeout=3)
                self.reload(select=name)

        self.app.push_screen(AddCorpusScreen(), added)
