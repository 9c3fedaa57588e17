"""The Series screen (issue 9): a recorded series run's chart, k-step curves that follow k, MSE
against k, the τ sweep, live epochs from events, starting a run (refused input as a status line),
and series runs in the Runs table."""

from __future__ import annotations

import json
import time

import pytest

from _fixtures_app import pilot_test, record_run, screen_text, series_run
from seqtui.ui.app import make_app

SIZE = (80, 24)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "runs"


async def wait_for(pilot, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        await pilot.pause(0.05)


def app_for_tests(**options):
    options.setdefault("cursor_blink", False)
    return make_app(**options)


@pilot_test
async def test_series_screen_shows_a_finished_run(runs_dir):
    series_run()
    app = app_for_tests(screen="series")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.pred is not None)
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "sine-linear · sine · linear τ=4" in text
        assert "MSE vs k" in text and "✓ finished" in text
        assert "1-step" in text and "16-step" in text and "val→" in text
        plot = screen.query_one("SeriesPlot")
        assert plot.view.k == 16 and len(plot.view.kstep) == 1000
        assert plot.view.boundary == plot.view.x[screen.pred["boundary"]]
        # → and ← change the k-step curve
        await pilot.press("right")
        assert screen.k == 64 and plot.view.k == 64 and "64-step" in screen_text(app)
        await pilot.press("left", "left")
        assert screen.k == 4 and "4-step" in str(plot.border_subtitle)
        await pilot.press("left", "left")
        assert screen.k == 1
        # the τ sweep runs in a worker
        await pilot.press("w")
        await wait_for(pilot, lambda: screen.sweep is not None)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "best τ=" in text and "τ=32" in text


@pilot_test
async def test_series_run_live_epochs_from_events(runs_dir):
    """A running series run (recorded events, no predictions yet) shows its epochs as they come."""
    path = series_run()
    rd_events = path / "events.jsonl"
    lines = [json.loads(x) for x in rd_events.read_text().splitlines()]
    (path / "predictions.safetensors").unlink()  # as if still training
    start = next(e for e in lines if e["type"] == "start")
    rd_events.write_text(json.dumps(start) + "\n")
    (path / "pid").write_text("999999\n")
    app = app_for_tests(screen="series")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.values is not None)
        with rd_events.open("a") as f:
            f.write(json.dumps({"v": 1, "type": "epoch", "time": time.time(), "step": 1, "epoch": 1,
                                "train_mse": 0.0512, "val_mse": 0.0456}) + "\n")
        await wait_for(pilot, lambda: screen.epochs)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "epoch 1" in text and "0.0512" in text and "0.0456" in text
        assert "MSE per k" not in text  # the epochs table replaces it while training
        await pilot.press("right")  # no k-step predictions yet: says so
        assert "appear when the run has ended" in screen_text(app)


@pilot_test
async def test_series_start_refused_and_started(runs_dir, monkeypatch):
    app = app_for_tests(screen="series")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.pause(0.2)
        screen.query_one("#ser-ks").value = "0,4"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "✗" in str(screen.query_one("#ser-status").render()))
        assert "k must be a positive integer" in screen_text(app)
        assert not runs_dir.exists() or not any(runs_dir.iterdir())

        started = {}
        series_run("sine-mlp-1", model="linear")  # what the fake start makes (made before patching)

        def fake_start_run(cfg, name=None, **kw):
            from seqtui.engine.runs import get_dir

            started["cfg"] = cfg
            return get_dir("sine-mlp-1")

        monkeypatch.setattr("seqtui.engine.runs.start_run", fake_start_run)
        screen.query_one("#ser-ks").value = "1,8"
        screen.query_one("#ser-tau").value = "6"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.path is not None and screen.path.name == "sine-mlp-1")
        cfg = started["cfg"]
        assert (cfg.source, cfg.tau, cfg.model, cfg.ks) == ("sine", 6, "mlp", (1, 8))
        await wait_for(pilot, lambda: screen.pred is not None)


@pilot_test
async def test_runs_screen_labels_series_runs(runs_dir):
    series_run("sine-lin")
    record_run("a-gru", status="finished", steps=1000)
    app = app_for_tests(screen="runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count == 2)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "linear τ=4" in text and "sine" in text and "? 1×None" not in text
        # enter on a series run opens the Series screen on it
        table = app.screen.query_one("DataTable")
        table.move_cursor(row=table.get_row_index("sine-lin"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "series")
        await wait_for(pilot, lambda: app.screen.path is not None and app.screen.path.name == "sine-lin")


@pilot_test
async def test_runs_early_stopped_bpc_and_order(runs_dir):
    record_run("a-gru", status="finished", steps=1000)           # best val lower: fewer bits per char
    record_run("b-lstm", status="finished", steps=300, reason="early-stopped")
    app = app_for_tests(screen="runs")
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("DataTable")
        await wait_for(pilot, lambda: table.row_count == 2 and app.runs_bpc)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "✓ early-stopped" in text and "bpc" in text
        a_bpc = app.runs_bpc[runs_dir / "a-gru"]
        assert f"{a_bpc:.3f}" in text and a_bpc < app.runs_bpc[runs_dir / "b-lstm"]
        names = lambda: [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]
        first = names()
        await pilot.press("o")
        assert names() == ["a-gru", "b-lstm"] and "best bpc first" in screen_text(app)
        await pilot.press("o")
        assert names() == first
        # compare ranks by bits per character
        await pilot.press("space", "down", "space", "v")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen"
                       and len(app.screen.query_one("PerplexityPlot").series) == 4)
        await pilot.pause(0.1)
        legend = str(app.screen.query_one("#compare-legend").render())
        assert legend.index("1. a-gru") < legend.index("2. b-lstm") and "bpc" in legend


@pilot_test
async def test_opening_the_app_on_a_series_run_shows_the_series_screen(runs_dir):
    series_run("sine-lin")
    app = app_for_tests(run="sine-lin")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "series")
        await wait_for(pilot, lambda: app.screen.pred is not None)
        assert app.state is None  # the Train screen does not show a series run as a text run


@pilot_test
async def test_start_trains_a_detached_series_run_and_shows_it(runs_dir):
    """The real thing: Start spawns the engine's worker; its epochs and predictions arrive live."""
    app = app_for_tests(screen="series")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.pause(0.2)
        screen.query_one("#ser-model").value = "linear"
        screen.query_one("#ser-ks").value = "1,8,32"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.path is not None, timeout=30)
        await wait_for(pilot, lambda: screen.pred is not None, timeout=90)
        assert sorted(screen.pred["kstep"]) == [1, 8, 32] and screen.k == 8
        assert screen.epochs and screen.status == "finished"
        assert "linear τ=4" in screen_text(app)
