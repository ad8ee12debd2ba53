"""Cut expressions: semantics, allow-list (no code execution), column discovery."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.catalog.cuts import cut_columns, evaluate_cut, parse_cut
from skysense.errors import ConfigError

COLS = {
    "FLAGS": np.array([0, 4, 1, 0]),
    "MAG": np.array([20.0, np.nan, 25.5, 18.0]),
    "CLASS_STAR": np.array([0.1, 0.9, 0.5, 0.99]),
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("FLAGS < 4", [True, False, True, True]),
        ("FLAGS < 4 and MAG < 25", [True, False, False, True]),
        ("(FLAGS == 0) | (CLASS_STAR > 0.95)", [True, False, False, True]),
        ("not isfinite(MAG)", [False, True, False, False]),
        ("~(MAG > 19)", [False, True, False, True]),  # NaN compares false
        ("17 < MAG <= 20", [True, False, False, True]),
        ("abs(CLASS_STAR - 0.5) < 0.45", [True, True, True, False]),
        ("True", [True, True, True, True]),
    ],
)
def test_cut_semantics(text, expected):
    assert evaluate_cut(text, COLS, 4).tolist() == expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "MAG.__class__",
        "[x for x in MAG]",
        "lambda: 1",
        "open('f')",
        "MAG if FLAGS else CLASS_STAR",
        "FLAGS in (1, 2)",
        "MAG[0] > 1",
    ],
)
def test_disallowed_constructs(text):
    with pytest.raises(ValueError):
        parse_cut(text)


def test_columns_and_errors():
    assert cut_columns("isfinite(MAG) & (FLAGS < 4) & (MAG > nan)") == ["MAG", "FLAGS"]
    with pytest.raises(KeyError):
        evaluate_cut("NOPE > 1", COLS, 4)
    with pytest.raises(ValueError, match="one true/false value per row"):
        evaluate_cut("MAG + 1", COLS, 4)


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
def test_comparisons_agree_with_numpy(threshold, op):
    import operator

    ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
    ops.update({"==": operator.eq, "!=": operator.ne})
    got = evaluate_cut(f"MAG {op} {threshold!r}", COLS, 4)
    with np.errstate(invalid="ignore"):
        assert got.tolist() == ops[op](COLS["MAG"], threshold).tolist()


def test_cut_errors_are_config_errors():
    # In the errors.py hierarchy (still ValueErrors), so the CLI prints one line.
    with pytest.raises(ConfigError, match="not allowed"):
        parse_cut("MAG.real > 1")
    with pytest.raises(ConfigError, match="syntax error"):
        parse_cut("MAG <")
    with pytest.raises(ConfigError, match="one true/false value per row"):
        evaluate_cut("MAG + 1", COLS, 4)
