"""The training loop: bit-exact resume, divergence handling, signals and kill -9.

Tiny GRU/RNN models (H=8, T=8, B=4) on a few KB of text; in-process runs share the test
process's warm Numba cache, and only the signal/kill tests start `python -m seqtui train`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _fixtures_engine import read_events, seqtui_subprocess, tiny_config, tiny_corpus
from seqtui.engine import runs
from seqtui.engine.checkpoint import load_checkpoint
from seqtui.engine.trainer import Trainer, train_run
from seqtui.errors import TrainingDiverged


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


def new_run(config: dict) -> Path:
    return runs.create_run_dir(config)


def losses(events, after_start: int = 0):
    """{step: loss} of progress events (progress_every=1, so each is one step's exact loss)."""
    return {e["step"]: e["loss"] for e in events if e["type"] == "progress"}


def stop_at(trainer: Trainer, step: int):
    def listener(event):
        if event["type"] == "progress" and event["step"] == step:
            trainer.request_stop("interrupted")
    return listener


def run_with_stops(path: Path, stops: list[int]) -> str:
    """Train, stopping at each step in ``stops`` and resuming with a fresh Trainer each time."""
    for step in stops:
        trainer = Trainer(path)
        trainer.listeners = (stop_at(trainer, step),)
        assert trainer.run() == "stopped"
        assert runs.get_run(path).status == "stopped"
    return Trainer(path).run()


@pytest.mark.parametrize("changes", [
    dict(sampling="random", bptt="randomized", bptt_p=0.5, optimizer="adam", lr=0.01),
    dict(sampling="sequential", bptt="truncated", bptt_k=3, optimizer="sgd", lr=0.5, lr_decay=0.8,
         val_every=7),
], ids=["random-adam-randomized", "sequential-sgd-truncated"])
def test_resume_is_bit_exact(corpus, changes):
    config = tiny_config(corpus, epochs=3, **changes)
    ref = new_run(config)
    assert train_run(ref) == "finished"
    ref_events = read_events(ref)
    spe = next(e for e in ref_events if e["type"] == "start")["steps_per_epoch"]
    interrupted = new_run(config)
    # stop mid-epoch, then exactly at an epoch's last step, then mid-epoch again
    assert run_with_stops(interrupted, [5, spe, spe + spe // 2]) == "finished"
    got_events = read_events(interrupted)
    starts = [e for e in got_events if e["type"] == "start"]
    assert [s["step"] for s in starts] == [0, 5, spe, spe + spe // 2]
    assert [s["resumed"] for s in starts] == [False, True, True, True]
    ref_losses, got_losses = losses(ref_events), losses(got_events)
    assert len(ref_losses) == 3 * spe
    assert got_losses == ref_losses  # equal floats, not approximately equal
    pick = lambda evs, kind, key: [e[key] for e in evs if e["type"] == kind]  # noqa: E731
    assert pick(got_events, "val", "ppl") == pick(ref_events, "val", "ppl")
    assert pick(got_events, "epoch", "train_ppl") == pick(ref_events, "epoch", "train_ppl")
    assert pick(got_events, "progress", "lr") == pick(ref_events, "progress", "lr")
    a, _ = load_checkpoint(ref / "checkpoints" / "latest.safetensors")
    b, _ = load_checkpoint(interrupted / "checkpoints" / "latest.safetensors")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert runs.get_run(interrupted).status == "finished"


def test_steps_limit_and_event_stream(corpus):
    path = new_run(tiny_config(corpus, epochs=None, steps=13, checkpoint_every=5, sample_every=6,
                               grad_profile_every=4))
    assert train_run(path) == "finished"
    events = read_events(path)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and "compile" in kinds
    assert all(e["v"] == 1 and isinstance(e["time"], float) for e in events)
    assert max(losses(events)) == 13
    assert [e["step"] for e in events if e["type"] == "checkpoint" and e["kind"] == "latest"] == [5, 10, 13]
    profiles = [e for e in events if e["type"] == "grad_profile"]
    assert [p["step"] for p in profiles] == [4, 8, 12]
    assert all(len(p["norms"]) == 8 and all(n >= 0 for n in p["norms"]) for p in profiles)
    samples = [e for e in events if e["type"] == "sample"]
    assert [s["step"] for s in samples] == [6, 12]
    assert all(10 <= len(s["text"]) <= 50 for s in samples)  # 10 tokens (<unk> is 5 chars)
    baseline = next(e for e in events if e["type"] == "baseline")
    assert baseline["order"] == 3 and 1.0 < baseline["val_ppl"] < 30
    end = events[-1]
    assert (end["status"], end["reason"], end["step"]) == ("finished", "finished", 13)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["vocab_size"] > 2 and len(cfg["fingerprint"]) == 64
    info = runs.get_run(path)
    assert (info.status, info.last_step, info.total_steps, info.pid) == ("finished", 13, 13, None)


def test_validation_tracks_the_best_checkpoint(corpus):
    path = new_run(tiny_config(corpus, epochs=3))
    train_run(path)
    vals = [e for e in read_events(path) if e["type"] == "val"]
    assert len(vals) == 3
    assert vals[-1]["best_ppl"] == min(v["ppl"] for v in vals)
    _, meta = load_checkpoint(path / "checkpoints" / "best.safetensors")
    assert meta["best_val_ppl"] == vals[-1]["best_ppl"]
    assert runs.get_run(path).best_val_ppl == vals[-1]["best_ppl"]


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(corpus):
    path = new_run(tiny_config(corpus, cell="rnn", optimizer="sgd", lr=1e30, clip=None,
                               checkpoint_every=1, epochs=1))
    with pytest.raises(TrainingDiverged, match="lower the learning rate or enable clipping") as info:
        train_run(path)
    assert "\n" not in str(info.value)
    events = read_events(path)
    end = events[-1]
    assert (end["type"], end["status"], end["reason"]) == ("end", "failed", "diverged")
    assert events[-2]["type"] == "error" and "became" in events[-2]["message"]
    tensors, meta = load_checkpoint(path / "checkpoints" / "latest.safetensors")  # validates: finite
    assert meta["step"] == end["step"] >= 1
    assert all(np.isfinite(t).all() for t in tensors.values())
    run = runs.get_run(path)
    assert run.status == "failed" and "lower the learning rate" in run.reason


def test_resume_refuses_a_checkpoint_of_another_shape(corpus):
    path = new_run(tiny_config(corpus, epochs=None, steps=3))
    train_run(path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["hidden"] = 9
    (path / "config.json").write_text(json.dumps(cfg))
    from seqtui.errors import CheckpointError

    with pytest.raises(CheckpointError, match="hidden=8 but the run config says 9"):
        train_run(path)
    assert read_events(path)[-1]["status"] == "failed"


def test_too_short_validation_split_is_a_config_error(corpus, tmp_path):
    from seqtui.errors import ConfigError

    short = tmp_path / "short.txt"
    short.write_text("abcdefgh" * 12)
    path = new_run(tiny_config(short, val_fraction=0.05))
    with pytest.raises(ConfigError, match="validation split has"):
        train_run(path)


# ---------------------------------------------------------------------------------------------
# Real processes: signals and kill -9
def wait_for_event(path: Path, predicate, proc, timeout=120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in read_events(path):
            if predicate(e):
                return e
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for an event")


@pytest.mark.parametrize("sig, reason, code", [
    (signal.SIGINT, "interrupted", 130), (signal.SIGTERM, "SIGTERM", 143), (signal.SIGHUP, "SIGHUP", 129),
])
def test_signals_checkpoint_and_end_cleanly(corpus, tmp_path, sig, reason, code):
    run_dir = tmp_path / "run"
    proc = seqtui_subprocess(["train", str(corpus), "--run-dir", str(run_dir), "--hidden", "8",
                              "--num-steps", "8", "--batch-size", "4", "--steps", "10000000",
                              "--progress-every", "1", "--sample-every", "0", "-q"])
    try:
        wait_for_event(run_dir, lambda e: e["type"] == "progress" and e["step"] >= 3, proc)
        assert runs.get_run(run_dir).status == "running"
        proc.send_signal(sig)
        assert proc.wait(60) == code, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    events = read_events(run_dir)
    end = events[-1]
    assert (end["type"], end["reason"], end["status"]) == ("end", reason, "stopped")
    _, meta = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    assert meta["step"] == end["step"] >= 3
    assert "Traceback" not in proc.stderr.read()
    run = runs.get_run(run_dir)
    assert run.status == "stopped" and run.pid is None and not (run_dir / "pid").exists()


def test_kill_9_leaves_a_resumable_run_that_continues_bit_exactly(corpus, tmp_path):
    config = tiny_config(corpus, epochs=None, steps=40, checkpoint_every=5)
    ref = new_run(config)
    train_run(ref)
    ref_losses = losses(read_events(ref))
    run_dir = tmp_path / "killed"
    runs.create_run_dir(dict(config, steps=10_000_000), run_dir=run_dir)
    proc = seqtui_subprocess(["train", "--resume", str(run_dir), "-q"])
    try:
        wait_for_event(run_dir, lambda e: e["type"] == "checkpoint" and e["step"] >= 10, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
        proc.wait()
    run = runs.get_run(run_dir)
    assert run.status == "stopped" and run.pid is None  # no end event, dead pid
    _, meta = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    saved = meta["step"]
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["steps"] = 40
    (run_dir / "config.json").write_text(json.dumps(cfg))
    assert train_run(run_dir) == "finished"
    events = read_events(run_dir)
    last_start = max(i for i, e in enumerate(events) if e["type"] == "start")
    assert events[last_start]["step"] == saved and events[last_start]["resumed"]
    after = losses(events[last_start:])
    assert after == {s: ref_losses[s] for s in range(saved + 1, 41)}


def test_samples_validation_and_profiles_do_not_perturb_training(corpus):
    quiet = new_run(tiny_config(corpus, epochs=None, steps=20, sampling="sequential",
                                bptt="randomized", bptt_p=0.7, sample_every=0, grad_profile_every=0,
                                val_fraction=0.1))
    busy = new_run(tiny_config(corpus, epochs=None, steps=20, sampling="sequential",
                               bptt="randomized", bptt_p=0.7, sample_every=3, grad_profile_every=2,
                               val_every=4, checkpoint_every=5, val_fraction=0.1))
    train_run(quiet)
    train_run(busy)
    busy_events = read_events(busy)
    assert sum(e["type"] == "sample" for e in busy_events) == 6
    assert losses(read_events(quiet)) == losses(busy_events)


def test_patience_stops_early_and_the_best_checkpoint_is_the_result(corpus):
    # SGD with a vanishing learning rate: validation perplexity stops improving at once.
    path = new_run(tiny_config(corpus, epochs=None, steps=200, val_every=1, patience=2,
                               optimizer="sgd", lr=1e-30))
    assert train_run(path) == "finished"
    events = read_events(path)
    end = [e for e in events if e["type"] == "end"][-1]
    assert end["reason"] == "early-stopped" and end["status"] == "finished"
    assert end["step"] < 10
    assert any(e["type"] == "notice" and "early stop" in e["message"] for e in events)
    assert (path / "checkpoints" / "best.safetensors").exists()


def test_a_run_shorter_than_an_epoch_validates_at_the_end(corpus):
    path = new_run(tiny_config(corpus, epochs=None, steps=3))
    assert train_run(path) == "finished"
    vals = [e for e in read_events(path) if e["type"] == "val"]
    assert vals and vals[-1]["step"] == 3
    assert (path / "checkpoints" / "best.safetensors").exists()


def test_threads_is_a_cap_that_never_changes_results(corpus):
    a, b = (new_run(tiny_config(corpus, epochs=None, steps=4, hidden=64, threads=t)) for t in (1, 64))
    assert train_run(a) == train_run(b) == "finished"
    assert losses(read_events(a)) == losses(read_events(b))
    notices = [e["message"] for e in read_events(b) if e["type"] == "notice"]
    assert any("--threads 64 is more than the" in m for m in notices)  # clamped, and said so


def test_a_bpe_run_trains_and_reports_bits_per_character(corpus):
    import math

    path = new_run(tiny_config(corpus, epochs=None, steps=3, tokens="bpe", bpe_vocab=270,
                               sample_every=3, sample_length=20))
    assert train_run(path) == "finished"
    events = read_events(path)
    val = [e for e in events if e["type"] == "val"][-1]
    assert val["bits_per_char"] is not None and 0 < val["bits_per_char"] < val["loss"] / math.log(2)
    sample = [e for e in events if e["type"] == "sample"][-1]
    assert isinstance(sample["text"], str) and "Ġ" not in sample["text"]  # decoded text, not tokens
    char = new_run(tiny_config(corpus, epochs=None, steps=3))
    train_run(char)
    v = [e for e in read_events(char) if e["type"] == "val"][-1]
    assert v["bits_per_char"] == pytest.approx(v["loss"] / math.log(2))


@pytest.mark.parametrize("changes, message", [
    (dict(tokens="bpe"), "needs --bpe-vocab"),
    (dict(tokens="bpe", bpe_vocab=100), "256"),
    (dict(tokens="char", bpe_vocab=300), "only applies"),
])
def test_bpe_settings_are_checked(corpus, changes, message):
    from seqtui.engine.config import RunConfig
    from seqtui.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        RunConfig(corpus=str(corpus), **changes).validate()


# -- issue 13 (hardening): resume never silently starts over; a deleted run dir stays deleted ----
def test_resume_from_best_when_latest_is_unusable_continues_the_same_run(corpus):
    path = new_run(tiny_config(corpus, epochs=None, steps=4, checkpoint_every=1))
    assert train_run(path) == "finished"
    best_step = load_checkpoint(path / "checkpoints" / "best.safetensors")[1]["step"]
    cfg = json.loads((path / "config.json").read_text())
    cfg["steps"] = 6
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "checkpoints" / "latest.safetensors").write_bytes(b"garbage!" * 4)
    assert train_run(path) == "finished"
    events = read_events(path)
    notice = [e for e in events if e["type"] == "notice"][-1]
    assert notice["kind"] == "resumed_from_best" and "unusable" in notice["message"]
    start = [e for e in events if e["type"] == "start"][-1]
    assert start["resumed"] and start["step"] == best_step > 0
    assert events[-1]["step"] == 6


def test_no_checkpoint_after_progress_refuses_until_a_restart_is_recorded(corpus):
    from seqtui.engine.rundir import RunDir
    from seqtui.errors import CheckpointError

    path = new_run(tiny_config(corpus, epochs=None, steps=3))
    assert train_run(path) == "finished"
    for f in (path / "checkpoints").iterdir():
        f.unlink()
    cfg = json.loads((path / "config.json").read_text())
    cfg["steps"] = 5
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="reached step 3 but has no checkpoint left"):
        train_run(path)
    RunDir(path).append_event("restart", step=0, reason="fresh")
    assert train_run(path) == "finished"
    start = [e for e in read_events(path) if e["type"] == "start"][-1]
    assert start["step"] == 0 and not start["resumed"]


def test_a_save_after_the_run_dir_was_deleted_recreates_nothing(corpus):
    import shutil

    path = new_run(tiny_config(corpus, epochs=None, steps=2))
    trainer = Trainer(path)
    assert trainer.run() == "finished"
    shutil.rmtree(path)
    trainer.events = type("Sink", (), {"emit": lambda self, *a, **k: {}})()
    trainer._save("latest")
    assert trainer.stop_reason == "run dir gone" and not path.exists()


def test_threads_zero_and_patience_zero_are_one_line_errors(corpus, capsys):
    from _fixtures_engine import run_main

    for flag in ("--threads", "--patience"):
        code, _, err = run_main(["train", str(corpus), flag, "0", "-q"], capsys)
        assert code == 2 and err.count("\n") == 1 and flag.lstrip("-") in err, err
