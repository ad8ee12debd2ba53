"""Multi-temporal and object-based features (pure; scikit-image for the segmentation).

- :func:`temporal_features`: a time series of co-registered scenes of one area gives, per pixel,
  statistics over the dates (mean, standard deviation, minimum, maximum, range, linear slope)
  of every window feature of a :class:`~skysense.landuse.features.FeatureSpec` (band
  statistics, indices, texture) - phenology separates crops that one date cannot. Dates where
  a window has no valid pixel (clouds, nodata) are left out of that pixel's statistics.
- :func:`object_features`: segments the block (SLIC or Felzenszwalb, scikit-image) and gives
  every pixel the per-band statistics of its segment (object-based classification).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skysense.errors import ConfigError, InputError
from skysense.landuse.features import FeatureSpec, segment_features, window_features

__all__ = [
    "TEMPORAL_STATS",
    "temporal_names",
    "temporal_features",
    "segment_image",
    "object_features",
]

#: Statistics over the dates.
TEMPORAL_STATS = ("mean", "std", "min", "max", "range", "slope")


def temporal_names(spec: FeatureSpec, stats: Sequence[str] = TEMPORAL_STATS) -> list[str]:
    """Names ``<feature>_t<stat>`` (feature-major), e.g. ``ndvi_tmean``, ``b1_mean_tstd``."""
    return [f"{n}_t{s}" for n in spec.names for s in stats]


def temporal_features(
    series: np.ndarray,
    valid: np.ndarray | None,
    spec: FeatureSpec,
    stats: Sequence[str] = TEMPORAL_STATS,
    times: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel statistics over the dates of the window features of every scene.

    Parameters
    ----------
    series : ndarray (n_times, n_bands, rows, cols)
        Co-registered scenes, in date order.
    valid : ndarray (n_times, rows, cols) of bool, optional
        False for cloudy or nodata pixels of a date.
    spec : FeatureSpec
        The features of one date.
    stats : sequence of str
        From :data:`TEMPORAL_STATS`; ``std`` with ddof=0; ``slope`` is the least-squares slope
        against ``times`` (per unit of ``times``).
    times : ndarray (n_times,), optional
        Date of each scene (e.g. days); default 0, 1, 2, ...

    Returns
    -------
    ndarray (rows, cols, len(spec.names) * len(stats)), float64, columns as
    :func:`temporal_names`; NaN where a pixel has no valid date (``std``/``slope``: fewer than
    one / two).
    """
    x = np.asarray(series)
    if x.ndim != 4:
        raise InputError(f"series must be (n_times, n_bands, rows, cols), got shape {x.shape}")
    bad = [s for s in stats if s not in TEMPORAL_STATS]
    if bad or not stats:
        raise ConfigError(f"unknown statistic(s) {bad}; choose from {TEMPORAL_STATS}",
                          key="temporal_stats")  # fmt: skip
    nt = x.shape[0]
    t = np.arange(nt, dtype=float) if times is None else np.asarray(times, float)
    if t.shape != (nt,):
        raise InputError(f"{t.size} times for {nt} scenes")
    if valid is not None and np.shape(valid) != (nt, *x.shape[2:]):
        raise InputError(f"valid {np.shape(valid)} does not match the series {x.shape}")
    feats = np.stack([window_features(x[k], None if valid is None else valid[k], spec)
                      for k in range(nt)]).astype(np.float64)  # fmt: skip
    ok = np.isfinite(feats)
    n = ok.sum(axis=0)
    f0 = np.where(ok, feats, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = f0.sum(axis=0) / n
        out = {}
        if "mean" in stats:
            out["mean"] = mean
        if "std" in stats:
            out["std"] = np.sqrt((np.where(ok, feats - mean, 0.0) ** 2).sum(axis=0) / n)
        if "min" in stats or "range" in stats:
            out["min"] = np.where(n > 0, np.where(ok, feats, np.inf).min(axis=0), np.nan)
        if "max" in stats or "range" in stats:
            out["max"] = np.where(n > 0, np.where(ok, feats, -np.inf).max(axis=0), np.nan)
        if "range" in stats:
            out["range"] = out["max"] - out["min"]
        if "slope" in stats:
            tt = np.where(ok, t[:, None, None, None], 0.0)
            tm = tt.sum(axis=0) / n
            dt = np.where(ok, t[:, None, None, None] - tm, 0.0)
            sxx = (dt**2).sum(axis=0)
            slope = (dt * np.where(ok, feats - mean, 0.0)).sum(axis=0) / sxx
            out["slope"] = np.where((n >= 2) & (sxx > 0), slope, np.nan)
    return np.stack([out[s] for s in stats], axis=-1).reshape(*x.shape[2:], -1)


def segment_image(
    block: np.ndarray, valid: np.ndarray | None = None, method: str = "slic", **kw
) -> np.ndarray:
    """Segments of an image block (scikit-image), ids from 1; 0 at invalid pixels.

    Parameters
    ----------
    block : ndarray (n_bands, rows, cols)
    method : {"slic", "felzenszwalb"}
        ``slic``: ``n_segments`` (default: one per 100 pixels), ``compactness`` (10) on bands
        scaled to unit standard deviation; ``felzenszwalb``: ``scale`` (100), ``sigma``
        (0.5), ``min_size`` (20).
    """
    from skimage.segmentation import felzenszwalb, slic

    x = np.moveaxis(np.asarray(block, np.float64), 0, -1)
    v = np.ones(x.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    sd = np.array([x[..., b][v].std() if v.any() else 1.0 for b in range(x.shape[-1])])
    x = x - np.array([x[..., b][v].mean() if v.any() else 0.0 for b in range(x.shape[-1])])
    x = np.where(v[..., None], x / np.where(sd > 0, sd, 1.0), 0.0)
    if method == "slic":
        kw = {"n_segments": max(1, v.sum() // 100), "compactness": 10.0} | kw
        seg = slic(x, channel_axis=-1, start_label=1, mask=v, **kw)
    elif method == "felzenszwalb":
        kw = {"scale": 100.0, "sigma": 0.5, "min_size": 20} | kw
        seg = felzenszwalb(x, channel_axis=-1, **kw) + 1
    else:
        raise ConfigError(f"unknown segmentation {method!r} (slic, felzenszwalb)", key="method")
    return np.where(v, seg, 0).astype(np.int64)


def object_features(
    block: np.ndarray, segments: np.ndarray, valid: np.ndarray | None, spec: FeatureSpec
) -> np.ndarray:
    """Every pixel gets the features of its segment (:func:`segment_features`).

    Returns
    -------
    ndarray (rows, cols, len(spec.names)); NaN outside any segment.
    """
    ids, feats = segment_features(block, segments, valid, spec)
    out = np.full((*segments.shape, feats.shape[1]), np.nan)
    pos = np.searchsorted(ids, segments)
    inside = (segments > 0) & (pos < ids.size)
    inside &= ids[np.minimum(pos, ids.size - 1)] == segments
    out[inside] = feats[pos[inside]]
    return out
