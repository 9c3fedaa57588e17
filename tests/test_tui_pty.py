"""End to end in a real terminal: the installed `seqtui` inside tmux (80×24), keys only.

Fill in the new-run form, start a run, see a perplexity figure, quit; the run keeps training
in its own process; reopening the app re-attaches to it; then the run is stopped.

``SEQTUI_MEASURE_PTY=1`` also runs the bandwidth measurement: the bytes per second the app
writes to an 80×24 pty while a run trains and while generating (printed; not a timed test).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _fixtures_app import TINY_TEXT

SEQTUI = shutil.which("seqtui")
TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(SEQTUI is None, reason="the seqtui console script is not installed")
pytest.importorskip("seqtui.engine.trainer")


class Tmux:
    """One private tmux server (own socket) holding one 80×24 window."""

    def __init__(self, env: dict[str, str]):
        self.socket = f"seqtui-test-{os.getpid()}-{time.monotonic_ns()}"
        self.env = env

    def __call__(self, *args: str, check: bool = True) -> str:
        out = subprocess.run([TMUX, "-f", "/dev/null", "-L", self.socket, *args], env=self.env,
                             capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {args}: {out.stderr}")
        return out.stdout

    def start(self, command: str) -> None:
        self("new-session", "-d", "-s", "app", "-x", "80", "-y", "24", command)
        self("set-option", "-t", "app", "remain-on-exit", "on")

    def keys(self, *keys: str, delay: float = 0.12) -> None:
        """Send keys one group at a time, at a typist's pace (a burst arrives as a paste)."""
        for key in keys:
            self("send-keys", "-t", "app", key)
            time.sleep(delay)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def wait(self, predicate, timeout: float = 60.0, what: str = "") -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"screen never showed {what or predicate}:\n{text}")

    def dead(self) -> bool:
        return self("list-panes", "-t", "app", "-F", "#{pane_dead}").strip() == "1"

    def kill(self) -> None:
        self("kill-server", check=False)


def app_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TERM="xterm-256color", TEXTUAL_ANIMATIONS="none", COLORTERM="truecolor")
    env.pop("NO_COLOR", None)
    return env


def tab_order() -> list[str]:
    """The form's focus order: row by row over the left and right columns (blank cells skipped)."""
    from itertools import zip_longest

    from seqtui.ui.screens.train_form import LEFT, RIGHT

    return [spec.key for pair in zip_longest(LEFT, RIGHT) for spec in pair if spec is not None]


def tab_distance(order: list[str], start: str, key: str) -> int:
    """Tabs from field ``start`` to field ``key`` (forward, wrapping)."""
    return (order.index(key) - order.index(start)) % len(order)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_keys_only_session_survives_quit_and_reattaches(tmp_path, monkeypatch):
    from seqtui.engine.events import read_events
    from seqtui.engine.runs import get_run, stop_run

    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    tmux = Tmux(app_env())
    try:
        tmux.start(SEQTUI)
        tmux.wait(lambda s: "New run" in s and "corpus genesis" in s, 30, "the new-run form")
        # The form has the focus on the corpus field; fields are in rows of two (tab goes across).
        tmux.wait(lambda s: "parameters" in s, 60, "the form's estimate (the app has settled)")
        tmux.keys("C-u", str(corpus))
        tmux.wait(lambda s: "on tiny.txt" in s, 20, "the corpus accepted")
        # tab order is row by row over the two columns, as the form lays them out
        order = tab_order()
        at = "corpus"
        from seqtui.ui.screens.train_form import FIELDS

        for key, value in (("steps", "10000000"), ("hidden", "16"), ("progress_every", "50"),
                           ("batch_size", "4"), ("num_steps", "8")):
            tmux.keys(*["Tab"] * tab_distance(order, at, key), "C-u", value)
            label = re.escape(FIELDS[key].label.strip())  # each field shows its value before the next
            shown = lambda s, label=label, value=value: re.search(label + r"\s+" + value + r"\b", s)  # noqa: E731
            try:
                tmux.wait(shown, 20, f"{key} = {value}")
            except AssertionError:  # on a loaded machine a typed value was once lost: type it again
                tmux.keys("C-u", value)
                tmux.wait(shown, 20, f"{key} = {value} (typed twice)")
            at = key
        # the summary may wrap (a long corpus path): read it with whitespace collapsed
        tmux.wait(lambda s: "✓ GRU 1×16 on" in s and "B4 T8" in " ".join(s.split()), 10, "a valid form")
        tmux.keys("C-s")
        screen = tmux.wait(lambda s: re.search(r"train\s+\d+\.\d+", s) is not None, 90,
                           "a training perplexity")
        assert "perplexity" in screen and "● running" in screen and "tiny-gru" in screen
        tmux.keys("C-q")
        tmux.wait(lambda s: tmux.dead(), 15, "the app exiting")
        run = get_run("tiny-gru")
        assert run.status == "running" and run.pid is not None  # quitting did not stop training
        step = run.last_step
        time.sleep(1.5)
        assert get_run("tiny-gru").last_step > step  # and it is still making progress
        # reopening the app re-attaches to the running run
        tmux("respawn-pane", "-k", "-t", "app", SEQTUI)
        tmux.wait(lambda s: "● tiny-gru" in s and re.search(r"train\s+\d+\.\d+", s), 30, "re-attached")
        tmux.keys("C-q")
        tmux.wait(lambda s: tmux.dead(), 15, "the app exiting again")
        assert get_run("tiny-gru").status == "running"
    finally:
        tmux.kill()
        try:
            info = get_run("tiny-gru")
        except Exception:  # noqa: BLE001 - the run was never created
            info = None
        if info is not None and info.status == "running":
            info = stop_run("tiny-gru", timeout=60)
    assert info is not None and info.status == "stopped"
    assert read_events(info.path / "events.jsonl")[-1]["reason"] == "SIGTERM"


# -- bandwidth (opt-in measurement, prints numbers) ------------------------------------------------
def _count_output(child, seconds: float, every=None) -> int:
    """Bytes the app writes to the pty in ``seconds`` (``every``: (period, action) while reading)."""
    import pexpect

    total, start = 0, time.monotonic()
    next_action = start + (every[0] if every else 1e9)
    while time.monotonic() - start < seconds:
        try:
            total += len(child.read_nonblocking(65536, timeout=0.05))
        except pexpect.TIMEOUT:
            pass
        if every and time.monotonic() >= next_action:
            every[1]()
            next_action += every[0]
    return total


@pytest.mark.skipif(os.environ.get("SEQTUI_MEASURE_PTY") != "1", reason="set SEQTUI_MEASURE_PTY=1")
def test_measure_pty_bandwidth(tmp_path, monkeypatch):
    import pexpect

    from seqtui.engine.runs import start_run, stop_run

    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    seconds = float(os.environ.get("SEQTUI_MEASURE_SECONDS", "20"))
    # The form's first run: genesis, GRU H 128, B 32, T 35, Adam.
    from seqtui.ui.screens.train_form import default_values, validate_form

    cfg = validate_form(default_values("genesis"))[0]
    info = start_run({**cfg, "steps": 1_000_000, "epochs": None, "checkpoint_every": 200})
    env = app_env()
    try:
        child = pexpect.spawn(SEQTUI, env=env, dimensions=(24, 80), encoding=None, timeout=5)
        _count_output(child, 8.0)  # start-up, first full paint, backlog
        training = _count_output(child, seconds)
        child.send(b"\x1b[17~")  # F6: Generate
        _count_output(child, 3.0)
        for ch in b"In the beginning":
            child.send(bytes([ch]))
            time.sleep(0.1)
        child.send(b"\x1b[5~")   # PgUp: longer continuations (400)
        child.send(b"\x1b[5~")   # (800)
        _count_output(child, 3.0)
        generating = _count_output(child, seconds, every=(1.5, lambda: child.send(b"\r")))
        child.send(b"\x11")      # ctrl+q
        child.expect(pexpect.EOF, timeout=15)
    finally:
        stop_run(info.name, timeout=60)
    report = (f"pty 80x24: training {training / seconds / 1024:.1f} KiB/s, "
              f"generating (re-roll every 1.5 s) {generating / seconds / 1024:.1f} KiB/s")
    print(report)
    Path(os.environ.get("SEQTUI_MEASURE_OUT", tmp_path / "bandwidth.txt")).write_text(report + "\n")
    assert training > 0 and generating > 0
