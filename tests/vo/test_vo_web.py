"""Web pages: content, links, escaping, pagination; and a real headless Chromium session."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import numpy as np
import pyarrow as pa
import pytest
from _vo_support import ServerThread
from astropy.io import fits
from astropy.wcs import WCS

from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.maps import publish_map
from skysense.vo.publish import publish_arrow
from skysense.vo.settings import Settings
from skysense.vo.web import examples

EVIL = "<script>alert('x')</script> & \"quotes\""


def sky(n=400, seed=5) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "help_id": [f"HELP_J{i:06d}" for i in range(n)],
            "ra": rng.uniform(149.5, 150.5, n),
            "dec": rng.uniform(1.5, 2.5, n),
            "f_spire_250": rng.lognormal(1, 1, n),
        }
    )


META = {
    "columns": {
        "help_id": {"ucd": "meta.id;meta.main", "description": "HELP identifier"},
        "f_spire_250": {
            "unit": "mJy",
            "ucd": "phot.flux.density;em.IR.250um",
            "description": "SPIRE 250 flux",
            "principal": True,
        },
    }
}


@contextlib.contextmanager
def serve(app):
    """uvicorn on a free 127.0.0.1 port in a daemon thread; yields the base URL."""
    with ServerThread(app) as server:
        yield server.url


def write_map(path):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [30.5, 30.5]
    w.wcs.cdelt = [-6 / 3600, 6 / 3600]
    header = w.to_header()
    header["BUNIT"] = "mJy/beam"
    header["BAND"] = "spire_250"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.ones((60, 60), np.float32), header, name="IMAGE")]
    ).writeto(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    data = sky()
    backend = open_backend(tmp / "vo.duckdb")
    publish_arrow(backend, data, "help.masterlist", description="HELP masterlist", meta=META)
    publish_arrow(
        backend, pa.table({"id": [1, 2], "note": [EVIL, "ok"]}), "demo.evil", description=EVIL
    )
    write_map(tmp / "m.fits")
    publish_map(backend, tmp / "m.fits", name="spire250", description="SPIRE 250")
    settings = Settings(
        db=str(tmp / "vo.duckdb"),
        workdir=str(tmp / "work"),
        title="Test VO",
        description="Pages under test",
    )
    try:
        with serve(create_app(settings, backend=backend)) as url:
            yield url, data
    finally:
        backend.close()


def links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page)]


def test_front_page_lists_every_service(site):
    url, _ = site
    page = httpx.get(url + "/").text
    assert "<title>Services · Test VO</title>" in page and "Pages under test" in page
    hrefs = links(page)
    for target in (
        "/table/help.masterlist",
        "/table/demo.evil",
        "/query",
        "/cone?TABLE=",
        "/maps",
        "/tap/capabilities",
        "/sia/capabilities",
    ):
        assert any(target in h for h in hrefs), target
    assert f"{url}/scs/help.masterlist?" in page
    assert "400" in page  # row count
    # Every local link on the front page answers 200.
    for h in {h for h in hrefs if h.startswith(url)}:
        assert httpx.get(h, timeout=30).status_code == 200, h


def test_escaping(site):
    url, _ = site
    for path in ("/", "/table/demo.evil"):
        page = httpx.get(url + path).text
        assert "<script>" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    page = httpx.get(url + "/query", params={"QUERY": "SELECT id, note FROM demo.evil"}).text
    assert "<script>" not in page and "&lt;script&gt;" in page
    page = httpx.get(url + "/query", params={"QUERY": "SELECT <b>"}).text
    assert "<b>" not in page.split("<main>")[1] or "&lt;b&gt;" in page


def test_table_page(site):
    url, _ = site
    r = httpx.get(url + "/table/help.masterlist")
    page = r.text
    assert r.status_code == 200
    assert "HELP masterlist" in page and "400" in page
    for text in (
        "f_spire_250",
        "mJy",
        "phot.flux.density;em.IR.250um",
        "SPIRE 250 flux",
        "pos.eq.ra;meta.main",
        "HELP identifier",
    ):
        assert text in page
    assert "_hpx" not in page  # private columns stay hidden
    assert httpx.get(url + "/table/help.nope").status_code == 404


def test_examples_cover_the_required_kinds_and_all_run(site):
    url, _ = site
    page = httpx.get(url + "/query").text
    queries = [html.unescape(q) for q in re.findall(r'name="QUERY" value="([^"]*)"', page)]
    titles = re.findall(r"<h3>([^<]+)</h3>", page)
    assert len(queries) >= 5
    for kind in ("Cone search", "Cross-match join", "Aggregates", "TOP and ORDER BY", "TAP_SCHEMA"):
        assert any(t.startswith(kind) for t in titles), kind
    for q in queries:
        r = httpx.get(url + "/query", params={"QUERY": q}, timeout=60)
        assert r.status_code == 200, (q, r.text[-2000:])
        assert 'class="error"' not in r.text, q
        assert 'id="result-table"' in r.text


def test_result_pages_and_downloads(site):
    url, data = site
    query = "SELECT help_id, ra, dec FROM help.masterlist ORDER BY help_id"
    page1 = httpx.get(url + "/query", params={"QUERY": query, "PAGESIZE": "25"}).text
    rows1 = re.findall(r"<td>(HELP_J\d+)</td>", page1)
    assert rows1 == [f"HELP_J{i:06d}" for i in range(25)]
    assert "rows 1–25" in page1
    nxt = next(h for h in links(page1) if "PAGE=2" in h)
    page2 = httpx.get(urljoin(url + "/query", nxt)).text
    assert re.findall(r"<td>(HELP_J\d+)</td>", page2) == [f"HELP_J{i:06d}" for i in range(25, 50)]
    downloads = [h for h in links(page1) if "/tap/sync?" in h]
    formats = {parse_qs(urlsplit(h).query)["FORMAT"][0] for h in downloads}
    assert formats == {"votable", "csv", "fits"}
    csv_url = next(h for h in downloads if "FORMAT=csv" in h)
    body = httpx.get(csv_url, timeout=60).text
    got = [r["help_id"] for r in csv.DictReader(io.StringIO(body))]
    assert got == sorted(data["help_id"].to_pylist())
    fits_url = next(h for h in downloads if "FORMAT=fits" in h)
    with fits.open(io.BytesIO(httpx.get(fits_url, timeout=60).content)) as hdul:
        assert len(hdul[1].data) == 400


def test_query_errors_are_shown(site):
    url, _ = site
    r = httpx.get(url + "/query", params={"QUERY": "SELECT nope FROM help.masterlist"})
    assert r.status_code == 400
    assert 'class="error"' in r.text and "nope" in r.text
    r = httpx.get(url + "/query", params={"QUERY": "SELECT 1", "PAGE": "x"})
    assert r.status_code == 200 and "PAGE must be an integer" in r.text
    r = httpx.get(url + "/query", params=[("QUERY", "SELECT 1"), ("QUERY", "SELECT 2")])
    assert "QUERY: given 2 times" in r.text
    r = httpx.get(url + "/cone", params=[("RA", "150"), ("RA", "151"), ("DEC", "2"), ("SR", "0.1")])
    assert r.status_code == 200 and 'id="result-table"' in r.text


def test_cone_page(site):
    url, data = site
    page = httpx.get(url + "/cone").text
    assert 'name="RA"' in page and "help.masterlist" in page
    ra0, dec0 = 150.0, 2.0
    r = httpx.get(
        url + "/cone",
        params={"TABLE": "help.masterlist", "RA": ra0, "DEC": dec0, "SR": "0.1", "VERB": "3"},
    )
    assert r.status_code == 200
    got = set(re.findall(r"<td>(HELP_J\d+)</td>", r.text))
    ra, dec = np.radians(np.asarray(data["ra"])), np.radians(np.asarray(data["dec"]))
    cos_sep = np.sin(dec) * np.sin(np.radians(dec0)) + np.cos(dec) * np.cos(
        np.radians(dec0)
    ) * np.cos(ra - np.radians(ra0))
    want = set(np.asarray(data["help_id"])[np.degrees(np.arccos(np.clip(cos_sep, -1, 1))) <= 0.1])
    assert got == want and len(want) > 0
    assert f"{url}/scs/help.masterlist?" in r.text
    bad = httpx.get(
        url + "/cone", params={"TABLE": "help.masterlist", "RA": "1", "DEC": "99", "SR": "1"}
    )
    assert bad.status_code == 400 and "outside [-90, 90]" in bad.text


def test_maps_page(site):
    url, _ = site
    page = httpx.get(url + "/maps").text
    assert "spire250" in page and "mJy/beam" in page
    cut = next(h for h in links(page) if "/soda/sync?" in h)
    r = httpx.get(cut)
    assert r.status_code == 200 and r.content[:6] == b"SIMPLE"


def test_examples_without_positional_tables():
    from skysense.vo.schema import ColumnInfo, TableInfo

    t = TableInfo(
        name="a.b",
        physical='"a"."b"',
        columns={"x": ColumnInfo(name="x", datatype="int")},
        hpx_column=None,
    )
    ex = examples([t])
    assert any("TAP_SCHEMA.tables" in e["query"] for e in ex)
    assert any("FROM a.b" in e["query"] for e in ex)
    assert len(examples([])) == 2


def test_browser_session(site, chromium, tmp_path):
    # A test dependency (the test extra): missing, it must fail, not skip.
    from playwright import sync_api as playwright

    url, _ = site
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            external = []
            page.on(
                "request",
                lambda req: external.append(req.url) if not req.url.startswith(url) else None,
            )
            page.goto(url + "/")
            assert page.title() == "Services · Test VO"
            page.screenshot(path=str(tmp_path / "front.png"), full_page=True)
            page.click("a.table-link >> text=help.masterlist")
            page.wait_for_load_state()
            assert page.url == f"{url}/table/help.masterlist"
            assert page.locator("table.columns").inner_text().count("f_spire_250") == 1
            page.screenshot(path=str(tmp_path / "table.png"), full_page=True)
            page.click("text=ADQL query")
            page.fill(
                "#query",
                "SELECT TOP 30 help_id, ra, dec, f_spire_250\n"
                "FROM help.masterlist ORDER BY help_id",
            )
            page.select_option("#pagesize", "25")
            page.click("#run")
            page.wait_for_selector("#result-table")
            rows = page.locator("#result-table tbody tr")
            assert rows.count() == 25
            assert "rows 1–25 of 30" in page.locator(".result .meta").inner_text()
            assert rows.nth(0).locator("td").nth(0).inner_text() == "HELP_J000000"
            headers = page.locator("#result-table thead th").all_inner_texts()
            assert headers[3].startswith("f_spire_250") and "[mJy]" in headers[3]
            page.screenshot(path=str(tmp_path / "query.png"), full_page=True)
            page.click("text=next page")
            page.wait_for_selector("#result-table")
            assert page.locator("#result-table tbody tr").count() == 5
            page.goto(url + "/cone")
            page.click("#search")
            page.wait_for_selector("#result-table")
            page.screenshot(path=str(tmp_path / "cone.png"), full_page=True)
            assert external == []  # no CDN or other outside resources
        finally:
            browser.close()
    assert (tmp_path / "query.png").stat().st_size > 10_000


def test_front_and_maps_pages_link_datalink_and_previews(site):
    url, _ = site
    front = links(httpx.get(url + "/").text)
    assert f"{url}/capabilities" in front
    caps = httpx.get(f"{url}/capabilities", timeout=30)
    assert caps.status_code == 200 and "ivo://ivoa.net/std/DataLink#links-1.1" in caps.text
    page = links(httpx.get(url + "/maps").text)
    datalink = next(h for h in page if "/datalink/links?" in h)
    r = httpx.get(datalink, timeout=30)
    assert r.status_code == 200 and "#cutout" in r.text and "NotFoundFault" not in r.text
    preview = next(h for h in page if h.endswith("/preview/spire250.png"))
    r = httpx.get(preview, timeout=60)
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"


def test_examples_feature_the_masterlist_and_xid_over_survey_tables():
    from skysense.vo.schema import ColumnInfo, TableInfo, featured_tables

    def table(name, ident):
        cols = {
            c: ColumnInfo(name=c, datatype="double" if c in ("ra", "dec") else "char")
            for c in (ident, "ra", "dec")
        }
        return TableInfo(name=name, physical=name, columns=cols, ra="ra", dec="dec")

    tables = [
        table("help.cfhtls", "cfhtls_id"),
        table("help.gaia", "source_id"),
        table("help.masterlist", "help_id"),
        table("help.xid", "help_id"),
        table("help.zzz", "zid"),
    ]
    order = [t.name for t in featured_tables(tables)]
    assert order == ["help.masterlist", "help.xid", "help.cfhtls", "help.gaia", "help.zzz"]
    ex = {e["title"]: e["query"] for e in examples(tables)}
    assert "FROM help.masterlist\n" in ex["Cone search"]
    assert "FROM help.masterlist AS a JOIN help.xid AS b" in ex["Cross-match join"]
    assert not any("cfhtls" in q or "gaia" in q for q in ex.values())
