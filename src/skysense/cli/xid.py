"""``skysense xid ...``: XID+ de-blending of confusion-limited far-infrared maps.

Argument parsing and printing only; the work is done by the public API of :mod:`skysense.xid`
(:func:`skysense.xid.io.read_fit_inputs` reads the inputs and builds the beams and priors).
"""

from __future__ import annotations

import sys

from skysense.cli._common import SCHEDULER, add_area, keywords, verb
from skysense.errors import InputError

__all__ = ["register"]

_INPUTS = """
--map FITS append required | map (FITS with WCS, Jy/beam or mJy/beam); repeat for several bands
--noise FITS append | noise map per --map, same order (default: the map's ERROR HDU)
--band NAME append required | HELP band name per --map, e.g. spire_250, spire_350, spire_500,
    mips_24
--prior CAT required | prior catalogue (FITS/CSV/Parquet: id, ra, dec, optional
    flux_lower_<band>, flux_upper_<band>, flux_mu_<band>, flux_sigma_<band>)
--out DIR required | output directory
--moc FITS | fit only pixels in this MOC
--fwhm ARCSEC append float | Gaussian beam FWHM per band (default: header FWHM or HELP value)
--prf FITS append | PRF image per band instead of a Gaussian (sampling from PIXSCALE arcsec or
    CDELT2)
--min-beam-fraction float=1e-3 | drop pointing-matrix entries below this fraction of the peak
--bkg-prior MU SIGMA float | background prior Normal(MU, SIGMA) in mJy/beam (default 0 5)
--conf-prior {halfcauchy,halfnormal,none} | sigma_conf prior (default halfcauchy 0.5 for SPIRE,
    none for MIPS)
--conf-scale float=0.5 | scale of the sigma_conf prior
--white-confusion flag | XID+'s white sigma_conf instead of the default correlated confusion
    field of unlisted sources (beam-correlated, amplitude sampled with the sigma_conf prior)
"""
# not in the SED mode, whose flux prior is the template mixture
_FLUX_PRIOR = """
--flux-prior {uniform,loguniform,lognormal,hierarchical} | flux prior kind (default:
    hierarchical, or Gaussian when the catalogue gives flux_mu_<band> and flux_sigma_<band>);
    hierarchical: a log-normal population prior with its median and scatter learned from the
    map; uniform: XID+'s flat prior; lognormal: the population prior with median
    flux_mu_<band> (mJy) and scatter flux_sigma_<band> (dex) supplied
"""
_DUPLICATES = (
    "--allow-duplicates flag | fit prior sources at identical positions instead of stopping"
)
_SAMPLES = """
--samples int={} | kept draws per chain
--warmup int=500 | warm-up iterations per chain
--chains int={}
--seed int=0
"""
_TILING = f"""
--order int | HEALPix tiles of one order (default: RA/Dec boxes of about --sources-per-tile sources)
--sources-per-tile int=600
--buffer-arcsec float | buffer ring around each tile (default 2 x the largest beam FWHM)
{SCHEDULER}
"""
_BLIND = f"""
map | FITS map (IMAGE/ERROR HDUs, or a separate --noise map)
--band required | band name, e.g. spire_250
--noise | separate FITS noise map on the same grid
--fwhm float | beam FWHM in arcsec (default: band)
--snr float=5.0 | detection S/N threshold (default 5)
--confusion auto=auto | confusion noise in mJy/beam for the matched filter, or 'auto' to estimate
    it; 0 gives the plain beam-matched filter
--no-deblend flag | skip joint PSF fits of blends
--tile PIX int | extract tile by tile on Dask, tiles of PIX x PIX pixels with a 6-FWHM buffer
    (same catalogue as one map; for large fields)
-o --out required | output stem: writes STEM.fits and STEM.parquet
{SCHEDULER}
"""
_HIDDEN = """
--detect-band | band searched for residuals (default: sharpest beam)
--snr float=5.0 | filtered residual S/N (default 5)
--pval-min float=1.0 | beam-mean Bayesian P value (sigma) a candidate must exceed (default 1)
--min-sep-fwhm float=0.5 | do not add candidates within this many FWHM of a prior source
    (default 0.5)
--max-iter int=5 | at most this many XID+ fits
--no-refit flag | one fit: report candidates only
--id-prefix str=HIDDEN | added sources are named PREFIX_<iteration>_<k> (default HIDDEN)
"""
_BLIND_MATCH = """
blind | blind catalogue (FITS or Parquet from 'skysense xid blind')
--xid CAT | XID+ catalogue (HELP_ID, RA, Dec)
--masterlist CAT | masterlist (help_id, ra, dec)
--radius ARCSEC float | match radius (default: half the beam FWHM of the blind catalogue)
--band | band of the XID+ flux column F_<BAND>
-o --out required | output stem: writes STEM.fits and STEM.parquet
"""
_SED = """
--templates FILE required | SED template table (FITS/CSV/Parquet): template, z and one column per
    band with the flux in mJy at normalisation 0
--redshift-column COL str=z | prior column of the redshift
--redshift-error-column COL | prior column of the redshift error (a photo-z); default: redshift
    fixed
--log-norm-bounds LO HI float=-3.0,3.0 | uniform prior bounds of log10 of the template scale
--scatter float=0.2 | fractional scatter of the fluxes about the template (default 0.2)
--tiles flag | fit in tiles (RA/Dec boxes or HEALPix cells) on Dask
"""

# options passed on as keywords: of read_fit_inputs, of every fitter, of the SED mode, of
# fit_tiles and of find_hidden_sources
_READ_KW = (
    "noise prf fwhm:fwhm_arcsec moc bkg_prior conf_prior conf_scale white_confusion:conf_white"
)
_FIT_KW = "min_beam_fraction samples:n_samples warmup:n_warmup chains:n_chains seed:random_state"
_SED_KW = "redshift_column:z_column redshift_error_column:z_err_column scatter:scatter_fraction"
_TILES_KW = "order scheduler sources_per_tile buffer_arcsec"
_HIDDEN_KW = """detect_band snr:snr_threshold pval_min:pval_sigma_min min_sep_fwhm max_iter
id_prefix"""


def _fit_options(*, sed: bool = False) -> list[str]:
    """The option specs of the verbs that fit (the SED mode: its own flux prior and sampler)."""
    samples = _SAMPLES.format(*((500, 2) if sed else (1000, 4)))
    if sed:
        return [_INPUTS, _DUPLICATES, samples]
    return [_INPUTS, _FLUX_PRIOR, _DUPLICATES, "--sampler {gibbs,nuts}=gibbs", samples]


def _inputs(args):
    """Maps, prior, and the keyword arguments of the fitters, from the options."""
    from skysense import xid

    inp = xid.read_fit_inputs(args.map, args.band, args.prior, **keywords(args, _READ_KW))
    kw = {**keywords(args, _FIT_KW), **inp.fit_kwargs()}
    kw["on_duplicate"] = "keep" if args.allow_duplicates else "error"
    if hasattr(args, "sampler"):  # not in the SED mode
        kw.update(keywords(args, "flux_prior:flux_kind sampler"))
    return inp.maps, inp.prior, kw


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _fit(args) -> None:
    """``fit``, ``fit-tiles`` and ``fit-sed`` (with ``--tiles``)."""
    from skysense import xid

    maps, prior, kw = _inputs(args)
    sed = args.verb == "fit-sed"
    if sed:
        kw.update(keywords(args, _SED_KW), log_norm_bounds=tuple(args.log_norm_bounds))
        kw["templates"] = xid.read_templates(args.templates, bands=args.band)
    if args.verb == "fit-tiles" or getattr(args, "tiles", False):
        kw.update(keywords(args, _TILES_KW), **({"fitter": xid.fit_sed_maps} if sed else {}))
        cat = xid.fit_tiles(maps, prior, args.out, **kw)
        return _say(f"joined {len(cat)} sources into {args.out}/catalogue.fits")
    result = (xid.fit_sed_maps if sed else xid.fit)(maps, prior, **kw)
    xid.write_outputs(result, args.out)
    _say(result.summary(args.out))


def _blind(args) -> None:
    from skysense.xid import blind, read_map

    sky = read_map(args.map, band=args.band, noise_path=args.noise)
    kw = {"snr_threshold": args.snr, "fwhm_arcsec": args.fwhm, "deblend": not args.no_deblend,
          "confusion_mjy": None if args.confusion == "auto" else args.confusion}  # fmt: skip
    if args.tile is not None:
        catalogue = blind.extract_tiles(sky, tile_pix=args.tile, scheduler=args.scheduler, **kw)
    else:
        catalogue = blind.extract_sources(sky, **kw)
    paths = blind.write_blind_catalogue(catalogue, args.out)
    _say(f"{len(catalogue)} sources above S/N {args.snr:g}: " + ", ".join(map(str, paths)))


def _hidden(args) -> None:
    from skysense.xid.hidden import find_hidden_sources, write_hidden

    maps, prior, kw = _inputs(args)
    kw.update(keywords(args, _HIDDEN_KW), refit=not args.no_refit)
    hidden = find_hidden_sources(maps, prior, **kw)
    write_hidden(hidden, args.out)
    _say(hidden.summary(args.out))


def _blind_match(args) -> None:
    from skysense.xid import blind, read_prior

    if args.xid is None and args.masterlist is None:
        raise InputError("give --xid CAT, --masterlist CAT or both")
    found = blind.read_blind_catalogue(args.blind)
    xid, ml = (None if p is None else read_prior(p) for p in (args.xid, args.masterlist))
    out = blind.match_blind(found, xid=xid, masterlist=ml, radius_arcsec=args.radius,
                            band=args.band)  # fmt: skip
    paths = blind.write_blind_catalogue(out, args.out, units=blind.MATCH_UNITS)
    _say(f"{blind.describe_match(out)}: " + ", ".join(map(str, paths)))


def register(subparsers) -> None:
    verbs = add_area(subparsers, "xid", "XID+ Bayesian de-blending of far-infrared maps")
    verb(verbs, "blind", _blind, "find sources in a map itself (matched filter, peaks, PSF fit of "
         "blends)", _BLIND)  # fmt: skip
    verb(verbs, "hidden", _hidden, "fit, find significant positive residuals no prior explains, "
         "add them and refit", *_fit_options(), _HIDDEN)  # fmt: skip
    verb(verbs, "blind-match", _blind_match, "cross-match a blind catalogue with XID+ / "
         "masterlist; flag sources without prior", _BLIND_MATCH)  # fmt: skip
    verb(verbs, "fit", _fit, "fit prior sources on one or more maps (one region)", *_fit_options())
    verb(verbs, "fit-tiles", _fit, "fit a large field in tiles on Dask (restartable), "
         "join the catalogue", *_fit_options(), _TILING)  # fmt: skip
    verb(verbs, "fit-sed", _fit, "fit MIPS/SPIRE bands together with a template SED prior "
         "(NUTS), one region or tiles", *_fit_options(sed=True), _SED, _TILING)  # fmt: skip
