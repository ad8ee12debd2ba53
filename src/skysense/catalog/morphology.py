"""Morphology columns (HELP DMU 3): survey shapes and sizes in HELP names, and their merge (pure).

A survey configuration may name, under ``columns``, its size and shape columns:

``r_half``        half-light (or Kron) radius, arcsec (a file unit of deg/mas/pix-free angle
                  is converted)
``axis_ratio``    minor / major axis, in (0, 1]; or
``ellipticity``   1 - minor / major, in [0, 1)
``pa``            position angle of the major axis, deg east of north

Prepared catalogues then carry ``r_half_arcsec``, ``axis_ratio`` and ``pa_deg`` (PA folded
into [0, 180)). The merge takes all three from the highest-priority survey that measured a
size for the object, so an object's shape is one survey's coherent measurement, and names it
in ``shape_origin``. The survey's stellarity already flows as ``stellarity``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skysense.errors import InputError

__all__ = [
    "SHAPE_COLUMNS",
    "SHAPE_UNITS",
    "SHAPE_DESCRIPTIONS",
    "SHAPE_UCDS",
    "shape_columns",
    "merge_shapes",
    "compare_sizes",
]

#: The prepared and masterlist shape columns, in order.
SHAPE_COLUMNS = ("r_half_arcsec", "axis_ratio", "pa_deg")
SHAPE_UNITS = {"r_half_arcsec": "arcsec", "axis_ratio": "", "pa_deg": "deg", "shape_origin": ""}
SHAPE_DESCRIPTIONS = {
    "r_half_arcsec": "Half-light (or Kron) radius",
    "axis_ratio": "Axis ratio (minor / major)",
    "pa_deg": "Position angle of the major axis, east of north",
    "shape_origin": "Survey whose shape columns are given",
}
SHAPE_UCDS = {
    "r_half_arcsec": "phys.angSize;src",
    "axis_ratio": "phys.size.axisRatio",
    "pa_deg": "pos.posAng",
    "shape_origin": "meta.dataset",
}


def _bad_row(mask: np.ndarray, rows: np.ndarray | None) -> int:
    i = int(np.flatnonzero(mask)[0])
    return int(rows[i]) if rows is not None else i


def shape_columns(
    r_half_arcsec: np.ndarray | None = None,
    axis_ratio: np.ndarray | None = None,
    ellipticity: np.ndarray | None = None,
    pa_deg: np.ndarray | None = None,
    *,
    names: dict[str, str] | None = None,
    rows: np.ndarray | None = None,
    path=None,
) -> dict[str, np.ndarray]:
    """Checked shape columns in HELP names from a survey's columns.

    Parameters
    ----------
    r_half_arcsec : ndarray (n,), arcsec, optional
    axis_ratio : ndarray (n,), optional
        Minor / major.
    ellipticity : ndarray (n,), optional
        1 - minor / major (give this or ``axis_ratio``).
    pa_deg : ndarray (n,), deg east of north, optional
    names : dict, optional
        The survey's column names by key (``"r_half"`` ...), for errors.
    rows : ndarray (n,), optional
        Row numbers in the file, for errors.
    path : path-like, optional
        The file, for errors.

    Returns
    -------
    dict
        ``r_half_arcsec``, ``axis_ratio``, ``pa_deg`` (those given; PA in [0, 180)); NaN stays
        NaN (not measured).

    Raises
    ------
    InputError
        Negative radius, axis ratio outside (0, 1], ellipticity outside [0, 1), or both an
        axis ratio and an ellipticity; names the column and row.
    """
    names = names or {}
    if axis_ratio is not None and ellipticity is not None:
        raise InputError("give an axis ratio or an ellipticity, not both", path=path)
    out: dict[str, np.ndarray] = {}
    if r_half_arcsec is not None:
        r = np.asarray(r_half_arcsec, dtype=np.float64)
        bad = r < 0
        if bad.any():
            i = _bad_row(bad, rows)
            raise InputError("negative radius", path=path, column=names.get("r_half"), row=i)
        out["r_half_arcsec"] = r
    if ellipticity is not None:
        e = np.asarray(ellipticity, dtype=np.float64)
        bad = (e < 0) | (e >= 1)
        if bad.any():
            i = _bad_row(bad, rows)
            raise InputError(
                "ellipticity outside [0, 1)", path=path, column=names.get("ellipticity"), row=i
            )
        out["axis_ratio"] = 1.0 - e
    if axis_ratio is not None:
        q = np.asarray(axis_ratio, dtype=np.float64)
        bad = (q <= 0) | (q > 1)
        if bad.any():
            i = _bad_row(bad, rows)
            raise InputError(
                "axis ratio outside (0, 1]", path=path, column=names.get("axis_ratio"), row=i
            )
        out["axis_ratio"] = q
    if pa_deg is not None:
        # An ellipse is the same after a half turn; mod of a tiny negative angle rounds to
        # 180 exactly, which is 0.
        pa = np.mod(np.asarray(pa_deg, dtype=np.float64), 180.0)
        out["pa_deg"] = np.where(pa >= 180.0, 0.0, pa)
    return out


def merge_shapes(
    rows: np.ndarray, frames: Sequence[pd.DataFrame], surveys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Shape columns of merged objects from the highest-priority survey with a size.

    Parameters
    ----------
    rows : ndarray (n_objects, n_catalogues), int
        Row of each object in each catalogue (-1: none), catalogues in priority order.
    frames : sequence of DataFrame
        The prepared catalogues.
    surveys : sequence of str
        Their names.

    Returns
    -------
    dict
        ``r_half_arcsec``, ``axis_ratio``, ``pa_deg`` and ``shape_origin`` (survey name, ""
        when none) when any catalogue has shape columns; else empty. A survey that measures
        only the shape (no radius) is used where no survey measured a radius.
    """
    have = [k for k, f in enumerate(frames) if any(c in f.columns for c in SHAPE_COLUMNS)]
    if not have:
        return {}
    n = rows.shape[0]
    chosen = np.full(n, -1)
    # First pass: a measured radius; second: any shape value.
    for needed in (("r_half_arcsec",), SHAPE_COLUMNS):
        for k in have:
            f = frames[k]
            r = rows[:, k]
            ok = np.zeros(n, dtype=bool)
            for c in needed:
                if c in f.columns and len(f):
                    v = f[c].to_numpy(dtype=np.float64)
                    ok |= (r >= 0) & np.isfinite(v[np.clip(r, 0, None)])
            chosen = np.where((chosen < 0) & ok, k, chosen)
    out = {c: np.full(n, np.nan) for c in SHAPE_COLUMNS}
    for k in have:
        sel = chosen == k
        r = rows[sel, k]
        for c in SHAPE_COLUMNS:
            if c in frames[k].columns:
                out[c][sel] = frames[k][c].to_numpy(dtype=np.float64)[r]
    names = np.array(list(surveys) + [""], dtype=object)
    out["shape_origin"] = names[chosen]
    return out


def compare_sizes(a: np.ndarray, b: np.ndarray) -> dict:
    """Agreement of two surveys' radii of the same objects (both finite and positive).

    Returns
    -------
    dict
        ``n``, ``median_ratio`` (b / a), ``nmad_log_ratio`` (1.4826 x the median absolute
        deviation of log10(b / a)), ``spearman`` rank correlation.
    """
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    if ok.sum() < 3:
        return {"n": int(ok.sum())}
    lr = np.log10(b[ok] / a[ok])
    return {
        "n": int(ok.sum()),
        "median_ratio": float(10 ** np.median(lr)),
        "nmad_log_ratio": float(1.4826 * np.median(np.abs(lr - np.median(lr)))),
        "spearman": float(spearmanr(a[ok], b[ok]).statistic),
    }
