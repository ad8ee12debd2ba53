"""The Gibbs sampler's Metropolis-Hastings line step and population shift move against
brute-force grids of the densities they target (#18 speed work)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from skysense.xid.sampler import (
    _prior_d,
    _prior_lp,
    _shift_population,
    _slice_logflux,
    _tilted_step,
)


def _quantiles(x, lp, qs=(0.16, 0.5, 0.84)):
    p = np.exp(lp - lp.max())
    cdf = np.cumsum(p) / p.sum()
    return np.interp(qs, cdf, x)


def test_prior_derivatives_match_finite_differences():
    for kind, mu, prec, alpha in ((2, 0.3, 1.7, 2.0), (2, -0.5, 0.8, -1.5), (3, 0.0, 0.0, 0.0)):
        for x in (0.2, 1.0, 4.5, 30.0):
            h = 1e-4 * x
            d1, d2 = _prior_d(x, kind, mu, prec, alpha)
            lp = [_prior_lp(x + k * h, kind, mu, prec, alpha) for k in (-1, 0, 1)]
            assert d1 == pytest.approx((lp[2] - lp[0]) / (2 * h), rel=1e-5, abs=1e-8)
            assert d2 == pytest.approx((lp[2] - 2 * lp[1] + lp[0]) / h**2, rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("pair", [False, True])
def test_tilted_step_samples_the_line_conditional(pair):
    # N(t; tref, 1/q) times skew-normal log-flux priors along f + t d, on the bounds; the
    # chain of Metropolis-Hastings steps against quadrature on a fine grid of t
    fi, fj, di, dj = (4.0, 6.0, 0.8, -0.6) if pair else (4.0, 1.0, 1.0, 0.0)
    mu, prec, alpha = math.log(3.0), 1.0 / 0.7**2, 2.0
    q, tref = 1.0 / 0.9**2, 0.5
    g = q * tref
    lo, hi = 0.01, 40.0
    tlo = max((lo - fi) / di, (hi - fj) / dj) if pair else lo - fi
    thi = min((hi - fi) / di, (lo - fj) / dj) if pair else hi - fi
    rng = np.random.default_rng(5)
    t0, draws, acc = 0.0, np.empty(40000), 0
    for n in range(draws.size):
        xi, xj = fi + t0 * di, fj + t0 * dj
        # g moves with the chain's point: the Gaussian's mean stays at the same place
        t = _tilted_step(
            g - q * t0,
            q,
            tref - t0,
            xi,
            xj,
            di,
            dj,
            2,
            2,
            mu,
            mu,
            prec,
            prec,
            alpha,
            alpha,
            tlo - t0,
            thi - t0,
            rng,
        )
        assert not math.isnan(t)
        acc += t != 0.0
        t0 += t
        draws[n] = t0
    grid = np.linspace(tlo, thi, 200001)[1:-1]
    lp = -0.5 * q * (grid - tref) ** 2 + np.array(
        [
            _prior_lp(fi + t * di, 2, mu, prec, alpha)
            + (_prior_lp(fj + t * dj, 2, mu, prec, alpha) if pair else 0.0)
            for t in grid
        ]
    )
    want = _quantiles(grid, lp)
    got = np.percentile(draws, [16, 50, 84])
    assert got == pytest.approx(want, abs=0.03)
    assert acc / draws.size > 0.6  # a usable proposal: most draws accepted


def test_shift_population_and_flux_steps_sample_the_joint_posterior():
    # one faint source (moved with the population's location m by the shift move) and one
    # source held fixed (its population term depends on m); m is moved only by the shift
    # move, the faint flux by its own slice step; the joint (m, f) against a grid
    a = np.array([0.2, 0.6, 1.0, 0.6, 0.2])
    s2 = np.full(5, 1.0)
    w = 1.0 / s2
    d = np.array([0.5, 1.1, 1.6, 0.4, 0.6])
    indptr = np.array([0, 5, 5], dtype=np.int64)  # the fixed source has no pixels
    indices = np.arange(5, dtype=np.int64)
    lo, hi = np.array([0.01, 0.01]), np.array([30.0, 30.0])
    s, alpha = 0.8, 1.5
    # [m, ln s, m0, msd, sscale, alpha, ascale, amean, every]
    hyp = np.array([0.0, math.log(s), 0.2, 0.5, 1.0, alpha, 1.0, 1.0, 1.0])
    f = np.array([1.0, 2.0])
    shift = np.array([1, 0], dtype=np.int64)
    pmu = np.full(2, hyp[0])
    rng = np.random.default_rng(11)
    qa = float(np.sum(w * a * a))
    mlik = float(np.sum(w * a * d)) / qa
    ms, fs = np.empty(30000), np.empty(30000)
    for n in range(ms.size):
        f[0] = _slice_logflux(f[0], mlik, qa, lo[0], hi[0], hyp[0], 1 / s**2, alpha, rng)
        r = d - a * f[0]
        _shift_population(f, lo, hi, shift, hyp, pmu, w, r, indptr, indices, a, rng)
        assert np.allclose(r, d - a * f[0])
        assert pmu[0] == hyp[0]
        ms[n], fs[n] = hyp[0], f[0]
    mg = np.linspace(-3.0, 3.0, 601)
    ug = np.linspace(math.log(0.01), math.log(30.0), 1201)
    mm, uu = np.meshgrid(mg, ug, indexing="ij")
    lp = (
        stats.norm.logpdf(mm, 0.2, 0.5)
        + stats.skewnorm.logpdf(uu, alpha, mm, s)
        + stats.skewnorm.logpdf(math.log(2.0), alpha, mm, s)
        - 0.5 * qa * (np.exp(uu) - mlik) ** 2
    )
    p = np.exp(lp - lp.max())
    m_lp = np.log(p.sum(axis=1))
    u_lp = np.log(p.sum(axis=0))
    assert np.percentile(ms, [16, 50, 84]) == pytest.approx(_quantiles(mg, m_lp), abs=0.03)
    assert np.percentile(np.log(fs), [16, 50, 84]) == pytest.approx(_quantiles(ug, u_lp), abs=0.04)
