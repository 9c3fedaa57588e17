"""The "now" panel of the Train screen: epoch, step, perplexities, speed, ETA, gradient norm, clipping."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from seqtui.ui.run_state import STATUS_MARK, RunState, fmt_duration, fmt_ppl, fmt_sci

SPARKS = "▁▂▃▄▅▆▇█"
STATUS_STYLE = {"running": "bold green", "stopped": "yellow", "finished": "bold cyan", "failed": "bold red",
                "gone": "bold yellow"}


def status_style(status: str) -> str:
    """The style of a status word; under NO_COLOR a failure is reversed (red turns to a grey that
    vanished on the runs table's grey stripes)."""
    import os

    if status == "failed" and os.environ.get("NO_COLOR") is not None:
        return "bold reverse"
    return STATUS_STYLE.get(status, "")


def sparkline(values: list[float], ceiling: float | None = None) -> str:
    """Block characters scaled to max(values, ceiling); empty input gives an empty string."""
    if not values:
        return ""
    top = max(max(values), ceiling or 0.0) or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in values)


def bar(fraction: float, width: int) -> str:
    """A text progress bar of ``width`` cells."""
    fraction = min(1.0, max(0.0, fraction))
    full = int(fraction * width)
    return "━" * full + ("╸" if full < width else "") + "─" * max(0, width - full - 1)


def stats_table(state: RunState, now: float | None = None) -> Table:
    """The rows of the panel, from a run state (``now`` only matters while compiling)."""
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(no_wrap=True, overflow="ellipsis")
    status = state.status
    mark = STATUS_MARK.get(status, "?")
    status_text = Text(f"{mark} {status}", style=status_style(status))
    if state.reason and status != "running" and state.reason != status:
        status_text.append(f" ({state.reason})", style="dim")
    t.add_row("status", status_text)
    if state.status == "running" and state.start is None:
        t.add_row("phase", Text("reading and encoding the corpus…", style="italic"))
    if state.compiling:
        since = (now or time.time()) - float(state.compile.get("time") or 0.0)
        t.add_row("numba", Text(f"compiling kernels… {since:.0f}s", style="italic"))
    total_epochs = state.total_epochs
    if total_epochs:
        finished = state.status == "finished"
        epoch = total_epochs if finished else min(state.epoch, total_epochs)
        frac = 1.0 if finished else min(1.0, epoch / total_epochs)
        total_text = f"{total_epochs:g}" if float(total_epochs).is_integer() else f"{total_epochs:.1f}"
        t.add_row("epoch", f"{epoch:.1f}/{total_text} {bar(frac, 8)} {frac:.0%}")
    total = state.total_steps
    t.add_row("step", f"{state.step:,}" + (f"/{total:,}" if total else ""))
    last = state.last_progress
    t.add_row("train", fmt_ppl(last.get("ppl") if last else None))
    val = state.last_val
    val_text = Text(fmt_ppl(val.get("ppl") if val else None))
    if state.best_val is not None:
        val_text.append(f"  best {fmt_ppl(state.best_val)}", style="dim")
    t.add_row("val", val_text)
    if state.baseline:
        t.add_row(f"{state.baseline.get('order', '?')}-gram", Text(fmt_ppl(state.baseline.get("val_ppl")) + "  val", style="dim"))
    lr = last.get("lr") if last else None
    if isinstance(lr, (int, float)):
        t.add_row("lr", f"{lr:.3g}")
    tps = last.get("tokens_per_s") if last else None
    t.add_row("tok/s", f"{tps:,.0f}" if isinstance(tps, (int, float)) else "—")
    t.add_row("ETA", fmt_duration(state.eta_seconds) if state.status == "running" else "—")
    norms = [n for _, n, _ in list(state.grad_norms)[-12:]]
    clip = state.clip
    g = Text(fmt_sci(norms[-1]) if norms else "—")
    if clip is not None:
        g.append(f" θ {clip:g} ", style="dim")
    g.append(sparkline(norms, clip))
    t.add_row("‖g‖", g)
    rate = state.clip_rate
    t.add_row("clip", "—" if rate is None else f"{rate:.0%} of recent steps")
    return t


class StatsPanel(Static):
    """Numbers that change in place; re-rendered only when the run state's version changes."""

    DEFAULT_CSS = """
    StatsPanel { width: 34; height: auto; padding: 0 1; }
    """

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self._shown: tuple | None = None

    def show(self, state: RunState | None) -> None:
        if state is None:
            key = None
            if key != self._shown:
                self._shown = key
                self.update(Text("no run attached", style="dim"))
            return
        key = (id(state), state.version, state.compiling and int(time.time()))
        if key == self._shown:
            return
        self._shown = key
        self.update(stats_table(state))
