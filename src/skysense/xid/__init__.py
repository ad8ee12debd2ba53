"""XID+: Bayesian de-blending of confusion-limited far-infrared maps (Hurley et al. 2017).

Fit the fluxes of known (prior) sources in maps whose beams blend them: ``map = A f + B +
noise`` with per-pixel noise ``sigma_inst^2 + sigma_conf^2``. The fast exact sampler
(:mod:`skysense.xid.sampler`) Gibbs-samples the truncated Gaussian posterior in numba; numpyro
NUTS (:mod:`skysense.xid.reference`) is the reference and runs the SED-prior mode
(:mod:`skysense.xid.sed`, :func:`fit_sed_maps`). Large fields are tiled on HEALPix, with tiles
adapted to the source density, and fitted on Dask (:mod:`skysense.xid.engine`); calibration
on simulated maps is in :mod:`skysense.xid.calibration`.

Quick start::

    from skysense.xid import read_map, read_prior, fit, write_outputs
    maps = [read_map("psw.fits", band="spire_250"), read_map("pmw.fits", band="spire_350")]
    result = fit(maps, read_prior("prior.fits"), random_state=0)
    write_outputs(result, "out/")          # catalogue.fits/.parquet, posterior.nc, maps

or, reading the inputs and building per-band beams and priors as ``skysense xid fit`` does::

    from skysense.xid import read_fit_inputs
    inp = read_fit_inputs(["psw.fits"], ["spire_250"], "prior.fits", fwhm_arcsec=[18.15])
    result = fit(inp.maps, inp.prior, random_state=0, **inp.fit_kwargs())

Layout: the core (:mod:`~skysense.xid.skymap`, :mod:`~skysense.xid.model`,
:mod:`~skysense.xid.sampler`, :mod:`~skysense.xid.fit`, ...) computes and never touches files;
:mod:`skysense.xid.io` reads and writes them; :mod:`skysense.xid.engine` runs tiles on Dask.
Blind extraction (:mod:`skysense.xid.blind`) and the hidden-source search
(:mod:`skysense.xid.hidden`) are sub-packages with the same split.
"""

from skysense.xid.diagnostics import ess_bulk, split_rhat, summarise_convergence
from skysense.xid.engine import fit_tiles
from skysense.xid.fit import XIDResult, build_band_model, fit, fit_models, fit_sed_maps
from skysense.xid.io import (
    FitInputs,
    read_fit_inputs,
    read_map,
    read_moc,
    read_prior,
    read_templates,
    write_outputs,
)
from skysense.xid.model import (
    BackgroundPrior,
    BandModel,
    ConfusionPrior,
    FluxPrior,
    GaussianBeam,
    PRFBeam,
    band_model,
    band_options,
    pointing_matrix,
)
from skysense.xid.sampler import BandPosterior, sample_band
from skysense.xid.sed import SEDPosterior, SEDTemplates, fit_sed
from skysense.xid.skymap import SkyMap, moc_pixel_mask
from skysense.xid.tiles import Tile, adaptive_tiles, make_tiles

__all__ = [
    "SkyMap",
    "read_map",
    "read_prior",
    "read_moc",
    "read_templates",
    "read_fit_inputs",
    "FitInputs",
    "moc_pixel_mask",
    "GaussianBeam",
    "PRFBeam",
    "FluxPrior",
    "BackgroundPrior",
    "ConfusionPrior",
    "BandModel",
    "band_model",
    "band_options",
    "pointing_matrix",
    "BandPosterior",
    "sample_band",
    "split_rhat",
    "ess_bulk",
    "summarise_convergence",
    "XIDResult",
    "build_band_model",
    "fit",
    "fit_models",
    "fit_sed_maps",
    "SEDTemplates",
    "SEDPosterior",
    "fit_sed",
    "write_outputs",
    "Tile",
    "make_tiles",
    "adaptive_tiles",
    "fit_tiles",
]
