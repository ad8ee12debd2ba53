"""Per-band statistics checked against direct NumPy computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import ConfigError, InputError
from skysense.landuse.features import (
    FeatureSpec,
    feature_names,
    sample_features,
    segment_features,
    spectral_indices,
    window_features,
)


def _brute_window(block, valid, w, stats):
    """Statistics of each pixel's window by explicit loops (the independent answer)."""
    nb, rows, cols = block.shape
    h = w // 2
    out = np.full((rows, cols, nb, len(stats)), np.nan)
    for r in range(rows):
        for c in range(cols):
            r0, r1, c0, c1 = (
                max(r - h, 0),
                min(r + h + 1, rows),
                max(c - h, 0),
                min(c + h + 1, cols),
            )
            m = valid[r0:r1, c0:c1]
            if not m.any():
                continue
            vals = block[:, r0:r1, c0:c1][:, m].astype(float)  # (nb, k)
            for k, s in enumerate(stats):
                if s == "center":
                    out[r, c, :, k] = block[:, r, c] if valid[r, c] else np.nan
                else:
                    out[r, c, :, k] = getattr(np, s)(vals, axis=1)
    return out.reshape(rows, cols, -1)


@pytest.mark.parametrize("w", [1, 3, 5])
def test_window_features_match_brute_force_with_nodata_and_edges(w):
    rng = np.random.default_rng(w)
    block = rng.integers(0, 1000, size=(3, 13, 17)).astype(np.uint16)
    valid = rng.random((13, 17)) > 0.2
    valid[:5, :5] = False  # a patch where small windows see no valid pixel
    stats = ("mean", "max", "std", "min", "center")
    spec = FeatureSpec(("a", "b", "c"), stats, w)
    got = window_features(block, valid, spec)
    want = _brute_window(block, valid, w, stats)
    assert got.shape == (13, 17, 15)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3, equal_nan=True)


def test_window_std_is_accurate_for_large_values_with_small_spread():
    # Cancellation check: values ~ 1e4 with a spread of ~1 must keep their std.
    rng = np.random.default_rng(1)
    block = (10000 + rng.normal(0, 1, size=(1, 20, 20))).astype(np.float32)
    spec = FeatureSpec(("b",), ("std",), 3)
    got = window_features(block, None, spec)[1:-1, 1:-1, 0]
    want = _brute_window(block.astype(float), np.ones((20, 20), bool), 3, ("std",))[1:-1, 1:-1, 0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_sample_features_statlog_layout_against_numpy():
    rng = np.random.default_rng(2)
    pix = rng.integers(0, 256, size=(50, 9, 4)).astype(float)
    spec = FeatureSpec(("b1", "b2", "b3", "b4"), ("mean", "max", "std", "center"), 3)
    X = sample_features(pix, spec)
    assert spec.names[:4] == ["b1_mean", "b1_max", "b1_std", "b1_center"]
    for b in range(4):
        np.testing.assert_allclose(X[:, 4 * b + 0], pix[:, :, b].mean(axis=1))
        np.testing.assert_allclose(X[:, 4 * b + 1], pix[:, :, b].max(axis=1))
        np.testing.assert_allclose(X[:, 4 * b + 2], pix[:, :, b].std(axis=1))
        np.testing.assert_allclose(X[:, 4 * b + 3], pix[:, 4, b])


def test_sample_features_ignore_nan_pixels_and_reject_empty_samples():
    pix = np.array([[[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]]])  # pixel 1 invalid (one band NaN)
    spec = FeatureSpec(("x", "y"), ("mean", "max"), 1)
    X = sample_features(pix, spec)
    np.testing.assert_allclose(X[0], [3.0, 5.0, 4.0, 6.0])
    with pytest.raises(InputError, match="no valid pixel"):
        sample_features(np.full((2, 3, 2), np.nan), spec)
    with pytest.raises(InputError, match="3 bands but the feature spec has 2"):
        sample_features(np.zeros((1, 3, 3)), spec)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 9),
    cols=st.integers(1, 9),
    w=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 10_000),
)
def test_window_features_equal_sample_features_of_explicit_windows(rows, cols, w, seed):
    rng = np.random.default_rng(seed)
    block = rng.normal(100, 30, size=(2, rows, cols))
    valid = rng.random((rows, cols)) > 0.3
    spec = FeatureSpec(("p", "q"), ("mean", "max", "std", "min"), w)
    got = window_features(block, valid, spec)
    h = w // 2
    padded = np.pad(np.where(valid, block, np.nan), ((0, 0), (h, h), (h, h)),
                    constant_values=np.nan)  # fmt: skip
    for r in range(rows):
        for c in range(cols):
            win = padded[:, r : r + w, c : c + w].reshape(2, -1).T[None]
            if np.isnan(win).all():
                assert np.isnan(got[r, c]).all()
            else:
                np.testing.assert_allclose(got[r, c], sample_features(win, spec)[0], rtol=1e-5,
                                           atol=1e-4)  # fmt: skip


def test_segment_features_against_numpy():
    rng = np.random.default_rng(3)
    block = rng.normal(size=(2, 10, 12))
    seg = rng.integers(0, 4, size=(10, 12))
    valid = rng.random((10, 12)) > 0.1
    spec = FeatureSpec(("a", "b"), ("mean", "max", "std", "min"), 1)
    ids, X = segment_features(block, seg, valid, spec)
    assert ids.tolist() == [1, 2, 3]
    for i, s in enumerate(ids):
        m = (seg == s) & valid
        v = block[:, m]
        want = np.stack([v.mean(1), v.max(1), v.std(1), v.min(1)], axis=1).ravel()
        np.testing.assert_allclose(X[i], want)


def test_spectral_indices_and_names():
    spec = FeatureSpec(("g", "r", "n", "s"), ("mean",), 3, ("ndvi", "ndwi", "ndbi"),
                       {"green": "g", "red": "r", "nir": "n", "swir": "s"})  # fmt: skip
    means = np.array([[10.0, 20.0, 60.0, 40.0], [0.0, 0.0, 0.0, 0.0]])
    idx = spectral_indices(means, spec)
    np.testing.assert_allclose(idx[0], [(60 - 20) / 80, (10 - 60) / 70, (40 - 60) / 100])
    assert np.isnan(idx[1]).all()  # zero denominators
    assert spec.names == ["g_mean", "r_mean", "n_mean", "s_mean", "ndvi", "ndwi", "ndbi"]
    X = sample_features(means[:1, None, :], spec)
    np.testing.assert_allclose(X[0, 4:], idx[0])
    assert feature_names(["b1"], ["mean", "std"]) == ["b1_mean", "b1_std"]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"stats": ("median",)}, "unknown statistic"),
        ({"window_px": 4}, "odd positive"),
        ({"indices": ("ndvi",)}, "needs the band role"),
        ({"indices": ("evi",)}, "unknown index"),
        ({"roles": {"nir": "b9"}}, "unknown band"),
        ({"band_names": ("a", "a")}, "duplicate"),
    ],
)
def test_feature_spec_rejects_bad_configuration(kw, match):
    args = {"band_names": ("b1", "b2")} | kw
    with pytest.raises(ConfigError, match=match):
        FeatureSpec(**args)


def test_feature_spec_round_trips_through_dict():
    spec = FeatureSpec(("b1", "b2"), ("mean", "std"), 5, ("ndvi",), {"red": "b1", "nir": "b2"})
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_window_features_band_mismatch_is_named():
    spec = FeatureSpec(("b1", "b2", "b3"))
    with pytest.raises(InputError, match="2 bands .* spec has 3"):
        window_features(np.zeros((2, 4, 4)), None, spec)


@pytest.mark.parametrize("stats", [("max",), ("mean", "std")])
def test_window_indices_match_sample_indices(stats):
    rng = np.random.default_rng(9)
    block = rng.integers(1, 255, size=(3, 6, 7)).astype(np.uint8)
    spec = FeatureSpec(("g", "r", "n"), stats, 3, ("ndvi", "ndwi"),
                       {"green": "g", "red": "r", "nir": "n"})  # fmt: skip
    got = window_features(block, None, spec)
    assert got.shape[2] == len(spec.names) == 3 * len(stats) + 2
    padded = np.pad(block.astype(float), ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)
    for r, c in [(0, 0), (3, 4), (5, 6)]:
        win = padded[:, r : r + 3, c : c + 3].reshape(3, -1).T[None]
        np.testing.assert_allclose(got[r, c], sample_features(win, spec)[0], rtol=1e-5)


def test_scales_are_window_means_and_their_indices_by_brute_force():
    from skysense.landuse.features import feature_set_columns

    rng = np.random.default_rng(5)
    img = rng.uniform(10, 200, (3, 17, 19))
    valid = rng.random((17, 19)) > 0.1
    spec = FeatureSpec(("g", "r", "n"), ("mean", "std"), 3, ("ndvi",),
                       {"red": "r", "nir": "n"}, scales=(5, 9))  # fmt: skip
    assert spec.footprint_px == 9 and spec.halo_px == 4
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    f = window_features(img, valid, spec)
    names = spec.names
    assert names[-8:] == ["g_mean_5px", "r_mean_5px", "n_mean_5px", "ndvi_5px",
                          "g_mean_9px", "r_mean_9px", "n_mean_9px", "ndvi_9px"]  # fmt: skip
    for r, c in [(0, 0), (8, 9), (16, 18), (3, 12)]:
        for w in (5, 9):
            h = w // 2
            sl = (slice(max(r - h, 0), r + h + 1), slice(max(c - h, 0), c + h + 1))
            m = np.array([img[b][sl][valid[sl]].mean() for b in range(3)])
            got = [f[r, c, names.index(f"{b}_mean_{w}px")] for b in ("g", "r", "n")]
            np.testing.assert_allclose(got, m, rtol=1e-5)
            ndvi = (m[2] - m[1]) / (m[2] + m[1])
            np.testing.assert_allclose(f[r, c, names.index(f"ndvi_{w}px")], ndvi, rtol=1e-5)
    cols = feature_set_columns("stats", spec, len(names))
    assert [names[i] for i in cols] == ["g_mean", "g_std", "r_mean", "r_std", "n_mean", "n_std"]
    assert feature_set_columns("all", spec, len(names)) is None
    with pytest.raises(ConfigError, match="scales"):
        FeatureSpec(("a",), scales=(3,))  # not larger than the 3 px window
    with pytest.raises(ConfigError, match="scales"):
        FeatureSpec(("a",), scales=(6,))
    with pytest.raises(ConfigError, match="raster"):
        sample_features(np.ones((2, 9, 3)), spec)
