"""Help: what each screen shows and every key, generated from the real bindings.

``help_markdown()`` is also what ``docs/keys.md`` holds (a test keeps the two identical), so the
documentation cannot drift from the code.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

KEY_NAMES = {
    "question_mark": "?", "escape": "esc", "up": "↑", "down": "↓", "left": "←", "right": "→",
    "shift+up": "shift+↑", "shift+down": "shift+↓", "pageup": "PgUp", "pagedown": "PgDn",
    "delete": "Del", "enter": "enter", "space": "space",
}

INTRO = """\
# seqtui — keys and screens

seqtui trains character-level recurrent language models (RNN, GRU, LSTM) and shows them learning.
Runs train in their own background process: quitting the app (or losing an SSH connection) never
stops a run, and opening the app again re-attaches to it.

A first session: **F2** (Corpora) → pick a corpus → **enter** opens the Train form with it →
**ctrl+s** starts the run → watch perplexity fall → **F4** (Gradients) to see what backpropagation
through time does → **F6** (Generate) to type a prompt and read the model's continuation.

Function keys work everywhere; the letter shortcuts work whenever no text field has the focus
(**esc** leaves a field). **ctrl+p** opens the command palette.
"""

SCREEN_NOTES = {
    "Corpora": "Bundled and registered corpora: size, vocabulary, most frequent tokens, a Zipf plot.",
    "Train": ("The attached run live: train and validation perplexity (log scale) against the n-gram "
              "baseline, tokens/s, ETA, gradient norm against the clip threshold, the latest sample."),
    "New-run form": ("Every training option; ← / → / space cycle a choice, tab moves between fields, "
                     "errors show under the form as you type."),
    "Gradients": ("‖∂L/∂h_t‖ for each step t of a window, on a log scale, and its history: "
                  "vanishing and exploding gradients, and what clipping and truncation do."),
    "Runs": ("All runs: status (early-stopped runs say so), data, model, best validation perplexity "
             "(series runs: MSE) and bits per character; o orders them by bits per character; mark two "
             "with space to compare (ranked by bits per character)."),
    "Series": ("A numeric series (sine, sunspots, …) and a τ-window model (linear, MLP, RNN, GRU, LSTM): "
               "the data, the 1-step and the k-step predictions over time with the train/validation "
               "boundary, the MSE against k and the linear τ-sweep. tab moves to the form; ctrl+s "
               "starts a run in the background."),
    "Generate": ("Pick a run (tab, then ← / →), type a prompt; the continuation restarts as you type "
                 "(enter re-rolls). esc leaves the prompt: the letters are then shortcuts to the "
                 "other screens (the status line says so) and / returns to the prompt. "
                 "Spans copied from the training text are underlined, with the longest copy and the "
                 "share of the continuation in copies of 20+ tokens. "
                 "Characters the model never saw are flagged and read as `<unk>`."),
}


def key_label(binding: Binding) -> str:
    if binding.key_display and binding.key not in ("up", "down", "shift+up", "shift+down",
                                                     "pageup", "pagedown"):
        return binding.key_display
    return " / ".join(KEY_NAMES.get(k.strip(), k.strip().upper() if k.strip().startswith("f") and
                                    k.strip()[1:].isdigit() else k.strip())
                      for k in binding.key.split(","))


def binding_rows(bindings) -> list[tuple[str, str]]:
    """(keys, description) rows; consecutive bindings with one description share a row."""
    rows: list[tuple[str, str]] = []
    for b in bindings:
        b = b if isinstance(b, Binding) else Binding(*b)
        desc = b.description or b.action
        if rows and rows[-1][1] == desc:
            rows[-1] = (f"{rows[-1][0]} / {key_label(b)}", desc)
        else:
            rows.append((key_label(b), desc))
    return rows


def _table(rows: list[tuple[str, str]]) -> str:
    lines = ["| key | action |", "|---|---|"]
    lines += [f"| {k.replace('|', '&#124;')} | {d} |" for k, d in rows]
    return "\n".join(lines)


def help_markdown() -> str:
    """The help text: intro, global keys, then each screen's notes and keys."""
    from seqtui.ui.screens.corpora import CorporaScreen, CorporaTable
    from seqtui.ui.screens.generate import GenerateScreen
    from seqtui.ui.screens.gradients import GradientsScreen
    from seqtui.ui.screens.runs import RunsScreen, RunsTable
    from seqtui.ui.screens.series import SeriesScreen
    from seqtui.ui.screens.train import TrainScreen
    from seqtui.ui.screens.train_form import TrainForm
    from seqtui.ui.screen_list import SCREENS

    nav = [(f"{e.fkey.upper()} / {e.letter}", e.label) for e in SCREENS]
    global_rows = nav + [("F1 / ?", "Help (this page)"), ("ctrl+p", "Command palette"),
                         ("ctrl+q", "Quit (runs keep training)")]
    parts = [INTRO, "## Everywhere\n\n" + _table(global_rows)]
    for title, bindings in (
        ("Corpora", CorporaTable.BINDINGS + CorporaScreen.BINDINGS),
        ("Train", [b for b in TrainScreen.BINDINGS if b.action != "cancel_form"]),
        ("New-run form", TrainForm.BINDINGS + [Binding("escape", "", "Back to the live run")]),
        ("Gradients", GradientsScreen.BINDINGS),
        ("Runs", RunsTable.BINDINGS + RunsScreen.BINDINGS),
        ("Generate", GenerateScreen.BINDINGS),
        ("Series", SeriesScreen.BINDINGS),
    ):
        rows = binding_rows(bindings)
        parts.append(f"## {title}\n\n{SCREEN_NOTES[title]}\n\n{_table(rows)}")
    return "\n\n".join(parts) + "\n"


class HelpScreen(ModalScreen):
    """The help page over the current screen (escape, q or F1 closes it)."""

    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(help_markdown())
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()
