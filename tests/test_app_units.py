"""The app's pure parts: run state folding, plot helpers, gradient chart, form parsing, help text."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from _fixtures_app import T0, record_run
from seqtui.engine.events import read_events
from seqtui.ui.widgets.grad_profile import (bin_norms, cut_points, decade_range, describe_profile,
                                         history_strip, log_range, profile_chart)
from seqtui.ui.widgets.ppl_plot import downsample, ppl_ticks, step_ticks
from seqtui.ui.run_state import RunState, fmt_duration, fmt_ppl, fmt_sci
from seqtui.ui.widgets.stats_panel import bar, sparkline

ROOT = Path(__file__).resolve().parent.parent


# -- run state ---------------------------------------------------------------------------------
def test_run_state_folds_a_recorded_stream(tmp_path):
    path = record_run("r1", steps=400, status="running", root=tmp_path)
    state = RunState(path)
    assert state.ingest(read_events(path / "events.jsonl"))
    assert state.step == 400 and state.total_steps == 1000 and state.steps_per_epoch == 200
    assert len(state.train) == 40 and state.train[0][0] == 10
    assert [s for s, _ in state.val] == [100, 200, 300, 400]
    assert state.best_val == pytest.approx(min(p for _, p in state.val))
    assert state.baseline["val_ppl"] == 8.4
    assert state.epoch == pytest.approx(2.0)
    assert state.total_epochs == pytest.approx(5.0)
    assert len(state.profiles) == 8 and len(state.profiles[-1]["norms"]) == 35
    assert state.last_sample["step"] == 200 * 2
    # 0.05 s per step in the recording: 20 steps/s, 600 steps to go → 30 s
    assert state.steps_per_second == pytest.approx(20.0)
    assert state.eta_seconds == pytest.approx(30.0)
    assert not state.compiling


def test_run_state_version_changes_only_on_known_events(tmp_path):
    state = RunState(tmp_path / "x")
    v = state.version
    assert not state.ingest([{"type": "mystery", "time": T0}])
    assert state.version == v
    assert state.ingest([{"type": "progress", "time": T0, "step": 5, "ppl": 3.0, "grad_norm": 1.5,
                          "clipped": True}])
    assert state.version == v + 1
    assert list(state.grad_norms) == [(5, 1.5, True)]


def test_resume_from_an_earlier_step_drops_the_later_points(tmp_path):
    path = record_run("r2", steps=400, status="stopped", root=tmp_path)
    state = RunState(path)
    state.ingest(read_events(path / "events.jsonl"))
    assert state.end is not None and state.eta_seconds is None
    state.ingest([{"type": "start", "time": T0 + 100, "step": 200, "total_steps": 1000,
                   "steps_per_epoch": 200, "config": state.config, "resumed": True}])
    assert max(s for s, _ in state.train) == 200
    assert max(s for s, _ in state.val) == 200
    assert state.end is None  # a new segment: the old end no longer applies


def test_compile_phase_and_nonfinite_values(tmp_path):
    state = RunState(tmp_path / "x")
    state.ingest([{"type": "start", "time": T0, "step": 0, "total_steps": 10, "steps_per_epoch": 5},
                  {"type": "compile", "time": T0, "state": "start"}])
    assert state.compiling
    state.ingest([{"type": "compile", "time": T0 + 1, "state": "done", "seconds": 1.0},
                  {"type": "progress", "time": T0 + 2, "step": 1, "ppl": None, "grad_norm": None}])
    assert not state.compiling
    assert state.train == [] and len(state.grad_norms) == 0  # null (NaN) values are not plotted


def test_formatting():
    assert fmt_duration(None) == "—"
    assert fmt_duration(42) == "42s"
    assert fmt_duration(192) == "3m 12s"
    assert fmt_duration(3 * 3600 + 240) == "3h 04m"
    assert fmt_ppl(5.834) == "5.83" and fmt_ppl(28.44) == "28.4" and fmt_ppl(1204.2) == "1,204"
    assert fmt_sci(0.84) == "0.84" and fmt_sci(3.1e-5) == "3.1e-05" and fmt_sci(None) == "—"
    assert bar(0.5, 8) == "━━━━╸───"
    assert bar(1.0, 4) == "━━━━"
    assert sparkline([]) == ""
    assert sparkline([0.0, 1.0]) == "▁█"
    assert sparkline([0.5], ceiling=1.0) in ("▄", "▅")


# -- plot helpers ------------------------------------------------------------------------------
def test_downsample_keeps_short_series_and_the_last_point():
    pts = [(i, 100.0 / (i + 1)) for i in range(10)]
    assert downsample(pts, 20) == [(float(x), float(y)) for x, y in pts]
    many = [(i, math.exp(-i / 300) * 50 + 5) for i in range(5000)]
    out = downsample(many, 160)
    assert len(out) == 160
    assert out[-1] == (4999.0, many[-1][1])
    xs = [x for x, _ in out]
    assert xs == sorted(xs)
    assert all(5 <= y <= 55 for _, y in out)
    # averaging happens in log space: a bin of 1 and 100 averages to 10
    assert downsample([(0, 1.0), (1, 100.0), (2, 7.0)], 2)[0][1] == pytest.approx(10.0)


def test_ticks_are_round_and_cover_the_range():
    t = ppl_ticks(5.5, 60)
    assert 2 <= len(t) <= 6 and t == sorted(t)
    assert all(5.5 * 0.97 <= x <= 60 * 1.03 for x in t)
    assert t[-1] / t[0] > 5  # spread over the range, not bunched at one end
    assert len(ppl_ticks(6.0, 6.1)) >= 2  # a flat curve still gets an axis
    assert step_ticks(10, 400) == [100, 200, 300, 400]
    assert step_ticks(0, 12_000, 4) == [0, 5000, 10000]


# -- gradient chart ----------------------------------------------------------------------------
def test_gradient_helpers():
    assert bin_norms([1, 5, 2, 8], 2) == [5, 8]
    assert bin_norms([1, 2], 5) == [1.0, 2.0]
    assert decade_range([0.02, 3.0]) == (-2, 1)
    assert decade_range([0.5]) == (-1, 0)
    assert decade_range([]) == (-1, 0)
    lo, hi = log_range([0.01, 0.1])
    assert hi == pytest.approx(-1) and lo == pytest.approx(-2.1)
    lo, hi = log_range([1.0, 1.1])  # a nearly flat profile still spans half a decade
    assert hi - lo == pytest.approx(0.55)
    assert cut_points("truncated:10", 35) == [10, 20, 30]
    assert cut_points("full", 35) == [] and cut_points("randomized:0.5", 35) == []


def test_describe_profile_reads_the_ratio():
    T = 35
    assert describe_profile([1.0] * T)[0] == "vanishing"
    assert describe_profile([math.exp(0.3 * (T - t)) for t in range(1, T + 1)])[0] == "exploding"
    assert describe_profile([1 + 0.2 * (T - t) for t in range(1, T + 1)])[0] == "healthy"
    assert describe_profile([1.0, float("inf")])[0] == "exploding"


def test_profile_chart_draws_one_column_per_step():
    norms = [10.0 ** (-(t / 10)) for t in range(35, 0, -1)]  # t = 1 smallest, t = 35 largest
    chart = profile_chart(norms, width=80, height=8, bptt="truncated:10").plain.splitlines()
    assert len(chart) == 8
    body, axis = chart[:-1], chart[-1]
    assert axis.strip().startswith("└t=1") and axis.rstrip().endswith("t=35")
    assert axis.count("┆") == 3
    # the tallest column is the largest norm (the last step here), the first is the shortest
    heights = [sum(1 for row in body if len(row) > 8 + 2 * i and row[8 + 2 * i] != " ")
               for i in range(35)]
    assert heights[-1] == max(heights) and heights[0] == min(heights)
    labels = [row.split("┤")[0].strip() for row in body if "┤" in row]
    assert len(labels) == 3 and float(labels[0]) > float(labels[-1])  # top > bottom, real values


def test_history_strip_one_row_per_profile():
    profiles = [{"step": s, "norms": [0.1 * (i + 1) for i in range(10)]} for s in (50, 100, 150)]
    rows = history_strip(profiles, width=60, rows=2).plain.splitlines()
    assert len(rows) == 2
    assert rows[0].split("│")[0].strip() == "100" and rows[1].split("│")[0].strip() == "150"
    assert len(rows[0].split("│")[1]) == 10 * 3  # 10 steps, 3 cells each (the widest)


# -- the new-run form --------------------------------------------------------------------------
def test_form_defaults_validate_and_are_quick():
    from seqtui.ui.screens.train_form import default_values, validate_form

    values = default_values("genesis")
    cfg, name, errors, message = validate_form(values)
    assert message is None and errors == {} and name is None
    assert cfg["corpus"] == "genesis" and cfg["hidden"] == 128 and cfg["batch_size"] == 32
    assert cfg["num_steps"] == 35 and cfg["optimizer"] == "adam"


def test_form_errors_are_inline_and_one_line():
    from seqtui.ui.screens.train_form import default_values, validate_form

    values = default_values("genesis")
    values["hidden"] = "12x"
    cfg, _name, errors, message = validate_form(values)
    assert cfg is None and "hidden" in errors and "whole number" in message

    values = default_values("genesis")
    values["bptt"] = "truncated"
    values["bptt_k"] = "99"
    cfg, _name, errors, message = validate_form(values)
    assert cfg is None and "bptt k" in message and "\n" not in message

    values["bptt_k"] = "10"
    cfg, _name, _errors, message = validate_form(values)
    assert message is None and cfg["bptt_k"] == 10

    values["bptt"] = "full"  # k is ignored (not an error) once the mode does not use it
    cfg, _name, _errors, message = validate_form(values)
    assert message is None and cfg["bptt_k"] is None

    values["steps"] = "300"  # steps replace epochs
    cfg, _name, _errors, _message = validate_form(values)
    assert cfg["steps"] == 300 and cfg["epochs"] is None

    values["name"] = "bad name!"
    cfg, _name, errors, message = validate_form(values)
    assert cfg is None and "name" in errors and "bad run name" in message


# -- help ----------------------------------------------------------------------------------------
def test_docs_keys_md_is_the_generated_help():
    from seqtui.ui.screens.help import help_markdown

    text = help_markdown()
    for needle in ("F3 / t", "ctrl+s", "Stop", "re-roll", "temperature", "Compare", "Explain"):
        assert needle in text
    assert (ROOT / "docs" / "keys.md").read_text(encoding="utf-8") == text, \
        "docs/keys.md is stale: python -c 'from seqtui.ui.screens.help import help_markdown as h; " \
        "open(\"docs/keys.md\", \"w\").write(h())'"


# -- the form is generated from RunConfig's metadata --------------------------------------------
def test_every_setting_has_a_form_control_and_a_train_option():
    from click.testing import CliRunner

    from seqtui.cli.options import ARGUMENT_FIELDS, option_fields, option_name
    from seqtui.engine.config import settings
    from seqtui.ui.screens.train_form import FIELDS

    names = [f.name for f in settings()]
    assert set(names) <= set(FIELDS), f"missing in the form: {sorted(set(names) - set(FIELDS))}"
    assert set(FIELDS) - set(names) == {"name"}  # the run name is the form's only extra
    for f in settings():
        assert FIELDS[f.name].label == f.metadata["label"]
        assert FIELDS[f.name].choices == tuple(f.metadata["choices"])
    from seqtui.cli import cli

    help_text = CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output
    for f in option_fields():
        assert option_name(f) in help_text, option_name(f)
    assert {f.name for f in option_fields()} | set(ARGUMENT_FIELDS) == set(names)


def test_form_checks_the_corpus_and_memory_as_you_type():
    from seqtui.ui.screens.train_form import default_values, validate_form

    values = default_values("no-such-corpus")
    cfg, _name, errors, message = validate_form(values)
    assert cfg is None and "corpus" in errors and "unknown corpus" in message
    values = default_values("genesis")
    values["hidden"] = "65536"
    cfg, _name, errors, message = validate_form(values)
    assert cfg is None and "hidden" in errors and "GiB" in message


def test_screen_list_is_written_once():
    from seqtui.ui.app import SeqtuiApp
    from seqtui.ui.screen_list import SCREENS

    assert list(SeqtuiApp.MODES) == [e.mode for e in SCREENS]
    for e in SCREENS:
        assert str(ROOT / "seqtui" / "ui" / e.css_path) in SeqtuiApp.CSS_PATH
        assert (ROOT / "seqtui" / "ui" / e.css_path).exists()


def test_help_does_not_import_the_app():
    import subprocess
    import sys

    code = ("import sys; import seqtui.ui.screens.help as h; h.help_markdown(); "
            "print('seqtui.ui.app' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_runs_list_arriving_while_the_app_closes_is_dropped(tmp_path, monkeypatch):
    """The runs-list worker can finish after the last screen is gone (quitting under load): its
    result must not raise ScreenStackError (it ended the app with a traceback)."""
    from seqtui.ui.app import make_app
    from seqtui.ui.messages import RunsListed

    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    app = make_app(attach=False)  # not running: no screen on the stack, as while closing
    app._runs_listed(RunsListed([], {}))
    assert app.runs == [] and app._active_screen() is None
