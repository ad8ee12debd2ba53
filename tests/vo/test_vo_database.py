"""skysense.vo.database (publish, list, query, drop by database name) and vo.serve.serve_settings."""

from __future__ import annotations

import pandas as pd
import pytest

from skysense.errors import ConfigError, InputError
from skysense.vo.database import (
    DEFAULT_DB,
    default_db,
    drop_table,
    publish_table,
    query,
    table_summaries,
)
from skysense.vo.serve import serve_settings
from skysense.vo.settings import Settings


def test_default_db_prefers_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv("SKYSENSE_VO_DB", raising=False)
    assert default_db() == DEFAULT_DB
    monkeypatch.setenv("SKYSENSE_VO_DB", "env.duckdb")
    assert default_db() == "env.duckdb"
    assert default_db("given.duckdb") == "given.duckdb"


def test_publish_list_query_drop(tmp_path):
    db = str(tmp_path / "t.duckdb")
    csv = tmp_path / "t.csv"
    pd.DataFrame({"id": [1, 2, 3], "ra": [10.0, 10.5, 11.0], "dec": [-1.0, 0.5, 1.0]}).to_csv(
        csv, index=False
    )
    spec, n_rows = publish_table(db, csv, "help.t")
    assert (spec.adql_name, n_rows, spec.ra, spec.dec) == ("help.t", 3, "ra", "dec")
    lines = table_summaries(db)
    assert len(lines) == 1 and lines[0].startswith("help.t") and "3 rows" in lines[0]
    assert any(line.startswith("tap_schema.") for line in table_summaries(db, tap_schema=True))
    body, overflow = query(db, "SELECT id FROM help.t WHERE dec > 0 ORDER BY id")
    assert body.decode().split() == ["id", "2", "3"] and not overflow
    body, overflow = query(db, "SELECT id FROM help.t ORDER BY id", maxrec=2)
    assert body.decode().split() == ["id", "1", "2"] and overflow
    drop_table(db, "help.t")
    assert table_summaries(db) == []
    with pytest.raises(InputError, match="no published table"):
        drop_table(db, "help.t")


def test_a_missing_database_is_not_created_for_reading(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        table_summaries(tmp_path / "none.duckdb")
    assert not (tmp_path / "none.duckdb").exists()


def test_serve_settings_scales_the_limits_and_keeps_defaults():
    s = serve_settings("x.duckdb", upload_limit_mb=7, jobs_storage_mb=100, maxrec=5, title="")
    assert s.upload_limit_bytes == 7_000_000 and s.maxrec_default == 5
    assert s.jobs_storage_limit_bytes == 100_000_000
    # one job may use all the job storage, never more
    assert s.job_storage_limit_bytes == min(Settings.job_storage_limit_bytes, 100_000_000)
    assert s.title == Settings.title and s.maxrec_hard == Settings.maxrec_hard
    assert serve_settings("x.duckdb", title="A", description="B").description == "B"
