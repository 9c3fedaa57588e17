"""`seqtui generate`: prompts from a file or stdin, stops, several samples, beam search, JSON
scores (mean NLL, memorization), --output, UTF-8 output in any locale, BPE streaming, and bad
input (one `error:` line, exit 2, never a traceback)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _fixtures_engine import run_main, tiny_corpus
from seqtui.cli.generate import decode_sample, parse_escapes
from seqtui.cli.safe import visible
from seqtui.errors import ConfigError

TINY = ["--hidden", "16", "--num-steps", "8", "--batch-size", "4", "--sample-every", "0", "-q"]
RUN = "gen-char"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("gen-corpus"), n_words=900)


@pytest.fixture(scope="module")
def trained(corpus):
    from seqtui.cli import main

    try:
        main(["train", str(corpus), "--name", RUN, "--epochs", "3", "--seed", "5", *TINY])
    except SystemExit as exc:  # pragma: no cover - would fail below
        assert exc.code in (0, None)
    return RUN


@pytest.fixture(scope="module")
def bpe_run(tmp_path_factory):
    """A BPE run on text with multi-byte characters (é, €, 日本語)."""
    from seqtui.cli import main

    d = tmp_path_factory.mktemp("gen-bpe")
    text = "café naïve € 12 日本語\n" * 200 + tiny_corpus(d, n_words=300).read_text()
    path = d / "uni.txt"
    path.write_text(text, encoding="utf-8")
    try:
        main(["train", str(path), "--name", "gen-bpe", "--tokens", "bpe", "--bpe-vocab", "300",
              "--epochs", "2", "--seed", "5", *TINY])
    except SystemExit as exc:  # pragma: no cover
        assert exc.code in (0, None)
    return "gen-bpe"


def one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in err


def gen(capsys, *args):
    return run_main(["generate", *args], capsys)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# -- determinism: greedy = beam 1 ---------------------------------------------------------------
def test_temperature_zero_is_deterministic_and_equals_beam_one(trained, capsys):
    args = [trained, "the time", "-n", "50", "--temperature", "0", "--no-memo"]
    code, first, _ = gen(capsys, *args)
    assert code == 0 and first.startswith("the time")
    _, again, _ = gen(capsys, *args)
    code, beam, err = gen(capsys, trained, "the time", "-n", "50", "--beam", "1", "--no-memo")
    assert code == 0 and first == again == beam
    assert "beam 1: log-probability -" in err and "over 50 tokens" in err


def test_beam_logprob_agrees_with_the_model_score_and_beats_greedy(trained, capsys):
    _, out, _ = gen(capsys, trained, "the ", "-n", "30", "--beam", "1", "--json", "--no-memo")
    (greedy,) = json_lines(out)
    assert greedy["logprob"] == pytest.approx(-greedy["mean_nll"] * 30, rel=1e-4)
    _, out, _ = gen(capsys, trained, "the ", "-n", "30", "--beam", "4", "--json", "--no-memo")
    (wide,) = json_lines(out)
    assert wide["n_tokens"] == 30 and wide["stop_reason"] == "length" and wide["seed"] is None
    assert wide["logprob"] >= greedy["logprob"] - 1e-6  # never less likely than greedy
    assert wide["logprob"] == pytest.approx(-wide["mean_nll"] * 30, rel=1e-4)


def test_beam_cut_by_a_stop_reports_the_log_probability_of_what_it_prints(trained, capsys):
    code, out, _ = gen(capsys, trained, "the", "-n", "60", "--beam", "2", "--json", "--no-memo",
                       "--stop-at", "e")
    (rec,) = json_lines(out)
    assert code == 0 and rec["stop_reason"] == "stop-at" and rec["text"].endswith("e")
    assert rec["n_tokens"] == len(rec["text"]) < 60
    assert rec["logprob"] == pytest.approx(-rec["mean_nll"] * rec["n_tokens"], rel=1e-9)


def test_beam_rejects_sampling_options_and_several_samples(trained, capsys):
    code, _, err = gen(capsys, trained, "the", "--beam", "2", "--temperature", "0.5")
    one_line_error(code, err, "--temperature")
    code, _, err = gen(capsys, trained, "the", "--beam", "2", "--num-samples", "2")
    one_line_error(code, err, "--num-samples")


# -- prompts ------------------------------------------------------------------------------------
def test_prompt_from_a_file_and_from_stdin_equal_the_argument(trained, capsys, tmp_path, monkeypatch):
    args = ["-n", "30", "--seed", "3", "--no-memo"]
    _, direct, _ = gen(capsys, trained, "the time\nit", *args)
    f = tmp_path / "prompt.txt"
    f.write_text("the time\nit", encoding="utf-8")
    code, from_file, err = gen(capsys, trained, "--prompt-file", str(f), *args)
    assert code == 0, err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"the time\nit")))
    code, from_stdin, err = gen(capsys, trained, "-", *args)
    assert code == 0, err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"the time\nit")))
    code, from_dash_file, err = gen(capsys, trained, "--prompt-file", "-", *args)
    assert code == 0, err
    assert direct == from_file == from_stdin == from_dash_file and direct.startswith("the time\nit")


def test_no_prompt_starts_from_the_zero_state(trained, capsys):
    code, out, _ = gen(capsys, trained, "-n", "20", "--seed", "1", "--json", "--no-memo")
    (rec,) = json_lines(out)
    assert code == 0 and rec["prompt"] == "" and len(rec["tokens"]) == 20 and rec["mean_nll"] > 0


@pytest.mark.parametrize("make, pattern", [
    (lambda d: d / "empty.txt", "is empty"),
    (lambda d: d, "is a directory"),
    (lambda d: Path("/dev/zero"), "is a device"),
    (lambda d: d / "missing.txt", "does not exist"),
    (lambda d: d / "latin1.txt", "not UTF-8"),
    (lambda d: d / "fifo", "FIFO"),
])
def test_bad_prompt_files_are_one_line_errors(trained, capsys, tmp_path, make, pattern):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    os.mkfifo(tmp_path / "fifo")
    code, out, err = gen(capsys, trained, "--prompt-file", str(make(tmp_path)))
    one_line_error(code, err, pattern)
    assert out == ""


def test_stdin_closed_or_empty_is_a_one_line_error(trained, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)
    one_line_error(*gen(capsys, trained, "-")[::2], "stdin is closed")
    closed = io.TextIOWrapper(io.BytesIO(b"x"))
    closed.close()
    monkeypatch.setattr(sys, "stdin", closed)
    one_line_error(*gen(capsys, trained, "-")[::2], "stdin is closed")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    one_line_error(*gen(capsys, trained, "-")[::2], "stdin is empty")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * ((1 << 20) + 1))))
    one_line_error(*gen(capsys, trained, "-")[::2], "more than 1 MiB")


def test_stdin_really_closed_in_a_child_process(trained):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "seqtui", "generate", trained, "-"], env=env,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.close(0))
    one_line_error(proc.returncode, proc.stderr, "stdin is closed")


@pytest.mark.parametrize("args, pattern", [
    (["--beam", "0"], "--beam must be"),
    (["--num-samples", "0"], "--num-samples must be"),
    (["--lines", "0"], "--lines must be"),
    (["--stop-at", ""], "--stop-at needs a non-empty string"),
    (["--stop-at", "ab\\"], "lone backslash"),
    (["--stop-at", "\\q"], "unknown escape"),
    (["--memo-threshold", "0"], "--memo-threshold"),
    (["--prompt-file", "/etc/hostname"], "not both"),
    (["--output", "/no/such/dir/out.txt"], "does not exist"),
    (["--seed", "-1"], "seed must be"),
])
def test_bad_options_are_one_line_errors(trained, capsys, args, pattern):
    code, out, err = gen(capsys, trained, "the", *args)
    one_line_error(code, err, pattern)
    assert out == ""


# -- stopping -----------------------------------------------------------------------------------
def test_stop_at_ends_the_text_at_the_first_stop_string(trained, capsys):
    _, out, _ = gen(capsys, trained, "the", "-n", "200", "--seed", "4", "--json", "--no-memo")
    (full,) = json_lines(out)
    text = full["text"]
    assert " " in text
    code, out, _ = gen(capsys, trained, "the", "-n", "200", "--seed", "4", "--json", "--no-memo",
                       "--stop-at", "\\x20", "--stop-at", "zzz")
    (cut,) = json_lines(out)
    assert code == 0 and cut["stop_reason"] == "stop-at"
    assert cut["text"] == text[:text.index(" ") + 1] and "".join(cut["tokens"]) == cut["text"]
    _, human, _ = gen(capsys, trained, "the", "-n", "200", "--seed", "4", "--no-memo", "--stop-at", " ")
    assert human == "the" + cut["text"] + "\n"


def test_lines_ends_the_text_after_n_newlines(trained, capsys):
    code, out, _ = gen(capsys, trained, "the", "-n", "2000", "--seed", "2", "--json", "--no-memo",
                       "--lines", "2")
    (rec,) = json_lines(out)
    assert code == 0 and rec["stop_reason"] == "lines"
    assert rec["text"].count("\n") == 2 and rec["text"].endswith("\n")
    _, human, _ = gen(capsys, trained, "the", "-n", "2000", "--seed", "2", "--no-memo", "--lines", "2",
                      "--stream")
    assert human == "the" + rec["text"]  # ends with its own newline: no extra one


def test_stop_at_newline_escape(trained, capsys):
    code, out, _ = gen(capsys, trained, "the", "-n", "2000", "--seed", "2", "--json", "--no-memo",
                       "--stop-at", "\\n")
    (rec,) = json_lines(out)
    assert code == 0 and rec["stop_reason"] == "stop-at" and rec["text"].count("\n") == 1
    assert rec["text"].endswith("\n")


def test_parse_escapes():
    assert parse_escapes("\\n") == "\n" and parse_escapes(".") == "." and parse_escapes("a\\tb") == "a\tb"
    assert parse_escapes("\\\\n") == "\\n" and parse_escapes("\\u00e9\\x2e") == "é."
    for bad in ("", "\\", "\\xZZ", "\\ud800", "\\q"):
        with pytest.raises(ConfigError):
            parse_escapes(bad)


def test_decode_sample_stops_across_tokens_and_holds_back_a_carriage_return():
    from seqtui.data.vocab import Vocab

    vocab = Vocab.build("ab\r\n.")
    seen = []
    s = decode_sample(vocab, iter("ab\r\nab.ab"), ["b."], None, seen.append)
    assert s.text == "ab\r\nab." and s.stop_reason == "stop-at" and s.tokens == list("ab\r\nab.")
    assert "".join(seen) == s.text and "\r" not in seen  # '\r' came out together with its '\n'
    s = decode_sample(vocab, iter("ab\nb\na"), [], 2)
    assert s.text == "ab\nb\n" and s.stop_reason == "lines"
    s = decode_sample(vocab, iter("abab"), ["zz"], 5)
    assert s.text == "abab" and s.stop_reason == "length"


# -- several samples, JSON, output ----------------------------------------------------------------
def test_num_samples_use_consecutive_seeds_with_a_separator(trained, capsys):
    code, out, err = gen(capsys, trained, "the", "-n", "20", "--seed", "7", "--num-samples", "3")
    assert code == 0
    parts = out.split("-----\n")
    assert len(parts) == 3
    for i, part in enumerate(parts):
        _, alone, _ = gen(capsys, trained, "the", "-n", "20", "--seed", str(7 + i), "--no-memo")
        assert part == alone
    assert err.count("memorization: longest") == 3


def test_json_lines_hold_the_scores(trained, capsys):
    code, out, err = gen(capsys, trained, "the time", "-n", "40", "--seed", "1", "--num-samples", "2",
                         "--json", "--memo-threshold", "3")
    recs = json_lines(out)
    assert code == 0 and len(recs) == 2 and [r["seed"] for r in recs] == [1, 2]
    for r in recs:
        assert r["text"] == "".join(r["tokens"]) and r["n_tokens"] == 40 and r["stop_reason"] == "length"
        assert 0 < r["mean_nll"] < 10 and r["prompt"] == "the time"
        m = r["memorization"]
        assert m["threshold"] == 3 and m["tokens"] == 40 and m["longest_len"] >= 1
        assert 0 <= m["covered_fraction"] <= 1 and m["longest_line"] >= 1
        assert r["text"][m["longest_sample_start"]:][:m["longest_len"]] == m["longest_text"]
    _, out, _ = gen(capsys, trained, "the", "-n", "5", "--seed", "1", "--json", "--no-memo")
    assert json_lines(out)[0]["memorization"] is None


def test_memorization_line_on_stderr(trained, capsys):
    code, out, err = gen(capsys, trained, "the", "-n", "80", "--seed", "1", "--memo-threshold", "4")
    assert code == 0
    (line,) = [x for x in err.splitlines() if x.startswith("memorization: longest")]
    assert "chars (training line " in line and "of the sample in copied runs ≥ 4 chars" in line
    _, _, err = gen(capsys, trained, "the", "-n", "80", "--seed", "1", "--no-memo")
    assert "memorization" not in err


def test_memorization_skipped_when_the_corpus_is_gone_or_changed(tmp_path, capsys):
    corpus = tiny_corpus(tmp_path, n_words=200, name="mine.txt")
    code, _, err = run_main(["train", str(corpus), "--name", "gen-gone", "--steps", "3", *TINY], capsys)
    assert code == 0, err
    corpus.write_text("something else entirely\n" * 50, encoding="utf-8")
    code, out, err = gen(capsys, "gen-gone", "the", "-n", "10", "--seed", "1")
    assert code == 0 and out.startswith("the")
    assert "memorization: skipped" in err and "changed" in err
    corpus.unlink()
    code, out, err = gen(capsys, "gen-gone", "the", "-n", "10", "--seed", "1", "--json")
    assert code == 0 and json_lines(out)[0]["memorization"] is None
    assert len([x for x in err.splitlines() if "memorization: skipped" in x]) == 1


def test_output_writes_the_file_instead_of_stdout(trained, capsys, tmp_path):
    target = tmp_path / "out.txt"
    args = [trained, "the", "-n", "30", "--seed", "5", "--num-samples", "2", "--no-memo"]
    _, shown, _ = gen(capsys, *args)
    code, out, err = gen(capsys, *args, "--output", str(target), "--stream")
    assert code == 0 and out == "" and target.read_text(encoding="utf-8") == shown
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left
    code, _, err = gen(capsys, *args, "--output", str(tmp_path))
    one_line_error(code, err, "is a directory")


# -- encodings and BPE ----------------------------------------------------------------------------
@pytest.mark.parametrize("env", [{"LC_ALL": "C", "LANG": "C"}, {"PYTHONIOENCODING": "ascii"}])
def test_output_is_utf8_whatever_the_locale(trained, env):
    full = dict(os.environ, PYTHONUNBUFFERED="1", **env)
    proc = subprocess.run([sys.executable, "-m", "seqtui", "generate", trained, "café ≥", "-n", "10",
                           "--seed", "1"], env=full, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("utf-8").startswith("café ≥")
    err = proc.stderr.decode("utf-8")
    assert "'é'" in err and "≥" in err and "Traceback" not in err


def test_bpe_stream_equals_the_text_and_keeps_characters_whole(bpe_run, capsys, monkeypatch):
    args = [bpe_run, "café", "-n", "60", "--seed", "2", "--no-memo"]
    code, plain, err = gen(capsys, *args)
    assert code == 0, err
    pieces = []
    real_write = sys.stdout.write

    def spy(text):
        pieces.append(text)
        return real_write(text)

    monkeypatch.setattr(sys.stdout, "write", spy)
    code, streamed, _ = gen(capsys, *args, "--stream")
    monkeypatch.undo()
    assert code == 0 and streamed == plain and len(pieces) > 5
    _, out, _ = gen(capsys, bpe_run, "café", "-n", "60", "--seed", "2", "--json")
    (rec,) = json_lines(out)
    assert plain == "café" + visible(rec["text"]) + ("" if rec["text"].endswith("\n") else "\n")
    from seqtui.engine.loading import load_run_model

    _, vocab, _ = load_run_model(bpe_run)
    # the pieces decoded one by one (a character cut between tokens waits for its other bytes)
    # spell exactly what decoding all the bytes at once gives
    assert rec["text"] == vocab.decode(vocab.encode(rec["tokens"]))
    assert rec["memorization"]["longest_len"] >= 1 and rec["mean_nll"] > 0


def test_bpe_stop_at_a_multibyte_character(bpe_run, capsys):
    code, out, _ = gen(capsys, bpe_run, "café", "-n", "300", "--seed", "2", "--json", "--no-memo",
                       "--stop-at", "\\u20ac")
    (rec,) = json_lines(out)
    assert code == 0 and rec["stop_reason"] == "stop-at" and rec["text"].endswith("€")
    assert rec["text"].count("€") == 1


def test_word_runs_join_words_and_refuse_lines(corpus, capsys):
    code, _, err = run_main(["train", str(corpus), "--name", "gen-words", "--tokens", "word",
                             "--steps", "5", *TINY], capsys)
    assert code == 0, err
    code, out, err = gen(capsys, "gen-words", "the time", "-n", "6", "--seed", "2")
    assert code == 0 and out.startswith("the time ") and len(out.split()) == 8
    assert "words (training word" in err or "nothing copied" in err
    code, _, err = gen(capsys, "gen-words", "the", "--lines", "1")
    one_line_error(code, err, "no newline")


def test_decode_sample_never_emits_half_a_character(bpe_run):
    from seqtui.engine.loading import load_run_model

    _, vocab, _ = load_run_model(bpe_run)
    raw = "é€日".encode("utf-8")
    tokens = [vocab.itos[b + 1] for b in raw]  # one byte token each (ids 1..256 are the bytes)
    seen = []
    s = decode_sample(vocab, iter(tokens), [], None, seen.append)
    assert s.text == "é€日" and "".join(seen) == "é€日" and seen == ["é", "€", "日"]
    s = decode_sample(vocab, iter(tokens[:-1]), [], None, seen.append)  # cut mid-character
    assert s.text == "é€\ufffd"  # the end flushes the incomplete bytes as one U+FFFD


def test_an_end_of_document_token_ends_the_text():
    from seqtui.data.vocab import Vocab

    vocab = Vocab(["<unk>", "<eos>", "a", "b"], reserved=["<eos>"])
    s = decode_sample(vocab, iter(["a", "b", "<eos>", "a"]), [], None)
    assert (s.text, s.tokens, s.stop_reason) == ("ab", ["a", "b", "<eos>"], "document")


def test_stop_at_document_ends_where_a_folder_corpus_separates_documents():
    from seqtui.cli.generate import decode_sample
    from seqtui.data.corpora import DOCUMENT_SEPARATOR
    from seqtui.data.vocab import Vocab

    vocab = Vocab(["<unk>", "a", "b", DOCUMENT_SEPARATOR, "\n"], is_char=True)
    tokens = ["a", "b", DOCUMENT_SEPARATOR, "\n", "a"]
    whole = decode_sample(vocab, iter(tokens), [], None)
    assert whole.text == "ab\x1e\na" and whole.stop_reason == "length"
    cut = decode_sample(vocab, iter(tokens), [], None, document=True)
    assert cut.text == "ab" and cut.stop_reason == "document"
