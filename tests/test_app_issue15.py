"""Issue 15 leftovers: curves that differ by glyph (NO_COLOR), a legible failure under NO_COLOR,
--ansi without 256-colour styles, whole run names in the nav bar, esc in the Generate prompt,
and no stale Runs rows when the screen comes back."""

from __future__ import annotations

import time

from rich.color import ColorType
from rich.style import Style

from _fixtures_app import add_checkpoint_files, fake_loader, fake_memo_loader, pilot_test, record_run, screen_text
from test_app_screens import runs_dir  # noqa: F401 - fixture
from seqtui.ui.app import make_app

SIZE = (80, 24)


async def wait_for(pilot, predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        await pilot.pause(0.05)


def test_train_val_and_reference_differ_by_glyph_and_use_ansi_colours():
    from seqtui.ui.run_state import RunState
    from seqtui.ui.screens.train import curves
    from seqtui.ui.widgets.ppl_plot import REFERENCE_MARKER, PerplexityPlot, marker_glyph

    state = RunState("/tmp/x")
    state.train = [(10, 50.0), (20, 30.0)]
    state.val = [(10, 55.0), (20, 33.0)]
    state.baseline = {"order": 3, "val_ppl": 8.4}
    series, ref = curves(state)
    plot = PerplexityPlot()
    plot.set_curves(series, ref)
    legend = plot.legend()
    glyphs = [marker_glyph(s.marker) for s in series] + [REFERENCE_MARKER]
    assert len(set(glyphs)) == 3 and legend.plain.split() == [glyphs[0], "train", glyphs[1], "val",
                                                                 glyphs[2], "3-gram", "8.4"]
    for span in legend.spans:  # 16 ANSI colours only: the same as plotext draws, no 256-colour codes
        color = Style.parse(str(span.style)).color
        assert color is None or color.type in (ColorType.STANDARD, ColorType.DEFAULT), span.style


def test_failed_is_reversed_under_no_color(monkeypatch):
    from seqtui.ui.widgets.stats_panel import status_style

    assert "red" in status_style("failed")
    monkeypatch.setenv("NO_COLOR", "1")
    assert status_style("failed") == "bold reverse" and status_style("running") == "bold green"


def test_ansi_uses_the_terminal_palette():
    assert make_app(ansi_color=True).theme == "ansi-dark"
    assert make_app().theme != "ansi-dark"


def test_nav_shows_whole_run_names():
    from seqtui.ui.widgets.nav import nav_text

    for name in ("● genesis-gru", "● genesis-gru-2", "● shakespeare-lstm-12"):
        assert nav_text("train", name, 80).plain.rstrip().endswith(name)
    assert nav_text("train", "", 80).plain.startswith(" seqtui ")


@pilot_test
async def test_esc_in_the_prompt_makes_letters_keys_and_says_so(runs_dir):
    add_checkpoint_files(record_run("genesis-gru", status="finished"))
    app = make_app(screen="generate", cursor_blink=False, generator_loader=fake_loader(),
                   memo_loader=fake_memo_loader())
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.run_path is not None)
        await pilot.press(*"tr")
        assert screen.query_one("#gen-prompt").value == "tr" and app.current_mode == "generate"
        assert "letters are shortcuts" not in screen_text(app)
        await pilot.press("escape")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "letters are shortcuts now: / returns to the prompt" in text and "/ prompt" in text
        await pilot.press("slash")
        assert screen.typing
        await pilot.press("x")
        assert screen.query_one("#gen-prompt").value == "trx"
        await pilot.press("escape", "r")
        await wait_for(pilot, lambda: app.current_mode == "runs")


@pilot_test
async def test_runs_hides_stale_rows_until_the_fresh_list(runs_dir, monkeypatch):
    import shutil

    import seqtui.ui.screens.runs as runs_screen

    monkeypatch.setattr(runs_screen, "REFRESH_SECONDS", 0.2)
    record_run("a-gru", status="finished")
    gone = record_run("b-gone", status="finished")
    app = make_app(screen="runs", cursor_blink=False, attach=False)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("DataTable")
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("f3")
        shutil.rmtree(gone)
        await pilot.pause(0.4)
        version = app.runs_version
        await pilot.press("f5")
        assert table.loading or app.runs_version > version  # stale rows are not shown
        await wait_for(pilot, lambda: table.row_count == 1 and not table.loading)
        assert "b-gone" not in screen_text(app)
