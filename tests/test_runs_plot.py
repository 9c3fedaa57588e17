"""`seqtui runs plot` (curves in the terminal) and `runs list` BPC / --sort, on hand-made runs:
a run directory claimed with a config, events appended as the trainer would write them."""

from __future__ import annotations

import json
import os

import pytest

from _fixtures_engine import run_main, tiny_config
from seqtui.engine import runs
from seqtui.engine.rundir import RunDir


def fake_run(name: str, corpus, val: list[tuple[int, float, float | None]], created: float,
             baseline: float | None = 9.0, tokens: str = "char") -> RunDir:
    path = runs.runs_root() / name
    path.mkdir(parents=True)
    rd = RunDir(path)
    rd.claim(tiny_config(corpus, tokens=tokens), f"{name} taken")
    rd.append_event("start", run=name, pid=1, step=0, total_steps=100)
    if baseline is not None:
        rd.append_event("baseline", order=3, val_ppl=baseline)
    for step, ppl, bpc in val:
        rd.append_event("progress", step=step, ppl=ppl * 1.1, loss=1.0)
        rd.append_event("val", step=step, ppl=ppl, best_ppl=ppl, bits_per_char=bpc)
    rd.append_event("end", step=val[-1][0] if val else 0, reason="finished", status="finished")
    os.utime(rd.config_path, (created, created))
    return rd


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    corpus = d / "c.txt"
    corpus.write_text("abc " * 100)
    a = fake_run("plot-a", corpus, [(10, 8.0, 3.0), (20, 6.0, 2.6), (30, 5.0, 2.2)], created=1_000)
    b = fake_run("plot-b", corpus, [(10, 30.0, 1.9), (20, 20.0, 1.7)], created=2_000, tokens="word")
    c = fake_run("plot-c", corpus, [(10, 4.0, None)], created=3_000, baseline=None)
    yield a, b, c
    for rd in (a, b, c):
        rd.remove()


def test_plot_renders_two_runs_with_a_legend(two_runs, capsys):
    code, out, err = run_main(["runs", "plot", "plot-a", "plot-b", "--width", "90", "--height", "24"], capsys)
    assert code == 0, err
    for label in ("plot-a train [•]", "plot-a val [x]", "plot-b train [+]", "plot-b val [o]",
                  "plot-a n-gram baseline [-] 9.000"):
        assert label in out, out
    lines = out.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 90
    assert "perplexity" in out and "step" in out
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert "┌" in out and "┘" in out  # the frame of the plot


def test_plot_log_axis_and_no_color(two_runs, monkeypatch, capsys):
    from seqtui.cli.runs import render_plot

    monkeypatch.setenv("NO_COLOR", "1")
    text = render_plot(["plot-a"], 60, 16, log_y=True)
    assert "log scale" in text and "\x1b[" not in text
    coloured = render_plot(["plot-a"], 60, 16, color=True)
    assert "\x1b[" in coloured


def test_plot_bad_input(two_runs, capsys, tmp_path):
    code, _, err = run_main(["runs", "plot", "no-such-run"], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    code, _, err = run_main(["runs", "plot"], capsys)
    assert code == 2 and "Missing argument" in err
    empty = runs.runs_root() / "plot-empty"
    empty.mkdir()
    rd = RunDir(empty)
    rd.claim(tiny_config(tmp_path / "x.txt"), "taken")
    try:
        code, _, err = run_main(["runs", "plot", "plot-empty"], capsys)
        assert code == 2 and "no perplexities logged yet" in err
    finally:
        rd.remove()


def test_runs_list_shows_best_bpc_and_sorts(two_runs, capsys):
    code, out, _ = run_main(["runs", "list", "--json"], capsys)
    assert code == 0
    listed = {r["name"]: r for r in json.loads(out) if r["name"].startswith("plot-")}
    assert listed["plot-a"]["best_val_bpc"] == pytest.approx(2.2)
    assert listed["plot-b"]["best_val_bpc"] == pytest.approx(1.7)
    assert listed["plot-c"]["best_val_bpc"] is None

    def order(sort):
        code, out, _ = run_main(["runs", "list", "--json", "--sort", sort], capsys)
        assert code == 0
        return [r["name"] for r in json.loads(out) if r["name"].startswith("plot-")]

    assert order("created") == ["plot-c", "plot-b", "plot-a"]
    assert order("bpc") == ["plot-b", "plot-a", "plot-c"]  # no BPC: last
    assert order("ppl") == ["plot-c", "plot-a", "plot-b"]
    code, out, _ = run_main(["runs", "list", "--sort", "bpc"], capsys)
    assert code == 0 and "BPC" in out and "2.200" in out and "1.700" in out
    code, _, err = run_main(["runs", "list", "--sort", "size"], capsys)
    assert code == 2 and "Invalid value" in err
