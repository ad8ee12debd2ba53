"""The PostgreSQL backend, with Q3C cone indexes when the extension exists.

User queries go through ADBC (``adbc-driver-postgresql``): the driver prepares the statement
(which cannot contain a second command), then reads its rows with a binary ``COPY`` straight
into Arrow record batches, so a result is never turned into Python objects row by row and is
streamed batch by batch. Query connections are read-only by default (session setting; the
ADQL layer allows no function that could change it) with JIT off and a ``work_mem`` of a quarter
of the memory cap; the shared watchdog fires time limits with a cancel request, which stops the
query in the server. Publishing, metadata, records and jobs use psycopg. Both kinds of
connection come from small pools.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from skysense.errors import ConfigError
from skysense.vo.backends import metadata
from skysense.vo.backends.base import BackendBase, _first_line, _unquote
from skysense.vo.backends.protocol import TableSpec, quote_ident

__all__ = ["PostgresBackend"]

log = logging.getLogger(__name__)

#: Target size of one record batch the driver reads (bytes of Arrow data): some 100,000 rows
#: of a narrow cone-search result, so a streamed answer holds a few MB at a time.
_BATCH_BYTES = 4 << 20


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
    # The shared watchdog fires time limits with a cancel request, so the query stops in the
    # server; a per-query SET statement_timeout would cost a round trip (each one a wake-up
    # of the database process: milliseconds on a busy machine).
    _timeout_by_watchdog = True

    def __init__(self, dsn: str, *, pool_size: int = 8):
        import psycopg
        from adbc_driver_manager import Error as AdbcError

        super().__init__()
        self.dsn = dsn
        self._db_error = (psycopg.Error, AdbcError)
        self._admin_pool = _Pool(lambda: psycopg.connect(dsn, autocommit=True), pool_size)
        self._query_pool = _Pool(self._open_session, pool_size)
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

    def _harden(self, memory_limit_mb: int, threads: int, spill_dir, spill_limit_mb) -> None:
        # Each query's work_mem is a quarter of the memory cap. PostgreSQL spills in its own
        # data directory, so spill_dir is not used; each query connection gets
        # temp_file_limit = spill_limit_mb when the role may set it (a superuser setting),
        # otherwise the administrator's limit applies, and a warning says so.
        import psycopg

        self._memory_limit_mb = memory_limit_mb
        self._spill_limit_mb = None
        self._query_pool.clear()  # sessions carry the settings of when they were opened
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
        """Cancel every running query on the server (shutdown)."""
        for session in self._query_pool.busy():
            with contextlib.suppress(Exception):
                session.cancel()
        for con in self._admin_pool.busy():
            with contextlib.suppress(Exception):
                con.cancel_safe(timeout=2.0)

    def close(self) -> None:
        """Close every pooled connection."""
        self._query_pool.clear()
        self._admin_pool.clear()

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        """A pooled psycopg connection for internal statements."""
        con = self._admin_pool.acquire()
        failed = True
        try:
            yield con
            failed = False
        finally:
            self._admin_pool.give_back(con, failed)

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

    # -- query hooks (the query path itself is BackendBase.query_stream)
    def _open_session(self) -> _Session:
        """A new ADBC connection with this backend's limits as session settings.

        Set once per connection, so that a query costs no round trip besides its own:
        transactions read-only by default (uploads open a read-write one), no JIT (a cone of
        some 10^5 rows passes ``jit_above_cost``, and compiling its 100 Q3C range conditions
        costs more than it saves: 543 vs 307 ms for 96,000 rows), ``work_mem`` a quarter of
        the memory cap and the spill cap.
        """
        import adbc_driver_postgresql.dbapi as adbc_pg

        session = _Session(adbc_pg.connect(self.dsn, autocommit=True))
        try:
            session.run("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            session.run("SET jit = off")
            # Only the prepared small-cone shapes (below) have parameters: their generic plan
            # is the point of preparing them.
            session.run("SET plan_cache_mode = force_generic_plan")
            session.run(f"SET work_mem = '{max(4, self._memory_limit_mb // 4)}MB'")
            if self._spill_limit_mb is not None:
                session.run(f"SET temp_file_limit = '{self._spill_limit_mb}MB'")
        except BaseException:
            session.close()
            raise
        return session

    def _acquire(self) -> _Session:
        return self._query_pool.acquire()

    def _release(self, con: _Session, *, temp_tables: bool, failed: bool) -> None:
        try:
            if temp_tables and not failed:
                con.run("DISCARD TEMP")  # this query's uploads and HEALPix cells
        except Exception:
            failed = True
        self._query_pool.give_back(con, failed)

    def _interrupter(self, con: _Session):
        return con.cancel

    def _create_temp_tables(self, con: _Session, tables: list[tuple[str, pa.Table]]) -> None:
        con.run("BEGIN READ WRITE")  # sessions are read-only by default
        for name, data in tables:
            # ADBC creates the table and loads it by binary COPY; it quotes the name itself.
            con.cursor.adbc_ingest(_unquote(name), _ingestable(data), mode="create", temporary=True)
        con.run("COMMIT")

    def _fetch_arrow(self, con: _Session, sql: str) -> pa.Table:
        con.cursor.execute(sql)
        return _normalise(con.cursor.fetch_arrow_table())

    def _execute_stream(
        self, con: _Session, sql: str, timeout_s: float | None
    ) -> pa.RecordBatchReader:
        fast = _small_cone(sql)
        if fast is not None:
            name = con.prepared_name(*fast)
            if name is not None:
                # Planning Q3C's 100 index ranges is most of a small cone's time (2-6 ms);
                # the prepared generic plan skips it. Its rows come in one piece (ADBC's COPY
                # cannot run EXECUTE), which is why only small cones take this path.
                literals = ", ".join(f"'{v}'" for v in fast[1])
                con.fast.execute(f"EXECUTE {name}({literals})")
                return _normalised_reader(con.fast.fetch_record_batch())
        # The driver prepares the statement first (a second command is refused there), then
        # reads the rows by binary COPY.
        con.cursor.execute(sql)
        return _normalised_reader(con.cursor.fetch_record_batch())

    def _error_kind(self, exc: BaseException) -> str:
        import psycopg

        if isinstance(exc, psycopg.errors.QueryCanceled):
            return "timeout" if "statement timeout" in str(exc) else "cancelled"
        if isinstance(exc, psycopg.errors.OutOfMemory):
            return "memory"
        # ADBC errors carry the SQLSTATE; errors met while batches are read only the text.
        text = str(exc)
        if "canceling statement due to statement timeout" in text:
            return "timeout"
        if "canceling statement" in text:
            return "cancelled"
        if getattr(exc, "sqlstate", None) == "53200" or "out of memory" in text:
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
            with _dropped_after(con, tmp_phys):
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
        self._invalidate()

    def replace_rows(self, spec: TableSpec, batches, column: str, value) -> int:
        """Replace the rows whose ``column`` equals ``value`` by ``batches`` (Arrow tables),
        keeping every other row (see the DuckDB backend). The batches are copied into a
        staging table; one transaction deletes and inserts, so readers never see a mix; the
        table (with its HEALPix and Q3C indexes) is created when absent. Returns the rows of
        the whole table afterwards."""
        tmp = f"_load_{secrets.token_hex(6)}"
        schema_q = quote_ident(spec.schema)
        tmp_phys = f"{schema_q}.{quote_ident(tmp)}"
        with self._write_lock, self._connection() as con:
            exists = con.execute("SELECT to_regclass(%s)", (spec.physical,)).fetchone()[0]
            if exists is None:
                return self._first_rows(con, spec, batches, tmp_phys)
            with _dropped_after(con, tmp_phys):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_q}")
                in_order = metadata.OrderCheck(spec.hpx_column)
                with con.transaction():
                    con.execute(f"CREATE TABLE {tmp_phys} ({metadata.ddl_columns(spec)})")
                    for batch in batches:
                        data = metadata.cast_to_spec(spec, batch)
                        in_order.update(data)
                        _pg_copy_rows(con, tmp_phys, data)
                order = "" if in_order.sorted else f" ORDER BY {quote_ident(spec.hpx_column)}"
                q3c = bool(spec.ra and spec.dec and self.has_q3c and self._ensure_q3c(con))
                with con.transaction():
                    con.execute("SELECT pg_advisory_xact_lock(7211002)")
                    exists = con.execute("SELECT to_regclass(%s)", (spec.physical,)).fetchone()[0]
                    if exists is None:
                        con.execute(f"CREATE TABLE {spec.physical} ({metadata.ddl_columns(spec)})")
                        _create_indexes(con, spec.physical, spec, q3c)
                    con.execute(f"DELETE FROM {spec.physical} WHERE {quote_ident(column)} = %s",
                                (value,))  # fmt: skip
                    con.execute(f"INSERT INTO {spec.physical} SELECT * FROM {tmp_phys}{order}")
                    n_rows = _write_metadata(con, spec, q3c)
                con.execute(f"ANALYZE {spec.physical}")
        self._invalidate()
        return n_rows

    def _first_rows(self, con, spec: TableSpec, batches, tmp_phys: str) -> int:
        """:meth:`replace_rows` into a table that does not exist yet: the batches are copied
        (streamed) straight into the new table under a temporary name, its indexes are built
        once all rows are in (faster than growing them row by row), and one transaction
        renames it and writes its metadata. One copy of the rows on disk, not two (a staging
        table and the table): at 100M rows the difference is the size of the table.

        The rows are not clustered on the Q3C index afterwards: HATS batches arrive in NESTED
        HEALPix order, already spatially coherent, and CLUSTER would rewrite the table (a
        second copy on disk while it runs). The connection autocommits: each COPY of a batch
        is its own transaction."""
        try:
            with _dropped_after(con, tmp_phys):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(spec.schema)}")
                con.execute(f"CREATE TABLE {tmp_phys} ({metadata.ddl_columns(spec)})")
                for batch in batches:
                    with con.transaction():
                        _pg_copy_rows(con, tmp_phys, metadata.cast_to_spec(spec, batch))
                q3c = bool(spec.ra and spec.dec and self.has_q3c and self._ensure_q3c(con))
                _create_indexes(con, tmp_phys, spec, q3c)
                with con.transaction():
                    con.execute("SELECT pg_advisory_xact_lock(7211002)")
                    con.execute(f"ALTER TABLE {tmp_phys} RENAME TO {quote_ident(spec.name)}")
                    n_rows = _write_metadata(con, spec, q3c)
                con.execute(f"ANALYZE {spec.physical}")
        finally:
            self._invalidate()
        return n_rows

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


def _create_indexes(con, physical: str, spec: TableSpec, q3c: bool) -> None:
    """The HEALPix index of a published table and, with ``q3c``, its Q3C index."""
    if spec.hpx_column is not None:
        con.execute(f"CREATE INDEX ON {physical} ({quote_ident(spec.hpx_column)})")
    if q3c:
        con.execute(f"CREATE INDEX ON {physical} "
                    f"(q3c_ang2ipix({quote_ident(spec.ra)}, {quote_ident(spec.dec)}))")  # fmt: skip


@contextlib.contextmanager
def _dropped_after(con, tmp_phys: str) -> Iterator[None]:
    """Drop the staging table ``tmp_phys`` on leaving, whether the load worked or not (a
    staging table renamed into place is gone already)."""
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            con.execute(f"DROP TABLE IF EXISTS {tmp_phys}")


def _write_metadata(con, spec: TableSpec, q3c: bool) -> int:
    """Count the rows of the published table ``spec`` and write its TAP_SCHEMA and private
    rows, in ``con``'s open transaction (after its rows are in place). Returns the count."""
    n_rows = int(con.execute(f"SELECT count(*) FROM {spec.physical}").fetchone()[0])
    table_row, column_rows, private_row = metadata.table_rows(spec, n_rows, q3c=q3c)
    cur = con.cursor()
    metadata.write_table_metadata(
        _PgAdapter(cur), "%s", spec, table_row, column_rows, private_row,
        lambda sql, rows: cur.executemany(sql, rows),
    )  # fmt: skip
    return n_rows


class _PgAdapter:
    """DuckDB-like ``execute(...).fetchone()`` over a psycopg cursor (shared DDL helpers)."""

    def __init__(self, cur):
        self._cur = cur

    def execute(self, sql, params=None):
        self._cur.execute(sql, params)
        return self._cur


class _Pool:
    """At most ``size`` connections in use at once, idle ones kept for reuse (newest first);
    the ones in use are known to :meth:`busy` (``cancel_all``)."""

    def __init__(self, factory: Callable[[], Any], size: int):
        self._factory = factory
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._busy: set = set()
        self._lock = threading.Lock()

    def acquire(self):
        self._slots.acquire()
        try:
            con = None
            while con is None:
                try:
                    con = self._idle.get_nowait()
                except queue.Empty:
                    con = self._factory()
                    break
                if con.closed:
                    con = None
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._busy.add(con)
        return con

    def give_back(self, con, failed: bool) -> None:
        """Pool ``con`` again, or close it when its work failed or it broke."""
        try:
            with self._lock:
                self._busy.discard(con)
            if not failed and not con.closed:
                self._idle.put(con)
                return
            with contextlib.suppress(Exception):
                con.close()
        finally:
            self._slots.release()

    def busy(self) -> list:
        with self._lock:
            return list(self._busy)

    def clear(self) -> None:
        """Close every idle connection."""
        while True:
            try:
                con = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                con.close()


class _Session:
    """One ADBC connection, the cursor its queries run on (binary COPY), and the cursor and
    prepared statements of small cones."""

    def __init__(self, con):
        self._con = con
        self.cursor = con.cursor()
        self.cursor.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(_BATCH_BYTES)}
        )
        self.fast = con.cursor()
        self.fast.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
        self._prepared: dict[str, str | None] = {}  # shape -> statement name (None: refused)
        self._closed = False

    def prepared_name(self, shape: str, values: list[str]) -> str | None:
        """The name of this session's prepared statement of ``shape`` (prepared on first
        use; None when PostgreSQL refuses it, e.g. a literal that must stay a literal)."""
        if shape not in self._prepared:
            if len(self._prepared) >= _MAX_PREPARED:
                self.run("DEALLOCATE ALL")
                self._prepared.clear()
            name = f"skysense_cone_{len(self._prepared)}"
            try:
                self.run(f"PREPARE {name} AS {shape}")
            except Exception:  # noqa: BLE001 - any refusal: run such queries as they are
                name = None
            self._prepared[shape] = name
        return self._prepared[shape]

    @property
    def closed(self) -> bool:
        return self._closed

    def run(self, sql: str) -> None:
        self.cursor.execute(sql)

    def cancel(self) -> None:
        """Cancel the running statement on the server (a libpq cancel request)."""
        self.cursor.adbc_cancel()
        self.fast.adbc_cancel()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self.cursor.close()
            self.fast.close()
        self._con.close()


#: Cones up to this radius run as prepared statements (a few thousand rows at 10^5 rows per
#: deg^2): larger ones are read by binary COPY, streamed, which is faster for many rows
#: (46 against 68 ms for 15,700 rows).
SMALL_CONE_DEG = 0.1
_MAX_PREPARED = 64  # shapes per session
_QUOTED_OR_NUMBER = re.compile(
    r"""('(?:[^']|'')*'|"(?:[^"]|"")*")"""
    r"|(?<![\w$.])(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)(?![\w.])"
)
_QUOTED = re.compile(r"'(?:[^']|'')*'|" + r'"(?:[^"]|"")*"')
_RADIAL = re.compile(r"q3c_radial_query\([^()]*,\s*([0-9.eE+-]+)\s*\)")
_ORDINAL_CONTEXT = re.compile(r"\b(?:ORDER|GROUP)\s+BY\b|::|\bCAST\b", re.IGNORECASE)


def _small_cone(sql: str) -> tuple[str, list[str]] | None:
    """``(shape, values)`` of a Q3C cone of at most :data:`SMALL_CONE_DEG`: the SQL with each
    number literal outside quotes replaced by a typed parameter (``$n::integer``, ``bigint`` or
    ``numeric``, the types PostgreSQL gives such literals), and the literals; None for other
    SQL, and for SQL where a number may be syntax rather than a value (``ORDER BY 1``,
    ``CAST``, ``::``)."""
    code = _QUOTED.sub(" ", sql)
    cone = _RADIAL.search(code)
    if cone is None or _ORDINAL_CONTEXT.search(code):
        return None
    try:
        if not 0 <= float(cone.group(1)) <= SMALL_CONE_DEG:
            return None
    except ValueError:
        return None
    values: list[str] = []

    def parameter(match: re.Match) -> str:
        if match.group(1):
            return match.group(1)
        text = match.group(2)
        values.append(text)
        if text.isdigit():
            kind = "integer" if int(text) < 2**31 else "bigint" if int(text) < 2**63 else "numeric"
        else:
            kind = "numeric"
        return f"${len(values)}::{kind}"

    return _QUOTED_OR_NUMBER.sub(parameter, sql), values


def _ingestable(data: pa.Table) -> pa.Table:
    """``data`` with the Arrow types ADBC cannot load into PostgreSQL cast to ones it can
    (unsigned to wider signed integers, half floats to single)."""
    fields = []
    for f in data.schema:
        typ = f.type
        if pa.types.is_uint8(typ):
            typ = pa.int16()
        elif pa.types.is_uint16(typ):
            typ = pa.int32()
        elif pa.types.is_unsigned_integer(typ):
            typ = pa.int64()
        elif pa.types.is_float16(typ):
            typ = pa.float32()
        elif pa.types.is_dictionary(typ):
            typ = typ.value_type
        fields.append(pa.field(f.name, typ))
    schema = pa.schema(fields)
    return data if schema.equals(data.schema) else data.cast(schema)


def _target_type(field: pa.Field) -> pa.DataType | None:
    """The Arrow type a result column of this driver type is served as (None: as it is).

    NUMERIC arrives as text (arbitrary precision) and is served as float64; other types the
    driver passes as opaque text stay text; intervals, arrays and the like become their text.
    """
    typ = field.type
    if isinstance(typ, pa.ExtensionType):
        name = (field.metadata or {}).get(b"POSTGRESQL:type", b"")
        return pa.float64() if name == b"numeric" else pa.string()
    if (
        pa.types.is_boolean(typ)
        or pa.types.is_integer(typ)
        or pa.types.is_floating(typ)
        or pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_timestamp(typ)
        or pa.types.is_date(typ)
    ):
        return None
    return pa.string()


def _convert_column(arr: pa.Array, target: pa.DataType) -> pa.Array:
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Rare types (intervals, arrays, ranges): their Python text, value by value.
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], target)


def _normalise(table: pa.Table) -> pa.Table:
    """A driver result with every column in a type the writers know (see ``_target_type``)."""
    for i, f in enumerate(table.schema):
        target = _target_type(f)
        if target is not None:
            column = pa.chunked_array(
                [_convert_column(c, target) for c in table.column(i).chunks], target
            )
            table = table.set_column(i, pa.field(f.name, target), column)
    return table


def _normalised_reader(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """``reader`` with its batches converted as :func:`_normalise` does (unchanged when every
    column already has a served type, the usual case)."""
    targets = [_target_type(f) for f in reader.schema]
    if all(t is None for t in targets):
        return reader
    schema = pa.schema(
        [f if t is None else pa.field(f.name, t) for f, t in zip(reader.schema, targets)]
    )

    def batches():
        for batch in reader:
            arrays = [
                col if t is None else _convert_column(col, t)
                for col, t in zip(batch.columns, targets)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


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
