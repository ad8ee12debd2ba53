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
noise is uniform and no pixel is masked; a few iterations otherwise), run in Fourier space so
that each iteration costs one pair of FFTs. The sampler keeps ``B z`` on the box between draws
and updates it by direct stamp sums when only a few pixels of ``z`` move. The amplitude takes two
slice steps per update, one with ``z`` fixed (non-centred) and one with ``g`` fixed (centred),
an interweaving (Yu & Meng 2011) that mixes whether the data constrain ``g`` well or not.
"""

from __future__ import annotations

import math

import numba
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


@numba.njit(cache=True)
def _hdot(a, b, hw):
    """Real inner product of two real maps given by their rfft2 half spectra (Parseval).

    ``hw`` (half-spectrum columns,) weighs each column by how often it stands in the full
    spectrum (1 or 2) over the number of pixels. A loop rather than BLAS: BLAS threads on a
    shared machine cost far more than these sums (a 35k-element norm took 0.6 ms, not 6 us).
    """
    acc = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            acc += hw[j] * (a[i, j].real * b[i, j].real + a[i, j].imag * b[i, j].imag)
    return acc


@numba.njit(cache=True)
def _cg_step(x, r, p, q, alpha, hw):
    """x += alpha p, r -= alpha q in place; returns <r, r>."""
    acc = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] += alpha * p[i, j]
            v = r[i, j] - alpha * q[i, j]
            r[i, j] = v
            acc += hw[j] * (v.real * v.real + v.imag * v.imag)
    return acc


@numba.njit(cache=True)
def _cg_direction(p, r, beta):
    """p = r + beta p in place."""
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            p[i, j] = r[i, j] + beta * p[i, j]


@numba.njit(cache=True)
def _wdot(a, w, b):
    """sum_i a_i w_i b_i (1-D), without BLAS (see :func:`_hdot`)."""
    acc = 0.0
    for i in range(a.size):
        acc += a[i] * w[i] * b[i]
    return acc


@numba.njit(cache=True)
def _wres(r, c, u, w):
    """sum_i w_i (r_i - c u_i)^2 (1-D), without BLAS (see :func:`_hdot`)."""
    acc = 0.0
    for i in range(r.size):
        e = r[i] - c * u[i]
        acc += w[i] * e * e
    return acc


@numba.njit(cache=True)
def _sumsq(a):
    acc = 0.0
    for v in a.ravel():
        acc += v * v
    return acc


@numba.njit(cache=True)
def _pseudo_data(v, bz, e1, e2, amp, wbar, idx, w, resid):
    """``v = W^1/2 e2 + W d~`` on the box (flat, in place): ``d~`` is the residual on the
    fitted pixels (``idx``, weights ``w``) and the pseudo-data ``amp bz + e1 / wbar^1/2``
    (weight ``wbar``) elsewhere."""
    sw = math.sqrt(wbar)
    for k in range(v.size):
        v[k] = sw * e2[k] + wbar * (amp * bz[k] + e1[k] / sw)
    for i in range(idx.size):
        k = idx[i]
        v[k] = math.sqrt(w[i]) * e2[k] + w[i] * resid[i]


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
        self.stamp = s
        self.stamp_norm = math.sqrt(float(np.sum(s * s)))
        self.bhat = sfft.rfft2(k) / self.stamp_norm
        self.b2 = self.bhat.real**2 + self.bhat.imag**2  # |b_hat|^2: B^T B in Fourier space
        self.idx = (py - py.min()) * lx + (px - px.min())
        self.w = 1.0 / np.asarray(sigma_mjy, float) ** 2
        self.wbar = float(self.w.mean())
        self.n = ly * lx
        # Parseval weights of the rfft2 half spectrum: columns 0 and (even lx) lx/2 stand
        # once in the full spectrum, the others twice (with their conjugates)
        hw = np.full(self.bhat.shape[1], 2.0)
        hw[0] = 1.0
        if lx % 2 == 0:
            hw[-1] = 1.0
        self.hw = hw / self.n
        # the weights' departure from the preconditioner's uniform wbar, on the box: 0 on
        # the pseudo-data pixels (they carry wbar), W - wbar on the fitted ones
        dw = np.zeros(self.n)
        dw[self.idx] = self.w - self.wbar
        self.dw = dw.reshape(self.shape)
        self.uniform = bool(np.all(self.dw == 0.0))

    def _conv(self, z: np.ndarray, transpose: bool = False) -> np.ndarray:
        b = np.conj(self.bhat) if transpose else self.bhat
        return sfft.irfft2(b * sfft.rfft2(z), s=self.shape)

    def field(self, z: np.ndarray) -> np.ndarray:
        """``B z / ||b||`` on the fitted pixels (npix,), for a white field ``z`` of the box."""
        return self._conv(z).ravel()[self.idx]

    def box_field(self, z: np.ndarray) -> np.ndarray:
        """``B z / ||b||`` on the whole box (box shape), for a white field ``z`` of the box."""
        return self._conv(z)

    def pattern(self, iy: np.ndarray, ix: np.ndarray, val: np.ndarray):
        """``B v / ||b||`` of a sparse white field ``v`` (values ``val`` at box pixels
        (iy, ix)), by direct sums of the stamp (no FFT): (flat box pixels, values)."""
        ly, lx = self.shape
        ry, rx = self.stamp.shape[0] // 2, self.stamp.shape[1] // 2
        sy, sx = np.nonzero(self.stamp)
        out = {}
        for y, x, v in zip(np.asarray(iy), np.asarray(ix), np.asarray(val)):
            keys = ((y + sy - ry) % ly) * lx + (x + sx - rx) % lx
            vals = v * self.stamp[sy, sx] / self.stamp_norm
            for kk, vv in zip(keys.tolist(), vals.tolist()):
                out[kk] = out.get(kk, 0.0) + vv
        keys = np.fromiter(out.keys(), np.int64, len(out))
        vals = np.fromiter(out.values(), float, len(out))
        order = np.argsort(keys)
        return keys[order], vals[order]

    def direction_kernel(
        self, amp: float | None, rel: float = 1e-4
    ) -> tuple[np.ndarray, np.ndarray]:
        """The white-field pattern that takes up a point source's flux, and its field.

        A source's flux and the field under it are coupled: the field can mimic the source.
        Given ``z``, the flux is pinned to its instrumental error; given the flux, the field
        is too; alternating draws of the two crawl when the field's share (of order the
        amplitude) exceeds the instrumental error. The joint move of the sampler, ``f + t``,
        ``z - t h / amp``, decorrelates them when ``h / amp`` is the regression of ``z`` on
        the flux, ``amp Q^-1 B^T W a / ||b||``: with uniform weights ``wbar`` and a beam-shaped
        column this is the beam's Wiener filter, ``h = K (*) delta`` with
        ``K_hat = ||b|| s``, ``s = amp^2 wbar |b_hat|^2 / (1 + amp^2 wbar |b_hat|^2)``
        (``b_hat`` normalised). Where the field is well measured (``s`` near 1) ``K`` is
        ``||b||`` times a delta, the pattern used before; where it is not, a low-passed
        delta that costs the white field far less. Any fixed pattern keeps the move exact:
        this one only sets how far it goes.

        Parameters
        ----------
        amp : float or None - the field's amplitude the pattern is tuned for (mJy/beam);
            None: the delta ``||b||`` (the deconvolution limit)
        rel : float - ``K`` is cut where it falls below this fraction of its peak

        Returns
        -------
        (K, G): ndarrays of odd sides, centred: ``K`` the pattern in white-field units and
        ``G = B K / ||b||`` its field (exactly, for the cut ``K``), mJy/beam per mJy
        """
        if amp is None or not amp > 0:
            return np.array([[self.stamp_norm]]), self.stamp.copy()
        ly, lx = self.shape
        x = amp * amp * self.wbar * self.b2
        full = sfft.irfft2(self.stamp_norm * x / (1.0 + x), s=self.shape)
        full = np.fft.fftshift(full)
        cy, cx = ly // 2, lx // 2
        keep = np.abs(full) >= rel * np.abs(full).max()
        ys, xs = np.nonzero(keep)
        # a symmetric window about the centre (K is even), small enough that its field,
        # wider by the stamp's radius, fits in the periodic box without wrapping onto itself
        ry, rx = self.stamp.shape[0] // 2, self.stamp.shape[1] // 2
        ky = max(0, min(int(np.abs(ys - cy).max()), (ly - 1) // 2 - ry))
        kx = max(0, min(int(np.abs(xs - cx).max()), (lx - 1) // 2 - rx))
        k = full[cy - ky : cy + ky + 1, cx - kx : cx + kx + 1].copy()
        # its field, by FFT of the cut pattern (exact up to round-off, as the stamp sums)
        box = np.zeros(self.shape)
        box[np.ix_(np.arange(-ky, ky + 1) % ly, np.arange(-kx, kx + 1) % lx)] = k
        g = np.fft.fftshift(self._conv(box))
        gy, gx = ky + ry, kx + rx
        return k, g[cy - gy : cy + gy + 1, cx - gx : cx + gx + 1].copy()

    def amplitude_move(
        self,
        z: np.ndarray,
        resid: np.ndarray,
        amp: float,
        step: float,
        rng: np.random.Generator,
        *,
        kind: int,
        scale: float,
        n_prop: int = 2,
    ) -> tuple[np.ndarray, np.ndarray | None, float, int]:
        """Metropolis-Hastings moves of the amplitude that carry the field along.

        The slice steps of the amplitude hold ``z`` (non-centred) or ``g`` (centred) fixed;
        with many pixels either pins the amplitude far inside its posterior width. Here
        ``t = ln c`` takes a random-walk proposal ``t' = t + step N(0, 1)`` and ``z`` is mapped
        to ``z' = m(c') + D (z - m(c))``, ``D = (P(c) / P(c'))^1/2``, with ``m`` and ``P`` the
        conditional mean and precision of ``z`` under uniform weights ``wbar``
        (Fourier-diagonal: ``P = I + c^2 wbar B^T B``, ``m = c P^-1 B^T W r``): where that
        approximation holds, ``z'`` is a draw of the field given ``c'`` when ``z`` was one
        given ``c``, so the move goes as far as the amplitude's marginal posterior. The map
        is an involution given the proposal's sign flip and its Jacobian ``det D`` enters the
        acceptance ratio, which uses the exact target (fitted pixels, their own weights):
        the move is exact whatever the approximation's quality (which sets only the
        acceptance rate).

        Parameters
        ----------
        z : ndarray (box shape) - the current white field
        resid : ndarray (npix,) - ``d - A f - B`` on the fitted pixels, mJy/beam
        amp : float - the current amplitude (> 0)
        step : float - the proposal's sd in ln c
        kind, scale : the amplitude's prior (1 half-Cauchy, 2 half-normal; its scale)
        n_prop : int - proposals made in turn

        Returns
        -------
        (z, bz, amp, n_accepted): the new field, its ``B z / ||b||`` on the box (None when
        nothing was accepted: the caller's copy still holds) and amplitude
        """
        resid = np.asarray(resid, float)
        rw = np.zeros(self.n)
        rw[self.idx] = self.w * resid
        btr = np.conj(self.bhat) * sfft.rfft2(rw.reshape(self.shape))  # B^T W r / ||b||
        zhat = sfft.rfft2(z)
        mult = self.hw * self.n  # each half-spectrum entry's count in the full spectrum

        def target(c, zh, u):
            lp = math.log(c) - 0.5 * _hdot(zh, zh, self.hw)
            lp -= 0.5 * _wres(resid, c, u, self.w)
            if kind == 1:
                return lp - math.log1p((c / scale) ** 2)
            return lp - 0.5 * (c / scale) ** 2

        u = sfft.irfft2(self.bhat * zhat, s=self.shape).ravel()[self.idx]
        cur = target(amp, zhat, u)
        pc = 1.0 + amp * amp * self.wbar * self.b2
        n_acc = 0
        for _ in range(n_prop):
            new = amp * math.exp(step * rng.standard_normal())
            pn = 1.0 + new * new * self.wbar * self.b2
            zn = new * btr / pn + np.sqrt(pc / pn) * (zhat - amp * btr / pc)
            un = sfft.irfft2(self.bhat * zn, s=self.shape).ravel()[self.idx]
            lp = target(new, zn, un)
            logdet = 0.5 * float(np.sum(mult[None, :] * np.log(pc / pn)))
            if math.log(rng.random()) < lp - cur + logdet:
                amp, zhat, u, cur, pc = new, zn, un, lp, pn
                n_acc += 1
        if n_acc == 0:
            return z, None, amp, 0
        both = sfft.irfft2(np.stack([zhat, self.bhat * zhat]), s=self.shape)
        return both[0], both[1], amp, n_acc

    def _scatter(self, v: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n)
        out[self.idx] = v  # the fitted pixels are distinct
        return out.reshape(self.shape)

    def solve(
        self, rhs_hat: np.ndarray, amp: float, *, tol: float = 1e-7, maxiter: int = 500
    ) -> np.ndarray:
        """Solve ``Q z = rhs``, ``Q = I + amp^2 B^T W B / ||b||^2``, in Fourier space.

        ``W`` is ``wbar`` on the box but for the fitted pixels (their ``1 / sigma^2``).
        ``Q = P + amp^2 B^T D B`` with ``P = I + amp^2 wbar B^T B`` diagonal in Fourier space
        and ``D = W - wbar`` non-zero on the fitted pixels only. Conjugate gradients on
        ``y = P^1/2 z`` (symmetric preconditioning, exact when ``D = 0``), kept in Fourier
        space throughout: one operator application costs a pair of FFTs (``B`` and ``B^T``
        are products there, only ``D`` needs the pixels), three times fewer than applying
        ``Q`` and a preconditioner in pixel space. Stops when the residual's norm in ``y``
        falls below ``tol`` times the right-hand side's.

        Parameters
        ----------
        rhs_hat : complex ndarray - ``rfft2`` of the right-hand side (box shape, real)
        amp : float - the field's amplitude, mJy/beam

        Returns
        -------
        complex ndarray: ``rfft2`` of the solution ``z``
        """
        c2 = amp * amp
        sp_ = np.sqrt(1.0 + c2 * self.wbar * self.b2)
        b = rhs_hat / sp_
        if self.uniform:  # the preconditioner is the inverse
            return b / sp_
        s = self.bhat / sp_
        sc = c2 * np.conj(s)
        dw, shape, hw = self.dw, self.shape, self.hw

        def m_minus_i(y):
            return sc * sfft.rfft2(dw * sfft.irfft2(s * y, s=shape))

        y = b.copy()
        r = -m_minus_i(y)  # b - M b
        rr = _hdot(r, r, hw)
        stop = (tol * tol) * _hdot(b, b, hw)
        p = r.copy()
        for _ in range(maxiter):
            if rr <= stop:
                break
            q = m_minus_i(p)
            q += p
            alpha = rr / _hdot(p, q, hw)
            rr_new = _cg_step(y, r, p, q, alpha, hw)
            _cg_direction(p, r, rr_new / rr)
            rr = rr_new
        return y / sp_

    def draw(
        self,
        resid: np.ndarray,
        amp: float,
        z: np.ndarray,
        bz: np.ndarray | None,
        rng: np.random.Generator,
        *,
        tol: float = 1e-7,
        maxiter: int = 500,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A Gibbs update of the white field ``z`` given the residual ``d - A f - B`` (npix,).

        The box pixels that are not fitted (the padding, masked pixels) get pseudo-data
        drawn from their predictive given the current field, ``amp B z / ||b|| + e`` with
        ``e ~ Normal(0, 1 / mean(W))``: an exact data augmentation (integrating the
        pseudo-data out gives back the model), which makes the weights nearly uniform over
        the box, so that the Fourier-diagonal preconditioner is nearly exact and conjugate
        gradients (:meth:`solve`) converge in a few iterations. ``z`` is then drawn exactly
        given both.

        Parameters
        ----------
        bz : ndarray (box shape) or None
            ``B z / ||b||`` of the current ``z`` on the box, if the caller keeps it (saves
            a pair of FFTs); None: computed here.

        Returns
        -------
        (z, bz): the new white field and its ``B z / ||b||``, both of the box shape
        """
        if bz is None:
            bz = self._conv(z)
        # the random numbers are drawn in the order of the pixel-space version (same draws):
        # e1 (pseudo-data noise), xi, e2; [xi, v] go through one batched FFT
        e1 = rng.standard_normal(self.n)
        buf = np.empty((2, *self.shape))
        rng.standard_normal(out=buf[0])
        e2 = rng.standard_normal(self.n)
        resid = np.ascontiguousarray(resid, dtype=float)
        _pseudo_data(
            buf[1].reshape(-1), bz.reshape(-1), e1, e2, amp, self.wbar, self.idx, self.w, resid
        )
        hat = sfft.rfft2(buf)
        rhs_hat = hat[0] + amp * np.conj(self.bhat) * hat[1]
        z_hat = self.solve(rhs_hat, amp, tol=tol, maxiter=maxiter)
        both = sfft.irfft2(np.stack([z_hat, self.bhat * z_hat]), s=self.shape)
        return both[0], both[1]

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
        """:meth:`draw` returning the new white field ``z`` only (box shape)."""
        return self.draw(resid, amp, z, None, rng, tol=tol, maxiter=maxiter)[0]


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
