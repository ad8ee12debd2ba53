"""Columns of the rest of HELP's masterlist (issue #21) on the pipeline's simulated field: the
radio step's columns (DMU 8/9) and the morphology columns (DMU 3) reach help.masterlist with
units and UCDs, and the truth summary scores the radio IDs."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from skysense.pipeline.summary import radio_scores


def _published(root, columns: str):
    """Rows of help.masterlist and the TAP_SCHEMA metadata of its columns."""
    con = duckdb.connect(str(root / "vo.duckdb"), read_only=True)
    try:
        ml = con.execute(f"SELECT {columns} FROM help.masterlist").df()
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
    return ml, cols


def test_radio_columns_are_published_with_units_and_ucds(completed):
    root, report = completed
    assert "radio" in [s.name for s in report.steps]
    ml, cols = _published(
        root, "help_id, f_vla_1p4ghz, ferr_vla_1p4ghz, radio_id, lr, reliability, flag_radio_multi"
    )
    ided = ml[ml["radio_id"].fillna("") != ""]
    rec = json.loads((root / "pipeline" / "radio" / "radio_id.json").read_text())
    assert len(ided) >= rec["n_ids"] - int(ided["flag_radio_multi"].sum()) > 0
    assert (ided["f_vla_1p4ghz"] > 0).all() and ided["reliability"].between(0, 1).all()
    assert ml.loc[ml["radio_id"].fillna("") == "", "f_vla_1p4ghz"].isna().all()
    assert cols.loc["f_vla_1p4ghz", "unit"] == "uJy"
    assert cols.loc["f_vla_1p4ghz", "ucd"] == "phot.flux.density;em.radio.750-1500MHz"
    assert cols.loc["reliability", "ucd"] == "stat.probability;meta.id.cross"
    # The published fluxes are the radio catalogue's.
    cat = pd.read_csv(root / "field" / "catalogues" / "vla.csv").set_index("radio_id")
    np.testing.assert_allclose(
        ided["f_vla_1p4ghz"].to_numpy(), cat.loc[ided["radio_id"], "flux_ujy"].to_numpy()
    )


def test_truth_summary_scores_the_radio_ids(completed):
    root, report = completed
    radio = report.summary["truth"]["radio"]
    assert radio["n_radio"] >= 20
    assert radio["purity"] >= 0.9 and radio["completeness"] >= 0.8, radio
    # The reported reliability agrees with the measured purity; Q0 with its truth (small field).
    assert abs(radio["mean_reliability"] - radio["purity"]) <= 0.1, radio
    assert abs(radio["q0"] - radio["q0_true"]) <= 0.15, radio


def test_radio_scores_by_hand():
    truth = pd.DataFrame({"radio_id": ["a", "b", "c", "d"], "object_id": [10, 11, 12, 13]})
    help_true = pd.Series([10, 11, 99, 12, -1], index=["h1", "h2", "h3", "h4", "h5"])
    assoc = pd.DataFrame({
        "radio_id": ["a", "b", "c", "c"], "help_id": ["h1", "h3", "h4", "h5"],
        "reliability": [0.9, 0.6, 0.8, 0.1], "accepted": [True, True, True, False],
    })  # fmt: skip
    s = radio_scores(truth, help_true, assoc, 0.7, eligible=np.array([1, 1, 1, 0, 1], bool))
    # hosts 10, 11 eligible (12 is on h4, not eligible); 13 absent
    assert s["n_hosts_in_masterlist"] == 3 and s["n_hosts_eligible"] == 2
    assert s["q0_true"] == 0.5 and s["n_ids"] == 3
    assert s["purity"] == 2 / 3  # a -> h1 right, b -> h3 wrong, c -> h4 right
    assert s["completeness"] == 1 / 2  # correct among eligible hosts: a only
    assert s["mean_reliability"] == (0.9 + 0.6 + 0.8) / 3


def test_shape_columns_are_published_with_units_and_ucds(completed):
    root, _ = completed
    ml, cols = _published(root, "r_half_arcsec, axis_ratio, pa_deg, shape_origin, stellarity")
    measured = ml["r_half_arcsec"].notna()
    assert measured.mean() > 0.5
    assert set(ml.loc[measured, "shape_origin"]) <= {"suprime", "cfhtls"}
    assert ml["axis_ratio"].dropna().between(0, 1).all()
    assert ml["pa_deg"].dropna().between(0, 180).all()
    assert cols.loc["r_half_arcsec", "unit"] == "arcsec"
    assert cols.loc["r_half_arcsec", "ucd"] == "phys.angSize;src"
    assert cols.loc["pa_deg", "unit"] == "deg" and cols.loc["pa_deg", "ucd"] == "pos.posAng"
    assert cols.loc["axis_ratio", "ucd"] == "phys.size.axisRatio"
