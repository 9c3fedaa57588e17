"""Text generation from a CharModel: one stream whose recurrent state survives between calls.

A UI primes the stream with what the user typed, then streams tokens from :meth:`Generator.sample`;
more typing primes again from where the stream stands. Each Generator owns its state and buffers
and the kernels release the GIL, so a worker thread can generate while other threads run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from seqtui.errors import ConfigError
from seqtui.models.charmodel import CharModel
from seqtui.models.threads import ThreadTuner, available_cpus

# Tokens drawn per kernel call: 16 first (the first token shows at once), then up to twice the
# last call, as many as take about _CHUNK_SECONDS (each call starts helper threads; a stream
# stopped early is rewound by re-feeding up to a call's tokens, so calls stay short).
_FIRST_CHUNK, _MAX_CHUNK, _CHUNK_SECONDS = 16, 8192, 0.004
PRECISIONS = ("auto", "float32", "float16")
_NARROW_FROM_HIDDEN = 256  # "auto" uses half-precision weights from this width up (float32 models)
# One stream's tokens are shared by the cores (``sample.generate_shared``) for the half-precision
# copy (measured on 2 cores, same process: RNN 512 1.29×, GRU 2×256 1.40×, LSTM 512 2.42×, LSTM
# 2×256 1.79×, RNN 256 0.92×); a ThreadTuner picks the thread count per call — one thread while
# other processes hold the cores (RNN 512 beside two busy loops: 57.6k chars/s on one thread,
# 18.8k on two) — re-measuring every _PROBE_EVERY calls (the median of the last 3 timed calls of
# each count decides).
_PROBE_EVERY = 50
_TUNE_SECONDS = 0.002  # calls shorter than this (at the last pace) are not timed: helper start-up weighs
_MAX_PARTS = 4  # beyond it the per-token synchronisation outgrows each part's share
_POOLS: dict[int, ThreadPoolExecutor] = {}  # helper threads of shared generation, by their number
_POOLS_LOCK = threading.Lock()


def _pool(helpers: int) -> ThreadPoolExecutor:
    """Exactly ``helpers`` threads, made once (a pool allowed more makes a new thread whenever the
    last helper has not yet said it is idle: ≈ 1 ms each)."""
    with _POOLS_LOCK:
        if helpers not in _POOLS:
            _POOLS[helpers] = ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="seqtui-generate")
        return _POOLS[helpers]


def narrow_weights(model: CharModel):
    """A half-precision copy of the model's matrices for generation: (nw uint16, noffs, xpad).

    One stream's generation is bound by reading every weight once per token; IEEE half (11-bit
    significand, relative rounding error ≤ 2⁻¹¹) halves that traffic. Layout: see
    ``seqtui.kernels.sample``."""
    from seqtui.kernels._math import F16_LANES, F16_ROWS

    cfg, p = model.cfg, model.named_parameters()
    H, L = cfg.hidden, cfg.num_layers
    Kp = -(-H // F16_LANES) * F16_LANES
    mats: list[tuple[int, int, np.ndarray | None]] = []
    for k in range(L):
        mats += [(k, 0, p[f"rnn.weight_ih_l{k}"] if k > 0 else None), (k, 1, p[f"rnn.weight_hh_l{k}"])]
    mats.append((L, 0, p["fc.weight"]))
    noffs = np.zeros((L + 1, 2), np.int64)
    total = 0
    for k, j, w in mats:
        if w is not None:
            noffs[k, j] = total
            total += -(-w.shape[0] // F16_ROWS) * F16_ROWS * Kp
    nw = np.zeros(total, np.float16)
    for k, j, w in mats:
        if w is not None:
            rows = -(-w.shape[0] // F16_ROWS) * F16_ROWS
            block = nw[noffs[k, j]: noffs[k, j] + rows * Kp].reshape(rows, Kp)
            block[: w.shape[0], :H] = w
    return nw.view(np.uint16), noffs, np.zeros(Kp, model.dtype)


class Generator:
    """Prime-and-sample over one stream (batch 1) of a model and its vocabulary.

    ``precision``: "float32" computes with the model's own weights; "float16" with a
    half-precision copy of its matrices made now (float32 models only; about twice as fast for
    wide models, whose generation is bound by reading the weights; call :meth:`refresh` after
    changing the model's parameters); "auto" = float16 for float32 models with hidden ≥ 256.
    """

    def __init__(self, model: CharModel, vocab, precision: str = "auto") -> None:
        if len(vocab) != model.cfg.vocab_size:
            raise ConfigError(f"vocabulary has {len(vocab)} tokens but the model expects "
                              f"{model.cfg.vocab_size}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "float16" and model.dtype != np.float32:
            raise ConfigError("float16 generation needs a float32 model")
        if precision == "auto":
            wide = model.dtype == np.float32 and model.cfg.hidden >= _NARROW_FROM_HIDDEN
            precision = "float16" if wide else "float32"
        from seqtui.kernels import sample

        self.model = model
        self.vocab = vocab
        self.precision = precision
        self._cell = sample.CELL_CODES[model.cfg.cell]
        self._rng = np.random.default_rng()
        self.parts = 1
        self._tuner: ThreadTuner | None = None
        self._timed: set[int] = set()  # thread counts that have run a call
        self._per_token = 0.0  # seconds per token of the last call
        self.refresh()
        self.reset()

    def refresh(self) -> None:
        """Re-read the model's parameters into the generation copy (float16 precision)."""
        if self.precision == "float16":
            self._narrow = narrow_weights(self.model)
            self.parts = self._parts()
            self._tuner = ThreadTuner(self.parts, probe_every=_PROBE_EVERY) if self.parts > 1 else None
        else:
            self._narrow = (np.zeros(0, np.uint16), np.zeros((self.model.cfg.num_layers + 1, 2), np.int64),
                            np.zeros(0, self.model.dtype))

    def _parts(self) -> int:
        """Into how many tasks each token's products are cut (the narrow copy only, whole F16_ROWS
        blocks of hidden units each): the cores the model may use, at most _MAX_PARTS."""
        from seqtui.kernels._math import F16_ROWS

        m = self.model
        H = m.cfg.hidden
        cores = available_cpus()  # more threads than cores would spin against each other
        parts = min(cores if m.threads is None else min(m.threads, cores), _MAX_PARTS, H // F16_ROWS)
        return 1 if parts < 2 or H % F16_ROWS else parts

    def reset(self) -> None:
        """Forget everything: zero state, next-token logits from the zero state."""
        self.state = self.model.init_state(1)
        p = self.model.named_parameters()
        self.logits = (p["fc.weight"] @ self.state[0, -1, 0] + p["fc.bias"]).astype(self.model.dtype)

    def kernel_args(self) -> tuple:
        """What the sampling kernels take after (state, logits, ids): the weights, their offsets,
        the input projection, the cell and the narrow (float16) copies — beam search shares them."""
        m = self.model
        w0_t = np.ascontiguousarray(m.named_parameters()["rnn.weight_ih_l0"].T)
        return (m.params, m.layer_offsets, m.fc_offsets, w0_t, self._cell) + self._narrow

    def prime(self, prompt: str) -> list[str]:
        """Feed ``prompt`` into the stream; returns its tokens that are not in the vocabulary
        (they are fed as ``<unk>``)."""
        from seqtui.kernels import sample

        tokens = self.vocab.tokens_of(prompt)
        unknown = [t for t in tokens if t not in self.vocab]
        if tokens:
            ids = self.vocab.encode(tokens).astype(np.int32)
            sample.feed(self.state, self.logits, ids, *self.kernel_args())
        return unknown

    def sample(self, n: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               seed: int | None = None) -> Iterator[str]:
        """Yield ``n`` tokens, each fed back into the stream.

        temperature 0 (or top_k 1) is greedy; top_k > 0 keeps the k most likely tokens; top_p < 1
        keeps the smallest most-likely set holding that much probability. ``seed`` makes the
        draws reproducible (else the generator's own random stream continues). If the consumer
        stops early, the stream stands exactly after the last token it received.
        """
        n = int(n)
        if n < 0:
            raise ConfigError(f"number of tokens must be >= 0, got {n}")
        if not temperature >= 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature!r}")
        if int(top_k) < 0:
            raise ConfigError(f"top-k must be >= 0, got {top_k!r}")
        if not 0.0 < top_p <= 1.0:
            raise ConfigError(f"top-p must be in (0, 1], got {top_p!r}")
        rng = self._rng if seed is None else np.random.default_rng(seed)
        return self._stream(n, float(temperature), int(top_k), float(top_p), rng)

    def shared_args(self, threads, out, args, uniforms, temperature, top_k, top_p) -> tuple:
        """What ``sample.generate_shared`` takes after ``me``: the call's settings and the scratch
        its threads share (fresh for each call)."""
        from seqtui.kernels._math import F16_ROWS

        params, offs, fc, w0_t, cell, nw, noffs, xpad = args
        L, H, V = self.state.shape[1], self.state.shape[3], self.logits.shape[0]
        n = max(w0_t.shape[1], V) + F16_ROWS
        gi, gh, t, lo = (np.empty(n, params.dtype) for _ in range(4))
        pads = np.zeros((2, L, xpad.shape[0]), params.dtype)
        pads[0, :, :H] = self.state[0, :, 0]
        return (threads, self.parts, np.zeros(16, np.int64), out, self.state, self.logits, *args[:7],
                uniforms, temperature, top_k, top_p, gi, gh, t, lo, pads, np.empty((threads, V)))

    def _draw_chunk(self, out, args, uniforms, temperature, top_k, top_p) -> float:
        """Draw len(out) tokens on the thread count the tuner picks: several threads share each
        token (``sample.generate_shared``: this one and pool threads) — unless other processes
        hold the cores, when one thread alone is faster (measured per token, re-measured now and
        then). Same tokens either way. Returns the seconds per token."""
        from seqtui.kernels import sample

        tune = self._tuner is not None and len(out) * self._per_token >= _TUNE_SECONDS
        threads = self._tuner.pick() if tune else (self._tuner.current if self._tuner is not None else 1)
        start = time.perf_counter()
        if threads > 1:
            shared = self.shared_args(threads, out, args, uniforms, temperature, top_k, top_p)
            pool = _pool(threads - 1)
            for me in range(1, threads):  # a helper that starts late finds nothing left and returns
                pool.submit(sample.generate_shared, me, *shared)
            sample.generate_shared(0, *shared)
        else:
            sample.generate(out, self.state, self.logits, *args, uniforms, temperature, top_k, top_p)
        per_token = self._per_token = (time.perf_counter() - start) / max(1, len(out))
        if tune and threads in self._timed:
            self._tuner.record(threads, per_token)
        self._timed.add(threads)  # the first call on a thread count starts its helpers: not timed
        return per_token

    def _stream(self, n, temperature, top_k, top_p, rng) -> Iterator[str]:
        from seqtui.kernels import sample

        itos = self.vocab.itos
        done = 0
        args = self.kernel_args()
        chunk = _FIRST_CHUNK
        while done < n:
            m = min(chunk, n - done)
            start_state, start_logits = self.state.copy(), self.logits.copy()
            out = np.empty(m, dtype=np.int32)
            per_token = self._draw_chunk(out, args, rng.random(m), temperature, top_k, top_p)
            chunk = max(_FIRST_CHUNK, min(2 * chunk, _MAX_CHUNK, int(_CHUNK_SECONDS / max(per_token, 1e-9))))
            given = 0
            try:
                for tok in out.tolist():
                    given += 1  # counted before the yield: a close() lands on the yield itself
                    yield itos[tok]
            finally:
                if given < m:  # stopped early: rewind to just after the last token handed out
                    self.state[...] = start_state
                    self.logits[...] = start_logits
                    sample.feed(self.state, self.logits, out[:given], *args)
            done += m
