"""The contract between the VO server and a database: the :class:`Backend` protocol and the
values that cross it (:class:`TableSpec`, :class:`UploadTable`, :class:`QueryHandle`,
:class:`QueryTimeout`)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable

import pyarrow as pa

from skysense.errors import InputError, QueryError
from skysense.vo.schema import ColumnInfo, SchemaCatalog, TableInfo

__all__ = [
    "Backend",
    "BackendQueryOptions",
    "ServerLimits",
    "QueryHandle",
    "QueryTimeout",
    "TableSpec",
    "UploadTable",
    "quote_ident",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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


class BackendQueryOptions(TypedDict, total=False):
    """The options of one user query (:meth:`Backend.query`, :meth:`Backend.query_stream`).

    Attributes
    ----------
    uploads : sequence of UploadTable
        Created as temporary tables of the query's connection (default none).
    aux : sequence of HealpixCells
        HEALPix range tables the SQL refers to, created first (default none).
    timeout_s : float, optional
        Cancel the query after this many seconds (:class:`QueryTimeout`); default none.
    handle : QueryHandle, optional
        Lets another thread cancel the query.
    """

    uploads: Sequence[UploadTable]
    aux: Sequence
    timeout_s: float | None
    handle: QueryHandle | None


class ServerLimits(TypedDict, total=False):
    """The limits of server mode (:meth:`Backend.harden`).

    Attributes
    ----------
    memory_limit_mb : int
        Memory cap of the database (default 2048).
    threads : int
        Threads of the database (DuckDB; default 2).
    spill_dir : str or Path, optional
        Where operators larger than memory spill (DuckDB).
    spill_limit_mb : int, optional
        Cap of the spilled bytes.
    """

    memory_limit_mb: int
    threads: int
    spill_dir: str | Path | None
    spill_limit_mb: int | None


@runtime_checkable
class Backend(Protocol):
    """What the VO server needs from a database."""

    dialect: str  # "duckdb" | "postgresql"

    def close(self) -> None: ...

    def harden(self, **limits: Unpack[ServerLimits]) -> None: ...

    def cancel_all(self) -> None: ...

    def catalog(self) -> SchemaCatalog: ...

    def query(self, sql: str, **options: Unpack[BackendQueryOptions]) -> pa.Table: ...

    def query_stream(
        self, sql: str, **options: Unpack[BackendQueryOptions]
    ) -> AbstractContextManager: ...

    async def run(self, sql: str, **kwargs) -> pa.Table: ...

    def load_table(self, spec: TableSpec, data: pa.Table) -> None: ...

    def replace_rows(self, spec: TableSpec, batches: Any, column: str, value: Any) -> int: ...

    def drop_table(self, adql_name: str) -> None: ...

    def hpx_blocks(self, adql_name: str) -> Any: ...

    def put_record(self, kind: str, key: str, doc: dict) -> None: ...

    def get_record(self, kind: str, key: str) -> dict | None: ...

    def list_records(self, kind: str) -> list[dict]: ...

    def delete_record(self, kind: str, key: str) -> None: ...

    def jobs_save(self, job: dict) -> None: ...

    def jobs_load(self) -> list[dict]: ...

    def jobs_delete(self, job_id: str) -> None: ...
