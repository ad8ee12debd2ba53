"""Convergence diagnostics: rank-normalised split R-hat and bulk effective sample size.

The definitions follow Vehtari et al. (2021, Bayesian Analysis 16, 667), as ArviZ implements
them (``arviz.rhat(method="rank")``, ``arviz.ess(method="bulk")``); the tests check the numbers
against ArviZ. Implemented here so that per-source diagnostics of thousands of sources cost
one vectorised FFT instead of one ArviZ call per source.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtri
from scipy.stats import rankdata

from skysense._docstrings import fill

__all__ = ["split_rhat", "ess_bulk", "summarise_convergence", "RHAT_MAX", "ESS_MIN"]

#: A source is flagged as not converged when R-hat exceeds this or its ESS is below ESS_MIN.
RHAT_MAX = 1.01
ESS_MIN = 100.0

# the one shape convention of the per-parameter diagnostics
_PER_PARAM_DOC = """\
Parameters
----------
draws : ndarray (chains, draws, *params)

Returns
-------
ndarray (*params)
"""


def _as_params(x: np.ndarray) -> np.ndarray:
    """(chains, draws, *params) -> (n_params, chains, draws)."""
    x = np.asarray(x, dtype=float)
    if x.ndim < 2:
        raise ValueError("draws must have shape (chains, draws, ...)")
    c, n = x.shape[:2]
    return np.moveaxis(x.reshape(c, n, -1), 2, 0)


def _split(x: np.ndarray) -> np.ndarray:
    """(p, chains, draws) -> (p, 2 chains, draws // 2), dropping the middle draw if odd."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., -half:]], axis=1)


def _per_param(stat, draws: np.ndarray) -> np.ndarray:
    """``stat`` of split chains (p, 2 chains, draws // 2) -> (p,), for draws
    (chains, draws, *params); the result has shape (*params)."""
    draws = np.asarray(draws, dtype=float)
    return stat(_split(_as_params(draws))).reshape(draws.shape[2:])


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each parameter's pooled draws (ties get their average rank)."""
    p = x.shape[0]
    flat = x.reshape(p, -1)
    r = rankdata(flat, axis=1, method="average")
    z = ndtri((r - 0.375) / (flat.shape[1] + 0.25))
    return z.reshape(x.shape)


def _rhat_core(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    chain_mean = x.mean(axis=-1)
    within = x.var(axis=-1, ddof=1).mean(axis=-1)
    between = n * chain_mean.var(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


@fill(per_param=_PER_PARAM_DOC)
def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat (the larger of the bulk and the folded/tail values).

    %(per_param)s
    """
    return _per_param(_split_rhat_core, draws)


def _split_rhat_core(x: np.ndarray) -> np.ndarray:
    bulk = _rhat_core(_z_scale(x))
    folded = np.abs(x - np.median(x.reshape(x.shape[0], -1), axis=1)[:, None, None])
    tail = _rhat_core(_z_scale(folded))
    out = np.maximum(bulk, tail)
    const = np.ptp(x.reshape(x.shape[0], -1), axis=1) == 0
    out[const] = np.nan
    return out


@numba.njit(cache=True)
def _geyer_tau(rho: np.ndarray) -> float:
    """Integrated autocorrelation time from the chain-averaged autocorrelation (Geyer 1992)."""
    n = rho.size
    r = rho.copy()
    r[0] = 1.0
    even, odd = 1.0, r[1]
    t = 1
    while t < n - 3 and even + odd > 0.0:
        even, odd = r[t + 1], r[t + 2]
        if even + odd < 0.0:
            r[t + 1] = 0.0
            r[t + 2] = 0.0
        t += 2
    max_t = t - 2
    if even > 0.0 and max_t + 1 < n:
        r[max_t + 1] = even
    t = 1
    while t <= max_t - 2:  # initial monotone sequence
        if r[t + 1] + r[t + 2] > r[t - 1] + r[t]:
            r[t + 1] = 0.5 * (r[t - 1] + r[t])
            r[t + 2] = r[t + 1]
        t += 2
    tau = -1.0 + 2.0 * r[: max_t + 1].sum()
    if max_t + 1 < n:
        tau += r[max_t + 1]
    return tau


def _ess_core(x: np.ndarray) -> np.ndarray:
    """ESS of each parameter of ``x`` (p, chains, draws)."""
    p, m, n = x.shape
    centred = x - x.mean(axis=-1, keepdims=True)
    nfft = next_fast_len(2 * n)
    spec = rfft(centred, n=nfft, axis=-1)
    acov = irfft(spec * np.conjugate(spec), n=nfft, axis=-1)[..., :n] / n
    mean_acov = acov.mean(axis=1)  # (p, n)
    mean_var = mean_acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + x.mean(axis=-1).var(axis=-1, ddof=1)
    out = np.empty(p)
    total = m * n
    for i in range(p):
        if not var_plus[i] > 0:
            out[i] = np.nan
            continue
        rho = 1.0 - (mean_var[i] - mean_acov[i]) / var_plus[i]
        tau = max(_geyer_tau(rho), 1.0 / np.log10(total))
        out[i] = total / tau
    return out


@fill(per_param=_PER_PARAM_DOC)
def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk effective sample size (rank-normalised, split chains).

    %(per_param)s
    """
    return _per_param(lambda x: _ess_core(_z_scale(x)), draws)


def summarise_convergence(
    draws: np.ndarray, *, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, ESS and the not-converged flag of each parameter.

    Returns
    -------
    rhat, ess : ndarray (*params)
    flag : ndarray (*params), bool, True where ``rhat > rhat_max`` or ``ess < ess_min``
    """
    rhat = split_rhat(draws)
    ess = ess_bulk(draws)
    flag = (rhat > rhat_max) | (ess < ess_min)
    return rhat, ess, flag
