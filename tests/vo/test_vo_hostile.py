"""The hostile-request suite: requests an attacker would send, against a served DuckDB and a
served PostgreSQL database (issue 15 acceptance).

Each case is one function that sends one request (or runs one async job) and returns what the
server answered. One checker holds every answer to the same invariants:

- no 5xx (and no async job ending in an "internal error");
- no file contents or internal responses: neither ``root:x:0:0`` (/etc/passwd), nor the marker
  of a file the suite wrote and references by ``file://``, nor the secret that a local
  "intranet" HTTP server serves, appears in any answer (async jobs: the job document and its
  stored result or error are fetched too), and the intranet server is never contacted;
- an answer within the time limit plus a margin (httpx timeouts make a hang fail, not block);
- the server still answers afterwards (a small cone query returns the right rows).

Cases whose request must be refused (an external stream, a truncated upload, a 20 MB body, a
write) also require a refusal: a 4xx, a DAL error document, or an async job in ERROR. The last
test requires the published tables to be unchanged (row counts, checksums, the list of tables).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest
from _hostile_support import (
    FILE_MARKER,
    AsyncRun,
    Intranet,
    RawAnswer,
    billion_laughs,
    binary2_stream,
    binary_stream,
    bomb,
    deep_votable,
    entity_votable,
    fits_stream,
    flatten,
    form_body,
    is_refusal,
    leaks,
    open_sockets,
    quadratic_blowup,
    raw_exchange,
    raw_get,
    served,
    stream_votable,
    truncated_votable,
    votable,
    wide_votable,
)
from _vo_support import fresh_postgres, publish_sky, server_settings

from skysense.vo.limits import MAX_IN_LIST, MAX_POLYGON_VERTICES, MAX_SELECT_COLUMNS

#: Query time limit of the served app (short, so the suite is fast).
QUERY_TIMEOUT_S = 2.0
#: What an answer may take beyond the time limit (a busy 2-core machine).
MARGIN_S = 5.0
#: Budget of one request: the time limit plus the margin.
BUDGET_S = QUERY_TIMEOUT_S + MARGIN_S
#: Header and body timeouts of the served app.
CONNECTION_TIMEOUT_S = 1.0
#: A stalled connection must be closed within this.
STALL_BUDGET_S = CONNECTION_TIMEOUT_S + MARGIN_S
#: Largest accepted upload of the served app, and the size of the oversized bodies.
UPLOAD_LIMIT = 2_000_000
BIG_BODY = 10 * UPLOAD_LIMIT
#: Disk space of all async jobs together (ten near-limit uploads).
JOBS_STORAGE_LIMIT = 10 * UPLOAD_LIMIT

ALIVE_ADQL = (
    "SELECT object_id FROM demo.sky "
    "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150, 2, 0.3))"
)
MAP = "hmap"


# ---------------------------------------------------------------------------------------------
# the served site


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile request: ``fn(h)`` sends it and returns the answer (httpx.Response,
    AsyncRun, RawAnswer or a tuple of them). ``refuse``: the server must refuse it; ``ok``:
    it is a valid request that must succeed; ``background``: it runs from the start of the
    module, beside the other cases (stalled connections)."""

    fn: Callable
    refuse: bool = False
    ok: bool = False
    budget_s: float = BUDGET_S
    background: bool = False


CASES: dict[str, Case] = {}


def case(name: str, **options):
    """Register ``fn`` as the case ``name`` (see :class:`Case` for the options)."""

    def register(fn):
        assert name not in CASES, name
        CASES[name] = Case(fn, **options)
        return fn

    return register


class Hostile:
    """A served site under attack: the uvicorn server, its database, marker files, the
    intranet, and the requests the cases send."""

    def __init__(self, backend_name, url, settings, app, tmp: Path, intranet, sky):
        self.backend_name = backend_name
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.settings = settings
        self.app = app
        self.tmp = tmp
        self.intranet = intranet
        # A new connection for every request: a kept-alive one may be closed by the server
        # (keep-alive timeout, a refused body) just as the next request goes out. One client,
        # since making an httpx client takes ~50 ms.
        self.client = httpx.Client(
            base_url=url, timeout=BUDGET_S, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self.dead_after: str | None = None
        self.before: dict | None = None
        self.background: dict[str, concurrent.futures.Future] = {}
        ra, dec = np.radians(sky.column("ra")), np.radians(sky.column("dec"))
        ra0, dec0 = np.radians(150.0), np.radians(2.0)
        cos_sep = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
        self.alive_rows = int((cos_sep >= np.cos(np.radians(0.3))).sum())
        self.markers = {}
        for key, data in (
            ("BINARY", binary_stream(FILE_MARKER)),
            ("BINARY2", binary2_stream(FILE_MARKER)),
            ("FITS", fits_stream(FILE_MARKER)),
            ("text", FILE_MARKER.encode()),
        ):
            path = tmp / f"hostile-{key.lower()}.dat"
            path.write_bytes(data)
            self.markers[key] = path
        #: Files a successful write attempt would create.
        self.forbidden = [tmp / "copied.csv", tmp / "attached.duckdb", tmp / "program-ran"]

    # ---- requests
    def tap(self, query: str, *, endpoint: str = "/tap/sync", files=None, **params):
        data = {"LANG": "ADQL", "QUERY": query, **params}
        return self.client.post(endpoint, data=data, files=files)

    def upload(self, doc: bytes, mode: str = "sync", *, query: str | None = None):
        """Upload ``doc`` as TAP_UPLOAD.t and select from it (sync or async)."""
        params = {"QUERY": query or "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}
        files = {"t": ("t.vot", doc, "application/x-votable+xml")}
        if mode == "async":
            return self.async_job(params, files=files)
        return self.client.post("/tap/sync", data={"LANG": "ADQL", **params}, files=files)

    def async_job(self, params: dict, *, files=None, duration_s: float = QUERY_TIMEOUT_S):
        """Create and run a job, wait for it to end, fetch its document and its stored
        result or error, then delete it."""
        data = {"LANG": "ADQL", "PHASE": "RUN", "EXECUTIONDURATION": str(int(duration_s))}
        data.update(params)
        created = self.client.post("/tap/async", data=data, files=files)
        run = AsyncRun(created)
        if created.status_code != 303:
            return run
        job_url = created.headers["location"]
        deadline = time.monotonic() + duration_s + MARGIN_S
        while True:
            run.job = self.client.get(job_url, params={"WAIT": "1"})
            found = re.search(r"<uws:phase>(\w+)</uws:phase>", run.job.text)
            run.phase = found.group(1) if found else None
            if run.phase not in ("PENDING", "QUEUED", "EXECUTING") or time.monotonic() > deadline:
                break
        if run.phase == "COMPLETED":
            run.stored = self.client.get(job_url + "/results/result")
        elif run.phase == "ERROR":
            run.stored = self.client.get(job_url + "/error")
        with contextlib.suppress(httpx.HTTPError):
            self.client.delete(job_url)
        return run

    def marker_uri(self, key: str) -> str:
        return self.markers[key].as_uri()

    # ---- invariants
    def alive_problem(self, timeout_s: float = BUDGET_S) -> str | None:
        """None when a small cone query answers the right rows, else what went wrong."""
        try:
            resp = self.client.get(
                "/tap/sync",
                params={"LANG": "ADQL", "QUERY": ALIVE_ADQL, "RESPONSEFORMAT": "csv"},
                timeout=timeout_s,
            )
        except httpx.HTTPError as exc:
            return f"the server stopped answering: {type(exc).__name__}: {exc}"
        rows = len(resp.text.strip().splitlines()) - 1
        if resp.status_code != 200 or rows != self.alive_rows:
            return (
                f"the cone query answers HTTP {resp.status_code} with {rows} rows "
                f"(expected {self.alive_rows}): {resp.text[:300]!r}"
            )
        return None

    def snapshot(self) -> dict:
        """Row counts and checksums of the published tables and the list of every table,
        read through the server's own database connection."""
        backend = self.app.state.backend
        catalog = backend.catalog()
        sky = catalog.tables["demo.sky"].physical
        small = catalog.tables["demo.small"].physical
        stats = backend.query(
            "SELECT count(*) AS n, sum(object_id) AS s_id, sum(ra) AS s_ra, sum(dec) AS s_dec, "
            # NaN magnitudes (in both databases NaN sorts above every number) left out
            "sum(CASE WHEN mag_r < 100 THEN mag_r ELSE 0 END) AS s_mag, "
            "sum(CASE WHEN flag THEN 1 ELSE 0 END) AS n_flag, "
            f"sum(CASE WHEN kind = 'star' THEN 1 ELSE 0 END) AS n_star FROM {sky}"
        ).to_pylist()[0]
        stats = {k: round(float(v), 6) for k, v in stats.items()}
        stats["small"] = backend.query(f"SELECT count(*) AS n FROM {small}").column(0)[0].as_py()
        tables = backend.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).to_pylist()
        stats["tables"] = sorted((t["table_schema"], t["table_name"]) for t in tables)
        return stats

    def close(self) -> None:
        self.client.close()


def _write_map(path: Path) -> None:
    from astropy.io import fits
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [200.5, 200.5]
    w.wcs.cdelt = [-6.0 / 3600, 6.0 / 3600]
    header = w.to_header()
    header["BUNIT"] = "mJy/beam"
    header["BAND"] = "spire_250"
    header["FWHM"] = 18.15
    image = np.random.default_rng(5).normal(size=(400, 400)).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image, header, name="IMAGE")]).writeto(path)


@pytest.fixture(scope="module")
def intranet():
    server = Intranet()
    yield server
    server.close()


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def hostile(request, tmp_path_factory, sky, intranet):
    """A uvicorn server per backend on a published sky table and map, with short limits."""
    from skysense.vo.app import create_app
    from skysense.vo.backends import open_backend
    from skysense.vo.maps import publish_map

    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "duckdb":
            (tmp / "db").mkdir()
            db = str(tmp / "db" / "hostile.duckdb")
        else:
            db = stack.enter_context(fresh_postgres(request.getfixturevalue("postgres_dsn")))
        publish_sky(db, sky)
        _write_map(tmp / "map.fits")
        backend = open_backend(db)
        try:
            publish_map(backend, tmp / "map.fits", name=MAP, data_dir=tmp / "maps")
        finally:
            backend.close()
        settings = server_settings(
            db,
            tmp,
            query_timeout_s=QUERY_TIMEOUT_S,
            async_timeout_s=QUERY_TIMEOUT_S,
            async_timeout_hard_s=QUERY_TIMEOUT_S,
            upload_limit_bytes=UPLOAD_LIMIT,
            upload_allow_private_urls=False,
            memory_limit_mb=128,
            header_timeout_s=CONNECTION_TIMEOUT_S,
            body_timeout_s=CONNECTION_TIMEOUT_S,
            spill_limit_mb=64,
            job_storage_limit_bytes=3 * UPLOAD_LIMIT,
            jobs_storage_limit_bytes=JOBS_STORAGE_LIMIT,
        )
        app = create_app(settings)
        url = stack.enter_context(served(app, settings))
        h = Hostile(request.param, url, settings, app, tmp, intranet, sky)
        stack.callback(h.close)
        h.before = h.snapshot()
        # Stalled connections run in the background while the other cases run (only the
        # selected ones, so that running a few cases stays quick).
        selected = {
            item.callspec.params.get("case_name")
            for item in request.session.items
            if getattr(item, "callspec", None) is not None
            and item.callspec.params.get("hostile") == request.param
        }
        pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(8))
        for name, spec in CASES.items():
            if spec.background and name in selected:
                h.background[name] = pool.submit(_timed, spec.fn, h)
        yield h
        for future in h.background.values():
            future.cancel()


def _timed(fn, h):
    t0 = time.monotonic()
    answer = fn(h)
    return answer, time.monotonic() - t0


def _describe(answer) -> str:
    lines = []
    for item in flatten(answer):
        if isinstance(item, RawAnswer):
            lines.append(f"raw: closed={item.closed} {item.data[:300]!r}")
        else:
            text = " ".join(item.text[:400].split())
            lines.append(
                f"{item.request.method} {item.request.url.path} -> {item.status_code}: {text}"
            )
    if isinstance(answer, AsyncRun):
        lines.append(f"job phase: {answer.phase}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the checker


def pytest_generate_tests(metafunc):
    # The cases register below the checker, so parametrize once the module is loaded.
    if "case_name" in metafunc.fixturenames:
        metafunc.parametrize("case_name", list(CASES))


def answer_problems(h: Hostile, spec: Case, answer, elapsed: float, hits: int) -> list[str]:
    """What is wrong with one case's answer (empty when every invariant holds)."""
    problems = []
    for item in flatten(answer):
        status = item.status if isinstance(item, RawAnswer) else item.status_code
        if status is not None and status >= 500:
            problems.append(f"HTTP {status}")
        if found := leaks(item):
            problems.append(f"the answer holds {found}")
    if isinstance(answer, AsyncRun):
        if answer.stored is not None and "internal error" in answer.stored.text:
            problems.append("the async job failed with an internal error")
        if answer.phase in ("PENDING", "QUEUED", "EXECUTING"):
            problems.append(f"the async job is still {answer.phase} past its time limit")
    # An async job may run for its whole execution duration before it answers.
    budget = spec.budget_s + (MARGIN_S if isinstance(answer, AsyncRun) else 0.0)
    if isinstance(answer, RawAnswer) and not answer.closed:
        problems.append(f"the connection is still open after {spec.budget_s:.0f} s")
    elif elapsed > budget:
        problems.append(f"answered after {elapsed:.1f} s (budget {budget:.0f} s)")
    if h.intranet.hit_count() > hits:
        problems.append(f"the server contacted the intranet: {h.intranet.hits[hits:]}")
    if spec.refuse and not is_refusal(answer):
        problems.append("the request was not refused")
    if spec.ok and not all(getattr(r, "status_code", 200) == 200 for r in flatten(answer)):
        problems.append("a valid request failed")
    return problems


def test_hostile_request(hostile, case_name):
    h, name = hostile, case_name
    spec = CASES[name]
    if h.dead_after is not None:
        problem = h.alive_problem(timeout_s=3.0)
        if problem is not None:
            pytest.fail(f"the server no longer answers since case {h.dead_after!r}: {problem}")
        h.dead_after = None
    hits = h.intranet.hit_count()
    answer, elapsed = None, math.inf
    try:
        if spec.background:
            answer, elapsed = h.background[name].result(timeout=spec.budget_s + 60)
        else:
            answer, elapsed = _timed(spec.fn, h)
    except httpx.TimeoutException as exc:
        problems = [f"no answer within {spec.budget_s:.0f} s ({type(exc).__name__})"]
    except httpx.TransportError as exc:
        problems = [f"the connection broke without an answer: {type(exc).__name__}: {exc}"]
    else:
        problems = answer_problems(h, spec, answer, elapsed, hits)
    alive = h.alive_problem()
    if alive is not None:
        h.dead_after = name
        problems.append(alive)
    details = _describe(answer) if answer is not None else ""
    print(f"[{h.backend_name}] {name} ({elapsed:.2f} s)\n{details}")  # shown with -s
    assert not problems, f"[{h.backend_name}] {name}: " + "; ".join(problems) + "\n" + details


# ---------------------------------------------------------------------------------------------
# Critical: uploaded documents that point outside themselves

for _ser in ("BINARY", "BINARY2", "FITS"):
    for _mode in ("sync", "async"):

        @case(f"upload-{_ser.lower()}-stream-file-href-{_mode}", refuse=True)
        def _(h, ser=_ser, mode=_mode):
            return h.upload(stream_votable(ser, h.marker_uri(ser)), mode)


@case("upload-binary-stream-etc-passwd", refuse=True)
def _(h):
    return h.upload(stream_votable("BINARY", "file:///etc/passwd"))


@case("upload-binary2-stream-etc-passwd-async", refuse=True)
def _(h):
    return h.upload(stream_votable("BINARY2", "file:///etc/passwd"), "async")


@case("upload-binary-stream-bare-path", refuse=True)
def _(h):
    return h.upload(stream_votable("BINARY", str(h.markers["BINARY"])))


@case("upload-binary-stream-gzip-file-href", refuse=True)
def _(h):
    return h.upload(stream_votable("BINARY", h.marker_uri("BINARY"), encoding="gzip"))


@case("upload-binary-stream-http-127", refuse=True)
def _(h):
    return h.upload(stream_votable("BINARY", h.intranet.url("s.bin")))


@case("upload-binary2-stream-http-127-async", refuse=True)
def _(h):
    return h.upload(stream_votable("BINARY2", h.intranet.url("s.bin2")), "async")


@case("upload-binary-stream-http-ipv6", refuse=True)
def _(h):
    return h.upload(stream_votable("BINARY", h.intranet.url("s.bin", ipv6=True)))


@case("upload-fits-stream-http-ipv6-async", refuse=True)
def _(h):
    return h.upload(stream_votable("FITS", h.intranet.url("s.fits", ipv6=True)), "async")


@case("upload-fits-stream-http-localhost", refuse=True)
def _(h):
    return h.upload(stream_votable("FITS", h.intranet.url("s.fits", host="localhost")))


for _mode in ("sync", "async"):

    @case(f"upload-external-entity-file-{_mode}", refuse=True)
    def _(h, mode=_mode):
        dtd = f'<!DOCTYPE VOTABLE [<!ENTITY x SYSTEM "{h.marker_uri("text")}">]>'
        return h.upload(entity_votable(dtd, "&x;"), mode)


@case("upload-external-entity-etc-passwd", refuse=True)
def _(h):
    return h.upload(entity_votable('<!DOCTYPE VOTABLE [<!ENTITY x SYSTEM "/etc/passwd">]>', "&x;"))


@case("upload-external-entity-http", refuse=True)
def _(h):
    dtd = f'<!DOCTYPE VOTABLE [<!ENTITY x SYSTEM "{h.intranet.url("e.txt")}">]>'
    return h.upload(entity_votable(dtd, "&x;"))


@case("upload-parameter-entity-http-ipv6", refuse=True)
def _(h):
    url = h.intranet.url("p.dtd", ipv6=True)
    return h.upload(
        entity_votable(f'<!DOCTYPE VOTABLE [<!ENTITY % p SYSTEM "{url}"> %p;]>', "&secret;")
    )


@case("upload-external-dtd-http", refuse=True)
def _(h):
    url = h.intranet.url("v.dtd")
    return h.upload(entity_votable(f'<!DOCTYPE VOTABLE SYSTEM "{url}">', "&secret;"))


@case("upload-xinclude-file")
def _(h):
    cell = (
        '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        f'href="{h.marker_uri("text")}" parse="text"/>'
    )
    return h.upload(entity_votable("", cell))


@case("upload-billion-laughs", refuse=True)
def _(h):
    return h.upload(billion_laughs())


@case("upload-billion-laughs-async", refuse=True)
def _(h):
    return h.upload(billion_laughs(), "async")


@case("upload-quadratic-entity-blowup", refuse=True)
def _(h):
    return h.upload(quadratic_blowup())


@case("upload-internal-entity-small")
def _(h):
    # A harmless DTD: refusing or accepting it are both fine; it must not crash.
    return h.upload(entity_votable('<!DOCTYPE VOTABLE [<!ENTITY a "abc">]>', "&a;"))


@case("upload-gzip-bomb", refuse=True)
def _(h):
    return h.upload(bomb("gzip", 10 * UPLOAD_LIMIT))


@case("upload-bz2-bomb-async", refuse=True)
def _(h):
    return h.upload(bomb("bz2", 10 * UPLOAD_LIMIT), "async")


@case("upload-gzip-small")
def _(h):
    import gzip

    return h.upload(gzip.compress(entity_votable("", "abc")))


@case("upload-field-name-empty")
def _(h):
    return h.upload(
        votable('<FIELD name="" datatype="int"/>', "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>")
    )


@case("upload-field-names-empty-twice-async")
def _(h):
    fields = '<FIELD name="" datatype="int"/><FIELD name="" datatype="int"/>'
    doc = votable(fields, "<TABLEDATA><TR><TD>1</TD><TD>2</TD></TR></TABLEDATA>")
    return h.upload(doc, "async")


@case("upload-field-name-blank")
def _(h):
    return h.upload(
        votable('<FIELD name="  " datatype="int"/>', "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>")
    )


@case("upload-field-name-injection")
def _(h):
    name = "x&quot;; DROP TABLE demo.sky; --"
    doc = votable(
        f'<FIELD name="{name}" datatype="int"/>', "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>"
    )
    return h.upload(doc)


for _ser, _cut in (("BINARY2", 12), ("BINARY2", 11), ("BINARY", 10), ("BINARY", 2)):

    @case(f"upload-truncated-{_ser.lower()}-{_cut}-bytes", refuse=True)
    def _(h, ser=_ser, cut=_cut):
        return h.upload(truncated_votable(ser, cut))


@case("upload-truncated-binary2-async", refuse=True)
def _(h):
    return h.upload(truncated_votable("BINARY2", 12), "async")


@case("upload-deep-xml-60000-groups")
def _(h):
    return h.upload(deep_votable(60_000))


@case("upload-30000-fields")
def _(h):
    return h.upload(wide_votable(30_000))


@case("upload-30000-fields-same-name")
def _(h):
    return h.upload(wide_votable(30_000, name="a"))


@case("upload-fits-file-not-votable")
def _(h):
    return h.upload(fits_stream("abc"))


for _label, _uri in (
    ("file-etc-passwd", "file:///etc/passwd"),
    ("ftp", "ftp://127.0.0.1/x.vot"),
    ("bare-path", "/etc/passwd"),
):

    @case(f"upload-url-{_label}", refuse=True)
    def _(h, uri=_uri):
        return h.tap("SELECT * FROM TAP_UPLOAD.t", UPLOAD=f"t,{uri}")


for _label, _host in (
    ("127", "127.0.0.1"),
    ("localhost", "localhost"),
    ("127-short", "127.1"),
    ("decimal", "2130706433"),
    ("zero", "0.0.0.0"),
    ("ipv4-mapped-ipv6", "[::ffff:127.0.0.1]"),
):

    @case(f"upload-url-http-{_label}", refuse=True)
    def _(h, host=_host):
        uri = f"http://{host}:{h.intranet.port4}/u.vot"
        return h.tap("SELECT * FROM TAP_UPLOAD.t", UPLOAD=f"t,{uri}")


@case("upload-url-http-ipv6", refuse=True)
def _(h):
    return h.tap("SELECT * FROM TAP_UPLOAD.t", UPLOAD=f"t,{h.intranet.url('u.vot', ipv6=True)}")


@case("upload-url-http-127-async", refuse=True)
def _(h):
    return h.async_job(
        {"QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{h.intranet.url('u.vot')}"}
    )


# ---------------------------------------------------------------------------------------------
# ADQL depth and width


def _chain(kind: str, n: int) -> str:
    if kind == "or":
        return "SELECT TOP 1 id FROM demo.small WHERE " + " OR ".join(f"id = {i}" for i in range(n))
    if kind == "and":
        return "SELECT TOP 1 id FROM demo.small WHERE " + " AND ".join(
            f"id > {-i}" for i in range(n)
        )
    if kind == "plus":
        return "SELECT TOP 1 id" + " + 1" * n + " AS x FROM demo.small"
    if kind == "concat":
        return "SELECT TOP 1 label" + " || 'a'" * n + " AS x FROM demo.small"
    if kind == "union":
        return " UNION ".join(["SELECT id FROM demo.small"] * n)
    raise ValueError(kind)


for _kind in ("or", "and", "plus", "concat", "union"):
    for _n in (330, 3000):

        @case(f"adql-{_kind}-chain-{_n}")
        def _(h, kind=_kind, n=_n):
            return h.tap(_chain(kind, n))


@case("adql-or-chain-330-async")
def _(h):
    return h.async_job({"QUERY": _chain("or", 330)})


@case("adql-or-chain-330-query-page")
def _(h):
    return h.client.post("/query", data={"QUERY": _chain("or", 330)})


def _nested_from(n: int) -> str:
    q = "SELECT id FROM demo.small"
    for i in range(n):
        q = f"SELECT id FROM ({q}) AS t{i}"
    return q


def _nested_in(n: int) -> str:
    q = "SELECT id FROM demo.small"
    for _ in range(n):
        q = f"SELECT id FROM demo.small WHERE id IN ({q})"
    return q


for _n in (120, 1000):

    @case(f"adql-nested-from-subqueries-{_n}")
    def _(h, n=_n):
        return h.tap(_nested_from(n))

    @case(f"adql-nested-in-subqueries-{_n}")
    def _(h, n=_n):
        return h.tap(_nested_in(n))


@case("adql-nested-parentheses-5000")
def _(h):
    return h.tap("SELECT id FROM demo.small WHERE " + "(" * 5000 + "id = 1" + ")" * 5000)


@case("adql-nested-functions-1000")
def _(h):
    return h.tap("SELECT " + "ABS(" * 1000 + "id" + ")" * 1000 + " AS x FROM demo.small")


@case("adql-nested-unary-minus-5000")
def _(h):
    return h.tap("SELECT " + "- " * 5000 + "id AS x FROM demo.small")


@case("adql-top1-30000-columns")
def _(h):
    return h.tap("SELECT TOP 1 " + ", ".join(["ra"] * 30_000) + " FROM demo.sky")


@case("adql-nested-from-subqueries-120-query-page")
def _(h):
    return h.client.post("/query", data={"QUERY": _nested_from(120)})


@case("adql-nested-in-subqueries-120-async")
def _(h):
    return h.async_job({"QUERY": _nested_in(120)})


def _circle_polygon(n: int, radius_deg: float = 0.2) -> str:
    """``n`` vertices on a small circle round (150, 2), the orientation DALI wants."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ra = 150 + radius_deg * np.cos(t) / np.cos(np.radians(2))
    dec = 2 + radius_deg * np.sin(t)
    return " ".join(f"{a:.6f} {d:.6f}" for a, d in zip(ra[::-1], dec[::-1]))


def _zigzag_polygon(n: int) -> str:
    """``n`` vertices in random order round (150, 2): self-intersecting everywhere."""
    rng = np.random.default_rng(1)
    t = rng.permutation(np.linspace(0, 2 * np.pi, n, endpoint=False))
    return " ".join(f"{150 + 0.2 * np.cos(a):.6f} {2 + 0.2 * np.sin(a):.6f}" for a in t)


def _adql_polygon(text: str) -> str:
    coords = ", ".join(text.split())
    return (
        "SELECT COUNT(*) AS n FROM demo.sky WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        f"POLYGON('ICRS', {coords}))"
    )


@case("adql-polygon-5000-vertices")
def _(h):
    return h.tap(_adql_polygon(_circle_polygon(5000)))


@case("adql-polygon-5000-vertices-self-intersecting")
def _(h):
    return h.tap(_adql_polygon(_zigzag_polygon(5000)))


@case("adql-polygon-5000-vertices-async")
def _(h):
    return h.async_job({"QUERY": _adql_polygon(_circle_polygon(5000))})


@case("adql-polygon-at-vertex-cap")
def _(h):
    return h.tap(_adql_polygon(_circle_polygon(MAX_POLYGON_VERTICES)))


@case("adql-polygon-at-vertex-cap-self-intersecting")
def _(h):
    return h.tap(_adql_polygon(_zigzag_polygon(MAX_POLYGON_VERTICES)))


@case("adql-in-list-at-cap")
def _(h):
    values = ", ".join(str(i) for i in range(MAX_IN_LIST))
    return h.tap(f"SELECT COUNT(*) AS n FROM demo.sky WHERE object_id IN ({values})")


@case("adql-select-list-at-column-cap")
def _(h):
    return h.tap("SELECT TOP 1 " + ", ".join(["ra"] * MAX_SELECT_COLUMNS) + " FROM demo.sky")


@case("adql-in-list-100k-integers")
def _(h):
    values = ", ".join(str(i) for i in range(100_000))
    return h.tap(f"SELECT COUNT(*) AS n FROM demo.sky WHERE object_id IN ({values})")


@case("adql-in-list-100k-strings")
def _(h):
    values = ", ".join(f"'k{i}'" for i in range(100_000))
    return h.tap(f"SELECT COUNT(*) AS n FROM demo.sky WHERE kind IN ({values})")


@case("adql-query-3mb-comment")
def _(h):
    return h.tap("SELECT id FROM demo.small -- " + "x" * 3_000_000)


@case("adql-query-900kb-string-literal")
def _(h):
    return h.tap("SELECT id FROM demo.small WHERE label = '" + "x" * 900_000 + "'")


for _i, _expr in enumerate(
    (
        "POWER(COS(PI()), 0.5)",
        "POWER(-8, 1.0 / 3)",
        "SQRT(-1)",
        "LOG(0)",
        "LOG10(-1)",
        "1 / 0",
        "1.0 / 0.0",
        "MOD(1, 0)",
        "POWER(10, 400)",
        "EXP(1000000)",
        "ACOS(2)",
        "9223372036854775807 + 1",
        "-9223372036854775807 - 2",
        "99999999999999999999999999999999999999",
        "1e400",
        "ROUND(1.5, 2147483648)",
        "TRUNCATE(1e308, -400)",
        "RADIANS(1e308) * 1e308",
        "POWER(0, -1)",
    )
):

    @case(f"fold-{_i:02d}-" + re.sub(r"[^a-z0-9]+", "-", _expr.lower()).strip("-"))
    def _(h, expr=_expr):
        return h.tap(f"SELECT TOP 1 {expr} AS x FROM demo.small")


@case("fold-power-cos-pi-in-where")
def _(h):
    return h.tap("SELECT id FROM demo.small WHERE POWER(COS(PI()), 0.5) > 0")


@case("fold-circle-radius-1e308")
def _(h):
    return h.tap(
        "SELECT COUNT(*) AS n FROM demo.sky "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150, 2, 1e308))"
    )


@case("fold-point-nan")
def _(h):
    return h.tap(
        "SELECT COUNT(*) AS n FROM demo.sky "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', SQRT(-1), 2, 1))"
    )


for _label, _maxrec in (
    ("huge", "99999999999999999999999999"),
    ("negative", "-1"),
    ("float", "1e9"),
    ("nan", "nan"),
):

    @case(f"maxrec-{_label}")
    def _(h, maxrec=_maxrec):
        return h.tap("SELECT object_id FROM demo.sky", MAXREC=maxrec)


@case("adql-nul-byte-in-string")
def _(h):
    return h.tap("SELECT TOP 1 id FROM demo.small WHERE label = 'a\x00b'")


@case("adql-nul-byte-in-identifier")
def _(h):
    return h.tap('SELECT TOP 1 "id\x00x" FROM demo.small')


@case("adql-invalid-utf8-body")
def _(h):
    body = b"LANG=ADQL&QUERY=SELECT+id+FROM+demo.small+WHERE+label+%3D+%27%FF%FE%ED%A0%80%27"
    return h.client.post("/tap/sync", content=body, headers=_FORM)


@case("adql-invalid-utf8-query-string")
def _(h):
    return raw_get(
        h.port, "/tap/sync?LANG=ADQL&QUERY=SELECT+%FF%FE+FROM+demo.small", wait_s=BUDGET_S
    )


@case("adql-alias-200-chars")
def _(h):
    return h.tap(f"SELECT TOP 1 id AS {'a' * 200} FROM demo.small")


@case("adql-aliases-equal-in-first-63-bytes")
def _(h):
    return h.tap(f"SELECT TOP 1 id AS {'a' * 70}1, label AS {'a' * 70}2 FROM demo.small")


@case("upload-names-equal-in-first-63-bytes")
def _(h):
    doc = entity_votable("", "abc")
    a, b = "t" + "a" * 70 + "1", "t" + "a" * 70 + "2"
    files = {n: (f"{n}.vot", doc, "application/x-votable+xml") for n in ("x", "y")}
    query = f"SELECT * FROM TAP_UPLOAD.{a} AS p, TAP_UPLOAD.{b} AS q"
    return h.tap(query, UPLOAD=f"{a},param:x;{b},param:y", files=files)


@case("upload-5000-tables")
def _(h):
    doc = entity_votable("", "abc")
    upload = ";".join(f"t{i},param:x" for i in range(5000))
    files = {"x": ("x.vot", doc, "application/x-votable+xml")}
    return h.tap("SELECT * FROM TAP_UPLOAD.t0", UPLOAD=upload, files=files)


@case("upload-invalid-utf8-cell")
def _(h):
    return h.upload(
        entity_votable("", "a").replace(b"<TD>a</TD>", b"<TD>\xff\xfe\xed\xa0\x80</TD>")
    )


@case("upload-nul-byte-cell")
def _(h):
    doc = votable(
        '<FIELD name="s" datatype="char" arraysize="*"/>',
        '<BINARY><STREAM encoding="base64">AAAAA2EAYg==</STREAM></BINARY>',
    )
    return h.upload(doc)


@case("adql-top-huge")
def _(h):
    return h.tap("SELECT TOP 99999999999999999999999 object_id FROM demo.sky")


@case("adql-offset-huge")
def _(h):
    return h.tap("SELECT object_id FROM demo.sky ORDER BY object_id OFFSET 99999999999999999999999")


_RUNAWAY = "SELECT COUNT(*) AS n FROM demo.sky AS a, demo.sky AS b, demo.sky AS c"


@case("runaway-cross-join-sync")
def _(h):
    return h.tap(_RUNAWAY)


@case("runaway-cross-join-async-huge-duration")
def _(h):
    return h.async_job({"QUERY": _RUNAWAY, "EXECUTIONDURATION": "1000000000000"})


@case("storage-sort-spilling-to-disk")
def _(h):
    # A sort of 3 million of 9 million rows: DuckDB spills it (beyond the 128 MB memory cap).
    return h.tap(
        "SELECT SUM(k) AS s FROM (SELECT TOP 3000000 a.object_id * 100000 + b.object_id AS k "
        "FROM demo.sky AS a, demo.sky AS b ORDER BY a.ra - b.mag_r) AS t"
    )


# ---------------------------------------------------------------------------------------------
# writes and escapes through ADQL (the table must stay unchanged: last test)

for _label, _adql in (
    ("semicolon-drop", "SELECT * FROM demo.sky; DROP TABLE demo.sky"),
    ("semicolon-delete", "SELECT TOP 1 * FROM demo.sky; DELETE FROM demo.sky"),
    ("quoted-identifier-drop", 'SELECT TOP 1 "ra; DROP TABLE demo.sky; --" FROM demo.sky'),
    ("quoted-table-delete", 'SELECT * FROM "demo"."sky""; DELETE FROM demo.sky; --"'),
    ("insert", "INSERT INTO demo.sky SELECT * FROM demo.sky"),
    ("update", "UPDATE demo.sky SET ra = 0"),
    ("delete", "DELETE FROM demo.sky"),
    ("drop", "DROP TABLE demo.sky"),
    ("create-table-as", "CREATE TABLE demo.evil AS SELECT * FROM demo.sky"),
    ("cte-delete", "WITH d AS (DELETE FROM demo.sky RETURNING *) SELECT * FROM d"),
    ("copy-to-file", "COPY demo.sky TO '{tmp}/copied.csv'"),
    ("copy-select-to-file", "COPY (SELECT * FROM demo.sky) TO '{tmp}/copied.csv'"),
    ("copy-to-program", "COPY (SELECT 1) TO PROGRAM 'touch {tmp}/program-ran'"),
    ("attach", "ATTACH '{tmp}/attached.duckdb' AS evil"),
    ("pragma", "PRAGMA enable_external_access"),
    ("set-config", "SELECT set_config('default_transaction_read_only', 'off', false) AS x"),
    ("lo-import", "SELECT lo_import('/etc/passwd') AS x FROM demo.small"),
    ("pg-read-file", "SELECT pg_read_file('/etc/passwd') AS x FROM demo.small"),
    ("read-csv", "SELECT * FROM read_csv('/etc/passwd')"),
    ("read-text-marker", "SELECT * FROM read_text('{marker}')"),
    ("string-concat-read", "SELECT TOP 1 'x' || pg_read_file('/etc/passwd') AS x FROM demo.small"),
    (
        "union-current-setting",
        "SELECT id, label FROM demo.small UNION SELECT 1, current_setting('data_directory')",
    ),
    ("tap-schema-delete", "DELETE FROM TAP_SCHEMA.tables"),
    ("comment-newline-drop", "SELECT id FROM demo.small --\n; DROP TABLE demo.small"),
    ("block-comment-drop", "SELECT id FROM demo.small /* */; DROP TABLE demo.small"),
):

    @case(f"write-{_label}", refuse=True)
    def _(h, adql=_adql):
        return h.tap(adql.format(tmp=h.tmp, marker=h.markers["text"]))


for _label, _adql in (
    (
        "string-with-drop",
        "SELECT TOP 1 ra FROM demo.sky WHERE kind = 'x''; DROP TABLE demo.sky; --'",
    ),
    (
        "string-with-copy",
        "SELECT TOP 1 ra FROM demo.sky WHERE kind = 'COPY demo.sky TO ''/tmp/x'''",
    ),
    (
        "string-with-attach",
        "SELECT TOP 1 ra FROM demo.sky WHERE kind = '''; ATTACH ''x'' AS y; --'",
    ),
):

    @case(f"write-{_label}", ok=True)
    def _(h, adql=_adql):
        return h.tap(adql)  # a plain string literal: a valid query of 0 rows


@case("write-semicolon-drop-async", refuse=True)
def _(h):
    return h.async_job({"QUERY": "SELECT * FROM demo.small; DROP TABLE demo.small"})


@case("write-semicolon-drop-query-page", refuse=True)
def _(h):
    return h.client.post(
        "/query", data={"QUERY": "SELECT * FROM demo.small; DROP TABLE demo.small"}
    )


@case("write-upload-name-injection", refuse=True)
def _(h):
    doc = entity_votable("", "abc")
    files = {"t": ("t.vot", doc, "application/x-votable+xml")}
    return h.tap("SELECT * FROM TAP_UPLOAD.t", UPLOAD="t;DROP TABLE demo.sky,param:t", files=files)


@case("write-upload-shadows-published-name")
def _(h):
    doc = votable(
        '<FIELD name="object_id" datatype="long"/>', "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>"
    )
    files = {"sky": ("sky.vot", doc, "application/x-votable+xml")}
    return h.tap("SELECT * FROM TAP_UPLOAD.sky", UPLOAD="sky,param:sky", files=files)


# ---------------------------------------------------------------------------------------------
# bodies

_BODY_ENDPOINTS = {
    "tap-sync": ("/tap/sync", b"LANG=ADQL&QUERY=SELECT+id+FROM+demo.small"),
    "tap-async": ("/tap/async", b"LANG=ADQL&QUERY=SELECT+id+FROM+demo.small"),
    "soda": ("/soda/sync", b"ID=" + MAP.encode() + b"&CIRCLE=150+2+0.01"),
    "scs": ("/scs/demo.sky", b"RA=150&DEC=2&SR=0.1"),
    "sia": ("/sia/query", b"POS=CIRCLE+150+2+0.1"),
    "query": ("/query", b"QUERY=SELECT+id+FROM+demo.small"),
    "cone": ("/cone", b"TABLE=demo.sky&RA=150&DEC=2&SR=0.1"),
    "datalink": ("/datalink/links", b"ID=ivo%3A%2F%2Fskysense%2Fdemo.sky%3F1"),
}
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}

for _label, (_path, _prefix) in _BODY_ENDPOINTS.items():

    @case(f"body-20mb-content-length-{_label}", refuse=True)
    def _(h, path=_path, prefix=_prefix):
        body = b"".join(form_body(BIG_BODY, prefix))
        return h.client.post(path, content=body, headers=_FORM)

    @case(f"body-20mb-chunked-{_label}", refuse=True)
    def _(h, path=_path, prefix=_prefix):
        return h.client.post(path, content=form_body(BIG_BODY, prefix), headers=_FORM)


for _label, _path in (("tap-sync", "/tap/sync"), ("soda", "/soda/sync"), ("query", "/query")):

    @case(f"body-20mb-multipart-file-{_label}", refuse=True)
    def _(h, path=_path):
        files = {"t": ("t.vot", b"x" * BIG_BODY, "application/octet-stream")}
        return h.client.post(path, data={"QUERY": "SELECT id FROM demo.small"}, files=files)


@case("body-upload-just-over-limit", refuse=True)
def _(h):
    doc = entity_votable("", "x" * (UPLOAD_LIMIT + 10))
    return h.upload(doc)


@case("body-upload-just-over-limit-async", refuse=True)
def _(h):
    return h.upload(entity_votable("", "x" * (UPLOAD_LIMIT + 10)), "async")


@case("body-100k-form-fields-tap", refuse=True)
def _(h):
    body = b"LANG=ADQL&QUERY=SELECT+id+FROM+demo.small&" + b"&".join(
        b"f%d=1" % i for i in range(100_000)
    )
    return h.client.post("/tap/sync", content=body, headers=_FORM)


@case("body-100k-form-fields-sia")
def _(h):
    body = b"&".join(b"POS=CIRCLE+150+2+0.1" for _ in range(100_000))
    return h.client.post("/sia/query", content=body, headers=_FORM)


for _label, _path in (("tap-sync", "/tap/sync"), ("scs", "/scs/demo.sky"), ("soda", "/soda/sync")):

    @case(f"body-declared-1tb-{_label}", refuse=True)
    def _(h, path=_path):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            "\r\nContent-Length: 1000000000000\r\n\r\nRA=1&"
        ).encode()
        return raw_exchange(h.port, [head], wait_s=BUDGET_S)


# ---------------------------------------------------------------------------------------------
# slow and stalled connections (they run in the background while the other cases run)

_REQ = b"GET /tap/availability HTTP/1.1\r\nHost: x\r\n\r\n"
_POST_HEAD = (
    b"POST /tap/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
)

for _label, _parts, _pause in (
    ("idle-connection", [b""], 0.0),
    ("half-request-line", [b"GET /tap/avail"], 0.0),
    ("half-header-line", [b"GET /tap/availability HTTP/1.1\r\nHost: x\r\nX-Pad: abc"], 0.0),
    ("headers-then-half-body", [_POST_HEAD + b"Content-Length: 1000\r\n\r\nLANG=ADQL&QU"], 0.0),
    ("chunked-then-stall", [_POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nLANG="], 0.0),
    ("slowloris-headers", [bytes([b]) for b in _REQ[:-4] + b"\r\nX-A: " + b"a" * 200], 0.5),
    ("slow-body", [_POST_HEAD + b"Content-Length: 100000\r\n\r\n"] + [b"a"] * 400, 0.5),
):

    @case(f"stall-{_label}", refuse=True, budget_s=STALL_BUDGET_S, background=True)
    def _(h, parts=_parts, pause=_pause):
        return raw_exchange(h.port, parts, pause_s=pause, wait_s=STALL_BUDGET_S)


@case("stall-100-half-requests-open-while-querying", ok=True)
def _(h):
    with open_sockets(h.port, 100, b"GET /tap/avail"):
        return h.client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": ALIVE_ADQL})


@case("stall-connection-flood-then-recovers", ok=True)
def _(h):
    """More stalled connections than the server takes: while they last new clients may get
    503, but the header deadline must clear them so the server answers again."""
    with open_sockets(h.port, h.settings.max_connections + 20, b"GET /tap/avail"):
        time.sleep(CONNECTION_TIMEOUT_S + 2.0)
        return h.client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": ALIVE_ADQL})


# ---------------------------------------------------------------------------------------------
# SODA and SIA


def _soda(h, **params):
    from skysense.vo.sia import map_did

    return h.client.post("/soda/sync", data={"ID": map_did(MAP), **params})


@case("soda-polygon-5000-vertices")
def _(h):
    return _soda(h, POLYGON=_circle_polygon(5000))


@case("soda-pos-polygon-5000-vertices")
def _(h):
    return _soda(h, POS="POLYGON " + _circle_polygon(5000))


@case("soda-polygon-5000-vertices-self-intersecting")
def _(h):
    return _soda(h, POLYGON=_zigzag_polygon(5000))


@case("soda-polygon-50000-vertices")
def _(h):
    return _soda(h, POLYGON=_circle_polygon(50_000))


@case("soda-polygon-5000-vertices-get")
def _(h):
    from skysense.vo.sia import map_did

    query = urlencode({"ID": map_did(MAP), "POLYGON": _circle_polygon(5000)})
    return raw_get(h.port, "/soda/sync?" + query, wait_s=BUDGET_S)


@case("soda-polygon-at-vertex-cap")
def _(h):
    return _soda(h, POLYGON=_circle_polygon(MAX_POLYGON_VERTICES))


@case("soda-polygon-at-vertex-cap-self-intersecting")
def _(h):
    return _soda(h, POLYGON=_zigzag_polygon(MAX_POLYGON_VERTICES))


@case("sia-pos-polygon-at-vertex-cap")
def _(h):
    return h.client.post(
        "/sia/query", data={"POS": "POLYGON " + _circle_polygon(MAX_POLYGON_VERTICES)}
    )


@case("soda-circle-whole-sky")
def _(h):
    return _soda(h, CIRCLE="150 2 180")


@case("soda-10000-ids", refuse=True)
def _(h):
    body = "&".join(["ID=" + MAP] * 10_000) + "&CIRCLE=150+2+0.01"
    return h.client.post("/soda/sync", content=body.encode(), headers=_FORM)


@case("soda-id-path-traversal", refuse=True)
def _(h):
    return h.client.get(
        "/soda/sync", params={"ID": "../../../../etc/passwd", "CIRCLE": "150 2 0.01"}
    )


@case("soda-id-marker-path", refuse=True)
def _(h):
    return h.client.get("/soda/sync", params={"ID": str(h.markers["FITS"]), "CIRCLE": "150 2 0.01"})


@case("sia-pos-polygon-5000-vertices")
def _(h):
    return h.client.post("/sia/query", data={"POS": "POLYGON " + _circle_polygon(5000)})


@case("sia-pos-polygon-5000-vertices-self-intersecting")
def _(h):
    return h.client.post("/sia/query", data={"POS": "POLYGON " + _zigzag_polygon(5000)})


@case("datalink-1000-ids")
def _(h):
    body = "&".join(f"ID=ivo%3A%2F%2Fskysense%2Fdemo.sky%3F{i}" for i in range(1000))
    return h.client.post("/datalink/links", content=body.encode(), headers=_FORM)


@case("datalink-id-injection")
def _(h):
    ids = [
        "ivo://skysense/demo.sky?1'; DROP TABLE demo.sky; --",
        "ivo://skysense/demo.sky; DROP TABLE demo.sky?1",
        "ivo://skysense/../../etc/passwd?1",
        "ivo://skysense/maps?../../../../etc/passwd",
        f"ivo://skysense/maps?{h.markers['FITS']}",
        "ivo://skysense/tap_schema.tables?1",
        "ivo://skysense/demo.sky?" + "9" * 400,
    ]
    return h.client.get("/datalink/links", params={"ID": ids, "TABLE": "demo.sky"})


@case("datalink-table-injection")
def _(h):
    return h.client.get(
        "/datalink/links", params={"ID": "1", "TABLE": "demo.sky; DROP TABLE demo.sky"}
    )


@case("preview-traversal", refuse=True)
def _(h):
    return raw_get(h.port, "/preview/..%2F..%2F..%2Fetc%2Fpasswd.png", wait_s=BUDGET_S)


@case("sia-band-nan-inf")
def _(h):
    return h.client.get(
        "/sia/query",
        params={"BAND": "nan +Inf", "TIME": "-Inf 1e308", "MAXREC": "99999999999999999999"},
    )


# ---------------------------------------------------------------------------------------------
# paths, UWS and the other web routes

for _label, _path in (
    ("maps-traversal", "/maps/..%2F..%2F..%2F..%2Fetc%2Fpasswd.fits"),
    ("static-traversal", "/static/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
    ("static-dotdot", "/static/../../../../../../etc/passwd"),
    ("table-page-traversal", "/table/..%2F..%2Fetc%2Fpasswd"),
    ("job-traversal", "/tap/async/..%2F..%2F..%2Fetc%2Fpasswd/results/result"),
    ("result-id-traversal", "/tap/async/x/results/..%2F..%2Fetc%2Fpasswd"),
    ("tables-long-name", "/tap/tables/" + "a" * 100_000),
):

    @case(f"path-{_label}", refuse=True)
    def _(h, path=_path):
        return raw_get(h.port, path, wait_s=BUDGET_S)


@case("uws-quota-big-uploads", refuse=True, budget_s=2 * BUDGET_S)
def _(h):
    """Pending jobs with near-limit uploads until the server refuses one (at most twice the
    storage limit of all jobs)."""
    doc = entity_votable("", "x" * (UPLOAD_LIMIT - 1000))
    created = []
    try:
        for _ in range(2 * JOBS_STORAGE_LIMIT // UPLOAD_LIMIT):
            files = {"t": ("t.vot", doc, "application/x-votable+xml")}
            data = {"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}
            resp = h.client.post("/tap/async", data=data, files=files)
            if resp.status_code != 303:
                return resp
            created.append(resp.headers["location"])
        return resp  # never refused: a 303, which the checker reports
    finally:
        for url in created:
            with contextlib.suppress(httpx.HTTPError):
                h.client.delete(url)


for _label, _params in (
    ("wait-nan", {"WAIT": "nan"}),
    ("wait-inf", {"WAIT": "inf"}),
):

    @case(f"uws-{_label}")
    def _(h, params=_params):
        data = {"LANG": "ADQL", "QUERY": _RUNAWAY, "PHASE": "RUN", "EXECUTIONDURATION": "1"}
        created = h.client.post("/tap/async", data=data)
        url = created.headers["location"]
        try:
            return created, h.client.get(url, params=params)
        finally:
            h.client.delete(url)


for _label, _params in (
    ("destruction-year-9999", {"DESTRUCTION": "9999-12-31T23:59:59Z"}),
    ("destruction-garbage", {"DESTRUCTION": "x" * 10_000}),
    ("executionduration-nan", {"EXECUTIONDURATION": "nan"}),
    ("executionduration-inf", {"EXECUTIONDURATION": "inf"}),
    ("runid-1mb", {"RUNID": "r" * 1_000_000}),
):

    @case(f"uws-{_label}")
    def _(h, params=_params):
        data = {"LANG": "ADQL", "QUERY": "SELECT id FROM demo.small", **params}
        created = h.client.post("/tap/async", data=data)
        if created.status_code != 303:
            return created
        url = created.headers["location"]
        try:
            return created, h.client.get(url)
        finally:
            h.client.delete(url)


@case("uws-executionduration-endpoint-inf")
def _(h):
    created = h.client.post(
        "/tap/async", data={"LANG": "ADQL", "QUERY": "SELECT id FROM demo.small"}
    )
    url = created.headers["location"]
    try:
        return h.client.post(url + "/executionduration", data={"EXECUTIONDURATION": "1e400"})
    finally:
        h.client.delete(url)


@case("uws-1000-jobs-listed")
def _(h):
    return h.client.get("/tap/async", params={"PHASE": ["PENDING"] * 1000})


@case("uws-parameters-20mb-multipart", refuse=True)
def _(h):
    created = h.client.post(
        "/tap/async", data={"LANG": "ADQL", "QUERY": "SELECT id FROM demo.small"}
    )
    url = created.headers["location"]
    try:
        files = {"t": ("t.vot", b"x" * BIG_BODY, "application/octet-stream")}
        return h.client.post(url + "/parameters", data={"UPLOAD": "t,param:t"}, files=files)
    finally:
        h.client.delete(url)


@case("uws-job-list-last-huge")
def _(h):
    return h.client.get("/tap/async", params={"LAST": "9" * 400})


for _label, _params in (
    ("ra-nan", {"RA": "nan", "DEC": "2", "SR": "0.1"}),
    ("sr-1e308", {"RA": "150", "DEC": "2", "SR": "1e308"}),
    ("sr-whole-sky", {"RA": "150", "DEC": "2", "SR": "180"}),
    ("verb-huge", {"RA": "150", "DEC": "2", "SR": "0.1", "VERB": "9" * 400}),
):

    @case(f"scs-{_label}")
    def _(h, params=_params):
        return h.client.get("/scs/demo.sky", params=params)


@case("scs-table-name-injection", refuse=True)
def _(h):
    return h.client.get(
        h.url + "/scs/demo.sky%3B%20DROP%20TABLE%20demo.sky",
        params={"RA": "150", "DEC": "2", "SR": "0.1"},
    )


@case("cone-page-table-injection", refuse=True)
def _(h):
    return h.client.get(
        "/cone",
        params={"TABLE": "demo.sky; DROP TABLE demo.sky", "RA": "150", "DEC": "2", "SR": "0.1"},
    )


@case("cone-page-sr-1e308")
def _(h):
    return h.client.get(
        "/cone", params={"TABLE": "demo.sky", "RA": "150", "DEC": "2", "SR": "1e308"}
    )


@case("query-page-huge-page")
def _(h):
    return h.client.get(
        "/query",
        params={
            "QUERY": "SELECT object_id FROM demo.sky",
            "PAGE": "9" * 400,
            "PAGESIZE": "9" * 400,
        },
    )


# ---------------------------------------------------------------------------------------------
# afterwards


def test_published_tables_unchanged(hostile):
    """After every case: the same rows, checksums and tables; no file a write would create;
    for DuckDB, nothing beside the database file (spill files belong in the work folder)."""
    h = hostile
    after = h.snapshot()
    assert after == h.before
    assert after["n"] == 3000 and after["s_id"] == 3000 * 3001 / 2 and after["small"] == 3
    assert not [p for p in h.forbidden if p.exists()]
    if h.backend_name == "duckdb":
        beside = sorted(p.name for p in (h.tmp / "db").iterdir())
        assert set(beside) <= {"hostile.duckdb", "hostile.duckdb.wal"}, beside
        backend = h.app.state.backend
        spill = backend.query("SELECT current_setting('temp_directory') AS d").column(0)[0]
        assert Path(spill.as_py()).resolve().is_relative_to(Path(h.settings.workdir).resolve())
        cap = backend.query("SELECT current_setting('max_temp_directory_size') AS c")
        assert cap.column(0)[0].as_py().replace(" ", "") in ("64.0MiB", "61.0MiB", "64MB")
