import numpy as np
import pytest

from skysense.astrocast.granger import (
    deseasonalize,
    granger_f,
    granger_pairs,
    oos_improvement,
    pc_vs_mean,
    strength_vs_distance,
)


def _grid(seed, n_time=400, side=3, coupling=0.6):
    """side x side pixel grid of AR(1) series; pixel 0 drives pixel 1 with lag 1."""
    rng = np.random.default_rng(seed)
    k = side * side
    x = np.zeros((n_time, k))
    for t in range(1, n_time):
        x[t] = 0.5 * x[t - 1] + rng.normal(size=k)
        x[t, 1] += coupling * x[t - 1, 0]
    return x


def test_f_matches_statsmodels():
    from statsmodels.tsa.stattools import grangercausalitytests

    x = _grid(0)
    f, p, _ = granger_f(x[:, 0], x[:, 1], 2)
    ref = grangercausalitytests(np.column_stack([x[:, 1], x[:, 0]]), [2])[2][0]["ssr_ftest"]
    assert f == pytest.approx(ref[0], rel=1e-8) and p == pytest.approx(ref[1], rel=1e-6)


def test_planted_coupling_found_and_nothing_else():
    x = _grid(1)
    res = granger_pairs(x, lag=1, fdr=0.05)
    sig = res[res.significant]
    assert ((sig.source == "0") & (sig.target == "1")).any()
    # 72 null pairs at FDR 5%: expect ~0 false discoveries; allow at most 2
    assert len(sig) - 1 <= 2
    # no coupling planted anywhere: nothing found
    res0 = granger_pairs(_grid(2, coupling=0.0), fdr=0.05, max_lag=3)
    assert res0.significant.sum() <= 1
    coords = {str(i): (i % 3, i // 3) for i in range(9)}
    table = strength_vs_distance(res, coords)
    assert table.n_pairs.sum() == len(res)


def test_linear_and_forest_gain_and_pc_vs_mean():
    x = _grid(3)
    assert oos_improvement(x[:, 0], x[:, 1], 1) > 0.1
    assert oos_improvement(x[:, 0], x[:, 1], 1, model="random_forest") > 0.0
    assert abs(oos_improvement(x[:, 2], x[:, 3], 1)) < 0.05
    out = pc_vs_mean(x, target=1, lag=1)
    assert set(out) == {"own_only", "pc1", "regional_mean"}


def test_deseasonalize_removes_cycle_and_trend():
    t = np.arange(360) * 10.0
    period = np.arange(360) % 36
    y = 3 + 0.01 * t + np.sin(2 * np.pi * period / 36)
    np.testing.assert_allclose(deseasonalize(y, period, t), 0, atol=1e-8)
