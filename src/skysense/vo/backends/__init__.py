"""Database backends of the VO server: DuckDB (embedded, default) and PostgreSQL.

Both implement one :class:`~skysense.vo.backends.protocol.Backend` protocol:

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
query on a connection whose transactions are ``READ ONLY``, as a prepared statement (which
cannot contain a second command). Both stop a query at its time limit where it runs (DuckDB's
interrupt, PostgreSQL's cancel request), fired by one watchdog thread; both stream results as
Arrow record batches (:meth:`~skysense.vo.backends.base.BackendBase.query_stream`).

Modules, one concern each: :mod:`~skysense.vo.backends.protocol` (the contract and the values
crossing it), :mod:`~skysense.vo.backends.metadata` (``TAP_SCHEMA`` and the private tables),
:mod:`~skysense.vo.backends.base` (the query path and stores both backends share),
:mod:`~skysense.vo.backends.watchdog` (query time limits),
:mod:`~skysense.vo.backends.duckdb` and :mod:`~skysense.vo.backends.postgres`.
"""

from __future__ import annotations

from pathlib import Path

from skysense.errors import ConfigError
from skysense.vo.backends.duckdb import DuckDBBackend
from skysense.vo.backends.metadata import TAP_SCHEMA_KEYS, TAP_SCHEMA_TABLES, arrow_type
from skysense.vo.backends.postgres import PostgresBackend
from skysense.vo.backends.protocol import (
    Backend,
    QueryHandle,
    QueryTimeout,
    TableSpec,
    UploadTable,
    quote_ident,
)
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
