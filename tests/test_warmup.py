"""Compile progress and the warm-up lock (the kernels' real compile time is a benchmark:
bench/bench_compile.py)."""

from __future__ import annotations

import subprocess
import sys
import time

from _fixtures_engine import run_main


def test_watch_compiles_names_each_seqtui_kernel_as_it_compiles():
    from numba import njit

    from seqtui.engine.warmup import watch_compiles

    def plus_one(x):
        return x + 1

    plus_one.__module__ = "seqtui.kernels.fake"
    seen = []
    with watch_compiles(lambda name, seconds: seen.append((name, seconds))):
        njit(plus_one)(1)
    njit(plus_one)(2.0)  # outside the block: not reported
    assert [n for n, _ in seen] == ["fake.plus_one"] and seen[0][1] >= 0


def test_a_trainer_waits_for_a_running_warmup(tmp_path, monkeypatch):
    """The exclusive lock a trainer takes waits while a warm-up holds the shared one."""
    monkeypatch.setenv("SEQTUI_CACHE_DIR", str(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c",
                               "import time\nfrom seqtui.engine.warmup import compile_lock\n"
                               "with compile_lock(shared=True):\n    print('held', flush=True)\n"
                               "    time.sleep(1.5)\n"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    from seqtui.engine.warmup import compile_lock

    t0 = time.monotonic()
    with compile_lock(shared=False):
        waited = time.monotonic() - t0
    holder.wait(30)
    assert waited > 0.5


def test_warmup_refuses_an_unknown_cell(capsys):
    code, _, err = run_main(["warmup", "--cells", "tcn"], capsys)
    assert code == 2 and "unknown cell 'tcn'" in err


def test_two_runs_train_side_by_side(tmp_path):
    """The compile lock is held for the warm-up only: a second run starts training while the
    first one still trains (before, it waited for the whole first run)."""
    from _fixtures_engine import tiny_config, tiny_corpus

    from seqtui.engine import runs

    corpus = tiny_corpus(tmp_path)
    a = runs.start_run(tiny_config(corpus, epochs=None, steps=1_000_000, progress_every=50), name="side-a")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(e["type"] == "progress" for e in a.events()):
        time.sleep(0.1)
    b = runs.start_run(tiny_config(corpus, epochs=None, steps=20, progress_every=5), name="side-b")
    try:
        while time.monotonic() < deadline and not any(e["type"] == "end" for e in b.events()):
            time.sleep(0.1)
        assert any(e["type"] == "end" for e in b.events()), "the second run never finished"
        assert a.info().status == "running"  # b finished while a was still training
    finally:
        for run in ("side-a", "side-b"):
            try:
                runs.stop_run(run, timeout=60)
            except Exception:  # noqa: BLE001 - already ended
                pass


def test_the_helper_compiles_the_backward_pass_alone_and_says_when_it_is_done(tmp_path):
    """A trainer's helper (``--part backward --report``) compiles the backward kernels, not the
    forward ones (the trainer compiles those meanwhile), reports each as a JSON line and then
    that the part is done; a trainer using that cache compiles none of them again."""
    import json
    import os

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    env.pop("SEQTUI_NUMBA_CACHE_BASE", None)
    out = subprocess.run([sys.executable, "-m", "seqtui.engine.warmup", "--cells", "rnn", "--part",
                          "backward", "--report", "--no-lock"], env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    kernels = {m["kernel"] for m in lines if "kernel" in m}
    assert {"rnn.rnn_backward", "linear.matmul_tn", "output.softmax_ce_forward_backward"} <= kernels
    assert "rnn.rnn_forward" not in kernels and "linear.transpose" not in kernels
    assert lines[-1] == {"done": "backward"}
    again = subprocess.run(
        [sys.executable, "-c",
         "from seqtui.engine.warmup import part_cached, warm, watch_compiles\n"
         "print(part_cached('backward', 'rnn'), part_cached('backward', 'gru'))\n"
         "seen = []\n"
         "with watch_compiles(lambda name, s: seen.append(name)):\n"
         "    warm('rnn', 'float32', ('model',))\n"
         "print(','.join(seen))\n"], env=env, capture_output=True, text=True, timeout=600,
        check=True).stdout.splitlines()
    assert again[0] == "True False"
    compiled_after = set(again[1].split(","))
    assert "rnn.rnn_forward" in compiled_after  # the forward pass was still to compile …
    assert not compiled_after & {"rnn.rnn_backward", "linear.matmul_tn"}  # … the backward was not


def test_a_helper_that_dies_is_not_waited_for(monkeypatch):
    from seqtui.engine import warmup

    monkeypatch.setattr(warmup, "part_cached", lambda part, cell: False)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # a helper that exits at once
    helper = warmup.Helper("rnn", "float32")
    t0 = time.monotonic()
    assert helper.wait_for("backward", lambda *a: None, lambda: False, timeout=60) is False
    assert time.monotonic() - t0 < 30
    t0 = time.monotonic()
    assert helper.wait_for("extras", lambda *a: None, lambda: False, timeout=60) is False
    assert time.monotonic() - t0 < 1  # ended: asking again does not wait
