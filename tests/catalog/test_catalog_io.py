"""Catalogue readers and atomic writers: formats, units, vector columns, bad files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skysense.catalog.formats import guess_format
from skysense.catalog.io import (
    read_catalogue,
    read_positions,
    write_catalogue,
)
from skysense.errors import InputError
from skysense.tables import guess_position_columns


def _table():
    df = pd.DataFrame(
        {
            "id": np.arange(4, dtype=np.int64),
            "ra": [10.0, 10.1, 10.2, 10.3],
            "f_megacam_u": [1.5, np.nan, 3.0, 4.0],
            "flag_megacam_u": [True, False, False, True],
            "name": ["a", "b", "c", "d"],
            "flag_gaia": np.array([0, 3, 2, 1], dtype=np.int8),
        }
    )
    df.attrs["units"] = {"ra": "deg", "f_megacam_u": "uJy"}
    df.attrs["descriptions"] = {"ra": "right ascension"}
    return df


@pytest.mark.parametrize("suffix", [".fits", ".parquet", ".vot", ".ecsv", ".csv"])
def test_round_trip_keeps_values_and_units(tmp_path, suffix):
    df = _table()
    path = write_catalogue(df, tmp_path / f"t{suffix}")
    back = read_catalogue(path)
    assert list(back.columns) == list(df.columns)
    np.testing.assert_array_equal(back["id"].to_numpy(), df["id"].to_numpy())
    np.testing.assert_allclose(
        back["f_megacam_u"].to_numpy(float), df["f_megacam_u"], equal_nan=True
    )
    assert [str(x) for x in back["name"]] == ["a", "b", "c", "d"]
    assert back["flag_gaia"].tolist() == [0, 3, 2, 1]
    if suffix != ".csv":
        assert back.attrs["units"]["f_megacam_u"] == "uJy"
        assert back.attrs["units"]["ra"] == "deg"
        assert back.attrs["descriptions"]["ra"] == "right ascension"
        assert back["flag_megacam_u"].astype(bool).tolist() == [True, False, False, True]


def test_fits_vector_columns_are_split(tmp_path):
    from astropy.table import Table

    t = Table({"MAG_APER": np.arange(6.0).reshape(3, 2), "ID": [1, 2, 3]})
    t["MAG_APER"].unit = "mag"
    t.write(tmp_path / "v.fits")
    df = read_catalogue(tmp_path / "v.fits")
    assert list(df.columns) == ["MAG_APER_0", "MAG_APER_1", "ID"]
    assert df["MAG_APER_1"].tolist() == [1.0, 3.0, 5.0]
    assert df.attrs["units"]["MAG_APER_0"] == "mag"


def test_failed_write_leaves_nothing(tmp_path):
    df = _table()
    df["bad"] = [object(), object(), object(), object()]
    with pytest.raises(Exception):  # noqa: B017 - any writer error
        write_catalogue(df, tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []


def test_bad_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_catalogue(tmp_path / "missing.fits")
    (tmp_path / "junk.fits").write_text("not fits")
    with pytest.raises(InputError, match="cannot read as fits"):
        read_catalogue(tmp_path / "junk.fits")
    with pytest.raises(InputError, match="cannot tell the format"):
        guess_format("x.dat")
    assert guess_format("x.fits.gz") == "fits"


_floats = st.floats(allow_nan=True, allow_infinity=False, width=64)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(1, 15).flatmap(
        lambda n: st.tuples(
            st.lists(_floats, min_size=n, max_size=n),
            st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )
    ),
    st.sampled_from([".fits", ".parquet", ".vot", ".ecsv", ".csv"]),
)
def test_round_trip_property(tmp_path, data, suffix):
    floats, ints, bools = data
    df = pd.DataFrame({"x": np.array(floats), "k": np.array(ints, dtype=np.int64), "b": bools})
    path = write_catalogue(df, tmp_path / f"p{suffix}")
    back = read_catalogue(path)
    np.testing.assert_array_equal(back["x"].to_numpy(float), df["x"].to_numpy())
    np.testing.assert_array_equal(back["k"].to_numpy(np.int64), df["k"].to_numpy())
    assert back["b"].astype(bool).tolist() == bools


def test_guess_position_columns():
    assert guess_position_columns(["id", "RAJ2000", "DEJ2000"]) == ("RAJ2000", "DEJ2000")
    # The first name of the list wins; a prepared table's <survey>_ra/_dec come last.
    assert guess_position_columns(["RA", "ra", "dec", "x_ra", "x_dec"]) == ("ra", "dec")
    assert guess_position_columns(["x_id", "x_ra", "x_dec"]) == ("x_ra", "x_dec")
    assert guess_position_columns(["a", "b"], ra="a") == ("a", None)
    assert guess_position_columns(["ALPHA_J2000"]) == ("ALPHA_J2000", None)


def test_read_positions_checks_and_names_the_row(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"RA": [10.0, 20.0], "DEC": [1.0, -2.0], "id": [1, 2]}).to_csv(path, index=False)
    df, ra, dec = read_positions(path)
    np.testing.assert_array_equal(ra, [10.0, 20.0])
    np.testing.assert_array_equal(dec, [1.0, -2.0])
    assert list(df["id"]) == [1, 2]
    pd.DataFrame({"RA": [10.0, 11.0], "DEC": [1.0, 91.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="row 1") as exc:
        read_positions(path)
    assert exc.value.column == "DEC"
    pd.DataFrame({"RA": [10.0, 11.0], "DEC": [1.0, "x"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="non-numeric or missing") as exc:
        read_positions(path)
    assert (exc.value.column, exc.value.row) == ("DEC", 1)
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="no RA column"):
        read_positions(path)
    _, ra, dec = read_positions(path, ra="x", dec="y")
    assert (ra[0], dec[0]) == (1.0, 2.0)
