"""Tiled XID+ on Dask: one task per HEALPix tile, restartable, joined into one catalogue.

Each tile's catalogue rows (its own sources only) are written atomically to
``OUT/tiles/<tile>.parquet``; a rerun skips tiles whose file exists, so an interrupted run
resumes where it stopped. The joined catalogue is written as ``OUT/catalogue.fits`` and
``.parquet``, and the list of unfittable sources as ``OUT/unfitted.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._dask import compute_with_progress, dask_client
from skysense.errors import InputError
from skysense.xid.io import read_tiles, write_catalogue, write_tile, write_unfitted
from skysense.xid.model import FWHM_ARCSEC
from skysense.xid.skymap import SkyMap, moc_pixel_mask
from skysense.xid.tiles import Tile, make_tiles

__all__ = ["fit_tiles", "fit_one_tile"]


def fit_one_tile(
    tile: Tile,
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    out_dir: str | os.PathLike,
    region_moc=None,
    fitter=None,
    **fit_kwargs,
) -> str:
    """Fit one tile (unless its result exists) and return the path of its Parquet file.

    ``fitter`` is :func:`skysense.xid.fit.fit` (default) or
    :func:`skysense.xid.fit.fit_sed_maps` (SED mode); ``fit_kwargs`` are passed to it.
    """
    # looked up at call time, so that the fitter can be replaced (tests do)
    from skysense.xid.fit import fit

    fitter = fit if fitter is None else fitter

    out = Path(out_dir) / "tiles" / f"{tile.name}.parquet"
    if out.exists():
        return str(out)
    moc = tile.moc()
    if region_moc is not None:
        moc = moc.intersection(region_moc)
    sub = prior.iloc[tile.fit].reset_index(drop=True)
    own_ids = set(prior["id"].iloc[tile.own])
    # pixels of the buffered tile only: a tile never sees the whole field
    tile_maps = []
    for sky in maps:
        mask = moc_pixel_mask(moc, sky.wcs, sky.image_mjy.shape) & sky.good
        if not mask.any():
            continue
        img = np.where(mask, sky.image_mjy, np.nan)
        tile_maps.append(SkyMap(sky.band, img, sky.error_mjy, sky.wcs, sky.fwhm_arcsec, sky.path))
    seed = (fit_kwargs.pop("random_state", 0) or 0) * 1_000_003 + tile.pixel
    if tile_maps:
        try:
            res = fitter(tile_maps, sub, random_state=seed, **fit_kwargs)
            cat = res.catalogue()
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
    return str(write_tile(cat, unf, out))


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
    **fit_kwargs,
) -> pd.DataFrame:
    """Fit a large field tile by tile on Dask and join the catalogue.

    Parameters
    ----------
    maps, prior : as :func:`skysense.xid.fit.fit`
    out_dir : path - tiles go to ``out_dir/tiles``; the joined catalogue to ``out_dir``
    order : int, optional - HEALPix order of the tiles (default from ``sources_per_tile``)
    buffer_arcsec : float, optional - default twice the largest beam FWHM
    scheduler : str, optional - Dask scheduler address (default local threads)
    fitter : callable, optional - :func:`skysense.xid.fit.fit` (default) or
        :func:`skysense.xid.fit.fit_sed_maps` to fit every tile in the SED mode
    **fit_kwargs : passed to the fitter (sampler, n_samples, templates, ...)

    Returns
    -------
    DataFrame - the joined catalogue (also written to ``out_dir``)
    """
    import dask

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
    )
    task = dask.delayed(fit_one_tile, pure=False)
    # one graph node each for the maps and the prior, shared by every tile task
    maps_d = dask.delayed(list(maps), traverse=False)
    prior_d = dask.delayed(prior, traverse=False)
    with dask_client(scheduler) as client:
        tasks = [task(t, maps_d, prior_d, out, region_moc, fitter, **fit_kwargs) for t in tiles]
        paths = compute_with_progress(tasks, label=f"XID+ {len(tiles)} tiles", client=client)
    cat, unf = read_tiles(paths)
    write_catalogue(cat, out / "catalogue")
    write_unfitted(unf, out / "unfitted.csv")
    return cat
