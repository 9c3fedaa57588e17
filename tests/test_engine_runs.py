"""Run directories: unique names, status derived from events + a live-pid check, stop and rm.

A stand-in training process (a tiny Python script whose command line names seqtui) plays the
trainer here, so these tests need neither the model nor Numba.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from seqtui.engine import runs
from seqtui.engine.events import EventWriter
from seqtui.engine.rundir import RunDir
from seqtui.errors import ConfigError, RunError

FAKE_TRAINER = r"""
import os, signal, sys, time
from pathlib import Path
from seqtui.engine.events import EventWriter
from seqtui.engine.rundir import RunDir
run = Path(sys.argv[1])
RunDir(run).write_pid()
w = EventWriter(run / "events.jsonl")
w.emit("start", run=run.name, pid=os.getpid(), step=0, total_steps=100)
stop = []
signal.signal(signal.SIGTERM, lambda s, f: stop.append("SIGTERM"))
step = 0
while not stop:
    step += 1
    w.emit("progress", step=step, ppl=10.0 / step)
    time.sleep(0.02)
w.emit("end", step=step, reason=stop[0], status="stopped")
RunDir(run).clear_pid()
"""


@pytest.fixture
def config():
    return {"corpus": "tiny.txt", "cell": "gru"}


def _fake(path):
    return subprocess.Popen([sys.executable, "-c", FAKE_TRAINER, str(path), "seqtui-fake"])


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_default_names_are_unique_and_never_collide(config, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "own-data"))  # no runs from other tests
    a = runs.create_run_dir(config)
    b = runs.create_run_dir(config)
    c = runs.create_run_dir(config)
    assert [a.name, b.name, c.name] == ["tiny-gru", "tiny-gru-2", "tiny-gru-3"]
    assert json.loads((b / "config.json").read_text()) == config


def test_concurrent_creation_gives_distinct_dirs(config):
    cfg = dict(config, corpus="race")
    made, errors = [], []

    def make():
        try:
            made.append(runs.create_run_dir(cfg))
        except Exception as exc:  # pragma: no cover - would fail the test below
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len({p.name for p in made}) == 8


def test_explicit_name_collision_is_an_error(config):
    runs.create_run_dir(config, name="mine")
    with pytest.raises(RunError, match="already exists"):
        runs.create_run_dir(config, name="mine")
    with pytest.raises(RunError, match="bad run name"):
        runs.create_run_dir(config, name="../escape")


def test_explicit_run_dir_must_be_new_or_empty(config, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runs.create_run_dir(config, run_dir=empty) == empty.resolve()
    with pytest.raises(RunError, match="not empty"):
        runs.create_run_dir(config, run_dir=empty)
    fresh = tmp_path / "a" / "b"
    assert runs.create_run_dir(config, run_dir=fresh).is_dir()
    run = runs.get_run(str(fresh))
    assert run.path == fresh.resolve() and run.status == "stopped"


def test_run_dir_under_a_file_is_a_one_line_run_error(config, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RunError, match="cannot create run dir") as info:
        runs.create_run_dir(config, run_dir=tmp_path / "afile" / "run")
    assert "\n" not in str(info.value)


def test_unwritable_parent_is_a_one_line_run_error(config, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(RunError, match="cannot create run dir"):
            runs.create_run_dir(config, run_dir=locked / "run")
    finally:
        locked.chmod(0o700)


def test_unknown_run_is_an_error():
    with pytest.raises(RunError, match="unknown run 'nope'"):
        runs.get_run("nope")
    with pytest.raises(RunError, match="unknown run"):
        runs.get_run("/no/such/dir")


def _events(path, *events):
    with EventWriter(path / "events.jsonl") as w:
        for kind, fields in events:
            w.emit(kind, **fields)


def test_status_comes_from_the_last_end_event(config):
    path = runs.create_run_dir(config, name="done")
    _events(path, ("start", dict(step=0, total_steps=20)), ("progress", dict(step=10, ppl=5.0)),
            ("val", dict(step=20, ppl=4.0, best_ppl=3.5)),
            ("end", dict(step=20, reason="finished", status="finished")))
    run = runs.get_run("done")
    assert (run.status, run.last_step, run.best_val_ppl, run.last_ppl, run.total_steps) == (
        "finished", 20, 3.5, 5.0, 20)
    assert run.reason == "finished" and run.pid is None


def test_failed_run_reports_its_error_message(config):
    path = runs.create_run_dir(config, name="boom")
    _events(path, ("start", dict(step=0)), ("progress", dict(step=3)),
            ("error", dict(message="loss became NaN at step 4")),
            ("end", dict(step=3, reason="diverged", status="failed")))
    run = runs.get_run("boom")
    assert run.status == "failed" and "NaN" in run.reason


def test_dead_process_without_end_event_is_stopped_and_a_resume_restarts_the_scan(config):
    path = runs.create_run_dir(config, name="killed")
    _events(path, ("start", dict(step=0)), ("end", dict(step=5, reason="SIGTERM", status="stopped")),
            ("start", dict(step=5, total_steps=40)), ("progress", dict(step=9)))
    dead = subprocess.Popen([sys.executable, "-c", "pass", "seqtui"])
    dead.wait()
    RunDir(path).write_pid(dead.pid)
    run = runs.get_run("killed")
    assert run.status == "stopped" and run.last_step == 9 and run.pid is None
    assert run.total_steps == 40 and run.reason is None


def test_recycled_pid_of_another_program_does_not_count_as_running(config):
    path = runs.create_run_dir(config, name="recycled")
    _events(path, ("start", dict(step=0)))
    other = subprocess.Popen(["sleep", "30"])
    try:
        RunDir(path).write_pid(other.pid)
        assert runs.get_run("recycled").status == "stopped"
    finally:
        other.kill()
        other.wait()


def test_list_runs_newest_first(config):
    names = [runs.create_run_dir(dict(config, corpus=f"list{i}")).name for i in range(3)]
    for i, name in enumerate(names):  # make creation times distinct
        os.utime(runs.runs_root() / name / "config.json", (1000 + i, 1000 + i))
    listed = [r.name for r in runs.list_runs() if r.name in names]
    assert listed == names[::-1]


def test_stop_waits_for_the_process_to_checkpoint_and_exit(config):
    path = runs.create_run_dir(config, name="live")
    proc = _fake(path)
    try:
        assert _wait_for(lambda: runs.get_run("live").last_step >= 3)
        run = runs.get_run("live")
        assert run.status == "running" and run.pid == proc.pid
        with pytest.raises(RunError, match="is running; stop it first"):
            runs.remove_run("live")
        with pytest.raises(RunError, match="already running"):
            runs.check_resumable(run)
        stopped = runs.stop_run("live", timeout=20)
        assert stopped.status == "stopped" and stopped.reason == "SIGTERM"
        assert not (path / "pid").exists()
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(RunError, match="not running"):
        runs.stop_run("live")


def test_remove_run_deletes_the_directory(config):
    path = runs.create_run_dir(config, name="gone")
    assert runs.remove_run("gone") == path and not path.exists()
    with pytest.raises(RunError):
        runs.remove_run("gone")


def test_start_run_validates_before_creating_anything(config):
    before = set(runs.runs_root().iterdir()) if runs.runs_root().exists() else set()
    with pytest.raises(ConfigError, match="hidden"):
        runs.start_run(dict(config, hidden=0))
    after = set(runs.runs_root().iterdir()) if runs.runs_root().exists() else set()
    assert before == after


# ---------------------------------------------------------------------------------------------
# RunConfig: absurd hyperparameters are one-line ConfigErrors
from seqtui.engine.config import RunConfig, parse_bptt  # noqa: E402


@pytest.mark.parametrize("changes, message", [
    (dict(hidden=0), "hidden must be a positive integer"),
    (dict(hidden=10**9), "absurdly large"),
    (dict(layers=-1), "layers must be a positive integer"),
    (dict(lr=0.0), "learning rate must be a positive number"),
    (dict(lr=float("nan")), "learning rate must be a positive number"),
    (dict(batch_size=0), "batch size"),
    (dict(num_steps=0), "num_steps"),
    (dict(bptt="truncated", bptt_k=36), r"bptt k must be in 1..num_steps \(35\)"),
    (dict(bptt="truncated", bptt_k=0), "bptt k must be in"),
    (dict(bptt="truncated"), "needs k"),
    (dict(bptt="randomized", bptt_p=0.0), r"bptt p must be in \(0, 1\]"),
    (dict(bptt="randomized", bptt_p=1.5), r"bptt p must be in \(0, 1\]"),
    (dict(bptt="full", bptt_k=3), "only applies to --bptt truncated"),
    (dict(clip=0.0), "clip θ must be a positive number"),
    (dict(clip=-1.0), "clip θ"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(steps=-5), "steps must be a positive integer"),
    (dict(epochs=2, steps=5), "not both"),
    (dict(val_fraction=0.6), r"validation fraction must be in \[0, 0.5\]"),
    (dict(val_fraction=-0.1), "validation fraction"),
    (dict(cell="transformer"), "unknown cell 'transformer'"),
    (dict(optimizer="rmsprop"), "unknown optimizer"),
    (dict(sampling="shuffled"), "unknown sampling"),
    (dict(lr_decay=1.5), "lr decay"),
    (dict(corpus=""), "no corpus"),
    (dict(sample_every=-1), "sample_every must be ≥ 0"),
])
def test_absurd_hyperparameters_are_config_errors(changes, message):
    cfg = RunConfig(corpus="x").replace(**changes)
    with pytest.raises(ConfigError, match=message) as info:
        cfg.validate()
    assert "\n" not in str(info.value)


def test_config_round_trips_through_json_and_rejects_unknown_keys_and_types(tmp_path):
    cfg = RunConfig(corpus="x", bptt="randomized", bptt_p=0.5, clip=None, steps=7).validate()
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert RunConfig.load(path) == cfg
    with pytest.raises(ConfigError, match="unknown config key 'hiden'"):
        RunConfig.from_dict({"hiden": 3})
    with pytest.raises(ConfigError, match="'hidden' must be an integer"):
        RunConfig.from_dict({"hidden": 3.5})
    with pytest.raises(ConfigError, match="'hidden' must be an integer"):
        RunConfig.from_dict({"hidden": True})
    with pytest.raises(ConfigError, match="cannot be null"):
        RunConfig.from_dict({"lr": None})
    assert RunConfig.from_dict({"lr": 1}).lr == 1.0 and isinstance(RunConfig.from_dict({"lr": 1}).lr, float)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.load(path)


def test_bptt_syntax():
    assert parse_bptt("full") == ("full", None, None)
    assert parse_bptt("truncated:10") == ("truncated", 10, None)
    assert parse_bptt("randomized:0.25") == ("randomized", None, 0.25)
    assert parse_bptt("truncated") == ("truncated", None, None)
    with pytest.raises(ConfigError, match="bad --bptt argument"):
        parse_bptt("truncated:x")
    with pytest.raises(ConfigError, match="unknown bptt"):
        parse_bptt("partial:3")
    with pytest.raises(ConfigError, match="takes no argument"):
        parse_bptt("full:3")


def test_start_run_refuses_an_unknown_corpus_before_creating_anything(tmp_path):
    from seqtui.errors import CorpusError

    before = set(runs.runs_root().iterdir()) if runs.runs_root().exists() else set()
    with pytest.raises(CorpusError):
        runs.start_run({"corpus": str(tmp_path / "nope.txt"), "cell": "gru"})
    after = set(runs.runs_root().iterdir()) if runs.runs_root().exists() else set()
    assert before == after


# -- issue 13 (hardening): what `runs rm` may delete, names, resume bookkeeping -------------------
def _legacy(path, files=("config.json", "events.jsonl"), config=None):
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text(json.dumps(config or {"corpus": "x", "cell": "gru"}) if name == "config.json" else "")
    return RunDir(path)


def test_verify_owned_accepts_runs_and_refuses_everything_else(tmp_path):
    _legacy(tmp_path / "v01").verify_owned()  # a v0.1 run: strict layout, a seqtui config
    with pytest.raises(RunError, match="not a seqtui run directory"):
        _legacy(tmp_path / "proj", files=("config.json", "notes.md")).verify_owned()
    with pytest.raises(RunError, match="not a seqtui run config"):
        _legacy(tmp_path / "app", files=("config.json",), config={"name": "app"}).verify_owned()
    os.symlink(tmp_path / "v01", tmp_path / "link")
    with pytest.raises(RunError, match="symlink"):
        RunDir(tmp_path / "link").verify_owned()
    ck = tmp_path / "v01" / "checkpoints"
    os.symlink(tmp_path / "proj", ck)
    with pytest.raises(RunError, match="not checkpoints"):
        RunDir(tmp_path / "v01").verify_owned()
    fake = tmp_path / "fake"  # a marker that is a link is not our marker
    fake.mkdir()
    (tmp_path / "m").write_text('{"seqtui_run": 1}')
    os.symlink(tmp_path / "m", fake / ".seqtui-run")
    (fake / "thesis.tex").write_text("x")
    with pytest.raises(RunError):
        RunDir(fake).verify_owned()
    assert (tmp_path / "proj" / "notes.md").exists()


def test_check_name_refuses_leading_dash_and_dot():
    for bad in ("-x", "--help", ".hidden", "a/b", "", "x" * 101):
        with pytest.raises(RunError, match="bad run name"):
            runs.check_name(bad)
    assert runs.check_name("ok-name_1.2") == "ok-name_1.2"


def test_stop_refuses_a_negative_timeout():
    with pytest.raises(ConfigError, match="timeout"):
        runs.stop_run("whatever", timeout=-1)


def test_progress_since_restart_counts_back_to_the_last_restart(tmp_path):
    rd = RunDir(tmp_path)
    rd.append_event("progress", step=7)
    assert rd.progress_since_restart() == 7
    rd.append_event("restart", step=0)
    assert rd.progress_since_restart() == 0
    rd.append_event("progress", step=2)
    assert rd.progress_since_restart() == 2


def test_a_stop_request_into_a_vanished_run_dir_is_one_clear_error(tmp_path):
    """`runs stop TRIAL` writes a request into the trial's run dir: a dir that is gone is the
    usual one-line RunError, not a traceback."""
    from seqtui.engine.rundir import RunDir
    from seqtui.errors import RunError

    rd = RunDir(tmp_path / "gone")
    with pytest.raises(RunError, match="cannot write to run dir"):
        rd.request_stop()
    assert rd.take_stop_request() is False
    (tmp_path / "here").mkdir()
    here = RunDir(tmp_path / "here")
    here.request_stop()
    assert here.take_stop_request() is True and here.take_stop_request() is False  # taken once
