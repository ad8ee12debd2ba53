"""Registry of published FITS maps (for SIA v2 discovery and SODA cutouts).

``publish_map`` copies a FITS map into the service's data folder and records its metadata
(band, unit, footprint corners, WCS, pixel scale, ...) as a JSON record of kind ``"map"`` in the
service database (:meth:`Backend.put_record`). The HTTP side only ever opens files named by a
registry record, looked up by the map's id: user input never becomes a path.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from skysense._atomic import atomic_path
from skysense._resources import read_toml
from skysense.errors import InputError
from skysense.vo.settings import Settings

__all__ = [
    "MapInfo",
    "BAND_WAVELENGTHS_M",
    "publish_map",
    "map_info_from_fits",
    "get_map",
    "list_maps",
    "unpublish_map",
    "default_maps_dir",
    "RECORD_KIND",
]

RECORD_KIND = "map"

_MAP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

BAND_WAVELENGTHS_M: dict[str, tuple[float, float]]
"""Bandpass (em_min, em_max) in metres of the HELP band names, for SIA ``BAND`` queries, from the
package data file ``vo/data/instruments.toml`` (read at first use)."""


@functools.cache
def _instruments() -> tuple[dict[str, tuple[float, float]], dict[str, tuple[str, str]]]:
    """(band -> bandpass in metres, camera prefix -> (facility, instrument))."""
    cameras = read_toml("skysense.vo", "instruments.toml")
    bandpass = {
        f"{camera}_{flt}": (lo, hi)
        for camera, entry in cameras.items()
        for flt, (lo, hi) in entry["em_range_m"].items()
    }
    facility = {camera: (e["facility"], e["instrument"]) for camera, e in cameras.items()}
    return bandpass, facility


def __getattr__(name: str):
    # BAND_WAVELENGTHS_M is read from its data file when first asked for, not at import.
    if name == "BAND_WAVELENGTHS_M":
        return _instruments()[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class MapInfo:
    """Metadata of one published map (one registry record).

    Attributes
    ----------
    name : str
        Map id, ``[a-z][a-z0-9_]*``; used in URLs (``ID``) and as the file name.
    path : str
        Absolute path of the service's own copy of the FITS file.
    hdu : str or int
        The main image HDU (name or index).
    extensions : list of str
        Every 2-D image HDU cut by SODA (e.g. ``["IMAGE", "ERROR"]``).
    band, unit : str
        Band name (HELP convention) and pixel unit (``BUNIT``).
    shape : (ny, nx)
        Image size in pixels.
    pixel_arcsec : float
        Pixel scale (geometric mean of the two axes), arcsec.
    fwhm_arcsec : float or None
        Beam FWHM when the header has ``FWHM``, arcsec.
    center_ra, center_dec, radius_deg : float
        Centre of the image and the radius (deg) of a circle enclosing it.
    footprint : list of [ra, dec]
        The four outer image corners (deg), in the order of astropy's ``calc_footprint``.
    wcs_header : str
        The celestial WCS as a FITS header string.
    em_min_m, em_max_m : float or None
        Bandpass in metres, when known.
    size_bytes : int
        File size.
    """

    name: str
    path: str
    hdu: str | int
    extensions: list[str]
    band: str
    unit: str
    shape: tuple[int, int]
    pixel_arcsec: float
    fwhm_arcsec: float | None
    center_ra: float
    center_dec: float
    radius_deg: float
    footprint: list[list[float]]
    wcs_header: str
    description: str = ""
    em_min_m: float | None = None
    em_max_m: float | None = None
    facility: str = ""
    instrument: str = ""
    size_bytes: int = 0
    published: str = ""
    extra: dict = field(default_factory=dict)

    def wcs(self) -> WCS:
        """The celestial WCS of the map."""
        return WCS(fits.Header.fromstring(self.wcs_header))

    def to_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, doc: dict) -> MapInfo:
        doc = dict(doc)
        doc["shape"] = tuple(doc["shape"])
        return cls(**doc)

    @property
    def polygon_deg(self) -> str:
        """The footprint as a DALI 1.1 ``polygon`` value: ``ra1 dec1 ra2 dec2 ...`` (deg).

        Vertices run counter-clockwise as seen on the sky from inside the sphere (east to
        the left), as DALI requires, whatever the orientation of the image axes.
        """
        pts = np.asarray(self.footprint, dtype=float)
        ra, dec = np.radians(pts[:, 0]), np.radians(pts[:, 1])
        v = np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
        # (v0 x v1) . v2 < 0 <=> counter-clockwise seen from inside.
        if np.dot(np.cross(v[0], v[1]), v[2]) > 0:
            pts = pts[::-1]
        return " ".join(f"{a:.7f} {d:.7f}" for a, d in pts)

    @property
    def s_region(self) -> str:
        """The footprint in DALI shape syntax, ``POLYGON ra1 dec1 ...`` (deg; usable as POS)."""
        return "POLYGON " + self.polygon_deg


def default_maps_dir(backend) -> Path:
    """Where ``publish_map`` copies maps: ``<workdir>/maps`` of the backend's database."""
    db = getattr(backend, "path", None) or getattr(backend, "dsn", None)
    if db is None:
        raise InputError("cannot tell where the backend keeps its files; pass data_dir=")
    return Settings(db=str(db)).resolved_workdir / "maps"


def _image_hdus(hdul: fits.HDUList) -> list[int]:
    return [
        i
        for i, h in enumerate(hdul)
        if h.is_image and h.data is not None and getattr(h.data, "ndim", 0) == 2
    ]


def map_info_from_fits(
    fits_path: str | Path,
    *,
    name: str,
    description: str = "",
    band: str | None = None,
    hdu: str | int | None = None,
) -> MapInfo:
    """Read the metadata of a FITS map (no registry, no copy).

    Parameters
    ----------
    fits_path : path
        The FITS file: a 2-D image with a celestial WCS (the ``IMAGE`` extension when there is
        one, else the first 2-D image); other 2-D images (e.g. ``ERROR``) are cut along with it.
    name : str
        Map id, ``[a-z][a-z0-9_]*`` (at most 64 characters).
    description : str
        Free text.
    band : str, optional
        Band name; default: header ``BAND``, else the map name.
    hdu : str or int, optional
        The main image HDU.

    Raises
    ------
    InputError
        If the file cannot be read or has no 2-D image with a celestial WCS, or bad ``name``.
    """
    if not _MAP_NAME.match(name or ""):
        raise InputError(
            f"map name {name!r} must be lower-case letters, digits and '_', starting with a "
            "letter (at most 64 characters)"
        )
    fits_path = Path(fits_path)
    try:
        hdul = fits.open(fits_path, memmap=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read FITS file: {exc}", path=fits_path) from None
    with hdul:
        try:
            images = _image_hdus(hdul)
        except (TypeError, ValueError, OSError) as exc:
            # astropy reads the data lazily: a file cut short fails only here.
            raise InputError(
                f"cannot read the image data (truncated or corrupt FITS?): {exc}", path=fits_path
            ) from None
        if not images:
            raise InputError("holds no 2-D image", path=fits_path)
        if hdu is None:
            names = [hdul[i].name for i in images]
            main = images[names.index("IMAGE")] if "IMAGE" in names else images[0]
        else:
            try:
                main = hdul.index_of(hdu)
            except (KeyError, IndexError):
                raise InputError(f"has no HDU {hdu!r}", path=fits_path) from None
            if main not in images:
                raise InputError(f"HDU {hdu!r} is not a 2-D image", path=fits_path)
        header = hdul[main].header
        try:
            wcs = WCS(header).celestial
        except Exception as exc:  # astropy raises assorted errors on broken WCS
            raise InputError(f"invalid WCS: {exc}", path=fits_path) from None
        if not wcs.has_celestial or wcs.naxis != 2:
            raise InputError(f"HDU {hdul[main].name!r} has no celestial WCS", path=fits_path)
        ny, nx = hdul[main].data.shape
        extensions = [hdul[i].name or str(i) for i in images if hdul[i].data.shape == (ny, nx)]
        # Outer pixel edges, in astropy's calc_footprint order.
        corners_x = np.array([-0.5, -0.5, nx - 0.5, nx - 0.5])
        corners_y = np.array([-0.5, ny - 0.5, ny - 0.5, -0.5])
        cra, cdec = wcs.pixel_to_world_values(corners_x, corners_y)
        ra0, dec0 = wcs.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
        if not np.all(np.isfinite(cra)) or not np.isfinite(ra0):
            raise InputError("WCS gives non-finite corner coordinates", path=fits_path)
        sep = _sep_deg(float(ra0), float(dec0), cra, cdec)
        scales_deg = proj_plane_pixel_scales(wcs)
        pixel_arcsec = float(math.sqrt(scales_deg[0] * scales_deg[1]) * 3600.0)
        band_name = (band or str(header.get("BAND", "")) or name).strip().lower()
        fwhm = header.get("FWHM")
        bandpasses, facilities = _instruments()
        lo_hi = bandpasses.get(band_name)
        if lo_hi is None and "WAVELEN" in header:
            wl = float(header["WAVELEN"])
            lo_hi = (wl, wl)
        facility, instrument = facilities.get(band_name.split("_")[0], ("", ""))
        wcs_header = wcs.to_header(relax=True)
        wcs_header["NAXIS"] = 2
        wcs_header["NAXIS1"] = nx
        wcs_header["NAXIS2"] = ny
        return MapInfo(
            name=name,
            path=str(fits_path.resolve()),
            hdu=hdul[main].name or main,
            extensions=extensions,
            band=band_name,
            unit=str(header.get("BUNIT", "")).strip(),
            shape=(int(ny), int(nx)),
            pixel_arcsec=pixel_arcsec,
            fwhm_arcsec=None if fwhm is None else float(fwhm),
            center_ra=float(ra0) % 360.0,
            center_dec=float(dec0),
            radius_deg=float(np.max(sep)),
            footprint=[[float(a) % 360.0, float(d)] for a, d in zip(cra, cdec)],
            wcs_header=wcs_header.tostring(),
            description=description,
            em_min_m=None if lo_hi is None else float(lo_hi[0]),
            em_max_m=None if lo_hi is None else float(lo_hi[1]),
            facility=facility,
            instrument=instrument,
            size_bytes=fits_path.stat().st_size,
        )


def _sep_deg(ra0: float, dec0: float, ra, dec) -> np.ndarray:
    ra0r, dec0r = math.radians(ra0), math.radians(dec0)
    r, d = np.radians(ra), np.radians(dec)
    h = np.sin((d - dec0r) / 2) ** 2 + np.cos(d) * math.cos(dec0r) * np.sin((r - ra0r) / 2) ** 2
    return 2 * np.degrees(np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def publish_map(
    backend,
    fits_path: str | Path,
    *,
    name: str,
    description: str = "",
    band: str | None = None,
    hdu: str | int | None = None,
    data_dir: str | Path | None = None,
) -> MapInfo:
    """Register a FITS map for SIA v2 discovery and SODA cutouts.

    The file is validated, copied (atomically) into ``data_dir`` as ``<name>.fits`` and its
    metadata stored in the database; publishing the same name again replaces the map.

    Parameters
    ----------
    backend : Backend
        The service database (:func:`skysense.vo.backends.open_backend`).
    fits_path : path
        The FITS map (see :func:`map_info_from_fits`).
    name : str
        Map id, ``[a-z][a-z0-9_]*``.
    description : str
        Free text shown in discovery results and on the web page.
    band : str, optional
        Band name; default: header ``BAND``.
    hdu : str or int, optional
        The main image HDU; default ``IMAGE`` or the first 2-D image.
    data_dir : path, optional
        Folder of the service's map copies; default ``<database>.work/maps``.

    Returns
    -------
    MapInfo

    Raises
    ------
    InputError
        Unreadable file, no celestial 2-D image, or a bad name.
    """
    fits_path = Path(fits_path)
    if not fits_path.is_file():
        raise InputError("no such file", path=fits_path)
    info = map_info_from_fits(fits_path, name=name, description=description, band=band, hdu=hdu)
    folder = Path(data_dir) if data_dir is not None else default_maps_dir(backend)
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / f"{name}.fits").resolve()
    if target != fits_path.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(fits_path, tmp)
    doc = info.to_record()
    doc["path"] = str(target)
    doc["published"] = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    backend.put_record(RECORD_KIND, name, doc)
    return MapInfo.from_record(doc)


def get_map(backend, name: str) -> MapInfo | None:
    """The registered map ``name``, or None (also for names that cannot be map ids)."""
    if not isinstance(name, str) or not _MAP_NAME.match(name):
        return None
    doc = backend.get_record(RECORD_KIND, name)
    return None if doc is None else MapInfo.from_record(doc)


def list_maps(backend) -> list[MapInfo]:
    """Every registered map, ordered by name."""
    return [MapInfo.from_record(d) for d in backend.list_records(RECORD_KIND)]


def unpublish_map(backend, name: str, *, delete_file: bool = True) -> bool:
    """Remove a map from the registry (and its copied file); True when it existed."""
    info = get_map(backend, name)
    if info is None:
        return False
    backend.delete_record(RECORD_KIND, name)
    if delete_file:
        Path(info.path).unlink(missing_ok=True)
    return True
