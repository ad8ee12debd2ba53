"""Write blind-extraction catalogues (FITS and Parquet), atomically.

The FITS table carries column units and the filter settings (``df.attrs``) as header keys, so
the file is ready for ``skysense vo publish``; the Parquet file keeps the same columns.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from skysense._atomic import atomic_path
from skysense.errors import InputError
from skysense.xid.blind.extract import CATALOGUE_UNITS
from skysense.xid.io import read_table

__all__ = ["write_blind_catalogue", "read_blind_catalogue", "BLIND_COLUMNS"]

#: Columns every blind catalogue holds (see :func:`skysense.xid.blind.extract.extract_sources`).
BLIND_COLUMNS = ("ra", "dec", "ra_err", "dec_err", "flux_mjy", "flux_err_mjy", "snr")

# FITS header keys (8 characters at most) for the filter settings in df.attrs.
_HEADER_KEYS = {
    "band": "BAND",
    "fwhm_arcsec": "FWHM",
    "pixel_arcsec": "PIXSIZE",
    "confusion_mjy": "CONFNOIS",
    "snr_threshold": "SNRTHRES",
    "filter": "FILTER",
}


def write_blind_catalogue(
    df: pd.DataFrame,
    stem: str | os.PathLike,
    *,
    formats: tuple[str, ...] = ("fits", "parquet"),
    units: dict[str, str] | None = None,
) -> list[Path]:
    """Write ``df`` as ``<stem>.fits`` and/or ``<stem>.parquet``, each atomically.

    Parameters
    ----------
    df : DataFrame - a catalogue from :func:`~skysense.xid.blind.extract.extract_sources`
    stem : path without suffix
    formats : subset of ("fits", "parquet")
    units : dict, optional - units of further columns (e.g. cross-match separations)

    Returns
    -------
    list of Path - the files written

    Raises
    ------
    InputError
        When a required column is missing or a format is unknown.
    """
    missing = [c for c in BLIND_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"blind catalogue lacks column(s) {missing}", column=missing[0])
    unknown = set(formats) - {"fits", "parquet"}
    if unknown or not formats:
        raise InputError(f"formats must be a non-empty subset of fits, parquet; got {formats!r}")
    stem = Path(stem)
    written = []
    if "fits" in formats:
        from astropy.table import Table

        table = Table.from_pandas(df.reset_index(drop=True))
        for col, unit in {**CATALOGUE_UNITS, **(units or {})}.items():
            if col in table.colnames:
                table[col].unit = unit
        for attr, key in _HEADER_KEYS.items():
            if attr in df.attrs:
                table.meta[key] = df.attrs[attr]
        path = stem.with_name(stem.name + ".fits")
        with atomic_path(path) as tmp:
            table.write(tmp, format="fits")
        written.append(path)
    if "parquet" in formats:
        path = stem.with_name(stem.name + ".parquet")
        with atomic_path(path) as tmp:
            df.reset_index(drop=True).to_parquet(tmp, index=False)
        written.append(path)
    return written


def read_blind_catalogue(path: str | os.PathLike) -> pd.DataFrame:
    """Read a blind catalogue written by :func:`write_blind_catalogue` (FITS or Parquet).

    The filter settings come back in ``df.attrs`` (from the FITS header keys; a Parquet file
    keeps pandas' attrs).

    Raises
    ------
    InputError
        Missing file, unreadable table or missing catalogue columns.
    """
    path = Path(path)
    df = read_table(path, "blind catalogue")
    if path.suffix.lower() in (".fits", ".fit", ".fts"):
        from astropy.io import fits

        # the table read above is HDU 1 or later, so this header exists
        header = fits.getheader(path, 1)
        for attr, key in _HEADER_KEYS.items():
            if key in header:
                df.attrs[attr] = header[key]
    missing = [c for c in ("ra", "dec") if c not in df.columns]
    if missing:
        raise InputError(f"blind catalogue lacks column(s) {missing}", path=path, column=missing[0])
    return df
