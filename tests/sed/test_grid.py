import hashlib
import json

import numpy as np
import pytest
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM, Planck18
from scipy.integrate import quad

from skysense.errors import ConfigError
from skysense.sed import grid as G
from skysense.sed import models


def test_luminosity_distance_and_flux_scaling(toy_ssp, toy_dust, toy_filters):
    cosmo = FlatLambdaCDM(H0=70, Om0=0.3)
    z = np.array([0.0, 0.5, 2.0])
    d = G.luminosity_distance_cm(z, cosmo)
    # independent: D_L = (1 + z) c int dz / H(z)
    for zi, di in zip(z[1:], d[1:]):
        dc = quad(lambda x: 1 / np.sqrt(0.3 * (1 + x) ** 3 + 0.7), 0, zi)[0] * 299792.458 / 70
        assert di == pytest.approx((1 + zi) * dc * u.Mpc.to(u.cm), rel=1e-4)
    assert d[0] == pytest.approx(10 * u.pc.to(u.cm))
    # a flat L_lambda = 1 L_sun/A source: f_nu = L (1+z)... checked against astropy units
    lam = np.geomspace(1000, 1e5, 500)
    f = G._observe_factor(lam, 0.5, cosmo, None)
    want = (1 * u.L_sun / u.AA / (4 * np.pi * cosmo.luminosity_distance(0.5) ** 2 * 1.5)).to(
        u.mJy, u.spectral_density(lam * 1.5 * u.AA)
    )
    np.testing.assert_allclose(f, want.value, rtol=1e-3)


def test_delayed_sfh_matches_quadrature():
    tau, age, fb, ab = 2e9, 5e9, 0.1, 5e7
    edges = np.array([0, 1e7, 1e8, 1e9, 3e9, 6e9])
    got = models.delayed_sfh_masses(edges, tau, age, fb, ab)

    def sfr(a):  # a = stellar age (lookback)
        t = age - a
        main = t * np.exp(-t / tau) if t > 0 else 0.0
        return main

    norm = quad(sfr, 0, age)[0]
    for k in range(edges.size - 1):
        lo, hi = edges[k], min(edges[k + 1], age)
        want = (1 - fb) * (quad(sfr, lo, hi)[0] / norm if hi > lo else 0)
        want += fb * max(0.0, min(hi, ab) - min(lo, ab)) / ab
        assert got[k] == pytest.approx(want, rel=1e-6, abs=1e-12)
    assert got.sum() == pytest.approx(1.0)
    sfr_inst, sfr10, sfr100 = models.sfh_rates(tau, age, fb, ab)
    assert sfr_inst == pytest.approx((1 - fb) * sfr(0) / norm + fb / ab, rel=1e-9)


def test_energy_balance_in_grid(toy_ssp, toy_dust, toy_filters):
    cfg = G.GridConfig(bands=tuple(f.name for f in toy_filters), redshifts=(0.1, 1.0),
                       tau_main_gyr=(1.0,), age_gyr=(2.0, 12.0), av_ism=(0.0, 1.0), igm=False)  # fmt: skip
    grid = G.build_grid(cfg, toy_ssp, toy_dust, toy_filters, cosmology=Planck18)
    # absorbed stellar light equals the dust luminosity; none without dust
    assert grid.props["l_dust"][grid.params["av_ism"] == 0] == pytest.approx(0.0)
    # the stored spectra conserve energy: L_dust re-emitted equals what the stars lost
    i = int(np.flatnonzero(grid.params["av_ism"] == 1.0)[0])
    lam = grid.wave_out_aa
    dust = grid.props["l_dust"][i] * np.trapezoid(grid.dust_out[grid.index_d[i]], lam)
    assert dust == pytest.approx(grid.props["l_dust"][i], rel=1e-6)
    assert grid.props["a_v"][i] > 0.5
    # 12 Gyr is older than the Universe at z = 1
    assert grid.valid[0, grid.params["age_gyr"] == 12.0].all()
    assert not grid.valid[1, grid.params["age_gyr"] == 12.0].any()


def test_config_errors_and_fingerprint():
    with pytest.raises(ConfigError, match="bands"):
        G.GridConfig.from_mapping({"redshifts": [0.1]})
    with pytest.raises(ConfigError, match="unknown keys"):
        G.GridConfig.from_mapping({"bands": ["a", "b"], "tua": [1]})
    with pytest.raises(ConfigError, match="av_ism"):
        G.GridConfig(bands=("a",), av_ism=(-1.0,))
    a = G.GridConfig(bands=("a", "b"))
    b = G.GridConfig.from_mapping(a.to_mapping())
    assert a.fingerprint("x") == b.fingerprint("x")
    assert a.fingerprint("x") != G.GridConfig(bands=("a", "b"), av_ism=(0.1,)).fingerprint("x")
    assert a.fingerprint("x") != a.fingerprint("y")


def test_age_prior_config():
    with pytest.raises(ConfigError, match="age_prior"):
        G.GridConfig(bands=("a",), age_prior="log")
    a = G.GridConfig(bands=("a",), age_prior="nodes")
    b = G.GridConfig.from_mapping({"bands": ["a"]})
    # the default won on validation data (benchmarks/sed.py --validation)
    assert b.age_prior == "uniform"
    for c in (a, b):  # both round-trip, the default written out
        assert G.GridConfig.from_mapping(c.to_mapping()) == c
    assert b.to_mapping()["age_prior"] == "uniform"
    assert b.fingerprint() != a.fingerprint()
    # "nodes" is left out of the fingerprint: the grids built before age_prior existed (all of
    # them "nodes", their grid.json without the key) keep their fingerprints
    old = {k: v for k, v in a.to_mapping().items() if k != "age_prior"}
    text = json.dumps([old, ["x"], G.MODEL_VERSION], sort_keys=True)
    assert a.fingerprint("x") == hashlib.sha256(text.encode()).hexdigest()
