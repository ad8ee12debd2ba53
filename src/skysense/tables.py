"""Tables in files: format names by suffix, the one catalogue reader, RA/Dec column names,
the publish metadata of columns.

Ground floor (imports no area): every area that reads a catalogue file (the catalogue
pipeline, photo-z, VO publishing, XID+) tells formats with :func:`table_format`, reads FITS,
VOTable, CSV, ECSV and Parquet with :func:`read_table` and finds position columns among
:data:`RA_NAMES` / :data:`DEC_NAMES`, so they accept the same files and the same names.

:func:`read_table` returns a :class:`pandas.DataFrame` whose ``attrs`` carry the column
metadata found in the file: ``attrs["units"]`` (column -> unit string) and
``attrs["descriptions"]`` (column -> text). Multidimensional FITS columns (SExtractor's
``MAG_APER`` with several apertures) are split into ``NAME_0``, ``NAME_1``, ... Masked values
become NaN (floats) or ``<NA>`` (others).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from skysense.errors import InputError

__all__ = [
    "SUFFIXES",
    "READ_FORMATS",
    "RA_NAMES",
    "DEC_NAMES",
    "table_format",
    "read_table",
    "iter_table_chunks",
    "find_name",
    "guess_position_columns",
    "ColumnMeta",
    "publish_meta",
]

_log = logging.getLogger(__name__)

#: File-name suffix (lower case) -> format name; the longest matching suffix wins.
SUFFIXES = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".vot": "votable",
    ".xml": "votable",
    ".votable": "votable",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".ecsv": "ecsv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".hdf5": "hdf5",
    ".h5": "hdf5",
    ".hdf": "hdf5",
}

#: The formats :func:`read_table` reads.
READ_FORMATS = ("fits", "votable", "csv", "ecsv", "tsv", "parquet")

#: Right ascension columns (deg), lower case, in order of preference.
RA_NAMES = (
    "ra",
    "ra_deg",
    "radeg",
    "raj2000",
    "ra_j2000",
    "ra_icrs",
    "alpha_j2000",
    "alpha",
    "ra2000",
    "right_ascension",
)
#: Declination columns (deg), lower case, in order of preference.
DEC_NAMES = (
    "dec",
    "dec_deg",
    "decdeg",
    "dej2000",
    "decj2000",
    "dec_j2000",
    "de_icrs",
    "dec_icrs",
    "delta_j2000",
    "delta",
    "de",
    "dec2000",
    "declination",
)


def table_format(
    path: str | os.PathLike,
    formats: Sequence[str] | None = None,
    *,
    default: str | None = None,
    hint: str | None = None,
) -> str:
    """Format name of a file from its name's suffix (see :data:`SUFFIXES`).

    Parameters
    ----------
    path : path-like
        The file (only its name is used).
    formats : sequence of str, optional
        The formats the caller handles; another one counts as not recognised.
    default : str, optional
        Returned when the suffix is not recognised (instead of raising).
    hint : str, optional
        What the error tells the user to do (default: "use one of <formats>").

    Raises
    ------
    InputError
        The suffix is not recognised and there is no ``default``.
    """
    name = Path(path).name.lower()
    fmt = next(
        (SUFFIXES[s] for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None
    )
    if fmt is not None and (formats is None or fmt in formats):
        return fmt
    if default is not None:
        return default
    if hint is None:
        hint = f"use one of {', '.join(formats or sorted(set(SUFFIXES.values())))}"
    raise InputError(f"cannot tell the format from the file name; {hint}", path=path)


def _from_astropy(table, path) -> pd.DataFrame:
    units: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    data: dict[str, np.ndarray] = {}
    for name in table.colnames:
        col = table[name]
        unit = "" if col.unit is None else col.unit.to_string()
        desc = col.description or ""
        values = np.ma.asarray(col)
        if values.ndim > 2:
            raise InputError(
                f"{values.ndim}-dimensional column not supported", path=path, column=name
            )
        parts = (
            {name: values}
            if values.ndim == 1
            else {f"{name}_{k}": values[:, k] for k in range(values.shape[1])}
        )
        for key, vals in parts.items():
            if vals.dtype.kind == "S":
                vals = np.ma.asarray(np.char.decode(vals.filled(b""), "utf-8", "replace"))
            if vals.dtype.kind == "f":
                arr = vals.astype(np.float64).filled(np.nan)
                data[key] = arr
            elif np.ma.is_masked(vals):
                data[key] = pd.array(list(vals.tolist()))
            else:
                arr = np.asarray(vals.data)
                data[key] = (
                    arr.astype(arr.dtype.newbyteorder("=")) if arr.dtype.kind in "iub" else arr
                )
            units[key] = unit
            descriptions[key] = desc
    df = pd.DataFrame(data)
    df.attrs["units"] = units
    df.attrs["descriptions"] = descriptions
    return df


def _read_parquet(path, columns) -> pd.DataFrame:
    import pyarrow.parquet as pq

    if columns is not None:
        # Only the columns asked for (training sets are wide); absent ones are reported below.
        have = set(pq.read_schema(path).names)
        columns = [c for c in columns if c in have]
    table = pq.read_table(path, columns=columns)
    units, descriptions = {}, {}
    for field in table.schema:
        meta = field.metadata or {}
        units[field.name] = meta.get(b"unit", b"").decode()
        descriptions[field.name] = meta.get(b"description", b"").decode()
    df = table.to_pandas()
    df.attrs["units"] = units
    df.attrs["descriptions"] = descriptions
    return df


def _read_text(path, sep: str) -> pd.DataFrame:
    df = pd.read_csv(path, sep=sep, comment=None, skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["units"] = {c: "" for c in df.columns}
    df.attrs["descriptions"] = {c: "" for c in df.columns}
    return df


def _read_astropy(path, fmt: str) -> pd.DataFrame:
    from astropy.table import Table

    # astropy warns while it reads (non-standard unit strings are common in survey files and
    # checked by the callers; VerifyWarning on damaged headers). Printed, those lines would
    # come before the one-line error that may follow, so they are caught here: a truncated
    # file is an error, any other warning is logged (``-v``).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = Table.read(
            path, format={"fits": "fits", "votable": "votable"}.get(fmt, "ascii.ecsv")
        )
    for w in caught:
        text = " ".join(str(w.message).split())
        if "truncated" in text:
            raise InputError(f"cannot read as {fmt}: {text}", path=path)
        _log.info("%s: %s: %s", path, w.category.__name__, text)
    return _from_astropy(table, path)


def read_table(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a table file into a DataFrame.

    Parameters
    ----------
    path : path-like
        The file.
    format : {"fits", "votable", "csv", "ecsv", "tsv", "parquet"}, optional
        Default: from the suffix (:func:`table_format`). FITS reads the first table HDU.
    columns : sequence of str, optional
        Keep only these columns, in this order (Parquet reads no others).

    Returns
    -------
    pandas.DataFrame
        One row per table row; ``attrs["units"]`` and ``attrs["descriptions"]`` hold the
        column metadata ("" when unknown).

    Raises
    ------
    InputError
        Missing file, unknown format, a file that cannot be parsed, or a requested column
        that does not exist.
    """
    path = Path(path)
    fmt = table_format(path, READ_FORMATS) if format is None else format.lower()
    if fmt not in READ_FORMATS:
        raise InputError(
            f"unknown format {format!r}; use one of {', '.join(READ_FORMATS)}", path=path
        )
    if not path.is_file():
        raise InputError("file not found", path=path)
    try:
        if fmt == "parquet":
            df = _read_parquet(path, columns)
        elif fmt in ("csv", "tsv"):
            df = _read_text(path, "," if fmt == "csv" else "\t")
        else:
            df = _read_astropy(path, fmt)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is bad input, reported in one line
        raise InputError(f"cannot read as {fmt}: {' '.join(str(exc).split())}", path=path) from exc
    if columns is not None:
        absent = [c for c in columns if c not in df.columns]
        if absent:
            raise InputError(
                f"no column(s) {absent}; columns are {list(df.columns)[:30]}", path=path
            )
        attrs = df.attrs
        df = df[list(columns)]
        df.attrs = {k: {c: v[c] for c in columns if c in v} for k, v in attrs.items()}
    return df


def _csv_dtypes(path: Path, sep: str, chunk_rows: int) -> dict[str, str]:
    """The dtypes a whole-file :func:`pandas.read_csv` infers, found chunk by chunk: a column
    is int64 if every chunk reads it so, float64 if every chunk reads a number, else object."""
    kinds: dict[str, set[str]] = {}
    for chunk in pd.read_csv(path, sep=sep, comment=None, skipinitialspace=True,
                             chunksize=chunk_rows):  # fmt: skip
        for name, dtype in chunk.dtypes.items():
            kinds.setdefault(name, set()).add(dtype.kind)
    out = {}
    for name, k in kinds.items():
        if k <= {"i"}:
            out[name] = "int64"
        elif k <= {"i", "f"}:
            out[name] = "float64"
        elif k == {"b"}:
            out[name] = "bool"
        else:
            out[name] = "str"  # what pandas infers for text (object before pandas 3)
    return out


def iter_table_chunks(
    path: str | os.PathLike, format: str | None = None, *, chunk_rows: int = 500_000
) -> Iterator[pd.DataFrame]:
    """Read a FITS, CSV/TSV or Parquet table in chunks of at most ``chunk_rows`` rows.

    The chunks, concatenated, equal :func:`read_table` (same dtypes, units, descriptions),
    but memory holds one chunk: FITS is memory-mapped, CSV is read twice (once to find the
    dtypes a whole-file read would give, once for the values), Parquet by record batches.
    FITS columns whose masked state differs between chunks get pandas' nullable dtypes in
    some chunks only; Arrow unifies them (``promote_options="permissive"``).

    Raises
    ------
    InputError
        Unknown or unsupported format (VOTable and ECSV cannot be streamed), missing file,
        unparsable file.
    """
    path = Path(path)
    fmt = table_format(path, READ_FORMATS) if format is None else format.lower()
    if fmt not in ("fits", "csv", "tsv", "parquet"):
        raise InputError(f"cannot read {fmt} in chunks; use FITS, CSV, TSV or Parquet", path=path)
    if not path.is_file():
        raise InputError("file not found", path=path)
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be >= 1, got {chunk_rows}")
    try:
        if fmt in ("csv", "tsv"):
            sep = "," if fmt == "csv" else "\t"
            dtypes = _csv_dtypes(path, sep, chunk_rows)
            reader = pd.read_csv(path, sep=sep, comment=None, skipinitialspace=True,
                                 chunksize=chunk_rows, dtype=dtypes)  # fmt: skip
            for chunk in reader:
                chunk.columns = [str(c).strip() for c in chunk.columns]
                chunk.attrs["units"] = {c: "" for c in chunk.columns}
                chunk.attrs["descriptions"] = {c: "" for c in chunk.columns}
                yield chunk
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            file = pq.ParquetFile(path)
            units = {
                f.name: (f.metadata or {}).get(b"unit", b"").decode() for f in file.schema_arrow
            }
            desc = {
                f.name: (f.metadata or {}).get(b"description", b"").decode()
                for f in file.schema_arrow
            }
            for batch in file.iter_batches(batch_size=chunk_rows):
                chunk = pa.Table.from_batches([batch]).to_pandas()
                chunk.attrs["units"], chunk.attrs["descriptions"] = dict(units), dict(desc)
                yield chunk
        else:
            from astropy.table import Table

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # Memory-mapped: only the chunk being converted is read.
                table = Table.read(path, format="fits", memmap=True)
                for start in range(0, len(table), chunk_rows):
                    yield _from_astropy(table[start : start + chunk_rows], path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is bad input, reported in one line
        raise InputError(f"cannot read as {fmt}: {' '.join(str(exc).split())}", path=path) from exc


def find_name(columns: Iterable[str], names: Sequence[str]) -> str | None:
    """The first of ``names`` (lower case, in order of preference) that is a column.

    A column spelled exactly as a name wins over one that differs only in case (``ra`` over
    ``RA``). Returns None when no name is a column.
    """
    columns = list(columns)
    lower: dict[str, str] = {}
    for c in columns:
        lower.setdefault(str(c).lower(), c)
    for n in names:
        if n in columns:
            return n
        if n in lower:
            return lower[n]
    return None


def guess_position_columns(
    columns: Iterable[str], ra: str | None = None, dec: str | None = None
) -> tuple[str | None, str | None]:
    """RA and Dec column names of a table: the given ones, else one of :data:`RA_NAMES` /
    :data:`DEC_NAMES` (any case), else a prepared table's ``<survey>_ra`` / ``<survey>_dec``.

    Returns
    -------
    (ra, dec) : str or None
        None where nothing fits.
    """
    columns = list(columns)
    prepared = [c[:-3] for c in columns if c.endswith("_ra") and f"{c[:-3]}_dec" in columns]
    if ra is None:
        ra = find_name(columns, RA_NAMES) or (f"{prepared[0]}_ra" if prepared else None)
    if dec is None:
        dec = find_name(columns, DEC_NAMES) or (f"{prepared[0]}_dec" if prepared else None)
    return ra, dec


class ColumnMeta(NamedTuple):
    """Publish metadata of one column: what :mod:`skysense.vo.publish` reads per column."""

    unit: str = ""
    ucd: str = ""
    description: str = ""

    def as_dict(self) -> dict[str, str]:
        """``{"unit": ..., "ucd": ..., "description": ...}``."""
        return self._asdict()


def publish_meta(
    columns: Iterable[str], describe: Callable[[str], ColumnMeta | None]
) -> dict[str, dict[str, dict[str, str]]]:
    """Publish metadata ``{"columns": {name: {unit, ucd, description}}}`` of a table.

    Parameters
    ----------
    columns : iterable of str
        The table's column names.
    describe : callable
        A column name -> its :class:`ColumnMeta`, or None for a column it does not know
        (left out, so the publisher's defaults apply).
    """
    out = {}
    for c in columns:
        meta = describe(c)
        if meta is not None:
            out[c] = meta.as_dict()
    return {"columns": out}
