"""`seqtui train CORPUS`: one flag per hyperparameter; a live progress bar, or --detach.

BPTT syntax: ``--bptt full`` | ``--bptt truncated:K`` | ``--bptt randomized:P`` (or the mode
with ``--bptt-k K`` / ``--bptt-p P``). ``--config FILE`` starts from a saved RunConfig JSON
(e.g. another run's config.json); flags given on the command line override it.
``--resume RUN`` continues a stopped run. Exit codes: 0 finished or stopped by a signal,
130 after Ctrl-C, 2 for user errors and diverged training.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from seqtui.engine.config import CELLS, DEFAULT_LR, ERRORS, INITS, OPTIMIZERS, RunConfig, parse_bptt

_D = RunConfig()


def _default(name: str) -> str:
    return f"[default: {getattr(_D, name)}]"


@click.command("train", context_settings={"max_content_width": 100})
@click.argument("corpus", required=False)
@click.option("--cell", type=click.Choice(CELLS), help=f"Recurrent cell. {_default('cell')}")
@click.option("--layers", type=int, help=f"Stacked recurrent layers. {_default('layers')}")
@click.option("--hidden", type=int, help=f"Hidden units per layer (H). {_default('hidden')}")
@click.option("--num-steps", type=int, help=f"Tokens per window (T). {_default('num_steps')}")
@click.option("--batch-size", type=int, help=f"Windows per batch (B). {_default('batch_size')}")
@click.option("--sampling", type=click.Choice(["random", "sequential"]),
              help=f"Random windows (state reset) or sequential (state carried). {_default('sampling')}")
@click.option("--bptt", "bptt", metavar="MODE",
              help="full | truncated:K | randomized:P (gradient through the carried state). [default: full]")
@click.option("--bptt-k", type=int, help="K for --bptt truncated (1..num_steps).")
@click.option("--bptt-p", type=float, help="P for --bptt randomized, in (0, 1].")
@click.option("--clip", type=float, help=f"Global gradient-norm clip θ. {_default('clip')}")
@click.option("--no-clip", is_flag=True, help="Disable gradient clipping.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help=f"{_default('optimizer')}")
@click.option("--lr", type=float, help="Learning rate. [default: sgd 1.0, adam 0.002]")
@click.option("--lr-decay", type=float, help=f"LR factor after each epoch, in (0, 1]. {_default('lr_decay')}")
@click.option("--epochs", type=int, help="Train this many epochs. [default: 10 unless --steps]")
@click.option("--steps", type=int, help="Or train this many optimizer steps.")
@click.option("--val-fraction", type=float, help=f"Held-out tail, in [0, 0.5]. {_default('val_fraction')}")
@click.option("--seed", type=int, help=f"Seed for init, batches, BPTT draws, samples. {_default('seed')}")
@click.option("--preprocess", type=click.Choice(["raw", "d2l"]),
              help=f"raw text, or d2l's lowercase letters and spaces. {_default('preprocess')}")
@click.option("--tokens", type=click.Choice(["char", "word"]), help=f"{_default('tokens')}")
@click.option("--min-freq", type=int, help="Rarer tokens become <unk>. [default: 0]")
@click.option("--max-tokens", type=int, help="Use only the first N tokens (d2l: 10000).")
@click.option("--errors", type=click.Choice(ERRORS),
              help="Invalid UTF-8: refuse (strict) or substitute U+FFFD (replace). [default: strict]")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), help=f"{_default('dtype')}")
@click.option("--init", type=click.Choice(INITS),
              help=f"Initialisation: PyTorch's U(±1/√H), or d2l's N(0, 0.01²) with zero biases. {_default('init')}")
@click.option("--progress-every", type=int, help=f"Steps between progress events. {_default('progress_every')}")
@click.option("--grad-profile-every", type=int,
              help=f"Steps between gradient profiles (0 = never). {_default('grad_profile_every')}")
@click.option("--sample-every", type=int, help=f"Steps between samples (0 = never). {_default('sample_every')}")
@click.option("--val-every", type=int, help="Extra validation every N steps (always at epoch end).")
@click.option("--checkpoint-every", type=int,
              help=f"Steps between latest checkpoints. {_default('checkpoint_every')}")
@click.option("--sample-prompt", help="Prompt of training-time samples.")
@click.option("--name", help="Run name (default: CORPUS-CELL, made unique).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Put the run in this directory instead of the runs folder.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Start from a RunConfig JSON file; flags override it.")
@click.option("--resume", "resume", metavar="RUN", help="Continue a stopped run (name or dir).")
@click.option("--detach", is_flag=True, help="Train in the background; print the run name and return.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def train(corpus, config_file, resume, detach, quiet, name, run_dir, no_clip, bptt, **flags) -> None:
    """Train an RNN/GRU/LSTM language model on CORPUS (a corpus name or a text file).

    \b
    Examples:
      seqtui train kjv --cell gru --hidden 256 --epochs 5
      seqtui train timemachine.txt --preprocess d2l --max-tokens 10000 --cell rnn \\
          --hidden 512 --optimizer sgd --lr 1 --clip 1 --sampling sequential --epochs 500
      seqtui train kjv --bptt truncated:10 --detach
    """
    from seqtui.engine import runs

    if resume:
        if corpus or config_file or name or run_dir or no_clip or bptt or any(
                v is not None for v in flags.values()):
            raise click.UsageError("--resume takes no corpus or hyperparameters (they come from the run)")
        run = runs.get_run(resume)
        if run.pid != os.getpid():  # a detached child finds its own pid already recorded
            runs.check_resumable(run)
        continue_run(run, detach, quiet)
        return

    cfg = build_config(corpus, config_file, bptt, no_clip, flags)
    path = runs.create_run_dir(cfg.to_dict(), name=name, run_dir=run_dir)
    if detach:
        runs.spawn_training(path)
        click.echo(path.name if run_dir is None else str(path))
        click.echo(f"training in the background; follow with `seqtui runs show {path.name}`", err=True)
        return
    _foreground(path, quiet)


def build_config(corpus, config_file, bptt, no_clip, flags) -> RunConfig:
    """RunConfig from --config, then the flags given; validated, corpus path made absolute."""
    from seqtui.data.corpora import resolve_corpus

    if not (corpus or config_file):
        raise click.UsageError("give a CORPUS (a name from `seqtui corpora list` or a text file)")
    base = RunConfig.load(config_file) if config_file else RunConfig()
    if config_file:  # a copied config.json: the new run fills these in again
        base = base.replace(fingerprint=None, vocab_size=None, seqtui_version=None)
    changes = {k: v for k, v in flags.items() if v is not None}
    if corpus:
        changes["corpus"] = corpus
    if bptt:
        mode, k, p = parse_bptt(bptt)
        for key, value in (("bptt_k", k), ("bptt_p", p)):
            if value is not None:
                if key in changes and changes[key] != value:
                    raise click.UsageError(f"--bptt {bptt} disagrees with --{key.replace('_', '-')}")
                changes[key] = value
    else:  # --bptt-k alone means truncated, --bptt-p alone randomized
        mode = "truncated" if "bptt_k" in changes else "randomized" if "bptt_p" in changes else None
    if mode is not None:
        changes["bptt"] = mode
        changes.setdefault("bptt_k", None if mode != "truncated" else base.bptt_k)
        changes.setdefault("bptt_p", None if mode != "randomized" else base.bptt_p)
    if no_clip:
        if "clip" in changes:
            raise click.UsageError("--clip and --no-clip are exclusive")
        changes["clip"] = None
    if "optimizer" in changes and "lr" not in changes:
        changes["lr"] = DEFAULT_LR[changes["optimizer"]]
    if "steps" in changes and "epochs" not in changes:
        changes["epochs"] = None
    if "epochs" in changes and "steps" not in changes:
        changes["steps"] = None
    cfg = base.replace(**changes).validate()
    info = resolve_corpus(cfg.corpus)
    if info.kind == "path" and info.path is not None:
        cfg = cfg.replace(corpus=str(info.path))
    return cfg


# ----------------------------------------------------------------------------------------------
def continue_run(run, detach: bool, quiet: bool) -> None:
    """Continue a checked, resumable run: in the background (print its name) or here, live."""
    from seqtui.engine import runs

    if detach:
        runs.resume_run(run.path)
        click.echo(run.name)
        return
    _foreground(run.path, quiet)


def _foreground(path: Path, quiet: bool) -> None:
    """Train in this process with a live display; exit 130 after Ctrl-C."""
    from seqtui.engine.trainer import Trainer

    display = _Display(path.name, quiet)
    trainer = Trainer(path, listeners=(display.on_event,))
    try:
        status = trainer.run()
    finally:
        display.close()
    display.summary(status, trainer)
    if status == "stopped" and trainer.stop_reason == "interrupted":
        sys.exit(130)


class _Display:
    """Renders events: a rich progress bar on a terminal, throttled plain lines otherwise."""

    def __init__(self, name: str, quiet: bool):
        from rich.console import Console

        self.name = name
        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal and not quiet
        self.progress = None
        self.task = None
        self.status = None
        self._last_line = 0.0
        self._last_epoch_line = 0.0
        self.last: dict = {}

    def _line(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    def on_event(self, e: dict) -> None:
        kind = e.get("type")
        if kind == "start":
            self.total = e.get("total_steps")
            verb = "resuming" if e.get("resumed") else "training"
            cfg = e.get("config", {})
            self._line(f"{verb} [bold]{self.name}[/] at step {e['step']}: {cfg.get('cell')} "
                       f"{cfg.get('layers')}×{cfg.get('hidden')}, V={e.get('vocab_size')}, "
                       f"{e.get('train_tokens'):,} train / {e.get('val_tokens'):,} val tokens, "
                       f"{e.get('steps_per_epoch')} steps/epoch")
            self.start_step = e["step"]
        elif kind == "compile":
            if e.get("state") == "start" and self.live:
                self.status = self.console.status("compiling kernels… (once; cached afterwards)")
                self.status.start()
            elif e.get("state") == "done":
                if self.status is not None:
                    self.status.stop()
                    self.status = None
                if e.get("seconds", 0) > 2:
                    self._line(f"compiled kernels in {e['seconds']:.1f} s")
                self._start_bar()
        elif kind == "progress":
            self.last = e
            if self.progress is not None:
                self.progress.update(self.task, completed=e["step"], ppl=e.get("ppl") or float("nan"),
                                     tps=e.get("tokens_per_s") or 0.0)
            elif not self.quiet and time.monotonic() - self._last_line > 10:
                self._last_line = time.monotonic()
                self._line(f"step {e['step']}/{self.total}  epoch {e['epoch']:.2f}  "
                           f"ppl {_fmt(e.get('ppl'))}  {e.get('tokens_per_s', 0):,.0f} tok/s")
        elif kind == "val":
            self._line(f"epoch {e['epoch']:.2f}  step {e['step']}  val ppl {_fmt(e.get('ppl'))}  "
                       f"(best {_fmt(e.get('best_ppl'))})")
        elif kind == "epoch":
            if time.monotonic() - self._last_epoch_line > 5:
                self._last_epoch_line = time.monotonic()
                self._line(f"epoch {e['epoch']}  train ppl {_fmt(e.get('train_ppl'))}")
        elif kind == "sample":
            text = (e.get("prompt", "") + str(e.get("text", ""))).replace("\n", "⏎")
            width = max(20, self.console.width - 16)
            self._line(f"[dim]sample @ {e['step']}:[/] " + escape(text[:width]))
        elif kind == "error":
            self.close()

    def _start_bar(self) -> None:
        if not self.live or self.progress is not None:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("ppl {task.fields[ppl]:.3f}"), TextColumn("{task.fields[tps]:,.0f} tok/s"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.name, total=self.total, completed=self.start_step,
                                           ppl=float("nan"), tps=0.0)

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def summary(self, status: str, trainer) -> None:
        pos = trainer.pos
        if status == "finished":
            best = f", best val ppl {_fmt(pos.best_val_ppl)}" if pos.best_val_ppl else ""
            self._line(f"finished [bold]{self.name}[/]: {pos.step} steps, train ppl "
                       f"{_fmt(pos.last_train_ppl or self.last.get('ppl'))}{best}")
            self._line(f"try: seqtui generate {self.name} \"...\"")
        else:
            self._line(f"stopped [bold]{self.name}[/] at step {pos.step} ({trainer.stop_reason}); "
                       f"continue with: seqtui runs resume {self.name}")


def escape(text: str) -> str:
    from rich.markup import escape as _escape

    return _escape(text)


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3f}"
