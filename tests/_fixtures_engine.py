"""Shared helpers for the engine/CLI tests: a tiny corpus file, tiny configs, in-process CLI calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

WORDS = ("the time traveller said that it was a strange machine of brass and crystal "
         "and we looked at it for a long while before anyone spoke").split()


def tiny_corpus(directory: Path, n_words: int = 600, seed: int = 0, name: str = "tiny.txt") -> Path:
    """A few KB of deterministic word salad (about 20 distinct characters)."""
    rng = np.random.default_rng(seed)
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), n_words)]
    lines = [" ".join(words[i:i + 12]) for i in range(0, n_words, 12)]
    path = Path(directory) / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_config(corpus: Path, **changes) -> dict:
    """A RunConfig dict for a model that trains in well under a second."""
    from seqtui.engine.config import RunConfig

    cfg = RunConfig(corpus=str(corpus), cell="gru", hidden=8, layers=1, batch_size=4, num_steps=8,
                    optimizer="adam", lr=0.01, clip=1.0, epochs=2, val_fraction=0.1, seed=3,
                    progress_every=1, grad_profile_every=5, sample_every=0, checkpoint_every=0,
                    checkpoint_seconds=1e9, sample_length=10)
    return cfg.replace(**changes).validate().to_dict()


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """`seqtui ARGV` in this process → (exit code, stdout, stderr)."""
    from seqtui.cli import main

    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def seqtui_subprocess(args: list[str], **kwargs) -> subprocess.Popen:
    """`python -m seqtui ARGS` as a child process (inherits the test environment)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.update(kwargs.pop("env", {}))
    return subprocess.Popen([sys.executable, "-m", "seqtui", *args], env=env, text=True,
                            stdout=kwargs.pop("stdout", subprocess.PIPE),
                            stderr=kwargs.pop("stderr", subprocess.PIPE), **kwargs)


def read_events(run_dir: Path) -> list[dict]:
    from seqtui.engine.events import read_events as _read

    return _read(Path(run_dir) / "events.jsonl")


def write_config(run_dir: Path, config: dict) -> None:
    (Path(run_dir) / "config.json").write_text(json.dumps(config))
