"""A type-aware generator of valid ADQL, run through parse, translate and DuckDB (issue 15).

Token soup (``test_vo_adql_parse.py``) mostly exercises the parser's error paths; these
queries are well typed over a small published schema, so they reach the translator's and the
database's corners: functions of every arity, CASE and CAST, geometry (CONTAINS of POINT in
CIRCLE, BOX, POLYGON; DISTANCE; COORD1/2), joins, derived tables, subqueries (IN, EXISTS,
scalar), set operations, GROUP BY with aggregates and HAVING, ORDER BY, TOP and OFFSET.

Every query must give a result or a :class:`~skysense.errors.QueryError` (a syntax the service
declines, a database error such as MOD by zero), never another exception; valid ones mostly
run, which the last test checks so that the generator cannot silently drift into errors.
"""

from __future__ import annotations

import types

import numpy as np
import pyarrow as pa
import pytest
from _vo_support import server_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from skysense.errors import QueryError
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_arrow
from skysense.vo.tap import run_adql_sync

# The schema: the generator knows each column's type.
_OBJ = {"id": "num", "ra": "num", "dec": "num", "mag": "num", "n": "num", "kind": "str"}
_OBJ_BOOL = ["flag"]
_SPEC = {"id": "num", "z": "num", "kind": "str"}
_TABLES = {"t.obj": (_OBJ, _OBJ_BOOL), "t.spec": (_SPEC, [])}

_FN1 = [
    "ABS", "CEILING", "FLOOR", "DEGREES", "RADIANS", "EXP", "LOG", "LOG10", "SQRT", "SIN",
    "COS", "TAN", "COT", "ASIN", "ACOS", "ATAN", "ROUND", "TRUNCATE",
]  # fmt: skip
_FN2 = ["MOD", "POWER", "ATAN2"]
_AGG = ["COUNT", "SUM", "AVG", "MIN", "MAX"]


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(5)
    n = 60
    mag = np.round(rng.normal(20, 1.5, n), 3)
    mag[rng.random(n) < 0.1] = np.nan
    obj = pa.table(
        {
            "id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-60, 60, n),
            "mag": pa.array(mag, from_pandas=True),
            "kind": rng.choice(["star", "galaxy", "qso", "Star"], n).astype(object),
            "n": pa.array(rng.integers(-50, 50, n).astype(np.int64)),
            "flag": rng.random(n) < 0.4,
        }
    )
    ids = rng.choice(np.arange(1, n + 1), 30, replace=False)
    spec = pa.table(
        {
            "id": pa.array(np.concatenate([ids, [1000]]).astype(np.int64)),
            "z": np.round(rng.uniform(0, 3, 31), 4),
            "kind": rng.choice(["star", "galaxy"], 31).astype(object),
        }
    )
    return {"t.obj": obj, "t.spec": spec}


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    db = str(tmp / "vo.duckdb")
    backend = open_backend(db)
    for name, table in _tables().items():
        publish_arrow(backend, table, name)
    yield types.SimpleNamespace(settings=server_settings(db, tmp), backend=backend)
    backend.close()


# ----------------------------------------------------------------------------- expressions


class _Ctx:
    """The tables in scope: alias -> (numeric/string columns, boolean columns)."""

    def __init__(self, sources: dict[str, tuple[dict, list]]):
        self.sources = sources

    def columns(self, kind: str) -> list[str]:
        out = []
        for alias, (cols, bools) in self.sources.items():
            names = bools if kind == "bool" else [c for c, t in cols.items() if t == kind]
            out += [f"{alias}.{c}" for c in names]
        return out


def _float_lit(draw) -> str:
    x = draw(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
    return repr(abs(x)) if x >= 0 else f"(-{abs(x)!r})"


def _num(draw, ctx: _Ctx, depth: int) -> str:
    kinds = ["col", "int", "float"]
    if depth > 0:
        kinds += ["unary", "binop", "fn1", "fn2", "case", "cast", "coord", "distance", "coalesce"]
    kind = draw(st.sampled_from(kinds))
    d = depth - 1
    if kind == "col":
        cols = ctx.columns("num")
        return draw(st.sampled_from(cols)) if cols else "1"
    if kind == "int":
        return str(draw(st.integers(0, 2**40)))
    if kind == "float":
        return _float_lit(draw)
    if kind == "unary":
        return f"{draw(st.sampled_from(['-', '+']))}({_num(draw, ctx, d)})"
    if kind == "binop":
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        return f"({_num(draw, ctx, d)} {op} {_num(draw, ctx, d)})"
    if kind == "fn1":
        fn = draw(st.sampled_from(_FN1))
        if fn in ("ROUND", "TRUNCATE") and draw(st.booleans()):
            return f"{fn}({_num(draw, ctx, d)}, {draw(st.integers(0, 6))})"
        return f"{fn}({_num(draw, ctx, d)})"
    if kind == "fn2":
        fn = draw(st.sampled_from(_FN2))
        return f"{fn}({_num(draw, ctx, d)}, {_num(draw, ctx, d)})"
    if kind == "case":
        return (
            f"CASE WHEN {_bool(draw, ctx, d)} THEN {_num(draw, ctx, d)} "
            f"ELSE {_num(draw, ctx, d)} END"
        )
    if kind == "cast":
        target = draw(st.sampled_from(["DOUBLE PRECISION", "REAL", "BIGINT", "INTEGER"]))
        return f"CAST({_num(draw, ctx, d)} AS {target})"
    if kind == "coord":
        fn = draw(st.sampled_from(["COORD1", "COORD2"]))
        return f"{fn}({_point(draw, ctx, d)})"
    if kind == "distance":
        return f"DISTANCE({_point(draw, ctx, d)}, {_point(draw, ctx, d)})"
    return f"COALESCE({_num(draw, ctx, d)}, {_num(draw, ctx, d)})"


def _str(draw, ctx: _Ctx, depth: int) -> str:
    kinds = ["col", "lit"] + (["concat", "case_fn", "coalesce"] if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    d = depth - 1
    if kind == "col":
        cols = ctx.columns("str")
        return draw(st.sampled_from(cols)) if cols else "'x'"
    if kind == "lit":
        text = draw(st.text(st.sampled_from("abcSTar'%_ \\\u00e9"), max_size=6))
        return "'" + text.replace("'", "''") + "'"
    if kind == "concat":
        return f"({_str(draw, ctx, d)} || {_str(draw, ctx, d)})"
    if kind == "case_fn":
        return f"{draw(st.sampled_from(['LOWER', 'UPPER']))}({_str(draw, ctx, d)})"
    return f"COALESCE({_str(draw, ctx, d)}, {_str(draw, ctx, d)})"


def _point(draw, ctx: _Ctx, depth: int) -> str:
    if ctx.columns("num") and draw(st.booleans()):
        alias = draw(st.sampled_from([a for a, (c, _) in ctx.sources.items() if "ra" in c] or [""]))
        if alias:
            return f"POINT('ICRS', {alias}.ra, {alias}.dec)"
    return f"POINT({_lon(draw)}, {_lat(draw)})"


def _lon(draw) -> str:
    return repr(draw(st.floats(0, 360, allow_nan=False)))


def _lat(draw) -> str:
    x = draw(st.floats(-89, 89, allow_nan=False))
    return repr(x) if x >= 0 else f"-{abs(x)!r}"


def _region(draw) -> str:
    kind = draw(st.sampled_from(["CIRCLE", "BOX", "POLYGON"]))
    ra, dec = _lon(draw), _lat(draw)
    if kind == "CIRCLE":
        return f"CIRCLE('ICRS', {ra}, {dec}, {draw(st.floats(0, 30, allow_nan=False))!r})"
    if kind == "BOX":
        w = draw(st.floats(0.01, 40, allow_nan=False))
        h = draw(st.floats(0.01, 40, allow_nan=False))
        return f"BOX('ICRS', {ra}, {abs(float(dec)) % 60!r}, {w!r}, {h!r})"
    # A star-shaped polygon around a centre (valid when its angles increase).
    k = draw(st.integers(3, 8))
    r = draw(st.lists(st.floats(1, 20, allow_nan=False), min_size=k, max_size=k))
    c_ra, c_dec = float(ra), float(dec) * 0.6
    pts = []
    for i, ri in enumerate(r):
        a = 2 * np.pi * i / k
        pts.append(f"{c_ra + ri * np.cos(a):.6f}, {c_dec + ri * np.sin(a) * 0.5:.6f}")
    return f"POLYGON('ICRS', {', '.join(pts)})"


def _bool(draw, ctx: _Ctx, depth: int) -> str:
    kinds = ["cmp", "cmp_str", "lit", "between", "in", "like", "null", "region"]
    if ctx.columns("bool"):
        kinds.append("col")
    if depth > 0:
        kinds += ["not", "andor", "exists", "in_sub"]
    kind = draw(st.sampled_from(kinds))
    d = depth - 1
    op = draw(st.sampled_from(["=", "<>", "!=", "<", ">", "<=", ">="]))
    if kind == "cmp":
        return f"{_num(draw, ctx, d)} {op} {_num(draw, ctx, d)}"
    if kind == "cmp_str":
        return f"{_str(draw, ctx, d)} {op} {_str(draw, ctx, d)}"
    if kind == "lit":
        return draw(st.sampled_from(["TRUE", "FALSE"]))
    if kind == "col":
        return draw(st.sampled_from(ctx.columns("bool")))
    if kind == "between":
        neg = draw(st.sampled_from(["", "NOT "]))
        return f"{_num(draw, ctx, d)} {neg}BETWEEN {_num(draw, ctx, d)} AND {_num(draw, ctx, d)}"
    if kind == "in":
        items = [_num(draw, ctx, 0) for _ in range(draw(st.integers(1, 5)))]
        return f"{_num(draw, ctx, d)} {draw(st.sampled_from(['', 'NOT ']))}IN ({', '.join(items)})"
    if kind == "like":
        op = draw(st.sampled_from(["LIKE", "NOT LIKE", "ILIKE"]))
        return f"{_str(draw, ctx, d)} {op} {_str(draw, ctx, 0)}"
    if kind == "null":
        return f"{_num(draw, ctx, d)} IS {draw(st.sampled_from(['', 'NOT ']))}NULL"
    if kind == "region":
        fn = draw(st.sampled_from(["CONTAINS", "INTERSECTS"]))
        return f"1 = {fn}({_point(draw, ctx, d)}, {_region(draw)})"
    if kind == "not":
        return f"NOT ({_bool(draw, ctx, d)})"
    if kind == "andor":
        terms = [_bool(draw, ctx, d) for _ in range(draw(st.integers(2, 4)))]
        return "(" + f" {draw(st.sampled_from(['AND', 'OR']))} ".join(terms) + ")"
    # Correlated or not: the inner query sees the outer aliases.
    inner = _Ctx({"x": _TABLES["t.spec"], **ctx.sources})
    where = _bool(draw, inner, max(d - 1, 0))
    if kind == "exists":
        return f"EXISTS (SELECT 1 FROM t.spec AS x WHERE {where})"
    return f"{_num(draw, ctx, d)} IN (SELECT x.id FROM t.spec AS x WHERE {where})"


# ---------------------------------------------------------------------------------- queries


@st.composite
def queries(draw) -> str:
    join = draw(st.sampled_from(["none", "inner", "left", "comma", "derived", "cte"]))
    with_ = ""
    from_ = "t.obj AS o"
    sources = {"o": _TABLES["t.obj"]}
    if join in ("inner", "left"):
        kw = "JOIN" if join == "inner" else "LEFT OUTER JOIN"
        from_ += f" {kw} t.spec AS s ON o.id = s.id"
        sources["s"] = _TABLES["t.spec"]
    elif join == "comma":
        from_ += ", t.spec AS s"
        sources["s"] = _TABLES["t.spec"]
    elif join == "cte":
        inner = _Ctx({"o": _TABLES["t.obj"]})
        where = _bool(draw, inner, 1)
        with_ = (
            f"WITH c AS (SELECT o.id, o.ra, o.dec, o.mag, o.kind FROM t.obj AS o WHERE {where}) "
        )
        from_ = "c AS o"
        sources = {"o": ({k: v for k, v in _OBJ.items() if k != "n"}, [])}
    elif join == "derived":
        inner = _Ctx({"o": _TABLES["t.obj"]})
        where = _bool(draw, inner, 1)
        from_ = f"(SELECT o.id, o.ra, o.dec, o.mag, o.kind FROM t.obj AS o WHERE {where}) AS o"
        sources = {"o": ({k: v for k, v in _OBJ.items() if k != "n"}, [])}
    ctx = _Ctx(sources)
    depth = draw(st.integers(0, 3))
    where = f" WHERE {_bool(draw, ctx, depth)}" if draw(st.booleans()) else ""
    top = f"TOP {draw(st.integers(0, 50))} " if draw(st.booleans()) else ""
    distinct = "DISTINCT " if draw(st.integers(0, 5)) == 0 else ""
    if draw(st.integers(0, 3)) == 0:
        # GROUP BY with aggregates (and HAVING).
        key = draw(st.sampled_from(ctx.columns("str") + ["o.id"]))
        aggs = []
        for _ in range(draw(st.integers(1, 3))):
            fn = draw(st.sampled_from(_AGG + ["COUNT(*)"]))
            if fn == "COUNT(*)":
                aggs.append(fn)
            else:
                dist = "DISTINCT " if fn == "COUNT" and draw(st.booleans()) else ""
                aggs.append(f"{fn}({dist}{_num(draw, ctx, 1)})")
        having = f" HAVING COUNT(*) > {draw(st.integers(0, 3))}" if draw(st.booleans()) else ""
        order = " ORDER BY 1" if draw(st.booleans()) else ""
        return (
            f"{with_}SELECT {top}{key}, {', '.join(aggs)} FROM {from_}{where} GROUP BY {key}"
            f"{having}{order}"
        )
    items = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["num", "num", "str", "star", "scalar"]))
        if kind == "num":
            items.append(_num(draw, ctx, depth))
        elif kind == "str":
            items.append(_str(draw, ctx, depth) + (" AS label" if draw(st.booleans()) else ""))
        elif kind == "star":
            items.append(draw(st.sampled_from([f"{a}.*" for a in sources])))
        else:
            items.append("(SELECT MAX(x.z) FROM t.spec AS x)")
    if draw(st.integers(0, 5)) == 0:
        items = ["*"]  # a bare * stands alone in ADQL
    body = f"{with_}SELECT {distinct}{top}{', '.join(items)} FROM {from_}{where}"
    if draw(st.integers(0, 4)) == 0:
        # A set operation of one-column queries.
        op = draw(st.sampled_from(["UNION", "UNION ALL", "EXCEPT", "INTERSECT"]))
        other = _num(draw, _Ctx({"s": _TABLES["t.spec"]}), 1)
        first = _num(draw, ctx, 1)
        return f"{with_}SELECT {first} FROM {from_}{where} {op} SELECT {other} FROM t.spec AS s"
    if draw(st.booleans()):
        body += " ORDER BY 1" + draw(st.sampled_from(["", " DESC", " ASC"]))
        if draw(st.booleans()):
            body += f" OFFSET {draw(st.integers(0, 10))}"
    return body


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(q=queries())
# Found by this generator: a subnormal radius overflowed the HEALPix depth computation.
@example(
    q="SELECT o.id FROM t.obj AS o WHERE 1 = CONTAINS(POINT('ICRS', o.ra, o.dec), "
    "CIRCLE('ICRS', 302.8, -65.8, 8.893327685997566e-309))"
)
def test_valid_adql_gives_a_result_or_a_query_error(state, q):
    try:
        run_adql_sync(state, q, maxrec=100)
    except QueryError:
        pass


def test_most_generated_queries_run(state):
    # The generator must produce mostly valid queries, or the fuzz test above would only
    # exercise error paths. Counted on its own sample, so this holds whatever ran before.
    stats = {"ok": 0, "error": 0}

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(q=queries())
    def sample(q):
        try:
            run_adql_sync(state, q, maxrec=100)
        except QueryError:
            stats["error"] += 1
            return
        stats["ok"] += 1

    sample()
    total = stats["ok"] + stats["error"]
    assert total >= 100, stats
    assert stats["ok"] >= 0.6 * total, stats
