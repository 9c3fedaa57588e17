"""`seqtui eval RUN [--corpus X]`: perplexity of a trained run on its held-out split or any text."""

from __future__ import annotations

import json
import math

import click
import numpy as np

from seqtui.errors import ConfigError, CorpusError


@click.command("eval")
@click.argument("run")
@click.option("--corpus", help="Evaluate on this corpus (name or file) instead of the run's held-out split.")
@click.option("--checkpoint", "kind", type=click.Choice(["best", "latest"]),
              help="Which checkpoint (default: best if there is one, else latest).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def evaluate(run, corpus, kind, as_json) -> None:
    """Perplexity of RUN on held-out text: exp(mean NLL per token), plus bits per token."""
    from seqtui.engine.loading import load_run_model
    from seqtui.engine.runs import get_run

    info = get_run(run)
    model, vocab, config = load_run_model(info, kind=kind)
    if corpus:
        ids, source = _encode_corpus(corpus, vocab, config), corpus
    else:
        ids, source = _held_out(config, vocab), "held-out split"
    result = evaluate_ids(model, ids, int(config["num_steps"]), int(config["batch_size"]))
    result.update(run=info.name, source=source, unk_fraction=float(np.mean(ids == 0)) if len(ids) else 0.0)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{info.name} on {source}: perplexity {result['ppl']:.4f}  "
               f"({result['loss']:.4f} nats, {result['bits_per_token']:.4f} bits per token, "
               f"{result['tokens']:,} tokens, {result['unk_fraction']:.2%} <unk>)")


def evaluate_ids(model, ids: np.ndarray, num_steps: int, batch_size: int) -> dict:
    """Sequential windows with the state carried: mean NLL over every predicted token."""
    from seqtui.batches import make_epoch, min_tokens

    T = num_steps
    if len(ids) < 2:
        raise CorpusError(f"need at least 2 tokens to evaluate, got {len(ids)}")
    T = min(T, len(ids) - 1)
    B = 1
    for b in range(min(batch_size, len(ids)), 0, -1):
        if len(ids) >= min_tokens("sequential", b, T):
            B = b
            break
    eb = make_epoch(np.ascontiguousarray(ids, dtype=np.int32), "sequential", B, T, 0, 0)
    state = model.init_state(B)
    nll, count = 0.0, 0
    for i in range(eb.num_batches):
        X, Y = eb.batch(i)
        s, n, state = model.evaluate(X, Y, state)
        nll += float(s)
        count += int(n)
    loss = nll / max(count, 1)
    return {"tokens": count, "loss": loss, "ppl": math.exp(loss), "bits_per_token": loss / math.log(2)}


def _held_out(config: dict, vocab) -> np.ndarray:
    from seqtui.text import TextConfig, load_dataset, split_train_val

    frac = float(config.get("val_fraction") or 0.0)
    if frac <= 0:
        raise ConfigError("this run has no held-out split (--val-fraction 0); pass --corpus")
    ds = load_dataset(TextConfig(corpus=config["corpus"], preprocess=config["preprocess"],
                                 tokens=config["tokens"], min_freq=config.get("min_freq", 0),
                                 max_tokens=config.get("max_tokens"), errors=config.get("errors", "strict")))
    if ds.vocab != vocab:
        raise CorpusError(f"corpus {config['corpus']!r} changed since the run was trained; pass --corpus")
    return np.ascontiguousarray(split_train_val(ds.ids, frac)[1])


def _encode_corpus(name: str, vocab, config: dict) -> np.ndarray:
    """Any text through the run's preprocessing and vocabulary (unknown tokens → <unk>)."""
    from seqtui.corpora import read_corpus_text, resolve_corpus
    from seqtui.text import tokenize

    text = read_corpus_text(resolve_corpus(name), errors=config.get("errors", "strict"))
    tokens = tokenize(text, config.get("tokens", "char"), config.get("preprocess", "raw"))
    return vocab.encode(tokens)
