"""ADQL -> SQL: function calls, aggregates, casts and constant folding."""

from __future__ import annotations

import math

import numpy as np

from skysense.vo import adql as A
from skysense.vo.sql.common import (
    _E,
    _GEOMETRY,
    _INTEGER,
    _NOCONST,
    _NUMERIC_RANK,
    _err,
    _is_numeric,
    _is_string,
    _promote,
    _unify,
)

__all__ = ["FunctionMixin"]


class FunctionMixin:
    """ADQL -> SQL: function calls, aggregates, casts and constant folding.

    A mixin of :class:`~skysense.vo.sql.translator._Translator`: uses its ``expr``, ``condition``,
    scopes and aliases.
    """

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
