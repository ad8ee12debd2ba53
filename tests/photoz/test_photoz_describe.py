"""photoz.training.describe_training and PhotozModel.check_bands."""

import pytest

from skysense.errors import InputError
from skysense.photoz.gpz import GPzRegressor
from skysense.photoz.model import PhotozModel
from skysense.photoz.training import describe_training

INFO = {"n_train": 80, "n_valid": 10, "train_seconds": 1.26, "n_iter": 20, "best_iteration": 11,
        "variance_scale": 4.0}  # fmt: skip


def test_describe_training_with_and_without_test_rows():
    assert describe_training(INFO) == (
        "trained on 80 galaxies (10 validation) in 1.3 s, 20 iterations (kept 11); "
        "sigma scale 2.000 (validation)"
    )
    test = {"sigma_nmad": 0.02345, "outlier_fraction": 0.1, "coverage_1sigma": 0.6789}
    assert describe_training({**INFO, "test_metrics": test}).endswith(
        "(validation); test: sigma_NMAD=0.0234 outliers=0.1000 1-sigma coverage=0.679"
    )


def test_check_bands_names_the_unseen_bands():
    model = PhotozModel(estimator=GPzRegressor(), bands=["g", "r"])
    model.check_bands(None)
    model.check_bands(["r", "g"])
    with pytest.raises(InputError, match=r"\['z'\] were never seen .* \['g', 'r'\]"):
        model.check_bands(["g", "z"])
