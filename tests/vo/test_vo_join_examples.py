"""Every query the service publishes at ``/tap/examples`` runs and returns the brute-force rows,
on the demo database and on a database whose larger table holds 1,000,000 rows (issue #23).

The big database is generated with numpy (a 10,000-row table, half of it within 0.3 arcsec of
rows of the 1,000,000-row table) once per module and backend. The independent answers come
from the tables' full contents: astropy's ``search_around_sky`` (cross-match),
``SkyCoord.separation`` (cone), the row count and the catalog (table list). Each example runs
through ``/tap/sync`` under the server's time limit, as published and, for the cross-match,
without its TOP so that every pair is compared.
"""

from __future__ import annotations

import html
import io
import re

import astropy.units as u
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from _vo_support import (
    ServerThread,
    fresh_postgres,
    run_taplint,
    server_settings,
    taplint_totals,
)
from astropy.coordinates import SkyCoord, search_around_sky

from skysense.cli.__main__ import main
from skysense.pipeline.demo import demo_settings
from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_arrow

N_BIG = 1_000_000
N_SMALL = 10_000
META = {
    "columns": {
        "ra": {"unit": "deg", "ucd": "pos.eq.ra;meta.main"},
        "dec": {"unit": "deg", "ucd": "pos.eq.dec;meta.main"},
        "id": {"ucd": "meta.id;meta.main"},
    }
}


def big_tables(seed: int = 11) -> tuple[pa.Table, pa.Table]:
    """(10,000 rows, 1,000,000 rows) in a 4 x 4 deg field across RA = 0."""
    rng = np.random.default_rng(seed)
    ra_b = np.mod(rng.uniform(-2, 2, N_BIG), 360.0)
    dec_b = rng.uniform(-2, 2, N_BIG)
    k = N_SMALL // 2
    i = rng.integers(0, N_BIG, k)
    scatter = 0.3 / 3600
    ra_a = np.concatenate(
        [np.mod(ra_b[i] + rng.normal(0, scatter, k), 360.0), np.mod(rng.uniform(-2, 2, k), 360)]
    )
    dec_a = np.concatenate([dec_b[i] + rng.normal(0, scatter, k), rng.uniform(-2, 2, k)])

    def table(ra, dec):
        return pa.table({"id": np.arange(len(ra), dtype=np.int64), "ra": ra, "dec": dec})

    return table(ra_a, dec_a), table(ra_b, dec_b)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["vo", "demo", "--workdir", str(work), "--no-serve", "--area-deg2", "0.02"]) == 0
    return demo_settings(work)


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def big_db(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("big")
    small, large = big_tables()
    with _database(request, tmp) as db:
        backend = open_backend(db)
        try:
            publish_arrow(backend, small, "xm.small", meta=META)
            publish_arrow(backend, large, "xm.big", meta=META)
        finally:
            backend.close()
        yield server_settings(
            db, tmp, maxrec_default=2_000_000, maxrec_hard=2_000_000, query_timeout_s=60.0
        )


class _database:
    def __init__(self, request, tmp):
        self.request, self.tmp, self.ctx = request, tmp, None

    def __enter__(self) -> str:
        if self.request.param == "duckdb":
            return str(self.tmp / "million.duckdb")
        self.ctx = fresh_postgres(self.request.getfixturevalue("postgres_dsn"))
        return self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


def examples(url: str) -> dict[str, str]:
    page = httpx.get(f"{url}/tap/examples", timeout=30).text
    found = re.findall(
        r'<div typeof="example" id="([^"]+)".*?<pre class="dali-example" '
        r'property="query">(.*?)</pre>',
        page,
        flags=re.S,
    )
    return {ident: html.unescape(q) for ident, q in found}


def tap(url: str, adql: str) -> pa.Table:
    resp = httpx.post(
        f"{url}/tap/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "FORMAT": "csv"},
        timeout=120,
    )
    assert resp.status_code == 200, f"{adql}\n{resp.text[:2000]}"
    return pacsv.read_csv(io.BytesIO(resp.content))


def full_table(settings, name: str, ra: str, dec: str) -> tuple[np.ndarray, np.ndarray]:
    """Every position of a table, straight from the database (no ADQL, no index)."""
    backend = open_backend(settings.db)
    try:
        t = backend.catalog().tables[name]
        cols = {c.name.lower(): c.name for c in t.columns.values()}
        sql = f'SELECT "{cols[ra.lower()]}" AS ra, "{cols[dec.lower()]}" AS dec FROM {t.physical}'
        data = backend.query(sql)
    finally:
        backend.close()
    return (
        np.asarray(data.column("ra").to_numpy(zero_copy_only=False), dtype=float),
        np.asarray(data.column("dec").to_numpy(zero_copy_only=False), dtype=float),
    )


def check_examples(settings) -> set[str]:
    """Run every published example and compare it with the brute-force answer; the ids run."""
    backend = open_backend(settings.db)
    try:
        catalog = backend.catalog()
    finally:
        backend.close()
    with ServerThread(create_app(settings)) as server:
        found = examples(server.url)
        assert found, "no examples published"
        for ident, adql in found.items():
            got = tap(server.url, adql)
            if ident == "tables":
                want = {k for k in catalog.tables if not k.startswith("tap_upload.")}
                assert {x.lower() for x in got.column("table_name").to_pylist()} >= want
            elif ident == "count":
                name = re.search(r"FROM (\S+)", adql).group(1).lower()
                t = catalog.tables[name]
                ra, _ = full_table(settings, name, t.ra, t.dec)
                assert got.column("n_rows").to_pylist() == [len(ra)]
            elif ident == "cone":
                check_cone(settings, catalog, adql, got)
            elif ident == "crossmatch":
                check_crossmatch(settings, catalog, server.url, adql, got)
            else:
                raise AssertionError(f"example {ident!r} has no brute-force check here")
    return set(found)


def check_cone(settings, catalog, adql: str, got: pa.Table) -> None:
    name = re.search(r"FROM (\S+) AS t", adql).group(1).lower()
    t = catalog.tables[name]
    ra, dec = full_table(settings, name, t.ra, t.dec)
    centre = np.lexsort((dec, ra))[0]  # ORDER BY ra, dec
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
        SkyCoord(ra[centre] * u.deg, dec[centre] * u.deg)
    )
    sep = sep.deg
    inside = np.flatnonzero(sep <= 0.05)
    nearest = inside[np.argsort(sep[inside], kind="stable")][:100]
    assert got.num_rows == len(nearest) > 0
    np.testing.assert_allclose(got.column("dist").to_numpy(), sep[nearest], atol=1e-9)
    got_pos = set(zip(got.column(t.ra).to_pylist(), got.column(t.dec).to_pylist()))
    assert got_pos == set(zip(ra[nearest].tolist(), dec[nearest].tolist()))


def check_crossmatch(settings, catalog, url: str, adql: str, got: pa.Table) -> None:
    a_name, b_name = (
        x.lower() for x in re.search(r"FROM (\S+) AS a JOIN (\S+) AS b", adql).groups()
    )
    ta, tb = catalog.tables[a_name], catalog.tables[b_name]
    ra_a, dec_a = full_table(settings, a_name, ta.ra, ta.dec)
    ra_b, dec_b = full_table(settings, b_name, tb.ra, tb.dec)
    r = 1.0 / 3600
    i, j, sep, _ = search_around_sky(
        SkyCoord(ra_a * u.deg, dec_a * u.deg),
        SkyCoord(ra_b * u.deg, dec_b * u.deg),
        1.001 * r * u.deg,
    )
    sep = sep.deg
    edge = np.abs(sep - r) <= 1e-9 * r
    key = list(zip(ra_a[i].tolist(), dec_a[i].tolist(), ra_b[j].tolist(), dec_b[j].tolist()))
    want = {k for k, s, e in zip(key, sep, edge) if s <= r and not e}
    skip = {k for k, e in zip(key, edge) if e}

    def pairs(t: pa.Table) -> list:
        cols = [t.column(c).to_pylist() for c in ("ra_a", "dec_a", "ra_b", "dec_b")]
        return list(zip(*cols))

    rows = pairs(got)
    assert len(set(rows)) == len(rows) == min(100, len(want) + len(skip))
    assert set(rows) - skip <= want
    everything = pairs(tap(url, adql.replace("SELECT TOP 100 ", "SELECT ", 1)))
    assert len(set(everything)) == len(everything)
    assert set(everything) - skip == want


def test_examples_on_the_demo_database(demo_db):
    assert {"tables", "cone", "count", "crossmatch"} <= check_examples(demo_db)


def test_examples_on_a_million_rows(big_db):
    assert {"tables", "cone", "count", "crossmatch"} <= check_examples(big_db)


@pytest.mark.stilts
def test_taplint_on_a_million_rows(big_db, stilts):
    """taplint's examples stage runs every example on the large tables: 0 errors, 0 warnings
    (ObsLocTAP's F-LOC-NOTP is the one failure any service without ivoa.obsplan gets, see
    test_vo_taplint.py)."""
    with ServerThread(create_app(big_db)) as server:
        report = run_taplint(stilts, server.url)
    errors, warnings, failures = taplint_totals(report)
    assert (errors, warnings) == (0, 0), report
    assert "Section EXA" in report
    assert failures == len(re.findall(r"^F-LOC-NOTP-\d+", report, flags=re.M)), report
