"""Galaxies drawn from the SED model family of skysense.sed (#17): photometry against models
built independently at the galaxy's exact redshift, stars against sedpy's own synthetic
photometry, physical truth against the population relations it was drawn from."""

from __future__ import annotations

import numpy as np
import pytest

from skysense.errors import InputError
from skysense.sed import GridConfig
from skysense.sed.filters import HELP_TO_SEDPY
from skysense.sed.io import make_grid
from skysense.sim import BANDS, simulate_sky
from skysense.sim.sed import ujy_to_ab_mag
from skysense.sim.sedmodel import (
    SIM_GRID,
    main_sequence_log_ssfr,
    sim_model_grid,
    star_band_fluxes_filters,
)

SED_PARAMS = ("tau_main_gyr", "age_gyr", "f_burst", "av_ism", "mu", "umin", "qpah", "gamma")


@pytest.fixture(scope="module")
def sky():
    return simulate_sky(seed=21, area_deg2=0.01)


@pytest.fixture(scope="module")
def grid():
    return sim_model_grid(BANDS)


def test_fluxes_match_a_model_built_at_the_exact_redshift(sky, grid):
    """Between redshift nodes the simulator interpolates; a one-model grid built at the
    galaxy's own redshift (no interpolation) gives the same fluxes to 2 %."""
    g = sky.galaxies
    rng = np.random.default_rng(0)
    # bright enough in every band that interpolation, not zero flux, is being tested
    ok = g.z.between(0.2, 3.0) & (g.f_megacam_u > 0.1) & (g.l_dust_lsun > 0)
    for row in g[ok].iloc[rng.choice(ok.sum(), 4, replace=False)].itertuples():
        cfg = {k: v for k, v in SIM_GRID.items() if k not in SED_PARAMS + ("frac_agn",)}
        cfg.update({k: (getattr(row, k),) for k in SED_PARAMS})
        cfg["redshifts"] = (float(row.z),)
        one = make_grid(GridConfig(bands=BANDS, **cfg))
        expect = one.fluxes_mjy[0, 0].astype(float) * 1e3 * row.mass_formed_msun
        got = np.array([getattr(row, f"f_{b}") for b in BANDS])
        np.testing.assert_allclose(got, expect, rtol=0.02, err_msg=f"z={row.z}")
        # the physical truth is the model's per-unit-mass value times the normalisation
        assert row.mstar_msun == pytest.approx(one.props["mstar"][0] * row.mass_formed_msun)
        assert row.l_dust_lsun == pytest.approx(one.props["l_dust"][0] * row.mass_formed_msun)
        assert row.sfr_msun_yr == pytest.approx(one.props["sfr"][0] * row.mass_formed_msun)


def test_fluxes_at_a_node_are_the_grid_values(grid):
    """At a node the interpolation returns the stored model exactly."""
    from skysense.sim.sedmodel import model_fluxes_mjy

    k = 40
    z = np.full(3, grid.redshifts[k])
    models = np.array([0, 17, grid.n_models - 1])
    np.testing.assert_allclose(
        model_fluxes_mjy(grid, z, models), grid.fluxes_mjy[k, models], rtol=1e-6
    )


def test_i_band_is_the_drawn_magnitude_and_parameters_are_grid_nodes(sky, grid):
    g = sky.galaxies
    np.testing.assert_allclose(ujy_to_ab_mag(g.f_suprime_i.to_numpy()), g.i_mag, atol=1e-9)
    for name in ("tau_main_gyr", "age_gyr", "av_ism", "umin"):
        assert set(np.unique(g[name])) <= set(np.unique(grid.params[name])), name
    np.testing.assert_array_equal(grid.params["av_ism"][g.grid_model], g.av_ism)
    # no galaxy is older than the Universe at its redshift
    from astropy.cosmology import Planck18

    assert np.all(g.age_gyr < Planck18.age(g.z.to_numpy()).to_value("Gyr"))


def test_population_follows_the_main_sequence(sky):
    """Star-forming galaxies scatter about the Speagle et al. (2014) main sequence they were
    drawn from (0.3 dex, widened by snapping to grid SFHs); quiescent ones lie far below."""
    g = sky.galaxies
    offset = np.log10(g.sfr_msun_yr / g.mstar_msun) - main_sequence_log_ssfr(
        np.log10(g.mstar_msun), g.z
    )
    sf = ~g.red.to_numpy()
    assert abs(np.median(offset[sf])) < 0.15
    assert 0.2 < np.std(offset[sf]) < 0.6
    assert np.median(offset[~sf]) < -1.0
    # dust luminosity by energy balance: more attenuated galaxies re-emit a larger share of
    # their star formation's light (at fixed SFR)
    sf_dusty = sf & (g.av_ism >= 0.75)
    sf_clear = sf & (g.av_ism <= 0.2)
    ratio = np.log10(g.l_dust_lsun / g.sfr_msun_yr)
    assert np.median(ratio[sf_dusty]) > np.median(ratio[sf_clear]) + 0.3


def test_models_share_positions_magnitudes_and_sizes():
    a = simulate_sky(seed=8, area_deg2=0.003)
    b = simulate_sky(seed=8, area_deg2=0.003, sed_model="blackbody")
    for col in ("object_id", "ra", "dec", "z", "i_mag", "red", "r_half_arcsec"):
        np.testing.assert_array_equal(a.galaxies[col].to_numpy(), b.galaxies[col].to_numpy())
    np.testing.assert_array_equal(a.stars.ra.to_numpy(), b.stars.ra.to_numpy())
    # black-body galaxies know their dust luminosity only
    assert b.objects.mstar_msun.isna().all() and (b.galaxies.l_dust_lsun > 0).all()
    assert (a.galaxies.mstar_msun > 0).all()
    c = simulate_sky(seed=8, area_deg2=0.003)
    assert a.objects.equals(c.objects)


def test_unknown_sed_model_is_an_input_error():
    with pytest.raises(InputError, match="sed_model"):
        simulate_sky(seed=1, area_deg2=0.001, sed_model="cigale")


def test_star_colours_match_sedpy_synthetic_photometry():
    """Black-body stars through the filter curves against sedpy's own integration (getSED)."""
    import sedpy.observate

    bands = ("megacam_u", "megacam_g", "suprime_i", "ukidss_k", "irac_i1")
    temps = np.array([3300.0, 5000.0, 6400.0])
    ours = star_band_fluxes_filters(np.full(3, 20.0), temps, bands)
    lam = np.geomspace(2000.0, 6e4, 40000)
    f_lambda = np.stack([lam**-5 / np.expm1(1.438776877e8 / (lam * t)) for t in temps])
    filters = [sedpy.observate.Filter(HELP_TO_SEDPY[b]) for b in bands]
    mags = sedpy.observate.getSED(lam, f_lambda, filterlist=filters)
    for k, b in enumerate(bands):
        ours_colour = ujy_to_ab_mag(ours[b]) - ujy_to_ab_mag(ours["suprime_i"])
        ref_colour = mags[:, k] - mags[:, bands.index("suprime_i")]
        np.testing.assert_allclose(ours_colour, ref_colour, atol=2e-3, err_msg=b)
