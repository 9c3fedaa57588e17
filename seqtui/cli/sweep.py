"""`seqtui sweep CORPUS`: a hyperparameter search of training runs on Dask, chosen by Optuna.

\b
    seqtui sweep kjv --param cell=rnn,gru,lstm --param hidden=128,256 --budget 2epochs
    seqtui sweep kjv --search tpe --trials 30 --param lr=1e-3..1e-2:log --budget 500steps
    seqtui sweep kjv --search tpe --param lr=1e-3..3e-2:log --scheduler tcp://HOST:8786
    seqtui sweep show NAME          # the ranked table, at any time (also while it runs)
    seqtui sweep list

Every train option (``--hidden``, ``--optimizer``, …) fixes that setting for all trials. Exit
codes: 0 done, 130 after Ctrl-C (running trials checkpointed; run the command again to resume),
2 for bad input, missing packages, an unreachable scheduler or storage.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import click

from seqtui.cli.options import overrides_from, run_options

SUBCOMMANDS = ("run", "show", "list")


class _DefaultRun(click.Group):
    """``seqtui sweep CORPUS …`` means ``seqtui sweep run CORPUS …``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("sweep", cls=_DefaultRun, context_settings={"max_content_width": 100})
def sweep() -> None:
    """Search hyperparameters: many runs on Dask, chosen and pruned by Optuna.

    \b
    seqtui sweep CORPUS --param NAME=VALUES … [options]   (= seqtui sweep run …)
    seqtui sweep show NAME                                 ranked results, any time
    seqtui sweep list                                      sweeps in the default storage

    Needs `pip install 'seqtui[sweep]'`. See `seqtui sweep run --help`.
    """


@sweep.command("run", context_settings={"max_content_width": 100})
@click.argument("corpus")
@click.option("--param", "params", multiple=True, metavar="NAME=SPEC",
              help="A dimension: choices `cell=rnn,gru,lstm`, `bptt=full,truncated:10` or a range "
                   "`lr=1e-3..1e-2:log` (int range for int settings). Repeatable.")
@click.option("--space", "space_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The search space as a TOML/JSON file: NAME = [choices] | \"SPEC\" | "
                   "{low, high, log}.")
@click.option("--search", type=click.Choice(("grid", "random", "tpe")), default="tpe",
              show_default=True, help="How trials are chosen.")
@click.option("--trials", type=int, help="How many trials in all [default: the grid's size; 20].")
@click.option("--budget", help="Per trial: e.g. 200steps or 2epochs [default: the train options'].")
@click.option("--prune/--no-prune", default=None,
              help="Median pruner: stop a trial early on its validation perplexity "
                   "[default: on for random/tpe, off for grid].")
@click.option("--workers", type=int, help="Local cluster workers [default: cores ÷ threads].")
@click.option("--threads-per-trial", type=int,
              help="Threads each trial uses (RunConfig threads) [default: workers × threads = cores].")
@click.option("--scheduler", metavar="ADDRESS",
              help="Use an existing Dask cluster (tcp://HOST:8786) instead of a local one.")
@click.option("--timeout", "connect_timeout", type=float, default=10.0, show_default=True,
              help="Seconds to reach --scheduler.")
@click.option("--study", "study_name", metavar="NAME",
              help="Sweep name [default: from the corpus, search and space; the same command "
                   "resumes the same sweep].")
@click.option("--storage", metavar="URL",
              help="Optuna storage URL (sqlite:///file.db, postgresql://…) [default: "
                   "DATA_DIR/sweeps/NAME.db].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@run_options
def run_cmd(corpus, params, space_file, search, trials, budget, prune, workers, threads_per_trial,
            scheduler, connect_timeout, study_name, storage, as_json, **flags) -> None:
    """Sweep CORPUS: run trials (ordinary runs tagged with the sweep) and rank them."""
    from seqtui import sweep as sweep_pkg

    sweep_pkg.require()
    from seqtui.engine.config import RunConfig
    from seqtui.sweep.driver import Sweep, make_plan, parse_budget
    from seqtui.sweep.space import build_space
    from seqtui.errors import ConfigError

    changes = overrides_from(dict(flags))
    if budget:
        if "steps" in changes or "epochs" in changes:
            raise click.UsageError("--budget replaces --steps/--epochs; give one")
        changes.update(parse_budget(budget))
    base = RunConfig().with_overrides(corpus=corpus, **changes)
    space = build_space(params, space_file)
    if any(name in ("steps", "epochs") for name in space.names) and budget:
        raise ConfigError("--budget fixes the length of every trial; do not also sweep steps/epochs")
    if prune is None:
        prune = search != "grid"
    name = study_name or _default_name(corpus, search, space, base)
    plan = make_plan(name, base, space, search, trials, prune, storage, threads_per_trial)
    from seqtui.sweep import cluster as cluster_mod

    echo = _echo
    sw = Sweep(plan, None, echo)
    sw.open()
    if sw.pending() == 0:
        echo(f"sweep {name} is complete ({plan.trials} trials); nothing to run")
        _show(sw.study, as_json)
        return
    cl = cluster_mod.start(scheduler, workers, plan.base.threads if scheduler is None else
                           threads_per_trial, timeout=connect_timeout)
    sw.cluster = cl
    try:
        where = (f"scheduler {cl.address}" if scheduler else
                 f"local cluster, {cl.slots()} workers × {cl.threads_per_trial} thread"
                 f"{'s' * (cl.threads_per_trial != 1)}")
        verb = "resuming" if sw.resumed else "sweep"
        echo(f"{verb} {name}: {search}, {plan.trials} trials, {space.describe()} on {where}")
        echo(f"study: {plan.storage}")
        if cl.dashboard:
            echo(f"dashboard: {cl.dashboard}")
        for notice in plan.notices:
            echo(notice)
        outcome = sw.run()
        _show(sw.study, as_json)
    finally:
        cl.close()
    if outcome == "interrupted":
        echo(f"interrupted; resume with the same command (sweep {name})")
        sys.exit(130)


@sweep.command("show")
@click.argument("name")
@click.option("--storage", metavar="URL", help="The study's storage [default: DATA_DIR/sweeps/NAME.db].")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def show_cmd(name, storage, as_json) -> None:
    """The ranked trials of sweep NAME (also while it runs)."""
    from seqtui import sweep as sweep_pkg

    sweep_pkg.require()
    from seqtui.sweep.study import check_name, load_study, storage_url, sweeps_dir

    check_name(name)
    if storage is None and not (sweeps_dir() / f"{name}.db").is_file():
        from seqtui.errors import SeqtuiError

        raise SeqtuiError(f"no sweep named {name!r} in {sweeps_dir()} (see `seqtui sweep list`)")
    _show(load_study(name, storage_url(name, storage)), as_json)


@sweep.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_cmd(as_json) -> None:
    """Sweeps in the default storage (DATA_DIR/sweeps)."""
    from seqtui import sweep as sweep_pkg

    sweep_pkg.require()
    from seqtui.sweep.results import summary
    from seqtui.sweep.study import list_sweeps, load_study, storage_url, sweeps_dir

    out = []
    for path in list_sweeps():
        try:
            data = summary(load_study(path.stem, storage_url(path.stem, None)))
        except Exception:
            continue
        out.append({k: data[k] for k in ("sweep", "search", "trials", "counts", "best")})
    if as_json:
        click.echo(json.dumps(out, indent=1))
        return
    if not out:
        click.echo(f"no sweeps yet in {sweeps_dir()}")
        return
    for s in out:
        counts = ", ".join(f"{n} {k}" for k, n in s["counts"].items())
        best = s["best"]
        tail = f"best val ppl {best['best_val_ppl']:.3f} (trial {best['trial']})" if best else ""
        click.echo(f"{s['sweep']}  {s['search']}  {counts}  {tail}")


def _show(study, as_json: bool) -> None:
    from seqtui.sweep.results import print_table, summary

    data = summary(study)
    if as_json:
        click.echo(json.dumps(data, indent=1, default=str))
    else:
        print_table(data)


def _default_name(corpus: str, search: str, space, base) -> str:
    """The same command names the same sweep: corpus stem, search, a digest of space + base."""
    from seqtui.engine.runs import default_name

    stem = default_name({"corpus": corpus, "cell": search}).rsplit("-", 1)[0]
    digest = hashlib.sha256(json.dumps([space.to_json(), base.to_dict()], sort_keys=True,
                                       default=str).encode()).hexdigest()[:6]
    return f"{stem}-{search}-{digest}"


def _echo(text: str) -> None:
    click.echo(text, err=True)
