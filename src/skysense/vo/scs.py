"""Simple Cone Search 1.03 for every published table with positions.

``GET /scs/{schema}.{table}?RA=&DEC=&SR=[&VERB=]`` (POST form too) answers a VOTable whose
FIELDs carry the UCD1 names SCS 1.03 requires exactly once: ``ID_MAIN`` (the table's main
identifier), ``POS_EQ_RA_MAIN`` and ``POS_EQ_DEC_MAIN`` (its RA/Dec columns); the other columns
keep their (UCD1+) metadata. ``VERB`` selects the columns: 1 the three required ones,
2 (default) the principal columns, 3 every column.

The answer is that of the ADQL query ``1=CONTAINS(POINT(ra, dec), CIRCLE(RA, DEC, SR))``
through the shared TAP runner (the table's HEALPix or Q3C index, the server's limits). On
DuckDB, tables with a HEALPix column take a shorter road to the same rows: the SQL asks for the
cone's HEALPix ranges only (a few ``BETWEEN``), and the translation's exact test (the same
haversine arithmetic in float64) runs on the fetched rows in NumPy. A small cone's SQL with up
to 48 ranges and the trigonometry took DuckDB some 2.4 ms of CPU against 1.2 ms this way, plus
the 0.5 ms of ADQL translation saved; on a busy machine, where a request that outlasts its
time slice waits for every other runnable process, that is the difference between a few and a
few tens of milliseconds. On a table published field by field, whose fields' HEALPix index ranges
interleave, the SQL also names the cone's blocks (:class:`skysense.vo.hpx.BlockIndex`), so
DuckDB reads the row groups of the field under the cone, not one of every field whose index
range spans it. Errors are the SCS error document: a VOTable with
``<INFO name="Error" value="...">`` under the root (HTTP 200, so clients such as pyvo report
the message as a query error).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

import anyio.to_thread
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from skysense.errors import InputError, SkysenseError
from skysense.vo import hpx
from skysense.vo._dalparams import base_url, read_params
from skysense.vo.backends import quote_ident
from skysense.vo.schema import ColumnInfo, TableInfo, id_column
from skysense.vo.sql.common import block_filter
from skysense.vo.tap import column_infos
from skysense.vo.votable import tabledata_rows

__all__ = [
    "routes",
    "cone_search_sync",
    "cone_rows",
    "cone_hpx_sql",
    "cone_adql",
    "parse_cone",
    "parse_verb",
    "scs_columns",
    "datalink_descriptor",
    "id_column",
    "scs_error_votable",
    "tabledata_votable",
    "MAX_SR_DEG",
    "SCS_MIME",
]

#: Largest search radius accepted (deg); bigger cones belong to TAP.
MAX_SR_DEG = 10.0
SCS_MIME = "text/xml"  # SCS 1.03 section 2: "text/xml" (VOTable)


def parse_cone(ra: str | None, dec: str | None, sr: str | None) -> tuple[float, float, float]:
    """Validate the SCS ``RA``, ``DEC``, ``SR`` values (decimal degrees, ICRS).

    Returns
    -------
    ra_deg, dec_deg, sr_deg : float
        ``ra_deg`` wrapped into [0, 360).

    Raises
    ------
    InputError
        Missing or non-numeric values, |DEC| > 90, SR < 0 or SR > :data:`MAX_SR_DEG`.
    """
    values = []
    for name, text in (("RA", ra), ("DEC", dec), ("SR", sr)):
        if text is None or not str(text).strip():
            raise InputError(f"parameter {name} is missing (RA, DEC and SR are required)")
        try:
            value = float(text)
        except ValueError:
            raise InputError(
                f"parameter {name}={text!r} is not a number (decimal degrees)"
            ) from None
        if not math.isfinite(value):
            raise InputError(f"parameter {name}={text!r} must be finite")
        values.append(value)
    ra_deg, dec_deg, sr_deg = values
    if not -90.0 <= dec_deg <= 90.0:
        raise InputError(f"DEC={dec_deg:g} is outside [-90, 90] degrees")
    if sr_deg < 0:
        raise InputError(f"SR={sr_deg:g} must not be negative")
    if sr_deg > MAX_SR_DEG:
        raise InputError(
            f"SR={sr_deg:g} exceeds the maximum search radius of {MAX_SR_DEG:g} degrees; "
            "use the TAP service for larger regions"
        )
    return ra_deg % 360.0, dec_deg, sr_deg


def parse_verb(text: str | None) -> int:
    """The ``VERB`` level (1, 2 or 3; default 2)."""
    if text is None or not text.strip():
        return 2
    if text.strip() not in ("1", "2", "3"):
        raise InputError(f"VERB={text!r} must be 1, 2 or 3")
    return int(text)


def scs_columns(table: TableInfo, verb: int) -> list[str]:
    """Column names returned at a ``VERB`` level, in table order, the required ones first.

    1: ID, RA, Dec; 2: those plus the principal columns (all columns when none is flagged
    principal); 3: every public column.
    """
    required = [id_column(table), table.ra, table.dec]
    public = [c for c in table.columns.values() if not c.name.startswith("_")]
    if verb == 1:
        rest: list[str] = []
    elif verb == 2:
        principal = [c.name for c in public if c.principal]
        rest = principal or [c.name for c in public]
    else:
        rest = [c.name for c in public]
    return required + [n for n in rest if n not in required]


def _ident(name: str) -> str:
    # Delimited identifiers are exact-case; published names are lower-case regular ones.
    return '"' + name.replace('"', '""') + '"'


def cone_adql(
    table: TableInfo, columns: list[str], ra_deg: float, dec_deg: float, sr_deg: float
) -> str:
    """The ADQL of one cone search (``CONTAINS`` so the HEALPix index is used)."""
    select = ", ".join(_ident(c) for c in columns)
    point = f"POINT('ICRS', {_ident(table.ra)}, {_ident(table.dec)})"
    # float(): repr of a NumPy scalar is "np.float64(...)", not a number.
    circle = f"CIRCLE('ICRS', {float(ra_deg)!r}, {float(dec_deg)!r}, {float(sr_deg)!r})"
    return f"SELECT {select} FROM {table.name} WHERE 1=CONTAINS({point}, {circle})"


def scs_error_votable(message: str) -> bytes:
    """The SCS 1.03 error document: ``<INFO name="Error">`` under the root ``VOTABLE``."""
    text = " ".join(str(message).split()) or "unknown error"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        f'  <INFO ID="Error" name="Error" value={quoteattr(text)}/>\n'
        "  <RESOURCE>\n"
        f'    <INFO name="QUERY_STATUS" value="ERROR">{_escape(text)}</INFO>\n'
        "  </RESOURCE>\n"
        "</VOTABLE>\n"
    ).encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cells(arr: pa.ChunkedArray, datatype: str) -> pa.Array:
    """TABLEDATA cell texts of one column (vectorised in Arrow; nulls become empty cells)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        text = pc.cast(arr, pa.string())
        # Arrow spells NaN and infinities "nan", "inf", "-inf"; VOTable wants NaN, +Inf, -Inf.
        # The rewrite costs three passes, so only columns holding such values pay for it.
        if pc.any(pc.invert(pc.is_finite(arr))).as_py():
            text = pc.replace_substring_regex(text, "^nan$", "NaN")
            text = pc.replace_substring_regex(text, "^inf$", "+Inf")
            text = pc.replace_substring_regex(text, "^-inf$", "-Inf")
    elif pa.types.is_timestamp(arr.type):
        text = pc.replace_substring(pc.cast(arr, pa.string()), " ", "T")
    else:
        text = pc.cast(arr, pa.string())
    if datatype in ("char", "unicodeChar") or pa.types.is_string(arr.type):
        for old, new in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            text = pc.replace_substring(text, old, new)
    return pc.fill_null(text, "") if text.null_count else text


def tabledata_votable(
    table: pa.Table,
    columns: list[ColumnInfo],
    *,
    overflow: bool = False,
    description: str = "",
    resources: Sequence[str] = (),
) -> bytes:
    """A query result as a VOTable 1.4 TABLEDATA document, built with Arrow kernels.

    The same document structure as :func:`skysense.vo.votable.result_votable` (``RESOURCE
    type="results"``, ``QUERY_STATUS`` OK, and OVERFLOW after the table when truncated) but
    an order of magnitude faster for cone-search sized results: every cell is formatted by
    vectorised Arrow casts and the rows are joined in C++, instead of astropy's per-cell
    Python writer. Floats keep their shortest round-trip text; nulls are empty cells
    (VOTable 1.3+).

    Parameters
    ----------
    table : pyarrow.Table
        The rows, one column per entry of ``columns``.
    columns : list of ColumnInfo
        FIELD metadata (name, datatype, arraysize, unit, ucd, description).
    overflow : bool
        Append the ``QUERY_STATUS=OVERFLOW`` INFO.
    description : str
        Resource description.
    resources : sequence of str
        XML of further RESOURCE elements (service descriptors) after the results.
    """
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
        '<RESOURCE type="results">',
    ]
    if description:
        head.append(f"<DESCRIPTION>{_escape(description)}</DESCRIPTION>")
    head += ['<INFO name="QUERY_STATUS" value="OK"/>', "<TABLE>"]
    seen: set[str] = set()
    for i, col in enumerate(columns):
        datatype = col.datatype
        attrs = [f"name={quoteattr(col.name)}"]
        ident = col.name if col.name.isidentifier() and col.name not in seen else f"c{i}"
        seen.add(ident)
        attrs.append(f'ID="{ident}"')
        if datatype == "timestamp":
            attrs += ['datatype="char"', 'arraysize="*"', 'xtype="timestamp"']
        elif datatype in ("char", "unicodeChar"):
            attrs += [f'datatype="{datatype}"', 'arraysize="*"']
        else:
            attrs.append(f'datatype="{datatype}"')
        if col.unit:
            attrs.append(f"unit={quoteattr(col.unit)}")
        if col.ucd:
            attrs.append(f"ucd={quoteattr(col.ucd)}")
        inner = f"<DESCRIPTION>{_escape(col.description)}</DESCRIPTION>" if col.description else ""
        head.append(f"<FIELD {' '.join(attrs)}>{inner}</FIELD>")
    head.append("<DATA><TABLEDATA>")
    parts = ["\n".join(head).encode("utf-8"), b"\n"]
    if table.num_rows and table.num_columns:
        cells = [_cells(table.column(i), c.datatype) for i, c in enumerate(columns)]
        parts.append(tabledata_rows(cells))
    tail = ["</TABLEDATA></DATA>", "</TABLE>"]
    if overflow:
        tail.append('<INFO name="QUERY_STATUS" value="OVERFLOW">result truncated at MAXREC</INFO>')
    tail += ["</RESOURCE>", *resources, "</VOTABLE>", ""]
    parts.append("\n".join(tail).encode("utf-8"))
    return b"".join(parts)


def _scs_infos(columns, table: TableInfo) -> list[ColumnInfo]:
    """Output FIELD metadata with the SCS 1.03 UCD1 names on ID, RA and Dec."""
    ucd1 = {id_column(table): "ID_MAIN", table.ra: "POS_EQ_RA_MAIN", table.dec: "POS_EQ_DEC_MAIN"}
    out = []
    for info in column_infos(columns):
        ucd = ucd1.pop(info.name, None)
        if ucd is None and info.ucd.upper() in ("ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"):
            ucd = ""  # these must occur exactly once
        out.append(info if ucd is None else dataclasses.replace(info, ucd=ucd))
    return out


def _find_table(state, name: str) -> TableInfo:
    catalog = state.backend.catalog()
    table = catalog.tables.get(name.lower())
    if table is None or name.lower().startswith("tap_schema."):
        raise InputError(f"no published table {name!r}")
    if not table.ra or not table.dec:
        raise InputError(f"table {name!r} has no RA/Dec columns; it cannot be cone-searched")
    return table


def datalink_descriptor(root: str, table: TableInfo, id_ref: str) -> str:
    """The DataLink service descriptor of cone-search rows (``ID`` bound to the id FIELD).

    The rows' identifiers are bare values of the table's identifier column, so the
    descriptor also sends ``TABLE`` (see :func:`skysense.vo.datalink.resolve_links`).
    """
    from skysense.vo.sia import DATALINK_PATH, DATALINK_STANDARD_ID

    return "\n".join(
        [
            '<RESOURCE type="meta" utype="adhoc:service" name="datalink" ID="datalink">',
            f"<DESCRIPTION>DataLink: links of each source of {_escape(table.name)}</DESCRIPTION>",
            '<PARAM name="standardID" datatype="char" arraysize="*" '
            f'value="{DATALINK_STANDARD_ID}"/>',
            '<PARAM name="accessURL" datatype="char" arraysize="*" '
            f"value={quoteattr(root + DATALINK_PATH)}/>",
            '<GROUP name="inputParams">',
            '<PARAM name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.main" '
            f'ref={quoteattr(id_ref)} value=""/>',
            f'<PARAM name="TABLE" datatype="char" arraysize="*" value={quoteattr(table.name)}/>',
            "</GROUP>",
            "</RESOURCE>",
        ]
    )


#: At most this many ``BETWEEN`` ranges in the SQL of a DuckDB cone (closing the smallest gaps).
_SQL_RANGES = 4


@dataclasses.dataclass(frozen=True)
class _Output:
    """An output column as the ADQL translation names it (``name``, ``info``)."""

    name: str
    info: ColumnInfo


def cone_hpx_sql(backend, table: TableInfo, columns: list[str], ra_deg, dec_deg, sr_deg) -> str:
    """The SQL of a DuckDB cone on a table with a HEALPix column: the rows of the cone's
    HEALPix ranges (a superset of the cone; :func:`cone_rows` applies the exact test).

    Parameters
    ----------
    backend : Backend
        Its :meth:`~skysense.vo.backends.protocol.Backend.hpx_blocks` says whether the table
        has blocks.
    table : TableInfo
    columns : list of str
        ADQL column names to select.
    ra_deg, dec_deg, sr_deg : float, deg
        The cone.
    """
    fine = hpx.cone_ranges(ra_deg, dec_deg, sr_deg, table.hpx_order)
    where = _between(table.hpx_column, hpx.cap_ranges(fine, _SQL_RANGES))
    blocks = backend.hpx_blocks(table.name)
    if blocks is not None:
        # A table published field by field: only the row groups of the blocks holding rows
        # in the cone are read (see skysense.vo.hpx.BlockIndex; the ADQL translation adds
        # the same filter).
        where = f"{block_filter(quote_ident(hpx.BLOCK_COLUMN), blocks, fine)} AND ({where})"
    select = ", ".join(quote_ident(table.columns[c].name) for c in columns)
    source = table.physical
    parts = getattr(backend, "parquet_parts", None)
    index = parts(table.name) if parts is not None else None
    if index is not None:
        # A table served over Parquet files (skysense.vo.parts): the files under the cone.
        source = f"({index.from_sql(index.touched(fine))}) AS _cone_files"
    return f"SELECT {select} FROM {source} WHERE {where}"


def _cone_rows_hpx(
    state, table: TableInfo, columns: list[str], ra_deg, dec_deg, sr_deg, maxrec: int
) -> tuple[pa.Table, bool]:
    """The rows of ``1=CONTAINS(POINT(ra, dec), CIRCLE(...))`` on a table with a HEALPix
    column, in table order, at most ``maxrec`` (and whether there were more).

    The database returns the rows of the cone's HEALPix ranges (which cover the cone); the
    exact test is the ADQL translation's (:mod:`skysense.vo.sql.geometry`), with the same
    float64 operations in the same order, so the rows are the TAP query's.
    """
    sql = cone_hpx_sql(state.backend, table, columns, ra_deg, dec_deg, sr_deg)
    # The translation's constants: the centre in radians, cos(dec0) and sin^2(r/2).
    ra0, dec0 = math.radians(float(ra_deg)), math.radians(float(dec_deg))
    cos_dec0 = math.cos(dec0)
    bound = math.sin(math.radians(min(float(sr_deg), 180.0)) / 2) ** 2
    i_ra, i_dec = columns.index(table.ra), columns.index(table.dec)
    kept, n = [], 0
    with state.backend.query_stream(sql, timeout_s=state.settings.query_timeout_s) as stream:
        for batch in stream:
            a = np.radians(_float64(batch.column(i_ra)))
            d = np.radians(_float64(batch.column(i_dec)))
            hav = np.sin((d - dec0) / 2) ** 2 + np.cos(d) * cos_dec0 * np.sin((a - ra0) / 2) ** 2
            inside = batch.filter(pa.array(hav <= bound))
            kept.append(inside)
            n += inside.num_rows
            if n > maxrec:
                break
    rows = pa.Table.from_batches(kept, schema=stream.schema)
    if rows.num_rows > maxrec:
        return rows.slice(0, maxrec), True
    return rows, False


def _between(column: str, ranges: np.ndarray) -> str:
    """``column BETWEEN lo AND hi OR ...`` of inclusive integer ranges."""
    name = quote_ident(column)
    return " OR ".join(f"{name} BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in ranges)


def _float64(arr) -> np.ndarray:
    """Values as float64, NaN for nulls."""
    return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)


def cone_rows(
    state,
    table: TableInfo,
    columns: list[str],
    ra_deg: float,
    dec_deg: float,
    sr_deg: float,
    maxrec: int,
    *,
    adql: bool = False,
) -> tuple[pa.Table, list[ColumnInfo], bool]:
    """The rows of one cone search, their SCS FIELD metadata, and whether MAXREC cut them.

    Parameters
    ----------
    state : object
        With ``backend`` and ``settings``.
    table : TableInfo
        A table with RA/Dec columns.
    columns : list of str
        ADQL column names (:func:`scs_columns`).
    ra_deg, dec_deg, sr_deg : float, deg
        The cone (:func:`parse_cone`).
    maxrec : int
        At most this many rows.
    adql : bool
        Always run the ADQL query (the reference of the DuckDB HEALPix road, which otherwise
        serves DuckDB tables with a HEALPix column; see the module docstring).
    """
    if not adql and state.backend.dialect == "duckdb" and table.hpx_column is not None:
        rows, overflow = _cone_rows_hpx(state, table, columns, ra_deg, dec_deg, sr_deg, maxrec)
        return rows, _scs_infos([_Output(c, table.columns[c]) for c in columns], table), overflow
    from skysense.vo.tap import run_adql_sync

    text = cone_adql(table, columns, ra_deg, dec_deg, sr_deg)
    result = run_adql_sync(state, text, maxrec=maxrec)
    return result.table, _scs_infos(result.columns, table), result.overflow


def cone_search_sync(
    state,
    table_name: str,
    ra: str | None,
    dec: str | None,
    sr: str | None,
    verb: str | None = None,
    *,
    root: str | None = None,
) -> bytes:
    """Run one cone search and return the VOTable bytes (blocking; errors raise).

    Parameters
    ----------
    state : object
        With ``backend`` and ``settings`` (``request.app.state``).
    table_name : str
        ADQL name ``schema.table``.
    ra, dec, sr, verb : str
        The raw SCS parameter values.
    root : str, optional
        Public root URL of the service: when given, the answer carries a DataLink service
        descriptor for its rows.

    Raises
    ------
    SkysenseError
        Bad parameters, unknown table, query failure.
    """
    ra_deg, dec_deg, sr_deg = parse_cone(ra, dec, sr)
    level = parse_verb(verb)
    table = _find_table(state, table_name)
    columns = scs_columns(table, level)
    maxrec = min(state.settings.maxrec_default, state.settings.maxrec_hard)
    rows, infos, overflow = cone_rows(state, table, columns, ra_deg, dec_deg, sr_deg, maxrec)
    resources = []
    if root is not None:
        # The id column comes first; tabledata_votable gives it this XML ID.
        first = infos[0].name
        resources.append(datalink_descriptor(root, table, first if first.isidentifier() else "c0"))
    return tabledata_votable(
        rows,
        infos,
        overflow=overflow,
        description=f"Cone search in {table.name}: RA={ra_deg:g} DEC={dec_deg:g} SR={sr_deg:g}",
        resources=resources,
    )


async def scs_endpoint(request: Request) -> Response:
    """``/scs/{table}``: Simple Cone Search 1.03 on one published table."""
    state = request.app.state
    name = request.path_params["table"]
    try:
        params = await read_params(request)
        body = await anyio.to_thread.run_sync(
            lambda: cone_search_sync(
                state,
                name,
                params.get("RA"),
                params.get("DEC"),
                params.get("SR"),
                params.get("VERB"),
                root=base_url(request),
            )
        )
    except SkysenseError as exc:
        return Response(scs_error_votable(str(exc)), media_type=SCS_MIME)
    return Response(body, media_type=SCS_MIME)


def routes() -> list[Route]:
    """The Starlette routes of the cone-search services."""
    return [Route("/scs/{table}", scs_endpoint, methods=["GET", "POST"], name="scs")]
