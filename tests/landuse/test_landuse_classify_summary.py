"""The lines ``skysense landuse classify`` prints come from ClassifyResult."""

from __future__ import annotations

from pathlib import Path

from skysense.landuse import STATLOG
from skysense.landuse.engine import ClassifyResult


def test_summary_class_table_and_written_files():
    res = ClassifyResult(
        Path("c.tif"),
        None,
        Path("q.png"),
        pixel_counts={7: 25, 1: 75},
        n_nodata=4,
        n_windows=2,
        elapsed_s=1.26,
    )
    assert res.summary() == "classified 100 pixels in 2 windows (1.3 s); 4 nodata"
    rows = [line.split("\t") for line in res.class_table(STATLOG).splitlines()]
    assert [r[0] for r in rows] == ["1", "7"]  # by code
    assert rows[0][1:] == [STATLOG.name_of(1), "75", "0.7500"]
    assert rows[1][1:] == [STATLOG.name_of(7), "25", "0.2500"]
    assert STATLOG.name_of(1) != STATLOG.name_of(7)
    assert res.written == [Path("c.tif"), Path("q.png")]


def test_nothing_classified():
    res = ClassifyResult(Path("c.tif"), None, None, {}, n_nodata=9, n_windows=1, elapsed_s=0.0)
    assert res.class_table(STATLOG) == ""
    assert res.summary().startswith("classified 0 pixels in 1 windows")
