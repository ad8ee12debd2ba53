"""``skysense photoz train/predict/evaluate`` end to end, and the Dask engine."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from skysense.cli.__main__ import main
from skysense.photoz.engine import predict_catalogue
from skysense.photoz.io import load_model, read_catalogue


def _catalogue(n=400, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.05, 0.6, n)
    mags = {
        b: 20 + k * 0.3 + (3 - k) * 2.0 * z + 0.02 * rng.normal(size=n)
        for k, b in enumerate("griz")
    }
    frame = pd.DataFrame({f"m_{b}": v for b, v in mags.items()})
    for b in "griz":
        frame[f"e_{b}"] = 0.02
    frame["zspec"] = z
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("photoz_cli")
    cat = tmp / "train.csv"
    _catalogue().to_csv(cat, index=False)
    bands = [f"m_{b}" for b in "griz"]
    errors = [f"e_{b}" for b in "griz"]
    code = main(
        [
            "photoz",
            "train",
            str(cat),
            "--target",
            "zspec",
            "--bands",
            *bands,
            "--errors",
            *errors,
            "--m",
            "12",
            "--covariance",
            "VD",
            "--max-iter",
            "40",
            "--out",
            str(tmp / "model"),
        ]
    )
    assert code == 0
    return tmp, bands


def test_train_predict_evaluate(trained, capsys):
    tmp, bands = trained
    model = load_model(tmp / "model")
    assert model.bands == bands and model.info["n_test"] == 40
    assert model.info["test_metrics"]["sigma_nmad"] < 0.05
    # The validation calibration is recorded and applied by the loaded estimator.
    assert model.info["variance_scale"] == model.estimator.variance_scale_ > 0
    test = _catalogue(300, seed=1)
    test.loc[5, bands] = 99.0  # every band missing: cannot be predicted
    test.loc[6, "m_g"] = np.nan  # one band missing: still predicted
    test.to_parquet(tmp / "test.parquet")
    out = tmp / "pred.parquet"
    assert (
        main(
            ["photoz", "predict", str(tmp / "model"), str(tmp / "test.parquet"), "--out", str(out)]
        )
        == 0
    )
    pred = read_catalogue(out)
    assert len(pred) == 300 and {"zphot", "zphot_err", "zphot_flag", "zspec"} <= set(pred.columns)
    assert pred.loc[5, "zphot_flag"] == 1 and np.isnan(pred.loc[5, "zphot"])
    assert pred.loc[6, "zphot_flag"] == 0 and np.isfinite(pred.loc[6, "zphot"])
    ok = pred["zphot_flag"] == 0
    assert np.all(pred.loc[ok, "zphot_err"] > 0)
    var_sum = (
        pred["zphot_err_model"] ** 2 + pred["zphot_err_noise"] ** 2 + pred["zphot_err_input"] ** 2
    )
    np.testing.assert_allclose(pred.loc[ok, "zphot_err"] ** 2, var_sum[ok], rtol=1e-10)
    assert np.median(np.abs(pred.loc[ok, "zphot"] - pred.loc[ok, "zspec"])) < 0.05
    assert "1 flagged" in capsys.readouterr().out

    test.drop(index=5).to_csv(tmp / "test.csv", index=False)
    ev = tmp / "eval"
    assert (
        main(["photoz", "evaluate", str(tmp / "model"), str(tmp / "test.csv"), "--out", str(ev)])
        == 0
    )
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["n"] == 299 and 0 <= metrics["coverage_1sigma"] <= 1
    for png in ("zspec_zphot.png", "pit.png"):
        assert (ev / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_engine_partitions_match_direct_prediction(trained, tmp_path):
    tmp, _ = trained
    model = load_model(tmp / "model")
    frame = _catalogue(250, seed=2)
    frame.to_csv(tmp_path / "c.csv", index=False)
    info = predict_catalogue(model, tmp_path / "c.csv", tmp_path / "o.parquet", partition_rows=60)
    assert info["n_partitions"] == 5 and info["n_rows"] == 250 and info["n_flagged"] == 0
    got = read_catalogue(tmp_path / "o.parquet")
    direct = model.predict_frame(frame)
    np.testing.assert_allclose(got["zphot"], direct["zphot"], rtol=1e-12)


def test_bad_input_is_one_clear_line(trained, tmp_path, capsys):
    tmp, bands = trained
    frame = _catalogue(50)
    frame.loc[3, "zspec"] = np.nan
    frame.to_csv(tmp_path / "nan.csv", index=False)
    assert (
        main(
            [
                "photoz",
                "train",
                str(tmp_path / "nan.csv"),
                "--bands",
                *bands,
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    assert "column 'zspec', row 3" in capsys.readouterr().err
    frame = _catalogue(30)
    frame.to_csv(tmp_path / "small.csv", index=False)
    assert (
        main(
            [
                "photoz",
                "train",
                str(tmp_path / "small.csv"),
                "--bands",
                *bands,
                "--m",
                "50",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    assert "fewer than the m=50 basis functions" in capsys.readouterr().err
    frame = _catalogue(20).assign(m_r=np.inf)
    frame.to_csv(tmp_path / "inf.csv", index=False)
    assert (
        main(
            [
                "photoz",
                "predict",
                str(tmp / "model"),
                str(tmp_path / "inf.csv"),
                "--out",
                str(tmp_path / "o.csv"),
            ]
        )
        == 2
    )
    assert "column 'm_r', row 0: infinite" in capsys.readouterr().err
    _catalogue(20).drop(columns=["m_z"]).to_csv(tmp_path / "noz.csv", index=False)
    assert (
        main(
            [
                "photoz",
                "predict",
                str(tmp / "model"),
                str(tmp_path / "noz.csv"),
                "--out",
                str(tmp_path / "o.csv"),
            ]
        )
        == 2
    )
    assert "lacks column(s) ['m_z']" in capsys.readouterr().err
    assert (
        main(
            [
                "photoz",
                "predict",
                str(tmp / "model"),
                str(tmp_path / "noz.csv"),
                "--bands",
                "m_g",
                "m_y",
                "--out",
                str(tmp_path / "o.csv"),
            ]
        )
        == 2
    )
    assert "['m_y'] were never seen by the model" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_train_names_the_requested_columns_not_a_model(tmp_path, capsys):
    """Issue 16: before training there is no model that was 'trained on' anything."""
    _catalogue(60).drop(columns=["m_z"]).to_csv(tmp_path / "noz.csv", index=False)
    code = main(["photoz", "train", str(tmp_path / "noz.csv"), "--bands", "m_g", "m_z",
                 "--m", "5", "--out", str(tmp_path / "m")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "lacks column(s) ['m_z'] given as bands or errors to train on" in err
    assert "model was trained on" not in err and "model bands" not in err
    assert not (tmp_path / "m").exists()


def test_train_on_a_damaged_fits_prints_only_the_error_line(tmp_path):
    """Issue 16: astropy VerifyWarnings came before the one-line error."""
    import subprocess
    import sys

    from astropy.table import Table

    good = tmp_path / "good.fits"
    Table.from_pandas(_catalogue(60)).write(good)
    extra = tmp_path / "extra.fits"  # trailing bytes: astropy warns while it reads
    extra.write_bytes(good.read_bytes() + b"garbage" * 100)
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[:-1500])
    for path, message in ((extra, "lacks column(s) ['m_y']"), (truncated, "truncated")):
        r = subprocess.run(
            [sys.executable, "-m", "skysense.cli", "photoz", "train", str(path),
             "--bands", "m_g", "m_y", "--out", str(tmp_path / "m")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("skysense: error:"), r.stderr
        assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
        assert "Warning" not in r.stderr and "WARNING" not in r.stderr
