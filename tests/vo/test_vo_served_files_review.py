"""A table served over its HATS Parquet files, as the internet sees it: cones and regions equal
brute force anywhere on the sky (RA wrap, poles, partition edges, mixed HATS orders), tiny
cones on the order-29 index, and database errors that do not show the server's paths."""

from __future__ import annotations

import math
import os
import pathlib
from types import SimpleNamespace

import numpy as np
import pytest
from _adql_support import make_sky, sep_deg
from _vo_support import server_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from skysense.catalog.hats_io import write_hats
from skysense.errors import QueryError
from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_hats_field, publish_hats_files
from skysense.vo.scs import cone_rows
from skysense.vo.settings import Settings
from skysense.vo.tap import run_adql_sync

TABLE = "sky.files"


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    """(state, rows, partition orders) of a whole-sky table served over ~60 files."""
    tmp = tmp_path_factory.mktemp("skyfiles")
    df = make_sky(4000, seed=3)
    path = write_hats(df, tmp / "sky", ra_column="RA", dec_column="DEC", partition_rows=70)
    db = str(tmp / "vo.duckdb")
    backend = open_backend(db)
    publish_hats_files(backend, path, TABLE, "ALL", ra="RA", dec="DEC")
    backend.harden(memory_limit_mb=256, threads=1)
    orders = {int(p.split("Norder=")[1].split("/")[0]) for p in backend.parquet_parts(TABLE).paths}
    yield SimpleNamespace(backend=backend, settings=Settings(db=db)), df, orders
    backend.close()


def _ids(state, adql):
    res = run_adql_sync(state, adql, maxrec=10**6).table
    return sorted(res.column(0).to_pylist())


def test_the_sky_has_partitions_of_several_orders(sky):
    _, _, orders = sky
    assert len(orders) >= 3


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    k=st.integers(0, 3999),
    dra=st.floats(-0.3, 0.3),
    ddec=st.floats(-0.3, 0.3),
    log_r=st.one_of(st.floats(-7, 1.3), st.just(-math.inf)),
    centre=st.sampled_from(["row", "wrap", "pole"]),
)
def test_cones_and_regions_equal_brute_force(sky, k, dra, ddec, log_r, centre):
    state, df, _ = sky
    ra_all, dec_all = df["RA"].to_numpy(), df["DEC"].to_numpy()
    if centre == "row":  # near a row: partition edges come from the data's own density
        ra0, dec0 = float(ra_all[k] + dra) % 360.0, float(np.clip(dec_all[k] + ddec, -90, 90))
    elif centre == "wrap":
        ra0, dec0 = float(dra) % 360.0, float(ddec * 100)
    else:
        ra0, dec0 = float(dra * 1000) % 360.0, math.copysign(90 - abs(ddec), ddec or 1.0)
    r = 10**log_r
    sep = sep_deg(ra0, dec0, ra_all, dec_all)
    # Rows within 1e-9 deg of the edge may go either way (float rounding, e.g. an offset of
    # 1e-311 deg underflows in the haversine); every other row is decided by brute force.
    sure_in, maybe = set(df["id"][sep <= r - 1e-9]), set(df["id"][abs(sep - r) <= 1e-9])
    circle = f"CIRCLE('ICRS', {ra0!r}, {dec0!r}, {r!r})"
    where = f"1=CONTAINS(POINT('ICRS', ra, dec), {circle})"
    inside = set(_ids(state, f"SELECT id FROM {TABLE} WHERE {where}"))
    assert sure_in <= inside <= sure_in | maybe
    table = state.backend.catalog().tables[TABLE]
    rows, _, _ = cone_rows(state, table, ["id", "ra", "dec"], ra0, dec0, r, 10**6)
    assert set(rows.column("id").to_pylist()) == inside
    # Regions that do not bound the rows must not prune the files.
    bright = set(df["id"][df["mag"] < 18.5])
    got = _ids(state, f"SELECT id FROM {TABLE} WHERE {where} OR mag < 18.5")
    assert got == sorted(inside | bright)
    got = _ids(state, f"SELECT id FROM {TABLE} WHERE NOT ({where}) AND mag < 18.5")
    assert got == sorted(bright - inside)
    got = _ids(
        state,
        f"SELECT id FROM {TABLE} WHERE mag < 18.5 AND id NOT IN "
        f"(SELECT id FROM {TABLE} WHERE {where})",
    )
    assert got == sorted(bright - inside)


def test_a_tiny_cone_on_the_order_29_index_is_answered(sky):
    # cdshealpix panicked for radius 0 at order 29 (HTTP 500, the server's event loop gone).
    state, df, _ = sky
    ra0, dec0 = float(df["RA"][10]), float(df["DEC"][10])
    for r in (0.0, 1e-9):
        got = _ids(state, f"SELECT id FROM {TABLE} WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
                          f"CIRCLE('ICRS', {ra0!r}, {dec0!r}, {r!r}))")  # fmt: skip
        assert got == [10]


def test_a_damaged_partition_gives_a_4xx_without_the_server_paths(tmp_path):
    df = make_sky(600, seed=4)
    path = write_hats(df, tmp_path / "sky", ra_column="RA", dec_column="DEC", partition_rows=80)
    db = str(tmp_path / "vo.duckdb")
    backend = open_backend(db)
    publish_hats_files(backend, path, TABLE, "ALL", ra="RA", dec="DEC")
    first, second = backend.parquet_parts(TABLE).paths[:2]
    backend.close()
    root = str(tmp_path)
    with TestClient(create_app(server_settings(db, tmp_path))) as c:
        with open(first, "r+b") as f:  # a truncated footer
            f.truncate(20)
        os.remove(second)
        for adql in (f"SELECT count(*) AS n FROM {TABLE}", f"SELECT * FROM {TABLE}"):
            r = c.post("/tap/sync", data={"LANG": "ADQL", "QUERY": adql})
            assert 400 <= r.status_code < 500, r.text
            assert "QUERY_STATUS" in r.text and "ERROR" in r.text
            assert root not in r.text and "Npix=" in r.text


def test_the_hardened_database_reads_the_published_files_only(sky):
    state, _, _ = sky
    paths = state.backend.parquet_parts(TABLE).paths
    # Another file beside the published ones, and a glob over them, stay refused.
    other = pathlib.Path(paths[0]).parent / "other.parquet"
    other.write_bytes(pathlib.Path(paths[0]).read_bytes())
    for sql in (
        f"SELECT * FROM read_parquet('{other}')",
        f"SELECT * FROM read_parquet('{pathlib.Path(paths[0]).parent}/*.parquet')",
        f"SELECT * FROM glob('{pathlib.Path(paths[0]).parent}/*')",
        "SET allowed_paths = ['/etc/passwd']",
        "SET enable_external_access = true",
    ):
        with pytest.raises(Exception):  # noqa: B017,PT011 -- any refusal
            state.backend._db.execute(sql).fetchall()
    n = state.backend._db.execute(f"SELECT count(*) FROM read_parquet('{paths[0]}')").fetchone()
    assert n[0] > 0


def test_a_field_name_with_braces_is_text(tmp_path):
    # The view's SELECT went through str.format: 'COSMOS {north}' raised KeyError on publish.
    df = make_sky(300, seed=5)
    path = write_hats(df, tmp_path / "sky", ra_column="RA", dec_column="DEC", partition_rows=80)
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        for field in ("COSMOS {north}", "{files}"):
            _, n = publish_hats_files(backend, path, TABLE, field, ra="RA", dec="DEC")
        assert n == 600
        state = SimpleNamespace(backend=backend, settings=Settings(db=str(tmp_path / "vo.duckdb")))
        res = run_adql_sync(
            state, f"SELECT field, count(*) AS n FROM {TABLE} GROUP BY field ORDER BY field"
        )
        assert res.table.to_pylist() == [
            {"field": "COSMOS {north}", "n": 300},
            {"field": "{files}", "n": 300},
        ]
    finally:
        backend.close()


def test_rows_into_a_table_served_over_files_are_refused_before_any_copy(tmp_path):
    df = make_sky(300, seed=6)
    path = write_hats(df, tmp_path / "sky", ra_column="RA", dec_column="DEC", partition_rows=80)
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        publish_hats_files(backend, path, TABLE, "A", ra="RA", dec="DEC")
        # Was a raw duckdb.CatalogException (a CLI traceback) after copying every row.
        with pytest.raises(QueryError, match="served over Parquet files"):
            publish_hats_field(backend, path, TABLE, "B", ra="RA", dec="DEC")
        assert backend.catalog().tables[TABLE].n_rows == 300
        tables = backend.query("SELECT count(*) AS n FROM duckdb_tables() WHERE "
                               "table_name LIKE '\\_load\\_%' ESCAPE '\\'")  # fmt: skip
        assert tables.column("n")[0].as_py() == 0
    finally:
        backend.close()
