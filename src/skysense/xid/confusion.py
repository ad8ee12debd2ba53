"""Confusion from unlisted sources as a correlated Gaussian random field (pure numpy/scipy).

XID+ adds the confusion noise of the sources it does not list as a white term, sigma_conf in
quadrature with the instrumental noise of each pixel. But unlisted sources are seen through
the beam, so their map is correlated over the beam: a white term under-weights it where it
piles up under a listed source and the listed source absorbs it (#18: 68 % intervals cover
49-52 % with the faint sources left out). Here the map is

    d = A f + B + g + n,    g = c * (beam (*) z) / ||beam||,    z ~ Normal(0, I) (white),

so ``g`` is a Gaussian random field whose covariance is ``c^2`` times the beam's normalised
autocorrelation (a white field of unlisted point sources seen through the beam), ``c`` (mJy/beam,
the field's per-pixel sd) its fitted amplitude and ``n`` the instrumental noise.

Why FFT-diagonal and not a banded precision: the covariance is exactly the beam's
autocorrelation, which a convolution reproduces with no approximation, whereas a banded
(GMRF) precision would only approximate it (a Gaussian autocorrelation has no sparse inverse).
The convolution is diagonal in Fourier space on a periodic grid: circulant embedding on the
tile's pixel box padded by twice the beam radius, so that no pixel pair of the box is coupled
through the wrap-around and the covariance on the fitted pixels is the exact stationary one.
Each operation is a pair of FFTs of the padded box, O(n log n) in the number of pixels.

The field is a latent variable of the Gibbs sampler (data augmentation), so the fluxes keep
their diagonal-noise updates given ``g``. Given the fluxes and background, ``z`` is Gaussian
with precision ``Q = I + c^2 B^T W B`` (``W``: inverse instrumental variances on the fitted
pixels, 0 on the padding and on masked pixels); an exact draw solves ``Q z = xi_1 + c B^T
(W^1/2 xi_2 + W r)`` (perturbation-optimisation, Papandreou & Yuille 2010) by conjugate
gradients preconditioned with the Fourier-diagonal ``I + c^2 mean(W) B^T B`` (exact when the
noise is uniform and no pixel is masked; a few iterations otherwise). The amplitude takes two
slice steps per update, one with ``z`` fixed (non-centred) and one with ``g`` fixed (centred),
an interweaving (Yu & Meng 2011) that mixes whether the data constrain ``g`` well or not.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from skysense.errors import InputError

__all__ = ["ConfusionField", "beam_stamp", "confusion_covariance", "slice_amplitude"]


def beam_stamp(beam, pixel_arcsec: float, min_fraction: float = 1e-3) -> np.ndarray:
    """The beam sampled on the map's pixel grid about its centre, ndarray (2r+1, 2r+1).

    Parameters
    ----------
    beam : GaussianBeam or PRFBeam (peak 1)
    pixel_arcsec : float - map pixel size, arcsec
    min_fraction : float - the stamp reaches where the beam falls to this fraction of its peak
    """
    r = int(math.ceil(beam.radius_arcsec(min_fraction) / pixel_arcsec))
    off = np.arange(-r, r + 1) * float(pixel_arcsec)
    dx, dy = np.meshgrid(off, off)
    stamp = beam.evaluate(dx, dy)
    return np.where(stamp >= min_fraction * stamp.max(), stamp, 0.0)


def confusion_covariance(stamp: np.ndarray, pixel_x: np.ndarray, pixel_y: np.ndarray) -> np.ndarray:
    """Dense correlation matrix of the field on the given pixels, by direct sums (no FFT).

    ``K[i, j] = sum_p b(p - x_i) b(p - x_j) / sum_p b(p)^2`` over an unbounded pixel grid: the
    beam's normalised autocorrelation. O(npix^2 x stamp size): for checks on tiny tiles.

    Returns
    -------
    ndarray (npix, npix), dimensionless (1 on the diagonal)
    """
    s = np.asarray(stamp, float)
    ry, rx = s.shape[0] // 2, s.shape[1] // 2
    px, py = np.asarray(pixel_x, int), np.asarray(pixel_y, int)
    n = px.size
    norm = float(np.sum(s * s))
    k = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            dx, dy = px[j] - px[i], py[j] - py[i]
            # overlap of the stamp centred at i with the stamp centred at j
            ys = slice(max(0, dy), min(s.shape[0], s.shape[0] + dy))
            xs = slice(max(0, dx), min(s.shape[1], s.shape[1] + dx))
            yt = slice(max(0, -dy), min(s.shape[0], s.shape[0] - dy))
            xt = slice(max(0, -dx), min(s.shape[1], s.shape[1] - dx))
            if abs(dx) > 2 * rx or abs(dy) > 2 * ry:
                v = 0.0
            else:
                v = float(np.sum(s[ys, xs] * s[yt, xt]))
            k[i, j] = k[j, i] = v / norm
    return k


class ConfusionField:
    """The correlated confusion field of one band on a circulant-embedded pixel box.

    Parameters
    ----------
    stamp : ndarray (2ry+1, 2rx+1) - the beam on the map pixel grid (:func:`beam_stamp`)
    pixel_x, pixel_y : ndarray (npix,), int - the fitted pixels (data-vector order)
    sigma_mjy : ndarray (npix,) - instrumental noise, mJy/beam
    """

    def __init__(
        self,
        stamp: np.ndarray,
        pixel_x: np.ndarray,
        pixel_y: np.ndarray,
        sigma_mjy: np.ndarray,
    ):
        s = np.asarray(stamp, float)
        if s.ndim != 2 or s.shape[0] % 2 != 1 or s.shape[1] % 2 != 1 or not np.any(s > 0):
            raise InputError("the beam stamp must be 2-D, of odd sides, with a positive peak")
        px, py = np.asarray(pixel_x, np.int64), np.asarray(pixel_y, np.int64)
        if px.size == 0:
            raise InputError("the correlated confusion term needs fitted pixels")
        ry, rx = s.shape[0] // 2, s.shape[1] // 2
        nx, ny = int(px.max() - px.min() + 1), int(py.max() - py.min() + 1)
        # pairs of box pixels are coupled through sums over 2r + 1 stamp pixels: a period of
        # box + 2r keeps every such sum free of wrap-around
        self.shape = (sfft.next_fast_len(ny + 2 * ry), sfft.next_fast_len(nx + 2 * rx))
        ly, lx = self.shape
        k = np.zeros(self.shape)
        k[np.ix_(np.arange(-ry, ry + 1) % ly, np.arange(-rx, rx + 1) % lx)] = s
        self.stamp_norm = math.sqrt(float(np.sum(s * s)))
        self.bhat = sfft.rfft2(k) / self.stamp_norm
        self.idx = (py - py.min()) * lx + (px - px.min())
        self.w = 1.0 / np.asarray(sigma_mjy, float) ** 2
        self.wbar = float(self.w.mean())
        self.n = ly * lx

    def _conv(self, z: np.ndarray, transpose: bool = False) -> np.ndarray:
        b = np.conj(self.bhat) if transpose else self.bhat
        return sfft.irfft2(b * sfft.rfft2(z), s=self.shape)

    def field(self, z: np.ndarray) -> np.ndarray:
        """``B z / ||b||`` on the fitted pixels (npix,), for a white field ``z`` of the box."""
        return self._conv(z).ravel()[self.idx]

    def _scatter(self, v: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n)
        out[self.idx] = v  # the fitted pixels are distinct
        return out.reshape(self.shape)

    def draw_white(
        self,
        resid: np.ndarray,
        amp: float,
        z: np.ndarray,
        rng: np.random.Generator,
        *,
        tol: float = 1e-7,
        maxiter: int = 500,
    ) -> np.ndarray:
        """A Gibbs update of the white field ``z`` given the residual ``d - A f - B`` (npix,).

        The box pixels that are not fitted (the padding, masked pixels) get pseudo-data
        drawn from their predictive given the current field, ``amp B z / ||b|| + e`` with
        ``e ~ Normal(0, 1 / mean(W))``: an exact data augmentation (integrating the
        pseudo-data out gives back the model), which makes the weights nearly uniform over
        the box, so that the Fourier-diagonal preconditioner is nearly exact and conjugate
        gradients converge in a few iterations. ``z`` is then drawn exactly given both.

        Returns
        -------
        ndarray of the box shape: the new white field ``z``
        """
        c2 = amp * amp
        wbar = self.wbar
        full = amp * self._conv(z).ravel() + rng.standard_normal(self.n) / math.sqrt(wbar)
        full[self.idx] = resid
        wfull = np.full(self.n, wbar)
        wfull[self.idx] = self.w
        xi = rng.standard_normal(self.shape)
        v = np.sqrt(wfull) * rng.standard_normal(self.n) + wfull * full
        rhs = xi + amp * self._conv(v.reshape(self.shape), transpose=True)
        pinv = 1.0 / (1.0 + c2 * wbar * np.abs(self.bhat) ** 2)
        wfull = wfull.reshape(self.shape)

        def q_apply(x):
            return x + c2 * self._conv(wfull * self._conv(x), transpose=True)

        def precond(x):
            return sfft.irfft2(pinv * sfft.rfft2(x), s=self.shape)

        x = precond(rhs)
        if np.all(wfull == wbar):  # uniform weights: the preconditioner is the inverse
            return x
        r = rhs - q_apply(x)
        y = precond(r)
        p = y.copy()
        ry = float(np.vdot(r, y))
        bnorm = float(np.linalg.norm(rhs))
        for _ in range(maxiter):
            if float(np.linalg.norm(r)) <= tol * bnorm:
                break
            qp = q_apply(p)
            alpha = ry / float(np.vdot(p, qp))
            x += alpha * p
            r -= alpha * qp
            y = precond(r)
            ry_new = float(np.vdot(r, y))
            p = y + (ry_new / ry) * p
            ry = ry_new
        return x


def _amp_lp(t, quad, lin, inv, n, kind, scale) -> float:
    """Log density of t = ln c: c^-n exp(-quad c^2 / 2 + lin c - inv / (2 c^2)) prior(c) c."""
    c = math.exp(t)
    lp = -0.5 * quad * c * c + lin * c - 0.5 * inv / (c * c) - n * t + t
    if kind == 1:  # half-Cauchy
        lp -= math.log1p((c / scale) ** 2)
    else:  # half-normal
        lp -= 0.5 * (c / scale) ** 2
    return lp


def slice_amplitude(
    amp: float,
    rng: np.random.Generator,
    *,
    kind: int,
    scale: float,
    quad: float = 0.0,
    lin: float = 0.0,
    inv: float = 0.0,
    n: float = 0.0,
) -> float:
    """One slice step (stepping out, shrinkage; Neal 2003) on ln c of the field's amplitude.

    The conditional is ``c^-n exp(-quad c^2 / 2 + lin c - inv / (2 c^2)) prior(c)``, with
    ``kind`` 1 (half-Cauchy) or 2 (half-normal) of ``scale``. Non-centred (``z`` fixed, the
    data likelihood): ``quad = u^T W u``, ``lin = u^T W r`` with ``u = B z / ||b||`` on the
    pixels. Centred (``g = c u`` fixed, the field's own density): ``inv = |c z|^2``,
    ``n`` = number of box pixels.
    """
    args = (quad, lin, inv, n, kind, scale)
    t0 = math.log(amp)
    y = _amp_lp(t0, *args) - rng.standard_exponential()
    width = 1.0
    left = t0 - width * rng.random()
    right = left + width
    for _ in range(60):
        if _amp_lp(left, *args) < y:
            break
        left -= width
    for _ in range(60):
        if _amp_lp(right, *args) < y:
            break
        right += width
    while True:
        t = left + (right - left) * rng.random()
        if _amp_lp(t, *args) >= y:
            return math.exp(t)
        if t < t0:
            left = t
        else:
            right = t
