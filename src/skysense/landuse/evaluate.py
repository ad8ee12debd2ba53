"""Accuracy assessment: confusion matrix, overall accuracy, kappa, producer's/user's accuracy.

Conventions (Congalton 1991): rows of the confusion matrix are the reference (true) classes,
columns the mapped (predicted) classes. Producer's accuracy of a class = correct / reference
total (recall, 1 - omission error); user's accuracy = correct / mapped total (precision,
1 - commission error); F1 their harmonic mean. Cohen's kappa compares the overall accuracy with
the agreement expected by chance from the row and column totals.

Protocols: stratified hold-out (:func:`holdout_evaluate`), stratified k-fold cross-validation
with pooled out-of-fold predictions (:func:`cross_validate`), spatially blocked
cross-validation (:func:`spatial_cross_validate`: whole square blocks of pixels per fold, and
a buffer between training and test pixels, so that a test pixel's window never shares pixels
with a training pixel's - random-pixel CV on overlapping windows overstates accuracy), and the
band-subset experiment of
Li et al. 2014 (:func:`band_subset_experiment`), all seeded by ``random_state``.
:func:`evaluate_classifier` chooses between them (and an independent test set) from what it
is given, and :func:`evaluate_model` scores a trained model; both return an
:class:`Evaluation` that prints and serialises itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skysense.errors import ConfigError, InputError
from skysense.landuse.classify import check_training_data
from skysense.landuse.features import FeatureSpec
from skysense.landuse.folds import spatial_folds

__all__ = [
    "AccuracyReport",
    "accuracy_report",
    "holdout_evaluate",
    "cross_validate",
    "spatial_folds",
    "spatial_cross_validate",
    "subset_columns",
    "band_subset_experiment",
    "feature_importances",
    "comparison_table",
    "Evaluation",
    "evaluate_classifier",
    "evaluate_model",
]


@dataclasses.dataclass(frozen=True)
class AccuracyReport:
    """Accuracy of a classification against reference labels.

    Attributes
    ----------
    labels : ndarray (k,) of int
        Class codes, in matrix order.
    names : list of str
    confusion : ndarray (k, k) of int
        ``confusion[i, j]`` = samples of reference class i mapped to class j.
    overall_accuracy, kappa : float
    producers, users, f1 : ndarray (k,)
        Per class; NaN where undefined (no reference / no mapped sample).
    """

    labels: np.ndarray
    names: list[str]
    confusion: np.ndarray
    overall_accuracy: float
    kappa: float
    producers: np.ndarray
    users: np.ndarray
    f1: np.ndarray

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    def to_dict(self) -> dict[str, Any]:
        def fl(a):
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "n": self.n,
            "overall_accuracy": self.overall_accuracy,
            "kappa": self.kappa,
            "labels": [int(v) for v in self.labels],
            "names": list(self.names),
            "confusion": self.confusion.tolist(),
            "producers_accuracy": fl(self.producers),
            "users_accuracy": fl(self.users),
            "f1": fl(self.f1),
        }

    def table(self) -> str:
        """Plain-text per-class table and summary line."""
        w = max(len("class"), *(len(f"{c} {n}") for c, n in zip(self.labels, self.names)))
        lines = [f"{'class':<{w}}  {'n_ref':>6} {'producer':>9} {'user':>9} {'F1':>7}"]
        for i, (c, name) in enumerate(zip(self.labels, self.names)):
            lines.append(
                f"{f'{c} {name}':<{w}}  {int(self.confusion[i].sum()):>6} "
                f"{self.producers[i]:>9.4f} {self.users[i]:>9.4f} {self.f1[i]:>7.4f}"
            )
        lines.append(f"overall accuracy {self.overall_accuracy:.4f}  kappa {self.kappa:.4f}  "
                     f"n {self.n}")  # fmt: skip
        return "\n".join(lines)


def accuracy_report(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    labels: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
) -> AccuracyReport:
    """Confusion matrix and accuracy figures.

    Parameters
    ----------
    y_true, y_pred : ndarray (n,) of int
        Reference and mapped class codes.
    labels : sequence of int, optional
        Class codes (rows/columns), default the union of both.
    names : sequence of str, optional
        Display names per label.
    """
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = np.asarray(y_pred).astype(np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise InputError(f"reference {y_true.shape} and predicted {y_pred.shape} labels must "
                         "be non-empty 1-d arrays of equal length")  # fmt: skip
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    index = {int(c): i for i, c in enumerate(labels)}
    missing = sorted(set(np.unique(np.concatenate([y_true, y_pred])).tolist()) - set(index))
    if missing:
        raise InputError(f"labels {missing} are not among the classes {labels.tolist()}")
    k = labels.size
    ti = np.array([index[int(v)] for v in y_true]) if k < 64 else np.searchsorted(labels, y_true)
    pi = np.array([index[int(v)] for v in y_pred]) if k < 64 else np.searchsorted(labels, y_pred)
    cm = np.bincount(ti * k + pi, minlength=k * k).reshape(k, k)
    n = cm.sum()
    diag = np.diag(cm).astype(float)
    rows, cols = cm.sum(axis=1).astype(float), cm.sum(axis=0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        prod = np.where(rows > 0, diag / rows, np.nan)
        user = np.where(cols > 0, diag / cols, np.nan)
        f1 = np.where(prod + user > 0, 2 * prod * user / (prod + user), 0.0)
        f1 = np.where(np.isnan(prod) | np.isnan(user), np.where(rows + cols > 0, 0.0, np.nan), f1)
    po = diag.sum() / n
    pe = float((rows * cols).sum()) / float(n) ** 2
    kappa = (po - pe) / (1 - pe) if pe < 1 else 1.0
    names = [f"class {c}" for c in labels] if names is None else list(names)
    return AccuracyReport(labels, names, cm, float(po), float(kappa), prod, user, f1)


def _names(labels, scheme) -> list[str] | None:
    return None if scheme is None else [scheme.name_of(int(c)) for c in labels]


def holdout_evaluate(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classifier: str = "rf",
    params: Mapping[str, Any] | None = None,
    test_fraction: float = 0.3,
    random_state: int = 0,
    scheme=None,
    n_jobs: int = 1,
    spec: FeatureSpec | None = None,
) -> AccuracyReport:
    """Stratified hold-out: fit on ``1 - test_fraction`` of the samples, score the rest
    (``spec`` names the columns, as in :func:`cross_validate`).

    Raises
    ------
    InputError
        A class too small to appear on both sides of the split (names it).
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ConfigError(f"must be in (0, 1), got {test_fraction}", key="test_fraction")
    X, y = check_training_data(X, y, min_per_class=2)
    n_test_min = np.unique(y, return_counts=True)[1] * test_fraction
    codes, counts = np.unique(y, return_counts=True)
    # both sides need the class, and the training side two of it (LanduseClassifier.fit)
    bad = [(int(c), int(n)) for c, n, t in zip(codes, counts, n_test_min) if t < 1 or n - t < 2]
    if bad:
        raise InputError("too few samples for a stratified hold-out of "
                         f"{test_fraction:g}: " + ", ".join(f"class {c} has {n}" for c, n in bad))  # fmt: skip
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=test_fraction, stratify=y,
                                      random_state=random_state)  # fmt: skip
    from skysense.landuse.estimator import fold_estimator

    est = fold_estimator(classifier, params, random_state=random_state, n_jobs=n_jobs,
                         spec=spec).fit(Xa, ya)  # fmt: skip
    labels = np.unique(y)
    return accuracy_report(yb, est.predict(Xb), labels, _names(labels, scheme))


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classifier: str = "rf",
    params: Mapping[str, Any] | None = None,
    folds: int = 5,
    random_state: int = 0,
    scheme=None,
    n_jobs: int = 1,
    verbose: int = 0,
    spec: FeatureSpec | None = None,
) -> tuple[AccuracyReport, np.ndarray]:
    """Stratified k-fold cross-validation (``verbose``: 1 a bar over the folds, 2 log lines).

    ``spec`` names the columns (needed by feature sets and by ``auto``'s feature-set
    candidates, which it then chooses inside every training fold).

    Returns
    -------
    report : AccuracyReport
        Of the pooled out-of-fold predictions (every sample predicted once).
    fold_accuracy : ndarray (folds,)
    """
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ConfigError(f"need at least 2 folds, got {folds}", key="folds")
    from skysense._dask import progress
    from skysense.landuse.estimator import fold_estimator, min_per_class

    X, y = check_training_data(X, y, min_per_class=min_per_class(folds))

    pred = np.empty_like(y)
    accs = []
    splits = StratifiedKFold(folds, shuffle=True, random_state=random_state).split(X, y)
    with progress(folds, f"{classifier} cross-validation", verbose, unit="folds") as step:
        for tr, te in splits:
            est = fold_estimator(classifier, params, random_state=random_state, n_jobs=n_jobs,
                                 spec=spec)  # fmt: skip
            pred[te] = est.fit(X[tr], y[tr]).predict(X[te])
            accs.append(float(np.mean(pred[te] == y[te])))
            step()
    labels = np.unique(y)
    return accuracy_report(y, pred, labels, _names(labels, scheme)), np.asarray(accs)


def spatial_cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    classifier: str = "rf",
    params: Mapping[str, Any] | None = None,
    block_px: int,
    folds: int = 5,
    buffer_px: int = 0,
    window_px: int | None = None,
    random_state: int = 0,
    scheme=None,
    n_jobs: int = 1,
    verbose: int = 0,
    spec: FeatureSpec | None = None,
) -> tuple[AccuracyReport, np.ndarray]:
    """Spatially blocked cross-validation (:func:`spatial_folds`), pooled out-of-fold report.

    Parameters
    ----------
    X : ndarray (n, f); y : ndarray (n,) of int
    rows, cols : ndarray (n,) of int
        Pixel of every sample.
    block_px, folds, buffer_px
        As :func:`spatial_folds`.
    window_px : int, optional
        Side of the feature window; the blocks must be larger (else a block is no more than
        one window and the split is random pixels again).
    classifier, params
        As :func:`cross_validate`; ``auto`` chooses its model inside every training fold by
        blocked folds of that fold's pixels only (nested).
    spec : FeatureSpec, optional
        Names the columns (feature sets; ``auto``'s default block and buffer).

    Returns
    -------
    report : AccuracyReport
        Pooled out-of-fold predictions. A class absent from (or single in) a training fold
        cannot be predicted in that fold; its samples count as errors.
    fold_accuracy : ndarray (folds,)
    """
    if window_px is not None and block_px <= window_px:
        raise ConfigError(f"blocks of {block_px} px are not larger than the {window_px} px "
                          "feature window", key="block_px")  # fmt: skip
    from skysense._dask import progress
    from skysense.landuse.estimator import fold_estimator

    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.int64)
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    split = spatial_folds(rows, cols, block_px=block_px, folds=folds, buffer_px=buffer_px,
                          random_state=random_state)  # fmt: skip
    pred = np.zeros_like(y)
    accs = []
    with progress(folds, f"{classifier} blocked CV", verbose, unit="folds") as step:
        for train, test in split:
            codes, counts = np.unique(y[train], return_counts=True)
            train = train[np.isin(y[train], codes[counts >= 2])]  # fit needs two per class
            est = fold_estimator(classifier, params, random_state=random_state, n_jobs=n_jobs,
                                 spec=spec)  # fmt: skip
            fit_kw = {"coords": np.column_stack([rows[train], cols[train]])}
            est.fit(X[train], y[train], **(fit_kw if classifier == "auto" else {}))
            pred[test] = est.predict(X[test])
            accs.append(float(np.mean(pred[test] == y[test])))
            step()
    labels = np.unique(y)
    return accuracy_report(y, pred, labels, _names(labels, scheme)), np.asarray(accs)


def subset_columns(spec: FeatureSpec, bands: Sequence[str]) -> tuple[np.ndarray, FeatureSpec]:
    """Feature columns (and the reduced spec) that use only ``bands``.

    Indices are kept when both of their bands are in the subset.
    """
    unknown = [b for b in bands if b not in spec.band_names]
    if unknown:
        raise ConfigError(f"unknown band(s) {unknown}; the bands are {list(spec.band_names)}",
                          key="band_subsets")  # fmt: skip
    keep = [b for b in spec.band_names if b in set(bands)]
    roles = {r: b for r, b in spec.roles if b in keep}
    from skysense.landuse.features import INDICES

    idx = tuple(i for i in spec.indices if all(r in roles for r in INDICES[i]))
    # texture is of an image made from all the bands: left out of any subset
    sub = FeatureSpec(tuple(keep), spec.stats, spec.window_px, idx, tuple(roles.items()),
                      spec.index_stats, scales=spec.scales)  # fmt: skip
    pos = {n: i for i, n in enumerate(spec.names)}
    return np.array([pos[n] for n in sub.names], dtype=np.int64), sub


def band_subset_experiment(
    X: np.ndarray,
    y: np.ndarray,
    spec: FeatureSpec,
    subsets: Mapping[str, Sequence[str]],
    *,
    classifier: str = "rf",
    params: Mapping[str, Any] | None = None,
    folds: int = 5,
    random_state: int = 0,
    scheme=None,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    verbose: int = 0,
) -> dict[str, AccuracyReport]:
    """The same classifier on several band subsets, e.g. 4 against 6 bands (Li et al. 2014).

    With ``X_test``/``y_test`` each subset is trained on all of ``X`` and scored on the test
    set; otherwise by stratified ``folds``-fold cross-validation. Returns subset name -> report.
    ``verbose``: 1 a bar over the subsets, 2 log lines.
    """
    from skysense._dask import progress

    out = {}
    with progress(len(subsets), "band subsets", verbose, unit="subsets") as step:
        for name, bands in subsets.items():
            out[name] = _subset_report(X, y, spec, bands, classifier, params, folds,
                                       random_state, scheme, X_test, y_test)  # fmt: skip
            step()
    return out


def _subset_report(X, y, spec, bands, classifier, params, folds, random_state, scheme, X_test,
                   y_test) -> AccuracyReport:  # fmt: skip
    """One subset of :func:`band_subset_experiment`."""
    cols, sub = subset_columns(spec, bands)
    if X_test is None:
        report, _ = cross_validate(X[:, cols], y, classifier=classifier, params=params,
                                   folds=folds, random_state=random_state, scheme=scheme,
                                   spec=sub)  # fmt: skip
        return report
    from skysense.landuse.estimator import fold_estimator

    Xa, ya = check_training_data(X[:, cols], y)
    est = fold_estimator(classifier, params, random_state=random_state, spec=sub).fit(Xa, ya)
    labels = np.unique(np.concatenate([ya, np.asarray(y_test)]))
    return accuracy_report(y_test, est.predict(np.asarray(X_test)[:, cols]), labels,
                           _names(labels, scheme))  # fmt: skip


def feature_importances(model, X=None, y=None, *, n_repeats: int = 5, random_state: int = 0):
    """Feature name -> importance, sorted decreasing.

    Mean decrease in impurity when the model stored it at training time (forests), else
    permutation importance (mean accuracy drop) on ``X``, ``y``.
    """
    stored = model.info_.get("feature_importances")
    if stored is not None:
        return dict(sorted(stored.items(), key=lambda kv: -kv[1]))
    if X is None or y is None:
        raise InputError(f"{model.classifier!r} has no stored importances; give X and y for "
                         "permutation importance")  # fmt: skip
    from sklearn.inspection import permutation_importance

    r = permutation_importance(model, np.asarray(X, float), np.asarray(y), scoring=None,
                               n_repeats=n_repeats, random_state=random_state)  # fmt: skip
    imp = dict(zip(model.feature_names, r.importances_mean.tolist()))
    return dict(sorted(imp.items(), key=lambda kv: -kv[1]))


def comparison_table(reports: Mapping[str, AccuracyReport]) -> str:
    """Side-by-side text table: overall accuracy, kappa and per-class F1 per report."""
    if not reports:
        return ""
    first = next(iter(reports.values()))
    w = max(len("run"), *(len(k) for k in reports))
    head = f"{'run':<{w}}  {'OA':>7} {'kappa':>7} " + " ".join(
        f"{'F1:' + str(c):>7}" for c in first.labels
    )
    lines = [head]
    for name, r in reports.items():
        f1 = {int(c): v for c, v in zip(r.labels, r.f1)}
        lines.append(f"{name:<{w}}  {r.overall_accuracy:>7.4f} {r.kappa:>7.4f} "
                     + " ".join(f"{f1.get(int(c), np.nan):>7.4f}" for c in first.labels))  # fmt: skip
    return "\n".join(lines)


@dataclasses.dataclass
class Evaluation:
    """Accuracy of a classifier or model, with how it was measured.

    Attributes
    ----------
    method : str
        ``"model"`` (a trained model on test data), ``"test"`` (trained on the training
        samples, scored on an independent test set), ``"holdout"``, ``"cv"`` or
        ``"band_subsets"``.
    title : str
        One line saying what was measured.
    reports : dict
        Name -> :class:`AccuracyReport` (one entry, or one per band subset).
    fold_accuracy : ndarray (folds,), optional
        Per-fold accuracy (``"cv"``).
    importances : dict, optional
        Feature name -> importance, sorted decreasing.
    """

    method: str
    title: str
    reports: dict[str, AccuracyReport]
    fold_accuracy: np.ndarray | None = None
    importances: dict[str, float] | None = None

    @property
    def report(self) -> AccuracyReport:
        """The main report (the first band subset for ``"band_subsets"``)."""
        return next(iter(self.reports.values()))

    def text(self) -> str:
        """The title, the accuracy table(s) and the importances, as printed by the CLI."""
        if self.method == "band_subsets":
            lines = [self.title, comparison_table(self.reports)]
        else:
            lines = [self.title, self.report.table()]
        if self.importances is not None:
            lines.append("feature importances:\n" + "\n".join(
                f"  {k:<16} {v:.4f}" for k, v in self.importances.items()))  # fmt: skip
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"test" | "holdout" | "cv" | "band_subsets": ..., "importances"}``."""
        if self.method == "band_subsets":
            out: dict[str, Any] = {
                "band_subsets": {k: r.to_dict() for k, r in self.reports.items()}
            }
        elif self.method == "cv":
            out = {"cv": dict(self.report.to_dict(), fold_accuracy=self.fold_accuracy.tolist())}
        else:
            out = {"holdout" if self.method == "holdout" else "test": self.report.to_dict()}
        if self.importances is not None:
            out["importances"] = self.importances
        return out


def evaluate_model(
    model, X, y, *, importances: bool = False, random_state: int = 0, name: str = "model"
) -> Evaluation:
    """Score a trained model on test samples.

    Parameters
    ----------
    model : LanduseClassifier
        Fitted.
    X : ndarray (n, n_features); y : ndarray (n,) of int
        Test features and reference codes.
    importances : bool
        Also give feature importances (stored, else by permutation on the test set).
    name : str
        How the title names the model (e.g. its file).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != model.n_features_in_:
        raise InputError(f"test features have {X.shape[-1] if X.ndim else 0} columns, model "
                         f"expects {model.n_features_in_}")  # fmt: skip
    labels = np.union1d(model.classes_, np.unique(y))
    report = accuracy_report(y, model.predict(X), labels, _names(labels, model.scheme_))
    imp = feature_importances(model, X, y, random_state=random_state) if importances else None
    return Evaluation("model", f"{name} on {len(y)} test samples", {"test": report},
                      importances=imp)  # fmt: skip


def evaluate_classifier(
    X: np.ndarray,
    y: np.ndarray,
    spec: FeatureSpec,
    scheme=None,
    *,
    classifier: str = "rf",
    params: Mapping[str, Any] | None = None,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    band_subsets: Mapping[str, Sequence[str]] | None = None,
    holdout: float | None = None,
    folds: int = 5,
    importances: bool = False,
    random_state: int = 0,
    n_jobs: int = 1,
    verbose: int | None = None,
    coords: np.ndarray | None = None,
    block_px: int | None = None,
    buffer_px: int = 0,
) -> Evaluation:
    """Accuracy of a classifier on labelled samples, by the protocol the arguments ask for.

    In order of precedence: ``band_subsets`` compares the subsets (on the test set when given,
    else by ``folds``-fold CV); a test set (``X_test``, ``y_test``) trains on all of ``X`` and
    scores the test set; ``holdout`` scores a stratified hold-out of that fraction; otherwise
    stratified ``folds``-fold cross-validation.

    Parameters
    ----------
    X : ndarray (n, len(spec.names)); y : ndarray (n,) of int
        Training samples.
    spec : FeatureSpec
    scheme : ClassScheme, optional
        Names the classes in the reports.
    importances : bool
        Feature importances (only with a test set).
    verbose : int, optional
        Progress over subsets or folds: 1 a bar, 2 log lines, 0 none; default as
        :func:`skysense._dask.progress_verbosity` says.
    coords : ndarray (n, 2) of int, optional
        Pixel (row, col) of every sample; with ``block_px``, spatially blocked CV
        (:func:`spatial_cross_validate`, buffer ``buffer_px``) replaces the stratified one.
    """
    params = dict(params or {})
    if block_px and not (band_subsets or X_test is not None or holdout):
        if coords is None:
            raise ConfigError("spatially blocked CV needs the samples' pixels (a raster with "
                              "labels, not a Statlog file)", key="block_px")  # fmt: skip
        coords = np.asarray(coords)
        report, accs = spatial_cross_validate(
            X, y, coords[:, 0], coords[:, 1], classifier=classifier, params=params,
            block_px=int(block_px), folds=folds, buffer_px=int(buffer_px),
            window_px=spec.footprint_px, spec=spec,
            random_state=random_state, scheme=scheme, n_jobs=n_jobs, verbose=verbose,
        )  # fmt: skip
        return Evaluation("cv", f"{classifier}, spatially blocked {folds}-fold CV (blocks of "
                          f"{block_px} px, buffer {buffer_px} px; fold accuracies "
                          f"{', '.join(f'{a:.4f}' for a in accs)})", {"cv": report},
                          fold_accuracy=accs)  # fmt: skip
    has_test = X_test is not None
    if has_test and y_test is None:
        raise InputError("X_test given without y_test")
    if band_subsets:
        reports = band_subset_experiment(X, y, spec, band_subsets, classifier=classifier,
                                         params=params, folds=folds, random_state=random_state,
                                         scheme=scheme, X_test=X_test, y_test=y_test,
                                         verbose=verbose)  # fmt: skip
        how = "test set" if has_test else f"{folds}-fold CV"
        return Evaluation("band_subsets", f"band subsets, {classifier}, {how}:", reports)
    if has_test:
        from skysense.landuse.estimator import train_model

        model = train_model(X, y, spec, scheme, classifier=classifier, params=params,
                            random_state=random_state, n_jobs=n_jobs)  # fmt: skip
        labels = np.union1d(model.classes_, np.unique(y_test))
        report = accuracy_report(y_test, model.predict(X_test), labels,
                                 _names(labels, model.scheme_))  # fmt: skip
        imp = None
        if importances:
            imp = feature_importances(model, X_test, y_test, random_state=random_state)
        return Evaluation("test", f"{classifier} trained on {len(y)} samples, tested on "
                          f"{len(y_test)}", {"test": report}, importances=imp)  # fmt: skip
    if holdout:
        report = holdout_evaluate(X, y, classifier=classifier, params=params,
                                  test_fraction=holdout, random_state=random_state,
                                  scheme=scheme, n_jobs=n_jobs, spec=spec)  # fmt: skip
        return Evaluation("holdout", f"{classifier}, stratified hold-out of {holdout:g}",
                          {"holdout": report})  # fmt: skip
    report, accs = cross_validate(X, y, classifier=classifier, params=params, folds=folds,
                                  random_state=random_state, scheme=scheme, n_jobs=n_jobs,
                                  verbose=verbose, spec=spec)  # fmt: skip
    return Evaluation("cv", f"{classifier}, stratified {folds}-fold CV (fold accuracies "
                      f"{', '.join(f'{a:.4f}' for a in accs)})", {"cv": report},
                      fold_accuracy=accs)  # fmt: skip
