import numpy as np
import pandas as pd
import pytest

from skysense.astrocast.indices import (
    class_probabilities,
    drought_class,
    period_of_year,
    vci,
    vci3m,
)
from skysense.errors import InputError


def test_vci_hand_computation():
    # two periods, three years: period 0 NDVI 0.2, 0.4, 0.3; period 1 NDVI 0.5, 0.1, 0.7
    ndvi = np.array([0.2, 0.5, 0.4, 0.1, 0.3, 0.7])
    period = np.array([0, 1, 0, 1, 0, 1])
    got = vci(ndvi, period)
    # year 1: no history span -> NaN; year 2 p0: min .2 max .4 -> 100; p1: min .1 max .5 -> 0
    # year 3 p0: (0.3-0.2)/(0.4-0.2) = 50; p1: (0.7-0.1)/(0.7-0.1) = 100
    np.testing.assert_allclose(got, [np.nan, np.nan, 100, 0, 50, 100])


def test_vci_uses_no_future_data():
    rng = np.random.default_rng(1)
    ndvi = rng.uniform(0.1, 0.8, 36 * 5)
    period = np.tile(np.arange(36), 5)
    a = vci(ndvi, period)
    b_in = ndvi.copy()
    b_in[100:] = rng.uniform(-1, 1, b_in[100:].size)
    b = vci(b_in, period)
    np.testing.assert_array_equal(a[:100], b[:100])


def test_vci3m_and_classes():
    v = np.arange(12, dtype=float)
    np.testing.assert_allclose(vci3m(v, 3)[2:], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert list(drought_class([5, 10, 15, 34.9, 35, 49, 50, np.nan])) == [0, 1, 1, 2, 3, 3, 4, -1]


def test_class_probabilities_sum_to_one_and_limit():
    p = class_probabilities([5, 42, 80], [1e-6, 1e-6, 10])
    np.testing.assert_allclose(p.sum(1), 1)
    assert p[0, 0] == pytest.approx(1) and p[1, 3] == pytest.approx(1)


def test_period_of_year_dekads():
    d = pd.to_datetime(["2001-01-01", "2001-01-11", "2001-01-21", "2001-12-31"])
    assert list(period_of_year(d)) == [0, 1, 2, 35]
    with pytest.raises(InputError):
        period_of_year(d, "fortnight")
