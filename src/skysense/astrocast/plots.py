"""Figures of the AstroCast talk (matplotlib, Agg; each function writes one file atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path

__all__ = ["plot_forecast", "plot_skill", "plot_class_map", "plot_granger_distance"]


def _save(fig, path):
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _fig():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(8, 4))


def plot_forecast(dates, vci3m, forecast_dates, mean, std, path, *, title=""):
    """Series with forecast mean and 1/2-sigma bands, NDMA thresholds shaded."""
    fig, ax = _fig()
    ax.plot(dates, vci3m, "k-", lw=1, label="VCI3M")
    ax.plot(forecast_dates, mean, "C0-", label="forecast mean")
    for k, a in ((2, 0.15), (1, 0.3)):
        ax.fill_between(forecast_dates, mean - k * std, mean + k * std, color="C0", alpha=a)
    for thr in (10, 20, 35, 50):
        ax.axhline(thr, color="grey", lw=0.5, ls=":")
    ax.set_ylabel("VCI3M (%)")
    ax.set_title(title)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_skill(scores: pd.DataFrame, path, *, metric="r2", model="model", lead="lead_days"):
    """Skill (``metric``) against lead time, one line per model."""
    fig, ax = _fig()
    for name, g in scores.groupby(model):
        ax.plot(g[lead], g[metric], "o-", label=name)
    ax.set_xlabel("lead time (days)")
    ax.set_ylabel(metric)
    ax.legend()
    return _save(fig, path)


def plot_class_map(
    shapes_path, probabilities: pd.DataFrame, path, *, column="p_drought", name_field="Name"
):
    """Map of a drought-class probability per region (boundary file joined on region name)."""
    import geopandas as gpd

    shp = gpd.read_file(shapes_path)
    shp["_key"] = shp[name_field].astype(str).str.strip().str.lower()
    p = probabilities.assign(_key=probabilities["region"].astype(str).str.strip().str.lower())
    merged = shp.merge(p[["_key", column]], on="_key", how="left")
    fig, ax = _fig()
    merged.plot(
        column=column,
        ax=ax,
        legend=True,
        vmin=0,
        vmax=1,
        cmap="OrRd",
        missing_kwds={"color": "lightgrey"},
    )
    ax.set_axis_off()
    ax.set_title(column)
    return _save(fig, path)


def plot_granger_distance(pairs: pd.DataFrame, distance, path):
    """Granger strength against predictor-predicted distance; significant pairs highlighted."""
    fig, ax = _fig()
    d = np.asarray(distance)
    sig = pairs["significant"].to_numpy(bool)
    ax.scatter(d[~sig], pairs["strength"][~sig], s=6, c="grey", label="not significant")
    ax.scatter(d[sig], pairs["strength"][sig], s=10, c="C3", label="significant (FDR)")
    ax.set_xlabel("distance")
    ax.set_ylabel("Granger strength log(SSR_r/SSR_f)")
    ax.legend()
    return _save(fig, path)
