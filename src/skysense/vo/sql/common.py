"""What a translation returns (:class:`Translation`), SQL quoting, and the types, constants and
small helpers the translator modules share (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from skysense.errors import QueryError
from skysense.vo import adql as A
from skysense.vo.schema import ColumnInfo, TableInfo

__all__ = [
    "Translation",
    "OutputColumn",
    "HealpixCells",
    "DIALECTS",
    "MAX_RANGES",
    "BLOCK_SQL_RANGES",
    "block_filter",
    "quote_ident",
    "quote_string",
]

DIALECTS = ("duckdb", "postgresql")

#: Largest number of HEALPix ranges one region filter may use.
MAX_RANGES = 48
#: At most this many ``BETWEEN`` ranges of block identifiers in one block filter (closing the
#: smallest gaps between the blocks wanted; more blocks, never fewer).
BLOCK_SQL_RANGES = 4
# Polygons with more planes than this are tested against a VALUES table of planes.
_INLINE_PLANES = 64
# AND chains longer than this are shielded from DuckDB's filter pushdown (_Translator._shield).
_PUSHDOWN_TERMS = 100


@dataclass(frozen=True)
class OutputColumn:
    """One result column: its output name and the metadata for its VOTable FIELD."""

    name: str
    info: ColumnInfo


@dataclass(frozen=True)
class HealpixCells:
    """A helper table the backend must create (as a temporary table) before running the SQL.

    With ``depth`` set (small radii, the usual cross-match), rows ``(src_rowid BIGINT, cell
    BIGINT)``: the NESTED HEALPix cells at ``depth`` covering a circle of ``radius_deg`` around
    each row of the source table (:func:`skysense.vo.hpx.circle_cell_keys`), which the SQL
    joins by equality with the indexed column shifted to ``depth``. With ``depth`` None (radii
    of degrees), rows ``(src_rowid BIGINT, lo BIGINT, hi BIGINT)``: inclusive index ranges at
    ``index_order`` (:func:`skysense.vo.hpx.circle_cells`) joined with BETWEEN.
    ``src_rowid`` is the row's ``_rowid``.
    """

    name: str
    source_physical: str
    ra_column: str
    dec_column: str
    radius_deg: float
    index_order: int
    depth: int | None = None


@dataclass(frozen=True)
class Translation:
    """The result of :func:`translate`."""

    sql: str
    columns: list[OutputColumn]
    aux: list = field(default_factory=list)  # HealpixCells and JoinCells, created in order
    overflow_probe: bool = False


def quote_ident(name: str) -> str:
    """SQL delimited identifier (embedded double quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """SQL string literal (single quotes doubled; backslashes are plain characters)."""
    return "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# types

_NUMERIC_RANK = {"short": 1, "int": 2, "long": 3, "float": 4, "double": 5}
_INTEGER = {"short", "int", "long"}
_STRING = {"char", "unicodeChar"}
_GEOMETRY = {"point", "circle", "polygon"}


def _is_numeric(t: str) -> bool:
    return t in _NUMERIC_RANK or t == "null"


def _is_string(t: str) -> bool:
    return t in _STRING or t == "null"


def _promote(a: str, b: str) -> str:
    if a == "null":
        return b
    if b == "null":
        return a
    return a if _NUMERIC_RANK[a] >= _NUMERIC_RANK[b] else b


_NOCONST = object()


@dataclass
class _Point:
    lon: _E
    lat: _E


@dataclass
class _Circle:
    center: _Point
    radius: _E


@dataclass
class _Polygon:
    ra: list[float]
    dec: list[float]
    what: str  # "POLYGON" or "BOX", for messages
    node: object = None  # the constructor's syntax node (error positions)


@dataclass
class _E:
    """A translated expression: SQL text, ADQL/VOTable type and what is known about it."""

    sql: str
    type: str
    info: ColumnInfo | None = None  # set for plain column references
    const: object = _NOCONST  # Python value when constant
    geom: object = None  # _Point / _Circle / _Polygon for geometry values
    col: tuple | None = None  # (_Source, adql column name) for plain column references
    unit: str = ""

    @property
    def is_const(self) -> bool:
        return self.const is not _NOCONST


# --------------------------------------------------------------------------------------------
# scopes


@dataclass
class _Col:
    name: str  # lower-case ADQL name
    display: str  # output name
    sql: str  # qualified SQL reference
    info: ColumnInfo


@dataclass
class _Source:
    alias: str  # generated SQL alias (quoted)
    names: tuple[str, ...]  # lower-case names a qualifier may use
    columns: list[_Col]
    table: TableInfo | None = None
    label: str = ""

    def find(self, name: str) -> _Col | None:
        key = name.lower()
        for c in self.columns:
            if c.name == key:
                return c
        return None


@dataclass
class _Scope:
    sources: list[_Source] = field(default_factory=list)
    outer: _Scope | None = None
    merged: dict[str, tuple[str, ColumnInfo, set]] = field(default_factory=dict)
    ctes: dict[str, tuple[str, list[_Col]]] = field(default_factory=dict)
    outputs: list[tuple[str, _E]] | None = None  # select list (for GROUP BY aliases)
    cells_ok: bool = False
    extra_from: list[str] = field(default_factory=list)
    pending_xm: list[tuple] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)  # every name of every source (O(1) checks)

    def cte(self, name: str):
        s = self
        while s is not None:
            if name in s.ctes:
                return s.ctes[name]
            s = s.outer
        return None


def _err(node, message: str) -> QueryError:
    return QueryError(
        message,
        line=getattr(node, "line", None) or None,
        column=getattr(node, "column", None) or None,
    )


def _num(v) -> str:
    """Numeric literal text of a float (always with a decimal point or an exponent)."""
    f = float(v)
    if not math.isfinite(f):
        raise QueryError(f"number {v!r} is out of range")
    if abs(f) < 1e-300:
        f = 0.0  # PostgreSQL cannot convert subnormal numeric literals to double
    return repr(f)


def _unify(node, a: str, b: str) -> str:
    if a == "null":
        return b
    if b == "null":
        return a
    if a in _NUMERIC_RANK and b in _NUMERIC_RANK:
        return _promote(a, b)
    if a in _STRING and b in _STRING:
        return "unicodeChar" if "unicodeChar" in (a, b) else "char"
    if a == b:
        return a
    raise _err(node, f"incompatible types {a} and {b}")


def _is_one(node) -> bool:
    return isinstance(node, A.Literal) and node.kind in ("int", "float") and node.value == 1


def _is_zero(node) -> bool:
    return isinstance(node, A.Literal) and node.kind in ("int", "float") and node.value == 0


def _region_compare(n: A.Comparison):
    """(call, True) for 1=CONTAINS(..)/CONTAINS(..)=1 (and INTERSECTS); None otherwise."""
    if n.op != "=":
        return None
    for a, b in ((n.left, n.right), (n.right, n.left)):
        if isinstance(b, A.FunctionCall) and b.name in ("CONTAINS", "INTERSECTS") and _is_one(a):
            return b, True
    return None


def block_filter(column: str, blocks, ranges, max_ranges: int = BLOCK_SQL_RANGES) -> str:
    """The SQL condition on a table's block column that keeps every row in HEALPix ``ranges``.

    A table published field by field carries a block identifier per row
    (:class:`skysense.vo.hpx.BlockIndex`); its row groups' min/max of that column never
    overlap, so the database reads only the row groups of the blocks named here. The
    condition is a superset: the region's own filters still apply. Shared by the ADQL
    translation of region constraints and by the Simple Cone Search's SQL.

    Parameters
    ----------
    column : str
        The block column as SQL (quoted, qualified if needed).
    blocks : skysense.vo.hpx.BlockIndex
    ranges : ndarray (m, 2), int64
        Inclusive HEALPix index ranges covering the region, at the table's index order.
    max_ranges : int
        At most this many ``BETWEEN`` terms.

    Returns
    -------
    str
        ``(col BETWEEN a AND b OR ... OR col > last)``: ``last`` is the largest identifier
        in ``blocks`` (-1 when it has none).
    """
    wanted = blocks.block_ranges(ranges, max_ranges)
    # Blocks of a publish committed after ``blocks`` was read (between the translation and
    # the query) have larger identifiers (skysense.vo.hpx.block_seq_base): they are kept, or
    # a field republished meanwhile would lose both its old rows and its new ones. No row
    # group holds such blocks when ``blocks`` is current, so none is read for this term.
    terms = [f"{column} BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in wanted]
    last = int(np.max(blocks.ids)) if len(blocks.ids) else -1
    terms.append(f"{column} > {last}")
    return f"({' OR '.join(terms)})"
