"""Model files without pickle; class rasters with georeferencing and colour tables."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from skysense.errors import InputError
from skysense.landuse.classes import LI2014
from skysense.landuse.classify import FlatForest
from skysense.landuse.estimator import train_model
from skysense.landuse.evaluate import accuracy_report
from skysense.landuse.features import FeatureSpec
from skysense.landuse.io import (
    load_model,
    save_model,
    write_class_raster,
    write_confusion_png,
    write_quicklook,
)


def _table(seed=0, n=200):
    rng = np.random.default_rng(seed)
    y = rng.integers(1, 4, n)
    X = np.column_stack([y + rng.normal(0, 0.7, n), rng.normal(size=n)])
    return X, y, FeatureSpec(("a", "b"), ("mean",), 1)


@pytest.mark.parametrize("name", ["rf", "et", "knn", "svm", "gb"])
def test_model_round_trip_predicts_identically(tmp_path, name):
    X, y, spec = _table()
    params = {"n_estimators": 20} if name in ("rf", "et") else {}
    params |= {"max_iter": 30} if name == "gb" else {}
    m = train_model(X, y, spec, LI2014, classifier=name, params=params, random_state=3)
    p = save_model(m, tmp_path / "m.npz", X_train=X, y_train=y)
    with np.load(p, allow_pickle=False) as z:  # loadable without pickle
        assert "__header__" in z.files
    m2 = load_model(p)
    Xt, _, _ = _table(seed=1)
    np.testing.assert_allclose(m2.predict_proba(Xt), m.predict_proba(Xt), atol=1e-10)
    assert m2.spec == spec and m2.scheme_ == LI2014 and m2.classifier == name
    if name in ("rf", "et"):
        assert isinstance(m2.estimator_, FlatForest)
        assert m2.info_["n_samples"] == m.info_["n_samples"]


def test_corrupt_or_foreign_files_are_rejected(tmp_path):
    X, y, spec = _table()
    m = train_model(X, y, spec, classifier="rf", params={"n_estimators": 5})
    p = save_model(m, tmp_path / "m.npz", X_train=X, y_train=y)
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["forest_threshold"] = arrays["forest_threshold"] + 1.0
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match="checksum"):
        load_model(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(InputError, match="not a skysense land-use model"):
        load_model(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.npz"):
        load_model(tmp_path / "junk.npz")
    knn = train_model(X, y, spec, classifier="knn")
    with pytest.raises(InputError, match="needs its training table"):
        save_model(knn, tmp_path / "k.npz")


def test_class_raster_georeferencing_colour_table_and_names(tmp_path):
    codes = np.array([[0, 1, 2], [3, 8, 1]], np.uint8)
    tr = from_origin(300000, 5000000, 10, 10)
    out = write_class_raster(tmp_path / "c.tif", codes, crs="EPSG:32633", transform=tr,
                             scheme=LI2014)  # fmt: skip
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32633 and src.transform == tr
        assert src.nodata == 0 and src.dtypes[0] == "uint8"
        np.testing.assert_array_equal(src.read(1), codes)
        cmap = src.colormap(1)
        assert cmap[1] == (0x1F, 0x78, 0xB4, 255) and cmap[8] == (0xBD, 0xBD, 0xBD, 255)
        assert src.tags(1)["CLASS_3"] == "natural forest"
    png = write_quicklook(out, tmp_path / "q.png", LI2014)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rep = accuracy_report(np.array([1, 2, 2, 3]), np.array([1, 2, 3, 3]))
    cm = write_confusion_png(rep, tmp_path / "cm.png")
    assert cm.stat().st_size > 1000
