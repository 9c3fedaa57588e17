"""The notice shown over every screen when the terminal is too small to be useful."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 60, 15  # the form scrolls and the plots still read down to this


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class TooSmallScreen(ModalScreen):
    """Covers the current screen until the terminal grows again (the app pops it)."""

    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; background: $background; }
    TooSmallScreen > Static { width: 100%; height: auto; text-align: center; }
    """

    def compose(self) -> ComposeResult:
        yield Static(Text(f"terminal too small\nneeds {MIN_WIDTH}×{MIN_HEIGHT}\nctrl+q quits",
                          style="bold"), id="too-small")

    def on_resize(self) -> None:
        width, height = self.app.size
        self.query_one(Static).update(Text(
            f"terminal too small: {width}×{height}\nneeds {MIN_WIDTH}×{MIN_HEIGHT}\nctrl+q quits",
            style="bold"))
