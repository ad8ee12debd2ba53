"""What both backends do alike, written once: the query path, catalog caching, the record
and job stores, and the HEALPix helper tables of cross-matches.

:meth:`BackendBase.query` is the one skeleton of a user query: take a connection, check the
SQL, attach the cancel handle, arm the time limit, create the per-query temporary tables, run,
map database errors to :class:`~skysense.errors.QueryError`, give the connection back. A
backend fills in small hooks (``_acquire``, ``_release``, ``_check_sql``, ``_interrupter``,
``_create_temp_tables``, ``_fetch_arrow``, ``_execute``, ``_error_kind``); nothing is added to
the per-query work of the twins this replaced.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Unpack

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skysense.errors import QueryError
from skysense.vo.backends.metadata import read_catalog
from skysense.vo.backends.protocol import (
    BackendQueryOptions,
    QueryHandle,
    QueryTimeout,
    UploadTable,
    quote_ident,
)
from skysense.vo.backends.watchdog import WATCHDOG
from skysense.vo.schema import SchemaCatalog

__all__ = ["BackendBase", "ResultStream", "DEFAULT_BATCH_ROWS"]

#: Rows per record batch of a streamed result (a batch of the widest results stays some MB).
DEFAULT_BATCH_ROWS = 65_536

# Errors a reader raises for a database error met while batches are read: Arrow carries the
# driver's message in an OSError / ArrowException.
_STREAM_ERRORS = (OSError, pa.ArrowException)


class ResultStream:
    """The record batches of one running query, in order.

    Iterate once (or call :meth:`read_all`); a database error met on the way is raised as
    the :class:`~skysense.errors.QueryError` the query itself would have raised.

    Parameters
    ----------
    reader : pyarrow.RecordBatchReader
        The database's batches.
    errors : tuple of exception types
        Errors of the database driver (converted by ``convert``).
    convert : callable
        Maps one such error to a :class:`~skysense.errors.QueryError`.
    """

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        *,
        errors: tuple[type[BaseException], ...],
        convert: Callable[[BaseException], QueryError],
    ):
        self._reader = reader
        self._errors = errors
        self._convert = convert
        self.schema: pa.Schema = reader.schema
        self.exhausted = False
        self.num_rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                self.exhausted = True
                return
            except QueryError:
                raise
            except self._errors as exc:
                raise self._convert(exc) from None
            self.num_rows += batch.num_rows
            yield batch

    def read_all(self) -> pa.Table:
        """Every remaining row as one table."""
        return pa.Table.from_batches(list(self), schema=self.schema)


class BackendBase(ABC):
    """What :class:`~skysense.vo.backends.DuckDBBackend` and
    :class:`~skysense.vo.backends.PostgresBackend` share: the query path, catalog caching,
    thread offload, HEALPix helper tables, records and UWS jobs."""

    dialect = ""
    _catalog_ttl_s = float("inf")
    #: Time limits fired by the shared watchdog thread (interrupting the connection), rather
    #: than by the database itself.
    _timeout_by_watchdog = False
    #: The database driver's base exception class (set by the backend).
    _db_error: type[BaseException] | tuple[type[BaseException], ...] = Exception

    def __init__(self):
        self._catalog: SchemaCatalog | None = None
        self._catalog_time = 0.0
        self._catalog_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._memory_limit_mb = 2048
        self._spill_limit_mb: int | None = None

    def harden(
        self,
        *,
        memory_limit_mb: int = 2048,
        threads: int = 2,
        spill_dir: str | Path | None = None,
        spill_limit_mb: int | None = None,
    ) -> None:
        """Server mode: cap the memory, threads and spill space of user queries (and, on
        DuckDB, forbid any file access and lock the settings).

        Parameters
        ----------
        memory_limit_mb : int
            Memory cap (DuckDB's ``memory_limit``; a quarter of it is PostgreSQL's
            ``work_mem`` of each query).
        threads : int
            DuckDB's threads (PostgreSQL: unused).
        spill_dir : str or Path, optional
            Where DuckDB spills operators larger than memory (created when missing; default
            ``<db>.tmp``). PostgreSQL spills in its own data directory.
        spill_limit_mb : int, optional
            Cap of the spilled bytes (default: the database's own).
        """
        self._harden(int(memory_limit_mb), int(threads), spill_dir, spill_limit_mb)

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

    # ---- queries
    def query(self, sql: str, **options: Unpack[BackendQueryOptions]) -> pa.Table:
        """Run one translated SELECT and return all its rows (:meth:`query_stream`, read
        whole); parameters and errors as there."""
        with self.query_stream(sql, **options) as stream:
            return stream.read_all()

    @contextlib.contextmanager
    def query_stream(
        self,
        sql: str,
        *,
        uploads: Sequence[UploadTable] = (),
        aux: Sequence = (),
        timeout_s: float | None = None,
        handle: QueryHandle | None = None,
    ) -> Iterator[ResultStream]:
        """Run one translated SELECT and yield its rows as a :class:`ResultStream` of Arrow
        record batches, read from the database as they are consumed.

        The connection, the time limit and the cancel handle stay attached until the block
        ends, so a large result never sits whole in memory. Leaving the block before the last
        batch stops the query (its connection is closed, not pooled).

        Parameters
        ----------
        sql : str
            A single SELECT statement (from :func:`skysense.vo.sql.translate`).
        uploads, aux, timeout_s, handle
            See :class:`~skysense.vo.backends.protocol.BackendQueryOptions`.

        Raises
        ------
        QueryError
            Not a single SELECT, a database error, a timeout or a cancellation, also when met
            while batches are read.
        """
        con = self._acquire()
        failed = True
        timer = None
        timed_out = None

        def to_query_error(exc: BaseException) -> QueryError:
            return self._query_error(exc, timeout_s, timed_out)

        try:
            self._check_sql(con, sql)
            if handle is not None:
                handle._attach(self._interrupter(con))
                if handle.cancelled:
                    raise QueryError("query was aborted")
            if timeout_s is not None and self._timeout_by_watchdog:
                timed_out = threading.Event()
                timer = WATCHDOG.schedule(timeout_s, _expire(timed_out, self._interrupter(con)))
            if uploads or aux:
                self._create_temp_tables(con, self._temp_tables(con, uploads, aux))
            stream = ResultStream(
                self._execute_stream(con, sql, timeout_s),
                errors=(*_as_tuple(self._db_error), *_STREAM_ERRORS),
                convert=to_query_error,
            )
            yield stream
            failed = not stream.exhausted
        except self._db_error as exc:
            raise to_query_error(exc) from None
        finally:
            if timer is not None:
                WATCHDOG.cancel(timer)
            if handle is not None:
                handle._attach(None)
            self._release(con, temp_tables=bool(uploads or aux), failed=failed)

    def _query_error(
        self, exc: BaseException, timeout_s: float | None, timed_out: threading.Event | None
    ) -> QueryError:
        """The :class:`QueryError` a database error of a user query becomes."""
        kind = self._error_kind(exc)
        if kind == "memory":
            return QueryError(self._memory_message(exc))
        # An interrupt, or the error a query reports when interrupted mid-way, is a timeout
        # when the watchdog fired it.
        if kind == "timeout" or (timed_out is not None and timed_out.is_set()):
            return QueryTimeout(f"query exceeded the time limit of {timeout_s:g} s")
        if kind == "cancelled":
            return QueryError("query was aborted")
        return QueryError(f"database error: {_first_line(exc)}")

    def _temp_tables(
        self, con, uploads: Sequence[UploadTable], aux: Sequence
    ) -> list[tuple[str, pa.Table]]:
        """(name, rows) of the temporary tables of one query: uploads, then HEALPix cells."""
        tables = [(up.physical, up.data) for up in uploads]
        if tables and any(hasattr(cells, "rows") for cells in aux):
            # A JoinCells table reads its rows with SQL, maybe from an upload: create them first.
            self._create_temp_tables(con, tables)
            tables = []
        for cells in aux:
            if hasattr(cells, "rows"):  # JoinCells (sql.joincells): rows from its own SELECT
                tables.append((cells.name, cells.rows(lambda q: self._fetch_arrow(con, q))))
                continue
            src = self._aux_source(cells, uploads, lambda q: self._fetch_arrow(con, q))
            tables.append((cells.name, self._cells_from_source(cells, src)))
        return tables

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

    def hpx_blocks(self, adql_name: str):
        """The :class:`~skysense.vo.hpx.BlockIndex` of a table, or None (the default: the
        HEALPix index alone prunes the table's rows)."""
        return None

    def table_names(self) -> list[str]:
        """ADQL names of the published (non-TAP_SCHEMA) tables."""
        return sorted(k for k in self.catalog().tables if not k.startswith("tap_schema."))

    def _read_catalog(self) -> SchemaCatalog:
        return read_catalog(self._admin_read_many)

    # ---- hooks each backend implements
    @abstractmethod
    def _harden(self, memory_limit_mb: int, threads: int, spill_dir, spill_limit_mb) -> None:
        """Apply :meth:`harden`'s limits."""

    @abstractmethod
    def _admin_write(self, statements) -> None:
        """Run internal ``(sql, params)`` statements in one transaction (``{p}``: marker)."""

    @abstractmethod
    def _admin_read(self, sql, params) -> list[tuple]:
        """The rows of one internal statement (``{p}``: parameter marker)."""

    @abstractmethod
    def _admin_read_many(self, statements: Sequence[str]) -> list[list[tuple]]:
        """The rows of several parameterless internal statements, on one connection."""

    @abstractmethod
    def _acquire(self):
        """A connection for one user query (known to ``cancel_all`` until released)."""

    @abstractmethod
    def _release(self, con, *, temp_tables: bool, failed: bool) -> None:
        """Give back the connection of a finished query (``failed``: it raised)."""

    def _check_sql(self, con, sql: str) -> None:
        """Refuse SQL that is not exactly one SELECT; by default nothing is refused here (a
        PostgreSQL prepared statement cannot hold a second command anyway)."""
        return None

    @abstractmethod
    def _interrupter(self, con) -> Callable[[], None]:
        """A callable another thread may call to stop the query running on ``con``."""

    @abstractmethod
    def _create_temp_tables(self, con, tables: list[tuple[str, pa.Table]]) -> None:
        """Create the temporary tables ``(name, rows)`` of one query on ``con``."""

    @abstractmethod
    def _fetch_arrow(self, con, sql: str) -> pa.Table:
        """The rows of an internal SELECT on ``con``."""

    @abstractmethod
    def _execute_stream(self, con, sql: str, timeout_s: float | None) -> pa.RecordBatchReader:
        """Start the user's SELECT on ``con`` (under ``timeout_s`` when the database enforces
        it); its rows as a reader of record batches."""

    @abstractmethod
    def _error_kind(self, exc: BaseException) -> str:
        """``"timeout"``, ``"cancelled"``, ``"memory"`` or ``"error"`` for a driver error, or
        for an Arrow error raised while batches are read (which carries the driver's text)."""

    @abstractmethod
    def _memory_message(self, exc: BaseException) -> str:
        """The message of a query that ran out of memory."""


def _as_tuple(errors) -> tuple:
    return errors if isinstance(errors, tuple) else (errors,)


def _parse_iso(text: str | None):
    if text is None:
        return None
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


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


#: A quoted absolute file path in a database error ('/srv/...', "C:\\..."): the server's
#: files (e.g. a missing or damaged Parquet partition of a table served over its files).
_QUOTED_PATH = re.compile(r"""(['"])(?:/|[A-Za-z]:[\\/])[^'"]*\1""")


def _first_line(exc: BaseException) -> str:
    """The first line of a database error as users see it: the server's file paths in it
    are replaced by their file name (users learn nothing of the server's filesystem)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return _QUOTED_PATH.sub(_file_name, line)


def _file_name(m: re.Match) -> str:
    """``'<file NAME>'`` for a quoted path: its last part without glob characters."""
    names = [p for p in re.split(r"[\\/]", m[0][1:-1]) if p and "*" not in p]
    return f"{m[1]}<file {names[-1] if names else ''}>{m[1]}"


def _expire(timed_out: threading.Event, interrupt: Callable[[], None]) -> Callable[[], None]:
    """The watchdog callback of one query: note the timeout, then interrupt the query."""

    def fire() -> None:
        timed_out.set()
        interrupt()

    return fire
