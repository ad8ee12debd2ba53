"""Likelihood-ratio cross-identification of radio sources with a masterlist (pure).

The method of Sutherland & Saunders (1992), as used by McAlpine et al. (2012) and Williams
et al. (2019). For a radio source and an optical candidate at offset ``(east, north)`` with
magnitude ``m`` (and, optionally, colour ``c``)::

    LR = q(m, c) f(r) / n(m, c)

- ``f(r)`` (:func:`positional_density`) is the bivariate Gaussian density of the offset whose
  covariance is the sum of the radio ellipse, the optical ellipse and a systematic circular
  term; it is a probability density over the tangent plane, arcsec^-2.
- ``n(m, c)`` (:func:`background_density`) is the surface density of background objects per
  magnitude (and colour) cell, arcsec^-2, counted in annuli around the radio positions, away
  from the counterparts but on the same sky (so the coverage is the radio sources' own).
- ``q(m, c)`` (:func:`counterpart_distribution`) is the distribution of true counterparts per
  cell, by background subtraction: the magnitudes of every candidate within the search
  radius less the background expected there, normalised to sum to ``Q0``.
- ``Q0`` (:func:`fit_q0`) is the fraction of radio sources with a counterpart above the
  optical limit, fitted as Fleuren et al. (2012) do: the fraction of radio sources with no
  candidate within ``r`` over the same fraction for random positions is ``1 - Q0 F(r)``, with
  ``F(r) = 1 - exp(-r^2 / 2 sigma^2)``.

Reliability (:func:`reliability`) is ``LR_j / (sum_k LR_k + 1 - Q0)`` over the candidates of a
radio source; the LR threshold (:func:`choose_threshold`) is where the expected completeness
and reliability of the accepted identifications balance.

The magnitude and colour cells are a grid (``mag_edges`` x ``colour_edges``); without a
colour there is one colour cell, and ``q(m)``, ``n(m)`` are the one-dimensional case of the
same code. Cells are indexed ``colour_cell * n_mag + mag_cell``; objects outside the grid (or
without a finite magnitude) get cell -1 and are never candidates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from skysense.errors import InputError

__all__ = [
    "ellipse_covariance",
    "tangent_offsets_arcsec",
    "positional_density",
    "cell_index",
    "cell_counts",
    "background_density",
    "counterpart_distribution",
    "blank_fraction",
    "fit_q0",
    "offset_cdf",
    "Q0Fit",
    "likelihood_ratio",
    "reliability",
    "best_candidates",
    "Threshold",
    "choose_threshold",
    "completeness_reliability",
    "random_positions",
]


# -- positional term ------------------------------------------------------------------------


def ellipse_covariance(
    major_arcsec, minor_arcsec, pa_deg
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariance of a positional error ellipse in the (east, north) tangent plane.

    Parameters
    ----------
    major_arcsec, minor_arcsec : array_like (n,), arcsec
        1-sigma semi-axes of the ellipse.
    pa_deg : array_like (n,), deg
        Position angle of the major axis, east of north.

    Returns
    -------
    (c_ee, c_en, c_nn) : ndarray (n,), arcsec^2
        Variance east, covariance, variance north.
    """
    a2 = np.square(np.asarray(major_arcsec, dtype=np.float64))
    b2 = np.square(np.asarray(minor_arcsec, dtype=np.float64))
    t = np.radians(np.asarray(pa_deg, dtype=np.float64))
    s, c = np.sin(t), np.cos(t)
    # Major axis along (sin t, cos t) in (east, north); minor along (cos t, -sin t).
    c_ee = a2 * s * s + b2 * c * c
    c_en = (a2 - b2) * s * c
    c_nn = a2 * c * c + b2 * s * s
    return c_ee, c_en, c_nn


def tangent_offsets_arcsec(ra0, dec0, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic offsets (east, north) of ``(ra, dec)`` from ``(ra0, dec0)``.

    Parameters
    ----------
    ra0, dec0, ra, dec : array_like (n,), deg

    Returns
    -------
    (east, north) : ndarray (n,), arcsec
    """
    a0, d0, a, d = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra0, dec0, ra, dec))
    da = a - a0
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(da)
    east = np.cos(d) * np.sin(da) / cos_c
    north = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(da)) / cos_c
    k = np.degrees(1.0) * 3600.0
    return east * k, north * k


def positional_density(east, north, c_ee, c_en, c_nn) -> np.ndarray:
    """Bivariate Gaussian density of an offset: f(r) of the likelihood ratio.

    Parameters
    ----------
    east, north : array_like (n,), arcsec
        Offset of the candidate from the radio position.
    c_ee, c_en, c_nn : array_like (n,), arcsec^2
        Total covariance (radio + optical + systematic).

    Returns
    -------
    ndarray (n,), arcsec^-2
        Integrates to 1 over the plane.
    """
    x = np.asarray(east, dtype=np.float64)
    y = np.asarray(north, dtype=np.float64)
    c_ee, c_en, c_nn = (np.asarray(v, dtype=np.float64) for v in (c_ee, c_en, c_nn))
    det = c_ee * c_nn - c_en * c_en
    chi2 = (c_nn * x * x - 2.0 * c_en * x * y + c_ee * y * y) / det
    return np.exp(-0.5 * chi2) / (2.0 * np.pi * np.sqrt(det))


# -- magnitude (and colour) cells -----------------------------------------------------------


def _edges(edges, name: str) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or not np.all(np.diff(e) > 0) or np.isnan(e).any():
        raise InputError(f"{name} must be at least two increasing numbers, got {edges!r}")
    return e


def cell_index(mag, mag_edges, colour=None, colour_edges=None) -> np.ndarray:
    """Flat cell of each object on the magnitude (x colour) grid; -1 outside it.

    Parameters
    ----------
    mag : array_like (n,), mag
    mag_edges : array_like (k + 1,), mag
    colour : array_like (n,), mag, optional
    colour_edges : array_like (c + 1,), mag, optional
        Needed when ``colour`` is given (``[-inf, inf]`` puts every colour in one cell).

    Returns
    -------
    ndarray (n,), int64
        ``colour_cell * k + mag_cell``, or -1.
    """
    me = _edges(mag_edges, "mag_edges")
    m = np.asarray(mag, dtype=np.float64)
    k = len(me) - 1
    im = np.searchsorted(me, m, side="right") - 1
    ok = np.isfinite(m) & (im >= 0) & (im < k)
    im[m == me[-1]] = k - 1  # the last edge is inside the grid
    ok |= m == me[-1]
    if colour is None:
        return np.where(ok, im, -1).astype(np.int64)
    if colour_edges is None:
        raise InputError("colour_edges is needed with colour")
    ce = _edges(colour_edges, "colour_edges")
    c = np.asarray(colour, dtype=np.float64)
    ic = np.searchsorted(ce, c, side="right") - 1
    ic[c == ce[-1]] = len(ce) - 2
    ok &= ~np.isnan(c) & (ic >= 0) & (ic < len(ce) - 1)
    return np.where(ok, ic * k + im, -1).astype(np.int64)


def cell_counts(cells: np.ndarray, n_cells: int) -> np.ndarray:
    """Number of objects per cell (cells of -1 are not counted), float64 (n_cells,)."""
    c = np.asarray(cells, dtype=np.int64)
    return np.bincount(c[c >= 0], minlength=n_cells).astype(np.float64)[:n_cells]


def background_density(bg_cells: np.ndarray, n_cells: int, area_arcsec2: float) -> np.ndarray:
    """n(m, c): background objects per cell per arcsec^2.

    Parameters
    ----------
    bg_cells : array_like (n,), int
        Cells of the background objects (see :func:`cell_index`).
    n_cells : int
    area_arcsec2 : float
        Sky area in which they were counted, arcsec^2.

    Returns
    -------
    ndarray (n_cells,), arcsec^-2
    """
    if not area_arcsec2 > 0:
        raise InputError(f"background area must be positive, got {area_arcsec2!r}")
    return cell_counts(bg_cells, n_cells) / float(area_arcsec2)


def counterpart_distribution(
    cand_cells: np.ndarray,
    n_radio: int,
    radius_arcsec: float,
    n_bg: np.ndarray,
    q0: float,
    *,
    smooth_cells: float = 0.0,
) -> np.ndarray:
    """q(m, c) by background subtraction, normalised so that it sums to ``q0``.

    ``real = total - n(m, c) N_radio pi r^2``, clipped at zero, where ``total`` counts every
    object (with multiplicity) within ``radius_arcsec`` of a radio source.

    Parameters
    ----------
    cand_cells : array_like (p,), int
        Cells of every candidate pair within ``radius_arcsec``.
    n_radio : int
        Number of radio sources searched.
    radius_arcsec : float
        The search radius.
    n_bg : ndarray (n_cells,), arcsec^-2
        Background density, :func:`background_density`.
    q0 : float
        Fraction of radio sources with a counterpart above the limit.
    smooth_cells : float
        Gaussian smoothing of ``real`` along magnitude, in cells (0: none).

    Returns
    -------
    ndarray (n_cells,)
        Probability per cell; sums to ``q0`` (zeros when nothing is left after subtraction).
    """
    n_bg = np.asarray(n_bg, dtype=np.float64)
    total = cell_counts(cand_cells, len(n_bg))
    real = np.clip(total - n_bg * n_radio * np.pi * radius_arcsec**2, 0.0, None)
    if smooth_cells > 0:
        real = _smooth(real, smooth_cells)
    s = real.sum()
    return real / s * q0 if s > 0 else real


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along the magnitude axis (one colour cell: the whole array)."""
    half = int(np.ceil(3 * sigma))
    x = np.arange(-half, half + 1)
    kern = np.exp(-0.5 * (x / sigma) ** 2)
    num = np.convolve(values, kern, mode="same")
    den = np.convolve(np.ones_like(values), kern, mode="same")
    return num / den


# -- Q0 (Fleuren et al. 2012) ---------------------------------------------------------------


def blank_fraction(nearest_arcsec: np.ndarray, radii_arcsec: np.ndarray) -> np.ndarray:
    """Fraction of positions with no candidate within each radius.

    Parameters
    ----------
    nearest_arcsec : array_like (n,), arcsec
        Distance to the nearest candidate of each position (inf when none).
    radii_arcsec : array_like (k,), arcsec

    Returns
    -------
    ndarray (k,)
    """
    d = np.sort(np.asarray(nearest_arcsec, dtype=np.float64))
    r = np.asarray(radii_arcsec, dtype=np.float64)
    if len(d) == 0:
        raise InputError("no positions to count blanks around")
    return 1.0 - np.searchsorted(d, r, side="right") / len(d)


class Q0Fit(NamedTuple):
    """The fitted ``Q0`` and the width of the counterpart offsets.

    Attributes
    ----------
    q0 : float
    q0_err : float
        1-sigma error from the fit.
    sigma_arcsec : float
        Gaussian width of ``F(r)``, arcsec.
    radii_arcsec, ratio : ndarray (k,)
        The measured blank ratio (radio / random) at each radius.
    """

    q0: float
    q0_err: float
    sigma_arcsec: float
    radii_arcsec: np.ndarray
    ratio: np.ndarray


def offset_cdf(
    radii_arcsec: np.ndarray, c_ee, c_en, c_nn, random_state, samples_per_source: int = 64
) -> np.ndarray:
    """F(r): fraction of true counterparts within each radius, for these error ellipses.

    The mean over sources of P(|offset| <= r) for offsets ~ N(0, C_i), by seeded Monte Carlo
    (the radial distribution of an elliptical Gaussian has no closed form).

    Parameters
    ----------
    radii_arcsec : array_like (k,), arcsec
    c_ee, c_en, c_nn : array_like (n,), arcsec^2
        Total covariance of each source.
    random_state : int or numpy Generator

    Returns
    -------
    ndarray (k,), increasing in [0, 1]
    """
    rng = np.random.default_rng(random_state)
    c_ee, c_en, c_nn = (np.asarray(v, dtype=np.float64) for v in (c_ee, c_en, c_nn))
    # Cholesky factor of [[c_ee, c_en], [c_en, c_nn]] per source.
    l11 = np.sqrt(c_ee)
    l21 = np.divide(c_en, l11, out=np.zeros_like(c_en), where=l11 > 0)
    l22 = np.sqrt(np.clip(c_nn - l21**2, 0.0, None))
    z = rng.standard_normal((2, samples_per_source, len(c_ee)))
    x = l11 * z[0]
    y = l21 * z[0] + l22 * z[1]
    r = np.sort(np.hypot(x, y).ravel())
    return np.searchsorted(r, np.asarray(radii_arcsec, dtype=np.float64), side="right") / max(
        len(r), 1
    )


def fit_q0(
    radio_nearest_arcsec: np.ndarray,
    random_nearest_arcsec: np.ndarray,
    radii_arcsec: np.ndarray,
    *,
    sigma_arcsec: float | None = None,
    cdf: np.ndarray | None = None,
) -> Q0Fit:
    """Fit ``Q0`` from the blanks of radio and random positions (Fleuren et al. 2012).

    ``B_radio(r) / B_random(r) = 1 - Q0 (1 - exp(-r^2 / (2 sigma^2)))``, fitted by weighted
    least squares over ``radii_arcsec`` (binomial errors of both fractions).

    Parameters
    ----------
    radio_nearest_arcsec : array_like (n,), arcsec
        Nearest candidate of each radio source (inf: none).
    random_nearest_arcsec : array_like (m,), arcsec
        Nearest candidate of each random position.
    radii_arcsec : array_like (k,), arcsec
    sigma_arcsec : float, optional
        Fix the offset width instead of fitting it.
    cdf : array_like (k,), optional
        F(r) at ``radii_arcsec`` known from the positional errors (:func:`offset_cdf`):
        then only Q0 is fitted (``sigma_arcsec`` is reported as NaN).

    Returns
    -------
    Q0Fit
    """
    from scipy.optimize import curve_fit

    r = np.asarray(radii_arcsec, dtype=np.float64)
    br = blank_fraction(radio_nearest_arcsec, r)
    bq = blank_fraction(random_nearest_arcsec, r)
    n, m = len(radio_nearest_arcsec), len(random_nearest_arcsec)
    ok = bq > 0
    if ok.sum() < 2:
        raise InputError("every random position has a candidate: the search radii are too large")
    ratio = np.full_like(r, np.nan)
    ratio[ok] = br[ok] / bq[ok]
    # Binomial errors, propagated to the ratio (a floor keeps empty radii from dominating).
    var = (
        np.maximum(br * (1 - br), 1.0 / n) / n / np.maximum(bq, 1e-12) ** 2
        + ratio**2 * np.maximum(bq * (1 - bq), 1.0 / m) / m / np.maximum(bq, 1e-12) ** 2
    )
    err = np.sqrt(var[ok])

    if cdf is not None:
        # Linear in Q0: weighted least squares of (1 - ratio) = Q0 F.
        f = np.asarray(cdf, dtype=np.float64)[ok]
        w = 1.0 / err**2
        den = np.sum(w * f * f)
        q0 = float(np.clip(np.sum(w * f * (1.0 - ratio[ok])) / den, 0.0, 1.0))
        return Q0Fit(q0, float(np.sqrt(1.0 / den)), float("nan"), r, ratio)
    if sigma_arcsec is None:

        def model(x, q0, sig):
            return 1.0 - q0 * (1.0 - np.exp(-(x**2) / (2.0 * sig**2)))

        p0 = (0.5, max(r[ok].mean() / 3.0, 1e-3))
        popt, pcov = curve_fit(
            model, r[ok], ratio[ok], p0=p0, sigma=err, absolute_sigma=True,
            bounds=([0.0, 1e-4], [1.0, 10.0 * r.max()]),
        )  # fmt: skip
        q0, sig = float(popt[0]), float(popt[1])
    else:
        sig = float(sigma_arcsec)

        def model(x, q0):
            return 1.0 - q0 * (1.0 - np.exp(-(x**2) / (2.0 * sig**2)))

        popt, pcov = curve_fit(
            model, r[ok], ratio[ok], p0=(0.5,), sigma=err, absolute_sigma=True, bounds=(0, 1)
        )
        q0 = float(popt[0])
    q0_err = float(np.sqrt(pcov[0, 0])) if np.isfinite(pcov[0, 0]) else float("nan")
    return Q0Fit(q0, q0_err, sig, r, ratio)


def random_positions(
    ra_deg, dec_deg, inner_arcsec: float, outer_arcsec: float, random_state
) -> tuple[np.ndarray, np.ndarray]:
    """One random position per radio source, uniform in area in an annulus around it.

    The random positions sample the same sky (and coverage) as the radio sources, away from
    their counterparts: the local background of the blank test.

    Parameters
    ----------
    ra_deg, dec_deg : array_like (n,), deg
    inner_arcsec, outer_arcsec : float
    random_state : int or numpy Generator

    Returns
    -------
    (ra, dec) : ndarray (n,), deg
    """
    rng = np.random.default_rng(random_state)
    ra0 = np.asarray(ra_deg, dtype=np.float64)
    dec0 = np.asarray(dec_deg, dtype=np.float64)
    n = len(ra0)
    rho = np.sqrt(rng.uniform(inner_arcsec**2, outer_arcsec**2, n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    # Destination point at angular distance rho along bearing phi (east of north).
    d = np.radians(rho / 3600.0)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    dec = np.arcsin(np.sin(d0) * np.cos(d) + np.cos(d0) * np.sin(d) * np.cos(phi))
    ra = a0 + np.arctan2(np.sin(phi) * np.sin(d) * np.cos(d0), np.cos(d) - np.sin(d0) * np.sin(dec))
    return np.mod(np.degrees(ra), 360.0), np.degrees(dec)


# -- LR, reliability, threshold -------------------------------------------------------------


def likelihood_ratio(
    f_r: np.ndarray, cells: np.ndarray, q: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """LR = q(m, c) f(r) / n(m, c).

    Parameters
    ----------
    f_r : ndarray (p,), arcsec^-2
    cells : ndarray (p,), int
    q : ndarray (n_cells,)
    n : ndarray (n_cells,), arcsec^-2

    Returns
    -------
    ndarray (p,)
        0 where the cell is -1 or q is 0; where q > 0 but no background was seen (n = 0) the
        smallest positive background density of the grid stands in, so LR stays finite.
    """
    q = np.asarray(q, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    floor = n[n > 0].min() if np.any(n > 0) else 1.0
    n_eff = np.where(n > 0, n, floor)
    cells = np.asarray(cells, dtype=np.int64)
    ok = cells >= 0
    out = np.zeros(len(cells))
    out[ok] = q[cells[ok]] * np.asarray(f_r, dtype=np.float64)[ok] / n_eff[cells[ok]]
    return out


def reliability(radio_index: np.ndarray, lr: np.ndarray, q0: float) -> np.ndarray:
    """Reliability of each candidate: ``LR_j / (sum_k LR_k + 1 - Q0)`` over its radio source.

    Parameters
    ----------
    radio_index : ndarray (p,), int
        Radio source of each candidate pair.
    lr : ndarray (p,)
    q0 : float

    Returns
    -------
    ndarray (p,), in [0, 1]
    """
    ri = np.asarray(radio_index, dtype=np.int64)
    lr = np.asarray(lr, dtype=np.float64)
    if len(ri) == 0:
        return np.zeros(0)
    _, inv = np.unique(ri, return_inverse=True)
    sums = np.bincount(inv, weights=lr)
    return lr / (sums[inv] + 1.0 - q0)


def best_candidates(radio_index: np.ndarray, lr: np.ndarray) -> np.ndarray:
    """Row of the highest-LR candidate of each radio source (ties: the first row).

    Returns
    -------
    ndarray (n_sources_with_candidates,), int64
        Rows into the candidate arrays, in increasing radio index.
    """
    ri = np.asarray(radio_index, dtype=np.int64)
    if len(ri) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(len(ri)), -np.asarray(lr, dtype=np.float64), ri))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ri[order][1:] != ri[order][:-1]
    return order[first].astype(np.int64)


class Threshold(NamedTuple):
    """The chosen LR threshold and what is expected of the IDs above it.

    Attributes
    ----------
    lr : float
        Accept candidates with LR >= this.
    completeness, reliability : float
        Expected fractions at the threshold (see :func:`completeness_reliability`).
    n_ids : int
        Radio sources identified.
    expected_false : float
        Expected number of false identifications, sum of (1 - reliability) of the IDs.
    """

    lr: float
    completeness: float
    reliability: float
    n_ids: int
    expected_false: float


def completeness_reliability(
    best_lr: np.ndarray, best_rel: np.ndarray, q0: float, n_radio: int, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Expected completeness and reliability of the IDs above each LR threshold.

    ``C(L) = 1 - sum_{LR < L} rel / (Q0 N)`` (true counterparts lost below the threshold)
    and ``R(L) = 1 - sum_{LR >= L} (1 - rel) / N(LR >= L)`` (false IDs among those kept),
    over the best candidate of each radio source (McAlpine et al. 2012).

    Returns
    -------
    (completeness, reliability) : ndarray (t,)
    """
    lr = np.asarray(best_lr, dtype=np.float64)
    rel = np.asarray(best_rel, dtype=np.float64)
    o = np.argsort(lr)
    lr, rel = lr[o], rel[o]
    cum_rel = np.concatenate(([0.0], np.cumsum(rel)))
    cum_false = np.concatenate(([0.0], np.cumsum(1.0 - rel)))
    t = np.asarray(thresholds, dtype=np.float64)
    below = np.searchsorted(lr, t, side="left")
    n_above = len(lr) - below
    comp = 1.0 - cum_rel[below] / max(q0 * n_radio, 1e-300)
    false_above = cum_false[-1] - cum_false[below]
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_out = np.where(n_above > 0, 1.0 - false_above / np.maximum(n_above, 1), 1.0)
    return np.clip(comp, 0.0, 1.0), rel_out


def choose_threshold(
    best_lr: np.ndarray, best_rel: np.ndarray, q0: float, n_radio: int
) -> Threshold:
    """The LR threshold where expected completeness and reliability balance.

    Parameters
    ----------
    best_lr, best_rel : ndarray (s,)
        LR and reliability of the best candidate of each radio source that has one.
    q0 : float
    n_radio : int
        All radio sources searched (with or without a candidate).

    Returns
    -------
    Threshold
    """
    lr = np.asarray(best_lr, dtype=np.float64)
    rel = np.asarray(best_rel, dtype=np.float64)
    pos = np.unique(lr[lr > 0])
    if len(pos) == 0:
        return Threshold(float("inf"), 0.0, 1.0, 0, 0.0)
    comp, rel_l = completeness_reliability(lr, rel, q0, n_radio, pos)
    k = int(np.argmin(np.abs(comp - rel_l)))
    keep = lr >= pos[k]
    return Threshold(
        float(pos[k]), float(comp[k]), float(rel_l[k]), int(keep.sum()),
        float(np.sum(1.0 - rel[keep])),
    )  # fmt: skip
