"""VOSI capabilities (TAPRegExt), availability and tables; /tables agrees with TAP_SCHEMA."""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET

import pytest
from _vo_support import publish_sky, server_settings
from astropy.io.votable import parse
from starlette.testclient import TestClient

from skysense.vo.app import create_app

XSI = "{http://www.w3.org/2001/XMLSchema-instance}type"


@pytest.fixture(scope="module")
def client(tmp_path_factory, sky):
    tmp = tmp_path_factory.mktemp("vosi")
    db = str(tmp / "vosi.duckdb")
    publish_sky(db, sky)
    with TestClient(create_app(server_settings(db, tmp))) as c:
        yield c


def test_capabilities(client):
    resp = client.get("/tap/capabilities")
    assert resp.status_code == 200 and "xml" in resp.headers["content-type"]
    root = ET.fromstring(resp.content)
    assert root.tag == "{http://www.ivoa.net/xml/VOSICapabilities/v1.0}capabilities"
    caps = {c.get("standardID"): c for c in root.findall("capability")}
    tap = caps["ivo://ivoa.net/std/TAP"]
    assert tap.get(XSI) == "tr:TableAccess"
    assert tap.find("interface/accessURL").text == "http://testserver/tap"
    lang = tap.find("language")
    assert lang.find("name").text == "ADQL"
    assert "2.1" in [v.text for v in lang.findall("version")]
    feature_types = {f.get("type") for f in lang.findall("languageFeatures")}
    assert "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo" in feature_types
    forms = {f.find("form").text for f in lang.iter("feature")}
    assert {"CONTAINS", "CIRCLE", "POINT"} <= forms
    mimes = [o.find("mime").text for o in tap.findall("outputFormat")]
    assert "application/x-votable+xml" in mimes and "text/csv" in mimes
    assert "application/x-votable+xml;serialization=BINARY2" in mimes
    methods = {m.get("ivo-id").rsplit("#", 1)[1] for m in tap.findall("uploadMethod")}
    assert methods == {"upload-inline", "upload-http", "upload-https"}
    assert tap.find("outputLimit/hard").text == "5000"
    assert tap.find("uploadLimit/hard").text == "2000000"
    for vosi in ("capabilities", "availability", "tables"):
        assert f"ivo://ivoa.net/std/VOSI#{vosi}" in caps


def test_availability(client):
    root = ET.fromstring(client.get("/tap/availability").content)
    assert root.find("{http://www.ivoa.net/xml/VOSIAvailability/v1.0}available").text == "true"


@pytest.mark.parametrize("service", ["sia", "datalink"])
def test_availability_of_sia_and_datalink(client, service):
    # One VOSI availability document for every service; SIA and DataLink give no note.
    resp = client.get(f"/{service}/availability")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(resp.content)
    ns = "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}"
    assert root.tag == f"{ns}availability"
    assert root.find(f"{ns}available").text == "true"
    assert root.find(f"{ns}note") is None


def _tap_schema(client, query):
    resp = client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": query})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse(io.BytesIO(resp.content)).resources[0].tables[0].to_table()


def test_tables_agree_with_tap_schema(client):
    root = ET.fromstring(client.get("/tap/tables").content)
    listed = {}
    for schema in root.findall("schema"):
        for table in schema.findall("table"):
            listed[table.find("name").text] = [c.find("name").text for c in table.findall("column")]
    ts = _tap_schema(client, "SELECT table_name FROM TAP_SCHEMA.tables")
    assert set(listed) == {str(n) for n in ts["table_name"]}
    cols = _tap_schema(
        client,
        "SELECT table_name, column_name FROM TAP_SCHEMA.columns ORDER BY table_name, column_index",
    )
    for name, columns in listed.items():
        assert columns == [
            str(c) for t, c in zip(cols["table_name"], cols["column_name"]) if t == name
        ]
    sky = root.find(".//table[name='demo.sky']")
    ra = sky.find("column[name='ra']")
    assert ra.find("unit").text == "deg" and ra.find("ucd").text == "pos.eq.ra;meta.main"
    assert ra.find("dataType").text == "double"
    assert "indexed" in [f.text for f in ra.findall("flag")]


def test_tables_detail_min_and_single_table(client):
    root = ET.fromstring(client.get("/tap/tables", params={"detail": "min"}).content)
    assert root.findall(".//table") and not root.findall(".//column")
    one = ET.fromstring(client.get("/tap/tables/demo.sky").content)
    assert one.find("name").text == "demo.sky" and len(one.findall("column")) == 6
    assert client.get("/tap/tables/demo.nothing").status_code == 404


def test_examples_document_queries_all_run(client):
    resp = client.get("/tap/examples")
    assert resp.status_code == 200
    root = ET.fromstring(resp.content)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    queries = [p.text for p in root.iterfind(".//h:pre[@property='query']", ns)]
    assert len(queries) >= 3  # tables, cone, count (the test sky has one positional table)
    for query in queries:
        vot = _tap_schema(client, query)
        assert len(vot) > 0, query
    caps = ET.fromstring(client.get("/tap/capabilities").content)
    ids = [c.get("standardID") for c in caps.findall("capability")]
    assert "ivo://ivoa.net/std/DALI#examples" in ids
