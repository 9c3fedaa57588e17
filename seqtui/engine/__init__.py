"""The run engine: run directories, config, events.jsonl, checkpoints and the training loop.

Submodules are imported on demand (``seqtui.engine.runs`` and ``.events`` are cheap and never
import numba; ``.trainer`` and ``.loading`` pull in the model). The engine never imports Textual.
"""
