"""What every live display of a training process shares: a stderr console, a rich status or
progress bar on a terminal (plain lines otherwise), and closing them whatever happened."""

from __future__ import annotations


class LiveDisplay:
    """The base of ``seqtui train``'s and ``seqtui series fit``'s displays."""

    def __init__(self, quiet: bool):
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal and not quiet
        self.progress = None   # a rich Progress while the bar shows
        self.task = None
        self.status = None     # a rich Status while kernels compile
        self._last_line = 0.0

    def close(self) -> None:
        """Stop the status and the bar (the terminal is left clean on every exit path)."""
        if self.status is not None:
            self.status.stop()
            self.status = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
