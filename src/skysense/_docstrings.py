"""Docstring fragments written once, for parameters or results that are the same in several
public functions (as scipy's ``doccer`` and matplotlib's ``_docstring.interpd``).

A docstring holds a line ``%(name)s``; :func:`fill` puts the fragment ``name`` there, each of its
lines indented as the placeholder is. The API reference (mkdocstrings reads the source, not the
objects) shows the filled text through the Griffe extension ``FilledDocstrings`` in
``docs/griffe_docstrings.py``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping
from typing import TypeVar

__all__ = ["fill", "substitute"]

_T = TypeVar("_T")
_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.M)


def substitute(doc: str, fragments: Mapping[str, str]) -> str:
    """``doc`` with each line ``%(name)s`` replaced by ``fragments[name]`` (dedented, then
    indented as the placeholder); other text, ``%`` included, is left alone.

    Raises
    ------
    KeyError
        A placeholder names no fragment.
    """

    def one(m: re.Match) -> str:
        text = textwrap.dedent(fragments[m.group(2)]).strip("\n")
        return textwrap.indent(text, m.group(1))

    return _PLACEHOLDER.sub(one, doc)


def fill(**fragments: str) -> Callable[[_T], _T]:
    """Decorator: fill the ``%(name)s`` lines of the docstring with ``fragments`` (see
    :func:`substitute`; a placeholder without a fragment fails at import)."""

    def decorate(obj: _T) -> _T:
        if obj.__doc__:  # None under python -OO
            obj.__doc__ = substitute(obj.__doc__, fragments)
        return obj

    return decorate
