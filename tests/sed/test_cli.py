import numpy as np
import pandas as pd
import pytest

from skysense.cli.__main__ import main
from skysense.sed import io

CONFIG = """
grid:
  bands: [megacam_g, megacam_r, megacam_i, ukidss_k, irac_i1, mips_24, spire_250]
  redshifts: [0.3, 0.6]
  tau_main_gyr: [1.0, 5.0]
  age_gyr: [1.0, 4.0]
  av_ism: [0.2, 0.8]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sedcli")
    (tmp / "grid.yaml").write_text(CONFIG)
    assert main(["sed", "grid", str(tmp / "grid.yaml"), "--out", str(tmp / "grid")]) == 0
    grid = io.load_grid(tmp / "grid")
    rng = np.random.default_rng(2)
    n = 40
    iz, model = rng.integers(0, 2, n), rng.integers(0, grid.n_models, n)
    scale = 10 ** rng.uniform(9.5, 10.5, n) / grid.props["mstar"][model]
    f_ujy = grid.fluxes_mjy[iz, model] * scale[:, None] * 1e3
    e_ujy = 0.05 * f_ujy + 0.5
    frame = pd.DataFrame(
        {"help_id": [f"HELP_J{i:04d}" for i in range(n)], "zspec": grid.redshifts[iz]}
    )
    for j, b in enumerate(grid.bands):
        frame[f"f_{b}"] = f_ujy[:, j]
        frame[f"ferr_{b}"] = e_ujy[:, j]
    frame.to_parquet(tmp / "cat.parquet")
    out = tmp / "fit"
    status = main(["sed", "fit", str(tmp / "grid"), str(tmp / "cat.parquet"), "--out", str(out),
                   "--z-column", "zspec", "--mock"])  # fmt: skip
    assert status == 0
    return tmp, grid, model, scale


def test_fit_outputs(run):
    tmp, grid, model, scale = run
    props = pd.read_parquet(tmp / "fit" / "properties.parquet")
    assert len(props) == 40 and props["help_id"].iloc[3] == "HELP_J0003"
    truth = np.log10(grid.props["mstar"][model] * scale)
    assert np.median(np.abs(props["bayes_mstar"] - truth)) < 0.1
    spec = io.read_spectra(tmp / "fit" / "spectra.parquet", "HELP_J0003").iloc[0]
    lam, fnu = np.asarray(spec["wavelength_um"]), np.asarray(spec["fnu_mjy"])
    # the stored spectrum through the K filter gives the best model's K flux
    from skysense.sed.filters import band_fluxes

    k = io.load_filters(["ukidss_k"])
    got = band_fluxes(lam * 1e4, fnu, k)[0]
    best = grid.fluxes_mjy[
        grid.redshift_index(props["redshift"].iloc[3:4])[0], props["best_model"].iloc[3], 3
    ]
    assert got == pytest.approx(best * props["best_scale"].iloc[3], rel=0.03)


def test_mock_analysis(run):
    import json

    tmp, *_ = run
    rec = {r["quantity"]: r for r in json.loads((tmp / "fit" / "mock_recovery.json").read_text())}
    assert rec["mstar"]["pearson_r"] > 0.9 and abs(rec["mstar"]["bias"]) < 0.1
    assert (tmp / "fit" / "mock_recovery.png").read_bytes()[:4] == b"\x89PNG"


def test_plot(run):
    tmp, *_ = run
    png = tmp / "fit.png"
    args = ["sed", "plot", str(tmp / "grid"), str(tmp / "cat.parquet"), str(tmp / "fit"),
            "--id", "HELP_J0001", "--out", str(png), "--z-column", "zspec", "--pdfs"]  # fmt: skip
    assert main(args) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and (tmp / "fit_pdf.png").exists()


def test_bad_input_one_line(run, capsys):
    tmp, *_ = run
    frame = pd.read_parquet(tmp / "cat.parquet")
    frame.loc[5, "ferr_megacam_r"] = -1.0
    frame.to_parquet(tmp / "bad.parquet")
    status = main(["sed", "fit", str(tmp / "grid"), str(tmp / "bad.parquet"), "--out", str(tmp / "o"),
                   "--z-column", "zspec"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "object 'HELP_J0005', band 'megacam_r'" in err[0]


def test_photoz_marginalised_fit(run):
    tmp, grid, model, scale = run
    frame = pd.read_parquet(tmp / "cat.parquet")
    frame["zphot"] = frame["zspec"] + 0.05
    frame["zphot_err"] = 0.15
    frame.to_parquet(tmp / "cat_pz.parquet")
    status = main(["sed", "fit", str(tmp / "grid"), str(tmp / "cat_pz.parquet"), "--out", str(tmp / "fitpz"),
                   "--z-column", "zphot", "--z-err-column", "zphot_err"])  # fmt: skip
    assert status == 0
    props = pd.read_parquet(tmp / "fitpz" / "properties.parquet")
    # both nodes (0.3, 0.6) are within 3 sigma: the best node is the true one for most objects
    assert np.mean(np.isclose(props["z_grid"], frame["zspec"])) > 0.8
