"""Run every query a server publishes at ``/tap/examples`` and check it against the
brute-force answer from the tables' full contents: astropy's ``search_around_sky``
(cross-match), ``SkyCoord.separation`` (cone), the row count and the catalog (table list).
Used on the demo database (test_vo_demo.py) and on a million rows (test_vo_join_examples.py).
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
from _vo_support import ServerThread
from astropy.coordinates import SkyCoord, search_around_sky

from skysense.vo.app import create_app
from skysense.vo.backends import open_backend


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
