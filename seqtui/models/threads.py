"""Threads: the cores this process may use (affinity), the thread-count tuner, and BLAS control
(single-threaded BLAS inside the kernels' parallel regions).

Numba's OpenMP pool has ``NUMBA_NUM_THREADS`` threads (default: the machine's CPU count);
:class:`kernel_threads` runs the kernels on any number up to that. A process confined to fewer
cores (``taskset``, cgroups) should use at most ``available_cpus()``.
"""

from __future__ import annotations

import os
import threading


def available_cpus() -> int:
    """Cores in this process's affinity mask."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def thread_choices(max_threads: int) -> list[int]:
    """The thread counts the tuner tries: 1, 2, 4, … and max_threads itself."""
    out, k = [], 1
    while k < max_threads:
        out.append(k)
        k *= 2
    return out + [max(1, int(max_threads))]


class ThreadTuner:
    """Picks a thread count for each training step from measured step times.

    The work of a step is always cut into the same parts, so the thread count changes only the
    speed, never a bit of the result. N threads need N free cores at every time step (one
    barrier per step); when another process holds a core, fewer threads are much faster. The
    tuner measures each choice (1, 2, 4, … max_threads) ``window`` times, keeps the fastest by
    median, and re-measures the others in turn every ``probe_every`` steps.
    """

    def __init__(self, max_threads: int, probe_every: int = 50, window: int = 3) -> None:
        self.max_threads = max(1, int(max_threads))
        self.choices = thread_choices(self.max_threads)
        self.current = self.max_threads
        self.probe_every = probe_every
        self.times: dict[int, list[float]] = {k: [] for k in self.choices}
        self.window = window
        self.steps = 0
        self._probe = 0

    def pick(self) -> int:
        self.steps += 1
        if self.max_threads == 1:
            return 1
        if self.steps > 1:
            for k in self.choices:  # first, measure every choice
                if len(self.times[k]) < self.window:
                    return k
        if self.steps % self.probe_every == 0:
            others = [k for k in self.choices if k != self.current]
            self._probe += 1
            return others[self._probe % len(others)]
        return self.current

    def record(self, threads: int, seconds: float) -> None:
        if self.max_threads == 1 or threads not in self.times:
            return
        hist = self.times[threads]
        hist.append(seconds)
        del hist[: -self.window]
        if all(len(h) >= self.window for h in self.times.values()):
            med = {k: sorted(h)[len(h) // 2] for k, h in self.times.items()}
            self.current = min(med, key=lambda k: (med[k], -k))


_blas_lock = threading.Lock()
_blas_limited = False


def _single_threaded_kernel_blas() -> None:
    """Limit the BLAS that Numba's ``np.dot`` calls (scipy's OpenBLAS) to one thread.

    Every product of a step runs as one BLAS call per part inside a parallel region; a
    multi-threaded BLAS under them would oversubscribe the cores. NumPy's own BLAS (a separate
    library, not used by a step) keeps its threads.
    """
    global _blas_limited
    with _blas_lock:
        if _blas_limited:
            return
        _blas_limited = True
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (load the library numba uses)
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - declared dependencies
            return
        for lib in ThreadpoolController().lib_controllers:
            path = str(getattr(lib, "filepath", ""))
            if lib.user_api == "blas" and "numpy" not in path:
                lib.set_num_threads(1)


class kernel_threads:
    """Run the kernels on ``threads`` OpenMP threads (Numba's setting is per calling thread) with
    single-threaded BLAS inside them. One thread means no synchronisation at all."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self):
        import numba

        _single_threaded_kernel_blas()
        self.before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(self.threads, numba.config.NUMBA_NUM_THREADS)))

    def __exit__(self, *exc) -> None:
        import numba

        numba.set_num_threads(self.before)
