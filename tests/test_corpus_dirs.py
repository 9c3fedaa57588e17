"""A corpus made of many documents: a directory (*.txt, recursively) or a glob, joined with the
document separator U+001E into one cached file; and the bad inputs around it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from _fixtures_engine import run_main
from seqtui.data.corpora import DOCUMENT_SEPARATOR, corpus_file, join_documents, resolve_corpus
from seqtui.errors import CorpusError

SEP = DOCUMENT_SEPARATOR + "\n"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQTUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))


def make_dir(root: Path) -> Path:
    d = root / "lyrics"
    (d / "b-side").mkdir(parents=True)
    (d / ".hidden").mkdir()
    (d / "a.txt").write_text("first song\nla la\n")
    (d / "b-side" / "c.txt").write_text("third song")  # no final newline: one is added
    (d / "b.txt").write_text("second song\n")
    (d / "notes.md").write_text("not a document")
    (d / ".draft.txt").write_text("hidden")
    (d / ".hidden" / "x.txt").write_text("hidden too")
    (d / "empty.txt").write_text("")
    return d


def test_separator_is_record_separator():
    assert DOCUMENT_SEPARATOR == "\x1e"


def test_directory_joins_txt_files_in_sorted_order(tmp_path):
    d = make_dir(tmp_path)
    info = resolve_corpus(str(d))
    assert info.members == "dir" and info.kind == "path" and info.documents == 3
    path = corpus_file(info)
    assert path.parent == tmp_path / "cache" / "joined"
    # sorted by relative path: a.txt, b-side/c.txt, b.txt ("-" sorts before ".")
    assert path.read_text() == "first song\nla la\n" + SEP + "third song\n" + SEP + "second song\n"
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]  # atomic: no temp left
    _, meta = join_documents(info)
    assert meta["documents"] == 3 and meta["files"][0].endswith("a.txt")
    assert corpus_file(resolve_corpus(str(d))) == path  # built once
    (d / "a.txt").write_text("changed\n")
    assert corpus_file(resolve_corpus(str(d))) != path  # a changed file is a new join


def test_glob_and_load_dataset(tmp_path):
    from seqtui.data.text import TextConfig, load_dataset

    d = make_dir(tmp_path)
    ds = load_dataset(TextConfig(str(d / "*.txt")))  # a.txt, b.txt (empty.txt skipped)
    text = "first song\nla la\n" + SEP + "second song\n"
    assert len(ds) == len(text) and DOCUMENT_SEPARATOR in ds.vocab.stoi
    assert ds.vocab.decode(ds.ids) == text
    assert ds.corpus.members == "glob" and ds.corpus.documents == 2
    again = load_dataset(TextConfig(str(d / "*.txt")))
    assert again.cache_path == ds.cache_path
    words = load_dataset(TextConfig(str(d / "**" / "*.txt"), tokens="word"))
    # U+001E is a word of its own (str.split() alone would take it for a space)
    assert DOCUMENT_SEPARATOR in words.vocab.stoi
    rs = DOCUMENT_SEPARATOR
    assert words.vocab.decode(words.ids) == f"first song la la {rs} third song {rs} second song"


def test_relative_glob_is_stored_absolute(tmp_path, monkeypatch):
    from seqtui.engine.config import RunConfig
    from seqtui.engine.prepare import resolve_corpus_path

    make_dir(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = resolve_corpus_path(RunConfig(corpus="lyrics/*.txt"))
    assert cfg.corpus == str(tmp_path.resolve() / "lyrics" / "*.txt")
    cfg = resolve_corpus_path(RunConfig(corpus="lyrics"))
    assert cfg.corpus == str(tmp_path.resolve() / "lyrics")


def one_line(code, err, *needles):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[-1], lines[-1]


def test_glob_matching_nothing_and_directory_without_text(tmp_path, capsys):
    code, _, err = run_main(["corpora", "show", str(tmp_path / "none" / "*.txt")], capsys)
    one_line(code, err, "no files match")
    assert len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    code, _, err = run_main(["ngram", str(empty)], capsys)
    one_line(code, err, "has no .txt files")
    code, _, err = run_main(["corpora", "add", "nothing", str(empty)], capsys)
    one_line(code, err, "has no .txt files")


def test_fifo_and_symlink_loop_are_skipped_with_a_notice(tmp_path, capsys):
    d = make_dir(tmp_path)
    os.mkfifo(d / "pipe.txt")
    os.symlink(d / "loop.txt", d / "loop.txt")
    os.symlink(d, d / "b-side" / "up")  # a symlinked folder is not entered
    code, out, err = run_main(["corpora", "show", str(d), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["documents"] == 3
    assert "FIFO" in err and "symlink loop" in err and err.count("notice:") >= 2


def test_binary_and_bad_utf8_documents(tmp_path, capsys):
    d = make_dir(tmp_path)
    (d / "cover.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    code, _, err = run_main(["corpora", "show", str(d)], capsys)
    one_line(code, err, "cover.txt", "binary", "skip-file")
    code, out, err = run_main(["corpora", "show", str(d), "--errors", "skip-file", "--json"], capsys)
    assert code == 0 and json.loads(out)["documents"] == 3 and "skipped" in err and "cover.txt" in err
    (d / "cover.txt").unlink()
    (d / "latin1.txt").write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    code, _, err = run_main(["corpora", "show", str(d)], capsys)
    one_line(code, err, "latin1.txt", "invalid UTF-8 at byte 3", "line 1, column 4")
    code, out, err = run_main(["corpora", "show", str(d), "--errors", "skip-file", "--json"], capsys)
    assert code == 0 and json.loads(out)["documents"] == 3
    code, out, err = run_main(["corpora", "show", str(d), "--errors", "replace", "--json"], capsys)
    assert code == 0 and json.loads(out)["documents"] == 4


def test_a_document_containing_the_separator_is_refused(tmp_path, capsys):
    d = make_dir(tmp_path)
    (d / "b.txt").write_text("a\nrecord\x1eseparated\n")
    for extra in ([], ["--errors", "skip-file"], ["--errors", "replace"]):
        code, _, err = run_main(["corpora", "show", str(d), *extra], capsys)
        one_line(code, err, "b.txt", "U+001E", "line 2, column 7")


def test_skip_file_on_one_file_is_strict(tmp_path, capsys):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"ok\n\xff\n")
    code, _, err = run_main(["corpora", "show", str(f), "--errors", "skip-file"], capsys)
    one_line(code, err, "invalid UTF-8 at byte 3")
    with pytest.raises(CorpusError, match="invalid UTF-8"):
        from seqtui.data.text import TextConfig, load_dataset

        load_dataset(TextConfig(str(f), errors="skip-file"))


def test_register_a_directory_and_a_glob(tmp_path, capsys):
    d = make_dir(tmp_path)
    code, out, err = run_main(["corpora", "add", "songs", str(d)], capsys)
    assert code == 0 and "3 documents" in out, err
    code, out, err = run_main(["corpora", "add", "two", str(d / "[ab].txt"), "--title", "Two songs"], capsys)
    assert code == 0 and "2 documents" in out, err
    code, out, _ = run_main(["corpora", "list", "--json"], capsys)
    listed = {i["name"]: i for i in json.loads(out)}
    assert listed["songs"]["members"] == "dir" and listed["songs"]["documents"] == 3
    assert listed["two"]["members"] == "glob" and listed["two"]["available"]
    code, out, _ = run_main(["corpora", "show", "songs"], capsys)
    assert code == 0 and "documents" in out and "␞" in out
    code, out, _ = run_main(["corpora", "show", "two", "--json"], capsys)
    assert json.loads(out)["documents"] == 2 and json.loads(out)["document_separator"] == "\x1e"
    for f in d.glob("*.txt"):
        f.unlink()
    code, out, _ = run_main(["corpora", "list", "--json"], capsys)
    listed = {i["name"]: i for i in json.loads(out)}
    assert not listed["two"]["available"] and "no files match" in listed["two"]["install_hint"]


def test_untrusted_names_in_notices_are_made_visible(tmp_path, capsys):
    d = make_dir(tmp_path)
    os.mkfifo(d / "evil\x1b[2J.txt")
    code, out, err = run_main(["corpora", "show", str(d), "--json"], capsys)
    assert code == 0 and "\x1b" not in err and "\\x1b[2J" in err


def test_the_cache_inside_a_corpus_directory_is_never_a_document(tmp_path, monkeypatch):
    d = make_dir(tmp_path)
    monkeypatch.setenv("SEQTUI_CACHE_DIR", str(d / "cache-here"))
    first = corpus_file(resolve_corpus(str(d)))
    assert first.is_relative_to(d)
    (d / "a.txt").write_text("changed\n")
    info = resolve_corpus(str(d))
    assert info.documents == 3
    assert corpus_file(info).read_text().count(DOCUMENT_SEPARATOR) == 2
