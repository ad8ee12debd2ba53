"""Indices per pixel, GLCM texture and role inference against independent computations (#20)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from skysense.errors import ConfigError, InputError
from skysense.landuse.features import (
    FeatureSpec,
    infer_roles,
    sample_features,
    window_features,
    with_texture,
)
from skysense.landuse.texture import (
    GLCM_PROPS,
    fit_texture_projection,
    glcm_sample_features,
    glcm_window_features,
    quantise,
)

ANGLES = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]


def _skimage_props(window: np.ndarray, levels: int, props=GLCM_PROPS) -> np.ndarray:
    P = graycomatrix(window, [1], ANGLES, levels=levels, symmetric=True, normed=True)
    return np.array([graycoprops(P, p).mean() for p in props])


def _skimage_masked(window, valid, levels, props=GLCM_PROPS):
    """Invalid pixels as an extra grey level whose pairs are dropped before normalising."""
    w = np.where(valid, window, levels).astype(np.uint8)
    P = graycomatrix(w, [1], ANGLES, levels=levels + 1, symmetric=True, normed=False)
    P = P[:levels, :levels].astype(float)
    keep = P.sum(axis=(0, 1))[0] > 0  # directions with at least one valid pair
    return np.array([graycoprops(P[:, :, :, keep], p).mean() for p in props])


def test_glcm_matches_skimage_on_windows():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 8, (30, 40)).astype(np.uint8)
    q[5:15, 5:15] = 3  # a constant patch: zero variance, correlation 1 as in scikit-image
    out = glcm_window_features(q, None, 5, GLCM_PROPS, 8)
    for r, c in [(20, 25), (9, 9), (0, 0), (29, 39), (12, 5)]:
        win = q[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3]
        np.testing.assert_allclose(out[r, c], _skimage_props(win, 8), rtol=1e-12, atol=1e-12)
    assert out[9, 9, GLCM_PROPS.index("correlation")] == 1.0
    assert out[9, 9, GLCM_PROPS.index("contrast")] == 0.0


def test_glcm_leaves_out_invalid_pixels():
    rng = np.random.default_rng(1)
    q = rng.integers(0, 6, (12, 12)).astype(np.uint8)
    valid = rng.random((12, 12)) > 0.25
    out = glcm_window_features(q, valid, 7, GLCM_PROPS, 6)
    for r, c in [(6, 6), (3, 8), (0, 11)]:
        sl = (slice(max(r - 3, 0), r + 4), slice(max(c - 3, 0), c + 4))
        np.testing.assert_allclose(out[r, c], _skimage_masked(q[sl], valid[sl], 6), atol=1e-12)


def test_glcm_sample_features_are_whole_image_glcms():
    rng = np.random.default_rng(2)
    q = rng.integers(0, 4, (5, 3, 3)).astype(np.uint8)
    got = glcm_sample_features(q, None, ("contrast", "ASM", "entropy"), 4)
    for k in range(5):
        np.testing.assert_allclose(got[k], _skimage_props(q[k], 4, ("contrast", "ASM", "entropy")))


def test_quantise_and_projection():
    np.testing.assert_array_equal(
        quantise(np.array([-1.0, 0.0, 0.49, 0.5, 0.99, 1.0, 5.0, np.nan]), 0.0, 1.0, 2),
        [0, 0, 0, 1, 1, 1, 1, 0],
    )
    rng = np.random.default_rng(3)
    t = rng.normal(size=500)
    pixels = np.column_stack([3 * t, -3 * t, 0.01 * rng.normal(size=500)]) + [10, 20, 30]
    w, lo, hi = fit_texture_projection(pixels)
    # first principal component: the (1, -1, 0)/sqrt(2) direction, centred
    np.testing.assert_allclose(np.abs(w[:3]), [2**-0.5, 2**-0.5, 0], atol=1e-3)
    proj = pixels @ w[:3] + w[3]
    assert abs(proj.mean()) < 1e-9 and lo < 0 < hi
    w1, _, _ = fit_texture_projection(pixels, band=2)
    np.testing.assert_array_equal(w1, [0, 0, 1, 0])
    with pytest.raises(ConfigError):
        quantise(t, 1.0, 1.0, 8)


def test_pixel_index_statistics_by_hand():
    spec = FeatureSpec(("g", "r", "n"), ("mean",), 3, ("ndvi", "gndvi"),
                       {"green": "g", "red": "r", "nir": "n"},
                       index_stats=("mean", "std", "center", "max"))  # fmt: skip
    rng = np.random.default_rng(4)
    pix = rng.uniform(1, 100, (6, 9, 3))
    pix[0, 2] = np.nan  # a nodata pixel
    f = sample_features(pix, spec)
    names = spec.names
    for k in range(6):
        v = pix[k][np.isfinite(pix[k]).all(axis=1)]
        ndvi = (v[:, 2] - v[:, 1]) / (v[:, 2] + v[:, 1])
        gndvi = (v[:, 2] - v[:, 0]) / (v[:, 2] + v[:, 0])
        c = pix[k, 4]
        assert f[k, names.index("ndvi_mean")] == pytest.approx(ndvi.mean())
        assert f[k, names.index("ndvi_std")] == pytest.approx(ndvi.std())
        assert f[k, names.index("gndvi_max")] == pytest.approx(gndvi.max())
        assert f[k, names.index("ndvi_center")] == pytest.approx((c[2] - c[1]) / (c[2] + c[1]))
        m = v.mean(axis=0)
        assert f[k, names.index("ndvi")] == pytest.approx((m[2] - m[1]) / (m[2] + m[1]))


def test_window_and_sample_features_agree_with_texture():
    rng = np.random.default_rng(5)
    block = rng.integers(1, 200, (4, 16, 18)).astype(np.int16)
    valid = rng.random((16, 18)) > 0.1
    spec = FeatureSpec(("g", "r", "n1", "n2"), ("mean", "std", "center"), 3, ("ndvi", "ndwi"),
                       {"green": "g", "red": "r", "nir": "n1"}, index_stats=("mean", "min"))  # fmt: skip
    spec = with_texture(spec, block.reshape(4, -1).T, GLCM_PROPS, levels=8)
    wf = window_features(block, valid, spec)
    assert wf.shape == (16, 18, len(spec.names))
    pts = [(5, 5), (8, 12), (14, 16)]
    pix = np.stack([np.moveaxis(block[:, r - 1 : r + 2, c - 1 : c + 2], 0, -1).reshape(9, 4)
                    for r, c in pts]).astype(float)  # fmt: skip
    vm = np.stack([valid[r - 1 : r + 2, c - 1 : c + 2].reshape(9) for r, c in pts])
    pix[~vm] = np.nan
    sf = sample_features(pix, spec)
    for k, (r, c) in enumerate(pts):
        np.testing.assert_allclose(wf[r, c], sf[k], rtol=1e-5, atol=1e-5)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.halo_px == 1
    assert FeatureSpec(("a",), texture=("contrast",), texture_window_px=7,
                       texture_weights=(1.0, 0.0), texture_range=(0, 1)).halo_px == 3  # fmt: skip


def test_texture_spec_validation():
    with pytest.raises(ConfigError, match="weights"):
        FeatureSpec(("a", "b"), texture=("contrast",))
    with pytest.raises(ConfigError, match="GLCM"):
        FeatureSpec(("a",), texture=("nonsense",), texture_weights=(1, 0), texture_range=(0, 1))
    spec = FeatureSpec(("a",), window_px=3, texture=("contrast",), texture_window_px=5,
                       texture_weights=(1, 0), texture_range=(0, 1))  # fmt: skip
    with pytest.raises(InputError, match="5x5"):
        sample_features(np.ones((2, 9, 1)), spec)


def test_infer_roles():
    assert infer_roles(["B02", "B03", "B04", "B05", "B08", "B11", "B12"]) == {
        "blue": "B02", "green": "B03", "red": "B04", "rededge": "B05", "nir": "B08",
        "swir": "B11", "swir2": "B12",
    }  # fmt: skip
    assert infer_roles(["Blue", "Green", "Red", "NIR", "SWIR1", "SWIR2"])["swir"] == "SWIR1"
    assert infer_roles(["b1", "b2", "b3", "b4"]) == {}  # Landsat numbers are ambiguous
