"""Radio IDs at the edge: the configuration, the CLI verb and its outputs, the partitioned
search against the in-memory one, and the real-data check on AT20G vs SuperCOSMOS."""

from __future__ import annotations

import json

import _at20g
import numpy as np
import pandas as pd
import pytest
import yaml
from _radio_synth import make_field

from skysense.catalog.hats_io import read_hats_table, write_hats
from skysense.catalog.radio.config import load_radio_config, parse_radio_config
from skysense.catalog.radio.io import identify_radio, read_radio, run_radio_id
from skysense.cli.__main__ import main
from skysense.errors import ConfigError


def _raw(radio_file: str) -> dict:
    return {
        "radio": {"file": radio_file, "band": "sim_1p4ghz", "id": "name", "flux": "flux_mjy",
                  "flux_err": "flux_err_mjy", "flux_unit": "mJy",
                  "position_error": {"major": "maj", "minor": "min", "pa": "pa"}},
        "optical": {"magnitude": "m_r", "position_error": {"sigma": "err_arcsec"}},
        "method": {"search_radius_arcsec": 5, "background_inner_arcsec": 12,
                   "background_outer_arcsec": 40, "mag_edges": [16, 24, 1.0]},
    }  # fmt: skip


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("radio")
    opt, radio = make_field(n_radio=300, density_deg2=20000.0, side_deg=0.6, seed=4)
    opt = opt.assign(help_id=[f"HELP_{i:06d}" for i in range(len(opt))])
    radio.to_csv(d / "radio.csv", index=False)
    write_hats(opt, d / "ml", catalog_name="ml", partition_rows=1500, highest_order=7)
    (d / "radio.yaml").write_text(yaml.safe_dump(_raw("radio.csv")))
    return d, opt, radio


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda r: r["radio"].pop("flux"), "radio.flux"),
        (lambda r: r["radio"].update(flux_unit="Jansky"), "flux unit"),
        (lambda r: r["optical"].update(colour=["m_g"]), "optical.colour"),
        (lambda r: r["method"].update(search_radius_arcsec=20), "radii"),
        (lambda r: r["method"].update(bogus=1), "method.bogus"),
        (lambda r: r["radio"].update(position_error={"sigma": 1, "pa": 3}), "sigma"),
        (lambda r: r["method"].update(colour_edges=[0, 1]), "needs optical.colour"),
    ],
)
def test_configuration_errors_name_the_key(edit, match):
    raw = _raw("r.csv")
    edit(raw)
    with pytest.raises(ConfigError, match=match):
        parse_radio_config(raw, path="radio.yaml")


def test_partitioned_search_equals_the_search_in_memory(small):
    d, opt, _ = small
    cfg = load_radio_config(d / "radio.yaml")
    radio = read_radio(cfg)
    ml = read_hats_table(d / "ml")
    assert len(list((d / "ml" / "dataset").rglob("*.parquet"))) > 2  # really partitioned
    a = identify_radio(radio, d / "ml", cfg)
    b = identify_radio(radio, ml.drop(columns=["_healpix_29"]), cfg)
    pd.testing.assert_frame_equal(a.candidates, b.candidates)
    # rows number the masterlist as read_hats_table reads it
    row = a.candidates["opt_row"].to_numpy()
    assert (ml["help_id"].to_numpy()[row] != "").all()
    sep = a.candidates["sep_arcsec"].to_numpy()
    assert np.all(sep <= 5.0)


def test_cli_writes_masterlist_columns_associations_plot_and_summary(small, tmp_path, capsys):
    d, opt, radio = small
    out = tmp_path / "out"
    assert (
        main(["catalog", "radio-id", str(d / "radio.yaml"), str(d / "ml"), "--out", str(out)]) == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and "radio sources identified" in line
    ml = read_hats_table(out / "masterlist")
    for c in ("f_sim_1p4ghz", "ferr_sim_1p4ghz", "radio_id", "lr", "reliability",
              "flag_radio_multi"):  # fmt: skip
        assert c in ml.columns
    summary = json.loads((out / "radio_id.json").read_text())
    # No ID is a null radio_id (NULL in the VO), never an empty string.
    assert not (ml["radio_id"] == "").any()
    ided = ml[ml["radio_id"].notna()]
    assert (
        len(ided) + int(ml.loc[ml["radio_id"].notna(), "flag_radio_multi"].sum())
        >= summary["n_ids"] - 2
    )
    # Fluxes are the radio catalogue's, in uJy, on the identified object.
    by_name = radio.set_index("name")
    np.testing.assert_allclose(
        ided["f_sim_1p4ghz"].to_numpy(), by_name.loc[ided["radio_id"], "flux_mjy"].to_numpy() * 1e3
    )
    assoc = pd.read_parquet(out / "radio_associations.parquet")
    assert int(assoc["accepted"].sum()) == summary["n_ids"]
    assert set(ided["help_id"]) <= set(assoc.loc[assoc["accepted"], "help_id"])
    assert (out / "radio_id.png").read_bytes()[:4] == b"\x89PNG"
    # Most IDs are the simulated hosts.
    host = by_name.loc[assoc.loc[assoc["accepted"], "radio_id"], "host"].to_numpy()
    got = assoc.loc[assoc["accepted"], "help_id"].str[5:].astype(int).to_numpy()
    assert np.mean(host == got) > 0.9


def test_cli_error_is_one_line(small, tmp_path, capsys):
    d, _, _ = small
    raw = _raw(str(d / "radio.csv"))
    raw["optical"]["magnitude"] = "m_rr"
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    code = main(["catalog", "radio-id", str(cfg), str(d / "ml"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("skysense: error:") and "m_rr" in err and "m_r" in err
    assert err.count("\n") == 0


@pytest.mark.acceptance
def test_at20g_listed_ids_recovered_and_reliability_matches_agreement(shared_data, tmp_path):
    radio, ml = _at20g.load(shared_data / "crossmatch")
    assert len(radio) == 320 and len(ml) == 500
    radio.to_csv(tmp_path / "at20g.csv", index=False)
    ml.to_parquet(tmp_path / "scos.parquet")
    cfg = parse_radio_config(_at20g.config_dict(str(tmp_path / "at20g.csv")))
    s = run_radio_id(cfg, tmp_path / "scos.parquet", tmp_path / "out")
    assoc = pd.read_parquet(tmp_path / "out" / "radio_associations.parquet")
    acc = assoc[assoc["accepted"]]
    q = pd.Series(np.arange(len(radio)), index=radio["name"])[acc["radio_id"]].to_numpy()
    row = acc["help_id"].str[5:].astype(int).to_numpy()
    listed = np.isfinite(radio["opt_mag"].to_numpy())
    ref = _at20g.reference_ids(radio, ml)
    sc = _at20g.score(listed, ref, q, row, acc["reliability"].to_numpy())
    assert sc["n_listed_in_data"] >= 100
    assert sc["recovered_fraction"] >= 0.95, sc
    # Reported reliability within a few per cent of the measured agreement.
    assert abs(sc["mean_reliability"] - sc["agreement"]) <= 0.04, sc
    assert s["expected_false_ids"] == pytest.approx(
        s["n_ids"] * (1 - sc["mean_reliability"]), abs=1.0
    )


def test_hats_masterlist_is_rewritten_partition_by_partition_as_in_memory(small, tmp_path):
    d, _, _ = small
    cfg = load_radio_config(d / "radio.yaml")
    ml = read_hats_table(d / "ml")
    ml.drop(columns=["_healpix_29"]).to_parquet(tmp_path / "ml.parquet")
    a = run_radio_id(cfg, d / "ml", tmp_path / "a")  # HATS: never loaded whole
    b = run_radio_id(cfg, tmp_path / "ml.parquet", tmp_path / "b")  # one table in memory
    a.pop("outputs")
    b.pop("outputs")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    ta = read_hats_table(tmp_path / "a" / "masterlist").drop(columns=["_healpix_29"])
    tb = read_hats_table(tmp_path / "b" / "masterlist").drop(columns=["_healpix_29"])
    key = ["help_id"]
    pd.testing.assert_frame_equal(
        ta.sort_values(key).reset_index(drop=True),
        tb.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    # The input's rows and columns are untouched, in the same partitions.
    same = ta[ml.columns.drop("_healpix_29")].reset_index(drop=True)
    pd.testing.assert_frame_equal(same, ml.drop(columns=["_healpix_29"]).reset_index(drop=True))
    import hats

    cat = hats.read_hats(tmp_path / "a" / "masterlist")  # a valid HATS catalogue
    assert cat.catalog_info.total_rows == len(ml)
    assert sorted(p.pixel for p in cat.get_healpix_pixels()) == sorted(
        p.pixel for p in hats.read_hats(d / "ml").get_healpix_pixels()
    )
    ided = ta[ta["radio_id"].notna()]
    assoc = pd.read_parquet(tmp_path / "a" / "radio_associations.parquet")
    assert 0 < len(ided) <= a["n_ids"]
    assert set(ided["help_id"]) == set(assoc.loc[assoc["accepted"], "help_id"])
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "radio_associations.parquet"),
        pd.read_parquet(tmp_path / "b" / "radio_associations.parquet"),
    )
