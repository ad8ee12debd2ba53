"""Pure VCI3M forecasters: the GP model and the baselines, all with one calling convention.

Every forecaster has ``forecast(t_days, vci, vci3m, n_leads, extra=None) -> (mean, std)``
taking *only the history up to the issue date* (arrays ending at the issue sample) and returning
forecasts of VCI3M at leads 1..n_leads samples. A forecaster may keep state between calls (the
last fitted hyperparameters or model) but only state computed from past calls, and hindcasts
call it in time order, so no call sees later data.

``extra`` (n, k) holds other series on the same dates (neighbouring regions' VCI): the linear
and random-forest models then add their lags as features (the spatial option).
"""

from __future__ import annotations

import numpy as np

from skysense.astrocast.forecast import (
    FastSeasonalGP,
    KernelParams,
    SeasonalGP,
    compose_vci3m,
)

__all__ = [
    "GPForecaster",
    "PersistenceForecaster",
    "LinearARForecaster",
    "RandomForestForecaster",
    "make_forecaster",
    "FORECASTERS",
]


def _step_days(t_days: np.ndarray) -> float:
    return float(np.median(np.diff(t_days[-50:])))


class GPForecaster:
    """AstroCast GP on VCI, composed into VCI3M (see :func:`compose_vci3m`).

    Parameters
    ----------
    window : int
        Samples per VCI3M window (9 dekads, 12 weeks).
    history_days : float
        Only the last ``history_days`` of VCI condition the GP (keeps each fit O(n^3) small).
    refit_every : int
        Re-optimise hyperparameters with scikit-learn every this many calls (warm-started);
        in between, :class:`FastSeasonalGP` conditions with the current ones. 1 = always
        scikit-learn (the reference path).
    fit_history_days : float
        History used when optimising hyperparameters.
    calibrate : bool
        Rescale the stated std per lead by the RMS of standardised errors of this
        forecaster's own earlier forecasts whose targets are already observed (honest: only
        verified past forecasts count). The GP's own std is too narrow on smoothed series.
    min_verified : int
        Verified forecasts per lead needed before the rescaling is used.
    """

    name = "gp"

    def __init__(
        self,
        window: int = 9,
        *,
        history_days: float = 3 * 365.25,
        refit_every: int = 36,
        fit_history_days: float = 6 * 365.25,
        calibrate: bool = True,
        min_verified: int = 20,
    ):
        self.window = window
        self.calibrate = calibrate
        self.min_verified = min_verified
        self.pending_: list = []
        self.z2_sum_ = None
        self.z_count_ = None
        self.history_days = history_days
        self.refit_every = refit_every
        self.fit_history_days = fit_history_days
        self.params_: KernelParams | None = None
        self.n_calls_ = 0
        self.n_refits_ = 0
        self.n_convergence_warnings_ = 0

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        t = np.asarray(t_days, float)
        v = np.asarray(vci, float)
        ok = np.isfinite(v)
        if self.params_ is None or self.n_calls_ % self.refit_every == 0:
            sel = ok & (t > t[-1] - self.fit_history_days)
            gp = SeasonalGP(self.params_ or KernelParams()).fit(t[sel], v[sel])
            self.params_ = gp.params_
            self.n_refits_ += 1
            self.n_convergence_warnings_ += gp.n_convergence_warnings_
        self.n_calls_ += 1
        sel = ok & (t > t[-1] - self.history_days)
        fast = FastSeasonalGP(self.params_).fit(t[sel], v[sel])
        t_new = t[-1] + _step_days(t) * np.arange(1, n_leads + 1)
        mu, cov = fast.predict(t_new, return_cov=True)
        mean, std = compose_vci3m(v[-self.window :], float(vci3m[-1]), mu, cov, self.window)
        if not self.calibrate:
            return mean, std
        return mean, self._calibrated(np.asarray(vci3m, float), mean, std, n_leads)

    def _calibrated(self, y3, mean, std, n_leads):
        n = y3.size
        if self.z2_sum_ is None or self.z2_sum_.size != n_leads:
            self.z2_sum_ = np.zeros(n_leads)
            self.z_count_ = np.zeros(n_leads)
            self.pending_ = []
        still = []
        for i, m, s in self.pending_:
            for h in range(1, n_leads + 1):
                # verify each (issue, lead) once: when its target has just become observed
                if i + h == n - 1 and np.isfinite(y3[i + h]) and s[h - 1] > 0:
                    self.z2_sum_[h - 1] += ((y3[i + h] - m[h - 1]) / s[h - 1]) ** 2
                    self.z_count_[h - 1] += 1
            if i + n_leads > n - 1:
                still.append((i, m, s))
        self.pending_ = still + [(n - 1, mean.copy(), std.copy())]
        ok = self.z_count_ >= self.min_verified
        scale = np.ones(n_leads)
        scale[ok] = np.sqrt(self.z2_sum_[ok] / self.z_count_[ok])
        return std * scale


class PersistenceForecaster:
    """VCI3M stays where it is; std = spread of past h-step changes."""

    name = "persistence"

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        y = np.asarray(vci3m, float)
        mean = np.full(n_leads, y[-1])
        std = np.array(
            [np.nanstd(y[h:] - y[:-h]) if y.size > h + 2 else np.nan for h in range(1, n_leads + 1)]
        )
        return mean, std


def _design(vci, vci3m, extra, n_lags, t_days):
    """Feature rows for every sample: VCI lags, VCI3M, season, neighbours' lags."""
    n = vci.size
    cols = [np.concatenate([np.full(j, np.nan), vci[: n - j]]) for j in range(n_lags)]
    cols.append(vci3m)
    doy = 2 * np.pi * (np.asarray(t_days) % 365.25) / 365.25
    cols += [np.sin(doy), np.cos(doy)]
    if extra is not None:
        ex = np.asarray(extra, float).reshape(n, -1)
        for k in range(ex.shape[1]):
            for j in range(min(n_lags, 3)):
                cols.append(np.concatenate([np.full(j, np.nan), ex[: n - j, k]]))
    return np.column_stack(cols)


def _pairs(x, vci3m, n_leads):
    """Training pairs (features at i, VCI3M[i+h] - VCI3M[i]) whose targets are all known."""
    n = vci3m.size
    idx = np.arange(n - n_leads)
    y = np.column_stack([vci3m[idx + h] - vci3m[idx] for h in range(1, n_leads + 1)])
    xx = x[idx]
    ok = np.all(np.isfinite(xx), axis=1) & np.all(np.isfinite(y), axis=1)
    return xx[ok], y[ok]


class _LaggedForecaster:
    """The baselines that regress the VCI3M change at every lead on lagged values: the
    design, the refit schedule and the forecast step, written once. A subclass fits the
    training pairs (``_fit``, which sets ``resid_std_``) and predicts the change from today's
    VCI3M (``_change``)."""

    def __init__(self, n_lags: int, refit_every: int):
        self.n_lags = n_lags
        self.refit_every = refit_every
        self.n_calls_ = 0

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        y3 = np.asarray(vci3m, float)
        x = _design(np.asarray(vci, float), y3, extra, self.n_lags, t_days)
        if not hasattr(self, "resid_std_") or self.n_calls_ % self.refit_every == 0:
            self._fit(*_pairs(x, y3, n_leads))
        self.n_calls_ += 1
        return y3[-1] + self._change(x), self.resid_std_.copy()

    def _fit(self, xx: np.ndarray, yy: np.ndarray) -> None:
        raise NotImplementedError

    def _change(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class LinearARForecaster(_LaggedForecaster):
    """Direct linear autoregression: VCI3M change at each lead on lagged VCI (least squares).

    Parameters
    ----------
    n_lags : int
        VCI lags used as features (plus today's VCI3M and the season).
    refit_every : int
        Refit every this many calls.
    ridge : float
        Small ridge penalty (on standardised features) for stability.
    """

    name = "linear_ar"

    def __init__(self, n_lags: int = 12, *, refit_every: int = 1, ridge: float = 1e-3):
        super().__init__(n_lags, refit_every)
        self.ridge = ridge
        self.coef_ = None

    def _fit(self, xx, yy):
        mu, sd = xx.mean(0), xx.std(0) + 1e-9
        z = np.column_stack([np.ones(len(xx)), (xx - mu) / sd])
        reg = self.ridge * len(xx) * np.eye(z.shape[1])
        reg[0, 0] = 0
        self.coef_ = np.linalg.solve(z.T @ z + reg, z.T @ yy)
        self.scale_ = (mu, sd)
        self.resid_std_ = (yy - z @ self.coef_).std(0)

    def _change(self, x):
        last = np.where(np.isfinite(x[-1]), x[-1], self.scale_[0])
        z = np.concatenate([[1.0], (last - self.scale_[0]) / self.scale_[1]])
        return z @ self.coef_


class RandomForestForecaster(_LaggedForecaster):
    """Random forest on lagged values (one multi-output forest for all leads).

    Parameters
    ----------
    n_lags : int
    n_estimators : int
    refit_every : int
        Refit every this many calls (forests are slow to grow).
    random_state : int
    """

    name = "random_forest"

    def __init__(
        self,
        n_lags: int = 12,
        *,
        n_estimators: int = 100,
        refit_every: int = 36,
        min_samples_leaf: int = 3,
        random_state: int = 0,
    ):
        super().__init__(n_lags, refit_every)
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.model_ = None

    def _fit(self, xx, yy):
        from sklearn.ensemble import RandomForestRegressor

        self.model_ = RandomForestRegressor(
            self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=0.5,
            random_state=self.random_state,
            n_jobs=1,
        ).fit(xx, yy)
        oob = yy - self.model_.predict(xx)
        self.resid_std_ = oob.std(0) * 1.5  # in-sample residuals understate the error

    def _change(self, x):
        last = np.where(np.isfinite(x[-1]), x[-1], np.nanmean(x, axis=0))
        return self.model_.predict(last[None, :])[0]


FORECASTERS = {
    "gp": GPForecaster,
    "persistence": PersistenceForecaster,
    "linear_ar": LinearARForecaster,
    "random_forest": RandomForestForecaster,
}


def make_forecaster(name: str, **kwargs):
    """A new forecaster by name (``gp``, ``persistence``, ``linear_ar``, ``random_forest``)."""
    from skysense.errors import InputError

    if name not in FORECASTERS:
        raise InputError(f"unknown model {name!r}; choose from {sorted(FORECASTERS)}")
    return FORECASTERS[name](**kwargs)
