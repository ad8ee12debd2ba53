"""Per-survey configuration (contract 2): load from YAML or TOML, validate, round-trip.

A configuration names the columns of one pristine catalogue and how to turn them into HELP
conventions. Every problem is a :class:`~skysense.errors.ConfigError` naming the file and the
key path, e.g. ``cfhtls.yaml: bands[2].mag_err: column 'MAGERR_X' not in cfhtls.fits (did you
mean 'MAGERR_AUTO_U'?)``.

Keys beyond contract 2 (all optional):

``bands[i].flag``                 column whose non-zero values flag the band's photometry
``bands[i].aperture_correction``  fixed aperture correction (mag) instead of measuring it
``dedupe_radius_arcsec``          self-match radius for duplicate removal (default 0.4)
``astrometry_radius_arcsec``      match radius against the reference (default 1.0)
``aperture_correction``           ``false`` to skip, or ``{stellarity_min, mag_min, mag_max,
                                  nsigma}`` to choose the stars of the curve of growth
``columns.r_half``, ``columns.axis_ratio`` (or ``columns.ellipticity``), ``columns.pa``
                                  size and shape columns (:mod:`skysense.catalog.morphology`)
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skysense._check import did_you_mean
from skysense._config_file import read_config_file
from skysense.catalog.bands import BANDS
from skysense.catalog.cuts import cut_columns, parse_cut
from skysense.catalog.formats import FORMATS, guess_format
from skysense.errors import ConfigError
from skysense.photometry import FLUX_UNITS

__all__ = [
    "FLUX_UNITS",
    "ApertureSettings",
    "BandConfig",
    "ColumnsConfig",
    "SurveyConfig",
    "load_config",
    "parse_config",
    "check_columns",
]

_SURVEY_RE = re.compile(r"^[a-z0-9_]+$")
_TOP_KEYS = (
    "survey",
    "file",
    "format",
    "epoch",
    "columns",
    "position_error_arcsec",
    "bands",
    "cuts",
    "dedupe_radius_arcsec",
    "astrometry_radius_arcsec",
    "aperture_correction",
)
_COLUMN_KEYS = (
    "id", "ra", "dec", "stellarity", "position_error", "r_half", "axis_ratio", "ellipticity",
    "pa",
)  # fmt: skip
_BAND_COLUMN_KEYS = (
    "mag",
    "mag_err",
    "mag_ap",
    "mag_ap_err",
    "flux",
    "flux_err",
    "flux_ap",
    "flux_ap_err",
    "flag",
)
_BAND_KEYS = ("name", *_BAND_COLUMN_KEYS, "system", "vega_to_ab", "missing", "flux_unit")
_BAND_KEYS = (*_BAND_KEYS, "aperture_correction")
_APCOR_KEYS = ("stellarity_min", "mag_min", "mag_max", "nsigma")


@dataclass(frozen=True)
class ColumnsConfig:
    """Column names of the identifier, position and optional stellarity / position error."""

    id: str
    ra: str
    dec: str
    stellarity: str | None = None
    position_error: str | None = None
    r_half: str | None = None
    axis_ratio: str | None = None
    ellipticity: str | None = None
    pa: str | None = None


@dataclass(frozen=True)
class BandConfig:
    """How one band's photometry is stored in the pristine catalogue."""

    name: str
    mag: str | None = None
    mag_err: str | None = None
    mag_ap: str | None = None
    mag_ap_err: str | None = None
    flux: str | None = None
    flux_err: str | None = None
    flux_ap: str | None = None
    flux_ap_err: str | None = None
    flag: str | None = None
    system: str = "AB"
    vega_to_ab: float = 0.0
    missing: tuple[float, ...] = ()
    flux_unit: str = "uJy"
    aperture_correction: float | None = None

    @property
    def has_aperture(self) -> bool:
        """True when an aperture measurement is configured."""
        return self.mag_ap is not None or self.flux_ap is not None

    def columns(self) -> dict[str, str]:
        """Configured column names by key (``{"mag": "MAG_AUTO_U", ...}``)."""
        return {k: getattr(self, k) for k in _BAND_COLUMN_KEYS if getattr(self, k) is not None}


@dataclass(frozen=True)
class ApertureSettings:
    """Star selection for the aperture correction (curve of growth)."""

    stellarity_min: float = 0.9
    mag_min: float | None = None
    mag_max: float | None = None
    nsigma: float = 3.0


@dataclass(frozen=True)
class SurveyConfig:
    """A validated per-survey configuration (contract 2).

    ``path`` is the configuration file (``None`` when built from a mapping); ``file`` is kept
    as written and resolved against the configuration's folder by :attr:`file_path`.
    """

    survey: str
    file: str
    columns: ColumnsConfig
    bands: tuple[BandConfig, ...]
    format: str | None = None
    epoch: float | None = None
    position_error_arcsec: float | None = None
    cuts: tuple[str, ...] = ()
    dedupe_radius_arcsec: float = 0.4
    astrometry_radius_arcsec: float = 1.0
    aperture: ApertureSettings | None = field(default_factory=ApertureSettings)
    path: Path | None = field(default=None, compare=False)

    @property
    def file_path(self) -> Path:
        """The catalogue file, resolved against the configuration file's folder."""
        p = Path(self.file)
        if p.is_absolute() or self.path is None:
            return p
        return Path(self.path).parent / p

    @property
    def file_format(self) -> str:
        """The catalogue format, configured or guessed from the suffix."""
        return self.format or guess_format(self.file)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that :func:`parse_config` turns back into an equal configuration."""
        out: dict[str, Any] = {"survey": self.survey, "file": self.file}
        if self.format is not None:
            out["format"] = self.format
        if self.epoch is not None:
            out["epoch"] = self.epoch
        out["columns"] = {
            k: getattr(self.columns, k)
            for k in _COLUMN_KEYS
            if getattr(self.columns, k) is not None
        }
        if self.position_error_arcsec is not None:
            out["position_error_arcsec"] = self.position_error_arcsec
        bands = []
        for band in self.bands:
            b: dict[str, Any] = {"name": band.name, **band.columns()}
            b["system"] = band.system
            if band.system == "Vega":
                b["vega_to_ab"] = band.vega_to_ab
            if band.missing:
                b["missing"] = list(band.missing)
            if band.flux is not None or band.flux_ap is not None:
                b["flux_unit"] = band.flux_unit
            if band.aperture_correction is not None:
                b["aperture_correction"] = band.aperture_correction
            bands.append(b)
        out["bands"] = bands
        out["cuts"] = list(self.cuts)
        out["dedupe_radius_arcsec"] = self.dedupe_radius_arcsec
        out["astrometry_radius_arcsec"] = self.astrometry_radius_arcsec
        if self.aperture is None:
            out["aperture_correction"] = False
        else:
            ap = {"stellarity_min": self.aperture.stellarity_min, "nsigma": self.aperture.nsigma}
            if self.aperture.mag_min is not None:
                ap["mag_min"] = self.aperture.mag_min
            if self.aperture.mag_max is not None:
                ap["mag_max"] = self.aperture.mag_max
            out["aperture_correction"] = ap
        return out


class _Validator:
    def __init__(self, path):
        self.path = path

    def fail(self, key: str, message: str):
        raise ConfigError(message, path=self.path, key=key or None)

    def mapping(self, value, key: str, allowed) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {type(value).__name__}")
        for k in value:
            if k not in allowed:
                where = f"{key}.{k}" if key else str(k)
                self.fail(where, f"unknown key{did_you_mean(k, allowed)}")
        return value

    def string(self, value, key: str, pattern=None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            self.fail(key, f"{value!r} must match {pattern.pattern}")
        return value

    def number(self, value, key: str, lo=-math.inf, hi=math.inf, positive=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or not (lo <= value <= hi) or (positive and value <= 0):
            rng = "a positive number" if positive else f"a number in [{lo}, {hi}]"
            self.fail(key, f"expected {rng}, got {value!r}")
        return value


def _parse_band(v: _Validator, raw, key: str) -> BandConfig:
    raw = v.mapping(raw, key, _BAND_KEYS)
    if "name" not in raw:
        v.fail(f"{key}.name", "required")
    name = v.string(raw["name"], f"{key}.name")
    if name not in BANDS:
        v.fail(f"{key}.name", f"unknown band {name!r}{did_you_mean(name, BANDS)}")
    cols = {k: v.string(raw[k], f"{key}.{k}") for k in _BAND_COLUMN_KEYS if k in raw}
    has_mag, has_flux = "mag" in cols, "flux" in cols
    if has_mag == has_flux:
        v.fail(key, "give exactly one of 'mag' or 'flux' (the total measurement)")
    for value_key, err_key in (
        ("mag", "mag_err"),
        ("mag_ap", "mag_ap_err"),
        ("flux", "flux_err"),
        ("flux_ap", "flux_ap_err"),
    ):
        if err_key in cols and value_key not in cols:
            v.fail(f"{key}.{err_key}", f"given without {value_key!r}")
    if "mag_ap" in cols and "flux_ap" in cols:
        v.fail(f"{key}.flux_ap", "give only one of 'mag_ap' or 'flux_ap'")
    system = raw.get("system", "AB")
    if not isinstance(system, str) or system.lower() not in ("ab", "vega"):
        v.fail(f"{key}.system", f"expected 'AB' or 'Vega', got {system!r}")
    system = "AB" if system.lower() == "ab" else "Vega"
    vega_to_ab = 0.0
    if system == "Vega":
        if "vega_to_ab" not in raw:
            v.fail(f"{key}.vega_to_ab", "required when system is Vega")
        vega_to_ab = v.number(raw["vega_to_ab"], f"{key}.vega_to_ab", -5.0, 5.0)
    elif "vega_to_ab" in raw:
        v.number(raw["vega_to_ab"], f"{key}.vega_to_ab", -5.0, 5.0)
        if float(raw["vega_to_ab"]) != 0.0:
            v.fail(f"{key}.vega_to_ab", "non-zero offset given but system is AB")
    if (has_flux or "flux_ap" in cols) and system == "Vega":
        v.fail(f"{key}.system", "Vega applies to magnitudes; fluxes must be in flux_unit")
    missing = raw.get("missing", [])
    if isinstance(missing, (int, float)) and not isinstance(missing, bool):
        missing = [missing]
    if not isinstance(missing, list):
        v.fail(f"{key}.missing", f"expected a list of numbers, got {missing!r}")
    missing = tuple(
        v.number(m, f"{key}.missing[{i}]") if not (isinstance(m, float) and math.isnan(m)) else m
        for i, m in enumerate(missing)
    )
    flux_unit = raw.get("flux_unit", "uJy")
    if "flux_unit" in raw:
        if not (has_flux or "flux_ap" in cols):
            v.fail(f"{key}.flux_unit", "given but the band has no flux column")
        if flux_unit not in FLUX_UNITS:
            v.fail(
                f"{key}.flux_unit",
                f"unknown unit {flux_unit!r}; use one of {', '.join(FLUX_UNITS)}"
                f"{did_you_mean(flux_unit, FLUX_UNITS)}",
            )
    apcor = raw.get("aperture_correction")
    if apcor is not None:
        if not cols.get("mag_ap") and not cols.get("flux_ap"):
            v.fail(f"{key}.aperture_correction", "given but the band has no aperture column")
        apcor = v.number(apcor, f"{key}.aperture_correction", -5.0, 5.0)
    return BandConfig(
        name=name,
        **cols,
        system=system,
        vega_to_ab=vega_to_ab,
        missing=missing,
        flux_unit=flux_unit,
        aperture_correction=apcor,
    )


def parse_config(raw: Any, *, path: str | os.PathLike | None = None) -> SurveyConfig:
    """Validate a configuration mapping (as loaded from YAML/TOML).

    Parameters
    ----------
    raw : dict
        The mapping.
    path : path-like, optional
        The configuration file it came from (named in errors; resolves ``file``).

    Raises
    ------
    ConfigError
        Naming ``path`` and the offending key.
    """
    v = _Validator(path)
    raw = v.mapping(raw, "", _TOP_KEYS)
    for required in ("survey", "file", "columns", "bands"):
        if required not in raw:
            v.fail(required, "required key missing")
    survey = v.string(raw["survey"], "survey", _SURVEY_RE)
    file = v.string(raw["file"], "file")
    fmt = raw.get("format")
    if fmt is not None:
        if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
            v.fail("format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
        fmt = fmt.lower()
    else:
        try:
            guess_format(file)
        except Exception:  # noqa: BLE001 - re-raised as a config error on the right key
            v.fail("format", f"required: cannot tell the format of {file!r} from its suffix")
    epoch = raw.get("epoch")
    if epoch is not None:
        epoch = v.number(epoch, "epoch", 1900.0, 2100.0)
    columns = v.mapping(raw["columns"], "columns", _COLUMN_KEYS)
    for required in ("id", "ra", "dec"):
        if required not in columns:
            v.fail(f"columns.{required}", "required")
    columns = ColumnsConfig(**{k: v.string(c, f"columns.{k}") for k, c in columns.items()})
    if columns.axis_ratio is not None and columns.ellipticity is not None:
        v.fail("columns.ellipticity", "give axis_ratio or ellipticity, not both")
    pos_err = raw.get("position_error_arcsec")
    if pos_err is not None:
        pos_err = v.number(pos_err, "position_error_arcsec", positive=True)
    bands_raw = raw["bands"]
    if not isinstance(bands_raw, list) or not bands_raw:
        v.fail("bands", "expected a non-empty list of bands")
    bands = tuple(_parse_band(v, b, f"bands[{i}]") for i, b in enumerate(bands_raw))
    seen: dict[str, int] = {}
    for i, band in enumerate(bands):
        if band.name in seen:
            v.fail(
                f"bands[{i}].name", f"band {band.name!r} already given in bands[{seen[band.name]}]"
            )
        seen[band.name] = i
    cuts_raw = raw.get("cuts") or []
    if not isinstance(cuts_raw, list):
        v.fail("cuts", "expected a list of expressions")
    for i, text in enumerate(cuts_raw):
        try:
            parse_cut(text)
        except ValueError as exc:
            v.fail(f"cuts[{i}]", str(exc))
    dedupe = raw.get("dedupe_radius_arcsec", 0.4)
    dedupe = v.number(dedupe, "dedupe_radius_arcsec", 0.0, 10.0)
    astro = v.number(
        raw.get("astrometry_radius_arcsec", 1.0), "astrometry_radius_arcsec", 0.0, 60.0, True
    )
    ap_raw = raw.get("aperture_correction", {})
    if ap_raw is False:
        aperture = None
    else:
        if ap_raw is True or ap_raw is None:
            ap_raw = {}
        ap_raw = v.mapping(ap_raw, "aperture_correction", _APCOR_KEYS)
        kw = {}
        if "stellarity_min" in ap_raw:
            kw["stellarity_min"] = v.number(
                ap_raw["stellarity_min"], "aperture_correction.stellarity_min", 0.0, 1.0
            )
        for k in ("mag_min", "mag_max"):
            if k in ap_raw:
                kw[k] = v.number(ap_raw[k], f"aperture_correction.{k}", -10.0, 40.0)
        if "nsigma" in ap_raw:
            kw["nsigma"] = v.number(ap_raw["nsigma"], "aperture_correction.nsigma", positive=True)
        aperture = ApertureSettings(**kw)
        if (
            aperture.mag_min is not None
            and aperture.mag_max is not None
            and aperture.mag_min >= aperture.mag_max
        ):
            v.fail("aperture_correction.mag_max", "must be larger than mag_min")
    return SurveyConfig(
        survey=survey,
        file=file,
        columns=columns,
        bands=bands,
        format=fmt,
        epoch=epoch,
        position_error_arcsec=pos_err,
        cuts=tuple(cuts_raw),
        dedupe_radius_arcsec=dedupe,
        astrometry_radius_arcsec=astro,
        aperture=aperture,
        path=None if path is None else Path(path),
    )


def load_config(path: str | os.PathLike) -> SurveyConfig:
    """Load and validate a YAML (``.yaml``/``.yml``) or TOML (``.toml``) configuration.

    Raises
    ------
    ConfigError
        Unreadable file, syntax error, or invalid content (naming file and key).
    """
    path = Path(path)
    raw = read_config_file(path)
    return parse_config(raw, path=path)


def check_columns(config: SurveyConfig, available, *, file_label: str | None = None) -> None:
    """Check that every column the configuration names exists in the catalogue.

    Parameters
    ----------
    config : SurveyConfig
    available : iterable of str
        The catalogue's column names.
    file_label : str, optional
        How to name the catalogue in messages (default: its file name).

    Raises
    ------
    ConfigError
        ``bands[2].mag_err: column 'MAGERR_X' not in cfhtls.fits (did you mean ...?)``.
    """
    available = list(available)
    names = set(available)
    label = file_label or Path(config.file).name
    v = _Validator(config.path)
    for k in _COLUMN_KEYS:
        col = getattr(config.columns, k)
        if col is not None and col not in names:
            v.fail(f"columns.{k}", f"column {col!r} not in {label}{did_you_mean(col, available)}")
    sibling = {"mag_err": "mag", "mag_ap_err": "mag_ap", "flux_err": "flux"}
    sibling.update({"flux_ap_err": "flux_ap", "mag_ap": "mag", "flux_ap": "flux"})
    for i, band in enumerate(config.bands):
        cols = band.columns()
        for k, col in cols.items():
            if col not in names:
                context = cols.get(sibling.get(k, "mag" if "mag" in cols else "flux"))
                hint = did_you_mean(col, available, context=None if context == col else context)
                v.fail(f"bands[{i}].{k}", f"column {col!r} not in {label}{hint}")
    for i, text in enumerate(config.cuts):
        for col in cut_columns(text):
            if col not in names:
                v.fail(f"cuts[{i}]", f"column {col!r} not in {label}{did_you_mean(col, available)}")
