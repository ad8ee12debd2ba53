"""The PostgreSQL backend (psycopg 3), with Q3C cone indexes when the extension exists.

Each user query runs in a ``READ ONLY`` transaction with ``statement_timeout`` (the database
fires the time limit) and a ``work_mem`` of a quarter of the memory cap, as a prepared
statement (which cannot contain a second command). Connections come from a small pool.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from skysense.errors import ConfigError
from skysense.vo.backends import metadata
from skysense.vo.backends.base import BackendBase, _first_line
from skysense.vo.backends.protocol import TableSpec, quote_ident

__all__ = ["PostgresBackend"]

log = logging.getLogger(__name__)

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


class PostgresBackend(BackendBase):
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
        self._db_error = psycopg.Error
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._busy: set = set()  # connections in use (cancel_all)
        self._busy_lock = threading.Lock()
        try:
            with psycopg.connect(dsn, autocommit=True) as con:
                with con.transaction():
                    # Serialise concurrent first-time setup from several processes.
                    con.execute("SELECT pg_advisory_xact_lock(7211001)")
                    cur = con.cursor()
                    metadata.create_metadata_tables(
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
        """Remember the memory cap (each query's ``work_mem`` is a quarter of it) and the
        spill cap.

        PostgreSQL spills in its own data directory, so ``spill_dir`` is not used. Each query
        gets ``temp_file_limit = spill_limit_mb`` when the role may set it (a superuser
        setting); otherwise the administrator's limit applies, and a warning says so.
        """
        import psycopg

        self._memory_limit_mb = memory_limit_mb
        self._spill_limit_mb = None
        if spill_limit_mb is None:
            return
        try:
            with psycopg.connect(self.dsn, autocommit=True) as con, con.transaction():
                con.execute(f"SET LOCAL temp_file_limit = '{int(spill_limit_mb)}MB'")
        except psycopg.errors.InsufficientPrivilege:
            log.warning(
                "this PostgreSQL role may not set temp_file_limit: spill space is capped only "
                "by the server's own setting"
            )
            return
        self._spill_limit_mb = int(spill_limit_mb)

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

    def _acquire(self):
        """A pooled (or new) connection, counted against the pool size and known to
        :meth:`cancel_all` until :meth:`_give_back`."""
        import psycopg

        self._slots.acquire()
        try:
            try:
                con = self._pool.get_nowait()
                if con.closed or con.broken:
                    con = None
            except queue.Empty:
                con = None
            if con is None:
                con = psycopg.connect(self.dsn, autocommit=True)
        except BaseException:
            self._slots.release()
            raise
        with self._busy_lock:
            self._busy.add(con)
        return con

    def _give_back(self, con, failed: bool) -> None:
        """Return ``con`` to the pool, or close it when its work failed or it broke."""
        try:
            with self._busy_lock:
                self._busy.discard(con)
            if not failed and not con.closed and not con.broken:
                self._pool.put(con)
                return
            with contextlib.suppress(Exception):
                con.close()
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        con = self._acquire()
        failed = True
        try:
            yield con
            failed = False
        finally:
            self._give_back(con, failed)

    def _admin_write(self, statements) -> None:
        with self._connection() as con, con.transaction():
            for sql, params in statements:
                con.execute(sql.format(p="%s"), params)

    def _admin_read(self, sql, params) -> list[tuple]:
        with self._connection() as con:
            return con.execute(sql.format(p="%s"), params).fetchall()

    def _admin_read_many(self, statements) -> list[list[tuple]]:
        with self._connection() as con:
            return [con.execute(sql).fetchall() for sql in statements]

    # -- query hooks (the query path itself is BackendBase.query; _acquire is above)
    def _release(self, con, *, temp_tables: bool, failed: bool) -> None:
        try:
            if temp_tables and not con.closed:
                with contextlib.suppress(Exception):
                    con.execute("DISCARD TEMP")
            with contextlib.suppress(Exception):
                con.execute("DEALLOCATE ALL")
        finally:
            self._give_back(con, failed)

    def _interrupter(self, con):
        return con.cancel

    def _create_temp_tables(self, con, tables: list[tuple[str, pa.Table]]) -> None:
        with con.transaction():
            for name, data in tables:
                _pg_copy_table(con, name, data, temp=True)

    def _fetch_arrow(self, con, sql: str) -> pa.Table:
        return _pg_fetch_arrow(con.execute(sql))

    def _execute(self, con, sql: str, timeout_s: float | None) -> pa.Table:
        with con.transaction():
            con.execute("SET TRANSACTION READ ONLY")
            if timeout_s is not None:
                con.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            work_mem = max(4, self._memory_limit_mb // 4)
            con.execute(f"SET LOCAL work_mem = '{work_mem}MB'")
            if self._spill_limit_mb is not None:
                con.execute(f"SET LOCAL temp_file_limit = '{self._spill_limit_mb}MB'")
            cur = con.cursor()
            # A prepared statement cannot hold a second command (no "; COMMIT; ...").
            cur.execute(sql.replace("%", "%%"), (), prepare=True)
            return _pg_fetch_arrow(cur)

    def _error_kind(self, exc: BaseException) -> str:
        import psycopg

        if isinstance(exc, psycopg.errors.QueryCanceled):
            return "timeout" if "statement timeout" in str(exc) else "cancelled"
        if isinstance(exc, psycopg.errors.OutOfMemory):
            return "memory"
        return "error"

    def _memory_message(self, exc: BaseException) -> str:
        return f"query needs too much memory: {_first_line(exc)}"

    def load_table(self, spec: TableSpec, data: pa.Table) -> None:
        """Create or atomically replace a table; B-tree index on the HEALPix column and a Q3C
        index on (ra, dec) when the extension is available."""
        data = metadata.cast_to_spec(spec, data)
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
                    con.execute(f"CREATE TABLE {tmp_phys} ({metadata.ddl_columns(spec)})")
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
                table_row, column_rows, private_row = metadata.table_rows(
                    spec, data.num_rows, q3c=q3c
                )
                with con.transaction():
                    con.execute("SELECT pg_advisory_xact_lock(7211002)")
                    con.execute(f"DROP TABLE IF EXISTS {spec.physical}")
                    con.execute(f"ALTER TABLE {tmp_phys} RENAME TO {quote_ident(spec.name)}")
                    cur = con.cursor()
                    metadata.write_table_metadata(
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
        schema, name = metadata.split_adql_name(adql_name)
        with self._write_lock, self._connection() as con, con.transaction():
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(schema)}.{quote_ident(name)}")
            metadata.delete_table_metadata(
                _PgAdapter(con.cursor()), "%s", f"{schema}.{name}", schema
            )
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
