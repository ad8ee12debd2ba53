"""Apply a photo-z model to a large catalogue on Dask, partition by partition.

Each partition is an independent task calling the pure
:meth:`~skysense.photoz.model.PhotozModel.predict_frame`; the work runs where
:func:`skysense._dask.dask_client` says (local threads by default, or a cluster) with a progress
bar from :func:`skysense._dask.compute_with_progress`. Parquet catalogues are read lazily per
row group by Dask; other formats are read once and split into partitions of
``partition_rows`` rows. Rows that cannot be predicted keep NaN and ``zphot_flag = 1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysense._dask import compute_with_progress, dask_client
from skysense.errors import InputError
from skysense.photoz.io import catalogue_format, read_catalogue, write_catalogue
from skysense.photoz.model import FLAG_OK, PhotozModel

__all__ = ["predict_catalogue", "predict_partitions", "predict_hats", "describe_prediction"]


def _predict_partition(frame: pd.DataFrame, model: PhotozModel, source: str | None) -> pd.DataFrame:
    out = model.predict_frame(frame, source=source)
    clash = [c for c in out.columns if c in frame.columns]
    return pd.concat([frame.drop(columns=clash), out], axis=1)


def predict_partitions(
    model: PhotozModel,
    partitions: list[Any],
    *,
    scheduler: str | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Predict for a list of pandas partitions or Dask delayed partitions; one DataFrame."""
    import dask

    task = dask.delayed(_predict_partition, pure=True)
    tasks = [task(part, model, source) for part in partitions]
    with dask_client(scheduler) as client:
        results = compute_with_progress(tasks, label="photo-z prediction", client=client)
    if not results:
        return pd.DataFrame()
    return pd.concat(results, axis=0, ignore_index=True)


def _predict_file(model: PhotozModel, file: str, out: str, source: str) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skysense._atomic import atomic_path

    frame = pq.read_table(file).to_pandas()
    result = _predict_partition(frame, model, source)
    # Same relative path (Norder=/Dir=/Npix=): the output is a HATS catalogue too.
    with atomic_path(out) as tmp:
        pq.write_table(pa.Table.from_pandas(result, preserve_index=False), tmp)
    flags = result["zphot_flag"].to_numpy() if len(result) else np.zeros(0)
    return {"rows": len(result), "ok": int(np.sum(flags == FLAG_OK))}


def predict_hats(
    model: PhotozModel,
    catalogue: str | os.PathLike,
    out: str | os.PathLike,
    *,
    scheduler: str | None = None,
) -> dict:
    """Add the photo-z columns to a HATS catalogue, partition by partition, into a new HATS
    catalogue ``out`` (atomically).

    Each task reads one partition file, predicts and writes the same partition of ``out``;
    the driver holds only counts, whatever the size of the catalogue (a masterlist of
    100 million rows). The HATS metadata are rewritten for the new columns.

    Returns
    -------
    dict
        ``n_rows``, ``n_predicted``, ``n_flagged``, ``n_partitions``, ``out``.
    """
    import shutil

    import dask
    import pyarrow.parquet as pq

    from skysense._atomic import atomic_dir

    src = Path(catalogue)
    files = sorted((src / "dataset").rglob("Npix=*.parquet"))
    if not files:
        raise InputError("not a HATS catalogue (no dataset/Norder=*/... partitions)", path=src)
    model.check_columns(list(pq.read_schema(files[0]).names), str(src))
    out = Path(out)
    with atomic_dir(out) as tmp:
        targets = [tmp / f.relative_to(src) for f in files]
        for t in targets:
            t.parent.mkdir(parents=True, exist_ok=True)
        task = dask.delayed(_predict_file, pure=True)
        tasks = [task(model, str(f), str(t), str(src)) for f, t in zip(files, targets)]
        with dask_client(scheduler) as client:
            results = compute_with_progress(tasks, label="photo-z prediction", client=client)
        import hats.io

        for name in ("partition_info.csv", "hats.properties", "skymap.fits"):
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        for extra in src.glob("skymap.*.fits"):
            shutil.copy2(extra, tmp / extra.name)
        hats.io.write_parquet_metadata(tmp, create_per_partition_stats=False)
    n = sum(r["rows"] for r in results)
    ok = sum(r["ok"] for r in results)
    return {"n_rows": n, "n_predicted": ok, "n_flagged": n - ok, "n_partitions": len(files),
            "out": str(out)}  # fmt: skip


def predict_catalogue(
    model: PhotozModel,
    catalogue: str | os.PathLike,
    out: str | os.PathLike,
    *,
    names: list[str] | None = None,
    partition_rows: int = 200_000,
    scheduler: str | None = None,
) -> dict:
    """Add the photo-z columns to ``catalogue`` and write the result to ``out`` atomically.

    Parameters
    ----------
    model : PhotozModel
    catalogue : path
        Any format :func:`~skysense.photoz.io.read_catalogue` reads.
    out : path
        ``.parquet``, ``.csv`` or ``.fits``.
    names : list of str, optional
        Column names for whitespace text catalogues.
    partition_rows : int
        Rows per task for formats that are not read lazily.
    scheduler : str, optional
        Dask scheduler address (default: local threads).

    Returns
    -------
    dict
        ``n_rows``, ``n_predicted``, ``n_flagged``, ``n_partitions``, ``out``.

    Raises
    ------
    InputError
        The catalogue cannot be read, lacks a model column, or holds an invalid value.
    FileNotFoundError
        The catalogue does not exist.
    """
    if partition_rows < 1:
        raise InputError("partition_rows must be >= 1")
    source = str(catalogue)
    if catalogue_format(catalogue) == "parquet":
        import dask.dataframe as dd

        if not Path(catalogue).exists():
            raise FileNotFoundError(2, "no such file", str(catalogue))  # as read_catalogue
        try:
            ddf = dd.read_parquet(catalogue)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            # dask wraps pyarrow's message in a sentence of its own; keep pyarrow's
            text = " ".join(str(exc).split()).split("Original Message: ", 1)[-1]
            raise InputError(f"cannot read as parquet: {text}", path=catalogue) from None
        model.check_columns(list(ddf.columns), source)
        partitions = list(ddf.to_delayed())
    else:
        frame = read_catalogue(catalogue, names=names)
        model.check_columns(list(frame.columns), source)
        starts = range(0, max(len(frame), 1), partition_rows)
        partitions = [frame.iloc[s : s + partition_rows] for s in starts]
    result = predict_partitions(model, partitions, scheduler=scheduler, source=source)
    write_catalogue(result, out)
    flags = result["zphot_flag"].to_numpy() if len(result) else np.zeros(0)
    return {
        "n_rows": int(len(result)),
        "n_predicted": int(np.sum(flags == FLAG_OK)),
        "n_flagged": int(np.sum(flags != FLAG_OK)),
        "n_partitions": len(partitions),
        "out": str(Path(out)),
    }


def describe_prediction(r: dict) -> str:
    """One line on a :func:`predict_catalogue` run: rows, predicted, flagged, output.

    Parameters
    ----------
    r : dict - returned by :func:`predict_catalogue`
    """
    return (
        f"{r['n_rows']} rows, {r['n_predicted']} predicted, {r['n_flagged']} flagged "
        f"(zphot_flag=1, NaN) -> {r['out']}"
    )
