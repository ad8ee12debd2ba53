"""Sky matching: every pair within a radius, and greedy nearest-first one-to-one matching.

Pure functions on arrays of degrees; no files, no Dask.

The pair criterion is exact and documented: ``(i, j)`` is a pair when
``angular_sep_arcsec(ra1[i], dec1[i], ra2[j], dec2[j]) <= radius_arcsec`` in float64 (Vincenty
formula). The candidate search (declination zones at least one radius tall, sorted by
(zone, RA) under one float64 key; queries processed in the same order by parallel numba
kernels, counting then filling) is deliberately a little generous (relative slack 1e-7 on the
chord). Each candidate's separation is computed in numba from unit vectors (accurate to
~1e-11 arcsec); any pair within a relative 1e-6 of the radius is re-decided by
``angular_sep_arcsec`` itself, so the result equals a brute-force search with that function,
at the boundary too. Right ascension wraps at 0/360 deg (any real RA is accepted); caps
containing a pole, or wider than 180 deg in RA, search their whole zones.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from skysense._check import check_positions
from skysense.errors import InputError

__all__ = [
    "MatchResult",
    "radec_to_xyz",
    "angular_sep_arcsec",
    "pairs_within",
    "self_pairs",
    "greedy_one_to_one",
    "one_to_one_within",
    "candidate_counts",
]

# Relative slack of the candidate search; the exact test follows, so it only costs time.
_SLACK = 1e-7


class MatchResult(NamedTuple):
    """Matched pairs: indices into the two inputs and their separation.

    Attributes
    ----------
    i1, i2 : ndarray (k,), int64
        Row indices into the first and second catalogue.
    sep_arcsec : ndarray (k,), float64
        Great-circle separation, arcsec.
    """

    i1: np.ndarray
    i2: np.ndarray
    sep_arcsec: np.ndarray


def radec_to_xyz(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Unit vectors of positions.

    Parameters
    ----------
    ra_deg, dec_deg : array_like (n,), deg

    Returns
    -------
    ndarray (n, 3), float64
    """
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.column_stack((cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)))


def angular_sep_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation by the Vincenty formula, stable at all distances.

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : array_like (broadcastable), deg

    Returns
    -------
    ndarray, arcsec
    """
    ra1, dec1, ra2, dec2 = (
        np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2)
    )
    dra = ra2 - ra1
    s1, c1 = np.sin(dec1), np.cos(dec1)
    s2, c2 = np.sin(dec2), np.cos(dec2)
    num = np.hypot(c2 * np.sin(dra), c1 * s2 - s1 * c2 * np.cos(dra))
    den = s1 * s2 + c1 * c2 * np.cos(dra)
    return np.degrees(np.arctan2(num, den)) * 3600.0


def _check_radius(radius_arcsec: float) -> float:
    radius = float(radius_arcsec)
    if not (np.isfinite(radius) and 0.0 < radius <= 3600.0 * 10):
        raise InputError(f"radius_arcsec must be in (0, 36000], got {radius_arcsec!r}")
    return radius


# Candidate search: catalogue 2 is sorted by one float64 key, zone * _ZONE_STRIDE + RA, with
# zones of declination at least as tall as the radius. The stride leaves a gap of 152 deg
# between zones, and key ranges are widened by _KEY_EPS deg, far above the key's rounding
# (zones are at least 0.1 arcsec tall, so keys stay below ~3.3e9 with ulp < 5e-7 deg).
_ZONE_STRIDE = 512.0
_KEY_EPS = 1e-5
_MIN_ZONE_DEG = 0.1 / 3600.0


@numba.njit(parallel=True, cache=True, nogil=True)
def _xyz_kernel(ra, dec, out):
    for i in numba.prange(ra.shape[0]):
        r = np.radians(ra[i])
        d = np.radians(dec[i])
        c = np.cos(d)
        out[i, 0] = c * np.cos(r)
        out[i, 1] = c * np.sin(r)
        out[i, 2] = np.sin(d)


def _xyz(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    out = np.empty((len(ra), 3))
    _xyz_kernel(np.ascontiguousarray(ra), np.ascontiguousarray(dec), out)
    return out


def _zone_keys(ra: np.ndarray, dec: np.ndarray, zone_deg: float) -> np.ndarray:
    zone = np.floor((dec + 90.0) / zone_deg)
    return zone * _ZONE_STRIDE + np.mod(ra, 360.0)


@numba.njit(cache=True, nogil=True)
def _scan_one(
    ra1, dec1, x1, y1, z1, keys, xyz, zstart, zmin, zone_deg, r_deg, chord2, out_j, out_sep
):
    """Visit the candidates of one position; store them when ``out_j`` is not empty; return
    their number (so the same routine counts, then fills)."""
    dec_lo = max(dec1 - r_deg, -90.0)
    dec_hi = min(dec1 + r_deg, 90.0)
    nz = zstart.shape[0] - 1
    # Zones relative to catalogue 2's first zone, clipped to the zones it has.
    z_lo = max(np.int64(np.floor((dec_lo + 90.0) / zone_deg)) - zmin, 0)
    z_hi = min(np.int64(np.floor((dec_hi + 90.0) / zone_deg)) - zmin, nz - 1)
    full = abs(dec1) + r_deg >= 90.0
    dra = 360.0
    if not full:
        s = np.sin(np.radians(r_deg)) / np.cos(np.radians(dec1))
        if s >= 1.0:
            full = True
        else:
            # Widest RA extent of a cap of radius r centred at declination dec1.
            dra = np.degrees(np.arcsin(s)) * (1.0 + 1e-9)
            if dra >= 180.0:
                full = True
    ra_n = ra1 % 360.0
    store = out_sep.shape[0] > 0
    pos = 0
    z = z_lo
    while z <= z_hi:
        base = (z + zmin) * _ZONE_STRIDE
        s0 = zstart[z]
        s1 = zstart[z + 1]
        for w in range(3):
            if full:
                if w > 0:
                    break
                lo, hi = 0.0, 360.0
            elif w == 0:
                lo = max(ra_n - dra, 0.0)
                hi = min(ra_n + dra, 360.0)
            elif w == 1:
                if ra_n - dra >= 0.0:
                    continue
                lo, hi = ra_n - dra + 360.0, 360.0
            else:
                if ra_n + dra <= 360.0:
                    continue
                lo, hi = 0.0, ra_n + dra - 360.0
            j = s0 + np.searchsorted(keys[s0:s1], base + lo - _KEY_EPS, side="left")
            top = base + hi + _KEY_EPS
            while j < s1 and keys[j] <= top:
                dx = xyz[j, 0] - x1
                dy = xyz[j, 1] - y1
                dz = xyz[j, 2] - z1
                if dx * dx + dy * dy + dz * dz <= chord2:
                    if store:
                        cx = y1 * xyz[j, 2] - z1 * xyz[j, 1]
                        cy = z1 * xyz[j, 0] - x1 * xyz[j, 2]
                        cz = x1 * xyz[j, 1] - y1 * xyz[j, 0]
                        dot = x1 * xyz[j, 0] + y1 * xyz[j, 1] + z1 * xyz[j, 2]
                        out_j[pos] = j
                        out_sep[pos] = (
                            np.degrees(np.arctan2(np.sqrt(cx * cx + cy * cy + cz * cz), dot))
                            * 3600.0
                        )
                    pos += 1
                j += 1
        z += 1
    return pos


@numba.njit(parallel=True, cache=True, nogil=True)
def _count_candidates(ra1, dec1, xyz1, keys, xyz, zstart, zmin, zone_deg, r_deg, chord2):
    n = ra1.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    no_j = np.empty(0, dtype=np.int64)
    no_sep = np.empty(0, dtype=np.float64)
    for i in numba.prange(n):
        counts[i] = _scan_one(
            ra1[i], dec1[i], xyz1[i, 0], xyz1[i, 1], xyz1[i, 2],
            keys, xyz, zstart, zmin, zone_deg, r_deg, chord2, no_j, no_sep,
        )  # fmt: skip
    return counts


@numba.njit(parallel=True, cache=True, nogil=True)
def _fill_candidates(
    ra1, dec1, xyz1, keys, xyz, zstart, zmin, zone_deg, r_deg, chord2, starts, total
):
    """Fill the candidates of query ``q`` from ``starts[q]`` on (``starts`` need not be
    increasing: queries run in sky order, the output is in the caller's row order)."""
    n = ra1.shape[0]
    out_j = np.empty(total, dtype=np.int64)
    out_sep = np.empty(total, dtype=np.float64)
    for i in numba.prange(n):
        a = starts[i]
        _scan_one(
            ra1[i], dec1[i], xyz1[i, 0], xyz1[i, 1], xyz1[i, 2],
            keys, xyz, zstart, zmin, zone_deg, r_deg, chord2, out_j[a:], out_sep[a:],
        )  # fmt: skip
    return out_j, out_sep


@numba.njit(parallel=True, cache=True, nogil=True)
def _sort_groups(offsets, sep, j):
    """Sort each group ``offsets[g]:offsets[g+1]`` by (sep, j) in place (insertion sort: the
    groups hold a handful of candidates)."""
    for g in numba.prange(offsets.shape[0] - 1):
        a = offsets[g]
        b = offsets[g + 1]
        for p in range(a + 1, b):
            s = sep[p]
            v = j[p]
            q = p - 1
            while q >= a and (sep[q] > s or (sep[q] == s and j[q] > v)):
                sep[q + 1] = sep[q]
                j[q + 1] = j[q]
                q -= 1
            sep[q + 1] = s
            j[q + 1] = v


# Pairs whose fast separation lies this close (relative) to the radius are decided by
# angular_sep_arcsec itself, so boundary decisions are those of a brute-force search.
_BORDER = 1e-6


def pairs_within(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_arcsec: float
) -> MatchResult:
    """All pairs (i, j) with separation <= ``radius_arcsec``.

    Parameters
    ----------
    ra1, dec1 : array_like (n,), deg
        First catalogue.
    ra2, dec2 : array_like (m,), deg
        Second catalogue. RA may be any real value (it wraps); |dec| <= 90.
    radius_arcsec : float
        Match radius, arcsec, in (0, 36000].

    Returns
    -------
    MatchResult
        ``(i1, i2, sep_arcsec)``: int64, int64, float64 arrays (k,), sorted by
        (i1, sep_arcsec, i2).

    Raises
    ------
    InputError
        Shapes differ, a position is NaN/infinite or |dec| > 90, or the radius is invalid.
    """
    radius = _check_radius(radius_arcsec)
    ra1, dec1 = check_positions(ra1, dec1, one_dim=True, label="catalogue 1")
    ra2, dec2 = check_positions(ra2, dec2, one_dim=True, label="catalogue 2")
    if len(ra1) == 0 or len(ra2) == 0:
        empty = np.empty(0, dtype=np.int64)
        return MatchResult(empty, empty.copy(), np.empty(0))
    r_deg = radius / 3600.0 * (1.0 + _SLACK)
    chord = 2.0 * np.sin(np.radians(r_deg) / 2.0) * (1.0 + _SLACK)
    zone_deg = max(r_deg, _MIN_ZONE_DEG)
    keys2 = _zone_keys(ra2, dec2, zone_deg)
    order2 = np.argsort(keys2)
    keys2 = keys2[order2]
    # Dense table of the first sorted row of every zone between the extreme zones.
    zone2 = np.floor(keys2 / _ZONE_STRIDE).astype(np.int64)
    zmin = int(zone2[0])
    zstart = np.searchsorted(zone2, np.arange(zmin, int(zone2[-1]) + 2)).astype(np.int64)
    xyz2 = _xyz(ra2[order2], dec2[order2])
    # Queries run in key order so that they touch catalogue 2 (and their own arrays)
    # sequentially: random access would cost a cache miss per row.
    qorder = np.argsort(_zone_keys(ra1, dec1, zone_deg))
    ra1q, dec1q = ra1[qorder], dec1[qorder]
    args = (ra1q, dec1q, _xyz(ra1q, dec1q), keys2, xyz2, zstart, zmin, zone_deg, r_deg)
    counts_q = _count_candidates(*args, chord * chord)
    counts = np.empty_like(counts_q)
    counts[qorder] = counts_q
    offsets = np.zeros(len(ra1) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    j_sorted, sep = _fill_candidates(*args, chord * chord, offsets[qorder], offsets[-1])
    i1 = np.repeat(np.arange(len(ra1), dtype=np.int64), counts)
    i2 = order2[j_sorted].astype(np.int64)
    border = np.flatnonzero(np.abs(sep - radius) <= _BORDER * radius)
    if len(border):
        sep[border] = angular_sep_arcsec(
            ra1[i1[border]], dec1[i1[border]], ra2[i2[border]], dec2[i2[border]]
        )
    keep = sep <= radius
    if not keep.all():
        i1, i2, sep = i1[keep], i2[keep], sep[keep]
        offsets = np.zeros(len(ra1) + 1, dtype=np.int64)
        np.cumsum(np.bincount(i1, minlength=len(ra1)), out=offsets[1:])
    _sort_groups(offsets, sep, i2)
    return MatchResult(i1, i2, sep)


def self_pairs(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float) -> MatchResult:
    """Pairs (i < j) of one catalogue within ``radius_arcsec``.

    Parameters
    ----------
    ra, dec : array_like (n,), deg
    radius_arcsec : float

    Returns
    -------
    MatchResult
        ``(i, j, sep_arcsec)`` with i < j, sorted by (i, sep_arcsec, j).
    """
    i, j, sep = pairs_within(ra, dec, ra, dec, radius_arcsec)
    keep = i < j
    return MatchResult(i[keep], j[keep], sep[keep])


@numba.njit(cache=True, nogil=True)
def _greedy_scan(order, i1, i2, n1, n2):
    used1 = np.zeros(n1, dtype=np.bool_)
    used2 = np.zeros(n2, dtype=np.bool_)
    keep = np.zeros(i1.shape[0], dtype=np.bool_)
    for k in order:
        a = i1[k]
        b = i2[k]
        if used1[a] or used2[b]:
            continue
        used1[a] = True
        used2[b] = True
        keep[k] = True
    return keep


@numba.njit(cache=True, nogil=True)
def _sorted_by_i1_sep_i2(i1, i2, sep):
    for k in range(1, i1.shape[0]):
        if i1[k] < i1[k - 1]:
            return False
        if i1[k] == i1[k - 1]:
            if sep[k] < sep[k - 1] or (sep[k] == sep[k - 1] and i2[k] < i2[k - 1]):
                return False
    return True


def greedy_one_to_one(i1: np.ndarray, i2: np.ndarray, sep: np.ndarray) -> MatchResult:
    """Nearest-first one-to-one selection among candidate pairs.

    Pairs are taken in order of increasing separation (ties broken by i1, then i2, so the
    result is deterministic); a pair is kept when neither side is already taken.

    Parameters
    ----------
    i1, i2 : array_like (k,), int
        Candidate pairs (non-negative indices).
    sep : array_like (k,), float
        Their separations (any unit).

    Returns
    -------
    MatchResult
        The kept ``(i1, i2, sep)`` sorted by i1 (then by sep, i2).
    """
    i1 = np.ascontiguousarray(i1, dtype=np.int64)
    i2 = np.ascontiguousarray(i2, dtype=np.int64)
    sep = np.ascontiguousarray(sep, dtype=np.float64)
    if not (i1.shape == i2.shape == sep.shape) or i1.ndim != 1:
        raise InputError("i1, i2 and sep must be 1-d arrays of equal length")
    if len(i1) == 0:
        return MatchResult(i1, i2, sep)
    if i1.min() < 0 or i2.min() < 0:
        raise InputError("pair indices must be non-negative")
    if _sorted_by_i1_sep_i2(i1, i2, sep):
        # Already in (i1, sep, i2) order (as pairs_within returns): a stable sort on sep
        # alone yields (sep, i1, i2) order, cheaper than a three-key lexsort.
        order = np.argsort(sep, kind="stable")
        keep = _greedy_scan(order, i1, i2, int(i1.max()) + 1, int(i2.max()) + 1)
        return MatchResult(i1[keep], i2[keep], sep[keep])
    order = np.lexsort((i2, i1, sep))
    keep = _greedy_scan(order, i1, i2, int(i1.max()) + 1, int(i2.max()) + 1)
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((i2[idx], sep[idx], i1[idx]))]
    return MatchResult(i1[idx], i2[idx], sep[idx])


def candidate_counts(i1: np.ndarray, i2: np.ndarray, n1: int, n2: int):
    """Number of candidate pairs of every row of each side.

    Returns
    -------
    (ndarray (n1,), ndarray (n2,)), int64
    """
    return (
        np.bincount(np.asarray(i1, dtype=np.int64), minlength=n1),
        np.bincount(np.asarray(i2, dtype=np.int64), minlength=n2),
    )


def one_to_one_within(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_arcsec: float
) -> MatchResult:
    """Greedy nearest-first one-to-one match of two catalogues within ``radius_arcsec``.

    The composition of :func:`pairs_within` and :func:`greedy_one_to_one`; same parameters as
    :func:`pairs_within`.
    """
    return greedy_one_to_one(*pairs_within(ra1, dec1, ra2, dec2, radius_arcsec))
