"""`seqtui series list|show|tau|fit|predict`: real-valued series and the models of "Working with Sequences".

``list`` reads nothing; ``show`` loads the series (no numba); ``tau`` and ``fit`` load the kernels.
``fit`` trains a model as a run (a run directory with config, events, checkpoints and the
predictions; `seqtui runs list/show/stop/resume/rm` work on it), in the foreground with a
progress display or ``--detach``ed; ``predict`` evaluates a run's best checkpoint again. Every bad
input is one line on stderr and exit code 2, before any run directory exists (numbers are parsed
here into ConfigError, not click usage errors). Exit codes of ``fit``: 0 finished, 130 after
Ctrl-C, 128 + N when signal N stopped it (checkpointed first), 2 for user errors and divergence.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from seqtui.cli.live import LiveDisplay

from seqtui.errors import ConfigError


class _Number(click.ParamType):
    """An int or float option whose bad values raise ConfigError (one line, exit 2)."""

    def __init__(self, kind: type, name: str, what: str):
        self.kind = kind
        self.name = name  # click shows it upper-cased as the metavar
        self.what = what

    def convert(self, value, param, ctx):
        if isinstance(value, self.kind) and not isinstance(value, bool):
            return value
        try:
            v = self.kind(str(value).strip())
        except ValueError:
            raise ConfigError(f"--{param.name.replace('_', '-')} must be {self.what}, got {value!r}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"--{param.name.replace('_', '-')} must be finite, got {value!r}")
        return v


INT = _Number(int, "integer", "an integer")
FLOAT = _Number(float, "number", "a number")


def _split(value: str):
    """A count ("600") or a fraction ("0.6")."""
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        f = float(text)
    except ValueError:
        raise ConfigError(f"--split must be a window count or a fraction in (0, 1), got {value!r}") from None
    if not math.isfinite(f):
        raise ConfigError(f"--split must be a window count or a fraction in (0, 1), got {value!r}")
    return f


def _clean(v):
    """JSON-safe floats (NaN/inf → null)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _echo_json(obj) -> None:
    click.echo(json.dumps(_clean(obj), indent=2, ensure_ascii=False))


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values, width: int = 60) -> str:
    """Unicode sparkline of bin means (``width`` bins)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return ""
    bins = np.array_split(v, min(width, v.size))
    means = np.array([b.mean() for b in bins])
    lo, hi = means.min(), means.max()
    if hi <= lo:
        return SPARKS[0] * means.size
    idx = np.minimum(((means - lo) / (hi - lo) * len(SPARKS)).astype(int), len(SPARKS) - 1)
    return "".join(SPARKS[i] for i in idx)


def _plot(values, time=None, width: int = 72, height: int = 14) -> str:
    """A small plotext line plot as text (no colours), or the sparkline if plotext is missing."""
    try:
        import plotext as plt
    except ImportError:  # pragma: no cover - plotext is a dependency of textual-plotext
        return sparkline(values, width)
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    x = np.arange(v.size) if time is None else np.asarray(time, dtype=np.float64)
    step = max(1, v.size // 2000)
    plt.clear_figure()
    plt.plot_size(width, height)
    plt.theme("clear")
    plt.plot(x[::step].tolist(), v[::step].tolist(), marker="braille")
    return plt.build()


@click.group("series")
def series() -> None:
    """Real-valued series: list, inspect, the τ-sweep and in-process model fits.

    SOURCE is a name from `seqtui series list` (e.g. `sine`, `sine:n=1000,freq=0.01,noise=0.2,seed=0`,
    `sunspots`), a one-column file, or PATH.csv:COLUMN (a header name or a 0-based index).
    """


@series.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """The synthetic and bundled series (nothing is read)."""
    from seqtui.data.series import list_series

    infos = list_series()
    if as_json:
        _echo_json([i.to_json() for i in infos])
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("name", "kind", "length", "title", "status"):
        table.add_column(col, justify="right" if col == "length" else "left")
    for i in infos:
        status = "ok" if i.available else f"[yellow]unavailable[/]: {escape(i.install_hint)}"
        table.add_row(escape(i.name), i.kind, str(i.length or "?"), escape(i.title), status)
    Console().print(table)


@series.command("show")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--values", "with_values", is_flag=True, help="With --json: include every value.")
@click.option("--plot/--no-plot", default=True, show_default=True, help="Draw a small terminal plot.")
def show_cmd(source: str, as_json: bool, with_values: bool, plot: bool) -> None:
    """Length, range, mean, standard deviation and a small plot of SOURCE."""
    from seqtui.data.series import load_series

    s = load_series(source)
    st = s.stats()
    st["sparkline"] = sparkline(s.values)
    if as_json:
        if with_values:
            st["values"] = s.values.tolist()
            st["time"] = None if s.time is None else s.time.tolist()
        _echo_json(st)
        return
    for key in ("name", "title", "kind", "column", "length", "min", "max", "mean", "std"):
        value = st[key]
        if value in ("", None):
            continue
        click.echo(f"{key:>7}  {value:.6g}" if isinstance(value, float) else f"{key:>7}  {value}")
    click.echo(f"{'':>7}  {st['sparkline']}")
    if plot:
        click.echo(_plot(s.values, s.time))


@series.command("tau")
@click.argument("source")
@click.option("--max-tau", type=INT, default=32, show_default=True, help="Sweep τ = 1..MAX_TAU.")
@click.option("--tau", type=INT, default=4, show_default=True, help="The τ whose split point is used for every τ.")
@click.option("--split", default="0.6", show_default=True, help="Training windows: a count (600) or a fraction.")
@click.option("--ridge", type=FLOAT, default=0.0, show_default=True, help="Ridge penalty on the AR weights.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def tau_cmd(source: str, max_tau: int, tau: int, split: str, ridge: float, as_json: bool) -> None:
    """Validation MSE of the linear AR(τ) model for τ = 1..MAX_TAU (the same split for all)."""
    from seqtui.data.series import load_series
    from seqtui.models.series import tau_sweep

    s = load_series(source)
    rows = tau_sweep(s.values, max_tau=max_tau, split=_split(split), tau=tau, ridge=ridge, name=s.name)
    best = min(rows, key=lambda r: r["val_mse"])
    if as_json:
        _echo_json({"source": s.name, "rows": rows, "best_tau": best["tau"]})
        return
    top = max(r["val_mse"] for r in rows)
    click.echo(f"{'tau':>4}  {'train MSE':>12}  {'val MSE':>12}")
    for r in rows:
        bar = "█" * max(1, int(30 * r["val_mse"] / top)) if top > 0 else ""
        mark = " ◀ best" if r is best else ""
        click.echo(f"{r['tau']:>4}  {r['train_mse']:>12.6g}  {r['val_mse']:>12.6g}  {bar}{mark}")


@series.command("fit")
@click.argument("source")
@click.option("--model", "model", default="mlp", show_default=True, help="linear | mlp | rnn | gru | lstm")
@click.option("--tau", type=INT, default=4, show_default=True, help="Window length τ.")
@click.option("--split", default="0.6", show_default=True, help="Training windows: a count (600) or a fraction.")
@click.option("--hidden", type=INT, default=None, help="Hidden units (mlp 10, rnn/gru/lstm 16).")
@click.option("--epochs", type=INT, default=5, show_default=True)
@click.option("--batch", type=INT, default=16, show_default=True)
@click.option("--lr", type=FLOAT, default=0.01, show_default=True)
@click.option("--optimizer", default="adam", show_default=True, help="adam | sgd")
@click.option("--clip", type=FLOAT, default=None, help="Clip gradients to this global norm.")
@click.option("--ridge", type=FLOAT, default=0.0, show_default=True, help="linear: ridge penalty.")
@click.option("--seed", type=INT, default=0, show_default=True)
@click.option("--k", "ks", default="1,4,16,64", show_default=True, help="k-step horizons, comma-separated.")
@click.option("--no-standardize", is_flag=True, help="Train on the raw values.")
@click.option("--name", help="Run name (default: SOURCE-MODEL, made unique).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Put the run in this directory instead of the runs folder.")
@click.option("--detach", is_flag=True, help="Train in the background; print the run name and return.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--predictions", is_flag=True, help="With --json: include the series and the prediction arrays.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def fit_cmd(source, model, tau, split, hidden, epochs, batch, lr, optimizer, clip, ridge, seed, ks,
            no_standardize, name, run_dir, detach, quiet, predictions, as_json) -> None:
    """Train a model on SOURCE as a run; print MSEs (1-step and k-step) and, for linear, the coefficients.

    \b
    Examples:
      seqtui series fit sine --model linear --tau 4
      seqtui series fit sunspots --model gru --tau 8 --epochs 50 --clip 1 --detach
    """
    from seqtui.engine.runs import start_series_run
    from seqtui.models.series import SeriesRunConfig, parse_ks

    cfg = SeriesRunConfig(source=source, tau=tau, split=_split(split), standardize=not no_standardize,
                          model=model, hidden=hidden, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer,
                          clip=clip, ridge=ridge, seed=seed, ks=parse_ks(ks)).validate()
    rd, loaded = start_series_run(cfg, name=name, run_dir=run_dir, detach=detach)
    if detach:
        shown = rd.name if run_dir is None else str(rd.path)
        if as_json:
            _echo_json({"run": rd.name, "path": str(rd.path), "status": "running", "detached": True})
        else:
            click.echo(shown)
        click.echo(f"training in the background; follow with `seqtui runs show {shown}`", err=True)
        return
    _foreground(rd, quiet, as_json, predictions, series=loaded)


def continue_series_run(run, detach: bool, quiet: bool) -> None:
    """Continue a checked, resumable series run: in the background (print its name) or here, live."""
    from seqtui.engine import runs

    if detach:
        runs.resume_run(run.path)
        click.echo(run.name)
        return
    _foreground(run.dir, quiet, as_json=False, predictions=False)


def _foreground(rd, quiet: bool, as_json: bool, predictions: bool, series=None) -> None:
    """Train in this process with a live display; then the result (text or JSON). Exit 130 after
    Ctrl-C, 128 + N after signal N (the run is checkpointed and resumable)."""
    import sys

    from seqtui.engine.lifecycle import exit_code
    from seqtui.engine.series_trainer import SeriesTrainer, series_summary

    display = _Display(rd.name, quiet, lines=not (quiet or as_json))
    trainer = SeriesTrainer(rd, listeners=(display.on_event,), series=series)
    try:
        status = trainer.run()
    finally:
        display.close()
    if as_json:
        _echo_json(series_summary(rd, predictions=predictions))
    elif status == "finished":
        _print_result(series_summary(rd))
    if status != "finished":
        if not as_json:
            click.echo(f"stopped {rd.name} at epoch {trainer.epoch} ({trainer.stop_reason}); "
                       f"continue with: seqtui runs resume {rd.name}", err=True)
        sys.exit(exit_code(trainer.stop_reason) or 1)


def _print_result(d: dict) -> None:
    click.echo(f"{d['model']} on {d['source']}: τ = {d['tau']}, {d['n_train']} training / {d['n_val']} "
               f"validation windows, {d['num_params']} parameters, {d['seconds']:.3f} s")
    _print_mse_table(d)
    if "coef" in d:
        w = ", ".join(f"{c:.6g}" for c in d["coef"][:-1])
        click.echo(f"coefficients (x[t-{d['tau']}] .. x[t-1]): {w}; intercept {d['coef'][-1]:.6g}")
    epoch = f", epoch {d['epoch']}" if d.get("epoch") is not None else ""
    click.echo(f"run {d['run']}: evaluated its {d['checkpoint']} checkpoint{epoch}; "
               f"`seqtui series predict {d['run']} --k 1,4,16,64` evaluates it again")


def _print_mse_table(d: dict) -> None:
    def num(v):
        return "-" if v is None else f"{v:.6f}"

    click.echo(f"1-step MSE  train {num(d['train_mse'])}  val {num(d['val_mse'])}")
    for k, v in d["kstep_mse"].items():
        click.echo(f"{k:>4}-step   train {num(d['kstep_train_mse'].get(k))}  val {num(v)}")


@series.command("predict")
@click.argument("run")
@click.option("--k", "ks", default=None, help="k-step horizons, comma-separated (default: the run's).")
@click.option("--checkpoint", "kind", type=click.Choice(["best", "latest"]), default=None,
              help="Which checkpoint (default: best, else latest).")
@click.option("--predictions", is_flag=True, help="With --json: include the series and the prediction arrays.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def predict_cmd(run, ks, kind, predictions, as_json) -> None:
    """MSE per k (1-step and k-step, fed back) of RUN's best checkpoint on the training and held-out
    parts of its series; refreshes the run's predictions file (what the app plots)."""
    from seqtui.engine.runs import get_dir
    from seqtui.engine.series_trainer import read_predictions, write_evaluation
    from seqtui.models.series import parse_ks

    rd = get_dir(run)
    if rd.kind() != "series":
        raise ConfigError(f"run {rd.name!r} is a text run; use `seqtui eval {rd.name}` or `seqtui generate`")
    meta = write_evaluation(rd, None if ks is None else parse_ks(ks), kind)
    if as_json:
        out = dict(meta)
        if predictions:
            p = read_predictions(rd)
            out["values"] = p["values"].tolist()
            out["one_step"] = p["one_step"].tolist()
            out["kstep"] = {str(k): a.tolist() for k, a in p["kstep"].items()}
        _echo_json(out)
        return
    epoch = f", epoch {meta['epoch']}" if meta.get("epoch") is not None else ""
    click.echo(f"{rd.name}: {meta['model']} on {meta['source']}, τ = {meta['tau']}, {meta['checkpoint']} "
               f"checkpoint{epoch}; {meta['n_train']} training / {meta['n_val']} validation windows")
    _print_mse_table(meta)
    if "coef" in meta:
        w = ", ".join(f"{c:.6g}" for c in meta["coef"][:-1])
        click.echo(f"coefficients (x[t-{meta['tau']}] .. x[t-1]): {w}; intercept {meta['coef'][-1]:.6g}")


class _Display(LiveDisplay):
    """Renders a series run's events: a rich bar on a terminal (stderr), or plain epoch lines on
    stdout (throttled to one a second, the first and last always), nothing with ``quiet``."""

    def __init__(self, name: str, quiet: bool, lines: bool):
        super().__init__(quiet)
        self.name = name
        self.lines = lines
        self.total = None
        self.epochs = None
        self.start_step = 0
        self._last_line = 0.0

    def _line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False)
        elif self.lines:
            click.echo(text)

    def on_event(self, e: dict) -> None:
        import time

        kind = e.get("type")
        if kind == "start":
            self.total = e.get("total_steps")
            self.start_step = e.get("step") or 0
            cfg = e.get("config") or {}
            self.epochs = cfg.get("epochs")
            verb = f"resuming at epoch {e.get('epoch')}" if e.get("resumed") else "training"
            hidden = "" if cfg.get("model") == "linear" else f", {e.get('num_params')} parameters"
            if self.lines or self.live:
                self._line(f"{verb} {self.name}: {cfg.get('model')} τ = {cfg.get('tau')} on {cfg.get('source')}, "
                           f"{e.get('train_windows')} training / {e.get('val_windows')} validation windows{hidden}")
            if cfg.get("model") == "linear" or self.total is None:
                return
            self._start_bar()
        elif kind == "compile":
            if e.get("state") == "start" and self.live and self.progress is None:
                self.status = self.console.status("compiling kernels… (once; cached afterwards)")
                self.status.start()
            elif e.get("state") == "done" and self.status is not None:
                self.status.stop()
                self.status = None
                self._start_bar()
        elif kind == "progress":
            if self.progress is not None:
                self.progress.update(self.task, completed=e["step"], mse=e.get("mse") or float("nan"))
        elif kind == "epoch":
            if self.progress is not None:
                self.progress.update(self.task, completed=e["step"], val=e.get("val_mse") or float("nan"))
            now = time.monotonic()
            last = e.get("epoch") == self.epochs or e.get("epoch") == 1
            if last or now - self._last_line >= 1.0:
                self._last_line = now
                self._line(f"epoch {e['epoch']:>3}  train MSE {_f6(e.get('train_mse'))}  "
                           f"val MSE {_f6(e.get('val_mse'))}")
            if e.get("epoch") == self.epochs and self.live:  # the k-step evaluation follows
                self.close()
                self.status = self.console.status("evaluating 1-step and k-step predictions…")
                self.status.start()
        elif kind in ("error", "end", "kstep"):
            self.close()

    def _start_bar(self) -> None:
        if not self.live or self.progress is not None or self.status is not None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("mse {task.fields[mse]:.5f}"), TextColumn("val {task.fields[val]:.5f}"),
            TimeElapsedColumn(), console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task(self.name, total=self.total, completed=self.start_step,
                                           mse=float("nan"), val=float("nan"))


def _f6(v) -> str:
    return "-" if v is None else f"{v:.6f}"
