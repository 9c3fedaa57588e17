"""`seqtui runs list|show|stop|resume|rm`: inspect and control runs (RUN = a name or a run dir)."""

from __future__ import annotations

import datetime as _dt
import json

import click

from seqtui.cli.safe import visible_line


@click.group("runs")
def runs() -> None:
    """List, show, stop, resume and remove runs."""


SORTS = ("created", "bpc", "ppl")


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array for scripts.")
@click.option("--sweep", "sweep_name", metavar="NAME", help="Only the trials of sweep NAME.")
@click.option("--sort", type=click.Choice(SORTS), default="created", show_default=True,
              help="created: newest first; bpc: best validation bits per character, lowest first "
                   "(ranks char, word and BPE runs on one scale); ppl: best validation perplexity "
                   "(per token), lowest first. Runs without the value come last.")
def list_cmd(as_json: bool, sweep_name: str | None, sort: str) -> None:
    """Every run: status, step, perplexities and the best validation bits per character (BPC)."""
    from seqtui.engine.runs import list_runs, runs_root

    items = list_runs()
    if sweep_name is not None:
        items = [r for r in items if r.config.get("sweep") == sweep_name]
        if not items and not as_json:
            click.echo(f"no runs of sweep {sweep_name!r} in {runs_root()}")
            return
    bpcs = {str(r.path): best_bits_per_char(r) for r in items}
    items = sort_runs(items, sort, bpcs)
    if as_json:
        click.echo(json.dumps([dict(r.to_json(), best_val_bpc=bpcs[str(r.path)]) for r in items], indent=1))
        return
    if not items:
        click.echo(f"no runs yet in {runs_root()} (start one with `seqtui train CORPUS`)")
        return
    from rich.console import Console
    from rich.table import Table

    from rich.markup import escape

    # Names are kept whole (a name is what you type next): the NAME column never wraps or
    # shrinks; on a narrow terminal the table is wider than the screen rather than cut.
    names = [visible_line(r.name) for r in items]
    table = Table(box=None, pad_edge=False, expand=False)
    for col in ("NAME", "STATUS", "STEP", "PPL", "BEST VAL", "BPC", "MODEL", "CORPUS", "CREATED"):
        extra = dict(no_wrap=True, min_width=max(map(len, names)), overflow="fold") if col == "NAME" else {}
        table.add_column(col, justify="right" if col in ("STEP", "PPL", "BEST VAL", "BPC") else "left", **extra)
    for r, name in zip(items, names):
        c = r.config
        step = f"{r.last_step}" + (f"/{r.total_steps}" if r.total_steps else "")
        if r.kind == "series":  # MSEs in the perplexity columns, marked
            table.add_row(escape(name), _status(r.status), step, _g(r.last_mse), _g(r.best_val_mse), "—",
                          escape(visible_line(_series_model(c))),
                          escape(_short(visible_line(_series_source(c)))), _when(r.created))
            continue
        model = visible_line(f"{c.get('cell', '?')} {c.get('layers', '?')}×{c.get('hidden', '?')}")
        table.add_row(escape(name), _status(r.status), step, _num(r.last_ppl), _num(r.best_val_ppl),
                      _num(bpcs[str(r.path)]), escape(model), escape(_short(visible_line(c.get("corpus", "?")))),
                      _when(r.created))
    console = Console(highlight=False)
    need = Console(width=100_000).measure(table).maximum
    if need > console.width:  # wider than the screen: let the terminal wrap, never cut a name
        console = Console(highlight=False, width=need)
    console.print(table)
    if any(r.kind == "series" for r in items):
        click.echo("series runs (model like `mlp τ=4`): PPL and BEST VAL are the train and validation "
                   "MSE, CORPUS the series")


@runs.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def show_cmd(run: str, as_json: bool) -> None:
    """Status, configuration, progress and checkpoints of RUN."""
    from seqtui.engine.runs import get_run

    info = get_run(run)
    checkpoints = _checkpoints(info)
    if as_json:
        data = info.to_json()
        data["checkpoints"] = checkpoints
        if info.kind == "series":
            data["predictions"] = info.dir.predictions_meta()
        click.echo(json.dumps(data, indent=1))
        return
    if info.kind == "series":
        _show_series(info, checkpoints)
        return
    c = info.config
    rows = [
        ("run", info.name), ("path", str(info.path)),
        ("status", info.status + (f" (pid {info.pid})" if info.pid else "")
         + (f" — {info.reason}" if info.reason not in (None, info.status) else "")),
        ("step", f"{info.last_step}" + (f" / {info.total_steps}" if info.total_steps else "")),
        ("train ppl", _num(info.last_ppl)), ("best val ppl", _num(info.best_val_ppl)),
        ("corpus", f"{c.get('corpus')} ({c.get('tokens')}, {c.get('preprocess')})"),
        ("model", f"{c.get('cell')} {c.get('layers')}×{c.get('hidden')}, V={c.get('vocab_size')}"),
        ("batches", f"B={c.get('batch_size')} T={c.get('num_steps')} {c.get('sampling')}, bptt "
                    f"{_bptt(c)}"),
        ("optimizer", f"{c.get('optimizer')} lr {c.get('lr')} decay {c.get('lr_decay')}, clip "
                      f"{c.get('clip')}"),
        ("length", f"{c.get('epochs')} epochs" if c.get("epochs") else
         f"{c.get('steps')} steps" if c.get("steps") else "10 epochs"),
        ("seed", str(c.get("seed"))), ("created", _when(info.created)),
    ]
    for kind, meta in checkpoints.items():
        rows.append((f"{kind} checkpoint", f"step {meta['step']}" + (
            f", best val ppl {_num(meta['best_val_ppl'])}" if meta.get("best_val_ppl") else "")))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {visible_line(value)}")


# markers per run (train, val): distinct shapes, so the plot reads without colour
PLOT_MARKERS = (("•", "x"), ("+", "o"), ("*", "#"), ("~", "@"), (":", "%"), ("=", "&"))
BASELINE_MARKER = "-"


@runs.command("plot")
@click.argument("run_names", metavar="RUN [RUN]...", nargs=-1, required=True)
@click.option("--width", type=click.IntRange(20, 1000), default=None, help="Columns (default: the terminal's).")
@click.option("--height", type=click.IntRange(8, 500), default=None, help="Rows (default: the terminal's).")
@click.option("--log", "log_y", is_flag=True, help="Log-scale perplexity axis.")
def plot_cmd(run_names: tuple[str, ...], width: int | None, height: int | None, log_y: bool) -> None:
    """Train and validation perplexity of RUNs against the step, overlaid in the terminal, with
    each run's n-gram baseline as a flat line. Markers tell the curves apart without colour
    (NO_COLOR or a pipe: no colour at all): per run, one marker for train and one for
    validation, shown in the legend; the baseline is drawn with '-'. Good under `watch`."""
    click.echo(render_plot(run_names, width, height, log_y), nl=False)


def _curves(info) -> dict:
    """train [(step, ppl)], val [(step, ppl)] and the last baseline val_ppl, since the last restart."""
    import math

    train, val, baseline = [], [], None
    for event in info.dir.events():
        kind = event.get("type")
        if kind == "restart":
            train, val, baseline = [], [], None
            continue
        step, ppl = event.get("step"), event.get("ppl")
        if kind == "baseline":
            v = event.get("val_ppl")
            if isinstance(v, (int, float)) and math.isfinite(v):
                baseline = float(v)
            continue
        if kind not in ("progress", "val"):
            continue
        if not isinstance(step, int) or not isinstance(ppl, (int, float)) or not math.isfinite(ppl):
            continue
        (train if kind == "progress" else val).append((step, float(ppl)))
    return {"train": train, "val": val, "baseline": baseline}


def render_plot(run_names, width: int | None = None, height: int | None = None, log_y: bool = False,
                color: bool | None = None) -> str:
    """The plot as text (plotext), RunError for an unknown run or one without perplexities."""
    import os
    import shutil
    import sys

    import plotext as plt

    from seqtui.engine.runs import get_run
    from seqtui.errors import RunError

    infos = []
    for name in run_names:
        info = get_run(name)
        if info.kind == "series":
            raise RunError(f"{info.name} is a series run (MSE, not perplexity); use `seqtui series predict`")
        infos.append((info, _curves(info)))
    if not any(c["train"] or c["val"] for _, c in infos):
        raise RunError("no perplexities logged yet by " + ", ".join(visible_line(i.name) for i, _ in infos))
    if color is None:
        color = not os.environ.get("NO_COLOR") and sys.stdout.isatty()
    size = shutil.get_terminal_size((100, 30))
    w, h = width or size.columns, height or max(size.lines - 1, 8)
    plt.clear_figure()
    plt.plotsize(w, h)
    steps = [s for _, c in infos for s, _ in c["train"] + c["val"]]
    lo, hi = min(steps), max(steps)
    for k, (info, c) in enumerate(infos):
        tm, vm = PLOT_MARKERS[k % len(PLOT_MARKERS)]
        name = visible_line(info.name)
        if c["train"]:
            plt.plot(*zip(*c["train"]), marker=tm, label=f"{name} train [{tm}]")
        if c["val"]:
            plt.plot(*zip(*c["val"]), marker=vm, label=f"{name} val [{vm}]")
        if c["baseline"] is not None:
            plt.plot([lo, hi], [c["baseline"]] * 2, marker=BASELINE_MARKER,
                     label=f"{name} n-gram baseline [{BASELINE_MARKER}] {c['baseline']:.3f}")
    if log_y:
        plt.yscale("log")
    plt.title("perplexity per token" + (" (log scale)" if log_y else ""))
    plt.xlabel("step")
    text = plt.build()
    plt.clear_figure()
    if not color:
        text = plt.uncolorize(text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text if text.endswith("\n") else text + "\n"


@runs.command("stop")
@click.argument("run")
@click.option("--timeout", type=click.FloatRange(0, 86_400), default=60.0, show_default=True,
              help="Seconds to wait for the checkpoint and exit (0..86400).")
def stop_cmd(run: str, timeout: float) -> None:
    """Ask RUN to checkpoint and stop (SIGTERM), and wait for it."""
    from seqtui.engine.runs import stop_run

    info = stop_run(run, timeout=timeout)
    click.echo(f"stopped {visible_line(info.name)} at step {info.last_step} ({info.status})")


@runs.command("resume")
@click.argument("run")
@click.option("--detach", is_flag=True, help="Continue in the background.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Raise the budget to N steps in all (extends a finished run).")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Raise the budget to N epochs in all (extends a finished run).")
@click.option("--fresh", is_flag=True,
              help="Start over from step 0 when the run has no checkpoint left.")
def resume_cmd(run: str, detach: bool, quiet: bool, steps, epochs, fresh: bool) -> None:
    """Continue a stopped RUN from its latest checkpoint (bit-exactly); from its best one,
    saying so, when latest is missing or unreadable. --steps/--epochs extend a finished run."""
    from seqtui.cli.train import continue_run
    from seqtui.engine import runs as engine_runs

    info = engine_runs.get_run(run)
    if info.kind == "series":
        from seqtui.cli.series import continue_series_run

        engine_runs.check_resumable(info, kinds=("series",))
        continue_series_run(info, detach, quiet)
        return
    info = engine_runs.prepare_resume(run, steps=steps, epochs=epochs, fresh=fresh,
                                      say=lambda line: click.echo(f"note: {visible_line(line)}", err=True))
    continue_run(info, detach, quiet)


@runs.command("rm")
@click.argument("run_names", metavar="[RUN]...", nargs=-1)
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.option("--failed", is_flag=True, help="Every failed run (with the RUNs given, if any).")
@click.option("--stopped", is_flag=True, help="Every stopped run (with the RUNs given, if any).")
def rm_cmd(run_names: tuple[str, ...], yes: bool, failed: bool, stopped: bool) -> None:
    """Delete runs' directories (checkpoints, events). Refuses a running run and anything that
    is not provably a seqtui run (no marker/layout, a symlink). Exit 1 if you answer no."""
    import sys

    from seqtui.engine.runs import check_removable, list_runs, remove_run

    if not run_names and not (failed or stopped):
        raise click.UsageError("name at least one RUN, or --failed / --stopped")
    chosen = {}
    for name in run_names:
        info = check_removable(name)
        chosen.setdefault(str(info.path), info)
    wanted = {s for s, on in (("failed", failed), ("stopped", stopped)) if on}
    for info in list_runs() if wanted else ():
        if info.status in wanted:
            chosen.setdefault(str(info.path), info)
    if not chosen:
        click.echo(f"no {' or '.join(sorted(wanted))} runs")
        return
    infos = list(chosen.values())
    for info in infos:  # refuse before deleting anything
        check_removable(info.path)
    if not yes:
        what = (f"run {visible_line(infos[0].name)} ({visible_line(infos[0].path)})" if len(infos) == 1
                else f"{len(infos)} runs: " + ", ".join(visible_line(i.name) for i in infos))
        if not click.confirm(f"delete {what}?", default=False, err=True):
            click.echo("aborted", err=True)
            sys.exit(1)
    for info in infos:
        remove_run(info.path)
        click.echo(f"removed {visible_line(info.name)}")


# ----------------------------------------------------------------------------------------------
def best_bits_per_char(info) -> float | None:
    """The lowest validation bits per character in the run's ``val`` events since its last
    ``restart`` (None: a series run, or no val event carried ``bits_per_char``)."""
    import math

    if info.kind == "series":
        return None
    best = None
    try:
        for event in info.dir.events_reversed():
            kind = event.get("type")
            if kind == "restart":
                break
            if kind != "val":
                continue
            bpc = event.get("bits_per_char")
            if isinstance(bpc, (int, float)) and not isinstance(bpc, bool) and math.isfinite(bpc):
                best = float(bpc) if best is None else min(best, float(bpc))
    except (OSError, ValueError):
        return best
    return best


def sort_runs(items: list, sort: str, bpcs: dict) -> list:
    """``created``: as listed (newest first); ``bpc`` / ``ppl``: lowest first, missing last."""
    if sort == "created":
        return list(items)  # list_runs' order: newest first
    if sort == "bpc":
        value = lambda r: bpcs.get(str(r.path))  # noqa: E731
    else:
        value = lambda r: r.best_val_ppl if r.kind != "series" else None  # noqa: E731
    return sorted(items, key=lambda r: (value(r) is None, value(r) or 0.0))


def _show_series(info, checkpoints: dict) -> None:
    c = info.config
    pred = info.dir.predictions_meta() or {}
    split = c.get("split")
    rows = [
        ("run", info.name), ("path", str(info.path)),
        ("status", info.status + (f" (pid {info.pid})" if info.pid else "")
         + (f" — {info.reason}" if info.reason not in (None, info.status) else "")),
        ("step", f"{info.last_step}" + (f" / {info.total_steps}" if info.total_steps else "")),
        ("train mse", _mse(info.last_mse)), ("best val mse", _mse(info.best_val_mse)),
        ("source", str(c.get("source"))),
        ("model", _series_model(c)),
        ("windows", f"τ={c.get('tau')}, split {split}" + (f" ({pred['n_train']} train / {pred['n_val']} val)"
                                                         if "n_train" in pred else "")
         + ("" if c.get("standardize", True) else ", raw values")),
        ("optimizer", "closed form (least squares" + (f", ridge {c.get('ridge')}" if c.get("ridge") else "") + ")"
         if c.get("model") == "linear" else
         f"{c.get('optimizer')} lr {c.get('lr')}, batch {c.get('batch')}, clip {c.get('clip')}"),
        ("length", f"{c.get('epochs')} epochs"), ("seed", str(c.get("seed"))), ("created", _when(info.created)),
    ]
    for kind, meta in checkpoints.items():
        rows.append((f"{kind} checkpoint", f"epoch {meta['epoch']}, step {meta['step']}" + (
            f", best val mse {_num6(meta['best_val_mse'])}" if meta.get("best_val_mse") is not None else "")))
    if pred:
        rows.append(("evaluated", f"{pred.get('checkpoint')} checkpoint, epoch {pred.get('epoch')}: "
                                  f"1-step val mse {_num6(pred.get('val_mse'))}"))
        for k, v in (pred.get("kstep_mse") or {}).items():
            rows.append((f"{k}-step mse", f"train {_num6((pred.get('kstep_train_mse') or {}).get(k))}  "
                                          f"val {_num6(v)}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def _series_source(c: dict) -> str:
    """The source, short: ``sine`` for the book's default sine, a file's name, else as given."""
    import os

    src = str(c.get("source", "?"))
    if src == "sine:n=1000,freq=0.01,noise=0.2,seed=0":
        return "sine"
    if os.sep in src:
        return src.rsplit(os.sep, 1)[1]
    return src


def _series_model(c: dict) -> str:
    """``mlp τ=4 H=10``, ``gru τ=8 H=16``, ``linear τ=4``."""
    model = c.get("model", "?")
    if model == "linear":
        return f"linear τ={c.get('tau', '?')}"
    hidden = c.get("hidden")
    if hidden is None:
        hidden = 10 if model == "mlp" else 16
    return f"{model} τ={c.get('tau', '?')} H={hidden}"


def _checkpoints(info) -> dict:
    out = {}
    for kind in ("latest", "best"):
        meta = info.dir.checkpoint_meta(kind)
        if meta is not None:
            out[kind] = {"path": str(info.dir.checkpoint(kind)), "step": meta.get("step"),
                         "epoch": meta.get("epoch"), "best_val_ppl": meta.get("best_val_ppl")}
            if meta.get("run_kind") == "series":
                out[kind]["best_val_mse"] = meta.get("best_val_mse")
    return out


def _status(status: str) -> str:
    color = {"running": "green", "finished": "blue", "failed": "red"}.get(status, "yellow")
    return f"[{color}]{status}[/]"


def _num(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _mse(x) -> str:
    return "—" if x is None else f"{x:.4g} mse"


def _g(x) -> str:
    return "—" if x is None else f"{x:.4g}"


def _num6(x) -> str:
    return "—" if x is None else f"{x:.6f}"


def _short(text: str, width: int = 24) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _when(ts) -> str:
    if not ts:
        return "—"
    return _dt.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M")


def _bptt(c: dict) -> str:
    mode = c.get("bptt")
    if mode == "truncated":
        return f"truncated:{c.get('bptt_k')}"
    if mode == "randomized":
        return f"randomized:{c.get('bptt_p')}"
    return str(mode)
