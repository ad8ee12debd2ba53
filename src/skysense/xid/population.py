"""The skew-normal population of the hierarchical flux prior: shape/location/scale <-> moments.

XID+'s hierarchical prior (:class:`skysense.xid.model.FluxPrior`, ``kind="hierarchical"``)
draws each band's log fluxes from a skew-normal of location ``loc``, scale ``scale`` and
shape ``alpha``. The map pins down the population's mean and sd (its moments), while location
and scale trade off against alpha, so the sampler, the numpyro reference model and the tiled
two-pass scheme (:mod:`skysense.xid.engine`) convert between the two parametrisations. This
module is the one place the conversion is written:

* mean = loc + scale delta sqrt(2/pi), sd = scale sqrt(1 - 2 delta^2/pi), delta = alpha /
  sqrt(1 + alpha^2) (:func:`skew_normal_moments`, inverse :func:`skew_normal_from_moments`);
* skewness = (4 - pi)/2 (delta sqrt(2/pi))^3 / (1 - 2 delta^2/pi)^(3/2)
  (:func:`skew_normal_skewness`), below 0.9953 in size for any alpha.

The scalar pieces (:func:`delta2`, :func:`log_sd_ratio`, :func:`mean_offset`) are numba
``register_jitable``: the numba sampler inlines them, and called from Python they accept
floats and numpy arrays (:func:`delta2` also jax arrays: it uses arithmetic only). Pure.
"""

from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable

__all__ = [
    "delta2",
    "log_sd_ratio",
    "mean_offset",
    "skew_normal_moments",
    "skew_normal_from_moments",
    "skew_normal_skewness",
]


@register_jitable
def delta2(alpha):
    """2 delta^2 / pi of shape ``alpha`` (delta = alpha / sqrt(1 + alpha^2)); in [0, 2/pi).

    1 - delta2 is (sd / scale)^2 and delta2 is ((mean - loc) / scale)^2. Arithmetic only, so
    floats, numpy and jax arrays and numba all take it.
    """
    return 2.0 * alpha * alpha / (math.pi * (1.0 + alpha * alpha))


@register_jitable
def log_sd_ratio(alpha):
    """ln(sd / scale) of a skew-normal of shape ``alpha``: 0.5 ln(1 - 2 delta^2 / pi) (<= 0)."""
    return 0.5 * np.log(1.0 - delta2(alpha))


@register_jitable
def mean_offset(alpha):
    """(mean - loc) / scale of a skew-normal of shape ``alpha``: delta sqrt(2/pi), sign of alpha."""
    return np.copysign(np.sqrt(delta2(alpha)), alpha)


def skew_normal_moments(loc, scale, alpha) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of a skew-normal of location ``loc``, scale ``scale`` (> 0), shape ``alpha``.

    Parameters
    ----------
    loc, scale, alpha : float or ndarray (broadcast), same units for ``loc`` and ``scale``
        (the prior's: log10 or ln flux)

    Returns
    -------
    mean, sd : ndarray (the broadcast shape), units of ``loc``
    """
    loc, scale, alpha = np.broadcast_arrays(*(np.asarray(x, float) for x in (loc, scale, alpha)))
    return loc + scale * mean_offset(alpha), scale * np.sqrt(1.0 - delta2(alpha))


def skew_normal_from_moments(mean, sd, alpha) -> tuple[np.ndarray, np.ndarray]:
    """Location and scale of the skew-normal of shape ``alpha`` with this ``mean`` and ``sd``.

    The inverse of :func:`skew_normal_moments` at fixed ``alpha``.

    Parameters
    ----------
    mean, sd, alpha : float or ndarray (broadcast); ``sd`` > 0, units of ``mean``

    Returns
    -------
    loc, scale : ndarray (the broadcast shape), units of ``mean``
    """
    mean, sd, alpha = np.broadcast_arrays(*(np.asarray(x, float) for x in (mean, sd, alpha)))
    scale = sd / np.sqrt(1.0 - delta2(alpha))
    return mean - scale * mean_offset(alpha), scale


def skew_normal_skewness(alpha) -> np.ndarray:
    """Skewness (third standardised moment) of a skew-normal of shape ``alpha``.

    (4 - pi)/2 m^3 / (1 - m^2)^(3/2) with m = delta sqrt(2/pi); odd in alpha, below 0.9953
    in size (alpha -> +-inf): a skew-normal cannot describe a population skewed more.
    """
    m = mean_offset(np.asarray(alpha, float))
    return (4.0 - math.pi) / 2.0 * m**3 / (1.0 - m * m) ** 1.5
