"""`seqtui generate RUN [PROMPT]`: continue a prompt with a trained run.

The prompt comes from the argument, a file (``--prompt-file``) or stdin (``-``). Sampling
(temperature / top-k / top-p, 0 = greedy) or beam search (``--beam W``: the most likely
continuation, with its log-probability). The text ends after ``-n`` tokens, or earlier at a
``--stop-at`` string or after ``--lines`` lines. ``--num-samples`` draws several (seeds seed,
seed+1, …). After each sample a memorization line (how much is copied from the training text)
goes to stderr; ``--json`` prints one object per sample instead (text, tokens, mean NLL, stop
reason, memorization). Output is UTF-8 whatever the locale; every piece of model or user text
goes through :func:`seqtui.cli.safe.visible`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import click

from seqtui.data.corpora import DOCUMENT_SEPARATOR  # a folder corpus joins its files with it
from seqtui.cli.safe import safe_json, visible, visible_line
from seqtui.errors import ConfigError, SeqtuiError

MAX_LENGTH = 1_000_000
SEED_LIMIT = 2**63 - 1
MAX_PROMPT_BYTES = 1 << 20  # prompt files and stdin
MAX_SAMPLES = 10_000
MAX_BEAM = 1024
SEPARATOR = "-----"
_SCORE_CHUNK = 4096  # tokens per forward call when scoring a sample
# reserved tokens that end a document: generating one ends the text (stop_reason "document")
END_OF_DOCUMENT = ("<eos>", "</s>", "<|endoftext|>", "<eod>")


@click.command("generate")
@click.argument("run")
@click.argument("prompt", required=False, default=None)
@click.option("-n", "--length", "n", type=int, default=200, show_default=True,
              help=f"Tokens to generate (at most {MAX_LENGTH:,}).")
@click.option("--temperature", "-t", type=float, default=1.0, show_default=True,
              help="Softmax temperature (lower = safer, 0 = greedy).")
@click.option("--top-k", type=int, default=0, show_default=True, help="Sample among the k likeliest (0 = all).")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling mass in (0, 1].")
@click.option("--seed", type=int, default=None,
              help="Seed for reproducible samples (sample i uses seed+i; default: a random seed).")
@click.option("--stream", is_flag=True,
              help="Print tokens as they are generated (stdout only; not with --json or --output).")
@click.option("--checkpoint", "kind", type=click.Choice(["best", "latest"]),
              help="Which checkpoint (default: best if there is one, else latest).")
@click.option("--prompt-file", type=str, default=None, metavar="PATH",
              help=f"Read the prompt from this UTF-8 file (a regular file, at most {MAX_PROMPT_BYTES >> 20} MiB; "
                   "'-' is stdin).")
@click.option("-o", "--output", type=str, default=None, metavar="PATH",
              help="Write the text (or the JSON lines) to this file, atomically, instead of stdout.")
@click.option("--stop-at", "stop_at", multiple=True, metavar="STRING",
              help="End the text at the first STRING (kept in the text; repeatable; escapes like '\\n', "
                   "'\\t', '\\x2e', '\\u00e9').")
@click.option("--stop-at-document", "stop_at_document", is_flag=True,
              help="End the text where the model ends a document (a folder/glob corpus's separator).")
@click.option("--lines", type=int, default=None, metavar="N",
              help="End the text after N lines (after its N-th newline).")
@click.option("--num-samples", type=int, default=1, show_default=True, metavar="N",
              help=f"Independent samples, separated by a '{SEPARATOR}' line.")
@click.option("--beam", type=int, default=None, metavar="W",
              help="Beam search of width W: the most likely continuation (W = 1 is greedy); prints "
                   "its log-probability on stderr.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per sample (JSON lines): text, tokens, mean_nll, stop_reason, "
                   "memorization, ...")
@click.option("--memo-threshold", type=int, default=20, show_default=True, metavar="N",
              help="Copied runs of at least N tokens count toward the memorization coverage.")
@click.option("--no-memo", is_flag=True, help="Skip the memorization meter.")
@click.pass_context
def generate(ctx, run, prompt, n, temperature, top_k, top_p, seed, stream, kind, prompt_file, output,
             stop_at, lines, num_samples, beam, as_json, memo_threshold, no_memo,
             stop_at_document) -> None:
    """Continue PROMPT with RUN (a run name or run dir); prints the prompt and its continuation.

    PROMPT '-' reads the prompt from stdin (at most 1 MiB of UTF-8). Prompt tokens outside the
    run's vocabulary are read as <unk> and named in a warning. After each sample one line on
    stderr says how much of it is copied from the training text (--no-memo skips it).
    """
    utf8_streams()
    check_sampling(n, temperature, top_k, top_p)
    stops = [parse_escapes(s) for s in stop_at]
    check_counts(lines, num_samples, beam, memo_threshold)
    if beam is not None:
        given = [f"--{name.replace('_', '-')}" for name in ("temperature", "top_k", "top_p", "seed")
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise ConfigError(f"--beam searches for the most likely text; {', '.join(given)} do not apply")
        if num_samples != 1:
            raise ConfigError("--beam gives one continuation (the most likely); drop --num-samples")
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**62)
    else:
        check_seed(seed)
        if seed + num_samples - 1 > SEED_LIMIT:
            raise ConfigError(f"seed + num-samples - 1 must be at most 2^63-1, got seed {seed}")
    if output is not None:
        check_output(output)
    prompt = read_prompt(prompt, prompt_file)

    from seqtui.engine.loading import load_run_model
    from seqtui.models.generate import Generator

    model, vocab, config = load_run_model(run, kind=kind)
    if lines is not None and vocab.kind != "bpe" and "\n" not in vocab:
        raise ConfigError("this run's vocabulary has no newline, so --lines would never end the text")
    gen = Generator(model, vocab)
    unknown = gen.prime(prompt)
    if unknown:
        names = ", ".join(visible_line(repr(t)) for t in dict.fromkeys(unknown))
        hint = " (this run was trained on lowercase letters and spaces: --preprocess d2l)" \
            if config.get("preprocess") == "d2l" else ""
        click.echo(f"warning: not in the vocabulary, read as <unk>: {names}{hint}", err=True)
    memo = None if no_memo else memo_index(config, vocab)
    primed = (gen.state.copy(), gen.logits.copy())
    prompt_ids = vocab.encode(vocab.tokens_of(prompt)) if prompt else vocab.encode([])

    to_file = output is not None
    out = _Sink(None if to_file else sys.stdout)
    # a word-level continuation is spaced from the prompt; chars and BPE bytes follow it directly
    joiner = "" if (vocab.is_char or vocab.kind == "bpe" or not prompt or prompt[-1].isspace()) else " "
    live = stream and not as_json and not to_file
    emit = (lambda piece: out.write(visible(piece), flush=True)) if live else None
    for i in range(num_samples):
        if i and not as_json:
            out.write(SEPARATOR + "\n")
        if not as_json:
            out.write(visible(prompt), flush=live)
        if beam is not None:
            from seqtui.models.beam import beam_search

            ids, logprob = beam_search(model, vocab, prompt, n, beam)
            tokens = (vocab.itos[t] for t in ids.tolist())
        else:
            gen.state[...], gen.logits[...] = primed
            tokens = gen.sample(n, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + i)
            logprob = None
        sample = decode_sample(vocab, tokens, stops, lines, emit, joiner, document=stop_at_document)
        if beam is not None and len(sample.tokens) < n:
            logprob = None  # cut by a stop: rescored below
        sample_ids = vocab.encode(sample.tokens)
        nll = score_nll(model, prompt_ids, sample_ids)
        if logprob is None and beam is not None and nll is not None:
            logprob = -nll * len(sample.tokens)
        score = memo.score(sample_ids, threshold=memo_threshold) if memo is not None else None
        if as_json:
            record = {"sample": i, "prompt": prompt, "text": sample.text, "tokens": sample.tokens,
                      "n_tokens": len(sample.tokens), "mean_nll": nll, "stop_reason": sample.stop_reason,
                      "seed": None if beam is not None else seed + i,
                      "temperature": None if beam is not None else temperature,
                      "beam": beam, "logprob": logprob if beam is not None else None,
                      "memorization": score.to_json() if score is not None else None}
            out.write(safe_json(record) + "\n")
            continue
        if not live:
            out.write(visible(sample.shown(joiner)))
        end = sample.shown(joiner)
        out.write("" if (prompt + end).endswith("\n") else "\n", flush=True)
        if beam is not None:
            mean = f" (mean NLL {nll:.4f} nats/token)" if nll is not None else ""
            click.echo(f"beam {beam}: log-probability {logprob:.4f} nats over {len(sample.tokens):,} "
                       f"tokens{mean}", err=True)
        if score is not None:
            click.echo(memo_line(score, vocab), err=True)
    if to_file:
        try:
            from seqtui.files import atomic_write

            atomic_write(output, out.text())
        except OSError as exc:
            raise ConfigError(f"cannot write {visible_line(output)}: {exc.strerror or exc}") from None
    else:
        out.flush()


# -- checks -------------------------------------------------------------------------------------
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


def check_counts(lines, num_samples, beam, memo_threshold) -> None:
    if lines is not None and lines < 1:
        raise ConfigError(f"--lines must be ≥ 1, got {lines}")
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ConfigError(f"--num-samples must be in 1..{MAX_SAMPLES:,}, got {num_samples}")
    if beam is not None and not 1 <= beam <= MAX_BEAM:
        raise ConfigError(f"--beam must be in 1..{MAX_BEAM} (1 = greedy), got {beam}")
    if memo_threshold < 1:
        raise ConfigError(f"--memo-threshold must be ≥ 1, got {memo_threshold}")


def check_output(path: str) -> None:
    """Fail before generating if the output file cannot be where it is asked to be."""
    p = os.path.abspath(path)
    if os.path.isdir(p):
        raise ConfigError(f"--output {visible_line(path)} is a directory")
    parent = os.path.dirname(p)
    if not os.path.isdir(parent):
        raise ConfigError(f"--output {visible_line(path)}: directory {visible_line(parent)} does not exist")
    if os.path.exists(p) and not os.path.isfile(p):
        raise ConfigError(f"--output {visible_line(path)} is not a regular file")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"', "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "e": "\x1b"}


def parse_escapes(text: str) -> str:
    """A --stop-at string with backslash escapes (\\n \\t \\r \\0 \\\\ \\xNN \\uNNNN \\UNNNNNNNN)
    read; ConfigError on an empty result or a malformed escape."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(text):
            raise ConfigError(f"--stop-at {visible_line(text)!s}: a lone backslash at the end (write \\\\)")
        e = text[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(e)
        digits = text[i + 2:i + 2 + width] if width else ""
        if not width or len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise ConfigError(f"--stop-at {visible_line(text)}: unknown escape \\{visible_line(e)} "
                              "(use \\n \\t \\r \\\\ \\xNN \\uNNNN)")
        code = int(digits, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise ConfigError(f"--stop-at {visible_line(text)}: \\{e}{digits} is not a character")
        out.append(chr(code))
        i += 2 + width
    if not out:
        raise ConfigError("--stop-at needs a non-empty string")
    return "".join(out)


# -- the prompt ---------------------------------------------------------------------------------
def read_prompt(prompt: str | None, prompt_file: str | None) -> str:
    """The prompt from the argument, ``--prompt-file`` or stdin (``-``): one-line errors for an
    empty/unreadable/oversized source or both sources at once."""
    from seqtui.files import read_text_bounded

    if prompt_file is not None:
        if prompt is not None:
            raise ConfigError("give the prompt either as an argument or with --prompt-file, not both")
        if prompt_file == "-":
            return read_stdin_prompt()
        return read_text_bounded(prompt_file, "prompt file", MAX_PROMPT_BYTES, ConfigError)
    if prompt == "-":
        return read_stdin_prompt()
    return prompt or ""


def read_stdin_prompt(limit: int = MAX_PROMPT_BYTES) -> str:
    stdin = sys.stdin
    if stdin is None:
        raise ConfigError("prompt '-' reads stdin, but stdin is closed")
    try:
        buf = getattr(stdin, "buffer", None)
        data = buf.read(limit + 1) if buf is not None else stdin.read(limit + 1)
    except (OSError, ValueError) as exc:  # EBADF, or a closed file object
        why = "closed" if isinstance(exc, ValueError) or getattr(exc, "errno", None) == 9 else \
            (getattr(exc, "strerror", None) or str(exc))
        raise ConfigError(f"prompt '-' reads stdin, but stdin is {why}" if why == "closed"
                          else f"cannot read the prompt from stdin: {why}") from None
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if not data:
        raise ConfigError("prompt '-' reads stdin, but stdin is empty")
    if len(data) > limit:
        raise ConfigError(f"the prompt on stdin is more than {limit >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the prompt on stdin is not UTF-8 (byte {exc.start})") from None


def utf8_streams() -> None:
    """stdout and stderr write UTF-8 whatever the locale (an unencodable character is replaced,
    never a UnicodeEncodeError)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8":
                stream.reconfigure(encoding="utf-8", errors="replace")
        except (AttributeError, ValueError, OSError):
            pass


# -- one sample ---------------------------------------------------------------------------------
@dataclass
class Sample:
    tokens: list = field(default_factory=list)  # token strings (BPE: display strings)
    text: str = ""  # the text they spell (cut at a stop)
    stop_reason: str = "length"

    def shown(self, joiner: str) -> str:
        return (joiner + self.text) if self.text else ""


def decode_sample(vocab, tokens, stops: list[str], lines: int | None, emit=None, joiner: str = "",
                  document: bool = False) -> Sample:
    """Consume generated tokens into text until they run out, a stop string appears (the text ends
    with it), ``lines`` newlines were written or an end-of-document token comes (not in the text).

    ``emit(piece)`` gets the text as it grows (complete characters only: BPE bytes go through a
    stream decoder; a trailing ``\\r`` waits for a possible ``\\n``); ``joiner`` goes before the
    first piece (a space between a prompt and the first word of a word-level run)."""
    bpe = vocab.kind == "bpe"
    dec = vocab.stream_decoder() if bpe else None
    word_sep = "" if (vocab.is_char or bpe) else " "
    longest = max((len(s) for s in stops), default=0)
    sample = Sample()
    parts: list[str] = []
    tail = ""  # the last longest-1 characters (stops across pieces)
    newlines = 0
    held = ""  # a trailing '\r' waits for the next piece (so CRLF shows as layout)

    def out(piece: str, final: bool = False) -> None:
        nonlocal held
        if emit is None or not (piece or held):
            return
        piece = held + piece
        held = ""
        if not final and piece.endswith("\r"):
            piece, held = piece[:-1], "\r"
        if piece:
            emit(piece)

    ends = {t for t in getattr(vocab, "reserved", ()) if t in END_OF_DOCUMENT}
    first = True
    for tok in tokens:
        sample.tokens.append(tok)
        if tok in ends:  # scored as a token, not part of the text
            sample.stop_reason = "document"
            out("", final=True)
            break
        if bpe:
            piece = dec.feed(tok)
        else:
            piece = tok if not parts else word_sep + tok
        if first and piece:
            out(joiner)
            first = False
        cut, reason = None, None
        if stops and piece:
            window = tail + piece
            for s in stops:
                k = window.find(s)
                if k >= 0 and (cut is None or k + len(s) - len(tail) < cut):
                    cut, reason = k + len(s) - len(tail), "stop-at"
            tail = window[-(longest - 1):] if longest > 1 else ""
        if document and DOCUMENT_SEPARATOR in piece:  # the end of a document (not in the text)
            k = piece.index(DOCUMENT_SEPARATOR)
            if cut is None or k < cut:
                cut, reason = k, "document"
        if lines is not None and "\n" in piece:
            k = -1
            for _ in range(lines - newlines):
                k = piece.find("\n", k + 1)
                if k < 0:
                    break
            if k >= 0 and (cut is None or k + 1 < cut):
                cut, reason = k + 1, "lines"
            elif k < 0:
                newlines += piece.count("\n")
        if cut is not None:
            piece = piece[:cut]
            parts.append(piece)
            out(piece, final=True)
            sample.stop_reason = reason
            break
        parts.append(piece)
        out(piece)
    else:
        if bpe:
            rest = dec.flush()
            if rest:
                if first:
                    out(joiner)
                parts.append(rest)
        out(rest if bpe else "", final=True)
    if hasattr(tokens, "close"):
        tokens.close()  # the generator rewinds to the last token taken
    sample.text = "".join(parts)
    return sample


class _Sink:
    """stdout, or a buffer for --output (written atomically at the end)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str, flush: bool = False) -> None:
        if self.stream is None:
            self.parts.append(text)
            return
        self.stream.write(text)
        if flush:
            self.stream.flush()

    def flush(self) -> None:
        if self.stream is not None:
            self.stream.flush()

    def text(self) -> str:
        return "".join(self.parts)


# -- scores -------------------------------------------------------------------------------------
def score_nll(model, prompt_ids, sample_ids) -> float | None:
    """Mean negative log-likelihood (nats/token) of ``sample_ids`` after ``prompt_ids`` under the
    model (temperature 1), from the zero state as the generator starts; None for no tokens."""
    import numpy as np

    g = np.asarray(sample_ids, dtype=np.int32)
    if g.size == 0:
        return None
    p = np.asarray(prompt_ids, dtype=np.int32)
    state = model.init_state(1)
    total = 0.0
    if p.size:
        for a in range(0, p.size - 1, _SCORE_CHUNK):  # every prompt token but the last: state only
            _, state = model.logits(p[None, a:min(a + _SCORE_CHUNK, p.size - 1)], state)
        X = np.concatenate([p[-1:], g[:-1]])
        Y = g
    else:  # the first token comes from the zero state's logits
        params = model.named_parameters()
        logits0 = (params["fc.weight"] @ state[0, -1, 0] + params["fc.bias"]).astype(np.float64)
        m = logits0.max()
        total += float(np.log(np.exp(logits0 - m).sum()) + m - logits0[g[0]])
        X, Y = g[:-1], g[1:]
    for a in range(0, X.size, _SCORE_CHUNK):
        b = min(a + _SCORE_CHUNK, X.size)
        s, _, state = model.evaluate(X[None, a:b], Y[None, a:b], state)
        total += s
    return total / g.size


def memo_index(config: dict, vocab):
    """The run's memorization index over its training split, or None with a one-line notice when
    the corpus is gone or changed (never an error)."""
    from seqtui.data.memorize import MemoIndex
    from seqtui.data.text import load_dataset
    from seqtui.engine.config import RunConfig

    def notice(message: str) -> None:
        click.echo(f"memorization: {visible_line(message)}", err=True)

    def progress(phase: str, fraction: float) -> None:
        if fraction == 0.0:
            notice("indexing the training text (once; cached for next time)")

    try:
        cfg = RunConfig.from_dict(config)
        ds = load_dataset(cfg.text_config())
        want = config.get("fingerprint")
        if (want is not None and ds.fingerprint != want) or ds.vocab != vocab:
            notice(f"skipped: the corpus {cfg.corpus!r} changed since the run was trained")
            return None
        train_ids, _ = ds.split(cfg.val_fraction)
        return MemoIndex.build_or_load(ds, n_train=len(train_ids), notice=notice, progress=progress)
    except SeqtuiError as exc:
        notice(f"skipped: {exc}")
        return None
    except OSError as exc:
        notice(f"skipped: {exc.strerror or exc}")
        return None


def memo_line(score, vocab) -> str:
    """``memorization: longest copied run 37 chars (training line 1,204); 12% of the sample in
    copied runs ≥ 20 chars``."""
    unit = "char" if vocab.is_char else ("word" if vocab.kind == "word" else "token")

    def count(k: int) -> str:
        return f"{k:,} {unit}{'' if k == 1 else 's'}"

    if score.longest_len:
        where = f" (training line {score.longest_line:,})" if score.longest_line is not None \
            else f" (training {unit} {score.longest_at + 1:,})"
        longest = f"longest copied run {count(score.longest_len)}{where}"
    else:
        longest = "nothing copied"
    return (f"memorization: {longest}; {score.covered_fraction:.0%} of the sample in copied runs "
            f"≥ {count(score.threshold)}")
