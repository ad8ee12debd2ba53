"""Tiled XID+ on Dask: one task per tile (an RA/Dec box or HEALPix cells), restartable, joined
into one catalogue.

Each tile's catalogue rows (its own sources only) are written atomically to
``OUT/tiles/<tile>.parquet``; a rerun skips tiles whose file exists, so an interrupted run
resumes where it stopped. The joined catalogue is written as ``OUT/catalogue.fits`` and
``.parquet``, and the list of unfittable sources as ``OUT/unfitted.csv``.

The hierarchical flux prior (``flux_kind="hierarchical"``) learns the population of each band
from the map, and tiles must share it. Two passes (:func:`population_pass`): pass 1 fits the
hierarchical model on a few pilot tiles spread over the field and combines their posteriors
of the population's log10 mean, sd (dex) and skew-normal shape alpha per band by precision
weighting (each pilot tile's data are independent, so this approximates the joint posterior
by a product of Gaussians, :func:`combine_pilots`; a product of posteriors counts the
hyperprior once per pilot tile, so the combination divides out all copies but one: the
hyperprior of the log10 mean and of the sd are weak, but alpha's, Normal(2, 1), is not, and
the map hardly constrains alpha, so 4 pilot tiles had pulled it 4x as hard to the hyperprior's
mean); pass 2 fits every tile with that population fixed, i.e. the
skew-normal in log10 flux with location ``flux_mu_<band>`` (mJy), scale ``flux_sigma_<band>``
(dex) and shape ``flux_skew_<band>`` (``flux_kind="lognormal"``; the learned population,
skew included, not a log-normal of its mean and sd). The estimate goes to
``OUT/population.json`` (band -> [10^mean mJy, sd dex, alpha]) so that a restart uses the
same one. Fixing the hyperparameters ignores their posterior uncertainty, which is small
when pilot tiles hold hundreds of sources each. Its cost, measured on six simulated SPIRE 250
fields of 500 sources in 2-3 tiles (``python -m benchmarks._xid_tiled_population``): 68 %
coverage 77.3 % tiled against 76.9 % for one whole-field fit, posterior medians 0.05 sd
(median; 0.17 sd at the 95th percentile) from the whole-field ones, about the MCMC noise of
2 x 500 draws, and widths 1 % larger. Dropping the skew in pass 2 doubled the shifts (0.10,
0.29 sd) and widened the intervals by 9 % (coverage 77.8 %).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path, atomic_write_text
from skysense._dask import compute_with_progress, dask_client
from skysense.errors import InputError
from skysense.xid.io import read_tiles, write_catalogue, write_tile, write_unfitted
from skysense.xid.model import DEFAULT_FLUX_KIND, FWHM_ARCSEC
from skysense.xid.population import skew_normal_from_moments
from skysense.xid.skymap import SkyMap, moc_pixel_mask
from skysense.xid.tiles import Tile, make_tiles

__all__ = [
    "PIXEL_BUFFER_FWHM",
    "band_buffer_arcsec",
    "combine_pilots",
    "fit_tiles",
    "fit_one_tile",
    "population_columns",
    "population_pass",
    "tile_timing",
]


def _moc_box(moc, wcs, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """(rows, columns) of the map holding the MOC: a box around its bounding circle.

    A tile covers a small part of a field's map (10 deg^2 of MIPS at 1.2" is 9500^2 pixels);
    testing only the box's pixels keeps a tile's cost independent of the map's size. None when
    the MOC misses the map; the whole map when its centre does not project.
    """
    from skysense.xid.skymap import pixel_arcsec

    ny, nx = shape
    centre = moc.barycenter()
    radius = moc.largest_distance_from_coo_to_vertices(centre).to_value("arcsec")
    x, y = wcs.world_to_pixel(centre)
    if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(radius)):
        return slice(0, ny), slice(0, nx)
    # 5 % and 2 pixels of margin: the projection's scale changes by < 1e-3 over a degree
    r = radius / pixel_arcsec(wcs) * 1.05 + 2.0
    x0, x1 = max(int(np.floor(x - r)), 0), min(int(np.ceil(x + r)) + 1, nx)
    y0, y1 = max(int(np.floor(y - r)), 0), min(int(np.ceil(y + r)) + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


#: pixels of a band are fitted within this many of its beam FWHMs of the tile's cells
PIXEL_BUFFER_FWHM = 2.0


def band_buffer_arcsec(sky: SkyMap, buffer_arcsec: float) -> float:
    """Width of the ring of a band's pixels fitted around a tile's cells, arcsec.

    Twice the band's beam FWHM, never more than the tile's source buffer: an own source's
    beam ends about 1.6 FWHM beyond it (at 1e-3 of the peak), and the sources of the ring
    that blend with it lie within 2 FWHM. The sources of the wider ring (twice the largest
    beam, for SPIRE 500) are still fitted where their beams reach these pixels. For MIPS 24
    and PACS (6-11" beams) this cuts the pixels of a tile by a fifth to a quarter, and their
    confusion-field draws, which cost O(pixels log pixels), dominate a tile's time.
    """
    fwhm = sky.fwhm_arcsec or FWHM_ARCSEC.get(sky.band, 36.3)
    return float(min(buffer_arcsec, PIXEL_BUFFER_FWHM * fwhm))


def _tile_moc(tile: Tile, region_moc, sky: SkyMap | None = None, cache: dict | None = None):
    """The tile's cells grown by the buffer ring (of ``sky``'s band when given), within the
    region. ``cache``: MOCs already made, by buffer width (bands share them)."""
    buf = tile.buffer_arcsec if sky is None else band_buffer_arcsec(sky, tile.buffer_arcsec)
    if cache is not None and buf in cache:
        return cache[buf]
    moc = tile.moc(buf)
    moc = moc if region_moc is None else moc.intersection(region_moc)
    if cache is not None:
        cache[buf] = moc
    return moc


def _cut(sky: SkyMap, box: tuple[slice, slice], copy: bool = False) -> SkyMap:
    """``sky`` cut to ``box`` (views of its arrays, or copies with ``copy``)."""
    conv = np.array if copy else np.asarray
    return SkyMap(
        sky.band,
        conv(sky.image_mjy[box]),
        conv(sky.error_mjy[box]),
        sky.wcs[box],
        sky.fwhm_arcsec,
        sky.path,
    )


def _tile_boxes(tile: Tile, maps: Sequence[SkyMap], region_moc) -> list[SkyMap]:
    """Copies of the maps' boxes around the buffered tile; maps it misses dropped.

    What a tile task is sent instead of the whole maps: a 10 deg^2 field's maps are gigabytes,
    a tile's boxes a few tens of megabytes (copies, so the task does not pin the whole array).
    """
    mocs: dict = {}
    out = []
    for sky in maps:
        moc = _tile_moc(tile, region_moc, sky, mocs)
        box = _moc_box(moc, sky.wcs, sky.image_mjy.shape)
        if box is not None:
            out.append(_cut(sky, box, copy=True))
    return out


def _tile_maps(tile: Tile, maps: Sequence[SkyMap], region_moc) -> list[SkyMap]:
    """The maps cut to the buffered tile's box (pixels outside the tile's cells grown by the
    band's ring, :func:`band_buffer_arcsec`, NaN); maps it misses dropped. ``maps`` may be
    whole maps or the tile's boxes (:func:`_tile_boxes`)."""
    mocs: dict = {}
    tile_maps = []
    for sky in maps:
        moc = _tile_moc(tile, region_moc, sky, mocs)
        box = _moc_box(moc, sky.wcs, sky.image_mjy.shape)
        if box is None:
            continue
        sub = _cut(sky, box)
        mask = moc_pixel_mask(moc, sub.wcs, sub.image_mjy.shape) & sub.good
        if not mask.any():
            continue
        sub.image_mjy = np.where(mask, sub.image_mjy, np.nan)
        tile_maps.append(sub)
    return tile_maps


def _pilot_population(tile, maps, prior, region_moc, fit_kwargs) -> dict:
    """Pass 1 on one tile: band -> (mean, var) of the population's log10 mean, of its sd
    (dex) and of its shape alpha (0, 0 for a log-normal population), then alpha's
    hyperprior (mean, sd); and under ``"_timing"`` the tile's seconds (:func:`tile_timing`,
    ``cpu_s``, ``wall_s``)."""
    from skysense.xid.fit import fit

    c0, t0 = time.process_time(), time.perf_counter()
    tile_maps = _tile_maps(tile, maps, region_moc)
    if not tile_maps:
        return {}
    kw = dict(fit_kwargs)
    seed = (kw.pop("random_state", 0) or 0) * 1_000_003 + tile.pixel + 1
    res = fit(tile_maps, prior.iloc[tile.fit].reset_index(drop=True), random_state=seed, **kw)
    timing = {"tile": tile.name, "n_fit": int(len(tile.fit)), **tile_timing(res)}
    timing.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0)
    out: dict = {"_timing": timing}
    for band, p in res.posteriors.items():
        if p.pop_median_mjy is None:
            continue
        lm, sd = np.log10(p.pop_median_mjy).ravel(), p.pop_sigma_dex.ravel()
        al = np.zeros(1) if p.pop_skew is None else p.pop_skew.ravel()
        fp = res.models[band].flux_prior
        # alpha's hyperprior (its sd 0: alpha fixed, nothing to divide out)
        hyper = (float(fp.hyper_skew_mean), float(fp.hyper_skew_sd))
        out[band] = (lm.mean(), lm.var(), sd.mean(), sd.var(), al.mean(), al.var(), *hyper)
    return out


def population_pass(
    tiles: Sequence[Tile],
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    *,
    n_pilot: int = 4,
    region_moc=None,
    client=None,
    timing: list | None = None,
    **fit_kwargs,
) -> dict[str, tuple[float, float, float]]:
    """Pass 1 of the tiled hierarchical prior: each band's population from pilot tiles.

    Parameters
    ----------
    tiles : the field's tiles; ``n_pilot`` of them, evenly spread in the list (which follows
        the HEALPix NESTED order, or Dec strips by RA for boxes, so over the field), are fitted
    maps, prior : as :func:`skysense.xid.fit.fit`
    fit_kwargs : passed to :func:`skysense.xid.fit.fit` (``flux_kind="hierarchical"``)
    timing : list, optional - each pilot tile's seconds are appended to it (dicts: ``tile``,
        ``cpu_s``, ``wall_s`` and per band as :func:`tile_timing`)

    Returns
    -------
    dict band -> (10^mean of log10 flux in mJy, sd of log10 flux in dex, skew-normal shape
    alpha), precision-weighted over the pilot tiles (the moments, not the location and scale:
    the map pins the moments down, while location and scale trade off against alpha)
    """
    import dask

    if n_pilot < 1:
        raise InputError(f"n_pilot must be >= 1, got {n_pilot}")
    pick = np.unique(np.linspace(0, len(tiles) - 1, min(n_pilot, len(tiles))).round().astype(int))
    task = dask.delayed(_pilot_population, pure=False)
    prior_d = dask.delayed(prior, traverse=False)
    kw = {**fit_kwargs, "flux_kind": "hierarchical"}
    boxes = [_tile_boxes(tiles[i], maps, region_moc) for i in pick]
    if client is not None:  # scattered, not embedded in the graph (tens of MB)
        boxes = [client.scatter(b, hash=False) for b in boxes]
    tasks = [task(tiles[i], b, prior_d, region_moc, kw) for i, b in zip(pick, boxes)]
    found = compute_with_progress(
        tasks, label=f"XID+ population, {len(tasks)} pilot tiles", client=client
    )
    if timing is not None:
        timing.extend(r.pop("_timing") for r in found if "_timing" in r)
    found = [{b: v for b, v in r.items() if b != "_timing"} for r in found]
    out = {}
    for band in sorted({b for r in found for b in r}):
        est = np.array([r[band] for r in found if band in r])
        # the log10 mean's and the sd's hyperpriors are weak (1.5 dex, 1 dex): not divided out
        lm, sd = (combine_pilots(est[:, k], est[:, k + 1]) for k in (0, 2))
        al = combine_pilots(est[:, 4], est[:, 5], est[0, 6], est[0, 7])
        out[band] = (10.0**lm, sd, al)
    if not out:
        raise InputError("no pilot tile of the hierarchical prior holds map pixels")
    return out


def combine_pilots(
    mean: np.ndarray,
    var: np.ndarray,
    prior_mean: float = 0.0,
    prior_sd: float = np.inf,
) -> float:
    """Posterior mean of a parameter given every pilot tile, from each tile's posterior.

    Each pilot tile's posterior is taken as Normal(``mean[i]``, ``var[i]``), the product of
    the parameter's prior Normal(``prior_mean``, ``prior_sd``^2) and that tile's likelihood;
    the tiles' data are independent, so the posterior given all of them is the prior times
    every likelihood: the product of the tiles' posteriors divided by the prior n - 1 times.
    Of several tiles, one whose posterior is no narrower than the prior (MCMC noise when the
    data say nothing) adds no information and is left out; a single tile's posterior is
    returned as it is. ``prior_sd`` inf (or 0: a fixed
    parameter) is the plain precision-weighted mean.

    Exact only when each tile's posterior is Gaussian (a Gaussian likelihood). alpha's is
    not (the skewness saturates, so a tile's likelihood of alpha is close to one-sided):
    each tile's summary then stands for a Gaussian likelihood that overstates what the tile
    says, and the combination overshoots (one-sided tile likelihoods, prior Normal(2, 1),
    4 tiles: 3.44 against the exact 3.33; the plain product gives 3.08). A nearly
    uninformative tile (posterior variance just below the prior's) also passes its Monte
    Carlo error in the mean on almost unshrunk: n such tiles add their errors rather than
    average them.

    Parameters
    ----------
    mean, var : ndarray (n_tiles,) - posterior mean and variance per pilot tile
    prior_mean, prior_sd : float - the parameter's Gaussian prior

    Returns
    -------
    float
    """
    mean, var = np.asarray(mean, float), np.maximum(np.asarray(var, float), 1e-12)
    tau = 1.0 / var
    if mean.size == 1:  # one tile: its posterior is the posterior given every tile
        return float(mean[0])
    if not (np.isfinite(prior_sd) and prior_sd > 0):
        return float(np.sum(tau * mean) / tau.sum())
    tau0 = 1.0 / prior_sd**2
    informative = tau > tau0
    # each tile's likelihood: precision tau_i - tau0, precision-weighted mean tau_i m_i - tau0 m0
    lam = np.where(informative, tau - tau0, 0.0)
    num = np.where(informative, tau * mean - tau0 * prior_mean, 0.0)
    return float((tau0 * prior_mean + num.sum()) / (tau0 + lam.sum()))


def population_columns(pop: dict) -> dict[str, float]:
    """Prior-list columns fixing the populations of :func:`population_pass` (pass 2).

    ``pop``: band -> (10^mean mJy, sd dex[, alpha]) (alpha 0 when absent). Returns the
    ``flux_mu_<band>`` (10^location, mJy), ``flux_sigma_<band>`` (scale, dex) and
    ``flux_skew_<band>`` (alpha) of the skew-normal in log10 flux with those moments, for
    ``flux_kind="lognormal"``.
    """
    cols = {}
    for band, v in pop.items():
        med, sdex = float(v[0]), float(v[1])
        alpha = float(v[2]) if len(v) > 2 else 0.0
        loc, scale = skew_normal_from_moments(np.log10(med), sdex, alpha)
        cols[f"flux_mu_{band}"] = float(10.0**loc)
        cols[f"flux_sigma_{band}"] = float(scale)
        cols[f"flux_skew_{band}"] = alpha
    return cols


def fit_one_tile(
    tile: Tile,
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    out_dir: str | os.PathLike,
    region_moc=None,
    fitter=None,
    n_rep: int = 200,
    **fit_kwargs,
) -> str:
    """Fit one tile (unless its result exists) and return the path of its Parquet file.

    ``fitter`` is :func:`skysense.xid.fit.fit` (default) or
    :func:`skysense.xid.fit.fit_sed_maps` (SED mode); ``fit_kwargs`` are passed to it.
    ``n_rep``: replicates of the catalogue's ``Pval_res`` columns (0: none).

    Beside the Parquet file, ``<tile>.timing.json`` records where the tile's time went
    (:func:`tile_timing`): the extrapolation basis of a field's run time, in CPU seconds,
    which depend far less than wall seconds on what else the machine runs.
    """
    # looked up at call time, so that the fitter can be replaced (tests do)
    from skysense.xid.fit import fit

    fitter = fit if fitter is None else fitter

    out = Path(out_dir) / "tiles" / f"{tile.name}.parquet"
    if out.exists():
        return str(out)
    sub = prior.iloc[tile.fit].reset_index(drop=True)
    own_ids = set(prior["id"].iloc[tile.own])
    # pixels of the buffered tile only: a tile never sees the whole field
    c0, t0 = time.process_time(), time.perf_counter()
    tile_maps = _tile_maps(tile, maps, region_moc)
    seed = (fit_kwargs.pop("random_state", 0) or 0) * 1_000_003 + tile.pixel
    timing = {"tile": tile.name, "n_own": int(len(tile.own)), "n_fit": int(len(tile.fit))}
    if tile_maps:
        try:
            c1 = time.process_time()
            res = fitter(tile_maps, sub, random_state=seed, **fit_kwargs)
            c2 = time.process_time()
            cat = res.catalogue(n_rep=n_rep)
            timing.update(
                tile_timing(res), cut_cpu_s=c1 - c0, catalogue_cpu_s=time.process_time() - c2
            )
            unf = res.unfitted
        except InputError as exc:  # report the tile's failure with its sources, keep going
            cat = pd.DataFrame({"HELP_ID": sub["id"], "RA": sub["ra"], "Dec": sub["dec"]})
            unf = pd.DataFrame({"id": sub["id"], "band": "all", "reason": f"tile failed: {exc}"})
    else:
        cat = pd.DataFrame({"HELP_ID": sub["id"], "RA": sub["ra"], "Dec": sub["dec"]})
        unf = pd.DataFrame({"id": sub["id"], "band": "all", "reason": "tile has no map pixels"})
    keep = sub["id"].isin(own_ids).to_numpy()
    cat = cat[keep].copy()
    cat["xid_tile"] = tile.name
    unf = unf[unf["id"].isin(own_ids)]
    timing.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0)
    atomic_write_text(out.with_suffix(".timing.json"), json.dumps(timing, indent=1))
    return str(write_tile(cat, unf, out))


def tile_timing(res) -> dict:
    """Per band of a fit (:class:`skysense.xid.fit.XIDResult`): pixels, sources and the
    sampler's seconds (warm-up and sampling wall, sampling CPU; band -> dict)."""
    bands = {}
    for band, p in res.posteriors.items():
        m = res.models[band]
        bands[band] = {
            "npix": int(m.npix),
            "nsrc": int(m.nsrc),
            "warmup_s": float(p.warmup_s),
            "sampling_s": float(p.sampling_s),
            "sampling_cpu_s": float(p.sampling_cpu_s),
        }
    return {"bands": bands}


def _hierarchical(flux_kind: str | None, prior: pd.DataFrame) -> bool:
    """Whether ``fit`` would use the hierarchical prior (asked for, or the default without
    Gaussian ``flux_mu_<band>`` columns in the prior list)."""
    if flux_kind is None:
        given = any(c.lower().startswith("flux_mu_") for c in prior.columns)
        return not given and DEFAULT_FLUX_KIND == "hierarchical"
    return flux_kind == "hierarchical"


def _fix_population(tiles, maps, prior, out, n_pilot, region_moc, client, fit_kwargs, timing):
    """Pass 1 (or its saved result): the prior with the population columns
    (:func:`population_columns`), kind ``"lognormal"`` (skew-normal with the learned shape).
    The pilot tiles' seconds are appended to ``timing``."""
    path = out / "population.json"
    if path.exists():  # a restart: the tiles already written used this estimate
        pop = {b: tuple(v) for b, v in json.loads(path.read_text(encoding="utf-8")).items()}
    else:
        pop = population_pass(
            tiles,
            maps,
            prior,
            n_pilot=n_pilot,
            region_moc=region_moc,
            client=client,
            timing=timing,
            **fit_kwargs,
        )
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(pop, indent=1), encoding="utf-8")
    return prior.assign(**population_columns(pop)), {**fit_kwargs, "flux_kind": "lognormal"}


def _fit_all(tiles, maps, prior, out, region_moc, fitter, fit_kwargs, client) -> list[str]:
    """Every tile's Parquet path: tasks get their own map boxes, a bounded number at a time.

    Whole maps are never put in the graph: each task is sent its tile's boxes
    (:func:`_tile_boxes`), made just before it is submitted, and at most ``window`` tasks
    (two per worker thread, plus one) are queued or running. Memory thus stays bounded by the
    maps plus a few tiles whatever the field's size. Tiles already written are not sent.
    """
    import functools
    import itertools

    import dask

    from skysense._dask import progress

    paths = [str(Path(out) / "tiles" / f"{t.name}.parquet") for t in tiles]
    todo = [t for t, p in zip(tiles, paths) if not Path(p).exists()]
    if client is None:
        threads = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    else:
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    window = 2 * max(threads, 1) + 1
    run = functools.partial(fit_one_tile, out_dir=out, region_moc=region_moc, fitter=fitter)
    with progress(len(todo), f"XID+ {len(tiles)} tiles", unit="tiles") as update:
        if client is None:  # a local scheduler: batches of ``window`` tiles
            task = dask.delayed(run, pure=False)
            prior_d = dask.delayed(prior, traverse=False)
            for i in range(0, len(todo), window):
                batch = todo[i : i + window]
                dask.compute(
                    *[
                        task(t, _tile_boxes(t, maps, region_moc), prior_d, **fit_kwargs)
                        for t in batch
                    ]
                )
                update(len(batch))
            return paths
        from distributed import as_completed

        # the prior list is small (100,000 rows are a few MB): one copy per worker
        prior_f = client.scatter(prior, broadcast=True)
        run = functools.partial(run, **fit_kwargs)
        queue = iter(todo)

        def send(t):
            # scattered, not embedded in the task: a MIPS box is tens of MB
            boxes = client.scatter(_tile_boxes(t, maps, region_moc), hash=False)
            return client.submit(run, t, boxes, prior_f, pure=False)

        running = as_completed([send(t) for t in itertools.islice(queue, window)])
        for fut in running:
            fut.result()  # a task's error is raised here
            fut.release()
            update()
            nxt = next(queue, None)
            if nxt is not None:
                running.add(send(nxt))
    return paths


def fit_tiles(
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    order: int | None = None,
    sources_per_tile: int = 600,
    buffer_arcsec: float | None = None,
    scheduler: str | None = None,
    region_moc=None,
    fitter=None,
    n_pilot: int = 4,
    n_rep: int = 200,
    tile_shape: str = "box",
    **fit_kwargs,
) -> pd.DataFrame:
    """Fit a large field tile by tile on Dask and join the catalogue.

    Parameters
    ----------
    maps, prior : as :func:`skysense.xid.fit.fit`
    out_dir : path - tiles go to ``out_dir/tiles``; the joined catalogue to ``out_dir``
    order : int, optional - one HEALPix order for every tile (default: tiles of about
        ``sources_per_tile`` sources)
    buffer_arcsec : float, optional - default twice the largest beam FWHM
    scheduler : str, optional - Dask scheduler address (default local threads)
    fitter : callable, optional - :func:`skysense.xid.fit.fit` (default) or
        :func:`skysense.xid.fit.fit_sed_maps` to fit every tile in the SED mode
    n_pilot : int - with the hierarchical prior (the default): pilot tiles of the population pass
        (module docstring); the tiles are then fitted with the population fixed
    n_rep : int - posterior-predictive replicates per band behind the catalogue's
        ``Pval_res`` columns (0: none, the columns are NaN)
    tile_shape : ``"box"`` (default: RA/Dec boxes of equal counts, whose pixels fill the
        confusion field's FFT box; HEALPix cells where boxes cannot be used, and whenever
        ``order`` is given) or ``"healpix"`` (:func:`skysense.xid.tiles.make_tiles`). On a
        simulated 1 deg^2 field (300-source tiles) a box tile cost 8.4 CPU s in MIPS 24
        against 15.1 for a HEALPix tile of as many sources (their FFT boxes 0.56 and 1.06
        Mpix), with the same flux ESS
    **fit_kwargs : passed to the fitter (sampler, n_samples, templates, ...)

    Returns
    -------
    DataFrame - the joined catalogue (also written to ``out_dir``)
    """

    if not len(maps):
        raise InputError("no map given")
    if len(prior) == 0:
        raise InputError("the prior catalogue is empty")
    missing = [c for c in ("id", "ra", "dec") if c not in prior.columns]
    if missing:
        raise InputError(f"the prior catalogue has no {missing[0]!r} column", column=missing[0])
    if not prior["id"].is_unique:
        dup = prior["id"][prior["id"].duplicated()].iloc[0]
        raise InputError(
            f"prior ids must be unique (tiles keep their own sources by id), {dup!r} repeats",
            column="id",
            row=int(np.flatnonzero(prior["id"].to_numpy() == dup)[1]),
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if buffer_arcsec is None:
        fwhm = [m.fwhm_arcsec or FWHM_ARCSEC.get(m.band, 36.3) for m in maps]
        buffer_arcsec = 2.0 * max(fwhm)
    tiles = make_tiles(
        prior["ra"].to_numpy(),
        prior["dec"].to_numpy(),
        order=order,
        sources_per_tile=sources_per_tile,
        buffer_arcsec=buffer_arcsec,
        shape="healpix" if order is not None else tile_shape,
    )
    timing: dict = {"n_tiles": len(tiles), "n_pilot": 0, "pilots": []}
    with dask_client(scheduler) as client:
        t0 = time.perf_counter()
        if fitter is None and _hierarchical(fit_kwargs.get("flux_kind"), prior):
            prior, fit_kwargs = _fix_population(
                tiles, maps, prior, out, n_pilot, region_moc, client, fit_kwargs, timing["pilots"]
            )
            timing["n_pilot"] = min(n_pilot, len(tiles))
        t1 = time.perf_counter()
        kw = {**fit_kwargs, "n_rep": n_rep}
        paths = _fit_all(tiles, maps, prior, out, region_moc, fitter, kw, client)
    # this attempt's wall seconds of the two passes (a resumed run counts only what it redid)
    timing.update(population_wall_s=t1 - t0, tiles_wall_s=time.perf_counter() - t1)
    atomic_write_text(out / "timing.json", json.dumps(timing, indent=1))
    cat, unf = read_tiles(paths)
    write_catalogue(cat, out / "catalogue")
    write_unfitted(unf, out / "unfitted.csv")
    return cat
