"""Blind extraction: matched filter noise, positions, fluxes, completeness, false rate, output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _xid_toy import FWHM_PIX, read_toy
from astropy.table import Table
from scipy import signal

from skysense.catalog.match import pairs_within
from skysense.errors import InputError
from skysense.xid.blind.extract import (
    estimate_confusion_mjy,
    extract_sources,
    find_peaks,
    matched_filter,
)
from skysense.xid.blind.io import write_blind_catalogue
from skysense.xid.simulate import simulate_field, tan_wcs
from skysense.xid.skymap import SkyMap

FWHM, PIX = 18.15, 6.0


def _match_brightest(df, truth, radius_arcsec):
    """Each detection -> the brightest true source within the radius (-1 when none)."""
    owner = np.full(len(df), -1)
    if len(df) == 0:
        return owner
    i1, i2, _ = pairs_within(
        df.ra.to_numpy(),
        df.dec.to_numpy(),
        truth.ra.to_numpy(),
        truth.dec.to_numpy(),
        radius_arcsec,
    )
    flux = truth.flux_true.to_numpy()
    for i in np.unique(i1):
        cand = i2[i1 == i]
        owner[i] = cand[np.argmax(flux[cand])]
    return owner


def test_plain_filter_equals_direct_convolution_and_unit_response():
    f = simulate_field(15, size_pix=80, noise_mjy=2.0, flux_min_mjy=5, random_state=0)
    img = f.sky.image_mjy
    fm = matched_filter(img, f.sky.error_mjy, FWHM, PIX)
    # Independent answer: real-space correlation with the peak-1 beam over sum(beam^2).
    r = np.arange(-15, 16) * PIX
    s = FWHM / 2.3548200450309493
    beam = np.exp(-0.5 * (r[:, None] ** 2 + r[None, :] ** 2) / s**2)
    direct = signal.fftconvolve(img - np.median(img), beam, mode="same") / np.sum(beam**2)
    np.testing.assert_allclose(fm.flux_mjy, direct, atol=1e-9)
    np.testing.assert_allclose(fm.error_mjy[20:-20, 20:-20], 2.0 / np.sqrt(np.sum(beam**2)))


def test_noise_only_filtered_snr_is_unit_normal_even_with_uneven_noise():
    rng = np.random.default_rng(1)
    err = np.full((240, 240), 1.0)
    err[:, 120:] = 3.0  # two depths: the error map must follow the local noise
    img = err * rng.standard_normal(err.shape)
    fm = matched_filter(img, err, FWHM, PIX)
    left, right = fm.snr[10:-10, 10:110], fm.snr[10:-10, 130:-10]
    assert np.std(left) == pytest.approx(1.0, abs=0.06)
    assert np.std(right) == pytest.approx(1.0, abs=0.06)
    assert np.median(fm.error_mjy[:, 130:-10]) == pytest.approx(
        3 * np.median(fm.error_mjy[:, :110])
    )


def test_single_source_exact_position_and_flux():
    f = simulate_field(
        1,
        size_pix=60,
        noise_mjy=1e-3,
        flux_min_mjy=100,
        flux_max_mjy=100.0001,
        margin_pix=20,
        random_state=3,
    )
    df = extract_sources(f.sky)
    assert len(df) == 1
    assert df.x_pix[0] == pytest.approx(f.sources.x[0], abs=1e-3)
    assert df.y_pix[0] == pytest.approx(f.sources.y[0], abs=1e-3)
    assert df.flux_mjy[0] == pytest.approx(100.0, rel=1e-3)
    assert df.ra[0] == pytest.approx(f.sources.ra[0], abs=1e-6)


def test_bright_isolated_sources_positions_and_fluxes_within_errors():
    pos_pull, flux_pull = [], []
    for seed in range(4):
        f = simulate_field(
            40,
            size_pix=200,
            noise_mjy=2.0,
            flux_min_mjy=10,
            flux_max_mjy=100,
            margin_pix=5,
            random_state=seed,
        )
        df = extract_sources(f.sky, snr_threshold=5)
        truth = f.sources
        i1, i2, _ = pairs_within(df.ra.values, df.dec.values, truth.ra.values, truth.dec.values, 6)
        m, t = df.iloc[i1], truth.iloc[i2]
        # isolated: no other injected source within 3 FWHM
        j1, _, _ = pairs_within(t.ra.values, t.dec.values, truth.ra.values, truth.dec.values, 55)
        iso = np.bincount(j1, minlength=len(t)) == 1
        cosd = np.cos(np.radians(t.dec.values))
        pos_pull += list(((m.ra.values - t.ra.values) * cosd * 3600 / m.ra_err.values)[iso])
        pos_pull += list(((m.dec.values - t.dec.values) * 3600 / m.dec_err.values)[iso])
        flux_pull += list(((m.flux_mjy.values - t.flux_true.values) / m.flux_err_mjy.values)[iso])
    pos_pull, flux_pull = np.array(pos_pull), np.array(flux_pull)
    assert len(flux_pull) > 80
    # errors are honest: pulls ~ N(0, 1)
    assert 0.8 < np.std(pos_pull) < 1.25 and abs(np.mean(pos_pull)) < 0.25
    assert 0.8 < np.std(flux_pull) < 1.25 and abs(np.mean(flux_pull)) < 0.6
    assert np.mean(np.abs(flux_pull) < 3) > 0.97


def test_pure_noise_false_detections_at_expected_rate():
    n_false_5, n_pix_3, n_pix = 0, 0, 0
    for seed in range(3):
        f = simulate_field(0, size_pix=200, noise_mjy=2.0, random_state=seed)
        n_false_5 += len(extract_sources(f.sky, snr_threshold=5))
        snr = matched_filter(f.sky.image_mjy, f.sky.error_mjy, FWHM, PIX).snr[10:-10, 10:-10]
        n_pix_3 += int(np.sum(snr > 3))
        n_pix += snr.size
    # 5 sigma: P = 2.9e-7 per pixel, ~0.03 expected over 1.2e5 pixels
    assert n_false_5 == 0
    # the tail at 3 sigma matches the Gaussian 1.35e-3 (pixels are correlated: loose bound)
    assert n_pix_3 / n_pix == pytest.approx(1.35e-3, rel=0.5)
    # a few 3-sigma peaks (about one per ~20 beams) but not more than the pixel tail allows
    f = simulate_field(0, size_pix=200, noise_mjy=2.0, random_state=9)
    assert 0 < len(extract_sources(f.sky, snr_threshold=3)) < 60


def test_confusion_filter_error_matches_scatter_in_confused_map():
    # Dense faint sources: confusion comparable to the instrumental noise.
    f = simulate_field(
        3000,
        size_pix=200,
        noise_mjy=1.0,
        flux_min_mjy=0.5,
        flux_max_mjy=50,
        random_state=5,
    )
    img, err = f.sky.image_mjy, f.sky.error_mjy
    conf = estimate_confusion_mjy(img, err)
    assert conf > 0.5
    inner = (slice(15, -15), slice(15, -15))

    def robust_std(x):
        return 1.4826 * np.median(np.abs(x - np.median(x)))

    plain = matched_filter(img, err, FWHM, PIX).snr[inner]
    chapin = matched_filter(img, err, FWHM, PIX, confusion_mjy=conf).snr[inner]
    assert robust_std(plain) > 1.4  # the instrumental-only error ignores confusion
    assert robust_std(chapin) == pytest.approx(1.0, abs=0.15)
    df = extract_sources(f.sky, snr_threshold=4, confusion_mjy=None)
    assert df.attrs["filter"] == "chapin2011" and df.attrs["confusion_mjy"] == pytest.approx(conf)


def test_completeness_and_reliability_versus_flux():
    f = simulate_field(
        800,
        size_pix=300,
        noise_mjy=2.0,
        flux_min_mjy=2,
        flux_max_mjy=150,
        margin_pix=3,
        random_state=11,
    )
    df = extract_sources(f.sky, snr_threshold=4, confusion_mjy=None)
    truth = f.sources
    owner = _match_brightest(df, truth, 0.5 * FWHM)
    found = np.zeros(len(truth), bool)
    found[owner[owner >= 0]] = True
    sigma = float(np.median(df.flux_err_mjy))
    flux = truth.flux_true.to_numpy()
    edges = np.array([2, 4, 6, 8, 10, 13, 16, 20, 30, 50, 150.0])
    idx = np.digitize(flux, edges) - 1
    comp = np.array([found[idx == k].mean() for k in range(len(edges) - 1)])
    # bright (> 10 sigma) sources are nearly all found (a few hide under brighter neighbours),
    # sub-2-sigma ones rarely; 50% completeness lies between 3 and 7 sigma.
    assert found[flux > 10 * sigma].mean() > 0.9
    assert np.all(comp[edges[1:] <= 2 * sigma] <= 0.25)
    mid = np.sqrt(edges[:-1] * edges[1:])
    k = int(np.argmax(comp >= 0.5))
    f50 = np.interp(0.5, comp[k - 1 : k + 1], mid[k - 1 : k + 1])
    assert 3 * sigma < f50 < 7 * sigma
    # reliability: a detection is real when its brightest counterpart holds >= half its flux
    real = (owner >= 0) & (flux[np.maximum(owner, 0)] >= 0.5 * df.flux_mjy.to_numpy())
    assert real.mean() > 0.9


def test_find_peaks_orders_by_snr_and_skips_edges():
    snr = np.zeros((20, 20))
    snr[5, 5], snr[10, 12], snr[0, 7] = 6.0, 9.0, 20.0
    iy, ix = find_peaks(snr, 5.0)
    assert list(zip(iy, ix)) == [(10, 12), (5, 5)]
    assert len(find_peaks(np.full((5, 5), np.nan), 1.0)[0]) == 0


def test_validation_errors():
    f = simulate_field(0, size_pix=30, random_state=0)
    with pytest.raises(InputError, match="snr_threshold"):
        extract_sources(f.sky, snr_threshold=-1)
    with pytest.raises(InputError, match="one shape"):
        matched_filter(np.zeros((3, 4)), np.ones((4, 3)), FWHM, PIX)
    with pytest.raises(InputError, match="no pixel"):
        matched_filter(np.full((5, 5), np.nan), np.ones((5, 5)), FWHM, PIX)
    nofwhm = SkyMap("spire_250", f.sky.image_mjy, f.sky.error_mjy, tan_wcs(30, 30, PIX), None)
    with pytest.raises(InputError, match="FWHM"):
        extract_sources(nofwhm)
    with pytest.raises(InputError, match="confusion"):
        matched_filter(np.zeros((5, 5)), np.ones((5, 5)), FWHM, PIX, confusion_mjy=-1)


def test_write_catalogue_fits_and_parquet_roundtrip(tmp_path):
    f = simulate_field(20, size_pix=80, flux_min_mjy=20, random_state=2)
    df = extract_sources(f.sky)
    assert len(df) > 5
    paths = write_blind_catalogue(df, tmp_path / "blind_250")
    assert [p.name for p in paths] == ["blind_250.fits", "blind_250.parquet"]
    t = Table.read(paths[0])
    assert str(t["ra_err"].unit) == "arcsec" and str(t["flux_mjy"].unit) == "mJy"
    assert t.meta["FWHM"] == pytest.approx(FWHM) and t.meta["BAND"] == "spire_250"
    np.testing.assert_allclose(np.asarray(t["flux_mjy"]), df.flux_mjy)
    back = pd.read_parquet(paths[1])
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    with pytest.raises(InputError, match="snr"):
        write_blind_catalogue(df.drop(columns="snr"), tmp_path / "x")
    # an empty catalogue is still a valid file
    empty = extract_sources(simulate_field(0, size_pix=40, random_state=0).sky)
    assert len(empty) == 0
    write_blind_catalogue(empty, tmp_path / "empty", formats=("parquet",))
    assert len(pd.read_parquet(tmp_path / "empty.parquet")) == 0


def test_psf_fit_deblends_a_neighbour_that_biases_the_filtered_flux():
    from skysense.xid.model import GaussianBeam, pointing_matrix

    n = 80
    x = np.array([30.3, 30.3 + 2.0 * FWHM / PIX])  # two FWHM apart: two filtered peaks
    y = np.array([40.6, 40.2])
    yy, xx = np.mgrid[0:n, 0:n]
    amat = pointing_matrix(x, y, xx.ravel(), yy.ravel(), GaussianBeam(FWHM), PIX, min_fraction=1e-6)
    rng = np.random.default_rng(0)
    img = (amat @ np.array([20.0, 100.0])).reshape(n, n) + 0.05 * rng.standard_normal((n, n))
    sky = SkyMap("spire_250", img, np.full((n, n), 0.05), tan_wcs(n, n, PIX), FWHM)
    df = extract_sources(sky).sort_values("x_pix").reset_index(drop=True)
    assert len(df) == 2
    faint = df.iloc[0]
    assert abs(faint.flux_mjy - 20.0) < 3 * faint.flux_err_mjy
    # the joint fit also removes the neighbour's pull on the position
    assert abs(faint.x_pix - x[0]) * PIX < 3 * faint.ra_err
    assert faint.flux_filter_mjy - 20.0 > 10 * faint.flux_err_mjy  # the neighbour's wing
    plain = extract_sources(sky, deblend=False).sort_values("x_pix")
    np.testing.assert_allclose(plain.flux_mjy.iloc[0], faint.flux_filter_mjy)


@pytest.mark.parametrize("example", ["eg3", "eg6"])
def test_toy_maps_completeness_and_flux_accuracy(shared_data, example):
    sky, src = read_toy(shared_data, example)
    df = extract_sources(sky, fwhm_arcsec=FWHM_PIX * sky.pixel_arcsec, snr_threshold=5)
    sigma = float(np.median(df.flux_err_mjy))
    # each detection -> brightest true source within 1.5 pixels (truth is on integer pixels)
    dist = np.hypot(
        df.x_pix.values[:, None] - src.X.values, df.y_pix.values[:, None] - src.Y.values
    )
    near = dist <= 1.5
    true = src.F.to_numpy()
    owner = np.where(near.any(1), np.argmax(np.where(near, true, -1.0), 1), -1)
    assert np.all(owner >= 0)  # every detection is real
    found = np.zeros(len(src), bool)
    found[owner] = True
    assert found[true > 10 * sigma].mean() == 1.0
    assert found[true > 5 * sigma].mean() >= 0.8
    bright = true[owner] > 10 * sigma
    rel = (df.flux_mjy.to_numpy() - true[owner]) / true[owner]
    assert np.median(np.abs(rel[bright])) < 0.05


def test_cli_blind_on_simulated_field(tmp_path):
    import pandas as pd

    from skysense.cli.__main__ import main
    from skysense.sim import write_field

    write_field(tmp_path / "field", seed=5, area_deg2=0.05)
    out = tmp_path / "blind250"
    code = main(
        [
            "xid",
            "blind",
            str(tmp_path / "field" / "maps" / "spire_250.fits"),
            "--band",
            "spire_250",
            "--snr",
            "5",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    cat = pd.read_parquet(f"{out}.parquet")
    assert len(cat) > 0 and (cat["snr_det"] >= 5).all()
    truth = pd.read_parquet(tmp_path / "field" / "truth" / "map_sources.parquet")
    # Every blind source lies within one beam FWHM of a true source brighter than 5 mJy.
    from skysense.catalog.match import pairs_within

    bright = truth[truth["f_spire_250"] > 5]
    i, _, _ = pairs_within(cat.ra, cat.dec, bright.ra, bright.dec, 18.15)
    assert len(set(i.tolist())) / len(cat) > 0.95
    assert (
        main(["xid", "blind", str(tmp_path / "nope.fits"), "--band", "spire_250", "-o", str(out)])
        == 2
    )
