"""Where trials run: a Dask ``LocalCluster`` sized to this machine (the default), or an existing
cluster at ``--scheduler tcp://HOST:8786`` whose workers need only ``pip install seqtui``.

Sizing: workers × threads per trial = the cores this process may use, so trials never
oversubscribe (each worker runs one trial at a time; the trial's ``threads`` setting caps its
kernels). On a remote cluster each worker's task slots share its cores unless
``--threads-per-trial`` says otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from seqtui.errors import ConfigError, SeqtuiError

CONNECT_TIMEOUT = 10.0   # seconds to reach a --scheduler


class ClusterError(SeqtuiError):
    """The scheduler cannot be reached, or the cluster cannot start."""


@dataclass
class Cluster:
    client: Any                 # distributed.Client
    local: Any | None           # the LocalCluster we started, or None
    address: str
    threads_per_trial: int | None
    dashboard: str | None

    def slots(self) -> int:
        """Trials that can run at once: the task threads of the connected workers."""
        try:
            return sum(self.client.nthreads().values())
        except Exception:
            return 0

    def close(self) -> None:
        for thing in (self.client, self.local):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing after Ctrl-C: best effort
                    pass


def local_sizes(workers: int | None, threads: int | None, cores: int) -> tuple[int, int]:
    """(workers, threads per trial) for a LocalCluster: by default workers × threads = cores."""
    for name, value in (("--workers", workers), ("--threads-per-trial", threads)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    if workers is None and threads is None:
        return cores, 1
    if workers is None:
        return max(1, cores // threads), threads
    if threads is None:
        return workers, max(1, cores // workers)
    return workers, threads


def start(scheduler: str | None = None, workers: int | None = None,
          threads_per_trial: int | None = None, timeout: float = CONNECT_TIMEOUT) -> Cluster:
    """Connect to ``scheduler`` or start a LocalCluster; ClusterError in one line when it fails."""
    from distributed import Client

    if scheduler:
        if workers is not None:
            raise ConfigError("--workers sizes the local cluster; with --scheduler, start "
                              "`dask worker` processes instead")
        if threads_per_trial is not None and threads_per_trial <= 0:
            raise ConfigError(f"--threads-per-trial must be a positive integer, got {threads_per_trial}")
        address = scheduler if "://" in scheduler else f"tcp://{scheduler}"
        try:
            client = Client(address, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {address} within "
                               f"{timeout:g} s ({type(exc).__name__})") from None
        return Cluster(client, None, address, threads_per_trial, _dashboard(client))
    from distributed import LocalCluster

    from seqtui.models.threads import available_cpus

    n, threads = local_sizes(workers, threads_per_trial, available_cpus())
    try:
        local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                             dashboard_address=":0", silence_logs=logging.ERROR,
                             preload=["seqtui.sweep.worker_setup"])
        client = Client(local)
    except Exception as exc:
        raise ClusterError(f"cannot start a local Dask cluster: {exc}".splitlines()[0]) from None
    return Cluster(client, local, local.scheduler_address, threads, _dashboard(client))


def _dashboard(client) -> str | None:
    """The dashboard's address when the scheduler serves one (it needs bokeh)."""
    try:
        services = client.scheduler_info().get("services", {})
        if "dashboard" not in services:
            return None
        import importlib.util

        if client.cluster is not None and importlib.util.find_spec("bokeh") is None:
            return None
        return client.dashboard_link
    except Exception:
        return None
