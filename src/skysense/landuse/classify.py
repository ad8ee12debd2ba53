"""Classifier pipelines for land use: random forest (default) and peers for comparison.

The random forest balances classes (``class_weight="balanced"``) and reports its out-of-bag
accuracy; its hyperparameters can be chosen by stratified k-fold cross-validation
(:func:`~skysense.landuse.estimator.tune_classifier`). Gradient boosting, an RBF support-vector machine, k-nearest
neighbours, extremely randomised trees, a soft-voting ensemble and a stacking of them are
selectable by name (:data:`CLASSIFIERS`); ``auto`` (the default of ``skysense landuse`` and of
the estimator) picks a model and feature set among :data:`AUTO_CANDIDATES` by cross-validation
on the training data (:class:`~skysense.landuse.estimator.LanduseClassifier`).

A model is a :class:`~skysense.landuse.estimator.LanduseClassifier`, a scikit-learn estimator (``clone``, ``get_params``,
``Pipeline`` and ``GridSearchCV`` work on it) that carries the feature spec and the class
scheme, so that prediction computes exactly the training features and writes the right
colours. :func:`~skysense.landuse.estimator.train_model` builds and fits one (optionally tuning it
first). Forests can be flattened into plain arrays (:func:`forest_to_arrays`) and predicted by
:class:`FlatForest` - the non-pickle storage format and the fast raster predictor.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skysense.errors import ConfigError, InputError, NotFittedError

__all__ = [
    "CLASSIFIERS",
    "DEFAULT_GRIDS",
    "AUTO_CANDIDATES",
    "AUTO_CANDIDATES_BLOCKED",
    "make_classifier",
    "parse_params",
    "check_training_data",
    "FlatForest",
    "forest_to_arrays",
]


def _param_value(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def parse_params(items: Sequence[str] | None, *, key: str = "params", convert: bool = True) -> dict:
    """``NAME=VALUE`` texts as a dict (later names win), e.g. classifier hyperparameters.

    With ``convert``, values become int, float, ``None``/``True``/``False`` (``none``, ``true``,
    ``false`` in any case) where they read as such, else stay text.

    Raises
    ------
    ConfigError
        An item without ``=`` (named with ``key``).
    """
    bad = [item for item in items or () if "=" not in item]
    if bad:
        raise ConfigError(f"expected NAME=VALUE, got {bad[0]!r}", key=key)
    pairs = (item.split("=", 1) for item in items or ())
    return {k.strip(): _param_value(v.strip()) if convert else v.strip() for k, v in pairs}


#: Selectable classifiers: name -> one-line description.
CLASSIFIERS = {
    "rf": "random forest, balanced class weights, out-of-bag estimate",
    "et": "extremely randomised trees, balanced class weights",
    "gb": "histogram gradient boosting",
    "svm": "RBF support-vector machine on standardised features (sigmoid-calibrated probabilities)",
    "knn": "k-nearest neighbours on standardised features, distance weighted",
    "lr": "multinomial logistic regression on standardised features, balanced class weights",
    "ensemble": "soft vote of svm, et, knn and gb",
    "vote": "equal soft vote of a random-subspace forest (one random feature per split) and a "
    "balanced logistic regression: two smooth models that transfer between polygons",
    "stack": "stacking: gb, svm and et, their out-of-fold probabilities combined by a "
    "logistic regression",
    "blend": "weighted soft vote of auto's candidates (params members=[[key, weight, params], "
    "...]; what auto builds when the vote of its candidates wins)",
    "auto": "the candidate model and feature set (random forest, gradient boosting, logistic "
    "regression, the ensemble; with the samples' pixels spatially blocked folds and the models "
    "on band means and indices), or their weighted soft vote, with the best cross-validated "
    "accuracy on the training data",
}

#: Candidates of ``auto`` (``"<classifier>@<feature set>"``, feature sets of
#: :data:`~skysense.landuse.features.FEATURE_SETS`, bare name = every column) and their fixed
#: hyperparameters. The seed's random forest on its own statistics comes first, so it wins a
#: tie. The stacking is left out: on the Statlog training file its 5-fold CV accuracy (0.932)
#: was below gradient boosting's (0.939) at about 40 times the cost.
#: The forest on band means and indices at every scale splits on one random feature per node
#: (``max_features=1``, a random-subspace forest): with the best of ~7 correlated multi-scale
#: features per split, trees key on the few values that tell the training polygons apart and
#: miss unseen polygons of the same class.
#: Gradient boosting (also inside the ensemble) stops early on a held-out tenth of its
#: training samples: 500 boosting rounds of 5-6 classes cost minutes on a loaded 2-core
#: machine, and auto fits every candidate once per fold.
AUTO_CANDIDATES: dict[str, dict[str, Any]] = {
    "rf@stats": {},
    "rf@means+indices": {"max_features": 1},
    "rf": {},
    "gb": {"early_stopping": True},
    "lr": {},
    "lr@means+indices": {},
    "ensemble": {"gb__early_stopping": True},
}

#: Candidates of ``auto`` when it compares them by spatially blocked folds (training samples
#: with their pixels, e.g. labelled polygons of a raster): models on the smooth features (band
#: means and indices over the base window and every scale) only - a random-subspace forest,
#: a balanced logistic regression and their equal soft vote - and the blend of them. On a
#: scene with a few dozen labelled polygons the inner blocked CV scores of candidates differ
#: by a polygon, and choosing the seed's forest on 3x3 mean/max/std (or a high-capacity model
#: on every feature) by that noise cost most of the smooth models' gain. Development on the
#: Landsat 7 scene of benchmarks/landuse.py (outer fold seeds 205-209, nested, against the
#: seed's forest on the same folds): with the seed's forest and the vote as candidates, auto
#: chose the seed's forest in 11 of 20 outer folds and gained +0.3 points; with these three,
#: +2.8 (+1.3, +3.3, +4.2, +2.4, +2.6).
AUTO_CANDIDATES_BLOCKED: dict[str, dict[str, Any]] = {
    "vote@means+indices": {},
    "rf@means+indices": {"max_features": 1},
    "lr@means+indices": {},
}

#: Default cross-validation grids for :func:`~skysense.landuse.estimator.tune_classifier`
#: (parameter names of
#: :func:`make_classifier`).
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "rf": {"max_features": ["sqrt", 0.33, 0.5], "min_samples_leaf": [1, 3]},
    "et": {"max_features": ["sqrt", 0.33, 0.5], "min_samples_leaf": [1, 3]},
    "gb": {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31]},
    "svm": {"C": [3.0, 10.0, 30.0, 100.0]},
    "knn": {"n_neighbors": [3, 5, 7, 9]},
    "lr": {"C": [0.1, 1.0, 10.0]},
    "ensemble": {"svm__C": [30.0, 100.0], "knn__n_neighbors": [4, 6]},
    "stack": {"gb__learning_rate": [0.05, 0.1]},
}


def make_classifier(name: str, *, random_state: int = 0, n_jobs: int = 1, **params: Any):
    """A fresh, unfitted scikit-learn classifier by name.

    Parameters
    ----------
    name : str
        One of :data:`CLASSIFIERS`.
    random_state : int
        Seeds every random component.
    n_jobs : int
        Threads for forests and kNN.
    **params
        Hyperparameters: forests ``n_estimators``, ``max_features``, ``min_samples_leaf``,
        ``max_depth`` (rf also ``oob_score``, default True); gb ``learning_rate``, ``max_iter``,
        ``max_leaf_nodes``, ``l2_regularization``, ``early_stopping``; lr ``C``, ``max_iter``; svm ``C``,
        ``gamma``; knn ``n_neighbors``; ensemble ``weights`` (4 numbers) and any of the above
        prefixed with the member name (``svm__C``).

    Raises
    ------
    ConfigError
        Unknown classifier or parameter.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        VotingClassifier,
    )
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    p = dict(params)

    def take(keys: dict) -> dict:
        return {k: p.pop(k, v) for k, v in keys.items()}

    if name == "rf":
        kw = take({"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 1,
                   "max_depth": None, "oob_score": True})  # fmt: skip
        est = RandomForestClassifier(class_weight="balanced", bootstrap=True,
                                     random_state=random_state, n_jobs=n_jobs, **kw)  # fmt: skip
    elif name == "et":
        kw = take({"n_estimators": 500, "max_features": "sqrt", "min_samples_leaf": 1,
                   "max_depth": None})  # fmt: skip
        est = ExtraTreesClassifier(class_weight="balanced", random_state=random_state,
                                   n_jobs=n_jobs, **kw)  # fmt: skip
    elif name == "gb":
        # smaller steps and leaves than scikit-learn's defaults: chosen by 5-fold CV on the
        # Statlog training file (0.939 against 0.930 for 0.1 / 31 leaves / 300 iterations)
        kw = take({"learning_rate": 0.05, "max_iter": 500, "max_leaf_nodes": 15,
                   "l2_regularization": 0.0, "early_stopping": "auto"})  # fmt: skip
        est = HistGradientBoostingClassifier(random_state=random_state, **kw)
    elif name == "svm":
        kw = take({"C": 30.0, "gamma": "scale"})
        est = make_pipeline(
            StandardScaler(),
            CalibratedClassifierCV(SVC(C=float(kw["C"]), gamma=kw["gamma"]), ensemble=False, cv=5),
        )
    elif name == "knn":
        kw = take({"n_neighbors": 6})
        est = make_pipeline(
            StandardScaler(),
            KNeighborsClassifier(int(kw["n_neighbors"]), weights="distance", n_jobs=n_jobs),
        )
    elif name == "lr":
        from sklearn.linear_model import LogisticRegression

        # a smooth, low-variance model: on a scene with few labelled polygons per class it
        # extrapolates to unseen polygons better than trees (benchmarks/landuse.py)
        kw = take({"C": 1.0, "max_iter": 3000})
        est = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=float(kw["C"]), max_iter=int(kw["max_iter"]),
                               class_weight="balanced"),
        )  # fmt: skip
    elif name == "ensemble":
        weights = p.pop("weights", None)
        members = {}
        # member defaults chosen by 5-fold CV on the Statlog training file (benchmarks/landuse.py)
        chosen = {"svm": {"C": 100.0}, "knn": {"n_neighbors": 4}}
        for member in ("svm", "et", "knn", "gb"):
            sub = dict(chosen.get(member, {}))
            sub |= {k.split("__", 1)[1]: p.pop(k) for k in list(p) if k.startswith(member + "__")}
            members[member] = make_classifier(
                member, random_state=random_state, n_jobs=n_jobs, **sub
            )
        est = VotingClassifier(list(members.items()), voting="soft", weights=weights)
    elif name == "vote":
        # a random-subspace forest and a logistic regression, averaged: on a scene with few
        # labelled polygons each transfers to unseen polygons better than a plain forest, and
        # their errors differ (benchmarks/landuse.py: development fold seeds 200-207)
        members = {}
        for member, sub in (("rf", {"max_features": 1, "oob_score": False}), ("lr", {})):
            sub |= {k.split("__", 1)[1]: p.pop(k) for k in list(p) if k.startswith(member + "__")}
            members[member] = make_classifier(
                member, random_state=random_state, n_jobs=n_jobs, **sub
            )
        est = VotingClassifier(list(members.items()), voting="soft")
    elif name == "stack":
        from sklearn.ensemble import StackingClassifier
        from sklearn.linear_model import LogisticRegression

        members = {}
        for member in ("gb", "svm", "et"):
            sub = {k.split("__", 1)[1]: p.pop(k) for k in list(p) if k.startswith(member + "__")}
            members[member] = make_classifier(
                member, random_state=random_state, n_jobs=n_jobs, **sub
            )
        kw = take({"final_C": 1.0, "cv": 5})
        # the combiner sees out-of-fold probabilities of the members (cv folds of the training
        # data), never their in-sample fits
        est = StackingClassifier(list(members.items()),
                                 final_estimator=LogisticRegression(C=float(kw["final_C"]),
                                                                    max_iter=2000),
                                 cv=int(kw["cv"]), stack_method="predict_proba")  # fmt: skip
    elif name == "blend":
        raise ConfigError("'blend' is built by LanduseClassifier (each member on its own feature "
                          "set), not by make_classifier", key="classifier")  # fmt: skip
    elif name == "auto":
        raise ConfigError("'auto' chooses among classifiers at fit time: use LanduseClassifier "
                          "or train_model, not make_classifier", key="classifier")  # fmt: skip
    else:
        raise ConfigError(f"unknown classifier {name!r}; choose from {list(CLASSIFIERS)}",
                          key="classifier")  # fmt: skip
    if p:
        raise ConfigError(f"unknown parameter(s) {sorted(p)} for classifier {name!r}", key="params")
    return est


def check_training_data(
    X: np.ndarray, y: np.ndarray, feature_names: list[str] | None = None, *, min_per_class: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training table; returns ``(X float64 (n, f), y int64 (n,))``.

    Raises
    ------
    InputError
        Shape mismatch, non-finite features (names the row and feature) or a class with fewer
        than ``min_per_class`` samples (names the class).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise InputError(f"features {X.shape} and labels {y.shape} do not match")
    if X.shape[0] == 0:
        raise InputError("no training samples")
    if feature_names is not None and X.shape[1] != len(feature_names):
        raise InputError(f"features have {X.shape[1]} columns, expected {len(feature_names)}")
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        col = feature_names[c] if feature_names is not None else c
        raise InputError(f"{int(bad.any(axis=1).sum())} sample(s) have non-finite (NaN or inf) "
                         "features", row=int(r), column=col)  # fmt: skip
    try:
        yi = y.astype(np.int64)
    except (TypeError, ValueError):
        raise InputError("labels must be integer class codes") from None
    if y.dtype.kind == "f" and not np.array_equal(yi, y):
        raise InputError("labels must be integer class codes, not continuous values")
    y = yi
    codes, counts = np.unique(y, return_counts=True)
    if codes.size < 2:
        raise InputError(f"only one class ({codes[0]}) in the training samples; need two or more")
    few = [(int(c), int(n)) for c, n in zip(codes, counts) if n < min_per_class]
    if few:
        raise InputError(
            "too few samples for the split: "
            + ", ".join(f"class {c} has {n}" for c, n in few)
            + f" (need at least {min_per_class} per class)"
        )
    return X, y


# ---------------------------------------------------------------------------------------------
# Forests as plain arrays


def forest_to_arrays(forest) -> dict[str, np.ndarray]:
    """Flatten a fitted sklearn forest (random forest or extra trees) into arrays.

    Returns
    -------
    dict with ``roots (T,)``, ``left, right, feature (N,) int64``, ``threshold (N,) float64``,
    ``value (N, K) float64`` (per-node class fractions), ``classes (K,)``: node ``i`` of tree
    ``t`` is row ``roots[t] + i``; children indices are global; leaves have ``left == -1``.
    """
    if not hasattr(forest, "estimators_"):
        raise NotFittedError("the forest is not fitted")
    lefts, rights, feats, thrs, vals, roots = [], [], [], [], [], []
    offset = 0
    for tree in forest.estimators_:
        t = tree.tree_
        n = t.node_count
        left = t.children_left.astype(np.int64)
        right = t.children_right.astype(np.int64)
        leaf = left == -1
        lefts.append(np.where(leaf, -1, left + offset))
        rights.append(np.where(leaf, -1, right + offset))
        feats.append(np.where(leaf, 0, t.feature).astype(np.int64))
        thrs.append(t.threshold.astype(np.float64))
        v = t.value[:, 0, :].astype(np.float64)
        vals.append(v / v.sum(axis=1, keepdims=True))
        roots.append(offset)
        offset += n
    return {
        "roots": np.asarray(roots, np.int64),
        "left": np.concatenate(lefts),
        "right": np.concatenate(rights),
        "feature": np.concatenate(feats),
        "threshold": np.concatenate(thrs),
        "value": np.concatenate(vals),
        "classes": np.asarray(forest.classes_),
    }


@functools.lru_cache(maxsize=1)
def _forest_kernel():
    """The compiled traversal (compiled once per process, on first use)."""
    import numba

    # Serial and GIL-free: parallelism comes from the Dask threads running several windows
    # (a numba parallel region inside Dask worker threads would oversubscribe the cores).
    @numba.njit(cache=True, nogil=True)
    def kernel(X, roots, left, right, feature, threshold, value, out):
        n = X.shape[0]
        n_trees = roots.shape[0]
        k = value.shape[1]
        chunk = 2048
        # Tree-outer within a chunk of rows: one tree's nodes stay in cache while the chunk
        # streams through it. Per row the trees are still summed in order (as sklearn does).
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            for t in range(n_trees):
                root = roots[t]
                for i in range(start, stop):
                    node = root
                    while left[node] != -1:
                        # sklearn compares float32 features with float64 thresholds; a select
                        # instead of a branch (the branch is unpredictable)
                        go_left = np.float64(X[i, feature[node]]) <= threshold[node]
                        node = left[node] if go_left else right[node]
                    for c in range(k):
                        out[i, c] += value[node, c]
            for i in range(start, stop):
                for c in range(k):
                    out[i, c] /= n_trees

    return kernel


class FlatForest:
    """A forest predictor rebuilt from :func:`forest_to_arrays` (numba-compiled traversal).

    Gives the same probabilities as the sklearn forest it came from (same float32 cast of the
    features, same summation order over trees); used for loading saved forests without pickle
    and for fast raster prediction.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.arrays = {k: np.ascontiguousarray(arrays[k]) for k in
                       ("roots", "left", "right", "feature", "threshold", "value", "classes")}  # fmt: skip
        self.classes_ = self.arrays["classes"]
        self.n_features_in_ = int(self.arrays["feature"].max()) + 1

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, averaged over the trees."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        out = np.zeros((X32.shape[0], self.classes_.size), np.float64)
        a = self.arrays
        _forest_kernel()(
            X32, a["roots"], a["left"], a["right"], a["feature"], a["threshold"], a["value"], out
        )
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
