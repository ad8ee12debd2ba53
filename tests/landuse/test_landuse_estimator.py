"""LanduseClassifier is a scikit-learn estimator (issue 16): check_estimator, clone, grid search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skysense.errors import ConfigError, InputError
from skysense.landuse import LanduseClassifier
from skysense.landuse.features import FeatureSpec

# Checks left out, each for a reason of the domain, not of the implementation:
EXPECTED_FAILED = {
    # Land-use labels are integer class codes of a ClassScheme (they are written into a
    # uint8/uint16 class raster with a colour table); string labels are refused on purpose.
    "check_classifiers_classes": "labels must be integer class codes",
}


def _estimators():
    return [
        LanduseClassifier("rf", {"n_estimators": 10}),
        LanduseClassifier("knn", {"n_neighbors": 3}),
        LanduseClassifier("gb", {"max_iter": 10}),
        # what auto builds when the blend of its candidates wins
        LanduseClassifier(
            "blend", {"members": [["rf", 0.6, {"n_estimators": 5}], ["lr", 0.4, {}]]}
        ),
        # the CLI's default: a model chosen by cross-validation inside fit
        LanduseClassifier(
            "auto", {"candidates": {"rf": {"n_estimators": 5}, "gb": {"max_iter": 5}}, "folds": 2}
        ),
    ]


@parametrize_with_checks(_estimators(), expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = np.where(X[:, 0] + rng.normal(size=n) > 0, 2, 5)
    return X, y


def test_clone_get_params_pipeline_and_grid_search():
    X, y = _data()
    spec = FeatureSpec(("b1", "b2"), ("mean",), 1)
    est = LanduseClassifier("rf", {"n_estimators": 10}, spec=spec, random_state=3)
    assert est.get_params()["params"] == {"n_estimators": 10}
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "estimator_")
    pipe = make_pipeline(StandardScaler(), LanduseClassifier("knn", {"n_neighbors": 3})).fit(X, y)
    assert pipe.score(X, y) > 0.6 and set(pipe.classes_) == {2, 5}
    grid = GridSearchCV(
        est,
        {"classifier": ["rf", "knn"], "params": [{"n_estimators": 5}, {"n_neighbors": 25}]},
        cv=3,
        error_score="raise",
    )
    with pytest.raises(ConfigError, match="unknown parameter"):
        grid.fit(X, y)  # n_neighbors is not a forest parameter: said, not ignored
    grid = GridSearchCV(clone(est).set_params(classifier="knn"),
                        {"params": [{"n_neighbors": 1}, {"n_neighbors": 25}]}, cv=3).fit(X, y)  # fmt: skip
    assert grid.best_params_ == {"params": {"n_neighbors": 25}}  # smoothing wins on noisy labels
    assert grid.best_estimator_.spec == spec


def test_parameters_are_validated_at_fit():
    X, y = _data(30)
    with pytest.raises(ConfigError, match="classifier"):
        LanduseClassifier("lda").fit(X, y)
    with pytest.raises(ConfigError, match="params"):
        LanduseClassifier(params=[("n_estimators", 5)]).fit(X, y)
    with pytest.raises(InputError, match="expected 3"):
        LanduseClassifier(spec=FeatureSpec(("a", "b", "c"), ("mean",), 1)).fit(X, y)


def test_feature_names_in_from_a_dataframe():
    import pandas as pd

    X, y = _data(60)
    frame = pd.DataFrame(X, columns=["red", "nir"])
    est = LanduseClassifier("knn").fit(frame, y)
    assert list(est.feature_names_in_) == ["red", "nir"] and est.n_features_in_ == 2
    assert est.feature_names == ["red", "nir"]
    np.testing.assert_array_equal(est.predict(frame), est.predict(frame[["red", "nir"]]))


def test_no_module_global_state():
    import ast
    import inspect

    import skysense.landuse.classify as classify

    tree = ast.parse(inspect.getsource(classify))
    assert not any(isinstance(node, ast.Global) for node in ast.walk(tree))
