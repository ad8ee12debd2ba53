"""The Gibbs sampler's overrelaxed flux step (Neal 2003, section 6; ``sample_band(overrelax=k)``)
against brute-force quadrature of the 1-D conditional it targets, and the whole sampler with
and without it on one small simulated tile (#18 speed work)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysense.xid.sampler import _logflux_lp, _overrelaxed_logflux, _slice_logflux


def _quantiles(x, lp, qs=(0.16, 0.5, 0.84)):
    p = np.exp(lp - lp.max())
    cdf = np.cumsum(p) / p.sum()
    return np.interp(qs, cdf, x)


@pytest.mark.parametrize(
    "m, prec, lprec, alpha",
    [
        (4.9, 0.8, 0.7, 4.4),  # measured source, skewed population
        (-1.0, 0.8, 0.7, 4.4),  # the map sees nothing: the population's shape
        (20.0, 0.8, 0.7, -2.0),  # bright source
        (2.0, 0.8, 0.0, 0.0),  # log-uniform prior (flat in ln f) on the bounds
    ],
)
def test_overrelaxed_step_keeps_the_conditional(m, prec, lprec, alpha):
    # three overrelaxed steps, then one ordinary slice step (a reflection alone keeps the
    # density level); the chain's quantiles of ln f against quadrature on a fine grid
    lo, hi, lmu = 0.01, 40.0, -0.25
    rng = np.random.default_rng(5)
    f, n, moved = 1.0, 60000, 0
    us = np.empty(n)
    for k in range(n):
        if k % 4 == 3:
            f = _slice_logflux(f, m, prec, lo, hi, lmu, lprec, alpha, rng)
        else:
            fn = _overrelaxed_logflux(f, m, prec, lo, hi, lmu, lprec, alpha, rng)
            moved += fn != f
            f = fn
        assert lo <= f <= hi
        us[k] = math.log(f)
    ug = np.linspace(math.log(lo), math.log(hi), 20001)
    lp = np.array([_logflux_lp(u, m, prec, lmu, math.sqrt(lprec), alpha) for u in ug])
    want = _quantiles(ug, lp)
    sd = (want[2] - want[0]) / 2
    assert np.percentile(us, [16, 50, 84]) == pytest.approx(want, abs=0.03 * sd + 1e-3)
    # the reflections do move (accepted nearly always on these unimodal conditionals)
    assert moved > 0.8 * (3 * n // 4)


def test_sampler_with_overrelaxation_agrees_with_the_ordinary_sweeps():
    # a small simulated SPIRE 250 tile, hierarchical prior: medians within 0.15 posterior sd
    # and 16-84% widths within 15% of the ordinary sampler's, every source
    from skysense.xid.fit import build_band_model
    from skysense.xid.model import default_conf_prior
    from skysense.xid.sampler import sample_band
    from skysense.xid.simulate import simulate_field

    sim = simulate_field(
        30, size_pix=22, noise_mjy=2.0, flux_min_mjy=1.0, flux_max_mjy=100.0, random_state=3
    )
    model, _, _ = build_band_model(
        sim.sky,
        sim.sources[["id", "ra", "dec"]],
        on_duplicate="keep",
        flux_kind="hierarchical",
        conf_prior=default_conf_prior("spire_250", correlated=False),
    )
    kw = dict(n_samples=3000, n_warmup=500, n_chains=4)
    a = sample_band(model, overrelax=3, random_state=1, **kw).flux.reshape(-1, model.nsrc)
    b = sample_band(model, random_state=2, **kw).flux.reshape(-1, model.nsrc)
    sd = b.std(axis=0)
    dmed = np.abs(np.median(a, 0) - np.median(b, 0)) / sd
    wa = np.percentile(a, 84.1, 0) - np.percentile(a, 15.9, 0)
    wb = np.percentile(b, 84.1, 0) - np.percentile(b, 15.9, 0)
    assert dmed.max() < 0.15
    assert np.all(np.abs(wa / wb - 1) < 0.15)
