"""Preparing one survey's pristine table the HELP way (pure: a DataFrame in, a DataFrame out).

checks (columns, cuts, identifiers, positions) -> HELP photometry columns -> duplicate
removal -> astrometric correction against the reference -> star flags -> aperture correction
(after the duplicates are gone, and able to pick stars by ``flag_gaia`` when the survey has
no stellarity) -> coverage MOC. :func:`prepare_table` runs these stages (:data:`STAGES`);
:mod:`skysense.catalog.prepare_io` reads the files around it, draws the plots and writes the
results.

Prepared columns (contract 3), in this order::
    <survey>_id, <survey>_ra, <survey>_dec   identifier as in the survey; deg (corrected)
    [<survey>_poserr_arcsec]                 when a position error is configured
    [stellarity]                             when configured (0..1)
    per band: m_<b>, merr_<b>, [m_ap_<b>, merr_ap_<b>]      AB mag (aperture: corrected)
              f_<b>, ferr_<b>, [f_ap_<b>, ferr_ap_<b>]      uJy
              flag_<b>                       bool: the survey's flag column is non-zero, or a
                                             measurement has a missing/non-positive error
    flag_cleaned                             survivor of duplicate removal that had neighbours
    [flag_gaia, flag_starmask]               when a reference catalogue is given (int16, bool)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mocpy import MOC

from skysense._check import check_positions
from skysense.catalog.aperture import aperture_correction, star_curve
from skysense.catalog.astrometry import (
    apply_offset,
    match_offsets,
    measure_offset,
    propagate_positions,
)
from skysense.catalog.config import SurveyConfig, check_columns
from skysense.catalog.cuts import cut_columns, evaluate_cut
from skysense.catalog.dedupe import dedupe, snr_score
from skysense.catalog.moc import coverage_moc, moc_area_deg2
from skysense.catalog.photometry import sentinels_to_nan
from skysense.catalog.starflags import StarMaskLaw, gaia_flag, star_mask
from skysense.errors import InputError
from skysense.photometry import flux_to_ujy, flux_ujy_to_mag, mag_to_flux_ujy, vega_to_ab

__all__ = [
    "PreparedSurvey",
    "REFERENCE_EPOCH",
    "STAGES",
    "check_reference",
    "table_positions",
    "prepare_table",
]

REFERENCE_EPOCH = 2016.0  # Gaia DR3 positions
# Stages reported to the ``progress`` callback of :func:`prepare_table`, in order.
STAGES = ("checks", "photometry", "duplicates", "astrometry", "aperture", "moc")


@dataclass
class PreparedSurvey:
    """Result of the preparation of one survey.

    Attributes
    ----------
    table : DataFrame
        The prepared catalogue (columns in the module docstring); ``attrs["units"]`` and
        ``attrs["descriptions"]`` describe them.
    moc : mocpy.MOC
        Coverage of the prepared sources.
    provenance : dict
        JSON-serialisable record: configuration, input checksum, counts, cuts, aperture
        corrections, astrometric offsets, reference, MOC order/area, package versions.
    astrometry_pairs : dict
        ``{"before": (dra, ddec), "after": (dra, ddec)}`` offsets (arcsec) of the reference
        matches, for plots; empty without a reference.
    """

    table: pd.DataFrame
    moc: MOC
    provenance: dict
    astrometry_pairs: dict = field(default_factory=dict)


def _versions() -> dict:
    import astropy
    import mocpy

    import skysense

    return {
        "skysense": getattr(skysense, "__version__", "unknown"),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "astropy": astropy.__version__,
        "mocpy": mocpy.__version__,
    }


def _numeric(series: pd.Series, column: str, label) -> np.ndarray:
    """Float array of a column; the first non-numeric entry is an InputError with its row."""
    if series.dtype.kind in "fiub":
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        pass
    coerced = pd.to_numeric(series, errors="coerce")
    text = series.astype(str).str.strip()
    bad = coerced.isna() & series.notna() & (text != "") & (text.str.lower() != "nan")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"non-numeric value {series.iloc[row]!r}", path=label, column=column, row=row
        )
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def _unit(units: dict, column: str):
    import astropy.units as u

    text = (units or {}).get(column, "") or ""
    if not text.strip():
        return None, ""
    return u.Unit(text, parse_strict="silent"), text


def _angle_factor(units: dict, column: str, label, to: str) -> float:
    """Factor converting the column's file unit to ``to`` (1 when the file gives none)."""
    import astropy.units as u

    unit, text = _unit(units, column)
    if unit is None:
        return 1.0
    try:
        return float(unit.to(u.Unit(to)))
    except (u.UnitsError, ValueError, TypeError):
        raise InputError(
            f"unit {text!r} in the file is not an angle (expected {to})", path=label, column=column
        ) from None


def _check_mag_unit(units: dict, column: str, label) -> None:
    import astropy.units as u

    unit, text = _unit(units, column)
    if unit is None or "mag" in text.lower():
        return
    if isinstance(unit, u.UnrecognizedUnit) or unit == u.dimensionless_unscaled:
        return
    raise InputError(
        f"unit {text!r} in the file but the configuration reads it as a magnitude "
        "(use flux:/flux_err: with flux_unit:)",
        path=label,
        column=column,
    )


def _check_flux_unit(units: dict, column: str, configured: str, label) -> None:
    import astropy.units as u

    unit, text = _unit(units, column)
    if unit is None or isinstance(unit, u.UnrecognizedUnit):
        return
    if "mag" in text.lower():
        raise InputError(
            f"unit {text!r} in the file but the configuration reads it as a flux "
            "(use mag:/mag_err:)",
            path=label,
            column=column,
        )
    # Spelled out: astropy warns about the multiple slashes of "erg/s/cm2/Hz".
    want = u.erg / u.s / u.cm**2 / u.Hz if configured == "erg/s/cm2/Hz" else u.Unit(configured)
    try:
        ratio = float(unit.to(want))
    except u.UnitsError:
        raise InputError(
            f"unit {text!r} in the file is not a flux density (configured flux_unit "
            f"{configured!r})",
            path=label,
            column=column,
        ) from None
    if not np.isclose(ratio, 1.0, rtol=1e-9):
        raise InputError(
            f"unit {text!r} in the file disagrees with flux_unit {configured!r} in the "
            "configuration",
            path=label,
            column=column,
        )


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_reference(df: pd.DataFrame, label=None) -> pd.DataFrame:
    """Check a Gaia-like reference catalogue and fill its defaults.

    Parameters
    ----------
    df : pandas.DataFrame
        ``ra``, ``dec`` (deg, at ``ref_epoch``); optional ``pmra``, ``pmdec`` (mas/yr, NaN =
        0), ``ref_epoch`` (default :data:`REFERENCE_EPOCH`), ``phot_g_mean_mag``.
    label : str, optional
        How to name the catalogue in errors.

    Returns
    -------
    pandas.DataFrame
        Those columns as floats, with ``pmra``, ``pmdec`` and ``ref_epoch`` always present.

    Raises
    ------
    InputError
        Missing columns, non-numeric or out-of-range positions (naming the row).
    """
    for col in ("ra", "dec"):
        if col not in df:
            raise InputError("required column missing in the reference", path=label, column=col)
    out = pd.DataFrame(index=range(len(df)))
    for col in ("ra", "dec", "pmra", "pmdec", "ref_epoch", "phot_g_mean_mag"):
        if col in df:
            out[col] = _numeric(df[col].reset_index(drop=True), col, label)
    check_positions(
        out["ra"].to_numpy(),
        out["dec"].to_numpy(),
        ra_range=True,
        path=label,
        columns=("ra", "dec"),
    )
    for col in ("pmra", "pmdec"):
        out[col] = out[col].fillna(0.0) if col in out else 0.0
    if "ref_epoch" not in out:
        out["ref_epoch"] = REFERENCE_EPOCH
    out["ref_epoch"] = out["ref_epoch"].fillna(REFERENCE_EPOCH)
    return out


def table_positions(
    raw: pd.DataFrame, config: SurveyConfig, label=None
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (deg) of every row of a pristine catalogue, checked, no cuts.

    Parameters
    ----------
    raw : pandas.DataFrame
        The pristine catalogue (``attrs["units"]`` converts angle units).
    config : SurveyConfig
    label : str, optional
        How to name the catalogue in errors.

    Returns
    -------
    ra, dec : ndarray (n,), deg

    Raises
    ------
    InputError
        Missing columns, non-numeric, NaN or out-of-range positions (naming the row).
    """
    units = raw.attrs.get("units", {})
    c = config.columns
    for col in (c.ra, c.dec):
        if col not in raw:
            raise InputError("column not found", path=label, column=col)
    ra = _numeric(raw[c.ra], c.ra, label) * _angle_factor(units, c.ra, label, "deg")
    dec = _numeric(raw[c.dec], c.dec, label) * _angle_factor(units, c.dec, label, "deg")
    check_positions(ra, dec, ra_range=True, path=label, columns=(c.ra, c.dec))
    return ra, dec


# Magnitudes outside this range are sentinels or a wrong column, not measurements.
_MAG_RANGE = (-10.0, 50.0)


def _band_measure(raw, rows, band, value_key, label, units):
    """(mag, mag_err, flux_ujy, flux_err_ujy, invalid_err) for one measurement, or None.

    ``value_key`` names the band's value column (``mag``, ``flux``, ``mag_ap``, ``flux_ap``);
    its error column is ``<value_key>_err``.
    """
    value_col = getattr(band, value_key)
    if value_col is None:
        return None
    err_col = getattr(band, f"{value_key}_err")
    value = sentinels_to_nan(_numeric(raw[value_col], value_col, label)[rows], band.missing)
    if err_col is not None:
        err = sentinels_to_nan(_numeric(raw[err_col], err_col, label)[rows], band.missing)
    else:
        err = np.full(len(rows), np.nan)
    has_value = np.isfinite(value)
    invalid_err = has_value & (err_col is not None) & ~(np.isfinite(err) & (err > 0))
    err = np.where(np.isfinite(err) & (err > 0), err, np.nan)
    if value_key.startswith("mag"):
        _check_mag_unit(units, value_col, label)
        implausible = np.isfinite(value) & ((value < _MAG_RANGE[0]) | (value > _MAG_RANGE[1]))
        if implausible.any():
            i = _first(implausible)
            raise InputError(
                f"magnitude {value[i]!r} is implausible (outside {_MAG_RANGE}); list the "
                f"survey's sentinel values under the band's 'missing:' key",
                path=label,
                column=value_col,
                row=int(rows[i]),
            )
        if band.system == "Vega":
            value = vega_to_ab(value, band.vega_to_ab)
        flux, flux_err = mag_to_flux_ujy(value, err)
        return value, err, flux, flux_err, invalid_err
    _check_flux_unit(units, value_col, band.flux_unit, label)
    if err_col is not None:
        _check_flux_unit(units, err_col, band.flux_unit, label)
    flux = flux_to_ujy(value, band.flux_unit)
    flux_err = flux_to_ujy(err, band.flux_unit)
    mag, mag_err = flux_ujy_to_mag(flux, flux_err)
    return mag, mag_err, flux, flux_err, invalid_err


@dataclass
class _Columns:
    """The prepared columns as they are built: values, units and descriptions, in order."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    desc: dict[str, str] = field(default_factory=dict)


def _apply_cuts(
    raw: pd.DataFrame, config: SurveyConfig, label: str
) -> tuple[np.ndarray, list[dict]]:
    """Stage "checks", part 1: the rows kept by the cuts, and what each cut removed."""
    n_read = len(raw)
    keep = np.ones(n_read, dtype=bool)
    cut_log = []
    if config.cuts:
        # Numeric where possible, so "FLAGS < 4" works on CSV text too.
        cols = {}
        for c in {name for text in config.cuts for name in cut_columns(text)}:
            s = raw[c]
            try:
                cols[c] = _numeric(s, c, label) if s.dtype.kind not in "fiub" else s.to_numpy()
            except InputError:  # a text column: compare it as text
                cols[c] = s.to_numpy()
        for i, text in enumerate(config.cuts):
            try:
                mask = evaluate_cut(text, cols, n_read)
            except (KeyError, ValueError, TypeError) as exc:
                from skysense.errors import ConfigError

                raise ConfigError(
                    f"cannot evaluate {text!r}: {exc}", path=config.path, key=f"cuts[{i}]"
                ) from None
            cut_log.append({"cut": text, "removed": int((keep & ~mask).sum())})
            keep &= mask
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise InputError("no rows left after the cuts", path=label)
    return rows, cut_log


def _identity_columns(
    raw: pd.DataFrame, config: SurveyConfig, rows: np.ndarray, label: str, units: dict
) -> _Columns:
    """Stage "checks", part 2: checked identifiers, positions, position errors, stellarity."""
    survey = config.survey
    c = config.columns
    ra = _numeric(raw[c.ra], c.ra, label)[rows] * _angle_factor(units, c.ra, label, "deg")
    dec = _numeric(raw[c.dec], c.dec, label)[rows] * _angle_factor(units, c.dec, label, "deg")
    check_positions(ra, dec, ra_range=True, path=label, columns=(c.ra, c.dec), rows=rows)
    ids = raw[c.id].iloc[rows].reset_index(drop=True)
    if ids.isna().any():
        i = _first(ids.isna().to_numpy())
        raise InputError("identifier is missing", path=label, column=c.id, row=int(rows[i]))
    dup = ids.duplicated().to_numpy()
    if dup.any():
        i = _first(dup)
        raise InputError(
            f"identifier {ids.iloc[i]!r} is not unique", path=label, column=c.id, row=int(rows[i])
        )
    cols = _Columns(
        values={f"{survey}_id": ids.to_numpy(), f"{survey}_ra": ra, f"{survey}_dec": dec},
        units={f"{survey}_ra": "deg", f"{survey}_dec": "deg"},
        desc={
            f"{survey}_id": f"{survey} identifier",
            f"{survey}_ra": f"{survey} right ascension (astrometry corrected)",
            f"{survey}_dec": f"{survey} declination (astrometry corrected)",
        },
    )
    if c.position_error is not None or config.position_error_arcsec is not None:
        name = f"{survey}_poserr_arcsec"
        if c.position_error is not None:
            factor = _angle_factor(units, c.position_error, label, "arcsec")
            cols.values[name] = (
                _numeric(raw[c.position_error], c.position_error, label)[rows] * factor
            )
        else:
            cols.values[name] = np.full(len(rows), float(config.position_error_arcsec))
        cols.units[name] = "arcsec"
        cols.desc[name] = "1-sigma position error"
    if c.stellarity is not None:
        st = _numeric(raw[c.stellarity], c.stellarity, label)[rows]
        bad = np.isfinite(st) & ((st < 0) | (st > 1))
        if bad.any():
            i = _first(bad)
            raise InputError(
                f"stellarity {st[i]!r} outside [0, 1]",
                path=label,
                column=c.stellarity,
                row=int(rows[i]),
            )
        cols.values["stellarity"] = st
        cols.desc["stellarity"] = "0 extended .. 1 point-like"
    _shape(raw, c, rows, label, units, cols)
    return cols


def _shape(raw, c, rows: np.ndarray, label: str, units: dict, cols: _Columns) -> None:
    """Stage "checks", part 3: size and shape columns in HELP names (DMU 3)."""
    from skysense.catalog.morphology import SHAPE_DESCRIPTIONS, SHAPE_UNITS, shape_columns

    keys = ("r_half", "axis_ratio", "ellipticity", "pa")
    named = {k: getattr(c, k) for k in keys if getattr(c, k) is not None}
    if not named:
        return
    vals = {k: _numeric(raw[col], col, label)[rows] for k, col in named.items()}
    if "r_half" in vals:
        vals["r_half"] = vals["r_half"] * _angle_factor(units, named["r_half"], label, "arcsec")
    if "pa" in vals:
        vals["pa"] = vals["pa"] * _angle_factor(units, named["pa"], label, "deg")
    shapes = shape_columns(
        vals.get("r_half"), vals.get("axis_ratio"), vals.get("ellipticity"), vals.get("pa"),
        names=named, rows=rows, path=label,
    )  # fmt: skip
    for name, v in shapes.items():
        cols.values[name] = v
        cols.units[name] = SHAPE_UNITS[name]
        cols.desc[name] = SHAPE_DESCRIPTIONS[name]


def _photometry_columns(
    raw: pd.DataFrame,
    config: SurveyConfig,
    rows: np.ndarray,
    label: str,
    units: dict,
    cols: _Columns,
) -> None:
    """Stage "photometry": HELP magnitude, flux and flag columns of every band (into ``cols``)."""
    out = cols.values
    for band in config.bands:
        b = band.name
        # Total, then aperture, measurement: from the magnitude columns when configured,
        # else from the flux columns.
        tot = _band_measure(raw, rows, band, "mag" if band.mag else "flux", label, units)
        ap = None
        if band.has_aperture:
            key = "mag_ap" if band.mag_ap else "flux_ap"
            ap = _band_measure(raw, rows, band, key, label, units)
        flag = tot[4].copy()
        if ap is not None:
            flag |= ap[4]
        if band.flag is not None:
            survey_flag = _numeric(raw[band.flag], band.flag, label)[rows]
            flag |= np.nan_to_num(survey_flag) != 0
        m, merr, f, ferr = tot[:4]
        if ap is not None:
            m_ap, merr_ap, f_ap, ferr_ap = ap[:4]
        out[f"m_{b}"], out[f"merr_{b}"] = m, merr
        if ap is not None:
            out[f"m_ap_{b}"], out[f"merr_ap_{b}"] = m_ap, merr_ap
        out[f"f_{b}"], out[f"ferr_{b}"] = f, ferr
        if ap is not None:
            out[f"f_ap_{b}"], out[f"ferr_ap_{b}"] = f_ap, ferr_ap
        out[f"flag_{b}"] = flag
        for pre in ("m_", "merr_", "m_ap_", "merr_ap_"):
            cols.units[f"{pre}{b}"] = "mag"
        for pre in ("f_", "ferr_", "f_ap_", "ferr_ap_"):
            cols.units[f"{pre}{b}"] = "uJy"
        cols.desc.update(
            {
                f"m_{b}": f"total magnitude {b} (AB)",
                f"merr_{b}": f"error on the total magnitude {b}",
                f"m_ap_{b}": f"aperture magnitude {b} (AB, aperture corrected)",
                f"merr_ap_{b}": f"error on the aperture magnitude {b}",
                f"f_{b}": f"total flux {b}",
                f"ferr_{b}": f"error on the total flux {b}",
                f"f_ap_{b}": f"aperture flux {b} (aperture corrected)",
                f"ferr_ap_{b}": f"error on the aperture flux {b}",
                f"flag_{b}": f"photometry of {b} flagged (survey flag or invalid error)",
            }
        )


def _remove_duplicates(table: pd.DataFrame, config: SurveyConfig, cols: _Columns):
    """Stage "duplicates": keep the best row of each group; returns (table, DedupeResult)."""
    survey = config.survey
    bands = [bc.name for bc in config.bands]
    ra = table[f"{survey}_ra"].to_numpy()
    dec = table[f"{survey}_dec"].to_numpy()
    dd = dedupe(ra, dec, snr_score(table, bands), config.dedupe_radius_arcsec)
    table["flag_cleaned"] = dd.flag_cleaned
    table = table[dd.keep].reset_index(drop=True)
    cols.desc["flag_cleaned"] = "kept as the best of a group of duplicate detections"
    return table, dd


def _reference_positions(ref: pd.DataFrame, epoch: float | None):
    """Reference positions (deg), moved to the survey's epoch when it has one."""
    if epoch is None:
        return ref["ra"].to_numpy(), ref["dec"].to_numpy(), False
    # Each reference row moves from its own epoch to the survey's.
    ref_ra, ref_dec = np.empty(len(ref)), np.empty(len(ref))
    for ref_epoch in np.unique(ref["ref_epoch"].to_numpy()):
        sel = ref["ref_epoch"].to_numpy() == ref_epoch
        ref_ra[sel], ref_dec[sel] = propagate_positions(
            ref["ra"].to_numpy()[sel],
            ref["dec"].to_numpy()[sel],
            ref["pmra"].to_numpy()[sel],
            ref["pmdec"].to_numpy()[sel],
            float(ref_epoch),
            epoch,
        )
    return ref_ra, ref_dec, True


def _astrometry_step(
    table: pd.DataFrame,
    config: SurveyConfig,
    reference: pd.DataFrame | None,
    star_mask_law: StarMaskLaw,
    cols: _Columns,
    provenance: dict,
) -> dict:
    """Stage "astrometry": offset to the reference, then ``flag_gaia`` and ``flag_starmask``.

    Modifies ``table`` (positions, flags) and ``provenance`` in place; returns the matched
    offsets before and after the correction (for the plots).
    """
    if reference is None:
        provenance["astrometry"] = None
        return {}
    survey = config.survey
    ra_t = table[f"{survey}_ra"].to_numpy()
    dec_t = table[f"{survey}_dec"].to_numpy()
    ref = check_reference(reference, "reference")
    ref_ra, ref_dec, propagated = _reference_positions(ref, config.epoch)
    radius = config.astrometry_radius_arcsec
    off = measure_offset(ra_t, dec_t, ref_ra, ref_dec, radius)
    _, _, b_ra, b_dec = match_offsets(ra_t, dec_t, ref_ra, ref_dec, radius)
    applied = bool(np.isfinite(off.dra_err_arcsec))
    if applied:
        ra_t, dec_t = apply_offset(ra_t, dec_t, off.dra_cosdec_arcsec, off.ddec_arcsec)
        table[f"{survey}_ra"], table[f"{survey}_dec"] = ra_t, dec_t
    _, _, a_ra, a_dec = match_offsets(ra_t, dec_t, ref_ra, ref_dec, radius)
    provenance["astrometry"] = {
        **{
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in off._asdict().items()
        },
        "applied": applied,
        "reference_propagated_to_epoch": config.epoch if propagated else None,
        "median_after_arcsec": [float(np.median(a_ra)), float(np.median(a_dec))]
        if len(a_ra)
        else None,
    }
    table["flag_gaia"] = gaia_flag(ra_t, dec_t, ref_ra, ref_dec)
    cols.desc["flag_gaia"] = "3/2/1: reference star within 0.6/1.5/2 arcsec; 0: none"
    if "phot_g_mean_mag" in ref:
        table["flag_starmask"] = star_mask(
            ra_t, dec_t, ref_ra, ref_dec, ref["phot_g_mean_mag"].to_numpy(), star_mask_law
        )
        cols.desc["flag_starmask"] = "inside the mask hole of a bright reference star"
        provenance["star_mask"] = star_mask_law._asdict()
    provenance["reference"] = {"n_rows": len(ref)}
    provenance["counts"]["flag_gaia"] = {
        str(k): int((table["flag_gaia"] == k).sum()) for k in (0, 1, 2, 3)
    }
    return {"before": (b_ra, b_dec), "after": (a_ra, a_dec)}


def prepare_table(
    raw: pd.DataFrame,
    config: SurveyConfig,
    *,
    reference: pd.DataFrame | None = None,
    moc_order: int = 10,
    star_mask_law: StarMaskLaw = StarMaskLaw(),
    file_label: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> PreparedSurvey:
    """Prepare one pristine catalogue (already read) according to ``config``.

    The stages (:data:`STAGES`) run in order: checks (columns, cuts, identifiers,
    positions), photometry, duplicates, astrometry (with the star flags), aperture, moc.

    Parameters
    ----------
    raw : DataFrame
        The pristine catalogue (``attrs["units"]`` is used to check units).
    config : SurveyConfig
    reference : DataFrame, optional
        Gaia-like reference (see :func:`read_reference`); enables the astrometric correction,
        ``flag_gaia`` and ``flag_starmask``.
    moc_order : int
        HEALPix order of the coverage MOC.
    star_mask_law : StarMaskLaw
        Bright-star hole radii.
    file_label : str, optional
        How to name the catalogue in errors (default: the configured file).
    progress : callable, optional
        Called with the name of each finished stage (:data:`STAGES`), e.g. to drive a bar.

    Returns
    -------
    PreparedSurvey

    Raises
    ------
    InputError, ConfigError
        Bad configuration or data, naming file, column and row.
    """
    label = file_label or str(config.file_path)

    def _done(stage: str) -> None:
        if progress is not None:
            progress(stage)

    raw = raw.reset_index(drop=True)
    units = raw.attrs.get("units", {})
    if len(raw) == 0:
        raise InputError("the catalogue is empty", path=label)
    check_columns(config, raw.columns, file_label=Path(label).name)
    rows, cut_log = _apply_cuts(raw, config, label)
    cols = _identity_columns(raw, config, rows, label, units)
    _done("checks")

    _photometry_columns(raw, config, rows, label, units, cols)
    table = pd.DataFrame(cols.values)
    _done("photometry")

    n_after_cuts = len(table)
    table, dd = _remove_duplicates(table, config, cols)
    _done("duplicates")

    provenance: dict = {
        "survey": config.survey,
        "config_file": None if config.path is None else str(config.path),
        "config": config.to_dict(),
        "input": {"file": str(config.file_path), "format": config.file_format},
        "counts": {
            "read": len(raw),
            "after_cuts": n_after_cuts,
            "duplicates_removed": dd.n_removed,
            "flag_cleaned": int(table["flag_cleaned"].sum()),
        },
        "cuts": cut_log,
        "dedupe": {
            "radius_arcsec": config.dedupe_radius_arcsec,
            "score": "combined S/N sqrt(sum_b (f_b/ferr_b)^2), ties to the earlier row",
        },
    }
    pairs = _astrometry_step(table, config, reference, star_mask_law, cols, provenance)
    _done("astrometry")

    provenance["aperture_corrections"] = _aperture_step(table, config)
    _done("aperture")

    moc = coverage_moc(
        table[f"{config.survey}_ra"].to_numpy(), table[f"{config.survey}_dec"].to_numpy(), moc_order
    )
    _done("moc")
    provenance["moc"] = {"order": moc_order, "area_deg2": moc_area_deg2(moc)}
    provenance["counts"]["final"] = len(table)
    provenance["versions"] = _versions()
    provenance["created_utc"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    table.attrs["units"] = {k: v for k, v in cols.units.items() if k in table}
    table.attrs["descriptions"] = {k: v for k, v in cols.desc.items() if k in table}
    return PreparedSurvey(table, moc, provenance, pairs)


def _aperture_step(table: pd.DataFrame, config: SurveyConfig) -> dict:
    """Measure (or take from the configuration) and apply each band's aperture correction.

    Stars are ``stellarity >= stellarity_min`` or, without a stellarity column, the sources
    with a reference star within 0.6 arcsec (``flag_gaia == 3``). Runs after duplicate
    removal so that deblending fragments do not enter the curve of growth. Modifies ``table``
    in place (``m_ap_``, ``f_ap_``, ``ferr_ap_``) and returns the record per band.
    """
    log: dict[str, dict] = {}
    if "stellarity" in table:
        stellarity = table["stellarity"].to_numpy(dtype=float)
        selection = "stellarity"
    elif "flag_gaia" in table:
        stellarity = (table["flag_gaia"].to_numpy() == 3).astype(float)
        selection = "flag_gaia == 3 (no stellarity column)"
    else:
        stellarity, selection = None, None
    for band in config.bands:
        if not band.has_aperture:
            continue
        b = band.name
        record: dict = {"applied": False}
        if band.aperture_correction is not None:
            record = {"value_mag": band.aperture_correction, "source": "configuration"}
        elif config.aperture is None:
            record["reason"] = "disabled in the configuration"
        elif stellarity is None:
            record["reason"] = "no stellarity column and no reference to select stars"
        else:
            s = config.aperture
            stellarity_min = s.stellarity_min if selection == "stellarity" else 0.5
            res = aperture_correction(
                table[f"m_{b}"].to_numpy(),
                table[f"m_ap_{b}"].to_numpy(),
                stellarity,
                stellarity_min=stellarity_min,
                mag_min=s.mag_min,
                mag_max=s.mag_max,
                nsigma=s.nsigma,
            )
            record = {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in res._asdict().items()
            }
            record["source"] = "measured"
            record["stars"] = selection
            record["stellarity_min"] = stellarity_min
            record["curve"] = star_curve(
                table[f"m_{b}"].to_numpy(),
                table[f"m_ap_{b}"].to_numpy(),
                stellarity,
                stellarity_min=stellarity_min,
            )
            if not np.isfinite(res.value_mag):
                record["reason"] = f"only {res.n_stars} stars"
        value = record.get("value_mag")
        if value is not None and record.get("reason") is None:
            table[f"m_ap_{b}"] = table[f"m_ap_{b}"] + value
            scale = 10.0 ** (-0.4 * value)
            table[f"f_ap_{b}"] = table[f"f_ap_{b}"] * scale
            table[f"ferr_ap_{b}"] = table[f"ferr_ap_{b}"] * scale
            record["applied"] = True
        log[b] = record
    return log
