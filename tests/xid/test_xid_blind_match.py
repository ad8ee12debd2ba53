"""Cross-match of blind sources with XID+ and masterlist catalogues."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysense.catalog.match import angular_sep_arcsec
from skysense.errors import InputError
from skysense.xid.blind.extract import extract_sources
from skysense.xid.blind.io import read_blind_catalogue, write_blind_catalogue
from skysense.xid.blind.match import match_blind, nearest_within
from skysense.xid.simulate import simulate_field


def _offset(ra, dec, east_arcsec, north_arcsec):
    return ra + east_arcsec / 3600 / np.cos(np.radians(dec)), dec + north_arcsec / 3600


def test_hand_checked_flags_nearest_and_fluxes():
    ra0, dec0 = 150.0, 2.0
    blind = pd.DataFrame(
        {"ra": [ra0, ra0 + 0.1, ra0 + 0.2], "dec": [dec0] * 3, "flux_mjy": [30.0, 20.0, 10.0]}
    )
    blind.attrs.update(fwhm_arcsec=18.0, band="spire_250")
    xra, xdec = _offset(np.array([ra0, ra0, ra0 + 0.1]), dec0, np.array([3.0, -6.0, 20.0]), 0.0)
    xid = pd.DataFrame(
        {"HELP_ID": ["a", "b", "c"], "RA": xra, "Dec": xdec, "F_SPIRE_250": [12.0, 9.0, 5.0]}
    )
    mra, mdec = _offset(np.array([ra0 + 0.1]), dec0, 0.0, 4.0)
    ml = pd.DataFrame({"help_id": ["m1"], "ra": mra, "dec": mdec})
    out = match_blind(blind, xid=xid, masterlist=ml)
    assert out.attrs["match_radius_arcsec"] == 9.0
    assert out.xid_id.tolist() == ["a", "", ""]
    assert out.n_xid.tolist() == [2, 0, 0]
    np.testing.assert_allclose(out.xid_sep_arcsec[0], 3.0, rtol=1e-6)
    assert out.xid_flux_mjy[0] == 12.0 and np.isnan(out.xid_flux_mjy[1])
    assert out.xid_flux_within_mjy.tolist() == [21.0, 0.0, 0.0]
    assert out.ml_id.tolist() == ["", "m1", ""]
    # source 2 has a masterlist counterpart only; source 3 has none at all
    assert out.no_prior_counterpart.tolist() == [False, False, True]
    only_xid = match_blind(blind, xid=xid, radius_arcsec=25.0)
    assert only_xid.no_prior_counterpart.tolist() == [False, False, True]
    assert only_xid.xid_id.tolist() == ["a", "c", ""]


def test_nearest_within_equals_brute_force():
    rng = np.random.default_rng(3)
    ra1, dec1 = rng.uniform(10, 10.2, 300), rng.uniform(-5, -4.8, 300)
    ra2, dec2 = rng.uniform(10, 10.2, 500), rng.uniform(-5, -4.8, 500)
    j, sep, count, _ = nearest_within(ra1, dec1, ra2, dec2, 20.0)
    d = angular_sep_arcsec(ra1[:, None], dec1[:, None], ra2[None, :], dec2[None, :])
    within = d <= 20.0
    np.testing.assert_array_equal(count, within.sum(1))
    has = within.any(1)
    assert has.sum() > 50 and (~has).sum() > 50
    np.testing.assert_array_equal(j[has], np.argmin(d, 1)[has])
    np.testing.assert_allclose(sep[has], d.min(1)[has], rtol=1e-9)
    assert (j[~has] == -1).all() and np.isnan(sep[~has]).all()
    j0, _, c0, _ = nearest_within(ra1, dec1, ra2[:0], dec2[:0], 20.0)
    assert (j0 == -1).all() and (c0 == 0).all()


def test_removed_prior_sources_are_flagged_on_a_simulated_map(tmp_path):
    f = simulate_field(
        60, size_pix=200, noise_mjy=2.0, flux_min_mjy=15, flux_max_mjy=100, random_state=8
    )
    blind = extract_sources(f.sky, snr_threshold=5)
    removed = f.sources.nlargest(5, "flux_true").id
    prior = f.sources[~f.sources.id.isin(removed)]
    ml = prior.rename(columns={"id": "help_id"})
    # through the files, as the CLI does
    write_blind_catalogue(blind, tmp_path / "b")
    back = read_blind_catalogue(tmp_path / "b.fits")
    assert back.attrs["fwhm_arcsec"] == pytest.approx(18.15)
    out = match_blind(back, masterlist=ml)
    truth = f.sources
    j, _, _, _ = nearest_within(
        out.ra.to_numpy(), out.dec.to_numpy(), truth.ra.to_numpy(), truth.dec.to_numpy(), 9.0
    )
    real = j >= 0
    is_removed = np.zeros(len(out), bool)
    is_removed[real] = np.isin(truth.id.to_numpy()[j[real]], removed.to_numpy())
    # every removed bright source is detected and flagged; kept ones are matched
    assert is_removed.sum() == 5
    assert out.no_prior_counterpart[is_removed].all()
    assert not out.no_prior_counterpart[real & ~is_removed].any()


def test_errors():
    blind = pd.DataFrame({"ra": [1.0], "dec": [2.0]})
    with pytest.raises(InputError, match="XID\\+ catalogue, a masterlist"):
        match_blind(blind)
    ml = pd.DataFrame({"help_id": ["x"], "ra": [1.0], "dec": [2.0]})
    with pytest.raises(InputError, match="radius"):
        match_blind(blind, masterlist=ml)
    with pytest.raises(InputError, match="no Dec column"):
        match_blind(blind, masterlist=ml.drop(columns="dec"), radius_arcsec=5)
    bad = pd.DataFrame({"ra": [1.0, np.nan], "dec": [2.0, 2.0]})
    with pytest.raises(InputError, match="row 1"):
        match_blind(bad, masterlist=ml, radius_arcsec=5)
