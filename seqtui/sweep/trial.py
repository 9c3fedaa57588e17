"""The task that runs one trial on a Dask worker: an ordinary run in a scratch directory, whose
events and checkpoints stream back to the client (workers share no disk with it).

Protocol, all through the scheduler, so nothing needs a shared disk:

- the worker puts messages on the sweep's queue (``distributed.Queue(outbox)``), each
  ``{"trial": n, "attempt": id, "kind": ...}``: ``hello`` (which worker, whether it already holds
  the corpus), ``events`` (a batch of the run's events, in order), ``checkpoint`` (a checkpoint's
  safetensors and JSON bytes, right after the trainer wrote it), ``bye`` (how many messages it sent);
- the client answers on the attempt's own queue (``distributed.Queue(inbox)``): first ``setup``
  (the run's config, the corpus bytes if needed, the run's checkpoints to resume from — all
  read from the client's run directory), later ``verdict`` (after each ``val`` event when the
  client prunes: keep going or stop) and ``stop`` (Ctrl-C on the client).

A retried attempt (its worker died) says hello again and gets the latest checkpoint the client
received, so it resumes like a run after kill -9. The study stays on the client.
"""

from __future__ import annotations

import hashlib
import os
import queue as _queue
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

FLUSH_SECONDS = 0.25        # how often a trial's events are sent
SETUP_TIMEOUT = 120.0       # seconds a worker waits for the client's setup answer
VERDICT_TIMEOUT = 60.0      # seconds a trial waits for the client's pruning verdict
MAX_BATCH = 500             # events per message


def run_trial(outbox: str, trial: int, run_name: str) -> dict[str, Any]:
    """Run trial ``trial`` (run ``run_name``) to its end; returns a small summary dict.

    Everything the trial needs comes from the client's answer to ``hello``."""
    from distributed import Queue, get_worker

    attempt = uuid.uuid4().hex[:12]
    worker = get_worker()
    out = Queue(outbox)
    inbox = Queue(f"{outbox}-{attempt}")
    scratch = Path(worker.local_directory) / "seqtui-sweep"
    scratch.mkdir(parents=True, exist_ok=True)
    link = _Link(out, inbox, trial, attempt)
    link.send_now("hello", worker=worker.address, host=socket.gethostname(), pid=os.getpid(),
                  inbox=inbox.name, corpora=_cached_corpora(scratch))
    setup = link.wait_setup()
    if setup is None:
        return {"status": "lost", "attempt": attempt, "sent": link.sent,
                "error": f"no answer from the client within {SETUP_TIMEOUT:g} s"}
    run_dir = Path(tempfile.mkdtemp(prefix=f"{run_name}-", dir=scratch))
    try:
        return _train(link, setup, scratch, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _cached_corpora(scratch: Path) -> list[str]:
    d = scratch / "corpora"
    return sorted(p.stem for p in d.glob("*.txt")) if d.is_dir() else []


def _corpus_file(scratch: Path, sha: str, data: bytes | None) -> Path:
    """The corpus as a file in the worker's scratch space, named by its sha256."""
    from seqtui.files import atomic_write

    d = scratch / "corpora"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{sha}.txt"
    if data is not None and not path.is_file():
        if hashlib.sha256(data).hexdigest() != sha:
            raise RuntimeError("the corpus arrived damaged")
        atomic_write(path, data)
    return path


def _train(link: "_Link", setup: dict[str, Any], scratch: Path, run_dir: Path) -> dict[str, Any]:
    from seqtui.engine.config import RunConfig
    from seqtui.engine.rundir import RunDir
    from seqtui.engine.runs import create_run_dir
    from seqtui.engine.trainer import Trainer
    from seqtui.errors import SeqtuiError
    from seqtui.files import atomic_write

    cfg = RunConfig.from_dict(setup["config"])
    corpus = _corpus_file(scratch, setup["corpus_sha"], setup.get("corpus"))
    threads = cfg.threads
    if threads is None:  # share this worker's cores between its task slots
        from distributed import get_worker
        from seqtui.models.threads import available_cpus

        threads = max(1, available_cpus() // max(1, get_worker().state.nthreads))
    cfg = cfg.replace(corpus=str(corpus), threads=threads)
    rd = RunDir(create_run_dir(cfg.to_dict(), run_dir=run_dir))
    for kind, files in (setup.get("resume_from") or {}).items():
        rd.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(rd.checkpoint_meta_path(kind), files["json"])
        atomic_write(rd.checkpoint(kind), files["safetensors"])
    link.prune = bool(setup.get("prune"))
    trainer = Trainer(rd, listeners=(link.on_event,))
    link.start(trainer, rd)
    status, error = "failed", None
    try:
        status = trainer.run()
    except SeqtuiError as exc:  # diverged, a bad configuration: the events say so
        error = str(exc)
    except Exception as exc:  # a bug: still a failed trial, not a lost sweep
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        link.finish()
    return {"status": status, "reason": trainer.stop_reason, "error": error,
            "attempt": link.attempt, "sent": link.sent, "step": trainer.pos.step,
            "best_val_ppl": trainer.pos.best_val_ppl}


class _Link:
    """The worker's side of one attempt: buffers events, sends them from a thread, reads answers."""

    def __init__(self, out, inbox, trial: int, attempt: str):
        self.out, self.inbox = out, inbox
        self.trial, self.attempt = trial, attempt
        self.sent = 0
        self.prune = False
        self.trainer = None
        self.rundir = None
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._verdicts: _queue.Queue = _queue.Queue()
        self._waiting = threading.Event()
        self._thread: threading.Thread | None = None
        self._key = None

    # -- sending ----------------------------------------------------------------------------------
    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"trial": self.trial, "attempt": self.attempt, "kind": kind, **fields}

    def send_now(self, kind: str, **fields: Any) -> None:
        with self._send_lock:
            self.out.put(self._message(kind, **fields))
            self.sent += 1

    def _flush(self) -> None:
        with self._lock:
            items, self._buffer = self._buffer, []
        events: list[dict] = []
        with self._send_lock:
            for item in items + [None]:
                if item is not None and item.get("kind") is None:
                    events.append(item["event"])
                    if len(events) < MAX_BATCH:
                        continue
                if events:
                    self.out.put(self._message("events", events=events))
                    self.sent += 1
                    events = []
                if item is not None and item.get("kind") == "checkpoint":
                    self.out.put(self._message("checkpoint", **item["fields"]))
                    self.sent += 1

    # -- receiving --------------------------------------------------------------------------------
    def wait_setup(self) -> dict[str, Any] | None:
        deadline = time.monotonic() + SETUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                msgs = self.inbox.get(batch=True) or []
            except Exception:
                msgs = []
            for msg in msgs:
                if msg.get("kind") == "setup":
                    return msg
                if msg.get("kind") == "stop":
                    return None
            if not msgs:
                time.sleep(0.05)
        return None

    def _poll_inbox(self) -> None:
        try:  # non-blocking: a blocking get that times out makes the scheduler log a traceback
            msgs = self.inbox.get(batch=True)
        except Exception:
            return
        if not msgs and self._waiting.is_set():
            time.sleep(0.02)
        for msg in msgs or ():
            kind = msg.get("kind")
            if kind == "stop" and self.trainer is not None:
                self.trainer.request_stop(str(msg.get("reason") or "interrupted"))
                self._verdicts.put(None)
            elif kind == "verdict":
                self._verdicts.put(msg)

    def _still_wanted(self) -> bool:
        """False once the scheduler let go of this task (the client is gone or cancelled it)."""
        try:
            from distributed import get_worker

            ts = get_worker().state.tasks.get(self._key)
        except Exception:
            return True
        return ts is not None and ts.state not in ("cancelled", "released", "forgotten")

    # -- the trainer's side -------------------------------------------------------------------------
    def start(self, trainer, rundir) -> None:
        from distributed import get_worker

        self.trainer, self.rundir = trainer, rundir
        try:
            self._key = get_worker().get_current_task()
        except Exception:
            self._key = None
        self._thread = threading.Thread(target=self._loop, name=f"seqtui-trial-{self.trial}",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.is_set():
            if not self._waiting.is_set():  # waiting for a verdict: poll at once
                self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self._flush()
                self._poll_inbox()
            except Exception:  # a scheduler hiccup: try again on the next beat
                time.sleep(FLUSH_SECONDS)
            if self._key is not None and not self._still_wanted() and self.trainer is not None:
                self.trainer.request_stop("interrupted")
                self._verdicts.put(None)

    def on_event(self, event: dict) -> None:
        """The trainer's listener: never lets a transport problem break training."""
        try:
            self._on_event(event)
        except Exception:
            pass

    def _on_event(self, event: dict) -> None:
        kind = event.get("type")
        with self._lock:
            self._buffer.append({"event": event})
            if kind == "checkpoint":
                self._buffer.append({"kind": "checkpoint", "fields": self._checkpoint(event)})
        if kind == "val" and self.prune and self.trainer is not None \
                and self.trainer.stop_reason is None:
            self._await_verdict(event)
        elif kind in ("checkpoint", "end", "error"):
            self._wake.set()

    def _checkpoint(self, event: dict) -> dict[str, Any]:
        ck = event["kind"]
        return {"ckpt": ck, "step": event.get("step"),
                "safetensors": self.rundir.checkpoint(ck).read_bytes(),
                "json": self.rundir.checkpoint_meta_path(ck).read_bytes()}

    def _await_verdict(self, event: dict) -> None:
        """Send the validation now and wait for the client's pruning decision."""
        self._waiting.set()
        self._wake.set()
        deadline = time.monotonic() + VERDICT_TIMEOUT
        try:
            while time.monotonic() < deadline:
                try:
                    msg = self._verdicts.get(timeout=0.5)
                except _queue.Empty:
                    continue
                if msg is None:
                    return  # stopped meanwhile
                if msg.get("step") == event.get("step"):
                    if msg.get("prune"):
                        self.trainer.request_stop("pruned")
                    return
        finally:
            self._waiting.clear()

    def finish(self) -> None:
        self._done.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._flush()
        self.send_now("bye", sent=self.sent + 1)
