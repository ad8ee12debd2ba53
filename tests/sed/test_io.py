import numpy as np
import pandas as pd
import pytest

from skysense.errors import InputError
from skysense.sed import io
from skysense.sed.grid import GridConfig

BANDS = ("megacam_g", "megacam_r", "ukidss_k", "irac_i1", "spire_250")


def test_real_physics_loads():
    ssp = io.load_ssp(1.0)
    assert ssp.lum.shape == (ssp.age_yr.size, ssp.wavelength_aa.size)
    assert np.all(np.diff(ssp.age_yr) > 0)
    dust = io.load_dust()
    assert dust.delta.shape == (11, 22, dust.wavelength_aa.size)
    t = io.igm_inoue14(np.array([1000.0, 1100.0, 1300.0]), 4.0)
    assert 0 < t[0] < t[1] < 1 and t[2] == 1
    fs = io.load_filters(BANDS)
    assert [f.name for f in fs] == list(BANDS)
    assert 3.3 < fs[3].pivot_um < 3.7 and 230 < fs[4].pivot_um < 270
    with pytest.raises(InputError, match="unknown filter 'megacam_q'"):
        io.load_filters(["megacam_q"])


def test_grid_cache_roundtrip_and_rebuild(tmp_path):
    cfg = GridConfig(
        bands=BANDS, redshifts=(0.5,), tau_main_gyr=(1.0,), age_gyr=(1.0, 2.0), av_ism=(0.2,)
    )
    g1 = io.cached_grid(cfg, tmp_path)
    g2 = io.load_grid(next(tmp_path.iterdir()))
    np.testing.assert_array_equal(g1.fluxes_mjy, g2.fluxes_mjy)
    assert g2.params.keys() == g1.params.keys() and g2.fingerprint == g1.fingerprint
    cfg2 = GridConfig(
        bands=BANDS, redshifts=(0.5,), tau_main_gyr=(1.0,), age_gyr=(1.0, 2.0), av_ism=(0.4,)
    )
    g3 = io.cached_grid(cfg2, tmp_path)
    assert g3.fingerprint != g1.fingerprint and len(list(tmp_path.iterdir())) == 2
    with pytest.raises(InputError, match="not a skysense SED grid"):
        io.load_grid(tmp_path / "nothing")


def test_read_photometry_and_spectra(tmp_path):
    frame = pd.DataFrame({"help_id": ["a", "b"], "z": [0.5, 1.0], "f_megacam_g": [10.0, 20.0],
                          "ferr_megacam_g": [1.0, 2.0], "f_spire_250": [5000.0, np.nan],
                          "ferr_spire_250": [2000.0, np.nan], "flag_ul_spire_250": [True, False]})  # fmt: skip
    ids, z, f, e, up = io.read_photometry(frame, BANDS, z_column="z")
    assert f[0, 0] == pytest.approx(0.01) and np.isnan(f[0, 1]) and up[0, 4] and not up[1, 4]
    with pytest.raises(InputError, match="no column 'zphot'"):
        io.read_photometry(frame, BANDS, z_column="zphot")
    bad = frame.drop(columns="ferr_megacam_g")
    with pytest.raises(InputError, match="ferr_megacam_g"):
        io.read_photometry(bad, BANDS, z_column="z")
    lam = np.geomspace(0.1, 1000, 50)
    io.write_spectra(
        np.array(["a", "b"]), np.tile(lam, (2, 1)), np.ones((2, 50)), tmp_path / "s.parquet"
    )
    row = io.read_spectra(tmp_path / "s.parquet", "b")
    assert len(row) == 1 and len(row["fnu_mjy"].iloc[0]) == 50
    with pytest.raises(InputError, match="no spectrum"):
        io.read_spectra(tmp_path / "s.parquet", "zz")


def test_nebular_emission_reprocesses_the_ionising_light():
    from skysense.sed import models

    neb = io.load_nebular(1.0, -2.5)
    ssp = io.load_ssp(1.0)
    lam = np.geomspace(100, 1e6, 20000)
    spec = models.nebular_spectrum(neb, lam, 1e9, 1e9)
    # Cloudy without grains: the gas re-emits the Lyman-continuum energy of the young stars
    mass = models.delayed_sfh_masses(np.minimum(ssp.age_edges_yr, models.T_BC_YR), 1e9, 1e9)
    below = ssp.wavelength_aa < 911.8
    lyc = mass @ np.array(
        [np.trapezoid(np.where(below, row, 0), ssp.wavelength_aa) for row in ssp.lum]
    )
    assert np.trapezoid(spec, lam) == pytest.approx(lyc, rel=0.05)
    # H-alpha stands out of the continuum
    i = np.argmin(np.abs(lam - 6562.8))
    assert spec[i] > 100 * np.median(spec[i - 20 : i + 20])


def test_grid_with_nebular_lines(tmp_path):
    base = dict(bands=("megacam_g", "megacam_r", "megacam_i", "ukidss_k", "irac_i1"), redshifts=(0.1,),
                tau_main_gyr=(1.0,), age_gyr=(0.3,), av_ism=(0.2,))  # fmt: skip
    plain = io.make_grid(GridConfig(**base))
    neb = io.make_grid(GridConfig(**base, nebular=True, logu=-2.0))
    ratio = neb.fluxes_mjy[0, 0] / plain.fluxes_mjy[0, 0]
    # H-alpha at z = 0.1 (7219 A) falls in MegaCam i: that band gains most
    assert np.argmax(ratio) == 2 and ratio[2] > 1.2
    assert neb.props["l_dust"][0] > plain.props["l_dust"][0]
    assert neb.fingerprint != plain.fingerprint
