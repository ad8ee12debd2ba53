"""The service database from Python: publish tables and maps, list, drop and query them.

What the ``skysense vo`` verbs do, for a notebook or a script. Each function takes the
database by name (a DuckDB file or a ``postgresql://`` URL, :func:`default_db`), opens it,
does one thing and closes it again, also when it fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from skysense.errors import InputError

__all__ = [
    "DEFAULT_DB",
    "default_db",
    "existing_db",
    "opened",
    "describe_published",
    "publish_table",
    "publish_field",
    "publish_map_file",
    "table_summaries",
    "drop_table",
    "query",
]

#: The database used when none is named and ``$SKYSENSE_VO_DB`` is unset.
DEFAULT_DB = "skysense.duckdb"


def default_db(db: str | os.PathLike | None = None) -> str:
    """The database to use: ``db``, else ``$SKYSENSE_VO_DB``, else :data:`DEFAULT_DB`."""
    return str(db or os.environ.get("SKYSENSE_VO_DB") or DEFAULT_DB)


def existing_db(db: str | os.PathLike | None = None) -> str:
    """The database to serve (:func:`default_db`), checked to exist when it is a DuckDB file.

    Raises
    ------
    ConfigError
        A DuckDB file that does not exist; the message says how to publish a table first.
    """
    from skysense.errors import ConfigError
    from skysense.vo.settings import is_postgres_url

    db = default_db(db)
    if not is_postgres_url(db) and not os.path.exists(db):
        raise ConfigError(
            f"database file {db} does not exist; publish a table first "
            "(skysense vo publish FILE --table SCHEMA.NAME --db ...)",
            key="--db",
        )
    return db


@contextlib.contextmanager
def opened(db: str | os.PathLike | None = None, *, create: bool = True) -> Iterator:
    """The open :class:`~skysense.vo.backends.Backend` of ``db`` (closed on leaving).

    ``create``: create a missing DuckDB file; otherwise a missing file is a ``ConfigError``.
    """
    from skysense.vo.backends import open_backend

    backend = open_backend(default_db(db), create=create)
    try:
        yield backend
    finally:
        backend.close()


def publish_table(
    db: str | os.PathLike | None, path: str | Path, table: str, **options: Any
) -> tuple:
    """Load a table file into ``db`` as ``table`` (``SCHEMA.NAME``).

    ``options`` are those of :func:`skysense.vo.publish.publish_file`: ``description``,
    ``meta``, ``ra``, ``dec``, ``fmt``.

    Returns
    -------
    spec : TableSpec
        What was published.
    n_rows : int
        Rows in the published table.
    """
    from skysense.vo.publish import publish_file

    with opened(db) as backend:
        spec = publish_file(backend, path, table, **options)
        return spec, backend.catalog().tables[spec.adql_name].n_rows


def publish_field(
    db: str | os.PathLike | None, path: str | Path, table: str, field: str, **options: Any
) -> tuple:
    """Publish a HATS catalogue as the field ``field`` of ``table``, incrementally.

    ``options``: ``description``, ``meta``, ``ra``, ``dec``, ``field_column``, ``select`` of
    :func:`skysense.vo.publish.publish_hats_field`; ``over_files=True`` serves the files
    in place instead (:func:`skysense.vo.publish.publish_hats_files`, DuckDB).

    Returns
    -------
    spec : TableSpec
    n_rows : int
        Rows of the whole table.
    """
    from skysense.vo.publish import publish_hats_field, publish_hats_files

    how = publish_hats_files if options.pop("over_files", False) else publish_hats_field
    with opened(db) as backend:
        return how(backend, path, table, field, **options)


def describe_published(spec, n_rows: int, path: str | Path) -> str:
    """One line on a table :func:`publish_table` published from ``path``: its ADQL name, rows,
    columns and positions.

    Parameters
    ----------
    spec : TableSpec; n_rows : int - as :func:`publish_table` returns them
    """
    pos = f"; RA/Dec = {spec.ra}/{spec.dec} (HEALPix-indexed)" if spec.ra else "; no RA/Dec"
    return f"published {path} as {spec.adql_name}: {n_rows} rows, {len(spec.columns)} columns{pos}"


def publish_map_file(
    db: str | os.PathLike | None,
    fits_path: str | Path,
    *,
    name: str,
    description: str | None = None,
    band: str | None = None,
):
    """Register a FITS map in ``db`` (see :func:`skysense.vo.maps.publish_map`); its MapInfo."""
    from skysense.vo.maps import publish_map

    with opened(db) as backend:
        return publish_map(backend, fits_path, name=name, description=description or "", band=band)


def table_summaries(db: str | os.PathLike | None = None, *, tap_schema: bool = False) -> list[str]:
    """One line per published table of ``db``, sorted by name: rows, columns and RA/Dec.

    ``tap_schema``: also list the ``TAP_SCHEMA`` tables.
    """
    with opened(db, create=False) as backend:
        tables = backend.catalog().tables
    lines = []
    for name in sorted(tables):
        info = tables[name]
        if name.startswith("tap_schema.") and not tap_schema:
            continue
        rows = "" if info.n_rows is None else f"{info.n_rows:>10} rows  "
        pos = f"  (ra={info.ra}, dec={info.dec})" if info.ra else ""
        lines.append(f"{name:<32} {rows}{len(info.columns):>4} columns{pos}")
    return lines


def drop_table(db: str | os.PathLike | None, table: str) -> None:
    """Remove the published ``table`` (``SCHEMA.NAME``) from ``db``.

    Raises
    ------
    InputError
        No such published table.
    """
    with opened(db, create=False) as backend:
        if table.lower() not in backend.catalog().tables:
            raise InputError(f"no published table {table!r}")
        backend.drop_table(table)


def query(
    db: str | os.PathLike | None, adql: str, *, maxrec: int = 1000, fmt: str = "csv"
) -> tuple[bytes, bool]:
    """Run one ADQL query on ``db`` as the TAP service would, serialised as ``fmt``.

    Parameters
    ----------
    db : database (:func:`default_db`)
    adql : str - the query
    maxrec : int - row limit
    fmt : str - ``csv``, ``tsv``, ``votable``, ``json`` or ``fits`` (or a MIME type)

    Returns
    -------
    body : bytes
        The serialised result.
    overflow : bool
        Whether the result was cut at ``maxrec`` rows.
    """
    from skysense.vo.formats import resolve_format, serialise
    from skysense.vo.settings import Settings
    from skysense.vo.tap import run_adql_sync

    settings = Settings(db=default_db(db))
    with opened(settings.db, create=False) as backend:
        state = SimpleNamespace(backend=backend, settings=settings)
        result = run_adql_sync(state, adql, maxrec=maxrec)
        fmt_ = resolve_format(fmt)
        body = serialise(fmt_, result.table, result.column_infos, overflow=result.overflow)
    return body, bool(result.overflow)
