"""`seqtui eval RUN [--corpus X]`: perplexity of a trained run on its held-out split or any text."""

from __future__ import annotations

import json

import click
import numpy as np

from seqtui.errors import ConfigError, CorpusError


@click.command("eval")
@click.argument("run")
@click.option("--corpus", help="Evaluate on this corpus (name or file) instead of the run's held-out split.")
@click.option("--checkpoint", "kind", type=click.Choice(["best", "latest"]),
              help="Which checkpoint (default: best if there is one, else latest).")
@click.option("--errors", type=click.Choice(["strict", "replace"]), default=None,
              help="Invalid UTF-8 in --corpus: stop with its position, or substitute U+FFFD "
                   "(default: the run's setting).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def evaluate(run, corpus, kind, errors, as_json) -> None:
    """Perplexity of RUN on held-out text: exp(mean NLL per token), plus bits per token."""
    from seqtui.engine.evaluate import evaluate_ids
    from seqtui.engine.loading import load_run_model
    from seqtui.engine.runs import get_run

    info = get_run(run)
    model, vocab, config = load_run_model(info, kind=kind)
    if corpus:
        ids, source = _encode_corpus(corpus, vocab, config, errors), corpus
    else:
        ids, source = _held_out(config, vocab), "held-out split"
    result = evaluate_ids(model, ids, int(config["num_steps"]), int(config["batch_size"]),
                          seed=int(config.get("seed", 0)))
    result.update(run=info.name, source=source, unk_fraction=float(np.mean(ids == 0)) if len(ids) else 0.0)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from seqtui.cli.safe import visible_line

    click.echo(f"{visible_line(info.name)} on {visible_line(source)}: perplexity {result['ppl']:.4f}  "
               f"({result['loss']:.4f} nats, {result['bits_per_token']:.4f} bits per token, "
               f"{result['tokens']:,} tokens, {result['unk_fraction']:.2%} <unk>)")


def _held_out(config: dict, vocab) -> np.ndarray:
    from seqtui.data.text import TextConfig, load_dataset, split_train_val

    frac = float(config.get("val_fraction") or 0.0)
    if frac <= 0:
        raise ConfigError("this run has no held-out split (--val-fraction 0); pass --corpus")
    ds = load_dataset(TextConfig(corpus=config["corpus"], preprocess=config["preprocess"],
                                 tokens=config["tokens"], min_freq=config.get("min_freq", 0),
                                 max_tokens=config.get("max_tokens"), errors=config.get("errors", "strict")))
    if ds.vocab != vocab:
        raise CorpusError(f"corpus {config['corpus']!r} changed since the run was trained; pass --corpus")
    return np.ascontiguousarray(split_train_val(ds.ids, frac)[1])


def _encode_corpus(name: str, vocab, config: dict, errors: str | None = None) -> np.ndarray:
    """Any text through the run's preprocessing and vocabulary (unknown tokens → <unk>); the
    file is checked first (a bounded regular file: never a device, FIFO or /proc file)."""
    from seqtui.data.corpora import read_corpus_text, resolve_corpus
    from seqtui.data.text import tokenize

    text = read_corpus_text(resolve_corpus(name), errors=errors or config.get("errors", "strict"))
    tokens = tokenize(text, config.get("tokens", "char"), config.get("preprocess", "raw"))
    return vocab.encode(tokens)
