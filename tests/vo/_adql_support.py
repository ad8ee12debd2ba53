"""Helpers of the ADQL translator tests: a seeded sky with hard places, its catalog, loaders for
DuckDB and PostgreSQL, and brute-force region selections (NumPy) to compare against."""

from __future__ import annotations

import contextlib
import secrets

import numpy as np
import pandas as pd

from skysense.vo.hpx import hpx_index
from skysense.vo.schema import ColumnInfo, SchemaCatalog, TableInfo

SKY_N = 30_000


def offset_points(ra0, dec0, sep_deg, pa_rad):
    """Positions at separation ``sep_deg`` and position angle ``pa_rad`` from (ra0, dec0)."""
    ra0, dec0 = np.radians(ra0), np.radians(dec0)
    sep = np.radians(sep_deg)
    dec = np.arcsin(np.sin(dec0) * np.cos(sep) + np.cos(dec0) * np.sin(sep) * np.cos(pa_rad))
    ra = ra0 + np.arctan2(
        np.sin(pa_rad) * np.sin(sep) * np.cos(dec0),
        np.cos(sep) - np.sin(dec0) * np.sin(dec),
    )
    return np.mod(np.degrees(ra), 360.0), np.degrees(dec)


def make_sky(n: int = SKY_N, seed: int = 11) -> pd.DataFrame:
    """Uniform sky + polar caps + a band across RA=0/360 + tight 1-arcsec clusters."""
    rng = np.random.default_rng(seed)
    k = n // 5
    ra_u = rng.uniform(0, 360, 2 * k)
    dec_u = np.degrees(np.arcsin(rng.uniform(-1, 1, 2 * k)))
    ra_p = rng.uniform(0, 360, k)
    dec_p = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(85)), 1, k))) * rng.choice(
        [-1, 1], k
    )
    ra_b = np.mod(rng.uniform(-1, 1, k), 360.0)
    dec_b = rng.uniform(-60, 60, k)
    m = n - 4 * k
    centres = rng.integers(0, 2 * k, m // 20 + 1)
    cra = np.repeat(ra_u[centres], 20)[:m]
    cdec = np.repeat(dec_u[centres], 20)[:m]
    ra_c, dec_c = offset_points(cra, cdec, rng.uniform(0, 1 / 3600, m), rng.uniform(0, 6.3, m))
    ra = np.concatenate([ra_u, ra_p, ra_b, ra_c])
    dec = np.concatenate([dec_u, dec_p, dec_b, dec_c])
    # A few exact special values.
    ra[:6] = [0.0, 359.9999999, 180.0, 0.0, 90.0, 270.0]
    dec[:6] = [0.0, 0.0, 90.0, -90.0, 89.9999, -89.9999]
    mag = rng.normal(21, 1.5, n)
    mag[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "RA": ra,
            "DEC": dec,
            "mag": mag,
            "kind": np.where(rng.random(n) < 0.3, "star", "galaxy"),
            "_hpx": hpx_index(ra, dec, 14),
        }
    )


def sky_columns() -> dict[str, ColumnInfo]:
    return {
        "id": ColumnInfo("id", "long", ucd="meta.id;meta.main", principal=True),
        "ra": ColumnInfo("RA", "double", unit="deg", ucd="pos.eq.ra;meta.main", indexed=True),
        "dec": ColumnInfo("DEC", "double", unit="deg", ucd="pos.eq.dec;meta.main"),
        "mag": ColumnInfo("mag", "double", unit="mag", ucd="phot.mag", description="r mag"),
        "kind": ColumnInfo("kind", "char", arraysize="*"),
    }


def sky_info(physical: str, *, q3c: bool = False, name: str = "test.sky") -> TableInfo:
    return TableInfo(
        name=name,
        physical=physical,
        columns=sky_columns(),
        ra="ra",
        dec="dec",
        hpx_column="_hpx",
        hpx_order=14,
        q3c=q3c,
    )


def sky_catalog(physical: str = '"test"."sky"', *, q3c: bool = False) -> SchemaCatalog:
    return SchemaCatalog({"test.sky": sky_info(physical, q3c=q3c)})


def duckdb_with(tables: dict[str, pd.DataFrame]):
    """In-memory DuckDB with each DataFrame stored as a table (names 'schema.table')."""
    import duckdb

    con = duckdb.connect()
    for name, df in tables.items():
        schema, table = name.split(".")
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.register("_tmp_df", df)
        con.execute(f'CREATE TABLE "{schema}"."{table}" AS SELECT * FROM _tmp_df')
        con.unregister("_tmp_df")
        for c, dt in df.dtypes.items():
            if str(dt) == "float64":  # NaN in the frame means NULL in the database
                con.execute(f'UPDATE "{schema}"."{table}" SET "{c}" = NULL WHERE isnan("{c}")')
    return con


_PG_TYPES = {"int64": "BIGINT", "float64": "DOUBLE PRECISION", "bool": "BOOLEAN"}


@contextlib.contextmanager
def postgres_schema(dsn: str, tables: dict[str, pd.DataFrame], *, q3c: bool = False):
    """A fresh schema on the test server holding the tables ('_' + name); yields (conn, schema).

    Table names in ``tables`` are bare; with ``q3c`` the extension is created and a Q3C index
    is built on (RA, DEC) of every table having them.
    """
    import psycopg

    schema = f"adql_{secrets.token_hex(4)}"
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        if q3c:
            conn.execute("CREATE EXTENSION IF NOT EXISTS q3c")
        for name, df in tables.items():
            cols = []
            for c, dt in df.dtypes.items():
                cols.append(f'"{c}" {_PG_TYPES.get(str(dt), "TEXT")}')
            conn.execute(f'CREATE TABLE "{schema}"."{name}" ({", ".join(cols)})')
            names = ", ".join(f'"{c}"' for c in df.columns)
            with conn.cursor() as cur:
                with cur.copy(f'COPY "{schema}"."{name}" ({names}) FROM STDIN') as cp:
                    for row in df.itertuples(index=False):
                        cp.write_row(
                            [None if (isinstance(v, float) and np.isnan(v)) else v for v in row]
                        )
            if "_hpx" in df.columns:
                conn.execute(f'CREATE INDEX ON "{schema}"."{name}" ("_hpx")')
            if q3c and "RA" in df.columns:
                conn.execute(f'CREATE INDEX ON "{schema}"."{name}" (q3c_ang2ipix("RA", "DEC"))')
            conn.execute(f'ANALYZE "{schema}"."{name}"')
        yield conn, schema
    finally:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


def sep_deg(ra1, dec1, ra2, dec2):
    """Great-circle separation (deg), Vincenty's formula in NumPy."""
    r1, d1, r2, d2 = (np.radians(np.asarray(x, float)) for x in (ra1, dec1, ra2, dec2))
    dra = r2 - r1
    num = np.hypot(
        np.cos(d2) * np.sin(dra), np.cos(d1) * np.sin(d2) - np.sin(d1) * np.cos(d2) * np.cos(dra)
    )
    den = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den))


def polygon_is_proper(ra_v, dec_v) -> bool:
    """True when the polygon is simple, has area and fits in a hemisphere (shapely's view of
    its gnomonic projection); the translator rightly rejects the others."""
    import shapely

    a, d = np.radians(np.asarray(ra_v, float)), np.radians(np.asarray(dec_v, float))
    v = np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)
    c = v.sum(axis=0)
    if np.linalg.norm(c) < 1e-9:
        return False
    c /= np.linalg.norm(c)
    if np.any(v @ c < 1e-6):
        return False
    e1 = np.cross([0.0, 0.0, 1.0] if abs(c[2]) < 0.9 else [1.0, 0.0, 0.0], c)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c, e1)
    xy = np.stack([(v @ e1) / (v @ c), (v @ e2) / (v @ c)], axis=1)
    poly = shapely.Polygon(xy)
    span = np.ptp(xy, axis=0).max()
    return bool(poly.is_valid and poly.area > 1e-6 * span * span)


def polygon_truth(ra, dec, ra_v, dec_v):
    """(inside, near_edge) of points for a spherical polygon, computed independently of the
    translator: gnomonic projection about the vertex centroid (great circles -> lines), then
    shapely's planar point-in-polygon. ``near_edge`` marks points within ~1e-7 deg of an edge
    great circle, where rounding may legitimately differ."""
    import shapely

    def vec(a, d):
        a, d = np.radians(a), np.radians(d)
        return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)

    v = vec(np.asarray(ra_v, float), np.asarray(dec_v, float))
    p = vec(np.asarray(ra, float), np.asarray(dec, float))
    c = v.sum(axis=0)
    c /= np.linalg.norm(c)
    e1 = np.cross([0.0, 0.0, 1.0] if abs(c[2]) < 0.9 else [1.0, 0.0, 0.0], c)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c, e1)
    wv = v @ c
    poly = shapely.Polygon(np.stack([(v @ e1) / wv, (v @ e2) / wv], axis=1))
    wp = p @ c
    front = wp > 1e-9
    x = np.where(front, (p @ e1) / np.where(front, wp, 1), 0)
    y = np.where(front, (p @ e2) / np.where(front, wp, 1), 0)
    inside = front & shapely.contains_xy(poly, x, y)
    normals = np.cross(v, np.roll(v, -1, axis=0))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    near = np.min(np.abs(p @ normals.T), axis=1) < np.radians(1e-7)
    return inside, near
