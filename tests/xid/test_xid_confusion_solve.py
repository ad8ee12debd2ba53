"""The correlated field's Fourier-space solve and its cached box field against dense algebra.

The operator ``B`` is built here column by column from the beam stamp placed on the periodic
box (direct sums, no FFT), so every check below has an answer independent of the FFTs.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft

from skysense.xid.confusion import ConfusionField, beam_stamp
from skysense.xid.model import (
    BackgroundPrior,
    ConfusionPrior,
    GaussianBeam,
    band_model,
    pointing_matrix,
)
from skysense.xid.sampler import _field_directions, _moved_field

BEAM = GaussianBeam(18.15)
PIX = 6.0


def _pixels(ny=9, nx=8, hole=True):
    mask = np.ones((ny, nx), bool)
    if hole:
        mask[3:5, 2:5] = False  # masked pixels inside the box: their weight is wbar
    yy, xx = np.nonzero(mask)
    return xx, yy


def _dense_b(fld: ConfusionField) -> np.ndarray:
    """(n, n) matrix of B / ||b|| on the periodic box, by placing the stamp (no FFT)."""
    ly, lx = fld.shape
    s = fld.stamp
    ry, rx = s.shape[0] // 2, s.shape[1] // 2
    out = np.zeros((fld.n, fld.n))
    for y in range(ly):
        for x in range(lx):
            col = np.zeros((ly, lx))
            for dy in range(-ry, ry + 1):
                for dx in range(-rx, rx + 1):
                    col[(y + dy) % ly, (x + dx) % lx] += s[dy + ry, dx + rx]
            out[:, y * lx + x] = col.ravel() / np.sqrt(np.sum(s * s))
    return out


def _dense_weights(fld: ConfusionField) -> np.ndarray:
    w = np.full(fld.n, fld.wbar)
    w[fld.idx] = fld.w
    return w


@pytest.mark.parametrize("spread", [1.0, 3.0])
def test_fourier_solve_is_the_dense_solve(spread):
    # non-uniform noise (up to 3x in sigma) and masked pixels: the CG path; spread 1 and
    # no mask would take the exact shortcut, so a mask is kept in both
    xx, yy = _pixels()
    rng = np.random.default_rng(0)
    sig = rng.uniform(1.0, spread, xx.size) if spread > 1 else np.full(xx.size, 1.3)
    fld = ConfusionField(beam_stamp(BEAM, PIX), xx, yy, sig)
    bmat = _dense_b(fld)
    amp = 2.5
    q = np.eye(fld.n) + amp**2 * bmat.T @ (_dense_weights(fld)[:, None] * bmat)
    rhs = rng.standard_normal(fld.n)
    want = np.linalg.solve(q, rhs)
    got = sfft.irfft2(fld.solve(sfft.rfft2(rhs.reshape(fld.shape)), amp), s=fld.shape)
    np.testing.assert_allclose(got.ravel(), want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_uniform_weights_take_the_exact_inverse():
    xx, yy = _pixels(hole=False)
    fld = ConfusionField(beam_stamp(BEAM, PIX), xx, yy, np.full(xx.size, 2.0))
    # uniform noise, no mask: the pseudo-data of the padding carry the same weight, so the
    # Fourier-diagonal preconditioner is the inverse and no iteration runs
    assert fld.uniform
    bmat = _dense_b(fld)
    q = np.eye(fld.n) + 4.0 * fld.wbar * bmat.T @ bmat
    rhs = np.random.default_rng(1).standard_normal(fld.n)
    got = sfft.irfft2(fld.solve(sfft.rfft2(rhs.reshape(fld.shape)), 2.0), s=fld.shape)
    np.testing.assert_allclose(got.ravel(), np.linalg.solve(q, rhs), atol=1e-10)


def test_draw_is_the_dense_perturbation_optimisation():
    # the same random numbers, in the documented order, through dense algebra: z solves
    # Q z = xi + amp B^T (W^1/2 e2 + W d~), d~ the residual on the fitted pixels and the
    # pseudo-data amp B z0 + e1 / wbar^1/2 elsewhere; the returned B z / ||b|| is B z
    xx, yy = _pixels()
    rng = np.random.default_rng(2)
    sig = rng.uniform(0.8, 2.0, xx.size)
    fld = ConfusionField(beam_stamp(BEAM, PIX), xx, yy, sig)
    bmat = _dense_b(fld)
    w = _dense_weights(fld)
    amp = 1.7
    z0 = rng.standard_normal(fld.shape)
    resid = rng.standard_normal(xx.size) * 3.0
    z, bz = fld.draw(resid, amp, z0, None, np.random.default_rng(7))
    twin = np.random.default_rng(7)
    e1 = twin.standard_normal(fld.n)
    xi = twin.standard_normal(fld.n)
    e2 = twin.standard_normal(fld.n)
    dt = amp * bmat @ z0.ravel() + e1 / np.sqrt(fld.wbar)
    dt[fld.idx] = resid
    q = np.eye(fld.n) + amp**2 * bmat.T @ (w[:, None] * bmat)
    want = np.linalg.solve(q, xi + amp * bmat.T @ (np.sqrt(w) * e2 + w * dt))
    np.testing.assert_allclose(z.ravel(), want, atol=1e-6 * np.abs(want).max())
    np.testing.assert_allclose(bz.ravel(), bmat @ want, atol=1e-6 * np.abs(want).max())
    # with the caller's cached B z0 the draw is the same
    z2, _ = fld.draw(resid, amp, z0, fld.box_field(z0), np.random.default_rng(7))
    np.testing.assert_allclose(z2, z, atol=1e-12)


@pytest.mark.parametrize("tuned", [None, 0.4, 3.0])
def test_field_directions_and_the_moved_field_follow_the_fft_field(tuned):
    # the sources' white-field patterns (the delta, or tuned to an amplitude): their
    # stamp-summed fields equal the FFT field, the mismatch e_j = a_j - field(v_j) on the
    # fitted pixels, and moving z along them keeps the cached B z equal to the FFT of the
    # moved z
    size, nsrc = 14, 4
    yy, xx = np.mgrid[0:size, 0:size]
    px, py = xx.ravel(), yy.ravel()
    rng = np.random.default_rng(3)
    sx, sy = rng.uniform(1, size - 2, nsrc), rng.uniform(1, size - 2, nsrc)
    stamp = beam_stamp(BEAM, PIX)
    a = pointing_matrix(sx, sy, px, py, BEAM, PIX)
    sig = rng.uniform(1.0, 1.5, px.size)
    m = band_model(
        "spire_250",
        a,
        rng.standard_normal(px.size),
        sig,
        flux_lower=np.full(nsrc, -50.0),
        flux_upper=np.full(nsrc, 50.0),
        bkg_prior=BackgroundPrior(0.0, 3.0),
        conf_prior=ConfusionPrior("none", fixed=1.0, correlated=True),
        pixel_x=px,
        pixel_y=py,
        beam_stamp=stamp,
    )
    fld = ConfusionField(stamp, px, py, sig)
    (eptr, epix, evals), (kptr, kidx, kval), (gptr, gidx, gval) = _field_directions(m, fld, tuned)
    ad = a.toarray()
    for j in range(nsrc):
        v = np.zeros(fld.n)
        v[kidx[kptr[j] : kptr[j + 1]]] = kval[kptr[j] : kptr[j + 1]]
        if tuned is None:
            # the pattern's centroid is the beam's: bilinear weights sum to ||b||
            assert v.sum() == pytest.approx(fld.stamp_norm)
        else:  # a low-passed delta: spread over more than the 4 bilinear cells
            assert np.count_nonzero(v) > 4
        fft = fld.box_field(v.reshape(fld.shape)).ravel()
        dense = np.zeros(fld.n)
        dense[gidx[gptr[j] : gptr[j + 1]]] = gval[gptr[j] : gptr[j + 1]]
        np.testing.assert_allclose(dense, fft, atol=1e-12)
        e = np.zeros(px.size)
        e[epix[eptr[j] : eptr[j + 1]]] = evals[eptr[j] : eptr[j + 1]]
        np.testing.assert_allclose(e, ad[:, j] - fft[fld.idx], atol=1e-11)
    z = rng.standard_normal(fld.n)
    bz = fld.box_field(z.reshape(fld.shape)).ravel()
    steps = np.array([0.7, 0.0, -1.2, 2.5])
    amp = 1.9
    for j, t in enumerate(steps):
        z[kidx[kptr[j] : kptr[j + 1]]] -= t * kval[kptr[j] : kptr[j + 1]] / amp
    _moved_field(bz, steps, amp, gptr, gidx, gval)
    np.testing.assert_allclose(bz, fld.box_field(z.reshape(fld.shape)).ravel(), atol=1e-12)


@pytest.mark.parametrize("amp", [0.3, 2.0])
def test_direction_kernel_is_the_regression_of_the_field_on_the_flux(amp):
    # with uniform weights on the box, z given the flux f of a source at a pixel centre has
    # mean -f amp Q^-1 B^T W a / ||b|| (Q = I + amp^2 B^T W B / ||b||^2): the pattern h of
    # the move f + t, z - t h / amp is that regression, amp^2 Q^-1 B^T W a / ||b|| (dense)
    px, py = _pixels(26, 25, hole=False)  # a box wide enough for the uncut kernel
    stamp = beam_stamp(BEAM, PIX)
    fld = ConfusionField(stamp, px, py, np.full(px.size, 1.3))
    bmat = _dense_b(fld)
    ly, lx = fld.shape
    cy, cx = 12, 11
    centre = np.zeros(fld.n)
    centre[cy * lx + cx] = 1.0
    a = bmat @ centre * fld.stamp_norm  # the beam (peak 1) centred on the pixel (cy, cx)
    q = np.eye(fld.n) + amp**2 * fld.wbar * bmat.T @ bmat
    want = amp**2 * np.linalg.solve(q, bmat.T @ (fld.wbar * a))
    k, g = fld.direction_kernel(amp)
    hy, hx = k.shape[0] // 2, k.shape[1] // 2
    got = np.zeros((ly, lx))
    got[np.ix_(np.arange(cy - hy, cy + hy + 1) % ly, np.arange(cx - hx, cx + hx + 1) % lx)] = k
    # equal up to the kernel's cut at 1e-4 of its peak
    np.testing.assert_allclose(got.ravel(), want, atol=3e-3 * np.abs(want).max())
    # and G is B K / ||b|| of the cut kernel, by the dense operator
    gy, gx = g.shape[0] // 2, g.shape[1] // 2
    full = np.zeros((ly, lx))
    full[np.ix_(np.arange(cy - gy, cy + gy + 1) % ly, np.arange(cx - gx, cx + gx + 1) % lx)] = g
    np.testing.assert_allclose(full.ravel(), bmat @ got.ravel(), atol=1e-12)
