"""The tiled merge on a real multi-process cluster (``dask scheduler`` + 2 ``dask worker``).

The cluster is started with the ``dask`` CLI as separate processes (one module-scoped
fixture); the merge reaches it through ``--scheduler tcp://...`` (CLI) and ``scheduler=``
(Python API). Its output files are byte-identical to the local tiled run, and its data equal
the single-machine merge, with objects straddling tile boundaries, RA = 0/360 and both
poles. A worker killed (SIGKILL) mid-merge is survived: Dask re-runs its tiles, which
rewrite their files atomically, and the output is again byte-identical. A merge whose driver
is killed mid-run leaves no output, and running it again (what the pipeline's resume does
with an unfinished step) gives the same bytes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import WorkerPlugin

from skysense.catalog.hats_io import read_hats_table, spatial_index
from skysense.catalog.merge_config import load_merge_config
from skysense.catalog.merge_io import run_merge

TILE_ORDER = 9  # 6.9 arcmin tiles
MEMORY_LIMIT = 1536 * 2**20  # bytes per worker (dask worker --memory-limit)
# Provenance entries that name where and when a run happened (everything else is equal).
_WHERE_WHEN = ("created", "scheduler", "worker_memory_limit")


def _dask_cli(*args: str) -> list[str]:
    # `python -m dask` is the `dask` command of this environment.
    return [sys.executable, "-m", "dask", *args]


def _stop(procs: list[subprocess.Popen]) -> None:
    """Terminate each process group (a nanny and its worker), then kill what is left."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
        try:  # the group may outlive its leader (a worker process of a nanny)
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Address of a scheduler with two single-threaded worker processes (with nannies)."""
    from distributed import Client

    root = tmp_path_factory.mktemp("cluster")
    sched_file = root / "scheduler.json"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs: list[subprocess.Popen] = []
    logs = []

    def start(cmd, name):
        log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        # A session of its own: the whole group (nanny + worker) is stopped at the end.
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      cwd=root, start_new_session=True))  # fmt: skip

    try:
        # Port 0: the scheduler picks a free port and writes its address to the file.
        start(_dask_cli("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(sched_file)), "scheduler")  # fmt: skip
        deadline = time.monotonic() + 120
        while not sched_file.is_file() or not sched_file.read_text().strip():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "dask scheduler did not start:\n" + (root / "scheduler.log").read_text()
                )
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for k in range(2):
            start(_dask_cli("worker", address, "--nworkers", "1", "--nthreads", "1",
                            "--memory-limit", str(MEMORY_LIMIT), "--name", f"w{k}",
                            "--no-dashboard", "--local-directory", str(root / f"w{k}"),
                            "--host", "127.0.0.1"), f"worker{k}")  # fmt: skip
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=180)
        yield address
    finally:
        _stop(procs)
        for log in logs:
            log.close()


def _field(tmp_path: Path, seed: int = 3) -> tuple[Path, list[Path]]:
    """Three surveys over a field across RA = 0/360 and caps at both poles."""
    rng = np.random.default_rng(seed)
    parts = []
    n = 900
    # ~0.25 deg across RA = 0/360 at dec 10: about a dozen order-9 tiles.
    parts.append(((rng.uniform(-0.12, 0.12, n)) % 360, 10 + rng.uniform(-0.12, 0.12, n)))
    m = 300  # within ~80" of each pole: tiles meet there
    parts.append((rng.uniform(0, 360, m), 90 - rng.uniform(0.0002, 0.022, m)))
    parts.append((rng.uniform(0, 360, m), -90 + rng.uniform(0.0002, 0.022, m)))
    ra = np.concatenate([p[0] for p in parts])
    dec = np.concatenate([p[1] for p in parts])
    # Close pairs so that the greedy step meets conflicts, some across tile edges.
    close = rng.uniform(size=len(ra)) < 0.3
    src = np.roll(np.flatnonzero(close), 1)
    dec[close] = np.clip(dec[src] + rng.normal(0, 0.6 / 3600, close.sum()), -90, 90)
    ra[close] = ra[src] + rng.normal(0, 0.6 / 3600, close.sum()) / np.cos(np.radians(dec[close]))
    files = []
    for k, (name, err) in enumerate((("a", 0.2), ("b", 0.3), ("c", 0.25))):
        keep = rng.uniform(size=len(ra)) < 0.8
        d = np.clip(dec[keep] + rng.normal(0, err / 3600, keep.sum()), -90, 90)
        r = (ra[keep] + rng.normal(0, err / 3600, keep.sum()) / np.cos(np.radians(d))) % 360
        f = rng.lognormal(2, 1, len(r))
        df = pd.DataFrame({f"{name}_id": np.arange(len(r)) * 3 + k, f"{name}_ra": r,
                           f"{name}_dec": d, "f_megacam_r": f,
                           "ferr_megacam_r": f * rng.uniform(0.05, 0.2, len(r)),
                           "stellarity": rng.uniform(size=len(r))})  # fmt: skip
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
        files.append(tmp_path / f"{name}.parquet")
    cfg = {"catalogues": [{"file": f.name, "position_error_arcsec": 0.25} for f in files],
           "radius_arcsec": 1.2, "same_filter_rule": "lowest_error", "bayes": True}  # fmt: skip
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "m.yaml", files


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _assert_byte_identical(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert any(k.startswith("masterlist/dataset/") for k in fa)
    assert any(k.startswith("associations/") for k in fa)
    for name in fa:
        if name == "provenance.json":
            pa_, pb = json.loads(fa[name]), json.loads(fb[name])
            for k in _WHERE_WHEN:
                pa_.pop(k, None), pb.pop(k, None)
            assert pa_ == pb
        else:
            assert fa[name] == fb[name], name


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The field, its local tiled merge and its single-machine merge."""
    tmp = tmp_path_factory.mktemp("field")
    cfg_path, files = _field(tmp)
    config = load_merge_config(cfg_path)
    run_merge(config, tmp / "local", tiled=True, tile_order=TILE_ORDER)
    run_merge(config, tmp / "single", tiled=False)
    return tmp, cfg_path, files


def test_cluster_merge_is_byte_identical(cluster, local_run, tmp_path):
    tmp, cfg_path, files = local_run
    config = load_merge_config(cfg_path)
    # The CLI, as a user types it.
    cmd = [sys.executable, "-m", "skysense.cli", "catalog", "merge", str(cfg_path),
           "--out", str(tmp_path / "cli"), "--tile-order", str(TILE_ORDER),
           "--scheduler", cluster]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # The Python API.
    run_merge(config, tmp_path / "api", scheduler=cluster, tile_order=TILE_ORDER)
    for out in ("cli", "api"):
        _assert_byte_identical(tmp / "local", tmp_path / out)
    prov = json.loads((tmp_path / "api" / "provenance.json").read_text())
    assert prov["scheduler"] == cluster and prov["worker_memory_limit"] == MEMORY_LIMIT
    assert prov["n_tiles"] >= 10

    # The same objects as the single-machine merge (another partitioning, equal data).
    a = read_hats_table(tmp / "single" / "masterlist").drop(columns="_healpix_29")
    b = read_hats_table(tmp_path / "api" / "masterlist").drop(columns="_healpix_29")
    a, b = (t.sort_values("object_key").reset_index(drop=True) for t in (a, b))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["flag_merged"].sum() > 20  # greedy conflicts were exercised
    # Objects near both poles, and objects whose rows lie in different tiles.
    assert (b["dec"] > 89.99).sum() > 50 and (b["dec"] < -89.99).sum() > 50
    shift = 2 * (29 - TILE_ORDER)
    tile_of = {}
    for f, s in zip(files, "abc"):
        df = pd.read_parquet(f)
        hpx = spatial_index(df[f"{s}_ra"].to_numpy(), df[f"{s}_dec"].to_numpy()) >> shift
        tile_of[s] = dict(zip(df[f"{s}_id"].astype(str), hpx))
    x = pd.read_parquet(tmp_path / "api" / "associations")
    x["tile"] = [tile_of[s][i] for s, i in zip(x["survey"], x["source_id"])]
    x["polar"] = x["object_key"].isin(b.loc[b["dec"].abs() > 89.9, "object_key"])
    straddle = x.groupby("object_key").agg(n=("tile", "nunique"), polar=("polar", "first"))
    assert (straddle["n"] > 1).sum() >= 5
    assert ((straddle["n"] > 1) & straddle["polar"]).sum() >= 2


def _worker_pids(client) -> dict[str, int]:
    """Process id of each worker, by name."""
    pids = client.run(os.getpid)
    return {str(w["name"]): pids[a] for a, w in client.scheduler_info()["workers"].items()}


class _KillOnce(WorkerPlugin):
    """Worker plugin: the first worker to finish a tile SIGKILLs its own process (or, with
    ``kill=False``, only writes the marker).

    A marker file (created exclusively) makes it happen once, even though the nanny
    restarts the worker and the scheduler hands the plugin to the new process.
    """

    name = "skysense-test-kill-once"

    def __init__(self, marker: str, kill: bool = True):
        self.marker = marker
        self.kill = kill

    def setup(self, worker):
        self.worker = worker

    def teardown(self, worker):
        pass

    def transition(self, key, start, finish, **kwargs):
        if finish != "memory" or "process_tile" not in str(key):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{self.worker.name} {os.getpid()} {key}".encode())  # name has no spaces
        os.close(fd)
        if self.kill:
            os.kill(os.getpid(), signal.SIGKILL)


def test_worker_killed_mid_merge_is_survived(cluster, local_run, tmp_path):
    import cloudpickle
    from distributed import Client

    tmp, cfg_path, _ = local_run
    marker = tmp_path / "killed"
    # The plugin travels by value: the workers cannot import this test module.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with Client(cluster, timeout=60) as client:
        before = _worker_pids(client)
        client.register_plugin(_KillOnce(str(marker)), name=_KillOnce.name)
        try:
            run_merge(load_merge_config(cfg_path), tmp_path / "out", scheduler=cluster,
                      tile_order=TILE_ORDER)  # fmt: skip
        finally:
            client.unregister_worker_plugin(_KillOnce.name)
        # The victim really died mid-run: it finished one tile and more were left.
        name, pid, _key = marker.read_text().split(" ", 2)
        assert int(pid) == before[name]
        client.wait_for_workers(2, timeout=120)  # its nanny restarts it for later tests
        after = _worker_pids(client)
        assert after[name] != before[name]
    n_tiles = json.loads((tmp / "local" / "provenance.json").read_text())["n_tiles"]
    assert n_tiles >= 10
    # Nothing lost, nothing duplicated, no half-written file left: the same bytes.
    _assert_byte_identical(tmp / "local", tmp_path / "out")
    assert not [p for p in (tmp_path / "out").rglob(".*")]


def test_driver_killed_mid_merge_leaves_nothing_and_a_rerun_is_identical(
    cluster, local_run, tmp_path
):
    import cloudpickle
    from distributed import Client

    tmp, cfg_path, _ = local_run
    marker = tmp_path / "tile-done"
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "skysense.cli", "catalog", "merge", str(cfg_path),
           "--out", str(out), "--tile-order", str(TILE_ORDER), "--scheduler", cluster]  # fmt: skip
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with Client(cluster, timeout=60) as client:
        client.register_plugin(_KillOnce(str(marker), kill=False), name=_KillOnce.name)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True)  # fmt: skip
            deadline = time.monotonic() + 300
            while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            # The first tile is written and more are left: the driver dies mid-merge.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            client.unregister_worker_plugin(_KillOnce.name)
    assert marker.exists() and proc.returncode == -signal.SIGKILL
    assert not out.exists()  # the output appears whole or not at all
    # Run again, as a resumed pipeline reruns its unfinished step: the same bytes.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    _assert_byte_identical(tmp / "local", out)
