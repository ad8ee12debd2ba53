"""The demo service end to end: ``skysense vo demo`` builds the database once from a small
simulated field, the server answers TAP queries on it, and STILTS taplint finds 0 errors."""

from __future__ import annotations

import pytest
from _vo_support import ServerThread, run_taplint, taplint_totals

from skysense.cli.__main__ import main
from skysense.vo.app import create_app
from skysense.vo.demo import demo_settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["vo", "demo", "--workdir", str(work), "--no-serve", "--area-deg2", "0.02"]) == 0
    return work


def test_demo_builds_once(demo, capsys):
    assert main(["vo", "demo", "--workdir", str(demo), "--no-serve"]) == 0
    assert "using the existing demo database" in capsys.readouterr().out
    assert main(["vo", "tables", "--db", str(demo / "demo.duckdb")]) == 0
    out = capsys.readouterr().out
    for name in ("help.truth", "help.gaia", "help.cfhtls", "help.catalogue_rows"):
        assert name in out
    assert (
        main(
            [
                "vo",
                "query",
                "SELECT COUNT(*) AS n FROM help.truth WHERE kind = 'star'",
                "--db",
                str(demo / "demo.duckdb"),
            ]
        )
        == 0
    )
    assert int(capsys.readouterr().out.splitlines()[1]) > 0


@pytest.mark.stilts
def test_taplint_on_the_demo_reports_no_errors(demo, stilts):
    with ServerThread(create_app(demo_settings(demo))) as server:
        report = run_taplint(stilts, server.url)
    errors, warnings, failures = taplint_totals(report)
    print(f"taplint demo: errors={errors} warnings={warnings} failures={failures}")
    assert errors == 0, report
