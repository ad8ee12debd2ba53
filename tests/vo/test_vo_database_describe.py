"""existing_db and describe_published: what ``vo serve`` and ``vo publish`` check and say."""

from __future__ import annotations

import pandas as pd
import pytest

from skysense.errors import ConfigError
from skysense.vo.database import describe_published, existing_db, publish_table


def test_existing_db(tmp_path, monkeypatch):
    missing = tmp_path / "none.duckdb"
    with pytest.raises(ConfigError, match="publish a table first") as err:
        existing_db(missing)
    assert err.value.key == "--db" and str(missing) in str(err.value)
    assert not missing.exists()
    url = "postgresql://u@127.0.0.1:1/x"  # not opened: a server is not checked here
    assert existing_db(url) == url
    monkeypatch.setenv("SKYSENSE_VO_DB", str(missing))
    with pytest.raises(ConfigError):
        existing_db(None)
    missing.write_bytes(b"")
    assert existing_db(None) == str(missing)


def test_describe_published(tmp_path):
    db = tmp_path / "v.duckdb"
    pd.DataFrame({"id": [1, 2], "ra": [10.0, 11.0], "dec": [0.0, 1.0]}).to_csv(tmp_path / "t.csv")
    spec, n = publish_table(db, tmp_path / "t.csv", "help.t")
    line = describe_published(spec, n, "t.csv")
    assert line.startswith("published t.csv as help.t: 2 rows, ")
    assert line.endswith("; RA/Dec = ra/dec (HEALPix-indexed)")
    pd.DataFrame({"id": [1], "x": [2.0]}).to_csv(tmp_path / "u.csv", index=False)
    spec, n = publish_table(db, tmp_path / "u.csv", "help.u")
    assert describe_published(spec, n, "u.csv").endswith(": 1 rows, 2 columns; no RA/Dec")
