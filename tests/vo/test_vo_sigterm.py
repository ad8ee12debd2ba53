"""``skysense vo serve`` stops within seconds on SIGTERM in every state, and the database can be
served again at once (issue 15).

Each case starts the real CLI in a subprocess on a DuckDB file, puts it in one busy state, sends
SIGTERM, requires the process to end in under 5 s, and restarts a server on the same file (which
needs the DuckDB lock released) that answers a query.

The states: a long query (DuckDB interrupts it), a long SODA cutout (a non-convex 1,000-vertex
polygon, tested edge by edge against 4 million pixels) and a runaway translation
(pure Python in a worker thread: nothing can interrupt it, so the server ends the process).
The translation case uses the slowest legal query found: as many select-list expressions as
the caps of :mod:`skysense.vo.limits` on query length and width allow (several seconds of
translation).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import pytest
from _vo_support import publish_sky, write_square_map

from skysense.errors import QueryError
from skysense.vo.backends import open_backend
from skysense.vo.limits import MAX_POLYGON_VERTICES, MAX_QUERY_BYTES, MAX_SELECT_COLUMNS
from skysense.vo.maps import publish_map

STOP_S = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "skysense.cli", "vo", "serve", "--db", db, "--port", str(port)]
        + ["--timeout", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/tap", timeout=2).status_code == 200:
                return proc
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


@pytest.fixture
def db(tmp_path, sky) -> str:
    path = str(tmp_path / "vo.duckdb")
    publish_sky(path, sky)
    write_square_map(tmp_path / "big.fits", 2000, seed=5)
    backend = open_backend(path)
    try:
        publish_map(backend, tmp_path / "big.fits", name="big", description="big", band="b")
    finally:
        backend.close()
    return path


def _polygon(n: int, radius_deg: float, *, star: bool = False) -> str:
    """A convex n-gon around (150, 2); ``star``: every other vertex 20% closer (not convex,
    so every edge is tested against every pixel: the slow path of a cutout)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius_deg * (1 - 0.2 * (np.arange(n) % 2)) if star else radius_deg
    ra = 150.0 + r * np.cos(t) / np.cos(np.radians(2.0))
    dec = 2.0 + r * np.sin(t)
    return " ".join(f"{a:.8f} {d:.8f}" for a, d in zip(ra, dec))


def _slow_translation() -> str:
    """As many select-list expressions as the caps on query length and width allow."""
    exprs = []
    size = len("SELECT TOP 1  FROM demo.sky")
    for i in range(MAX_SELECT_COLUMNS - 1):
        expr = f"SIN(RADIANS(ra+{i}))*COS(RADIANS(dec-{i}))+ABS(mag_r*{i}-dec)/(1+ra) AS x{i}"
        if size + len(expr) + 2 > MAX_QUERY_BYTES:
            break
        exprs.append(expr)
        size += len(expr) + 2
    return f"SELECT TOP 1 {', '.join(exprs)} FROM demo.sky"


CASES = {
    "long query": (
        "/tap/sync",
        {
            "QUERY": "SELECT COUNT(*) AS n FROM demo.sky AS a, demo.sky AS b, demo.sky AS c, "
            "demo.sky AS d"
        },
    ),
    "long cutout": (
        "/soda/sync",
        {"ID": "big", "POLYGON": _polygon(MAX_POLYGON_VERTICES, 0.25, star=True)},
    ),
    "runaway translation": ("/tap/sync", {"QUERY": _slow_translation()}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sigterm_stops_the_server_and_frees_the_database(db, case):
    path, data = CASES[case]
    port = _free_port()
    proc = _start(db, port)
    answers: list = []

    def busy():
        try:
            # Multipart: a url-encoded 0.8 MB query would exceed the 1 MiB field limit.
            fields = {k: (None, v) for k, v in data.items()}
            answers.append(httpx.post(f"http://127.0.0.1:{port}{path}", files=fields, timeout=120))
        except httpx.HTTPError as exc:  # the server went away mid-request: expected
            answers.append(exc)

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    time.sleep(2.0)  # well inside the work (each takes > 10 s)
    assert not answers, f"the {case} finished before the signal: {answers}"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"SIGTERM during a {case} did not stop the server in {STOP_S} s")
    elapsed = time.monotonic() - start
    _, err = proc.communicate()
    assert elapsed < STOP_S
    assert "skysense: stopped" in err
    worker.join(timeout=30)

    port = _free_port()
    again = _start(db, port)
    try:
        resp = httpx.get(
            f"http://127.0.0.1:{port}/tap/sync",
            params={"QUERY": "SELECT COUNT(*) AS n FROM demo.sky", "FORMAT": "csv"},
            timeout=30,
        )
        assert resp.status_code == 200
        assert resp.text.split() == ["n", "3000"]
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=STOP_S)


def test_port_in_use_is_one_error_line_before_serving(db):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "skysense.cli", "vo", "serve", "--db", db]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert "serving" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("skysense: error:") and "already in use" in lines[0]


def test_cancel_all_stops_every_running_query(db_url, sky):
    publish_sky(db_url, sky)
    backend = open_backend(db_url)
    backend.harden(memory_limit_mb=256, threads=1)
    slow = (
        "SELECT sum(a.range * b.range) AS s FROM range(200000) a, range(200000) b"
        if backend.dialect == "duckdb"
        else "SELECT pg_sleep(30)"
    )
    errors: list = []

    def run():
        try:
            backend.query(slow, timeout_s=60)
        except QueryError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        start = time.monotonic()
        backend.cancel_all()
        for t in threads:
            t.join(timeout=15)
        assert time.monotonic() - start < STOP_S
        assert len(errors) == 2 and all("abort" in str(e) for e in errors)
        if backend.dialect == "duckdb":  # and no new query starts on the closing database
            with pytest.raises(QueryError, match="shutting down"):
                backend.query("SELECT 1 AS x")
    finally:
        for t in threads:
            t.join(timeout=30)
        backend.close()


UWS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}


def _phase(job_url: str) -> str:
    doc = ET.fromstring(httpx.get(job_url, timeout=30).content)
    return doc.find("uws:phase", UWS).text


def test_sigterm_leaves_a_running_async_job_queued_for_the_restart(db):
    port = _free_port()
    proc = _start(db, port)
    query = "SELECT COUNT(*) AS n FROM demo.sky AS a, demo.sky AS b, demo.sky AS c, demo.sky AS d"
    resp = httpx.post(
        f"http://127.0.0.1:{port}/tap/async",
        data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"},
        follow_redirects=False,
        timeout=30,
    )
    job_id = resp.headers["location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 30
    while _phase(f"http://127.0.0.1:{port}/tap/async/{job_id}") != "EXECUTING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=STOP_S)
    proc.communicate()

    port = _free_port()
    again = _start(db, port)
    try:
        job_url = f"http://127.0.0.1:{port}/tap/async/{job_id}"
        # Interrupted by the stop, not failed: queued (and running) again.
        assert _phase(job_url) in ("QUEUED", "EXECUTING")
        httpx.delete(job_url, timeout=30)
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=STOP_S)
