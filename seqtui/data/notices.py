"""Notices: one-line warnings to stderr for things seqtui worked around (a healed cache, a
read-only cache directory), shown once per message per process. Standard library only."""

from __future__ import annotations

import sys

_seen: set[str] = set()


def notice(message: str) -> None:
    """Print ``notice: MESSAGE`` on stderr once per process (never raises)."""
    if message in _seen:
        return
    _seen.add(message)
    try:
        print(f"notice: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
