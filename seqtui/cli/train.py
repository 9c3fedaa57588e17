"""`seqtui train CORPUS`: one option per RunConfig setting (generated from its metadata); a live
progress bar, or --detach.

BPTT syntax: ``--bptt full`` | ``--bptt truncated:K`` | ``--bptt randomized:P`` (or the mode
with ``--bptt-k K`` / ``--bptt-p P``). ``--config FILE`` starts from a saved RunConfig JSON
(e.g. another run's config.json); options given on the command line override it.
``--resume RUN`` continues a stopped run. Exit codes: 0 finished, 130 after Ctrl-C, 128 + N
when signal N stopped it, 2 for user errors and diverged training.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from seqtui.cli.live import LiveDisplay
from seqtui.cli.options import any_given, overrides_from, run_options
from seqtui.engine.config import RunConfig


@click.command("train", context_settings={"max_content_width": 100})
@click.argument("corpus", required=False)
@run_options
@click.option("--name", help="Run name (default: CORPUS-CELL, made unique).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Put the run in this directory instead of the runs folder.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Start from a RunConfig JSON file; options override it.")
@click.option("--resume", "resume", metavar="RUN",
              help="Continue a stopped run (name or dir); with --steps/--epochs, extend a finished one.")
@click.option("--fresh", is_flag=True, help="With --resume: start over when no checkpoint is left.")
@click.option("--detach", is_flag=True, help="Train in the background; print the run name and return.")
@click.option("--estimate", "estimate_only", is_flag=True,
              help="Print the parameter count, memory and estimated duration, and start nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def train(corpus, config_file, resume, fresh, detach, quiet, name, run_dir, estimate_only,
          **flags) -> None:
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
        others = {k: v for k, v in flags.items() if k not in ("steps", "epochs")}
        if corpus or config_file or name or run_dir or any_given(others):
            raise click.UsageError("--resume takes no corpus or hyperparameters (they come from the "
                                   "run) except --steps/--epochs, which extend it")
        from seqtui.cli.safe import visible_line

        run = runs.prepare_resume(resume, steps=flags.get("steps"), epochs=flags.get("epochs"),
                                  fresh=fresh,
                                  say=lambda line: click.echo(f"note: {visible_line(line)}", err=True))
        continue_run(run, detach, quiet)
        return
    if fresh:
        raise click.UsageError("--fresh goes with --resume")

    cfg = build_config(corpus, config_file, flags)
    if estimate_only or not quiet:
        from seqtui.engine.estimate import estimate_for

        est = estimate_for(cfg)  # before anything starts (a calibration is cached per shape)
        if estimate_only:
            click.echo(est.line())
            return
        click.echo(f"estimate: {est.line()}", err=True)
    rd = runs.start_run(cfg, name=name, run_dir=run_dir, detach=detach)
    if detach:
        click.echo(rd.name if run_dir is None else str(rd.path))
        click.echo(f"training in the background; follow with `seqtui runs show {rd.name}`", err=True)
        return
    _foreground(rd, quiet)


def build_config(corpus, config_file, flags) -> RunConfig:
    """RunConfig from --config (or the defaults), then the options given, by the one set of
    override rules (``RunConfig.with_overrides``); validated."""
    if not (corpus or config_file):
        raise click.UsageError("give a CORPUS (a name from `seqtui corpora list` or a text file)")
    base = RunConfig.load(config_file).fresh() if config_file else RunConfig()
    changes = overrides_from(dict(flags))
    if corpus:
        changes["corpus"] = corpus
    return base.with_overrides(**changes).validate()


# ----------------------------------------------------------------------------------------------
def continue_run(run, detach: bool, quiet: bool) -> None:
    """Continue a checked, resumable run: in the background (print its name) or here, live."""
    from seqtui.engine import runs

    if detach:
        runs.resume_run(run.path)
        click.echo(run.name)
        return
    _foreground(run.dir, quiet)


def _foreground(rd, quiet: bool) -> None:
    """Train in this process with a live display; exit 130 after Ctrl-C, 128 + N after signal N."""
    from seqtui.engine.lifecycle import exit_code
    from seqtui.engine.trainer import Trainer

    display = _Display(rd.name, quiet)
    trainer = Trainer(rd, listeners=(display.on_event,))
    try:
        status = trainer.run()
    finally:
        display.close()
    display.summary(status, trainer)
    if status == "stopped":
        sys.exit(exit_code(trainer.stop_reason) or 1)


class _Display(LiveDisplay):
    """Renders events: a rich progress bar on a terminal, throttled plain lines otherwise."""

    def __init__(self, name: str, quiet: bool):
        super().__init__(quiet)
        self.name = escape(visible(name))
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
            if e.get("state") == "kernel":
                text = (f"compiling kernels… {e.get('count')}: {e.get('kernel')} "
                        "(once; cached afterwards)")
                if self.status is not None:
                    self.status.update(text)
                elif self.live:
                    self.status = self.console.status(text)
                    self.status.start()
                elif not self.quiet and time.monotonic() - self._last_line > 5:
                    self._last_line = time.monotonic()
                    self._line(text)
            elif e.get("state") == "start" and self.live and self.status is None:
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
            self._line(f"[dim]sample @ {e['step']}:[/] " + escape(visible(text[:width])))
        elif kind == "notice":
            self._line(f"[yellow]note:[/] {escape(visible(e.get('message', '')))}")
        elif kind == "notice":
            self._line(f"notice: {escape(visible(str(e.get('message'))))}")
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


def visible(text: str) -> str:
    from seqtui.cli.safe import visible_line

    return visible_line(text)


def escape(text: str) -> str:
    from rich.markup import escape as _escape

    return _escape(text)


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3f}"
