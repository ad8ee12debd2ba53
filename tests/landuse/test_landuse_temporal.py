"""Multi-temporal statistics and object-based features against direct computations (#20)."""

from __future__ import annotations

import numpy as np
import pytest

from skysense.errors import ConfigError
from skysense.landuse.features import FeatureSpec
from skysense.landuse.temporal import (
    object_features,
    segment_image,
    temporal_features,
    temporal_names,
)


def test_temporal_statistics_by_hand():
    rng = np.random.default_rng(0)
    series = rng.uniform(1, 100, (5, 2, 6, 7))
    valid = rng.random((5, 6, 7)) > 0.2
    valid[:, 0, 0] = False  # never valid
    spec = FeatureSpec(("r", "n"), ("mean",), 1, ("ndvi",), {"red": "r", "nir": "n"})
    times = np.array([0.0, 10, 25, 30, 50])
    got = temporal_features(series, valid, spec, times=times)
    names = temporal_names(spec)
    assert got.shape == (6, 7, len(names)) and names[0] == "r_mean_tmean"
    assert np.isnan(got[0, 0]).all()
    for r, c in [(2, 3), (5, 6), (1, 0)]:
        ok = valid[:, r, c]
        red, nir = series[ok, 0, r, c], series[ok, 1, r, c]
        ndvi = (nir - red) / (nir + red)
        t = times[ok]
        for feat, v in (("r_mean", red), ("ndvi", ndvi)):
            row = dict(zip(names, got[r, c]))
            assert row[f"{feat}_tmean"] == pytest.approx(v.mean())
            assert row[f"{feat}_tstd"] == pytest.approx(v.std())
            assert row[f"{feat}_trange"] == pytest.approx(v.max() - v.min())
            assert row[f"{feat}_tslope"] == pytest.approx(np.polyfit(t, v, 1)[0])
    with pytest.raises(ConfigError):
        temporal_features(series, None, spec, stats=("median",))


def test_object_features_give_each_pixel_its_segment_statistics():
    rng = np.random.default_rng(1)
    block = np.zeros((3, 40, 40))
    block[:, :, :20] = rng.normal(10, 1, (3, 40, 20))
    block[:, :, 20:] = rng.normal(50, 1, (3, 40, 20))
    for method in ("slic", "felzenszwalb"):
        seg = segment_image(block, method=method)
        # no segment straddles the sharp edge between the halves
        left, right = set(np.unique(seg[:, :20])), set(np.unique(seg[:, 20:]))
        assert not left & right
    seg = segment_image(block, n_segments=8)
    spec = FeatureSpec(("a", "b", "c"), ("mean", "std"), 1)
    f = object_features(block, seg, None, spec)
    for s in np.unique(seg)[:4]:
        m = seg == s
        np.testing.assert_allclose(f[m][0], np.column_stack([block[:, m].mean(axis=1),
                                                            block[:, m].std(axis=1)]).ravel())  # fmt: skip
        assert np.ptp(f[m], axis=0).max() == 0
