"""Load a run's trained model for generation, evaluation and the TUI (no training state)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from seqtui.engine import runs
from seqtui.engine.checkpoint import load_checkpoint
from seqtui.errors import CheckpointError, SeqtuiError


def load_run_model(run: runs.RunInfo | str | os.PathLike, kind: str | None = None):
    """→ (CharModel, Vocab, config dict) from the run's best (else latest) checkpoint."""
    rd = run.dir if isinstance(run, runs.RunInfo) else runs.get_dir(run)
    model, vocab, meta = load_model_file(rd.best_or_latest(kind))
    return model, vocab, meta["config"]


def load_model_file(path: str | os.PathLike) -> tuple[Any, Any, dict]:
    """A checkpoint file → (CharModel, Vocab, metadata)."""
    from seqtui.models.charmodel import CharModel
    from seqtui.data.vocab import Vocab

    tensors, meta = load_checkpoint(path)
    vocab = Vocab.from_json(meta.get("vocab") or {})
    if len(vocab) != int(meta["vocab_size"]):
        raise CheckpointError(f"checkpoint {path}: vocabulary has {len(vocab)} tokens, "
                              f"the model {meta['vocab_size']}")
    cfg = _config(meta, path)
    model = CharModel(cfg.model_config(len(vocab)), seed=0, dtype=np.dtype(cfg.dtype))
    model.load_named(tensors)
    return model, vocab, meta


def _config(meta: dict, path) -> Any:
    """The checkpoint's RunConfig (read as every reader reads it: RunConfig.from_dict)."""
    from seqtui.engine.config import RunConfig

    try:
        return RunConfig.from_dict(meta.get("config"))
    except SeqtuiError as exc:
        raise CheckpointError(f"checkpoint {path}: bad config ({exc})") from None
