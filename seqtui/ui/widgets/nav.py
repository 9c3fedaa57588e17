"""The one-line bar at the top of every screen: where you are and the keys to the other screens."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from seqtui.ui.screen_list import SCREENS


def _tabs(current: str, style: str) -> Text:
    """The screen tabs: ``full`` labels, ``short`` labels, or ``keys`` (labels only for the current one)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if style == "full":
        out.append(" seqtui ", style="bold reverse")
    for entry in SCREENS:
        here = entry.mode == current
        out.append(" ")
        out.append(f"{entry.fkey.upper()}", style="bold reverse" if here else "dim")
        if here or style != "keys":
            label = entry.label if style == "full" or here else entry.short_label
            out.append(f" {label} ", style="bold reverse" if here else "")
    return out


def nav_text(current: str, status: str = "", width: int = 80) -> Text:
    """``seqtui  F2 Corpora  F3 Train ...`` with the current screen highlighted, status at the right.

    The status (the attached run's name) is shown whole: when it does not fit, the other screens'
    labels get shorter, then only their function keys remain; only then is the name cut."""
    out = _tabs(current, "full")
    if status:
        for style in ("full", "short", "keys"):
            out = _tabs(current, style)
            if width - out.cell_len - 2 >= len(status):
                break
    room = width - out.cell_len - 2
    if status and room >= 4:
        if len(status) > room:
            status = status[: room - 1] + "…"
        out.append(" " * (width - out.cell_len - len(status) - 1))
        out.append(status, style="bold")
    return out


class NavBar(Static):
    """Screen tabs plus a short status (the attached run), re-rendered only when they change."""

    DEFAULT_CSS = """
    NavBar { height: 1; width: 1fr; background: $panel; }
    """

    def __init__(self, current: str, **kwargs):
        super().__init__(nav_text(current), **kwargs)
        self.current = current
        self._status = ""

    def set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self.update(nav_text(self.current, status, self.size.width or 80))

    def on_resize(self) -> None:
        self.update(nav_text(self.current, self._status, self.size.width or 80))
