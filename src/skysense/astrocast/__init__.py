"""AstroCast: vegetation condition (VCI) forecasts for drought early warning, and Granger
causality between pixels.

Pure core: :mod:`.indices`, :mod:`.forecast`, :mod:`.baselines`, :mod:`.hindcast`,
:mod:`.scores`, :mod:`.granger`; files in :mod:`.io`; Dask in :mod:`.engine`; figures in
:mod:`.plots`.
"""

from skysense.astrocast.baselines import (
    GPForecaster,
    LinearARForecaster,
    PersistenceForecaster,
    RandomForestForecaster,
    make_forecaster,
)
from skysense.astrocast.forecast import FastSeasonalGP, KernelParams, SeasonalGP, compose_vci3m
from skysense.astrocast.hindcast import hindcast
from skysense.astrocast.indices import (
    DROUGHT_CLASSES,
    class_probabilities,
    drought_class,
    period_of_year,
    vci,
    vci3m,
)
from skysense.astrocast.scores import (
    alert_rates,
    describe_forecast,
    describe_hindcast,
    hindcast_scores,
    r2_score,
    rmse,
    score_by_lead,
)

__all__ = [
    "DROUGHT_CLASSES",
    "FastSeasonalGP",
    "GPForecaster",
    "KernelParams",
    "LinearARForecaster",
    "PersistenceForecaster",
    "RandomForestForecaster",
    "SeasonalGP",
    "alert_rates",
    "class_probabilities",
    "compose_vci3m",
    "drought_class",
    "hindcast",
    "make_forecaster",
    "period_of_year",
    "r2_score",
    "rmse",
    "score_by_lead",
    "hindcast_scores",
    "describe_hindcast",
    "describe_forecast",
    "vci",
    "vci3m",
]
