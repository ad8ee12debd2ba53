"""Sigma-clipped median and its error, against astropy's own clipped statistics."""

import numpy as np
from astropy.stats import sigma_clipped_stats
from hypothesis import example, given, settings
from hypothesis import strategies as st

from skysense.catalog.clipping import clip_mask, clipped_median


def test_clipped_median_matches_astropy_and_rejects_outliers():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0.2, 0.05, 500), [5.0, -4.0, 9.0]])
    est = clipped_median(values, 3.0)
    mean, median, std = sigma_clipped_stats(values, sigma=3.0, maxiters=None, stdfunc="std")
    assert est.median == median
    assert np.isclose(est.std, std)
    assert 490 <= est.n <= 500  # the three outliers go, and at most a few Gaussian tail points
    assert np.isclose(est.error, 1.2533141 * std / np.sqrt(est.n))
    assert not clip_mask(values, 3.0)[-3:].any()


def test_median_error_matches_its_sampling_scatter():
    # the quoted error is the scatter of the median over repeated Gaussian samples
    rng = np.random.default_rng(4)
    draws = rng.normal(0.0, 1.0, (4000, 200))
    medians = np.median(draws, axis=1)
    quoted = np.median([clipped_median(d).error for d in draws[:200]])
    assert abs(quoted / np.std(medians) - 1.0) < 0.05


def test_empty_input_is_nan():
    est = clipped_median(np.array([]), 3.0)
    assert est.n == 0 and np.isnan(est.median) and np.isnan(est.error)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60), st.floats(1.5, 5.0))
# the survivors' std underflows to 0: astropy's sigma_clip then reports nothing clipped
@example(values=[0.0, 1.0, 1.3326577007625922e-190], nsigma=2.0)
def test_kept_values_lie_within_nsigma_of_their_median(values, nsigma):
    values = np.asarray(values)
    mask = clip_mask(values, nsigma)
    kept = values[mask]
    assert mask.any()
    spread = np.abs(kept - np.median(kept))
    assert np.all(spread <= nsigma * np.std(kept) + 1e-9 * (1 + np.abs(kept).max()))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.floats(-1e3, 1e3).filter(lambda v: v == 0 or abs(v) > 1e-100), min_size=1, max_size=60
    ),
    st.floats(1.5, 5.0),
)
def test_mask_equals_astropy_sigma_clip_away_from_underflow(values, nsigma):
    from astropy.stats import sigma_clip

    values = np.asarray(values)
    expected = ~np.ma.getmaskarray(
        sigma_clip(values, sigma=nsigma, maxiters=None, cenfunc="median", stdfunc="std")
    )
    assert np.array_equal(clip_mask(values, nsigma), expected)
