"""Checkpoints: safetensors weights with PyTorch's names plus JSON metadata, written atomically.

One file per kind (``latest``/``best``) holds everything, so one rename commits it: model
tensors (``rnn.weight_ih_l0`` …, ``fc.weight``, ``fc.bias``), optimizer arrays (``optim.*``) and
the carried state of sequential runs (``train.*``); the metadata JSON (vocabulary, config, step,
position, optimizer scalars, RNG state, best val ppl) sits in the safetensors header and is
mirrored to ``<kind>.json``. Writes go to a temp file, fsync, rename, fsync the directory: a crash
at any moment leaves the previous checkpoint readable. Loading parses only JSON and raw arrays
(never pickle) and validates names, shapes and dtypes, raising CheckpointError.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqtui.errors import CheckpointError, SeqtuiError
from seqtui.files import GiB, atomic_write, regular_file, remove_stale_temps

FORMAT = 1
META_KEY = "seqtui"
MODEL_PREFIXES = ("rnn.", "fc.", "linear.", "net.")  # text models: rnn./fc.; series models also linear./net.
EXTRA_PREFIXES = ("optim.", "train.")
RUN_KINDS = ("text", "series")  # meta["run_kind"] (absent: text); series tensors are checked by models.series
_KIND = re.compile(r"^[a-z][a-z0-9_-]*$")
_MAX_HEADER = 100 << 20  # a header larger than this is corrupt, not a checkpoint
MAX_CHECKPOINT_BYTES = 32 * GiB  # checked before reading (a link to /dev/zero is not a checkpoint)


def checkpoint_path(directory: str | os.PathLike, kind: str) -> Path:
    return Path(directory) / f"{kind}.safetensors"


# ----------------------------------------------------------------------------------------------
# Saving
def save_checkpoint(directory: str | os.PathLike, kind: str, model: Any, meta: Mapping[str, Any],
                    extra: Mapping[str, np.ndarray] | None = None) -> Path:
    """Atomically write ``<directory>/<kind>.safetensors`` (+ ``<kind>.json``); returns its path.

    ``model`` is a CharModel (its ``named_parameters()``) or a name→array mapping; ``extra``
    holds ``optim.*``/``train.*`` arrays. A write the disk refuses raises CheckpointError and
    leaves the previous checkpoint untouched.
    """
    from safetensors.numpy import save as st_save

    if not _KIND.match(kind):
        raise ValueError(f"bad checkpoint kind {kind!r}")
    named = model.named_parameters() if hasattr(model, "named_parameters") else model
    tensors: dict[str, np.ndarray] = {}
    for name, arr in named.items():
        if not name.startswith(MODEL_PREFIXES):
            raise ValueError(f"model tensor {name!r} has no {'/'.join(MODEL_PREFIXES)} prefix")
        tensors[name] = np.ascontiguousarray(arr)
    for name, arr in (extra or {}).items():
        if not name.startswith(EXTRA_PREFIXES):
            raise ValueError(f"extra tensor {name!r} needs an optim./train. prefix")
        tensors[name] = np.ascontiguousarray(arr)
    meta = dict(meta)
    meta["format"] = FORMAT
    meta["kind"] = kind
    header_meta = json.dumps(meta, ensure_ascii=False, allow_nan=False)
    data = st_save(tensors, metadata={META_KEY: header_meta})
    directory = Path(directory)
    path = checkpoint_path(directory, kind)
    try:
        # Never parents=True: a run directory deleted under a running trainer must stay deleted
        # (its parent is gone, so this fails instead of recreating it).
        directory.mkdir(exist_ok=True)
        remove_stale_temps(directory, path.name)
        atomic_write(path, data)
        atomic_write(directory / f"{kind}.json",
                           (json.dumps(meta, indent=1, ensure_ascii=False) + "\n").encode())
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    return path


# ----------------------------------------------------------------------------------------------
# Loading
def load_checkpoint(path: str | os.PathLike, expect: str | None = "text"
                    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint → (model tensors by PyTorch name, metadata).

    ``meta["extra_tensors"]`` holds the ``optim.*``/``train.*`` arrays. ``path`` may be the
    ``.safetensors`` file or its ``.json`` mirror. CheckpointError if it is missing, corrupt,
    truncated, or (a text checkpoint) its tensors do not match the shapes/dtype its config implies.
    ``expect``: the run kind the caller can use ("text", "series"; None: either) — a checkpoint of
    the other kind is a CheckpointError. A series checkpoint's tensors are validated by
    ``seqtui.models.series.from_state``, not here.
    """
    from safetensors.numpy import load as st_load

    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    size = _check_file(path).st_size
    head = _read_head(path)
    _read_meta(path, head)  # a bad header is reported before the arrays are read
    expected = _expected_size(path, head)
    if size != expected:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated "
                              f"({size:,} bytes, its header describes {expected:,})")
    try:
        with open(path, "rb") as f:
            data = f.read(expected + 1)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if len(data) != expected:
        raise CheckpointError(f"checkpoint {path} changed while being read")
    meta = _read_meta(path, data)
    run_kind = meta.get("run_kind", "text")
    if run_kind not in RUN_KINDS:
        raise CheckpointError(f"checkpoint {path} has an unknown run kind {run_kind!r}")
    if expect is not None and run_kind != expect:
        hint = " (use `seqtui series predict`)" if run_kind == "series" else ""
        raise CheckpointError(f"checkpoint {path} belongs to a {run_kind} run, not a {expect} run{hint}")
    try:
        arrays = st_load(data)
    except Exception as exc:  # safetensors raises its own error type for every malformation
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({_first_line(exc)})") from None
    model: dict[str, np.ndarray] = {}
    extra: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        if name.startswith(MODEL_PREFIXES):
            model[name] = arr
        elif name.startswith(EXTRA_PREFIXES):
            extra[name] = arr
        else:
            raise CheckpointError(f"checkpoint {path} has an unexpected tensor {name!r}")
    if run_kind == "text":
        validate_tensors(model, meta, where=str(path))
    meta["extra_tensors"] = extra
    return model, meta


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata (reads the header, not the arrays)."""
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    _check_file(path)
    return _read_meta(path, _read_head(path))


def _check_file(path: Path) -> os.stat_result:
    """A regular checkpoint file of bounded size (never a device, FIFO, /proc file or loop)."""
    if not os.path.lexists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    return regular_file(path, "checkpoint", MAX_CHECKPOINT_BYTES, CheckpointError, allow_empty=True)


def _read_head(path: Path) -> bytes:
    """The 8-byte length and the JSON header (at most _MAX_HEADER bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                head += f.read(min(n, _MAX_HEADER))
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    return head


def _expected_size(path: Path, head: bytes) -> int:
    """The file size the safetensors header implies (8 + header + the end of the last tensor)."""
    (n,) = struct.unpack("<Q", head[:8])
    try:
        header = json.loads(head[8:8 + n])
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (bad tensor table)") from None
    return 8 + n + max(ends, default=0)


def _read_meta(path: Path, data: bytes) -> dict[str, Any]:
    corrupt = f"checkpoint {path} is corrupt or truncated"
    if len(data) < 8:
        raise CheckpointError(f"{corrupt} (file too short)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise CheckpointError(f"{corrupt} (bad header length)")
    try:
        header = json.loads(data[8:8 + n])
        meta = json.loads(header["__metadata__"][META_KEY])
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{corrupt} (no seqtui metadata)") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{corrupt} (metadata is not an object)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has unsupported format {meta.get('format')!r}")
    return meta


def validate_tensors(tensors: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                     where: str = "checkpoint") -> None:
    """Names, shapes and dtype must be exactly those of the model the metadata describes."""
    from seqtui.models.charmodel import ModelConfig, check_named

    try:
        cfg = meta["config"]
        mcfg = ModelConfig(cell=cfg["cell"], vocab_size=int(meta["vocab_size"]),
                           hidden=int(cfg["hidden"]), num_layers=int(cfg["layers"]))
        dtype = np.dtype(cfg.get("dtype") or "float32")
    except (KeyError, TypeError, ValueError, SeqtuiError):
        raise CheckpointError(f"{where}: metadata lacks a usable model config") from None
    check_named(mcfg, dtype, tensors, where)


def check_vocab(meta: Mapping[str, Any], vocab: Any, where: str = "checkpoint") -> None:
    """CheckpointError unless the checkpoint was trained on exactly this vocabulary (its kind,
    tokens and, for BPE, merges)."""
    from seqtui.data.vocab import Vocab

    saved = meta.get("vocab") or {}
    try:
        same = Vocab.from_json(saved) == vocab
    except SeqtuiError:
        same = False
    if not same:
        itos = saved.get("itos") if isinstance(saved, Mapping) else None
        n = len(itos) if isinstance(itos, list) else "?"
        raise CheckpointError(
            f"{where} was trained on a different vocabulary ({n} tokens, this data has {len(vocab)})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
