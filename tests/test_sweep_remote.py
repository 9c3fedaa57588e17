"""A sweep through `--scheduler` to a `dask scheduler` and `dask worker`s started as separate
processes, in separate working directories with their own SEQTUI_DATA_DIR/SEQTUI_CACHE_DIR: the
client's run directories end up complete (events, checkpoints) although the workers never see
the client's disk — the corpus travels to them, events and checkpoints travel back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _fixtures_engine import read_events, run_main, tiny_corpus

pytest.importorskip("distributed")
pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parent.parent


def _start(args, cwd: Path, env: dict) -> subprocess.Popen:
    log = open(cwd / "log.txt", "wb")
    return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_sweep_through_a_separate_scheduler_and_workers(tmp_path, capsys):
    client_dir, sched_dir, worker_dir = (tmp_path / n for n in ("client", "scheduler", "worker"))
    for d in (client_dir, sched_dir, worker_dir):
        d.mkdir()
    corpus = tiny_corpus(client_dir)
    sched_file = sched_dir / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    worker_env = dict(env, SEQTUI_DATA_DIR=str(worker_dir / "data"),
                      SEQTUI_CACHE_DIR=str(worker_dir / "cache"))
    scheduler = _start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(sched_file)], sched_dir, env)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        worker = _start(["worker", address, "--nworkers", "2", "--nthreads", "1",
                         "--local-directory", str(worker_dir / "scratch"), "--no-dashboard"],
                        worker_dir, worker_env)
        code, out, err = run_main(
            ["sweep", str(corpus), "--scheduler", address, "--search", "grid",
             "--param", "cell=rnn,gru", "--hidden", "8", "--batch-size", "4", "--num-steps", "8",
             "--budget", "20steps", "--sample-every", "0", "--checkpoint-every", "10",
             "--threads-per-trial", "1", "--study", "remote", "--json"], capsys)
        assert code == 0, err
        assert f"on scheduler {address}" in err
        data = json.loads(out)
        assert [r["status"] for r in data["rows"]] == ["finished", "finished"]
        workers = {r["worker"] for r in data["rows"]}
        assert all(w and w.startswith("tcp://127.0.0.1:") for w in workers)
        for r in data["rows"]:
            from seqtui.engine.rundir import RunDir

            rd = RunDir(r["path"])
            assert rd.path.is_relative_to(Path(os.environ["SEQTUI_DATA_DIR"]))
            events = read_events(rd.path)
            assert [e["type"] for e in events][-1] == "end" and events[-1]["step"] == 20
            assert events[0]["config"]["corpus"] == str(corpus) == rd.config().corpus
            assert rd.checkpoint("latest").is_file() and rd.checkpoint("best").is_file()
            assert rd.config().sweep == "remote"
            # the worker trained from its own copy of the corpus, in its own scratch space
            assert rd.checkpoint_meta("latest")["config"]["corpus"].startswith(
                str(worker_dir / "scratch"))
        shipped = [p for p in (worker_dir / "scratch").rglob("*.txt") if p.parent.name == "corpora"]
        assert shipped and shipped[0].read_bytes() == corpus.read_bytes()
        assert not (worker_dir / "data" / "runs").exists()   # nothing of the client's on its disk
        assert not (client_dir / "data").exists()
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)
