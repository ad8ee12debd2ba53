"""``skysense catalog ...``: preparing surveys, merging them into a masterlist, checking it.

The verbs live in two modules (preparation, and merging/checking) so each stays small.
"""

from __future__ import annotations

import importlib

from skysense.cli._common import add_area

__all__ = ["register"]


def register(subparsers) -> None:
    verbs = add_area(subparsers, "catalog", "HELP masterlists from pristine survey catalogues")
    for name in ("_catalog_prepare", "_catalog_merge", "_catalog_radio"):
        try:
            module = importlib.import_module(f"skysense.cli.{name}")
        except ModuleNotFoundError as exc:  # that half is not built yet
            if exc.name != f"skysense.cli.{name}":
                raise
            continue
        module.add_verbs(verbs)
