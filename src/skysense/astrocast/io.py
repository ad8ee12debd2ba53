"""Readers of vegetation series and atomic writers of forecast tables.

Readers return *long* tables with columns ``region, date`` (datetime64) and any of ``ndvi,
vci, vci3m``; :func:`prepare_series` validates one region's series (sorting and de-duplicating
dates as a reported repair; NDVI outside [-1, 1], too-short or all-missing series are errors).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path
from skysense.errors import InputError

__all__ = [
    "read_astrocast_h5",
    "read_csv_series",
    "read_netcdf_series",
    "read_geotiff_stack",
    "read_series",
    "prepare_series",
    "load_regions",
    "write_table",
    "to_days",
]

EPOCH = pd.Timestamp("2001-01-01")  # astrocast_time origin on the HELP VO server


def to_days(dates) -> np.ndarray:
    """Days since 2001-01-01 (the AstroCast VO time origin), float64 (n,)."""
    d = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    return ((d - EPOCH) / pd.Timedelta(days=1)).to_numpy(float)


def _parse_date_codes(codes: np.ndarray, path) -> pd.DatetimeIndex:
    c = codes.astype(np.int64)
    if np.all((c >= 1_000_000) & (c < 10_000_000)):  # YYYYDDD (weekly passage files)
        return pd.to_datetime(c // 1000, format="%Y") + pd.to_timedelta(c % 1000 - 1, unit="D")
    if np.all((c >= 10_000_000) & (c < 100_000_000)):  # YYYYMMDD
        return pd.to_datetime(c.astype(str), format="%Y%m%d")
    raise InputError("Date column is neither YYYYMMDD nor YYYYDDD", path=path, column="Date")


def read_astrocast_h5(path) -> pd.DataFrame:
    """Read the AstroCast HDF5 layout: one dataset per region, attribute ``Column_Names``.

    Rows whose ``Date`` is 0 are padding: their hindcast entries are kept by
    :func:`stored_hindcasts`-style readers but dropped here. Zeros in hindcast columns mean
    "not computed" and become NaN.

    Returns
    -------
    DataFrame
        ``region, date, ndvi, vci, vci3m`` and the stored hindcast columns renamed
        ``hindcast_<k>d`` (k = lag in days) when present.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    frames = []
    with h5py.File(path, "r") as fh:
        for name in fh:
            ds = fh[name]
            if "Column_Names" not in ds.attrs:
                raise InputError(f"dataset {name!r} has no Column_Names attribute", path=path)
            cols = [
                c.decode() if isinstance(c, bytes) else str(c) for c in ds.attrs["Column_Names"]
            ]
            a = np.asarray(ds[()], dtype=float)
            df = pd.DataFrame(a, columns=cols)
            df = df[df["Date"] > 0]
            out = pd.DataFrame(
                {"region": name, "date": _parse_date_codes(df["Date"].to_numpy(), path)}
            )
            for src, dst in (("NDVI", "ndvi"), ("VCI", "vci"), ("VCI3M", "vci3m")):
                if src in df:
                    out[dst] = df[src].to_numpy()
            for c in cols:
                if c.endswith("lag time"):
                    k = int(c.split()[0])
                    out[f"hindcast_{k}d"] = df[c].replace(0.0, np.nan).to_numpy()
            frames.append(out)
    if not frames:
        raise InputError("file holds no datasets", path=path)
    return pd.concat(frames, ignore_index=True)


def read_csv_series(
    path, *, date="date", region: str | None = "region", columns=None
) -> pd.DataFrame:
    """Read a CSV of series: a date column, an optional region column and value columns."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    try:
        df = pd.read_csv(path)
    except UnicodeDecodeError as exc:  # a binary file given as a CSV
        raise InputError(
            f"not a text file (byte {exc.start} is not UTF-8); expected CSV", path=path
        ) from None
    except (OSError, ValueError) as exc:  # pandas' parser and empty-file errors are ValueErrors
        raise InputError(f"cannot read as csv: {' '.join(str(exc).split())}", path=path) from None
    if date not in df:
        raise InputError(f"no date column {date!r}; columns are {list(df.columns)}", path=path)
    out = pd.DataFrame({"region": df[region] if region and region in df else path.stem})
    out["date"] = pd.to_datetime(df[date])
    for c in columns or [c for c in ("ndvi", "vci", "vci3m") if c in df]:
        if c not in df:
            raise InputError(f"no column {c!r}", path=path, column=c)
        out[c.lower()] = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
    return out


def read_netcdf_series(path, *, variable="ndvi", time="time") -> pd.DataFrame:
    """Read a NetCDF (xarray) stack ``variable(time, ...)``; every non-time cell is a region."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    with xr.open_dataset(path) as ds:
        if variable not in ds:
            raise InputError(f"no variable {variable!r}", path=path)
        da = ds[variable].load()
    other = [d for d in da.dims if d != time]
    df = da.to_dataframe().reset_index()
    reg = df[other].astype(str).agg("_".join, axis=1) if other else path.stem
    return pd.DataFrame({"region": reg, "date": pd.to_datetime(df[time]), variable: df[variable]})


def read_geotiff_stack(paths, dates, *, cloud_masks=None) -> pd.DataFrame:
    """Read single-band GeoTIFFs (one per date) into per-pixel NDVI series (``region = r_c``).

    ``cloud_masks`` (same length, optional): rasters where non-zero marks cloud -> NaN.
    """
    import rasterio

    if len(paths) != len(dates):
        raise InputError(f"{len(paths)} files but {len(dates)} dates")
    cubes = []
    for k, p in enumerate(paths):
        with rasterio.open(p) as src:
            band = src.read(1, masked=True).astype(float).filled(np.nan)
        if cubes and band.shape != cubes[0].shape:
            raise InputError(
                f"raster is {band.shape[0]}x{band.shape[1]} pixels but the first of the stack "
                f"is {cubes[0].shape[0]}x{cubes[0].shape[1]}",
                path=p,
            )
        if cloud_masks is not None:
            with rasterio.open(cloud_masks[k]) as src:
                mask = src.read(1)
            if mask.shape != band.shape:
                raise InputError(
                    f"cloud mask is {mask.shape[0]}x{mask.shape[1]} pixels, its raster "
                    f"{band.shape[0]}x{band.shape[1]}",
                    path=cloud_masks[k],
                )
            band[mask != 0] = np.nan
        cubes.append(band)
    cube = np.stack(cubes)
    nt, ny, nx = cube.shape
    rr, cc = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    reg = np.char.add(np.char.add(rr.ravel().astype(str), "_"), cc.ravel().astype(str))
    return pd.DataFrame(
        {
            "region": np.tile(reg, nt),
            "date": np.repeat(pd.to_datetime(np.asarray(dates)), ny * nx),
            "ndvi": cube.reshape(nt, -1).ravel(),
        }
    )


def read_series(path, **kwargs) -> pd.DataFrame:
    """Read by suffix: ``.h5/.hdf5`` (AstroCast), ``.csv``, ``.nc``."""
    suffix = Path(path).suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return read_astrocast_h5(path)
    if suffix == ".csv":
        return read_csv_series(path, **kwargs)
    if suffix in (".nc", ".nc4", ".netcdf"):
        return read_netcdf_series(path, **kwargs)
    raise InputError(f"unknown series format {suffix!r} (use .h5, .csv or .nc)", path=path)


def load_regions(
    path,
    *,
    regions=None,
    from_ndvi: bool = False,
    date_column: str = "date",
    region_column: str = "region",
) -> tuple[dict, list[str]]:
    """Read a series file and prepare every region for forecasting.

    Parameters
    ----------
    path : path
        ``.h5`` (AstroCast), ``.csv`` (``date_column``, ``region_column``, ndvi/vci/vci3m) or
        ``.nc``.
    regions : sequence of str, optional
        Only these regions, in this order (default: all, in file order).
    from_ndvi : bool
        Recompute VCI/VCI3M from NDVI (running extremes, no future data) even when the file
        has VCI.

    Returns
    -------
    series : dict region -> :class:`~skysense.astrocast.series.RegionSeries`
    notes : list of str
        Repairs made (``"region: sorted 3 dates"``), for the user to read.

    Raises
    ------
    InputError
        Unknown format, regions not in the file, or a series :func:`prepare_series` rejects.
    """
    from skysense.astrocast.series import region_series

    kw = {}
    if str(path).lower().endswith(".csv"):
        kw = {"date": date_column, "region": region_column}
    df = read_series(path, **kw)
    present = list(dict.fromkeys(df["region"]))
    if regions:
        missing = [r for r in regions if r not in present]
        if missing:
            raise InputError(f"regions not in file: {missing}", path=path)
        present = list(regions)
    out, notes = {}, []
    for r in present:
        g = df[df["region"] == r].drop(columns="region")
        value = "ndvi" if (from_ndvi or "vci" not in g) else "vci"
        g, repairs = prepare_series(g, value=value, source=f"{path} [{r}]")
        notes += [f"{r}: {rep}" for rep in repairs]
        out[r] = region_series(g, use_stored_vci=not from_ndvi)
    return out, notes


def prepare_series(
    frame: pd.DataFrame, *, value: str = "ndvi", min_days: float = 365.25, source=None
) -> tuple[pd.DataFrame, list[str]]:
    """Validate one region's series; sort and de-duplicate dates (reported repairs).

    Parameters
    ----------
    frame : DataFrame with ``date`` and ``value`` columns
    value : str
        The series to check (``ndvi`` must lie in [-1, 1]).
    min_days : float
        Shortest span of valid data accepted (one season cycle by default).

    Returns
    -------
    frame : DataFrame
        Sorted by date, one row per date (duplicates averaged).
    repairs : list of str
        What was changed, for the user (also issued as a ``UserWarning``).

    Raises
    ------
    InputError
        NDVI out of range (row named), all values missing, or series shorter than ``min_days``.
    """
    if value not in frame:
        raise InputError(f"no column {value!r}", path=source, column=value)
    repairs = []
    df = frame.reset_index(drop=True)
    v = df[value].to_numpy(float)
    if value == "ndvi":
        bad = np.flatnonzero(np.isfinite(v) & ((v < -1) | (v > 1)))
        if bad.size:
            raise InputError(
                f"NDVI {v[bad[0]]:g} outside [-1, 1] ({bad.size} values; scaled data? divide "
                "by the scale factor first)",
                path=source,
                column=value,
                row=int(bad[0]),
            )
    if not df["date"].is_monotonic_increasing:
        df = df.sort_values("date", kind="stable").reset_index(drop=True)
        repairs.append("dates were not sorted: sorted them")
    dup = df["date"].duplicated()
    if dup.any():
        num = df.select_dtypes("number").columns
        agg = {c: "mean" for c in num} | {
            c: "first" for c in df.columns if c not in num and c != "date"
        }
        df = df.groupby("date", as_index=False, sort=True).agg(agg)[frame.columns]
        repairs.append(f"{int(dup.sum())} duplicated dates: averaged their values")
    ok = np.isfinite(df[value].to_numpy(float))
    if not ok.any():
        raise InputError("all values are missing", path=source, column=value)
    span = (df["date"][ok].iloc[-1] - df["date"][ok].iloc[0]) / pd.Timedelta(days=1)
    if span < min_days:
        raise InputError(
            f"series spans {span:.0f} days of valid data; at least {min_days:.0f} (one "
            "seasonal cycle) are needed",
            path=source,
            column=value,
        )
    for r in repairs:
        warnings.warn(f"{source or 'series'}: {r}", UserWarning, stacklevel=2)
    return df, repairs


def write_table(frame: pd.DataFrame, path) -> Path:
    """Write a table atomically as CSV, Parquet or NetCDF (by suffix), ready for VO publishing."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".nc"):
        raise InputError(f"unknown output format {suffix!r} (use .csv, .parquet or .nc)", path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            ds = frame.reset_index(drop=True).to_xarray()
            for c in ds.data_vars:
                if ds[c].dtype == object or str(ds[c].dtype).startswith(("str", "string")):
                    ds[c] = ds[c].astype(str)
            ds.to_netcdf(tmp)
    return path
