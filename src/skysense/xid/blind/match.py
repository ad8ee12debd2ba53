"""Cross-match a blind catalogue with the XID+ catalogue and the masterlist.

A blind source (found in the map itself) with no XID+ or masterlist source within the match
radius has no prior counterpart: a candidate hidden source (dusty or high-redshift galaxy).
The pair search is the catalogue area's exact one (:func:`skysense.catalog.match.pairs_within`);
every blind source keeps its row and gets its nearest counterpart, the number of candidates
within the radius and, for the XID+ catalogue, the summed XID+ flux of those candidates
(how much of the blind flux the prior sources explain).

Pure: DataFrames in, a DataFrame out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense._check import check_positions
from skysense.catalog.match import pairs_within
from skysense.errors import InputError
from skysense.tables import DEC_NAMES, RA_NAMES
from skysense.xid.columns import ID_NAMES, find_column

__all__ = ["nearest_within", "match_blind", "describe_match", "MATCH_UNITS"]

#: Units of the columns :func:`match_blind` adds.
MATCH_UNITS = {
    "xid_sep_arcsec": "arcsec",
    "xid_flux_mjy": "mJy",
    "xid_flux_within_mjy": "mJy",
    "ml_sep_arcsec": "arcsec",
}


def nearest_within(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Nearest catalogue-2 row of every catalogue-1 row within ``radius_arcsec``.

    Parameters
    ----------
    ra1, dec1 : ndarray (n,), deg
    ra2, dec2 : ndarray (m,), deg
    radius_arcsec : float, arcsec

    Returns
    -------
    j : ndarray (n,), int64 - nearest row of catalogue 2, -1 when none within the radius
    sep_arcsec : ndarray (n,) - its separation, NaN when none
    count : ndarray (n,), int64 - catalogue-2 rows within the radius
    pairs : (i1, i2) - every pair within the radius
    """
    n = len(ra1)
    j = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    if n == 0 or len(ra2) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return j, sep, np.zeros(n, dtype=np.int64), (empty, empty)
    i1, i2, s = pairs_within(ra1, dec1, ra2, dec2, radius_arcsec)
    # pairs come sorted by (i1, separation): the first of each group is the nearest
    first = np.flatnonzero(np.r_[True, i1[1:] != i1[:-1]]) if len(i1) else np.zeros(0, int)
    j[i1[first]] = i2[first]
    sep[i1[first]] = s[first]
    return j, sep, np.bincount(i1, minlength=n).astype(np.int64), (i1, i2)


def _positions(df: pd.DataFrame, label: str) -> tuple[np.ndarray, np.ndarray]:
    ra = pd.to_numeric(df[find_column(df.columns, RA_NAMES, "RA", label=label)], errors="coerce")
    dec = pd.to_numeric(df[find_column(df.columns, DEC_NAMES, "Dec", label=label)], errors="coerce")
    return check_positions(ra.to_numpy(float), dec.to_numpy(float), label=label)


def _ids(df: pd.DataFrame, label: str) -> np.ndarray:
    return df[find_column(df.columns, ID_NAMES, "id", label=label)].astype(str).to_numpy()


def match_blind(
    blind: pd.DataFrame,
    *,
    xid: pd.DataFrame | None = None,
    masterlist: pd.DataFrame | None = None,
    radius_arcsec: float | None = None,
    band: str | None = None,
) -> pd.DataFrame:
    """Flag blind sources without a prior counterpart.

    Parameters
    ----------
    blind : DataFrame - a blind catalogue (``ra``, ``dec``, ``flux_mjy``; from
        :func:`skysense.xid.blind.extract.extract_sources`)
    xid : DataFrame, optional - an XID+ catalogue (``HELP_ID``, ``RA``, ``Dec``, ``F_<BAND>``)
    masterlist : DataFrame, optional - a masterlist (``help_id``, ``ra``, ``dec``)
    radius_arcsec : float, optional - match radius; default half the beam FWHM
        (``blind.attrs["fwhm_arcsec"]``)
    band : str, optional - band of the blind catalogue, for the XID+ flux column
        ``F_<BAND>`` (default ``blind.attrs["band"]``)

    Returns
    -------
    DataFrame - ``blind`` plus, for each catalogue given, ``xid_id``, ``xid_sep_arcsec``,
    ``n_xid``, ``xid_flux_mjy`` (nearest), ``xid_flux_within_mjy`` (sum within the radius)
    and ``ml_id``, ``ml_sep_arcsec``, ``n_ml``; and ``no_prior_counterpart`` (bool: no source
    of any given catalogue within the radius). ``attrs`` gains ``match_radius_arcsec``.

    Raises
    ------
    InputError
        No catalogue to match, a missing column, bad positions, no radius.
    """
    if xid is None and masterlist is None:
        raise InputError("give an XID+ catalogue, a masterlist or both to match against")
    if radius_arcsec is None:
        fwhm = blind.attrs.get("fwhm_arcsec")
        if fwhm is None:
            raise InputError("no match radius: pass radius_arcsec (the catalogue has no FWHM)")
        radius_arcsec = 0.5 * float(fwhm)
    band = band or blind.attrs.get("band")
    ra, dec = _positions(blind, "blind catalogue")
    out = blind.reset_index(drop=True)  # a copy; pair indices are row positions
    has = np.zeros(len(blind), dtype=bool)
    if xid is not None:
        xra, xdec = _positions(xid, "XID+ catalogue")
        ids = _ids(xid, "XID+ catalogue")
        j, sep, count, (i1, i2) = nearest_within(ra, dec, xra, xdec, radius_arcsec)
        out["xid_id"] = pd.Series(np.where(j >= 0, ids[np.maximum(j, 0)], ""), dtype="str")
        out["xid_sep_arcsec"] = sep
        out["n_xid"] = count
        fcol = None if band is None else f"F_{band.upper()}"
        if fcol is not None and fcol in xid.columns:
            f = xid[fcol].to_numpy(dtype=float)
            out["xid_flux_mjy"] = np.where(j >= 0, f[np.maximum(j, 0)], np.nan)
            within = np.zeros(len(blind))
            np.add.at(within, i1, np.nan_to_num(f[i2]))
            out["xid_flux_within_mjy"] = within
        has |= count > 0
    if masterlist is not None:
        mra, mdec = _positions(masterlist, "masterlist")
        ids = _ids(masterlist, "masterlist")
        j, sep, count, _ = nearest_within(ra, dec, mra, mdec, radius_arcsec)
        out["ml_id"] = pd.Series(np.where(j >= 0, ids[np.maximum(j, 0)], ""), dtype="str")
        out["ml_sep_arcsec"] = sep
        out["n_ml"] = count
        has |= count > 0
    out["no_prior_counterpart"] = ~has
    out.attrs = {**blind.attrs, "match_radius_arcsec": float(radius_arcsec)}
    return out


def describe_match(matched: pd.DataFrame) -> str:
    """One line: how many blind sources of :func:`match_blind`'s table have no prior counterpart.

    Parameters
    ----------
    matched : DataFrame - from :func:`match_blind` (``no_prior_counterpart``, and
        ``attrs["match_radius_arcsec"]``)
    """
    n = int(matched["no_prior_counterpart"].sum())
    return (
        f"{n} of {len(matched)} blind sources have no prior counterpart within "
        f"{matched.attrs['match_radius_arcsec']:g} arcsec"
    )
