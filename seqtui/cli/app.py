"""`seqtui app` (also bare `seqtui`): open the Textual app."""

from __future__ import annotations

import click

SCREEN_CHOICES = ("corpora", "train", "gradients", "runs", "generate")


@click.command("app")
@click.option("--corpus", metavar="NAME|PATH", help="Preselect this corpus in the Train form.")
@click.option("--run", "run", metavar="RUN", help="Attach to this run (name or run dir) at start.")
@click.option("--screen", type=click.Choice(SCREEN_CHOICES), default="train", show_default=True,
              help="The screen to open first.")
@click.option("--ansi/--no-ansi", default=False, show_default=True,
              help="Use the terminal's own 16-colour palette instead of true colour.")
def app(corpus: str | None, run: str | None, screen: str, ansi: bool) -> None:
    """Open the app: corpora, live training, gradients, runs, generation.

    Runs started here train in their own process: quitting (ctrl+q) or a dropped SSH
    connection does not stop them, and reopening re-attaches. NO_COLOR and
    TEXTUAL_COLOR_SYSTEM are respected.
    """
    from seqtui.ui.app import make_app

    make_app(corpus=corpus, run=run, screen=screen, ansi_color=True if ansi else None).run()
