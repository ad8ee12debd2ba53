"""STILTS taplint (TOPCAT's TAP validator) reports 0 errors in every stage against a PostgreSQL
service (the DuckDB demo service is checked in test_vo_demo.py).

taplint exits 0 even when it reports errors, so the test reads its ``Totals:`` line; the full
report is shown on failure.

taplint 3.4's ObsLocTAP stage (LOC) reports the failure ``F-LOC-NOTP`` ("No table with name
ivoa.obsplan") for any service without that table, whatever the service declares (its ObsCore
stage, by contrast, is skipped when no ObsCore data model is declared). This service publishes
no observation plans, so it declares no ObsLocTAP data model and that failure is the only one
allowed: any other failure, in any stage, fails the test.
"""

from __future__ import annotations

import re

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
    codes = set(re.findall(r"^F-([A-Z]+-[A-Z]+)-\d+", report, flags=re.M))
    assert codes <= {"LOC-NOTP"}, report
    assert failures == len(re.findall(r"^F-LOC-NOTP-\d+", report, flags=re.M)), report
