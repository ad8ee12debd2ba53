"""The one place that decides where Dask work runs.

``scheduler=None`` runs on a local scheduler in this process (threads; numba/numpy release the
GIL), unless ``SKYSENSE_SCHEDULER`` names a cluster; an address such as ``tcp://10.0.0.5:8786``
runs on an existing cluster (a scheduler and workers started with the ``dask`` CLI, e.g.
``dask scheduler`` and ``dask worker tcp://10.0.0.5:8786 --memory-limit 4GB``). Every command's
``--scheduler`` and the pipeline's ``dask.scheduler`` key end here. Area engines call
:func:`dask_client` and :func:`compute_with_progress`; nothing else creates clients or pools.

On a cluster, tasks that write files write their own outputs atomically (write then rename),
so a task re-run after a worker died rewrites the same bytes; nothing is written twice or lost.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "dask_client",
    "resolve_scheduler",
    "worker_memory_limit",
    "compute_with_progress",
    "show_progress",
    "progress_log_interval",
    "progress_verbosity",
    "ProgressLog",
    "progress",
]

_OFF = ("0", "false", "no")
_LOCAL = ("threads", "processes", "synchronous")
_PROTOCOLS = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


def show_progress() -> bool:
    """Whether to draw progress bars (off under CI and when stderr is not a terminal).

    ``SKYSENSE_PROGRESS=1`` forces bars, ``0`` turns all progress output off and ``log``
    asks for periodic one-line reports instead (see :func:`progress_log_interval`).
    """
    if os.environ.get("SKYSENSE_PROGRESS") is not None:
        return os.environ["SKYSENSE_PROGRESS"] not in (*_OFF, "log")
    import sys

    return sys.stderr.isatty() and os.environ.get("CI") is None


def progress_log_interval() -> float | None:
    """Seconds between one-line progress reports, or None when a bar is drawn or all is off.

    Used where no bar is drawn (a log file, a pipe, CI): long runs then print
    ``skysense: progress: ...`` at most every ``SKYSENSE_PROGRESS_INTERVAL`` seconds
    (default 60), so short runs print nothing.
    """
    if os.environ.get("SKYSENSE_PROGRESS", "").lower() in _OFF or show_progress():
        return None
    try:
        return max(0.0, float(os.environ.get("SKYSENSE_PROGRESS_INTERVAL", "60")))
    except ValueError:
        return 60.0


def progress_verbosity() -> int:
    """``verbose`` for an estimator: 1 = a bar, 2 = periodic log lines, 0 = quiet."""
    if show_progress():
        return 1
    return 2 if progress_log_interval() is not None else 0


class ProgressLog:
    """Periodic one-line progress reports on stderr (thread-safe ``update``).

    Parameters
    ----------
    total : int
        Units of work.
    label : str
        What is being done (``"astrocast hindcast"``).
    interval : float, optional
        Seconds between lines (default :func:`progress_log_interval`; None prints nothing).
    unit : str
        Name of one unit in the report.
    """

    def __init__(self, total: int, label: str, interval: float | None = -1.0, unit: str = "tasks"):
        import threading
        import time

        self.total, self.label, self.unit = int(total), label or "working", unit
        self.interval = progress_log_interval() if interval == -1.0 else interval
        self.done = 0
        self._t0 = self._last = time.monotonic()
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        """Count ``n`` finished units; print a line when the interval has passed."""
        import time

        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.interval is None or now - self._last < self.interval:
                return
            self._last = now
            self._print(now - self._t0)

    def _print(self, elapsed: float) -> None:
        import sys

        frac = self.done / self.total if self.total else 1.0
        line = (f"skysense: progress: {self.label}: {self.done}/{self.total} {self.unit} "
                f"({100 * frac:.0f}%), {_duration(elapsed)} elapsed")  # fmt: skip
        if 0 < frac < 1:
            line += f", about {_duration(elapsed * (1 - frac) / frac)} left"
        print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress(total: int, label: str, verbose: int | None = None, unit: str = "steps"):
    """Progress of a loop: yields ``update(n=1)``.

    ``verbose`` 1 draws a tqdm bar on stderr, 2 prints :class:`ProgressLog` lines, 0 nothing;
    None asks :func:`progress_verbosity`.
    """
    verbose = progress_verbosity() if verbose is None else int(verbose)
    if verbose == 1:
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=label, unit=unit.rstrip("s") or None, leave=False) as bar:
            yield bar.update
    elif verbose >= 2:
        every = progress_log_interval()
        yield ProgressLog(total, label, 60.0 if every is None else every, unit=unit).update
    else:
        yield lambda n=1: None


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def resolve_scheduler(scheduler: str | None = None) -> str | None:
    """The scheduler a run uses: ``scheduler``, else ``SKYSENSE_SCHEDULER``, else None (local).

    Raises
    ------
    InputError
        Neither a local mode (``threads``, ``processes``, ``synchronous``) nor an address
        such as ``tcp://host:8786``.
    """
    from skysense.errors import InputError

    if scheduler is None:
        scheduler = os.environ.get("SKYSENSE_SCHEDULER") or None
    if scheduler is None or scheduler in _LOCAL:
        return scheduler
    text = str(scheduler).strip()
    if not text.startswith(_PROTOCOLS) or len(text.split("://", 1)[1]) == 0:
        raise InputError(
            f"scheduler {scheduler!r}: expected an address such as tcp://host:8786 "
            f"(or one of {', '.join(_LOCAL)})"
        )
    return text


@contextlib.contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Any]:
    """Context in which ``dask.compute`` runs where the user asked.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running ``distributed`` scheduler (``tcp://host:port``). ``None`` uses
        ``SKYSENSE_SCHEDULER`` if set, else the local threaded scheduler; ``"processes"`` a
        local process pool; ``"synchronous"`` one thread (debugging).

    Yields
    ------
    distributed.Client or None

    Raises
    ------
    InputError
        A malformed address, or no scheduler answers there within
        ``SKYSENSE_SCHEDULER_TIMEOUT`` seconds (default 30).
    """
    import dask

    scheduler = resolve_scheduler(scheduler)
    if scheduler is None or scheduler in _LOCAL:
        with dask.config.set(scheduler=scheduler or "threads"):
            yield None
        return
    from distributed import Client

    from skysense.errors import InputError

    timeout = float(os.environ.get("SKYSENSE_SCHEDULER_TIMEOUT", "30"))
    try:
        client = Client(scheduler, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({exc})"
        ) from None
    with client:
        yield client


def worker_memory_limit(client: Any) -> int | None:
    """The smallest memory limit (bytes) of the cluster's workers, None if unlimited/local.

    Engines size their tasks with it so that one task fits in a worker (the limit is set
    when the worker starts: ``dask worker --memory-limit 4GB``; the nanny restarts a worker
    that exceeds it).
    """
    if client is None:
        return None
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
    limits = [int(x) for x in limits if x]
    return min(limits) if limits else None


def compute_with_progress(tasks: Sequence[Any], *, label: str = "", client: Any = None) -> list:
    """Compute Dask objects with progress; returns the results in order.

    A bar on a terminal (:func:`show_progress`), else a periodic one-line report
    (:class:`ProgressLog`) once the run lasts longer than the report interval.
    """
    import dask

    if client is not None:
        futures = client.compute(list(tasks))
        if show_progress():
            from distributed import progress

            progress(futures)
        elif progress_log_interval() is not None:
            from distributed import as_completed

            log = ProgressLog(len(futures), label)
            for _ in as_completed(futures):
                log.update()
        return client.gather(futures)
    if progress_log_interval() is not None:
        from dask.callbacks import Callback

        class _Log(Callback):
            # counts graph tasks, as dask's ProgressBar does
            def _start_state(self, dsk, state):
                n = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
                self.log = ProgressLog(n, label)

            def _posttask(self, key, result, dsk, state, worker_id):
                self.log.update()

        with _Log():
            return list(dask.compute(*tasks))
    if show_progress():
        from dask.diagnostics import ProgressBar

        if label:
            import sys

            print(label, file=sys.stderr)
        with ProgressBar():
            return list(dask.compute(*tasks))
    return list(dask.compute(*tasks))
