"""Split R-hat and bulk ESS against ArviZ."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skysense.xid.diagnostics import ess_bulk, split_rhat, summarise_convergence

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import arviz as az


@pytest.mark.parametrize("n_draws", [200, 501])
def test_matches_arviz(n_draws):
    rng = np.random.default_rng(3)
    x = 0.05 * np.cumsum(rng.normal(size=(4, n_draws, 3)), axis=1) + rng.normal(
        size=(4, n_draws, 3)
    )
    x[1] += 0.3
    for i in range(3):
        assert split_rhat(x)[i] == pytest.approx(float(az.rhat(x[:, :, i])), rel=1e-10)
        assert ess_bulk(x)[i] == pytest.approx(float(az.ess(x[:, :, i])), rel=1e-10)


def test_flags_stuck_chain():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 300, 2))
    x[0, :, 1] += 5.0
    rhat, ess, flag = summarise_convergence(x)
    assert not flag[0] and flag[1] and rhat[1] > 1.5
