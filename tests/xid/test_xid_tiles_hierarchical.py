"""Tiled fits with the hierarchical flux prior: the two-pass population scheme (#18)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from skysense.xid.engine import fit_tiles
from skysense.xid.model import GaussianBeam, pointing_matrix
from skysense.xid.simulate import simulate_field


def test_two_pass_population_shared_by_tiles_and_reused_on_restart(tmp_path):
    # fluxes drawn from a known log-normal population: pass 1 (pilot tiles) recovers it,
    # pass 2 fits every tile with it fixed, a restart reuses the saved estimate
    rng = np.random.default_rng(4)
    f = simulate_field(400, size_pix=110, noise_mjy=1.0, margin_pix=3, random_state=4)
    med, sdex = 6.0, 0.3
    flux = med * 10.0 ** (sdex * rng.standard_normal(len(f.sources)))
    # re-render the map with the population fluxes (same positions, same beam)
    yy, xx = np.mgrid[0:110, 0:110]
    a = pointing_matrix(f.sources.x, f.sources.y, xx.ravel(), yy.ravel(), GaussianBeam(18.15), 6.0)
    f.sky.image_mjy[:] = (a @ flux).reshape(110, 110) + rng.standard_normal((110, 110))
    prior = f.sources[["id", "ra", "dec"]]
    kw = {"n_samples": 300, "n_warmup": 300, "n_chains": 2, "random_state": 1}
    kw["flux_kind"] = "hierarchical"
    cat = fit_tiles([f.sky], prior, tmp_path, order=10, buffer_arcsec=40.0, n_pilot=3, **kw)
    assert len(cat) == len(prior) and set(cat["HELP_ID"]) == set(prior["id"])
    pop = json.loads((tmp_path / "population.json").read_text())
    m, s, _alpha = pop["spire_250"]  # 10^mean mJy, sd dex, skew-normal shape
    assert abs(np.log10(m) - np.log10(med)) < 0.1 and abs(s - sdex) < 0.1
    # a restart with a different population file uses the file, not a new pass 1
    (tmp_path / "population.json").write_text(json.dumps({"spire_250": [20.0, 0.1]}))
    first = sorted((tmp_path / "tiles").glob("*.parquet"))[0]
    first.unlink()
    fit_tiles([f.sky], prior, tmp_path, order=10, buffer_arcsec=40.0, n_pilot=3, **kw)
    # the refitted tile saw the 20 mJy, 0.1 dex prior, whose default lower bound is
    # 6 sd below its median (20 x 10^-0.6 = 5.02 mJy): no flux of it below that any more
    again = pd.read_parquet(first)
    before = cat.set_index("HELP_ID").loc[again["HELP_ID"], "F_SPIRE_250"]
    assert before.min() < 4.5 and again["F_SPIRE_250"].min() >= 5.0
    # bright sources recovered in pass 2
    got = cat.set_index("HELP_ID").loc[prior["id"], "F_SPIRE_250"].to_numpy()
    bright = flux > 15
    assert bright.sum() >= 5 and np.median(np.abs(got[bright] / flux[bright] - 1)) < 0.1


def test_pipeline_configuration_accepts_the_hierarchical_prior(tmp_path):
    from skysense.errors import ConfigError
    from skysense.pipeline import parse_pipeline_config

    (tmp_path / "s.yaml").write_text("survey: s\n")
    raw = {"field": {"name": "f"}, "surveys": [{"config": "s.yaml"}]}
    cfg = parse_pipeline_config(
        {**raw, "xid": {"flux_prior": "hierarchical"}}, path=tmp_path / "f.yaml"
    )
    assert cfg.section("xid")["flux_prior"] == "hierarchical"
    with pytest.raises(ConfigError, match="xid.flux_prior: must be one of"):
        parse_pipeline_config({**raw, "xid": {"flux_prior": "hierarchy"}}, path=tmp_path / "f.yaml")
