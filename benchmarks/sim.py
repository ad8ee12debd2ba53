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
"""

from __future__ import annotations

import math
import tempfile
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


def run(opts):
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

    sources = map_sources(sky)
    rng = np.random.default_rng(0)
    for spec in (m for m in DEFAULT_MAPS if m.band in ("spire_250", "mips_24")):
        rows.append(_injection_row(spec, sky, sources, rng, n_peer))

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
    meta = {"area_deg2": area, "objects": n_obj, "peer_sources": n_peer}
    return rows, meta
