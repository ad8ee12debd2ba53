"""The demo service end to end: ``skysense vo demo`` builds the database once by running the
pipeline on a small simulated field; pyvo queries the masterlist and the XID+ catalogue with
photo-z and cuts out a map; the front page lists them; STILTS taplint finds 0 errors."""

from __future__ import annotations

import html
import io
import re
import urllib.parse

import httpx
import numpy as np
import pytest
import pyvo
from _examples_check import check_examples
from _vo_support import ServerThread, run_taplint, taplint_totals
from astropy.io import fits

from skysense.cli.__main__ import main
from skysense.pipeline.demo import demo_settings
from skysense.vo.app import create_app


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["vo", "demo", "--workdir", str(work), "--no-serve", "--area-deg2", "0.02"]) == 0
    return work


@pytest.fixture(scope="module")
def server(demo):
    with ServerThread(create_app(demo_settings(demo))) as s:
        yield s


def test_examples_on_the_demo_database(demo):
    """Every published example runs on the demo database and returns the brute-force rows
    (as test_vo_join_examples.py checks them on a million rows)."""
    assert {"tables", "cone", "count", "crossmatch"} <= check_examples(demo_settings(demo))


def test_demo_builds_once(demo, capsys):
    assert main(["vo", "demo", "--workdir", str(demo), "--no-serve"]) == 0
    assert "using the existing demo database" in capsys.readouterr().out
    assert main(["vo", "tables", "--db", str(demo / "demo.duckdb")]) == 0
    out = capsys.readouterr().out
    for name in (
        "help.masterlist",
        "help.xid",
        "help.truth",
        "help.gaia",
        "help.cfhtls",
        "help.catalogue_rows",
    ):
        assert name in out
    assert (
        main(
            [
                "vo",
                "query",
                "SELECT COUNT(*) AS n FROM help.truth WHERE kind = 'star'",
                "--db",
                str(demo / "demo.duckdb"),
            ]
        )
        == 0
    )
    assert int(capsys.readouterr().out.splitlines()[1]) > 0
    # Built through the pipeline: every step has its record, and the run summary exists.
    assert (demo / "field.yaml").is_file()
    from skysense.pipeline.api import status
    from skysense.pipeline.runner import read_record

    steps = status(demo / "field.yaml")
    assert {"merge", "radio", "publish"} <= {s.name for s in steps}
    assert all(s.status == "cached" for s in steps)
    assert all(read_record(demo / "pipeline", s.name) is not None for s in steps)
    assert len(list((demo / "pipeline" / "records").glob("*.json"))) == len(steps)
    assert (demo / "pipeline" / "summary" / "summary.md").is_file()


def test_pyvo_queries_the_masterlist_and_xid_with_photoz(server):
    tap = pyvo.dal.TAPService(server.url + "/tap")
    ml = tap.search("SELECT COUNT(*) AS n, AVG(zphot) AS mz FROM help.masterlist").to_table()
    assert int(ml["n"][0]) > 1000 and 0.1 < float(ml["mz"][0]) < 3
    q = (
        "SELECT x.help_id, x.f_spire_250, x.ferr_spire_250_u, x.zphot, m.zphot AS zphot_ml "
        "FROM help.xid AS x JOIN help.masterlist AS m ON x.help_id = m.help_id "
        "ORDER BY x.f_spire_250 DESC"
    )
    rows = tap.search(q, maxrec=100000).to_table()
    assert len(rows) > 100
    np.testing.assert_allclose(rows["zphot"], rows["zphot_ml"])
    assert np.all(rows["ferr_spire_250_u"] >= rows["f_spire_250"])
    cols = {c.name: c for c in tap.tables["help.xid"].columns}
    assert str(cols["f_spire_250"].unit) == "mJy" and cols["zphot"].ucd == "src.redshift.phot"
    # Cone search on the masterlist around the brightest XID+ source finds it.
    top = tap.search(
        f"SELECT ra, dec FROM help.xid WHERE help_id = '{rows['help_id'][0]}'"
    ).to_table()
    scs = pyvo.dal.SCSService(server.url + "/scs/help.masterlist")
    found = scs.search(pos=(float(top["ra"][0]), float(top["dec"][0])), radius=1 / 3600)
    assert rows["help_id"][0] in [str(r["help_id"]) for r in found]


def test_pyvo_cuts_out_a_map(server):
    sia = pyvo.dal.SIA2Service(server.url + "/sia")
    recs = sia.search(pos=(150.1, 2.2, 0.01))
    names = sorted(r.obs_id for r in recs)
    assert names == ["mips_24", "pacs_green", "pacs_red", "spire_250", "spire_350", "spire_500"]
    rec = next(r for r in recs if r.obs_id == "spire_250")
    got = fits.open(io.BytesIO(rec.processed(circle=(150.1, 2.2, 0.02)).read()))
    assert [h.name for h in got] == ["PRIMARY", "IMAGE", "ERROR"]
    ny, nx = got["IMAGE"].data.shape
    # 0.02 deg radius at 6 arcsec pixels: about 24 pixels across.
    assert 20 <= nx <= 27 and 20 <= ny <= 27 and np.isfinite(got["IMAGE"].data).all()


def test_front_page_lists_the_services(server):
    page = httpx.get(server.url + "/", timeout=30).text
    for name in ("help.masterlist", "help.xid", "spire_250", "mips_24"):
        assert name in page


@pytest.mark.stilts
def test_taplint_on_the_demo_reports_no_errors(server, stilts):
    # The module's one server: two apps on one DuckDB file in one process clash.
    report = run_taplint(stilts, server.url)
    errors, warnings, failures = taplint_totals(report)
    print(f"taplint demo: errors={errors} warnings={warnings} failures={failures}")
    assert errors == 0, report


def test_examples_and_cone_form_feature_the_help_products(server):
    page = httpx.get(server.url + "/query", timeout=60).text
    queries = [html.unescape(q) for q in re.findall(r'name="QUERY" value="([^"]*)"', page)]
    cone = next(q for q in queries if "CIRCLE" in q and "JOIN" not in q)
    assert "FROM help.masterlist" in cone
    join = next(q for q in queries if "JOIN" in q)
    assert "FROM help.masterlist AS a JOIN help.xid AS b" in join
    assert not any("help.cfhtls" in q for q in queries)
    for q in (cone, join):
        r = httpx.get(server.url + "/query", params={"QUERY": q}, timeout=60)
        assert r.status_code == 200 and 'class="error"' not in r.text
        assert re.search(r"<td>HELP_J", r.text), q  # the examples find rows
    form = httpx.get(server.url + "/cone", timeout=60).text
    assert '<option value="help.masterlist" selected>' in form
    examples = httpx.get(server.url + "/tap/examples", timeout=60).text
    assert "FROM help.masterlist" in examples and "help.cfhtls" not in examples


def test_datalink_on_the_demo(server):
    from skysense.vo.datalink import source_did

    # SIA2 from the root URL, DataLink from the record, the cutout through DataLink.
    sia = pyvo.dal.SIA2Service(server.url)
    rec = next(r for r in sia.search(pos=(150.1, 2.2, 0.01)) if r.obs_id == "spire_250")
    links = rec.getdatalink()
    cutout = next(links.bysemantics("#cutout", include_narrower=False))
    got = fits.open(io.BytesIO(cutout.processed(circle=(150.1, 2.2, 0.02)).read()))
    assert 20 <= got["IMAGE"].data.shape[0] <= 27
    preview = next(links.bysemantics("#preview", include_narrower=False)).access_url
    assert httpx.get(preview, timeout=60).content[:4] == b"\x89PNG"
    # Per-source links: a masterlist source links to its XID+ row and back.
    tap = pyvo.dal.TAPService(server.url + "/tap")
    hid = str(tap.search("SELECT TOP 1 help_id FROM help.xid ORDER BY help_id")["help_id"][0])
    url = f"{server.url}/datalink/links?" + urllib.parse.urlencode(
        {"ID": source_did("help.masterlist", hid)}
    )
    ml_links = pyvo.dal.adhoc.DatalinkResults.from_result_url(url)
    xid_link = next(r for r in ml_links if "XID+" in str(r.description))
    assert xid_link.semantics == "#auxiliary"
    row = tap.search(
        f"SELECT help_id FROM help.xid WHERE help_id = '{hid}'"
    ).to_table()  # the reference answer
    got_row = pyvo.dal.DALResults.from_result_url(xid_link.access_url).to_table()
    assert got_row["help_id"].tolist() == row["help_id"].tolist() == [hid]
    url = f"{server.url}/datalink/links?" + urllib.parse.urlencode(
        {"ID": source_did("help.xid", hid)}
    )
    back = next(
        pyvo.dal.adhoc.DatalinkResults.from_result_url(url).bysemantics(
            "#progenitor", include_narrower=False
        )
    )
    ml_row = pyvo.dal.DALResults.from_result_url(back.access_url).to_table()
    assert ml_row["help_id"].tolist() == [hid]
