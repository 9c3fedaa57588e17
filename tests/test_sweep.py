"""A real sweep on a 2-worker LocalCluster: a grid of 4 and a TPE search of 6 with the median
pruner; the ranked table and JSON, and every trial an ordinary, tagged run with its events and
checkpoints in the local run directory. Re-running the command repeats nothing."""

from __future__ import annotations

import json

import pytest

from _fixtures_engine import read_events, run_main, tiny_corpus

pytest.importorskip("distributed")
pytest.importorskip("optuna")

BUDGET = 30
TINY = ["--hidden", "8", "--batch-size", "4", "--num-steps", "8", "--budget", f"{BUDGET}steps",
        "--sample-every", "0", "--checkpoint-every", "10", "--workers", "2"]


def _sweep_json(name, capsys):
    code, out, err = run_main(["sweep", "show", name, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def _check_run(row, name):
    from seqtui.engine.rundir import RunDir

    rd = RunDir(row["path"])
    assert rd.is_run() and rd.name == row["run"]
    cfg = rd.config()
    assert (cfg.sweep, cfg.trial) == (name, row["trial"])
    assert cfg.fingerprint and cfg.vocab_size and cfg.threads == 1
    events = read_events(rd.path)
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "end" and "val" in types
    assert events[0]["run"] == rd.name and events[0]["config"]["corpus"] == cfg.corpus
    for e in events:
        if e["type"] == "checkpoint":
            assert e["path"].startswith(str(rd.path))  # the client's paths, not the worker's
    assert rd.checkpoint("latest").is_file() and rd.checkpoint("best").is_file()
    assert rd.checkpoint_meta("latest")["step"] == events[-1]["step"]
    return rd, events


def test_grid_and_tpe_sweeps(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = tiny_corpus(tmp_path)
    grid = ["sweep", str(corpus), *TINY, "--search", "grid", "--param", "cell=rnn,gru",
            "--param", "lr=0.01,0.03", "--no-prune", "--study", "g4"]
    code, out, err = run_main(grid, capsys)
    assert code == 0, err
    assert "sweep g4: grid, 4 trials" in err and "2 workers × 1 thread" in err
    assert "4 trials: 4 finished" in out and "BEST VAL PPL" in out
    data = _sweep_json("g4", capsys)
    assert [r["status"] for r in data["rows"]] == ["finished"] * 4
    assert {(r["params"]["cell"], r["params"]["lr"]) for r in data["rows"]} == {
        ("rnn", 0.01), ("rnn", 0.03), ("gru", 0.01), ("gru", 0.03)}
    ppls = [r["best_val_ppl"] for r in data["rows"]]
    assert ppls == sorted(ppls) and data["best"]["best_val_ppl"] == ppls[0]
    for row in data["rows"]:
        rd, events = _check_run(row, "g4")
        assert row["step"] == BUDGET and events[-1]["status"] == "finished"
        assert row["tokens_per_s"] > 0 and row["seconds"] > 0
    # the trials are ordinary runs
    code, out, err = run_main(["runs", "list", "--sweep", "g4", "--json"], capsys)
    listed = json.loads(out)
    assert sorted(r["name"] for r in listed) == sorted(r["run"] for r in data["rows"])
    assert all(r["status"] == "finished" for r in listed)
    # the same command again: the study is complete, nothing repeats
    code, out, err = run_main(grid, capsys)
    assert code == 0 and "is complete" in err and "4 trials: 4 finished" in out

    # TPE of 6 with the median pruner: absurd learning rates are stopped early (seed 4 makes the
    # third trial — started when a good one has finished — an lr=8 one)
    tpe = ["sweep", str(corpus), *TINY, "--search", "tpe", "--trials", "6", "--seed", "4",
           "--param", "lr=0.02,8.0", "--param", "hidden=8,12", "--study", "t6", "--json"]
    code, out, err = run_main(tpe, capsys)
    assert code == 0, err
    data = json.loads(out)
    rows = data["rows"]
    assert len(rows) == 6 and sum(data["counts"].values()) == 6
    pruned = [r for r in rows if r["status"] == "pruned"]
    assert any(r["params"]["lr"] == 8.0 for r in pruned), rows
    for r in pruned:  # (a good trial may be pruned too: worse than the median at some step)
        assert r["step"] < BUDGET  # stopped before its budget
        rd, events = _check_run(r, "t6")
        assert events[-1]["reason"] == "pruned" and events[-1]["status"] == "stopped"
    finished = [r for r in rows if r["status"] == "finished"]
    assert finished and data["best"]["params"]["lr"] == 0.02
    assert rows[0]["status"] == "finished"


def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    corpus = tiny_corpus(tmp_path)
    args = ["sweep", str(corpus), *TINY, "--search", "grid", "--optimizer", "sgd", "--no-clip",
            "--param", "lr=0.5,1e9", "--study", "nan", "--json"]
    code, out, err = run_main(args, capsys)
    assert code == 0, err
    rows = {r["params"]["lr"]: r for r in json.loads(out)["rows"]}
    assert rows[0.5]["status"] == "finished"
    bad = rows[1e9]
    assert bad["status"] == "failed" and "lower the learning rate" in bad["error"]
    events = read_events(bad["path"])
    assert events[-1]["type"] == "end" and events[-1]["status"] == "failed"
    assert "trial 1 failed" in err or "trial 0 failed" in err
    code, out, err = run_main(["sweep", "list"], capsys)
    assert code == 0 and "nan  grid" in out and "1 finished" in out and "1 failed" in out
