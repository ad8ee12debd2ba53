"""One daemon thread that fires the time limits of running queries."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["WATCHDOG", "Watchdog"]

log = logging.getLogger(__name__)


class Watchdog:
    """One daemon thread firing query time limits (a ``threading.Timer`` per query costs a
    thread start, a noticeable share of a millisecond cone search).

    :meth:`schedule` returns a token; :meth:`cancel` with it before the delay has passed keeps
    the callback from running.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._pending: set[int] = set()
        self._counter = 0
        self._thread: threading.Thread | None = None
        # The deadline the watchdog thread sleeps until (monotonic s); -inf while it runs.
        self._waiting_until = float("-inf")

    def schedule(self, delay_s: float, callback: Callable[[], None]) -> int:
        """Run ``callback`` in the watchdog thread after ``delay_s`` seconds; returns a token."""
        with self._cond:
            self._counter += 1
            token = self._counter
            self._pending.add(token)
            entry = (time.monotonic() + delay_s, token, callback)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="skysense-query-watchdog", daemon=True
                )
                self._thread.start()
            if entry[0] < self._waiting_until:
                # Wake the watchdog only when it would sleep past the new deadline: waking it
                # for every query costs a thread switch per cone search.
                self._cond.notify()
            return token

    def cancel(self, token: int) -> None:
        """Forget the callback of ``token`` (no error when it already ran)."""
        with self._cond:
            self._pending.discard(token)
            # Drop finished entries from the front here, so the heap stays short without
            # waking the watchdog thread.
            while self._heap and self._heap[0][1] not in self._pending:
                heapq.heappop(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._waiting_until = float("inf")
                    self._cond.wait()
                when, token, callback = self._heap[0]
                if token not in self._pending:
                    heapq.heappop(self._heap)
                    continue
                delay = when - time.monotonic()
                if delay > 0:
                    self._waiting_until = when
                    self._cond.wait(delay)
                    continue
                self._waiting_until = float("-inf")  # busy: no wake-up needed
                heapq.heappop(self._heap)
                self._pending.discard(token)
            try:
                callback()
            except Exception:  # a failed interrupt must not kill the watchdog
                log.exception("query time-limit callback failed")


#: The watchdog shared by every backend of the process (its thread starts on first use).
WATCHDOG = Watchdog()
