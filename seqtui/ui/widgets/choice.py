"""A one-row choice control: ``‹ gru ›``, cycled with ←/→ or space (keyboard-first, no overlay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class Choice(Widget, can_focus=True):
    """Pick one of a few strings; posts :class:`Choice.Changed` when the value changes."""

    DEFAULT_CSS = """
    Choice { height: 1; width: 1fr; }
    Choice:focus { background: $accent 30%; text-style: bold; }
    Choice:disabled { color: $text-disabled; }
    """
    BINDINGS = [
        Binding("left", "cycle(-1)", "Previous", show=False),
        Binding("right,space", "cycle(1)", "Next", show=False),
    ]

    value: reactive[str] = reactive("")

    @dataclass
    class Changed(Message):
        choice: "Choice"
        value: str

        @property
        def control(self) -> "Choice":
            return self.choice

    def __init__(self, options: Sequence[str], value: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.options = list(options)
        self.set_reactive(Choice.value, value if value in self.options else self.options[0])

    def action_cycle(self, delta: int) -> None:
        i = self.options.index(self.value) if self.value in self.options else 0
        self.value = self.options[(i + delta) % len(self.options)]

    def watch_value(self, value: str) -> None:
        self.post_message(self.Changed(self, value))

    def on_click(self) -> None:
        self.action_cycle(1)

    def render(self) -> Text:
        return Text.assemble(("‹ ", "dim"), self.value, (" ›", "dim"))
