"""``skysense sim ...``: write and inspect simulated HELP-like fields."""

from __future__ import annotations

from skysense.cli._common import add_area, keywords, verb
from skysense.errors import InputError

__all__ = ["register"]

_FIELD = """
--out DIR required | output directory (replaced atomically)
--seed int=0 | random seed (default 0)
--area DEG2 finite=1.0 | field area in deg^2 (default 1.0)
--center RA DEC finite=150.1,2.2 | field centre in degrees (default 150.1 2.2)
--mag-limit MAG finite=26.0 | faintest simulated galaxy, suprime_i AB (default 26)
--star-density PER_DEG2 finite=3000.0 | stars with 14 <= i < 24 per deg^2 (default 3000, high
    latitude)
--surveys NAMES | comma-separated subset of cfhtls,suprime,ukidss,swire (default all)
--no-maps flag | skip the far-infrared maps
--noiseless flag | maps without instrumental noise
"""
_CATALOGS = """
--out DIR required | output directory (replaced atomically): catalogues/<survey>/ (HATS),
    truth/, configs/, manifest.json
--objects N int required | true objects in the field (the area follows from the density)
--seed int=0 | random seed (default 0); the output does not depend on partitions or workers
--center RA DEC finite=150.1,2.2 | field centre in degrees (default 150.1 2.2)
--mag-limit MAG finite=24.5 | faintest galaxy, suprime_i AB (default 24.5: ~1.4e5 per deg^2)
--surveys NAMES | comma-separated subset of cfhtls,suprime,ukidss,swire (default all)
--partition-rows N int=1000000 | objects per output partition at most (default 1000000)
--scheduler ADDRESS | Dask scheduler address (default: local threads)
"""
_INFO = """
field DIR | directory written by 'skysense sim field'
--json flag | print the whole manifest as JSON
"""


def _surveys(args) -> tuple:
    from skysense import sim

    if args.surveys is None:
        return sim.DEFAULT_SURVEYS
    try:
        return sim.select_surveys(s for s in args.surveys.split(",") if s)
    except InputError as exc:
        raise InputError(f"--surveys: {exc}") from None


def _field(args) -> str:
    from skysense import sim

    surveys = _surveys(args)
    kw = keywords(args, "seed area:area_deg2 mag_limit star_density:star_density_deg2")
    kw.update(maps=() if args.no_maps else sim.DEFAULT_MAPS, noise=not args.noiseless)
    manifest = sim.write_field(args.out, center=tuple(args.center), surveys=surveys, **kw)
    return sim.describe_manifest(manifest, f"simulated field written to {args.out}")


def _catalogs(args) -> str:
    from skysense.sim.catalogs import CatalogSim, describe_catalogs, write_catalogs

    surveys = _surveys(args)
    spec = CatalogSim(n_objects=args.objects, seed=args.seed, center=tuple(args.center),
                      mag_limit=args.mag_limit, surveys=surveys)  # fmt: skip
    manifest = write_catalogs(spec, args.out, partition_rows=args.partition_rows,
                              scheduler=args.scheduler, progress=True)  # fmt: skip
    return describe_catalogs(manifest, args.out)


def _info(args) -> str:
    import json

    from skysense.sim import describe_manifest, read_manifest

    manifest = read_manifest(args.field)
    if args.json:
        return json.dumps(manifest, indent=2)
    return describe_manifest(manifest, f"simulated field {args.field}")


def register(subparsers) -> None:
    verbs = add_area(subparsers, "sim", "simulated HELP-like fields with known truth")
    verb(verbs, "field", _field, "simulate a field: truth tables, survey catalogues + configs, "
         "Gaia-like reference, far-infrared maps and manifest.json", _FIELD)  # fmt: skip
    verb(verbs, "catalogs", _catalogs, "simulate survey catalogues only, at scale: HELP-like "
         "densities, offsets and flaws with truth, streamed to HATS partition by partition on "
         "Dask", _CATALOGS)  # fmt: skip
    verb(verbs, "info", _info, "summarise a simulated field from its manifest", _INFO)
