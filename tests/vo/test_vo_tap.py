"""TAP 1.1 synchronous queries through HTTP (Starlette TestClient), against DuckDB and
PostgreSQL; cone and range selections compared with a brute-force astropy/numpy selection."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pyarrow as pa
import pytest
from _vo_support import fresh_postgres, publish_sky, server_settings
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from starlette.testclient import TestClient

from skysense.vo.app import create_app
from skysense.vo.votable import result_votable


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def client(request, tmp_path_factory, sky):
    tmp = tmp_path_factory.mktemp("tap")
    if request.param == "duckdb":
        db = str(tmp / "tap.duckdb")
        publish_sky(db, sky)
        with TestClient(create_app(server_settings(db, tmp))) as c:
            yield c
    else:
        with fresh_postgres(request.getfixturevalue("postgres_dsn")) as db:
            publish_sky(db, sky)
            with TestClient(create_app(server_settings(db, tmp))) as c:
                yield c


def votable(resp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse(io.BytesIO(resp.content))


def status(vot):
    infos = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    return infos[-1].value, infos[-1].content


def rows(resp):
    vot = votable(resp)
    assert status(vot)[0] in ("OK", "OVERFLOW"), status(vot)
    return vot.resources[0].tables[0].to_table()


def sync(client, query, **params):
    return client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": query, **params})


def brute_cone(sky: pa.Table, ra0, dec0, radius_deg):
    c = SkyCoord(sky.column("ra").to_numpy() * u.deg, sky.column("dec").to_numpy() * u.deg)
    sep = c.separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg
    ids = sky.column("object_id").to_numpy()
    return set(ids[sep < radius_deg]), set(ids[np.abs(sep - radius_deg) < 1e-8])


CONES = [
    (0.0, 0.0, 1.5),
    (359.5, -1.0, 0.7),
    (150.0, 2.0, 0.3),
    (0.0, 90.0, 2.5),
    (123.0, 88.0, 1.2),
    (10.0, 10.0, 0.5),
]


@pytest.mark.parametrize("ra0,dec0,radius", CONES)
def test_cone_agrees_with_brute_force(client, sky, ra0, dec0, radius):
    query = (
        "SELECT object_id FROM demo.sky WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        f"CIRCLE('ICRS', {ra0}, {dec0}, {radius}))"
    )
    got = set(rows(sync(client, query, MAXREC=5000))["object_id"].tolist())
    expected, edge = brute_cone(sky, ra0, dec0, radius)
    assert got - edge == expected - edge
    assert len(expected) > 0 or (ra0, dec0) == (10.0, 10.0)


def test_range_box_and_aggregates_agree_with_numpy(client, sky):
    query = (
        "SELECT object_id, ra, dec, mag_r FROM demo.sky "
        "WHERE ra BETWEEN 148.5 AND 150.5 AND dec BETWEEN 1 AND 3 AND mag_r < 22 "
        "ORDER BY object_id"
    )
    got = rows(sync(client, query, MAXREC=5000))
    ra, dec = sky.column("ra").to_numpy(), sky.column("dec").to_numpy()
    mag = sky.column("mag_r").to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        sel = (ra >= 148.5) & (ra <= 150.5) & (dec >= 1) & (dec <= 3) & (mag < 22)
    assert got["object_id"].tolist() == sky.column("object_id").to_numpy()[sel].tolist()
    assert got["ra"].unit == u.deg and got["mag_r"].unit == u.mag
    agg = rows(sync(client, "SELECT kind, COUNT(*) AS n FROM demo.sky GROUP BY kind ORDER BY kind"))
    kinds, counts = np.unique(np.asarray(sky.column("kind").to_pylist()), return_counts=True)
    assert [str(k) for k in agg["kind"]] == kinds.tolist()
    assert agg["n"].tolist() == counts.tolist()


def test_get_post_and_case_insensitive_parameters(client):
    q = "SELECT TOP 3 object_id FROM demo.sky ORDER BY object_id"
    a = rows(client.get("/tap/sync", params={"lang": "ADQL", "query": q}))
    b = rows(client.post("/tap/sync", data={"Lang": "ADQL", "QUERY": q, "REQUEST": "doQuery"}))
    c = rows(client.post("/tap/sync", files={"QUERY": (None, q), "LANG": (None, "ADQL")}))
    assert a["object_id"].tolist() == b["object_id"].tolist() == c["object_id"].tolist()
    assert a["object_id"].tolist() == [1, 2, 3]


def test_maxrec_overflow_and_hard_ceiling(client):
    resp = sync(client, "SELECT object_id FROM demo.sky", MAXREC="10")
    vot = votable(resp)
    assert status(vot)[0] == "OVERFLOW"
    assert len(vot.resources[0].tables[0].array) == 10
    assert resp.text.index('value="OVERFLOW"') > resp.text.index("</TABLE>")
    # Exactly as many rows as MAXREC allows is not an overflow.
    vot = votable(sync(client, "SELECT id FROM demo.small", MAXREC="3"))
    assert status(vot)[0] == "OK"
    # MAXREC above the hard ceiling (5000 in the test settings) is capped.
    vot = votable(
        sync(client, "SELECT a.object_id FROM demo.sky AS a, demo.small AS b", MAXREC="100000")
    )
    assert status(vot)[0] == "OVERFLOW" and len(vot.resources[0].tables[0].array) == 5000
    vot = votable(sync(client, "SELECT object_id FROM demo.sky", MAXREC="0"))
    assert len(vot.resources[0].tables[0].array) == 0
    assert [f.name for f in vot.resources[0].tables[0].fields] == ["object_id"]


@pytest.mark.parametrize(
    "fmt,mime",
    [
        ("csv", "text/csv"),
        ("tsv", "text/tab-separated-values"),
        ("json", "application/json"),
        ("fits", "application/fits"),
        (
            "application/x-votable+xml;serialization=BINARY2",
            "application/x-votable+xml;serialization=BINARY2",
        ),
        ("votable", "application/x-votable+xml"),
    ],
)
def test_response_formats(client, fmt, mime):
    q = "SELECT TOP 5 object_id, ra, kind FROM demo.sky ORDER BY object_id"
    resp = sync(client, q, RESPONSEFORMAT=fmt)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith(mime)
    if fmt == "csv":
        assert resp.text.splitlines()[1].split(",")[0] == "1"
    elif fmt == "json":
        assert [r[0] for r in json.loads(resp.content)["data"]] == [1, 2, 3, 4, 5]
    elif fmt == "fits":
        from astropy.io import fits

        with fits.open(io.BytesIO(resp.content)) as hdul:
            assert list(hdul[1].data["object_id"]) == [1, 2, 3, 4, 5]
    elif fmt != "tsv":
        assert rows(resp)["object_id"].tolist() == [1, 2, 3, 4, 5]
    # FORMAT is the older spelling of RESPONSEFORMAT
    assert sync(client, q, FORMAT=fmt).headers["content-type"].startswith(mime)


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({"QUERY": "SELEC object_id FROM demo.sky"}, "line 1, column"),
        ({"QUERY": "SELECT nope FROM demo.sky"}, "nope"),
        ({"QUERY": "SELECT * FROM demo.missing"}, "missing"),
        ({"LANG": "SQL", "QUERY": "SELECT 1"}, "LANG"),
        ({"QUERY": ""}, "QUERY"),
        ({"REQUEST": "getCapabilities", "QUERY": "SELECT 1"}, "REQUEST"),
        ({"QUERY": "SELECT TOP 1 * FROM demo.sky", "MAXREC": "-3"}, "MAXREC"),
        ({"QUERY": "SELECT TOP 1 * FROM demo.sky", "RESPONSEFORMAT": "x/y"}, "RESPONSEFORMAT"),
    ],
)
def test_errors_are_votable_documents(client, params, fragment):
    resp = client.get("/tap/sync", params={"LANG": "ADQL", **params})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/x-votable+xml")
    value, message = status(votable(resp))
    assert value == "ERROR"
    assert fragment in message


def test_tap_schema_is_queryable(client):
    names = rows(sync(client, "SELECT table_name FROM TAP_SCHEMA.tables"))["table_name"]
    assert {"demo.sky", "demo.small", "TAP_SCHEMA.columns"} <= set(names.tolist())
    cols = rows(
        sync(
            client,
            "SELECT column_name, unit, ucd, indexed FROM TAP_SCHEMA.columns "
            "WHERE table_name = 'demo.sky' ORDER BY column_index",
        )
    )
    assert cols["column_name"].tolist() == ["object_id", "ra", "dec", "mag_r", "kind", "flag"]
    assert cols["unit"].tolist()[1] == "deg" and cols["indexed"].tolist()[1] == 1


def _upload_votable(ra, dec) -> bytes:
    t = pa.table({"src": pa.array(np.arange(len(ra)), pa.int32()), "RA": ra, "DEC": dec})
    from skysense.vo.schema import ColumnInfo

    cols = [
        ColumnInfo("src", "int"),
        ColumnInfo("RA", "double", unit="deg", ucd="pos.eq.ra;meta.main"),
        ColumnInfo("DEC", "double", unit="deg", ucd="pos.eq.dec;meta.main"),
    ]
    return result_votable(t, cols)


def test_inline_upload_crossmatch_agrees_with_brute_force(client, sky):
    from skysense.catalog.match import pairs_within

    rng = np.random.default_rng(5)
    pick = rng.choice(sky.num_rows, 40, replace=False)
    ra = sky.column("ra").to_numpy()[pick] + rng.normal(0, 1e-4, 40)
    dec = sky.column("dec").to_numpy()[pick] + rng.normal(0, 1e-4, 40)
    ra = np.mod(ra, 360.0)
    body = _upload_votable(ra, dec)
    radius_deg = 0.05
    query = (
        "SELECT u.src, s.object_id FROM TAP_UPLOAD.mine AS u JOIN demo.sky AS s "
        "ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, "
        f"{radius_deg}))"
    )
    resp = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": query, "UPLOAD": "mine,param:tab", "MAXREC": "100000"},
        files={"tab": ("t.vot", body, "application/x-votable+xml")},
    )
    got = rows(resp)
    pairs = set(zip(got["src"].tolist(), got["object_id"].tolist()))
    i1, i2, _ = pairs_within(
        ra, dec, sky.column("ra").to_numpy(), sky.column("dec").to_numpy(), radius_deg * 3600
    )
    expected = set(zip(i1.tolist(), sky.column("object_id").to_numpy()[i2].tolist()))
    assert pairs == expected and len(expected) >= 40
    # The upload is private to its query: another query cannot see it.
    resp = sync(client, "SELECT * FROM TAP_UPLOAD.mine")
    assert resp.status_code == 400 and "mine" in status(votable(resp))[1].lower()


def test_upload_errors(client):
    resp = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:absent"},
    )
    assert resp.status_code == 400 and "absent" in status(votable(resp))[1]
    resp = client.post(
        "/tap/sync",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT * FROM TAP_UPLOAD.t",
            "UPLOAD": "t,file:///etc/passwd",
        },
    )
    assert resp.status_code == 400 and "http" in status(votable(resp))[1]
    resp = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:p"},
        files={"p": ("t.vot", b"not xml at all", "text/xml")},
    )
    assert resp.status_code == 400 and "VOTable" in status(votable(resp))[1]
    big = b"x" * 2_000_001
    resp = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:p"},
        files={"p": ("t.vot", big, "text/xml")},
    )
    assert resp.status_code == 400 and "exceeds the limit" in status(votable(resp))[1]


def _unit(ra_deg, dec_deg):
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def brute_convex_polygon(sky: pa.Table, vertices):
    """Ids inside a convex spherical polygon with great-circle edges (and ids within 1e-9 rad
    of an edge, whose side is a matter of rounding)."""
    v = _unit(np.array([p[0] for p in vertices]), np.array([p[1] for p in vertices]))
    normals = np.cross(v, np.roll(v, -1, axis=0))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    pts = _unit(sky.column("ra").to_numpy(), sky.column("dec").to_numpy())
    side = pts @ normals.T
    if (side.sum(axis=1) < 0).sum() > (side.sum(axis=1) > 0).sum():
        side = -side  # vertices given clockwise: flip so "inside" is positive
    ids = sky.column("object_id").to_numpy()
    inside = (side > 0).all(axis=1)
    edge = (np.abs(side) < 1e-9).any(axis=1)
    return set(ids[inside]), set(ids[edge])


POLYGONS = [
    [(358.5, -1.0), (1.5, -1.2), (1.0, 1.5), (359.0, 1.0)],  # straddles RA = 0/360
    [(149.0, 1.0), (151.0, 1.0), (151.0, 3.0), (149.0, 3.0)],
    [(0.0, 87.0), (120.0, 87.0), (240.0, 87.0)],  # around the north pole
]


@pytest.mark.parametrize("vertices", POLYGONS)
def test_polygon_agrees_with_brute_force(client, sky, vertices):
    coords = ", ".join(f"{ra}, {dec}" for ra, dec in vertices)
    query = (
        "SELECT object_id FROM demo.sky WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        f"POLYGON('ICRS', {coords}))"
    )
    got = set(rows(sync(client, query, MAXREC=5000))["object_id"].tolist())
    expected, edge = brute_convex_polygon(sky, vertices)
    assert len(expected) > 10
    assert got - edge == expected - edge


def test_box_agrees_with_brute_force(client, sky):
    ra0, dec0, width, height = 0.5, 0.5, 2.0, 1.5
    query = (
        "SELECT object_id FROM demo.sky WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        f"BOX('ICRS', {ra0}, {dec0}, {width}, {height}))"
    )
    got = set(rows(sync(client, query, MAXREC=5000))["object_id"].tolist())
    # BOX = the polygon with corners (ra0 +- width/2, dec0 +- height/2) (see the capabilities).
    corners = [
        (ra0 - width / 2, dec0 - height / 2),
        (ra0 + width / 2, dec0 - height / 2),
        (ra0 + width / 2, dec0 + height / 2),
        (ra0 - width / 2, dec0 + height / 2),
    ]
    expected, edge = brute_convex_polygon(sky, [(r % 360, d) for r, d in corners])
    assert len(expected) > 10
    assert got - edge == expected - edge


def test_upload_names_longer_than_the_cap_are_refused():
    from skysense.errors import QueryError
    from skysense.vo.tap import MAX_UPLOAD_NAME, parse_upload_param

    ok = "t" * MAX_UPLOAD_NAME
    assert parse_upload_param(f"{ok},param:a") == [(ok, "param:a")]
    # Two names equal in PostgreSQL's first 63 bytes must never reach the database.
    with pytest.raises(QueryError, match=f"at most {MAX_UPLOAD_NAME}"):
        parse_upload_param("t" * (MAX_UPLOAD_NAME + 1) + ",param:a")


def test_fits_result_wider_than_fits_allows_is_a_400(client):
    from skysense.vo.formats import FITS_MAX_COLUMNS

    cols = ", ".join(f"ra AS c{i}" for i in range(FITS_MAX_COLUMNS + 1))
    resp = sync(client, f"SELECT TOP 1 {cols} FROM demo.sky", RESPONSEFORMAT="fits")
    assert resp.status_code == 400
    assert f"at most {FITS_MAX_COLUMNS}" in resp.text
    cols = ", ".join(f"ra AS c{i}" for i in range(FITS_MAX_COLUMNS))
    resp = sync(client, f"SELECT TOP 1 {cols} FROM demo.sky", RESPONSEFORMAT="fits")
    assert resp.status_code == 200
