"""ADQL -> SQL: geometry (POINT, CIRCLE, BOX, POLYGON, CONTAINS, INTERSECTS, DISTANCE),
HEALPix and Q3C index filters and cross-match joins."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np

from skysense.errors import QueryError
from skysense.vo import adql as A
from skysense.vo import hpx
from skysense.vo.geometry import box_vertices, polygon_planes
from skysense.vo.sql.common import (
    _E,
    _GEOMETRY,
    _INLINE_PLANES,
    MAX_RANGES,
    HealpixCells,
    _Circle,
    _err,
    _is_numeric,
    _num,
    _Point,
    _Polygon,
    _region_compare,
    _Scope,
    _Source,
    block_filter,
    quote_ident,
)
from skysense.vo.sql.joincells import JoinCells, radius_depth

__all__ = ["GeometryMixin", "geometry_sources"]


class GeometryMixin:
    """ADQL -> SQL: geometry, HEALPix and Q3C index filters, cross-match joins.

    A mixin of :class:`~skysense.vo.sql.translator._Translator`: uses its ``expr``, ``condition``,
    scopes and aliases.
    """

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
            return self._with_index(
                p,
                exact,
                lambda: (ra0, dec0, max(rad, 0.0)),
                lambda order: hpx.cone_ranges(ra0, dec0, rad, order, max_ranges=MAX_RANGES),
            )
        return exact

    def _with_index(self, p: _Point, exact: str, cone, ranges) -> str:
        """``exact`` behind the index filter of the table ``p`` is a position of, if any.

        ``cone()`` gives a cone (ra, dec, radius; deg) around the region, for Q3C on
        PostgreSQL; ``ranges(order)`` the region's HEALPix ranges at ``order``, for the
        ``hpx`` column. Both are called only when their index is used.
        """
        src = self._indexed(p)
        if src is None:
            return exact
        if self.pg and src.table.q3c:
            ra_c, dec_c, radius = cone()
            q = (
                f"q3c_radial_query({p.lon.sql}, {p.lat.sql}, {_num(ra_c)}, {_num(dec_c)}, "
                f"{_num(radius)})"
            )
            return f"({q} AND {exact})"
        if src.table.hpx_column is not None:
            r = ranges(src.table.hpx_order)
            filt = self._hpx_filter(src, r)
            if id(src) in self._part_sources:
                # A table served over Parquet files: condition() keeps these ranges when
                # this region is AND-ed at the top of the WHERE (only its files are read).
                self._part_log.append((self._cond_depth, src, r))
            blocks = self.opts.blocks
            index = blocks(src.table.name) if blocks is not None else None
            if index is not None:
                # A table published field by field: its block column first, so that only
                # the row groups of the blocks with rows in the region are read.
                col = f"{src.alias}.{quote_ident(hpx.BLOCK_COLUMN)}"
                filt = f"{block_filter(col, index, r)} AND {filt}"
            return f"({filt} AND {exact})"
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

        def cone():
            ra_c, dec_c, radius = hpx.bounding_cone(planes.ra, planes.dec)
            # widened a hair so that rounding never cuts a vertex off
            return ra_c, dec_c, radius * (1 + 1e-9) + 1e-9

        return self._with_index(
            p,
            exact,
            cone,
            lambda order: hpx.polygon_ranges(planes.ra, planes.dec, order, max_ranges=MAX_RANGES),
        )

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

    def crossmatch(
        self, node, s: _Scope, where: str, cells_out, local=None, optional=None
    ) -> str | None:
        """SQL for a top-level positional-join conjunct using the sky index, or None.

        ``DISTANCE(a, b) < r`` (or ``<=``, ``>``, ``>=`` mirrored) and ``1 = CONTAINS(POINT(a),
        CIRCLE(b, r))`` between two tables of ``local`` (the FROM sources the join may use),
        where one point is the indexed (ra, dec) of its table (the *probe side*) and the other
        is two plain columns of the other table (the *circle side*). ``r`` is a constant or an
        expression over columns of the circle side only. PostgreSQL with Q3C on the probe side:
        ``q3c_join``. Otherwise a helper table of HEALPix cells per circle-side row, joined by
        cell equality (an upload: :class:`HealpixCells`; any other table:
        :class:`~skysense.vo.sql.joincells.JoinCells`). The exact test is the conjunct itself.

        ``optional``: for the ON of a LEFT or RIGHT join, the ids of the sources on the side
        that may be missing; the helper table then joins that side (see :meth:`_indexed_join`).
        """
        prox = _proximity(node)
        if prox is None:
            return None
        pa_nodes, pb_nodes, r_node = prox
        pa = _Point(*(self.expr(x, s) for x in pa_nodes))
        pb = _Point(*(self.expr(x, s) for x in pb_nodes))
        r = self.expr(r_node, s)
        if not _is_numeric(r.type):
            return None
        const = r.is_const and r.const is not None
        if local is None:
            local = s.sources
        local_ids = {id(x) for x in local}
        options = []
        for m_pt, u_pt in ((pa, pb), (pb, pa)):
            m_src = self._indexed(m_pt)
            u_src = _single_source(u_pt)
            if m_src is None or u_src is None or u_src is m_src or u_src.table is None:
                continue
            if id(m_src) not in local_ids or id(u_src) not in local_ids:
                continue
            if not (_is_plain_col(u_pt.lon) and _is_plain_col(u_pt.lat)):
                continue
            if not const and not self._radius_of(r_node, s, u_src):
                continue
            if optional is not None and (id(u_src) in optional) == (id(m_src) in optional):
                continue
            options.append((m_pt, u_pt, m_src, u_src))
        # Uploads make the circle side first (as before); else the smaller table does, so the
        # helper table stays small and the large table is probed once.
        options.sort(key=lambda o: (not _is_upload(o[3]), _n_rows(o[3]), -_n_rows(o[2])))
        for m_pt, u_pt, m_src, u_src in options:
            sql = self._indexed_join(
                node, s, where, cells_out, m_pt, u_pt, m_src, u_src, r, optional
            )
            if sql is not None:
                return sql
        return None

    def _radius_of(self, r_node, s: _Scope, u_src: _Source) -> bool:
        """True when the radius expression reads columns of ``u_src`` only (no subqueries)."""
        for n in _walk(r_node):
            if isinstance(n, A.Query | A.Select | A.ScalarSubquery | A.Exists | A.InSubquery):
                return False
            if isinstance(n, A.ColumnRef):
                e = self.expr(n, s)
                if e.col is None or e.col[0] is not u_src:
                    return False
        return True

    def _indexed_join(
        self, node, s, where, cells_out, m_pt, u_pt, m_src, u_src, r: _E, optional=None
    ):
        const = r.is_const and r.const is not None
        rad = float(r.const) if const else None
        exact = self.expr(node, s).sql
        if self.pg and m_src.table.q3c:
            radius = _num(max(rad, 0.0)) if const else f"GREATEST({r.sql}, 0)"
            q = (
                f"q3c_join({u_pt.lon.sql}, {u_pt.lat.sql}, {m_pt.lon.sql}, "
                f"{m_pt.lat.sql}, {radius})"
            )
            return f"({q} AND {exact})"
        if m_src.table.hpx_column is None:
            return None
        # An upload's ranges (radii of degrees) served up to 30 deg before the cell joins.
        limit = 30.0 if _is_upload(u_src) else _MAX_INDEXED_RADIUS_DEG
        if const and (rad < 0 or rad >= limit):
            return None
        order = m_src.table.hpx_order
        hcol = f"{m_src.alias}.{quote_ident(m_src.table.hpx_column)}"
        c_alias = self.new_alias("c")
        name = f"_hpx_cells_{len(self.aux)}"
        if _is_upload(u_src) and const:
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
            link = f'{c_alias}."src_rowid" = {u_src.alias}."_rowid"'
            if depth is None:
                rng = f'{hcol} BETWEEN {c_alias}."lo" AND {c_alias}."hi"'
            else:
                rng = f'{_shifted(hcol, order, depth)} = {c_alias}."cell"'
        else:
            bound = rad if const else self.opts.join_radius_bound_deg
            depth = radius_depth(bound, order)
            # The row key: an upload's _rowid; DuckDB's rowid of a stored table (a user column
            # named rowid would hide the pseudo-column); else the position links the rows.
            key = None
            if _is_upload(u_src):
                key = f'{u_src.alias}."_rowid"'
            elif (
                not self.pg
                and u_src.table.kind == "table"
                and not any(c.name.lower() == "rowid" for c in u_src.table.columns.values())
                and "rowid" not in u_src.table.columns
            ):
                key = f"{u_src.alias}.rowid"
            keyed = key is not None
            ra_sql = f"CAST({u_pt.lon.sql} AS DOUBLE PRECISION)"
            dec_sql = f"CAST({u_pt.lat.sql} AS DOUBLE PRECISION)"
            cols = [f"{ra_sql} AS ra", f"{dec_sql} AS dec"]
            if keyed:
                cols.insert(0, f"{key} AS k")
                link = f'{c_alias}."k" = {key}'
            else:
                link = f'{c_alias}."ra" = {ra_sql} AND {c_alias}."dec" = {dec_sql}'
            if not const:
                cols.append(f"CAST({r.sql} AS DOUBLE PRECISION) AS r")
            self.aux.append(
                JoinCells(
                    name=name,
                    source_sql=(
                        f"SELECT {', '.join(cols)} FROM {u_src.table.physical} AS {u_src.alias}"
                    ),
                    keyed=keyed,
                    index_order=order,
                    depth=depth,
                    radius_deg=rad,
                )
            )
            # Cell equality lets the database hash-join (a BETWEEN join is a range join,
            # ~10x slower for 20,000 rows against 10 million).
            rng = f'{_shifted(hcol, order, depth)} = {c_alias}."cell"'
        if where == "ON":
            if optional is not None and id(m_src) in optional:
                # An outer join whose indexed table may be missing: the cells join that side,
                # "u LEFT JOIN (m JOIN cells ON cell = m's cell) ON link AND exact". Each m row
                # meets one cell of a u row, so each pair comes once; an unmatched u row once.
                cells_out.append((c_alias, m_src, f"{quote_ident(name)} AS {c_alias} ON {rng}"))
                return f"({link} AND {exact})"
            # Inner joins, and outer joins whose circle side may be missing: the cells join the
            # circle side ("m LEFT JOIN (u JOIN cells ON link) ON cell = m's cell AND exact").
            cells_out.append((c_alias, u_src, f"{quote_ident(name)} AS {c_alias} ON {link}"))
            return f"({rng} AND {exact})"
        s.pending_xm.append(
            (u_src, m_src, f"{quote_ident(name)} AS {c_alias}", link, f"{rng} AND {exact}")
        )
        return f"\x00xm{len(s.pending_xm) - 1}\x00"


# Constant radii at or above this (deg) are not joined through the index: the cells of a
# circle that size cover a good part of the sky.
_MAX_INDEXED_RADIUS_DEG = 10.0


def _shifted(hcol: str, order: int, depth: int) -> str:
    shift = 2 * (order - depth)
    return hcol if shift == 0 else f"({hcol} >> {shift})"


def _is_upload(src: _Source) -> bool:
    return src.table.name.lower().startswith("tap_upload.")


def _n_rows(src: _Source) -> float:
    n = src.table.n_rows
    return float("inf") if n is None else float(n)


_SUBQUERY = (A.Query, A.Select, A.ScalarSubquery, A.Exists, A.InSubquery)
_POSITIONAL = ("CONTAINS", "INTERSECTS", "DISTANCE")


def geometry_sources(t, node, s: _Scope, local) -> list[_Source]:
    """The distinct sources of ``local`` whose columns a CONTAINS, INTERSECTS or DISTANCE in
    ``node`` reads (subqueries excluded): two or more make a positional join."""
    ids = {id(x) for x in local}
    out: list[_Source] = []
    for n in _walk(node, skip=_SUBQUERY):
        if not (isinstance(n, A.FunctionCall) and n.name in _POSITIONAL):
            continue
        for ref in _walk(n.args, skip=_SUBQUERY):
            if not isinstance(ref, A.ColumnRef):
                continue
            try:
                e = t.column(ref, s)
            except QueryError:
                continue
            if e.col is not None and id(e.col[0]) in ids and all(x is not e.col[0] for x in out):
                out.append(e.col[0])
    return out


def _walk(node, skip=()):
    """Every syntax node under ``node`` (itself included), iteratively."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list | tuple):
            stack.extend(n)
            continue
        if not isinstance(n, A.Node) or isinstance(n, skip):
            continue
        yield n
        for f in fields(n):
            if f.name not in ("line", "column"):
                stack.append(getattr(n, f.name))


def _rad(e: _E) -> str:
    if e.is_const and e.const is not None:
        r = math.radians(float(e.const))
        # Angles below 1e-150 rad are zero for any purpose, and their squares would underflow
        # (an error in PostgreSQL).
        return _num(0.0 if abs(r) < 1e-150 else r)
    return f"RADIANS({e.sql})"


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
