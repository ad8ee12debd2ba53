"""VO benchmark: positional joins between two published tables (issue #23).

On generated tables in a 10 x 10 deg patch (``--quick``: a tenth of the rows):

- a 10,000-row table joined with a 2,000,000-row table at 1 arcsec (half of the small table
  lies within 0.3 arcsec of a large-table row) through ``/tap/sync``, on DuckDB (HEALPix cell
  join) and on PostgreSQL (``q3c_join``);
- a self-join of a 1,000,000-row table for pairs within 2 arcsec (``x.id < y.id``).

Each answer is checked against astropy's ``search_around_sky`` (same pairs). The peer column
is the upload join of the same 10,000 rows (``TAP_UPLOAD``) on the same server, the path that
used the index before. Run on its own (``python -m benchmarks vo_join``) or as part of
``python -m benchmarks vo``.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks._harness import Row

__all__ = ["run", "add_arguments", "join_rows"]

PATCH = (145.0, 155.0, -5.0, 5.0)
META = {
    "columns": {
        "ra": {"unit": "deg", "ucd": "pos.eq.ra;meta.main"},
        "dec": {"unit": "deg", "ucd": "pos.eq.dec;meta.main"},
        "id": {"ucd": "meta.id;meta.main"},
    }
}
JOIN_ADQL = (
    "SELECT s.id AS id_s, b.id AS id_b FROM bj.small AS s JOIN bj.big AS b "
    "ON 1 = CONTAINS(POINT('ICRS', b.ra, b.dec), CIRCLE('ICRS', s.ra, s.dec, 1.0/3600))"
)
UPLOAD_ADQL = (
    "SELECT u.id AS id_s, b.id AS id_b FROM TAP_UPLOAD.src AS u JOIN bj.big AS b "
    "ON 1 = CONTAINS(POINT('ICRS', b.ra, b.dec), CIRCLE('ICRS', u.ra, u.dec, 1.0/3600))"
)
SELF_ADQL = (
    "SELECT x.id AS id_x, y.id AS id_y FROM bj.mid AS x JOIN bj.mid AS y "
    "ON 1 = CONTAINS(POINT('ICRS', y.ra, y.dec), CIRCLE('ICRS', x.ra, x.dec, 2.0/3600)) "
    "AND x.id < y.id"
)


def add_arguments(parser) -> None:
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--seed", type=int, default=42)


def uniform(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    ra0, ra1, d0, d1 = PATCH
    s0, s1 = np.sin(np.radians(d0)), np.sin(np.radians(d1))
    return rng.uniform(ra0, ra1, n), np.degrees(np.arcsin(rng.uniform(s0, s1, n)))


def tables(quick: bool, seed: int) -> dict[str, pa.Table]:
    scale = 10 if quick else 1
    rng = np.random.default_rng(seed)
    n_big, n_small, n_mid = 2_000_000 // scale, 10_000 // scale, 1_000_000 // scale
    ra_b, dec_b = uniform(rng, n_big)
    k = n_small // 2
    i = rng.integers(0, n_big, k)
    s = 0.3 / 3600
    ra_r, dec_r = uniform(rng, n_small - k)
    ra_s = np.concatenate([ra_b[i] + rng.normal(0, s, k), ra_r])
    dec_s = np.concatenate([dec_b[i] + rng.normal(0, s, k), dec_r])
    ra_m, dec_m = uniform(rng, n_mid)
    j = rng.integers(0, n_mid, n_mid // 100)  # 1% of rows get a close companion
    ra_m[j[: len(j) // 2]] = ra_m[j[len(j) // 2 :]] + rng.normal(0, 1 / 3600, len(j) // 2)
    dec_m[j[: len(j) // 2]] = dec_m[j[len(j) // 2 :]] + rng.normal(0, 1 / 3600, len(j) // 2)

    def t(ra, dec):
        return pa.table({"id": np.arange(len(ra), dtype=np.int64), "ra": ra, "dec": dec})

    return {"bj.big": t(ra_b, dec_b), "bj.small": t(ra_s, dec_s), "bj.mid": t(ra_m, dec_m)}


def brute_pairs(a: pa.Table, b: pa.Table, r_arcsec: float, *, self_join: bool = False) -> set:
    """Pairs of ids within ``r_arcsec`` by astropy's ``search_around_sky``."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    ca = SkyCoord(np.asarray(a["ra"]) * u.deg, np.asarray(a["dec"]) * u.deg)
    cb = SkyCoord(np.asarray(b["ra"]) * u.deg, np.asarray(b["dec"]) * u.deg)
    i, j, _, _ = search_around_sky(ca, cb, r_arcsec * u.arcsec)
    ia, ib = np.asarray(a["id"])[i], np.asarray(b["id"])[j]
    if self_join:
        keep = ia < ib
        ia, ib = ia[keep], ib[keep]
    return set(zip(ia.tolist(), ib.tolist()))


def tap_pairs(url: str, adql: str, upload: bytes | None = None) -> tuple[float, set]:
    import httpx
    import pyarrow.csv as pacsv

    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "FORMAT": "csv"}
    data["MAXREC"] = "2000000"
    files = None
    if upload is not None:
        data["UPLOAD"] = "src,param:src"
        files = {"src": ("src.xml", upload, "application/x-votable+xml")}
    with httpx.Client(timeout=600) as client:
        t0 = time.perf_counter()
        resp = client.post(f"{url}/tap/sync", data=data, files=files)
        elapsed = time.perf_counter() - t0
    if resp.status_code != 200:
        raise RuntimeError(f"join failed: {resp.text[:1000]}")
    t = pacsv.read_csv(io.BytesIO(resp.content))
    return elapsed, set(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))


def votable_of(t: pa.Table) -> bytes:
    from astropy.table import Table

    buf = io.BytesIO()
    Table({k: np.asarray(t[k]) for k in ("id", "ra", "dec")}).write(buf, format="votable")
    return buf.getvalue()


def measure(url: str, data: dict, truth: dict, repeats: int = 3) -> dict:
    """Best and median time of each join, and whether its pairs equal the brute-force ones."""
    out = {}
    up = votable_of(data["bj.small"])
    for key, adql, upload in (
        ("join", JOIN_ADQL, None),
        ("upload", UPLOAD_ADQL, up),
        ("self", SELF_ADQL, None),
    ):
        times, pairs = [], None
        for _ in range(repeats):
            elapsed, pairs = tap_pairs(url, adql, upload)
            times.append(elapsed)
        want = truth["self" if key == "self" else "join"]
        out[key] = {
            "best_s": min(times),
            "median_s": float(np.median(times)),
            "pairs": len(pairs),
            "exact": pairs == want,
            "load_avg": os.getloadavg(),
        }
    return out


def join_rows(opts) -> tuple[list[Row], dict]:
    """The rows of this benchmark (also called by ``benchmarks.vo``)."""
    from benchmarks.vo import drop_pg_database, server, start_postgres
    from skysense.vo.backends import open_backend
    from skysense.vo.publish import publish_arrow

    quick = bool(getattr(opts, "quick", False))
    data = tables(quick, getattr(opts, "seed", 42))
    meta: dict = {
        "rows": {k: v.num_rows for k, v in data.items()},
        "load_avg_start": os.getloadavg(),
    }
    t0 = time.perf_counter()
    truth = {
        "join": brute_pairs(data["bj.small"], data["bj.big"], 1.0),
        "self": brute_pairs(data["bj.mid"], data["bj.mid"], 2.0, self_join=True),
    }
    meta["astropy_s"] = round(time.perf_counter() - t0, 1)
    tmp = Path(tempfile.mkdtemp(prefix="skysense-vo-join-"))
    results = {}
    pg_db = None
    try:
        dbs = {"DuckDB": str(tmp / "vo_join.duckdb")}
        if not getattr(opts, "no_postgres", False):
            admin = os.environ.get("SKYSENSE_TEST_PG") or start_postgres()
            if admin:
                import urllib.parse

                import psycopg

                name = f"skysense_join_bench_{os.getpid()}"
                with psycopg.connect(admin, autocommit=True) as con:
                    con.execute(f'CREATE DATABASE "{name}"')
                    # q3c_join plans carry cost estimates of ~1e10, which makes PostgreSQL
                    # JIT-compile them (~0.4 s a query); the backend turns JIT off per query.
                    con.execute(f'ALTER DATABASE "{name}" SET jit = off')
                pg_db = (admin, name)
                parts = urllib.parse.urlsplit(admin)
                dbs["PostgreSQL"] = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
        for label, db in dbs.items():
            t0 = time.perf_counter()
            backend = open_backend(db)
            for name, t in data.items():
                publish_arrow(backend, t, name, meta=META)
            backend.close()
            meta[f"publish_{label}_s"] = round(time.perf_counter() - t0, 1)
            with server(db, tmp / f"work_{label}") as url:
                results[label] = measure(url, data, truth)
    finally:
        if pg_db is not None:
            drop_pg_database(*pg_db)
        shutil.rmtree(tmp, ignore_errors=True)
    n_big, n_small, n_mid = (data[k].num_rows for k in ("bj.big", "bj.small", "bj.mid"))
    rows = []
    for label, res in results.items():
        j, up, s = res["join"], res["upload"], res["self"]
        rows.append(
            Row(
                task=f"published-table join {n_small // 1000}k x {n_big / 1e6:g}M, 1 arcsec "
                f"({label}, HTTP /tap/sync)",
                skysense=j["best_s"],
                peer=up["best_s"],
                peer_name="the same rows as TAP_UPLOAD",
                unit="s",
                notes=f"{j['pairs']} pairs, exact={j['exact']} (upload exact={up['exact']}); "
                f"median {j['median_s']:.2f} s; load {j['load_avg'][0]:.1f}",
            )
        )
        rows.append(
            Row(
                task=f"self-join {n_mid / 1e6:g}M, 2 arcsec ({label}, HTTP /tap/sync)",
                skysense=s["best_s"],
                peer=None,
                unit="s",
                notes=f"{s['pairs']} pairs, exact={s['exact']}; median {s['median_s']:.2f} s; "
                f"load {s['load_avg'][0]:.1f}",
            )
        )
        meta[label] = res
    meta["brute_force_pairs"] = {k: len(v) for k, v in truth.items()}
    meta["load_avg_end"] = os.getloadavg()
    return rows, meta


def run(opts):
    return join_rows(opts)
