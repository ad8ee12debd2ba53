"""Catalogue file formats by name and by file-name suffix (pure: names in, names out)."""

from __future__ import annotations

import os
from pathlib import Path

from skysense.errors import InputError

__all__ = ["FORMATS", "guess_format"]

FORMATS = ("fits", "votable", "csv", "ecsv", "parquet")

_SUFFIXES = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".vot": "votable",
    ".xml": "votable",
    ".votable": "votable",
    ".csv": "csv",
    ".ecsv": "ecsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def guess_format(path: str | os.PathLike) -> str:
    """Format name (one of :data:`FORMATS`) from a file name's suffix.

    Raises
    ------
    InputError
        The suffix is not recognised.
    """
    name = Path(path).name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    raise InputError(
        f"cannot tell the format from the file name; use one of {', '.join(FORMATS)}", path=path
    )
