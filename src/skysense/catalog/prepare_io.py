"""The per-survey pipeline around :func:`~skysense.catalog.preparation.prepare_table`: read a
pristine catalogue (and the reference) by the survey's configuration, prepare it, draw the
plots, write the prepared table, its provenance JSON and its coverage MOC, each atomically.

The stages and the prepared columns are described in :mod:`skysense.catalog.preparation`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from mocpy import MOC

from skysense.catalog.aperture import ApertureCorrection
from skysense.catalog.config import SurveyConfig, load_config
from skysense.catalog.io import (
    file_checksum,
    read_catalogue,
    read_moc,
    write_catalogue,
    write_moc,
)
from skysense.catalog.moc import combine_mocs, coverage_moc, moc_area_deg2
from skysense.catalog.plots import plot_aperture_correction, plot_offsets
from skysense.catalog.preparation import (
    PreparedSurvey,
    check_reference,
    prepare_table,
    table_positions,
)
from skysense.catalog.starflags import StarMaskLaw
from skysense.errors import InputError

__all__ = [
    "read_reference",
    "survey_positions",
    "CONFIG_SUFFIXES",
    "coverage_of",
    "prepare_survey",
    "write_prepared",
    "describe_prepared",
    "combine_coverages",
    "describe_coverages",
    "prepare_hats",
]


def read_reference(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a Gaia-like reference catalogue.

    Required columns ``ra``, ``dec`` (deg, at ``ref_epoch``); optional ``pmra``, ``pmdec``
    (mas/yr, NaN = 0), ``ref_epoch`` (default 2016.0), ``phot_g_mean_mag``.

    Raises
    ------
    InputError
        Missing columns, non-numeric or out-of-range positions (naming the row).
    """
    path = Path(path)
    df = read_catalogue(path)
    return check_reference(df, path)


def survey_positions(config: SurveyConfig) -> tuple[np.ndarray, np.ndarray]:
    """Read a survey's pristine catalogue and return
    :func:`~skysense.catalog.preparation.table_positions` of it: ``(ra, dec)``, ndarray (n,)
    deg, checked, no cuts; an unreadable catalogue is an ``InputError`` too."""
    path = config.file_path
    return table_positions(read_catalogue(path, config.format), config, path)


#: File suffixes read as survey configurations (others as MOC files) by :func:`coverage_of`.
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


def coverage_of(path: str | os.PathLike, order: int = 10) -> MOC:
    """The coverage MOC of an input: a survey configuration (see :data:`CONFIG_SUFFIXES`)
    gives the MOC of its catalogue's positions at ``order``; any other file is read as a MOC.

    Raises
    ------
    InputError
        Unreadable configuration, catalogue or MOC file; invalid positions.
    """
    path = Path(path)
    if path.suffix.lower() in CONFIG_SUFFIXES:
        ra, dec = survey_positions(load_config(path))
        return coverage_moc(ra, dec, order)
    return read_moc(path)


def prepare_survey(
    config: SurveyConfig | str | os.PathLike,
    *,
    reference: pd.DataFrame | str | os.PathLike | None = None,
    moc_order: int = 10,
    star_mask_law: StarMaskLaw = StarMaskLaw(),
    plots_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> PreparedSurvey:
    """Read a survey by its configuration and prepare it (see :func:`prepare_table`).

    Parameters
    ----------
    config : SurveyConfig or path-like
        The configuration or its YAML/TOML file.
    reference : DataFrame or path-like, optional
        Gaia-like reference catalogue.
    moc_order, star_mask_law
        As in :func:`prepare_table`.
    plots_dir : path-like, optional
        Folder for ``<survey>_astrometry.png`` (offsets before/after) and
        ``<survey>_apcor_<band>.png`` (stars' ``m_total - m_aperture`` and the correction).
    progress : callable, optional
        Called with ``"read"`` and then each of
        :data:`~skysense.catalog.preparation.STAGES` as they finish.
    """
    if not isinstance(config, SurveyConfig):
        config = load_config(config)
    path = config.file_path
    raw = read_catalogue(path, config.format)
    if progress is not None:
        progress("read")
    ref_info = None
    if reference is not None and not isinstance(reference, pd.DataFrame):
        ref_path = Path(reference)
        reference = read_reference(ref_path)
        ref_info = {"file": str(ref_path), "sha256": file_checksum(ref_path)}
    result = prepare_table(
        raw,
        config,
        reference=reference,
        moc_order=moc_order,
        star_mask_law=star_mask_law,
        file_label=str(path),
        progress=progress,
    )
    result.provenance["input"]["sha256"] = file_checksum(path)
    if ref_info is not None:
        result.provenance["reference"].update(ref_info)
    if plots_dir is not None and result.astrometry_pairs:
        png = Path(plots_dir) / f"{config.survey}_astrometry.png"
        plot_offsets(
            result.astrometry_pairs["before"],
            result.astrometry_pairs["after"],
            png,
            title=f"{config.survey}: reference - survey",
            radius_arcsec=config.astrometry_radius_arcsec,
        )
        result.provenance["plots"] = [str(png)]
    if plots_dir is not None:
        t = result.table
        stell = t["stellarity"] if "stellarity" in t else (t.get("flag_gaia", 0) == 3) * 1.0
        for band, rec in result.provenance["aperture_corrections"].items():
            if rec.get("source") != "measured" or not rec.get("applied"):
                continue
            res = ApertureCorrection(
                *(rec[k] for k in ApertureCorrection._fields)  # the measured values
            )
            png = Path(plots_dir) / f"{config.survey}_apcor_{band}.png"
            plot_aperture_correction(
                t[f"m_{band}"].to_numpy(),
                t[f"m_ap_{band}"].to_numpy() - res.value_mag,  # before the correction
                np.asarray(stell, dtype=float),
                res,
                png,
                stellarity_min=rec["stellarity_min"],
                title=f"{config.survey} {band}: aperture correction from stars",
            )
            result.provenance.setdefault("plots", []).append(str(png))
    return result


def write_prepared(
    result: PreparedSurvey,
    out: str | os.PathLike,
    *,
    moc_out: str | os.PathLike | None = None,
    provenance_out: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Write the prepared table, its MOC and its provenance JSON, each atomically.

    Parameters
    ----------
    out : path-like
        The table (format from the suffix: .parquet, .fits, .vot/.xml, .csv, .ecsv).
    moc_out : path-like, optional
        The MOC (FITS); default ``<out stem>_moc.fits`` beside ``out``.
    provenance_out : path-like, optional
        Default ``<out>.provenance.json``.

    Returns
    -------
    dict
        ``{"table", "moc", "provenance"}`` -> paths written.
    """
    out = Path(out)
    moc_out = Path(moc_out) if moc_out else out.with_name(out.name.split(".")[0] + "_moc.fits")
    provenance_out = (
        Path(provenance_out) if provenance_out else out.with_name(out.name + ".provenance.json")
    )
    import contextlib

    from skysense._atomic import atomic_path
    from skysense.catalog.formats import guess_format

    fmt = guess_format(out)
    # All three files are written to temporary names first and renamed together at the end:
    # a failure in any of them leaves none behind.
    with contextlib.ExitStack() as stack:
        tmp_table = stack.enter_context(atomic_path(out))
        tmp_moc = stack.enter_context(atomic_path(moc_out))
        tmp_prov = stack.enter_context(atomic_path(provenance_out))
        write_catalogue(result.table, tmp_table, fmt, meta={"survey": result.provenance["survey"]})
        write_moc(result.moc, tmp_moc)
        prov = dict(result.provenance)
        prov["output"] = {"file": str(out), "sha256": file_checksum(tmp_table), "moc": str(moc_out)}
        tmp_prov.write_text(
            json.dumps(prov, indent=2, default=_json_default) + "\n", encoding="utf-8"
        )
    return {"table": out, "moc": moc_out, "provenance": provenance_out}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def describe_prepared(result: PreparedSurvey, paths: dict[str, Path]) -> str:
    """What a preparation did, from its provenance and the paths :func:`write_prepared` wrote.

    Rows read, after cuts, duplicates removed and written; the astrometric offset (arcsec)
    when a reference was used; the aperture corrections applied (mag); the MOC area (deg2).
    """
    prov = result.provenance
    counts = prov["counts"]
    line = (
        f"{prov['survey']}: {counts['read']} rows read, {counts['after_cuts']} after cuts, "
        f"{counts['duplicates_removed']} duplicates removed, {counts['final']} written to "
        f"{paths['table']}"
    )
    astro = prov.get("astrometry")
    if astro:
        line += (
            f"; astrometry offset ({astro['dra_cosdec_arcsec']:+.3f}, "
            f"{astro['ddec_arcsec']:+.3f}) arcsec from {astro['n_matches']} matches"
        )
    lines = [line]
    for band, rec in prov["aperture_corrections"].items():
        if rec.get("applied"):
            lines.append(f"  aperture correction {band}: {rec['value_mag']:+.4f} mag")
    lines.append(
        f"  MOC {paths['moc']} ({prov['moc']['area_deg2']:.4f} deg2); "
        f"provenance {paths['provenance']}"
    )
    return "\n".join(lines)


def combine_coverages(
    inputs: list[str | os.PathLike],
    op: str = "union",
    *,
    order: int = 10,
    out: str | os.PathLike | None = None,
) -> dict:
    """Combine the coverages of ``inputs`` (MOC files or survey configurations).

    Parameters
    ----------
    inputs : list of path - MOC FITS files, or survey configurations (:func:`coverage_of`)
    op : {"union", "intersection"}
    order : int - MOC order of the configurations' position MOCs
    out : path, optional - write the combined MOC here (FITS, atomically)

    Returns
    -------
    dict
        ``inputs`` (``[{"input", "area_deg2"}, ...]``), ``op``, ``area_deg2`` of the result
        and, when written, ``out``.
    """
    mocs = [coverage_of(name, order) for name in inputs]
    combined = combine_mocs(mocs, op)
    if out:
        write_moc(combined, out)
    summary = {
        "inputs": [{"input": str(n), "area_deg2": moc_area_deg2(m)} for n, m in zip(inputs, mocs)],
        "op": op,
        "area_deg2": moc_area_deg2(combined),
    }
    if out:
        summary["out"] = str(out)
    return summary


def describe_coverages(summary: dict) -> str:
    """The area of the combined coverage and of each input, one line each.

    Parameters
    ----------
    summary : dict - returned by :func:`combine_coverages`
    """
    where = f" written to {summary['out']}" if summary.get("out") else ""
    n, area = len(summary["inputs"]), summary["area_deg2"]
    lines = [f"{summary['op']} of {n} coverages: {area:.4f} deg2{where}"]
    lines += [f"  {i['input']}: {i['area_deg2']:.4f} deg2" for i in summary["inputs"]]
    return "\n".join(lines)


# -- partition by partition (HATS in, HATS out) ---------------------------------------------


def _prepare_partition(config, file: str, order: int, pixel: int, out: str, reference, moc_order):
    """Prepare one HATS partition and write it to ``out``; returns counts, histogram, MOC and
    the partition's calibrations."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skysense.catalog.hats_io import SPATIAL_INDEX_COLUMN, spatial_index, write_partition

    raw = pq.read_table(file).to_pandas().drop(columns=[SPATIAL_INDEX_COLUMN], errors="ignore")
    result = prepare_table(raw, config, reference=reference, moc_order=moc_order,
                           file_label=f"{config.file_path} partition {order}/{pixel}")  # fmt: skip
    table = result.table
    survey = config.survey
    hpx = spatial_index(table[f"{survey}_ra"].to_numpy(), table[f"{survey}_dec"].to_numpy())
    table = table.copy()
    table.insert(0, SPATIAL_INDEX_COLUMN, hpx)
    table = table.iloc[np.argsort(hpx, kind="stable")].reset_index(drop=True)
    info = {"rows": len(table), "moc": result.moc, "histogram": None, "calibration": {}}
    if len(table):
        write_partition(pa.Table.from_pandas(table, preserve_index=False), out, order, pixel)
        cells, counts = np.unique(hpx >> (2 * (29 - 8)), return_counts=True)
        info["histogram"] = (cells, counts)
    prov = result.provenance
    info["calibration"] = {
        "aperture_corrections": prov.get("aperture_corrections"),
        "astrometry": prov.get("astrometry"),
    }
    return info


def prepare_hats(
    config: SurveyConfig | str | os.PathLike,
    out: str | os.PathLike,
    *,
    reference: pd.DataFrame | str | os.PathLike | None = None,
    moc_order: int = 10,
    scheduler: str | None = None,
) -> dict:
    """Prepare a survey given as a HATS catalogue, partition by partition on Dask.

    Each task reads one partition, runs :func:`prepare_table` on it and writes the prepared
    partition (same HEALPix pixel) to the HATS catalogue ``out``; the driver holds only the
    per-partition summaries and unions the coverage MOCs into ``<out>_moc.fits`` beside it
    (where the merge looks for it). Memory is one partition per worker.

    Calibrations are local: aperture corrections (and astrometric offsets, with a reference)
    are measured on each partition's own stars (a partition of the scale simulator is
    several deg^2, thousands of stars), and duplicates are searched within partitions
    (pairs split by a partition edge, ~1e-4 of the rows, are not flagged).

    Parameters
    ----------
    config : SurveyConfig or path-like
        Its ``file`` is the HATS directory.
    out : path-like
        Prepared HATS catalogue directory (written atomically).
    reference : DataFrame or path-like, optional
        Gaia-like reference (read whole: it is small).
    moc_order : int
    scheduler : str, optional
        Dask scheduler address (default local threads).

    Returns
    -------
    dict
        ``rows``, ``partitions``, ``moc`` path and ``calibration`` per partition.
    """
    import dask

    from skysense._atomic import atomic_dir
    from skysense._dask import compute_with_progress, dask_client
    from skysense.catalog.hats_io import finalize_hats, hats_partitions

    if not isinstance(config, SurveyConfig):
        config = load_config(config)
    if reference is not None and not isinstance(reference, pd.DataFrame):
        reference = read_reference(reference)
    import hats.io
    from hats.pixel_math import HealpixPixel

    src = Path(config.file_path)
    pixels = sorted(hats_partitions(src))
    out = Path(out)
    with atomic_dir(out) as tmp:
        tasks = [
            dask.delayed(_prepare_partition)(
                config,
                str(hats.io.paths.pixel_catalog_file(src, HealpixPixel(o, p)).path),
                o,
                p,
                str(tmp),
                reference,
                moc_order,
            )  # fmt: skip
            for o, p in pixels
        ]
        with dask_client(scheduler) as client:
            results = compute_with_progress(
                tasks, label=f"preparing {config.survey}", client=client
            )
        histogram = np.zeros(12 * 4**8, dtype=np.int64)
        written, counts, mocs = [], [], []
        for (o, p), r in zip(pixels, results):
            mocs.append(r["moc"])
            if r["rows"]:
                written.append((o, p))
                counts.append(r["rows"])
                cells, c = r["histogram"]
                histogram[cells] += c
        if not written:
            raise InputError("no row survived the preparation", path=src)
        finalize_hats(tmp, written, counts, histogram, catalog_name=out.name,
                      ra_column=f"{config.survey}_ra", dec_column=f"{config.survey}_dec")  # fmt: skip
    moc = combine_mocs([m for m in mocs if m is not None])
    moc_path = write_moc(moc, out.with_name(out.name + "_moc.fits"))
    return {
        "rows": int(sum(counts)),
        "partitions": len(written),
        "moc": str(moc_path),
        "calibration": {f"{o}/{p}": r["calibration"] for (o, p), r in zip(pixels, results)},
    }
