"""Numba kernels of the catalogue-only simulator (:mod:`skysense.sim.catalogs`).

One fused pass per cell for the true objects and, per survey, one for the detection band,
one for the positions and one for the photometry columns. The kernels draw no random
numbers: the caller draws them in bulk from the cell's own stream and passes them in, so the
output depends only on that stream (the same for any scheduler, worker or partitioning).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "galaxy_mag_from_uniform",
    "fill_objects",
    "detect",
    "place",
    "photometry",
]

_LN10 = math.log(10.0)
_K = 2.5 / _LN10  # 1.0857 mag per unit relative flux error


@numba.njit(cache=True, nogil=True)
def galaxy_mag_from_uniform(u, counts, m_lo, m_hi):
    """Magnitudes of a broken power-law count by exact inversion of its cumulative count.

    Parameters
    ----------
    u : ndarray (n,)
        Uniform deviates in [0, 1).
    counts : ndarray (5,)
        :class:`skysense.sim.sky.NumberCounts` as (n0, m0, alpha_faint, m_break,
        alpha_bright).
    m_lo, m_hi : float, mag
        The magnitude range (m_lo <= m < m_hi).

    Returns
    -------
    ndarray (n,), float64, mag
    """
    n0, m0, af, mb, ab = counts[0], counts[1], counts[2], counts[3], counts[4]
    at_break = n0 * 10.0 ** (af * (mb - m0))
    bright_total = at_break / (ab * _LN10)

    def cum(m):
        if m < mb:
            return at_break * 10.0 ** (ab * (m - mb)) / (ab * _LN10)
        return bright_total + (n0 * 10.0 ** (af * (m - m0)) - at_break) / (af * _LN10)

    c_lo, c_hi = cum(m_lo), cum(m_hi)
    out = np.empty(u.shape[0])
    for k in range(u.shape[0]):
        c = c_lo + u[k] * (c_hi - c_lo)
        if c < bright_total:
            m = mb + math.log10(c * ab * _LN10 / at_break) / ab
        else:
            m = m0 + math.log10(((c - bright_total) * af * _LN10 + at_break) / n0) / af
        out[k] = min(max(m, m_lo), m_hi)
    return out


@numba.njit(cache=True, nogil=True)
def fill_objects(
    is_star, i_gal, e_gamma, u_red, g_rhalf, g_colour, zgrid, passive, forming,
    i_star, pmra_star, pmdec_star, flux_star, zp_ujy,
    z_out, pmra_out, pmdec_out, imag_out, rhalf_out, flux_out,
):  # fmt: skip
    """The true objects of one cell, row by row (galaxies and stars interleaved as
    ``is_star`` says; the k-th galaxy row takes the k-th galaxy draws).

    Parameters
    ----------
    is_star : ndarray (n,) bool
    i_gal : ndarray (n_gal,), AB mag
        Galaxy i magnitudes.
    e_gamma : ndarray (2, n_gal)
        Standard exponential deviates (their sum is Gamma(2, 1)).
    u_red : ndarray (n_gal,)
        Uniform deviates: passive when below 0.35 exp(-z / 1.2).
    g_rhalf : ndarray (n_gal,)
        Standard normal deviates of log10 r_half (0.15 dex).
    g_colour : ndarray (bands, n_gal)
        Standard normal deviates of the colour scatter (0.08 mag).
    zgrid : ndarray (m,)
        Evenly spaced redshift grid of the colour tables.
    passive, forming : ndarray (bands, m), mag
        m_band - m_i on ``zgrid`` (NaN where a band sees no flux).
    i_star, pmra_star, pmdec_star : ndarray (n_star,)
        Star i magnitudes (AB) and proper motions (mas/yr).
    flux_star : ndarray (bands, n_star), uJy
    zp_ujy : float
        m_AB of 1 uJy.
    z_out, pmra_out, pmdec_out, imag_out, rhalf_out : ndarray (n,)
        Filled: redshift (NaN for stars), proper motions (0 for galaxies), i magnitude,
        half-light radius (arcsec, 0 for stars).
    flux_out : ndarray (bands, n), uJy
        Filled: true total fluxes.
    """
    n = is_star.shape[0]
    nb = flux_out.shape[0]
    z0 = zgrid[0]
    dz = zgrid[1] - zgrid[0]
    nz = zgrid.shape[0]
    g = 0
    s = 0
    for i in range(n):
        if is_star[i]:
            z_out[i] = np.nan
            pmra_out[i] = pmra_star[s]
            pmdec_out[i] = pmdec_star[s]
            imag_out[i] = i_star[s]
            rhalf_out[i] = 0.0
            for b in range(nb):
                flux_out[b, i] = flux_star[b, s]
            s += 1
            continue
        m = i_gal[g]
        z_med = 0.6 * math.exp(0.1 * _LN10 * (m - 22.5))
        z = z_med / 1.412 * (e_gamma[0, g] + e_gamma[1, g]) ** (2.0 / 3.0)
        z = min(max(z, 0.01), 6.0)
        red = u_red[g] < 0.35 * math.exp(-z / 1.2)
        lg = math.log10(0.8) - 0.08 * (m - 20.0) + 0.15 * g_rhalf[g]
        z_out[i] = z
        pmra_out[i] = 0.0
        pmdec_out[i] = 0.0
        imag_out[i] = m
        rhalf_out[i] = min(max(math.exp(_LN10 * lg), 0.1), 8.0)
        # Linear interpolation in z on the even grid.
        j = min(max(int((z - z0) / dz), 0), nz - 2)
        w = (z - zgrid[j]) / (zgrid[j + 1] - zgrid[j])
        for b in range(nb):
            if red:
                c = passive[b, j] + w * (passive[b, j + 1] - passive[b, j])
            else:
                c = forming[b, j] + w * (forming[b, j + 1] - forming[b, j])
            mag = m + c + 0.08 * g_colour[b, g]
            flux_out[b, i] = math.exp((zp_ujy - mag) * (0.4 * _LN10))
        g += 1


@numba.njit(cache=True, nogil=True)
def detect(
    true_det, src, scale, g_total, u_lost, bad_band, bad_factor, k_det,
    sigma0, missing_fraction,
):  # fmt: skip
    """The detection band of every candidate: total flux, its error and whether kept.

    Parameters
    ----------
    true_det : ndarray (n_obj,), uJy
        True detection-band fluxes of the cell's objects.
    src, scale : ndarray (n,)
        Each candidate's object and flux scale (1; a spurious duplicate's fraction).
    g_total : ndarray (n,)
        Standard normal deviates of the total flux noise.
    u_lost : ndarray (n,)
        Uniform deviates: lost below ``missing_fraction``.
    bad_band : ndarray (n,) int
        Band index of a grossly wrong flux, -1 for none; ``bad_factor`` its factor.
    k_det : int
        Index of the detection band.
    sigma0 : float, uJy
        Background noise (the 5-sigma depth / 5); the error adds 1 % of the flux.
    missing_fraction : float

    Returns
    -------
    total, sigma : ndarray (n,), uJy
    keep : ndarray (n,) bool
        Detected (>= 5 sigma and not lost); a duplicate only with its parent.
    """
    n = src.shape[0]
    n_obj = true_det.shape[0]
    total = np.empty(n)
    sigma = np.empty(n)
    keep = np.empty(n, np.bool_)
    for i in range(n):
        true = true_det[src[i]] * scale[i]
        s = math.sqrt(sigma0 * sigma0 + 1e-4 * true * true)
        t = true + g_total[i] * s
        if bad_band[i] == k_det:
            t *= bad_factor[i]
        total[i] = t
        sigma[i] = s
        keep[i] = t >= 5.0 * s and not (u_lost[i] < missing_fraction)
    for i in range(n_obj, n):
        keep[i] = keep[i] and keep[src[i]]
    return total, sigma, keep


@numba.njit(cache=True, nogil=True)
def place(
    idx, src, n_obj, ra, dec, pmra, pmdec, dt_yr, dup_sep, dup_angle, g_pos,
    offset_ra, offset_dec, pos_sigma,
):  # fmt: skip
    """Catalogued positions of the kept candidates ``idx`` (deg): the true position moved
    by proper motion to the survey's epoch, a duplicate's separation, the survey's
    systematic offset and its Gaussian scatter.

    Parameters
    ----------
    idx : ndarray (m,) int
        Kept candidates (indices >= ``n_obj`` are duplicates).
    src : ndarray (n,) int
        Each candidate's object.
    n_obj : int
    ra, dec : ndarray (n_obj,), deg
    pmra, pmdec : ndarray (n_obj,), mas/yr (pmra includes cos dec)
    dt_yr : float
        Survey epoch - truth epoch.
    dup_sep, dup_angle : ndarray (n - n_obj,), arcsec and rad
        Each duplicate's separation and position angle from its parent.
    g_pos : ndarray (2, m)
        Standard normal deviates of the scatter (ra cos dec, dec).
    offset_ra, offset_dec, pos_sigma : float, arcsec

    Returns
    -------
    ra, dec : ndarray (m,), deg (ra in [0, 360), dec clipped to [-90, 90])
    """
    m = idx.shape[0]
    ra_out = np.empty(m)
    dec_out = np.empty(m)
    for k in range(m):
        i = idx[k]
        o = src[i]
        r = ra[o]
        d = dec[o]
        if pmra[o] != 0.0 or pmdec[o] != 0.0:
            cosd = math.cos(math.radians(d))
            d = d + pmdec[o] * dt_yr / 3.6e6
            r = (r + pmra[o] * dt_yr / 3.6e6 / cosd) % 360.0
        if i >= n_obj:
            j = i - n_obj
            dx = dup_sep[j] * math.sin(dup_angle[j])
            dy = dup_sep[j] * math.cos(dup_angle[j])
            r = (r + dx / 3600.0 / math.cos(math.radians(d))) % 360.0
            d = d + dy / 3600.0
        dx = offset_ra + pos_sigma * g_pos[0, k]
        dy = offset_dec + pos_sigma * g_pos[1, k]
        r = (r + dx / 3600.0 / math.cos(math.radians(d))) % 360.0
        d = d + dy / 3600.0
        ra_out[k] = r
        dec_out[k] = min(max(d, -90.0), 90.0)
    return ra_out, dec_out


@numba.njit(cache=True, nogil=True, inline="always")
def _put(out, row, k, val, err, gone, as_mag, missing, zp):
    """A measurement and its error into rows ``row``, ``row + 1`` of column ``k`` of
    ``out``: ``missing`` when lost (or, as a magnitude with zero point ``zp``, not
    positive)."""
    if gone or (as_mag and not val > 0):
        out[row, k] = missing
        out[row + 1, k] = missing
    elif as_mag:
        out[row, k] = zp - _K * math.log(val)
        out[row + 1, k] = _K * err / val
    else:
        out[row, k] = val
        out[row + 1, k] = err


@numba.njit(cache=True, nogil=True)
def photometry(
    rows, src, is_dup, scale, true_flux, band_rows, k_det, r_half, det_total, det_sigma,
    bad_band, bad_factor, g_noise, u_lost, sigma0, sigma0_ap, ap_frac0, missing_fraction,
    mag_offset, as_mag, zp_ujy, aperture_radius, is_star, missing, stellarity, out,
):  # fmt: skip
    """A survey's photometry columns (and stellarity) of its catalogue rows.

    Background-limited noise with a 1 % floor, as
    :func:`skysense.sim.surveys.measure_photometry`: per band the total flux and its error,
    the aperture flux (a point source's aperture holds 10^(-0.4 apcorr) of the light,
    extended ones less) and its error; each missing at random, the aperture also on its own.
    Written as fluxes (uJy) or magnitudes (AB, or Vega through ``mag_offset``) with
    ``missing`` for a lost or non-positive measurement.

    Parameters
    ----------
    rows : ndarray (m,) int
        Candidate of each catalogue row.
    src, is_dup, scale : ndarray (n,)
        Each candidate's object, whether a duplicate, its flux scale.
    true_flux : ndarray (all bands, n_obj), uJy
    band_rows : ndarray (nb,) int
        Row of ``true_flux`` of each of the survey's bands.
    k_det : int
        The detection band (its total flux is ``det_total``/``det_sigma``, per candidate).
    r_half : ndarray (n_obj,), arcsec
    bad_band, bad_factor : ndarray (n,)
        Band index (-1 none) and factor of a grossly wrong total flux.
    g_noise : ndarray (2 nb, m)
        Standard normal deviates: total and aperture noise per band (the detection band's
        total row is unused), then the stellarity scatter in row ``2 k_det``.
    u_lost : ndarray (2 nb, m)
        Uniform deviates: total and aperture losses per band (the detection band's total
        loss row is unused: a kept detection was not lost).
    sigma0, sigma0_ap, ap_frac0, missing_fraction, mag_offset : ndarray (nb,)
    as_mag : bool
        Magnitudes (else fluxes in uJy).
    zp_ujy : float
        m_AB of 1 uJy.
    aperture_radius : float, arcsec
    is_star : ndarray (n_obj,) bool
    missing : float
        Sentinel (NaN for none).
    stellarity : bool
        Whether a stellarity column follows the photometry.
    out : ndarray (4 nb + stellarity, m)
        Filled, per band: total, error, aperture, error (float32 or float64).
    """
    m = rows.shape[0]
    nb = band_rows.shape[0]
    for k in range(m):
        i = rows[k]
        o = src[i]
        rh = 0.0 if is_dup[i] else r_half[o]
        for b in range(nb):
            true = true_flux[band_rows[b], o] * scale[i]
            if b == k_det:
                total = det_total[i]
                sigma = det_sigma[i]
                lost = False
            else:
                sigma = math.sqrt(sigma0[b] ** 2 + 1e-4 * true * true)
                total = true + g_noise[2 * b, k] * sigma
                if bad_band[i] == b:
                    total *= bad_factor[i]
                lost = u_lost[2 * b, k] < missing_fraction[b]
            ap_frac = ap_frac0[b] / (1.0 + (rh / aperture_radius) ** 2)
            sigma_ap = math.sqrt(sigma0_ap[b] ** 2 + 1e-4 * (true * ap_frac) ** 2)
            ap = true * ap_frac + g_noise[2 * b + 1, k] * sigma_ap
            lost_ap = lost or u_lost[2 * b + 1, k] < missing_fraction[b]
            _put(out, 4 * b, k, total, sigma, lost, as_mag, missing, zp_ujy - mag_offset[b])
            _put(out, 4 * b + 2, k, ap, sigma_ap, lost_ap, as_mag, missing, zp_ujy - mag_offset[b])
        if stellarity:
            snr = det_total[i] / det_sigma[i]
            conf = min(max((snr - 5.0) / 45.0, 0.0), 1.0)
            sign = 1.0 if is_star[o] and not is_dup[i] else -1.0
            st = 0.5 + sign * 0.47 * conf + 0.05 * g_noise[2 * k_det, k]
            out[4 * nb, k] = min(max(st, 0.0), 1.0)
