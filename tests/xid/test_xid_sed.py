"""SED-prior mode: two bands tied by a template recover the injected fluxes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysense.errors import InputError
from skysense.xid.model import ConfusionPrior, GaussianBeam, band_model, pointing_matrix
from skysense.xid.sed import SEDTemplates, fit_sed
from skysense.xid.simulate import tan_wcs


def _templates():
    z = np.linspace(0.1, 4.0, 40)
    # two smooth templates: band ratio 350/250 rising with z differently
    t1 = np.stack(
        [10.0 / (1 + z), 7.0 * (1 + 0.3 * z) / (1 + z), 4.0 * (1 + 0.6 * z) / (1 + z)], axis=-1
    )
    t2 = np.stack(
        [10.0 / (1 + z), 4.0 * (1 + 0.1 * z) / (1 + z), 1.5 * (1 + 0.2 * z) / (1 + z)], axis=-1
    )
    return SEDTemplates(z, np.stack([t1, t2]), ["mips_24", "spire_250", "spire_350"])


def test_sed_fit_recovers_fluxes_and_normalisation():
    rng = np.random.default_rng(0)
    tpl = _templates()
    nsrc = 4
    zs = rng.uniform(0.5, 2.5, nsrc)
    norm = rng.uniform(0.3, 1.0, nsrc)  # log10 scale
    true = {}
    for k, b in enumerate(tpl.bands):
        true[b] = 10**norm * np.interp(zs, tpl.z_grid, tpl.flux_mjy[0, :, k])
    wcs = tan_wcs(20, 20, 6.0)
    ra, dec = wcs.pixel_to_world_values(rng.uniform(4, 16, nsrc), rng.uniform(4, 16, nsrc))
    models = {}
    for b, fwhm, pix, noise in (
        ("mips_24", 6.0, 2.0, 0.2),
        ("spire_250", 18.0, 6.0, 1.0),
        ("spire_350", 25.0, 8.0, 1.0),
    ):
        n = int(120 / pix)
        w = tan_wcs(n, n, pix)
        x, y = w.world_to_pixel_values(ra, dec)
        yy, xx = np.mgrid[0:n, 0:n]
        a = pointing_matrix(x, y, xx.ravel(), yy.ravel(), GaussianBeam(fwhm), pix)
        d = a @ true[b] + noise * rng.standard_normal(a.shape[0])
        # no confusion noise in this small test: keeps NUTS's trees (and the test) short
        conf = ConfusionPrior("none")
        models[b] = band_model(
            b, a, d, np.full(a.shape[0], noise), flux_upper=np.full(nsrc, 200.0), conf_prior=conf
        )
    post = fit_sed(
        models,
        tpl,
        z_mean=zs,
        z_sigma=None,
        n_samples=150,
        n_warmup=150,
        n_chains=1,
        random_state=1,
    )
    assert post.flux.shape == (1, 150, nsrc, 3)
    for k, b in enumerate(tpl.bands):
        med = np.median(post.flux[..., k].reshape(-1, nsrc), axis=0)
        sd = post.flux[..., k].reshape(-1, nsrc).std(axis=0)
        assert np.all(np.abs(med - true[b]) < 4 * sd + 0.05 * true[b]), b
    ln = post.log_norm.reshape(-1, nsrc)
    assert np.all(np.abs(np.median(ln, 0) - norm) < 4 * ln.std(0) + 0.05)


def _sed_models(rng, tpl, nsrc, norm, zs):
    true = {}
    for k, b in enumerate(tpl.bands):
        true[b] = 10**norm * np.interp(zs, tpl.z_grid, tpl.flux_mjy[0, :, k])
    ra, dec = tan_wcs(20, 20, 6.0).pixel_to_world_values(
        rng.uniform(3, 17, nsrc), rng.uniform(3, 17, nsrc)
    )
    models = {}
    for b, fwhm, pix, noise in (("mips_24", 6.0, 2.0, 0.2), ("spire_250", 18.0, 6.0, 1.0)):
        n = int(120 / pix)
        x, y = tan_wcs(n, n, pix).world_to_pixel_values(ra, dec)
        yy, xx = np.mgrid[0:n, 0:n]
        a = pointing_matrix(x, y, xx.ravel(), yy.ravel(), GaussianBeam(fwhm), pix)
        d = a @ true[b] + noise * rng.standard_normal(a.shape[0])
        models[b] = band_model(
            b,
            a,
            d,
            np.full(a.shape[0], noise),
            flux_upper=np.full(nsrc, 200.0),
            conf_prior=ConfusionPrior("none"),
        )
    return models, true


def test_sed_hierarchical_normalisation_prior_learns_the_population():
    # the sources' log-normalisations are drawn from Normal(0.5, 0.25): the population's
    # mean and sd are sampled with them and recovered from the maps (simulation truth);
    # the flat prior (XID+IR-SED) has no population draws
    rng = np.random.default_rng(3)
    tpl = _templates()
    nsrc = 10
    norm = rng.normal(0.5, 0.25, nsrc)
    zs = rng.uniform(0.5, 2.5, nsrc)
    models, true = _sed_models(rng, tpl, nsrc, norm, zs)
    kw = {"z_mean": zs, "n_samples": 200, "n_warmup": 200, "n_chains": 1, "random_state": 2}
    post = fit_sed(models, tpl, **kw)
    mu, sd = post.pop_log_norm.ravel(), post.pop_log_norm_sd.ravel()
    assert abs(np.median(mu) - 0.5) < 4 * mu.std() + 0.05, (np.median(mu), mu.std())
    assert abs(np.median(sd) - 0.25) < 4 * sd.std() + 0.05, (np.median(sd), sd.std())
    for k, b in enumerate(tpl.bands[:2]):
        f = post.flux[..., k].reshape(-1, nsrc)
        assert np.all(np.abs(np.median(f, 0) - true[b]) < 4 * f.std(0) + 0.05 * true[b]), b
    flat = fit_sed(models, tpl, norm_prior="uniform", **kw)
    assert flat.pop_log_norm is None
    with pytest.raises(InputError, match="norm_prior"):
        fit_sed(models, tpl, norm_prior="lognormal", **kw)


def test_sed_bad_inputs():
    tpl = _templates()
    with pytest.raises(InputError, match="increasing"):
        SEDTemplates(tpl.z_grid[::-1], tpl.flux_mjy, tpl.bands)
    a = np.eye(3)
    m = {"pacs_100": band_model("pacs_100", a, np.ones(3), np.ones(3))}
    with pytest.raises(InputError, match="no fluxes for band"):
        fit_sed(m, tpl, z_mean=np.ones(3))


def _sed_field(tmp_path, nsrc=4, seed=0):
    """Three maps of the same sources tied by template 0; files for the CLI; the truth."""
    from skysense.xid.io import write_image

    rng = np.random.default_rng(seed)
    tpl = _templates()
    zs = rng.uniform(0.5, 2.5, nsrc)
    norm = rng.uniform(0.3, 1.0, nsrc)
    wcs = tan_wcs(20, 20, 6.0)
    ra, dec = wcs.pixel_to_world_values(rng.uniform(4, 16, nsrc), rng.uniform(4, 16, nsrc))
    args, truth = [], {}
    for k, (b, fwhm, pix, noise) in enumerate(
        (("mips_24", 6.0, 2.0, 0.2), ("spire_250", 18.0, 6.0, 1.0), ("spire_350", 25.0, 8.0, 1.0))
    ):
        truth[b] = 10**norm * np.interp(zs, tpl.z_grid, tpl.flux_mjy[0, :, k])
        n = int(120 / pix)
        w = tan_wcs(n, n, pix)
        x, y = w.world_to_pixel_values(ra, dec)
        yy, xx = np.mgrid[0:n, 0:n]
        a = pointing_matrix(x, y, xx.ravel(), yy.ravel(), GaussianBeam(fwhm), pix)
        img = (a @ truth[b] + noise * rng.standard_normal(a.shape[0])).reshape(n, n)
        write_image(img, w, tmp_path / f"{b}.fits", unit="mJy/beam")
        write_image(np.full((n, n), noise), w, tmp_path / f"{b}_err.fits", unit="mJy/beam")
        args += ["--map", str(tmp_path / f"{b}.fits"), "--noise", str(tmp_path / f"{b}_err.fits")]
        args += ["--band", b, "--fwhm", str(fwhm)]
    ids = [f"g{i}" for i in range(nsrc)]
    prior = pd.DataFrame({"id": ids, "ra": ra, "dec": dec, "zphot": zs})
    for b in truth:
        prior[f"flux_upper_{b}"] = 200.0
    prior.to_csv(tmp_path / "prior.csv", index=False)
    rows = []
    for t, name in enumerate(("warm", "cold")):
        for i, z in enumerate(tpl.z_grid):
            rows.append({"template": name, "z": z, **dict(zip(tpl.bands, tpl.flux_mjy[t, i]))})
    pd.DataFrame(rows).sample(frac=1.0, random_state=1).to_csv(tmp_path / "tpl.csv", index=False)
    args += ["--prior", str(tmp_path / "prior.csv"), "--templates", str(tmp_path / "tpl.csv")]
    args += ["--redshift-column", "zphot", "--conf-prior", "none", "--chains", "1"]
    args += ["--samples", "150", "--warmup", "150", "--seed", "1"]
    return args, truth, norm, ids


def test_cli_fit_sed_recovers_fluxes(tmp_path):
    from skysense.cli.__main__ import main

    args, truth, norm, ids = _sed_field(tmp_path)
    assert main(["xid", "fit-sed", *args, "--out", str(tmp_path / "out")]) == 0
    cat = pd.read_parquet(tmp_path / "out" / "catalogue.parquet").set_index("HELP_ID").loc[ids]
    for b, f in truth.items():
        B = b.upper()
        sd = (cat[f"FErr_{B}_u"] - cat[f"FErr_{B}_l"]).to_numpy() / 2
        assert np.all(np.abs(cat[f"F_{B}"].to_numpy() - f) < 4 * sd + 0.05 * f), b
    sd = (cat["SED_log_norm_u"] - cat["SED_log_norm_l"]).to_numpy() / 2
    assert np.all(np.abs(cat["SED_log_norm"].to_numpy() - norm) < 4 * sd + 0.05)
    assert (tmp_path / "out" / "posterior.nc").exists()
    assert (tmp_path / "out" / "spire_250_residual.fits").exists()


def test_cli_fit_sed_bad_inputs(tmp_path, capsys):
    from skysense.cli.__main__ import main

    args, *_ = _sed_field(tmp_path, nsrc=2)
    out = ["--out", str(tmp_path / "o")]
    bad = [a if a != "zphot" else "photoz" for a in args]
    assert main(["xid", "fit-sed", *bad, *out]) == 2
    assert "no redshift column 'photoz'" in capsys.readouterr().err
    tpl = pd.read_csv(tmp_path / "tpl.csv").drop(columns=["spire_350"])
    tpl.to_csv(tmp_path / "tpl.csv", index=False)
    assert main(["xid", "fit-sed", *args, *out]) == 2
    err = capsys.readouterr().err
    assert "no flux column for band(s) ['spire_350']" in err and "tpl.csv" in err
    prior = pd.read_csv(tmp_path / "prior.csv")
    prior.loc[1, "zphot"] = 9.0
    prior.to_csv(tmp_path / "prior.csv", index=False)
    pd.DataFrame(
        [
            {"template": "t", "z": z, "mips_24": 1.0, "spire_250": 1.0, "spire_350": 1.0}
            for z in (0.1, 4.0)
        ]
    ).to_csv(tmp_path / "tpl.csv", index=False)
    assert main(["xid", "fit-sed", *args, *out]) == 2
    err = capsys.readouterr().err
    assert "outside the template grid" in err and "'g1'" in err


def test_cli_fit_sed_runs_tile_by_tile(tmp_path):
    from skysense.cli.__main__ import main

    args, truth, _, ids = _sed_field(tmp_path, nsrc=4, seed=3)
    out = tmp_path / "tiled"
    # two tiles (1 + 3 sources); short chains: each tile compiles its own NUTS model
    tiled = ["--tiles", "--order", "11", "--buffer-arcsec", "40", "--samples", "100"]
    assert main(["xid", "fit-sed", *args, *tiled, "--out", str(out)]) == 0
    assert len(list((out / "tiles").glob("*.parquet"))) == 2
    cat = pd.read_parquet(out / "catalogue.parquet").set_index("HELP_ID")
    assert sorted(cat.index) == sorted(ids) and cat["xid_tile"].nunique() > 1
    cat = cat.loc[ids]
    for b, f in truth.items():
        B = b.upper()
        sd = (cat[f"FErr_{B}_u"] - cat[f"FErr_{B}_l"]).to_numpy() / 2
        assert np.all(np.abs(cat[f"F_{B}"].to_numpy() - f) < 4 * sd + 0.1 * f), b
