"""`seqtui runs list|show|stop|resume|rm`: inspect and control runs (RUN = a name or a run dir)."""

from __future__ import annotations

import datetime as _dt
import json

import click

from seqtui.cli.safe import visible_line


@click.group("runs")
def runs() -> None:
    """List, show, stop, resume and remove runs."""


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array for scripts.")
@click.option("--sweep", "sweep_name", metavar="NAME", help="Only the trials of sweep NAME.")
def list_cmd(as_json: bool, sweep_name: str | None) -> None:
    """Every run, newest first: status, step, perplexities."""
    from seqtui.engine.runs import list_runs, runs_root

    items = list_runs()
    if sweep_name is not None:
        items = [r for r in items if r.config.get("sweep") == sweep_name]
        if not items and not as_json:
            click.echo(f"no runs of sweep {sweep_name!r} in {runs_root()}")
            return
    if as_json:
        click.echo(json.dumps([r.to_json() for r in items], indent=1))
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
    for col in ("NAME", "STATUS", "STEP", "PPL", "BEST VAL", "MODEL", "CORPUS", "CREATED"):
        extra = dict(no_wrap=True, min_width=max(map(len, names)), overflow="fold") if col == "NAME" else {}
        table.add_column(col, justify="right" if col in ("STEP", "PPL", "BEST VAL") else "left", **extra)
    for r, name in zip(items, names):
        c = r.config
        step = f"{r.last_step}" + (f"/{r.total_steps}" if r.total_steps else "")
        if r.kind == "series":  # MSEs in the perplexity columns, marked
            table.add_row(escape(name), _status(r.status), step, _g(r.last_mse), _g(r.best_val_mse),
                          escape(visible_line(_series_model(c))),
                          escape(_short(visible_line(_series_source(c)))), _when(r.created))
            continue
        model = visible_line(f"{c.get('cell', '?')} {c.get('layers', '?')}×{c.get('hidden', '?')}")
        table.add_row(escape(name), _status(r.status), step, _num(r.last_ppl), _num(r.best_val_ppl),
                      escape(model), escape(_short(visible_line(c.get("corpus", "?")))), _when(r.created))
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
