"""The shared boundary validators: sky positions and "did you mean" hints."""

from __future__ import annotations

import numpy as np
import pytest

from skysense._check import check_positions, did_you_mean
from skysense.errors import InputError


def test_good_positions_come_back_as_float64():
    ra, dec = check_positions([10, 370, -5], [0, 90, -90])
    assert ra.dtype == dec.dtype == np.float64
    np.testing.assert_array_equal(ra, [10, 370, -5])


def test_errors_are_input_errors_and_value_errors_naming_row_and_column():
    with pytest.raises(InputError) as exc:
        check_positions([1.0, 2.0, np.nan], [0.0, 0.0, 0.0], path="c.fits", columns=("RA", "DEC"))
    assert isinstance(exc.value, ValueError)
    assert (exc.value.path, exc.value.column, exc.value.row) == ("c.fits", "RA", 2)
    assert "NaN, infinite or missing" in str(exc.value)
    with pytest.raises(ValueError, match=r"Dec 90.5 outside \[-90, 90\] deg") as exc:
        check_positions([1.0, 2.0], [0.0, 90.5], columns=("RA", "DEC"))
    assert exc.value.row == 1 and exc.value.column == "DEC"


def test_ra_range_rows_and_label():
    check_positions([359.9], [0.0])
    with pytest.raises(InputError, match=r"survey: RA 360.0 outside \[0, 360\) deg") as exc:
        check_positions([0.0, 360.0], [0.0, 0.0], ra_range=True, rows=[7, 9], label="survey")
    assert exc.value.row == 9
    with pytest.raises(InputError, match=r"RA -1.0 outside"):
        check_positions([-1.0], [0.0], ra_range=True)


def test_shapes_and_missing_ok():
    with pytest.raises(InputError, match="same shape"):
        check_positions([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="1-d arrays"):
        check_positions([[1.0]], [[1.0]], one_dim=True)
    ra, dec = check_positions([np.nan, 1.0], [np.nan, 2.0], missing_ok=True)
    assert np.isnan(ra[0]) and dec[1] == 2.0
    with pytest.raises(InputError, match="Dec 91.0"):
        check_positions([np.nan, 1.0], [np.nan, 91.0], missing_ok=True)


def test_did_you_mean():
    assert did_you_mean("colr", ["color", "size"]) == " (did you mean 'color'?)"
    assert did_you_mean("zzz", ["color", "size"]) == ""
    assert did_you_mean("zzz", ["color", "size"], allowed=True) == " (allowed: color, size)"
    two = did_you_mean("mag_g", ["mag_r", "mag_i", "flux"], n=2)
    assert two.startswith(" (did you mean 'mag_") and two.count("'") == 4
    # the context breaks a tie between equally close names
    opts = ["MAGERR_AUTO_U", "MAGERR_AUTO_K"]
    assert "MAGERR_AUTO_K" in did_you_mean("MAGERR_X", opts, context="MAG_AUTO_K")


def test_did_you_mean_mapping_and_clause():
    short = {"obs": "ivoa.obs", "sources": "main.sources"}
    assert did_you_mean("sorces", short, shown=short, clause=True) == (
        "; did you mean 'main.sources'?"
    )
    assert did_you_mean("xyz", short, shown=short, clause=True) == ""


def test_did_you_mean_suggests_a_mappings_keys():
    # A registry keyed by name (e.g. bands to Band objects) suggests the names themselves.
    bands = {"suprime_z": object(), "suprime_i": object()}
    assert did_you_mean("suprime_x", bands, n=1) in (
        " (did you mean 'suprime_z'?)",
        " (did you mean 'suprime_i'?)",
    )
