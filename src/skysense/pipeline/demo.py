"""The demo service: a simulated HELP field run through the pipeline and published on the VO.

It lives with the pipeline (it runs the pipeline on the simulator's field); ``skysense vo demo``
builds it, then serves it with :func:`skysense.vo.app.create_app`.

:func:`build_demo` (first start, or ``rebuild=True``) simulates a field with
:func:`skysense.sim.write_field`, writes its field configuration
(:func:`skysense.pipeline.write_sim_config`, ``<workdir>/field.yaml``) and runs the HELP
workflow on it (:func:`skysense.pipeline.run`: prepare, merge, XID+ priors and fit, GPz photo-z,
publish), which publishes into ``<workdir>/demo.duckdb``:

- ``help.masterlist``: the masterlist with its photo-z (``zphot``, ``zphot_err``);
- ``help.xid``: the XID+ catalogue of the far-infrared maps joined with the photo-z (its rows
  and the masterlist's link to each other through DataLink, by ``help_id``);
- the far-infrared maps, registered for SIA/cutouts/DataLink.

The web pages' worked examples and cone-search form start from ``help.masterlist`` and
``help.xid`` (:func:`skysense.vo.schema.featured_tables`), not the survey tables below.

It then adds what only a simulation has, for comparison:

- ``help.truth``: the simulated objects (true positions, redshifts, fluxes);
- ``help.<survey>``: each survey's pristine catalogue, RA/Dec from its configuration;
- ``help.catalogue_rows``: which true object every catalogue row belongs to;
- ``help.gaia``: the Gaia-like astrometric reference;
- ``help.map_sources``: the sources injected into the far-infrared maps.

The pipeline's cache (``<workdir>/pipeline``) makes an interrupted build resume where it
stopped; a completion record in the database marks a finished build.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from skysense.errors import InputError
from skysense.tables import ColumnMeta
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_file
from skysense.vo.settings import Settings

__all__ = ["build_demo", "demo_settings", "demo_db_path", "is_demo_built", "DEMO_AREA_DEG2"]

log = logging.getLogger(__name__)

#: Area of the simulated demo field (deg^2): about 4500 masterlist objects, 1000 XID+ priors;
#: the build takes about three minutes on two cores (200 s measured in 2026-12).
DEMO_AREA_DEG2 = 0.05
_DONE = ("demo", "built")

_DESCRIPTIONS = {
    "truth": "Simulated truth: every object of the demo field with its true position, "
    "redshift and total fluxes in all bands (uJy)",
    "catalogue_rows": "Simulated truth: the true object behind every row of every survey "
    "catalogue (duplicates flagged)",
    "gaia": "Gaia-like astrometric reference catalogue of the demo field (epoch 2016.0)",
    "map_sources": "Sources injected into the simulated far-infrared maps (fluxes in mJy)",
}


def demo_db_path(workdir: str | Path) -> Path:
    """The demo database file inside ``workdir``."""
    return Path(workdir) / "demo.duckdb"


def demo_settings(workdir: str | Path) -> Settings:
    """Settings serving the demo database."""
    return Settings(
        db=str(demo_db_path(workdir)),
        title="skysense demo: a simulated HELP field",
        description=(
            "A simulated HELP field run through the skysense pipeline: the masterlist with "
            "GPz photo-z, the XID+ catalogue of the far-infrared maps, the maps for cutouts, "
            "and the simulation's truth, survey catalogues and Gaia-like reference, served "
            "through TAP/ADQL, cone search and SIA."
        ),
    )


_BANDS = (
    "megacam_u",
    "megacam_g",
    "megacam_r",
    "suprime_i",
    "ukidss_j",
    "ukidss_k",
    "irac_i1",
    "mips_24",
    "pacs_green",
    "pacs_red",
    "spire_250",
    "spire_350",
    "spire_500",
)


def _col(unit="", ucd="", description=""):
    return ColumnMeta(unit, ucd, description).as_dict()


def _position_meta(ra="ra", dec="dec", epoch=""):
    when = f" at epoch {epoch}" if epoch else ""
    return {
        ra: _col("deg", "pos.eq.ra;meta.main", f"Right ascension (ICRS){when}"),
        dec: _col("deg", "pos.eq.dec;meta.main", f"Declination (ICRS){when}"),
    }


def _truth_meta(flux_unit: str) -> dict:
    cols = {
        "object_id": _col("", "meta.id;meta.main", "Identifier of the simulated object"),
        "kind": _col("", "src.class", "galaxy or star"),
        "z": _col("", "src.redshift", "True redshift (NaN for stars)"),
        "pmra": _col("mas/yr", "pos.pm;pos.eq.ra", "Proper motion in RA (times cos Dec)"),
        "pmdec": _col("mas/yr", "pos.pm;pos.eq.dec", "Proper motion in Dec"),
        **_position_meta(),
    }
    for band in _BANDS:
        cols[f"f_{band}"] = _col(flux_unit, "phot.flux.density", f"True total flux in {band}")
    return {"columns": cols}


_GAIA_META = {
    "columns": {
        "source_id": _col("", "meta.id;meta.main", "Reference source identifier"),
        **_position_meta(epoch="2016.0"),
        "ra_error": _col("mas", "stat.error;pos.eq.ra", "Uncertainty of ra"),
        "dec_error": _col("mas", "stat.error;pos.eq.dec", "Uncertainty of dec"),
        "pmra": _col("mas/yr", "pos.pm;pos.eq.ra", "Proper motion in RA (times cos Dec)"),
        "pmdec": _col("mas/yr", "pos.pm;pos.eq.dec", "Proper motion in Dec"),
        "pmra_error": _col("mas/yr", "stat.error;pos.pm;pos.eq.ra", "Uncertainty of pmra"),
        "pmdec_error": _col("mas/yr", "stat.error;pos.pm;pos.eq.dec", "Uncertainty of pmdec"),
        "phot_g_mean_mag": _col("mag", "phot.mag;em.opt", "G-band mean magnitude"),
        "ref_epoch": _col("yr", "time.epoch", "Reference epoch of the positions"),
    }
}

_ROWS_META = {
    "columns": {
        "survey": _col("", "meta.id;instr.setup", "Survey of the catalogue row"),
        "source_id": _col("", "meta.id", "The survey's own identifier of the row"),
        "object_id": _col("", "meta.id.cross", "The true object behind the row"),
        "is_duplicate": _col("", "meta.code", "The row is a spurious duplicate detection"),
    }
}


def _survey_meta(cfg: dict) -> dict:
    """Column metadata from a survey configuration (contract 2)."""
    epoch = cfg.get("epoch", "")
    columns = cfg.get("columns") or {}
    cols = {}
    if columns.get("id"):
        cols[columns["id"]] = _col("", "meta.id;meta.main", "Source identifier")
    if columns.get("ra") and columns.get("dec"):
        cols.update(_position_meta(columns["ra"], columns["dec"], epoch))
    if columns.get("stellarity"):
        cols[columns["stellarity"]] = _col(
            "", "src.class.starGalaxy", "Stellarity (0 galaxy .. 1 star)"
        )
    if columns.get("position_error"):
        cols[columns["position_error"]] = _col("arcsec", "stat.error;pos", "Position error")
    for band in cfg.get("bands") or []:
        name = band.get("name", "")
        system = band.get("system", "AB")
        flux_unit = band.get("flux_unit", "")
        for key, what in (
            ("mag", f"Total magnitude ({system}) in {name}"),
            ("mag_err", f"Error of the total magnitude in {name}"),
            ("mag_ap", f"Aperture magnitude ({system}) in {name}"),
            ("mag_ap_err", f"Error of the aperture magnitude in {name}"),
            ("flux", f"Total flux in {name}"),
            ("flux_err", f"Error of the total flux in {name}"),
            ("flux_ap", f"Aperture flux in {name}"),
            ("flux_ap_err", f"Error of the aperture flux in {name}"),
        ):
            if band.get(key):
                is_mag = key.startswith("mag")
                ucd = "phot.mag" if is_mag else "phot.flux.density"
                if key.endswith("_err"):
                    ucd = "stat.error;" + ucd
                cols[band[key]] = _col("mag" if is_mag else flux_unit, ucd, what)
    return {"columns": cols}


def is_demo_built(workdir: str | Path) -> bool:
    """True when ``workdir`` holds a completely built demo database."""
    return _is_built(demo_db_path(workdir))


def _is_built(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        backend = open_backend(db, create=False)
    except Exception:  # an unreadable file is rebuilt
        return False
    try:
        return backend.get_record(*_DONE) is not None
    except Exception:
        return False
    finally:
        backend.close()


def build_demo(
    workdir: str | Path,
    *,
    rebuild: bool = False,
    seed: int = 1,
    area_deg2: float = DEMO_AREA_DEG2,
    scheduler: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> tuple[Path, bool]:
    """Build the demo database unless a complete one exists.

    Parameters
    ----------
    workdir : str or Path
        Folder of the demo: ``field/`` (the simulation), ``field.yaml`` (its configuration),
        ``pipeline/`` (the pipeline's outputs and records) and ``demo.duckdb``.
    rebuild : bool
        Start over (new simulation, empty pipeline cache) even when a complete database exists.
    seed : int
        Seed of the simulated field.
    area_deg2 : float
        Area of the field (deg^2). Fields of 0.02 deg^2 or less (tests) use lighter settings:
        100 XID+ draws per chain instead of 200, GPz with 20 basis functions instead of 50.
    scheduler : str, optional
        Dask scheduler address for the pipeline's long steps (default: local).
    echo : callable, optional
        Receives one line per pipeline step.

    Returns
    -------
    (db_path, built) : (Path, bool)
        ``built`` is False when an existing database was kept.
    """
    from skysense.pipeline.api import run
    from skysense.pipeline.simfield import write_sim_config

    workdir = Path(workdir)
    db = demo_db_path(workdir)
    if not rebuild and _is_built(db):
        return db, False
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in (db, db.with_name(db.name + ".wal")):
        if stale.exists():
            stale.unlink()
    shutil.rmtree(Settings(db=str(db)).resolved_workdir, ignore_errors=True)
    field = workdir / "field"
    config = workdir / "field.yaml"
    if rebuild or not (field / "manifest.json").is_file():
        from skysense.sim import write_field

        shutil.rmtree(field, ignore_errors=True)
        shutil.rmtree(workdir / "pipeline", ignore_errors=True)
        config.unlink(missing_ok=True)
        write_field(field, seed=seed, area_deg2=area_deg2)
    if not config.is_file():
        # Test-sized fields (CI) sample XID+ and train GPz more lightly: same steps, less time.
        light = area_deg2 <= 0.02
        write_sim_config(
            field,
            config,
            db=db.name,
            work_dir="pipeline",
            samples=100 if light else 200,
            gpz_m=20 if light else 50,
            gpz_max_iter=60 if light else 200,
        )
    report = run(config, scheduler=scheduler, echo=echo)
    _publish_field(field, db, summary=report.summary)
    return db, True


def _publish_field(field: Path, db: Path, summary: dict | None = None) -> None:
    manifest_path = field / "manifest.json"
    if not manifest_path.is_file():
        raise InputError("the simulated field has no manifest.json", path=field)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    backend = open_backend(db)
    try:
        truth = manifest.get("truth") or {}
        # table, file (as the manifest names it), has positions, metadata; only the truth
        # objects are in every field
        for table, rel, has_positions, meta in (
            ("truth", truth.get("objects", "truth/objects.parquet"), True, _truth_meta("uJy")),
            (
                "catalogue_rows",
                truth.get("catalogue_rows", "truth/catalogue_rows.parquet"),
                False,
                _ROWS_META,
            ),
            ("gaia", manifest.get("reference", "reference/gaia.parquet"), True, _GAIA_META),
            (
                "map_sources",
                truth.get("map_sources", "truth/map_sources.parquet"),
                True,
                _truth_meta("mJy"),
            ),
        ):
            path = field / rel
            if table != "truth" and not path.is_file():
                continue
            positions = {"ra": "ra", "dec": "dec"} if has_positions else {}
            publish_file(
                backend,
                path,
                f"help.{table}",
                description=_DESCRIPTIONS[table],
                meta=meta,
                **positions,
            )
        for survey, entry in sorted((manifest.get("surveys") or {}).items()):
            _publish_survey(backend, field, survey, entry)
        truth_scores = (summary or {}).get("truth") or {}
        backend.put_record(
            *_DONE, {"field": str(field), "seed": manifest.get("seed"), "truth": truth_scores}
        )
    finally:
        backend.close()


def _publish_survey(backend, field: Path, survey: str, entry: dict) -> None:
    import yaml

    path = field / entry["file"]
    if not path.exists():
        path = field / "catalogues" / Path(entry["file"]).name
    ra = dec = None
    cfg: dict = {}
    config = entry.get("config")
    if config:
        cfg_path = field / config
        if not cfg_path.exists():
            cfg_path = field / "catalogues" / Path(config).name
        if cfg_path.is_file():
            cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
            cols = cfg.get("columns") or {}
            ra, dec = cols.get("ra"), cols.get("dec")
    bands = ", ".join(entry.get("bands") or [])
    description = f"Simulated {survey} survey catalogue as delivered (bands: {bands})"
    publish_file(
        backend,
        path,
        f"help.{survey}",
        description=description,
        ra=ra,
        dec=dec,
        fmt=entry.get("format"),
        meta=_survey_meta(cfg),
    )
