"""Fitting photometry with a model grid, as CIGALE does, vectorised (pure).

For every object and every model at the object's redshift node:

* the normalisation ``s`` minimising chi^2 is analytic without upper limits,
  ``s = sum(f m / sigma^2) / sum(m^2 / sigma^2)``, so chi^2 for all models is two matrix
  products (BLAS); with upper limits CIGALE's term ``-2 ln Phi((f_lim - s m) / sigma)`` is added
  and ``s`` found by Newton's method (the objective is convex in ``s``), vectorised over models;
* the likelihood is ``exp(-chi^2 / 2)``; Bayesian estimates are the likelihood-weighted mean and
  standard deviation of each parameter over the grid, times the grid's prior weight of each
  model (the grid's ``age_prior``: by default uniform in linear age; CIGALE's equal weights
  with ``nodes``); extensive
  properties (stellar mass, SFR, L_dust) are scaled by each model's normalisation and averaged
  in log10, over the models where they are positive (a model without attenuation has no dust
  luminosity, hence no log L_dust);
* the best model is the one of least chi^2; its reduced chi^2 is chi^2 / (n_bands - 1).

Energy balance (Małek et al. 2018): the bands bluer than ``ir_min_um`` (observed) and the
redder ones are also fitted alone. ``chi2_opt`` and ``chi2_ir`` are the reduced chi^2 of the
best joint model over each half; ``delta_chi2_eb`` is how much worse the joint fit is than the
two halves fitted independently (chi^2 units), and ``flag_energy_balance`` is set where it
exceeds a threshold derived from a mock analysis (:func:`energy_balance_threshold`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from skysense.errors import InputError
from skysense.sed import _kernels
from skysense.sed.filters import IR_MIN_UM
from skysense.sed.grid import EXTENSIVE, PARAMETERS, ModelGrid

__all__ = [
    "check_photometry",
    "best_scale_chi2",
    "fit_photometry",
    "mock_photometry",
    "recovery_summary",
    "energy_balance_threshold",
    "posterior_weights",
    "DEFAULT_EB_THRESHOLD",
    "MIN_BANDS",
    "OUTPUT_QUANTITIES",
]

MIN_BANDS = 3
# Threshold on delta_chi2_eb: see energy_balance_threshold and docs/sed.md (99th percentile of
# energy-balanced mock galaxies, rounded up).
DEFAULT_EB_THRESHOLD = 10.0
_LOG_FLOOR = 1e-30
OUTPUT_QUANTITIES = (*EXTENSIVE, "a_v", "a_fuv", *PARAMETERS)


def check_photometry(
    flux_mjy, err_mjy, upper=None, ids=None, bands=None, min_bands: int = MIN_BANDS
):
    """Validate photometry; returns (flux, inverse variance, upper mask) with missing bands zeroed.

    A band is usable when its flux and error are finite and the error is positive. A finite
    flux with a negative, zero or non-finite error is an error, as is an object with fewer
    than ``min_bands`` usable bands.

    Raises
    ------
    InputError
        Naming the first bad object (by ``ids`` when given) and band.
    """
    f = np.array(flux_mjy, dtype=float, ndmin=2)
    e = np.array(err_mjy, dtype=float, ndmin=2)
    if f.shape != e.shape:
        raise InputError(f"fluxes {f.shape} and errors {e.shape} differ in shape")
    up = np.zeros(f.shape, bool) if upper is None else np.array(upper, dtype=bool, ndmin=2)
    if up.shape != f.shape:
        raise InputError("upper-limit mask must have the shape of the fluxes")

    def who(i, j=None):
        obj = f"object {ids[i]!r}" if ids is not None else f"row {i}"
        if j is None:
            return obj
        return f"{obj}, band {bands[j]!r}" if bands is not None else f"{obj}, band {j}"

    has_flux = np.isfinite(f)
    bad = has_flux & ~(np.isfinite(e) & (e > 0))
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        raise InputError(f"{who(i, j)}: error {e[i, j]!r} must be finite and positive "
                         f"({int(bad.sum())} such value(s))")  # fmt: skip
    usable = has_flux
    n_use = usable.sum(axis=1)
    few = n_use < min_bands
    if np.any(few):
        i = int(np.flatnonzero(few)[0])
        raise InputError(f"{who(i)}: {int(n_use[i])} usable band(s), at least {min_bands} needed "
                         f"({int(few.sum())} such object(s))")  # fmt: skip
    inv_var = np.where(usable, 1.0 / np.where(usable, e, 1.0) ** 2, 0.0)
    return np.where(usable, f, 0.0), inv_var, up & usable


def best_scale_chi2(flux, inv_var, upper, models, return_curvature: bool = False):
    """Best normalisation and chi^2 of every model for every object.

    Parameters
    ----------
    flux, inv_var : ndarrays (n_obj, n_band)
        Fluxes (0 where missing) and 1/sigma^2 (0 where missing), same unit as ``models``.
    upper : ndarray (n_obj, n_band), bool
        Upper limits: ``flux`` is the limit, sigma its error.
    models : ndarray (n_mod, n_band)
        Model fluxes per unit normalisation.

    return_curvature : bool
        Also return ``sum(m^2 / sigma^2)`` over detected bands (1 / variance of the scale).

    Returns
    -------
    (scale, chi2[, curvature]) : ndarrays (n_obj, n_mod)
    """
    m = np.ascontiguousarray(models, dtype=float)
    det = np.ascontiguousarray(np.where(upper, 0.0, inv_var))
    flux = np.ascontiguousarray(flux, dtype=float)
    a = np.sum(flux**2 * det, axis=1)[:, None]
    shape = (flux.shape[0], m.shape[0])
    s, chi2, c = np.empty(shape), np.empty(shape), np.empty(shape)
    _kernels.scale_chi2_detections(flux, det, m, s, chi2, c)
    for i in np.flatnonzero(upper.any(axis=1)):
        b = m @ (flux[i] * det[i])
        s[i], chi2[i] = _newton_upper(flux[i], inv_var[i], upper[i], m, s[i], b, c[i], a[i, 0])
    if return_curvature:
        return s, chi2, c
    return s, chi2


def _newton_upper(f, iv, up, m, s, b, c, a, n_iter: int = 12):
    """Upper limits for one object: minimise over s, vectorised over models."""
    sig = 1.0 / np.sqrt(iv[up])
    lim = f[up]
    mu = m[:, up] / sig  # (n_mod, n_ul)
    if not np.any(c > 0):
        s = np.zeros_like(s)
    s = np.where(c > 0, s, 0.0)
    for _ in range(n_iter):
        u = lim / sig - s[:, None] * mu
        lam = np.exp(_log_phi(u) - log_ndtr(u))  # inverse Mills ratio phi/Phi
        g = -2 * (b - s * c) + 2 * np.sum(mu * lam, axis=1)
        h = 2 * c + 2 * np.sum(mu**2 * (u * lam + lam**2), axis=1)
        s = np.clip(s - g / np.where(h > 0, h, 1.0), 0.0, None)
    u = lim / sig - s[:, None] * mu
    chi2 = a - 2 * s * b + s**2 * c - 2 * np.sum(log_ndtr(u), axis=1)
    return s, chi2


def _log_phi(u):
    return -0.5 * u**2 - 0.5 * np.log(2 * np.pi)


def fit_photometry(
    grid: ModelGrid,
    flux_mjy: np.ndarray,
    err_mjy: np.ndarray,
    z: np.ndarray,
    *,
    z_err: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    ir_min_um: float = IR_MIN_UM,
    eb_threshold: float = DEFAULT_EB_THRESHOLD,
    block_elements: int = 4_000_000,
) -> pd.DataFrame:
    """Fit objects with a grid: Bayesian and best-model values, chi^2, energy-balance flag.

    Parameters
    ----------
    grid : ModelGrid
    flux_mjy, err_mjy : ndarrays (n, n_band), mJy
        Photometry in ``grid.bands`` order; NaN flux = band not observed.
    z : ndarray (n,)
        Redshifts; without ``z_err`` each object is fitted at the nearest node of the grid.
    z_err : ndarray (n,), optional
        Photo-z errors: the fit is marginalised over the grid's redshift nodes within 3 sigma
        (Gaussian prior weights; the nearest node always); NaN or 0 = a fixed redshift.
    upper : ndarray (n, n_band), bool, optional
        Upper limits (``flux_mjy`` is the limit).
    ids : ndarray (n,), optional
        Object names, used in error messages and as the ``help_id`` column.
    ir_min_um : float
        Observed pivot wavelength from which a band counts as infrared.
    eb_threshold : float
        ``flag_energy_balance`` = ``delta_chi2_eb > eb_threshold``.
    block_elements : int
        Objects x models held in memory at once (bounds memory).

    Returns
    -------
    pandas.DataFrame (n rows)
        ``help_id``, ``redshift``, ``z_grid`` (node of the best model), ``best_model``,
        ``best_scale``, ``chi2``, ``reduced_chi2``, ``chi2_opt``, ``chi2_ir``,
        ``delta_chi2_eb``, ``n_bands``, ``flag_energy_balance``, and ``bayes_<q>``,
        ``bayes_<q>_err``, ``best_<q>`` for each quantity (log10 M_sun, log10 M_sun/yr,
        log10 L_sun for the extensive ones).

    Raises
    ------
    InputError
        Bad errors, too few bands, redshift outside the grid (naming the object).
    """
    n_band = len(grid.bands)
    flux_mjy = np.array(flux_mjy, dtype=float, ndmin=2)
    if flux_mjy.shape[1] != n_band:
        raise InputError(f"photometry has {flux_mjy.shape[1]} bands, the grid {n_band}")
    f, iv, up = check_photometry(flux_mjy, err_mjy, upper, ids, grid.bands)
    z = np.atleast_1d(np.asarray(z, dtype=float))
    if z.shape != (f.shape[0],):
        raise InputError("one redshift per object is needed")
    iz = grid.redshift_index(z, ids)
    n = f.shape[0]
    if z_err is not None:
        z_err = np.atleast_1d(np.asarray(z_err, dtype=float))
        if z_err.shape != z.shape or np.any(z_err < 0):
            raise InputError("z_err must give one non-negative value (or NaN) per object")
    ir = grid.band_pivot_um >= ir_min_um
    out = _empty_result(n)
    out["z_index"] = iz.copy()
    acc = _Moments(n)
    model_log_prior = grid.log_prior()
    tables = _quantity_tables(grid)  # per model, the same for every block
    step = max(1, block_elements // grid.n_models)
    for k in range(grid.redshifts.size):
        log_prior = np.where(iz == k, 0.0, -np.inf)
        if z_err is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                d = (grid.redshifts[k] - z) / z_err
            near = np.isfinite(d) & (np.abs(d) <= 3.0)
            log_prior = np.where(near, -0.5 * d**2, log_prior)
            # the nearest node always counts; normalisation over nodes comes from the sums
            log_prior = np.where(iz == k, np.where(np.isfinite(d), -0.5 * d**2, 0.0), log_prior)
        rows_k = np.flatnonzero(np.isfinite(log_prior))
        if rows_k.size == 0:
            continue
        models = grid.fluxes_mjy[k].astype(float)
        for start in range(0, rows_k.size, step):
            rows = rows_k[start : start + step]
            _fit_block(grid, k, models, f[rows], iv[rows], up[rows], ir, rows, out, acc,
                       log_prior[rows], model_log_prior, tables)  # fmt: skip
    acc.finish(out)
    iz_best = out.pop("z_index")
    table = pd.DataFrame(out)
    table.insert(0, "help_id", np.arange(n) if ids is None else np.asarray(ids))
    table.insert(1, "redshift", z)
    table.insert(2, "z_grid", grid.redshifts[iz_best])
    usable_opt = (iv > 0)[:, ~ir].sum(axis=1)
    usable_ir = ((iv > 0) & ~up)[:, ir].sum(axis=1)
    table["flag_energy_balance"] = (
        (table["delta_chi2_eb"] > eb_threshold) & (usable_opt >= MIN_BANDS) & (usable_ir >= 1)
    )
    return table


def _empty_result(n: int) -> dict:
    out = {name: np.full(n, np.nan) for name in ("chi2", "reduced_chi2", "chi2_opt", "chi2_ir",
                                                  "delta_chi2_eb", "best_scale")}  # fmt: skip
    out["chi2"][:] = np.inf
    out["best_model"] = np.full(n, -1, dtype=np.int64)
    out["n_bands"] = np.zeros(n, dtype=np.int64)
    for q in OUTPUT_QUANTITIES:
        out[f"bayes_{q}"] = np.full(n, np.nan)
        out[f"bayes_{q}_err"] = np.full(n, np.nan)
        out[f"best_{q}"] = np.full(n, np.nan)
    return out


class _Moments:
    """Likelihood-weighted first and second moments summed over redshift nodes (log-sum-exp),
    per quantity: an extensive quantity that some models lack (zero L_dust) has its own weight."""

    def __init__(self, n: int):
        self.log_max = {q: np.full(n, -np.inf) for q in OUTPUT_QUANTITIES}
        self.total = {q: np.zeros(n) for q in OUTPUT_QUANTITIES}
        self.m1 = {q: np.zeros(n) for q in OUTPUT_QUANTITIES}
        self.m2 = {q: np.zeros(n) for q in OUTPUT_QUANTITIES}

    def add(self, rows, log_weight: dict, means: dict, seconds: dict) -> None:
        for q in means:
            lw = log_weight[q]
            new_max = np.maximum(self.log_max[q][rows], lw)
            finite = np.isfinite(new_max)
            old = np.where(finite, np.exp(self.log_max[q][rows] - np.where(finite, new_max, 0)), 0)
            new = np.where(finite, np.exp(lw - np.where(finite, new_max, 0)), 0.0)
            self.log_max[q][rows] = new_max
            self.total[q][rows] = self.total[q][rows] * old + new
            # 0 * NaN would poison the sums where a node has no model with the quantity
            self.m1[q][rows] = self.m1[q][rows] * old + np.where(new > 0, means[q] * new, 0.0)
            self.m2[q][rows] = self.m2[q][rows] * old + np.where(new > 0, seconds[q] * new, 0.0)

    def finish(self, out: dict) -> None:
        for q in self.m1:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = self.m1[q] / self.total[q]
                var = self.m2[q] / self.total[q] - mean**2
            out[f"bayes_{q}"] = mean
            out[f"bayes_{q}_err"] = np.sqrt(np.maximum(var, 0.0))


def _quantity_tables(grid):
    """(log10 extensive per model (n_mod, 5), intensive per model (n_mod, n_q), their names)."""
    # a zero quantity (no dust luminosity without attenuation) has no logarithm: -inf, which
    # the moments leave out (flooring it at 1e-30 would drag the log mean down by decades)
    log_ext = np.stack(
        [np.where(grid.props[q] > 0, np.log10(np.maximum(grid.props[q], _LOG_FLOOR)), -np.inf)
         for q in EXTENSIVE], axis=1,
    )  # fmt: skip
    names = ("a_v", "a_fuv", *PARAMETERS)
    intensive = np.stack(
        [np.nan_to_num(grid.props[q] if q in grid.props else grid.params[q]) for q in names], axis=1
    )
    return np.ascontiguousarray(log_ext), np.ascontiguousarray(intensive, dtype=float), names


def _fit_block(grid, k, models, f, iv, up, ir, rows, out, acc, log_prior,
               model_log_prior, tables) -> None:  # fmt: skip
    valid = grid.valid[k]
    alone_all = None
    if up.any():
        s, chi2, curv = best_scale_chi2(f, iv, up, models, return_curvature=True)
    else:  # one fused pass gives the joint fit and both halves fitted alone
        shape = (f.shape[0], models.shape[0])
        s, chi2, curv = np.empty(shape), np.empty(shape), np.empty(shape)
        alone_all = np.empty(f.shape[0])
        _kernels.scale_chi2_split(np.ascontiguousarray(f), np.ascontiguousarray(iv), ir, models,
                                  valid, s, chi2, curv, alone_all)  # fmt: skip
    chi2 = np.where(valid[None, :], chi2, np.inf)
    best = np.argmin(chi2, axis=1)
    idx = np.arange(rows.size)
    chi2_min = chi2[idx, best]
    n_use = (iv > 0).sum(axis=1)
    s_best = s[idx, best]
    log_s = np.log10(np.maximum(s, _LOG_FLOOR))

    # best-model values: this node's best where it beats the other nodes' so far
    better = chi2_min < out["chi2"][rows]
    sel, b_rows = idx[better], rows[better]
    if sel.size:
        bsel = best[sel]
        out["chi2"][b_rows] = chi2_min[sel]
        out["reduced_chi2"][b_rows] = chi2_min[sel] / np.maximum(n_use[sel] - 1, 1)
        out["n_bands"][b_rows] = n_use[sel]
        out["best_model"][b_rows] = bsel
        out["best_scale"][b_rows] = s_best[sel]
        out["z_index"][b_rows] = k
        fs, ivs, ups, sb = f[sel], iv[sel], up[sel], s_best[sel]
        # energy balance: the joint best model over each half, and each half fitted alone
        for half, name in ((~ir, "chi2_opt"), (ir, "chi2_ir")):
            iv_h = np.where(half[None, :], ivs, 0.0)
            r = fs - sb[:, None] * models[bsel]
            term = np.where(ups, 0.0, r**2 * iv_h)
            n_h = (iv_h > 0).sum(axis=1)
            out[name][b_rows] = np.where(n_h > 0, term.sum(axis=1) / np.maximum(n_h, 1), np.nan)
        alone = np.zeros(sel.size) if alone_all is None else alone_all[sel]
        for half in (~ir, ir) if alone_all is None else ():
            iv_h = np.where(half[None, :], ivs, 0.0)
            if not np.any(iv_h > 0):
                continue
            _, chi2_h = best_scale_chi2(fs, iv_h, ups & half[None, :], models)
            alone += np.min(np.where(valid[None, :], chi2_h, np.inf), axis=1)
        out["delta_chi2_eb"][b_rows] = chi2_min[sel] - alone
        for q in EXTENSIVE:
            lx = np.log10(np.maximum(grid.props[q], _LOG_FLOOR))
            out[f"best_{q}"][b_rows] = log_s[sel, bsel] + lx[bsel]
        for q in ("a_v", "a_fuv", *PARAMETERS):
            p = np.nan_to_num(grid.props[q] if q in grid.props else grid.params[q])
            out[f"best_{q}"][b_rows] = p[bsel]

    # likelihood-weighted moments over the grid (one fused pass); the node's evidence weighs
    # it against other nodes. The normalisation's own uncertainty (Gaussian, 1 / curvature)
    # widens every extensive quantity: E[(log s)^2] gains var(log10 s) = 1 / (C s^2 ln(10)^2).
    # The grid's prior weights of the models (age_prior) enter the posterior, not the best fit.
    log_ext, intensive, names_int = tables
    chi2_post = chi2 if model_log_prior is None else chi2 - 2.0 * model_log_prior[None, :]
    post_min, _, log_norm, m1e, m2e, m1i, m2i, frac_e = _kernels.likelihood_moments(
        chi2_post, s, curv, log_ext, intensive, _LOG_FLOOR
    )
    log_evidence = -0.5 * post_min + log_norm + log_prior
    means = {q: m1e[:, j] for j, q in enumerate(EXTENSIVE)}
    seconds = {q: m2e[:, j] for j, q in enumerate(EXTENSIVE)}
    means.update({q: m1i[:, j] for j, q in enumerate(names_int)})
    seconds.update({q: m2i[:, j] for j, q in enumerate(names_int)})
    with np.errstate(divide="ignore"):
        log_w = {q: log_evidence + np.log(frac_e[:, j]) for j, q in enumerate(EXTENSIVE)}
    log_w.update({q: log_evidence for q in names_int})
    acc.add(rows, log_w, means, seconds)


def mock_photometry(
    grid: ModelGrid,
    z_index: np.ndarray,
    model: np.ndarray,
    scale: np.ndarray,
    err_mjy: np.ndarray,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Noisy photometry of given models (CIGALE's ``mock_flag``).

    Parameters
    ----------
    z_index, model : ndarrays (n,), int
    scale : ndarray (n,)
        Normalisation (M_sun formed).
    err_mjy : ndarray (n, n_band), mJy
        Gaussian errors to draw with (NaN keeps a band missing).
    random_state : int or Generator

    Returns
    -------
    ndarray (n, n_band), mJy
    """
    rng = np.random.default_rng(random_state)
    true = (
        grid.fluxes_mjy[np.asarray(z_index), np.asarray(model)].astype(float)
        * np.asarray(scale)[:, None]
    )
    err = np.asarray(err_mjy, dtype=float)
    return np.where(
        np.isfinite(err), true + rng.standard_normal(true.shape) * np.nan_to_num(err), np.nan
    )


def recovery_summary(
    truth: pd.DataFrame, fit: pd.DataFrame, quantities=OUTPUT_QUANTITIES
) -> pd.DataFrame:
    """Per quantity: bias, scatter (std) and 1-sigma coverage of ``bayes_<q>`` vs ``truth[q]``.

    ``truth`` holds the true values in the units of the fit table (log10 for extensive ones).
    Quantities the grid does not vary (zero posterior width everywhere) are left out.
    """
    rows = []
    for q in quantities:
        if q not in truth:
            continue
        est, err = fit[f"bayes_{q}"].to_numpy(), fit[f"bayes_{q}_err"].to_numpy()
        d = est - truth[q].to_numpy()
        ok = np.isfinite(d)
        if not ok.any() or np.ptp(truth[q].to_numpy()[ok]) == 0:
            continue
        cov = np.mean(np.abs(d[ok]) <= err[ok])
        r = np.corrcoef(est[ok], truth[q].to_numpy()[ok])[0, 1] if np.std(est[ok]) > 0 else np.nan
        rows.append({"quantity": q, "bias": float(np.median(d[ok])), "scatter": float(np.std(d[ok])),
                     "coverage_1sigma": float(cov), "pearson_r": float(r), "n": int(ok.sum())})  # fmt: skip
    return pd.DataFrame(rows)


def energy_balance_threshold(delta_chi2_mock: np.ndarray, quantile: float = 0.99) -> float:
    """Threshold on ``delta_chi2_eb`` from a mock of energy-balanced galaxies.

    Mock galaxies drawn from the grid satisfy energy balance by construction, so their
    ``delta_chi2_eb`` is pure noise; the ``quantile`` of its distribution flags (1 - quantile)
    of good galaxies by chance.
    """
    d = np.asarray(delta_chi2_mock, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise InputError("no finite delta_chi2_eb values in the mock")
    return float(np.quantile(d, quantile))


def posterior_weights(
    grid: ModelGrid, flux_mjy, err_mjy, z: float, upper=None
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised posterior weight (likelihood x the grid's prior) of every model for one
    object, and the models' scales.

    Returns
    -------
    (weights, scale) : ndarrays (n_mod,)
    """
    f, iv, up = check_photometry(np.atleast_2d(flux_mjy), np.atleast_2d(err_mjy), upper)
    k = int(grid.redshift_index(np.array([z]))[0])
    s, chi2 = best_scale_chi2(f, iv, up, grid.fluxes_mjy[k].astype(float))
    chi2 = np.where(grid.valid[k], chi2[0], np.inf)
    lp = grid.log_prior()
    if lp is not None:
        chi2 = chi2 - 2.0 * lp
    w = np.exp(-0.5 * (chi2 - chi2.min()))
    return w / w.sum(), s[0]
