"""The merge configuration (YAML or TOML): which prepared catalogues, in which order, how.

Schema::

    catalogues:                      # required, highest priority first
      - file: prepared/cfhtls.parquet   # required; relative to this file
        survey: cfhtls               # optional; default: from the file's <survey>_id column
        radius_arcsec: 0.8           # optional: radius of this catalogue's step
        position_error_arcsec: 0.1   # optional: 1-sigma error for the Bayesian column
        moc: prepared/cfhtls_moc.fits   # optional coverage; default: from the positions
      - file: prepared/ukidss.fits
    radius_arcsec: 1.0               # default radius of every step; a number or "auto"
    search_radius_arcsec: 5.0        # histogram range for the radius suggestion (default 5)
    same_filter_rule: priority       # priority | lowest_error (default priority)
    bayes: false                     # add Budavari & Szalay match probabilities (default false)
    field: ELAIS-N1                  # optional name, recorded in the provenance
    output:                          # optional
      name: masterlist               # HATS catalogue name (default "masterlist")
      fits: masterlist.fits          # also write FITS (relative to --out)
      partition_rows: 500000         # rows per HATS partition

``radius_arcsec: auto`` uses the radius suggested from the separation histogram of each step.
Every problem raises :class:`~skysense.errors.ConfigError` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from skysense._config_file import config_base, config_entries, read_config_file
from skysense.catalog.merge import SAME_FILTER_RULES
from skysense.errors import ConfigError

__all__ = [
    "CatalogueEntry",
    "OutputOptions",
    "MergeConfig",
    "load_merge_config",
    "parse_merge_config",
]

_TOP = ("catalogues", "radius_arcsec", "search_radius_arcsec", "same_filter_rule", "bayes",
        "field", "output")  # fmt: skip
_ENTRY = ("file", "survey", "radius_arcsec", "position_error_arcsec", "moc")
_OUTPUT = ("name", "fits", "partition_rows")


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """One prepared catalogue of the merge."""

    file: Path
    survey: str | None = None
    radius_arcsec: float | str | None = None
    position_error_arcsec: float | None = None
    moc: Path | None = None


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """What the merge writes besides the HATS masterlist."""

    name: str = "masterlist"
    fits: str | None = None
    partition_rows: int = 500_000


@dataclasses.dataclass(frozen=True)
class MergeConfig:
    """A validated merge configuration (see the module docstring)."""

    catalogues: tuple[CatalogueEntry, ...]
    radius_arcsec: float | str = 1.0
    search_radius_arcsec: float = 5.0
    same_filter_rule: str = "priority"
    bayes: bool = False
    field: str = ""
    output: OutputOptions = OutputOptions()
    path: Path | None = None

    def step_radius(self, k: int) -> float | str:
        """Radius (arcsec or ``"auto"``) of the step merging catalogue ``k``."""
        own = self.catalogues[k].radius_arcsec
        return self.radius_arcsec if own is None else own

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = None if self.path is None else str(self.path)
        for entry in d["catalogues"]:
            entry["file"] = str(entry["file"])
            entry["moc"] = None if entry["moc"] is None else str(entry["moc"])
        return d


def _unknown(raw: dict, allowed, path, prefix: str) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"unknown key (allowed: {', '.join(allowed)})", path=path, key=f"{prefix}{key}"
            )


def _radius(value, path, key: str, allow_auto: bool = True) -> float | str:
    if allow_auto and value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"must be a number of arcsec{' or auto' if allow_auto else ''}, got {value!r}",
            path=path,
            key=key,
        )
    if not 0 < float(value) <= 3600:
        raise ConfigError(f"must be in (0, 3600] arcsec, got {value!r}", path=path, key=key)
    return float(value)


def parse_merge_config(
    raw: Any, *, path: str | os.PathLike | None = None, base_dir: str | os.PathLike | None = None
) -> MergeConfig:
    """Validate a merge configuration already parsed into Python objects.

    ``raw`` is the document (a mapping), ``path`` its file (for messages) and ``base_dir`` the
    folder of the catalogues' relative file names (default: the folder of ``path``); see
    ``skysense._config_file.config_base``.

    Raises
    ------
    ConfigError
        Unknown key, missing catalogue file, bad radius or weight.
    """
    _, base = config_base(raw, path, base_dir)
    _unknown(raw, _TOP, path, "")
    cats = raw.get("catalogues")
    if not isinstance(cats, list) or not cats:
        raise ConfigError("must be a non-empty list of catalogues", path=path, key="catalogues")
    entries = []
    for key, item in config_entries(cats, path, "catalogues", "file", "a file name"):
        _unknown(item, _ENTRY, path, f"{key}.")
        if not isinstance(item.get("file"), str) or not item["file"]:
            raise ConfigError("missing file name", path=path, key=f"{key}.file")
        file = (base / item["file"]).resolve()
        if not file.exists():
            raise ConfigError(f"no such file {str(file)!r}", path=path, key=f"{key}.file")
        survey = item.get("survey")
        if survey is not None and (
            not isinstance(survey, str)
            or not survey.replace("_", "").isalnum()
            or survey.lower() != survey
        ):
            raise ConfigError(
                f"survey name must match [a-z0-9_]+, got {survey!r}", path=path, key=f"{key}.survey"
            )
        radius = item.get("radius_arcsec")
        if radius is not None:
            radius = _radius(radius, path, f"{key}.radius_arcsec")
        err = item.get("position_error_arcsec")
        if err is not None:
            err = _radius(err, path, f"{key}.position_error_arcsec", allow_auto=False)
        moc = item.get("moc")
        if moc is not None:
            if not isinstance(moc, str):
                raise ConfigError("must be a file name", path=path, key=f"{key}.moc")
            moc = (base / moc).resolve()
            if not moc.is_file():
                raise ConfigError(f"no such file {str(moc)!r}", path=path, key=f"{key}.moc")
        entries.append(CatalogueEntry(file, survey, radius, err, moc))
    surveys = [e.survey for e in entries if e.survey]
    if len(set(surveys)) != len(surveys):
        raise ConfigError("survey names must be distinct", path=path, key="catalogues")
    radius = _radius(raw.get("radius_arcsec", 1.0), path, "radius_arcsec")
    search = _radius(raw.get("search_radius_arcsec", 5.0), path, "search_radius_arcsec", False)
    rule = raw.get("same_filter_rule", "priority")
    if rule not in SAME_FILTER_RULES:
        raise ConfigError(
            f"must be one of {', '.join(SAME_FILTER_RULES)}, got {rule!r}",
            path=path,
            key="same_filter_rule",
        )
    bayes = raw.get("bayes", False)
    if not isinstance(bayes, bool):
        raise ConfigError(f"must be true or false, got {bayes!r}", path=path, key="bayes")
    field = raw.get("field", "")
    if not isinstance(field, str):
        raise ConfigError("must be a string", path=path, key="field")
    out_raw = raw.get("output", {}) or {}
    if not isinstance(out_raw, dict):
        raise ConfigError("must be a mapping", path=path, key="output")
    _unknown(out_raw, _OUTPUT, path, "output.")
    name = out_raw.get("name", "masterlist")
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(
            f"must be a plain directory name, got {name!r}", path=path, key="output.name"
        )
    fits = out_raw.get("fits")
    if fits is not None and (
        not isinstance(fits, str) or not fits.lower().endswith((".fits", ".fit"))
    ):
        raise ConfigError(f"must be a .fits file name, got {fits!r}", path=path, key="output.fits")
    rows = out_raw.get("partition_rows", 500_000)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1000:
        raise ConfigError(
            f"must be an integer >= 1000, got {rows!r}", path=path, key="output.partition_rows"
        )
    return MergeConfig(
        catalogues=tuple(entries),
        radius_arcsec=radius,
        search_radius_arcsec=float(search),
        same_filter_rule=rule,
        bayes=bayes,
        field=field,
        output=OutputOptions(name, fits, rows),
        path=None if path is None else Path(path),
    )


def load_merge_config(path: str | os.PathLike) -> MergeConfig:
    """Read and validate a merge configuration file (``.yaml``/``.yml`` or ``.toml``).

    Raises
    ------
    ConfigError
        Unreadable file, syntax error, or invalid content (names the key).
    """
    raw = read_config_file(path)
    return parse_merge_config(raw, path=path)
