"""Incremental publishing by field: adding or replacing a field leaves the others' rows alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysense.catalog.hats_io import write_hats
from skysense.errors import InputError
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_hats_field


def _field(tmp_path, name, center, n, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "help_id": [f"HELP_{name}_{k:05d}" for k in range(n)],
            "ra": center[0] + rng.uniform(-0.5, 0.5, n),
            "dec": center[1] + rng.uniform(-0.5, 0.5, n),
            "f_irac_i1": rng.lognormal(2, 1, n),
        }
    )
    # Small partitions: each field is published from several files.
    return df, write_hats(df, tmp_path / name, partition_rows=60, highest_order=8)


def _rows(db, field):
    """(identifier, physical row identity) of the field's rows: DuckDB rowid, PostgreSQL ctid
    and xmin (the inserting transaction)."""
    if db.startswith("postgresql"):
        import psycopg

        with psycopg.connect(db) as con:
            rows = con.execute(
                "SELECT help_id, ctid::text || '/' || xmin::text FROM help.masterlist "
                "WHERE field = %s ORDER BY help_id",
                (field,),
            ).fetchall()
    else:
        import duckdb

        with duckdb.connect(db, read_only=True) as con:
            rows = con.execute(
                "SELECT help_id, rowid FROM help.masterlist WHERE field = ? ORDER BY help_id",
                [field],
            ).fetchall()
    return rows


def test_adding_and_replacing_a_field_leaves_the_others(db_url, tmp_path):
    a, a_dir = _field(tmp_path, "cosmos", (150.1, 2.2), 300, 1)
    b, b_dir = _field(tmp_path, "xmm", (35.0, -5.0), 200, 2)
    backend = open_backend(db_url)
    try:
        _, n = publish_hats_field(backend, a_dir, "help.masterlist", "COSMOS")
        assert n == 300
    finally:
        backend.close()
    before = _rows(db_url, "COSMOS")
    assert [r[0] for r in before] == sorted(a["help_id"])
    backend = open_backend(db_url)
    try:
        _, n = publish_hats_field(backend, b_dir, "help.masterlist", "XMM-LSS")
        assert n == 500
        # Republishing a field replaces its rows only.
        b2, b2_dir = _field(tmp_path / "v2", "xmm", (35.0, -5.0), 150, 3)
        _, n = publish_hats_field(backend, b2_dir, "help.masterlist", "XMM-LSS")
        assert n == 450
        got = backend.catalog().tables["help.masterlist"]
        assert {"help_id", "ra", "dec", "f_irac_i1", "field"} <= set(got.columns)
        assert got.n_rows == 450
    finally:
        backend.close()
    # COSMOS's rows were neither moved nor rewritten.
    assert _rows(db_url, "COSMOS") == before
    assert len(_rows(db_url, "XMM-LSS")) == 150


def test_cone_sees_the_new_field_sorted(db_url, tmp_path):
    from skysense.vo.database import query

    _, a_dir = _field(tmp_path, "cosmos", (150.1, 2.2), 300, 1)
    b, b_dir = _field(tmp_path, "xmm", (35.0, -5.0), 200, 2)
    backend = open_backend(db_url)
    try:
        publish_hats_field(backend, a_dir, "help.masterlist", "COSMOS")
        publish_hats_field(backend, b_dir, "help.masterlist", "XMM-LSS")
    finally:
        backend.close()
    adql = ("SELECT help_id FROM help.masterlist WHERE "
            "1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 35.0, -5.0, 0.2))")  # fmt: skip
    body, overflow = query(db_url, adql, maxrec=10_000)
    assert not overflow
    ids = {line.strip().strip('"') for line in body.decode().split()[1:]}
    sep = np.hypot((b["ra"] - 35.0) * np.cos(np.radians(-5.0)), b["dec"] + 5.0)
    # Brute force (flat-sky is exact enough 3e-4 deg from the edge); rows near it skipped.
    inside = set(b["help_id"][sep < 0.2 - 3e-4])
    outside = set(b["help_id"][sep > 0.2 + 3e-4])
    assert inside <= ids and not (outside & ids) and len(inside) > 5


def test_columns_must_match(tmp_path):
    db = str(tmp_path / "vo.duckdb")
    _, a_dir = _field(tmp_path, "cosmos", (150.1, 2.2), 100, 1)
    other = pd.DataFrame({"ra": [35.0], "dec": [-5.0], "x": [1.0]})
    o_dir = write_hats(other, tmp_path / "other")
    backend = open_backend(db)
    try:
        publish_hats_field(backend, a_dir, "help.masterlist", "COSMOS")
        with pytest.raises(InputError, match="columns differ"):
            publish_hats_field(backend, o_dir, "help.masterlist", "XMM-LSS")
        assert backend.catalog().tables["help.masterlist"].n_rows == 100
    finally:
        backend.close()


def test_cli_publishes_fields(tmp_path, capsys):
    from skysense.cli.__main__ import main

    db = str(tmp_path / "vo.duckdb")
    _, a_dir = _field(tmp_path, "cosmos", (150.1, 2.2), 120, 1)
    _, b_dir = _field(tmp_path, "xmm", (35.0, -5.0), 80, 2)
    for path, name in ((a_dir, "COSMOS"), (b_dir, "XMM-LSS")):
        assert main(["vo", "publish", str(path), "--table", "help.masterlist", "--field", name,
                     "--db", db]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "120 rows" in out and "200 rows" in out and "(field XMM-LSS)" in out
    assert _rows(db, "COSMOS")[0][0] == "HELP_cosmos_00000"
    # Not a HATS directory: one error line, exit 2.
    assert main(["vo", "publish", str(tmp_path), "--table", "help.masterlist", "--field", "X",
                 "--db", db]) == 2  # fmt: skip
    assert "not a HATS catalogue" in capsys.readouterr().err


def test_batches_out_of_order_are_stored_sorted(tmp_path):
    import duckdb
    import pyarrow as pa

    from skysense.vo.publish import _conform

    db = str(tmp_path / "vo.duckdb")
    df, _ = _field(tmp_path, "cosmos", (150.1, 2.2), 200, 1)
    table = pa.Table.from_pandas(df.assign(field="A"), preserve_index=False)
    spec, data = _conform(table, "help.masterlist", columns=None, description="", meta=None,
                          ra="ra", dec="dec", source="test")  # fmt: skip
    # Two batches in the wrong order, each unsorted.
    backend = open_backend(db)
    try:
        assert (
            backend.replace_rows(spec, [data.slice(100), data.slice(0, 100)], "field", "A") == 200
        )
    finally:
        backend.close()
    with duckdb.connect(db, read_only=True) as con:
        hpx = [
            r[0] for r in con.execute("SELECT _hpx FROM help.masterlist ORDER BY rowid").fetchall()
        ]
    assert hpx == sorted(hpx) and len(set(hpx)) > 50
