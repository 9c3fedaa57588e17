"""`seqtui warmup`: compile the kernels now (a server image runs it once), in parallel processes."""

from __future__ import annotations

import sys

import click


@click.command("warmup")
@click.option("--cells", default="gru", show_default=True, help="Comma-separated cells: rnn,gru,lstm.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "float64"]))
@click.option("--jobs", type=click.IntRange(0, 256), default=0, help="Parallel processes [default: the cores].")
@click.option("--quiet", "-q", is_flag=True, help="Do not list the kernels as they compile.")
def warmup(cells: str, dtype: str, jobs: int, quiet: bool) -> None:
    """Compile every kernel a run of CELLS uses and cache it, so the first run starts at once."""
    from seqtui.engine.warmup import main

    code = main(["--cells", cells, "--dtype", dtype, "--jobs", str(jobs)] + (["-q"] if quiet else []))
    if code:
        sys.exit(code)
