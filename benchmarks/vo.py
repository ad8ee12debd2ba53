"""VO server benchmark: cone search through HTTP vs the bare database, vs PostgreSQL + Q3C.

On a simulated table (10 million rows, ``--quick`` 1 million; random positions in a 10 x 10 deg
patch at the equator, i.e. ~100 deg^2, plus a few columns):

- cone-search latency (p50, p95) through HTTP (Simple Cone Search, VERB=2, TABLEDATA, on a
  uvicorn server in a subprocess, httpx client with keep-alive) for 0.05 and 0.5 deg radii,
  against the bare DuckDB query (the same SQL the ADQL translator produces, on an open
  connection to a copy of the file, alternated cone by cone with the HTTP requests so both see
  the same machine load; warm caches) and against PostgreSQL with Q3C (``q3c_radial_query``
  on a table with a Q3C index, clustered on it and analysed; psycopg); the small cone also through TAP sync (the same cone in ADQL,
  which translates to the very SQL the bare query runs), and the HTTP floor (``GET
  /tap/availability`` with the same client) to show what HTTP alone costs;
- throughput with 1, 8 and 32 concurrent HTTP clients (small cones), against the bare DuckDB
  query run by as many threads;
- the same cones, throughput and cross-match on a server backed by PostgreSQL (issue #22),
  against the bare ``q3c_radial_query`` in the same run, and the server's peak RSS while it
  streams a 200,000 and a 2,000,000-row ``/tap/sync`` result (both backends);
- a 20,000-row upload cross-match (1 arcsec) through ``/tap/sync`` with an inline VOTable
  upload, against PostgreSQL + Q3C (``q3c_join`` after COPYing the 20,000 rows), with the pair
  count checked against :func:`skysense.catalog.match.pairs_within`;
- positional joins between published tables (10k x 2M at 1 arcsec, a 1M self-join at 2 arcsec)
  on DuckDB and PostgreSQL, from :mod:`benchmarks.vo_join`.

PostgreSQL comes from ``bash scripts/start-postgres`` (skipped with ``--no-postgres`` or when it
cannot start).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks._harness import ROOT, Row

__all__ = ["run", "add_arguments"]

PATCH_RA = (145.0, 155.0)
PATCH_DEC = (-5.0, 5.0)
TABLE = "bench.sky"


def add_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, default=None, help="table size (default 10M; 1M quick)")
    parser.add_argument("--queries", type=int, default=None, help="cones per radius")
    parser.add_argument("--seconds", type=float, default=None, help="per throughput level")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL + Q3C")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-join", action="store_true", help="skip the published-table joins")
    parser.add_argument(
        "--memory-rows",
        type=int,
        nargs="*",
        default=None,
        help="streamed result sizes whose server peak RSS is measured (default 200k and 2M)",
    )
    parser.add_argument(
        "--cone-sizes",
        default=None,
        help="run only the constant-density cone benchmark at these sizes "
        "(e.g. 1M,10M,100M; benchmarks/_vo_cone.py); its rows replace the earlier "
        "ones of that kind in results/vo.json, the other rows are kept",
    )
    parser.add_argument("--cone-queries", type=int, default=200, help="cones per size")
    parser.add_argument(
        "--cone-pg-max",
        type=int,
        default=10_000_000,
        help="largest size also published to PostgreSQL",
    )
    parser.add_argument(
        "--cone-chunk-rows",
        type=int,
        default=5_000_000,
        help="rows of one field of --cone-sizes (the table is published field by field)",
    )
    parser.add_argument(
        "--cone-no-duckdb", action="store_true", help="--cone-sizes on PostgreSQL+Q3C only"
    )
    parser.add_argument("--cone-work", default=None, help="work directory of --cone-sizes")
    parser.add_argument("--cone-keep", action="store_true", help="keep the DuckDB files")


def simulate(n: int, seed: int) -> pa.Table:
    """``n`` random positions uniform on the sphere inside the patch, plus a few columns."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(*PATCH_RA, n)
    s0, s1 = np.sin(np.radians(PATCH_DEC))
    dec = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
    return pa.table(
        {
            "object_id": pa.array(np.arange(n, dtype=np.int64)),
            "ra": ra,
            "dec": dec,
            "mag_r": rng.normal(23.0, 1.5, n).astype(np.float32),
            "f_spire_250": rng.lognormal(1.0, 1.0, n),
            "flag": rng.random(n) < 0.1,
        }
    )


META = {
    "columns": {
        "object_id": {"ucd": "meta.id;meta.main", "description": "object id"},
        "mag_r": {"unit": "mag", "ucd": "phot.mag;em.opt.R", "principal": True},
        "f_spire_250": {"unit": "mJy", "ucd": "phot.flux.density;em.IR.250um"},
    }
}


def cone_centres(k: int, seed: int, margin_deg: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return np.column_stack(
        [
            rng.uniform(PATCH_RA[0] + margin_deg, PATCH_RA[1] - margin_deg, k),
            rng.uniform(PATCH_DEC[0] + margin_deg, PATCH_DEC[1] - margin_deg, k),
        ]
    )


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(db: str, workdir: Path, info: dict | None = None):
    """uvicorn serving ``create_app(Settings(db))`` in a subprocess; yields the base URL (and
    puts the process id in ``info["pid"]``)."""
    import httpx

    port = free_port()
    # The production server of `skysense vo serve`: its protocol (header deadline), body
    # limits and connection caps are part of what is measured.
    code = (
        "from skysense.vo.app import create_app, stop_work\n"
        "from skysense.vo.serve import SkysenseServer, bind_socket, server_config\n"
        "from skysense.vo.settings import Settings\n"
        f"s = Settings(db={db!r}, workdir={str(workdir)!r}, maxrec_default=1_000_000,"
        " maxrec_hard=2_000_000, upload_limit_bytes=200_000_000, db_threads=2)\n"
        f"sock = bind_socket('127.0.0.1', {port})\n"
        "app = create_app(s)\n"
        "SkysenseServer(server_config(app, s), on_stop=lambda: stop_work(app))"
        ".run(sockets=[sock])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    if info is not None:
        info["pid"] = proc.pid
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the VO server exited during start-up")
            try:
                if httpx.get(url + "/tap/availability", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the VO server did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cone_sql(backend, ra, dec, r) -> str:
    """The SQL the server runs for a VERB=2 cone search (from the ADQL translator)."""
    from skysense.vo.scs import cone_adql, scs_columns
    from skysense.vo.sql import translate

    catalog = backend.catalog()
    table = catalog.tables[TABLE]
    adql = cone_adql(table, scs_columns(table, 2), ra, dec, r)
    tr = translate(adql, dialect=backend.dialect, catalog=catalog, maxrec=1_000_000)
    if tr.aux:
        raise RuntimeError("a single cone should not need helper tables")
    return tr.sql


def tap_cone_adql(ra: float, dec: float, r: float) -> str:
    """The TAP form of the VERB=2 cone search (same columns, same region)."""
    return (
        f"SELECT object_id, ra, dec, mag_r FROM {TABLE} WHERE "
        f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {float(ra)!r}, {float(dec)!r}, {r!r}))"
    )


def cone_getters(client, url: str, r: float):
    """(SCS, TAP sync) functions of (ra, dec) returning the response body of a cone of
    radius ``r`` deg through ``client``; a failed query raises."""

    def scs(ra, dec):
        resp = client.get(f"{url}/scs/{TABLE}", params={"RA": ra, "DEC": dec, "SR": r})
        if resp.status_code != 200 or b'name="Error"' in resp.content:
            raise RuntimeError(f"cone search failed: {resp.content[:500]!r}")
        return resp.content

    def tap(ra, dec):
        params = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": tap_cone_adql(ra, dec, r)}
        resp = client.get(f"{url}/tap/sync", params=params)
        if resp.status_code != 200 or b'value="ERROR"' in resp.content:
            raise RuntimeError(f"TAP query failed: {resp.content[:500]!r}")
        return resp.content

    return scs, tap


def interleaved_latency(
    url: str, bare_db: str, centres: np.ndarray, sqls: list[str], r: float, *, tap: bool = False
) -> dict[str, list]:
    """Per cone: the bare SQL on a read-only DuckDB connection (fetched as Arrow, like the
    server), then the same cone through HTTP (SCS, and with ``tap`` TAP sync too); all warmed
    first, alternated so that all see the same machine load. Returns lists keyed "http",
    "tap" (with ``tap``), "bare" (seconds) and "rows"."""
    import duckdb
    import httpx

    con = duckdb.connect(bare_db, read_only=True)
    con.execute("SET threads = 2")
    out: dict[str, list] = {"http": [], "tap": [], "bare": [], "rows": []}
    try:
        with httpx.Client(timeout=120) as client:
            get, get_tap = cone_getters(client, url, r)

            for (ra, dec), sql in zip(centres, sqls):  # warm both caches
                con.sql(sql).to_arrow_table()
                get(ra, dec)
                if tap:
                    get_tap(ra, dec)
            for (ra, dec), sql in zip(centres, sqls):
                t0 = time.perf_counter()
                n = con.sql(sql).to_arrow_table().num_rows
                t1 = time.perf_counter()
                body = get(ra, dec)
                t2 = time.perf_counter()
                if body.count(b"<TR>") != n:
                    raise RuntimeError(f"HTTP and bare row counts differ at ({ra}, {dec})")
                if tap:
                    t3 = time.perf_counter()
                    tap_body = get_tap(ra, dec)
                    out["tap"].append(time.perf_counter() - t3)
                    if tap_body.count(b"<TR>") != n:
                        raise RuntimeError(f"TAP and bare row counts differ at ({ra}, {dec})")
                out["bare"].append(t1 - t0)
                out["http"].append(t2 - t1)
                out["rows"].append(n)
    finally:
        con.close()
    return out


def http_floor(url: str, n: int = 300) -> float:
    """p50 (ms) of ``GET /tap/availability`` with the same client: HTTP + framework alone."""
    import httpx

    times = []
    with httpx.Client(timeout=60) as client:
        for i in range(n + 20):
            t0 = time.perf_counter()
            client.get(f"{url}/tap/availability").raise_for_status()
            if i >= 20:
                times.append(time.perf_counter() - t0)
    return pct(times, 50)


def bare_duckdb_throughput(db: str, sqls: list[str], clients: int, seconds: float) -> float:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    con.execute("SET threads = 2")
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(i):
        cur = con.cursor()
        k = i
        while time.perf_counter() < stop:
            # Fetched as the server does (a relation's zero-copy Arrow output), so the ratio
            # is the server's own overhead.
            cur.sql(sqls[k % len(sqls)]).to_arrow_table()
            k += clients
            done[i] += 1
        cur.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    con.close()
    return sum(done) / elapsed


def http_throughput(url: str, centres: np.ndarray, r: float, clients: int, seconds: float):
    """Completed cone searches per second with ``clients`` concurrent keep-alive clients.

    Clients connect (one warm-up request each) before the clock starts; requests still in
    flight at the deadline are counted, and the rate uses the time the last one finished.
    """
    import httpx

    done = [0] * clients
    errors = [0] * clients
    sessions = [httpx.Client(timeout=120) for _ in range(clients)]
    params = [{"RA": ra, "DEC": dec, "SR": r} for ra, dec in centres]
    for c in sessions:
        c.get(f"{url}/scs/{TABLE}", params=params[0])
    start = threading.Barrier(clients + 1)
    clock = {}

    def worker(i):
        client = sessions[i]
        k = i
        start.wait()
        while time.perf_counter() < clock["stop"]:
            resp = client.get(f"{url}/scs/{TABLE}", params=params[k % len(params)])
            if resp.status_code != 200 or b'name="Error"' in resp.content:
                errors[i] += 1
            k += clients
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    clock["stop"] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in sessions:
        c.close()
    return sum(done) / elapsed, sum(errors)


def upload_votable(n: int, data: pa.Table, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``n`` upload positions: half near catalogue sources (0.3 arcsec scatter), half random."""
    from astropy.table import Table

    rng = np.random.default_rng(seed + 2)
    idx = rng.choice(data.num_rows, n // 2, replace=False)
    ra_src = np.asarray(data["ra"])[idx]
    dec_src = np.asarray(data["dec"])[idx]
    jitter = 0.3 / 3600
    ra = np.concatenate(
        [ra_src + rng.normal(0, jitter, n // 2), rng.uniform(*PATCH_RA, n - n // 2)]
    )
    dec = np.concatenate(
        [dec_src + rng.normal(0, jitter, n // 2), rng.uniform(*PATCH_DEC, n - n // 2)]
    )
    t = Table({"src_id": np.arange(n, dtype=np.int64), "ra": ra, "dec": dec})
    buf = io.BytesIO()
    t.write(buf, format="votable", tabledata_format="binary2")
    return buf.getvalue(), ra, dec


XMATCH_ADQL = (
    "SELECT u.src_id, s.object_id, "
    "DISTANCE(POINT('ICRS', u.ra, u.dec), POINT('ICRS', s.ra, s.dec)) * 3600 AS sep_arcsec "
    f"FROM TAP_UPLOAD.src AS u JOIN {TABLE} AS s "
    "ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 1.0/3600))"
)


def http_xmatch(url: str, votable: bytes) -> tuple[float, int]:
    import httpx

    with httpx.Client(timeout=600) as client:
        t0 = time.perf_counter()
        resp = client.post(
            f"{url}/tap/sync",
            data={
                "REQUEST": "doQuery",
                "LANG": "ADQL",
                "QUERY": XMATCH_ADQL,
                "UPLOAD": "src,param:src",
                "FORMAT": "csv",
                "MAXREC": "1000000",
            },
            files={"src": ("src.xml", votable, "application/x-votable+xml")},
        )
        elapsed = time.perf_counter() - t0
    if resp.status_code != 200:
        raise RuntimeError(f"cross-match failed: {resp.text[:1000]}")
    return elapsed, resp.text.count("\n") - 1


def interleaved_latency_pg(url: str, pg_url: str, centres: np.ndarray, r: float) -> dict:
    """Per cone: the bare Q3C query (``q3c_radial_query``, the same columns, fetched whole with
    psycopg), then the same cone through HTTP SCS and TAP sync on the PostgreSQL-backed
    server; warmed first and alternated. Lists keyed "http", "tap", "bare" (s), "rows"."""
    import httpx
    import psycopg

    out: dict[str, list] = {"http": [], "tap": [], "bare": [], "rows": []}
    bare_sql = "SELECT object_id, ra, dec, mag_r FROM bench.sky WHERE q3c_radial_query(ra, dec, %s, %s, %s)"
    with psycopg.connect(pg_url, autocommit=True) as con, httpx.Client(timeout=120) as client:
        scs, tap = cone_getters(client, url, r)

        for ra, dec in centres[:10]:
            con.execute(bare_sql, (float(ra), float(dec), r)).fetchall()
            scs(ra, dec)
            tap(ra, dec)
        for ra, dec in centres:
            t0 = time.perf_counter()
            n = len(con.execute(bare_sql, (float(ra), float(dec), r)).fetchall())
            t1 = time.perf_counter()
            body = scs(ra, dec)
            t2 = time.perf_counter()
            tap_body = tap(ra, dec)
            t3 = time.perf_counter()
            if body.count(b"<TR>") != n or tap_body.count(b"<TR>") != n:
                raise RuntimeError(f"HTTP and bare Q3C row counts differ at ({ra}, {dec})")
            out["bare"].append(t1 - t0)
            out["http"].append(t2 - t1)
            out["tap"].append(t3 - t2)
            out["rows"].append(n)
    return out


def bare_q3c_throughput(pg_url: str, centres: np.ndarray, r: float, clients: int, seconds):
    """Bare ``q3c_radial_query`` cones per second from ``clients`` threads (one connection
    each)."""
    import psycopg

    done = [0] * clients
    cons = [psycopg.connect(pg_url, autocommit=True) for _ in range(clients)]
    stop = time.perf_counter() + seconds
    sql = "SELECT object_id, ra, dec, mag_r FROM bench.sky WHERE q3c_radial_query(ra, dec, %s, %s, %s)"

    def worker(i):
        k = i
        while time.perf_counter() < stop:
            ra, dec = centres[k % len(centres)]
            cons[i].execute(sql, (float(ra), float(dec), r)).fetchall()
            k += clients
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in cons:
        c.close()
    return sum(done) / elapsed


def _proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def streamed_peak_rss(db: str, workdir: Path, n_rows: int, binary2: bool = False) -> dict:
    """Peak RSS (VmHWM) of a fresh server process answering one ``/tap/sync`` query of
    ``n_rows`` rows (all columns), read by the client chunk by chunk and discarded."""
    import httpx

    info: dict = {}
    with server(db, workdir, info) as url:
        with httpx.Client(timeout=600) as client:  # warm: imports, catalogue, pools
            client.get(f"{url}/scs/{TABLE}", params={"RA": 150, "DEC": 0, "SR": 0.01})
        base_kb = _proc_kb(info["pid"], "VmRSS")
        params = {
            "LANG": "ADQL",
            "QUERY": f"SELECT TOP {n_rows} * FROM {TABLE}",
            "MAXREC": str(n_rows),
            "FORMAT": "votable/b2" if binary2 else "votable",
        }
        size = 0
        t0 = time.perf_counter()
        with httpx.Client(timeout=600) as client:
            with client.stream("GET", f"{url}/tap/sync", params=params) as resp:
                resp.raise_for_status()
                chunked = "content-length" not in resp.headers
                for chunk in resp.iter_raw():
                    size += len(chunk)
        elapsed = time.perf_counter() - t0
        peak_kb = _proc_kb(info["pid"], "VmHWM")
    return {
        "rows": n_rows,
        "bytes": size,
        "seconds": round(elapsed, 2),
        "chunked": chunked,
        "rss_before_mb": round(base_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "growth_mb": round((peak_kb - base_kb) / 1024, 1),
    }


def start_postgres() -> str | None:
    script = ROOT / "scripts" / "start-postgres"
    try:
        out = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=180, check=True
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"PostgreSQL unavailable: {exc}", file=sys.stderr)
        return None
    return out.stdout.strip().splitlines()[-1]


def _cone_scaling_only(opts):
    """``--cone-sizes``: the constant-density cone rows, with the other rows of the last full
    run (results/vo.json) kept."""
    import json

    from benchmarks._vo_cone import cone_scaling

    new_rows, new_meta = cone_scaling(opts, META)
    path = ROOT / "benchmarks" / "results" / "vo.json"
    old = json.loads(path.read_text()) if path.is_file() else {"rows": [], "meta": {}}
    # Earlier rows stay unless this run measured the same task (their notes say when and at
    # what load they were measured).
    tasks = {r.task for r in new_rows}
    kept = [Row(**{k: v for k, v in r.items() if k != "ratio"}) for r in old["rows"]
            if r["task"] not in tasks]  # fmt: skip
    meta = dict(old.get("meta", {}))
    new_meta["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if "cone_scaling" in meta:
        meta.setdefault("cone_scaling_previous", meta["cone_scaling"])
    meta["cone_scaling"] = new_meta
    return kept + new_rows, meta


def run(opts):
    from skysense.catalog.match import pairs_within

    if opts.cone_sizes:
        return _cone_scaling_only(opts)
    from skysense.vo.backends import open_backend
    from skysense.vo.publish import publish_arrow
    from skysense.vo.sql import translate

    n = opts.rows or (1_000_000 if opts.quick else 10_000_000)
    n_queries = opts.queries or (100 if opts.quick else 300)
    seconds = opts.seconds or (3.0 if opts.quick else 8.0)
    rows: list[Row] = []
    meta: dict = {
        "rows": n,
        "queries_per_radius": n_queries,
        "patch_deg2": 100,
        "load_avg_start": os.getloadavg(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="skysense-vo-bench-"))
    pg_db = None
    try:
        t0 = time.perf_counter()
        data = simulate(n, opts.seed)
        # Not "bench.duckdb": DuckDB names the catalog after the file stem, which would clash
        # with the "bench" schema (reported to the backend side).
        db = str(tmp / "vo_benchmark.duckdb")
        backend = open_backend(db)
        publish_arrow(backend, data, TABLE, description="benchmark sky", meta=META)
        meta["publish_duckdb_s"] = round(time.perf_counter() - t0, 1)
        centres = cone_centres(n_queries, opts.seed)
        sqls = {r: [cone_sql(backend, ra, dec, r) for ra, dec in centres] for r in (0.05, 0.5)}
        backend.close()
        meta["example_sql"] = sqls[0.05][0]

        # The server holds the database file; bare queries read a copy of it.
        bare_db = str(tmp / "vo_benchmark_copy.duckdb")
        shutil.copyfile(db, bare_db)
        bare_tp = {c: bare_duckdb_throughput(db, sqls[0.05], c, seconds) for c in (1, 8, 32)}

        pg: dict = {}
        pg_url = None
        if not opts.no_postgres:
            pg = bench_postgres(data, centres, tmp, opts.seed)
            pg_db = pg.pop("database", None)
            pg_url = pg.pop("url", None)
            if pg:
                meta["postgres_q3c"] = pg.get("q3c")
                meta["postgres_clustered_q3c_s"] = pg.get("cluster_s")

        votable, up_ra, up_dec = upload_votable(20_000, data, opts.seed)
        # The TAP form of the small cone translates to the very SQL the bare query runs.
        backend = open_backend(db)
        tap_sql = [
            translate(
                tap_cone_adql(ra, dec, 0.05),
                dialect="duckdb",
                catalog=backend.catalog(),
                maxrec=1_000_000,
            ).sql
            for ra, dec in centres[:20]
        ]
        backend.close()
        meta["tap_sql_equals_bare_sql"] = tap_sql == sqls[0.05][:20]
        with server(db, tmp / "work") as url:
            lat = {
                r: interleaved_latency(url, bare_db, centres, sqls[r], r, tap=r == 0.05)
                for r in (0.05, 0.5)
            }
            meta["load_avg_latency"] = os.getloadavg()
            meta["http_floor_p50_ms"] = http_floor(url)
            tp = {c: http_throughput(url, centres, 0.05, c, seconds) for c in (1, 8, 32)}
            xm_times = []
            for _ in range(3):
                elapsed, n_pairs = http_xmatch(url, votable)
                xm_times.append(elapsed)

        # The same measurements on a server backed by PostgreSQL (issue #22), against the bare
        # Q3C query in the same run.
        pg_http: dict = {}
        if pg_url is not None and pg.get("q3c"):
            with server(pg_url, tmp / "work_pg") as url:
                pg_http["lat"] = {
                    r: interleaved_latency_pg(url, pg_url, centres, r) for r in (0.05, 0.5)
                }
                meta["load_avg_latency_pg"] = os.getloadavg()
                pg_http["tp"] = {
                    c: http_throughput(url, centres, 0.05, c, seconds) for c in (1, 8, 32)
                }
                pg_http["xmatch"] = min(http_xmatch(url, votable)[0] for _ in range(3))
                meta["xmatch_pairs_http_pg"] = http_xmatch(url, votable)[1]
            pg_http["bare_tp"] = {
                c: bare_q3c_throughput(pg_url, centres, 0.05, c, seconds) for c in (1, 8, 32)
            }
        memory_rows = opts.memory_rows if opts.memory_rows is not None else [200_000, 2_000_000]
        memory_rows = [m for m in memory_rows if m <= n]
        for label, target in (("duckdb", db), ("postgresql", pg_url)):
            if target is None:
                continue
            meta[f"streamed_memory_{label}"] = [
                streamed_peak_rss(target, tmp / f"work_mem_{label}", m) for m in memory_rows
            ]
        for r in (0.05, 0.5) if pg_http else ():
            got = pg_http["lat"][r]
            mean_rows = float(np.mean(got["rows"]))
            for key, what in (("http", "HTTP SCS"), ("tap", "HTTP TAP sync")):
                for q in (50, 95):
                    rows.append(
                        Row(
                            task=f"PostgreSQL backend: cone r={r} deg p{q} ({what} vs bare Q3C)",
                            skysense=pct(got[key], q),
                            peer=pct(got["bare"], q),
                            peer_name="bare q3c_radial_query (psycopg fetchall)",
                            unit="ms",
                            notes=f"{mean_rows:.0f} rows/cone",
                        )
                    )
            meta[f"pg_overhead_p50_r{r}"] = pct(got["http"], 50) / pct(got["bare"], 50)
            meta[f"pg_overhead_tap_p50_r{r}"] = pct(got["tap"], 50) / pct(got["bare"], 50)
        for c in (1, 8, 32) if pg_http else ():
            rate, errors = pg_http["tp"][c]
            rows.append(
                Row(
                    task=f"PostgreSQL backend: throughput {c} clients, r=0.05 (HTTP vs bare Q3C)",
                    skysense=rate,
                    peer=pg_http["bare_tp"][c],
                    peer_name="bare q3c_radial_query threads",
                    unit="req/s",
                    higher_is_better=True,
                    notes=f"{errors} errors",
                )
            )
        if pg_http:
            rows.append(
                Row(
                    task="PostgreSQL backend: upload cross-match 20k x table, 1 arcsec (HTTP)",
                    skysense=pg_http["xmatch"],
                    peer=pg.get("xmatch_s"),
                    peer_name="PostgreSQL q3c_join (COPY + join)",
                    unit="s",
                    notes=f"{meta['xmatch_pairs_http_pg']} pairs",
                )
            )
        for r in (0.05, 0.5):
            times, b_times, counts = lat[r]["http"], lat[r]["bare"], lat[r]["rows"]
            mean_rows = float(np.mean(counts))
            for q in (50, 95):
                rows.append(
                    Row(
                        task=f"cone r={r} deg p{q} (HTTP SCS vs bare DuckDB)",
                        skysense=pct(times, q),
                        peer=pct(b_times, q),
                        peer_name="bare DuckDB SQL",
                        unit="ms",
                        notes=f"{mean_rows:.0f} rows/cone",
                    )
                )
                if pg:
                    rows.append(
                        Row(
                            task=f"cone r={r} deg p{q} (HTTP SCS vs PostgreSQL+Q3C)",
                            skysense=pct(times, q),
                            peer=pct(pg["latency"][r], q),
                            peer_name="PostgreSQL q3c_radial_query",
                            unit="ms",
                            notes=f"{mean_rows:.0f} rows/cone",
                        )
                    )
            meta[f"overhead_p50_r{r}"] = pct(times, 50) / pct(b_times, 50)
            if lat[r]["tap"]:
                for q in (50, 95):
                    rows.append(
                        Row(
                            task=f"cone r={r} deg p{q} (HTTP TAP sync vs bare DuckDB)",
                            skysense=pct(lat[r]["tap"], q),
                            peer=pct(b_times, q),
                            peer_name="bare DuckDB SQL",
                            unit="ms",
                            notes=f"{mean_rows:.0f} rows/cone, TABLEDATA",
                        )
                    )
                meta[f"overhead_tap_p50_r{r}"] = pct(lat[r]["tap"], 50) / pct(b_times, 50)
        for c in (1, 8, 32):
            rate, errors = tp[c]
            rows.append(
                Row(
                    task=f"throughput {c} clients, r=0.05 (HTTP vs bare DuckDB threads)",
                    skysense=rate,
                    peer=bare_tp[c],
                    peer_name="bare DuckDB",
                    unit="req/s",
                    higher_is_better=True,
                    notes=f"{errors} errors",
                )
            )
        # Independent check of the cross-match: all pairs within 1 arcsec by KD-tree.
        sel = np.asarray(data["ra"]) > 0  # the whole table
        i1, _, _ = pairs_within(
            up_ra, up_dec, np.asarray(data["ra"])[sel], np.asarray(data["dec"])[sel], 1.0
        )
        meta["xmatch_pairs_http"] = n_pairs
        meta["xmatch_pairs_kdtree"] = int(len(i1))
        rows.append(
            Row(
                task="upload cross-match 20k x table, 1 arcsec (HTTP /tap/sync)",
                skysense=min(xm_times),
                peer=pg.get("xmatch_s") if pg else None,
                peer_name="PostgreSQL q3c_join (COPY + join)" if pg else "",
                unit="s",
                notes=f"{n_pairs} pairs (KD-tree: {len(i1)})",
            )
        )
        # Published-table joins (issue #23) beside the upload join: benchmarks/vo_join.py.
        from benchmarks.vo_join import join_rows

        if not opts.no_join:
            join, meta["published_join"] = join_rows(opts)
            rows.extend(join)
        meta["load_avg_end"] = os.getloadavg()
        return rows, meta
    finally:
        if pg_db is not None:
            drop_pg_database(*pg_db)
        shutil.rmtree(tmp, ignore_errors=True)


def drop_pg_database(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as con:
        con.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        con.execute(f'DROP DATABASE IF EXISTS "{name}"')


def bench_postgres(data: pa.Table, centres: np.ndarray, tmp: Path, seed: int) -> dict:
    """Publish into a fresh PostgreSQL database and time Q3C cones and a Q3C join."""
    import urllib.parse

    import psycopg

    from skysense.vo.backends import open_backend
    from skysense.vo.publish import publish_arrow

    dsn = start_postgres()
    if dsn is None:
        return {}
    name = f"skysense_bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(dsn)._replace(path=f"/{name}"))
    out: dict = {"database": (dsn, name), "url": url}
    backend = open_backend(url)
    t0 = time.perf_counter()
    publish_arrow(backend, data, TABLE, description="benchmark sky", meta=META)
    out["publish_s"] = time.perf_counter() - t0
    out["q3c"] = backend.catalog().tables[TABLE].q3c
    backend.close()
    if not out["q3c"]:
        return out
    cols = "object_id, ra, dec, mag_r"
    latency = {}
    with psycopg.connect(url, autocommit=True) as con:
        # Q3C's recommended tuning: the table clustered on its Q3C index, then analysed.
        t0 = time.perf_counter()
        index = con.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'bench' AND tablename = 'sky' "
            "AND indexdef LIKE '%q3c_ang2ipix%'"
        ).fetchone()[0]
        con.execute(f'CLUSTER bench.sky USING "{index}"')
        con.execute("ANALYZE bench.sky")
        out["cluster_s"] = time.perf_counter() - t0
        for r in (0.05, 0.5):
            times = []
            for i, (ra, dec) in enumerate(centres):
                t0 = time.perf_counter()
                con.execute(
                    f"SELECT {cols} FROM bench.sky WHERE q3c_radial_query(ra, dec, %s, %s, %s)",
                    (float(ra), float(dec), r),
                ).fetchall()
                if i >= 3:
                    times.append(time.perf_counter() - t0)
            latency[r] = times
        out["latency"] = latency
        _, up_ra, up_dec = upload_votable(20_000, data, seed)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            with con.transaction():
                con.execute(
                    "CREATE TEMP TABLE up (src_id bigint, ra float8, dec float8) ON COMMIT DROP"
                )
                with con.cursor().copy("COPY up FROM STDIN") as copy:
                    for i, (a, d) in enumerate(zip(up_ra, up_dec)):
                        copy.write_row((i, float(a), float(d)))
                con.execute("ANALYZE up")
                con.execute(
                    "SELECT u.src_id, s.object_id FROM up u JOIN bench.sky s "
                    "ON q3c_join(u.ra, u.dec, s.ra, s.dec, 1.0/3600)"
                ).fetchall()
            best = min(best, time.perf_counter() - t0)
        out["xmatch_s"] = best
    return out
