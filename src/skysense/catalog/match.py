"""Sky matching: every pair within a radius, and greedy nearest-first one-to-one matching.

Pure functions on arrays of degrees; no files, no Dask.

The pair criterion is exact and documented: ``(i, j)`` is a pair when
``angular_sep_arcsec(ra1[i], dec1[i], ra2[j], dec2[j]) <= radius_arcsec`` in float64 (Vincenty
formula). The candidate search (declination zones at least one radius tall; both
catalogues counting-sorted by zone, then by RA within each zone; each query zone swept
against its own and the two adjacent zones of the other catalogue with one monotone pointer
each, in parallel numba kernels, counting then filling) is deliberately a little generous (relative slack 1e-7 on the
chord). Each candidate's separation is computed in numba from unit vectors (accurate to
~1e-11 arcsec); any pair within a relative 1e-6 of the radius is re-decided by
``angular_sep_arcsec`` itself, so the result equals a brute-force search with that function,
at the boundary too. Right ascension wraps at 0/360 deg (any real RA is accepted); caps
containing a pole, or wider than 180 deg in RA, search their whole zones.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    "pair_separations",
    "separation_counts",
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


# Candidate search: both catalogues are sorted by (declination zone, RA), with zones at least
# one radius tall, so a position's candidates lie in its own zone and the two next to it. Each
# query zone sweeps the three zones of catalogue 2 with one pointer each (a merge join: the RA
# windows of queries sorted by RA advance monotonically), so the search costs a few comparisons
# per row, not a binary search per row and zone, and touches memory sequentially.
_MIN_ZONE_DEG = 0.1 / 3600.0
# Relative widening of a zone's RA half-width, far above the rounding of the comparisons.
_DRA_SLACK = 1e-9


@numba.njit(parallel=True, cache=True, nogil=True)
def _zone_sort(ra, dec, zone_deg, zmin, nz):
    """Rows in (zone, RA) order: ``order`` (n,), ``start`` (nz + 1,) first row of each zone
    (relative to ``zmin``), RA reduced to [0, 360) and unit vectors (n, 3) in that order."""
    n = ra.shape[0]
    zone = np.empty(n, dtype=np.int64)
    for i in numba.prange(n):
        zone[i] = np.int64(np.floor((dec[i] + 90.0) / zone_deg)) - zmin
    start = np.zeros(nz + 1, dtype=np.int64)
    for i in range(n):
        start[zone[i] + 1] += 1
    for z in range(nz):
        start[z + 1] += start[z]
    cursor = start[:nz].copy()
    order = np.empty(n, dtype=np.int64)
    ra_s = np.empty(n, dtype=np.float64)
    dec_s = np.empty(n, dtype=np.float64)
    for i in range(n):
        # A stable counting sort by zone that carries the positions along: the input is read
        # in order and each zone is written in order, instead of gathering ra[order[k]] at
        # random afterwards (a cache miss per row once the arrays outgrow the cache).
        z = zone[i]
        c = cursor[z]
        order[c] = i
        ra_s[c] = ra[i] % 360.0
        dec_s[c] = dec[i]
        cursor[z] = c + 1
    xyz = np.empty((n, 3), dtype=np.float64)
    for z in numba.prange(nz):
        a = start[z]
        b = start[z + 1]
        if b - a > 1:
            o = np.argsort(ra_s[a:b], kind="mergesort")
            seg_o = order[a:b].copy()
            seg_r = ra_s[a:b].copy()
            seg_d = dec_s[a:b].copy()
            for k in range(b - a):
                order[a + k] = seg_o[o[k]]
                ra_s[a + k] = seg_r[o[k]]
                dec_s[a + k] = seg_d[o[k]]
        for k in range(a, b):
            rr = np.radians(ra_s[k])
            d = np.radians(dec_s[k])
            c = np.cos(d)
            xyz[k, 0] = c * np.cos(rr)
            xyz[k, 1] = c * np.sin(rr)
            xyz[k, 2] = np.sin(d)
    return order, start, ra_s, xyz


@numba.njit(cache=True, nogil=True)
def _zone_dra(z, zmin, zone_deg, r_deg):
    """RA half-width (deg) covering every cap of radius ``r_deg`` centred in zone ``z``, or
    -1 when such a cap may reach a pole or span 180 deg (the whole zone is searched)."""
    d_lo = (z + zmin) * zone_deg - 90.0
    d_hi = d_lo + zone_deg
    top = max(abs(d_lo), abs(d_hi))
    if top + r_deg >= 90.0:
        return -1.0
    s = np.sin(np.radians(r_deg)) / np.cos(np.radians(top))
    if s >= 1.0:
        return -1.0
    dra = np.degrees(np.arcsin(s)) * (1.0 + _DRA_SLACK) + 1e-12
    return -1.0 if dra >= 180.0 else dra


@numba.njit(cache=True, nogil=True)
def _test(k, m, xyz1, xyz2, chord2, store, pos, out_i1, out_i2, out_sep, q1, o2):
    """Test candidate ``m`` of query ``k``; store it at ``pos`` if within the chord."""
    x1 = xyz1[k, 0]
    y1 = xyz1[k, 1]
    z1 = xyz1[k, 2]
    dx = xyz2[m, 0] - x1
    dy = xyz2[m, 1] - y1
    dz = xyz2[m, 2] - z1
    if dx * dx + dy * dy + dz * dz > chord2:
        return pos
    if store:
        cx = y1 * xyz2[m, 2] - z1 * xyz2[m, 1]
        cy = z1 * xyz2[m, 0] - x1 * xyz2[m, 2]
        cz = x1 * xyz2[m, 1] - y1 * xyz2[m, 0]
        dot = x1 * xyz2[m, 0] + y1 * xyz2[m, 1] + z1 * xyz2[m, 2]
        out_i1[pos] = q1
        out_i2[pos] = o2[m]
        out_sep[pos] = np.degrees(np.arctan2(np.sqrt(cx * cx + cy * cy + cz * cz), dot)) * 3600.0
    return pos + 1


@numba.njit(parallel=True, cache=True, nogil=True)
def _sweep(ra1, xyz1, start1, order1, ra2, xyz2, start2, order2, zmin, zone_deg, r_deg, chord2,
           counts, starts, total):  # fmt: skip
    """Candidates of every query (sorted by zone, RA). With ``starts`` empty, count them into
    ``counts``; else write query ``k``'s candidates from ``starts[k]`` on."""
    nz = start1.shape[0] - 1
    store = starts.shape[0] > 0
    out_i1 = np.empty(total, dtype=np.int64)
    out_i2 = np.empty(total, dtype=np.int64)
    out_sep = np.empty(total, dtype=np.float64)
    for z in numba.prange(nz):
        a1 = start1[z]
        b1 = start1[z + 1]
        if a1 == b1:
            continue
        dra = _zone_dra(z, zmin, zone_deg, r_deg)
        z_lo = max(z - 1, 0)
        z_hi = min(z + 1, nz - 1)
        ptr = np.empty(3, dtype=np.int64)
        for w in range(z_hi - z_lo + 1):
            ptr[w] = start2[z_lo + w]
        for k in range(a1, b1):
            pos = starts[k] if store else 0
            q1 = order1[k]
            x = ra1[k]
            lo = x - dra
            hi = x + dra
            for w in range(z_hi - z_lo + 1):
                a2 = start2[z_lo + w]
                b2 = start2[z_lo + w + 1]
                if dra < 0.0:  # the whole zone
                    for m in range(a2, b2):
                        pos = _test(k, m, xyz1, xyz2, chord2, store, pos, out_i1, out_i2,
                                    out_sep, q1, order2)  # fmt: skip
                    continue
                p = ptr[w]
                while p < b2 and ra2[p] < lo:
                    p += 1
                ptr[w] = p
                m = p
                while m < b2 and ra2[m] <= hi:
                    pos = _test(k, m, xyz1, xyz2, chord2, store, pos, out_i1, out_i2,
                                out_sep, q1, order2)  # fmt: skip
                    m += 1
                # The window wraps at RA 0/360 (it is narrower than 180 deg: no overlap).
                if lo < 0.0:
                    m = b2 - 1
                    while m >= a2 and ra2[m] >= lo + 360.0:
                        pos = _test(k, m, xyz1, xyz2, chord2, store, pos, out_i1, out_i2,
                                    out_sep, q1, order2)  # fmt: skip
                        m -= 1
                if hi > 360.0:
                    m = a2
                    while m < b2 and ra2[m] <= hi - 360.0:
                        pos = _test(k, m, xyz1, xyz2, chord2, store, pos, out_i1, out_i2,
                                    out_sep, q1, order2)  # fmt: skip
                        m += 1
            if not store:
                counts[k] = pos
    return out_i1, out_i2, out_sep


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


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (no copy). Numba types read-only and writable arrays apart, so
    :func:`_zone_sort`, which only reads its positions, gets them read-only whatever the caller
    passes (Arrow-backed columns are read-only) and is compiled for one signature, not two."""
    view = a.view()
    view.flags.writeable = False
    return view


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
    chord2 = (2.0 * np.sin(np.radians(r_deg) / 2.0) * (1.0 + _SLACK)) ** 2
    zone_deg = max(r_deg, _MIN_ZONE_DEG)
    # One zone numbering for both catalogues, dense between their extreme zones.
    z_all = np.floor((np.array([dec1.min(), dec1.max(), dec2.min(), dec2.max()]) + 90.0) / zone_deg)
    zmin, nz = int(z_all.min()), int(z_all.max() - z_all.min()) + 1
    order1, start1, ra1s, xyz1 = _zone_sort(_readonly(ra1), _readonly(dec1), zone_deg, zmin, nz)
    order2, start2, ra2s, xyz2 = _zone_sort(_readonly(ra2), _readonly(dec2), zone_deg, zmin, nz)
    args = (ra1s, xyz1, start1, order1, ra2s, xyz2, start2, order2, zmin, zone_deg, r_deg, chord2)
    counts_q = np.zeros(len(ra1), dtype=np.int64)
    _sweep(*args, counts_q, np.empty(0, dtype=np.int64), 0)
    # Each query's candidates go where its row comes in the output (rows in input order).
    counts = np.empty_like(counts_q)
    counts[order1] = counts_q
    offsets = np.zeros(len(ra1) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    i1, i2, sep = _sweep(*args, counts_q, offsets[:-1][order1], offsets[-1])
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


#: Rows of the first catalogue per declination band of :func:`pair_separations`.
BAND_ROWS = 2_000_000


def pair_separations(
    ra1: np.ndarray,
    dec1: np.ndarray,
    others: Sequence[tuple[np.ndarray, np.ndarray]],
    radius_arcsec: float,
    *,
    band_rows: int = BAND_ROWS,
) -> np.ndarray:
    """Separations of all pairs within ``radius_arcsec`` between a catalogue and the union of
    ``others``, in memory bounded by ``band_rows``.

    The same pairs as :func:`pairs_within` against the concatenation of ``others`` (hence the
    same separations, in another order), found declination band by band: each band holds at
    most about ``band_rows`` rows of the first catalogue and the rows of ``others`` within the
    radius of it (a pair's declinations differ by at most its separation), so neither the
    concatenation nor the search structures of whole catalogues are ever built.

    Parameters
    ----------
    ra1, dec1 : array_like (n,), deg
        First catalogue.
    others : sequence of (ra, dec) arrays, deg
        The catalogues matched against, as one.
    radius_arcsec : float
        Match radius, arcsec.
    band_rows : int
        Rows of the first catalogue per band.

    Returns
    -------
    ndarray (k,), float64, arcsec
        One separation per pair, ordered by band, then as :func:`pairs_within` orders them.
    """
    out = list(_band_separations(ra1, dec1, others, radius_arcsec, band_rows))
    return np.concatenate(out) if out else np.empty(0)


def separation_counts(
    ra1: np.ndarray,
    dec1: np.ndarray,
    others: Sequence[tuple[np.ndarray, np.ndarray]],
    radius_arcsec: float,
    edges_arcsec: np.ndarray,
    *,
    band_rows: int = BAND_ROWS,
) -> np.ndarray:
    """Histogram of the separations :func:`pair_separations` returns, band by band.

    Only one band's separations are held at a time, and counts add exactly, so the histogram
    of a catalogue cut into pieces (bands here, sky partitions in the tiled merge) is the sum
    of the pieces' histograms.

    Parameters
    ----------
    ra1, dec1, others, radius_arcsec, band_rows
        As for :func:`pair_separations`.
    edges_arcsec : ndarray (b + 1,), arcsec
        Bin edges (:func:`numpy.histogram`'s ``bins``).

    Returns
    -------
    ndarray (b,), int64
        Pairs per bin.
    """
    edges = np.asarray(edges_arcsec, dtype=np.float64)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for sep in _band_separations(ra1, dec1, others, radius_arcsec, band_rows):
        counts += np.histogram(sep, bins=edges)[0]
    return counts


def _band_separations(ra1, dec1, others, radius_arcsec, band_rows):
    """Yield the separations of :func:`pair_separations`, one declination band at a time."""
    radius = _check_radius(radius_arcsec)
    ra1, dec1 = check_positions(ra1, dec1, one_dim=True, label="catalogue 1")
    others = [
        check_positions(r, d, one_dim=True, label=f"catalogue {k + 2}")
        for k, (r, d) in enumerate(others)
    ]
    if len(ra1) == 0 or not others:
        return
    n_bands = max(1, -(-len(ra1) // max(int(band_rows), 1)))
    edges = np.quantile(dec1, np.linspace(0.0, 1.0, n_bands + 1)[1:-1]) if n_bands > 1 else []
    edges = np.concatenate([[-np.inf], np.unique(edges), [np.inf]])
    # Margin in declination: the radius, widened far beyond rounding.
    pad = radius / 3600.0 * (1.0 + 1e-6) + 1e-9
    for lo, hi in zip(edges[:-1], edges[1:]):
        q = np.flatnonzero((dec1 >= lo) & (dec1 < hi))
        if len(q) == 0:
            continue
        near = [np.flatnonzero((d >= dec1[q].min() - pad) & (d <= dec1[q].max() + pad))
                for _, d in others]  # fmt: skip
        ra2 = np.concatenate([r[i] for (r, _), i in zip(others, near)])
        dec2 = np.concatenate([d[i] for (_, d), i in zip(others, near)])
        yield pairs_within(ra1[q], dec1[q], ra2, dec2, radius).sep_arcsec


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
    """Nearest-first scan of the pairs ``order``; which of them (by position in ``order``)
    are kept."""
    used1 = np.zeros(n1, dtype=np.bool_)
    used2 = np.zeros(n2, dtype=np.bool_)
    keep = np.zeros(order.shape[0], dtype=np.bool_)
    for p in range(order.shape[0]):
        k = order[p]
        a = i1[k]
        b = i2[k]
        if used1[a] or used2[b]:
            continue
        used1[a] = True
        used2[b] = True
        keep[p] = True
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
    n1, n2 = int(i1.max()) + 1, int(i2.max()) + 1
    # A pair whose two rows have no other candidate is always kept, and shares no row with
    # any other pair: only the rest (a small fraction in practice) needs the global order.
    lone = _lone_pairs(i1, i2, n1, n2)
    rest = np.flatnonzero(~lone)
    if _sorted_by_i1_sep_i2(i1, i2, sep):
        # Already in (i1, sep, i2) order (as pairs_within returns): a stable sort on sep
        # alone yields (sep, i1, i2) order, cheaper than a three-key lexsort.
        order = rest[np.argsort(sep[rest], kind="stable")]
        keep = lone
        keep[order[_greedy_scan(order, i1, i2, n1, n2)]] = True
        return MatchResult(i1[keep], i2[keep], sep[keep])
    order = rest[np.lexsort((i2[rest], i1[rest], sep[rest]))]
    keep = lone
    keep[order[_greedy_scan(order, i1, i2, n1, n2)]] = True
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((i2[idx], sep[idx], i1[idx]))]
    return MatchResult(i1[idx], i2[idx], sep[idx])


@numba.njit(cache=True, nogil=True)
def _lone_pairs(i1, i2, n1, n2):
    """Pairs whose two rows appear in no other pair."""
    c1 = np.zeros(n1, dtype=np.int32)
    c2 = np.zeros(n2, dtype=np.int32)
    for k in range(i1.shape[0]):
        c1[i1[k]] += 1
        c2[i2[k]] += 1
    out = np.empty(i1.shape[0], dtype=np.bool_)
    for k in range(i1.shape[0]):
        out[k] = c1[i1[k]] == 1 and c2[i2[k]] == 1
    return out


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
