"""Griffe extension (wired in ``mkdocs.yml``): the API reference shows filled docstrings.

mkdocstrings reads docstrings from the source, where a function decorated with
:func:`skysense._docstrings.fill` holds ``%(name)s`` placeholders; this extension gives such a
function the docstring that Python sees at run time.
"""

from __future__ import annotations

import inspect
from typing import Any

import griffe

__all__ = ["FilledDocstrings"]


class FilledDocstrings(griffe.Extension):
    """Replace a docstring holding ``%(`` by the imported object's ``__doc__``."""

    def on_function(self, *, func: griffe.Function, **kwargs: Any) -> None:
        if func.docstring is None or "%(" not in func.docstring.value:
            return
        doc = griffe.dynamic_import(func.path).__doc__
        func.docstring.value = inspect.cleandoc(doc)
