"""``skysense sim ...``: write and inspect simulated HELP-like fields."""

from __future__ import annotations

import argparse
import json
import math

from skysense.cli._common import add_area, add_verb
from skysense.errors import InputError

__all__ = ["register"]


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _field(args) -> int:
    from skysense.sim import DEFAULT_MAPS, DEFAULT_SURVEYS, select_surveys, write_field

    surveys = DEFAULT_SURVEYS
    if args.surveys is not None:
        try:
            surveys = select_surveys(s for s in args.surveys.split(",") if s)
        except InputError as exc:
            raise InputError(f"--surveys: {exc}") from None
    maps = () if args.no_maps else DEFAULT_MAPS
    manifest = write_field(
        args.out,
        seed=args.seed,
        area_deg2=args.area,
        center=tuple(args.center),
        surveys=surveys,
        maps=maps,
        mag_limit=args.mag_limit,
        star_density_deg2=args.star_density,
        noise=not args.noiseless,
    )
    _print_summary(manifest, f"simulated field written to {args.out}")
    return 0


def _print_summary(manifest: dict, title: str) -> None:
    field = manifest.get("field", {})
    print(
        f"{title}: seed {manifest['seed']}, "
        f"{manifest['area_deg2']:g} deg^2 at ({manifest['center_ra']:.4f}, "
        f"{manifest['center_dec']:.4f})"
    )
    if field:
        print(
            f"  truth: {field['n_galaxies']} galaxies, {field['n_stars']} stars; "
            f"reference: {field['n_reference']} Gaia-like stars"
        )
    for name, s in manifest["surveys"].items():
        print(
            f"  catalogue {name:<10} {s['n_rows']:>8} rows  {s['file']}  bands {', '.join(s['bands'])}"
        )
    for band, m in manifest["maps"].items():
        shape = "x".join(str(v) for v in m.get("shape", []))
        conf = m.get("confusion_mjy_beam")
        extra = f", confusion {conf:.3g} mJy/beam" if conf is not None else ""
        print(f'  map {band:<10} {shape:>10} px of {m["pixel_arcsec"]}" {m["file"]}{extra}')
    if "timings_s" in manifest:
        print(f"  done in {manifest['timings_s']['total']:.1f} s")


def _info(args) -> int:
    from skysense.sim import read_manifest

    manifest = read_manifest(args.field)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        _print_summary(manifest, f"simulated field {args.field}")
    return 0


def register(subparsers) -> None:
    verbs = add_area(subparsers, "sim", "simulated HELP-like fields with known truth")
    p = add_verb(
        verbs,
        "field",
        _field,
        "simulate a field: truth tables, survey catalogues + configs, Gaia-like reference, "
        "far-infrared maps and manifest.json",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output directory (replaced atomically)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--area",
        type=_finite,
        default=1.0,
        metavar="DEG2",
        help="field area in deg^2 (default 1.0)",
    )
    p.add_argument(
        "--center",
        type=_finite,
        nargs=2,
        default=(150.1, 2.2),
        metavar=("RA", "DEC"),
        help="field centre in degrees (default 150.1 2.2)",
    )
    p.add_argument(
        "--mag-limit",
        type=_finite,
        default=26.0,
        metavar="MAG",
        help="faintest simulated galaxy, suprime_i AB (default 26)",
    )
    p.add_argument(
        "--star-density",
        type=_finite,
        default=3000.0,
        metavar="PER_DEG2",
        help="stars with 14 <= i < 24 per deg^2 (default 3000, high latitude)",
    )
    p.add_argument(
        "--surveys",
        default=None,
        metavar="NAMES",
        help="comma-separated subset of cfhtls,suprime,ukidss,swire (default all)",
    )
    p.add_argument("--no-maps", action="store_true", help="skip the far-infrared maps")
    p.add_argument("--noiseless", action="store_true", help="maps without instrumental noise")
    q = add_verb(verbs, "info", _info, "summarise a simulated field from its manifest")
    q.add_argument("field", metavar="DIR", help="directory written by 'skysense sim field'")
    q.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
