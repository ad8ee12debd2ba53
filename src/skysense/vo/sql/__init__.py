"""ADQL syntax tree -> DuckDB or PostgreSQL SQL (pure; no database access).

:func:`translate` resolves every table and column against a
:class:`~skysense.vo.schema.SchemaCatalog` and writes a single ``SELECT`` in which

- every table is referenced by its catalogued physical name under a generated alias, every
  column as ``"alias"."physical name"`` and every output column under a quoted alias: no
  identifier text from the query reaches the SQL unquoted, and hidden ``_``-prefixed columns
  cannot be named;
- every function is one of a fixed set, written by the translator (user function names never
  appear in the SQL), so table functions, file readers and DDL cannot be reached;
- string literals are re-quoted (``'`` doubled; no escape syntax);
- ``1=CONTAINS(POINT(ra, dec), CIRCLE/BOX/POLYGON(...))`` on a table with a HEALPix column
  becomes HEALPix range filters AND an exact spherical test; with Q3C on PostgreSQL the Q3C
  functions replace the ranges; a cross-match join against an uploaded table on a constant
  radius joins a :class:`HealpixCells` helper table of index ranges per uploaded row; a
  positional join of two tables (self-joins, LEFT/RIGHT joins and radius columns included)
  joins a :class:`JoinCells` table of HEALPix cells per row of the smaller one (``q3c_join``
  with Q3C); one that cannot use the index is refused above ``max_unindexed_pairs`` pairs.

The package splits by concern: :mod:`~skysense.vo.sql.translator` (core and :func:`translate`),
:mod:`~skysense.vo.sql.common` (result types, quoting),
:mod:`~skysense.vo.sql.select`, :mod:`~skysense.vo.sql.functions` and :mod:`~skysense.vo.sql.geometry`.
"""

from skysense.vo.sql.common import (
    DIALECTS,
    HealpixCells,
    OutputColumn,
    Translation,
    quote_ident,
    quote_string,
)
from skysense.vo.sql.joincells import JoinCells
from skysense.vo.sql.translator import translate

__all__ = [
    "translate",
    "Translation",
    "OutputColumn",
    "HealpixCells",
    "JoinCells",
    "DIALECTS",
    "quote_ident",
    "quote_string",
]
