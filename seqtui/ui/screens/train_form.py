"""The new-run form: every RunConfig option on one 80×24 page, validated as you type.

``parse_form`` (pure, tested without a terminal) turns the raw strings into a config dict and
per-field errors; RunConfig.validate() then gives the one-line message shown under the form.
The defaults make a first run show learning within about 30 seconds on 2 cores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from rich.text import Text
import json

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from seqtui.engine.config import RunConfig, field_kind, settings
from seqtui.errors import SeqtuiError
from seqtui.ui.widgets.choice import Choice

ESTIMATE_DEBOUNCE = 0.6   # seconds of no typing before the (calibrating) estimate starts


def estimate_line(config: dict) -> str:
    """Parameters, memory and the estimated duration of a validated config (``Estimate.line``).
    It loads the corpus and may compile and time a few steps, so it runs in a child process (the
    app never trains or compiles in its own: that would hold its GIL); call it from a worker."""
    import json
    import subprocess
    import sys

    from seqtui.errors import ConfigError

    out = subprocess.run([sys.executable, "-m", "seqtui.engine.estimate"], input=json.dumps(config),
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise ConfigError((out.stderr.strip().splitlines() or ["the estimate failed"])[-1])
    return out.stdout.strip()


@dataclass(frozen=True)
class FieldSpec:
    """One form field: the RunConfig key, its label, how to parse it, its choices."""

    key: str
    label: str
    kind: str                         # int | float | str | choice | opt_int | opt_float | opt_str
    choices: tuple[str, ...] = ()
    help: str = ""
    placeholder: str = ""
    group: str = ""


def spec_for(f: dataclasses.Field) -> FieldSpec:
    """A form field from a RunConfig setting's metadata (label, choices, placeholder, type)."""
    meta = f.metadata
    base, optional = field_kind(f)
    kind = "choice" if meta.get("choices") else ("opt_" if optional else "") + base
    return FieldSpec(f.name, meta["label"], kind, tuple(meta.get("choices") or ()), meta.get("help", ""),
                     meta.get("placeholder", ""), meta.get("group", ""))


# The run name is the form's own field (start_run takes it beside the config).
NAME_FIELD = FieldSpec("name", "run name", "str", help="blank = corpus-cell(-N)", placeholder="corpus-cell")
# Two columns, read top to bottom: data, model and windows on the left; the run name, the
# optimizer and the event intervals on the right.
LEFT_GROUPS = ("data", "model", "bptt")
_SPECS = [spec_for(f) for f in settings()]
LEFT = tuple(s for s in _SPECS if s.group in LEFT_GROUPS)
RIGHT = (NAME_FIELD,) + tuple(s for s in _SPECS if s.group not in LEFT_GROUPS)
FIELDS = {f.key: f for f in LEFT + RIGHT}
STRIPPED = {"corpus", "name"}  # other text settings (the sample prompt) keep their spaces

# Where the form differs from RunConfig's defaults: small and chatty, so learning shows at once.
FORM_DEFAULTS: dict[str, Any] = dict(
    corpus="genesis", hidden=128, epochs=20, progress_every=10, val_every=100,
    grad_profile_every=25, sample_every=200, checkpoint_every=500,
)


def default_values(corpus: str | None = None) -> dict[str, str]:
    """The form's initial strings."""
    cfg = RunConfig().to_dict()
    cfg.update(FORM_DEFAULTS)
    if corpus:
        cfg["corpus"] = corpus
    cfg["name"] = ""
    return {key: _to_text(cfg.get(key)) for key in FIELDS}


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_form(values: dict[str, str]) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """Raw strings → (config dict, run name or None, {field: error}) — no RunConfig checks yet."""
    cfg: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, spec in FIELDS.items():
        raw = values.get(key) or ""
        if spec.kind != "str" or key in STRIPPED:
            raw = raw.strip()
        try:
            cfg[key] = _parse(spec.kind, raw)
        except ValueError:
            errors[key] = "a whole number" if "int" in spec.kind else "a number"
    name = cfg.pop("name", None) or None
    # Options that only apply to one mode are ignored (not errors) under the others.
    if cfg.get("bptt") != "truncated":
        cfg["bptt_k"] = None
        errors.pop("bptt_k", None)
    if cfg.get("bptt") != "randomized":
        cfg["bptt_p"] = None
        errors.pop("bptt_p", None)
    if cfg.get("steps") is not None:
        cfg["epochs"] = None
    return cfg, name, errors


def _parse(kind: str, raw: str) -> Any:
    if kind in ("str", "choice"):
        return raw
    if kind.startswith("opt_") and raw.strip() == "":
        return None
    if kind == "opt_str":
        return raw
    if kind.endswith("int"):
        return int(raw.replace(",", "").replace("_", ""))
    return float(raw)


def validate_form(values: dict[str, str]) -> tuple[dict[str, Any] | None, str | None, dict[str, str], str | None]:
    """(config or None, name, field errors, one-line message or None when all is well)."""
    cfg, name, errors = parse_form(values)
    if errors:
        key = next(iter(errors))
        return None, name, errors, f"{FIELDS[key].label.strip()} must be {errors[key]}"
    try:
        config = RunConfig.from_dict(cfg).validate()
        checked = config.to_dict()
    except SeqtuiError as exc:
        return None, name, errors, str(exc)
    for key, check in (("corpus", _check_corpus), ("hidden", _check_memory)):
        try:
            check(config)
        except SeqtuiError as exc:
            return None, name, {key: "bad"}, str(exc)
    if name is not None:
        from seqtui.engine.runs import check_name

        try:
            check_name(name)
        except SeqtuiError as exc:
            return None, name, {"name": "bad"}, str(exc)
    return checked, name, errors, None


# A character vocabulary rarely exceeds this; the memory estimate only needs its order.
ESTIMATE_VOCAB = 256


def _check_corpus(config: RunConfig) -> None:
    """CorpusError for a name that is neither a known corpus nor a file (reads no text)."""
    from seqtui.data.corpora import resolve_corpus

    info = resolve_corpus(config.corpus)
    if not info.available:
        raise SeqtuiError(f"corpus {info.name} is not installed: {info.install_hint}".rstrip(": "))


def _check_memory(config: RunConfig) -> None:
    """ConfigError when one training step would not fit in memory (arithmetic only, no numba)."""
    from seqtui.models.memory import check_fits_in_memory

    check_fits_in_memory(config.model_config(ESTIMATE_VOCAB), config.batch_size, config.num_steps,
                         config.dtype)


def summary_line(cfg: dict[str, Any]) -> str:
    """``GRU 1×128 on genesis · B32 T35 · adam lr 0.002 · 5 epochs``."""
    length = f"{cfg['steps']:,} steps" if cfg.get("steps") else f"{cfg.get('epochs') or 10} epochs"
    corpus = Path(str(cfg["corpus"])).name  # a long path would push the rest off the line
    return (f"{cfg['cell'].upper()} {cfg['layers']}×{cfg['hidden']} on {corpus} · "
            f"B{cfg['batch_size']} T{cfg['num_steps']} · {cfg['optimizer']} lr {cfg['lr']:g} · {length}")


class TrainForm(Vertical):
    """The form widget; posts :class:`TrainForm.Submitted` with a validated config."""

    BINDINGS = [Binding("ctrl+s", "submit", "Start run", priority=True)]

    @dataclass
    class Submitted(Message):
        config: dict
        name: str | None

    class Estimated(Message):
        def __init__(self, key: str, line: str | None, error: str | None = None) -> None:
            super().__init__()
            self.key, self.line, self.error = key, line, error

    def __init__(self, corpus_names: list[str] | None = None, corpus: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.corpus_names = corpus_names or []
        self._values = default_values(corpus)
        self._lr_touched = False
        self.valid_config: dict | None = None
        self.estimate: str | None = None      # the line shown for the current config
        self._estimate_key: str | None = None
        self._estimate_timer = None
        self._estimates: dict[str, tuple[str | None, str | None]] = {}

    def compose(self) -> ComposeResult:
        yield Static("New run — every option of `seqtui train`; ctrl+s or Start launches it", id="form-title")
        with VerticalScroll(id="form-scroll"), Grid(id="form-grid"):
            for left, right in zip_longest(LEFT, RIGHT):
                for spec in (left, right):
                    if spec is None:
                        yield Label("")
                        yield Label("")
                        continue
                    yield Label(spec.label, classes="field-label")
                    yield self._control(spec)
        yield Static("", id="form-status")
        yield Static("", id="form-estimate")
        with Horizontal(id="form-buttons"):
            yield Button("Start", id="form-start", variant="primary", compact=True)
            yield Button("Cancel", id="form-cancel", compact=True)

    def _control(self, spec: FieldSpec):
        value = self._values[spec.key]
        if spec.kind == "choice":
            return Choice(spec.choices, value, id=f"f-{spec.key}", classes="field")
        suggester = SuggestFromList(self.corpus_names, case_sensitive=False) if spec.key == "corpus" else None
        field = Input(value, id=f"f-{spec.key}", classes="field", compact=True, suggester=suggester,
                      select_on_focus=False, placeholder=spec.placeholder)
        field.tooltip = spec.help or None
        return field

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = self.app.cursor_blink
        self._revalidate()

    # -- values ----------------------------------------------------------------------------------
    def values(self) -> dict[str, str]:
        return dict(self._values)

    def set_value(self, key: str, value: str) -> None:
        """Set a field programmatically (the Corpora screen's "train on this")."""
        self.query_one(f"#f-{key}").value = value
        self._values[key] = value
        self._revalidate()

    @on(Input.Changed, ".field")
    def _input_changed(self, event: Input.Changed) -> None:
        key = event.input.id.removeprefix("f-")
        self._values[key] = event.value
        if key == "lr" and event.input.has_focus:
            self._lr_touched = True
        self._revalidate()

    @on(Choice.Changed, ".field")
    def _choice_changed(self, event: Choice.Changed) -> None:
        key = event.choice.id.removeprefix("f-")
        self._values[key] = event.value
        if key == "optimizer" and not self._lr_touched:
            lr = self.query_one("#f-lr", Input)
            lr.value = _to_text(RunConfig().with_overrides(optimizer=event.value).lr)
        self._revalidate()

    def _revalidate(self) -> None:
        cfg, _name, errors, message = validate_form(self._values)
        self.valid_config = cfg
        mode = self._values.get("bptt")
        for key in FIELDS:
            try:
                widget = self.query_one(f"#f-{key}")
            except Exception:  # noqa: BLE001 - not mounted yet
                return
            widget.set_class(key in errors, "-invalid")
        self.query_one("#f-bptt_k").disabled = mode != "truncated"
        self.query_one("#f-bptt_p").disabled = mode != "randomized"
        status = self.query_one("#form-status", Static)
        if message:
            status.update(Text("✗ " + message, style="bold red"))
        else:
            status.update(Text("✓ " + summary_line(cfg), style="green"))
        self.query_one("#form-start", Button).disabled = cfg is None
        self._schedule_estimate(cfg)

    # -- the estimate (parameters, memory, duration) ---------------------------------------------
    def _schedule_estimate(self, cfg: dict | None) -> None:
        key = json.dumps(cfg, sort_keys=True, default=str) if cfg is not None else None
        if key == self._estimate_key:
            return
        self._estimate_key = key
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
            self._estimate_timer = None
        line = self.query_one("#form-estimate", Static)
        if key is None:
            self.estimate = None
            line.update("")
            return
        if key in self._estimates:
            self._show_estimate(key, *self._estimates[key])
            return
        self.estimate = None
        line.update(Text("  estimating parameters, memory and time…", style="dim italic"))
        self._estimate_timer = self.set_timer(ESTIMATE_DEBOUNCE, lambda: self._estimate(key, cfg))

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def _estimate(self, key: str, cfg: dict) -> None:
        estimator = getattr(self.app, "estimator", None) or estimate_line
        try:
            self.post_message(self.Estimated(key, estimator(cfg)))
        except SeqtuiError as exc:
            self.post_message(self.Estimated(key, None, str(exc)))
        except Exception as exc:  # noqa: BLE001 - the form stays usable without an estimate
            self.post_message(self.Estimated(key, None, f"{type(exc).__name__}: {exc}"))

    @on(Estimated)
    def _estimated(self, message: "TrainForm.Estimated") -> None:
        self._estimates[message.key] = (message.line, message.error)
        if message.key == self._estimate_key:
            self._show_estimate(message.key, message.line, message.error)

    def _show_estimate(self, key: str, line: str | None, error: str | None) -> None:
        self.estimate = line
        widget = self.query_one("#form-estimate", Static)
        if line:
            widget.update(Text("  ≈ " + line, style="bold", no_wrap=True, overflow="ellipsis"))
        else:
            widget.update(Text(f"  no estimate: {error}", style="dim", no_wrap=True, overflow="ellipsis"))

    # -- submitting --------------------------------------------------------------------------------
    def action_submit(self) -> None:
        cfg, name, _errors, message = validate_form(self._values)
        if cfg is None:
            self.app.bell()
            self.notify(message or "the form has errors", severity="error")
            return
        self.post_message(self.Submitted(cfg, name))

    @on(Input.Submitted, ".field")
    def _enter(self, event: Input.Submitted) -> None:
        self.screen.focus_next()

    @on(Button.Pressed, "#form-start")
    def _start(self) -> None:
        self.action_submit()
