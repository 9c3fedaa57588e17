"""`seqtui generate RUN "prompt"`: continue a prompt with a trained run, optionally streaming."""

from __future__ import annotations

import sys

import click

from seqtui.cli.safe import visible
from seqtui.errors import ConfigError

MAX_LENGTH = 1_000_000
SEED_LIMIT = 2**63 - 1


@click.command("generate")
@click.argument("run")
@click.argument("prompt", default="")
@click.option("-n", "--length", "n", type=int, default=200, show_default=True,
              help=f"Tokens to generate (at most {MAX_LENGTH:,}).")
@click.option("--temperature", "-t", type=float, default=1.0, show_default=True,
              help="Softmax temperature (lower = safer, 0 = greedy).")
@click.option("--top-k", type=int, default=0, show_default=True, help="Sample among the k likeliest (0 = all).")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling mass in (0, 1].")
@click.option("--seed", type=int, default=None, help="Seed for reproducible samples.")
@click.option("--stream", is_flag=True, help="Print tokens as they are generated.")
@click.option("--checkpoint", "kind", type=click.Choice(["best", "latest"]),
              help="Which checkpoint (default: best if there is one, else latest).")
def generate(run, prompt, n, temperature, top_k, top_p, seed, stream, kind) -> None:
    """Continue PROMPT with RUN (a run name or run dir); prints the prompt and its continuation.

    Prompt tokens outside the run's vocabulary are read as <unk> and named in a warning.
    """
    from seqtui.engine.loading import load_run_model
    from seqtui.models.generate import Generator

    check_sampling(n, temperature, top_k, top_p)
    if seed is not None:
        check_seed(seed)
    model, vocab, config = load_run_model(run, kind=kind)
    gen = Generator(model, vocab)
    unknown = gen.prime(prompt)
    if unknown:
        names = ", ".join(repr(t) for t in dict.fromkeys(unknown))
        hint = " (this run was trained on lowercase letters and spaces: --preprocess d2l)" \
            if config.get("preprocess") == "d2l" else ""
        click.echo(f"warning: not in the vocabulary, read as <unk>: {names}{hint}", err=True)
    sep = "" if vocab.is_char else " "
    out = sys.stdout
    out.write(visible(prompt))
    pieces = []
    for i, token in enumerate(gen.sample(n, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)):
        piece = token if (i == 0 and not prompt) else sep + token
        if stream:
            out.write(visible(piece))
            out.flush()
        else:
            pieces.append(piece)
    out.write(visible("".join(pieces)) + "\n")
    out.flush()


def check_sampling(n: int, temperature: float, top_k: int, top_p: float) -> None:
    """One-line ConfigErrors for absurd sampling settings."""
    if not 0 <= n <= MAX_LENGTH:
        raise ConfigError(f"-n must be in 0..{MAX_LENGTH:,}, got {n}")
    if not 0 <= temperature < float("inf"):
        raise ConfigError(f"temperature must be ≥ 0 (0 = greedy), got {temperature:g}")
    if top_k < 0:
        raise ConfigError(f"top-k must be ≥ 0, got {top_k}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top-p must be in (0, 1], got {top_p:g}")


def check_seed(seed: int) -> None:
    """Seeds are 0..2^63-1 everywhere (as RunConfig.validate requires)."""
    if not 0 <= seed <= SEED_LIMIT:
        raise ConfigError(f"seed must be in 0..2^63-1, got {seed}")
