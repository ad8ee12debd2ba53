"""Land-use classification of multispectral imagery (issue 7).

Random forests, gradient boosting and their ensembles on per-band statistics - mean, maximum,
standard deviation of every band over a pixel window or a polygon - spectral indices and their
window statistics, GLCM texture, multi-temporal and object statistics, from training samples to
a classified GeoTIFF map. The default model (``auto``) is chosen by cross-validation on the
training samples, on spatially blocked folds when their pixels are known (issue 20).

Modules: :mod:`~skysense.landuse.features` (pure statistics), :mod:`~skysense.landuse.classes`
(class schemes), :mod:`~skysense.landuse.samples` (training samples; read by
:mod:`~skysense.landuse.samples_io`), :mod:`~skysense.landuse.classify`
(classifiers), :mod:`~skysense.landuse.estimator` (the scikit-learn estimator,
:class:`~skysense.landuse.estimator.LanduseClassifier`), :mod:`~skysense.landuse.evaluate` (accuracy), :mod:`~skysense.landuse.io`
(rasters, models), :mod:`~skysense.landuse.engine` (whole rasters on Dask),
:mod:`~skysense.landuse.texture` (GLCM), :mod:`~skysense.landuse.temporal` (time series,
segments), :mod:`~skysense.landuse.folds` (spatially blocked folds).
"""

from skysense.landuse.classes import ClassScheme, LandClass, get_scheme
from skysense.landuse.classify import (
    CLASSIFIERS,
    FlatForest,
    make_classifier,
)
from skysense.landuse.evaluate import (
    AccuracyReport,
    accuracy_report,
    band_subset_experiment,
    cross_validate,
    feature_importances,
    holdout_evaluate,
    spatial_cross_validate,
)
from skysense.landuse.features import (
    FEATURE_SETS,
    FeatureSpec,
    feature_set_columns,
    sample_features,
    segment_features,
    window_features,
    with_texture,
)
from skysense.landuse.io import load_model, save_model
from skysense.landuse.samples import SampleTable, statlog_spec
from skysense.landuse.samples_io import read_statlog, samples_from_raster

__all__ = [
    "LI2014",
    "STATLOG",
    "ClassScheme",
    "LandClass",
    "get_scheme",
    "CLASSIFIERS",
    "FlatForest",
    "LanduseClassifier",
    "make_classifier",
    "train_model",
    "tune_classifier",
    "AccuracyReport",
    "accuracy_report",
    "band_subset_experiment",
    "cross_validate",
    "feature_importances",
    "holdout_evaluate",
    "spatial_cross_validate",
    "select_classifier",
    "FeatureSpec",
    "sample_features",
    "segment_features",
    "window_features",
    "with_texture",
    "FEATURE_SETS",
    "feature_set_columns",
    "load_model",
    "save_model",
    "SampleTable",
    "read_statlog",
    "samples_from_raster",
    "statlog_spec",
    "classify_raster",
]


def __getattr__(name):
    # The engine imports Dask and the estimator scikit-learn; load them only when asked for.
    # The built-in class schemes are read from their data file at first use.
    if name in ("LI2014", "STATLOG"):
        from skysense.landuse import classes

        return getattr(classes, name)
    if name == "classify_raster":
        from skysense.landuse.engine import classify_raster

        return classify_raster
    if name in ("LanduseClassifier", "train_model", "tune_classifier", "select_classifier"):
        from skysense.landuse import estimator

        return getattr(estimator, name)
    raise AttributeError(name)
