"""ModelGrid.describe: the size line ``skysense sed grid`` prints."""

from __future__ import annotations

import numpy as np
from astropy.cosmology import Planck18

from skysense.sed import grid as G


def test_describe_counts_models_redshifts_and_bands(toy_ssp, toy_dust, toy_filters):
    cfg = G.GridConfig(
        bands=tuple(f.name for f in toy_filters),
        redshifts=(0.1, 0.5, 1.0),
        tau_main_gyr=(1.0,),
        age_gyr=(2.0, 5.0),
        av_ism=(0.0, 0.5, 1.0),
        igm=False,
    )
    grid = G.build_grid(cfg, toy_ssp, toy_dust, toy_filters, cosmology=Planck18)
    # one model per combination of the parameter values
    expected = int(np.prod([len(getattr(cfg, name)) for name in G.PARAMETERS]))
    assert grid.n_models == expected and expected % 6 == 0
    assert grid.describe() == f"{grid.n_models} models x 3 redshifts, {len(toy_filters)} bands"
