"""Fused numba kernels of the grid fit (one pass over objects x models, no temporaries).

With ~13 bands the matrix products of :func:`skysense.sed.fit.best_scale_chi2` are memory
bound: each step writes an (objects x models) array. These kernels compute the scale, chi^2
and the likelihood moments in one pass per object; ``nogil`` lets Dask's threads run them in
parallel. They are checked against the NumPy path in tests/sed/test_fit.py.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["scale_chi2_detections", "scale_chi2_split", "likelihood_moments"]


@numba.njit(nogil=True, cache=True, inline="always")
def _fit_scale(a, b, c):  # pragma: no cover - numba
    """Best non-negative scale ``s`` of one model and its chi^2, from the sums over bands
    a = sum(f^2 w), b = sum(f m w), c = sum(m^2 w). Returns (s, chi2)."""
    s = b / c if c > 0.0 else 0.0
    if s < 0.0:
        s = 0.0
    return s, a - 2.0 * s * b + s * s * c


@numba.njit(nogil=True, cache=True)
def scale_chi2_detections(flux, det, models, s_out, chi2_out, c_out):  # pragma: no cover - numba
    """Analytic best scale, chi^2 and curvature, detections only (weights ``det`` = 1/sigma^2)."""
    n, nb = flux.shape
    nm = models.shape[0]
    for i in range(n):
        a = 0.0
        for j in range(nb):
            a += flux[i, j] * flux[i, j] * det[i, j]
        for m in range(nm):
            b = 0.0
            c = 0.0
            for j in range(nb):
                w = det[i, j]
                mm = models[m, j]
                b += flux[i, j] * mm * w
                c += mm * mm * w
            s_out[i, m], chi2_out[i, m] = _fit_scale(a, b, c)
            c_out[i, m] = c


@numba.njit(nogil=True, cache=True)
def likelihood_moments(chi2, s, curv, log_ext, intensive, floor):  # pragma: no cover - numba
    """Per object: chi^2 minimum, log sum of exp(-(chi2 - min)/2), and likelihood-weighted
    first and second moments of the extensive (log10(s) + log_ext) and intensive quantities.

    A model whose extensive quantity is zero (``log_ext`` = -inf, e.g. no dust luminosity
    without attenuation) has no logarithm of it: it is left out of that quantity's moments,
    and ``frac_ext`` is the likelihood fraction of the models that have it.

    Returns (chi2_min, best, log_norm, m1_ext, m2_ext, m1_int, m2_int, frac_ext).
    """
    n, nm = chi2.shape
    ne = log_ext.shape[1]
    ni = intensive.shape[1]
    chi2_min = np.empty(n)
    best = np.empty(n, dtype=np.int64)
    log_norm = np.empty(n)
    m1e = np.zeros((n, ne))
    m2e = np.zeros((n, ne))
    tot_e = np.zeros((n, ne))
    m1i = np.zeros((n, ni))
    m2i = np.zeros((n, ni))
    ln10 = np.log(10.0)
    for i in range(n):
        k = 0
        lo = np.inf
        for m in range(nm):
            if chi2[i, m] < lo:
                lo = chi2[i, m]
                k = m
        chi2_min[i] = lo
        best[i] = k
        tot = 0.0
        for m in range(nm):
            x = chi2[i, m]
            if not x < np.inf:
                continue
            w = np.exp(-0.5 * (x - lo))
            tot += w
            sm = s[i, m]
            ls = np.log10(sm if sm > floor else floor)
            var = 0.0
            if curv[i, m] > 0.0 and sm > 0.0:
                var = 1.0 / (curv[i, m] * (sm * ln10) ** 2)
                if var > 1.0:
                    var = 1.0
            for q in range(ne):
                if not log_ext[m, q] > -np.inf:
                    continue
                v = ls + log_ext[m, q]
                m1e[i, q] += w * v
                m2e[i, q] += w * (v * v + var)
                tot_e[i, q] += w
            for q in range(ni):
                v = intensive[m, q]
                m1i[i, q] += w * v
                m2i[i, q] += w * v * v
        log_norm[i] = np.log(tot)
        for q in range(ne):
            if tot_e[i, q] > 0.0:
                m1e[i, q] /= tot_e[i, q]
                m2e[i, q] /= tot_e[i, q]
            else:  # no model with a likelihood has the quantity
                m1e[i, q] = np.nan
                m2e[i, q] = np.nan
            tot_e[i, q] /= tot
        for q in range(ni):
            m1i[i, q] /= tot
            m2i[i, q] /= tot
    return chi2_min, best, log_norm, m1e, m2e, m1i, m2i, tot_e


@numba.njit(nogil=True, cache=True)
def scale_chi2_split(
    flux, det, is_ir, models, valid, s_out, chi2_out, c_out, alone_out
):  # pragma: no cover
    """:func:`scale_chi2_detections` for the joint fit, and in the same pass the best chi^2 of
    the optical (``~is_ir``) and infrared bands fitted alone, summed into ``alone_out`` (n,)."""
    n, nb = flux.shape
    nm = models.shape[0]
    for i in range(n):
        a_o = 0.0
        a_i = 0.0
        n_o = 0
        n_i = 0
        for j in range(nb):
            v = flux[i, j] * flux[i, j] * det[i, j]
            if is_ir[j]:
                a_i += v
                n_i += det[i, j] > 0.0
            else:
                a_o += v
                n_o += det[i, j] > 0.0
        best_o = np.inf
        best_i = np.inf
        for m in range(nm):
            b_o = 0.0
            c_o = 0.0
            b_i = 0.0
            c_i = 0.0
            for j in range(nb):
                w = det[i, j]
                mm = models[m, j]
                if is_ir[j]:
                    b_i += flux[i, j] * mm * w
                    c_i += mm * mm * w
                else:
                    b_o += flux[i, j] * mm * w
                    c_o += mm * mm * w
            c = c_o + c_i
            s_out[i, m], chi2_out[i, m] = _fit_scale(a_o + a_i, b_o + b_i, c)
            c_out[i, m] = c
            if valid[m]:
                # explicit comparisons, not min(): a NaN chi^2 must not replace the best
                x = _fit_scale(a_o, b_o, c_o)[1]
                if x < best_o:
                    best_o = x
                x = _fit_scale(a_i, b_i, c_i)[1]
                if x < best_i:
                    best_i = x
        alone_out[i] = (best_o if n_o > 0 else 0.0) + (best_i if n_i > 0 else 0.0)
