"""Pure Granger causality between vegetation series (pixels or regions).

Pipeline: remove the climatology (mean per period of the year) and the linear trend; test
stationarity (ADF, statsmodels); choose the lag order by AIC or BIC (statsmodels VAR); pairwise
F-tests of "x's past helps predict y beyond y's past" with Benjamini-Hochberg false-discovery
control over all ordered pairs. The F statistic is computed by least squares here (vectorised
over pairs) and matches ``statsmodels.tsa.stattools.grangercausalitytests``' ``ssr_ftest``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from skysense.errors import InputError

__all__ = [
    "deseasonalize",
    "adf_pvalues",
    "select_lag",
    "granger_f",
    "granger_pairs",
    "strength_vs_distance",
    "oos_improvement",
    "pc_vs_mean",
    "granger_table",
    "describe_granger",
]


def deseasonalize(values, period, t_days) -> np.ndarray:
    """Anomalies: subtract the period-of-year means and a linear trend (joint least squares).

    Parameters
    ----------
    values : ndarray (n,) or (n, k)
    period : ndarray (n,), int; period of the year of each sample
    t_days : ndarray (n,), days

    Returns
    -------
    ndarray, same shape; NaN where input is NaN
    """
    x = np.asarray(values, float)
    one = x.ndim == 1
    x = x.reshape(len(x), -1).copy()
    p = np.asarray(period)
    t = np.asarray(t_days, float)
    # Climatology and trend fitted jointly (period dummies + slope), so neither absorbs the other.
    levels = np.unique(p)
    design = np.column_stack([(p == k).astype(float) for k in levels] + [t - t.mean()])
    for j in range(x.shape[1]):
        ok = np.isfinite(x[:, j])
        if ok.sum() > design.shape[1]:
            beta = np.linalg.lstsq(design[ok], x[ok, j], rcond=None)[0]
            x[:, j] -= design @ beta
    return x[:, 0] if one else x


def adf_pvalues(anomalies) -> np.ndarray:
    """ADF unit-root test p-value of each column (small p = stationary)."""
    from statsmodels.tsa.stattools import adfuller

    a = np.asarray(anomalies, float).reshape(len(anomalies), -1)
    return np.array(
        [adfuller(c[np.isfinite(c)], autolag="AIC", result_object=False)[1] for c in a.T]
    )


def select_lag(x, y, max_lag: int = 6, ic: str = "bic") -> int:
    """Lag order of the bivariate VAR of (y, x) minimising ``ic`` (``aic`` or ``bic``)."""
    from statsmodels.tsa.api import VAR

    if ic not in ("aic", "bic"):
        raise InputError(f"ic must be 'aic' or 'bic', got {ic!r}")
    data = np.column_stack([y, x])
    data = data[np.all(np.isfinite(data), axis=1)]
    sel = VAR(data).select_order(max_lag)
    return max(1, int(getattr(sel, ic)))


def _lags(z: np.ndarray, lag: int) -> np.ndarray:
    n = len(z)
    return np.column_stack([z[lag - j - 1 : n - j - 1] for j in range(lag)])


def granger_f(cause, effect, lag: int) -> tuple[float, float, float]:
    """F-test that ``lag`` lags of ``cause`` improve an AR(``lag``) model of ``effect``.

    Returns
    -------
    F : float
    p_value : float
    strength : float
        ``log(SSR_restricted / SSR_full)``: the log reduction of residual variance.
    """
    x = np.asarray(cause, float)
    y = np.asarray(effect, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():  # Granger needs contiguous samples: fill short gaps linearly
        idx = np.arange(len(x))
        x = np.interp(idx, idx[np.isfinite(x)], x[np.isfinite(x)])
        y = np.interp(idx, idx[np.isfinite(y)], y[np.isfinite(y)])
    target = y[lag:]
    n = target.size
    ones = np.ones((n, 1))
    xr = np.hstack([ones, _lags(y, lag)])
    xf = np.hstack([xr, _lags(x, lag)])
    ssr_r = np.sum((target - xr @ np.linalg.lstsq(xr, target, rcond=None)[0]) ** 2)
    ssr_f = np.sum((target - xf @ np.linalg.lstsq(xf, target, rcond=None)[0]) ** 2)
    dof = n - xf.shape[1]
    f = ((ssr_r - ssr_f) / lag) / (ssr_f / dof)
    return float(f), float(stats.f.sf(f, lag, dof)), float(np.log(ssr_r / ssr_f))


def granger_pairs(
    anomalies,
    names=None,
    *,
    lag: int | None = None,
    max_lag: int = 6,
    ic: str = "bic",
    fdr: float = 0.05,
) -> pd.DataFrame:
    """Granger tests over all ordered pairs with Benjamini-Hochberg FDR control.

    Parameters
    ----------
    anomalies : ndarray (n_time, k)
        Deseasonalised, detrended series (see :func:`deseasonalize`).
    names : sequence of k str, optional
    lag : int, optional
        Fixed lag; default: chosen per pair by ``ic`` up to ``max_lag``.
    fdr : float
        False-discovery rate for the ``significant`` column.

    Returns
    -------
    DataFrame
        ``source, target, lag, F, p_value, q_value, significant, strength``.
    """
    from statsmodels.stats.multitest import multipletests

    a = np.asarray(anomalies, float)
    if a.ndim != 2 or a.shape[1] < 2:
        raise InputError("anomalies must be (n_time, k) with k >= 2 series")
    k = a.shape[1]
    names = [str(i) for i in range(k)] if names is None else [str(n) for n in names]
    rows = []
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            p_lag = lag or select_lag(a[:, i], a[:, j], max_lag, ic)
            f, p, s = granger_f(a[:, i], a[:, j], p_lag)
            rows.append((names[i], names[j], p_lag, f, p, s))
    out = pd.DataFrame(rows, columns=["source", "target", "lag", "F", "p_value", "strength"])
    rej, q, _, _ = multipletests(out["p_value"], alpha=fdr, method="fdr_bh")
    out["q_value"] = q
    out["significant"] = rej
    return out


def strength_vs_distance(pairs: pd.DataFrame, coords: dict, bins=None) -> pd.DataFrame:
    """Granger strength and fraction significant in bins of predictor-predicted distance.

    Parameters
    ----------
    pairs : DataFrame from :func:`granger_pairs`
    coords : dict name -> (x, y); distances are Euclidean in those units
    bins : sequence of edges, optional (default: 6 quantile bins)

    Returns
    -------
    DataFrame ``distance_lo, distance_hi, n_pairs, median_strength, fraction_significant``
    """
    d = np.array(
        [
            np.hypot(*(np.subtract(coords[s], coords[t])))
            for s, t in zip(pairs["source"], pairs["target"])
        ]
    )
    edges = np.unique(np.quantile(d, np.linspace(0, 1, 7))) if bins is None else np.asarray(bins)
    which = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        m = which == b
        rows.append(
            {
                "distance_lo": edges[b],
                "distance_hi": edges[b + 1],
                "n_pairs": int(m.sum()),
                "median_strength": float(np.median(pairs["strength"][m])) if m.any() else np.nan,
                "fraction_significant": float(pairs["significant"][m].mean())
                if m.any()
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _oos_mse(xtr, ytr, xte, yte, model, random_state):
    if model == "linear":
        z = np.hstack([np.ones((len(xtr), 1)), xtr])
        b = np.linalg.lstsq(z, ytr, rcond=None)[0]
        pred = np.hstack([np.ones((len(xte), 1)), xte]) @ b
    else:
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(100, min_samples_leaf=5, random_state=random_state, n_jobs=1)
        pred = rf.fit(xtr, ytr).predict(xte)
    return float(np.mean((yte - pred) ** 2))


def oos_improvement(
    cause,
    effect,
    lag: int,
    *,
    model: str = "linear",
    train_fraction: float = 0.7,
    random_state: int = 0,
) -> float:
    """Out-of-sample fractional MSE reduction from adding ``cause``'s lags (time-ordered split).

    Returns
    -------
    float
        ``1 - MSE(with cause) / MSE(own lags only)``; > 0 means the other series helps.
    """
    if model not in ("linear", "random_forest"):
        raise InputError(f"model must be 'linear' or 'random_forest', got {model!r}")
    x = np.asarray(cause, float)
    y = np.asarray(effect, float)
    target = y[lag:]
    own = _lags(y, lag)
    both = np.hstack([own, _lags(x, lag)])
    cut = int(train_fraction * len(target))
    m0 = _oos_mse(own[:cut], target[:cut], own[cut:], target[cut:], model, random_state)
    m1 = _oos_mse(both[:cut], target[:cut], both[cut:], target[cut:], model, random_state)
    return 1.0 - m1 / m0


def pc_vs_mean(anomalies, target: int, lag: int = 2, *, train_fraction: float = 0.7) -> dict:
    """Forecast one series from its own lags plus either the first principal component of the
    others or their mean; returns out-of-sample MSE of own-only, +PC1 and +mean models.

    The PCA is fitted on the training part only (no later data).
    """
    a = np.asarray(anomalies, float)
    y = a[:, target]
    others = np.delete(a, target, axis=1)
    cut = int(train_fraction * len(y))
    mu = others[:cut].mean(0)
    _, _, vt = np.linalg.svd(others[:cut] - mu, full_matrices=False)
    pc1 = (others - mu) @ vt[0]
    mean = others.mean(1)
    out = {}
    tgt = y[lag:]
    c = cut - lag
    own = _lags(y, lag)
    out["own_only"] = _oos_mse(own[:c], tgt[:c], own[c:], tgt[c:], "linear", 0)
    for label, z in (("pc1", pc1), ("regional_mean", mean)):
        xx = np.hstack([own, _lags(z, lag)])
        out[label] = _oos_mse(xx[:c], tgt[:c], xx[c:], tgt[c:], "linear", 0)
    return out


def granger_table(
    series: dict, *, max_lag: int = 6, ic: str = "bic", fdr: float = 0.05, source=None
) -> tuple[pd.DataFrame, list[str]]:
    """Pairwise Granger causality between prepared regions on their common dates.

    VCI is aligned on the dates all regions share (gaps of up to 3 samples interpolated),
    deseasonalised and detrended (:func:`deseasonalize`), then tested pair by pair
    (:func:`granger_pairs`).

    Parameters
    ----------
    series : dict region -> RegionSeries
    max_lag, ic, fdr
        As :func:`granger_pairs`.

    Returns
    -------
    pairs : DataFrame
        :func:`granger_pairs` rows.
    nonstationary : list of str
        Regions whose anomalies an ADF test does not call stationary (p > 0.05).

    Raises
    ------
    InputError
        Fewer than 50 common dates.
    """
    from skysense.astrocast.indices import period_of_year

    wide = pd.DataFrame({r: pd.Series(s.vci, index=s.dates) for r, s in series.items()})
    wide = wide.interpolate(limit=3).dropna()
    if len(wide) < 50:
        raise InputError(f"only {len(wide)} common dates across regions; need >= 50", path=source)
    kind = next(iter(series.values())).period_kind
    t = ((wide.index - pd.Timestamp("2001-01-01")) / pd.Timedelta(days=1)).to_numpy(float)
    an = deseasonalize(wide.to_numpy(), period_of_year(wide.index, kind), t)
    nonstat = [c for c, p in zip(wide.columns, adf_pvalues(an)) if p > 0.05]
    res = granger_pairs(an, list(wide.columns), max_lag=max_lag, ic=ic, fdr=fdr)
    return res, nonstat


def describe_granger(pairs: pd.DataFrame, fdr: float) -> str:
    """How many ordered pairs of :func:`granger_table` are significant at false discovery rate
    ``fdr``, e.g. ``3 of 12 ordered pairs significant at FDR 0.05``.

    Parameters
    ----------
    pairs : DataFrame - with the boolean ``significant`` column of :func:`granger_pairs`
    fdr : float - the rate the test controlled
    """
    return f"{int(pairs.significant.sum())} of {len(pairs)} ordered pairs significant at FDR {fdr}"
