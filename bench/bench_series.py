"""Series pipeline timings (issue 9): τ-windows and the AR(τ) fit on a long series, the book's MLP.

Targets (warm, after compilation): windows of a 10-million-point series < 1 s; the linear fit on
it < 2 s; the book's MLP setup (τ = 4, 600 windows, 4→10→1, Adam lr 0.01, batch 16, 5 epochs)
< 0.5 s. Each figure is the median of ``--repeat`` runs after one warm-up call.

    python -m bench.bench_series [--points 10000000] [--tau 4] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def _median_time(fn, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up (compiles on a cold cache)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--tau", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from seqtui.data.series import sine_series
    from seqtui.models import series as ms

    t0 = time.perf_counter()
    long = sine_series(n=args.points).values
    gen_s = time.perf_counter() - t0

    t_cold = time.perf_counter()
    ms.make_windows(long[:1000], args.tau, 0.6)
    lin = ms.make_model("linear", args.tau)
    ms.fit(lin, ms.make_windows(long[:1000], args.tau, 0.6))
    m = ms.make_model("mlp", 4)
    ms.fit(m, ms.make_windows(long[:100], 4, 0.6, batch=16), epochs=1)
    cold_s = time.perf_counter() - t_cold

    win_s, w = _median_time(lambda: ms.make_windows(long, args.tau, 0.6), args.repeat)

    def linear():
        model = ms.make_model("linear", args.tau)
        ms.fit(model, w)
        return model

    lin_s, model = _median_time(linear, args.repeat)
    book = sine_series()
    bw = ms.make_windows(book.values, 4, 600, batch=16)

    def mlp():
        net = ms.make_model("mlp", 4, hidden=10, seed=0)
        return ms.fit(net, bw, epochs=5, batch=16, lr=0.01, optimizer="adam", seed=0)

    mlp_s, res = _median_time(mlp, args.repeat)
    figures = {
        "points": args.points, "tau": args.tau, "generate_s": gen_s, "first_calls_s": cold_s,
        "windows_s": win_s, "windows_mpts_per_s": args.points / win_s / 1e6,
        "linear_fit_s": lin_s, "linear_val_mse": model.range_mse(w.z, w.boundary, w.z.size) * w.std ** 2,
        "book_mlp_s": mlp_s, "book_mlp_train_mse": res.history[-1].train_mse,
        "book_mlp_steps": res.history[-1].steps,
        "targets": {"windows_s": 1.0, "linear_fit_s": 2.0, "book_mlp_s": 0.5},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        ok = lambda v, lim: "ok" if v < lim else "SLOW"  # noqa: E731
        print(f"series of {args.points:,} points (sine), τ = {args.tau}; medians of {args.repeat} warm runs")
        print(f"  first calls (compile or cache load)  {cold_s:8.3f} s")
        print(f"  windows                              {win_s:8.3f} s  ({figures['windows_mpts_per_s']:.0f} M points/s)"
              f"  target < 1 s: {ok(win_s, 1.0)}")
        print(f"  linear AR fit (normal equations)     {lin_s:8.3f} s  target < 2 s: {ok(lin_s, 2.0)}")
        print(f"  book MLP (600 windows, 5 epochs)     {mlp_s:8.3f} s  ({res.history[-1].steps} steps, "
              f"train MSE {res.history[-1].train_mse:.4f})  target < 0.5 s: {ok(mlp_s, 0.5)}")
    return figures


if __name__ == "__main__":
    main()
