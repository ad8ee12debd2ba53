"""XID+ inputs and outputs: maps and noise maps, prior catalogues, regions; result files.

Readers validate at the boundary (WCS present, units understood, shapes agree) and convert
maps to mJy/beam; bad pixels (NaN, non-positive noise) are masked, never zero-filled. A file
that is missing, unreadable or lacks what is needed raises one
:class:`~skysense.errors.InputError` naming it; the warnings of a failed read are dropped (the
error says what went wrong). Every writer is atomic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path
from skysense.catalog.io import read_moc  # the one FITS MOC reader, re-exported here
from skysense.errors import InputError
from skysense.tables import DEC_NAMES, RA_NAMES
from skysense.tables import read_table as read_any_table
from skysense.xid.columns import ID_NAMES, find_column
from skysense.xid.skymap import SkyMap

if TYPE_CHECKING:  # the fit core imports numba: only its type is needed here
    from skysense.xid.fit import XIDResult

__all__ = [
    "FitInputs",
    "read_fit_inputs",
    "read_map",
    "write_map",
    "read_prior",
    "read_moc",
    "read_prf",
    "read_templates",
    "read_table",
    "write_table",
    "write_catalogue",
    "write_unfitted",
    "write_image",
    "write_png",
    "write_outputs",
    "write_tile",
    "read_tiles",
    "unit_to_mjy_per_beam",
]

_UNITS = {"jy/beam": 1000.0, "mjy/beam": 1.0, "ujy/beam": 1e-3, "jy/bm": 1000.0, "mjy/bm": 1.0}


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Run a third-party reader on ``path``: any failure becomes one InputError naming it.

    Warnings raised while reading are held back; they are shown only when the read succeeds,
    so a broken file gives the error line alone.
    """
    if not path.exists():
        raise InputError(f"{what} not found", path=path)
    if path.is_dir():
        raise InputError(f"{what} is a directory, not a file", path=path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except InputError:
            raise
        except Exception as exc:  # astropy, pyarrow and mocpy raise many types for bad files
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise InputError(f"cannot read {what}: {text}", path=path) from None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


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
    raise InputError(f"no 2-D image HDU (looked for {preferred!r})", path=path)


def _image(hdul, name: str | None, preferred: str, path, what: str):
    """(header, 2-D float image) of the HDU ``name`` (else ``preferred``, else the first 2-D)."""
    i = _pick_hdu(hdul, name, preferred, path)
    data = hdul[i].data
    if data is None:
        raise InputError(f"{what} HDU {hdul[i].name!r} holds no data", path=path)
    image = np.squeeze(np.asarray(data, dtype=float))
    if image.ndim != 2:
        raise InputError(f"{what} must be 2-D, got shape {np.shape(data)}", path=path)
    return hdul[i].header, image


def _celestial_wcs(header, path):
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

    Returns
    -------
    SkyMap - image and noise (ny, nx) in mJy/beam

    Raises
    ------
    InputError
        Missing or unreadable file, missing WCS, unknown units, noise on another grid,
        nothing usable.
    """
    from astropy.io import fits

    path = Path(path)
    with _reading(path, "map file"), fits.open(path) as hdul:
        hdr, image = _image(hdul, image_hdu, "IMAGE", path, "map")
        wcs = _celestial_wcs(hdr, path)
        img_unit = hdr.get("BUNIT", unit)
        factor = unit_to_mjy_per_beam(img_unit, path=path)
        fwhm = hdr.get("FWHM")
        if noise_path is None:
            if error_hdu is None and "ERROR" not in [h.name.upper() for h in hdul]:
                raise InputError("no noise map: give noise_path or an ERROR HDU", path=path)
            ehdr, error = _image(hdul, error_hdu or "ERROR", "ERROR", path, "noise map")
            epath = path
    if noise_path is not None:
        epath = Path(noise_path)
        with _reading(epath, "noise file"), fits.open(epath) as hdul:
            ehdr, error = _image(hdul, error_hdu, "ERROR", epath, "noise map")
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


def read_table(path: str | os.PathLike, what: str = "table") -> pd.DataFrame:
    """Read a table (FITS, VOTable, CSV, ECSV or Parquet) as a DataFrame.

    The shared reader :func:`skysense.tables.read_table`, with the file named as ``what``.

    Parameters
    ----------
    path : path
    what : str - how errors name the file (``"prior catalogue"``, ...)

    Raises
    ------
    InputError
        Missing or unreadable file (names it).
    """
    path = Path(path)
    with _reading(path, what):  # names the file as ``what`` when it is missing
        return read_any_table(path)


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
        Missing or unreadable file, missing columns, non-finite or out-of-range positions
        (names the row).
    """
    path = Path(path)
    df = read_table(path, "prior catalogue")
    idc = find_column(df.columns, ID_NAMES, "id", id_column, path=path)
    rac = find_column(df.columns, RA_NAMES, "RA", ra_column, path=path)
    dec_ = find_column(df.columns, DEC_NAMES, "Dec", dec_column, path=path)
    out = df.drop(columns=[idc, rac, dec_])
    out.insert(0, "dec", pd.to_numeric(df[dec_], errors="coerce").astype(float))
    out.insert(0, "ra", pd.to_numeric(df[rac], errors="coerce").astype(float))
    out.insert(0, "id", df[idc].astype(str))
    bad = ~(np.isfinite(out["ra"]) & np.isfinite(out["dec"]) & (np.abs(out["dec"]) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError("non-finite or out-of-range position", path=path, row=i)
    return out.reset_index(drop=True)


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
        Missing or unreadable file, missing columns (named), grids that differ between
        templates, non-positive fluxes.
    """
    from skysense.xid.sed import SEDTemplates

    path = Path(path)
    df = read_table(path, "SED template table")
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
        Missing or unreadable file, no image, or no way to know the sampling.
    """
    from astropy.io import fits

    from skysense.xid.model import PRFBeam

    path = Path(path)
    with _reading(path, "PRF file"), fits.open(path) as hdul:
        hdr, image = _image(hdul, None, "PRF", path, "PRF")
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


@dataclasses.dataclass
class FitInputs:
    """Everything :func:`read_fit_inputs` read for one XID+ fit.

    Attributes
    ----------
    maps : list of SkyMap - one per band, in the order given
    prior : DataFrame - from :func:`read_prior`
    region_moc : mocpy.MOC or None - fit only pixels inside
    options : dict - per-band ``beams``, ``bkg_priors``, ``conf_priors`` (those given), from
        :func:`skysense.xid.model.band_options`
    """

    maps: list
    prior: pd.DataFrame
    region_moc: object | None = None
    options: dict = dataclasses.field(default_factory=dict)

    def fit_kwargs(self) -> dict:
        """The region and per-band beams and priors as keyword arguments of
        :func:`~skysense.xid.fit.fit`, :func:`~skysense.xid.fit.fit_sed_maps`,
        :func:`~skysense.xid.engine.fit_tiles` and
        :func:`~skysense.xid.hidden.find_hidden_sources`."""
        return {"region_moc": self.region_moc, **self.options}


def read_fit_inputs(
    maps: Sequence[str | os.PathLike],
    bands: Sequence[str],
    prior: str | os.PathLike,
    *,
    noise: Sequence[str | os.PathLike | None] | None = None,
    prf: Sequence[str | os.PathLike] | None = None,
    fwhm_arcsec: Sequence[float] | None = None,
    moc: str | os.PathLike | None = None,
    bkg_prior: tuple[float, float] | None = None,
    conf_prior: str | None = None,
    conf_scale: float = 0.5,
    conf_white: bool = False,
    id_column: str | None = None,
) -> FitInputs:
    """Read the maps, prior catalogue, region and beams of an XID+ fit, and build its priors.

    What ``skysense xid fit`` (and ``fit-tiles``, ``fit-sed``, ``hidden``) and the pipeline's
    XID+ step read; ``fit(inp.maps, inp.prior, **inp.fit_kwargs())`` then fits.

    Parameters
    ----------
    maps : sequence of path - FITS maps, one per band
    bands : sequence of str - HELP band name per map
    prior : path - prior catalogue (:func:`read_prior`)
    noise : sequence of path or None, optional - noise map per map (None: its ERROR HDU)
    prf : sequence of path, optional - PRF image per map instead of a Gaussian beam
    fwhm_arcsec : sequence of float, arcsec, optional - Gaussian beam FWHM per map
    moc : path, optional - MOC of the region to fit
    bkg_prior, conf_prior, conf_scale, conf_white : see :func:`skysense.xid.model.band_options`
    id_column : str, optional - id column of the prior catalogue

    Returns
    -------
    FitInputs

    Raises
    ------
    InputError
        Counts that do not match the maps, both PRFs and FWHMs, or a reader's error.
    """
    from skysense.xid.model import band_options

    n = len(maps)
    if len(bands) != n:
        raise InputError(f"give one band per map ({n} maps, {len(bands)} bands)")
    for what, values in (("noise map", noise), ("PRF", prf), ("FWHM", fwhm_arcsec)):
        if values is not None and len(values) != n:
            raise InputError(f"give one {what} per map (or none): {n} maps, {len(values)} given")
    if prf is not None and fwhm_arcsec is not None:
        raise InputError("give either PRFs or FWHMs, not both")
    skies = [
        read_map(m, band=b, noise_path=None if noise is None else noise[i])
        for i, (m, b) in enumerate(zip(maps, bands))
    ]
    table = read_prior(prior, id_column=id_column)
    beams = None if prf is None else [read_prf(p) for p in prf]
    region = None if moc is None else read_moc(moc)
    options = band_options(
        bands,
        fwhm_arcsec=fwhm_arcsec,
        beams=beams,
        bkg_prior=bkg_prior,
        conf_prior=conf_prior,
        conf_scale=conf_scale,
        conf_white=conf_white,
    )
    return FitInputs(skies, table, region, options)


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


def write_catalogue(cat: pd.DataFrame, stem: str | os.PathLike) -> list:
    """Write an XID+ catalogue (HELP format) as ``<stem>.fits``/``.parquet`` with its units.

    Fluxes, errors, backgrounds and confusion noise in mJy, ``RA``/``Dec`` in deg.
    """
    units = {c: "mJy" for c in cat.columns if c.startswith(("F_", "FErr_", "Bkg_", "Sig_conf_"))}
    units.update({"RA": "deg", "Dec": "deg"})
    return write_table(cat, stem, units=units)


def write_unfitted(unfitted: pd.DataFrame | None, path: str | os.PathLike) -> Path:
    """Write the ``id, band, reason`` list of unfittable sources as CSV, atomically."""
    if unfitted is None:
        unfitted = pd.DataFrame(columns=["id", "band", "reason"])
    with atomic_path(path) as tmp:
        unfitted.to_csv(tmp, index=False)
    return Path(path)


def write_tile(cat: pd.DataFrame, unfitted: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write one tile's catalogue rows (Parquet) and unfitted list (``.unfitted.csv``).

    The Parquet file is written last: its presence marks the tile as done.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_unfitted(unfitted, path.with_suffix(".unfitted.csv"))
    with atomic_path(path) as tmp:
        cat.to_parquet(tmp, index=False)
    return path


def read_tiles(paths: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Join the files of :func:`write_tile`: (catalogue, unfitted list or None when empty)."""
    cat = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    for col in [c for c in cat.columns if c.startswith("flag_")]:
        # a failed tile has no flag columns: its sources were not fitted, so they are flagged
        # (and the column stays boolean, which the FITS writer needs)
        cat[col] = cat[col].where(cat[col].notna(), True).astype(bool)
    unf = [pd.read_csv(Path(p).with_suffix(".unfitted.csv")) for p in paths]
    unf = [u for u in unf if len(u)]
    return cat, (pd.concat(unf, ignore_index=True) if unf else None)


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
    """Write a :class:`~skysense.xid.skymap.SkyMap` as FITS that :func:`read_map` reads back.

    HDUs ``IMAGE`` and ``ERROR`` in mJy/beam with the WCS, and the beam ``FWHM`` (arcsec) when
    known; the arrays keep their dtype. Atomic.
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


def write_outputs(
    result: XIDResult, out_dir: str | os.PathLike, *, maps: bool = True, png: bool = True
) -> dict:
    """Write the catalogue (FITS + Parquet), posterior NetCDF, maps and unfitted list.

    Parameters
    ----------
    result : XIDResult - from :func:`skysense.xid.fit.fit` or
        :func:`~skysense.xid.fit.fit_sed_maps`
    out_dir : path - created when missing
    maps : bool - also the posterior maps ``<band>_{model,residual,pval_sigma}.fits``
    png : bool - and their quick-look PNGs

    Returns
    -------
    dict - what was written (name -> path or list of paths)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"catalogue": write_catalogue(result.catalogue(), out / "catalogue")}
    with atomic_path(out / "posterior.nc") as tmp:
        result.inference_data().to_netcdf(str(tmp))
    written["posterior"] = out / "posterior.nc"
    written["unfitted"] = write_unfitted(result.unfitted, out / "unfitted.csv")
    if maps:
        for band in result.models:
            for name, img in result.maps(band).items():
                unit = "" if name == "pval_sigma" else "mJy/beam"
                p = write_image(
                    img, result.wcs[band], out / f"{band}_{name}.fits", unit=unit, band=band
                )
                written[f"{band}_{name}"] = p
                if png:
                    kw = {"vmin": -6, "vmax": 6, "cmap": "RdBu_r"} if name == "pval_sigma" else {}
                    write_png(img, out / f"{band}_{name}.png", title=f"{band} {name}", **kw)
    return written
