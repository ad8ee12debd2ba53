"""Pure: one region's table -> the arrays forecasters take (times, VCI, VCI3M)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from skysense.astrocast.indices import DROUGHT_CLASSES, drought_class, period_of_year, vci, vci3m
from skysense.errors import InputError

__all__ = ["RegionSeries", "infer_sampling", "region_series", "vci_table"]

_EPOCH = pd.Timestamp("2001-01-01")


@dataclasses.dataclass
class RegionSeries:
    """Arrays of one region, time-ordered.

    Attributes
    ----------
    dates : DatetimeIndex (n,)
    t_days : ndarray (n,), days since 2001-01-01
    vci, vci3m : ndarray (n,), percent
    period_kind : str ("dekad", "week", "semimonth", "month")
    window : int, samples per VCI3M window
    source : str, "stored" (VCI given) or "ndvi" (VCI computed here without future data)
    """

    dates: pd.DatetimeIndex
    t_days: np.ndarray
    vci: np.ndarray
    vci3m: np.ndarray
    period_kind: str
    window: int
    source: str


def infer_sampling(dates) -> tuple[str, int]:
    """Period kind and VCI3M window (samples in ~3 months) from the median spacing."""
    d = pd.DatetimeIndex(dates)
    if len(d) < 3:
        raise InputError("need at least 3 dates to infer the sampling")
    step = float(np.median(np.diff(d.asi8)) / 86400e9)
    if step <= 8.5:
        return "week", 12
    if step <= 12.5:
        return "dekad", 9
    if step <= 20:
        return "semimonth", 6
    return "month", 3


def region_series(frame: pd.DataFrame, *, use_stored_vci: bool = True) -> RegionSeries:
    """Arrays for forecasting from a prepared table (sorted unique ``date``; ``ndvi``/``vci``).

    With ``use_stored_vci`` and a ``vci`` column present, VCI (and ``vci3m`` if present) are
    taken as given; otherwise VCI is computed from ``ndvi`` with running per-period extremes
    and VCI3M as its trailing 3-month mean, both free of later data.
    """
    dates = pd.DatetimeIndex(frame["date"])
    kind, window = infer_sampling(dates)
    t = ((dates - _EPOCH) / pd.Timedelta(days=1)).to_numpy(float)
    if use_stored_vci and "vci" in frame:
        v = frame["vci"].to_numpy(float)
        y3 = frame["vci3m"].to_numpy(float) if "vci3m" in frame else vci3m(v, window)
        source = "stored"
    elif "ndvi" in frame:
        v = vci(frame["ndvi"].to_numpy(float), period_of_year(dates, kind))
        y3 = vci3m(v, window)
        source = "ndvi"
    else:
        raise InputError("table has neither an 'ndvi' nor a 'vci' column")
    return RegionSeries(dates, t, v, y3, kind, window, source)


def vci_table(series: dict) -> pd.DataFrame:
    """Long table of every region: ``region, date, astrocast_time, vci, vci3m, drought_class``.

    ``series`` maps region -> :class:`RegionSeries`; ``drought_class`` is the NDMA class name
    of VCI3M (empty where VCI3M is undefined).
    """
    frames = []
    for r, s in series.items():
        cls = drought_class(s.vci3m)
        frames.append(
            pd.DataFrame(
                {
                    "region": r,
                    "date": s.dates,
                    "astrocast_time": s.t_days,
                    "vci": s.vci,
                    "vci3m": s.vci3m,
                    "drought_class": [DROUGHT_CLASSES[c] if c >= 0 else "" for c in cls],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
