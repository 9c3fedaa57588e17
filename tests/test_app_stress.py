"""The app under stress (issue 15): key bursts, deleted runs, small terminals, random keys."""

from __future__ import annotations

import random
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
