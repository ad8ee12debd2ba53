"""Raster and model input/output for land use (rasterio, matplotlib, NumPy ``.npz``).

- Windowed reading with a halo and a validity mask (nodata values, NaN and GDAL masks);
- class-code GeoTIFFs with an embedded colour table and class names in the band tags,
  probability GeoTIFFs (one float32 band per class), PNG quick-looks with a legend and
  confusion-matrix plots; every file is written atomically;
- models saved without pickle: a single ``.npz`` (``allow_pickle=False``) holding a JSON
  header, forests as flat node arrays (rebuilt as :class:`~skysense.landuse.classify.FlatForest`)
  and other classifiers as their training table plus hyperparameters (refitted
  deterministically on load). A checksum of the arrays and a stored probe of predictions are
  verified on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skysense._atomic import atomic_path
from skysense.errors import InputError
from skysense.landuse.classes import ClassScheme
from skysense.landuse.classify import FlatForest, forest_to_arrays
from skysense.landuse.features import FeatureSpec, feature_set_columns

if TYPE_CHECKING:
    from skysense.landuse.estimator import LanduseClassifier

__all__ = [
    "RasterInfo",
    "raster_info",
    "read_block",
    "class_profile",
    "create_class_raster",
    "create_probability_raster",
    "write_window",
    "write_class_raster",
    "write_quicklook",
    "write_confusion_png",
    "save_model",
    "load_model",
    "MODEL_FORMAT",
]

MODEL_FORMAT = "skysense.landuse.model/1"
_PROBE_ROWS = 256


@dataclasses.dataclass(frozen=True)
class RasterInfo:
    """Georeferencing and layout of a raster (``crs`` may be None)."""

    path: str
    width: int
    height: int
    count: int
    dtype: str
    crs: Any
    transform: Any
    nodata: float | None
    descriptions: tuple


def raster_info(path: str | Path) -> RasterInfo:
    """Open ``path`` with rasterio and describe it; InputError if unreadable."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            return RasterInfo(str(path), src.width, src.height, src.count, src.dtypes[0],
                              src.crs, src.transform, src.nodata, tuple(src.descriptions))  # fmt: skip
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read raster: {exc}", path=path) from None


def read_block(src, row0: int, col0: int, rows: int, cols: int, halo: int = 0):
    """Read a window plus ``halo`` pixels each side, padding beyond the image as invalid.

    Parameters
    ----------
    src : rasterio dataset (open)
    row0, col0, rows, cols : int
        The window (pixels).
    halo : int
        Extra pixels each side (``window_px // 2`` for window statistics).

    Returns
    -------
    block : ndarray (count, rows + 2 halo, cols + 2 halo), the raster dtype (float for padding)
    valid : ndarray (rows + 2 halo, cols + 2 halo) of bool
        False outside the image, for nodata (any band), NaN, or a GDAL mask of zero.
    """
    from rasterio.enums import MaskFlags
    from rasterio.windows import Window

    r0, c0 = row0 - halo, col0 - halo
    r1, c1 = row0 + rows + halo, col0 + cols + halo
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r1, src.height), min(c1, src.width)
    win = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
    data = src.read(window=win)
    if np.issubdtype(data.dtype, np.floating):
        v = np.isfinite(data).all(axis=0)
    else:
        v = np.ones(data.shape[1:], bool)
    if src.nodata is not None:
        v &= ~(data == src.nodata).any(axis=0)
    elif any(MaskFlags.all_valid not in f for f in src.mask_flag_enums):
        v &= (src.read_masks(window=win) > 0).all(axis=0)
    if (r0, c0, r1, c1) == (rr0, cc0, rr1, cc1):
        return data, v
    block = np.zeros((data.shape[0], r1 - r0, c1 - c0), data.dtype)
    valid = np.zeros((r1 - r0, c1 - c0), bool)
    sl = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    block[:, sl[0], sl[1]] = data
    valid[sl] = v
    return block, valid


def _class_dtype(scheme: ClassScheme) -> str:
    return "uint8" if max(scheme.codes) < 256 else "uint16"


def class_profile(info: RasterInfo, scheme: ClassScheme) -> dict:
    """GeoTIFF profile of a class raster on the grid of ``info`` (nodata 0, tiled, deflate)."""
    return {
        "driver": "GTiff",
        "width": info.width,
        "height": info.height,
        "count": 1,
        "dtype": _class_dtype(scheme),
        "crs": info.crs,
        "transform": info.transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }


def create_class_raster(path: str | Path, info: RasterInfo, scheme: ClassScheme) -> None:
    """Create an empty (all 0 = no data) class raster with colour table and class-name tags."""
    import rasterio

    with rasterio.open(path, "w", **class_profile(info, scheme)) as dst:
        dst.write_colormap(1, scheme.colormap())
        dst.set_band_description(1, f"land-use class ({scheme.name})")
        dst.update_tags(1, **{f"CLASS_{c.code}": c.name for c in scheme.classes})
        dst.update_tags(CLASS_SCHEME=json.dumps(scheme.to_dict()))


def create_probability_raster(
    path: str | Path, info: RasterInfo, scheme: ClassScheme, codes: np.ndarray
) -> None:
    """Create a float32 raster with one band per class code (NaN = no data)."""
    import rasterio

    profile = dict(class_profile(info, scheme), count=len(codes), dtype="float32", nodata=np.nan)
    with rasterio.open(path, "w", **profile) as dst:
        for i, c in enumerate(codes):
            dst.set_band_description(i + 1, f"P({scheme.name_of(int(c))})")
            dst.update_tags(i + 1, CLASS_CODE=str(int(c)))


def write_window(path: str | Path, data: np.ndarray, row0: int, col0: int) -> None:
    """Write ``data (bands, rows, cols)`` into an existing GeoTIFF at (row0, col0)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path, "r+") as dst:
        dst.write(data, window=Window(col0, row0, data.shape[2], data.shape[1]))


def write_class_raster(
    path: str | Path, codes: np.ndarray, *, crs, transform, scheme: ClassScheme
) -> Path:
    """Write a whole class-code array ``(rows, cols)`` (0 = no data) as a GeoTIFF, atomically."""
    codes = np.asarray(codes)
    info = RasterInfo(str(path), codes.shape[1], codes.shape[0], 1, str(codes.dtype), crs,
                      transform, 0, ())  # fmt: skip
    with atomic_path(path) as tmp:
        create_class_raster(tmp, info, scheme)
        write_window(tmp, codes[None].astype(_class_dtype(scheme)), 0, 0)
    return Path(path)


def write_quicklook(
    class_path: str | Path, png_path: str | Path, scheme: ClassScheme, max_px: int = 1024
) -> Path:
    """PNG of a class raster (decimated to at most ``max_px`` a side) with a colour legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio
    from matplotlib.patches import Patch

    with rasterio.open(class_path) as src:
        f = max(1, int(np.ceil(max(src.width, src.height) / max_px)))
        shape = (max(1, src.height // f), max(1, src.width // f))
        codes = src.read(1, out_shape=shape)  # nearest-neighbour decimation keeps codes
    lut = np.zeros((int(max(scheme.codes)) + 1, 4))
    for c in scheme.classes:
        lut[c.code] = (*np.array(c.rgb) / 255.0, 1.0)
    rgba = lut[np.clip(codes, 0, lut.shape[0] - 1)]
    present = set(np.unique(codes).tolist())
    fig, ax = plt.subplots(figsize=(8, 8 * shape[0] / shape[1] + 0.5))
    ax.imshow(rgba, interpolation="nearest")
    ax.set_axis_off()
    handles = [Patch(color=c.color, label=f"{c.code} {c.name}") for c in scheme.classes
               if c.code in present]  # fmt: skip
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title(Path(class_path).name)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(png_path)


def write_confusion_png(report, path: str | Path, title: str = "") -> Path:
    """Plot an :class:`~skysense.landuse.evaluate.AccuracyReport` confusion matrix to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report.confusion)
    k = cm.shape[0]
    fig, ax = plt.subplots(figsize=(1.1 * k + 3, 1.0 * k + 2.5))
    rowsum = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(cm / rowsum, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] / rowsum[i, 0] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(k), report.names, rotation=45, ha="right")
    ax.set_yticks(range(k), report.names)
    ax.set_xlabel("predicted (map)")
    ax.set_ylabel("reference")
    ax.set_title(title or f"OA {report.overall_accuracy:.4f}, kappa {report.kappa:.4f}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Models


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_model(
    model: LanduseClassifier, path: str | Path, *, X_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
) -> Path:  # fmt: skip
    """Save a model as one ``.npz`` without pickle.

    Forests (rf, et) are stored as flat node arrays. Other classifiers are stored as their
    training table and hyperparameters (``X_train``, ``y_train`` required) and refitted on load
    (deterministic given ``random_state``). The first rows of the training table and their
    predicted probabilities are kept as a probe that :func:`load_model` checks.
    """
    import sklearn
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "estimator_")
    if model.spec is None or model.scheme_ is None:
        raise InputError("only a model with a FeatureSpec and a class scheme (codes 1..65535) "
                         "can be saved: train it with spec=...")  # fmt: skip
    est = model.estimator_
    # 'auto' is saved as the model it chose (loading refits that one, not the selection)
    chosen = getattr(model, "chosen_", None) or {"classifier": model.classifier,
                                                 "params": dict(model.params or {})}  # fmt: skip
    arrays: dict[str, np.ndarray] = {}
    if isinstance(est, FlatForest):
        kind = "forest"
        arrays.update({f"forest_{k}": v for k, v in est.arrays.items()})
    elif chosen["classifier"] in ("rf", "et") and hasattr(est, "estimators_"):
        kind = "forest"
        arrays.update({f"forest_{k}": v for k, v in forest_to_arrays(est).items()})
    else:
        kind = "refit"
        if X_train is None or y_train is None:
            raise InputError(f"saving a {model.classifier!r} model needs its training table "
                             "(X_train, y_train): it is refitted on load")  # fmt: skip
        arrays["X_train"] = np.asarray(X_train, np.float64)
        arrays["y_train"] = np.asarray(y_train, np.int64)
    if X_train is not None:
        probe = np.asarray(X_train, np.float64)[:_PROBE_ROWS]
        arrays["probe_X"] = probe
        arrays["probe_proba"] = np.asarray(
            model.estimator_.predict_proba(model.select_columns(probe))
        )
    header = {
        "format": MODEL_FORMAT,
        "kind": kind,
        "classifier": chosen["classifier"],
        "params": dict(chosen["params"]),
        "random_state": model.seed_,
        "n_jobs": model.n_jobs,
        "spec": model.spec.to_dict(),
        "scheme": model.scheme_.to_dict(),
        "scheme_given": model.scheme is not None,
        "feature_names_in": (
            None if not hasattr(model, "feature_names_in_") else list(model.feature_names_in_)
        ),
        "info": model.info_,
        "sklearn_version": sklearn.__version__,
        "checksum_sha256": _checksum(arrays),
    }
    arrays["__header__"] = np.frombuffer(json.dumps(header, default=float).encode(), np.uint8)
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def load_model(path: str | Path) -> LanduseClassifier:
    """Load a model written by :func:`save_model` (no pickle; checksum and probe verified).

    Raises
    ------
    InputError
        Not a skysense land-use model, unknown format version, checksum mismatch, or refitted
        predictions that differ from the stored probe (e.g. another scikit-learn version).
    """
    import sklearn

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"not a skysense model file ({exc})", path=path) from None
    if "__header__" not in arrays:
        raise InputError("not a skysense land-use model (no header)", path=path)
    header = json.loads(arrays.pop("__header__").tobytes().decode())
    if header.get("format") != MODEL_FORMAT:
        raise InputError(f"unsupported model format {header.get('format')!r} "
                         f"(this version reads {MODEL_FORMAT})", path=path)  # fmt: skip
    if _checksum(arrays) != header["checksum_sha256"]:
        raise InputError("model arrays do not match their checksum (corrupt file)", path=path)
    from skysense.landuse.estimator import LanduseClassifier

    spec = FeatureSpec.from_dict(header["spec"])
    scheme = ClassScheme.from_dict(header["scheme"])
    model = LanduseClassifier(
        header["classifier"],
        header["params"],
        spec=spec,
        scheme=scheme if header.get("scheme_given", True) else None,
        random_state=header["random_state"],
        n_jobs=header.get("n_jobs", 1),
    )
    if header["kind"] == "forest":
        est = FlatForest({k[len("forest_"):]: v for k, v in arrays.items()
                          if k.startswith("forest_")})  # fmt: skip
        # the fitted state, as fit would have left it
        model.estimator_ = est
        model.classes_ = np.asarray(est.classes_)
        model.n_features_in_ = len(spec.names)
        model.scheme_ = scheme
        model.seed_ = int(header["random_state"])
        model.chosen_ = {"classifier": header["classifier"], "params": dict(header["params"])}
        model.columns_ = feature_set_columns(header["params"].get("features", "all"), spec,
                                             len(spec.names))  # fmt: skip
        if header.get("feature_names_in") is not None:
            model.feature_names_in_ = np.asarray(header["feature_names_in"], dtype=object)
    else:
        if header["sklearn_version"] != sklearn.__version__:
            warnings.warn(
                f"{path}: model trained with scikit-learn {header['sklearn_version']}, refitting "
                f"with {sklearn.__version__}; predictions are checked against the stored probe",
                stacklevel=2,
            )
        model.fit(arrays["X_train"], arrays["y_train"])
        model.scheme_ = scheme
        if header.get("feature_names_in") is not None:
            model.feature_names_in_ = np.asarray(header["feature_names_in"], dtype=object)
    model.info_ = header["info"]
    if "probe_X" in arrays:
        got = np.asarray(model.estimator_.predict_proba(model.select_columns(arrays["probe_X"])))
        if got.shape != arrays["probe_proba"].shape or not np.allclose(
            got, arrays["probe_proba"], rtol=1e-6, atol=1e-9
        ):
            raise InputError("the loaded model does not reproduce its stored predictions "
                             "(different library versions?); retrain it", path=path)  # fmt: skip
    return model
