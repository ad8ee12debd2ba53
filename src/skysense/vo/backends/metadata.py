"""What both backends store beside the data, written once: the ``TAP_SCHEMA`` tables and
their rows, the private ``_skysense_*`` tables, the SQL and Arrow types of VOTable datatypes,
and the :class:`~skysense.vo.schema.SchemaCatalog` built from those rows.

The DDL and row helpers take the parameter marker (``?`` for DuckDB, ``%s`` for psycopg) and
an ``executemany`` callable, so one text serves both dialects.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from skysense.errors import InputError
from skysense.vo.backends.protocol import TableSpec, quote_ident
from skysense.vo.reserved import plain_column_name, tap_column_name
from skysense.vo.schema import TAP_SCHEMA_TABLES, ColumnInfo, SchemaCatalog, TableInfo

__all__ = [
    "ForeignKey",
    "TAP_SCHEMA_KEYS",
    "TAP_SCHEMA_TABLES",
    "arrow_type",
    "cast_to_spec",
    "create_metadata_tables",
    "ddl_columns",
    "OrderCheck",
    "delete_table_metadata",
    "read_catalog",
    "split_adql_name",
    "table_rows",
    "write_table_metadata",
]

#: VOTable datatype -> SQL type (both dialects accept these spellings).
_SQL_TYPES = {
    "boolean": "BOOLEAN",
    "short": "SMALLINT",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE PRECISION",
    "char": "TEXT",
    "unicodeChar": "TEXT",
    "timestamp": "TIMESTAMP",
}

_ARROW_TYPES = {
    "boolean": pa.bool_(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "char": pa.string(),
    "unicodeChar": pa.string(),
    "timestamp": pa.timestamp("us"),
}


def arrow_type(datatype: str) -> pa.DataType:
    """Arrow type holding a VOTable ``datatype`` (as used in ``ColumnInfo.datatype``)."""
    try:
        return _ARROW_TYPES[datatype]
    except KeyError:
        raise InputError(f"unsupported column datatype {datatype!r}") from None


_TS = quote_ident("TAP_SCHEMA")
_TAP_SCHEMA_DESCRIPTION = "Metadata of the tables and columns served by this TAP service"

_PRIVATE_DDL = (
    """CREATE TABLE IF NOT EXISTS _skysense_tables (
        table_name TEXT PRIMARY KEY, physical TEXT, ra TEXT, dec TEXT, hpx_column TEXT,
        hpx_order INTEGER, q3c BOOLEAN, n_rows BIGINT, published TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS _skysense_records (
        kind TEXT, key TEXT, doc TEXT, PRIMARY KEY (kind, key))""",
    """CREATE TABLE IF NOT EXISTS _uws_jobs (
        job_id TEXT PRIMARY KEY, phase TEXT, owner TEXT, creation_time TIMESTAMP,
        destruction_time TIMESTAMP, doc TEXT)""",
)


def _flag(value) -> bool:
    return bool(value) and value not in (0, "0", "false", "False")


def _column_rows(table_name: str, columns: Sequence[ColumnInfo], *, std: bool) -> list[tuple]:
    rows = []
    for index, col in enumerate(columns):
        xtype = "timestamp" if col.datatype == "timestamp" else None
        datatype = "char" if col.datatype == "timestamp" else col.datatype
        arraysize = col.arraysize
        if col.datatype == "timestamp" and arraysize is None:
            arraysize = "*"
        rows.append(
            (
                table_name,
                tap_column_name(col.name),
                datatype,
                arraysize,
                xtype,
                None,
                col.description or None,
                None,
                col.unit or None,
                col.ucd or None,
                int(bool(col.indexed)),
                int(bool(col.principal)),
                int(std),
                index,
            )
        )
    return rows


def _catalog_from_rows(
    tables: list[tuple], columns: list[tuple], private: dict[str, tuple]
) -> SchemaCatalog:
    """Build the :class:`SchemaCatalog` from TAP_SCHEMA rows and private metadata."""
    cols_by_table: dict[str, dict[str, ColumnInfo]] = {}
    for (
        table_name,
        column_name,
        datatype,
        arraysize,
        xtype,
        unit,
        ucd,
        description,
        indexed,
        principal,
    ) in columns:
        if xtype == "timestamp":
            datatype = "timestamp"
            arraysize = None
        column_name = plain_column_name(column_name)
        info = ColumnInfo(
            name=column_name,
            datatype=datatype,
            arraysize=arraysize,
            unit=unit or "",
            ucd=ucd or "",
            description=description or "",
            indexed=_flag(indexed),
            principal=_flag(principal),
        )
        cols_by_table.setdefault(table_name.lower(), {})[column_name.lower()] = info
    out: dict[str, TableInfo] = {}
    for table_name, schema_name, table_type, description in tables:
        key = table_name.lower()
        extra = private.get(key)
        if schema_name.upper() == "TAP_SCHEMA":
            physical = f"{_TS}.{quote_ident(table_name.split('.', 1)[1])}"
            ra = dec = hpx_column = None
            hpx_order, q3c, n_rows = 14, False, None
        elif extra is None:
            continue  # a table half-registered by a crashed publish; not queryable
        else:
            physical, ra, dec, hpx_column, hpx_order, q3c, n_rows = extra
        out[key] = TableInfo(
            name=key,
            physical=physical,
            columns=cols_by_table.get(key, {}),
            description=description or "",
            ra=ra,
            dec=dec,
            hpx_column=hpx_column,
            hpx_order=int(hpx_order if hpx_order is not None else 14),
            q3c=bool(q3c),
            n_rows=None if n_rows is None else int(n_rows),
            kind=table_type or "table",
        )
    return SchemaCatalog(tables=out)


_CATALOG_SQL_TABLES = f"SELECT table_name, schema_name, table_type, description FROM {_TS}.tables"
_CATALOG_SQL_COLUMNS = (
    "SELECT table_name, column_name, datatype, arraysize, xtype, unit, ucd, description, "
    f"indexed, principal FROM {_TS}.columns ORDER BY table_name, column_index"
)
_CATALOG_SQL_PRIVATE = (
    "SELECT table_name, physical, ra, dec, hpx_column, hpx_order, q3c, n_rows FROM _skysense_tables"
)


def read_catalog(read_many) -> SchemaCatalog:
    """The :class:`SchemaCatalog` stored in the database.

    ``read_many(statements)`` returns the rows of each parameterless SQL statement, read on
    one connection.
    """
    tables, columns, private = read_many(
        (_CATALOG_SQL_TABLES, _CATALOG_SQL_COLUMNS, _CATALOG_SQL_PRIVATE)
    )
    return _catalog_from_rows(tables, columns, {r[0]: r[1:] for r in private})


def cast_to_spec(spec: TableSpec, data: pa.Table) -> pa.Table:
    """``data`` restricted to the spec's columns (+ hpx) with the Arrow types of their datatypes.

    Raises
    ------
    InputError
        A column is missing or cannot be stored as its datatype.
    """
    arrays, names = [], []
    for col in spec.columns:
        if col.name not in data.column_names:
            raise InputError(f"data has no column {col.name!r}", column=col.name)
        arr = data.column(col.name)
        target = arrow_type(col.datatype)
        if not arr.type.equals(target):
            try:
                arr = pc.cast(arr, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(
                    f"cannot store as {col.datatype}: {exc}", column=col.name
                ) from None
        arrays.append(arr)
        names.append(col.name)
    if spec.hpx_column is not None:
        if spec.hpx_column not in data.column_names:
            raise InputError("data lacks the HEALPix column", column=spec.hpx_column)
        arrays.append(pc.cast(data.column(spec.hpx_column), pa.int64()))
        names.append(spec.hpx_column)
    return pa.Table.from_arrays(arrays, names=names)


class OrderCheck:
    """Whether Arrow batches, in the order seen, are sorted by ``column`` (None: no column,
    nothing to sort by, counted as sorted)."""

    def __init__(self, column: str | None):
        self.column = column
        self.sorted = True
        self._last = None

    def update(self, data: pa.Table) -> None:
        """Look at the next batch."""
        if self.column is None or not self.sorted or data.num_rows == 0:
            return
        values = data.column(self.column).to_numpy(zero_copy_only=False)
        if (self._last is not None and values[0] < self._last) or (values[1:] < values[:-1]).any():
            self.sorted = False
        self._last = values[-1]


def ddl_columns(spec: TableSpec) -> str:
    """The column definitions of ``CREATE TABLE`` for the spec's table (+ BIGINT hpx)."""
    parts = [f"{quote_ident(c.name)} {_SQL_TYPES[c.datatype]}" for c in spec.columns]
    if spec.hpx_column is not None:
        parts.append(f"{quote_ident(spec.hpx_column)} BIGINT")
    return ", ".join(parts)


def table_rows(
    spec: TableSpec, n_rows: int, *, q3c: bool = False
) -> tuple[tuple, list[tuple], tuple]:
    """The ``TAP_SCHEMA.tables`` row, ``TAP_SCHEMA.columns`` rows and ``_skysense_tables`` row
    of a table of ``n_rows`` rows (``q3c``: it has a Q3C index)."""
    table_row = (spec.schema, spec.adql_name, "table", spec.utype or None, spec.description, None)
    column_rows = _column_rows(spec.adql_name, spec.columns, std=False)
    private_row = (
        spec.adql_name,
        spec.physical,
        spec.ra,
        spec.dec,
        spec.hpx_column,
        spec.hpx_order,
        q3c,
        n_rows,
        _dt.datetime.now(_dt.UTC).replace(tzinfo=None),
    )
    return table_row, column_rows, private_row


def split_adql_name(adql_name: str) -> tuple[str, str]:
    """(schema, name), lower case, of ``SCHEMA.NAME`` (:class:`InputError` without a dot)."""
    if "." not in adql_name:
        raise InputError(f"table name {adql_name!r} must be SCHEMA.NAME")
    schema, name = adql_name.lower().split(".", 1)
    return schema, name


class ForeignKey(NamedTuple):
    """A foreign key between two TAP_SCHEMA tables (one column each)."""

    key_id: str
    from_table: str
    target_table: str
    from_column: str
    target_column: str


#: Foreign keys between the TAP_SCHEMA tables (TAP 1.1 section 4).
TAP_SCHEMA_KEYS = (
    ForeignKey("tap_schema_tables_schema", "tables", "schemas", "schema_name", "schema_name"),
    ForeignKey("tap_schema_columns_table", "columns", "tables", "table_name", "table_name"),
    ForeignKey("tap_schema_keys_from", "keys", "tables", "from_table", "table_name"),
    ForeignKey("tap_schema_keys_target", "keys", "tables", "target_table", "table_name"),
    ForeignKey("tap_schema_key_columns_key", "key_columns", "keys", "key_id", "key_id"),
)


def create_metadata_tables(con, p: str, executemany) -> None:
    """Create ``TAP_SCHEMA`` with its self-description and the private ``_skysense_*`` and
    ``_uws_jobs`` tables (idempotent).

    ``con.execute(sql, params)`` runs one statement (``p``: its parameter marker) and
    ``executemany(sql, rows)`` one statement per row.
    """
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_TS}")
    for ddl in _PRIVATE_DDL:
        con.execute(ddl)
    _create_tap_schema(con, p, executemany)


def _create_tap_schema(con, p: str, executemany) -> None:
    """Create TAP_SCHEMA tables and their self-description (idempotent)."""
    for table, (_, cols) in TAP_SCHEMA_TABLES.items():
        ddl = ", ".join(f"{quote_ident(c.name)} {_SQL_TYPES[c.datatype]}" for c in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {_TS}.{quote_ident(table)} ({ddl})")
    n_keys = con.execute(
        f"SELECT count(*) FROM {_TS}.keys WHERE key_id LIKE 'tap_schema_%'"
    ).fetchone()[0]
    if not n_keys:
        executemany(
            f"INSERT INTO {_TS}.keys VALUES ({p}, {p}, {p}, {p}, {p})",
            [
                (key, f"TAP_SCHEMA.{src}", f"TAP_SCHEMA.{dst}", f"{src}.{a} -> {dst}.{b}", None)
                for key, src, dst, a, b in TAP_SCHEMA_KEYS
            ],
        )
        executemany(
            f"INSERT INTO {_TS}.key_columns VALUES ({p}, {p}, {p})",
            [(key, a, b) for key, _, _, a, b in TAP_SCHEMA_KEYS],
        )
    present = con.execute(
        f"SELECT count(*) FROM {_TS}.tables WHERE schema_name = 'TAP_SCHEMA'"
    ).fetchone()[0]
    if present:
        return
    con.execute(
        f"INSERT INTO {_TS}.schemas VALUES ({p}, {p}, {p}, {p})",
        ["TAP_SCHEMA", None, _TAP_SCHEMA_DESCRIPTION, 100],
    )
    table_rows, column_rows = [], []
    for index, (table, (description, cols)) in enumerate(TAP_SCHEMA_TABLES.items()):
        name = f"TAP_SCHEMA.{table}"
        table_rows.append(("TAP_SCHEMA", name, "table", None, description, 100 + index))
        column_rows += _column_rows(name, cols, std=True)
    executemany(f"INSERT INTO {_TS}.tables VALUES ({', '.join([p] * 6)})", table_rows)
    executemany(f"INSERT INTO {_TS}.columns VALUES ({', '.join([p] * 14)})", column_rows)


def delete_table_metadata(con, p: str, adql_name: str, schema: str) -> None:
    """Delete a table's metadata rows, and its schema's row when it was the schema's last."""
    con.execute(f"DELETE FROM {_TS}.columns WHERE table_name = {p}", [adql_name])
    con.execute(f"DELETE FROM {_TS}.tables WHERE table_name = {p}", [adql_name])
    con.execute("DELETE FROM _skysense_tables WHERE table_name = " + p, [adql_name])
    left = con.execute(
        f"SELECT count(*) FROM {_TS}.tables WHERE schema_name = {p}", [schema]
    ).fetchone()[0]
    if not left:
        con.execute(f"DELETE FROM {_TS}.schemas WHERE schema_name = {p}", [schema])


def write_table_metadata(
    con, p, spec: TableSpec, table_row, column_rows, private_row, executemany
) -> None:
    """Replace a table's metadata rows (from :func:`table_rows`), adding its schema's row."""
    delete_table_metadata(con, p, spec.adql_name, spec.schema)
    exists = con.execute(
        f"SELECT count(*) FROM {_TS}.schemas WHERE schema_name = {p}", [spec.schema]
    ).fetchone()[0]
    if not exists:
        con.execute(
            f"INSERT INTO {_TS}.schemas VALUES ({p}, {p}, {p}, {p})",
            [spec.schema, None, f"Tables of the {spec.schema} schema", None],
        )
    con.execute(f"INSERT INTO {_TS}.tables VALUES ({', '.join([p] * 6)})", list(table_row))
    if column_rows:
        executemany(f"INSERT INTO {_TS}.columns VALUES ({', '.join([p] * 14)})", column_rows)
    con.execute(f"INSERT INTO _skysense_tables VALUES ({', '.join([p] * 9)})", list(private_row))
