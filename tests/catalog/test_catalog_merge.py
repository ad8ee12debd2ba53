"""Merging: the sequential greedy merge against a plain reference, rules, identifiers, config,
the end-to-end run (synthetic truth), and the CLI verbs."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from skysense.catalog.bayes import (
    bayes_factor,
    log_bayes_factor,
    match_probability,
    prior_from_counts,
)
from skysense.catalog.masterlist import association_table, help_ids, object_keys
from skysense.catalog.match import angular_sep_arcsec
from skysense.catalog.merge import assemble, associate, band_columns
from skysense.catalog.merge_config import load_merge_config, parse_merge_config
from skysense.catalog.merge_io import run_merge
from skysense.catalog.radius import (
    separation_edges,
    suggest_radius,
    suggest_radius_from_counts,
    suggest_radius_from_separations,
)
from skysense.cli.__main__ import main
from skysense.errors import ConfigError, InputError


def reference_merge(positions, radii):
    """Plain-Python HELP merge: per step all pairs within r, nearest first, one to one."""
    objects = [{"ra": r, "dec": d, "rows": {0: i}} for i, (r, d) in enumerate(zip(*positions[0]))]
    flagged = set()
    for k in range(1, len(positions)):
        ra_k, dec_k = positions[k]
        cand = []
        for o, obj in enumerate(objects):
            for j in range(len(ra_k)):
                s = float(angular_sep_arcsec(obj["ra"], obj["dec"], ra_k[j], dec_k[j]))
                if s <= radii[k]:
                    cand.append((s, o, j))
        n_o = pd.Series([c[1] for c in cand]).value_counts().to_dict() if cand else {}
        n_j = pd.Series([c[2] for c in cand]).value_counts().to_dict() if cand else {}
        flagged |= {o for o, c in n_o.items() if c > 1}
        used_o, used_j = set(), set()
        for _s, o, j in sorted(cand):
            if o in used_o or j in used_j:
                continue
            used_o.add(o)
            used_j.add(j)
            objects[o]["rows"][k] = j
            if n_j[j] > 1:
                flagged.add(o)
        for j in range(len(ra_k)):
            if j not in used_j:
                if n_j.get(j, 0) > 1:
                    flagged.add(len(objects))
                objects.append({"ra": ra_k[j], "dec": dec_k[j], "rows": {k: j}})
    return objects, flagged


def _random_catalogues(seed, n_true=60, k=3):
    rng = np.random.default_rng(seed)
    ra = 10 + rng.uniform(0, 30 / 3600, n_true)
    dec = -5 + rng.uniform(0, 30 / 3600, n_true)
    out = []
    for _ in range(k):
        keep = rng.uniform(size=n_true) < 0.7
        out.append(
            (
                ra[keep] + rng.normal(0, 0.5 / 3600, keep.sum()),
                dec[keep] + rng.normal(0, 0.5 / 3600, keep.sum()),
            )
        )
    return out


@pytest.mark.parametrize("seed", range(6))
def test_associate_equals_reference(seed):
    positions = _random_catalogues(seed)
    radii = [0.0, 1.5, 2.0]
    assoc = associate(positions, radii, ["a", "b", "c"])
    objects, flagged = reference_merge(positions, radii)
    assert len(assoc) == len(objects)
    for o, obj in enumerate(objects):
        expected = [obj["rows"].get(k, -1) for k in range(3)]
        assert assoc.rows[o].tolist() == expected
        np.testing.assert_allclose([assoc.ra[o], assoc.dec[o]], [obj["ra"], obj["dec"]])
    assert set(np.flatnonzero(assoc.flag_merged).tolist()) == flagged


def test_associate_hand_case():
    d = 1 / 3600
    a = (np.array([10.0, 10.01]), np.array([0.0, 0.0]))
    # b0 sits 0.3" from a0 and 0.5" from nothing else; b1 is 0.4" from a0 too: a0 has 2 candidates.
    b = (np.array([10.0 + 0.3 * d, 10.0 - 0.4 * d, 20.0]), np.array([0.0, 0.0, 0.0]))
    assoc = associate([a, b], [0.0, 1.0], ["a", "b"])
    assert assoc.rows.tolist() == [[0, 0], [1, -1], [-1, 1], [-1, 2]]
    assert assoc.flag_merged.tolist() == [True, False, False, False]
    assert assoc.origin.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(assoc.sep_arcsec[0, 1], 0.3, rtol=1e-6)
    assert assoc.ra[0] == 10.0  # position from the highest-priority catalogue


def _frame(survey, ids, f, ferr):
    return pd.DataFrame({f"{survey}_id": ids, "f_x_r": f, "ferr_x_r": ferr,
                         "m_x_r": 23.9 - 2.5 * np.log10(f), "flag_x_r": [False] * len(ids)})  # fmt: skip


def test_same_filter_rules_and_origin():
    pos = [(np.array([1.0, 2.0]), np.array([0.0, 0.0]))] * 2
    assoc = associate(pos, [0.0, 1.0], ["p", "q"])
    frames = [
        _frame("p", [1, 2], [10.0, np.nan], [2.0, 1.0]),
        _frame("q", [7, 8], [11.0, 12.0], [1.0, 3.0]),
    ]
    ml, shared = assemble(assoc, frames, rule="priority")
    assert shared == {"x_r": ["p", "q"]}
    assert ml["f_x_r"].tolist() == [10.0, 12.0]  # p where it measures, else q
    assert ml["origin_x_r"].tolist() == ["p", "q"]
    ml, _ = assemble(assoc, frames, rule="lowest_error")
    assert ml["f_x_r"].tolist() == [11.0, 12.0]
    assert ml["ferr_x_r"].tolist() == [1.0, 3.0]
    assert ml["origin_x_r"].tolist() == ["q", "q"]
    assert ml["p_id"].tolist() == [1, 2] and ml["q_id"].tolist() == [7, 8]
    with pytest.raises(InputError, match="rule"):
        assemble(assoc, frames, rule="mean")


def test_band_columns():
    cols = ["m_ap_megacam_g", "m_megacam_g", "merr_ap_megacam_g", "f_megacam_g", "flag_megacam_g",
            "flag_gaia", "flag_merged", "m_ukidss_k"]  # fmt: skip
    b = band_columns(cols)
    assert set(b) == {"megacam_g", "ukidss_k"}
    assert b["megacam_g"]["m_ap"] == "m_ap_megacam_g" and b["megacam_g"]["flag"] == "flag_megacam_g"


def test_help_ids_format_truncation_and_uniqueness():
    ra = np.array([150.1, 150.1, 0.0, 359.9999999999, 15.0])
    dec = np.array([2.2, 2.2, -0.00000001, -89.5, 30.0 + 1 / 3600])
    keys = object_keys(ra, dec)
    ids = help_ids(ra, dec, keys)
    pattern = re.compile(r"^HELP_J\d{6}\.\d{3}[+-]\d{6}\.\d{3}(_\d+)?$")
    assert all(pattern.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids[0] == "HELP_J100024.000+021200.000"
    assert ids[1] == "HELP_J100024.000+021200.000_2"  # same position: second gets a suffix
    assert ids[2] == "HELP_J000000.000+000000.000"  # -0.036 mas truncates to zero: no "-" sign
    assert ids[3].startswith("HELP_J235959.999-893000.000")
    assert ids[4] == "HELP_J010000.000+300001.000"
    assert np.all(keys > 0) and len(set(keys.tolist())) == len(keys)
    assert keys[1] == keys[0] + 1  # same 0.8 mas cell: counter
    # Stable: the same input gives the same keys.
    np.testing.assert_array_equal(object_keys(ra, dec), keys)


def test_association_table():
    pos = [
        (np.array([1.0]), np.array([0.0])),
        (np.array([1.0 + 0.2 / 3600, 5.0]), np.array([0.0, 0.0])),
    ]
    assoc = associate(pos, [0.0, 1.0], ["a", "b"])
    keys = object_keys(assoc.ra, assoc.dec)
    at = association_table(assoc, keys, [np.array(["x"]), np.array([10, 11])])
    assert at.columns.tolist() == [
        "object_key",
        "survey",
        "source_id",
        "separation_arcsec",
        "ambiguity",
        "is_position",
    ]
    rows = {(r.survey, r.source_id): r for r in at.itertuples()}
    assert rows[("b", "10")].object_key == rows[("a", "x")].object_key
    assert abs(rows[("b", "10")].separation_arcsec - 0.2) < 1e-6
    assert rows[("b", "11")].is_position and not rows[("b", "10")].is_position


def test_bayes_factor_against_formula_and_integral():
    from scipy import integrate

    sep, s1, s2 = 0.4, 0.2, 0.3
    rad = np.pi / 180 / 3600
    var = (s1**2 + s2**2) * rad**2
    by_hand = 2 / var * np.exp(-((sep * rad) ** 2) / (2 * var))
    np.testing.assert_allclose(bayes_factor(sep, s1, s2), by_hand, rtol=1e-12)
    # B = 4 pi * integral over the common position m of N(x1; m, s1) N(x2; m, s2) (flat sky).
    g = lambda x, y, s: np.exp(-(x**2 + y**2) / (2 * s**2)) / (2 * np.pi * s**2)  # noqa: E731
    val, _ = integrate.dblquad(
        lambda y, x: g(x, y, s1) * g(x - sep, y, s2), -3, 3, -3, 3, epsabs=1e-13
    )
    np.testing.assert_allclose(by_hand, 4 * np.pi * val / rad**2, rtol=1e-6)
    lb = log_bayes_factor(np.array([0.0, 5.0]), 0.2, 0.3)
    prior = prior_from_counts(1000, 10**6, 10**6)
    p = match_probability(lb, prior)
    np.testing.assert_allclose(p, 1 / (1 + (1 - prior) / (np.exp(lb) * prior)), rtol=1e-9)
    assert p[0] > 0.99 and p[1] < 1e-3
    with pytest.raises(InputError):
        log_bayes_factor(1.0, 0.0, 0.1)


def test_radius_suggestion_tracks_positional_errors():
    rng = np.random.default_rng(5)
    n = 4000
    ra = rng.uniform(0, 0.5, n)
    dec = rng.uniform(0, 0.5, n)
    sigma = 0.25  # arcsec per coordinate, combined
    ra2 = ra + rng.normal(0, sigma / 3600, n)
    dec2 = dec + rng.normal(0, sigma / 3600, n)
    # plus an unrelated population
    ra2 = np.concatenate([ra2, rng.uniform(0, 0.5, 4 * n)])
    dec2 = np.concatenate([dec2, rng.uniform(0, 0.5, 4 * n)])
    s = suggest_radius(ra, dec, ra2, dec2, max_radius_arcsec=5.0)
    # Rayleigh: 99.9 per cent of true pairs lie within 3.7 sigma.
    assert 2.5 * sigma <= s.radius_arcsec <= 6 * sigma
    assert 0.97 * n <= s.n_true <= 1.03 * n
    with pytest.raises(InputError, match="no significant excess"):
        suggest_radius_from_separations(rng.uniform(0, 5, 5000) ** 0.5 * 5**0.5, 5.0)


def test_radius_from_separations_passes_its_options_to_the_counts():
    rng = np.random.default_rng(11)
    # 3000 true pairs (Rayleigh, sigma 0.3") over 20000 chance pairs (density rising as r)
    sep = np.concatenate([rng.rayleigh(0.3, 3000), 5.0 * np.sqrt(rng.uniform(size=20000))])
    counts, _ = np.histogram(sep, bins=separation_edges(5.0, 40))
    got = suggest_radius_from_separations(sep, 5.0, n_bins=40, background_from=0.5, nsigma=2.0)
    want = suggest_radius_from_counts(counts, 5.0, background_from=0.5, nsigma=2.0)
    assert got.radius_arcsec == want.radius_arcsec and got.n_true == want.n_true
    assert np.array_equal(got.counts, counts)
    # the options reach the test for an excess: no excess is 1e4 sigma above chance
    with pytest.raises(InputError, match="no significant excess"):
        suggest_radius_from_separations(sep, 5.0, n_bins=40, nsigma=1e4)
    with pytest.raises(TypeError, match="n_sigma"):
        suggest_radius_from_separations(sep, 5.0, n_sigma=2.0)


def synth_prepared(tmp_path, seed=0, n_true=2500):
    """Prepared-style catalogues of a known population (three surveys, errors 0.1-0.3")."""
    rng = np.random.default_rng(seed)
    ra = 150 + rng.uniform(0, 0.15, n_true)
    dec = 2 + rng.uniform(0, 0.15, n_true)
    specs = [("alpha", ("megacam_g", "megacam_r"), 0.7, 0.1), ("beta", ("megacam_r", "ukidss_k"), 0.7, 0.15),
             ("gamma", ("irac_i1",), 0.6, 0.3)]  # fmt: skip
    truth, files = [], []
    for name, bands, frac, err in specs:
        sel = np.flatnonzero(rng.uniform(size=n_true) < frac)
        n = len(sel)
        r = ra[sel] + rng.normal(0, err / 3600, n) / np.cos(np.radians(dec[sel]))
        d = dec[sel] + rng.normal(0, err / 3600, n)
        ids = rng.permutation(np.arange(5000, 5000 + n))
        df = pd.DataFrame({f"{name}_id": ids, f"{name}_ra": r, f"{name}_dec": d})
        for b in bands:
            f = rng.lognormal(2, 1, n)
            df[f"m_{b}"] = 23.9 - 2.5 * np.log10(f)
            df[f"merr_{b}"] = 0.05
            df[f"f_{b}"] = f
            df[f"ferr_{b}"] = 0.05 * f
            df[f"flag_{b}"] = False
        df["stellarity"] = rng.uniform(size=n)
        df["flag_gaia"] = np.zeros(n, dtype=np.int16)
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
        files.append(tmp_path / f"{name}.parquet")
        truth.append(pd.DataFrame({"survey": name, "source_id": ids.astype(str), "object_id": sel}))
    return files, pd.concat(truth, ignore_index=True)


def _pairs(df, key):
    out = set()
    for _, g in df.groupby(key):
        ids = list(zip(g["survey"], g["source_id"]))
        out |= {
            tuple(sorted((a, b))) for i, a in enumerate(ids) for b in ids[i + 1 :] if a[0] != b[0]
        }
    return out


def completeness_purity(assoc_table, truth):
    j = assoc_table.merge(truth, on=["survey", "source_id"], how="inner")
    found = _pairs(j, "object_key")
    true = _pairs(j, "object_id")
    good = len(found & true)
    return good / len(true), good / len(found)


def test_run_merge_recovers_truth(tmp_path):
    """Acceptance on synthetic catalogues with known truth (the simulated-field version is in
    test_catalog_merge_sim.py)."""
    files, truth = synth_prepared(tmp_path)
    cfg = {"catalogues": [{"file": f.name} for f in files], "radius_arcsec": "auto",
           "same_filter_rule": "lowest_error", "bayes": True, "field": "synthetic",
           "output": {"fits": "ml.fits"}}  # fmt: skip
    cfg["catalogues"][0]["position_error_arcsec"] = 0.1
    cfg["catalogues"][1]["position_error_arcsec"] = 0.15
    cfg["catalogues"][2]["position_error_arcsec"] = 0.3
    (tmp_path / "merge.yaml").write_text(yaml.safe_dump(cfg))
    summary = run_merge(load_merge_config(tmp_path / "merge.yaml"), tmp_path / "out")
    out = tmp_path / "out"
    at = pd.read_parquet(out / "associations")
    completeness, purity = completeness_purity(at, truth)
    assert completeness >= 0.99 and purity >= 0.99, (completeness, purity)
    ml = pd.read_parquet(out / "masterlist" / "dataset")
    assert len(ml) == summary["n_objects"]
    assert ml["help_id"].is_unique and ml["object_key"].is_unique
    for col in ("ra", "dec", "m_megacam_r", "origin_megacam_r", "flag_merged", "flag_optnir_obs",
                "flag_optnir_det", "alpha_id", "beta_id", "gamma_id"):  # fmt: skip
        assert col in ml.columns
    # Every input row appears exactly once in the association table.
    assert len(at) == sum(len(pd.read_parquet(f)) for f in files)
    assert at.groupby("survey").size().to_dict() == {
        s: len(pd.read_parquet(f)) for s, f in zip(("alpha", "beta", "gamma"), files)
    }
    matched = at[~at["is_position"]]
    assert matched["match_probability"].median() > 0.9
    prov = json.loads((out / "provenance.json").read_text())
    assert set(prov["radii_arcsec"]) == {"beta", "gamma"}
    assert all(len(i["sha256"]) == 64 for i in prov["inputs"])
    assert "numpy" in prov["package_versions"]
    assert (out / "radius_beta.png").stat().st_size > 1000
    assert (out / "ml.fits").is_file()


@pytest.mark.parametrize(
    "raw, key",
    [
        ({}, "catalogues"),
        ({"catalogues": [{"file": "nope.parquet"}]}, "catalogues[0].file"),
        ({"catalogues": ["a.parquet"], "radius_arcsec": -1}, "radius_arcsec"),
        ({"catalogues": ["a.parquet"], "radius_arcsec": "big"}, "radius_arcsec"),
        ({"catalogues": ["a.parquet"], "same_filter_rule": "mean"}, "same_filter_rule"),
        ({"catalogues": [{"file": "a.parquet", "colour": 1}]}, "catalogues[0].colour"),
        ({"catalogues": ["a.parquet"], "output": {"fits": "x.csv"}}, "output.fits"),
        ({"catalogues": ["a.parquet"], "bayes": "yes"}, "bayes"),
        ({"catalogues": ["a.parquet"], "extra": 1}, "extra"),
    ],
)
def test_config_errors_name_key_and_file(tmp_path, raw, key):
    (tmp_path / "a.parquet").write_bytes(b"")
    path = tmp_path / "merge.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_merge_config(path)
    assert key in str(err.value) and "merge.yaml" in str(err.value)


def test_config_defaults(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"")
    cfg = parse_merge_config(
        {"catalogues": ["a.parquet", {"file": "a.parquet", "radius_arcsec": 2}]}, base_dir=tmp_path
    )
    assert (
        cfg.step_radius(1) == 2.0
        and cfg.radius_arcsec == 1.0
        and cfg.same_filter_rule == "priority"
    )


def test_cli_merge_crossmatch_and_errors(tmp_path, capsys):
    files, _ = synth_prepared(tmp_path, n_true=400)
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump({"catalogues": [f.name for f in files], "radius_arcsec": 1.0})
    )
    assert (
        main(
            [
                "catalog",
                "merge",
                str(tmp_path / "m.yaml"),
                "--out",
                str(tmp_path / "o"),
                "--fits",
                str(tmp_path / "ml.fits"),
            ]
        )
        == 0
    )
    assert "objects written" in capsys.readouterr().out
    assert (tmp_path / "ml.fits").is_file()
    assert (
        main(
            [
                "catalog",
                "crossmatch",
                str(files[0]),
                str(files[1]),
                "--radius",
                "1",
                "--out",
                str(tmp_path / "x.parquet"),
            ]
        )
        == 0
    )
    x = pd.read_parquet(tmp_path / "x.parquet")
    assert x["separation_arcsec"].max() <= 1.0 and x["row_a"].is_unique and x["row_b"].is_unique
    assert (
        main(
            [
                "catalog",
                "suggest-radius",
                str(files[0]),
                str(files[1]),
                "--plot",
                str(tmp_path / "r.png"),
            ]
        )
        == 0
    )
    assert "suggested radius" in capsys.readouterr().out
    # Bad input: one line naming file, column and row; nothing written.
    bad = pd.read_parquet(files[1])
    bad.loc[7, "beta_dec"] = 95.0
    bad.to_parquet(tmp_path / "bad.parquet")
    (tmp_path / "bad.yaml").write_text(
        yaml.safe_dump({"catalogues": [files[0].name, "bad.parquet"]})
    )
    assert (
        main(["catalog", "merge", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o2")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.parquet" in err and "beta_dec" in err and "row 7" in err
    assert not (tmp_path / "o2").exists()
    assert (
        main(
            [
                "catalog",
                "crossmatch",
                str(files[0]),
                str(files[1]),
                "--radius",
                "0",
                "--out",
                str(tmp_path / "y.parquet"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "y.parquet").exists()


def test_toml_config_and_hats_input(tmp_path):
    from skysense.catalog.hats_io import write_hats

    files, _ = synth_prepared(tmp_path, n_true=300)
    beta = pd.read_parquet(files[1])
    write_hats(beta, tmp_path / "beta_hats", ra_column="beta_ra", dec_column="beta_dec")
    (tmp_path / "m.toml").write_text(
        'radius_arcsec = 1.0\nsame_filter_rule = "priority"\n'
        '[[catalogues]]\nfile = "alpha.parquet"\n'
        '[[catalogues]]\nfile = "beta_hats"\nsurvey = "beta"\n'
    )
    config = load_merge_config(tmp_path / "m.toml")
    run_merge(config, tmp_path / "a")
    (tmp_path / "m2.yaml").write_text(
        yaml.safe_dump({"catalogues": ["alpha.parquet", "beta.parquet"], "radius_arcsec": 1.0})
    )
    run_merge(load_merge_config(tmp_path / "m2.yaml"), tmp_path / "b")
    a = (
        pd.read_parquet(tmp_path / "a" / "masterlist" / "dataset")
        .sort_values("object_key")
        .reset_index(drop=True)
    )
    b = (
        pd.read_parquet(tmp_path / "b" / "masterlist" / "dataset")
        .sort_values("object_key")
        .reset_index(drop=True)
    )
    # Rows of a HATS input come in spatial order, so the merge order (and help_id suffixes,
    # if any) may differ; positions, photometry and associations do not.
    cols = ["ra", "dec", "f_megacam_r", "alpha_id", "beta_id", "flag_merged"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    with pytest.raises(ConfigError, match="bad.toml: syntax error"):
        (tmp_path / "bad.toml").write_text("radius_arcsec = [1\n")
        load_merge_config(tmp_path / "bad.toml")
