"""``skysense catalog merge|check|suggest-radius|crossmatch``: the merging verbs."""

from __future__ import annotations

from pathlib import Path

from skysense.cli._common import add_scheduler_option, add_verb

__all__ = ["add_verbs"]

_RA_NAMES = ("ra", "RA", "RAJ2000", "ALPHA_J2000", "ra_deg")
_DEC_NAMES = ("dec", "Dec", "DEC", "DEJ2000", "DELTA_J2000", "dec_deg")


def _progress() -> bool:
    from skysense._dask import show_progress

    return show_progress()


def _merge(args) -> int:
    from skysense.catalog.merge_config import load_merge_config
    from skysense.catalog.merge_run import run_merge

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
    from skysense.catalog.check import run_check

    page = run_check(args.masterlist, args.out, associations=args.associations)
    print(f"validation report written to {page}")
    return 0


def _positions(path: Path, ra_col: str | None, dec_col: str | None):
    import numpy as np
    import pandas as pd

    from skysense.catalog.io import read_catalogue
    from skysense.catalog.match import _check_positions
    from skysense.errors import InputError

    df = read_catalogue(path)
    if ra_col is None or dec_col is None:
        prepared = [
            c[:-3] for c in df.columns if c.endswith("_ra") and f"{c[:-3]}_dec" in df.columns
        ]
        if ra_col is None:
            ra_col = next((c for c in _RA_NAMES if c in df.columns), None) or (
                f"{prepared[0]}_ra" if prepared else None
            )
        if dec_col is None:
            dec_col = next((c for c in _DEC_NAMES if c in df.columns), None) or (
                f"{prepared[0]}_dec" if prepared else None
            )
    for col, what in ((ra_col, "RA"), (dec_col, "Dec")):
        if col is None or col not in df.columns:
            raise InputError(
                f"no {what} column found; name it with --ra/--dec", path=path, column=col
            )
    values = []
    for col in (ra_col, dec_col):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"non-numeric or missing value {df[col].iloc[row]!r}",
                path=path,
                column=col,
                row=row,
            )
        values.append(v)
    try:
        ra, dec = _check_positions(values[0], values[1], str(path))
    except InputError as exc:
        raise InputError(exc.message, path=path, column=dec_col, row=exc.row) from exc
    return df, ra, dec


def _suggest(args) -> int:
    from skysense.catalog.radius import plot_radius, suggest_radius

    _, ra1, dec1 = _positions(Path(args.a), args.ra, args.dec)
    _, ra2, dec2 = _positions(Path(args.b), args.ra, args.dec)
    s = suggest_radius(ra1, dec1, ra2, dec2, max_radius_arcsec=args.max_radius)
    print(f"suggested radius: {s.radius_arcsec:.3g} arcsec (about {s.n_true:.0f} true pairs)")
    if args.plot:
        plot_radius(s, args.plot, title=f"{Path(args.a).name} vs {Path(args.b).name}")
        print(f"plot: {args.plot}")
    return 0


def _crossmatch(args) -> int:
    import numpy as np
    import pandas as pd

    from skysense.catalog.io import write_catalogue
    from skysense.catalog.match import candidate_counts, greedy_one_to_one, pairs_within

    a, ra1, dec1 = _positions(Path(args.a), args.ra, args.dec)
    b, ra2, dec2 = _positions(Path(args.b), args.ra, args.dec)
    pairs = pairs_within(ra1, dec1, ra2, dec2, args.radius)
    n_a, n_b = candidate_counts(pairs.i1, pairs.i2, len(ra1), len(ra2))
    chosen = pairs if args.all_pairs else greedy_one_to_one(*pairs)
    left = a.iloc[chosen.i1].reset_index(drop=True)
    right = b.iloc[chosen.i2].reset_index(drop=True)
    clash = set(left.columns) & set(right.columns)
    left = left.rename(columns={c: f"{c}_a" for c in clash})
    right = right.rename(columns={c: f"{c}_b" for c in clash})
    out = pd.concat([left, right], axis=1)
    out["row_a"] = chosen.i1
    out["row_b"] = chosen.i2
    out["separation_arcsec"] = chosen.sep_arcsec
    out["n_candidates_a"] = n_a[chosen.i1].astype(np.int32)
    out["n_candidates_b"] = n_b[chosen.i2].astype(np.int32)
    out.attrs = {}
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
