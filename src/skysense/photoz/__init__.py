"""Photometric redshifts with sparse Gaussian processes (GPz).

Layers (see ``STYLE.md``):

- :mod:`skysense.photoz.gpz`: the :class:`GPzRegressor` estimator (pure NumPy/JAX core);
- :mod:`skysense.photoz.ensemble`: :class:`GPzEnsemble`, GPz fits with different seeds
  combined as a mixture;
- :mod:`skysense.photoz.preprocess`: catalogue columns to model inputs (magnitudes, errors,
  missing bands);
- :mod:`skysense.photoz.training`: :func:`train_model`, the training procedure (split, fit,
  held-out metrics) shared by the CLI and the pipeline;
- :mod:`skysense.photoz.metrics`: sigma_NMAD, outliers, bias, coverage, PIT, CRPS;
- :mod:`skysense.photoz.plots`: zspec-zphot and PIT figures;
- :mod:`skysense.photoz.io`: model files (JSON + ``.npz``, no pickle) and catalogue readers;
- :mod:`skysense.photoz.engine`: a model applied to a large catalogue on Dask.
"""

from skysense.photoz.ensemble import GPzEnsemble
from skysense.photoz.gpz import COVARIANCES, GPzPrediction, GPzRegressor
from skysense.photoz.training import train_model

__all__ = ["GPzRegressor", "GPzEnsemble", "GPzPrediction", "COVARIANCES", "train_model"]
