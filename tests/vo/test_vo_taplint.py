"""STILTS taplint (TOPCAT's TAP validator) reports 0 errors in every stage against a PostgreSQL
service (the DuckDB demo service is checked in test_vo_demo.py).

taplint exits 0 even when it reports errors, so the test reads its ``Totals:`` line; the full
report is shown on failure.
"""

from __future__ import annotations

import pytest
from _vo_support import (
    ServerThread,
    fresh_postgres,
    publish_sky,
    run_taplint,
    server_settings,
    taplint_totals,
)

from skysense.vo.app import create_app


@pytest.mark.stilts
def test_taplint_postgresql_reports_no_errors(stilts, postgres_dsn, sky, tmp_path):
    with fresh_postgres(postgres_dsn) as db:
        publish_sky(db, sky)
        with ServerThread(create_app(server_settings(db, tmp_path))) as server:
            report = run_taplint(stilts, server.url)
    errors, warnings, failures = taplint_totals(report)
    print(f"taplint postgresql: errors={errors} warnings={warnings} failures={failures}")
    assert errors == 0, report
