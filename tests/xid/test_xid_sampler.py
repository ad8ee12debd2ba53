"""The Gibbs sampler against exact independent answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from skysense.xid.model import (
    BackgroundPrior,
    ConfusionPrior,
    GaussianBeam,
    band_model,
    pointing_matrix,
)
from skysense.xid.sampler import sample_band, truncated_normal


@pytest.mark.parametrize(
    "lo,hi",
    [
        (-1.0, 2.0),
        (0.1, 0.4),
        (3.0, np.inf),
        (4.0, 4.2),
        (-np.inf, -5.0),
        (-0.2, 0.3),
        (0.0, 6.0),
        (2.0, 8.0),
    ],
)
def test_truncated_normal_matches_scipy(lo, hi):
    x = truncated_normal(0.0, 1.0, lo, hi, 20000, random_state=5)
    assert np.all((x >= lo) & (x <= hi))
    ks = stats.kstest(x, stats.truncnorm(lo, hi).cdf)
    assert ks.pvalue > 1e-3


def _blend_problem(seed=0, nsrc=3):
    """Three heavily blended sources (fixed noise), small enough for exact rejection sampling."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:14, 0:14]
    sx = np.array([6.0, 7.3, 6.6])[:nsrc]
    sy = np.array([6.0, 6.4, 7.5])[:nsrc]
    a = pointing_matrix(sx, sy, xx.ravel(), yy.ravel(), GaussianBeam(18.0), 6.0)
    f = np.array([8.0, 2.0, 0.5])[:nsrc]
    sig = np.full(a.shape[0], 3.0)
    d = a @ f + 1.0 + sig * rng.standard_normal(a.shape[0])
    return a, d, sig


def _exact_draws(a, d, sig, lo, hi, bkg, n, seed):
    """Posterior with fixed noise = Gaussian truncated to a box: rejection from the Gaussian."""
    x = sp.hstack([a, np.ones((a.shape[0], 1))]).toarray()
    w = 1 / sig**2
    prec = x.T @ (w[:, None] * x)
    prec[-1, -1] += 1 / bkg.sigma**2
    rhs = x.T @ (w * d)
    rhs[-1] += bkg.mu / bkg.sigma**2
    cov = np.linalg.inv(prec)
    mean = cov @ rhs
    rng = np.random.default_rng(seed)
    out = []
    while sum(len(o) for o in out) < n:
        z = rng.multivariate_normal(mean, cov, size=200000)
        ok = np.all((z[:, :-1] >= lo) & (z[:, :-1] <= hi), axis=1)
        out.append(z[ok])
    return np.concatenate(out)[:n]


def test_gibbs_matches_exact_truncated_gaussian():
    a, d, sig = _blend_problem()
    bkg = BackgroundPrior(0.0, 2.0)
    lo, hi = np.zeros(3), np.full(3, 30.0)
    m = band_model(
        "spire_250",
        a,
        d,
        sig,
        flux_lower=lo,
        flux_upper=hi,
        bkg_prior=bkg,
        conf_prior=ConfusionPrior("none"),
    )
    post = sample_band(m, n_samples=10000, n_warmup=300, n_chains=4, random_state=1)
    exact = _exact_draws(a, d, sig, lo, hi, bkg, 40000, 2)
    g = np.column_stack([post.flux.reshape(-1, 3), post.bkg.ravel()])
    sd = exact.std(axis=0)
    # Monte Carlo error of the Gibbs means is < 0.03 sd here; allow 0.06 sd
    np.testing.assert_array_less(np.abs(g.mean(0) - exact.mean(0)) / sd, 0.06)
    for q in (5, 50, 95):
        np.testing.assert_array_less(
            np.abs(np.percentile(g, q, 0) - np.percentile(exact, q, 0)) / sd, 0.08
        )
    np.testing.assert_allclose(g.std(0), sd, rtol=0.05)


def test_gaussian_loguniform_and_lognormal_priors_one_source():
    # one isolated source: the posterior is 1-D; compare with numerical integration on a grid
    yy, xx = np.mgrid[0:9, 0:9]
    a = pointing_matrix(
        np.array([4.2]), np.array([3.9]), xx.ravel(), yy.ravel(), GaussianBeam(18.0), 6.0
    )
    rng = np.random.default_rng(3)
    sig = np.full(a.shape[0], 4.0)
    d = a @ np.array([3.0]) + sig * rng.standard_normal(a.shape[0])
    bkg = BackgroundPrior(0.0, 1e-4)  # background pinned: 1-D problem
    grid = np.linspace(0.05, 25.0, 20001)
    resid = d[:, None] - a.toarray() @ grid[None, :]
    loglik = -0.5 * np.sum(resid**2 / sig[:, None] ** 2, axis=0)
    for kind, extra, logprior in (
        ("gaussian", {"flux_mu": [6.0], "flux_sigma": [2.0]}, -0.5 * ((grid - 6.0) / 2.0) ** 2),
        ("loguniform", {}, -np.log(grid)),
        # log-normal in f: median 2 mJy, 0.4 dex; density in f carries the 1/f Jacobian
        (
            "lognormal",
            {"flux_mu": [2.0], "flux_sigma": [0.4]},
            -0.5 * (np.log10(grid / 2.0) / 0.4) ** 2 - np.log(grid),
        ),
    ):
        m = band_model(
            "spire_250",
            a,
            d,
            sig,
            flux_lower=[0.05],
            flux_upper=[25.0],
            flux_kind=kind,
            bkg_prior=bkg,
            conf_prior=ConfusionPrior("none"),
            **extra,
        )
        # 80000 draws: the Monte Carlo error of the quantiles (~0.011 mJy at the median) is
        # well inside the tolerance whatever the random stream
        post = sample_band(m, n_samples=40000, n_warmup=200, n_chains=2, random_state=4)
        lp = loglik + logprior
        p = np.exp(lp - lp.max())
        cdf = np.cumsum(p) / p.sum()
        draws = post.flux.ravel()
        for q in (0.16, 0.5, 0.84):
            assert np.percentile(draws, 100 * q) == pytest.approx(
                np.interp(q, cdf, grid), rel=0.03, abs=0.05
            )


def test_chains_seeded_and_reproducible():
    a, d, sig = _blend_problem(nsrc=2)
    m = band_model("spire_250", a, d, sig)
    p1 = sample_band(m, n_samples=50, n_warmup=10, n_chains=2, random_state=7)
    p2 = sample_band(m, n_samples=50, n_warmup=10, n_chains=2, random_state=7)
    np.testing.assert_array_equal(p1.flux, p2.flux)
    assert not np.array_equal(p1.flux[0], p1.flux[1])


def test_sigma_conf_posterior_matches_nuts():
    from skysense.xid.reference import nuts_band

    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[0:20, 0:20]
    sx, sy = rng.uniform(2, 17, 12), rng.uniform(2, 17, 12)
    a = pointing_matrix(sx, sy, xx.ravel(), yy.ravel(), GaussianBeam(18.0), 6.0)
    sig = np.full(a.shape[0], 1.0)
    # 2.5 mJy/beam of extra Gaussian noise plays the confusion noise
    d = a @ rng.uniform(2, 20, 12) + np.sqrt(1 + 2.5**2) * rng.standard_normal(a.shape[0])
    m = band_model("spire_250", a, d, sig, conf_prior=ConfusionPrior("halfcauchy", 0.5))
    g = sample_band(m, n_samples=4000, n_warmup=300, n_chains=2, random_state=9)
    n = nuts_band(m, n_samples=600, n_warmup=250, n_chains=2, random_state=9)
    for gs, ns in ((g.sigma_conf, n.sigma_conf), (g.bkg, n.bkg)):
        assert abs(np.median(gs) - np.median(ns)) < 0.12 * ns.std()
        assert gs.std() == pytest.approx(ns.std(), rel=0.12)
    gf, nf = g.flux.reshape(-1, 12), n.flux.reshape(-1, 12)
    np.testing.assert_array_less(np.abs(np.median(gf, 0) - np.median(nf, 0)) / nf.std(0), 0.15)
    assert 2.0 < np.median(g.sigma_conf) < 3.0


def test_lognormal_prior_on_a_blend_matches_nuts():
    # a population (log-normal) prior on three blended sources, two of them faint: the Gibbs
    # sampler's slice steps in log f against numpyro NUTS on the same model
    from skysense.xid.reference import nuts_band

    a, d, sig = _blend_problem(seed=2)
    m = band_model(
        "spire_250",
        a,
        d,
        sig,
        flux_kind="lognormal",
        flux_mu=np.full(3, 2.0),
        flux_sigma=np.full(3, 0.6),
        bkg_prior=BackgroundPrior(1.0, 0.5),
        conf_prior=ConfusionPrior("none"),
    )
    assert m.flux_prior.kind == "lognormal" and np.all(m.flux_prior.lower > 0)
    g = sample_band(m, n_samples=6000, n_warmup=300, n_chains=2, random_state=3)
    n = nuts_band(m, n_samples=1500, n_warmup=400, n_chains=2, random_state=3)
    gf, nf = g.flux.reshape(-1, 3), n.flux.reshape(-1, 3)
    for q in (15.9, 50.0, 84.1):
        gq, nq = np.percentile(gf, q, 0), np.percentile(nf, q, 0)
        np.testing.assert_array_less(np.abs(gq - nq), 0.12 * nf.std(0) + 0.02)
