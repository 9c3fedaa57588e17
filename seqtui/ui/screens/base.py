"""What every screen shares: a worker that raises unexpectedly becomes a notification."""

from __future__ import annotations

import threading

from textual.worker import Worker, WorkerState

# The app's workers tokenize corpora (statistics) through seqtui.data.text.load_dataset; building
# one token cache from two threads at once once crashed with SIGBUS (temp names are now per
# thread), and two builds of one corpus only compete for the same cores. One at a time.
DATASET_LOCK = threading.Lock()


def report_worker_error(node, event: Worker.StateChanged) -> None:
    """Notify about a worker that ended with an exception (the app keeps running)."""
    if event.state == WorkerState.ERROR:
        error = event.worker.error
        node.app.notify(f"{type(error).__name__}: {error}", title=event.worker.name or "error",
                        severity="error")


class WorkerErrors:
    """Mixin for screens: Worker.StateChanged does not bubble, so each owner must listen."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self, event)
