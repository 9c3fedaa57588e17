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
@click.option("--errors", type=click.Choice(["strict", "replace", "skip-file"]), default=None,
              help="Invalid UTF-8 in --corpus: stop with its position, substitute U+FFFD, or (a "
                   "directory or glob) leave that document out (default: the run's setting).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def evaluate(run, corpus, kind, errors, as_json) -> None:
    """Perplexity of RUN on held-out text: exp(mean NLL per token), plus bits per token and
    bits per character.

    Bits per character put char, word and BPE runs on one scale: the total NLL (in bits) of the
    tokens evaluated, over the characters of the text they spell (word tokens: one space between
    words). Each <unk> token is charged the cost of spelling it (and a space) with a Laplace
    character unigram fitted on the run's training text, so an unknown word is not free."""
    from seqtui.engine.evaluate import evaluate_ids
    from seqtui.engine.loading import load_run_model
    from seqtui.engine.runs import get_run

    from seqtui.engine.config import RunConfig

    info = get_run(run)
    model, vocab, raw = load_run_model(info, kind=kind)
    config = RunConfig.from_dict(raw)  # read as every reader reads a config: one schema, one set of defaults
    if corpus:
        ids, source = _encode_corpus(corpus, vocab, config, errors), corpus
    else:
        ids, source = _held_out(config, vocab), "held-out split"
    result = evaluate_ids(model, ids, config.num_steps, config.batch_size, seed=config.seed)
    result.update(run=info.name, source=source, unk_fraction=float(np.mean(ids == 0)) if len(ids) else 0.0)
    result["bits_per_char"] = eval_bits_per_char(result, ids, vocab, config, corpus, errors)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from seqtui.cli.safe import visible_line

    click.echo(f"{visible_line(info.name)} on {visible_line(source)}: perplexity {result['ppl']:.4f}  "
               f"({result['loss']:.4f} nats, {result['bits_per_token']:.4f} bits per token, "
               f"{_bpc(result['bits_per_char'])} bits per char, "
               f"{result['tokens']:,} tokens, {result['unk_fraction']:.2%} <unk>)")


def _held_out(config, vocab) -> np.ndarray:
    from seqtui.data.text import load_dataset

    if config.val_fraction <= 0:
        raise ConfigError("this run has no held-out split (--val-fraction 0); pass --corpus")
    ds = load_dataset(config.text_config())
    if ds.vocab != vocab:
        raise CorpusError(f"corpus {config.corpus!r} changed since the run was trained; pass --corpus")
    return np.ascontiguousarray(ds.split(config.val_fraction)[1])


def _encode_corpus(name: str, vocab, config, errors: str | None = None) -> np.ndarray:
    """Any text through the run's preprocessing and vocabulary (unknown tokens → <unk>); the
    file is checked first (a bounded regular file: never a device, FIFO or /proc file)."""
    from seqtui.data.corpora import read_corpus_text, resolve_corpus
    from seqtui.data.text import encode_prompt

    text = read_corpus_text(resolve_corpus(name), errors=errors or config.errors)
    return encode_prompt(vocab, text, config.tokens, config.preprocess)


def _bpc(x) -> str:
    return "?" if x is None else f"{x:.4f}"


def predicted_positions(n: int, num_steps: int, batch_size: int, seed: int = 0) -> np.ndarray:
    """The positions of the tokens :func:`seqtui.engine.evaluate.evaluate_ids` predicts (the Y
    of its sequential windows), in order: the NLL it sums is over exactly these tokens."""
    from seqtui.data.batches import make_epoch
    from seqtui.engine.evaluate import eval_batch_size

    T = min(num_steps, n - 1)
    B = eval_batch_size(n, batch_size, T)
    eb = make_epoch(np.zeros(n, dtype=np.int32), "sequential", B, T, seed, 0)
    steps = np.arange(1, T + 1, dtype=np.int64)
    rows = [(eb.starts(i)[:, None] + steps[None, :]) for i in range(eb.num_batches)]
    if not rows:
        return np.zeros(0, dtype=np.int64)
    # row r of every batch continues row r of the one before: order by row, then by batch
    return np.concatenate(rows, axis=1).reshape(-1)


def _run_tokens(config, errors: str | None = None) -> list[str]:
    """The run's corpus as the tokens it was trained on (the first max_tokens of them)."""
    from seqtui.data.corpora import read_corpus_text, resolve_corpus
    from seqtui.data.text import tokenize

    text = read_corpus_text(resolve_corpus(config.corpus), errors=errors or config.errors)
    tokens = tokenize(text, config.tokens, config.preprocess)
    return tokens[:config.max_tokens] if config.max_tokens else tokens


def _train_count(n: int, val_fraction: float) -> int:
    return n - int(round(n * float(val_fraction)))


def spelling_model(train_tokens: list[str], is_char: bool):
    """The character unigram that charges <unk> tokens: fitted on the training text."""
    from seqtui.data.stats import CharUnigram

    return CharUnigram.fit(("" if is_char else " ").join(train_tokens))


def eval_bits_per_char(result: dict, ids: np.ndarray, vocab, config, corpus: str | None,
                       errors: str | None) -> float | None:
    """Exact bits per character of the tokens evaluate_ids scored (None when no token was)."""
    from seqtui.data.stats import bits_per_char, text_bits_per_char, text_chars

    if not result.get("tokens"):
        return None
    total = float(result["loss"]) * int(result["tokens"])
    pos = predicted_positions(len(ids), config.num_steps, config.batch_size, seed=config.seed)
    if pos.shape[0] != int(result["tokens"]):  # pragma: no cover - evaluate_ids changed its windows
        return None
    sub = np.asarray(ids)[pos]
    chars = text_chars(sub, vocab)  # from the ids alone (BPE, or no <unk> hiding a spelling)
    if chars is not None:
        return bits_per_char(total, chars)
    # <unk> hides a token's spelling: read the real tokens and fit the spelling on the training text
    run_tokens = _run_tokens(config)
    n_train = _train_count(len(run_tokens), config.val_fraction)
    spell = spelling_model(run_tokens[:n_train], vocab.is_char)
    if corpus:
        from seqtui.data.corpora import read_corpus_text, resolve_corpus
        from seqtui.data.text import tokenize

        text = read_corpus_text(resolve_corpus(corpus), errors=errors or config.errors)
        actual = tokenize(text, config.tokens, config.preprocess)
    else:
        actual = run_tokens[n_train:]
    if len(actual) != len(ids):  # pragma: no cover - the text changed under us
        return None
    return text_bits_per_char(total, sub, vocab, [actual[i] for i in pos.tolist()], spell)
