"""Survey configuration: validation messages, YAML/TOML round trips (Hypothesis), columns."""

from __future__ import annotations

import copy
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skysense.catalog.bands import BANDS, get_band
from skysense.catalog.config import check_columns, load_config, parse_config
from skysense.errors import ConfigError


def _base() -> dict:
    return {
        "survey": "cfhtls",
        "file": "cfhtls.fits",
        "epoch": 2008.5,
        "columns": {"id": "SeqNr", "ra": "ALPHA_J2000", "dec": "DELTA_J2000"},
        "bands": [
            {"name": "megacam_u", "mag": "MAG_AUTO_U", "mag_err": "MAGERR_AUTO_U"},
            {"name": "megacam_g", "mag": "MAG_AUTO_G", "mag_err": "MAGERR_AUTO_G"},
            {
                "name": "ukidss_k",
                "mag": "K",
                "mag_err": "KERR",
                "system": "Vega",
                "vega_to_ab": 1.9,
            },
        ],
    }


def test_minimal_config_parses_with_defaults():
    cfg = parse_config(_base())
    assert cfg.survey == "cfhtls"
    assert cfg.bands[2].system == "Vega" and cfg.bands[2].vega_to_ab == 1.9
    assert cfg.file_format == "fits"
    assert cfg.dedupe_radius_arcsec == 0.4
    assert cfg.aperture is not None and cfg.aperture.stellarity_min == 0.9


@pytest.mark.parametrize(
    "mutate, key, text",
    [
        (lambda c: c.pop("survey"), "survey", "required"),
        (lambda c: c.update(survey="CFHT LS"), "survey", "must match"),
        (lambda c: c.update(format="hdf5"), "format", "expected one of"),
        (lambda c: c.update(epoch="2008"), "epoch", "expected a number"),
        (lambda c: c["columns"].pop("ra"), "columns.ra", "required"),
        (lambda c: c["columns"].update(rra="x"), "columns.rra", "did you mean 'ra'"),
        (lambda c: c["bands"][1].update(name="megacam_gg"), "bands[1].name", "megacam_g"),
        (lambda c: c["bands"][2].pop("vega_to_ab"), "bands[2].vega_to_ab", "required"),
        (lambda c: c["bands"][0].update(system="ST"), "bands[0].system", "AB"),
        (lambda c: c["bands"][0].update(flux="F"), "bands[0]", "exactly one"),
        (lambda c: c["bands"][0].update(flux_unit="uJy"), "bands[0].flux_unit", "no flux"),
        (lambda c: c["bands"][1].update(name="megacam_u"), "bands[1].name", "already given"),
        (lambda c: c.update(cuts=["FLAGS <"]), "cuts[0]", "syntax"),
        (lambda c: c.update(cuts=["__import__('os')"]), "cuts[0]", "only the functions"),
        (lambda c: c.update(bands=[]), "bands", "non-empty"),
        (lambda c: c.update(position_error_arcsec=-1), "position_error_arcsec", "positive"),
        (lambda c: c.update(file="cat.dat"), "format", "suffix"),
    ],
)
def test_invalid_configs_name_the_key(tmp_path, mutate, key, text):
    raw = _base()
    mutate(raw)
    path = tmp_path / "cfhtls.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.key == key
    assert text in str(exc.value)
    assert str(path) in str(exc.value)


def test_flux_band_with_unknown_unit_suggests():
    raw = _base()
    raw["bands"][0] = {"name": "megacam_u", "flux": "F", "flux_err": "FE", "flux_unit": "ujy"}
    with pytest.raises(ConfigError, match=r"bands\[0\].flux_unit: .*did you mean 'uJy'"):
        parse_config(raw)


def test_check_columns_did_you_mean(tmp_path):
    raw = _base()
    raw["bands"][2]["mag_err"] = "MAGERR_X"
    raw["bands"][2]["mag"] = "MAG_AUTO_K"
    cfg = parse_config(raw, path=tmp_path / "cfhtls.yaml")
    columns = ["SeqNr", "ALPHA_J2000", "DELTA_J2000", "MAG_AUTO_U", "MAGERR_AUTO_U"]
    columns += ["MAG_AUTO_G", "MAGERR_AUTO_G", "MAG_AUTO_K", "MAGERR_AUTO_K"]
    with pytest.raises(ConfigError) as exc:
        check_columns(cfg, columns)
    msg = str(exc.value)
    assert "bands[2].mag_err: column 'MAGERR_X' not in cfhtls.fits" in msg
    assert "did you mean 'MAGERR_AUTO_K'?" in msg


def test_toml_and_yaml_give_the_same_config(tmp_path):
    raw = _base()
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(raw))
    toml = """survey = "cfhtls"
file = "cfhtls.fits"
epoch = 2008.5
[columns]
id = "SeqNr"
ra = "ALPHA_J2000"
dec = "DELTA_J2000"
[[bands]]
name = "megacam_u"
mag = "MAG_AUTO_U"
mag_err = "MAGERR_AUTO_U"
[[bands]]
name = "megacam_g"
mag = "MAG_AUTO_G"
mag_err = "MAGERR_AUTO_G"
[[bands]]
name = "ukidss_k"
mag = "K"
mag_err = "KERR"
system = "Vega"
vega_to_ab = 1.9
"""
    (tmp_path / "a.toml").write_text(toml)
    assert load_config(tmp_path / "a.yaml") == load_config(tmp_path / "a.toml")


def test_yaml_syntax_error_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("survey: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(path)


def test_file_resolves_against_config_folder(tmp_path):
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(_base()))
    assert load_config(path).file_path == tmp_path / "sub" / "cfhtls.fits"


def test_band_registry_knows_simulated_bands_and_regimes():
    sim_bands = ["megacam_u", "megacam_g", "megacam_r", "suprime_i", "ukidss_j", "ukidss_k"]
    sim_bands += ["irac_i1", "mips_24", "spire_250", "spire_350", "spire_500"]
    for name in sim_bands:
        assert name in BANDS
    assert get_band("megacam_u").regime == "optical"
    assert get_band("ukidss_k").regime == "nir"
    assert get_band("irac_i1").regime == "mir"
    assert get_band("spire_250").regime == "fir"
    with pytest.raises(KeyError, match="did you mean"):
        get_band("ukidss_kk")


@pytest.mark.acceptance
def test_band_registry_covers_help_filters(shared_data):
    import pandas as pd

    filters = pd.read_csv(shared_data / "crossmatch" / "help_filters.csv", encoding="utf-8-sig")
    names = filters["filter_file"].str.replace(".xml", "", regex=False)
    missing = sorted(set(names) - set(BANDS))
    assert not missing, missing
    # HELP's own optical/IR tags agree with our regimes for the unambiguous cases.
    for name, region in zip(names, filters["wavelength_region"], strict=True):
        if region == "opt" and not name.startswith(("nicmos", "wfc3", "omega2000", "ukidss_y")):
            assert BANDS[name].regime == "optical", name


# ---------------------------------------------------------------- Hypothesis properties
_col = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12).filter(
    lambda s: s[0].isalpha()
)
_band_names = sorted(BANDS)


@st.composite
def _band(draw, name):
    use_flux = draw(st.booleans())
    band = {"name": name}
    if use_flux:
        band["flux"] = draw(_col)
        if draw(st.booleans()):
            band["flux_err"] = draw(_col)
        band["flux_unit"] = draw(st.sampled_from(["nJy", "uJy", "mJy", "Jy", "erg/s/cm2/Hz"]))
        band["system"] = "AB"
    else:
        band["mag"] = draw(_col)
        if draw(st.booleans()):
            band["mag_err"] = draw(_col)
        if draw(st.booleans()):
            band["mag_ap"] = draw(_col)
            band["mag_ap_err"] = draw(_col)
        if draw(st.booleans()):
            band["system"] = "Vega"
            band["vega_to_ab"] = draw(st.floats(-3, 3, allow_nan=False))
        else:
            band["system"] = "AB"
    if draw(st.booleans()):
        band["missing"] = draw(st.lists(st.sampled_from([99.0, -99.0, 0.0, -1.0]), max_size=3))
    return band


@st.composite
def valid_config(draw):
    names = draw(st.lists(st.sampled_from(_band_names), min_size=1, max_size=5, unique=True))
    cfg = {
        "survey": draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=10)),
        "file": draw(_col) + draw(st.sampled_from([".fits", ".csv", ".parquet", ".vot", ".ecsv"])),
        "columns": {"id": draw(_col), "ra": draw(_col), "dec": draw(_col)},
        "bands": [draw(_band(n)) for n in names],
        "cuts": draw(st.lists(st.sampled_from(["FLAGS < 4", "isfinite(X) & (Y > 0)"]), max_size=2)),
        "dedupe_radius_arcsec": draw(st.floats(0, 2, allow_nan=False)),
    }
    if draw(st.booleans()):
        cfg["epoch"] = draw(st.floats(1990, 2030, allow_nan=False))
    if draw(st.booleans()):
        cfg["columns"]["stellarity"] = draw(_col)
    return cfg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_config())
def test_valid_configs_round_trip_through_yaml_and_toml(raw):
    import io

    cfg = parse_config(raw)
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    toml_text = _to_toml(cfg.to_dict())
    import tomllib

    assert parse_config(tomllib.load(io.BytesIO(toml_text.encode()))) == cfg


def _to_toml(d: dict) -> str:
    """Tiny TOML writer for the configuration shape (scalars, lists, tables, arrays of tables)."""
    import json

    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return json.dumps(v) if isinstance(v, str) else str(v)

    lines, tables, arrays = [], [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            arrays.append((k, v))
        else:
            lines.append(f"{k} = {scalar(v)}")
    for k, v in tables:
        lines.append(f"[{k}]")
        lines += [f"{kk} = {scalar(vv)}" for kk, vv in v.items()]
    for k, items in arrays:
        for item in items:
            lines.append(f"[[{k}]]")
            lines += [f"{kk} = {scalar(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


_CORRUPTIONS = [
    # (path into the raw mapping, bad value, expected key (None = same path))
    (("survey",), "Has Space", None),
    (("survey",), 12, None),
    (("epoch",), "soon", None),
    (("epoch",), 3000.0, None),
    (("columns", "ra"), 5, None),
    (("columns", "id"), "", None),
    (("bands", 0, "name"), "not_a_band", None),
    (("bands", 0, "missing"), "99", None),
    (("bands", 0, "system"), "STMAG", None),
    (("dedupe_radius_arcsec",), -1.0, None),
    (("cuts",), "FLAGS < 4", None),
    (("format",), "xlsx", None),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_config(), st.sampled_from(_CORRUPTIONS))
def test_corrupted_configs_raise_config_error_naming_the_key(raw, corruption):
    path, value, _ = corruption
    bad = copy.deepcopy(raw)
    target = bad
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    expected = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
    with pytest.raises(ConfigError) as exc:
        parse_config(bad)
    assert exc.value.key == expected


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.key is None and str(exc.value) == f"{path}: expected a mapping, got list"
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "empty.yaml")
