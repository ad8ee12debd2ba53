"""Simulator throughput: map injection against an astropy.modeling peer, and the whole field.

Rows
----
* ``inject <band>``: beam-normalised point sources rendered into a map, sources per second.
  skysense: :func:`skysense.sim.inject_point_sources` (numba, separable Gaussian, 5-sigma
  circular cut-off). Peer: the plain-astropy way, one ``astropy.modeling`` ``Gaussian2D`` per
  source rendered into the same array with ``Model.render`` over a bounding box of the same
  5-sigma half-width (Python loop). Same sources, same map; the notes give the largest
  per-pixel difference (the corners of the square box beyond the circular cut-off, each below
  exp(-12.5) of the source flux).
* ``simulate_sky``: galaxies + stars with SEDs in 11 bands, objects per second (no peer).
* ``write_field``: the whole field (sky, 4 catalogues + configs, reference, 4 maps, truth,
  manifest) written to disk, objects per second (no peer).
* ``write_catalogs``: the catalogue-only simulator (:mod:`skysense.sim.catalogs`; four surveys
  with truth, straight to HATS), catalogue rows per second, on one process (the synchronous
  scheduler) and on a ``distributed`` cluster of two single-threaded worker processes (as
  ``--scheduler tcp://...`` reaches one) after an untimed warm-up of every worker (numba
  cache, imports). CPU seconds (this process and its children, the cluster's own idle work
  included), rows per CPU second, the partition tasks' own CPU seconds (simulating and
  writing; the figure the load changes least) and rows per task CPU second, bytes per object, peak memory of the driver (increase) and
  of each worker (VmHWM), and the load average before and after are in each row (no peer).

``--only catalogs`` (or any subset of sky, inject, field, catalogs) reruns those rows and
keeps the previous results' other rows.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._harness import Row, peak_rss_during, timed

__all__ = ["run", "add_arguments"]


def add_arguments(parser) -> None:
    parser.add_argument("--area", type=float, default=None, help="field area in deg^2 (default 1)")
    parser.add_argument(
        "--peer-sources",
        type=int,
        default=None,
        help="sources rendered by the (slow) peer (default 3000; quick 300)",
    )
    parser.add_argument("--only", default=None,
                        help="comma-separated rows to run: sky, inject, field, catalogs "
                        "(default all; the others keep their previous results)")  # fmt: skip
    parser.add_argument("--catalog-sizes", default=None,
                        help="objects for the write_catalogs rows (default 1e6,1e7; quick 1e5)")  # fmt: skip
    parser.add_argument("--one-process-max", type=float, default=1e6,
                        help="largest size also run on one process (default 1e6)")  # fmt: skip
    parser.add_argument("--work", default=None,
                        help="directory for write_catalogs' outputs (default a temporary "
                        "one; deleted after each size)")  # fmt: skip


def _peer_render(shape, x, y, flux, sigma_pix, radius_pix):
    from astropy.modeling.functional_models import Gaussian2D

    image = np.zeros(shape)
    for k in range(len(flux)):
        model = Gaussian2D(flux[k], x[k], y[k], sigma_pix, sigma_pix)
        model.bounding_box = (
            (y[k] - radius_pix, y[k] + radius_pix),
            (x[k] - radius_pix, x[k] + radius_pix),
        )
        model.render(image)
    return image


def _injection_row(spec, sky, sources, rng, n_peer) -> Row:
    from skysense.sim import inject_point_sources
    from skysense.sim.maps import map_wcs

    wcs, shape = map_wcs(sky.geometry, spec.pixel_arcsec)
    x, y = wcs.wcs_world2pix(sources.ra.to_numpy(), sources.dec.to_numpy(), 0)
    flux = sources[f"f_{spec.band}"].to_numpy()
    sigma = spec.sigma_pix
    inject_point_sources(shape, x[:10], y[:10], flux[:10], sigma)  # JIT warm-up / cache load
    pick = rng.choice(len(flux), size=min(n_peer, len(flux)), replace=False)
    xs, ys, fs = x[pick], y[pick], flux[pick]
    t_all, _ = timed(lambda: inject_point_sources(shape, x, y, flux, sigma), repeat=2)
    t_sub, mine = timed(lambda: inject_point_sources(shape, xs, ys, fs, sigma), repeat=3)
    t_peer, theirs = timed(lambda: _peer_render(shape, xs, ys, fs, sigma, 5.0 * sigma))
    diff = float(np.abs(mine - theirs).max())
    bound = float(fs.max()) * math.exp(-12.5)
    return Row(
        f"inject {spec.band} ({len(pick)} src)",
        len(pick) / t_sub,
        len(pick) / t_peer,
        peer_name="astropy.modeling Gaussian2D.render loop",
        unit="sources/s",
        higher_is_better=True,
        notes=f"{shape[0]}x{shape[1]} px; max |diff| {diff:.2e} mJy/beam (<= {bound:.1e}); "
        f"all {len(flux)} sources in {t_all:.2f} s",
        extra={
            "map_shape": list(shape),
            "max_abs_diff": diff,
            "all_sources_s": t_all,
            "all_sources": len(flux),
        },
    )


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its children so far."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def _vm_hwm() -> int:
    """Peak resident bytes of the calling (worker) process."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024


def _catalog_row(n: int, where: str, scheduler, work: Path, client=None) -> Row:
    from skysense.sim.catalogs import CatalogSim, write_catalogs

    out = work / f"catalogs_{n}"
    shutil.rmtree(out, ignore_errors=True)
    load0 = os.getloadavg()
    cpu0 = _cpu_s()
    try:
        wall, rss, m = peak_rss_during(
            lambda: write_catalogs(CatalogSim(n_objects=n, seed=19), out, scheduler=scheduler)
        )
        cpu = _cpu_s() - cpu0
        load1 = os.getloadavg()
        workers = sorted(v / 1e6 for v in client.run(_vm_hwm).values()) if client else []
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rows_n = m["catalogue_rows"]
    per_object = m["bytes"] / n
    task = m["task_cpu_s"]
    return Row(
        f"write_catalogs {n:.0e} objects, {where}",
        rows_n / wall,
        None,
        unit="catalogue rows/s",
        higher_is_better=True,
        notes=f"{rows_n} rows in {wall:.2f} s, {cpu:.1f} CPU s ({rows_n / cpu:.3g} rows per CPU "
        f"second; the partition tasks' own {task:.1f} CPU s, {rows_n / task:.3g} rows per "
        f"task CPU second), {per_object:.0f} B/object, driver +{rss / 2**20:.0f} MiB"
        + (f", workers {'/'.join(f'{w:.0f}' for w in workers)} MB peak" if workers else "")
        + f", load {load0[0]:.1f}->{load1[0]:.1f}",
        extra={
            "objects": n,
            "catalogue_rows": rows_n,
            "wall_s": wall,
            "cpu_s": cpu,
            "rows_per_cpu_s": rows_n / cpu,
            "task_cpu_s": task,
            "rows_per_task_cpu_s": rows_n / task,
            "bytes": m["bytes"],
            "bytes_per_object": per_object,
            "partitions": m["catalogues"]["truth/objects"]["partitions"],
            "driver_peak_rss_increase_bytes": rss,
            "worker_peak_rss_mb": workers,
            "loadavg_before": [round(x, 2) for x in load0],
            "loadavg_after": [round(x, 2) for x in load1],
        },
    )


def _catalog_rows(opts) -> list[Row]:
    """write_catalogs on one process and on a two-worker process cluster."""
    from distributed import Client, LocalCluster

    from skysense.sim.catalogs import CatalogSim, field_cells, simulate_cell, write_catalogs

    sizes = opts.catalog_sizes or ("1e5" if opts.quick else "1e6,1e7")
    sizes = [int(float(x)) for x in sizes.split(",")]
    work = Path(opts.work) if opts.work else Path(tempfile.mkdtemp(prefix="skysense-catalogs-"))
    work.mkdir(parents=True, exist_ok=True)
    warm_sim = CatalogSim(n_objects=2000, seed=1)
    warm = functools.partial(simulate_cell, warm_sim, int(field_cells(1, warm_sim.center)[0]),
                             2000, (True,) * len(warm_sim.surveys))  # fmt: skip
    rows = []
    try:
        # This process: imports (hats), numba's cache; the workers: the kernels.
        write_catalogs(warm_sim, work / "warm", scheduler="synchronous")
        shutil.rmtree(work / "warm")
        for n in sizes:
            if n <= opts.one_process_max:
                rows.append(_catalog_row(n, "1 process", "synchronous", work))
                print(f"  {rows[-1].task}: {rows[-1].notes}", flush=True)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
            client.run(warm)
            time.sleep(1.0)
            for n in sizes:
                rows.append(_catalog_row(n, "2 worker processes", cluster.scheduler_address,
                                         work, client))  # fmt: skip
                print(f"  {rows[-1].task}: {rows[-1].notes}", flush=True)
    finally:
        if not opts.work:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def run(opts):
    only = set(opts.only.split(",")) if opts.only else {"sky", "inject", "field", "catalogs"}
    rows = []
    meta = {}
    if only & {"sky", "inject", "field"}:
        r, meta = _field_rows(opts, only)
        rows += r
    if "catalogs" in only:
        rows += _catalog_rows(opts)
        meta["catalogs"] = ("seed 19, default surveys and mag_limit; 2-core machine shared "
                            "with other jobs: see each row's load")  # fmt: skip
    if opts.only:
        from benchmarks._harness import RESULTS, with_previous

        path = RESULTS / "sim.json"
        if path.is_file():
            rows, meta = with_previous(json.loads(path.read_text()), rows, meta)
    return rows, meta


def _field_rows(opts, only):
    from skysense.sim import DEFAULT_MAPS, simulate_sky, write_field
    from skysense.sim.maps import map_sources

    area = opts.area if opts.area is not None else (0.05 if opts.quick else 1.0)
    n_peer = opts.peer_sources if opts.peer_sources is not None else (300 if opts.quick else 3000)
    rows = []

    t_sky, sky = timed(lambda: simulate_sky(seed=0, area_deg2=area), repeat=1 if opts.quick else 2)
    n_obj = len(sky.galaxies) + len(sky.stars)
    rows.append(
        Row(
            "simulate_sky",
            n_obj / t_sky,
            None,
            unit="objects/s",
            higher_is_better=True,
            notes=f"{n_obj} objects, {area:g} deg2, {t_sky:.2f} s",
            extra={"seconds": t_sky, "objects": n_obj},
        )
    )

    if "sky" not in only:
        rows = []
    sources = map_sources(sky)
    rng = np.random.default_rng(0)
    for spec in (m for m in DEFAULT_MAPS if m.band in ("spire_250", "mips_24")):
        if "inject" in only:
            rows.append(_injection_row(spec, sky, sources, rng, n_peer))
    meta = {"area_deg2": area, "objects": n_obj, "peer_sources": n_peer}
    if "field" not in only:
        return rows, meta

    with tempfile.TemporaryDirectory() as tmp:
        elapsed, rss, manifest = peak_rss_during(
            lambda: write_field(Path(tmp) / "field", seed=0, area_deg2=area, progress=False)
        )
    rows_total = sum(s["n_rows"] for s in manifest["surveys"].values())
    rows.append(
        Row(
            "write_field",
            n_obj / elapsed,
            None,
            unit="objects/s",
            higher_is_better=True,
            notes=f"{area:g} deg2 in {elapsed:.2f} s, {rows_total} catalogue rows, "
            f"peak +{rss / 2**20:.0f} MiB",
            extra={
                "seconds": elapsed,
                "peak_rss_bytes": rss,
                "timings_s": manifest["timings_s"],
                "catalogue_rows": {k: v["n_rows"] for k, v in manifest["surveys"].items()},
                "maps": {k: v["shape"] for k, v in manifest["maps"].items()},
            },
        )
    )
    return rows, meta
