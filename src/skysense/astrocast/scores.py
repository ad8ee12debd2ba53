"""Pure forecast scores by lead time: R^2, RMSE, drought-alert hit and false-alarm rates."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "r2_score",
    "rmse",
    "alert_rates",
    "score_by_lead",
    "hindcast_scores",
    "describe_hindcast",
    "describe_forecast",
]

#: NDMA alert threshold on VCI3M (moderate drought or worse), percent.
ALERT_VCI3M = 35.0


def r2_score(observed, predicted) -> float:
    """Coefficient of determination ``1 - SSE / SST`` (pooled; NaN pairs dropped)."""
    o = np.asarray(observed, float)
    p = np.asarray(predicted, float)
    ok = np.isfinite(o) & np.isfinite(p)
    o, p = o[ok], p[ok]
    if o.size < 2:
        return float("nan")
    return float(1.0 - np.sum((o - p) ** 2) / np.sum((o - o.mean()) ** 2))


def rmse(observed, predicted) -> float:
    """Root-mean-square error (NaN pairs dropped), in the units of the data."""
    o = np.asarray(observed, float)
    p = np.asarray(predicted, float)
    ok = np.isfinite(o) & np.isfinite(p)
    return float(np.sqrt(np.mean((o[ok] - p[ok]) ** 2))) if ok.any() else float("nan")


def alert_rates(observed, predicted, threshold: float = ALERT_VCI3M) -> tuple[float, float]:
    """Drought-alert hit rate and false-alarm rate at ``VCI3M < threshold``.

    Returns
    -------
    hit_rate : float
        Fraction of observed drought samples that were forecast as drought (POD).
    false_alarm_rate : float
        Fraction of observed non-drought samples forecast as drought (probability of false
        detection, the definition that reproduces the AstroCast figures).
    """
    o = np.asarray(observed, float)
    p = np.asarray(predicted, float)
    ok = np.isfinite(o) & np.isfinite(p)
    obs, fc = o[ok] < threshold, p[ok] < threshold
    hit = (obs & fc).sum() / obs.sum() if obs.any() else float("nan")
    fa = (~obs & fc).sum() / (~obs).sum() if (~obs).any() else float("nan")
    return float(hit), float(fa)


def score_by_lead(
    frame: pd.DataFrame,
    *,
    lead: str = "lead",
    observed: str = "observed",
    predicted: str = "mean",
    by: str | list[str] | None = None,
    threshold: float = ALERT_VCI3M,
) -> pd.DataFrame:
    """Scores per lead (and per ``by`` groups, e.g. the model) over pooled rows.

    Returns
    -------
    DataFrame
        Columns ``[by...], lead, n, r2, rmse, hit_rate, false_alarm_rate``.
    """
    keys = ([by] if isinstance(by, str) else list(by or [])) + [lead]
    out = []
    for key, g in frame.groupby(keys, sort=True):
        o, p = g[observed].to_numpy(float), g[predicted].to_numpy(float)
        ok = np.isfinite(o) & np.isfinite(p)
        hit, fa = alert_rates(o, p, threshold)
        key = key if isinstance(key, tuple) else (key,)
        out.append(
            dict(zip(keys, key))
            | {
                "n": int(ok.sum()),
                "r2": r2_score(o, p),
                "rmse": rmse(o, p),
                "hit_rate": hit,
                "false_alarm_rate": fa,
            }
        )
    return pd.DataFrame(out)


def hindcast_scores(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Scores per model and lead of hindcasts, over the rows with an observation.

    Parameters
    ----------
    forecasts : DataFrame - from :func:`skysense.astrocast.engine.hindcast_series`
        (``model``, ``lead``, ``observed``, ``mean``)

    Returns
    -------
    DataFrame - :func:`score_by_lead` by ``model``
    """
    return score_by_lead(forecasts.dropna(subset=["observed"]), by="model")


def describe_hindcast(scores: pd.DataFrame, timing: pd.DataFrame) -> str:
    """The scores table and each model's mean time per forecast, as text.

    Parameters
    ----------
    scores : DataFrame - from :func:`hindcast_scores`
    timing : DataFrame - ``model``, ``seconds_per_fit`` (s), from
        :func:`skysense.astrocast.engine.hindcast_series`
    """
    seconds = timing.groupby("model").seconds_per_fit.mean().rename("seconds per forecast")
    return scores.to_string(index=False, float_format="%.3f") + "\n" + seconds.to_string()


def describe_forecast(forecasts: pd.DataFrame) -> str:
    """The mean fit time per series of forecasts, e.g. ``GP fit 0.42 s per series (mean of 3)``.

    Parameters
    ----------
    forecasts : DataFrame - ``region``, ``fit_seconds`` (s, on every row of a series), from
        :func:`skysense.astrocast.engine.forecast_series`
    """
    per_series = forecasts.groupby("region").fit_seconds.first()
    return f"GP fit {per_series.mean():.2f} s per series (mean of {len(per_series)})"
