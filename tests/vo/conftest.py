"""Fixtures of the VO server tests: a seeded sky table, databases (DuckDB and PostgreSQL) and a
real uvicorn server in a background thread."""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pytest
from _vo_support import ServerThread, fresh_postgres, publish_sky, server_settings, sky_table


@pytest.fixture(scope="session")
def sky() -> pa.Table:
    return sky_table()


@pytest.fixture(params=["duckdb", "postgresql"])
def db_url(request, tmp_path):
    """An empty database of each backend (PostgreSQL from ``SKYSENSE_TEST_PG``)."""
    if request.param == "duckdb":
        yield str(tmp_path / "vo.duckdb")
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        with fresh_postgres(dsn) as url:
            yield url


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def live(request, tmp_path_factory, sky):
    """(base URL, settings) of a uvicorn server on a published sky, for each backend."""
    from skysense.vo.app import create_app

    tmp = tmp_path_factory.mktemp("live")
    stack = contextlib.ExitStack()
    with stack:
        if request.param == "duckdb":
            db = str(tmp / "live.duckdb")
        else:
            db = stack.enter_context(fresh_postgres(request.getfixturevalue("postgres_dsn")))
        publish_sky(db, sky)
        settings = server_settings(db, tmp)
        server = stack.enter_context(ServerThread(create_app(settings)))
        yield server.url, settings
