"""`seqtui corpora` and `seqtui ngram` from the outside: output, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from _fixtures_engine import run_main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`seqtui ARGV` in-process through the real entry point (the shared fixture)."""
    return run_main(list(argv), capsys)


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("the quick brown fox jumps over the lazy dog\n" * 40, encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"line one\nna\xefve caf\xe9\n")
    nodocs = tmp_path / "nodocs"  # a directory is a corpus of its *.txt files: this one has none
    nodocs.mkdir()
    (nodocs / "image.bin").write_bytes(binary.read_bytes())
    return {"good": good, "empty": empty, "binary": binary, "latin1": latin1, "dir": nodocs}


def test_list_shows_bundled_corpora(capsys):
    code, out, _ = run(capsys, "corpora", "list")
    assert code == 0
    for name in ("genesis", "kjv", "pydoc-topics", "python-stdlib", "shakespeare"):
        assert name in out
    code, out, _ = run(capsys, "corpora", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["kjv"]["available"] and rows["kjv"]["size_bytes"] >= 4_000_000


def test_show_a_file_as_json(capsys, files):
    code, out, _ = run(capsys, "corpora", "show", str(files["good"]), "--json")
    assert code == 0
    d = json.loads(out)
    assert d["chars"] == 44 * 40 and d["vocab_size"] == 29  # 26 letters + space + newline + <unk>
    assert d["top_tokens"][0] == [" ", 320]


def test_show_text_output(capsys, files):
    code, out, _ = run(capsys, "corpora", "show", str(files["good"]))
    assert code == 0
    assert "1,760" in out and "vocabulary" in out and "the quick brown fox" in out


@pytest.mark.parametrize(
    "key,needles",
    [
        ("dir", ["has no .txt files"]),
        ("empty", ["is empty"]),
        ("binary", ["looks binary", "NUL byte at offset 8"]),
        ("latin1", ["invalid UTF-8 at byte 11 (line 2, column 3)", "--errors replace"]),
    ],
)
@pytest.mark.parametrize("command", [["corpora", "show"], ["ngram"], ["corpora", "add", "x"]])
def test_bad_files_give_one_line_errors(capsys, files, key, needles, command):
    code, _, err = run(capsys, *command, str(files[key]))
    assert code == 2
    assert_one_line_error(code, err, "error: ", *needles)


def test_errors_replace_recovers_invalid_utf8(capsys, files):
    code, out, _ = run(capsys, "corpora", "show", str(files["latin1"]), "--errors", "replace", "--json")
    assert code == 0
    assert "\ufffd" in json.loads(out)["preview"]
    code, out, _ = run(capsys, "ngram", str(files["latin1"]), "--errors", "replace", "--json", "--val-fraction", "0.2")
    assert code == 0 and json.loads(out)["val_ppl"] > 1


def test_nonexistent_path_and_unknown_name(capsys, files):
    code, _, err = run(capsys, "corpora", "show", str(files["dir"] / "nope.txt"))
    assert_one_line_error(code, err, "no such file")
    code, _, err = run(capsys, "ngram", "shakespear")
    assert_one_line_error(code, err, "unknown corpus 'shakespear'", "known: genesis, kjv")


def test_add_list_remove_round_trip(capsys, files):
    code, out, _ = run(capsys, "corpora", "add", "foxes", str(files["good"]))
    assert code == 0 and "added foxes" in out
    code, out, _ = run(capsys, "corpora", "list")
    assert "foxes" in out and "user" in out
    code, _, err = run(capsys, "corpora", "add", "foxes", str(files["good"]))
    assert_one_line_error(code, err, "already registered", "--force")
    code, out, _ = run(capsys, "ngram", "foxes", "--order", "1", "--json", "--length", "20")
    assert code == 0 and json.loads(out)["corpus"] == "foxes"
    code, out, _ = run(capsys, "corpora", "remove", "foxes")
    assert code == 0 and "removed foxes" in out
    code, _, err = run(capsys, "corpora", "remove", "foxes")
    assert_one_line_error(code, err, "no registered corpus 'foxes'")
    code, _, err = run(capsys, "corpora", "remove", "kjv")
    assert_one_line_error(code, err, "bundled")


def test_ngram_reports_perplexities_and_a_sample(capsys, files):
    code, out, _ = run(capsys, "ngram", str(files["good"]), "--order", "2", "--json", "--length", "30", "--seed", "4")
    assert code == 0
    d = json.loads(out)
    assert d["vocab_size"] == 29 and d["eps"] == [1.0, 1.0, 1.0]
    assert d["train_tokens"] + d["val_tokens"] == 1760
    assert 1 < d["train_ppl"] < 3 and 1 < d["val_ppl"] < 3  # a repeated sentence is very predictable
    assert len(d["sample"]) == 30
    again = json.loads(run(capsys, "ngram", str(files["good"]), "--order", "2", "--json", "--length", "30", "--seed", "4")[1])
    assert again["sample"] == d["sample"]
    code, out, _ = run(capsys, "ngram", str(files["good"]), "--tokens", "word", "--preprocess", "d2l",
                       "--prompt", "The quick", "--length", "5")
    assert code == 0 and "perplexity" in out and "the quick" in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--order", "-1"], "Invalid value for '--order'"),
        (["--eps", "0"], "smoothing constants must be finite and > 0"),
        (["--eps", "a,b"], "--eps takes numbers"),
        (["--val-fraction", "1.5"], "val_fraction must be in [0, 1)"),
        (["--tokens", "bytes"], "Invalid value for '--tokens'"),
    ],
)
def test_ngram_bad_options(capsys, files, args, needle):
    code, _, err = run(capsys, "ngram", str(files["good"]), *args)
    assert code == 2
    assert "Traceback" not in err and needle in err


def test_entry_point_in_a_subprocess(files):
    """The real console entry point: exit code 2 and one line on stderr, nothing on stdout."""
    for argv, needle in (
        (["corpora", "show", str(files["binary"])], "looks binary"),
        (["ngram", "no-such-corpus"], "unknown corpus"),
    ):
        p = subprocess.run([sys.executable, "-m", "seqtui", *argv], capture_output=True, text=True, timeout=120)
        assert p.returncode == 2
        assert p.stdout == ""
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: ") and needle in p.stderr


def test_visible_makes_control_characters_visible_and_keeps_layout():
    from seqtui.cli.safe import visible, visible_line

    assert visible("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓"
    assert visible("a\x1b[31mb\x07") == "a␛[31mb␇"
    assert visible("line\n\tindented\r\n") == "line\n\tindented\r\n"  # layout is kept
    assert visible("over\rwrite") == "over␍write"  # a lone CR would overwrite the line
    assert visible("\x9b31m \u202eevil \x7f") == "\\x9b31m \\u202eevil ␡"
    assert visible_line("two\nlines\t") == "two␊lines␉"


def test_safe_json_escapes_what_json_lets_through():
    import json

    from seqtui.cli.safe import safe_json

    value = {"t": "x\x9by\u202e é \U0001F600 \U000E0041 \x1b"}
    text = safe_json(value)
    assert json.loads(text) == value
    assert all(c not in text for c in "\x9b\u202e\U000E0041\x1b") and "é" in text and "\U0001F600" in text
