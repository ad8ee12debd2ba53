"""Hidden far-infrared sources: significant positive XID+ residuals that no prior explains.

After an XID+ fit, the residual map (data minus the posterior-median model) should hold only
noise and the confusion of sources too faint for the prior list. A source bright in the map
but missing from the prior list (a dusty or high-redshift galaxy) leaves a positive,
beam-shaped residual. :func:`residual_candidates` finds them: the residual map is
matched-filtered for the beam in instrumental + residual confusion noise
(:func:`skysense.xid.blind.extract.matched_filter`, Chapin et al. 2011), peaks above a S/N threshold
become candidates, their fluxes come from a joint PSF fit of the residual map, and the
Bayesian P-value map over the replicated maps (XID+'s ``pval_sigma``, averaged over the beam
core) confirms that the data lie above what the fitted model predicts there.

:func:`find_hidden_sources` iterates: fit, find candidates, add those with no prior source
within ``min_sep_fwhm`` beams to the prior list, refit, until no significant residual is left
(or ``max_iter`` fits), and records which sources were added, in which iteration and why.

Pure: SkyMaps, DataFrames and :class:`~skysense.xid.fit.XIDResult` in, DataFrames out.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from skysense.errors import InputError
from skysense.xid.blind.extract import (
    _refine,
    estimate_confusion_mjy,
    find_peaks,
    matched_filter,
    psf_fit_fluxes,
)
from skysense.xid.fit import XIDResult, catalogue_band_name, fit
from skysense.xid.model import FWHM_ARCSEC
from skysense.xid.skymap import SkyMap, pixel_arcsec

__all__ = [
    "residual_candidates",
    "find_hidden_sources",
    "HiddenResult",
    "HIDDEN_UNITS",
]

#: Units of the candidate table's columns (FITS/VOTable metadata).
HIDDEN_UNITS = {
    "ra": "deg",
    "dec": "deg",
    "pos_err_arcsec": "arcsec",
    "flux_mjy": "mJy",
    "flux_err_mjy": "mJy",
    "residual_filter_mjy": "mJy",
    "nearest_prior_arcsec": "arcsec",
    "x_pix": "pix",
    "y_pix": "pix",
}


def _beam_mean(img: np.ndarray, iy: np.ndarray, ix: np.ndarray, radius_pix: float) -> np.ndarray:
    """Mean of the finite values of ``img`` within ``radius_pix`` of each (iy, ix)."""
    r = int(math.floor(radius_pix))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy**2 + dx**2 <= radius_pix**2
    dy, dx = dy[keep], dx[keep]
    yy = np.clip(iy[:, None] + dy[None, :], 0, img.shape[0] - 1)
    xx = np.clip(ix[:, None] + dx[None, :], 0, img.shape[1] - 1)
    vals = img[yy, xx]
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.where(np.isfinite(vals), vals, np.nan), axis=1)


def residual_candidates(
    result: XIDResult,
    band: str,
    *,
    snr_threshold: float = 5.0,
    pval_sigma_min: float = 1.0,
    confusion_mjy: float | None = None,
    fwhm_arcsec: float | None = None,
    n_rep: int = 200,
    random_state=0,
) -> pd.DataFrame:
    """Positive residual peaks of one band of an XID+ fit, as hidden-source candidates.

    Parameters
    ----------
    result : XIDResult - a fit (:func:`skysense.xid.fit.fit`)
    band : str - one of the fitted bands
    snr_threshold : float - matched-filtered residual S/N a candidate must reach
    pval_sigma_min : float - and the beam-core mean of the Bayesian P-value map (in Gaussian
        sigma; 0 is what a good fit gives on average) must exceed this
    confusion_mjy : float or None, mJy/beam - confusion left in the residual (sources below
        the prior list's limit); None estimates it from the residual map
    fwhm_arcsec : float or None - beam FWHM, default the HELP value of the band
    n_rep : int - replicated maps for the P-value map
    random_state : seed of the replicated maps

    Returns
    -------
    DataFrame, one row per candidate, most significant first: ``band``, ``ra``, ``dec``
    (deg), ``pos_err_arcsec`` (1 sigma per axis), ``snr`` (filtered residual S/N),
    ``pval_sigma`` (beam-core mean), ``flux_mjy``, ``flux_err_mjy`` (PSF fit of the residual
    map, mJy), ``residual_filter_mjy`` (filtered residual at the peak), ``x_pix``, ``y_pix``,
    ``nearest_prior_id``, ``nearest_prior_arcsec``. ``attrs`` records the settings.

    Raises
    ------
    InputError
        Unknown band, unknown FWHM, bad thresholds.
    """
    if band not in result.models:
        raise InputError(f"band {band!r} was not fitted (fitted: {sorted(result.models)})")
    fwhm = FWHM_ARCSEC.get(band) if fwhm_arcsec is None else float(fwhm_arcsec)
    if fwhm is None:
        raise InputError(f"{band}: no FWHM known for this band; pass fwhm_arcsec")
    if not (math.isfinite(snr_threshold) and snr_threshold > 0):
        raise InputError(f"snr_threshold must be positive, got {snr_threshold!r}")
    m = result.models[band]
    wcs = result.wcs[band]
    pixel = pixel_arcsec(wcs)
    maps = result.maps(band, n_rep=n_rep, random_state=random_state)
    residual, pval = maps["residual"], maps["pval_sigma"]
    error = np.full(result.shapes[band], np.nan)
    error[m.pixel_y, m.pixel_x] = m.sigma_mjy
    if confusion_mjy is None:
        confusion_mjy = estimate_confusion_mjy(residual, error)
    fm = matched_filter(residual, error, fwhm, pixel, confusion_mjy=confusion_mjy)
    sep = max(1, int(round(0.5 * fwhm / pixel)))
    iy, ix = find_peaks(fm.snr, snr_threshold, min_separation_pix=sep)
    dy, dx, peak = _refine(fm.flux_mjy, iy, ix)
    x, y = ix + dx, iy + dy
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = peak / fm.error_mjy[iy, ix]
    # The P-value map is noisy pixel by pixel: average it over the beam core (radius FWHM/2).
    pv = _beam_mean(pval, iy, ix, 0.5 * fwhm / pixel)
    keep = (snr >= snr_threshold) & (pv > pval_sigma_min)
    iy, ix, x, y, snr, pv, peak = (a[keep] for a in (iy, ix, x, y, snr, pv, peak))
    good = np.isfinite(residual)
    psf = psf_fit_fluxes(
        residual,
        error,
        x,
        y,
        fwhm,
        pixel,
        background_mjy=float(np.median(residual[good])),
        confusion_mjy=confusion_mjy,
        refine_positions=True,
    )
    moved = np.isfinite(psf.pos_err_pix)
    x, y = psf.x_pix, psf.y_pix
    with np.errstate(invalid="ignore", divide="ignore"):
        pos_err = np.where(moved, psf.pos_err_pix * pixel, 0.6 * fwhm / snr)
    if len(x):
        ra, dec = wcs.pixel_to_world_values(x, y)
        ra, dec = np.atleast_1d(ra).astype(float), np.atleast_1d(dec).astype(float)
    else:
        ra = dec = np.zeros(0)
    near_id, near_sep = _nearest_prior(result, band, ra, dec, fwhm)
    out = pd.DataFrame(
        {
            "band": pd.Series([band] * len(x), dtype="str"),
            "ra": ra,
            "dec": dec,
            "pos_err_arcsec": pos_err,
            "snr": snr,
            "pval_sigma": pv,
            "flux_mjy": psf.flux_mjy,
            "flux_err_mjy": psf.flux_err_mjy,
            "residual_filter_mjy": peak,
            "x_pix": x,
            "y_pix": y,
            "nearest_prior_id": pd.Series(near_id, dtype="str"),
            "nearest_prior_arcsec": near_sep,
        }
    )
    out.attrs.update(
        band=band,
        fwhm_arcsec=float(fwhm),
        pixel_arcsec=pixel,
        confusion_mjy=float(confusion_mjy),
        snr_threshold=float(snr_threshold),
        pval_sigma_min=float(pval_sigma_min),
    )
    return out


def _nearest_prior(result: XIDResult, band: str, ra: np.ndarray, dec: np.ndarray, fwhm: float):
    """Id and separation (arcsec) of the nearest fitted prior source within 10 FWHM."""
    from skysense.xid.blind.match import nearest_within

    pr = result.prior.iloc[result.fitted[band]]
    j, sep, _, _ = nearest_within(ra, dec, pr["ra"].to_numpy(), pr["dec"].to_numpy(), 10.0 * fwhm)
    ids = pr["id"].to_numpy().astype(str)
    return np.where(j >= 0, ids[np.maximum(j, 0)] if len(ids) else "", ""), sep


@dataclasses.dataclass
class HiddenResult:
    """Outcome of :func:`find_hidden_sources`.

    Attributes
    ----------
    candidates : DataFrame - every candidate of every iteration (columns of
        :func:`residual_candidates`) plus ``iteration`` (1-based fit it was found in),
        ``added`` (bool), ``id`` (its prior id when added, else ""), ``reason`` (str), and the
        final fit's ``F_<BAND>``, ``FErr_<BAND>_u``, ``FErr_<BAND>_l`` for added sources
    prior : DataFrame - the input prior plus the added sources
    result : XIDResult - the last fit (of ``prior``)
    n_fits : int - XID+ fits run
    converged : bool - the last fit left no candidate that could be added
    """

    candidates: pd.DataFrame
    prior: pd.DataFrame
    result: XIDResult
    n_fits: int
    converged: bool

    def table(self) -> pd.DataFrame:
        """The candidate table ready to write (FITS/Parquet) and publish."""
        return self.candidates.reset_index(drop=True)

    def summary(self, out_dir: str | os.PathLike) -> str:
        """One line: candidates, fits, sources added, convergence, and the output files.

        Parameters
        ----------
        out_dir : path - the directory the line names (as written by
            :func:`skysense.xid.hidden.write_hidden`)
        """
        cand = self.candidates
        state = "converged" if self.converged else "NOT converged (raise --max-iter)"
        return (
            f"{len(cand)} candidate(s) in {self.n_fits} fit(s), {int(cand['added'].sum())} "
            f"added to the prior; {state}; outputs in {out_dir} (hidden.fits, "
            "prior_hidden.fits, catalogue.fits)"
        )


def find_hidden_sources(
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    *,
    detect_band: str | None = None,
    snr_threshold: float = 5.0,
    pval_sigma_min: float = 1.0,
    min_sep_fwhm: float = 0.5,
    refit: bool = True,
    max_iter: int = 5,
    id_prefix: str = "HIDDEN",
    random_state: int = 0,
    result: XIDResult | None = None,
    **fit_kwargs,
) -> HiddenResult:
    """Fit, find positive residuals, add them to the prior and refit until none is left.

    Parameters
    ----------
    maps : sequence of SkyMap - as :func:`skysense.xid.fit.fit`
    prior : DataFrame - ``id``, ``ra``, ``dec`` (+ optional flux-prior columns)
    detect_band : str, optional - band searched for residuals (default: the sharpest beam)
    snr_threshold, pval_sigma_min : see :func:`residual_candidates`
    min_sep_fwhm : float - a candidate within this many FWHM of a prior source is reported
        but not added (the two would be one blend XID+ cannot split)
    refit : bool - False: one fit and its candidates only
    max_iter : int - at most this many XID+ fits
    id_prefix : str - added sources are named ``<prefix>_<iteration>_<k>``
    random_state : int - seed of fit ``i`` is ``random_state + i``
    result : XIDResult, optional - an existing fit of ``prior`` on ``maps`` (saves the first fit)
    **fit_kwargs : passed to :func:`skysense.xid.fit.fit` (sampler, n_samples, ...)

    Returns
    -------
    HiddenResult

    Raises
    ------
    InputError
        Unknown detection band, bad settings, or a fit error.
    """
    bands = [m.band for m in maps]
    if detect_band is None:
        detect_band = min(bands, key=lambda b: FWHM_ARCSEC.get(b, math.inf))
    if detect_band not in bands:
        raise InputError(f"detect_band {detect_band!r} is not one of the map bands {bands}")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise InputError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if not (math.isfinite(min_sep_fwhm) and min_sep_fwhm >= 0):
        raise InputError(f"min_sep_fwhm must be >= 0, got {min_sep_fwhm!r}")
    sky = maps[bands.index(detect_band)]
    beam = (fit_kwargs.get("beams") or {}).get(detect_band)
    fwhm = getattr(beam, "fwhm_arcsec", None) or sky.fwhm_arcsec or FWHM_ARCSEC.get(detect_band)
    if fwhm is None:
        raise InputError(f"{detect_band}: no FWHM known for the detection band")
    current = prior.reset_index(drop=True)
    taken = current["id"].astype(str).str.startswith(f"{id_prefix}_")
    if taken.any():
        raise InputError(
            f"prior ids already start with {id_prefix!r}_ (e.g. {current['id'][taken].iloc[0]!r}"
            f", from an earlier search?): pass another id_prefix",
            row=int(np.flatnonzero(taken.to_numpy())[0]),
        )
    found = []
    converged = False
    n_fits = 0
    for it in range(1, max_iter + 1):
        if it > 1 or result is None:
            result = fit(maps, current, random_state=random_state + it, **fit_kwargs)
        n_fits += 1
        cand = residual_candidates(
            result,
            detect_band,
            snr_threshold=snr_threshold,
            pval_sigma_min=pval_sigma_min,
            fwhm_arcsec=fwhm,
            random_state=random_state + it,
        )
        cand["iteration"] = it
        near = cand["nearest_prior_arcsec"].to_numpy() < min_sep_fwhm * fwhm
        # two candidates of one iteration closer than that: keep the more significant only
        close = _close_to_earlier(cand, min_sep_fwhm * fwhm)
        add = ~near & ~close & refit & (it < max_iter)
        cand["added"] = add
        cand["id"] = ""
        cand.loc[add, "id"] = [f"{id_prefix}_{it}_{k}" for k in range(int(add.sum()))]
        cand["reason"] = [
            _reason(r, fwhm, min_sep_fwhm, n, c, refit, it, max_iter)
            for r, n, c in zip(cand.itertuples(), near, close)
        ]
        found.append(cand)
        if not add.any():
            converged = not (~near & ~close).any()
            break
        new = pd.DataFrame(
            {"id": cand.loc[add, "id"], "ra": cand.loc[add, "ra"], "dec": cand.loc[add, "dec"]}
        )
        # other prior columns (flux bounds) stay NaN: XID+'s defaults for the new sources,
        # except Gaussian flux priors, which get an uninformative N(0, 1000 mJy)
        for col in current.columns:
            if col.startswith("flux_mu_"):
                new[col] = 0.0
            elif col.startswith("flux_sigma_"):
                new[col] = 1000.0
        current = pd.concat([current, new], ignore_index=True)
    table = pd.concat(found, ignore_index=True)
    table = _with_final_fluxes(table, result)
    table.attrs.update(found[0].attrs, n_fits=n_fits, converged=bool(converged))
    return HiddenResult(table, current, result, n_fits, bool(converged))


def _close_to_earlier(cand: pd.DataFrame, radius_arcsec: float) -> np.ndarray:
    """True for a candidate within ``radius_arcsec`` of a more significant one (same table)."""
    from skysense.catalog.match import self_pairs

    out = np.zeros(len(cand), dtype=bool)
    if len(cand) < 2 or radius_arcsec <= 0:
        return out
    i, j, _ = self_pairs(cand["ra"].to_numpy(), cand["dec"].to_numpy(), radius_arcsec)
    out[np.maximum(i, j)] = True  # rows are ordered most significant first
    return out


def _reason(row, fwhm, min_sep_fwhm, near, close, refit, it, max_iter) -> str:
    why = f"residual S/N {row.snr:.1f}, P-value {row.pval_sigma:.1f} sigma"
    if near:
        return (
            f"{why}; not added: prior source {row.nearest_prior_id} lies "
            f"{row.nearest_prior_arcsec:.1f} arcsec away (< {min_sep_fwhm:g} FWHM)"
        )
    if close:
        return f"{why}; not added: within {min_sep_fwhm:g} FWHM of a stronger candidate"
    if not refit:
        return f"{why}; not added (no refit asked)"
    if it >= max_iter:
        return f"{why}; not added: max_iter={max_iter} fits reached"
    if np.isfinite(row.nearest_prior_arcsec):
        return f"{why}; added, nearest prior source {row.nearest_prior_arcsec:.1f} arcsec away"
    return f"{why}; added, no prior source within {10 * fwhm:.0f} arcsec"


def _with_final_fluxes(table: pd.DataFrame, result: XIDResult) -> pd.DataFrame:
    """The final fit's flux percentiles of the added sources (NaN for the others).

    The same numbers as :meth:`XIDResult.catalogue` (median, 84.1 and 15.9 percentiles),
    computed for the added sources only: the full catalogue's convergence diagnostics and
    P-value statistics of every source would cost more than the search itself.
    """
    out = table.copy()
    ids = result.prior["id"].astype(str).to_numpy()
    added = out["added"].to_numpy(dtype=bool)
    for band, m in result.models.items():
        b = catalogue_band_name(band)
        cols = (f"F_{b}", f"FErr_{b}_u", f"FErr_{b}_l")
        for c in cols:
            out[c] = np.nan
        col_of = {ids[r]: k for k, r in enumerate(result.fitted[band])}
        rows = [i for i in np.flatnonzero(added) if out["id"].iat[i] in col_of]
        if not rows:
            continue
        k = np.array([col_of[out["id"].iat[i]] for i in rows])
        f = result.posteriors[band].flux.reshape(-1, m.nsrc)[:, k]
        q = np.percentile(f, [50.0, 84.1, 15.9], axis=0)
        for c, v in zip(cols, q):
            out.loc[out.index[rows], c] = v
    return out
