"""The land-use classifier as a scikit-learn estimator.

:class:`LanduseClassifier` wraps the classifiers of :func:`~skysense.landuse.classify.make_classifier`
with the feature spec and the class scheme. It is a plain estimator: ``clone``, ``get_params``,
``Pipeline`` and ``GridSearchCV`` work on it, its parameters are validated at ``fit``, and it
keeps ``n_features_in_`` and ``feature_names_in_``. It lives apart from
:mod:`~skysense.landuse.classify` because importing scikit-learn is slow and the CLI's help
must not pay for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skysense.errors import ConfigError, InputError
from skysense.landuse.classes import ClassScheme
from skysense.landuse.classify import (
    AUTO_CANDIDATES,
    CLASSIFIERS,
    DEFAULT_GRIDS,
    check_training_data,
    make_classifier,
)
from skysense.landuse.features import FeatureSpec

__all__ = [
    "LanduseClassifier",
    "train_model",
    "tune_classifier",
    "select_classifier",
    "fold_estimator",
    "describe_training",
]


class _ParameterError(ConfigError, InvalidParameterError):
    """A bad constructor parameter: a skysense ConfigError that scikit-learn recognises too."""


class LanduseClassifier(ClassifierMixin, BaseEstimator):
    """A land-use classifier (scikit-learn estimator) with its features and classes.

    Parameters
    ----------
    classifier : str, default "rf"
        Name in :data:`CLASSIFIERS`.
    params : dict, optional
        Hyperparameters of :func:`make_classifier` (JSON-able), e.g. ``{"n_estimators": 500}``.
        ``GridSearchCV`` can search over ``classifier`` and ``params``.
    spec : FeatureSpec, optional
        The features the columns of ``X`` are (needed to classify rasters; checked against the
        number of columns).
    scheme : ClassScheme, optional
        The class scheme the labels belong to (default: built from the codes present).
    random_state : int, RandomState or None, default 0
        Seeds every random component.
    n_jobs : int, default 1
        Threads for forests and kNN.

    Attributes
    ----------
    estimator_ : fitted scikit-learn classifier or :class:`FlatForest`
    classes_ : ndarray (n_classes,) of int
        Class codes in the column order of :meth:`predict_proba`.
    scheme_ : ClassScheme or None
        ``scheme`` or the one built from the training codes (None when a code is outside
        1..65535: such a model classifies tables but cannot write class rasters).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names when ``X`` was a DataFrame with string column names.
    seed_ : int
        The integer seed given to :func:`make_classifier` (saved with the model).
    info_ : dict
        Training summary: samples per class, out-of-bag accuracy, importances, versions (and
        CV results when :func:`train_model` tuned it).
    """

    _parameter_constraints: dict = {
        "classifier": [StrOptions(set(CLASSIFIERS))],
        "params": [Mapping, None],
        "spec": [FeatureSpec, None],
        "scheme": [ClassScheme, None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        classifier: str = "rf",
        params: Mapping[str, Any] | None = None,
        *,
        spec: FeatureSpec | None = None,
        scheme: ClassScheme | None = None,
        random_state=0,
        n_jobs: int | None = 1,
    ):
        self.classifier = classifier
        self.params = params
        self.spec = spec
        self.scheme = scheme
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _validate(self) -> None:
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise _ParameterError(str(exc)) from None

    def fit(self, X, y, *, coords=None) -> LanduseClassifier:
        """Fit on a feature table.

        Parameters
        ----------
        X : array-like (n, n_features)
            Features from :mod:`skysense.landuse.features` (``len(spec.names)`` columns when
            ``spec`` is given).
        y : array-like (n,) of int
            Class codes (in ``scheme`` when given).
        coords : array-like (n, 2) of int, optional
            Pixel (row, col) of every sample. With ``classifier="auto"`` the candidates are
            then compared by spatially blocked folds (:func:`select_classifier`) instead of
            stratified random ones.

        Raises
        ------
        ConfigError
            A bad parameter (also a scikit-learn ``InvalidParameterError``).
        InputError
            Shape mismatch, non-finite features, non-integer labels, a single class, a class
            with one sample, or codes outside ``scheme``.
        """
        import sklearn

        self._validate()
        names = None if self.spec is None else self.spec.names
        # scikit-learn's checks and bookkeeping (sparse input, y shape, n_features_in_,
        # feature_names_in_); then ours, which name the row and column of a bad value
        try:
            Xv, yv = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=False)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        Xa, ya = check_training_data(Xv, yv, names, min_per_class=2)
        scheme = self.scheme
        if scheme is None:
            try:
                scheme = ClassScheme.from_codes(np.unique(ya))
            except ConfigError:
                # codes outside 1..65535 (0 is nodata in a class raster): fine for tables, but
                # such a model cannot write class rasters
                scheme = None
        unknown = [] if scheme is None else sorted(set(np.unique(ya).tolist()) - set(scheme.codes))
        if unknown:
            raise InputError(f"label codes {unknown} are not in class scheme {scheme.name!r} "
                             f"(codes {scheme.codes})")  # fmt: skip
        rs = self.random_state
        seed = (
            int(rs)
            if isinstance(rs, Integral)
            else int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        )
        n_jobs = 1 if self.n_jobs is None else int(self.n_jobs)
        name, params = self.classifier, dict(self.params or {})
        selection = None
        if name == "auto":
            opts = {"candidates": None, "folds": 3, "block_px": None, "buffer_px": 0} | params
            unknown = sorted(set(opts) - {"candidates", "folds", "block_px", "buffer_px"})
            if unknown:
                raise ConfigError(f"unknown parameter(s) {unknown} for classifier 'auto' "
                                  "(candidates, folds, block_px, buffer_px)", key="params")  # fmt: skip
            name, params, selection = select_classifier(
                Xa, ya, opts["candidates"], folds=int(opts["folds"]), coords=coords,
                block_px=opts["block_px"], buffer_px=int(opts["buffer_px"]),
                random_state=seed, n_jobs=n_jobs,
            )  # fmt: skip
        est = make_classifier(name, random_state=seed, n_jobs=n_jobs, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # small-sample OOB warnings
            est.fit(Xa, ya)
        codes, counts = np.unique(ya, return_counts=True)
        info: dict[str, Any] = {"n_samples": {str(int(c)): int(n) for c, n in zip(codes, counts)}}
        if selection is not None:
            info["model_selection"] = selection
        self.chosen_ = {"classifier": name, "params": params}
        if name == "rf" and hasattr(est, "oob_score_"):
            info["oob_accuracy"] = float(est.oob_score_)
        if hasattr(est, "feature_importances_"):
            cols = names or [f"x{i}" for i in range(Xa.shape[1])]
            info["feature_importances"] = dict(zip(cols, map(float, est.feature_importances_)))
        info["sklearn_version"] = sklearn.__version__
        self.estimator_ = est
        self.classes_ = np.asarray(est.classes_)
        self.scheme_ = scheme
        self.seed_ = seed
        self.info_ = info
        return self

    def _check(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        if self.spec is not None:
            shape = np.shape(X)
            n_feat = len(self.spec.names)
            if len(shape) != 2 or shape[1] != n_feat:
                raise InputError(
                    f"features have {shape[-1] if shape else 0} columns but the model expects "
                    f"{n_feat} ({self.spec.n_bands} bands: {', '.join(self.spec.band_names)})"
                )
        try:
            return validate_data(self, X, reset=False, dtype=np.float64)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, ``(n, n_classes)`` in the order of :attr:`classes_`."""
        X = self._check(X)
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Class codes ``(n,)`` (argmax of the probabilities)."""
        check_is_fitted(self, "estimator_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns (from ``spec``, else ``feature_names_in_``, else x0...)."""
        if self.spec is not None:
            return self.spec.names
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        check_is_fitted(self, "n_features_in_")
        return [f"x{i}" for i in range(self.n_features_in_)]


def select_classifier(
    X: np.ndarray,
    y: np.ndarray,
    candidates: Mapping[str, Mapping[str, Any]] | list[str] | None = None,
    *,
    folds: int = 3,
    coords: np.ndarray | None = None,
    block_px: int | None = None,
    buffer_px: int = 0,
    random_state: int = 0,
    n_jobs: int = 1,
) -> tuple[str, dict, dict]:
    """Choose a classifier by cross-validated accuracy on the training data only.

    Parameters
    ----------
    X : ndarray (n, f); y : ndarray (n,) of int
        The training samples (nothing else is looked at).
    candidates : mapping name -> params, or list of names, optional
        Default :data:`~skysense.landuse.classify.AUTO_CANDIDATES`.
    folds : int
        Cross-validation folds.
    coords : ndarray (n, 2) of int, optional
        Pixel (row, col) per sample: spatially blocked folds
        (:func:`~skysense.landuse.folds.spatial_folds`, blocks of ``block_px``, default
        1/8 of the larger extent of the samples but at least 8 px); else stratified, shuffled.

    Returns
    -------
    name : str
    params : dict
    record : dict
        ``{"how", "folds", "scores": {name: mean out-of-fold accuracy}, "chosen"}``.
    """
    from sklearn.model_selection import StratifiedKFold

    from skysense.landuse.folds import spatial_folds

    cands = dict(AUTO_CANDIDATES) if candidates is None else candidates
    if not isinstance(cands, Mapping):
        cands = {str(c): {} for c in cands}
    bad = [c for c in cands if c not in CLASSIFIERS or c == "auto"]
    if bad or not cands:
        raise ConfigError(f"unknown candidate classifier(s) {bad}", key="candidates")
    if coords is not None:
        coords = np.asarray(coords, np.int64)
        extent = int(max(np.ptp(coords[:, 0]), np.ptp(coords[:, 1]))) + 1
        block = int(block_px) if block_px else max(8, extent // 8)
        split = spatial_folds(coords[:, 0], coords[:, 1], block_px=block, folds=folds,
                              buffer_px=buffer_px, random_state=random_state)  # fmt: skip
        how = f"spatially blocked {folds}-fold CV, blocks of {block} px, buffer {buffer_px} px"
    else:
        k = min(folds, int(np.unique(y, return_counts=True)[1].min()))
        if k < 2:
            raise InputError("auto needs at least two samples of every class to compare models")
        split = list(StratifiedKFold(k, shuffle=True, random_state=random_state).split(X, y))
        how = f"stratified {k}-fold CV"
    scores = {}
    for name, params in cands.items():
        correct = total = 0
        for train, test in split:
            codes, counts = np.unique(y[train], return_counts=True)
            train = train[np.isin(y[train], codes[counts >= 2])]
            if np.unique(y[train]).size < 2:
                continue
            est = make_classifier(name, random_state=random_state, n_jobs=n_jobs, **dict(params))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                est.fit(X[train], y[train])
            correct += int(np.sum(est.predict(X[test]) == y[test]))
            total += test.size
        scores[name] = correct / total if total else float("nan")
    best = max(scores, key=lambda c: (np.nan_to_num(scores[c], nan=-1.0), -list(cands).index(c)))
    record = {"how": how, "folds": folds, "scores": scores, "chosen": best,
              "params": dict(cands[best])}  # fmt: skip
    return best, dict(cands[best]), record


def min_per_class(folds: int) -> int:
    """Fewest samples of a class for stratified ``folds``-fold training: every training fold
    then holds at least two of it, as :meth:`LanduseClassifier.fit` needs (a class of ``n``
    keeps at least ``n - ceil(n / folds)`` in each training fold)."""
    return folds if folds > 2 else 4


def fold_estimator(
    classifier: str, params: Mapping[str, Any] | None, *, random_state: int = 0, n_jobs: int = 1
) -> LanduseClassifier:
    """A fresh :class:`LanduseClassifier` for one fold of a cross-validation or one tuning
    candidate: as the final model, but a random forest skips its out-of-bag score, which
    the held-out fold replaces (the fitted trees are the same)."""
    params = dict(params or {})
    if classifier == "rf":
        params.setdefault("oob_score", False)
    return LanduseClassifier(classifier, params, random_state=random_state, n_jobs=n_jobs)


def tune_classifier(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    grid: Mapping[str, list] | None = None,
    *,
    cv: int = 5,
    random_state: int = 0,
    n_jobs: int = 1,
    verbose: int = 0,
) -> tuple[dict, float, list[dict]]:
    """Choose hyperparameters by stratified k-fold cross-validated accuracy.

    Parameters
    ----------
    name : str
        Classifier name (in :data:`~skysense.landuse.classify.CLASSIFIERS`); every candidate
        is a :class:`LanduseClassifier` (:func:`fold_estimator`).
    X : ndarray (n, f); y : ndarray (n,)
    grid : mapping, optional
        Parameter -> candidate values (default :data:`DEFAULT_GRIDS`).
    cv : int
        Folds (stratified, shuffled with ``random_state``).
    verbose : int
        Progress over the candidates: 1 a bar, 2 log lines (:func:`skysense._dask.progress`).

    Returns
    -------
    best_params : dict
    best_score : float
        Mean cross-validated accuracy of the best parameters.
    results : list of dict
        ``{"params", "mean_accuracy", "std_accuracy"}`` for every candidate.
    """
    from sklearn.model_selection import ParameterGrid, StratifiedKFold, cross_val_score

    X, y = check_training_data(X, y, min_per_class=min_per_class(cv))
    grid = DEFAULT_GRIDS.get(name, {}) if grid is None else grid
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    from skysense._dask import progress

    results = []
    candidates = list(ParameterGrid(dict(grid))) if grid else [{}]
    with progress(len(candidates), f"tuning {name}", verbose, unit="candidates") as step:
        for params in candidates:
            est = fold_estimator(name, params, random_state=random_state, n_jobs=n_jobs)
            scores = cross_val_score(est, X, y, cv=folds, error_score="raise")
            results.append({"params": params, "mean_accuracy": float(scores.mean()),
                            "std_accuracy": float(scores.std())})  # fmt: skip
            step()
    best = max(results, key=lambda r: r["mean_accuracy"])
    return dict(best["params"]), best["mean_accuracy"], results


def train_model(
    X: np.ndarray,
    y: np.ndarray,
    spec: FeatureSpec | None = None,
    scheme: ClassScheme | None = None,
    *,
    classifier: str = "rf",
    params: Mapping[str, Any] | None = None,
    tune: bool = False,
    grid: Mapping[str, list] | None = None,
    cv: int = 5,
    random_state: int = 0,
    n_jobs: int = 1,
    verbose: int | None = None,
    coords: np.ndarray | None = None,
) -> LanduseClassifier:
    """Fit a land-use model on a feature table (optionally tuning its hyperparameters first).

    Parameters
    ----------
    X : ndarray (n, len(spec.names))
        Features from :mod:`skysense.landuse.features`.
    y : ndarray (n,) of int
        Class codes (must be in ``scheme``; default scheme: built from the codes present).
    spec : FeatureSpec, optional
    scheme : ClassScheme, optional
    classifier : str
        Name in :data:`CLASSIFIERS`.
    params : mapping, optional
        Fixed hyperparameters.
    tune : bool
        Choose hyperparameters on ``grid`` by ``cv``-fold cross-validation first; the chosen
        ones are in the returned model's ``params`` and ``info_["cv_tuning"]``.
    verbose : int, optional
        Progress of the tuning: 1 a bar, 2 log lines, 0 none; default as
        :func:`skysense._dask.progress_verbosity` says (a bar on a terminal, else log lines).
    coords : ndarray (n, 2) of int, optional
        Pixel of every sample: ``auto`` then compares its candidates by spatially blocked
        folds.

    Returns
    -------
    LanduseClassifier
        Fitted.
    """
    params = dict(params or {})
    tuning = None
    if tune and classifier == "auto":
        raise ConfigError("'auto' chooses its model by cross-validation itself; --tune is for "
                          "a named classifier", key="tune")  # fmt: skip
    if tune:
        names = None if spec is None else spec.names
        Xa, ya = check_training_data(X, y, names, min_per_class=min_per_class(cv))
        best, score, results = tune_classifier(
            classifier,
            Xa,
            ya,
            grid,
            cv=cv,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        params.update(best)
        tuning = {"folds": cv, "best_params": best, "best_accuracy": score, "results": results}
    model = LanduseClassifier(classifier, params, spec=spec, scheme=scheme,
                              random_state=random_state, n_jobs=n_jobs)  # fmt: skip
    model.fit(X, y, **({"coords": coords} if coords is not None else {}))
    if tuning is not None:
        model.info_["cv_tuning"] = tuning
    return model


def describe_training(model: LanduseClassifier, n_samples: int) -> str:
    """Lines on a model :func:`train_model` returned, trained on ``n_samples`` samples.

    The classifier, the samples per class, the features, and (when measured) the out-of-bag
    accuracy and the hyperparameters cross-validation chose.
    """
    info, scheme, names = model.info_, model.scheme_, model.spec.names
    counts = ", ".join(f"{scheme.name_of(int(c))}: {n}" for c, n in info["n_samples"].items())
    lines = [
        f"trained {getattr(model, 'chosen_', {}).get('classifier', model.classifier)} on "
        f"{n_samples} samples ({counts}); {len(names)} "
        f"features: {', '.join(names)}"
    ]
    if "model_selection" in info:
        sel = info["model_selection"]
        lines.append(f"auto chose {sel['chosen']} by {sel['how']} on the training samples: "
                     + ", ".join(f"{k} {v:.4f}" for k, v in sel["scores"].items()))  # fmt: skip
    if "oob_accuracy" in info:
        lines.append(f"out-of-bag accuracy {info['oob_accuracy']:.4f}")
    if "cv_tuning" in info:
        t = info["cv_tuning"]
        lines.append(
            f"{t['folds']}-fold CV chose {t['best_params']} (accuracy {t['best_accuracy']:.4f})"
        )
    return "\n".join(lines)
