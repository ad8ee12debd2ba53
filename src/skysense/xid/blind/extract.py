"""Blind point-source extraction in far-infrared maps (SPIRE / MIPS), without a prior list.

The map is convolved with the matched filter for a Gaussian beam in the presence of white
instrumental noise plus confusion noise (Chapin et al. 2011, MNRAS 411, 505, sect. 3.1):
in Fourier space ``phi(k) = B*(k) / N(k)`` with ``N(k) = sigma_inst^2 + sigma_conf^2
|B(k)|^2 / <|B|^2>`` (confusion is the beam-convolved sky, so its power follows the beam's).
With ``confusion_mjy=0`` this is the plain beam-matched filter. The filtered map is normalised
so that a point source of flux ``S`` reads ``S`` at its position, and its 1-sigma error map
includes both noise terms. Peaks above a signal-to-noise threshold are refined to sub-pixel
positions by a three-point Gaussian (log-quadratic) fit, which is exact for a Gaussian filtered
profile. Position errors follow Ivison et al. (2007): ``sigma = 0.6 FWHM / SNR`` per axis.

Pure: arrays and :class:`~skysense.xid.skymap.SkyMap` in, arrays and a DataFrame out.

Fluxes come from a joint PSF fit at the detected positions (:func:`psf_fit_fluxes`): all
fluxes are solved together, and blends (sources within 2 FWHM) also get their positions
refitted, so a neighbour's wing biases neither flux nor position.

Limitations: the filter shape uses the median instrumental noise (the error map does account
for pixel-to-pixel noise); sources closer than about 1.5 FWHM give one filtered peak and are
catalogued as one; faint detections are boosted (Eddington / peak-selection bias), as in any
single-band blind catalogue.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage

from skysense.errors import InputError
from skysense.xid.skymap import SkyMap

__all__ = [
    "FilteredMap",
    "matched_filter",
    "find_peaks",
    "extract_sources",
    "psf_fit_fluxes",
    "PSFFit",
    "estimate_confusion_mjy",
    "CATALOGUE_UNITS",
]

_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

#: Units of the catalogue columns (for FITS/VOTable metadata).
CATALOGUE_UNITS = {
    "ra": "deg",
    "dec": "deg",
    "ra_err": "arcsec",
    "dec_err": "arcsec",
    "flux_mjy": "mJy",
    "flux_err_mjy": "mJy",
    "flux_filter_mjy": "mJy",
    "x_pix": "pix",
    "y_pix": "pix",
}


@dataclasses.dataclass
class FilteredMap:
    """A matched-filtered map.

    Attributes
    ----------
    flux_mjy : ndarray (ny, nx), mJy - point-source flux estimate at each pixel; NaN off-map
    error_mjy : ndarray (ny, nx), mJy - its 1-sigma error (instrumental + confusion)
    fwhm_arcsec, pixel_arcsec, confusion_mjy : float - what the filter was built for
    """

    flux_mjy: np.ndarray
    error_mjy: np.ndarray
    fwhm_arcsec: float
    pixel_arcsec: float
    confusion_mjy: float

    @property
    def snr(self) -> np.ndarray:
        """(ny, nx) signal-to-noise map (NaN off-map)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.flux_mjy / self.error_mjy


def _positive_finite(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be positive and finite, got {value!r}")
    return value


def _wrapped_beam(shape: tuple[int, int], fwhm_arcsec: float, pixel_arcsec: float) -> np.ndarray:
    """Peak-1 Gaussian beam on a periodic grid, centred on pixel [0, 0]."""
    ny, nx = shape
    dy = sfft.fftfreq(ny, 1.0 / ny) * pixel_arcsec  # integer offsets, wrapped
    dx = sfft.fftfreq(nx, 1.0 / nx) * pixel_arcsec
    s = fwhm_arcsec * _FWHM_TO_SIGMA
    return np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / s**2)


def estimate_confusion_mjy(image_mjy: np.ndarray, error_mjy: np.ndarray) -> float:
    """Confusion noise (mJy/beam) as the robust map scatter in excess of instrumental noise.

    ``sigma_conf^2 = (1.4826 MAD(map))^2 - median(error)^2``, floored at 0. The MAD is robust
    to the bright-source tail, so this estimates the Gaussian core of the confusion noise.

    Parameters
    ----------
    image_mjy, error_mjy : ndarray (ny, nx), mJy/beam

    Returns
    -------
    float, mJy/beam
    """
    image = np.asarray(image_mjy, dtype=float)
    error = np.asarray(error_mjy, dtype=float)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(image) & np.isfinite(error) & (error > 0)
    if good.sum() < 10:
        raise InputError("need at least 10 good pixels to estimate the confusion noise")
    vals = image[good]
    mad = 1.4826 * np.median(np.abs(vals - np.median(vals)))
    return float(math.sqrt(max(mad**2 - np.median(error[good]) ** 2, 0.0)))


def matched_filter(
    image_mjy: np.ndarray,
    error_mjy: np.ndarray,
    fwhm_arcsec: float,
    pixel_arcsec: float,
    *,
    confusion_mjy: float = 0.0,
    background_mjy: float | None = None,
    filter_noise_mjy: float | None = None,
) -> FilteredMap:
    """Filter a map for point sources of a Gaussian beam in instrumental + confusion noise.

    Parameters
    ----------
    image_mjy : ndarray (ny, nx), mJy/beam; NaN where unobserved. Its median is subtracted
        first (SPIRE maps are mean-zero; the filter's zero-frequency response is not zero).
    error_mjy : ndarray (ny, nx), mJy/beam - 1-sigma instrumental noise per pixel
    fwhm_arcsec : float - beam FWHM, arcsec
    pixel_arcsec : float - pixel size, arcsec
    confusion_mjy : float, mJy/beam - confusion noise; 0 gives the plain beam-matched filter
    background_mjy : float or None, mJy/beam - subtracted first; default the map's median
    filter_noise_mjy : float or None, mJy/beam - instrumental noise the filter shape is built
        for; default the median of ``error_mjy`` (tiles pass the whole map's values, so every
        tile applies the same filter)

    Returns
    -------
    FilteredMap

    Raises
    ------
    InputError
        On shape mismatch, non-positive sizes, or a map without good pixels.
    """
    image = np.asarray(image_mjy, dtype=float)
    error = np.asarray(error_mjy, dtype=float)
    if image.ndim != 2 or image.shape != error.shape:
        raise InputError(
            f"image and error must be 2-D arrays of one shape, got {image.shape} and {error.shape}"
        )
    fwhm_arcsec = _positive_finite(fwhm_arcsec, "fwhm_arcsec")
    pixel_arcsec = _positive_finite(pixel_arcsec, "pixel_arcsec")
    confusion_mjy = float(confusion_mjy)
    if not (math.isfinite(confusion_mjy) and confusion_mjy >= 0):
        raise InputError(f"confusion_mjy must be >= 0, got {confusion_mjy!r}")
    with np.errstate(invalid="ignore"):
        good = np.isfinite(image) & np.isfinite(error) & (error > 0)
    if not good.any():
        raise InputError("the map has no pixel with finite flux and positive noise")

    ny, nx = image.shape
    # Zero padding of 3 FWHM stops the FFT's periodic wrap from mixing opposite edges.
    pad = int(math.ceil(3.0 * fwhm_arcsec / pixel_arcsec))
    shape = (sfft.next_fast_len(ny + 2 * pad, real=True), sfft.next_fast_len(nx + 2 * pad, True))
    data = np.zeros(shape)
    var = np.zeros(shape)
    bkg = float(np.median(image[good])) if background_mjy is None else float(background_mjy)
    data[:ny, :nx] = np.where(good, image - bkg, 0.0)
    var[:ny, :nx] = np.where(good, error, 0.0) ** 2

    beam = _wrapped_beam(shape, fwhm_arcsec, pixel_arcsec)
    beam_k = sfft.rfft2(beam).real  # symmetric beam: real transform
    sigma_inst = float(np.median(error[good]) if filter_noise_mjy is None else filter_noise_mjy)
    # Per-pixel variance density: white + beam-shaped confusion with variance confusion_mjy^2.
    # rfft2 holds half the spectrum; the mean of |B|^2 over the full plane is sum(b^2).
    mean_b2 = float(np.sum(beam**2))
    noise_k = sigma_inst**2 + confusion_mjy**2 * beam_k**2 / mean_b2
    phi_k = beam_k / noise_k
    phi = sfft.irfft2(phi_k, s=shape)
    norm = float(np.sum(phi * beam))  # response to a unit point source at its own position

    flux = sfft.irfft2(sfft.rfft2(data) * phi_k, s=shape)[:ny, :nx] / norm
    # Instrumental variance, exact for non-uniform white noise: sum_q phi(p-q)^2 sigma_q^2.
    phi2_k = sfft.rfft2(phi**2)
    var_inst = sfft.irfft2(sfft.rfft2(var) * phi2_k, s=shape)[:ny, :nx] / norm**2
    # Confusion = beam (x) white field of per-pixel variance confusion^2 / sum(b^2).
    g = sfft.irfft2(phi_k * beam_k, s=shape)
    var_conf = confusion_mjy**2 / mean_b2 * float(np.sum(g**2)) / norm**2
    err = np.sqrt(np.clip(var_inst, 0.0, None) + var_conf)
    flux = np.where(good, flux, np.nan)
    err = np.where(good, err, np.nan)
    return FilteredMap(flux, err, fwhm_arcsec, pixel_arcsec, confusion_mjy)


def find_peaks(
    snr: np.ndarray, threshold: float, *, min_separation_pix: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``snr`` at or above ``threshold``, not touching the map edge.

    Parameters
    ----------
    snr : ndarray (ny, nx) - NaN pixels are never peaks
    threshold : float
    min_separation_pix : int - a peak is the maximum of the (2m+1)^2 box around it

    Returns
    -------
    iy, ix : ndarray (n,), int - peak pixels, brightest first
    """
    s = np.where(np.isfinite(snr), snr, -np.inf)
    m = max(int(min_separation_pix), 1)
    local_max = ndimage.maximum_filter(s, size=2 * m + 1, mode="constant", cval=-np.inf)
    is_peak = (s == local_max) & (s >= threshold)
    # The sub-pixel fit needs the four neighbours, all on the map.
    is_peak[[0, -1], :] = False
    is_peak[:, [0, -1]] = False
    finite = np.isfinite(snr)
    neighbours = (
        np.roll(finite, 1, 0)
        & np.roll(finite, -1, 0)
        & np.roll(finite, 1, 1)
        & np.roll(finite, -1, 1)
    )
    is_peak &= neighbours
    iy, ix = np.nonzero(is_peak)
    order = np.argsort(-s[iy, ix], kind="stable")
    return iy[order], ix[order]


def _axis_fit(am, a0, ap):
    """Vertex offset (clipped to +-0.5 pixel) and value correction of a 3-point parabola."""
    curv = am - 2.0 * a0 + ap
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(curv < 0, 0.5 * (am - ap) / curv, 0.0)
    d = np.clip(np.nan_to_num(d), -0.5, 0.5)
    return d, -0.25 * (am - ap) * d


def _refine(values: np.ndarray, iy: np.ndarray, ix: np.ndarray):
    """Sub-pixel offsets and peak value from a 3-point fit along each axis.

    Log-quadratic (exact for a Gaussian profile) when the five values are positive, else
    quadratic. Returns dy, dx (pixels) and the interpolated peak value.
    """
    c = values[iy, ix]
    xm, xp = values[iy, ix - 1], values[iy, ix + 1]
    ym, yp = values[iy - 1, ix], values[iy + 1, ix]
    positive = (c > 0) & (xm > 0) & (xp > 0) & (ym > 0) & (yp > 0)

    def log(v):
        return np.log(np.where(positive, v, 1.0))

    dx_log, cx_log = _axis_fit(log(xm), log(c), log(xp))
    dy_log, cy_log = _axis_fit(log(ym), log(c), log(yp))
    dx_lin, cx_lin = _axis_fit(xm, c, xp)
    dy_lin, cy_lin = _axis_fit(ym, c, yp)
    dx = np.where(positive, dx_log, dx_lin)
    dy = np.where(positive, dy_log, dy_lin)
    peak = np.where(positive, np.exp(log(c) + cx_log + cy_log), c + cx_lin + cy_lin)
    return dy, dx, peak


def _plain_filter_confusion_var(fwhm_arcsec: float, pixel_arcsec: float) -> float:
    """Variance (per unit confusion variance) of a beam-weighted point-source flux estimate.

    Confusion is the beam convolved with a white field: ``c = b (x) s`` with per-pixel
    variance 1, so ``var = sum((b (x) b)^2) / sum(b^2)^3`` (2 in the continuum limit).
    """
    half = int(math.ceil(4.0 * fwhm_arcsec / pixel_arcsec))
    r = np.arange(-half, half + 1) * pixel_arcsec
    s = fwhm_arcsec * _FWHM_TO_SIGMA
    b = np.exp(-0.5 * (r[:, None] ** 2 + r[None, :] ** 2) / s**2)
    bb = sfft.irfft2(sfft.rfft2(b, s=(4 * half + 1,) * 2) ** 2, s=(4 * half + 1,) * 2)
    return float(np.sum(bb**2) / np.sum(b**2) ** 3)


class PSFFit(NamedTuple):
    """Result of :func:`psf_fit_fluxes`; arrays (n,).

    ``flux_mjy``, ``flux_err_mjy`` in mJy; ``x_pix``, ``y_pix`` 0-based pixels (refined for
    blends); ``pos_err_pix`` 1-sigma per axis for refined blends, NaN where positions were held.
    """

    flux_mjy: np.ndarray
    flux_err_mjy: np.ndarray
    x_pix: np.ndarray
    y_pix: np.ndarray
    pos_err_pix: np.ndarray


def _fit_blend(px, py, d, err, x0, y0, f0, sigma_pix):
    """Nonlinear fit of k Gaussians (positions and fluxes) to one blend's pixels."""
    from scipy.optimize import least_squares

    k = len(x0)

    def model(p):
        xs, ys, fs = p[:k], p[k : 2 * k], p[2 * k :]
        dx = px[:, None] - xs
        dy = py[:, None] - ys
        g = np.exp(-0.5 * (dx**2 + dy**2) / sigma_pix**2)
        return g, dx, dy, fs

    def resid(p):
        g, _, _, fs = model(p)
        return (d - g @ fs) / err

    def jac(p):
        g, dx, dy, fs = model(p)
        jx = g * fs * dx / sigma_pix**2
        jy = g * fs * dy / sigma_pix**2
        return -np.hstack([jx, jy, g]) / err[:, None]

    p0 = np.concatenate([x0, y0, f0])
    # Positions may move by up to one beam sigma from the filtered peaks.
    lo = np.concatenate([x0 - sigma_pix, y0 - sigma_pix, np.full(k, -np.inf)])
    hi = np.concatenate([x0 + sigma_pix, y0 + sigma_pix, np.full(k, np.inf)])
    res = least_squares(resid, np.clip(p0, lo, hi), jac=jac, bounds=(lo, hi), method="trf")
    if not res.success:
        return None
    jm = res.jac
    try:
        cov = np.linalg.inv(jm.T @ jm)
    except np.linalg.LinAlgError:
        return None
    p = res.x
    dvar = np.diag(cov)
    pos = np.sqrt(0.5 * (dvar[:k] + dvar[k : 2 * k]))
    return p[:k], p[k : 2 * k], p[2 * k :], dvar[2 * k :], pos


def _close_pairs(x, y, radius_pix):
    """Index pairs (i < j) of points closer than ``radius_pix``."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(np.column_stack([x, y])).query_pairs(radius_pix, output_type="ndarray")
    return pairs[:, 0], pairs[:, 1]


def psf_fit_fluxes(
    image_mjy: np.ndarray,
    error_mjy: np.ndarray,
    x_pix: np.ndarray,
    y_pix: np.ndarray,
    fwhm_arcsec: float,
    pixel_arcsec: float,
    *,
    background_mjy: float = 0.0,
    confusion_mjy: float = 0.0,
    radius_fwhm: float = 1.5,
    refine_positions: bool = True,
    max_blend: int = 6,
) -> PSFFit:
    """Fluxes of point sources at fixed positions by a joint (deblending) PSF fit.

    Weighted least squares ``min sum_p (d_p - B - sum_i A_pi f_i)^2 / sigma_p^2`` over the
    good pixels within ``radius_fwhm`` FWHM of any source. Sources whose beams overlap are
    solved together (connected blends), so a neighbour's flux is not counted twice.

    Parameters
    ----------
    image_mjy, error_mjy : ndarray (ny, nx), mJy/beam
    x_pix, y_pix : ndarray (n,), 0-based pixel positions (float)
    fwhm_arcsec, pixel_arcsec : float
    background_mjy : float, mJy/beam - subtracted from the map first
    confusion_mjy : float, mJy/beam - confusion noise from undetected sources, added to the
        fit error in quadrature (as it passes through a beam-weighted estimate)
    radius_fwhm : float - fit pixels within this many FWHM of a source
    refine_positions : bool - fit positions too for sources whose beams overlap (blends);
        their flux errors then include the position uncertainty
    max_blend : int - larger blends keep their positions (the nonlinear fit grows as k^3)

    Returns
    -------
    PSFFit
    """
    import scipy.sparse as sp
    from scipy.sparse import csgraph
    from scipy.sparse import linalg as spla

    from skysense.xid.model import GaussianBeam, pointing_matrix

    x = np.asarray(x_pix, dtype=float)
    y = np.asarray(y_pix, dtype=float)
    n = len(x)
    if n == 0:
        return PSFFit(*(np.zeros(0) for _ in range(5)))
    image = np.asarray(image_mjy, dtype=float)
    error = np.asarray(error_mjy, dtype=float)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(image) & np.isfinite(error) & (error > 0)
    # Fitted pixels: good pixels near any source (distance transform of the source pixels).
    seeds = np.ones(image.shape, bool)
    iy = np.clip(np.rint(y).astype(int), 0, image.shape[0] - 1)
    ix = np.clip(np.rint(x).astype(int), 0, image.shape[1] - 1)
    seeds[iy, ix] = False
    near = ndimage.distance_transform_edt(seeds) <= radius_fwhm * fwhm_arcsec / pixel_arcsec
    py, px = np.nonzero(near & good)
    amat = pointing_matrix(x, y, px, py, GaussianBeam(fwhm_arcsec), pixel_arcsec, min_fraction=1e-4)
    amat = amat.tocsc()
    w = 1.0 / error[py, px] ** 2
    d = image[py, px] - background_mjy
    normal = (amat.T @ amat.multiply(w[:, None])).tocsr()
    rhs = amat.T @ (w * d)
    # All fluxes at once (sparse normal equations), so every overlap is accounted for.
    try:
        flux = np.atleast_1d(spla.spsolve(normal.tocsc(), rhs))
    except RuntimeError:  # exactly singular: coincident positions
        flux = np.full(n, np.nan)
    # Blends: sources closer than 2 FWHM (their beams overlap appreciably). Variances come
    # from each blend's block of the normal matrix (weaker cross-links ignored).
    link = 2.0 * fwhm_arcsec / pixel_arcsec
    i1, i2 = _close_pairs(x, y, link)
    graph = sp.coo_matrix((np.ones(len(i1)), (i1, i2)), shape=(n, n))
    n_comp, label = csgraph.connected_components(graph, directed=False)
    var = np.full(n, np.nan)
    x_out, y_out = x.copy(), y.copy()
    pos_err = np.full(n, np.nan)
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(n_comp + 1))
    sigma_pix = fwhm_arcsec * _FWHM_TO_SIGMA / pixel_arcsec
    # Isolated sources (most of them): the variance is the inverse of the normal diagonal.
    sizes = np.diff(bounds)
    single = order[bounds[:-1][sizes == 1]]
    diag = normal.diagonal()[single]
    with np.errstate(divide="ignore"):
        var[single] = np.where(diag > 0, 1.0 / diag, np.nan)
    # Blocks are contiguous in component order: one permutation, then cheap slices (fancy
    # column indexing per component would cost O(n) each). Pixel rows come from a CSR copy.
    perm = normal[order][:, order].tocsr()
    amat_rows = amat.tocsr()
    for c in np.flatnonzero(sizes > 1):
        b0, b1 = bounds[c], bounds[c + 1]
        idx = order[b0:b1]
        block = perm[b0:b1, b0:b1].toarray()
        try:
            var[idx] = np.diag(np.linalg.inv(block))
        except np.linalg.LinAlgError:
            continue
        if refine_positions and 1 < len(idx) <= max_blend and np.all(np.isfinite(flux[idx])):
            # A neighbour's wing shifts the filtered peak: refit the blend's positions, with
            # every other source's model subtracted.
            rows = np.unique(amat[:, idx].indices)  # CSC: the row indices of the columns
            rest = flux.copy()
            rest[idx] = 0.0
            others = amat_rows[rows] @ rest
            fit = _fit_blend(
                px[rows],
                py[rows],
                d[rows] - others,
                error[py[rows], px[rows]],
                x[idx],
                y[idx],
                flux[idx],
                sigma_pix,
            )
            if fit is not None:
                x_out[idx], y_out[idx], flux[idx], var[idx], pos_err[idx] = fit
    var_conf = confusion_mjy**2 * _plain_filter_confusion_var(fwhm_arcsec, pixel_arcsec)
    return PSFFit(flux, np.sqrt(var + var_conf), x_out, y_out, pos_err)


def extract_sources(
    sky: SkyMap,
    *,
    snr_threshold: float = 5.0,
    confusion_mjy: float | None = 0.0,
    fwhm_arcsec: float | None = None,
    deblend: bool = True,
    background_mjy: float | None = None,
    filter_noise_mjy: float | None = None,
) -> pd.DataFrame:
    """Blind source catalogue of one map.

    Parameters
    ----------
    sky : SkyMap - map and instrumental noise in mJy/beam with a celestial WCS
    snr_threshold : float - keep peaks with filtered S/N >= this (instrumental + confusion)
    confusion_mjy : float or None, mJy/beam - confusion noise for the filter; None estimates it
        from the map (:func:`estimate_confusion_mjy`); 0 gives the plain beam-matched filter
    fwhm_arcsec : float or None - beam FWHM, default ``sky.fwhm_arcsec``
    deblend : bool - fluxes by a joint PSF fit at the detected positions
        (:func:`psf_fit_fluxes`); False reads them from the filtered map at the peak
    background_mjy, filter_noise_mjy : float or None, mJy/beam - see :func:`matched_filter`
        (default: the map's median and median noise)

    Returns
    -------
    DataFrame, one row per source, brightest S/N first:
        ``blind_id`` (int64), ``ra``, ``dec`` (deg), ``ra_err``, ``dec_err`` (arcsec, 1 sigma),
        ``flux_mjy``, ``flux_err_mjy`` (mJy), ``snr`` (flux / error), ``snr_det`` (detection
        S/N in the filtered map), ``flux_filter_mjy`` (mJy, filtered map at the peak),
        ``x_pix``, ``y_pix`` (0-based pixels), ``band`` (str). ``df.attrs`` records the filter settings.

    Raises
    ------
    InputError
        When the FWHM is unknown or a setting is invalid.
    """
    df, _, _, _ = _extract(
        sky,
        snr_threshold=snr_threshold,
        confusion_mjy=confusion_mjy,
        fwhm_arcsec=fwhm_arcsec,
        deblend=deblend,
        background_mjy=background_mjy,
        filter_noise_mjy=filter_noise_mjy,
    )
    return df


def _extract(
    sky: SkyMap,
    *,
    snr_threshold: float,
    confusion_mjy: float | None,
    fwhm_arcsec: float | None,
    deblend: bool,
    background_mjy: float | None,
    filter_noise_mjy: float | None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`extract_sources` plus each source's peak pixel (iy, ix) and peak S/N.

    The tiled engine keeps the sources whose peak pixel lies in a tile's core, and orders the
    joined catalogue as one map would (peak S/N, then raster order).
    """
    fwhm = sky.fwhm_arcsec if fwhm_arcsec is None else fwhm_arcsec
    if fwhm is None:
        raise InputError(f"map {sky.path or sky.band!r} has no FWHM; pass fwhm_arcsec")
    snr_threshold = _positive_finite(snr_threshold, "snr_threshold")
    good = sky.good
    if confusion_mjy is None:
        confusion_mjy = estimate_confusion_mjy(sky.image_mjy, sky.error_mjy)
    if background_mjy is None and good.any():
        background_mjy = float(np.median(sky.image_mjy[good]))
    pixel = sky.pixel_arcsec
    fm = matched_filter(
        sky.image_mjy,
        sky.error_mjy,
        fwhm,
        pixel,
        confusion_mjy=confusion_mjy,
        background_mjy=background_mjy,
        filter_noise_mjy=filter_noise_mjy,
    )
    snr = fm.snr
    sep = max(1, int(round(0.5 * fm.fwhm_arcsec / pixel)))
    iy, ix = find_peaks(snr, snr_threshold, min_separation_pix=sep)
    peak_snr = snr[iy, ix]
    dy, dx, flux_filter = _refine(fm.flux_mjy, iy, ix)
    filter_err = fm.error_mjy[iy, ix]
    x = ix + dx
    y = iy + dy
    with np.errstate(invalid="ignore", divide="ignore"):
        snr_det = flux_filter / filter_err
        # Ivison et al. 2007 (the Fisher bound of a Gaussian beam in white noise); the
        # log-quadratic refinement is exact for a Gaussian profile, so only a tiny floor.
        pos_err = np.hypot(0.6 * fm.fwhm_arcsec / snr_det, 0.01 * pixel)
    if deblend:
        psf = psf_fit_fluxes(
            sky.image_mjy,
            sky.error_mjy,
            x,
            y,
            fm.fwhm_arcsec,
            pixel,
            background_mjy=background_mjy,
            confusion_mjy=fm.confusion_mjy,
        )
        flux, flux_err = psf.flux_mjy, psf.flux_err_mjy
        moved = np.isfinite(psf.pos_err_pix)
        x, y = psf.x_pix, psf.y_pix
        pos_err = np.where(moved, np.hypot(psf.pos_err_pix * pixel, 0.01 * pixel), pos_err)
    else:
        flux, flux_err = flux_filter, filter_err
    if len(x):
        ra, dec = sky.wcs.pixel_to_world_values(x, y)
    else:
        ra = dec = np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = flux / flux_err
    df = pd.DataFrame(
        {
            "blind_id": np.arange(len(x), dtype=np.int64),
            "ra": np.asarray(ra, dtype=float),
            "dec": np.asarray(dec, dtype=float),
            "ra_err": pos_err,
            "dec_err": pos_err,
            "flux_mjy": flux,
            "flux_err_mjy": flux_err,
            "snr": snr,
            "snr_det": snr_det,
            "flux_filter_mjy": flux_filter,
            "x_pix": x,
            "y_pix": y,
            "band": pd.Series([sky.band] * len(x), dtype="str"),
        }
    )
    df.attrs.update(
        band=sky.band,
        fwhm_arcsec=fm.fwhm_arcsec,
        pixel_arcsec=pixel,
        confusion_mjy=fm.confusion_mjy,
        snr_threshold=snr_threshold,
        filter="chapin2011" if fm.confusion_mjy > 0 else "beam-matched",
        deblend=bool(deblend),
    )
    return df, iy, ix, peak_snr
