"""landuse.classify.parse_params: NAME=VALUE texts (hyperparameters, band roles)."""

import pytest

from skysense.errors import ConfigError
from skysense.landuse.classify import parse_params


def test_values_are_converted_where_they_read_as_numbers_or_constants():
    got = parse_params(["n_estimators=500", "max_features = 0.5", "max_depth=None", "x=True",
                        "criterion=gini", "n_estimators=7"])  # fmt: skip
    assert got == {"n_estimators": 7, "max_features": 0.5, "max_depth": None, "x": True,
                   "criterion": "gini"}  # fmt: skip
    assert type(got["n_estimators"]) is int
    assert parse_params(["nir=b4", "red=1"], convert=False) == {"nir": "b4", "red": "1"}
    assert parse_params(None) == {} and parse_params([]) == {}


def test_an_item_without_equals_names_the_key():
    with pytest.raises(ConfigError, match=r"--param: expected NAME=VALUE, got 'oops'"):
        parse_params(["a=1", "oops"], key="--param")
