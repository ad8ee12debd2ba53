import numpy as np
import pandas as pd
import pytest
from astropy.cosmology import Planck18

from skysense.sed.engine import fit_catalogue, fit_masterlist
from skysense.sed.fit import fit_photometry
from skysense.sed.grid import GridConfig, build_grid


@pytest.fixture(scope="module")
def grid(toy_ssp, toy_dust, toy_filters):
    cfg = GridConfig(bands=tuple(f.name for f in toy_filters), redshifts=(0.2, 0.4),
                     tau_main_gyr=(1.0, 3.0), age_gyr=(1.0, 3.0), av_ism=(0.2, 0.6), igm=False)  # fmt: skip
    return build_grid(cfg, toy_ssp, toy_dust, toy_filters, cosmology=Planck18)


def _mock(grid, n, rng):
    iz, model = rng.integers(0, 2, n), rng.integers(0, grid.n_models, n)
    true = grid.fluxes_mjy[iz, model].astype(float) * 1e10
    err = 0.05 * true
    return grid.redshifts[iz], true + rng.normal(size=true.shape) * err, err


def test_dask_chunks_equal_one_call(grid):
    rng = np.random.default_rng(0)
    z, f, e = _mock(grid, 50, rng)
    ids = np.array([f"o{i}" for i in range(50)])
    a = fit_catalogue(grid, ids, z, f, e, chunk_rows=7, scheduler="synchronous")
    b = fit_photometry(grid, f, e, z, ids=ids)
    # equal up to BLAS round-off (block sizes differ)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-6)


def test_fit_masterlist_merges_xid_and_counts_skips(grid):
    rng = np.random.default_rng(1)
    z, f, e = _mock(grid, 6, rng)
    ml = pd.DataFrame({"help_id": [f"H{i}" for i in range(6)], "zspec": [z[0], np.nan, np.nan, np.nan, np.nan, 3.0],
                       "zphot": [9.9, z[1], z[2], z[3], z[4], np.nan]})  # fmt: skip
    bands = grid.bands
    for j, b in enumerate(bands):
        if b == "b9":
            continue
        ml[f"f_{b}"] = f[:, j] * 1e3
        ml[f"ferr_{b}"] = e[:, j] * 1e3
    ml.loc[4, [f"f_{b}" for b in bands if b not in ("b9", "b1", "b2")]] = np.nan
    j9 = bands.index("b9")
    xid = pd.DataFrame({"HELP_ID": ["H0", "H2"], "F_B9": f[[0, 2], j9],
                        "FErr_B9_u": f[[0, 2], j9] + e[[0, 2], j9], "FErr_B9_l": f[[0, 2], j9] - e[[0, 2], j9]})  # fmt: skip
    table, wave, fnu, summary = fit_masterlist(grid, ml, xid, scheduler="synchronous")
    assert summary == {"n_objects": 6, "n_fitted": 4, "n_too_few_bands": 1, "n_redshift_outside_grid": 1,
                       "n_flag_energy_balance": int(table["flag_energy_balance"].sum())}  # fmt: skip
    assert list(table["help_id"]) == ["H0", "H1", "H2", "H3"]
    assert table["redshift"].iloc[0] == z[0]  # zspec wins over zphot
    assert list(table["n_bands"]) == [11, 10, 11, 10]  # XID+ adds b9 for H0 and H2
    assert wave.shape == fnu.shape == (4, grid.wave_out_aa.size)


def test_photoz_error_marginalised_through_dask_and_masterlist(grid):
    # fit_catalogue (and so the pipeline's fit_masterlist) must hand z_err to the fit: the
    # result equals fit_photometry's marginalised one and differs from a fixed redshift
    rng = np.random.default_rng(2)
    z, f, e = _mock(grid, 8, rng)
    e = 6 * e  # 30 % errors: the other redshift node keeps some weight
    ids = np.array([f"o{i}" for i in range(8)])
    z_err = np.full(8, 0.2)
    a = fit_catalogue(grid, ids, z, f, e, z_err=z_err, chunk_rows=3, scheduler="synchronous")
    b = fit_photometry(grid, f, e, z, z_err=z_err, ids=ids)
    fixed = fit_photometry(grid, f, e, z, ids=ids)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-6)
    assert np.max(np.abs(a["bayes_mstar"] - fixed["bayes_mstar"])) > 1e-3
    ml = pd.DataFrame({"help_id": ids, "zphot": z, "zphot_err": z_err})
    for j, band in enumerate(grid.bands):
        ml[f"f_{band}"], ml[f"ferr_{band}"] = f[:, j] * 1e3, e[:, j] * 1e3
    table = fit_masterlist(grid, ml, scheduler="synchronous")[0]
    np.testing.assert_allclose(table["bayes_mstar"], b["bayes_mstar"], rtol=1e-6)
    table = fit_masterlist(grid, ml, marginalise_photoz=False, scheduler="synchronous")[0]
    np.testing.assert_allclose(table["bayes_mstar"], fixed["bayes_mstar"], rtol=1e-6)
