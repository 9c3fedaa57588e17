"""The names the model layer accepts — cells and their gate counts, initialisations, dtypes,
optimizers, BPTT modes — defined once, importable without numpy (the CLI's ``--help`` uses them)."""

from __future__ import annotations

GATES = {"rnn": 1, "gru": 3, "lstm": 4}      # gate blocks per cell (PyTorch's layout)
CELLS = tuple(GATES)
INITS = ("pytorch", "d2l")                   # U(±1/√H) | N(0, 0.01²) weights with zero biases
DTYPES = ("float32", "float64")
OPTIMIZERS = ("sgd", "adam")
DEFAULT_LR = {"sgd": 1.0, "adam": 0.002}
BPTT_MODES = ("full", "truncated", "randomized")
