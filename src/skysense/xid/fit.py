"""The XID+ Python API, mirroring ``skysense xid fit``.

``fit(maps, prior)`` builds one :class:`~skysense.xid.model.BandModel` per map (pointing
matrix from the WCS and the beam, priors), samples every band, and returns an
:class:`XIDResult` that makes the HELP catalogue, the ArviZ InferenceData and the posterior
maps; :func:`skysense.xid.io.write_outputs` writes them all. Pure: nothing here reads or
writes files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from skysense.errors import InputError
from skysense.xid.diagnostics import summarise_convergence
from skysense.xid.model import (
    DEFAULT_FLUX_KIND,
    FWHM_ARCSEC,
    LOG_PRIOR_FLOOR_MJY,
    TIED_WIDTH_BANDS,
    TIED_WIDTH_TOLERANCE,
    BackgroundPrior,
    BandModel,
    ConfusionPrior,
    GaussianBeam,
    PRFBeam,
    band_model,
    default_conf_prior,
    duplicate_columns,
    pointing_matrix,
)
from skysense.xid.sampler import BandPosterior, sample_band
from skysense.xid.skymap import SkyMap, moc_pixel_mask

__all__ = [
    "XIDResult",
    "build_band_model",
    "fit",
    "fit_models",
    "tied_width_models",
    "fit_sed_maps",
    "help_id",
    "catalogue_band_name",
    "default_conf_prior",
]


def catalogue_band_name(band: str) -> str:
    """HELP catalogue name of a band: ``spire_250`` -> ``SPIRE_250``."""
    return band.upper()


def help_id(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """``HELP_Jhhmmss.sss+ddmmss.sss`` identifiers of positions (deg)."""
    from astropy.coordinates import SkyCoord

    c = SkyCoord(np.asarray(ra_deg), np.asarray(dec_deg), unit="deg")
    ra = c.ra.to_string(unit="hourangle", sep="", precision=3, pad=True)
    dec = c.dec.to_string(sep="", precision=3, alwayssign=True, pad=True)
    return np.array([f"HELP_J{a}{d}" for a, d in zip(np.atleast_1d(ra), np.atleast_1d(dec))])


def _column(prior: pd.DataFrame, name: str):
    for c in prior.columns:
        if c.lower() == name.lower():
            return prior[c].to_numpy(dtype=float)
    return None


def build_band_model(
    sky: SkyMap,
    prior: pd.DataFrame,
    *,
    beam: GaussianBeam | PRFBeam | None = None,
    region: np.ndarray | None = None,
    min_beam_fraction: float = 1e-3,
    bkg_prior: BackgroundPrior | None = None,
    conf_prior: ConfusionPrior | None = None,
    flux_kind: str | None = None,
    on_duplicate: str = "error",
) -> tuple[BandModel, np.ndarray, pd.DataFrame]:
    """Band model of the sources of ``prior`` that can be fitted on ``sky``.

    Parameters
    ----------
    sky : SkyMap
    prior : DataFrame with ``id``, ``ra``, ``dec`` and optional ``flux_lower_<band>``,
        ``flux_upper_<band>``, ``flux_mu_<band>``, ``flux_sigma_<band>`` (mJy; for
        ``flux_kind="lognormal"`` mu is the median in mJy and sigma the scatter in dex)
    flux_kind : ``"uniform"``, ``"loguniform"``, ``"lognormal"`` or ``"hierarchical"``
        (Gaussian when the prior gives mu and sigma columns and the kind is not log-normal or
        hierarchical); None (default): Gaussian when the prior gives mu and sigma columns,
        else :data:`~skysense.xid.model.DEFAULT_FLUX_KIND` (the hierarchical prior learned
        from the map; ``"uniform"`` is XID+'s flat prior)
    beam : beam; default a Gaussian of the map's FWHM header key or the HELP FWHM of the band
    region : ndarray (ny, nx) bool, optional
        Pixels to fit (e.g. from a MOC); always intersected with the good pixels.
    on_duplicate : ``"error"`` or ``"keep"``
        What to do with prior sources whose beam columns are identical.

    Returns
    -------
    model : BandModel over the fitted sources
    fitted : ndarray (n_fitted,), int - rows of ``prior`` in the model, in column order
    unfitted : DataFrame ``id, band, reason`` of prior rows that cannot be fitted

    Raises
    ------
    InputError
        Empty region, identical beam columns (with ``on_duplicate="error"``), bad bounds.
    """
    band = sky.band
    if beam is None:
        fwhm = sky.fwhm_arcsec or FWHM_ARCSEC.get(band)
        if fwhm is None:
            raise InputError(f"{band}: no beam given and no FWHM known for this band")
        beam = GaussianBeam(float(fwhm))
    good = sky.good if region is None else (sky.good & region)
    if not good.any():
        raise InputError(f"{band}: the fitting region holds no usable pixel (all NaN or masked)")
    ny, nx = good.shape
    py, px = np.nonzero(good)
    sx, sy = sky.wcs.world_to_pixel_values(prior["ra"].to_numpy(), prior["dec"].to_numpy())
    sx, sy = np.asarray(sx, float), np.asarray(sy, float)
    reasons = np.full(len(prior), "", dtype=object)
    off_map = ~((sx > -0.5) & (sx < nx - 0.5) & (sy > -0.5) & (sy < ny - 0.5))
    # sources just off the map edge still count when their beam reaches fitted pixels
    amat = pointing_matrix(sx, sy, px, py, beam, sky.pixel_arcsec, min_fraction=min_beam_fraction)
    empty = np.asarray(amat.getnnz(axis=0)).ravel() == 0
    reasons[empty & off_map] = "outside the map"
    reasons[empty & ~off_map] = "no usable pixel under its beam (masked or outside the region)"
    inside = np.arange(len(prior))
    keep = ~empty
    fitted = inside[keep]
    amat = amat[:, keep]
    dups = duplicate_columns(amat)
    if dups and on_duplicate == "error":
        i, j = dups[0]
        ids = prior["id"].to_numpy()
        raise InputError(
            f"{band}: {len(dups)} pair(s) of prior sources have identical beam columns "
            f"(same position), e.g. {ids[fitted[i]]!r} and {ids[fitted[j]]!r} "
            f"(rows {fitted[i]}, {fitted[j]}); merge them or pass on_duplicate='keep'",
            row=int(fitted[j]),
        )

    def col(name):
        v = _column(prior, f"{name}_{band}")
        return None if v is None else v[fitted]

    lower, upper = col("flux_lower"), col("flux_upper")
    mu, sig = col("flux_mu"), col("flux_sigma")
    # flux_mu/flux_sigma columns make a Gaussian prior unless a log-normal one is asked for
    kind = "gaussian" if (mu is not None and sig is not None) else flux_kind or DEFAULT_FLUX_KIND
    if flux_kind in ("lognormal", "hierarchical"):
        kind = flux_kind
    if flux_kind is None and kind == "hierarchical" and lower is not None:
        # XID+ prior lists give lower bounds of 0; the default log-space prior needs a
        # positive floor (1e-3 mJy, far below any band's noise), an explicit kind does not
        lower = np.where(lower > 0, lower, LOG_PRIOR_FLOOR_MJY["hierarchical"])
    conf_prior = conf_prior or default_conf_prior(band)
    stamp = None
    if conf_prior.correlated:
        from skysense.xid.confusion import beam_stamp

        stamp = beam_stamp(beam, sky.pixel_arcsec, min_beam_fraction)
    try:
        model = band_model(
            band,
            amat,
            sky.image_mjy[py, px],
            sky.error_mjy[py, px],
            flux_lower=lower,
            flux_upper=upper,
            flux_kind=kind,
            flux_mu=mu,
            flux_sigma=sig,
            flux_skew=col("flux_skew"),  # log-normal only: skew-normal shape in log flux
            bkg_prior=bkg_prior,
            conf_prior=conf_prior,
            pixel_x=px,
            pixel_y=py,
            beam_stamp=stamp,
        )
    except InputError as exc:
        if exc.row is not None:  # map the model row back to the prior row
            raise InputError(exc.message, row=int(fitted[exc.row])) from None
        raise
    unfitted = pd.DataFrame(
        {
            "id": prior["id"].to_numpy()[reasons != ""],
            "band": band,
            "reason": reasons[reasons != ""],
        }
    )
    return model, fitted, unfitted


@dataclasses.dataclass
class XIDResult:
    """Posterior of a fit: per band its model, fitted prior rows and draws.

    Attributes
    ----------
    prior : DataFrame (id, ra, dec, ...)
    models : dict band -> BandModel
    fitted : dict band -> ndarray of prior rows (model column order)
    posteriors : dict band -> BandPosterior
    unfitted : DataFrame (id, band, reason)
    shapes : dict band -> (ny, nx) of the input map; wcs : dict band -> WCS
    """

    prior: pd.DataFrame
    models: dict
    fitted: dict
    posteriors: dict
    unfitted: pd.DataFrame
    shapes: dict = dataclasses.field(default_factory=dict)
    wcs: dict = dataclasses.field(default_factory=dict)
    #: SED mode only: the joint posterior (log-normalisations, redshifts) of the sources
    #: in ``sed_rows`` (prior rows, model column order)
    sed: object | None = None
    sed_rows: np.ndarray | None = None

    def _replicates(self, band: str, n_rep: int, random_state, rows=None, chunk: int = 25):
        """Posterior-predictive replicates in chunks of ``chunk`` draws, (len(rows), k) each.

        ``rows``: the model pixels wanted (default all). Chunks bound the memory (a MIPS tile
        has ~10^6 pixels: 200 replicates at once were 1.6 GB per array).
        """
        m, p = self.models[band], self.posteriors[band]
        rng = np.random.default_rng(random_state)
        f = p.flux.reshape(-1, m.nsrc)
        take = rng.choice(f.shape[0], size=min(n_rep, f.shape[0]), replace=False)
        amat = m.amat if rows is None else m.amat[rows]
        sig = m.sigma_mjy if rows is None else m.sigma_mjy[rows]
        fld = None
        if p.conf_field is not None:
            # correlated confusion: each replicate gets a fresh field of its draw's amplitude
            # (the posterior predictive of a new map of unlisted sources), as XID+'s white
            # sigma_conf term gives fresh white confusion
            from skysense.xid.confusion import ConfusionField

            fld = ConfusionField(m.beam_stamp, m.pixel_x, m.pixel_y, m.sigma_mjy)
        for i in range(0, take.size, chunk):
            t = take[i : i + chunk]
            b, c = p.bkg.ravel()[t], p.sigma_conf.ravel()[t]
            mean = amat @ f[t].T + b[None, :]
            if fld is not None:
                for k in range(t.size):
                    g = fld.field(rng.standard_normal(fld.shape))
                    mean[:, k] += c[k] * (g if rows is None else g[rows])
                c = np.zeros_like(c)
            sd = np.sqrt(sig[:, None] ** 2 + c[None, :] ** 2)
            yield mean + sd * rng.standard_normal(mean.shape)

    def replicated(self, band: str, n_rep: int = 200, random_state=0) -> np.ndarray:
        """Posterior-predictive replicated data, ndarray (npix, n_rep), mJy/beam."""
        # one chunk: the draws of a seed stay what they were (the P-value maps and the
        # hidden-source search depend on them)
        return next(self._replicates(band, n_rep, random_state, chunk=max(n_rep, 1)))

    def pval_res(
        self, band: str, rep: np.ndarray | None = None, *, n_rep: int = 200, random_state=0
    ) -> np.ndarray:
        """XID+'s local Bayesian P-value residual statistic per fitted source (nsrc,).

        ``rep``: replicates of every pixel (:meth:`replicated`); default ``n_rep`` drawn here
        in chunks, only for the pixels under the sources' beams.
        """
        m = self.models[band]
        coo = m.amat.tocoo()
        rows = np.unique(coo.row)
        local = np.searchsorted(rows, coo.row)  # coo rows as positions in ``rows``
        if rep is not None:
            chunks = [np.asarray(rep)[rows]]
        else:
            chunks = self._replicates(band, n_rep, random_state, rows=rows)
        data, sig = m.data_mjy[rows, None], np.sqrt(2) * m.sigma_mjy[rows, None]
        npx = np.maximum(np.bincount(coo.col, minlength=m.nsrc), 1)
        over = np.zeros(m.nsrc)
        n = 0
        for r in chunks:
            z = ((r - data) / sig) ** 2
            t = np.zeros((m.nsrc, r.shape[1]))
            np.add.at(t, coo.col, z[local])
            over += ((t / npx[:, None]) > 2).sum(axis=1)
            n += r.shape[1]
        return over / max(n, 1)

    def maps(self, band: str, n_rep: int = 200, random_state=0) -> dict:
        """Posterior maps (ny, nx), NaN outside the fitted pixels.

        ``model``: posterior-median model A f + B; ``residual``: data - model;
        ``pval_sigma``: Bayesian P value of each pixel (fraction of replicated values below
        the data) as a Gaussian sigma, clipped at +-6 (XID+'s convention).
        """
        from scipy.stats import norm

        m = self.models[band]
        rep = self.replicated(band, n_rep, random_state)
        p = self.posteriors[band]
        f = np.median(p.flux.reshape(-1, m.nsrc), axis=0)
        # the listed sources and background only: the residual keeps the confusion of
        # unlisted sources (also with the correlated field), where hidden sources show
        model = m.amat @ f + np.median(p.bkg)
        pval = (rep < m.data_mjy[:, None]).mean(axis=1)
        sig = np.clip(norm.ppf(pval), -6.0, 6.0)
        out = {}
        for name, v in (("model", model), ("residual", m.data_mjy - model), ("pval_sigma", sig)):
            img = np.full(self.shapes[band], np.nan)
            img[m.pixel_y, m.pixel_x] = v
            out[name] = img
        return out

    def catalogue(self, *, n_rep: int = 200) -> pd.DataFrame:
        """The catalogue in HELP's XID+ format (fluxes in mJy).

        Columns ``HELP_ID, RA, Dec`` then per band ``F_<B>`` (median), ``FErr_<B>_u`` /
        ``FErr_<B>_l`` (84.1 / 15.9 percentiles), ``Bkg_<B>``, ``Sig_conf_<B>``, ``Rhat_<B>``,
        ``n_eff_<B>``, ``Pval_res_<B>``, ``flag_xid_<B>`` (True: not converged or not
        fitted). With the correlated confusion term also ``Conf_shift_<B>`` (mJy: the flux the
        fitted confusion field of unlisted sources would have given the source, see
        :class:`~skysense.xid.sampler.BandPosterior`) and ``flag_conf_<B>`` (True: that shift
        exceeds the source's posterior sd, i.e. the correlated term changed its flux beyond
        its error). ``Sig_conf_<B>`` is then the field's per-pixel sd. Unfittable sources
        keep their row with NaN values. ``n_rep``: posterior-predictive replicates behind
        ``Pval_res_<B>`` (0 skips them: the column is then NaN).
        """
        pr = self.prior
        ids = pr["id"].to_numpy()
        names = ids if all(str(i).startswith("HELP_J") for i in ids) else None
        cat = pd.DataFrame(
            {
                "HELP_ID": names if names is not None else ids.astype(str),
                "RA": pr["ra"].to_numpy(),
                "Dec": pr["dec"].to_numpy(),
            }
        )
        n = len(pr)
        for band, m in self.models.items():
            b = catalogue_band_name(band)
            p = self.posteriors[band]
            rows = self.fitted[band]
            f = p.flux.reshape(-1, m.nsrc)
            q = np.percentile(f, [50.0, 84.1, 15.9], axis=0)
            rhat, ess, flag = summarise_convergence(p.flux)
            cols = {
                f"F_{b}": q[0],
                f"FErr_{b}_u": q[1],
                f"FErr_{b}_l": q[2],
                f"Bkg_{b}": np.full(m.nsrc, np.median(p.bkg)),
                f"Sig_conf_{b}": np.full(m.nsrc, np.median(p.sigma_conf)),
                f"Rhat_{b}": rhat,
                f"n_eff_{b}": ess,
                f"Pval_res_{b}": (
                    self.pval_res(band, n_rep=n_rep) if n_rep > 0 else np.full(m.nsrc, np.nan)
                ),
            }
            if p.conf_shift is not None:
                cols[f"Conf_shift_{b}"] = p.conf_shift
            for name, v in cols.items():
                full = np.full(n, np.nan)
                full[rows] = v
                cat[name] = full
            fl = np.ones(n, dtype=bool)
            fl[rows] = flag
            cat[f"flag_xid_{b}"] = fl
            if p.conf_shift is not None:
                fc = np.zeros(n, dtype=bool)
                fc[rows] = np.abs(p.conf_shift) > f.std(axis=0)
                cat[f"flag_conf_{b}"] = fc
        if self.sed is not None:
            for name, draws in (("SED_log_norm", self.sed.log_norm), ("SED_z", self.sed.z)):
                full = np.full((3, n), np.nan)
                full[:, self.sed_rows] = np.percentile(
                    draws.reshape(-1, draws.shape[-1]), [50.0, 84.1, 15.9], axis=0
                )
                cat[name], cat[f"{name}_u"], cat[f"{name}_l"] = full
        return cat

    def n_flagged(self) -> int:
        """Source-bands flagged in :meth:`catalogue` (``flag_xid_<B>``: not converged or not
        fitted), counted without building the catalogue."""
        n = len(self.prior)
        return sum(
            n - len(self.fitted[band]) + int(summarise_convergence(p.flux)[2].sum())
            for band, p in self.posteriors.items()
        )

    def summary(self, out_dir: str | os.PathLike) -> str:
        """One line on what was fitted, what could not be and where the outputs are.

        Parameters
        ----------
        out_dir : path - the output directory the line names (as written by
            :func:`skysense.xid.io.write_outputs`)
        """
        n, bad = len(self.models), len(self.unfitted)
        if self.sed is not None:
            return (
                f"SED fit of {len(self.sed_rows)} of {len(self.prior)} prior sources in "
                f"{n} band(s); {bad} not fittable (see unfitted.csv); outputs in {out_dir}"
            )
        return (
            f"fitted {len(self.prior)} prior sources in {n} band(s); {bad} source-band(s) "
            f"not fittable (see unfitted.csv); {self.n_flagged()} source-band(s) flagged; "
            f"outputs in {out_dir}"
        )

    def inference_data(self):
        """Posterior draws as an ArviZ InferenceData (one variable set per band)."""
        import arviz as az

        posterior, coords, dims = {}, {}, {}
        for band in self.models:
            p = self.posteriors[band]
            src = f"source_{band}"
            posterior[f"src_f_{band}"] = p.flux
            posterior[f"bkg_{band}"] = p.bkg
            posterior[f"sigma_conf_{band}"] = p.sigma_conf
            coords[src] = self.prior["id"].to_numpy()[self.fitted[band]].astype(str)
            dims[f"src_f_{band}"] = [src]
        return az.from_dict(posterior=posterior, coords=coords, dims=dims)


def fit_models(
    models: Mapping[str, BandModel],
    *,
    sampler: str = "gibbs",
    n_samples: int = 1000,
    n_warmup: int = 500,
    n_chains: int = 4,
    random_state=None,
) -> dict[str, BandPosterior]:
    """Sample already-built band models (bands are independent); returns band -> posterior.

    ``sampler="nuts"`` (the numpyro reference) models the confusion as XID+'s white
    sigma_conf even where the model asks for the correlated field.
    """
    return _sample_models(
        models, _band_seeds(models, random_state), sampler, n_samples, n_warmup, n_chains
    )


def _band_seeds(models: Mapping[str, BandModel], random_state) -> dict[str, int]:
    """Each band's sampler seed, drawn in the models' order from ``random_state``."""
    rng = np.random.default_rng(random_state)
    return {band: int(rng.integers(2**31)) for band in models}


def _sample_models(models, seeds, sampler, n_samples, n_warmup, n_chains):
    """:func:`fit_models` with each band's seed given (band -> int)."""
    out = {}
    for band, m in models.items():
        seed = seeds[band]
        if sampler == "gibbs":
            out[band] = sample_band(
                m, n_samples=n_samples, n_warmup=n_warmup, n_chains=n_chains, random_state=seed
            )
        elif sampler == "nuts":
            from skysense.xid.reference import nuts_band

            if m.conf_prior.correlated:  # the reference model has XID+'s white sigma_conf
                m = dataclasses.replace(
                    m, conf_prior=dataclasses.replace(m.conf_prior, correlated=False)
                )
            out[band] = nuts_band(
                m, n_samples=n_samples, n_warmup=n_warmup, n_chains=n_chains, random_state=seed
            )
        else:
            raise InputError(f"unknown sampler {sampler!r} (gibbs or nuts)")
    return out


def fit(
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    *,
    beams: Mapping[str, GaussianBeam | PRFBeam] | None = None,
    region_moc=None,
    min_beam_fraction: float = 1e-3,
    bkg_priors: Mapping[str, BackgroundPrior] | None = None,
    conf_priors: Mapping[str, ConfusionPrior] | None = None,
    flux_kind: str | None = None,
    on_duplicate: str = "error",
    sampler: str = "gibbs",
    n_samples: int = 1000,
    n_warmup: int = 500,
    n_chains: int = 4,
    random_state=None,
    tie_widths: bool = True,
) -> XIDResult:
    """Fit the prior sources on one or more band maps (bands independent).

    Parameters
    ----------
    maps : sequence of SkyMap (one per band)
    prior : DataFrame from :func:`skysense.xid.io.read_prior`
    region_moc : mocpy.MOC, optional
        Fit only pixels inside (default: every good pixel).
    flux_kind : str, optional
        Flux prior (see :func:`build_band_model`); default the hierarchical population prior
        learned from the maps, ``"uniform"`` for XID+'s flat prior.
    sampler : ``"gibbs"`` (fast exact sampler) or ``"nuts"`` (numpyro reference)
    tie_widths : bool
        With the hierarchical prior, the longer-wavelength bands of an instrument
        (:data:`~skysense.xid.model.TIED_WIDTH_BANDS`: SPIRE 350/500 um, PACS 160 um) take the
        width of their population from the band fitted first (250 um, 100 um):
        :func:`tied_width_models`. False: every band learns its own.

    Returns
    -------
    XIDResult
    """
    _check_maps_and_prior(maps, prior)
    models, fitted, unfitted, shapes, wcs = _band_models(
        maps,
        prior,
        _regions(maps, region_moc),
        need_sources=True,
        beams=beams,
        bkg_priors=bkg_priors,
        conf_priors=conf_priors,
        min_beam_fraction=min_beam_fraction,
        flux_kind=flux_kind,
        on_duplicate=on_duplicate,
    )
    run = (sampler, n_samples, n_warmup, n_chains)
    # each band's seed as fit_models draws them, whatever order the bands are sampled in (an
    # untied band's draws do not depend on the tie)
    seeds = _band_seeds(models, random_state)
    tied = _tied_bands(models) if tie_widths else {}
    # two passes: the bands whose width others borrow, then those (with its hyperprior)
    posteriors = _sample_models({b: m for b, m in models.items() if b not in tied}, seeds, *run)
    if tied:
        models.update(tied_width_models(models, posteriors, tied))
        posteriors.update(_sample_models({b: models[b] for b in tied}, seeds, *run))
        posteriors = {b: posteriors[b] for b in models}
    return XIDResult(
        prior, models, fitted, posteriors, pd.concat(unfitted, ignore_index=True), shapes, wcs
    )


def _tied_bands(models: Mapping[str, BandModel]) -> dict[str, str]:
    """Band -> the band whose population width it borrows (:data:`TIED_WIDTH_BANDS`), for the
    hierarchical bands present whose width is not already given."""

    def free(b):
        fp = models[b].flux_prior
        return fp.kind == "hierarchical" and fp.hyper_sd_dex is None

    return {
        b: group[0]
        for group in TIED_WIDTH_BANDS
        if group[0] in models and free(group[0])
        for b in group[1:]
        if b in models and free(b)
    }


def tied_width_models(
    models: Mapping[str, BandModel],
    posteriors: Mapping[str, BandPosterior],
    tied: Mapping[str, str],
    *,
    tolerance: float = TIED_WIDTH_TOLERANCE,
) -> dict[str, BandModel]:
    """The models of the ``tied`` bands with the width hyperprior of the band they borrow from.

    ``tied``: band -> band already sampled in ``posteriors`` (hierarchical prior). The log of
    the population's sd of log10 f gets a Normal hyperprior centred on that band's posterior
    median, of sd its posterior sd and ``tolerance`` (the colour allowance) in quadrature
    (:attr:`~skysense.xid.model.FluxPrior.hyper_sd_dex`). Returns band -> new BandModel.
    """
    out = {}
    for band, ref in tied.items():
        sd = posteriors[ref].pop_sigma_dex
        if sd is None:  # the reference band did not learn a population
            continue
        lsd = np.log(np.asarray(sd, float).ravel())
        fp = dataclasses.replace(
            models[band].flux_prior,
            hyper_sd_dex=float(np.exp(np.median(lsd))),
            hyper_sd_tolerance=float(np.hypot(lsd.std(), tolerance)),
        )
        out[band] = dataclasses.replace(models[band], flux_prior=fp)
    return out


def _regions(maps: Sequence[SkyMap], region_moc) -> dict:
    """Band -> (ny, nx) bool mask of the pixels inside ``region_moc`` (None: no region)."""
    return {
        m.band: None if region_moc is None else moc_pixel_mask(region_moc, m.wcs, m.image_mjy.shape)
        for m in maps
    }


def _band_models(
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    regions: dict,
    *,
    need_sources: bool,
    beams: Mapping | None = None,
    bkg_priors: Mapping | None = None,
    conf_priors: Mapping | None = None,
    **kw,
) -> tuple[dict, dict, list, dict, dict]:
    """Every band's model of ``prior``: models, fitted rows, unfitted frames, shapes, WCSs.

    ``need_sources``: a band where no source can be fitted is an error.
    """
    models, fitted, unfitted, shapes, wcs = {}, {}, [], {}, {}
    for sky in maps:
        model, rows, bad = build_band_model(
            sky,
            prior,
            beam=(beams or {}).get(sky.band),
            region=regions[sky.band],
            bkg_prior=(bkg_priors or {}).get(sky.band),
            conf_prior=(conf_priors or {}).get(sky.band),
            **kw,
        )
        if need_sources and model.nsrc == 0:
            raise InputError(
                f"{sky.band}: no prior source can be fitted on this map", path=sky.path
            )
        models[sky.band], fitted[sky.band] = model, rows
        shapes[sky.band], wcs[sky.band] = sky.image_mjy.shape, sky.wcs
        unfitted.append(bad)
    return models, fitted, unfitted, shapes, wcs


def _check_maps_and_prior(maps: Sequence[SkyMap], prior: pd.DataFrame) -> list[str]:
    """The bands of ``maps``, after checking there is at least one, each band once, and priors."""
    if not len(maps):
        raise InputError("no map given")
    bands = [m.band for m in maps]
    if len(set(bands)) != len(bands):
        raise InputError(f"each band may be given once, got {bands}")
    if len(prior) == 0:
        raise InputError("the prior catalogue is empty")
    return bands


def fit_sed_maps(
    maps: Sequence[SkyMap],
    prior: pd.DataFrame,
    *,
    templates,
    z_column: str = "z",
    z_err_column: str | None = None,
    beams: Mapping[str, GaussianBeam | PRFBeam] | None = None,
    region_moc=None,
    min_beam_fraction: float = 1e-3,
    bkg_priors: Mapping[str, BackgroundPrior] | None = None,
    conf_priors: Mapping[str, ConfusionPrior] | None = None,
    on_duplicate: str = "error",
    log_norm_bounds: tuple[float, float] = (-3.0, 3.0),
    scatter_fraction: float = 0.2,
    norm_prior: str = "hierarchical",
    n_samples: int = 500,
    n_warmup: int = 500,
    n_chains: int = 2,
    random_state=None,
    **_ignored,
) -> XIDResult:
    """Fit all bands together with the template SED prior (numpyro NUTS); mirrors ``fit-sed``.

    Sources are fitted only where every band can fit them (the SED ties their fluxes); the
    others are reported in ``unfitted``. The confusion is XID+'s white sigma_conf here (the
    NUTS model of :mod:`skysense.xid.sed` has no correlated field).

    Parameters
    ----------
    maps, prior, beams, region_moc, ... : as :func:`fit`
    templates : :class:`skysense.xid.sed.SEDTemplates` covering every band of ``maps``
    z_column : prior column of the redshift
    z_err_column : prior column of its 1-sigma error (None: redshift fixed)
    log_norm_bounds, scatter_fraction, norm_prior : see :func:`skysense.xid.sed.fit_sed`
        (``norm_prior``: the hierarchical population prior of the normalisations by default,
        ``"uniform"`` for XID+IR-SED's flat one)

    Returns
    -------
    XIDResult with ``sed`` (:class:`skysense.xid.sed.SEDPosterior`) and per-band draws

    Raises
    ------
    InputError
        Missing or non-finite redshift column (names the row), bands missing from the
        templates, redshifts outside the template grid, no source fittable in every band.
    """
    from skysense.xid.sed import fit_sed

    bands = _check_maps_and_prior(maps, prior)
    missing = [b for b in bands if b not in templates.bands]
    if missing:
        raise InputError(
            f"the SED templates have no fluxes for band(s) {missing} "
            f"(template bands: {templates.bands})"
        )

    def zcol(name):
        if name is None:
            return None
        v = _column(prior, name)
        if v is None:
            raise InputError(f"prior catalogue has no redshift column {name!r}", column=name)
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise InputError(
                f"redshift column {name!r} is not finite for {bad.size} source(s) "
                f"(e.g. {prior['id'].iloc[bad[0]]!r}); give them a photo-z or drop them",
                column=name,
                row=int(bad[0]),
            )
        return v

    z, z_err = zcol(z_column), zcol(z_err_column)
    zlo, zhi = templates.z_grid[0], templates.z_grid[-1]
    bad = np.flatnonzero((z < zlo) | (z > zhi))
    if bad.size:
        raise InputError(
            f"redshift of {bad.size} source(s) outside the template grid [{zlo:g}, {zhi:g}] "
            f"(e.g. {prior['id'].iloc[bad[0]]!r}, z = {z[bad[0]]:g})",
            column=z_column,
            row=int(bad[0]),
        )
    kw = {
        "min_beam_fraction": min_beam_fraction,
        "on_duplicate": on_duplicate,
    }
    regions = _regions(maps, region_moc)
    # pass 1: which sources each band can fit; the SED needs them in every band
    _, rows_of, unfitted, _, _ = _band_models(
        maps, prior, regions, need_sources=False, beams=beams, **kw
    )
    common = np.ones(len(prior), dtype=bool)
    for rows in rows_of.values():
        ok = np.zeros(len(prior), dtype=bool)
        ok[rows] = True
        common &= ok
    unf = pd.concat(unfitted, ignore_index=True)
    rest = np.flatnonzero(~common)
    extra = prior["id"].iloc[rest][~prior["id"].iloc[rest].isin(unf["id"])]
    unf = pd.concat(
        [
            unf,
            pd.DataFrame(
                {"id": extra.to_numpy(), "band": "all", "reason": "not fittable in every band"}
            ),
        ],
        ignore_index=True,
    )
    keep = np.flatnonzero(common)
    if keep.size == 0:
        raise InputError(f"no prior source can be fitted in every band {bands}")
    sub = prior.iloc[keep].reset_index(drop=True)
    models, rows_of, _, shapes, wcs = _band_models(
        maps,
        sub,
        regions,
        need_sources=False,
        beams=beams,
        bkg_priors=bkg_priors,
        conf_priors=conf_priors,
        **kw,
    )
    fitted = {}
    for band, model in models.items():
        if model.nsrc != keep.size:  # cannot happen: the same pixels and positions
            raise InputError(f"{band}: the fitted sources changed between passes")
        fitted[band] = keep[rows_of[band]]
    post = fit_sed(
        models,
        templates,
        z_mean=z[keep],
        z_sigma=None if z_err is None else z_err[keep],
        log_norm_bounds=log_norm_bounds,
        scatter_fraction=scatter_fraction,
        norm_prior=norm_prior,
        n_samples=n_samples,
        n_warmup=n_warmup,
        n_chains=n_chains,
        random_state=random_state,
    )
    posteriors = {
        b: BandPosterior(
            b,
            post.flux[..., k],
            post.bkg[..., k],
            post.sigma_conf[..., k],
            warmup_s=post.warmup_s,
            sampling_s=post.sampling_s,
        )
        for k, b in enumerate(post.bands)
    }
    return XIDResult(prior, models, fitted, posteriors, unf, shapes, wcs, post, keep)
