"""Blocks of tables published field by field (hpx.BlockIndex, DuckDB ``_blk``): a cone reads
only the row groups of the blocks it needs, with the rows of the ADQL query."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skysense.errors import InputError
from skysense.vo import hpx
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_arrow, publish_arrow_field
from skysense.vo.scs import cone_hpx_sql, cone_rows, parse_cone, scs_columns
from skysense.vo.settings import Settings

# -- the block index alone


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 300), st.integers(0, 30)),
        min_size=0,
        max_size=40,
    ),
    ranges=st.lists(st.tuples(st.integers(0, 340), st.integers(0, 40)), max_size=6),
    cap=st.integers(1, 8),
)
def test_block_ranges_cover_exactly_the_blocks_hit(blocks, ranges, cap):
    ids = np.array([b[0] for b in blocks], dtype=np.int64)
    lo = np.array([b[1] for b in blocks], dtype=np.int64)
    hi = lo + np.array([b[2] for b in blocks], dtype=np.int64)
    r = np.array([(a, a + w) for a, w in ranges], dtype=np.int64).reshape(-1, 2)
    got = hpx.BlockIndex(ids, lo, hi).block_ranges(r, cap)
    # Brute force: the blocks with a [lo, hi] meeting a range.
    hit = {int(i) for i, a, b in zip(ids, lo, hi) if any(a <= y and b >= x for x, y in r)}
    covered = {int(i) for i in np.unique(ids) if any(x <= i <= y for x, y in got)}
    assert hit <= covered and len(got) <= cap
    assert np.all(got[:, 0] <= got[:, 1]) and np.all(got[1:, 0] > got[:-1, 1])
    if len(got) < cap:  # not capped: no block is read that the ranges do not need
        assert covered == hit


# -- a table published field by field

N_FIELDS, ROWS = 4, 130_000  # each field a little over one DuckDB row group
WIDTH = 0.5  # deg of RA per field: thin stripes whose NESTED index ranges interleave


def _field(k: int) -> pa.Table:
    rng = np.random.default_rng([3, k])
    ra = rng.uniform(10 + k * WIDTH, 10 + (k + 1) * WIDTH, ROWS)
    s0, s1 = np.sin(np.radians([-2.0, 2.0]))
    dec = np.degrees(np.arcsin(rng.uniform(s0, s1, ROWS)))
    mag = rng.normal(23, 1, ROWS)
    mag[::97] = np.nan
    return pa.table(
        {
            "object_id": np.arange(k * ROWS, (k + 1) * ROWS),
            "ra": ra,
            "dec": dec,
            "mag": mag,
            "field": pa.array([f"F{k}"] * ROWS),
        }
    )


def _publish_field(backend, k: int, data: pa.Table | None = None) -> int:
    meta = {"columns": {"object_id": {"ucd": "meta.id;meta.main"}}}
    data = data if data is not None else _field(k)
    return publish_arrow_field(backend, data, "bench.sky", f"F{k}", meta=meta)[1]


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    path = tmp_path_factory.mktemp("blocks") / "vo.duckdb"
    backend = open_backend(path)
    for k in range(N_FIELDS):
        _publish_field(backend, k)
    # Field 1 republished (other rows): its old blocks go, the new ones come last.
    data = _field(1)
    data = data.set_column(0, "object_id", pa.array(np.arange(ROWS) + 10_000_000))
    assert _publish_field(backend, 1, data) == N_FIELDS * ROWS
    with pytest.raises(InputError, match="columns differ"):
        _publish_field(backend, 9, data.drop_columns(["mag"]))
    settings_ = Settings(db=str(path), maxrec_default=100_000)
    yield SimpleNamespace(backend=backend, settings=settings_, path=path)
    backend.close()


def _row_groups_read(backend, sql: str, out) -> tuple[int, int]:
    """(row groups scanned, row groups of the table) of ``sql``, from DuckDB's profile."""
    con = backend._db.cursor()
    try:
        con.execute("PRAGMA enable_profiling='json'")
        con.execute("SET profiling_output = ?", [str(out)])
        con.execute(sql).fetchall()
        con.execute("PRAGMA disable_profiling")
    finally:
        con.close()
    prof = json.loads(out.read_text())

    def scan(node):
        if node.get("type") == "TABLE_SCAN":
            return node
        for child in node.get("children", []):
            found = scan(child)
            if found:
                return found

    node = scan({"children": prof["operator"]})
    return node["row_groups_scanned"], node["total_row_groups_to_scan"]


def test_blocks_follow_the_physical_order(fields):
    con = fields.backend._db.cursor()
    try:
        blk = con.execute("SELECT _blk FROM bench.sky ORDER BY rowid").fetchnumpy()["_blk"]
        parts = con.execute(
            "SELECT DISTINCT part FROM _skysense_hpx_blocks WHERE table_name = 'bench.sky'"
        ).fetchall()
    finally:
        con.close()
    assert len(blk) == N_FIELDS * ROWS and np.all(np.diff(blk) >= 0)
    assert sorted(p[0] for p in parts) == [f"F{k}" for k in range(N_FIELDS)]
    # The republished field 1 is the last publish (sequence N_FIELDS).
    assert int(blk[-1]) >> 32 == N_FIELDS


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ra=st.one_of(st.floats(9.8, 10 + N_FIELDS * WIDTH + 0.2), st.floats(0, 360)),
    dec=st.floats(-2.5, 2.5),
    sr=st.one_of(st.floats(0, 0.08), st.floats(0, 1.5)),
    maxrec=st.sampled_from([5, 100_000]),
)
def test_block_cone_equals_the_adql_query(fields, ra, dec, sr, maxrec):
    table = fields.backend.catalog().tables["bench.sky"]
    cols = scs_columns(table, 3)
    ra, dec, sr = parse_cone(str(ra), str(dec), str(sr))
    fast = cone_rows(fields, table, cols, ra, dec, sr, maxrec)
    ref = cone_rows(fields, table, cols, ra, dec, sr, maxrec, adql=True)
    assert fast[1] == ref[1] and fast[2] == ref[2]
    pd.testing.assert_frame_equal(fast[0].to_pandas(), ref[0].to_pandas(), check_exact=True)


def test_a_cone_reads_one_or_two_row_groups(fields, tmp_path):
    table = fields.backend.catalog().tables["bench.sky"]
    rng = np.random.default_rng(1)
    with_blocks, without = [], []
    out = tmp_path / "profile.json"
    no_blocks = SimpleNamespace(hpx_blocks=lambda name: None)
    for _ in range(20):
        ra, dec = rng.uniform(10.1, 10 + N_FIELDS * WIDTH - 0.1), rng.uniform(-1.9, 1.9)
        args = (table, ["object_id"], ra, dec, 0.05)
        sql = cone_hpx_sql(fields.backend, *args)
        assert "_blk" in sql
        with_blocks.append(_row_groups_read(fields.backend, sql, out)[0])
        without.append(_row_groups_read(fields.backend, cone_hpx_sql(no_blocks, *args), out)[0])
    # Blocks: the group(s) of the field under the cone, one more where it meets a second
    # field (these stripes are 0.5 deg wide). Without, a cone reads several fields' groups.
    assert max(with_blocks) <= 3 and np.mean(with_blocks) < 2
    assert np.mean(without) > 2 * np.mean(with_blocks)


def test_load_table_drops_the_blocks_and_old_tables_get_them(tmp_path):
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        # A table loaded whole (sorted once): no blocks.
        publish_arrow(backend, _field(0), "bench.sky", ra="ra", dec="dec")
        assert backend.hpx_blocks("bench.sky") is None
        # A field added to it: the table gains its blocks, the old rows too (sequence 0).
        _publish_field(backend, 1)
        blocks = backend.hpx_blocks("bench.sky")
        assert blocks is not None
        seqs = {int(i) >> 32 for i in blocks.ids}
        assert seqs == {0, 1}
        table = backend.catalog().tables["bench.sky"]
        st_ = SimpleNamespace(backend=backend, settings=Settings(db=str(tmp_path / "vo.duckdb")))
        cols = scs_columns(table, 1)
        for ra in (10.25, 10.5, 10.75):
            fast = cone_rows(st_, table, cols, ra, 0.0, 0.1, 10_000)[0]
            ref = cone_rows(st_, table, cols, ra, 0.0, 0.1, 10_000, adql=True)[0]
            assert fast.equals(ref) and fast.num_rows > 100
        # Loaded whole again: the blocks are gone with the old table.
        publish_arrow(backend, _field(2), "bench.sky", ra="ra", dec="dec")
        assert backend.hpx_blocks("bench.sky") is None
        backend.drop_table("bench.sky")
        con = backend._db.cursor()
        assert con.execute("SELECT count(*) FROM _skysense_hpx_blocks").fetchone()[0] == 0
        con.close()
    finally:
        backend.close()


# -- ADQL region constraints use the same block filter (vo.sql.common.block_filter)


def _adql_cone(table: str, ra: float, dec: float, r: float) -> str:
    return (f"SELECT object_id, ra, dec FROM {table} WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {ra!r}, {dec!r}, {r!r}))")  # fmt: skip


def _translated(backend, adql: str, blocks: bool) -> str:
    from skysense.vo.sql import translate

    lookup = backend.hpx_blocks if blocks else None
    return translate(adql, dialect="duckdb", catalog=backend.catalog(), blocks=lookup).sql


def _run(backend, sql: str) -> pd.DataFrame:
    con = backend._db.cursor()
    try:
        df = con.execute(sql).df()
    finally:
        con.close()
    return df.sort_values(df.columns[0], ignore_index=True)


EDGE_ROWS = 6000


def _edge_field(k: int) -> pa.Table:
    """Fields at the RA wrap (two overlapping, so their blocks interleave) and at both poles."""
    rng = np.random.default_rng([7, k])
    n = EDGE_ROWS
    if k in (0, 1):  # RA 358.5..1.5 and 359.5..2.5, Dec -1.5..1.5
        ra = np.mod(rng.uniform(-1.5, 1.5, n) + k, 360.0)
        dec = rng.uniform(-1.5, 1.5, n)
    else:  # Dec beyond +-88.5, all RA
        z = rng.uniform(np.sin(np.radians(88.5)), 1.0, n)
        dec = np.degrees(np.arcsin(z)) * (1 if k == 2 else -1)
        ra = rng.uniform(0, 360, n)
    return pa.table({"object_id": np.arange(n) + k * n, "ra": ra, "dec": dec})


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    path = tmp_path_factory.mktemp("edges") / "vo.duckdb"
    backend = open_backend(path)
    for k in range(4):
        publish_arrow_field(backend, _edge_field(k), "edge.sky", f"E{k}")
    yield SimpleNamespace(backend=backend, settings=Settings(db=str(path), maxrec_default=10**6))
    backend.close()


_wrap_ra = st.one_of(st.floats(357.0, 360.0, exclude_max=True), st.floats(0.0, 3.0))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    centre=st.one_of(
        st.tuples(_wrap_ra, st.floats(-2.5, 2.5)),
        st.tuples(st.floats(0.0, 360.0, exclude_max=True), st.floats(86.5, 90.0)),
        st.tuples(st.floats(0.0, 360.0, exclude_max=True), st.floats(-90.0, -86.5)),
    ),
    r=st.one_of(st.floats(0.0, 0.3), st.floats(0.0, 4.0)),
)
def test_adql_cone_with_blocks_equals_without(edges, centre, r):
    backend = edges.backend
    adql = _adql_cone("edge.sky", centre[0], centre[1], r)
    with_blocks = _translated(backend, adql, True)
    without = _translated(backend, adql, False)
    assert "_blk" not in without
    a, b = _run(backend, with_blocks), _run(backend, without)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert "_blk" in with_blocks


def test_adql_polygon_and_tap_path_use_the_blocks(edges, monkeypatch):
    from skysense.vo.tap import run_adql_sync

    backend = edges.backend
    box = ("SELECT object_id, ra, dec FROM edge.sky WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
           "BOX('ICRS', 0.2, 0.1, 1.0, 0.8))")  # fmt: skip
    sql = _translated(backend, box, True)
    assert "_blk" in sql
    a, b = _run(backend, sql), _run(backend, _translated(backend, box, False))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert len(a) > 50
    # The TAP query path passes the backend's block index to the translation.
    asked = []
    lookup = backend.hpx_blocks
    monkeypatch.setattr(backend, "hpx_blocks", lambda name: asked.append(name) or lookup(name))
    res = run_adql_sync(edges, _adql_cone("edge.sky", 359.8, 88.9, 0.0), maxrec=10)
    assert res.table.num_rows == 0 and asked == ["edge.sky"]
    res = run_adql_sync(edges, _adql_cone("edge.sky", 0.1, 89.5, 1.0), maxrec=10**6)
    ids = np.sort(res.table.column("object_id").to_numpy())
    ref = _run(backend, _translated(backend, _adql_cone("edge.sky", 0.1, 89.5, 1.0), False))
    assert np.array_equal(ids, ref["object_id"].to_numpy()) and len(ids) > 100


def test_an_adql_cone_reads_fewer_row_groups_with_blocks(fields, tmp_path):
    rng = np.random.default_rng(2)
    with_blocks, without = [], []
    out = tmp_path / "profile.json"
    for _ in range(20):
        ra, dec = rng.uniform(10.1, 10 + N_FIELDS * WIDTH - 0.1), rng.uniform(-1.9, 1.9)
        adql = _adql_cone("bench.sky", ra, dec, 0.05)
        with_blocks.append(_row_groups_read(fields.backend, _translated(fields.backend, adql, True), out)[0])  # fmt: skip
        without.append(_row_groups_read(fields.backend, _translated(fields.backend, adql, False), out)[0])  # fmt: skip
    assert max(with_blocks) <= 3 and np.mean(with_blocks) < 2
    assert np.mean(without) > 2 * np.mean(with_blocks)


def test_a_field_republished_after_the_translation_keeps_its_rows(tmp_path):
    """The block filter of a query translated before a publish commits keeps the new blocks:
    a field republished in between loses neither its old rows nor its new ones."""
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        for k in (0, 2):
            publish_arrow_field(backend, _edge_field(k), "race.sky", f"E{k}")
        adql = _adql_cone("race.sky", 0.0, 0.0, 1.0)
        sql = _translated(backend, adql, True)
        assert "_blk" in sql
        before = _run(backend, sql)
        assert len(before) > 100
        moved = _edge_field(0).set_column(0, "object_id", pa.array(np.arange(EDGE_ROWS) + 10**6))
        publish_arrow_field(backend, moved, "race.sky", "E0")  # same positions, new ids
        after = _run(backend, sql)  # the SQL translated before the publish
        assert np.array_equal(after["object_id"].to_numpy(), before["object_id"].to_numpy() + 10**6)
        now = _run(backend, _translated(backend, adql, False))
        pd.testing.assert_frame_equal(after, now, check_exact=True)
    finally:
        backend.close()
