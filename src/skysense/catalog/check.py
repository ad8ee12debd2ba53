"""The masterlist validation report (``skysense catalog check``): numbers, plots, a page.

What is checked (after HELP's masterlist checks):

* columns that are entirely missing, entirely zero, or have negative values (fluxes, errors);
* per-filter magnitude differences between surveys: for every pair of measurements of the same
  filter, the median and the MAD of ``m1 - m2``, and the outliers by HELP's chi-square rule,
  ``chi2 = (m1 - m2 - median)^2 / (merr1^2 + merr2^2) > chi2_max`` (default 25, 5 sigma).
  Pairs are (a) bands of the same filter letter from different cameras in the masterlist
  (``m_megacam_r`` against ``m_suprime_r``) and (b), when the merge outputs are beside the
  masterlist, the same band measured by two surveys (joined through the association table);
* number counts per band; separation histograms per survey (from the association table).

:func:`column_problems`, :func:`magnitude_comparison` and :func:`number_counts` are pure;
:func:`skysense.catalog.check_io.run_check` reads, plots and writes the page (Markdown) and
PNGs atomically.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "CHI2_MAX",
    "column_problems",
    "magnitude_comparison",
    "number_counts",
    "filter_letter",
]

CHI2_MAX = 25.0


def column_problems(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns that are all missing, all zero, or hold negative values.

    Returns
    -------
    pandas.DataFrame
        ``column``, ``problem`` ("all missing" | "all zero" | "negative values"), ``count``
        (rows concerned), one row per problem found. Negative magnitudes and coordinates are
        legitimate and not reported; only fluxes and errors are checked for sign.
    """
    rows = []
    for col in df.columns:
        if col.startswith("_") or not pd.api.types.is_numeric_dtype(df[col].dtype):
            continue
        if pd.api.types.is_bool_dtype(df[col].dtype):
            continue
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(v)
        if not finite.any():
            rows.append((col, "all missing", len(v)))
            continue
        if np.all(v[finite] == 0):
            rows.append((col, "all zero", int(finite.sum())))
        signed = col.startswith(("f_", "ferr_", "merr_")) or col.startswith("ferr")
        if signed and (v[finite] < 0).any():
            rows.append((col, "negative values", int((v[finite] < 0).sum())))
    return pd.DataFrame(rows, columns=["column", "problem", "count"])


def filter_letter(band: str) -> str:
    """The filter part of a HELP band name (``megacam_r`` -> ``r``; ``ks`` counts as ``k``)."""
    letter = band.split("_", 1)[1] if "_" in band else band
    return "k" if letter == "ks" else letter


def magnitude_comparison(
    m1: np.ndarray, merr1: np.ndarray, m2: np.ndarray, merr2: np.ndarray, chi2_max: float = CHI2_MAX
) -> dict:
    """Statistics of ``m1 - m2`` over rows where both are finite.

    Returns
    -------
    dict
        ``n``, ``median``, ``mad`` (median absolute deviation, unscaled), ``n_outliers`` and
        ``outlier_fraction`` by the chi-square rule (errors missing count as 0).
    """
    m1, m2 = np.asarray(m1, float), np.asarray(m2, float)
    e1 = np.nan_to_num(np.asarray(merr1, float), nan=0.0)
    e2 = np.nan_to_num(np.asarray(merr2, float), nan=0.0)
    ok = np.isfinite(m1) & np.isfinite(m2)
    if not ok.any():
        return {
            "n": 0,
            "median": np.nan,
            "mad": np.nan,
            "n_outliers": 0,
            "outlier_fraction": np.nan,
        }
    d = m1[ok] - m2[ok]
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med)))
    var = e1[ok] ** 2 + e2[ok] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(var > 0, (d - med) ** 2 / var, np.inf * (d != med))
    n_out = int(np.sum(chi2 > chi2_max))
    return {"n": int(ok.sum()), "median": med, "mad": mad, "n_outliers": n_out,
            "outlier_fraction": n_out / int(ok.sum()), "diff": d}  # fmt: skip


def number_counts(mag: np.ndarray, bin_width: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of finite magnitudes: (edges (b + 1,), counts (b,))."""
    m = np.asarray(mag, float)
    m = m[np.isfinite(m)]
    if len(m) == 0:
        return np.array([0.0, bin_width]), np.array([0])
    lo = np.floor(m.min() / bin_width) * bin_width
    hi = np.ceil(m.max() / bin_width) * bin_width + bin_width
    edges = np.arange(lo, hi + bin_width / 2, bin_width)
    counts, _ = np.histogram(m, bins=edges)
    return edges, counts
