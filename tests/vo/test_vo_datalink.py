"""DataLink {links}: maps (#this, #cutout, #preview) and per-source links (the row, a cone and
declared links such as a best-fit SED spectrum), against a live server on both backends."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import urllib.parse
from types import SimpleNamespace

import httpx
import numpy as np
import pyarrow as pa
import pytest
from _vo_support import ServerThread, fresh_postgres, server_settings
from astropy.io import fits
from astropy.io.votable import parse as parse_votable
from astropy.wcs import WCS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skysense.errors import InputError
from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.datalink import (
    DATALINK_MIME,
    MAX_IDS,
    declare_links,
    declared_links,
    parse_source_did,
    resolve_links,
    source_did,
)
from skysense.vo.maps import publish_map
from skysense.vo.publish import publish_arrow
from skysense.vo.sia import map_did

N_SOURCES = 40
#: Sources with a published "spectrum" (the SED table): every third one.
WITH_SED = [f"HELP_J{i:04d}" for i in range(0, N_SOURCES, 3)]


def write_map(path, ra0=150.0, dec0=2.0, nx=700, ny=600, pix_arcsec=2.0):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    w.wcs.cdelt = [-pix_arcsec / 3600, pix_arcsec / 3600]
    header = w.to_header()
    header["BUNIT"] = "mJy/beam"
    header["BAND"] = "spire_250"
    data = np.random.default_rng(3).normal(size=(ny, nx)).astype(np.float32)
    data[:10, :10] = np.nan
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(data, header, name="IMAGE")],
    ).writeto(path)


def sources() -> pa.Table:
    rng = np.random.default_rng(11)
    return pa.table(
        {
            "help_id": [f"HELP_J{i:04d}" for i in range(N_SOURCES)],
            "ra": rng.uniform(149.9, 150.1, N_SOURCES),
            "dec": rng.uniform(1.9, 2.1, N_SOURCES),
            "f_spire_250": rng.uniform(1, 50, N_SOURCES),
        }
    )


def seds() -> pa.Table:
    wl = np.geomspace(0.3, 500.0, 5)
    ids = [i for i in WITH_SED for _ in wl]
    return pa.table(
        {
            "help_id": ids,
            "wavelength_um": np.tile(wl, len(WITH_SED)),
            "flux_mjy": np.arange(len(ids), dtype=float),
        }
    )


SED_LINKS = [
    {
        "semantics": "#derivation",
        "description": "Best-fit SED spectrum",
        "table": "help.sed",
        "column": "help_id",
        "content_qualifier": "#spectrum",
    },
    {
        "semantics": "#auxiliary",
        "description": "About this source",
        "url": "{root}/table/help.src?source={id}&ra={ra}",
        "content_type": "text/html",
    },
]


def publish_site(db: str, tmp) -> None:
    backend = open_backend(db)
    try:
        write_map(tmp / "m.fits")
        publish_map(backend, tmp / "m.fits", name="spire250", description="SPIRE 250")
        meta = {"columns": {"help_id": {"ucd": "meta.id;meta.main"}}}
        publish_arrow(backend, seds(), "help.sed", description="SED spectra")
        publish_arrow(backend, sources(), "help.src", meta=meta, links=SED_LINKS)
    finally:
        backend.close()


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def site(request, tmp_path_factory):
    """(URL, settings, folder) of a live server with a map, sources and their SED spectra."""
    tmp = tmp_path_factory.mktemp("datalink")
    with contextlib.ExitStack() as stack:
        if request.param == "duckdb":
            db = str(tmp / "vo.duckdb")
        else:
            db = stack.enter_context(fresh_postgres(request.getfixturevalue("postgres_dsn")))
        publish_site(db, tmp)
        settings = server_settings(db, tmp)
        server = stack.enter_context(ServerThread(create_app(settings)))
        yield server.url, settings, tmp


def links(url: str, *ids: str, method: str = "GET"):
    params = [("ID", i) for i in ids]
    if method == "GET":
        r = httpx.get(f"{url}/datalink/links", params=params, timeout=60)
    else:
        r = httpx.post(f"{url}/datalink/links", data={"ID": list(ids)}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == DATALINK_MIME
    vot = parse_votable(io.BytesIO(r.content))
    return vot, vot.get_first_table().to_table()


def by_semantics(table) -> dict[str, list]:
    out: dict[str, list] = {}
    for row in table:
        out.setdefault(str(row["semantics"]), []).append(row)
    return out


def test_map_links_this_cutout_preview(site):
    url, settings, tmp = site
    did = map_did("spire250")
    vot, table = links(url, did)
    rows = by_semantics(table)
    assert sorted(rows) == ["#cutout", "#preview", "#this"]
    assert all(str(r["ID"]) == did for r in table)
    this = rows["#this"][0]
    body = httpx.get(str(this["access_url"]), timeout=30).content
    assert int(this["content_length"]) == len(body)
    with fits.open(io.BytesIO(body)) as got, fits.open(tmp / "m.fits") as want:
        np.testing.assert_array_equal(got["IMAGE"].data, want["IMAGE"].data)
    # #cutout: no URL of its own, a service descriptor whose ID input is the row's ID.
    cutout = rows["#cutout"][0]
    assert np.ma.is_masked(cutout["access_url"]) or not str(cutout["access_url"])
    services = [r for r in vot.resources if r.type == "meta"]
    assert [r.ID for r in services] == [str(cutout["service_def"])]
    params = {p.name: p for p in services[0].params}
    assert params["accessURL"].value == f"{url}/soda/sync"
    id_param = next(p for g in services[0].groups for p in g.entries if p.name == "ID")
    assert id_param.ref == "ID"


def test_preview_is_a_small_png_drawn_once(site):
    import matplotlib.image

    url, settings, _ = site
    preview = str(by_semantics(links(url, map_did("spire250"))[1])["#preview"][0]["access_url"])
    first = httpx.get(preview, timeout=60)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    image = matplotlib.image.imread(io.BytesIO(first.content), format="png")
    # 700 x 600 pixels subsampled by 2 to fit 512: 350 x 300.
    assert image.shape[:2] == (300, 350)
    cached = list((settings.resolved_workdir / "previews").glob("spire250-*.png"))
    assert len(cached) == 1
    second = httpx.get(preview, timeout=60)
    assert second.content == first.content
    assert httpx.get(f"{url}/preview/nope.png").status_code == 404
    assert httpx.get(f"{url}/preview/..%2F..%2Fvo.png").status_code == 404


def test_source_links_row_cone_and_declared_spectrum(site):
    url, _, _ = site
    with_sed, without = WITH_SED[1], "HELP_J0001"
    _, table = links(url, source_did("help.src", with_sed), source_did("help.src", without))
    got = {}
    for row in table:
        key = (str(row["semantics"]), str(row["content_type"]))
        got.setdefault(str(row["ID"]), {})[key] = row
    a = got[source_did("help.src", with_sed)]
    b = got[source_did("help.src", without)]
    vot, html = "application/x-votable+xml", "text/html"
    this, cone, sed, page = (
        ("#this", vot),
        ("#auxiliary", vot),
        ("#derivation", vot),
        (
            "#auxiliary",
            html,
        ),
    )
    assert sorted(a) == sorted([this, cone, sed, page])
    assert sorted(b) == sorted([this, cone, page])  # no spectrum published for b
    # #this is the row itself.
    row = parse_votable(io.BytesIO(httpx.get(str(a[this]["access_url"])).content))
    assert row.get_first_table().to_table()["help_id"].tolist() == [with_sed]
    # #derivation gives that source's spectrum, and only that.
    assert str(a[sed]["content_qualifier"]) == "#spectrum"
    spec = parse_votable(io.BytesIO(httpx.get(str(a[sed]["access_url"])).content))
    spec = spec.get_first_table().to_table()
    assert set(spec["help_id"].tolist()) == {with_sed} and len(spec) == 5
    # The cone-search link finds the source.
    found = parse_votable(io.BytesIO(httpx.get(str(a[cone]["access_url"])).content))
    assert with_sed in found.get_first_table().to_table()["help_id"].tolist()
    # URL templates are filled with URL-quoted values of the row.
    doc = urllib.parse.urlsplit(str(a[page]["access_url"]))
    query = dict(urllib.parse.parse_qsl(doc.query))
    assert query["source"] == with_sed
    ra = sources().column("ra").to_pylist()[int(with_sed[-4:])]
    assert float(query["ra"]) == ra


def test_cone_search_rows_reach_their_links(site):
    import pyvo

    url, _, _ = site
    result = pyvo.dal.SCSService(f"{url}/scs/help.src").search(pos=(150.0, 2.0), radius=0.2)
    ids = [str(r["help_id"]) for r in result]
    assert len(ids) == N_SOURCES
    # One record: the links of its source, by its bare identifier.
    rec = next(r for r in result if str(r["help_id"]) == WITH_SED[2])
    links = rec.getdatalink()
    assert {str(r.id) for r in links} == {WITH_SED[2]}
    assert "#derivation" in {str(r.semantics) for r in links}
    # Every record at once (pyvo sends the IDs in batches).
    got = {
        str(dl.original_row["help_id"]): {str(r.semantics) for r in dl}
        for dl in result.iter_datalinks()
    }
    assert set(got) == set(ids)
    assert {i for i, sem in got.items() if "#derivation" in sem} == set(WITH_SED)


@pytest.mark.parametrize(
    "bad",
    [
        "nope",
        "ivo://skysense/maps?nope",
        "ivo://skysense/help.src?HELP_J9999",
        "ivo://skysense/help.src?x' OR '1'='1",
        "ivo://skysense/help.nothere?1",
        "ivo://skysense/tap_schema.tables?help.src",
        "ivo://skysense/maps?../../etc/passwd",
        "ivo://skysense/help.src?" + "x" * 5000,
    ],
)
def test_unknown_ids_give_not_found_rows(site, bad):
    url, _, _ = site
    good = map_did("spire250")
    _, table = links(url, good, bad, method="POST")
    failed = np.array([not np.ma.is_masked(m) and bool(m) for m in table["error_message"]])
    errors = table[failed]
    assert [str(i) for i in errors["ID"]] == [bad]
    assert str(errors["error_message"][0]).startswith("NotFoundFault")
    assert str(errors["semantics"][0]) == "#this"
    assert {str(i) for i in table[~failed]["ID"]} == {good}


def test_usage_errors_and_overflow(site):
    url, _, _ = site
    r = httpx.get(f"{url}/datalink/links", timeout=30)
    assert r.status_code == 400 and "ID parameter is missing" in r.text
    r = httpx.get(f"{url}/datalink/links", params={"ID": "x", "RESPONSEFORMAT": "csv"})
    assert r.status_code == 400 and "RESPONSEFORMAT" in r.text
    many = [map_did("spire250")] * (MAX_IDS + 5)
    vot, table = links(url, *many, method="POST")
    assert len(table) == 3 * MAX_IDS
    status = [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status == ["OK", "OVERFLOW"]


def test_time_budget_cuts_the_id_list(direct):
    ids = [source_did("help.src", f"HELP_J{i:04d}") for i in range(10)]
    links, n_done = resolve_links(direct, ids, "http://h", time_budget_s=0.0)
    assert n_done == 1  # the first ID is always answered, so every request makes progress
    assert {link.id for link in links} == {ids[0]}
    links, n_done = resolve_links(direct, ids, "http://h", time_budget_s=60.0)
    assert n_done == 10 and {link.id for link in links} == set(ids)


def test_capabilities(site):
    import pyvo

    url, _, _ = site
    service = pyvo.dal.adhoc.DatalinkService(f"{url}/datalink")
    ids = {c.standardid for c in service.capabilities}
    assert "ivo://ivoa.net/std/DataLink#links-1.1" in ids
    root = {c.standardid for c in pyvo.dal.SIA2Service(url).capabilities}
    assert "ivo://ivoa.net/std/DataLink#links-1.1" in root


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS is not installed")
def test_datalinklint_finds_no_error(site):
    url, _, _ = site
    ids = [map_did("spire250"), source_did("help.src", WITH_SED[0]), "nope"]
    query = urllib.parse.urlencode([("ID", i) for i in ids])
    out = subprocess.run(
        ["stilts", "datalinklint", f"votable={url}/datalink/links?{query}"],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    totals = next(line for line in out.splitlines() if line.startswith("Totals:"))
    assert "Errors: 0;" in totals and "Warnings: 0;" in totals, out


# --------------------------------------------------------------------------------------------
# without HTTP


def test_declare_links_validates_and_merges(tmp_path):
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        publish_arrow(backend, seds(), "help.sed")
        publish_arrow(backend, sources(), "help.src")
        bad = [
            ({"semantics": "derivation", "description": "d", "table": "help.sed"}, "semantics"),
            ({"semantics": "#derivation", "description": "d"}, "exactly one"),
            ({"semantics": "#this", "description": "d", "url": "file:///etc/{id}"}, "start with"),
            ({"semantics": "#this", "description": "d", "url": "{root}/{nope}"}, "unknown col"),
            ({"semantics": "#this", "description": "d", "url": "{root}/{id.__class__}"}, "unkno"),
            ({"semantics": "#x", "description": "d", "table": "help.no", "column": "a"}, "publ"),
            ({"semantics": "#x", "description": "d", "table": "help.sed", "column": "a"}, "col"),
            ({"semantics": "#x", "description": "d", "colour": "red"}, "colour"),
        ]
        for entry, match in bad:
            with pytest.raises(InputError, match=match):
                declare_links(backend, "help.src", [entry])
        with pytest.raises(InputError, match="no published table"):
            declare_links(backend, "help.nothere", [])
        declare_links(backend, "help.src", SED_LINKS[:1])
        declare_links(backend, "help.src", SED_LINKS[1:], replace=False)
        column, templates = declared_links(backend, "help.src")
        assert column == "help_id"
        assert [t.semantics for t in templates] == ["#derivation", "#auxiliary"]
        declare_links(backend, "help.src", SED_LINKS[1:])
        assert [t.semantics for t in declared_links(backend, "help.src")[1]] == ["#auxiliary"]
    finally:
        backend.close()


_TABLES = st.from_regex(r"[a-z][a-z0-9_]{0,8}\.[a-z][a-z0-9_]{0,8}", fullmatch=True)


@given(table=_TABLES, key=st.text(min_size=1, max_size=40))
def test_source_did_roundtrip(table, key):
    assert parse_source_did(source_did(table, key)) == (table, key)


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def direct(request, tmp_path_factory):
    """``app.state``-like (backend, settings) of the published site, for each backend."""
    tmp = tmp_path_factory.mktemp("datalink_direct")
    with contextlib.ExitStack() as stack:
        if request.param == "duckdb":
            db = str(tmp / "vo.duckdb")
        else:
            db = stack.enter_context(fresh_postgres(request.getfixturevalue("postgres_dsn")))
        publish_site(db, tmp)
        backend = open_backend(db)
        stack.callback(backend.close)
        yield SimpleNamespace(backend=backend, settings=server_settings(db, tmp))


@pytest.mark.parametrize(
    "ident",
    ["a\x00b", "HELP_J0001\udcff", "\u200bHELP_J0001", "é'\\", "'" * 400, "1e5", "-1"],
)
def test_strange_ids_are_not_found(direct, ident):
    for asked in (ident, source_did("help.src", ident)):
        links, n_done = resolve_links(direct, [asked], "http://h", table="help.src")
        assert n_done == 1 and len(links) == 1
        assert links[0].error_message.startswith("NotFoundFault"), links[0]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ident=st.one_of(
        st.text(max_size=60),
        st.builds(lambda k: "ivo://skysense/help.src?" + k, st.text(max_size=40)),
        st.builds(lambda k: "ivo://skysense/maps?" + k, st.text(max_size=40)),
    )
)
def test_any_id_gives_links_or_an_error_row(direct, ident):
    got, n_done = resolve_links(direct, [ident], "http://h")
    assert n_done == 1
    assert got and all(link.id == ident.strip() for link in got)
    for link in got:
        assert link.semantics
        assert bool(link.error_message) != bool(link.access_url or link.service_def)
