"""Pilot tests of every screen at 80×24, driven by recorded event streams (no training here).

A "running" recorded run names this test process as its trainer, so these tests never press
stop on one; stopping is tested against a disposable stand-in process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from _fixtures_app import (fake_estimator, fake_memo_loader, TINY_TEXT, add_checkpoint_files, fake_loader, pilot_test, record_run,
                           screen_text)
from seqtui.ui.app import make_app

SIZE = (80, 24)


async def wait_for(pilot, predicate, timeout: float = 10.0, step: float = 0.05):
    """Pause the pilot until ``predicate()`` holds (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        await pilot.pause(step)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A fresh data dir per test (runs, registered corpora)."""
    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "runs"


def app_for_tests(**options):
    options.setdefault("generator_loader", fake_loader())
    options.setdefault("memo_loader", fake_memo_loader())
    options.setdefault("estimator", fake_estimator())
    options.setdefault("cursor_blink", False)
    return make_app(**options)


# -- Train --------------------------------------------------------------------------------------
@pilot_test
async def test_train_screen_shows_the_attached_run(runs_dir):
    record_run("old-rnn", status="finished", steps=1000)
    record_run("live-gru", status="running")
    app = app_for_tests()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state is not None and len(app.state.train) == 40)

        def drawn() -> bool:  # the screen draws on its refresh tick, later under load: wait for it
            plots = app.screen.query("PerplexityPlot")
            text = screen_text(app)
            return (bool(plots) and [s.label for s in plots.first().series] == ["train", "val"]
                    and "ETA" in text and "s Stop" in text)

        await wait_for(pilot, drawn)
        text = screen_text(app)
        assert app.state.name == "live-gru"  # the running run, not the newest file
        assert "perplexity" in text and "400/1,000" in text
        assert "8.13" in text and "3-gram" in text and "41,250" in text
        assert "In the beginning" in text
        assert "ETA" in text and "30s" in text
        plot = app.screen.query_one("PerplexityPlot")
        assert [s.label for s in plot.series] == ["train", "val"]
        assert plot.reference == ("3-gram", 8.4)
        assert "s Stop" in text and "n New run" in text
        # resize to something larger and back: still drawn, nothing raised
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        await pilot.resize_terminal(*SIZE)
        await pilot.pause(0.2)
        assert "perplexity" in screen_text(app)


@pilot_test
async def test_form_appears_without_runs_and_validates_inline(runs_dir, monkeypatch):
    started = {}

    def fake_start_run(config, name=None, run_dir=None):
        from seqtui.engine.runs import get_run

        started["config"], started["name"] = config, name
        record_run("started-1", status="running")
        return get_run("started-1").dir

    monkeypatch.setattr("seqtui.engine.runs.start_run", fake_start_run)
    app = app_for_tests(corpus="genesis")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.showing_form)
        await pilot.pause(0.1)
        assert app.focused.id == "f-corpus"
        status = app.screen.query_one("#form-status")
        assert "✓ GRU 1×128 on genesis" in str(status.render())
        hidden = app.screen.query_one("#f-hidden")
        hidden.focus()
        await pilot.press("end", "x")
        assert "✗ hidden H must be a whole number" in str(status.render())
        assert hidden.has_class("-invalid")
        assert app.screen.query_one("#form-start").disabled
        await pilot.press("backspace", "backspace", "backspace", "backspace", "6", "4")
        assert "✓ GRU 1×64" in str(status.render())
        # choices cycle with the arrow keys; bptt truncated needs k, then it is valid again
        app.screen.query_one("#f-bptt").focus()
        await pilot.press("right")
        assert app.screen.query_one("#f-bptt").value == "truncated"
        assert "truncated BPTT needs k" in str(status.render())
        app.screen.query_one("#f-bptt_k").focus()
        await pilot.press("1", "0")
        assert "✓" in str(status.render())
        # switching the optimizer resets an untouched learning rate to that optimizer's default
        app.screen.query_one("#f-optimizer").focus()
        await pilot.press("left")
        assert app.screen.query_one("#f-lr").value == "1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.state is not None and app.state.name == "started-1")
        await wait_for(pilot, lambda: not app.screen.showing_form)
    cfg = started["config"]
    assert cfg["hidden"] == 64 and cfg["bptt"] == "truncated" and cfg["bptt_k"] == 10
    assert cfg["optimizer"] == "sgd" and cfg["lr"] == 1.0 and started["name"] is None


@pilot_test
async def test_bad_corpus_is_a_notification_not_a_crash(runs_dir, tmp_path):
    app = app_for_tests(corpus=str(tmp_path / "nope.txt"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.showing_form)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("no such file" in str(n.message) for n in app._notifications))
        binary = tmp_path / "blob.bin"
        binary.write_bytes(b"abc\x00def")
        app.screen.query_one("TrainForm").set_value("corpus", str(binary))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("binary" in str(n.message) for n in app._notifications))
        assert app.is_running and app.state is None


# -- Gradients ------------------------------------------------------------------------------------
@pilot_test
async def test_gradients_screen_profile_history_and_explanation(runs_dir):
    record_run("trunc-gru", status="finished", steps=400, bptt="truncated:10")
    app = app_for_tests(screen="gradients")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state is not None and len(app.state.profiles) == 8)
        await pilot.pause(0.6)
        text = screen_text(app)
        assert "‖∂L/∂h_t‖ back through the window" in text and "step 400" in text
        assert "bptt truncated:10" in text
        assert "t=1" in text and "t=35" in text and text.count("┆") >= 3
        assert "350│" in text and "400│" in text  # history rows
        assert "Truncated BPTT" in text
        assert "pre-clip ‖g‖" in text
        await pilot.press("e")
        assert type(app.screen).__name__ == "ExplainScreen"
        assert "Why gradients vanish or explode" in screen_text(app)
        await pilot.press("escape")
        assert type(app.screen).__name__ == "GradientsScreen"


# -- Runs -------------------------------------------------------------------------------------------
@pilot_test
async def test_runs_screen_lists_marks_compares_and_deletes(runs_dir):
    record_run("a-gru", status="finished", steps=1000)
    record_run("b-lstm", status="failed", steps=300, error="loss became NaN at step 300")
    record_run("c-rnn", status="running")
    app = app_for_tests(screen="runs")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("DataTable").row_count == 3)
        text = screen_text(app)
        for needle in ("a-gru", "✓ finished", "b-lstm", "✗ failed", "c-rnn", "● running", "GRU 1×128"):
            assert needle in text
        table = screen.query_one("DataTable")
        names = [str(table.get_row_at(i)[1]) for i in range(3)]
        table.move_cursor(row=names.index("b-lstm"))
        await pilot.pause(0.1)
        assert "loss became NaN at step 300" in screen_text(app)
        await pilot.press("space")
        table.move_cursor(row=names.index("a-gru"))
        await pilot.press("space")
        assert screen.marked == ["b-lstm", "a-gru"]
        await pilot.press("v")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        await wait_for(pilot, lambda: len(app.screen.query_one("PerplexityPlot").series) == 4)
        assert "b-lstm" in screen_text(app) and "a-gru" in screen_text(app)
        await pilot.press("escape")
        assert app.screen is screen
        # delete needs a confirmation; "n" keeps the run, "y" removes it
        await pilot.press("x")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        assert (runs_dir / "a-gru").exists()
        await pilot.press("x")
        await pilot.press("y")
        await wait_for(pilot, lambda: not (runs_dir / "a-gru").exists())
        await wait_for(pilot, lambda: table.row_count == 2)
        # a running run cannot be deleted
        names = [str(table.get_row_at(i)[1]) for i in range(2)]
        table.move_cursor(row=names.index("c-rnn"))
        await pilot.press("x")
        assert type(app.screen).__name__ == "RunsScreen"
        assert (runs_dir / "c-rnn").exists()
        # enter attaches and shows the run live on the Train screen
        table.move_cursor(row=names.index("b-lstm"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "train" and app.state.name == "b-lstm")


STAND_IN = r"""
import json, signal, sys, time
path = sys.argv[1]
def stop(*_):
    with open(path + "/events.jsonl", "a") as f:
        f.write(json.dumps({"v": 1, "type": "end", "time": time.time(), "step": 400,
                            "reason": "SIGTERM", "status": "stopped", "train_ppl": None}) + "\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(120)
"""


@pilot_test
async def test_stop_and_resume_from_the_train_screen(runs_dir, monkeypatch):
    path = record_run("stand-in", status="running")
    # a stand-in trainer: a process whose command line names seqtui, stopped by SIGTERM
    proc = subprocess.Popen([sys.executable, "-c", STAND_IN, str(path), "seqtui"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        (path / "pid").write_text(f"{proc.pid}\n")
        resumed = []
        monkeypatch.setattr("seqtui.engine.runs.resume_run",
                            lambda name: resumed.append(name) or __import__("seqtui.engine.runs").engine.runs.get_run(name))
        app = app_for_tests()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.state is not None and app.state.status == "running")
            await pilot.press("s")
            await wait_for(pilot, lambda: proc.poll() is not None)
            await wait_for(pilot, lambda: app.state.status == "stopped", timeout=15)
            await wait_for(pilot, lambda: "u Resume" in screen_text(app), timeout=10)  # the footer follows
            await pilot.press("u")
            await wait_for(pilot, lambda: resumed == [str(path)])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# -- Generate ---------------------------------------------------------------------------------------
@pilot_test
async def test_generate_streams_restarts_and_flags_unknown_characters(runs_dir):
    path = record_run("gen-gru", status="finished", steps=400)
    add_checkpoint_files(path)
    app = app_for_tests(screen="generate", generator_loader=fake_loader(delay=0.002))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.run_path == path)
        await wait_for(pilot, lambda: "step 400" in screen_text(app))
        await pilot.press(*"the Ark")
        prompt_done = lambda: str(screen.query_one("#gen-text").render()).startswith("the Ark")  # noqa: E731
        await wait_for(pilot, prompt_done)
        await wait_for(pilot, lambda: "200 tokens" in str(screen.query_one("#gen-out").border_subtitle)
                       and "…" not in str(screen.query_one("#gen-out").border_subtitle))
        text = screen_text(app)
        assert "the Ark" in text and "and the earth was" in text
        assert "not in the vocabulary" in text and "'A'" in text
        await wait_for(pilot, lambda: screen.memo_score is not None)
        await pilot.press("escape")  # leaving the prompt adds the shortcut hint: 4 status lines
        await wait_for(pilot, lambda: "letters are shortcuts" in screen_text(app))
        assert "not in the vocabulary" in screen_text(app)  # the warning stays in view
        await pilot.press("slash")  # back to the prompt
        # 200 tokens at ~2 ms each: the text reached the screen a few times, not once per token
        assert 1 <= screen.updates_shown < 40
        before = screen.updates_shown
        await pilot.press("up")
        await pilot.press("shift+up", "shift+up")
        await pilot.press("pagedown")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "100 tokens" in str(screen.query_one("#gen-out").border_subtitle)
                       and "…" not in str(screen.query_one("#gen-out").border_subtitle))
        status = str(screen.query_one("#gen-status").render())
        assert "T 0.90" in status and "top-k 2" in status and "length 100" in status and "seed 2" in status
        assert screen.updates_shown > before
        # letters type into the prompt; esc leaves the field, then a letter switches screens
        await pilot.press("t")
        assert app.current_mode == "generate"
        await pilot.press("escape", "t")
        assert app.current_mode == "train"


@pilot_test
async def test_generate_without_a_trained_run_says_so(runs_dir):
    record_run("untrained", status="running")  # no checkpoint files
    app = app_for_tests(screen="generate")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.runs_version > 0)
        await pilot.pause(1.1)
        assert "train a run first" in screen_text(app)


@pilot_test
async def test_a_broken_checkpoint_is_a_notification(runs_dir):
    path = record_run("broken", status="finished", steps=400)
    add_checkpoint_files(path)

    def loader(p):
        from seqtui.errors import CheckpointError

        raise CheckpointError(f"checkpoint {p}/checkpoints/best.safetensors is truncated")

    app = app_for_tests(screen="generate", generator_loader=loader)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("truncated" in str(n.message) for n in app._notifications))
        assert app.is_running


# -- Corpora ------------------------------------------------------------------------------------------
@pilot_test
async def test_corpora_screen_stats_add_and_train(runs_dir, tmp_path):
    from seqtui.data.corpora import add_corpus

    tiny = tmp_path / "tiny.txt"
    tiny.write_text(TINY_TEXT, encoding="utf-8")
    add_corpus("tiny", tiny)
    app = app_for_tests(screen="corpora", corpus="tiny")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: "tiny" in app.corpus_stats, timeout=60)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "genesis" in text and "tiny" in text
        assert f"{len(TINY_TEXT):,} characters" in text
        stats = app.corpus_stats["tiny"]
        assert stats["chars"] == len(TINY_TEXT)
        assert stats["vocab_size"] == len(set(TINY_TEXT)) + 1
        ranks = [r for r, _ in stats["zipf"][1]]
        counts = [c for _, c in stats["zipf"][1]]
        assert ranks == sorted(ranks) and counts == sorted(counts, reverse=True)
        # add a file: a bad path is refused inline, a good one is registered and selected
        await pilot.press("a")
        assert type(app.screen).__name__ == "AddCorpusScreen"
        await pilot.press(*str(tmp_path / "missing.txt"), "enter")
        await wait_for(pilot, lambda: "no such file" in str(app.screen.query_one("#add-error").render()))
        poems = tmp_path / "poems.txt"
        poems.write_text("roses are red\nviolets are blue\n" * 20, encoding="utf-8")
        app.screen.query_one("#add-path").value = str(poems)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen and screen.selected is not None
                       and screen.selected.name == "poems")
        # enter opens the Train form with the selected corpus
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "train" and app.screen.showing_form)
        assert app.screen.query_one("#f-corpus").value == "poems"


# -- app-wide ------------------------------------------------------------------------------------------
@pilot_test
async def test_help_palette_and_navigation(runs_dir):
    app = app_for_tests()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("f1")
        assert type(app.screen).__name__ == "HelpScreen"
        assert "keys and screens" in screen_text(app)
        await pilot.press("escape")
        for key, mode in (("f5", "runs"), ("f4", "gradients"), ("f2", "corpora"), ("f6", "generate"),
                          ("f3", "train")):
            await pilot.press(key)
            assert app.current_mode == mode
        await pilot.press("ctrl+p")
        await pilot.press(*"go to runs")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "runs")


@pilot_test
async def test_run_errors_arrive_as_notifications(runs_dir):
    path = record_run("doomed", status="running")
    app = app_for_tests()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state is not None and app.state.step == 400)
        now = time.time()
        with open(path / "events.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"v": 1, "type": "error", "time": now, "message": "loss is NaN"}) + "\n")
            f.write(json.dumps({"v": 1, "type": "end", "time": now, "step": 410, "reason": "diverged",
                                "status": "failed", "train_ppl": None}) + "\n")
        (path / "pid").unlink()
        await wait_for(pilot, lambda: any("loss is NaN" in str(n.message) for n in app._notifications))
        await wait_for(pilot, lambda: app.state.status == "failed", timeout=5)
        await pilot.pause(0.6)
        text = screen_text(app)
        assert "✗ failed (loss is NaN)" in text and "410/1,000" in text
        assert app.is_running


def test_no_color_is_respected(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_app().no_color


@pilot_test
async def test_an_unexpected_worker_error_is_a_notification(runs_dir, monkeypatch):
    def boom(name):
        raise RuntimeError(f"cannot summarize {name}")

    monkeypatch.setattr("seqtui.ui.screens.corpora.corpus_stats", boom)
    app = app_for_tests(screen="corpora", corpus="genesis")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("RuntimeError: cannot summarize genesis" in str(n.message)
                                          for n in app._notifications))
        await pilot.press("down")  # still responsive
        assert app.is_running
