"""Duplicate removal: hand cases and a brute-force check of the greedy rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.catalog.dedupe import dedupe, snr_score
from skysense.catalog.match import angular_sep_arcsec


def test_pair_keeps_the_better_row_and_flags_it():
    ra = np.array([10.0, 10.0 + 0.2 / 3600, 11.0])
    dec = np.zeros(3)
    res = dedupe(ra, dec, np.array([5.0, 9.0, 1.0]), 0.4)
    assert res.keep.tolist() == [False, True, True]
    assert res.flag_cleaned.tolist() == [False, True, False]
    assert res.duplicate_of.tolist() == [1, -1, -1]
    assert res.n_removed == 1


def test_chain_keeps_both_ends_when_the_middle_loses():
    step = 0.3 / 3600
    ra = np.array([0.0, step, 2 * step])  # A-B and B-C within 0.4", A-C not
    res = dedupe(ra, np.zeros(3), np.array([3.0, 1.0, 2.0]), 0.4)
    assert res.keep.tolist() == [True, False, True]
    assert res.flag_cleaned.tolist() == [True, False, True]


def test_ties_go_to_the_earlier_row_and_zero_radius_disables():
    ra = np.array([0.0, 0.1 / 3600])
    res = dedupe(ra, np.zeros(2), np.array([1.0, 1.0]), 0.4)
    assert res.keep.tolist() == [True, False]
    assert dedupe(ra, np.zeros(2), np.ones(2), 0.0).keep.all()


def test_greedy_rule_against_brute_force():
    rng = np.random.default_rng(5)
    n = 400
    ra = rng.uniform(0, 20 / 3600, n)
    dec = rng.uniform(0, 20 / 3600, n)
    score = rng.random(n)
    res = dedupe(ra, dec, score, 1.0)
    # Brute force: visit by score, keep a row unless a kept row is within the radius.
    kept: list[int] = []
    for i in np.argsort(-score, kind="stable"):
        if all(angular_sep_arcsec(ra[i], dec[i], ra[k], dec[k]) > 1.0 for k in kept):
            kept.append(i)
    # The two differ only when a row was removed by a row that was itself already removed
    # earlier; with greedy suppression in score order that cannot happen, so they agree.
    assert sorted(kept) == np.flatnonzero(res.keep).tolist()
    # No two survivors are within the radius.
    k = np.flatnonzero(res.keep)
    sep = angular_sep_arcsec(ra[k][:, None], dec[k][:, None], ra[k][None], dec[k][None])
    assert (sep[np.triu_indices(len(k), 1)] > 1.0).all()


def test_snr_score_combines_bands_in_quadrature():
    t = pd.DataFrame(
        {"f_a": [3.0, np.nan], "ferr_a": [1.0, 1.0], "f_b": [4.0, 2.0], "ferr_b": [1.0, 0.0]}
    )
    np.testing.assert_allclose(snr_score(t, ["a", "b"]), [5.0, 0.0])
