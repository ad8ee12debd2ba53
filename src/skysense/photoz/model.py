"""A trained photo-z model bound to catalogue columns (pure pandas in, pandas out).

:class:`PhotozModel` keeps a fitted :class:`~skysense.photoz.gpz.GPzRegressor` together with the
catalogue columns it was trained on, so that applying it to a new catalogue (or one partition
of it) is one call, :meth:`PhotozModel.predict_frame`, which adds

- ``zphot``: predictive mean;
- ``zphot_err``: total predictive standard deviation;
- ``zphot_err_model``, ``zphot_err_noise``, ``zphot_err_input``: the standard deviations of the
  three parts (model uncertainty, intrinsic noise, propagated input errors);
- ``zphot_flag``: 0 = predicted; 1 = no usable band (all missing): the numbers are NaN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from skysense.errors import InputError
from skysense.photoz.ensemble import GPzEnsemble
from skysense.photoz.gpz import GPzRegressor
from skysense.photoz.preprocess import DEFAULT_MISSING, band_matrix, model_inputs

__all__ = ["PhotozModel", "OUTPUT_COLUMNS", "FLAG_OK", "FLAG_NO_BANDS"]

OUTPUT_COLUMNS = (
    "zphot",
    "zphot_err",
    "zphot_err_model",
    "zphot_err_noise",
    "zphot_err_input",
    "zphot_flag",
)
FLAG_OK = 0
FLAG_NO_BANDS = 1


@dataclasses.dataclass
class PhotozModel:
    """A fitted estimator plus the catalogue columns it reads.

    Parameters
    ----------
    estimator : GPzRegressor or GPzEnsemble
        Fitted.
    bands : list of str
        Band columns in input order.
    errors : list of str or None
        Error columns (the model propagates them) or None.
    target : str
        Name of the training target column (informational).
    kind, flux_unit, missing_values
        How band columns are read (:func:`~skysense.photoz.preprocess.band_matrix`).
    inputs : {"mag", "colours", "colours+errors"}
        What the estimator sees (:func:`~skysense.photoz.preprocess.model_inputs`); "mag" for
        models written before colours existed. ``"colours+errors"`` needs ``errors``.
    info : dict
        Free metadata (training set size, test metrics...), saved with the model.
    """

    estimator: GPzRegressor | GPzEnsemble
    bands: list[str]
    errors: list[str] | None = None
    target: str = "zspec"
    kind: str = "mag"
    flux_unit: str = "uJy"
    missing_values: Sequence[float] = DEFAULT_MISSING
    inputs: str = "mag"
    info: dict = dataclasses.field(default_factory=dict)

    def features(self, frame: pd.DataFrame, source: str | None = None):
        """Inputs (n, d) and errors (n, d) or None from ``frame``'s columns (as ``inputs``)."""
        X, E = band_matrix(
            frame,
            self.bands,
            self.errors,
            kind=self.kind,
            flux_unit=self.flux_unit,
            missing_values=self.missing_values,
            source=source,
        )
        return model_inputs(X, E, self.inputs)

    def input_names(self) -> list[str]:
        """Names of the estimator's inputs, e.g. ``["u-g", "g-r", "r-i", "i-z", "r"]`` (with
        ``"colours+errors"`` followed by ``"log10(eu)"``... for error columns ``eu``...)."""
        b = list(self.bands)
        if self.inputs == "mag" or len(b) < 2:
            names = b
        else:
            names = [f"{x}-{y}" for x, y in zip(b[:-1], b[1:])] + [b[(len(b) - 1) // 2]]
        if self.inputs == "colours+errors":
            names += [f"log10({e})" for e in self.errors or ()]
        return names

    def check_columns(
        self, columns: Sequence[str], source: str | None = None, *, fitted: bool = True
    ) -> None:
        """Raise :class:`InputError` naming any band or error column absent from ``columns``.

        ``fitted=False`` words it for a model about to be trained (the columns asked for).
        """
        needed = list(self.bands) + list(self.errors or [])
        absent = [c for c in needed if c not in set(columns)]
        if not absent:
            return
        if fitted:
            why = f"that the model was trained on (model bands: {self.bands})"
        else:  # no model exists yet
            why = f"given as bands or errors to train on (its columns: {list(columns)[:30]})"
        raise InputError(f"the catalogue lacks column(s) {absent} {why}", path=source)

    def check_bands(self, bands: Sequence[str] | None) -> None:
        """Raise :class:`InputError` if any of ``bands`` is not one of the model's bands."""
        unseen = [b for b in bands or () if b not in self.bands]
        if unseen:
            raise InputError(
                f"band(s) {unseen} were never seen by the model, which was trained on "
                f"{self.bands}; train a model with those bands"
            )

    def predict_frame(self, frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
        """The output columns (see module doc) for the rows of ``frame``, same index."""
        self.check_columns(frame.columns, source)
        X, err = self.features(frame, source)
        # Rows with an unusable error (NaN) on an observed band were rejected by band_matrix.
        pred = self.estimator.predict_components(X, X_err=err)
        flag = np.where(np.isfinite(pred.mean), FLAG_OK, FLAG_NO_BANDS).astype(np.int16)
        return pd.DataFrame(
            {
                "zphot": pred.mean,
                "zphot_err": np.sqrt(pred.variance),
                "zphot_err_model": np.sqrt(pred.model_variance),
                "zphot_err_noise": np.sqrt(pred.noise_variance),
                "zphot_err_input": np.sqrt(pred.input_variance),
                "zphot_flag": flag,
            },
            index=frame.index,
        )
