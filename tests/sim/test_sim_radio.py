"""The simulated radio survey: seeded, its positional errors are the ones it reports, its
fluxes follow the power law, and every source has its host in the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysense.catalog.radio.lr import ellipse_covariance, tangent_offsets_arcsec
from skysense.sim import simulate_sky
from skysense.sim.radio import RadioSpec, make_radio_catalogue


@pytest.fixture(scope="module")
def sky():
    return simulate_sky(seed=5, area_deg2=0.3, star_density_deg2=100.0)


def test_radio_catalogue_is_seeded_and_its_errors_are_honest(sky):
    spec = RadioSpec(density_deg2=8000.0, systematic_arcsec=0.0)
    cat, truth = make_radio_catalogue(sky, spec)
    cat2, truth2 = make_radio_catalogue(sky, spec)
    pd.testing.assert_frame_equal(cat, cat2)
    assert len(cat) > 1000 and (truth["radio_id"] == cat["radio_id"]).all()
    assert truth["object_id"].isin(sky.galaxies["object_id"]).all()
    assert truth["object_id"].is_unique
    # Offsets from the host against the reported ellipses: chi^2 with 2 dof, mean 2.
    e, n = tangent_offsets_arcsec(truth.ra, truth.dec, cat.ra, cat.dec)
    cee, cen, cnn = ellipse_covariance(cat.maj_err_arcsec, cat.min_err_arcsec, cat.pa_err_deg)
    det = cee * cnn - cen**2
    chi2 = (cnn * e * e - 2 * cen * e * n + cee * n * n) / det
    assert chi2.mean() == pytest.approx(2.0, abs=0.2)
    assert np.mean(chi2 <= 2 * np.log(2)) == pytest.approx(0.5, abs=0.05)  # median of chi2_2
    # Power-law true fluxes: the maximum-likelihood slope is the one asked for.
    s = truth["flux_ujy"].to_numpy() / spec.flux_min_ujy
    slope = 1 + len(s) / np.sum(np.log(s))
    assert slope == pytest.approx(spec.slope, abs=4 * (spec.slope - 1) / np.sqrt(len(s)))
    # Hosts prefer bright galaxies: their magnitudes centre on host_mag.
    assert truth["i_mag"].median() == pytest.approx(spec.host_mag[0], abs=0.5)
