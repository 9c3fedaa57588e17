"""The one-line bar at the top of every screen: where you are and the keys to the other screens."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from seqtui.ui.screen_list import SCREENS


def nav_text(current: str, status: str = "", width: int = 80) -> Text:
    """``seqtui  F2 Corpora  F3 Train ...`` with the current screen highlighted, status at the right."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(" seqtui ", style="bold reverse")
    for entry in SCREENS:
        out.append(" ")
        style = "bold reverse" if entry.mode == current else ""
        out.append(f"{entry.fkey.upper()}", style="dim" if entry.mode != current else style)
        out.append(f" {entry.label} ", style=style or "")
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
