"""Two-catalogue cross-match as a joined table (pure: DataFrames and arrays in, a DataFrame out).

The table behind ``skysense catalog crossmatch``: every pair within a radius, or the greedy
nearest-first one-to-one selection of them (:func:`skysense.catalog.match.greedy_one_to_one`),
with both rows' columns side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.catalog.match import candidate_counts, greedy_one_to_one, pairs_within

__all__ = ["crossmatch_table"]


def crossmatch_table(
    a: pd.DataFrame,
    b: pd.DataFrame,
    ra_a: np.ndarray,
    dec_a: np.ndarray,
    ra_b: np.ndarray,
    dec_b: np.ndarray,
    radius_arcsec: float,
    *,
    all_pairs: bool = False,
) -> pd.DataFrame:
    """Join two catalogues on sky position.

    Parameters
    ----------
    a, b : pandas.DataFrame
        The catalogues (not modified).
    ra_a, dec_a : ndarray (len(a),), deg
    ra_b, dec_b : ndarray (len(b),), deg
    radius_arcsec : float, arcsec
        Match radius.
    all_pairs : bool
        Every pair within the radius instead of the one-to-one matches.

    Returns
    -------
    pandas.DataFrame
        One row per pair: the columns of ``a`` then of ``b`` (names found in both get the
        suffix ``_a`` / ``_b``), ``row_a``, ``row_b`` (0-based rows), ``separation_arcsec``,
        ``n_candidates_a``, ``n_candidates_b`` (int32: candidates of each row within the
        radius); in :func:`~skysense.catalog.match.pairs_within` order.

    Raises
    ------
    InputError
        Invalid positions or radius (from :func:`~skysense.catalog.match.pairs_within`).
    """
    pairs = pairs_within(ra_a, dec_a, ra_b, dec_b, radius_arcsec)
    n_a, n_b = candidate_counts(pairs.i1, pairs.i2, len(ra_a), len(ra_b))
    chosen = pairs if all_pairs else greedy_one_to_one(*pairs)
    left = a.iloc[chosen.i1].reset_index(drop=True)
    right = b.iloc[chosen.i2].reset_index(drop=True)
    clash = set(left.columns) & set(right.columns)
    left = left.rename(columns={c: f"{c}_a" for c in clash})
    right = right.rename(columns={c: f"{c}_b" for c in clash})
    out = pd.concat([left, right], axis=1)
    out["row_a"] = chosen.i1
    out["row_b"] = chosen.i2
    out["separation_arcsec"] = chosen.sep_arcsec
    out["n_candidates_a"] = n_a[chosen.i1].astype(np.int32)
    out["n_candidates_b"] = n_b[chosen.i2].astype(np.int32)
    out.attrs = {}
    return out
