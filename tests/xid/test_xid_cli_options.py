"""``xid blind --confusion``: 'auto' or a finite number, refused by the parser otherwise."""

from __future__ import annotations

import pytest

from skysense.cli.__main__ import build_parser, main


@pytest.mark.parametrize("value", ["abc", "nan", "inf"])
def test_confusion_not_a_number_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["xid", "blind", "map.fits", "--band", "spire_250", "--confusion", value, "-o", "o"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --confusion: not a" in err and "Traceback" not in err


def test_confusion_values():
    parse = build_parser().parse_args
    base = ["xid", "blind", "m.fits", "--band", "spire_250", "-o", "o"]
    assert parse(base).confusion == "auto"
    assert parse([*base, "--confusion", "auto"]).confusion == "auto"
    assert parse([*base, "--confusion", "0"]).confusion == 0.0
    assert parse([*base, "--confusion", "2.5"]).confusion == 2.5
