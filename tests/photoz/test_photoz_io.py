"""Model files (JSON + npz, checksummed) and catalogue readers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skysense.errors import InputError, NotFittedError
from skysense.photometry import flux_ujy_to_mag
from skysense.photoz import GPzRegressor
from skysense.photoz.io import load_model, read_catalogue, save_model, write_catalogue
from skysense.photoz.model import PhotozModel
from skysense.photoz.preprocess import band_matrix, missing_patterns, model_inputs


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.uniform(18, 22, (150, 3))
    y = 0.05 * (X[:, 0] - X[:, 1]) + 0.3 + 0.01 * rng.normal(size=150)
    est = GPzRegressor(m=10, covariance="VC", max_iter=10, random_state=0).fit(X, y)
    return PhotozModel(est, bands=["a", "b", "c"], errors=None, target="z"), X


def test_round_trip_predicts_identically(tmp_path, fitted):
    model, X = fitted
    path = save_model(model, tmp_path / "model")
    doc = json.loads((path / "model.json").read_text())
    assert doc["format_version"] == 3 and len(doc["arrays_sha256"]) == 64
    assert doc["inputs"] == "mag"
    assert doc["fitted"]["variance_scale_"] == model.estimator.variance_scale_
    back = load_model(path)
    assert back.estimator.variance_scale_ == model.estimator.variance_scale_
    Xq = X[:20].copy()
    Xq[::4, 1] = np.nan
    a = model.estimator.predict_components(Xq)
    b = back.estimator.predict_components(Xq)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert back.bands == ["a", "b", "c"] and back.estimator.get_params() == {
        **model.estimator.get_params()
    }


def test_version_1_model_loads_uncalibrated(tmp_path, fitted):
    """A file written before variance calibration (format 1: no ``calibrate`` parameter, no
    ``variance_scale_``) loads, and predicts the uncalibrated variances."""
    model, X = fitted
    est = model.estimator
    path = save_model(model, tmp_path / "model")
    doc = json.loads((path / "model.json").read_text())
    doc["format_version"] = 1
    del doc["params"]["calibrate"]
    del doc["fitted"]["variance_scale_"], doc["fitted"]["validation_coverage_raw_"]
    (path / "model.json").write_text(json.dumps(doc))
    back = load_model(path).estimator
    assert back.variance_scale_ == 1.0
    a, b = est.predict_components(X[:10]), back.predict_components(X[:10])
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_allclose(b.noise_variance * est.variance_scale_, a.noise_variance, rtol=1e-12)


def test_tampered_or_foreign_files_are_refused(tmp_path, fitted):
    model, _ = fitted
    path = save_model(model, tmp_path / "model")
    blob = bytearray((path / "arrays.npz").read_bytes())
    blob[-10] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(blob))
    with pytest.raises(InputError, match="checksum mismatch"):
        load_model(path)
    path = save_model(model, tmp_path / "model2")
    doc = json.loads((path / "model.json").read_text())
    doc["format_version"] = 99
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="format_version 99"):
        load_model(path)
    with pytest.raises(InputError, match="not a photo-z model"):
        load_model(tmp_path)
    with pytest.raises(NotFittedError):
        save_model(PhotozModel(GPzRegressor(), bands=["a"]), tmp_path / "x")


def test_text_header_mismatch_needs_names(tmp_path):
    p = tmp_path / "cat.txt"
    p.write_text("#z a b\n0.1 1 2 3\n0.2 4 5 6\n")
    with pytest.raises(InputError, match="header names 3 columns but the rows have 4"):
        read_catalogue(p)
    frame = read_catalogue(p, names=["z", "a", "b", "c"])
    assert list(frame.columns) == ["z", "a", "b", "c"] and frame["c"].tolist() == [3, 6]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    )
)
def test_text_reader_round_trip(tmp_path, values):
    p = tmp_path / "t.txt"
    rows = "\n".join(" ".join(repr(v) for v in row) for row in values)
    p.write_text("# x y zspec\n" + rows + "\n")
    frame = read_catalogue(p)
    np.testing.assert_array_equal(frame.to_numpy(float), np.asarray(values, float))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_write_read_formats(tmp_path, suffix):
    frame = pd.DataFrame({"z": [0.1, 0.2], "m_r": [20.0, np.nan], "flag": [0, 1]})
    path = write_catalogue(frame, tmp_path / f"cat{suffix}")
    back = read_catalogue(path)
    np.testing.assert_array_equal(back["m_r"].to_numpy(float), frame["m_r"].to_numpy())


def test_band_matrix_missing_fluxes_and_errors():
    frame = pd.DataFrame(
        {"f": [10.0, -1.0, np.nan, 3631e6], "fe": [1.0, 1.0, np.nan, 1.0], "m": [20, 99, 21, 22]}
    )
    X, E = band_matrix(frame, ["f"], ["fe"], kind="flux")
    assert X[0, 0] == pytest.approx(23.9 - 2.5)
    assert X[3, 0] == pytest.approx(0.0, abs=1e-3)  # 3631 Jy is AB magnitude 0
    assert np.isnan(X[1, 0]) and np.isnan(X[2, 0])
    assert E[0, 0] == pytest.approx(2.5 / np.log(10) * 0.1)
    X, _ = band_matrix(frame, ["m"])
    assert np.isnan(X[1, 0]) and missing_patterns(X, ["m"]) == {"none": 3, "m": 1}
    bad = frame.assign(m=[20, np.inf, 21, 22])
    with pytest.raises(InputError, match=r"column 'm', row 1: infinite"):
        band_matrix(bad, ["m"])
    with pytest.raises(InputError, match="column 'nope'"):
        band_matrix(frame, ["nope"])
    with pytest.raises(InputError, match=r"column 'fe', row 0"):
        band_matrix(frame.assign(fe=[np.nan, 1, 1, 1]), ["m"], ["fe"])
    mag, err = flux_ujy_to_mag(np.array([1.0]), np.array([0.1]))
    assert mag[0] == pytest.approx(23.9)


def test_read_catalogue_hats_directory_and_fits_strings(tmp_path):
    import pandas as pd
    from astropy.table import Table

    from skysense.catalog.hats_io import write_hats
    from skysense.photoz.io import read_catalogue, write_catalogue

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "help_id": [f"HELP_J{i:06d}" for i in range(50)],
            "ra": rng.uniform(150, 150.1, 50),
            "dec": rng.uniform(2, 2.1, 50),
            "m_r": rng.uniform(18, 24, 50),
        }
    )
    write_hats(frame, tmp_path / "ml")
    back = read_catalogue(tmp_path / "ml")
    assert sorted(back["help_id"]) == sorted(frame["help_id"])

    Table.from_pandas(frame).write(tmp_path / "c.fits")
    fits_frame = read_catalogue(tmp_path / "c.fits")
    assert fits_frame["help_id"].iloc[3] == "HELP_J000003"
    write_catalogue(fits_frame, tmp_path / "c.parquet")
    import pyarrow.parquet as pq

    assert str(pq.read_schema(tmp_path / "c.parquet").field("help_id").type) in (
        "string",
        "large_string",
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.floats(10, 30)), min_size=5, max_size=5),
        min_size=1,
        max_size=8,
    )
)
def test_colour_inputs_keep_the_magnitudes(rows):
    """Adjacent colours + the middle band (r of ugriz) give the magnitudes back by cumulative
    sums from the reference band; a colour is missing exactly when one of its bands is."""
    X = np.array([[np.nan if v is None else v for v in r] for r in rows], float)
    E = np.where(np.isfinite(X), 0.1, np.nan)
    F, Ef = model_inputs(X, E, "colours")
    assert F.shape == X.shape and Ef.shape == X.shape
    ref = F[:, 4]
    rebuilt = np.column_stack(
        [ref + F[:, 0] + F[:, 1], ref + F[:, 1], ref, ref - F[:, 2], ref - F[:, 2] - F[:, 3]]
    )
    full = np.isfinite(X).all(axis=1)
    np.testing.assert_allclose(rebuilt[full], X[full], atol=1e-9)
    missing = ~np.isfinite(X)
    np.testing.assert_array_equal(~np.isfinite(F[:, :4]), missing[:, :-1] | missing[:, 1:])
    np.testing.assert_allclose(Ef[:, :4][np.isfinite(F[:, :4])], np.sqrt(0.02))
    same, _ = model_inputs(X, None, "mag")
    assert same is X or np.array_equal(same, X, equal_nan=True)
    with pytest.raises(InputError, match="inputs must be"):
        model_inputs(X, E, "fluxes")


def test_colour_model_round_trip(tmp_path):
    """A colour-input model reads magnitudes from the catalogue, converts them itself, and
    keeps doing so after a save and load (format 3 stores ``inputs``)."""
    rng = np.random.default_rng(1)
    X = rng.uniform(18, 22, (150, 3))
    y = 0.05 * (X[:, 0] - X[:, 1]) + 0.3 + 0.01 * rng.normal(size=150)
    F, _ = model_inputs(X, None, "colours")
    est = GPzRegressor(m=10, covariance="VD", max_iter=10, random_state=0).fit(F, y)
    model = PhotozModel(est, bands=["a", "b", "c"], target="z", inputs="colours")
    assert model.input_names() == ["a-b", "b-c", "b"]
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    direct = est.predict(F)
    np.testing.assert_allclose(model.predict_frame(frame)["zphot"], direct)
    back = load_model(save_model(model, tmp_path / "m"))
    assert back.inputs == "colours"
    np.testing.assert_array_equal(back.predict_frame(frame)["zphot"], direct)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(
            st.one_of(st.none(), st.tuples(st.floats(10, 30), st.floats(0, 2))),
            min_size=4,
            max_size=4,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_colour_error_inputs_append_floored_log_errors(rows):
    """``"colours+errors"``: the colour inputs, then log10 of each band's error floored at
    ERROR_FLOOR; a missing band leaves its colours and its error missing; nothing is
    propagated (no input errors)."""
    from skysense.photoz.preprocess import ERROR_FLOOR

    X = np.array([[np.nan if v is None else v[0] for v in r] for r in rows], float)
    E = np.array([[np.nan if v is None else v[1] for v in r] for r in rows], float)
    F, Ef = model_inputs(X, E, "colours+errors")
    assert Ef is None and F.shape == (len(rows), 8)
    colours, _ = model_inputs(X, None, "colours")
    np.testing.assert_array_equal(F[:, :4], colours)
    for i, row in enumerate(rows):
        for k, v in enumerate(row):
            if v is None:
                assert np.isnan(F[i, 4 + k])
            else:  # a plain loop with math.log10, independent of the vectorised code
                assert F[i, 4 + k] == pytest.approx(math.log10(max(v[1], ERROR_FLOOR)))
    with pytest.raises(InputError, match="needs the error columns"):
        model_inputs(X, None, "colours+errors")


def test_colour_error_model_round_trip(tmp_path):
    """A "colours+errors" model reads the error columns as inputs, names them, is written as
    format 5 (older readers refuse it at load) and predicts identically after a load."""
    from skysense.errors import ConfigError
    from skysense.photoz.training import train_model

    rng = np.random.default_rng(2)
    n = 300
    r, z = rng.uniform(16, 18, n), rng.uniform(0.02, 0.3, n)
    # the error carries information: it grows with redshift at a given magnitude
    frame = pd.DataFrame({"g": r + 1.5 * z, "r": r, "i": r - 0.8 * z, "zspec": z})
    for b in "gri":
        frame[f"e{b}"] = 0.01 * np.exp(3 * z) * rng.uniform(0.9, 1.1, n)
    errs = ["eg", "er", "ei"]
    kw = dict(target="zspec", m=8, max_iter=20, covariance="VD", verbose=0)
    model = train_model(frame, ["g", "r", "i"], errors=errs, inputs="colours+errors", **kw)
    assert model.input_names() == ["g-r", "r-i", "r", "log10(eg)", "log10(er)", "log10(ei)"]
    assert model.estimator.n_features_in_ == 6
    X, E = band_matrix(frame, ["g", "r", "i"], errs)
    direct = model.estimator.predict(model_inputs(X, E, "colours+errors")[0])
    out = model.predict_frame(frame)
    np.testing.assert_allclose(out["zphot"], direct)
    assert np.all(out["zphot_err_input"] == 0.0)  # the errors are inputs, not propagated
    path = save_model(model, tmp_path / "m")
    assert json.loads((path / "model.json").read_text())["format_version"] == 5
    back = load_model(path)
    assert back.inputs == "colours+errors"
    np.testing.assert_array_equal(back.predict_frame(frame)["zphot"], direct)
    with pytest.raises(ConfigError, match="needs the error columns"):
        train_model(frame, ["g", "r", "i"], inputs="colours+errors", **kw)


def test_train_model_auto_inputs_tries_log_errors_when_errors_are_given():
    """With error columns, ``inputs="auto"`` also fits ``"colours+errors"``; here the errors
    track redshift (2% jitter) far better than the noisy colours (0.1 mag), so it wins on the
    validation rows, and the kept model beats the colour-only one on fresh rows."""
    from skysense.photoz import metrics
    from skysense.photoz.training import train_model

    def frame(n, seed):
        rng = np.random.default_rng(seed)
        r, z = rng.uniform(16, 18, n), rng.uniform(0.02, 0.3, n)
        noise = 0.1 * rng.normal(size=(2, n))
        f = pd.DataFrame({"g": r + 1.5 * z + noise[0], "r": r, "i": r - 0.8 * z + noise[1]})
        for b in "gri":
            f[f"e{b}"] = 0.01 * np.exp(3 * z) * rng.uniform(0.98, 1.02, n)
        f["zspec"] = z
        return f

    train, fresh = frame(400, 5), frame(500, 6)
    bands, errs = ["g", "r", "i"], ["eg", "er", "ei"]
    kw = dict(target="zspec", m=8, max_iter=30, covariance="VD", verbose=0, errors=errs)
    model = train_model(train, bands, **kw)
    tried = model.info["inputs_validation_score"]
    assert set(tried) == {"colours", "mag", "colours+errors"}
    assert model.inputs == min(tried, key=tried.get) == "colours+errors"
    colours = train_model(train, bands, inputs="colours", **kw)
    z = fresh["zspec"].to_numpy()
    ours = metrics.sigma_nmad(z, model.predict_frame(fresh)["zphot"].to_numpy())
    assert ours < 0.5 * metrics.sigma_nmad(z, colours.predict_frame(fresh)["zphot"].to_numpy())


def test_train_model_auto_inputs_keeps_the_better_on_validation_rows():
    """``inputs="auto"`` fits colours and magnitudes and keeps the smaller validation
    sigma_NMAD + outlier fraction, recomputed here from the validation rows themselves."""
    from skysense.photoz import metrics
    from skysense.photoz.training import split_rows, train_model

    rng = np.random.default_rng(3)
    n = 400
    r = rng.uniform(16, 18, n)
    z = rng.uniform(0.02, 0.3, n)
    # magnitudes: a common brightness plus redshift-dependent colours
    frame = pd.DataFrame(
        {"g": r + 1.5 * z + 0.4, "r": r, "i": r - 0.8 * z - 0.1, "zspec": z}
    ) + pd.DataFrame(
        {"g": 0.01 * rng.normal(size=n), "r": 0.0, "i": 0.01 * rng.normal(size=n), "zspec": 0.0}
    )
    # unweighted: "auto" weights would refit the winner alone (tested below)
    kw = dict(target="zspec", m=8, max_iter=30, seed=0, verbose=0, weights="none")
    model = train_model(frame, ["g", "r", "i"], **kw)
    tried = model.info["inputs_validation_score"]
    assert set(tried) == {"colours", "mag"}
    assert model.inputs == min(tried, key=tried.get) == model.info["inputs"]
    _, valid, _ = split_rows(n, (0.8, 0.1, 0.1), 0)
    for choice in ("colours", "mag"):
        one = train_model(frame, ["g", "r", "i"], inputs=choice, **kw)
        assert "inputs_validation_score" not in one.info and one.inputs == choice
        zv = one.predict_frame(frame.iloc[valid])["zphot"].to_numpy()
        expect = metrics.sigma_nmad(z[valid], zv) + metrics.outlier_fraction(z[valid], zv)
        assert tried[choice] == pytest.approx(expect, abs=1e-6)


def test_train_model_auto_covariance_tries_gc_and_vd():
    from skysense.photoz.training import AUTO_COVARIANCES, train_model

    rng = np.random.default_rng(4)
    n = 300
    r, z = rng.uniform(16, 18, n), rng.uniform(0.02, 0.3, n)
    noise = 0.01 * rng.normal(size=(2, n))
    frame = pd.DataFrame({"g": r + 1.5 * z + noise[0], "r": r, "i": r - 0.8 * z + noise[1]})
    frame["zspec"] = z
    model = train_model(
        frame, ["g", "r", "i"], target="zspec", m=8, max_iter=20, covariance="auto", verbose=0
    )
    tried = model.info["inputs_validation_score"]
    assert set(tried) == {f"{i},{c}" for i in ("colours", "mag") for c in AUTO_COVARIANCES}
    best = min(tried, key=tried.get)
    assert best == f"{model.inputs},{model.estimator.covariance}"
    assert model.info["covariance"] == model.estimator.covariance


def _wide_z_frame(n: int, seed: int) -> pd.DataFrame:
    """Magnitudes whose colours vary non-linearly with z over 0 < z < 2 (0.03 mag scatter)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.0, 2.0, n)
    r = rng.uniform(20, 23, n)
    g = r + 1.2 * np.tanh(2 * z) + 0.3 * z + 0.03 * rng.normal(size=n)
    i = r - 0.6 * np.sin(2.5 * z) - 0.1 * z + 0.03 * rng.normal(size=n)
    return pd.DataFrame({"g": g, "r": r, "i": i, "zspec": z})


def test_train_model_auto_weights_keeps_the_better_on_validation_rows(tmp_path):
    """``weights="auto"`` refits the chosen model with the (1 + z)^-2 weighting
    and keeps the better validation score, recomputed here from the two explicit fits; the
    kept model beats a least-squares line on the colours against the generated truth, and its
    weighting survives a save and load."""
    from sklearn.linear_model import LinearRegression

    from skysense.photoz import metrics
    from skysense.photoz.training import DEFAULT_WEIGHTS, split_rows, train_model

    assert DEFAULT_WEIGHTS == "none"
    frame, test = _wide_z_frame(400, 0), _wide_z_frame(1000, 1)
    kw = dict(target="zspec", m=10, max_iter=40, inputs="colours", covariance="VD", verbose=0)
    model = train_model(frame, ["g", "r", "i"], weights="auto", **kw)
    tried = model.info["weights_validation_score"]
    assert set(tried) == {"none", "normalized"}
    assert model.estimator.weights == min(tried, key=tried.get) == model.info["weights"]
    _, valid, _ = split_rows(len(frame), (0.8, 0.1, 0.1), 0)
    zv_true = frame["zspec"].to_numpy()[valid]
    for w in ("none", "normalized"):
        one = train_model(frame, ["g", "r", "i"], weights=w, **kw)
        assert "weights_validation_score" not in one.info and one.estimator.weights == w
        zv = one.predict_frame(frame.iloc[valid])["zphot"].to_numpy()
        expect = metrics.sigma_nmad(zv_true, zv) + metrics.outlier_fraction(zv_true, zv)
        assert tried[w] == pytest.approx(expect, abs=1e-6)
    # against the truth of new galaxies: better than a straight line on the colours
    z = test["zspec"].to_numpy()
    zp = model.predict_frame(test)["zphot"].to_numpy()
    colours = lambda f: np.column_stack([f["g"] - f["r"], f["r"] - f["i"]])  # noqa: E731
    line = LinearRegression().fit(colours(frame), frame["zspec"]).predict(colours(test))
    assert metrics.sigma_nmad(z, zp) < metrics.sigma_nmad(z, line)
    back = load_model(save_model(model, tmp_path / "m"))
    assert back.estimator.weights == model.estimator.weights and back.info["weights"]
    np.testing.assert_array_equal(back.predict_frame(test)["zphot"], zp)


def test_train_model_without_validation_rows_is_unweighted():
    from skysense.photoz.training import train_model

    model = train_model(
        _wide_z_frame(200, 2), ["g", "r", "i"], target="zspec", m=6, max_iter=10,
        inputs="colours", covariance="VD", split=(0.9, 0.0, 0.1), weights="auto", verbose=0,
    )  # fmt: skip
    assert model.estimator.weights == "none" and "weights_validation_score" not in model.info
