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
    "column_stats",
    "problems_from_stats",
    "merge_column_stats",
    "count_keys",
    "counts_from_keys",
    "KthSearch",
    "chi2_outliers",
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
    return problems_from_stats(column_stats(df))


def column_stats(df: pd.DataFrame) -> dict[str, tuple[int, int, int, int]]:
    """Per numeric (non-bool, non-``_``) column: (rows, finite, zero, negative) counts;
    summable over partitions (:func:`merge_column_stats`)."""
    out = {}
    for col in df.columns:
        if col.startswith("_") or not pd.api.types.is_numeric_dtype(df[col].dtype):
            continue
        if pd.api.types.is_bool_dtype(df[col].dtype):
            continue
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        f = v[np.isfinite(v)]
        out[col] = (len(v), len(f), int(np.sum(f == 0)), int(np.sum(f < 0)))
    return out


def merge_column_stats(parts: list[dict]) -> dict[str, tuple[int, int, int, int]]:
    """Sum :func:`column_stats` of partitions (columns in first-seen order)."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for part in parts:
        for col, st in part.items():
            old = out.get(col, (0, 0, 0, 0))
            out[col] = tuple(a + b for a, b in zip(old, st))  # type: ignore[assignment]
    return out


def problems_from_stats(stats: dict[str, tuple[int, int, int, int]]) -> pd.DataFrame:
    """:func:`column_problems` from (summed) :func:`column_stats`."""
    rows = []
    for col, (n, n_finite, n_zero, n_neg) in stats.items():
        if n_finite == 0:
            rows.append((col, "all missing", n))
            continue
        if n_zero == n_finite:
            rows.append((col, "all zero", n_finite))
        signed = col.startswith(("f_", "ferr_", "merr_")) or col.startswith("ferr")
        if signed and n_neg:
            rows.append((col, "negative values", n_neg))
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
    n_out = chi2_outliers(d, var, med, chi2_max)
    return {"n": int(ok.sum()), "median": med, "mad": mad, "n_outliers": n_out,
            "outlier_fraction": n_out / int(ok.sum()), "diff": d}  # fmt: skip


def chi2_outliers(d: np.ndarray, var: np.ndarray, median: float, chi2_max: float) -> int:
    """Differences ``d`` with ``(d - median)^2 / var > chi2_max`` (var 0: any d != median)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(var > 0, (d - median) ** 2 / var, np.inf * (d != median))
    return int(np.sum(chi2 > chi2_max))


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


def count_keys(mag: np.ndarray, bin_width: float = 0.5) -> dict[int, int]:
    """Finite magnitudes per bin ``floor(m / bin_width)``: summable over partitions."""
    m = np.asarray(mag, float)
    keys, counts = np.unique(np.floor(m[np.isfinite(m)] / bin_width), return_counts=True)
    return {int(k): int(c) for k, c in zip(keys, counts)}


def counts_from_keys(keys: dict[int, int], bin_width: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """:func:`number_counts` from summed :func:`count_keys` (the same edges and counts)."""
    if not keys:
        return np.array([0.0, bin_width]), np.array([0])
    k0, k1 = min(keys), max(keys)
    # number_counts' edges end one bin past ceil(max): an empty last bin unless max sat
    # exactly on an edge. The bins holding values are the same.
    edges = np.arange(k0 * bin_width, (k1 + 2) * bin_width + bin_width / 2, bin_width)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for k, c in keys.items():
        counts[k - k0] += c
    return edges, counts


class KthSearch:
    """The exact k-th smallest of values spread over partitions, in a few passes.

    Each pass a partition reports, for the current bracket ``[lo, hi]``, how many of its
    values fall below each of ``n_thresholds`` thresholds (:meth:`partition_counts`); the
    summed counts narrow the bracket to one threshold step. Once the bracket holds at most
    ``collect`` values the partitions return those values (:meth:`partition_values`) and
    the k-th is picked from them. No pass holds more than ``collect`` values in one place.

    Parameters
    ----------
    k : int
        0-based rank.
    lo, hi : float
        Smallest and largest value (from a first pass).
    n : int
        Number of values.
    """

    def __init__(self, k: int, lo: float, hi: float, n: int, *, n_thresholds: int = 512,
                 collect: int = 200_000):  # fmt: skip
        self.k, self.lo, self.hi, self.n_thresholds, self.collect = k, lo, hi, n_thresholds, collect
        self.below = 0  # values < lo
        self.inside = n  # values in [lo, hi]
        self.value: float | None = lo if lo == hi else None

    @property
    def done(self) -> bool:
        return self.value is not None

    @property
    def collecting(self) -> bool:
        return self.inside <= self.collect

    def thresholds(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.n_thresholds + 1)

    @staticmethod
    def partition_counts(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """Values below each threshold, values at or below each, and the smallest and
        largest value strictly between consecutive thresholds (+inf / -inf if none).
        Combine partitions with :meth:`combine`."""
        v = sorted_values
        below = np.searchsorted(v, thresholds, side="left")
        upto = np.searchsorted(v, thresholds, side="right")
        first, last = upto[:-1], below[1:] - 1
        some = last >= first
        lo = np.where(some, v[np.clip(first, 0, max(len(v) - 1, 0))] if len(v) else 0.0, np.inf)
        hi = np.where(some, v[np.clip(last, 0, max(len(v) - 1, 0))] if len(v) else 0.0, -np.inf)
        return np.concatenate([below, upto, lo, hi])

    @staticmethod
    def combine(parts: list[np.ndarray]) -> np.ndarray:
        """Summed counts, least minima and greatest maxima of :meth:`partition_counts`."""
        a = np.stack(parts)
        t = (a.shape[1] + 2) // 4  # thresholds: 2 t counts + 2 (t - 1) extrema
        return np.concatenate([a[:, : 2 * t].sum(axis=0), a[:, 2 * t : 3 * t - 1].min(axis=0),
                               a[:, 3 * t - 1 :].max(axis=0)])  # fmt: skip

    def partition_values(self, sorted_values: np.ndarray) -> np.ndarray:
        a = np.searchsorted(sorted_values, self.lo, side="left")
        b = np.searchsorted(sorted_values, self.hi, side="right")
        return sorted_values[a:b]

    def update_counts(self, combined: np.ndarray) -> None:
        """Narrow the bracket from :meth:`combine` of the partitions' counts."""
        t = self.thresholds()
        n = len(t)
        below, upto = combined[:n], combined[n : 2 * n]
        lo, hi = combined[2 * n : 3 * n - 1], combined[3 * n - 1 :]
        # Last threshold with at most k values below it: the k-th is t[i] itself when it
        # is among the values at or below t[i], else strictly between t[i] and t[i + 1],
        # where the values found there bound the new bracket (ties then end it).
        i = int(np.searchsorted(below, self.k, side="right")) - 1
        if self.k < upto[i] or i == n - 1:
            self.value = float(t[i])
            return
        self.lo, self.hi = float(lo[i]), float(hi[i])
        self.below = int(upto[i])
        self.inside = int(below[i + 1] - upto[i])
        if self.lo >= self.hi:
            self.value = self.lo

    def update_values(self, values: list[np.ndarray]) -> None:
        """Pick the k-th from the partitions' :meth:`partition_values`."""
        v = np.sort(np.concatenate(values))
        self.value = float(v[self.k - self.below])
