"""The morphology columns (DMU 3) reach help.masterlist with units and UCDs."""

from __future__ import annotations

import duckdb


def test_shape_columns_are_published_with_units_and_ucds(completed):
    root, _ = completed
    con = duckdb.connect(str(root / "vo.duckdb"), read_only=True)
    try:
        ml = con.execute(
            "SELECT r_half_arcsec, axis_ratio, pa_deg, shape_origin, stellarity FROM help.masterlist"
        ).df()
        cols = (
            con.execute(
                "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
                "WHERE table_name = 'help.masterlist'"
            )
            .df()
            .set_index("column_name")
        )
    finally:
        con.close()
    measured = ml["r_half_arcsec"].notna()
    assert measured.mean() > 0.5
    assert set(ml.loc[measured, "shape_origin"]) <= {"suprime", "cfhtls"}
    assert ml["axis_ratio"].dropna().between(0, 1).all()
    assert ml["pa_deg"].dropna().between(0, 180).all()
    assert cols.loc["r_half_arcsec", "unit"] == "arcsec"
    assert cols.loc["r_half_arcsec", "ucd"] == "phys.angSize;src"
    assert cols.loc["pa_deg", "unit"] == "deg" and cols.loc["pa_deg", "ucd"] == "pos.posAng"
    assert cols.loc["axis_ratio", "ucd"] == "phys.size.axisRatio"
