"""Reading pristine catalogues and writing prepared ones.

:func:`read_catalogue` is the shared table reader :func:`skysense.tables.read_table`: a
:class:`pandas.DataFrame` whose ``attrs`` carry the column units and descriptions found in the
file.

Writers keep units and descriptions where the format can hold them (FITS, VOTable, ECSV,
Parquet field metadata) and always write atomically: a failure leaves no partial file.

:func:`read_positions` reads a catalogue with checked positions (RA/Dec columns guessed by
:func:`skysense.tables.guess_position_columns` unless named); :func:`read_inputs` reads every catalogue of a
merge configuration.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path
from skysense._check import checked_positions
from skysense.catalog.formats import FORMATS, guess_format
from skysense.errors import InputError
from skysense.tables import guess_position_columns
from skysense.tables import read_table as read_catalogue

__all__ = [
    "read_catalogue",
    "write_catalogue",
    "read_positions",
    "read_inputs",
    "read_moc",
    "write_moc",
    "file_checksum",
    "package_versions",
]


def _to_astropy(df: pd.DataFrame, units: dict, descriptions: dict, meta: dict | None):
    from astropy.table import MaskedColumn, Table

    table = Table()
    for name in df.columns:
        series = df[name]
        if series.dtype.kind in "OUT" or str(series.dtype) in ("str", "string"):
            values = np.asarray(series.astype(str).to_numpy(), dtype=str)
            table[name] = values
        elif series.dtype.kind in "iufb":
            values = series.to_numpy()
            if values.dtype == np.int8:  # FITS and VOTable have no signed byte
                values = values.astype(np.int16)
            table[name] = values
        else:  # nullable extension types: masked where missing
            mask = series.isna().to_numpy()
            kind = "f8" if series.dtype.kind == "f" else None
            values = (
                series.to_numpy(dtype=kind, na_value=0) if kind else series.fillna(0).to_numpy()
            )
            table[name] = MaskedColumn(values, mask=mask)
        if units.get(name):
            table[name].unit = units[name]
        if descriptions.get(name):
            table[name].description = descriptions[name]
    for key, value in (meta or {}).items():
        table.meta[key] = value
    return table


def write_catalogue(
    df: pd.DataFrame,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    units: dict[str, str] | None = None,
    descriptions: dict[str, str] | None = None,
    meta: dict | None = None,
) -> Path:
    """Write ``df`` atomically as FITS, VOTable, CSV, ECSV or Parquet.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : path-like
        Destination; replaced only once the new file is complete.
    format : str, optional
        One of :data:`FORMATS`; default from the suffix.
    units, descriptions : dict, optional
        Column metadata; default ``df.attrs["units"]`` / ``df.attrs["descriptions"]``.
    meta : dict, optional
        Table-level metadata (short scalar values; FITS keeps them as header cards, Parquet as
        JSON schema metadata under ``b"skysense"``).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    fmt = guess_format(path) if format is None else format.lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}", path=path)
    units = dict(df.attrs.get("units", {}), **(units or {}))
    descriptions = dict(df.attrs.get("descriptions", {}), **(descriptions or {}))
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            fields = []
            for field in table.schema:
                md = {}
                if units.get(field.name):
                    md[b"unit"] = units[field.name].encode()
                if descriptions.get(field.name):
                    md[b"description"] = descriptions[field.name].encode()
                fields.append(field.with_metadata(md) if md else field)
            schema_md = dict(table.schema.metadata or {})
            if meta:
                schema_md[b"skysense"] = json.dumps(meta, default=str).encode()
            table = table.cast(pa.schema(fields, metadata=schema_md))
            pq.write_table(table, tmp)
        elif fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            table = _to_astropy(df, units, descriptions, meta if fmt != "fits" else None)
            if fmt == "fits":
                for key, value in (meta or {}).items():
                    if isinstance(value, (str, int, float, bool)) and len(key) <= 8:
                        table.meta[key.upper()] = value
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.write(
                    tmp, format={"fits": "fits", "votable": "votable", "ecsv": "ascii.ecsv"}[fmt]
                )
    return path


# -- provenance ------------------------------------------------------------------------------


def file_checksum(path: str | os.PathLike) -> str:
    """SHA-256 of a file (hex), or of every file below a directory in name order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of skysense and the libraries a masterlist depends on."""
    out = {}
    for name in ("skysense", "numpy", "scipy", "pandas", "pyarrow", "astropy", "numba",
                 "cdshealpix", "mocpy", "hats", "lsdb", "dask"):  # fmt: skip
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


# -- coverage MOCs ---------------------------------------------------------------------------


def read_moc(path: str | os.PathLike):
    """Read a FITS MOC (``UNIQ`` or ``NPIX`` table) as a :class:`mocpy.MOC`.

    Raises
    ------
    InputError
        Missing or unreadable file.
    """
    from mocpy import MOC

    path = Path(path)
    if not path.is_file():
        raise InputError("MOC file not found", path=path)
    try:
        return MOC.from_fits(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad input
        raise InputError(f"cannot read as a FITS MOC: {exc}", path=path) from exc


def write_moc(moc, path: str | os.PathLike) -> Path:
    """Write a :class:`mocpy.MOC` as FITS (or JSON/ASCII by suffix ``.json``/``.txt``)
    atomically; returns the path."""
    path = Path(path)
    fmt = {".json": "json", ".txt": "ascii"}.get(path.suffix.lower(), "fits")
    with atomic_path(path) as tmp:
        moc.save(tmp, format=fmt, overwrite=True)
    return path


# -- positions of any catalogue ---------------------------------------------------------------


#: RA and Dec column names recognised without being named (deg), in order of preference.
def read_positions(
    path: str | os.PathLike, ra: str | None = None, dec: str | None = None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Read a catalogue and its checked positions.

    Parameters
    ----------
    path : path-like
    ra, dec : str, optional
        Position columns (deg); default from :func:`guess_position_columns`.

    Returns
    -------
    (table, ra, dec) : pandas.DataFrame, ndarray (n,) deg, ndarray (n,) deg

    Raises
    ------
    InputError
        Unreadable file, no position column, or a missing or invalid position (names the
        file, column and row).
    """
    path = Path(path)
    df = read_catalogue(path)
    ra, dec = guess_position_columns(df.columns, ra, dec)
    for col, what in ((ra, "RA"), (dec, "Dec")):
        if col is None or col not in df.columns:
            raise InputError(
                f"no {what} column found; name it with --ra/--dec", path=path, column=col
            )
    ra_deg, dec_deg = checked_positions(df, ra, dec, path)
    return df, ra_deg, dec_deg


# -- the inputs of a merge --------------------------------------------------------------------


def _read_meta(path: Path) -> dict:
    """What the preparation recorded: ``<file>.provenance.json`` beside the file (astrometric
    offsets, aperture corrections), else the file's own ``skysense`` metadata."""
    side = path.with_name(path.name + ".provenance.json")
    if side.is_file():
        try:
            return json.loads(side.read_text())
        except (OSError, ValueError):
            pass
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            md = pq.read_schema(path).metadata or {}
            if b"skysense" in md:
                return json.loads(md[b"skysense"])
        elif path.suffix.lower() in (".fits", ".fit"):
            from astropy.io import fits

            with fits.open(path) as hdul:
                header = hdul[1].header if len(hdul) > 1 else hdul[0].header
                return {
                    k: header[k]
                    for k in header
                    if k.startswith(("ASTR", "APCOR", "DRA", "DDEC", "SURVEY"))
                }
    except Exception:  # noqa: BLE001 - metadata is informative only
        return {}
    return {}


def _streamable(path: Path) -> bool:
    from skysense.tables import READ_FORMATS, table_format

    try:
        return table_format(path, READ_FORMATS) in ("fits", "csv", "tsv", "parquet")
    except InputError:
        return False


def _stage_as_hats(entry, stage_dir: Path, k: int) -> Path:
    """Convert a file input to HATS in ``stage_dir`` (a streaming pass: the driver never
    holds the table), for the tiled merge."""
    from skysense.catalog.convert_io import convert_to_hats
    from skysense.catalog.merge import guess_survey, position_columns

    def pick(columns):
        return position_columns(columns, entry.survey or guess_survey(columns, entry.file))

    out = Path(stage_dir) / f"input_{k}"
    # _row keeps the file's row order, in which the merge processes rows (engine.py).
    convert_to_hats(entry.file, out, pick_positions=pick, catalog_name=entry.file.stem,
                    row_column="_row")  # fmt: skip
    return out


def _read_hats_positions(entry, moc, hats_dir: Path | None = None):
    """A HATS input, reading only its schema; rows (positions too) stay on disk.

    ``hats_dir``: where the HATS copy of a file input is (default ``entry.file``)."""
    import pyarrow.parquet as pq

    from skysense.catalog.merge import (
        POSITION_ERROR_COLUMNS,
        Prepared,
        guess_survey,
        position_columns,
    )

    hats_dir = Path(entry.file if hats_dir is None else hats_dir)
    schema = pq.read_schema(hats_dir / "dataset" / "_common_metadata")
    frame = schema.empty_table().to_pandas().drop(columns=["_healpix_29"], errors="ignore")
    survey = entry.survey or guess_survey(frame.columns, entry.file)
    cols = position_columns(frame.columns, survey)
    err_col = None
    if entry.position_error_arcsec is None:
        err_col = next(
            (c.format(survey) for c in POSITION_ERROR_COLUMNS if c.format(survey) in frame.columns),
            None,
        )
    for c in cols:
        if c not in frame.columns:
            raise InputError(
                f"position column missing (looked for {survey}_ra/_dec and ra/dec)",
                path=entry.file,
                column=c,
            )
    # No positions are read here: the tiled merge checks them partition by partition.
    return Prepared(survey, frame, None, None, entry.file, moc=moc, hats_dir=hats_dir,
                    position_columns=cols, error_column=err_col,
                    error_constant=entry.position_error_arcsec)  # fmt: skip


def read_inputs(
    config,
    *,
    progress: bool = False,
    positions_only: bool = False,
    stage_dir: str | os.PathLike | None = None,
) -> list:
    """Read and check every catalogue named in a merge configuration (files, or HATS
    directories), with their coverage MOCs and recorded metadata.

    Parameters
    ----------
    config : skysense.catalog.merge_config.MergeConfig
    progress : bool
        Show a progress bar.
    positions_only : bool
        Do not load HATS inputs (only their schemas; ``ra``/``dec`` are None), for the
        tiled merge, whose tasks read and check the rows they need.
    stage_dir : path-like, optional
        With ``positions_only``: convert FITS, CSV and Parquet inputs to HATS here first, in
        a streaming pass (:func:`skysense.catalog.convert_io.convert_to_hats`), so that no
        input is ever held whole (VOTable and ECSV inputs are still read whole).

    Returns
    -------
    list of skysense.catalog.merge.Prepared
        In the configuration's (priority) order.

    Raises
    ------
    InputError
        An unreadable or invalid catalogue.
    ConfigError
        Two catalogues with the same survey name.
    """
    from tqdm import tqdm

    from skysense.catalog.hats_io import read_hats_table
    from skysense.catalog.merge import load_prepared
    from skysense.errors import ConfigError

    out = []
    for entry in tqdm(config.catalogues, desc="reading catalogues", disable=not progress):
        # The preparation writes <stem>_moc.fits beside the table; use it unless told otherwise.
        moc_file = entry.moc or entry.file.with_name(entry.file.name.split(".")[0] + "_moc.fits")
        moc = read_moc(moc_file) if moc_file.is_file() else None
        streamable = entry.file.is_file() and _streamable(entry.file)
        if positions_only and (entry.file.is_dir() or (stage_dir is not None and streamable)):
            staged = (
                None if entry.file.is_dir() else _stage_as_hats(entry, Path(stage_dir), len(out))
            )
            prep = _read_hats_positions(entry, moc, staged)
            prep.meta = _read_meta(entry.file)
            out.append(prep)
            continue
        if entry.file.is_dir():
            frame = read_hats_table(entry.file).drop(columns=["_healpix_29"], errors="ignore")
        else:
            frame = read_catalogue(entry.file)
        prep = load_prepared(
            frame, survey=entry.survey, path=entry.file,
            position_error_arcsec=entry.position_error_arcsec, moc=moc,
        )  # fmt: skip
        prep.meta = {**_read_meta(entry.file), **prep.meta}
        out.append(prep)
    names = [p.survey for p in out]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"two catalogues have the same survey name ({names})",
            path=config.path,
            key="catalogues",
        )
    return out
