"""RunConfig: every setting of a training run in one commented dataclass — the one schema.

Each field's metadata (help text, group, choices, form label) is the single source from which
the options of ``seqtui train`` (``seqtui.cli.options``) and the fields of the app's New-run form
are generated. The config is saved whole into the run's config file and into every checkpoint;
``validate`` turns absurd hyperparameters into one-line :class:`~seqtui.errors.ConfigError`s
before any work starts, and ``with_overrides`` holds the rules for changing some settings at once.
Importing this module is cheap (no numpy, no numba).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqtui.data.choices import ERRORS, PREPROCESS, SAMPLINGS, TOKENS
from seqtui.errors import ConfigError
from seqtui.files import KiB, read_text_bounded
from seqtui.models.choices import BPTT_MODES, CELLS, DEFAULT_LR, DTYPES, INITS, OPTIMIZERS

DEFAULT_EPOCHS = 10
MAX_CONFIG_BYTES = 256 * KiB  # a config.json is a few KB; anything far larger is not one
GROUPS = ("data", "model", "bptt", "optimization", "events")
SEED_LIMIT = 2**63 - 1


def setting(default: Any, help: str, group: str, *, label: str, choices: tuple[str, ...] = (),
            placeholder: str = "", none_flag: str | None = None, syntax: str | None = None) -> Any:
    """A RunConfig field with the metadata that generates its CLI option and form field.

    ``label``: the form's short label; ``none_flag``: a CLI flag that sets the field to None
    (``--no-clip``); ``syntax``: the CLI takes a richer string than the choices (``--bptt
    truncated:10``)."""
    meta = dict(help=help, group=group, label=label, choices=tuple(choices), placeholder=placeholder,
                none_flag=none_flag, syntax=syntax)
    return field(default=default, metadata=meta)


def derived(default: Any = None) -> Any:
    """A field the trainer fills in when training starts; never an option."""
    return field(default=default, metadata={"derived": True})


@dataclass
class RunConfig:
    """A training run. Shape-defining keys (cell, hidden, layers, tokens) never change on resume."""

    # --- data -------------------------------------------------------------------------------
    corpus: str = setting("", "A corpus name (`seqtui corpora list`) or a path to a UTF-8 text file.",
                          "data", label="corpus")
    tokens: str = setting("char", "Token kind: characters, words, or byte-pair encoding (bpe).", "data",
                          label="tokens", choices=TOKENS)
    bpe_vocab: int | None = setting(None, "With --tokens bpe: vocabulary size, 256 bytes + learned "
                                    "merges (learned from the training part only).", "data",
                                    label="bpe vocab", placeholder="bpe only")
    preprocess: str = setting("raw", "raw text, or d2l's lowercase letters and spaces.", "data",
                              label="preprocess", choices=PREPROCESS)
    max_tokens: int | None = setting(None, "Use only the first N tokens (d2l: 10000).", "data",
                                     label="max tokens", placeholder="all")
    val_fraction: float = setting(0.1, "Held-out tail for validation, in [0, 0.5].", "data",
                                  label="val frac")
    min_freq: int = setting(0, "Rarer tokens become <unk>.", "data", label="min freq")
    errors: str = setting("strict", "Invalid UTF-8: refuse (strict) or substitute U+FFFD (replace).",
                          "data", label="bad UTF-8", choices=ERRORS)
    # --- model ------------------------------------------------------------------------------
    cell: str = setting("gru", "Recurrent cell: rnn (tanh), gru or lstm.", "model", label="cell",
                        choices=CELLS)
    hidden: int = setting(256, "Hidden units per layer (H).", "model", label="hidden H")
    layers: int = setting(1, "Stacked recurrent layers (L).", "model", label="layers L")
    dtype: str = setting("float32", "Parameter and activation dtype (float64 for checks).", "model",
                         label="dtype", choices=DTYPES)
    init: str = setting("pytorch", "Initialisation: PyTorch's U(±1/√H), or d2l's N(0, 0.01²) with "
                        "zero biases.", "model", label="init", choices=INITS)
    # --- batches and backpropagation through time -------------------------------------------
    batch_size: int = setting(32, "Windows per batch (B).", "bptt", label="batch B")
    num_steps: int = setting(35, "Tokens per window (T).", "bptt", label="steps T")
    sampling: str = setting("random", "Random windows (state reset) or sequential (state carried).",
                            "bptt", label="sampling", choices=SAMPLINGS)
    bptt: str = setting("full", "full | truncated:K | randomized:P (gradient through the carried "
                        "state).", "bptt", label="bptt", choices=BPTT_MODES, syntax="MODE[:ARG]")
    bptt_k: int | None = setting(None, "K for --bptt truncated: cut the carry every K steps "
                                 "(1..num_steps).", "bptt", label="trunc. k", placeholder="truncated only")
    bptt_p: float | None = setting(None, "P for --bptt randomized: keep the carry with probability "
                                   "P, in (0, 1].", "bptt", label="random p", placeholder="randomized only")
    # --- optimization -----------------------------------------------------------------------
    optimizer: str = setting("adam", "Optimizer (changing it resets --lr to its default).",
                             "optimization", label="optimizer", choices=OPTIMIZERS)
    lr: float = setting(DEFAULT_LR["adam"], "Learning rate (sgd default 1.0, adam 0.002).",
                        "optimization", label="lr")
    lr_decay: float = setting(1.0, "Learning-rate factor after each epoch, in (0, 1].", "optimization",
                              label="lr decay")
    clip: float | None = setting(1.0, "Global gradient-norm clip θ.", "optimization", label="clip θ",
                                 placeholder="no clipping", none_flag="no-clip")
    epochs: int | None = setting(None, f"Train this many epochs (default {DEFAULT_EPOCHS} unless "
                                 "--steps).", "optimization", label="epochs", placeholder="10")
    steps: int | None = setting(None, "Or train this many optimizer steps.", "optimization",
                                label="or steps", placeholder="use epochs")
    seed: int = setting(0, "One seed for init, batch order, BPTT draws and samples (0..2^63-1).",
                        "optimization", label="seed")
    patience: int | None = setting(None, "Early stopping: stop after N validations without a new "
                                   "best validation perplexity (the best checkpoint is the result).",
                                   "optimization", label="patience", placeholder="never")
    threads: int | None = setting(None, "Cap the threads this run uses (default: the cores it may "
                                  "use, tuned per step; never changes the results).",
                                  "optimization", label="threads", placeholder="auto")
    # --- event intervals, in steps (0 = never) ----------------------------------------------
    progress_every: int = setting(10, "Steps between progress events.", "events", label="progress/")
    val_every: int = setting(0, "Extra validation every N steps (always at epoch end; 0 = never).",
                             "events", label="val/")
    grad_profile_every: int = setting(100, "Steps between gradient profiles ‖∂L/∂h_t‖ (0 = never).",
                                      "events", label="grad prof/")
    sample_every: int = setting(500, "Steps between training-time samples (0 = never).", "events",
                                label="sample/")
    checkpoint_every: int = setting(1000, "Steps between `latest` checkpoints (also at the end and "
                                    "on stop).", "events", label="ckpt/")
    checkpoint_seconds: float = setting(60.0, "Also checkpoint at an epoch end when this many "
                                        "seconds passed since the last one.", "events", label="ckpt s")
    sample_prompt: str = setting("", "Prompt of training-time samples (blank: the first validation "
                                 "token).", "events", label="sample ⏵", placeholder="first val token")
    sample_length: int = setting(100, "Tokens per training-time sample.", "events", label="sample len")
    sample_temperature: float = setting(0.8, "Temperature of training-time samples.", "events",
                                        label="sample T")
    # --- filled in when training starts -----------------------------------------------------
    sweep: str | None = derived()            # the sweep this run is a trial of (seqtui sweep)
    trial: int | None = derived()            # its trial number in that sweep
    fingerprint: str | None = derived()      # sha256 of corpus content + text settings
    vocab_size: int | None = derived()       # V
    seqtui_version: str | None = derived()

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
        """Read a config JSON file (a bounded regular file; never pickle)."""
        text = read_text_bounded(path, "config", MAX_CONFIG_BYTES, ConfigError)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"config {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def with_overrides(self, **changes: Any) -> "RunConfig":
        """These settings changed at once, with the rules that keep the rest consistent.

        - ``bptt`` may use the CLI syntax ``truncated:K`` / ``randomized:P``; its argument must
          agree with an explicit ``bptt_k``/``bptt_p``. ``bptt_k`` alone means truncated,
          ``bptt_p`` alone randomized; the other mode's argument is cleared.
        - A new ``optimizer`` without an ``lr`` takes that optimizer's default learning rate.
        - ``steps`` without ``epochs`` clears ``epochs``, and the other way round.
        Not validated: call ``validate()`` on the result.
        """
        changes = dict(changes)
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}")
        mode = None
        if changes.get("bptt") is not None:
            mode, k, p = parse_bptt(str(changes["bptt"]))
            for key, value in (("bptt_k", k), ("bptt_p", p)):
                if value is not None:
                    if changes.get(key) is not None and changes[key] != value:
                        raise ConfigError(f"--bptt {changes['bptt']} disagrees with "
                                          f"--{key.replace('_', '-')} {changes[key]}")
                    changes[key] = value
        elif changes.get("bptt_k") is not None and changes.get("bptt_p") is not None:
            raise ConfigError("--bptt-k is for truncated BPTT and --bptt-p for randomized; give one")
        elif changes.get("bptt_k") is not None:
            mode = "truncated"
        elif changes.get("bptt_p") is not None:
            mode = "randomized"
        if mode is not None:
            changes["bptt"] = mode
            changes["bptt_k"] = changes.get("bptt_k", self.bptt_k) if mode == "truncated" else None
            changes["bptt_p"] = changes.get("bptt_p", self.bptt_p) if mode == "randomized" else None
        if "optimizer" in changes and "lr" not in changes and changes["optimizer"] in DEFAULT_LR:
            changes["lr"] = DEFAULT_LR[changes["optimizer"]]
        if changes.get("steps") is not None and "epochs" not in changes:
            changes["epochs"] = None
        if changes.get("epochs") is not None and "steps" not in changes:
            changes["steps"] = None
        return dataclasses.replace(self, **changes)

    def fresh(self) -> "RunConfig":
        """A copy for a new run: the fields training fills in are cleared."""
        return self.replace(**{f.name: f.default for f in dataclasses.fields(self) if is_derived(f)})

    def model_config(self, vocab_size: int | None = None):
        """The model's shape (``seqtui.models.charmodel.ModelConfig``)."""
        from seqtui.models.charmodel import ModelConfig

        V = vocab_size if vocab_size is not None else self.vocab_size
        if V is None:
            raise ConfigError("the vocabulary size is not known before the data is loaded")
        return ModelConfig(cell=self.cell, vocab_size=int(V), hidden=self.hidden, num_layers=self.layers)

    def text_config(self):
        """How the corpus becomes tokens (``seqtui.data.text.TextConfig``)."""
        from seqtui.data.text import TextConfig

        bpe = self.tokens == "bpe"
        return TextConfig(corpus=self.corpus, preprocess=self.preprocess, tokens=self.tokens,
                          min_freq=self.min_freq, max_tokens=self.max_tokens, errors=self.errors,
                          bpe_vocab=self.bpe_vocab if bpe else None,
                          val_fraction=self.val_fraction if bpe else 0.0)

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
        if self.tokens == "bpe":
            if self.bpe_vocab is None:
                raise ConfigError("--tokens bpe needs --bpe-vocab N (N ≥ 256: the bytes + learned merges)")
            if self.bpe_vocab < 256 or self.bpe_vocab > 1 << 20:
                raise ConfigError(f"bpe vocab must be in 256..{1 << 20} (the byte alphabet and up), "
                                  f"got {self.bpe_vocab}")
        elif self.bpe_vocab is not None:
            raise ConfigError("--bpe-vocab only applies to --tokens bpe")
        self._validate_bptt()
        for name in ("progress_every", "grad_profile_every", "sample_every", "val_every",
                     "checkpoint_every", "sample_length"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.checkpoint_seconds < 0:
            raise ConfigError(f"checkpoint_seconds must be ≥ 0, got {self.checkpoint_seconds:g}")
        _positive_float("sample temperature", self.sample_temperature)
        if self.patience is not None:
            _positive_int("patience", self.patience, upper=1 << 20)
        if self.threads is not None:
            _positive_int("threads", self.threads, upper=1024)
        if not (0 <= self.seed <= SEED_LIMIT):
            raise ConfigError(f"seed must be in 0..2^63-1, got {self.seed}")
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


# ----------------------------------------------------------------------------------------------
def is_derived(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("derived"))


def settings() -> list[dataclasses.Field]:
    """The user-settable fields, in declaration order (what the CLI and the form show)."""
    return [f for f in dataclasses.fields(RunConfig) if not is_derived(f)]


def field_kind(f: dataclasses.Field) -> tuple[str, bool]:
    """(``int`` | ``float`` | ``str``, optional?) from the annotation."""
    kind = str(f.type)
    base = kind.split("|")[0].strip()
    return base, "None" in kind
