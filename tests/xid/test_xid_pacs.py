"""PACS 100/160 um in XID+, as HELP fitted them: alone, jointly with MIPS and SPIRE, in the SED
mode, from the CLI, in tiles, and published by the VO (SIA discovery and a SODA cutout).

The maps are the simulator's (:data:`skysense.sim.DEFAULT_MAPS`); every check is against the
simulation's truth (injected fluxes) or an independent computation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from skysense.sim import DEFAULT_MAPS, make_maps, simulate_sky
from skysense.sim.maps import map_sources
from skysense.sim.sky import truth_table
from skysense.xid.fit import fit, fit_sed_maps
from skysense.xid.skymap import SkyMap, moc_pixel_mask

PACS = ("pacs_green", "pacs_red")
ALL = ("mips_24", "pacs_green", "pacs_red", "spire_250", "spire_350", "spire_500")


@pytest.fixture(scope="module")
def sim():
    """A 0.004 deg^2 simulated field with its six maps and every injected source (mJy)."""
    sky = simulate_sky(seed=9, area_deg2=0.004)
    maps = make_maps(sky, DEFAULT_MAPS, seed=9)
    skies = {
        b: SkyMap(b, m.image.astype(float), m.error.astype(float), m.wcs, m.spec.fwhm_arcsec)
        for b, m in maps.items()
    }
    z = truth_table(sky).set_index("object_id")["z"]
    truth = map_sources(sky)
    truth = truth.assign(z=z.loc[truth["object_id"]].to_numpy()).rename(columns={"object_id": "id"})
    return maps, skies, truth


def _interval_coverage(cat: pd.DataFrame, true: np.ndarray, band: str) -> float:
    b = band.upper()
    lo, hi = cat[f"FErr_{b}_l"].to_numpy(), cat[f"FErr_{b}_u"].to_numpy()
    return float(np.mean((true >= lo) & (true <= hi)))


def test_pacs_alone_covers_the_injected_fluxes(sim):
    """Both PACS maps, every source above ~0.3 sigma listed; PACS is not confusion-limited
    (confusion 0.5 / 2.5 mJy/beam against 5.1 / 8.6 mJy/beam of noise), so the unlisted
    fainter sources barely matter and the 68% intervals must hold ~68% of the true fluxes."""
    _, skies, truth = sim
    prior = truth[(truth.f_pacs_green > 0.5) | (truth.f_pacs_red > 1.0)].reset_index(drop=True)
    assert len(prior) > 120
    res = fit(
        [skies[b] for b in PACS],
        prior[["id", "ra", "dec"]],
        n_samples=500,
        n_warmup=300,
        n_chains=2,
        random_state=1,
    )
    cat = res.catalogue()
    assert len(cat) == len(prior)
    for band in PACS:
        true = prior[f"f_{band}"].to_numpy()
        cover = _interval_coverage(cat, true, band)
        # binomial sd over ~150 sources is 0.038: 0.58-0.85 is about -2.6..+4.5 sd of 68%
        assert 0.58 <= cover <= 0.85, (band, cover)
        med = cat[f"F_{band.upper()}"].to_numpy()
        bright = true > 10.0  # > 3 sigma of the point-source noise in both bands
        assert bright.sum() >= 5
        assert np.median(np.abs(med[bright] / true[bright] - 1.0)) < 0.3
        # no systematic offset of the bright fluxes: the median ratio is 1 within 15%
        assert abs(np.median(med[bright] / true[bright]) - 1.0) < 0.15


def test_joint_mips_pacs_spire_fit(sim):
    """The six HELP maps fitted on one MIPS-selected prior list (as HELP's DMU 26 did)."""
    _, skies, truth = sim
    prior = truth[truth.f_mips_24 > 0.05].reset_index(drop=True)
    res = fit(
        [skies[b] for b in ALL],
        prior[["id", "ra", "dec"]],
        n_samples=400,
        n_warmup=300,
        n_chains=2,
        random_state=2,
    )
    cat = res.catalogue()
    assert len(cat) == len(prior)
    for band in ALL:
        b = band.upper()
        for col in (f"F_{b}", f"FErr_{b}_u", f"FErr_{b}_l", f"Bkg_{b}", f"Rhat_{b}"):
            assert col in cat.columns, col
        true, med = prior[f"f_{band}"].to_numpy(), cat[f"F_{b}"].to_numpy()
        assert np.all(np.isfinite(med))
        # the brightest sources of every band are recovered (SPIRE: confusion-limited, looser)
        top = np.argsort(true)[-5:]
        tol = 0.35 if band.startswith("spire") else 0.25
        assert np.median(np.abs(med[top] / true[top] - 1.0)) < tol, band
    for band in PACS:
        cover = _interval_coverage(cat, prior[f"f_{band}"].to_numpy(), band)
        assert 0.5 <= cover <= 0.9, (band, cover)


def _dust_templates(bands, z_grid):
    """Modified black bodies (beta 1.5) of 25, 35 and 45 K, observed at z: mJy at norm 0."""
    h_over_k, c_um_hz = 4.799243073e-11, 2.99792458e14
    lam = {"mips_24": 23.68, "pacs_green": 100.0, "pacs_red": 160.0, "spire_250": 250.0}
    lam.update({"spire_350": 350.0, "spire_500": 500.0})
    out = []
    for t in (25.0, 35.0, 45.0):
        nu = c_um_hz / np.array([lam[b] for b in bands])[None, :] * (1 + z_grid[:, None])
        x = h_over_k * nu / t
        s = nu**1.5 * nu**3 / np.expm1(x)
        # Wien side too steep for 24 um: the mid-infrared power law nu^-2 of warm dust
        s = np.maximum(
            s, s.max(axis=1, keepdims=True) * (nu / nu.min(axis=1, keepdims=True)) ** -2 * 1e-3
        )
        out.append(s / s.max() * 10.0)
    return np.stack(out)


@pytest.mark.slow  # numpyro NUTS over six bands: about a minute on an idle core
def test_sed_mode_fits_pacs_with_mips_and_spire(sim):
    """SED mode (XID+IR-SED) over the six bands: PACS tied to MIPS and SPIRE by templates."""
    from skysense.xid.model import ConfusionPrior
    from skysense.xid.sed import SEDTemplates

    maps, skies, truth = sim
    # a small region around the map centre keeps NUTS short: 40" radius
    spec = maps["spire_250"]
    ny, nx = spec.image.shape
    c_ra, c_dec = spec.wcs.wcs_pix2world((nx - 1) / 2, (ny - 1) / 2, 0)
    d = np.hypot((truth.ra - c_ra) * math.cos(math.radians(c_dec)), truth.dec - c_dec) * 3600
    prior = truth[(d < 40.0) & (truth.f_pacs_red > 3.0)].reset_index(drop=True)
    assert 1 <= len(prior) <= 10, len(prior)
    z = np.linspace(0.05, 4.0, 80)
    tpl = SEDTemplates(z, _dust_templates(list(ALL), z), list(ALL))
    import astropy.units as u
    from mocpy import MOC

    region = MOC.from_cone(
        lon=float(c_ra) * u.deg, lat=float(c_dec) * u.deg, radius=50 * u.arcsec, max_depth=14
    )
    # redshifts: the truth's (HELP used photo-zs), inside the template grid
    prior = prior.assign(z=np.clip(prior["z"].to_numpy(), 0.05, 4.0))
    res = fit_sed_maps(
        [skies[b] for b in ALL],
        prior[["id", "ra", "dec", "z"]],
        templates=tpl,
        region_moc=region,
        # no sigma_conf: fewer parameters and shorter NUTS trees (only PACS is checked)
        conf_priors={b: ConfusionPrior("none") for b in ALL},
        n_samples=100,
        n_warmup=100,
        n_chains=1,
        random_state=3,
    )
    cat = res.catalogue()
    for band in PACS:
        col = f"F_{band.upper()}"
        assert col in cat.columns
        true, med = prior[f"f_{band}"].to_numpy(), cat[col].to_numpy()
        assert np.all(np.isfinite(med)) and np.all(med > 0)
        # the brightest PACS source's flux within 40% (the templates are not the sim's SEDs)
        k = int(np.argmax(true))
        assert med[k] == pytest.approx(true[k], rel=0.4)


@pytest.mark.parametrize("buffer_arcsec", [10.0, 30.0])
def test_tile_cut_equals_the_whole_map_mask(sim, buffer_arcsec):
    """Tiles cut each map to the box around their MOC grown by the band's pixel ring: the
    same pixels, values and sky positions as masking the whole map (brute force), for the
    PACS maps and the others. The ring is twice the band's FWHM, capped at the tile's buffer:
    with 30" MIPS and PACS keep fewer pixels than the tile's MOC holds."""
    from skysense.xid.engine import _tile_maps
    from skysense.xid.tiles import make_tiles

    _, skies, truth = sim
    prior = truth[truth.f_mips_24 > 0.05]
    tiles = make_tiles(prior.ra.to_numpy(), prior.dec.to_numpy(), sources_per_tile=15,
                       buffer_arcsec=buffer_arcsec)  # fmt: skip
    assert len(tiles) >= 4
    smaller = narrower = 0
    for tile in tiles[:4]:
        cut = {m.band: m for m in _tile_maps(tile, list(skies.values()), None)}
        for band, sky in skies.items():
            ring = min(buffer_arcsec, 2.0 * sky.fwhm_arcsec)  # independent of the engine's rule
            full = moc_pixel_mask(tile.moc(ring), sky.wcs, sky.image_mjy.shape) & sky.good
            whole = moc_pixel_mask(tile.moc(), sky.wcs, sky.image_mjy.shape) & sky.good
            narrower += int(full.sum() < whole.sum())
            sub = cut[band]
            assert sub.image_mjy.shape[0] <= sky.image_mjy.shape[0]
            smaller += sub.image_mjy.size < sky.image_mjy.size
            got = np.isfinite(sub.image_mjy)
            assert got.sum() == full.sum()
            np.testing.assert_array_equal(sub.image_mjy[got], sky.image_mjy[full])
            yy, xx = np.nonzero(full)
            ys, xs = np.nonzero(got)
            a = np.array(sky.wcs.pixel_to_world_values(xx, yy))
            b = np.array(sub.wcs.pixel_to_world_values(xs, ys))
            np.testing.assert_allclose(a, b, atol=1e-10)
    if buffer_arcsec == 10.0:
        assert smaller >= 12  # the cut is a real cut for most tiles and bands
        assert narrower == 0  # every beam is wider than 5": the ring is the tile's buffer
    else:  # MIPS 24, PACS 100 and 160 (FWHM 5.9, 6.8, 11.4") on each of the 4 tiles
        assert narrower == 12


def test_cli_fit_accepts_pacs_maps(sim, tmp_path, capsys):
    from skysense.cli.__main__ import main

    maps, _, truth = sim
    args = []
    for band in PACS:
        maps[band].hdulist().writeto(tmp_path / f"{band}.fits")
        args += ["--map", str(tmp_path / f"{band}.fits"), "--band", band]
    prior = truth[truth.f_pacs_green > 3.0][["id", "ra", "dec"]]
    prior.to_csv(tmp_path / "prior.csv", index=False)
    rc = main(["xid", "fit", *args, "--prior", str(tmp_path / "prior.csv"),
               "--out", str(tmp_path / "out"), "--samples", "200", "--warmup", "200"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    with fits.open(tmp_path / "out" / "catalogue.fits") as hdul:
        names = hdul[1].columns.names
    assert "F_PACS_GREEN" in names and "F_PACS_RED" in names


def test_xid_catalogue_metadata_names_the_pacs_bands():
    from skysense.pipeline.metadata import xid_meta

    meta = xid_meta(["F_PACS_GREEN", "FErr_PACS_RED_u", "F_SPIRE_250"])["columns"]
    assert meta["F_PACS_GREEN"]["ucd"] == "phot.flux.density;em.IR.60-100um"
    assert meta["FErr_PACS_RED_u"]["ucd"] == "stat.error;phot.flux.density;em.IR.100-200um"
    assert meta["F_PACS_GREEN"]["unit"] == "mJy"


# starlette's TestClient over httpx (the ASGI app in-process) warns that it is deprecated
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_vo_publishes_pacs_maps_and_serves_a_cutout(sim, tmp_path):
    """A published PACS map is found by SIA (BAND at 100 um) and SODA cuts it exactly."""
    import io

    from starlette.testclient import TestClient

    from skysense.vo.app import create_app
    from skysense.vo.backends import open_backend
    from skysense.vo.maps import list_maps, publish_map
    from skysense.vo.settings import Settings

    maps, _, _ = sim
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        for band in ("pacs_green", "pacs_red", "spire_250"):
            maps[band].hdulist().writeto(tmp_path / f"{band}.fits")
            publish_map(backend, tmp_path / f"{band}.fits", name=band, description=band)
        info = {m.name: m for m in list_maps(backend)}
        assert (info["pacs_green"].facility, info["pacs_green"].instrument) == ("Herschel", "PACS")
        assert info["pacs_red"].em_min_m < 1.6e-4 < info["pacs_red"].em_max_m
        app = create_app(Settings(db=str(tmp_path / "vo.duckdb"), workdir=str(tmp_path / "w")),
                         backend=backend)  # fmt: skip
        spec = maps["pacs_green"]
        ny, nx = spec.image.shape
        ra, dec = (float(v) for v in spec.wcs.wcs_pix2world((nx - 1) / 2, (ny - 1) / 2, 0))
        with TestClient(app) as client:
            r = client.get("/sia/query", params={"POS": f"CIRCLE {ra} {dec} 0.01",
                                                 "BAND": "9e-5 1.1e-4"})  # fmt: skip
            assert r.status_code == 200
            assert b"pacs_green" in r.content and b"pacs_red" not in r.content
            r = client.get("/soda/sync", params={"ID": "pacs_green",
                                                 "CIRCLE": f"{ra} {dec} 0.005"})  # fmt: skip
            assert r.status_code == 200, r.text
            with fits.open(io.BytesIO(r.content)) as got:
                img = got["IMAGE"].data
                x0, y0 = got["IMAGE"].header["SSXORIG"], got["IMAGE"].header["SSYORIG"]
                assert got["IMAGE"].header["BAND"] == "pacs_green"
        # the cutout is the parent's pixels, and about 2 x 18" / 1.7" pixels across
        np.testing.assert_array_equal(
            img, spec.image[y0 : y0 + img.shape[0], x0 : x0 + img.shape[1]]
        )
        assert abs(img.shape[1] - 2 * 18.0 / 1.7) <= 3
    finally:
        backend.close()
