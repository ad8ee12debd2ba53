"""Grey-level co-occurrence (GLCM, Haralick) texture of pixel windows, pure and vectorised.

The texture image is one band or a linear combination of the bands (e.g. the first principal
component of the training pixels, :func:`fit_texture_projection`), quantised linearly into
``levels`` grey levels between two fixed bounds (stored with the model, so training and
prediction quantise alike). For every window the co-occurrence matrix counts pixel pairs at
distance 1 in the four directions 0, 45, 90 and 135 degrees, symmetric and normalised; each
property is the mean over the directions - the same numbers as scikit-image's
``graycomatrix(window, [1], [0, pi/4, pi/2, 3pi/4], levels, symmetric=True, normed=True)`` and
``graycoprops(...).mean()`` (tested against it). Pairs with an invalid (nodata) pixel or a pixel
beyond the block are left out.

One numba pass per pixel replaces the per-window Python loop (a 512 x 512 block with a 5 x 5
window takes well under a second; scikit-image per window takes minutes). The sums needed by
every property are integers, so constant windows give exactly zero variance (correlation 1,
as in scikit-image).
"""

from __future__ import annotations

import functools

import numpy as np

from skysense.errors import ConfigError, InputError

__all__ = [
    "GLCM_PROPS",
    "quantise",
    "fit_texture_projection",
    "glcm_window_features",
    "glcm_sample_features",
]

#: GLCM properties (scikit-image ``graycoprops`` names).
GLCM_PROPS = (
    "contrast",
    "dissimilarity",
    "homogeneity",
    "ASM",
    "energy",
    "correlation",
    "entropy",
    "mean",
    "variance",
)
_PROP_CODE = {p: i for i, p in enumerate(GLCM_PROPS)}
#: Offsets (row, col) of the four directions at distance 1; symmetric counting makes the sign
#: irrelevant.
_OFFSETS = np.array([[0, 1], [1, 1], [1, 0], [1, -1]], np.int64)


def check_props(props) -> tuple[str, ...]:
    """Validated property names (``ConfigError`` naming the unknown ones)."""
    props = tuple(props)
    bad = [p for p in props if p not in _PROP_CODE]
    if bad:
        raise ConfigError(f"unknown GLCM propert(ies) {bad}; choose from {list(GLCM_PROPS)}",
                          key="texture")  # fmt: skip
    return props


def quantise(image: np.ndarray, lo: float, hi: float, levels: int) -> np.ndarray:
    """Grey levels ``0 .. levels-1``: ``floor((image - lo) / (hi - lo) * levels)``, clipped.

    Parameters
    ----------
    image : ndarray
        Any shape, same unit as ``lo``/``hi``; NaN becomes level 0 (mark it invalid).
    lo, hi : float
        Bounds (``hi > lo``).
    levels : int
        2 .. 256.

    Returns
    -------
    ndarray of uint8, same shape.
    """
    if not 2 <= int(levels) <= 256:
        raise ConfigError(f"must be in 2..256, got {levels}", key="texture_levels")
    if not hi > lo:
        raise ConfigError(f"texture range needs hi > lo, got ({lo}, {hi})", key="texture_range")
    q = np.floor((np.asarray(image, np.float64) - lo) / (hi - lo) * levels)
    q = np.where(np.isfinite(q), q, 0.0)
    return np.clip(q, 0, levels - 1).astype(np.uint8)


def fit_texture_projection(
    pixels: np.ndarray, band: int | None = None, *, clip_percent: float = 1.0
) -> tuple[np.ndarray, float, float]:
    """Weights and quantisation bounds of the texture image, from training pixels.

    Parameters
    ----------
    pixels : ndarray (n, n_bands)
        Training pixel values (NaN rows ignored).
    band : int, optional
        Use this band (0-based) alone; default: the first principal component of the pixels
        (centred on the band means; sign fixed so the largest weight is positive).
    clip_percent : float
        The bounds are the ``clip_percent`` and ``100 - clip_percent`` percentiles of the
        projected pixels.

    Returns
    -------
    weights : ndarray (n_bands + 1,)
        Texture image = ``pixels @ weights[:-1] + weights[-1]``.
    lo, hi : float
    """
    x = np.asarray(pixels, np.float64)
    if x.ndim != 2:
        raise InputError(f"pixels must be (n, n_bands), got shape {x.shape}")
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] < 2:
        raise InputError("need at least two valid pixels to fit the texture image")
    nb = x.shape[1]
    if band is not None:
        if not 0 <= band < nb:
            raise ConfigError(f"band index {band} outside 0..{nb - 1}", key="texture_band")
        w = np.zeros(nb + 1)
        w[band] = 1.0
    else:
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        v = vt[0]
        v = v if v[np.argmax(np.abs(v))] > 0 else -v
        w = np.append(v, -float(mean @ v))
    t = x @ w[:-1] + w[-1]
    lo, hi = np.percentile(t, [clip_percent, 100 - clip_percent])
    if not hi > lo:
        lo, hi = float(t.min()), float(t.max())
    if not hi > lo:
        hi = lo + 1.0  # a constant image: every pixel one level
    return w, float(lo), float(hi)


@functools.lru_cache(maxsize=1)
def _kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def glcm_at(q, valid, r0, r1, c0, c1, levels, hist, pi, pj, codes, offsets, out_row):
        # Properties of the window rows r0:r1, cols c0:c1 of q, averaged over the directions
        # that have at least one pair. hist is a zeroed (levels, levels) int64 scratch array,
        # left zeroed again; pi, pj are scratch for the grey levels of the window's pairs.
        n_props = codes.shape[0]
        for k in range(n_props):
            out_row[k] = 0.0
        n_dir = 0
        for o in range(offsets.shape[0]):
            dr = offsets[o, 0]
            dc = offsets[o, 1]
            n_pairs = 0
            for r in range(max(r0, r0 - dr), min(r1, r1 - dr)):
                for c in range(max(c0, c0 - dc), min(c1, c1 - dc)):
                    if valid[r, c] and valid[r + dr, c + dc]:
                        pi[n_pairs] = q[r, c]
                        pj[n_pairs] = q[r + dr, c + dc]
                        n_pairs += 1
            if n_pairs == 0:
                continue
            t = 2 * n_pairs  # pair count, both orders (symmetric)
            s1 = 0  # sum of i over both orders (= sum of i + j per pair)
            s2 = 0  # sum of i^2 over both orders
            sij = 0  # sum of i * j over both orders
            sd2 = 0  # sum of (i - j)^2 over both orders
            sad = 0  # sum of |i - j| over both orders
            shom = 0.0  # sum of 1 / (1 + (i - j)^2) over both orders
            ssq = 0  # sum of hist^2, updated incrementally
            for p in range(n_pairs):
                i = pi[p]
                j = pj[p]
                d = i - j
                s1 += i + j
                s2 += i * i + j * j
                sij += 2 * i * j
                sd2 += 2 * d * d
                sad += 2 * abs(d)
                shom += 2.0 / (1.0 + d * d)
                if i == j:
                    h = hist[i, i]
                    ssq += 4 * h + 4
                    hist[i, i] = h + 2
                else:
                    h = hist[i, j]
                    ssq += 2 * (2 * h + 1)  # (i, j) and (j, i) both grow by one
                    hist[i, j] = h + 1
                    hist[j, i] = h + 1
            # entropy from the counts; the histogram is cleared on the way
            ent = 0.0
            for p in range(n_pairs):
                i = pi[p]
                j = pj[p]
                h = hist[i, j]
                if h > 0:
                    prob = h / t
                    ent -= prob * np.log(prob) * (1 if i == j else 2)
                    hist[i, j] = 0
                    hist[j, i] = 0
            n_dir += 1
            tf = np.float64(t)
            mu = s1 / tf
            var_num = s2 * t - s1 * s1  # exact in integers: t^2 * variance
            var = var_num / (tf * tf)
            cov = (sij * t - s1 * s1) / (tf * tf)
            for k in range(n_props):
                code = codes[k]
                if code == 0:
                    v = sd2 / tf
                elif code == 1:
                    v = sad / tf
                elif code == 2:
                    v = shom / tf
                elif code == 3:
                    v = ssq / (tf * tf)
                elif code == 4:
                    v = np.sqrt(ssq / (tf * tf))
                elif code == 5:
                    v = 1.0 if var_num == 0 else cov / var
                elif code == 6:
                    v = ent
                elif code == 7:
                    v = mu
                else:
                    v = var
                out_row[k] += v
        if n_dir == 0:
            for k in range(n_props):
                out_row[k] = np.nan
        else:
            for k in range(n_props):
                out_row[k] /= n_dir

    @numba.njit(cache=True, nogil=True)
    def all_windows(q, valid, w, levels, codes, offsets, out):
        rows, cols = q.shape
        h = w // 2
        hist = np.zeros((levels, levels), np.int64)
        pi = np.empty(w * w, np.int64)
        pj = np.empty(w * w, np.int64)
        for r in range(rows):
            for c in range(cols):
                glcm_at(q, valid, max(r - h, 0), min(r + h + 1, rows), max(c - h, 0),
                        min(c + h + 1, cols), levels, hist, pi, pj, codes, offsets,
                        out[r, c])  # fmt: skip

    @numba.njit(cache=True, nogil=True)
    def whole_images(q, valid, levels, codes, offsets, out):
        n, rows, cols = q.shape
        hist = np.zeros((levels, levels), np.int64)
        pi = np.empty(rows * cols, np.int64)
        pj = np.empty(rows * cols, np.int64)
        for s in range(n):
            glcm_at(q[s], valid[s], 0, rows, 0, cols, levels, hist, pi, pj, codes, offsets,
                    out[s])  # fmt: skip

    return all_windows, whole_images


def glcm_window_features(
    q: np.ndarray, valid: np.ndarray | None, window_px: int, props, levels: int
) -> np.ndarray:
    """GLCM properties of the window around every pixel of a quantised image.

    Parameters
    ----------
    q : ndarray (rows, cols) of int
        Grey levels ``0 .. levels-1`` (:func:`quantise`).
    valid : ndarray (rows, cols) of bool, optional
        False for nodata pixels (their pairs are left out). ``None``: all valid.
    window_px : int
        Odd window side; windows are cut at the block edge.
    props : sequence of str
        From :data:`GLCM_PROPS`.
    levels : int

    Returns
    -------
    ndarray (rows, cols, len(props)), float64; NaN where a window has no valid pair.
    """
    props = check_props(props)
    q = np.ascontiguousarray(q, dtype=np.uint8)
    if q.ndim != 2:
        raise InputError(f"the quantised image must be 2-d, got shape {q.shape}")
    if int(q.max(initial=0)) >= levels:
        raise InputError(f"grey levels must be below {levels}, got {int(q.max())}")
    valid = np.ones(q.shape, np.bool_) if valid is None else np.ascontiguousarray(valid, np.bool_)
    codes = np.array([_PROP_CODE[p] for p in props], np.int64)
    out = np.empty((*q.shape, len(props)), np.float64)
    _kernel()[0](q, valid, int(window_px), int(levels), codes, _OFFSETS, out)
    return out


def glcm_sample_features(q: np.ndarray, valid: np.ndarray | None, props, levels: int) -> np.ndarray:
    """GLCM properties of whole small images (one per sample, e.g. Statlog 3 x 3 windows).

    Parameters
    ----------
    q : ndarray (n, rows, cols) of int
        Grey levels per sample.
    valid : ndarray (n, rows, cols) of bool, optional

    Returns
    -------
    ndarray (n, len(props)), float64.
    """
    props = check_props(props)
    q = np.ascontiguousarray(q, dtype=np.uint8)
    if q.ndim != 3:
        raise InputError(f"sample images must be (n, rows, cols), got shape {q.shape}")
    if q.size and int(q.max()) >= levels:
        raise InputError(f"grey levels must be below {levels}, got {int(q.max())}")
    valid = np.ones(q.shape, np.bool_) if valid is None else np.ascontiguousarray(valid, np.bool_)
    codes = np.array([_PROP_CODE[p] for p in props], np.int64)
    out = np.empty((q.shape[0], len(props)), np.float64)
    _kernel()[1](q, valid, int(levels), codes, _OFFSETS, out)
    return out
