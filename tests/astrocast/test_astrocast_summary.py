"""The hindcast scores table and the forecast timing line the CLI prints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.astrocast import describe_forecast, describe_hindcast, hindcast_scores


def _hindcasts() -> pd.DataFrame:
    rows = []
    for model, offset in (("gp", 1.0), ("persistence", 3.0)):
        for lead in (1, 2):
            for k in range(4):
                obs = 20.0 + 10 * k
                rows.append({"model": model, "lead": lead, "observed": obs, "mean": obs + offset})
    rows.append({"model": "gp", "lead": 1, "observed": np.nan, "mean": 50.0})  # the future
    return pd.DataFrame(rows)


def test_hindcast_scores_leave_out_rows_without_observation():
    scores = hindcast_scores(_hindcasts())
    assert list(scores[["model", "lead"]].itertuples(index=False, name=None)) == [
        ("gp", 1),
        ("gp", 2),
        ("persistence", 1),
        ("persistence", 2),
    ]
    assert scores["n"].tolist() == [4, 4, 4, 4]
    # a constant offset d: RMSE = d
    np.testing.assert_allclose(scores["rmse"], [1.0, 1.0, 3.0, 3.0])


def test_describe_hindcast_and_forecast():
    timing = pd.DataFrame(
        {"model": ["gp", "gp", "persistence"], "seconds_per_fit": [0.5, 1.5, 0.25]}
    )
    text = describe_hindcast(hindcast_scores(_hindcasts()), timing).splitlines()
    assert text[0].split()[:4] == ["model", "lead", "n", "r2"]
    assert text[1].split()[:2] == ["gp", "1"] and "1.000" in text[1]
    assert text[-3:] == ["model", "gp             1.00", "persistence    0.25"]
    fc = pd.DataFrame({"region": ["a", "a", "b"], "fit_seconds": [1.0, 1.0, 2.0]})
    assert describe_forecast(fc) == "GP fit 1.50 s per series (mean of 2)"


def test_describe_granger():
    from skysense.astrocast.granger import describe_granger

    pairs = pd.DataFrame({"significant": [True, False, True, False, False]})
    assert describe_granger(pairs, 0.05) == "2 of 5 ordered pairs significant at FDR 0.05"
