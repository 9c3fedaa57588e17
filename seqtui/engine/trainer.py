"""The one training loop, shared by `seqtui train` (foreground or detached) and the TUI.

Epochs of ``make_epoch(...).batch(i)``; random sampling resets the state per batch, sequential
carries it (detached) across batches. Per step: BPTT carry scales from an engine-owned RNG,
forward+backward, NaN/Inf check, clipping, the optimizer step. Everything that decides the next
loss — parameters, optimizer moments, RNG state, (epoch, batch index), the carried state, the
learning rate — goes into each checkpoint, so a resumed run continues bit-exactly.
SIGINT/SIGTERM/SIGHUP set a flag; the loop checkpoints at the next step boundary and ends. A run
whose directory is deleted or replaced while it trains stops within seconds.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from typing import Any

import numpy as np

import seqtui
from seqtui.engine.prepare import check_model_fits, prepare_data
from seqtui.engine.checkpoint import check_vocab, load_checkpoint, save_checkpoint
from seqtui.engine.config import RunConfig
from seqtui.engine.evaluate import evaluate_ids
from seqtui.engine.lifecycle import DIR_GONE, Listener, RunProcess
from seqtui.errors import CheckpointError, ConfigError, SeqtuiError, TrainingDiverged

SHAPE_KEYS = ("cell", "hidden", "layers", "tokens", "bpe_vocab", "preprocess", "min_freq", "dtype")
DIVERGED_HINT = "lower the learning rate or enable clipping (--clip 1)"
CLIP_WINDOW = 100               # steps over which the clip rate is reported
RNG_STREAM = 0xB977             # the engine's own RNG stream (BPTT draws), apart from init/batches
EXACT_TOTAL_LIMIT = 50_000_000  # windows beyond which the step total of random epochs is estimated
VAL_TOKENS_LIMIT = 2_000_000    # periodic validation reads at most this many held-out tokens
BASELINE_TOKENS_LIMIT = 20_000_000  # the n-gram baseline is fitted on at most this many tokens


def train_run(run_dir, listeners: tuple[Listener, ...] = ()) -> str:
    """Train the run in ``run_dir`` (resuming from its latest checkpoint); returns its final status."""
    return Trainer(run_dir, listeners).run()


class _Position:
    """Where training stands: what a checkpoint must hold beyond the weights."""

    def __init__(self, lr: float):
        self.step = 0
        self.epoch = 0            # current epoch (0-based)
        self.batch_index = 0      # next batch of the current epoch
        self.lr = lr
        self.best_val_ppl: float | None = None
        self.epoch_nll = 0.0      # sum of token NLL so far in this epoch
        self.epoch_tokens = 0
        self.epoch_seconds = 0.0
        self.last_train_ppl: float | None = None   # of the last completed epoch
        self.stale_validations = 0  # validations since the last new best (early stopping)
        self.clip_history: deque[bool] = deque(maxlen=CLIP_WINDOW)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "lr": self.lr, "best_val_ppl": _finite(self.best_val_ppl), "epoch_nll": self.epoch_nll,
            "epoch_tokens": self.epoch_tokens, "epoch_seconds": self.epoch_seconds,
            "last_train_ppl": _finite(self.last_train_ppl), "clip_history": list(self.clip_history),
            "stale_validations": self.stale_validations,
        }

    def load(self, d: dict[str, Any]) -> None:
        try:
            self.step, self.epoch = int(d["step"]), int(d["epoch"])
            self.batch_index, self.lr = int(d["batch_index"]), float(d["lr"])
            self.best_val_ppl = d.get("best_val_ppl")
            self.epoch_nll = float(d.get("epoch_nll", 0.0))
            self.epoch_tokens = int(d.get("epoch_tokens", 0))
            self.epoch_seconds = float(d.get("epoch_seconds", 0.0))
            self.last_train_ppl = d.get("last_train_ppl")
            self.stale_validations = int(d.get("stale_validations", 0))
            self.clip_history = deque((bool(c) for c in d.get("clip_history", ())), maxlen=CLIP_WINDOW)
        except (KeyError, TypeError, ValueError):
            raise CheckpointError("checkpoint metadata lacks the training position") from None


class Trainer(RunProcess):
    """Owns one run's training process: data, model, optimizer, RNG, events and signals.

    ``run()`` reads top to bottom: load the data, build the model, restore the checkpoint, emit
    ``start`` and the baseline, compile, then train epoch by epoch until the budget, a signal,
    divergence or a vanished run directory ends it.
    """

    def __init__(self, run_dir, listeners: tuple[Listener, ...] = (), detached: bool = False):
        super().__init__(run_dir, listeners, detached)
        self.cfg = self.rundir.config().validate()
        self.pos = _Position(self.cfg.lr)
        self._last_save = time.monotonic()
        self._saved_step = -1
        self._validated_step = -1
        self.early_stopped = False   # set by _validate when patience runs out
        self._baseline_due = False   # the n-gram baseline waits for the first progress event
        # set up by _setup(): the data, the model and what drives its updates
        self.data = None
        self.vocab = None
        self.model = None
        self.opt = None
        self.rng: np.random.Generator | None = None
        self.state: np.ndarray | None = None   # the carried state (sequential sampling)

    # -- the RunProcess hooks -------------------------------------------------------------------
    def _step(self) -> int:
        return self.pos.step

    def _end_fields(self) -> dict[str, Any]:
        return {"train_ppl": _finite(self.pos.last_train_ppl)}

    def _session(self):
        return self._compiling()

    @contextlib.contextmanager
    def _compiling(self):
        """Report each kernel Numba compiles (cache hits are silent), and hold the compile lock
        until the warm-up is done: a running ``seqtui warmup`` (or another trainer's warm-up) is
        waited for instead of compiling the same kernels twice. The lock is released after the
        warm-up (``_release_compile_lock``), so runs train side by side."""
        from seqtui.engine.warmup import Helper, compile_lock, watch_compiles

        self._compiled = 0
        # the backward pass, then the n-gram and sampling kernels, compile on the other core
        self._helper = Helper(self.cfg.cell, self.cfg.dtype)
        self._lock = contextlib.ExitStack()
        try:
            self._lock.enter_context(compile_lock(shared=False))
            with watch_compiles(self._on_compiled):
                yield
        finally:
            self._lock.close()
            self._helper.terminate()

    def _on_compiled(self, name: str, seconds: float) -> None:
        self._compiled += 1
        self._try_emit("compile", state="kernel", kernel=name, seconds=seconds, count=self._compiled)

    def _release_compile_lock(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()

    # -- the run, top to bottom -----------------------------------------------------------------
    def _train(self) -> str:
        from seqtui.data.batches import make_epoch

        self._setup()
        cfg, pos = self.cfg, self.pos
        resumed = self._saved_step >= 0
        epochs = cfg.total_epochs()
        first = make_epoch(self.data.train_ids, cfg.sampling, cfg.batch_size, cfg.num_steps,
                           cfg.seed, pos.epoch)
        self._emit("start", run=self.run_dir.name, pid=os.getpid(), step=pos.step,
                   total_steps=self._total_steps(first.num_batches, epochs),
                   steps_per_epoch=first.num_batches, train_tokens=int(len(self.data.train_ids)),
                   val_tokens=int(len(self.data.val_ids)) if self.data.val_batch else 0,
                   vocab_size=len(self.vocab), config=cfg.to_dict(), resumed=resumed,
                   epoch=pos.epoch)
        self._baseline_due = bool(self.data.val_batch and not resumed)  # after the first progress
        if self.stop_reason is None:  # a signal during data loading: stop without compiling
            self._warm_up(*first.batch(0))
        self._release_compile_lock()
        self.sampler = _Sampler(cfg, self.vocab,
                                self.data.val_ids if self.data.val_batch else self.data.train_ids)
        self._interval = _Interval()
        while not self._budget_spent(epochs) and self.stop_reason is None:
            eb = first if first.epoch == pos.epoch else make_epoch(
                self.data.train_ids, cfg.sampling, cfg.batch_size, cfg.num_steps, cfg.seed, pos.epoch)
            self._train_epoch(eb)
            if pos.batch_index == eb.num_batches:
                self._end_epoch(eb.num_batches)
        if self.stop_reason is not None:
            return self._stop()
        return self._finish()

    def _setup(self) -> None:
        """Data (validated), model, optimizer, RNG, then the checkpoint if there is one."""
        from seqtui.models.charmodel import CharModel
        from seqtui.models.optim import SGD, Adam

        self.data = prepare_data(self.cfg)
        ds = self.data.dataset
        cfg = self.cfg
        if cfg.fingerprint is not None and cfg.fingerprint != ds.fingerprint:
            raise ConfigError(f"corpus {cfg.corpus!r} changed since this run started; start a new run")
        if cfg.fingerprint is None or cfg.vocab_size is None or cfg.seqtui_version is None:
            self.cfg = cfg = cfg.replace(fingerprint=ds.fingerprint, vocab_size=len(ds.vocab),
                                         seqtui_version=seqtui.__version__)
            self.rundir.write_config(cfg.to_dict())
        self.vocab = ds.vocab
        from seqtui.data.stats import chars_per_token

        # bits per character compares char, word and BPE runs on one scale (None: not exact)
        self._val_cpt = chars_per_token(self.data.val_ids[:VAL_TOKENS_LIMIT], self.vocab)
        check_model_fits(cfg, len(self.vocab))
        threads = _threads(cfg.threads)
        if threads is not None and threads < cfg.threads:
            self._emit("notice", kind="threads", message=f"--threads {cfg.threads} is more than the "
                       f"{threads} cores this process may use; using {threads}")
        self.model = CharModel(cfg.model_config(), seed=cfg.seed, dtype=np.dtype(cfg.dtype),
                               init=cfg.init, threads=threads)
        self.opt = SGD(cfg.lr) if cfg.optimizer == "sgd" else Adam(cfg.lr)
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([cfg.seed, RNG_STREAM])))
        self.state = self._restore()

    def _train_epoch(self, eb) -> None:
        """Steps from the current batch to the end of the epoch, or until the budget or a stop."""
        from seqtui.models.bptt import carry_scale_for
        from seqtui.models.optim import clip_grad_norm

        cfg, pos, model = self.cfg, self.pos, self.model
        B, T = cfg.batch_size, cfg.num_steps
        if pos.batch_index == 0 or self.state is None:
            self.state = model.init_state(B)
        while pos.batch_index < eb.num_batches and not self._steps_done():
            self._check_run_dir()
            if self.stop_reason is not None:
                return
            t0 = time.perf_counter()
            X, Y = eb.batch(pos.batch_index)
            if cfg.sampling == "random":
                self.state = model.init_state(B)
            cs = carry_scale_for(cfg.bptt, T, k=cfg.bptt_k, p=cfg.bptt_p, rng=self.rng)
            stats = model.loss_and_grad(X, Y, self.state, cs)
            loss = float(stats.loss)
            if not stats.finite or not math.isfinite(loss) or not math.isfinite(_ppl(loss)):
                self._diverged("loss", loss)
            norm, clipped = clip_grad_norm(model.grads, cfg.clip if cfg.clip else math.inf,
                                           norm=stats.grad_norm)
            if not math.isfinite(norm):
                self._diverged("gradient norm", norm)
            self.opt.step(model.params, model.grads, lr=pos.lr)
            if cfg.sampling == "sequential":
                self.state = stats.state
            dt = time.perf_counter() - t0
            pos.step += 1
            pos.batch_index += 1
            pos.epoch_nll += loss * B * T
            pos.epoch_tokens += B * T
            pos.epoch_seconds += dt
            pos.clip_history.append(bool(clipped))
            self._interval.add(loss, dt)
            self._after_step(stats, eb.num_batches, norm, clipped)

    def _after_step(self, stats, num_batches: int, norm: float, clipped: bool) -> None:
        """The periodic events of a step: progress, gradient profile, sample, validation, checkpoint."""
        cfg, pos = self.cfg, self.pos
        step = pos.step
        if cfg.progress_every and step % cfg.progress_every == 0:
            mean, tps = self._interval.take(cfg.batch_size * cfg.num_steps)
            self._emit("progress", step=step, epoch=pos.epoch + pos.batch_index / num_batches,
                       tokens_per_s=tps, loss=mean, ppl=_ppl(mean), lr=pos.lr,
                       grad_norm=float(norm), clipped=bool(clipped),
                       clip_rate=sum(pos.clip_history) / len(pos.clip_history))
        if cfg.grad_profile_every and step % cfg.grad_profile_every == 0:
            self._emit("grad_profile", step=step, norms=np.asarray(stats.h_grad_norms).tolist(),
                       bptt=cfg.bptt_label())
        if cfg.sample_every and step % cfg.sample_every == 0:
            self.sampler.emit(self, self.model, step)
        if cfg.val_every and step % cfg.val_every == 0 and self.data.val_batch:
            self._validate(num_batches, carried=True)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            self._save("latest")
        if self._baseline_due and (not cfg.progress_every or step >= cfg.progress_every):
            self._baseline()  # after the first curve point: it does not wait for the n-gram kernels

    def _end_epoch(self, num_batches: int) -> None:
        pos = self.pos
        train_loss = pos.epoch_nll / max(pos.epoch_tokens, 1)
        pos.last_train_ppl = _ppl(train_loss)
        self._emit("epoch", step=pos.step, epoch=pos.epoch + 1, train_loss=train_loss,
                   train_ppl=pos.last_train_ppl, seconds=pos.epoch_seconds, lr=pos.lr)
        pos.epoch += 1
        pos.batch_index = 0
        pos.epoch_nll, pos.epoch_tokens, pos.epoch_seconds = 0.0, 0, 0.0
        pos.lr *= self.cfg.lr_decay
        self.state = None
        if self.data.val_batch:
            self._validate(num_batches, carried=False)
        if time.monotonic() - self._last_save >= self.cfg.checkpoint_seconds:
            self._save("latest")

    def _finish(self) -> str:
        """Validate once more if the last step was not validated (short --steps runs), save, end."""
        if self._baseline_due:
            self._baseline()
        if self.data.val_batch and self._validated_step != self.pos.step and not self.early_stopped:
            self._validate(1, carried=self.pos.batch_index > 0)
        self._save("latest")
        reason = "early-stopped" if self.early_stopped else "finished"
        self._emit("end", sync=True, step=self.pos.step, reason=reason, status="finished",
                   **self._end_fields())
        return "finished"

    def _stop(self) -> str:
        if self._saved_step != self.pos.step and self.stop_reason != DIR_GONE:
            self._save("latest")
        self._end(self.stop_reason or "interrupted", "stopped")
        return "stopped"

    # -- pieces -----------------------------------------------------------------------------------
    def _budget_spent(self, epochs: int | None) -> bool:
        return (epochs is not None and self.pos.epoch >= epochs) or self._steps_done()

    def _steps_done(self) -> bool:
        return self.early_stopped or (self.cfg.steps is not None and self.pos.step >= self.cfg.steps)

    def _total_steps(self, first_batches: int, epochs: int | None) -> int:
        from seqtui.data.batches import make_epoch

        cfg, train_ids = self.cfg, self.data.train_ids
        if epochs is None:
            return int(cfg.steps)
        if cfg.sampling == "sequential" or epochs * len(train_ids) / cfg.num_steps <= EXACT_TOTAL_LIMIT:
            return sum(make_epoch(train_ids, cfg.sampling, cfg.batch_size, cfg.num_steps, cfg.seed,
                                  e).num_batches for e in range(epochs))
        return epochs * first_batches  # an estimate for huge runs

    def _baseline(self, order: int = 3) -> None:
        self._baseline_due = False
        self._fit_baseline(order)

    def _fit_baseline(self, order: int) -> None:
        """The n-gram baseline's validation perplexity: a reference line for the curves (fitted
        on at most BASELINE_TOKENS_LIMIT training tokens, so huge corpora do not stall the start)."""
        from seqtui.models.ngram import baseline_perplexity

        train = self.data.train_ids[-BASELINE_TOKENS_LIMIT:]
        val = self.data.val_ids[:VAL_TOKENS_LIMIT]
        try:
            ppl = baseline_perplexity(train, val, len(self.vocab), order=order)
        except SeqtuiError:
            return  # a baseline is a nicety; never fail a run over it
        self._emit("baseline", order=order, val_ppl=ppl, train_tokens=int(len(train)),
                   val_tokens=int(len(val)))

    def _warm_up(self, X, Y) -> None:
        """Compile (or load from cache) the training path's kernels before the first timed step."""
        from seqtui.models.bptt import carry_scale_for

        model = self.model
        self._emit("compile", state="start")
        t0 = time.perf_counter()
        B, T = X.shape
        # the forward pass and the optimizer here, while the helper (``_compiling``) compiles the
        # backward pass; then the first step loads that from the cache. The sampling kernels
        # follow in the helper, so the first sample loads them too.
        model.evaluate(X[:1], Y[:1], model.init_state(1))
        type(self.opt)(self.cfg.lr).step(model.params.copy(), model.grads.copy())
        helper = getattr(self, "_helper", None)
        if helper is not None:
            model.compile_backward_tail(X, Y)  # the helper's last kernels: it then loads them
            helper.wait_for("backward", self._on_compiled, lambda: self.stop_reason is not None)
        if self.stop_reason is None:  # stopped while waiting: no step will run, compile no more
            model.loss_and_grad(X, Y, model.init_state(B), carry_scale_for("full", T))
        self._emit("compile", state="done", seconds=time.perf_counter() - t0)
        self._release_compile_lock()  # compiled: other runs may start compiling now

    def _validate(self, num_batches: int, carried: bool) -> None:
        """Perplexity on (at most VAL_TOKENS_LIMIT of) the held-out tail; a new best is saved."""
        cfg, pos = self.cfg, self.pos
        val_ids = self.data.val_ids[:VAL_TOKENS_LIMIT]
        result = evaluate_ids(self.model, val_ids, cfg.num_steps, self.data.val_batch, seed=cfg.seed)
        loss, ppl = result["loss"], result["ppl"]
        bpc = None if self._val_cpt is None else loss / math.log(2) / self._val_cpt
        improved = math.isfinite(ppl) and (pos.best_val_ppl is None or ppl < pos.best_val_ppl)
        if improved:
            pos.best_val_ppl = ppl
        pos.stale_validations = 0 if improved else pos.stale_validations + 1
        self._validated_step = pos.step
        epoch = pos.epoch + pos.batch_index / max(num_batches, 1)
        self._emit("val", step=pos.step, epoch=epoch, loss=loss, ppl=ppl, best_ppl=pos.best_val_ppl,
                   tokens=result["tokens"], bits_per_char=bpc)
        if improved:
            self._save("best", carried=carried)
        if cfg.patience is not None and pos.stale_validations >= cfg.patience:
            self._emit("notice", message=f"early stop: {pos.stale_validations} validations without "
                                         f"a better validation perplexity than {pos.best_val_ppl:.4g}")
            self.early_stopped = True

    # -- checkpoints --------------------------------------------------------------------------------
    def _restore(self) -> np.ndarray | None:
        """Load the latest checkpoint (or best, saying so, if latest is unusable); returns the
        carried state of a sequential run, or None.

        Never silently starts over: with no checkpoint left but events showing progress (since
        the last ``restart`` event, which ``runs resume --fresh`` writes), CheckpointError."""
        latest, best = self.rundir.checkpoint("latest"), self.rundir.checkpoint("best")
        have_latest, have_best = os.path.lexists(latest), os.path.lexists(best)
        if not have_latest and not have_best:
            reached = self.rundir.progress_since_restart()
            if reached > 0:
                raise CheckpointError(
                    f"run {self.rundir.name!r} reached step {reached} but has no checkpoint left; "
                    f"`seqtui runs resume {self.rundir.name} --fresh` starts it over from step 0")
            return None
        problem = "is missing"
        if have_latest:
            try:
                return self._restore_from(latest)
            except CheckpointError as exc:
                if not have_best:
                    raise
                problem = f"is unusable ({exc})"
        state = self._restore_from(best)
        self._emit("notice", step=self.pos.step, kind="resumed_from_best",
                   message=f"latest checkpoint {problem}; continuing from the best checkpoint "
                           f"at step {self.pos.step}")
        return state

    def _restore_from(self, path) -> np.ndarray | None:
        tensors, meta = load_checkpoint(path)
        check_vocab(meta, self.vocab, where=f"checkpoint {path}")
        saved = meta.get("config", {})
        for key in SHAPE_KEYS:
            if saved.get(key) != getattr(self.cfg, key):
                raise CheckpointError(
                    f"checkpoint {path} has {key}={saved.get(key)!r} but the run config says "
                    f"{getattr(self.cfg, key)!r}")
        if meta.get("optimizer", {}).get("name") != self.cfg.optimizer:
            raise CheckpointError(f"checkpoint {path} was saved with another optimizer")
        self.model.load_named(tensors)
        extra = meta["extra_tensors"]
        state = dict(meta["optimizer"].get("scalars", {}))
        state.update({k[len("optim."):]: v for k, v in extra.items() if k.startswith("optim.")})
        self.opt.load_state_dict(state)
        try:
            self.rng.bit_generator.state = meta["rng"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"checkpoint {path} has no usable RNG state") from None
        self.pos.load(meta["position"])
        self._saved_step = self.pos.step
        return extra.get("train.state")

    def _save(self, kind: str, carried: bool = True) -> None:
        """Write a checkpoint of everything that decides the next loss (``carried``: include the
        carried state; at an epoch boundary there is none)."""
        cfg, opt = self.cfg, self.opt
        opt_state = opt.state_dict()
        arrays = {f"optim.{k}": v for k, v in opt_state.items() if isinstance(v, np.ndarray)}
        scalars = {k: (v.item() if hasattr(v, "item") else v)
                   for k, v in opt_state.items() if not isinstance(v, np.ndarray)}
        if carried and self.state is not None and cfg.sampling == "sequential":
            arrays["train.state"] = self.state
        meta = {
            "config": cfg.to_dict(), "vocab": self.vocab.to_json(), "vocab_size": len(self.vocab),
            "fingerprint": cfg.fingerprint, "seqtui_version": seqtui.__version__,
            "step": self.pos.step, "epoch": self.pos.epoch, "batch_index": self.pos.batch_index,
            "best_val_ppl": _finite(self.pos.best_val_ppl), "position": self.pos.to_json(),
            "optimizer": {"name": cfg.optimizer, "scalars": scalars},
            "rng": self.rng.bit_generator.state, "time": time.time(),
        }
        if not self.rundir.still_ours(self._identity):  # deleted or replaced: write nothing
            self.request_stop(DIR_GONE)
            return
        try:
            path = save_checkpoint(self.rundir.checkpoints_dir, kind, self.model, meta, extra=arrays)
        except CheckpointError:
            if self.rundir.still_ours(self._identity):
                raise
            self.request_stop(DIR_GONE)  # deleted while we wrote: nothing is recreated
            return
        if kind == "latest":
            self._last_save = time.monotonic()
            self._saved_step = self.pos.step
        self._emit("checkpoint", step=self.pos.step, kind=kind, path=str(path))

    def _diverged(self, what: str, value: float) -> None:
        step = self.pos.step + 1
        shown = f"{value} (perplexity overflows)" if math.isfinite(value) else f"{value}"
        message = f"{what} became {shown} at step {step}; {DIVERGED_HINT}"
        self._fail(message, "diverged")
        raise TrainingDiverged(message)


class _Interval:
    """Loss and time summed since the last progress event."""

    def __init__(self) -> None:
        self.loss, self.steps, self.seconds = 0.0, 0, 0.0

    def add(self, loss: float, seconds: float) -> None:
        self.loss += loss
        self.steps += 1
        self.seconds += seconds

    def take(self, tokens_per_step: int) -> tuple[float, float]:
        """(mean loss, tokens/s) of the interval, which then starts again."""
        mean = self.loss / self.steps
        tps = self.steps * tokens_per_step / max(self.seconds, 1e-9)
        self.loss, self.steps, self.seconds = 0.0, 0, 0.0
        return mean, tps


def _threads(requested: int | None) -> int | None:
    """--threads, clamped to the cores this process may use (the trainer says so in a notice)."""
    if requested is None:
        return None
    from seqtui.models.threads import available_cpus

    return max(1, min(int(requested), available_cpus()))


def _finite(x: float | None) -> float | None:
    """JSON metadata must never hold inf/NaN: they become null."""
    return x if x is None or math.isfinite(x) else None

class _Sampler:
    """Training-time samples: a fixed prompt, a seed derived from (run seed, step)."""

    def __init__(self, cfg: RunConfig, vocab, ids: np.ndarray):
        self.cfg = cfg
        self.vocab = vocab
        self.prompt = cfg.sample_prompt or vocab.decode(np.asarray(ids[:1]))

    def emit(self, trainer: Trainer, model, step: int) -> None:
        from seqtui.models.generate import Generator

        gen = Generator(model, self.vocab)
        gen.prime(self.prompt)
        seed = (self.cfg.seed * 1_000_003 + step) % (1 << 63)
        text = self.vocab.join(gen.sample(self.cfg.sample_length, temperature=self.cfg.sample_temperature,
                                          seed=seed))
        trainer._emit("sample", step=step, prompt=self.prompt, text=text,
                      temperature=self.cfg.sample_temperature)


def _ppl(loss: float) -> float:
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf

