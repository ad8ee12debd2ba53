"""ADQL parser: the syntax tree of each construct, positions, and error messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import QueryError
from skysense.vo import adql as A
from skysense.vo.adql import parse


def _where(text):
    return parse(text).body.where


def test_select_shape_and_positions():
    q = parse("SELECT TOP 10 DISTINCT ra AS r, m.*\nFROM help.masterlist AS m\nWHERE dec > -1.5e-2")
    sel = q.body
    assert isinstance(sel, A.Select)
    assert sel.top == 10 and sel.distinct
    assert isinstance(sel.items[0], A.SelectExpr) and sel.items[0].alias == "r"
    assert isinstance(sel.items[1], A.SelectStar) and sel.items[1].qualifier.parts == ("m",)
    t = sel.from_[0]
    assert isinstance(t, A.TableName) and t.parts == ("help", "masterlist") and t.alias == "m"
    assert (t.line, t.column) == (2, 6)
    cmp = sel.where
    assert isinstance(cmp, A.Comparison) and cmp.op == ">"
    assert (cmp.line, cmp.column) == (3, 7)
    lit = cmp.right
    assert isinstance(lit, A.Unary) and lit.operand.value == pytest.approx(0.015)


def test_keywords_case_insensitive_and_identifiers():
    q = parse('sElEcT "Weird Name", "a""b", select_me FrOm "S"."T" wHeRe x iS nOt NuLl')
    items = q.body.items
    assert items[0].expr.parts == ("Weird Name",) and items[0].expr.quoted == (True,)
    assert items[1].expr.parts == ('a"b',)
    # A keyword prefix inside an identifier is still an identifier.
    assert items[2].expr.parts == ("select_me",)
    assert isinstance(q.body.where, A.IsNull) and q.body.where.negated


def test_literals():
    items = parse("SELECT 1, 2.5, .5, 1e3, 1.5E-3, 0x1F, 'it''s', NULL, TRUE FROM t").body.items
    vals = [(i.expr.value, i.expr.kind) for i in items]
    assert vals == [
        (1, "int"),
        (2.5, "float"),
        (0.5, "float"),
        (1000.0, "float"),
        (0.0015, "float"),
        (31, "int"),
        ("it's", "string"),
        (None, "null"),
        (True, "boolean"),
    ]


def test_precedence():
    e = parse("SELECT a + b * c - d / e || 'x' FROM t").body.items[0].expr
    assert e.op == "||"
    assert e.left.op == "-" and e.left.left.op == "+" and e.left.left.right.op == "*"
    w = _where("SELECT a FROM t WHERE a = 1 OR b = 2 AND NOT c = 3")
    assert w.op == "OR" and w.right.op == "AND" and isinstance(w.right.right, A.Not)
    w = _where("SELECT a FROM t WHERE a BETWEEN 1 AND 2 AND b NOT BETWEEN 3 AND 4")
    assert w.op == "AND" and isinstance(w.left, A.Between) and w.right.negated


def test_predicates():
    w = _where(
        "SELECT a FROM t WHERE a IN (1, 2) AND b NOT IN (SELECT x FROM u) AND c LIKE 'a%' "
        "AND d NOT ILIKE 'B_' AND EXISTS (SELECT 1 FROM u) AND e != 1"
    )
    conj = []

    def flat(n):
        if isinstance(n, A.Logical):
            flat(n.left)
            flat(n.right)
        else:
            conj.append(n)

    flat(w)
    kinds = [type(c).__name__ for c in conj]
    assert kinds == ["InList", "InSubquery", "Like", "Like", "Exists", "Comparison"]
    assert conj[1].negated and not conj[2].case_insensitive and conj[3].case_insensitive
    assert conj[3].negated and conj[5].op == "<>"


def test_joins():
    f = parse(
        "SELECT * FROM a NATURAL LEFT OUTER JOIN b JOIN c USING (x, y) RIGHT JOIN d ON d.k = c.k "
        "FULL JOIN e ON TRUE CROSS JOIN f INNER JOIN (SELECT 1 AS one FROM g) AS s ON 1 = 1"
    ).body.from_[0]
    chain = []
    while isinstance(f, A.Join):
        chain.append((f.kind, f.natural, f.using))
        f = f.left
    assert chain[::-1] == [
        ("LEFT", True, None),
        ("INNER", False, ["x", "y"]),
        ("RIGHT", False, None),
        ("FULL", False, None),
        ("CROSS", False, None),
        ("INNER", False, None),
    ]


def test_set_operations_cte_order_offset():
    q = parse(
        "WITH a AS (SELECT x FROM t), b (y) AS (SELECT x FROM a) "
        "SELECT x FROM a UNION ALL SELECT y FROM b EXCEPT SELECT 1 FROM t "
        "INTERSECT SELECT 2 FROM t ORDER BY 1 DESC OFFSET 5"
    )
    assert [c.name for c in q.ctes] == ["a", "b"] and q.ctes[1].columns == ["y"]
    body = q.body
    assert body.op == "EXCEPT" and body.left.op == "UNION" and body.left.all
    assert body.right.op == "INTERSECT"  # INTERSECT binds tighter
    assert q.order_by[0].descending and q.offset == 5


def test_functions_case_cast():
    items = parse(
        "SELECT COUNT(*), count(DISTINCT x), CASE WHEN a THEN 1 ELSE 2 END, "
        "CASE k WHEN 1 THEN 'a' END, CAST(x AS DOUBLE PRECISION), CAST(y AS varchar(5)), "
        "CAST(z AS INT), coalesce(a, b, c) FROM t"
    ).body.items
    e = [i.expr for i in items]
    assert e[0].name == "COUNT" and e[0].star
    assert e[1].distinct and e[1].args[0].parts == ("x",)
    assert e[2].operand is None and e[2].else_.value == 2
    assert e[3].operand.parts == ("k",) and e[3].else_ is None
    assert (e[4].type_name, e[5].type_name, e[5].length, e[6].type_name) == (
        "DOUBLE PRECISION",
        "VARCHAR",
        5,
        "INTEGER",
    )
    assert e[7].name == "COALESCE" and len(e[7].args) == 3


def test_geometry_coordsys_is_checked_and_dropped():
    e = parse(
        "SELECT POINT('ICRS', 1, 2), CIRCLE('', 1, 2, 3), BOX('ICRS GEOCENTER', 1, 2, 3, 4), "
        "POLYGON(1, 2, 3, 4, 5, 6) FROM t"
    ).body.items
    assert [len(i.expr.args) for i in e] == [2, 3, 4, 6]
    with pytest.raises(QueryError, match="GALACTIC.*not supported") as exc:
        parse("SELECT * FROM t WHERE 1=CONTAINS(POINT('GALACTIC', l, b), CIRCLE(1, 2, 3))")
    assert exc.value.column == 40


@pytest.mark.parametrize(
    ("text", "match", "line", "column"),
    [
        ("SELECT FROM t", r"syntax error at 'FROM': expected one of", 1, 8),
        ("SELECT a\nFROM t\nWHERE", "unexpected end of query", 3, 6),
        ("SELECT a FROM t WHERE a = = 1", r"syntax error at '='", 1, 27),
        ("SELECT a FROM t; DROP TABLE t", r"only one query", 1, 18),
        ("SELECT a FROM t WHERE b = 'open", "unterminated string", 1, 27),
        ('SELECT "" FROM t', "quoted identifier", 1, 8),
        ("SELECT a FROM t WHERE a ~ 1", r"unexpected character '~'", 1, 25),
        ("DELETE FROM t", r"expected one of '\(', SELECT, WITH", 1, 1),
        ("SELECT read_csv('x') FROM t", "unknown or disallowed function 'read_csv'", 1, 8),
        ("SELECT SIN(1, 2) FROM t", "SIN takes 1 argument, got 2", 1, 8),
        ("SELECT MAX(*) FROM t", r"MAX\(\*\) is not allowed", 1, 8),
        ("SELECT ABS(DISTINCT a) FROM t", "only allowed in aggregate", 1, 8),
        ("SELECT CAST(a AS text) FROM t", "cannot CAST to 'TEXT'", 1, 18),
        ("SELECT POLYGON(1, 2, 3, 4, 5) FROM t", "at least 3 points", 1, 8),
        ("SELECT DISTANCE(1, 2, 3) FROM t", "DISTANCE takes 2 points or 4 numbers", 1, 8),
        ("SELECT a FROM t AS x (c1)", "column aliases are only allowed on derived", 1, 15),
        ("SELECT TOP -1 a FROM t", r"syntax error at '-'", 1, 12),
    ],
)
def test_errors_point_at_the_token(text, match, line, column):
    with pytest.raises(QueryError, match=match) as exc:
        parse(text)
    assert (exc.value.line, exc.value.column) == (line, column)


def test_empty_and_non_text():
    with pytest.raises(QueryError, match="empty"):
        parse("   -- only a comment\n")
    with pytest.raises(QueryError, match="empty"):
        parse("  ")
    with pytest.raises(QueryError, match="must be text"):
        parse(b"SELECT 1")
    with pytest.raises(QueryError, match="NUL"):
        parse("SELECT 1\x00 FROM t")


def test_trailing_semicolon_and_comments():
    q = parse("-- leading\nSELECT a -- mid\nFROM t ; -- done\n")
    assert q.body.from_[0].parts == ("t",)


def test_walk_visits_every_node():
    q = parse("SELECT a + 1 FROM t WHERE b IN (SELECT c FROM u)")
    names = {type(n).__name__ for n in A.walk(q)}
    assert {"Query", "Select", "Binary", "ColumnRef", "Literal", "InSubquery", "TableName"} <= names


# ---- property tests: identifiers, strings and numbers survive the round trip


_ident = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(
    name=_ident,
    value=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
        max_size=30,
    ),
)
def test_delimited_identifiers_and_strings_round_trip(name, value):
    quoted = '"' + name.replace('"', '""') + '"'
    lit = "'" + value.replace("'", "''") + "'"
    q = parse(f"SELECT {quoted} FROM t WHERE {quoted} = {lit}")
    assert q.body.items[0].expr.parts == (name,)
    assert q.body.where.right.value == value


@settings(max_examples=150, deadline=None)
@given(
    x=st.one_of(st.integers(0, 2**62), st.floats(0, 1e300, allow_nan=False, allow_infinity=False))
)
def test_numbers_round_trip(x):
    q = parse(f"SELECT {x!r} FROM t")
    v = q.body.items[0].expr.value
    assert v == x


@settings(max_examples=200, deadline=None)
@given(junk=st.text(max_size=60))
def test_arbitrary_text_never_crashes(junk):
    # Any input either parses or raises QueryError: never another exception.
    try:
        parse(junk)
    except QueryError:
        pass


# Structural soup: random long chains and deep nests of the grammar's recursive constructs
# (issue 15: 330-term chains and 120 nested subqueries raised RecursionError).
_WRAPS = [
    ("(", ")"),
    ("ABS(", ")"),
    ("NOT ", ""),
    ("- ", ""),
    ("(SELECT ", " FROM t)"),
    ("CASE WHEN x = 1 THEN ", " END"),
    ("COORD1(POINT(", ", 0))"),
    ("x IN (SELECT ", " FROM t)"),
]
_JOINERS = [" OR ", " AND ", " + ", " * ", " || ", " - "]


@st.composite
def _structures(draw):
    expr = draw(st.sampled_from(["x", "1", "'a'", "x = 1"]))
    for _ in range(draw(st.integers(0, 3))):
        # At most ~20 kB of text (chains of chains multiply), so that the test stays quick.
        budget = max(1, 20_000 // (len(expr) + 20))
        if draw(st.booleans()):
            n = draw(st.integers(1, min(2500, budget)))
            expr = draw(st.sampled_from(_JOINERS)).join([expr] * n)
        else:
            left, right = draw(st.sampled_from(_WRAPS))
            n = draw(st.integers(1, min(400, budget)))
            expr = left * n + expr + right * n
    return f"SELECT x FROM t WHERE {expr}"


@settings(max_examples=40, deadline=None)
@given(text=_structures())
def test_long_chains_and_deep_nests_parse_or_name_the_limit(text):
    # Either a tree (walked here without recursion) or a QueryError; never RecursionError.
    # The parse runs below 150 extra frames, as in a server thread.
    def down(k):
        return parse(text) if k == 0 else down(k - 1)

    try:
        tree = down(150)
    except QueryError as exc:
        assert "nests too deeply" in str(exc) or "syntax error" in str(exc), exc
        return
    assert sum(1 for _ in A.walk(tree)) >= 3
