import numpy as np
import pandas as pd

from skysense.astrocast.plots import (
    plot_class_map,
    plot_forecast,
    plot_granger_distance,
    plot_skill,
)


def test_plots_write_png(tmp_path, shared_data):
    d = pd.date_range("2019-01-01", periods=40, freq="10D")
    f = plot_forecast(
        d[:30],
        np.linspace(20, 60, 30),
        d[30:],
        np.full(10, 50.0),
        np.linspace(1, 8, 10),
        tmp_path / "f.png",
        title="x",
    )
    s = pd.DataFrame(
        {
            "model": ["gp"] * 3 + ["persistence"] * 3,
            "lead_days": [10, 20, 30] * 2,
            "r2": [0.99, 0.97, 0.95, 0.9, 0.8, 0.7],
        }
    )
    k = plot_skill(s, tmp_path / "s.png")
    pairs = pd.DataFrame({"strength": [0.1, 0.01], "significant": [True, False]})
    g = plot_granger_distance(pairs, [50.0, 400.0], tmp_path / "g.png")
    m = plot_class_map(
        shared_data / "vegetation" / "kenya_county_shapes" / "County.shp",
        pd.DataFrame({"region": ["Turkana", "Marsabit"], "p_drought": [0.9, 0.1]}),
        tmp_path / "m.png",
    )
    for p in (f, k, g, m):
        assert p.read_bytes()[:4] == b"\x89PNG"
