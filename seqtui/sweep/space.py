"""The search space: ``--param NAME=SPEC`` (repeatable) or a small TOML/JSON file (``--space``).

A SPEC is either choices, ``cell=rnn,gru,lstm`` / ``hidden=128,256`` / ``bptt=full,truncated:10``
(each parsed as the RunConfig field's type; ``none`` clears an optional field), or a range,
``lr=1e-3..1e-2`` / ``hidden=64..512:log`` (float for float fields, int for int fields, whose ends
must be integers). A space file maps names to a list (choices), a string (a SPEC) or a table
``{low = 1e-3, high = 1e-2, log = true}``.

Every name must be a RunConfig setting, and every point the sweep may try is checked by
``RunConfig.validate`` before anything starts: each grid point, and for ranges both ends
(crossed with every choice). Importing this module is cheap (no optuna, no numpy).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from seqtui.engine.config import RunConfig, field_kind, settings
from seqtui.errors import ConfigError
from seqtui.files import KiB, read_text_bounded

MAX_SPACE_BYTES = 64 * KiB
MAX_CHECKED_POINTS = 20_000       # beyond this, each parameter's values are checked one by one
RESERVED = {"corpus": "the corpus is the sweep's argument",
            "threads": "threads come from --threads-per-trial"}


@dataclass(frozen=True)
class Param:
    """One dimension: choices, or a numeric range [low, high] (``log`` scale optional)."""

    name: str
    kind: str                          # "int" | "float" | "str" (the RunConfig field's type)
    choices: tuple[Any, ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def describe(self) -> str:
        if self.is_range:
            return f"{self.name}={self.low}..{self.high}" + (":log" if self.log else "")
        return f"{self.name}=" + ",".join("none" if c is None else str(c) for c in self.choices)

    def to_json(self) -> dict[str, Any]:
        if self.is_range:
            return {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high,
                    "log": self.log}
        return {"name": self.name, "kind": self.kind, "choices": list(self.choices)}

    def edge_values(self) -> tuple[Any, ...]:
        """What validation checks: every choice, or both ends of a range."""
        return (self.low, self.high) if self.is_range else self.choices


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]

    def __bool__(self) -> bool:
        return bool(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def has_ranges(self) -> bool:
        return any(p.is_range for p in self.params)

    def grid(self) -> dict[str, list[Any]]:
        """Optuna's GridSampler search space (choices only)."""
        ranged = [p.name for p in self.params if p.is_range]
        if ranged:
            raise ConfigError(f"grid search needs choices, but {ranged[0]} is a range "
                              "(give values, or use --search random|tpe)")
        return {p.name: list(p.choices) for p in self.params}

    def grid_size(self) -> int:
        return math.prod(len(p.choices) for p in self.params) if self.params else 0

    def points(self) -> Iterator[dict[str, Any]]:
        """Every combination of choices and range ends (what ``check`` validates)."""
        names = self.names
        for values in itertools.product(*(p.edge_values() for p in self.params)):
            yield dict(zip(names, values))

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.params]

    def describe(self) -> str:
        return "  ".join(p.describe() for p in self.params)

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions (imports optuna)."""
        from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                          IntDistribution)

        out: dict[str, Any] = {}
        for p in self.params:
            if not p.is_range:
                out[p.name] = CategoricalDistribution(list(p.choices))
            elif p.kind == "int":
                out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log)
            else:
                out[p.name] = FloatDistribution(float(p.low), float(p.high), log=p.log)
        return out

    def check(self, base: RunConfig) -> int:
        """Validate every point against ``base``; ConfigError naming the first bad one. Returns
        how many points were checked."""
        total = math.prod(len(p.edge_values()) for p in self.params) if self.params else 0
        if total <= MAX_CHECKED_POINTS:
            points: Iterable[dict[str, Any]] = self.points()
        else:  # a huge cross product: each parameter's values alone
            points = ({p.name: v} for p in self.params for v in p.edge_values())
        n = 0
        for point in points:
            apply(base, point, what=point)
            n += 1
        return n


def apply(base: RunConfig, point: dict[str, Any], what: Any = None) -> RunConfig:
    """``base`` with the trial's parameters, validated (ConfigError says which point failed)."""
    try:
        return base.with_overrides(**point).validate()
    except ConfigError as exc:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in (what or point).items())
        raise ConfigError(f"the search space includes {shown}, which is rejected: {exc}") from None


def _show(value: Any) -> str:
    return "none" if value is None else str(value)


# ----------------------------------------------------------------------------------------------
def _fields() -> dict[str, Any]:
    return {f.name: f for f in settings()}


def _field(name: str):
    name = name.strip().replace("-", "_")
    if name in RESERVED:
        raise ConfigError(f"cannot sweep {name!r}: {RESERVED[name]}")
    fields = _fields()
    if name not in fields:
        raise ConfigError(f"unknown parameter {name!r} (not a RunConfig setting; see "
                          "`seqtui train --help`)")
    return fields[name]


def _value(name: str, kind: str, optional: bool, text: Any) -> Any:
    """One choice, as the field's type."""
    if isinstance(text, str):
        t = text.strip()
        if optional and t.lower() in ("none", "null"):
            return None
        if kind == "str":
            if not t:
                raise ConfigError(f"empty value for parameter {name!r}")
            return t
        try:
            if kind == "int":
                return int(t)
            value = float(t)
        except ValueError:
            raise ConfigError(f"parameter {name!r} takes {kind} values, got {t!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"parameter {name!r} must be finite, got {t!r}")
        return value
    if text is None:
        if optional:
            return None
        raise ConfigError(f"parameter {name!r} cannot be none")
    if kind == "str":
        raise ConfigError(f"parameter {name!r} takes strings, got {text!r}")
    if isinstance(text, bool) or not isinstance(text, (int, float)):
        raise ConfigError(f"parameter {name!r} takes {kind} values, got {text!r}")
    if kind == "int":
        if isinstance(text, float) and not text.is_integer():
            raise ConfigError(f"parameter {name!r} takes integers, got {text!r}")
        return int(text)
    return float(text)


def _range(name: str, kind: str, low: Any, high: Any, log: bool) -> Param:
    if kind == "str":
        raise ConfigError(f"parameter {name!r} takes names, not a range")
    if kind == "int":
        lo, hi = (_int_end(name, v) for v in (low, high))
    else:
        lo, hi = (float(_value(name, "float", False, v)) for v in (low, high))
    if not lo < hi:
        raise ConfigError(f"range of {name!r} must have low < high, got {lo}..{hi}")
    if log and lo <= 0:
        raise ConfigError(f"a log range of {name!r} must be positive, got {lo}..{hi}")
    return Param(name, kind, low=lo, high=hi, log=log)


def _int_end(name: str, v: Any) -> int:
    text = str(v).strip()
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"parameter {name!r} is an integer setting; its range ends must be "
                          f"integers, got {text!r}") from None


def parse_param(text: str) -> Param:
    """``NAME=a,b,c`` | ``NAME=LOW..HIGH[:log]`` → Param (ConfigError on bad input)."""
    name, eq, spec = text.partition("=")
    if not eq or not name.strip() or not spec.strip():
        raise ConfigError(f"bad --param {text!r} (use NAME=a,b,c or NAME=LOW..HIGH[:log])")
    f = _field(name)
    kind, optional = field_kind(f)
    spec = spec.strip()
    if ".." in spec and kind != "str":
        body, _, flag = spec.partition(":")
        if flag and flag.strip().lower() not in ("log", "linear"):
            raise ConfigError(f"bad range flag {flag!r} in --param {text!r} (only :log)")
        low, _, high = body.partition("..")
        return _range(f.name, kind, low, high, flag.strip().lower() == "log")
    return _choices(f.name, kind, optional, spec.split(","))


def _choices(name: str, kind: str, optional: bool, items: Iterable[Any]) -> Param:
    values: list[Any] = []
    for item in items:
        value = _value(name, kind, optional, item)
        if value in values:
            raise ConfigError(f"parameter {name!r} lists {_show(value)} twice")
        values.append(value)
    if not values:
        raise ConfigError(f"parameter {name!r} has no values")
    return Param(name, kind, choices=tuple(values))


def parse_space_file(path: str | Path) -> list[Param]:
    """A TOML (``.toml``) or JSON file: ``{name = [choices] | "SPEC" | {low, high, log}}``."""
    path = Path(path)
    text = read_text_bounded(path, "search space", MAX_SPACE_BYTES, ConfigError)
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"search space {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: "
                          f"{str(exc).splitlines()[0]}") from None
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        data = data["params"]
    if not isinstance(data, dict):
        raise ConfigError(f"search space {path} must map parameter names to values")
    out = []
    for name, spec in data.items():
        f = _field(name)
        kind, optional = field_kind(f)
        if isinstance(spec, str):
            out.append(parse_param(f"{f.name}={spec}"))
        elif isinstance(spec, list):
            out.append(_choices(f.name, kind, optional, spec))
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec):
            extra = set(spec) - {"low", "high", "log"}
            if extra:
                raise ConfigError(f"range of {name!r} has unknown key {sorted(extra)[0]!r}")
            out.append(_range(f.name, kind, spec["low"], spec["high"], bool(spec.get("log", False))))
        else:
            raise ConfigError(f"parameter {name!r} in {path}: give a list of choices, a string "
                              "SPEC or {low, high, log}")
    return out


def build_space(params: Iterable[str] = (), space_file: str | Path | None = None) -> Space:
    """The space from a file and/or ``--param`` strings (a name given twice is an error)."""
    out: list[Param] = list(parse_space_file(space_file)) if space_file else []
    out += [parse_param(p) for p in params]
    seen: set[str] = set()
    for p in out:
        if p.name in seen:
            raise ConfigError(f"parameter {p.name!r} is given twice")
        seen.add(p.name)
    return Space(tuple(out))


def space_from_json(data: list[dict[str, Any]]) -> Space:
    """The inverse of ``Space.to_json`` (a study's stored space)."""
    params = []
    for d in data:
        if "choices" in d:
            params.append(Param(d["name"], d["kind"], choices=tuple(d["choices"])))
        else:
            params.append(Param(d["name"], d["kind"], low=d["low"], high=d["high"],
                                log=bool(d.get("log"))))
    return Space(tuple(params))
