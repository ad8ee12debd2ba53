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

import functools
from abc import ABC, abstractmethod

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from threadpoolctl import ThreadpoolController

from skysense.astrocast.forecast import (
    FastSeasonalGP,
    KernelParams,
    compose_vci3m,
    fit_kernel_params,
    fit_log_params,
)

__all__ = [
    "GPForecaster",
    "PersistenceForecaster",
    "LinearARForecaster",
    "RandomForestForecaster",
    "GradientBoostingForecaster",
    "ARGPForecaster",
    "VerifiedErrors",
    "SelectForecaster",
    "simplex_weights",
    "SHRINK",
    "LEVEL",
    "diebold_mariano",
    "hac_variance",
    "andrews_bandwidth",
    "evidence_weight",
    "lead_step",
    "DEFAULT_MODEL",
    "WINDOWED",
    "make_forecaster",
    "FORECASTERS",
]


_CONTROLLER: ThreadpoolController | None = None


def _one_thread():
    """Limit BLAS/OpenMP to one thread for a ``with`` block.

    ``threadpool_limits(1)`` scans the loaded libraries at every call (about 20 ms, more than
    a forecast); one controller per process, made after scikit-learn's OpenMP runtime is
    loaded (at the first tree fit), limits in microseconds.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


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
            # scikit-learn's fit (SeasonalGP) with its objective and optimiser, in NumPy
            params, n_warn = fit_kernel_params(t[sel], v[sel], self.params_ or KernelParams())
            self.params_ = params
            self.n_refits_ += 1
            self.n_convergence_warnings_ += n_warn
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

    def __init__(self):
        # Running count, sum and sum of squares of the finite h-step changes (shifted by the
        # first one, for precision), extended while each history continues the last one.
        self._seen: np.ndarray | None = None
        self._sums: np.ndarray | None = None

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        y = np.asarray(vci3m, float)
        mean = np.full(n_leads, y[-1])
        hs = np.arange(1, n_leads + 1)
        old = self._seen
        if old is None or self._sums.shape[0] != n_leads or not _continues(old, y):
            self._sums = np.zeros((n_leads, 4))  # count, shift, sum, sum of squares
            old = y[:0]
        for h in hs:
            lo = max(old.size, h)  # changes ending at samples lo.. are new
            if lo >= y.size:
                continue
            d = y[lo:] - y[lo - h : y.size - h]
            d = d[np.isfinite(d)]
            if d.size:
                c = self._sums[h - 1]
                if c[0] == 0:
                    c[1] = d[0]
                d = d - c[1]
                c[0] += d.size
                c[2] += d.sum()
                c[3] += d @ d
        self._seen = y.copy()
        n, _, s1, s2 = self._sums.T
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.clip(s2 / n - (s1 / n) ** 2, 0, None)
        std = np.where((y.size > hs + 2) & (n > 0), np.sqrt(var), np.nan)
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


def _pairs(x, vci3m, n_leads, lo: int = 0):
    """Training pairs (features at i, VCI3M[i+h] - VCI3M[i]) whose targets are all known,
    for issue rows ``i >= lo``."""
    n = vci3m.size
    idx = np.arange(lo, max(lo, n - n_leads))
    y = np.column_stack([vci3m[idx + h] - vci3m[idx] for h in range(1, n_leads + 1)])
    xx = x[idx]
    ok = np.all(np.isfinite(xx), axis=1) & np.all(np.isfinite(y), axis=1)
    return xx[ok], y[ok]


def _continues(old: np.ndarray | None, new: np.ndarray | None) -> bool:
    """Whether ``new`` starts with ``old`` (NaN equal to NaN; both None counts)."""
    if old is None or new is None:
        return old is None and new is None
    return new.shape[0] >= old.shape[0] and np.array_equal(old, new[: old.shape[0]], equal_nan=True)


class _LaggedForecaster(ABC):
    """The baselines that regress the VCI3M change at every lead on lagged values: the
    design, the refit schedule and the forecast step, written once. A subclass fits the
    training pairs (``_fit``, which sets ``resid_std_``) and predicts the change from today's
    VCI3M (``_change``).

    Hindcasts call a forecaster with a history one sample longer each time: the design rows
    and training pairs of the earlier samples are kept and only the new ones are built (the
    rebuild at every call cost more than the fit). Kept only while the new history starts
    with the old one exactly; any other history is built from scratch, so the result is
    always that of the history given.
    """

    def __init__(self, n_lags: int, refit_every: int):
        self.n_lags = n_lags
        self.refit_every = refit_every
        self.n_calls_ = 0
        self._seen: tuple | None = None  # (t, vci, vci3m, extra, n_leads) of the last call
        self._rows: tuple | None = None  # (design, pair features, pair targets)

    def _extends_seen(self, t, v, y3, ex, n_leads) -> bool:
        """Whether this history starts with the last call's exactly (same ``n_leads``)."""
        old = self._seen
        return (
            old is not None
            and old[4] == n_leads
            and all(_continues(a, b) for a, b in zip(old[:4], (t, v, y3, ex)))
        )

    def _design_pairs(self, t, v, y3, ex, n_leads):
        old = self._seen
        if self._extends_seen(t, v, y3, ex, n_leads):
            m = old[2].size
            x0, xx0, yy0 = self._rows
            # rows from m on need lags back to m - n_lags + 1
            s0 = max(0, m - self.n_lags + 1)
            cut = None if ex is None else ex[s0:]
            new = _design(v[s0:], y3[s0:], cut, self.n_lags, t[s0:])[m - s0 :]
            x = np.concatenate([x0, new])
            xx, yy = _pairs(x, y3, n_leads, lo=max(0, m - n_leads))
            xx, yy = np.concatenate([xx0, xx]), np.concatenate([yy0, yy])
        else:
            x = _design(v, y3, ex, self.n_lags, t)
            xx, yy = _pairs(x, y3, n_leads)
        self._seen = (t.copy(), v.copy(), y3.copy(), None if ex is None else ex.copy(), n_leads)
        self._rows = (x, xx, yy)
        return x, xx, yy

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        y3 = np.asarray(vci3m, float)
        ex = None if extra is None else np.asarray(extra, float).reshape(y3.size, -1)
        t, v = np.asarray(t_days, float), np.asarray(vci, float)
        last = self._seen
        if (
            last is not None
            and last[2].size == y3.size
            and self._extends_seen(t, v, y3, ex, n_leads)
        ):
            # The same history again (one instance shared by linear AR and AR + GP in the
            # default forecaster): the same forecast, and no extra step of the refit schedule.
            return self._last[0].copy(), self._last[1].copy()
        x, xx, yy = self._design_pairs(t, v, y3, ex, n_leads)
        if not hasattr(self, "resid_std_") or self.n_calls_ % self.refit_every == 0:
            self._fit(xx, yy)
        self.n_calls_ += 1
        self._last = (y3[-1] + self._change(x), self.resid_std_.copy())
        return self._last[0].copy(), self._last[1].copy()

    @abstractmethod
    def _fit(self, xx: np.ndarray, yy: np.ndarray) -> None:
        """Fit the (n_pairs, n_features) design to the (n_pairs, n_leads) changes."""

    @abstractmethod
    def _change(self, x: np.ndarray) -> np.ndarray:
        """The (n_leads,) predicted VCI3M change from the design's last row."""


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


class GradientBoostingForecaster(_LaggedForecaster):
    """Gradient-boosted trees (scikit-learn ``HistGradientBoostingRegressor``) on lagged VCI,
    today's VCI3M and the season (sin/cos of the day of year), with the lead as a feature
    (one model for all leads).

    Parameters
    ----------
    n_lags : int
    max_iter : int
        Boosting iterations per lead.
    learning_rate : float
    refit_every : int
        Refit every this many calls (trees are grown on a schedule, not at every issue).
    random_state : int
    """

    name = "gradient_boosting"

    def __init__(
        self,
        n_lags: int = 12,
        *,
        max_iter: int = 60,
        learning_rate: float = 0.15,
        refit_every: int = 156,
        random_state: int = 0,
    ):
        super().__init__(n_lags, refit_every)
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.model_ = None
        self.trees_: _TreeTable | None = None

    def _fit(self, xx, yy):
        from sklearn.ensemble import HistGradientBoostingRegressor

        # One model for all leads with the lead as a feature: one ensemble to evaluate per
        # forecast instead of one per lead (tree evaluation overhead dominated the hindcasts).
        n, n_leads = yy.shape
        lead = np.repeat(np.arange(1, n_leads + 1, dtype=float)[None, :], n, axis=0).ravel()
        xs = np.column_stack([np.repeat(xx, n_leads, axis=0), lead])
        self.model_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=31,
            min_samples_leaf=20,
            early_stopping=False,
            random_state=self.random_state,
        )
        # One OpenMP thread: the hindcasts already run one region per core, and on a shared
        # machine OpenMP's spinning threads made one fit of 5000 rows take 30 s instead of 0.3.
        with _one_thread():
            self.model_.fit(xs, yy.ravel())
            pred = self.model_.predict(xs).reshape(n, n_leads)
        self.resid_std_ = (yy - pred).std(0) * 1.5  # in-sample residuals understate the error
        self.trees_ = _TreeTable.from_hist_gradient_boosting(self.model_)

    def _change(self, x):
        # the trees take NaN natively (a missing lag goes down the learnt branch)
        n_leads = self.resid_std_.size
        rows = np.column_stack([np.repeat(x[-1:], n_leads, axis=0), np.arange(1.0, n_leads + 1)])
        if self.trees_ is not None:
            return self.trees_.predict(rows)
        with _one_thread():
            return self.model_.predict(rows)


class _TreeTable:
    """The trees of a fitted ``HistGradientBoostingRegressor`` (squared error, numerical
    features) as flat arrays, walked for all rows and trees at once in NumPy.

    The same sums as scikit-learn's ``predict`` (same comparisons, NaN sent the learnt way,
    leaves added to the baseline tree by tree in order): its per-call validation, binning
    set-up and thread start cost a millisecond for the nine rows of a forecast, more than
    the rest of the forecast.
    """

    def __init__(self, feature, threshold, missing_left, left, right, leaf, value, roots, base):
        self.feature, self.threshold, self.missing_left = feature, threshold, missing_left
        self.left, self.right, self.leaf, self.value = left, right, leaf, value
        self.roots, self.base = roots, base

    @classmethod
    def from_hist_gradient_boosting(cls, model) -> _TreeTable | None:
        """The table of ``model``, or None where it does not apply (categorical splits,
        another loss, several trees per iteration)."""
        if model.n_trees_per_iteration_ != 1 or model.loss != "squared_error":
            return None
        nodes = [it[0].nodes for it in model._predictors]
        if any(nd["is_categorical"].any() for nd in nodes):
            return None
        offsets = np.cumsum([0] + [nd.size for nd in nodes[:-1]])
        cat = np.concatenate(nodes)
        shift = np.repeat(offsets, [nd.size for nd in nodes])
        return cls(
            cat["feature_idx"].astype(np.intp),
            cat["num_threshold"].astype(float),
            cat["missing_go_to_left"].astype(bool),
            cat["left"].astype(np.intp) + shift,
            cat["right"].astype(np.intp) + shift,
            cat["is_leaf"].astype(bool),
            cat["value"].astype(float),
            offsets.astype(np.intp),
            float(np.ravel(model._baseline_prediction)[0]),
        )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predictions (n,) for ``rows`` (n, n_features)."""
        rows = np.asarray(rows, float)
        node = np.repeat(self.roots[None, :], rows.shape[0], axis=0)  # (n, n_trees)
        r = np.arange(rows.shape[0])[:, None]
        while True:
            inner = ~self.leaf[node]
            if not inner.any():
                break
            val = rows[r, self.feature[node]]
            go_left = np.where(np.isnan(val), self.missing_left[node], val <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        # baseline first, then the trees in order: scikit-learn's order of additions
        terms = np.column_stack([np.full(rows.shape[0], self.base), self.value[node]])
        return np.add.accumulate(terms, axis=1)[:, -1]


class VerifiedErrors:
    """Out-of-sample errors of a forecaster's own past forecasts, per lead.

    Call :meth:`update` with VCI3M up to the issue date (its last element is "now"), then
    :meth:`add` with the forecast issued now. The error of (issue ``i``, lead ``h``) is
    recorded once ``i + h`` is inside the series seen so far, so only targets observed by the
    issue date ever count: what a selector or a calibration built on it sees is past data.

    Parameters
    ----------
    n_leads : int
    """

    def __init__(self, n_leads: int):
        self.n_leads = n_leads
        self.pending_: list = []  # [issue index, mean (n_leads,), leads verified so far]
        # Per lead, errors and their issue indices in growing buffers (``recent`` is called
        # for every candidate and lead at every issue: slices, not list-to-array copies).
        self._err = np.empty((n_leads, 64))
        self._iss = np.empty((n_leads, 64), dtype=int)
        self._n = np.zeros(n_leads, dtype=int)
        self.last_index_ = -1

    def _append(self, k: int, error: float, issue: int) -> None:
        if self._n[k] == self._err.shape[1]:
            self._err = np.concatenate([self._err, np.empty_like(self._err)], axis=1)
            self._iss = np.concatenate([self._iss, np.empty_like(self._iss)], axis=1)
        self._err[k, self._n[k]] = error
        self._iss[k, self._n[k]] = issue
        self._n[k] += 1

    def update(self, vci3m) -> None:
        """Verify pending forecasts whose targets are now inside ``vci3m`` (n,), percent."""
        y3 = np.asarray(vci3m, float)
        now = y3.size - 1
        self.last_index_ = now
        still = []
        for item in self.pending_:
            i, mean, done = item
            while done < self.n_leads and i + done + 1 <= now:
                h = done + 1
                if np.isfinite(y3[i + h]) and np.isfinite(mean[h - 1]):
                    self._append(h - 1, float(y3[i + h] - mean[h - 1]), i)
                done = h
            if done < self.n_leads:
                still.append([i, mean, done])
        self.pending_ = still

    def add(self, mean) -> None:
        """Register the forecast (n_leads,) issued at the last :meth:`update`'s date."""
        self.pending_.append([self.last_index_, np.asarray(mean, float).copy(), 0])

    def recent(self, lead: int, memory: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``memory`` verified errors at ``lead`` (1-based) and their issue indices
        (read-only views)."""
        k = lead - 1
        lo = max(0, self._n[k] - memory)
        e, i = self._err[k, lo : self._n[k]], self._iss[k, lo : self._n[k]]
        e.flags.writeable = False
        i.flags.writeable = False
        return e, i

    def count(self, lead: int) -> int:
        """Number of verified errors at ``lead``."""
        return int(self._n[lead - 1])


def _half_width_68(errors: np.ndarray) -> float:
    """Empirical 68.27 % quantile of |error| (a split-conformal 1-sigma half-width).

    The same number as ``np.quantile(np.abs(errors), 0.6827)`` (its default "linear" rule,
    interpolated as NumPy does) by a partial sort: ``np.quantile``'s own overhead was a
    tenth of a hindcast's time.
    """
    a = np.abs(np.asarray(errors, float))
    pos = (a.size - 1) * 0.6827
    lo = int(np.floor(pos))
    hi = min(lo + 1, a.size - 1)
    part = np.partition(a, (lo, hi))
    x0, x1 = part[lo], part[hi]
    g = pos - lo
    return float(x1 - (x1 - x0) * (1 - g) if g >= 0.5 else x0 + (x1 - x0) * g)


class ARGPForecaster:
    """Linear AR with a GP on its own verified errors ("GP on AR residuals").

    At lead ``h`` the errors of the AR forecasts issued at ``i`` and verified by now (targets
    ``i + h`` up to today) are a time series in the issue index; a GP with an RBF + white
    kernel (hyperparameters by scikit-learn every ``refit_every`` calls, warm-started, NumPy
    conditioning in between) extrapolates it to today's issue and corrects the AR mean. Its
    predictive std is the std of the corrected forecast.

    Parameters
    ----------
    n_lags : int
    memory : int
        Verified errors per lead that condition the GP.
    min_verified : int
        Below this the plain AR forecast is returned.
    refit_every : int
    ar : LinearARForecaster, optional
        The AR to correct (default a new one with ``n_lags``); pass the instance another
        forecaster already calls with the same histories to fit it once per issue.
    """

    name = "ar_gp"

    def __init__(
        self,
        n_lags: int = 12,
        *,
        memory: int = 104,
        min_verified: int = 30,
        refit_every: int = 104,
        ar: LinearARForecaster | None = None,
    ):
        self.ar = ar if ar is not None else LinearARForecaster(n_lags)
        self.memory = memory
        self.min_verified = min_verified
        self.refit_every = refit_every
        self.errors_: VerifiedErrors | None = None
        self.hyper_: dict[int, tuple[float, float, float]] = {}
        self.n_calls_ = 0
        self._weights_cache: dict[int, tuple] = {}

    def _hyper(self, x, e, h):
        """Fit (amplitude, length, noise) of ``C RBF + White`` to errors ``e`` at issues ``x``:
        scikit-learn's maximum marginal likelihood (bounds, start, optimiser), in NumPy."""
        amp, length, noise = self.hyper_.get(h, (0.5, 10.0, 0.5))
        d2 = np.subtract.outer(x, x) ** 2
        eye = np.eye(x.size)

        def kernel_grads(theta):
            a, ell, nz = np.exp(theta)
            r = a * np.exp(-0.5 * d2 / ell**2)
            return r + nz * eye, np.stack([r, r * d2 / ell**2, nz * eye])

        bounds = np.log([(1e-3, 1e1), (1.0, 500.0), (1e-3, 2.0)])
        theta, _ = fit_log_params(kernel_grads, e, np.log([amp, length, noise]), bounds)
        # a hyperparameter at its bound is expected (e.g. no error structure at all)
        self.hyper_[h] = tuple(float(v) for v in np.exp(theta))

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        y3 = np.asarray(vci3m, float)
        mean, std = self.ar.forecast(t_days, vci, vci3m, n_leads, extra)
        if self.errors_ is None or self.errors_.n_leads != n_leads:
            self.errors_ = VerifiedErrors(n_leads)
        self.errors_.update(y3)
        self.errors_.add(mean)
        refit = self.n_calls_ % self.refit_every == 0
        self.n_calls_ += 1
        now = y3.size - 1
        out_m, out_s = mean.copy(), std.copy()
        for h in range(1, n_leads + 1):
            e, idx = self.errors_.recent(h, self.memory)
            if e.size < self.min_verified:
                continue
            mu, sd = float(e.mean()), float(e.std()) or 1.0
            z = (e - mu) / sd
            x = idx.astype(float)
            if refit or h not in self.hyper_:
                self._hyper(x, z, h)
            w, var = self._weights(h, now - x)
            out_m[h - 1] = mean[h - 1] + mu + sd * float(w @ z)
            out_s[h - 1] = sd * np.sqrt(max(var, 1e-12))
        return out_m, out_s

    def _weights(self, h: int, offsets: np.ndarray) -> tuple[np.ndarray, float]:
        """Kriging weights ``K^-1 k*`` and predictive variance for errors ``offsets`` issues
        before today. The kernel is stationary, so they depend only on the offsets and the
        hyperparameters, which stay the same from one issue to the next (the last ``memory``
        issues, between refits): they are solved once and reused."""
        amp, length, noise = self.hyper_[h]
        hit = self._weights_cache.get(h)
        if hit is not None and hit[0] == (amp, length, noise) and np.array_equal(hit[1], offsets):
            return hit[2], hit[3]
        d = np.subtract.outer(offsets, offsets)
        k = amp * np.exp(-0.5 * (d / length) ** 2) + (noise + 1e-9) * np.eye(offsets.size)
        ks = amp * np.exp(-0.5 * (offsets / length) ** 2)
        w = cho_solve(cho_factor(k, lower=True), ks)
        var = amp + noise - float(ks @ w)
        self._weights_cache[h] = ((amp, length, noise), offsets.copy(), w, var)
        return w, var


def hac_variance(x: np.ndarray, bandwidth: float) -> float:
    """Long-run variance of a series (Newey-West / Bartlett kernel).

    ``gamma_0 + 2 sum_k (1 - k / bandwidth) gamma_k`` over lags ``1 <= k < bandwidth`` (and
    ``k < n``), with the autocovariances ``gamma_k`` of ``x`` about its mean, each a sum over
    the ``n - k`` pairs divided by ``n`` (Newey & West 1987). The variance of the mean of
    ``x`` is this over ``n``.

    Parameters
    ----------
    x : ndarray (n,)
    bandwidth : float
        Bartlett bandwidth (``lead`` for the Diebold-Mariano statistic: lags up to
        ``lead - 1``).

    Returns
    -------
    float
        Non-negative (the Bartlett kernel guarantees it); 0 for fewer than two values.
    """
    x = np.asarray(x, float)
    n = x.size
    if n < 2:
        return 0.0
    x = x - x.mean()
    n_lags = min(int(np.ceil(bandwidth)) - 1, n - 1)
    var = float(x @ x)
    if n_lags >= 1:
        # all the lagged sums at once (O(n^2) in C; n is a few hundred)
        gam = np.correlate(x, x, "full")[n : n + n_lags]
        var += 2.0 * float((1.0 - np.arange(1, n_lags + 1) / bandwidth) @ gam)
    return max(var, 0.0) / n


def andrews_bandwidth(x: np.ndarray) -> float:
    """Data-dependent Bartlett bandwidth of Andrews (1991), AR(1) plug-in.

    ``S = 1.1447 (alpha n)^(1/3)`` with ``alpha = 4 rho^2 / ((1 - rho)^2 (1 + rho)^2)`` and
    ``rho`` the least-squares AR(1) coefficient of ``x`` about its mean: the bandwidth that
    minimises the asymptotic MSE of the long-run variance for an AR(1). No tuning constant.
    Capped at ``n`` (all lags; ``rho`` at or beyond +-1 gives ``n``).

    Parameters
    ----------
    x : ndarray (n,)

    Returns
    -------
    float
        Bandwidth in samples, between 0 and ``n``.
    """
    x = np.asarray(x, float)
    n = x.size
    if n < 3:
        return float(n)
    x = x - x.mean()
    den = float(x[:-1] @ x[:-1])
    if den <= 0:
        return 0.0
    rho = float(x[1:] @ x[:-1]) / den
    if not abs(rho) < 1:
        return float(n)
    alpha = 4.0 * rho * rho / ((1.0 - rho) ** 2 * (1.0 + rho) ** 2)
    return float(min(1.1447 * (alpha * n) ** (1.0 / 3.0), n))


def diebold_mariano(d: np.ndarray, lead: int) -> float:
    """Diebold-Mariano statistic of a loss differential: its mean over its standard error.

    ``d`` (n,) are per-issue loss differences (e.g. squared error of forecaster A minus that
    of B). Forecasts ``lead`` steps ahead issued every step overlap, so ``d`` is autocorrelated
    up to lag ``lead - 1``: the variance of its mean is the Newey-West (Bartlett) long-run
    variance with ``lead - 1`` lags (:func:`hac_variance` with bandwidth ``lead``; Diebold &
    Mariano 1995; Newey & West 1987). Large positive values say A loses to B by more than
    chance. Returns +-inf for a constant non-zero ``d`` and 0 for fewer than two values or a
    zero mean.
    """
    d = np.asarray(d, float)
    n = d.size
    if n < 2:
        return 0.0
    mu = float(d.mean())
    var = hac_variance(d, max(int(lead), 1))
    if var <= 1e-12 * max(mu * mu, 1e-300):
        return 0.0 if mu == 0 else float(np.copysign(np.inf, mu))
    return mu / np.sqrt(var / n)


#: One-sided confidence of the lower bound on the stack's weight (:func:`evidence_weight`):
#: the conventional 95 %, not tuned on any data.
LEVEL = 0.95


def evidence_weight(e_anchor, e_stack, lead: int, level: float = LEVEL) -> float:
    """How far to move from the anchor toward the stack: a lower confidence bound.

    With past out-of-sample errors ``e_anchor`` of the anchor and ``e_stack`` of the stack on
    the same targets, the combination ``anchor + lam (stack - anchor)`` has errors
    ``e_anchor - lam u`` with ``u = e_anchor - e_stack`` (the stack minus the anchor), and the
    least-squares ``lam_hat = sum(e_anchor u) / sum(u^2)``. Its standard error comes from the
    long-run variance of the scores ``u (e_anchor - lam_hat u)`` (:func:`hac_variance`, with
    the bandwidth of :func:`andrews_bandwidth`, at least ``lead``: the errors of forecasts
    ``lead`` steps ahead overlap, and these errors stay correlated far longer). The weight is
    ``lam_hat - z se`` (``z`` the one-sided normal quantile of ``level``), clipped to [0, 1]:
    exactly 0, the anchor alone, unless the past errors show a gain beyond chance.

    Parameters
    ----------
    e_anchor, e_stack : ndarray (m,)
        Verified errors of the anchor and of the stack's own past forecasts, same issues.
    lead : int
        Lead in samples.
    level : float
        One-sided confidence (default :data:`LEVEL`).

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    InputError
        Error arrays not 1-d of one length, or ``level`` outside [0.5, 1).
    """
    from scipy.special import ndtri  # the normal quantile (norm.ppf's value, 1000x faster)

    from skysense.errors import InputError

    ea = np.asarray(e_anchor, float)
    es = np.asarray(e_stack, float)
    if ea.ndim != 1 or ea.shape != es.shape:
        raise InputError(f"e_anchor and e_stack must be 1-d of one length, got shapes "
                         f"{ea.shape} and {es.shape}")  # fmt: skip
    if not 0.5 <= level < 1:
        raise InputError(f"level must be in [0.5, 1), got {level!r}")
    u = ea - es
    uu = float(u @ u)
    if ea.size < 2 or not uu > 0:
        return 0.0
    lam = float(ea @ u) / uu
    score = u * (ea - lam * u)
    bw = max(andrews_bandwidth(score), float(lead))
    se = np.sqrt(ea.size * hac_variance(score, bw)) / uu
    return float(np.clip(lam - ndtri(level) * se, 0.0, 1.0))


def _default_candidates(window: int, n_lags: int) -> dict:
    # AR + GP corrects the linear AR candidate's own forecasts: one instance serves both
    # (a repeated call with the same history returns the stored forecast).
    ar = LinearARForecaster(n_lags)
    return {
        "gp": GPForecaster(window, refit_every=156, fit_history_days=3 * 365.25, calibrate=False),
        "linear_ar": ar,
        "ar_gp": ARGPForecaster(n_lags, ar=ar),
        "gradient_boosting": GradientBoostingForecaster(n_lags),
    }


def lead_step(errors: np.ndarray, weights: np.ndarray, anchor: int) -> float:
    """The least-squares step from the anchor toward a combination, on one lead's errors.

    For past errors ``E`` (m, k) of k forecasts of the same targets, the forecast
    ``f_a + lam * (f_w - f_a)`` (``f_w`` the combination with ``weights``) has errors
    ``e_a - lam * u`` with ``u = e_a - E w``, whose sum of squares is smallest at
    ``lam* = e_a'u / u'u`` and falls monotonically from ``lam = 0`` to ``lam*``. Returns
    ``lam*`` clipped to [0, 1]; exactly 0 when the combination does not lower the anchor's
    squared error on these errors (``e_a'u <= 0``), including ``u = 0`` (the combination
    forecasts as the anchor did).

    Parameters
    ----------
    errors : ndarray (m, k)
        Verified errors (observed minus forecast), one column per forecast.
    weights : ndarray (k,)
        The combination's weights.
    anchor : int
        Column of the anchor.

    Returns
    -------
    float
    """
    e = np.asarray(errors, float)
    # u = sum_k w_k (e_a - e_k) (weights summing to one): exactly 0 for forecasts equal to the
    # anchor's, where ``e_a - E w`` would leave rounding noise whose sign is arbitrary
    u = (e[:, [anchor]] - e) @ np.asarray(weights, float)
    num = float(e[:, anchor] @ u)
    den = float(u @ u)
    if not (num > 0 and den > 0):
        return 0.0
    return min(num / den, 1.0)


#: Default pseudo-count per lead step of the anchor's weight in the stack: chosen on the
#: development split only (first half of the weekly VIIRS issue dates; see
#: :class:`SelectForecaster`), used unchanged everywhere.
SHRINK = 450.0

#: Default lead pooling of the stack's weights (:class:`SelectForecaster`, ``lead_pool``): 1,
#: one pooled weight vector for every lead. The registered alternative 0.5 (chosen on the
#: synthetic set of ``benchmarks/_astrocast_synth.py`` only) met ">= best baseline" at every
#: lead of all three real sets but fell below the pooled rule at county 10-30 d, which its
#: registered adoption test forbids; it stays an option (``meta.auto_rule.lead_pool_rule``).
LEAD_POOL = 1.0


def simplex_weights(gram: np.ndarray) -> np.ndarray:
    """Weights ``w >= 0, sum(w) = 1`` minimising ``w' G w`` for a Gram matrix ``G`` (k, k).

    With ``G = E'E / m`` for the errors ``E`` (m, k) of k forecasts of the same targets this is
    the constrained least-squares forecast combination (Granger & Ramanathan 1984, without
    intercept). Solved exactly: the optimum is the equality-constrained optimum
    ``G_S^-1 1 / 1' G_S^-1 1`` on some support ``S``, so it is the feasible (all weights >= 0)
    support solution with the smallest ``w' G w``; k is a handful of candidates (2^k - 1
    supports).

    Returns
    -------
    ndarray (k,)
    """
    g = np.asarray(gram, float)
    k = g.shape[0]
    # a relative ridge keeps identical candidates (AR + GP before its first correction is
    # linear AR) solvable; it moves the weights by ~1e-10
    g = g + 1e-10 * (np.trace(g) / k + 1e-300) * np.eye(k)
    best, best_obj = None, np.inf
    for mask in range(1, 2**k):
        s = [j for j in range(k) if mask >> j & 1]
        try:
            u = np.linalg.solve(g[np.ix_(s, s)], np.ones(len(s)))
        except np.linalg.LinAlgError:
            continue
        tot = float(u.sum())
        if not tot > 0 or np.any(u < -1e-12 * tot):
            continue
        if 1.0 / tot < best_obj:
            best_obj = 1.0 / tot
            best = np.zeros(k)
            best[s] = np.clip(u, 0, None) / tot
    if best is None:  # degenerate: the candidate with the smallest squared error
        best = np.zeros(k)
        best[int(np.argmin(np.diag(g)))] = 1.0
    return best


class SelectForecaster:
    """The default forecaster: a shrunk constrained-least-squares stack of the candidates.

    Every call runs all candidates on the history up to the issue date and verifies their
    earlier forecasts whose targets are now observed (:class:`VerifiedErrors`).
    ``combine="stack"`` (the default) weights the candidates by constrained least squares
    (non-negative weights summing to one, :func:`simplex_weights`) on their last ``memory``
    jointly verified errors, pooled over the leads (each lead's errors scaled by the anchor's
    MSE there): the stack ``w``. It is shrunk toward the anchor (``prefer``, linear AR;
    without it the best past candidate) per lead ``h``::

        w_h = lam_h * w + (1 - lam_h) * e_anchor,   lam_h = n / (n + shrink * h)

    with ``n`` the verified errors per lead. Weights from a few years of strongly
    autocorrelated errors are noisy, the more so the longer the lead (errors ``h`` steps ahead
    overlap ``h`` issues). On the development split, the first half of the issue dates of the
    weekly VIIRS series, per-lead unshrunk weights lost up to 0.023 of R^2 to linear AR alone
    and the earlier Diebold-Mariano-gated selection up to 0.0027 (at 63 days); this rule,
    with ``shrink`` = 450, at most 0.00001. ``shrink`` and the pooling over leads were chosen
    there and are used unchanged on the other sets (``meta.auto_rule`` of
    benchmarks/results/astrocast.json).

    Lead pooling (``lead_pool``; registered as the default 0.5 before it was scored on real
    data, not adopted: default :data:`LEAD_POOL` = 1): the weights at lead ``h`` are the CLS weights on the Gram matrices
    of all leads ``j`` weighted by ``lead_pool^|h - j|``, so that a candidate good at short
    leads only gets its weight mostly there, while neighbouring leads still share data. It
    comes from a diagnosis on a synthetic development set only (benchmarks/_astrocast_synth.py,
    40 simulated weekly series; the Kenyan sets had all been seen): there the seed's GP beats
    linear AR at 7-28 days and loses beyond, and one pooled weight vector could not follow
    that; of 0, 0.5 and 1, 0.5 had the largest worst-lead R^2 against the best baseline.

    The lead cap (``lead_cap="verified"``; not the default) bounds ``lam_h`` further by the
    least-squares step from the anchor toward the unshrunk stack on that lead's own record:
    the stack's past forecasts (with the weights of their day) and the anchor's, verified at
    lead ``h`` (:func:`lead_step`). The reason is mechanical: one weight vector serves every
    lead, and at a lead where the stack's verified forecasts did not beat the anchor's
    (``e_a'(e_a - e_s) <= 0``) the pooled shrinkage still moved toward it by ``lam_h``; the
    cap sets ``lam_h`` to exactly 0 there (the anchor's forecast to the bit), and elsewhere
    never moves past the step at which that lead's past squared error stops falling. It adds
    no constant and only ever moves the forecast toward the anchor. ``"fit"`` takes the step
    on the candidates' errors the weights were fitted to (in-sample, so optimistic); None (the
    default) is the plain shrinkage. The cap was written after every benchmark set had been
    seen, from this argument, and was to become the default only if it met "at least linear
    AR at every lead" on all of them. It did not: on weekly VIIRS it fell further below
    linear AR at 63 days (-2.2e-5 of R^2 against -1.3e-5), within the sampling error of such
    differences (region-bootstrap se ~2e-5); ``meta.auto_rule.lead_cap_trial``.

    ``shrink=None`` instead moves toward the stack only as far as the stack's own record
    earns: its forecasts at past issues (with the weights of their day) are verified like a
    candidate's, and ``lam_h`` is the lower one-sided ``level`` confidence bound of the
    least-squares weight of the stack against the anchor on those errors, with a long-run
    (Newey-West, Andrews bandwidth) variance (:func:`evidence_weight`); without evidence of a
    gain, ``lam_h`` is exactly 0 and the forecast the anchor's to the last bit. It was the
    best of five such rules on the development split, but it is *not* the default: on the
    sets not used to choose it (county, weekly MODIS, the second half of the VIIRS dates) it
    was below linear AR at more leads than the fixed shrinkage (weekly MODIS at 8 of 9 leads,
    by up to 0.0014 of R^2 at 63 days, while on the county data it gained up to 0.012;
    ``meta.auto_rule.evidence_rule_trial``). With a few years of errors this autocorrelated
    the long-run variance is underestimated (the 95 % bound holds about 85 % of the time in
    simulation), and a chance opening toward the unshrunk stack can cost much.
    ``combine="select"`` returns one candidate per lead: the one with the smallest recent MSE,
    kept to ``prefer`` unless it beats it beyond chance (``gate``). ``fallback`` (linear AR)
    is used until ``min_verified`` errors exist (of the anchor at every lead for the stack, at
    that lead for the selection). Nothing beyond the issue date is seen: the weights at every
    issue use only forecasts verified by then.

    The std is calibrated the same way (split-conformal): the 68.27 % quantile of the
    absolute verified errors of the combined forecasts themselves (the anchor candidate's
    when there are too few of its own), so that mean +- std is a 68 % interval;
    drought-class probabilities take it as a Gaussian std.

    Parameters
    ----------
    window : int
        Samples per VCI3M window (for the GP candidate).
    candidates : dict name -> forecaster, optional
        Default: the seed's GP, linear AR, AR + GP on its residuals, gradient boosting.
    memory : int
        Verified errors per lead used for the weights and the interval (about 3 years).
    min_verified : int
        Verified errors per lead needed before leaving ``fallback`` (and, for
        ``shrink=None``, verified forecasts of the stack itself before moving toward it).
    fallback : str
        Candidate used before enough errors are verified.
    n_lags : int
    combine : {"stack", "select"}
    shrink : float or None
        Stacking: pseudo-count of the anchor's weight per lead step (``lam_h = n / (n +
        shrink * h)``); 0 is the plain constrained least-squares stack, ``inf`` the anchor
        alone; None the evidence bound above.
    level : float
        ``shrink=None``: one-sided confidence of the lower bound (:data:`LEVEL`).
    prefer : str or None
        The anchor of the stack and the default of the selection (linear AR, the strongest
        baseline).
    lead_pool : float in [0, 1]
        Stacking: the weights at lead ``h`` are the CLS weights on the scaled Gram matrices
        of every lead ``j`` weighted by ``lead_pool^|h - j|`` (1: one pooled weight vector for
        all leads, the rule before; 0: each lead's own errors alone). Default
        :data:`LEAD_POOL`.
    lead_cap : {None, "verified", "fit"}
        Stacking with finite ``shrink``: bound ``lam_h`` by the least-squares step toward
        the stack on lead ``h``'s verified errors of the stack's own past forecasts
        ("verified"), or of the candidates combined with today's weights ("fit"); None: no
        bound.
    gate : float or None
        ``combine="select"`` only: another candidate replaces ``prefer`` at a lead only when
        its verified squared errors are smaller than ``prefer``'s on the same past issues by
        more than chance, i.e. the one-sided Diebold-Mariano statistic
        (:func:`diebold_mariano`) exceeds ``gate`` (1.645: the 5 % level). None: the lowest
        MSE wins.

    Attributes
    ----------
    choice_ : list of str
        Per lead at the last call: the candidate with the largest weight (stack) or the
        selected one.
    weights_ : ndarray (n_leads, n_candidates)
        Per lead, the weight of each candidate (in ``candidates`` order) at the last call.
        With ``combine="stack"`` the CLS weights are the same at every lead; the shrinkage
        toward the anchor (``lam_h``) differs by lead.
    lam_ : ndarray (n_leads,)
        ``combine="stack"``: ``lam_h`` at the last call (0: the anchor alone).
    last_candidates_ : dict name -> (mean, std)
        Every candidate's forecast at the last call (hindcasts report them side by side).
    """

    name = "auto"

    def __init__(
        self,
        window: int = 9,
        *,
        candidates: dict | None = None,
        memory: int = 156,
        min_verified: int = 30,
        fallback: str = "linear_ar",
        n_lags: int = 12,
        combine: str = "stack",
        shrink: float | None = SHRINK,
        level: float = LEVEL,
        prefer: str | None = "linear_ar",
        gate: float | None = 1.645,
        lead_cap: str | None = None,
        lead_pool: float = LEAD_POOL,
    ):
        from skysense.errors import InputError

        if combine not in ("stack", "select"):
            raise InputError(f"combine must be 'stack' or 'select', got {combine!r}")
        if shrink is not None and not shrink >= 0:
            raise InputError(f"shrink must be None or >= 0, got {shrink!r}")
        if not 0.5 <= level < 1:
            raise InputError(f"level must be in [0.5, 1), got {level!r}")
        self.combine = combine
        self.shrink = None if shrink is None else float(shrink)
        if lead_cap not in (None, "fit", "verified"):
            raise InputError(f"lead_cap must be None, 'fit' or 'verified', got {lead_cap!r}")
        self.lead_cap = lead_cap
        if not 0.0 <= lead_pool <= 1.0:
            raise InputError(f"lead_pool must be in [0, 1], got {lead_pool!r}")
        self.lead_pool = float(lead_pool)
        self.level = float(level)
        self.prefer = prefer
        self.gate = gate
        self.window = window
        self.candidates = (
            candidates if candidates is not None else _default_candidates(window, n_lags)
        )
        for role, name in (("fallback", fallback), ("prefer", prefer)):
            if name is not None and name not in self.candidates:
                raise InputError(f"{role} {name!r} is not a candidate: {sorted(self.candidates)}")
        self.memory = memory
        self.min_verified = min_verified
        self.fallback = fallback
        self.verified_: dict[str, VerifiedErrors] = {}
        self.own_: VerifiedErrors | None = None
        # the unshrunk stack's own forecasts, verified like a candidate's (shrink=None)
        self.stack_: VerifiedErrors | None = None
        self.choice_: list[str] = []
        self.weights_: np.ndarray | None = None
        self.lam_: np.ndarray | None = None
        self.last_candidates_: dict = {}

    @property
    def n_convergence_warnings_(self) -> int:
        return sum(int(getattr(c, "n_convergence_warnings_", 0)) for c in self.candidates.values())

    def _score(self, name: str, h: int) -> float:
        e, _ = self.verified_[name].recent(h, self.memory)
        return float(np.mean(e**2)) if e.size >= self.min_verified else np.inf

    def _beats_prefer(self, name: str, h: int) -> bool:
        """Whether ``name``'s verified errors at lead ``h`` beat ``prefer``'s beyond chance
        (on the issues both verified, the last ``memory``)."""
        if self.gate is None:
            return True
        ea, ia = self.verified_[name].recent(h, self.memory)
        eb, ib = self.verified_[self.prefer].recent(h, self.memory)
        if not np.array_equal(ia, ib):  # usually both verified the same issues
            _, ka, kb = np.intersect1d(ia, ib, return_indices=True)
            ea, eb = ea[ka], eb[kb]
        if ea.size < self.min_verified:
            return False
        return diebold_mariano(eb**2 - ea**2, h) > self.gate

    def _joint_errors(self, names: list[str], h: int) -> np.ndarray:
        """(m, k) verified errors of ``names`` at lead ``h`` on the last ``memory`` issues
        all of them verified."""
        got = [self.verified_[k].recent(h, self.memory) for k in names]
        idx = got[0][1]
        if all(np.array_equal(idx, i) for _, i in got[1:]):
            return np.column_stack([e for e, _ in got])
        common = functools.reduce(np.intersect1d, [i for _, i in got])
        return np.column_stack([e[np.isin(i, common)] for e, i in got])

    def _stack(self, outs: dict, n_leads: int) -> tuple[np.ndarray, np.ndarray, str]:
        """Weights (n_leads, n_candidates), the unshrunk stack's forecast (n_leads,) and the
        anchor's name.

        One weight vector for all leads, from the Gram matrices of the joint verified errors
        of every lead, each scaled by the anchor's MSE at that lead (so that every lead counts
        alike): pooling the leads gives the weights more data than one lead's errors. It is
        shrunk toward the anchor per lead by ``lam_h = n / (n + shrink * h)``: errors ``h``
        steps ahead overlap ``h`` issues, so ``n`` of them carry about ``n / h`` issues' worth
        of information (or, ``shrink=None``, by the evidence bound on the stack's own verified
        forecasts, :func:`evidence_weight`).
        """
        names = list(self.candidates)
        w = np.zeros((n_leads, len(names)))
        self.lam_ = np.zeros(n_leads)
        hs = range(1, n_leads + 1)
        if self.prefer is not None:
            anchor = self.prefer
        else:  # the best past candidate, by MSE relative to the others summed over leads
            mse = np.array([[self._score(k, h) for h in hs] for k in names])
            # among those verified at every lead: one never verified (no forecasts yet, or
            # too few) must not keep the stack on the fallback
            ok = np.flatnonzero(np.isfinite(mse).all(axis=1))
            anchor = None
            if ok.size:
                rel = mse[ok] / np.maximum(mse[ok].min(axis=0), np.finfo(float).tiny)
                anchor = names[int(ok[np.argmin(rel.sum(1))])]
        ready = anchor is not None and all(
            self.verified_[anchor].count(h) >= self.min_verified for h in hs
        )
        if not ready:
            w[:, names.index(self.fallback)] = 1.0
            return w, outs[self.fallback][0], self.fallback
        # candidates with a forecast now at every lead and enough verified errors of their own
        use = [
            k
            for k in names
            if np.isfinite(outs[k][0]).all()
            and all(self.verified_[k].count(h) >= self.min_verified for h in hs)
        ]
        w[:, names.index(anchor)] = 1.0
        if anchor not in use or len(use) < 2:
            return w, outs[anchor][0], anchor
        a = use.index(anchor)
        n = np.inf
        errs, grams = [], []
        for h in hs:
            e = self._joint_errors(use, h)
            errs.append(e)
            n = min(n, e.shape[0])
            g = e.T @ e / max(e.shape[0], 1)
            grams.append(g / g[a, a] if g[a, a] > 0 else None)
        if n < self.min_verified:
            return w, outs[anchor][0], anchor
        # per lead h, CLS on the Gram matrices of all leads j weighted by lead_pool^|h - j|
        # (lead_pool = 1: one pooled weight vector for every lead)
        w_lead = np.empty((n_leads, len(use)))
        for h in hs:
            if h > 1 and self.lead_pool == 1.0:
                w_lead[h - 1] = w_lead[0]
                continue
            gram = np.zeros((len(use), len(use)))
            for j, g in enumerate(grams, start=1):
                if g is not None:
                    gram += self.lead_pool ** abs(h - j) * g
            w_lead[h - 1] = simplex_weights(gram)
        cols = [names.index(k) for k in use]
        # as the anchor plus weighted differences: a candidate forecasting exactly as the anchor
        # adds exactly nothing (a plain weighted sum would differ by rounding, ~1e-15)
        f_a = outs[anchor][0]
        stack = f_a + sum(
            w_lead[:, i] * (outs[k][0] - f_a) for i, k in enumerate(use) if k != anchor
        )
        for h in hs:
            w_use = w_lead[h - 1]
            if self.shrink is None:
                lam = self._evidence(anchor, h)
            elif np.isfinite(self.shrink):
                lam = n / (n + self.shrink * h)
                if self.lead_cap == "fit":
                    lam = min(lam, lead_step(errs[h - 1], w_use, a))
                elif self.lead_cap == "verified":
                    lam = min(lam, self._verified_step(anchor, h))
            else:
                lam = 0.0
            self.lam_[h - 1] = lam
            w[h - 1] = 0.0
            w[h - 1, cols] = lam * w_use
            w[h - 1, names.index(anchor)] += 1.0 - lam
        return w, stack, anchor

    def _verified_step(self, anchor: str, h: int) -> float:
        """:func:`lead_step` from the anchor toward the unshrunk stack on their last ``memory``
        verified errors at lead ``h`` (the stack's own past forecasts, issues both verified)."""
        ea, ia = self.verified_[anchor].recent(h, self.memory)
        es, is_ = self.stack_.recent(h, self.memory)
        if not np.array_equal(ia, is_):
            _, ka, ks = np.intersect1d(ia, is_, return_indices=True)
            ea, es = ea[ka], es[ks]
        return lead_step(np.column_stack([ea, es]), np.array([0.0, 1.0]), 0)

    def _evidence(self, anchor: str, h: int) -> float:
        """``lam_h`` from the stack's and the anchor's last ``memory`` verified errors at lead
        ``h`` on the issues both verified (0 with fewer than ``min_verified``)."""
        ea, ia = self.verified_[anchor].recent(h, self.memory)
        es, is_ = self.stack_.recent(h, self.memory)
        if not np.array_equal(ia, is_):
            _, ka, ks = np.intersect1d(ia, is_, return_indices=True)
            ea, es = ea[ka], es[ks]
        if ea.size < self.min_verified:
            return 0.0
        return evidence_weight(ea, es, h, self.level)

    def _select(self, h: int) -> str:
        scores = {k: self._score(k, h) for k in self.candidates}
        best = min(scores, key=scores.get)
        if (
            self.prefer is not None
            and best != self.prefer
            and np.isfinite(scores[self.prefer])
            and not self._beats_prefer(best, h)
        ):
            best = self.prefer
        return best if np.isfinite(scores[best]) else self.fallback

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        y3 = np.asarray(vci3m, float)
        names = list(self.candidates)
        if self.own_ is None or self.own_.n_leads != n_leads:
            self.own_ = VerifiedErrors(n_leads)
            self.stack_ = VerifiedErrors(n_leads)
            self.verified_ = {k: VerifiedErrors(n_leads) for k in names}
        outs = {}
        for name, cand in self.candidates.items():
            m, s = cand.forecast(t_days, vci, vci3m, n_leads, extra)
            outs[name] = (np.asarray(m, float), np.asarray(s, float))
            self.verified_[name].update(y3)
        self.own_.update(y3)
        self.stack_.update(y3)
        mean = np.empty(n_leads)
        std = np.empty(n_leads)
        self.choice_ = []
        stack = None
        if self.combine == "stack":
            self.weights_, stack, anchor = self._stack(outs, n_leads)
        else:
            self.weights_ = np.zeros((n_leads, len(names)))
        for h in range(1, n_leads + 1):
            if self.combine == "select":
                anchor = self._select(h)
                self.weights_[h - 1, names.index(anchor)] = 1.0
            w = self.weights_[h - 1]
            # the anchor plus weighted differences (weights sum to one): the anchor's forecast
            # to the bit when every other weight is 0 or its candidate forecasts as the anchor
            f_a = outs[anchor][0][h - 1]
            mean[h - 1] = f_a + sum(
                float(w[j]) * (outs[k][0][h - 1] - f_a)
                for j, k in enumerate(names)
                if w[j] > 0 and k != anchor
            )
            self.choice_.append(names[int(np.argmax(w))])
            own, _ = self.own_.recent(h, self.memory)
            cand, _ = self.verified_[anchor].recent(h, self.memory)
            if own.size >= self.min_verified:
                std[h - 1] = _half_width_68(own)
            elif cand.size >= self.min_verified:
                std[h - 1] = _half_width_68(cand)
            else:
                std[h - 1] = outs[anchor][1][h - 1]
        for name in names:
            self.verified_[name].add(outs[name][0])
        self.own_.add(mean)
        if stack is not None:
            self.stack_.add(stack)
        self.last_candidates_ = outs
        return mean, std


FORECASTERS = {
    "auto": SelectForecaster,
    "gp": GPForecaster,
    "persistence": PersistenceForecaster,
    "linear_ar": LinearARForecaster,
    "random_forest": RandomForestForecaster,
    "gradient_boosting": GradientBoostingForecaster,
    "ar_gp": ARGPForecaster,
}

#: The forecaster the CLI uses unless told otherwise: the stack of :class:`SelectForecaster`.
DEFAULT_MODEL = "auto"

#: Forecasters whose constructor takes the VCI3M ``window``.
WINDOWED = ("auto", "gp")


def make_forecaster(name: str, **kwargs):
    """A new forecaster by name (``auto``, ``gp``, ``persistence``, ``linear_ar``,
    ``random_forest``, ``gradient_boosting``, ``ar_gp``)."""
    from skysense.errors import InputError

    if name not in FORECASTERS:
        raise InputError(f"unknown model {name!r}; choose from {sorted(FORECASTERS)}")
    return FORECASTERS[name](**kwargs)
