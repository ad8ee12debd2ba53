"""write_field and ``skysense sim``: contract-1 layout, determinism, configs, CLI."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from skysense.catalog.config import check_columns, load_config, parse_config
from skysense.cli.__main__ import main
from skysense.errors import InputError
from skysense.sim import DEFAULT_SURVEYS, read_manifest, write_field
from skysense.sim.sed import BANDS, FIR_BANDS

AREA = 0.05


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "field"
    manifest = write_field(out, seed=0, area_deg2=AREA)
    return out, manifest


def _read(path):
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return Table.read(path).to_pandas()


def test_manifest_and_layout_follow_contract(field):
    out, manifest = field
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == read_manifest(out)
    for key in (
        "seed",
        "center_ra",
        "center_dec",
        "area_deg2",
        "epoch",
        "surveys",
        "maps",
        "truth",
        "reference",
    ):
        assert key in on_disk
    assert on_disk["seed"] == 0 and on_disk["area_deg2"] == AREA and on_disk["epoch"] == 2016.0
    assert (on_disk["center_ra"], on_disk["center_dec"]) == (150.1, 2.2)
    assert on_disk["reference"] == "reference/gaia.parquet"
    assert set(on_disk["maps"]) == set(FIR_BANDS)
    for name, s in on_disk["surveys"].items():
        for key in ("file", "config", "format", "n_rows", "bands"):
            assert key in s
        assert (out / s["file"]).is_file() and (out / s["config"]).is_file()
        assert s["file"] == f"catalogues/{name}.{s['format']}"
        assert len(_read(out / s["file"])) == s["n_rows"]
    for key in ("objects", "catalogue_rows", "map_sources"):
        assert (out / on_disk["truth"][key]).is_file()
    assert {p.name for p in out.iterdir()} == {
        "manifest.json",
        "truth",
        "reference",
        "catalogues",
        "maps",
    }
    assert not list(out.parent.glob(".field.*"))  # no temporary leftovers


def test_truth_tables_follow_contract(field):
    out, manifest = field
    objects = pd.read_parquet(out / "truth/objects.parquet")
    expected = ["object_id", "kind", "ra", "dec", "z", "pmra", "pmdec"] + [f"f_{b}" for b in BANDS]
    expected += ["mstar_msun", "sfr_msun_yr", "l_dust_lsun"]  # physical truth (#17)
    assert list(objects.columns) == expected
    gal = objects.kind == "galaxy"
    assert objects.loc[~gal, ["mstar_msun", "sfr_msun_yr", "l_dust_lsun"]].isna().all().all()
    assert (objects.loc[gal, ["mstar_msun", "l_dust_lsun"]] > 0).all().all()
    assert objects.object_id.dtype == np.int64 and objects.object_id.is_unique
    assert set(objects.kind) == {"galaxy", "star"}
    assert objects.z[objects.kind == "star"].isna().all()
    assert (objects.pmra[objects.kind == "galaxy"] == 0).all()

    rows = pd.read_parquet(out / "truth/catalogue_rows.parquet")
    assert list(rows.columns) == ["survey", "source_id", "object_id", "is_duplicate"]
    assert rows.object_id.dtype == np.int64 and rows.is_duplicate.dtype == bool
    assert rows.object_id.isin(objects.object_id).all()
    for name, s in manifest["surveys"].items():
        mine = rows[rows.survey == name]
        assert len(mine) == s["n_rows"]
        cat = _read(out / s["file"])
        ids = cat[s["columns"]["id"]].astype(str)
        assert set(ids) == set(mine.source_id)

    sources = pd.read_parquet(out / "truth/map_sources.parquet")
    assert list(sources.columns) == ["object_id", "ra", "dec"] + [f"f_{b}" for b in FIR_BANDS]
    merged = sources.merge(objects, on="object_id", suffixes=("", "_t"))
    assert len(merged) == len(sources)
    np.testing.assert_allclose(merged.f_spire_250 * 1000, merged.f_spire_250_t)  # mJy vs uJy

    gaia = pd.read_parquet(out / "reference/gaia.parquet")
    for col in (
        "source_id",
        "ra",
        "dec",
        "ra_error",
        "dec_error",
        "pmra",
        "pmdec",
        "phot_g_mean_mag",
        "ref_epoch",
    ):
        assert col in gaia.columns
    assert (gaia.ref_epoch == 2016.0).all() and (gaia.phot_g_mean_mag < 20).all()
    assert "object_id" not in gaia.columns  # truth lives in truth/, not in the "real" catalogue
    assert set(rows.source_id[rows.survey == "gaia"]) == set(gaia.source_id.astype(str))


def test_maps_follow_contract(field):
    out, manifest = field
    for band, m in manifest["maps"].items():
        with fits.open(out / m["file"]) as hdul:
            assert hdul[0].data is None
            assert [h.name for h in hdul[1:]] == ["IMAGE", "ERROR"]
            for hdu in hdul[1:]:
                hdr = hdu.header
                assert hdr["BUNIT"] == "mJy/beam" and hdr["BAND"] == band
                assert hdr["FWHM"] == m["fwhm_arcsec"]
                wcs = WCS(hdr)
                assert wcs.wcs.ctype[0] == "RA---TAN" and wcs.wcs.ctype[1] == "DEC--TAN"
                assert abs(wcs.wcs.cdelt[1]) * 3600 == pytest.approx(m["pixel_arcsec"])
            assert (hdul["ERROR"].data > 0).all()
        assert m["unit"] == "mJy/beam"
    assert manifest["maps"]["spire_250"]["fwhm_arcsec"] == 18.15
    assert manifest["maps"]["spire_500"]["pixel_arcsec"] == 12.0
    assert manifest["maps"]["mips_24"]["pixel_arcsec"] == 1.2


def test_configs_load_and_name_existing_columns(field):
    out, manifest = field
    for name, s in manifest["surveys"].items():
        conf = yaml.safe_load((out / s["config"]).read_text())
        assert conf["survey"] == name
        assert (out / "catalogues" / conf["file"]).resolve() == (out / s["file"]).resolve()
        cols = set(_read(out / s["file"]).columns)
        assert set(conf["columns"].values()) <= cols
        assert [b["name"] for b in conf["bands"]] == s["bands"]
        for band in conf["bands"]:
            named = [
                band[k]
                for k in (
                    "mag",
                    "mag_err",
                    "mag_ap",
                    "mag_ap_err",
                    "flux",
                    "flux_err",
                    "flux_ap",
                    "flux_ap_err",
                )
                if k in band
            ]
            assert named and set(named) <= cols
            if band.get("system") == "Vega":
                assert band["vega_to_ab"] == {"ukidss_j": 0.938, "ukidss_k": 1.9}[band["name"]]


def test_configs_accepted_by_catalog_loader(field):
    out, manifest = field
    for name, s in manifest["surveys"].items():
        written = yaml.safe_load((out / s["config"]).read_text())
        loaded = load_config(out / s["config"])
        # The loader keeps what the simulation wrote ...
        assert loaded.survey == name == written["survey"]
        assert loaded.file_path.resolve() == (out / s["file"]).resolve()
        assert loaded.file_format == s["format"]
        assert {k: getattr(loaded.columns, k) for k in written["columns"]} == written["columns"]
        assert [b.name for b in loaded.bands] == s["bands"] == [b["name"] for b in written["bands"]]
        for band, raw in zip(loaded.bands, written["bands"], strict=True):
            assert band.system == raw.get("system", "AB")
            for key, column in raw.items():
                if key in band.columns():
                    assert band.columns()[key] == column
        assert list(loaded.cuts) == list(written.get("cuts", []))
        # ... names only columns the catalogue has, and round-trips through its mapping.
        check_columns(loaded, list(_read(out / s["file"]).columns))
        assert parse_config(loaded.to_dict()) == loaded


def test_manifest_records_survey_truth(field):
    _, manifest = field
    for spec in DEFAULT_SURVEYS:
        s = manifest["surveys"][spec.name]
        assert s["offset_ra_arcsec"] == spec.offset_ra_arcsec
        assert s["pos_sigma_arcsec"] == spec.pos_sigma_arcsec
        assert s["epoch"] == spec.epoch
        for b in spec.bands:
            assert s["depth_5sigma_ab"][b.band] == b.depth_5sigma_ab
            assert s["aperture_correction_mag"][b.band] == b.aperture_correction_mag
        assert len(s["coverage_polygon"]) == 4


def test_deterministic_for_seed_and_different_for_another(field, tmp_path):
    out, _ = field
    again = tmp_path / "again"
    write_field(again, seed=0, area_deg2=AREA)
    for rel in ("catalogues/ukidss.csv", "catalogues/cfhtls.yaml", "manifest.json"):
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel
    for rel in (
        "truth/objects.parquet",
        "truth/catalogue_rows.parquet",
        "catalogues/suprime.parquet",
    ):
        pd.testing.assert_frame_equal(pd.read_parquet(out / rel), pd.read_parquet(again / rel))
    for rel in ("catalogues/cfhtls.fits", "catalogues/swire.fits"):
        assert Table.read(out / rel).to_pandas().equals(Table.read(again / rel).to_pandas())
    for band in FIR_BANDS:
        a = fits.getdata(out / f"maps/{band}.fits", "IMAGE")
        b = fits.getdata(again / f"maps/{band}.fits", "IMAGE")
        np.testing.assert_array_equal(a, b)
    other = tmp_path / "other"
    write_field(other, seed=1, area_deg2=AREA, maps=())
    a = pd.read_parquet(out / "truth/objects.parquet")
    b = pd.read_parquet(other / "truth/objects.parquet")
    assert len(a) != len(b) or not np.array_equal(a.ra.to_numpy(), b.ra.to_numpy())


def test_rewrite_replaces_and_failure_keeps_old(tmp_path):
    out = tmp_path / "f"
    write_field(out, seed=2, area_deg2=0.005, maps=())
    (out / "stale.txt").write_text("x")
    write_field(out, seed=3, area_deg2=0.005, maps=())
    assert not (out / "stale.txt").exists() and read_manifest(out)["seed"] == 3
    with pytest.raises(InputError):
        write_field(out, seed=4, area_deg2=0.005, surveys=DEFAULT_SURVEYS * 2)
    with pytest.raises(InputError):
        write_field(out, seed=4, area_deg2=-1.0)
    assert read_manifest(out)["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_field_across_ra_zero_and_near_pole(tmp_path):
    for center in [(359.98, 0.0), (45.0, 88.5)]:
        m = write_field(tmp_path / "f", seed=0, area_deg2=0.01, center=center, maps=())
        objects = pd.read_parquet(tmp_path / "f/truth/objects.parquet")
        assert objects.ra.between(0, 360, inclusive="left").all()
        assert m["surveys"]["suprime"]["n_rows"] > 0
        poly = np.array(m["field"]["polygon"])
        assert np.all(np.abs(poly[:, 1] - center[1]) < 0.2)


def test_cli_field_and_info(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "sim",
            "field",
            "--out",
            str(out),
            "--seed",
            "5",
            "--area",
            "0.01",
            "--center",
            "10",
            "-20",
            "--surveys",
            "suprime,ukidss",
            "--no-maps",
        ]
    )
    assert code == 0
    manifest = read_manifest(out)
    assert manifest["seed"] == 5 and set(manifest["surveys"]) == {"suprime", "ukidss"}
    assert manifest["maps"] == {} and math.isclose(manifest["center_dec"], -20.0)
    assert "suprime" in capsys.readouterr().out
    assert main(["sim", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "ukidss" in info
    # info reads a field; it does not write one.
    assert info.startswith(f"simulated field {out}: seed 5") and "written" not in info
    assert main(["sim", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 5


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["sim", "field", "--out", str(tmp_path / "x"), "--surveys", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skysense: error:") and "nope" in err and err.count("\n") == 1
    assert main(["sim", "info", str(tmp_path)]) == 2
    assert "manifest.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["sim", "--help"], ["sim", "field", "--help"], ["sim", "info", "--help"]]
)
def test_cli_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text
    assert "contract" not in text  # internal jargon stays out of the help


def test_console_script_runs(tmp_path):
    exe = shutil.which("skysense") or str(
        __import__("pathlib").Path(sys.executable).parent / "skysense"
    )
    env = dict(os.environ, SKYSENSE_PROGRESS="0")
    help_run = subprocess.run(
        [exe, "sim", "field", "--help"], capture_output=True, text=True, env=env
    )
    assert help_run.returncode == 0 and "--center RA DEC" in help_run.stdout
    run = subprocess.run(
        [exe, "sim", "field", "--out", str(tmp_path / "f"), "--area", "0.003", "--seed", "1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert read_manifest(tmp_path / "f")["seed"] == 1


def test_fits_catalogue_columns_carry_units(field):
    out, _ = field
    t = Table.read(out / "catalogues/cfhtls.fits")
    assert str(t["ALPHA_J2000"].unit) == "deg" and str(t["MAG_AUTO_R"].unit) == "mag"
    t = Table.read(out / "catalogues/swire.fits")
    assert str(t["FLUX_KR_IRAC1"].unit) == "uJy"
    props = pd.read_parquet(out / "truth/galaxy_properties.parquet")
    objects = pd.read_parquet(out / "truth/objects.parquet")
    assert props.object_id.isin(objects.object_id).all()
    assert len(props) == (objects.kind == "galaxy").sum()


def test_dropping_a_survey_leaves_the_others_identical(field, tmp_path):
    out, _ = field
    only = tmp_path / "only"
    keep = tuple(s for s in DEFAULT_SURVEYS if s.name in ("suprime", "ukidss"))
    write_field(only, seed=0, area_deg2=AREA, surveys=keep, maps=())
    assert (out / "catalogues/ukidss.csv").read_bytes() == (
        only / "catalogues/ukidss.csv"
    ).read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "catalogues/suprime.parquet"),
        pd.read_parquet(only / "catalogues/suprime.parquet"),
    )
    assert not (only / "catalogues/cfhtls.fits").exists()
