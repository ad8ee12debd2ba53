"""The radio cross-identification configuration (``RADIO.yaml``), validated once.

Example::

    radio:
      file: at20g.csv            # any table skysense.tables reads
      band: at20g_20ghz          # masterlist columns f_at20g_20ghz, ferr_at20g_20ghz
      id: name                   # radio identifier column (default: the row number)
      ra: ra                     # default: guessed
      dec: dec
      flux: s20                  # flux density column and unit
      flux_err: s20_err
      flux_unit: Jy
      position_error: {sigma: 0.9}          # arcsec; or sigma_ra/sigma_dec, or major/minor/pa
    optical:
      magnitude: m_b             # masterlist column
      colour: [m_b, m_r]         # optional: q(m, colour) with colour = m_b - m_r
      position_error: {sigma_ra: sigRA, sigma_dec: sigDec, unit: deg}
    method:
      search_radius_arcsec: 5
      background_inner_arcsec: 10
      background_outer_arcsec: 40
      mag_edges: [12, 21, 0.5]   # first, last, step
      colour_edges: [-1, 0.5, 1, 1.5, 3]
      systematic_arcsec: 0.5
      q0: auto                   # or a number
      threshold: auto            # or an LR value
      random_state: 0

A position error is a number (arcsec) or a column name for each of ``sigma`` (circular),
``sigma_ra`` + ``sigma_dec`` (1-sigma along RA and Dec, no correlation) or ``major`` +
``minor`` + ``pa`` (1-sigma semi-axes and the position angle east of north, deg); ``unit``
(``arcsec``, ``mas`` or ``deg``) scales the sigmas.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysense._check import did_you_mean
from skysense._config_file import config_base, read_config_file
from skysense.catalog.radio.identify import RadioIDSettings
from skysense.catalog.radio.lr import ellipse_covariance
from skysense.errors import ConfigError, InputError
from skysense.photometry import FLUX_UNITS

__all__ = [
    "ErrorSpec",
    "RadioConfig",
    "parse_radio_config",
    "load_radio_config",
    "error_covariance",
]

_ERR_UNITS = {"arcsec": 1.0, "mas": 1e-3, "deg": 3600.0}
_ERR_KEYS = ("sigma", "sigma_ra", "sigma_dec", "major", "minor", "pa", "unit")


@dataclasses.dataclass(frozen=True)
class ErrorSpec:
    """A positional error: numbers (arcsec, deg for ``pa``) or column names."""

    kind: str  # "circular", "radec" or "ellipse"
    values: tuple
    unit: str = "arcsec"

    def columns(self) -> list[str]:
        return [v for v in self.values if isinstance(v, str)]


@dataclasses.dataclass(frozen=True)
class RadioConfig:
    """A validated radio ID configuration (see the module docstring)."""

    file: Path
    band: str
    id_column: str | None
    ra_column: str | None
    dec_column: str | None
    flux_column: str
    flux_err_column: str | None
    flux_unit: str
    radio_error: ErrorSpec
    magnitude: str
    colour: tuple[str, str] | None
    optical_error: ErrorSpec
    settings: RadioIDSettings
    path: Path | None = None

    def optical_columns(self) -> list[str]:
        cols = [self.magnitude, *(self.colour or ()), *self.optical_error.columns()]
        return list(dict.fromkeys(cols))


def _fail(path, key, message):
    raise ConfigError(message, path=path, key=key)


def _mapping(raw, path, key, allowed) -> dict:
    if not isinstance(raw, dict):
        _fail(path, key, f"expected a mapping, got {type(raw).__name__}")
    for k in raw:
        if k not in allowed:
            _fail(path, f"{key}.{k}", f"unknown key{did_you_mean(str(k), allowed)}")
    return raw


def _str(raw, path, key) -> str:
    if not isinstance(raw, str) or not raw.strip():
        _fail(path, key, f"expected a non-empty string, got {raw!r}")
    return raw


def _num(raw, path, key, lo=-math.inf, hi=math.inf) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not lo <= raw <= hi:
        _fail(path, key, f"expected a number in [{lo}, {hi}], got {raw!r}")
    return float(raw)


def _error_spec(raw, path, key) -> ErrorSpec:
    raw = _mapping(raw, path, key, _ERR_KEYS)
    unit = raw.get("unit", "arcsec")
    if unit not in _ERR_UNITS:
        _fail(path, f"{key}.unit", f"unknown unit {unit!r}; use one of {', '.join(_ERR_UNITS)}")
    keys = {k for k in raw if k != "unit"}
    for kind, need in (
        ("circular", {"sigma"}),
        ("radec", {"sigma_ra", "sigma_dec"}),
        ("ellipse", {"major", "minor", "pa"}),
    ):
        if keys == need:
            vals = []
            for k in sorted(need, key=_ERR_KEYS.index):
                v = raw[k]
                if isinstance(v, str):
                    vals.append(_str(v, path, f"{key}.{k}"))
                else:
                    vals.append(_num(v, path, f"{key}.{k}", 0 if k != "pa" else -360, 3600))
            return ErrorSpec(kind, tuple(vals), unit)
    _fail(path, key, "give sigma, or sigma_ra and sigma_dec, or major, minor and pa")
    raise AssertionError  # pragma: no cover


def _edges(raw, path, key) -> tuple:
    if (
        isinstance(raw, list)
        and len(raw) == 3
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw)
        and raw[2] > 0
        and raw[1] > raw[0]
        and key.endswith("mag_edges")
    ):
        lo, hi, step = (float(x) for x in raw)
        return tuple(np.arange(lo, hi + step / 2, step))
    if not isinstance(raw, list) or len(raw) < 2:
        _fail(path, key, f"expected a list of increasing edges, got {raw!r}")
    vals = [_num(x, path, key) for x in raw]
    if any(b <= a for a, b in zip(vals[:-1], vals[1:])):
        _fail(path, key, f"edges must increase, got {raw!r}")
    return tuple(vals)


_METHOD_KEYS = (
    "search_radius_arcsec",
    "background_inner_arcsec",
    "background_outer_arcsec",
    "mag_edges",
    "colour_edges",
    "systematic_arcsec",
    "q0",
    "threshold",
    "smooth_cells",
    "random_state",
)


def parse_radio_config(
    raw: Any, *, path: str | os.PathLike | None = None, base_dir: str | os.PathLike | None = None
) -> RadioConfig:
    """Validate a radio ID configuration already parsed into Python objects.

    Raises
    ------
    ConfigError
        Naming the file and the key.
    """
    path, base = config_base(raw, path, base_dir)
    _mapping(raw, path, "", ("radio", "optical", "method"))
    for k in ("radio", "optical"):
        if k not in raw:
            _fail(path, k, "missing section")
    r = _mapping(raw["radio"], path, "radio", ("file", "band", "id", "ra", "dec", "flux",
                 "flux_err", "flux_unit", "position_error"))  # fmt: skip
    for k in ("file", "band", "flux", "position_error"):
        if k not in r:
            _fail(path, f"radio.{k}", "missing key")
    band = _str(r["band"], path, "radio.band")
    if not all(ch.isalnum() or ch == "_" for ch in band) or band != band.lower():
        _fail(path, "radio.band", f"use lower-case letters, digits and _ only, got {band!r}")
    unit = r.get("flux_unit", "mJy")
    if unit not in FLUX_UNITS:
        _fail(
            path, "radio.flux_unit", f"unknown flux unit {unit!r}{did_you_mean(unit, FLUX_UNITS)}"
        )
    o = _mapping(raw["optical"], path, "optical", ("magnitude", "colour", "position_error"))
    for k in ("magnitude", "position_error"):
        if k not in o:
            _fail(path, f"optical.{k}", "missing key")
    colour = o.get("colour")
    if colour is not None:
        if not (isinstance(colour, list) and len(colour) == 2):
            _fail(path, "optical.colour", "expected two magnitude columns [a, b] (colour a - b)")
        colour = (_str(colour[0], path, "optical.colour"), _str(colour[1], path, "optical.colour"))
    m = _mapping(raw.get("method") or {}, path, "method", _METHOD_KEYS)
    kw: dict[str, Any] = {}
    for k in ("search_radius_arcsec", "background_inner_arcsec", "background_outer_arcsec",
              "systematic_arcsec", "smooth_cells"):  # fmt: skip
        if k in m:
            kw[k] = _num(m[k], path, f"method.{k}", 0, 36000)
    for k in ("q0", "threshold"):
        if k in m and m[k] != "auto":
            kw[k] = _num(m[k], path, f"method.{k}", 0, 1 if k == "q0" else math.inf)
    if "random_state" in m:
        kw["random_state"] = int(_num(m["random_state"], path, "method.random_state", 0))
    if "mag_edges" in m:
        kw["mag_edges"] = _edges(m["mag_edges"], path, "method.mag_edges")
    if "colour_edges" in m:
        kw["colour_edges"] = _edges(m["colour_edges"], path, "method.colour_edges")
    if colour is not None and "colour_edges" not in kw:
        kw["colour_edges"] = (-np.inf, np.inf)
    if colour is None and "colour_edges" in kw:
        _fail(path, "method.colour_edges", "needs optical.colour")
    try:
        settings = RadioIDSettings(**kw)
    except InputError as exc:
        raise ConfigError(str(exc.args[0]), path=path, key="method") from None
    file = Path(_str(r["file"], path, "radio.file"))
    opt = lambda k: None if r.get(k) is None else _str(r[k], path, f"radio.{k}")  # noqa: E731
    return RadioConfig(
        file=file if file.is_absolute() else base / file,
        band=band,
        id_column=opt("id"),
        ra_column=opt("ra"),
        dec_column=opt("dec"),
        flux_column=_str(r["flux"], path, "radio.flux"),
        flux_err_column=opt("flux_err"),
        flux_unit=unit,
        radio_error=_error_spec(r["position_error"], path, "radio.position_error"),
        magnitude=_str(o["magnitude"], path, "optical.magnitude"),
        colour=colour,
        optical_error=_error_spec(o["position_error"], path, "optical.position_error"),
        settings=settings,
        path=path,
    )


def load_radio_config(path: str | os.PathLike) -> RadioConfig:
    """Read and validate a radio ID configuration file (YAML or TOML)."""
    return parse_radio_config(read_config_file(path), path=path)


def error_covariance(
    frame: pd.DataFrame, spec: ErrorSpec, *, label: str = "table", missing_as_zero: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positional covariance (east, north) of every row from its error specification.

    Parameters
    ----------
    frame : DataFrame (n rows)
        Holds the columns the specification names.
    spec : ErrorSpec
    label : str
        Names the table in errors.
    missing_as_zero : bool
        A missing (NaN) error counts as 0 (the systematic term remains), instead of failing.

    Returns
    -------
    (c_ee, c_en, c_nn) : ndarray (n,), arcsec^2

    Raises
    ------
    InputError
        A named column is missing, or an error is negative or not finite.
    """
    n = len(frame)
    vals = []
    for i, v in enumerate(spec.values):
        if isinstance(v, str):
            if v not in frame.columns:
                raise InputError(
                    f"{label}: no position-error column {v!r}"
                    + did_you_mean(v, [str(c) for c in frame.columns]),
                    column=v,
                )
            a = pd.to_numeric(frame[v], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            a = np.full(n, float(v))
        is_pa = spec.kind == "ellipse" and i == 2
        if not is_pa:
            a = a * _ERR_UNITS[spec.unit]
            if missing_as_zero:
                a = np.where(np.isnan(a), 0.0, a)
            bad = ~(np.isfinite(a) & (a >= 0))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{label}: position error {a[row]!r} is not a finite non-negative number",
                    column=v if isinstance(v, str) else None,
                    row=row,
                )
        else:
            a = np.where(np.isnan(a), 0.0, a) if missing_as_zero else a
        vals.append(a)
    if spec.kind == "circular":
        return ellipse_covariance(vals[0], vals[0], np.zeros(n))
    if spec.kind == "radec":
        return vals[0] ** 2, np.zeros(n), vals[1] ** 2
    return ellipse_covariance(vals[0], vals[1], vals[2])
