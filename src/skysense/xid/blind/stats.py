"""Completeness and reliability of a blind catalogue against a true source list.

In a confused map one detection covers several true sources, so each detection is matched
to the *brightest* true source within the radius (its owner). A true source is recovered when
it owns a detection; a detection is reliable when its owner holds at least ``flux_fraction``
of the detected flux (otherwise it is noise or a blend of faint sources). Completeness is
binned in true flux, reliability in detected flux; the fluxes at 50% and 90% completeness are
interpolated in log flux where the binned completeness first reaches the level.

Pure: arrays in, a NamedTuple out. The pair search is :func:`skysense.catalog.match.pairs_within`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from skysense.catalog.match import pairs_within
from skysense.errors import InputError

__all__ = ["CompletenessResult", "brightest_owner", "completeness_reliability"]


class CompletenessResult(NamedTuple):
    """Output of :func:`completeness_reliability`.

    Attributes
    ----------
    bins : DataFrame - per flux bin: ``flux_lo_mjy``, ``flux_hi_mjy``, ``n_true``,
        ``completeness``, ``n_det``, ``reliability``
    flux50_mjy, flux90_mjy : float, mJy - true flux at 50% / 90% completeness (NaN if never)
    reliability_above50 : float - reliable fraction of detections brighter than flux50_mjy
    recovered : ndarray (n_true,), bool
    reliable : ndarray (n_det,), bool
    """

    bins: pd.DataFrame
    flux50_mjy: float
    flux90_mjy: float
    reliability_above50: float
    recovered: np.ndarray
    reliable: np.ndarray


def brightest_owner(
    ra: np.ndarray,
    dec: np.ndarray,
    truth_ra: np.ndarray,
    truth_dec: np.ndarray,
    truth_flux: np.ndarray,
    radius_arcsec: float,
) -> np.ndarray:
    """Index of the brightest true source within ``radius_arcsec`` of each detection (-1: none).

    Parameters
    ----------
    ra, dec : ndarray (n,), deg - detections
    truth_ra, truth_dec : ndarray (m,), deg; truth_flux : ndarray (m,), mJy
    radius_arcsec : float

    Returns
    -------
    ndarray (n,), int64
    """
    owner = np.full(len(ra), -1, dtype=np.int64)
    if len(ra) == 0 or len(truth_ra) == 0:
        return owner
    i1, i2, _ = pairs_within(ra, dec, truth_ra, truth_dec, radius_arcsec)
    flux = np.asarray(truth_flux, dtype=float)
    # sort the pairs by (detection, flux descending): the first of each group is the owner
    order = np.lexsort((-flux[i2], i1))
    i1, i2 = i1[order], i2[order]
    first = np.flatnonzero(np.r_[True, i1[1:] != i1[:-1]]) if len(i1) else np.zeros(0, int)
    owner[i1[first]] = i2[first]
    return owner


def _crossing(comp: np.ndarray, mid: np.ndarray, level: float) -> float:
    """Log-interpolated flux where the binned completeness first reaches ``level``."""
    ok = np.flatnonzero(np.nan_to_num(comp, nan=-1.0) >= level)
    if len(ok) == 0:
        return float("nan")
    k = int(ok[0])
    if k == 0 or not np.isfinite(comp[k - 1]):
        return float(mid[k])
    lo, hi = np.log(mid[k - 1]), np.log(mid[k])
    t = (level - comp[k - 1]) / (comp[k] - comp[k - 1])
    return float(np.exp(lo + t * (hi - lo)))


def completeness_reliability(
    ra: np.ndarray,
    dec: np.ndarray,
    flux_mjy: np.ndarray,
    truth_ra: np.ndarray,
    truth_dec: np.ndarray,
    truth_flux_mjy: np.ndarray,
    *,
    radius_arcsec: float,
    edges_mjy: np.ndarray,
    flux_fraction: float = 0.5,
) -> CompletenessResult:
    """Completeness (vs true flux) and reliability (vs detected flux) of a catalogue.

    Parameters
    ----------
    ra, dec : ndarray (n,), deg; flux_mjy : ndarray (n,), mJy - the detections
    truth_ra, truth_dec : ndarray (m,), deg; truth_flux_mjy : ndarray (m,), mJy
    radius_arcsec : float - match radius (typically half the beam FWHM)
    edges_mjy : ndarray (k+1,), mJy - increasing flux bin edges
    flux_fraction : float - a detection is reliable when its owner has at least this
        fraction of the detected flux

    Returns
    -------
    CompletenessResult

    Raises
    ------
    InputError
        Edges not increasing and positive.
    """
    edges = np.asarray(edges_mjy, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or edges[0] <= 0:
        raise InputError("edges_mjy must be positive and increasing (at least two)")
    flux = np.asarray(flux_mjy, dtype=float)
    tflux = np.asarray(truth_flux_mjy, dtype=float)
    owner = brightest_owner(ra, dec, truth_ra, truth_dec, tflux, radius_arcsec)
    recovered = np.zeros(len(tflux), dtype=bool)
    recovered[owner[owner >= 0]] = True
    reliable = (owner >= 0) & (tflux[np.maximum(owner, 0)] >= flux_fraction * flux)
    tbin = np.digitize(tflux, edges) - 1
    dbin = np.digitize(flux, edges) - 1
    rows = []
    for k in range(len(edges) - 1):
        nt, nd = int(np.sum(tbin == k)), int(np.sum(dbin == k))
        rows.append(
            {
                "flux_lo_mjy": edges[k],
                "flux_hi_mjy": edges[k + 1],
                "n_true": nt,
                "completeness": recovered[tbin == k].mean() if nt else np.nan,
                "n_det": nd,
                "reliability": reliable[dbin == k].mean() if nd else np.nan,
            }
        )
    bins = pd.DataFrame(rows)
    mid = np.sqrt(edges[:-1] * edges[1:])
    comp = bins["completeness"].to_numpy(dtype=float)
    f50, f90 = _crossing(comp, mid, 0.5), _crossing(comp, mid, 0.9)
    above = flux >= f50 if np.isfinite(f50) else np.zeros(len(flux), bool)
    rel50 = float(reliable[above].mean()) if above.any() else float("nan")
    return CompletenessResult(bins, f50, f90, rel50, recovered, reliable)
