"""Results streamed batch by batch (issue #22): ``/tap/sync`` VOTables larger than the whole-
answer threshold go out as they are read from the database, on both backends; time limits and
aborts stop the query in the database itself."""

from __future__ import annotations

import io
import threading
import time
import warnings

import httpx
import numpy as np
import pytest
from _vo_support import publish_sky
from astropy.io.votable import parse

from skysense.errors import QueryError
from skysense.vo import tap
from skysense.vo.backends import QueryHandle, QueryTimeout, open_backend


def _parse(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse(io.BytesIO(data))


def _statuses(vot) -> list[str]:
    return [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]


@pytest.mark.parametrize("fmt", ["votable", "votable/b2"])
def test_large_sync_result_streams_with_every_row(live, sky, monkeypatch, fmt):
    monkeypatch.setattr(tap, "_WHOLE_BYTES", 2000)  # stream anything above 2 kB
    url, _ = live
    query = "SELECT object_id, ra, mag_r, kind FROM demo.sky ORDER BY object_id"
    with httpx.Client(timeout=60) as client:
        params = {"LANG": "ADQL", "QUERY": query, "MAXREC": "5000", "FORMAT": fmt}
        with client.stream("GET", f"{url}/tap/sync", params=params) as resp:
            assert resp.status_code == 200
            assert "content-length" not in resp.headers  # chunked: not built whole first
            body = resp.read()
    vot = _parse(body)
    got = vot.get_first_table().array
    np.testing.assert_array_equal(np.asarray(got["object_id"]), sky.column("object_id"))
    np.testing.assert_array_equal(
        np.asarray(got["mag_r"]), np.asarray(sky.column("mag_r")), strict=False
    )
    assert [str(k) for k in got["kind"][:20]] == sky.column("kind").to_pylist()[:20]
    assert _statuses(vot) == ["OK"]


def test_streamed_result_is_cut_at_maxrec_with_overflow(live, monkeypatch):
    monkeypatch.setattr(tap, "_WHOLE_BYTES", 2000)
    url, _ = live
    query = "SELECT object_id FROM demo.sky ORDER BY object_id"
    resp = httpx.get(
        f"{url}/tap/sync", params={"LANG": "ADQL", "QUERY": query, "MAXREC": "1234"}, timeout=60
    )
    vot = _parse(resp.content)
    ids = np.asarray(vot.get_first_table().array["object_id"])
    np.testing.assert_array_equal(ids, np.arange(1, 1235))
    assert _statuses(vot) == ["OK", "OVERFLOW"]


def test_small_sync_result_is_sent_whole(live):
    url, _ = live
    query = "SELECT TOP 5 object_id FROM demo.sky"
    resp = httpx.get(f"{url}/tap/sync", params={"LANG": "ADQL", "QUERY": query}, timeout=60)
    assert resp.status_code == 200
    assert int(resp.headers["content-length"]) == len(resp.content)
    assert _parse(resp.content).get_first_table().array.shape == (5,)


def test_query_stream_reads_every_row_and_frees_the_connection(db_url, sky):
    publish_sky(db_url, sky)
    backend = open_backend(db_url)
    try:
        phys = backend.catalog().tables["demo.sky"].physical
        sql = f'SELECT "object_id" FROM {phys} ORDER BY "object_id"'
        with backend.query_stream(sql) as stream:
            ids = np.concatenate([b.column(0).to_numpy() for b in stream])
        np.testing.assert_array_equal(ids, sky.column("object_id").to_numpy())
        # Leaving early stops the query; the backend keeps answering.
        for _ in range(12):  # more than the PostgreSQL pool holds
            with backend.query_stream(sql) as stream:
                next(iter(stream))
        assert backend.query(f"SELECT count(*) AS n FROM {phys}").column(0)[0].as_py() == 3000
    finally:
        backend.close()


def _pg_running(dsn: str, text: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        return con.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
            "AND pid <> pg_backend_pid()",
            (f"%{text}%",),
        ).fetchone()[0]


def _slow(backend, tag: int) -> str:
    if backend.dialect == "duckdb":
        return "SELECT sum(a.range * b.range) AS s FROM range(300000) a, range(300000) b"
    return f"SELECT pg_sleep(30 + {tag}) AS s"


def test_time_limit_and_abort_stop_the_query_in_the_database(db_url, sky):
    """A runaway query is stopped where it runs (PostgreSQL: no longer active in
    pg_stat_activity), not only abandoned by the client; the backend then answers at once."""
    publish_sky(db_url, sky)
    backend = open_backend(db_url)
    backend.harden(memory_limit_mb=256, threads=1)
    try:
        t0 = time.monotonic()
        with pytest.raises(QueryTimeout, match="time limit"):
            backend.query(_slow(backend, 1), timeout_s=0.5)
        assert time.monotonic() - t0 < 10
        handle = QueryHandle()
        threading.Timer(0.5, handle.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(QueryError, match="abort"):
            with backend.query_stream(_slow(backend, 2), timeout_s=60, handle=handle) as s:
                s.read_all()
        assert time.monotonic() - t0 < 10
        if backend.dialect == "postgresql":
            assert _pg_running(db_url, "pg_sleep(30 + 1)") == 0
            assert _pg_running(db_url, "pg_sleep(30 + 2)") == 0
        t0 = time.monotonic()
        assert backend.query("SELECT 1 AS x").column(0)[0].as_py() == 1
        assert time.monotonic() - t0 < 5
    finally:
        backend.close()
