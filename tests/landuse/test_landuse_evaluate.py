"""Accuracy figures against scikit-learn and hand-computed values; evaluation protocols."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from skysense.errors import InputError
from skysense.landuse.classes import STATLOG
from skysense.landuse.estimator import train_model
from skysense.landuse.evaluate import (
    accuracy_report,
    band_subset_experiment,
    comparison_table,
    cross_validate,
    feature_importances,
    holdout_evaluate,
    subset_columns,
)
from skysense.landuse.features import FeatureSpec


def test_hand_computed_example():
    # Congalton-style 2x2: reference rows, map columns
    y_true = np.array([1] * 50 + [2] * 50)
    y_pred = np.array([1] * 45 + [2] * 5 + [1] * 10 + [2] * 40)
    r = accuracy_report(y_true, y_pred)
    assert r.confusion.tolist() == [[45, 5], [10, 40]]
    assert r.overall_accuracy == pytest.approx(0.85)
    # pe = (50*55 + 50*45) / 100^2 = 0.5 -> kappa = (0.85 - 0.5) / 0.5
    assert r.kappa == pytest.approx(0.7)
    np.testing.assert_allclose(r.producers, [0.9, 0.8])
    np.testing.assert_allclose(r.users, [45 / 55, 40 / 45])
    assert "overall accuracy 0.8500  kappa 0.7000" in r.table()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=80))
def test_report_matches_sklearn(pairs):
    t = np.array([p[0] for p in pairs])
    p = np.array([p[1] for p in pairs])
    labels = np.unique(np.concatenate([t, p]))
    r = accuracy_report(t, p)
    np.testing.assert_array_equal(r.confusion, confusion_matrix(t, p, labels=labels))
    assert r.overall_accuracy == pytest.approx(np.mean(t == p))
    if len(labels) > 1 and not (len(np.unique(t)) == 1 and np.array_equal(t, p)):
        assert r.kappa == pytest.approx(cohen_kappa_score(t, p), nan_ok=True)
    rec = recall_score(t, p, labels=labels, average=None, zero_division=np.nan)
    prec = precision_score(t, p, labels=labels, average=None, zero_division=np.nan)
    np.testing.assert_allclose(r.producers, rec, equal_nan=True)
    np.testing.assert_allclose(r.users, prec, equal_nan=True)
    f1 = f1_score(t, p, labels=labels, average=None, zero_division=0.0)
    defined = (r.confusion.sum(0) + r.confusion.sum(1)) > 0
    np.testing.assert_allclose(r.f1[defined], f1[defined])


def _data(n=300, seed=0):
    # band 1 informative, band 2 pure noise
    rng = np.random.default_rng(seed)
    y = rng.integers(1, 4, n)
    X = np.column_stack([y * 3 + rng.normal(size=n), rng.normal(size=n)])
    return X, y, FeatureSpec(("good", "noise"), ("mean",), 1)


def test_holdout_and_cv_on_easy_data():
    X, y, _ = _data()
    r = holdout_evaluate(X, y, params={"n_estimators": 30}, test_fraction=0.3, scheme=STATLOG)
    assert r.n == 90 and r.overall_accuracy > 0.85 and r.names[0] == "red soil"
    r2, folds = cross_validate(X, y, classifier="knn", folds=4)
    assert r2.n == 300 and folds.shape == (4,) and r2.overall_accuracy > 0.85
    assert r2.overall_accuracy == pytest.approx(folds.mean(), abs=0.01)


def test_too_few_samples_for_the_split_names_the_class():
    X, y, _ = _data(60)
    y[:2] = 9  # a class with 2 samples (rows 0 and 1 only)
    y[2:][y[2:] == 9] = 1
    with pytest.raises(InputError, match="class 9 has 2"):
        cross_validate(X, y, folds=3)
    with pytest.raises(InputError, match="class 9 has 2"):
        holdout_evaluate(X, y, test_fraction=0.2)


def test_band_subset_experiment_shows_the_informative_band():
    X, y, spec = _data()
    reps = band_subset_experiment(X, y, spec, {"good": ["good"], "noise": ["noise"],
                                               "both": ["good", "noise"]},
                                  params={"n_estimators": 30}, folds=3)  # fmt: skip
    assert reps["good"].overall_accuracy > 0.85
    assert reps["noise"].overall_accuracy < 0.5
    table = comparison_table(reps)
    assert table.splitlines()[0].split()[:3] == ["run", "OA", "kappa"] and "noise" in table
    Xt, yt, _ = _data(150, seed=1)
    rt = band_subset_experiment(X, y, spec, {"good": ["good"]}, X_test=Xt, y_test=yt,
                                params={"n_estimators": 30})  # fmt: skip
    assert rt["good"].n == 150


def test_subset_columns_keeps_indices_with_both_roles():
    spec = FeatureSpec(("g", "r", "n"), ("mean", "std"), 3, ("ndvi",), {"red": "r", "nir": "n"})
    cols, sub = subset_columns(spec, ["r", "n"])
    assert sub.names == ["r_mean", "r_std", "n_mean", "n_std", "ndvi"]
    assert [spec.names[c] for c in cols] == sub.names
    cols, sub = subset_columns(spec, ["g", "r"])
    assert sub.names == ["g_mean", "g_std", "r_mean", "r_std"]


def test_feature_importances_rank_the_informative_band_first():
    X, y, spec = _data()
    m = train_model(X, y, spec, classifier="rf", params={"n_estimators": 30})
    assert list(feature_importances(m))[0] == "good_mean"
    knn = train_model(X, y, spec, classifier="knn")
    imp = feature_importances(knn, X, y, n_repeats=3)
    assert list(imp)[0] == "good_mean" and imp["good_mean"] > 0.3
