"""Training samples (pure): the sample table type and the Statlog feature spec.

Readers that build sample tables from files are in :mod:`skysense.landuse.samples_io`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from skysense.landuse.features import FeatureSpec

__all__ = ["SampleTable", "statlog_spec"]


@dataclasses.dataclass
class SampleTable:
    """Features and labels of training samples.

    Attributes
    ----------
    X : ndarray (n, f) float64
    y : ndarray (n,) int64
        Class codes.
    feature_names : list of str
    rows, cols : ndarray (n,) int64
        Raster pixel of each sample (centre pixel; for polygons the first pixel), -1 if none.
    source : ndarray (n,) int64
        Index of the label feature (vector row) each sample came from, -1 for label rasters.
    n_dropped_nodata : int
        Labelled pixels skipped because they were nodata.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    rows: np.ndarray
    cols: np.ndarray
    source: np.ndarray
    n_dropped_nodata: int = 0


def statlog_spec(stats=("mean", "max", "std"), indices=()) -> FeatureSpec:
    """Feature spec of the Statlog Landsat MSS data: bands b1..b4 (green, red, NIR, NIR), 3x3."""
    return FeatureSpec(("b1", "b2", "b3", "b4"), tuple(stats), 3, tuple(indices),
                       (("green", "b1"), ("red", "b2"), ("nir", "b3")))  # fmt: skip
