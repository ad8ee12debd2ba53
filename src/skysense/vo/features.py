"""What the ADQL translator supports, as TAPRegExt language features (for VOSI /capabilities).

Derived from the translator's own allow list (:data:`skysense.vo.adql.FUNCTIONS`) so the
capabilities document cannot claim a function the translator rejects; a test checks every
declared form translates.
"""

from __future__ import annotations

from skysense.vo.adql import FUNCTIONS

__all__ = [
    "ADQL_VERSIONS",
    "LANGUAGE_FEATURES",
    "UDFS",
    "UNSUPPORTED",
    "language_features",
]

#: (version, ivo-id) of the query languages accepted.
ADQL_VERSIONS = (
    ("2.0", "ivo://ivoa.net/std/ADQL#v2.0"),
    ("2.1", "ivo://ivoa.net/std/ADQL#v2.1"),
)

_T = "ivo://ivoa.net/std/TAPRegExt#"

_GEO = {
    "POINT": "POINT([coordsys,] lon, lat): a position (deg; coordsys '' or 'ICRS')",
    "CIRCLE": "CIRCLE([coordsys,] lon, lat, radius) or CIRCLE(point, radius), degrees",
    "BOX": "BOX([coordsys,] lon, lat, width, height): the polygon with corners "
    "(lon +- width/2, lat +- height/2); constant arguments",
    "POLYGON": "POLYGON([coordsys,] lon1, lat1, lon2, lat2, ...) or POLYGON(p1, p2, ...): "
    "great-circle edges, either orientation (the smaller region), constant vertices",
    "CONTAINS": "CONTAINS(POINT, CIRCLE|BOX|POLYGON) and CONTAINS(CIRCLE, CIRCLE); 1 or 0; "
    "uses the HEALPix (or Q3C) index of the table's position columns",
    "INTERSECTS": "INTERSECTS(POINT, CIRCLE|BOX|POLYGON) (same as CONTAINS) and "
    "INTERSECTS(CIRCLE, CIRCLE)",
    "DISTANCE": "DISTANCE(point, point) or DISTANCE(lon1, lat1, lon2, lat2): great-circle "
    "distance in degrees",
    "COORD1": "COORD1(point): longitude in degrees",
    "COORD2": "COORD2(point): latitude in degrees",
    "COORDSYS": "COORDSYS(geometry): always 'ICRS'",
}

#: TAPRegExt feature type -> [(form, description)].
LANGUAGE_FEATURES: dict[str, list[tuple[str, str]]] = {
    _T + "features-adqlgeo": [(k, v) for k, v in _GEO.items() if k in FUNCTIONS],
    _T + "features-adql-string": [
        ("LOWER", "LOWER(string): lower-case copy"),
        ("UPPER", "UPPER(string): upper-case copy"),
        ("ILIKE", "case-insensitive LIKE"),
    ],
    _T + "features-adql-offset": [("OFFSET", "OFFSET n skips the first n rows")],
    _T + "features-adql-sets": [
        ("UNION", "UNION [ALL]"),
        ("EXCEPT", "EXCEPT [ALL]"),
        ("INTERSECT", "INTERSECT [ALL]"),
    ],
    _T + "features-adql-common-table": [("WITH", "common table expressions")],
    _T + "features-adql-conditional": [
        ("COALESCE", "COALESCE(a, b, ...): the first non-NULL argument")
    ],
    _T + "features-adql-type": [
        (
            "CAST",
            "CAST(x AS SMALLINT|INTEGER|BIGINT|REAL|DOUBLE PRECISION|CHAR(n)|VARCHAR(n)|TIMESTAMP)",
        )
    ],
}

#: User-defined functions (none: the allow list is ADQL's own functions).
UDFS: list[tuple[str, str]] = []

#: ADQL 2.1 features this service does not offer (documented, rejected with a clear error).
UNSUPPORTED = (
    "AREA, CENTROID, REGION (deprecated) geometry functions",
    "geometry values in the select list (select COORD1/COORD2 instead)",
    "BOX/POLYGON with column-valued arguments",
    "coordinate systems other than ICRS",
    "IN_UNIT, NULLIF, GREATEST, LEAST, bitwise operators, RAND(seed)",
    "LATERAL joins",
)


def language_features() -> dict[str, list[tuple[str, str]]]:
    """A copy of :data:`LANGUAGE_FEATURES` (TAPRegExt ``languageFeatures`` blocks)."""
    return {k: list(v) for k, v in LANGUAGE_FEATURES.items()}
