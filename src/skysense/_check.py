"""Boundary validators shared by every area: sky positions and "did you mean" hints.

Ground floor (imports no area). Each check raises :class:`~skysense.errors.InputError` (a
``ValueError`` too) that names the file, column and first offending row where the caller
knows them, so a user sees the same one-line error whichever area read the data.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from skysense.errors import InputError

__all__ = ["check_positions", "checked_positions", "did_you_mean"]


def check_positions(
    ra,
    dec,
    *,
    ra_range: bool = False,
    missing_ok: bool = False,
    one_dim: bool = False,
    path: str | os.PathLike | None = None,
    columns: tuple[str | None, str | None] = (None, None),
    label: str | None = None,
    rows: Sequence[int] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Check sky positions and return them as float64 arrays.

    Parameters
    ----------
    ra, dec : array_like, deg
        Positions; the same shape.
    ra_range : bool
        Also require RA in [0, 360) (else any finite RA, as wrapping code accepts).
    missing_ok : bool
        Let NaN / infinite positions through (rows without a position); Dec is checked only
        where it is finite.
    one_dim : bool
        Require 1-d arrays.
    path : path-like, optional
        The file, for the error.
    columns : (str or None, str or None)
        The RA and Dec column names, for the error.
    label : str, optional
        Prefix of the message (``"masterlist: ..."``).
    rows : array_like of int, optional
        Row numbers of the values in their file (default: their index).

    Returns
    -------
    (ra, dec) : ndarray, ndarray
        Contiguous float64 copies (or views) of the input, same shape.

    Raises
    ------
    InputError
        Shapes differ, or a position is missing (unless ``missing_ok``) or out of range; names
        the first offending row, RA checked before Dec.
    """
    prefix = f"{label}: " if label else ""
    ra = np.ascontiguousarray(ra, dtype=np.float64)
    dec = np.ascontiguousarray(dec, dtype=np.float64)
    if ra.shape != dec.shape or (one_dim and ra.ndim != 1):
        raise InputError(
            f"{prefix}ra and dec must be {'1-d arrays of ' if one_dim else 'arrays of '}"
            f"the same shape, got {ra.shape} and {dec.shape}",
            path=path,
        )
    for values, column, what, lo, hi, closed in (
        (ra, columns[0], "RA", 0.0, 360.0, False),
        (dec, columns[1], "Dec", -90.0, 90.0, True),
    ):
        flat = values.reshape(-1)
        finite = np.isfinite(flat)
        if not missing_ok and not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise InputError(
                f"{prefix}{what} is NaN, infinite or missing",
                path=path,
                column=column,
                row=int(rows[i]) if rows is not None else i,
            )
        if what == "RA" and not ra_range:
            continue
        with np.errstate(invalid="ignore"):
            bad = finite & ((flat < lo) | ((flat > hi) if closed else (flat >= hi)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            span = f"[{lo:g}, {hi:g}]" if closed else f"[{lo:g}, {hi:g})"
            raise InputError(
                f"{prefix}{what} {float(flat[i])!r} outside {span} deg",
                path=path,
                column=column,
                row=int(rows[i]) if rows is not None else i,
            )
    return ra, dec


def checked_positions(
    df: pd.DataFrame, ra: str, dec: str, path: str | os.PathLike | None, first_row: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The checked positions (deg, float64 (n,)) in columns ``ra``, ``dec`` of ``df``.

    ``first_row`` is the file row of ``df``'s first row (a chunk of a larger table), for the
    error.

    Raises
    ------
    InputError
        A non-numeric, missing or out-of-range position, naming file, column and row.
    """
    values = []
    for col in (ra, dec):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"non-numeric or missing value {df[col].iloc[row]!r}",
                path=path,
                column=col,
                row=first_row + row,
            )
        values.append(v)
    rows = np.arange(first_row, first_row + len(df))
    return check_positions(values[0], values[1], path=path, columns=(ra, dec), rows=rows)


def did_you_mean(
    name: object,
    options: Iterable[object],
    *,
    shown: Mapping[str, str] | None = None,
    n: int = 1,
    cutoff: float = 0.5,
    context: str | None = None,
    allowed: bool = False,
    clause: bool = False,
) -> str:
    """``" (did you mean 'X'?)"`` for the options closest to ``name``, or "".

    Parameters
    ----------
    name : object
        What the user wrote (compared as text).
    options : iterable
        The valid names (a mapping gives its keys).
    shown : mapping, optional
        What to suggest for a matched option when it differs from the option itself (a short
        name standing for a qualified one).
    n : int
        How many suggestions at most.
    cutoff : float
        :func:`difflib.get_close_matches` similarity in [0, 1] below which nothing is suggested.
    context : str, optional
        Breaks ties between equally close names (e.g. the band's magnitude column when its
        error column is misnamed: ``MAGERR_X`` next to ``MAG_AUTO_K`` suggests
        ``MAGERR_AUTO_K`` rather than ``MAGERR_AUTO_U``).
    allowed : bool
        With no close option, list them all (``" (allowed: a, b)"``) instead of "".
    clause : bool
        Write the hint as a clause, ``"; did you mean 'X'?"`` (the query errors' style).
    """
    options = [str(o) for o in options]
    shown = {} if shown is None else shown
    close = difflib.get_close_matches(str(name), options, n=max(n, 8), cutoff=cutoff)
    if not close:
        return f" (allowed: {', '.join(options)})" if allowed else ""
    if context is not None and len(close) > 1:

        def score(cand: str) -> float:
            own = difflib.SequenceMatcher(None, str(name), cand).ratio()
            return own + 0.5 * difflib.SequenceMatcher(None, context, cand).ratio()

        close = sorted(close, key=score, reverse=True)
    names = ", ".join(repr(str(shown.get(c, c))) for c in close[:n])
    return f"; did you mean {names}?" if clause else f" (did you mean {names}?)"
