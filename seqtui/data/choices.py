"""The names the data layer accepts — preprocessing presets, token kinds, UTF-8 error modes,
sampling schemes — defined once, importable without numpy (the CLI's ``--help`` uses them)."""

from __future__ import annotations

PREPROCESS = ("raw", "d2l")          # keep the text | d2l: lowercase letters and single spaces
TOKENS = ("char", "word", "bpe")     # characters | whitespace-separated words | byte-pair encoding
ERRORS = ("strict", "replace", "skip-file")  # invalid UTF-8: refuse | substitute U+FFFD | leave that document out
# (skip-file: a directory/glob corpus leaves a document that is not UTF-8 out; a single file: strict)
SAMPLINGS = ("random", "sequential")  # random windows (state reset) | sequential (state carried)
