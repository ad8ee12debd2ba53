"""Tables served over their HATS Parquet files (no copy): cones equal brute force, only the
touched files are read, fields publish incrementally, hostile queries stay refused."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _vo_support import server_settings
from starlette.testclient import TestClient

from skysense.catalog.hats_io import write_hats
from skysense.errors import InputError, QueryError
from skysense.vo.backends import open_backend
from skysense.vo.publish import hats_partition_files, publish_hats_field, publish_hats_files
from skysense.vo.scs import cone_rows
from skysense.vo.settings import Settings
from skysense.vo.tap import run_adql_sync

TABLE = "help.masterlist"


def _field(root, name, center, n, seed, half=1.0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "help_id": [f"HELP_{name}_{k:05d}" for k in range(n)],
            "ra": center[0] + rng.uniform(-half, half, n),
            "dec": center[1] + rng.uniform(-half, half, n),
            "f_irac_i1": rng.lognormal(2, 1, n),
            "stellarity": rng.uniform(0, 1, n),
        }
    )
    # Small partitions: a field is many files of mixed orders.
    return df, write_hats(df, root / name, partition_rows=60, highest_order=8)


def _inside(df, ra0, dec0, r):
    """Brute force: help_id of the rows within r deg of (ra0, dec0) (haversine)."""
    a, d = np.radians(df["ra"].to_numpy()), np.radians(df["dec"].to_numpy())
    a0, d0 = np.radians(ra0), np.radians(dec0)
    hav = np.sin((d - d0) / 2) ** 2 + np.cos(d) * np.cos(d0) * np.sin((a - a0) / 2) ** 2
    return set(df["help_id"][hav <= np.sin(np.radians(r) / 2) ** 2])


def _cone(ra, dec, r, cols="help_id, ra, dec", extra=""):
    return (
        f"SELECT {cols} FROM {TABLE} WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
        f"CIRCLE('ICRS', {ra}, {dec}, {r})){extra}"
    )


@pytest.fixture
def served(tmp_path):
    """(state, the field's rows, its HATS dir) of a hardened DuckDB serving one field."""
    df, path = _field(tmp_path, "cosmos", (150.1, 2.2), 1500, 1)
    db = str(tmp_path / "vo.duckdb")
    backend = open_backend(db)
    _, n = publish_hats_files(backend, path, TABLE, "COSMOS")
    assert n == len(df)
    backend.harden(memory_limit_mb=256, threads=1)
    yield SimpleNamespace(backend=backend, settings=Settings(db=db)), df, path
    backend.close()


def _ids(state, adql):
    return set(run_adql_sync(state, adql, maxrec=10**6).table.column("help_id").to_pylist())


def test_cones_equal_brute_force(served):
    state, df, _ = served
    rng = np.random.default_rng(5)
    for r in (0.02, 0.05, 0.3, 1.5):
        for _ in range(4):
            ra0, dec0 = 150.1 + rng.uniform(-1, 1), 2.2 + rng.uniform(-1, 1)
            want = _inside(df, ra0, dec0, r)
            assert _ids(state, _cone(ra0, dec0, r)) == want
            table = state.backend.catalog().tables[TABLE]
            rows, _, _ = cone_rows(state, table, ["help_id", "ra", "dec"], ra0, dec0, r, 10**6)
            assert set(rows.column("help_id").to_pylist()) == want
    # Regions that do not bound the rows must not restrict the files.
    inside = _inside(df, 150.3, 2.0, 0.2)
    bright = set(df["help_id"][df["f_irac_i1"] > 20])
    got = _ids(state, _cone(150.3, 2.0, 0.2, extra=" OR f_irac_i1 > 20"))
    assert got == inside | bright
    got = _ids(state, f"SELECT help_id FROM {TABLE} WHERE NOT (1=CONTAINS(POINT('ICRS', ra, "
                      "dec), CIRCLE('ICRS', 150.3, 2.0, 0.2)))")  # fmt: skip
    assert got == set(df["help_id"]) - inside
    # Without a region: every file (the view), and the field column.
    res = run_adql_sync(state, f"SELECT count(*) AS n, min(field) AS f FROM {TABLE}", maxrec=10)
    assert res.table.to_pylist() == [{"n": len(df), "f": "COSMOS"}]


def test_a_cone_reads_only_the_files_it_touches(served):
    state, df, path = served
    files = hats_partition_files(path)
    index = state.backend.parquet_parts(TABLE)
    assert len(index) == len(files) > 10
    ra0, dec0, r = float(df["ra"][7]), float(df["dec"][7]), 0.08
    want = _inside(df, ra0, dec0, r)
    assert want
    from skysense.vo import hpx

    touched = index.touched(hpx.cone_ranges(ra0, dec0, r, 29))
    assert 0 < touched.sum() <= 4
    # Take every other file away: the cone still answers (its files alone are read) while
    # a query over all files now fails.
    away = path.parent / "away"
    away.mkdir()
    for p, t in zip(index.paths, touched):
        if not t:
            shutil.move(p, away / p.replace("/", "_"))
    assert _ids(state, _cone(ra0, dec0, r)) == want
    with pytest.raises(QueryError):
        run_adql_sync(state, f"SELECT count(*) AS n FROM {TABLE}", maxrec=10)


def test_adding_a_field_rewrites_nothing_of_the_others(tmp_path):
    a, a_dir = _field(tmp_path, "cosmos", (150.1, 2.2), 400, 1)
    b, b_dir = _field(tmp_path, "xmm", (35.0, -5.0), 300, 2)
    db = tmp_path / "vo.duckdb"
    backend = open_backend(db)
    try:
        publish_hats_files(backend, a_dir, TABLE, "COSMOS")
        a_files = {str(p): p.stat().st_mtime_ns for p in hats_partition_files(a_dir)}
        a_parts = set(backend.parquet_parts(TABLE).paths)
        size_a = db.stat().st_size
        _, n = publish_hats_files(backend, b_dir, TABLE, "XMM")
        assert n == 700
        index = backend.parquet_parts(TABLE)
        assert a_parts < set(index.paths)
        assert {p: os.stat(p).st_mtime_ns for p in a_files} == a_files
        # No rows were copied into the database: it grew by the file list only.
        data_bytes = sum(p.stat().st_size for p in hats_partition_files(b_dir))
        assert db.stat().st_size - size_a < data_bytes
        state = SimpleNamespace(backend=backend, settings=Settings(db=str(db)))
        got = run_adql_sync(
            state,
            f"SELECT field, count(*) AS n FROM {TABLE} GROUP BY field ORDER BY field",
            maxrec=10,
        )
        assert got.table.to_pylist() == [{"field": "COSMOS", "n": 400}, {"field": "XMM", "n": 300}]
        # Republishing a field replaces its own files only.
        b2, b2_dir = _field(tmp_path, "xmm2", (35.0, -5.0), 120, 3)
        _, n = publish_hats_files(backend, b2_dir, TABLE, "XMM")
        assert n == 520
        assert _ids(state, _cone(35.0, -5.0, 0.3)) == _inside(b2, 35.0, -5.0, 0.3)
        assert _ids(state, _cone(150.1, 2.2, 0.3)) == _inside(a, 150.1, 2.2, 0.3)
        # A field with other columns is refused.
        c = a.drop(columns=["stellarity"])
        c_dir = write_hats(c, tmp_path / "other", partition_rows=60, highest_order=8)
        with pytest.raises(InputError, match="columns differ"):
            publish_hats_files(backend, c_dir, TABLE, "OTHER")
    finally:
        backend.close()


def test_column_selection(tmp_path):
    a, a_dir = _field(tmp_path, "cosmos", (150.1, 2.2), 200, 1)
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        spec, _ = publish_hats_files(backend, a_dir, "help.files", "F", select=["help_id"])
        assert [c.name for c in spec.columns] == ["help_id", "ra", "dec", "field"]
        spec, n = publish_hats_field(backend, a_dir, "help.native", "F", select=["help_id", "ra"])
        assert n == 200
        assert [c.name for c in spec.columns] == ["help_id", "ra", "dec", "field"]
        assert set(backend.catalog().tables["help.native"].columns) == {
            "help_id", "ra", "dec", "field"}  # fmt: skip
        with pytest.raises(InputError, match="no column"):
            publish_hats_field(backend, a_dir, "help.other", "F", select=["nope"])
    finally:
        backend.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A TAP server (TestClient) on a table served over its files."""
    from skysense.vo.app import create_app

    tmp = tmp_path_factory.mktemp("files")
    _, path = _field(tmp, "cosmos", (150.1, 2.2), 200, 1)
    db = str(tmp / "vo.duckdb")
    backend = open_backend(db)
    publish_hats_files(backend, path, TABLE, "COSMOS")
    backend.close()
    with TestClient(create_app(server_settings(db, tmp))) as c:
        yield c


@pytest.mark.parametrize(
    "adql",
    [
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM {TABLE}; COPY (SELECT 1) TO '/tmp/x.csv'",
        'SELECT * FROM "help"."masterlist" AS t, read_text(\'/etc/passwd\') AS x',
    ],
)
def test_hostile_queries_are_refused(client, adql):
    r = client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": adql})
    assert 400 <= r.status_code < 500
    assert "root:" not in r.text
    ok = client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": _cone(150.1, 2.2, 0.1)})
    assert ok.status_code == 200 and "HELP_cosmos" in ok.text


def test_hardened_database_reads_only_published_files(served):
    state, _, _ = served
    with pytest.raises(QueryError):
        state.backend.query("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(QueryError):
        state.backend.query("SELECT * FROM read_parquet('/etc/hostname')")


def test_cli_publishes_over_files_and_column_selections(tmp_path, capsys):
    from skysense.cli.__main__ import main

    a, a_dir = _field(tmp_path, "cosmos", (150.1, 2.2), 200, 1)
    db = str(tmp_path / "vo.duckdb")
    args = ["vo", "publish", str(a_dir), "--field", "C", "--db", db]
    assert main([*args, "--table", "help.files", "--over-files"]) == 0
    assert main([*args, "--table", "help.cone", "--columns", "help_id, f_irac_i1"]) == 0
    assert "200 rows" in capsys.readouterr().out
    backend = open_backend(db, create=False)
    try:
        assert backend.parquet_parts("help.files") is not None
        assert backend.parquet_parts("help.cone") is None
        tables = backend.catalog().tables
        assert set(tables["help.cone"].columns) == {"help_id", "ra", "dec", "f_irac_i1", "field"}
        assert "stellarity" in tables["help.files"].columns
    finally:
        backend.close()
    assert main([*args, "--table", "help.bad", "--columns", "nope"]) == 2
    assert "no column" in capsys.readouterr().err
