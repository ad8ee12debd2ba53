"""Raw (radio, masterlist row) pairs to the pair table of :func:`.identify.cross_identify`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.catalog.radio.config import ErrorSpec, error_covariance
from skysense.catalog.radio.lr import tangent_offsets_arcsec
from skysense.errors import InputError

__all__ = ["pair_table"]


def pair_table(
    raw: pd.DataFrame,
    query_ra: np.ndarray,
    query_dec: np.ndarray,
    magnitude: str,
    optical_error: ErrorSpec,
    colour: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Offsets, optical covariance, magnitude (and colour) of each raw pair.

    Parameters
    ----------
    raw : DataFrame
        ``query``, ``opt_row``, ``sep_arcsec``, ``opt_ra``, ``opt_dec`` and the masterlist
        columns named below (as :func:`skysense.catalog.radio.engine.find_pairs` returns).
    query_ra, query_dec : ndarray (n,), deg
        Positions the ``query`` column indexes.
    magnitude : str
        Magnitude column.
    optical_error : ErrorSpec
        Positional error of the masterlist (missing errors count as 0).
    colour : (str, str), optional
        Colour = first - second column.

    Returns
    -------
    DataFrame
        ``query, opt_row, sep_arcsec, east_arcsec, north_arcsec, c_ee, c_en, c_nn, mag`` and
        ``colour`` when asked.
    """
    for c in [magnitude, *(colour or ())]:
        if c not in raw.columns:
            raise InputError(f"masterlist has no column {c!r}", column=c)
    q = raw["query"].to_numpy(np.int64)
    east, north = tangent_offsets_arcsec(
        np.asarray(query_ra, float)[q], np.asarray(query_dec, float)[q],
        raw["opt_ra"].to_numpy(float), raw["opt_dec"].to_numpy(float),
    )  # fmt: skip
    c_ee, c_en, c_nn = error_covariance(raw, optical_error, label="masterlist",
                                        missing_as_zero=True)  # fmt: skip

    def num(col):
        return pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    out = pd.DataFrame({
        "query": q, "opt_row": raw["opt_row"].to_numpy(np.int64),
        "sep_arcsec": raw["sep_arcsec"].to_numpy(float), "east_arcsec": east,
        "north_arcsec": north, "c_ee": c_ee, "c_en": c_en, "c_nn": c_nn, "mag": num(magnitude),
    })  # fmt: skip
    if colour is not None:
        out["colour"] = num(colour[0]) - num(colour[1])
    return out
