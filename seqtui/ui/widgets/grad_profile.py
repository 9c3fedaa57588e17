"""‖∂L/∂h_t‖ back through the window: a log-scale column chart and a history strip.

Both render straight to Rich text (no plotting library) so the columns line up with steps t and
a recorded profile always draws the same picture.
"""

from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text
from textual.widget import Widget

EIGHTHS = " ▁▂▃▄▅▆▇█"
SHADES = " ░▒▓█"


def bin_norms(norms: Sequence[float], columns: int) -> list[float]:
    """At most ``columns`` values: the maximum of each run of consecutive steps."""
    n = len(norms)
    if n <= columns:
        return [float(v) for v in norms]
    return [max(norms[b * n // columns:(b + 1) * n // columns]) for b in range(columns)]


def decade_range(values: Sequence[float]) -> tuple[int, int]:
    """Whole decades (lo, hi) enclosing the positive values, at least one decade apart."""
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if not pos:
        return -1, 0
    lo, hi = math.floor(math.log10(min(pos))), math.ceil(math.log10(max(pos)))
    if hi <= lo:
        hi = lo + 1
    return lo, hi


def log_range(values: Sequence[float], min_span: float = 0.5) -> tuple[float, float]:
    """(lo, hi) in log10 for a chart: the data's range with a 10% floor margin, ≥ ``min_span``.

    Tighter than whole decades, so a profile that varies 3× still shows its shape.
    """
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if not pos:
        return -1.0, 0.0
    lo, hi = math.log10(min(pos)), math.log10(max(pos))
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    return lo - 0.1 * (hi - lo), hi


def layout(width: int, n: int) -> tuple[int, int]:
    """(label width, cells per step) shared by the chart and the history strip so columns align."""
    label_w = 8
    return label_w, max(1, min(3, (width - label_w) // max(1, n)))


def cut_points(bptt: str, T: int) -> list[int]:
    """Steps t (1-based) whose gradient does not flow into t-1 under ``truncated:K``."""
    mode, _, arg = (bptt or "full").partition(":")
    if mode != "truncated" or not arg.isdigit() or int(arg) <= 0:
        return []
    k = int(arg)
    return [t for t in range(1, T) if t % k == 0]  # carry_scale[t] = 0 for t % k == 0, t > 0 (0-based)


def profile_chart(norms: Sequence[float], width: int, height: int, bptt: str = "full") -> Text:
    """A column per step t = 1..T (binned if T > columns), bar height ∝ log10 ‖∂L/∂h_t‖."""
    rows = max(2, height - 1)
    values = bin_norms(list(norms), max(1, width - 8))
    T = len(norms)
    label_w, cw = layout(width, len(values))
    lo, hi = log_range(values)
    span = hi - lo
    levels = [0 if not (v > 0 and math.isfinite(v)) else
              max(1, round((math.log10(v) - lo) / span * rows * 8)) for v in values]
    # value labels on the top, middle and bottom rows
    label_rows = {0: hi, rows - 1: lo + span / rows, (rows - 1) // 2: lo + span * (rows - (rows - 1) // 2) / rows}
    out = Text(no_wrap=True, overflow="crop")
    for r in range(rows):
        value = label_rows.get(r)
        out.append(f"{f'{10 ** value:.1e}' if value is not None else '':>{label_w - 1}}", style="dim")
        out.append("┤" if value is not None else "│", style="dim")
        floor8 = (rows - 1 - r) * 8
        out.append("".join(EIGHTHS[min(8, max(0, lv - floor8))] * cw for lv in levels), style="bold")
        out.append("\n")
    # axis: t labels at both ends, cut points marked
    axis = [" "] * (len(values) * cw)
    if T <= len(values):
        for t in cut_points(bptt, T):
            axis[(t - 1) * cw + cw - 1] = "┆"
    left, right = "t=1", f"t={T}"
    axis_s = "".join(axis)
    axis_s = left + axis_s[len(left):]
    if len(axis_s) >= len(left) + len(right) + 1:
        axis_s = axis_s[: len(axis_s) - len(right)] + right
    out.append(" " * (label_w - 1) + "└", style="dim")
    out.append(axis_s, style="dim")
    return out


def history_strip(profiles: Sequence[dict], width: int, rows: int) -> Text:
    """The last ``rows`` profiles, one line each (newest last), shaded by log norm on one scale."""
    recent = list(profiles)[-rows:]
    out = Text(no_wrap=True, overflow="crop")
    if not recent:
        return out
    binned = [bin_norms(p.get("norms") or [], max(1, width - 8)) for p in recent]
    label_w, cw = layout(width, max(len(b) for b in binned))
    lo, hi = log_range([v for b in binned for v in b])
    span = hi - lo
    for i, (p, vals) in enumerate(zip(recent, binned)):
        out.append(f"{int(p.get('step') or 0):>{label_w - 1},}│", style="dim")
        shades = []
        for v in vals:
            if not (v > 0 and math.isfinite(v)):
                shades.append(" " * cw)
                continue
            s = (math.log10(v) - lo) / span
            shades.append(SHADES[min(len(SHADES) - 1, 1 + int(s * (len(SHADES) - 1)))] * cw)
        out.append("".join(shades))
        if i < len(recent) - 1:
            out.append("\n")
    return out


def describe_profile(norms: Sequence[float]) -> tuple[str, str]:
    """(verdict, one-line reading) from the ratio of the first step's norm to the last's."""
    pos = [v for v in norms if v > 0 and math.isfinite(v)]
    if len(pos) < 2 or len(pos) != len(norms):
        if any(not math.isfinite(v) for v in norms):
            return "exploding", "non-finite gradients: the step will be skipped or the run diverges"
        return "unknown", "not enough data yet"
    # Each h_t gets its own loss term plus what flows back from later steps: if nothing is lost
    # on the way, h_1 collects up to T terms (≈√T× for unaligned ones); more than T× means the
    # recurrent Jacobians amplify, hardly more than 1× means they shrink the signal away.
    ratio, T = norms[0] / norms[-1], len(norms)
    if ratio > max(10.0, T):
        return "exploding", f"‖∂L/∂h_1‖ is {ratio:.0f}× ‖∂L/∂h_T‖: gradients grow going back in time"
    if ratio < 1.5:
        return "vanishing", (f"‖∂L/∂h_1‖ ≈ {ratio:.1f}× ‖∂L/∂h_T‖: little signal from later losses "
                             "reaches early steps")
    return "healthy", f"‖∂L/∂h_1‖ is {ratio:.1f}× ‖∂L/∂h_T‖: later losses still reach early steps"


class GradientChart(Widget):
    """The latest profile as columns; ``set_profile`` redraws only if the profile changed."""

    DEFAULT_CSS = """
    GradientChart { height: 1fr; min-height: 5; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._profile: tuple[tuple[float, ...], str] | None = None

    def set_profile(self, norms: Sequence[float] | None, bptt: str = "full") -> None:
        key = (tuple(norms), bptt) if norms else None
        if key != self._profile:
            self._profile = key
            self.refresh()

    def render(self):
        if not self._profile:
            return Text("no gradient profile yet: the trainer writes one every grad_profile_every steps",
                        style="dim")
        norms, bptt = self._profile
        return profile_chart(norms, self.size.width, self.size.height, bptt)


class ProfileHistory(Widget):
    """How the profile changed during training: one shaded row per recorded profile."""

    DEFAULT_CSS = """
    ProfileHistory { height: 5; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._profiles: tuple = ()

    def set_profiles(self, profiles: Sequence[dict]) -> None:
        key = tuple((p.get("step"), tuple(p.get("norms") or ())) for p in list(profiles)[-self.rows:])
        if key != self._profiles:
            self._profiles = key
            self._data = list(profiles)[-self.rows:]
            self.refresh()

    @property
    def rows(self) -> int:
        return max(1, self.size.height or 5)

    def render(self):
        if not self._profiles:
            return Text("")
        return history_strip(self._data, self.size.width, self.size.height or 5)
