"""Pure honest expanding-window hindcasts.

For every issue sample ``i`` the forecaster sees the arrays cut at ``i`` (inclusive) and nothing
else; issue dates are visited in time order so any state a forecaster keeps (hyperparameters,
fitted forests) comes from earlier data only. Tests perturb later values and check that earlier
forecasts do not change.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from skysense.astrocast.indices import DROUGHT_CLASSES, class_probabilities
from skysense.errors import InputError

__all__ = ["hindcast"]


def hindcast(
    t_days,
    vci,
    vci3m,
    forecaster,
    *,
    n_leads: int,
    start: int,
    stop: int | None = None,
    extra=None,
    observed=None,
    with_probabilities: bool = False,
) -> pd.DataFrame:
    """Issue a forecast at every sample from ``start`` to ``stop`` using only data up to it.

    Parameters
    ----------
    t_days : ndarray (n,), days
        Sample times, strictly increasing.
    vci, vci3m : ndarray (n,), percent
        The series (NaN = missing).
    forecaster : object with ``forecast(t_days, vci, vci3m, n_leads, extra=None)``
        See :mod:`skysense.astrocast.baselines`.
    n_leads : int
        Leads 1..n_leads samples.
    start : int
        First issue index (needs enough history for the forecaster).
    stop : int, optional
        Last issue index + 1 (default n).
    extra : ndarray (n, k), optional
        Other series on the same dates (spatial option); cut at the issue date as well.
    observed : ndarray (n,), optional
        Verifying VCI3M (default ``vci3m``); never passed to the forecaster beyond the issue.
    with_probabilities : bool
        Add ``p_<class>`` columns (NDMA classes, Gaussian forecast).

    Returns
    -------
    DataFrame
        One row per (issue, lead): ``issue_index, lead, target_index, t_issue_days,
        t_target_days, mean, std, observed`` (NaN when the target lies beyond the series),
        ``fit_seconds`` (time of that issue's call, on every row of it); for a forecaster
        with ``last_candidates_`` (:class:`~skysense.astrocast.baselines.SelectForecaster`)
        also each candidate's rows, marked in a ``candidate`` column ("" = the combination).
    """
    t = np.asarray(t_days, float)
    v = np.asarray(vci, float)
    y3 = np.asarray(vci3m, float)
    n = t.size
    if v.shape != (n,) or y3.shape != (n,):
        raise InputError("t_days, vci and vci3m must have the same length")
    if n_leads < 1:
        raise InputError(f"n_leads must be >= 1, got {n_leads}")
    stop = n if stop is None else min(stop, n)
    if not 1 <= start < stop:
        raise InputError(f"need 1 <= start < stop <= {n}, got start={start}, stop={stop}")
    obs = y3 if observed is None else np.asarray(observed, float)
    ex = None if extra is None else np.asarray(extra, float).reshape(n, -1)
    leads = np.arange(1, n_leads + 1)
    # Columns are collected as arrays and framed once at the end: a DataFrame per issue cost
    # more than the forecasts of the fast models.
    blocks: list[tuple[int, np.ndarray, np.ndarray, float, str]] = []
    any_candidates = False
    for i in range(start, stop):
        t0 = time.perf_counter()
        mean, std = forecaster.forecast(
            t[: i + 1], v[: i + 1], y3[: i + 1], n_leads, None if ex is None else ex[: i + 1]
        )
        dt = time.perf_counter() - t0
        blocks.append((i, np.asarray(mean, float), np.asarray(std, float), dt, ""))
        # A combining forecaster (SelectForecaster) also reports its candidates' forecasts of
        # the same call: hindcasts score them side by side without running them twice.
        for name, (cm, cs) in (getattr(forecaster, "last_candidates_", None) or {}).items():
            blocks.append((i, np.asarray(cm, float), np.asarray(cs, float), dt, name))
            any_candidates = True
    issue = np.repeat([b[0] for b in blocks], n_leads)
    target = issue + np.tile(leads, len(blocks))
    inside = target < n
    t_target = np.full(target.size, np.nan)
    t_target[inside] = t[target[inside]]
    o = np.full(target.size, np.nan)
    o[inside] = obs[target[inside]]
    out = pd.DataFrame(
        {
            "issue_index": issue,
            "lead": np.tile(leads, len(blocks)),
            "target_index": target,
            "t_issue_days": t[issue],
            "t_target_days": t_target,
            "mean": np.concatenate([b[1] for b in blocks]),
            "std": np.concatenate([b[2] for b in blocks]),
            "observed": o,
            "fit_seconds": np.repeat([b[3] for b in blocks], n_leads),
        }
    )
    if any_candidates:
        out["candidate"] = np.repeat([b[4] for b in blocks], n_leads)
    if with_probabilities:
        p = class_probabilities(out["mean"].to_numpy(), out["std"].to_numpy())
        for k, name in enumerate(DROUGHT_CLASSES):
            out[f"p_{name}"] = p[:, k]
    return out
