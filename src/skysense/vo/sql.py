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
  radius joins a :class:`HealpixCells` helper table of index ranges per uploaded row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from skysense._check import did_you_mean
from skysense.errors import QueryError
from skysense.vo import adql as A
from skysense.vo import hpx
from skysense.vo.adql_cache import parse_cached
from skysense.vo.geometry import box_vertices, polygon_planes
from skysense.vo.limits import MAX_SELECT_COLUMNS, Deadline
from skysense.vo.schema import ColumnInfo, SchemaCatalog, TableInfo

__all__ = [
    "translate",
    "Translation",
    "OutputColumn",
    "HealpixCells",
    "DIALECTS",
    "quote_ident",
    "quote_string",
]

DIALECTS = ("duckdb", "postgresql")

#: Largest number of HEALPix ranges one region filter may use.
MAX_RANGES = 48
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
    aux: list[HealpixCells] = field(default_factory=list)
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


# --------------------------------------------------------------------------------------------
# translator


class _Translator:
    def __init__(self, dialect: str, catalog: SchemaCatalog, deadline: Deadline | None = None):
        self.dialect = dialect
        self.catalog = catalog
        self.aux: list[HealpixCells] = []
        self._n = 0
        self.deadline = deadline
        self._ticks = 0

    def tick(self) -> None:
        """Check the deadline now and then (every 256 calls: a clock read costs ~50 ns)."""
        self._ticks += 1
        if self.deadline is not None and not self._ticks & 255:
            self.deadline.check()

    def new_alias(self, prefix: str = "t") -> str:
        self._n += 1
        return quote_ident(f"{prefix}{self._n}")

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    # ---- queries ------------------------------------------------------------------------

    def query(
        self, q: A.Query, outer: _Scope | None, *, limit: int | None = None
    ) -> tuple[str, list[OutputColumn]]:
        """SQL of a query expression; ``limit`` is an extra row cap (maxrec probe)."""
        scope = _Scope(outer=outer)
        with_sql = ""
        if q.ctes:
            parts = []
            for cte in q.ctes:
                key = cte.name.lower()
                if key in scope.ctes:
                    raise _err(cte, f"WITH defines {cte.name!r} twice")
                sql, cols = self.query(cte.query, scope)
                if cte.columns is not None:
                    if len(cte.columns) != len(cols):
                        raise _err(
                            cte,
                            f"WITH {cte.name}: {len(cte.columns)} column names for "
                            f"{len(cols)} columns",
                        )
                    cols = [replace(c, name=n) for c, n in zip(cols, cte.columns)]
                alias = self.new_alias("cte")
                col_list = ", ".join(quote_ident(c.name) for c in cols)
                parts.append(f"{alias} ({col_list}) AS ({sql})")
                scope.ctes[key] = (alias, [_out_col(c) for c in cols])
            with_sql = "WITH " + ", ".join(parts) + " "
        body = q.body
        if isinstance(body, A.Select):
            top = body.top
            eff = _min_opt(top, limit)
            sql, cols, sel_scope = self.select(body, scope, top_as_limit=False)
            order = self.order_by(q.order_by, cols, sel_scope, body)
            tail = order
            if eff is not None:
                tail += f" LIMIT {eff}"
            if q.offset is not None:
                tail += f" OFFSET {q.offset}"
            return with_sql + sql + tail, cols
        if isinstance(body, A.Query):
            sql, cols = self.query(body, scope)
            inner = f"SELECT * FROM ({sql}) AS {self.new_alias('q')}"
        else:
            inner, cols = self.setop(body, scope)
        tail = self.order_by(q.order_by, cols, None, None)
        if limit is not None:
            tail += f" LIMIT {limit}"
        if q.offset is not None:
            tail += f" OFFSET {q.offset}"
        if tail:
            # ORDER BY/LIMIT apply to the whole set operation: wrap it.
            alias = self.new_alias("q")
            order_cols = ", ".join(quote_ident(c.name) for c in cols)
            return with_sql + f"SELECT {order_cols} FROM ({inner}) AS {alias}{tail}", cols
        return with_sql + inner, cols

    def setop(self, node, scope: _Scope) -> tuple[str, list[OutputColumn]]:
        def member(m):
            if isinstance(m, A.SetOperation):
                sql, cols = self.setop(m, scope)
                return f"SELECT * FROM ({sql}) AS {self.new_alias('q')}", cols
            if isinstance(m, A.Query):
                sql, cols = self.query(m, scope)
                return f"SELECT * FROM ({sql}) AS {self.new_alias('q')}", cols
            sql, cols, _ = self.select(m, _Scope(outer=scope.outer, ctes=scope.ctes))
            if m.top is not None:
                sql = f"SELECT * FROM ({sql}) AS {self.new_alias('q')}"
            return sql, cols

        # A left-nested chain (a UNION b EXCEPT c ...) is walked iteratively and written flat:
        # SQL set operators associate to the left and INTERSECT binds tighter, exactly as the
        # grammar built the chain, so no parentheses are needed (and 5,000 members stay flat).
        chain = []
        while isinstance(node, A.SetOperation):
            chain.append(node)
            node = node.left
        sql, cols = member(node)
        parts = [sql]
        for op_node in reversed(chain):
            self.tick()
            rsql, rcols = member(op_node.right)
            cols = self._setop_columns(op_node, cols, rcols)
            parts.append(op_node.op + (" ALL" if op_node.all else ""))
            parts.append(rsql)
        return " ".join(parts), cols

    def _setop_columns(self, node, lcols, rcols) -> list[OutputColumn]:
        if len(lcols) != len(rcols):
            raise _err(
                node,
                f"{node.op} operands have different numbers of columns "
                f"({len(lcols)} and {len(rcols)})",
            )
        cols = []
        for lc, rc in zip(lcols, rcols):
            lt, rt = lc.info.datatype, rc.info.datatype
            if (lt in _NUMERIC_RANK) != (rt in _NUMERIC_RANK) or (lt in _STRING) != (rt in _STRING):
                raise _err(node, f"{node.op}: column {lc.name!r} mixes {lt} and {rt} values")
            info = lc.info
            if lt in _NUMERIC_RANK and rt in _NUMERIC_RANK and lt != rt:
                info = replace(info, datatype=_promote(lt, rt))
            cols.append(OutputColumn(lc.name, info))
        return cols

    def select(
        self, sel: A.Select, scope: _Scope, *, top_as_limit: bool = True
    ) -> tuple[str, list[OutputColumn], _Scope]:
        s = _Scope(outer=scope.outer, ctes=scope.ctes)
        # Cross-match helper tables may join a WHERE conjunct only when no outer join could
        # lose or duplicate rows through them.
        s.cells_ok = bool(sel.from_) and not any(_has_outer_join(i) for i in sel.from_)
        s.extra_from = []
        s.pending_xm = []
        from_parts, item_sources = [], []
        for item in sel.from_:
            start = len(s.sources)
            from_parts.append(self.table_ref(item, s))
            item_sources.append({id(x) for x in s.sources[start:]})
        items, cols = self.select_list(sel, s)
        where = None
        if sel.where is not None:
            where = self.condition(sel.where, s, "WHERE", cells_ok=s.cells_ok)
            where = self._place_crossmatches(where, s, from_parts, item_sources)
        sql = "SELECT " + ("DISTINCT " if sel.distinct else "") + ", ".join(items)
        if from_parts:
            sql += " FROM " + ", ".join(p for p in from_parts + s.extra_from if p)
        if where is not None:
            sql += " WHERE " + where
        if sel.group_by:
            sql += " GROUP BY " + ", ".join(self.group_key(g, s) for g in sel.group_by)
        if sel.having is not None:
            sql += " HAVING " + self.condition(sel.having, s, "HAVING", agg_ok=True)
        if top_as_limit and sel.top is not None:
            sql += f" LIMIT {sel.top}"
        return sql, cols, s

    def _place_crossmatches(self, where, s, from_parts, item_sources) -> str:
        """Turn WHERE-level cross-matches into explicit joins ``(upload JOIN cells) JOIN main``.

        With the helper table and the indexed table in one explicit join, the database joins
        on the HEALPix ranges first; left as a WHERE condition across comma-separated tables,
        DuckDB may pick the exact distance test as the join condition (a nested loop).
        Valid because the FROM clause has no outer join (inner joins reassociate freely).
        """
        for k, (u_src, m_src, cells_sql, link, cond) in enumerate(s.pending_xm):
            marker = f"\x00xm{k}\x00"
            iu = next(i for i, ids in enumerate(item_sources) if id(u_src) in ids)
            im = next(i for i, ids in enumerate(item_sources) if id(m_src) in ids)
            if iu == im:
                s.extra_from.append(cells_sql)
                where = where.replace(marker, f"({link} AND {cond})")
                continue
            joined = (
                f"(({from_parts[iu]} JOIN {cells_sql} ON {link}) JOIN {from_parts[im]} ON {cond})"
            )
            from_parts[iu] = joined
            item_sources[iu] = item_sources[iu] | item_sources[im]
            from_parts[im] = ""
            item_sources[im] = set()
            where = where.replace(marker, "TRUE")
        return where

    def group_key(self, g: A.Expr, s: _Scope) -> str:
        # GROUP BY may name a select-list alias (a common ADQL extension).
        if isinstance(g, A.ColumnRef) and len(g.parts) == 1 and s.outputs is not None:
            try:
                return self.expr(g, s).sql
            except QueryError:
                for name, e in s.outputs:
                    if name.lower() == g.parts[0].lower():
                        return e.sql
                raise
        return self.expr(g, s).sql

    def order_by(self, items, cols, scope: _Scope | None, sel: A.Select | None) -> str:
        if not items:
            return ""
        keys = []
        names = [c.name.lower() for c in cols]
        for it in items:
            e = it.expr
            direction = " DESC" if it.descending else " ASC"
            if isinstance(e, A.Literal) and e.kind == "int":
                if not 1 <= e.value <= len(cols):
                    raise _err(e, f"ORDER BY position {e.value} is not in 1..{len(cols)}")
                keys.append(f"{e.value}{direction}")
                continue
            if isinstance(e, A.ColumnRef) and len(e.parts) == 1 and e.parts[0].lower() in names:
                if names.count(e.parts[0].lower()) > 1:
                    raise _err(e, f"ORDER BY {e.parts[0]!r} is ambiguous")
                keys.append(f"{names.index(e.parts[0].lower()) + 1}{direction}")
                continue
            if scope is None:
                raise _err(
                    e,
                    "ORDER BY after UNION/INTERSECT/EXCEPT must name an output column or position",
                )
            keys.append(self.expr(e, scope, agg_ok=True).sql + direction)
        return " ORDER BY " + ", ".join(keys)

    # ---- FROM -----------------------------------------------------------------------------

    def table_ref(self, node: A.TableRef, s: _Scope) -> str:
        if isinstance(node, A.TableName):
            return self.table_name(node, s)
        if isinstance(node, A.DerivedTable):
            sql, cols = self.query(node.query, _Scope(outer=s.outer, ctes=s.ctes))
            if node.column_aliases is not None:
                if len(node.column_aliases) != len(cols):
                    raise _err(
                        node,
                        f"{len(node.column_aliases)} column names for {len(cols)} columns",
                    )
                cols = [replace(c, name=n) for c, n in zip(cols, node.column_aliases)]
                alias = self.new_alias()
                col_list = ", ".join(quote_ident(c.name) for c in cols)
                self._add_source(s, node, alias, (node.alias.lower(),), cols, None)
                return f"({sql}) AS {alias} ({col_list})"
            alias = self.new_alias()
            self._add_source(s, node, alias, (node.alias.lower(),), cols, None)
            return f"({sql}) AS {alias}"
        if isinstance(node, A.Join):
            return self.join(node, s)
        raise _err(node, f"unsupported FROM item {type(node).__name__}")

    def _add_source(self, s, node, alias, names, cols, table, label=""):
        if names[0] in s.taken:
            raise _err(node, f"table name or alias {names[0]!r} is used twice in FROM")
        columns = [
            _Col(
                name=c.name.lower(),
                display=c.name,
                sql=f"{alias}.{quote_ident(c.name)}",
                info=c.info,
            )
            for c in cols
        ]
        src = _Source(alias, names, columns, table, label or names[0])
        s.sources.append(src)
        s.taken.update(names)
        return src

    def table_name(self, node: A.TableName, s: _Scope) -> str:
        key = ".".join(p.lower() for p in node.parts)
        if len(node.parts) == 1:
            cte = s.cte(key)
            if cte is not None:
                alias_sql, cols = cte
                alias = self.new_alias()
                names = ((node.alias or node.parts[0]).lower(),)
                outs = [OutputColumn(c.display, c.info) for c in cols]
                self._add_source(s, node, alias, names, outs, None)
                return f"{alias_sql} AS {alias}"
        if len(node.parts) == 3:
            key = ".".join(p.lower() for p in node.parts[1:])
        table = self.catalog.get(key)
        if table is None and len(node.parts) == 1:
            hits = sorted(k for k in self.catalog.tables if k.rsplit(".", 1)[-1] == key)
            if len(hits) > 1:
                raise _err(
                    node,
                    f"table name {node.parts[0]!r} is ambiguous ({', '.join(hits)}); "
                    "qualify it with its schema",
                )
        if table is None:
            raise _err(node, f"unknown table {'.'.join(node.parts)!r}{self._suggest_table(key)}")
        alias = self.new_alias()
        if node.alias is not None:
            names = (node.alias.lower(),)
        else:
            names = (table.table_name.lower(), table.name.lower())
        cols = []
        for adql_name, info in table.visible_columns():
            cols.append(_Col(adql_name, info.name, f"{alias}.{quote_ident(info.name)}", info))
        if names[0] in s.taken:
            raise _err(node, f"table name or alias {names[0]!r} is used twice in FROM")
        s.sources.append(_Source(alias, names, cols, table, table.name))
        s.taken.update(names)
        return f"{table.physical} AS {alias}"

    def _suggest_table(self, key: str) -> str:
        names = list(self.catalog.tables)
        short = {n.rsplit(".", 1)[-1]: n for n in names}
        return did_you_mean(key, names, cutoff=0.6, clause=True) or did_you_mean(
            key.rsplit(".", 1)[-1], short, cutoff=0.6, clause=True
        )

    def join(self, node: A.Join, s: _Scope) -> str:
        left_start = len(s.sources)
        lsql = self.table_ref(node.left, s)
        mid = len(s.sources)
        rsql = self.table_ref(node.right, s)
        left_srcs = s.sources[left_start:mid]
        right_srcs = s.sources[mid:]
        kind = {
            "INNER": "JOIN",
            "LEFT": "LEFT JOIN",
            "RIGHT": "RIGHT JOIN",
            "FULL": "FULL JOIN",
            "CROSS": "CROSS JOIN",
        }[node.kind]
        if node.kind == "CROSS":
            return f"{lsql} CROSS JOIN {rsql}"
        using = node.using
        if node.natural:
            lnames = {c.name for src in left_srcs for c in src.columns}
            rnames = [c.name for src in right_srcs for c in src.columns]
            using = [n for n in rnames if n in lnames]
            if not using:
                return (
                    f"{lsql} CROSS JOIN {rsql}"
                    if node.kind == "INNER"
                    else (f"{lsql} {kind} {rsql} ON TRUE")
                )
        if using is not None:
            conds = []
            for name in using:
                lc = self._unique_in(left_srcs, name, node, "left")
                rc = self._unique_in(right_srcs, name, node, "right")
                conds.append(f"{lc.sql} = {rc.sql}")
                if node.kind == "FULL":
                    merged = f"COALESCE({lc.sql}, {rc.sql})"
                elif node.kind == "RIGHT":
                    merged = rc.sql
                else:
                    merged = lc.sql
                s.merged[name.lower()] = (merged, lc.info, {id(x) for x in left_srcs + right_srcs})
            return f"{lsql} {kind} {rsql} ON " + " AND ".join(conds)
        # ON: cross-match helpers only for inner joins (outer joins must keep unmatched rows).
        cells: list = []
        on = self.condition(node.on, s, "ON", cells_ok=node.kind == "INNER", cells_out=cells)
        for _cell_alias, u_src, cell_sql in cells:
            # Join the helper cells to the side holding the uploaded table.
            if u_src in left_srcs:
                lsql = f"({lsql} JOIN {cell_sql})"
            else:
                rsql = f"({rsql} JOIN {cell_sql})"
        return f"{lsql} {kind} {rsql} ON {on}"

    def _unique_in(self, srcs, name, node, side) -> _Col:
        hits = [c for src in srcs for c in src.columns if c.name == name.lower()]
        if not hits:
            raise _err(node, f"USING column {name!r} is not in the {side} table")
        if len(hits) > 1:
            raise _err(node, f"USING column {name!r} is ambiguous in the {side} table")
        return hits[0]

    # ---- select list -----------------------------------------------------------------------

    def select_list(self, sel: A.Select, s: _Scope) -> tuple[list[str], list[OutputColumn]]:
        entries: list[tuple[str | None, _E, A.Node]] = []  # (name or None, expr, node)
        for item in sel.items:
            if isinstance(item, A.SelectStar):
                entries.extend(self.star(item, s))
            else:
                e = self.expr(item.expr, s, agg_ok=True)
                if e.type in _GEOMETRY:
                    raise _err(
                        item,
                        f"a {e.type.upper()} cannot be a result column; select its coordinates "
                        "(COORD1, COORD2) or the columns instead",
                    )
                name = item.alias
                if name is None and isinstance(item.expr, A.ColumnRef) and e.info is not None:
                    name = e.info.name
                entries.append((name, e, item))
            if len(entries) > MAX_SELECT_COLUMNS:
                raise _err(
                    item,
                    f"the query selects more than the limit of {MAX_SELECT_COLUMNS:,} columns",
                )
        used: set[str] = set()
        # Next suffix to try per base name: names only ever become used, so a search resumes
        # where the last one stopped (linear overall; restarting at 2 was quadratic for
        # thousands of equal names).
        next_k: dict[tuple[bool, str], int] = {}

        def fresh(base: str, generated: bool) -> str:
            key = (generated, base.lower())
            k = next_k.get(key, 1)
            name = base
            while name.lower() in used or (generated and name.lower() in explicit):
                k += 1
                name = f"{base}_{k}"
            next_k[key] = k
            return name

        items, cols = [], []
        explicit = {n.lower() for n, _, _ in entries if n}
        s.outputs = []
        for i, (name, e, _node) in enumerate(entries, start=1):
            self.tick()
            if name is None:
                name = fresh(f"col_{i}", True)
            elif name.lower() in used:
                name = fresh(name, False)
            used.add(name.lower())
            items.append(f"{e.sql} AS {quote_ident(name)}")
            cols.append(OutputColumn(name, _info_for(name, e)))
            s.outputs.append((name, e))
        return items, cols

    def star(self, item: A.SelectStar, s: _Scope):
        out = []
        if item.qualifier is None:
            if not s.sources:
                raise _err(item, "SELECT * needs a FROM clause")
            done = set()
            for name, (sql, info, _) in s.merged.items():
                out.append((info.name, _E(sql, info.datatype, info=info), item))
                done.add(name)
            for src in s.sources:
                for c in src.columns:
                    if c.name in done and s.merged.get(c.name):
                        continue
                    out.append((c.display, _E(c.sql, c.info.datatype, info=c.info), item))
            return out
        src = self.qualifier(item.qualifier.parts, item.qualifier, s, local_only=True)
        for c in src.columns:
            out.append((c.display, _E(c.sql, c.info.datatype, info=c.info), item))
        return out

    # ---- names -----------------------------------------------------------------------------

    def qualifier(self, parts, node, s: _Scope, *, local_only=False) -> _Source:
        key = ".".join(p.lower() for p in parts)
        scope = s
        while scope is not None:
            hits = [src for src in scope.sources if key in src.names]
            if len(hits) > 1:
                raise _err(node, f"table reference {'.'.join(parts)!r} is ambiguous")
            if hits:
                return hits[0]
            if local_only:
                break
            scope = scope.outer
        known = sorted({n for src in s.sources for n in src.names[:1]})
        hint = did_you_mean(key, known, cutoff=0.6, clause=True)
        raise _err(node, f"unknown table or alias {'.'.join(parts)!r} in this query{hint}")

    def column(self, ref: A.ColumnRef, s: _Scope) -> _E:
        parts = ref.parts
        if len(parts) == 1:
            name = parts[0].lower()
            scope = s
            while scope is not None:
                if name in scope.merged:
                    sql, info, _ = scope.merged[name]
                    return _E(sql, info.datatype, info=info, unit=info.unit)
                hits = [(src, c) for src in scope.sources if (c := src.find(name)) is not None]
                if len(hits) > 1:
                    tables = ", ".join(src.label for src, _ in hits)
                    raise _err(ref, f"column {parts[0]!r} is ambiguous (in {tables}); qualify it")
                if hits:
                    src, c = hits[0]
                    return _E(
                        c.sql, c.info.datatype, info=c.info, col=(src, c.name), unit=c.info.unit
                    )
                scope = scope.outer
            raise _err(ref, f"unknown column {parts[0]!r}{self._suggest_column(name, s)}")
        src = self.qualifier(parts[:-1], ref, s)
        c = src.find(parts[-1])
        if c is None:
            cand = [x.name for x in src.columns]
            hint = did_you_mean(parts[-1].lower(), cand, cutoff=0.6, clause=True)
            raise _err(ref, f"unknown column {parts[-1]!r} in {src.label!r}{hint}")
        return _E(c.sql, c.info.datatype, info=c.info, col=(src, c.name), unit=c.info.unit)

    def _suggest_column(self, name: str, s: _Scope) -> str:
        cand = set()
        scope = s
        while scope is not None:
            cand |= {c.name for src in scope.sources for c in src.columns}
            scope = scope.outer
        return did_you_mean(name, sorted(cand), cutoff=0.6, clause=True)

    # ---- conditions ------------------------------------------------------------------------

    def condition(
        self, node, s, where: str, *, agg_ok=False, cells_ok=False, cells_out=None
    ) -> str:
        """A boolean expression; top-level AND-ed conjuncts may use cross-match helpers."""
        conjuncts = _conjuncts(node)
        parts = []
        plain = []  # positions in parts of conjuncts without index filters (see _shield)
        for c in conjuncts:
            sql = None
            if cells_ok:
                sql = self.crossmatch(c, s, where, cells_out)
            if sql is None:
                e = self.expr(c, s, agg_ok=agg_ok)
                if e.type != "boolean" and e.type != "null":
                    hint = ""
                    if isinstance(c, A.FunctionCall) and c.name in ("CONTAINS", "INTERSECTS"):
                        hint = f" (write 1={c.name}(...))"
                    raise _err(c, f"{where} needs a condition, got a {e.type} value{hint}")
                sql = e.sql
                if not (isinstance(c, A.Comparison) and _region_compare(c)):
                    plain.append(len(parts))
            parts.append(sql)
        if len(plain) > _PUSHDOWN_TERMS and not self.pg:
            shielded = self._shield(" AND ".join(f"({parts[i]})" for i in plain))
            skip = set(plain)
            parts = [p for i, p in enumerate(parts) if i not in skip] + [shielded]
        if len(parts) == 1:
            return parts[0]
        return " AND ".join(f"({p})" for p in parts)

    def _shield(self, conjunction: str) -> str:
        """A long AND chain hidden from DuckDB's filter pushdown, whose work grows with the
        square of the number of conjuncts and cannot be interrupted (2,000 conjuncts: seconds,
        5,000: a minute). ``COALESCE(x, NULL)`` is ``x`` (NULL included), but the optimizer
        sees one filter."""
        return f"COALESCE(({conjunction}), NULL)"

    # ---- expressions -----------------------------------------------------------------------

    def expr(self, node, s: _Scope, *, agg_ok=False) -> _E:
        self.tick()
        meth = getattr(self, "x_" + type(node).__name__, None)
        if meth is None:
            raise _err(node, f"unsupported expression {type(node).__name__}")
        return meth(node, s, agg_ok)

    def x_Literal(self, n: A.Literal, s, agg_ok) -> _E:
        if n.kind == "null":
            return _E("NULL", "null", const=None)
        if n.kind == "string":
            return _E(quote_string(n.value), "char", const=n.value)
        if n.kind == "boolean":
            return _E("TRUE" if n.value else "FALSE", "boolean", const=n.value)
        if n.kind == "int":
            if n.value > 2**63 - 1:
                raise _err(n, f"integer {n.value} is out of range")
            t = "int" if n.value <= 2**31 - 1 else "long"
            return _E(str(n.value), t, const=n.value)
        if not math.isfinite(n.value):
            raise _err(n, "number out of range")
        # Non-integer literals are doubles (DuckDB would read 0.1 as DECIMAL).
        return _E(f"CAST({_num(n.value)} AS DOUBLE PRECISION)", "double", const=float(n.value))

    def x_ColumnRef(self, n: A.ColumnRef, s, agg_ok) -> _E:
        return self.column(n, s)

    def x_Unary(self, n: A.Unary, s, agg_ok) -> _E:
        e = self.expr(n.operand, s, agg_ok=agg_ok)
        if not _is_numeric(e.type):
            raise _err(n, f"unary {n.op} needs a number, got {e.type}")
        const = (
            (-e.const if n.op == "-" else e.const)
            if e.is_const and e.const is not None
            else _NOCONST
        )
        t = e.type if e.type != "null" else "double"
        return _E(f"({n.op}{e.sql})", t, const=const, unit=e.unit)

    def x_Binary(self, n: A.Binary, s, agg_ok) -> _E:
        # A left-nested chain (a + b - c ..., a || b || c ...) is walked iteratively: it is
        # as deep as it is long. Operands are translated left to right, as before.
        concat = n.op == "||"
        chain = []
        node = n
        while isinstance(node, A.Binary) and (node.op == "||") == concat:
            chain.append(node)
            node = node.left
        acc = self.expr(node, s, agg_ok=agg_ok)
        # Written flat, "(a + b - c)": SQL reads a chain of one precedence level from the left
        # as the grammar did, and the database's parser then nests one level per operator
        # rather than two (DuckDB stops at 1,000). Where the level changes, as in
        # "(a + b) * c", the part so far is parenthesised. Every operand is atomic or already
        # parenthesised. The text is assembled once at the end (rebuilding it at each step
        # would copy it once per operand: quadratic).
        pieces = [acc.sql]
        opens = 0
        level = None
        for step in reversed(chain):
            b = self.expr(step.right, s, agg_ok=agg_ok)
            acc, op = self._binary(step, acc, b)
            if level is not None and _OP_LEVEL[op] != level:
                pieces.append(")")
                opens += 1
            level = _OP_LEVEL[op]
            pieces.append(f" {op} {b.sql}")
        return replace(acc, sql="(" * (opens + 1) + "".join(pieces) + ")")

    def _binary(self, n: A.Binary, a: _E, b: _E) -> tuple[_E, str]:
        """Type, constant value and unit of ``a op b`` (its ``sql`` left empty), and the SQL
        operator."""
        if n.op == "||":
            for e, side in ((a, n.left), (b, n.right)):
                if not _is_string(e.type):
                    raise _err(side, f"|| needs strings, got {e.type}")
            const = _NOCONST
            if a.is_const and b.is_const and a.const is not None and b.const is not None:
                # Long folded strings serve no purpose and would make a chain quadratic.
                if len(a.const) + len(b.const) <= 4096:
                    const = a.const + b.const
            t = "unicodeChar" if "unicodeChar" in (a.type, b.type) else "char"
            return _E("", t, const=const), "||"
        for e, side in ((a, n.left), (b, n.right)):
            if not _is_numeric(e.type):
                raise _err(side, f"operator {n.op} needs numbers, got {e.type}")
        t = _promote(a.type, b.type)
        if t == "null":
            t = "double"
        const = _NOCONST
        if a.is_const and b.is_const and a.const is not None and b.const is not None:
            try:
                const = _fold(n.op, a.const, b.const, t in _INTEGER)
            except ZeroDivisionError:
                const = _NOCONST
            if isinstance(const, int) and not -(2**63) <= const < 2**63:
                # Both databases fail on a BIGINT overflow; Python's integers would grow
                # without bound (and slowly) along a long chain.
                raise _err(n, "integer overflow in a constant expression (beyond BIGINT)")
        unit = a.unit if n.op in "+-" and a.unit == b.unit else ""
        op = n.op
        if n.op == "/" and t in _INTEGER:
            # Integer division truncates (as in PostgreSQL and ADQL reference services);
            # DuckDB's "/" would return a double.
            op = "//" if not self.pg else "/"
        return _E("", t, const=const, unit=unit), op

    def x_Comparison(self, n: A.Comparison, s, agg_ok) -> _E:
        region = _region_compare(n)
        if region is not None:
            return _E(self.region_condition(region[0], s, agg_ok), "boolean")
        a = self.expr(n.left, s, agg_ok=agg_ok)
        b = self.expr(n.right, s, agg_ok=agg_ok)
        _check_comparable(n, a, b)
        return _E(f"({a.sql} {n.op} {b.sql})", "boolean")

    def x_Logical(self, n: A.Logical, s, agg_ok) -> _E:
        # A chain a OR b OR c ... is walked iteratively and written flat: AND and OR are
        # n-ary in SQL, and both databases read a flat list without nesting their parsers.
        operands = []
        node = n
        while isinstance(node, A.Logical) and node.op == n.op:
            operands.append(node.right)
            node = node.left
        operands.append(node)
        parts = [self._bool(x, s, agg_ok, n.op).sql for x in reversed(operands)]
        sql = "(" + f" {n.op} ".join(parts) + ")"
        if n.op == "AND" and len(parts) > _PUSHDOWN_TERMS and not self.pg:
            sql = self._shield(sql)
        return _E(sql, "boolean")

    def _bool(self, node, s, agg_ok, what) -> _E:
        e = self.expr(node, s, agg_ok=agg_ok)
        if e.type not in ("boolean", "null"):
            raise _err(node, f"{what} needs conditions, got a {e.type} value")
        return e

    def x_Not(self, n: A.Not, s, agg_ok) -> _E:
        e = self._bool(n.operand, s, agg_ok, "NOT")
        return _E(f"(NOT {e.sql})", "boolean")

    def x_Between(self, n: A.Between, s, agg_ok) -> _E:
        e = self.expr(n.expr, s, agg_ok=agg_ok)
        lo = self.expr(n.low, s, agg_ok=agg_ok)
        hi = self.expr(n.high, s, agg_ok=agg_ok)
        _check_comparable(n, e, lo)
        _check_comparable(n, e, hi)
        neg = "NOT " if n.negated else ""
        return _E(f"({e.sql} {neg}BETWEEN {lo.sql} AND {hi.sql})", "boolean")

    def x_InList(self, n: A.InList, s, agg_ok) -> _E:
        e = self.expr(n.expr, s, agg_ok=agg_ok)
        items = []
        for it in n.items:
            x = self.expr(it, s, agg_ok=agg_ok)
            _check_comparable(it, e, x)
            items.append(x.sql)
        neg = "NOT " if n.negated else ""
        return _E(f"({e.sql} {neg}IN ({', '.join(items)}))", "boolean")

    def x_InSubquery(self, n: A.InSubquery, s, agg_ok) -> _E:
        e = self.expr(n.expr, s, agg_ok=agg_ok)
        sql, cols = self.query(n.query, s)
        if len(cols) != 1:
            raise _err(n, f"IN (subquery) needs one column, the subquery has {len(cols)}")
        _check_comparable(n, e, _E("", cols[0].info.datatype))
        neg = "NOT " if n.negated else ""
        return _E(f"({e.sql} {neg}IN ({sql}))", "boolean")

    def x_Like(self, n: A.Like, s, agg_ok) -> _E:
        e = self.expr(n.expr, s, agg_ok=agg_ok)
        p = self.expr(n.pattern, s, agg_ok=agg_ok)
        op = "ILIKE" if n.case_insensitive else "LIKE"
        for x, side in ((e, n.expr), (p, n.pattern)):
            if not _is_string(x.type):
                raise _err(side, f"{op} needs strings, got {x.type}")
        neg = "NOT " if n.negated else ""
        # ADQL has no escape character: make '\' ordinary in both databases.
        return _E(f"({e.sql} {neg}{op} {p.sql} ESCAPE '')", "boolean")

    def x_IsNull(self, n: A.IsNull, s, agg_ok) -> _E:
        e = self.expr(n.expr, s, agg_ok=agg_ok)
        if e.type in _GEOMETRY:
            raise _err(n, "IS NULL needs a value, not a geometry")
        return _E(f"({e.sql} IS {'NOT ' if n.negated else ''}NULL)", "boolean")

    def x_Exists(self, n: A.Exists, s, agg_ok) -> _E:
        sql, _ = self.query(n.query, s)
        return _E(f"(EXISTS ({sql}))", "boolean")

    def x_ScalarSubquery(self, n: A.ScalarSubquery, s, agg_ok) -> _E:
        sql, cols = self.query(n.query, s)
        if len(cols) != 1:
            raise _err(n, f"a subquery used as a value needs one column, it has {len(cols)}")
        info = cols[0].info
        return _E(f"({sql})", info.datatype, info=None, unit=info.unit)

    def x_Case(self, n: A.Case, s, agg_ok) -> _E:
        parts = ["CASE"]
        operand = None
        if n.operand is not None:
            operand = self.expr(n.operand, s, agg_ok=agg_ok)
            parts.append(operand.sql)
        rtype = "null"
        units = set()
        results = []
        for cond, res in n.whens:
            if operand is not None:
                c = self.expr(cond, s, agg_ok=agg_ok)
                _check_comparable(cond, operand, c)
            else:
                c = self._bool(cond, s, agg_ok, "WHEN")
            r = self.expr(res, s, agg_ok=agg_ok)
            results.append((res, r))
            parts.append(f"WHEN {c.sql} THEN {r.sql}")
        if n.else_ is not None:
            r = self.expr(n.else_, s, agg_ok=agg_ok)
            results.append((n.else_, r))
            parts.append(f"ELSE {r.sql}")
        for node, r in results:
            rtype = _unify(node, rtype, r.type)
            units.add(r.unit)
        parts.append("END")
        return _E(
            "(" + " ".join(parts) + ")",
            rtype if rtype != "null" else "char",
            unit=units.pop() if len(units) == 1 else "",
        )

    def x_Cast(self, n: A.Cast, s, agg_ok) -> _E:
        e = self.expr(n.expr, s, agg_ok=agg_ok)
        target = A.CAST_TYPES[n.type_name]
        if e.type in _GEOMETRY:
            raise _err(n, "a geometry cannot be CAST")
        if target == "timestamp" and not (_is_string(e.type) or e.type == "timestamp"):
            raise _err(n, f"cannot CAST {e.type} to TIMESTAMP")
        sqltype = {
            "SMALLINT": "SMALLINT",
            "INTEGER": "INTEGER",
            "BIGINT": "BIGINT",
            "REAL": "REAL",
            "DOUBLE PRECISION": "DOUBLE PRECISION",
            "CHAR": "VARCHAR",
            "VARCHAR": "VARCHAR",
            "TIMESTAMP": "TIMESTAMP",
        }[n.type_name]
        if n.length is not None:
            sqltype += f"({n.length})"
        unit = e.unit if target in _NUMERIC_RANK else ""
        return _E(f"CAST({e.sql} AS {sqltype})", target, unit=unit)

    def x_FunctionCall(self, n: A.FunctionCall, s, agg_ok) -> _E:
        name = n.name
        if name in A.AGGREGATES:
            return self.aggregate(n, s, agg_ok)
        if name in A.GEOMETRY_FUNCTIONS:
            return self.geometry(n, s, agg_ok)
        args = [self.expr(a, s, agg_ok=agg_ok) for a in n.args]
        if name in ("LOWER", "UPPER"):
            if not _is_string(args[0].type):
                raise _err(n.args[0], f"{name} needs a string, got {args[0].type}")
            return _E(f"{name}({args[0].sql})", _string_type(args[0].type))
        if name == "COALESCE":
            t = "null"
            for a, node in zip(args, n.args):
                t = _unify(node, t, a.type)
            return _E(f"COALESCE({', '.join(a.sql for a in args)})", t if t != "null" else "char")
        for a, node in zip(args, n.args):
            if not _is_numeric(a.type):
                raise _err(node, f"{name} needs numbers, got {a.type}")
        sq = [a.sql for a in args]
        if name == "PI":
            return _E("PI()", "double", const=math.pi)
        if name == "RAND":
            if args:
                raise _err(n, "RAND with a seed is not supported; use RAND()")
            return _E("RANDOM()", "double")
        if name == "ABS":
            t = args[0].type if args[0].type != "null" else "double"
            return _E(f"ABS({sq[0]})", t, unit=args[0].unit)
        if name in ("CEILING", "FLOOR"):
            fn = "CEIL" if name == "CEILING" else "FLOOR"
            t = args[0].type if args[0].type in _INTEGER else "double"
            return _E(f"{fn}({sq[0]})", t, unit=args[0].unit)
        if name == "MOD":
            t = _promote(args[0].type, args[1].type)
            if t in _INTEGER:
                return _E(f"MOD({sq[0]}, {sq[1]})", t)
            x, y = f"CAST({sq[0]} AS DOUBLE PRECISION)", f"CAST({sq[1]} AS DOUBLE PRECISION)"
            return _E(f"({x} - {y} * TRUNC({x} / {y}))", "double")
        if name == "ROUND" or name == "TRUNCATE":
            t = args[0].type if args[0].type != "null" else "double"
            digits = sq[1] if len(sq) > 1 else "0"
            if len(sq) > 1 and args[1].type not in _INTEGER:
                raise _err(n.args[1], f"{name} digits must be an integer")
            if name == "ROUND":
                if self.pg:
                    sql = f"ROUND(CAST({sq[0]} AS NUMERIC), {digits})"
                else:
                    sql = f"ROUND({sq[0]}, {digits})"
            else:
                sql = (
                    f"(TRUNC(CAST({sq[0]} AS DOUBLE PRECISION) * POWER(10.0, {digits})) "
                    f"/ POWER(10.0, {digits}))"
                )
            if t in _INTEGER:
                return _E(f"CAST({sql} AS BIGINT)", "long", unit=args[0].unit)
            return _E(f"CAST({sql} AS DOUBLE PRECISION)", "double", unit=args[0].unit)
        simple = {
            "DEGREES": "DEGREES",
            "RADIANS": "RADIANS",
            "EXP": "EXP",
            "LOG": "LN",
            "LOG10": "LOG10",
            "POWER": "POWER",
            "SQRT": "SQRT",
            "ACOS": "ACOS",
            "ASIN": "ASIN",
            "ATAN": "ATAN",
            "ATAN2": "ATAN2",
            "COS": "COS",
            "COT": "COT",
            "SIN": "SIN",
            "TAN": "TAN",
        }
        fn = simple[name]
        cast = [f"CAST({x} AS DOUBLE PRECISION)" for x in sq]
        unit = {
            "DEGREES": "deg",
            "RADIANS": "rad",
            "ACOS": "rad",
            "ASIN": "rad",
            "ATAN": "rad",
            "ATAN2": "rad",
        }.get(name, "")
        const = _NOCONST
        if all(a.is_const and a.const is not None for a in args):
            const = _fold_fn(name, [a.const for a in args])
        return _E(f"{fn}({', '.join(cast)})", "double", const=const, unit=unit)

    def aggregate(self, n: A.FunctionCall, s, agg_ok) -> _E:
        if not agg_ok:
            raise _err(n, f"aggregate {n.name} is not allowed here")
        if n.star:
            return _E("COUNT(*)", "long")
        # Aggregates may not nest: their arguments are plain expressions.
        arg = self.expr(n.args[0], s, agg_ok=False)
        d = "DISTINCT " if n.distinct else ""
        if n.name == "COUNT":
            if arg.type in _GEOMETRY:
                raise _err(n, "COUNT needs a value, not a geometry")
            return _E(f"COUNT({d}{arg.sql})", "long")
        if n.name in ("MIN", "MAX"):
            if arg.type in _GEOMETRY:
                raise _err(n, f"{n.name} needs a value, not a geometry")
            return _E(f"{n.name}({d}{arg.sql})", arg.type, info=None, unit=arg.unit)
        if not _is_numeric(arg.type):
            raise _err(n.args[0], f"{n.name} needs numbers, got {arg.type}")
        if n.name == "SUM":
            t = "long" if arg.type in _INTEGER else "double"
            sql = f"SUM({d}{arg.sql})"
            # DuckDB sums integers to HUGEINT, PostgreSQL bigint to NUMERIC and real to real.
            sql = f"CAST({sql} AS {'BIGINT' if t == 'long' else 'DOUBLE PRECISION'})"
            return _E(sql, t, unit=arg.unit)
        return _E(f"AVG({d}CAST({arg.sql} AS DOUBLE PRECISION))", "double", unit=arg.unit)

    # ---- geometry ----------------------------------------------------------------------------

    def geometry(self, n: A.FunctionCall, s, agg_ok) -> _E:
        name = n.name
        if name == "POINT":
            lon, lat = (self._coord(a, s, agg_ok, name) for a in n.args)
            return _E("", "point", geom=_Point(lon, lat))
        if name == "CIRCLE":
            if len(n.args) == 2:
                center = self._geom(n.args[0], s, agg_ok, "point", "CIRCLE centre")
                r = self._coord(n.args[1], s, agg_ok, "CIRCLE radius")
            else:
                lon, lat, r = (self._coord(a, s, agg_ok, name) for a in n.args)
                center = _Point(lon, lat)
            return _E("", "circle", geom=_Circle(center, r))
        if name in ("BOX", "POLYGON"):
            return _E("", "polygon", geom=self._polygon(n, s, agg_ok))
        if name in ("COORD1", "COORD2"):
            p = self._geom(n.args[0], s, agg_ok, "point", name)
            e = p.lon if name == "COORD1" else p.lat
            return replace(e, unit="deg")
        if name == "COORDSYS":
            self._geom(n.args[0], s, agg_ok, None, name)
            return _E("'ICRS'", "char", const="ICRS")
        if name == "DISTANCE":
            if len(n.args) == 2:
                p1 = self._geom(n.args[0], s, agg_ok, "point", "DISTANCE")
                p2 = self._geom(n.args[1], s, agg_ok, "point", "DISTANCE")
            else:
                c = [self._coord(a, s, agg_ok, "DISTANCE") for a in n.args]
                p1, p2 = _Point(c[0], c[1]), _Point(c[2], c[3])
            return _E(self._distance_sql(p1, p2), "double", unit="deg")
        if name in ("CONTAINS", "INTERSECTS"):
            cond = self.region_condition(n, s, agg_ok)
            return _E(f"(CASE WHEN {cond} THEN 1 ELSE 0 END)", "int")
        raise _err(n, f"unsupported geometry function {name}")

    def _coord(self, node, s, agg_ok, what) -> _E:
        e = self.expr(node, s, agg_ok=agg_ok)
        if not _is_numeric(e.type):
            raise _err(node, f"{what} needs numbers (degrees), got {e.type}")
        return e

    def _geom(self, node, s, agg_ok, want, what):
        e = self.expr(node, s, agg_ok=agg_ok)
        if e.type not in _GEOMETRY or (want is not None and e.type != want):
            raise _err(node, f"{what} needs a {(want or 'geometry').upper()}, got {e.type}")
        return e.geom

    def _polygon(self, n: A.FunctionCall, s, agg_ok) -> _Polygon:
        name = n.name
        if name == "BOX":
            if len(n.args) == 3:
                p = self._geom(n.args[0], s, agg_ok, "point", "BOX centre")
                vals = [p.lon, p.lat] + [self._coord(a, s, agg_ok, "BOX") for a in n.args[1:]]
            else:
                vals = [self._coord(a, s, agg_ok, "BOX") for a in n.args]
            if not all(v.is_const and v.const is not None for v in vals):
                raise _err(n, "BOX arguments must be constants in this service")
            try:
                ra, dec = box_vertices(*[float(v.const) for v in vals])
            except ValueError as exc:
                raise _err(n, str(exc)) from None
            return _Polygon(ra, dec, "BOX", n)
        coords = []
        if len(n.args) == 3 or all(
            isinstance(a, A.FunctionCall) and a.name == "POINT" for a in n.args
        ):
            for a in n.args:
                p = self._geom(a, s, agg_ok, "point", "POLYGON vertex")
                coords.extend([p.lon, p.lat])
        else:
            coords = [self._coord(a, s, agg_ok, "POLYGON") for a in n.args]
        if not all(v.is_const and v.const is not None for v in coords):
            raise _err(n, "POLYGON vertices must be constants in this service")
        vals = [float(v.const) for v in coords]
        return _Polygon(vals[0::2], vals[1::2], "POLYGON", n)

    def _distance_sql(self, p1: _Point, p2: _Point) -> str:
        # Vincenty's formula: accurate at every separation, NULL-preserving, no clamping.
        a1, d1 = _rad(p1.lon), _rad(p1.lat)
        a2, d2 = _rad(p2.lon), _rad(p2.lat)
        da = f"({a2} - {a1})"
        num = (
            f"SQRT(POWER(COS({d2}) * SIN({da}), 2) + "
            f"POWER(COS({d1}) * SIN({d2}) - SIN({d1}) * COS({d2}) * COS({da}), 2))"
        )
        den = f"(SIN({d1}) * SIN({d2}) + COS({d1}) * COS({d2}) * COS({da}))"
        return f"DEGREES(ATAN2({num}, {den}))"

    def region_condition(self, n: A.FunctionCall, s, agg_ok) -> str:
        """Boolean SQL of CONTAINS(a, b) / INTERSECTS(a, b)."""
        if not (isinstance(n, A.FunctionCall) and n.name in ("CONTAINS", "INTERSECTS")):
            raise _err(n, "expected CONTAINS or INTERSECTS")
        a = self.expr(n.args[0], s, agg_ok=agg_ok)
        b = self.expr(n.args[1], s, agg_ok=agg_ok)
        for e, node in ((a, n.args[0]), (b, n.args[1])):
            if e.type not in _GEOMETRY:
                raise _err(node, f"{n.name} needs geometries, got {e.type}")
        if n.name == "INTERSECTS" and b.type == "point" and a.type != "point":
            a, b = b, a  # INTERSECTS is symmetric; a point intersects a region it lies in
        if a.type == "point":
            if b.type == "circle":
                return self.in_circle(a.geom, b.geom)
            if b.type == "polygon":
                return self.in_polygon(a.geom, b.geom, n)
            if b.type == "point":
                return f"({self._distance_sql(a.geom, b.geom)} = 0)"
        if a.type == "circle" and b.type == "circle":
            c1, c2 = a.geom, b.geom
            d = self._distance_sql(c1.center, c2.center)
            if n.name == "INTERSECTS":
                return f"({d} <= ({c1.radius.sql}) + ({c2.radius.sql}))"
            return f"({d} + ({c1.radius.sql}) <= ({c2.radius.sql}))"
        if a.type == "circle" and b.type == "polygon" and n.name == "CONTAINS":
            raise _err(n, "CONTAINS(CIRCLE, POLYGON) is not supported")
        raise _err(
            n,
            f"{n.name}({a.type.upper()}, {b.type.upper()}) is not supported; supported: "
            "CONTAINS/INTERSECTS(POINT, CIRCLE|BOX|POLYGON), CONTAINS/INTERSECTS(CIRCLE, "
            "CIRCLE)",
        )

    def _indexed(self, p: _Point) -> _Source | None:
        """The source whose indexed (ra, dec) columns are exactly this point's coordinates."""
        if p.lon.col is None or p.lat.col is None:
            return None
        src, lon_name = p.lon.col
        src2, lat_name = p.lat.col
        t = src.table
        if src is not src2 or t is None or t.ra is None or t.dec is None:
            return None
        if lon_name != t.ra.lower() or lat_name != t.dec.lower():
            return None
        return src

    def _hpx_filter(self, src: _Source, ranges: np.ndarray) -> str:
        col = f"{src.alias}.{quote_ident(src.table.hpx_column)}"
        if len(ranges) == 0:
            return "FALSE"
        terms = [
            f"{col} = {lo}" if lo == hi else f"{col} BETWEEN {lo} AND {hi}" for lo, hi in ranges
        ]
        env = f"{col} BETWEEN {ranges[0, 0]} AND {ranges[-1, 1]}"
        if len(terms) == 1:
            return terms[0]
        # The envelope first lets the scan skip row groups; the ranges then filter rows.
        return f"{env} AND ({' OR '.join(terms)})"

    def in_circle(self, p: _Point, c: _Circle) -> str:
        exact = self._hav_test(p, c.center, c.radius)
        r = c.radius
        consts = all(x.is_const and x.const is not None for x in (c.center.lon, c.center.lat, r))
        if consts:
            ra0, dec0, rad = float(c.center.lon.const), float(c.center.lat.const), float(r.const)
            if not -90 <= dec0 <= 90:
                raise QueryError(f"CIRCLE centre latitude {dec0} outside [-90, 90]")
            # A folded radius may be infinite (EXP(1000)): the exact test reads it as the whole
            # sky (or nothing); the index filters need a finite number meaning the same.
            rad = max(min(rad, 180.0), -1.0)
            src = self._indexed(p)
            if src is not None:
                if self.pg and src.table.q3c:
                    ra_sql, dec_sql = p.lon.sql, p.lat.sql
                    q = (
                        f"q3c_radial_query({ra_sql}, {dec_sql}, {_num(ra0)}, {_num(dec0)}, "
                        f"{_num(max(rad, 0.0))})"
                    )
                    return f"({q} AND {exact})"
                if src.table.hpx_column is not None:
                    ranges = hpx.cone_ranges(
                        ra0, dec0, rad, src.table.hpx_order, max_ranges=MAX_RANGES
                    )
                    return f"({self._hpx_filter(src, ranges)} AND {exact})"
        return exact

    def _hav_test(self, p: _Point, center: _Point, r: _E) -> str:
        """Haversine test hav(d) <= sin^2(r/2): precise down to tiny radii."""
        a1, d1 = _rad(p.lon), _rad(p.lat)
        a2, d2 = _rad(center.lon), _rad(center.lat)
        cos_d2 = f"COS({d2})"
        if center.lat.is_const and center.lat.const is not None:
            cos_d2 = _num(math.cos(math.radians(float(center.lat.const))))
        hav = (
            f"POWER(SIN(({d1} - {d2}) / 2), 2) + COS({d1}) * {cos_d2} * "
            f"POWER(SIN(({a1} - {a2}) / 2), 2)"
        )
        if r.is_const and r.const is not None:
            rad = float(r.const)
            if rad < 0:
                return "FALSE"
            bound = math.sin(math.radians(min(rad, 180.0)) / 2) ** 2
            if rad >= 180:
                return f"({hav} IS NOT NULL)"
            return f"({hav} <= {_num(bound)})"
        rr = f"RADIANS(LEAST(CAST({r.sql} AS DOUBLE PRECISION), 180.0))"
        return f"({hav} <= POWER(SIN({rr} / 2), 2) AND ({r.sql}) >= 0)"

    def in_polygon(self, p: _Point, poly: _Polygon, node) -> str:
        try:
            planes = polygon_planes(poly.ra, poly.dec)
        except ValueError as exc:
            raise _err(poly.node or node, f"{poly.what}: {exc}") from None
        a, d = _rad(p.lon), _rad(p.lat)
        x, y, z = f"COS({d}) * COS({a})", f"COS({d}) * SIN({a})", f"SIN({d})"
        if sum(len(n) for n in planes.pieces) > _INLINE_PLANES:
            exact = self._polygon_table(planes, x, y, z)
        else:
            pieces = []
            for normals in planes.pieces:
                tests = [
                    f"({_num(nx)} * {x} + {_num(ny)} * {y} + {_num(nz)} * {z} >= 0)"
                    for nx, ny, nz in normals
                ]
                pieces.append("(" + " AND ".join(tests) + ")")
            exact = pieces[0] if len(pieces) == 1 else "(" + " OR ".join(pieces) + ")"
        src = self._indexed(p)
        if src is None:
            return exact
        if self.pg and src.table.q3c:
            ra_c, dec_c, radius = hpx.bounding_cone(planes.ra, planes.dec)
            q = (
                f"q3c_radial_query({p.lon.sql}, {p.lat.sql}, {_num(ra_c)}, {_num(dec_c)}, "
                f"{_num(radius * (1 + 1e-9) + 1e-9)})"
            )
            return f"({q} AND {exact})"
        if src.table.hpx_column is not None:
            ranges = hpx.polygon_ranges(
                planes.ra, planes.dec, src.table.hpx_order, max_ranges=MAX_RANGES
            )
            return f"({self._hpx_filter(src, ranges)} AND {exact})"
        return exact

    def _polygon_table(self, planes, x: str, y: str, z: str) -> str:
        """The point-in-polygon test of a large polygon, its planes given as a VALUES table.

        One inline test per plane made a 1,000-vertex polygon ~600 kB of SQL whose planning
        took DuckDB seconds (and cannot be interrupted); as data, the planes cost the planner
        almost nothing. Convex: no plane has the point outside. Otherwise: some triangle has
        it inside all three of its planes. The arithmetic is the inline test's; a NULL
        position gives NULL, as there. Numbers carry an exponent so that DuckDB reads them as
        DOUBLE (not DECIMAL); PostgreSQL's exact numeric converts to the same double.
        """

        def lit(v) -> str:
            text = _num(v)
            return text if "e" in text else text + "e0"

        alias = self.new_alias("pl")
        if planes.convex:
            rows = ", ".join(f"({lit(a)}, {lit(b)}, {lit(c)})" for a, b, c in planes.pieces[0])
            outside = f"{alias}.a * {x} + {alias}.b * {y} + {alias}.c * {z} < 0"
            inside = (
                f"NOT EXISTS (SELECT 1 FROM (VALUES {rows}) AS {alias} (a, b, c) WHERE {outside})"
            )
        else:
            rows = ", ".join(
                "(" + ", ".join(lit(v) for v in tri.ravel()) + ")" for tri in planes.pieces
            )
            tests = " AND ".join(
                f"{alias}.a{i} * {x} + {alias}.b{i} * {y} + {alias}.c{i} * {z} >= 0"
                for i in range(3)
            )
            inside = (
                f"EXISTS (SELECT 1 FROM (VALUES {rows}) AS {alias} "
                f"(a0, b0, c0, a1, b1, c1, a2, b2, c2) WHERE {tests})"
            )
        return f"(CASE WHEN {x} IS NULL THEN NULL ELSE {inside} END)"

    # ---- cross-match joins -----------------------------------------------------------------

    def crossmatch(self, node, s: _Scope, where: str, cells_out) -> str | None:
        """SQL for a top-level cross-match conjunct using a helper table, or None."""
        prox = _proximity(node)
        if prox is None:
            return None
        pa_nodes, pb_nodes, r_node = prox
        pa = _Point(*(self.expr(x, s) for x in pa_nodes))
        pb = _Point(*(self.expr(x, s) for x in pb_nodes))
        r = self.expr(r_node, s)
        if not (r.is_const and r.const is not None) or not _is_numeric(r.type):
            return None
        rad = float(r.const)
        for m_pt, u_pt in ((pa, pb), (pb, pa)):
            m_src = self._indexed(m_pt)
            if m_src is None:
                continue
            u_src = _single_source(u_pt)
            if u_src is None or u_src is m_src or u_src.table is None:
                continue
            if not u_src.table.name.lower().startswith("tap_upload."):
                continue
            if not (_is_plain_col(u_pt.lon) and _is_plain_col(u_pt.lat)):
                continue
            exact = self._hav_test(m_pt, u_pt, r)
            if self.pg and m_src.table.q3c:
                q = (
                    f"q3c_join({u_pt.lon.sql}, {u_pt.lat.sql}, {m_pt.lon.sql}, "
                    f"{m_pt.lat.sql}, {_num(max(rad, 0.0))})"
                )
                return f"({q} AND {exact})"
            if m_src.table.hpx_column is None or rad < 0 or rad >= 30:
                continue
            name = f"_hpx_cells_{len(self.aux)}"
            c_alias = self.new_alias("c")
            order = m_src.table.hpx_order
            depth = hpx.neighbour_depth(rad, order)
            self.aux.append(
                HealpixCells(
                    name=name,
                    source_physical=u_src.table.physical,
                    ra_column=quote_ident(u_pt.lon.info.name),
                    dec_column=quote_ident(u_pt.lat.info.name),
                    radius_deg=rad,
                    index_order=order,
                    depth=depth,
                )
            )
            hcol = f"{m_src.alias}.{quote_ident(m_src.table.hpx_column)}"
            link = f'{c_alias}."src_rowid" = {u_src.alias}."_rowid"'
            if depth is None:
                rng = f'{hcol} BETWEEN {c_alias}."lo" AND {c_alias}."hi"'
            else:
                # Cell equality lets the database hash-join (a BETWEEN join is a range join,
                # ~10x slower for 20,000 uploaded rows against 10 million).
                shift = 2 * (order - depth)
                key = hcol if shift == 0 else f"({hcol} >> {shift})"
                rng = f'{key} = {c_alias}."cell"'
            if where == "ON":
                cells_out.append((c_alias, u_src, f"{quote_ident(name)} AS {c_alias} ON {link}"))
                return f"({rng} AND {exact})"
            s.pending_xm.append(
                (u_src, m_src, f"{quote_ident(name)} AS {c_alias}", link, f"{rng} AND {exact}")
            )
            return f"\x00xm{len(s.pending_xm) - 1}\x00"
        return None


# --------------------------------------------------------------------------------------------
# helpers


# Precedence groups of binary operators; "//" (DuckDB integer division) is kept apart so that
# it is always parenthesised on its own.
_OP_LEVEL = {"||": 0, "+": 1, "-": 1, "*": 2, "/": 2, "//": 3}


def _rad(e: _E) -> str:
    if e.is_const and e.const is not None:
        r = math.radians(float(e.const))
        # Angles below 1e-150 rad are zero for any purpose, and their squares would underflow
        # (an error in PostgreSQL).
        return _num(0.0 if abs(r) < 1e-150 else r)
    return f"RADIANS({e.sql})"


def _min_opt(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _fold(op, a, b, integer):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if integer:
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b >= 0) else -q
        return a / b
    raise ValueError(op)


# Folded as DuckDB computes them (IEEE arithmetic): a result outside a function's domain is
# NaN (POWER(-1, 0.5), SQRT(-1), ACOS(2)), an overflow is +-inf (EXP(1000)) and LOG(0) is
# -inf; never a Python exception or a complex number (``float ** float`` of a negative base
# is complex in Python). ``math`` gives the usual values (libm, as the databases); where it
# refuses, NumPy gives the IEEE one. The SQL itself still goes to the database (PostgreSQL
# raises its own errors there); a constant is only used where the translator needs a value
# (geometry arguments), and a NaN or infinite one is then refused with a QueryError.
_FOLD = {
    "DEGREES": (math.degrees, np.degrees),
    "RADIANS": (math.radians, np.radians),
    "SQRT": (math.sqrt, np.sqrt),
    "EXP": (math.exp, np.exp),
    "LOG": (math.log, np.log),
    "LOG10": (math.log10, np.log10),
    "COS": (math.cos, np.cos),
    "SIN": (math.sin, np.sin),
    "TAN": (math.tan, np.tan),
    "ACOS": (math.acos, np.arccos),
    "ASIN": (math.asin, np.arcsin),
    "ATAN": (math.atan, np.arctan),
    "POWER": (math.pow, np.power),
    "ATAN2": (math.atan2, np.arctan2),
}


def _fold_fn(name, vals):
    """Float value of a maths function of constants (NaN/inf as IEEE), or ``_NOCONST``."""
    if name not in _FOLD:
        return _NOCONST
    try:
        x = [float(v) for v in vals]
    except (TypeError, ValueError, OverflowError):
        return _NOCONST
    exact, ieee = _FOLD[name]
    try:
        return float(exact(*x))
    except (ValueError, OverflowError, ZeroDivisionError):
        with np.errstate(all="ignore"):
            return float(ieee(*[np.float64(v) for v in x]))


def _string_type(t: str) -> str:
    return "unicodeChar" if t == "unicodeChar" else "char"


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


def _check_comparable(node, a: _E, b: _E) -> None:
    ta, tb = a.type, b.type
    if ta in _GEOMETRY or tb in _GEOMETRY:
        raise _err(node, f"cannot compare {ta} with {tb}")
    if "null" in (ta, tb):
        return
    groups = [_NUMERIC_RANK.keys(), _STRING, {"boolean"}, {"timestamp"}]
    for g in groups:
        if ta in g and tb in g:
            return
    if ta == "timestamp" and tb in _STRING or tb == "timestamp" and ta in _STRING:
        return  # timestamp literal written as a string
    raise _err(node, f"cannot compare {ta} with {tb}")


def _out_col(c: OutputColumn) -> _Col:
    return _Col(c.name.lower(), c.name, quote_ident(c.name), c.info)


def _info_for(name: str, e: _E) -> ColumnInfo:
    if e.info is not None:
        return replace(e.info, name=name)
    datatype = e.type
    arraysize = None
    if datatype in ("null",):
        datatype = "char"
    if datatype in _STRING:
        arraysize = "*"
    return ColumnInfo(name=name, datatype=datatype, arraysize=arraysize, unit=e.unit)


def _conjuncts(node) -> list:
    """The AND-ed terms of a condition, in source order (iterative: chains can be long)."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, A.Logical) and n.op == "AND":
            stack.append(n.right)
            stack.append(n.left)
        else:
            out.append(n)
    return out


def _has_outer_join(t) -> bool:
    if isinstance(t, A.Join):
        return (
            t.kind in ("LEFT", "RIGHT", "FULL")
            or _has_outer_join(t.left)
            or _has_outer_join(t.right)
        )
    return False


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


def _point_args(node):
    if isinstance(node, A.FunctionCall) and node.name == "POINT":
        return tuple(node.args)
    return None


def _proximity(node):
    """(point A coords, point B coords, radius) of a 'distance(A, B) <= r' style conjunct."""
    if isinstance(node, A.Comparison):
        reg = _region_compare(node)
        if reg is not None:
            call = reg[0]
            a, b = call.args
            if call.name == "INTERSECTS" and _point_args(b) and not _point_args(a):
                a, b = b, a
            pa = _point_args(a)
            if pa is None or not (isinstance(b, A.FunctionCall) and b.name == "CIRCLE"):
                return None
            if len(b.args) == 3:
                return pa, (b.args[0], b.args[1]), b.args[2]
            pb = _point_args(b.args[0])
            return (pa, pb, b.args[1]) if pb else None
        left, right, op = node.left, node.right, node.op
        if op in (">", ">="):
            left, right, op = right, left, "<=" if op == ">=" else "<"
        if op in ("<", "<=") and isinstance(left, A.FunctionCall) and left.name == "DISTANCE":
            args = left.args
            if len(args) == 4:
                return (args[0], args[1]), (args[2], args[3]), right
            pa, pb = _point_args(args[0]), _point_args(args[1])
            if pa and pb:
                return pa, pb, right
    return None


def _single_source(p: _Point) -> _Source | None:
    if p.lon.col is None or p.lat.col is None:
        return None
    if p.lon.col[0] is not p.lat.col[0]:
        return None
    return p.lon.col[0]


def _is_plain_col(e: _E) -> bool:
    return e.col is not None and e.info is not None


# --------------------------------------------------------------------------------------------
# entry point


def translate(
    text_or_query,
    *,
    dialect: str,
    catalog: SchemaCatalog,
    maxrec: int | None = None,
    deadline: Deadline | None = None,
) -> Translation:
    """Translate one ADQL query to the SQL of ``dialect``.

    Parameters
    ----------
    text_or_query : str or skysense.vo.adql.Query
        ADQL text or an already parsed query.
    dialect : {"duckdb", "postgresql"}
        Target database.
    catalog : SchemaCatalog
        The tables the query may use (uploads included as ``tap_upload.<name>``).
    maxrec : int, optional
        Row limit: the SQL then returns at most ``maxrec + 1`` rows so the caller can tell
        an overflow (``overflow_probe``); ``TOP n`` combines with it (the smaller wins).
    deadline : skysense.vo.limits.Deadline, optional
        Translation stops with the deadline's time-limit error once it has passed (checked
        after parsing and regularly while translating).

    Returns
    -------
    Translation
        SQL, output columns (name + ColumnInfo), helper tables to create first, and whether
        the SQL probes for overflow.

    Raises
    ------
    QueryError
        Syntax errors, unknown or ambiguous names, wrong argument counts or types, and
        constructs this service does not support, queries beyond the caps of
        :mod:`skysense.vo.limits`, and (with ``deadline``) the time limit; with the line and
        column of the offending token where there is one.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    if not isinstance(catalog, SchemaCatalog):
        raise TypeError("catalog must be a SchemaCatalog")
    if maxrec is not None and (isinstance(maxrec, bool) or int(maxrec) < 0):
        raise ValueError(f"maxrec must be a non-negative integer, got {maxrec!r}")
    if isinstance(text_or_query, str):
        q, cached = parse_cached(text_or_query, deadline=deadline)
        if deadline is not None:
            deadline.check("parsing")
        if cached:
            try:
                return _translate_tree(q, dialect, catalog, maxrec, deadline)
            except QueryError:
                if deadline is not None and deadline.expired:
                    raise
                # A cached tree carries the template's positions: redo from the text itself
                # so the message points at the offending token.
                q = A.parse(text_or_query, deadline=deadline)
    else:
        q = text_or_query
    if not isinstance(q, A.Query):
        raise TypeError("translate needs ADQL text or a skysense.vo.adql.Query")
    return _translate_tree(q, dialect, catalog, maxrec, deadline)


def _translate_tree(
    q: A.Query, dialect: str, catalog: SchemaCatalog, maxrec, deadline: Deadline | None = None
) -> Translation:
    t = _Translator(dialect, catalog, deadline)
    probe_limit = None if maxrec is None else int(maxrec) + 1
    sql, cols = t.query(q, None, limit=probe_limit)
    top = _outer_top(q)
    overflow = maxrec is not None and (top is None or top > int(maxrec))
    return Translation(sql=sql, columns=cols, aux=list(t.aux), overflow_probe=overflow)


def _outer_top(q: A.Query) -> int | None:
    return q.body.top if isinstance(q.body, A.Select) else None
