"""Cone latency against table size at a constant sky density (issue #19), for ``benchmarks/vo.py``.

``python -m benchmarks vo --cone-sizes 1M,10M,100M``: for each size a table of that many rows
at HELP's density (:data:`DENSITY_DEG2` per deg^2, so a 0.05 deg cone holds the same ~790 rows
at every size and only the area grows: 10, 100, 1000 deg^2) is published incrementally, one
field of at most ``--cone-chunk-rows`` (default :data:`CHUNK_ROWS`) rows at a time
(``Backend.replace_rows``: the driver holds one field), into DuckDB (native table, each field
sorted by the HEALPix column, with its blocks: :class:`skysense.vo.hpx.BlockIndex`) and, up to
``--cone-pg-max`` rows, into PostgreSQL with Q3C. DuckDB is measured twice on the same file:
``after`` (the cone SQL names its blocks) and ``before`` (the blocks index dropped: the SQL,
rows and row groups of the code before blocks). Then, per backend and variant:

* DuckDB: the row groups the cone SQL scans (its profile's ``row_groups_scanned``, 60 cones);
* the cone path split in this process (warm, one thread): parameters and ADQL text,
  translation, the database query, VOTable writing, per cone (CPU ms of this thread and wall);
* HTTP Simple Cone Search (VERB=2) on the production server in a subprocess (keep-alive
  client), p50/p95 wall per request, and the server process's CPU per cone (user+system,
  from ``/proc``), which the load of the shared machine inflates far less than wall time.

Every figure carries the 1-minute load average before and after it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks._harness import Row

__all__ = ["cone_scaling", "DENSITY_DEG2", "CHUNK_ROWS"]

#: Rows per deg^2: HELP's masterlists hold 171M objects over ~1,270 deg^2 (135,000 per deg^2).
DENSITY_DEG2 = 100_000.0
#: Rows of one published field (one ``replace_rows`` call).
CHUNK_ROWS = 5_000_000
DEC_BAND = (-5.0, 5.0)
RA0 = 10.0
RADIUS_DEG = 0.05
TABLE = "bench.sky"


def _count(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1e3, "m": 1e6}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def _band_area_per_ra_deg() -> float:
    """deg^2 of the declination band per degree of RA."""
    s0, s1 = np.sin(np.radians(DEC_BAND))
    return float(np.degrees(s1 - s0))


def ra_width(n: int) -> float:
    """RA extent (deg) of ``n`` rows at :data:`DENSITY_DEG2` in the band."""
    return n / DENSITY_DEG2 / _band_area_per_ra_deg()


def chunk(n: int, k: int, rows: int, seed: int, chunk_rows: int = CHUNK_ROWS) -> pa.Table:
    """Field ``k`` (rows ``k*chunk_rows`` on): uniform on the sphere in its own RA stripe."""
    rng = np.random.default_rng([seed, k])
    lo = RA0 + ra_width(k * chunk_rows)
    ra = rng.uniform(lo, lo + ra_width(rows), rows)
    s0, s1 = np.sin(np.radians(DEC_BAND))
    dec = np.degrees(np.arcsin(rng.uniform(s0, s1, rows)))
    return pa.table(
        {
            "object_id": pa.array(np.arange(k * chunk_rows, k * chunk_rows + rows, dtype=np.int64)),
            "ra": ra,
            "dec": dec,
            "mag_r": rng.normal(23.0, 1.5, rows).astype(np.float32),
            "f_spire_250": rng.lognormal(1.0, 1.0, rows),
            "flag": rng.random(rows) < 0.1,
            "field": pa.array([f"f{k:03d}"] * rows, pa.string()),
        }
    )


def publish_chunks(backend, n: int, seed: int, meta: dict, chunk_rows: int = CHUNK_ROWS) -> float:
    """Publish ``n`` rows field by field (``chunk_rows`` a field); returns the wall time (s).

    Every field goes through ``replace_rows`` (the first too,
    :func:`skysense.vo.publish.publish_arrow_field`), as ``skysense vo publish --field`` does,
    so that the table has the blocks of an incremental publish."""
    from skysense.vo.publish import publish_arrow_field

    t0 = time.perf_counter()
    for k, start in enumerate(range(0, n, chunk_rows)):
        data = chunk(n, k, min(chunk_rows, n - start), seed, chunk_rows)
        publish_arrow_field(backend, data, TABLE, f"f{k:03d}", description="cone scaling",
                            meta=meta, ra="ra", dec="dec")  # fmt: skip
    return time.perf_counter() - t0


def centres(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 7)
    margin = 2 * RADIUS_DEG
    return np.column_stack(
        [
            rng.uniform(RA0 + margin, RA0 + ra_width(n) - margin, k),
            rng.uniform(DEC_BAND[0] + margin, DEC_BAND[1] - margin, k),
        ]
    )


def split_profile(backend, settings, points: np.ndarray) -> dict:
    """Per cone, in this process (warm; CPU ms of this thread, wall ms): the parameters and
    ADQL text, the rows as the server gets them (:func:`skysense.vo.scs.cone_rows`; on DuckDB
    the HEALPix road), the same rows through ADQL translation and the database (the road
    before #19 on DuckDB, still PostgreSQL's), and the VOTable."""
    from types import SimpleNamespace

    from skysense.vo import adql
    from skysense.vo.scs import cone_rows, parse_cone, scs_columns, tabledata_votable

    adql.warm_up()
    state = SimpleNamespace(backend=backend, settings=settings)
    maxrec = settings.maxrec_default
    steps = ("parameters", "rows", "rows_via_adql", "votable")
    cpu = {s: [] for s in steps}
    wall = {s: [] for s in steps}
    rows = []
    for rep in range(2):  # the first pass warms the caches
        for ra, dec in points:
            marks = [(time.thread_time(), time.perf_counter())]
            ra_d, dec_d, sr = parse_cone(str(ra), str(dec), str(RADIUS_DEG))
            table = backend.catalog().tables[TABLE]
            cols = scs_columns(table, 2)
            marks.append((time.thread_time(), time.perf_counter()))
            result, infos, _ = cone_rows(state, table, cols, ra_d, dec_d, sr, maxrec)
            marks.append((time.thread_time(), time.perf_counter()))
            ref = cone_rows(state, table, cols, ra_d, dec_d, sr, maxrec, adql=True)[0]
            marks.append((time.thread_time(), time.perf_counter()))
            tabledata_votable(result, infos)
            marks.append((time.thread_time(), time.perf_counter()))
            if ref.num_rows != result.num_rows:
                raise RuntimeError(f"cone ({ra}, {dec}): {result.num_rows} vs {ref.num_rows} rows")
            if rep:
                rows.append(result.num_rows)
                for i, s in enumerate(steps):
                    cpu[s].append(marks[i + 1][0] - marks[i][0])
                    wall[s].append(marks[i + 1][1] - marks[i][1])
    out = {"rows_median": float(np.median(rows))}
    for s in steps:
        out[f"{s}_cpu_ms_p50"] = round(float(np.median(cpu[s])) * 1e3, 3)
        out[f"{s}_wall_ms_p50"] = round(float(np.median(wall[s])) * 1e3, 3)
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_cones(target: str, workdir: Path, points: np.ndarray) -> dict:
    """SCS through the production server: wall per request, server CPU per cone."""
    import httpx

    from benchmarks.vo import server

    info: dict = {}
    times, rows = [], []
    with server(target, workdir, info) as url, httpx.Client(timeout=120) as client:

        def get(ra, dec):
            params = {"RA": ra, "DEC": dec, "SR": RADIUS_DEG}
            resp = client.get(f"{url}/scs/{TABLE}", params=params)
            if resp.status_code != 200 or b'name="Error"' in resp.content:
                raise RuntimeError(f"cone search failed: {resp.content[:300]!r}")
            return resp.content

        for ra, dec in points:  # warm
            get(ra, dec)
        load0 = os.getloadavg()[0]
        cpu0 = _cpu_seconds(info["pid"])
        for ra, dec in points:
            t0 = time.perf_counter()
            body = get(ra, dec)
            times.append(time.perf_counter() - t0)
            rows.append(body.count(b"<TR>"))
        cpu = _cpu_seconds(info["pid"]) - cpu0
        load1 = os.getloadavg()[0]
    ms = np.asarray(times) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "server_cpu_ms_per_cone": round(cpu / len(points) * 1e3, 2),
        "rows_median": float(np.median(rows)),
        "n": len(points),
        "load": [round(load0, 2), round(load1, 2)],
    }


def _pg_database():
    """A fresh PostgreSQL database (admin DSN, name, URL), or None."""
    import urllib.parse

    import psycopg

    from benchmarks.vo import start_postgres

    dsn = start_postgres()
    if dsn is None:
        return None
    name = f"skysense_cone_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(dsn)._replace(path=f"/{name}"))
    return dsn, name, url


def row_groups_read(db: str, sqls: list[str], out: Path) -> dict:
    """Row groups DuckDB scans for each SQL (its JSON profile's ``row_groups_scanned``)."""
    import json

    import duckdb

    con = duckdb.connect(db, read_only=True)
    try:
        con.execute("PRAGMA enable_profiling='json'")
        con.execute("SET profiling_output = ?", [str(out)])
        got, total = [], 0
        for sql in sqls:
            con.execute(sql).fetchall()
            nodes = json.loads(out.read_text())["operator"]
            while nodes and nodes[0].get("type") != "TABLE_SCAN":
                nodes = nodes[0].get("children", [])
            got.append(nodes[0]["row_groups_scanned"])
            total = nodes[0]["total_row_groups_to_scan"]
    finally:
        con.close()
    return {"median": float(np.median(got)), "p95": float(np.percentile(got, 95)),
            "max": int(max(got)), "of": int(total), "cones": len(got)}  # fmt: skip


def _measure(opts, n, label, target, variant, points, root, meta_columns) -> dict:
    """One backend at one size: publish (``after``; DuckDB with the blocks of an incremental
    publish) or drop the blocks of that table (``before``: the same rows, row groups and SQL
    as before blocks existed), then the row groups a cone reads (DuckDB), the in-process split
    and the HTTP cones."""
    from skysense.vo.backends import open_backend
    from skysense.vo.scs import cone_hpx_sql, scs_columns
    from skysense.vo.settings import Settings

    run = {"backend": label, "variant": variant, "rows": n, "fields": -(-n // opts.cone_chunk_rows),
           "area_deg2": round(n / DENSITY_DEG2, 1), "load_before": round(os.getloadavg()[0], 2)}  # fmt: skip
    backend = open_backend(target)
    if variant == "after":
        run["publish_s"] = round(
            publish_chunks(backend, n, opts.seed, meta_columns, opts.cone_chunk_rows), 1
        )
    else:
        backend.close()
        import duckdb

        with duckdb.connect(target) as con:
            con.execute("DELETE FROM _skysense_hpx_blocks WHERE table_name = ?", [TABLE])
        backend = open_backend(target)
    if label == "DuckDB":
        table = backend.catalog().tables[TABLE]
        cols = scs_columns(table, 2)
        sqls = [cone_hpx_sql(backend, table, cols, ra, dec, RADIUS_DEG) for ra, dec in points[:60]]
        run["blocks"] = "_blk" in sqls[0]
        backend.close()
        run["row_groups_read"] = row_groups_read(target, sqls, root / "profile.json")
        backend = open_backend(target)
    settings = Settings(db=target, workdir=str(root / "work"), db_threads=2,
                        maxrec_default=1_000_000, maxrec_hard=2_000_000)  # fmt: skip
    backend.harden(memory_limit_mb=settings.memory_limit_mb, threads=2)
    run["split"] = split_profile(backend, settings, points[:100])
    backend.close()
    run["http"] = http_cones(target, root / f"work_{label[:4]}", points)
    run["load_after"] = round(os.getloadavg()[0], 2)
    return run


def _rows(run: dict) -> list[Row]:
    h, n, label = run["http"], run["rows"], run["backend"]
    if label == "DuckDB":
        label += ", field blocks" if run["variant"] == "after" else ", no blocks (before)"
    groups = ""
    if "row_groups_read" in run:
        g = run["row_groups_read"]
        groups = f", row groups read median {g['median']:g} max {g['max']} of {g['of']}"
    return [Row(f"VO SCS cone {RADIUS_DEG} deg p{q}, {label}, {n:.0e} rows "
                f"({DENSITY_DEG2:.0f}/deg2, {run['fields']} fields)", h[f"p{q}_ms"], None,
                unit="ms", notes=f"{h['rows_median']:.0f} rows/cone, server CPU "
                f"{h['server_cpu_ms_per_cone']} ms/cone{groups}, load "
                f"{h['load'][0]}/{h['load'][1]}", extra={"rows": n, "run": run})
            for q in (50, 95)]  # fmt: skip


def cone_scaling(opts, meta_columns: dict) -> tuple[list[Row], dict]:
    """Rows and meta of the constant-density cone benchmark (see the module docstring)."""
    from benchmarks.vo import drop_pg_database

    sizes = [_count(s) for s in opts.cone_sizes.split(",")]
    rows: list[Row] = []
    meta: dict = {"density_deg2": DENSITY_DEG2, "radius_deg": RADIUS_DEG,
                  "chunk_rows": opts.cone_chunk_rows,
                  "dec_band": DEC_BAND, "queries": opts.cone_queries, "sizes": sizes,
                  "runs": []}  # fmt: skip
    root = Path(opts.cone_work) if opts.cone_work else Path(tempfile.mkdtemp(prefix="vo-cone-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        for n in sizes:
            points = centres(n, opts.cone_queries, opts.seed)
            targets = (
                [] if opts.cone_no_duckdb else [("DuckDB", str(root / f"cone_{n}.duckdb"), None)]
            )
            if not opts.no_postgres and n <= opts.cone_pg_max:
                pg = _pg_database()
                if pg is not None:
                    targets.append(("PostgreSQL+Q3C", pg[2], pg[:2]))
            for label, target, pg_admin in targets:
                try:
                    variants = ["after", "before"] if pg_admin is None else ["after"]
                    for variant in variants:
                        run = _measure(opts, n, label, target, variant, points, root, meta_columns)
                        meta["runs"].append(run)
                        print(f"  cone scaling {label} {variant} {n:,}: {run}", flush=True)
                        rows.extend(_rows(run))
                finally:
                    if pg_admin is not None:
                        drop_pg_database(*pg_admin)
            if not opts.cone_keep:
                for f in root.glob(f"cone_{n}.duckdb*"):
                    f.unlink()
    finally:
        if not opts.cone_work:
            shutil.rmtree(root, ignore_errors=True)
    return rows, meta
