"""The one training loop, shared by `seqtui train` (foreground or detached) and the TUI.

Epochs of ``make_epoch(...).batch(i)``; random sampling resets the state per batch, sequential
carries it (detached) across batches. Per step: BPTT carry scales from an engine-owned RNG,
forward+backward, NaN/Inf check, clipping, the optimizer step. Everything that decides the next
loss — parameters, optimizer moments, RNG state, (epoch, batch index), the carried state, the
learning rate — goes into each checkpoint, so a resumed run continues bit-exactly.
SIGINT/SIGTERM/SIGHUP set a flag; the loop checkpoints at the next step boundary and ends.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

import seqtui
from seqtui.engine import runs
from seqtui.engine.checkpoint import check_vocab, load_checkpoint, save_checkpoint
from seqtui.engine.config import RunConfig
from seqtui.engine.evaluate import eval_batch_size, evaluate_ids
from seqtui.engine.events import EventWriter
from seqtui.errors import CheckpointError, ConfigError, SeqtuiError, TrainingDiverged

SIGNAL_REASONS = {signal.SIGINT: "interrupted", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
SHAPE_KEYS = ("cell", "hidden", "layers", "tokens", "preprocess", "min_freq", "dtype")
DIVERGED_HINT = "lower the learning rate or enable clipping (--clip 1)"
CLIP_WINDOW = 100
Listener = Callable[[dict], None]


def train_run(run_dir: str | os.PathLike, listeners: tuple[Listener, ...] = ()) -> str:
    """Train the run in ``run_dir`` (resuming from its latest checkpoint); returns its final status."""
    return Trainer(Path(run_dir), listeners).run()


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
        self.clip_history: deque[bool] = deque(maxlen=CLIP_WINDOW)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "lr": self.lr, "best_val_ppl": self.best_val_ppl, "epoch_nll": self.epoch_nll,
            "epoch_tokens": self.epoch_tokens, "epoch_seconds": self.epoch_seconds,
            "last_train_ppl": self.last_train_ppl, "clip_history": list(self.clip_history),
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
            self.clip_history = deque((bool(c) for c in d.get("clip_history", ())), maxlen=CLIP_WINDOW)
        except (KeyError, TypeError, ValueError):
            raise CheckpointError("checkpoint metadata lacks the training position") from None


class Trainer:
    """Owns one run's training process: data, model, optimizer, RNG, events and signals."""

    def __init__(self, run_dir: Path, listeners: tuple[Listener, ...] = ()):
        self.run_dir = Path(run_dir)
        self.listeners = tuple(listeners)
        self.cfg = RunConfig.load(self.run_dir / runs.CONFIG_FILE).validate()
        self.stop_reason: str | None = None
        self.events: EventWriter | None = None
        self.pos = _Position(self.cfg.lr)
        self._last_save = time.monotonic()
        self._saved_step = -1

    # -- control ------------------------------------------------------------------------------
    def request_stop(self, reason: str = "interrupted") -> None:
        """Ask the loop to checkpoint and end at the next step boundary (thread/signal safe)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def _on_signal(self, signum, frame) -> None:
        self.request_stop(SIGNAL_REASONS.get(signum, "interrupted"))

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in SIGNAL_REASONS:
            if sig == signal.SIGHUP and os.environ.get("SEQTUI_DETACHED") == "1":
                old[sig] = signal.signal(sig, signal.SIG_IGN)  # detached: outlive the terminal
            else:
                old[sig] = signal.signal(sig, self._on_signal)
        return old

    # -- entry ----------------------------------------------------------------------------------
    def run(self) -> str:
        try:
            self.events = EventWriter(self.run_dir / runs.EVENTS_FILE, self.listeners)
        except OSError as exc:
            raise runs.RunError(f"cannot write to run dir {self.run_dir}: {exc.strerror or exc}") from None
        old_handlers = self._install_signals()
        runs.write_pid(self.run_dir)
        try:
            return self._train()
        except TrainingDiverged:
            raise  # its events are already written
        except SeqtuiError as exc:
            self._fail(str(exc), "error")
            raise
        except KeyboardInterrupt:  # a second Ctrl-C while saving, or during data loading
            self._try_emit("end", sync=True, step=self.pos.step, reason="interrupted",
                           status="stopped", train_ppl=self.pos.last_train_ppl)
            raise
        except OSError as exc:  # the disk refused a write (events, config)
            message = f"cannot write to run dir {self.run_dir}: {exc.strerror or exc}"
            self._fail(message, "error")
            raise runs.RunError(message) from None
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}".splitlines()[0], "error")
            raise
        finally:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            runs.clear_pid(self.run_dir)
            self.events.close()

    def _emit(self, type_: str, **fields: Any) -> dict:
        assert self.events is not None
        return self.events.emit(type_, **fields)

    def _try_emit(self, type_: str, **fields: Any) -> None:
        """Emit, but a disk that refuses even this must not mask the original error."""
        try:
            self._emit(type_, **fields)
        except OSError:
            pass

    def _fail(self, message: str, reason: str) -> None:
        self._try_emit("error", message=message)
        self._try_emit("end", sync=True, step=self.pos.step, reason=reason, status="failed",
                       train_ppl=self.pos.last_train_ppl)

    # -- set-up ---------------------------------------------------------------------------------
    def _load_data(self):
        from seqtui.data.batches import make_epoch, min_tokens
        from seqtui.data.text import TextConfig, load_dataset, split_train_val

        cfg = self.cfg
        ds = load_dataset(TextConfig(corpus=cfg.corpus, preprocess=cfg.preprocess, tokens=cfg.tokens,
                                     min_freq=cfg.min_freq, max_tokens=cfg.max_tokens,
                                     errors=cfg.errors))
        if cfg.fingerprint is not None and cfg.fingerprint != ds.fingerprint:
            raise ConfigError(f"corpus {cfg.corpus!r} changed since this run started; start a new run")
        train_ids, val_ids = split_train_val(ds.ids, cfg.val_fraction)
        train_ids = np.ascontiguousarray(train_ids)
        make_epoch(train_ids, cfg.sampling, cfg.batch_size, cfg.num_steps, cfg.seed, 0)  # too short?
        val_batch = 0
        if cfg.val_fraction > 0:
            val_ids = np.ascontiguousarray(val_ids)
            val_batch = eval_batch_size(len(val_ids), cfg.batch_size, cfg.num_steps)
            if val_batch == 0:
                need = min_tokens("sequential", 1, cfg.num_steps)
                raise ConfigError(
                    f"validation split has {len(val_ids)} tokens, needs at least {need}; "
                    "raise --val-fraction or use --val-fraction 0")
        if cfg.fingerprint is None or cfg.vocab_size is None or cfg.seqtui_version is None:
            self.cfg = cfg = cfg.replace(fingerprint=ds.fingerprint, vocab_size=len(ds.vocab),
                                         seqtui_version=seqtui.__version__)
            runs.write_config(self.run_dir, cfg.to_dict())
        return ds, train_ids, val_ids, val_batch

    def _build(self, vocab):
        from seqtui.models.charmodel import CharModel, ModelConfig
        from seqtui.models.memory import check_fits_in_memory
        from seqtui.models.optim import SGD, Adam

        cfg = self.cfg
        mcfg = ModelConfig(cell=cfg.cell, vocab_size=len(vocab), hidden=cfg.hidden, num_layers=cfg.layers)
        check_fits_in_memory(mcfg, cfg.batch_size, cfg.num_steps, np.dtype(cfg.dtype))
        model = CharModel(mcfg, seed=cfg.seed, dtype=np.dtype(cfg.dtype), init=cfg.init)
        opt = SGD(cfg.lr) if cfg.optimizer == "sgd" else Adam(cfg.lr)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([cfg.seed, 0xB977])))
        return model, opt, rng

    def _restore(self, vocab, model, opt, rng) -> np.ndarray | None:
        """Load latest.safetensors if present; returns the carried state (sequential) or None."""
        path = self.run_dir / runs.CHECKPOINT_DIR / "latest.safetensors"
        if not path.exists():
            return None
        tensors, meta = load_checkpoint(path)
        check_vocab(meta, vocab, where=f"checkpoint {path}")
        saved = meta.get("config", {})
        for key in SHAPE_KEYS:
            if saved.get(key) != getattr(self.cfg, key):
                raise CheckpointError(
                    f"checkpoint {path} has {key}={saved.get(key)!r} but the run config says "
                    f"{getattr(self.cfg, key)!r}")
        if meta.get("optimizer", {}).get("name") != self.cfg.optimizer:
            raise CheckpointError(f"checkpoint {path} was saved with another optimizer")
        model.load_named(tensors)
        extra = meta["extra_tensors"]
        state = dict(meta["optimizer"].get("scalars", {}))
        state.update({k[len("optim."):]: v for k, v in extra.items() if k.startswith("optim.")})
        opt.load_state_dict(state)
        try:
            rng.bit_generator.state = meta["rng"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"checkpoint {path} has no usable RNG state") from None
        self.pos.load(meta["position"])
        self._saved_step = self.pos.step
        return extra.get("train.state")

    def _save(self, kind: str, vocab, model, opt, rng, state: np.ndarray | None) -> None:
        cfg = self.cfg
        opt_state = opt.state_dict()
        arrays = {f"optim.{k}": v for k, v in opt_state.items() if isinstance(v, np.ndarray)}
        scalars = {k: (v.item() if hasattr(v, "item") else v)
                   for k, v in opt_state.items() if not isinstance(v, np.ndarray)}
        if state is not None and cfg.sampling == "sequential":
            arrays["train.state"] = state
        meta = {
            "config": cfg.to_dict(), "vocab": vocab.to_json(), "vocab_size": len(vocab),
            "fingerprint": cfg.fingerprint, "seqtui_version": seqtui.__version__,
            "step": self.pos.step, "epoch": self.pos.epoch, "batch_index": self.pos.batch_index,
            "best_val_ppl": self.pos.best_val_ppl, "position": self.pos.to_json(),
            "optimizer": {"name": cfg.optimizer, "scalars": scalars},
            "rng": rng.bit_generator.state, "time": time.time(),
        }
        path = save_checkpoint(self.run_dir / runs.CHECKPOINT_DIR, kind, model, meta, extra=arrays)
        if kind == "latest":
            self._last_save = time.monotonic()
            self._saved_step = self.pos.step
        self._emit("checkpoint", step=self.pos.step, kind=kind, path=str(path))

    def _baseline(self, train_ids, val_ids, vocab_size: int, order: int = 3) -> None:
        """The n-gram baseline's validation perplexity: a reference line for the curves."""
        from seqtui.models.ngram import baseline_perplexity

        try:
            ppl = baseline_perplexity(train_ids, val_ids, vocab_size, order=order)
        except SeqtuiError:
            return  # a baseline is a nicety; never fail a run over it
        self._emit("baseline", order=order, val_ppl=ppl)

    def _warm_up(self, model, opt, vocab, X, Y) -> None:
        """Compile (or load from cache) every kernel before the first timed step."""
        from seqtui.models.bptt import carry_scale_for

        self._emit("compile", state="start")
        t0 = time.perf_counter()
        B, T = X.shape
        ones = carry_scale_for("full", T)
        model.loss_and_grad(X, Y, model.init_state(B), ones)
        model.evaluate(X[:1], Y[:1], model.init_state(1))
        type(opt)(self.cfg.lr).step(model.params.copy(), model.grads.copy())
        if self.cfg.sample_every:
            from seqtui.models.generate import Generator

            gen = Generator(model, vocab)
            gen.prime(vocab.itos[-1])
            list(gen.sample(2, seed=0))
        self._emit("compile", state="done", seconds=time.perf_counter() - t0)

    # -- the loop -------------------------------------------------------------------------------
    def _train(self) -> str:
        from seqtui.data.batches import make_epoch
        from seqtui.models.bptt import carry_scale_for
        from seqtui.models.optim import clip_grad_norm

        ds, train_ids, val_ids, val_batch = self._load_data()
        cfg = self.cfg  # now with fingerprint and vocab_size filled in
        vocab = ds.vocab
        model, opt, rng = self._build(vocab)
        carried = self._restore(vocab, model, opt, rng)
        resumed = self._saved_step >= 0
        pos = self.pos
        B, T = cfg.batch_size, cfg.num_steps
        epochs = cfg.total_epochs()
        first = make_epoch(train_ids, cfg.sampling, B, T, cfg.seed, pos.epoch)
        total = self._total_steps(train_ids, first.num_batches, epochs)
        self._emit("start", run=self.run_dir.name, pid=os.getpid(), step=pos.step, total_steps=total,
                   steps_per_epoch=first.num_batches, train_tokens=int(len(train_ids)),
                   val_tokens=int(len(val_ids)) if val_batch else 0, vocab_size=len(vocab),
                   config=cfg.to_dict(), resumed=resumed, epoch=pos.epoch)
        if val_batch and not resumed:
            self._baseline(train_ids, val_ids, len(vocab))
        if self.stop_reason is None:  # a signal during data loading: stop without compiling
            self._warm_up(model, opt, vocab, *first.batch(0))
        sampler = _Sampler(cfg, vocab, val_ids if val_batch else train_ids)

        interval_loss, interval_steps, interval_time = 0.0, 0, 0.0
        state = carried
        while (epochs is None or pos.epoch < epochs) and not self._steps_done():
            eb = first if first.epoch == pos.epoch else make_epoch(
                train_ids, cfg.sampling, B, T, cfg.seed, pos.epoch)
            if pos.batch_index == 0 or state is None:
                state = model.init_state(B)
            for i in range(pos.batch_index, eb.num_batches):
                if self.stop_reason is not None:
                    return self._stop(vocab, model, opt, rng, state)
                t0 = time.perf_counter()
                X, Y = eb.batch(i)
                if cfg.sampling == "random":
                    state = model.init_state(B)
                cs = carry_scale_for(cfg.bptt, T, k=cfg.bptt_k, p=cfg.bptt_p, rng=rng)
                stats = model.loss_and_grad(X, Y, state, cs)
                loss = float(stats.loss)
                if not stats.finite or not math.isfinite(loss):
                    self._diverged("loss", loss)
                norm, clipped = clip_grad_norm(model.grads, cfg.clip if cfg.clip else math.inf)
                if not math.isfinite(norm):
                    self._diverged("gradient norm", norm)
                opt.step(model.params, model.grads, lr=pos.lr)
                if cfg.sampling == "sequential":
                    state = stats.state
                dt = time.perf_counter() - t0
                pos.step += 1
                pos.batch_index = i + 1
                pos.epoch_nll += loss * B * T
                pos.epoch_tokens += B * T
                pos.epoch_seconds += dt
                pos.clip_history.append(bool(clipped))
                interval_loss += loss
                interval_steps += 1
                interval_time += dt
                step = pos.step
                if cfg.progress_every and step % cfg.progress_every == 0:
                    mean = interval_loss / interval_steps
                    self._emit("progress", step=step, epoch=pos.epoch + (i + 1) / eb.num_batches,
                               tokens_per_s=interval_steps * B * T / max(interval_time, 1e-9),
                               loss=mean, ppl=_ppl(mean), lr=pos.lr, grad_norm=float(norm),
                               clipped=bool(clipped),
                               clip_rate=sum(pos.clip_history) / len(pos.clip_history))
                    interval_loss, interval_steps, interval_time = 0.0, 0, 0.0
                if cfg.grad_profile_every and step % cfg.grad_profile_every == 0:
                    self._emit("grad_profile", step=step, norms=np.asarray(stats.h_grad_norms).tolist(),
                               bptt=cfg.bptt_label())
                if cfg.sample_every and step % cfg.sample_every == 0:
                    sampler.emit(self, model, step)
                if cfg.val_every and step % cfg.val_every == 0 and val_batch:
                    self._validate(model, val_ids, val_batch, vocab, opt, rng, state, eb.num_batches)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    self._save("latest", vocab, model, opt, rng, state)
                if self._steps_done():
                    break
            else:
                self._end_epoch(model, val_ids, val_batch, vocab, opt, rng, state, eb.num_batches)
                state = None
                continue
            break
        self._save("latest", vocab, model, opt, rng, state)
        self._emit("end", sync=True, step=pos.step, reason="finished", status="finished",
                   train_ppl=pos.last_train_ppl)
        return "finished"

    def _steps_done(self) -> bool:
        return self.cfg.steps is not None and self.pos.step >= self.cfg.steps

    def _total_steps(self, train_ids, first_batches: int, epochs: int | None) -> int:
        from seqtui.data.batches import make_epoch

        cfg = self.cfg
        if epochs is None:
            return int(cfg.steps)
        if cfg.sampling == "sequential" or epochs * len(train_ids) / cfg.num_steps <= 5e7:
            return sum(make_epoch(train_ids, cfg.sampling, cfg.batch_size, cfg.num_steps, cfg.seed,
                                  e).num_batches for e in range(epochs))
        return epochs * first_batches  # an estimate for huge runs

    def _end_epoch(self, model, val_ids, val_batch, vocab, opt, rng, state, num_batches) -> None:
        pos = self.pos
        train_loss = pos.epoch_nll / max(pos.epoch_tokens, 1)
        pos.last_train_ppl = _ppl(train_loss)
        self._emit("epoch", step=pos.step, epoch=pos.epoch + 1, train_loss=train_loss,
                   train_ppl=pos.last_train_ppl, seconds=pos.epoch_seconds, lr=pos.lr)
        pos.epoch += 1
        pos.batch_index = 0
        pos.epoch_nll, pos.epoch_tokens, pos.epoch_seconds = 0.0, 0, 0.0
        pos.lr *= self.cfg.lr_decay
        if val_batch:
            self._validate(model, val_ids, val_batch, vocab, opt, rng, None, num_batches)
        if time.monotonic() - self._last_save >= self.cfg.checkpoint_seconds:
            self._save("latest", vocab, model, opt, rng, None)

    def _validate(self, model, val_ids, val_batch, vocab, opt, rng, state, num_batches) -> None:
        cfg, pos = self.cfg, self.pos
        result = evaluate_ids(model, val_ids, cfg.num_steps, val_batch, seed=cfg.seed)
        loss, ppl = result["loss"], result["ppl"]
        improved = math.isfinite(ppl) and (pos.best_val_ppl is None or ppl < pos.best_val_ppl)
        if improved:
            pos.best_val_ppl = ppl
        epoch = pos.epoch + pos.batch_index / max(num_batches, 1)
        self._emit("val", step=pos.step, epoch=epoch, loss=loss, ppl=ppl, best_ppl=pos.best_val_ppl)
        if improved:
            self._save("best", vocab, model, opt, rng, state)

    def _stop(self, vocab, model, opt, rng, state) -> str:
        if self._saved_step != self.pos.step:
            self._save("latest", vocab, model, opt, rng, state)
        self._emit("end", sync=True, step=self.pos.step, reason=self.stop_reason, status="stopped",
                   train_ppl=self.pos.last_train_ppl)
        return "stopped"

    def _diverged(self, what: str, value: float) -> None:
        step = self.pos.step + 1
        message = f"{what} became {value} at step {step}; {DIVERGED_HINT}"
        self._emit("error", message=message)
        self._emit("end", sync=True, step=self.pos.step, reason="diverged", status="failed",
                   train_ppl=self.pos.last_train_ppl)
        raise TrainingDiverged(message)


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
        sep = "" if self.vocab.is_char else " "
        seed = (self.cfg.seed * 1_000_003 + step) % (1 << 63)
        text = sep.join(gen.sample(self.cfg.sample_length, temperature=self.cfg.sample_temperature,
                                   seed=seed))
        trainer._emit("sample", step=step, prompt=self.prompt, text=text,
                      temperature=self.cfg.sample_temperature)


def _ppl(loss: float) -> float:
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf
