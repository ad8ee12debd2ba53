"""Sky matching: every pair within a radius, and greedy nearest-first one-to-one matching.

Pure functions on arrays of degrees; no files, no Dask.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["radec_to_xyz", "pairs_within", "self_pairs", "greedy_one_to_one", "angular_sep_arcsec"]


def radec_to_xyz(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) of positions ``ra_deg``, ``dec_deg`` (n,), degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.column_stack((cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)))


def angular_sep_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation (arcsec) by the Vincenty formula, stable at all distances."""
    ra1, dec1, ra2, dec2 = (
        np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2)
    )
    dra = ra2 - ra1
    s1, c1 = np.sin(dec1), np.cos(dec1)
    s2, c2 = np.sin(dec2), np.cos(dec2)
    num = np.hypot(c2 * np.sin(dra), c1 * s2 - s1 * c2 * np.cos(dra))
    den = s1 * s2 + c1 * c2 * np.cos(dra)
    return np.degrees(np.arctan2(num, den)) * 3600.0


def _chord(radius_arcsec: float) -> float:
    return 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)


def pairs_within(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i, j) with separation <= ``radius_arcsec``.

    Returns ``(i1, i2, sep_arcsec)``, int64/int64/float64 arrays sorted by (i1, sep).
    """
    xyz1 = radec_to_xyz(ra1, dec1)
    xyz2 = radec_to_xyz(ra2, dec2)
    if len(xyz1) == 0 or len(xyz2) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), np.empty(0)
    tree = cKDTree(xyz2)
    # A tiny slack on the chord keeps pairs exactly at the radius; the exact test follows.
    sparse = cKDTree(xyz1).sparse_distance_matrix(
        tree, _chord(radius_arcsec) * (1 + 1e-12), output_type="ndarray"
    )
    i1 = sparse["i"].astype(np.int64)
    i2 = sparse["j"].astype(np.int64)
    sep = angular_sep_arcsec(
        np.asarray(ra1)[i1], np.asarray(dec1)[i1], np.asarray(ra2)[i2], np.asarray(dec2)[i2]
    )
    keep = sep <= radius_arcsec
    i1, i2, sep = i1[keep], i2[keep], sep[keep]
    order = np.lexsort((i2, sep, i1))
    return i1[order], i2[order], sep[order]


def self_pairs(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float):
    """Pairs (i < j) of one catalogue within ``radius_arcsec``: ``(i, j, sep_arcsec)``."""
    i, j, sep = pairs_within(ra, dec, ra, dec, radius_arcsec)
    keep = i < j
    return i[keep], j[keep], sep[keep]


def greedy_one_to_one(
    i1: np.ndarray, i2: np.ndarray, sep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest-first one-to-one selection among candidate pairs.

    Pairs are taken in order of increasing separation (ties broken by i1, then i2, so the
    result is deterministic); a pair is kept when neither side is already taken.
    Returns the kept ``(i1, i2, sep)`` sorted by i1.
    """
    order = np.lexsort((i2, i1, sep))
    used1: set[int] = set()
    used2: set[int] = set()
    keep = []
    for k in order:
        a, b = int(i1[k]), int(i2[k])
        if a in used1 or b in used2:
            continue
        used1.add(a)
        used2.add(b)
        keep.append(k)
    keep = np.asarray(keep, dtype=np.int64)
    keep = keep[np.argsort(i1[keep], kind="stable")] if len(keep) else keep
    return i1[keep], i2[keep], sep[keep]
