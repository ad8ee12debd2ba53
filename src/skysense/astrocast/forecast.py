"""Pure Gaussian-process forecasts of vegetation series (the AstroCast kernel).

The kernel is the one of the AstroCast talk, with amplitudes::

    k(t, t') = a1 RBF(l1) + a2 RBF(l2) x ExpSineSquared(l3, period = 365.25 d) + noise

on time in days, on the series standardised by its mean and standard deviation.
:class:`SeasonalGP` is the scikit-learn model (``GaussianProcessRegressor``, hyperparameters
by maximum marginal likelihood). :class:`FastSeasonalGP` evaluates the same kernel in NumPy and
conditions it by one Cholesky factorisation with *given* hyperparameters; hindcasts refit the
hyperparameters with scikit-learn only every so often (warm-started from the last values) and
use the fast path at every forecast date.

:func:`compose_vci3m` turns a forecast of the next VCI samples into a forecast of VCI3M (the
trailing mean of ``window`` samples), anchored on the last known VCI3M, so that the part of the
three-month window that is already observed is not forecast at all.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from skysense.errors import InputError, NotFittedError

__all__ = [
    "PERIOD_DAYS",
    "KernelParams",
    "seasonal_kernel",
    "kernel_matrix",
    "SeasonalGP",
    "FastSeasonalGP",
    "fit_kernel_params",
    "fit_log_params",
    "compose_vci3m",
]

PERIOD_DAYS = 365.25

#: Bounds of the fitted hyperparameters, in :class:`KernelParams` field order (the order of
#: scikit-learn's ``theta`` for :func:`seasonal_kernel`); the period is fixed.
KERNEL_BOUNDS = (
    ("amp_trend", 1e-3, 1e2),
    ("len_trend_days", 10.0, 3000.0),
    ("amp_season", 1e-3, 1e2),
    ("len_season_days", 200.0, 2e4),
    ("len_periodic", 0.1, 10.0),
    ("noise", 1e-4, 1.0),
)


@dataclasses.dataclass(frozen=True)
class KernelParams:
    """Hyperparameters of the seasonal kernel (standardised units; lengths in days).

    Attributes
    ----------
    amp_trend : float
        Variance of the non-periodic RBF term.
    len_trend_days : float
        Its length scale.
    amp_season : float
        Variance of the quasi-periodic term.
    len_season_days : float
        Length scale of the RBF envelope of the periodic term (how fast the seasonal shape
        changes from year to year).
    len_periodic : float
        Length scale of ExpSineSquared (dimensionless, in units of the period).
    noise : float
        White-noise variance.
    period_days : float
        Period, fixed at 365.25 days.
    """

    amp_trend: float = 0.5
    len_trend_days: float = 60.0
    amp_season: float = 0.5
    len_season_days: float = 1500.0
    len_periodic: float = 1.0
    noise: float = 0.05
    period_days: float = PERIOD_DAYS

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


def seasonal_kernel(params: KernelParams | None = None, *, fixed: bool = False):
    """The scikit-learn kernel ``C RBF + C RBF x ExpSineSquared + WhiteKernel``.

    Parameters
    ----------
    params : KernelParams, optional
        Starting (or, with ``fixed``, final) hyperparameters.
    fixed : bool
        Freeze every hyperparameter (the period is always frozen).

    Returns
    -------
    sklearn.gaussian_process.kernels.Kernel
    """
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, ExpSineSquared, WhiteKernel

    p = params or KernelParams()
    b = {name: "fixed" if fixed else (lo, hi) for name, lo, hi in KERNEL_BOUNDS}
    return (
        ConstantKernel(p.amp_trend, b["amp_trend"]) * RBF(p.len_trend_days, b["len_trend_days"])
        + ConstantKernel(p.amp_season, b["amp_season"])
        * RBF(p.len_season_days, b["len_season_days"])
        * ExpSineSquared(p.len_periodic, p.period_days, b["len_periodic"], "fixed")
        + WhiteKernel(p.noise, b["noise"])
    )


def _params_from_kernel(kernel) -> KernelParams:
    k1, white = kernel.k1, kernel.k2
    trend, season = k1.k1, k1.k2
    envelope, periodic = season.k1, season.k2
    return KernelParams(
        amp_trend=float(trend.k1.constant_value),
        len_trend_days=float(trend.k2.length_scale),
        amp_season=float(envelope.k1.constant_value),
        len_season_days=float(envelope.k2.length_scale),
        len_periodic=float(periodic.length_scale),
        noise=float(white.noise_level),
        period_days=float(periodic.periodicity),
    )


def kernel_matrix(t1_days, t2_days, params: KernelParams, *, noise: bool = False) -> np.ndarray:
    """Seasonal kernel between two time vectors, in NumPy (same values as scikit-learn's).

    Parameters
    ----------
    t1_days : ndarray (n,), days
    t2_days : ndarray (m,), days
    params : KernelParams
    noise : bool
        Add the white-noise variance on the diagonal (only meaningful for t1 is t2).

    Returns
    -------
    ndarray (n, m)
    """
    d = np.subtract.outer(np.asarray(t1_days, float), np.asarray(t2_days, float))
    span = int(np.abs(d).max(initial=0.0)) if d.size else 0
    if d.size > 4 * (span + 1) and np.array_equal(d, np.round(d)):
        # Whole-day lags (dates), far fewer distinct than pairs: evaluate the kernel once per
        # lag and look it up (the same numbers; the kernel is even in the lag).
        k = _kernel_of_lag(np.arange(span + 1, dtype=float), params)[np.abs(d).astype(np.intp)]
    else:
        k = _kernel_of_lag(d, params)
    if noise:
        k = k + params.noise * np.eye(k.shape[0])
    return k


def _kernel_of_lag(d: np.ndarray, params: KernelParams) -> np.ndarray:
    """The seasonal kernel (no noise) at lags ``d`` (days), any shape."""
    k = params.amp_trend * np.exp(-0.5 * (d / params.len_trend_days) ** 2)
    env = np.exp(-0.5 * (d / params.len_season_days) ** 2)
    per = np.exp(-2.0 * (np.sin(np.pi * d / params.period_days) / params.len_periodic) ** 2)
    return k + params.amp_season * env * per


def _check_series(t_days, y, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t_days, dtype=float)
    v = np.asarray(y, dtype=float)
    if t.ndim != 1 or v.shape != t.shape:
        raise InputError(f"t_days and {name} must be 1-d of equal length, got {t.shape}, {v.shape}")
    ok = np.isfinite(t) & np.isfinite(v)
    if ok.sum() < 3:
        raise InputError(f"{name}: need at least 3 finite samples to fit a GP, got {ok.sum()}")
    t, v = t[ok], v[ok]
    if np.any(np.diff(t) <= 0):
        raise InputError("t_days must be strictly increasing (sort and de-duplicate first)")
    return t, v


class SeasonalGP:
    """scikit-learn Gaussian process with the AstroCast seasonal kernel.

    Parameters
    ----------
    params : KernelParams, optional
        Starting hyperparameters (warm start).
    optimize : bool
        Fit hyperparameters by maximum marginal likelihood (else keep ``params``).
    n_restarts_optimizer : int
        Extra random restarts of the optimiser.
    random_state : int or None
        Seeds the restarts.

    Attributes
    ----------
    gp_ : sklearn.gaussian_process.GaussianProcessRegressor
    params_ : KernelParams
        Fitted hyperparameters.
    y_mean_, y_std_ : float
        Standardisation of the training series.
    n_convergence_warnings_ : int
        scikit-learn ConvergenceWarnings of the last fit (optimiser stopped early or a
        hyperparameter at its bound), counted rather than printed.
    """

    def __init__(
        self,
        params: KernelParams | None = None,
        *,
        optimize: bool = True,
        n_restarts_optimizer: int = 0,
        random_state: int | None = 0,
    ):
        self.params = params
        self.optimize = optimize
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state

    def fit(self, t_days, y) -> SeasonalGP:
        """Fit on samples ``y`` (NaN dropped) at times ``t_days`` (strictly increasing)."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor

        t, v = _check_series(t_days, y)
        self.y_mean_ = float(v.mean())
        self.y_std_ = float(v.std()) or 1.0
        gp = GaussianProcessRegressor(
            seasonal_kernel(self.params, fixed=not self.optimize),
            optimizer="fmin_l_bfgs_b" if self.optimize else None,
            n_restarts_optimizer=self.n_restarts_optimizer,
            random_state=self.random_state,
        )
        with warnings.catch_warnings(record=True) as caught:
            # Hyperparameters at a bound are normal here (e.g. no seasonal term in VCI): count
            # them instead of printing one warning per fit; pass any other warning on.
            warnings.simplefilter("always")
            gp.fit(t[:, None], (v - self.y_mean_) / self.y_std_)
        self.n_convergence_warnings_ = 0
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                self.n_convergence_warnings_ += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.gp_ = gp
        self.params_ = _params_from_kernel(gp.kernel_)
        return self

    def predict(self, t_days, *, return_cov: bool = False):
        """Predictive mean and std (or covariance) of new *observations* at ``t_days``.

        Returns
        -------
        mean : ndarray (m,), units of y
        std : ndarray (m,) or cov : ndarray (m, m)
            Includes the white-noise variance (a new sample is noisy too).
        """
        if not hasattr(self, "gp_"):
            raise NotFittedError("SeasonalGP is not fitted; call fit first")
        tt = np.asarray(t_days, dtype=float)[:, None]
        mean, cov = self.gp_.predict(tt, return_cov=True)
        # sklearn's predictive covariance already includes WhiteKernel on the diagonal.
        mean = self.y_mean_ + self.y_std_ * mean
        cov = cov * self.y_std_**2
        if return_cov:
            return mean, cov
        return mean, np.sqrt(np.clip(np.diag(cov), 0, None))


def fit_log_params(kernel_grads, y, theta0, bounds) -> tuple[np.ndarray, int]:
    """Maximise a zero-mean GP's log marginal likelihood over log-hyperparameters.

    The objective, its gradient, the jitter (1e-10 on the diagonal) and the optimiser
    (L-BFGS-B from ``theta0`` within ``bounds``) are scikit-learn's
    ``GaussianProcessRegressor``'s, without its generic kernel objects: for the small
    matrices of a hindcast those cost several times the linear algebra.

    Parameters
    ----------
    kernel_grads : callable theta -> (K (n, n), dK (p, n, n))
        Covariance (noise included) and its derivatives with respect to ``theta``.
    y : ndarray (n,)
        Targets (already standardised).
    theta0 : ndarray (p,)
        Starting log-hyperparameters.
    bounds : ndarray (p, 2)
        Bounds on the log-hyperparameters.

    Returns
    -------
    theta : ndarray (p,)
        The optimum.
    n_warnings : int
        What scikit-learn would have warned about: the optimiser stopping early, and each
        hyperparameter within ``isclose`` of a bound.
    """
    from scipy.linalg import LinAlgError, cholesky
    from scipy.linalg.lapack import dpotri
    from scipy.optimize import minimize

    y = np.asarray(y, float)
    n = y.size
    const = 0.5 * n * np.log(2 * np.pi)

    def objective(theta):
        k, dk = kernel_grads(theta)
        k[np.diag_indices_from(k)] += 1e-10
        try:
            low = cholesky(k, lower=True, check_finite=False)
        except LinAlgError:
            return np.inf, np.zeros_like(theta)
        alpha = cho_solve((low, True), y, check_finite=False)
        inv, info = dpotri(low, lower=1)
        if info != 0:
            return np.inf, np.zeros_like(theta)
        inv = np.tril(inv) + np.tril(inv, -1).T
        lml = -0.5 * y @ alpha - np.log(np.diag(low)).sum() - const
        w = np.outer(alpha, alpha) - inv
        grad = 0.5 * np.einsum("ij,kij->k", w, dk)
        return -lml, -grad

    res = minimize(objective, np.asarray(theta0, float), method="L-BFGS-B", jac=True,
                   bounds=np.asarray(bounds, float))  # fmt: skip
    b = np.asarray(bounds, float)
    near = np.isclose(b, np.asarray(res.x)[:, None])
    return np.asarray(res.x), int(res.status != 0) + int(near.sum())


def _seasonal_grads(t_days: np.ndarray, period_days: float):
    """``theta -> (K, dK)`` of the seasonal kernel on ``t_days`` (``theta``: log of the
    :data:`KERNEL_BOUNDS` fields). The distances and the periodic term's sine are computed
    once per series, not at every likelihood evaluation."""
    d = np.subtract.outer(t_days, t_days)
    d2 = d * d
    s2 = np.sin(np.pi * d / period_days) ** 2
    eye = np.eye(t_days.size)

    def kernel_grads(theta):
        a1, l1, a2, l2, lp, noise = np.exp(theta)
        r1 = np.exp(-0.5 * d2 / l1**2)
        per = np.exp(-2.0 * s2 / lp**2)
        season = a2 * np.exp(-0.5 * d2 / l2**2) * per
        trend = a1 * r1
        k = trend + season + noise * eye
        dk = np.stack(
            [trend, trend * d2 / l1**2, season, season * d2 / l2**2,
             season * 4.0 * s2 / lp**2, noise * eye]
        )  # fmt: skip
        return k, dk

    return kernel_grads


def fit_kernel_params(t_days, y, start: KernelParams | None = None) -> tuple[KernelParams, int]:
    """Hyperparameters of the seasonal kernel by maximum marginal likelihood, in NumPy.

    The same fit as :class:`SeasonalGP` (standardised series, same bounds, start and
    optimiser; see :func:`fit_log_params`), several times faster: hindcasts refit with it.

    Parameters
    ----------
    t_days : ndarray (n,), days
        Strictly increasing (NaN samples dropped).
    y : ndarray (n,)
    start : KernelParams, optional
        Starting point (warm start); its period is kept fixed.

    Returns
    -------
    params : KernelParams
    n_warnings : int
        Convergence warnings scikit-learn would have issued (see :func:`fit_log_params`).
    """
    t, v = _check_series(t_days, y)
    p = start or KernelParams()
    z = (v - v.mean()) / (float(v.std()) or 1.0)
    names = [name for name, _, _ in KERNEL_BOUNDS]
    theta0 = np.log([getattr(p, name) for name in names])
    bounds = np.log([(lo, hi) for _, lo, hi in KERNEL_BOUNDS])
    theta, n_warn = fit_log_params(_seasonal_grads(t, p.period_days), z, theta0, bounds)
    fitted = dict(zip(names, (float(x) for x in np.exp(theta))))
    return dataclasses.replace(p, **fitted), n_warn


class FastSeasonalGP:
    """The same GP conditioned with fixed hyperparameters by one NumPy Cholesky factorisation.

    Parameters
    ----------
    params : KernelParams

    Attributes
    ----------
    t_, alpha_, chol_ : training times, weights and Cholesky factor
    y_mean_, y_std_ : float
    """

    def __init__(self, params: KernelParams):
        self.params = params

    def fit(self, t_days, y) -> FastSeasonalGP:
        """Condition on samples ``y`` at ``t_days`` (NaN dropped)."""
        t, v = _check_series(t_days, y)
        self.y_mean_ = float(v.mean())
        self.y_std_ = float(v.std()) or 1.0
        k = kernel_matrix(t, t, self.params, noise=True)
        self.chol_ = cho_factor(k + 1e-10 * np.eye(t.size), lower=True)
        self.alpha_ = cho_solve(self.chol_, (v - self.y_mean_) / self.y_std_)
        self.t_ = t
        return self

    def predict(self, t_days, *, return_cov: bool = False):
        """Predictive mean and std (or covariance) of new observations, as :class:`SeasonalGP`."""
        if not hasattr(self, "alpha_"):
            raise NotFittedError("FastSeasonalGP is not fitted; call fit first")
        tt = np.asarray(t_days, dtype=float)
        ks = kernel_matrix(tt, self.t_, self.params)
        mean = self.y_mean_ + self.y_std_ * (ks @ self.alpha_)
        v = cho_solve(self.chol_, ks.T)
        cov = kernel_matrix(tt, tt, self.params, noise=True) - ks @ v
        cov = cov * self.y_std_**2
        if return_cov:
            return mean, cov
        return mean, np.sqrt(np.clip(np.diag(cov), 0, None))


def compose_vci3m(
    vci_recent, vci3m_now: float, future_mean, future_cov, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Forecast VCI3M from a forecast of the next VCI samples, anchored on today's VCI3M.

    VCI3M is the trailing mean of ``window`` VCI samples, so
    ``VCI3M[i+h] = VCI3M[i] + (sum of samples entering - sum of samples leaving) / window``;
    samples leaving the window are known while ``h <= window``.

    Parameters
    ----------
    vci_recent : ndarray (window,), percent
        The last ``window`` known VCI samples, oldest first (NaN treated as the window mean).
    vci3m_now : float, percent
        VCI3M at the issue date.
    future_mean : ndarray (H,), percent
        Forecast of the next H VCI samples.
    future_cov : ndarray (H, H)
        Their covariance.
    window : int
        Samples per VCI3M window.

    Returns
    -------
    mean, std : ndarray (H,), percent
        Forecast of VCI3M at leads 1..H samples.
    """
    recent = np.asarray(vci_recent, dtype=float)
    if recent.size != window:
        raise InputError(f"vci_recent must hold {window} samples, got {recent.size}")
    recent = np.where(np.isfinite(recent), recent, np.nanmean(recent))
    mu = np.asarray(future_mean, dtype=float)
    h_max = mu.size
    a = np.zeros((h_max, h_max))
    known_leaving = np.zeros(h_max)
    for h in range(1, h_max + 1):
        a[h - 1, :h] += 1.0 / window
        for j in range(1, h + 1):
            m = j - window  # index of the leaving sample relative to today (0 = today)
            if m <= 0:
                known_leaving[h - 1] += recent[window - 1 + m] / window
            else:
                a[h - 1, m - 1] -= 1.0 / window
    mean = vci3m_now + a @ mu - known_leaving
    cov = a @ np.asarray(future_cov, dtype=float) @ a.T
    return mean, np.sqrt(np.clip(np.diag(cov), 0, None))
