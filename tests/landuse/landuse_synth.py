"""Generated rasters with known classes for the land-use tests (imported by the test files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CRS = "EPSG:32630"
PIXEL_M = 30.0
ORIGIN = (500000.0, 4100000.0)  # x west edge, y north edge (UTM metres)


def class_map(rows: int, cols: int, n_classes: int, tile: int) -> np.ndarray:
    """Checkerboard of ``tile``-pixel squares cycling through codes 1..n_classes."""
    r = np.arange(rows)[:, None] // tile
    c = np.arange(cols)[None, :] // tile
    return ((r * 3 + c) % n_classes + 1).astype(np.int64)


def make_raster(
    path: Path,
    *,
    rows: int = 96,
    cols: int = 128,
    n_bands: int = 4,
    n_classes: int = 4,
    tile: int = 16,
    noise: float = 0.0,
    nodata: float | None = None,
    nodata_box: tuple[int, int, int, int] | None = None,
    dtype: str = "float32",
    seed: int = 0,
    means: np.ndarray | None = None,
) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write a GeoTIFF whose class k has band means ``means[k]`` plus Gaussian ``noise``.

    Returns (path, truth (rows, cols) codes 1..n_classes with 0 in the nodata box, means).
    """
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    truth = class_map(rows, cols, n_classes, tile)
    if means is None:
        means = rng.uniform(20, 200, size=(n_classes + 1, n_bands))
    means = np.asarray(means, dtype=float)
    img = means[truth].transpose(2, 0, 1) + noise * rng.standard_normal((n_bands, rows, cols))
    if nodata is not None and nodata_box is not None:
        r0, r1, c0, c1 = nodata_box
        img[:, r0:r1, c0:c1] = nodata
        truth = truth.copy()
        truth[r0:r1, c0:c1] = 0
    profile = dict(driver="GTiff", width=cols, height=rows, count=n_bands, dtype=dtype,
                   crs=CRS, transform=from_origin(*ORIGIN, PIXEL_M, PIXEL_M), nodata=nodata)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(img.astype(dtype))
    return path, truth, means


def pixel_centre(row: int, col: int) -> tuple[float, float]:
    return ORIGIN[0] + (col + 0.5) * PIXEL_M, ORIGIN[1] - (row + 0.5) * PIXEL_M
