"""Row selections ("cuts") written as small boolean expressions on catalogue columns.

An expression such as ``FLAGS < 4 and CLASS_STAR >= 0`` or ``isfinite(MAG_AUTO_U) | (SNR > 5)``
is parsed with :mod:`ast` and evaluated over NumPy columns by an allow-listed walker: only
column names, numbers, strings, comparisons, arithmetic, ``and/or/not`` (element-wise),
``& | ~`` and the functions in :data:`FUNCTIONS` are accepted, so a configuration file can never
run arbitrary code (unlike ``eval`` or ``DataFrame.query`` with the python engine).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

import numpy as np

from skysense.errors import ConfigError

__all__ = ["FUNCTIONS", "parse_cut", "cut_columns", "evaluate_cut"]

FUNCTIONS: dict[str, Callable] = {
    "abs": np.abs,
    "isfinite": np.isfinite,
    "isnan": np.isnan,
    "log10": np.log10,
    "sqrt": np.sqrt,
}
_CONSTANTS = {"nan": np.nan, "inf": np.inf, "True": True, "False": False}
_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
}
_CMPOPS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.Expression):
        _check(node.body)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd, ast.Invert)):
            raise ConfigError(f"operator {type(node.op).__name__} not allowed")
        _check(node.operand)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise ConfigError(f"operator {type(node.op).__name__} not allowed")
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _CMPOPS:
                raise ConfigError(f"comparison {type(op).__name__} not allowed")
        _check(node.left)
        for comp in node.comparators:
            _check(comp)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ConfigError(f"only the functions {', '.join(FUNCTIONS)} may be called")
        if node.keywords or len(node.args) != 1:
            raise ConfigError(f"{node.func.id}() takes exactly one argument")
        _check(node.args[0])
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)):
            raise ConfigError(f"constant {node.value!r} not allowed")
    elif not isinstance(node, ast.Name):
        raise ConfigError(f"{type(node).__name__} not allowed in a cut")


def parse_cut(text: str) -> ast.Expression:
    """Parse and vet a cut expression.

    Raises
    ------
    ConfigError
        Syntax error or a construct outside the allow-list (a ``ValueError``).
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a cut must be a non-empty string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    _check(tree)
    return tree


def cut_columns(text: str) -> list[str]:
    """Column names an expression refers to (function names and constants excluded)."""
    tree = parse_cut(text)
    called = {
        id(n.func)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in _CONSTANTS:
            if node.id not in names:
                names.append(node.id)
    return names


def _eval(node: ast.AST, columns: Mapping[str, np.ndarray]):
    if isinstance(node, ast.Expression):
        return _eval(node.body, columns)
    if isinstance(node, ast.BoolOp):
        func = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = _eval(node.values[0], columns)
        for value in node.values[1:]:
            result = func(result, _eval(value, columns))
        return result
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, columns)
        if isinstance(node.op, (ast.Not, ast.Invert)):
            return np.logical_not(value)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, columns), _eval(node.right, columns))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, columns)
        result = None
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, columns)
            part = _CMPOPS[type(op)](left, right)
            result = part if result is None else np.logical_and(result, part)
            left = right
        return result
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](_eval(node.args[0], columns))
    if isinstance(node, ast.Constant):
        return node.value
    if node.id in columns:
        return columns[node.id]
    if node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    raise KeyError(node.id)


def evaluate_cut(text: str, columns: Mapping[str, np.ndarray], n_rows: int) -> np.ndarray:
    """Evaluate a cut over ``columns`` (name -> array (n_rows,)): a boolean mask (n_rows,).

    NaN compares false, so a cut like ``MAG < 25`` drops rows without a magnitude.

    Raises
    ------
    KeyError
        An unknown column name.
    ConfigError
        The expression is not allowed or does not give one boolean per row (a ``ValueError``).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.asarray(_eval(parse_cut(text), columns))
    if result.shape == ():
        result = np.full(n_rows, bool(result))
    if result.shape != (n_rows,) or result.dtype != bool:
        raise ConfigError(f"does not give one true/false value per row (got {result.dtype})")
    return result
