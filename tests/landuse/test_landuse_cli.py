"""``skysense landuse train / evaluate / classify`` end to end."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from landuse_synth import CRS, pixel_centre
from shapely.geometry import Point

from skysense.cli.__main__ import main


@pytest.fixture
def data(synth, tmp_path):
    path, truth, _ = synth(rows=120, cols=160, n_bands=6, noise=3.0)
    rng = np.random.default_rng(0)
    rr, cc = rng.integers(0, 120, 300), rng.integers(0, 160, 300)
    names = np.array(["", "water", "residential area", "natural forest", "orchard"])
    gdf = gpd.GeoDataFrame({"landuse": names[truth[rr, cc]]},
                           geometry=[Point(*pixel_centre(r, c)) for r, c in zip(rr, cc)], crs=CRS)  # fmt: skip
    labels = tmp_path / "labels.geojson"
    gdf.to_crs("EPSG:4326").to_file(labels, driver="GeoJSON")
    return path, truth, labels


def test_train_evaluate_classify(data, tmp_path, capsys):
    path, truth, labels = data
    model = tmp_path / "m.npz"
    common = ["--raster", str(path), "--labels", str(labels), "--label-column", "landuse",
              "--role", "red=b3", "--role", "nir=b4", "--indices", "ndvi"]  # fmt: skip
    assert main(["landuse", "train", *common, "--classifier", "rf", "--param", "n_estimators=40",
                 "-o", str(model),
                 "--json", str(tmp_path / "t.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "out-of-bag accuracy" in out and "ndvi" in out
    assert json.loads((tmp_path / "t.json").read_text())["oob_accuracy"] > 0.9

    assert main(["landuse", "evaluate", *common, "--cv", "3", "--classifier", "rf",
                 "--param", "n_estimators=20",
                 "--band-subsets", "b1,b2,b3,b4", "b1,b2,b3,b4,b5,b6",
                 "--json", str(tmp_path / "e.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "b1,b2,b3,b4,b5,b6" in out and "kappa" in out
    rep = json.loads((tmp_path / "e.json").read_text())["band_subsets"]
    assert set(rep) == {"b1,b2,b3,b4", "b1,b2,b3,b4,b5,b6"}

    assert main(["landuse", "evaluate", "--model", str(model), "--test-raster", str(path),
                 "--test-labels", str(labels), "--label-column", "landuse", "--importances",
                 "--confusion-png", str(tmp_path / "cm.png")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "producer" in out and "feature importances" in out
    assert (tmp_path / "cm.png").exists()

    assert main(["landuse", "classify", str(model), str(path), "-o", str(tmp_path / "c.tif"),
                 "--quicklook", str(tmp_path / "q.png")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "water" in out
    with rasterio.open(tmp_path / "c.tif") as src:
        assert np.mean(src.read(1) == truth) > 0.9


def test_statlog_style_samples_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(1)
    y = rng.choice([1, 2, 3], 90)
    pix = np.clip(y[:, None] * 60 + rng.normal(0, 10, (90, 36)), 0, 255).astype(int)
    f = tmp_path / "s.trn"
    f.write_text("\n".join(" ".join(map(str, [*p, c])) for p, c in zip(pix, y)) + "\n")
    assert main(["landuse", "evaluate", "--statlog", str(f), "--holdout", "0.3",
                 "--classifier", "knn"]) == 0  # fmt: skip
    assert "stratified hold-out" in capsys.readouterr().out
    assert main(["landuse", "train", "--statlog", str(f), "--classifier", "knn",
                 "-o", str(tmp_path / "k.npz")]) == 0  # fmt: skip
    capsys.readouterr()
    # a 4-band Statlog model applied to a 6-band raster: one clear line, exit 2
    from landuse_synth import make_raster

    img, _, _ = make_raster(tmp_path / "six.tif", n_bands=6)
    code = main(["landuse", "classify", str(tmp_path / "k.npz"), str(img), "-o",
                 str(tmp_path / "c.tif")])  # fmt: skip
    assert code == 2
    assert "raster has 6 bands but the model was trained on 4" in capsys.readouterr().err
    assert main(["landuse", "train", "--raster", str(img), "-o", str(tmp_path / "x.npz")]) == 2
    assert "need --raster and --labels" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["train", "evaluate", "classify"])
def test_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main(["landuse", verb, "--help"])
    assert e.value.code == 0
    assert "usage: skysense landuse " + verb in capsys.readouterr().out


def test_long_commands_report_progress_in_a_log(data, tmp_path, capsys, monkeypatch):
    """Issue 16: where no bar is drawn, training, evaluation and classification print
    ``skysense: progress:`` lines (here after every step: interval 0)."""
    monkeypatch.setenv("SKYSENSE_PROGRESS", "log")
    monkeypatch.setenv("SKYSENSE_PROGRESS_INTERVAL", "0")
    path, _, labels = data
    common = ["--raster", str(path), "--labels", str(labels), "--label-column", "landuse"]
    model = tmp_path / "m.npz"
    assert main(["landuse", "train", *common, "--classifier", "knn", "--tune", "--cv", "3",
                 "-o", str(model)]) == 0  # fmt: skip
    assert "skysense: progress: tuning knn: 4/4 candidates" in capsys.readouterr().err
    assert main(["landuse", "evaluate", *common, "--cv", "3", "--classifier", "rf",
                 "--param", "n_estimators=10"]) == 0  # fmt: skip
    assert "skysense: progress: rf cross-validation: 3/3 folds" in capsys.readouterr().err
    assert main(["landuse", "classify", str(model), str(path), "-o", str(tmp_path / "c.tif"),
                 "--block", "256"]) == 0  # fmt: skip
    assert "skysense: progress: classifying windows:" in capsys.readouterr().err


def test_default_is_auto_with_blocked_cv_and_texture(data, tmp_path, capsys):
    """The default classifier is chosen by CV on the training samples (blocked folds, since
    the pixels are known); texture and index statistics come from the options."""
    path, _, labels = data
    common = ["--raster", str(path), "--labels", str(labels), "--label-column", "landuse",
              "--role", "red=b3", "--role", "nir=b4", "--indices", "ndvi", "--index-stats",
              "mean,std", "--texture", "contrast,entropy", "--texture-window", "5",
              "--scales", "7"]  # fmt: skip
    model = tmp_path / "auto.npz"
    # the default candidates less the slow ones (gradient boosting and the ensemble take
    # minutes on a loaded 2-core machine; the benchmark runs them)
    cands = ["--param", "candidates=rf@stats,lr,lr@means+indices"]
    assert main(["landuse", "train", *common, *cands, "-o", str(model), "--json",
                 str(tmp_path / "t.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "auto chose" in out and "spatially blocked" in out and "glcm_entropy" in out
    assert "ndvi_7px" in out and "lr@means+indices" in out and "rf@stats" in out
    sel = json.loads((tmp_path / "t.json").read_text())["model_selection"]
    assert sel["chosen"] == max(sel["scores"], key=sel["scores"].get)
    assert "buffer 6 px" in sel["how"] and sel["n_training"] == 300
    assert main(["landuse", "train", *common[:-1], "5x", "-o", str(model)]) == 2
    assert "--scales" in capsys.readouterr().err
    assert main(["landuse", "classify", str(model), str(path), "-o",
                 str(tmp_path / "c.tif"), "--block", "256"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["landuse", "evaluate", *common, "--classifier", "rf", "--param",
                 "n_estimators=20", "--blocked-cv", "16", "--buffer", "4", "--cv", "3"]) == 0  # fmt: skip
    assert "spatially blocked 3-fold CV (blocks of 16 px, buffer 4 px" in capsys.readouterr().out
    assert main(["landuse", "train", *common, "--param", "n_estimators=5", "-o",
                 str(tmp_path / "x.npz")]) == 2  # fmt: skip
    assert "unknown parameter" in capsys.readouterr().err
