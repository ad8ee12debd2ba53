"""GeoTIFF stacks as NDVI input: values, nodata and cloud masks per pixel and date."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from skysense.astrocast.io import read_geotiff_stack
from skysense.errors import InputError


def _write(path, data, nodata=None):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=data.shape[0],
        width=data.shape[1],
        count=1,
        dtype=data.dtype,
        crs="EPSG:4326",
        transform=from_origin(36.0, 1.0, 0.01, 0.01),
        nodata=nodata,
    ) as dst:
        dst.write(data, 1)
    return path


def test_stack_values_nodata_and_clouds(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.uniform(-0.2, 0.9, (3, 2, 3)).astype("float32")
    cube[1, 0, 2] = -9999.0  # nodata
    clouds = np.zeros((3, 2, 3), dtype="uint8")
    clouds[2, 1, 0] = 1
    paths = [_write(tmp_path / f"ndvi_{k}.tif", cube[k], nodata=-9999.0) for k in range(3)]
    masks = [_write(tmp_path / f"cloud_{k}.tif", clouds[k]) for k in range(3)]
    dates = ["2020-01-01", "2020-01-11", "2020-01-21"]

    frame = read_geotiff_stack(paths, dates, cloud_masks=masks)

    assert len(frame) == 3 * 6
    for k, date in enumerate(dates):
        for r in range(2):
            for c in range(3):
                got = frame[(frame.region == f"{r}_{c}") & (frame.date == date)]["ndvi"]
                assert len(got) == 1
                if (k, r, c) in ((1, 0, 2), (2, 1, 0)):
                    assert np.isnan(got.iloc[0])
                else:
                    assert got.iloc[0] == pytest.approx(float(cube[k, r, c]), abs=1e-7)


def test_stack_shape_mismatch_names_file(tmp_path):
    a = _write(tmp_path / "a.tif", np.zeros((2, 3), "float32"))
    b = _write(tmp_path / "b.tif", np.zeros((3, 3), "float32"))
    with pytest.raises(InputError, match="b.tif"):
        read_geotiff_stack([a, b], ["2020-01-01", "2020-01-11"])
