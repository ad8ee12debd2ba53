"""GPzEnsemble: the mixture against Monte Carlo draws, a one-member ensemble against a single
GPz, Dask schedulers against each other, scikit-learn's contract, and the model file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import (
    check_estimator_cloneable,
    check_fit_idempotent,
    check_get_params_invariance,
    check_methods_subset_invariance,
)

from skysense.errors import ConfigError, InputError, NotFittedError
from skysense.photoz import GPzEnsemble, GPzRegressor
from skysense.photoz.ensemble import mixture
from skysense.photoz.gpz import GPzPrediction
from skysense.photoz.io import load_model, save_model
from skysense.photoz.metrics import sigma_nmad
from skysense.photoz.model import PhotozModel
from skysense.photoz.training import train_model


def _toy(n=200, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, d))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    return X, y


def _small(**kw):
    return GPzEnsemble(GPzRegressor(m=8, max_iter=15, n_iter_no_change=15), **kw)


@pytest.fixture(scope="module")
def fitted():
    X, y = _toy()
    Xv, yv = _toy(80, seed=1)
    est = _small(n_estimators=3, random_state=0).fit(X, y, X_valid=Xv, y_valid=yv)
    return est, Xv, yv


def test_mixture_moments_match_monte_carlo_draws():
    rng = np.random.default_rng(0)
    preds = [
        GPzPrediction(
            rng.normal(size=4), rng.uniform(0.1, 1, 4), rng.uniform(0.1, 1, 4), 0 * np.ones(4)
        )
        for _ in range(3)
    ]
    mix = mixture(preds)
    # Draw from the equal-weight mixture: a member at random, then its Gaussian.
    n = 400_000
    k = rng.integers(0, 3, n)
    mu = np.stack([p.mean for p in preds])[k]
    sd = np.sqrt(np.stack([p.variance for p in preds]))[k]
    draws = mu + sd * rng.normal(size=mu.shape)
    np.testing.assert_allclose(mix.mean, draws.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(mix.variance, draws.var(axis=0), rtol=0.02)
    # The spread of the means is model uncertainty; the noise part is the members' average.
    np.testing.assert_allclose(mix.noise_variance, np.mean([p.noise_variance for p in preds], 0))


def test_one_member_equals_a_single_calibrated_gpz():
    """The ensemble's calibration of its mixture is GPz's rule: with one member both agree."""
    X, y = _toy()
    Xv, yv = _toy(80, seed=1)
    Xv = Xv * 1.3  # outside the training range: the raw coverage is off, calibration acts
    ens = _small(n_estimators=1, random_state=3).fit(X, y, X_valid=Xv, y_valid=yv)
    seed = ens.estimators_[0].random_state
    single = GPzRegressor(m=8, max_iter=15, n_iter_no_change=15, random_state=seed)
    single.fit(X, y, X_valid=Xv, y_valid=yv)
    assert ens.estimators_[0].variance_scale_ == 1.0  # members are uncalibrated
    assert ens.variance_scale_ == pytest.approx(single.variance_scale_, rel=1e-9)
    assert ens.variance_scale_ != 1.0
    a, b = ens.predict_components(X[:20]), single.predict_components(X[:20])
    for got, want in zip(a, b):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_members_differ_and_the_mixture_is_their_average(fitted):
    est, Xv, yv = fitted
    means = np.stack([e.predict(Xv) for e in est.estimators_])
    assert len({e.random_state for e in est.estimators_}) == 3
    assert np.ptp(means, axis=0).max() > 1e-4  # different seeds, different fits
    np.testing.assert_allclose(est.predict(Xv), means.mean(axis=0), rtol=1e-12)
    # Squared error of the average <= the members' average squared error (spread >= 0).
    mse = np.mean((means - yv) ** 2, axis=1)
    assert np.mean((est.predict(Xv) - yv) ** 2) < mse.mean()
    # Calibrated on the validation rows: 68.27% within 1 sigma, or left alone when close.
    mean, std = est.predict(Xv, return_std=True)
    cover = np.mean(np.abs(yv - mean) <= std)
    if est.variance_scale_ != 1.0:
        assert cover == pytest.approx(0.6827, abs=1.5 / len(yv))
    else:
        assert abs(est.validation_coverage_raw_ - 0.6827) <= 2 * np.sqrt(0.2166 / len(yv))


def test_schedulers_agree(fitted):
    est, Xv, yv = fitted
    X, y = _toy()  # the fixture's shapes: no new compilation
    other = _small(n_estimators=3, random_state=0, scheduler="synchronous")
    other.fit(X, y, X_valid=Xv, y_valid=yv)
    np.testing.assert_allclose(other.predict(Xv), est.predict(Xv), rtol=1e-10)
    assert other.variance_scale_ == pytest.approx(est.variance_scale_, rel=1e-10)


def test_sklearn_contract():
    est = _small(n_estimators=2, random_state=0)
    check_estimator_cloneable("GPzEnsemble", est)
    check_get_params_invariance("GPzEnsemble", est)
    check_fit_idempotent("GPzEnsemble", est)
    check_methods_subset_invariance("GPzEnsemble", est)
    assert est.get_params()["estimator__m"] == 8
    with pytest.raises(NotFittedError, match="not fitted"):
        GPzEnsemble().predict(np.zeros((2, 2)))
    with pytest.raises(InputError, match="n_estimators"):
        GPzEnsemble(n_estimators=0).fit(*_toy(40))


def test_model_file_round_trip(tmp_path, fitted):
    est, Xv, _ = fitted
    model = PhotozModel(estimator=est, bands=["a", "b"], info={"note": "x"})
    path = save_model(model, tmp_path / "ens")
    doc = json.loads((path / "model.json").read_text())
    assert doc["format_version"] == 4 and doc["estimator"] == "GPzEnsemble"
    assert len(doc["members"]) == 3
    back = load_model(path)
    assert isinstance(back.estimator, GPzEnsemble)
    # the member template as given (members override calibrate), so a refit behaves alike
    assert back.estimator.get_params()["estimator__calibrate"] is True
    assert back.estimator.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    for key, value in est.get_params().items():
        if key != "estimator":
            assert back.estimator.get_params()[key] == value, key
    frame = pd.DataFrame(Xv, columns=["a", "b"])
    pd.testing.assert_frame_equal(back.predict_frame(frame), model.predict_frame(frame))
    # The checksum covers the members' arrays.
    with np.load(path / "arrays.npz") as arrays:
        data = {k: arrays[k] for k in arrays.files}
    data["member1.coef_"] = data["member1.coef_"] + 1e-3
    np.savez(path / "arrays.npz", **data)
    with pytest.raises(InputError, match="checksum"):
        load_model(path)


def test_train_model_members_builds_an_ensemble(fitted):
    est, Xv, yv = fitted
    X, y = _toy()
    # 300 rows split 200 / 80 / 20: the fixture's shapes (no new compilation)
    frame = pd.DataFrame(np.vstack([X, Xv, X[:20]]), columns=["a", "b"])
    frame["zspec"] = np.concatenate([y, yv, y[:20]])
    kw = dict(inputs="mag", split=(2 / 3, 0.8 / 3, 0.2 / 3), m=8, max_iter=15, n_iter_no_change=15)
    model = train_model(frame, ["a", "b"], members=3, **kw)
    assert isinstance(model.estimator, GPzEnsemble) and len(model.estimator.estimators_) == 3
    assert (model.info["members"], model.info["n_train"], model.info["n_valid"]) == (3, 200, 80)
    valid = frame.iloc[np.sort(np.random.default_rng(0).permutation(300)[:80])]
    mean = model.estimator.predict(valid[["a", "b"]].to_numpy())
    got = model.info["valid_metrics"]["sigma_nmad"]
    assert got == pytest.approx(sigma_nmad(valid["zspec"].to_numpy(), mean), rel=1e-9)
    with pytest.raises(ConfigError, match="members"):
        train_model(frame, ["a", "b"], members=0, **kw)
    # calibrate=False (a GPz parameter) leaves the mixture uncalibrated too
    raw = train_model(frame, ["a", "b"], members=3, calibrate=False, **kw).estimator
    assert raw.calibrate is False and raw.variance_scale_ == 1.0
    assert np.isfinite(raw.validation_coverage_raw_)


def test_model_file_members_must_match_the_arrays(tmp_path, fitted):
    """model.json is not under the checksum: a members list that does not match the arrays
    is an InputError, not a KeyError."""
    est, _, _ = fitted
    path = save_model(PhotozModel(estimator=est, bands=["a", "b"]), tmp_path / "ens")
    doc = json.loads((path / "model.json").read_text())
    for members in (doc["members"][:2], doc["members"] + doc["members"][:1]):
        bad = dict(doc, members=members)
        if len(members) > 3:  # consistent count, missing arrays
            bad["params"] = dict(doc["params"], n_estimators=4)
        (path / "model.json").write_text(json.dumps(bad))
        with pytest.raises(InputError, match="model.json"):
            load_model(path)
