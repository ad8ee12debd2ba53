"""Photo-z prediction on a HATS catalogue, partition by partition, equals the whole-table one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysense.catalog.hats_io import hats_files, read_hats_table, write_hats
from skysense.errors import InputError
from skysense.photoz import GPzRegressor
from skysense.photoz.engine import predict_hats
from skysense.photoz.model import PhotozModel


def test_partition_wise_prediction_equals_the_whole_table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(18, 22, (150, 3))
    y = 0.05 * (X[:, 0] - X[:, 1]) + 0.3 + 0.01 * rng.normal(size=150)
    est = GPzRegressor(m=10, covariance="VC", max_iter=10, random_state=0).fit(X, y)
    model = PhotozModel(est, bands=["a", "b", "c"], errors=None, target="z")
    n = 600
    mags = rng.uniform(18, 22, (n, 3))
    mags[::17, 1] = np.nan  # rows with a missing band
    df = pd.DataFrame({"ra": rng.uniform(0, 40, n), "dec": rng.uniform(-5, 5, n),
                       "a": mags[:, 0], "b": mags[:, 1], "c": mags[:, 2]})  # fmt: skip
    src = write_hats(df, tmp_path / "ml", partition_rows=100, highest_order=5)
    info = predict_hats(model, src, tmp_path / "z", scheduler="synchronous")
    assert info["n_rows"] == n and info["n_partitions"] == len(hats_files(src)) > 3
    got = read_hats_table(tmp_path / "z")
    whole = read_hats_table(src)
    expected = model.predict_frame(whole)
    for col in expected.columns:
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float),
                                   rtol=1e-12, equal_nan=True)  # fmt: skip
    assert got[["a", "b", "c"]].equals(whole[["a", "b", "c"]])
    import hats

    assert hats.read_hats(tmp_path / "z").catalog_info.total_rows == n


def test_missing_band_column_is_an_input_error(tmp_path):
    est = GPzRegressor(m=5, max_iter=2, random_state=0).fit(
        np.ones((20, 1)) + np.arange(20)[:, None], np.linspace(0, 1, 20)
    )
    model = PhotozModel(est, bands=["q"], errors=None, target="z")
    src = write_hats(
        pd.DataFrame({"ra": [1.0, 2.0], "dec": [0.0, 1.0], "a": [1.0, 2.0]}), tmp_path / "ml"
    )
    with pytest.raises(InputError):
        predict_hats(model, src, tmp_path / "z", scheduler="synchronous")
    assert not (tmp_path / "z").exists()
