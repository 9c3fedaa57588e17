"""The New-run form's estimate (parameters, memory, duration): "estimating…" at once, the line
after a pause in typing (one estimate per settled config, in a worker), errors in one line."""

from __future__ import annotations

import time

from _fixtures_app import fake_estimator, pilot_test, screen_text
from test_app_screens import runs_dir  # noqa: F401 - fixture
from seqtui.errors import ConfigError
from seqtui.ui.app import make_app

SIZE = (80, 24)


async def wait_for(pilot, predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        await pilot.pause(0.05)


@pilot_test
async def test_form_shows_an_estimate_after_typing_settles(runs_dir):
    calls: list[dict] = []
    app = make_app(cursor_blink=False, estimator=fake_estimator(calls=calls))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.showing_form)
        form = app.screen.query_one("TrainForm")
        await wait_for(pilot, lambda: form.estimate is not None)
        assert "≈ 160,704 parameters · ~9 MiB · 1,250 steps ≈ 41 s" in screen_text(app)
        assert len(calls) == 1 and calls[0]["hidden"] == 128
        hidden = app.screen.query_one("#f-hidden")
        hidden.focus()
        await pilot.press("end", "backspace", "backspace", "backspace", *"256")
        assert "estimating" in screen_text(app)
        await wait_for(pilot, lambda: form.estimate is not None)
        assert len(calls) == 2 and calls[1]["hidden"] == 256   # typing in a burst: one estimate
        await pilot.press("backspace", "backspace", "backspace", *"128")
        await pilot.pause(0.1)
        assert form.estimate is not None and len(calls) == 2     # seen before: from the cache
        await pilot.press("backspace", "backspace", "backspace")  # invalid: no estimate
        await pilot.pause(0.8)
        assert form.estimate is None and "≈" not in screen_text(app) and len(calls) == 2


@pilot_test
async def test_estimate_errors_are_one_line(runs_dir):
    def refuse(config):
        raise ConfigError("corpus genesis is too short for one batch")

    app = make_app(cursor_blink=False, estimator=refuse)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.showing_form)
        await wait_for(pilot, lambda: "no estimate" in screen_text(app))
        assert "no estimate: corpus genesis is too short for one batch" in screen_text(app)
