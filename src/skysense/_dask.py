"""The one place that decides where Dask work runs.

``scheduler=None`` runs on a local scheduler in this process (threads; numba/numpy release the
GIL); an address such as ``tcp://10.0.0.5:8786`` runs on an existing cluster. Area engines call
:func:`dask_client` and :func:`compute_with_progress`; nothing else creates clients or pools.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["dask_client", "compute_with_progress", "show_progress"]


def show_progress() -> bool:
    """Whether to draw progress bars (off under CI and when stderr is not a terminal)."""
    if os.environ.get("SKYSENSE_PROGRESS") is not None:
        return os.environ["SKYSENSE_PROGRESS"] not in ("0", "false", "no")
    import sys

    return sys.stderr.isatty() and os.environ.get("CI") is None


@contextlib.contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Any]:
    """Context in which ``dask.compute`` runs where the user asked.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running ``distributed`` scheduler. ``None`` uses the local threaded
        scheduler; ``"processes"`` a local process pool; ``"synchronous"`` one thread (debugging).

    Yields
    ------
    distributed.Client or None
    """
    import dask

    if scheduler is None or scheduler in ("threads", "processes", "synchronous"):
        with dask.config.set(scheduler=scheduler or "threads"):
            yield None
        return
    from distributed import Client

    with Client(scheduler) as client:
        yield client


def compute_with_progress(tasks: Sequence[Any], *, label: str = "", client: Any = None) -> list:
    """Compute Dask objects, drawing a progress bar when useful; returns the results in order."""
    import dask

    if client is not None:
        futures = client.compute(list(tasks))
        if show_progress():
            from distributed import progress

            progress(futures)
        return client.gather(futures)
    if show_progress():
        from dask.diagnostics import ProgressBar

        if label:
            import sys

            print(label, file=sys.stderr)
        with ProgressBar():
            return list(dask.compute(*tasks))
    return list(dask.compute(*tasks))
