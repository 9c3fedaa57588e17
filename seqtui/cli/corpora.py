"""`seqtui corpora list|show|add|remove`: the bundled and registered corpora.

``list`` reads manifests and file sizes only (no numba, no tokenizing); ``show`` tokenizes once
(then reads the cache) to report characters, vocabulary size and the most frequent characters.
"""

from __future__ import annotations

import json

import click

from seqtui.cli.safe import safe_json, visible, visible_line
from seqtui.data.choices import ERRORS

ERRORS_HELP = ("What to do with invalid UTF-8: stop with its position (strict), substitute U+FFFD "
               "(replace), or, for a directory or glob corpus, leave that document out with a notice "
               "(skip-file; a single file: strict).")


def show_token(tok: str) -> str:
    """A visible form of a token: spaces and control characters spelled out."""
    names = {" ": "␠", "\n": "⏎", "\t": "⇥", "\r": "␍", "\x1e": "␞ (document separator)"}
    if tok in names:
        return names[tok]
    return visible_line(json.dumps(tok, ensure_ascii=False)[1:-1])


def human_bytes(n: int | None, binary: bool = False) -> str:
    """``4.3 MB`` (powers of 1000), or ``4.1 MiB`` with ``binary`` (powers of 1024)."""
    if n is None:
        return "?"
    step, units = (1024, ("B", "KiB", "MiB", "GiB")) if binary else (1000, ("B", "KB", "MB", "GB"))
    size = float(n)
    for unit in units:
        if size < step or unit == units[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= step
    return f"{n} B"  # pragma: no cover


@click.group("corpora")
def corpora() -> None:
    """List, inspect, add and remove corpora.

    Wherever a corpus is asked for you may give a name from `seqtui corpora list`,
    a path to any UTF-8 text file, a directory (its *.txt files, recursively) or a quoted
    glob ('lyrics/*.txt', ** recurses). Many documents are joined in sorted order, each
    followed by U+001E (the document separator) on its own line; a document containing
    U+001E is refused, entries that are not regular files (FIFOs, broken links, symlink
    loops) and empty files are skipped with a notice.
    """


@corpora.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """Bundled and registered corpora with their sizes (nothing is read or tokenized)."""
    from seqtui.data.corpora import list_corpora

    infos = list_corpora()
    if as_json:
        click.echo(json.dumps([_info_json(i) for i in infos], indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("name", "kind", "size", "title", "status"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for i in infos:
        approx = i.kind == "bundled" and i.path is None
        size = ("~" if approx and i.size_bytes else "") + human_bytes(i.size_bytes)
        status = "ok" if i.available else f"[yellow]unavailable[/]: {escape(visible_line(i.install_hint))}"
        table.add_row(escape(visible_line(i.name)), i.kind, size, escape(visible_line(i.title)), status)
    Console().print(table)


@corpora.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--errors", type=click.Choice(ERRORS), default="strict", show_default=True, help=ERRORS_HELP)
@click.option("--top", type=click.IntRange(1, 200), default=12, show_default=True, help="How many frequent characters.")
def show_cmd(name: str, as_json: bool, errors: str, top: int) -> None:
    """Size, characters, vocabulary size, a preview and the most frequent characters."""
    from seqtui.data.stats import corpus_stats

    st = corpus_stats(name, top=top, errors=errors)
    docs = _documents(name, errors)
    if as_json:
        click.echo(safe_json({**st.to_json(), **docs}, indent=2))
        return
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    i = st.info
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for key, value in (
        ("name", i.name), ("title", i.title), ("kind", i.kind), ("path", str(i.path)),
        ("source", i.source), ("licence", i.licence or "-"),
        ("size", f"{st.bytes:,} bytes"), ("characters", f"{st.chars:,}"),
        *((("documents", f"{docs['documents']:,}" + (f" ({len(docs['skipped'])} skipped)" if docs["skipped"] else "")),)
          if docs else ()),
        ("vocabulary", f"{st.vocab_size} (incl. <unk>)"),
        ("most frequent", "  ".join(f"{show_token(t)} {c:,}" for t, c in st.top_tokens)),
    ):
        facts.add_row(key, Text(visible_line(value)))
    console = Console()
    console.print(facts)
    console.print(Panel(Text(visible(st.preview)), title="preview", title_align="left"))


@corpora.command("add")
@click.argument("name")
@click.argument("path")
@click.option("--title", help="A title shown in listings (default: the file name).")
@click.option("--force", is_flag=True, help="Replace an existing registration of NAME.")
@click.option("--errors", type=click.Choice(ERRORS), default="strict", show_default=True,
              help="How the documents of a directory or glob are checked now. " + ERRORS_HELP)
def add_cmd(name: str, path: str, title: str | None, force: bool, errors: str) -> None:
    """Register PATH under NAME (checked, not copied): a UTF-8 text file, a directory (its
    *.txt files, recursively) or a quoted glob pattern ('lyrics/*.txt')."""
    from seqtui.data.corpora import add_corpus

    info = add_corpus(name, path, title=title, force=force, errors=errors)
    docs = f", {info.documents:,} documents" if info.members and info.documents is not None else ""
    click.echo(visible_line(f"added {info.name}: {info.path} ({human_bytes(info.size_bytes)}{docs})"))


@corpora.command("remove")
@click.argument("name")
def remove_cmd(name: str) -> None:
    """Forget the registered corpus NAME (its file is left alone)."""
    from seqtui.data.corpora import remove_corpus

    info = remove_corpus(name)
    click.echo(visible_line(f"removed {info.name} ({info.path} was not touched)"))


def _documents(name: str, errors: str) -> dict:
    """{documents, skipped, separator} of a directory or glob corpus ({} for one file)."""
    from seqtui.data.corpora import DOCUMENT_SEPARATOR, join_documents, resolve_corpus

    info = resolve_corpus(name)
    if not info.members:
        return {}
    _, meta = join_documents(info, errors)
    return {"documents": meta.get("documents"), "skipped": meta.get("notices", []),
            "document_separator": DOCUMENT_SEPARATOR}


def _info_json(i) -> dict:
    return {
        "name": i.name, "title": i.title, "kind": i.kind, "path": str(i.path) if i.path else None,
        "size_bytes": i.size_bytes, "size_is_estimate": i.kind == "bundled" and i.path is None,
        "available": i.available, "install_hint": i.install_hint or None,
        "licence": i.licence, "source": i.source, "description": i.description,
        "members": i.members, "documents": i.documents,
    }
