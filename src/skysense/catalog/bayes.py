"""Probabilistic cross-identification: Budavari & Szalay (2008, ApJ 679, 301).

For two detections with circular Gaussian positional errors sigma_1, sigma_2 (radians) at
separation psi, the Bayes factor of "same object" against "different objects" is, in the
small-angle (normal) limit of their eq. (16),

    B = 2 / (sigma_1^2 + sigma_2^2) * exp(-psi^2 / (2 (sigma_1^2 + sigma_2^2)))

(dimensionless: the ratio of the joint likelihood under one common position to that of two
independent positions uniform on the sphere). With a prior P0 that a random pair is a match,
their eq. (26) gives the posterior

    P = [1 + (1 - P0) / (B P0)]^-1.

A natural prior is P0 = N_common / (N_1 N_2) (eq. 27); :func:`prior_from_counts` computes it.
Pure functions of arrays in arcsec.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from skysense.errors import InputError

__all__ = [
    "log_bayes_factor",
    "bayes_factor",
    "match_probability",
    "match_probability_from_log_odds",
    "prior_from_counts",
]

_ARCSEC = np.pi / (180.0 * 3600.0)


def log_bayes_factor(
    sep_arcsec: np.ndarray, sigma1_arcsec: np.ndarray, sigma2_arcsec: np.ndarray
) -> np.ndarray:
    """Natural logarithm of the two-catalogue Bayes factor.

    Parameters
    ----------
    sep_arcsec : ndarray (n,), arcsec
        Separations.
    sigma1_arcsec, sigma2_arcsec : ndarray (n,) or float, arcsec
        1-sigma positional error per coordinate of each detection (> 0).

    Returns
    -------
    ndarray (n,)

    Raises
    ------
    InputError
        A non-positive or non-finite error.
    """
    s1 = np.asarray(sigma1_arcsec, dtype=np.float64) * _ARCSEC
    s2 = np.asarray(sigma2_arcsec, dtype=np.float64) * _ARCSEC
    if not (
        np.all(np.isfinite(s1)) and np.all(s1 > 0) and np.all(np.isfinite(s2)) and np.all(s2 > 0)
    ):
        raise InputError("positional errors must be finite and > 0 arcsec")
    var = s1**2 + s2**2
    psi = np.asarray(sep_arcsec, dtype=np.float64) * _ARCSEC
    return np.log(2.0 / var) - psi**2 / (2.0 * var)


def bayes_factor(sep_arcsec, sigma1_arcsec, sigma2_arcsec) -> np.ndarray:
    """The Bayes factor B itself (see :func:`log_bayes_factor`)."""
    return np.exp(log_bayes_factor(sep_arcsec, sigma1_arcsec, sigma2_arcsec))


def match_probability(log_b: np.ndarray, prior: float) -> np.ndarray:
    """Posterior probability of a match, eq. (26), from ``ln B`` and the prior P0 in (0, 1).

    Computed as the logistic function of ``ln B + ln P0 - ln(1 - P0)`` (``scipy.special.expit``)
    so that huge or tiny Bayes factors neither overflow nor lose precision.
    """
    if not 0.0 < prior < 1.0:
        raise InputError(f"prior must be in (0, 1), got {prior!r}")
    logit = np.asarray(log_b, dtype=np.float64) + np.log(prior) - np.log1p(-prior)
    return expit(logit)


def match_probability_from_log_odds(log_odds: np.ndarray) -> np.ndarray:
    """Posterior probability from ``ln B + ln(P0 / (1 - P0))`` (a logistic function)."""
    return expit(np.asarray(log_odds, dtype=np.float64))


def prior_from_counts(n_common: int, n1: int, n2: int) -> float:
    """P0 = N_common / (N_1 N_2), clipped into (0, 1)."""
    if n1 <= 0 or n2 <= 0:
        raise InputError("catalogue sizes must be positive")
    return float(np.clip(max(n_common, 1) / (float(n1) * float(n2)), 1e-300, 1 - 1e-12))
