"""Figures of SED fits: the best-fit SED (as HELP's CIGALE figure), parameter PDFs, mock recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_fit", "plot_pdfs", "plot_recovery"]


def plot_fit(
    row: pd.Series,
    band_um: np.ndarray,
    flux_mjy: np.ndarray,
    err_mjy: np.ndarray,
    upper: np.ndarray,
    model_mjy: np.ndarray,
    wavelength_um: np.ndarray,
    fnu_mjy: np.ndarray,
    *,
    eb_threshold: float | None = None,
):
    """Best-fit SED with observed fluxes, upper limits and relative residuals.

    Parameters
    ----------
    row : pandas.Series
        The object's row of the fit table (``help_id``, ``z_grid``, chi^2 columns).
    band_um : ndarray (n_band,), um
    flux_mjy, err_mjy : ndarrays (n_band,), mJy (NaN = not observed)
    upper : ndarray (n_band,), bool
    model_mjy : ndarray (n_band,), mJy
        Best model's band fluxes.
    wavelength_um, fnu_mjy : ndarrays (n_out,)
        Best-fit spectrum (observed frame).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.5))
    ax, res = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0})
    good = fnu_mjy > 0
    ax.loglog(wavelength_um[good], fnu_mjy[good], color="0.3", lw=1, label="best model")
    det = np.isfinite(flux_mjy) & ~upper
    ax.scatter(
        band_um, model_mjy, marker="s", facecolor="none", edgecolor="C0", label="model fluxes"
    )
    ax.errorbar(band_um[det], flux_mjy[det], yerr=err_mjy[det], fmt="o", color="C3", ms=4,
                label="observed")  # fmt: skip
    ul = np.isfinite(flux_mjy) & upper
    if ul.any():
        ax.scatter(band_um[ul], flux_mjy[ul], marker="v", color="C3", label="upper limits")
    if det.any():
        lo = np.nanmin(np.where(det, flux_mjy, np.nan)) / 30
        hi = np.nanmax(np.where(det, flux_mjy, np.nan)) * 10
        ax.set_ylim(lo, hi)
    ax.set_ylabel("flux density (mJy)")
    text = (f"{row['help_id']}  z = {row['z_grid']:.3f}\n"
            f"reduced chi2 = {row['reduced_chi2']:.2f}\n"
            f"chi2_opt = {row['chi2_opt']:.2f}, chi2_ir = {row['chi2_ir']:.2f}")  # fmt: skip
    if eb_threshold is not None:
        text += f"\nenergy balance: dchi2 = {row['delta_chi2_eb']:.1f} (threshold {eb_threshold:g})"
    ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
    r = (flux_mjy - model_mjy) / flux_mjy
    res.errorbar(band_um[det], r[det], yerr=(err_mjy / flux_mjy)[det], fmt="o", color="C3", ms=4)
    res.axhline(0, color="0.5", lw=0.8)
    res.set_xscale("log")
    res.set_xlabel("observed wavelength (um)")
    res.set_ylabel("(obs - model) / obs")
    return fig


def plot_pdfs(values: dict[str, np.ndarray], weights: np.ndarray, *, bins: int = 30):
    """Likelihood-weighted PDFs of parameters over the grid.

    Parameters
    ----------
    values : dict of name -> ndarray (n_mod,)
    weights : ndarray (n_mod,)
        Normalised likelihood of each model.
    """
    from matplotlib.figure import Figure

    n = len(values)
    cols = min(n, 3)
    rows_ = (n + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows_))
    axes = np.atleast_1d(fig.subplots(rows_, cols)).ravel()
    for ax, (name, v) in zip(axes, values.items()):
        ax.hist(v, bins=bins, weights=weights, color="C0")
        ax.set_xlabel(name)
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_recovery(truth: pd.DataFrame, fit: pd.DataFrame, quantities: list[str]):
    """Mock analysis: estimated (``bayes_<q>``) against true values per quantity."""
    from matplotlib.figure import Figure

    n = len(quantities)
    fig = Figure(figsize=(3.2 * n, 3.2))
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, q in zip(axes, quantities):
        t, e = truth[q].to_numpy(), fit[f"bayes_{q}"].to_numpy()
        ax.scatter(t, e, s=2, alpha=0.3)
        lo, hi = np.nanmin(t), np.nanmax(t)
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        r = np.corrcoef(t, e)[0, 1] if np.std(e) > 0 and np.std(t) > 0 else np.nan
        ax.set_title(f"{q}: r = {r:.2f}", fontsize=9)
        ax.set_xlabel("true")
        ax.set_ylabel("estimated")
    fig.tight_layout()
    return fig
