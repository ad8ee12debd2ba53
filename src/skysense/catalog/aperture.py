"""Aperture corrections from the curve of growth of stars.

A fixed-aperture magnitude misses the light of a point source outside the aperture; the
missing fraction is the same for every unresolved star, so the correction is the typical
``m_total - m_aperture`` of stars: the sigma-clipped median over a magnitude range that avoids
saturated bright stars and noisy faint ones. Corrected aperture magnitudes are
``m_ap + correction`` (the correction is usually negative: aperture magnitudes are fainter).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from skysense.catalog.clipping import clipped_median

__all__ = ["ApertureCorrection", "aperture_correction", "star_curve"]


class ApertureCorrection(NamedTuple):
    """Result of :func:`aperture_correction`.

    Attributes
    ----------
    value_mag : float
        Sigma-clipped median of ``m_total - m_aperture`` over the selected stars (NaN when
        fewer than ``min_stars`` stars).
    error_mag : float
        Its standard error, ``1.2533 * std / sqrt(n)`` (the median's efficiency for Gaussian
        scatter).
    scatter_mag : float
        Sigma-clipped standard deviation of the differences.
    n_stars : int
        Stars used after clipping.
    mag_min, mag_max : float
        The total-magnitude range used.
    """

    value_mag: float
    error_mag: float
    scatter_mag: float
    n_stars: int
    mag_min: float
    mag_max: float


def aperture_correction(
    mag_total: np.ndarray,
    mag_aperture: np.ndarray,
    stellarity: np.ndarray,
    *,
    stellarity_min: float = 0.9,
    mag_min: float | None = None,
    mag_max: float | None = None,
    nsigma: float = 3.0,
    min_stars: int = 10,
) -> ApertureCorrection:
    """Measure the aperture correction from stars.

    Parameters
    ----------
    mag_total, mag_aperture : ndarray (n,), mag
        Total and aperture magnitudes of every source (NaN = missing).
    stellarity : ndarray (n,)
        0 (extended) .. 1 (point-like), e.g. SExtractor CLASS_STAR; stars are
        ``stellarity >= stellarity_min``.
    mag_min, mag_max : float, optional
        Total-magnitude range of the stars used. Default: between the 10th and 60th percentiles
        of the stars' magnitudes, which skips the saturated bright end and the noisy faint end.
    nsigma : float
        Clipping threshold (astropy ``sigma_clipped_stats``, iterated to convergence).
    min_stars : int
        Fewer usable stars give a NaN correction.

    Returns
    -------
    ApertureCorrection
    """
    mag_total = np.asarray(mag_total, dtype=np.float64)
    mag_aperture = np.asarray(mag_aperture, dtype=np.float64)
    stellarity = np.asarray(stellarity, dtype=np.float64)
    stars = (stellarity >= stellarity_min) & np.isfinite(mag_total) & np.isfinite(mag_aperture)
    if mag_min is None or mag_max is None:
        if stars.sum() >= min_stars:
            lo, hi = np.percentile(mag_total[stars], [10.0, 60.0])
        else:
            lo, hi = np.nan, np.nan
        mag_min = lo if mag_min is None else mag_min
        mag_max = hi if mag_max is None else mag_max
    sel = stars & (mag_total >= mag_min) & (mag_total <= mag_max)
    diff = mag_total[sel] - mag_aperture[sel]
    if len(diff) < min_stars:
        return ApertureCorrection(np.nan, np.nan, np.nan, int(len(diff)), mag_min, mag_max)
    est = clipped_median(diff, nsigma)
    return ApertureCorrection(est.median, est.error, est.std, est.n, float(mag_min), float(mag_max))


def star_curve(
    mag_total: np.ndarray,
    mag_aperture: np.ndarray,
    stellarity: np.ndarray,
    *,
    stellarity_min: float = 0.9,
    bin_mag: float = 0.5,
    min_per_bin: int = 5,
) -> dict[str, list[float]]:
    """Median ``m_total - m_aperture`` of stars in bins of total magnitude.

    The correction is only meaningful where this curve is flat; it bends at the bright end
    (saturation) and scatters at the faint end. Recorded in the provenance and plotted.

    Returns
    -------
    dict
        ``{"mag": bin centres, "median": medians (mag), "n": stars per bin}`` for bins with at
        least ``min_per_bin`` stars.
    """
    mag_total = np.asarray(mag_total, dtype=np.float64)
    diff = mag_total - np.asarray(mag_aperture, dtype=np.float64)
    stars = (np.asarray(stellarity, dtype=float) >= stellarity_min) & np.isfinite(diff)
    out: dict[str, list[float]] = {"mag": [], "median": [], "n": []}
    if not stars.any():
        return out
    m, d = mag_total[stars], diff[stars]
    edges = np.arange(np.floor(m.min() / bin_mag) * bin_mag, m.max() + bin_mag, bin_mag)
    idx = np.digitize(m, edges) - 1
    for k in range(len(edges) - 1):
        sel = idx == k
        if sel.sum() >= min_per_bin:
            out["mag"].append(float(edges[k] + bin_mag / 2))
            out["median"].append(float(np.median(d[sel])))
            out["n"].append(int(sel.sum()))
    return out
