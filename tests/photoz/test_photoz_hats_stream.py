"""Photo-z on a HATS masterlist streamed per partition and per batch (#19): equal to the
in-memory predictor row for row, on threads and on a cluster of worker processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skysense.catalog.hats_io import hats_files, read_hats_table, write_hats
from skysense.errors import InputError
from skysense.photoz import GPzRegressor
from skysense.photoz.engine import _predict_file, predict_hats
from skysense.photoz.model import OUTPUT_COLUMNS, PhotozModel

BANDS = ["m_u", "m_g", "m_r", "m_i"]
ERRORS = ["merr_u", "merr_g", "merr_r", "merr_i"]


def _masterlist(n: int, seed: int) -> pd.DataFrame:
    """Magnitudes with missing bands as NaN and as the 99 sentinel, rows with no band at all,
    string identifiers and an extra column that the narrow output drops."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.1, 1.5, n)
    mags = 21 + rng.normal(0, 0.5, (n, 1)) + np.outer(z, [1.2, 0.8, 0.4, 0.0])
    errs = rng.uniform(0.02, 0.2, (n, 4))
    mags[rng.random((n, 4)) < 0.15] = np.nan
    mags[rng.random((n, 4)) < 0.05] = 99.0
    mags[::41] = np.nan  # no band: flagged, NaN
    frame = pd.DataFrame({"help_id": [f"HELP_J{i:07d}" for i in range(n)],
                          "ra": rng.uniform(0, 30, n), "dec": rng.uniform(-10, 10, n),
                          "stellarity": rng.random(n), "z_true": z})  # fmt: skip
    for k, (b, e) in enumerate(zip(BANDS, ERRORS)):
        frame[b], frame[e] = mags[:, k], errs[:, k]
    return frame


def _fit(model: PhotozModel, frame: pd.DataFrame, **kw) -> PhotozModel:
    """``model`` with a small GPz fitted on the rows of ``frame`` that have a band."""
    X, E = model.features(frame)
    rows = np.isfinite(X).any(axis=1)
    err = None if E is None else E[rows]
    model.estimator = GPzRegressor(random_state=0, **kw).fit(
        X[rows], frame["z_true"].to_numpy()[rows], X_err=err
    )
    return model


@pytest.fixture(scope="module")
def model() -> PhotozModel:
    """GPz on colours and log errors (the scale benchmark's inputs)."""
    train = _masterlist(300, seed=1)
    m = PhotozModel(None, bands=BANDS, errors=ERRORS, target="z_true", inputs="colours+errors")
    return _fit(m, train, m=8, max_iter=8)


@pytest.fixture(scope="module")
def masterlist(tmp_path_factory):
    frame = _masterlist(700, seed=2)
    path = write_hats(frame, tmp_path_factory.mktemp("ml") / "ml", partition_rows=120,
                      highest_order=6)  # fmt: skip
    assert len(hats_files(path)) >= 4
    return path


def _compare(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.set_index("help_id").loc[expected.index]
    assert got["zphot_flag"].to_numpy().tolist() == expected["zphot_flag"].tolist()
    for col in OUTPUT_COLUMNS:
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float),
                                   rtol=1e-12, atol=0, equal_nan=True, err_msg=col)  # fmt: skip


def test_narrow_streamed_output_equals_the_in_memory_predictor(model, masterlist, tmp_path):
    whole = read_hats_table(masterlist)
    expected = model.predict_frame(whole).set_axis(whole["help_id"])
    assert 0 < (expected["zphot_flag"] == 1).sum() < len(whole)  # both kinds of rows
    partial = whole[BANDS].isin([99.0]) | whole[BANDS].isna()
    assert 0.2 < (partial.any(axis=1) & ~partial.all(axis=1)).mean() < 0.9  # some bands missing
    # 37-row batches: every partition is cut into several batches, the last one short.
    info = predict_hats(model, masterlist, tmp_path / "z", scheduler="synchronous",
                        columns=["help_id"], batch_rows=37)  # fmt: skip
    assert (info["n_rows"], info["n_partitions"]) == (len(whole), len(hats_files(masterlist)))
    assert info["n_flagged"] == int((expected["zphot_flag"] == 1).sum())
    got = read_hats_table(tmp_path / "z")
    # The HATS index and position columns are kept; the photometry is not.
    assert set(got.columns[:4]) == {"_healpix_29", "help_id", "ra", "dec"}
    assert list(got.columns[4:]) == list(OUTPUT_COLUMNS)
    _compare(got, expected)
    # No prediction: null (as pandas writes NaN), so SQL sees NULL once published.
    flagged = pq.read_table(tmp_path / "z" / "dataset", columns=["zphot", "zphot_flag"])
    assert flagged["zphot"].null_count == info["n_flagged"] > 0
    # Partition by partition: the same files, rows in the input's order.
    for f in hats_files(masterlist):
        out = tmp_path / "z" / f.relative_to(masterlist)
        assert pq.read_table(out, columns=["help_id"]).equals(pq.read_table(f, columns=["help_id"]))
    import hats

    assert hats.read_hats(tmp_path / "z").catalog_info.total_rows == len(whole)


def test_default_output_carries_every_input_column_unchanged(model, masterlist, tmp_path):
    predict_hats(model, masterlist, tmp_path / "z", scheduler="synchronous", batch_rows=50)
    for f in hats_files(masterlist):
        src = pq.read_table(f)
        out = pq.read_table(tmp_path / "z" / f.relative_to(masterlist))
        assert out.column_names == src.column_names + list(OUTPUT_COLUMNS)
        assert out.select(src.column_names).equals(src)  # types too (large strings stay)


def test_propagated_errors_stream_as_in_memory(masterlist, tmp_path):
    """A model that propagates the errors (input variance, the per-group path of GPz)."""
    train = _masterlist(200, seed=3)
    m = _fit(PhotozModel(None, bands=BANDS, errors=ERRORS, target="z_true", inputs="colours"),
             train, m=6, max_iter=5)  # fmt: skip
    whole = read_hats_table(masterlist)
    expected = m.predict_frame(whole).set_axis(whole["help_id"])
    assert np.nanmax(expected["zphot_err_input"]) > 0
    predict_hats(m, masterlist, tmp_path / "z", scheduler="threads", columns=["help_id"],
                 batch_rows=64)  # fmt: skip
    _compare(read_hats_table(tmp_path / "z"), expected)


def test_an_invalid_value_names_its_row_in_the_partition_file(model, tmp_path):
    frame = _masterlist(50, seed=4)
    frame.loc[43, "m_r"] = np.inf
    frame.loc[43, "help_id"] = "BAD"
    src = write_hats(frame, tmp_path / "ml", partition_rows=1000)
    (file,) = hats_files(src)
    row = pq.read_table(file, columns=["help_id"]).column(0).to_pylist().index("BAD")
    with pytest.raises(InputError) as info:
        predict_hats(model, src, tmp_path / "z", scheduler="synchronous", batch_rows=7)
    assert (info.value.row, info.value.column) == (row, "m_r")
    assert not (tmp_path / "z").exists()


def test_an_empty_partition_file_gives_an_empty_output_with_the_columns(model, tmp_path):
    schema = pa.schema(
        [("help_id", pa.large_string())] + [(c, pa.float64()) for c in BANDS + ERRORS]
    )
    pq.write_table(schema.empty_table(), tmp_path / "in.parquet")
    r = _predict_file(
        model, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), ["help_id"]
    )
    out = pq.read_table(tmp_path / "out.parquet")
    assert r == {"rows": 0, "ok": 0}
    assert out.num_rows == 0 and out.column_names == ["help_id", *OUTPUT_COLUMNS]


def test_columns_to_keep_must_exist(model, masterlist, tmp_path):
    with pytest.raises(InputError, match="nope"):
        predict_hats(model, masterlist, tmp_path / "z", columns=["help_id", "nope"])
    assert not (tmp_path / "z").exists()


def test_a_cluster_of_worker_processes_writes_the_same_files(model, masterlist, tmp_path):
    from distributed import Client, LocalCluster

    predict_hats(model, masterlist, tmp_path / "local", scheduler="synchronous",
                 columns=["help_id"])  # fmt: skip
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GB",
                      dashboard_address=":0") as cluster, Client(cluster) as client:  # fmt: skip
        info = predict_hats(model, masterlist, tmp_path / "cluster",
                            scheduler=cluster.scheduler_address, columns=["help_id"])  # fmt: skip
        workers = {w["id"] for w in client.scheduler_info()["workers"].values()}
    assert len(workers) == 2 and info["n_partitions"] >= 4
    for f in hats_files(tmp_path / "local"):
        other = tmp_path / "cluster" / f.relative_to(tmp_path / "local")
        assert pq.read_table(other).equals(pq.read_table(f), check_metadata=True), f.name


def test_cli_keep_columns_writes_the_narrow_table(model, masterlist, tmp_path, capsys):
    """``photoz predict --keep-columns help_id``: identifiers, HATS positions and the photo-z
    only, equal to the in-memory predictor; an unknown column is one error line, exit 2."""
    from skysense.cli.__main__ import main
    from skysense.photoz.io import save_model

    save_model(model, tmp_path / "model")
    base = ["photoz", "predict", str(tmp_path / "model"), str(masterlist)]
    out = tmp_path / "z"
    assert main([*base, "--out", str(out), "--keep-columns", "help_id"]) == 0
    got = read_hats_table(out)
    assert "stellarity" not in got.columns and "m_u" not in got.columns
    assert {"help_id", "ra", "dec", *OUTPUT_COLUMNS} <= set(got.columns)
    whole = read_hats_table(masterlist)
    _compare(got, model.predict_frame(whole).set_axis(whole["help_id"]))
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main([*base, "--out", str(bad), "--keep-columns", "help_id,nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skysense: error:") and "nope" in err[0]
    assert not bad.exists()
    flat = tmp_path / "flat.parquet"
    read_hats_table(masterlist).to_parquet(flat)
    assert main([*base[:3], str(flat), "--out", str(bad), "--keep-columns", "help_id"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skysense: error: ") and "--keep-columns needs a HATS" in err
