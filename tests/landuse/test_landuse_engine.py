"""Whole-raster classification: accuracy on generated rasters, nodata, windows, outputs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from landuse_synth import CRS, pixel_centre
from scipy.stats import norm
from shapely.geometry import Point

from skysense.errors import ConfigError, InputError
from skysense.landuse.classes import LI2014
from skysense.landuse.engine import classify_raster
from skysense.landuse.estimator import train_model
from skysense.landuse.features import FeatureSpec, window_features
from skysense.landuse.samples_io import samples_from_raster


def _train(path, truth, spec, n=300, seed=0, interior_only=False, **params):
    rng = np.random.default_rng(seed)
    ok = truth > 0
    if interior_only:  # pixels whose window lies inside one class tile
        from scipy.ndimage import maximum_filter, minimum_filter

        w = spec.window_px
        ok &= maximum_filter(truth, w) == minimum_filter(truth, w)
    rr, cc = np.nonzero(ok)
    k = rng.choice(rr.size, n, replace=False)
    geoms = [Point(*pixel_centre(r, c)) for r, c in zip(rr[k], cc[k])]
    gdf = gpd.GeoDataFrame({"class": truth[rr[k], cc[k]]}, geometry=geoms, crs=CRS)
    t = samples_from_raster(path, gdf, spec)
    return train_model(
        t.X, t.y, spec, LI2014, classifier="rf", params=params or {"n_estimators": 30}
    )


def test_separable_raster_is_classified_perfectly_with_georeferencing(synth, tmp_path):
    path, truth, _ = synth(rows=300, cols=520, noise=2.0, nodata=-9999.0,
                           nodata_box=(250, 300, 0, 40))  # fmt: skip
    spec = FeatureSpec(("b1", "b2", "b3", "b4"), ("mean", "max", "std"), 1)
    model = _train(path, truth, spec)
    res = classify_raster(model, path, tmp_path / "c.tif", proba_path=tmp_path / "p.tif",
                          quicklook_path=tmp_path / "q.png", block_px=256)  # fmt: skip
    assert res.n_windows == 6  # 2 x 3 windows of 256 px
    with rasterio.open(res.class_path) as out, rasterio.open(path) as src:
        codes = out.read(1)
        assert out.crs == src.crs and out.transform == src.transform and out.nodata == 0
        assert out.colormap(1)[2] == (0xE3, 0x1A, 0x1C, 255)
    np.testing.assert_array_equal(codes, truth)  # 100% and nodata (0) exactly where it was
    assert res.n_nodata == 50 * 40 and sum(res.pixel_counts.values()) == truth.size - 2000
    with rasterio.open(res.proba_path) as p:
        prob = p.read()
    assert prob.shape == (4, 300, 520)
    np.testing.assert_allclose(np.nansum(prob, axis=0)[truth > 0], 1.0, atol=1e-5)
    assert np.isnan(prob[:, truth == 0]).all()
    assert res.quicklook_path.read_bytes()[:4] == b"\x89PNG"


def test_window_features_across_block_edges_match_the_whole_image(synth, tmp_path):
    # 3x3 windows at window seams must see the neighbouring window's pixels (halo)
    path, truth, _ = synth(rows=270, cols=300, noise=4.0)
    spec = FeatureSpec(("b1", "b2", "b3", "b4"), ("mean", "std"), 3)
    model = _train(path, truth, spec, interior_only=True)
    res = classify_raster(model, path, tmp_path / "c.tif", block_px=256)
    with rasterio.open(res.class_path) as out, rasterio.open(path) as src:
        tiled = out.read(1)
        img = src.read()
    whole = model.predict(window_features(img, None, spec).reshape(-1, len(spec.names)))
    np.testing.assert_array_equal(tiled, whole.reshape(truth.shape))


def test_noisy_raster_reaches_the_bayes_rate(synth, tmp_path):
    # two classes, one band, means 0 and 2, unit noise, 1-pixel windows: Bayes = Phi(1)
    means = np.array([[0.0], [100.0], [102.0]])
    path, truth, _ = synth(rows=256, cols=256, n_bands=1, n_classes=2, tile=32, noise=1.0,
                           means=means, seed=5)  # fmt: skip
    spec = FeatureSpec(("b1",), ("mean",), 1)
    model = _train(path, truth, spec, n=3000, n_estimators=60, min_samples_leaf=40)
    res = classify_raster(model, path, tmp_path / "c.tif", block_px=256)
    with rasterio.open(res.class_path) as out:
        acc = np.mean(out.read(1) == truth)
    assert norm.cdf(1.0) - 0.025 < acc < norm.cdf(1.0) + 0.01  # n = 65536: s.e. 0.0014


def test_bad_inputs_are_named(synth, tmp_path):
    path, truth, _ = synth(rows=40, cols=40, tile=10)
    spec = FeatureSpec(("b1", "b2", "b3", "b4"), ("mean",), 1)
    model = _train(path, truth, spec, n=100)
    other, _, _ = synth(rows=40, cols=40, n_bands=6)
    with pytest.raises(InputError, match="raster has 6 bands but the model was trained on 4"):
        classify_raster(model, other, tmp_path / "x.tif")
    empty, _, _ = synth(rows=40, cols=40, nodata=-1.0, nodata_box=(0, 40, 0, 40))
    with pytest.raises(InputError, match="every window is nodata"):
        classify_raster(model, empty, tmp_path / "y.tif")
    assert not (tmp_path / "y.tif").exists()  # atomic: nothing half-written
    with pytest.raises(ConfigError, match="multiple of 256"):
        classify_raster(model, path, tmp_path / "z.tif", block_px=300)
