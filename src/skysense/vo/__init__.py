"""The skysense Virtual Observatory server: TAP/ADQL, cone search, cutouts and web pages.

Submodules: :mod:`~skysense.vo.schema` (table metadata), :mod:`~skysense.vo.adql` (ADQL parser),
:mod:`~skysense.vo.sql` (ADQL to DuckDB/PostgreSQL), :mod:`~skysense.vo.hpx` (HEALPix helpers),
:mod:`~skysense.vo.features` (TAPRegExt language features), and the server modules.
"""

__all__: list[str] = []
