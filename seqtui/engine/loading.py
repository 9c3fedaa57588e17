"""Load a run's trained model for generation, evaluation and the TUI (no training state)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from seqtui.engine import runs
from seqtui.engine.checkpoint import load_checkpoint
from seqtui.errors import CheckpointError

KINDS = ("best", "latest")


def checkpoint_for(run: runs.RunInfo, kind: str | None = None) -> Path:
    """The checkpoint file of a run: ``kind``, or best if it exists else latest."""
    directory = run.path / runs.CHECKPOINT_DIR
    if kind is not None:
        if kind not in KINDS:
            raise CheckpointError(f"unknown checkpoint kind {kind!r} (best or latest)")
        path = directory / f"{kind}.safetensors"
        if not path.exists():
            raise CheckpointError(f"run {run.name!r} has no {kind} checkpoint")
        return path
    for k in KINDS:
        path = directory / f"{k}.safetensors"
        if path.exists():
            return path
    raise CheckpointError(f"run {run.name!r} has no checkpoint yet")


def load_run_model(run: runs.RunInfo | str | os.PathLike, kind: str | None = None):
    """→ (CharModel, Vocab, config dict) from the run's best (else latest) checkpoint."""
    info = run if isinstance(run, runs.RunInfo) else runs.get_run(run)
    model, vocab, meta = load_model_file(checkpoint_for(info, kind))
    return model, vocab, meta["config"]


def load_model_file(path: str | os.PathLike) -> tuple[Any, Any, dict]:
    """A checkpoint file → (CharModel, Vocab, metadata)."""
    from seqtui.models.charmodel import CharModel, ModelConfig
    from seqtui.data.vocab import Vocab

    tensors, meta = load_checkpoint(path)
    vocab = Vocab.from_json(meta.get("vocab") or {})
    if len(vocab) != int(meta["vocab_size"]):
        raise CheckpointError(f"checkpoint {path}: vocabulary has {len(vocab)} tokens, "
                              f"the model {meta['vocab_size']}")
    cfg = meta["config"]
    model = CharModel(ModelConfig(cell=cfg["cell"], vocab_size=len(vocab), hidden=int(cfg["hidden"]),
                                  num_layers=int(cfg["layers"])),
                      seed=0, dtype=np.dtype(cfg.get("dtype") or "float32"))
    model.load_named(tensors)
    return model, vocab, meta
