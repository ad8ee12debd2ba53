"""Uploaded VOTables cannot read server files, fetch internal URLs or exhaust the server:
external streams, DTDs and entities, bombs, deep documents, bad FIELD names and truncated
binary streams are refused with a 400 naming the problem, through /tap/sync and /tap/async, on
DuckDB and PostgreSQL; URL uploads reach only public addresses; valid tables written by astropy
pass and round-trip unchanged."""

from __future__ import annotations

import base64
import bz2
import contextlib
import gzip
import http.server
import io
import re
import socket
import struct
import threading
import time
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from _vo_support import fresh_postgres, publish_sky, server_settings
from astropy.io.votable import parse
from astropy.table import MaskedColumn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from skysense.errors import InputError
from skysense.vo.app import create_app

PASSWD = "root:"  # the first bytes of /etc/passwd
UWS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
    "<RESOURCE><TABLE{attrs}>\n"
)
TAIL = "</TABLE></RESOURCE></VOTABLE>\n"
CHAR8 = '<FIELD name="line" datatype="char" arraysize="8"/>'


def document(fields: str, data: str, *, attrs: str = "", prolog: str = "") -> bytes:
    head = HEAD.format(attrs=attrs)
    if prolog:
        head = head.replace("?>\n", "?>\n" + prolog + "\n", 1)
    return (head + fields + "\n<DATA>" + data + "</DATA>\n" + TAIL).encode()


def binary2_document(fields: str, payload: bytes, *, mode: str = "BINARY2", attrs="") -> bytes:
    stream = base64.b64encode(payload).decode()
    return document(
        fields, f'<{mode}><STREAM encoding="base64">{stream}</STREAM></{mode}>', attrs=attrs
    )


# ---------------------------------------------------------------------------------------------
# a local HTTP server that counts what it is asked


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list = []
    hosts: list = []
    body = document(CHAR8, "<TABLEDATA><TR><TD>root:x:0</TD></TR></TABLEDATA>")

    def do_GET(self):  # noqa: N802 - the stdlib's name
        type(self).hits.append(self.path)
        type(self).hosts.append(self.headers.get("Host"))
        if self.path.startswith("/redirect-file"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        if self.path.startswith("/redirect-ftp"):
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/x.vot")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-votable+xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def _serving(server_cls, host):
    server = server_cls((host, 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def local_http():
    """(IPv4 port, IPv6 port, hits) of a local HTTP server on 127.0.0.1 and [::1]."""
    _Counter.hits = []
    with _serving(http.server.ThreadingHTTPServer, "127.0.0.1") as port4:
        with _serving(_V6Server, "::1") as port6:
            yield port4, port6, _Counter.hits


# ---------------------------------------------------------------------------------------------
# a TAP server on each backend that refuses private upload URLs (the default)


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def client(request, tmp_path_factory, sky):
    tmp = tmp_path_factory.mktemp("guard")
    stack = contextlib.ExitStack()
    with stack:
        if request.param == "duckdb":
            db = str(tmp / "guard.duckdb")
        else:
            db = stack.enter_context(fresh_postgres(request.getfixturevalue("postgres_dsn")))
        publish_sky(db, sky)
        settings_ = server_settings(db, tmp, upload_allow_private_urls=False)
        yield stack.enter_context(TestClient(create_app(settings_)))


def _error_text(resp) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot = parse(io.BytesIO(resp.content))
    infos = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert infos and infos[-1].value == "ERROR", resp.text[:500]
    return infos[-1].content


def sync_upload(client, body: bytes, query="SELECT * FROM TAP_UPLOAD.t"):
    return client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": query, "UPLOAD": "t,param:p"},
        files={"p": ("t.vot", body, "application/x-votable+xml")},
    )


def async_upload(client, body: bytes, query="SELECT * FROM TAP_UPLOAD.t"):
    """Run an async job with the upload; (phase, error message, every body seen)."""
    resp = client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": query, "UPLOAD": "t,param:p", "PHASE": "RUN"},
        files={"p": ("t.vot", body, "application/x-votable+xml")},
        follow_redirects=False,
    )
    seen = [resp.text]
    if resp.status_code == 400:
        return "REFUSED", _error_text(resp), seen
    assert resp.status_code == 303, resp.text
    url = resp.headers["location"]
    deadline = time.monotonic() + 60
    while True:
        job = client.get(url + "?WAIT=5")
        seen.append(job.text)
        phase = ET.fromstring(job.content).find("uws:phase", UWS).text
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        assert time.monotonic() < deadline, "job did not finish"
    error = client.get(url + "/error")
    seen.append(error.text)
    if phase == "COMPLETED":
        seen.append(client.get(url + "/results/result").text)
        return phase, "", seen
    return phase, _error_text(error), seen


def assert_refused(client, body: bytes, pattern: str) -> None:
    """400 from /tap/sync and ERROR from /tap/async, both naming ``pattern``, no passwd."""
    resp = sync_upload(client, body)
    assert resp.status_code == 400, resp.text[:500]
    assert re.search(pattern, _error_text(resp)), _error_text(resp)
    assert PASSWD not in resp.text
    phase, message, seen = async_upload(client, body)
    assert phase in ("ERROR", "REFUSED")
    assert re.search(pattern, message), message
    assert not any(PASSWD in text for text in seen)


# ---------------------------------------------------------------------------------------------
# external streams


def _stream_documents(href: str) -> dict[str, bytes]:
    return {
        mode: document(CHAR8, f'<{mode}><STREAM href="{href}"/></{mode}>')
        for mode in ("BINARY", "BINARY2", "FITS")
    }


@pytest.mark.parametrize("mode", ["BINARY", "BINARY2", "FITS"])
def test_stream_href_to_a_server_file_is_refused(client, mode):
    body = _stream_documents("file:///etc/passwd")[mode]
    assert_refused(client, body, r"<(STREAM href|FITS)")


@pytest.mark.parametrize("mode", ["BINARY", "BINARY2", "FITS"])
def test_stream_href_to_a_local_server_is_never_fetched(client, local_http, mode):
    port4, port6, hits = local_http
    before = len(hits)
    for href in (
        f"http://127.0.0.1:{port4}/x.vot",
        f"http://[::1]:{port6}/x.vot",
        f"ftp://127.0.0.1:{port4}/x.vot",
        "../../../../etc/passwd",
    ):
        assert_refused(client, _stream_documents(href)[mode], r"<(STREAM href|FITS)")
    assert len(hits) == before


def test_namespaced_href_and_xinclude_are_refused(client):
    body = document(
        CHAR8,
        '<BINARY><STREAM xmlns:x="urn:x" x:href="file:///etc/passwd"/></BINARY>',
    )
    assert_refused(client, body, r"STREAM x:href")
    body = document(
        CHAR8,
        '<TABLEDATA><TR><TD><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        'href="file:///etc/passwd" parse="text"/></TD></TR></TABLEDATA>',
    )
    assert_refused(client, body, r"XInclude")


# ---------------------------------------------------------------------------------------------
# DTDs and entities

LAUGHS = (
    '<!DOCTYPE VOTABLE [\n <!ENTITY a "ha">\n'
    + "".join(f' <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(9))
    + "]>"
)


@pytest.mark.parametrize(
    "prolog,cell",
    [
        (LAUGHS, "&j;"),
        ('<!DOCTYPE VOTABLE [<!ENTITY pw SYSTEM "file:///etc/passwd">]>', "&pw;"),
        ('<!DOCTYPE VOTABLE SYSTEM "file:///etc/passwd">', "x"),
        ('<!DOCTYPE VOTABLE [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "x"),
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "parameter-entity"],
)
def test_dtds_and_entities_are_refused(client, prolog, cell):
    fields = '<FIELD name="line" datatype="char" arraysize="*"/>'
    body = document(fields, f"<TABLEDATA><TR><TD>{cell}</TD></TR></TABLEDATA>", prolog=prolog)
    assert_refused(client, body, r"DOCTYPE")


# ---------------------------------------------------------------------------------------------
# size: bombs, depth, declared sizes


def test_gzip_bomb_is_refused(client):
    fields = '<FIELD name="line" datatype="char" arraysize="*"/>'
    filler = "<TR><TD>x</TD></TR>" * 600_000  # 11 MB, beyond the 2 MB upload limit
    body = gzip.compress(document(fields, f"<TABLEDATA>{filler}</TABLEDATA>"))
    assert len(body) < 200_000
    assert_refused(client, body, r"decompressed document exceeds the limit of 2000000 bytes")


def test_compressed_small_uploads_still_work(client):
    fields = '<FIELD name="n" datatype="int"/>'
    plain = document(fields, "<TABLEDATA><TR><TD>7</TD></TR><TR><TD>8</TD></TR></TABLEDATA>")
    for packed in (gzip.compress(plain), bz2.compress(plain)):
        resp = sync_upload(client, packed, "SELECT SUM(n) AS s FROM TAP_UPLOAD.t")
        assert resp.status_code == 200 and b"<TD>15</TD>" in resp.content
    resp = sync_upload(client, gzip.compress(gzip.compress(plain)))
    assert resp.status_code == 400 and "compressed data inside" in _error_text(resp)


def test_deep_nesting_is_refused(client):
    deep = "<GROUP>" * 5000 + "</GROUP>" * 5000
    body = document('<FIELD name="n" datatype="int"/>' + deep, "<TABLEDATA/>")
    assert_refused(client, body, r"<GROUP> is nested deeper than 64 elements \(line \d+\)")


def test_too_many_fields_are_refused(client):
    fields = "".join(f'<FIELD name="c{i}" datatype="int"/>' for i in range(3000))
    assert_refused(client, document(fields, "<TABLEDATA/>"), r"more than 2048 FIELD")


def test_long_and_many_units_are_refused(client):
    # astropy's unit parser takes ~20 us a character: 2 MB of units would take a minute.
    fields = f'<FIELD name="a" datatype="int" unit="{"m." * 3000}s"/>'
    assert_refused(client, document(fields, "<TABLEDATA/>"), r"unit=\.\.\.> is 6001 characters")
    fields = "".join(
        f'<FIELD name="a{i}" datatype="int" unit="{"m." * 1000}s"/>' for i in range(40)
    )
    assert_refused(client, document(fields, "<TABLEDATA/>"), r"more than 65536 characters of units")


@pytest.mark.parametrize(
    "fields,attrs,pattern",
    [
        ('<FIELD name="s" datatype="char" arraysize="2000000000"/>', "", r"memory"),
        ('<FIELD name="v" datatype="double" arraysize="50000x50000"/>', "", r"memory"),
        ('<FIELD name="n" datatype="int"/>', ' nrows="2000000000"', r"memory"),
        ('<FIELD name="s" datatype="char" arraysize="0"/>', "", r"dimension of 0"),
        (
            f'<FIELD name="s" datatype="char" arraysize="{"9" * 2000}x{"9" * 2000}"/>',
            f' nrows="{"9" * 4000}"',
            r"more than 10\^18 rows of more than 10\^18 bytes",
        ),
    ],
)
def test_declared_sizes_that_would_exhaust_memory_are_refused(client, fields, attrs, pattern):
    body = document(fields, "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>", attrs=attrs)
    assert_refused(client, body, pattern)


def test_zero_width_binary_rows_do_not_hang(client):
    # astropy reads zero-byte rows from an empty stream for ever.
    body = binary2_document('<FIELD name="s" datatype="char" arraysize="0"/>', b"", mode="BINARY")
    started = time.monotonic()
    assert_refused(client, body, r"dimension of 0")
    assert time.monotonic() - started < 60


# ---------------------------------------------------------------------------------------------
# FIELD names and truncated streams


@pytest.mark.parametrize(
    "fields,pattern",
    [
        ('<FIELD name="" datatype="int"/>', r"<FIELD> has an empty name \(line 4\)"),
        ('<FIELD name="  " datatype="int"/>', r"<FIELD> has an empty name"),
        ('<FIELD ID="x" datatype="int"/>', r"<FIELD> has no name"),
        (
            '<FIELD name="Mag" datatype="int"/><FIELD name="mag" datatype="int"/>',
            r"name='mag'.*already used on line 4",
        ),
        (
            '<FIELD name="a b" datatype="int"/><FIELD name="a_b" datatype="int"/>',
            r"'a b' and 'a_b' both become the ADQL column 'a_b'",
        ),
    ],
)
def test_bad_field_names_are_a_clean_400(client, fields, pattern):
    cells = "<TD>1</TD>" * fields.count("<FIELD")
    assert_refused(client, document(fields, f"<TABLEDATA><TR>{cells}</TR></TABLEDATA>"), pattern)


def test_too_many_upload_tables_are_refused(client):
    body = document(
        '<FIELD name="n" datatype="int"/>', "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>"
    )
    names = ";".join(f"t{i},param:p" for i in range(5000))
    started = time.monotonic()
    resp = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t0", "UPLOAD": names},
        files={"p": ("t.vot", body, "application/x-votable+xml")},
    )
    assert resp.status_code == 400
    assert "UPLOAD names 5000 tables; at most 16" in _error_text(resp)
    assert time.monotonic() - started < 20  # the "answer within the time limit"
    names = ";".join(f"t{i},param:p" for i in range(16))
    resp = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t15", "UPLOAD": names},
        files={"p": ("t.vot", body, "application/x-votable+xml")},
    )
    assert resp.status_code == 200 and b"<TD>1</TD>" in resp.content


def _rows_payload(n: int) -> bytes:
    """BINARY2 rows of (int, char[*]) as astropy writes them: null flags, then the cells."""
    out = b""
    for i in range(n):
        text = f"row{i}".encode()
        out += b"\x00" + struct.pack(">i", i) + struct.pack(">i", len(text)) + text
    return out


FIELDS2 = '<FIELD name="n" datatype="int"/><FIELD name="s" datatype="char" arraysize="*"/>'


@pytest.mark.parametrize("cut", [1, 3, 5, 9, 12, 20, 28])
def test_truncated_binary2_is_refused(cut):
    from skysense.vo.tap import make_upload

    payload = _rows_payload(3)
    assert len(payload) == 3 * 13  # the cuts below end inside a row, never between two
    whole = make_upload("t", binary2_document(FIELDS2, payload))
    assert whole.data.column("n").to_pylist() == [0, 1, 2]
    truncated = binary2_document(FIELDS2, payload[: len(payload) - cut])
    with pytest.raises(InputError, match=r"BINARY2 stream .* ends inside row \d+ .*truncated"):
        make_upload("t", truncated)


@pytest.mark.parametrize("cut", [1, 4, 7])
def test_truncated_fixed_width_binary_is_refused(cut):
    from skysense.vo.tap import make_upload

    fields = '<FIELD name="n" datatype="int"/><FIELD name="x" datatype="double"/>'
    payload = b"".join(struct.pack(">id", i, i / 2) for i in range(4))
    assert make_upload("t", binary2_document(fields, payload, mode="BINARY")).info.n_rows == 4
    with pytest.raises(InputError, match=r"BINARY stream .* ends inside row 3 .*truncated"):
        make_upload("t", binary2_document(fields, payload[:-cut], mode="BINARY"))


def test_truncated_binary2_through_http(client):
    body = binary2_document(FIELDS2, _rows_payload(1)[:6])
    assert_refused(client, body, r"BINARY2 stream of the TABLE on line 3 ends inside row 0")
    body = binary2_document(FIELDS2, _rows_payload(4), attrs=' nrows="5"')
    assert_refused(client, body, r"declares nrows=5 but its BINARY2 stream holds 4 rows")


# ---------------------------------------------------------------------------------------------
# uploads by URL


def test_url_uploads_to_loopback_names_are_refused(client, local_http):
    port4, port6, hits = local_http
    before = len(hits)
    for url in (
        f"http://localhost:{port4}/x.vot",
        f"http://[::1]:{port6}/x.vot",
        f"http://[::ffff:127.0.0.1]:{port4}/x.vot",
        f"http://2130706433:{port4}/x.vot",  # 127.0.0.1 as one number
        f"http://0.0.0.0:{port4}/x.vot",
    ):
        resp = client.post(
            "/tap/sync",
            data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{url}"},
        )
        assert resp.status_code == 400, url
        assert "not a public address" in _error_text(resp), url
        assert PASSWD not in resp.text
    assert len(hits) == before


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.216.34", "127.0.0.1"],
        ["2606:2800:220:1::1", "::ffff:10.0.0.1"],
        ["64:ff9b::7f00:1"],
        ["2002:a9fe:a9fe::1"],
        ["224.0.0.251"],
        ["fec0::1"],
        ["100.64.0.1"],
    ],
)
def test_names_with_any_internal_address_are_refused(monkeypatch, answers):
    from skysense.vo import tap

    def fake(host, port, *args, **kwargs):
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [(family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "", (a, 0)) for a in answers]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(InputError, match="not a public address"):
        tap.fetch_url("http://rebind.example/x.vot", limit_bytes=1000)


def test_the_connection_goes_to_the_checked_address(monkeypatch, local_http):
    # The name is resolved once, checked, and the connection made to that address with the
    # name in the Host header: a second resolution (DNS rebinding) never happens.
    from skysense.vo import tap

    port4, _, hits = local_http
    checked = []

    def check(host):
        checked.append(host)
        return ["127.0.0.1"]

    real_getaddrinfo = socket.getaddrinfo

    def no_second_lookup(host, *args, **kwargs):
        # Connecting to an address literal goes through getaddrinfo too, without DNS.
        assert host == "127.0.0.1", f"{host!r} was resolved again"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(tap, "_check_public_host", check)
    monkeypatch.setattr(socket, "getaddrinfo", no_second_lookup)
    data = tap.fetch_url(f"http://rebind.example:{port4}/pinned.vot", limit_bytes=10_000)
    assert data == _Counter.body
    assert checked == ["rebind.example"]
    assert hits[-1] == "/pinned.vot" and _Counter.hosts[-1] == f"rebind.example:{port4}"


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://a:badport/", "http://a:99999/", "http://\x00x/"]
)
def test_malformed_upload_urls_are_a_clean_400(client, url):
    resp = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{url}"},
    )
    assert resp.status_code == 400
    assert "is not a valid URL" in _error_text(resp)


def test_redirects_to_other_schemes_are_refused(local_http):
    from skysense.vo.tap import fetch_url

    port4, _, hits = local_http
    for path in ("/redirect-file", "/redirect-ftp"):
        with pytest.raises(InputError, match=r"must be http\(s\)"):
            fetch_url(f"http://127.0.0.1:{port4}{path}", limit_bytes=10_000, allow_private=True)
    assert hits[-1] == "/redirect-ftp"


def test_environment_proxies_are_not_used(monkeypatch, local_http):
    from skysense.vo.tap import fetch_url

    port4, port6, hits = local_http
    with _serving(http.server.ThreadingHTTPServer, "127.0.0.1") as proxy_port:
        before = len(hits)
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy_port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        data = fetch_url(f"http://[::1]:{port6}/direct.vot", limit_bytes=10_000, allow_private=True)
    assert data == _Counter.body
    # The proxy shares the counter: the only request is the direct one, not a proxied one.
    assert hits[before:] == ["/direct.vot"]


# ---------------------------------------------------------------------------------------------
# the guard itself, and valid documents


def test_guard_messages_name_the_line():
    from skysense.vo.upload_guard import check_votable

    body = document(CHAR8, '<BINARY>\n<STREAM href="file:///etc/passwd"/></BINARY>')
    with pytest.raises(InputError, match=r'<STREAM href="file:///etc/passwd">.*\(line 6\)'):
        check_votable(body)
    with pytest.raises(InputError, match=r"encoding 'cp1252' is not accepted"):
        check_votable(document(CHAR8, "<TABLEDATA/>").replace(b"UTF-8", b"cp1252"))
    with pytest.raises(InputError, match=r"LZW"):
        check_votable(b"\x1f\x9d\x90" + b"\x00" * 20)
    with pytest.raises(InputError, match=r"not well-formed XML"):
        check_votable(b"<VOTABLE><RESOURCE></VOTABLE>")
    with pytest.raises(InputError, match=r"inside <STREAM>"):
        check_votable(document(CHAR8, '<BINARY><STREAM encoding="base64"><x/></STREAM></BINARY>'))


def _astropy_document(columns: dict, fmt: str) -> bytes:
    from astropy.io.votable import from_table
    from astropy.table import Table

    vot = from_table(Table(columns))
    vot.get_first_table().format = fmt
    for field in vot.get_first_table().fields:
        if field.datatype == "short":
            field.values.null = -32768  # BINARY has no null flags: a null value marks them
    if fmt == "binary2":
        vot.version = "1.4"
    out = io.BytesIO()
    vot.to_xml(out)
    return out.getvalue()


_TEXT = st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=0, max_value=20),
    fmt=st.sampled_from(["tabledata", "binary", "binary2"]),
    data=st.data(),
)
def test_valid_astropy_tables_pass_and_round_trip(n, fmt, data):
    from skysense.vo.upload_guard import check_votable
    from skysense.vo.votable import read_votable

    ints = data.draw(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=n, max_size=n))
    floats = data.draw(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=n, max_size=n)
    )
    texts = data.draw(st.lists(_TEXT.filter(lambda s: s == s.strip()), min_size=n, max_size=n))
    mags = data.draw(st.lists(st.none() | st.integers(-1000, 1000), min_size=n, max_size=n))
    flags = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    columns = {
        "id": np.array(ints, dtype=np.int32),
        "flux": np.array(floats, dtype=np.float64),
        "name": np.array(texts, dtype=object) if n else np.array([], dtype="U1"),
        "mag": MaskedColumn(
            [0 if m is None else m for m in mags], mask=[m is None for m in mags], dtype=np.int16
        ),
        "flag": np.array(flags, dtype=bool),
    }
    body = _astropy_document(columns, fmt)
    assert check_votable(body).data == body
    compressed = gzip.compress(body)
    for doc in (body, compressed):
        table, infos = read_votable(doc, limit_bytes=len(body))
        assert table.column_names == ["id", "flux", "name", "mag", "flag"]
        assert table.column("id").to_pylist() == ints
        assert table.column("flux").to_pylist() == floats
        assert [t or "" for t in table.column("name").to_pylist()] == texts
        assert table.column("mag").to_pylist() == mags
        assert table.column("flag").to_pylist() == flags


class _CountingDeadline:
    """A deadline that passes at its ``fail_at``-th check (and records every check)."""

    def __init__(self, fail_at: int | None = None):
        self.stages: list[str] = []
        self.fail_at = fail_at

    def check(self, stage: str = "") -> None:
        from skysense.errors import QueryError

        self.stages.append(stage)
        if self.fail_at is not None and len(self.stages) >= self.fail_at:
            raise QueryError(f"query exceeded the time limit of 1 s (while {stage})")

    def remaining(self) -> float | None:
        return None


def test_reading_an_upload_checks_the_deadline_as_it_goes():
    from skysense.errors import QueryError
    from skysense.vo.tap import make_upload

    rows = "".join(f"<TR><TD>{i}</TD><TD>name{i}</TD></TR>" for i in range(60_000))
    fields = '<FIELD name="n" datatype="int"/><FIELD name="s" datatype="char" arraysize="*"/>'
    body = document(fields, f"<TABLEDATA>{rows}</TABLEDATA>")
    assert len(body) > 2_000_000
    clock = _CountingDeadline()
    up = make_upload("t", body, limit_bytes=len(body), deadline=clock)
    assert up.info.n_rows == 60_000
    scans = [s for s in clock.stages if s.startswith("checking")]
    reads = [s for s in clock.stages if s == "reading the upload"]
    assert len(scans) >= 2 and len(reads) >= 2  # during the scan and during astropy's parse
    # The time-limit error comes out as it is (a 400 naming the limit), not as a bad document.
    with pytest.raises(QueryError, match=r"time limit .*while reading the upload"):
        make_upload("t", body, limit_bytes=len(body), deadline=_CountingDeadline(len(scans) + 2))
