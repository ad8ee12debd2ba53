"""``skysense catalog merge|check|suggest-radius|crossmatch``: the merging verbs."""

from __future__ import annotations

from pathlib import Path

from skysense.cli._common import add_scheduler_option, add_verb

__all__ = ["add_verbs"]


def _progress() -> bool:
    from skysense._dask import show_progress

    return show_progress()


def _merge(args) -> int:
    from skysense.catalog.merge_config import load_merge_config
    from skysense.catalog.merge_io import run_merge

    config = load_merge_config(args.config)
    summary = run_merge(
        config, args.out, fits_path=args.fits, scheduler=args.scheduler, tiled=args.tiled,
        tile_order=args.tile_order, progress=_progress(),
    )  # fmt: skip
    radii = ", ".join(f"{r:.3g}" for r in summary["radii_arcsec"])
    print(
        f"{summary['n_objects']} objects written to {summary['masterlist']} (radii {radii} arcsec)"
    )
    if summary["fits"]:
        print(f"FITS copy: {summary['fits']}")
    return 0


def _check(args) -> int:
    from skysense.catalog.check_io import run_check

    page = run_check(args.masterlist, args.out, associations=args.associations)
    print(f"validation report written to {page}")
    return 0


def _suggest(args) -> int:
    from skysense.catalog.io import read_positions
    from skysense.catalog.plots import plot_radius
    from skysense.catalog.radius import suggest_radius

    _, ra1, dec1 = read_positions(args.a, args.ra, args.dec)
    _, ra2, dec2 = read_positions(args.b, args.ra, args.dec)
    s = suggest_radius(ra1, dec1, ra2, dec2, max_radius_arcsec=args.max_radius)
    print(f"suggested radius: {s.radius_arcsec:.3g} arcsec (about {s.n_true:.0f} true pairs)")
    if args.plot:
        plot_radius(s, args.plot, title=f"{Path(args.a).name} vs {Path(args.b).name}")
        print(f"plot: {args.plot}")
    return 0


def _crossmatch(args) -> int:
    from skysense.catalog.crossmatch import crossmatch_table
    from skysense.catalog.io import read_positions, write_catalogue

    a, ra1, dec1 = read_positions(args.a, args.ra, args.dec)
    b, ra2, dec2 = read_positions(args.b, args.ra, args.dec)
    out = crossmatch_table(a, b, ra1, dec1, ra2, dec2, args.radius, all_pairs=args.all_pairs)
    write_catalogue(out, args.out)
    kind = "pairs" if args.all_pairs else "one-to-one matches"
    print(f"{len(out)} {kind} within {args.radius:g} arcsec written to {args.out}")
    return 0


def add_verbs(verbs) -> None:
    """Add the merging verbs to ``skysense catalog``."""
    p = add_verb(verbs, "merge", _merge, "merge prepared catalogues into a HELP masterlist")
    p.add_argument("config", help="merge configuration (YAML or TOML)")
    p.add_argument("--out", required=True, help="output directory (replaced atomically)")
    p.add_argument("--fits", default=None, help="also write the masterlist as this FITS file")
    p.add_argument(
        "--tiled", action="store_true", help="merge tile by tile on Dask (for large inputs)"
    )
    p.add_argument(
        "--tile-order",
        type=int,
        default=None,
        help="HEALPix order of the tiles (default: from the data)",
    )
    add_scheduler_option(p)

    p = add_verb(verbs, "check", _check, "validation report of a masterlist (Markdown + PNG)")
    p.add_argument("masterlist", help="masterlist: HATS directory, Parquet or FITS file")
    p.add_argument("--out", required=True, help="report directory")
    p.add_argument(
        "--associations", default=None, help="association table (default: beside the masterlist)"
    )

    p = add_verb(
        verbs, "suggest-radius", _suggest, "suggest a match radius from the separation histogram"
    )
    p.add_argument("a", help="first catalogue")
    p.add_argument("b", help="second catalogue")
    p.add_argument(
        "--max-radius", type=float, default=5.0, help="histogram range, arcsec (default 5)"
    )
    p.add_argument("--plot", default=None, help="write the histogram to this PNG")
    p.add_argument("--ra", default=None, help="RA column (deg) of both files (default: guessed)")
    p.add_argument("--dec", default=None, help="Dec column (deg) of both files (default: guessed)")

    p = add_verb(verbs, "crossmatch", _crossmatch, "match two catalogues within a radius")
    p.add_argument("a", help="first catalogue")
    p.add_argument("b", help="second catalogue")
    p.add_argument("--radius", type=float, required=True, help="match radius, arcsec")
    p.add_argument("--out", required=True, help="output table (format from the suffix)")
    p.add_argument(
        "--all-pairs", action="store_true", help="every pair within the radius, not one-to-one"
    )
    p.add_argument("--ra", default=None, help="RA column (deg) of both files (default: guessed)")
    p.add_argument("--dec", default=None, help="Dec column (deg) of both files (default: guessed)")
