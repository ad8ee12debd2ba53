"""The summary lines of the catalog verbs come from the catalog API."""

from __future__ import annotations

import numpy as np

from skysense.catalog.merge_io import describe_merge
from skysense.catalog.prepare_io import describe_coverages
from skysense.catalog.radio.io import describe_radio_id
from skysense.catalog.radius import RadiusSuggestion


def test_describe_merge():
    s = {"n_objects": 12, "radii_arcsec": [0.8, 1.25], "masterlist": "out/ml", "fits": None}
    assert describe_merge(s) == "12 objects written to out/ml (radii 0.8, 1.25 arcsec)"
    s["fits"] = "ml.fits"
    assert describe_merge(s).splitlines()[1] == "FITS copy: ml.fits"


def test_describe_radius():
    s = RadiusSuggestion(1.2345, np.arange(3.0), np.array([5, 1]), np.ones(2), 839.6)
    assert s.describe() == "suggested radius: 1.23 arcsec (about 840 true pairs)"


def test_describe_coverages():
    s = {
        "inputs": [{"input": "a.fits", "area_deg2": 1.0}, {"input": "b.yml", "area_deg2": 0.5}],
        "op": "union",
        "area_deg2": 1.25,
    }
    assert describe_coverages(s).splitlines() == [
        "union of 2 coverages: 1.2500 deg2",
        "  a.fits: 1.0000 deg2",
        "  b.yml: 0.5000 deg2",
    ]
    s["out"] = "c.fits"
    assert describe_coverages(s).splitlines()[0].endswith("1.2500 deg2 written to c.fits")


def test_describe_radio_id():
    s = {
        "n_ids": 7,
        "n_radio": 9,
        "threshold_lr": 0.8123,
        "q0": 0.61234,
        "expected_false_ids": 0.44,
    }
    assert describe_radio_id(s, "out") == (
        "7 of 9 radio sources identified (LR >= 0.812, Q0 0.612, 0.4 expected false) in out"
    )
