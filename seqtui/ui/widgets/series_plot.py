"""One chart of a series run: the data, the 1-step and the k-step predictions over time, and the
train/validation boundary (textual-plotext).

The three curves differ by glyph as well as colour (NO_COLOR terminals): the data in braille
dots, the 1-step predictions in half blocks, the k-step ones in ``×``; the legend in the border
uses the same glyphs. Arrays are strided to about two points per column before plotting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from rich.text import Text

from seqtui.ui.widgets.ppl_plot import FramelessPlot

# (legend glyph, plotext marker, colour) of each curve
DATA_STYLE = ("⠒", "braille", "gray")
ONE_STYLE = ("▄", "hd", "cyan")
K_STYLE = ("×", "×", "orange")


@dataclass(frozen=True)
class SeriesView:
    """What the chart draws (lists of floats; NaN where a prediction is undefined)."""

    x: tuple[float, ...]
    values: tuple[float, ...]
    one_step: tuple[float, ...] = ()
    kstep: tuple[float, ...] = ()
    k: int | None = None
    boundary: float | None = None   # x of the first validation target


def strided(x: Sequence[float], y: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """Every n-th finite point so that at most about ``max_points`` remain (the last one kept)."""
    pts = [(a, b) for a, b in zip(x, y) if isinstance(b, (int, float)) and math.isfinite(b)]
    if not pts:
        return [], []
    step = max(1, math.ceil(len(pts) / max(1, max_points)))
    keep = pts[::step]
    if keep[-1] != pts[-1]:
        keep.append(pts[-1])
    return [p[0] for p in keep], [p[1] for p in keep]


class SeriesPlot(FramelessPlot):
    DEFAULT_CSS = """
    SeriesPlot { width: 1fr; height: 1fr; min-height: 6; }
    """

    def __init__(self, *, empty_message: str = "no series run yet", **kwargs):
        super().__init__(**kwargs)
        self.view: SeriesView | None = None
        self.empty_message = empty_message

    def show(self, view: SeriesView | None, empty_message: str | None = None) -> None:
        if empty_message is not None:
            self.empty_message = empty_message
        if view == self.view and empty_message is None:
            return
        self.view = view
        self.border_subtitle = self.legend()
        self.refresh()

    def legend(self) -> Text:
        out = Text()
        v = self.view
        if v is None:
            return out
        out.append(f" {DATA_STYLE[0]} data", style="bright_black")
        if v.one_step:
            out.append(f" {ONE_STYLE[0]} 1-step", style=ONE_STYLE[2])
        if v.kstep and v.k:
            out.append(f" {K_STYLE[0]} {v.k}-step", style="yellow")
        if v.boundary is not None:
            out.append(" │ val→ ", style="bold")
        return out

    def _build(self, width: int) -> None:
        plt = self._fresh()
        v = self.view
        if v is None or not v.values:
            plt.title(self.empty_message)
            plt.xticks([], [])
            plt.yticks([], [])
            return
        n = 2 * width
        ys: list[float] = []
        for series, (_glyph, marker, color) in ((v.values, DATA_STYLE), (v.one_step, ONE_STYLE),
                                                (v.kstep, K_STYLE)):
            if not series:
                continue
            x, y = strided(v.x, series, n)
            if x:
                plt.plot(x, y, marker=marker, color=color)
                ys += y
        if v.boundary is not None:
            plt.vline(v.boundary, "white")
        if ys:
            lo, hi = min(ys), max(ys)
            pad = (hi - lo) * 0.05 or 1.0
            plt.ylim(lo - pad, hi + pad)
        plt.xlim(v.x[0], v.x[-1])
