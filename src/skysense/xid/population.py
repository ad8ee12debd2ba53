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
  (:func:`skew_normal_skewness`), below 0.9953 in size for any alpha; its inverse
  :func:`skew_normal_shape`;
* the shape's hyperprior learned from the prior list (:func:`shape_hyperprior`, #18), which
  :func:`skysense.xid.fit.fit` and the tiled passes of :mod:`skysense.xid.engine` give the
  sampler and the numpyro reference model alike (both read
  :attr:`skysense.xid.model.FluxPrior.hyper_skew_mean` / ``hyper_skew_sd``).

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
    "skew_normal_shape",
    "SHAPE_SKEW_TRANSFER",
    "SHAPE_HYPER_SD",
    "selection_skewness",
    "shape_hyperprior",
]

#: Fraction of the sample skewness of the prior list's log fluxes in its selection band that
#: the population of a fitted band is given as its hyperprior's centre (see
#: :func:`shape_hyperprior`). 0.32: the i < 22 lists of the development fields (skewness 1.42
#: in i on average, seeds 6-11, 100-111, 200-205) then get alpha ~ 2, the centre the fixed
#: hyperprior had been calibrated to on them; the far-infrared fluxes of a flux-limited list
#: keep about rho^3 of the selection band's skewness (rho ~ 0.6-0.7 between i and SPIRE)
SHAPE_SKEW_TRANSFER = 0.32
#: sd of the shape's Normal hyperprior
SHAPE_HYPER_SD = 1.0


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


def skew_normal_shape(skewness, max_abs: float = 0.99) -> np.ndarray:
    """Shape alpha of the skew-normal of this ``skewness`` (inverse of :func:`skew_normal_skewness`).

    A skew-normal's skewness stays below 0.9953 in size, so ``skewness`` is first clipped to
    +-``max_abs`` (0.99: alpha ~ 30).
    """
    g = np.clip(np.asarray(skewness, float), -max_abs, max_abs)
    # |g| = (4 - pi)/2 m^3 / (1 - m^2)^(3/2) with m = delta sqrt(2/pi): solve for m, then delta
    c = np.cbrt(2.0 * np.abs(g) / (4.0 - math.pi)) ** 2  # (m^2 / (1 - m^2))
    m = np.sqrt(c / (1.0 + c))
    delta = np.minimum(m / math.sqrt(2.0 / math.pi), 1.0 - 1e-12)
    return np.sign(g) * delta / np.sqrt(1.0 - delta * delta)


def selection_skewness(flux) -> float:
    """Sample skewness of log10 of the positive, finite values of ``flux``; NaN below 10 values."""
    f = np.asarray(flux, float).ravel()
    lg = np.log10(f[np.isfinite(f) & (f > 0)])
    if lg.size < 10:
        return math.nan
    d = lg - lg.mean()
    sd = math.sqrt(float(np.mean(d * d)))
    return float(np.mean(d**3)) / sd**3 if sd > 0 else 0.0


def shape_hyperprior(selection_fluxes=()) -> tuple[float, float]:
    """The hyperprior (mean, sd) of the population's shape alpha, from the prior list's fluxes.

    A prior list selected by a flux limit in some band has log fluxes in that band with a
    sharp faint edge and a long bright tail (skewness 1.0-1.9 for i < 22, MIPS 24 > 50 uJy and
    IRAC 3.6 > 20 uJy lists of :mod:`skysense.sim`); a fitted band correlated with it inherits
    part of the skew. The centre is the alpha whose skewness is :data:`SHAPE_SKEW_TRANSFER`
    times the selection band's sample skewness (the mean over the bands given), the sd
    :data:`SHAPE_HYPER_SD`. A list without selection fluxes (none given, or fewer than 10
    positive values) has no selection edge to skew its population: alpha ~ Normal(0, sd),
    centred on the log-normal.

    Parameters
    ----------
    selection_fluxes : sequence of ndarray (nsrc,) - the list's fluxes in each band it was
        selected on (any unit: the skewness of the logs does not depend on it)

    Returns
    -------
    mean, sd : float
    """
    g = [selection_skewness(f) for f in selection_fluxes]
    g = [v for v in g if math.isfinite(v)]
    if not g:
        return 0.0, SHAPE_HYPER_SD
    return float(skew_normal_shape(SHAPE_SKEW_TRANSFER * float(np.mean(g)))), SHAPE_HYPER_SD
