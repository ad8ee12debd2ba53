"""The shared table module: one suffix table, one reader, one list of RA/Dec names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from skysense.errors import InputError
from skysense.tables import (
    DEC_NAMES,
    RA_NAMES,
    find_name,
    guess_position_columns,
    read_table,
    table_format,
)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.fits", "fits"),
        ("A.FITS.GZ", "fits"),
        ("a.vot", "votable"),
        ("a.xml", "votable"),
        ("a.csv.gz", "csv"),
        ("a.ecsv", "ecsv"),
        ("a.tsv", "tsv"),
        ("a.pq", "parquet"),
        ("a.h5", "hdf5"),
    ],
)
def test_table_format_by_suffix(name, fmt):
    assert table_format(name) == fmt


def test_table_format_limits_default_and_hint():
    assert table_format("a.h5", ("csv", "hdf5")) == "hdf5"
    assert table_format("a.txt", ("csv",), default="text") == "text"
    assert table_format("a.h5", ("csv",), default="text") == "text"
    with pytest.raises(InputError, match="cannot tell the format.*use one of csv, fits"):
        table_format("a.h5", ("csv", "fits"))
    with pytest.raises(InputError, match="use --format"):
        table_format("a.dat", hint="use --format")


def test_names_are_lower_case_and_unique():
    for names in (RA_NAMES, DEC_NAMES):
        assert all(n == n.lower() for n in names)
        assert len(set(names)) == len(names)
    assert not set(RA_NAMES) & set(DEC_NAMES)


def test_find_name_prefers_exact_case_then_order():
    assert find_name(["RA", "ra"], RA_NAMES) == "ra"
    assert find_name(["RAJ2000", "x"], RA_NAMES) == "RAJ2000"
    assert find_name(["ra_deg", "raj2000"], RA_NAMES) == "ra_deg"
    assert find_name(["x", "y"], RA_NAMES) is None


def test_guess_position_columns_prepared_fallback():
    assert guess_position_columns(["id", "DEJ2000", "RAJ2000"]) == ("RAJ2000", "DEJ2000")
    assert guess_position_columns(["a_ra", "a_dec"]) == ("a_ra", "a_dec")
    assert guess_position_columns(["a", "b"], dec="b") == (None, "b")


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".ecsv", ".csv", ".tsv", ".parquet"])
def test_read_table_round_trip(tmp_path, suffix):
    t = Table({"ra": [1.5, 2.5], "dec": [-3.0, 4.0], "name": ["a", "b"]})
    t["ra"].unit = "deg"
    path = tmp_path / f"t{suffix}"
    if suffix == ".tsv":
        t.write(path, format="ascii.tab")
    elif suffix == ".parquet":
        t.to_pandas().to_parquet(path)
    else:
        t.write(path, format={".vot": "votable", ".csv": "ascii.csv"}.get(suffix))
    df = read_table(path)
    assert list(df.columns) == ["ra", "dec", "name"]
    np.testing.assert_array_equal(df["ra"], [1.5, 2.5])
    assert list(df["name"]) == ["a", "b"]
    assert set(df.attrs["units"]) == {"ra", "dec", "name"}
    if suffix in (".fits", ".vot", ".ecsv"):
        assert df.attrs["units"]["ra"] == "deg"


def test_read_table_columns_and_multidimensional(tmp_path):
    path = tmp_path / "m.fits"
    Table({"id": [1, 2], "mag": np.array([[1.0, 2.0], [3.0, 4.0]])}).write(path)
    df = read_table(path)
    assert list(df.columns) == ["id", "mag_0", "mag_1"]
    assert list(read_table(path, columns=["mag_1"]).columns) == ["mag_1"]
    pd.DataFrame({"a": [1], "b": [2]}).to_parquet(tmp_path / "p.parquet")
    assert list(read_table(tmp_path / "p.parquet", columns=["b"]).columns) == ["b"]
    with pytest.raises(InputError, match=r"no column\(s\) \['z'\]"):
        read_table(tmp_path / "p.parquet", columns=["z"])


def test_read_table_errors_are_one_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_table(tmp_path / "missing.fits")
    (tmp_path / "junk.fits").write_bytes(b"not a fits file")
    with pytest.raises(InputError, match="cannot read as fits"):
        read_table(tmp_path / "junk.fits")
    good = tmp_path / "good.fits"
    Table({"a": np.arange(2000.0)}).write(good)
    cut = tmp_path / "cut.fits"
    cut.write_bytes(good.read_bytes()[:-1500])
    with pytest.raises(InputError, match="cannot read as fits"):
        read_table(cut)
    with pytest.raises(InputError, match="unknown format"):
        read_table(good, "hdf5")
