"""The skew-normal population's numba kernels against scipy (#18 speed work)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import special, stats

from skysense.errors import InputError
from skysense.xid.model import ConfusionPrior, band_model
from skysense.xid.sampler import (
    _hyper_lp,
    _log_ndtr,
    _skew_lp,
    _skew_lp_sd,
    _update_hyper,
    sample_band,
)


def test_log_ndtr_matches_scipy_over_wide_range():
    # dense over -40..10 (the asymptotic branch below -30, erfc between, log1p above 0)
    x = np.concatenate([np.linspace(-40.0, 10.0, 5001), [-30.0, -30.0 + 1e-12, 0.0, 1e-300]])
    got = np.array([_log_ndtr(v) for v in x])
    want = special.log_ndtr(x)
    assert np.all(np.isfinite(got))
    assert np.allclose(got, want, rtol=1e-10, atol=0.0)


def test_log_ndtr_table_matches_erfc_branches_at_every_interval():
    # the piecewise polynomial table against the erfc formula it replaces (and scipy), at
    # both ends and the middle of every interval and just inside/outside the table's range
    from skysense.xid.sampler import _LPHI_H, _LPHI_HI, _LPHI_LO, _log_ndtr_exact

    edges = np.arange(_LPHI_LO, _LPHI_HI + 0.5 * _LPHI_H, _LPHI_H)
    x = np.concatenate(
        [edges, edges[:-1] + 0.5 * _LPHI_H, edges[1:] - 1e-12, [_LPHI_HI - 1e-15, _LPHI_HI + 1e-9]]
    )
    x = x[x >= _LPHI_LO]
    got = np.array([_log_ndtr(v) for v in x])
    exact = np.array([_log_ndtr_exact(v) for v in x])
    scale = np.maximum(1.0, np.abs(exact))
    assert np.max(np.abs(got - exact) / scale) < 1e-14
    assert np.max(np.abs(got - exact) / np.abs(exact)) < 1e-11
    assert np.allclose(got, special.log_ndtr(x), rtol=1e-11, atol=0.0)


def test_hyper_state_slots_reach_the_population_density():
    # the named slots (tied width included) against scipy's skew-normal and the hyperpriors
    from skysense.xid.sampler import _hyper_state

    kw = dict(loc=0.1, ln_scale=-0.3, loc_mean=0.5, loc_sd=2.0, scale_sd=1.5, skew=1.2)
    kw.update(skew_sd=0.8, skew_mean=2.0, every=1, tied_ln_sd=-0.2, tied_sd=0.1)
    hyp = _hyper_state(**kw)
    u = np.random.default_rng(4).normal(0.3, 0.7, 25)
    x = np.array([0.1, -0.3, 1.2])
    ref = stats.skewnorm(1.2, 0.1, math.exp(-0.3))
    want = (
        -0.5 * ((0.1 - 0.5) / 2.0) ** 2
        - 0.5 * ((math.log(ref.std()) + 0.2) / 0.1) ** 2  # the tied width's prior
        - 0.5 * ((1.2 - 2.0) / 0.8) ** 2
        + ref.logpdf(u).sum()
        + u.size * 0.5 * math.log(2.0 * math.pi)
    )
    assert _hyper_lp(x, hyp, u) == pytest.approx(want, rel=1e-12)
    free = _hyper_state(**{**kw, "tied_sd": 0.0})  # width free: the HalfNormal on s instead
    s = math.exp(-0.3)
    want_free = want + 0.5 * ((math.log(ref.std()) + 0.2) / 0.1) ** 2 - 0.5 * (s / 1.5) ** 2 - 0.3
    assert _hyper_lp(x, free, u) == pytest.approx(want_free, rel=1e-12)


def test_hoisted_skew_density_equals_original():
    rng = np.random.default_rng(3)
    for u, m, prec, a in zip(
        rng.normal(0, 3, 50), rng.normal(0, 1, 50), rng.uniform(0.1, 9, 50), rng.normal(1, 3, 50)
    ):
        assert _skew_lp_sd(u, m, math.sqrt(prec), a) == _skew_lp(u, m, prec, a)
    # and against scipy's skew-normal density (up to its -ln s + ln 2 - ln sqrt(2 pi))
    u, m, s, a = 0.4, -0.2, 0.7, 2.5
    ref = stats.skewnorm.logpdf(u, a, m, s) + math.log(s) + 0.5 * math.log(2 * math.pi)
    assert _skew_lp(u, m, 1 / s**2, a) == pytest.approx(ref, abs=1e-12)


def _hyp(m, t, a, every=1.0):
    # [m, ln s, m0, msd, sscale, alpha, ascale, amean, every] (ln-flux units)
    return np.array([m, t, 0.5, 2.0, 2.0, a, 1.5, 1.0, every])


def _scipy_hyper_lp(m, t, a, hyp, u):
    s = np.exp(t)
    lp = -0.5 * ((m - hyp[2]) / hyp[3]) ** 2 - 0.5 * (s / hyp[4]) ** 2 + t
    lp = lp - 0.5 * ((a - hyp[7]) / hyp[6]) ** 2
    return lp + stats.skewnorm.logpdf(u[:, None], a, m, s).sum(axis=0)


def test_hyper_update_samples_the_grid_posterior():
    # the population update alone (fluxes fixed) against a brute-force grid over
    # (m, ln s, alpha) of the same conditional written with scipy.stats.skewnorm
    rng = np.random.default_rng(7)
    u = stats.skewnorm.rvs(2.0, 1.0, 0.8, size=25, random_state=rng)
    f = np.exp(u)
    hyp = _hyp(1.0, math.log(0.8), 1.0)
    pmu, pprec, pal = np.zeros(u.size), np.zeros(u.size), np.zeros(u.size)
    draws = np.empty((20000, 3))
    r = np.random.default_rng(1)
    for k in range(draws.shape[0]):
        _update_hyper(f, hyp, pmu, pprec, pal, r)
        draws[k] = hyp[0], hyp[1], hyp[5]
    draws = draws[500:]
    lo, hi = draws.min(0), draws.max(0)
    span = hi - lo
    g = [np.linspace(lo[i] - 0.3 * span[i], hi[i] + 0.3 * span[i], 41) for i in range(3)]
    mm, tt, aa = np.meshgrid(*g, indexing="ij")
    lp = _scipy_hyper_lp(mm.ravel(), tt.ravel(), aa.ravel(), hyp, u)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    grid = np.stack([mm.ravel(), tt.ravel(), aa.ravel()], 1)
    mean = w @ grid
    sd = np.sqrt(w @ (grid - mean) ** 2)
    # the chain's draws are near independent: 0.1 sd is ~10 Monte Carlo errors of the mean
    assert np.all(np.abs(draws.mean(0) - mean) < 0.1 * sd), (draws.mean(0), mean, sd)
    assert np.allclose(draws.std(0), sd, rtol=0.1), (draws.std(0), sd)
    # the kernel's own log density differs from scipy's only by a constant
    x = np.array([hyp[0], hyp[1], hyp[5]])
    c1 = _hyper_lp(x, hyp, u) - _scipy_hyper_lp(x[0], x[1], x[2], hyp, u)[()]
    x2 = np.array([x[0] + 0.1, x[1] - 0.05, x[2] + 0.3])
    c2 = _hyper_lp(x2, hyp, u) - _scipy_hyper_lp(x2[0], x2[1], x2[2], hyp, u)[()]
    assert c1 == pytest.approx(c2, abs=1e-9)


def test_hyper_every_validated():
    a = sp.csr_matrix(np.ones((4, 1)))
    m = band_model(
        "spire_250",
        a,
        np.ones(4),
        np.ones(4),
        flux_kind="hierarchical",
        conf_prior=ConfusionPrior("none"),
    )
    with pytest.raises(InputError):
        sample_band(m, n_samples=5, n_warmup=5, hyper_every=0)


def test_log_ndtr_dense_between_the_nodes_and_at_nan_inf():
    # review: between the interpolation nodes (random points, where a degree-9 fit errs
    # most), across both range ends and the far tails, against scipy; NaN and +-inf pass
    x = np.random.default_rng(11).uniform(-45.0, 12.0, 60_000)
    x = np.concatenate([x, np.nextafter([-40.0, -40.0, 9.0, 9.0], [-50.0, 0.0, 0.0, 50.0])])
    got = np.array([_log_ndtr(v) for v in x])
    want = special.log_ndtr(x)
    assert np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) < 5e-15
    assert np.max(np.abs(got - want) / np.abs(want)) < 5e-12
    assert math.isnan(_log_ndtr(math.nan))
    assert _log_ndtr(math.inf) == 0.0 and _log_ndtr(-math.inf) == -math.inf
