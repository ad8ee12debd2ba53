"""Pristine survey catalogues, as the surveys deliver them, and the Gaia-like reference.

Each survey (a :class:`SurveySpec`) sees the sky through its own footprint, depth, astrometry and
conventions:

* **Coverage**: a sub-square of the field (fractions of the side, in the tangent plane).
* **Epoch**: stars are observed where their proper motion has taken them at the survey epoch.
* **Astrometry**: catalogue position = true position at the epoch + a systematic offset
  (``offset_ra_arcsec`` along ra cos dec, ``offset_dec_arcsec``) + Gaussian scatter of
  ``pos_sigma_arcsec`` per coordinate.
* **Photometry**: background-limited flux noise sigma_f = f_5sigma / 5 (from the 5-sigma depth)
  with a 1 % calibration floor; magnitude error 1.0857 sigma_f / f. An object is catalogued
  when its measured flux in the detection band reaches 5 sigma.
* **Total and aperture photometry**: the total flux is unbiased; the aperture flux of a point
  source is 10^(-0.4 apcorr) of the total (``aperture_correction_mag``, constant: a flat curve
  of growth for stars) and galaxies lose more, by 1 / (1 + (r_half / r_ap)^2); the aperture flux
  has 0.6 times the total's noise (smaller aperture, less sky).
* **Duplicates**: a fraction ``duplicate_fraction`` of objects brighter than ``duplicate_mag``
  in the detection band get a second, spurious detection 0.6-2.0 arcsec away carrying 3-30 % of
  the flux (deblending fragments around bright objects).
* **Missing values**: non-positive magnitudes' fluxes, a random ``missing_fraction`` of the
  measurements per band (both total and aperture; in the detection band such objects are not
  catalogued) and, independently, the same fraction of aperture measurements alone are written
  as the survey's sentinel (``missing_value``; NaN when None). Flux surveys keep negative
  fluxes, as real ones do.
* **Magnitude systems**: AB, or Vega with m_Vega = m_AB - vega_to_ab, or fluxes in uJy.

Everything is recorded in :attr:`SurveyCatalogue.meta` so that tests can check its recovery.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pandas as pd

from skysense._resources import read_toml
from skysense.errors import InputError
from skysense.sim._rng import substream
from skysense.sim.sed import BANDS, VEGA_TO_AB, ab_mag_to_ujy, ujy_to_ab_mag
from skysense.sim.sky import TRUTH_EPOCH, Sky

__all__ = [
    "BandSpec",
    "SurveySpec",
    "SurveyCatalogue",
    "DEFAULT_SURVEYS",
    "select_surveys",
    "make_survey_catalogue",
    "make_reference_catalogue",
    "positions_at_epoch",
    "offset_positions",
    "measure_photometry",
    "photometry_columns",
    "survey_config",
]

_MAS_PER_DEG = 3.6e6


@dataclasses.dataclass(frozen=True)
class BandSpec:
    """How a survey measures one band.

    Parameters
    ----------
    band : str
        HELP band name (one of :data:`skysense.sim.sed.BANDS`).
    total, total_err, aperture, aperture_err : str
        Column names of the total and aperture measurement and their errors.
    depth_5sigma_ab : float, AB mag
        Total-flux 5-sigma limit.
    aperture_correction_mag : float, mag
        m_ap - m_total of a point source (> 0: the aperture misses light).
    missing_fraction : float
        Fraction of measurements randomly missing (bad pixels, masks).
    """

    band: str
    total: str
    total_err: str
    aperture: str
    aperture_err: str
    depth_5sigma_ab: float
    aperture_correction_mag: float
    missing_fraction: float = 0.01


@dataclasses.dataclass(frozen=True)
class SurveySpec:
    """A simulated survey: footprint, depth, astrometry, conventions and file format.

    Parameters
    ----------
    name : str
        Short survey name ([a-z0-9_]+); also the file stem.
    format : {"fits", "csv", "parquet"}
    epoch : float, decimal year
    coverage : (x0, x1, y0, y1)
        Footprint as fractions of the field side (x along ra, east = 1; y along dec).
    id_column, ra_column, dec_column : str
    stellarity_column : str or None
    id_style : {"int", "bigint", "str"}
        Sequential ints, large survey-style ints or string names.
    pos_sigma_arcsec : float, arcsec
        Gaussian positional scatter per coordinate.
    offset_ra_arcsec, offset_dec_arcsec : float, arcsec
        Systematic astrometric offset (ra offset measured along ra cos dec).
    photometry : {"AB", "Vega", "flux"}
        Magnitudes (AB or Vega) or fluxes in uJy.
    bands : tuple of BandSpec
    detection_band : str
    missing_value : float or None
        Sentinel for missing measurements (None: NaN).
    aperture_radius_arcsec : float, arcsec
    duplicate_mag, duplicate_fraction : float
        Objects brighter than ``duplicate_mag`` (AB, detection band) get a spurious second
        detection with probability ``duplicate_fraction``.
    shape_columns : (str, str, str), optional
        Columns of the measured radius (arcsec), axis ratio (or ellipticity, see
        ``shape_kind``) and PA (deg east of north) (:mod:`skysense.sim.shapes`); None: none.
    shape_kind : {"axis_ratio", "ellipticity"}
    seeing_fwhm_arcsec : float, arcsec
        Seeing of the shape measurement.
    """

    name: str
    format: str
    epoch: float
    coverage: tuple[float, float, float, float]
    id_column: str
    ra_column: str
    dec_column: str
    stellarity_column: str | None
    id_style: str
    pos_sigma_arcsec: float
    offset_ra_arcsec: float
    offset_dec_arcsec: float
    photometry: str
    bands: tuple[BandSpec, ...]
    detection_band: str
    missing_value: float | None = None
    aperture_radius_arcsec: float = 1.0
    duplicate_mag: float = 18.5
    duplicate_fraction: float = 0.3
    shape_columns: tuple[str, str, str] | None = None
    shape_kind: str = "axis_ratio"
    seeing_fwhm_arcsec: float = 0.8

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.format}"

    def validate(self) -> None:
        """Raise :class:`InputError` on an inconsistent specification."""
        if not self.name or not all(c.isdigit() or c == "_" or "a" <= c <= "z" for c in self.name):
            raise InputError(f"survey name must match [a-z0-9_]+, got {self.name!r}")
        if self.format not in ("fits", "csv", "parquet"):
            raise InputError(
                f"survey {self.name}: format must be fits|csv|parquet, not {self.format!r}"
            )
        if self.photometry not in ("AB", "Vega", "flux"):
            raise InputError(f"survey {self.name}: photometry must be AB|Vega|flux")
        x0, x1, y0, y1 = self.coverage
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            raise InputError(f"survey {self.name}: coverage must be 0 <= x0 < x1 <= 1 (same y)")
        names = [b.band for b in self.bands]
        for band in names:
            if band not in BANDS:
                raise InputError(f"survey {self.name}: unknown band {band!r}")
            if self.photometry == "Vega" and band not in VEGA_TO_AB:
                raise InputError(f"survey {self.name}: no Vega->AB offset known for {band!r}")
        if self.detection_band not in names:
            raise InputError(
                f"survey {self.name}: detection band {self.detection_band!r} not measured"
            )
        if self.pos_sigma_arcsec < 0:
            raise InputError(f"survey {self.name}: pos_sigma_arcsec must be >= 0")


DEFAULT_SURVEYS: tuple[SurveySpec, ...]
"""The four simulated surveys (cfhtls, suprime, ukidss, swire), as defined in the package data
file ``sim/data/surveys.toml``; read at first use."""


@functools.cache
def _default_surveys() -> tuple[SurveySpec, ...]:
    return tuple(_survey_spec(rec) for rec in read_toml("skysense.sim", "surveys.toml")["survey"])


def _survey_spec(rec: dict) -> SurveySpec:
    """A :class:`SurveySpec` from one ``[[survey]]`` record (TOML arrays become tuples; an
    absent ``stellarity_column`` is None)."""
    fields = {**rec, "stellarity_column": rec.get("stellarity_column")}
    fields["coverage"] = tuple(rec["coverage"])
    fields["bands"] = tuple(BandSpec(**b) for b in rec["bands"])
    if "shape_columns" in rec:
        fields["shape_columns"] = tuple(rec["shape_columns"])
    return SurveySpec(**fields)


def __getattr__(name: str):
    # DEFAULT_SURVEYS is read from its data file when first asked for, not at import.
    if name == "DEFAULT_SURVEYS":
        return _default_surveys()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclasses.dataclass
class SurveyCatalogue:
    """A simulated survey catalogue.

    Attributes
    ----------
    spec : SurveySpec
    table : pandas.DataFrame
        The catalogue with the survey's own columns, in its delivery order.
    rows : pandas.DataFrame
        Truth for each row: ``survey``, ``source_id`` (str), ``object_id`` (int64),
        ``is_duplicate`` (bool).
    config : dict
        The survey configuration (``file`` relative to the config file).
    meta : dict
        Everything the manifest records: epoch, footprint, astrometric offset and scatter,
        depths, aperture corrections, Vega offsets, sentinels, duplicate count.
    """

    spec: SurveySpec
    table: pd.DataFrame
    rows: pd.DataFrame
    config: dict
    meta: dict


def select_surveys(names, surveys=None) -> tuple[SurveySpec, ...]:
    """The surveys called ``names``, in that order.

    Parameters
    ----------
    names : iterable of str
    surveys : sequence of SurveySpec, optional
        Where to look (default :data:`DEFAULT_SURVEYS`).

    Raises
    ------
    InputError
        An unknown name (all of them are listed, with the known ones).
    """
    known = {s.name: s for s in (_default_surveys() if surveys is None else surveys)}
    names = list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown survey(s) {unknown}; known: {sorted(known)}")
    return tuple(known[n] for n in names)


def positions_at_epoch(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    pmra_mas_yr: np.ndarray,
    pmdec_mas_yr: np.ndarray,
    epoch: float,
    ref_epoch: float = TRUTH_EPOCH,
) -> tuple[np.ndarray, np.ndarray]:
    """Propagate positions linearly by proper motion from ``ref_epoch`` to ``epoch``.

    Parameters
    ----------
    ra_deg, dec_deg : ndarray (n,), deg
    pmra_mas_yr, pmdec_mas_yr : ndarray (n,), mas/yr (pmra includes cos dec)
    epoch, ref_epoch : float, decimal years

    Returns
    -------
    ra, dec : ndarray (n,), deg (ra wrapped to [0, 360))
    """
    dt = float(epoch) - float(ref_epoch)
    dec = np.asarray(dec_deg, dtype=float) + np.asarray(pmdec_mas_yr) * dt / _MAS_PER_DEG
    cosd = np.cos(np.radians(np.asarray(dec_deg, dtype=float)))
    ra = np.asarray(ra_deg, dtype=float) + np.asarray(pmra_mas_yr) * dt / _MAS_PER_DEG / cosd
    return np.mod(ra, 360.0), dec


def offset_positions(ra, dec, dx_arcsec, dy_arcsec):
    """Shift positions (deg) by ``dx_arcsec`` along ra cos dec and ``dy_arcsec`` in dec;
    returns (ra wrapped to [0, 360), dec), deg."""
    dec_new = dec + dy_arcsec / 3600.0
    ra_new = ra + dx_arcsec / 3600.0 / np.cos(np.radians(dec))
    return np.mod(ra_new, 360.0), dec_new


def _make_ids(spec: SurveySpec, n: int, rng: np.random.Generator) -> np.ndarray:
    if spec.id_style == "int":
        return np.arange(1, n + 1, dtype=np.int64)
    if spec.id_style == "bigint":
        base = int(rng.integers(10**11, 9 * 10**11)) * 10**6
        return base + np.arange(n, dtype=np.int64) * 7 + 1
    width = max(6, len(str(n)))
    return np.array([f"{spec.name.upper()}-{k:0{width}d}" for k in range(1, n + 1)], dtype=object)


def make_survey_catalogue(
    sky: Sky, spec: SurveySpec, *, seed: int | None = None
) -> SurveyCatalogue:
    """Observe ``sky`` with survey ``spec``.

    Parameters
    ----------
    sky : Sky
    spec : SurveySpec
    seed : int, optional
        Field seed (default ``sky.seed``); the survey draws from its own sub-stream
        ``survey.<name>``, so other surveys do not change when this one does.

    Returns
    -------
    SurveyCatalogue

    Raises
    ------
    InputError
        When ``spec`` is inconsistent.
    """
    spec.validate()
    rng = substream(sky.seed if seed is None else seed, f"survey.{spec.name}")
    gal, star = sky.galaxies, sky.stars
    obj = pd.DataFrame(
        {
            "object_id": np.concatenate([gal.object_id.to_numpy(), star.object_id.to_numpy()]),
            "ra": np.concatenate([gal.ra.to_numpy(), star.ra.to_numpy()]),
            "dec": np.concatenate([gal.dec.to_numpy(), star.dec.to_numpy()]),
            "pmra": np.concatenate([gal.pmra.to_numpy(), star.pmra.to_numpy()]),
            "pmdec": np.concatenate([gal.pmdec.to_numpy(), star.pmdec.to_numpy()]),
            "is_star": np.concatenate([np.zeros(len(gal), bool), np.ones(len(star), bool)]),
            "r_half": np.concatenate([gal.r_half_arcsec.to_numpy(), np.zeros(len(star))]),
        }
    )
    for b in spec.bands:
        obj[b.band] = np.concatenate(
            [gal[f"f_{b.band}"].to_numpy(), star[f"f_{b.band}"].to_numpy()]
        )
    ra_e, dec_e = positions_at_epoch(obj.ra, obj.dec, obj.pmra, obj.pmdec, spec.epoch)
    inside = sky.geometry.contains(ra_e, dec_e, spec.coverage)
    obj = obj[inside].reset_index(drop=True)
    ra_e, dec_e = ra_e[inside], dec_e[inside]

    # Spurious second detections near bright objects: flux fractions and offsets.
    det_mag = ujy_to_ab_mag(obj[spec.detection_band].to_numpy())
    bright = np.nan_to_num(det_mag, nan=99.0) < spec.duplicate_mag
    dup = bright & (rng.uniform(size=len(obj)) < spec.duplicate_fraction)
    parents = np.flatnonzero(dup)
    frac = rng.uniform(0.03, 0.3, parents.size)
    sep = rng.uniform(0.6, 2.0, parents.size)
    angle = rng.uniform(0.0, 2.0 * math.pi, parents.size)
    dup_ra, dup_dec = offset_positions(
        ra_e[parents], dec_e[parents], sep * np.sin(angle), sep * np.cos(angle)
    )
    cand = pd.DataFrame(
        {
            "object_id": np.concatenate(
                [obj.object_id.to_numpy(), obj.object_id.to_numpy()[parents]]
            ),
            "is_duplicate": np.concatenate([np.zeros(len(obj), bool), np.ones(parents.size, bool)]),
            "is_star": np.concatenate([obj.is_star.to_numpy(), obj.is_star.to_numpy()[parents]]),
            "r_half": np.concatenate([obj.r_half.to_numpy(), np.zeros(parents.size)]),
            "ra": np.concatenate([ra_e, dup_ra]),
            "dec": np.concatenate([dec_e, dup_dec]),
        }
    )
    scale = np.concatenate([np.ones(len(obj)), frac])
    n = len(cand)

    true = {
        b.band: np.concatenate([obj[b.band].to_numpy(), obj[b.band].to_numpy()[parents]]) * scale
        for b in spec.bands
    }
    measured = measure_photometry(spec, true, cand.r_half.to_numpy(), rng)

    det = measured[spec.detection_band]
    keep = (det["total"] >= 5.0 * det["sigma"]) & ~det["lost"]
    # A duplicate exists only if its parent was detected.
    parent_kept = keep[: len(obj)][parents]
    keep[len(obj) :] &= parent_kept
    keep_idx = np.flatnonzero(keep)

    # Astrometry: systematic offset plus Gaussian scatter, drawn for every candidate so the
    # draws do not depend on which objects pass detection.
    dx = spec.offset_ra_arcsec + spec.pos_sigma_arcsec * rng.normal(size=n)
    dy = spec.offset_dec_arcsec + spec.pos_sigma_arcsec * rng.normal(size=n)
    ra_c, dec_c = offset_positions(cand.ra.to_numpy(), cand.dec.to_numpy(), dx, dy)

    # Stellarity: confident at high S/N, drifting to 0.5 near the detection limit.
    snr = det["total"] / det["sigma"]
    conf = np.clip((snr - 5.0) / 45.0, 0.0, 1.0)
    sign = np.where(cand.is_star.to_numpy() & ~cand.is_duplicate.to_numpy(), 1.0, -1.0)
    stellarity = np.clip(0.5 + sign * 0.47 * conf + rng.normal(0.0, 0.05, n), 0.0, 1.0)

    order = keep_idx[np.argsort(ra_c[keep_idx], kind="stable")]
    table = {}
    ids = _make_ids(spec, order.size, rng)
    table[spec.id_column] = ids
    table[spec.ra_column] = ra_c[order]
    table[spec.dec_column] = dec_c[order]
    table.update(photometry_columns(spec, measured, order))
    if spec.stellarity_column is not None:
        table[spec.stellarity_column] = stellarity[order]
    if spec.shape_columns is not None:
        table.update(_shapes(sky, spec, cand, snr, order))
    frame = pd.DataFrame(table)
    rows = pd.DataFrame(
        {
            "survey": pd.Series([spec.name] * order.size, dtype="str"),
            "source_id": pd.Series([str(v) for v in ids], dtype="str"),
            "object_id": cand.object_id.to_numpy()[order].astype(np.int64),
            "is_duplicate": cand.is_duplicate.to_numpy()[order],
        }
    )
    return SurveyCatalogue(
        spec=spec, table=frame, rows=rows, config=survey_config(spec), meta=_meta(spec, sky, rows)
    )


def measure_photometry(
    spec: SurveySpec,
    true_ujy: dict[str, np.ndarray],
    r_half_arcsec: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, dict[str, np.ndarray]]:
    """Measured total and aperture fluxes of ``n`` detections in every band of ``spec``.

    Background-limited noise with a 1 % floor (see the module docstring).

    Parameters
    ----------
    spec : SurveySpec
    true_ujy : dict band -> ndarray (n,), uJy
        True total fluxes.
    r_half_arcsec : ndarray (n,), arcsec
        Half-light radii (0 for point sources).
    rng : numpy.random.Generator
        Draws, per band in order: total noise, aperture noise, loss, aperture-only loss.

    Returns
    -------
    dict band -> {"total", "sigma", "ap", "sigma_ap" (uJy), "lost", "lost_ap" (bool)}
    """
    measured: dict[str, dict[str, np.ndarray]] = {}
    for b in spec.bands:
        true = true_ujy[b.band]
        n = len(true)
        sigma = np.hypot(ab_mag_to_ujy(b.depth_5sigma_ab) / 5.0, 0.01 * true)
        total = true + rng.normal(0.0, 1.0, n) * sigma
        # A point source's aperture holds 10^(-0.4 apcorr) of the light; extended ones less.
        ap_frac = 10.0 ** (-0.4 * b.aperture_correction_mag) / (
            1.0 + (r_half_arcsec / spec.aperture_radius_arcsec) ** 2
        )
        sigma_ap = np.hypot(0.6 * ab_mag_to_ujy(b.depth_5sigma_ab) / 5.0, 0.01 * true * ap_frac)
        ap = true * ap_frac + rng.normal(0.0, 1.0, n) * sigma_ap
        lost = rng.uniform(size=n) < b.missing_fraction
        # Aperture photometry also fails on its own (masked pixels inside the aperture).
        lost_ap = lost | (rng.uniform(size=n) < b.missing_fraction)
        measured[b.band] = {
            "total": total,
            "sigma": sigma,
            "ap": ap,
            "sigma_ap": sigma_ap,
            "lost": lost,
            "lost_ap": lost_ap,
        }
    return measured


def photometry_columns(
    spec: SurveySpec, measured: dict[str, dict[str, np.ndarray]], order: np.ndarray
) -> dict[str, np.ndarray]:
    """The survey's photometry columns (its names, magnitude system and sentinel) of the
    detections ``order`` (indices into :func:`measure_photometry`'s arrays)."""
    table: dict[str, np.ndarray] = {}
    missing = np.nan if spec.missing_value is None else float(spec.missing_value)
    for b in spec.bands:
        m = {k: v[order] for k, v in measured[b.band].items()}
        if spec.photometry == "flux":
            for col, col_err, val, err, lost in (
                (b.total, b.total_err, m["total"], m["sigma"], m["lost"]),
                (b.aperture, b.aperture_err, m["ap"], m["sigma_ap"], m["lost_ap"]),
            ):
                table[col] = np.where(lost, missing, val)
                table[col_err] = np.where(lost, missing, err)
            continue
        offset = VEGA_TO_AB[b.band] if spec.photometry == "Vega" else 0.0
        for col, col_err, val, err, lost in (
            (b.total, b.total_err, m["total"], m["sigma"], m["lost"]),
            (b.aperture, b.aperture_err, m["ap"], m["sigma_ap"], m["lost_ap"]),
        ):
            bad = lost | ~(val > 0)
            mag = ujy_to_ab_mag(np.where(bad, 1.0, val)) - offset
            table[col] = np.where(bad, missing, mag)
            table[col_err] = np.where(bad, missing, 1.0857362 * err / np.where(bad, 1.0, val))
    return table


def _shapes(sky: Sky, spec: SurveySpec, cand: pd.DataFrame, snr, order) -> dict:
    """Measured shape columns of the kept detections (their own random sub-stream, so the
    other columns of the survey do not change with them)."""
    from skysense.sim.shapes import galaxy_shapes, measure_shapes

    rng = substream(sky.seed, f"survey.{spec.name}.shapes")
    oid = cand.object_id.to_numpy()[order]
    star = cand.is_star.to_numpy()[order]
    truth = galaxy_shapes(sky.seed, sky.galaxies.object_id.to_numpy()).set_index("object_id")
    q = truth["axis_ratio"].reindex(oid).fillna(1.0).to_numpy()
    pa = truth["pa_deg"].reindex(oid).fillna(0.0).to_numpy()
    q = np.where(star, 1.0, q)
    m = measure_shapes(cand.r_half.to_numpy()[order], q, pa, snr[order],
                       spec.seeing_fwhm_arcsec, rng)  # fmt: skip
    r_col, q_col, pa_col = spec.shape_columns
    shape = m["axis_ratio"] if spec.shape_kind == "axis_ratio" else 1.0 - m["axis_ratio"]
    return {r_col: m["r_half"], q_col: shape, pa_col: m["pa"]}


def survey_config(spec: SurveySpec) -> dict:
    """The survey configuration of ``spec`` (``file`` relative to the config file)."""
    columns = {"id": spec.id_column, "ra": spec.ra_column, "dec": spec.dec_column}
    if spec.stellarity_column is not None:
        columns["stellarity"] = spec.stellarity_column
    if spec.shape_columns is not None:
        r_col, q_col, pa_col = spec.shape_columns
        columns.update({"r_half": r_col, spec.shape_kind: q_col, "pa": pa_col})
    bands = []
    for b in spec.bands:
        if spec.photometry == "flux":
            entry = {
                "name": b.band,
                "flux": b.total,
                "flux_err": b.total_err,
                "flux_ap": b.aperture,
                "flux_ap_err": b.aperture_err,
                "flux_unit": "uJy",
            }
        else:
            entry = {
                "name": b.band,
                "mag": b.total,
                "mag_err": b.total_err,
                "mag_ap": b.aperture,
                "mag_ap_err": b.aperture_err,
                "system": spec.photometry,
            }
            if spec.photometry == "Vega":
                entry["vega_to_ab"] = VEGA_TO_AB[b.band]
        if spec.missing_value is not None:
            entry["missing"] = [float(spec.missing_value)]
        bands.append(entry)
    return {
        "survey": spec.name,
        "file": spec.file_name,
        "format": spec.format,
        "epoch": float(spec.epoch),
        "columns": columns,
        "position_error_arcsec": float(spec.pos_sigma_arcsec),
        "bands": bands,
        "cuts": [],
    }


def _meta(spec: SurveySpec, sky: Sky, rows: pd.DataFrame) -> dict:
    return {
        "epoch": float(spec.epoch),
        "photometry": spec.photometry,
        "coverage_fraction": [float(c) for c in spec.coverage],
        "coverage_polygon": sky.geometry.polygon(spec.coverage),
        "coverage_deg2": sky.geometry.solid_angle_deg2(spec.coverage),
        "pos_sigma_arcsec": float(spec.pos_sigma_arcsec),
        "offset_ra_arcsec": float(spec.offset_ra_arcsec),
        "offset_dec_arcsec": float(spec.offset_dec_arcsec),
        "detection_band": spec.detection_band,
        "depth_5sigma_ab": {b.band: float(b.depth_5sigma_ab) for b in spec.bands},
        "aperture_correction_mag": {b.band: float(b.aperture_correction_mag) for b in spec.bands},
        "aperture_radius_arcsec": float(spec.aperture_radius_arcsec),
        "vega_to_ab": {
            b.band: (VEGA_TO_AB[b.band] if spec.photometry == "Vega" else 0.0) for b in spec.bands
        },
        "missing_value": spec.missing_value,
        "missing_fraction": {b.band: float(b.missing_fraction) for b in spec.bands},
        "n_duplicates": int(rows.is_duplicate.sum()),
        "duplicate_mag": float(spec.duplicate_mag),
        "columns": {
            "id": spec.id_column,
            "ra": spec.ra_column,
            "dec": spec.dec_column,
            "stellarity": spec.stellarity_column,
        },
    }


def make_reference_catalogue(
    sky: Sky, *, seed: int | None = None, g_limit: float = 20.0, g_bright: float = 3.0
) -> pd.DataFrame:
    """A Gaia-like astrometric reference: the stars with G < ``g_limit``, epoch 2016.0.

    G is the AB magnitude of the geometric mean of the megacam_r and suprime_i fluxes (the
    G band spans both). Position errors grow with G as 0.03 mas 10^(0.22 (G - 15)) (floor 0.01
    mas; ~0.4 mas at G = 20, like Gaia DR3) and proper-motion errors are 1.3 times that in
    mas/yr; the catalogued values are the truth perturbed by those errors.

    Parameters
    ----------
    sky : Sky
    seed : int, optional
        Field seed (default ``sky.seed``); stream ``reference.gaia``.
    g_limit : float, mag
    g_bright : float, mag
        Stars brighter than this are saturated and absent.

    Returns
    -------
    pandas.DataFrame
        source_id (int64), object_id (int64, truth), ra, dec (deg, epoch 2016.0), ra_error,
        dec_error (mas), pmra, pmdec, pmra_error, pmdec_error (mas/yr), phot_g_mean_mag,
        ref_epoch.
    """
    rng = substream(sky.seed if seed is None else seed, "reference.gaia")
    st = sky.stars
    g_mag = ujy_to_ab_mag(np.sqrt(st.f_megacam_r.to_numpy() * st.f_suprime_i.to_numpy()))
    sel = (g_mag < g_limit) & (g_mag > g_bright)
    st = st[sel]
    g_mag = g_mag[sel]
    n = len(st)
    err_mas = np.maximum(0.01, 0.03 * 10.0 ** (0.22 * (g_mag - 15.0)))
    pm_err = 1.3 * err_mas
    dec = st.dec.to_numpy() + err_mas * rng.normal(size=n) / _MAS_PER_DEG
    ra = st.ra.to_numpy() + err_mas * rng.normal(size=n) / _MAS_PER_DEG / np.cos(
        np.radians(st.dec.to_numpy())
    )
    base = int(rng.integers(10**17, 4 * 10**18))
    frame = pd.DataFrame(
        {
            "source_id": base + np.arange(n, dtype=np.int64) * 4099,
            "object_id": st.object_id.to_numpy(),
            "ra": np.mod(ra, 360.0),
            "dec": dec,
            "ra_error": err_mas,
            "dec_error": err_mas,
            "pmra": st.pmra.to_numpy() + pm_err * rng.normal(size=n),
            "pmdec": st.pmdec.to_numpy() + pm_err * rng.normal(size=n),
            "pmra_error": pm_err,
            "pmdec_error": pm_err,
            "phot_g_mean_mag": g_mag,
            "ref_epoch": np.full(n, TRUTH_EPOCH),
        }
    )
    return frame.sort_values("ra", kind="stable").reset_index(drop=True)
