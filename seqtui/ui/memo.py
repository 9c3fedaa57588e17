"""Memorization figures for samples (issue 11): how much of a sample is copied from the training text.

The index (``seqtui.data.memorize.MemoIndex``) is built or loaded once per run's dataset in a
worker thread and kept by the app; scoring a sample (≈0.3 ms per 200 characters) also runs in a
worker. This module only formats: ``memo_text`` highlights the copied spans, ``memo_line`` says
the figures in one line.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text

THRESHOLD = 20                     # a copied run counts toward the share from this many tokens
MEMO_STYLE = "bold underline yellow"  # underline survives NO_COLOR


def load_memo_index(path: Path) -> Any:
    """The memorization index of a text run's training split (None for a series run).
    Tokenizes the corpus and may compile kernels: call it in a worker thread."""
    from seqtui.data.memorize import MemoIndex
    from seqtui.data.text import load_dataset
    from seqtui.engine.config import RunConfig
    from seqtui.engine.rundir import RunDir
    from seqtui.ui.screens.base import DATASET_LOCK

    cfg = RunDir(path).config()
    if not isinstance(cfg, RunConfig):
        return None
    with DATASET_LOCK:
        ds = load_dataset(cfg.text_config())
        n_train = len(ds.split(cfg.val_fraction)[0])
        return MemoIndex.build_or_load(ds, n_train)


class MemoIndexes:
    """The app's indexes by run path, built on first use (from worker threads, one at a time)."""

    def __init__(self, loader=load_memo_index) -> None:
        self.loader = loader
        self._lock = threading.Lock()
        self._indexes: dict[Path, Any] = {}
        self._errors: dict[Path, str] = {}

    def get(self, path: Path) -> Any:
        """The index, or None (a series run, or a corpus that cannot be read: said once by ``error``)."""
        path = Path(path)
        with self._lock:
            if path in self._indexes:
                return self._indexes[path]
            if path in self._errors:
                return None
            try:
                index = self.loader(path)
            except Exception as exc:  # noqa: BLE001 - no figures is better than a dead worker
                self._errors[path] = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
                return None
            self._indexes[path] = index
            return index

    def error(self, path: Path) -> str | None:
        return self._errors.get(Path(path))

    def score(self, path: Path, text: str) -> Any:
        index = self.get(path)
        if index is None or not text:
            return None
        return index.score(text, threshold=THRESHOLD)

    def scored(self, key: Any, path: Path, text: str):
        """The ``MemoScored`` message a screen's worker posts: the figures, or why there are none
        (an error becomes no figures, never an error dialog)."""
        from seqtui.ui.messages import MemoScored

        try:
            return MemoScored(key, self.score(path, text))
        except Exception as exc:  # noqa: BLE001 - no figures rather than an error dialog
            return MemoScored(key, None, str(exc))


def memo_text(text: str, score: Any, style: str = "") -> Text:
    """The sample with its copied spans highlighted (spans index ``score.text``; when the index
    tokenized a different string — d2l preprocessing — the text is shown without highlights)."""
    out = Text(text, style=style)
    if score is None or not getattr(score, "char_spans", None) or getattr(score, "text", None) != text:
        return out
    for start, end in score.char_spans:
        out.stylize(MEMO_STYLE, start, end)
    return out


def memo_line(score: Any, is_char: bool = True) -> str:
    """``copied: longest 23 chars (training line 1,204) · 12% in runs ≥ 20``."""
    if score is None:
        return ""
    unit = "chars" if is_char else "words"
    if not score.longest_len:
        return "copied: nothing from the training text"
    where = f" (training line {score.longest_line:,})" if score.longest_line else (
        f" (training token {score.longest_at:,})" if score.longest_at >= 0 else "")
    return (f"copied: longest {score.longest_len} {unit}{where} · "
            f"{score.covered_fraction:.0%} in runs ≥ {score.threshold}")
