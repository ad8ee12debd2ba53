"""Read-only and limits: no writes or file access through queries, time limit, upload limits,
URL upload restrictions, MAXREC ceiling, 50 concurrent clients on a live server."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import warnings

import httpx
import numpy as np
import pytest
from _vo_support import ServerThread, publish_sky, server_settings
from astropy.io.votable import parse
from starlette.testclient import TestClient

from skysense.errors import InputError, QueryError
from skysense.vo.app import create_app
from skysense.vo.backends import QueryHandle, QueryTimeout, open_backend
from skysense.vo.tap import fetch_url


@pytest.fixture
def hardened(db_url, sky):
    publish_sky(db_url, sky)
    backend = open_backend(db_url)
    backend.harden(memory_limit_mb=256, threads=1)
    yield backend
    backend.close()


def test_backend_runs_only_single_selects(hardened):
    phys = hardened.catalog().tables["demo.sky"].physical
    for sql in (
        f"DELETE FROM {phys}",
        f"DROP TABLE {phys}",
        f"SELECT 1; DROP TABLE {phys}",
        f"SELECT 1; COMMIT; DROP TABLE {phys}",
        f"CREATE TABLE {phys.split('.')[0]}.evil AS SELECT 1 AS a",
    ):
        with pytest.raises(QueryError):
            hardened.query(sql)
    n = hardened.query(f"SELECT count(*) AS n FROM {phys}").column(0)[0].as_py()
    assert n == 3000


def test_no_file_access_even_for_raw_sql(hardened):
    if hardened.dialect == "duckdb":
        attempts = [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_text('/etc/hostname')",
        ]
    else:
        attempts = ["SELECT pg_read_file('/etc/passwd')"]
    for sql in attempts:
        try:
            hardened.query(sql)
        except QueryError:
            continue
        # PostgreSQL superusers may read files; the ADQL layer must then block it (below).
        assert hardened.dialect == "postgresql"


def test_time_limit_and_abort(hardened):
    slow = (
        "SELECT sum(a.range * b.range) AS s FROM range(200000) a, range(200000) b"
        if hardened.dialect == "duckdb"
        else "SELECT pg_sleep(30)"
    )
    t0 = time.monotonic()
    with pytest.raises(QueryTimeout, match="time limit"):
        hardened.query(slow, timeout_s=0.5)
    assert time.monotonic() - t0 < 15
    handle = QueryHandle()
    threading.Timer(0.5, handle.cancel).start()  # UWS ABORT from another thread
    t0 = time.monotonic()
    with pytest.raises(QueryError, match="abort"):
        hardened.query(slow, timeout_s=60, handle=handle)
    assert time.monotonic() - t0 < 15
    with pytest.raises(QueryError, match="abort"):  # cancelled before it starts
        hardened.query(slow, timeout_s=60, handle=handle)


def test_single_select_check_holds_across_one_sql_shape(hardened, sky):
    """The single-SELECT check is kept per SQL shape (digits masked): queries of an accepted
    shape run with their own numbers, and a script stays refused whatever its numbers."""
    phys = hardened.catalog().tables["demo.sky"].physical
    ra = np.asarray(sky.column("ra"))
    for k in (1, 25, 300):
        n = hardened.query(f"SELECT count(*) AS n FROM {phys} WHERE ra < {k}.5")
        assert n.column(0)[0].as_py() == int((ra < k + 0.5).sum())
    for k in (1, 2, 99):
        # DuckDB refuses it by the check; PostgreSQL's prepared statement takes one command.
        with pytest.raises(QueryError, match="single SELECT|multiple commands"):
            hardened.query(f"SELECT {k}; DROP TABLE {phys}")
    assert hardened.query(f"SELECT count(*) AS n FROM {phys}").column(0)[0].as_py() == 3000


def test_short_time_limit_fires_after_long_ones(hardened):
    """The watchdog sleeping towards a far deadline still wakes for a nearer one."""
    phys = hardened.catalog().tables["demo.sky"].physical
    for _ in range(5):
        hardened.query(f"SELECT count(*) AS n FROM {phys}", timeout_s=600)
    slow = (
        "SELECT sum(a.range * b.range) AS s FROM range(200000) a, range(200000) b"
        if hardened.dialect == "duckdb"
        else "SELECT pg_sleep(30)"
    )
    with pytest.raises(QueryTimeout, match="time limit"):
        hardened.query(slow, timeout_s=0.5)


@pytest.fixture(scope="module")
def escape_client(tmp_path_factory, sky):
    tmp = tmp_path_factory.mktemp("escape")
    db = str(tmp / "sec.duckdb")
    publish_sky(db, sky)
    with TestClient(create_app(server_settings(db, tmp))) as client:
        yield client


@pytest.mark.parametrize(
    "adql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT pg_read_file('/etc/passwd') FROM demo.small",
        "SELECT * FROM demo.small; DROP TABLE demo.small",
        'SELECT * FROM "demo"."small""; DROP TABLE x; --"',
        "SELECT * FROM demo.small WHERE id = 1 UNION SELECT 1, current_setting('data_directory'), 1",
    ],
)
def test_adql_cannot_escape(escape_client, adql):
    client = escape_client
    resp = client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": adql})
    assert resp.status_code == 400
    assert b'value="ERROR"' in resp.content
    ok = client.get(
        "/tap/sync", params={"LANG": "ADQL", "QUERY": "SELECT COUNT(*) AS n FROM demo.small"}
    )
    assert b"<TD>3</TD>" in ok.content


def test_url_uploads_are_restricted():
    with pytest.raises(InputError, match="http"):
        fetch_url("file:///etc/passwd", limit_bytes=1000)
    with pytest.raises(InputError, match="not a public address"):
        fetch_url("http://127.0.0.1:9/x.vot", limit_bytes=1000)
    with pytest.raises(InputError, match="not a public address"):
        fetch_url("http://169.254.169.254/latest/meta-data", limit_bytes=1000)


def test_url_upload_size_limit(tmp_path, sky):
    db = str(tmp_path / "lim.duckdb")
    publish_sky(db, sky)
    app = create_app(server_settings(db, tmp_path, upload_limit_bytes=3000))
    with ServerThread(app) as server:
        source = f"{server.url}/tap/sync?LANG=ADQL&QUERY=SELECT%20TOP%20500%20*%20FROM%20demo.sky"
        resp = httpx.post(
            f"{server.url}/tap/sync",
            data={
                "LANG": "ADQL",
                "QUERY": "SELECT * FROM TAP_UPLOAD.big",
                "UPLOAD": f"big,{source}",
            },
            timeout=30,
        )
        assert resp.status_code == 400 and b"exceeds the limit of 3000 bytes" in resp.content


def test_fifty_concurrent_clients(live):
    url, _ = live
    query = (
        "SELECT object_id FROM demo.sky WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        "CIRCLE('ICRS', 150, 2, 0.5))"
    )

    async def one(client, i):
        if i % 5 == 0:
            resp = await client.get(f"{url}/tap/availability")
            return resp.status_code, None
        resp = await client.get(f"{url}/tap/sync", params={"LANG": "ADQL", "QUERY": query})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n = len(parse(io.BytesIO(resp.content)).resources[0].tables[0].array)
        return resp.status_code, n

    async def main():
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.wait_for(
                asyncio.gather(*(one(client, i) for i in range(50))), timeout=120
            )

    results = asyncio.run(main())
    assert all(code == 200 for code, _ in results)
    counts = {n for _, n in results if n is not None}
    assert len(counts) == 1 and counts.pop() > 0


def test_memory_cap_is_applied(hardened):
    # The fixture hardens with memory_limit_mb=256.
    if hardened.dialect == "duckdb":
        value = hardened.query("SELECT current_setting('memory_limit') AS v").column(0)[0]
        assert value.as_py().replace(" ", "") in ("244.1MiB", "256.0MB", "256MB")
    else:
        value = hardened.query("SELECT current_setting('work_mem') AS v").column(0)[0]
        assert value.as_py() == "64MB"  # a quarter of the cap per sort/hash operation


def test_spill_cap_is_applied(db_url, sky, tmp_path):
    publish_sky(db_url, sky)
    backend = open_backend(db_url)
    try:
        backend.harden(
            memory_limit_mb=16, threads=1, spill_dir=tmp_path / "spill", spill_limit_mb=1
        )
        phys = backend.catalog().tables["demo.sky"].physical
        # A 9-million-row sort cannot fit in 4 MB of work memory: it must spill, and 1 MB of
        # spill space is not enough.
        sql = (
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT a.mag_r AS x, b.mag_r AS y "
            f"FROM {phys} AS a, {phys} AS b) AS t"
        )
        with pytest.raises(QueryError, match="spill space limit|temp_file_limit"):
            backend.query(sql, timeout_s=60)
        if backend.dialect == "postgresql":
            value = backend.query("SELECT current_setting('temp_file_limit') AS v").column(0)[0]
            assert value.as_py() == "1MB"
    finally:
        backend.close()
