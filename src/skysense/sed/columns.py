"""Units, UCDs and descriptions of the SED tables (``help.sed``, ``help.sed_spectra``); pure."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from skysense._resources import read_ecsv
from skysense.tables import ColumnMeta, publish_meta

__all__ = ["QUANTITIES", "sed_meta", "spectra_meta"]

QUANTITIES: dict[str, tuple[str, str, str]]
"""Fitted quantity -> (unit, UCD, description), log10 units for the extensive ones, from the
package data file ``sed/data/sed_columns.ecsv`` (read at first use)."""


@functools.cache
def _tables() -> tuple[dict[str, tuple[str, str, str]], dict[str, tuple[str, str, str]]]:
    """(quantities, fixed columns): name -> (unit, UCD, description), from the package data file
    ``sed/data/sed_columns.ecsv`` (read at first use)."""
    rows, _ = read_ecsv("skysense.sed", "sed_columns.ecsv")
    quantities, fixed = {}, {}
    for r in rows:
        table = quantities if r["role"] == "quantity" else fixed
        table[r["name"]] = (r["unit"], r["ucd"], r["description"])
    return quantities, fixed


def __getattr__(name: str):
    # QUANTITIES is read from its data file when first asked for, not at import.
    if name == "QUANTITIES":
        return _tables()[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _one(name: str) -> ColumnMeta | None:
    low = name.lower()
    quantities, fixed = _tables()
    if low in fixed:
        return ColumnMeta(*fixed[low])
    for prefix, what in (("bayes_", "Bayesian (likelihood-weighted) mean of the "),
                         ("best_", "best-model value of the ")):  # fmt: skip
        if low.startswith(prefix):
            q = low[len(prefix) :]
            err = q.endswith("_err")
            q = q[:-4] if err else q
            if q in quantities:
                unit, ucd, text = quantities[q]
                if err:
                    return ColumnMeta(unit.replace("log(", "dex(") if unit.startswith("log(") else unit,
                                      "stat.stdev;" + ucd,
                                      f"likelihood-weighted standard deviation of the {text}")  # fmt: skip
                return ColumnMeta(unit, ucd + (";stat.mean" if prefix == "bayes_" else ""),
                                  what + text)  # fmt: skip
    return None


def sed_meta(columns: Iterable[str]) -> dict:
    """Publish metadata ``{"columns": {name: {unit, ucd, description}}}`` of a fit table."""
    return publish_meta(columns, _one)


def spectra_meta() -> dict:
    """Publish metadata of the long best-fit-spectra table."""
    return {"columns": {
        "help_id": {"unit": "", "ucd": "meta.id;meta.main", "description": "HELP identifier"},
        "wavelength_um": {"unit": "um", "ucd": "em.wl", "description": "observed wavelength"},
        "fnu_mjy": {"unit": "mJy", "ucd": "phot.flux.density;em.wl;meta.modelled",
                    "description": "best-fit model flux density"},
    }}  # fmt: skip
