"""The catalogue formats by name (pure: names in, names out); suffixes are in
:data:`skysense.tables.SUFFIXES`."""

from __future__ import annotations

import os

from skysense.tables import table_format

__all__ = ["FORMATS", "guess_format"]

FORMATS = ("fits", "votable", "csv", "ecsv", "parquet")


def guess_format(path: str | os.PathLike) -> str:
    """Format name (one of :data:`FORMATS`) from a file name's suffix (:data:`skysense.tables.SUFFIXES`).

    Raises
    ------
    InputError
        The suffix is not recognised.
    """
    return table_format(path, FORMATS)
