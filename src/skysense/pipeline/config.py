"""The field configuration of ``skysense pipeline run FIELD.yaml``: schema and validation.

One YAML (or TOML) file names everything the HELP workflow needs for one field::

    field: {name: sim-cosmos, center: [150.1, 2.2], radius_deg: 0.2}   # or moc: field_moc.fits
    work_dir: pipeline                  # step outputs and records (relative to this file)
    reference: field/reference/gaia.parquet    # astrometry and star flags (optional)
    surveys:                            # merge priority: first is highest
      - config: field/catalogues/suprime.yaml
      - {config: field/catalogues/swire.yaml, radius_arcsec: 1.5}
    prepare: {moc_order: 10}
    merge: {radius_arcsec: 0.8, same_filter_rule: priority, bayes: false, tiled: true}
    xid:
      priors: {cut: "f_irac_i1 > 20"}   # boolean expression on masterlist columns
      maps: [{band: spire_250, file: field/maps/spire_250.fits}]
      sources_per_tile: 300, samples: 200, warmup: 200, chains: 2, seed: 1
    photoz:
      training: {file: specz.parquet, ra: ra, dec: dec, z: zspec, radius_arcsec: 1.0}
      bands: [m_suprime_i, ...]         # masterlist columns (errors: merr_... in the same order)
    publish: {db: vo.duckdb, schema: help}
    truth: field                        # a simulated field (manifest.json): checks the run

Every problem raises :class:`~skysense.errors.ConfigError` naming the file and the key path, with
a did-you-mean suggestion for misspelt keys (``field.yaml: xid.sampels: unknown key (did you mean
'samples'?)``). File names are relative to the configuration file. See ``docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from skysense._check import did_you_mean
from skysense._config_file import config_base, config_entries, read_config_file
from skysense.errors import ConfigError

__all__ = [
    "PipelineConfig",
    "SurveyEntry",
    "MapEntry",
    "load_pipeline_config",
    "parse_pipeline_config",
    "SCHEMA",
]

_NUM = (int, float)

#: Allowed keys: a nested dict is a section; a tuple (types, default) a value.
SCHEMA: dict[str, Any] = {
    "field": {
        "name": ((str,), None),
        "center": ((list,), None),
        "radius_deg": (_NUM, None),
        "moc": ((str,), None),
    },
    "work_dir": ((str,), "pipeline"),
    "reference": ((str,), None),
    "surveys": ((list,), None),
    "prepare": {"moc_order": ((int,), 10)},
    "merge": {
        "radius_arcsec": ((int, float, str), 0.8),
        "search_radius_arcsec": (_NUM, 5.0),
        "same_filter_rule": ((str,), "priority"),
        "bayes": ((bool,), False),
        "tiled": ((bool,), True),
        "partition_rows": ((int,), 500_000),
    },
    "xid": {
        "priors": {"cut": ((str,), None), "max_sources": ((int,), None)},
        "maps": ((list,), None),
        "sources_per_tile": ((int,), 600),
        "sampler": ((str,), "gibbs"),
        "samples": ((int,), 500),
        "warmup": ((int,), 500),
        "chains": ((int,), 2),
        "seed": ((int,), 0),
        "flux_prior": ((str,), "hierarchical"),
    },
    "photoz": {
        "model": ((str,), None),
        "training": {
            "file": ((str,), None),
            "ra": ((str,), "ra"),
            "dec": ((str,), "dec"),
            "z": ((str,), "zspec"),
            "radius_arcsec": (_NUM, 1.0),
        },
        "bands": ((list,), None),
        "errors": ((list,), None),
        "m": ((int,), 50),
        "covariance": ((str,), "VD"),
        "max_iter": ((int,), 200),
        "valid_fraction": (_NUM, 0.15),
        "seed": ((int,), 0),
        "partition_rows": ((int,), 100_000),
    },
    "radio": {"config": ((str,), None)},
    "sed": {  # energy-balance SED fits (skysense.sed): a grid configuration turns the step on
        "grid": ((str,), None),
        "z_columns": ((list,), ["zspec", "zphot"]),
        "eb_threshold": (_NUM, 10.0),
        "chunk_rows": ((int,), 5000),
        "table": ((str,), "sed"),
    },
    "publish": {
        "db": ((str,), None),
        "schema": ((str,), "help"),
        "masterlist_table": ((str,), "masterlist"),
        "xid_table": ((str,), "xid"),
        "maps": ((bool,), True),
    },
    "truth": ((str,), None),
    # Where the long steps run (not part of any step's key: results do not depend on it).
    "dask": {"scheduler": ((str,), None)},
}
_SURVEY_KEYS = ("config", "radius_arcsec", "position_error_arcsec")
_MAP_KEYS = ("band", "file", "noise")
_SAMPLERS = ("gibbs", "nuts")
_FLUX_PRIORS = ("uniform", "loguniform", "hierarchical")
_COVARIANCES = ("GL", "VL", "GD", "VD", "GC", "VC")


@dataclasses.dataclass(frozen=True)
class SurveyEntry:
    """One survey: its catalogue configuration (contract 2) and merge options."""

    config: Path
    radius_arcsec: float | str | None = None
    position_error_arcsec: float | None = None


@dataclasses.dataclass(frozen=True)
class MapEntry:
    """One far-infrared map fitted by XID+ (and published for cutouts)."""

    band: str
    file: Path
    noise: Path | None = None


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """A validated field configuration (see the module docstring).

    ``sections`` holds each section with defaults filled in (JSON-able, paths as given);
    the typed fields hold the resolved paths.
    """

    path: Path
    base_dir: Path
    name: str
    work_dir: Path
    surveys: tuple[SurveyEntry, ...]
    maps: tuple[MapEntry, ...]
    reference: Path | None
    training: Path | None
    model: Path | None
    db: str | None
    truth: Path | None
    field_moc: Path | None
    sections: dict

    def section(self, name: str) -> dict:
        """The named section with defaults (a copy)."""
        import copy

        return copy.deepcopy(self.sections[name])

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the configuration's folder when inside it (for records)."""
        p = Path(path)
        try:
            return p.resolve().relative_to(self.base_dir.resolve()).as_posix()
        except ValueError:
            return str(p)


class _Check:
    def __init__(self, path: Path | None):
        self.path = path

    def fail(self, key: str, message: str):
        raise ConfigError(message, path=self.path, key=key)

    def keys(self, raw: dict, allowed, prefix: str) -> None:
        for key in raw:
            if key not in allowed:
                self.fail(
                    f"{prefix}{key}", "unknown key" + did_you_mean(key, list(allowed), allowed=True)
                )

    def section(self, raw: Any, schema: dict, prefix: str) -> dict:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.fail(prefix.rstrip(".") or "(top)", "must be a mapping")
        self.keys(raw, schema, prefix)
        out = {}
        for key, spec in schema.items():
            if isinstance(spec, dict):
                out[key] = self.section(raw.get(key), spec, f"{prefix}{key}.")
                continue
            types, default = spec
            value = raw.get(key, default)
            if value is not None:
                ok = isinstance(value, types) and not (
                    isinstance(value, bool) and bool not in types
                )
                if not ok:
                    names = " or ".join(t.__name__ for t in types)
                    self.fail(f"{prefix}{key}", f"must be {names}, got {value!r}")
            out[key] = value
        return out

    def positive(self, value, key: str) -> None:
        if value is not None and not value > 0:
            self.fail(key, f"must be positive, got {value!r}")

    def choice(self, value, options, key: str) -> None:
        if value not in options:
            self.fail(key, f"must be one of {', '.join(options)}, got {value!r}" + (
                did_you_mean(value, options, allowed=True) if isinstance(value, str) else ""
            ))  # fmt: skip

    def file(self, base: Path, name: str, key: str, *, directory: bool = False) -> Path:
        path = (base / name).resolve()
        if not (path.is_dir() if directory else path.exists()):
            self.fail(key, f"no such {'folder' if directory else 'file'} {str(path)!r}")
        return path


def parse_pipeline_config(
    raw: Any, *, path: str | os.PathLike | None = None, base_dir: str | os.PathLike | None = None
) -> PipelineConfig:
    """Validate a field configuration already parsed into Python objects.

    Parameters
    ----------
    raw : dict
        The document, e.g. from ``skysense._config_file.read_config_file``.
    path, base_dir : path-like, optional
        Its file (for messages) and the folder its file names are relative to (default: the
        folder of ``path``): ``skysense._config_file.config_base``.

    Raises
    ------
    ConfigError
        Unknown key (with a did-you-mean suggestion), wrong type, missing file.
    """
    path, base = config_base(raw, path, base_dir)
    c = _Check(path)
    s = c.section(raw, SCHEMA, "")
    field = s["field"]
    if not field["name"]:
        c.fail("field.name", "missing: name the field (e.g. ELAIS-N1)")
    if field["center"] is not None:
        cen = field["center"]
        if len(cen) != 2 or not all(isinstance(v, _NUM) and not isinstance(v, bool) for v in cen):
            c.fail("field.center", f"must be [ra, dec] in degrees, got {cen!r}")
        if not (0 <= cen[0] < 360 and -90 <= cen[1] <= 90):
            c.fail("field.center", f"out of range: {cen!r}")
        if field["radius_deg"] is None:
            c.fail("field.radius_deg", "needed with field.center (degrees)")
    c.positive(field["radius_deg"], "field.radius_deg")
    field_moc = c.file(base, field["moc"], "field.moc") if field["moc"] else None

    surveys_raw = s["surveys"]
    if not surveys_raw:
        c.fail("surveys", "missing: list the survey configurations, highest priority first")
    surveys = []
    for key, item in config_entries(
        surveys_raw, path, "surveys", "config", "a configuration file name"
    ):
        c.keys(item, _SURVEY_KEYS, f"{key}.")
        if not isinstance(item.get("config"), str):
            c.fail(f"{key}.config", "missing: the survey's configuration file")
        radius = item.get("radius_arcsec")
        if radius is not None and radius != "auto":
            if isinstance(radius, bool) or not isinstance(radius, _NUM) or radius <= 0:
                c.fail(f"{key}.radius_arcsec", f"must be a positive number or auto, got {radius!r}")
        err = item.get("position_error_arcsec")
        if err is not None and (isinstance(err, bool) or not isinstance(err, _NUM) or err <= 0):
            c.fail(f"{key}.position_error_arcsec", f"must be a positive number, got {err!r}")
        surveys.append(SurveyEntry(c.file(base, item["config"], f"{key}.config"), radius, err))
    if len({e.config for e in surveys}) != len(surveys):
        c.fail("surveys", "a survey configuration is listed twice")

    merge = s["merge"]
    r = merge["radius_arcsec"]
    if isinstance(r, str) and r != "auto":
        c.fail("merge.radius_arcsec", f"must be a number or auto, got {r!r}")
    from skysense.catalog.merge import SAME_FILTER_RULES

    c.choice(merge["same_filter_rule"], SAME_FILTER_RULES, "merge.same_filter_rule")

    xid = s["xid"]
    maps = []
    for i, item in enumerate(xid["maps"] or []):
        key = f"xid.maps[{i}]"
        if not isinstance(item, dict):
            c.fail(key, "must be a mapping {band, file}")
        c.keys(item, _MAP_KEYS, f"{key}.")
        band = item.get("band")
        if not isinstance(band, str) or not band:
            c.fail(f"{key}.band", "missing: the HELP band name, e.g. spire_250")
        if not isinstance(item.get("file"), str):
            c.fail(f"{key}.file", "missing: the FITS map")
        noise = item.get("noise")
        maps.append(
            MapEntry(
                band,
                c.file(base, item["file"], f"{key}.file"),
                c.file(base, noise, f"{key}.noise") if noise else None,
            )
        )
    if len({m.band for m in maps}) != len(maps):
        c.fail("xid.maps", "each band may be listed once")
    if maps and not xid["priors"]["cut"]:
        c.fail("xid.priors.cut", "missing: the prior selection, e.g. 'f_irac_i1 > 20'")
    if xid["priors"]["cut"]:
        from skysense.catalog.cuts import parse_cut

        try:
            parse_cut(xid["priors"]["cut"])
        except (ValueError, SyntaxError) as exc:
            c.fail("xid.priors.cut", f"invalid expression: {exc}")
    c.choice(xid["sampler"], _SAMPLERS, "xid.sampler")
    c.choice(xid["flux_prior"], _FLUX_PRIORS, "xid.flux_prior")
    for k in ("sources_per_tile", "samples", "warmup", "chains"):
        c.positive(xid[k], f"xid.{k}")

    pz = s["photoz"]
    training = model = None
    if pz["model"]:
        model = c.file(base, pz["model"], "photoz.model", directory=True)
    elif pz["training"]["file"]:
        training = c.file(base, pz["training"]["file"], "photoz.training.file")
    if pz["bands"] is not None or pz["training"]["file"] or pz["model"]:
        if model is None:
            if not pz["bands"] or not all(isinstance(b, str) for b in pz["bands"]):
                c.fail("photoz.bands", "missing: the masterlist magnitude columns to train on")
            if pz["errors"] is not None and len(pz["errors"]) != len(pz["bands"]):
                c.fail("photoz.errors", f"needs {len(pz['bands'])} columns, one per band")
            if training is None:
                c.fail("photoz.training.file", "missing: a training set, or photoz.model")
        c.choice(pz["covariance"], _COVARIANCES, "photoz.covariance")
        c.positive(pz["m"], "photoz.m")
        if not 0 <= pz["valid_fraction"] < 0.9:
            c.fail("photoz.valid_fraction", f"must be in [0, 0.9), got {pz['valid_fraction']!r}")

    pub = s["publish"]
    db = None
    if pub["db"]:
        from skysense.vo.settings import is_postgres_url

        db = pub["db"] if is_postgres_url(pub["db"]) else str((base / pub["db"]).resolve())
        for k in ("schema", "masterlist_table", "xid_table"):
            v = pub[k]
            if not v or not v.replace("_", "a").isalnum() or v.lower() != v or v[0].isdigit():
                c.fail(f"publish.{k}", f"must match [a-z][a-z0-9_]*, got {v!r}")
    if s["radio"]["config"]:  # radio IDs by likelihood ratio (skysense.catalog.radio)
        c.file(base, s["radio"]["config"], "radio.config")
    if s["sed"]["grid"]:
        c.file(base, s["sed"]["grid"], "sed.grid")
    truth = c.file(base, s["truth"], "truth", directory=True) if s["truth"] else None
    if truth is not None and not (truth / "manifest.json").is_file():
        c.fail("truth", f"{truth} is not a simulated field (no manifest.json)")
    reference = c.file(base, s["reference"], "reference") if s["reference"] else None
    return PipelineConfig(
        path=path if path is not None else base / "field.yaml",
        base_dir=base,
        name=field["name"],
        work_dir=(base / s["work_dir"]).resolve(),
        surveys=tuple(surveys),
        maps=tuple(maps),
        reference=reference,
        training=training,
        model=model,
        db=db,
        truth=truth,
        field_moc=field_moc,
        sections=s,
    )


def load_pipeline_config(path: str | os.PathLike) -> PipelineConfig:
    """Read and validate a field configuration (``.yaml``/``.yml`` or ``.toml``).

    Raises
    ------
    ConfigError
        Unreadable file, syntax error or invalid content (names the file and the key).
    """
    path = Path(path)
    raw = read_config_file(path)
    return parse_pipeline_config(raw, path=path)
