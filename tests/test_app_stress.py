"""The app under stress (issue 15): key bursts, deleted runs, small terminals, random keys."""

from __future__ import annotations

import random
import time
import shutil

import pytest

from _fixtures_app import pilot_test, record_run, screen_text
from test_app_screens import app_for_tests, runs_dir, wait_for  # noqa: F401 - fixture

SIZE = (80, 24)


def burst(app, keys):
    """Queue key events at once, as a terminal delivers a paste or a fast typist (no waits)."""
    from textual import events

    for key in keys:
        char = key if len(key) == 1 else None
        app.post_message(events.Key(key, char))


@pilot_test
async def test_palette_typing_then_pageup_does_not_crash(runs_dir):
    record_run("live-gru", status="finished")
    app = app_for_tests()
    async with app.run_test(size=SIZE) as pilot:
        burst(app, ["ctrl+p", *"go to", "pageup", "pageup", "pagedown", "pageup"])
        await pilot.pause(0.5)
        burst(app, ["backspace"] * 5 + ["pageup", "pagedown", *"x", "pageup"])
        await pilot.pause(0.5)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.is_running and app.return_code is None


def test_an_unexpected_error_exits_1_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "from seqtui.ui.app import SeqtuiApp\n"
        "class Boom(SeqtuiApp):\n"
        "    def on_mount(self):\n"
        "        super().on_mount()\n"
        "        self.set_timer(0.3, self.boom)\n"
        "    def boom(self):\n"
        "        raise RuntimeError('boom [not markup]')\n"
        "Boom(attach=False).run(headless=True)\n"
    )
    env = dict(os.environ, SEQTUI_DATA_DIR=str(tmp_path / "data"), TMPDIR=str(tmp_path))
    script = tmp_path / "boom.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "RuntimeError: boom [not markup]" in lines[0], out.stderr
    assert "Traceback" in (tmp_path / "seqtui-crash.log").read_text()


@pilot_test
async def test_a_run_deleted_while_it_trains_shows_as_gone(runs_dir):
    path = record_run("doomed-gru", status="running")
    app = app_for_tests(poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state is not None and app.state.status == "running")
        shutil.rmtree(path)
        await wait_for(pilot, lambda: app.state.status == "gone", timeout=8)
        await pilot.pause(0.7)
        text = screen_text(app)
        assert "∅ gone" in text and "∅ doomed-gru" in text
        assert app.state.eta_seconds is None
        gone = [n for n in app._notifications if "gone" in str(n.title)]
        assert len(gone) == 1
        await pilot.press("s")  # stop is not offered for a gone run: no "unknown run" error
        await pilot.pause(0.3)
        assert not any("unknown run" in str(n.message) for n in app._notifications)


@pilot_test
async def test_a_finished_run_shows_the_requested_epochs_and_100_percent(runs_dir):
    from _fixtures_app import base_config

    record_run("done-gru", status="finished", steps=1000, total_steps=1000,
               config=base_config(epochs=4))
    app = app_for_tests()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state is not None and app.state.status == "finished")
        await pilot.pause(0.7)
        text = screen_text(app)
        assert "4.0/4 " in text and "100%" in text


@pilot_test
async def test_generate_run_label_after_switching_runs_back_and_forth(runs_dir):
    from _fixtures_app import add_checkpoint_files, fake_loader

    for name in ("gen-a", "gen-b"):
        add_checkpoint_files(record_run(name, status="finished", steps=400))
    app = app_for_tests(screen="generate", generator_loader=fake_loader())
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: "step 400" in screen_text(app))
        screen.query_one("#gen-run").focus()
        for key in ("right", "left", "right", "left"):
            await pilot.press(key)
            await wait_for(pilot, lambda: "step 400" in screen_text(app))
        await pilot.pause(0.3)
        assert "loading…" not in screen_text(app)


@pilot_test
async def test_data_in_notifications_and_tables_is_not_markup(runs_dir):
    from _fixtures_app import base_config

    record_run("br-gru", status="finished", config=base_config(corpus="/tmp/x/[bold]notes.txt"))
    app = app_for_tests(screen="runs")
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_for(pilot, lambda: "br-gru" in screen_text(app))
        await pilot.pause(0.5)
        t = app.screen.query_one("DataTable")
        assert "[bold]notes.txt" in screen_text(app), [(c.width, c.content_width, c.auto_width) for c in t.columns.values()]
        app.notify("pip install 'seqtui[shakespeare]'", title="corpus [b]x[/b]")
        app.screen.notify("[red]from a screen[/red]")  # Widget.notify passes markup=True itself
        await pilot.pause(0.3)
        notes = list(app._notifications)
        assert notes and all(n.markup is False for n in notes)
        assert any("seqtui[shakespeare]" in n.message for n in notes)


@pilot_test
async def test_small_terminals_scroll_the_form_and_tiny_ones_say_too_small(runs_dir):
    app = app_for_tests(attach=False)
    async with app.run_test(size=(80, 21)) as pilot:
        await wait_for(pilot, lambda: app.screen.showing_form)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "✓ GRU" in text and "Start" in text  # status line and button stay visible
        await pilot.resize_terminal(60, 15)
        await pilot.pause(0.3)
        for _ in range(20):  # tab down the whole form: the focused field is always on screen
            await pilot.press("tab")
            focused = app.focused
            region = focused.region
            assert region.height > 0 and 0 <= region.y < 15, (focused.id, region)
        await pilot.resize_terminal(50, 12)
        await pilot.pause(0.3)
        assert "too small" in screen_text(app)
        await pilot.press("f5", "r")  # no screen change behind the notice
        assert type(app.screen).__name__ == "TooSmallScreen"
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert "too small" not in screen_text(app) and app.current_mode == "train"


KEYS = (list("abcdefghijklmnopqrstuvwxyz0123456789 .,:[]") +
        ["tab", "shift+tab", "enter", "escape", "up", "down", "left", "right", "pageup", "pagedown",
         "home", "end", "backspace", "delete", "space", "ctrl+p", "shift+up", "shift+down", "ctrl+r",
         "ctrl+s"])
RARE_KEYS = ["question_mark", "f1", "f2", "f3", "f4", "f5", "f6", "f7"]  # other screens: one in 50 keys


@pilot_test
async def test_random_keys_on_every_screen_leave_the_app_alive(runs_dir, monkeypatch):
    """A few hundred random keys per screen (fixed seed), in bursts; the app must survive."""
    from _fixtures_app import add_checkpoint_files
    from seqtui.errors import SeqtuiError
    from seqtui.ui.screen_list import SCREENS

    def refuse(*_args, **_kwargs):
        raise SeqtuiError("not in this test")

    for name in ("start_run", "stop_run", "resume_run", "remove_run"):  # no processes, no signals
        monkeypatch.setattr(f"seqtui.engine.runs.{name}", refuse)
    monkeypatch.setattr("seqtui.ui.screens.corpora.corpus_stats", refuse)  # no tokenizing here
    add_checkpoint_files(record_run("rand-gru", status="finished", steps=400))
    record_run("rand-live", status="running")
    rng = random.Random(15)
    app = app_for_tests(poll_seconds=0.2)
    async with app.run_test(size=SIZE) as pilot:
        t0 = time.monotonic()
        for entry in SCREENS:
            for _ in range(5):
                if len(app.screen_stack) <= 1:
                    break
                await app.pop_screen()
            app.switch_mode(entry.mode)
            await pilot.pause(0.1)
            for _ in range(10):
                burst(app, [rng.choice(RARE_KEYS if rng.random() < 0.02 else KEYS) for _ in range(30)])
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            if app._exception is not None:
                import traceback

                raise AssertionError("".join(traceback.format_exception(app._exception)))
            assert app.is_running and app.return_code is None, entry.mode
        assert app._exception is None


@pilot_test
async def test_a_multiline_paste_keeps_every_line_and_says_so(runs_dir):
    from textual import events

    from _fixtures_app import add_checkpoint_files

    add_checkpoint_files(record_run("paste-gru", status="finished", steps=400))
    app = app_for_tests(screen="generate")
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.screen.query_one("#gen-prompt")
        prompt.focus()
        prompt.post_message(events.Paste("In the beginning\nGod created\n" + "x" * 2000))
        await pilot.pause(0.5)
        assert prompt.value.startswith("In the beginning God created x")
        assert len(prompt.value) > 2000
        assert any("one line" in n.message for n in app._notifications)
