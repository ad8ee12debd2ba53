"""End to end: simulated maps -> fit -> HELP catalogue, files, CLI; bad input reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from skysense.cli.__main__ import main
from skysense.errors import InputError
from skysense.xid.fit import fit, help_id, write_outputs
from skysense.xid.io import SkyMap
from skysense.xid.simulate import simulate_field


@pytest.fixture(scope="module")
def field():
    return simulate_field(40, size_pix=40, noise_mjy=1.0, flux_min_mjy=5, flux_max_mjy=60, margin_pix=3, random_state=11)


def test_fit_recovers_bright_fluxes_and_catalogue_format(field):
    prior = field.sources[["id", "ra", "dec"]]
    res = fit([field.sky], prior, n_samples=800, n_warmup=300, random_state=1)
    cat = res.catalogue()
    for col in ("HELP_ID", "RA", "Dec", "F_SPIRE_250", "FErr_SPIRE_250_u", "FErr_SPIRE_250_l", "Bkg_SPIRE_250",
                "Sig_conf_SPIRE_250", "Rhat_SPIRE_250", "n_eff_SPIRE_250", "Pval_res_SPIRE_250"):
        assert col in cat.columns
    truth = field.sources["flux_true"].to_numpy()
    bright = truth > 15
    rel = (cat["F_SPIRE_250"].to_numpy() - truth) / truth
    assert np.median(np.abs(rel[bright])) < 0.1
    assert np.all(cat["FErr_SPIRE_250_l"] <= cat["F_SPIRE_250"]) and np.all(cat["F_SPIRE_250"] <= cat["FErr_SPIRE_250_u"])
    inside = (truth >= cat["FErr_SPIRE_250_l"]) & (truth <= cat["FErr_SPIRE_250_u"])
    assert 0.45 < inside.mean() <= 1.0
    assert cat["Rhat_SPIRE_250"].max() < 1.05


def test_sources_outside_map_reported_not_dropped(field):
    prior = field.sources[["id", "ra", "dec"]].copy()
    far = pd.DataFrame({"id": ["far"], "ra": [prior.ra.iloc[0] + 1.0], "dec": [prior.dec.iloc[0]]})
    res = fit([field.sky], pd.concat([prior, far], ignore_index=True), n_samples=100, n_warmup=50, n_chains=2)
    cat = res.catalogue()
    assert len(cat) == len(prior) + 1
    assert res.unfitted["id"].tolist() == ["far"] and "outside" in res.unfitted["reason"].iloc[0]
    row = cat[cat["HELP_ID"] == "far"].iloc[0]
    assert np.isnan(row["F_SPIRE_250"]) and row["flag_xid_SPIRE_250"]


def test_duplicates_empty_region_and_bad_bounds(field):
    prior = field.sources[["id", "ra", "dec"]]
    dup = pd.concat([prior, prior.iloc[[3]].assign(id="copy")], ignore_index=True)
    with pytest.raises(InputError, match="identical beam columns"):
        fit([field.sky], dup, n_samples=10, n_warmup=5)
    res = fit([field.sky], dup, on_duplicate="keep", n_samples=20, n_warmup=5, n_chains=2)
    assert len(res.fitted["spire_250"]) == len(dup)
    nan_sky = SkyMap("spire_250", np.full_like(field.sky.image_mjy, np.nan), field.sky.error_mjy, field.sky.wcs)
    with pytest.raises(InputError, match="no usable pixel"):
        fit([nan_sky], prior)
    bad = prior.assign(flux_lower_spire_250=5.0, flux_upper_spire_250=1.0)
    with pytest.raises(InputError, match="lower"):
        fit([field.sky], bad)


def test_outputs_written(field, tmp_path):
    prior = field.sources[["id", "ra", "dec"]]
    res = fit([field.sky], prior, n_samples=100, n_warmup=50, n_chains=2)
    write_outputs(res, tmp_path)
    t = Table.read(tmp_path / "catalogue.fits")
    assert len(t) == len(prior) and str(t["F_SPIRE_250"].unit) == "mJy"
    assert len(pd.read_parquet(tmp_path / "catalogue.parquet")) == len(prior)
    pv = fits.getdata(tmp_path / "spire_250_pval_sigma.fits")
    assert np.nanmax(np.abs(pv)) <= 6.0
    assert (tmp_path / "spire_250_residual.png").stat().st_size > 1000
    import arviz as az

    idata = az.from_netcdf(tmp_path / "posterior.nc")
    assert idata.posterior["src_f_spire_250"].shape == (2, 100, len(prior))


def test_help_id_format():
    assert help_id(np.array([150.0]), np.array([-2.5]))[0] == "HELP_J100000.000-023000.000"


def test_cli_fit(field, tmp_path):
    from skysense.xid.io import write_image

    sky = field.sky
    write_image(sky.image_mjy, sky.wcs, tmp_path / "map.fits", unit="mJy/beam")
    write_image(sky.error_mjy, sky.wcs, tmp_path / "noise.fits", unit="mJy/beam")
    field.sources[["id", "ra", "dec"]].to_csv(tmp_path / "prior.csv", index=False)
    rc = main(["xid", "fit", "--map", str(tmp_path / "map.fits"), "--noise", str(tmp_path / "noise.fits"),
               "--band", "spire_250", "--prior", str(tmp_path / "prior.csv"), "--out", str(tmp_path / "out"),
               "--samples", "100", "--warmup", "50", "--chains", "2"])
    assert rc == 0
    cat = pd.read_parquet(tmp_path / "out" / "catalogue.parquet")
    assert len(cat) == 40 and cat["F_SPIRE_250"].notna().all()
    rc = main(["xid", "fit", "--map", str(tmp_path / "map.fits"), "--band", "spire_250",
               "--prior", str(tmp_path / "prior.csv"), "--out", str(tmp_path / "o2")])
    assert rc == 2  # no noise map: one-line error
