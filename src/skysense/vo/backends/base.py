"""Database backends of the VO server: DuckDB (embedded, default) and PostgreSQL.

Both implement one :class:`Backend` protocol:

- **publishing** (:meth:`Backend.load_table`): an Arrow table with its column metadata is loaded
  under a temporary name, indexed, then swapped in together with its ``TAP_SCHEMA`` rows in one
  transaction, so readers see either the old table or the new one;
- **metadata**: ``TAP_SCHEMA`` (TAP 1.1) lives in the database itself and is the single source
  of the :class:`~skysense.vo.schema.SchemaCatalog` the ADQL translator works with; a private
  ``_skysense_tables`` table adds what ``TAP_SCHEMA`` cannot say (RA/Dec columns, the HEALPix
  column, Q3C, row counts);
- **queries** (:meth:`Backend.query`): one translated ``SELECT`` on a fresh connection, with the
  per-job upload tables and HEALPix helper tables created as *temporary* tables of that
  connection, a wall-clock timeout and a memory cap, returning a :class:`pyarrow.Table`;
  :meth:`Backend.run` does the same in a worker thread so the event loop never blocks;
- **state**: async (UWS) jobs in ``_uws_jobs`` and small JSON records (e.g. registered maps) in
  ``_skysense_records``.

Read-only guarantees for queries: DuckDB runs with ``enable_external_access=false`` and
``lock_configuration=true`` (no file functions, ``ATTACH``, ``COPY``, ``INSTALL`` or settings
changes), and every query must parse as exactly one ``SELECT`` statement; PostgreSQL runs each
query in a ``READ ONLY`` transaction with ``statement_timeout``, as a prepared statement (which
cannot contain a second command).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import queue
import re
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skysense.errors import ConfigError, InputError, QueryError
from skysense.vo.reserved import plain_column_name, tap_column_name
from skysense.vo.schema import TAP_SCHEMA_TABLES, ColumnInfo, SchemaCatalog, TableInfo
from skysense.vo.settings import is_postgres_url

__all__ = [
    "Backend",
    "DuckDBBackend",
    "PostgresBackend",
    "QueryHandle",
    "QueryTimeout",
    "TableSpec",
    "UploadTable",
    "open_backend",
    "quote_ident",
    "arrow_type",
    "TAP_SCHEMA_TABLES",
    "TAP_SCHEMA_KEYS",
]

log = logging.getLogger(__name__)

# DuckDB 2 warns that Arrow output of an executed statement copies the rows and suggests
# con.sql(); for cone-search sized results that copy is cheaper than the extra bind con.sql()
# does (measured: 3.3 ms against 4.0 ms per small cone, equal for 80,000 rows), so queries use
# execute() and the warning is silenced for this module only.
warnings.filterwarnings(
    "ignore",
    message="Arrow output on a DB-API result",
    category=UserWarning,
    module=re.escape(__name__),
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

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


def quote_ident(name: str) -> str:
    """SQL delimited identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


class QueryTimeout(QueryError):
    """The query ran longer than its time limit and was cancelled."""


@dataclass(frozen=True)
class TableSpec:
    """A table to publish: its ADQL name, description and column metadata.

    Physical column names equal the (lower-case) ADQL names in ``columns``; the data given to
    :meth:`Backend.load_table` has exactly these columns (plus ``hpx_column`` when set).
    """

    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    description: str = ""
    ra: str | None = None
    dec: str | None = None
    hpx_column: str | None = "_hpx"
    hpx_order: int = 14
    utype: str = ""

    def __post_init__(self):
        for part, what in ((self.schema, "schema"), (self.name, "table")):
            if not _NAME.match(part):
                raise InputError(
                    f"{what} name {part!r} must be lower case letters, digits and '_' "
                    "starting with a letter"
                )
        if self.schema in ("tap_schema", "tap_upload", "main", "public", "pg_catalog"):
            raise InputError(f"schema name {self.schema!r} is reserved")

    @property
    def adql_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def physical(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass
class UploadTable:
    """A user upload for one query: ``TAP_UPLOAD.<name>``, stored as a temporary table.

    ``data`` carries a BIGINT ``_rowid`` column (0..n-1) used by HEALPix cross-match helpers.
    """

    name: str
    physical: str
    data: pa.Table
    info: TableInfo


class _Watchdog:
    """One daemon thread firing query time limits (a ``threading.Timer`` per query costs a
    thread start, a noticeable share of a millisecond cone search)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._pending: set[int] = set()
        self._counter = 0
        self._thread: threading.Thread | None = None
        # The deadline the watchdog thread sleeps until (monotonic s); -inf while it runs.
        self._waiting_until = float("-inf")

    def schedule(self, delay_s: float, callback: Callable[[], None]) -> int:
        import heapq

        with self._cond:
            self._counter += 1
            token = self._counter
            self._pending.add(token)
            entry = (time.monotonic() + delay_s, token, callback)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="skysense-query-watchdog", daemon=True
                )
                self._thread.start()
            if entry[0] < self._waiting_until:
                # Wake the watchdog only when it would sleep past the new deadline: waking it
                # for every query costs a thread switch per cone search.
                self._cond.notify()
            return token

    def cancel(self, token: int) -> None:
        import heapq

        with self._cond:
            self._pending.discard(token)
            # Drop finished entries from the front here, so the heap stays short without
            # waking the watchdog thread.
            while self._heap and self._heap[0][1] not in self._pending:
                heapq.heappop(self._heap)

    def _run(self) -> None:
        import heapq

        while True:
            with self._cond:
                while not self._heap:
                    self._waiting_until = float("inf")
                    self._cond.wait()
                when, token, callback = self._heap[0]
                if token not in self._pending:
                    heapq.heappop(self._heap)
                    continue
                delay = when - time.monotonic()
                if delay > 0:
                    self._waiting_until = when
                    self._cond.wait(delay)
                    continue
                self._waiting_until = float("-inf")  # busy: no wake-up needed
                heapq.heappop(self._heap)
                self._pending.discard(token)
            try:
                callback()
            except Exception:  # a failed interrupt must not kill the watchdog
                log.exception("query time-limit callback failed")


_WATCHDOG = _Watchdog()


class QueryHandle:
    """Lets another thread cancel a running query (UWS ``PHASE=ABORT``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cancel: Callable[[], None] | None = None
        self.cancelled = False

    def _attach(self, cancel: Callable[[], None] | None) -> None:
        with self._lock:
            self._cancel = cancel
            if cancel is not None and self.cancelled:
                cancel()

    def cancel(self) -> None:
        """Stop the query now (it fails with a :class:`QueryError`)."""
        with self._lock:
            self.cancelled = True
            if self._cancel is not None:
                self._cancel()


@runtime_checkable
class Backend(Protocol):
    """What the VO server needs from a database."""

    dialect: str  # "duckdb" | "postgresql"

    def close(self) -> None: ...

    def harden(
        self,
        *,
        memory_limit_mb: int,
        threads: int,
        spill_dir: str | Path | None = None,
        spill_limit_mb: int | None = None,
    ) -> None: ...

    def cancel_all(self) -> None: ...

    def catalog(self) -> SchemaCatalog: ...

    def query(
        self,
        sql: str,
        *,
        uploads: Sequence[UploadTable] = (),
        aux: Sequence = (),
        timeout_s: float | None = None,
        handle: QueryHandle | None = None,
    ) -> pa.Table: ...

    async def run(self, sql: str, **kwargs) -> pa.Table: ...

    def load_table(self, spec: TableSpec, data: pa.Table) -> None: ...

    def drop_table(self, adql_name: str) -> None: ...

    def put_record(self, kind: str, key: str, doc: dict) -> None: ...

    def get_record(self, kind: str, key: str) -> dict | None: ...

    def list_records(self, kind: str) -> list[dict]: ...

    def delete_record(self, kind: str, key: str) -> None: ...

    def jobs_save(self, job: dict) -> None: ...

    def jobs_load(self) -> list[dict]: ...

    def jobs_delete(self, job_id: str) -> None: ...


def open_backend(db: str | Path, *, create: bool = True) -> Backend:
    """Open the database named by ``db``: a DuckDB file path or a ``postgresql://`` URL.

    Parameters
    ----------
    db : str or Path
        DuckDB file (created when absent and ``create``) or PostgreSQL URL.
    create : bool
        Create a missing DuckDB file (with an empty ``TAP_SCHEMA``).

    Raises
    ------
    ConfigError
        If the database cannot be opened.
    """
    db = str(db)
    if is_postgres_url(db):
        return PostgresBackend(db)
    path = Path(db)
    if not create and not path.exists():
        raise ConfigError(f"database file {path} does not exist", key="db")
    return DuckDBBackend(path)


# --------------------------------------------------------------------------------------------
# TAP_SCHEMA: its tables and columns are defined once, in skysense.vo.schema

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


def _cast_for(spec: TableSpec, data: pa.Table) -> pa.Table:
    """``data`` restricted to the spec's columns (+ hpx) with the Arrow types of their datatypes."""
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


def _ddl_columns(spec: TableSpec) -> str:
    parts = [f"{quote_ident(c.name)} {_SQL_TYPES[c.datatype]}" for c in spec.columns]
    if spec.hpx_column is not None:
        parts.append(f"{quote_ident(spec.hpx_column)} BIGINT")
    return ", ".join(parts)


def _table_rows(spec: TableSpec, n_rows: int) -> tuple[tuple, list[tuple], tuple]:
    table_row = (spec.schema, spec.adql_name, "table", spec.utype or None, spec.description, None)
    column_rows = _column_rows(spec.adql_name, spec.columns, std=False)
    private_row = (
        spec.adql_name,
        spec.physical,
        spec.ra,
        spec.dec,
        spec.hpx_column,
        spec.hpx_order,
        False,
        n_rows,
        _dt.datetime.now(_dt.UTC).replace(tzinfo=None),
    )
    return table_row, column_rows, private_row


def _hpx_cells_table(cells, rowid: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> pa.Table:
    """The rows of a :class:`~skysense.vo.sql.HealpixCells` helper table."""
    from skysense.vo.hpx import circle_cell_keys, circle_cells

    if cells.depth is not None:
        keys = circle_cell_keys(ra, dec, cells.radius_deg, cells.index_order)
        if keys is None or keys[2] != cells.depth:
            raise QueryError(f"cross-match cells at depth {cells.depth} are not available")
        row, cell, _ = keys
        return pa.table(
            {
                "src_rowid": pa.array(rowid[row], pa.int64()),
                "cell": pa.array(np.asarray(cell, dtype=np.int64)),
            }
        )
    row, lo, hi = circle_cells(ra, dec, cells.radius_deg, cells.index_order)
    row = np.asarray(row, dtype=np.int64)
    return pa.table(
        {
            "src_rowid": pa.array(rowid[row], pa.int64()),
            "lo": pa.array(np.asarray(lo, dtype=np.int64)),
            "hi": pa.array(np.asarray(hi, dtype=np.int64)),
        }
    )


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') and name.endswith('"') else name


def _split_adql_name(adql_name: str) -> tuple[str, str]:
    if "." not in adql_name:
        raise InputError(f"table name {adql_name!r} must be SCHEMA.NAME")
    schema, name = adql_name.lower().split(".", 1)
    return schema, name


class _BaseBackend:
    """Shared logic: catalog caching, thread offload, aux tables."""

    dialect = ""
    _catalog_ttl_s = float("inf")

    def __init__(self):
        self._catalog: SchemaCatalog | None = None
        self._catalog_time = 0.0
        self._catalog_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._memory_limit_mb = 2048

    # ---- catalog
    def catalog(self) -> SchemaCatalog:
        """The current metadata of every queryable table (cached)."""
        with self._catalog_lock:
            now = time.monotonic()
            if self._catalog is None or now - self._catalog_time > self._catalog_ttl_s:
                self._catalog = self._read_catalog()
                self._catalog_time = now
            return self._catalog

    def _invalidate(self) -> None:
        with self._catalog_lock:
            self._catalog = None

    async def run(self, sql: str, **kwargs) -> pa.Table:
        """:meth:`query` in a worker thread (never blocks the event loop)."""
        import anyio.to_thread

        return await anyio.to_thread.run_sync(lambda: self.query(sql, **kwargs))

    def _aux_source(self, cells, uploads: Sequence[UploadTable], fetch) -> pa.Table:
        """Columns (_rowid, ra, dec) of the source of a HealpixCells helper table."""
        for up in uploads:
            if up.physical == cells.source_physical:
                ra_name, dec_name = _unquote(cells.ra_column), _unquote(cells.dec_column)
                return pa.table(
                    {
                        "_rowid": up.data.column("_rowid"),
                        "ra": up.data.column(ra_name),
                        "dec": up.data.column(dec_name),
                    }
                )
        ra_q = cells.ra_column if cells.ra_column.startswith('"') else quote_ident(cells.ra_column)
        dec_q = (
            cells.dec_column if cells.dec_column.startswith('"') else quote_ident(cells.dec_column)
        )
        return fetch(f'SELECT "_rowid", {ra_q} AS ra, {dec_q} AS dec FROM {cells.source_physical}')

    @staticmethod
    def _cells_from_source(cells, src: pa.Table) -> pa.Table:
        ra = pc.cast(src.column("ra"), pa.float64()).to_numpy(zero_copy_only=False)
        dec = pc.cast(src.column("dec"), pa.float64()).to_numpy(zero_copy_only=False)
        rowid = pc.cast(src.column("_rowid"), pa.int64()).to_numpy(zero_copy_only=False)
        ok = np.isfinite(ra) & np.isfinite(dec)
        return _hpx_cells_table(cells, rowid[ok], ra[ok], dec[ok])

    # ---- records (JSON documents for other server parts, e.g. registered maps)
    def put_record(self, kind: str, key: str, doc: dict) -> None:
        """Store (replace) one JSON document under (kind, key)."""
        text = json.dumps(doc, sort_keys=True)
        with self._write_lock:
            self._admin_write(
                [
                    ("DELETE FROM _skysense_records WHERE kind = {p} AND key = {p}", (kind, key)),
                    ("INSERT INTO _skysense_records VALUES ({p}, {p}, {p})", (kind, key, text)),
                ]
            )

    def get_record(self, kind: str, key: str) -> dict | None:
        """The document stored under (kind, key), or None."""
        rows = self._admin_read(
            "SELECT doc FROM _skysense_records WHERE kind = {p} AND key = {p}", (kind, key)
        )
        return json.loads(rows[0][0]) if rows else None

    def list_records(self, kind: str) -> list[dict]:
        """Every document of one kind, ordered by key."""
        rows = self._admin_read(
            "SELECT doc FROM _skysense_records WHERE kind = {p} ORDER BY key", (kind,)
        )
        return [json.loads(r[0]) for r in rows]

    def delete_record(self, kind: str, key: str) -> None:
        """Remove one document (no error when absent)."""
        with self._write_lock:
            self._admin_write(
                [("DELETE FROM _skysense_records WHERE kind = {p} AND key = {p}", (kind, key))]
            )

    # ---- UWS jobs
    def jobs_save(self, job: dict) -> None:
        """Insert or replace one job document (keys job_id, phase, owner, creation_time,
        destruction_time as ISO strings, plus anything else)."""
        text = json.dumps(job, sort_keys=True)
        args = (
            job["job_id"],
            job["phase"],
            job.get("owner"),
            _parse_iso(job["creation_time"]),
            _parse_iso(job["destruction_time"]),
            text,
        )
        with self._write_lock:
            self._admin_write(
                [
                    ("DELETE FROM _uws_jobs WHERE job_id = {p}", (job["job_id"],)),
                    ("INSERT INTO _uws_jobs VALUES ({p}, {p}, {p}, {p}, {p}, {p})", args),
                ]
            )

    def jobs_load(self) -> list[dict]:
        """Every stored job document, oldest first."""
        rows = self._admin_read("SELECT doc FROM _uws_jobs ORDER BY creation_time", ())
        return [json.loads(r[0]) for r in rows]

    def jobs_delete(self, job_id: str) -> None:
        """Forget one job."""
        with self._write_lock:
            self._admin_write([("DELETE FROM _uws_jobs WHERE job_id = {p}", (job_id,))])

    def table_names(self) -> list[str]:
        """ADQL names of the published (non-TAP_SCHEMA) tables."""
        return sorted(k for k in self.catalog().tables if not k.startswith("tap_schema."))

    # ---- to implement
    def _read_catalog(self) -> SchemaCatalog:  # pragma: no cover - abstract
        raise TypeError

    def _admin_write(self, statements) -> None:  # pragma: no cover - abstract
        raise TypeError

    def _admin_read(self, sql, params) -> list[tuple]:  # pragma: no cover - abstract
        raise TypeError


def _parse_iso(text: str | None):
    if text is None:
        return None
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


# --------------------------------------------------------------------------------------------
# DuckDB


class DuckDBBackend(_BaseBackend):
    """The embedded DuckDB backend: one database file, many per-query connections.

    Parameters
    ----------
    path : str or Path
        Database file; created (with an empty TAP_SCHEMA) when absent.
    """

    dialect = "duckdb"

    def __init__(self, path: str | Path):
        import duckdb

        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise ConfigError(f"cannot open DuckDB database: {exc}", key=str(self.path)) from None
        self._hardened = False
        self._running: set = set()  # connections of running user queries (cancel_all)
        self._running_lock = threading.Lock()
        self._cancelled_all = False
        self._select_shapes: dict[str, bool] = {}  # SQL shape -> is one SELECT
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"DuckDBBackend({str(self.path)!r})"

    def close(self) -> None:
        """Close the database (idempotent)."""
        with contextlib.suppress(Exception):
            self._db.close()

    def harden(
        self,
        *,
        memory_limit_mb: int = 2048,
        threads: int = 2,
        spill_dir: str | Path | None = None,
        spill_limit_mb: int | None = None,
    ) -> None:
        """Server mode: cap memory and threads, forbid any file access, lock the settings.

        ``spill_dir`` (created when missing) replaces DuckDB's ``<db>.tmp`` beside the
        database for operators larger than memory; ``spill_limit_mb`` caps its size
        (DuckDB's default is 90% of the free disk).
        """
        if self._hardened:
            return
        self._memory_limit_mb = memory_limit_mb
        self._db.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
        self._db.execute(f"SET threads = {int(threads)}")
        if spill_dir is not None:
            Path(spill_dir).mkdir(parents=True, exist_ok=True)
            self._db.execute("SET temp_directory = ?", [str(spill_dir)])
        if spill_limit_mb is not None:
            self._db.execute(f"SET max_temp_directory_size = '{int(spill_limit_mb)}MB'")
        self._db.execute("SET enable_external_access = false")
        self._db.execute("SET autoinstall_known_extensions = false")
        self._db.execute("SET autoload_known_extensions = false")
        self._db.execute("SET lock_configuration = true")
        self._hardened = True

    def _query_cursor(self):
        """A connection for one user query, known to :meth:`cancel_all` while it runs."""
        con = self._db.cursor()
        with self._running_lock:
            if self._cancelled_all:
                con.close()
                raise QueryError("the server is shutting down")
            self._running.add(con)
        return con

    def cancel_all(self) -> None:
        """Interrupt every running query and refuse new ones (server shutdown)."""
        with self._running_lock:
            self._cancelled_all = True
            running = list(self._running)
        for con in running:
            with contextlib.suppress(Exception):
                con.interrupt()

    def _ensure_schema(self) -> None:
        con = self._db.cursor()
        try:
            con.execute("BEGIN")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_TS}")
            for ddl in _PRIVATE_DDL:
                con.execute(ddl)
            _create_tap_schema(con, "?", lambda sql, rows: con.executemany(sql, rows))
            con.execute("COMMIT")
        finally:
            con.close()

    # -- admin helpers (internal SQL only)
    def _admin_write(self, statements) -> None:
        con = self._db.cursor()
        try:
            con.execute("BEGIN")
            for sql, params in statements:
                con.execute(sql.format(p="?"), list(params))
            con.execute("COMMIT")
        except Exception:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _admin_read(self, sql, params) -> list[tuple]:
        con = self._db.cursor()
        try:
            return con.execute(sql.format(p="?"), list(params)).fetchall()
        finally:
            con.close()

    def _read_catalog(self) -> SchemaCatalog:
        con = self._db.cursor()
        try:
            tables = con.execute(_CATALOG_SQL_TABLES).fetchall()
            columns = con.execute(_CATALOG_SQL_COLUMNS).fetchall()
            private = {r[0]: r[1:] for r in con.execute(_CATALOG_SQL_PRIVATE).fetchall()}
        finally:
            con.close()
        return _catalog_from_rows(tables, columns, private)

    # -- queries
    def _single_select(self, con, sql: str) -> bool:
        """Whether ``sql`` is exactly one SELECT statement, as DuckDB's parser splits it.

        Cone searches send the same SQL again and again with new numbers, and DuckDB's parse
        costs about 0.2 ms, so the answer is kept per *shape*: the text with every run of digits
        replaced by one ``0``. Digits are never quotes, semicolons, comment marks or keyword
        letters, so all texts of one shape split into the same statements of the same types;
        the shape itself is what gets parsed.
        """
        import duckdb

        shape = _select_shape(sql)
        ok = self._select_shapes.get(shape)
        if ok is None:
            statements = con.extract_statements(shape)
            ok = len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT
            if len(self._select_shapes) >= _MAX_SHAPES:
                self._select_shapes.clear()  # rare: many distinct shapes; start again
            self._select_shapes[shape] = ok
        return ok

    def query(
        self,
        sql: str,
        *,
        uploads: Sequence[UploadTable] = (),
        aux: Sequence = (),
        timeout_s: float | None = None,
        handle: QueryHandle | None = None,
    ) -> pa.Table:
        """Run one translated SELECT and return its rows.

        Parameters
        ----------
        sql : str
            A single SELECT statement (from :func:`skysense.vo.sql.translate`).
        uploads : sequence of UploadTable
            Created as temporary tables of this query's connection.
        aux : sequence of HealpixCells
            HEALPix range tables the SQL refers to, created first.
        timeout_s : float, optional
            Cancel the query after this many seconds (:class:`QueryTimeout`).
        handle : QueryHandle, optional
            Lets another thread cancel the query.

        Raises
        ------
        QueryError
            Not a single SELECT, a database error, a timeout or a cancellation.
        """
        import duckdb

        con = self._query_cursor()
        timer = None
        timed_out = threading.Event()
        try:
            if not self._single_select(con, sql):
                raise QueryError("only a single SELECT statement can be run")
            if handle is not None:
                handle._attach(con.interrupt)
                if handle.cancelled:
                    raise QueryError("query was aborted")
            if timeout_s is not None:

                def _expire():
                    timed_out.set()
                    con.interrupt()

                timer = _WATCHDOG.schedule(timeout_s, _expire)
            for i, up in enumerate(uploads):
                view = f"_skysense_src_{i}"
                con.register(view, up.data)
                con.execute(f"CREATE TEMP TABLE {up.physical} AS SELECT * FROM {view}")
                con.unregister(view)
            for i, cells in enumerate(aux):
                src = self._aux_source(cells, uploads, lambda q: con.sql(q).to_arrow_table())
                view = f"_skysense_cells_{i}"
                con.register(view, self._cells_from_source(cells, src))
                con.execute(f"CREATE TEMP TABLE {cells.name} AS SELECT * FROM {view}")
                con.unregister(view)
            # DuckDB >= 1.4: Arrow output of a DB-API (execute) result copies every row once
            # more and warns; the relation path is zero-copy (0.65 vs 1.8 ms for 100 rows).
            return con.sql(sql).to_arrow_table()
        except duckdb.InterruptException:
            if timed_out.is_set():
                raise QueryTimeout(f"query exceeded the time limit of {timeout_s:g} s") from None
            raise QueryError("query was aborted") from None
        except duckdb.OutOfMemoryException as exc:
            raise QueryError(
                f"query needs more than the memory limit ({self._memory_limit_mb} MB): "
                f"{_first_line(exc)}"
            ) from None
        except duckdb.Error as exc:
            if timed_out.is_set():
                raise QueryTimeout(f"query exceeded the time limit of {timeout_s:g} s") from None
            raise QueryError(f"database error: {_first_line(exc)}") from None
        finally:
            if timer is not None:
                _WATCHDOG.cancel(timer)
            if handle is not None:
                handle._attach(None)
            with self._running_lock:
                self._running.discard(con)
            con.close()

    # -- publishing
    def load_table(self, spec: TableSpec, data: pa.Table) -> None:
        """Create or atomically replace ``spec.adql_name`` with ``data``.

        Rows are stored sorted by the HEALPix column so that DuckDB's per-row-group min/max
        statistics prune cone searches (DuckDB's ART indexes do not serve range scans).
        """
        data = _cast_for(spec, data)
        tmp = quote_ident(f"_load_{secrets.token_hex(6)}")
        schema_q = quote_ident(spec.schema)
        order = f" ORDER BY {quote_ident(spec.hpx_column)}" if spec.hpx_column else ""
        with self._write_lock:
            con = self._db.cursor()
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_q}")
                con.execute(f"CREATE TABLE {schema_q}.{tmp} ({_ddl_columns(spec)})")
                con.register("_skysense_load", data)
                con.execute(f"INSERT INTO {schema_q}.{tmp} SELECT * FROM _skysense_load{order}")
                con.unregister("_skysense_load")
                table_row, column_rows, private_row = _table_rows(spec, data.num_rows)
                con.execute("BEGIN")
                try:
                    con.execute(f"DROP TABLE IF EXISTS {spec.physical}")
                    con.execute(f"ALTER TABLE {schema_q}.{tmp} RENAME TO {quote_ident(spec.name)}")
                    _write_table_metadata(
                        con,
                        "?",
                        spec,
                        table_row,
                        column_rows,
                        private_row,
                        lambda sql, rows: con.executemany(sql, rows),
                    )
                    con.execute("COMMIT")
                except Exception:
                    con.execute("ROLLBACK")
                    raise
            finally:
                with contextlib.suppress(Exception):
                    con.execute(f"DROP TABLE IF EXISTS {schema_q}.{tmp}")
                con.close()
        self._invalidate()

    def drop_table(self, adql_name: str) -> None:
        """Remove a published table and its metadata."""
        schema, name = _split_adql_name(adql_name)
        with self._write_lock:
            con = self._db.cursor()
            try:
                con.execute("BEGIN")
                con.execute(f"DROP TABLE IF EXISTS {quote_ident(schema)}.{quote_ident(name)}")
                _delete_table_metadata(con, "?", f"{schema}.{name}", schema)
                con.execute("COMMIT")
            finally:
                con.close()
        self._invalidate()


_DIGITS = re.compile(r"[0-9]+")
_MAX_SHAPES = 1024


def _select_shape(sql: str) -> str:
    """``sql`` with every run of digits replaced by one ``0`` (see ``_single_select``)."""
    return _DIGITS.sub("0", sql)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: Foreign keys between the TAP_SCHEMA tables (TAP 1.1 section 4): id, from, target, columns.
TAP_SCHEMA_KEYS = (
    ("tap_schema_tables_schema", "tables", "schemas", "schema_name", "schema_name"),
    ("tap_schema_columns_table", "columns", "tables", "table_name", "table_name"),
    ("tap_schema_keys_from", "keys", "tables", "from_table", "table_name"),
    ("tap_schema_keys_target", "keys", "tables", "target_table", "table_name"),
    ("tap_schema_key_columns_key", "key_columns", "keys", "key_id", "key_id"),
)


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


def _delete_table_metadata(con, p: str, adql_name: str, schema: str) -> None:
    con.execute(f"DELETE FROM {_TS}.columns WHERE table_name = {p}", [adql_name])
    con.execute(f"DELETE FROM {_TS}.tables WHERE table_name = {p}", [adql_name])
    con.execute("DELETE FROM _skysense_tables WHERE table_name = " + p, [adql_name])
    left = con.execute(
        f"SELECT count(*) FROM {_TS}.tables WHERE schema_name = {p}", [schema]
    ).fetchone()[0]
    if not left:
        con.execute(f"DELETE FROM {_TS}.schemas WHERE schema_name = {p}", [schema])


def _write_table_metadata(
    con, p, spec: TableSpec, table_row, column_rows, private_row, executemany
) -> None:
    _delete_table_metadata(con, p, spec.adql_name, spec.schema)
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


# --------------------------------------------------------------------------------------------
# PostgreSQL

_PG_OID_ARROW = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1700: pa.float64(),
    25: pa.string(),
    1043: pa.string(),
    1042: pa.string(),
    19: pa.string(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


class PostgresBackend(_BaseBackend):
    """The PostgreSQL backend (psycopg 3), with Q3C cone indexes when the extension exists.

    Parameters
    ----------
    dsn : str
        ``postgresql://user@host:port/dbname``.
    pool_size : int
        Connections kept open for queries.
    """

    dialect = "postgresql"
    _catalog_ttl_s = 10.0  # other processes may publish while the server runs

    def __init__(self, dsn: str, *, pool_size: int = 8):
        import psycopg

        super().__init__()
        self.dsn = dsn
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._busy: set = set()  # connections in use (cancel_all)
        self._busy_lock = threading.Lock()
        try:
            with psycopg.connect(dsn, autocommit=True) as con:
                with con.transaction():
                    # Serialise concurrent first-time setup from several processes.
                    con.execute("SELECT pg_advisory_xact_lock(7211001)")
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_TS}")
                    for ddl in _PRIVATE_DDL:
                        con.execute(ddl)
                    cur = con.cursor()
                    _create_tap_schema(
                        _PgAdapter(cur), "%s", lambda sql, rows: cur.executemany(sql, rows)
                    )
                self.has_q3c = bool(
                    con.execute(
                        "SELECT 1 FROM pg_available_extensions WHERE name = 'q3c'"
                    ).fetchone()
                )
        except psycopg.Error as exc:
            raise ConfigError(f"cannot open PostgreSQL database: {exc}", key=dsn) from None

    def __repr__(self) -> str:
        return f"PostgresBackend({self.dsn!r})"

    def harden(
        self,
        *,
        memory_limit_mb: int = 2048,
        threads: int = 2,
        spill_dir: str | Path | None = None,
        spill_limit_mb: int | None = None,
    ) -> None:
        """Remember the memory cap; each query's ``work_mem`` is a quarter of it.

        PostgreSQL spills in its own data directory under its administrator's
        ``temp_file_limit`` (a superuser setting), so ``spill_dir`` and ``spill_limit_mb``
        are not used.
        """
        self._memory_limit_mb = memory_limit_mb

    def cancel_all(self) -> None:
        """Cancel every running query (server shutdown)."""
        with self._busy_lock:
            busy = list(self._busy)
        for con in busy:
            with contextlib.suppress(Exception):
                con.cancel_safe(timeout=2.0)

    def close(self) -> None:
        """Close every pooled connection."""
        while True:
            try:
                con = self._pool.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                con.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        import psycopg

        self._slots.acquire()
        con = None
        try:
            try:
                con = self._pool.get_nowait()
                if con.closed or con.broken:
                    con = None
            except queue.Empty:
                con = None
            if con is None:
                con = psycopg.connect(self.dsn, autocommit=True)
            with self._busy_lock:
                self._busy.add(con)
            try:
                yield con
            finally:
                with self._busy_lock:
                    self._busy.discard(con)
            if not con.closed and not con.broken:
                self._pool.put(con)
                con = None
        finally:
            if con is not None:
                with contextlib.suppress(Exception):
                    con.close()
            self._slots.release()

    def _admin_write(self, statements) -> None:
        with self._connection() as con, con.transaction():
            for sql, params in statements:
                con.execute(sql.format(p="%s"), params)

    def _admin_read(self, sql, params) -> list[tuple]:
        with self._connection() as con:
            return con.execute(sql.format(p="%s"), params).fetchall()

    def _read_catalog(self) -> SchemaCatalog:
        with self._connection() as con:
            tables = con.execute(_CATALOG_SQL_TABLES).fetchall()
            columns = con.execute(_CATALOG_SQL_COLUMNS).fetchall()
            private = {r[0]: r[1:] for r in con.execute(_CATALOG_SQL_PRIVATE).fetchall()}
        return _catalog_from_rows(tables, columns, private)

    def query(
        self,
        sql: str,
        *,
        uploads: Sequence[UploadTable] = (),
        aux: Sequence = (),
        timeout_s: float | None = None,
        handle: QueryHandle | None = None,
    ) -> pa.Table:
        """Run one translated SELECT in a read-only transaction (see :meth:`DuckDBBackend.query`)."""
        import psycopg

        with self._connection() as con:
            temp_names = []
            try:
                if handle is not None:
                    handle._attach(con.cancel)
                    if handle.cancelled:
                        raise QueryError("query was aborted")
                if uploads or aux:
                    with con.transaction():
                        for up in uploads:
                            _pg_copy_table(con, up.physical, up.data, temp=True)
                            temp_names.append(up.physical)
                        for cells in aux:
                            src = self._aux_source(
                                cells, uploads, lambda q: _pg_fetch_arrow(con.execute(q))
                            )
                            _pg_copy_table(
                                con, cells.name, self._cells_from_source(cells, src), temp=True
                            )
                            temp_names.append(cells.name)
                with con.transaction():
                    con.execute("SET TRANSACTION READ ONLY")
                    if timeout_s is not None:
                        con.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
                    work_mem = max(4, self._memory_limit_mb // 4)
                    con.execute(f"SET LOCAL work_mem = '{work_mem}MB'")
                    cur = con.cursor()
                    # A prepared statement cannot hold a second command (no "; COMMIT; ...").
                    cur.execute(sql.replace("%", "%%"), (), prepare=True)
                    return _pg_fetch_arrow(cur)
            except psycopg.errors.QueryCanceled as exc:
                if "statement timeout" in str(exc):
                    raise QueryTimeout(
                        f"query exceeded the time limit of {timeout_s:g} s"
                    ) from None
                raise QueryError("query was aborted") from None
            except psycopg.errors.OutOfMemory as exc:
                raise QueryError(f"query needs too much memory: {_first_line(exc)}") from None
            except psycopg.Error as exc:
                raise QueryError(f"database error: {_first_line(exc)}") from None
            finally:
                if handle is not None:
                    handle._attach(None)
                if temp_names and not con.closed:
                    with contextlib.suppress(Exception):
                        con.execute("DISCARD TEMP")
                with contextlib.suppress(Exception):
                    con.execute("DEALLOCATE ALL")

    def load_table(self, spec: TableSpec, data: pa.Table) -> None:
        """Create or atomically replace a table; B-tree index on the HEALPix column and a Q3C
        index on (ra, dec) when the extension is available."""
        data = _cast_for(spec, data)
        if spec.hpx_column is not None:
            data = data.sort_by(spec.hpx_column)
        tmp = f"_load_{secrets.token_hex(6)}"
        schema_q = quote_ident(spec.schema)
        tmp_phys = f"{schema_q}.{quote_ident(tmp)}"
        q3c = False
        with self._write_lock, self._connection() as con:
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_q}")
                with con.transaction():
                    con.execute(f"CREATE TABLE {tmp_phys} ({_ddl_columns(spec)})")
                    _pg_copy_rows(con, tmp_phys, data)
                if spec.hpx_column is not None:
                    con.execute(f"CREATE INDEX ON {tmp_phys} ({quote_ident(spec.hpx_column)})")
                if spec.ra and spec.dec and self.has_q3c:
                    q3c = self._ensure_q3c(con)
                    if q3c:
                        con.execute(
                            f"CREATE INDEX ON {tmp_phys} "
                            f"(q3c_ang2ipix({quote_ident(spec.ra)}, {quote_ident(spec.dec)}))"
                        )
                con.execute(f"ANALYZE {tmp_phys}")
                table_row, column_rows, private_row = _table_rows(spec, data.num_rows)
                private_row = private_row[:6] + (q3c,) + private_row[7:]
                with con.transaction():
                    con.execute("SELECT pg_advisory_xact_lock(7211002)")
                    con.execute(f"DROP TABLE IF EXISTS {spec.physical}")
                    con.execute(f"ALTER TABLE {tmp_phys} RENAME TO {quote_ident(spec.name)}")
                    cur = con.cursor()
                    _write_table_metadata(
                        _PgAdapter(cur),
                        "%s",
                        spec,
                        table_row,
                        column_rows,
                        private_row,
                        lambda sql, rows: cur.executemany(sql, rows),
                    )
            finally:
                with contextlib.suppress(Exception):
                    con.execute(f"DROP TABLE IF EXISTS {tmp_phys}")
        self._invalidate()

    def _ensure_q3c(self, con) -> bool:
        import psycopg

        try:
            con.execute("CREATE EXTENSION IF NOT EXISTS q3c")
            return True
        except psycopg.Error as exc:
            log.warning("Q3C extension unavailable (%s); cone searches use HEALPix only", exc)
            return False

    def drop_table(self, adql_name: str) -> None:
        """Remove a published table and its metadata."""
        schema, name = _split_adql_name(adql_name)
        with self._write_lock, self._connection() as con, con.transaction():
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(schema)}.{quote_ident(name)}")
            _delete_table_metadata(_PgAdapter(con.cursor()), "%s", f"{schema}.{name}", schema)
        self._invalidate()


class _PgAdapter:
    """DuckDB-like ``execute(...).fetchone()`` over a psycopg cursor (shared DDL helpers)."""

    def __init__(self, cur):
        self._cur = cur

    def execute(self, sql, params=None):
        self._cur.execute(sql, params)
        return self._cur


def _pg_fetch_arrow(cur) -> pa.Table:
    """The rows of an executed psycopg cursor as a pyarrow Table (types from the type OIDs)."""
    desc = cur.description or []
    rows = cur.fetchall()
    columns = list(zip(*rows)) if rows else [()] * len(desc)
    arrays, names = [], []
    for d, values in zip(desc, columns):
        target = _PG_OID_ARROW.get(d.type_code)
        if target is None:
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
        elif pa.types.is_floating(target):
            arrays.append(pa.array([None if v is None else float(v) for v in values], target))
        else:
            arrays.append(pa.array(values, target))
        names.append(d.name)
    # Duplicate output names are legal in SQL; Arrow tables accept them too.
    return pa.Table.from_arrays(arrays, names=names)


def _pg_copy_table(con, physical: str, data: pa.Table, *, temp: bool) -> None:
    cols = []
    for name, typ in zip(data.column_names, data.schema.types):
        cols.append(f"{quote_ident(name)} {_pg_type_for_arrow(typ)}")
    kind = "TEMP TABLE" if temp else "TABLE"
    con.execute(f"CREATE {kind} {physical} ({', '.join(cols)})")
    _pg_copy_rows(con, physical, data)


def _pg_type_for_arrow(typ: pa.DataType) -> str:
    if pa.types.is_boolean(typ):
        return "BOOLEAN"
    if pa.types.is_int8(typ) or pa.types.is_int16(typ) or pa.types.is_uint8(typ):
        return "SMALLINT"
    if pa.types.is_int32(typ) or pa.types.is_uint16(typ):
        return "INTEGER"
    if pa.types.is_integer(typ):
        return "BIGINT"
    if pa.types.is_float32(typ) or pa.types.is_float16(typ):
        return "REAL"
    if pa.types.is_floating(typ):
        return "DOUBLE PRECISION"
    if pa.types.is_timestamp(typ):
        return "TIMESTAMP"
    return "TEXT"


def _pg_copy_rows(con, physical: str, data: pa.Table, chunk_rows: int = 200_000) -> None:
    """Bulk-load ``data`` with COPY (CSV produced by Arrow; NULL as an unquoted empty field)."""
    import pyarrow.csv as pacsv

    if data.num_rows == 0:
        return
    names = ", ".join(quote_ident(n) for n in data.column_names)
    # Every value is quoted so an empty string stays distinct from NULL (unquoted empty);
    # Arrow spells NaN/inf as "nan"/"inf", which PostgreSQL reads.
    opts = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    with con.cursor().copy(f"COPY {physical} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
        for start in range(0, data.num_rows, chunk_rows):
            sink = pa.BufferOutputStream()
            pacsv.write_csv(data.slice(start, chunk_rows), sink, opts)
            copy.write(sink.getvalue().to_pybytes())
