"""GPz: sparse Gaussian-process regression with heteroscedastic noise (Almosallam et al. 2016).

The model (Almosallam, Jarvis & Roberts 2016, MNRAS 462, 726; Almosallam et al. 2016, MNRAS
455, 2387) is a weighted sum of ``m`` Gaussian radial basis functions

    f(x) = phi(x)^T w,   phi_j(x) = exp(-1/2 (x - p_j)^T Lambda_j^T Lambda_j (x - p_j)),

optionally extended by a linear mean ``[x, 1]`` (GPz's "joint" option). Each weight has its own
prior precision (automatic relevance, ``w ~ N(0, diag(alpha)^-1)``) and the noise precision
depends on the input, ``log beta(x) = b + phi(x)^T u`` with ``u ~ N(0, diag(eta)^-1)``.
The centres ``p``, the basis precisions ``Lambda``, ``log alpha``, ``b``, ``u`` and ``log eta`` are
found by maximising the log marginal likelihood of the training targets with L-BFGS; the
gradient is exact (JAX reverse-mode autodiff, float64 on the CPU). One evaluation costs
O(n m^2) (the weight posterior is an ``m x m`` system), so a million galaxies stay practical.
A validation set chooses the stopping point: the parameters with the best validation log
predictive density seen during the optimisation are kept.

Variance calibration (``calibrate=True``, the default). Photo-z residuals are heavy-tailed
(catastrophic outliers, colour-redshift degeneracies): on the DC2 sample the standardised
residuals ``r = (z - mean) / sigma`` of a trained model have ``E[r^2]`` close to 1 (the
variances are right on average) but a kurtosis near 10 instead of 3, so the Gaussian
likelihood widens sigma to pay for the tails and the core is over-covered (73% of redshifts
within 1 sigma instead of 68.3%). Neither term is counted twice; the Gaussian shape is what is
wrong. After training, one factor ``s`` is fitted on the validation rows (never the training
rows, whose residuals are optimistic): the 68.27% quantile of ``|r|`` there, so that exactly
68.27% of the validation redshifts lie within ``s * sigma``. All parts of the predictive
variance are multiplied by ``variance_scale_ = s^2`` (their ratios, model vs noise, are kept).
The factor is applied only when the raw validation coverage differs from 68.27% by more than
twice its binomial standard error (else ``s = 1``): a small validation set does not then
perturb a model whose errors are already calibrated.

Covariance options of the basis functions (GPz's names): ``G``/``V`` = one precision shared by
all basis functions or one per basis function; ``L``/``D``/``C`` = isotropic, diagonal or full.

Input noise (``X_err``): as in GPz, each input is a Gaussian ``N(x, diag(X_err^2))`` and the
basis functions are replaced by their expectations under it (closed form), both in training and
prediction. The predictive variance then gains a third term, the variance of ``f`` caused by the
input noise, from the closed-form second moments of pairs of Gaussian basis functions.

Missing bands (NaN) are marginalised out, as GPz does: a Gaussian basis function integrated
over the missing inputs is the Gaussian of the observed inputs with the corresponding block of
its covariance; the linear mean uses the training mean for a missing input. Rows are processed
in groups sharing one missing-band pattern.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np
from scipy import linalg as sla
from scipy import optimize
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from skysense.errors import InputError, NotFittedError

__all__ = [
    "GPzRegressor",
    "GPzPrediction",
    "COVARIANCES",
    "WEIGHTINGS",
    "cost_weights",
    "coverage_scale",
]

COVARIANCES = ("GL", "VL", "GD", "VD", "GC", "VC")
WEIGHTINGS = ("none", "balanced", "normalized")
_LOG_2PI = math.log(2.0 * math.pi)
_PREDICT_CHUNK = 4096
# Elements (rows x basis pairs x bands) per chunk of the input-noise moments: ~0.5 MB arrays, in cache.
_MOMENT_CHUNK = 1 << 16


class GPzPrediction(NamedTuple):
    """Predictive mean and the three parts of the predictive variance (all shape (n,)).

    ``model_variance`` is the uncertainty of the fitted function (large far from the training
    data: too few training examples), ``noise_variance`` the learned intrinsic scatter
    ``1/beta(x)``, ``input_variance`` the variance propagated from the input errors (zero
    without ``X_err``). Each part includes the validation calibration factor
    ``GPzRegressor.variance_scale_``. Rows that could not be predicted (no finite input) hold
    NaN.
    """

    mean: np.ndarray
    model_variance: np.ndarray
    noise_variance: np.ndarray
    input_variance: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """Total predictive variance, shape (n,)."""
        return self.model_variance + self.noise_variance + self.input_variance


@dataclasses.dataclass(frozen=True)
class _Spec:
    """Static structure of a problem (hashable: JAX compiles once per structure)."""

    m: int
    d: int
    cov: str
    hetero: bool
    linear: bool
    groups: tuple  # ((start, stop, observed dims), ...) over rows sorted by missing pattern
    has_psi: bool
    # True: one group of all rows, NaN marking the missing inputs, each row marginalised by
    # its own mask (diagonal covariances; GC without input errors). The compiled program then
    # does not repeat per missing-band pattern (on DC2, 3 patterns, n = 2500: VD compile
    # 4.3 s -> 2.3 s CPU; GC fit 10.2 s -> 7.4 s CPU).
    masked: bool = False
    patterns: tuple = ()  # GC masked: the observed dims of each missing-band pattern

    @property
    def a_dim(self) -> int:
        return self.m + (self.d + 1 if self.linear else 0)

    @property
    def lam_shape(self) -> tuple[int, ...]:
        m, d = self.m, self.d
        return {
            "GL": (1,),
            "VL": (m,),
            "GD": (d,),
            "VD": (m, d),
            "GC": (d, d),
            "VC": (m, d, d),
        }[self.cov]

    def sizes(self) -> list[tuple[str, tuple[int, ...]]]:
        out = [
            ("centres", (self.m, self.d)),
            ("lam", self.lam_shape),
            ("ln_alpha", (self.a_dim,)),
            ("b", (1,)),
        ]
        if self.hetero:
            out += [("u", (self.m,)), ("ln_eta", (self.m,))]
        return out


def _unpack(theta, spec: _Spec) -> dict[str, Any]:
    out, start = {}, 0
    for name, shape in spec.sizes():
        size = int(np.prod(shape))
        out[name] = theta[start : start + size].reshape(shape)
        start += size
    return out


def _pack(parts: dict[str, np.ndarray], spec: _Spec) -> np.ndarray:
    return np.concatenate([np.asarray(parts[name], float).ravel() for name, _ in spec.sizes()])


def _expand_lam(lam, spec: _Spec, xp):
    """Per-basis precision factors: (m, d) diagonal scales (L/D) or (m, d, d) matrices (C)."""
    m, d = spec.m, spec.d
    if spec.cov == "GL":
        return lam[0] * xp.ones((m, d))
    if spec.cov == "VL":
        return lam[:, None] * xp.ones((m, d))
    if spec.cov == "GD":
        return lam[None, :] * xp.ones((m, d))
    if spec.cov == "GC":
        return xp.ones((m, 1, 1)) * lam[None, :, :]
    return lam  # VD (m, d) or VC (m, d, d)


def _log_phi(xp, X, psi, centres, lam_e, spec: _Spec, obs: tuple[int, ...]):
    """Log of the (expected) basis functions for rows sharing the observed dims ``obs``.

    X, psi : (k, d) normalised inputs and input variances; centres (m, d). Returns (k, m).
    """
    o = list(obs)
    # All observed: no indexing (under JAX a gather, and a scatter-add in the gradient).
    Xo, Po = (X, centres) if len(o) == spec.d else (X[:, o], centres[:, o])
    if spec.cov[1] != "C":
        a = lam_e[:, o] ** 2  # (m, o) precisions
        if psi is None:
            # Expanded square: O(k m o) without a (k, m, o) temporary.
            q = (Xo**2) @ a.T - 2.0 * Xo @ (a * Po).T + xp.sum(a * Po**2, axis=1)[None, :]
            return -0.5 * q
        s = 1.0 + a[None, :, :] * psi[:, o][:, None, :]
        delta = Xo[:, None, :] - Po[None, :, :]
        return -0.5 * xp.sum(delta**2 * a[None] / s + xp.log(s), axis=2)
    if psi is None:
        # Quadratic forms as matrix products (one GEMM each): XLA's CPU batched einsums and
        # per-basis inverses were most of the objective's run and compile time.
        return -0.5 * _quad_full(xp, Xo, Po, lam_e, spec, o)
    # E[phi_j] under N(x, Psi) = |S_j|^1/2 |S_j + Psi|^-1/2 exp(-1/2 d^T (S_j + Psi)^-1 d),
    # S_j the marginal covariance of the observed dims. All by Cholesky factors (unrolled, no
    # LAPACK call): jaxlib 0.10.2's CPU LU kernel (linalg.inv/solve/slogdet) could hang forever.
    ps = psi[:, o]
    if spec.cov == "GC":  # one S for all basis functions: one factor per row, not per (row, j)
        cov_o = _spd_inverse(xp, lam_e[0].T @ lam_e[0])[o, :][:, o]  # (o, o)
        logdet_s = _logdet(xp, _cholesky(xp, cov_o))
        # S + Psi entry by entry, (k, 1) each: no (k, o, o) array to build and slice.
        chol_c = _cholesky(
            xp, lambda i, j: cov_o[i, j] + (ps[:, i, None] if i == j else 0.0), len(o)
        )
    else:  # VC: S_j per basis function; entries (k, m)
        prec = xp.einsum("mki,mkj->mij", lam_e, lam_e)
        cov_o = _spd_inverse(xp, prec)[:, o, :][:, :, o]  # (m, o, o)
        logdet_s = _logdet(xp, _cholesky(xp, cov_o))[None, :]
        chol_c = _cholesky(
            xp, lambda i, j: cov_o[None, :, i, j] + (ps[:, i, None] if i == j else 0.0), len(o)
        )
    # d^T (S + Psi)^-1 d = |L^-1 d|^2, rows of d (k, m) per observed dim
    z = _forward_rows(chol_c, [Xo[:, i, None] - Po[None, :, i] for i in range(len(o))])
    quad = sum(zi**2 for zi in z)
    return -0.5 * quad - 0.5 * _logdet(xp, chol_c) + 0.5 * logdet_s


def _cholesky(xp, A, n: int | None = None) -> list[list[Any]]:
    """Lower Cholesky factor of SPD matrices A (..., n, n) as entries ``L[i][j]`` (...), j <= i.

    ``A`` may also be a function ``(i, j) -> entry`` of the lower triangle, with ``n`` given:
    then no (..., n, n) array is built (entries may broadcast, e.g. a constant off-diagonal).

    Unrolled over the (few: one per band) rows and vectorised over the batch, for NumPy and
    JAX alike. Under JAX this avoids LAPACK custom calls (jaxlib 0.10.2's batched CPU LU
    kernel, behind ``jnp.linalg.inv/solve/slogdet``, could hang forever in a fit), and for
    the many tiny matrices here elementwise operations are also faster than a batched call.
    """
    if callable(A):
        entry = A
    else:
        n = A.shape[-1]

        def entry(i, j):
            return A[..., i, j]

    L: list[list[Any]] = [[None] * (i + 1) for i in range(n)]
    for j in range(n):
        s = entry(j, j) - sum((L[j][k] ** 2 for k in range(j)), 0.0)
        L[j][j] = xp.sqrt(s)
        for i in range(j + 1, n):
            t = entry(i, j) - sum((L[i][k] * L[j][k] for k in range(j)), 0.0)
            L[i][j] = t / L[j][j]
    return L


def _forward_rows(L: list[list[Any]], b: list[Any]) -> list[Any]:
    """Rows of ``L^-1 b`` by forward substitution; ``b`` holds n rows broadcasting with the
    entries of L (from :func:`_cholesky`)."""
    z: list[Any] = []
    for i, bi in enumerate(b):
        z.append((bi - sum((L[i][k] * z[k] for k in range(i)), 0.0)) / L[i][i])
    return z


def _backward_rows(L: list[list[Any]], z: list[Any]) -> list[Any]:
    """Rows of ``L^-T z`` by back substitution (L from :func:`_cholesky`), so that
    ``_backward_rows(L, _forward_rows(L, b))`` solves ``L L^T y = b``."""
    n = len(z)
    y: list[Any] = [None] * n
    for i in reversed(range(n)):
        y[i] = (z[i] - sum((L[k][i] * y[k] for k in range(i + 1, n)), 0.0)) / L[i][i]
    return y


def _forward(xp, L: list[list[Any]], B):
    """``L^-1 B`` for B (..., n, r) (L from :func:`_cholesky`, entries (...))."""
    Le = [[e[..., None] for e in row] for row in L]
    return xp.stack(_forward_rows(Le, [B[..., i, :] for i in range(B.shape[-2])]), axis=-2)


def _logdet(xp, L: list[list[Any]]):
    """log |A| from its Cholesky factor (:func:`_cholesky`), shape (...)."""
    return 2.0 * sum(xp.log(L[i][i]) for i in range(len(L)))


def _spd_inverse(xp, A):
    """Inverse of SPD matrices A (..., n, n) through their Cholesky factors."""
    n = A.shape[-1]
    L = _cholesky(xp, A)
    eye = xp.eye(n) * xp.ones(A.shape[:-2] + (1, 1))
    inv_l = _forward(xp, L, eye)  # L^-1
    return xp.swapaxes(inv_l, -1, -2) @ inv_l


def _marginal_precision(xp, A, o: list[int], d: int):
    """Precision of the observed dims ``o`` of N(., A^-1): the Schur complement
    ``A_oo - A_om A_mm^-1 A_mo`` (equal to ``inv(inv(A)[o, o])``). A: (..., d, d)."""
    if len(o) == d:
        return A
    mis = [k for k in range(d) if k not in o]
    # Blocks by constant 0/1 selection matrices (exact): under JAX, fancy indexing became
    # gathers and, in the gradient, scatter-adds, slower to compile and to run on the CPU.
    eye = np.eye(d)
    e_o, e_m = eye[o], eye[mis]
    a_o = e_o @ A  # (..., o, d)
    a_oo, a_om = a_o @ e_o.T, a_o @ e_m.T
    a_mm = e_m @ A @ e_m.T
    # A_mm is SPD: Z = L^-1 A_mo with A_mm = L L^T, so A_om A_mm^-1 A_mo = Z^T Z (no LU).
    z = _forward(xp, _cholesky(xp, a_mm), xp.swapaxes(a_om, -1, -2))
    return a_oo - xp.swapaxes(z, -1, -2) @ z


def _quad_full(xp, Xo, Po, lam_e, spec: _Spec, o: list[int]):
    """(x - p_j)^T A_j,o (x - p_j) for full basis covariances, without input noise, (k, m).

    ``A_j = Lambda_j^T Lambda_j``, marginalised to the observed dims ``o``. Global (GC): one
    (o, o) precision for all basis functions, so the expanded square costs O(k m o).
    Per-basis (VC), all observed: ``Lambda_j x`` for all j is one (k, d) x (d, m d) product.
    Per-basis with missing dims: the (o, o) outer products of x meet the m flattened
    precisions in one (k, o^2) x (o^2, m) product.
    """
    k, n_obs = Xo.shape
    m, d = spec.m, spec.d
    if spec.cov == "GC":
        lam = lam_e[0]
        prec = _marginal_precision(xp, lam.T @ lam, o, d)
        xa = Xo @ prec
        pa = Po @ prec
        return xp.sum(xa * Xo, axis=1)[:, None] + xp.sum(pa * Po, axis=1)[None, :] - 2.0 * xa @ Po.T
    if n_obs == d:
        z = (Xo @ lam_e.reshape(m * d, d).T).reshape(k, m, d)
        z = z - xp.einsum("mkd,md->mk", lam_e, Po)[None]
        return xp.sum(z**2, axis=2)
    prec = _marginal_precision(xp, xp.einsum("mki,mkj->mij", lam_e, lam_e), o, d)  # (m, o, o)
    outer = (Xo[:, :, None] * Xo[:, None, :]).reshape(k, n_obs * n_obs)
    pa = xp.einsum("mij,mj->mi", prec, Po)  # (m, o)
    return (
        outer @ prec.reshape(m, n_obs * n_obs).T
        - 2.0 * Xo @ pa.T
        + xp.sum(pa * Po, axis=1)[None, :]
    )


def _pattern_precisions(xp, A, observed: np.ndarray):
    """The precisions of N(., A^-1) marginalised to each pattern's observed dims, embedded in
    (K, d, d) with zeros at its missing dims. A: (d, d) SPD; observed: (K, d) of 0/1.

    All K Schur complements ``A_oo - A_om A_mm^-1 A_mo`` at once: with ``M = I - diag(o)``,
    ``N = M A M + diag(o)`` holds ``A_mm`` beside an identity, so ``A - (A M) N^-1 (M A)``
    is the complement on the observed block and exactly 0 elsewhere. One batched Cholesky
    factorisation and triangular solve (LAPACK; not the LU kernel that :func:`_cholesky`
    avoids): the unrolled per-pattern factorisations it replaces made a 14-input objective
    with 28 patterns compile for 78 s (2 s now) and ran 4x slower.
    """
    missing = 1.0 - observed
    n = (
        missing[:, :, None] * missing[:, None, :] * A[None]
        + np.eye(A.shape[-1]) * observed[:, None]
    )
    b = missing[:, :, None] * A[None]  # M A, (K, d, d)
    low = xp.linalg.cholesky(n)
    if xp is np:
        z = np.linalg.solve(low, b)
    else:
        from jax.scipy.linalg import solve_triangular

        z = solve_triangular(low, b, lower=True)
    return A[None] - xp.swapaxes(z, -1, -2) @ z


def _log_phi_masked(xp, X, psi, centres, lam_e, spec: _Spec, mask):
    """:func:`_log_phi` for diagonal covariances with a per-row mask (k, d) of observed
    inputs; X and psi are 0 where missing. The marginal over missing inputs of a diagonal
    Gaussian drops their terms, so the masked sums of the expanded square are exact.

    GC without input errors: one marginal precision per missing-band pattern (``spec.patterns``,
    embedded as (d, d) with zeros at the missing dims); each row picks its pattern by matching
    its mask, so the program does not depend on where the rows of a pattern are."""
    if spec.cov[1] == "C" and psi is not None:
        return _log_phi_masked_errors(xp, X, psi, centres, lam_e, spec, mask)
    if spec.cov == "GC":
        d = spec.d
        lam = lam_e[0]
        pat = np.zeros((len(spec.patterns), d))
        for k, o in enumerate(spec.patterns):
            pat[k, list(o)] = 1.0
        P_k = _pattern_precisions(xp, lam.T @ lam, pat)  # (K, d, d)
        match = xp.all(mask[:, None, :] == xp.asarray(pat)[None], axis=2).astype(X.dtype)
        xa = xp.einsum("nk,kab,nb->na", match, P_k, X)  # (n, d): P_row x
        pp = xp.einsum("kab,ma,mb->km", P_k, centres, centres)  # (K, m): p^T P_k p
        q = xp.sum(xa * X, axis=1)[:, None] + match @ pp - 2.0 * xa @ centres.T
        return -0.5 * q
    a = lam_e**2  # (m, d)
    if psi is None:
        q = (X**2) @ a.T - 2.0 * X @ (a * centres).T + mask @ (a * centres**2).T
        return -0.5 * q
    s = 1.0 + a[None, :, :] * psi[:, None, :]  # 1 where missing (psi = 0)
    delta = X[:, None, :] - centres[None, :, :]
    return -0.5 * xp.sum(mask[:, None, :] * delta**2 * a[None] / s + xp.log(s), axis=2)


def _log_phi_masked_errors(xp, X, psi, centres, lam_e, spec: _Spec, mask):
    """Full covariances (GC, VC) with input errors, per-row mask (k, d); X and psi are 0
    where missing. The marginal covariance of the observed dims is the observed block of
    ``S_j = (Lambda_j^T Lambda_j)^-1``; a missing dim i is decoupled (row and column i of
    ``S_j + Psi`` replaced by those of the identity, ``d_i = 0``): its Cholesky row is then
    ``e_i`` and the quadratic form and both determinants are those of the observed block.
    One program for all missing-band patterns (per-pattern groups multiplied the unrolled
    Cholesky code, and the compile time, by the number of patterns)."""
    d = spec.d
    gc = spec.cov == "GC"
    S = _spd_inverse(xp, lam_e[0].T @ lam_e[0] if gc else xp.einsum("mki,mkj->mij", lam_e, lam_e))
    mk = [mask[:, i, None] for i in range(d)]  # (k, 1)
    ps = [psi[:, i, None] for i in range(d)]

    def s_ij(i, j):  # GC: scalars; VC: (1, m)
        return S[i, j] if gc else S[None, :, i, j]

    def s_entry(i, j):
        return mk[i] * s_ij(i, i) + (1.0 - mk[i]) if i == j else mk[i] * mk[j] * s_ij(i, j)

    chol_s = _cholesky(xp, s_entry, d)
    chol_c = _cholesky(xp, lambda i, j: s_entry(i, j) + (ps[i] if i == j else 0.0), d)
    z = _forward_rows(chol_c, [mk[i] * (X[:, i, None] - centres[None, :, i]) for i in range(d)])
    quad = sum(zi**2 for zi in z)
    return -0.5 * quad - 0.5 * _logdet(xp, chol_c) + 0.5 * _logdet(xp, chol_s)


def _design(xp, theta, spec: _Spec, X, psi):
    """Design matrix (n, a_dim) and log noise precision (n,) for rows sorted by pattern."""
    p = _unpack(theta, spec)
    lam_e = _expand_lam(p["lam"], spec, xp)
    if spec.masked:
        observed = xp.isfinite(X)
        X = xp.where(observed, X, 0.0)
        log_phi = _log_phi_masked(xp, X, psi, p["centres"], lam_e, spec, observed.astype(X.dtype))
        phi = xp.exp(log_phi)
        ln_beta = p["b"][0] + (phi @ p["u"] if spec.hetero else 0.0 * phi[:, 0])
        if spec.linear:
            phi = xp.concatenate([phi, X, xp.ones((X.shape[0], 1))], axis=1)
        return phi, ln_beta
    parts = [
        _log_phi(
            xp,
            X[start:stop],
            None if psi is None else psi[start:stop],
            p["centres"],
            lam_e,
            spec,
            obs,
        )
        for start, stop, obs in spec.groups
    ]
    phi = xp.exp(parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0))
    ln_beta = p["b"][0] + (phi @ p["u"] if spec.hetero else 0.0 * phi[:, 0])
    if spec.linear:
        phi = xp.concatenate([phi, X, xp.ones((X.shape[0], 1))], axis=1)
    return phi, ln_beta


def _log_ml(xp, cho_solve, theta, spec: _Spec, X, psi, y, omega):
    """Log marginal likelihood (summed over rows), the weight posterior mean and the Cholesky
    factor of its precision, written once for NumPy (``xp=numpy``, SciPy's ``cho_solve``) and
    JAX (``jax.numpy``, ``jax.scipy.linalg.cho_solve``: differentiable)."""
    p = _unpack(theta, spec)
    phi, ln_beta = _design(xp, theta, spec, X, psi)
    alpha = xp.exp(p["ln_alpha"])
    wb = omega * xp.exp(ln_beta)
    sigma = (phi * wb[:, None]).T @ phi + xp.diag(alpha)
    chol = xp.linalg.cholesky(sigma)
    w = cho_solve((chol, True), phi.T @ (wb * y))
    delta = phi @ w - y
    log_ml = (
        -0.5 * xp.sum(wb * delta**2)
        - 0.5 * xp.sum(alpha * w**2)
        + 0.5 * xp.sum(p["ln_alpha"])
        - xp.sum(xp.log(xp.diagonal(chol)))
        + 0.5 * xp.sum(omega * ln_beta)
        - 0.5 * _LOG_2PI * xp.sum(omega)
    )
    if spec.hetero:
        eta = xp.exp(p["ln_eta"])
        log_ml = log_ml - 0.5 * xp.sum(eta * p["u"] ** 2) + 0.5 * xp.sum(p["ln_eta"])
        log_ml = log_ml - 0.5 * spec.m * _LOG_2PI
    return log_ml, w, chol


def _neg_log_ml(theta, spec: _Spec, X, psi, y, omega):
    """Negative log marginal likelihood per training row (JAX; differentiable).

    Returns the value and, as auxiliary output, the weight posterior mean and the Cholesky
    factor of its precision (reused to score the validation set without refactorising).
    """
    import jax.numpy as jnp
    from jax.scipy.linalg import cho_solve

    log_ml, w, chol = _log_ml(jnp, cho_solve, theta, spec, X, psi, y, omega)
    return -log_ml / X.shape[0], (w, chol)


def _objective(theta, spec: _Spec, X, psi, y, omega, spec_v, Xv, psiv, yv):
    """:func:`_neg_log_ml` plus, as auxiliary output, the validation mean log predictive
    density at ``theta`` (``-inf`` placeholder without validation rows).

    One compiled program per fit: the validation rows are scored from the same weight
    posterior, instead of a separate NumPy pass per iteration.
    """
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular

    value, (w, chol) = _neg_log_ml(theta, spec, X, psi, y, omega)
    if spec_v is None:
        return value, -value
    phiv, ln_beta_v = _design(jnp, theta, spec_v, Xv, psiv)
    z = solve_triangular(chol, phiv.T, lower=True)
    var = jnp.sum(z**2, axis=0) + jnp.exp(-ln_beta_v)
    delta = phiv @ w - yv
    lpd = -0.5 * delta**2 / var - 0.5 * jnp.log(var) - 0.5 * _LOG_2PI
    return value, jnp.mean(lpd)


_JIT_CACHE: dict[str, Any] = {}
# L-BFGS memory (scipy's default is 10). With 40 correction pairs the optimiser converges
# further within the same number of evaluations: on the benchmark's n = 2500 subsets the
# validation log predictive density rose 0.98 -> 1.11 (DC2, GC m=50; 152 -> 148 evaluations)
# and 2.688 -> 2.692 (SDSS, VC m=50; 198 -> 178 evaluations).
_LBFGS_MAXCOR = 40


def _jitted(name: str):
    """JIT-compiled objective functions, built on first use (JAX is imported lazily)."""
    if name not in _JIT_CACHE:
        import jax

        if name == "value_and_grad":
            _JIT_CACHE[name] = jax.jit(
                jax.value_and_grad(_neg_log_ml, has_aux=True), static_argnums=1
            )
        elif name == "objective":
            _JIT_CACHE[name] = jax.jit(
                jax.value_and_grad(_objective, has_aux=True), static_argnums=(1, 6)
            )
    return _JIT_CACHE[name]


def _jax_context():
    """float64 on the CPU, scoped to the caller's ``with`` block (no global config change)."""
    import contextlib

    import jax

    stack = contextlib.ExitStack()
    stack.enter_context(jax.enable_x64(True))
    stack.enter_context(jax.default_device(jax.devices("cpu")[0]))
    return stack


def _group_rows(observed: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Order rows by missing-band pattern; returns (order, groups) for :class:`_Spec`."""
    n, d = observed.shape
    if n == 0:
        return np.zeros(0, int), ()
    if observed.all():
        return np.arange(n), ((0, n, tuple(range(d))),)
    if d <= 62:
        # Each pattern as an integer, the first band its most significant bit: np.unique then
        # sorts integers (several times faster than rows of booleans, most of a prediction's
        # time before) into the same order as the rows (False < True, first band first).
        bits = np.arange(d - 1, -1, -1, dtype=np.int64)
        keys, inverse = np.unique(observed.astype(np.int64) @ (1 << bits), return_inverse=True)
        patterns = ((keys[:, None] >> bits) & 1).astype(bool)
    else:
        patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(patterns))
    groups, start = [], 0
    for k, count in enumerate(counts):
        groups.append(
            (start, start + int(count), tuple(int(i) for i in np.flatnonzero(patterns[k])))
        )
        start += int(count)
    return order, tuple(groups)


def cost_weights(y: np.ndarray, kind: str, bin_width: float | None = None) -> np.ndarray:
    """GPz's cost-sensitive learning weights for targets ``y`` (n,).

    ``"none"``: all 1. ``"balanced"``: inversely proportional to the number of training
    targets in a bin of width ``bin_width`` (default range/100) around each target, scaled so
    the most populated bin has weight 1. ``"normalized"``: ``(1 + y)^-2``, so the squared
    error is weighted like ``(dz / (1 + z))^2``.
    """
    y = np.asarray(y, float)
    if kind == "none":
        return np.ones_like(y)
    if kind == "normalized":
        return (1.0 + y) ** -2
    if kind == "balanced":
        lo, hi = float(y.min()), float(y.max())
        width = bin_width or ((hi - lo) / 100.0 if hi > lo else 1.0)
        idx = np.minimum(
            ((y - lo) / width).astype(int), max(int(np.ceil((hi - lo) / width)) - 1, 0)
        )
        counts = np.bincount(idx)
        return counts.max() / counts[idx]
    raise InputError(f"unknown weighting {kind!r}; expected one of {WEIGHTINGS}")


class _PredictsFromComponents:
    """``predict`` from ``predict_components`` (GPz and its ensemble), and NaN allowed."""

    def predict(self, X, return_std: bool = False, X_err=None):
        """Predictive mean (n,), and with ``return_std`` the total predictive std (n,)."""
        pred = self.predict_components(X, X_err=X_err)
        if return_std:
            return pred.mean, np.sqrt(pred.variance)
        return pred.mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class GPzRegressor(_PredictsFromComponents, RegressorMixin, BaseEstimator):
    """Sparse Gaussian-process regression with heteroscedastic noise (GPz).

    Parameters
    ----------
    m : int, default 100
        Number of basis functions. Must not exceed the number of training rows.
    covariance : {"GL", "VL", "GD", "VD", "GC", "VC"}, default "VD"
        Basis-function covariance: global (G) or per basis (V); isotropic (L), diagonal (D) or
        full (C).
    heteroscedastic : bool, default True
        Learn input-dependent noise ``log beta(x) = b + phi(x)^T u`` (else a constant ``b``).
    linear_mean : bool, default True
        Add a linear function of the inputs and a constant to the basis (GPz "joint").
    weights : {"none", "balanced", "normalized"}, default "none"
        Cost-sensitive learning weights (:func:`cost_weights`); ``sample_weight`` in ``fit``
        multiplies them.
    max_iter : int, default 200
        L-BFGS iterations. ``0`` keeps the initial hyperparameters (only the weight posterior
        is computed), which is an exact Bayesian linear model in the initial basis.
    n_iter_no_change : int, default 30
        Stop when the validation score has not improved by more than ``n_iter_no_change_tol``
        for this many iterations (the best iterate is kept).
    n_iter_no_change_tol : float, default 0.0
        Smallest gain of the validation mean log predictive density (nats per row) that
        restarts the patience count.
    validation_fraction : float, default 0.1
        Share of the training rows held out to choose the stopping point when ``X_valid`` is
        not given (0: no validation; the last iterate is kept).
    tol : float, default 1e-9
        L-BFGS tolerance on the relative objective change.
    normalize : bool, default True
        Standardise the inputs (training mean and standard deviation) before fitting.
    random_state : int, RandomState or None
        Seeds the choice of initial centres (a random subset of training rows) and the
        validation split.
    calibrate : bool, default True
        Scale the predictive variance so that 68.27% of the validation rows lie within 1 sigma
        (module docstring) when they show a significant miscalibration; needs at least 20
        validation rows, else the scale stays 1.
    verbose : int, default 0
        ``1`` draws a progress bar of the optimiser iterations (tqdm, on stderr); ``2`` prints
        a one-line report at most every ``SKYSENSE_PROGRESS_INTERVAL`` seconds (default 60),
        for logs (:class:`skysense._dask.ProgressLog`).

    Attributes
    ----------
    centres_ : ndarray (m, d)
        Basis centres in normalised input units.
    precisions_ : ndarray (m, d, d)
        Basis precision matrices ``Lambda_j^T Lambda_j`` (normalised input units^-2).
    log_alpha_ : ndarray (a_dim,)
        Log prior precisions of the weights (``a_dim = m`` or ``m + d + 1``).
    noise_bias_ : float
        ``b`` in ``log beta(x) = b + phi(x)^T u``.
    noise_weights_ : ndarray (m,)
        ``u`` (zeros when ``heteroscedastic=False``).
    coef_ : ndarray (a_dim,)
        Posterior mean of the weights; ``coef_cov_`` (a_dim, a_dim) its covariance.
    x_mean_, x_scale_ : ndarray (d,)
        Input normalisation; ``y_mean_`` the target offset.
    theta_ : ndarray
        All optimised parameters as one vector (the saved form).
    n_iter_, best_iteration_ : int
        Iterations run and the iteration whose parameters were kept.
    validation_scores_ : ndarray
        Validation mean log predictive density per iteration (empty without validation).
    variance_scale_ : float
        Multiplies every part of the predictive variance (1 without calibration).
    validation_coverage_raw_ : float
        Validation 1-sigma coverage before calibration (NaN without validation rows).
    """

    _parameter_constraints: dict = {
        "m": [Interval(Integral, 1, None, closed="left")],
        "covariance": [StrOptions(set(COVARIANCES))],
        "heteroscedastic": ["boolean"],
        "linear_mean": ["boolean"],
        "weights": [StrOptions(set(WEIGHTINGS))],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change_tol": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "normalize": ["boolean"],
        "random_state": ["random_state"],
        "calibrate": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        m: int = 100,
        covariance: str = "VD",
        heteroscedastic: bool = True,
        linear_mean: bool = True,
        weights: str = "none",
        max_iter: int = 200,
        n_iter_no_change: int = 30,
        n_iter_no_change_tol: float = 0.0,
        validation_fraction: float = 0.1,
        tol: float = 1e-9,
        normalize: bool = True,
        random_state=None,
        calibrate: bool = True,
        verbose: int = 0,
    ):
        self.m = m
        self.covariance = covariance
        self.heteroscedastic = heteroscedastic
        self.linear_mean = linear_mean
        self.weights = weights
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.n_iter_no_change_tol = n_iter_no_change_tol
        self.validation_fraction = validation_fraction
        self.tol = tol
        self.normalize = normalize
        self.random_state = random_state
        self.calibrate = calibrate
        self.verbose = verbose

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _check_X(X, name: str = "X", d: int | None = None) -> np.ndarray:
        try:
            X = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} must be numeric: {exc}") from exc
        if X.ndim != 2:
            raise InputError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
        if d is not None and X.shape[1] != d:
            raise InputError(f"{name} has {X.shape[1]} features but the model was trained on {d}")
        bad = np.isinf(X)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InputError(
                f"{name} holds an infinite value ({int(bad.sum())} in all); use NaN for a "
                "missing band",
                column=int(col),
                row=int(row),
            )
        return X

    def _check_err(self, X_err, X: np.ndarray, name: str = "X_err") -> np.ndarray | None:
        if X_err is None:
            return None
        err = np.asarray(X_err, dtype=float)
        if err.shape != X.shape:
            raise InputError(f"{name} has shape {err.shape}, expected {X.shape} like X")
        bad = np.isfinite(X) & ~(np.isfinite(err) & (err >= 0))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InputError(
                f"{name} must be finite and >= 0 where X is observed", column=int(col), row=int(row)
            )
        return np.where(np.isfinite(X), err, 0.0)

    @staticmethod
    def _check_y(y, n: int, name: str = "y") -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != n:
            raise InputError(f"{name} must have shape ({n},), got {y.shape}")
        bad = ~np.isfinite(y)
        if bad.any():
            raise InputError(
                f"{name} (the target) holds {int(bad.sum())} non-finite value(s)",
                row=int(np.flatnonzero(bad)[0]),
            )
        return y

    # ------------------------------------------------------------------ fit
    def fit(
        self, X, y, X_err=None, sample_weight=None, X_valid=None, y_valid=None, X_valid_err=None
    ):
        """Fit the model by maximising the log marginal likelihood.

        Parameters
        ----------
        X : array-like (n, d)
            Inputs (e.g. magnitudes). NaN marks a missing band; infinities are errors.
        y : array-like (n,)
            Targets (e.g. spectroscopic redshift).
        X_err : array-like (n, d), optional
            1-sigma input errors, propagated through the basis functions.
        sample_weight : array-like (n,), optional
            Multiplies the cost-sensitive weights.
        X_valid, y_valid, X_valid_err : optional
            Validation set choosing the stopping point (else ``validation_fraction`` of X).

        Returns
        -------
        self

        Raises
        ------
        InputError
            Bad parameters, non-finite targets, infinite inputs, rows without any observed
            band, or fewer training rows than basis functions.
        """
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise InputError(str(exc)) from exc
        X = self._check_X(X)
        n, d = X.shape
        y = self._check_y(y, n)
        err = self._check_err(X_err, X)
        empty = ~np.isfinite(X).any(axis=1)
        if empty.any():
            raise InputError(
                "a training row has no observed band", row=int(np.flatnonzero(empty)[0])
            )
        omega = cost_weights(y, self.weights)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, float)
            if sw.shape != (n,) or not np.all(np.isfinite(sw)) or np.any(sw < 0):
                raise InputError(f"sample_weight must be ({n},), finite and >= 0")
            omega = omega * sw
        rng = check_random_state(self.random_state)

        if X_valid is not None:
            if y_valid is None:
                raise InputError("X_valid given without y_valid")
            Xv = self._check_X(X_valid, "X_valid", d)
            yv = self._check_y(y_valid, Xv.shape[0], "y_valid")
            errv = self._check_err(X_valid_err, Xv, "X_valid_err")
            if (err is None) != (errv is None):
                raise InputError("give X_valid_err exactly when X_err is given")
            if (~np.isfinite(Xv).any(axis=1)).any():
                raise InputError("a validation row has no observed band")
            train_idx = np.arange(n)
        elif self.validation_fraction > 0 and n >= 20:
            valid_idx, train_idx = _holdout(n, self.validation_fraction, rng)
            Xv, yv = X[valid_idx], y[valid_idx]
            errv = None if err is None else err[valid_idx]
        else:
            train_idx, Xv, yv, errv = np.arange(n), None, None, None

        Xt, yt, omt = X[train_idx], y[train_idx], omega[train_idx]
        errt = None if err is None else err[train_idx]
        if Xt.shape[0] < self.m:
            raise InputError(
                f"{Xt.shape[0]} training rows (after holding out validation rows) are fewer "
                f"than the m={self.m} basis functions; lower m or give more galaxies"
            )
        if self.normalize:
            self.x_mean_ = np.nanmean(Xt, axis=0)
            scale = np.nanstd(Xt, axis=0)
            self.x_scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
            self.x_mean_ = np.where(np.isfinite(self.x_mean_), self.x_mean_, 0.0)
        else:
            self.x_mean_, self.x_scale_ = np.zeros(d), np.ones(d)
        self.y_mean_ = (
            float(np.sum(omt * yt) / np.sum(omt)) if np.sum(omt) > 0 else float(yt.mean())
        )
        self.n_features_in_ = d

        data = self._prepare(Xt, errt)
        yt_s, omt_s = (yt - self.y_mean_)[data[0]], omt[data[0]]
        order, spec, Xn, psi = data
        valid = None
        if Xv is not None:
            order_v, spec_v, Xvn, psiv = self._prepare(Xv, errv)
            valid = (spec_v, Xvn, psiv, (yv - self.y_mean_)[order_v], np.ones(len(yv)))

        theta0 = self._initial_theta(spec, Xn, psi, yt_s, omt_s, rng)
        theta, history, n_iter, best_it = self._optimise(theta0, spec, Xn, psi, yt_s, omt_s, valid)
        self._set_fitted(theta, spec, Xn, psi, yt_s, omt_s)
        self.validation_scores_ = np.asarray(history, float)
        self.n_iter_ = n_iter
        self.best_iteration_ = best_it
        self.variance_scale_ = 1.0
        self.validation_coverage_raw_ = float("nan")
        if Xv is not None:
            self._calibrate(Xv, errv, yv)
        return self

    def _calibrate(self, Xv, errv, yv) -> None:
        """Fit ``variance_scale_`` on the validation rows (see the module docstring)."""
        pred = self.predict_components(Xv, X_err=errv)  # variance_scale_ is 1 here
        self.validation_coverage_raw_, self.variance_scale_ = coverage_scale(
            yv, pred.mean, pred.variance, self.calibrate
        )

    def _prepare(self, X, err):
        """Normalise, order rows by missing pattern; returns (order, spec, X, psi)."""
        observed = np.isfinite(X)
        # VC without input errors keeps the pattern groups (its marginal precisions differ
        # per basis function and pattern). GC without errors: one precision per pattern,
        # matched per row (a per-row Schur complement, tried first, ran 50% slower per
        # evaluation). GC and VC with errors: per-row masked covariance blocks.
        masked = self.covariance != "VC" or err is not None
        patterns: tuple = ()
        if masked and self.covariance == "GC" and err is None:
            patterns = tuple(
                tuple(int(i) for i in np.flatnonzero(row)) for row in np.unique(observed, axis=0)
            )
        if masked:  # NaN stays: _design marginalises each row by its own mask
            order = np.arange(X.shape[0])
            groups = ((0, X.shape[0], tuple(range(X.shape[1]))),)
            Xn = (X - self.x_mean_) / self.x_scale_
        else:
            order, groups = _group_rows(observed)
            Xn = np.where(observed, (X - self.x_mean_) / self.x_scale_, 0.0)[order]
        psi = None if err is None else ((err / self.x_scale_) ** 2)[order]
        spec = _Spec(
            m=self.m,
            d=X.shape[1],
            cov=self.covariance,
            hetero=self.heteroscedastic,
            linear=self.linear_mean,
            groups=groups,
            has_psi=err is not None,
            masked=masked,
            patterns=patterns,
        )
        return order, spec, Xn, psi

    def _initial_theta(self, spec, X, psi, y, omega, rng) -> np.ndarray:
        """GPz's initialisation, with centres on a random subset of training rows."""
        n, d, m = X.shape[0], spec.d, spec.m
        X0 = np.where(np.isfinite(X), X, 0.0)  # a missing input sits at the training mean
        centres = X0[np.sort(rng.choice(n, size=m, replace=False))]
        sq = (
            np.sum(X0**2, axis=1)[:, None] - 2.0 * X0 @ centres.T + np.sum(centres**2, axis=1)[None]
        )
        mean_sq = np.maximum(sq.mean(axis=0), 1e-6)
        gamma = np.sqrt(2.0 * m ** (1.0 / d) / mean_sq)  # (m,) GPz's width heuristic
        lam = {
            "GL": np.array([gamma.mean()]),
            "VL": gamma,
            "GD": np.full(d, gamma.mean()),
            "VD": gamma[:, None] * np.ones((m, d)),
            "GC": np.eye(d) * gamma.mean(),
            "VC": gamma[:, None, None] * np.eye(d)[None],
        }[spec.cov]
        var_y = float(np.sum(omega * y**2) / np.sum(omega)) or 1.0
        parts = {
            "centres": centres,
            "lam": lam,
            "ln_alpha": np.full(spec.a_dim, -math.log(var_y)),
            "b": np.array([-math.log(var_y)]),
        }
        if spec.hetero:
            parts["u"] = np.zeros(m)
            parts["ln_eta"] = np.zeros(m)
            theta = _pack(parts, spec)
            w, _, phi, _ = _posterior_np(theta, spec, X, psi, y, omega)
            resid2 = np.maximum((y - phi @ w) ** 2, 1e-12)
            target = -np.log(resid2) - parts["b"][0]
            parts["ln_eta"] = np.full(m, math.log(max(float(np.var(target)), 1e-6)))
        return _pack(parts, spec)

    def _optimise(self, theta0, spec, X, psi, y, omega, valid):
        """L-BFGS on the JAX objective; keeps the best-on-validation iterate."""
        history: list[float] = []
        state = {"x": theta0.copy(), "it": 0, "best_it": 0, "stall": 0, "best": -np.inf}
        if self.max_iter == 0:
            return state["x"], history, 0, 0
        last: dict[str, Any] = {}

        with _jax_context():
            import jax.numpy as jnp

            if valid is None:
                vargs = (None, None, None, None)
            else:
                spec_v, Xv, psiv, yv, _ = valid
                vargs = (
                    spec_v,
                    jnp.asarray(Xv),
                    None if psiv is None else jnp.asarray(psiv),
                    jnp.asarray(yv),
                )
            args = (
                jnp.asarray(X),
                None if psi is None else jnp.asarray(psi),
                jnp.asarray(y),
                jnp.asarray(omega),
                *vargs,
            )
            vg = _jitted("objective")

            def fun(th):
                if last.get("x") is not None and np.array_equal(last["x"], th):
                    v, g = last["v"], last["g"].copy()  # L-BFGS starts where score(theta0) was
                else:
                    (v, s), g = vg(jnp.asarray(th), spec, *args)
                    v = float(v)
                    g = np.asarray(g, dtype=float)
                    # Remember the validation score at this point: the callback reads it.
                    last.update(x=np.array(th, float), v=v, s=float(s), g=g.copy())
                if not np.isfinite(v) or not np.all(np.isfinite(g)):
                    return 1e10, np.zeros_like(g)
                return v, g

            def score(th):
                if last.get("x") is None or not np.array_equal(last["x"], th):
                    fun(th)
                if not np.isfinite(last["v"]) or not np.isfinite(last["s"]):
                    return -np.inf
                return last["s"]

            first = score(theta0)
            if valid is not None:
                history.append(first)
            if np.isfinite(first):
                state["best"] = first

            from tqdm import tqdm

            bar = tqdm(
                total=self.max_iter, desc="GPz L-BFGS", disable=self.verbose != 1, leave=False
            )
            log = None
            if self.verbose >= 2:  # a log, not a terminal: one line now and then
                from skysense._dask import ProgressLog, progress_log_interval

                every = progress_log_interval()
                log = ProgressLog(self.max_iter, "GPz L-BFGS", 60.0 if every is None else every,
                                  unit="iterations")  # fmt: skip

            def callback(intermediate_result):
                state["it"] += 1
                x = np.asarray(intermediate_result.x, float)
                s = score(x)
                bar.update(1)
                bar.set_postfix(score=f"{s:.4f}", best=f"{state['best']:.4f}", refresh=False)
                if log is not None:
                    log.update()
                if valid is not None:
                    history.append(s)
                if np.isfinite(s) and s > state["best"]:
                    # Patience restarts only on a real gain (> n_iter_no_change_tol per row):
                    # a score creeping up by 1e-6 per iteration would otherwise run the fit
                    # to max_iter for nothing. The best iterate is kept either way.
                    gain = s - state["best"]
                    state.update(best=s, x=x.copy(), best_it=state["it"])
                    state["stall"] = 0 if gain > self.n_iter_no_change_tol else state["stall"] + 1
                else:
                    state["stall"] += 1
                if state["stall"] >= self.n_iter_no_change:
                    raise StopIteration

            try:
                optimize.minimize(
                    fun,
                    theta0,
                    jac=True,
                    method="L-BFGS-B",
                    callback=callback,
                    options={
                        "maxiter": self.max_iter,
                        "ftol": self.tol,
                        "gtol": 1e-10,
                        "maxcor": _LBFGS_MAXCOR,
                    },
                )
            finally:
                bar.close()
        return state["x"], history, state["it"], state["best_it"]

    def _set_fitted(self, theta, spec, X, psi, y, omega):
        self.theta_ = np.asarray(theta, float)
        w, cov, _, _ = _posterior_np(theta, spec, X, psi, y, omega)
        self.coef_, self.coef_cov_ = w, cov
        p = _unpack(self.theta_, spec)
        lam_e = _expand_lam(p["lam"], spec, np)
        if spec.cov[1] == "C":
            self.precisions_ = np.einsum("mki,mkj->mij", lam_e, lam_e)
        else:
            self.precisions_ = np.einsum("md,de->mde", lam_e**2, np.eye(spec.d))
        self.centres_ = p["centres"].copy()
        self.log_alpha_ = p["ln_alpha"].copy()
        self.noise_bias_ = float(p["b"][0])
        self.noise_weights_ = p["u"].copy() if spec.hetero else np.zeros(spec.m)
        self.log_eta_ = p["ln_eta"].copy() if spec.hetero else np.zeros(0)
        self.train_loss_ = float(_neg_log_ml_np(theta, spec, X, psi, y, omega))

    # ------------------------------------------------------------------ predict
    def _spec(self, groups=(), has_psi=False) -> _Spec:
        return _Spec(
            m=self.m,
            d=self.n_features_in_,
            cov=self.covariance,
            hetero=self.heteroscedastic,
            linear=self.linear_mean,
            groups=groups,
            has_psi=has_psi,
        )

    def predict_components(self, X, X_err=None) -> GPzPrediction:
        """Predictive mean and variance split into model, noise and input-noise parts.

        Parameters
        ----------
        X : array-like (n, d)
            Inputs in the training units; NaN marks a missing band.
        X_err : array-like (n, d), optional
            1-sigma input errors (same units as X).

        Returns
        -------
        GPzPrediction
            Arrays of shape (n,); rows without any finite input hold NaN.
        """
        if not hasattr(self, "theta_"):
            raise NotFittedError("this GPzRegressor is not fitted yet; call fit first")
        X = self._check_X(X, "X", self.n_features_in_)
        err = self._check_err(X_err, X)
        n = X.shape[0]
        out = [np.full(n, np.nan) for _ in range(4)]
        ok = np.flatnonzero(np.isfinite(X).any(axis=1))
        for start in range(0, len(ok), _PREDICT_CHUNK):
            rows = ok[start : start + _PREDICT_CHUNK]
            parts = self._predict_rows(X[rows], None if err is None else err[rows])
            for target, values in zip(out, parts):
                target[rows] = values
        return GPzPrediction(*out)

    def _predict_rows(self, X, err):
        observed = np.isfinite(X)
        order, groups = _group_rows(observed)
        spec = self._spec(groups, err is not None)
        Xn = np.where(observed, (X - self.x_mean_) / self.x_scale_, 0.0)[order]
        psi = None if err is None else ((err / self.x_scale_) ** 2)[order]
        phi, ln_beta = _design(np, self.theta_, spec, Xn, psi)
        mean = phi @ self.coef_ + self.y_mean_
        # Models saved before calibration existed have no variance_scale_: scale 1.
        scale = float(getattr(self, "variance_scale_", 1.0))
        # phi_i^T C phi_i as one matrix product (np.einsum's three-operand loop took as long
        # as the rest of the prediction)
        model_var = scale * np.sum((phi @ self.coef_cov_) * phi, axis=1)
        noise_var = scale * np.exp(-ln_beta)
        input_var = (
            np.zeros_like(mean) if psi is None else scale * self._input_variance(spec, Xn, psi)
        )
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return mean[inverse], model_var[inverse], noise_var[inverse], input_var[inverse]

    def _input_variance(self, spec, X, psi) -> np.ndarray:
        """Var over x ~ N(X, diag(psi)) of the mean function, per row (n,)."""
        if spec.cov[1] != "C":
            # Diagonal covariances marginalise a band by dropping its terms: all missing-band
            # patterns in one masked pass (per-pattern groups paid per-group overheads).
            mask = np.zeros(X.shape, bool)
            for start, stop, obs in spec.groups:
                mask[start:stop, list(obs)] = True
            return np.maximum(self._input_variance_diag(X, psi, mask), 0.0)
        out = np.empty(X.shape[0])
        for start, stop, obs in spec.groups:
            out[start:stop] = self._input_variance_full(X[start:stop], psi[start:stop], obs)
        return np.maximum(out, 0.0)

    def _input_variance_diag(self, X, psi, mask) -> np.ndarray:
        """Closed-form moments for diagonal basis covariances (as GPz's predictDiag).

        X, psi, mask: (n, d); ``mask`` marks the observed bands (a missing band contributes
        no term). Vectorised over rows (in chunks bounding the (rows, pairs, bands)
        temporaries) and over the ``m (m + 1) / 2`` unordered basis pairs (the pair moments
        are symmetric).
        """
        m, d = self.m, self.n_features_in_
        a = np.diagonal(self.precisions_, axis1=1, axis2=2)  # (m, d)
        P = self.centres_
        mk = mask.astype(float)
        s = np.where(mask, psi, 0.0)  # no noise on a missing band: its terms vanish
        w = self.coef_[:m]
        jj, kk = np.triu_indices(m)
        w_pair = w[jj] * w[kk] * np.where(jj == kk, 1.0, 2.0)  # (T,)
        # Pair products phi_j phi_k = Z_jk exp(-1/2 (x-c)^T B (x-c)), B = a_j + a_k;
        # log Z_jk = -1/2 sum over observed bands of G.
        B = a[jj] + a[kk]  # (T, d)
        c = (a[jj] * P[jj] + a[kk] * P[kk]) / B
        G = a[jj] * a[kk] / B * (P[jj] - P[kk]) ** 2
        wx = self.coef_[m : m + d] if self.linear_mean else None
        out = np.empty(X.shape[0])
        step = max(1, _MOMENT_CHUNK // (len(jj) * d))
        for start in range(0, X.shape[0], step):
            rows = slice(start, start + step)
            xs, ss, ms = X[rows, None, :], s[rows, None, :], mk[rows, None, :]  # (k, 1, d)
            # E[phi_j]: (k, m)
            sj = 1.0 + a * ss
            e_phi = np.exp(
                -0.5 * np.sum((xs - P) ** 2 * (a * ms / sj), axis=2)
                - 0.5 * np.log(np.prod(sj, axis=2))
            )
            # E[phi_j phi_k]: (k, T), accumulated band by band (a reduction over a short
            # last axis of a (k, T, d) array is several times slower in NumPy).
            quad = mk[rows] @ G.T
            det = np.ones_like(quad)
            for i in range(d):
                sb = 1.0 + B[:, i] * s[rows, i, None]  # (k, T)
                quad += (X[rows, i, None] - c[:, i]) ** 2 * (B[:, i] * mk[rows, i, None] / sb)
                det *= sb
            e_pair = np.exp(-0.5 * quad - 0.5 * np.log(det))
            v = e_pair @ w_pair - (e_phi @ w) ** 2
            if wx is not None:
                # E[phi_j x] - E[phi_j] x = E[phi_j] psi a (p - x) / (1 + psi a) (GPz's cij);
                # zero on a missing band (psi = 0 there).
                cov_phi_x = e_phi[..., None] * (ss * a * (P - xs) / sj)  # (k, m, d)
                v = v + 2.0 * (cov_phi_x @ wx) @ w + s[rows] @ wx**2
            out[rows] = v
        return out

    def _input_variance_full(self, X, psi, obs) -> np.ndarray:
        """Closed-form moments for full basis covariances (as GPz's predictCov).

        With ``A_j`` the (marginal) basis precisions, ``phi_j phi_k = Z_jk exp(-1/2 (x - c_jk)^T
        B_jk (x - c_jk))`` with ``B_jk = A_j + A_k``; its expectation under ``N(x0, Psi)`` is
        ``Z_jk |I + B Psi|^-1/2 exp(-1/2 (x0 - c)^T (B^-1 + Psi)^-1 (x0 - c))``.

        The (rows x pairs) small systems are factored by the unrolled Cholesky helpers,
        elementwise over the batch (a batched LAPACK call pays its overhead per tiny matrix),
        over the ``m (m + 1) / 2`` unordered pairs, in row chunks bounding memory.
        """
        o = list(obs)
        m, d, no = self.m, self.n_features_in_, len(obs)
        A = self.precisions_
        if no < d:
            A = np.linalg.inv(np.linalg.inv(A)[:, o][:, :, o])
        S = np.linalg.inv(A)
        P, Xo, s = self.centres_[:, o], X[:, o], psi[:, o]
        w = self.coef_[:m]
        jj, kk = np.triu_indices(m)
        w_pair = w[jj] * w[kk] * np.where(jj == kk, 1.0, 2.0)  # (T,)
        B = A[jj] + A[kk]  # (T, o, o)
        h = np.einsum("mij,mj->mi", A, P)
        hb = h[jj] + h[kk]
        B_inv = np.linalg.inv(B)
        c = np.einsum("tij,tj->ti", B_inv, hb)
        pap = np.einsum("mi,mi->m", P, h)
        log_z = -0.5 * (pap[jj] + pap[kk] - np.einsum("ti,ti->t", hb, c))
        log_z = log_z - 0.5 * np.linalg.slogdet(B)[1]
        logdet_s = np.linalg.slogdet(S)[1]
        wxo = self.coef_[m : m + d][o] if self.linear_mean else None
        out = np.empty(X.shape[0])
        step = max(1, _MOMENT_CHUNK // (len(jj) * no))
        for start in range(0, X.shape[0], step):
            xs, ss = Xo[start : start + step], s[start : start + step]  # (k, o)
            diag = [ss[:, i, None] for i in range(no)]  # (k, 1)

            def m_entry(i, j, diag=diag):  # (B^-1 + Psi)[i, j]: (k, T)
                return B_inv[None, :, i, j] + diag[i] if i == j else B_inv[None, :, i, j]

            L = _cholesky(np, m_entry, no)
            z = _forward_rows(L, [xs[:, i, None] - c[None, :, i] for i in range(no)])
            e_pair = np.exp(log_z[None] - 0.5 * sum(zi**2 for zi in z) - 0.5 * _logdet(np, L))

            def c_entry(i, j, diag=diag):  # (Sigma_j + Psi)[i, j]: (k, m)
                return S[None, :, i, j] + diag[i] if i == j else S[None, :, i, j]

            Lc = _cholesky(np, c_entry, no)
            dj = [xs[:, i, None] - P[None, :, i] for i in range(no)]  # (k, m) each
            zc = _forward_rows(Lc, dj)
            e_phi = np.exp(-0.5 * sum(zi**2 for zi in zc) - 0.5 * _logdet(np, Lc) + 0.5 * logdet_s)
            v = e_pair @ w_pair - (e_phi @ w) ** 2
            if wxo is not None:
                # E[phi_j x] - E[phi_j] x0 = E[phi_j] Psi (Sigma_j + Psi)^-1 (p_j - x0).
                solj = _backward_rows(Lc, zc)  # (Sigma_j + Psi)^-1 (x0 - p_j), rows (k, m)
                t = sum(wxo[i] * ss[:, i, None] * solj[i] for i in range(no))  # (k, m)
                v = v - 2.0 * (e_phi * t) @ w + ss @ wxo**2
            out[start : start + step] = v
        return out


def _holdout(n: int, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (validation, training) row indices: a random ``fraction`` of ``n`` held out."""
    perm = rng.permutation(n)
    n_valid = max(1, int(round(fraction * n)))
    return np.sort(perm[:n_valid]), np.sort(perm[n_valid:])


def _posterior_np(theta, spec, X, psi, y, omega):
    """Weight posterior (mean (a,), covariance (a, a)), design (n, a), log beta (n,)."""
    p = _unpack(theta, spec)
    phi, ln_beta = _design(np, theta, spec, X, psi)
    wb = omega * np.exp(ln_beta)
    sigma = (phi * wb[:, None]).T @ phi + np.diag(np.exp(p["ln_alpha"]))
    chol = sla.cho_factor(sigma, lower=True)
    w = sla.cho_solve(chol, phi.T @ (wb * y))
    cov = sla.cho_solve(chol, np.eye(sigma.shape[0]))
    return w, 0.5 * (cov + cov.T), phi, ln_beta


def _neg_log_ml_np(theta, spec, X, psi, y, omega) -> float:
    """NumPy twin of :func:`_neg_log_ml` (used for reporting, not for gradients)."""
    log_ml, _, _ = _log_ml(np, sla.cho_solve, theta, spec, X, psi, y, omega)
    return float(-log_ml / X.shape[0])


def coverage_scale(y, mean, variance, calibrate: bool = True) -> tuple[float, float]:
    """Raw 1-sigma coverage and the variance scale that calibrates it (module docstring).

    Parameters
    ----------
    y, mean, variance : ndarray (n,)
        Validation targets and the uncalibrated predictive mean and variance (NaN rows are
        skipped).
    calibrate : bool
        False: the scale stays 1 (the raw coverage is still measured).

    Returns
    -------
    (raw, scale)
        ``raw`` the share of rows within 1 sigma (NaN without rows); ``scale`` multiplies the
        variance: the squared 68.27% quantile of ``|y - mean| / sigma`` when the raw coverage
        differs from 68.27% by more than twice its binomial standard error and n >= 20, else 1.
    """
    ok = np.isfinite(mean) & np.isfinite(variance)
    r = np.abs(np.asarray(y)[ok] - mean[ok]) / np.sqrt(variance[ok])
    if r.size == 0:
        return float("nan"), 1.0
    raw = float(np.mean(r <= 1.0))
    # Only a significant miscalibration is corrected: the raw coverage must differ from
    # 68.27% by more than twice its binomial standard error, so that a calibrated model is
    # not perturbed by the sampling noise of a small validation set.
    target = math.erf(1.0 / math.sqrt(2.0))
    significant = abs(raw - target) > 2.0 * math.sqrt(target * (1.0 - target) / r.size)
    if calibrate and r.size >= 20 and significant:
        s = float(np.quantile(r, target))
        if np.isfinite(s) and s > 0:
            return raw, s * s
    return raw, 1.0
