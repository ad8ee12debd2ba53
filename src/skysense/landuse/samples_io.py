"""Reading training samples: from Statlog files, or from labels (polygons, points, label
rasters) over a raster (the types, :class:`~skysense.landuse.samples.SampleTable`, are in the
pure :mod:`skysense.landuse.samples`).

Labels are reconciled with the raster's coordinate system by reprojecting them to it (vector
labels with geopandas, label rasters with ``rasterio.warp.reproject``, nearest neighbour); a
missing CRS on one side only is an error. Labels outside the raster are an error naming them.

Two sampling modes:

- ``"pixel"`` (default): every labelled pixel is a sample whose features are the statistics of
  the ``window_px`` window around it - exactly what :mod:`skysense.landuse.engine` computes when
  classifying the raster;
- ``"polygon"``: every polygon is one sample, its features the statistics over its pixels
  (segment/object-based, as in Li et al. 2014).

Nodata pixels are left out of every statistic; labelled pixels that are themselves nodata are
dropped (counted in the result).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from skysense.errors import ConfigError, InputError
from skysense.landuse.classes import ClassScheme
from skysense.landuse.features import FeatureSpec, segment_features, window_features
from skysense.landuse.samples import SampleTable

__all__ = [
    "load_samples",
    "read_statlog",
    "read_label_vectors",
    "samples_from_raster",
    "RASTER_SUFFIXES",
]

RASTER_SUFFIXES = (".tif", ".tiff", ".img", ".vrt", ".jp2", ".nc")
_BLOCK_PX = 1024


def read_statlog(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Statlog Landsat Satellite file (``sat.trn`` / ``sat.tst``).

    Each line: 36 integers 0..255 = a 3x3 neighbourhood of 4 bands stored pixel-major (pixel 0
    bands 1-4, pixel 1 bands 1-4, ...; pixel 4 is the centre), then the class code.

    Returns
    -------
    pixels : ndarray (n, 9, 4) float64
        DN values, pixel in row-major window order, band.
    y : ndarray (n,) int64

    Raises
    ------
    InputError
        Wrong column count, non-integer values or values outside 0..255 (names the row).
    """
    path = Path(path)
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    except UnicodeDecodeError as exc:  # a binary file given as Statlog text
        raise InputError(
            f"not a text file (byte {exc.start} is not UTF-8); expected Statlog lines of 37 "
            "integers",
            path=path,
        ) from None
    for i, line in enumerate(text.splitlines()):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 37:
            raise InputError(f"expected 37 values (36 pixels x bands + class), found {len(parts)}",
                             path=path, row=i)  # fmt: skip
        try:
            rows.append([int(p) for p in parts])
        except ValueError:
            raise InputError("non-integer value", path=path, row=i) from None
    if not rows:
        raise InputError("no data rows", path=path)
    a = np.asarray(rows, dtype=np.int64)
    bad = np.argwhere((a[:, :36] < 0) | (a[:, :36] > 255))
    if bad.size:
        raise InputError(f"value {a[tuple(bad[0])]} outside 0..255", path=path,
                         row=int(bad[0][0]), column=int(bad[0][1]))  # fmt: skip
    return a[:, :36].reshape(-1, 9, 4).astype(np.float64), a[:, 36]


def read_label_vectors(path: str | Path, label_column: str, scheme: ClassScheme | None = None):
    """Read polygon/point labels (GeoJSON, shapefile, GeoPackage, ...) with geopandas.

    Returns a GeoDataFrame with an int64 ``_code`` column: the label column mapped through
    ``scheme`` (class names or codes accepted) or taken as integer codes.
    """
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types
        raise InputError(f"cannot read labels: {exc}", path=path) from None
    return _with_codes(gdf, label_column, scheme, path)


def _with_codes(gdf, label_column, scheme, path=None):
    if label_column not in gdf.columns:
        raise InputError(f"no label column; columns are {[c for c in gdf.columns if c != 'geometry']}",
                         path=path, column=label_column)  # fmt: skip
    codes = np.empty(len(gdf), np.int64)
    for i, v in enumerate(gdf[label_column].to_numpy()):
        try:
            if scheme is not None:
                codes[i] = scheme.code_of(v)
            else:
                codes[i] = int(v)
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"bad label {v!r}: {exc}", path=path, column=label_column, row=i
            ) from None
        if codes[i] <= 0:
            raise InputError(f"class codes must be positive, got {codes[i]}", path=path,
                             column=label_column, row=i)  # fmt: skip
    gdf = gdf.copy()
    gdf["_code"] = codes
    empty = gdf.geometry.is_empty | gdf.geometry.isna()
    if empty.any():
        raise InputError("empty geometry", path=path, row=int(np.flatnonzero(empty.to_numpy())[0]))
    return gdf


def _reproject_vectors(gdf, crs, path):
    if gdf.crs is None and crs is None:
        return gdf
    if gdf.crs is None:
        raise InputError(f"labels have no coordinate system but the raster is {crs}; set one "
                         "(e.g. a .prj file or GeoJSON in EPSG:4326)", path=path)  # fmt: skip
    if crs is None:
        raise InputError(f"the raster has no coordinate system but the labels are {gdf.crs}; "
                         "cannot place them", path=path)  # fmt: skip
    from pyproj import CRS

    if CRS.from_user_input(gdf.crs) == CRS.from_user_input(crs.to_wkt()):
        return gdf
    return gdf.to_crs(crs.to_wkt())


def samples_from_raster(
    raster: str | Path,
    labels: Any,
    spec: FeatureSpec,
    *,
    label_column: str = "class",
    scheme: ClassScheme | None = None,
    mode: str = "pixel",
    max_per_class: int | None = None,
    random_state: int = 0,
) -> SampleTable:
    """Sample features for labelled locations of a raster.

    Parameters
    ----------
    raster : path
        Multispectral raster (any rasterio format); its band count must equal ``spec.n_bands``.
    labels : path or GeoDataFrame
        Polygons/points (vector file or GeoDataFrame with ``label_column``), or a label raster
        (integer codes, 0/nodata = unlabelled).
    spec : FeatureSpec
    mode : {"pixel", "polygon"}
    max_per_class : int, optional
        Random subsample (seeded) of at most this many samples per class.

    Returns
    -------
    SampleTable

    Raises
    ------
    InputError
        Band-count mismatch, CRS problems, labels outside the raster, no labelled pixel.
    """
    import rasterio

    if mode not in ("pixel", "polygon"):
        raise InputError(f"mode must be 'pixel' or 'polygon', got {mode!r}")
    try:
        src = rasterio.open(raster)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read raster: {exc}", path=raster) from None
    with src:
        if src.count != spec.n_bands:
            raise InputError(f"raster has {src.count} bands but the feature spec names "
                             f"{spec.n_bands} ({', '.join(spec.band_names)})", path=raster)  # fmt: skip
        is_raster = (
            isinstance(labels, (str, Path)) and Path(labels).suffix.lower() in RASTER_SUFFIXES
        )
        if is_raster:
            grid, source_of = _label_raster_grid(src, labels), None
        else:
            gdf = labels if not isinstance(labels, (str, Path)) else read_label_vectors(
                labels, label_column, scheme)  # fmt: skip
            if "_code" not in gdf.columns:
                gdf = _with_codes(gdf, label_column, scheme)
            gdf = _reproject_vectors(
                gdf, src.crs, labels if isinstance(labels, (str, Path)) else None
            )
            name = str(labels) if isinstance(labels, (str, Path)) else "labels"
            grid, source_of = _vector_grid(src, gdf, name)
        if mode == "polygon":
            if source_of is None:
                raise InputError("mode 'polygon' needs vector labels (polygons)", path=labels)
            table = _polygon_samples(src, grid, source_of, spec)
        else:
            table = _pixel_samples(src, grid, source_of, spec)
    if table.y.size == 0:
        raise InputError("no labelled pixel with valid data in the raster", path=labels)
    if table.n_dropped_nodata:
        warnings.warn(f"{table.n_dropped_nodata} labelled pixel(s) are nodata and were skipped",
                      stacklevel=2)  # fmt: skip
    if max_per_class is not None:
        rng = np.random.default_rng(random_state)
        keep = []
        for c in np.unique(table.y):
            idx = np.flatnonzero(table.y == c)
            if idx.size > max_per_class:
                idx = np.sort(rng.choice(idx, max_per_class, replace=False))
            keep.append(idx)
        k = np.sort(np.concatenate(keep))
        table = dataclasses.replace(table, X=table.X[k], y=table.y[k], rows=table.rows[k],
                                    cols=table.cols[k], source=table.source[k])  # fmt: skip
    return table


def _vector_grid(src, gdf, path):
    """Rasterize label features onto the raster grid: (rows, cols) int32 of feature index + 1."""
    from rasterio import features as rfeatures
    from shapely.geometry import box

    bounds = box(*src.bounds)
    inside = gdf.geometry.intersects(bounds).to_numpy()
    if not inside.all():
        bad = np.flatnonzero(~inside)
        raise InputError(f"{bad.size} label feature(s) fall outside the raster (bounds "
                         f"{tuple(round(v, 3) for v in src.bounds)} in {src.crs}); rows "
                         f"{bad[:10].tolist()}", path=path)  # fmt: skip
    grid = np.zeros((src.height, src.width), np.int32)
    geoms = gdf.geometry.to_numpy()
    kinds = gdf.geometry.geom_type.to_numpy()
    poly = np.isin(kinds, ["Polygon", "MultiPolygon"])
    if poly.any():
        shapes = [(g, i + 1) for i, g in enumerate(geoms) if poly[i]]
        rfeatures.rasterize(shapes, out=grid, transform=src.transform, all_touched=False)
    pts = np.isin(kinds, ["Point", "MultiPoint"])
    for i in np.flatnonzero(pts):
        for p in getattr(geoms[i], "geoms", [geoms[i]]):
            r, c = src.index(p.x, p.y)
            if 0 <= r < src.height and 0 <= c < src.width:
                grid[r, c] = i + 1
    other = ~(poly | pts)
    if other.any():
        raise InputError(f"unsupported geometry type {kinds[other][0]!r} (use polygons or points)",
                         path=path, row=int(np.flatnonzero(other)[0]))  # fmt: skip
    present = np.zeros(len(gdf) + 1, bool)
    present[np.unique(grid)] = True
    lost = np.flatnonzero(~present[1:])
    if lost.size:
        warnings.warn(
            f"{path}: {lost.size} label feature(s) cover no pixel centre or share their pixels "
            f"with later features (rows {lost[:10].tolist()}); they give no sample",
            stacklevel=3,
        )
    codes = np.concatenate([[0], gdf["_code"].to_numpy()])
    return grid, codes


def _label_raster_grid(src, path):
    """Label raster values on the image grid (reprojected with nearest neighbour if needed)."""
    import rasterio
    from rasterio.warp import Resampling, reproject

    try:
        lab = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read label raster: {exc}", path=path) from None
    with lab:
        if (lab.crs is None) != (src.crs is None):
            raise InputError(f"label raster CRS {lab.crs} vs image CRS {src.crs}: one is missing",
                             path=path)  # fmt: skip
        data = lab.read(1)
        nodata = lab.nodata
        if not np.issubdtype(data.dtype, np.integer):
            if not np.all(np.isnan(data) | (data == np.round(data))):
                raise InputError("label raster values must be integer class codes", path=path)
        data = np.where(np.isnan(data) if data.dtype.kind == "f" else False, 0, data)
        if nodata is not None:
            data = np.where(data == nodata, 0, data)
        data = data.astype(np.int64)
        if (data < 0).any():
            raise InputError("negative class code in the label raster", path=path)
        same = (lab.crs == src.crs and lab.transform == src.transform
                and lab.shape == (src.height, src.width))  # fmt: skip
        if same:
            grid = data
        else:
            from rasterio.coords import disjoint_bounds
            from rasterio.warp import transform_bounds

            lb = lab.bounds if lab.crs is None else transform_bounds(lab.crs, src.crs, *lab.bounds)
            if disjoint_bounds(lb, src.bounds):
                raise InputError(f"label raster (bounds {tuple(round(v, 3) for v in lb)}) lies "
                                 f"outside the image {tuple(src.bounds)}", path=path)  # fmt: skip
            grid = np.zeros((src.height, src.width), np.int64)
            reproject(data, grid, src_transform=lab.transform, src_crs=lab.crs,
                      dst_transform=src.transform, dst_crs=src.crs, src_nodata=0, dst_nodata=0,
                      resampling=Resampling.nearest)  # fmt: skip
    if not (grid > 0).any():
        raise InputError("the label raster has no labelled pixel over the image", path=path)
    return grid


def _pixel_samples(src, grid, codes_of, spec) -> SampleTable:
    from skysense.landuse.io import read_block

    halo = spec.halo_px
    Xs, ys, rs, cs, ss = [], [], [], [], []
    dropped = 0
    rows_with = np.flatnonzero((grid > 0).any(axis=1))
    for r0 in range(0, src.height, _BLOCK_PX):
        if not ((rows_with >= r0) & (rows_with < r0 + _BLOCK_PX)).any():
            continue
        for c0 in range(0, src.width, _BLOCK_PX):
            g = grid[r0 : r0 + _BLOCK_PX, c0 : c0 + _BLOCK_PX]
            if not (g > 0).any():
                continue
            nr, nc = g.shape
            block, valid = read_block(src, r0, c0, nr, nc, halo)
            feats = window_features(block, valid, spec)[halo : halo + nr, halo : halo + nc]
            centre_valid = valid[halo : halo + nr, halo : halo + nc]
            lab = g > 0
            dropped += int((lab & ~centre_valid).sum())
            rr, cc = np.nonzero(lab & centre_valid)
            Xs.append(feats[rr, cc].astype(np.float64))
            if codes_of is None:
                ys.append(g[rr, cc].astype(np.int64))
                ss.append(np.full(rr.size, -1, np.int64))
            else:
                ys.append(codes_of[g[rr, cc]])
                ss.append(g[rr, cc].astype(np.int64) - 1)
            rs.append(rr + r0)
            cs.append(cc + c0)
    if not Xs:
        return SampleTable(np.empty((0, len(spec.names))), np.empty(0, np.int64), spec.names,
                           np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64),
                           dropped)  # fmt: skip
    return SampleTable(np.concatenate(Xs), np.concatenate(ys), spec.names, np.concatenate(rs),
                       np.concatenate(cs), np.concatenate(ss), dropped)  # fmt: skip


def _polygon_samples(src, grid, codes_of, spec) -> SampleTable:
    from skysense.landuse.io import read_block

    ids = np.unique(grid)
    ids = ids[ids > 0]
    Xs, ys, rs, cs, used = [], [], [], [], []
    dropped = 0
    for fid in ids:
        rr, cc = np.nonzero(grid == fid)
        r0, r1, c0, c1 = rr.min(), rr.max() + 1, cc.min(), cc.max() + 1
        block, valid = read_block(src, r0, c0, r1 - r0, c1 - c0, 0)
        seg = (grid[r0:r1, c0:c1] == fid).astype(np.int32)
        dropped += int((seg.astype(bool) & ~valid).sum())
        got, feats = segment_features(block, seg, valid, spec)
        if got.size == 0:
            continue
        Xs.append(feats)
        ys.append([codes_of[fid]])
        rs.append([rr[0]])
        cs.append([cc[0]])
        used.append(int(fid) - 1)
    n = len(Xs)
    return SampleTable(
        np.concatenate(Xs) if n else np.empty((0, len(spec.names))),
        np.asarray(np.concatenate(ys) if n else [], np.int64),
        spec.names,
        np.asarray(np.concatenate(rs) if n else [], np.int64),
        np.asarray(np.concatenate(cs) if n else [], np.int64),
        np.asarray(used, np.int64),
        dropped,
    )


def load_samples(
    *,
    raster: str | Path | None = None,
    labels: str | Path | None = None,
    statlog: str | Path | None = None,
    spec: FeatureSpec | None = None,
    scheme: ClassScheme | None = None,
    band_names: list[str] | None = None,
    stats: tuple[str, ...] = ("mean", "max", "std"),
    window_px: int = 3,
    indices: tuple[str, ...] = (),
    roles: dict[str, str] | None = None,
    classes: str | None = None,
    label_column: str = "class",
    mode: str = "pixel",
    max_per_class: int | None = None,
    random_state: int = 0,
    index_stats: tuple[str, ...] = (),
    texture: tuple[str, ...] = (),
    texture_window: int | None = None,
    return_coords: bool = False,
    scales: tuple[int, ...] = (),
) -> tuple:
    """Features and labels from a Statlog file, or from labels over a raster.

    Parameters
    ----------
    raster, labels : path, optional
        Image and its labels (:func:`samples_from_raster`); or
    statlog : path, optional
        A Statlog Landsat file (:func:`read_statlog`; 3x3 windows, roles green=b1, red=b2,
        nir=b3 unless ``roles`` says otherwise).
    spec, scheme : optional
        Use these (e.g. a trained model's); otherwise built from ``band_names`` (default
        b1..bN), ``stats``, ``window_px``, ``indices``, ``roles`` and ``classes`` (a scheme
        name or file; default ``statlog`` for Statlog files, ``li2014`` for rasters).
    label_column, mode, max_per_class, random_state
        As :func:`samples_from_raster`.
    index_stats, texture, texture_window
        Window statistics of the per-pixel indices, and GLCM properties of the first principal
        component (fitted on the Statlog pixels, or on a regular subsample of the raster;
        :func:`skysense.landuse.features.with_texture`). Band roles not given are recognised
        from the band names (:func:`skysense.landuse.features.infer_roles`).

    scales : tuple of int
        Extra windows of the band means and indices (:class:`FeatureSpec` ``scales``).
    return_coords : bool
        Also return the pixel (row, col) of every sample, ``(n, 2)`` int (None for Statlog
        files, whose samples have no position), e.g. for spatially blocked CV.

    Returns
    -------
    X : ndarray (n, len(spec.names)); y : ndarray (n,) of int; spec; scheme; [coords]

    Raises
    ------
    ConfigError
        Both a Statlog file and a raster, neither, or band names that do not match the bands.
    """
    from skysense.landuse.classes import get_scheme
    from skysense.landuse.features import infer_roles, sample_features, with_texture

    if statlog and (raster or labels):
        raise ConfigError("give a Statlog file or a raster with labels, not both")
    if not statlog and not (raster and labels):
        raise ConfigError("need a raster and its labels (or a Statlog file)")

    def build(n_bands: int) -> tuple[FeatureSpec, ClassScheme]:
        names = list(band_names or [f"b{i + 1}" for i in range(n_bands)])
        if len(names) != n_bands:
            raise ConfigError(f"{len(names)} band names for {n_bands} bands", key="band_names")
        role_map = dict(roles or {})
        if statlog and not role_map:
            role_map = {"green": "b1", "red": "b2", "nir": "b3"}
        if not role_map:
            role_map = infer_roles(names)
        built = FeatureSpec(tuple(names), tuple(stats), 3 if statlog else window_px,
                            tuple(indices), tuple(role_map.items()), tuple(index_stats),
                            scales=tuple(scales))  # fmt: skip
        return built, get_scheme(classes or ("statlog" if statlog else "li2014"))

    def textured(built: FeatureSpec, pixels: np.ndarray) -> FeatureSpec:
        if not texture:
            return built
        return with_texture(built, pixels, tuple(texture), window_px=texture_window)

    if statlog:
        pixels, y = read_statlog(statlog)
        if spec is None:
            spec, scheme = build(pixels.shape[2])
            spec = textured(spec, pixels.reshape(-1, pixels.shape[2]))
        out = (sample_features(pixels, spec), y, spec, scheme)
        return (*out, None) if return_coords else out
    if spec is None:
        from skysense.landuse.io import raster_info

        spec, scheme = build(raster_info(raster).count)
        if texture:
            spec = textured(spec, _pixel_subsample(raster))
    table = samples_from_raster(raster, labels, spec, label_column=label_column, scheme=scheme,
                                mode=mode, max_per_class=max_per_class,
                                random_state=random_state)  # fmt: skip
    if return_coords:
        return table.X, table.y, spec, scheme, np.column_stack([table.rows, table.cols])
    return table.X, table.y, spec, scheme


def _pixel_subsample(raster: str | Path, n_side: int = 256) -> np.ndarray:
    """Valid pixels ``(n, n_bands)`` of a raster read decimated to about ``n_side`` a side
    (what the texture image is fitted on: unsupervised, so any labelled or not pixel will do)."""
    import rasterio

    with rasterio.open(raster) as src:
        scale = max(1, max(src.height, src.width) // n_side)
        shape = (src.count, max(1, src.height // scale), max(1, src.width // scale))
        img = src.read(out_shape=shape, masked=True)
    pix = np.ma.filled(img.astype(np.float64), np.nan).reshape(img.shape[0], -1).T
    return pix[np.isfinite(pix).all(axis=1)]
