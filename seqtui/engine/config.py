"""RunConfig: every setting of a training run in one commented dataclass.

It is saved whole into the run's ``config.json`` and into every checkpoint; ``validate`` turns
absurd hyperparameters into one-line :class:`~seqtui.errors.ConfigError`s before any work starts.
Importing this module is cheap (no numpy, no numba).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqtui.errors import ConfigError

CELLS = ("rnn", "gru", "lstm")
OPTIMIZERS = ("sgd", "adam")
SAMPLINGS = ("random", "sequential")
BPTT_MODES = ("full", "truncated", "randomized")
PREPROCESS = ("raw", "d2l")
TOKENS = ("char", "word")
DTYPES = ("float32", "float64")
INITS = ("pytorch", "d2l")
ERRORS = ("strict", "replace")
DEFAULT_LR = {"sgd": 1.0, "adam": 0.002}
DEFAULT_EPOCHS = 10


@dataclass
class RunConfig:
    """A training run. Shape-defining keys (cell, hidden, layers, tokens) never change on resume."""

    # --- data -------------------------------------------------------------------------------
    corpus: str = ""                 # bundled/registered corpus name, or a path to a UTF-8 text file
    preprocess: str = "raw"          # "raw" keeps the text; "d2l" keeps lowercase letters and spaces
    tokens: str = "char"             # "char" or "word" tokens
    min_freq: int = 0                # rarer tokens map to <unk>
    max_tokens: int | None = None    # use only the first N tokens (d2l: 10,000)
    errors: str = "strict"           # bad UTF-8: "strict" refuses, "replace" substitutes U+FFFD
    val_fraction: float = 0.1        # held-out tail for validation, in [0, 0.5]
    # --- model ------------------------------------------------------------------------------
    cell: str = "gru"                # "rnn" (tanh), "gru" or "lstm"
    hidden: int = 256                # H, units per layer
    layers: int = 1                  # L, stacked recurrent layers
    dtype: str = "float32"           # parameter/activation dtype (float64 for checks)
    init: str = "pytorch"            # "pytorch": U(±1/√H); "d2l": N(0, 0.01²) weights, zero biases
    # --- batches and backpropagation through time -------------------------------------------
    batch_size: int = 32             # B, windows per minibatch
    num_steps: int = 35              # T, tokens per window
    sampling: str = "random"         # "random" windows (state reset) or "sequential" (state carried)
    bptt: str = "full"               # gradient through the carry: "full", "truncated", "randomized"
    bptt_k: int | None = None        # truncated: cut the carry every k steps (1 ≤ k ≤ num_steps)
    bptt_p: float | None = None      # randomized: keep the carry with probability p, scaled by 1/p
    # --- optimization -----------------------------------------------------------------------
    optimizer: str = "adam"          # "sgd" or "adam"
    lr: float = DEFAULT_LR["adam"]   # learning rate (sgd default 1.0, adam 0.002)
    lr_decay: float = 1.0            # multiply the learning rate by this after every epoch
    clip: float | None = 1.0         # global gradient-norm clip θ; None disables clipping
    epochs: int | None = None        # stop after this many epochs (default 10 when steps is unset)
    steps: int | None = None         # or after this many optimizer steps
    seed: int = 0                    # one seed for init, batch order, BPTT draws and samples
    # --- event intervals, in steps (0 = never) ----------------------------------------------
    progress_every: int = 10         # `progress` events (and the CLI's bar)
    grad_profile_every: int = 100    # `grad_profile` events: ‖∂L/∂h_t‖ for t = 1..T
    sample_every: int = 500          # `sample` events
    val_every: int = 0               # extra validation every N steps (always at epoch end)
    checkpoint_every: int = 1000     # `latest` checkpoint every N steps (also at the end/on stop)
    checkpoint_seconds: float = 60.0  # ...and at an epoch end when this long since the last one
    sample_prompt: str = ""          # prompt of training-time samples ("" = the first val token)
    sample_length: int = 100         # tokens per training-time sample
    sample_temperature: float = 0.8  # temperature of training-time samples
    # --- filled in when training starts -----------------------------------------------------
    fingerprint: str | None = None   # sha256 of corpus content + text settings
    vocab_size: int | None = None    # V
    seqtui_version: str | None = None

    # ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Build from a dict (config.json, a checkpoint); unknown keys and wrong types are errors."""
        if not isinstance(data, dict):
            raise ConfigError("a run config must be a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r}")
        values = {}
        for name, value in data.items():
            values[name] = _coerce(name, known[name], value)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """Read a config JSON file (never pickle)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"config {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------------------------------
    def total_epochs(self) -> int | None:
        """Epoch limit (the default 10 when neither epochs nor steps is given)."""
        if self.epochs is None and self.steps is None:
            return DEFAULT_EPOCHS
        return self.epochs

    def validate(self) -> "RunConfig":
        """Raise ConfigError for the first absurd or inconsistent setting; return self."""
        _choice("cell", self.cell, CELLS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("sampling", self.sampling, SAMPLINGS)
        _choice("bptt", self.bptt, BPTT_MODES)
        _choice("preprocess", self.preprocess, PREPROCESS)
        _choice("tokens", self.tokens, TOKENS)
        _choice("errors", self.errors, ERRORS)
        _choice("dtype", self.dtype, DTYPES)
        _choice("init", self.init, INITS)
        if not self.corpus:
            raise ConfigError("no corpus given")
        _positive_int("hidden", self.hidden, upper=1 << 16)
        _positive_int("layers", self.layers, upper=64)
        _positive_int("batch size", self.batch_size, upper=1 << 16)
        _positive_int("num_steps", self.num_steps, upper=1 << 16)
        _positive_float("learning rate", self.lr)
        if not (0.0 < self.lr_decay <= 1.0):
            raise ConfigError(f"lr decay must be in (0, 1], got {self.lr_decay:g}")
        if self.clip is not None:
            _positive_float("clip θ", self.clip)
        if self.epochs is not None:
            _positive_int("epochs", self.epochs)
        if self.steps is not None:
            _positive_int("steps", self.steps)
        if self.epochs is not None and self.steps is not None:
            raise ConfigError("give epochs or steps, not both")
        if not (0.0 <= self.val_fraction <= 0.5):
            raise ConfigError(f"validation fraction must be in [0, 0.5], got {self.val_fraction:g}")
        if self.min_freq < 0:
            raise ConfigError(f"min_freq must be ≥ 0, got {self.min_freq}")
        if self.max_tokens is not None:
            _positive_int("max_tokens", self.max_tokens)
        self._validate_bptt()
        for name in ("progress_every", "grad_profile_every", "sample_every", "val_every",
                     "checkpoint_every", "sample_length"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.checkpoint_seconds < 0:
            raise ConfigError(f"checkpoint_seconds must be ≥ 0, got {self.checkpoint_seconds:g}")
        _positive_float("sample temperature", self.sample_temperature)
        return self

    def _validate_bptt(self) -> None:
        if self.bptt == "truncated":
            if self.bptt_k is None:
                raise ConfigError("truncated BPTT needs k (--bptt truncated:K)")
            if self.bptt_k <= 0 or self.bptt_k > self.num_steps:
                raise ConfigError(
                    f"bptt k must be in 1..num_steps ({self.num_steps}), got {self.bptt_k}")
        elif self.bptt_k is not None:
            raise ConfigError("bptt k only applies to --bptt truncated")
        if self.bptt == "randomized":
            if self.bptt_p is None:
                raise ConfigError("randomized BPTT needs p (--bptt randomized:P)")
            if not (0.0 < self.bptt_p <= 1.0):
                raise ConfigError(f"bptt p must be in (0, 1], got {self.bptt_p:g}")
        elif self.bptt_p is not None:
            raise ConfigError("bptt p only applies to --bptt randomized")

    def bptt_label(self) -> str:
        """``full``, ``truncated:K`` or ``randomized:P`` (the CLI syntax)."""
        if self.bptt == "truncated":
            return f"truncated:{self.bptt_k}"
        if self.bptt == "randomized":
            return f"randomized:{self.bptt_p:g}"
        return "full"


def parse_bptt(text: str) -> tuple[str, int | None, float | None]:
    """``full`` | ``truncated:K`` | ``randomized:P`` → (mode, k, p); ConfigError otherwise."""
    mode, _, arg = text.strip().partition(":")
    mode = mode.lower()
    _choice("bptt", mode, BPTT_MODES)
    if mode == "full":
        if arg:
            raise ConfigError("--bptt full takes no argument")
        return mode, None, None
    if not arg:
        return mode, None, None
    try:
        if mode == "truncated":
            return mode, int(arg), None
        return mode, None, float(arg)
    except ValueError:
        raise ConfigError(f"bad --bptt argument {arg!r} for {mode}") from None


# ----------------------------------------------------------------------------------------------
def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"unknown {name} {value!r} (choose from {', '.join(options)})")


def _positive_int(name: str, value: int, upper: int | None = None) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value}")
    if upper is not None and value > upper:
        raise ConfigError(f"{name} {value} is absurdly large (limit {upper})")


def _positive_float(name: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value:g}")


def _coerce(name: str, f: dataclasses.Field, value: Any) -> Any:
    """Check a JSON value against the field's annotated type (ints stay ints, floats accept ints)."""
    kind = str(f.type)
    if value is None:
        if "None" in kind:
            return None
        raise ConfigError(f"config key {name!r} cannot be null")
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {name!r} must be an integer, got {value!r}")
        return value
    if kind.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {name!r} must be a number, got {value!r}")
        return float(value)
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"config key {name!r} must be a string, got {value!r}")
        return value
    return value  # pragma: no cover - every field is int/float/str
