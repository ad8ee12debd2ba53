"""``skysense catalog prepare`` and ``skysense catalog moc``: the per-survey verbs."""

from __future__ import annotations

import json

from skysense.cli._common import add_verb

__all__ = ["add_verbs"]


def _prepare(args) -> int:
    from tqdm.auto import tqdm

    from skysense._dask import show_progress
    from skysense.catalog.preparation import STAGES
    from skysense.catalog.prepare_io import prepare_survey, write_prepared

    with tqdm(
        total=len(STAGES) + 1, desc="prepare", unit="step", disable=not show_progress()
    ) as bar:

        def advance(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        result = prepare_survey(
            args.config,
            reference=args.reference,
            moc_order=args.moc_order,
            plots_dir=args.plots,
            progress=advance,
        )
    paths = write_prepared(result, args.out, moc_out=args.moc_out, provenance_out=args.provenance)
    prov = result.provenance
    counts = prov["counts"]
    line = (
        f"{prov['survey']}: {counts['read']} rows read, {counts['after_cuts']} after cuts, "
        f"{counts['duplicates_removed']} duplicates removed, {counts['final']} written to "
        f"{paths['table']}"
    )
    astro = prov.get("astrometry")
    if astro:
        line += (
            f"; astrometry offset ({astro['dra_cosdec_arcsec']:+.3f}, "
            f"{astro['ddec_arcsec']:+.3f}) arcsec from {astro['n_matches']} matches"
        )
    print(line)
    for band, rec in prov["aperture_corrections"].items():
        if rec.get("applied"):
            print(f"  aperture correction {band}: {rec['value_mag']:+.4f} mag")
    print(
        f"  MOC {paths['moc']} ({prov['moc']['area_deg2']:.4f} deg2); "
        f"provenance {paths['provenance']}"
    )
    return 0


def _moc(args) -> int:
    from skysense.catalog.io import write_moc
    from skysense.catalog.moc import combine_mocs, moc_area_deg2
    from skysense.catalog.prepare_io import coverage_of

    mocs = [coverage_of(name, args.order) for name in args.inputs]
    combined = combine_mocs(mocs, args.op)
    if args.out:
        write_moc(combined, args.out)
    areas = [moc_area_deg2(m) for m in mocs]
    area = moc_area_deg2(combined)
    if args.json:
        summary = {
            "inputs": [{"input": str(n), "area_deg2": a} for n, a in zip(args.inputs, areas)],
            "op": args.op,
            "area_deg2": area,
        }
        if args.out:
            summary["out"] = str(args.out)
        print(json.dumps(summary, indent=2))
        return 0
    where = f" written to {args.out}" if args.out else ""
    print(f"{args.op} of {len(mocs)} coverages: {area:.4f} deg2{where}")
    for name, a in zip(args.inputs, areas):
        print(f"  {name}: {a:.4f} deg2")
    return 0


def add_verbs(verbs) -> None:
    """Register ``prepare`` and ``moc`` under ``skysense catalog``."""
    p = add_verb(
        verbs,
        "prepare",
        _prepare,
        "prepare one pristine survey catalogue (HELP conventions, astrometry, flags, MOC)",
    )
    p.add_argument("config", metavar="CONFIG", help="survey configuration (YAML or TOML)")
    p.add_argument(
        "--out", required=True, metavar="FILE", help="prepared catalogue (.parquet, .fits, ...)"
    )
    p.add_argument("--reference", metavar="GAIA", help="Gaia-like reference catalogue")
    p.add_argument("--moc-out", metavar="FILE", help="coverage MOC (default: OUT stem + _moc.fits)")
    p.add_argument(
        "--provenance", metavar="FILE", help="provenance JSON (default: OUT.provenance.json)"
    )
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="folder for the astrometry and aperture-correction plots (PNG)",
    )
    p.add_argument("--moc-order", type=int, default=10, metavar="N", help="MOC order (default 10)")

    m = add_verb(
        verbs,
        "moc",
        _moc,
        "combine coverage MOCs (FITS MOC files, or survey configurations: MOC of their positions)",
    )
    m.add_argument("inputs", nargs="+", metavar="INPUT", help="MOC FITS files or survey configs")
    m.add_argument("--op", choices=("union", "intersection"), default="union")
    m.add_argument("--out", metavar="FILE", help="write the combined MOC (FITS)")
    m.add_argument(
        "--order", type=int, default=10, metavar="N", help="order for configs (default 10)"
    )
    m.add_argument("--json", action="store_true", help="print the summary as JSON")
