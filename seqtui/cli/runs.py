"""`seqtui runs list|show|stop|resume|rm`: inspect and control runs (RUN = a name or a run dir)."""

from __future__ import annotations

import datetime as _dt
import json

import click


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

    table = Table(box=None, pad_edge=False, expand=False)
    for col in ("NAME", "STATUS", "STEP", "PPL", "BEST VAL", "MODEL", "CORPUS", "CREATED"):
        table.add_column(col, justify="right" if col in ("STEP", "PPL", "BEST VAL") else "left")
    for r in items:
        c = r.config
        step = f"{r.last_step}" + (f"/{r.total_steps}" if r.total_steps else "")
        model = f"{c.get('cell', '?')} {c.get('layers', '?')}×{c.get('hidden', '?')}"
        table.add_row(r.name, _status(r.status), step, _num(r.last_ppl), _num(r.best_val_ppl), model,
                      _short(str(c.get("corpus", "?"))), _when(r.created))
    Console(highlight=False).print(table)


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
        click.echo(json.dumps(data, indent=1))
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
        click.echo(f"{key:<{width}}  {value}")


@runs.command("stop")
@click.argument("run")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the checkpoint and exit.")
def stop_cmd(run: str, timeout: float) -> None:
    """Ask RUN to checkpoint and stop (SIGTERM), and wait for it."""
    from seqtui.engine.runs import stop_run

    info = stop_run(run, timeout=timeout)
    click.echo(f"stopped {info.name} at step {info.last_step} ({info.status})")


@runs.command("resume")
@click.argument("run")
@click.option("--detach", is_flag=True, help="Continue in the background.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def resume_cmd(run: str, detach: bool, quiet: bool) -> None:
    """Continue a stopped RUN from its latest checkpoint (bit-exactly)."""
    from seqtui.cli.train import continue_run
    from seqtui.engine import runs as engine_runs

    info = engine_runs.get_run(run)
    engine_runs.check_resumable(info)
    continue_run(info, detach, quiet)


@runs.command("rm")
@click.argument("run")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
def rm_cmd(run: str, yes: bool) -> None:
    """Delete RUN's directory (checkpoints, events). Refuses while it runs."""
    from seqtui.engine.runs import get_run, remove_run

    info = get_run(run)
    if not yes:
        click.confirm(f"delete run {info.name} ({info.path})?", abort=True, err=True)
    remove_run(info.path)
    click.echo(f"removed {info.name}")


# ----------------------------------------------------------------------------------------------
def _checkpoints(info) -> dict:
    out = {}
    for kind in ("latest", "best"):
        meta = info.dir.checkpoint_meta(kind)
        if meta is not None:
            out[kind] = {"path": str(info.dir.checkpoint(kind)), "step": meta.get("step"),
                         "epoch": meta.get("epoch"), "best_val_ppl": meta.get("best_val_ppl")}
    return out


def _status(status: str) -> str:
    color = {"running": "green", "finished": "blue", "failed": "red"}.get(status, "yellow")
    return f"[{color}]{status}[/]"


def _num(x) -> str:
    return "—" if x is None else f"{x:.3f}"


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
