"""The shared docstring fragments of ``skysense._docstrings``."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from skysense._docstrings import fill, substitute

_RETURNS = """\
Returns
-------
ndarray (*params)
"""


def test_fragment_takes_the_placeholder_indent_and_leaves_other_text() -> None:
    doc = "Summary, 50 % of it.\n\n    %(returns)s\n\n    Notes: %(returns)s inline stays.\n"
    expected = (
        "Summary, 50 % of it.\n\n"
        "    Returns\n    -------\n    ndarray (*params)\n\n"
        "    Notes: %(returns)s inline stays.\n"
    )
    assert substitute(doc, {"returns": _RETURNS}) == expected


def test_blank_fragment_lines_stay_blank() -> None:
    out = substitute("  %(p)s", {"p": "a : int\n\nb : float\n"})
    assert out == "  a : int\n\n  b : float"


def test_unknown_placeholder_fails() -> None:
    with pytest.raises(KeyError, match="typo"):
        substitute("x\n    %(typo)s\n", {"returns": _RETURNS})


def test_fill_decorates_a_function_and_keeps_it() -> None:
    def f(x):
        """Twice ``x``.

        %(returns)s
        """
        return 2 * x

    g = fill(returns=_RETURNS)(f)
    assert g is f and g(3) == 6
    assert inspect.getdoc(g) == "Twice ``x``.\n\nReturns\n-------\nndarray (*params)"


def test_fill_without_docstring() -> None:
    def f():
        pass

    assert fill(returns=_RETURNS)(f).__doc__ is None


def test_public_docstrings_have_no_placeholder_left() -> None:
    from skysense.photoz.engine import predict_catalogue, predict_hats
    from skysense.xid.diagnostics import ess_bulk, split_rhat

    for func in (split_rhat, ess_bulk, predict_hats, predict_catalogue):
        doc = inspect.getdoc(func)
        assert "%(" not in doc, func.__name__
        assert "\nReturns\n-------\n" in doc, func.__name__


def test_api_reference_shows_the_filled_docstring() -> None:
    # mkdocstrings reads the source; the Griffe extension of mkdocs.yml fills the fragments
    import griffe

    root = Path(__file__).resolve().parent.parent
    ext = griffe.load_extensions(str(root / "docs" / "griffe_docstrings.py"))
    module = griffe.load("skysense.xid.diagnostics", search_paths=[str(root / "src")],
                         extensions=ext)  # fmt: skip
    from skysense.xid.diagnostics import ess_bulk

    assert module["ess_bulk"].docstring.value == inspect.getdoc(ess_bulk)
    assert "draws : ndarray (chains, draws, *params)" in module["ess_bulk"].docstring.value
