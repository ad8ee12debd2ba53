"""Correctness at scale: the tiled merge on a multi-process cluster vs the single-machine merge.

``python -m benchmarks merge_cluster --objects 10M``: simulates a field of that many true
objects with the catalogue-only simulator (:mod:`skysense.sim.catalogs`, four surveys,
centred near the north pole so that the field holds the pole and RA = 0/360), prepares each
survey partition by partition (:func:`skysense.catalog.prepare_io.prepare_hats`, on the local
scheduler), merges them tile by tile once on this machine (Dask's local scheduler, in the
driver's process) and once on a cluster of separate processes started with the ``dask`` CLI
(a scheduler and 2 workers, one thread each, ``--worker-memory`` each), and checks that both
runs wrote byte-identical masterlist and association files. ``--in-memory`` also runs the
in-memory merge (every catalogue held whole by the driver) and checks that its objects and
associations are equal to the tiled ones. It reports the completeness and purity of the
merge against the truth, how many objects straddle tiles or lie near the pole, wall times,
the driver's peak memory (its ``VmHWM``, reset before each stage, and the increase over the
stage's start), each worker's peak memory (sampled every second), and the load average.

Completeness: of the true objects detected (not as a spurious duplicate) by at least two
surveys, the fraction whose detections all end in one merged object. Purity: of the merged
objects with at least two such detections, the fraction whose detections all belong to one
true object.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from benchmarks._harness import Row, peak_rss_during

CENTER = (30.0, 88.8)  # the field holds the pole and crosses RA = 0/360 from ~1M objects


def add_arguments(parser) -> None:
    parser.add_argument("--objects", default="10M", help="true objects (e.g. 200k, 10M)")
    parser.add_argument("--worker-memory", default="4GB", help="dask worker --memory-limit")
    parser.add_argument("--radius", type=float, default=0.8, help="merge radius, arcsec")
    # The simulator draws each order-7 cell on its own (detections leaving their cell are
    # dropped), so no object straddles an order-7 edge: tiles must be finer to be crossed.
    parser.add_argument("--tile-order", type=int, default=8, help="tile order of the cluster merge")
    parser.add_argument("--work", default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--in-memory", action="store_true",
                        help="also run the in-memory merge and compare (holds every catalogue)")  # fmt: skip


def _count(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1e3, "m": 1e6}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _reset_hwm() -> None:
    """Reset this process's peak resident set size (``VmHWM``; Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # pragma: no cover - not Linux, or not allowed: VmHWM is then cumulative
        pass


def _hwm_mb() -> float | None:
    """This process's peak resident set size (``VmHWM``), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def _same_files(a: Path, b: Path) -> tuple[bool, int]:
    """Whether two output trees hold the same files with the same bytes (the provenance,
    which records times and the scheduler, excluded), and how many files they hold."""
    import filecmp

    def files(root):
        return sorted(p.relative_to(root) for p in root.rglob("*")
                      if p.is_file() and p.name != "provenance.json")  # fmt: skip

    fa, fb = files(a), files(b)
    same = fa == fb and all(filecmp.cmp(a / f, b / f, shallow=False) for f in fa)
    return same, len(fa)


class _Cluster:
    """``dask scheduler`` + 2 ``dask worker`` processes (own sessions, stopped as groups)."""

    def __init__(self, root: Path, memory: str):
        self.procs: list[subprocess.Popen] = []
        sched = root / "scheduler.json"
        self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched)], root / "scheduler.log")  # fmt: skip
        t0 = time.monotonic()
        while not sched.is_file() or not sched.read_text().strip():
            if time.monotonic() - t0 > 120:
                raise RuntimeError("dask scheduler did not start")
            time.sleep(0.2)
        self.address = json.loads(sched.read_text())["address"]
        for k in range(2):
            self._start(["worker", self.address, "--nworkers", "1", "--nthreads", "1",
                         "--memory-limit", memory, "--name", f"w{k}", "--no-dashboard",
                         "--local-directory", str(root / f"w{k}")], root / f"worker{k}.log")  # fmt: skip

    def _start(self, args, log):
        self.procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=log.parent,
                                           stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                           start_new_session=True))  # fmt: skip

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _worker_peaks(client, stop: threading.Event, peaks: dict) -> None:
    """Poll the workers' memory (bytes) every second into ``peaks`` (name -> max)."""
    while not stop.is_set():
        try:
            for w in client.scheduler_info()["workers"].values():
                mem = w.get("metrics", {}).get("memory", 0)
                peaks[w["name"]] = max(peaks.get(w["name"], 0), mem)
        except Exception:  # noqa: BLE001 - a poll during reconnection; the next one counts
            pass
        stop.wait(1.0)


def _scores(work: Path, assoc: pd.DataFrame, surveys: list[str]) -> dict:
    """Completeness and purity of the associations against the simulation truth."""
    from skysense.catalog.hats_io import read_hats_table

    truth = []
    for s in surveys:
        t = read_hats_table(work / "sim" / "truth" / f"rows_{s}",
                            columns=["source_id", "object_id", "is_duplicate"])  # fmt: skip
        t["survey"] = s
        truth.append(t)
    truth = pd.concat(truth, ignore_index=True)
    truth["source_id"] = truth["source_id"].astype(str)
    a = assoc[["object_key", "survey", "source_id"]].copy()
    a["source_id"] = a["source_id"].astype(str)
    m = a.merge(truth, on=["survey", "source_id"], how="inner", validate="one_to_one")
    m = m[~m["is_duplicate"]]
    per_true = m.groupby("object_id")["object_key"].agg(["nunique", "size"])
    multi_true = per_true[per_true["size"] >= 2]
    per_obj = m.groupby("object_key")["object_id"].agg(["nunique", "size"])
    multi_obj = per_obj[per_obj["size"] >= 2]
    return {
        "matched_rows": int(len(m)),
        "true_objects_multi": int(len(multi_true)),
        "completeness": float((multi_true["nunique"] == 1).mean()),
        "merged_objects_multi": int(len(multi_obj)),
        "purity": float((multi_obj["nunique"] == 1).mean()),
    }


def run(opts):
    from skysense.catalog.hats_io import read_hats_table, spatial_index
    from skysense.catalog.merge_config import load_merge_config
    from skysense.catalog.merge_io import run_merge
    from skysense.catalog.prepare_io import prepare_hats
    from skysense.sim.catalogs import CatalogSim, write_catalogs

    n = _count(opts.objects) if not opts.quick else 100_000
    work = Path(opts.work or tempfile.mkdtemp(prefix="skysense-merge-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    meta: dict = {"objects": n, "center": CENTER, "radius_arcsec": opts.radius,
                  "worker_memory": opts.worker_memory, "work": str(work), "load": {}}  # fmt: skip
    times: dict[str, float] = {}
    peaks: dict[str, float] = {}
    hwm: dict[str, float | None] = {}

    def stage(name, func):
        meta["load"][name] = [_load()]
        _reset_hwm()
        t, mem, out = peak_rss_during(func)
        hwm[name] = _hwm_mb()
        meta["load"][name].append(_load())
        times[name], peaks[name] = t, mem / 2**20
        print(f"{name}: {t:.1f} s, driver +{mem / 2**20:.0f} MB, VmHWM {hwm[name]} MB, "
              f"load {meta['load'][name]}", file=sys.stderr, flush=True)  # fmt: skip
        return out

    cluster = None
    try:
        sim = CatalogSim(n_objects=n, seed=19, center=CENTER)
        manifest = stage("simulate", lambda: write_catalogs(sim, work / "sim"))
        surveys = list(manifest["surveys"])
        meta["catalogue_rows"] = manifest["catalogue_rows"]
        (work / "prepared").mkdir(exist_ok=True)

        def prepare():
            # Partition by partition on the local scheduler: the driver holds per-partition
            # summaries only (calibrations are measured per partition, see prepare_hats).
            for s in surveys:
                prepare_hats(work / "sim" / "configs" / f"{s}.yml", work / "prepared" / s)

        stage("prepare", prepare)
        cfg = {"catalogues": [{"file": f"prepared/{s}", "survey": s} for s in surveys],
               "radius_arcsec": opts.radius}  # fmt: skip
        import yaml

        (work / "merge.yaml").write_text(yaml.safe_dump(cfg))
        config = load_merge_config(work / "merge.yaml")
        # The local run: the same tile tasks on Dask's default local scheduler.
        stage("merge local", lambda: run_merge(config, work / "local", tile_order=opts.tile_order))
        if opts.in_memory:
            stage("merge in memory", lambda: run_merge(config, work / "memory", tiled=False))
        cluster = _Cluster(work, opts.worker_memory)
        from distributed import Client

        with Client(cluster.address, timeout=120) as client:
            client.wait_for_workers(2, timeout=300)
            stop, wpeaks = threading.Event(), {}
            poll = threading.Thread(target=_worker_peaks, args=(client, stop, wpeaks))
            poll.start()
            try:
                stage("merge cluster",
                      lambda: run_merge(config, work / "cluster", scheduler=cluster.address,
                                        tile_order=opts.tile_order))  # fmt: skip
            finally:
                stop.set()
                poll.join()
            restarts = [w for w in client.scheduler_info()["workers"].values()]
        meta["worker_peak_mb"] = {k: v / 2**20 for k, v in sorted(wpeaks.items())}
        meta["workers_at_end"] = len(restarts)

        same_ml, n_ml = _same_files(work / "local" / "masterlist", work / "cluster" / "masterlist")
        same_at, n_at = _same_files(work / "local" / "associations", work / "cluster" / "associations")  # fmt: skip
        meta["identical_masterlist"] = bool(same_ml)
        meta["identical_associations"] = bool(same_at)
        meta["compared_files"] = {"masterlist": n_ml, "associations": n_at, "how": "bytes"}
        b = read_hats_table(work / "cluster" / "masterlist").drop(columns="_healpix_29")
        y = pd.read_parquet(work / "cluster" / "associations")
        meta["n_objects"] = int(len(b))
        if opts.in_memory:
            # Another partitioning, the same objects and associations.
            a = read_hats_table(work / "memory" / "masterlist").drop(columns="_healpix_29")
            a, bb = (t.sort_values("object_key").reset_index(drop=True) for t in (a, b))
            x = pd.read_parquet(work / "memory" / "associations")
            x, yy = (t.sort_values(["object_key", "survey"]).reset_index(drop=True) for t in (x, y))  # fmt: skip
            meta["in_memory_equal"] = {"masterlist": bool(a.shape == bb.shape and a.equals(bb)),
                                       "associations": bool(x.shape == yy.shape and x.equals(yy))}  # fmt: skip
            del a, bb, x, yy
        prov = json.loads((work / "cluster" / "provenance.json").read_text())
        meta["tiles"] = {k: prov.get(k) for k in ("tile_order", "n_tiles", "rounds", "rows_per_tile",
                                                  "worker_memory_limit")}  # fmt: skip
        # Objects whose rows lie in different tiles, and objects near the pole.
        shift = 2 * (29 - prov["tile_order"])
        tiles = []
        for s in surveys:
            p = read_hats_table(work / "prepared" / s, columns=[f"{s}_id", f"{s}_ra", f"{s}_dec"])
            tiles.append(pd.DataFrame({"survey": s, "source_id": p[f"{s}_id"].astype(str),
                                       "tile": spatial_index(p[f"{s}_ra"].to_numpy(), p[f"{s}_dec"].to_numpy()) >> shift}))  # fmt: skip
        tiles = pd.concat(tiles, ignore_index=True)
        yt = (
            y[["object_key", "survey", "source_id"]]
            .astype({"source_id": str})
            .merge(tiles, on=["survey", "source_id"])
        )
        meta["objects_straddling_tiles"] = int(
            (yt.groupby("object_key")["tile"].nunique() > 1).sum()
        )
        meta["objects_within_0.5deg_of_pole"] = int((b["dec"] > 89.5).sum())
        meta["ra_range_deg"] = [float(b["ra"].min()), float(b["ra"].max())]
        meta.update(_scores(work, y, surveys))
        meta["times_s"] = times
        meta["driver_peak_increase_mb"] = peaks
        meta["driver_vmhwm_mb"] = hwm
    finally:
        if cluster is not None:
            cluster.stop()
        if not opts.keep and opts.work is None:
            shutil.rmtree(work, ignore_errors=True)
    label = f"merge of {n / 1e6:g}M objects ({meta['catalogue_rows'] / 1e6:.1f}M rows)"
    rows = [Row(f"{label}: cluster vs local (tiled, Dask local scheduler)", times["merge cluster"],
                times["merge local"], "skysense tiled merge, local scheduler", unit="s",
                notes=f"byte-identical masterlist {meta['identical_masterlist']}, associations "
                f"{meta['identical_associations']}; completeness {meta['completeness']:.4f}, purity "
                f"{meta['purity']:.4f}; driver VmHWM local {hwm['merge local']:.0f} MB, prepare "
                f"{hwm['prepare']:.0f} MB; workers "
                f"{'/'.join(f'{v:.0f}' for v in meta['worker_peak_mb'].values())} MB; load "
                f"{meta['load']['merge cluster']} / {meta['load']['merge local']}",
                extra={k: meta[k] for k in ("identical_masterlist", "identical_associations",
                                            "completeness", "purity", "driver_vmhwm_mb",
                                            "worker_peak_mb")})]  # fmt: skip
    return rows, meta
