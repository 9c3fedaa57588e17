"""The app's screens, written once: the nav bar, the app's modes, key bindings, style sheets and
the help page are all derived from ``SCREENS``.

Screens are named by dotted path so this module imports none of them (the nav bar, which every
screen shows, reads the table too).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path


@dataclass(frozen=True)
class ScreenEntry:
    mode: str      # the app mode's name (also the screen's .tcss file under screens/)
    fkey: str      # function key (works everywhere)
    letter: str    # letter key (works when no text field has the focus)
    label: str
    screen: str    # "module:Class"
    short: str = ""  # the label when the nav bar needs room for a run name

    @property
    def short_label(self) -> str:
        return self.short or self.label

    @property
    def css_path(self) -> str:
        return f"screens/{self.mode}.tcss"

    def screen_class(self) -> type:
        module, _, name = self.screen.partition(":")
        return getattr(import_module(module), name)


SCREENS = (
    ScreenEntry("corpora", "f2", "c", "Corpora", "seqtui.ui.screens.corpora:CorporaScreen", "Corp"),
    ScreenEntry("train", "f3", "t", "Train", "seqtui.ui.screens.train:TrainScreen"),
    ScreenEntry("gradients", "f4", "d", "Gradients", "seqtui.ui.screens.gradients:GradientsScreen", "Grad"),
    ScreenEntry("runs", "f5", "r", "Runs", "seqtui.ui.screens.runs:RunsScreen"),
    ScreenEntry("generate", "f6", "g", "Generate", "seqtui.ui.screens.generate:GenerateScreen", "Gen"),
    ScreenEntry("series", "f7", "i", "Series", "seqtui.ui.screens.series:SeriesScreen"),
)
# Style sheets that belong to no mode: the shared one first, the help page's last.
SHARED_CSS = "screens/app.tcss"
EXTRA_CSS = ("screens/help.tcss",)


def css_paths() -> list[str]:
    """Absolute paths (an app subclass defined elsewhere still finds them)."""
    here = Path(__file__).resolve().parent
    return [str(here / p) for p in (SHARED_CSS, *(e.css_path for e in SCREENS), *EXTRA_CSS)]


def modes() -> dict[str, type]:
    return {e.mode: e.screen_class() for e in SCREENS}
