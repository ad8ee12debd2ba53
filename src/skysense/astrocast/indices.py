"""Pure vegetation indices: VCI from NDVI without future data, VCI3M and NDMA drought classes.

The Vegetation Condition Index of a sample is ``100 (NDVI - min) / (max - min)`` where ``min``
and ``max`` are the extremes of NDVI for the same pixel and the same period of the year (the
same dekad, week or month), taken over the history *available at that sample's date* (this and
earlier years, never later ones). Operational products recompute the extremes over the whole
archive, which leaks later years into early VCI values; hindcasts built on such VCI are flattered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.errors import InputError

__all__ = [
    "add_class_probabilities",
    "DROUGHT_CLASSES",
    "DROUGHT_THRESHOLDS",
    "period_of_year",
    "vci",
    "vci3m",
    "drought_class",
    "class_probabilities",
]

#: NDMA class names from driest to wettest.
DROUGHT_CLASSES = ("extreme", "severe", "moderate", "normal", "above_normal")
#: Upper VCI3M bounds of the first four classes (the last class is VCI3M >= 50).
DROUGHT_THRESHOLDS = (10.0, 20.0, 35.0, 50.0)


def period_of_year(dates, kind: str = "dekad") -> np.ndarray:
    """Index of the period of the year each date falls in.

    Parameters
    ----------
    dates : array-like (n,) of datetime64 or anything ``pandas.to_datetime`` accepts
    kind : {"dekad", "week", "month", "semimonth"}
        ``dekad``: 0..35 (days 1-10, 11-20, 21-end of each month); ``week``: 0..52 by day of
        year; ``month``: 0..11; ``semimonth``: 0..23.

    Returns
    -------
    ndarray (n,), int64
    """
    d = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    month0 = d.month.to_numpy() - 1
    day = d.day.to_numpy()
    if kind == "dekad":
        return (month0 * 3 + np.minimum((day - 1) // 10, 2)).astype(np.int64)
    if kind == "week":
        return np.minimum((d.day_of_year.to_numpy() - 1) // 7, 52).astype(np.int64)
    if kind == "month":
        return month0.astype(np.int64)
    if kind == "semimonth":
        return (month0 * 2 + (day > 15)).astype(np.int64)
    raise InputError(f"unknown period kind {kind!r}; use dekad, week, month or semimonth")


def vci(ndvi, period, *, min_years: int = 1) -> np.ndarray:
    """VCI with per-period extremes from the history up to each sample (no future data).

    Parameters
    ----------
    ndvi : array-like (n,), NDVI in [-1, 1]; NaN = missing (cloud, gap)
        Samples in time order.
    period : array-like (n,), int
        Period of the year of each sample (see :func:`period_of_year`).
    min_years : int
        Number of earlier-or-same samples of the same period needed before a VCI is given
        (1 means the first year gets VCI only where max > min, i.e. from the second
        sample of each period on); earlier samples give NaN.

    Returns
    -------
    ndarray (n,), percent
        NaN where NDVI is missing, the period has fewer than ``min_years`` + 1 samples so far,
        or max == min.

    Notes
    -----
    Sample ``i`` uses min/max over samples ``j <= i`` with ``period[j] == period[i]``: a
    running (expanding) extreme per period, so changing later values never changes earlier VCI.
    """
    x = np.asarray(ndvi, dtype=float)
    p = np.asarray(period)
    if x.ndim != 1 or p.shape != x.shape:
        raise InputError(f"ndvi and period must be 1-d of equal length, got {x.shape}, {p.shape}")
    out = np.full(x.shape, np.nan)
    lo: dict = {}
    hi: dict = {}
    count: dict = {}
    for i in range(x.size):
        v = x[i]
        if not np.isfinite(v):
            continue
        k = p[i]
        lo[k] = min(lo.get(k, v), v)
        hi[k] = max(hi.get(k, v), v)
        count[k] = count.get(k, 0) + 1
        span = hi[k] - lo[k]
        if count[k] > min_years and span > 0:
            out[i] = 100.0 * (v - lo[k]) / span
    return out


def vci3m(vci_values, window: int, *, min_periods: int | None = None) -> np.ndarray:
    """Three-month mean VCI: trailing mean over ``window`` samples (this one and earlier).

    Parameters
    ----------
    vci_values : array-like (n,), percent; NaN = missing
    window : int
        Samples per three months: 9 for dekads, 12 or 13 for weeks, 3 for months.
    min_periods : int, optional
        Valid samples needed in the window (default: ``window // 2 + 1``).

    Returns
    -------
    ndarray (n,), percent
    """
    if window < 1:
        raise InputError(f"window must be >= 1, got {window}")
    mp = window // 2 + 1 if min_periods is None else min_periods
    s = pd.Series(np.asarray(vci_values, dtype=float))
    return s.rolling(window, min_periods=mp).mean().to_numpy()


def drought_class(vci3m_values) -> np.ndarray:
    """NDMA drought class index 0..4 (see :data:`DROUGHT_CLASSES`); -1 where input is NaN.

    Parameters
    ----------
    vci3m_values : array-like, percent

    Returns
    -------
    ndarray of int8, same shape
    """
    v = np.asarray(vci3m_values, dtype=float)
    cls = np.searchsorted(np.asarray(DROUGHT_THRESHOLDS), v, side="right").astype(np.int8)
    cls[~np.isfinite(v)] = -1
    return cls


def class_probabilities(mean, std) -> np.ndarray:
    """Probability of each NDMA class for a Gaussian forecast of VCI3M.

    Parameters
    ----------
    mean, std : array-like (...), percent

    Returns
    -------
    ndarray (..., 5)
        Columns in the order of :data:`DROUGHT_CLASSES`; rows sum to 1.
    """
    from scipy.special import ndtr

    m = np.asarray(mean, dtype=float)[..., None]
    s = np.maximum(np.asarray(std, dtype=float), 1e-9)[..., None]
    edges = np.array((-np.inf, *DROUGHT_THRESHOLDS, np.inf))
    cdf = ndtr((edges - m) / s)
    return np.diff(cdf, axis=-1)


def add_class_probabilities(frame):
    """``frame`` with ``p_<class>`` per NDMA class and ``p_drought`` (the three drought
    classes) from its Gaussian forecast columns ``mean`` and ``std`` (percent VCI3M)."""
    p = class_probabilities(frame["mean"].to_numpy(), frame["std"].to_numpy())
    out = frame.copy()
    for k, name in enumerate(DROUGHT_CLASSES):
        out[f"p_{name}"] = p[:, k]
    out["p_drought"] = p[:, :3].sum(1)
    return out
