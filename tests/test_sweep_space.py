"""The sweep's search space and its refusals: every bad input is one line and exit 2, before
anything starts (no cluster, no run directory)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from _fixtures_engine import run_main, tiny_corpus
from seqtui.engine.config import RunConfig
from seqtui.errors import ConfigError
from seqtui.sweep.space import build_space, parse_param

TINY = ["--hidden", "8", "--batch-size", "4", "--num-steps", "8", "--budget", "10steps",
        "--sample-every", "0"]


def test_choices_ranges_and_types():
    p = parse_param("cell=rnn,gru,lstm")
    assert p.choices == ("rnn", "gru", "lstm") and not p.is_range
    assert parse_param("hidden=128,256").choices == (128, 256)
    lr = parse_param("lr=1e-3..1e-2:log")
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-3, 1e-2, True)
    h = parse_param("hidden=16..64")
    assert (h.kind, h.low, h.high, h.log) == ("int", 16, 64, False)
    assert parse_param("clip=none,1").choices == (None, 1.0)
    assert parse_param("bptt=full,truncated:4,randomized:0.3").choices == (
        "full", "truncated:4", "randomized:0.3")
    assert parse_param("batch-size=4,8").name == "batch_size"


@pytest.mark.parametrize("spec, message", [
    ("colour=red,blue", "unknown parameter 'colour'"),
    ("hidden=8.5,16", "takes int values"),
    ("hidden=8.5..16", "ends must be integers"),
    ("lr=0.1..0.01", "low < high"),
    ("lr=0..1:log", "must be positive"),
    ("cell=rnn..gru", "unknown"),  # a name is never a range: checked as a choice, rejected later
    ("corpus=a,b", "argument"),
    ("hidden=8,8", "twice"),
    ("lr", "bad --param"),
])
def test_bad_params(spec, message):
    with pytest.raises(ConfigError, match=message):
        space = build_space([spec])
        space.check(RunConfig(corpus="x"))


def test_every_grid_point_and_range_end_is_validated():
    base = RunConfig(corpus="x", num_steps=8)
    assert build_space(["cell=rnn,gru", "bptt=full,truncated:4"]).check(base) == 4
    with pytest.raises(ConfigError, match=r"bptt=truncated:9.*bptt k must be in 1\.\.num_steps"):
        build_space(["cell=rnn,gru", "bptt=full,truncated:9"]).check(base)
    with pytest.raises(ConfigError, match="lr_decay=1.5"):
        build_space(["lr_decay=0.5..1.5"]).check(base)
    with pytest.raises(ConfigError, match="grid search needs choices"):
        build_space(["lr=1e-3..1e-2"]).grid()


def test_space_file(tmp_path):
    toml = tmp_path / "space.toml"
    toml.write_text('cell = ["rnn", "gru"]\nlr = {low = 1e-3, high = 1e-2, log = true}\n'
                    'bptt = "full,truncated:4"\n')
    space = build_space([], toml)
    assert space.names == ["cell", "lr", "bptt"] and space.params[1].log
    js = tmp_path / "space.json"
    js.write_text('{"hidden": [8, 12]}')
    assert build_space(["cell=rnn"], js).names == ["hidden", "cell"]
    bad = tmp_path / "bad.toml"
    bad.write_text("cell = [")
    with pytest.raises(ConfigError, match="not valid toml"):
        build_space([], bad)


@pytest.mark.parametrize("args, message", [
    (["--param", "colour=red"], "unknown parameter 'colour'"),
    (["--param", "bptt=full,truncated:99"], "truncated:99"),
    (["--param", "lr=-1..1"], "learning rate must be a positive number"),
    (["--param", "cell=rnn", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"],
     "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s"),
    (["--param", "cell=rnn", "--storage", "nosuchdb://host/x"], "cannot open study storage"),
    (["--param", "cell=rnn", "--storage", "sqlite:////nonexistent-dir/x.db"],
     "cannot open study storage"),
    (["--param", "cell=rnn", "--budget", "lots"], "bad --budget"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    corpus = tiny_corpus(tmp_path)
    code, out, err = run_main(["sweep", str(corpus), *TINY, *args], capsys)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_missing_packages_say_how_to_install(tmp_path):
    corpus = tiny_corpus(tmp_path)
    code = ("import sys; sys.modules['optuna'] = None\n"
            "from seqtui.cli import main\n"
            f"main(['sweep', {str(corpus)!r}, '--param', 'cell=rnn'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: seqtui sweep needs optuna: pip install 'seqtui[sweep]'"
