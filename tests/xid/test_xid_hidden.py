"""Hidden sources: positive XID+ residuals found, added to the prior, refitted, recorded."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from skysense.errors import InputError
from skysense.xid.blind.match import nearest_within
from skysense.xid.fit import fit
from skysense.xid.hidden.io import write_hidden
from skysense.xid.hidden.search import find_hidden_sources, residual_candidates
from skysense.xid.io import write_map
from skysense.xid.simulate import simulate_field

FWHM = 18.15
FAST = {"n_samples": 300, "n_warmup": 200, "n_chains": 2}


@pytest.fixture(scope="module")
def field():
    return simulate_field(
        400, size_pix=150, noise_mjy=2.0, flux_min_mjy=1, flux_max_mjy=100, random_state=7
    )


def _prior(sources, drop=()):
    keep = (sources.flux_true > 3) & ~sources.id.isin(list(drop))
    return sources.loc[keep, ["id", "ra", "dec"]].reset_index(drop=True)


def test_removed_bright_sources_are_recovered_added_and_refitted(field):
    src = field.sources
    removed = src[src.flux_true > 20]
    assert len(removed) == 4
    prior = _prior(src, removed.id)
    h = find_hidden_sources([field.sky], prior, max_iter=4, random_state=1, **FAST)
    cand = h.candidates
    j, sep, _, _ = nearest_within(
        removed.ra.to_numpy(), removed.dec.to_numpy(), cand.ra.to_numpy(), cand.dec.to_numpy(), 9.0
    )
    assert (j >= 0).all()  # every removed source is a candidate within half a beam
    rec = cand.iloc[j]
    assert (rec.iteration == 1).all() and rec.added.all()
    assert (rec.snr > 10).all() and (rec.pval_sigma > 3).all()
    assert rec.reason.str.contains("added").all()
    true = removed.flux_true.to_numpy()
    # residual-map PSF flux, then the refitted XID+ flux, against the truth
    assert np.all(np.abs(rec.flux_mjy.to_numpy() - true) < 4 * rec.flux_err_mjy.to_numpy() + 1)
    np.testing.assert_allclose(rec.F_SPIRE_250.to_numpy(), true, rtol=0.15)
    assert np.all(rec.FErr_SPIRE_250_u.to_numpy() > rec.F_SPIRE_250.to_numpy())
    # the prior grew by exactly the added candidates, named by iteration
    added = cand[cand.added]
    assert len(h.prior) == len(prior) + len(added)
    assert set(h.prior.id[len(prior) :]) == set(added.id)
    assert added.id.str.match(r"HIDDEN_\d+_\d+$").all()
    assert h.converged and 2 <= h.n_fits <= 4
    assert cand.attrs["n_fits"] == h.n_fits
    # the final fit left nothing addable: the last iteration's candidates were not added
    assert not cand[cand.iteration == h.n_fits].added.any()


def test_complete_prior_leaves_no_candidate():
    # Every injected source is in the prior: the residual is pure instrumental noise.
    f = simulate_field(
        120, size_pix=120, noise_mjy=2.0, flux_min_mjy=3, flux_max_mjy=100, random_state=3
    )
    h = find_hidden_sources([f.sky], f.sources[["id", "ra", "dec"]], random_state=0, **FAST)
    assert len(h.candidates) == 0
    assert h.converged and h.n_fits == 1 and len(h.prior) == 120
    # a low threshold does find noise peaks, at about the Gaussian rate
    res = fit([f.sky], f.sources[["id", "ra", "dec"]], random_state=0, **FAST)
    low = residual_candidates(res, "spire_250", snr_threshold=3.0, pval_sigma_min=-10)
    assert 0 < len(low) < 25


def test_single_hidden_source_position_and_flux(field):
    src = field.sources
    target = src.loc[src.flux_true.idxmax()]
    res = fit([field.sky], _prior(src, [target.id]), random_state=2, **FAST)
    cand = residual_candidates(res, "spire_250")
    best = cand.iloc[0]
    assert best.snr > 20
    cosd = np.cos(np.radians(target.dec))
    d_arcsec = np.hypot((best.ra - target.ra) * cosd, best.dec - target.dec) * 3600
    assert d_arcsec < 4 * best.pos_err_arcsec + 0.5
    assert abs(best.flux_mjy - target.flux_true) < 4 * best.flux_err_mjy + 1
    assert best.nearest_prior_arcsec > 0.5 * FWHM
    assert cand.attrs["confusion_mjy"] >= 0 and cand.attrs["band"] == "spire_250"


def test_residual_at_a_prior_source_is_reported_but_not_added(field):
    src = field.sources
    prior = _prior(src)
    brightest = src.loc[src.flux_true.idxmax()]
    # an upper flux bound far too low: XID+ cannot explain the source's flux
    prior["flux_upper_spire_250"] = np.where(prior.id == brightest.id, 2.0, np.nan)
    h = find_hidden_sources([field.sky], prior, random_state=3, max_iter=3, **FAST)
    cand = h.candidates
    at = cand[cand.nearest_prior_id == brightest.id]
    assert len(at) >= 1
    top = at.iloc[0]
    assert not top.added and top.nearest_prior_arcsec < 0.5 * FWHM
    assert brightest.id in top.reason and "not added" in top.reason
    # nothing was added on top of it (XID+ could not split the two)
    added = cand[cand.added]
    _, sep, _, _ = nearest_within(
        added.ra.to_numpy(),
        added.dec.to_numpy(),
        np.array([brightest.ra]),
        np.array([brightest.dec]),
        0.5 * FWHM,
    )
    assert np.isnan(sep).all()


def test_no_refit_reports_candidates_only(field):
    src = field.sources
    prior = _prior(src, src.nlargest(2, "flux_true").id)
    h = find_hidden_sources([field.sky], prior, refit=False, random_state=4, **FAST)
    assert h.n_fits == 1 and not h.candidates.added.any()
    assert len(h.candidates) >= 2
    assert h.candidates.reason.str.contains("no refit").all()
    assert len(h.prior) == len(prior) and not h.converged


def test_write_hidden_and_cli(tmp_path, field):
    from astropy.table import Table

    from skysense.cli.__main__ import main

    src = field.sources
    prior = _prior(src, src.nlargest(3, "flux_true").id)
    write_map(dataclasses.replace(field.sky, fwhm_arcsec=FWHM), tmp_path / "psw.fits")
    prior.to_csv(tmp_path / "prior.csv", index=False)
    args = ["xid", "hidden", "--map", str(tmp_path / "psw.fits"), "--band", "spire_250"]
    args += ["--prior", str(tmp_path / "prior.csv"), "--samples", "300", "--warmup", "200"]
    args += ["--chains", "2", "--max-iter", "3", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    out = tmp_path / "out"
    table = pd.read_parquet(out / "hidden.parquet")
    assert table.added.sum() >= 3
    t = Table.read(out / "hidden.fits")
    assert str(t["ra"].unit) == "deg" and str(t["flux_mjy"].unit) == "mJy"
    assert str(t["F_SPIRE_250"].unit) == "mJy"
    grown = pd.read_parquet(out / "prior_hidden.parquet")
    assert len(grown) == len(prior) + int(table.added.sum())
    cat = pd.read_parquet(out / "catalogue.parquet")
    assert len(cat) == len(grown)  # the final XID+ catalogue includes the hidden sources
    bad = args[:6] + ["--prior", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x")]
    assert main(bad) == 2
    # the API writer gives the same files
    h = find_hidden_sources([field.sky], prior, refit=False, **FAST)
    written = write_hidden(h, tmp_path / "api", fit_outputs=False)
    assert [p.name for p in written["hidden"]] == ["hidden.fits", "hidden.parquet"]


def test_validation_errors(field):
    prior = _prior(field.sources)
    with pytest.raises(InputError, match="detect_band"):
        find_hidden_sources([field.sky], prior, detect_band="spire_500")
    with pytest.raises(InputError, match="max_iter"):
        find_hidden_sources([field.sky], prior, max_iter=0)
    again = prior.assign(id=[f"HIDDEN_1_{k}" for k in range(len(prior))])
    with pytest.raises(InputError, match="id_prefix"):
        find_hidden_sources([field.sky], again)
    res = fit([field.sky], prior, random_state=0, **FAST)
    with pytest.raises(InputError, match="not fitted"):
        residual_candidates(res, "spire_350")
    with pytest.raises(InputError, match="snr_threshold"):
        residual_candidates(res, "spire_250", snr_threshold=0)
