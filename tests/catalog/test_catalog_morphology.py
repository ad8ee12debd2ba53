"""Morphology columns (DMU 3): conversions, the priority merge, the size comparison, the
configuration, and the whole chain on a simulated field against its truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import spearmanr

from skysense import sim
from skysense.catalog import prepare_io as prepare
from skysense.catalog.check_io import run_check
from skysense.catalog.config import parse_config
from skysense.catalog.hats_io import read_hats_table
from skysense.catalog.merge_config import load_merge_config
from skysense.catalog.merge_io import run_merge
from skysense.catalog.morphology import compare_sizes, merge_shapes, shape_columns
from skysense.errors import ConfigError, InputError


@given(st.floats(-1e4, 1e4, allow_nan=False))
def test_pa_is_folded_into_half_a_turn(pa):
    got = shape_columns(pa_deg=np.array([pa]))["pa_deg"][0]
    assert 0 <= got < 180
    k = (pa - got) / 180.0
    assert abs(k - round(k)) < 1e-9


def test_shape_columns_convert_and_check():
    out = shape_columns(np.array([0.5, np.nan]), ellipticity=np.array([0.25, 0.0]))
    np.testing.assert_allclose(out["axis_ratio"], [0.75, 1.0])
    assert np.isnan(out["r_half_arcsec"][1])
    with pytest.raises(InputError, match="axis ratio outside"):
        shape_columns(
            axis_ratio=np.array([0.5, 1.5]), names={"axis_ratio": "Q"}, rows=np.array([7, 9])
        )
    with pytest.raises(InputError, match="negative radius"):
        shape_columns(np.array([-1.0]))
    with pytest.raises(InputError, match="not both"):
        shape_columns(axis_ratio=np.ones(1), ellipticity=np.zeros(1))


def test_merge_shapes_takes_the_priority_survey_with_a_radius():
    a = pd.DataFrame(
        {"r_half_arcsec": [1.0, np.nan], "axis_ratio": [0.5, 0.9], "pa_deg": [10.0, 20.0]}
    )
    b = pd.DataFrame({"r_half_arcsec": [2.0, 3.0, 4.0], "axis_ratio": [0.4, 0.3, 0.2],
                      "pa_deg": [1.0, 2.0, 3.0]})  # fmt: skip
    c = pd.DataFrame({"x": [0]})
    rows = np.array([[0, 0, -1], [1, 2, -1], [-1, 1, 0], [-1, -1, 0]])
    out = merge_shapes(rows, [a, b, c], ["a", "b", "c"])
    # object 0: a has a radius; object 1: a has no radius -> b (row 2); object 2: b; 3: none
    np.testing.assert_allclose(out["r_half_arcsec"], [1.0, 4.0, 3.0, np.nan])
    np.testing.assert_allclose(out["axis_ratio"], [0.5, 0.2, 0.3, np.nan])
    np.testing.assert_allclose(out["pa_deg"], [10.0, 3.0, 2.0, np.nan])
    assert out["shape_origin"].tolist() == ["a", "b", "b", ""]
    assert merge_shapes(rows[:, 2:], [c], ["c"]) == {}


def test_compare_sizes_by_hand():
    a = np.array([1.0, 2.0, 4.0, 8.0, np.nan, -1.0])
    b = 2 * a
    st_ = compare_sizes(a, b)
    assert st_["n"] == 4 and st_["median_ratio"] == pytest.approx(2.0)
    assert st_["nmad_log_ratio"] == pytest.approx(0.0) and st_["spearman"] == pytest.approx(1.0)


def test_configuration_accepts_shape_columns_and_refuses_both_shapes():
    raw = {"survey": "s", "file": "s.csv", "columns": {"id": "ID", "ra": "RA", "dec": "DEC",
           "r_half": "HLR", "ellipticity": "E", "pa": "THETA"},
           "bands": [{"name": "megacam_r", "mag": "R"}]}  # fmt: skip
    cfg = parse_config(raw)
    assert cfg.columns.r_half == "HLR" and cfg.columns.ellipticity == "E"
    assert parse_config(cfg.to_dict()) == cfg
    raw["columns"]["axis_ratio"] = "Q"
    with pytest.raises(ConfigError, match="not both"):
        parse_config(raw)


@pytest.mark.acceptance
def test_shapes_flow_through_prepare_merge_and_check_and_match_the_truth(tmp_path):
    field = tmp_path / "field"
    sim.write_field(field, seed=4, area_deg2=0.02, maps=(), radio=None)
    manifest = sim.read_manifest(field)
    order = ["suprime", "cfhtls", "ukidss", "swire"]
    prepared = []
    for name in order:
        info = manifest["surveys"][name]
        result = prepare.prepare_survey(
            field / info["config"], reference=field / manifest["reference"]
        )
        out = tmp_path / "prepared" / f"{name}.parquet"
        prepare.write_prepared(result, out)
        prepared.append(out)
    config = tmp_path / "prepared" / "merge.yaml"
    config.write_text(
        yaml.safe_dump({"catalogues": [p.name for p in prepared], "radius_arcsec": 0.8})
    )
    run_merge(load_merge_config(config), tmp_path / "out")
    ml = read_hats_table(tmp_path / "out" / "masterlist")
    for c in ("r_half_arcsec", "axis_ratio", "pa_deg", "shape_origin", "stellarity"):
        assert c in ml.columns
    has_suprime = ml["suprime_id"].notna() & ml["r_half_arcsec"].notna()
    assert (ml.loc[has_suprime, "shape_origin"] == "suprime").all()
    only_cfhtls = ml["suprime_id"].isna() & ml["cfhtls_id"].notna()
    assert (ml.loc[only_cfhtls, "shape_origin"] == "cfhtls").all() and only_cfhtls.sum() > 20
    assert set(ml["shape_origin"]) <= {"suprime", "cfhtls", ""}

    # Against the truth: the objects of the suprime rows.
    rows = pd.read_parquet(field / "truth" / "catalogue_rows.parquet")
    props = pd.read_parquet(field / "truth" / "galaxy_properties.parquet").set_index("object_id")
    sup = rows[(rows["survey"] == "suprime") & ~rows["is_duplicate"]]
    key = dict(zip(sup["source_id"].astype(str), sup["object_id"]))
    sel = ml[has_suprime & (ml["shape_origin"] == "suprime")]
    oid = sel["suprime_id"].astype(str).map(key)
    gal = oid.isin(props.index).to_numpy()
    t = props.loc[oid[gal].to_numpy()]
    r_true = np.sqrt(t["r_half_arcsec"].to_numpy() ** 2 + 0.3**2)  # seeing 0.6" FWHM
    r_meas = sel["r_half_arcsec"].to_numpy()[gal]
    assert np.median(r_meas / r_true) == pytest.approx(1.0, abs=0.05)
    assert spearmanr(r_meas, r_true).statistic > 0.6
    big = t["r_half_arcsec"].to_numpy() > 0.8
    assert big.sum() > 20
    assert (
        spearmanr(sel["axis_ratio"].to_numpy()[gal][big], t["axis_ratio"].to_numpy()[big]).statistic
        > 0.6
    )

    report = run_check(tmp_path / "out" / "masterlist", tmp_path / "report")
    text = report.read_text()
    assert "## Sizes (half-light radius) across surveys" in text
    line = next(x for x in text.splitlines() if x.startswith("| r_half cfhtls / suprime"))
    n, ratio = int(line.split("|")[2]), float(line.split("|")[3])
    assert n > 50 and ratio == pytest.approx(
        np.sqrt(np.median(r_true**2) + 0.45**2 - 0.3**2) / np.median(r_true), abs=0.25
    )
