"""The likelihood-ratio core against independent answers: numerical integration, scipy's
multivariate normal, astropy's offsets, brute-force counts and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from skysense.catalog.radio import lr as L
from skysense.catalog.radio.config import ErrorSpec
from skysense.catalog.radio.identify import RadioIDSettings, cross_identify
from skysense.catalog.radio.pairs import pair_table
from skysense.errors import InputError


@pytest.mark.parametrize(
    "radio, optical, sys",
    [((1.0, 1.0, 0.0), (0.1, 0.1, 0.0), 0.3), ((2.0, 0.5, 30.0), (0.3, 0.2, 100.0), 0.0),
     ((0.7, 0.2, -75.0), (0.0, 0.0, 0.0), 0.5)],
)  # fmt: skip
def test_positional_density_integrates_to_one_over_the_plane(radio, optical, sys):
    r = L.ellipse_covariance(*radio)
    o = L.ellipse_covariance(*optical)
    c = [float(a + b) for a, b in zip(r, o)]
    c[0] += sys**2
    c[2] += sys**2
    h = 0.01
    x = np.arange(-15, 15, h) + h / 2
    xx, yy = np.meshgrid(x, x)
    f = L.positional_density(xx.ravel(), yy.ravel(), *[np.full(xx.size, v) for v in c])
    assert f.sum() * h * h == pytest.approx(1.0, abs=1e-6)
    # and it is the bivariate normal of scipy at a few points
    pts = np.array([[0.3, -0.2], [1.5, 0.7], [-2.0, 1.1]])
    ref = multivariate_normal([0, 0], [[c[0], c[1]], [c[1], c[2]]]).pdf(pts)
    got = L.positional_density(pts[:, 0], pts[:, 1], *[np.full(3, v) for v in c])
    np.testing.assert_allclose(got, ref, rtol=1e-12)


@given(a=st.floats(0.05, 5.0), ratio=st.floats(0.05, 1.0), pa=st.floats(-360, 360))
@settings(max_examples=60, deadline=None)
def test_ellipse_covariance_has_the_axes_as_eigenvalues_and_pa_east_of_north(a, ratio, pa):
    b = a * ratio
    cee, cen, cnn = L.ellipse_covariance(a, b, pa)
    m = np.array([[cee, cen], [cen, cnn]])
    w, v = np.linalg.eigh(m)
    np.testing.assert_allclose(w, [b * b, a * a], rtol=1e-9, atol=1e-12)
    if ratio < 0.95:  # the major axis points at PA (east of north), up to sign
        major = v[:, 1]
        t = np.radians(pa)
        assert abs(abs(major @ np.array([np.sin(t), np.cos(t)])) - 1) < 1e-6


def test_ellipse_covariance_pa_zero_is_north():
    cee, cen, cnn = L.ellipse_covariance(2.0, 1.0, 0.0)
    assert (cee, cen, cnn) == pytest.approx((1.0, 0.0, 4.0))
    cee, cen, cnn = L.ellipse_covariance(2.0, 1.0, 90.0)
    assert (cee, cnn) == pytest.approx((4.0, 1.0))


def test_tangent_offsets_match_astropy_spherical_offsets():
    rng = np.random.default_rng(3)
    ra0 = rng.uniform(0, 360, 50)
    dec0 = rng.uniform(-88, 88, 50)
    ra = ra0 + rng.normal(0, 5, 50) / 3600 / np.cos(np.radians(dec0))
    dec = dec0 + rng.normal(0, 5, 50) / 3600
    e, n = L.tangent_offsets_arcsec(ra0, dec0, ra, dec)
    de, dn = SkyCoord(ra0, dec0, unit="deg").spherical_offsets_to(SkyCoord(ra, dec, unit="deg"))
    np.testing.assert_allclose(e, de.arcsec, atol=1e-6)
    np.testing.assert_allclose(n, dn.arcsec, atol=1e-6)


@given(st.lists(st.floats(10, 30, allow_nan=False), min_size=1, max_size=40))
@settings(max_examples=80, deadline=None)
def test_cell_index_agrees_with_a_loop(mags):
    edges = np.arange(12.0, 28.01, 1.5)
    got = L.cell_index(np.array(mags), edges)
    for m, g in zip(mags, got):
        want = -1
        for i in range(len(edges) - 1):
            if edges[i] <= m < edges[i + 1] or (i == len(edges) - 2 and m == edges[-1]):
                want = i
        assert g == want


def test_cell_index_with_colour_and_missing_values():
    got = L.cell_index([15.0, 15.0, np.nan, 15.0], [14, 16, 18], [0.1, 1.2, 0.1, np.nan], [0, 1, 2])
    assert got.tolist() == [0, 2, -1, -1]
    with pytest.raises(InputError, match="increasing"):
        L.cell_index([1.0], [3, 2])


def test_reliability_by_hand():
    ri = np.array([0, 0, 1, 2, 2, 2])
    lr = np.array([3.0, 1.0, 0.5, 10.0, 0.0, 2.0])
    q0 = 0.8
    got = L.reliability(ri, lr, q0)
    want = [3 / 4.2, 1 / 4.2, 0.5 / 0.7, 10 / 12.2, 0.0, 2 / 12.2]
    np.testing.assert_allclose(got, want)
    assert L.best_candidates(ri, lr).tolist() == [0, 2, 3]


def test_fit_q0_recovers_the_fraction_of_blanks():
    rng = np.random.default_rng(0)
    n, q0, sigma, density = 20000, 0.6, 1.0, 0.01  # per arcsec^2
    # Nearest background object: P(d > r) = exp(-pi density r^2)
    bg = np.sqrt(rng.exponential(1 / (np.pi * density), n))
    rand = np.sqrt(rng.exponential(1 / (np.pi * density), n))
    has = rng.uniform(size=n) < q0
    true = sigma * np.sqrt(rng.exponential(2.0, n))  # Rayleigh offsets
    near = np.where(has, np.minimum(bg, true), bg)
    fit = L.fit_q0(near, rand, np.linspace(0.5, 5, 10))
    assert fit.q0 == pytest.approx(q0, abs=0.02)
    assert fit.sigma_arcsec == pytest.approx(sigma, rel=0.1)
    fixed = L.fit_q0(near, rand, np.linspace(0.5, 5, 10), sigma_arcsec=1.0)
    assert fixed.q0 == pytest.approx(q0, abs=0.02)


def test_choose_threshold_balances_completeness_and_reliability():
    lr = np.array([100.0, 50.0, 10.0, 2.0, 1.0, 0.5, 0.1])
    rel = np.array([0.99, 0.98, 0.9, 0.7, 0.5, 0.3, 0.05])
    t = L.choose_threshold(lr, rel, q0=0.6, n_radio=10)
    # By hand, for every threshold: C = 1 - sum(rel below)/(Q0 N), R = 1 - sum(1-rel above)/N_above
    best = None
    for thr in np.sort(lr):
        keep = lr >= thr
        c = 1 - rel[~keep].sum() / 6.0
        r = 1 - (1 - rel[keep]).sum() / keep.sum()
        if best is None or abs(c - r) < best[0]:
            best = (abs(c - r), thr, c, r, keep.sum(), (1 - rel[keep]).sum())
    assert t.lr == best[1]
    assert (t.completeness, t.reliability, t.n_ids, t.expected_false) == pytest.approx(best[2:])


def test_random_positions_lie_in_the_annulus():
    ra, dec = np.array([10.0, 200.0, 359.999]), np.array([-60.0, 5.0, 0.0])
    rra, rdec = L.random_positions(np.repeat(ra, 200), np.repeat(dec, 200), 20.0, 50.0, 1)
    sep = (
        SkyCoord(np.repeat(ra, 200), np.repeat(dec, 200), unit="deg")
        .separation(SkyCoord(rra, rdec, unit="deg"))
        .arcsec
    )
    assert sep.min() >= 20.0 - 1e-6 and sep.max() <= 50.0 + 1e-6


# -- brute force: n(m), q(m) and LR on a small field -----------------------------------------


def _small_field(seed=5):
    rng = np.random.default_rng(seed)
    n_opt, n_rad = 600, 12
    opt = pd.DataFrame({
        "ra": 30 + rng.uniform(0, 0.1, n_opt), "dec": -5 + rng.uniform(0, 0.1, n_opt),
        "m": rng.uniform(16, 22, n_opt), "e": rng.uniform(0.05, 0.3, n_opt),
    })  # fmt: skip
    host = rng.choice(n_opt, n_rad, replace=False)
    rra = opt.ra.to_numpy()[host] + rng.normal(0, 1, n_rad) / 3600
    rdec = opt.dec.to_numpy()[host] + rng.normal(0, 1, n_rad) / 3600
    return opt, rra, rdec


def test_background_and_counterpart_counts_and_lr_equal_brute_force():
    opt, rra, rdec = _small_field()
    s = RadioIDSettings(search_radius_arcsec=4.0, background_inner_arcsec=8.0,
                        background_outer_arcsec=30.0, mag_edges=(16, 18, 20, 22),
                        systematic_arcsec=0.2, q0=0.9)  # fmt: skip
    # Pairs by brute force (astropy separations, a double loop), then the method.
    oc = SkyCoord(opt.ra, opt.dec, unit="deg")
    rows = []
    for i in range(len(rra)):
        sep = SkyCoord(rra[i], rdec[i], unit="deg").separation(oc).arcsec
        for j in np.flatnonzero(sep <= 30.0):
            rows.append((i, j, sep[j], opt.ra[j], opt.dec[j], opt.m[j], opt.e[j]))
    raw = pd.DataFrame(
        rows, columns=["query", "opt_row", "sep_arcsec", "opt_ra", "opt_dec", "m", "e"]
    )
    pairs = pair_table(raw, rra, rdec, "m", ErrorSpec("circular", ("e",)))
    radio_cov = L.ellipse_covariance(np.full(12, 1.0), np.full(12, 0.8), np.full(12, 40.0))
    res = cross_identify(pairs, pairs.iloc[:0], 12, radio_cov, s)

    area = 12 * np.pi * (30.0**2 - 8.0**2)
    n_bf = np.zeros(3)
    tot_bf = np.zeros(3)
    for _i, j, sep, *_ in rows:
        k = min(int((opt.m[j] - 16) // 2), 2)
        if 8.0 <= sep <= 30.0:
            n_bf[k] += 1
        if sep <= 4.0:
            tot_bf[k] += 1
    np.testing.assert_allclose(res.model.n, n_bf / area)
    np.testing.assert_allclose(res.model.total, tot_bf)
    real = np.clip(tot_bf - n_bf / area * 12 * np.pi * 16.0, 0, None)
    np.testing.assert_allclose(res.model.q, real / real.sum() * 0.9)

    # LR of a handful of candidates, computed directly.
    c = res.candidates
    assert len(c) >= 5
    for _, row in c.head(6).iterrows():
        i, j = int(row["query"]), int(row["opt_row"])
        e, n = SkyCoord(rra[i], rdec[i], unit="deg").spherical_offsets_to(
            SkyCoord(opt.ra[j], opt.dec[j], unit="deg")
        )
        cov = np.array([[radio_cov[0][i], radio_cov[1][i]], [radio_cov[1][i], radio_cov[2][i]]])
        cov += np.eye(2) * (opt.e[j] ** 2 + 0.2**2)
        f = multivariate_normal([0, 0], cov).pdf([e.arcsec, n.arcsec])
        k = min(int((opt.m[j] - 16) // 2), 2)
        want = res.model.q[k] * f / (n_bf[k] / area)
        assert row["lr"] == pytest.approx(want, rel=1e-6)
        same = c[c["query"] == i]
        assert row["reliability"] == pytest.approx(row["lr"] / (same["lr"].sum() + 0.1), rel=1e-9)


def test_settings_are_checked():
    with pytest.raises(InputError, match="radii"):
        RadioIDSettings(search_radius_arcsec=10, background_inner_arcsec=5)
    with pytest.raises(InputError, match="two search radii"):
        RadioIDSettings(
            search_radius_arcsec=5, background_inner_arcsec=10, background_outer_arcsec=15
        )
    with pytest.raises(InputError, match="q0"):
        RadioIDSettings(q0=1.5)


def test_masterlist_columns_by_hand():
    from skysense.catalog.radio.identify import RadioIDResult, masterlist_columns

    # radio 0 -> object 5 (accepted, rel .9); radio 1 -> object 5 too (rel .8): one object, two
    # radio sources; radio 2 -> object 7, with another candidate (object 8) also above the
    # threshold: ambiguous; radio 3 -> object 9 below the threshold.
    cand = pd.DataFrame({
        "query": [0, 1, 2, 2, 3], "opt_row": [5, 5, 7, 8, 9],
        "lr": [10.0, 8.0, 6.0, 3.0, 0.5], "reliability": [0.9, 0.8, 0.6, 0.3, 0.2],
        "best": [True, True, True, False, True], "accepted": [True, True, True, False, False],
    })  # fmt: skip
    thr = L.Threshold(2.0, 0.9, 0.9, 3, 0.7)
    res = RadioIDResult(cand, None, thr, 4)
    out = masterlist_columns(res, 10, "x_1ghz", np.array(["a", "b", "c", "d"]),
                             np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.1, 0.2, 0.3, 0.4]))  # fmt: skip
    assert out["radio_id"].fillna("-").tolist() == list("-----a-c--")
    np.testing.assert_allclose(out["f_x_1ghz"].to_numpy()[[5, 7]], [1.0, 3.0])
    np.testing.assert_allclose(out["ferr_x_1ghz"].to_numpy()[[5, 7]], [0.1, 0.3])
    np.testing.assert_allclose(out["reliability"].to_numpy()[[5, 7]], [0.9, 0.6])
    assert np.isnan(out["lr"].to_numpy()[[0, 8, 9]]).all()
    assert np.flatnonzero(out["flag_radio_multi"]).tolist() == [5, 7]
