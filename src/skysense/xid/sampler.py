"""The fast exact XID+ sampler: Gibbs sampling of the truncated Gaussian, in numba.

With sigma_conf fixed, the posterior of (fluxes, background) of one band is a multivariate
Gaussian truncated to the flux bounds (uniform or Gaussian flux priors, Normal background
prior). Each full conditional is then a 1-D truncated normal, drawn exactly (Robert 1995
rejection samplers, chosen by where the bounds lie). The residual map ``r = d - A f - B`` is
updated incrementally through the sparse column of the source just drawn, so one sweep over
all sources costs O(nnz(A)) rather than O(nsrc x npix). sigma_conf is then updated by a slice
step (Neal 2003) on log sigma_conf, which is exact MCMC with no tuning; log-uniform and
log-normal flux priors use a slice step on log f (its width set by the conditional's mean,
never by the current point, as slice sampling needs), or, for a source the data measure to
better than a fifth of its flux, a Metropolis-Hastings draw from the Gaussian likelihood
tilted by the prior's expansion (near-independent draws, a third of the density
evaluations). Strongly coupled pairs get joint moves along their long axis, the most
strongly coupled twice a sweep. Several independent chains, each with its own seeded
generator.

The hierarchical flux prior (``kind="hierarchical"``) is the log-normal population prior with
its two hyperparameters, the ln-median ``m`` and ln-scatter ``s`` of the band's fluxes, added
to the state: given (m, s) every flux takes the log-normal slice step above; given the fluxes,
m takes an exact conjugate Normal draw and s a slice step on log s (HalfNormal hyperprior,
not conjugate); then m and the log fluxes of the sources the map hardly measures move
together (:func:`_shift_population`, an interweaving move: faint fluxes and m pin each other
down, so alternating draws of the two crawl). The flux bounds are a numerical box, not
part of the population: the density is not renormalised to them (each source's upper bound
comes from the data, where the likelihood is already ~0), so (m, s) describe the population
and not its truncation. Why a log-normal population: the prior lists (detections at another
wavelength) give a unimodal distribution in log flux, a log-normal has just two parameters
that the map constrains well, and in u = ln f it is Gaussian, so the flux step is the existing
one. A broken power law would need an explicit faint-end turnover parameter that a tile's
data hardly constrain.

With ``ConfusionPrior(correlated=True)`` the white sigma_conf is replaced by the correlated
confusion field of :mod:`skysense.xid.confusion`, a latent variable updated between blocks of
sweeps (exact draws by FFTs), with joint flux-field moves so that flux passes between a
source and the field without crawling.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numba
import numpy as np
import scipy.sparse as sp

from skysense.errors import InputError
from skysense.xid.model import BandModel
from skysense.xid.population import log_sd_ratio, mean_offset, skew_normal_moments

__all__ = [
    "BandPosterior",
    "sample_band",
    "truncated_normal",
    "coupled_pairs",
]

_LN10 = math.log(10.0)
_LN2 = math.log(2.0)
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: sources (pairs) whose flux along the move is known to better than 1/_MH_SNR of itself
#: take the Metropolis-Hastings step of :func:`_tilted_step` instead of a slice step
_MH_SNR = 5.0
#: pairs coupled more strongly than this get a second joint move each sweep
_PAIR_RHO_TWICE = 0.8
#: sources below this single-source signal-to-noise move with the population (see
#: :func:`_shift_population`)
_FAINT_SNR = 3.0
_FLUX_W = 2.0
#: overrelaxed flux steps (``sample_band(overrelax=k)``): the slice's ends are found to
#: _OR_BISECT halvings of the step width; stepping out gives up (rejects) after
#: _OR_MAX_STEPS widths
_OR_BISECT = 5
_OR_MAX_STEPS = 10000
#: correlated confusion field: the joint flux-field moves (cheap) run after every this many
#: sweeps, the field's exact draw (FFTs) only every ``conf_every``
_FIELD_MOVES_EVERY = 1
_FLUX_STEPS = 50

# Slots of the hierarchical prior's state array ``hyp`` (float64; numba folds these module
# constants into the kernels, so names cost nothing): the population's location m, ln scale
# and skew alpha (updated in place), the hyperpriors m ~ Normal(_H_LOC_MEAN, _H_LOC_SD),
# s ~ HalfNormal(_H_SCALE_SD), alpha ~ Normal(_H_SKEW_MEAN, _H_SKEW_SD) (sd 0: log-normal,
# alpha fixed at 0), the update period in sweeps, and the width tied to another band's:
# ln sd ~ Normal(_H_TIED_LN_SD, _H_TIED_SD) in place of the HalfNormal (sd 0: free). All in
# ln-flux units; :func:`_hyper_state` builds it.
_H_LOC, _H_LN_SCALE, _H_LOC_MEAN, _H_LOC_SD, _H_SCALE_SD = 0, 1, 2, 3, 4
_H_SKEW, _H_SKEW_SD, _H_SKEW_MEAN, _H_EVERY, _H_TIED_LN_SD, _H_TIED_SD = 5, 6, 7, 8, 9, 10
_H_SIZE = 11


@numba.njit(cache=True)
def _tn_upper_tail(a, b, rng):
    """z ~ N(0,1) truncated to [a, b] with 0 <= a < b (b may be inf)."""
    if a < 0.3:
        if b - a < 1.0:
            # uniform proposal; the density is largest at a
            while True:
                z = a + (b - a) * rng.random()
                if math.log(rng.random()) <= -0.5 * (z * z - a * a):
                    return z
        while True:
            z = abs(rng.standard_normal())
            if a <= z <= b:
                return z
    alpha = 0.5 * (a + math.sqrt(a * a + 4.0))
    if alpha * (b - a) < 1.0:
        while True:
            z = a + (b - a) * rng.random()
            if math.log(rng.random()) <= -0.5 * (z * z - a * a):
                return z
    while True:  # translated-exponential proposal (Robert 1995)
        z = a + rng.standard_exponential() / alpha
        if z <= b and math.log(rng.random()) <= -0.5 * (z - alpha) ** 2:
            return z


@numba.njit(cache=True)
def _tn_std(a, b, rng):
    """z ~ N(0,1) truncated to [a, b] (a < b; either may be infinite)."""
    if a >= 0.0:
        return _tn_upper_tail(a, b, rng)
    if b <= 0.0:
        return -_tn_upper_tail(-b, -a, rng)
    if b - a < 1.0:
        while True:
            z = a + (b - a) * rng.random()
            if math.log(rng.random()) <= -0.5 * z * z:
                return z
    while True:
        z = rng.standard_normal()
        if a <= z <= b:
            return z


@numba.njit(cache=True)
def _tn(mean, sd, lo, hi, rng):
    z = _tn_std((lo - mean) / sd, (hi - mean) / sd, rng)
    x = mean + sd * z
    # rounding can put x a hair outside; the bounds are hard
    return min(max(x, lo), hi)


@numba.njit(cache=True)
def _tn_many(mean, sd, lo, hi, n, seed_rng):
    out = np.empty(n)
    for i in range(n):
        out[i] = _tn(mean, sd, lo, hi, seed_rng)
    return out


def truncated_normal(
    mean: float, sd: float, lower: float, upper: float, size: int, random_state=None
) -> np.ndarray:
    """Draws of Normal(mean, sd) truncated to [lower, upper] (the sampler's own kernel).

    Exposed so that the kernel can be checked against :func:`scipy.stats.truncnorm`.
    """
    rng = np.random.default_rng(random_state)
    if not (sd > 0 and lower < upper):
        raise InputError("truncated_normal needs sd > 0 and lower < upper")
    return _tn_many(float(mean), float(sd), float(lower), float(upper), int(size), rng)


@numba.njit(cache=True)
def _conf_logpost(u, r, s2, kind, scale):
    c2 = math.exp(2.0 * u)
    chi2 = 0.0
    logdet = 0.0
    prod = 1.0
    # the log of the product of 8 variances at a time: the logarithm was half the cost of
    # this sum over the pixels (8 variances within 1e+-38 of 1 cannot overflow)
    for i in range(r.size):
        v = s2[i] + c2
        chi2 += r[i] * r[i] / v
        prod *= v
        if i & 7 == 7:
            logdet += math.log(prod)
            prod = 1.0
    lp = -0.5 * (chi2 + logdet + math.log(prod))
    c = math.exp(u)
    if kind == 1:  # half-Cauchy
        lp -= math.log1p((c / scale) ** 2)
    else:  # half-normal
        lp -= 0.5 * (c / scale) ** 2
    return lp + u  # Jacobian of c = exp(u)


@numba.njit(cache=True)
def _slice_conf(u0, r, s2, kind, scale, rng):
    """One slice-sampling update (stepping out, shrinkage) of u = log sigma_conf."""
    # ~2 posterior sd on the benchmark tiles: 6 evaluations of the n-pixel sum, not 7
    width = 2.0
    y = _conf_logpost(u0, r, s2, kind, scale) - rng.standard_exponential()
    left = u0 - width * rng.random()
    right = left + width
    for _ in range(30):
        if _conf_logpost(left, r, s2, kind, scale) < y:
            break
        left -= width
    for _ in range(30):
        if _conf_logpost(right, r, s2, kind, scale) < y:
            break
        right += width
    while True:
        u = left + (right - left) * rng.random()
        if _conf_logpost(u, r, s2, kind, scale) >= y:
            return u
        if u < u0:
            left = u
        else:
            right = u


def _log_ndtr_table(lo: float, hi: float, h: float, deg: int) -> np.ndarray:
    """Polynomial coefficients (n, deg + 1), in t in [-1, 1], of log Phi on the n intervals
    [lo + i h, lo + (i + 1) h]: interpolation at each interval's Chebyshev nodes (values from
    scipy), converted to powers of t (well conditioned at this degree)."""
    from scipy.special import log_ndtr

    cheb = np.polynomial.chebyshev
    n = int(round((hi - lo) / h))
    nodes = np.cos(np.pi * (np.arange(deg + 1) + 0.5) / (deg + 1))
    out = np.zeros((n, deg + 1))
    for i in range(n):
        x = lo + i * h + 0.5 * h * (nodes + 1.0)
        # cheb2poly trims trailing zero coefficients (a fit's last one can come out exactly
        # 0 with some BLAS builds): pad back to deg + 1
        p = cheb.cheb2poly(cheb.chebfit(nodes, log_ndtr(x), deg))
        out[i, : p.size] = p
    return out


# log Phi on [-40, 9) as piecewise polynomials of degree 9 on intervals of 1/8: within 1e-12
# of scipy's log_ndtr in absolute terms (2e-15 of max(1, |log Phi|)) and 2e-12 relative over
# the whole range, i.e. at the level of the erfc it replaces, at a sixth of the cost (5 ns
# against 30 for erfc + log). log Phi is the skew-normal population's density, evaluated some
# 20000 times a sweep at 600 sources (population update, pair and flux steps): it was most of
# a sweep's cost. Outside the range the exact branches of :func:`_log_ndtr_exact`.
_LPHI_LO, _LPHI_HI, _LPHI_H = -40.0, 9.0, 0.125
_LPHI_C = _log_ndtr_table(_LPHI_LO, _LPHI_HI, _LPHI_H, 9)
_LPHI_N = _LPHI_C.shape[0]


@numba.njit(cache=True)
def _log_ndtr(x):
    """log Phi(x) of the standard normal CDF, accurate in the far lower tail (the table above
    on [-40, 9), :func:`_log_ndtr_exact` outside)."""
    if _LPHI_LO <= x < _LPHI_HI:
        s = (x - _LPHI_LO) * (1.0 / _LPHI_H)
        i = min(int(s), _LPHI_N - 1)
        t = 2.0 * (s - i) - 1.0
        t2 = t * t
        t4 = t2 * t2
        c = _LPHI_C
        # Estrin's scheme: short dependency chains (Horner's 9 chained steps were 3x slower)
        p01 = c[i, 0] + c[i, 1] * t
        p23 = c[i, 2] + c[i, 3] * t
        p45 = c[i, 4] + c[i, 5] * t
        p67 = c[i, 6] + c[i, 7] * t
        p89 = c[i, 8] + c[i, 9] * t
        return (p01 + t2 * p23) + t4 * ((p45 + t2 * p67) + t4 * p89)
    return _log_ndtr_exact(x)


@numba.njit(cache=True)
def _log_ndtr_exact(x):
    """log Phi(x) of the standard normal CDF from erfc, accurate in the far lower tail."""
    if x > 0.0:  # 1 - Phi(x) is small: log1p keeps the digits
        return math.log1p(-0.5 * math.erfc(x / math.sqrt(2.0)))
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    # below, erfc heads for underflow: the asymptotic series (Abramowitz & Stegun 7.1.23),
    # whose first omitted term is < 1e-12 here
    v = 1.0 / (x * x)
    series = 1.0 - v * (1.0 - 3.0 * v * (1.0 - 5.0 * v * (1.0 - 7.0 * v)))
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2.0 * math.pi) + math.log(series)


@numba.njit(cache=True)
def _skew_lp(u, lmu, lprec, lalpha):
    """Log density in u = ln f of the skew-normal population, up to a constant.

    ``2 phi(z) Phi(alpha z)``: the factor 2 keeps the density continuous in alpha at 0,
    where the Phi term (skipped there: it is 1/2) would otherwise jump.
    """
    return _skew_lp_sd(u, lmu, math.sqrt(lprec), lalpha)


@numba.njit(cache=True)
def _skew_lp_sd(u, lmu, isd, lalpha):
    """:func:`_skew_lp` with the inverse scale ``isd`` = lprec^1/2 computed once by the caller
    (the square root was a measurable part of the slice steps' cost)."""
    z = (u - lmu) * isd
    lp = -0.5 * z * z
    if lalpha != 0.0:
        lp += _LN2 + _log_ndtr(lalpha * z)
    return lp


@numba.njit(cache=True)
def _logflux_lp(u, m, prec, lmu, lisd, lalpha):
    """Log conditional of u = ln f; ``lisd`` = lprec^1/2 (0: flat in u)."""
    f = math.exp(u)
    return -0.5 * prec * (f - m) ** 2 + _skew_lp_sd(u, lmu, lisd, lalpha)


@numba.njit(cache=True)
def _slice_logflux(f0, m, prec, lo, hi, lmu, lprec, lalpha, rng):
    """Slice update of f with density N(f; m, 1/prec) p(f) on [lo, hi], sampled in u = log f.

    In u the prior is flat (log-uniform p(f) ~ 1/f, ``lprec`` = 0), Normal(lmu, 1/lprec)
    (log-normal) or skew-normal of location lmu, scale lprec^-1/2 and shape ``lalpha``.
    """
    ulo, uhi = math.log(lo), math.log(hi)
    u0 = math.log(f0)
    # the width must not depend on the current point (slice sampling's interval procedure
    # is reversible only then): the likelihood's sd in u at its mean m, or at one sd in f
    # when m is below that (the likelihood is then a soft upper wall in u)
    sdf = 1.0 / math.sqrt(prec)
    width = _FLUX_W * sdf / max(m, sdf)
    if lprec > 0.0:
        width = min(width, _FLUX_W / math.sqrt(lprec))
    width = min(uhi - ulo, max(1e-3, width))
    lisd = math.sqrt(lprec)
    y = _logflux_lp(u0, m, prec, lmu, lisd, lalpha) - rng.standard_exponential()
    # Neal's (2003) stepping out with at most _FLUX_STEPS widths in all, split at random
    # between the two sides; the interval is clipped to the bounds after it is placed
    left = u0 - width * rng.random()
    right = left + width
    j = int(_FLUX_STEPS * rng.random())
    k = _FLUX_STEPS - 1 - j
    left, right = max(ulo, left), min(uhi, right)
    while j > 0 and left > ulo and _logflux_lp(left, m, prec, lmu, lisd, lalpha) >= y:
        left = max(ulo, left - width)
        j -= 1
    while k > 0 and right < uhi and _logflux_lp(right, m, prec, lmu, lisd, lalpha) >= y:
        right = min(uhi, right + width)
        k -= 1
    while True:
        u = left + (right - left) * rng.random()
        if _logflux_lp(u, m, prec, lmu, lisd, lalpha) >= y:
            return min(max(math.exp(u), lo), hi)
        if u < u0:
            left = u
        else:
            right = u


@numba.njit(cache=True)
def _lp5(x, p):
    return _logflux_lp(x, p[0], p[1], p[2], p[3], p[4])


@numba.njit(cache=True)
def _overrelaxed(x0, width, xlo, xhi, p, rng):
    """Neal's (2003, section 6, his figure 10) overrelaxed slice update of one source's
    density in u = ln f, :func:`_logflux_lp` with p = (m, prec, lmu, lisd, lalpha), on
    [xlo, xhi]: the slice's ends are found to _OR_BISECT halvings of the
    width and x is reflected about their midpoint (accepted if the image is in the slice and
    in the interval). Stepping out has no cap (it ends at the bounds, or at +-_OR_MAX_STEPS
    widths, where the density is negligible: the interval is then the same from any point of
    a unimodal slice, as the reflection's reversibility needs), and the grid points between
    x and its image must be in the slice (else the interval from the image could differ:
    rejected). A reflection leaves the density level where it was, so the caller mixes it
    with ordinary draws. Returns the new point (x0 when rejected)."""
    y = _lp5(x0, p) - rng.standard_exponential()
    grid = x0 - width * rng.random()  # the stepping-out grid is grid + k width
    left = grid
    right = left + width
    for _ in range(_OR_MAX_STEPS):
        if left <= xlo or _lp5(left, p) < y:
            break
        left -= width
    else:
        return x0
    for _ in range(_OR_MAX_STEPS):
        if right >= xhi or _lp5(right, p) < y:
            break
        right += width
    else:
        return x0
    lft, rgt = max(xlo, left), min(xhi, right)
    w = width
    a = _OR_BISECT
    if rgt - lft < 1.1 * width:
        while True:
            mid = 0.5 * (lft + rgt)
            if a == 0 or y < _lp5(mid, p):
                break
            if x0 > mid:
                lft = mid
            else:
                rgt = mid
            a -= 1
            w *= 0.5
    el, er = lft, rgt
    while a > 0:
        a -= 1
        w *= 0.5
        if y >= _lp5(el + w, p):
            el += w
        if y >= _lp5(er - w, p):
            er -= w
    x1 = el + er - x0
    if x1 < lft or x1 > rgt or y >= _lp5(x1, p):
        return x0
    k0 = math.floor((min(x0, x1) - grid) / width) + 1
    k1 = math.ceil((max(x0, x1) - grid) / width) - 1
    for k in range(k0, k1 + 1):
        if y >= _lp5(grid + k * width, p):
            return x0
    return x1


@numba.njit(cache=True)
def _overrelaxed_logflux(f0, m, prec, lo, hi, lmu, lprec, lalpha, rng):
    """:func:`_overrelaxed` step of one source's flux in u = ln f (the density and width
    of :func:`_slice_logflux`)."""
    ulo, uhi = math.log(lo), math.log(hi)
    sdf = 1.0 / math.sqrt(prec)
    width = _FLUX_W * sdf / max(m, sdf)
    if lprec > 0.0:
        width = min(width, _FLUX_W / math.sqrt(lprec))
    width = min(uhi - ulo, max(1e-3, width))
    p = (m, prec, lmu, math.sqrt(lprec), lalpha)
    u = _overrelaxed(math.log(f0), width, ulo, uhi, p, rng)
    return min(max(math.exp(u), lo), hi)


@numba.njit(cache=True)
def _hyper_lp(x, hyp, u):
    """Log conditional of the population (m, t = ln s, alpha) = ``x`` given the log fluxes u.

    ``hyp``: the state array (its hyperprior slots, ``_H_*``). The
    population density is not renormalised to each source's bounds: they are a numerical
    box (the upper one derived from the data, where the likelihood is already ~0), not part
    of the population, so (m, s, alpha) describe the population itself.
    """
    m, t, a = x[0], x[1], x[2]
    s = math.exp(t)
    lp = -0.5 * ((m - hyp[_H_LOC_MEAN]) / hyp[_H_LOC_SD]) ** 2
    if hyp.size > _H_TIED_SD and hyp[_H_TIED_SD] > 0.0:
        # width tied to another band's: ln sd ~ Normal(_H_TIED_LN_SD, _H_TIED_SD) replaces the
        # HalfNormal
        # on s (ln sd = t + a function of alpha: a density in t at fixed alpha)
        lp -= 0.5 * ((t + log_sd_ratio(a) - hyp[_H_TIED_LN_SD]) / hyp[_H_TIED_SD]) ** 2
    else:
        lp += -0.5 * (s / hyp[_H_SCALE_SD]) ** 2 + t  # + t: Jacobian
    if hyp[_H_SKEW_SD] > 0.0:
        lp -= 0.5 * ((a - hyp[_H_SKEW_MEAN]) / hyp[_H_SKEW_SD]) ** 2
    isd = math.sqrt(1.0 / (s * s))  # as _skew_lp computes it, so the sums are unchanged
    for k in range(u.size):
        lp += _skew_lp_sd(u[k], m, isd, a) - t
    return lp


@numba.njit(cache=True)
def _slice_hyper(x, i, width, hyp, u, rng):
    """One slice update (stepping out, shrinkage) of coordinate ``i`` of ``x`` (in place)."""
    x0 = x[i]
    y = _hyper_lp(x, hyp, u) - rng.standard_exponential()
    left = x0 - width * rng.random()
    right = left + width
    for _ in range(40):
        x[i] = left
        if _hyper_lp(x, hyp, u) < y:
            break
        left -= width
    for _ in range(40):
        x[i] = right
        if _hyper_lp(x, hyp, u) < y:
            break
        right += width
    while True:
        x[i] = left + (right - left) * rng.random()
        if _hyper_lp(x, hyp, u) >= y:
            return
        if x[i] < x0:
            left = x[i]
        else:
            right = x[i]


@numba.njit(cache=True)
def _from_moments(a, mean, lsd, x):
    """x = (location, ln scale, a) of the skew-normal of shape a with this mean and ln sd."""
    t = lsd - log_sd_ratio(a)
    x[0] = mean - math.exp(t) * mean_offset(a)
    x[1] = t
    x[2] = a


@numba.njit(cache=True)
def _slice_shape_at_moments(x, hyp, u, rng):
    """Slice step of the shape alpha with the population's mean and sd held fixed.

    Location and scale follow alpha (:func:`_from_moments`); the map (mean, ln sd) ->
    (location, ln scale) at fixed alpha is triangular with unit Jacobian, so the target
    is :func:`_hyper_lp` unchanged. Coordinate moves of alpha at fixed location crawl,
    because changing the skew at fixed location moves the mean the data pin down.
    """
    a0 = x[2]
    lsd = x[1] + log_sd_ratio(a0)
    mean = x[0] + math.exp(x[1]) * mean_offset(a0)
    y = _hyper_lp(x, hyp, u) - rng.standard_exponential()
    width = 2.0
    left = a0 - width * rng.random()
    right = left + width
    for _ in range(40):
        _from_moments(left, mean, lsd, x)
        if _hyper_lp(x, hyp, u) < y:
            break
        left -= width
    for _ in range(40):
        _from_moments(right, mean, lsd, x)
        if _hyper_lp(x, hyp, u) < y:
            break
        right += width
    while True:
        a = left + (right - left) * rng.random()
        _from_moments(a, mean, lsd, x)
        if _hyper_lp(x, hyp, u) >= y:
            return
        if a < a0:
            left = a
        else:
            right = a


@numba.njit(cache=True)
def _update_hyper(f, hyp, pmu, pprec, palpha, rng):
    """Update the population given the fluxes; refreshes pmu, pprec and palpha.

    ``hyp``: the state array of the ``_H_*`` slots (m, ln s and alpha updated in place).
    Log-normal population (``hyp[_H_SKEW_SD]`` = 0, alpha fixed at 0): an exact conjugate
    draw of m, a slice step of ln s. Skew-normal (``hyp[_H_SKEW_SD]`` > 0): slice steps of m
    and ln s, then of alpha at the population's fixed mean and sd.
    """
    n = f.size
    u = np.empty(n)
    for k in range(n):
        u[k] = math.log(f[k])
    x = np.array([hyp[_H_LOC], hyp[_H_LN_SCALE], hyp[_H_SKEW]])
    # slice widths of ~2.5 posterior sd: the population's location and ln scale are known
    # to ~ s / sqrt(n) and ~ 1 / sqrt(2 n) (wider widths cost extra shrinkage evaluations
    # of the n-term log density, the bulk of this update's cost)
    rn = 1.0 / math.sqrt(max(n, 1))
    if hyp[_H_SKEW_SD] > 0.0:
        _slice_hyper(x, 0, 2.5 * rn * math.exp(x[1]), hyp, u, rng)
    else:
        # m given s is conjugate (Normal prior, Normal log fluxes): an exact draw
        prec = 1.0 / hyp[_H_LOC_SD] ** 2 + n * math.exp(-2.0 * x[1])
        mean = (hyp[_H_LOC_MEAN] / hyp[_H_LOC_SD] ** 2 + u.sum() * math.exp(-2.0 * x[1])) / prec
        x[0] = mean + rng.standard_normal() / math.sqrt(prec)
    _slice_hyper(x, 1, 1.8 * rn, hyp, u, rng)
    if hyp[_H_SKEW_SD] > 0.0:
        # alpha moves at the population's fixed mean and sd only: given the fluxes these
        # draws are near independent (a coordinate step of alpha at fixed location, tried
        # before, added a third of the cost without raising the ESS)
        _slice_shape_at_moments(x, hyp, u, rng)
    hyp[_H_LOC], hyp[_H_LN_SCALE], hyp[_H_SKEW] = x[0], x[1], x[2]
    prec = math.exp(-2.0 * hyp[_H_LN_SCALE])
    for k in range(n):
        pmu[k] = hyp[_H_LOC]
        pprec[k] = prec
        palpha[k] = hyp[_H_SKEW]


@numba.njit(cache=True)
def _shift_population(f, lo, hi, shift, hyp, pmu, w, r, indptr, indices, vals, rng):
    """Move the population's location m and the log fluxes of the faint sources together.

    Along (m + t, u_k + t for the sources k with ``shift[k]`` = 1) the faint sources'
    population terms do not change (their z = (u - m) / s is fixed): the log density is the
    hyperprior and the other sources' population terms (:func:`_hyper_lp` of their log
    fluxes) plus the likelihood, quadratic in e^t - 1 through the faint sources' model map.
    A slice step in t (a translation: unit Jacobian in log flux) is exact. Faint fluxes are
    pinned by the population more than by the map, so given the fluxes m hardly moves, and
    given m they hardly do: this interweaving move shifts both at once (an
    ancillarity-sufficiency move in the spirit of Yu & Meng 2011).
    """
    npix = r.size
    v = np.zeros(npix)
    tlo, thi = -np.inf, np.inf
    nrest = 0
    for k in range(f.size):
        if shift[k]:
            for i in range(indptr[k], indptr[k + 1]):
                v[indices[i]] += vals[i] * f[k]
            tlo = max(tlo, math.log(lo[k] / f[k]))
            thi = min(thi, math.log(hi[k] / f[k]))
        else:
            nrest += 1
    if not thi > tlo:
        return
    u = np.empty(nrest)
    j = 0
    for k in range(f.size):
        if not shift[k]:
            u[j] = math.log(f[k])
            j += 1
    g = 0.0
    q = 0.0
    for i in range(npix):
        wv = w[i] * v[i]
        g += wv * r[i]
        q += wv * v[i]
    x = np.array([hyp[_H_LOC], hyp[_H_LN_SCALE], hyp[_H_SKEW]])
    m0 = x[0]

    def lp(t):
        x[0] = m0 + t
        lam = math.expm1(t)
        return _hyper_lp(x, hyp, u) + g * lam - 0.5 * q * lam * lam

    width = 2.5 * math.exp(x[1]) / math.sqrt(max(f.size, 1))
    y = lp(0.0) - rng.standard_exponential()
    left = -width * rng.random()
    right = left + width
    left, right = max(tlo, left), min(thi, right)
    # stepping out without a cap on the steps (Neal 2003, m = infinity): capped at a fixed
    # count on each side, the interval would no longer be reversible when the cap binds; the
    # loops end at the faint fluxes' bounds (finite: lo > 0 in log space) if not before
    while left > tlo and lp(left) >= y:
        left = max(tlo, left - width)
    while right < thi and lp(right) >= y:
        right = min(thi, right + width)
    while True:
        t = left + (right - left) * rng.random()
        if lp(t) >= y:
            break
        if t < 0.0:
            left = t
        else:
            right = t
    lam = math.expm1(t)
    for i in range(npix):
        r[i] -= lam * v[i]
    scale = math.exp(t)
    for k in range(f.size):
        if shift[k]:
            f[k] = min(max(f[k] * scale, lo[k]), hi[k])
    hyp[_H_LOC] = m0 + t
    for k in range(f.size):
        pmu[k] = hyp[_H_LOC]


@numba.njit(cache=True)
def _residual(indptr, indices, vals, d, f, b):
    r = d - b
    for j in range(f.size):
        for k in range(indptr[j], indptr[j + 1]):
            r[indices[k]] -= vals[k] * f[j]
    return r


@numba.njit(cache=True)
def _pair_columns(indptr, indices, vals, pi, pj, ui, uj):
    """For each pair, the column of A along its direction, u_i a_i + u_j a_j, as (ptr, pix, val)."""
    n = pi.size
    ptr = np.zeros(n + 1, dtype=np.int64)
    for p in range(n):
        i, j = pi[p], pj[p]
        a, b = indptr[i], indptr[j]
        cnt = 0
        while a < indptr[i + 1] or b < indptr[j + 1]:
            if b >= indptr[j + 1] or (a < indptr[i + 1] and indices[a] < indices[b]):
                a += 1
            elif a >= indptr[i + 1] or indices[b] < indices[a]:
                b += 1
            else:
                a += 1
                b += 1
            cnt += 1
        ptr[p + 1] = ptr[p] + cnt
    pix = np.empty(ptr[n], dtype=np.int64)
    val = np.empty(ptr[n])
    for p in range(n):
        i, j = pi[p], pj[p]
        a, b = indptr[i], indptr[j]
        k = ptr[p]
        while a < indptr[i + 1] or b < indptr[j + 1]:
            if b >= indptr[j + 1] or (a < indptr[i + 1] and indices[a] < indices[b]):
                pix[k] = indices[a]
                val[k] = ui[p] * vals[a]
                a += 1
            elif a >= indptr[i + 1] or indices[b] < indices[a]:
                pix[k] = indices[b]
                val[k] = uj[p] * vals[b]
                b += 1
            else:
                pix[k] = indices[a]
                val[k] = ui[p] * vals[a] + uj[p] * vals[b]
                a += 1
                b += 1
            k += 1
    return ptr, pix, val


@numba.njit(cache=True)
def _prior_lp(x, kind, mu, prec, alpha):
    """Log prior density of a flux x (mJy): Gaussian in f (kinds 0, 1) or in ln f (>= 2,
    skew-normal of shape ``alpha``)."""
    if kind >= 2:
        u = math.log(x)
        return -u + _skew_lp(u, mu, prec, alpha)  # -u: density in f of a density in ln f
    return -0.5 * prec * (x - mu) ** 2


@numba.njit(cache=True)
def _prior_d(x, kind, mu, prec, alpha):
    """(l', l'') of the log prior density ``l`` of :func:`_prior_lp` at the flux x > 0."""
    if kind < 2:
        return -prec * (x - mu), -prec
    isd = math.sqrt(prec)
    z = (math.log(x) - mu) * isd
    d1, d2 = -z, -1.0
    if alpha != 0.0:
        # lam = phi / Phi at alpha z (through log_ndtr: Phi underflows far in the tail)
        xa = alpha * z
        lam = math.exp(-0.5 * xa * xa - _log_ndtr(xa) - _LN_SQRT_2PI)
        d1 += alpha * lam
        d2 -= alpha * alpha * lam * (xa + lam)
    d1 *= isd  # dL/du, d2L/du2 of the log density L in u = ln f
    d2 *= isd * isd
    return (d1 - 1.0) / x, (d2 - d1 + 1.0) / (x * x)  # of L(ln f) - ln f, in f


@numba.njit(cache=True)
def _tilted_step(g, q, tref, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj, tlo, thi, rng):
    """Metropolis-Hastings step along f + t d from t = 0 with an independence proposal.

    The log density along the line is ``g t - q t^2 / 2`` plus the log priors of the two
    fluxes (``dj`` = 0: one source). The proposal is that Gaussian times the priors' second
    order expansion about ``tref`` (the Gaussian's mean, a point of the line that does not
    depend on where on it the chain is), truncated to [tlo, thi] and drawn exactly; the
    Gaussian cancels in the acceptance ratio, which compares the priors with their
    expansion. Where the data pin the fluxes down (the case it is used for) the expansion
    is close and nearly every proposal is accepted, so the draws are close to independent.
    Returns t (0: rejected) or nan when the expansion is not a usable proposal (the caller
    then takes a slice step).
    """
    xi, xj = fi + tref * di, fj + tref * dj
    if xi <= 0.0 or (dj != 0.0 and xj <= 0.0):
        return math.nan
    a1, a2 = _prior_d(xi, ki, mi, pi_, ai)
    t1, t2 = di * a1, di * di * a2
    if dj != 0.0:
        b1, b2 = _prior_d(xj, kj, mj, pj_, aj)
        t1 += dj * b1
        t2 += dj * dj * b2
    prec = q - t2
    if not prec > 0.25 * q:
        return math.nan
    mean = (q * tref + t1 - t2 * tref) / prec
    t = _tn(mean, 1.0 / math.sqrt(prec), tlo, thi, rng)
    new = _line_prior_rest(t, tref, t1, t2, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj)
    old = _line_prior_rest(0.0, tref, t1, t2, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj)
    if math.log(rng.random()) < new - old:
        return t
    return 0.0


@numba.njit(cache=True)
def _line_prior_rest(t, tref, t1, t2, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj):
    """The log priors along the line at t minus their expansion about tref."""
    v = _prior_lp(fi + t * di, ki, mi, pi_, ai) - t1 * (t - tref) - 0.5 * t2 * (t - tref) ** 2
    if dj != 0.0:
        v += _prior_lp(fj + t * dj, kj, mj, pj_, aj)
    return v


@numba.njit(cache=True)
def _pair_lp(t, g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj):
    return (
        g * t
        - 0.5 * q * t * t
        + _prior_lp(fi + t * di, ki, mi, pi_, ai)
        + _prior_lp(fj + t * dj, kj, mj, pj_, aj)
    )


@numba.njit(cache=True)
def _pair_slice(g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj, tlo, thi, rng):
    """Slice step (from t = 0) along a pair direction when a log-space prior is involved."""
    width = thi - tlo
    if q > 0.0:
        width = min(width, 2.0 / math.sqrt(q))
    y = (
        _pair_lp(0.0, g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj)
        - rng.standard_exponential()
    )
    left = max(tlo, -width * rng.random())
    right = min(thi, left + width)
    for _ in range(50):
        if (
            left <= tlo
            or _pair_lp(left, g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj) < y
        ):
            break
        left = max(tlo, left - width)
    for _ in range(50):
        if (
            right >= thi
            or _pair_lp(right, g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj) < y
        ):
            break
        right = min(thi, right + width)
    while True:
        t = left + (right - left) * rng.random()
        if _pair_lp(t, g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj) >= y:
            return t
        if t < 0.0:
            left = t
        else:
            right = t


@numba.njit(cache=True)
def _line_step(g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj, tlo, thi, rng):
    """One exact step from t = 0 along f + t d (``dj`` = 0: one source) with log-space priors.

    Where the data measure the fluxes at the likelihood's mean on the line, ``tref = g / q``,
    to better than 1 / _MH_SNR of themselves, the near-independent Metropolis-Hastings draw
    of :func:`_tilted_step`; elsewhere a slice step (:func:`_pair_slice`). The choice
    depends on the line only, not on where on it the chain is, so either step is exact.
    """
    if q > 0.0:
        tref = g / q
        sd = 1.0 / math.sqrt(q)
        if fi + tref * di > _MH_SNR * abs(di) * sd and (
            dj == 0.0 or fj + tref * dj > _MH_SNR * abs(dj) * sd
        ):
            t = _tilted_step(
                g, q, tref, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj, tlo, thi, rng
            )
            if not math.isnan(t):
                return t
    return _pair_slice(g, q, fi, fj, di, dj, ki, kj, mi, mj, pi_, pj_, ai, aj, tlo, thi, rng)


@numba.njit(cache=True)
def _one_step(g, q, f, kind, mu, prec, alpha, tlo, thi, rng):
    """:func:`_line_step` of one source's flux, f + t."""
    return _line_step(
        g, q, f, 1.0, 1.0, 0.0, kind, 0, mu, 0.0, prec, 0.0, alpha, 0.0, tlo, thi, rng
    )


@numba.njit(cache=True)
def _weighted_dot(start, stop, pix, val, w, r):
    """(v^T W r, v^T W v) of the sparse vector v = val[start:stop] on pixels pix[start:stop]:
    the log density's slope and curvature along v."""
    g = 0.0
    q = 0.0
    for k in range(start, stop):
        wv = w[pix[k]] * val[k]
        g += wv * r[pix[k]]
        q += wv * val[k]
    return g, q


@numba.njit(cache=True)
def _pair_moves(
    cwv, cq, r, f, kind, lo, hi, pmu, pprec, palpha, pi, pj, ui, uj, cptr, cpix, cval,
    skip, rng,
):  # fmt: skip
    """Exact Gibbs steps along fixed directions u_i e_i + u_j e_j of strongly coupled pairs.

    Along a fixed direction the conditional is again a truncated normal, so each move leaves
    the posterior invariant; the directions (long axes of the pairs' conditional Gaussians)
    are where coordinate-wise Gibbs moves crawl. ``cval`` holds A u on the pair's pixels,
    ``cwv`` the same times the pixels' weights and ``cq`` each pair's u^T A^T W A u (both kept
    by the caller while the weights hold: the slope is then one gather a pixel).
    With a log-space prior on either source the conditional along the direction is not
    Gaussian and the move is :func:`_line_step` instead (a Metropolis-Hastings or slice
    step, also exact). Pair moves with ``skip`` set are left out: on the sweeps of
    overrelaxed flux steps, the first visits, so that only the pairs coupled above
    _PAIR_RHO_TWICE move (ordinary draws of every pair would undo the overrelaxed steps'
    antithetic effect, while the most strongly coupled pairs crawl without their move)."""
    for p in range(pi.size):
        if skip[p]:
            continue
        i, j = pi[p], pj[p]
        di, dj = ui[p], uj[p]
        g = 0.0
        for k in range(cptr[p], cptr[p + 1]):
            g += cwv[k] * r[cpix[k]]
        q = cq[p]
        tlo, thi = -np.inf, np.inf
        if di != 0.0:
            a, b = (lo[i] - f[i]) / di, (hi[i] - f[i]) / di
            tlo, thi = max(tlo, min(a, b)), min(thi, max(a, b))
        if dj != 0.0:
            a, b = (lo[j] - f[j]) / dj, (hi[j] - f[j]) / dj
            tlo, thi = max(tlo, min(a, b)), min(thi, max(a, b))
        if not thi > tlo:
            continue
        if kind[i] >= 2 or kind[j] >= 2:
            t = _line_step(
                g,
                q,
                f[i],
                f[j],
                di,
                dj,
                kind[i],
                kind[j],
                pmu[i],
                pmu[j],
                pprec[i],
                pprec[j],
                palpha[i],
                palpha[j],
                tlo,
                thi,
                rng,
            )
        else:
            prec = q + di * di * pprec[i] + dj * dj * pprec[j]
            if prec <= 0.0:
                continue
            lin = g - pprec[i] * di * (f[i] - pmu[i]) - pprec[j] * dj * (f[j] - pmu[j])
            t = _tn(lin / prec, 1.0 / math.sqrt(prec), tlo, thi, rng)
        for k in range(cptr[p], cptr[p + 1]):
            r[cpix[k]] -= t * cval[k]
        # clipping only absorbs rounding at a bound; the periodic full residual refresh
        # removes the resulting ~1e-16 mismatch
        f[i] = min(max(f[i] + t * di, lo[i]), hi[i])
        f[j] = min(max(f[j] + t * dj, lo[j]), hi[j])


@numba.njit(cache=True)
def _first_visits(pi, pj):
    """True for each pair move that is the first of its pair in the list."""
    first = np.ones(pi.size, dtype=np.bool_)
    for p in range(pi.size):
        for k in range(p):
            if pi[k] == pi[p] and pj[k] == pj[p]:
                first[p] = False
                break
    return first


@numba.njit(cache=True)
def _gibbs_chain(
    indptr,
    indices,
    vals,
    d,
    s2,
    kind,
    lo,
    hi,
    pmu,
    pprec,
    palpha,
    bmu,
    bprec,
    conf_kind,
    conf_scale,
    conf_every,
    over_every,
    pi,
    pj,
    ui,
    uj,
    cptr,
    cpix,
    cval,
    hyp,
    shift,
    f,
    b,
    c,
    n_warmup,
    n_samples,
    thin,
    rng,
    out_f,
    out_b,
    out_c,
    out_h,
):
    nsrc = f.size
    npix = d.size
    r = _residual(indptr, indices, vals, d, f, b)
    w = 1.0 / (s2 + c * c)
    q = np.empty(nsrc)
    # the weights times the beams' values (sources' and pairs' columns) and the pairs'
    # curvatures, kept while the weights hold: a slope is then one gather a pixel
    wv = np.empty(vals.size)
    cwv = np.empty(cval.size)
    cq = np.empty(pi.size)
    refresh_q = True
    first = _first_visits(pi, pj)
    no_skip = np.zeros(pi.size, dtype=np.bool_)
    total = n_warmup + n_samples * thin
    k_out = 0
    for it in range(total):
        if it % 200 == 199:  # wash out round-off accumulated by the incremental updates
            r = _residual(indptr, indices, vals, d, f, b)
        if refresh_q:
            for j in range(nsrc):
                acc = 0.0
                for k in range(indptr[j], indptr[j + 1]):
                    wv[k] = w[indices[k]] * vals[k]
                    acc += wv[k] * vals[k]
                q[j] = acc
            for p in range(pi.size):
                acc = 0.0
                for k in range(cptr[p], cptr[p + 1]):
                    cwv[k] = w[cpix[k]] * cval[k]
                    acc += cwv[k] * cval[k]
                cq[p] = acc
            refresh_q = False
        # overrelaxed flux steps (log-space priors) on all sweeps but one in over_every
        over = over_every > 1 and it % over_every != over_every - 1
        for j in range(nsrc):
            g = 0.0
            for k in range(indptr[j], indptr[j + 1]):
                g += wv[k] * r[indices[k]]
            qj = q[j]
            fj = f[j]
            if kind[j] >= 2:  # pmu, pprec hold the log-normal's ln-median and 1/sd^2
                if over:
                    fn = _overrelaxed_logflux(
                        fj, fj + g / qj, qj, lo[j], hi[j], pmu[j], pprec[j], palpha[j], rng
                    )
                elif (fj + g / qj) * math.sqrt(qj) > _MH_SNR:
                    # well measured: the near-independent Metropolis-Hastings draw (the rule
                    # depends on the conditional's mean, not on f_j: either step is exact)
                    t = _one_step(
                        g, qj, fj, kind[j], pmu[j], pprec[j], palpha[j], lo[j] - fj, hi[j] - fj, rng
                    )
                    fn = min(max(fj + t, lo[j]), hi[j])
                else:
                    fn = _slice_logflux(
                        fj, fj + g / qj, qj, lo[j], hi[j], pmu[j], pprec[j], palpha[j], rng
                    )
            else:
                prec = qj + pprec[j]
                mean = (qj * fj + g + pprec[j] * pmu[j]) / prec
                fn = _tn(mean, 1.0 / math.sqrt(prec), lo[j], hi[j], rng)
            delta = fn - fj
            if delta != 0.0:
                for k in range(indptr[j], indptr[j + 1]):
                    r[indices[k]] -= vals[k] * delta
                f[j] = fn
        skip = first if over else no_skip  # overrelaxed sweeps: strong pairs only
        # fmt: off
        _pair_moves(  # an empty pair list moves nothing
            cwv, cq, r, f, kind, lo, hi, pmu, pprec, palpha, pi, pj, ui, uj, cptr, cpix, cval,
            skip, rng,
        )
        # fmt: on
        # hierarchical prior: the population's (m, ln s, alpha) given the fluxes, once every
        # hyp[_H_EVERY] sweeps (its n-term log density dominates a sweep's cost with the
        # skew-normal)
        if hyp.size and it % int(hyp[_H_EVERY]) == 0:
            _update_hyper(f, hyp, pmu, pprec, palpha, rng)
            if shift.size:
                _shift_population(f, lo, hi, shift, hyp, pmu, w, r, indptr, indices, vals, rng)
        sw = 0.0
        swr = 0.0
        for i in range(npix):
            sw += w[i]
            swr += w[i] * r[i]
        prec = sw + bprec
        mean = (b * sw + swr + bprec * bmu) / prec
        bn = mean + rng.standard_normal() / math.sqrt(prec)
        db = bn - b
        for i in range(npix):
            r[i] -= db
        b = bn
        if conf_kind != 0 and it % conf_every == 0:
            c = math.exp(_slice_conf(math.log(c), r, s2, conf_kind, conf_scale, rng))
            for i in range(npix):
                w[i] = 1.0 / (s2[i] + c * c)
            refresh_q = True
        if it >= n_warmup and (it - n_warmup) % thin == 0:
            out_f[k_out, :] = f
            out_b[k_out] = b
            out_c[k_out] = c
            if hyp.size:
                out_h[k_out, 0] = hyp[_H_LOC]
                out_h[k_out, 1] = hyp[_H_LN_SCALE]
                out_h[k_out, 2] = hyp[_H_SKEW]
            k_out += 1
    return b


@numba.njit(cache=True)
def _field_moves(
    r,
    w,
    z,
    f,
    kind,
    lo,
    hi,
    pmu,
    pprec,
    palpha,
    eptr,
    epix,
    evals,
    kptr,
    kidx,
    kval,
    amp,
    rng,
    steps,
):
    """Exact Gibbs steps of (f_j, z) along f_j + t, z - t v_j / amp, one source at a time.

    ``v_j`` (``kidx``/``kval``: box pixels and values) is a white-field pattern whose field
    reproduces the source's beam, so along this line the model map hardly changes (only by
    ``t e_j``, ``e_j = a_j - B v_j / ||b||`` on the pixels, in ``eptr/epix/evals``): flux moves
    between the source and the confusion field, which single-block updates of either do
    only slowly. Along the line the log density is quadratic in t plus the flux prior, so
    the step is a truncated normal (flat, Gaussian priors) or :func:`_line_step`
    (log-space priors), exact whatever ``v_j``. ``r`` (d - A f - B - g) and ``z`` are
    updated in place, each source's step t goes to ``steps`` (0 where it did not move).
    """
    for j in range(f.size):
        steps[j] = 0.0
        if kptr[j + 1] == kptr[j]:
            continue
        g, q = _weighted_dot(eptr[j], eptr[j + 1], epix, evals, w, r)
        for k in range(kptr[j], kptr[j + 1]):
            u = kval[k] / amp
            g += z[kidx[k]] * u
            q += u * u
        tlo, thi = lo[j] - f[j], hi[j] - f[j]
        if not thi > tlo:
            continue
        if kind[j] >= 2:
            t = _one_step(g, q, f[j], kind[j], pmu[j], pprec[j], palpha[j], tlo, thi, rng)
        else:
            prec = q + pprec[j]
            lin = g - pprec[j] * (f[j] - pmu[j])
            t = _tn(lin / prec, 1.0 / math.sqrt(prec), tlo, thi, rng)
        if t == 0.0:
            continue
        for k in range(eptr[j], eptr[j + 1]):
            r[epix[k]] -= t * evals[k]
        for k in range(kptr[j], kptr[j + 1]):
            z[kidx[k]] -= t * kval[k] / amp
        f[j] = min(max(f[j] + t, lo[j]), hi[j])
        steps[j] = t


@numba.njit(cache=True)
def _moved_field(bz, steps, amp, gptr, gidx, gval):
    """``B z / ||b||`` on the box after :func:`_field_moves`: minus t_j / amp times each
    moved source's pattern ``B v_j / ||b||`` (``gptr/gidx/gval``), in place."""
    for j in range(steps.size):
        t = steps[j]
        if t == 0.0:
            continue
        for k in range(gptr[j], gptr[j + 1]):
            bz[gidx[k]] -= t * gval[k] / amp


def _field_directions(model: BandModel, field, amp: float | None = None):
    """Per source: the white-field pattern h_j (the field's direction kernel of
    :meth:`~skysense.xid.confusion.ConfusionField.direction_kernel` for the amplitude
    ``amp``, placed bilinearly about the beam's centroid), its field ``B h_j / ||b||`` on the
    box and the beam mismatch e_j = a_j - field(h_j) on the pixels (all sparse; no FFT per
    source). ``amp`` None: the delta pattern of the deconvolution limit."""
    a = sp.csc_matrix(model.amat)
    a.sort_indices()
    px, py = model.pixel_x.astype(float), model.pixel_y.astype(float)
    x0, y0 = int(model.pixel_x.min()), int(model.pixel_y.min())
    ly, lx = field.shape
    kern, gker = field.direction_kernel(amp)
    # box pixel -> fitted pixel (data-vector order), -1 off the fitted pixels
    where = np.full(field.n, -1, dtype=np.int64)
    where[field.idx] = np.arange(field.idx.size)
    out = {"k": ([0], [], []), "g": ([0], [], []), "e": ([0], [], [])}

    def place(ker, ix, iy, fx, fy):
        """The kernel placed bilinearly at cell (ix + fx, iy + fy): (flat box pixels, values),
        wrapped on the periodic box, repeated pixels summed."""
        hy, hx = ker.shape[0] // 2, ker.shape[1] // 2
        loc = np.zeros((ker.shape[0] + 1, ker.shape[1] + 1))
        for dx, dy, wt in (
            (0, 0, (1 - fx) * (1 - fy)),
            (1, 0, fx * (1 - fy)),
            (0, 1, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            if wt > 0:
                loc[dy : dy + ker.shape[0], dx : dx + ker.shape[1]] += wt * ker
        yy = (np.arange(iy - hy, iy - hy + loc.shape[0]) % ly)[:, None]
        xx = (np.arange(ix - hx, ix - hx + loc.shape[1]) % lx)[None, :]
        keys = (yy * lx + xx).ravel()
        vals = loc.ravel()
        nz = vals != 0.0
        keys, inv = np.unique(keys[nz], return_inverse=True)
        return keys, np.bincount(inv, weights=vals[nz], minlength=keys.size)

    def add(name, keys, vals):
        ptr, idx, val = out[name]
        idx.extend(keys.tolist())
        val.extend(vals.tolist())
        ptr.append(len(idx))

    for j in range(model.nsrc):
        lo, hi = a.indptr[j], a.indptr[j + 1]
        rows, vals = a.indices[lo:hi], a.data[lo:hi]
        s = vals.sum()
        cx, cy = float(vals @ px[rows]) / s - x0, float(vals @ py[rows]) / s - y0
        ix, iy = math.floor(cx), math.floor(cy)
        fx, fy = cx - ix, cy - iy
        add("k", *place(kern, ix, iy, fx, fy))
        gk, gv = place(gker, ix, iy, fx, fy)
        add("g", gk, gv)
        on = where[gk]
        epix, inv = np.unique(np.concatenate([rows, on[on >= 0]]), return_inverse=True)
        e = np.bincount(inv, weights=np.concatenate([vals, -gv[on >= 0]]), minlength=epix.size)
        keep = np.abs(e) > 1e-12
        add("e", epix[keep], e[keep])
    as_i = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return tuple((as_i(out[n][0]), as_i(out[n][1]), np.asarray(out[n][2], float)) for n in "ekg")


@dataclasses.dataclass
class BandPosterior:
    """Posterior draws of one band.

    Attributes
    ----------
    band : str
    flux : ndarray (n_chains, n_draws, nsrc), mJy
    bkg : ndarray (n_chains, n_draws), mJy/beam
    sigma_conf : ndarray (n_chains, n_draws), mJy/beam
    warmup_s, sampling_s : float
        Wall time of the warm-up and of the kept draws (all chains), seconds.
    compile_s : float
        One-off numba compilation time included in no other figure.
    sampling_cpu_s : float
        CPU time of this process during the kept draws (all threads), seconds.
    pop_median_mjy, pop_sigma_dex : ndarray (n_chains, n_draws) or None
        Hierarchical flux prior only: draws of the population's geometric-mean flux
        (10^mean(log10 f), mJy: its median when log-normal) and scatter (sd of log10 f, dex),
        the moments of the learned skew-normal in log flux.
    pop_skew : ndarray (n_chains, n_draws) or None
        Hierarchical flux prior only: draws of the skew-normal's shape alpha (0: log-normal).
    conf_field : ndarray (npix,) or None
        Correlated confusion term only (``sigma_conf`` then holds its amplitude): posterior
        mean of the confusion field on the fitted pixels, mJy/beam.
    conf_shift : ndarray (nsrc,) or None
        Correlated confusion term only: the flux (mJy) that the posterior-mean confusion
        field would add to each source if it were fitted by the sources instead
        (generalised least squares, ``(A^T W A)^-1 A^T W g``), i.e. how much the correlated
        term changed the source's flux to first order.
    """

    band: str
    flux: np.ndarray
    bkg: np.ndarray
    sigma_conf: np.ndarray
    warmup_s: float = 0.0
    sampling_s: float = 0.0
    compile_s: float = 0.0
    sampling_cpu_s: float = 0.0
    pop_median_mjy: np.ndarray | None = None
    pop_sigma_dex: np.ndarray | None = None
    pop_skew: np.ndarray | None = None
    conf_field: np.ndarray | None = None
    conf_shift: np.ndarray | None = None


_COMPILED = False


def _ensure_compiled() -> float:
    """Compile the kernels on a 1-pixel problem; returns the seconds spent (0 when done)."""
    global _COMPILED  # numba's own cache; this flag only avoids re-timing
    if _COMPILED:
        return 0.0
    t0 = time.perf_counter()
    a = sp.csc_matrix(np.ones((2, 1)))
    for kind, conf in ((0, 1), (3, 2), (4, 1)):
        _gibbs_chain(
            a.indptr.astype(np.int64),
            a.indices.astype(np.int64),
            a.data,
            np.ones(2),
            np.ones(2),
            np.array([kind], dtype=np.int64),
            np.array([0.5]),
            np.array([2.0]),
            np.zeros(1),
            np.zeros(1),
            np.zeros(1),
            0.0,
            1.0,
            conf,
            1.0,
            1,
            3,
            *_no_pairs(),
            np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]) if kind == 4 else np.empty(0),
            np.full(1 if kind == 4 else 0, 1, dtype=np.int64),
            np.ones(1),
            0.0,
            1.0,
            1,
            1,
            1,
            np.random.default_rng(0),
            np.empty((1, 1)),
            np.empty(1),
            np.empty(1),
            np.empty((1, 3)),
        )
    _COMPILED = True
    return time.perf_counter() - t0


def _no_pairs():
    e_i = np.empty(0, dtype=np.int64)
    e_f = np.empty(0)
    return e_i, e_i, e_f, e_f, np.zeros(1, dtype=np.int64), e_i, e_f


def coupled_pairs(amat_csc: sp.csc_matrix, weight: np.ndarray, rho_min: float = 0.3):
    """Pairs of sources whose fluxes are strongly coupled, and the long axis of each pair.

    Parameters
    ----------
    amat_csc : sparse (npix, nsrc), sorted indices
    weight : ndarray (npix,), 1 / sigma^2 used to measure the coupling
    rho_min : float
        Pairs with |partial correlation| above this get a joint move.

    Returns
    -------
    tuple of arrays (pi, pj, ui, uj, cptr, cpix, cval) for the numba kernel
    """
    q = (amat_csc.T @ sp.diags(weight) @ amat_csc).tocoo()
    diag = np.zeros(amat_csc.shape[1])
    on = q.row == q.col
    diag[q.row[on]] = q.data[on]
    up = q.row < q.col
    pi, pj, qij = q.row[up], q.col[up], q.data[up]
    rho = np.abs(qij) / np.sqrt(diag[pi] * diag[pj])
    sel = rho > rho_min
    if not sel.any():
        return _no_pairs()
    pi, pj, qij = pi[sel].astype(np.int64), pj[sel].astype(np.int64), qij[sel]
    blocks = np.empty((pi.size, 2, 2))
    blocks[:, 0, 0], blocks[:, 1, 1] = diag[pi], diag[pj]
    blocks[:, 0, 1] = blocks[:, 1, 0] = qij
    _, vec = np.linalg.eigh(blocks)
    ui, uj = vec[:, 0, 0].copy(), vec[:, 1, 0].copy()  # eigenvector of the smallest eigenvalue
    cptr, cpix, cval = _pair_columns(
        amat_csc.indptr.astype(np.int64),
        amat_csc.indices.astype(np.int64),
        amat_csc.data,
        pi,
        pj,
        ui,
        uj,
    )
    return pi, pj, ui, uj, cptr, cpix, cval


def _pairs_with_repeats(amat_csc, weight, rho_min):
    """:func:`coupled_pairs` above ``rho_min``, then those above _PAIR_RHO_TWICE once more
    (the kernel moves the pairs in this order: the most strongly coupled twice a sweep)."""
    one = coupled_pairs(amat_csc, weight, rho_min)
    if one[0].size == 0 or _PAIR_RHO_TWICE >= 1.0:
        return one
    two = coupled_pairs(amat_csc, weight, max(rho_min, _PAIR_RHO_TWICE))
    if two[0].size == 0:
        return one
    pi, pj, ui, uj, cptr, cpix, cval = one
    pi2, pj2, ui2, uj2, cptr2, cpix2, cval2 = two
    return (
        np.concatenate([pi, pi2]),
        np.concatenate([pj, pj2]),
        np.concatenate([ui, ui2]),
        np.concatenate([uj, uj2]),
        np.concatenate([cptr, cptr[-1] + cptr2[1:]]),
        np.concatenate([cpix, cpix2]),
        np.concatenate([cval, cval2]),
    )


def _faint_sources(csc: sp.csc_matrix, d: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """1 for the sources the map measures at below _FAINT_SNR sigma one by one (their flux
    from the data alone, each source on its own, about the map's median), else 0: the set
    :func:`_shift_population` moves with the population's location. Fixed before sampling,
    so the move is the same whatever the state."""
    w = 1.0 / sigma**2
    q = np.asarray(csc.power(2).T @ w).ravel()
    bhat = np.asarray(csc.T @ (w * (d - np.median(d)))).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = bhat / np.sqrt(q)
    return (np.nan_to_num(snr, nan=0.0) < _FAINT_SNR).astype(np.int64)


def _initial_state(model: BandModel, rng: np.random.Generator):
    p = model.flux_prior
    lo, hi = np.asarray(p.lower, float), np.asarray(p.upper, float)
    if p.kind in ("loguniform", "hierarchical"):
        f = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    elif p.kind == "lognormal":
        z = rng.standard_normal(lo.size) * np.asarray(p.sigma, float) * math.log(10.0)
        f = np.clip(np.asarray(p.mu, float) * np.exp(z), lo, hi)
    elif p.kind == "gaussian":
        f = np.clip(np.asarray(p.mu) + np.asarray(p.sigma) * rng.standard_normal(lo.size), lo, hi)
    else:
        f = rng.uniform(lo, hi)
    b = model.bkg_prior.mu + 0.1 * model.bkg_prior.sigma * rng.standard_normal()
    c = model.conf_prior.fixed
    if model.conf_prior.kind != "none":
        c = float(np.median(model.sigma_mjy)) * rng.uniform(0.2, 1.0)
    return f, b, c


def _hyper_state(
    loc, ln_scale, loc_mean, loc_sd, scale_sd, skew, skew_sd, skew_mean, every, tied_ln_sd, tied_sd
) -> np.ndarray:
    """The state array ``hyp`` of the hierarchical prior, slot by slot (see ``_H_*``)."""
    hyp = np.empty(_H_SIZE)
    hyp[_H_LOC], hyp[_H_LN_SCALE], hyp[_H_SKEW] = loc, ln_scale, skew
    hyp[_H_LOC_MEAN], hyp[_H_LOC_SD], hyp[_H_SCALE_SD] = loc_mean, loc_sd, scale_sd
    hyp[_H_SKEW_SD], hyp[_H_SKEW_MEAN], hyp[_H_EVERY] = skew_sd, skew_mean, every
    hyp[_H_TIED_LN_SD], hyp[_H_TIED_SD] = tied_ln_sd, tied_sd
    return hyp


def sample_band(
    model: BandModel,
    *,
    n_samples: int = 1000,
    n_warmup: int = 500,
    n_chains: int = 4,
    thin: int = 1,
    pair_rho: float | None = 0.3,
    conf_every: int = 4,
    hyper_every: int = 1,
    overrelax: int = 0,
    random_state=None,
) -> BandPosterior:
    """Sample the XID+ posterior of one band with the Gibbs sampler.

    Parameters
    ----------
    model : BandModel
    n_samples : int
        Kept draws per chain (after thinning).
    n_warmup : int
        Sweeps discarded at the start of each chain.
    n_chains : int
        Independent chains, started from over-dispersed points drawn from the priors.
    thin : int
        Keep one sweep in ``thin``.
    pair_rho : float or None
        Source pairs with a partial correlation above this also get joint moves along their
        long axis (exact Gibbs steps along a fixed direction); None: coordinate moves only.
    conf_every : int
        Update sigma_conf once every ``conf_every`` sweeps (each update costs several passes
        over the pixels; the fluxes depend on it only weakly). Any value keeps the posterior
        invariant.
    hyper_every : int
        Hierarchical flux prior: update the population's parameters once every
        ``hyper_every`` sweeps (each update evaluates the skew-normal density of every source
        some 15 times). Any value keeps the posterior invariant, but on the 600-source
        benchmark tile 4 lowered the fluxes' min ESS by a fifth for a fifth less CPU.
    overrelax : int
        Log-space flux priors (log-normal, log-uniform, hierarchical), white sigma_conf:
        all sweeps but one in ``overrelax`` take Neal's (2003) overrelaxed slice step of
        each flux (a reflection about the slice's midpoint, exact) and move only the most
        strongly coupled pairs; the other sweep is the ordinary one. 0 or 1: off (the
        default). On the 600-source benchmark tile (4 x 2000 draws), 3 raised the median
        flux ESS from 7400 to 19000 of 8000 draws (antithetic draws) and cut the CPU per
        sweep by a fifth, but not the minimum (3600-3900 against 4800: faint sources in
        pairs coupled at rho ~ 0.98, where reflections and ordinary pair draws fight).
    random_state : int, numpy Generator or None
        Seeds every chain (chains get independent spawned streams).

    Returns
    -------
    BandPosterior
    """
    if min(n_samples, n_chains, thin, conf_every, hyper_every) < 1 or min(n_warmup, overrelax) < 0:
        raise InputError(
            "n_samples, n_chains, thin, conf_every, hyper_every must be >= 1 and n_warmup, "
            "overrelax >= 0"
        )
    compile_s = _ensure_compiled()
    seed = np.random.default_rng(random_state).integers(2**63)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_chains)]
    csc = sp.csc_matrix(model.amat)
    csc.sort_indices()
    indptr = csc.indptr.astype(np.int64)
    indices = csc.indices.astype(np.int64)
    vals = csc.data.astype(float)
    p = model.flux_prior
    nsrc = model.nsrc
    kind = np.full(nsrc, p.kind_code(), dtype=np.int64)
    if p.kind == "gaussian":
        pmu, pprec = np.asarray(p.mu, float), 1.0 / np.asarray(p.sigma, float) ** 2
    elif p.kind == "lognormal":  # in u = ln f: Normal(ln mu, (sigma_dex ln 10)^2)
        pmu = np.log(np.asarray(p.mu, float))
        pprec = 1.0 / (np.asarray(p.sigma, float) * math.log(10.0)) ** 2
    else:  # uniform, loguniform; hierarchical: set per chain from its hyperparameters
        pmu, pprec = np.zeros(nsrc), np.zeros(nsrc)
    palpha = np.zeros(nsrc)  # skew of the log-space prior: 0 but for the learned population
    if p.kind == "lognormal" and p.skew is not None:  # a fixed skew-normal population (#18)
        palpha = np.asarray(p.skew, float).copy()
    hyper = p.kind == "hierarchical"
    faint = (  # moved with the population's location: hierarchical prior only
        _faint_sources(csc, model.data_mjy.astype(float), model.sigma_mjy.astype(float))
        if hyper
        else None
    )
    s2 = model.sigma_mjy.astype(float) ** 2
    cp = model.conf_prior
    pairs = _no_pairs() if pair_rho is None else _pairs_with_repeats(csc, 1.0 / s2, pair_rho)
    out_f = np.empty((n_chains, n_samples, nsrc))
    out_b = np.empty((n_chains, n_samples))
    out_c = np.empty((n_chains, n_samples))
    out_h = np.empty((n_chains, n_samples, 3))
    warm = samp = cpu = 0.0
    field = None
    if cp.correlated:
        from skysense.xid.confusion import ConfusionField

        field = ConfusionField(model.beam_stamp, model.pixel_x, model.pixel_y, model.sigma_mjy)
        dirs = _field_directions(model, field)  # shared by the chains
        g_mean = np.zeros(model.npix)
    for ch, rng in enumerate(rngs):
        f, b, c = _initial_state(model, rng)
        hyp, shift = np.empty(0), np.empty(0, dtype=np.int64)
        if hyper:
            shift = faint
            # start (m, ln s) at the spread of the over-dispersed initial fluxes, alpha at 0
            # (log-normal) or its hyperprior mean; the kernel updates pmu/pprec/palpha (this
            # chain's copies)
            lf = np.log(f)
            a0 = p.hyper_skew_mean if p.hyper_skew_sd > 0 else 0.0
            hyp = _hyper_state(
                loc=lf.mean(),
                ln_scale=math.log(max(lf.std(), 0.1)),
                loc_mean=p.hyper_log10_median * _LN10,
                loc_sd=p.hyper_median_sd_dex * _LN10,
                scale_sd=p.hyper_sigma_scale_dex * _LN10,
                skew=a0,
                skew_sd=p.hyper_skew_sd,
                skew_mean=p.hyper_skew_mean,
                every=hyper_every,
                # the width tied to another band's (ln sd in ln-flux units; sd 0: free)
                tied_ln_sd=0.0 if p.hyper_sd_dex is None else math.log(p.hyper_sd_dex * _LN10),
                tied_sd=0.0 if p.hyper_sd_dex is None else p.hyper_sd_tolerance,
            )
            pmu, pprec = (
                np.full(nsrc, hyp[_H_LOC]),
                np.full(nsrc, math.exp(-2.0 * hyp[_H_LN_SCALE])),
            )
            palpha = np.full(nsrc, a0)
        args = (indptr, indices, vals, model.data_mjy.astype(float), s2, kind)
        args += (np.asarray(p.lower, float), np.asarray(p.upper, float), pmu, pprec, palpha)
        if field is not None:
            t0 = time.perf_counter()
            c1 = time.process_time()
            gmean, c_warm = _correlated_chain(
                model,
                field,
                dirs,
                args,
                pairs + (hyp, shift),
                (f, b, c),
                (n_warmup, n_samples, thin, conf_every),
                rng,
                (out_f[ch], out_b[ch], out_c[ch], out_h[ch]),
            )
            g_mean += gmean / n_chains
            cpu += time.process_time() - c1
            warm += c_warm
            samp += time.perf_counter() - t0 - c_warm
            continue
        args += (model.bkg_prior.mu, 1.0 / model.bkg_prior.sigma**2, cp.kind_code(), cp.scale)
        args += (int(conf_every), int(overrelax)) + pairs + (hyp, shift)
        t0 = time.perf_counter()
        # warm-up and sampling as two calls so that their times are measured separately
        tmp_f, tmp_b, tmp_c = np.empty((1, nsrc)), np.empty(1), np.empty(1)
        _gibbs_chain(*args, f, b, c, n_warmup, 1, 1, rng, tmp_f, tmp_b, tmp_c, np.empty((1, 3)))
        t1 = time.perf_counter()
        f, b, c = tmp_f[0].copy(), float(tmp_b[0]), float(tmp_c[0])
        c1 = time.process_time()
        _gibbs_chain(
            *args, f, b, c, 0, n_samples, thin, rng, out_f[ch], out_b[ch], out_c[ch], out_h[ch]
        )
        cpu += time.process_time() - c1
        t2 = time.perf_counter()
        warm += t1 - t0
        samp += t2 - t1
    post = BandPosterior(model.band, out_f, out_b, out_c, warm, samp, compile_s, cpu)
    if hyper:
        mean, sd = skew_normal_moments(out_h[..., 0], np.exp(out_h[..., 1]), out_h[..., 2])
        post.pop_median_mjy = np.exp(mean)
        post.pop_sigma_dex = sd / _LN10
        post.pop_skew = out_h[..., 2].copy()
    if field is not None:
        post.conf_field = g_mean
        post.conf_shift = confusion_shift(model, g_mean)
    return post


def confusion_shift(model: BandModel, field_mjy: np.ndarray) -> np.ndarray:
    """Flux (mJy, (nsrc,)) the sources would take up from a field (npix,) fitted by them.

    Generalised least squares with the instrumental weights, ``(A^T W A)^-1 A^T W g``; a
    tiny ridge (1e-9 of the diagonal) keeps sources with identical beams solvable (they
    share the shift).
    """
    from scipy.sparse.linalg import spsolve

    w = 1.0 / model.sigma_mjy.astype(float) ** 2
    a = sp.csc_matrix(model.amat)
    q = (a.T @ sp.diags(w) @ a).tocsc()
    q = q + sp.diags(1e-9 * q.diagonal() + 1e-300)
    return np.asarray(spsolve(q, a.T @ (w * field_mjy)), float).reshape(model.nsrc)


def _correlated_chain(model, field, dirs, args, extra, state, sizes, rng, outs):
    """One chain with the correlated confusion field (:mod:`skysense.xid.confusion`).

    ``dirs``: the sources' field directions (:func:`_field_directions`); ``extra``: the
    coupled pairs' arrays and the hyperparameter state; ``state``: the
    initial (f, B, amplitude); ``sizes``: (n_warmup, n_samples, thin, conf_every); ``outs``:
    the chain's draw arrays (flux, bkg, amplitude, hyperparameters), written in place.
    Blocks of ``conf_every`` sweeps of the diagonal-noise kernel on ``d - g`` (the white
    sigma_conf off), each followed by an exact draw of the field given the residual and two
    slice steps of its amplitude (non-centred, then centred), then joint moves of each
    source's flux with the field (:func:`_field_moves`) and of the background with the
    field's mean (an exact Gaussian step along B + t, g - t). The joint moves (cheap: sparse
    sums) also follow every _FIELD_MOVES_EVERY-th sweep within a block: between the field's
    draws a source's flux is pinned by the field to its instrumental error, far below its
    posterior width where the field's amplitude exceeds that error (MIPS 24: flux ESS 3.5 of
    400, median 22, with the moves after each block only; 19 and 330 with them every
    sweep). The sources' field patterns are tuned to the amplitude halfway through the
    warm-up (:func:`_field_directions`). Returns the sum over the kept draws of the field
    divided by their number (its posterior mean over this chain) and the warm-up wall time.
    """
    from skysense.xid.confusion import _sumsq, _wdot, slice_amplitude

    f, b, c = state
    n_warmup, n_samples, thin, conf_every = sizes
    out_f, out_b, out_c, out_h = outs
    cp = model.conf_prior
    d = model.data_mjy.astype(float)
    amat = sp.csr_matrix(model.amat)
    # the kernel with its white sigma_conf off (kind 0, fixed 0): the field carries confusion
    head = args[:3]
    tail = args[4:] + (model.bkg_prior.mu, 1.0 / model.bkg_prior.sigma**2, 0, 1.0, 1, 0)
    tail += extra  # the coupled pairs and the hyperparameters
    z = np.zeros(field.shape)
    bz = np.zeros(field.shape)  # B z / ||b|| on the box, kept in step with z
    g = np.zeros(model.npix)
    amp = c if cp.kind != "none" else cp.fixed
    g_sum = np.zeros(model.npix)
    dummy_f, dummy_h = np.empty((0, f.size)), np.empty((0, 3))
    steps = np.zeros(f.size)
    dirs_e, dirs_k, dirs_g = dirs
    tuned = False

    bmu, bprec = model.bkg_prior.mu, 1.0 / model.bkg_prior.sigma**2
    # the white field whose field is 1 on every pixel (exactly, on the periodic box)
    vconst = field.stamp_norm / float(field.stamp.sum())

    amp_step, adapting = 0.1, True  # the amplitude move's proposal sd in ln c

    def update_field(b):
        nonlocal z, bz, g, amp, amp_step
        if amp <= 0:
            return b
        resid = d - amat @ f - b
        z, bz = field.draw(resid, amp, z, bz, rng)
        u = bz.ravel()[field.idx]
        if cp.kind != "none":
            kw = {"kind": cp.kind_code(), "scale": cp.scale}
            quad, lin = _wdot(u, field.w, u), _wdot(u, field.w, resid)
            amp = slice_amplitude(amp, rng, quad=quad, lin=lin, **kw)
            # centred step: g = amp u held fixed, its own density |z|^2 = |g / amp|^2
            new = slice_amplitude(amp, rng, inv=amp * amp * _sumsq(z), n=z.size, **kw)
            z *= amp / new
            bz *= amp / new
            amp = new
            # and a move of the amplitude that carries the field with it (as far as the
            # amplitude's marginal width; the slice steps above each hold z or g fixed,
            # which pins the amplitude when the pixels are many: MIPS 24 ESS 24 of 400)
            z, moved, amp, n_acc = field.amplitude_move(z, resid, amp, amp_step, rng, **kw)
            if moved is not None:
                bz = moved
            if adapting:  # warm-up only: the proposal's width towards ~35 % acceptance
                amp_step *= math.exp(0.5 * (n_acc / 2.0 - 0.35))
            u = bz.ravel()[field.idx]
        g = amp * u
        return move_flux(b)

    def move_flux(b):
        nonlocal z, bz, g
        if amp <= 0:
            return b
        # flux between each source and the field, along lines that keep the model map
        r = d - amat @ f - b - g
        _field_moves(r, w, z.reshape(-1), f, *args[5:11], *dirs_e, *dirs_k, amp, rng, steps)
        # B z follows the few white-field pixels that moved by direct stamp sums (no FFT)
        _moved_field(bz.reshape(-1), steps, amp, *dirs_g)
        # background and the field's mean, along B + t, g - t (the model map unchanged):
        # a constant offset is tightly fitted, and how it splits between the two is set
        # only by their priors, which alternating draws of each given the other explore
        # slowly (a background ESS of 26 in 1200 draws on a PACS tile); along this line
        # the conditional is Gaussian (the z prior and the background's Normal prior)
        prec = z.size * vconst**2 / amp**2 + bprec
        lin = vconst * float(z.sum()) / amp - bprec * (b - bmu)
        t = lin / prec + rng.standard_normal() / math.sqrt(prec)
        z -= t * vconst / amp
        bz -= t / amp
        b += t
        g = amp * bz.ravel()[field.idx]
        return b

    w = 1.0 / args[4]
    no_out, one = (np.empty(0), np.empty(0)), np.empty(1)
    t0 = time.perf_counter()
    # the first half of the warm-up fits the sources with the field off: a field switched
    # on while the fluxes are still far off would take up their residuals (its amplitude
    # grows with them) and hand the flux back only slowly; warm-up draws are discarded
    quiet = n_warmup // 2
    b = _gibbs_chain(
        *head, d, *tail, f, b, 0.0, quiet, 0, 1, rng, dummy_f, np.empty(0), np.empty(0), dummy_h
    )
    left = n_warmup - quiet
    while left > 0:
        if not tuned and left <= (n_warmup - quiet) // 2 and amp > 0:
            # halfway through the field's warm-up, once its amplitude has settled: the
            # sources' field patterns tuned to it (:func:`_field_directions`; the delta
            # pattern before). Fixed from then on, so the kept draws' moves are one kernel.
            dirs_e, dirs_k, dirs_g = _field_directions(model, field, amp)
            tuned = True
        k = min(conf_every, left)
        for i in range(k):
            b = _gibbs_chain(
                *head, d - g, *tail, f, b, 0.0, 1, 0, 1, rng, dummy_f, *no_out, dummy_h
            )
            if i < k - 1 and (i + 1) % _FIELD_MOVES_EVERY == 0:
                b = move_flux(b)
        left -= k
        b = update_field(b)
    warm_s = time.perf_counter() - t0
    adapting = False
    done = 0
    while done < n_samples:
        k = min(conf_every, n_samples - done)
        for i in range(done, done + k):
            sl = slice(i, i + 1)
            b = _gibbs_chain(
                *head,
                d - g,
                *tail,
                f,
                b,
                0.0,
                0,
                1,
                thin,
                rng,
                out_f[sl],
                out_b[sl],
                one,
                out_h[sl],
            )
            out_c[i] = amp  # the draw was made with this field and amplitude
            g_sum += g
            if i < done + k - 1 and (i + 1 - done) % _FIELD_MOVES_EVERY == 0:
                b = move_flux(b)
        done += k
        b = update_field(b)
    return g_sum / max(n_samples, 1), warm_s
