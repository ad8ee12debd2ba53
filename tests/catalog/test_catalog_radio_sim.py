"""Radio IDs on a simulated field with truth: calibrated reliabilities, LR better than the
nearest neighbour at the same radius, and Q0 recovered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _radio_synth import make_field

from skysense.catalog.match import pairs_within
from skysense.catalog.radio.config import parse_radio_config
from skysense.catalog.radio.io import RadioCatalogue, identify_radio
from skysense.catalog.radio.lr import ellipse_covariance

RADIUS = 6.0


def _config(colour: bool):
    raw = {
        "radio": {"file": "unused.csv", "band": "sim_1p4ghz", "flux": "flux_mjy",
                  "position_error": {"major": "maj", "minor": "min", "pa": "pa"}},
        "optical": {"magnitude": "m_r", "position_error": {"sigma": "err_arcsec"}},
        "method": {"search_radius_arcsec": RADIUS, "background_inner_arcsec": 15,
                   "background_outer_arcsec": 60, "mag_edges": [16, 24, 0.5],
                   "systematic_arcsec": 0.3},
    }  # fmt: skip
    if colour:
        raw["optical"]["colour"] = ["m_g", "m_r"]
        raw["method"]["colour_edges"] = [-1.0, 0.4, 0.8, 2.5]
    return parse_radio_config(raw)


@pytest.fixture(scope="module")
def field():
    # A crowded field: broad radio errors (1-3 arcsec) and 60,000 objects per deg^2.
    return make_field(n_radio=2500, density_deg2=60000.0, radio_sigma=(1.0, 3.0), seed=11)


def _run(field, colour=False):
    opt, radio = field
    rc = RadioCatalogue(
        radio.ra.to_numpy(), radio.dec.to_numpy(), radio.flux_mjy.to_numpy(),
        radio.flux_err_mjy.to_numpy(), radio.name.to_numpy(),
        ellipse_covariance(radio.maj, radio["min"], radio.pa),
    )  # fmt: skip
    return identify_radio(rc, opt, _config(colour))


@pytest.mark.parametrize("colour", [False, True])
def test_lr_ids_are_calibrated_beat_nearest_neighbour_and_recover_q0(field, colour):
    opt, radio = field
    res = _run(field, colour)
    host = radio.host.to_numpy()
    q0_true = float(np.mean(host >= 0))
    assert res.model.q0.q0 == pytest.approx(q0_true, abs=0.05)

    c = res.candidates
    best = c[c["best"]]
    ok = host[best["query"].to_numpy()] == best["opt_row"].to_numpy()
    rel = best["reliability"].to_numpy()
    # Calibration: in bins of reliability, the fraction of correct IDs matches the bin mean.
    edges = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 1.0 + 1e-9]
    checked = 0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (rel >= lo) & (rel < hi)
        if m.sum() < 15:
            continue
        p = rel[m].mean()
        err = np.sqrt(max(p * (1 - p), 0.02) / m.sum())
        assert abs(ok[m].mean() - p) <= 3 * err + 0.02, (lo, hi, m.sum(), ok[m].mean(), p)
        checked += 1
    assert checked >= 4

    acc = c[c["accepted"]]
    good = host[acc["query"].to_numpy()] == acc["opt_row"].to_numpy()
    n_true = int((host >= 0).sum())
    lr_comp, lr_pur = good.sum() / n_true, good.mean()
    # Reported reliability of the accepted IDs matches the measured purity.
    assert acc["reliability"].mean() == pytest.approx(lr_pur, abs=0.02)
    assert res.threshold.expected_false == pytest.approx((~good).sum(), rel=0.35, abs=10)

    i1, i2, sep = pairs_within(radio.ra, radio.dec, opt.ra, opt.dec, RADIUS)
    nn = pd.DataFrame({"q": i1, "o": i2, "s": sep}).sort_values(["q", "s"]).drop_duplicates("q")
    nn_ok = host[nn.q.to_numpy()] == nn.o.to_numpy()
    nn_comp, nn_pur = nn_ok.sum() / n_true, nn_ok.mean()
    assert lr_comp > nn_comp and lr_pur > nn_pur, (lr_comp, nn_comp, lr_pur, nn_pur)


def test_colour_option_changes_the_model(field):
    plain, col = _run(field), _run(field, colour=True)
    assert col.model.q.shape == (3 * 16,) and plain.model.q.shape == (16,)
    assert col.model.q.sum() == pytest.approx(col.model.q0.q0)
    assert not np.allclose(plain.candidates["lr"], col.candidates["lr"])
