"""Acceptance: prepare every simulated survey (skysense.sim) with its own YAML configuration
and compare with the simulation truth: astrometric offsets, aperture corrections, flag_gaia,
photometry and coverage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from skysense.catalog.moc import in_moc
from skysense.catalog.prepare_io import prepare_survey
from skysense.sim import field as sim_field


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    out = tmp_path_factory.mktemp("simfield") / "field"
    manifest = sim_field.write_field(out, seed=3, area_deg2=0.25, maps=(), progress=False)
    rows = pd.read_parquet(out / "truth" / "catalogue_rows.parquet")
    objects = pd.read_parquet(out / "truth" / "objects.parquet").set_index("object_id")
    prepared = {
        name: prepare_survey(out / s["config"], reference=out / manifest["reference"])
        for name, s in manifest["surveys"].items()
    }
    return out, manifest, rows, objects, prepared


def _truth_rows(name, table, rows):
    r = rows[rows["survey"] == name].set_index("source_id")
    ids = table[f"{name}_id"].astype(str)
    return r.loc[ids, "object_id"].to_numpy(), r.loc[ids, "is_duplicate"].to_numpy()


def test_every_survey_is_prepared(field):
    _, manifest, _, _, prepared = field
    assert set(prepared) == set(manifest["surveys"]) and len(prepared) >= 4
    for name, res in prepared.items():
        t = res.table
        assert {f"{name}_id", f"{name}_ra", f"{name}_dec", "flag_gaia"} <= set(t.columns)
        for band in manifest["surveys"][name]["bands"]:
            assert {f"m_{band}", f"f_{band}", f"m_ap_{band}", f"f_ap_{band}"} <= set(t.columns)
        assert t[f"{name}_id"].is_unique
        assert in_moc(res.moc, t[f"{name}_ra"], t[f"{name}_dec"]).all()
        json.dumps(res.provenance)  # serialisable


def test_astrometric_offsets_match_truth(field):
    _, manifest, _, _, prepared = field
    for name, res in prepared.items():
        s, a = manifest["surveys"][name], res.provenance["astrometry"]
        # The sim adds the offset to the true positions; we measure reference - survey.
        assert a["n_matches"] > 50, name
        assert abs(a["dra_cosdec_arcsec"] + s["offset_ra_arcsec"]) < 4 * a["dra_err_arcsec"], name
        assert abs(a["ddec_arcsec"] + s["offset_dec_arcsec"]) < 4 * a["ddec_err_arcsec"], name
        # The error is what the scatter allows: pos_sigma / sqrt(n) up to the median's 1.25.
        expect = s["pos_sigma_arcsec"] / np.sqrt(a["n_matches"])
        assert 0.7 * expect < a["dra_err_arcsec"] < 2.0 * expect, name


def test_aperture_corrections_match_truth(field):
    _, manifest, _, _, prepared = field
    for name, res in prepared.items():
        truth = manifest["surveys"][name]["aperture_correction_mag"]
        for band, rec in res.provenance["aperture_corrections"].items():
            assert rec["applied"], (name, band, rec)
            # sim: m_ap - m_total of a star; ours: median(m_total - m_ap), added to m_ap.
            assert abs(rec["value_mag"] + truth[band]) < max(4 * rec["error_mag"], 0.005), (
                name,
                band,
                rec,
            )


def test_flag_gaia_agrees_with_truth(field):
    _, manifest, rows, objects, prepared = field
    in_gaia = set(rows.loc[rows["survey"] == "gaia", "object_id"])
    for name, res in prepared.items():
        t = res.table
        oid, dup = _truth_rows(name, t, rows)
        ref_star = np.isin(oid, list(in_gaia)) & ~dup
        flag = t["flag_gaia"].to_numpy()
        assert ref_star.sum() > 50
        # Reference stars are found (flag >= 2); the share within 0.6 arcsec follows the
        # survey's positional scatter (Rayleigh: P(r < 0.6) = 1 - exp(-0.6^2 / 2 sigma^2)).
        assert (flag[ref_star] >= 2).mean() >= 0.98, name
        sigma = manifest["surveys"][name]["pos_sigma_arcsec"]
        expected3 = 1 - np.exp(-(0.6**2) / (2 * sigma**2))
        assert (flag[ref_star] == 3).mean() >= expected3 - 0.06, name
        # Everything else (galaxies, stars too faint for the reference) is almost always 0.
        assert (flag[~np.isin(oid, list(in_gaia))] == 0).mean() >= 0.99, name


def test_photometry_matches_truth_fluxes(field):
    _, manifest, rows, objects, prepared = field
    for name, res in prepared.items():
        t = res.table
        oid, dup = _truth_rows(name, t, rows)
        for band in manifest["surveys"][name]["bands"]:
            true = objects.loc[oid, f"f_{band}"].to_numpy()
            f, ferr = t[f"f_{band}"].to_numpy(), t[f"ferr_{band}"].to_numpy()
            ok = ~dup & np.isfinite(f) & np.isfinite(ferr) & (ferr > 0)
            # Bright sources only (true S/N > 20): no detection (Eddington) bias.
            ok &= true > 20 * np.where(ok, ferr, np.inf)
            assert ok.sum() > 200, (name, band)
            pull = (f[ok] - true[ok]) / ferr[ok]
            # Unit conversions (uJy, Vega -> AB, sentinels) right: unbiased, unit scatter.
            assert abs(np.median(pull)) < 0.1, (name, band, np.median(pull))
            mad_sigma = 1.4826 * np.median(np.abs(pull - np.median(pull)))
            assert 0.8 < mad_sigma < 1.25, (name, band, mad_sigma)
