"""The per-survey pipeline on seeded synthetic catalogues: recovery, columns, bad input, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from _catalog_synth import make_survey, survey_config

from skysense.catalog.config import load_config, parse_config
from skysense.catalog.io import read_catalogue, write_catalogue
from skysense.catalog.preparation import prepare_table
from skysense.catalog.prepare_io import prepare_survey, write_prepared
from skysense.cli.__main__ import main
from skysense.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def synth():
    return make_survey(n=3000, seed=6)


def _write(tmp_path, raw, cfg_changes=None, suffix=".fits", units=None):
    cat = tmp_path / f"cfhtls{suffix}"
    raw = raw.copy()
    raw.attrs["units"] = units or {"ALPHA_J2000": "deg", "DELTA_J2000": "deg", "FLUX_K": "nJy"}
    write_catalogue(raw, cat)
    cfg = survey_config(cat.name)
    for k, v in (cfg_changes or {}).items():
        cfg[k] = v
    path = tmp_path / "cfhtls.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_pipeline_recovers_truth(synth, tmp_path):
    raw, ref, truth = synth
    cfg = _write(tmp_path, raw)
    result = prepare_survey(cfg, reference=ref, plots_dir=tmp_path / "plots")
    t, prov = result.table, result.provenance
    expected = ["cfhtls_id", "cfhtls_ra", "cfhtls_dec", "stellarity"]
    for b, ap in (("megacam_u", True), ("ukidss_k", False)):
        expected += [f"m_{b}", f"merr_{b}"] + ([f"m_ap_{b}", f"merr_ap_{b}"] if ap else [])
        expected += [f"f_{b}", f"ferr_{b}"] + ([f"f_ap_{b}", f"ferr_ap_{b}"] if ap else [])
        expected += [f"flag_{b}"]
    expected += ["flag_cleaned", "flag_gaia", "flag_starmask"]
    assert list(t.columns) == expected
    # Duplicates: every planted copy goes (its id > n) and its original is flagged; chance
    # pairs of distinct objects within 0.3 arcsec (about one expected) may go too.
    n_dup = len(truth["dup_source_rows"])
    chance = prov["counts"]["duplicates_removed"] - n_dup
    assert 0 <= chance <= 3
    assert len(t) == truth["n"] - chance
    assert t["cfhtls_id"].max() <= truth["n"]
    cleaned_ids = set(t.loc[t["flag_cleaned"], "cfhtls_id"])
    assert set(truth["dup_source_rows"] + 1) <= cleaned_ids
    assert len(cleaned_ids) <= n_dup + chance
    # Astrometry: planted offset within 4 sigma.
    a = prov["astrometry"]
    assert abs(a["dra_cosdec_arcsec"] - truth["offset_arcsec"][0]) < 4 * a["dra_err_arcsec"]
    assert abs(a["ddec_arcsec"] - truth["offset_arcsec"][1]) < 4 * a["ddec_err_arcsec"]
    assert a["reference_propagated_to_epoch"] == 2008.5
    # Aperture correction: planted value within 4 sigma, and applied to m_ap and f_ap.
    ac = prov["aperture_corrections"]["megacam_u"]
    assert ac["applied"] and abs(ac["value_mag"] - truth["apcor_mag"]) < 4 * ac["error_mag"]
    star = t["stellarity"] > 0.9
    diff = (t["m_megacam_u"] - t["m_ap_megacam_u"])[star]
    assert abs(np.nanmedian(diff)) < 0.01
    np.testing.assert_allclose(
        t["f_ap_megacam_u"], 10 ** ((23.9 - t["m_ap_megacam_u"]) / 2.5), rtol=1e-9
    )
    # Photometry: nJy -> uJy, sentinels -> NaN, survey flags carried.
    k_ujy = raw.set_index("SeqNr").loc[t["cfhtls_id"], "FLUX_K"].to_numpy() * 1e-3
    np.testing.assert_allclose(t["f_ukidss_k"], k_ujy, rtol=1e-12)
    sentinel = raw.set_index("SeqNr").loc[t["cfhtls_id"], "MAG_AUTO_U"].to_numpy() == 99.0
    assert t["m_megacam_u"][sentinel].isna().all() and t["f_megacam_u"][sentinel].isna().all()
    flags = raw.set_index("SeqNr").loc[t["cfhtls_id"], "FLAGS"].to_numpy() != 0
    assert (t["flag_ukidss_k"].to_numpy() == flags).all()
    # flag_gaia: stars are 3 (positions agree to ~0.1"), most galaxies 0.
    is_star = truth["star"][t["cfhtls_id"].to_numpy() - 1]
    assert (t["flag_gaia"][is_star] == 3).mean() > 0.99
    assert (t["flag_gaia"][~is_star] == 0).mean() > 0.97
    # Outputs, provenance, MOC.
    assert (tmp_path / "plots" / "cfhtls_astrometry.png").exists()
    assert (tmp_path / "plots" / "cfhtls_apcor_megacam_u.png").exists()
    curve = ac["curve"]  # binned stars' m_total - m_ap: flat at the planted value
    assert len(curve["mag"]) >= 5
    assert np.median(curve["median"]) == pytest.approx(truth["apcor_mag"], abs=0.02)
    assert prov["input"]["sha256"] and len(prov["input"]["sha256"]) == 64
    assert 0.09 <= prov["moc"]["area_deg2"] < 0.2
    paths = write_prepared(result, tmp_path / "out" / "cfhtls_prepared.parquet")
    back = read_catalogue(paths["table"])
    assert list(back.columns) == expected and len(back) == len(t)
    assert back.attrs["units"]["f_megacam_u"] == "uJy"
    saved = json.loads(paths["provenance"].read_text())
    assert saved["output"]["sha256"] and saved["config"]["survey"] == "cfhtls"


def test_vega_and_flux_units(synth):
    raw, _, _ = synth
    cfg = survey_config()
    cfg["bands"][0].update(system="Vega", vega_to_ab=0.7)
    cfg["bands"][1]["flux_unit"] = "mJy"
    cfg["aperture_correction"] = False
    t = prepare_table(raw, parse_config(cfg)).table
    row = raw.iloc[0]
    assert t["m_megacam_u"].iloc[0] == pytest.approx(row["MAG_AUTO_U"] + 0.7)
    assert t["f_ukidss_k"].iloc[0] == pytest.approx(row["FLUX_K"] * 1e3)
    assert t["m_ukidss_k"].iloc[0] == pytest.approx(23.9 - 2.5 * np.log10(row["FLUX_K"] * 1e3))


def test_cuts_and_fixed_aperture_correction(synth):
    raw, _, _ = synth
    cfg = survey_config()
    cfg["cuts"] = ["FLAGS < 4", "CLASS_STAR >= 0"]
    cfg["bands"][0]["aperture_correction"] = -0.5
    res = prepare_table(raw, parse_config(cfg))
    assert res.provenance["cuts"][0]["removed"] == int((raw["FLAGS"] >= 4).sum())
    assert res.provenance["aperture_corrections"]["megacam_u"]["value_mag"] == -0.5
    assert "flag_gaia" not in res.table  # no reference given
    row = raw.set_index("SeqNr").loc[res.table["cfhtls_id"].iloc[0]]
    assert res.table["m_ap_megacam_u"].iloc[0] == pytest.approx(row["MAG_APER_U"] - 0.5)


# ---------------------------------------------------------------- bad input
def _small():
    raw, _, _ = make_survey(n=60, dup_fraction=0.0, seed=9)
    return raw


def test_missing_column_names_key_and_suggests(tmp_path):
    cfg = survey_config("cfhtls.fits")
    cfg["bands"][0]["mag_err"] = "MAGERR_AUTO_X"
    with pytest.raises(ConfigError) as exc:
        prepare_table(_small(), parse_config(cfg, path=tmp_path / "c.yaml"))
    assert exc.value.key == "bands[0].mag_err"
    assert "not in cfhtls.fits (did you mean 'MAGERR_AUTO_U'?)" in str(exc.value)


def test_non_numeric_value_names_column_and_row(tmp_path):
    raw = _small()
    raw["MAG_AUTO_U"] = raw["MAG_AUTO_U"].astype(object)
    raw.loc[5, "MAG_AUTO_U"] = "21.3x"
    cat = tmp_path / "cfhtls.csv"
    raw.to_csv(cat, index=False)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(survey_config("cfhtls.csv")))
    with pytest.raises(InputError) as exc:
        prepare_survey(tmp_path / "c.yaml")
    assert (exc.value.column, exc.value.row) == ("MAG_AUTO_U", 5)
    assert "cfhtls.csv" in str(exc.value) and "'21.3x'" in str(exc.value)


@pytest.mark.parametrize(
    "column, value, row, text",
    [
        ("ALPHA_J2000", np.nan, 7, "NaN"),
        ("ALPHA_J2000", 360.0, 3, "outside [0, 360)"),
        ("ALPHA_J2000", -0.1, 3, "outside"),
        ("DELTA_J2000", 91.0, 11, "outside [-90, 90]"),
        ("CLASS_STAR", 1.5, 2, "stellarity"),
    ],
)
def test_bad_positions_name_row(column, value, row, text):
    raw = _small()
    raw.loc[row, column] = value
    with pytest.raises(InputError) as exc:
        prepare_table(raw, parse_config(survey_config()))
    assert (exc.value.column, exc.value.row) == (column, row)
    assert text in str(exc.value)


def test_empty_duplicate_ids_and_cut_everything():
    cfg = parse_config(survey_config())
    with pytest.raises(InputError, match="empty"):
        prepare_table(_small().iloc[:0], cfg)
    raw = _small()
    raw.loc[4, "SeqNr"] = raw.loc[1, "SeqNr"]
    with pytest.raises(InputError, match="not unique") as exc:
        prepare_table(raw, cfg)
    assert exc.value.row == 4
    c = survey_config()
    c["cuts"] = ["CLASS_STAR > 2"]
    with pytest.raises(InputError, match="no rows left"):
        prepare_table(_small(), parse_config(c))


def test_unknown_band_is_a_config_error(tmp_path):
    cfg = survey_config()
    cfg["bands"][1]["name"] = "ukids_k"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"bands\[1\].name: unknown band 'ukids_k'.*ukidss_k"):
        load_config(path)


@pytest.mark.parametrize(
    "units, column, text",
    [
        ({"FLUX_K": "mJy"}, "FLUX_K", "disagrees with flux_unit 'nJy'"),
        ({"FLUX_K": "mag"}, "FLUX_K", "reads it as a flux"),
        ({"MAG_AUTO_U": "uJy"}, "MAG_AUTO_U", "reads it as a magnitude"),
        ({"ALPHA_J2000": "mag"}, "ALPHA_J2000", "not an angle"),
    ],
)
def test_mismatched_units(tmp_path, units, column, text):
    path = _write(tmp_path, _small(), units=units)
    with pytest.raises(InputError) as exc:
        prepare_survey(path)
    assert exc.value.column == column and text in str(exc.value)
    assert "cfhtls.fits" in str(exc.value)


def test_positions_in_radians_are_converted(tmp_path):
    raw = _small()
    deg = raw[["ALPHA_J2000", "DELTA_J2000"]].to_numpy().copy()
    raw["ALPHA_J2000"] = np.radians(raw["ALPHA_J2000"])
    raw["DELTA_J2000"] = np.radians(raw["DELTA_J2000"])
    path = _write(tmp_path, raw, units={"ALPHA_J2000": "rad", "DELTA_J2000": "rad"})
    t = prepare_survey(path).table
    np.testing.assert_allclose(t["cfhtls_ra"], deg[:, 0], rtol=1e-12)


# ---------------------------------------------------------------- command line
def test_cli_prepare_and_moc(tmp_path, synth, capsys):
    raw, ref, _ = synth
    cfg = _write(tmp_path, raw)
    ref_path = tmp_path / "gaia.parquet"
    ref.to_parquet(ref_path)
    out = tmp_path / "prep" / "cfhtls.fits"
    argv = ["catalog", "prepare", str(cfg), "--out", str(out), "--reference", str(ref_path)]
    argv += ["--moc-out", str(tmp_path / "cov.fits"), "--plots", str(tmp_path / "plots")]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "duplicates removed" in text and "astrometry offset" in text
    assert out.exists() and (tmp_path / "cov.fits").exists()
    prov = json.loads((tmp_path / "prep" / "cfhtls.fits.provenance.json").read_text())
    assert prov["reference"]["sha256"] and prov["counts"]["final"] >= 2997
    t = read_catalogue(out)
    assert t.attrs["units"]["cfhtls_ra"] == "deg"
    assert (
        main(
            [
                "catalog",
                "moc",
                str(tmp_path / "cov.fits"),
                str(cfg),
                "--op",
                "intersection",
                "--out",
                str(tmp_path / "both.fits"),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["area_deg2"] == pytest.approx(summary["inputs"][0]["area_deg2"], rel=0.05)
    # Without --json: readable lines like the other verbs, the same numbers.
    argv = ["catalog", "moc", str(tmp_path / "cov.fits"), str(cfg), "--op", "intersection"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"intersection of 2 coverages: {summary['area_deg2']:.4f} deg2"
    assert lines[1:] == [
        f"  {tmp_path / 'cov.fits'}: {summary['inputs'][0]['area_deg2']:.4f} deg2",
        f"  {cfg}: {summary['inputs'][1]['area_deg2']:.4f} deg2",
    ]


def test_cli_error_is_one_line_and_writes_nothing(tmp_path, capsys):
    raw = _small()
    raw.loc[3, "DELTA_J2000"] = -95.0
    cfg = _write(tmp_path, raw)
    out = tmp_path / "prep" / "x.parquet"
    assert main(["catalog", "prepare", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "column 'DELTA_J2000', row 3" in err[0]
    assert not out.exists()
    leftovers = list((tmp_path / "prep").iterdir()) if (tmp_path / "prep").exists() else []
    assert leftovers == []


def test_reference_file_is_checked(tmp_path):
    bad = pd.DataFrame({"ra": [1.0, 2.0], "dec": [0.0, 95.0]})
    bad.to_parquet(tmp_path / "g.parquet")
    from skysense.catalog.prepare_io import read_reference

    with pytest.raises(InputError, match="outside") as exc:
        read_reference(tmp_path / "g.parquet")
    assert exc.value.row == 1


@pytest.mark.parametrize("center", [(0.0, 2.0), (150.0, 80.0), (359.95, -60.0)])
def test_pipeline_astrometry_across_ra_wrap_and_high_declination(center):
    raw, ref, truth = make_survey(
        n=1500, center_ra=center[0], center_dec=center[1], offset_arcsec=(-0.35, 0.15), seed=8
    )
    stages = []
    res = prepare_table(raw, parse_config(survey_config()), reference=ref, progress=stages.append)
    a = res.provenance["astrometry"]
    assert abs(a["dra_cosdec_arcsec"] + 0.35) < 4 * a["dra_err_arcsec"]
    assert abs(a["ddec_arcsec"] - 0.15) < 4 * a["ddec_err_arcsec"]
    ra = res.table["cfhtls_ra"]
    assert ((ra >= 0) & (ra < 360)).all()
    is_star = truth["star"][res.table["cfhtls_id"].to_numpy() - 1]
    assert (res.table["flag_gaia"][is_star] == 3).mean() > 0.99
    from skysense.catalog.preparation import STAGES

    assert stages == list(STAGES)


def test_unlisted_sentinel_is_reported():
    raw = _small()
    raw.loc[6, "MAG_AUTO_U"] = -99.0
    cfg = survey_config()
    cfg["bands"][0]["missing"] = [99.0]  # -99 forgotten
    with pytest.raises(InputError, match="implausible.*'missing:'") as exc:
        prepare_table(raw, parse_config(cfg))
    assert (exc.value.column, exc.value.row) == ("MAG_AUTO_U", 6)


def test_cli_missing_reference_is_one_line(tmp_path, capsys):
    cfg = _write(tmp_path, _small())
    argv = ["catalog", "prepare", str(cfg), "--out", str(tmp_path / "o.parquet")]
    assert main(argv + ["--reference", str(tmp_path / "nope.parquet")]) == 2
    assert "nope.parquet: file not found" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


def test_cgs_flux_unit_matches_file_unit(tmp_path):
    raw = _small()
    raw["FLUX_K"] = raw["FLUX_K"] * 1e-32  # nJy -> erg/s/cm2/Hz
    raw["FLUXERR_K"] = raw["FLUXERR_K"] * 1e-32
    cfg = survey_config("cfhtls.fits")
    cfg["bands"][1]["flux_unit"] = "erg/s/cm2/Hz"
    cat = tmp_path / "cfhtls.fits"
    raw.attrs["units"] = {"FLUX_K": "erg s-1 cm-2 Hz-1", "FLUXERR_K": "erg s-1 cm-2 Hz-1"}
    write_catalogue(raw, cat)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    t = prepare_survey(tmp_path / "c.yaml").table
    np.testing.assert_allclose(t["f_ukidss_k"], raw["FLUX_K"] * 1e29, rtol=1e-9)


def test_write_prepared_is_all_or_nothing(tmp_path, monkeypatch):
    res = prepare_table(_small(), parse_config(survey_config()))
    import skysense.catalog.prepare_io as prep

    def broken(moc, path):
        raise OSError("disk full")

    monkeypatch.setattr(prep, "write_moc", broken)
    with pytest.raises(OSError, match="disk full"):
        write_prepared(res, tmp_path / "out" / "c.parquet")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    monkeypatch.undo()
    paths = write_prepared(res, tmp_path / "out" / "c.parquet")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths.values()
    )


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".csv", ".ecsv", ".parquet"])
def test_every_input_format_gives_the_same_table(tmp_path, suffix):
    raw = _small()
    base = prepare_table(raw, parse_config(survey_config())).table
    got = prepare_survey(_write(tmp_path, raw, suffix=suffix)).table
    assert list(got.columns) == list(base.columns)
    for col in base.columns:
        np.testing.assert_array_equal(got[col].to_numpy(), base[col].to_numpy(), err_msg=col)


def test_reference_elsewhere_and_unknown_epoch(tmp_path):
    raw, ref, _ = make_survey(n=400, dup_fraction=0.0, seed=12)
    far = ref.assign(ra=(ref["ra"] + 90.0) % 360.0)
    cfg = survey_config()
    res = prepare_table(raw, parse_config(cfg), reference=far)
    a = res.provenance["astrometry"]
    assert a["applied"] is False and a["n_matches"] == 0
    assert (res.table["flag_gaia"] == 0).all()
    np.testing.assert_array_equal(res.table["cfhtls_ra"], raw["ALPHA_J2000"])
    # Without an epoch the reference is used at its own epoch (recorded as not propagated).
    cfg.pop("epoch")
    res = prepare_table(raw, parse_config(cfg), reference=ref)
    assert res.provenance["astrometry"]["reference_propagated_to_epoch"] is None
    assert res.provenance["astrometry"]["applied"]
    from skysense.catalog.plots import plot_offsets

    plot_offsets((np.array([]), np.array([])), (np.array([]), np.array([])), tmp_path / "e.png")
    assert (tmp_path / "e.png").exists()


def test_format_key_overrides_the_suffix(tmp_path):
    raw = _small()
    raw.to_csv(tmp_path / "cat.dat", index=False)
    cfg = survey_config("cat.dat")
    cfg["format"] = "csv"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert len(prepare_survey(tmp_path / "c.yaml").table) == len(raw)
