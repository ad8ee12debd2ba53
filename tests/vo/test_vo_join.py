"""Positional joins between published tables use the sky index (issue #23).

Every form (CONTAINS/DISTANCE, ON/WHERE, either argument order, extra conditions, self-joins,
radius columns) is checked against astropy's ``search_around_sky`` (the independent answer) on
random catalogues near the poles, across RA = 0/360 and in plain fields, for radii from 0.1
arcsec to 1 deg, on DuckDB (HEALPix cells) and PostgreSQL (q3c_join; ``SKYSENSE_TEST_PG``).
Pairs whose separation is within 1e-9 relative of the radius are left out of the comparison:
the database's haversine test and astropy's Vincenty separation may round them either way.
"""

from __future__ import annotations

import dataclasses
import io
import re

import astropy.units as u
import httpx
import numpy as np
import pyarrow as pa
import pytest
from _vo_support import ServerThread, fresh_postgres, server_settings
from astropy.coordinates import SkyCoord, search_around_sky
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from skysense.errors import QueryError
from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_arrow
from skysense.vo.schema import SchemaCatalog
from skysense.vo.sql import translate

META = {
    "columns": {
        "ra": {"unit": "deg", "ucd": "pos.eq.ra;meta.main"},
        "dec": {"unit": "deg", "ucd": "pos.eq.dec;meta.main"},
    }
}

# ---- data


def field(rng: np.random.Generator, n: int, where: str, spread: float) -> tuple:
    """``n`` positions (deg) in a field of about ``spread`` deg: near a pole, across RA=0 or
    plain."""
    if where == "north":
        ra = rng.uniform(0, 360, n)
        dec = 90 - np.abs(rng.normal(0, spread, n))
    elif where == "south":
        ra = rng.uniform(0, 360, n)
        dec = -90 + np.abs(rng.normal(0, spread, n))
    elif where == "wrap":
        ra = np.mod(rng.normal(0, spread, n), 360.0)
        dec = rng.normal(10, spread, n)
    else:
        ra = rng.normal(150, spread, n)
        dec = rng.normal(2, spread, n)
    return ra, np.clip(dec, -90, 90)


def near(rng, ra, dec, k: int, r: float) -> tuple:
    """``k`` positions within about ``r`` deg of random members of (ra, dec)."""
    i = rng.integers(0, len(ra), k)
    c = SkyCoord(ra[i] * u.deg, dec[i] * u.deg).directional_offset_by(
        rng.uniform(0, 360, k) * u.deg, rng.uniform(0, 1.3 * r, k) * u.deg
    )
    return c.ra.deg, c.dec.deg


def truth(ra1, dec1, ra2, dec2, radius) -> tuple[set, set]:
    """(pairs (i, j) within ``radius`` (deg, scalar or per row of 1), pairs too close to the
    boundary to compare) by astropy's ``search_around_sky``."""
    radius = np.broadcast_to(np.asarray(radius, dtype=float), np.shape(ra1))
    if len(ra1) == 0 or len(ra2) == 0:
        return set(), set()
    c1 = SkyCoord(ra1 * u.deg, dec1 * u.deg)
    c2 = SkyCoord(ra2 * u.deg, dec2 * u.deg)
    i, j, sep, _ = search_around_sky(c1, c2, float(radius.max()) * (1 + 1e-6) * u.deg)
    sep = sep.deg
    r = radius[i]
    inside = sep <= r
    edge = np.abs(sep - r) <= 1e-9 * r + 1e-12
    pairs = {(int(a), int(b)) for a, b, k in zip(i, j, inside & ~edge) if k}
    return pairs, {(int(a), int(b)) for a, b, k in zip(i, j, edge) if k}


def assert_pairs(got: set, want: set, edge: set, sql: str) -> None:
    got = got - edge
    assert got == want, (
        f"missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]} "
        f"({len(want)} expected)\n{sql[:400]}"
    )


# ---- backends


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def backend(request, tmp_path_factory):
    if request.param == "duckdb":
        b = open_backend(str(tmp_path_factory.mktemp("join") / "join.duckdb"))
        yield b
        b.close()
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        with fresh_postgres(dsn) as url:
            b = open_backend(url)
            yield b
            b.close()


def publish(backend, name: str, ra, dec, **extra) -> None:
    cols = {"id": np.arange(len(ra), dtype=np.int64), "ra": ra, "dec": dec, **extra}
    publish_arrow(backend, pa.table(cols), name, meta=META)


def run(backend, adql: str, catalog=None, **kwargs) -> tuple[set, str]:
    """(pairs (a.id, b.id) of the first two columns, SQL) of an ADQL join."""
    tr = translate(adql, dialect=backend.dialect, catalog=catalog or backend.catalog(), **kwargs)
    t = backend.query(tr.sql, aux=tr.aux)
    a, b = (t.column(k).to_pylist() for k in (0, 1))
    pairs = set(zip(a, b))
    assert len(pairs) == t.num_rows, "a pair came out twice"
    return pairs, tr.sql


def assert_indexed(backend, sql: str) -> None:
    if backend.dialect == "postgresql" and "q3c_join" in sql:
        return
    assert re.search(r'"_hpx"( >> \d+)?\)? = "c\d+"\."cell"', sql), sql


FORMS = {
    "contains_on": "SELECT a.id, b.id FROM j.a AS a JOIN j.b AS b "
    "ON 1 = CONTAINS(POINT('ICRS', b.ra, b.dec), CIRCLE('ICRS', a.ra, a.dec, {r}))",
    "contains_reversed": "SELECT a.id, b.id FROM j.a AS a JOIN j.b AS b "
    "ON CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, {r})) = 1",
    "contains_where": "SELECT a.id, b.id FROM j.b AS b, j.a AS a "
    "WHERE a.id >= 0 AND 1 = CONTAINS(POINT(a.ra, a.dec), CIRCLE(POINT(b.ra, b.dec), {r}))",
    "distance_where": "SELECT a.id, b.id FROM j.a AS a, j.b AS b "
    "WHERE DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) <= {r}",
    "distance_lt_on": "SELECT a.id, b.id FROM j.a AS a JOIN j.b AS b "
    "ON DISTANCE(b.ra, b.dec, a.ra, a.dec) < {r} AND b.id >= 0",
    "distance_mirrored": "SELECT a.id, b.id FROM j.a AS a INNER JOIN j.b AS b "
    "ON {r} >= DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec))",
}

catalogues = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "where": st.sampled_from(["north", "south", "wrap", "plain"]),
        "log_r": st.floats(np.log10(0.1 / 3600), 0.0),  # 0.1 arcsec .. 1 deg
        "n_a": st.integers(0, 40),
        "n_b": st.integers(1, 200),
        "form": st.sampled_from(sorted(FORMS)),
    }
)


def make_pair(backend, c) -> tuple:
    rng = np.random.default_rng(c["seed"])
    r = 10.0 ** c["log_r"]
    ra_b, dec_b = field(rng, c["n_b"], c["where"], spread=max(30 * r, 0.01))
    ra_a, dec_a = near(rng, ra_b, dec_b, c["n_a"], r)
    publish(backend, "j.a", ra_a, dec_a)
    publish(backend, "j.b", ra_b, dec_b)
    return r, (ra_a, dec_a), (ra_b, dec_b)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(c=catalogues)
def test_indexed_join_equals_search_around_sky(backend, c):
    r, (ra_a, dec_a), (ra_b, dec_b) = make_pair(backend, c)
    got, sql = run(backend, FORMS[c["form"]].format(r=repr(r)))
    assert_indexed(backend, sql)
    want, edge = truth(ra_a, dec_a, ra_b, dec_b, r)
    assert_pairs(got, want, edge, sql)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(c=catalogues, scale=st.floats(0.2, 3.0))
def test_radius_column(backend, c, scale):
    """CIRCLE(a.ra, a.dec, a.err): per-row radii, some far above the bound the depth is chosen
    for (those rows get every cell their circle meets)."""
    rng = np.random.default_rng(c["seed"])
    r = 10.0 ** c["log_r"]
    ra_b, dec_b = field(rng, c["n_b"], c["where"], spread=max(30 * r, 0.01))
    ra_a, dec_a = near(rng, ra_b, dec_b, c["n_a"], r)
    err = r * rng.uniform(0.1, scale, len(ra_a))
    if len(err):
        err[rng.random(len(err)) < 0.1] = np.nan
    # NULL radii match nothing.
    publish(backend, "j.a", ra_a, dec_a, err=pa.array(err, mask=np.isnan(err)))
    publish(backend, "j.b", ra_b, dec_b)
    adql = (
        "SELECT a.id, b.id FROM j.a AS a JOIN j.b AS b "
        "ON 1 = CONTAINS(POINT(b.ra, b.dec), CIRCLE(a.ra, a.dec, a.err))"
    )
    got, sql = run(backend, adql)
    assert_indexed(backend, sql)
    ok = np.isfinite(err)
    want, edge = truth(ra_a[ok], dec_a[ok], ra_b, dec_b, err[ok])
    rows = np.flatnonzero(ok)
    want = {(int(rows[i]), j) for i, j in want}
    edge = {(int(rows[i]), j) for i, j in edge}
    assert_pairs(got, want, edge, sql)


def test_self_join_and_position_link(backend):
    """Close pairs within one table (both copies of the table), and the position-linked
    helper table (used for views and PostgreSQL tables without Q3C), duplicate positions
    included."""
    rng = np.random.default_rng(5)
    ra, dec = field(rng, 1500, "wrap", 0.05)
    ra2, dec2 = near(rng, ra, dec, 500, 2 / 3600)
    ra, dec = np.concatenate([ra, ra2, ra[:20]]), np.concatenate([dec, dec2, dec[:20]])
    publish(backend, "j.b", ra, dec)
    adql = (
        "SELECT x.id, y.id FROM j.b AS x JOIN j.b AS y "
        "ON 1 = CONTAINS(POINT(y.ra, y.dec), CIRCLE(x.ra, x.dec, 2.0 / 3600))"
    )
    want, edge = truth(ra, dec, ra, dec, 2 / 3600)
    assert len(want) > len(ra) + 100  # self pairs, duplicates and the close pairs
    got, sql = run(backend, adql)
    assert_indexed(backend, sql)
    assert_pairs(got, want, edge, sql)
    # The same with the table seen as a view and without Q3C: cells linked by position.
    cat = backend.catalog()
    t = dataclasses.replace(cat.tables["j.b"], kind="view", q3c=False)
    cat2 = SchemaCatalog(tables={**cat.tables, "j.b": t})
    got, sql = run(backend, adql, catalog=cat2)
    assert '"ra" = CAST(' in sql
    assert_pairs(got, want, edge, sql)


def test_unindexed_join_is_refused_before_running(backend):
    rng = np.random.default_rng(2)
    publish(backend, "j.a", *field(rng, 300, "plain", 0.1))
    publish(backend, "j.b", *field(rng, 400, "plain", 0.1))
    bad = [
        # arithmetic on the indexed columns
        "SELECT a.id FROM j.a AS a, j.b AS b "
        "WHERE DISTANCE(POINT(a.ra + 0, a.dec), POINT(b.ra + 0, b.dec)) < 0.001",
        # OR-ed with another condition
        "SELECT a.id FROM j.a AS a JOIN j.b AS b "
        "ON 1 = CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, 0.001)) OR a.id = b.id + 1",
        # a radius reading both tables
        "SELECT a.id FROM j.a AS a JOIN j.b AS b "
        "ON 1 = CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, 0.001 + a.ra * b.dec * 0))",
    ]
    for adql in bad:
        with pytest.raises(QueryError, match="cannot use the sky index.*120,000 pairs"):
            translate(
                adql,
                dialect=backend.dialect,
                catalog=backend.catalog(),
                max_unindexed_pairs=100_000,
            )
        # Within the limit it runs (as a nested loop).
        translate(
            adql, dialect=backend.dialect, catalog=backend.catalog(), max_unindexed_pairs=120_000
        )
    # An equality between the tables lets the database hash-join: not refused.
    ok = (
        "SELECT a.id FROM j.a AS a JOIN j.b AS b ON a.id = b.id "
        "AND DISTANCE(POINT(a.ra + 0, a.dec), POINT(b.ra, b.dec)) < 0.001"
    )
    translate(ok, dialect=backend.dialect, catalog=backend.catalog(), max_unindexed_pairs=10)


def test_refusal_is_a_400_with_the_rewrite(tmp_path):
    db = str(tmp_path / "r.duckdb")
    b = open_backend(db)
    rng = np.random.default_rng(3)
    publish(b, "j.a", *field(rng, 2000, "plain", 0.1))
    publish(b, "j.b", *field(rng, 2000, "plain", 0.1))
    b.close()
    settings_ = server_settings(db, tmp_path, max_unindexed_pairs=1_000_000)
    adql = (
        "SELECT a.id FROM j.a AS a, j.b AS b "
        "WHERE DISTANCE(POINT(a.ra, a.dec + 0), POINT(b.ra, b.dec + 0)) < 0.001"
    )
    with ServerThread(create_app(settings_)) as server:
        resp = httpx.post(
            f"{server.url}/tap/sync",
            data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql},
            timeout=30,
        )
        good = httpx.post(
            f"{server.url}/tap/sync",
            data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql.replace(" + 0", "")},
            timeout=30,
        )
    assert resp.status_code == 400, resp.text
    assert "4,000,000 pairs" in resp.text and "CONTAINS(POINT(a.ra, a.dec)" in resp.text
    assert good.status_code == 200, good.text


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    where=st.sampled_from(["north", "south", "wrap", "plain"]),
    log_r=st.floats(np.log10(0.1 / 3600), 1.0),
    depth_step=st.integers(-3, 3),
)
def test_join_cells_cover_every_point_of_each_circle(seed, where, log_r, depth_step):
    """Points drawn inside each circle (at up to its full radius) fall in one of that row's
    cells, for depths around, below and above the one the radius calls for."""
    from skysense.vo import hpx
    from skysense.vo.sql.joincells import join_cells, radius_depth

    rng = np.random.default_rng(seed)
    r = 10.0**log_r
    ra, dec = field(rng, 20, where, spread=max(10 * r, 0.01))
    radius = r * rng.uniform(0.05, 1.0, len(ra))
    depth = int(np.clip(radius_depth(r, 14) + depth_step, 0, 14))
    row, cell = join_cells(ra, dec, radius, 14, depth)
    assert len(set(zip(row.tolist(), cell.tolist()))) == len(row)
    k = 40
    i = np.repeat(np.arange(len(ra)), k)
    frac = np.concatenate([[1.0], rng.uniform(0, 1, k - 1)])
    c = SkyCoord(ra[i] * u.deg, dec[i] * u.deg).directional_offset_by(
        rng.uniform(0, 360, len(i)) * u.deg, np.tile(frac, len(ra)) * radius[i] * (1 - 1e-9) * u.deg
    )
    pts = hpx.hpx_index(c.ra.deg, c.dec.deg, depth)
    have = set(zip(row.tolist(), cell.tolist()))
    missing = [(int(a), int(b)) for a, b in zip(i, pts) if (int(a), int(b)) not in have]
    assert not missing, missing[:5]


OUTER = {
    # (ADQL, the preserved side)
    "left": (
        "SELECT a.id, b.id FROM j.a AS a LEFT OUTER JOIN j.b AS b "
        "ON 1 = CONTAINS(POINT(b.ra, b.dec), CIRCLE(a.ra, a.dec, {r}))",
        "a",
    ),
    "right": (
        "SELECT a.id, b.id FROM j.b AS b RIGHT JOIN j.a AS a "
        "ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) <= {r}",
        "a",
    ),
    "left_big": (
        "SELECT a.id, b.id FROM j.b AS b LEFT JOIN j.a AS a "
        "ON 1 = CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, {r})) AND a.id >= 0",
        "b",
    ),
}


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(c=catalogues, kind=st.sampled_from(sorted(OUTER)))
def test_outer_joins(backend, c, kind):
    """LEFT/RIGHT joins: every pair once, and every unmatched row of the preserved side once
    with NULLs."""
    r, (ra_a, dec_a), (ra_b, dec_b) = make_pair(backend, c)
    adql, keep = OUTER[kind]
    want, edge = truth(ra_a, dec_a, ra_b, dec_b, r)
    assume(not edge)
    tr = translate(adql.format(r=repr(r)), dialect=backend.dialect, catalog=backend.catalog())
    assert_indexed(backend, tr.sql)
    t = backend.query(tr.sql, aux=tr.aux)
    rows = list(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))
    if keep == "a":
        matched = {i for i, _ in want}
        want_rows = want | {(i, None) for i in range(len(ra_a)) if i not in matched}
    else:
        matched = {j for _, j in want}
        want_rows = want | {(None, j) for j in range(len(ra_b)) if j not in matched}
    assert len(rows) == len(set(rows)) == len(want_rows), tr.sql
    assert set(rows) == want_rows, tr.sql


def test_upload_with_a_radius_column(backend):
    """TAP_UPLOAD joined on its own radius column: per-row cells read from the upload."""
    from astropy.table import Table

    from skysense.vo.tap import make_upload

    rng = np.random.default_rng(12)
    ra_b, dec_b = field(rng, 3000, "wrap", 0.05)
    publish(backend, "j.b", ra_b, dec_b)
    ra_u, dec_u = near(rng, ra_b, dec_b, 300, 3 / 3600)
    err = rng.uniform(0.2, 40, len(ra_u)) / 3600  # some far above the 10 arcsec bound
    buf = io.BytesIO()
    Table({"uid": np.arange(len(ra_u)), "ra": ra_u, "dec": dec_u, "err": err}).write(
        buf, format="votable"
    )
    up = make_upload("mine", buf.getvalue())
    cat = SchemaCatalog(tables={**backend.catalog().tables, up.info.name: up.info})
    adql = (
        "SELECT u.uid, b.id FROM TAP_UPLOAD.mine AS u JOIN j.b AS b "
        "ON 1 = CONTAINS(POINT(b.ra, b.dec), CIRCLE(u.ra, u.dec, u.err))"
    )
    tr = translate(adql, dialect=backend.dialect, catalog=cat)
    assert_indexed(backend, tr.sql)
    t = backend.query(tr.sql, uploads=[up], aux=tr.aux)
    got = set(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))
    assert len(got) == t.num_rows
    want, edge = truth(ra_u, dec_u, ra_b, dec_b, err)
    assert len(want) > 300
    assert_pairs(got, want, edge, tr.sql)
