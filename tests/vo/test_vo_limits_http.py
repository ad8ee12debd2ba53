"""Request bodies, connections, job storage and SODA cutouts are bounded (issue 15).

A real uvicorn server runs the app with :func:`skysense.vo.serve.server_config` (the settings the
CLI uses), so the header deadline, keep-alive and connection limit are those of production;
clients are raw sockets where HTTP libraries would hide what the server does.
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import pytest
from _vo_support import publish_sky, server_settings, write_square_map
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from skysense.errors import ConfigError, InputError
from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.cutout import _xyz, parse_polygon, region_contains
from skysense.vo.limits import MAX_POLYGON_VERTICES
from skysense.vo.maps import publish_map
from skysense.vo.serve import MAX_HEADER_BYTES, SkysenseServer, bind_socket, server_config
from skysense.vo.settings import Settings

NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
MAP_PIXELS = 2000  # a 2000 x 2000 map: a 1000-vertex polygon over it takes many seconds


@contextlib.contextmanager
def serving(settings: Settings):
    """The app under uvicorn with the production connection settings; yields (url, app)."""
    app = create_app(settings)
    sock = bind_socket("127.0.0.1", 0)
    server = SkysenseServer(server_config(app, settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, sky):
    tmp = tmp_path_factory.mktemp("limits")
    db = str(tmp / "vo.duckdb")
    publish_sky(db, sky)
    write_square_map(tmp / "big.fits", MAP_PIXELS, seed=3)
    backend = open_backend(db)
    try:
        publish_map(backend, tmp / "big.fits", name="big", description="big map", band="b")
    finally:
        backend.close()
    return db, tmp


@pytest.fixture(scope="module")
def live(site):
    db, tmp = site
    settings = server_settings(
        db,
        tmp,
        header_timeout_s=1.0,
        body_timeout_s=1.0,
        keepalive_timeout_s=1.0,
        max_connections=6,
        query_timeout_s=2.0,
    )
    with serving(settings) as (url, _):
        yield url, settings


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _connect(url: str, timeout_s: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", _port(url)), timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the socket times out,
    which fails the test)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


# ------------------------------------------------------------------------------------------
# bodies

ENDPOINTS = [
    "/soda/sync",
    "/scs/demo.sky",
    "/sia/query",
    "/query",
    "/cone",
    "/tap/sync",
    "/tap/async",
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_announced_oversized_body_is_refused_unread(live, path):
    url, _ = live
    with _connect(url) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 100000000\r\n\r\n".encode()
            + b"QUERY=" * 1000
        )
        response = _read_all(sock)  # the server answers and closes without the 100 MB
    assert _status(response) == 413
    assert b"exceeds the limit" in response
    assert b"connection: close" in response.lower()


def _stream_chunked(url: str, path: str, head: bytes, cap_bytes: int) -> tuple[bytes, int]:
    """POST an endless chunked body; returns (response, bytes sent before the answer)."""
    sock = _connect(url)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n".encode() + head
    )
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < cap_bytes:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                break  # the answer (or the close) came
            if writable:
                try:
                    sock.sendall(frame)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(frame)
        response = _read_all(sock)
    finally:
        sock.close()
    return response, sent


@pytest.mark.parametrize(
    "path,ctype",
    [
        ("/scs/demo.sky", "application/x-www-form-urlencoded"),
        ("/soda/sync", "application/x-www-form-urlencoded"),
        ("/tap/sync", "multipart/form-data; boundary=BOUNDARY"),
        ("/tap/async", "multipart/form-data; boundary=BOUNDARY"),
    ],
)
def test_chunked_body_is_cut_while_streaming(live, path, ctype):
    url, settings = live
    head = f"Content-Type: {ctype}\r\n\r\n".encode()
    first = (
        b"--BOUNDARY\r\nContent-Disposition: form-data; name=t; filename=t.xml\r\n\r\n"
        if ctype.startswith("multipart")
        else b""
    )
    if first:
        head += b"%x\r\n" % len(first) + first + b"\r\n"
    response, sent = _stream_chunked(url, path, head, 64 << 20)
    assert _status(response) == 413
    limit = settings.tap_body_limit_bytes if path.startswith("/tap") else settings.form_limit_bytes
    # Refused near the limit (socket buffers hold a few MB more), not after 64 MB.
    assert sent < limit + (24 << 20)


def _votable_bytes(n_rows: int) -> bytes:
    rng = np.random.default_rng(1)
    t = Table({"ra": rng.uniform(0, 360, n_rows), "dec": rng.uniform(-90, 90, n_rows)})
    buf = io.BytesIO()
    t.write(buf, format="votable", tabledata_format="binary2")
    return buf.getvalue()


def test_upload_spools_inside_the_work_directory(sky, monkeypatch, tmp_path):
    db = str(tmp_path / "spool.duckdb")
    publish_sky(db, sky)
    # Reading the upload spends from the query's time limit: give it room on a busy machine.
    settings = server_settings(db, tmp_path, query_timeout_s=60.0)
    # A system temporary directory that does not exist: a spool file there would fail.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
    data = _votable_bytes(80_000)
    assert 1 << 20 < len(data) < settings.upload_limit_bytes  # rolls over to disk
    with serving(settings) as (url, _):
        resp = httpx.post(
            url + "/tap/sync",
            data={"QUERY": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
            files={"t": ("t.xml", data, "application/x-votable+xml")},
            params={"FORMAT": "csv"},
            timeout=60,
        )
    assert resp.status_code == 200, resp.text
    assert resp.text.split() == ["n", "80000"]
    assert (settings.resolved_workdir / "spool").is_dir()


def test_stalled_body_gets_408(live):
    url, settings = live
    with _connect(url) as sock:
        sock.sendall(
            b"POST /tap/sync HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
            b"QUERY=SELECT"
        )
        start = time.monotonic()
        response = _read_all(sock)
    assert _status(response) == 408
    assert time.monotonic() - start < settings.body_timeout_s + 5


def test_trickled_body_is_cut_at_the_minimum_rate(live):
    url, settings = live
    with _connect(url) as sock:
        sock.sendall(
            b"POST /tap/sync HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
        )
        start = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            # One byte every half gap: the gap timeout alone would never fire.
            while time.monotonic() - start < settings.body_timeout_s + 5:
                sock.sendall(b"a")
                time.sleep(settings.body_timeout_s / 2)
        response = _read_all(sock)
    assert _status(response) == 408
    assert b"bytes/s" in response


def test_client_leaving_mid_body_is_no_server_error(live, caplog):
    url, _ = live
    with _connect(url) as sock:
        sock.sendall(
            b"POST /scs/demo.sky HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\n"
            b"RA=1"
        )
    time.sleep(0.5)
    assert "unhandled error" not in caplog.text
    assert httpx.get(url + "/tap/availability", timeout=10).status_code == 200


# ------------------------------------------------------------------------------------------
# connections


@pytest.mark.parametrize(
    "sent", [b"", b"GET /tap HTTP/1.1\r\nHost: x\r\nX-Half: aa", b"GET /ta"], ids=repr
)
def test_idle_and_stalled_heads_are_disconnected(live, sent):
    url, settings = live
    with _connect(url) as sock:
        sock.sendall(sent)
        start = time.monotonic()
        response = _read_all(sock)
    assert time.monotonic() - start < settings.header_timeout_s + 5
    assert _status(response) == 408


def test_trickled_head_is_cut_at_the_deadline(live):
    url, settings = live
    with _connect(url) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while time.monotonic() - start < settings.header_timeout_s + 5:
                sock.sendall(b"X-A: b\r\n")  # a header line every 0.2 s keeps the head open
                time.sleep(0.2)
        response = _read_all(sock)
    assert _status(response) == 408


def test_oversized_head_gets_431(live):
    url, _ = live
    with _connect(url) as sock:
        sock.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(MAX_HEADER_BYTES // 1000 + 2):
                sock.sendall(b"X-Pad: " + b"a" * 990 + b"\r\n")
        response = _read_all(sock)
    assert _status(response) == 431


def test_idle_keepalive_connection_is_closed(live):
    url, settings = live
    with _connect(url) as sock:
        sock.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        response = _read_all(sock)  # the answer, then the close after the idle time
    assert _status(response) == 200
    # uvicorn's own default is 5 s: the configured 1 s must be what closes it.
    assert time.monotonic() - start < settings.keepalive_timeout_s + 2.5


def test_connections_beyond_the_limit_get_503(live):
    url, settings = live
    stalled = [_connect(url) for _ in range(settings.max_connections)]
    try:
        for sock in stalled:
            sock.sendall(b"GET /tap HTTP/1.1\r\n")
        resp = httpx.get(url + "/tap", timeout=10)
        assert resp.status_code == 503
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + 10
    while httpx.get(url + "/tap", timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_port_in_use_is_a_config_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="already in use"):
            bind_socket("127.0.0.1", taken.getsockname()[1])


# ------------------------------------------------------------------------------------------
# SODA


def _polygon(n: int, radius_deg: float, *, star: bool = False) -> str:
    """A convex n-gon around (150, 2); ``star``: every other vertex 20% closer (not convex,
    so every edge is tested against every pixel: the slow path of a cutout)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius_deg * (1 - 0.2 * (np.arange(n) % 2)) if star else radius_deg
    ra = 150.0 + r * np.cos(t) / np.cos(np.radians(2.0))
    dec = 2.0 + r * np.sin(t)
    return " ".join(f"{a:.8f} {d:.8f}" for a, d in zip(ra, dec))


def test_polygon_vertex_cap(live):
    url, _ = live
    start = time.monotonic()
    resp = httpx.post(
        url + "/soda/sync",
        data={"ID": "big", "POLYGON": _polygon(5000, 0.2)},
        timeout=60,
    )
    assert resp.status_code == 400
    assert f"at most {MAX_POLYGON_VERTICES} vertices" in resp.text
    assert time.monotonic() - start < 5


def test_cutout_stops_at_the_time_limit(live):
    url, settings = live
    start = time.monotonic()
    resp = httpx.post(
        url + "/soda/sync",
        data={"ID": "big", "POLYGON": _polygon(MAX_POLYGON_VERTICES, 0.25, star=True)},
        timeout=120,
    )
    elapsed = time.monotonic() - start
    assert resp.status_code == 400
    assert "exceeded the time limit" in resp.text
    assert elapsed < settings.query_timeout_s + 5


def test_small_polygon_cutout_still_works(live):
    url, _ = live
    resp = httpx.post(
        url + "/soda/sync", data={"ID": "big", "POLYGON": _polygon(6, 0.05)}, timeout=60
    )
    assert resp.status_code == 200
    with fits.open(io.BytesIO(resp.content)) as hdul:
        assert 0 < hdul["IMAGE"].data.size < MAP_PIXELS**2


# ------------------------------------------------------------------------------------------
# storage


def _create_job(url: str, query: str, files: dict | None = None, **params) -> httpx.Response:
    data = {"LANG": "ADQL", "QUERY": query, **params}
    if files:
        data["UPLOAD"] = ";".join(f"{k},param:{k}" for k in files)
        files = {k: (f"{k}.xml", v, "application/x-votable+xml") for k, v in files.items()}
    return httpx.post(
        url + "/tap/async", data=data, files=files, follow_redirects=False, timeout=60
    )


def _job_phase(job_url: str, wait_s: float = 30) -> ET.Element:
    deadline = time.monotonic() + wait_s
    while True:
        doc = ET.fromstring(httpx.get(job_url + "?WAIT=5", timeout=30).content)
        phase = doc.find("uws:phase", NS).text
        if phase in ("COMPLETED", "ERROR", "ABORTED") or time.monotonic() > deadline:
            return doc


@pytest.fixture
def fresh_db(tmp_path, sky) -> str:
    """A database of its own (one DuckDB file is opened by one server at a time)."""
    db = str(tmp_path / "own.duckdb")
    publish_sky(db, sky)
    return db


def test_async_upload_quotas(fresh_db, tmp_path):
    db = fresh_db
    upload = _votable_bytes(20_000)  # ~320 kB
    settings = server_settings(
        db,
        tmp_path,
        job_storage_limit_bytes=len(upload) * 2 - 1,
        jobs_storage_limit_bytes=len(upload) * 3,
    )
    with serving(settings) as (url, app):
        two = _create_job(url, "SELECT 1 AS x", {"a": upload, "b": upload})
        assert two.status_code == 400
        assert "storage limit of one job" in two.text
        created = [_create_job(url, "SELECT 1 AS x", {"a": upload}) for _ in range(3)]
        assert [r.status_code for r in created] == [303, 303, 303]
        fourth = _create_job(url, "SELECT 1 AS x", {"a": upload})
        assert fourth.status_code == 400
        assert "does not fit in the async job storage" in fourth.text
        assert app.state.jobs.storage_bytes() == 3 * len(upload)
        # Deleting a job frees its share.
        httpx.delete(created[0].headers["location"], timeout=30)
        assert _create_job(url, "SELECT 1 AS x", {"a": upload}).status_code == 303
    uws = settings.resolved_workdir / "uws"
    on_disk = sum(p.stat().st_size for p in uws.rglob("*") if p.is_file())
    assert on_disk == 3 * len(upload)


def test_result_over_the_job_cap_is_an_error_and_leaves_nothing(fresh_db, tmp_path):
    db = fresh_db
    settings = server_settings(db, tmp_path, job_storage_limit_bytes=20_000)
    with serving(settings) as (url, _):
        resp = _create_job(url, "SELECT * FROM demo.sky", PHASE="RUN")
        job_url = resp.headers["location"]
        doc = _job_phase(job_url)
        assert doc.find("uws:phase", NS).text == "ERROR"
        message = doc.find("uws:errorSummary/uws:message", NS).text
        assert "the result" in message and "storage limit of one job" in message
        folder = settings.resolved_workdir / "uws" / job_url.rsplit("/", 1)[1]
        assert not folder.exists() or not any(folder.rglob("result*"))


def test_expired_jobs_are_purged_with_their_files(fresh_db, tmp_path):
    db = fresh_db
    settings = server_settings(db, tmp_path, job_destruction_s=1.0, purge_interval_s=0.3)
    with serving(settings) as (url, _):
        resp = _create_job(url, "SELECT 1 AS x", {"a": _votable_bytes(100)})
        job_url = resp.headers["location"]
        folder = settings.resolved_workdir / "uws" / job_url.rsplit("/", 1)[1]
        assert folder.is_dir()
        deadline = time.monotonic() + 10
        while httpx.get(job_url, timeout=10).status_code != 404:
            assert time.monotonic() < deadline, "the expired job was never destroyed"
            time.sleep(0.2)
        assert not folder.exists()


def test_duckdb_spills_inside_the_work_directory(fresh_db, tmp_path):
    db = fresh_db
    settings = server_settings(db, tmp_path, spill_limit_mb=123)
    with serving(settings) as (_, app):
        con = app.state.backend._db
        where = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        cap = con.execute("SELECT current_setting('max_temp_directory_size')").fetchone()[0]
    assert where == str(settings.resolved_workdir / "spill")
    assert cap.startswith("117.3")  # 123 MB in DuckDB's MiB display


def _brute_inside(v: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same side of every edge as the vertex centroid; and each point's distance (rad) to the
    nearest edge great circle."""
    normals = np.cross(v, np.roll(v, -1, axis=0))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    side = p @ normals.T * np.sign(normals @ v.sum(axis=0))
    return np.all(side >= 0, axis=1), np.abs(side).min(axis=1)


@hsettings(max_examples=200, deadline=None)
@given(
    ra0=st.floats(0, 360),
    dec0=st.floats(-89, 89),
    radius=st.floats(0.001, 40),
    angles=st.lists(st.floats(0, 2 * np.pi), min_size=3, max_size=60, unique=True),
    reverse=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_polygon_fan_test_matches_every_edge_test(ra0, dec0, radius, angles, reverse, seed):
    # Vertices on a circle of the gnomonic plane: a convex spherical polygon, in any rotation
    # and either orientation; points around it and anywhere on the sky.
    t = np.sort(np.array(angles))
    if np.min(np.diff(np.append(t, t[0] + 2 * np.pi))) < 1e-3:
        return  # near-coincident vertices are refused by parse_polygon
    if reverse:
        t = t[::-1]
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [0.0, 0.0]  # 1-based pixel (x, y) is then (x, y) deg in the tangent plane
    r = np.degrees(np.tan(np.radians(radius)))
    vra, vdec = w.wcs_pix2world(r * np.cos(t), r * np.sin(t), 1)
    try:
        poly = parse_polygon(" ".join(f"{float(a)!r} {float(d)!r}" for a, d in zip(vra, vdec)))
    except InputError:
        return
    rng = np.random.default_rng(seed)
    near_ra = ra0 + rng.normal(0, radius * 1.5 + 1e-3, 2000) / max(np.cos(np.radians(dec0)), 0.05)
    near_dec = np.clip(dec0 + rng.normal(0, radius * 1.5 + 1e-3, 2000), -90, 90)
    any_ra, any_dec = rng.uniform(0, 360, 500), np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    ra = np.mod(np.concatenate([near_ra, any_ra, vra]), 360)
    dec = np.concatenate([near_dec, any_dec, vdec])
    ours = region_contains(poly, ra, dec)
    v = _xyz(np.array(poly.ra_deg), np.array(poly.dec_deg))
    truth, edge_rad = _brute_inside(v, _xyz(ra, dec))
    differ = ours != truth
    # Edge normals are cross products of vertices about `radius` apart: their rounding error
    # grows as 1/radius, so only points that close to an edge may fall either way.
    tol_rad = 1e-12 + 1e-15 / np.radians(radius)
    assert np.all(edge_rad[differ] < tol_rad)


def test_non_convex_polygon_keeps_the_edge_by_edge_test():
    # A star: the fan search does not apply; the answer is the same-side-of-every-edge test.
    poly = parse_polygon(_polygon(10, 1.0, star=True))
    ra, dec = np.meshgrid(np.linspace(148.5, 151.5, 60), np.linspace(0.5, 3.5, 60))
    ours = region_contains(poly, ra.ravel(), dec.ravel())
    v = _xyz(np.array(poly.ra_deg), np.array(poly.dec_deg))
    truth, _ = _brute_inside(v, _xyz(ra.ravel(), dec.ravel()))
    np.testing.assert_array_equal(ours, truth)
    assert 0 < ours.sum() < ours.size


def test_job_storage_is_counted_again_after_a_restart(fresh_db, tmp_path):
    settings = server_settings(fresh_db, tmp_path)
    upload = _votable_bytes(1000)
    with serving(settings) as (url, _):
        assert _create_job(url, "SELECT 1 AS x", {"a": upload}).status_code == 303
    orphan = settings.resolved_workdir / "uws" / "no-such-job"
    orphan.mkdir()
    (orphan / "result.vot").write_bytes(b"x" * 1000)  # left by a crash before the job was saved
    with serving(settings) as (_, app):
        assert app.state.jobs.storage_bytes() == len(upload)
    assert not orphan.exists()
