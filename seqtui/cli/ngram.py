"""`seqtui ngram CORPUS --order k`: the Laplace-smoothed Markov baseline, its perplexities, a sample."""

from __future__ import annotations

import time

import click

_NAMES = {0: "unigram", 1: "bigram", 2: "trigram"}


def _parse_eps(value: str) -> list[float]:
    from seqtui.errors import ConfigError

    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--eps takes numbers separated by commas (ε₁,ε₂,…); got {value!r}") from None


@click.command("ngram")
@click.argument("corpus")
@click.option("--order", "-k", type=click.IntRange(0, 12), default=2, show_default=True,
              help="Tokens of context: 0 unigram, 1 bigram, 2 trigram, …")
@click.option("--tokens", type=click.Choice(["char", "word"]), default="char", show_default=True)
@click.option("--preprocess", type=click.Choice(["raw", "d2l"]), default="raw", show_default=True,
              help="raw keeps every character; d2l: letters only, lowercased (d2l's Time Machine).")
@click.option("--val-fraction", type=float, default=0.1, show_default=True, help="Held-out tail of the corpus.")
@click.option("--eps", default="1", show_default=True, metavar="E1[,E2,...]",
              help="Laplace constants ε₁,ε₂,… for unigrams, bigrams, …; the last one repeats.")
@click.option("--min-freq", type=click.IntRange(0), default=0, show_default=True, help="Rarer tokens become <unk>.")
@click.option("--max-tokens", type=click.IntRange(1), default=None, help="Use only the first N tokens.")
@click.option("--errors", type=click.Choice(["strict", "replace", "skip-file"]), default="strict",
              show_default=True, help="Invalid UTF-8: stop with its position, substitute U+FFFD, or (a "
                                      "directory or glob corpus) leave that document out.")
@click.option("--length", type=click.IntRange(0, 100_000), default=200, show_default=True, help="Tokens to generate.")
@click.option("--prompt", default="", help="Text the sample continues.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def ngram(corpus, order, tokens, preprocess, val_fraction, eps, min_freq, max_tokens, errors, length, prompt,
          seed, as_json) -> None:
    """Fit a k-th order Markov model with Laplace smoothing on CORPUS (a name or a file),
    print train and validation perplexity and a generated sample.

    Bits per character (also in --json, as bits_per_char) compare it with char, word and BPE
    models: the validation NLL in bits over the characters of the held-out text (word tokens:
    one space between words); each <unk> token is charged the cost of spelling it (and a space)
    with a Laplace character unigram fitted on the training text."""
    import numpy as np

    from seqtui.models.ngram import NGramModel, expand_eps
    from seqtui.data.text import TextConfig, load_dataset, split_train_val, tokenize

    from seqtui.cli.generate import check_seed

    check_seed(seed)
    eps_values = expand_eps(_parse_eps(eps), order)
    t0 = time.perf_counter()
    ds = load_dataset(TextConfig(corpus, preprocess=preprocess, tokens=tokens, min_freq=min_freq,
                                 max_tokens=max_tokens, errors=errors))
    train, val = split_train_val(ds.ids, val_fraction)
    model = NGramModel.fit(train, len(ds.vocab), order, eps_values)
    train_ppl = model.perplexity(train)
    val_ppl = model.perplexity(val, history=train) if len(val) else None
    val_bpc = _val_bits_per_char(model, ds, train, val, tokens, preprocess, max_tokens, errors) \
        if len(val) else None
    prompt_ids = ds.vocab.encode(tokenize(prompt, tokens, preprocess)) if prompt else np.zeros(0, np.int32)
    sample_ids = model.sample(length, seed=seed, prompt=prompt_ids)
    sample = ds.vocab.decode(sample_ids)
    if prompt:
        sample = ds.vocab.decode(prompt_ids) + ("" if ds.vocab.is_char else " ") + sample
    seconds = time.perf_counter() - t0
    result = {
        "corpus": ds.corpus.name, "order": order, "tokens": tokens, "preprocess": preprocess,
        "eps": list(eps_values), "vocab_size": len(ds.vocab), "train_tokens": int(len(train)),
        "val_tokens": int(len(val)), "train_ppl": train_ppl, "val_ppl": val_ppl,
        "bits_per_char": val_bpc,
        "seed": seed, "sample": sample, "seconds": round(seconds, 3),
    }
    if as_json:
        from seqtui.cli.safe import safe_json

        click.echo(safe_json(result))
        return
    name = _NAMES.get(order, f"{order + 1}-gram")
    from seqtui.cli.safe import visible, visible_line

    click.echo(f"corpus      {visible_line(ds.corpus.name)}: {len(ds):,} {tokens} tokens, vocabulary {len(ds.vocab):,}")
    click.echo(f"model       order {order} ({name}), Laplace ε = {', '.join(f'{e:g}' for e in eps_values)}")
    click.echo(f"train       {len(train):,} tokens   perplexity {train_ppl:.3f}")
    if val_ppl is not None:
        bpc = "" if val_bpc is None else f"   {val_bpc:.4f} bits per char"
        click.echo(f"validation  {len(val):,} tokens   perplexity {val_ppl:.3f}{bpc}")
    click.echo(f"sample      (seed {seed}, {length} tokens)")
    click.echo(visible(sample))


def _val_bits_per_char(model, ds, train, val, tokens, preprocess, max_tokens, errors) -> float | None:
    """Exact bits per character of the held-out tokens (<unk> charged its spelling)."""
    import math

    from seqtui.data.stats import bits_per_char, text_bits_per_char, text_chars

    total = 0.0
    from seqtui.models.ngram import CHUNK

    for start in range(0, len(val), CHUNK):  # the NLL perplexity() sums, kept whole
        before = train if start == 0 else val[max(0, start - model.order):start]
        total -= float(model.log_probs(val[start:start + CHUNK], before).sum())
    if not math.isfinite(total):
        return None
    vocab = ds.vocab
    chars = text_chars(val, vocab)  # from the ids alone unless an <unk> hides a spelling
    if chars is not None:
        return bits_per_char(total, chars)
    from seqtui.cli.evaluate import spelling_model
    from seqtui.data.corpora import read_corpus_text
    from seqtui.data.text import tokenize

    actual = tokenize(read_corpus_text(ds.corpus, errors=errors), tokens, preprocess)
    if max_tokens:
        actual = actual[:max_tokens]
    if len(actual) != len(ds):  # pragma: no cover - the file changed under us
        return None
    n_train = len(train)
    return text_bits_per_char(total, val, vocab, actual[n_train:], spelling_model(actual[:n_train], vocab.is_char))
