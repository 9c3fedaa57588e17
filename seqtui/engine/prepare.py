"""From a RunConfig to training data, checked: the one path the trainer and ``start_run`` share,
so a run that cannot train is refused before its directory exists (no failed-run litter)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqtui.engine.config import RunConfig
from seqtui.errors import ConfigError, CorpusError


@dataclass
class Prepared:
    """The tokenized corpus and its split, as the trainer uses them."""

    dataset: Any              # seqtui.data.text.Dataset
    train_ids: np.ndarray     # int32, C-contiguous
    val_ids: np.ndarray       # int32 (empty when val_fraction is 0)
    val_batch: int            # validation batch size (0: no validation)


def resolve_corpus_path(cfg: RunConfig) -> RunConfig:
    """The corpus as the trainer will find it: an installed bundled corpus, or an absolute path
    (the trainer's working directory is its run directory)."""
    from seqtui.data.corpora import resolve_corpus

    info = resolve_corpus(cfg.corpus)
    if info.kind == "bundled" and not info.available:
        raise CorpusError(f"corpus {info.name!r} is not installed: {info.install_hint}")
    if info.kind == "path" and info.path is not None:
        return cfg.replace(corpus=str(Path(info.path).resolve()))
    return cfg


def prepare_data(cfg: RunConfig) -> Prepared:
    """Tokenize (or map the cached tokens of) the corpus and split it; one-line errors when the
    corpus is empty, binary, not UTF-8, or too short for one batch or for validation."""
    from seqtui.data.batches import make_epoch, min_tokens
    from seqtui.data.text import load_dataset
    from seqtui.engine.evaluate import eval_batch_size

    ds = load_dataset(cfg.text_config())
    train_ids, val_ids = ds.split(cfg.val_fraction)  # BPE: where the merges' training text ends
    train_ids = np.ascontiguousarray(train_ids)
    try:
        make_epoch(train_ids, cfg.sampling, cfg.batch_size, cfg.num_steps, cfg.seed, 0)  # too short?
    except CorpusError as exc:  # its count is the training split's: say the file's too
        message = str(exc).replace("corpus has", "the training split has", 1)
        raise CorpusError(f"{message} (the corpus has {len(ds.ids):,} tokens; --val-fraction "
                          f"{cfg.val_fraction:g} holds out {len(ds.ids) - len(train_ids):,})") from None
    val_batch = 0
    if cfg.val_fraction > 0:
        val_ids = np.ascontiguousarray(val_ids)
        val_batch = eval_batch_size(len(val_ids), cfg.batch_size, cfg.num_steps)
        if val_batch == 0:
            need = min_tokens("sequential", 1, cfg.num_steps)
            raise ConfigError(
                f"validation split has {len(val_ids)} tokens, needs at least {need}; "
                "raise --val-fraction or use --val-fraction 0")
    return Prepared(ds, train_ids, val_ids, val_batch)


def check_model_fits(cfg: RunConfig, vocab_size: int) -> None:
    """ConfigError before anything is allocated when the model would not fit in memory."""
    from seqtui.models.memory import check_fits_in_memory

    check_fits_in_memory(cfg.model_config(vocab_size), cfg.batch_size, cfg.num_steps,
                         np.dtype(cfg.dtype))


def preflight(cfg: RunConfig) -> RunConfig:
    """Everything that can refuse a run before it starts; returns the config to store."""
    cfg = resolve_corpus_path(cfg.validate())
    prepared = prepare_data(cfg)
    check_model_fits(cfg, len(prepared.dataset.vocab))
    return cfg
