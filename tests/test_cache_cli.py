"""`seqtui cache list|clear|cap` and the LRU size cap enforced by load_dataset."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from _fixtures_engine import run_main, tiny_corpus
from seqtui.data import cache


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQTUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(cache.ENV_CAP, raising=False)
    return tmp_path / "cache"


def corpora(tmp_path: Path, n: int = 3) -> list[Path]:
    return [tiny_corpus(tmp_path, n_words=300, seed=i, name=f"c{i}.txt") for i in range(n)]


def load(path, **kw):
    from seqtui.data.text import TextConfig, load_dataset

    return load_dataset(TextConfig(str(path), **kw))


def age(entry_files, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    for f in entry_files:
        os.utime(f, (t, t))


def test_list_shows_each_dataset_with_source_settings_and_size(tmp_path, capsys):
    code, out, _ = run_main(["cache", "list"], capsys)
    assert code == 0 and "is empty" in out
    a, b, _ = corpora(tmp_path)
    load(a)
    load(b, tokens="word", min_freq=2)
    d = make_dir_corpus(tmp_path)
    load(d)
    code, out, _ = run_main(["cache", "list", "--json"], capsys)
    assert code == 0
    listing = json.loads(out)
    kinds = sorted(e["kind"] for e in listing["entries"])
    assert kinds == ["joined", "tokens", "tokens", "tokens"]
    tokens = {Path(e["source"]).name: e for e in listing["entries"] if e["kind"] == "tokens"}
    assert tokens["c1.txt"]["settings"]["tokens"] == "word" and tokens["c1.txt"]["settings"]["min_freq"] == 2
    assert all(e["size_bytes"] > 0 and e["last_used"] > 0 for e in listing["entries"])
    assert listing["cap_bytes"] == cache.DEFAULT_CAP and listing["cap_from"] == "default"
    joined = next(e for e in listing["entries"] if e["kind"] == "joined")
    assert joined["documents"] == 2 and joined["source"] == str(d)
    code, out, _ = run_main(["cache", "list"], capsys)
    assert "c0.txt" in out and "min_freq 2" in out and "2 documents" in out and "4 entries" in out


def make_dir_corpus(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "one.txt").write_text("the first document\n" * 20)
    (d / "two.txt").write_text("the second document\n" * 20)
    return d


def test_loading_touches_last_used_and_the_cap_evicts_lru_first(tmp_path, monkeypatch):
    a, b, c = corpora(tmp_path)
    da, db = load(a), load(b)
    age([da.cache_path, da.cache_path.with_suffix(".json")], 3000)
    age([db.cache_path, db.cache_path.with_suffix(".json")], 2000)
    load(a)  # a hit: a is now the most recently used
    order = [e.files[0].stem for e in cache.entries()]
    assert order == [db.cache_path.stem, da.cache_path.stem]
    sizes = {e.key: e.size for e in cache.entries()}
    # room for two entries: building c must evict b (least recently used), not a
    monkeypatch.setenv(cache.ENV_CAP, str(sum(sizes.values()) + min(sizes.values()) // 2))
    dc = load(c)
    keys = {e.key for e in cache.entries()}
    assert keys == {da.cache_path.stem, dc.cache_path.stem}
    # a cap smaller than one entry: everything else goes, never the entry being loaded
    monkeypatch.setenv(cache.ENV_CAP, "1")
    db2 = load(b)
    assert {e.key for e in cache.entries()} == {db2.cache_path.stem}
    assert db2.cache_path.is_file() and len(db2) == len(db)


def test_clear_older_than_and_only_our_files(tmp_path, own_cache, capsys, monkeypatch):
    a, b, _ = corpora(tmp_path)
    da, db = load(a), load(b)
    age([da.cache_path, da.cache_path.with_suffix(".json")], 10 * 86_400)
    stranger = own_cache / "tokens" / "notes.txt"
    stranger.write_text("mine")
    outside = tmp_path / "precious.npy"
    outside.write_text("keep")
    link = own_cache / "tokens" / ("f" * 64 + ".npy")
    os.symlink(outside, link)
    code, out, _ = run_main(["cache", "clear", "--older-than", "5", "-y"], capsys)
    assert code == 0 and "removed 1 cached datasets" in out
    assert not da.cache_path.exists() and db.cache_path.exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, _, err = run_main(["cache", "clear"], capsys)
    assert code == 1 and "aborted" in err and db.cache_path.exists()
    code, out, _ = run_main(["cache", "clear", "-y"], capsys)
    assert code == 0 and not db.cache_path.exists()
    assert stranger.read_text() == "mine" and outside.read_text() == "keep" and os.path.islink(link)
    code, out, _ = run_main(["cache", "clear", "-y"], capsys)
    assert "nothing to remove" in out


def test_cap_setting_env_and_bad_sizes(tmp_path, capsys, monkeypatch):
    code, out, _ = run_main(["cache", "cap"], capsys)
    assert code == 0 and out.strip() == "2.0 GiB (default)"
    a, b, _ = corpora(tmp_path)
    load(a)
    time.sleep(0.01)
    load(b)
    code, out, _ = run_main(["cache", "cap", "1K"], capsys)
    assert code == 0 and "1.0 KiB" in out and "removed 2" in out and cache.entries() == []
    assert cache.cap() == (1024, "setting")
    assert json.loads((tmp_path / "data" / "cache.json").read_text())["max_bytes"] == 1024
    monkeypatch.setenv(cache.ENV_CAP, "3MiB")
    assert cache.cap() == (3 * 1024 * 1024, "env")
    code, out, _ = run_main(["cache", "cap"], capsys)
    assert out.strip() == "3.0 MiB (env)"
    monkeypatch.setenv(cache.ENV_CAP, "lots")
    code, _, err = run_main(["cache", "list"], capsys)
    assert code == 2 and "SEQTUI_CACHE_MAX_BYTES" in err and len(err.strip().splitlines()) == 1
    monkeypatch.delenv(cache.ENV_CAP)
    code, out, _ = run_main(["cache", "cap", "off"], capsys)
    assert code == 0 and cache.cap() == (None, "setting")
    code, _, err = run_main(["cache", "cap", "12 parsecs"], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert cache.parse_size("1.5g") == int(1.5 * 2**30) and cache.parse_size("500M") == 500 * 2**20
    assert cache.parse_size("2GiB") == 2 * 2**30 and cache.parse_size("4096") == 4096


def test_cache_is_in_the_command_table():
    from seqtui.cli import COMMANDS

    assert "cache" in COMMANDS
