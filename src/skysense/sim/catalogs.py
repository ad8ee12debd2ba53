"""Catalogue-only simulation at scale: pristine survey catalogues straight to HATS, streaming.

For scale tests (HELP's 170 million objects) the field simulator (:mod:`skysense.sim.field`)
is too rich: it draws every SED, renders maps and holds the field in memory. This mode
writes only survey catalogues and their truth, partition by partition, with memory set by
one partition whatever the total size:

* **The sky** is cut into HEALPix cells of order :data:`GEN_ORDER` (0.21 deg^2). The field
  is the ``n_cells`` cells nearest the centre; every cell holds ``n_objects / n_cells``
  objects (the remainder going to the nearest cells) and draws them from its own random
  sub-stream ``catalogs.cell.<pixel>``. Output files group cells into HATS partitions of a
  coarser order; since no draw depends on the grouping, the rows (ordered by
  ``_healpix_29``) are the same for any partition size, scheduler or number of workers.
* **Objects**: galaxies with the i-band counts of :mod:`skysense.sim.sky` down to
  ``mag_limit`` (the default 24.5 gives about 1.4e5 deg^-2, HELP's masterlist density:
  171 million objects over 1270 deg^2) and redshifts from the same law; their colours come
  from a table of the field simulator's SEDs (:mod:`skysense.sim.sed`) for a passive and a
  star-forming galaxy on a redshift grid, plus 0.08 mag of scatter per band. Stars (a
  fraction ``star_density_deg2`` of the density) are black bodies with proper motions.
* **Surveys** (:data:`skysense.sim.surveys.DEFAULT_SURVEYS`) observe the objects as in
  :func:`skysense.sim.surveys.make_survey_catalogue` (epoch, systematic offset and scatter,
  noise, aperture photometry, missing values and sentinels, magnitude systems, spurious
  duplicates near bright objects) plus a fraction ``bad_flux_fraction`` of grossly wrong
  total fluxes (off by a factor 10-1000 in one band). A survey covers the nearest fraction of
  the field's cells equal to the area fraction of its :attr:`SurveySpec.coverage`.
* **Limitation**: a detection whose measured position leaves its generating cell is dropped
  (the neighbour cell is another task), so each survey misses a strip about its offset wide
  (0.1-0.3 arcsec) along cell edges, ~0.05 % of detections; the truth rows record exactly
  what was written.
* **Speed**: the per-row work runs in fused numba kernels (``skysense.sim._catkernels``)
  on random numbers the cell's stream draws in bulk (float32, the precision the outputs
  keep), the tables go to Parquet as Arrow (no pandas), and the workers never import hats
  (the driver names the partition files). Writing (zstd) is about half of a task's time;
  ``manifest.json`` records the tasks' own CPU seconds.

Layout of the output directory (written atomically)::

    catalogues/<survey>/     HATS catalogue of the survey's own columns (+ _healpix_29)
    truth/objects/           HATS: object_id, is_star, ra, dec (epoch 2016.0), z, pmra,
                             pmdec, i_mag, f_<band> (uJy) for every band of the surveys
    truth/rows_<survey>/     HATS, one row per catalogue row (row k is the catalogue's
                             row k): source_id, object_id, is_duplicate, is_bad_flux
    configs/<survey>.yml     survey configuration (skysense.catalog.config)
    manifest.json            parameters, cells, counts, bytes, wall and task CPU seconds
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skysense._atomic import atomic_path
from skysense.catalog.hats_io import ROW_GROUP_ROWS, parquet_write_options, spatial_index
from skysense.errors import InputError
from skysense.photometry import UJY_ZEROPOINT_MAG_3631
from skysense.sim._rng import substream
from skysense.sim.sed import (
    BANDS,
    EFFECTIVE_WAVELENGTH_UM,
    VEGA_TO_AB,
    _dust_lnu_per_lsun,
    _stellar_lnu_per_lsun,
    ab_mag_to_ujy,
    star_band_fluxes_ujy,
)
from skysense.sim.sky import GALAXY_COUNTS, STAR_MAG_RANGE, STAR_SLOPE, TRUTH_EPOCH
from skysense.sim.surveys import DEFAULT_SURVEYS, SurveySpec, survey_config

__all__ = [
    "GEN_ORDER",
    "CatalogSim",
    "field_cells",
    "simulate_cell",
    "write_catalogs",
    "describe_catalogs",
]

#: HEALPix order of the generation cells (0.21 deg^2): the unit of randomness.
GEN_ORDER = 7
_SHIFT = 2 * (29 - GEN_ORDER)
#: Objects per cell at most (object_id = pixel * 2**24 + k).
_ID_STRIDE = 1 << 24


@dataclasses.dataclass(frozen=True)
class CatalogSim:
    """What :func:`write_catalogs` simulates.

    Parameters
    ----------
    n_objects : int
        True objects (galaxies and stars) in the field; the area follows from the density.
    seed : int
    center : (float, float), deg
        Field centre (ra, dec); any position, the poles included.
    mag_limit : float, AB mag
        Faintest galaxy (suprime_i).
    star_density_deg2 : float, deg^-2
        Stars with 14 <= i < 24.
    bad_flux_fraction : float
        Fraction of detections with one grossly wrong total flux.
    surveys : tuple of SurveySpec
    """

    n_objects: int
    seed: int = 0
    center: tuple[float, float] = (150.1, 2.2)
    mag_limit: float = 24.5
    star_density_deg2: float = 3000.0
    bad_flux_fraction: float = 0.002
    surveys: tuple[SurveySpec, ...] = DEFAULT_SURVEYS

    def validate(self) -> None:
        """Raise :class:`InputError` on impossible parameters."""
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.n_objects, (int, np.integer)) or self.n_objects < 1:
            raise InputError(f"n_objects must be a positive integer, got {self.n_objects!r}")
        ra, dec = self.center
        if not (math.isfinite(ra) and math.isfinite(dec) and -90 <= dec <= 90):
            raise InputError(f"center must be (ra, dec) in degrees, got {self.center!r}")
        if not (math.isfinite(self.mag_limit) and 16.0 < self.mag_limit <= 27.0):
            raise InputError(f"mag_limit must be in (16, 27], got {self.mag_limit}")
        if not (math.isfinite(self.star_density_deg2) and self.star_density_deg2 >= 0):
            raise InputError(f"star_density_deg2 must be >= 0, got {self.star_density_deg2}")
        if not 0 <= self.bad_flux_fraction < 1:
            raise InputError(f"bad_flux_fraction must be in [0, 1), got {self.bad_flux_fraction}")
        if not self.surveys:
            raise InputError("at least one survey is needed")
        for s in self.surveys:
            s.validate()

    @property
    def density_deg2(self) -> float:
        """Objects per deg^2 (galaxies brighter than ``mag_limit`` plus stars)."""
        return GALAXY_COUNTS.expected(14.0, self.mag_limit, 1.0) + self.star_density_deg2

    @property
    def bands(self) -> tuple[str, ...]:
        """Every band some survey measures, in :data:`BANDS` order."""
        used = {b.band for s in self.surveys for b in s.bands}
        return tuple(b for b in BANDS if b in used)


def _cell_area_deg2() -> float:
    return 4 * math.pi * (180 / math.pi) ** 2 / (12 * 4**GEN_ORDER)


def field_cells(n_cells: int, center: tuple[float, float]) -> np.ndarray:
    """The ``n_cells`` order-:data:`GEN_ORDER` HEALPix cells nearest ``center`` (deg),
    nearest first (ties by pixel number); int64 (n_cells,)."""
    import astropy.units as u
    import cdshealpix.nested

    total = 12 * 4**GEN_ORDER
    if n_cells > total:
        raise InputError(f"the field needs {n_cells} cells; the sky has {total}")
    ra0, dec0 = (math.radians(float(c)) for c in center)
    radius = math.sqrt(n_cells * _cell_area_deg2() / math.pi) * 1.2 + 1.0
    while True:
        if radius >= 180.0:
            cells = np.arange(total, dtype=np.int64)
        else:
            cells = cdshealpix.nested.cone_search(
                float(center[0]) * u.deg, float(center[1]) * u.deg, radius * u.deg, GEN_ORDER,
                flat=True,
            )[0].astype(np.int64)  # fmt: skip
            cells = np.unique(cells)
        if len(cells) >= n_cells or radius >= 180.0:
            break
        radius *= 1.5
    lon, lat = cdshealpix.nested.healpix_to_lonlat(cells, GEN_ORDER)
    lon, lat = lon.to_value(u.rad), lat.to_value(u.rad)
    cos_sep = np.sin(dec0) * np.sin(lat) + np.cos(dec0) * np.cos(lat) * np.cos(lon - ra0)
    # Distance first, pixel number on ties (np.lexsort sorts by the last key first).
    order = np.lexsort((cells, -np.round(cos_sep, 12)))
    return cells[order[:n_cells]]


@functools.lru_cache(maxsize=4)
def _colour_table(bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m_band - m_i of a passive and a star-forming galaxy on a redshift grid.

    The SEDs of :func:`skysense.sim.sed.galaxy_band_fluxes_ujy` without its distance factor,
    which is common to all bands and cancels in colours (and would import astropy's
    cosmology into every worker).

    Returns (z grid (m,), passive (bands, m), star forming (bands, m)), AB mag.
    """
    z = np.linspace(0.01, 6.0, 300)[:, None]
    lam = np.array([EFFECTIVE_WAVELENGTH_UM[b] for b in (*bands, "suprime_i")])[None, :]
    t_dust = 26.0 + 4.0 * np.minimum(z, 3.0)
    out = []
    for d4000, young, ratio in ((1.9, 0.015, 10**-1.3), (1.25, 0.4, 10 ** (-0.42) * (1 + z) ** 2)):
        lam_rest = lam / (1.0 + z)
        ones = np.ones_like(z)
        per_lstar = _stellar_lnu_per_lsun(lam_rest, 4300.0 * ones, d4000 * ones, young * ones, z)
        per_lstar = per_lstar + ratio * _dust_lnu_per_lsun(lam_rest, t_dust, 1.5, 2.0)
        ratio_i = per_lstar[:, :-1] / per_lstar[:, -1:]
        # NaN where a band sees no flux (as ujy_to_ab_mag gives for a non-positive flux).
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(ratio_i > 0, -2.5 * np.log10(ratio_i), np.nan).T)
    return z[:, 0], out[0], out[1]


def _galaxy_counts() -> np.ndarray:
    c = GALAXY_COUNTS
    return np.array([c.n0, c.m0, c.alpha_faint, c.m_break, c.alpha_bright])


def _objects(sim: CatalogSim, pixel: int, n: int, rng: np.random.Generator) -> dict:
    """The true objects of one cell (columns as numpy arrays; ``"flux"`` (bands, n) holds
    the true fluxes in uJy of ``sim.bands``)."""
    import cdshealpix.nested

    from skysense.sim import _catkernels as kern

    # Uniform on the sphere: HEALPix is equal-area, so a uniform order-29 sub-pixel is.
    # Drawn sorted, the objects come out in ``_healpix_29`` order (no sort of the table):
    # the order statistics of n uniforms are the partial sums of n + 1 standard exponentials
    # over their total (monotone in floating point too: the sums only grow).
    spacing = np.cumsum(rng.standard_exponential(n + 1))
    sub = (spacing[:-1] * ((1 << _SHIFT) / spacing[-1])).astype(np.int64)
    np.minimum(sub, (1 << _SHIFT) - 1, out=sub)  # a last spacing below rounding
    hpx = (np.int64(pixel) << _SHIFT) | sub
    # One thread: a task per worker core already (cdshealpix's default starts a thread
    # per CPU for every call).
    lon, lat = cdshealpix.nested.healpix_to_lonlat(hpx, 29, num_threads=1)
    ra, dec = lon.to_value("deg"), lat.to_value("deg")
    # Each row is a star with probability frac_star: the number of stars is binomial and the
    # stars a uniformly random subset of the rows (which are in position order).
    is_star = rng.random(n, dtype=np.float32) < sim.star_density_deg2 / sim.density_deg2
    n_star = int(is_star.sum())
    n_gal = n - n_star
    nb = len(sim.bands)
    f32 = np.float32
    # galaxies: magnitudes by the exact inverse of the counts, z ~ z_med/1.412 Gamma(2)^(2/3)
    # (a Gamma(2) deviate is the sum of two standard exponentials)
    i_gal = kern.galaxy_mag_from_uniform(rng.random(n_gal), _galaxy_counts(), 14.0, sim.mag_limit)
    e_gamma = rng.standard_exponential((2, n_gal), dtype=f32)
    u_red = rng.random(n_gal, dtype=f32)
    g_rhalf = rng.standard_normal(n_gal, dtype=f32)
    g_colour = rng.standard_normal((nb, n_gal), dtype=f32)
    # stars
    lo, hi = STAR_MAG_RANGE
    s = STAR_SLOPE * math.log(10.0)
    i_star = (
        np.log(np.exp(s * lo) + rng.uniform(size=n_star) * (np.exp(s * hi) - np.exp(s * lo))) / s
    )
    cool = rng.uniform(size=n_star) < 0.6
    t_eff = np.where(cool, rng.uniform(3200.0, 4200.0, n_star), rng.uniform(4500.0, 6500.0, n_star))
    sigma_pm = np.maximum(2.5, 25.0 * 10.0 ** (-0.15 * (i_star - 14.0)))
    pmra = rng.normal(0.0, 1.0, n_star) * sigma_pm - 1.5
    pmdec = rng.normal(0.0, 1.0, n_star) * sigma_pm - 2.5
    by_band = star_band_fluxes_ujy(i_star, t_eff)
    star_flux = np.array([by_band[b] for b in sim.bands]).reshape(nb, n_star)
    zgrid, passive, forming = _colour_table(sim.bands)
    out = {k: np.empty(n, f32) for k in ("z", "pmra", "pmdec", "i_mag", "r_half")}
    flux = np.empty((nb, n), f32)
    kern.fill_objects(is_star, i_gal, e_gamma, u_red, g_rhalf, g_colour, zgrid, passive,
                      forming, i_star, pmra, pmdec, star_flux, UJY_ZEROPOINT_MAG_3631,
                      out["z"], out["pmra"], out["pmdec"], out["i_mag"], out["r_half"], flux)  # fmt: skip
    return {
        "_healpix_29": hpx,
        "object_id": np.int64(pixel) * _ID_STRIDE + np.arange(n, dtype=np.int64),
        "is_star": is_star,
        "ra": ra,
        "dec": dec,
        **out,
        "flux": flux,
    }


@functools.lru_cache(maxsize=64)
def _survey_constants(spec: SurveySpec, bands: tuple[str, ...]) -> dict:
    """Per-band constants of ``spec``'s measurements (arrays over ``spec.bands``)."""
    depth = ab_mag_to_ujy(np.array([b.depth_5sigma_ab for b in spec.bands])) / 5.0
    vega = spec.photometry == "Vega"
    return {
        "band_rows": np.array([bands.index(b.band) for b in spec.bands], dtype=np.int64),
        "k_det": [b.band for b in spec.bands].index(spec.detection_band),
        "sigma0": depth,
        "sigma0_ap": 0.6 * depth,
        "ap_frac0": 10.0 ** (-0.4 * np.array([b.aperture_correction_mag for b in spec.bands])),
        "missing_fraction": np.array([b.missing_fraction for b in spec.bands]),
        "mag_offset": np.array([VEGA_TO_AB[b.band] if vega else 0.0 for b in spec.bands]),
        "dup_flux": float(ab_mag_to_ujy(spec.duplicate_mag)),
    }


def _observe(sim: CatalogSim, spec: SurveySpec, obj: dict, pixel: int, rng, dtype) -> dict:
    """One survey's detections of a cell's objects: its columns and the truth of each row,
    ordered by ``_healpix_29``.

    The detection band is measured for every candidate; positions and everything else only
    for the detections kept (a survey detects a fraction of the objects, so this is most of
    the saving over measuring everything). Photometry columns are ``dtype``.
    """
    from skysense.sim import _catkernels as kern

    c = _survey_constants(spec, sim.bands)
    k_det, nb = c["k_det"], len(spec.bands)
    f32 = np.float32
    n_obj = len(obj["ra"])
    true_det = obj["flux"][c["band_rows"][k_det]]
    # Spurious duplicates near bright objects.
    bright = np.flatnonzero(true_det > c["dup_flux"])
    parents = bright[rng.random(bright.size) < spec.duplicate_fraction]
    frac = rng.uniform(0.03, 0.3, parents.size)
    sep = rng.uniform(0.6, 2.0, parents.size)
    angle = rng.uniform(0.0, 2.0 * math.pi, parents.size)
    src = np.concatenate([np.arange(n_obj), parents])
    scale = np.concatenate([np.ones(n_obj), frac])
    n = len(src)
    # Grossly wrong total fluxes (blends, cosmic rays, calibration failures) in one band.
    bad_rows = np.flatnonzero(rng.random(n, dtype=f32) < sim.bad_flux_fraction)
    bad_band = np.full(n, -1, dtype=np.int64)
    bad_band[bad_rows] = rng.integers(0, nb, bad_rows.size)
    bad_factor = np.ones(n)
    sign = np.where(rng.random(bad_rows.size) < 0.5, 1.0, -1.0)
    bad_factor[bad_rows] = 10.0 ** (rng.uniform(1.0, 3.0, bad_rows.size) * sign)
    g_total = rng.standard_normal(n, dtype=f32)
    u_lost = rng.random(n, dtype=f32)
    total, sigma, keep = kern.detect(true_det, src, scale, g_total, u_lost, bad_band, bad_factor,
                                     k_det, c["sigma0"][k_det], c["missing_fraction"][k_det])  # fmt: skip
    idx = np.flatnonzero(keep)
    g_pos = rng.standard_normal((2, idx.size), dtype=f32)
    ra_c, dec_c = kern.place(idx, src, n_obj, obj["ra"], obj["dec"], obj["pmra"], obj["pmdec"],
                             spec.epoch - TRUTH_EPOCH, sep, angle, g_pos, spec.offset_ra_arcsec,
                             spec.offset_dec_arcsec, spec.pos_sigma_arcsec)  # fmt: skip
    hpx = spatial_index(ra_c, dec_c, num_threads=1)
    # A detection pushed out of its cell is dropped (see the module docstring).
    inside = np.flatnonzero((hpx >> _SHIFT) == pixel)
    inside = inside[np.argsort(hpx[inside], kind="stable")]
    idx, hpx, ra_c, dec_c = idx[inside], hpx[inside], ra_c[inside], dec_c[inside]
    m = len(idx)
    is_dup = np.zeros(n, bool)
    is_dup[n_obj:] = True
    g_noise = rng.standard_normal((2 * nb, m), dtype=f32)
    u_lost = rng.random((2 * nb, m), dtype=f32)
    stellar = spec.stellarity_column is not None
    cols = np.empty((4 * nb + stellar, m), dtype=dtype)
    missing = np.nan if spec.missing_value is None else float(spec.missing_value)
    kern.photometry(idx, src, is_dup, scale, obj["flux"], c["band_rows"], k_det, obj["r_half"],
                    total, sigma, bad_band, bad_factor, g_noise, u_lost, c["sigma0"],
                    c["sigma0_ap"], c["ap_frac0"], c["missing_fraction"], c["mag_offset"],
                    spec.photometry != "flux", UJY_ZEROPOINT_MAG_3631,
                    spec.aperture_radius_arcsec, obj["is_star"], missing, stellar, cols)  # fmt: skip
    table = {"_healpix_29": hpx, spec.ra_column: ra_c, spec.dec_column: dec_c}
    for k, b in enumerate(spec.bands):
        for j, name in enumerate((b.total, b.total_err, b.aperture, b.aperture_err)):
            table[name] = cols[4 * k + j]
    if stellar:
        table[spec.stellarity_column] = cols[4 * nb]
    truth = {
        "_healpix_29": hpx,
        "object_id": obj["object_id"][src[idx]],
        "is_duplicate": is_dup[idx],
        "is_bad_flux": bad_band[idx] >= 0,
    }
    return {"table": table, "truth": truth, "n": m}


def _ids(spec: SurveySpec, seed: int, pixel: int, n: int) -> pa.Array:
    """Survey identifiers, unique over the field and independent of the partitioning."""
    k = np.arange(n, dtype=np.int64)
    if spec.id_style == "int":
        return pa.array(np.int64(pixel) * _ID_STRIDE + k + 1)
    if spec.id_style == "bigint":
        base = int(substream(seed, f"catalogs.ids.{spec.name}").integers(10**5, 9 * 10**5))
        return pa.array(base * 10**12 + np.int64(pixel) * _ID_STRIDE + k * 7 + 1)
    text = pc.utf8_lpad(pc.cast(pa.array(k + 1), pa.string()), 7, "0")
    return pc.binary_join_element_wise(f"{spec.name.upper()}-{pixel:06d}-", text, "")


def simulate_cell(sim: CatalogSim, pixel: int, n: int, covered: Sequence[bool]) -> dict:
    """Everything one generation cell contributes.

    Parameters
    ----------
    sim : CatalogSim
    pixel : int
        Order-:data:`GEN_ORDER` HEALPix pixel (NESTED).
    n : int
        Objects in the cell.
    covered : sequence of bool
        Whether each survey of ``sim.surveys`` covers the cell.

    Returns
    -------
    dict
        ``"objects"``: pyarrow.Table (truth, by ``_healpix_29``); per survey name,
        ``(catalogue, truth_rows)`` pyarrow Tables (empty when not covered).
    """
    rng = substream(int(sim.seed), f"catalogs.cell.{int(pixel)}")
    obj = _objects(sim, int(pixel), int(n), rng)
    truth = {k: v for k, v in obj.items() if k not in ("r_half", "flux")}
    truth.update((f"f_{b}", obj["flux"][k]) for k, b in enumerate(sim.bands))
    out: dict = {"objects": pa.table(truth)}
    for spec, cov in zip(sim.surveys, covered):
        # Each survey has its own sub-stream: one survey's change leaves the others alone.
        srng = substream(int(sim.seed), f"catalogs.cell.{int(pixel)}.{spec.name}")
        if not cov:
            out[spec.name] = None
            continue
        # Photometry in float32 (7 significant digits, below any simulated error, and half
        # the bytes), except when the survey's sentinel is a number float32 cannot hold
        # exactly (UKIDSS's -999999500): then float64, so that its configuration still names
        # it exactly. Positions are float64 (float32 holds them to only ~1 arcsec).
        miss = spec.missing_value
        keep64 = miss is not None and float(np.float32(miss)) != float(miss)
        seen = _observe(sim, spec, obj, int(pixel), srng, np.float64 if keep64 else np.float32)
        ids = _ids(spec, int(sim.seed), int(pixel), seen["n"])
        table = dict(seen["table"])
        cat = pa.table({"_healpix_29": table.pop("_healpix_29"), spec.id_column: ids, **table})
        truth = dict(seen["truth"])
        rows = pa.table({"_healpix_29": truth.pop("_healpix_29"),
                         "source_id": pc.cast(ids, pa.string()), **truth})  # fmt: skip
        out[spec.name] = (cat, rows)
    return out


class _PartitionWriter:
    """One partition file written cell by cell: row groups of about
    :data:`~skysense.catalog.hats_io.ROW_GROUP_ROWS` rows, so a task holds one cell and one
    row group per output whatever the partition's size; the file appears atomically on
    :meth:`close` (a task re-run after its worker died rewrites it whole)."""

    def __init__(self, stack, path: Path, order: int, pixel: int, unique: Sequence[str] = ()):
        self.stack, self.path, self.order, self.pixel = stack, path, order, pixel
        self.unique = set(unique)
        self.writer = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0  # rows in self.buffer
        self.rows = 0
        self.hist = np.zeros(4 ** (8 - order), dtype=np.int64)

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        hpx = table.column("_healpix_29").to_numpy()
        self.hist += np.bincount((hpx >> (2 * (29 - 8))) - (self.pixel << (2 * (8 - self.order))),
                                 minlength=len(self.hist))  # fmt: skip
        self.rows += table.num_rows
        self.buffer.append(table)
        self.buffered += table.num_rows
        if self.buffered >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        table = pa.concat_tables(self.buffer)
        self.buffer, self.buffered = [], 0
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.stack.enter_context(atomic_path(self.path))
            options = parquet_write_options(table.schema, self.unique)
            self.writer = pq.ParquetWriter(tmp, table.schema, **options)
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()


def _partition_task(sim, order, pixel, cells, counts, covered, files) -> dict:
    """Simulate the cells of one output partition and write its files (``files``: catalogue
    name -> partition file path), cell by cell; returns rows, order-8 histograms and bytes
    written per catalogue, and (``"cpu_s"``) the CPU seconds of the task's thread."""
    import contextlib
    import time

    cpu0 = time.thread_time()
    with contextlib.ExitStack() as stack:
        unique = {f"catalogues/{s.name}": [s.id_column] for s in sim.surveys}
        unique.update((f"truth/rows_{s.name}", ["source_id"]) for s in sim.surveys)
        writers = {k: _PartitionWriter(stack, Path(f), order, pixel, unique.get(k, ()))
                   for k, f in files.items()}  # fmt: skip
        for pixel_c, n, cov in zip(cells, counts, covered):
            res = simulate_cell(sim, pixel_c, n, cov)
            writers["truth/objects"].write(res["objects"])
            for s in sim.surveys:
                if res[s.name] is not None:
                    writers[f"catalogues/{s.name}"].write(res[s.name][0])
                    writers[f"truth/rows_{s.name}"].write(res[s.name][1])
            del res
        for w in writers.values():
            w.close()
    # Sizes once the files are in place (the ExitStack renamed them).
    out: dict = {name: (w.rows, w.hist, w.path.stat().st_size)
                 for name, w in writers.items() if w.rows}  # fmt: skip
    out["cpu_s"] = time.thread_time() - cpu0
    return out


def write_catalogs(
    sim: CatalogSim,
    out_dir: str | os.PathLike,
    *,
    partition_rows: int = 1_000_000,
    scheduler: str | None = None,
    progress: bool = False,
) -> dict:
    """Simulate ``sim`` and write the catalogues, truth and configurations (atomically).

    One Dask task per output partition (:func:`skysense._dask.dask_client`); each writes its
    own files, so memory is that of one partition per worker whatever ``n_objects`` is.

    Parameters
    ----------
    sim : CatalogSim
    out_dir : path-like
        Output directory (replaced only once complete; must be visible to the workers).
    partition_rows : int
        Aim for at most this many objects per output partition (partitions are whole
        generation cells, so at least one cell).
    scheduler : str, optional
        Dask scheduler (None: local threads; an address: a cluster).
    progress : bool
        Progress reports.

    Returns
    -------
    dict
        The manifest (also ``manifest.json``): parameters, area, rows and bytes per catalogue.

    Raises
    ------
    InputError
        Invalid parameters.
    """
    import time

    import dask
    import hats.io
    import yaml
    from hats.pixel_math import HealpixPixel

    from skysense._atomic import atomic_dir
    from skysense._dask import compute_with_progress, dask_client
    from skysense.catalog.hats_io import finalize_hats

    sim.validate()
    if partition_rows < 1:
        raise InputError(f"partition_rows must be >= 1, got {partition_rows}")
    t0 = time.perf_counter()
    n_cells = max(1, math.ceil(sim.n_objects / (sim.density_deg2 * _cell_area_deg2())))
    cells = field_cells(n_cells, sim.center)
    counts = np.full(n_cells, sim.n_objects // n_cells, dtype=np.int64)
    counts[: sim.n_objects % n_cells] += 1
    if counts.max() >= _ID_STRIDE:  # pragma: no cover - needs > 3e6 objects per 0.2 deg^2
        raise InputError("too many objects per cell; lower the density")
    fractions = [
        (s.coverage[1] - s.coverage[0]) * (s.coverage[3] - s.coverage[2]) for s in sim.surveys
    ]
    rank = np.arange(n_cells)
    covered = np.stack([rank < max(1, round(f * n_cells)) for f in fractions], axis=1)
    per_cell = sim.n_objects / n_cells
    k = 0
    while k < GEN_ORDER and per_cell * 4 ** (k + 1) <= partition_rows:
        k += 1
    order = GEN_ORDER - k
    by_pixel = np.argsort(cells, kind="stable")
    parent = cells[by_pixel] >> (2 * k)
    groups = {int(p): by_pixel[parent == p] for p in np.unique(parent)}
    names = ["truth/objects"] + [f"catalogues/{s.name}" for s in sim.surveys]
    names += [f"truth/rows_{s.name}" for s in sim.surveys]
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:

        def files(pix: int) -> dict[str, str]:
            # The partition files' HATS paths, named here: the workers then need not import
            # hats (seconds per worker process).
            return {name: str(hats.io.paths.pixel_catalog_file(tmp / name,
                                                               HealpixPixel(order, pix)).path)
                    for name in names}  # fmt: skip

        # ``sim`` bound in the function: dask walks a dataclass argument field by field.
        task = functools.partial(_partition_task, sim)
        tasks = [
            dask.delayed(task, pure=False)(
                order,
                pix,
                # Arrays, not lists: dask walks lists looking for collections.
                cells[idx],
                counts[idx],
                covered[idx],
                files(pix),
            )  # fmt: skip
            for pix, idx in sorted(groups.items())
        ]
        with dask_client(scheduler) as client:
            results = compute_with_progress(
                tasks, label=f"simulating {len(tasks)} partitions", client=client
            ) if progress else compute_with_progress(tasks, client=client)  # fmt: skip
        summary = {}
        ra_dec = {f"catalogues/{s.name}": (s.ra_column, s.dec_column) for s in sim.surveys}
        for name in names:
            pixels, n_rows, size = [], [], 0
            histogram = np.zeros(12 * 4**8, dtype=np.int64)
            for pix, res in zip(sorted(groups), results):
                if name in res:
                    rows, hist, nbytes = res[name]
                    pixels.append((order, pix))
                    n_rows.append(rows)
                    size += nbytes
                    start = pix << (2 * (8 - order))
                    histogram[start : start + len(hist)] += hist
            if not pixels:
                continue
            ra_col, dec_col = ra_dec.get(name, ("ra", "dec"))
            finalize_hats(tmp / name, pixels, n_rows, histogram, catalog_name=Path(name).name,
                          ra_column=ra_col, dec_column=dec_col)  # fmt: skip
            summary[name] = {"rows": int(sum(n_rows)), "partitions": len(pixels), "bytes": size}
        (tmp / "configs").mkdir()
        for s in sim.surveys:
            # No shape columns are simulated here.
            cfg = survey_config(dataclasses.replace(s, shape_columns=None))
            # The file is a HATS directory (a Parquet dataset); the catalogue's
            # partition-wise readers take it as it is.
            cfg.update(file=f"../catalogues/{s.name}", format="parquet")
            text = yaml.safe_dump(cfg, sort_keys=False)
            (tmp / "configs" / f"{s.name}.yml").write_text(text, encoding="utf-8")
        area = n_cells * _cell_area_deg2()
        manifest = {
            "kind": "skysense.sim.catalogs",
            "n_objects": int(sim.n_objects),
            "seed": int(sim.seed),
            "center": [float(c) for c in sim.center],
            "mag_limit": float(sim.mag_limit),
            "star_density_deg2": float(sim.star_density_deg2),
            "bad_flux_fraction": float(sim.bad_flux_fraction),
            "surveys": [s.name for s in sim.surveys],
            "bands": list(sim.bands),
            "gen_order": GEN_ORDER,
            "partition_order": order,
            "n_cells": n_cells,
            "area_deg2": area,
            "density_deg2": sim.density_deg2,
            "coverage_fraction": {s.name: float(covered[:, j].mean()) for j, s in enumerate(sim.surveys)},
            "catalogues": summary,
            "catalogue_rows": int(sum(v["rows"] for k2, v in summary.items() if k2.startswith("catalogues/"))),
            "bytes": int(sum(v["bytes"] for v in summary.values())),
            "seconds": time.perf_counter() - t0,
            # CPU seconds of the partition tasks (their own threads: simulating and writing),
            # the cost the load average changes least.
            "task_cpu_s": float(sum(r["cpu_s"] for r in results)),
        }  # fmt: skip
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def describe_catalogs(manifest: dict, out_dir: str | os.PathLike) -> str:
    """Lines summarising :func:`write_catalogs`' manifest: objects, area, rows per survey."""
    lines = [
        f"{manifest['n_objects']} objects over {manifest['area_deg2']:.4g} deg^2 "
        f"({manifest['n_cells']} cells) written to {out_dir} in {manifest['seconds']:.1f} s"
    ]
    for name, v in manifest["catalogues"].items():
        if name.startswith("catalogues/"):
            lines.append(
                f"  {name.split('/', 1)[1]}: {v['rows']} rows in {v['partitions']} partitions"
            )
    return "\n".join(lines)
