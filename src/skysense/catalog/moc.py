"""Coverage MOCs (mocpy) and HELP's ``flag_optnir_obs`` / ``flag_optnir_det``.

A survey's footprint is the MOC of the HEALPix cells (at ``order``) that contain at least one
of its sources: order 10 cells are 3.4 arcmin wide, coarse enough to have no holes between
sources of a typical deep survey and fine enough to follow its edges.

HELP's flags (from the HELP database descriptor, "note 2") are binary sums:
1 = optical, 2 = near-infrared, 4 = mid-infrared (IRAC-like, 2.6-10 um). ``flag_optnir_obs``
says where a source was *observed* (inside the coverage of a survey of that regime);
``flag_optnir_det`` where it was *detected* (a measured positive flux in at least ``min_bands``
bands of that regime). With no mid-IR MOC the flags are 0 none, 1 optical only, 2 NIR only,
3 both. Band regimes come from :mod:`skysense.catalog.bands`.

Pure: MOC files are read and written by :func:`skysense.catalog.io.read_moc` and
:func:`skysense.catalog.io.write_moc`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import astropy.units as u
import numpy as np
import pandas as pd
from mocpy import MOC

from skysense.catalog.bands import BANDS
from skysense.errors import InputError

__all__ = [
    "MOC_OPERATIONS",
    "combine_mocs",
    "FULL_SKY_DEG2",
    "OPTNIR_BITS",
    "coverage_moc",
    "moc_union",
    "moc_intersection",
    "moc_area_deg2",
    "in_moc",
    "regime_mocs",
    "optnir_obs_flag",
    "optnir_det_flag",
    "optnir_flags",
]

FULL_SKY_DEG2 = 4 * np.pi * (180 / np.pi) ** 2
OPTNIR_BITS = {"optical": 1, "nir": 2, "mir": 4}


MOC_OPERATIONS = ("union", "intersection")


def coverage_moc(ra: np.ndarray, dec: np.ndarray, order: int = 10) -> MOC:
    """MOC of the cells at ``order`` holding at least one position.

    Parameters
    ----------
    ra, dec : ndarray (n,), deg
    order : int
        HEALPix order (0-29); cell size ~ 58.6 / 2**order deg.

    Raises
    ------
    InputError
        ``order`` outside 0..29.
    """
    if not 0 <= int(order) <= 29:
        raise InputError(f"MOC order must be in 0..29, got {order}")
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    if len(ra) == 0:
        return MOC.new_empty(int(order))
    return MOC.from_lonlat(lon=ra * u.deg, lat=dec * u.deg, max_norder=int(order))


def moc_union(mocs: Iterable[MOC]) -> MOC:
    """Union of one or more MOCs."""
    mocs = list(mocs)
    if not mocs:
        raise InputError("no MOC given")
    return mocs[0].union(*mocs[1:]) if len(mocs) > 1 else mocs[0]


def moc_intersection(mocs: Iterable[MOC]) -> MOC:
    """Intersection of one or more MOCs."""
    mocs = list(mocs)
    if not mocs:
        raise InputError("no MOC given")
    return mocs[0].intersection(*mocs[1:]) if len(mocs) > 1 else mocs[0]


def combine_mocs(mocs: Iterable[MOC], op: str = "union") -> MOC:
    """Union (``op="union"``) or intersection (``op="intersection"``) of one or more MOCs.

    Raises
    ------
    InputError
        An unknown ``op`` or no MOC.
    """
    if op not in MOC_OPERATIONS:
        raise InputError(f"unknown MOC operation {op!r}; use one of {', '.join(MOC_OPERATIONS)}")
    mocs = list(mocs)
    if not mocs:
        raise InputError("no MOC given")
    return moc_union(mocs) if op == "union" else moc_intersection(mocs)


def moc_area_deg2(moc: MOC) -> float:
    """Sky area covered by ``moc`` in square degrees."""
    return float(moc.sky_fraction * FULL_SKY_DEG2)


def in_moc(moc: MOC | None, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Boolean (n,): positions inside ``moc`` (all False for ``None``)."""
    ra = np.asarray(ra, dtype=float)
    if moc is None or len(ra) == 0:
        return np.zeros(len(ra), dtype=bool)
    dec = np.asarray(dec, dtype=float)
    good = np.isfinite(ra) & np.isfinite(dec)
    out = np.zeros(len(ra), dtype=bool)
    if good.any():
        out[good] = moc.contains_lonlat(ra[good] * u.deg, dec[good] * u.deg)
    return out


def regime_mocs(surveys: Mapping[str, tuple[MOC, Sequence[str]]]) -> dict[str, MOC]:
    """Coverage per regime: the union of the MOCs of the surveys observing in it.

    Parameters
    ----------
    surveys : mapping
        survey name -> (coverage MOC, its HELP band names).

    Returns
    -------
    dict
        regime (``"optical"``, ``"nir"``, ``"mir"``, ...) -> MOC; regimes without a survey
        are absent.
    """
    by_regime: dict[str, list[MOC]] = {}
    for name, (moc, bands) in surveys.items():
        regimes = set()
        for band in bands:
            if band not in BANDS:
                raise InputError(f"unknown band {band!r} for survey {name!r}")
            regimes.add(BANDS[band].regime)
        for regime in regimes:
            by_regime.setdefault(regime, []).append(moc)
    return {regime: moc_union(m) for regime, m in by_regime.items()}


def optnir_obs_flag(
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    optical_moc: MOC | None = None,
    nir_moc: MOC | None = None,
    mir_moc: MOC | None = None,
) -> np.ndarray:
    """HELP ``flag_optnir_obs``: 1 * in optical + 2 * in NIR + 4 * in mid-IR coverage.

    Parameters
    ----------
    ra, dec : ndarray (n,), deg
    optical_moc, nir_moc, mir_moc : MOC or None
        Coverage of each regime (None = no survey of that regime).

    Returns
    -------
    ndarray (n,), int16
    """
    flag = np.zeros(len(np.asarray(ra)), dtype=np.int16)
    for moc, bit in ((optical_moc, 1), (nir_moc, 2), (mir_moc, 4)):
        flag += bit * in_moc(moc, ra, dec).astype(np.int16)
    return flag


_FLUX_RE = re.compile(r"^f_(?!ap_)(.+)$")


def optnir_det_flag(
    table: pd.DataFrame, *, bands: Sequence[str] | None = None, min_bands: int = 1
) -> np.ndarray:
    """HELP ``flag_optnir_det``: 1 * optical + 2 * NIR + 4 * mid-IR detection.

    A source is detected in a regime when at least ``min_bands`` of its bands in that regime
    have a finite positive total flux ``f_<band>``.

    Parameters
    ----------
    table : DataFrame
        With ``f_<band>`` columns (uJy).
    bands : sequence of str, optional
        Bands to consider; default every registered band with an ``f_<band>`` column.
    min_bands : int
        Detections needed per regime (HELP's database note suggests 2 for a stricter flag).

    Returns
    -------
    ndarray (n,), int16
    """
    if bands is None:
        bands = [m.group(1) for c in table.columns if (m := _FLUX_RE.match(c))]
        bands = [b for b in bands if b in BANDS]
    counts = {regime: np.zeros(len(table), dtype=np.int32) for regime in OPTNIR_BITS}
    for band in bands:
        if band not in BANDS:
            raise InputError(f"unknown band {band!r}", column=f"f_{band}")
        regime = BANDS[band].regime
        if regime not in counts:
            continue
        col = f"f_{band}"
        if col not in table:
            raise InputError("flux column missing", column=col)
        flux = table[col].to_numpy(dtype=float, na_value=np.nan)
        counts[regime] += np.isfinite(flux) & (flux > 0)
    flag = np.zeros(len(table), dtype=np.int16)
    for regime, bit in OPTNIR_BITS.items():
        flag += bit * (counts[regime] >= min_bands).astype(np.int16)
    return flag


def optnir_flags(
    table: pd.DataFrame,
    *,
    optical_moc: MOC | None = None,
    nir_moc: MOC | None = None,
    mir_moc: MOC | None = None,
    ra: str | np.ndarray = "ra",
    dec: str | np.ndarray = "dec",
    bands: Sequence[str] | None = None,
    min_bands: int = 1,
) -> pd.DataFrame:
    """Both HELP flags for a masterlist or prepared catalogue.

    Parameters
    ----------
    table : DataFrame (n rows)
        With ``f_<band>`` flux columns (uJy) and positions.
    optical_moc, nir_moc, mir_moc : MOC or None
        Coverage per regime (see :func:`regime_mocs`).
    ra, dec : str or ndarray (n,), deg
        Position column names in ``table`` or the arrays themselves.
    bands, min_bands
        As in :func:`optnir_det_flag`.

    Returns
    -------
    DataFrame (n rows)
        ``flag_optnir_obs`` and ``flag_optnir_det`` (int16), index of ``table``.
    """
    ra_v = table[ra].to_numpy(float) if isinstance(ra, str) else np.asarray(ra, dtype=float)
    dec_v = table[dec].to_numpy(float) if isinstance(dec, str) else np.asarray(dec, dtype=float)
    obs = optnir_obs_flag(ra_v, dec_v, optical_moc=optical_moc, nir_moc=nir_moc, mir_moc=mir_moc)
    det = optnir_det_flag(table, bands=bands, min_bands=min_bands)
    return pd.DataFrame({"flag_optnir_obs": obs, "flag_optnir_det": det}, index=table.index)
