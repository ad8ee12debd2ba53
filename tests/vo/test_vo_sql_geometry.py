"""Region queries executed on DuckDB and PostgreSQL (with and without Q3C) against brute force.

The translated SQL uses HEALPix ranges (or Q3C) plus an exact test; a selection that loses or
adds a row relative to the NumPy answer fails. Points within 1e-7 deg of a region's edge are
left out of the comparison (rounding may legitimately put them on either side).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from _adql_support import (
    make_sky,
    offset_points,
    polygon_is_proper,
    polygon_truth,
    postgres_schema,
    sep_deg,
    sky_catalog,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from skysense.vo.geometry import box_vertices
from skysense.vo.schema import ColumnInfo, TableInfo
from skysense.vo.sql import translate

SKY = make_sky()
EDGE_DEG = 1e-7


@pytest.fixture(scope="module")
def duck():
    from _adql_support import duckdb_with

    con = duckdb_with({"test.sky": SKY})
    yield con
    con.close()


@pytest.fixture(scope="module", params=["plain", "q3c"])
def pg(request, postgres_dsn):
    q3c = request.param == "q3c"
    with postgres_schema(postgres_dsn, {"sky": SKY}, q3c=q3c) as (conn, schema):
        yield conn, sky_catalog(f'"{schema}"."sky"', q3c=q3c)


def _run_duck(con, adql):
    tr = translate(adql, dialect="duckdb", catalog=sky_catalog())
    return np.sort(con.execute(tr.sql).fetchnumpy()["id"]), tr.sql


def _run_pg(pg, adql):
    conn, catalog = pg
    tr = translate(adql, dialect="postgresql", catalog=catalog)
    rows = conn.execute(tr.sql).fetchall()
    return np.sort(np.array([r[0] for r in rows], dtype=np.int64)), tr.sql


def _compare(got, inside, near, sql):
    want = SKY["id"].to_numpy()[inside & ~near]
    unsure = set(SKY["id"].to_numpy()[near].tolist())
    got_set = set(got.tolist()) - unsure
    missing = set(want.tolist()) - got_set
    extra = got_set - set(want.tolist())
    assert not missing, f"rows lost: {sorted(missing)[:10]} by {sql[:300]}"
    assert not extra, f"rows added: {sorted(extra)[:10]} by {sql[:300]}"


def _cone_truth(ra, dec, r):
    d = sep_deg(ra, dec, SKY["RA"], SKY["DEC"])
    return d <= r, np.abs(d - r) < EDGE_DEG


# Centres: anywhere, at the poles and RA=0/360, or right next to a catalogued source (so that
# tiny cones select something).
_centre = st.one_of(
    st.tuples(st.floats(0, 360), st.floats(-90, 90)),
    st.tuples(st.sampled_from([0.0, 359.9999, 360.0, 180.0]), st.floats(-90, 90)),
    st.tuples(st.floats(0, 360), st.sampled_from([90.0, -90.0, 89.99, -89.995])),
    st.integers(0, len(SKY) - 1).map(
        lambda i: (float(SKY["RA"].iloc[i]) + 1e-5, float(SKY["DEC"].iloc[i]) * 0.9999999)
    ),
)
_radius = st.one_of(st.floats(1e-4, 1e-3), st.floats(1e-3, 1.0), st.floats(1.0, 90.0))


def _cone_adql(ra, dec, r, form):
    if form == "contains":
        return (
            f"SELECT id FROM test.sky WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {ra!r}, {dec!r}, {r!r}))"
        )
    if form == "reversed":
        return (
            f"SELECT s.id FROM test.sky AS s WHERE CONTAINS(POINT(s.ra, s.dec), "
            f"CIRCLE(POINT({ra!r}, {dec!r}), {r!r})) = 1"
        )
    return (
        f"SELECT id FROM test.sky WHERE DISTANCE(POINT(ra, dec), POINT({ra!r}, {dec!r})) <= {r!r}"
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(c=_centre, r=_radius, form=st.sampled_from(["contains", "reversed", "distance"]))
def test_cones_duckdb(duck, c, r, form):
    ra, dec = c
    got, sql = _run_duck(duck, _cone_adql(ra, dec, r, form))
    if form != "distance":
        assert "_hpx" in sql
    inside, near = _cone_truth(ra % 360.0, dec, r)
    _compare(got, inside, near, sql)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(c=_centre, r=_radius)
def test_cones_postgresql(pg, c, r):
    ra, dec = c
    got, sql = _run_pg(pg, _cone_adql(ra, dec, r, "contains"))
    assert ("q3c_radial_query" in sql) == pg[1].tables["test.sky"].q3c
    inside, near = _cone_truth(ra % 360.0, dec, r)
    _compare(got, inside, near, sql)


def _star_polygon(ra, dec, size, k, seed, reverse, convex):
    rng = np.random.default_rng(seed)
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    if convex:
        ang = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 1)
        dist = np.full(k, size)
    else:
        dist = size * np.where(np.arange(k) % 2 == 0, 1.0, rng.uniform(0.2, 0.6, k))
    vr, vd = offset_points(ra, dec, dist, ang)
    if reverse:
        vr, vd = vr[::-1], vd[::-1]
    return vr, vd


def _poly_adql(vr, vd, form):
    vr, vd = [float(x) for x in vr], [float(x) for x in vd]
    coords = ", ".join(f"{a!r}, {d!r}" for a, d in zip(vr, vd))
    if form == "points":
        coords = ", ".join(f"POINT({a!r}, {d!r})" for a, d in zip(vr, vd))
    return f"SELECT id FROM test.sky WHERE 1=CONTAINS(POINT(ra, dec), POLYGON('ICRS', {coords}))"


_poly = st.tuples(
    _centre,
    st.one_of(st.floats(1e-3, 0.1), st.floats(0.1, 30.0), st.floats(30.0, 60.0)),
    st.integers(3, 9),
    st.integers(0, 10**6),
    st.booleans(),
    st.booleans(),
)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(p=_poly, form=st.sampled_from(["coords", "points"]))
def test_polygons_duckdb(duck, p, form):
    (ra, dec), size, k, seed, reverse, convex = p
    vr, vd = _star_polygon(ra, dec, size, k, seed, reverse, convex or k == 3)
    assume(polygon_is_proper(vr, vd))
    got, sql = _run_duck(duck, _poly_adql(vr, vd, form))
    inside, near = polygon_truth(SKY["RA"], SKY["DEC"], vr, vd)
    _compare(got, inside, near, sql)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(p=_poly)
def test_polygons_postgresql(pg, p):
    (ra, dec), size, k, seed, reverse, convex = p
    vr, vd = _star_polygon(ra, dec, size, k, seed, reverse, convex or k == 3)
    assume(polygon_is_proper(vr, vd))
    got, sql = _run_pg(pg, _poly_adql(vr, vd, "coords"))
    inside, near = polygon_truth(SKY["RA"], SKY["DEC"], vr, vd)
    _compare(got, inside, near, sql)


_box = st.tuples(
    st.one_of(st.floats(0, 360), st.sampled_from([0.0, 359.99])),
    st.floats(-80, 80),
    st.floats(1e-3, 40),
    st.floats(1e-3, 20),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(b=_box)
def test_boxes_duckdb(duck, b):
    ra, dec, w, h = b
    if abs(dec) + h / 2 >= 89.9:
        h = 2 * (89.9 - abs(dec))
    got, sql = _run_duck(
        duck,
        f"SELECT id FROM test.sky WHERE 1=CONTAINS(POINT(ra, dec), BOX({ra!r}, {dec!r}, {w!r}, {h!r}))",
    )
    vr, vd = box_vertices(ra, dec, w, h)
    inside, near = polygon_truth(SKY["RA"], SKY["DEC"], vr, vd)
    _compare(got, inside, near, sql)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(b=_box)
def test_boxes_postgresql(pg, b):
    ra, dec, w, h = b
    if abs(dec) + h / 2 >= 89.9:
        h = 2 * (89.9 - abs(dec))
    got, sql = _run_pg(
        pg,
        f"SELECT id FROM test.sky WHERE 1=CONTAINS(POINT(ra, dec), BOX({ra!r}, {dec!r}, {w!r}, {h!r}))",
    )
    vr, vd = box_vertices(ra, dec, w, h)
    inside, near = polygon_truth(SKY["RA"], SKY["DEC"], vr, vd)
    _compare(got, inside, near, sql)


def test_non_convex_polygon_hand_checked(duck):
    # An L-shape: (0,0)-(4,0)-(4,1)-(1,1)-(1,4)-(0,4); the notch around (3, 3) is outside.
    vr = [0, 4, 4, 1, 1, 0]
    vd = [0, 0, 1, 1, 4, 4]
    coords = ", ".join(f"{a}, {d}" for a, d in zip(vr, vd))
    extra = [(0.5, 0.5), (3.5, 0.5), (0.5, 3.5), (3.0, 3.0), (2.0, 2.0), (-0.5, 0.5)]
    sql_values = ", ".join(f"({i}, {a}, {d})" for i, (a, d) in enumerate(extra))
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE lpts AS SELECT * FROM (VALUES {sql_values}) t(id, ra, dec)"
    )
    from skysense.vo.schema import SchemaCatalog

    cols = {c: ColumnInfo(c, "double" if c != "id" else "int") for c in ("id", "ra", "dec")}
    cat = SchemaCatalog({"t.l": TableInfo("t.l", '"lpts"', cols, hpx_column=None)})
    tr = translate(
        f"SELECT id FROM t.l WHERE 1=CONTAINS(POINT(ra, dec), POLYGON({coords})) ORDER BY id",
        dialect="duckdb",
        catalog=cat,
    )
    assert [r[0] for r in duck.execute(tr.sql).fetchall()] == [0, 1, 2]


def test_distance_matches_numpy(duck):
    tr = translate(
        "SELECT id, DISTANCE(POINT(ra, dec), POINT(12.5, -89.0)) AS d, "
        "DISTANCE(ra, dec, 359.0, 0.5) AS d2 FROM test.sky ORDER BY id",
        dialect="duckdb",
        catalog=sky_catalog(),
    )
    out = duck.execute(tr.sql).fetchnumpy()
    np.testing.assert_allclose(out["d"], sep_deg(SKY["RA"], SKY["DEC"], 12.5, -89.0), atol=1e-9)
    np.testing.assert_allclose(out["d2"], sep_deg(SKY["RA"], SKY["DEC"], 359.0, 0.5), atol=1e-9)
    assert tr.columns[1].info.unit == "deg" and tr.columns[1].info.datatype == "double"


def test_intersects_and_circle_circle(duck):
    base = "SELECT COUNT(*) FROM test.sky WHERE "
    a = duck.execute(
        translate(
            base + "1=INTERSECTS(CIRCLE(ra, dec, 0.5), CIRCLE(10, 10, 1))",
            dialect="duckdb",
            catalog=sky_catalog(),
        ).sql
    ).fetchall()[0][0]
    b = duck.execute(
        translate(
            base + "1=INTERSECTS(POINT(ra, dec), CIRCLE(10, 10, 1.5))",
            dialect="duckdb",
            catalog=sky_catalog(),
        ).sql
    ).fetchall()[0][0]
    d = sep_deg(SKY["RA"], SKY["DEC"], 10, 10)
    assert a == b == int((d <= 1.5).sum())
    c = duck.execute(
        translate(
            base + "1=CONTAINS(CIRCLE(ra, dec, 0.5), CIRCLE(10, 10, 2))",
            dialect="duckdb",
            catalog=sky_catalog(),
        ).sql
    ).fetchall()[0][0]
    assert c == int((d + 0.5 <= 2).sum())


def _upload(n=400, seed=2):
    import pandas as pd

    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(SKY), n)
    ra, dec = offset_points(
        SKY["RA"].to_numpy()[pick],
        SKY["DEC"].to_numpy()[pick],
        rng.uniform(0, 3 / 3600, n),
        rng.uniform(0, 2 * np.pi, n),
    )
    ra[:5] = [0.0, 359.9999, 10.0, 20.0, 30.0]
    dec[:5] = [0.0, 0.0, 89.9999, -89.9999, np.nan]
    return pd.DataFrame(
        {"_rowid": np.arange(n, dtype=np.int64), "uid": np.arange(n) + 1000, "ura": ra, "udec": dec}
    )


def _upload_catalog(sky_physical, up_physical, q3c=False):
    cat = sky_catalog(sky_physical, q3c=q3c)
    cols = {
        "uid": ColumnInfo("uid", "long"),
        "ura": ColumnInfo("ura", "double", unit="deg"),
        "udec": ColumnInfo("udec", "double", unit="deg"),
    }
    return cat.with_tables(TableInfo("tap_upload.mine", up_physical, cols, hpx_column=None))


def _pairs_truth(up, radius_deg):
    from skysense.catalog.match import pairs_within

    ok = np.isfinite(up["ura"]) & np.isfinite(up["udec"])
    i1, i2, _ = pairs_within(
        up["ura"].to_numpy()[ok],
        up["udec"].to_numpy()[ok],
        SKY["RA"].to_numpy(),
        SKY["DEC"].to_numpy(),
        radius_deg * 3600,
    )
    uid = up["uid"].to_numpy()[ok][i1]
    return sorted(zip(uid.tolist(), SKY["id"].to_numpy()[i2].tolist()))


_XMATCH = [
    "SELECT u.uid, s.id FROM test.sky AS s JOIN tap_upload.mine AS u "
    "ON 1=CONTAINS(POINT(s.ra, s.dec), CIRCLE(u.ura, u.udec, {r}))",
    "SELECT u.uid, s.id FROM tap_upload.mine AS u JOIN test.sky AS s "
    "ON 1=CONTAINS(POINT(u.ura, u.udec), CIRCLE(s.ra, s.dec, {r})) AND s.id >= 0",
    "SELECT u.uid, s.id FROM test.sky AS s, tap_upload.mine AS u "
    "WHERE DISTANCE(POINT(s.ra, s.dec), POINT(u.ura, u.udec)) < {r}",
]


def _cells_frame(cells, up):
    """The helper table the backend fills from the upload's positions."""
    import pandas as pd

    from skysense.vo.backends.base import _hpx_cells_table

    ok = (np.isfinite(up["ura"]) & np.isfinite(up["udec"])).to_numpy()
    t = _hpx_cells_table(
        cells, up["_rowid"].to_numpy()[ok], up["ura"].to_numpy()[ok], up["udec"].to_numpy()[ok]
    )
    return pd.DataFrame({name: t.column(name).to_numpy() for name in t.column_names})


@pytest.mark.parametrize("form", range(len(_XMATCH)))
@pytest.mark.parametrize("radius", [2.5 / 3600, 0.05, 3.0])
def test_upload_crossmatch_duckdb(duck, form, radius):
    up = _upload()
    duck.register("up_df", up)
    duck.execute("CREATE OR REPLACE TEMP TABLE up_mine AS SELECT * FROM up_df")
    cat = _upload_catalog('"test"."sky"', '"up_mine"')
    tr = translate(_XMATCH[form].format(r=repr(radius)), dialect="duckdb", catalog=cat)
    assert len(tr.aux) == 1
    # The helper table is joined explicitly to the upload, then to the indexed table.
    assert re.search(
        r'JOIN "_hpx_cells_0" AS "c\d+" ON "c\d+"."src_rowid" = "t\d+"."_rowid"\)', tr.sql
    )
    cells = tr.aux[0]
    assert cells.source_physical == '"up_mine"' and cells.index_order == 14
    assert cells.radius_deg == pytest.approx(radius)
    # Small circles join on cell equality (order 14 itself, or the index shifted to a coarser
    # depth); circles of degrees on index ranges.
    expect_depth = {2.5 / 3600: 14, 0.05: 8, 3.0: None}[radius]
    assert cells.depth == expect_depth
    if expect_depth is None:
        assert re.search(r'BETWEEN "c\d+"."lo" AND "c\d+"."hi"', tr.sql)
    elif expect_depth == 14:
        assert re.search(r'"t\d+"."_hpx" = "c\d+"."cell"', tr.sql)
    else:
        assert re.search(r'\("t\d+"."_hpx" >> 12\) = "c\d+"."cell"', tr.sql)
    duck.register("cells_df", _cells_frame(cells, up))
    duck.execute(f'CREATE OR REPLACE TEMP TABLE "{cells.name}" AS SELECT * FROM cells_df')
    got = sorted(map(tuple, duck.execute(tr.sql).fetchall()))
    assert got == _pairs_truth(up, radius)
    assert len(got) > 300


def test_upload_crossmatch_postgresql(pg):
    conn, catalog = pg
    schema = catalog.tables["test.sky"].physical.split(".")[0]
    up = _upload()
    radius = 2.5 / 3600
    conn.execute(
        f'CREATE TABLE {schema}."up" (_rowid BIGINT, uid BIGINT, ura DOUBLE PRECISION, '
        "udec DOUBLE PRECISION)"
    )
    with conn.cursor() as cur, cur.copy(f'COPY {schema}."up" FROM STDIN') as cp:
        for r in up.itertuples(index=False):
            cp.write_row([None if isinstance(v, float) and np.isnan(v) else v for v in r])
    q3c = catalog.tables["test.sky"].q3c
    cat = _upload_catalog(catalog.tables["test.sky"].physical, f'{schema}."up"', q3c=q3c)
    tr = translate(_XMATCH[0].format(r=repr(radius)), dialect="postgresql", catalog=cat)
    if q3c:
        assert "q3c_join" in tr.sql and not tr.aux
    else:
        cells = tr.aux[0]
        assert cells.depth == 14 and '= "c' in tr.sql  # cell equality join
        frame = _cells_frame(cells, up)
        conn.execute(f'CREATE TEMP TABLE "{cells.name}" (src_rowid BIGINT, cell BIGINT)')
        with conn.cursor() as cur, cur.copy(f'COPY "{cells.name}" FROM STDIN') as cp:
            for a, b in zip(frame["src_rowid"], frame["cell"]):
                cp.write_row([int(a), int(b)])
    got = sorted(map(tuple, conn.execute(tr.sql).fetchall()))
    assert got == _pairs_truth(up, radius)


def test_outer_join_crossmatch_keeps_unmatched_rows(duck):
    up = _upload(50, seed=9)
    duck.register("up_df2", up)
    duck.execute("CREATE OR REPLACE TEMP TABLE up_two AS SELECT * FROM up_df2")
    cat = _upload_catalog('"test"."sky"', '"up_two"')
    tr = translate(
        "SELECT u.uid, s.id FROM tap_upload.mine AS u LEFT JOIN test.sky AS s "
        "ON 1=CONTAINS(POINT(s.ra, s.dec), CIRCLE(u.ura, u.udec, 0.0005))",
        dialect="duckdb",
        catalog=cat,
    )
    # The helper cells join the side that may be missing (issue #23): "u LEFT JOIN (s JOIN
    # cells ON cell) ON link AND exact".
    (cells,) = tr.aux
    assert re.search(r'LEFT JOIN \("test"\."sky" AS "t\d+" JOIN "_hpx_cells_0"', tr.sql), tr.sql
    duck.register("cells_df2", _cells_frame(cells, up))
    duck.execute(f'CREATE OR REPLACE TEMP TABLE "{cells.name}" AS SELECT * FROM cells_df2')
    rows = duck.execute(tr.sql).fetchall()
    assert {r[0] for r in rows} == set(up["uid"].tolist())
    matched = sorted((a, b) for a, b in rows if b is not None)
    assert matched == _pairs_truth(up, 0.0005)
    # Every row once: a pair once, an unmatched upload row once (with NULL).
    unmatched = {a for a, b in rows if b is None}
    assert len(rows) == len(matched) + len(unmatched)
    assert not unmatched & {a for a, _ in matched}


def test_tiny_radius_precision(duck):
    # Two sources 0.1 arcsec apart: a 0.05-arcsec cone on one finds exactly it.
    i = 4000
    ra, dec = float(SKY["RA"].iloc[i]), float(SKY["DEC"].iloc[i])
    got, _ = _run_duck(duck, _cone_adql(ra, dec, 0.05 / 3600, "contains"))
    d = sep_deg(ra, dec, SKY["RA"], SKY["DEC"])
    assert got.tolist() == SKY["id"].to_numpy()[d <= 0.05 / 3600].tolist()
    assert i in got.tolist()
    assert math.isfinite(d.min())
