"""Faults: a worker killed (-9) mid-trial has its trial re-run from the last checkpoint the client
received, and the sweep finishes with every trial accounted for; Ctrl-C on the client stops
running trials with a checkpoint (status stopped), and the same command resumes the sweep;
`runs stop TRIAL` stops that trial alone."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from _fixtures_engine import read_events, run_main, seqtui_subprocess, tiny_corpus

pytest.importorskip("distributed")
pytest.importorskip("optuna")

BUDGET = 30
# --val-every 1 with the pruner: a verdict round trip per step keeps each trial running for a
# second or two, long enough to hit it mid-way
SLOW = ["--hidden", "8", "--batch-size", "4", "--num-steps", "8", "--budget", f"{BUDGET}steps",
        "--sample-every", "0", "--checkpoint-every", "5", "--val-every", "1", "--workers", "2",
        "--search", "grid", "--param", "lr=0.01,0.011,0.012,0.013"]
# the Ctrl-C test's trials run longer: the run directories on the client trail the workers by a
# flush beat or more on a loaded machine, so a trial seen at step 5 of 30 may be done already
CC_BUDGET = 300


def _long_trials(tmp_path: Path, study: str) -> list[str]:
    """A sweep of CC_BUDGET-step trials; --no-prune gives no verdict round trips, so samples at
    every step slow the trials down instead."""
    slow = [f"{CC_BUDGET}steps" if a == f"{BUDGET}steps" else a for a in SLOW]
    return ["sweep", str(tiny_corpus(tmp_path)), *slow, "--study", study, "--no-prune",
            "--sample-every", "1", "--sample-length", "400"]


def _runs(name: str) -> list[Path]:
    from seqtui.engine.runs import runs_root

    root = runs_root()
    return sorted(p for p in root.glob(f"{name}-t*") if p.is_dir()) if root.is_dir() else []


def _training(path: Path, min_step: int) -> dict | None:
    """The `start` event of a trial that trained past ``min_step`` and has not ended."""
    events = read_events(path)
    starts = [e for e in events if e["type"] == "start"]
    if not starts or any(e["type"] == "end" for e in events):
        return None
    if any(e["type"] == "progress" and e["step"] >= min_step for e in events):
        return starts[-1]
    return None


def _show(name, capsys) -> dict:
    code, out, err = run_main(["sweep", "show", name, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_a_killed_worker_loses_no_trial(tmp_path, capsys):
    corpus = tiny_corpus(tmp_path)
    killed: dict = {}

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for path in _runs("kw"):
                start = _training(path, 10)
                if start is not None and (path / "checkpoints").is_dir():
                    os.kill(start["pid"], signal.SIGKILL)  # the worker process running it
                    killed.update(run=path.name, pid=start["pid"])
                    return
            time.sleep(0.02)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    code, out, err = run_main(["sweep", str(corpus), *SLOW, "--prune", "--study", "kw", "--json"],
                              capsys)
    t.join(timeout=5)
    assert code == 0, err
    assert killed, "no trial was caught mid-way"
    data = json.loads(out)
    assert len(data["rows"]) == 4 and sum(data["counts"].values()) == 4
    assert all(r["status"] in ("finished", "pruned", "failed") for r in data["rows"])
    row = next(r for r in data["rows"] if r["run"] == killed["run"])
    events = read_events(Path(row["path"]))
    assert any(e["type"] == "notice" and "was lost" in e["message"] for e in events), err
    starts = [e for e in events if e["type"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed"] and starts[1]["step"] >= 5
    assert starts[1]["pid"] != killed["pid"]
    assert events[-1]["type"] == "end"
    if row["status"] == "finished":
        assert events[-1]["step"] == BUDGET


def test_ctrl_c_stops_trials_with_a_checkpoint_and_the_command_resumes(tmp_path, capsys):
    args = _long_trials(tmp_path, "cc")
    proc = seqtui_subprocess(args, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(_training(p, 2) for p in _runs("cc")):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        live = _show("cc", capsys)  # `sweep show` while the sweep runs
        assert "running" in {r["status"] for r in live["rows"]}, live["rows"]
        while not any(_training(p, 2) for p in _runs("cc")):  # still mid-way after the show
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "stopping" in err and "resume with the same command" in err
    data = _show("cc", capsys)
    stopped = [r for r in data["rows"] if r["status"] == "stopped"]
    assert stopped and any(r["step"] > 0 for r in stopped), data["rows"]
    stop_step = {}
    for r in stopped:
        events = read_events(Path(r["path"]))
        stop_step[r["run"]] = events[-1]["step"]
        assert events[-1]["type"] == "end" and events[-1]["reason"] == "interrupted"
        assert events[-1]["status"] == "stopped"
        from seqtui.engine.rundir import RunDir

        assert RunDir(r["path"]).checkpoint_meta("latest")["step"] == events[-1]["step"]
    done_before = {r["trial"] for r in data["rows"] if r["status"] == "finished"}

    code, out, err = run_main(args, capsys)
    assert code == 0, err
    assert "resuming" in err
    data = _show("cc", capsys)
    assert len(data["rows"]) == 4 and all(r["status"] == "finished" for r in data["rows"])
    for r in data["rows"]:
        events = read_events(Path(r["path"]))
        starts = [e for e in events if e["type"] == "start"]
        if r["trial"] in done_before:
            assert len(starts) == 1  # not repeated
        if r["run"] in stop_step:  # continued from where Ctrl-C stopped it
            assert starts[-1]["resumed"] and starts[-1]["step"] == stop_step[r["run"]]
        assert events[-1]["step"] == CC_BUDGET


def test_runs_stop_on_a_trial_stops_that_trial_alone(tmp_path, capsys):
    """`seqtui runs stop TRIAL`: the trial's pid file names the sweep's client, so the stop goes
    through a request in the run dir; the client stops that trial (with a checkpoint) and the
    sweep goes on with the others."""
    args = _long_trials(tmp_path, "one")
    proc = seqtui_subprocess(args, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        target = None
        while target is None and time.monotonic() < deadline:
            target = next((p for p in _runs("one") if _training(p, 2)), None)
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        assert target is not None, "no trial was caught mid-way"
        code, out, err = run_main(["runs", "stop", target.name], capsys)
        assert code == 0, err
        assert proc.poll() is None  # the sweep itself goes on
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"({target.name}): stop requested" in err
    events = read_events(target)
    assert events[-1]["type"] == "end" and events[-1]["reason"] == "stop requested"
    assert events[-1]["status"] == "stopped" and 0 < events[-1]["step"] < CC_BUDGET
    data = _show("one", capsys)
    assert len(data["rows"]) == 4
    others = [r for r in data["rows"] if r["run"] != target.name]
    assert all(r["status"] == "finished" and r["step"] == CC_BUDGET for r in others), others
    row = next(r for r in data["rows"] if r["run"] == target.name)  # out of the search
    assert row["status"] == "failed" and row["reason"] == "stop requested"
    assert row["error"] == "stopped by `seqtui runs stop`"
