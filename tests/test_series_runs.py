"""Series runs through the engine: `seqtui series fit` as a run (config, events, checkpoints,
predictions), `runs list/show/stop/resume/rm` on it, `series predict`, exact resume, --detach,
bad input before any directory exists, and the text path next to it."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from _fixtures_engine import read_events, run_main, seqtui_subprocess, tiny_corpus
from seqtui.engine import runs
from seqtui.engine.rundir import RunDir

FAST = ["--epochs", "3", "--split", "600", "-q"]


def run_names() -> set[str]:
    root = runs.runs_root()
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


def fit_json(capsys, *argv) -> dict:
    code, out, err = run_main(["series", "fit", *argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------------------
def test_fit_is_a_run_end_to_end(capsys):
    from seqtui.models.series import SeriesRunConfig

    d = fit_json(capsys, "sine", "--model", "mlp", "--name", "e2e-mlp", *FAST)
    assert d["run"] == "e2e-mlp" and d["status"] == "finished"
    assert {"train_mse", "val_mse", "kstep_mse", "kstep_train_mse"} <= set(d)
    assert set(d["kstep_mse"]) == {"1", "4", "16", "64"} and len(d["epochs"]) == 3
    assert d["n_train"] == 600 and 0.03 < d["val_mse"] < 0.1

    rd = runs.get_dir("e2e-mlp")
    assert json.loads(rd.config_path.read_text())["kind"] == "series"
    cfg = rd.config()
    assert isinstance(cfg, SeriesRunConfig) and cfg.model == "mlp" and cfg.epochs == 3
    assert rd.kind() == "series"
    assert rd.checkpoint("latest").is_file() and rd.checkpoint("best").is_file()
    types = [e["type"] for e in read_events(rd.path)]
    assert types[0] == "start" and types[-2:] == ["kstep", "end"]
    assert {"progress", "epoch", "val", "checkpoint"} <= set(types)
    epochs = [e for e in read_events(rd.path) if e["type"] == "epoch"]
    assert all("train_mse" in e and "val_mse" in e for e in epochs)
    info = rd.info()
    assert info.kind == "series" and info.status == "finished" and info.best_val_mse is not None
    assert info.best_val_mse == pytest.approx(min(e["val_mse"] for e in epochs))

    # the predictions file: the series, 1-step and k-step predictions, MSE per k
    from seqtui.engine.series_trainer import read_predictions

    p = read_predictions(rd)
    assert p["values"].shape == (1000,) and np.isnan(p["one_step"][:4]).all()
    assert sorted(p["kstep"]) == [1, 4, 16, 64] and np.isnan(p["kstep"][64][: 4 + 63]).all()
    assert p["kstep_mse"] == d["kstep_mse"] and p["boundary"] == 604

    # runs list shows it; series predict reproduces its k-step MSE
    code, out, _ = run_main(["runs", "list", "--json"], capsys)
    listed = {r["name"]: r for r in json.loads(out)}
    assert listed["e2e-mlp"]["kind"] == "series" and listed["e2e-mlp"]["config"]["model"] == "mlp"
    code, out, _ = run_main(["runs", "list"], capsys)
    assert code == 0 and "e2e-mlp" in out and "mlp τ=4" in out
    code, out, _ = run_main(["runs", "show", "e2e-mlp"], capsys)
    assert code == 0 and "64-step mse" in out and "best val mse" in out
    code, out, err = run_main(["series", "predict", "e2e-mlp", "--json"], capsys)
    assert code == 0, err
    pred = json.loads(out)
    assert pred["kstep_mse"] == d["kstep_mse"] and pred["val_mse"] == d["val_mse"]
    code, out, _ = run_main(["series", "predict", "e2e-mlp", "--k", "2,8"], capsys)
    assert code == 0 and "2-step" in out and "8-step" in out
    assert sorted(read_predictions(rd)["kstep"]) == [2, 8]  # refreshed


def test_linear_run_reports_the_closed_form_coefficients(capsys):
    from seqtui.models.series import SeriesRunConfig, run_series

    d = fit_json(capsys, "sine", "--model", "linear", "--name", "e2e-linear", "--split", "600")
    ref = run_series(SeriesRunConfig(source="sine", model="linear", split=600)).to_json()
    assert d["coef"] == pytest.approx(ref["coef"], rel=1e-12) and len(d["coef"]) == 5
    assert d["kstep_mse"] == pytest.approx(ref["kstep_mse"], rel=1e-12)
    info = runs.get_run("e2e-linear")
    assert info.status == "finished" and info.last_step == 1 and info.total_steps == 1


def test_text_output_and_predictions_flag(capsys):
    code, out, err = run_main(["series", "fit", "sine:n=300", "--model", "gru", "--tau", "3", "--epochs", "2",
                               "--hidden", "4", "--clip", "1", "--name", "e2e-gru"], capsys)
    assert code == 0, err
    assert "1-step MSE" in out and "64-step" in out and "epoch   2" in out and "e2e-gru" in out
    d = fit_json(capsys, "sine", "--epochs", "1", "--k", "1,8", "--predictions", "-q")
    assert set(d["kstep"]) == {"1", "8"} and len(d["one_step"]) == 1000 and d["one_step"][3] is None
    assert d["run"].startswith("sine-mlp")  # the default name: <source>-<model>


# ---------------------------------------------------------------------------------------------
def _start(cfg_changes: dict, name: str):
    from seqtui.models.series import SeriesRunConfig

    cfg = SeriesRunConfig(**{"source": "sine", "model": "mlp", "epochs": 4, "split": 600, **cfg_changes})
    rd, _ = runs.start_series_run(cfg, name=name, detach=False)
    return rd


def _final(rd: RunDir):
    from seqtui.engine.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(rd.checkpoint("latest"), expect="series")
    best, _ = load_checkpoint(rd.checkpoint("best"), expect="series")
    return tensors, meta["extra_tensors"], best, rd.predictions_meta()


@pytest.mark.parametrize("model, on, stop_at", [("mlp", "progress", 45), ("mlp", "epoch", 76),
                                                ("gru", "progress", 30)])
def test_resume_after_a_stop_gives_the_uninterrupted_numbers(model, on, stop_at):
    """Stopped mid-epoch (step 45: epoch 2 abandoned) or at an epoch boundary (76 = 2 × 38)."""
    from seqtui.engine.series_trainer import SeriesTrainer

    changes = {"model": model, "hidden": 4 if model == "gru" else None, "clip": 1.0 if model == "gru" else None}
    ref = _start(changes, f"resume-ref-{model}-{stop_at}")
    assert SeriesTrainer(ref).run() == "finished"

    rd = _start(changes, f"resume-cut-{model}-{stop_at}")
    trainer = SeriesTrainer(rd)
    trainer.checkpoint_seconds = 1e9  # latest only when stopping: the snapshot path

    def stop(e):
        if e["type"] == on and e["step"] >= stop_at:
            trainer.request_stop("SIGTERM")

    trainer.progress_every = 1
    trainer.listeners = (stop,)
    assert trainer.run() == "stopped"
    info = rd.info()
    assert info.status == "stopped" and info.reason == "SIGTERM" and rd.predictions_meta() is None
    end = read_events(rd.path)[-1]
    assert end["type"] == "end" and end["step"] % 38 == 0 and end["step"] <= stop_at  # an epoch boundary
    assert SeriesTrainer(rd).run() == "finished"
    start = [e for e in read_events(rd.path) if e["type"] == "start"][-1]
    assert start["resumed"] and start["step"] == end["step"]

    a, b = _final(ref), _final(rd)
    for name in a[0]:
        np.testing.assert_array_equal(a[0][name], b[0][name])
    for name in a[1]:
        np.testing.assert_array_equal(a[1][name], b[1][name])
    for name in a[2]:
        np.testing.assert_array_equal(a[2][name], b[2][name])
    for key in ("train_mse", "val_mse", "kstep_mse", "kstep_train_mse", "epoch"):
        assert a[3][key] == b[3][key], key


def test_runs_resume_continues_a_stopped_series_run_in_the_foreground(capsys):
    from seqtui.engine.series_trainer import SeriesTrainer

    rd = _start({}, "resume-cli")
    trainer = SeriesTrainer(rd)
    trainer.listeners = (lambda e: e["type"] == "epoch" and trainer.request_stop("interrupted"),)
    assert trainer.run() == "stopped"
    code, out, err = run_main(["train", "--resume", "resume-cli"], capsys)
    assert code == 2 and "series run" in err and "runs resume" in err  # not the text trainer
    assert rd.info().status == "stopped"
    code, out, err = run_main(["runs", "resume", "resume-cli", "-q"], capsys)
    assert code == 0, err
    assert rd.info().status == "finished" and rd.predictions_meta()["epoch"] is not None
    code, out, err = run_main(["runs", "resume", "resume-cli"], capsys)
    assert code == 2 and "already finished" in err


def test_detach_then_runs_stop_then_resume_and_rm(capsys):
    code, out, err = run_main(["series", "fit", "sine:n=3000", "--epochs", "100000", "--name", "detached-sine",
                               "--detach"], capsys)
    assert code == 0, err
    assert out.strip() == "detached-sine"
    rd = runs.get_dir("detached-sine")
    try:
        wait_for(lambda: any(e["type"] == "epoch" for e in read_events(rd.path)), what="an epoch")
        assert runs.get_run("detached-sine").status == "running"
        code, out, _ = run_main(["runs", "list", "--json"], capsys)
        assert {r["name"]: r for r in json.loads(out)}["detached-sine"]["status"] == "running"
        code, out, err = run_main(["runs", "stop", "detached-sine"], capsys)
        assert code == 0, err
    finally:
        info = runs.get_run("detached-sine")
        if info.status == "running":  # pragma: no cover - clean up a failed test
            os.kill(info.pid, signal.SIGKILL)
    info = runs.get_run("detached-sine")
    assert info.status == "stopped" and info.reason == "SIGTERM" and rd.checkpoint("latest").is_file()
    epoch = rd.checkpoint_meta("latest")["epoch"]
    assert epoch >= 1
    # resume detached; it continues from that epoch; stop again; remove
    code, out, err = run_main(["runs", "resume", "detached-sine", "--detach"], capsys)
    assert code == 0, err
    try:
        wait_for(lambda: sum(e["type"] == "start" for e in read_events(rd.path)) == 2, what="the second start")
        start = [e for e in read_events(rd.path) if e["type"] == "start"][-1]
        assert start["resumed"] and start["epoch"] == epoch
        code, _, err = run_main(["runs", "stop", "detached-sine"], capsys)
        assert code == 0, err
    finally:
        info = runs.get_run("detached-sine")
        if info.status == "running":  # pragma: no cover
            os.kill(info.pid, signal.SIGKILL)
    code, out, err = run_main(["runs", "rm", "detached-sine", "-y"], capsys)
    assert code == 0 and not rd.path.exists()


def test_foreground_ctrl_c_checkpoints_and_exits_130(tmp_path):
    p = seqtui_subprocess(["series", "fit", "sine:n=3000", "--epochs", "100000", "--name", "fg-sigint"])
    try:
        line = p.stdout.readline()
        while line and not line.startswith("epoch"):
            line = p.stdout.readline()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:  # pragma: no cover
            p.kill()
    assert p.returncode == 130, err
    assert "runs resume fg-sigint" in err
    info = runs.get_run("fg-sigint")
    assert info.status == "stopped" and info.reason == "interrupted" and info.dir.checkpoint("latest").is_file()


# ---------------------------------------------------------------------------------------------
@pytest.fixture
def bad_files(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("1\n2\n3\n4\n5\n")
    const = tmp_path / "const.txt"
    const.write_text("3\n" * 50)
    return {"short": str(short), "const": str(const), "missing": str(tmp_path / "nope.csv")}


@pytest.mark.parametrize("argv, needle", [
    (["{short}", "--tau", "4"], "at least 6"),
    (["{const}", "--model", "linear"], "constant"),
    (["{missing}"], "no such file"),
    (["sine", "--tau", "0"], "tau must be"),
    (["sine", "--model", "transformer"], "unknown series model"),
    (["sine", "--split", "1.5"], "split"),
    (["sine", "--hidden", "0"], "hidden"),
    (["sine", "--clip", "0"], "clip must be > 0"),
    (["sine", "--lr", "-1"], "learning rate"),
    (["sine", "--optimizer", "rmsprop"], "unknown optimizer"),
    (["sine", "--k", "0"], "k must be"),
    (["sine", "--name", "../evil"], "bad run name"),
    (["sine:n=abc"], "sine setting n"),
    (["sine", "--detach", "--tau", "0"], "tau must be"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_exits_2_before_any_run_dir_exists(capsys, bad_files, argv, needle):
    before = run_names()
    code, out, err = run_main(["series", "fit", *[a.format(**bad_files) for a in argv]], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert "Traceback" not in err and run_names() == before


def test_name_taken_and_predict_on_bad_runs(capsys):
    fit_json(capsys, "sine", "--model", "linear", "--name", "taken-linear")
    before = run_names()
    code, _, err = run_main(["series", "fit", "sine", "--name", "taken-linear"], capsys)
    assert code == 2 and "already exists" in err and run_names() == before
    code, _, err = run_main(["series", "predict", "no-such-run"], capsys)
    assert code == 2 and "unknown run" in err
    code, _, err = run_main(["series", "predict", "taken-linear", "--k", "x"], capsys)
    assert code == 2 and "k must be" in err


def test_a_file_source_is_stored_absolute_and_named_after_the_file(capsys, tmp_path, monkeypatch):
    f = tmp_path / "waves.csv"
    f.write_text("t,v\n" + "".join(f"{i},{np.sin(0.1 * i) + 0.01 * (i % 7)}\n" for i in range(200)))
    monkeypatch.chdir(tmp_path)
    d = fit_json(capsys, "waves.csv:v", "--model", "linear", "--split", "0.6")
    assert d["run"].startswith("waves-linear")
    cfg = runs.get_dir(d["run"]).config()
    assert cfg.source == f"{f.resolve()}:v"
    monkeypatch.chdir("/")
    code, out, err = run_main(["series", "predict", d["run"], "--json"], capsys)
    assert code == 0 and json.loads(out)["kstep_mse"] == d["kstep_mse"], err


# ---------------------------------------------------------------------------------------------
def test_text_runs_still_work_next_to_series_runs(capsys, tmp_path):
    corpus = tiny_corpus(tmp_path)
    code, _, err = run_main(["train", str(corpus), "--name", "text-beside-series", "--epochs", "1", "--hidden", "8",
                             "--num-steps", "8", "--batch-size", "4", "--sample-every", "0", "-q"], capsys)
    assert code == 0, err
    fit_json(capsys, "sine", "--model", "linear", "--name", "series-beside-text")
    text, series = runs.get_run("text-beside-series"), runs.get_run("series-beside-text")
    assert text.kind == "text" and text.best_val_ppl is not None and series.kind == "series"
    from seqtui.engine.config import RunConfig

    assert isinstance(text.dir.config(), RunConfig)
    code, out, _ = run_main(["runs", "list", "--json"], capsys)
    kinds = {r["name"]: r["kind"] for r in json.loads(out)}
    assert kinds["text-beside-series"] == "text" and kinds["series-beside-text"] == "series"
    # a series run is not a language model: one line, exit 2
    code, _, err = run_main(["generate", "series-beside-text", "hello"], capsys)
    assert code == 2 and "series run" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_main(["series", "predict", "text-beside-series"], capsys)
    assert code == 2 and "text run" in err
    # the app's one way to start a run takes a series config too
    from seqtui.models.series import SeriesRunConfig

    rd = runs.start_run(SeriesRunConfig(source="sine", model="linear"), name="series-from-start-run", detach=False)
    assert rd.kind() == "series" and rd.info().status == "stopped"  # claimed, not trained yet
    rd2 = runs.start_run({"kind": "series", "source": "sine", "model": "mlp"}, name="series-from-dict",
                         detach=False)
    assert rd2.config().model == "mlp"


def test_a_deleted_run_dir_stops_the_run_without_recreating_it(monkeypatch):
    import shutil

    from seqtui.engine.series_trainer import SeriesTrainer

    rd = _start({"epochs": 50}, "gone-sine")
    trainer = SeriesTrainer(rd)
    trainer.listeners = (lambda e: e["type"] == "epoch" and e["epoch"] == 2 and shutil.rmtree(rd.path),)
    assert trainer.run() == "stopped" and trainer.stop_reason == "run dir gone"
    assert not rd.path.exists()


def test_zero_epochs_evaluates_the_initial_model_and_show_json(capsys):
    d = fit_json(capsys, "sine", "--epochs", "0", "--name", "zero-epochs", "-q")
    assert d["status"] == "finished" and d["checkpoint"] == "latest" and d["epoch"] == 0 and d["epochs"] == []
    code, out, _ = run_main(["runs", "show", "zero-epochs", "--json"], capsys)
    shown = json.loads(out)
    assert shown["kind"] == "series" and shown["predictions"]["kstep_mse"] == d["kstep_mse"]
    assert set(shown["checkpoints"]) == {"latest"}


def test_a_linear_run_stopped_before_its_solve_solves_on_resume():
    from seqtui.engine.series_trainer import SeriesTrainer

    rd = _start({"model": "linear"}, "linear-stopped-early")
    trainer = SeriesTrainer(rd)
    trainer.listeners = (lambda e: e["type"] == "start" and trainer.request_stop("SIGTERM"),)
    assert trainer.run() == "stopped" and rd.checkpoint_meta("latest")["epoch"] == 0
    assert SeriesTrainer(rd).run() == "finished"
    ref = _start({"model": "linear"}, "linear-straight")
    assert SeriesTrainer(ref).run() == "finished"
    assert rd.predictions_meta()["coef"] == ref.predictions_meta()["coef"]
