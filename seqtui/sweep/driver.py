"""The client side of a sweep: asks the study for trials, runs each as an ordinary run on a Dask
worker, writes what the worker streams back into the local run directory, prunes, and records
every outcome in the study.

Only this process opens the study. Each trial's run directory lives here
(``seqtui runs list --sweep NAME``); its ``pid`` file names this process while the trial runs, so
the run lists as running and cannot be resumed or removed from under the sweep. Ctrl-C (or
SIGTERM) asks running trials to checkpoint and end as stopped; they stay RUNNING in the study,
and re-running the same command resumes them from their checkpoints and asks only for the
trials still missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from seqtui.engine.events import EventWriter
from seqtui.engine.config import RunConfig
from seqtui.engine.rundir import RunDir
from seqtui.errors import ConfigError, RunError, SeqtuiError
from seqtui.files import atomic_write
from seqtui.sweep import space as space_mod
from seqtui.sweep.results import trial_timing

STOP_TIMEOUT = 120.0      # seconds Ctrl-C waits for running trials to checkpoint
BYE_TIMEOUT = 15.0        # seconds to wait for a finished trial's last messages
POLL_SECONDS = 0.1
STOP_REQUESTED = "stop requested"  # the end reason of a trial stopped by `seqtui runs stop`
LOST_SCHEDULER_SECONDS = 60.0  # no answer from the scheduler for this long ends the sweep
_BUDGET = re.compile(r"^\s*(\d+)\s*(steps?|epochs?)?\s*$", re.IGNORECASE)


def parse_budget(text: str) -> dict[str, int]:
    """``200steps`` / ``2epochs`` / ``200`` (steps) → RunConfig overrides."""
    m = _BUDGET.match(text or "")
    if not m or int(m.group(1)) <= 0:
        raise ConfigError(f"bad --budget {text!r} (use e.g. 200steps or 2epochs)")
    unit = (m.group(2) or "steps").lower()
    return {"epochs" if unit.startswith("epoch") else "steps": int(m.group(1))}


@dataclass
class Plan:
    """What the sweep runs: validated before anything starts."""

    name: str
    base: RunConfig                 # every trial's settings before its parameters
    space: space_mod.Space
    search: str
    trials: int
    prune: bool
    storage: str                    # database URL
    notices: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        base = self.base.to_dict()
        base.pop("threads", None)   # a machine's sizing, not the experiment
        return {"search": self.search, "space": self.space.to_json(), "base": base,
                "trials": self.trials, "prune": self.prune}


def make_plan(name: str, base: RunConfig, space: space_mod.Space, search: str,
              trials: int | None, prune: bool, storage: str | None,
              threads_per_trial: int | None) -> Plan:
    """Check everything: the base config and corpus (preflight), every point of the space."""
    from seqtui.engine.prepare import prepare_data, preflight
    from seqtui.sweep.study import SEARCHES, check_name, storage_url

    check_name(name)
    if search not in SEARCHES:
        raise ConfigError(f"unknown search {search!r} (choose from {', '.join(SEARCHES)})")
    if not space:
        raise ConfigError("nothing to search: give --param NAME=VALUES or --space FILE")
    if base.val_fraction <= 0:
        raise ConfigError("a sweep ranks trials by validation perplexity: --val-fraction must be > 0")
    if threads_per_trial is not None:
        base = base.replace(threads=threads_per_trial)
    base = preflight(base.validate())
    notices = []
    if base.val_every == 0 and prune:
        data = prepare_data(base)
        from seqtui.data.batches import make_epoch

        per_epoch = make_epoch(data.train_ids, base.sampling, base.batch_size, base.num_steps,
                               base.seed, 0).num_batches
        total = base.steps if base.steps is not None else per_epoch * (base.total_epochs() or 1)
        every = max(1, total // 10)
        if every < per_epoch or base.steps is not None:
            base = base.replace(val_every=every)
            notices.append(f"validating every {every} steps for the pruner (set --val-every)")
    space.check(base)
    if search == "grid":
        size = space.grid_size()
        trials = size if trials is None else min(trials, size)
    elif trials is None:
        trials = 20
    if trials <= 0:
        raise ConfigError(f"--trials must be a positive integer, got {trials}")
    return Plan(name, base, space, search, trials, prune, storage_url(name, storage), notices)


# ----------------------------------------------------------------------------------------------
class _Live:
    """A trial in flight on the client."""

    def __init__(self, trial, rd: RunDir, future):
        self.trial = trial
        self.number = trial.number
        self.rd = rd
        self.future = future
        self.attempt: str | None = None
        self.inbox = None
        self.worker: str | None = None
        self.attempts = 0
        self.bye = False
        self.done_at: float | None = None
        self.stop_sent = False
        self.log = EventWriter(rd.events_path)  # the trial's events, as the worker made them

    def write(self, event: dict) -> None:
        self.log.append(event)

    def close(self) -> None:
        self.log.close()


class Sweep:
    """Runs a Plan on a Cluster. ``run()`` returns the outcome: "done" or "interrupted"."""

    def __init__(self, plan: Plan, cluster=None, echo: Callable[[str], None] = print):
        self.plan = plan
        self.cluster = cluster   # set before run(); opening the study needs none
        self.echo = echo
        self.outbox = f"seqtui-sweep-{plan.name}-{uuid.uuid4().hex[:8]}"
        self.live: dict[int, _Live] = {}
        self.interrupted: str | None = None
        self._interrupt_deadline = 0.0
        self._corpus: tuple[str, bytes] | None = None
        self._last_contact = time.monotonic()
        self.study = None
        self.resumed = False

    # -- set-up -----------------------------------------------------------------------------------
    def _corpus_bytes(self) -> tuple[str, bytes]:
        """The corpus file's bytes and sha256 (sent to workers that do not hold it yet)."""
        if self._corpus is None:
            from seqtui.data.corpora import corpus_file, resolve_corpus

            data = corpus_file(resolve_corpus(self.plan.base.corpus)).read_bytes()
            self._corpus = (hashlib.sha256(data).hexdigest(), data)
        return self._corpus

    def open(self):
        from seqtui.sweep.study import open_study

        p = self.plan
        self.study, self.resumed = open_study(p.name, p.storage, p.search, p.space, p.base.seed,
                                              p.prune, p.trials, p.meta())
        return self.study

    def pending(self) -> int:
        """Trials still to run: unfinished ones plus those not asked for yet."""
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        unfinished = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        return unfinished + max(0, self.plan.trials - len(trials))

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> str:
        from distributed import Queue

        if self.study is None:
            self.open()
        self.client = self.cluster.client
        self.out = Queue(self.outbox)
        self._corpus_bytes()
        todo = self._recover()
        asked = len(self.study.get_trials(deepcopy=False))
        old = self._install_signals()
        try:
            slots, next_slots = self.cluster.slots(), time.monotonic() + 2.0
            waiting_said = False
            while True:
                self._pump()
                self._reap()
                self._stop_requested()
                if self.interrupted:
                    if not self.live or time.monotonic() > self._interrupt_deadline:
                        break
                    continue
                if time.monotonic() > next_slots:
                    slots, next_slots = self.cluster.slots(), time.monotonic() + 2.0
                if slots == 0 and not waiting_said:
                    self.echo("waiting for Dask workers to join the scheduler…")
                    waiting_said = True
                while len(self.live) < slots and (todo or asked < self.plan.trials):
                    if todo:
                        self._start(*todo.pop(0))
                    else:
                        asked += 1
                        self._start(self.study.ask(self.plan.space.distributions()), None)
                if not self.live and not todo and asked >= self.plan.trials:
                    break
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            for live in list(self.live.values()):  # a second Ctrl-C: leave them resumable
                self._abandon(live)
        return "interrupted" if self.interrupted else "done"

    def _install_signals(self) -> dict:
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread (tests): no handler
                pass
        return old

    def _on_signal(self, signum, frame) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupt("interrupted" if signum == signal.SIGINT else "SIGTERM")

    def interrupt(self, reason: str = "interrupted") -> None:
        """Ask every running trial to checkpoint and stop; start no new ones."""
        if self.interrupted:
            return
        self.interrupted = reason
        self._interrupt_deadline = time.monotonic() + STOP_TIMEOUT
        n = len(self.live)
        if n:
            self.echo(f"stopping {n} running trial{'s' * (n != 1)} (they checkpoint; "
                      "run the same command again to resume)…")
        for live in list(self.live.values()):
            self._stop(live, "interrupted")

    def _stop_requested(self) -> None:
        """`seqtui runs stop TRIAL` (a request file in its run dir): stop that trial alone."""
        for live in list(self.live.values()):
            if live.rd.take_stop_request() and not live.stop_sent:
                self.echo(f"trial {live.number} ({live.rd.name}): stop requested")
                self._stop(live, STOP_REQUESTED)

    def _stop(self, live: _Live, reason: str) -> None:
        if live.stop_sent:
            return
        live.stop_sent = True
        if live.inbox is not None:
            try:
                live.inbox.put({"kind": "stop", "reason": reason})
            except Exception:
                pass
        else:
            live.future.cancel()

    # -- trials -------------------------------------------------------------------------------------
    def _recover(self) -> list[tuple[Any, RunDir | None]]:
        """Trials left RUNNING by an earlier client (Ctrl-C, a crash): finish their bookkeeping
        from their run directory, or resume them."""
        from optuna.trial import Trial, TrialState

        todo = []
        for ft in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            trial = Trial(self.study, ft._trial_id)
            path = ft.user_attrs.get("path")
            rd = RunDir(path) if path and RunDir(path).is_run() else None
            if rd is not None:
                info = rd.info()
                if info.status == "running":
                    raise RunError(f"trial {ft.number} ({rd.name}) is running in another process "
                                   f"(pid {info.pid}); is this sweep already running?")
                if info.status in ("finished", "failed") or info.reason == "pruned":
                    self._record(trial, rd, info.status if info.reason != "pruned" else "pruned",
                                 info.reason, None)
                    continue
            todo.append((trial, rd))
        if todo:
            self.echo(f"resuming {len(todo)} unfinished trial{'s' * (len(todo) != 1)} of sweep "
                      f"{self.plan.name}")
        return todo

    def _run_config(self, trial) -> RunConfig:
        cfg = space_mod.apply(self.plan.base, dict(trial.params))
        return cfg.replace(sweep=self.plan.name, trial=trial.number)

    def _start(self, trial, rd: RunDir | None) -> None:
        from seqtui.sweep.trial import run_trial

        if rd is None:
            try:
                rd = self._create(trial)
            except SeqtuiError as exc:
                trial.set_user_attr("error", str(exc))
                self._tell(trial, "failed")
                self.echo(f"trial {trial.number} failed before it started: {exc}")
                return
        rd.write_pid(os.getpid())
        future = self.client.submit(run_trial, self.outbox, trial.number, rd.name,
                                    key=f"seqtui-trial-{rd.name}-{uuid.uuid4().hex[:8]}",
                                    pure=False)
        self.live[trial.number] = _Live(trial, rd, future)

    def _create(self, trial) -> RunDir:
        from seqtui.engine.runs import start_run

        cfg = self._run_config(trial)
        base_name = f"{self.plan.name}-t{trial.number}"
        for i in range(1, 100):
            name = base_name if i == 1 else f"{base_name}-{i}"
            try:
                rd = start_run(cfg, name=name, detach=False)
                break
            except RunError as exc:
                if "already exists" not in str(exc):
                    raise
        else:  # pragma: no cover
            raise RunError(f"too many runs named {base_name}-N")
        trial.set_user_attr("run", rd.name)
        trial.set_user_attr("path", str(rd.path))
        return rd

    # -- messages from workers ----------------------------------------------------------------------
    def _pump(self, timeout: float = POLL_SECONDS) -> int:
        """Handle what the workers sent (a non-blocking read: a blocking one with a timeout makes
        the scheduler log a traceback every time nothing arrives)."""
        try:
            msgs = self.out.get(batch=True) or []
            self._last_contact = time.monotonic()
        except Exception as exc:
            if time.monotonic() - self._last_contact > LOST_SCHEDULER_SECONDS:
                from seqtui.sweep.cluster import ClusterError

                raise ClusterError(f"lost the Dask scheduler at {self.cluster.address} "
                                   f"({type(exc).__name__}); unfinished trials resume when the "
                                   "same command runs again") from None
            msgs = []
        if not msgs:
            time.sleep(timeout)
            return 0
        for msg in msgs:
            try:
                self._dispatch(msg)
            except SeqtuiError as exc:
                self.echo(f"warning: {exc}")
        return len(msgs)

    def _dispatch(self, msg: dict) -> None:
        from distributed import Queue

        live = self.live.get(msg.get("trial"))
        kind = msg.get("kind")
        if kind == "hello":
            inbox = Queue(msg["inbox"])
            if live is None or live.done_at is not None:
                inbox.put({"kind": "stop", "reason": "superseded"})
                return
            if live.attempt is not None and live.attempt != msg["attempt"]:
                step = self._latest_step(live.rd)
                self._notice(live, f"worker {live.worker} was lost; trial {live.number} continues "
                                   f"on {msg['worker']} from step {step}")
                self.echo(f"trial {live.number}: worker {live.worker} lost; re-running on "
                          f"{msg['worker']} from step {step}")
                try:
                    live.inbox.put({"kind": "stop", "reason": "superseded"})
                except Exception:
                    pass
            live.attempt, live.inbox, live.worker = msg["attempt"], inbox, msg["worker"]
            live.attempts += 1
            live.bye = False
            if self.interrupted:
                live.stop_sent = True
                inbox.put({"kind": "stop", "reason": "interrupted"})
                return
            inbox.put(self._setup(live, msg))
            return
        if live is None or msg.get("attempt") != live.attempt:
            return  # a superseded attempt, or a trial already recorded
        if kind == "events":
            for event in msg["events"]:
                self._event(live, event)
        elif kind == "checkpoint":
            self._checkpoint(live, msg)
        elif kind == "bye":
            live.bye = True

    def _setup(self, live: _Live, hello: dict) -> dict[str, Any]:
        sha, data = self._corpus_bytes()
        checkpoints = {}
        for kind in ("latest", "best"):
            st, meta = live.rd.checkpoint(kind), live.rd.checkpoint_meta_path(kind)
            if st.is_file() and meta.is_file():
                checkpoints[kind] = {"safetensors": st.read_bytes(), "json": meta.read_bytes()}
        config = live.rd.config_dict()
        if self.plan.base.threads is None:  # the cluster's sizing (None: the worker shares its cores)
            config["threads"] = self.cluster.threads_per_trial
        return {"kind": "setup", "config": config, "corpus_sha": sha,
                "corpus": None if sha in hello.get("corpora", ()) else data,
                "resume_from": checkpoints, "prune": self.plan.prune}

    def _event(self, live: _Live, event: dict) -> None:
        kind = event.get("type")
        if kind == "start":
            event = dict(event, run=live.rd.name)
            cfg = dict(event.get("config") or {})
            local = live.rd.config_dict()
            if cfg:
                for key in ("fingerprint", "vocab_size", "seqtui_version", "threads"):
                    if key in cfg:
                        local[key] = cfg[key]
                live.rd.write_config(local)
                cfg["corpus"] = local.get("corpus", cfg.get("corpus"))
                event["config"] = cfg
        elif kind == "checkpoint" and event.get("kind") in ("latest", "best"):
            event = dict(event, path=str(live.rd.checkpoint(event["kind"])))
        live.write(event)
        if kind == "val" and self.plan.prune and live.inbox is not None:
            self._verdict(live, event)

    def _verdict(self, live: _Live, event: dict) -> None:
        ppl, step = event.get("ppl"), int(event.get("step", 0))
        prune = False
        if not self.interrupted:
            if not isinstance(ppl, (int, float)) or not math.isfinite(ppl):
                prune = True
            else:
                with warnings.catch_warnings():  # a resumed trial reports its steps again
                    warnings.simplefilter("ignore")
                    live.trial.report(float(ppl), step)
                prune = bool(live.trial.should_prune())
        live.inbox.put({"kind": "verdict", "step": event.get("step"), "prune": prune})

    def _checkpoint(self, live: _Live, msg: dict) -> None:
        kind = msg.get("ckpt")
        if kind not in ("latest", "best"):
            return
        rd = live.rd
        rd.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(rd.checkpoint(kind), msg["safetensors"])
        atomic_write(rd.checkpoint_meta_path(kind), msg["json"])

    def _notice(self, live: _Live, message: str) -> None:
        from seqtui.engine.events import encode_event

        live.write(json.loads(encode_event("notice", {"message": message})))

    @staticmethod
    def _latest_step(rd: RunDir) -> int:
        meta = rd.checkpoint_meta("latest") or {}
        step = meta.get("step")
        return int(step) if isinstance(step, int) else 0

    # -- outcomes ---------------------------------------------------------------------------------
    def _reap(self) -> None:
        for live in list(self.live.values()):
            fut = live.future
            if not fut.done():
                continue
            if live.done_at is None:
                live.done_at = time.monotonic()
            status = fut.status
            if status == "finished":
                result = fut.result()
                if result.get("attempt") == live.attempt and not live.bye \
                        and time.monotonic() - live.done_at < BYE_TIMEOUT:
                    continue  # its last messages are still on the way
                self._finish(live, result, None)
            elif status == "cancelled":
                self._finish(live, None, "cancelled")
            else:
                exc = fut.exception()
                self._finish(live, None, _describe(exc))

    def _finish(self, live: _Live, result: dict | None, error: str | None) -> None:
        del self.live[live.number]
        live.close()
        rd, trial = live.rd, live.trial
        rd.clear_pid()
        if live.worker:
            trial.set_user_attr("worker", live.worker)
        if error == "cancelled" and self.interrupted:
            self.echo(f"trial {live.number} ({rd.name}) stopped before it started")
            return  # RUNNING in the study: the next run of the command starts it
        if result is None:
            self._failed_run(rd, error or "lost")
            self._record(trial, rd, "failed", "error", error)
            return
        status, reason = result.get("status"), result.get("reason")
        if status == "lost":
            self._failed_run(rd, result.get("error") or "lost")
            self._record(trial, rd, "failed", "error", result.get("error"))
            return
        if status == "stopped" and reason == "pruned":
            self._record(trial, rd, "pruned", reason, None)
        elif status == "stopped" and self.interrupted:
            self.echo(f"trial {live.number} ({rd.name}) stopped at step {result.get('step')}; "
                      "resumable")
            return
        elif status == "stopped" and reason == STOP_REQUESTED:  # out of the search, not resumed
            self._record(trial, rd, "failed", reason, "stopped by `seqtui runs stop`")
        elif status == "stopped":
            self._record(trial, rd, "failed", reason, f"stopped: {reason}")
        else:
            self._record(trial, rd, status or "failed", reason, result.get("error"))

    def _failed_run(self, rd: RunDir, message: str) -> None:
        """The worker could not write an `end` (it died): the client does, so the run is failed."""
        info = rd.info()
        if info.status in ("finished", "failed"):
            return
        rd.append_event("error", message=message)
        rd.append_event("end", step=info.last_step, reason="error", status="failed")

    def _record(self, trial, rd: RunDir | None, status: str, reason: str | None,
                error: str | None) -> None:
        """Tell the study how a trial ended and say it in one line."""
        best = None
        if rd is not None:
            info = rd.info()
            best = info.best_val_ppl
            tps, secs = trial_timing(rd.events())
            for key, value in (("tokens_per_s", tps), ("seconds", secs)):
                if value is not None:
                    trial.set_user_attr(key, value)
        trial.set_user_attr("status", status)
        if reason:
            trial.set_user_attr("reason", reason)
        if error:
            trial.set_user_attr("error", error)
        if status == "finished" and (best is None or not math.isfinite(best)):
            status, error = "failed", "no validation perplexity"
            trial.set_user_attr("error", error)
        self._tell(trial, status, best)
        params = " ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
        what = {"finished": f"val ppl {best:.3f}" if best is not None else "",
                "pruned": f"pruned at step {rd.info().last_step if rd else '?'}",
                "failed": f"failed: {error or reason}"}.get(status, status)
        self.echo(f"trial {trial.number} {what}  ({params})")

    def _tell(self, trial, status: str, value: float | None = None) -> None:
        from optuna.trial import TrialState

        if status == "finished":
            self.study.tell(trial, value, skip_if_finished=True)
        else:
            state = TrialState.PRUNED if status == "pruned" else TrialState.FAIL
            self.study.tell(trial, state=state, skip_if_finished=True)

    def _abandon(self, live: _Live) -> None:
        """Leave a trial RUNNING in the study (resumable); release its worker task."""
        self.live.pop(live.number, None)
        live.close()
        live.rd.clear_pid()
        try:
            live.future.cancel()
        except Exception:
            pass


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "lost"
    name = type(exc).__name__
    if name == "KilledWorker":
        return "its worker died repeatedly (KilledWorker)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{name}: {text}"[:300] if text else name


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
