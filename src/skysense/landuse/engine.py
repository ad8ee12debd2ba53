"""Classify whole rasters window by window on Dask (memory bounded, with a progress bar).

Each task reads one window of the image plus a halo of ``spec.halo_px`` pixels, computes the
window features (:func:`skysense.landuse.features.window_features`), predicts, and writes its
window of the class raster (and of the optional probability raster) under a lock; the task
returns only per-class pixel counts, so memory is bounded by the number of windows in flight,
whatever the image size. Pixels that are nodata in the image are nodata (0) in the output.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from skysense._atomic import atomic_path
from skysense._dask import compute_with_progress, dask_client
from skysense.errors import ConfigError, InputError
from skysense.landuse.classes import ClassScheme
from skysense.landuse.classify import FlatForest, forest_to_arrays
from skysense.landuse.estimator import LanduseClassifier
from skysense.landuse.features import window_features
from skysense.landuse.io import (
    create_class_raster,
    create_probability_raster,
    raster_info,
    read_block,
    write_quicklook,
    write_window,
)

__all__ = ["ClassifyResult", "classify_raster", "predict_block"]


@dataclasses.dataclass
class ClassifyResult:
    """Summary of a raster classification."""

    class_path: Path
    proba_path: Path | None
    quicklook_path: Path | None
    pixel_counts: dict[int, int]
    n_nodata: int
    n_windows: int
    elapsed_s: float

    def summary(self) -> str:
        """One line: pixels classified, windows, time and nodata pixels."""
        return (
            f"classified {sum(self.pixel_counts.values())} pixels in {self.n_windows} "
            f"windows ({self.elapsed_s:.1f} s); {self.n_nodata} nodata"
        )

    def class_table(self, scheme: ClassScheme) -> str:
        """Tab-separated ``code, name, pixels, fraction`` lines, one per class found.

        Parameters
        ----------
        scheme : ClassScheme - names the codes (the model's ``scheme_``)
        """
        total = sum(self.pixel_counts.values())
        return "\n".join(
            f"{code}\t{scheme.name_of(code)}\t{n}\t{n / total:.4f}"
            for code, n in sorted(self.pixel_counts.items())
        )

    @property
    def written(self) -> list[Path]:
        """The files written: class raster, then probabilities and quick-look when asked for."""
        return [p for p in (self.class_path, self.proba_path, self.quicklook_path) if p]


def predict_block(
    model: LanduseClassifier,
    block: np.ndarray,
    valid: np.ndarray,
    halo: int,
    want_proba: bool = False,
):
    """Classify the interior of a block read with ``halo``.

    Parameters
    ----------
    model : LanduseClassifier
    block : ndarray (bands, rows + 2 halo, cols + 2 halo)
    valid : ndarray (rows + 2 halo, cols + 2 halo) of bool
    halo : int

    Returns
    -------
    codes : ndarray (rows, cols) of int64, 0 = nodata
    proba : ndarray (n_classes, rows, cols) float32 (NaN = nodata) or None
    """
    r, c = block.shape[1] - 2 * halo, block.shape[2] - 2 * halo
    inner = (slice(halo, halo + r), slice(halo, halo + c))
    ok = valid[inner]
    codes = np.zeros((r, c), np.int64)
    proba = None
    k = model.classes_.size
    if want_proba:
        proba = np.full((k, r, c), np.nan, np.float32)
    if not ok.any():
        return codes, proba
    feats = window_features(block, valid, model.spec)[inner]
    X = feats[ok]
    finite = np.isfinite(X).all(axis=1)  # e.g. an index with a zero denominator
    p = model.estimator_.predict_proba(model.select_columns(X[finite]))
    rr, cc = np.nonzero(ok)
    rr, cc = rr[finite], cc[finite]
    codes[rr, cc] = model.classes_[np.argmax(p, axis=1)]
    if want_proba:
        proba[:, rr, cc] = p.T.astype(np.float32)
    return codes, proba


def _window_task(model, raster, r0, c0, nr, nc, class_path, proba_path, lock, dtype):
    import rasterio

    halo = model.spec.halo_px
    with rasterio.open(raster) as src:
        block, valid = read_block(src, r0, c0, nr, nc, halo)
    codes, proba = predict_block(model, block, valid, halo, proba_path is not None)
    counts = np.bincount(codes.ravel(), minlength=int(model.classes_.max()) + 1)
    if counts[0] < codes.size or proba_path is not None:
        with lock:  # one writer at a time: a GeoTIFF cannot take concurrent updates
            write_window(class_path, codes[None].astype(dtype), r0, c0)
            if proba_path is not None:
                write_window(proba_path, proba, r0, c0)
    return counts


def _fast(model: LanduseClassifier) -> LanduseClassifier:
    """The model with sklearn forests swapped for the equivalent compiled FlatForest."""
    est = model.estimator_
    name = getattr(model, "chosen_", {}).get("classifier", model.classifier)  # auto's choice
    if name in ("rf", "et") and hasattr(est, "estimators_"):
        fast = copy.copy(model)
        fast.estimator_ = FlatForest(forest_to_arrays(est))
        return fast
    return model


def classify_raster(
    model: LanduseClassifier,
    raster: str | Path,
    out_path: str | Path,
    *,
    proba_path: str | Path | None = None,
    quicklook_path: str | Path | None = None,
    block_px: int = 1024,
    scheduler: str | None = None,
) -> ClassifyResult:
    """Classify every pixel of ``raster`` into a class-code GeoTIFF.

    Parameters
    ----------
    model : LanduseClassifier
    raster : path
        Image with ``model.spec.n_bands`` bands (nodata respected).
    out_path : path
        Class GeoTIFF (codes; 0 = no data; colour table and class names embedded).
    proba_path : path, optional
        float32 GeoTIFF, one band per class (NaN = no data).
    quicklook_path : path, optional
        PNG with a legend.
    block_px : int
        Window side in pixels (a multiple of 256, the output tile size).
    scheduler : str, optional
        Dask scheduler (see :func:`skysense._dask.dask_client`).

    Raises
    ------
    InputError
        Band-count mismatch, or no valid pixel in the whole image.
    """
    import dask

    if block_px < 256 or block_px % 256:
        raise ConfigError(f"must be a positive multiple of 256, got {block_px}", key="block_px")
    if model.spec is None:
        raise ConfigError("the model has no FeatureSpec (train it with spec=...): it cannot say "
                          "which features to compute from the raster", key="spec")  # fmt: skip
    if model.scheme_ is None:
        raise ConfigError("the model has no class scheme (class codes must be 1..65535)",
                          key="scheme")  # fmt: skip
    info = raster_info(raster)
    if info.count != model.spec.n_bands:
        raise InputError(
            f"raster has {info.count} bands but the model was trained on {model.spec.n_bands} "
            f"({', '.join(model.spec.band_names)})",
            path=raster,
        )
    fast = _fast(model)
    scheme = model.scheme_
    dtype = "uint8" if max(scheme.codes) < 256 else "uint16"
    t0 = time.perf_counter()
    out_path = Path(out_path)
    windows = [
        (r0, c0, min(block_px, info.height - r0), min(block_px, info.width - c0))
        for r0 in range(0, info.height, block_px)
        for c0 in range(0, info.width, block_px)
    ]
    with dask_client(scheduler) as client:
        if client is None:
            lock = threading.Lock()
        else:
            from distributed import Lock

            lock = Lock(f"skysense-landuse-{uuid.uuid4().hex}")
        with contextlib.ExitStack() as stack:
            tmp_class = stack.enter_context(atomic_path(out_path))
            tmp_proba = None if proba_path is None else stack.enter_context(atomic_path(proba_path))
            create_class_raster(tmp_class, info, scheme)
            if tmp_proba is not None:
                create_probability_raster(tmp_proba, info, scheme, fast.classes_)
            model_d = dask.delayed(fast, name=f"landuse-model-{uuid.uuid4().hex}")
            task = dask.delayed(_window_task, pure=False)
            tasks = [
                task(
                    model_d,
                    str(raster),
                    r0,
                    c0,
                    nr,
                    nc,
                    str(tmp_class),
                    None if tmp_proba is None else str(tmp_proba),
                    lock,
                    dtype,
                )  # fmt: skip
                for r0, c0, nr, nc in windows
            ]
            counts = compute_with_progress(tasks, label="classifying windows", client=client)
            width = max(len(c) for c in counts)
            total = np.sum([np.pad(c, (0, width - len(c))) for c in counts], axis=0)
            if total[1:].sum() == 0:
                raise InputError("no valid pixel to classify: every window is nodata", path=raster)
    ql = None
    if quicklook_path is not None:
        ql = write_quicklook(out_path, quicklook_path, scheme)
    return ClassifyResult(
        class_path=out_path,
        proba_path=None if proba_path is None else Path(proba_path),
        quicklook_path=ql,
        pixel_counts={int(c): int(n) for c, n in enumerate(total) if c > 0 and n > 0},
        n_nodata=int(total[0]),
        n_windows=len(windows),
        elapsed_s=time.perf_counter() - t0,
    )
