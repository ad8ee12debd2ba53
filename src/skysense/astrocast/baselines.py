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

from abc import ABC, abstractmethod

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from threadpoolctl import ThreadpoolController

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
    "GradientBoostingForecaster",
    "ARGPForecaster",
    "VerifiedErrors",
    "SelectForecaster",
    "diebold_mariano",
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


class _LaggedForecaster(ABC):
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

    def _change(self, x):
        # the trees take NaN natively (a missing lag goes down the learnt branch)
        n_leads = self.resid_std_.size
        rows = np.column_stack([np.repeat(x[-1:], n_leads, axis=0), np.arange(1.0, n_leads + 1)])
        with _one_thread():
            return self.model_.predict(rows)


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
        self.errors_: list[list[float]] = [[] for _ in range(n_leads)]
        self.issues_: list[list[int]] = [[] for _ in range(n_leads)]
        self.last_index_ = -1

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
                    self.errors_[h - 1].append(float(y3[i + h] - mean[h - 1]))
                    self.issues_[h - 1].append(i)
                done = h
            if done < self.n_leads:
                still.append([i, mean, done])
        self.pending_ = still

    def add(self, mean) -> None:
        """Register the forecast (n_leads,) issued at the last :meth:`update`'s date."""
        self.pending_.append([self.last_index_, np.asarray(mean, float).copy(), 0])

    def recent(self, lead: int, memory: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``memory`` verified errors at ``lead`` (1-based) and their issue indices."""
        e = np.asarray(self.errors_[lead - 1][-memory:], float)
        return e, np.asarray(self.issues_[lead - 1][-memory:], int)

    def count(self, lead: int) -> int:
        """Number of verified errors at ``lead``."""
        return len(self.errors_[lead - 1])


def _half_width_68(errors: np.ndarray) -> float:
    """Empirical 68.27 % quantile of |error| (a split-conformal 1-sigma half-width)."""
    return float(np.quantile(np.abs(errors), 0.6827))


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
    """

    name = "ar_gp"

    def __init__(
        self, n_lags: int = 12, *, memory: int = 104, min_verified: int = 30, refit_every: int = 104
    ):
        self.ar = LinearARForecaster(n_lags)
        self.memory = memory
        self.min_verified = min_verified
        self.refit_every = refit_every
        self.errors_: VerifiedErrors | None = None
        self.hyper_: dict[int, tuple[float, float, float]] = {}
        self.n_calls_ = 0

    def _hyper(self, x, e, h):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        amp, length, noise = self.hyper_.get(h, (0.5, 10.0, 0.5))
        kernel = ConstantKernel(amp, (1e-3, 1e1)) * RBF(length, (1.0, 500.0)) + WhiteKernel(
            noise, (1e-3, 2.0)
        )
        import warnings

        with warnings.catch_warnings():
            # a hyperparameter at its bound is expected (e.g. no error structure at all)
            warnings.simplefilter("ignore")
            gp = GaussianProcessRegressor(kernel).fit(x[:, None], e)
        k = gp.kernel_
        self.hyper_[h] = (
            float(k.k1.k1.constant_value),
            float(k.k1.k2.length_scale),
            float(k.k2.noise_level),
        )

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
            amp, length, noise = self.hyper_[h]
            d = np.subtract.outer(x, x)
            k = amp * np.exp(-0.5 * (d / length) ** 2) + (noise + 1e-9) * np.eye(x.size)
            ks = amp * np.exp(-0.5 * ((now - x) / length) ** 2)
            c = cho_factor(k, lower=True)
            w = cho_solve(c, ks)
            out_m[h - 1] = mean[h - 1] + mu + sd * float(ks @ cho_solve(c, z))
            out_s[h - 1] = sd * np.sqrt(max(amp + noise - float(ks @ w), 1e-12))
        return out_m, out_s


def diebold_mariano(d: np.ndarray, lead: int) -> float:
    """Diebold-Mariano statistic of a loss differential: its mean over its standard error.

    ``d`` (n,) are per-issue loss differences (e.g. squared error of forecaster A minus that
    of B). Forecasts ``lead`` steps ahead issued every step overlap, so ``d`` is autocorrelated
    up to lag ``lead - 1``: the variance of its mean is the Newey-West (Bartlett) long-run
    variance with ``lead - 1`` lags (Diebold & Mariano 1995; Newey & West 1987). Large
    positive values say A loses to B by more than chance. Returns +-inf for a constant
    non-zero ``d`` and 0 for fewer than two values or a zero mean.
    """
    d = np.asarray(d, float)
    n = d.size
    if n < 2:
        return 0.0
    mu = float(d.mean())
    x = d - mu
    var = float(x @ x) / n
    for k in range(1, min(int(lead), n)):
        var += 2.0 * (1.0 - k / lead) * float(x[k:] @ x[:-k]) / n
    if var <= 1e-12 * max(mu * mu, 1e-300):
        return 0.0 if mu == 0 else float(np.copysign(np.inf, mu))
    return mu / np.sqrt(var / n)


def _default_candidates(window: int, n_lags: int) -> dict:
    return {
        "gp": GPForecaster(window, refit_every=156, fit_history_days=3 * 365.25, calibrate=False),
        "linear_ar": LinearARForecaster(n_lags),
        "ar_gp": ARGPForecaster(n_lags),
        "gradient_boosting": GradientBoostingForecaster(n_lags),
    }


class SelectForecaster:
    """The default forecaster: per lead, the candidates with the smallest recent verified errors.

    Every call runs all candidates on the history up to the issue date, verifies their
    earlier forecasts whose targets are now observed (:class:`VerifiedErrors`), and for each
    lead either returns the candidate whose last ``memory`` verified squared errors are
    smallest (``combine="select"``) or averages, with inverse-MSE weights, the candidates whose
    MSE is within ``near`` times the best one (``"stack"``, the default). Linear AR is used
    until ``min_verified`` errors exist. Nothing beyond the issue date is seen: the weights
    at every issue use only forecasts verified by then.

    The std is calibrated the same way (split-conformal): the 68.27 % quantile of the
    absolute verified errors of the selected forecasts themselves (the candidate's when the
    selector has too few of its own), so that mean +- std is a 68 % interval; drought-class
    probabilities take it as a Gaussian std.

    Parameters
    ----------
    window : int
        Samples per VCI3M window (for the GP candidate).
    candidates : dict name -> forecaster, optional
        Default: the seed's GP, linear AR, AR + GP on its residuals, gradient boosting.
    memory : int
        Verified errors per lead used for the choice and the interval (about 3 years).
    min_verified : int
    fallback : str
        Candidate used before enough errors are verified.
    n_lags : int
    combine : {"stack", "select"}
    near : float
        Stacking keeps candidates with MSE <= ``near`` x the best MSE.
    prefer : str or None
        When this candidate's recent verified MSE at a lead is the lowest, it is used alone
        (no stacking): linear AR by default, the strongest baseline, so that averaging in
        weaker candidates cannot pull the forecast below it where it leads on past data.
    gate : float or None
        With ``prefer``: another candidate (or the stack around it) replaces ``prefer`` at a
        lead only when its verified squared errors are smaller than ``prefer``'s on the same
        past issues by more than chance, i.e. the one-sided Diebold-Mariano statistic
        (:func:`diebold_mariano`, overlapping errors allowed for) exceeds ``gate`` (1.645: the
        5 % level). Lower MSE on a few years of strongly autocorrelated errors is otherwise
        mostly noise, and following it cost up to 0.005 of R^2 against linear AR at long leads
        on the weekly Kenyan series. None: no test (the lowest MSE wins).

    Attributes
    ----------
    choice_ : list of str
        Best candidate per lead at the last call.
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
        near: float = 1.25,
        prefer: str | None = "linear_ar",
        gate: float | None = 1.645,
    ):
        if combine not in ("stack", "select"):
            from skysense.errors import InputError

            raise InputError(f"combine must be 'stack' or 'select', got {combine!r}")
        self.combine = combine
        self.near = near
        self.prefer = prefer
        self.gate = gate
        self.window = window
        self.candidates = (
            candidates if candidates is not None else _default_candidates(window, n_lags)
        )
        if fallback not in self.candidates:
            from skysense.errors import InputError

            raise InputError(f"fallback {fallback!r} is not a candidate: {sorted(self.candidates)}")
        self.memory = memory
        self.min_verified = min_verified
        self.fallback = fallback
        self.verified_: dict[str, VerifiedErrors] = {}
        self.own_: VerifiedErrors | None = None
        self.choice_: list[str] = []
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
        common, ka, kb = np.intersect1d(ia, ib, return_indices=True)
        if common.size < self.min_verified:
            return False
        return diebold_mariano(eb[kb] ** 2 - ea[ka] ** 2, h) > self.gate

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        y3 = np.asarray(vci3m, float)
        if self.own_ is None or self.own_.n_leads != n_leads:
            self.own_ = VerifiedErrors(n_leads)
            self.verified_ = {k: VerifiedErrors(n_leads) for k in self.candidates}
        outs = {}
        for name, cand in self.candidates.items():
            m, s = cand.forecast(t_days, vci, vci3m, n_leads, extra)
            outs[name] = (np.asarray(m, float), np.asarray(s, float))
            self.verified_[name].update(y3)
        self.own_.update(y3)
        mean = np.empty(n_leads)
        std = np.empty(n_leads)
        self.choice_ = []
        for h in range(1, n_leads + 1):
            scores = {k: self._score(k, h) for k in self.candidates}
            best = min(scores, key=scores.get)
            if (
                self.prefer in scores
                and best != self.prefer
                and np.isfinite(scores[self.prefer])
                and not self._beats_prefer(best, h)
            ):
                best = self.prefer
            if not np.isfinite(scores[best]):
                best = self.fallback
                mean[h - 1] = outs[best][0][h - 1]
            elif self.combine == "select" or best == self.prefer:
                mean[h - 1] = outs[best][0][h - 1]
            else:
                # stack: inverse-MSE weights over the candidates close to the best one (a
                # choice among near-equals on a few years of errors is mostly noise)
                near = [k for k in scores if scores[k] <= self.near * scores[best]]
                w = np.array([1.0 / max(scores[k], 1e-12) for k in near])
                mean[h - 1] = float(np.dot(w, [outs[k][0][h - 1] for k in near]) / w.sum())
            self.choice_.append(best)
            own, _ = self.own_.recent(h, self.memory)
            cand, _ = self.verified_[best].recent(h, self.memory)
            if own.size >= self.min_verified:
                std[h - 1] = _half_width_68(own)
            elif cand.size >= self.min_verified:
                std[h - 1] = _half_width_68(cand)
            else:
                std[h - 1] = outs[best][1][h - 1]
        for name in self.candidates:
            self.verified_[name].add(outs[name][0])
        self.own_.add(mean)
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

#: The forecaster the CLI uses unless told otherwise: per-lead selection on past verified errors.
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
