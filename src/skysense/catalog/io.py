"""Reading pristine catalogues and writing prepared ones.

Readers return a :class:`pandas.DataFrame` whose ``attrs`` carry the column metadata found in
the file: ``attrs["units"]`` (column -> unit string) and ``attrs["descriptions"]``
(column -> text). Multidimensional FITS columns (SExtractor's ``MAG_APER`` with several
apertures) are split into ``NAME_0``, ``NAME_1``, ... Masked values become NaN (floats) or
``<NA>`` (others).

Writers keep units and descriptions where the format can hold them (FITS, VOTable, ECSV,
Parquet field metadata) and always write atomically: a failure leaves no partial file.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path
from skysense.errors import InputError

__all__ = ["FORMATS", "guess_format", "read_catalogue", "write_catalogue"]

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


def _read_parquet(path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    units, descriptions = {}, {}
    for field in table.schema:
        meta = field.metadata or {}
        units[field.name] = meta.get(b"unit", b"").decode()
        descriptions[field.name] = meta.get(b"description", b"").decode()
    df = table.to_pandas()
    df.attrs["units"] = units
    df.attrs["descriptions"] = descriptions
    return df


def read_catalogue(path: str | os.PathLike, format: str | None = None) -> pd.DataFrame:
    """Read a catalogue file into a DataFrame.

    Parameters
    ----------
    path : path-like
        The file.
    format : {"fits", "votable", "csv", "ecsv", "parquet"}, optional
        Default: guessed from the suffix. FITS reads the first table HDU.

    Returns
    -------
    pandas.DataFrame
        One row per catalogue row; ``attrs["units"]`` and ``attrs["descriptions"]`` hold the
        column metadata ("" when unknown).

    Raises
    ------
    InputError
        Missing file, unknown format, or a file that cannot be parsed.
    """
    path = Path(path)
    fmt = guess_format(path) if format is None else format.lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}", path=path)
    if not path.is_file():
        raise InputError("file not found", path=path)
    try:
        if fmt == "parquet":
            return _read_parquet(path)
        if fmt == "csv":
            df = pd.read_csv(path, comment=None, skipinitialspace=True)
            df.columns = [str(c).strip() for c in df.columns]
            df.attrs["units"] = {c: "" for c in df.columns}
            df.attrs["descriptions"] = {c: "" for c in df.columns}
            return df
        from astropy.table import Table

        with warnings.catch_warnings():
            # Non-standard unit strings are common in survey files; we check units ourselves.
            warnings.simplefilter("ignore")
            table = Table.read(
                path, format={"fits": "fits", "votable": "votable"}.get(fmt, "ascii.ecsv")
            )
        return _from_astropy(table, path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is bad input, reported in one line
        raise InputError(f"cannot read as {fmt}: {exc}", path=path) from exc


def _to_astropy(df: pd.DataFrame, units: dict, descriptions: dict, meta: dict | None):
    from astropy.table import MaskedColumn, Table

    table = Table()
    for name in df.columns:
        series = df[name]
        if series.dtype.kind in "OUT" or str(series.dtype) in ("str", "string"):
            values = np.asarray(series.astype(str).to_numpy(), dtype=str)
            table[name] = values
        elif series.dtype.kind in "iufb":
            values = series.to_numpy()
            if values.dtype == np.int8:  # FITS and VOTable have no signed byte
                values = values.astype(np.int16)
            table[name] = values
        else:  # nullable extension types: masked where missing
            mask = series.isna().to_numpy()
            kind = "f8" if series.dtype.kind == "f" else None
            values = (
                series.to_numpy(dtype=kind, na_value=0) if kind else series.fillna(0).to_numpy()
            )
            table[name] = MaskedColumn(values, mask=mask)
        if units.get(name):
            table[name].unit = units[name]
        if descriptions.get(name):
            table[name].description = descriptions[name]
    for key, value in (meta or {}).items():
        table.meta[key] = value
    return table


def write_catalogue(
    df: pd.DataFrame,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    units: dict[str, str] | None = None,
    descriptions: dict[str, str] | None = None,
    meta: dict | None = None,
) -> Path:
    """Write ``df`` atomically as FITS, VOTable, CSV, ECSV or Parquet.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : path-like
        Destination; replaced only once the new file is complete.
    format : str, optional
        One of :data:`FORMATS`; default from the suffix.
    units, descriptions : dict, optional
        Column metadata; default ``df.attrs["units"]`` / ``df.attrs["descriptions"]``.
    meta : dict, optional
        Table-level metadata (short scalar values; FITS keeps them as header cards, Parquet as
        JSON schema metadata under ``b"skysense"``).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    fmt = guess_format(path) if format is None else format.lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}", path=path)
    units = dict(df.attrs.get("units", {}), **(units or {}))
    descriptions = dict(df.attrs.get("descriptions", {}), **(descriptions or {}))
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            fields = []
            for field in table.schema:
                md = {}
                if units.get(field.name):
                    md[b"unit"] = units[field.name].encode()
                if descriptions.get(field.name):
                    md[b"description"] = descriptions[field.name].encode()
                fields.append(field.with_metadata(md) if md else field)
            schema_md = dict(table.schema.metadata or {})
            if meta:
                schema_md[b"skysense"] = json.dumps(meta, default=str).encode()
            table = table.cast(pa.schema(fields, metadata=schema_md))
            pq.write_table(table, tmp)
        elif fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            table = _to_astropy(df, units, descriptions, meta if fmt != "fits" else None)
            if fmt == "fits":
                for key, value in (meta or {}).items():
                    if isinstance(value, (str, int, float, bool)) and len(key) <= 8:
                        table.meta[key.upper()] = value
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.write(
                    tmp, format={"fits": "fits", "votable": "votable", "ecsv": "ascii.ecsv"}[fmt]
                )
    return path
