"""Metrics against hand computations, numerical integration and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from skysense.errors import InputError
from skysense.photoz import metrics


def test_sigma_nmad_outliers_bias_by_hand():
    zs = np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    zp = np.array([0.01, -0.02, 0.0, 1.2, 1.0])
    dz = zp - zs  # [0.01, -0.02, 0, 0.2, 0]; median 0
    expected = 1.4826 * np.median(np.abs(dz) / (1 + zs))  # [0.01, 0.02, 0, 0.1, 0] -> 0.01
    assert metrics.sigma_nmad(zs, zp) == pytest.approx(expected)
    assert metrics.sigma_nmad(zs, zp) == pytest.approx(0.014826)
    # |dz|/(1+z) = 0.1 for the 4th: not an outlier at 0.15; at 0.05 it is.
    assert metrics.outlier_fraction(zs, zp) == 0.0
    assert metrics.outlier_fraction(zs, zp, threshold=0.05) == pytest.approx(0.2)
    assert metrics.bias(zs, zp) == pytest.approx(np.mean([0.01, -0.02, 0, 0.1, 0]))
    # NaN predictions are left out, not counted as good.
    assert metrics.summary(zs, np.r_[zp[:4], np.nan])["n_unpredicted"] == 1


def test_crps_matches_numerical_integral():
    for y, mu, sd in [(0.3, 0.25, 0.05), (1.0, 0.2, 0.3), (0.0, 0.0, 1.0)]:
        cdf = stats.norm(mu, sd).cdf
        lo, hi = mu - 12 * sd, mu + 12 * sd
        below = (
            integrate.quad(lambda x, cdf=cdf: cdf(x) ** 2, lo, y, limit=200)[0] if y > lo else 0.0
        )
        above = integrate.quad(lambda x, cdf=cdf: (1 - cdf(x)) ** 2, y, hi, limit=200)[0]
        assert metrics.crps_gaussian(y, mu, sd) == pytest.approx(below + above, rel=1e-6)


def test_calibrated_gaussian_predictions():
    rng = np.random.default_rng(0)
    n = 200_000
    mu = rng.uniform(0, 1, n)
    sd = rng.uniform(0.01, 0.1, n)
    z = mu + sd * rng.normal(size=n)
    assert metrics.coverage(z, mu, sd, 1) == pytest.approx(0.6827, abs=0.005)
    assert metrics.coverage(z, mu, sd, 2) == pytest.approx(0.9545, abs=0.003)
    density, edges = metrics.pit_histogram(metrics.pit(z, mu, sd), bins=10)
    np.testing.assert_allclose(density, 1.0, atol=0.03)
    assert edges[0] == 0 and edges[-1] == 1
    # Over-confident predictions: coverage drops, PIT is U-shaped.
    density, _ = metrics.pit_histogram(metrics.pit(z, mu, sd / 2), bins=10)
    assert density[0] > 1.5 and density[5] < 0.8


def test_length_mismatch():
    with pytest.raises(InputError, match="3 values"):
        metrics.sigma_nmad([0, 1, 2], [0, 1])
