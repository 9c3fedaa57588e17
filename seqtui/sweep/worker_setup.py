"""Preloaded into the workers of the sweep's own LocalCluster: they ignore SIGINT, so a Ctrl-C on
the terminal (which reaches the whole foreground process group) stops the sweep through its
client — running trials checkpoint and end as stopped — instead of killing the workers."""

from __future__ import annotations

import signal
import threading


def dask_setup(worker) -> None:  # the preload hook distributed calls in each worker process
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
