"""The ADQL shape cache gives the same trees and translations as a fresh parse."""

import dataclasses

import pytest
from _adql_support import sky_catalog
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import QueryError
from skysense.vo import adql as A
from skysense.vo.adql_cache import parse_cached, template_of
from skysense.vo.sql import translate


def _same(x, y) -> bool:
    """Trees equal apart from source positions."""
    if dataclasses.is_dataclass(x):
        return type(x) is type(y) and all(
            _same(getattr(x, f.name), getattr(y, f.name))
            for f in dataclasses.fields(x)
            if f.name not in ("line", "column")
        )
    if isinstance(x, list | tuple):
        return type(x) is type(y) and len(x) == len(y) and all(map(_same, x, y))
    return x == y and type(x) is type(y) if not isinstance(x, str) else str(x) == str(y)


_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def _num(v: float) -> str:
    return repr(abs(v)) if v >= 0 else f"-{abs(v)!r}"


@settings(max_examples=200, deadline=None)
@given(ra=_finite, dec=_finite, r=_finite, mag=_finite)
def test_cached_tree_equals_fresh_parse(ra, dec, r, mag):
    q = (
        "SELECT TOP 7 \"id\", ra FROM test.sky AS t1 WHERE 1=CONTAINS(POINT('ICRS', t1.ra, dec), "
        f"CIRCLE('ICRS', {_num(ra)}, {_num(dec)}, {_num(r)})) AND mag < {_num(mag)} "
        "AND name = 'x 2.5' -- 9.5\n ORDER BY 1"
    )
    fresh = A.parse(q)
    first, _ = parse_cached(q)
    second, cached = parse_cached(q)
    assert cached
    assert _same(fresh, first) and _same(fresh, second)


def test_template_leaves_strings_identifiers_ints_and_hex_alone():
    q = "SELECT t1.mag_2, 0x1F, 10 FROM test.sky AS t1 WHERE a = '1.5' AND \"c 2.5\" > 2.5e3 -- 7.5"
    template, values = template_of(q)
    assert values == (2500.0,)
    assert "'1.5'" in template and '"c 2.5"' in template and "-- 7.5" in template
    assert "mag_2" in template and "0x1F" in template and " 10 " in template
    assert template_of("SELECT TOP 3 a FROM t") is None


def test_cache_returns_independent_copies():
    q = "SELECT a FROM test.sky WHERE a > 1.5"
    one, _ = parse_cached(q)
    one.body.where.right.value = 99.0
    two, cached = parse_cached(q)
    assert cached and two.body.where.right.value == 1.5


@pytest.fixture
def catalog():
    return sky_catalog()


def test_translation_identical_and_errors_point_at_the_request(catalog):
    q1 = "SELECT ra FROM test.sky WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10.25, -3.5, 0.05)) AND mag < 21.5"
    q2 = q1.replace("21.5", "19.0")
    translate(q1, dialect="duckdb", catalog=catalog)  # primes the cache
    cached = translate(q2, dialect="duckdb", catalog=catalog)
    fresh = translate(A.parse(q2), dialect="duckdb", catalog=catalog)
    assert cached.sql == fresh.sql and "19.0" in cached.sql

    # Same shape, but an unknown column after literals of another length: the position
    # reported must be the request's own, not the cached template's.
    bad1 = "SELECT ra FROM test.sky WHERE mag < 1.5 AND nosuch > 2.5"
    bad2 = "SELECT ra FROM test.sky WHERE mag < 1234567.125 AND nosuch > 2.5"
    for bad in (bad1, bad2):
        with pytest.raises(QueryError) as info:
            translate(bad, dialect="duckdb", catalog=catalog)
        assert info.value.column == bad.index("nosuch") + 1
