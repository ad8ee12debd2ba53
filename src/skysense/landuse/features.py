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
    "pixel_indices",
    "infer_roles",
    "with_texture",
    "FEATURE_SETS",
    "feature_set_columns",
]

#: Statistics known per band. ``center`` is the central pixel of a window (odd windows only).
STATISTICS = ("mean", "max", "std", "min", "center")

#: Normalised-difference indices: name -> (role a, role b); index = (a - b) / (a + b).
INDICES = {
    "ndvi": ("nir", "red"),  # vegetation (Rouse et al. 1974)
    "ndwi": ("green", "nir"),  # open water (McFeeters 1996)
    "ndbi": ("swir", "nir"),  # built-up (Zha et al. 2003)
    "mndwi": ("green", "swir"),  # modified NDWI, water against built-up (Xu 2006)
    "gndvi": ("nir", "green"),  # green NDVI, chlorophyll (Gitelson et al. 1996)
    "nbr": ("nir", "swir2"),  # normalised burn ratio (Key & Benson 2006)
    "ngrdi": ("green", "red"),  # normalised green-red difference (Tucker 1979)
    "ndre": ("nir", "rededge"),  # red-edge NDVI (Gitelson & Merzlyak 1994)
    "ndti": ("swir", "swir2"),  # tillage / residue (van Deventer et al. 1997)
}

#: Band roles known to :data:`INDICES`, and the band names :func:`infer_roles` recognises for
#: them (lower case): role names themselves, Sentinel-2 band names, and common aliases.
ROLE_ALIASES = {
    "blue": ("blue", "b02", "coastal_blue"),
    "green": ("green", "b03"),
    "red": ("red", "b04"),
    "rededge": ("rededge", "red_edge", "re1", "b05"),
    "nir": ("nir", "nir1", "b08", "b8a"),
    "swir": ("swir", "swir1", "swir16", "b11"),
    "swir2": ("swir2", "swir22", "b12"),
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
    index_stats : sequence of str
        Statistics (from :data:`STATISTICS`) over the window of each index computed per pixel
        (``ndvi_std``, ``ndvi_center``, ...), beside the index of the band means (``ndvi``).
    texture : sequence of str
        GLCM properties (:data:`skysense.landuse.texture.GLCM_PROPS`) of the texture image
        over a ``texture_window_px`` window (``glcm_contrast``, ...); needs
        ``texture_weights`` and ``texture_range`` (see :func:`with_texture`).
    texture_window_px : int
        Odd window side of the texture (0: ``window_px``).
    texture_levels : int
        Grey levels of the quantised texture image.
    texture_weights : sequence of float
        ``n_bands + 1`` numbers: texture image = bands @ weights[:-1] + weights[-1].
    texture_range : (float, float)
        Quantisation bounds of the texture image.
    scales : sequence of int
        Extra odd window sides (larger than ``window_px``) over which the band means
        (``b1_mean_7px``) and the indices of those means (``ndvi_7px``) are computed too:
        the neighbourhood at several scales. Raster samples only (:func:`window_features`).
    """

    band_names: tuple[str, ...]
    stats: tuple[str, ...] = ("mean", "max", "std")
    window_px: int = 3
    indices: tuple[str, ...] = ()
    roles: tuple[tuple[str, str], ...] = ()
    index_stats: tuple[str, ...] = ()
    texture: tuple[str, ...] = ()
    texture_window_px: int = 0
    texture_levels: int = 16
    texture_weights: tuple[float, ...] = ()
    texture_range: tuple[float, ...] = ()
    scales: tuple[int, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "band_names", tuple(str(b) for b in self.band_names))
        object.__setattr__(self, "stats", tuple(self.stats))
        object.__setattr__(self, "indices", tuple(i.lower() for i in self.indices))
        roles = self.roles.items() if isinstance(self.roles, Mapping) else self.roles
        object.__setattr__(self, "roles", tuple((str(k), str(v)) for k, v in roles))
        object.__setattr__(self, "index_stats", tuple(self.index_stats))
        object.__setattr__(self, "texture", tuple(self.texture))
        object.__setattr__(self, "texture_weights", tuple(float(w) for w in self.texture_weights))
        object.__setattr__(self, "texture_range", tuple(float(v) for v in self.texture_range))
        object.__setattr__(self, "scales", tuple(int(w) for w in self.scales))
        self._check_extra()
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

    def _check_extra(self) -> None:
        bad = [w for w in self.scales if w <= self.window_px or w % 2 == 0]
        if bad or len(set(self.scales)) != len(self.scales):
            raise ConfigError(f"scales must be distinct odd window sides larger than the "
                              f"{self.window_px} px window, got {list(self.scales)}",
                              key="scales")  # fmt: skip
        bad = [s for s in self.index_stats if s not in STATISTICS]
        if bad:
            raise ConfigError(f"unknown statistic(s) {bad}; choose from {STATISTICS}",
                              key="index_stats")  # fmt: skip
        if not self.texture:
            return
        from skysense.landuse.texture import check_props

        check_props(self.texture)
        tw = self.texture_window
        if int(tw) != tw or tw < 3 or tw % 2 == 0:
            raise ConfigError(f"must be an odd integer >= 3, got {tw}", key="texture_window_px")
        if not 2 <= self.texture_levels <= 256:
            raise ConfigError(f"must be in 2..256, got {self.texture_levels}",
                              key="texture_levels")  # fmt: skip
        if len(self.texture_weights) != self.n_bands + 1:
            raise ConfigError(f"texture needs {self.n_bands + 1} weights (bands and offset), "
                              f"got {len(self.texture_weights)}; see with_texture()",
                              key="texture_weights")  # fmt: skip
        if len(self.texture_range) != 2 or not self.texture_range[1] > self.texture_range[0]:
            raise ConfigError(f"texture range must be (lo, hi) with hi > lo, got "
                              f"{self.texture_range}", key="texture_range")  # fmt: skip

    @property
    def n_bands(self) -> int:
        return len(self.band_names)

    @property
    def texture_window(self) -> int:
        """Side of the texture window (``texture_window_px``, or ``window_px`` when 0)."""
        return int(self.texture_window_px or self.window_px)

    @property
    def footprint_px(self) -> int:
        """Side of the largest window a feature reads (statistics, scales or texture)."""
        return max(int(self.window_px), self.texture_window if self.texture else 1,
                   *self.scales)  # fmt: skip

    @property
    def halo_px(self) -> int:
        """Pixels a block needs around it so every window is complete."""
        return self.footprint_px // 2

    @property
    def names(self) -> list[str]:
        """Feature names in column order."""
        return (
            feature_names(self.band_names, self.stats, self.indices)
            + [f"{i}_{s}" for i in self.indices for s in self.index_stats]
            + [f"glcm_{p}" for p in self.texture]
            + [f"{n}_{w}px" for w in self.scales for n in self.scale_columns]
        )

    @property
    def scale_columns(self) -> list[str]:
        """The names that every window of :attr:`scales` repeats (with a ``_<w>px`` suffix):
        the band means, then the indices of those means."""
        return [f"{b}_mean" for b in self.band_names] + list(self.indices)

    def to_dict(self) -> dict:
        d = {
            "band_names": list(self.band_names),
            "stats": list(self.stats),
            "window_px": int(self.window_px),
            "indices": list(self.indices),
            "roles": dict(self.roles),
        }
        # the newer fields only when used, so older readers still read older-style specs
        if self.index_stats:
            d["index_stats"] = list(self.index_stats)
        if self.texture:
            d |= {"texture": list(self.texture), "texture_window_px": self.texture_window,
                  "texture_levels": int(self.texture_levels),
                  "texture_weights": list(self.texture_weights),
                  "texture_range": list(self.texture_range)}  # fmt: skip
        if self.scales:
            d["scales"] = list(self.scales)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> FeatureSpec:
        return cls(
            band_names=tuple(d["band_names"]),
            stats=tuple(d.get("stats", ("mean", "max", "std"))),
            window_px=int(d.get("window_px", 3)),
            indices=tuple(d.get("indices", ())),
            roles=tuple(dict(d.get("roles", {})).items()),
            index_stats=tuple(d.get("index_stats", ())),
            texture=tuple(d.get("texture", ())),
            texture_window_px=int(d.get("texture_window_px", 0)),
            texture_levels=int(d.get("texture_levels", 16)),
            texture_weights=tuple(d.get("texture_weights", ())),
            texture_range=tuple(d.get("texture_range", ())),
            scales=tuple(d.get("scales", ())),
        )


#: The statistics of Li et al. 2014 (the seed's features).
SEED_STATS = ("mean", "max", "std")

#: Named subsets of a spec's feature columns, the feature sets the ``auto`` classifier
#: compares (:func:`feature_set_columns`).
FEATURE_SETS = {
    "all": "every feature column",
    "stats": "mean, max and std of each band over the base window (the seed's features)",
    "means+indices": "band means and the indices of the band means, over the base window and "
    "every scale (smooth features that transfer between polygons)",
}


def feature_set_columns(name: str, spec: FeatureSpec | None, n_features: int) -> np.ndarray | None:
    """Column indices of feature set ``name`` (:data:`FEATURE_SETS`) in a table of ``spec``.

    Returns None for ``"all"`` (every one of ``n_features`` columns).

    Raises
    ------
    ConfigError
        Unknown set, a set other than ``all`` without a spec, or a set with no column in it.
    """
    if name not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {name!r}; choose from {list(FEATURE_SETS)}",
                          key="features")  # fmt: skip
    if name == "all":
        return None
    if spec is None:
        raise ConfigError(f"feature set {name!r} needs the FeatureSpec of the columns",
                          key="features")  # fmt: skip
    if name == "stats":
        want = feature_names(spec.band_names, [s for s in spec.stats if s in SEED_STATS])
    else:
        # the base window's columns are the ones every scale repeats (band means need "mean")
        want = spec.scale_columns if "mean" in spec.stats else list(spec.indices)
        want += [f"{n}_{w}px" for w in spec.scales for n in spec.scale_columns]
    if not want:
        raise ConfigError(f"feature set {name!r} has no column in this spec", key="features")
    pos = {n: i for i, n in enumerate(spec.names)}
    return np.array([pos[n] for n in want], np.int64)


def feature_names(
    band_names: Sequence[str], stats: Sequence[str], indices: Sequence[str] = ()
) -> list[str]:
    """Names ``<band>_<stat>`` (band-major), then the index names."""
    return [f"{b}_{s}" for b in band_names for s in stats] + list(indices)


def infer_roles(band_names: Sequence[str]) -> dict[str, str]:
    """Band roles recognised from band names (:data:`ROLE_ALIASES`, case-insensitive).

    ``("blue", "green", "red", "nir", "swir1", "swir2")`` and Sentinel-2's ``B02 ... B12``
    are recognised; ambiguous names such as Landsat's ``b4`` are not (declare those).

    Returns
    -------
    dict role -> band name (the first band that matches each role).
    """
    out: dict[str, str] = {}
    for band in band_names:
        key = str(band).strip().lower()
        for role, aliases in ROLE_ALIASES.items():
            if key in aliases and role not in out:
                out[role] = str(band)
    return out


def with_texture(
    spec: FeatureSpec,
    pixels: np.ndarray,
    props: Sequence[str] = ("contrast", "homogeneity", "ASM", "correlation", "entropy"),
    *,
    band: str | None = None,
    levels: int = 16,
    window_px: int | None = None,
) -> FeatureSpec:
    """``spec`` with GLCM texture features, the texture image fitted on training pixels.

    Parameters
    ----------
    spec : FeatureSpec
    pixels : ndarray (n, n_bands)
        Training pixel values (e.g. the labelled pixels, or a sample of the image).
    props : sequence of str
        GLCM properties.
    band : str, optional
        Texture of this band; default the first principal component of ``pixels``.
    levels : int
        Grey levels (1st-99th percentile of the texture image mapped onto them).
    window_px : int, optional
        Texture window (odd, >= 3; default ``spec.window_px``).
    """
    from skysense.landuse.texture import fit_texture_projection

    if band is not None and band not in spec.band_names:
        raise ConfigError(f"unknown band {band!r}; the bands are {list(spec.band_names)}",
                          key="texture_band")  # fmt: skip
    b = None if band is None else spec.band_names.index(band)
    w, lo, hi = fit_texture_projection(np.asarray(pixels, float), b)
    return dataclasses.replace(spec, texture=tuple(props), texture_levels=int(levels),
                               texture_window_px=int(window_px or spec.window_px),
                               texture_weights=tuple(w.tolist()), texture_range=(lo, hi))  # fmt: skip


def pixel_indices(values: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The indices of ``spec`` for every pixel.

    Parameters
    ----------
    values : ndarray (..., n_bands)
        Pixel values (NaN for nodata).

    Returns
    -------
    ndarray (..., len(spec.indices)); 0 where both bands are 0, NaN where a band is NaN.
    """
    roles = dict(spec.roles)
    col = {b: i for i, b in enumerate(spec.band_names)}
    v = np.asarray(values, np.float64)
    out = np.empty((*v.shape[:-1], len(spec.indices)))
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, name in enumerate(spec.indices):
            ra, rb = INDICES[name]
            a = v[..., col[roles[ra]]]
            b = v[..., col[roles[rb]]]
            s = a + b
            out[..., j] = np.where(s != 0, (a - b) / np.where(s != 0, s, 1.0), 0.0)
            out[..., j] = np.where(np.isnan(s), np.nan, out[..., j])
    return out


def texture_image(values: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Quantised texture image (grey levels, uint8) of pixel values ``(..., n_bands)``."""
    from skysense.landuse.texture import quantise

    w = np.asarray(spec.texture_weights)
    t = np.asarray(values, np.float64) @ w[:-1] + w[-1]
    return quantise(t, spec.texture_range[0], spec.texture_range[1], spec.texture_levels)


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
    if spec.scales:
        raise ConfigError("multi-scale features (scales) need the pixels around every sample: "
                          "compute them from a raster (window_features)", key="scales")  # fmt: skip
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
    out = _assemble(per_stat, spec)
    extra = []
    if spec.indices and spec.index_stats:
        idx = pixel_indices(xv, spec)  # (n, n_pixels, n_indices), NaN at invalid pixels
        st = _stats_of(idx, spec.index_stats, spec.window_px)
        extra.append(np.stack([st[s] for s in spec.index_stats], axis=2).reshape(len(x), -1))
    if spec.texture:
        from skysense.landuse.texture import glcm_sample_features

        w = spec.texture_window
        if x.shape[1] != w * w:
            raise InputError(f"texture needs windows of {w}x{w} pixels, samples have "
                             f"{x.shape[1]}")  # fmt: skip
        q = texture_image(np.where(valid[:, :, None], x, 0.0), spec).reshape(-1, w, w)
        extra.append(glcm_sample_features(q, valid.reshape(-1, w, w), spec.texture,
                                          spec.texture_levels))  # fmt: skip
    return np.hstack([out, *extra]) if extra else out


def _stats(xv: np.ndarray, spec: FeatureSpec, x: np.ndarray) -> dict[str, np.ndarray]:
    need = set(spec.stats) | ({"mean"} if spec.indices else set())
    return _stats_of(xv, need, spec.window_px, x.shape[1])


def _stats_of(
    xv: np.ndarray, need, window_px: int, n_pixels: int | None = None
) -> dict[str, np.ndarray]:
    """Statistics ``need`` over axis 1 of ``xv (n, n_pixels, k)`` (NaN = left out)."""
    x = xv
    if n_pixels is None:
        n_pixels = xv.shape[1]
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
        if n_pixels != window_px**2:
            raise InputError(
                f"'center' needs windows of {window_px}x{window_px} pixels, samples have {n_pixels}"
            )
        out["center"] = x[:, n_pixels // 2, :]
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
    extra = []
    if spec.indices and spec.index_stats:
        # the indices per pixel, then their window statistics by the same kernel
        pix = np.moveaxis(block, 0, -1)
        idx = np.ascontiguousarray(np.moveaxis(pixel_indices(pix, spec), -1, 0))
        codes = np.array([_STAT_CODE[s] for s in spec.index_stats], np.int64)
        ext = np.empty((rows, cols, idx.shape[0] * codes.size), np.float32)
        _WINDOW_KERNEL(idx, np.ascontiguousarray(valid & np.isfinite(idx).all(axis=0)),
                       int(spec.window_px), codes, ext)  # fmt: skip
        extra.append(ext)
    if spec.texture:
        from skysense.landuse.texture import glcm_window_features

        q = texture_image(np.where(valid[:, :, None], np.moveaxis(block, 0, -1), 0.0), spec)
        extra.append(glcm_window_features(q, valid, spec.texture_window, spec.texture,
                                          spec.texture_levels).astype(np.float32))  # fmt: skip
    for w in spec.scales:
        # the band means over a larger window, and the indices of those means
        means = np.empty((rows, cols, nb), np.float32)
        _WINDOW_KERNEL(np.ascontiguousarray(block), np.ascontiguousarray(valid, dtype=np.bool_),
                       int(w), np.zeros(1, np.int64), means)  # fmt: skip
        extra.append(means)
        if spec.indices:
            flat = means.reshape(-1, nb).astype(np.float64)
            extra.append(spectral_indices(flat, spec).reshape(rows, cols, -1).astype(np.float32))
    if extra:
        out = np.concatenate([out, *extra], axis=2)
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
    if spec.texture or spec.index_stats or spec.scales:
        raise ConfigError("texture, index statistics and scales are defined for pixel windows, "
                          "not polygons (use --mode pixel)", key="texture")  # fmt: skip
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
