"""Pure per-band sample statistics: the features of land-use classification.

A *sample* is a set of pixels - a square window around a pixel, or every pixel of a polygon or
segment - and its features are statistics of every band over those pixels (mean, maximum and
standard deviation by default, as in Li et al. 2014), optionally with spectral indices (NDVI,
NDWI, NDBI) computed from the band means when the band roles are declared. Feature names say
band and statistic: ``b3_mean``, ``nir_std``, ``ndvi``.

Two equivalent entry points:

- :func:`sample_features` for explicit pixel stacks ``(n_samples, n_pixels, n_bands)`` (Statlog
  3x3 neighbourhoods, polygons padded with NaN);
- :func:`window_features` for every pixel of an image block at once (sliding window, separable
  filters), used to classify whole rasters. Pixels outside the block and invalid (nodata)
  pixels are left out of every statistic, so both give the same numbers (tested).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from skysense.errors import ConfigError, InputError

__all__ = [
    "STATISTICS",
    "INDICES",
    "FeatureSpec",
    "feature_names",
    "sample_features",
    "window_features",
    "segment_features",
    "spectral_indices",
]

#: Statistics known per band. ``center`` is the central pixel of a window (odd windows only).
STATISTICS = ("mean", "max", "std", "min", "center")

#: Normalised-difference indices: name -> (role a, role b); index = (a - b) / (a + b).
INDICES = {
    "ndvi": ("nir", "red"),  # vegetation (Rouse et al. 1974)
    "ndwi": ("green", "nir"),  # open water (McFeeters 1996)
    "ndbi": ("swir", "nir"),  # built-up (Zha et al. 2003)
}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """What features a model uses; stored with the model so prediction computes the same.

    Parameters
    ----------
    band_names : sequence of str
        One name per raster band, in band order (e.g. ``("b1", "b2", ...)``).
    stats : sequence of str
        Statistics per band, from :data:`STATISTICS`.
    window_px : int
        Side of the square pixel window (odd) used for pixel samples and raster prediction.
    indices : sequence of str
        Spectral indices from :data:`INDICES`; each needs its two roles in ``roles``.
    roles : mapping str -> str
        Band role ("green", "red", "nir", "swir", ...) -> band name.
    """

    band_names: tuple[str, ...]
    stats: tuple[str, ...] = ("mean", "max", "std")
    window_px: int = 3
    indices: tuple[str, ...] = ()
    roles: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "band_names", tuple(str(b) for b in self.band_names))
        object.__setattr__(self, "stats", tuple(self.stats))
        object.__setattr__(self, "indices", tuple(i.lower() for i in self.indices))
        roles = self.roles.items() if isinstance(self.roles, Mapping) else self.roles
        object.__setattr__(self, "roles", tuple((str(k), str(v)) for k, v in roles))
        if not self.band_names:
            raise ConfigError("at least one band is needed", key="band_names")
        if len(set(self.band_names)) != len(self.band_names):
            raise ConfigError(f"duplicate band names {self.band_names}", key="band_names")
        bad = [s for s in self.stats if s not in STATISTICS]
        if bad or not self.stats:
            raise ConfigError(f"unknown statistic(s) {bad}; choose from {STATISTICS}", key="stats")
        if int(self.window_px) != self.window_px or self.window_px < 1 or self.window_px % 2 == 0:
            raise ConfigError(
                f"must be an odd positive integer, got {self.window_px}", key="window_px"
            )
        role_map = dict(self.roles)
        for band in role_map.values():
            if band not in self.band_names:
                raise ConfigError(f"role refers to unknown band {band!r}", key="roles")
        for name in self.indices:
            if name not in INDICES:
                raise ConfigError(
                    f"unknown index {name!r}; choose from {list(INDICES)}", key="indices"
                )
            missing = [r for r in INDICES[name] if r not in role_map]
            if missing:
                raise ConfigError(
                    f"index {name!r} needs the band role(s) {missing} (e.g. --role nir=b4)",
                    key="roles",
                )

    @property
    def n_bands(self) -> int:
        return len(self.band_names)

    @property
    def names(self) -> list[str]:
        """Feature names in column order."""
        return feature_names(self.band_names, self.stats, self.indices)

    def to_dict(self) -> dict:
        return {
            "band_names": list(self.band_names),
            "stats": list(self.stats),
            "window_px": int(self.window_px),
            "indices": list(self.indices),
            "roles": dict(self.roles),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> FeatureSpec:
        return cls(
            band_names=tuple(d["band_names"]),
            stats=tuple(d.get("stats", ("mean", "max", "std"))),
            window_px=int(d.get("window_px", 3)),
            indices=tuple(d.get("indices", ())),
            roles=tuple(dict(d.get("roles", {})).items()),
        )


def feature_names(
    band_names: Sequence[str], stats: Sequence[str], indices: Sequence[str] = ()
) -> list[str]:
    """Names ``<band>_<stat>`` (band-major), then the index names."""
    return [f"{b}_{s}" for b in band_names for s in stats] + list(indices)


def spectral_indices(band_means: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Normalised-difference indices from band means.

    Parameters
    ----------
    band_means : ndarray (n, n_bands)
        Mean of each band over each sample, any consistent unit (DN or reflectance).
    spec : FeatureSpec

    Returns
    -------
    ndarray (n, len(spec.indices)), dimensionless in [-1, 1]; NaN where a + b == 0.
    """
    roles = dict(spec.roles)
    col = {b: i for i, b in enumerate(spec.band_names)}
    out = np.empty((band_means.shape[0], len(spec.indices)))
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, name in enumerate(spec.indices):
            ra, rb = INDICES[name]
            a = band_means[:, col[roles[ra]]]
            b = band_means[:, col[roles[rb]]]
            s = a + b
            out[:, j] = np.where(s != 0, (a - b) / np.where(s != 0, s, 1.0), np.nan)
    return out


def _assemble(per_stat: dict[str, np.ndarray], spec: FeatureSpec) -> np.ndarray:
    """Stack ``per_stat[stat] (n, n_bands)`` band-major into ``(n, n_features)``."""
    n = next(iter(per_stat.values())).shape[0]
    cols = np.empty((n, spec.n_bands, len(spec.stats)))
    for k, s in enumerate(spec.stats):
        cols[:, :, k] = per_stat[s]
    out = cols.reshape(n, -1)
    if spec.indices:
        means = per_stat["mean"] if "mean" in per_stat else None
        out = np.hstack([out, spectral_indices(means, spec)])
    return out


def sample_features(pixels: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Features of explicit samples.

    Parameters
    ----------
    pixels : ndarray (n_samples, n_pixels, n_bands)
        Pixel values of each sample; NaN marks nodata (and padding of shorter polygons).
        For the ``center`` statistic ``n_pixels`` must be ``window_px**2`` in row-major
        window order (the Statlog layout), the centre being pixel ``n_pixels // 2``.
    spec : FeatureSpec

    Returns
    -------
    ndarray (n_samples, len(spec.names)), float64. Standard deviation with ddof=0.

    Raises
    ------
    InputError
        If the band count differs from ``spec`` or a sample has no valid pixel.
    """
    x = np.asarray(pixels, dtype=float)
    if x.ndim != 3:
        raise InputError(f"pixels must be (n_samples, n_pixels, n_bands), got shape {x.shape}")
    if x.shape[2] != spec.n_bands:
        raise InputError(
            f"samples have {x.shape[2]} bands but the feature spec has {spec.n_bands} "
            f"({', '.join(spec.band_names)})"
        )
    valid = np.isfinite(x).all(axis=2)  # a pixel counts only when every band is valid
    counts = valid.sum(axis=1)
    if x.shape[0] and (counts == 0).any():
        bad = np.flatnonzero(counts == 0)
        raise InputError(f"{bad.size} sample(s) have no valid pixel (all nodata), first: {bad[0]}")
    xv = np.where(valid[:, :, None], x, np.nan)
    per_stat = _stats(xv, spec, x)
    return _assemble(per_stat, spec)


def _stats(xv: np.ndarray, spec: FeatureSpec, x: np.ndarray) -> dict[str, np.ndarray]:
    need = set(spec.stats) | ({"mean"} if spec.indices else set())
    out: dict[str, np.ndarray] = {}
    if "mean" in need or "std" in need:
        out["mean"] = np.nanmean(xv, axis=1)
    if "std" in need:
        out["std"] = np.sqrt(np.nanmean((xv - out["mean"][:, None, :]) ** 2, axis=1))
    if "max" in need:
        out["max"] = np.nanmax(xv, axis=1)
    if "min" in need:
        out["min"] = np.nanmin(xv, axis=1)
    if "center" in need:
        if x.shape[1] != spec.window_px**2:
            raise InputError(
                f"'center' needs windows of {spec.window_px}x{spec.window_px} pixels, "
                f"samples have {x.shape[1]}"
            )
        out["center"] = xv[:, x.shape[1] // 2, :]
    return out


def _window_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(block, valid, w, codes, out):
        # One fused pass per pixel and band over its w x w window: count, sum and sum of squares
        # of deviations from the window's first valid value (no cancellation), max, min.
        nb, rows, cols = block.shape
        ns = codes.shape[0]
        h = w // 2
        for b in range(nb):
            for r in range(rows):
                r0 = max(r - h, 0)
                r1 = min(r + h + 1, rows)
                for c in range(cols):
                    c0 = max(c - h, 0)
                    c1 = min(c + h + 1, cols)
                    n = 0
                    x0 = 0.0
                    s1 = 0.0
                    s2 = 0.0
                    mx = -np.inf
                    mn = np.inf
                    for rr in range(r0, r1):
                        for cc in range(c0, c1):
                            if valid[rr, cc]:
                                x = np.float64(block[b, rr, cc])
                                if n == 0:
                                    x0 = x
                                d = x - x0
                                n += 1
                                s1 += d
                                s2 += d * d
                                mx = max(mx, x)
                                mn = min(mn, x)
                    base = b * ns
                    for k in range(ns):
                        code = codes[k]
                        if n == 0:
                            v = np.nan
                        elif code == 0:
                            v = x0 + s1 / n
                        elif code == 1:
                            v = mx
                        elif code == 2:
                            m = s1 / n
                            var = s2 / n - m * m
                            v = np.sqrt(var) if var > 0 else 0.0
                        elif code == 3:
                            v = mn
                        else:
                            v = np.float64(block[b, r, c]) if valid[r, c] else np.nan
                        out[r, c, base + k] = v

    return kernel


_WINDOW_KERNEL = None
_STAT_CODE = {"mean": 0, "max": 1, "std": 2, "min": 3, "center": 4}


def window_features(block: np.ndarray, valid: np.ndarray | None, spec: FeatureSpec) -> np.ndarray:
    """Features of the ``window_px`` x ``window_px`` window around every pixel of a block.

    Parameters
    ----------
    block : ndarray (n_bands, rows, cols)
        Pixel values (any numeric dtype).
    valid : ndarray (rows, cols) of bool, optional
        False for nodata pixels; they and pixels beyond the block edge are left out of every
        window's statistics. ``None``: all valid.
    spec : FeatureSpec

    Returns
    -------
    ndarray (rows, cols, len(spec.names)), float32. Windows without any valid pixel are NaN.
    """
    global _WINDOW_KERNEL
    block = np.asarray(block)
    if block.ndim != 3 or block.shape[0] != spec.n_bands:
        raise InputError(
            f"image block has {block.shape[0] if block.ndim == 3 else '?'} bands (shape "
            f"{block.shape}) but the feature spec has {spec.n_bands} ({', '.join(spec.band_names)})"
        )
    nb, rows, cols = block.shape
    if valid is None:
        valid = np.ones((rows, cols), bool)
    if block.dtype.kind not in "uif":
        block = block.astype(np.float64)
    stats = list(spec.stats)
    extra_mean = bool(spec.indices) and "mean" not in stats
    if extra_mean:
        stats.append("mean")  # computed for the indices, dropped afterwards
    codes = np.array([_STAT_CODE[s] for s in stats], np.int64)
    out = np.empty((rows, cols, nb * len(stats) + len(spec.indices)), np.float32)
    if _WINDOW_KERNEL is None:
        _WINDOW_KERNEL = _window_kernel()
    _WINDOW_KERNEL(np.ascontiguousarray(block), np.ascontiguousarray(valid, dtype=np.bool_),
                   int(spec.window_px), codes, out)  # fmt: skip
    if spec.indices:
        ns = len(stats)
        mean_k = stats.index("mean")
        means = out[:, :, mean_k : nb * ns : ns].reshape(-1, nb).astype(np.float64)
        out[:, :, nb * ns :] = spectral_indices(means, spec).reshape(rows, cols, -1)
        if extra_mean:
            keep = [b * ns + k for b in range(nb) for k in range(ns - 1)]
            keep += list(range(nb * ns, out.shape[2]))
            out = np.ascontiguousarray(out[:, :, keep])
    return out


def segment_features(
    block: np.ndarray, segments: np.ndarray, valid: np.ndarray | None, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Features of every segment (polygon, object) of a labelled block.

    Parameters
    ----------
    block : ndarray (n_bands, rows, cols)
    segments : ndarray (rows, cols) of int
        Segment id per pixel; 0 = no segment.
    valid : ndarray (rows, cols) of bool, optional
        False for nodata pixels (left out).
    spec : FeatureSpec
        ``center`` is not defined for segments.

    Returns
    -------
    ids : ndarray (m,) of int
        Segment ids that have at least one valid pixel, sorted.
    features : ndarray (m, len(spec.names)), float64
    """
    if "center" in spec.stats:
        raise ConfigError("the 'center' statistic is not defined for polygons", key="stats")
    block = np.asarray(block)
    if block.ndim != 3 or block.shape[0] != spec.n_bands:
        raise InputError(f"image block shape {block.shape} does not have {spec.n_bands} bands")
    sel = segments > 0
    if valid is not None:
        sel &= valid
    seg = segments[sel]
    ids, inv = np.unique(seg, return_inverse=True)
    if ids.size == 0:
        return ids, np.empty((0, len(spec.names)))
    vals = block[:, sel].T.astype(np.float64)  # (n_pix, n_bands)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(ids.size + 1))
    sv = vals[order]
    n = ids.size
    counts = np.diff(bounds).astype(float)
    per: dict[str, np.ndarray] = {}
    sums = np.add.reduceat(sv, bounds[:-1], axis=0)
    mean = sums / counts[:, None]
    per["mean"] = mean
    dev = sv - np.repeat(mean, counts.astype(int), axis=0)
    per["std"] = np.sqrt(np.add.reduceat(dev * dev, bounds[:-1], axis=0) / counts[:, None])
    per["max"] = np.maximum.reduceat(sv, bounds[:-1], axis=0)
    per["min"] = np.minimum.reduceat(sv, bounds[:-1], axis=0)
    assert per["mean"].shape == (n, spec.n_bands)
    return ids, _assemble(per, spec)
