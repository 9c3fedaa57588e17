"""Snapshots of every screen at 80×24 (pytest-textual-snapshot; textual, rich and syrupy pinned).

Each screen is fed a recorded run (fixed event times), cursor blink is off and generation uses a
fixed clock, so the pictures only change when the UI does. After an intended change:
``python -m pytest tests/test_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import itertools
import time

import pytest

from _fixtures_app import fake_estimator, fake_memo_loader, TINY_TEXT, add_checkpoint_files, fake_loader, record_run, series_run

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Fresh data and cache dirs: nothing from other tests (materialized corpora, runs) shows."""
    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEQTUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def make(**options):
    from seqtui.ui.app import make_app

    options.setdefault("generator_loader", fake_loader())
    options.setdefault("memo_loader", fake_memo_loader())
    options.setdefault("estimator", fake_estimator())
    options.setdefault("cursor_blink", False)
    return make_app(**options)


def until(predicate, timeout: float = 20.0):
    """A run_before callback that waits for ``predicate(app)`` and one more refresh tick."""

    async def run_before(pilot) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(pilot.app):
            assert time.monotonic() < deadline, "snapshot precondition never held"
            await pilot.pause(0.05)
        await pilot.pause(0.7)

    return run_before


def attached(steps: int):
    return lambda app: app.state is not None and app.state.step >= steps and app.state.status != "unknown"


def test_train_running(snap_compare):
    record_run("genesis-gru", status="running")
    assert snap_compare(make(), terminal_size=SIZE,
                        run_before=until(lambda app: attached(400)(app) and app.screen.memo_score is not None))


def test_train_form(snap_compare):
    assert snap_compare(make(corpus="genesis"), terminal_size=SIZE,
                        run_before=until(lambda app: not app.attaching and app.screen.showing_form
                                         and app.screen.query_one("TrainForm").estimate is not None))


def test_gradients_truncated(snap_compare):
    record_run("genesis-gru", status="finished", bptt="truncated:10")
    assert snap_compare(make(screen="gradients"), terminal_size=SIZE, run_before=until(attached(400)))


def test_runs(snap_compare):
    record_run("a-gru", status="finished", steps=1000)
    record_run("b-lstm", status="failed", steps=300, error="loss became NaN at step 300")
    record_run("c-rnn", status="running")
    assert snap_compare(make(screen="runs"), terminal_size=SIZE,
                        run_before=until(lambda app: app.screen.query_one("DataTable").row_count == 3))


def test_compare(snap_compare):
    record_run("a-gru", status="finished", steps=1000)
    record_run("b-lstm", status="finished", steps=600)

    async def run_before(pilot):
        app = pilot.app
        await until(lambda a: a.screen.query_one("DataTable").row_count == 2)(pilot)
        await pilot.press("space", "down", "space", "v")
        await until(lambda a: type(a.screen).__name__ == "CompareScreen"
                    and len(a.screen.query_one("PerplexityPlot").series) == 4)(pilot)

    assert snap_compare(make(screen="runs"), terminal_size=SIZE, run_before=run_before)


def test_generate(snap_compare, monkeypatch):
    import seqtui.ui.screens.generate as generate

    ticks = itertools.count()
    monkeypatch.setattr(generate, "clock", lambda: next(ticks) * 0.001)
    path = record_run("genesis-gru", status="finished")
    add_checkpoint_files(path)

    async def run_before(pilot):
        app = pilot.app
        await until(lambda a: a.screen.run_path is not None)(pilot)
        await pilot.press(*"In the Beginning")

        def done(a):
            sub = str(a.screen.query_one("#gen-out").border_subtitle)
            return (str(a.screen.query_one("#gen-text").render()).startswith("In the Beginning")
                    and "…" not in sub and "tokens" in sub and a.screen.memo_score is not None)

        await until(done)(pilot)

    assert snap_compare(make(screen="generate"), terminal_size=SIZE, run_before=run_before)


def test_corpora(snap_compare, isolated, monkeypatch):
    import seqtui.data.corpora as corpora

    tiny = isolated / "tiny.txt"
    tiny.write_text(TINY_TEXT, encoding="utf-8")
    corpora.add_corpus("tiny", tiny)
    real = corpora.list_corpora
    # Only corpora whose presence does not depend on optional packages.
    monkeypatch.setattr(corpora, "list_corpora", lambda: [c for c in real() if c.name in ("genesis", "tiny")])
    assert snap_compare(make(screen="corpora", corpus="tiny"), terminal_size=SIZE,
                        run_before=until(lambda app: "tiny" in app.corpus_stats, timeout=60))


def test_help(snap_compare):
    assert snap_compare(make(attach=False), terminal_size=SIZE, press=["f1"])


def test_series(snap_compare):
    series_run()
    assert snap_compare(make(screen="series"), terminal_size=SIZE,
                        run_before=until(lambda app: app.screen.pred is not None))
