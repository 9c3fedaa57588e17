"""`seqtui series list|show|tau|fit`: real-valued series and the models of "Working with Sequences".

``list`` reads nothing; ``show`` loads the series (no numba); ``tau`` and ``fit`` load the kernels.
``fit`` trains in this process and prints the result (a run later). Every bad input is one line on
stderr and exit code 2 (numbers are parsed here into ConfigError, not click usage errors).
"""

from __future__ import annotations

import json
import math

import click

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
@click.option("--predictions", is_flag=True, help="With --json: include the prediction arrays.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def fit_cmd(source, model, tau, split, hidden, epochs, batch, lr, optimizer, clip, ridge, seed, ks,
            no_standardize, predictions, as_json) -> None:
    """Train a model on SOURCE in this process; print MSEs (1-step and k-step) and, for linear, the coefficients."""
    from seqtui.models.series import SeriesRunConfig, parse_ks, run_series

    cfg = SeriesRunConfig(source=source, tau=tau, split=_split(split), standardize=not no_standardize,
                          model=model, hidden=hidden, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer,
                          clip=clip, ridge=ridge, seed=seed, ks=parse_ks(ks))

    def on_epoch(info):
        if not as_json:
            click.echo(f"epoch {info.epoch:>3}  train MSE {info.train_mse:.6f}  val MSE {info.val_mse:.6f}")

    res = run_series(cfg, on_epoch=on_epoch)
    d = res.to_json()
    if as_json:
        if predictions:
            d.update({k: v for k, v in res.evaluation.to_json(arrays=True).items() if k in ("one_step", "kstep")})
            d["values"] = res.windows.values.tolist()
        _echo_json(d)
        return
    click.echo(f"{d['model']} on {d['source']}: τ = {d['tau']}, {d['n_train']} training / {d['n_val']} "
               f"validation windows, {d['num_params']} parameters, {d['seconds']:.3f} s")
    click.echo(f"1-step MSE  train {d['train_mse']:.6f}  val {d['val_mse']:.6f}")
    for k, v in d["kstep_mse"].items():
        tr = d["kstep_train_mse"][k]
        click.echo(f"{k:>4}-step   train {'-' if tr is None else f'{tr:.6f}'}  val {'-' if v is None else f'{v:.6f}'}")
    if "coef" in d:
        w = ", ".join(f"{c:.6g}" for c in d["coef"][:-1])
        click.echo(f"coefficients (x[t-{d['tau']}] .. x[t-1]): {w}; intercept {d['coef'][-1]:.6g}")
