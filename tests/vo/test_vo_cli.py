"""``skysense vo`` verbs: publish, tables, query, drop, demo (build only), serve errors."""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Table

from skysense.cli.__main__ import main


def test_publish_tables_query_drop(tmp_path, capsys):
    db = str(tmp_path / "cli.duckdb")
    t = Table(
        {
            "ID": np.arange(5),
            "RA": np.linspace(10, 11, 5) * u.deg,
            "DEC": np.linspace(-1, 1, 5) * u.deg,
        }
    )
    t.write(tmp_path / "t.fits")
    meta = tmp_path / "meta.json"
    meta.write_text('{"columns": {"ID": {"ucd": "meta.id;meta.main"}}}', encoding="utf-8")
    assert (
        main(
            [
                "vo",
                "publish",
                str(tmp_path / "t.fits"),
                "--table",
                "help.t",
                "--db",
                db,
                "--description",
                "five rows",
                "--meta",
                str(meta),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "help.t: 5 rows" in out and "RA/Dec = ra/dec" in out
    assert main(["vo", "tables", "--db", db]) == 0
    assert "help.t" in capsys.readouterr().out
    assert (
        main(["vo", "query", "SELECT id, ra FROM help.t WHERE dec > 0 ORDER BY id", "--db", db])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["3", "4"]
    assert main(["vo", "drop", "help.t", "--db", db]) == 0
    capsys.readouterr()
    assert main(["vo", "drop", "help.t", "--db", db]) == 2
    assert "no published table" in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    db = str(tmp_path / "none.duckdb")
    assert main(["vo", "serve", "--db", db]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "vo",
                "publish",
                str(tmp_path / "nope.fits"),
                "--table",
                "a.b",
                "--db",
                str(tmp_path / "x.duckdb"),
            ]
        )
        == 2
    )
    assert "nope.fits" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    assert (
        main(
            [
                "vo",
                "publish",
                str(tmp_path / "t.csv"),
                "--table",
                "nodot",
                "--db",
                str(tmp_path / "x.duckdb"),
            ]
        )
        == 2
    )
    assert "SCHEMA.NAME" in capsys.readouterr().err
