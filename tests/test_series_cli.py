"""`seqtui series` from the outside: output, JSON, and one-line errors (exit 2) for every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from _fixtures_engine import run_main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`seqtui ARGV` in-process through the real entry point (the shared fixture)."""
    return run_main(list(argv), capsys)


def one_line_error(capsys, *argv: str, needles=()) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("date,value,label\n" + "".join(f"{i},{(i * 7) % 13 + 0.5 * i},x\n" for i in range(60)))
    one = tmp_path / "one.txt"
    one.write_text("\n".join(str((i * 37) % 11) for i in range(80)) + "\n\n")
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n" + "".join(f"{i}\t{(i * 5) % 7}\n" for i in range(40)))

    def bad(name, cell, row=5):
        rows = [str((i * 3) % 7) for i in range(40)]
        rows[row] = cell
        p = tmp_path / name
        p.write_text("v\n" + "\n".join(rows) + "\n")
        return p

    return {"good": good, "one": one, "tsv": tsv, "dir": tmp_path,
            "text": bad("text.csv", "abc"), "empty": bad("empty.csv", ""), "nan": bad("nan.csv", "nan"),
            "inf": bad("inf.csv", "-inf"), "short": _write(tmp_path / "short.txt", "1\n2\n3\n4\n5\n"),
            "blank": _write(tmp_path / "blank.txt", "1\n2\n\n3\n" + "4\n" * 30),
            "const": _write(tmp_path / "const.txt", "3\n" * 50),
            "batch": _write(tmp_path / "b.txt", "".join(f"{(i * 7) % 5}\n" for i in range(20)))}


def _write(p, text):
    p.write_text(text)
    return p


def test_list_and_show(capsys):
    code, out, _ = run(capsys, "series", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert {"sine", "sunspots", "co2", "nile", "elnino"} <= set(rows) and rows["sine"]["length"] == 1000
    code, out, _ = run(capsys, "series", "list")
    assert code == 0 and "sine" in out
    code, out, _ = run(capsys, "series", "show", "sine", "--json")
    d = json.loads(out)
    assert code == 0 and d["length"] == 1000 and -1.8 < d["min"] < d["mean"] < d["max"] < 1.8
    assert len(d["sparkline"]) == 60
    code, out, _ = run(capsys, "series", "show", "sine:n=300,noise=0")
    assert code == 0 and "length  300" in out and "┤" in out


def test_show_files(capsys, files):
    code, out, _ = run(capsys, "series", "show", f"{files['good']}:value", "--json")
    assert code == 0 and json.loads(out)["length"] == 60 and json.loads(out)["column"] == "value"
    code, out, _ = run(capsys, "series", "show", f"{files['good']}:1", "--json")
    assert code == 0 and json.loads(out)["column"] == "value"
    code, out, _ = run(capsys, "series", "show", str(files["one"]), "--json", "--values")
    assert code == 0 and json.loads(out)["values"][:3] == [0.0, 4.0, 8.0]
    code, out, _ = run(capsys, "series", "show", f"{files['tsv']}:b", "--json")
    assert code == 0 and json.loads(out)["length"] == 40


def test_tau_sweep_json(capsys):
    code, out, _ = run(capsys, "series", "tau", "sine", "--max-tau", "6", "--split", "600", "--json")
    d = json.loads(out)
    assert code == 0 and [r["tau"] for r in d["rows"]] == [1, 2, 3, 4, 5, 6] and 1 <= d["best_tau"] <= 6
    code, out, _ = run(capsys, "series", "tau", "sine", "--max-tau", "4")
    assert code == 0 and "best" in out


def test_fit_json(capsys):
    code, out, _ = run(capsys, "series", "fit", "sine", "--model", "linear", "--split", "600", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["coef"]) == 5 and set(d["kstep_mse"]) == {"1", "4", "16", "64"}
    assert d["val_mse"] < 0.06 and d["n_train"] == 600
    code, out, _ = run(capsys, "series", "fit", "sine", "--split", "600", "--k", "1,8", "--json", "--predictions")
    d = json.loads(out)
    assert code == 0 and d["model"] == "mlp" and 0.04 < d["train_mse"] < 0.07 and len(d["epochs"]) == 5
    assert set(d["kstep"]) == {"1", "8"} and len(d["one_step"]) == 1000 and d["one_step"][3] is None
    code, out, _ = run(capsys, "series", "fit", "sine:n=200", "--model", "rnn", "--tau", "3", "--epochs", "1",
                       "--hidden", "4", "--clip", "1")
    assert code == 0 and "1-step MSE" in out and "64-step" in out


@pytest.mark.parametrize("case", [
    ("missing file", ["show", "/nonexistent/x.csv"], ["no such file"]),
    ("missing file with column", ["show", "/nonexistent/x.csv:value"], ["no such file"]),
    ("unknown column", ["show", "{good}:nope"], ["no column 'nope'", "value"]),
    ("column index out of range", ["show", "{good}:7"], ["no column 7"]),
    ("no column chosen", ["show", "{good}"], ["choose one", "date, value, label"]),
    ("empty column name", ["show", "{good}:"], ["empty column"]),
    ("non-numeric column", ["show", "{good}:label"], ["not a number", "line 2", "'label'"]),
    ("non-numeric cell", ["show", "{text}"], ["not a number", "line 7", "'abc'"]),
    ("empty cell", ["show", "{empty}"], ["empty cell", "line 7"]),
    ("blank line inside", ["show", "{blank}"], ["empty cell", "line 3", "column 0"]),
    ("NaN", ["show", "{nan}"], ["NaN", "line 7", "column 'v'"]),
    ("inf", ["show", "{inf}"], ["infinite", "line 7"]),
    ("shorter than tau + 2", ["fit", "{short}", "--tau", "4"], ["5 points", "at least 6"]),
    ("shorter than one batch", ["fit", "{batch}", "--batch", "16"], ["fewer than one batch", "at least"]),
    ("constant", ["fit", "{const}", "--model", "linear"], ["constant", "std 0"]),
    ("tau zero", ["fit", "sine", "--tau", "0"], ["tau must be an integer >= 1"]),
    ("tau negative", ["tau", "sine", "--tau", "-3"], ["tau must be an integer >= 1"]),
    ("tau not a number", ["fit", "sine", "--tau", "four"], ["--tau must be an integer"]),
    ("k zero", ["fit", "sine", "--k", "1,0"], ["k must be a positive integer", "'0'"]),
    ("k fraction", ["fit", "sine", "--k", "1.5"], ["k must be a positive integer"]),
    ("k text", ["fit", "sine", "--k", "x"], ["k must be a positive integer"]),
    ("unknown model", ["fit", "sine", "--model", "transformer"], ["unknown series model"]),
    ("diverging", ["fit", "sine", "--lr", "10", "--optimizer", "sgd", "--epochs", "3"], ["loss became"]),
    ("bad split", ["fit", "sine", "--split", "1.5"], ["split"]),
    ("unknown series name", ["show", "sunspot"], ["no such file or series"]),
    ("bad sine setting", ["show", "sine:n=abc"], ["sine setting n must be a number"]),
    ("directory", ["show", "{dir}"], ["is a directory", "not a file"]),
    ("device", ["show", "/dev/zero"], ["/dev/zero is a device", "not a regular file"]),
], ids=lambda c: c[0])
def test_bad_input_is_one_line_exit_2(capsys, files, case):
    _, argv, needles = case
    argv = [a.format(**files) for a in argv]
    one_line_error(capsys, "series", *argv, needles=needles)


def test_fifo_is_refused_without_blocking(capsys, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    one_line_error(capsys, "series", "show", str(fifo), needles=["FIFO", "not a regular file"])


def test_real_process_one_line_and_no_numba_for_list(files):
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-m", "seqtui", "series", "show", f"{files['text']}"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    probe = ("import sys\nfrom seqtui.cli import main\n"
             "try:\n    main(['series', 'list', '--json'])\nexcept SystemExit:\n    pass\n"
             "from seqtui.data.series import list_series, load_series\n"
             "if {i.name: i for i in list_series()}['sunspots'].available:\n    load_series('sunspots')\n"
             "print('NUMBA', 'numba' in sys.modules, 'statsmodels' in sys.modules, 'pandas' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and "NUMBA False False False" in p.stdout, p.stdout + p.stderr


def test_missing_statsmodels_gives_the_install_hint(capsys, monkeypatch):
    from seqtui.data import series as ds

    monkeypatch.setattr(ds, "_statsmodels_dir", lambda: None)
    rows = {i.name: i for i in ds.list_series()}
    assert not rows["sunspots"].available and rows["sunspots"].install_hint == "pip install 'seqtui[series]'"
    one_line_error(capsys, "series", "show", "sunspots", needles=["statsmodels", "pip install 'seqtui[series]'"])


def test_oversized_file_is_refused(capsys, monkeypatch, files):
    from seqtui.data import series as ds

    monkeypatch.setattr(ds, "MAX_SERIES_BYTES", 100)
    one_line_error(capsys, "series", "show", str(files["one"]), needles=["MiB limit"])
