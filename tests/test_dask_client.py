"""Where Dask work runs: scheduler addresses, the SKYSENSE_SCHEDULER default, bad addresses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from skysense._dask import dask_client, resolve_scheduler, worker_memory_limit
from skysense.catalog.engine import tile_rows_for_memory
from skysense.errors import InputError


def test_resolve_scheduler(monkeypatch):
    monkeypatch.delenv("SKYSENSE_SCHEDULER", raising=False)
    assert resolve_scheduler(None) is None
    assert resolve_scheduler("processes") == "processes"
    assert resolve_scheduler(" tcp://10.0.0.5:8786 ") == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("SKYSENSE_SCHEDULER", "tcp://10.0.0.7:8786")
    assert resolve_scheduler(None) == "tcp://10.0.0.7:8786"
    assert resolve_scheduler("threads") == "threads"  # an explicit choice wins
    for bad in ("10.0.0.5:8786", "tcp://", "http://x:1", "thread"):
        with pytest.raises(InputError, match="tcp://host:8786"):
            resolve_scheduler(bad)


def test_local_scheduler_has_no_client(monkeypatch):
    monkeypatch.delenv("SKYSENSE_SCHEDULER", raising=False)
    with dask_client(None) as client:
        assert client is None
        assert worker_memory_limit(client) is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_an_input_error(monkeypatch):
    monkeypatch.setenv("SKYSENSE_SCHEDULER_TIMEOUT", "1")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        with dask_client(address):
            pass


def test_cli_names_an_unreachable_scheduler_in_one_line(tmp_path):
    import numpy as np
    import pandas as pd

    (tmp_path / "m.yaml").write_text("catalogues: [a.parquet]\n")
    pd.DataFrame({"a_id": [1], "a_ra": np.array([1.0]), "a_dec": np.array([2.0])}).to_parquet(
        tmp_path / "a.parquet"
    )
    address = f"tcp://127.0.0.1:{_closed_port()}"
    cmd = [sys.executable, "-m", "skysense.cli", "catalog", "merge", str(tmp_path / "m.yaml"),
           "--out", str(tmp_path / "out"), "--scheduler", address]  # fmt: skip
    env = {**os.environ, "SKYSENSE_SCHEDULER_TIMEOUT": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"skysense: error: cannot reach the Dask scheduler at {address} ")
    assert not (tmp_path / "out").exists()


def test_tile_rows_respect_the_worker_memory_limit():
    assert tile_rows_for_memory(None, 40) == 200_000
    # 1 GiB per worker, 400 columns: half of it at 64 bytes a cell.
    rows = tile_rows_for_memory(2**30, 400)
    assert rows == 2**29 // (64 * 400)
    assert rows * 64 * 400 <= 2**30 / 2
    assert tile_rows_for_memory(2**40, 40) == 200_000


def test_pipeline_file_names_the_scheduler(tmp_path, monkeypatch):
    """``dask.scheduler`` in the field file reaches the steps; ``--scheduler`` overrides it."""
    from skysense.pipeline import api

    monkeypatch.delenv("SKYSENSE_SCHEDULER", raising=False)
    (tmp_path / "s.yaml").write_text("x: 1\n")
    field = "field: {name: F}\nsurveys: [{config: s.yaml}]\n"
    (tmp_path / "f.yaml").write_text(field + "dask: {scheduler: 'tcp://10.1.2.3:8786'}\n")
    seen = []
    monkeypatch.setattr(api, "build_steps", lambda cfg: [])
    monkeypatch.setattr(api, "run_steps", lambda steps, wd, **kw: seen.append(kw["scheduler"]))
    api.run(tmp_path / "f.yaml")
    api.run(tmp_path / "f.yaml", scheduler="tcp://10.9.9.9:1")
    assert seen == ["tcp://10.1.2.3:8786", "tcp://10.9.9.9:1"]
    (tmp_path / "g.yaml").write_text(field)
    api.run(tmp_path / "g.yaml")
    assert seen[-1] is None
    (tmp_path / "h.yaml").write_text(field + "dask: {scheduler: 'localhost:8786'}\n")
    with pytest.raises(InputError, match="tcp://host:8786"):
        api.run(tmp_path / "h.yaml")
    (tmp_path / "k.yaml").write_text(field + "dask: {shceduler: 'tcp://a:1'}\n")
    with pytest.raises(InputError, match="did you mean 'scheduler'"):
        api.run(tmp_path / "k.yaml")
