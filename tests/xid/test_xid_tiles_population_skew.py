"""Pass 2 of the tiled hierarchical prior fixes the learned skew-normal population (#18)."""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from skysense.xid.engine import fit_tiles, population_columns
from skysense.xid.model import band_model
from skysense.xid.sampler import sample_band
from skysense.xid.simulate import simulate_field

# the module (skysense.xid re-exports the function fit under the same name)
xfit = importlib.import_module("skysense.xid.fit")


@pytest.mark.parametrize("alpha", [-3.0, 0.0, 0.7, 2.0, 6.0])
def test_population_columns_have_the_learned_moments_and_skew(alpha):
    # independent answer: scipy's skew-normal of the columns' location, scale and shape has
    # the pilot pass's mean and sd of log10 flux
    mean, sd = math.log10(7.0), 0.35
    cols = population_columns({"b": (10.0**mean, sd, alpha)})
    assert cols["flux_skew_b"] == alpha
    dist = stats.skewnorm(alpha, loc=math.log10(cols["flux_mu_b"]), scale=cols["flux_sigma_b"])
    assert dist.mean() == pytest.approx(mean, abs=1e-12)
    assert dist.std() == pytest.approx(sd, rel=1e-12)
    # an old two-value population file is a log-normal
    old = population_columns({"b": (7.0, sd)})
    assert old == {"flux_mu_b": pytest.approx(7.0), "flux_sigma_b": sd, "flux_skew_b": 0.0}


def test_fixed_skew_population_is_sampled_as_scipy_skewnorm():
    # sources whose pixels carry no information (noise 1e7 mJy): the posterior is the fixed
    # prior, log10 f ~ skew-normal(alpha, log10 mu, sigma) truncated to the bounds; scipy's
    # truncated moments and a KS test are the independent answer
    n, mu, sdex, alpha = 60, 8.0, 0.3, 4.0
    lo, hi = 0.5, 400.0
    model = band_model(
        "spire_250",
        sp.identity(n, format="csr"),
        np.zeros(n),
        np.full(n, 1e7),
        flux_lower=np.full(n, lo),
        flux_upper=np.full(n, hi),
        flux_kind="lognormal",
        flux_mu=np.full(n, mu),
        flux_sigma=np.full(n, sdex),
        flux_skew=np.full(n, alpha),
    )
    assert model.flux_prior.skew is not None
    post = sample_band(model, n_samples=400, n_warmup=100, n_chains=2, random_state=3)
    x = np.log10(post.flux[:, ::4, :]).ravel()  # thinned: the slice draws are near independent
    a, b = np.log10(lo), np.log10(hi)
    sn = stats.skewnorm(alpha, loc=np.log10(mu), scale=sdex)
    ca, cb = sn.cdf(a), sn.cdf(b)

    def cdf(v):
        return (sn.cdf(np.clip(v, a, b)) - ca) / (cb - ca)

    grid = np.linspace(a, b, 20001)
    pdf = sn.pdf(grid) / (cb - ca)
    true_mean = float(np.sum(grid * pdf) * (grid[1] - grid[0]))
    assert abs(x.mean() - true_mean) < 0.02
    # the log-normal of the same location (skew dropped) has its mean 0.23 dex lower
    assert abs(x.mean() - np.log10(mu)) > 0.15
    assert stats.kstest(x, cdf).pvalue > 1e-3
    assert stats.skew(x) > 0.4  # skew-normal alpha=4: 0.78; a log-normal: 0


def test_pass_two_tiles_get_the_pilot_skew(tmp_path, monkeypatch):
    # a small simulated field in 2+ tiles: the pilot pass learns alpha (the map hardly
    # constrains it, so it stays near the hyperprior's mean 2, never 0), and every tile of
    # pass 2 is built with the skew-normal population of exactly those moments and shape
    f = simulate_field(150, size_pix=70, noise_mjy=1.0, margin_pix=3, random_state=7)
    prior = f.sources[["id", "ra", "dec"]]
    seen = []
    real = xfit.build_band_model

    def spy(sky, prior_rows, *args, **kw):
        model, rows, bad = real(sky, prior_rows, *args, **kw)
        seen.append((kw.get("flux_kind"), model.flux_prior))
        return model, rows, bad

    monkeypatch.setattr(xfit, "build_band_model", spy)
    kw = {"n_samples": 150, "n_warmup": 150, "n_chains": 2, "random_state": 1, "n_rep": 0}
    cat = fit_tiles([f.sky], prior, tmp_path, order=11, buffer_arcsec=40.0, n_pilot=2, **kw)
    assert len(cat) == len(prior)
    med, sdex, alpha = json.loads((tmp_path / "population.json").read_text())["spire_250"]
    assert 0.5 < alpha < 4.0
    cols = population_columns({"spire_250": (med, sdex, alpha)})
    pass2 = [p for k, p in seen if k == "lognormal"]
    assert len(pass2) >= 2 and len([k for k, _ in seen if k == "hierarchical"]) >= 1
    for p in pass2:
        assert p.kind == "lognormal"
        np.testing.assert_allclose(p.skew, alpha)
        np.testing.assert_allclose(p.mu, cols["flux_mu_spire_250"])
        np.testing.assert_allclose(p.sigma, cols["flux_sigma_spire_250"])
    assert pd.Series(cat["xid_tile"]).nunique() >= 2
