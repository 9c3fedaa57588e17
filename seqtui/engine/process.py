"""The training process: start it detached (``python -m seqtui.engine.worker RUN_DIR``), tell
whether a pid is still a live seqtui trainer, and reap the children this process started.

Importing this module is cheap (no numpy, no numba).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from seqtui.engine.rundir import RunDir

WORKER_MODULE = "seqtui.engine.worker"

# Popen objects of runs started by this process, polled so finished children do not linger as
# zombies (a zombie's pid still answers kill(pid, 0)).
_children: dict[int, subprocess.Popen] = {}


def spawn_worker(run: RunDir) -> int:
    """Start the trainer of ``run`` detached: its own session, no terminal, log in the run dir.

    stdin is /dev/null and stdout/stderr go to the run's log, so the process survives the
    terminal closing (a hangup reaches only the terminal's session). The pid is recorded before
    returning, so the run lists as running at once.
    """
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with run.open_log() as log:
        child = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(run.path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=str(run.path), env=env,
        )
    _children[child.pid] = child
    run.write_pid(child.pid)
    return child.pid


def reap_children() -> None:
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


def pid_is_training(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) seqtui process, not a recycled pid."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True  # training in this very process (tests, an in-process trainer)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rindex(")") + 2:].startswith(("Z", "X")):
                return False
            return b"seqtui" in (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            return False
    return True
