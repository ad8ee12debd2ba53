"""STILTS taplint (TOPCAT's TAP validator) against a live server: 0 errors in every stage.

taplint exits 0 even when it reports errors, so the test reads its ``Totals:`` line; the full
report is printed on failure.
"""

from __future__ import annotations

import re
import subprocess


def _run_taplint(stilts: str, url: str) -> str:
    proc = subprocess.run(
        [
            stilts,
            "-Djava.awt.headless=true",
            "taplint",
            f"tapurl={url}/tap",
            "maxtable=10",
            "report=EWF",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.stdout + proc.stderr


def test_taplint_reports_no_errors(stilts, live):
    url, _ = live
    report = _run_taplint(stilts, url)
    match = re.search(
        r"Totals:\s*Errors:\s*(\d+);?\s*Warnings:\s*(\d+);?\s*Failures:\s*(\d+)", report
    )
    assert match, report[-3000:]
    errors, warnings, failures = (int(g) for g in match.groups())
    print(f"taplint totals: errors={errors} warnings={warnings} failures={failures}")
    assert errors == 0, report
