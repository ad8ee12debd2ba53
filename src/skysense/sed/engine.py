"""Fitting catalogues on Dask: rows in chunks, the grid shared, memory bounded per task."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skysense._dask import compute_with_progress, dask_client
from skysense.sed.fit import DEFAULT_EB_THRESHOLD, check_photometry, fit_photometry
from skysense.sed.grid import ModelGrid

__all__ = [
    "fit_catalogue",
    "fit_catalogue_file",
    "fit_masterlist",
    "run_pipeline_sed",
    "plot_object",
]


def fit_catalogue(
    grid: ModelGrid,
    ids: Sequence,
    z: np.ndarray,
    flux_mjy: np.ndarray,
    err_mjy: np.ndarray,
    upper: np.ndarray | None = None,
    *,
    z_err: np.ndarray | None = None,
    chunk_rows: int = 5000,
    eb_threshold: float = DEFAULT_EB_THRESHOLD,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Fit every object, ``chunk_rows`` per Dask task (see :func:`skysense.sed.fit.fit_photometry`;
    ``z_err`` marginalises over the photo-z as there).

    All input is validated first (one clear error before any work). Memory per task is bounded
    by ``fit_photometry``'s ``block_elements``; the grid is shared between threads.

    Returns
    -------
    pandas.DataFrame
        One row per object, in input order.
    """
    import dask

    ids = np.asarray(ids)
    flux_mjy = np.asarray(flux_mjy, dtype=float)
    check_photometry(flux_mjy, err_mjy, upper, ids, grid.bands)
    grid.redshift_index(z, ids)
    up = np.zeros(flux_mjy.shape, bool) if upper is None else np.asarray(upper, bool)
    ze = None if z_err is None else np.asarray(z_err, dtype=float)
    # one graph node for the grid, named by its fingerprint (not hashed array by array)
    grid_node = dask.delayed(grid, name=f"sed-grid-{grid.fingerprint[:16]}", traverse=False)
    tasks = []
    for start in range(0, len(ids), chunk_rows):
        sl = slice(start, start + chunk_rows)
        tasks.append(
            dask.delayed(fit_photometry, pure=False)(
                grid_node,
                flux_mjy[sl],
                np.asarray(err_mjy)[sl],
                np.asarray(z)[sl],
                z_err=None if ze is None else ze[sl],
                upper=up[sl],
                ids=ids[sl],
                eb_threshold=eb_threshold,
            )  # fmt: skip
        )
    with dask_client(scheduler) as client:
        parts = compute_with_progress(tasks, label="sed fit", client=client)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def fit_catalogue_file(
    grid_dir,
    catalog,
    out_dir,
    *,
    z_column: str = "redshift",
    z_err_column: str | None = None,
    id_column: str = "help_id",
    chunk_rows: int = 5000,
    eb_threshold: float = DEFAULT_EB_THRESHOLD,
    scheduler: str | None = None,
    mock: bool = False,
    random_state: int = 0,
) -> dict:
    """Fit a catalogue file: writes ``properties.parquet`` and ``spectra.parquet`` in ``out_dir``.

    With ``mock`` (CIGALE's ``mock_flag``), the best models are refitted with noise drawn
    from the objects' errors; ``mock_recovery.json`` gives per quantity how well it is
    recovered (bias, scatter, 1-sigma coverage, Pearson r) and ``mock_recovery.png`` shows it:
    quantities with r < 0.5 are not constrained by this photometry.

    The catalogue has HELP columns ``f_<band>``/``ferr_<band>`` in uJy (optional boolean
    ``flag_ul_<band>``), an id column and a redshift column.

    Returns
    -------
    dict
        Paths written and counts.
    """
    from pathlib import Path

    import pandas as pd
    from astropy import cosmology as cosmo

    from skysense.errors import InputError
    from skysense.sed import io
    from skysense.sed.grid import best_spectra
    from skysense.tables import read_table

    grid = io.load_grid(grid_dir)
    frame = read_table(catalog)
    ids, z, flux, err, upper = io.read_photometry(
        frame, grid.bands, z_column=z_column, id_column=id_column, path=catalog
    )
    z_err = None
    if z_err_column is not None:
        if z_err_column not in frame.columns:
            raise InputError(f"no column {z_err_column!r}", path=catalog)
        z_err = pd.to_numeric(frame[z_err_column], errors="coerce").to_numpy(float)
    table = fit_catalogue(grid, ids, z, flux, err, upper, z_err=z_err, chunk_rows=chunk_rows,
                          eb_threshold=eb_threshold, scheduler=scheduler)  # fmt: skip
    iz = grid.redshift_index(table["z_grid"].to_numpy())
    wave, fnu = best_spectra(grid, iz, table["best_model"].to_numpy(), table["best_scale"].to_numpy(),
                             getattr(cosmo, grid.config.cosmology), io.igm_inoue14)  # fmt: skip
    out_dir = Path(out_dir)
    props = io.write_properties(table, out_dir / "properties.parquet")
    spectra = io.write_spectra(ids, wave, fnu, out_dir / "spectra.parquet")
    result = {"properties": str(props), "spectra": str(spectra), "n_objects": len(table),
              "n_flag_energy_balance": int(table["flag_energy_balance"].sum())}  # fmt: skip
    if mock:
        result.update(
            _mock_analysis(
                grid, table, iz, err, upper, out_dir, chunk_rows, scheduler, random_state
            )
        )
    return result


def _mock_analysis(
    grid, table, iz, err, upper, out_dir, chunk_rows, scheduler, random_state
) -> dict:
    import json

    from skysense._atomic import atomic_path, atomic_write_text
    from skysense.sed.fit import OUTPUT_QUANTITIES, mock_photometry, recovery_summary
    from skysense.sed.grid import EXTENSIVE
    from skysense.sed.plots import plot_recovery

    model, scale = table["best_model"].to_numpy(), table["best_scale"].to_numpy()
    flux = mock_photometry(grid, iz, model, scale, err, random_state)
    flux = np.where(upper, np.nan, flux)  # limits stay limits: not mocked
    refit = fit_catalogue(grid, table["help_id"].to_numpy(), table["z_grid"].to_numpy(), flux,
                          np.where(upper, np.nan, err), chunk_rows=chunk_rows, scheduler=scheduler)  # fmt: skip
    truth = pd.DataFrame({q: table[f"best_{q}"] for q in OUTPUT_QUANTITIES})
    summary = recovery_summary(truth, refit)
    path = out_dir / "mock_recovery.json"
    atomic_write_text(path, json.dumps(summary.to_dict(orient="records"), indent=1))
    shown = [q for q in ("mstar", "sfr", "l_dust", "a_v") if q in set(summary["quantity"])]
    with atomic_path(out_dir / "mock_recovery.png") as tmp:
        plot_recovery(truth, refit, shown).savefig(tmp, dpi=100)
    poor = [r["quantity"] for r in summary.to_dict(orient="records")
            if not (r["pearson_r"] >= 0.5) and r["quantity"] not in EXTENSIVE]  # fmt: skip
    return {"mock_recovery": str(path), "unconstrained": poor}


def plot_object(grid_dir, catalog, fit_dir, help_id, out_png, *, z_column: str = "redshift",
                id_column: str = "help_id", pdfs: bool = False) -> str:  # fmt: skip
    """PNG of one object's fit (and, with ``pdfs``, of its parameter PDFs beside it)."""
    from pathlib import Path

    import pandas as pd

    from skysense._atomic import atomic_path
    from skysense.errors import InputError
    from skysense.sed import io, plots
    from skysense.sed.fit import posterior_weights
    from skysense.tables import read_table

    grid = io.load_grid(grid_dir)
    table = pd.read_parquet(Path(fit_dir) / "properties.parquet")
    hit = table.index[table["help_id"].astype(str) == str(help_id)]
    if hit.empty:
        raise InputError(f"no object {help_id!r} in the fit", path=fit_dir)
    row = table.loc[hit[0]]
    frame = read_table(catalog)
    frame = frame[frame[id_column].astype(str) == str(help_id)]
    if frame.empty:
        raise InputError(f"no object {help_id!r}", path=catalog)
    _, z, flux, err, upper = io.read_photometry(
        frame, grid.bands, z_column=z_column, id_column=id_column
    )
    spec = io.read_spectra(Path(fit_dir) / "spectra.parquet", str(help_id)).iloc[0]
    k = int(grid.redshift_index(np.array([row["z_grid"]]))[0])
    model = grid.fluxes_mjy[k, int(row["best_model"])] * row["best_scale"]
    fig = plots.plot_fit(row, grid.band_pivot_um, flux[0], err[0], upper[0], model,
                         np.asarray(spec["wavelength_um"]), np.asarray(spec["fnu_mjy"]))  # fmt: skip
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    if pdfs:
        w, s = posterior_weights(grid, flux[0], err[0], float(z[0]), upper[0])
        values = {
            f"log {q}": np.log10(np.maximum(s * grid.props[q], 1e-30))
            for q in ("mstar", "sfr", "l_dust")
        }
        values.update({q: grid.params[q] for q in ("age_gyr", "tau_main_gyr", "av_ism")})
        with atomic_path(out_png.with_name(out_png.stem + "_pdf.png")) as tmp:
            plots.plot_pdfs(values, w).savefig(tmp, dpi=110)
    return str(out_png)


def fit_masterlist(
    grid: ModelGrid,
    masterlist: pd.DataFrame,
    xid: pd.DataFrame | None = None,
    *,
    z_columns: Sequence[str] = ("zspec", "zphot"),
    marginalise_photoz: bool = True,
    chunk_rows: int = 5000,
    eb_threshold: float = DEFAULT_EB_THRESHOLD,
    scheduler: str | None = None,
    cosmology=None,
    igm=None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict]:
    """The pipeline's SED step: fit a HELP masterlist, with XID+ fluxes where available.

    XID+ columns ``F_<BAND>`` (mJy, posterior median) and ``FErr_<BAND>_u``/``_l`` replace the
    masterlist's ``f_<band>``/``ferr_<band>`` (uJy; error = half the 16-84 range). The redshift is
    the first finite value of ``z_columns`` (zspec where known, else zphot, marginalised over
    the grid's nodes with its ``zphot_err`` when ``marginalise_photoz``). Objects with fewer
    than three usable bands or a redshift outside the grid are not fitted; they are counted in
    the returned summary, never fitted silently.

    Returns
    -------
    (table, wavelength_um, fnu_mjy, summary)
        Fit table (fitted objects), their best-fit spectra (n, n_out) and counts.
    """
    from skysense.sed.fit import MIN_BANDS
    from skysense.sed.grid import best_spectra
    from skysense.sed.io import read_photometry

    frame = masterlist.copy()
    frame["help_id"] = frame["help_id"].astype(str)
    if xid is not None and len(xid):
        x = xid.copy()
        x["help_id"] = x["HELP_ID"].astype(str)
        x = x.drop_duplicates("help_id").set_index("help_id")
        for band in grid.bands:
            col = f"F_{band.upper()}"
            if col not in x.columns:
                continue
            flux = pd.to_numeric(x[col], errors="coerce") * 1e3
            hi = pd.to_numeric(x.get(f"FErr_{band.upper()}_u"), errors="coerce") * 1e3
            lo = pd.to_numeric(x.get(f"FErr_{band.upper()}_l"), errors="coerce") * 1e3
            ids = frame["help_id"]
            frame[f"f_{band}"] = ids.map(flux).to_numpy(float)
            frame[f"ferr_{band}"] = ids.map((hi - lo) / 2).to_numpy(float)
    z = np.full(len(frame), np.nan)
    z_err = np.full(len(frame), np.nan)  # NaN = fixed redshift
    for col in z_columns:
        if col in frame.columns:
            v = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
            take = ~np.isfinite(z) & np.isfinite(v)
            if marginalise_photoz and f"{col}_err" in frame.columns and col != "zspec":
                e = pd.to_numeric(frame[f"{col}_err"], errors="coerce").to_numpy(float)
                z_err = np.where(take, e, z_err)
            z = np.where(take, v, z)
    frame["_sed_z"] = z
    ids, z, flux, err, upper = read_photometry(frame, grid.bands, z_column="_sed_z")
    usable = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    flux = np.where(usable, flux, np.nan)  # a flux without a usable error is not a measurement
    nodes = grid.redshifts
    half = np.diff(nodes).min() / 2 if nodes.size > 1 else 0.05
    z_ok = np.isfinite(z) & (z >= nodes[0] - half) & (z <= nodes[-1] + half)
    few = usable.sum(axis=1) < MIN_BANDS
    keep = z_ok & ~few
    summary = {"n_objects": len(frame), "n_fitted": int(keep.sum()),
               "n_too_few_bands": int(few.sum()), "n_redshift_outside_grid": int((~z_ok & ~few).sum())}  # fmt: skip
    if not keep.any():
        return (
            pd.DataFrame(),
            np.empty((0, grid.wave_out_aa.size)),
            np.empty((0, grid.wave_out_aa.size)),
            summary,
        )
    table = fit_catalogue(grid, ids[keep], z[keep], flux[keep], err[keep], upper[keep],
                          z_err=z_err[keep], chunk_rows=chunk_rows, eb_threshold=eb_threshold,
                          scheduler=scheduler)  # fmt: skip
    if cosmology is None:
        from astropy import cosmology as cosmo

        cosmology = getattr(cosmo, grid.config.cosmology)
    iz = grid.redshift_index(table["z_grid"].to_numpy())
    wave, fnu = best_spectra(grid, iz, table["best_model"].to_numpy(), table["best_scale"].to_numpy(),
                             cosmology, igm)  # fmt: skip
    summary["n_flag_energy_balance"] = int(table["flag_energy_balance"].sum())
    return table, wave, fnu, summary


def run_pipeline_sed(
    grid_config,
    masterlist: pd.DataFrame,
    xid: pd.DataFrame | None,
    out_dir,
    *,
    cache_dir=None,
    z_columns: Sequence[str] = ("zspec", "zphot"),
    chunk_rows: int = 5000,
    eb_threshold: float = DEFAULT_EB_THRESHOLD,
    scheduler: str | None = None,
) -> dict:
    """The pipeline's ``sed`` step: grid from ``grid_config`` (cached), fit, write outputs.

    Writes ``properties.parquet`` and ``spectra.parquet`` in ``out_dir``; returns their paths
    and the counts of :func:`fit_masterlist`.
    """
    from pathlib import Path

    from skysense.sed import io

    grid = io.cached_grid(io.read_grid_config(grid_config), cache_dir)
    table, wave, fnu, summary = fit_masterlist(
        grid, masterlist, xid, z_columns=z_columns, chunk_rows=chunk_rows,
        eb_threshold=eb_threshold, scheduler=scheduler, igm=io.igm_inoue14,
    )  # fmt: skip
    out_dir = Path(out_dir)
    summary["properties"] = str(io.write_properties(table, out_dir / "properties.parquet"))
    ids = table["help_id"].to_numpy() if len(table) else np.array([], dtype=str)
    summary["spectra"] = str(io.write_spectra(ids, wave, fnu, out_dir / "spectra.parquet"))
    summary["grid_fingerprint"] = grid.fingerprint
    return summary
