"""A series run's training process (issue 9): the τ-window models of ``seqtui.models.series``
trained as a run — config, events, checkpoints, signals and exact resume, like the text trainer.

Pipeline, top to bottom (``SeriesTrainer.run``): load the series and cut the windows
(``prepare_series``, also the preflight of ``start_series_run``), build the model and optimizer,
restore ``latest`` if there is one, emit ``start``, compile, then ``models.series.fit`` epoch by
epoch. After every epoch: an ``epoch`` and a ``val`` event (1-step MSE, original scale), ``best``
saved when the validation MSE improves, ``latest`` saved at most every CHECKPOINT_SECONDS (and
always at the end or on a stop). At the end the best (else latest) checkpoint is evaluated —
1-step and k-step predictions over the whole series, MSE per k on the training and validation
targets — into the run's predictions file (``RunDir.write_predictions``) and a ``kstep`` event.

Resume is exact at an epoch boundary: a checkpoint holds the weights, the optimizer moments
(``optim.*``) and the epochs completed, and ``fit`` draws epoch e's order from (seed, e). A
SIGINT/SIGTERM (SIGHUP in the foreground) mid-epoch abandons that epoch and saves the state of the
last completed one; resuming re-runs the abandoned epoch and ends with the same numbers as an
uninterrupted run. A run whose directory is deleted or replaced stops within seconds.

Checkpoint metadata (``meta``): ``run_kind`` "series", ``config`` (the config file's dict),
``fingerprint`` (sha256 of the values), ``step``, ``epoch``, ``best_val_mse``, ``best_epoch``,
``train_mse``, ``val_mse``, and what ``models.series.checkpoint_state`` writes (``version``,
``model``, ``mean``, ``std``, ``optimizer`` scalars).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import seqtui
from seqtui.engine.checkpoint import load_checkpoint, save_checkpoint
from seqtui.engine.rundir import RunDir
from seqtui.engine.lifecycle import DIR_GONE, Listener, RunProcess
from seqtui.errors import CheckpointError, ConfigError, RunError

SHAPE_KEYS = ("model", "tau", "hidden", "ridge", "optimizer", "split", "standardize", "seed", "batch")
CHECKPOINT_SECONDS = 5.0    # `latest` is written at most this often between epochs (always at the end)
PROGRESS_EVERY = 20         # steps between `progress` events (at least; at most ~50 per epoch)


# ---------------------------------------------------------------------------------------------
# Data and preflight
@dataclass
class PreparedSeries:
    series: Any        # seqtui.data.series.Series
    windows: Any       # seqtui.models.series.Windows
    fingerprint: str   # sha256 of the values (float64 bytes)


def fingerprint_of(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


def prepare_series(cfg, series=None) -> PreparedSeries:
    """Load the series (unless given) and cut the windows exactly as training will; one-line
    CorpusError/ConfigError when it is too short, constant, or a setting is bad."""
    from seqtui.data.series import load_series
    from seqtui.models.series import make_windows

    cfg.validate()
    s = series if series is not None else load_series(cfg.source)
    batch = 1 if cfg.model == "linear" else cfg.batch
    w = make_windows(s.values, cfg.tau, cfg.split, cfg.standardize, batch=batch, name=s.name)
    return PreparedSeries(s, w, fingerprint_of(s.values))


def resolve_source(series) -> str:
    """The source as the worker will find it (its working directory is the run directory): a
    name as given, a file as an absolute path (with its column)."""
    if series.info.kind != "path":
        return series.name
    head = series.info.source
    tail = series.name[len(head):] if series.name.startswith(head) else ""
    return str(Path(head).expanduser().resolve()) + tail


def series_preflight(cfg, series=None):
    """Everything that can refuse a series run before its directory exists → (config to store,
    the loaded series). Builds the model once (bad hidden/ridge), loads and windows the data."""
    import dataclasses

    from seqtui.models.series import make_model

    cfg = dataclasses.replace(cfg)  # the caller's config stays as given
    prepared = prepare_series(cfg, series)
    make_model(cfg.model, cfg.tau, hidden=cfg.hidden, seed=cfg.seed, ridge=cfg.ridge)
    cfg.source = resolve_source(prepared.series)
    return cfg, prepared.series


def config_file_dict(cfg) -> dict[str, Any]:
    """What a series run's config file holds."""
    return {"kind": "series", **cfg.to_dict()}


# ---------------------------------------------------------------------------------------------
class _Stop(Exception):
    """Raised from fit's step callback to abandon the current epoch (a signal, a vanished dir)."""


class SeriesTrainer(RunProcess):
    """Owns one series run's training process: data, model, optimizer, events and signals."""

    checkpoint_seconds = CHECKPOINT_SECONDS
    progress_every: int | None = None   # None: max(PROGRESS_EVERY, steps per epoch // 50)

    def __init__(self, run_dir, listeners: tuple[Listener, ...] = (), detached: bool = False,
                 series=None):
        from seqtui.models.series import SeriesRunConfig

        super().__init__(run_dir, listeners, detached)
        cfg = self.rundir.config()
        if not isinstance(cfg, SeriesRunConfig):
            raise RunError(f"run {self.rundir.name!r} is not a series run")
        self.cfg = cfg
        self.config_dict = config_file_dict(cfg)
        self._series = series
        self.step = 0
        self.epoch = 0
        self.best_val_mse: float | None = None
        self.best_epoch: int | None = None
        self.last: Any = None            # the last EpochInfo
        self._restored_mse: tuple = (None, None)   # (train, val) MSE of the restored checkpoint
        self.result: dict[str, Any] | None = None   # the evaluation's metadata, when finished
        self._last_save = time.monotonic()
        self._snapshot: tuple | None = None   # (tensors, optim arrays, meta) of the last epoch boundary
        self._saved_epoch = -1
        self._interval = [0.0, 0, time.perf_counter()]   # mse sum, steps, start time
        self.data: PreparedSeries | None = None
        self.model = None
        self.opt = None

    # -- the RunProcess hooks -------------------------------------------------------------------
    def _step(self) -> int:
        return self.step

    # -- the run ----------------------------------------------------------------------------------
    def _train(self) -> str:
        from seqtui.models.series import fit, make_model, make_optimizer

        cfg = self.cfg
        self.data = prepare_series(cfg, self._series)
        w = self.data.windows
        linear = cfg.model == "linear"
        self.model = make_model(cfg.model, cfg.tau, hidden=cfg.hidden, seed=cfg.seed, ridge=cfg.ridge)
        self.opt = None if linear else make_optimizer(cfg.optimizer, cfg.lr)
        resumed = self._restore()
        steps_per_epoch = 1 if linear else math.ceil(w.n_train / cfg.batch)
        total = 1 if linear else cfg.epochs * steps_per_epoch
        if self.progress_every is None:
            self.progress_every = max(PROGRESS_EVERY, steps_per_epoch // 50)
        self._emit("start", run=self.run_dir.name, pid=os.getpid(), step=self.step, total_steps=total,
                   steps_per_epoch=steps_per_epoch, epoch=self.epoch, resumed=resumed,
                   config=self.config_dict, kind="series", train_windows=int(w.n_train),
                   val_windows=int(w.n_val), num_params=int(self.model.num_params))
        if self.stop_reason is None and not linear and self.epoch < cfg.epochs:
            self._warm_up(w)
        if self._snapshot is None:
            self._take_snapshot()   # epoch 0 (or the restored one): what a stop before epoch 1 saves
            self._saved_epoch = self.epoch if resumed else -1
        self._interval = [0.0, 0, time.perf_counter()]
        stopped = self.stop_reason is not None
        if not stopped and self.epoch < (1 if linear else cfg.epochs):  # linear: one closed-form solve
            try:
                res = fit(self.model, w, epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr,
                          optimizer=self.opt if self.opt is not None else cfg.optimizer, seed=cfg.seed,
                          clip=cfg.clip, start_epoch=self.epoch, on_epoch=self._on_epoch,
                          on_step=None if linear else self._on_step)
                stopped = res.stopped
            except _Stop:
                stopped = True
        if stopped or self.stop_reason is not None:
            return self._stop()
        return self._finish()

    def _warm_up(self, w) -> None:
        """Compile (or load from cache) the model's kernels before the first timed step."""
        self._emit("compile", state="start")
        t0 = time.perf_counter()
        n = min(2, w.n_train)
        grads = self.model.grads.copy()
        self.model.loss_and_grad(w.X[:n], w.y[:n])
        self.model.grads[:] = grads
        self.model.predict(w.X[:1])
        type(self.opt)(self.cfg.lr).step(self.model.params.copy(), self.model.grads.copy())
        self._emit("compile", state="done", seconds=time.perf_counter() - t0)

    def _on_step(self, step: int, mse: float) -> None:
        iv = self._interval
        iv[0] += mse
        iv[1] += 1
        self.step = step
        if step % self.progress_every == 0:
            now = time.perf_counter()
            spe = max(1, math.ceil(self.data.windows.n_train / self.cfg.batch))
            done_in_epoch = step - self.epoch * spe
            self._emit("progress", step=step, epoch=self.epoch + min(1.0, done_in_epoch / spe),
                       mse=iv[0] / iv[1], lr=float(self.opt.lr),
                       windows_per_s=iv[1] * self.cfg.batch / max(now - iv[2], 1e-9))
            self._interval = [0.0, 0, now]
        self._check_run_dir()
        if self.stop_reason is not None:
            raise _Stop

    def _on_epoch(self, info) -> bool:
        cfg = self.cfg
        linear = cfg.model == "linear"
        self.last = info
        self.epoch = info.epoch
        self.step = 1 if linear else info.steps
        self._emit("epoch", step=self.step, epoch=info.epoch, train_loss=info.train_loss,
                   train_mse=info.train_mse, val_mse=info.val_mse, seconds=info.seconds,
                   lr=float(info.lr))
        val = info.val_mse
        improved = math.isfinite(val) and (self.best_val_mse is None or val < self.best_val_mse)
        if improved:
            self.best_val_mse, self.best_epoch = float(val), info.epoch
        self._emit("val", step=self.step, epoch=info.epoch, mse=val, train_mse=info.train_mse,
                   best_mse=self.best_val_mse, windows=int(self.data.windows.n_val))
        self._take_snapshot()
        self._next_dir_check = 0.0
        self._check_run_dir()  # never write checkpoints into a directory that was removed
        if self.stop_reason == DIR_GONE:
            return True
        if improved:
            self._save("best")
        if time.monotonic() - self._last_save >= self.checkpoint_seconds:
            self._save("latest")
        return self.stop_reason is not None

    def _finish(self) -> str:
        if self._saved_epoch != self.epoch:
            self._save("latest")
        meta = write_evaluation(self.rundir, self.cfg.ks, series=self.data)
        self.result = meta
        self._emit("kstep", step=self.step, mse=meta["kstep_mse"], train_mse=meta["kstep_train_mse"],
                   checkpoint=meta["checkpoint"])
        self._emit("end", sync=True, step=self.step, reason="finished", status="finished",
                   train_mse=meta["train_mse"], val_mse=meta["val_mse"])
        return "finished"

    def _stop(self) -> str:
        if self.stop_reason != DIR_GONE and self._saved_epoch != self.epoch:
            self._save("latest")
        self.step = int(self._snapshot[2]["step"])  # an abandoned epoch's steps are re-run on resume
        self._end(self.stop_reason or "interrupted", "stopped")
        return "stopped"

    # -- checkpoints --------------------------------------------------------------------------------
    def _take_snapshot(self) -> None:
        """The state at this epoch boundary (copies): what a stop before the next one saves."""
        from seqtui.models.series import checkpoint_state

        last = self.last
        train_mse, val_mse = self._restored_mse if last is None else (last.train_mse, last.val_mse)
        extra_meta = {
            "run_kind": "series", "config": self.config_dict, "fingerprint": self.data.fingerprint,
            "seqtui_version": seqtui.__version__, "step": self.step,
            "best_val_mse": _finite(self.best_val_mse), "best_epoch": self.best_epoch,
            "train_mse": None if train_mse is None else _finite(float(train_mse)),
            "val_mse": None if val_mse is None else _finite(float(val_mse)),
        }
        self.model.mean, self.model.std = self.data.windows.mean, self.data.windows.std
        tensors, arrays, meta = checkpoint_state(self.model, self.opt, epoch=self.epoch, extra_meta=extra_meta)
        self._snapshot = (tensors, {k: np.array(v, copy=True) for k, v in arrays.items()}, meta)

    def _save(self, kind: str) -> None:
        tensors, arrays, meta = self._snapshot
        meta = dict(meta, time=time.time())
        path = save_checkpoint(self.rundir.checkpoints_dir, kind, tensors, meta, extra=arrays)
        if kind == "latest":
            self._last_save = time.monotonic()
            self._saved_epoch = int(meta["epoch"])
        self._emit("checkpoint", step=int(meta["step"]), kind=kind, path=str(path))

    def _restore(self) -> bool:
        """Load ``latest`` if there is one (model, optimizer, epochs completed, best so far)."""
        path = self.rundir.checkpoint("latest")
        if not path.exists():
            return False
        model, opt, epoch, meta = load_series_checkpoint(path, self.cfg, self.data.fingerprint)
        self.model = model
        if self.opt is not None:
            if opt is None:
                raise CheckpointError(f"checkpoint {path} has no optimizer state")
            self.opt = opt
        self.epoch = epoch
        self.step = int(meta.get("step") or 0)
        best = meta.get("best_val_mse")
        self.best_val_mse = float(best) if isinstance(best, (int, float)) else None
        self.best_epoch = meta.get("best_epoch")
        self._restored_mse = (meta.get("train_mse"), meta.get("val_mse"))
        self._take_snapshot()
        self._saved_epoch = epoch
        return True


def _finite(x):
    return x if x is None or math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------
# Loading and evaluating a series run (the CLI's `series predict` and the app)
def load_series_checkpoint(path, cfg=None, fingerprint: str | None = None):
    """A series checkpoint → (model, optimizer or None, epochs completed, metadata). With ``cfg``
    its model settings must match the run's config; with ``fingerprint`` the data must be the same."""
    from seqtui.models.series import restore_state

    tensors, meta = load_checkpoint(path, expect="series")
    extra = meta.pop("extra_tensors", {})
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise ConfigError(f"the series of this run changed since checkpoint {path} was written; "
                          "start a new run")
    if cfg is not None:
        saved = {k: v for k, v in (meta.get("config") or {}).items() if k != "kind"}
        mine = cfg.to_dict()
        for key in SHAPE_KEYS:
            if saved.get(key) != mine.get(key):
                raise CheckpointError(f"checkpoint {path} has {key}={saved.get(key)!r} but the run "
                                      f"config says {mine.get(key)!r}")
    model, opt, epoch = restore_state(tensors, extra, meta)
    m = getattr(opt, "m", None)
    if m is not None and (m.shape != model.params.shape or m.dtype != model.params.dtype):
        raise CheckpointError(f"checkpoint {path}: optimizer moments {m.dtype} {m.shape} do not match the "
                              f"model's {model.num_params} parameters")
    return model, opt, epoch, meta


def _clean(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def evaluate_run(run: RunDir, ks=None, kind: str | None = None, series: PreparedSeries | None = None):
    """Evaluate a series run's best (else latest; or ``kind``) checkpoint on its data →
    (Evaluation, PreparedSeries, model, checkpoint metadata, checkpoint kind)."""
    from seqtui.models.series import SeriesRunConfig, evaluate, parse_ks

    rd = run if isinstance(run, RunDir) else RunDir(run)
    cfg = rd.config()
    if not isinstance(cfg, SeriesRunConfig):
        raise RunError(f"run {rd.name!r} is not a series run (see `seqtui generate` / `seqtui eval`)")
    ks = cfg.ks if ks is None else parse_ks(ks)
    data = series if series is not None else prepare_series(cfg)
    path = rd.best_or_latest(kind)
    used = path.name.split(".")[0]
    model, _, _, meta = load_series_checkpoint(path, cfg, data.fingerprint)
    return evaluate(model, data.windows, ks), data, model, meta, used


def write_evaluation(run: RunDir, ks=None, kind: str | None = None,
                     series: PreparedSeries | None = None) -> dict[str, Any]:
    """Evaluate (``evaluate_run``) and write the run's predictions file; returns its metadata:
    ``train_mse``, ``val_mse`` (1-step), ``kstep_mse``/``kstep_train_mse`` ({"k": MSE} on the
    validation/training targets), ``kstep_counts``, ``ks``, ``boundary``, ``tau``, ``n_train``,
    ``n_val``, ``mean``, ``std``, ``source``, ``model``, ``checkpoint`` (best|latest), ``epoch``,
    ``step``, ``num_params``, ``coef`` (linear: τ weights then intercept, original scale)."""
    rd = run if isinstance(run, RunDir) else RunDir(run)
    ev, data, model, ck_meta, used = evaluate_run(rd, ks, kind, series)
    w = data.windows
    d = ev.to_json()
    meta: dict[str, Any] = {
        "run": rd.name, "source": w.name, "model": model.kind, "tau": w.tau, "ks": sorted(ev.kstep),
        "boundary": w.boundary, "n_train": w.n_train, "n_val": w.n_val, "length": int(w.values.size),
        "mean": w.mean, "std": w.std, "train_mse": d["train_mse"], "val_mse": d["val_mse"],
        "kstep_mse": d["kstep_mse"], "kstep_train_mse": d["kstep_train_mse"],
        "kstep_counts": {str(k): {"train": v["n_train"], "val": v["n_val"]} for k, v in ev.kstep_mse.items()},
        "checkpoint": used, "epoch": ck_meta.get("epoch"), "step": ck_meta.get("step"),
        "best_epoch": ck_meta.get("best_epoch"), "num_params": int(model.num_params),
        "fingerprint": data.fingerprint, "time": time.time(),
    }
    if model.kind == "linear":
        coef, c = model.coefficients()
        meta["coef"] = [float(v) for v in coef] + [float(c)]
    arrays = {"values": w.values, "one_step": ev.one_step}
    for k, a in ev.kstep.items():
        arrays[f"kstep.{k}"] = a
    if data.series.time is not None and len(data.series.time) == w.values.size:
        arrays["time"] = np.asarray(data.series.time, dtype=np.float64)
    meta = _clean(meta)
    rd.write_predictions(arrays, meta)
    return meta


def read_predictions(run: RunDir) -> dict[str, Any]:
    """A series run's predictions for a screen: ``values``, ``time`` (or None), ``one_step`` and
    ``kstep`` {k: array} (float64, NaN where undefined) plus the metadata of ``write_evaluation``."""
    rd = run if isinstance(run, RunDir) else RunDir(run)
    arrays, meta = rd.read_predictions()
    kstep = {int(name.split(".", 1)[1]): a for name, a in arrays.items() if name.startswith("kstep.")}
    return {**meta, "values": arrays.get("values"), "time": arrays.get("time"),
            "one_step": arrays.get("one_step"), "kstep": dict(sorted(kstep.items()))}


def epoch_history(run: RunDir) -> list[dict]:
    """Per epoch (deduplicated across resumes, last wins): epoch, step, train_loss, train_mse,
    val_mse, seconds, lr — from the run's ``epoch`` events."""
    rd = run if isinstance(run, RunDir) else RunDir(run)
    rows: dict[int, dict] = {}
    for e in rd.events():
        if e.get("type") == "epoch" and isinstance(e.get("epoch"), int):
            rows[e["epoch"]] = {k: e.get(k) for k in ("epoch", "step", "train_loss", "train_mse", "val_mse",
                                                     "seconds", "lr")}
    return [rows[k] for k in sorted(rows)]


def series_summary(run: RunDir, predictions: bool = False) -> dict[str, Any]:
    """One object describing a series run's result (what `seqtui series fit --json` prints): the
    predictions metadata (MSEs, kstep, coef), ``run``, ``status``, ``epochs`` (history), ``config``;
    with ``predictions`` also ``values``, ``one_step`` and ``kstep`` as lists (NaN → None)."""
    rd = run if isinstance(run, RunDir) else RunDir(run)
    info = rd.info()
    meta = rd.predictions_meta() or {}
    out = {"run": rd.name, "path": str(rd.path), "status": info.status, **meta,
           "epochs": epoch_history(rd), "config": info.config}
    seconds = [h.get("seconds") for h in out["epochs"] if isinstance(h.get("seconds"), (int, float))]
    out["seconds"] = float(sum(seconds))
    if predictions and meta:
        p = read_predictions(rd)
        out["values"] = _clean(p["values"].tolist())
        out["one_step"] = _clean(p["one_step"].tolist())
        out["kstep"] = {str(k): _clean(a.tolist()) for k, a in p["kstep"].items()}
    return out
