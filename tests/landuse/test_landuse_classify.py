"""Classifiers: separable data, the Bayes rate on noisy data, tuning, forests as arrays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from skysense.errors import ConfigError, InputError
from skysense.landuse.classify import (
    CLASSIFIERS,
    FlatForest,
    check_training_data,
    forest_to_arrays,
    make_classifier,
)
from skysense.landuse.estimator import train_model, tune_classifier
from skysense.landuse.features import FeatureSpec, sample_features


def _gaussian_samples(n, d, seed, n_pix=1):
    """Two classes, one band: N(0, 1) vs N(d, 1) pixels; Bayes accuracy Phi(d/2) for n_pix=1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(1, 3, n)
    pix = (d * (y == 2))[:, None, None] + rng.standard_normal((n, n_pix, 1))
    return pix, y


def test_separable_classes_give_perfect_accuracy_for_every_classifier():
    spec = FeatureSpec(("b1",), ("mean", "max", "std"), 3)
    pix, y = _gaussian_samples(600, 20.0, 0, n_pix=9)
    X = sample_features(pix, spec)
    pt, yt = _gaussian_samples(400, 20.0, 1, n_pix=9)
    Xt = sample_features(pt, spec)
    for name in ("rf", "knn", "svm", "lr"):
        params = {"n_estimators": 30} if name == "rf" else {}
        m = train_model(X, y, spec, classifier=name, params=params)
        assert np.mean(m.predict(Xt) == yt) == 1.0, name


def test_noisy_classes_reach_the_bayes_rate():
    d = 2.0
    bayes = norm.cdf(d / 2)  # 0.8413
    spec = FeatureSpec(("b1",), ("mean",), 1)
    pix, y = _gaussian_samples(3000, d, 2)
    pt, yt = _gaussian_samples(6000, d, 3)
    m = train_model(sample_features(pix, spec), y, spec, classifier="rf",
                    params={"n_estimators": 100, "min_samples_leaf": 40})  # fmt: skip
    acc = np.mean(m.predict(sample_features(pt, spec)) == yt)
    # binomial standard error at n=6000 is 0.005; a fitted classifier cannot beat Bayes
    assert bayes - 0.025 < acc < bayes + 0.015
    assert abs(m.info_["oob_accuracy"] - bayes) < 0.04


def test_logistic_regression_recovers_the_gaussian_posterior():
    """Two equal-variance Gaussian classes: the true posterior is logistic in x, so the fitted
    probabilities approach it (and accuracy the Bayes rate)."""
    d = 2.0
    spec = FeatureSpec(("b1",), ("mean",), 1)
    pix, y = _gaussian_samples(4000, d, 5)
    m = train_model(sample_features(pix, spec), y, spec, classifier="lr")
    x = np.linspace(-2, 4, 13)[:, None]
    truth = 1 / (1 + np.exp(-d * (x[:, 0] - d / 2)))  # P(class 2 | x), equal priors
    np.testing.assert_allclose(m.predict_proba(x)[:, 1], truth, atol=0.03)


def test_flat_forest_reproduces_sklearn_probabilities():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + 2 * (X[:, 2] > 0.5) + 1
    for name in ("rf", "et"):
        est = make_classifier(name, n_estimators=25, random_state=1).fit(X, y)
        flat = FlatForest(forest_to_arrays(est))
        Xt = rng.normal(size=(300, 5))
        np.testing.assert_allclose(flat.predict_proba(Xt), est.predict_proba(Xt), atol=1e-12)
        np.testing.assert_array_equal(flat.predict(Xt), est.predict(Xt))


def test_tuning_picks_the_best_cross_validated_parameters():
    pix, y = _gaussian_samples(300, 3.0, 5)
    X = pix[:, :, 0]
    best, score, results = tune_classifier("knn", X, y, {"n_neighbors": [1, 25]}, cv=3)
    assert best == {"n_neighbors": 25}  # smoothing wins on overlapping classes
    assert score == max(r["mean_accuracy"] for r in results)
    spec = FeatureSpec(("b1",), ("mean",), 1)
    m = train_model(X, y, spec, classifier="knn", tune=True, grid={"n_neighbors": [1, 25]}, cv=3)
    assert m.params == {"n_neighbors": 25} and m.info_["cv_tuning"]["folds"] == 3


def test_training_data_errors_name_the_problem():
    X = np.zeros((5, 2))
    with pytest.raises(InputError, match="class 2 has 1"):
        check_training_data(X, np.array([1, 1, 1, 1, 2]))
    X[3, 1] = np.nan
    with pytest.raises(InputError, match="row 3.*'b'|column 'b', row 3"):
        check_training_data(X, np.array([1, 1, 2, 2, 2]), ["a", "b"])
    with pytest.raises(InputError, match="only one class"):
        check_training_data(np.zeros((4, 1)), np.ones(4, int))
    spec = FeatureSpec(("b1",), ("mean",), 1)
    with pytest.raises(InputError, match="class 2 has 3 .*at least 5"):
        train_model(
            np.zeros((9, 1)), np.array([1] * 6 + [2] * 3), spec, classifier="rf", tune=True, cv=5
        )


def test_model_rejects_wrong_feature_count_and_unknown_classifier():
    spec = FeatureSpec(("b1", "b2"), ("mean",), 1)
    rng = np.random.default_rng(0)
    m = train_model(rng.normal(size=(20, 2)), np.repeat([1, 2], 10), spec, classifier="rf",
                    params={"n_estimators": 5})  # fmt: skip
    with pytest.raises(InputError, match="model expects 2 .*2 bands: b1, b2"):
        m.predict(np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="unknown classifier"):
        make_classifier("lda")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_classifier("knn", depth=3)
    assert set(CLASSIFIERS) >= {"rf", "gb", "svm", "knn"}


def test_training_is_deterministic_given_random_state():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int) + 1
    spec = FeatureSpec(("a", "b", "c"), ("mean",), 1)
    p1 = train_model(
        X, y, spec, classifier="rf", params={"n_estimators": 20}, random_state=7
    ).predict_proba(X)
    p2 = train_model(
        X, y, spec, classifier="rf", params={"n_estimators": 20}, random_state=7
    ).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
