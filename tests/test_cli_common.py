"""cli._common.keywords: options handed on as keyword arguments."""

from __future__ import annotations

import argparse

import pytest

from skysense.cli._common import keywords, options


def test_keywords_renames_and_keeps_values():
    parser = argparse.ArgumentParser()
    options(
        parser,
        """
--timeout float | seconds
--max-rows int=5 | rows
--tiled flag | tiles
""",
    )
    args = parser.parse_args(["--timeout", "2.5"])
    assert keywords(args, "timeout:timeout_s max_rows\n tiled") == {
        "timeout_s": 2.5,
        "max_rows": 5,
        "tiled": False,
    }
    assert keywords(args, "") == {}
    with pytest.raises(AttributeError):
        keywords(args, "no_such_option")
