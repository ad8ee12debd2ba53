"""The static reference tables shipped as package data (skysense/_resources.py).

Each table was moved out of a Python literal into ``<area>/data/``; when it moved, the loaded
structure was compared with the old literal exhaustively (equal ``repr``, so types too). These
tests keep hand-written spot values of the old literals, the structure and the value types, and
check that the files are read lazily and shipped in the wheel.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

from astropy.table import Table

from skysense._resources import read_ecsv, read_toml
from skysense.catalog.bands import BANDS, Band, get_band
from skysense.pipeline.metadata import masterlist_meta
from skysense.sed.columns import QUANTITIES, sed_meta
from skysense.sim.surveys import DEFAULT_SURVEYS, BandSpec, SurveySpec, select_surveys
from skysense.vo import sia
from skysense.vo.maps import BAND_WAVELENGTHS_M
from skysense.vo.schema import TAP_SCHEMA_TABLES, ColumnInfo, tap_schema_catalog

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "skysense"


def _data_files() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("**/data/*") if p.suffix in (".toml", ".ecsv"))


# -- the loader ---------------------------------------------------------------------------------


def test_loader_reads_each_file_once_and_keeps_empty_strings():
    assert read_toml("skysense.sim", "surveys.toml") is read_toml("skysense.sim", "surveys.toml")
    rows, meta = read_ecsv("skysense.vo", "obscore.ecsv")
    assert read_ecsv("skysense.vo", "obscore.ecsv")[0] is rows
    assert "ObsCore" in meta["description"]
    band = next(r for r in rows if r["name"] == "band")
    # astropy masks an empty field by default; these tables mean an empty string
    assert band["utype"] == "" and band["unit"] == ""
    assert all(type(v) is str for r in rows for v in r.values())


def test_ecsv_files_open_in_astropy_with_described_columns():
    ecsv = [p for p in _data_files() if p.suffix == ".ecsv"]
    assert len(ecsv) == 3
    for path in ecsv:
        table = Table.read(path, format="ascii.ecsv")
        assert len(table) > 10
        assert all(table[c].description for c in table.colnames), path
        assert table.meta["description"]


def test_every_data_file_is_package_data():
    """Each data file matches a package-data pattern of pyproject.toml (so it is in the wheel)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["skysense"]
    files = _data_files()
    assert {p.name for p in files} >= {
        "surveys.toml",
        "cameras.toml",
        "tap_schema.toml",
        "instruments.toml",
        "obscore.ecsv",
        "masterlist_columns.ecsv",
        "sed_columns.ecsv",
    }
    for path in files:
        rel = path.relative_to(PACKAGE).as_posix()
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), rel


def _python_output(code: str) -> list[str]:
    """The words ``code`` prints in a fresh interpreter (nothing read or cached before)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


def test_importing_the_modules_reads_no_file():
    code = (
        "import skysense.catalog.bands, skysense.sim.surveys, skysense.vo.schema, "
        "skysense.pipeline.metadata, skysense.sed.columns\n"
        "from skysense._resources import read_toml, read_ecsv\n"
        "print(read_toml.cache_info().currsize, read_ecsv.cache_info().currsize)\n"
        "skysense.catalog.bands.BANDS\n"
        "print(read_toml.cache_info().currsize)\n"
    )
    out = _python_output(code)
    assert out == ["0", "0", "1"]


# -- sim: the simulated surveys -----------------------------------------------------------------


def test_default_surveys_spot_values():
    assert [s.name for s in DEFAULT_SURVEYS] == ["cfhtls", "suprime", "ukidss", "swire"]
    cfhtls, suprime, ukidss, swire = DEFAULT_SURVEYS
    assert cfhtls.epoch == 2006.5 and cfhtls.coverage == (0.0, 0.85, 0.1, 1.0)
    assert cfhtls.bands[0] == BandSpec(
        "megacam_u", "MAG_AUTO_U", "MAGERR_AUTO_U", "MAG_APER_U", "MAGERR_APER_U", 24.0, 0.25
    )
    assert [b.band for b in cfhtls.bands] == ["megacam_u", "megacam_g", "megacam_r"]
    assert cfhtls.missing_value == 99.0 and cfhtls.shape_kind == "ellipticity"
    assert cfhtls.shape_columns == ("FLUX_RADIUS", "ELLIPTICITY", "THETA_WORLD")
    assert suprime.id_style == "bigint" and suprime.missing_value is None
    assert suprime.shape_columns == ("i_hlr", "i_axis_ratio", "i_pa")
    assert suprime.shape_kind == "axis_ratio" and suprime.seeing_fwhm_arcsec == 0.6
    assert ukidss.photometry == "Vega" and ukidss.missing_value == -999999500.0
    assert ukidss.shape_columns is None and ukidss.offset_dec_arcsec == 0.25
    assert ukidss.bands[1].aperture_err == "kAperMag3Err"
    assert swire.stellarity_column is None and swire.id_style == "str"
    assert swire.aperture_radius_arcsec == 1.9 and swire.duplicate_mag == 17.5
    assert swire.duplicate_fraction == 0.3 and swire.bands[0].missing_fraction == 0.01
    assert select_surveys(["swire"]) == (swire,)


def test_default_surveys_types():
    float_fields = {f.name for f in dataclasses.fields(SurveySpec) if f.type == "float"}
    assert "epoch" in float_fields and "duplicate_mag" in float_fields
    for s in DEFAULT_SURVEYS:
        s.validate()
        assert isinstance(s.bands, tuple) and isinstance(s.coverage, tuple)
        assert all(type(getattr(s, f)) is float for f in float_fields), s.name
        assert all(type(c) is float for c in s.coverage)
        assert s.missing_value is None or type(s.missing_value) is float
        assert s.shape_columns is None or isinstance(s.shape_columns, tuple)
        for b in s.bands:
            assert type(b.depth_5sigma_ab) is float and type(b.missing_fraction) is float


# -- catalog: cameras and bands -----------------------------------------------------------------


def test_bands_spot_values():
    assert len(BANDS) == 166
    assert list(BANDS)[:3] == ["90prime_g", "90prime_r", "90prime_z"]
    assert list(BANDS)[-1] == "gaia_rp"
    assert BANDS["megacam_u"] == Band("megacam_u", "CFHT MegaPrime/MegaCam", 0.375)
    assert get_band("mips_160") == Band("mips_160", "Spitzer MIPS", 156.0)
    assert BANDS["wfi_416nm"].wavelength_um == 0.416
    assert BANDS["suprime_nb816"].wavelength_um == 0.815
    assert BANDS["twomass_ks"].camera == "2MASS"
    assert BANDS["irac_i1"].regime == "mir" and BANDS["galex_fuv"].regime == "uv"
    assert all(type(b.wavelength_um) is float and b.name == k for k, b in BANDS.items())


# -- vo: TAP_SCHEMA, ObsCore, instruments -------------------------------------------------------


def test_tap_schema_tables_spot_values():
    assert list(TAP_SCHEMA_TABLES) == ["schemas", "tables", "columns", "keys", "key_columns"]
    description, columns = TAP_SCHEMA_TABLES["columns"]
    assert description == "Columns of the tables visible through this TAP service"
    assert isinstance(columns, tuple) and len(columns) == 14
    assert columns[5] == ColumnInfo(
        name="size", datatype="int", description="deprecated: use arraysize", principal=False
    )
    assert TAP_SCHEMA_TABLES["schemas"][1][0] == ColumnInfo(
        name="schema_name",
        datatype="char",
        arraysize="*",
        description="schema name, possibly qualified",
        principal=True,
    )
    assert [c.name for c in TAP_SCHEMA_TABLES["key_columns"][1]] == [
        "key_id",
        "from_column",
        "target_column",
    ]
    for _, cols in TAP_SCHEMA_TABLES.values():
        for c in cols:
            assert c.arraysize == ("*" if c.datatype == "char" else None)
            assert type(c.principal) is bool and c.unit == "" and c.ucd == "" and not c.indexed
    catalog = tap_schema_catalog()
    assert catalog.get("tap_schema.keys").physical == '"TAP_SCHEMA"."keys"'


def test_obscore_fields_spot_values():
    fields = sia._obscore_fields()
    assert len(fields) == 34 and all(len(f) == 6 for f in fields)
    assert fields[0][:2] == ("dataproduct_type", "char")
    assert (
        "access_estsize",
        "long",
        "kbyte",
        "phys.size;meta.file",
        "obscore:Access.Size",
        "Estimated size of the map file",
    ) in fields
    s_region = next(f for f in fields if f[0] == "s_region")
    assert s_region[1:4] == ("polygon", "deg", "pos.outline;obs.field")
    assert fields[-1] == ("description", "char", "", "meta.note", "", "Map description")
    assert len({f[0] for f in fields}) == len(fields)


def test_band_wavelengths_spot_values():
    assert len(BAND_WAVELENGTHS_M) == 13
    assert list(BAND_WAVELENGTHS_M)[:2] == ["megacam_u", "megacam_g"]
    assert BAND_WAVELENGTHS_M["megacam_r"] == (5.5e-7, 7.0e-7)
    assert BAND_WAVELENGTHS_M["pacs_red"] == (1.25e-4, 2.1e-4)
    assert BAND_WAVELENGTHS_M["spire_500"] == (4.1e-4, 6.1e-4)
    for lo, hi in BAND_WAVELENGTHS_M.values():
        assert type(lo) is float and type(hi) is float and 0 < lo < hi


# -- pipeline: masterlist column metadata -------------------------------------------------------


def test_masterlist_fixed_column_metadata_spot_values():
    names = ["help_id", "flag_gaia", "zphot_flag", "flag_radio_multi", "ra"]
    meta = masterlist_meta(names, [])["columns"]
    assert meta["help_id"] == {
        "unit": "",
        "ucd": "meta.id;meta.main",
        "description": "HELP identifier (from the position)",
    }
    assert meta["flag_gaia"]["description"] == (
        "Gaia star flag (0 none, 1 possible, 2 probable, 3 star)"
    )
    assert meta["zphot_flag"]["ucd"] == "meta.code.qual"
    assert meta["flag_radio_multi"]["ucd"] == "meta.code.multip"
    assert meta["ra"]["unit"] == "deg"
    rows, _ = read_ecsv("skysense.pipeline", "masterlist_columns.ecsv")
    assert len(rows) == 21 and [r["name"] for r in rows][:2] == ["help_id", "object_key"]


# -- sed: fit table column metadata -------------------------------------------------------------


def test_sed_column_metadata_spot_values():
    assert len(QUANTITIES) == 17 and list(QUANTITIES)[:2] == ["mstar", "sfr"]
    assert QUANTITIES["qpah"] == ("%", "phys.dust;phys.composition", "PAH mass fraction q_PAH")
    names = ["help_id", "best_model", "delta_chi2_eb", "bayes_mstar", "bayes_mstar_err", "best_a_v"]
    meta = sed_meta(names)["columns"]
    assert meta["help_id"] == {
        "unit": "",
        "ucd": "meta.id;meta.main",
        "description": "HELP identifier",
    }
    # a fixed name wins over the best_<quantity> family
    assert meta["best_model"]["description"] == "index of the best model in the grid"
    assert meta["delta_chi2_eb"]["description"] == (
        "chi^2 cost of one energy budget vs halves fitted apart"
    )
    assert meta["bayes_mstar"] == {
        "unit": "log(solMass)",
        "ucd": "phys.mass;stat.log;stat.mean",
        "description": "Bayesian (likelihood-weighted) mean of the stellar mass (log10 M_sun)",
    }
    assert meta["bayes_mstar_err"]["unit"] == "dex(solMass)"
    assert meta["best_a_v"] == {
        "unit": "mag",
        "ucd": "phys.absorption;em.opt.V",
        "description": "best-model value of the V-band attenuation",
    }
    rows, _ = read_ecsv("skysense.sed", "sed_columns.ecsv")
    assert len(rows) == 29 and {r["role"] for r in rows} == {"column", "quantity"}


# -- landuse: the built-in class schemes --------------------------------------------------------


def test_class_schemes_spot_values():
    from skysense.landuse import classes

    assert list(classes.BUILTIN_SCHEMES) == ["li2014", "statlog"]
    assert classes.BUILTIN_SCHEMES["li2014"] is classes.LI2014 is classes.get_scheme()
    assert classes.get_scheme("statlog") is classes.STATLOG
    assert classes.LI2014.codes == list(range(1, 9))
    assert classes.STATLOG.codes == list(range(1, 8))
    assert classes.LI2014.classes[6] == classes.LandClass(
        7, "cleared land / land under construction", "#bf8040"
    )
    assert classes.STATLOG.classes[5] == classes.LandClass(6, "mixture", "#e67e22")
    assert all(
        type(c.code) is int and type(c.name) is str and c.color.startswith("#")
        for s in classes.BUILTIN_SCHEMES.values()
        for c in s.classes
    )


def test_importing_landuse_reads_no_file():
    code = (
        "import skysense.landuse, skysense.landuse.classes\n"
        "from skysense._resources import read_toml\n"
        "print(read_toml.cache_info().currsize)\n"
        "print(skysense.landuse.STATLOG.name_of(6))\n"
        "print(read_toml.cache_info().currsize)\n"
    )
    assert _python_output(code) == ["0", "mixture", "1"]
