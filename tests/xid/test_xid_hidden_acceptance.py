"""Acceptance of the hidden-source search on a skysense.sim field with a known source list.

The prior list holds every simulated galaxy brighter than 3 mJy at 250 um (about 13 map pixels
per prior source, like XID+'s COSMOS test); the fainter ones are the map's residual confusion.
Ten bright (> 30 mJy), isolated sources are removed from the prior on purpose: they must come
back as candidates. With nothing removed, every candidate is a false one (a blend of sources
below the prior limit): its rate per deg^2 is the false-candidate rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysense.xid.blind.match import nearest_within
from skysense.xid.hidden.search import find_hidden_sources
from skysense.xid.skymap import SkyMap

FWHM = 18.15
AREA_DEG2 = 0.1
FAST = {"n_samples": 300, "n_warmup": 200, "n_chains": 2}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim():
    from skysense.sim import DEFAULT_MAPS, make_maps, simulate_sky
    from skysense.sim.maps import map_sources

    sky = simulate_sky(seed=3, area_deg2=AREA_DEG2)
    spec = tuple(s for s in DEFAULT_MAPS if s.band == "spire_250")
    m = make_maps(sky, spec)["spire_250"]
    smap = SkyMap("spire_250", m.image.astype(float), m.error.astype(float), m.wcs, FWHM)
    truth = map_sources(sky)
    prior = truth[truth.f_spire_250 > 3].reset_index(drop=True)
    prior = prior.assign(id=prior.object_id.astype(str))[["id", "ra", "dec", "f_spire_250"]]
    bright = prior[prior.f_spire_250 > 30]
    others = prior[prior.f_spire_250 > 5]
    _, _, n_near, _ = nearest_within(
        bright.ra.to_numpy(),
        bright.dec.to_numpy(),
        others.ra.to_numpy(),
        others.dec.to_numpy(),
        FWHM,
    )
    isolated = bright[n_near == 1]  # no other > 5 mJy source within one FWHM
    rng = np.random.default_rng(0)
    removed = isolated.iloc[rng.choice(len(isolated), size=10, replace=False)]
    return smap, prior, removed


def test_removed_bright_sources_are_recovered(sim):
    smap, prior, removed = sim
    kept = prior[~prior.id.isin(removed.id)][["id", "ra", "dec"]]
    h = find_hidden_sources([smap], kept, max_iter=2, random_state=0, **FAST)
    cand = h.candidates
    j, _, _, _ = nearest_within(
        removed.ra.to_numpy(),
        removed.dec.to_numpy(),
        cand.ra.to_numpy(),
        cand.dec.to_numpy(),
        0.5 * FWHM,
    )
    assert np.mean(j >= 0) >= 0.9
    rec = cand.iloc[j[j >= 0]]
    # On the SED-model sky (#17; seed 3) 7 of the 9 recovered sources are found, and added, in
    # the first iteration; two (34 and 41 mJy) surface only in the second, where max_iter=2
    # ends the search before adding them (on the earlier black-body sky: all in the first).
    first = (rec.iteration == 1).to_numpy()
    assert first.mean() >= 0.7 and rec[first].added.all()
    assert rec[~first].reason.str.contains("max_iter").all()
    true = removed.f_spire_250.to_numpy()[j >= 0][first]
    # the refit XID+ flux of a recovered source, against its true flux
    assert np.median(np.abs(rec[first].F_SPIRE_250.to_numpy() / true - 1)) < 0.2
    # the recovered sources stand out: brighter than any false candidate (none here)
    false = cand.drop(index=rec.index)
    assert false.empty or rec.flux_mjy.min() > false.flux_mjy.max()


def test_false_candidate_rate_when_nothing_is_removed(sim):
    smap, prior, _ = sim
    h = find_hidden_sources([smap], prior[["id", "ra", "dec"]], refit=False, random_state=0, **FAST)
    cand = h.candidates
    rate = len(cand) / AREA_DEG2
    # blends of sub-limit sources: a few per 100 beams at most, all faint
    assert rate < 250
    assert (cand.flux_mjy < 20).all()
    # none at all on the SED-model sky (#17; seed 3): the share far from priors is then moot
    assert cand.empty or (cand.nearest_prior_arcsec > 0.5 * FWHM).mean() > 0.8
