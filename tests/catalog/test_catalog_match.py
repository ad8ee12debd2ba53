"""Sky matching against brute force, a reference greedy step and the AT20G/SuperCOSMOS data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.catalog.match import (
    angular_sep_arcsec,
    greedy_one_to_one,
    one_to_one_within,
    pair_separations,
    pairs_within,
    self_pairs,
    separation_counts,
)
from skysense.errors import InputError


def independent_sep_arcsec(ra1, dec1, ra2, dec2):
    """Separation by astropy (Vincenty's formula), independent of skysense's own function."""
    c1 = SkyCoord(np.asarray(ra1, float) * u.deg, np.asarray(dec1, float) * u.deg)
    c2 = SkyCoord(np.asarray(ra2, float) * u.deg, np.asarray(dec2, float) * u.deg)
    return c1.separation(c2).to_value(u.arcsec)


def brute_pairs(ra1, dec1, ra2, dec2, radius_arcsec):
    """O(n*m) search with the documented criterion (contiguous arrays, no shortcuts)."""
    n, m = len(ra1), len(ra2)
    sep = independent_sep_arcsec(
        np.repeat(ra1, m), np.repeat(dec1, m), np.tile(ra2, n), np.tile(dec2, n)
    ).reshape(n, m)
    i, j = np.nonzero(sep <= radius_arcsec)
    return set(zip(i.tolist(), j.tolist()))


def reference_greedy(i1, i2, sep):
    """Plain-Python nearest-first one-to-one selection."""
    pairs = sorted(zip(sep.tolist(), i1.tolist(), i2.tolist()))
    used1, used2, kept = set(), set(), set()
    for _s, a, b in pairs:
        if a not in used1 and b not in used2:
            used1.add(a)
            used2.add(b)
            kept.add((a, b))
    return kept


def _clustered(rng, n_centres, n, spread_deg):
    # Centres on the awkward places: the poles, RA = 0/360, plus anywhere.
    ra_c = rng.choice([0.0, 1e-9, 359.9999999, 180.0, rng.uniform(0, 360)], n_centres)
    dec_c = rng.choice([90.0, -90.0, 89.9999, -89.9995, 0.0, rng.uniform(-90, 90)], n_centres)
    k = rng.integers(0, n_centres, n)
    dec = np.clip(dec_c[k] + rng.normal(0, spread_deg, n), -90.0, 90.0)
    ra = np.mod(
        ra_c[k] + rng.normal(0, spread_deg, n) / np.maximum(np.cos(np.radians(dec)), 1e-3), 360.0
    )
    return ra, dec


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    radius=st.floats(0.1, 60.0),
    n1=st.integers(0, 80),
    n2=st.integers(0, 80),
)
def test_pairs_within_equals_brute_force(seed, radius, n1, n2):
    rng = np.random.default_rng(seed)
    spread = radius / 3600.0 * rng.choice([0.5, 2.0, 10.0])
    ra1, dec1 = _clustered(rng, 4, n1, spread)
    ra2, dec2 = _clustered(rng, 4, n2, spread)
    # Exercise RA outside [0, 360) too: the same sky position.
    ra2 = ra2 + 360.0 * rng.integers(-1, 2, n2)
    i1, i2, sep = pairs_within(ra1, dec1, ra2, dec2, radius)
    assert set(zip(i1.tolist(), i2.tolist())) == brute_pairs(ra1, dec1, ra2, dec2, radius)
    np.testing.assert_allclose(
        sep, independent_sep_arcsec(ra1[i1], dec1[i1], ra2[i2], dec2[i2]), rtol=1e-9, atol=1e-9
    )
    assert np.all(sep <= radius)
    # Sorted by (i1, sep, i2).
    assert np.all(np.lexsort((i2, sep, i1)) == np.arange(len(i1)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_greedy_equals_reference(seed, n):
    rng = np.random.default_rng(seed)
    ra1, dec1 = _clustered(rng, 3, n, 2.0 / 3600)
    ra2, dec2 = _clustered(rng, 3, n + 5, 2.0 / 3600)
    cand = pairs_within(ra1, dec1, ra2, dec2, 5.0)
    got = greedy_one_to_one(*cand)
    assert set(zip(got.i1.tolist(), got.i2.tolist())) == reference_greedy(*cand)
    # Shuffled input gives the same answer.
    perm = rng.permutation(len(cand.i1))
    got2 = greedy_one_to_one(cand.i1[perm], cand.i2[perm], cand.sep_arcsec[perm])
    np.testing.assert_array_equal(got.i1, got2.i1)
    np.testing.assert_array_equal(got.i2, got2.i2)
    assert len(set(got.i1.tolist())) == len(got.i1) and len(set(got.i2.tolist())) == len(got.i2)


@pytest.mark.parametrize("ra0, dec0", [(0.0, -30.0), (200.0, 89.99), (10.0, -89.995)])
def test_dense_fields_equal_brute_force(ra0, dec0):
    """Hundreds of rows per zone (the zone sweep's pointers move), across RA = 0/360 and the
    poles; the greedy step (with its shortcut for lone pairs) equals the reference."""
    rng = np.random.default_rng(int(ra0))
    n = 1500
    dec = np.clip(dec0 + rng.uniform(-0.01, 0.01, n), -90, 90)
    ra = ra0 + rng.uniform(-0.01, 0.01, n) / np.maximum(np.cos(np.radians(dec)), 1e-3)
    ra2 = ra[::2] + rng.normal(0, 1.0 / 3600, len(ra[::2]))
    dec2 = np.clip(dec[::2] + rng.normal(0, 1.0 / 3600, len(ra2)), -90, 90)
    ra2 = np.concatenate([ra2, rng.uniform(ra0 - 0.01, ra0 + 0.01, 500)])
    dec2 = np.concatenate([dec2, np.clip(dec0 + rng.uniform(-0.01, 0.01, 500), -90, 90)])
    cand = pairs_within(ra, dec, ra2, dec2, 4.0)
    assert set(zip(cand.i1.tolist(), cand.i2.tolist())) == brute_pairs(ra, dec, ra2, dec2, 4.0)
    assert len(cand.i1) > 800
    got = greedy_one_to_one(*cand)
    assert set(zip(got.i1.tolist(), got.i2.tolist())) == reference_greedy(*cand)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    radius=st.floats(0.5, 60.0),
    n1=st.integers(0, 60),
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    band_rows=st.integers(1, 30),
)
def test_pair_separations_equal_brute_force_in_bands(seed, radius, n1, sizes, band_rows):
    # Clustered on the poles and RA = 0/360, cut into bands of a few rows: every pair with
    # the union of the other catalogues is found once, whatever band its first row is in.
    rng = np.random.default_rng(seed)
    ra1, dec1 = _clustered(rng, 3, n1, radius / 3600 * 3)
    others = [_clustered(rng, 3, m, radius / 3600 * 3) for m in sizes]
    ra2 = np.concatenate([r for r, _ in others])
    dec2 = np.concatenate([d for _, d in others])
    got = np.sort(pair_separations(ra1, dec1, others, radius, band_rows=band_rows))
    expected = brute_pairs(ra1, dec1, ra2, dec2, radius)
    assert len(got) == len(expected)
    want = np.sort(independent_sep_arcsec(*(np.array(x) for x in zip(
        *[(ra1[i], dec1[i], ra2[j], dec2[j]) for i, j in expected])))) if expected else []  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # The histogram counted band by band (what the merge plan keeps) is that of all pairs.
    edges = np.linspace(0.0, radius, 11)
    counts = separation_counts(ra1, dec1, others, radius, edges, band_rows=band_rows)
    np.testing.assert_array_equal(counts, np.histogram(got, bins=edges)[0])
    assert counts.sum() == len(expected)


def test_greedy_ties_are_deterministic():
    # Equal separations: the lower i1, then the lower i2 wins.
    i1 = np.array([1, 0, 0, 1])
    i2 = np.array([0, 0, 1, 1])
    sep = np.array([1.0, 1.0, 1.0, 1.0])
    got = greedy_one_to_one(i1, i2, sep)
    assert list(zip(got.i1.tolist(), got.i2.tolist())) == [(0, 0), (1, 1)]


def test_pair_exactly_at_radius_is_kept():
    rng = np.random.default_rng(3)
    ra1, dec1 = rng.uniform(0, 360, 50), rng.uniform(-89, 89, 50)
    ra2 = ra1 + rng.uniform(-1e-3, 1e-3, 50)
    dec2 = dec1 + rng.uniform(-1e-3, 1e-3, 50)
    sep = angular_sep_arcsec(ra1, dec1, ra2, dec2)
    for k in range(50):
        i1, i2, _ = pairs_within(
            ra1[k : k + 1], dec1[k : k + 1], ra2[k : k + 1], dec2[k : k + 1], sep[k]
        )
        assert len(i1) == 1
        below = np.nextafter(sep[k], 0)
        i1, _, _ = pairs_within(
            ra1[k : k + 1], dec1[k : k + 1], ra2[k : k + 1], dec2[k : k + 1], below
        )
        assert len(i1) == 0


def test_hand_checked_cases():
    # 1 arcsec apart across RA = 0/360 on the equator, and across the north pole.
    d = 1.0 / 3600
    i1, i2, sep = pairs_within([359.99999 + 0.0], [0.0], [0.00001 + d - 2e-5], [0.0], 1.5)
    assert list(i1) == [0] and list(i2) == [0]
    np.testing.assert_allclose(sep, 1.0, rtol=1e-9)
    i1, i2, sep = pairs_within([0.0], [90 - d / 2], [180.0], [90 - d / 2], 1.0 + 1e-9)
    np.testing.assert_allclose(sep, 1.0, rtol=1e-9)
    assert len(i1) == 1


def test_empty_and_self_pairs():
    i1, i2, sep = pairs_within([], [], [1.0], [1.0], 1.0)
    assert len(i1) == len(i2) == len(sep) == 0
    i, j, sep = self_pairs([10.0, 10.0, 10.0 + 0.5 / 3600], [0.0, 0.0, 0.0], 1.0)
    assert set(zip(i.tolist(), j.tolist())) == {(0, 1), (0, 2), (1, 2)}


def test_read_only_and_writable_inputs_share_one_compiled_zone_sort():
    # Arrow-backed columns are read-only arrays, a separate numba type: the parallel zone sort
    # must not be compiled a second time for them, and must give the same pairs.
    import pyarrow as pa

    from skysense.catalog import match

    rng = np.random.default_rng(11)
    ra, dec = rng.uniform(10, 10.02, 300), rng.uniform(-5, -4.98, 300)
    ro_ra, ro_dec = pa.array(ra).to_numpy(), pa.array(dec).to_numpy()
    assert not ro_ra.flags.writeable and not ro_dec.flags.writeable
    writable = pairs_within(ra, dec, ra[::-1].copy(), dec[::-1].copy(), 3.0)
    read_only = pairs_within(ro_ra, ro_dec, ro_ra[::-1], ro_dec[::-1], 3.0)
    for a, b in zip(writable, read_only):
        np.testing.assert_array_equal(a, b)
    assert len(writable.i1) > 300  # every self-pair and some neighbours
    assert len(match._zone_sort.signatures) == 1
    assert ra.flags.writeable  # the caller's arrays are left as they were


@pytest.mark.parametrize(
    "ra, dec",
    [([np.nan], [0.0]), ([1.0], [91.0]), ([np.inf], [0.0]), ([1.0, 2.0], [0.0])],
)
def test_bad_positions_name_the_row(ra, dec):
    with pytest.raises(InputError):
        pairs_within(ra, dec, [1.0], [0.0], 1.0)
    with pytest.raises(InputError, match="radius"):
        pairs_within([1.0], [0.0], [1.0], [0.0], -1.0)


def _sexagesimal(fields):
    h, m, s = (float(x) for x in fields[:3])
    return h, m, s


def read_at20g(path):
    """RA h m s = whitespace fields 2-4, Dec d m s = fields 5-7 (a "-00" degree is negative)."""
    ra, dec = [], []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) < 7:
            continue
        h, m, s = _sexagesimal(f[1:4])
        ra.append(15.0 * (h + m / 60 + s / 3600))
        sign = -1.0 if f[4].startswith("-") else 1.0
        d, dm, ds = abs(float(f[4])), float(f[5]), float(f[6])
        dec.append(sign * (d + dm / 60 + ds / 3600))
    return np.array(ra), np.array(dec)


@pytest.mark.acceptance
def test_at20g_against_supercosmos(shared_data):
    ra1, dec1 = read_at20g(shared_data / "crossmatch" / "at20g_bss_table2.dat")
    assert len(ra1) == 320
    sc = pd.read_csv(shared_data / "crossmatch" / "supercosmos_near_bss.csv")
    ra2, dec2 = sc["RA"].to_numpy(float), sc["Dec"].to_numpy(float)
    expected = {1.0: 84, 2.0: 109, 5.0: 123, 40.0: 169}
    for radius, n_sources in expected.items():
        i1, i2, _ = pairs_within(ra1, dec1, ra2, dec2, radius)
        assert set(zip(i1.tolist(), i2.tolist())) == brute_pairs(ra1, dec1, ra2, dec2, radius)
        assert len(np.unique(i1)) == n_sources
        matched = one_to_one_within(ra1, dec1, ra2, dec2, radius)
        assert len(matched.i1) <= n_sources
