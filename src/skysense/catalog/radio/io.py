"""Radio cross-identification at the edge: read the radio catalogue and the masterlist, run the
search (:mod:`.engine`) and the method (:mod:`.identify`), write the outputs atomically.

Output directory::

    DIR/masterlist/          the masterlist with the radio columns (HATS)
    DIR/radio_associations.parquet   every candidate: radio id, help_id, LR, reliability, ...
    DIR/radio_id.png         the diagnostic plot
    DIR/radio_id.json        Q0, threshold, expected false IDs, counts, settings
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skysense._atomic import atomic_dir
from skysense._check import check_positions, did_you_mean
from skysense.catalog.radio.config import RadioConfig, error_covariance
from skysense.catalog.radio.identify import RadioIDResult, cross_identify, dense_columns, id_rows
from skysense.catalog.radio.lr import random_positions
from skysense.catalog.radio.pairs import pair_table
from skysense.errors import InputError
from skysense.photometry import flux_to_ujy
from skysense.tables import guess_position_columns, read_table

__all__ = [
    "RadioCatalogue",
    "read_radio",
    "identify_radio",
    "run_radio_id",
    "describe_radio_id",
]


@dataclasses.dataclass
class RadioCatalogue:
    """A radio catalogue read and checked: positions, fluxes (uJy), errors, identifiers."""

    ra: np.ndarray
    dec: np.ndarray
    flux_ujy: np.ndarray
    flux_err_ujy: np.ndarray
    ids: np.ndarray
    cov: tuple[np.ndarray, np.ndarray, np.ndarray]


def read_radio(config: RadioConfig) -> RadioCatalogue:
    """Read the radio catalogue the configuration names.

    Raises
    ------
    InputError
        Unreadable file, missing column (named, with a suggestion), bad position or error.
    """
    path = config.file
    if not path.is_file():
        raise InputError("radio catalogue not found", path=path)
    df = read_table(path)
    cols = [str(c) for c in df.columns]
    ra_c, dec_c = guess_position_columns(cols, config.ra_column, config.dec_column)
    for c in (ra_c, dec_c, config.flux_column, config.flux_err_column, config.id_column):
        if c is not None and c not in cols:
            raise InputError(f"no column {c!r}{did_you_mean(c, cols)}", path=path, column=c)
    if ra_c is None or dec_c is None:
        raise InputError("no RA/Dec columns found; name them in radio.ra/radio.dec", path=path)
    ra, dec = check_positions(df[ra_c], df[dec_c], path=path, columns=(ra_c, dec_c), one_dim=True)

    def num(c):
        return pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    flux = flux_to_ujy(num(config.flux_column), config.flux_unit)
    ferr = (
        flux_to_ujy(num(config.flux_err_column), config.flux_unit)
        if config.flux_err_column
        else np.full(len(df), np.nan)
    )
    ids = (
        df[config.id_column].astype(str).to_numpy()
        if config.id_column
        else np.arange(len(df)).astype(str)
    )
    try:
        cov = error_covariance(df, config.radio_error, label="radio catalogue")
    except InputError as exc:
        raise InputError(str(exc.args[0]), path=path, column=exc.column, row=exc.row) from None
    return RadioCatalogue(ra, dec, flux, ferr, ids, cov)


def identify_radio(
    radio: RadioCatalogue,
    masterlist: str | os.PathLike | pd.DataFrame,
    config: RadioConfig,
    *,
    scheduler: str | None = None,
    progress: bool = False,
    extra_columns: list[str] | tuple = (),
) -> RadioIDResult:
    """Find the candidates of every radio source in the masterlist and identify them.

    Parameters
    ----------
    radio : RadioCatalogue
    masterlist : path-like or DataFrame
        HATS directory or Parquet file (searched partition by partition on Dask) or a table.
    config : RadioConfig
    extra_columns : sequence of str
        Masterlist columns carried into the candidates (e.g. ``help_id``).

    Returns
    -------
    RadioIDResult
        ``opt_row`` numbers the masterlist rows in reading order.
    """
    from skysense.catalog.radio.engine import find_pairs

    s = config.settings
    cols = config.optical_columns() + [
        c for c in extra_columns if c not in config.optical_columns()
    ]
    raw = find_pairs(masterlist, radio.ra, radio.dec, s.background_outer_arcsec, cols,
                     scheduler=scheduler, progress=progress)  # fmt: skip
    # Random positions far enough from the radio source that its counterpart is never within
    # the blank test's radii of them, and close enough that their discs stay in the annulus.
    rq = float(np.max(s.radii()))
    rra, rdec = random_positions(
        radio.ra, radio.dec, s.background_inner_arcsec + rq, s.background_outer_arcsec - rq,
        s.random_state,
    )  # fmt: skip
    raw_rand = find_pairs(masterlist, rra, rdec, rq, cols, scheduler=scheduler)
    pairs = pair_table(raw, radio.ra, radio.dec, config.magnitude, config.optical_error,
                       config.colour)  # fmt: skip
    rpairs = pair_table(raw_rand, rra, rdec, config.magnitude, config.optical_error,
                        config.colour)  # fmt: skip
    for c in extra_columns:
        pairs[c] = raw[c].to_numpy()
    return cross_identify(pairs, rpairs, len(radio.ra), radio.cov, s)


def _summary(result: RadioIDResult, config: RadioConfig, n_objects: int) -> dict:
    t = result.threshold
    q = result.model.q0
    c = result.candidates
    return {
        "band": config.band,
        "magnitude": config.magnitude,
        "colour": list(config.colour) if config.colour else None,
        "n_radio": result.n_radio,
        "n_objects": int(n_objects),
        "n_with_candidate": int(c["query"].nunique()),
        "q0": q.q0,
        "q0_err": q.q0_err,
        "q0_sigma_arcsec": q.sigma_arcsec,
        "threshold_lr": t.lr,
        "completeness": t.completeness,
        "reliability": t.reliability,
        "n_ids": t.n_ids,
        "expected_false_ids": t.expected_false,
        "settings": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(config.settings).items()
        },  # fmt: skip
    }


def run_radio_id(
    config: RadioConfig,
    masterlist: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    scheduler: str | None = None,
    progress: bool = False,
) -> dict:
    """Identify the radio sources in a masterlist; write the outputs into ``out_dir``.

    Parameters
    ----------
    config : RadioConfig
    masterlist : path-like
        HATS directory, Parquet file, or any table file skysense reads.
    out_dir : path-like
        Replaced atomically (see the module docstring).
    scheduler : str, optional
        Dask scheduler address.

    Returns
    -------
    dict
        The summary written to ``radio_id.json`` plus the output paths.
    """
    from skysense.catalog.check_io import read_masterlist
    from skysense.catalog.hats_io import write_hats
    from skysense.catalog.radio.engine import partition_files, write_with_columns
    from skysense.catalog.radio.plots import plot_radio_id

    radio = read_radio(config)
    ml_path = Path(masterlist)
    if not ml_path.exists():
        raise InputError("masterlist not found", path=ml_path)
    # A HATS masterlist is never loaded whole: searched and rewritten partition by partition.
    hats_dir = ml_path.is_dir()
    if hats_dir or ml_path.suffix.lower() in (".parquet", ".pq"):
        try:
            files = partition_files(ml_path)
            names = pq.read_schema(files[0][0]).names
            n_objects = files[-1][1] + pq.ParquetFile(files[-1][0]).metadata.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read the masterlist: {exc}", path=ml_path) from None
        ml = None if hats_dir else read_masterlist(ml_path)
        source = ml_path
    else:
        ml = read_masterlist(ml_path)
        names, n_objects, source = [str(c) for c in ml.columns], len(ml), ml
    missing = [c for c in ["ra", "dec", *config.optical_columns()] if c not in names]
    if missing:
        raise InputError(f"masterlist has no column {missing[0]!r}{did_you_mean(missing[0], names)}",
                         path=ml_path, column=missing[0])  # fmt: skip
    id_col = "help_id" if "help_id" in names else None
    result = identify_radio(radio, source, config, scheduler=scheduler, progress=progress,
                            extra_columns=[id_col] if id_col else [])  # fmt: skip
    sparse = id_rows(result, config.band, radio.ids, radio.flux_ujy, radio.flux_err_ujy)
    c = result.candidates
    assoc = pd.DataFrame({
        "radio_id": radio.ids[c["query"].to_numpy()],
        "help_id": (c[id_col].astype(str).to_numpy() if id_col
                    else c["opt_row"].astype(str).to_numpy()),
        "sep_arcsec": c["sep_arcsec"].to_numpy(), "mag": c["mag"].to_numpy(),
        "lr": c["lr"].to_numpy(), "reliability": c["reliability"].to_numpy(),
        "best": c["best"].to_numpy(), "accepted": c["accepted"].to_numpy(),
    })  # fmt: skip
    summary = _summary(result, config, n_objects)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        if ml is None:
            write_with_columns(ml_path, tmp / "masterlist", sparse, scheduler=scheduler,
                               progress=progress)  # fmt: skip
        else:
            cols = dense_columns(sparse, len(ml))
            ml = ml.drop(columns=["_healpix_29", *[c for c in cols.columns if c in ml.columns]],
                         errors="ignore")  # fmt: skip
            ml = pd.concat([ml.reset_index(drop=True), cols], axis=1)
            write_hats(ml, tmp / "masterlist", catalog_name="masterlist")
        assoc.to_parquet(tmp / "radio_associations.parquet", index=False)
        plot_radio_id(result, tmp / "radio_id.png", title=f"{config.band}: {radio.ra.size} sources")
        (tmp / "radio_id.json").write_text(json.dumps(summary, indent=2, default=float))
    summary["outputs"] = {
        "masterlist": str(out_dir / "masterlist"),
        "associations": str(out_dir / "radio_associations.parquet"),
        "plot": str(out_dir / "radio_id.png"),
        "summary": str(out_dir / "radio_id.json"),
    }
    return summary


def describe_radio_id(summary: dict, out_dir: str | os.PathLike) -> str:
    """One line: radio sources identified, the LR threshold, Q0 and expected false IDs.

    Parameters
    ----------
    summary : dict - returned by :func:`run_radio_id`
    out_dir : path - the output directory the line names
    """
    s = summary
    return (
        f"{s['n_ids']} of {s['n_radio']} radio sources identified (LR >= "
        f"{s['threshold_lr']:.3g}, Q0 {s['q0']:.3f}, {s['expected_false_ids']:.1f} expected "
        f"false) in {out_dir}"
    )
