"""The one-line summaries the CLI prints come from the result types."""

from __future__ import annotations

import pandas as pd

from skysense.xid.blind import describe_match
from skysense.xid.fit import fit
from skysense.xid.hidden import HiddenResult
from skysense.xid.simulate import simulate_field


def test_fit_summary_counts_the_catalogue_flags():
    field = simulate_field(
        12,
        size_pix=24,
        noise_mjy=1.0,
        flux_min_mjy=5,
        flux_max_mjy=40,
        margin_pix=2,
        random_state=3,
    )
    prior = field.sources[["id", "ra", "dec"]]
    # one source far outside the map: not fitted, so flagged
    prior = pd.concat(
        [
            prior,
            pd.DataFrame(
                {"id": ["far"], "ra": [prior.ra.iloc[0] + 5.0], "dec": [prior.dec.iloc[0]]}
            ),
        ],
        ignore_index=True,
    )
    # few draws: some sources are not converged
    res = fit([field.sky], prior, n_samples=20, n_warmup=10, n_chains=2, random_state=0)
    cat = res.catalogue()
    flagged = sum(int(cat[c].sum()) for c in cat.columns if c.startswith("flag_xid_"))
    assert flagged >= 1
    assert res.n_flagged() == flagged
    line = res.summary("out")
    assert line == (
        f"fitted {len(prior)} prior sources in 1 band(s); {len(res.unfitted)} "
        f"source-band(s) not fittable (see unfitted.csv); {flagged} source-band(s) "
        "flagged; outputs in out"
    )
    assert len(res.unfitted) >= 1


def test_hidden_summary():
    cand = pd.DataFrame({"added": [True, False, True]})
    done = HiddenResult(cand, pd.DataFrame(), None, n_fits=2, converged=True)
    assert done.summary("d").startswith(
        "3 candidate(s) in 2 fit(s), 2 added to the prior; converged; outputs in d ("
    )
    more = HiddenResult(cand.iloc[:0], pd.DataFrame(), None, n_fits=5, converged=False)
    assert "0 candidate(s) in 5 fit(s), 0 added" in more.summary("d")
    assert "NOT converged (raise --max-iter)" in more.summary("d")


def test_describe_match():
    t = pd.DataFrame({"no_prior_counterpart": [True, False, True, True]})
    t.attrs["match_radius_arcsec"] = 9.0
    assert describe_match(t) == "3 of 4 blind sources have no prior counterpart within 9 arcsec"
