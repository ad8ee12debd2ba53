"""Results streamed batch by batch (issue #22): ``/tap/sync`` VOTables larger than the whole-
answer threshold go out as they are read from the database, on both backends; time limits and
aborts stop the query in the database itself."""

from __future__ import annotations

import io
import re
import threading
import time
import warnings

import httpx
import numpy as np
import pytest
from _vo_support import publish_sky
from astropy.io.votable import parse
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import QueryError
from skysense.vo import tap
from skysense.vo.backends import QueryHandle, QueryTimeout, open_backend
from skysense.vo.backends.postgres import _small_cone
from skysense.vo.sql import translate


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


def _unshape(shape: str, values: list[str]) -> str:
    """The SQL back from a small-cone shape: each typed parameter replaced by its literal."""
    return re.sub(r"\$(\d+)::(?:integer|bigint|numeric)", lambda m: values[int(m[1]) - 1], shape)


@settings(max_examples=200, deadline=None)
@given(
    ra=st.floats(0, 360, allow_nan=False),
    dec=st.floats(-90, 90, allow_nan=False),
    r=st.floats(0, 0.1, allow_nan=False),
    limit=st.integers(0, 2**40),
)
def test_small_cone_shape_keeps_every_literal_and_nothing_else(ra, dec, r, limit):
    sql = (
        f'SELECT "t1"."a2" AS "x 1.5", \'it'
        's 3\' AS "s" FROM "s1"."t2" AS "t1" WHERE '
        f'(q3c_radial_query("t1"."ra", "t1"."dec", {ra!r}, {dec!r}, {r!r}) AND '
        f'POWER(SIN(RADIANS("t1"."dec") - {dec!r}), 2) <= 1e-07) LIMIT {limit}'
    )
    shape, values = _small_cone(sql)
    assert _unshape(shape, values) == sql.replace(f"-{abs(dec)!r}", f"-{abs(dec)!r}")
    assert not re.search(r"\d", re.sub(r"\"[^\"]*\"|'(?:[^']|'')*'|\$\d+|q3c_", "", shape))
    assert float(values[2]) == r and int(values[-1]) == limit


def test_small_cone_shape_is_refused_where_a_number_may_be_syntax():
    cone = 'SELECT "a" FROM "s"."t" WHERE q3c_radial_query("ra", "dec", 1.5, 2.5, 0.05)'
    assert _small_cone(cone) is not None
    for sql in (
        cone + " ORDER BY 1",
        cone + " GROUP BY 1",
        cone.replace('"a"', 'CAST("a" AS VARCHAR(10))'),
        cone.replace('"a"', '"a"::numeric(10, 2)'),
        cone.replace("0.05", "0.5"),  # a large cone: read by COPY
        'SELECT "a" FROM "s"."t" WHERE "ra" < 1.5',  # not a cone
    ):
        assert _small_cone(sql) is None, sql


def test_small_cones_run_prepared_with_the_rows_of_the_plain_query(db_url, sky, monkeypatch):
    """A small cone on PostgreSQL (prepared generic plan) answers exactly what the same SQL
    read by COPY answers; DuckDB has no such path and is checked the same way."""
    import skysense.vo.backends.postgres as pg

    publish_sky(db_url, sky)
    backend = open_backend(db_url)
    try:
        catalog = backend.catalog()
        sqls = [
            translate(
                "SELECT object_id, ra, dec, mag_r, kind FROM demo.sky WHERE "
                f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 0.08))",
                dialect=backend.dialect,
                catalog=catalog,
                maxrec=100,
            ).sql
            for ra, dec in ((150.0, 2.0), (151.2, 1.1), (0.5, 0.5), (359.9, -0.5), (150.0, 2.0))
        ]
        if backend.dialect == "postgresql":  # these do take the prepared path
            assert all(_small_cone(s) is not None for s in sqls)
        fast = [backend.query(s).sort_by("object_id") for s in sqls]
        monkeypatch.setattr(pg, "SMALL_CONE_DEG", -1.0)
        plain = [backend.query(s).sort_by("object_id") for s in sqls]
        assert [t.num_rows for t in fast] == [t.num_rows for t in plain]
        assert sum(t.num_rows for t in fast) > 0
        for a, b in zip(fast, plain):
            assert a.schema == b.schema
            for name in a.column_names:  # NaN magnitudes compare equal here
                np.testing.assert_array_equal(a[name].to_numpy(), b[name].to_numpy())
    finally:
        backend.close()


def test_driver_types_without_a_cast_are_served_as_their_text():
    """Intervals and arrays from PostgreSQL have no Arrow cast to text: each value's text."""
    import pyarrow as pa

    from skysense.vo.backends.postgres import _normalise

    table = pa.table(
        {
            "iv": pa.array([pa.MonthDayNano([1, 2, 3]), None], pa.month_day_nano_interval()),
            "arr": pa.array([[1, 2], None], pa.list_(pa.int32())),
            "x": pa.array([1.5, 2.5]),
        }
    )
    out = _normalise(table)
    assert out.schema.field("iv").type == pa.string()
    assert out.column("iv").to_pylist() == [str(pa.MonthDayNano([1, 2, 3])), None]
    assert out.column("arr").to_pylist() == ["[1, 2]", None]
    assert out.column("x").type == pa.float64()
