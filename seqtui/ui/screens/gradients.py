"""Gradients: ‖∂L/∂h_t‖ back through the window as training goes — vanishing, exploding, clipping, truncation.

The trainer writes a ``grad_profile`` event every ``grad_profile_every`` steps (the norms of the
gradient reaching the top layer's hidden state at each step t of one window). This screen draws
the newest as columns on a log scale, the recent ones as a shaded history, and says in words
what the picture means for the run's BPTT mode and clip threshold.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Markdown, Static

from seqtui.ui.widgets.grad_profile import GradientChart, ProfileHistory, describe_profile
from seqtui.ui.widgets.nav import NavBar
from seqtui.ui.run_state import STATUS_MARK, RunState, fmt_sci

REFRESH_SECONDS = 0.5

MODE_NOTES = {
    "full": ("Full BPTT: every loss in the window sends gradient back to t=1. Clipping rescales "
             "the whole gradient when its norm passes θ — it tames explosions, it cannot revive "
             "a vanished signal."),
    "truncated": ("Truncated BPTT: the gradient is cut every k steps (┆ on the axis), so each "
                  "step only hears the losses up to the next cut: a saw-tooth profile. Cheaper "
                  "and stabler, blind to longer dependencies."),
    "randomized": ("Randomized truncation: the carry is cut at random and kept paths are scaled "
                   "by 1/p — an unbiased estimate of the full gradient, with more variance."),
}

EXPLANATION = """\
# Why gradients vanish or explode

A recurrent network applies the same weights at every step, so the gradient that reaches the
hidden state at step *t* from a loss at a later step *s* is a **product of s − t Jacobians**
∂h_k/∂h_(k−1). Each bar on the Gradients screen is ‖∂L/∂h_t‖: what reaches step *t* from all the
losses at steps t…T of one window (t = 1 is the oldest step, T the newest).

* **Vanishing** — when those Jacobians shrink vectors (small recurrent weights, saturated tanh),
  the product decays exponentially: the bars stay at the size of each step's own loss term and
  early steps learn nothing from late tokens. Gated cells (GRU, LSTM) keep an additive path
  through time that decays much more slowly.
* **Exploding** — when they stretch vectors, the product grows exponentially: bars rise steeply
  toward t = 1, one update can throw the weights far away and the loss jumps or becomes NaN.

## What the controls do

* **Gradient clipping** (clip θ): if the norm of the whole gradient is above θ it is rescaled to
  θ. The direction is kept; only the step length is bounded. The clip rate says how often that
  happened recently: a rate near 100 % means θ is far below the typical norm.
* **Truncated BPTT** (k): the gradient through the carried state is cut every k steps. Cheaper and
  more stable, but no dependency longer than k steps can be learned through the gradient.
* **Randomized truncation** (p): the carry is kept with probability p and scaled by 1/p when kept,
  so the expected gradient is the full one (Tallec & Ollivier, 2017).
* **Sequential sampling** carries the hidden state across windows (the forward pass sees the whole
  past), but the gradient still stops at the window edge.
"""


def clip_line(state: RunState) -> Text:
    """``pre-clip ‖g‖ 3.70 > θ 1 → clipped this step · clip rate 41% recently``."""
    last = state.last_progress
    out = Text(no_wrap=True, overflow="ellipsis")
    if not last:
        return out
    norm, clip = last.get("grad_norm"), state.clip
    out.append(f" pre-clip ‖g‖ {fmt_sci(norm)}")
    if clip is None:
        out.append("  no clipping", style="dim")
    elif last.get("clipped"):
        out.append(f" > θ {clip:g} → ", style="")
        out.append("clipped this step", style="bold yellow")
    else:
        out.append(f" ≤ θ {clip:g} → not clipped", style="dim")
    rate = state.clip_rate
    if rate is not None:
        out.append(f" · clip rate {rate:.0%} of recent steps")
    return out


class ExplainScreen(ModalScreen):
    """The long explanation (e on the Gradients screen)."""

    BINDINGS = [Binding("escape,e,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="explain-box"):
            yield Markdown(EXPLANATION)
        yield Footer()


class GradientsScreen(Screen):
    """The newest gradient profile, its history and what they mean."""

    BINDINGS = [Binding("e", "explain", "Explain")]

    def compose(self) -> ComposeResult:
        yield NavBar("gradients", id="nav")
        yield Static("", id="grad-title")
        yield GradientChart(id="grad-chart")
        yield Static("", id="grad-verdict")
        yield Static("", id="grad-clip")
        yield ProfileHistory(id="grad-history")
        yield Static("", id="grad-note")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#grad-history").border_title = "history: one row per profile, step at the left, darker = larger"
        self.set_interval(REFRESH_SECONDS, self.refresh_view)
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def action_explain(self) -> None:
        self.app.push_screen(ExplainScreen())

    def refresh_view(self) -> None:
        if not self.is_current:
            return
        state: RunState | None = self.app.state
        nav = self.query_one(NavBar)
        title = self.query_one("#grad-title", Static)
        if state is None:
            nav.set_status("no run")
            title.update(Text(" no run attached: start one on the Train screen (F3, then n)",
                              style="dim"))
            return
        nav.set_status(f"{STATUS_MARK.get(state.status, '?')} {state.name}")
        profile = state.profiles[-1] if state.profiles else None
        bptt = str((profile or {}).get("bptt") or state.config.get("bptt") or "full")
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(" ‖∂L/∂h_t‖ back through the window", style="bold")
        if profile:
            head.append(f" · step {int(profile.get('step') or 0):,} · T {len(profile['norms'])}")
        head.append(f" · bptt {bptt} · {state.model_label}")
        title.update(head)
        norms = list(profile["norms"]) if profile else None
        self.query_one(GradientChart).set_profile(norms, bptt)
        verdict = self.query_one("#grad-verdict", Static)
        if norms:
            kind, reading = describe_profile(norms)
            style = {"vanishing": "bold magenta", "exploding": "bold red", "healthy": "bold green"}.get(kind, "dim")
            verdict.update(Text.assemble((f" {kind}: ", style), reading))
        else:
            verdict.update("")
        self.query_one("#grad-clip", Static).update(clip_line(state))
        self.query_one(ProfileHistory).set_profiles(list(state.profiles))
        mode = bptt.partition(":")[0]
        self.query_one("#grad-note", Static).update(
            Text(MODE_NOTES.get(mode, MODE_NOTES["full"]) + "  (e: more)", style="italic"))
