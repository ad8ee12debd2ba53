import numpy as np
import pytest

from skysense.astrocast.forecast import (
    FastSeasonalGP,
    KernelParams,
    SeasonalGP,
    compose_vci3m,
    fit_kernel_params,
    kernel_matrix,
    seasonal_kernel,
)
from skysense.errors import InputError, NotFittedError


def test_numpy_kernel_matches_sklearn():
    p = KernelParams(0.3, 45.0, 0.8, 900.0, 0.7, 0.02)
    t = np.linspace(0, 2000, 40)
    np.testing.assert_allclose(
        kernel_matrix(t, t, p, noise=True), seasonal_kernel(p)(t[:, None]), rtol=1e-10
    )


def test_numpy_kernel_on_whole_days_matches_sklearn():
    """Dates a whole number of days apart take the per-lag table path: same values."""
    p = KernelParams(0.3, 45.0, 0.8, 900.0, 0.7, 0.02)
    rng = np.random.default_rng(2)
    t = np.sort(rng.choice(np.arange(3000, 4100), 120, replace=False)).astype(float)
    np.testing.assert_allclose(
        kernel_matrix(t, t, p, noise=True), seasonal_kernel(p)(t[:, None]), rtol=1e-10
    )
    t2 = t[-1] + 7.0 * np.arange(1, 10)
    np.testing.assert_allclose(
        kernel_matrix(t2, t, p), seasonal_kernel(p)(t2[:, None], t[:, None]), rtol=1e-10
    )


def test_gp_recovers_seasonal_signal_within_uncertainty():
    rng = np.random.default_rng(3)
    t = np.arange(0, 6 * 365.25, 10.0)
    truth = 0.5 + 0.2 * np.sin(2 * np.pi * t / 365.25) + 0.05 * np.cos(4 * np.pi * t / 365.25)
    sigma = 0.03
    train = t < 5 * 365.25
    y = truth + sigma * rng.normal(size=t.size)
    gp = SeasonalGP(random_state=0).fit(t[train], y[train])
    assert gp.params_.period_days == 365.25
    mean, std = gp.predict(t[~train])
    # the predictive band of new observations covers held-out noisy samples ~95% of the time
    z = np.abs(y[~train] - mean) / std
    assert 0.85 <= np.mean(z < 2) <= 1.0
    assert np.sqrt(np.mean((mean - truth[~train]) ** 2)) < 2 * sigma
    # the fast path with the same hyperparameters gives the same forecast
    fm, fs = FastSeasonalGP(gp.params_).fit(t[train], y[train]).predict(t[~train])
    np.testing.assert_allclose(fm, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fs, std, rtol=1e-3)


def test_compose_vci3m_matches_rolling_mean():
    rng = np.random.default_rng(0)
    v = rng.uniform(0, 100, 30)
    w = 9
    i = 15
    roll = np.convolve(v, np.ones(w) / w, "valid")  # roll[k] = mean v[k:k+w]
    now = roll[i - w + 1]
    mean, std = compose_vci3m(v[i - w + 1 : i + 1], now, v[i + 1 : i + 13], np.zeros((12, 12)), w)
    np.testing.assert_allclose(mean, roll[i - w + 2 : i - w + 14])
    assert np.all(std == 0)
    _, std = compose_vci3m(v[i - w + 1 : i + 1], now, v[i + 1 : i + 13], np.eye(12), w)
    assert std[0] == pytest.approx(1 / 9) and std[8] == pytest.approx(3 / 9)


def test_gp_errors():
    with pytest.raises(NotFittedError):
        FastSeasonalGP(KernelParams()).predict([1.0])
    with pytest.raises(InputError, match="increasing"):
        FastSeasonalGP(KernelParams()).fit([0, 2, 1, 3], [1, 2, 3, 4])


def test_numpy_hyperparameter_fit_reaches_scikit_learns_optimum():
    """fit_kernel_params maximises the same marginal likelihood as scikit-learn: evaluated by
    scikit-learn, its optimum is as high as scikit-learn's own, from the same start."""
    rng = np.random.default_rng(8)
    t = np.arange(0, 3 * 365.25, 14.0)
    y = 50 + 15 * np.sin(2 * np.pi * t / 365.25) + np.cumsum(rng.normal(0, 2, t.size))
    start = KernelParams(0.3, 80.0, 0.6, 1000.0, 1.2, 0.05)
    ref = SeasonalGP(start).fit(t, y)
    params, _ = fit_kernel_params(t, y, start)
    lml = ref.gp_.log_marginal_likelihood
    ours = lml(seasonal_kernel(params).theta)
    assert ours >= lml(ref.gp_.kernel_.theta) - 1e-6
    assert ours > lml(seasonal_kernel(start).theta) + 1.0  # it did move uphill
    assert params.period_days == start.period_days
