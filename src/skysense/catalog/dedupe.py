"""Removing duplicate detections of one survey (HELP's "cleaning").

Survey catalogues built from overlapping tiles list some objects twice. Rows closer than a
small radius are treated as one object: rows are visited from the best to the worst score and
each surviving row removes its still-undecided neighbours (greedy suppression, so a chain
A-B-C with only A-B and B-C close keeps A and C when A beats B). Survivors that had at least
one neighbour get ``flag_cleaned``.

The pipeline's score (:func:`snr_score`) is the combined signal-to-noise over all bands,
``sqrt(sum_b (f_b / ferr_b)**2)``: the best-measured detection wins; ties go to the earlier row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from skysense.catalog.match import self_pairs

__all__ = ["DedupeResult", "dedupe", "snr_score"]


class DedupeResult(NamedTuple):
    """Result of :func:`dedupe`.

    Attributes
    ----------
    keep : ndarray (n,), bool
        Rows that survive.
    flag_cleaned : ndarray (n,), bool
        Survivors that had at least one neighbour within the radius.
    duplicate_of : ndarray (n,), int64
        For removed rows, the surviving row that removed them; -1 otherwise.
    """

    keep: np.ndarray
    flag_cleaned: np.ndarray
    duplicate_of: np.ndarray

    @property
    def n_removed(self) -> int:
        """Number of removed rows."""
        return int((~self.keep).sum())


def snr_score(table: pd.DataFrame, bands) -> np.ndarray:
    """Combined S/N per row, ``sqrt(sum_b (f_b / ferr_b)**2)`` over HELP flux columns.

    Bands or rows without a usable error contribute nothing; a row with no measurement scores 0.
    """
    total = np.zeros(len(table))
    for band in bands:
        for prefix in ("f_", "f_ap_"):
            f_col, e_col = f"{prefix}{band}", f"ferr_{prefix[2:]}{band}"
            if f_col in table and e_col in table:
                with np.errstate(invalid="ignore", divide="ignore"):
                    snr = table[f_col].to_numpy(float) / table[e_col].to_numpy(float)
                total += np.where(np.isfinite(snr), snr, 0.0) ** 2
                break
    return np.sqrt(total)


def dedupe(
    ra: np.ndarray, dec: np.ndarray, score: np.ndarray, radius_arcsec: float
) -> DedupeResult:
    """Find duplicates within ``radius_arcsec`` and keep the best-scoring row of each group.

    Parameters
    ----------
    ra, dec : ndarray (n,), deg
    score : ndarray (n,)
        Higher is better (NaN counts as the worst).
    radius_arcsec : float
        Rows at most this far apart are duplicates; 0 disables the step.

    Returns
    -------
    DedupeResult
    """
    n = len(ra)
    keep = np.ones(n, dtype=bool)
    flag = np.zeros(n, dtype=bool)
    dup_of = np.full(n, -1, dtype=np.int64)
    if n == 0 or radius_arcsec <= 0:
        return DedupeResult(keep, flag, dup_of)
    i, j, _ = self_pairs(ra, dec, radius_arcsec)
    if len(i) == 0:
        return DedupeResult(keep, flag, dup_of)
    # Symmetric adjacency lists in CSR form.
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    starts = np.searchsorted(src, np.arange(n + 1))
    involved = np.unique(src)
    s = np.asarray(score, dtype=np.float64)[involved]
    s = np.where(np.isnan(s), -np.inf, s)
    visit = involved[np.lexsort((involved, -s))]
    decided = np.zeros(n, dtype=bool)
    for row in visit:
        if not keep[row]:
            continue
        decided[row] = True
        flag[row] = True
        for nb in dst[starts[row] : starts[row + 1]]:
            if not decided[nb]:
                decided[nb] = True
                keep[nb] = False
                dup_of[nb] = row
    return DedupeResult(keep, flag & keep, dup_of)
