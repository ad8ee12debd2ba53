"""``skysense xid ...``: XID+ de-blending of confusion-limited far-infrared maps.

Argument parsing and printing only; the work is done by the public API of :mod:`skysense.xid`
(:func:`skysense.xid.io.read_fit_inputs` reads the inputs and builds the beams and priors).
"""

from __future__ import annotations

import sys

from skysense.cli._common import add_area, add_scheduler_option, add_verb
from skysense.errors import InputError

__all__ = ["register"]


def _add_common(p, *, sed: bool = False) -> None:
    p.add_argument(
        "--map",
        action="append",
        required=True,
        metavar="FITS",
        help="map (FITS with WCS, Jy/beam or mJy/beam); repeat for several bands",
    )
    p.add_argument(
        "--noise",
        action="append",
        default=None,
        metavar="FITS",
        help="noise map per --map, same order (default: the map's ERROR HDU)",
    )
    p.add_argument(
        "--band",
        action="append",
        required=True,
        metavar="NAME",
        help="HELP band name per --map, e.g. spire_250, spire_350, spire_500, mips_24",
    )
    p.add_argument(
        "--prior",
        required=True,
        metavar="CAT",
        help="prior catalogue (FITS/CSV/Parquet: id, ra, dec, optional "
        "flux_lower_<band>, flux_upper_<band>, flux_mu_<band>, flux_sigma_<band>)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--moc", default=None, metavar="FITS", help="fit only pixels in this MOC")
    p.add_argument(
        "--fwhm",
        action="append",
        type=float,
        default=None,
        metavar="ARCSEC",
        help="Gaussian beam FWHM per band (default: header FWHM or HELP value)",
    )
    p.add_argument(
        "--prf",
        action="append",
        default=None,
        metavar="FITS",
        help="PRF image per band instead of a Gaussian (sampling from PIXSCALE arcsec or CDELT2)",
    )
    p.add_argument(
        "--min-beam-fraction",
        type=float,
        default=1e-3,
        help="drop pointing-matrix entries below this fraction of the peak",
    )
    p.add_argument(
        "--bkg-prior",
        nargs=2,
        type=float,
        default=None,
        metavar=("MU", "SIGMA"),
        help="background prior Normal(MU, SIGMA) in mJy/beam (default 0 5)",
    )
    p.add_argument(
        "--conf-prior",
        default=None,
        choices=["halfcauchy", "halfnormal", "none"],
        help="sigma_conf prior (default halfcauchy 0.5 for SPIRE, none for MIPS)",
    )
    p.add_argument("--conf-scale", type=float, default=0.5, help="scale of the sigma_conf prior")
    if not sed:  # the SED mode's flux prior is the template mixture
        p.add_argument(
            "--flux-prior",
            default="uniform",
            choices=["uniform", "loguniform", "lognormal"],
            help="flux prior kind when the catalogue gives no Gaussian prior; lognormal: a "
            "population prior with median flux_mu_<band> (mJy) and scatter flux_sigma_<band> "
            "(dex), for prior lists far below the noise",
        )
    p.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="fit prior sources at identical positions instead of stopping",
    )
    if not sed:  # the SED mode always runs NUTS (its prior is not conjugate)
        p.add_argument("--sampler", default="gibbs", choices=["gibbs", "nuts"])
    p.add_argument("--samples", type=int, default=500 if sed else 1000, help="kept draws per chain")
    p.add_argument("--warmup", type=int, default=500, help="warm-up iterations per chain")
    p.add_argument("--chains", type=int, default=2 if sed else 4)
    p.add_argument("--seed", type=int, default=0)


def _inputs(args):
    """Maps, prior, region and per-band beams/priors of the options, and the fit settings."""
    from skysense.xid.io import read_fit_inputs

    inp = read_fit_inputs(
        args.map,
        args.band,
        args.prior,
        noise=args.noise,
        prf=args.prf,
        fwhm_arcsec=args.fwhm,
        moc=args.moc,
        bkg_prior=args.bkg_prior,
        conf_prior=args.conf_prior,
        conf_scale=args.conf_scale,
    )
    kw = {
        "min_beam_fraction": args.min_beam_fraction,
        "on_duplicate": "keep" if args.allow_duplicates else "error",
        "n_samples": args.samples,
        "n_warmup": args.warmup,
        "n_chains": args.chains,
        "random_state": args.seed,
        **inp.fit_kwargs(),
    }
    if getattr(args, "flux_prior", None) is not None:
        kw["flux_kind"] = args.flux_prior
    if getattr(args, "sampler", None) is not None:
        kw["sampler"] = args.sampler
    return inp.maps, inp.prior, kw


def _fit(args) -> int:
    from skysense.xid.fit import fit
    from skysense.xid.io import write_outputs

    maps, prior, kw = _inputs(args)
    result = fit(maps, prior, **kw)
    write_outputs(result, args.out)
    cat = result.catalogue()
    flagged = sum(int(cat[c].sum()) for c in cat.columns if c.startswith("flag_xid_"))
    print(
        f"fitted {len(prior)} prior sources in {len(maps)} band(s); "
        f"{len(result.unfitted)} source-band(s) not fittable (see unfitted.csv); "
        f"{flagged} source-band(s) flagged; outputs in {args.out}",
        file=sys.stderr,
    )
    return 0


def _fit_tiles(args) -> int:
    maps, prior, kw = _inputs(args)
    return _run_tiles(args, maps, prior, **kw)


def _run_tiles(args, maps, prior, **kw) -> int:
    """Tiled fit with the tiling options of ``args``; ``kw`` goes to the per-tile fitter."""
    from skysense.xid.engine import fit_tiles

    cat = fit_tiles(
        maps,
        prior,
        args.out,
        order=args.order,
        sources_per_tile=args.sources_per_tile,
        buffer_arcsec=args.buffer_arcsec,
        scheduler=args.scheduler,
        **kw,
    )
    print(f"joined {len(cat)} sources into {args.out}/catalogue.fits", file=sys.stderr)
    return 0


def _fit_sed(args) -> int:
    from skysense.xid.fit import fit_sed_maps
    from skysense.xid.io import read_templates, write_outputs

    maps, prior, kw = _inputs(args)
    kw.update(
        templates=read_templates(args.templates, bands=args.band),
        z_column=args.redshift_column,
        z_err_column=args.redshift_error_column,
        log_norm_bounds=tuple(args.log_norm_bounds),
        scatter_fraction=args.scatter,
    )
    if args.tiles:
        return _run_tiles(args, maps, prior, fitter=fit_sed_maps, **kw)
    result = fit_sed_maps(maps, prior, **kw)
    write_outputs(result, args.out)
    print(
        f"SED fit of {len(result.sed_rows)} of {len(prior)} prior sources in "
        f"{len(maps)} band(s); {len(result.unfitted)} not fittable (see unfitted.csv); "
        f"outputs in {args.out}",
        file=sys.stderr,
    )
    return 0


def _add_tiling(p) -> None:
    p.add_argument(
        "--order",
        type=int,
        default=None,
        help="HEALPix order of the tiles (default: chosen for --sources-per-tile)",
    )
    p.add_argument("--sources-per-tile", type=int, default=600)
    p.add_argument(
        "--buffer-arcsec",
        type=float,
        default=None,
        help="buffer ring around each tile (default 2 x the largest beam FWHM)",
    )
    add_scheduler_option(p)


def _blind(args) -> int:
    from skysense.xid.blind.extract import extract_sources
    from skysense.xid.blind.io import write_blind_catalogue
    from skysense.xid.io import read_map

    sky = read_map(args.map, band=args.band, noise_path=args.noise)
    confusion = None if args.confusion == "auto" else float(args.confusion)
    kw = {
        "snr_threshold": args.snr,
        "confusion_mjy": confusion,
        "fwhm_arcsec": args.fwhm,
        "deblend": not args.no_deblend,
    }
    if args.tile is not None:
        from skysense.xid.blind.engine import extract_tiles

        catalogue = extract_tiles(sky, tile_pix=args.tile, scheduler=args.scheduler, **kw)
    else:
        catalogue = extract_sources(sky, **kw)
    paths = write_blind_catalogue(catalogue, args.out)
    print(
        f"{len(catalogue)} sources above S/N {args.snr:g}: " + ", ".join(str(p) for p in paths),
        file=sys.stderr,
    )
    return 0


def _hidden(args) -> int:
    from skysense.xid.hidden.io import write_hidden
    from skysense.xid.hidden.search import find_hidden_sources

    maps, prior, kw = _inputs(args)
    seed = kw.pop("random_state")
    hidden = find_hidden_sources(
        maps,
        prior,
        detect_band=args.detect_band,
        snr_threshold=args.snr,
        pval_sigma_min=args.pval_min,
        min_sep_fwhm=args.min_sep_fwhm,
        refit=not args.no_refit,
        max_iter=args.max_iter,
        id_prefix=args.id_prefix,
        random_state=seed,
        **kw,
    )
    write_hidden(hidden, args.out)
    cand = hidden.candidates
    print(
        f"{len(cand)} candidate(s) in {hidden.n_fits} fit(s), {int(cand['added'].sum())} added "
        f"to the prior; {'converged' if hidden.converged else 'NOT converged (raise --max-iter)'}"
        f"; outputs in {args.out} (hidden.fits, prior_hidden.fits, catalogue.fits)",
        file=sys.stderr,
    )
    return 0


def _blind_match(args) -> int:
    from skysense.xid.blind.io import read_blind_catalogue, write_blind_catalogue
    from skysense.xid.blind.match import MATCH_UNITS, match_blind
    from skysense.xid.io import read_prior

    if args.xid is None and args.masterlist is None:
        raise InputError("give --xid CAT, --masterlist CAT or both")
    blind = read_blind_catalogue(args.blind)
    xid = None if args.xid is None else read_prior(args.xid)
    ml = None if args.masterlist is None else read_prior(args.masterlist)
    out = match_blind(blind, xid=xid, masterlist=ml, radius_arcsec=args.radius, band=args.band)
    paths = write_blind_catalogue(out, args.out, units=MATCH_UNITS)
    print(
        f"{int(out['no_prior_counterpart'].sum())} of {len(out)} blind sources have no prior "
        f"counterpart within {out.attrs['match_radius_arcsec']:g} arcsec: "
        + ", ".join(str(p) for p in paths),
        file=sys.stderr,
    )
    return 0


def register(subparsers) -> None:
    verbs = add_area(subparsers, "xid", "XID+ Bayesian de-blending of far-infrared maps")
    p = add_verb(
        verbs,
        "blind",
        _blind,
        "find sources in a map itself (matched filter, peaks, PSF fit of blends)",
    )
    p.add_argument("map", help="FITS map (IMAGE/ERROR HDUs, or a separate --noise map)")
    p.add_argument("--band", required=True, help="band name, e.g. spire_250")
    p.add_argument("--noise", default=None, help="separate FITS noise map on the same grid")
    p.add_argument("--fwhm", type=float, default=None, help="beam FWHM in arcsec (default: band)")
    p.add_argument("--snr", type=float, default=5.0, help="detection S/N threshold (default 5)")
    p.add_argument(
        "--confusion",
        default="auto",
        help="confusion noise in mJy/beam for the matched filter, or 'auto' to estimate it; "
        "0 gives the plain beam-matched filter",
    )
    p.add_argument("--no-deblend", action="store_true", help="skip joint PSF fits of blends")
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="PIX",
        help="extract tile by tile on Dask, tiles of PIX x PIX pixels with a 6-FWHM buffer "
        "(same catalogue as one map; for large fields)",
    )
    p.add_argument(
        "-o", "--out", required=True, help="output stem: writes STEM.fits and STEM.parquet"
    )
    add_scheduler_option(p)
    p = add_verb(
        verbs,
        "hidden",
        _hidden,
        "fit, find significant positive residuals no prior explains, add them and refit",
    )
    _add_common(p)
    p.add_argument(
        "--detect-band", default=None, help="band searched for residuals (default: sharpest beam)"
    )
    p.add_argument("--snr", type=float, default=5.0, help="filtered residual S/N (default 5)")
    p.add_argument(
        "--pval-min",
        type=float,
        default=1.0,
        help="beam-mean Bayesian P value (sigma) a candidate must exceed (default 1)",
    )
    p.add_argument(
        "--min-sep-fwhm",
        type=float,
        default=0.5,
        help="do not add candidates within this many FWHM of a prior source (default 0.5)",
    )
    p.add_argument("--max-iter", type=int, default=5, help="at most this many XID+ fits")
    p.add_argument("--no-refit", action="store_true", help="one fit: report candidates only")
    p.add_argument(
        "--id-prefix",
        default="HIDDEN",
        help="added sources are named PREFIX_<iteration>_<k> (default HIDDEN)",
    )
    p = add_verb(
        verbs,
        "blind-match",
        _blind_match,
        "cross-match a blind catalogue with XID+ / masterlist; flag sources without prior",
    )
    p.add_argument("blind", help="blind catalogue (FITS or Parquet from 'skysense xid blind')")
    p.add_argument("--xid", default=None, metavar="CAT", help="XID+ catalogue (HELP_ID, RA, Dec)")
    p.add_argument(
        "--masterlist", default=None, metavar="CAT", help="masterlist (help_id, ra, dec)"
    )
    p.add_argument(
        "--radius",
        type=float,
        default=None,
        metavar="ARCSEC",
        help="match radius (default: half the beam FWHM of the blind catalogue)",
    )
    p.add_argument("--band", default=None, help="band of the XID+ flux column F_<BAND>")
    p.add_argument(
        "-o", "--out", required=True, help="output stem: writes STEM.fits and STEM.parquet"
    )
    p = add_verb(verbs, "fit", _fit, "fit prior sources on one or more maps (one region)")
    _add_common(p)
    p = add_verb(
        verbs,
        "fit-tiles",
        _fit_tiles,
        "fit a large field in HEALPix tiles on Dask (restartable), join the catalogue",
    )
    _add_common(p)
    _add_tiling(p)
    p = add_verb(
        verbs,
        "fit-sed",
        _fit_sed,
        "fit MIPS/SPIRE bands together with a template SED prior (NUTS), one region or tiles",
    )
    _add_common(p, sed=True)
    p.add_argument(
        "--templates",
        required=True,
        metavar="FILE",
        help="SED template table (FITS/CSV/Parquet): template, z and one column per band "
        "with the flux in mJy at normalisation 0",
    )
    p.add_argument(
        "--redshift-column", default="z", metavar="COL", help="prior column of the redshift"
    )
    p.add_argument(
        "--redshift-error-column",
        default=None,
        metavar="COL",
        help="prior column of the redshift error (a photo-z); default: redshift fixed",
    )
    p.add_argument(
        "--log-norm-bounds",
        nargs=2,
        type=float,
        default=(-3.0, 3.0),
        metavar=("LO", "HI"),
        help="uniform prior bounds of log10 of the template scale",
    )
    p.add_argument(
        "--scatter",
        type=float,
        default=0.2,
        help="fractional scatter of the fluxes about the template (default 0.2)",
    )
    p.add_argument("--tiles", action="store_true", help="fit in HEALPix tiles on Dask")
    _add_tiling(p)
