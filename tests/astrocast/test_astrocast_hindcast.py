import numpy as np
import pandas as pd

from skysense.astrocast.baselines import (
    GPForecaster,
    LinearARForecaster,
    PersistenceForecaster,
    RandomForestForecaster,
)
from skysense.astrocast.engine import hindcast_regions
from skysense.astrocast.hindcast import hindcast
from skysense.astrocast.indices import vci3m
from skysense.astrocast.scores import alert_rates, r2_score, score_by_lead


def _series(seed, n=36 * 8):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 10.0
    e = np.zeros(n)
    for k in range(1, n):
        e[k] = 0.9 * e[k - 1] + rng.normal(0, 8)
    v = np.clip(50 + 15 * np.sin(2 * np.pi * t / 365.25) + e, 0, 100)
    return t, v, vci3m(v, 9, min_periods=1)


def test_hindcast_never_uses_future_data():
    t, v, y3 = _series(0)
    cut = 260
    models = [
        lambda: GPForecaster(refit_every=10),
        PersistenceForecaster,
        lambda: LinearARForecaster(refit_every=5),
        lambda: RandomForestForecaster(n_estimators=10, refit_every=10),
    ]
    for make in models:
        a = hindcast(t, v, y3, make(), n_leads=6, start=240, stop=cut)
        v2, y2 = v.copy(), y3.copy()
        v2[cut:] = 100 - v2[cut:]
        y2[cut:] = -y2[cut:]
        b = hindcast(t, v2, y2, make(), n_leads=6, start=240, stop=cut)
        pd.testing.assert_series_equal(a["mean"], b["mean"])
        pd.testing.assert_series_equal(a["std"], b["std"])


def test_gp_and_ar_beat_persistence_on_persistent_series():
    t, v, y3 = _series(1)
    res = {}
    for name, fc in [
        ("gp", GPForecaster(refit_every=30)),
        ("p", PersistenceForecaster()),
        ("ar", LinearARForecaster()),
    ]:
        h = hindcast(t, v, y3, fc, n_leads=6, start=200, with_probabilities=name == "gp")
        res[name] = score_by_lead(h.dropna(subset=["observed"])).set_index("lead")
    assert res["gp"].loc[6, "r2"] > res["p"].loc[6, "r2"]
    assert res["ar"].loc[6, "r2"] > res["p"].loc[6, "r2"]


def test_engine_runs_regions_and_reports_time():
    series = {f"r{k}": _series(k, 36 * 5) for k in range(2)}
    fc, timing = hindcast_regions(
        series,
        {"persistence": ("persistence", {}), "linear_ar": ("linear_ar", {})},
        n_leads=3,
        start=150,
        scheduler="synchronous",
    )
    assert set(fc["region"]) == {"r0", "r1"} and set(fc["model"]) == {"persistence", "linear_ar"}
    assert (timing["seconds_per_fit"] > 0).all()


def test_scores_by_hand():
    assert r2_score([1, 2, 3], [1, 2, 3]) == 1
    hit, fa = alert_rates([10, 20, 40, 60], [30, 50, 30, 60])
    assert hit == 0.5 and fa == 0.5


def test_gp_calibrated_band_covers_held_out_vci3m():
    t, v, y3 = _series(1)
    h = hindcast(t, v, y3, GPForecaster(refit_every=30), n_leads=6, start=120)
    h = h[h.issue_index > 160].dropna(subset=["observed"])
    z = np.abs(h.observed - h["mean"]) / h["std"]
    assert 0.6 < (z < 1).mean() < 0.85
    assert 0.88 < (z < 2).mean() <= 1.0
