"""Output formats of TAP results: VOTable (TABLEDATA, BINARY2), CSV, TSV, FITS and JSON.

:func:`resolve_format` maps a ``RESPONSEFORMAT`` value (MIME type or short alias, as listed in
the TAPRegExt capabilities) to an :class:`OutputFormat`; :func:`serialise` writes a result.
Pure: Arrow in, bytes out.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from skysense.errors import QueryError
from skysense.vo.schema import ColumnInfo
from skysense.vo.votable import result_votable

__all__ = ["OutputFormat", "FORMATS", "resolve_format", "serialise"]


@dataclass(frozen=True)
class OutputFormat:
    """One output format: its key, MIME type, aliases and TAPRegExt ivo-id."""

    key: str
    mime: str
    aliases: tuple[str, ...]
    ivo_id: str | None
    extension: str


FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(
        "votable",
        "application/x-votable+xml",
        (
            "votable",
            "votable/td",
            "application/x-votable+xml;serialization=tabledata",
            "text/xml",
            "application/xml",
            "votabletd",
        ),
        "ivo://ivoa.net/std/TAPRegExt#output-votable-td",
        "vot",
    ),
    OutputFormat(
        "votable-binary2",
        "application/x-votable+xml;serialization=BINARY2",
        ("votable/b2", "votableb2", "binary2"),
        "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2",
        "vot",
    ),
    OutputFormat(
        "csv",
        "text/csv",
        ("csv", "text/csv;header=present"),
        None,
        "csv",
    ),
    OutputFormat(
        "tsv",
        "text/tab-separated-values",
        ("tsv",),
        None,
        "tsv",
    ),
    OutputFormat("fits", "application/fits", ("fits",), None, "fits"),
    OutputFormat("json", "application/json", ("json",), None, "json"),
)


def resolve_format(value: str | None) -> OutputFormat:
    """The :class:`OutputFormat` named by a RESPONSEFORMAT/FORMAT value (default VOTable).

    Raises
    ------
    QueryError
        For an unknown format (the message lists the supported ones).
    """
    if value is None or not value.strip():
        return FORMATS[0]
    key = "".join(value.split()).lower()
    for fmt in FORMATS:
        if key == fmt.mime.lower() or key in fmt.aliases:
            return fmt
    if key.startswith("application/x-votable+xml"):
        if "binary2" in key:
            return FORMATS[1]
        if "serialization=" not in key:
            return FORMATS[0]
    supported = ", ".join(f.aliases[0] if f.aliases else f.mime for f in FORMATS)
    raise QueryError(f"unsupported RESPONSEFORMAT {value!r}; use one of: {supported}")


def serialise(
    fmt: OutputFormat,
    table: pa.Table,
    columns: Sequence[ColumnInfo],
    *,
    overflow: bool = False,
    infos: dict[str, str] | None = None,
) -> bytes:
    """Write a result in ``fmt``.

    Parameters
    ----------
    fmt : OutputFormat
    table : pyarrow.Table
        The rows.
    columns : sequence of ColumnInfo
        Output column metadata (names are the column headers).
    overflow : bool
        The result was truncated at MAXREC (VOTable OVERFLOW INFO; a JSON key).
    infos : dict, optional
        Extra VOTable INFO elements.
    """
    if fmt.key == "votable":
        return result_votable(table, columns, overflow=overflow, infos=infos)
    if fmt.key == "votable-binary2":
        return result_votable(table, columns, overflow=overflow, infos=infos, binary2=True)
    names = [c.name for c in columns] if len(columns) == table.num_columns else table.column_names
    plain = _plain(table, names)
    if fmt.key in ("csv", "tsv"):
        delimiter = "," if fmt.key == "csv" else "\t"
        sink = pa.BufferOutputStream()
        opts = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="needed")
        pacsv.write_csv(plain, sink, opts)
        # Arrow quotes every header name; quote only where CSV needs it.
        header = delimiter.join(_csv_field(n, delimiter) for n in plain.column_names)
        return (header + "\n").encode("utf-8") + sink.getvalue().to_pybytes()
    if fmt.key == "fits":
        return _fits(plain, columns)
    return _json(plain, columns, overflow)


def _csv_field(text: str, delimiter: str) -> str:
    if any(c in text for c in (delimiter, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


def _plain(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """Timestamps as ISO text, dictionaries decoded; unique column names."""
    arrays = []
    for col in table.columns:
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
            col = pc.strftime(pc.cast(col, pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%S")
        arrays.append(col)
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        n = seen.get(name, 0)
        seen[name] = n + 1
        unique.append(name if n == 0 else f"{name}_{n}")
    return pa.Table.from_arrays(arrays, names=unique)


#: FITS binary tables hold at most 999 columns (TFIELDS, FITS 4.0 section 7.3.1).
FITS_MAX_COLUMNS = 999


def _fits(table: pa.Table, columns: Sequence[ColumnInfo]) -> bytes:
    from astropy.io import fits
    from astropy.table import MaskedColumn, Table

    if table.num_columns > FITS_MAX_COLUMNS:
        raise QueryError(
            f"the result has {table.num_columns} columns; a FITS table holds at most "
            f"{FITS_MAX_COLUMNS}: select fewer columns or ask for VOTable"
        )
    out = Table()
    for i, name in enumerate(table.column_names):
        arr = table.column(i)
        mask = pc.is_null(arr).to_numpy(zero_copy_only=False)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            # FITS strings are bytes: UTF-8 keeps non-ASCII text readable.
            encoded = [v.encode("utf-8") for v in pc.fill_null(arr, "").to_pylist()]
            width = max([len(v) for v in encoded] + [1])
            values = np.array(encoded, dtype=f"S{width}")
        elif pa.types.is_boolean(arr.type):
            values = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
        elif pa.types.is_floating(arr.type):
            values = pc.fill_null(arr, np.nan).to_numpy(zero_copy_only=False)
        else:
            values = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
        col = MaskedColumn(values, name=name, mask=mask)
        if i < len(columns):
            info = columns[i]
            if info.unit:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        col.unit = info.unit
                    except ValueError:
                        pass
            col.description = info.description or None
        out[name] = col
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(out)]).writeto(buf)
    return buf.getvalue()


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(table: pa.Table, columns: Sequence[ColumnInfo], overflow: bool) -> bytes:
    meta = []
    for i, name in enumerate(table.column_names):
        info = columns[i] if i < len(columns) else None
        meta.append(
            {
                "name": name,
                "datatype": info.datatype if info else None,
                "arraysize": info.arraysize if info else None,
                "unit": (info.unit or None) if info else None,
                "ucd": (info.ucd or None) if info else None,
                "description": (info.description or None) if info else None,
            }
        )
    columns_py = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [[_json_value(v) for v in row] for row in zip(*columns_py)] if columns_py else []
    doc = {"metadata": meta, "data": rows, "overflow": bool(overflow)}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
