"""The `seqtui` command: a click group whose subcommands load lazily, so `--help` stays instant.

Each subcommand lives in its own module (``seqtui/cli/<name>.py``) and is imported only when it
runs. Bare ``seqtui`` opens the Textual app. User errors (:class:`seqtui.errors.SeqtuiError`)
become one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> (module:attribute, one-line help shown by `seqtui --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "corpora": ("seqtui.cli.corpora:corpora", "List, inspect, add and remove corpora."),
    "cache": ("seqtui.cli.cache:cache", "List, clear and cap the cached datasets (tokens, BPE, indexes)."),
    "series": ("seqtui.cli.series:series", "Real-valued series: list, show, the τ-sweep, fit MLP/AR/RNN models."),
    "ngram": ("seqtui.cli.ngram:ngram", "Laplace-smoothed n-gram baseline: perplexity and a sample."),
    "train": ("seqtui.cli.train:train", "Train an RNN/GRU/LSTM language model (a run)."),
    "runs": ("seqtui.cli.runs:runs", "List, show, stop, resume and remove runs."),
    "sweep": ("seqtui.cli.sweep:sweep", "Search hyperparameters: many runs on Dask, chosen by Optuna."),
    "generate": ("seqtui.cli.generate:generate", "Continue a prompt with a trained run."),
    "eval": ("seqtui.cli.evaluate:evaluate", "Perplexity of a run on held-out or given text."),
    "bench": ("seqtui.cli.bench:bench", "Benchmark the kernels on this machine."),
    "warmup": ("seqtui.cli.warmup:warmup", "Compile the kernels now, so the first run starts at once."),
    "serve": ("seqtui.cli.serve:serve", "Serve the app to a browser (textual-serve)."),
    "app": ("seqtui.cli.app:app", "Open the Textual app (the default)."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name == module_name:
                return _missing(cmd_name)
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _missing(name: str) -> click.Command:
    @click.command(name, help=COMMANDS[name][1])
    def cmd() -> None:
        raise click.ClickException(f"'seqtui {name}' is not available in this build")

    return cmd


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(package_name="seqtui")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """seqtui: watch recurrent language models learn, in the terminal.

    Run without a command to open the app. Every job also runs headless through the
    subcommands below (see `seqtui COMMAND --help`).
    """
    if ctx.invoked_subcommand is None:
        cmd = cli.get_command(ctx, "app")
        if cmd is None or cmd.callback is None or "not available" in (cmd.help or ""):
            click.echo(ctx.get_help())
            return
        ctx.invoke(cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group, turning user errors into one line and an exit code."""
    from seqtui.errors import SeqtuiError

    try:
        cli.main(args=argv, prog_name="seqtui", standalone_mode=False)
    except SeqtuiError as exc:
        from seqtui.cli.safe import visible_line

        click.echo(f"error: {visible_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except MemoryError as exc:  # a safety net: the trainer checks sizes before allocating
        click.echo(f"error: out of memory ({exc}); use a smaller model or batch", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
