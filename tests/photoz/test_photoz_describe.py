"""The lines ``photoz predict`` and ``photoz evaluate`` print come from the photoz API."""

from __future__ import annotations

import numpy as np

from skysense.photoz.engine import describe_prediction
from skysense.photoz.metrics import describe_summary, summary


def test_describe_summary_of_real_metrics():
    rng = np.random.default_rng(0)
    zs = rng.uniform(0.1, 2.0, 400)
    zp = zs + 0.02 * (1 + zs) * rng.standard_normal(400)
    s = summary(zs, zp, np.full(400, 0.05))
    line = describe_summary(s)
    assert line.startswith(f"400 galaxies: sigma_NMAD={s['sigma_nmad']:.4f} outliers=0.0000 ")
    assert f"bias={s['bias_mean']:+.5f}" in line
    assert line.endswith(f"CRPS={s['crps_mean']:.5f}")
    assert f"coverage 1/2 sigma={s['coverage_1sigma']:.3f}/{s['coverage_2sigma']:.3f}" in line


def test_describe_prediction():
    r = {"n_rows": 10, "n_predicted": 8, "n_flagged": 2, "n_partitions": 1, "out": "z.parquet"}
    assert (
        describe_prediction(r) == "10 rows, 8 predicted, 2 flagged (zphot_flag=1, NaN) -> z.parquet"
    )
