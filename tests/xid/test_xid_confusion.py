"""The correlated confusion term against dense brute force on tiny tiles (#18 item 2)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from skysense.errors import InputError
from skysense.xid.confusion import ConfusionField, beam_stamp, confusion_covariance
from skysense.xid.diagnostics import summarise_convergence
from skysense.xid.model import (
    BackgroundPrior,
    ConfusionPrior,
    GaussianBeam,
    band_model,
    pointing_matrix,
)
from skysense.xid.sampler import confusion_shift, sample_band

BEAM = GaussianBeam(18.15)
PIX = 6.0


def _tile(size=10, nsrc=3, amp=2.0, noise=1.0, seed=0, mask=None):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    px, py = xx.ravel(), yy.ravel()
    if mask is not None:
        keep = mask.ravel()
        px, py = px[keep], py[keep]
    sx = rng.uniform(2, size - 3, nsrc)
    sy = rng.uniform(2, size - 3, nsrc)
    a = pointing_matrix(sx, sy, px, py, BEAM, PIX)
    stamp = beam_stamp(BEAM, PIX)
    k = confusion_covariance(stamp, px, py)
    sig = noise * rng.uniform(0.8, 1.25, px.size)  # non-uniform instrumental noise
    f = rng.uniform(10, 30, nsrc)
    g = amp * np.linalg.cholesky(k + 1e-10 * np.eye(px.size)) @ rng.standard_normal(px.size)
    d = a @ f + 0.5 + g + sig * rng.standard_normal(px.size)
    return a, d, sig, px, py, stamp, k, f


def test_fft_covariance_is_the_dense_beam_autocorrelation():
    # circulant embedding: the FFT operator's covariance on the fitted pixels equals the
    # beam autocorrelation summed directly over an unbounded grid (no wrap-around), also
    # for a masked, non-rectangular pixel set
    mask = np.ones((9, 7), bool)
    mask[3:5, 2:4] = False
    yy, xx = np.nonzero(mask)
    stamp = beam_stamp(BEAM, PIX)
    fld = ConfusionField(stamp, xx, yy, np.ones(xx.size))
    cols = np.empty((xx.size, fld.n))
    for j in range(fld.n):
        e = np.zeros(fld.n)
        e[j] = 1.0
        cols[:, j] = fld.field(e.reshape(fld.shape))
    dense = confusion_covariance(stamp, xx, yy)
    np.testing.assert_allclose(cols @ cols.T, dense, atol=1e-12)
    assert np.allclose(np.diag(dense), 1.0)
    assert 0.3 < dense[0, 1] < 0.99  # neighbours correlated over the beam


def test_white_field_draw_is_the_exact_conditional():
    # z | r has precision I + c^2 F^T W F: the draws' mean and covariance of the field on
    # the pixels match the dense Gaussian conditional (non-uniform noise: the CG path)
    a, d, sig, px, py, stamp, k, _ = _tile(size=7, nsrc=1, seed=3)
    fld = ConfusionField(stamp, px, py, sig)
    amp = 1.5
    r = d - d.mean()
    c = amp**2 * k
    w = np.diag(1.0 / sig**2)
    post_cov = np.linalg.inv(np.linalg.inv(c + 1e-9 * np.eye(len(r))) + w)
    post_mean = post_cov @ (w @ r)
    rng = np.random.default_rng(0)
    z = np.zeros(fld.shape)
    g = []
    for _ in range(4000):  # a Markov chain (pseudo-data off the fitted pixels), not iid
        z = fld.draw_white(r, amp, z, rng)
        g.append(amp * fld.field(z))
    g = np.array(g[100:])
    sd = np.sqrt(np.diag(post_cov))
    assert np.max(np.abs(g.mean(0) - post_mean) / sd) < 5 / np.sqrt(4000) * 1.6
    np.testing.assert_allclose(g.std(0), sd, rtol=0.06)


def _dense_posterior(a, d, sig, k, amp, bkg):
    """Exact Gaussian posterior of (f, B): flat fluxes, Normal background, C = N + c^2 K."""
    a = a.toarray()
    x = np.hstack([a, np.ones((a.shape[0], 1))])
    ci = np.linalg.inv(np.diag(sig**2) + amp**2 * k)
    prec = x.T @ ci @ x
    prec[-1, -1] += 1.0 / bkg.sigma**2
    cov = np.linalg.inv(prec)
    mean = cov @ (x.T @ ci @ d + np.r_[np.zeros(a.shape[1]), bkg.mu / bkg.sigma**2])
    return mean, np.sqrt(np.diag(cov))


def _model(a, d, sig, px, py, stamp, conf):
    n = a.shape[1]
    return band_model(
        "spire_250",
        a,
        d,
        sig,
        flux_lower=np.full(n, -500.0),
        flux_upper=np.full(n, 500.0),
        bkg_prior=BackgroundPrior(0.0, 3.0),
        conf_prior=conf,
        pixel_x=px,
        pixel_y=py,
        beam_stamp=stamp,
    )


def test_fixed_amplitude_posterior_matches_dense_likelihood():
    a, d, sig, px, py, stamp, k, _ = _tile(size=12, nsrc=3, amp=2.0, seed=1)
    amp = 2.0
    m = _model(a, d, sig, px, py, stamp, ConfusionPrior("none", fixed=amp, correlated=True))
    post = sample_band(m, n_samples=3000, n_warmup=300, n_chains=2, random_state=0)
    mean, sd = _dense_posterior(a, d, sig, k, amp, m.bkg_prior)
    f = post.flux.reshape(-1, 3)
    _, ess, _ = summarise_convergence(post.flux)
    assert ess.min() > 50  # fluxes and field are coupled: a few % of the draws are effective
    # Monte Carlo error of the mean: sd / sqrt(ESS); 4 of them
    tol = 4.0 * sd[:3] / np.sqrt(ess)
    assert np.all(np.abs(f.mean(0) - mean[:3]) < tol), (f.mean(0), mean[:3], tol)
    np.testing.assert_allclose(f.std(0), sd[:3], rtol=0.15)
    assert abs(post.bkg.mean() - mean[3]) < 0.5 * sd[3]
    # the background shares the constant offset with the field's mean (joint moves of both)
    assert post.bkg.std() == pytest.approx(sd[3], rel=0.15)
    # with the correlated field ignored (white, amplitude 0) the widths are narrower: the
    # correlated term is what the data need here
    _, sd0 = _dense_posterior(a, d, sig, k, 0.0, m.bkg_prior)
    assert np.all(sd0[:3] < 0.9 * sd[:3])


def test_sampled_amplitude_matches_brute_force_marginal():
    # posterior of the amplitude c on a grid: fluxes (flat) and background (Normal)
    # integrated out of the dense Gaussian likelihood, HalfCauchy(0.5) prior... scale 3 here
    a, d, sig, px, py, stamp, k, _ = _tile(size=12, nsrc=2, amp=2.0, seed=2)
    conf = ConfusionPrior("halfcauchy", 3.0, correlated=True)
    m = _model(a, d, sig, px, py, stamp, conf)
    # The field is off for the first half of the warm-up, so the warm-up is long enough for the
    # amplitude to settle (500 left seed 1 at 2.5 Monte Carlo standard errors; seeds 2-4 agree).
    post = sample_band(m, n_samples=3000, n_warmup=2000, n_chains=2, random_state=1)
    x = np.hstack([a.toarray(), np.ones((len(d), 1))])
    p0 = np.diag([0.0, 0.0, 1.0 / 9.0])
    grid = np.linspace(0.05, 6.0, 400)
    lp = []
    for c in grid:
        cov = np.diag(sig**2) + c**2 * k
        ci = np.linalg.inv(cov)
        h = x.T @ ci @ x + p0
        bvec = x.T @ ci @ d
        lp.append(
            -0.5 * np.linalg.slogdet(cov)[1]
            - 0.5 * np.linalg.slogdet(h)[1]
            - 0.5 * (d @ ci @ d - bvec @ np.linalg.solve(h, bvec))
            - np.log1p((c / 3.0) ** 2)
        )
    pw = np.exp(np.array(lp) - logsumexp(lp))
    cdf = np.cumsum(pw)
    med = grid[np.searchsorted(cdf, 0.5)]
    mean = np.sum(pw * grid)
    sd = np.sqrt(np.sum(pw * (grid - mean) ** 2))
    ours = post.sigma_conf.ravel()
    assert abs(np.median(ours) - med) < 0.15 * sd, (np.median(ours), med, sd)
    assert ours.std() == pytest.approx(sd, rel=0.15)


def test_confusion_shift_is_the_least_squares_attribution():
    a, d, sig, px, py, stamp, k, _ = _tile(size=10, nsrc=3, seed=4)
    m = _model(a, d, sig, px, py, stamp, ConfusionPrior("none", fixed=1.0, correlated=True))
    g = np.random.default_rng(5).standard_normal(len(d))
    ad = a.toarray()
    w = 1.0 / sig**2
    want = np.linalg.solve(ad.T @ (w[:, None] * ad), ad.T @ (w * g))
    np.testing.assert_allclose(confusion_shift(m, g), want, rtol=1e-6)


def test_correlated_term_needs_the_beam_and_pixels():
    a, d, sig, px, py, stamp, _, _ = _tile(size=6, nsrc=1)
    with pytest.raises(InputError, match="correlated confusion term needs"):
        band_model("spire_250", a, d, sig, conf_prior=ConfusionPrior(correlated=True))


def test_fit_reports_the_confusion_shift_per_source():
    # through the public API: the catalogue gets the shift and its flag per band, the
    # posterior maps include the fitted field; sources far brighter than the field keep
    # their flux within a few per cent
    from skysense.xid.fit import fit
    from skysense.xid.simulate import simulate_field

    sim = simulate_field(25, size_pix=24, noise_mjy=2.0, flux_min_mjy=5.0, random_state=2)
    sim.sky.band = "spire_250"
    conf = {"spire_250": ConfusionPrior("halfcauchy", 0.5, correlated=True)}
    res = fit(
        [sim.sky],
        sim.sources[["id", "ra", "dec"]],
        conf_priors=conf,
        on_duplicate="keep",
        n_samples=200,
        n_warmup=200,
        n_chains=2,
        random_state=0,
    )
    cat = res.catalogue(n_rep=20)
    assert cat["flag_conf_SPIRE_250"].dtype == bool
    shift = cat["Conf_shift_SPIRE_250"].to_numpy()
    assert np.all(np.isfinite(shift))
    post = res.posteriors["spire_250"]
    sd = post.flux.reshape(-1, res.models["spire_250"].nsrc).std(0)
    flag = cat["flag_conf_SPIRE_250"].to_numpy()[res.fitted["spire_250"]]
    np.testing.assert_array_equal(flag, np.abs(shift[res.fitted["spire_250"]]) > sd)
    assert post.conf_field.shape == (24 * 24,) and post.sigma_conf.min() > 0
    maps = res.maps("spire_250", n_rep=20)
    assert np.isfinite(maps["model"]).sum() == 24 * 24
    # replicates carry fresh correlated confusion of each draw's amplitude: with the
    # amplitude set to 6 mJy/beam their extra variance is 36 and neighbouring pixels
    # correlate as the beam autocorrelation says
    post.sigma_conf[:] = 6.0
    rep = res.replicated("spire_250", n_rep=200)
    m = res.models["spire_250"]
    dev = rep - rep.mean(axis=1, keepdims=True)
    extra = np.var(dev, axis=1) - m.sigma_mjy**2
    assert np.median(extra) == pytest.approx(36.0, rel=0.15)
    k = confusion_covariance(m.beam_stamp, m.pixel_x[:2], m.pixel_y[:2])[0, 1]
    nb = (m.pixel_x[:-1] + 1 == m.pixel_x[1:]) & (m.pixel_y[:-1] == m.pixel_y[1:])
    cov = np.mean(dev[:-1][nb] * dev[1:][nb])
    assert cov == pytest.approx(36.0 * k, rel=0.15)


@pytest.mark.parametrize("kind", [1, 2])
def test_amplitude_move_leaves_the_marginal_of_the_amplitude_invariant(kind):
    # exact draws of z given c alternating with the amplitude move only (no slice steps):
    # c's draws follow p(c | r) ~ prior(c) N(r; 0, N + c^2 K) on a grid (dense), with
    # non-uniform noise so that the move's Fourier approximation is not exact
    a, d, sig, px, py, stamp, k, _ = _tile(size=9, nsrc=1, amp=2.0, seed=6)
    fld = ConfusionField(stamp, px, py, sig)
    r = d - d.mean()
    scale = 3.0
    grid = np.linspace(0.02, 8.0, 800)
    lp = []
    for c in grid:
        cov = np.diag(sig**2) + c**2 * k
        lp.append(
            -0.5 * np.linalg.slogdet(cov)[1]
            - 0.5 * r @ np.linalg.solve(cov, r)
            + (-np.log1p((c / scale) ** 2) if kind == 1 else -0.5 * (c / scale) ** 2)
        )
    pw = np.exp(np.array(lp) - logsumexp(lp))
    mean = np.sum(pw * grid)
    sd = np.sqrt(np.sum(pw * (grid - mean) ** 2))
    rng = np.random.default_rng(11)
    amp, z = mean, np.zeros(fld.shape)
    draws, acc = [], 0
    for _ in range(6000):
        z = fld.draw_white(r, amp, z, rng)
        z, _, amp, n = fld.amplitude_move(z, r, amp, 0.4, rng, kind=kind, scale=scale)
        acc += n
        draws.append(amp)
    draws = np.array(draws[200:])
    _, ess, _ = summarise_convergence(draws[None, :, None])
    assert 0.2 < acc / 12000 < 0.95  # the move moves (2 proposals per call)
    assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(ess[0]), (draws.mean(), mean, ess)
    assert draws.std() == pytest.approx(sd, rel=0.1)
