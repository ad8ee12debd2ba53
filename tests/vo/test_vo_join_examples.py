"""Every query the service publishes at ``/tap/examples`` runs and returns the brute-force rows
on a database whose larger table holds 1,000,000 rows (issue #23); test_vo_demo.py runs the
same check (``_examples_check.py``) on the demo database.

The big database is generated with numpy (a 10,000-row table, half of it within 0.3 arcsec of
rows of the 1,000,000-row table) once per module and backend. The independent answers come
from the tables' full contents: astropy's ``search_around_sky`` (cross-match),
``SkyCoord.separation`` (cone), the row count and the catalog (table list). Each example runs
through ``/tap/sync`` under the server's time limit, as published and, for the cross-match,
without its TOP so that every pair is compared.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest
from _examples_check import check_examples
from _vo_support import (
    ServerThread,
    fresh_postgres,
    run_taplint,
    server_settings,
    taplint_totals,
)

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
