"""Column names XID+ recognises in catalogues (prior lists, XID+ catalogues, masterlists).

Pure: the identifier names (positions: :data:`skysense.tables.RA_NAMES` and
:data:`skysense.tables.DEC_NAMES`), and the one lookup that every reader and
matcher of :mod:`skysense.xid` uses, so they accept the same names and fail the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from skysense.errors import InputError

__all__ = ["ID_NAMES", "find_column"]

#: Identifier columns, in order of preference (compared without case).
ID_NAMES = ("help_id", "id", "object_id", "source_id")


def find_column(
    columns: Iterable[str],
    names: Sequence[str],
    what: str,
    given: str | None = None,
    *,
    path=None,
    label: str | None = None,
) -> str:
    """The column of ``columns`` that holds ``what``: ``given`` if set, else the first of ``names``.

    Parameters
    ----------
    columns : iterable of str - the table's columns
    names : sequence of str - lower-case candidates, in order of preference
    what : str - what the column holds, for the error (``"RA"``)
    given : str, optional - a column the caller named (must exist, exact case)
    path : path, optional - the file, for the error
    label : str, optional - the table, for the error (``"masterlist"``)

    Raises
    ------
    InputError
        ``given`` is not a column, or no candidate is.
    """
    columns = list(columns)
    prefix = f"{label}: " if label else ""
    if given is not None:
        if given not in columns:
            raise InputError(f"{prefix}{what} column {given!r} not found", path=path, column=given)
        return given
    low = {c.lower(): c for c in columns}
    for n in names:
        if n in low:
            return low[n]
    raise InputError(f"{prefix}no {what} column (tried {', '.join(names)})", path=path)
