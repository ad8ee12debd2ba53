"""Training samples from Statlog files, points, polygons and label rasters."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from landuse_synth import CRS, ORIGIN, PIXEL_M, pixel_centre
from shapely.geometry import Point, box

from skysense.errors import InputError
from skysense.landuse.classes import LI2014
from skysense.landuse.features import FeatureSpec, window_features
from skysense.landuse.samples import statlog_spec
from skysense.landuse.samples_io import read_statlog, samples_from_raster

SPEC4 = FeatureSpec(("b1", "b2", "b3", "b4"), ("mean", "max", "std"), 3)


def test_read_statlog_pixel_major_layout(tmp_path):
    row = list(range(36)) + [3]
    p = tmp_path / "sat.trn"
    p.write_text(" ".join(map(str, row)) + "\n" + " ".join(["1"] * 36 + ["7"]) + "\n")
    pixels, y = read_statlog(p)
    assert pixels.shape == (2, 9, 4) and y.tolist() == [3, 7]
    # attributes 17-20 (1-based) are the central pixel: values 16..19
    assert pixels[0, 4].tolist() == [16, 17, 18, 19]
    assert pixels[0, :, 2].tolist() == list(range(2, 36, 4))  # band 3 of every pixel


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(0, 255), min_size=36, max_size=36), min_size=1, max_size=5),
       st.integers(1, 7))  # fmt: skip
def test_read_statlog_round_trip(tmp_path_factory, rows, code):
    p = tmp_path_factory.mktemp("statlog") / "f.txt"
    p.write_text("\n".join(" ".join(map(str, r + [code])) for r in rows) + "\n")
    pixels, y = read_statlog(p)
    np.testing.assert_array_equal(pixels.reshape(len(rows), 36), np.array(rows))
    assert (y == code).all()


@pytest.mark.parametrize(
    "text, match",
    [("1 2 3\n", "expected 37 values"), (" ".join(["1"] * 36 + ["x"]) + "\n", "non-integer"),
     (" ".join(["300"] + ["1"] * 35 + ["2"]) + "\n", "outside 0..255"), ("\n", "no data rows")],
)  # fmt: skip
def test_read_statlog_errors_name_file_and_row(tmp_path, text, match):
    p = tmp_path / "bad.trn"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_statlog(p)
    assert "bad.trn" in str(err.value)


def test_statlog_spec_roles():
    s = statlog_spec(indices=("ndvi",))
    assert s.names[-1] == "ndvi" and dict(s.roles)["nir"] == "b3"


def _points(truth, n, seed, crs=CRS):
    rng = np.random.default_rng(seed)
    flat = rng.choice(truth.size, n, replace=False)
    rr, cc = np.unravel_index(flat, truth.shape)
    geoms = [Point(*pixel_centre(r, c)) for r, c in zip(rr, cc)]
    gdf = gpd.GeoDataFrame({"class": truth[rr, cc]}, geometry=geoms, crs=CRS)
    return gdf.to_crs(crs), rr, cc


def test_point_samples_reprojected_from_wgs84_hit_the_right_pixels(synth):
    path, truth, _ = synth(noise=3.0)
    gdf, rr, cc = _points(truth, 60, 0, crs="EPSG:4326")
    table = samples_from_raster(path, gdf, SPEC4)
    assert sorted(zip(table.rows, table.cols)) == sorted(zip(rr, cc))
    with rasterio.open(path) as src:
        img = src.read()
    full = window_features(img, None, SPEC4)
    np.testing.assert_allclose(table.X, full[table.rows, table.cols], rtol=1e-6)
    np.testing.assert_array_equal(table.y, truth[table.rows, table.cols])


def test_polygon_pixel_and_polygon_modes(synth, tmp_path):
    path, truth, _ = synth(noise=2.0)
    # polygon covering pixel rows 2..5, cols 3..8 (exact pixel edges)
    x0, y0 = ORIGIN[0] + 3 * PIXEL_M, ORIGIN[1] - 6 * PIXEL_M
    poly = box(x0, y0, x0 + 6 * PIXEL_M, y0 + 4 * PIXEL_M)
    gdf = gpd.GeoDataFrame({"class": ["water"]}, geometry=[poly], crs=CRS)
    f = tmp_path / "labels.gpkg"
    gdf.to_file(f)
    table = samples_from_raster(path, f, SPEC4, scheme=LI2014)
    assert len(table.y) == 24 and (table.y == 1).all()
    assert set(table.rows.tolist()) == {2, 3, 4, 5} and set(table.cols.tolist()) == set(range(3, 9))
    poly_t = samples_from_raster(path, f, SPEC4, scheme=LI2014, mode="polygon")
    with rasterio.open(path) as src:
        v = src.read()[:, 2:6, 3:9].reshape(4, -1).astype(float)
    want = np.stack([v.mean(1), v.max(1), v.std(1)], axis=1).ravel()
    np.testing.assert_allclose(poly_t.X[0], want, rtol=1e-6)


def test_labels_outside_raster_are_named(synth):
    path, truth, _ = synth()
    far = Point(ORIGIN[0] - 10_000, ORIGIN[1] + 10_000)
    inside = Point(*pixel_centre(3, 3))
    gdf = gpd.GeoDataFrame({"class": [1, 2]}, geometry=[inside, far], crs=CRS)
    with pytest.raises(
        InputError, match=r"1 label feature\(s\) fall outside the raster.*rows \[1\]"
    ):
        samples_from_raster(path, gdf, SPEC4)


def test_missing_crs_is_an_error(synth):
    path, truth, _ = synth()
    gdf = gpd.GeoDataFrame({"class": [1]}, geometry=[Point(*pixel_centre(1, 1))])
    with pytest.raises(InputError, match="labels have no coordinate system"):
        samples_from_raster(path, gdf, SPEC4)


def test_band_count_mismatch_is_named(synth):
    path, truth, _ = synth(n_bands=3)
    gdf, _, _ = _points(truth, 5, 0)
    with pytest.raises(InputError, match="raster has 3 bands but the feature spec names 4"):
        samples_from_raster(path, gdf, SPEC4)


def test_unknown_label_column_lists_columns(synth):
    path, truth, _ = synth()
    gdf, _, _ = _points(truth, 5, 0)
    with pytest.raises(InputError, match="no label column"):
        samples_from_raster(path, gdf, SPEC4, label_column="landuse")


def test_label_raster_same_grid_and_reprojected(synth, tmp_path):
    path, truth, _ = synth(noise=1.0)
    with rasterio.open(path) as src:
        profile = dict(src.profile, count=1, dtype="uint8", nodata=0)
    labels = np.zeros_like(truth, dtype=np.uint8)
    labels[10:20, 30:40] = truth[10:20, 30:40]
    lp = tmp_path / "labels.tif"
    with rasterio.open(lp, "w", **profile) as dst:
        dst.write(labels[None])
    t = samples_from_raster(path, lp, SPEC4)
    assert len(t.y) == 100 and (t.y == truth[t.rows, t.cols]).all()
    # the same labels in geographic coordinates: reprojected back (nearest) to the image grid
    from rasterio.warp import calculate_default_transform, reproject

    tr, w, h = calculate_default_transform(CRS, "EPSG:4326", truth.shape[1], truth.shape[0],
                                           *src.bounds)  # fmt: skip
    geo = np.zeros((h, w), np.uint8)
    reproject(labels, geo, src_transform=profile["transform"], src_crs=CRS, dst_transform=tr,
              dst_crs="EPSG:4326", src_nodata=0, dst_nodata=0)  # fmt: skip
    lp2 = tmp_path / "labels_geo.tif"
    with rasterio.open(lp2, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=tr, nodata=0) as dst:  # fmt: skip
        dst.write(geo[None])
    t2 = samples_from_raster(path, lp2, SPEC4)
    agree = np.mean(t2.y == truth[t2.rows, t2.cols])
    assert len(t2.y) > 60 and agree == 1.0


def test_nodata_labelled_pixels_are_dropped_with_a_warning(synth):
    path, truth, _ = synth(nodata=-9999.0, nodata_box=(0, 8, 0, 8))
    geoms = [Point(*pixel_centre(2, 2)), Point(*pixel_centre(40, 40))]
    gdf = gpd.GeoDataFrame({"class": [1, 2]}, geometry=geoms, crs=CRS)
    with pytest.warns(UserWarning, match="1 labelled pixel"):
        t = samples_from_raster(path, gdf, SPEC4)
    assert len(t.y) == 1 and t.n_dropped_nodata == 1
    # features near the nodata box leave the nodata value out of the statistics
    assert t.X.max() < 1000


def test_max_per_class_subsamples_reproducibly(synth):
    path, truth, _ = synth()
    gdf, _, _ = _points(truth, 200, 1)
    a = samples_from_raster(path, gdf, SPEC4, max_per_class=10, random_state=3)
    b = samples_from_raster(path, gdf, SPEC4, max_per_class=10, random_state=3)
    assert np.bincount(a.y).max() == 10 and np.array_equal(a.X, b.X)


def test_load_samples_takes_one_source_and_builds_the_spec(synth, tmp_path):
    from skysense.errors import ConfigError
    from skysense.landuse.samples_io import load_samples

    with pytest.raises(ConfigError, match="not both"):
        load_samples(raster="a.tif", labels="l.geojson", statlog="sat.trn")
    with pytest.raises(ConfigError, match="need a raster and its labels"):
        load_samples(raster="a.tif")
    path, truth, _ = synth(rows=40, cols=50, n_bands=4)
    with pytest.raises(ConfigError, match="2 band names for 4 bands"):
        load_samples(raster=path, labels=path, band_names=["x", "y"])
