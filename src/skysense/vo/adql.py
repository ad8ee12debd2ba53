"""ADQL 2.1 parser: query text -> typed, allow-listed syntax tree (pure).

The grammar (``adql.lark``, LALR) admits only queries. :func:`parse` returns a :class:`Query`
whose nodes are dataclasses carrying the 1-based ``line`` and ``column`` of their first token.
Function names are checked against :data:`FUNCTIONS` (allow list, argument counts) while the
tree is built, and the optional coordinate-system argument of geometry constructors is checked
(ICRS only) and removed, so later stages never see it. Every failure is a
:class:`~skysense.errors.QueryError` pointing at the offending token.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from skysense.errors import QueryError
from skysense.vo.limits import (
    MAX_DEPTH,
    MAX_IN_LIST,
    MAX_POLYGON_VERTICES,
    MAX_QUERY_BYTES,
    MAX_SELECT_COLUMNS,
    Deadline,
)

__all__ = [
    "parse",
    "warm_up",
    "KEYWORDS",
    "FUNCTIONS",
    "AGGREGATES",
    "GEOMETRY_FUNCTIONS",
    "CAST_TYPES",
    "Node",
    "Expr",
    "Literal",
    "ColumnRef",
    "Unary",
    "Binary",
    "Comparison",
    "Logical",
    "Not",
    "Between",
    "InList",
    "InSubquery",
    "Like",
    "IsNull",
    "Exists",
    "ScalarSubquery",
    "FunctionCall",
    "Case",
    "Cast",
    "SelectItem",
    "SelectExpr",
    "SelectStar",
    "SortItem",
    "TableRef",
    "TableName",
    "DerivedTable",
    "Join",
    "Select",
    "SetOperation",
    "CTE",
    "Query",
    "walk",
]

#: Reserved words of the grammar (case-insensitive). They cannot be regular identifiers.
KEYWORDS = (
    "SELECT ALL DISTINCT TOP FROM WHERE GROUP BY HAVING ORDER ASC DESC OFFSET UNION EXCEPT "
    "INTERSECT WITH AS JOIN INNER LEFT RIGHT FULL OUTER NATURAL CROSS ON USING OR AND NOT "
    "BETWEEN IN LIKE ILIKE IS NULL EXISTS CASE WHEN THEN ELSE END CAST TRUE FALSE"
).split()

_AGGREGATE_ARITY: dict[str, tuple[int, int | None]] = {
    "COUNT": (1, 1),
    "SUM": (1, 1),
    "AVG": (1, 1),
    "MIN": (1, 1),
    "MAX": (1, 1),
}
# geometry (ADQL 2.1 section 4); constructors without their optional coordinate-system argument
_GEOMETRY_ARITY: dict[str, tuple[int, int | None]] = {
    "POINT": (1, 2),
    "CIRCLE": (2, 3),
    "BOX": (3, 4),
    "POLYGON": (3, None),
    "CONTAINS": (2, 2),
    "INTERSECTS": (2, 2),
    "DISTANCE": (2, 4),
    "COORD1": (1, 1),
    "COORD2": (1, 1),
    "COORDSYS": (1, 1),
}

#: Allowed functions: upper-case name -> (min args, max args or None for unbounded).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    # maths (ADQL 2.1 section 2.3.2)
    "ABS": (1, 1),
    "CEILING": (1, 1),
    "DEGREES": (1, 1),
    "EXP": (1, 1),
    "FLOOR": (1, 1),
    "LOG": (1, 1),
    "LOG10": (1, 1),
    "MOD": (2, 2),
    "PI": (0, 0),
    "POWER": (2, 2),
    "RADIANS": (1, 1),
    "SQRT": (1, 1),
    "RAND": (0, 1),
    "ROUND": (1, 2),
    "TRUNCATE": (1, 2),
    # trigonometry
    "ACOS": (1, 1),
    "ASIN": (1, 1),
    "ATAN": (1, 1),
    "ATAN2": (2, 2),
    "COS": (1, 1),
    "COT": (1, 1),
    "SIN": (1, 1),
    "TAN": (1, 1),
    # strings and misc (ADQL 2.1 optional features)
    "LOWER": (1, 1),
    "UPPER": (1, 1),
    "COALESCE": (1, None),
    **_AGGREGATE_ARITY,
    **_GEOMETRY_ARITY,
}

AGGREGATES = frozenset(_AGGREGATE_ARITY)
GEOMETRY_FUNCTIONS = frozenset(_GEOMETRY_ARITY)
_CONSTRUCTORS = frozenset({"POINT", "CIRCLE", "BOX", "POLYGON"})

#: CAST target types (ADQL 2.1 section 2.3.5) -> VOTable datatype.
CAST_TYPES = {
    "SMALLINT": "short",
    "INTEGER": "int",
    "BIGINT": "long",
    "REAL": "float",
    "DOUBLE PRECISION": "double",
    "CHAR": "char",
    "VARCHAR": "char",
    "TIMESTAMP": "timestamp",
}


# --------------------------------------------------------------------------------------------
# syntax tree


@dataclass(kw_only=True)
class Node:
    """Base of every syntax-tree node: 1-based source position of its first token."""

    line: int = 0
    column: int = 0


class Expr(Node):
    """Base of expression nodes."""


@dataclass
class Literal(Expr):
    """A constant. ``kind``: ``"int"``, ``"float"``, ``"string"``, ``"null"``, ``"boolean"``."""

    value: int | float | str | bool | None
    kind: str


@dataclass
class ColumnRef(Expr):
    """A (possibly qualified) column name: ``parts`` as written, ``quoted`` per part."""

    parts: tuple[str, ...]
    quoted: tuple[bool, ...] = ()


@dataclass
class Unary(Expr):
    """``+x`` or ``-x``."""

    op: str
    operand: Expr


@dataclass
class Binary(Expr):
    """Arithmetic (``+ - * /``) or string concatenation (``||``)."""

    op: str
    left: Expr
    right: Expr


@dataclass
class Comparison(Expr):
    """``left op right`` with op one of ``= <> < > <= >=`` (``!=`` is read as ``<>``)."""

    op: str
    left: Expr
    right: Expr


@dataclass
class Logical(Expr):
    """``left AND right`` / ``left OR right``."""

    op: str
    left: Expr
    right: Expr


@dataclass
class Not(Expr):
    """``NOT operand``."""

    operand: Expr


@dataclass
class Between(Expr):
    """``expr [NOT] BETWEEN low AND high``."""

    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass
class InList(Expr):
    """``expr [NOT] IN (items...)``."""

    expr: Expr
    items: list[Expr]
    negated: bool = False


@dataclass
class InSubquery(Expr):
    """``expr [NOT] IN (subquery)``."""

    expr: Expr
    query: Query
    negated: bool = False


@dataclass
class Like(Expr):
    """``expr [NOT] LIKE|ILIKE pattern``."""

    expr: Expr
    pattern: Expr
    negated: bool = False
    case_insensitive: bool = False


@dataclass
class IsNull(Expr):
    """``expr IS [NOT] NULL``."""

    expr: Expr
    negated: bool = False


@dataclass
class Exists(Expr):
    """``EXISTS (subquery)``."""

    query: Query


@dataclass
class ScalarSubquery(Expr):
    """``(subquery)`` used as a value."""

    query: Query


@dataclass
class FunctionCall(Expr):
    """An allow-listed function: upper-case ``name``; ``star`` for ``COUNT(*)``; geometry
    constructors never keep their coordinate-system argument."""

    name: str
    args: list[Expr]
    distinct: bool = False
    star: bool = False


@dataclass
class Case(Expr):
    """``CASE [operand] WHEN .. THEN .. [ELSE ..] END`` (simple when ``operand`` is set)."""

    operand: Expr | None
    whens: list[tuple[Expr, Expr]]
    else_: Expr | None = None


@dataclass
class Cast(Expr):
    """``CAST(expr AS type)``; ``type_name`` is a key of :data:`CAST_TYPES`."""

    expr: Expr
    type_name: str
    length: int | None = None


class SelectItem(Node):
    """Base of select-list entries."""


@dataclass
class SelectExpr(SelectItem):
    """``expr [AS alias]``."""

    expr: Expr
    alias: str | None = None


@dataclass
class SelectStar(SelectItem):
    """``*`` (``qualifier`` None) or ``qualifier.*``."""

    qualifier: ColumnRef | None = None


@dataclass
class SortItem(Node):
    """One ORDER BY key."""

    expr: Expr
    descending: bool = False


class TableRef(Node):
    """Base of FROM-clause items."""


@dataclass
class TableName(TableRef):
    """A named table (``schema.table`` or ``table``) with an optional alias."""

    parts: tuple[str, ...]
    alias: str | None = None
    quoted: tuple[bool, ...] = ()


@dataclass
class DerivedTable(TableRef):
    """``(subquery) AS alias [(col, ...)]``."""

    query: Query
    alias: str
    column_aliases: list[str] | None = None


@dataclass
class Join(TableRef):
    """``left [NATURAL] kind JOIN right [ON cond | USING (cols)]``.

    ``kind``: ``"INNER"``, ``"LEFT"``, ``"RIGHT"``, ``"FULL"`` or ``"CROSS"``.
    """

    kind: str
    left: TableRef
    right: TableRef
    on: Expr | None = None
    using: list[str] | None = None
    natural: bool = False


@dataclass
class Select(Node):
    """One ``SELECT`` block (ORDER BY/OFFSET live on the enclosing :class:`Query`)."""

    items: list[SelectItem]
    from_: list[TableRef] = field(default_factory=list)
    where: Expr | None = None
    group_by: list[Expr] = field(default_factory=list)
    having: Expr | None = None
    distinct: bool = False
    top: int | None = None


@dataclass
class SetOperation(Node):
    """``left UNION|EXCEPT|INTERSECT [ALL] right``."""

    op: str
    left: Select | SetOperation | Query
    right: Select | SetOperation | Query
    all: bool = False


@dataclass
class CTE(Node):
    """``name [(columns)] AS (query)`` of a WITH clause."""

    name: str
    query: Query
    columns: list[str] | None = None


@dataclass
class Query(Node):
    """A complete query expression: optional WITH, a body, ORDER BY and OFFSET."""

    body: Select | SetOperation | Query
    ctes: list[CTE] = field(default_factory=list)
    order_by: list[SortItem] = field(default_factory=list)
    offset: int | None = None


def walk(node):
    """Yield ``node`` and every node below it (depth first, source order)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        if isinstance(n, list | tuple):
            stack.extend(reversed(n))
            continue
        if not isinstance(n, Node):
            continue
        yield n
        children = []
        for name in n.__dataclass_fields__:
            if name in ("line", "column"):
                continue
            v = getattr(n, name)
            if isinstance(v, Node | list | tuple):
                children.append(v)
        stack.extend(reversed(children))


# --------------------------------------------------------------------------------------------
# parser


def _grammar() -> str:
    text = (Path(__file__).with_name("adql.lark")).read_text(encoding="utf-8")
    # Keywords: case-insensitive, whole words, ahead of NAME (which would match them too).
    kw = "\n".join(f"{k}.5: /{k.lower()}(?![A-Za-z0-9_])/i" for k in KEYWORDS)
    return text + "\n" + kw + "\n"


@functools.cache
def _parser() -> Lark:
    parser = Lark(
        _grammar(),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=False,
    )
    # The lexer compiles its patterns on first use: pay that here, not in a user's first query.
    parser.parse("SELECT 1 FROM t")
    return parser


def warm_up() -> None:
    """Build the parser now (about a second of CPU, once per process).

    A server calls this at start-up: otherwise the first query pays it, and parsing counts
    against the query's time limit.
    """
    _parser()


_TOKEN_TEXT = {
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "DOT": "'.'",
    "STAR": "'*'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "SLASH": "'/'",
    "CONCAT": "'||'",
    "COMP_OP": "comparison operator",
    "SEMICOLON": "';'",
    "NAME": "identifier",
    "DELIMITED": "quoted identifier",
    "STRING": "string literal",
    "UNSIGNED_INT": "integer",
    "DECIMAL": "number",
    "HEX": "hexadecimal number",
    "$END": "end of query",
}


def _describe_expected(expected) -> str:
    names = sorted({_TOKEN_TEXT.get(t, t) for t in expected})
    if len(names) > 12:
        names = names[:12] + ["..."]
    return ", ".join(names)


def _syntax_error(exc: UnexpectedInput, text: str) -> QueryError:
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            line, col = _end_position(text)
            what = "unexpected end of query"
        else:
            line, col = tok.line, tok.column
            what = f"syntax error at {str(tok)!r}"
        if tok.type == "SEMICOLON" or set(exc.expected) <= {"$END", "SEMICOLON"}:
            what += " (only one query is allowed; ';' may only end it)"
        return QueryError(
            f"{what}: expected one of {_describe_expected(exc.expected)}", line=line, column=col
        )
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        hint = ""
        if ch == '"':
            hint = " (unterminated or empty quoted identifier)"
        elif ch == "'":
            hint = " (unterminated string literal)"
        return QueryError(
            f"syntax error: unexpected character {ch!r}{hint}", line=exc.line, column=exc.column
        )
    if isinstance(exc, UnexpectedEOF):
        line, col = _end_position(text)
        return QueryError("unexpected end of query", line=line, column=col)
    return QueryError(f"syntax error: {exc}")


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def parse(text: str, *, deadline: Deadline | None = None) -> Query:
    """Parse one ADQL query.

    Parameters
    ----------
    text : str
        The query (a single statement; a trailing ``;`` is tolerated), at most
        :data:`~skysense.vo.limits.MAX_QUERY_BYTES` long.
    deadline : skysense.vo.limits.Deadline, optional
        Parsing stops with the deadline's time-limit error once it has passed.

    Returns
    -------
    Query
        The syntax tree.

    Raises
    ------
    QueryError
        Syntax errors (with the offending token, its line and column, and the expected
        tokens), unknown functions, wrong argument counts, unsupported coordinate systems or
        CAST types, queries beyond the caps of :mod:`skysense.vo.limits` (length, nesting
        depth, select-list width, POLYGON vertices, IN list values), the time limit.
    """
    if not isinstance(text, str):
        raise QueryError(f"the query must be text, got {type(text).__name__}")
    if not re.sub(r"--[^\n]*", "", text).strip():
        raise QueryError("the query is empty")
    if len(text) > MAX_QUERY_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise QueryError(
            f"the query is longer than the limit of {MAX_QUERY_BYTES:,} bytes; upload long "
            "value lists as a table (TAP_UPLOAD) and join it"
        )
    if "\x00" in text:
        i = text.index("\x00")
        line = text.count("\n", 0, i) + 1
        raise QueryError(
            "the query contains a NUL character", line=line, column=i - text.rfind("\n", 0, i)
        )
    _check_in_lists(text)
    try:
        if deadline is not None and len(text) > _INTERRUPTIBLE_CHARS:
            tree = _parse_interruptible(text, deadline)
        else:
            tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    if deadline is not None:
        deadline.check("parsing")
    # Every later stage (the builder below, the translator) recurses along the tree; the depth
    # is bounded here, without recursion, before any of them runs.
    _check_depth(tree)
    try:
        return _Builder().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise


# Left-nested chains of one operator family (``a OR b OR c``, ``a + b - c``, ``x UNION y``)
# are walked iteratively by the translator, so a chain counts as one level however long.
_CHAINS = {
    "or_": "or",
    "and_": "and",
    "binop": "arith",
    "concat": "concat",
    "union": "set",
    "except_": "set",
    "intersect": "set",
}


def _check_depth(tree: Tree) -> None:
    """Raise QueryError when the parse tree nests deeper than :data:`MAX_DEPTH` (iterative)."""
    stack = [(tree, 1)]
    while stack:
        t, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise QueryError(
                f"the query nests too deeply: more than the limit of {MAX_DEPTH} levels of "
                "subqueries, function calls, operators or parenthesised conditions",
                **_pos(t.meta),
            )
        family = _CHAINS.get(t.data)
        for i, c in enumerate(t.children):
            if isinstance(c, Tree):
                same = i == 0 and family is not None and _CHAINS.get(c.data) == family
                stack.append((c, depth if same else depth + 1))


# Quoted text and comments (skipped), "IN (" and parentheses and commas (counted).
_IN_SCAN = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|(?<![A-Za-z0-9_])IN\s*\(|[(),]", re.IGNORECASE
)


def _check_in_lists(text: str) -> None:
    """Refuse an over-long ``IN (...)`` list before parsing it.

    A regular-expression scan (milliseconds) instead of the parse (~15 s for 100,000 values)
    that the builder's exact check would wait for.
    """
    if text.count(",") <= MAX_IN_LIST:
        return
    stack: list[list[int] | None] = []  # per open parenthesis: [offset, commas] after IN
    for m in _IN_SCAN.finditer(text):
        c = m.group()[0]
        if c in "'\"-":
            continue
        if c == "(":
            stack.append(None)
        elif c == ")":
            if stack:
                stack.pop()
        elif c == ",":
            if stack and stack[-1] is not None:
                stack[-1][1] += 1
                if stack[-1][1] >= MAX_IN_LIST:
                    i = stack[-1][0]
                    raise QueryError(
                        f"IN list is longer than the limit of {MAX_IN_LIST:,} values; upload "
                        "the values as a table (TAP_UPLOAD) and join it",
                        line=text.count("\n", 0, i) + 1,
                        column=i - text.rfind("\n", 0, i),
                    )
        else:
            stack.append([m.start(), 0])


# Queries longer than this are parsed token by token with deadline checks (lark parses about
# 150 kB/s; shorter queries take the plain, slightly faster path).
_INTERRUPTIBLE_CHARS = 20_000


def _parse_interruptible(text: str, deadline: Deadline) -> Tree:
    ip = _parser().parse_interactive(text)
    for i, _ in enumerate(ip.iter_parse()):
        if not i & 1023:
            deadline.check("parsing")
    return ip.feed_eof()


def _pos(meta_or_tok) -> dict:
    return {
        "line": getattr(meta_or_tok, "line", 0) or 0,
        "column": getattr(meta_or_tok, "column", 0) or 0,
    }


def _ident_text(tok: Token) -> tuple[str, bool]:
    if tok.type == "DELIMITED":
        return tok[1:-1].replace('""', '"'), True
    return str(tok), False


class _Ident(str):
    """An identifier with its quoting and position (internal to the builder)."""

    quoted: bool
    line: int
    column: int


def _is_kw(x, name: str) -> bool:
    return isinstance(x, Token) and x.type == name


_NUMBER_RE = re.compile(r"^\d+$")


@v_args(meta=True)
class _Builder(Transformer_NonRecursive):
    """Lark tree -> dataclass nodes (validation of names and arities included).

    Non-recursive (lark's iterative transformer): left-nested chains such as ``a OR b OR ...``
    are as deep as they are long.
    """

    # ---- leaves
    def ident(self, meta, children):
        tok = children[0]
        text, quoted = _ident_text(tok)
        out = _Ident(text)
        out.quoted = quoted
        out.line, out.column = tok.line, tok.column
        return out

    def column_ref(self, meta, children):
        return ColumnRef(
            parts=tuple(str(c) for c in children),
            quoted=tuple(c.quoted for c in children),
            **_pos(meta),
        )

    def number(self, meta, children):
        tok = children[0]
        text = str(tok)
        if _NUMBER_RE.match(text):
            return Literal(int(text), "int", **_pos(tok))
        return Literal(float(text), "float", **_pos(tok))

    def hex_number(self, meta, children):
        tok = children[0]
        return Literal(int(str(tok), 16), "int", **_pos(tok))

    def string(self, meta, children):
        tok = children[0]
        return Literal(str(tok)[1:-1].replace("''", "'"), "string", **_pos(tok))

    def null(self, meta, children):
        return Literal(None, "null", **_pos(children[0]))

    def true(self, meta, children):
        return Literal(True, "boolean", **_pos(children[0]))

    def false(self, meta, children):
        return Literal(False, "boolean", **_pos(children[0]))

    # ---- operators
    def unary(self, meta, children):
        op, operand = children
        return Unary(str(op), operand, **_pos(meta))

    def binop(self, meta, children):
        left, op, right = children
        return Binary(str(op), left, right, **_pos(meta))

    def concat(self, meta, children):
        left, _, right = children
        return Binary("||", left, right, **_pos(meta))

    def comparison(self, meta, children):
        left, op, right = children
        op = "<>" if str(op) == "!=" else str(op)
        return Comparison(op, left, right, **_pos(meta))

    def or_(self, meta, children):
        return Logical("OR", children[0], children[2], **_pos(meta))

    def and_(self, meta, children):
        return Logical("AND", children[0], children[2], **_pos(meta))

    def not_(self, meta, children):
        return Not(children[1], **_pos(meta))

    def between(self, meta, children):
        negated = any(_is_kw(c, "NOT") for c in children)
        vals = [c for c in children if not isinstance(c, Token)]
        return Between(vals[0], vals[1], vals[2], negated=negated, **_pos(meta))

    def in_list(self, meta, children):
        negated = any(_is_kw(c, "NOT") for c in children)
        vals = [c for c in children if not isinstance(c, Token)]
        if len(vals) - 1 > MAX_IN_LIST:
            raise QueryError(
                f"IN list of {len(vals) - 1:,} values is longer than the limit of "
                f"{MAX_IN_LIST:,}; upload the values as a table (TAP_UPLOAD) and join it",
                **_pos(meta),
            )
        return InList(vals[0], vals[1:], negated=negated, **_pos(meta))

    def in_subquery(self, meta, children):
        negated = any(_is_kw(c, "NOT") for c in children)
        vals = [c for c in children if not isinstance(c, Token)]
        return InSubquery(vals[0], vals[1], negated=negated, **_pos(meta))

    def like(self, meta, children):
        negated = any(_is_kw(c, "NOT") for c in children)
        vals = [c for c in children if not isinstance(c, Token)]
        return Like(vals[0], vals[1], negated=negated, **_pos(meta))

    def ilike(self, meta, children):
        node = self.like(meta, children)
        node.case_insensitive = True
        return node

    def is_null(self, meta, children):
        negated = any(_is_kw(c, "NOT") for c in children)
        return IsNull(children[0], negated=negated, **_pos(meta))

    def exists(self, meta, children):
        return Exists(children[1], **_pos(meta))

    def scalar_subquery(self, meta, children):
        return ScalarSubquery(children[0], **_pos(meta))

    # ---- functions
    def _call(self, meta, name_tok, args, *, distinct=False, star=False):
        name = str(name_tok).upper()
        pos = _pos(name_tok)
        if name not in FUNCTIONS:
            raise QueryError(
                f"unknown or disallowed function {str(name_tok)!r}",
                line=pos["line"],
                column=pos["column"],
            )
        if (star or distinct) and name not in AGGREGATES:
            what = "*" if star else "DISTINCT"
            raise QueryError(f"{what} is only allowed in aggregate functions, not {name}", **pos)
        if star and name != "COUNT":
            raise QueryError(f"{name}(*) is not allowed; only COUNT(*)", **pos)
        if name in _CONSTRUCTORS:
            args = _strip_coordsys(name, args, pos)
        if name == "POLYGON":
            vertices = len(args) if any(_is_point(a) for a in args) else len(args) // 2
            if vertices > MAX_POLYGON_VERTICES:
                raise QueryError(
                    f"POLYGON has {vertices:,} vertices, more than the limit of "
                    f"{MAX_POLYGON_VERTICES:,}",
                    **pos,
                )
        lo, hi = FUNCTIONS[name]
        n = len(args) + (1 if star else 0)
        if n < lo or (hi is not None and n > hi):
            expect = f"{lo}" if lo == hi else (f"{lo} to {hi}" if hi else f"at least {lo}")
            raise QueryError(
                f"{name} takes {expect} argument{'s' if (hi or 2) > 1 else ''}, got {n}", **pos
            )
        _check_geometry_arity(name, args, pos)
        return FunctionCall(name, list(args), distinct=distinct, star=star, **pos)

    def call_noargs(self, meta, children):
        return self._call(meta, children[0], [])

    def call_star(self, meta, children):
        return self._call(meta, children[0], [], star=True)

    def call_quantified(self, meta, children):
        name, quant, arg = children
        return self._call(meta, name, [arg], distinct=quant == "DISTINCT")

    def call(self, meta, children):
        return self._call(meta, children[0], list(children[1:]))

    def case_expr(self, meta, children):
        operand = None
        whens = []
        else_ = None
        items = [c for c in children if not (isinstance(c, Token) and c.type in ("CASE", "END"))]
        i = 0
        if items and not isinstance(items[0], tuple):
            operand = items[0]
            i = 1
        while i < len(items):
            c = items[i]
            if isinstance(c, tuple):
                whens.append(c)
            elif _is_kw(c, "ELSE"):
                else_ = items[i + 1]
                i += 1
            i += 1
        return Case(operand, whens, else_, **_pos(meta))

    def when_clause(self, meta, children):
        return (children[1], children[3])

    def cast_expr(self, meta, children):
        expr = children[1]
        type_name, length, tpos = children[3]
        if type_name not in CAST_TYPES:
            raise QueryError(
                f"cannot CAST to {type_name!r}; allowed types: {', '.join(CAST_TYPES)}", **tpos
            )
        if length is not None and type_name not in ("CHAR", "VARCHAR"):
            raise QueryError(f"type {type_name} takes no length", **tpos)
        return Cast(expr, type_name, length, **_pos(meta))

    def type_name(self, meta, children):
        words = [str(c).upper() for c in children if c.type == "NAME"]
        lengths = [int(c) for c in children if c.type == "UNSIGNED_INT"]
        name = " ".join(words)
        if name == "INT":
            name = "INTEGER"
        return name, (lengths[0] if lengths else None), _pos(children[0])

    # ---- select
    def set_quantifier(self, meta, children):
        return str(children[0].type)

    def top_clause(self, meta, children):
        return ("TOP", int(children[1]))

    def select_all(self, meta, children):
        return [SelectStar(None, **_pos(meta))]

    def select_list(self, meta, children):
        if len(children) > MAX_SELECT_COLUMNS:
            raise QueryError(
                f"the select list has {len(children):,} entries, more than the limit of "
                f"{MAX_SELECT_COLUMNS:,} columns",
                **_pos(meta),
            )
        return list(children)

    def select_expr(self, meta, children):
        return SelectExpr(children[0], None, **_pos(meta))

    def select_alias(self, meta, children):
        return SelectExpr(children[0], str(children[-1]), **_pos(meta))

    def select_qualified_star(self, meta, children):
        idents = [c for c in children if isinstance(c, _Ident)]
        ref = ColumnRef(
            parts=tuple(str(c) for c in idents),
            quoted=tuple(c.quoted for c in idents),
            **_pos(meta),
        )
        return SelectStar(ref, **_pos(meta))

    def from_clause(self, meta, children):
        return ("FROM", list(children[1:]))

    def where_clause(self, meta, children):
        return ("WHERE", children[1])

    def group_by(self, meta, children):
        return ("GROUP", list(children[2:]))

    def having_clause(self, meta, children):
        return ("HAVING", children[1])

    def order_by(self, meta, children):
        return ("ORDER", list(children[2:]))

    def sort_item(self, meta, children):
        desc = len(children) > 1 and children[1].type == "DESC"
        return SortItem(children[0], desc, **_pos(meta))

    def offset_clause(self, meta, children):
        return ("OFFSET", int(children[1]))

    def select_core(self, meta, children):
        sel = Select(items=[], **_pos(meta))
        for c in children[1:]:
            if type(c) is str and c == "DISTINCT":
                sel.distinct = True
            elif type(c) is str:
                continue
            elif isinstance(c, list):
                sel.items = c
            elif isinstance(c, tuple):
                key, val = c
                if key == "TOP":
                    sel.top = val
                elif key == "FROM":
                    sel.from_ = val
                elif key == "WHERE":
                    sel.where = val
                elif key == "GROUP":
                    sel.group_by = val
                elif key == "HAVING":
                    sel.having = val
        return sel

    # ---- query expressions
    def _query(self, meta, children):
        q = Query(body=None, **_pos(meta))
        for c in children:
            if isinstance(c, tuple) and c[0] == "WITH":
                q.ctes = c[1]
            elif isinstance(c, tuple) and c[0] == "ORDER":
                q.order_by = c[1]
            elif isinstance(c, tuple) and c[0] == "OFFSET":
                q.offset = c[1]
            elif isinstance(c, Select | SetOperation | Query):
                q.body = c
        return q

    def query_expr(self, meta, children):
        return self._query(meta, children)

    def subquery(self, meta, children):
        return self._query(meta, children)

    def start(self, meta, children):
        return children[0]

    def with_clause(self, meta, children):
        return ("WITH", list(children[1:]))

    def cte(self, meta, children):
        name = children[0]
        cols = None
        query = children[-1]
        for c in children[1:-1]:
            if isinstance(c, list):
                cols = c
        return CTE(str(name), query, cols, **_pos(meta))

    def column_names(self, meta, children):
        return [str(c) for c in children]

    def _setop(self, meta, children, op):
        left = children[0]
        right = children[-1]
        all_ = any(type(c) is str and c == "ALL" for c in children[1:-1])
        return SetOperation(op, left, right, all=all_, **_pos(meta))

    def union(self, meta, children):
        return self._setop(meta, children, "UNION")

    def except_(self, meta, children):
        return self._setop(meta, children, "EXCEPT")

    def intersect(self, meta, children):
        return self._setop(meta, children, "INTERSECT")

    # ---- FROM
    def correlation(self, meta, children):
        alias = None
        cols = None
        for c in children:
            if isinstance(c, _Ident):
                alias = str(c)
            elif isinstance(c, list):
                cols = c
        return (alias, cols)

    def table_name(self, meta, children):
        ref = children[0]
        alias, cols = children[1] if len(children) > 1 else (None, None)
        if cols:
            raise QueryError(
                "column aliases are only allowed on derived tables",
                line=meta.line,
                column=meta.column,
            )
        if len(ref.parts) > 3:
            raise QueryError(f"table name {'.'.join(ref.parts)!r} has too many parts", **_pos(meta))
        return TableName(ref.parts, alias, quoted=ref.quoted, **_pos(meta))

    def derived_table(self, meta, children):
        query, (alias, cols) = children
        return DerivedTable(query, alias, cols, **_pos(meta))

    def paren_join(self, meta, children):
        return children[0]

    def join_type(self, meta, children):
        return children[0].type

    def join_on(self, meta, children):
        return ("ON", children[1])

    def join_using(self, meta, children):
        return ("USING", [str(c) for c in children[1:]])

    def qualified_join(self, meta, children):
        left = children[0]
        kind = "INNER"
        for c in children[1:]:
            if type(c) is str and c in ("INNER", "LEFT", "RIGHT", "FULL"):
                kind = c
        right = [c for c in children[1:] if isinstance(c, TableRef)][0]
        spec = children[-1]
        on = spec[1] if spec[0] == "ON" else None
        using = spec[1] if spec[0] == "USING" else None
        return Join(kind, left, right, on=on, using=using, **_pos(meta))

    def natural_join(self, meta, children):
        left = children[0]
        kind = "INNER"
        for c in children[1:]:
            if type(c) is str and c in ("INNER", "LEFT", "RIGHT", "FULL"):
                kind = c
        right = children[-1]
        return Join(kind, left, right, natural=True, **_pos(meta))

    def cross_join(self, meta, children):
        return Join("CROSS", children[0], children[-1], **_pos(meta))


def _strip_coordsys(name: str, args: list, pos: dict) -> list:
    """Check and drop the optional leading coordinate-system string of a geometry constructor."""
    if not args or not isinstance(args[0], Literal) or args[0].kind != "string":
        return args
    system = args[0].value.strip().upper()
    if system and not system.split()[0] == "ICRS":
        raise QueryError(
            f"coordinate system {args[0].value!r} is not supported; use 'ICRS' (or '')",
            line=args[0].line,
            column=args[0].column,
        )
    return args[1:]


def _is_point(node) -> bool:
    return isinstance(node, FunctionCall) and node.name == "POINT"


def _check_geometry_arity(name: str, args: list, pos: dict) -> None:
    n = len(args)
    if name == "POINT" and n != 2:
        raise QueryError(f"POINT takes 2 coordinates (lon, lat), got {n}", **pos)
    if name == "POLYGON":
        points = [isinstance(a, FunctionCall) and a.name == "POINT" for a in args]
        if any(points):
            if not all(points):
                raise QueryError("POLYGON takes either points or lon, lat numbers, not both", **pos)
            return
        if n < 6 or n % 2:
            raise QueryError(
                "POLYGON takes at least 3 points or 3 lon, lat pairs (an even number of at least "
                f"6 coordinates), got {n} arguments",
                **pos,
            )
    if name == "DISTANCE" and n == 3:
        raise QueryError("DISTANCE takes 2 points or 4 numbers (lon1, lat1, lon2, lat2)", **pos)
