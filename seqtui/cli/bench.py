"""`seqtui bench`: the kernels' and the text pipeline's benchmarks on this machine.

The benchmark scripts ship in the wheel as ``seqtui._bench``; in a source checkout they are the
repository's ``bench`` package. Either may be missing in a given build: what exists runs.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

SUITES = {"train": "bench_train", "encode": "bench_encode"}


def _load(module: str):
    for package in ("seqtui._bench", "bench"):
        try:
            return importlib.import_module(f"{package}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name not in (package, f"{package}.{module}", package.split(".")[0]):
                raise
    root = Path(__file__).resolve().parents[2]  # a source checkout: <repo>/bench
    if (root / "bench" / f"{module}.py").is_file():
        sys.path.insert(0, str(root))
        try:
            return importlib.import_module(f"bench.{module}")
        finally:
            sys.path.remove(str(root))
    return None


@click.command("bench", context_settings={"ignore_unknown_options": True})
@click.option("--only", type=click.Choice(sorted(SUITES)), help="Run one suite.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(only: str | None, args: tuple[str, ...]) -> None:
    """Benchmark training steps and text encoding.

    Extra ARGS go to the suite chosen with --only (see `seqtui bench --only train -- --help`).
    """
    if args and not only:
        raise click.UsageError("suite arguments need --only train|encode (the suites differ)")
    ran = 0
    for name, module in SUITES.items():
        if only and name != only:
            continue
        mod = _load(module)
        if mod is None or not hasattr(mod, "main"):
            click.echo(f"bench {name}: not available in this build", err=True)
            continue
        click.echo(f"== {name} ==", err=True)
        result = mod.main(list(args))
        ran += 1
        if isinstance(result, int) and result != 0:
            sys.exit(result)
    if not ran:
        raise click.ClickException("no benchmarks are available in this build")
