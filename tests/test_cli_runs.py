"""The run CLI: list/show/stop/resume/rm, generate, eval, detached training, and bad input.

One tiny run is trained in-process for the module; every bad input must give one `error:`
line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from _fixtures_engine import read_events, run_main, tiny_corpus
from seqtui.engine import runs

TINY = ["--hidden", "8", "--num-steps", "8", "--batch-size", "4", "--sample-every", "0", "-q"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("cli-corpus"))


@pytest.fixture(scope="module")
def trained(corpus):
    """A finished 2-epoch run named cli-done."""
    from seqtui.cli import main

    try:
        main(["train", str(corpus), "--name", "cli-done", "--epochs", "2", "--seed", "5", *TINY])
    except SystemExit as exc:  # pragma: no cover - would fail below
        assert exc.code in (0, None)
    return runs.get_run("cli-done")


def one_line_error(code: int, err: str, pattern: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in err


def test_train_prints_a_summary_and_the_run_is_finished(trained, capsys):
    assert trained.status == "finished" and trained.best_val_ppl is not None
    code, out, err = run_main(["runs", "list", "--json"], capsys)
    assert code == 0
    listed = {r["name"]: r for r in json.loads(out)}
    assert listed["cli-done"]["status"] == "finished"
    assert listed["cli-done"]["config"]["hidden"] == 8


def test_runs_list_and_show(trained, capsys):
    code, out, _ = run_main(["runs", "list"], capsys)
    assert code == 0 and "cli-done" in out and "finished" in out
    code, out, _ = run_main(["runs", "show", "cli-done"], capsys)
    assert code == 0 and "gru 1×8" in out and "best checkpoint" in out
    code, out, _ = run_main(["runs", "show", str(trained.path), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["name"] == "cli-done" and data["checkpoints"]["latest"]["step"] == data["last_step"]


def test_generate_is_reproducible_with_a_seed_and_streams_the_same_text(trained, capsys):
    args = ["generate", "cli-done", "the time", "-n", "40", "--seed", "7", "--temperature", "0.8"]
    code, first, _ = run_main(args, capsys)
    assert code == 0 and first.startswith("the time") and len(first.rstrip("\n")) >= len("the time") + 40
    _, again, _ = run_main(args, capsys)
    _, streamed, _ = run_main(args + ["--stream"], capsys)
    assert first == again == streamed
    _, greedy, _ = run_main(["generate", "cli-done", "the", "-n", "10", "--temperature", "0"], capsys)
    _, greedy2, _ = run_main(["generate", "cli-done", "the", "-n", "10", "--temperature", "0", "--seed", "1"], capsys)
    assert greedy == greedy2


def test_generate_warns_about_unknown_prompt_characters(trained, capsys):
    code, out, err = run_main(["generate", "cli-done", "the QZ time", "-n", "5", "--seed", "1"], capsys)
    assert code == 0 and out.startswith("the QZ time")
    assert "warning" in err and "'Q'" in err and "'Z'" in err and "<unk>" in err


@pytest.mark.parametrize("args, pattern", [
    (["--temperature", "-1"], "temperature"),
    (["--top-p", "0"], "top-p"),
    (["--top-k", "-2"], "top-k"),
    (["-n", "-3"], "-n must be"),
])
def test_generate_rejects_absurd_sampling_settings(trained, capsys, args, pattern):
    code, _, err = run_main(["generate", "cli-done", "the", *args], capsys)
    one_line_error(code, err, pattern)


def test_eval_reproduces_the_logged_validation_perplexity(trained, capsys):
    code, out, _ = run_main(["eval", "cli-done", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["source"] == "held-out split" and result["unk_fraction"] == 0.0
    assert result["ppl"] == pytest.approx(trained.best_val_ppl, rel=1e-9)
    code, out, _ = run_main(["eval", "cli-done"], capsys)
    assert code == 0 and "perplexity" in out and "bits per token" in out


def test_eval_on_another_text_counts_unknown_tokens(trained, capsys, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("the time traveller ÆØÅ said " * 20)
    code, out, _ = run_main(["eval", "cli-done", "--corpus", str(other), "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["tokens"] > 100 and 0 < result["unk_fraction"] < 0.2


@pytest.mark.parametrize("args, pattern", [
    (["--hidden", "0"], "hidden must be a positive integer"),
    (["--lr", "-1"], "learning rate must be a positive number"),
    (["--bptt", "truncated:99"], "bptt k must be in 1..num_steps"),
    (["--bptt", "randomized:2"], "bptt p must be in (0, 1]"),
    (["--val-fraction", "0.9"], "validation fraction"),
    (["--clip", "0"], "clip θ"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--layers", "-2"], "layers"),
])
def test_train_rejects_absurd_hyperparameters_before_creating_a_run(corpus, capsys, args, pattern):
    before = sorted(p.name for p in runs.runs_root().iterdir()) if runs.runs_root().exists() else []
    code, _, err = run_main(["train", str(corpus), *args, "-q"], capsys)
    one_line_error(code, err, pattern)
    after = sorted(p.name for p in runs.runs_root().iterdir()) if runs.runs_root().exists() else []
    assert before == after


def test_train_bad_corpus_and_unwritable_run_dir(corpus, capsys, tmp_path):
    code, _, err = run_main(["train", str(tmp_path / "missing.txt"), "-q"], capsys)
    one_line_error(code, err, "no such file")
    (tmp_path / "afile").write_text("x")
    code, _, err = run_main(["train", str(corpus), "--run-dir", str(tmp_path / "afile" / "r"), *TINY], capsys)
    one_line_error(code, err, "cannot create run dir")


def test_name_collisions_are_refused(trained, corpus, capsys):
    code, _, err = run_main(["train", str(corpus), "--name", "cli-done", *TINY], capsys)
    one_line_error(code, err, "already exists")


@pytest.mark.parametrize("argv, pattern", [
    (["runs", "show", "no-such-run"], "unknown run 'no-such-run'"),
    (["runs", "stop", "no-such-run"], "unknown run"),
    (["runs", "rm", "no-such-run", "--yes"], "unknown run"),
    (["generate", "no-such-run", "x"], "unknown run"),
    (["eval", "no-such-run"], "unknown run"),
    (["runs", "stop", "cli-done"], "is not running (finished)"),
    (["runs", "resume", "cli-done"], "already finished"),
    (["train", "--resume", "cli-done"], "already finished"),
])
def test_unknown_runs_and_wrong_states(trained, capsys, argv, pattern):
    code, _, err = run_main(argv, capsys)
    one_line_error(code, err, pattern)


def test_corrupt_and_foreign_checkpoints_are_one_line_errors(trained, capsys, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained.path, broken)
    for kind in ("best", "latest"):
        p = broken / "checkpoints" / f"{kind}.safetensors"
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    code, _, err = run_main(["generate", str(broken), "the", "-n", "3"], capsys)
    one_line_error(code, err, "corrupt or truncated")
    code, _, err = run_main(["eval", str(broken)], capsys)
    one_line_error(code, err, "corrupt or truncated")
    empty = tmp_path / "nockpt"
    runs.create_run_dir(trained.config, run_dir=empty)
    code, _, err = run_main(["generate", str(empty), "the"], capsys)
    one_line_error(code, err, "has no checkpoint yet")


def test_resume_with_another_vocabulary_is_refused(trained, capsys, tmp_path):
    other = tmp_path / "other-vocab"
    shutil.copytree(trained.path, other)
    text = tmp_path / "different.txt"
    text.write_text("0123456789 " * 400)
    cfg = json.loads((other / "config.json").read_text())
    cfg.update(corpus=str(text), fingerprint=None, epochs=5)
    (other / "config.json").write_text(json.dumps(cfg))
    for e in ("events.jsonl",):
        (other / e).write_text("")
    code, _, err = run_main(["train", "--resume", str(other), "-q"], capsys)
    one_line_error(code, err, "different vocabulary")


def test_rm_asks_unless_yes(corpus, capsys, monkeypatch):
    path = runs.create_run_dir({"corpus": str(corpus), "cell": "rnn"}, name="to-remove")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    code, _, err = run_main(["runs", "rm", "to-remove"], capsys)
    assert code != 0 and path.exists()
    code, out, _ = run_main(["runs", "rm", "to-remove", "--yes"], capsys)
    assert code == 0 and "removed to-remove" in out and not path.exists()


def _wait(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_detached_run_survives_sighup_stops_resumes_and_is_removed(corpus, capsys):
    code, out, _ = run_main(["train", str(corpus), "--name", "bg", "--steps", "100000000",
                             "--checkpoint-every", "50", "--progress-every", "5", "--detach", *TINY], capsys)
    assert code == 0 and out.strip() == "bg"  # returned at once, printing the name
    run = runs.get_run("bg")
    assert run.status == "running" and run.pid is not None
    assert _wait(lambda: runs.get_run("bg").last_step >= 20), (run.path / "train.log").read_text()
    pid = runs.get_run("bg").pid
    assert os.getsid(pid) == pid  # its own session: the terminal's hangup never reaches it
    os.kill(pid, signal.SIGHUP)
    step = runs.get_run("bg").last_step
    assert _wait(lambda: runs.get_run("bg").last_step > step + 10)
    assert runs.get_run("bg").status == "running"
    code, out, err = run_main(["runs", "stop", "bg"], capsys)
    assert code == 0 and "stopped bg" in out, err
    stopped = runs.get_run("bg")
    assert stopped.status == "stopped" and stopped.reason == "SIGTERM"
    code, out, _ = run_main(["runs", "resume", "bg", "--detach"], capsys)
    assert code == 0 and out.strip() == "bg"
    assert _wait(lambda: runs.get_run("bg").last_step > stopped.last_step + 5)
    code, _, err = run_main(["runs", "rm", "bg", "--yes"], capsys)
    one_line_error(code, err, "stop it first")
    code, out, _ = run_main(["runs", "stop", "bg"], capsys)
    assert code == 0
    events = read_events(runs.get_run("bg").path)
    starts = [e for e in events if e["type"] == "start"]
    assert [s["resumed"] for s in starts] == [False, True] and starts[1]["step"] == stopped.last_step
    code, out, _ = run_main(["runs", "rm", "bg", "--yes"], capsys)
    assert code == 0 and not run.path.exists()


def test_a_disk_that_refuses_the_checkpoint_is_one_line_and_a_failed_run(corpus, capsys, monkeypatch):
    import errno

    from seqtui.engine import checkpoint

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "atomic_write", full)
    code, _, err = run_main(["train", str(corpus), "--name", "diskfull", "--steps", "4", *TINY], capsys)
    one_line_error(code, err, "No space left on device")
    run = runs.get_run("diskfull")
    assert run.status == "failed" and "No space left" in run.reason


def test_config_file_with_overrides(trained, corpus, capsys):
    code, _, err = run_main(["train", "--config", str(trained.path / "config.json"), "--name", "from-cfg",
                             "--steps", "3", "--bptt", "truncated:4", "-q"], capsys)
    assert code == 0, err
    cfg = runs.get_run("from-cfg").config
    assert (cfg["hidden"], cfg["seed"], cfg["steps"], cfg["epochs"]) == (8, 5, 3, None)
    assert (cfg["bptt"], cfg["bptt_k"]) == ("truncated", 4)
    code, _, err = run_main(["train", str(corpus), "--bptt-k", "4", "--bptt-p", "0.5", "-q"], capsys)
    assert code != 0


def test_word_level_run_generates_words(corpus, capsys):
    code, _, err = run_main(["train", str(corpus), "--name", "words", "--tokens", "word", "--steps", "5",
                             *TINY], capsys)
    assert code == 0, err
    code, out, _ = run_main(["generate", "words", "the time", "-n", "6", "--seed", "2"], capsys)
    assert code == 0 and out.startswith("the time ")
    assert len(out.split()) == 2 + 6


def test_bench_runs_what_exists_and_tolerates_missing_suites(capsys, monkeypatch):
    from types import SimpleNamespace

    from seqtui.cli import bench

    calls = []
    monkeypatch.setattr(bench, "_load", lambda module: SimpleNamespace(main=calls.append)
                        if module == "bench_train" else None)
    code, _, err = run_main(["bench"], capsys)
    assert code == 0 and calls == [[]] and "bench encode: not available" in err
    code, _, err = run_main(["bench", "--only", "train", "--repeats", "1"], capsys)
    assert code == 0 and calls[-1] == ["--repeats", "1"]
    code, _, err = run_main(["bench", "--repeats", "1"], capsys)
    assert code != 0 and "--only" in err
    monkeypatch.setattr(bench, "_load", lambda module: None)
    code, _, err = run_main(["bench"], capsys)
    assert code != 0 and "no benchmarks" in err


def test_start_run_with_a_relative_corpus_path_trains_in_the_background(corpus, monkeypatch):
    from _fixtures_engine import tiny_config

    monkeypatch.chdir(corpus.parent)
    config = dict(tiny_config(corpus, epochs=None, steps=6), corpus=corpus.name)
    info = runs.start_run(config, name="from-tui").info()
    assert info.status == "running" and info.pid is not None
    assert info.config["corpus"] == str(corpus.resolve())
    assert _wait(lambda: runs.get_run("from-tui").status != "running"), (info.path / "train.log").read_text()
    done = runs.get_run("from-tui")
    assert (done.status, done.last_step) == ("finished", 6), (info.path / "train.log").read_text()


def test_invalid_utf8_is_refused_then_trained_with_errors_replace(corpus, capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(corpus.read_bytes()[:3000] + b"\xff\xfe" + corpus.read_bytes()[3000:6000])
    code, _, err = run_main(["train", str(bad), "--name", "utf8-bad", *TINY, "--steps", "2"], capsys)
    one_line_error(code, err, "invalid UTF-8 at byte 3000")
    assert "--errors replace" in err
    code, _, err = run_main(["train", str(bad), "--name", "utf8-ok", "--errors", "replace", *TINY,
                             "--steps", "2"], capsys)
    assert code == 0, err
    run = runs.get_run("utf8-ok")
    assert run.status == "finished" and run.config["errors"] == "replace"
