"""ADQL -> SQL: queries, SELECT lists, FROM, JOIN, GROUP BY, ORDER BY, set operations and WITH."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from skysense._check import did_you_mean
from skysense.errors import QueryError
from skysense.vo import adql as A
from skysense.vo.limits import MAX_SELECT_COLUMNS
from skysense.vo.schema import ColumnInfo
from skysense.vo.sql.common import (
    _E,
    _GEOMETRY,
    _NUMERIC_RANK,
    _STRING,
    OutputColumn,
    _Col,
    _err,
    _promote,
    _Scope,
    _Source,
    quote_ident,
)

__all__ = ["SelectMixin"]


class SelectMixin:
    """ADQL -> SQL: queries, SELECT lists, FROM, JOIN, GROUP BY, ORDER BY, set operations and WITH.

    A mixin of :class:`~skysense.vo.sql.translator._Translator`: uses its ``expr``, ``condition``,
    scopes and aliases.
    """

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
        return self._place_parts(sql, s), cols, s

    def _place_parts(self, sql: str, s) -> str:
        """Put the relation of each file-served table of this query block in its place: the
        files that every region AND-ed at the top of the WHERE touches (all files when no
        region constrains it; the view itself then)."""
        for src in s.sources:
            entry = self._part_sources.get(id(src))
            if entry is None:
                continue
            mark, index = entry
            regions = self._part_top.get(id(src))
            if not regions:
                sql = sql.replace(mark, src.table.physical)
                continue
            mask = np.ones(len(index), dtype=bool)
            for ranges in regions:
                mask &= index.touched(ranges)
            sql = sql.replace(mark, f"({index.from_sql(mask)})")
        return sql

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
        src = _Source(alias, names, cols, table, table.name)
        s.sources.append(src)
        s.taken.update(names)
        index = self.opts.parts(table.name) if self.opts.parts is not None else None
        if index is not None:
            # Served over Parquet files: which files is known once the WHERE is translated
            # (select() puts the relation in; a random mark no query text can contain).
            mark = f"\x00pq{self._part_token}.{len(self._part_sources)}\x00"
            self._part_sources[id(src)] = (mark, index)
            return f"{mark} AS {alias}"
        return f"{table.physical} AS {alias}"

    def _suggest_table(self, key: str) -> str:
        names = list(self.catalog.tables)
        short = {n.rsplit(".", 1)[-1]: n for n in names}
        return did_you_mean(key, names, cutoff=0.6, clause=True) or did_you_mean(
            key.rsplit(".", 1)[-1], short, shown=short, cutoff=0.6, clause=True
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
        # ON: cross-match helpers for inner joins, and for LEFT/RIGHT joins joined to the side
        # that may be missing (FULL joins keep unmatched rows of both sides: none).
        cells: list = []
        optional = None
        if node.kind in ("LEFT", "RIGHT"):
            optional = {id(x) for x in (right_srcs if node.kind == "LEFT" else left_srcs)}
        on = self.condition(
            node.on,
            s,
            "ON",
            cells_ok=node.kind in ("INNER", "LEFT", "RIGHT"),
            cells_out=cells,
            local=left_srcs + right_srcs,
            optional=optional,
        )
        for _cell_alias, side_src, cell_sql in cells:
            # Join the helper cells to the side the cross-match chose.
            if any(side_src is x for x in left_srcs):
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


def _min_opt(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


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


def _has_outer_join(t) -> bool:
    if isinstance(t, A.Join):
        return (
            t.kind in ("LEFT", "RIGHT", "FULL")
            or _has_outer_join(t.left)
            or _has_outer_join(t.right)
        )
    return False
