"""Caps on the size and shape of an ADQL query, and a cooperative deadline (pure).

The caps bound the work done *before* the database sees a query (parsing, translation,
geometry), so that a hostile request cannot spend minutes of CPU or blow the Python stack, and
so that parsing and translation fit inside the query's time limit. Each is far above what a
real query needs; a query beyond one gets a :class:`~skysense.errors.QueryError` (HTTP 400)
naming the cap.

- :data:`MAX_QUERY_BYTES`, 256,000: a 1,000-vertex polygon is ~30 kB and a 10,000-value
  ``IN`` list of numeric identifiers 100-200 kB; the parser reads ~150 kB/s (under the time
  limit) and holds ~500 bytes of parse tree per byte of query (~120 MB at the cap).
- :data:`MAX_SELECT_COLUMNS`, 10,000: the widest published tables have ~1,000 columns; a
  ``SELECT *`` over a few joined copies stays below.
- :data:`MAX_DEPTH`, 150 syntax-tree levels: a subquery costs ~4 levels; a function call,
  operator or parenthesised condition 1; real queries use fewer than 60. The translator recurses
  up to 4 Python frames a level, so 150 keeps it well inside Python's 1,000. A long flat chain
  (``a OR b OR c ...``, ``+``, ``||``, ``UNION``) counts as one level whatever its length.
- :data:`MAX_POLYGON_VERTICES`, 1,000: footprints and MOC outlines use tens to hundreds of
  vertices.
- :data:`MAX_IN_LIST`, 10,000 values: for longer lists, upload a table (``TAP_UPLOAD``) and
  join it.

The values are constants (not settings): they protect the server rather than express a
deployment's policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from skysense.errors import QueryError

__all__ = [
    "MAX_QUERY_BYTES",
    "MAX_SELECT_COLUMNS",
    "MAX_DEPTH",
    "MAX_POLYGON_VERTICES",
    "MAX_IN_LIST",
    "Deadline",
]

#: Longest query text, in bytes of its UTF-8 encoding.
MAX_QUERY_BYTES = 256_000
#: Most result columns of one SELECT (after ``*`` is expanded).
MAX_SELECT_COLUMNS = 10_000
#: Deepest syntax-tree nesting (subqueries, function calls, operators, parenthesised
#: conditions); a flat chain of one operator counts as one level.
MAX_DEPTH = 150
#: Most vertices of one POLYGON.
MAX_POLYGON_VERTICES = 1_000
#: Most values in one ``IN (...)`` list.
MAX_IN_LIST = 10_000


class Deadline:
    """A point in time after which cooperative work stops with a time-limit error.

    Parameters
    ----------
    seconds : float or None
        Time allowed from now; None means no limit.
    error : type, optional
        The :class:`~skysense.errors.QueryError` subclass to raise (e.g. the backend's
        ``QueryTimeout``).
    aborted : callable, optional
        Returns True once the work should stop for another reason (a cancelled query, a
        shutting-down server); :meth:`check` then raises "query was aborted".
    """

    __slots__ = ("seconds", "_end", "_error", "_aborted")

    def __init__(
        self,
        seconds: float | None,
        *,
        error: type[QueryError] = QueryError,
        aborted: Callable[[], bool] | None = None,
    ):
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + float(seconds)
        self._error = error
        self._aborted = aborted

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a limit."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._end is not None and time.monotonic() > self._end

    def check(self, stage: str = "translating") -> None:
        """Raise the time-limit error when the deadline has passed.

        Raises
        ------
        QueryError
            (of the class given as ``error``) naming the limit and the stage; a plain
            QueryError when ``aborted()`` is true.
        """
        if self._aborted is not None and self._aborted():
            raise QueryError("query was aborted")
        if self.expired:
            raise self._error(
                f"query exceeded the time limit of {self.seconds:g} s (while {stage})"
            )
