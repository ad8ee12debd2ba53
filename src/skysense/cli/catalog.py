"""``skysense catalog ...``: preparing surveys, merging them into a masterlist, checking it.

Parsing and printing only: :mod:`skysense.catalog.prepare_io` prepares and combines
coverages, :mod:`skysense.catalog.merge_io` merges, :mod:`skysense.catalog.check_io` checks.
"""

from __future__ import annotations

import json

from skysense.cli._catalog_radio import add_verbs as add_radio_verbs
from skysense.cli._common import SCHEDULER, add_area, keywords, verb

__all__ = ["register"]

_PREPARE = """
config CONFIG | survey configuration (YAML or TOML)
--out FILE required | prepared catalogue (.parquet, .fits, ...)
--reference GAIA | Gaia-like reference catalogue
--moc-out FILE | coverage MOC (default: OUT stem + _moc.fits)
--provenance FILE | provenance JSON (default: OUT.provenance.json)
--plots DIR | folder for the astrometry and aperture-correction plots (PNG)
--moc-order N int=10 | MOC order (default 10)
--scheduler ADDRESS | Dask scheduler address, when the configured file is a HATS directory
    (prepared partition by partition; OUT is then a HATS directory)
"""
_MOC = """
inputs INPUT+ | MOC FITS files or survey configs
--op {union,intersection}=union
--out FILE | write the combined MOC (FITS)
--order N int=10 | order for configs (default 10)
--json flag | print the summary as JSON
"""
_MERGE = f"""
config | merge configuration (YAML or TOML)
--out required | output directory (replaced atomically)
--fits | also write the masterlist as this FITS file
--tiled flag | merge tile by tile on Dask (the default; kept for older scripts)
--in-memory flag | merge in memory, every catalogue held whole (the same masterlist; for
    comparisons)
--tile-order int | HEALPix order of the tiles (default: from the data)
{SCHEDULER}
"""
_CHECK = """
masterlist | masterlist: HATS directory, Parquet or FITS file
--out required | report directory
--associations | association table (default: beside the masterlist)
"""
_PAIR = "a | first catalogue\nb | second catalogue"
_RADEC = """
--ra | RA column (deg) of both files (default: guessed)
--dec | Dec column (deg) of both files (default: guessed)
"""
_SUGGEST = """
--max-radius float=5.0 | histogram range, arcsec (default 5)
--plot | write the histogram to this PNG
"""
_CROSSMATCH = """
--radius float required | match radius, arcsec
--out required | output table (format from the suffix)
--all-pairs flag | every pair within the radius, not one-to-one
"""


def _prepare(args) -> str:
    from skysense._dask import progress
    from skysense.catalog.config import load_config
    from skysense.catalog.preparation import STAGES
    from skysense.catalog.prepare_io import describe_prepared, prepare_survey, write_prepared

    config = load_config(args.config)
    if config.file_path.is_dir():
        from skysense.catalog.prepare_io import prepare_hats

        # A HATS catalogue: partition by partition on Dask, into a HATS directory.
        r = prepare_hats(config, args.out, reference=args.reference, moc_order=args.moc_order,
                         scheduler=args.scheduler)  # fmt: skip
        return (f"{r['rows']} prepared rows in {r['partitions']} partitions written to "
                f"{args.out}; coverage {r['moc']}")  # fmt: skip
    with progress(len(STAGES) + 1, "prepare", unit="steps") as update:
        result = prepare_survey(config, reference=args.reference, moc_order=args.moc_order,
                                plots_dir=args.plots, progress=lambda stage: update())  # fmt: skip
    paths = write_prepared(result, args.out, moc_out=args.moc_out, provenance_out=args.provenance)
    return describe_prepared(result, paths)


def _moc(args) -> str:
    from skysense.catalog.prepare_io import combine_coverages, describe_coverages

    s = combine_coverages(args.inputs, args.op, order=args.order, out=args.out)
    return json.dumps(s, indent=2) if args.json else describe_coverages(s)


def _merge(args) -> str:
    from skysense._dask import show_progress
    from skysense.catalog.merge_config import load_merge_config
    from skysense.catalog.merge_io import describe_merge, run_merge
    from skysense.errors import InputError

    kw = keywords(args, "fits:fits_path scheduler tile_order")
    if args.in_memory and (args.tiled or args.scheduler is not None or args.tile_order is not None):
        # run_merge would tile anyway with a scheduler, and ignore the others silently.
        raise InputError("--in-memory cannot be combined with --tiled, --scheduler or --tile-order")
    # The library's default (None): tile by tile on Dask.
    tiled = False if args.in_memory else None
    s = run_merge(load_merge_config(args.config), args.out, progress=show_progress(), tiled=tiled,
                  **kw)  # fmt: skip
    return describe_merge(s)


def _check(args) -> str:
    from skysense.catalog.check_io import run_check

    page = run_check(args.masterlist, args.out, associations=args.associations)
    return f"validation report written to {page}"


def _suggest(args) -> None:
    from pathlib import Path

    from skysense.catalog.io import read_positions
    from skysense.catalog.plots import plot_radius
    from skysense.catalog.radius import suggest_radius

    (_, ra1, dec1), (_, ra2, dec2) = (
        read_positions(f, args.ra, args.dec) for f in (args.a, args.b)
    )
    s = suggest_radius(ra1, dec1, ra2, dec2, max_radius_arcsec=args.max_radius)
    print(s.describe())
    if args.plot:
        plot_radius(s, args.plot, title=f"{Path(args.a).name} vs {Path(args.b).name}")
        print(f"plot: {args.plot}")


def _crossmatch(args) -> str:
    from skysense.catalog.crossmatch import crossmatch_table
    from skysense.catalog.io import read_positions, write_catalogue

    (a, ra1, dec1), (b, ra2, dec2) = (
        read_positions(f, args.ra, args.dec) for f in (args.a, args.b)
    )
    out = crossmatch_table(a, b, ra1, dec1, ra2, dec2, args.radius, all_pairs=args.all_pairs)
    write_catalogue(out, args.out)
    kind = "pairs" if args.all_pairs else "one-to-one matches"
    return f"{len(out)} {kind} within {args.radius:g} arcsec written to {args.out}"


def register(subparsers) -> None:
    verbs = add_area(subparsers, "catalog", "HELP masterlists from pristine survey catalogues")
    verb(verbs, "prepare", _prepare, "prepare one pristine survey catalogue (HELP conventions, "
         "astrometry, flags, MOC)", _PREPARE)  # fmt: skip
    verb(verbs, "moc", _moc, "combine coverage MOCs (FITS MOC files, or survey configurations: "
         "MOC of their positions)", _MOC)  # fmt: skip
    verb(verbs, "merge", _merge, "merge prepared catalogues into a HELP masterlist", _MERGE)
    verb(verbs, "check", _check, "validation report of a masterlist (Markdown + PNG)", _CHECK)
    verb(verbs, "suggest-radius", _suggest, "suggest a match radius from the separation "
         "histogram", _PAIR, _SUGGEST, _RADEC)  # fmt: skip
    verb(verbs, "crossmatch", _crossmatch, "match two catalogues within a radius", _PAIR,
         _CROSSMATCH, _RADEC)  # fmt: skip
    add_radio_verbs(verbs)
