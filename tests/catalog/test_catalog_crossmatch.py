"""crossmatch_table: the joined table of two catalogues, hand-checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysense.catalog.crossmatch import crossmatch_table
from skysense.errors import InputError

ARCSEC = 1.0 / 3600


def _inputs():
    # b0 is 0.5" from a0 and 0.8" from a1; b1 is 0.6" from a1; b2 is alone.
    a = pd.DataFrame({"id": ["a0", "a1"], "mag": [20.0, 21.0]})
    b = pd.DataFrame({"id": ["b0", "b1", "b2"], "flux": [1.0, 2.0, 3.0]})
    ra_a, dec_a = np.array([10.0, 10.0]), np.array([0.0, 1.3 * ARCSEC])
    ra_b = np.array([10.0, 10.0, 11.0])
    dec_b = np.array([0.5 * ARCSEC, 1.3 * ARCSEC + 0.6 * ARCSEC, 0.0])
    return a, b, ra_a, dec_a, ra_b, dec_b


def test_one_to_one_join():
    a, b, *pos = _inputs()
    before = (a.copy(), b.copy())
    out = crossmatch_table(a, b, *pos, 1.0)
    assert list(out.columns) == [
        "id_a", "mag", "id_b", "flux", "row_a", "row_b", "separation_arcsec",
        "n_candidates_a", "n_candidates_b",
    ]  # fmt: skip
    assert list(zip(out["id_a"], out["id_b"])) == [("a0", "b0"), ("a1", "b1")]
    np.testing.assert_allclose(out["separation_arcsec"], [0.5, 0.6], rtol=1e-9)
    assert list(out["n_candidates_a"]) == [1, 2] and list(out["n_candidates_b"]) == [2, 1]
    assert out["n_candidates_a"].dtype == np.int32
    pd.testing.assert_frame_equal(a, before[0])  # inputs untouched
    pd.testing.assert_frame_equal(b, before[1])


def test_all_pairs_and_errors():
    a, b, *pos = _inputs()
    out = crossmatch_table(a, b, *pos, 1.0, all_pairs=True)
    assert list(zip(out["row_a"], out["row_b"])) == [(0, 0), (1, 1), (1, 0)]
    assert len(crossmatch_table(a, b, *pos, 0.1)) == 0
    with pytest.raises(InputError):
        crossmatch_table(a, b, *pos, -1.0)
