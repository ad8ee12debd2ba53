"""Class schemes: built-ins, files, validation, colour tables."""

from __future__ import annotations

import json

import pytest

from skysense.errors import ConfigError
from skysense.landuse.classes import LI2014, STATLOG, ClassScheme, LandClass, get_scheme


def test_li2014_default_has_the_eight_classes_of_the_paper():
    s = get_scheme()
    assert s is LI2014
    assert s.names == ["water", "residential area", "natural forest", "orchard", "farmland",
                       "industrial/commercial", "cleared land / land under construction",
                       "idle land"]  # fmt: skip
    assert s.codes == list(range(1, 9))


def test_statlog_scheme_codes_and_lookup():
    assert get_scheme("statlog") is STATLOG
    assert STATLOG.code_of("damp grey soil") == 4
    assert STATLOG.code_of("7") == 7
    assert STATLOG.name_of(5) == "soil with vegetation stubble"
    with pytest.raises(ConfigError, match="unknown class name"):
        STATLOG.code_of("swamp")
    with pytest.raises(ConfigError, match="not in scheme"):
        STATLOG.code_of(9)


def test_colormap_is_rgba_with_transparent_nodata():
    cmap = LI2014.colormap()
    assert cmap[0] == (0, 0, 0, 0)
    assert cmap[1] == (0x1F, 0x78, 0xB4, 255)


def test_scheme_from_json_and_yaml(tmp_path):
    d = {"name": "mine", "classes": [{"code": 3, "name": "wet", "color": "#0000ff"},
                                     {"code": 9, "name": "dry"}]}  # fmt: skip
    (tmp_path / "s.json").write_text(json.dumps(d))
    s = get_scheme(tmp_path / "s.json")
    assert s.codes == [3, 9] and s.classes[1].color == "#808080"
    (tmp_path / "s.yaml").write_text(
        "name: y\nclasses:\n  - {code: 1, name: a, color: '#010203'}\n"
    )
    assert get_scheme(str(tmp_path / "s.yaml")).classes[0].rgb == (1, 2, 3)


@pytest.mark.parametrize(
    "classes, match",
    [
        ([LandClass(1, "a", "#000000"), LandClass(1, "b", "#000000")], "duplicate class codes"),
        ([LandClass(1, "a", "#000000"), LandClass(2, "a", "#000000")], "duplicate class names"),
        ([LandClass(0, "a", "#000000")], "1..65535"),
        ([LandClass(1, "a", "red")], "#rrggbb"),
    ],
)
def test_scheme_validation(classes, match):
    with pytest.raises(ConfigError, match=match):
        ClassScheme("x", tuple(classes))


def test_bad_scheme_file_names_the_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        get_scheme(p)
    with pytest.raises(ConfigError, match="neither a built-in"):
        get_scheme("nonexistent-scheme")
