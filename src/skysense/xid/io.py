"""XID+ inputs and outputs: maps and noise maps, prior catalogues, regions; result files.

Readers validate at the boundary (WCS present, units understood, shapes agree) and convert
maps to mJy/beam; bad pixels (NaN, non-positive noise) are masked, never zero-filled. Every
writer is atomic.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path
from skysense.errors import InputError

__all__ = [
    "SkyMap",
    "read_map",
    "write_map",
    "read_prior",
    "read_moc",
    "read_prf",
    "read_templates",
    "moc_pixel_mask",
    "write_table",
    "write_image",
    "write_png",
    "unit_to_mjy_per_beam",
]

_UNITS = {"jy/beam": 1000.0, "mjy/beam": 1.0, "ujy/beam": 1e-3, "jy/bm": 1000.0, "mjy/bm": 1.0}


def unit_to_mjy_per_beam(unit: str | None, *, path=None) -> float:
    """Factor turning a map in ``unit`` (FITS BUNIT) into mJy/beam.

    Raises
    ------
    InputError
        The unit is missing or not a per-beam flux density (e.g. MJy/sr).
    """
    if unit is None or not str(unit).strip():
        raise InputError(
            "map has no BUNIT; give the unit explicitly (Jy/beam or mJy/beam)", path=path
        )
    key = str(unit).strip().lower().replace(" ", "").replace("beam-1", "/beam")
    if key not in _UNITS:
        raise InputError(
            f"unsupported map unit {unit!r}: XID+ needs a per-beam flux density "
            "(Jy/beam, mJy/beam or uJy/beam)",
            path=path,
        )
    return _UNITS[key]


@dataclasses.dataclass
class SkyMap:
    """One band's map and 1-sigma instrumental noise, in mJy/beam, with its celestial WCS.

    Attributes
    ----------
    band : str
    image_mjy, error_mjy : ndarray (ny, nx), mJy/beam; NaN where not usable
    wcs : astropy.wcs.WCS (celestial)
    fwhm_arcsec : float or None (header key FWHM when present)
    path : str or None
    """

    band: str
    image_mjy: np.ndarray
    error_mjy: np.ndarray
    wcs: object
    fwhm_arcsec: float | None = None
    path: str | None = None

    @property
    def good(self) -> np.ndarray:
        """(ny, nx) bool: finite map and noise with noise > 0."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.image_mjy) & np.isfinite(self.error_mjy) & (self.error_mjy > 0)

    @property
    def pixel_arcsec(self) -> float:
        from astropy.wcs.utils import proj_plane_pixel_scales

        return float(np.mean(proj_plane_pixel_scales(self.wcs)) * 3600.0)


def _pick_hdu(hdul, name: str | None, preferred: str, path) -> int:
    if name is not None:
        try:
            return hdul.index_of(name)
        except KeyError:
            raise InputError(f"no HDU {name!r}", path=path) from None
    for i, h in enumerate(hdul):
        if h.name.upper() == preferred:
            return i
    for i, h in enumerate(hdul):
        if getattr(h, "data", None) is not None and getattr(h.data, "ndim", 0) == 2:
            return i
    raise InputError("no 2-D image HDU", path=path)


def _celestial_wcs(header, path):
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:  # astropy raises several types for broken headers
            raise InputError(f"invalid WCS: {exc}", path=path) from None
    if not wcs.has_celestial or wcs.celestial.naxis != 2:
        raise InputError("map has no celestial WCS (CTYPE RA---/DEC-- keys missing)", path=path)
    return wcs.celestial


def read_map(
    path: str | os.PathLike,
    *,
    band: str,
    noise_path: str | os.PathLike | None = None,
    image_hdu: str | None = None,
    error_hdu: str | None = None,
    unit: str | None = None,
) -> SkyMap:
    """Read a map and its noise map (same grid) into mJy/beam.

    Parameters
    ----------
    path : path
        FITS map. The HDU named ``IMAGE`` is used when present (else the first 2-D HDU).
    band : str
        HELP band name, e.g. ``spire_250``.
    noise_path : path, optional
        FITS noise map; default the ``ERROR`` HDU of ``path``.
    unit : str, optional
        Unit to assume when a file has no BUNIT.

    Raises
    ------
    InputError
        Missing WCS, unknown units, noise on another grid, nothing usable.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.exists():
        raise InputError("map file not found", path=path)
    with fits.open(path) as hdul:
        i = _pick_hdu(hdul, image_hdu, "IMAGE", path)
        hdr = hdul[i].header
        image = np.asarray(hdul[i].data, dtype=float)
        if image.ndim != 2:
            image = np.squeeze(image)
        if image.ndim != 2:
            raise InputError(f"map must be 2-D, got shape {hdul[i].data.shape}", path=path)
        wcs = _celestial_wcs(hdr, path)
        img_unit = hdr.get("BUNIT", unit)
        factor = unit_to_mjy_per_beam(img_unit, path=path)
        fwhm = hdr.get("FWHM")
        if noise_path is None:
            if error_hdu is None and "ERROR" not in [h.name.upper() for h in hdul]:
                raise InputError("no noise map: give noise_path or an ERROR HDU", path=path)
            j = _pick_hdu(hdul, error_hdu or "ERROR", "ERROR", path)
            ehdr = hdul[j].header
            error = np.asarray(hdul[j].data, dtype=float)
            epath = path
    if noise_path is not None:
        epath = Path(noise_path)
        if not epath.exists():
            raise InputError("noise file not found", path=epath)
        with fits.open(epath) as hdul:
            j = _pick_hdu(hdul, error_hdu, "ERROR", epath)
            ehdr = hdul[j].header
            error = np.asarray(hdul[j].data, dtype=float)
    error = np.squeeze(error)
    if error.shape != image.shape:
        raise InputError(
            f"noise map shape {error.shape} differs from the map's {image.shape}", path=epath
        )
    for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
        if key in ehdr and key in hdr and not np.isclose(ehdr[key], hdr[key]):
            raise InputError(f"noise map WCS differs from the map's ({key})", path=epath)
    # a noise HDU without BUNIT shares the map's unit (common for XID+ inputs)
    efactor = unit_to_mjy_per_beam(ehdr.get("BUNIT", img_unit), path=epath)
    out = SkyMap(
        band=band,
        image_mjy=image * factor,
        error_mjy=error * efactor,
        wcs=wcs,
        fwhm_arcsec=None if fwhm is None else float(fwhm),
        path=str(path),
    )
    if not out.good.any():
        raise InputError("map has no usable pixel (all NaN or noise <= 0)", path=path)
    return out


_ID_NAMES = ("help_id", "id", "object_id", "source_id")
_RA_NAMES = ("ra", "ra_deg", "raj2000", "alpha_j2000")
_DEC_NAMES = ("dec", "dec_deg", "dej2000", "decj2000", "delta_j2000")


def _find(columns, wanted, given, what, path):
    if given is not None:
        if given not in columns:
            raise InputError(f"{what} column {given!r} not found", path=path, column=given)
        return given
    low = {c.lower(): c for c in columns}
    for w in wanted:
        if w in low:
            return low[w]
    raise InputError(f"no {what} column (tried {', '.join(wanted)})", path=path)


def read_prior(
    path: str | os.PathLike,
    *,
    id_column: str | None = None,
    ra_column: str | None = None,
    dec_column: str | None = None,
) -> pd.DataFrame:
    """Read a prior catalogue (FITS, VOTable, CSV, ECSV or Parquet).

    Returns a DataFrame with ``id`` (str), ``ra``, ``dec`` (deg) and every other column as
    read (flux bounds ``flux_lower_<band>``/``flux_upper_<band>``, Gaussian priors
    ``flux_mu_<band>``/``flux_sigma_<band>``, redshift ``z``/``z_err`` for the SED mode).

    Raises
    ------
    InputError
        Missing columns, non-finite or out-of-range positions (names the row).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("prior catalogue not found", path=path)
    if path.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(path)
    else:
        from astropy.table import Table

        try:
            table = Table.read(path)
        except Exception as exc:  # astropy's readers raise many types
            raise InputError(f"cannot read prior catalogue: {exc}", path=path) from None
        df = table.to_pandas()
    idc = _find(df.columns, _ID_NAMES, id_column, "id", path)
    rac = _find(df.columns, _RA_NAMES, ra_column, "RA", path)
    dec_ = _find(df.columns, _DEC_NAMES, dec_column, "Dec", path)
    out = df.drop(columns=[idc, rac, dec_])
    out.insert(0, "dec", pd.to_numeric(df[dec_], errors="coerce").astype(float))
    out.insert(0, "ra", pd.to_numeric(df[rac], errors="coerce").astype(float))
    out.insert(0, "id", df[idc].astype(str))
    bad = ~(np.isfinite(out["ra"]) & np.isfinite(out["dec"]) & (np.abs(out["dec"]) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError("non-finite or out-of-range position", path=path, row=i)
    return out.reset_index(drop=True)


def _read_any_table(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{what} not found", path=path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    from astropy.table import Table

    try:
        return Table.read(path).to_pandas()
    except Exception as exc:  # astropy's readers raise many types
        raise InputError(f"cannot read {what}: {exc}", path=path) from None


def read_templates(path: str | os.PathLike, bands=None):
    """Read SED templates for the SED-prior mode (FITS, VOTable, CSV, ECSV or Parquet).

    The table has one row per template and redshift: ``template`` (name), ``z`` and one column
    per band named as the band (``mips_24``, ``spire_250``, ...), holding the template's flux
    in mJy at normalisation N = 0 (the fitted scale is 10^N). Every template must be given on
    the same redshift grid.

    Parameters
    ----------
    path : path
    bands : sequence of str, optional - bands to read (default every band column)

    Returns
    -------
    skysense.xid.sed.SEDTemplates

    Raises
    ------
    InputError
        Missing columns (named), grids that differ between templates, non-positive fluxes.
    """
    from skysense.xid.sed import SEDTemplates

    path = Path(path)
    df = _read_any_table(path, "SED template table")
    low = {c.lower(): c for c in df.columns}
    for need in ("template", "z"):
        if need not in low:
            raise InputError(f"SED template table needs a {need!r} column", path=path, column=need)
    tcol, zcol = low["template"], low["z"]
    if bands is None:
        bands = [c for c in df.columns if c not in (tcol, zcol)]
    missing = [b for b in bands if b.lower() not in low]
    if missing:
        raise InputError(
            f"SED template table has no flux column for band(s) {missing}",
            path=path,
            column=missing[0],
        )
    cols = [low[b.lower()] for b in bands]
    df = df.sort_values([tcol, zcol], kind="stable")
    names = list(dict.fromkeys(df[tcol].astype(str)))
    z_grid = None
    fluxes = []
    for name in names:
        sub = df[df[tcol].astype(str) == name]
        z = sub[zcol].to_numpy(float)
        if z_grid is None:
            z_grid = z
        elif z.shape != z_grid.shape or not np.allclose(z, z_grid):
            raise InputError(
                f"SED template {name!r} is not on the redshift grid of {names[0]!r}",
                path=path,
                column=zcol,
            )
        fluxes.append(sub[cols].to_numpy(float))
    try:
        return SEDTemplates(z_grid, np.stack(fluxes), list(bands))
    except InputError as exc:
        raise InputError(exc.message, path=path) from None


def read_prf(path: str | os.PathLike, *, pixel_arcsec: float | None = None):
    """Read a PRF/PSF image (first 2-D HDU) as a :class:`~skysense.xid.model.PRFBeam`.

    The PRF sampling (arcsec per PRF pixel) is ``pixel_arcsec``, else the header's
    ``PIXSCALE`` (arcsec) or ``CDELT2`` (deg); the source sits at the image centre unless the
    header gives ``CRPIX1``/``CRPIX2`` (1-based).

    Raises
    ------
    InputError
        No image, or no way to know the sampling.
    """
    from astropy.io import fits

    from skysense.xid.model import PRFBeam

    path = Path(path)
    if not path.exists():
        raise InputError("PRF file not found", path=path)
    with fits.open(path) as hdul:
        i = _pick_hdu(hdul, None, "PRF", path)
        hdr = hdul[i].header
        image = np.asarray(hdul[i].data, dtype=float)
    if pixel_arcsec is None:
        if "PIXSCALE" in hdr:
            pixel_arcsec = float(hdr["PIXSCALE"])
        elif "CDELT2" in hdr:
            pixel_arcsec = abs(float(hdr["CDELT2"])) * 3600.0
        else:
            raise InputError("PRF sampling unknown: give pixel_arcsec or a PIXSCALE key", path=path)
    centre = None
    if "CRPIX1" in hdr and "CRPIX2" in hdr:
        centre = (float(hdr["CRPIX1"]) - 1.0, float(hdr["CRPIX2"]) - 1.0)
    try:
        return PRFBeam(image, float(pixel_arcsec), centre)
    except InputError as exc:
        raise InputError(exc.message, path=path) from None


def read_moc(path: str | os.PathLike):
    """Read a MOC (FITS) with mocpy."""
    from mocpy import MOC

    path = Path(path)
    if not path.exists():
        raise InputError("MOC file not found", path=path)
    try:
        return MOC.from_fits(path)
    except Exception as exc:  # mocpy raises ValueError/KeyError/OSError variants
        raise InputError(f"cannot read MOC: {exc}", path=path) from None


def moc_pixel_mask(moc, wcs, shape: tuple[int, int]) -> np.ndarray:
    """(ny, nx) bool: map pixels whose centre lies in ``moc``."""
    import astropy.units as u

    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = wcs.pixel_to_world(xx.ravel(), yy.ravel())
    inside = moc.contains_lonlat(sky.ra.deg * u.deg, sky.dec.deg * u.deg)
    return np.asarray(inside).reshape(shape)


def write_table(df: pd.DataFrame, stem: str | os.PathLike, *, units: dict | None = None) -> list:
    """Write ``df`` as ``<stem>.fits`` and ``<stem>.parquet`` (atomically); returns the paths."""
    from astropy.table import Table

    stem = Path(stem)
    table = Table.from_pandas(df)
    for col, unit in (units or {}).items():
        if col in table.colnames:
            table[col].unit = unit
    fits_path = stem.with_suffix(".fits")
    with atomic_path(fits_path) as tmp:
        table.write(tmp, format="fits")
    pq_path = stem.with_suffix(".parquet")
    with atomic_path(pq_path) as tmp:
        df.to_parquet(tmp, index=False)
    return [fits_path, pq_path]


def write_image(
    image: np.ndarray, wcs, path: str | os.PathLike, *, unit: str = "", band: str = ""
) -> Path:
    """Write a 2-D image with its WCS to FITS, atomically."""
    from astropy.io import fits

    header = wcs.to_header()
    if unit:
        header["BUNIT"] = unit
    if band:
        header["BAND"] = band
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(np.asarray(image, dtype=np.float32), header=header).writeto(tmp)
    return Path(path)


def write_map(sky: SkyMap, path: str | os.PathLike) -> Path:
    """Write a :class:`SkyMap` as FITS that :func:`read_map` reads back, atomically.

    HDUs ``IMAGE`` and ``ERROR`` in mJy/beam with the WCS, and the beam ``FWHM`` (arcsec) when
    known; the arrays keep their dtype.
    """
    from astropy.io import fits

    header = sky.wcs.to_header()
    header["BUNIT"] = "mJy/beam"
    if sky.fwhm_arcsec is not None:
        header["FWHM"] = float(sky.fwhm_arcsec)
    hdus = [
        fits.PrimaryHDU(),
        fits.ImageHDU(sky.image_mjy, header, name="IMAGE"),
        fits.ImageHDU(sky.error_mjy, header, name="ERROR"),
    ]
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return Path(path)


def write_png(
    image: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "",
    cmap: str = "viridis",
    vmin=None,
    vmax=None,
) -> Path:
    """Quick-look PNG of a 2-D image (NaN shown blank), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(image, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)
