"""ADQL -> SQL: the translator core (scopes, names, expression dispatch) and :func:`translate`."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from skysense._check import did_you_mean
from skysense.errors import QueryError
from skysense.vo import adql as A
from skysense.vo.adql_cache import parse_cached
from skysense.vo.hpx import BlockIndex
from skysense.vo.limits import Deadline
from skysense.vo.parts import PartitionIndex
from skysense.vo.schema import SchemaCatalog
from skysense.vo.sql.common import (
    _E,
    _GEOMETRY,
    _INTEGER,
    _NOCONST,
    _NUMERIC_RANK,
    _PUSHDOWN_TERMS,
    _STRING,
    DIALECTS,
    HealpixCells,
    Translation,
    _err,
    _is_numeric,
    _is_string,
    _num,
    _promote,
    _region_compare,
    _Scope,
    _Source,
    _unify,
    quote_ident,
    quote_string,
)
from skysense.vo.sql.functions import FunctionMixin
from skysense.vo.sql.geometry import GeometryMixin, geometry_sources
from skysense.vo.sql.joincells import COLUMN_RADIUS_BOUND_DEG, JoinCells
from skysense.vo.sql.select import SelectMixin

__all__ = ["translate"]


@dataclass(frozen=True)
class _Options:
    """The caller's limits of one translation (each is described at :func:`translate`)."""

    deadline: Deadline | None = None
    max_unindexed_pairs: int | None = None
    join_radius_bound_deg: float = COLUMN_RADIUS_BOUND_DEG
    blocks: Callable[[str], BlockIndex | None] | None = None
    parts: Callable[[str], PartitionIndex | None] | None = None


class _Translator(SelectMixin, FunctionMixin, GeometryMixin):
    """One translation: the dialect, the catalog, helper tables and the alias counter.

    The concerns live in mixins: :class:`~skysense.vo.sql.select.SelectMixin` (queries and
    FROM), :class:`~skysense.vo.sql.functions.FunctionMixin` (functions and casts) and
    :class:`~skysense.vo.sql.geometry.GeometryMixin` (ADQL geometry and index filters); this
    class keeps names, conditions and the expression dispatch.
    """

    def __init__(self, dialect: str, catalog: SchemaCatalog, opts: _Options | None = None):
        self.dialect = dialect
        self.catalog = catalog
        self.opts = opts if opts is not None else _Options()
        self.aux: list[HealpixCells | JoinCells] = []
        self._n = 0
        self._ticks = 0
        # Tables served over Parquet files (skysense.vo.parts): their FROM items are
        # placeholders until the query block's WHERE says which files its regions touch.
        self._part_token = secrets.token_hex(8)
        self._part_sources: dict[int, tuple[str, PartitionIndex]] = {}  # id(src) -> (mark, idx)
        self._part_log: list[tuple[int, object, np.ndarray]] = []  # (depth, src, ranges)
        self._part_top: dict[int, list[np.ndarray]] = {}  # id(src) -> WHERE regions' ranges
        self._cond_depth = 0

    def tick(self) -> None:
        """Check the deadline now and then (every 256 calls: a clock read costs ~50 ns)."""
        self._ticks += 1
        deadline = self.opts.deadline
        if deadline is not None and not self._ticks & 255:
            deadline.check()

    def new_alias(self, prefix: str = "t") -> str:
        self._n += 1
        return quote_ident(f"{prefix}{self._n}")

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

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
        self,
        node,
        s,
        where: str,
        *,
        agg_ok=False,
        cells_ok=False,
        cells_out=None,
        local=None,
        optional=None,
    ) -> str:
        """A boolean expression; top-level AND-ed conjuncts may use cross-match helpers.

        ``local``: the FROM sources a join condition may pair (default: the scope's own);
        ``optional``: ids of the sources an outer join may leave missing (ON of LEFT/RIGHT).
        A positional comparison between two tables that gets no index is refused when the
        tables hold more than ``max_unindexed_pairs`` pairs (:meth:`_refuse_unindexed`).
        """
        conjuncts = _conjuncts(node)
        parts = []
        plain = []  # positions in parts of conjuncts without index filters (see _shield)
        self._cond_depth += 1
        try:
            return self._condition(conjuncts, s, where, agg_ok, cells_ok, cells_out, local,
                                   optional, parts, plain)  # fmt: skip
        finally:
            self._cond_depth -= 1

    def _condition(
        self, conjuncts, s, where, agg_ok, cells_ok, cells_out, local, optional, parts, plain
    ) -> str:
        for c in conjuncts:
            # A region constraint AND-ed at the top of a WHERE holds for every row of the
            # query block: the file-served tables it constrains need only the files it touches.
            top_region = where == "WHERE" and isinstance(c, A.Comparison) and _region_compare(c)
            log_start = len(self._part_log)
            sql = None
            if cells_ok:
                sql = self.crossmatch(c, s, where, cells_out, local, optional)
            if sql is None and self.opts.max_unindexed_pairs is not None:
                self._refuse_unindexed(c, conjuncts, s, local)
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
            if top_region:
                own = {id(x) for x in s.sources}
                for depth, src, ranges in self._part_log[log_start:]:
                    if depth == self._cond_depth and id(src) in own:
                        self._part_top.setdefault(id(src), []).append(ranges)
            parts.append(sql)
        if len(plain) > _PUSHDOWN_TERMS and not self.pg:
            shielded = self._shield(" AND ".join(f"({parts[i]})" for i in plain))
            skip = set(plain)
            parts = [p for i, p in enumerate(parts) if i not in skip] + [shielded]
        if len(parts) == 1:
            return parts[0]
        return " AND ".join(f"({p})" for p in parts)

    def _refuse_unindexed(self, c, conjuncts, s: _Scope, local) -> None:
        """Refuse a positional comparison of two tables that runs as a nested loop over more
        than ``max_unindexed_pairs`` pairs (estimated from the tables' row counts; sources of
        unknown size, such as subqueries, are not refused). An equality between the two
        tables' columns elsewhere in the condition lets the database hash-join: no refusal."""
        srcs = geometry_sources(self, c, s, local if local is not None else s.sources)
        if len(srcs) < 2:
            return
        if any(x.table is None or x.table.n_rows is None for x in srcs):
            return
        if _has_equi_join(self, conjuncts, s, srcs):
            return
        pairs = 1
        for x in srcs:
            pairs *= max(int(x.table.n_rows), 1)
        if pairs <= self.opts.max_unindexed_pairs:
            return
        names = " x ".join(f"{x.label} ({x.table.n_rows:,} rows)" for x in srcs)
        raise _err(
            c,
            f"this positional join cannot use the sky index and would compare {pairs:,} pairs "
            f"of {names}, more than the limit of {self.opts.max_unindexed_pairs:,}. Write it so "
            "that it can: 1 = CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, r)) or "
            "DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < r, AND-ed at the top level of "
            "the WHERE clause or of a JOIN's ON (inner, LEFT or RIGHT), with the tables' own "
            "position columns (no arithmetic on them) and a radius below 10 deg that is a "
            "constant or reads one table's columns only; or restrict a table first (a "
            "subquery with a cone or TOP)",
        )

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


# Precedence groups of binary operators; "//" (DuckDB integer division) is kept apart so that
# it is always parenthesised on its own.
_OP_LEVEL = {"||": 0, "+": 1, "-": 1, "*": 2, "/": 2, "//": 3}


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


def _has_equi_join(t: _Translator, conjuncts, s: _Scope, srcs) -> bool:
    """True when a conjunct is ``x.col = y.col`` with columns of two of ``srcs``."""
    ids = {id(x) for x in srcs}
    for c in conjuncts:
        if not (isinstance(c, A.Comparison) and c.op == "="):
            continue
        if not (isinstance(c.left, A.ColumnRef) and isinstance(c.right, A.ColumnRef)):
            continue
        try:
            a, b = t.column(c.left, s), t.column(c.right, s)
        except QueryError:
            continue
        if a.col and b.col and a.col[0] is not b.col[0]:
            if id(a.col[0]) in ids and id(b.col[0]) in ids:
                return True
    return False


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


# --------------------------------------------------------------------------------------------
# entry point


def translate(
    text_or_query,
    *,
    dialect: str,
    catalog: SchemaCatalog,
    maxrec: int | None = None,
    deadline: Deadline | None = None,
    max_unindexed_pairs: int | None = None,
    join_radius_bound_deg: float = COLUMN_RADIUS_BOUND_DEG,
    blocks=None,
    parts=None,
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
    max_unindexed_pairs : int, optional
        Refuse a positional join of two tables that cannot use the sky index when their row
        counts multiply to more than this (None: no limit).
    join_radius_bound_deg : float, deg
        Radius the HEALPix depth of a join whose radius is a column is chosen for (the catalog
        records no column maxima); larger per-row radii stay exact, with more cells.
    blocks : callable, optional
        ``blocks(adql_name)`` gives a table's :class:`~skysense.vo.hpx.BlockIndex` or None
        (a backend's ``hpx_blocks``): a region constraint on a table published field by
        field then also filters its block column (:func:`~skysense.vo.sql.common.block_filter`),
        so only the row groups holding rows in the region are read. The rows are the same.
    parts : callable, optional
        ``parts(adql_name)`` gives the :class:`~skysense.vo.parts.PartitionIndex` of a table
        served over Parquet files, or None (a backend's ``parquet_parts``): such a table is
        read through the files that the regions AND-ed at the top of its query block's WHERE
        touch (every file without one). The rows are the same.

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
    opts = _Options(deadline, max_unindexed_pairs, float(join_radius_bound_deg), blocks, parts)
    if isinstance(text_or_query, str):
        q, cached = parse_cached(text_or_query, deadline=deadline)
        if deadline is not None:
            deadline.check("parsing")
        if cached:
            try:
                return _translate_tree(q, dialect, catalog, maxrec, opts)
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
    return _translate_tree(q, dialect, catalog, maxrec, opts)


def _translate_tree(
    q: A.Query, dialect: str, catalog: SchemaCatalog, maxrec, opts: _Options
) -> Translation:
    t = _Translator(dialect, catalog, opts)
    probe_limit = None if maxrec is None else int(maxrec) + 1
    sql, cols = t.query(q, None, limit=probe_limit)
    top = _outer_top(q)
    overflow = maxrec is not None and (top is None or top > int(maxrec))
    return Translation(sql=sql, columns=cols, aux=list(t.aux), overflow_probe=overflow)


def _outer_top(q: A.Query) -> int | None:
    return q.body.top if isinstance(q.body, A.Select) else None
