"""The population shape's hyperprior learned from the prior list's selection fluxes (#18)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from skysense.errors import InputError
from skysense.xid.population import (
    SHAPE_HYPER_SD,
    SHAPE_SKEW_TRANSFER,
    selection_skewness,
    shape_hyperprior,
    skew_normal_shape,
)
from skysense.xid.simulate import simulate_field

# the module (skysense.xid re-exports the function fit under the same name)
xfit = importlib.import_module("skysense.xid.fit")


@given(st.floats(-25.0, 25.0))
@settings(max_examples=60, deadline=None)
def test_shape_inverts_scipy_skewnorm_skewness(alpha):
    # independent answer: scipy's skew-normal skewness of this alpha
    g = float(stats.skewnorm(alpha).stats(moments="s"))
    assert float(skew_normal_shape(g)) == pytest.approx(alpha, abs=1e-6 * max(1.0, alpha**2))


def test_shape_clips_beyond_the_skew_normal_range():
    big = float(skew_normal_shape(1.5))
    assert big == pytest.approx(float(skew_normal_shape(0.99)))
    assert float(stats.skewnorm(big).stats(moments="s")) == pytest.approx(0.99, abs=1e-9)
    assert float(skew_normal_shape(-1.5)) == pytest.approx(-big)


def test_selection_skewness_is_scipy_skew_of_the_logs():
    rng = np.random.default_rng(0)
    f = 10.0 ** rng.exponential(0.3, 400)
    with_bad = np.concatenate([f, [0.0, -1.0, np.nan, np.inf]])
    assert selection_skewness(with_bad) == pytest.approx(stats.skew(np.log10(f)), rel=1e-12)
    assert math.isnan(selection_skewness(f[:9]))


def test_hyperprior_centre_follows_the_selection_skewness():
    rng = np.random.default_rng(1)
    # no selection fluxes (or too few): centred on the log-normal
    assert shape_hyperprior() == (0.0, SHAPE_HYPER_SD)
    assert shape_hyperprior([np.ones(5)]) == (0.0, SHAPE_HYPER_SD)
    # a flux-limited list: log fluxes exponential above the limit (skewness ~2)
    f = 10.0 ** rng.exponential(0.3, 2000)
    mean, sd = shape_hyperprior([f])
    g = SHAPE_SKEW_TRANSFER * stats.skew(np.log10(f))
    assert sd == SHAPE_HYPER_SD
    assert float(stats.skewnorm(mean).stats(moments="s")) == pytest.approx(g, rel=1e-9)
    assert 2.5 < mean < 3.5
    # a symmetric (log-normal) list: near 0; several bands: their mean skewness
    sym = 10.0 ** rng.normal(0.0, 0.5, 2000)
    assert abs(shape_hyperprior([sym])[0]) < 0.8
    both = shape_hyperprior([f, sym])[0]
    assert 0.0 < both < mean


def _field():
    f = simulate_field(40, size_pix=40, noise_mjy=1.0, margin_pix=3, random_state=2)
    return f.sky, f.sources[["id", "ra", "dec"]].reset_index(drop=True)


@pytest.mark.parametrize("kind", [None, "hierarchical"])
def test_fit_takes_the_shape_hyperprior_from_the_prior_list(kind):
    sky, prior = _field()
    kw = {"n_samples": 20, "n_warmup": 20, "n_chains": 1, "random_state": 0, "flux_kind": kind}
    res = xfit.fit([sky], prior, **kw)
    fp = res.models["spire_250"].flux_prior
    assert (fp.hyper_skew_mean, fp.hyper_skew_sd) == (0.0, SHAPE_HYPER_SD)
    rng = np.random.default_rng(3)
    sel = 10.0 ** rng.exponential(0.3, len(prior))
    res = xfit.fit([sky], prior.assign(f_irac_i1=sel), **kw)
    fp = res.models["spire_250"].flux_prior
    assert (fp.hyper_skew_mean, fp.hyper_skew_sd) == pytest.approx(shape_hyperprior([sel]))
    assert fp.hyper_skew_mean > 1.0
    # an explicit hyperprior wins; a flat prior has none to set
    res = xfit.fit([sky], prior.assign(f_irac_i1=sel), shape_prior=(-1.0, 0.5), **kw)
    fp = res.models["spire_250"].flux_prior
    assert (fp.hyper_skew_mean, fp.hyper_skew_sd) == (-1.0, 0.5)
    with pytest.raises(InputError, match="hyperprior"):
        xfit.fit([sky], prior, shape_prior=(0.0, -1.0), **kw)
    res = xfit.fit([sky], prior.assign(f_irac_i1=sel), **{**kw, "flux_kind": "uniform"})
    assert res.models["spire_250"].flux_prior.kind == "uniform"
