"""Pass 1 of the tiled hierarchical prior: the pilot tiles' posteriors combined (#18).

A product of the pilot tiles' posteriors counts the hyperprior once per tile. For the
skew-normal shape alpha, which the map hardly constrains, that pulled the field's estimate
n_pilot times as hard to the hyperprior's mean: the combination must divide it out.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from skysense.xid.engine import combine_pilots, population_pass
from skysense.xid.skymap import SkyMap
from skysense.xid.tiles import make_tiles

xfit = importlib.import_module("skysense.xid.fit")


def _conjugate(prior_mean, prior_sd, data_mean, data_sd):
    """Posterior (mean, var) of Normal prior x Normal likelihood(s): the independent answer."""
    tau = 1.0 / prior_sd**2 + np.sum(1.0 / np.square(data_sd))
    mean = (prior_mean / prior_sd**2 + np.sum(np.asarray(data_mean) / np.square(data_sd))) / tau
    return mean, 1.0 / tau


@pytest.mark.parametrize("seed", range(5))
def test_combined_pilots_equal_the_posterior_given_every_tile(seed):
    rng = np.random.default_rng(seed)
    m0, s0 = 2.0, 1.0  # alpha's hyperprior
    d = rng.normal(-0.5, 1.0, 4)  # each tile's likelihood of alpha: weak (sd 1-3)
    w = rng.uniform(1.0, 3.0, 4)
    per_tile = [_conjugate(m0, s0, [di], [wi]) for di, wi in zip(d, w)]
    mean, var = np.array(per_tile).T
    want, _ = _conjugate(m0, s0, d, w)
    got = combine_pilots(mean, var, m0, s0)
    assert got == pytest.approx(want, abs=1e-9)
    # the plain product (hyperprior counted 4 times) sits nearer the hyperprior's mean
    plain = combine_pilots(mean, var)
    assert abs(plain - m0) < abs(want - m0) - 0.05


def test_uninformative_tiles_leave_the_hyperprior():
    # posteriors as wide as the prior (MCMC noise may make them wider): the prior comes back
    got = combine_pilots(np.array([2.3, 1.6, 2.1]), np.array([1.0, 1.2, 1.05]), 2.0, 1.0)
    assert got == pytest.approx(2.0, abs=1e-12)
    # one informative tile among them: its likelihood alone (precision 4 - 1, mean 1/3)
    got = combine_pilots(np.array([2.3, 0.75, 2.1]), np.array([1.2, 0.25, 1.05]), 2.0, 1.0)
    want, _ = _conjugate(2.0, 1.0, [(4 * 0.75 - 2.0) / 3.0], [np.sqrt(1 / 3.0)])
    assert got == pytest.approx(want, abs=1e-12) and got == pytest.approx(0.75, abs=1e-12)
    # one tile: its own posterior, whatever its width (the field of one tile: unchanged)
    assert combine_pilots(np.array([2.7]), np.array([1.3]), 2.0, 1.0) == 2.7
    # without a prior (a fixed or flat parameter) the precision-weighted mean
    assert combine_pilots(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(2.0)


def test_population_pass_divides_out_the_hyperprior_of_alpha(tmp_path, monkeypatch):
    # pilot fits replaced by exact conjugate posteriors of alpha (draws): the pass must
    # combine them into the posterior given all tiles, reading the hyperprior from the model
    rng = np.random.default_rng(3)
    n = 400
    ra = 150.0 + rng.uniform(0, 0.1, n)
    dec = 2.0 + rng.uniform(0, 0.1, n)
    prior = pd.DataFrame({"id": np.arange(n), "ra": ra, "dec": dec})
    tiles = make_tiles(ra, dec, sources_per_tile=100, buffer_arcsec=20.0, shape="box")
    assert len(tiles) == 4
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.05, 2.05]
    wcs.wcs.crpix = [40.5, 40.5]
    wcs.wcs.cdelt = [-6 / 3600, 6 / 3600]
    sky = SkyMap("spire_250", np.zeros((80, 80)), np.ones((80, 80)), wcs, 18.15)
    m0, s0 = 2.0, 1.0
    lik = {}  # tile's first source -> (likelihood mean, sd) of alpha

    def fake_fit(maps, sub, random_state=None, **kw):
        key = int(sub["id"].iloc[0])
        d, w = lik.setdefault(key, (rng.normal(-1.0, 0.5), rng.uniform(1.0, 2.0)))
        mu, var = _conjugate(m0, s0, [d], [w])
        draws = np.random.default_rng(key).normal(mu, np.sqrt(var), 200_000)
        post = SimpleNamespace(
            pop_median_mjy=np.full(10, 5.0),
            pop_sigma_dex=np.full(10, 0.5),
            pop_skew=draws,
            warmup_s=1.0,
            sampling_s=2.0,
            sampling_cpu_s=2.0,
        )
        fp = SimpleNamespace(hyper_skew_mean=m0, hyper_skew_sd=s0)
        return SimpleNamespace(
            posteriors={"spire_250": post},
            models={"spire_250": SimpleNamespace(flux_prior=fp, npix=6400, nsrc=len(sub))},
        )

    monkeypatch.setattr(xfit, "fit", fake_fit)
    timing: list = []
    pop = population_pass(tiles, [sky], prior, n_pilot=4, flux_kind="hierarchical", timing=timing)
    assert len(lik) == 4
    # each pilot tile's seconds recorded (the field's time breakdown counts pass 1)
    assert sorted(t["tile"] for t in timing) == sorted(t.name for t in tiles)
    assert all(t["cpu_s"] > 0 and t["bands"]["spire_250"]["npix"] == 6400 for t in timing)
    d, w = np.array(list(lik.values())).T
    want, var = _conjugate(m0, s0, d, w)
    alpha = pop["spire_250"][2]
    # 200,000 draws per tile: the moments are exact to ~0.3 % of the posterior sd
    assert alpha == pytest.approx(want, abs=0.02 * np.sqrt(var))
    assert pop["spire_250"][1] == pytest.approx(0.5)


def test_combined_pilots_with_one_sided_tile_likelihoods():
    # non-conjugate: each tile's likelihood of alpha one-sided (a skew-normal's skewness
    # saturates), prior Normal(2, 1); the exact posterior given every tile by quadrature.
    # The Gaussian division overshoots, but less than the plain product undershoots
    from scipy import stats

    a = np.linspace(-6.0, 12.0, 200_001)
    prior = stats.norm.pdf(a, 2.0, 1.0)
    lik = stats.norm.cdf((a - 2.5) / 0.3)

    def moments(p):
        p = p / np.trapezoid(p, a)
        m = np.trapezoid(a * p, a)
        return m, np.trapezoid((a - m) ** 2 * p, a)

    m1, v1 = moments(prior * lik)
    for n in (2, 4, 8):
        exact, var = moments(prior * lik**n)
        got = combine_pilots(np.full(n, m1), np.full(n, v1), 2.0, 1.0)
        plain = combine_pilots(np.full(n, m1), np.full(n, v1))
        assert exact < got < exact + 0.3 * np.sqrt(var)  # the documented overshoot
        assert abs(got - exact) < abs(plain - exact)
