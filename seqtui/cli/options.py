"""click options generated from RunConfig's field metadata: one option per setting, no copies.

``run_options`` decorates a command with ``--cell``, ``--hidden``, … (and ``--no-clip``-style
flags where a field declares one); ``overrides_from`` turns what the user gave into the keyword
arguments of ``RunConfig.with_overrides``. The corpus is the command's argument, not an option.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

from seqtui.engine.config import RunConfig, field_kind, settings

ARGUMENT_FIELDS = ("corpus",)  # given as the command's argument
_TYPES = {"int": int, "float": float, "str": str}
_DEFAULTS = RunConfig()


def option_name(f: dataclasses.Field) -> str:
    return "--" + f.name.replace("_", "-")


def _help(f: dataclasses.Field) -> str:
    default = getattr(_DEFAULTS, f.name)
    return f.metadata["help"] + (f" [default: {default}]" if default not in (None, "") else "")


def option_fields() -> list[dataclasses.Field]:
    return [f for f in settings() if f.name not in ARGUMENT_FIELDS]


def run_options(command: Callable) -> Callable:
    """Add one click option per RunConfig setting (reverse order: click stacks decorators)."""
    for f in reversed(option_fields()):
        meta = f.metadata
        if meta.get("none_flag"):
            command = click.option(f"--{meta['none_flag']}", f"{f.name}__none", is_flag=True,
                                   help=f"Set {f.name} to none (disable it).")(command)
        base, _optional = field_kind(f)
        kind: Any = _TYPES[base]
        metavar = None
        if meta.get("choices") and not meta.get("syntax"):
            kind = click.Choice(meta["choices"])
        elif meta.get("syntax"):
            metavar = meta["syntax"]
        command = click.option(option_name(f), f.name, type=kind, metavar=metavar, default=None,
                               help=_help(f))(command)
    return command


def overrides_from(flags: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave (not None) → RunConfig.with_overrides keywords; pops them."""
    changes: dict[str, Any] = {}
    for f in option_fields():
        value = flags.pop(f.name, None)
        if f.metadata.get("none_flag"):
            if flags.pop(f"{f.name}__none", False):
                if value is not None:
                    raise click.UsageError(f"{option_name(f)} and --{f.metadata['none_flag']} are exclusive")
                changes[f.name] = None
                continue
        if value is not None:
            changes[f.name] = value
    return changes


def any_given(flags: dict[str, Any]) -> bool:
    """True if any generated option was given (for commands where they are not allowed)."""
    return any(v not in (None, False) for k, v in flags.items())
