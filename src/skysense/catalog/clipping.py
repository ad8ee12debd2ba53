"""Sigma-clipped medians and their standard errors, shared by astrometry and aperture corrections.

Both steps estimate a single offset (arcsec or mag) from a set of stars, robust to the outliers
that false matches and blends produce: clip at ``nsigma`` around the median until nothing more is
clipped, then quote the median of the survivors with the standard error of a median.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ClippedMedian", "clip_mask", "clipped_median"]

# The median's standard error is sqrt(pi/2) = 1.2533 times the mean's for Gaussian data.
_MEDIAN_EFFICIENCY = float(np.sqrt(np.pi / 2.0))


class ClippedMedian(NamedTuple):
    """Median of the values that survive clipping, in the values' units."""

    median: float
    error: float  #: ``1.2533 * std / sqrt(n)``: the median's standard error
    std: float  #: standard deviation of the survivors
    n: int  #: number of survivors


def clip_mask(values: np.ndarray, nsigma: float) -> np.ndarray:
    """Boolean mask (n,) of the values kept by median-centred clipping at ``nsigma`` standard
    deviations, iterated to convergence."""
    # Written out rather than astropy's sigma_clip (8.0), which it equals on ordinary data (the
    # tests compare them): when the survivors' spread is so small that their std underflows to 0
    # (values ~1e-190), astropy clips every value and then reports none clipped. Here the
    # iteration stops at the last non-empty set instead.
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    while keep.any():
        kept = values[keep]
        within = keep & (np.abs(values - np.median(kept)) <= nsigma * np.std(kept))
        if not within.any() or np.array_equal(within, keep):
            break
        keep = within
    return keep


def clipped_median(values: np.ndarray, nsigma: float | None = None) -> ClippedMedian:
    """Median and its standard error of ``values`` (n,), after clipping at ``nsigma`` if given.

    An empty input gives NaN median, error and std with ``n = 0``.
    """
    values = np.asarray(values, dtype=np.float64)
    kept = values if nsigma is None else values[clip_mask(values, nsigma)]
    n = len(kept)
    if n == 0:
        return ClippedMedian(np.nan, np.nan, np.nan, 0)
    std = float(np.std(kept))
    return ClippedMedian(
        float(np.median(kept)), float(_MEDIAN_EFFICIENCY * std / np.sqrt(n)), std, n
    )
