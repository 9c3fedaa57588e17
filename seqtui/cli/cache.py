"""`seqtui cache list|clear|cap`: the cached datasets (token arrays, BPE merges, memorization
indexes, joined and extracted corpora) under the cache directory, and their size cap."""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys

import click

from seqtui.cli.corpora import human_bytes
from seqtui.cli.safe import visible_line


def _size(n: int | None) -> str:
    return "no cap" if n is None else human_bytes(n, binary=True)


def _when(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@click.group("cache")
def cache() -> None:
    """List, clear and cap the cache of datasets seqtui can rebuild.

    The cache directory (SEQTUI_CACHE_DIR, else the platform's user cache dir) holds token
    arrays (tokens/), BPE merges (bpe/), memorization indexes (memo/), joined directory/glob
    corpora (joined/) and extracted bundled corpora (corpora/). Only files seqtui made there
    are listed or removed; symlinks are never followed. When the cache grows past its cap
    (default 2 GiB; SEQTUI_CACHE_MAX_BYTES or `seqtui cache cap SIZE`) building a new dataset
    removes the least recently used ones, never the one being loaded.
    """


@cache.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
def list_cmd(as_json: bool) -> None:
    """Every cached dataset, most recently used first: kind, size, last used, what it is."""
    from seqtui import paths
    from seqtui.data.cache import cap, entries

    items = list(reversed(entries(describe=True)))
    limit, origin = cap()
    total = sum(e.size for e in items)
    if as_json:
        click.echo(json.dumps({"directory": str(paths.cache_dir()), "total_bytes": total, "cap_bytes": limit,
                               "cap_from": origin, "entries": [e.to_json() for e in items]}, indent=1))
        return
    if not items:
        click.echo(visible_line(f"the cache {paths.cache_dir()} is empty (cap {_size(limit)}, {origin})"))
        return
    rows = [(e.kind, _size(e.size), _when(e.last_used), visible_line(e.description or e.key)) for e in items]
    widths = [max(len(r[i]) for r in rows + [("KIND", "SIZE", "LAST USED", "WHAT")]) for i in range(3)]
    head = ("KIND", "SIZE", "LAST USED", "WHAT")
    click.echo(f"{head[0]:<{widths[0]}}  {head[1]:>{widths[1]}}  {head[2]:<{widths[2]}}  {head[3]}")
    for kind, size, when, what in rows:
        click.echo(f"{kind:<{widths[0]}}  {size:>{widths[1]}}  {when:<{widths[2]}}  {what}")
    click.echo(visible_line(f"{len(items)} entries, {_size(total)} in {paths.cache_dir()} "
                            f"(cap {_size(limit)}, {origin})"))


@cache.command("clear")
@click.option("--older-than", "days", type=click.FloatRange(0, min_open=False), default=None, metavar="DAYS",
              help="Only datasets not used for DAYS days.")
@click.option("--kind", "kinds", multiple=True,
              type=click.Choice(["tokens", "bpe", "memo", "joined", "corpus"]),
              help="Only this kind (repeatable).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
def clear_cmd(days: float | None, kinds: tuple[str, ...], yes: bool) -> None:
    """Remove cached datasets (all, or those unused for DAYS days); they are rebuilt on demand.
    Exit 1 if you answer no."""
    import time

    from seqtui.data.cache import entries, remove

    cutoff = None if days is None else time.time() - days * 86_400
    chosen = [e for e in entries() if (not kinds or e.kind in kinds) and (cutoff is None or e.last_used < cutoff)]
    if not chosen:
        click.echo("nothing to remove")
        return
    total = sum(e.size for e in chosen)
    if not yes and not click.confirm(f"remove {len(chosen)} cached datasets ({_size(total)})?", default=False,
                                     err=True):
        click.echo("aborted", err=True)
        sys.exit(1)
    freed = sum(remove(e) for e in chosen)
    left = [e for e in chosen if any(os.path.lexists(f) for f in e.files)]
    click.echo(f"removed {len(chosen) - len(left)} cached datasets ({_size(freed)})")
    if left:
        from seqtui.errors import SeqtuiError

        raise SeqtuiError(f"could not remove {len(left)} cached datasets (is {left[0].files[0].parent} "
                          "writable?)")


@cache.command("cap")
@click.argument("size", required=False)
def cap_cmd(size: str | None) -> None:
    """Show or set the cache's size cap: SIZE in bytes or like 500M, 2GiB (powers of 1024), or
    `off`. Stored in the data directory; SEQTUI_CACHE_MAX_BYTES overrides it. Setting it evicts
    the least recently used datasets now if the cache is larger."""
    from seqtui.data.cache import cap, enforce_cap, parse_size, set_cap

    if size is None:
        limit, origin = cap()
        click.echo(f"{_size(limit)} ({origin})")
        return
    value = parse_size(size)
    set_cap(value)
    limit, origin = cap()
    note = f" (SEQTUI_CACHE_MAX_BYTES overrides it: {_size(limit)})" if origin == "env" else ""
    gone = enforce_cap()
    click.echo(f"cache cap set to {_size(value)}{note}" + (f"; removed {len(gone)} least recently used datasets"
                                                          if gone else ""))
