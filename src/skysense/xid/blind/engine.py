"""Blind extraction of a large map tile by tile on Dask.

The map is cut into square pixel tiles (cores) that cover it exactly once; each task extracts
sources from its core grown by a buffer ring, then keeps the sources whose *peak pixel* lies
in its core, so a source near a tile edge is catalogued exactly once. The buffer (default 6
FWHM) is wider than the filter's response and the PSF-fitting zone, and every tile uses the
whole map's background, confusion noise and filter noise, so the joined catalogue equals the
single-map extraction (:func:`skysense.xid.blind.extract.extract_sources`) to rounding.

XID+'s tiling (:mod:`skysense.xid.tiles`) cuts a *prior catalogue* into HEALPix cells; a blind
extraction has no catalogue yet, so it tiles the map's pixel grid instead. Scheduling and the
progress bar are the shared ones (:mod:`skysense._dask`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from skysense._dask import compute_with_progress, dask_client
from skysense.errors import InputError
from skysense.xid.blind.extract import _extract, estimate_confusion_mjy
from skysense.xid.skymap import SkyMap

__all__ = ["pixel_tiles", "extract_tiles"]


def pixel_tiles(
    shape: tuple[int, int], tile_pix: int, buffer_pix: int
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Square cores covering a (ny, nx) grid once, each with its buffered cut-out.

    Parameters
    ----------
    shape : (ny, nx)
    tile_pix : int - side of a core, pixels
    buffer_pix : int - width of the ring added around each core (clipped at the map edge)

    Returns
    -------
    list of ``(core, cut)``, each ``(y0, y1, x0, x1)`` half-open pixel bounds
    """
    ny, nx = shape
    out = []
    for y0 in range(0, ny, tile_pix):
        for x0 in range(0, nx, tile_pix):
            y1, x1 = min(y0 + tile_pix, ny), min(x0 + tile_pix, nx)
            cut = (
                max(y0 - buffer_pix, 0),
                min(y1 + buffer_pix, ny),
                max(x0 - buffer_pix, 0),
                min(x1 + buffer_pix, nx),
            )
            out.append(((y0, y1, x0, x1), cut))
    return out


def _tile_task(
    image: np.ndarray,
    error: np.ndarray,
    band: str,
    core: tuple[int, int, int, int],
    cut: tuple[int, int, int, int],
    pixel_arcsec: float,
    settings: dict,
) -> pd.DataFrame:
    """Extract one buffered tile; rows of its core only, in whole-map pixel coordinates."""
    from skysense.xid.simulate import tan_wcs

    cy0, _, cx0, _ = cut
    with np.errstate(invalid="ignore"):
        good = np.isfinite(image) & np.isfinite(error) & (error > 0)
    if not good.any():
        return pd.DataFrame()
    # Positions are converted with the whole map's WCS afterwards; any WCS with the right
    # pixel size serves inside the tile.
    sky = SkyMap(band, image, error, tan_wcs(image.shape[1], image.shape[0], pixel_arcsec))
    df, iy, ix, peak_snr = _extract(sky, **settings)
    iy, ix = iy + cy0, ix + cx0
    y0, y1, x0, x1 = core
    own = (iy >= y0) & (iy < y1) & (ix >= x0) & (ix < x1)
    df = df[own].copy()
    df["x_pix"] += cx0
    df["y_pix"] += cy0
    df["_peak_iy"], df["_peak_ix"], df["_peak_snr"] = iy[own], ix[own], peak_snr[own]
    return df


def extract_tiles(
    sky: SkyMap,
    *,
    tile_pix: int = 1024,
    buffer_fwhm: float = 6.0,
    snr_threshold: float = 5.0,
    confusion_mjy: float | None = 0.0,
    fwhm_arcsec: float | None = None,
    deblend: bool = True,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Blind catalogue of a large map, extracted tile by tile on Dask.

    Parameters
    ----------
    sky : SkyMap
    tile_pix : int - side of a tile core, pixels (at least 4 FWHM)
    buffer_fwhm : float - width of the buffer ring, in beam FWHM (at least 4)
    snr_threshold, confusion_mjy, fwhm_arcsec, deblend :
        as :func:`skysense.xid.blind.extract.extract_sources`; ``confusion_mjy=None`` is estimated
        once from the whole map
    scheduler : str, optional - Dask scheduler address (default: local threads)

    Returns
    -------
    DataFrame - the columns and ``attrs`` of :func:`~skysense.xid.blind.extract.extract_sources`,
    ordered as a single-map extraction orders them (peak S/N; two peaks whose S/N agree to
    ~1e-7 may swap), with ``blind_id`` renumbered; ``attrs`` also records ``n_tiles``.

    Raises
    ------
    InputError
        Tiles or buffer too small, unknown FWHM, a map without usable pixels.
    """
    import dask

    fwhm = sky.fwhm_arcsec if fwhm_arcsec is None else fwhm_arcsec
    if fwhm is None:
        raise InputError(f"map {sky.path or sky.band!r} has no FWHM; pass fwhm_arcsec")
    pixel = sky.pixel_arcsec
    fwhm_pix = float(fwhm) / pixel
    if not (isinstance(tile_pix, int | np.integer) and tile_pix >= 4 * fwhm_pix):
        raise InputError(
            f"tile_pix must be an integer of at least 4 FWHM ({math.ceil(4 * fwhm_pix)} "
            f"pixels), got {tile_pix!r}"
        )
    if not (math.isfinite(buffer_fwhm) and buffer_fwhm >= 4.0):
        raise InputError(f"buffer_fwhm must be >= 4 (the filter's reach), got {buffer_fwhm!r}")
    good = sky.good
    if not good.any():
        raise InputError("map has no usable pixel (all NaN or noise <= 0)", path=sky.path)
    # Whole-map settings, so that every tile applies the same filter as one map would.
    if confusion_mjy is None:
        confusion_mjy = estimate_confusion_mjy(sky.image_mjy, sky.error_mjy)
    settings = {
        "snr_threshold": snr_threshold,
        "confusion_mjy": float(confusion_mjy),
        "fwhm_arcsec": float(fwhm),
        "deblend": deblend,
        "background_mjy": float(np.median(sky.image_mjy[good])),
        "filter_noise_mjy": float(np.median(sky.error_mjy[good])),
    }
    buffer_pix = int(math.ceil(buffer_fwhm * fwhm_pix))
    tiles = pixel_tiles(sky.image_mjy.shape, int(tile_pix), buffer_pix)
    task = dask.delayed(_tile_task, pure=True)
    tasks = []
    for core, (y0, y1, x0, x1) in tiles:
        # Each task carries its own cut-out only: a cluster worker never gets the whole map.
        img = np.ascontiguousarray(sky.image_mjy[y0:y1, x0:x1])
        err = np.ascontiguousarray(sky.error_mjy[y0:y1, x0:x1])
        tasks.append(task(img, err, sky.band, core, (y0, y1, x0, x1), pixel, settings))
    with dask_client(scheduler) as client:
        parts = compute_with_progress(
            tasks, label=f"blind extraction, {len(tiles)} tiles", client=client
        )
    parts = [p for p in parts if len(p)]
    attrs = _attrs(sky, settings, len(tiles))
    if not parts:
        # the empty frame of a single-map extraction, so the columns are the same
        empty = SkyMap(sky.band, np.zeros((8, 8)), np.ones((8, 8)), sky.wcs, fwhm, sky.path)
        df, _, _, _ = _extract(empty, **{**settings, "snr_threshold": 1e30})
        df.attrs.update(attrs)
        return df
    df = pd.concat(parts, ignore_index=True)
    order = np.lexsort((df["_peak_ix"], df["_peak_iy"], -df["_peak_snr"].to_numpy()))
    df = df.iloc[order].drop(columns=["_peak_iy", "_peak_ix", "_peak_snr"])
    df = df.reset_index(drop=True)
    ra, dec = sky.wcs.pixel_to_world_values(df["x_pix"].to_numpy(), df["y_pix"].to_numpy())
    df["ra"], df["dec"] = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    df["blind_id"] = np.arange(len(df), dtype=np.int64)
    df.attrs = attrs
    return df


def _attrs(sky: SkyMap, settings: dict, n_tiles: int) -> dict:
    conf = settings["confusion_mjy"]
    return {
        "band": sky.band,
        "fwhm_arcsec": settings["fwhm_arcsec"],
        "pixel_arcsec": sky.pixel_arcsec,
        "confusion_mjy": conf,
        "snr_threshold": float(settings["snr_threshold"]),
        "filter": "chapin2011" if conf > 0 else "beam-matched",
        "deblend": bool(settings["deblend"]),
        "n_tiles": int(n_tiles),
    }
