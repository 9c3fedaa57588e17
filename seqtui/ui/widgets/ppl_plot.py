"""Perplexity curves (textual-plotext): log-perplexity on a linear axis, labelled in perplexity.

textual-plotext rebuilds the whole figure on every refresh and its log axis crashes on rebuilds,
so curves are plotted as ln(ppl) with ticks placed at round perplexities, downsampled to about
two points per column, and the widget refreshes only when its data changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from rich.text import Text
from textual_plotext import PlotextPlot

# Round perplexities for tick labels; the axis picks the ones inside the data range.
NICE_PPL = (1, 1.2, 1.5, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700,
            1000, 2000, 5000, 10000, 20000, 50000, 100000)


@dataclass(frozen=True)
class Series:
    """One curve: a label for the legend, (step, perplexity) points, a plotext colour."""

    label: str
    points: tuple[tuple[int, float], ...]
    color: str = "cyan"
    marker: str = "braille"


def downsample(points: Sequence[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """Average consecutive points into at most ``max_points`` bins (x and ln y averaged).

    Averaging in log space keeps a falling perplexity curve's shape; the last point is kept
    exactly so the curve ends at the newest value.
    """
    n = len(points)
    if max_points <= 0 or n <= max_points:
        return [(float(x), float(y)) for x, y in points]
    out: list[tuple[float, float]] = []
    for b in range(max_points - 1):
        lo, hi = b * (n - 1) // (max_points - 1), (b + 1) * (n - 1) // (max_points - 1)
        chunk = points[lo:max(hi, lo + 1)]
        xs = sum(p[0] for p in chunk) / len(chunk)
        ly = sum(math.log(max(p[1], 1e-12)) for p in chunk) / len(chunk)
        out.append((xs, math.exp(ly)))
    out.append((float(points[-1][0]), float(points[-1][1])))
    return out


def ppl_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round perplexities spanning [lo, hi] (at most ``max_ticks``, spread evenly in log space)."""
    inside = [p for p in NICE_PPL if lo * 0.97 <= p <= hi * 1.03]
    if len(inside) < 2:
        below = [p for p in NICE_PPL if p <= lo] or [NICE_PPL[0]]
        above = [p for p in NICE_PPL if p >= hi] or [NICE_PPL[-1]]
        inside = sorted({below[-1], *inside, above[0]})
    if len(inside) <= max_ticks:
        return inside
    step = (len(inside) - 1) / (max_ticks - 1)
    return sorted({inside[round(i * step)] for i in range(max_ticks)})


def fmt_tick(p: float) -> str:
    return f"{p:g}" if p < 1000 else f"{p / 1000:g}k"


def step_ticks(lo: float, hi: float, max_ticks: int = 5) -> list[int]:
    """Round step numbers (1, 2, 2.5 or 5 × 10ⁿ apart) inside [lo, hi]: the densest that fits."""
    span = max(hi - lo, 1.0)
    top = math.floor(math.log10(span))
    for e in range(max(0, top - 3), top + 2):
        for m in (1, 2, 2.5, 5):
            step = m * 10 ** e
            if step < 1:
                continue
            first = math.ceil(lo / step) * step
            count = int((hi - first) // step) + 1 if first <= hi else 0
            if count <= max_ticks:
                return [int(round(first + i * step)) for i in range(count)]
    return [int(round(lo)), int(round(hi))]  # pragma: no cover - the loop always returns


def fmt_step(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 10_000:
        return f"{n / 1000:g}k"
    return str(n)


class FramelessPlot(PlotextPlot):
    """A plotext plot rebuilt for its width on every render, on a cleared, frameless canvas."""

    def render(self):
        self._build(max(self.size.width, 20))
        return super().render()

    def _build(self, width: int) -> None:  # pragma: no cover - every plot draws its own
        raise NotImplementedError

    def _fresh(self):
        """The cleared canvas (``plotext``) to draw on."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.frame(False)
        return plt


class PerplexityPlot(FramelessPlot):
    """Training/validation perplexity against step, with an optional horizontal reference line."""

    DEFAULT_CSS = """
    PerplexityPlot { width: 1fr; height: 1fr; min-height: 6; }
    """

    def __init__(self, *, empty_message: str = "waiting for the first progress event…",
                 name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self._series: tuple[Series, ...] = ()
        self._reference: tuple[str, float] | None = None
        self.empty_message = empty_message
        self._drawn_for: tuple | None = None

    def set_curves(self, series: Sequence[Series], reference: tuple[str, float] | None = None) -> None:
        """Replace the curves; refreshes only if something differs from what is drawn."""
        series, key = tuple(series), (tuple(series), reference)
        if key == (self._series, self._reference):
            return
        self._series, self._reference = series, reference
        self.border_subtitle = self.legend()
        self.refresh()

    @property
    def series(self) -> tuple[Series, ...]:
        return self._series

    @property
    def reference(self) -> tuple[str, float] | None:
        return self._reference

    def _build(self, width: int) -> None:
        plt = self._fresh()
        plt.xlabel("")
        ys: list[float] = []
        xs: list[float] = []
        for s in self._series:
            pts = downsample(s.points, 2 * width)
            if not pts:
                continue
            x = [p[0] for p in pts]
            y = [math.log(max(p[1], 1e-12)) for p in pts]
            xs += x
            ys += [p[1] for p in pts]
            plt.plot(x, y, marker=s.marker, color=s.color)
        if self._reference is not None:
            label, value = self._reference
            ys.append(value)
            if xs:
                plt.plot([min(xs), max(xs)], [math.log(value)] * 2, marker=REFERENCE_MARKER, color="gray")
        if not xs:
            plt.title(self.empty_message)
            plt.yticks([], [])
            plt.xticks([], [])
            return
        lo, hi = min(ys), max(ys)
        if hi <= lo * 1.02:
            lo, hi = lo / 1.1, hi * 1.1
        ticks = ppl_ticks(lo, hi, max_ticks=max(2, min(6, self.size.height // 2 or 3)))
        plt.yticks([math.log(t) for t in ticks], [fmt_tick(t) for t in ticks])
        plt.ylim(math.log(min(lo, ticks[0])), math.log(max(hi, ticks[-1])))
        x_lo, x_hi = min(xs), max(xs)
        if x_lo == x_hi:
            x_lo, x_hi = x_lo - 1, x_hi + 1
        plt.xlim(x_lo, x_hi)
        xt = step_ticks(x_lo, x_hi, max_ticks=max(2, min(6, width // 12)))
        plt.xticks(xt, [fmt_step(t) for t in xt])

    def legend(self) -> Text:
        """The series names in their colours, for a border subtitle (plotext's legend hides data)."""
        out = Text()
        for s in self._series:
            if s.points:
                out.append(f" {marker_glyph(s.marker)} {s.label}", style=rich_color(s.color))
        if self._reference is not None:
            out.append(f" {REFERENCE_MARKER} {self._reference[0]} {self._reference[1]:.3g}",
                       style=rich_color("gray"))
        return out


# plotext's colour names are the 16 ANSI colours ("orange" is ANSI 3): the legend uses the same
# ones, so it matches the curves in every colour mode and --ansi never gets 256-colour styles.
_RICH_COLORS = {"orange": "yellow", "orange+": "bright_yellow", "gray": "bright_black", "gray+": "white"}
REFERENCE_MARKER = "┄"  # the n-gram line: drawn and listed with this glyph
# The glyph a plotext marker draws, for legends: curves differ by glyph, not only by colour (NO_COLOR).
_MARKER_GLYPHS = {"braille": "⠤", "hd": "▄", "fhd": "▟", "dot": "•", "sd": "█"}


def marker_glyph(marker: str) -> str:
    return _MARKER_GLYPHS.get(marker, marker[:1] or "━")


def rich_color(plotext_color: str) -> str:
    if plotext_color in _RICH_COLORS:
        return _RICH_COLORS[plotext_color]
    name = plotext_color.rstrip("+")
    return ("bright_" + name) if plotext_color.endswith("+") else _RICH_COLORS.get(name, name)
