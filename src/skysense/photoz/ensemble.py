"""An ensemble of GPz models combined as a Gaussian mixture.

A sparse GP's basis centres start on a random subset of the training rows and the optimiser
finds one of many local optima, so two fits differing only in that seed disagree by a part
of their scatter. :class:`GPzEnsemble` trains ``n_estimators`` copies of one
:class:`~skysense.photoz.gpz.GPzRegressor` with different seeds (on Dask: the members are
independent tasks) and predicts with their equal-weight mixture, moment-matched to one
Gaussian:

    mean = (1/K) sum_k mu_k,   variance = (1/K) sum_k var_k + (1/K) sum_k (mu_k - mean)^2.

The spread of the members' means is model uncertainty: it is added to ``model_variance``;
the noise and input-noise parts are the members' averages. All members stop on the same
validation rows, and the mixture's variance is calibrated on them by a single GPz's rule
(:func:`~skysense.photoz.gpz.coverage_scale`): the members themselves are trained
uncalibrated.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError

from skysense.errors import InputError, NotFittedError
from skysense.photoz.gpz import (
    GPzPrediction,
    GPzRegressor,
    _holdout,
    _PredictsFromComponents,
    coverage_scale,
)

__all__ = ["GPzEnsemble", "mixture"]


def mixture(preds: list[GPzPrediction]) -> GPzPrediction:
    """Moment-matched equal-weight mixture of member predictions (module docstring).

    Parameters
    ----------
    preds : list of GPzPrediction
        One per member, arrays of shape (n,).

    Returns
    -------
    GPzPrediction
        Mean of the means; the variance of the means is added to ``model_variance``.
    """
    means = np.stack([p.mean for p in preds])
    mean = means.mean(axis=0)
    spread = np.mean((means - mean) ** 2, axis=0)
    return GPzPrediction(
        mean=mean,
        model_variance=np.mean([p.model_variance for p in preds], axis=0) + spread,
        noise_variance=np.mean([p.noise_variance for p in preds], axis=0),
        input_variance=np.mean([p.input_variance for p in preds], axis=0),
    )


def _fit_member(est: GPzRegressor, X, y, X_err, sample_weight, Xv, yv, Xv_err) -> GPzRegressor:
    return est.fit(
        X, y, X_err=X_err, sample_weight=sample_weight, X_valid=Xv, y_valid=yv, X_valid_err=Xv_err
    )


class GPzEnsemble(_PredictsFromComponents, RegressorMixin, BaseEstimator):
    """``n_estimators`` GPz fits with different seeds, predicting with their mixture.

    Parameters
    ----------
    estimator : GPzRegressor, optional
        The member template (cloned; its ``random_state`` and ``calibrate`` are replaced).
        Default ``GPzRegressor()``.
    n_estimators : int, default 4
        Number of members.
    calibrate : bool, default True
        Calibrate the mixture's variance on the validation rows (as ``GPzRegressor``).
    random_state : int, RandomState or None
        Seeds the members' seeds and, without ``X_valid``, the validation split.
    scheduler : str, optional
        Where the members train (:func:`skysense._dask.dask_client`): None = local threads
        (or ``SKYSENSE_SCHEDULER``), ``"synchronous"``, ``"processes"`` or a cluster address.

    Attributes
    ----------
    estimators_ : list of GPzRegressor
        The fitted members (uncalibrated: ``variance_scale_ = 1``).
    variance_scale_ : float
        Multiplies every part of the mixture's variance (1 without calibration).
    validation_coverage_raw_ : float
        Validation 1-sigma coverage of the mixture before calibration (NaN without
        validation rows).
    n_iter_, best_iteration_ : int
        Sums over the members of their iterations run and kept.
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_components"]), None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "calibrate": ["boolean"],
        "random_state": ["random_state"],
        "scheduler": [str, None],
    }

    def __init__(
        self,
        estimator: GPzRegressor | None = None,
        n_estimators: int = 4,
        calibrate: bool = True,
        random_state=None,
        scheduler: str | None = None,
    ):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.calibrate = calibrate
        self.random_state = random_state
        self.scheduler = scheduler

    # GPzRegressor's parameters, read through the template (training.py reports them).
    @property
    def covariance(self) -> str:
        return self._template().covariance

    @property
    def weights(self) -> str:
        return self._template().weights

    @property
    def m(self) -> int:
        return self._template().m

    def _template(self) -> GPzRegressor:
        return GPzRegressor() if self.estimator is None else self.estimator

    def fit(
        self, X, y, X_err=None, sample_weight=None, X_valid=None, y_valid=None, X_valid_err=None
    ):
        """Fit the members (on Dask) and calibrate the mixture on the validation rows.

        Parameters are those of :meth:`GPzRegressor.fit`. Without ``X_valid`` the template's
        ``validation_fraction`` of the rows is held out once, the same rows for all members.

        Returns
        -------
        self

        Raises
        ------
        InputError
            Bad parameters or data (as :meth:`GPzRegressor.fit`).
        """
        import dask

        from skysense._dask import compute_with_progress, dask_client

        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise InputError(str(exc)) from exc
        template = self._template()
        X = GPzRegressor._check_X(X)
        n = X.shape[0]
        y = GPzRegressor._check_y(y, n)
        rng = check_random_state(self.random_state)
        err = None if X_err is None else np.asarray(X_err, float)
        sw = None if sample_weight is None else np.asarray(sample_weight, float)
        if X_valid is None and template.validation_fraction > 0 and n >= 20:
            # One split for all members: their stopping rows and the mixture's calibration.
            v, t = _holdout(n, template.validation_fraction, rng)
            X_valid, y_valid = X[v], y[v]
            X_valid_err = None if err is None else err[v]
            X, y = X[t], y[t]
            err = None if err is None else err[t]
            sw = None if sw is None else sw[t]
        seeds = rng.randint(0, 2**31 - 1, size=self.n_estimators)
        members = [clone(template).set_params(random_state=int(s), calibrate=False) for s in seeds]
        if X_valid is None:
            # No validation rows at all: members keep their last iterate (no split of theirs).
            for est in members:
                est.set_params(validation_fraction=0.0)
        task = dask.delayed(_fit_member, pure=False)
        tasks = [task(est, X, y, err, sw, X_valid, y_valid, X_valid_err) for est in members]
        with dask_client(self.scheduler) as client:
            self._set_members(compute_with_progress(tasks, label="GPz ensemble", client=client))
        self.variance_scale_ = 1.0
        self.validation_coverage_raw_ = float("nan")
        if X_valid is not None:
            pred = self.predict_components(X_valid, X_err=X_valid_err)
            yv = GPzRegressor._check_y(y_valid, len(pred.mean), "y_valid")
            raw, scale = coverage_scale(yv, pred.mean, pred.variance, self.calibrate)
            self.validation_coverage_raw_, self.variance_scale_ = raw, scale
        return self

    def _set_members(self, members: list[GPzRegressor]) -> None:
        """Store fitted members and the attributes summed over them (fit and io.load_model)."""
        self.estimators_ = members
        self.n_features_in_ = members[0].n_features_in_
        self.n_iter_ = int(sum(e.n_iter_ for e in members))
        self.best_iteration_ = int(sum(e.best_iteration_ for e in members))

    def predict_components(self, X, X_err=None) -> GPzPrediction:
        """The mixture's mean and variance parts (see :class:`GPzPrediction`), shape (n,)."""
        if not hasattr(self, "estimators_"):
            raise NotFittedError("this GPzEnsemble is not fitted yet; call fit first")
        mix = mixture([e.predict_components(X, X_err=X_err) for e in self.estimators_])
        s = float(self.variance_scale_)
        return GPzPrediction(
            mix.mean, s * mix.model_variance, s * mix.noise_variance, s * mix.input_variance
        )
