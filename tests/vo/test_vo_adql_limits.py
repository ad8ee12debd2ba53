"""Query size and shape limits of the ADQL path (issue 15).

Long flat chains (OR, AND, +, ||, UNION) parse, translate and return what Python computes on
the same rows; nesting beyond :data:`~skysense.vo.limits.MAX_DEPTH`, over-wide select lists,
huge polygons and IN lists get a clean QueryError naming the cap (and quickly: no quadratic
work first); constant folding never raises a Python exception; parsing and translation obey
the query's time limit.
"""

from __future__ import annotations

import math
import threading
import types

import duckdb
import numpy as np
import pandas as pd
import pytest
from _adql_support import duckdb_with, polygon_truth, sky_catalog
from _vo_support import publish_sky, server_settings, sky_table
from lark.exceptions import VisitError
from test_vo_sql_exec import OBJ, SPEC, _catalog, check, db  # noqa: F401 (db: fixture)

from skysense.errors import QueryError
from skysense.vo import adql
from skysense.vo.backends import QueryTimeout, open_backend
from skysense.vo.limits import (
    MAX_DEPTH,
    MAX_IN_LIST,
    MAX_POLYGON_VERTICES,
    MAX_QUERY_BYTES,
    MAX_SELECT_COLUMNS,
    Deadline,
)
from skysense.vo.sql import translate
from skysense.vo.tap import run_adql_sync

CAT = _catalog('"t"."obj"', '"t"."spec"')
CHAIN = 600  # > 330 (the crash) and deep enough to overflow any per-link recursion


@pytest.fixture(scope="module")
def duck():
    con = duckdb_with({"t.obj": OBJ, "t.spec": SPEC})
    yield con
    con.close()


def _on_deep_stack(frames: int, fn):
    """Run ``fn`` below ``frames`` extra Python frames (a server's stack is deeper than a
    test's), in a thread, returning its result or raising its exception."""
    out = {}

    def down(k):
        return fn() if k == 0 else down(k - 1)

    def run():
        try:
            out["value"] = down(frames)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller)
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


# ------------------------------------------------------------------------------ long chains

_CHAINS = {
    "OR": (
        "SELECT id FROM t.obj WHERE " + " OR ".join(f"n = {3 * k}" for k in range(-300, 300)),
        lambda: OBJ.loc[OBJ["n"] % 3 == 0, ["id"]],
    ),
    "AND": (
        "SELECT id FROM t.obj WHERE " + " AND ".join(f"n <> {3 * k + 1}" for k in range(-300, 300)),
        lambda: OBJ.loc[OBJ["n"] % 3 != 1, ["id"]],
    ),
    "plus": (
        "SELECT id, " + " + ".join(["n"] * CHAIN) + " FROM t.obj",
        lambda: pd.DataFrame({"id": OBJ["id"], "s": OBJ["n"] * CHAIN}),
    ),
    "minus": (
        "SELECT id, 0 - " + " - ".join(["n"] * CHAIN) + " FROM t.obj",
        lambda: pd.DataFrame({"id": OBJ["id"], "s": -OBJ["n"] * CHAIN}),
    ),
    "concat": (
        "SELECT id, " + " || ".join(["kind"] * CHAIN) + " FROM t.obj",
        lambda: pd.DataFrame({"id": OBJ["id"], "s": OBJ["kind"] * CHAIN}),
    ),
    "UNION": (
        " UNION ".join(f"SELECT id FROM t.obj WHERE n = {k}" for k in range(CHAIN)),
        lambda: OBJ.loc[OBJ["n"] >= 0, ["id"]],
    ),
    "UNION ALL + EXCEPT": (
        " UNION ALL ".join(f"SELECT id FROM t.obj WHERE n = {k}" for k in range(CHAIN))
        + " EXCEPT SELECT id FROM t.obj WHERE n = 0",
        lambda: OBJ.loc[OBJ["n"] > 0, ["id"]],
    ),
}


@pytest.mark.parametrize("name", list(_CHAINS))
def test_long_chains_run_and_match_python(db, name):  # noqa: F811 (db: fixture)
    adql_text, expected = _CHAINS[name]
    check(db, adql_text, expected())


@pytest.mark.parametrize("op", ["OR", "AND", "+", "||", "UNION"])
def test_chains_of_5000_terms_parse_and_translate(op):
    n = 5000
    if op in ("OR", "AND"):
        q = "SELECT id FROM t.obj WHERE " + f" {op} ".join(f"n <> {k}" for k in range(n))
    elif op == "UNION":
        q = " UNION ".join(f"SELECT id FROM t.obj WHERE n = {k}" for k in range(n))
    else:
        col = "n" if op == "+" else "kind"
        q = "SELECT " + f" {op} ".join([col] * n) + " FROM t.obj"
    tr = _on_deep_stack(150, lambda: translate(q, dialect="duckdb", catalog=CAT))
    assert tr.sql.count(f" {op} " if op != "UNION" else " UNION ") == n - 1


@pytest.mark.parametrize("op", ["OR", "AND"])
def test_5000_term_conditions_run_and_match_python(duck, op):
    # DuckDB's filter pushdown is quadratic in the number of AND-ed filters and ignores
    # interrupts (5,000 took ~a minute): the translator hides long chains from it.
    if op == "OR":
        terms, want = [f"id = {2 * k}" for k in range(5000)], OBJ["id"] % 2 == 0
    else:
        terms, want = [f"id <> {2 * k}" for k in range(5000)], OBJ["id"] % 2 == 1
    q = "SELECT id FROM t.obj WHERE " + f" {op} ".join(terms)
    sql = translate(q, dialect="duckdb", catalog=CAT).sql
    got = sorted(r[0] for r in duck.execute(sql).fetchall())
    assert got == sorted(int(i) for i in OBJ.loc[want, "id"])


# ------------------------------------------------------------------------------------ depth


def _nested_in(n: int) -> str:
    q = "SELECT id FROM t.obj"
    for _ in range(n):
        q = f"SELECT id FROM t.obj WHERE id IN ({q})"
    return q


def _nest(kind: str, n: int) -> str:
    """A query nesting construct ``kind`` n times."""
    if kind == "IN subquery":
        return _nested_in(n)
    if kind == "derived table":
        q = "SELECT id FROM t.obj"
        for k in range(n):
            q = f"SELECT id FROM ({q}) AS d{k}"
        return q
    if kind == "scalar subquery":
        e = "n"
        for _ in range(n):
            e = f"(SELECT MAX({e}) FROM t.obj)"
        return f"SELECT {e} FROM t.spec"
    if kind == "function":
        return "SELECT " + "ABS(" * n + "n" + ")" * n + " FROM t.obj"
    if kind == "geometry":
        e = "ra"
        for _ in range(n):
            e = f"COORD1(POINT({e}, dec))"
        return f"SELECT {e} FROM t.obj"
    if kind == "NOT":
        return "SELECT id FROM t.obj WHERE " + "NOT " * n + "n = 1"
    if kind == "unary minus":
        return "SELECT " + "- " * n + "n FROM t.obj"
    if kind == "CASE":
        e = "n"
        for _ in range(n):
            e = f"CASE WHEN n > 0 THEN {e} ELSE 0 END"
        return f"SELECT {e} FROM t.obj"
    if kind == "AND inside OR":
        e = "n = 0"
        for k in range(n):
            e = f"(n = {k} {'OR' if k % 2 else 'AND'} ({e}))"
        return f"SELECT id FROM t.obj WHERE {e}"
    if kind == "JOIN":
        q = "t.obj AS a0"
        for k in range(1, n + 1):
            q = f"{q} JOIN t.obj AS a{k} ON a{k - 1}.id = a{k}.id"
        return f"SELECT a0.id FROM {q}"
    raise AssertionError(kind)


_KINDS = [
    "IN subquery",
    "derived table",
    "scalar subquery",
    "function",
    "geometry",
    "NOT",
    "unary minus",
    "CASE",
    "AND inside OR",
    "JOIN",
]


def _too_deep(q: str) -> bool:
    try:
        adql.parse(q)
    except QueryError as exc:
        if "nests too deeply" in str(exc):
            return True
        raise
    return False


def test_120_nested_subqueries_get_an_error_naming_the_limit():
    q = _nested_in(120)
    with pytest.raises(QueryError, match=rf"nests too deeply.*limit of {MAX_DEPTH} levels") as ei:
        _on_deep_stack(150, lambda: translate(q, dialect="duckdb", catalog=CAT))
    # The position is a token of the query, inside the part nested beyond the limit.
    assert ei.value.line == 1
    assert q.count("(", 0, ei.value.column) > MAX_DEPTH // 5


@pytest.mark.parametrize("kind", _KINDS)
def test_nesting_at_the_limit_translates_and_beyond_is_refused(kind, duck):
    # The deepest accepted nesting of each construct translates (no RecursionError, even below
    # 150 extra frames), and one more level gets the depth error.
    lo, hi = 1, 4 * MAX_DEPTH
    assert not _too_deep(_nest(kind, lo)) and _too_deep(_nest(kind, hi))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _too_deep(_nest(kind, mid)) else (mid, hi)
    q = _nest(kind, lo)
    tr = _on_deep_stack(150, lambda: translate(q, dialect="duckdb", catalog=CAT))
    duck.execute(tr.sql).fetchall()
    with pytest.raises(QueryError, match=f"limit of {MAX_DEPTH} levels"):
        _on_deep_stack(150, lambda: translate(_nest(kind, hi), dialect="duckdb", catalog=CAT))


# --------------------------------------------------------------------- width, polygons, IN


def test_select_width_is_capped_and_equal_names_are_made_unique_below_it(duck):
    wide = "SELECT TOP 1 " + ", ".join(["ra"] * 30_000) + " FROM t.obj"
    with pytest.raises(QueryError, match=f"limit of {MAX_SELECT_COLUMNS:,} columns"):
        translate(wide, dialect="duckdb", catalog=CAT)
    # SELECT * of many copies: 1,500 x 7 columns.
    copies = ", ".join(f"t.obj AS c{k}" for k in range(1500))
    with pytest.raises(QueryError, match=f"limit of {MAX_SELECT_COLUMNS:,} columns"):
        translate(f"SELECT TOP 1 * FROM {copies}", dialect="duckdb", catalog=CAT)
    # Below the cap, thousands of equal names get the usual suffixes, all distinct.
    n = 5000
    tr = translate(
        "SELECT TOP 1 " + ", ".join(["ra"] * n) + ", mag AS ra_3 FROM t.obj WHERE id = 7",
        dialect="duckdb",
        catalog=CAT,
    )
    names = [c.name for c in tr.columns]
    # (a later explicit name yields to an earlier generated one, as before)
    want = ["ra"] + [f"ra_{k}" for k in range(2, n + 1)] + ["ra_3_2"]
    assert names == want
    (row,) = duck.execute(tr.sql).fetchall()
    assert set(row[:n]) == {float(OBJ.loc[OBJ["id"] == 7, "ra"].iloc[0])}


def _star_polygon(n: int, ra0: float, dec0: float, r_out: float, r_in: float):
    a = 2 * np.pi * np.arange(n) / n
    r = np.where(np.arange(n) % 2, r_in, r_out)
    # Rounded as written into the query, so that the truth is computed for the same polygon.
    ra = np.round(ra0 + r * np.cos(a) / np.cos(np.radians(dec0)), 9)
    return ra, np.round(dec0 + r * np.sin(a), 9)


def _inside(ra, dec, ra_v, dec_v):
    ok = np.isfinite(np.asarray(dec, float))
    out = np.zeros(len(ok), bool)
    out[ok] = polygon_truth(np.asarray(ra)[ok], np.asarray(dec, float)[ok], ra_v, dec_v)[0]
    return out


def test_polygon_vertices_are_capped_and_large_polygons_are_exact(db):  # noqa: F811 (fixture)
    ra_v, dec_v = _star_polygon(5000, 180.0, 0.0, 60.0, 35.0)
    coords = ", ".join(f"{x:.9f}, {y:.9f}" for x, y in zip(ra_v, dec_v))
    q = f"SELECT id FROM t.obj WHERE 1 = CONTAINS(POINT(ra, dec), POLYGON({coords}))"
    with pytest.raises(
        QueryError, match=f"5,000 vertices.*limit of {MAX_POLYGON_VERTICES:,}"
    ) as ei:
        translate(q, dialect="duckdb", catalog=CAT)
    assert q[ei.value.column - 1 :].startswith("POLYGON")
    # At the cap, star-shaped (non-convex) and convex polygons select exactly the rows inside
    # them (their planes then go to the database as a table), NULL positions included.
    for r_in in (35.0, 60.0):
        ra_v, dec_v = _star_polygon(MAX_POLYGON_VERTICES, 180.0, 0.0, 60.0, r_in)
        points = ", ".join(f"POINT({x:.9f}, {y:.9f})" for x, y in zip(ra_v, dec_v))
        inside, near = polygon_truth(OBJ["ra"], OBJ["dec"], ra_v, dec_v)
        assert inside.sum() >= 10 and not near.any()
        region = f"CONTAINS(POINT(ra, dec), POLYGON({points}))"
        check(db, f"SELECT id FROM t.obj WHERE 1 = {region}", OBJ.loc[inside, ["id"]])
        check(
            db,
            f"SELECT id, {region} FROM t.obj",
            pd.DataFrame({"id": OBJ["id"], "c": inside.astype(int)}),
        )
        check(
            db,
            f"SELECT id FROM t.obj WHERE NOT (1 = CONTAINS(POINT(ra, mag), POLYGON({points})))",
            OBJ.loc[OBJ["mag"].notna() & ~_inside(OBJ["ra"], OBJ["mag"], ra_v, dec_v), ["id"]],
        )


def test_in_lists_are_capped_and_long_ones_run(db):  # noqa: F811 (fixture)
    big = "SELECT id FROM t.obj WHERE id IN (" + ",".join(["7"] * 100_000) + ")"
    with pytest.raises(QueryError, match=f"IN list .*limit of {MAX_IN_LIST:,}") as ei:
        translate(big, dialect="duckdb", catalog=CAT)
    assert big[ei.value.column - 1 :].startswith("IN (")
    # Behind the quick scan, the builder counts the values exactly.
    tree = adql._parser().parse(
        "SELECT id FROM t WHERE id IN (" + ",".join(["7"] * (MAX_IN_LIST + 1)) + ")"
    )
    with pytest.raises(VisitError) as ei:
        adql._Builder().transform(tree)
    assert isinstance(ei.value.orig_exc, QueryError)
    assert f"{MAX_IN_LIST + 1:,} values" in str(ei.value.orig_exc)
    values = range(0, 2 * MAX_IN_LIST, 2)
    q = "SELECT id FROM t.obj WHERE id IN (" + ", ".join(map(str, values)) + ")"
    check(db, q, OBJ.loc[OBJ["id"] % 2 == 0, ["id"]])


def test_query_length_is_capped():
    q = "SELECT id FROM t.obj WHERE kind = '" + "x" * MAX_QUERY_BYTES + "'"
    with pytest.raises(QueryError, match=f"limit of {MAX_QUERY_BYTES:,} bytes"):
        translate(q, dialect="duckdb", catalog=CAT)
    # Bytes, not characters: 3-byte characters reach the cap three times sooner.
    q = "SELECT id FROM t.obj WHERE kind = '" + "\u20ac" * (MAX_QUERY_BYTES // 3) + "'"
    with pytest.raises(QueryError, match=f"limit of {MAX_QUERY_BYTES:,} bytes"):
        translate(q, dialect="duckdb", catalog=CAT)


# -------------------------------------------------------------------------- constant folding

_CONSTANTS = [
    "POWER(COS(PI()), 0.5)",
    "POWER(-8, 1.0 / 3)",
    "SQRT(-1)",
    "LOG(0)",
    "LOG(-1)",
    "LOG10(-1)",
    "ACOS(2)",
    "ASIN(-2)",
    "1.0 / 0.0",
    "1 / 0",
    "MOD(1, 0)",
    "MOD(1.5, 0.0)",
    "POWER(10, 400)",
    "POWER(0, -1)",
    "EXP(1000)",
    "-EXP(1000) * 2",
    "TAN(1e300)",
    "DEGREES(1e308)",
    "ATAN2(0, 0)",
]


def _ieee(expr: str) -> float | None:
    """What IEEE arithmetic (NumPy) gives for a folded constant; None when not a number."""
    env = {
        "POWER": lambda a, b: np.power(np.float64(a), np.float64(b)),
        "COS": np.cos,
        "PI": lambda: np.pi,
        "SQRT": np.sqrt,
        "LOG": np.log,
        "LOG10": np.log10,
        "ACOS": np.arccos,
        "ASIN": np.arcsin,
        "EXP": np.exp,
        "TAN": np.tan,
        "DEGREES": np.degrees,
        "ATAN2": np.arctan2,
    }
    if "MOD" in expr or "/ 0" in expr:
        return None
    with np.errstate(all="ignore"):
        return float(eval(expr.replace("1.0 / 3", "(1.0 / 3)"), {"__builtins__": {}}, env))


@pytest.mark.parametrize("expr", _CONSTANTS)
def test_constant_folding_never_crashes(expr, duck):
    value = _ieee(expr)
    # As a circle radius the translator needs the value (also for HEALPix ranges on an indexed
    # table): NaN is a clean QueryError, +-inf and finite values are used (inf: the whole sky).
    for cat in (CAT, sky_catalog()):
        table = "t.obj" if cat is CAT else "test.sky"
        q = f"SELECT * FROM {table} WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(10, 20, {expr}))"
        try:
            translate(q, dialect="duckdb", catalog=cat)
            ok = True
        except QueryError as exc:
            ok = False
            assert "out of range" in str(exc), exc
        if value is not None:
            assert ok == (not math.isnan(value)), (expr, value)
    # As a value the database decides (DuckDB: NaN, inf or NULL; PostgreSQL may raise).
    translate(f"SELECT {expr} FROM t.obj WHERE id = 1", dialect="postgresql", catalog=CAT)
    try:
        (row,) = duck.execute(_duck_sql(expr)).fetchall()
    except duckdb.Error:
        return  # the database's own error (MOD by zero)
    if value is not None and row[0] is not None:
        assert row[0] == pytest.approx(value, nan_ok=True)


def _duck_sql(expr: str) -> str:
    return translate(f"SELECT {expr} FROM t.obj WHERE id = 1", dialect="duckdb", catalog=CAT).sql


def test_integer_overflow_in_constants_is_a_query_error():
    big = " * ".join(["9223372036854775807"] * 2000)
    with pytest.raises(QueryError, match="integer overflow"):
        translate(
            f"SELECT id FROM t.obj WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, {big}))",
            dialect="duckdb",
            catalog=CAT,
        )


# ------------------------------------------------------------------------------ time limit


def test_translation_obeys_the_deadline():
    q = "SELECT id FROM t.obj WHERE " + " OR ".join(f"n = {k}" for k in range(3000))
    with pytest.raises(QueryTimeout, match="time limit of 0 s"):
        translate(q, dialect="duckdb", catalog=CAT, deadline=Deadline(0.0, error=QueryTimeout))
    # A generous deadline changes nothing.
    plain = translate(q, dialect="duckdb", catalog=CAT)
    timed = translate(q, dialect="duckdb", catalog=CAT, deadline=Deadline(600.0))
    assert timed.sql == plain.sql


def test_run_adql_counts_translation_against_the_time_limit(tmp_path):
    db_path = str(tmp_path / "vo.duckdb")
    publish_sky(db_path, sky_table(300))
    backend = open_backend(db_path)
    try:
        state = types.SimpleNamespace(settings=server_settings(db_path, tmp_path), backend=backend)
        q = "SELECT object_id FROM demo.sky WHERE " + " OR ".join(
            f"object_id = {k}" for k in range(8000)
        )
        with pytest.raises(QueryTimeout, match=r"time limit of 0\.001 s"):
            run_adql_sync(state, q, timeout_s=0.001)
        result = run_adql_sync(state, q)
        assert result.table.num_rows == 300
    finally:
        backend.close()


def test_warm_up_builds_the_parser_before_the_first_query():
    # The parser's construction (~1 s) must not count against a user's first time limit.
    adql.warm_up()
    assert adql._parser.cache_info().currsize == 1
    adql.parse("SELECT 1 FROM t", deadline=Deadline(0.5))
