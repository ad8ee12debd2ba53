"""Photo-z model files and catalogue readers/writers.

A model is a directory (written atomically) holding

- ``model.json``: ``format`` ("skysense-photoz-gpz"), ``format_version``, the estimator
  parameters, the catalogue columns, scalar fitted values, the names of the arrays and the
  SHA-256 of ``arrays.npz``;
- ``arrays.npz``: the fitted arrays (no object arrays; loaded with ``allow_pickle=False``).

A :class:`~skysense.photoz.ensemble.GPzEnsemble` (format version 4) stores its members' arrays
as ``member<k>.<name>`` and their parameters and fitted scalars under ``members`` in
``model.json``; ``params`` then holds the ensemble's own parameters and ``estimator_params``
the member template's (as given: the members override ``calibrate``).

Nothing in a model file is executed on load (no pickle). Catalogues are read from CSV, FITS,
Parquet, HDF5 (every 1-D dataset of a group) or whitespace-separated text.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_dir, atomic_path
from skysense.errors import InputError
from skysense.photoz.ensemble import GPzEnsemble
from skysense.photoz.gpz import GPzRegressor
from skysense.photoz.model import PhotozModel
from skysense.tables import read_table, table_format

_log = logging.getLogger(__name__)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "save_model",
    "load_model",
    "read_catalogue",
    "write_catalogue",
    "catalogue_format",
    "evaluate_catalogue",
]

FORMAT = "skysense-photoz-gpz"
# 2: variance calibration (variance_scale_); version 1 files load with 1.
# 3: ``inputs`` (magnitudes or colours); older files hold magnitude models.
# 4: GPzEnsemble models (``estimator: "GPzEnsemble"``); single GPz files are unchanged.
# 5: ``inputs: "colours+errors"`` (log errors as inputs); only such models are written as 5,
#    so that older readers refuse them at load rather than at prediction.
FORMAT_VERSION = 5
_ARRAYS = (
    "theta_",
    "coef_",
    "coef_cov_",
    "x_mean_",
    "x_scale_",
    "centres_",
    "precisions_",
    "log_alpha_",
    "noise_weights_",
    "log_eta_",
    "validation_scores_",
)
_SCALARS = (
    "y_mean_",
    "noise_bias_",
    "n_features_in_",
    "n_iter_",
    "best_iteration_",
    "train_loss_",
    "variance_scale_",
    "validation_coverage_raw_",
)


def save_model(model: PhotozModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to the directory ``path`` (replaced atomically if it exists).

    Raises
    ------
    skysense.errors.NotFittedError
        The estimator is not fitted.
    """
    from skysense.errors import NotFittedError

    est = model.estimator
    ensemble = isinstance(est, GPzEnsemble)
    if not hasattr(est, "estimators_" if ensemble else "theta_"):
        raise NotFittedError("the model is not fitted; call fit first")
    members = est.estimators_ if ensemble else [est]
    arrays = {
        (f"member{k}.{name}" if ensemble else name): np.asarray(getattr(e, name))
        for k, e in enumerate(members)
        for name in _ARRAYS
    }
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    doc = {
        "format": FORMAT,
        # The lowest version that holds the model (older readers still load it).
        "format_version": 5 if model.inputs == "colours+errors" else 4 if ensemble else 3,
        "estimator": type(est).__name__,
        "params": _params(est),
        "random_state": est.random_state if isinstance(est.random_state, int) else None,
    }
    if ensemble:
        doc["fitted"] = {
            "variance_scale_": est.variance_scale_,
            "validation_coverage_raw_": _json_number(est.validation_coverage_raw_),
        }
        # the template as given: members have calibrate (and without validation rows
        # validation_fraction) overridden, so a refit of the loaded ensemble needs these
        doc["estimator_params"] = _params(est._template())
        doc["members"] = [
            {
                "params": _params(e),
                "random_state": e.random_state,
                "fitted": {name: _json_number(getattr(e, name)) for name in _SCALARS},
            }
            for e in members
        ]
    else:
        doc["fitted"] = {name: _json_number(getattr(est, name)) for name in _SCALARS}
    doc.update(
        {
            "arrays": list(arrays),
            "arrays_sha256": hashlib.sha256(blob).hexdigest(),
            "bands": list(model.bands),
            "errors": None if model.errors is None else list(model.errors),
            "target": model.target,
            "kind": model.kind,
            "flux_unit": model.flux_unit,
            "missing_values": [float(v) for v in model.missing_values],
            "inputs": model.inputs,
            "info": model.info,
        }
    )
    with atomic_dir(path) as tmp:
        (tmp / "arrays.npz").write_bytes(blob)
        (tmp / "model.json").write_text(json.dumps(doc, indent=2, default=_scalar))
    return Path(path)


def _params(est) -> dict:
    """JSON parameters of an estimator (no nested estimator, no random_state)."""
    return {
        k: v
        for k, v in est.get_params(deep=False).items()
        if k not in ("random_state", "estimator")
    }


def _json_number(value):
    """A scalar for JSON: NaN becomes null (strict JSON has no NaN)."""
    value = _scalar(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def load_model(path: str | os.PathLike) -> PhotozModel:
    """Read a model written by :func:`save_model`, checking format, version and checksum.

    Raises
    ------
    InputError
        Not a model directory, another format or a newer version, or a corrupted array file.
    """
    path = Path(path)
    meta_path, arrays_path = path / "model.json", path / "arrays.npz"
    if not meta_path.is_file() or not arrays_path.is_file():
        raise InputError(
            "not a photo-z model directory (needs model.json and arrays.npz)", path=path
        )
    try:
        doc = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"model.json is not valid JSON: {exc}", path=meta_path) from exc
    if doc.get("format") != FORMAT:
        raise InputError(f"format is {doc.get('format')!r}, expected {FORMAT!r}", path=meta_path)
    if not isinstance(doc.get("format_version"), int) or doc["format_version"] > FORMAT_VERSION:
        raise InputError(
            f"format_version {doc.get('format_version')!r} is not supported "
            f"(this skysense reads up to {FORMAT_VERSION})",
            path=meta_path,
        )
    blob = arrays_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != doc.get("arrays_sha256"):
        raise InputError(
            "checksum mismatch: arrays.npz is corrupted or was modified", path=arrays_path
        )
    try:
        with np.load(_io.BytesIO(blob), allow_pickle=False) as arrays:
            loaded = {name: np.array(arrays[name]) for name in doc["arrays"]}
        est = _estimator_from(doc, loaded)
        return PhotozModel(
            estimator=est,
            bands=list(doc["bands"]),
            errors=doc["errors"],
            target=doc["target"],
            kind=doc["kind"],
            flux_unit=doc["flux_unit"],
            missing_values=tuple(doc["missing_values"]),
            inputs=doc.get("inputs", "mag"),
            info=doc.get("info", {}),
        )
    except InputError:  # already says what is wrong (InputError is a ValueError)
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        # a hand-edited or truncated model.json (the checksum covers arrays.npz only)
        raise InputError(
            f"model.json does not match arrays.npz or lacks a field: {exc!r}", path=meta_path
        ) from exc


def _estimator_from(doc: dict, loaded: dict) -> GPzRegressor | GPzEnsemble:
    """The fitted estimator of a model.json document and its arrays."""
    if doc.get("estimator", "GPzRegressor") == "GPzEnsemble":
        if len(doc["members"]) != doc["params"]["n_estimators"]:
            raise ValueError(
                f"{len(doc['members'])} members for n_estimators={doc['params']['n_estimators']}"
            )
        members = [
            _gpz_from(
                spec["params"],
                spec.get("random_state"),
                spec["fitted"],
                {n: loaded[f"member{k}.{n}"] for n in _ARRAYS},
            )
            for k, spec in enumerate(doc["members"])
        ]
        est = GPzEnsemble(
            estimator=GPzRegressor(**doc.get("estimator_params", doc["members"][0]["params"])),
            **doc["params"],
            random_state=doc.get("random_state"),
        )
        est._set_members(members)
        est.variance_scale_ = float(doc["fitted"]["variance_scale_"])
        raw = doc["fitted"].get("validation_coverage_raw_")
        est.validation_coverage_raw_ = float("nan" if raw is None else raw)
        return est
    return _gpz_from(doc["params"], doc.get("random_state"), doc["fitted"], loaded)


def _gpz_from(params: dict, random_state, fitted: dict, arrays: dict) -> GPzRegressor:
    est = GPzRegressor(**params, random_state=random_state)
    for name, value in arrays.items():
        setattr(est, name, value)
    # Version 1 predates calibration: its variances are uncalibrated (scale 1).
    est.variance_scale_ = 1.0
    est.validation_coverage_raw_ = float("nan")
    for name, value in fitted.items():
        setattr(est, name, value)
    est.variance_scale_ = float(est.variance_scale_)
    est.validation_coverage_raw_ = float(
        "nan" if est.validation_coverage_raw_ is None else est.validation_coverage_raw_
    )
    est.n_features_in_ = int(est.n_features_in_)
    return est


def catalogue_format(path: str | os.PathLike) -> str:
    """``csv``, ``fits``, ``parquet``, ``hdf5`` or ``text`` from the file name.

    The suffixes are :data:`skysense.tables.SUFFIXES`; any other file is whitespace-separated
    text.
    """
    return table_format(path, ("csv", "fits", "parquet", "hdf5"), default="text")


def read_catalogue(
    path: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a catalogue into a DataFrame.

    Parameters
    ----------
    path : path
        CSV, FITS (first table HDU), Parquet, HDF5 (group ``photometry`` or the root: every
        1-D dataset becomes a column) or whitespace-separated text.
    names : list of str, optional
        Column names for text files, overriding the header; a text header is a first line
        starting with ``#`` (or a first line of non-numeric words).
    columns : list of str, optional
        Read only these columns (Parquet, HDF5, FITS; others are subset after reading).

    Raises
    ------
    InputError
        An unreadable file, a text header whose names do not match the number of columns
        (give ``names``), or a requested column that does not exist.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such file", str(path))
    if path.is_dir():
        # A HATS catalogue (the masterlist's layout): the catalogue package reads it.
        from skysense.catalog.hats_io import read_hats_table

        return read_hats_table(path, columns=list(columns) if columns else None)
    fmt = catalogue_format(path)
    if fmt in ("csv", "parquet", "fits"):
        # The shared reader; HDF5 and whitespace text are photo-z formats (training sets).
        return read_table(path, fmt, columns=list(columns) if columns else None)
    try:
        if fmt == "hdf5":
            frame = _read_hdf5(path, columns)
        else:
            frame = _read_text(path, names)
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read {fmt} catalogue: {exc}", path=path) from exc
    if columns:
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise InputError(
                f"no column(s) {absent}; columns are {list(frame.columns)[:30]}", path=path
            )
        frame = frame[list(columns)]
    return frame


def _read_hdf5(path: Path, columns) -> pd.DataFrame:
    import h5py

    with h5py.File(path, "r") as fh:
        group = fh["photometry"] if "photometry" in fh else fh
        data = {}
        for key, item in group.items():
            if isinstance(item, h5py.Dataset) and item.ndim == 1:
                if columns and key not in columns:
                    continue
                data[key] = item[()]
        if not data:
            raise InputError("no 1-D datasets found (looked in /photometry and /)", path=path)
    lengths = {len(v) for v in data.values()}
    if len(lengths) != 1:
        raise InputError(f"datasets have different lengths {sorted(lengths)}", path=path)
    return pd.DataFrame(data)


def _read_text(path: Path, names) -> pd.DataFrame:
    with open(path) as fh:
        first = fh.readline()
        second = fh.readline()
    n_cols = len(second.split()) if second.strip() else len(first.split())
    header = None
    if first.startswith("#"):
        header = first.lstrip("#").split()
    else:
        try:
            [float(t) for t in first.split()]
        except ValueError:
            header = first.split()
    skip = 1 if header is not None else 0
    if names is None:
        if header is None:
            names = [f"col{i + 1}" for i in range(n_cols)]
        elif len(header) != n_cols:
            raise InputError(
                f"the header names {len(header)} columns but the rows have {n_cols}; "
                "give the column names explicitly (names=... or --names)",
                path=path,
            )
        else:
            names = header
    elif len(names) != n_cols:
        raise InputError(f"{len(names)} names given but the rows have {n_cols} columns", path=path)
    return pd.read_csv(path, sep=r"\s+", skiprows=skip, names=list(names), comment="#", header=None)


def write_catalogue(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` atomically as CSV, Parquet or FITS (chosen from the suffix)."""
    path = Path(path)
    fmt = catalogue_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "fits":
            from astropy.table import Table

            Table.from_pandas(frame.reset_index(drop=True)).write(tmp, format="fits")
        elif fmt == "csv":
            frame.to_csv(tmp, index=False)
        else:
            raise InputError("output must be .csv, .parquet or .fits", path=path)
    return path


def evaluate_catalogue(
    model: PhotozModel,
    catalogue: str | os.PathLike,
    out: str | os.PathLike,
    *,
    target: str | None = None,
    names: Sequence[str] | None = None,
    model_path: str | os.PathLike | None = None,
) -> dict:
    """Score ``model`` on the galaxies of ``catalogue`` with known redshifts; write a report.

    Writes ``out/metrics.json`` (:func:`skysense.photoz.metrics.summary` plus the catalogue and
    model names), ``out/zspec_zphot.png`` and ``out/pit.png``.

    Parameters
    ----------
    model : PhotozModel
    catalogue : path - any format :func:`read_catalogue` reads
    out : path - report directory (created)
    target : str, optional - redshift column (default: the model's)
    names : list of str, optional - column names of a whitespace text catalogue
    model_path : path, optional - recorded as ``model`` in the metrics

    Returns
    -------
    dict
        The metrics: ``n``, ``sigma_nmad``, ``outlier_fraction``, ``bias_mean``,
        ``coverage_1sigma``, ``coverage_2sigma``, ``crps_mean``, ...
    """
    from skysense._atomic import atomic_write_text
    from skysense.photoz import metrics
    from skysense.photoz.plots import plot_pit, plot_zspec_zphot
    from skysense.photoz.training import target_values

    source = str(catalogue)
    frame = read_catalogue(catalogue, names=names)
    y = target_values(frame, target or model.target, source)
    pred = model.predict_frame(frame, source=source)
    zphot, err = pred["zphot"].to_numpy(), pred["zphot_err"].to_numpy()
    summary = metrics.summary(y, zphot, err)
    summary["catalogue"] = source
    summary["model"] = str(model_path) if model_path is not None else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    plot_zspec_zphot(y, zphot, out / "zspec_zphot.png")
    plot_pit(y, zphot, err, out / "pit.png")
    return summary
