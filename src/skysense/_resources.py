"""Static reference tables shipped inside the package (``<area>/data/*.toml|*.ecsv``).

Tables of reference data (survey definitions, camera filters, bandpasses, standard VO column
lists, column metadata) live as data files next to the code that uses them, read with
:mod:`importlib.resources` so that they work from a wheel, an sdist or a zip alike. Two formats:

* **TOML** (:func:`read_toml`) for nested records; :mod:`tomllib` keeps ints, floats, strings
  and booleans as such. TOML has no null: a key that is absent stands for None, and the reader
  of each table says so.
* **ECSV** (:func:`read_ecsv`) for flat tables of strings and flags, with each column's
  description in the header, so ``astropy.table.Table.read`` opens them as they are.

Each file is parsed once per process (:func:`functools.cache`); callers build their immutable
structures from the result and must not change it. Areas call these lazily, at first use, so
that importing a module (and ``skysense <area> --help``) reads no file.
"""

from __future__ import annotations

import functools
import tomllib
from importlib.resources import files
from typing import Any

__all__ = ["read_toml", "read_ecsv"]


def _text(package: str, name: str) -> str:
    return (files(package) / "data" / name).read_text(encoding="utf-8")


@functools.cache
def read_toml(package: str, name: str) -> dict[str, Any]:
    """The parsed TOML file ``data/<name>`` of ``package`` (shared: do not modify it).

    Parameters
    ----------
    package : str
        Dotted package name, e.g. ``"skysense.sim"``.
    name : str
        File name inside the package's ``data`` folder.
    """
    return tomllib.loads(_text(package, name))


@functools.cache
def read_ecsv(package: str, name: str) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """Rows and table metadata of the ECSV file ``data/<name>`` of ``package``.

    Parameters
    ----------
    package, name : str
        As for :func:`read_toml`.

    Returns
    -------
    rows : tuple of dict
        One ``{column: value}`` per row, in file order, with Python values (str, bool, int,
        float). An empty field is an empty string: these tables have no missing values (astropy
        would mask it by default).
    meta : dict
        The ``meta`` block of the ECSV header (shared: do not modify it).
    """
    # astropy.table costs a few tenths of a second to import: only when a table is read.
    from astropy.table import Table

    table = Table.read(_text(package, name), format="ascii.ecsv", fill_values=[])
    columns = {c: table[c].tolist() for c in table.colnames}
    rows = tuple(dict(zip(columns, values, strict=True)) for values in zip(*columns.values()))
    return rows, dict(table.meta)
