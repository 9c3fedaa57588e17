"""Generated text in a bordered panel whose title says where it came from."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class SamplePanel(Static):
    """Shows a sample; ``show`` updates only when the text or title changed (no layout churn)."""

    DEFAULT_CSS = """
    SamplePanel { border: round $primary-darken-1; height: 1fr; min-height: 3; padding: 0 1; }
    """

    def __init__(self, title: str = "sample", **kwargs):
        super().__init__("", **kwargs)
        self.border_title = title
        self._key: tuple | None = None

    def show(self, text: str | Text, title: str | None = None, subtitle: str = "", style: str = "") -> None:
        """Show plain ``text`` (never markup) or a prepared Text (highlighted spans)."""
        key = (text, title, subtitle, style)
        if key == self._key:
            return
        self._key = key
        if title is not None:
            self.border_title = title
        self.border_subtitle = subtitle
        self.update(text if isinstance(text, Text) else Text(text, style=style))

    @property
    def text(self) -> str:
        if not self._key:
            return ""
        text = self._key[0]
        return text.plain if isinstance(text, Text) else text
