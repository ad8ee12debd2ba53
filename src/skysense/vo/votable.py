"""Arrow <-> VOTable, with the DALI ``QUERY_STATUS`` conventions.

- :func:`result_votable` writes a query result: one ``RESOURCE type="results"`` with
  ``INFO QUERY_STATUS=OK`` before the table and, when the result was truncated at MAXREC, an
  ``INFO QUERY_STATUS=OVERFLOW`` after it (DALI 1.1 section 4.4.1); FIELDs carry datatype,
  arraysize, unit, UCD and description from the query's output columns; TABLEDATA or BINARY2.
- :func:`error_votable` writes the error document (``QUERY_STATUS=ERROR``, message as content).
- :func:`read_votable` parses an uploaded VOTable into Arrow plus column metadata.
- :func:`astropy_to_arrow` converts an :class:`astropy.table.Table` (masked values become nulls).

Pure: bytes/Arrow in, bytes/Arrow out; no files or sockets.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skysense.errors import InputError, QueryError
from skysense.vo.limits import Deadline
from skysense.vo.schema import ColumnInfo

__all__ = [
    "result_votable",
    "result_votable_chunks",
    "error_votable",
    "read_votable",
    "astropy_to_arrow",
    "arrow_datatype",
    "column_infos_for",
    "vo_unit",
    "tabledata_rows",
    "votable_document",
]

_FROM_ARROW = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "short"),
    (pa.types.is_uint8, "short"),
    (pa.types.is_int16, "short"),
    (pa.types.is_uint16, "int"),
    (pa.types.is_int32, "int"),
    (pa.types.is_uint32, "long"),
    (pa.types.is_int64, "long"),
    (pa.types.is_uint64, "long"),
    (pa.types.is_float16, "float"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_decimal, "double"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "timestamp"),
    (pa.types.is_string, "char"),
    (pa.types.is_large_string, "char"),
)

_NUMPY = {
    "boolean": np.bool_,
    "short": np.int16,
    "int": np.int32,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
}


def arrow_datatype(typ: pa.DataType) -> str | None:
    """VOTable datatype for an Arrow type (None when it has no scalar VOTable equivalent)."""
    for test, name in _FROM_ARROW:
        if test(typ):
            return name
    if pa.types.is_dictionary(typ):
        return arrow_datatype(typ.value_type)
    return None


def vo_unit(unit: str | None) -> str:
    """A unit string in the VOUnit spelling astropy writes into VOTables (``mas/yr`` ->
    ``mas.yr**-1``), so declared metadata and query results agree; unparseable units are kept
    as given."""
    if not unit:
        return ""
    from astropy import units as u

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in ("vounit", None):
            try:
                return u.Unit(unit, format=fmt).to_string("vounit")
            except (ValueError, TypeError):
                continue
    return str(unit)


def column_infos_for(table: pa.Table) -> list[ColumnInfo]:
    """Minimal column metadata inferred from Arrow types (for results without metadata)."""
    out = []
    for name, typ in zip(table.column_names, table.schema.types):
        datatype = arrow_datatype(typ) or "char"
        out.append(
            ColumnInfo(name=name, datatype=datatype, arraysize="*" if datatype == "char" else None)
        )
    return out


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        key = name.lower()
        if key in seen:
            seen[key] += 1
            candidate = f"{name}_{seen[key]}"
            while candidate.lower() in seen:
                seen[key] += 1
                candidate = f"{name}_{seen[key]}"
            seen[candidate.lower()] = 0
            out.append(candidate)
        else:
            seen[key] = 0
            out.append(name)
    return out


def result_votable(
    table: pa.Table,
    columns: Sequence[ColumnInfo] | None = None,
    *,
    overflow: bool = False,
    binary2: bool = False,
    infos: dict[str, str] | None = None,
    description: str | None = None,
) -> bytes:
    """Serialise a query result as a VOTable 1.4 document.

    Parameters
    ----------
    table : pyarrow.Table
        The rows (already truncated at MAXREC).
    columns : sequence of ColumnInfo, optional
        Metadata of each column, in order (names become FIELD names); inferred from the Arrow
        types when omitted or when its length does not match.
    overflow : bool
        Add the ``QUERY_STATUS=OVERFLOW`` INFO after the table.
    binary2 : bool
        BINARY2 serialisation instead of TABLEDATA.
    infos : dict, optional
        Extra ``INFO name=value`` elements in the results resource (e.g. the query text).
    description : str, optional
        Resource description.

    Returns
    -------
    bytes
        UTF-8 XML.
    """
    return b"".join(
        result_votable_chunks(
            [table],
            columns,
            schema=table.schema,
            overflow=overflow,
            binary2=binary2,
            infos=infos,
            description=description,
        )
    )


def result_votable_chunks(
    batches: Iterable[pa.RecordBatch | pa.Table],
    columns: Sequence[ColumnInfo] | None,
    *,
    schema: pa.Schema,
    overflow: bool | Callable[[], bool] = False,
    binary2: bool = False,
    infos: dict[str, str] | None = None,
    description: str | None = None,
) -> Iterator[bytes]:
    """Write a query result as a VOTable 1.4 document, piece by piece as its batches come.

    The document of :func:`result_votable`, streamed: the head (with the FIELDs) goes out with
    the first batch's rows, then each batch's rows, so a large result never sits whole in
    memory. Types are settled by the first batch: a ``char`` column meeting a non-ASCII text
    later keeps ``char`` (TABLEDATA writes the text as it is; BINARY2 writes ``?`` for such a
    character). A :class:`~skysense.errors.QueryError` raised by ``batches`` after the head
    went out ends the table and adds ``INFO QUERY_STATUS=ERROR`` after it (DALI 1.1, 4.4.1);
    before that it propagates.

    Parameters
    ----------
    batches : iterable of pyarrow.RecordBatch or pyarrow.Table
        The rows (already cut at MAXREC), all with ``schema``.
    columns : sequence of ColumnInfo, optional
        Metadata of each column, as for :func:`result_votable`.
    schema : pyarrow.Schema
        The columns of ``batches``.
    overflow : bool or callable
        Add the ``QUERY_STATUS=OVERFLOW`` INFO; a callable is asked after the last batch.
    binary2, infos, description
        As for :func:`result_votable`.

    Yields
    ------
    bytes
        UTF-8 XML pieces; joined they are the document.
    """
    if columns is None or len(columns) != len(schema):
        columns = column_infos_for(schema.empty_table())
    writer = _Binary2Writer() if binary2 else _TabledataWriter()
    names = _unique([c.name for c in columns])
    rows = iter(batches)
    first = next((b for b in rows if b.num_rows), None)
    sample = first if first is not None else schema.empty_table()
    # The first batch settles the types, and its rows are encoded on the way (once).
    datatypes, body = writer.rows(sample, [c.datatype for c in columns], fixed=False)
    fields = [
        _field_xml(col, name, i, datatype)
        for i, (col, name, datatype) in enumerate(zip(columns, names, datatypes))
    ]
    yield _head(fields, infos or {}, description) + writer.open + body
    error = None
    try:
        for batch in rows:
            if batch.num_rows and datatypes:
                yield writer.rows(batch, datatypes, fixed=True)[1]
    except QueryError as exc:
        error = exc
    tail = writer.close() + b"  </TABLE>\n"
    if error is not None:
        message = escape(" ".join(str(error).split()) or "query failed")
        tail += f'  <INFO name="QUERY_STATUS" value="ERROR">{message}</INFO>\n'.encode()
    elif overflow() if callable(overflow) else overflow:
        tail += b'  <INFO name="QUERY_STATUS" value="OVERFLOW">result truncated at MAXREC</INFO>\n'
    yield tail + b" </RESOURCE>\n</VOTABLE>\n"


_XML_BAD_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _column_text(arr, datatype: str) -> tuple[pa.Array, str]:
    """TABLEDATA cell texts of one column (nulls as empty cells) and the datatype used."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        text = pc.strftime(pc.cast(arr, pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%S")
        return pc.fill_null(text, ""), "timestamp"
    if datatype == "timestamp" and (pa.types.is_string(arr.type)):
        return pc.fill_null(_xml_text(arr), ""), "timestamp"
    if (
        datatype in ("char", "unicodeChar")
        or pa.types.is_string(arr.type)
        or (pa.types.is_large_string(arr.type))
    ):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = pc.cast(arr, pa.string())
        ascii_only = pc.all(pc.string_is_ascii(pc.fill_null(arr, ""))).as_py()
        return pc.fill_null(_xml_text(arr), ""), (
            "char" if ascii_only is not False else "unicodeChar"
        )
    target = _NUMPY.get(datatype)
    if target is None:
        inferred = arrow_datatype(arr.type)
        if inferred is None or inferred not in _NUMPY:
            return _column_text(pc.cast(arr, pa.string()), "char")
        datatype = inferred
    try:
        arr = pc.cast(arr, pa.from_numpy_dtype(np.dtype(_NUMPY[datatype])))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        inferred = arrow_datatype(arr.type) or "char"
        if inferred == datatype:
            raise
        return _column_text(arr, inferred)
    if datatype == "boolean":
        text = pc.if_else(arr, "T", "F")
    else:
        text = pc.cast(arr, pa.string())
        # Arrow spells them nan/inf/-inf; VOTable wants NaN/+Inf/-Inf. Only columns holding
        # such values pay for the three rewrites.
        if datatype in ("float", "double") and pc.any(pc.invert(pc.is_finite(arr))).as_py():
            text = pc.if_else(pc.is_nan(arr), "NaN", text)
            text = pc.if_else(pc.equal(arr, np.inf), "+Inf", text)
            text = pc.if_else(pc.equal(arr, -np.inf), "-Inf", text)
    return (pc.fill_null(text, "") if text.null_count else text), datatype


def tabledata_rows(texts: Sequence[pa.Array]) -> bytes:
    """The ``<TR><TD>...</TD></TR>`` lines of TABLEDATA from per-column cell texts.

    One Arrow join builds every row (separators as scalars) and the rows are cut from the
    joined array's data buffer, without a Python string per row.

    Parameters
    ----------
    texts : sequence of pyarrow.Array (n,), string
        Escaped cell texts, no nulls, one array per column (at least one).

    Returns
    -------
    bytes
        UTF-8, one line per row, each ending in a newline.
    """
    parts: list = ["<TR><TD>"]
    for i, text in enumerate(texts):
        if i:
            parts.append("</TD><TD>")
        parts.append(text)
    parts.append("</TD></TR>\n")
    rows = pc.binary_join_element_wise(*parts, "")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    if len(rows) == 0:
        return b""
    _, offsets, data = rows.buffers()
    width = np.int64 if pa.types.is_large_string(rows.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[rows.offset : rows.offset + len(rows) + 1]
    return bytes(memoryview(data)[int(bounds[0]) : int(bounds[-1])])


def _xml_text(arr: pa.Array) -> pa.Array:
    arr = pc.replace_substring_regex(arr, _XML_BAD_CHARS, "")
    arr = pc.replace_substring(arr, "&", "&amp;")
    arr = pc.replace_substring(arr, "<", "&lt;")
    return pc.replace_substring(arr, ">", "&gt;")


def _attr(value: str) -> str:
    return quoteattr(str(value))


def _field_xml(col: ColumnInfo, name: str, index: int, datatype: str) -> str:
    attrs = f"name={_attr(name)} ID={_attr(_xml_id(name, index))}"
    if datatype == "timestamp":
        attrs += ' datatype="char" arraysize="*" xtype="timestamp"'
    elif datatype in ("char", "unicodeChar"):
        attrs += f' datatype="{datatype}" arraysize="*"'
    else:
        attrs += f' datatype="{datatype}"'
    if col.unit:
        attrs += f" unit={_attr(col.unit)}"
    if col.ucd:
        attrs += f" ucd={_attr(col.ucd)}"
    if col.description:
        return (
            f"    <FIELD {attrs}>\n      <DESCRIPTION>{escape(col.description)}"
            "</DESCRIPTION>\n    </FIELD>\n"
        )
    return f"    <FIELD {attrs}/>\n"


def _head(fields: list[str], infos: dict, description) -> bytes:
    head = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        ' <RESOURCE type="results">\n'
    ]
    if description:
        head.append(f"  <DESCRIPTION>{escape(description)}</DESCRIPTION>\n")
    head.append('  <INFO name="QUERY_STATUS" value="OK"/>\n')
    for name, value in infos.items():
        head.append(f"  <INFO name={_attr(name)} value={_attr(value)}/>\n")
    head.append("  <TABLE>\n")
    head.extend(fields)
    return "".join(head).encode("utf-8")


class _TabledataWriter:
    """TABLEDATA rows written with vectorised Arrow string kernels (astropy's writer formats
    cell by cell in Python, ~100x slower on wide results)."""

    open = b"   <DATA>\n    <TABLEDATA>\n"

    def rows(self, batch, datatypes: list[str], *, fixed: bool) -> tuple[list[str], bytes]:
        """The datatypes used and the rows of one batch (TABLEDATA text is the same whether
        a text column is char or unicodeChar, so ``fixed`` changes nothing here)."""
        done = [_column_text(batch.column(i), d) for i, d in enumerate(datatypes)]
        texts = [text for text, _ in done]
        body = tabledata_rows(texts) if batch.num_rows and texts else b""
        return [d for _, d in done], body

    def close(self) -> bytes:
        return b"    </TABLEDATA>\n   </DATA>\n"


_BIG_ENDIAN = {
    "short": ">i2",
    "int": ">i4",
    "long": ">i8",
    "float": ">f4",
    "double": ">f8",
}


def _fixed_binary(values: np.ndarray) -> pa.Array:
    """Each element's raw bytes as one binary value."""
    values = np.ascontiguousarray(values)
    width = values.dtype.itemsize
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, pa.py_buffer(values.tobytes())]
    )
    return pc.cast(fixed, pa.binary())


def _binary2_cells(arr, datatype: str, *, fixed: bool = False) -> tuple[pa.Array, np.ndarray, str]:
    """BINARY2 cell bytes of one column, its null mask and the datatype used (with ``fixed``,
    a text column is written as the ``char`` or ``unicodeChar`` given, whatever it holds)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    mask = pc.is_null(arr).to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        text = pc.strftime(pc.cast(arr, pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%S")
        return _binary2_strings(text), mask, "timestamp"
    is_text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    if datatype in ("char", "unicodeChar", "timestamp") or is_text:
        if not is_text:
            arr = pc.cast(arr, pa.string())
        if fixed and datatype == "char":
            arr = pc.replace_substring_regex(arr, "[^\\x00-\\x7f]", "?")
        if (fixed and datatype == "unicodeChar") or (
            not fixed and pc.all(pc.string_is_ascii(pc.fill_null(arr, ""))).as_py() is False
        ):
            # unicodeChar is UCS-2 in VOTable: 2 bytes per character (rare; per value).
            cells = []
            for value in pc.fill_null(arr, "").to_pylist():
                raw = value.encode("utf-16-be", errors="replace")
                cells.append((len(raw) // 2).to_bytes(4, "big") + raw)
            return pa.array(cells, pa.binary()), mask, "unicodeChar"
        return _binary2_strings(arr), mask, "timestamp" if datatype == "timestamp" else "char"
    if datatype not in _NUMPY:
        datatype = arrow_datatype(arr.type) or "char"
        if datatype not in _NUMPY:
            return _binary2_cells(pc.cast(arr, pa.string()), "char", fixed=fixed)
    arr = pc.cast(arr, pa.from_numpy_dtype(np.dtype(_NUMPY[datatype])))
    if datatype == "boolean":
        values = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
        return _fixed_binary(np.where(values, b"T", b"F").astype("S1")), mask, datatype
    fill = np.nan if datatype in ("float", "double") else 0
    values = pc.fill_null(arr, fill).to_numpy(zero_copy_only=False)
    return _fixed_binary(values.astype(_BIG_ENDIAN[datatype])), mask, datatype


def _binary2_strings(text: pa.Array) -> pa.Array:
    text = pc.fill_null(text, "")
    lengths = pc.binary_length(text).to_numpy(zero_copy_only=False).astype(">i4")
    return pc.binary_join_element_wise(
        _fixed_binary(lengths), pc.cast(text, pa.binary()), pa.scalar(b"", pa.binary())
    )


class _Binary2Writer:
    """BINARY2 rows (per row: MSB-first null flags, then each cell big-endian; variable-length
    strings prefixed by their 32-bit length), assembled with Arrow kernels and base64-encoded
    in whole 57-byte groups (76-character lines) as they come."""

    open = b'   <DATA>\n    <BINARY2>\n     <STREAM encoding="base64">\n'
    _GROUP = 57  # bytes per base64 line

    def __init__(self):
        self._carry = b""

    def rows(self, batch, datatypes: list[str], *, fixed: bool) -> tuple[list[str], bytes]:
        """The datatypes used and the base64 lines of one batch's rows (``fixed``: write text
        columns as the ``datatypes`` say, whatever they hold)."""
        cells, masks, used = [], [], []
        for i, datatype in enumerate(datatypes):
            cell, mask, datatype = _binary2_cells(batch.column(i), datatype, fixed=fixed)
            cells.append(cell)
            masks.append(mask)
            used.append(datatype)
        if not batch.num_rows or not cells:
            return used, b""
        flags = np.packbits(np.stack(masks, axis=1), axis=1, bitorder="big")
        rows = pc.binary_join_element_wise(
            _fixed_binary(flags.view(f"S{flags.shape[1]}").ravel()),
            *cells,
            pa.scalar(b"", pa.binary()),
        )
        offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[
            rows.offset : rows.offset + len(rows) + 1
        ]
        payload = self._carry + rows.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
        cut = len(payload) - len(payload) % self._GROUP
        self._carry = payload[cut:]
        return used, base64.encodebytes(payload[:cut])

    def close(self) -> bytes:
        tail = base64.encodebytes(self._carry) if self._carry else b""
        self._carry = b""
        return tail + b"     </STREAM>\n    </BINARY2>\n   </DATA>\n"


def _xml_id(name: str, index: int) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if not clean or not (clean[0].isalpha() or clean[0] == "_"):
        clean = f"c_{clean}"
    return f"{clean}_{index}" if clean != name else clean


def votable_document(
    table_name: str,
    fields: Iterable[str],
    rows: Iterable[str],
    *,
    standard_id: str,
    overflow: str | None = None,
    resources: Iterable[str] = (),
) -> bytes:
    """A small VOTable 1.4 answer whose FIELD and TR elements are already written (the SIA
    and DataLink answers, a few rows each).

    Parameters
    ----------
    table_name : str
        Name of the TABLE, in the ``results`` RESOURCE.
    fields : iterable of str
        FIELD elements.
    rows : iterable of str
        TR elements, cells in the fields' order.
    standard_id : str
        The IVOA standard answered (an INFO beside ``QUERY_STATUS=OK``).
    overflow : str, optional
        Rows were cut: adds ``QUERY_STATUS=OVERFLOW`` after the table, with this text.
    resources : iterable of str
        Lines after the results RESOURCE (service descriptors).
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">',
        '<RESOURCE type="results">',
        '<INFO name="QUERY_STATUS" value="OK"/>',
        f'<INFO name="standardID" value={_attr(standard_id)}/>',
        f"<TABLE name={_attr(table_name)}>",
        *fields,
        "<DATA><TABLEDATA>",
        *rows,
        "</TABLEDATA></DATA>",
        "</TABLE>",
    ]
    if overflow is not None:
        lines.append(f'<INFO name="QUERY_STATUS" value="OVERFLOW">{escape(overflow)}</INFO>')
    lines += ["</RESOURCE>", *resources, "</VOTABLE>"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def error_votable(message: str) -> bytes:
    """The DALI error document: ``INFO name="QUERY_STATUS" value="ERROR"`` with the message."""
    text = escape(" ".join(str(message).split()) or "unknown error")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '  <RESOURCE type="results">\n'
        f'    <INFO name="QUERY_STATUS" value="ERROR">{text}</INFO>\n'
        "  </RESOURCE>\n"
        "</VOTABLE>\n"
    ).encode()


def astropy_to_arrow(table, *, source: str = "table") -> tuple[pa.Table, list[ColumnInfo]]:
    """Convert an astropy Table to Arrow, keeping units and descriptions.

    Multidimensional and object columns that have no scalar VOTable type are dropped (with a
    warning naming them). Masked values become nulls. Column names are kept as they are.

    Returns
    -------
    (pyarrow.Table, list of ColumnInfo)
    """
    arrays, names, infos = [], [], []
    for name in table.colnames:
        col = table[name]
        data = np.asarray(col)
        if data.dtype.byteorder not in ("=", "|"):
            data = data.astype(data.dtype.newbyteorder("="))  # FITS is big-endian
        if data.ndim != 1:
            warnings.warn(
                f"{source}: column {name!r} has shape {data.shape[1:]} per row and is skipped "
                "(only scalar columns can be served)",
                stacklevel=2,
            )
            continue
        mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), dtype=bool)
        if mask.ndim != 1:
            mask = np.zeros(len(col), bool)
        if data.dtype.kind == "S":
            values = np.char.decode(data, "utf-8", errors="replace")
            arr = pa.array(np.char.rstrip(values).astype(object), pa.string(), mask=mask)
        elif data.dtype.kind == "U":
            arr = pa.array(data.astype(object), pa.string(), mask=mask)
        elif data.dtype.kind == "O":
            try:
                arr = pa.array(
                    [
                        None if m else (v.decode() if isinstance(v, bytes) else v)
                        for v, m in zip(data, mask)
                    ]
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                warnings.warn(
                    f"{source}: column {name!r} is not scalar and is skipped", stacklevel=2
                )
                continue
            if arrow_datatype(arr.type) is None:
                warnings.warn(
                    f"{source}: column {name!r} is not scalar and is skipped", stacklevel=2
                )
                continue
        elif data.dtype.kind == "M":
            arr = pa.array(data.astype("datetime64[us]"), mask=mask)
        elif data.dtype.kind in "biuf":
            arr = pa.array(data, mask=mask if mask.any() else None)
        else:
            warnings.warn(
                f"{source}: column {name!r} of dtype {data.dtype} is skipped", stacklevel=2
            )
            continue
        datatype = arrow_datatype(arr.type)
        if datatype is None:
            continue
        unit = "" if col.unit is None else col.unit.to_string("vounit")
        meta = getattr(col, "meta", {}) or {}
        infos.append(
            ColumnInfo(
                name=name,
                datatype=datatype,
                arraysize="*" if datatype == "char" else None,
                unit=unit,
                ucd=str(meta.get("ucd", "") or ""),
                description=str(col.description or ""),
            )
        )
        arrays.append(arr)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names), infos


def read_votable(
    data: bytes,
    *,
    source: str = "upload",
    limit_bytes: int | None = None,
    memory_limit_bytes: int | None = None,
    deadline: Deadline | None = None,
) -> tuple[pa.Table, list[ColumnInfo]]:
    """Parse the first table of a VOTable document.

    The document first passes :func:`~skysense.vo.upload_guard.check_votable` (no external
    streams, DTDs or entities; bounded nesting, element counts, memory and decompression), and
    a BINARY/BINARY2 stream must end exactly after its last row.

    Parameters
    ----------
    data : bytes
        The document (TABLEDATA, BINARY or BINARY2 serialisation; gzip, bzip2 or xz
        compressed or not).
    source : str
        Name used in error messages.
    limit_bytes : int, optional
        Largest decompressed document (None: no limit, for an operator's own files).
    memory_limit_bytes : int, optional
        Largest memory the table arrays may take as declared (None: no limit).
    deadline : skysense.vo.limits.Deadline, optional
        Checked while the document is scanned and parsed (every read of astropy's XML
        parser, every 4,096 rows of the stream check).

    Raises
    ------
    InputError
        When the document is refused by the guard, is not a VOTable with a table, has FIELDs
        without a name or with the same name, or holds a truncated binary stream.
    QueryError
        From ``deadline`` once it has passed.
    """
    from astropy.io.votable import parse

    from skysense.vo.upload_guard import check_votable

    checked = check_votable(
        data,
        limit_bytes=limit_bytes,
        memory_limit_bytes=memory_limit_bytes,
        source=source,
        deadline=deadline,
    )
    stream = io.BytesIO(checked.data) if deadline is None else _TimedBytes(checked.data, deadline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # table_number=0: astropy parses the first TABLE in document order, the one whose
            # stream the guard kept; the others are skipped.
            vot = parse(stream, verify="ignore", table_number=0)
            element = vot.get_first_table()
            first = checked.first_table
            if first is not None and first.serialisation in ("BINARY", "BINARY2"):
                _check_binary_stream(element, first, source, deadline)
            table = element.to_table(use_names_over_ids=True)
        except (InputError, QueryError):
            raise
        except Exception as exc:
            raise InputError(f"not a readable VOTable: {_first_line(exc)}", path=source) from None
        ucds = {f.name: f.ucd for f in element.fields}
        timestamps = {
            f.name for f in element.fields if (f.xtype or "").lower().endswith("timestamp")
        }
        arrow, infos = astropy_to_arrow(table, source=source)
    for i, info in enumerate(infos):
        if info.name in timestamps and info.datatype == "char":
            text = pc.replace_substring_regex(arrow.column(info.name), r"Z$", "")
            try:
                stamps = pc.cast(text, pa.timestamp("us"))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue  # not ISO 8601: keep the text
            arrow = arrow.set_column(i, info.name, stamps)
            infos[i] = ColumnInfo(
                name=info.name,
                datatype="timestamp",
                unit=info.unit,
                ucd=info.ucd,
                description=info.description,
            )
    infos = [
        ColumnInfo(
            name=i.name,
            datatype=i.datatype,
            arraysize=i.arraysize,
            unit=i.unit,
            ucd=ucds.get(i.name) or i.ucd,
            description=i.description,
        )
        for i in infos
    ]
    return arrow, infos


class _TimedBytes(io.BytesIO):
    """The document as astropy's XML parser reads it, checking a deadline at every read (the
    parser pulls the document in chunks as it goes)."""

    def __init__(self, data: bytes, deadline: Deadline):
        super().__init__(data)
        self._deadline = deadline

    def read(self, size: int | None = -1) -> bytes:
        self._deadline.check("reading the upload")
        return super().read(size)


def _check_binary_stream(element, first, source: str, deadline: Deadline | None) -> None:
    """Refuse a BINARY/BINARY2 stream that does not end right after the rows astropy kept.

    astropy's reader stops at the first short read and keeps the whole rows before it, so a
    stream cut inside a row (or inside the first) reads as a shorter table. The rows it kept
    are walked again with the same converters to count the bytes they used: once for a table
    of fixed-width cells (every row has the width of the first), row by row otherwise.
    """
    stream = first.stream or b""
    fields = element.all_fields
    nrows = len(element.array)
    ser = first.serialisation
    if first.nrows is not None and first.nrows != nrows:
        raise InputError(
            f"the TABLE on line {first.line} declares nrows={first.nrows} but its {ser} "
            f"stream holds {nrows} rows: truncated?",
            path=source,
        )
    if not fields:
        return
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = stream[pos : pos + n]
        if len(chunk) != n:
            raise EOFError
        pos += n
        return chunk

    mask_bytes = (len(fields) + 7) // 8 if ser == "BINARY2" else 0
    parsers = [f.converter.binparse for f in fields]
    fixed = all(not (f.arraysize or "").endswith("*") for f in fields)
    try:
        for row in range(min(nrows, 1) if fixed else nrows):
            if deadline is not None and row % 4096 == 0:
                deadline.check("reading the upload")
            read(mask_bytes)
            for binparse in parsers:
                binparse(read)
    except EOFError:  # pragma: no cover - astropy read these rows from the same bytes
        pos = len(stream) + 1
    used = pos * nrows if fixed else pos
    if used != len(stream):
        raise InputError(
            f"the {ser} stream of the TABLE on line {first.line} ends inside row {nrows} "
            f"({len(stream) - used} bytes after the last whole row): truncated?",
            path=source,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
