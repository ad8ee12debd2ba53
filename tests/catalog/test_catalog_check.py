"""The validation report: column checks, magnitude comparisons, plots and page."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.catalog.check import (
    column_problems,
    filter_letter,
    magnitude_comparison,
    number_counts,
)
from skysense.catalog.check_io import run_check
from skysense.catalog.hats_io import write_hats
from skysense.cli.__main__ import main


def test_column_problems():
    df = pd.DataFrame({"f_a": [1.0, -2.0, np.nan], "f_b": [np.nan] * 3, "m_c": [0.0, 0.0, np.nan],
                       "m_d": [-1.0, 20.0, 21.0], "flag_x": [True, False, True], "name": ["a", "b", "c"]})  # fmt: skip
    got = {(r.column, r.problem): r.count for r in column_problems(df).itertuples()}
    assert got == {("f_a", "negative values"): 1, ("f_b", "all missing"): 3, ("m_c", "all zero"): 2}


def test_magnitude_comparison_by_hand():
    m1 = np.array([20.0, 21.0, 22.0, 23.0, np.nan])
    m2 = np.array([19.9, 20.9, 21.9, 21.0, 20.0])
    e = np.full(5, 0.1)
    st = magnitude_comparison(m1, e, m2, e, chi2_max=25)
    assert st["n"] == 4
    np.testing.assert_allclose(st["median"], 0.1)  # median of 0.1, 0.1, 0.1, 2.0
    np.testing.assert_allclose(st["mad"], 0.0, atol=1e-12)
    # chi2 of the 4th: (2.0 - 0.1)^2 / 0.02 = 180.5 > 25; the others 0.
    assert st["n_outliers"] == 1
    edges, counts = number_counts(np.array([20.1, 20.2, 21.7, np.nan]), 0.5)
    assert counts.sum() == 3 and edges[0] == 20.0
    assert filter_letter("megacam_r") == "r" and filter_letter("vista_ks") == "k"


def test_run_check_writes_page_and_plots(tmp_path, capsys):
    rng = np.random.default_rng(2)
    n = 500
    m = rng.uniform(18, 25, n)
    ml = pd.DataFrame({"help_id": [f"H{i}" for i in range(n)], "object_key": np.arange(n), "ra": rng.uniform(10, 10.1, n),
                       "dec": rng.uniform(0, 0.1, n), "m_megacam_r": m, "merr_megacam_r": np.full(n, 0.05),
                       "m_suprime_r": m + 0.03 + rng.normal(0, 0.05, n), "merr_suprime_r": np.full(n, 0.05),
                       "f_megacam_r": 10 ** ((23.9 - m) / 2.5), "ferr_megacam_r": np.full(n, -1.0),
                       "flag_merged": rng.uniform(size=n) < 0.05})  # fmt: skip
    write_hats(ml, tmp_path / "merged" / "masterlist")
    assoc = pd.DataFrame({"object_key": np.arange(n), "survey": "s", "source_id": np.arange(n).astype(str),
                          "separation_arcsec": rng.rayleigh(0.2, n), "ambiguity": 0, "is_position": False})  # fmt: skip
    (tmp_path / "merged" / "associations").mkdir()
    assoc.to_parquet(tmp_path / "merged" / "associations" / "part-0.parquet")
    assert (
        main(
            [
                "catalog",
                "check",
                str(tmp_path / "merged" / "masterlist"),
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    page = (tmp_path / "report" / "report.md").read_text()
    assert "`ferr_megacam_r` | negative values | 500" in page
    row = next(line for line in page.splitlines() if line.startswith("| m_megacam_r - m_suprime_r"))
    median = float(row.split("|")[3])
    assert abs(median + 0.03) < 0.01
    pngs = sorted(p.name for p in (tmp_path / "report").glob("*.png"))
    assert "counts_megacam_r.png" in pngs and "separation_s.png" in pngs and "magdiff_0.png" in pngs
    for name in pngs:
        assert name in page and (tmp_path / "report" / name).read_bytes()[:4] == b"\x89PNG"
    assert run_check(tmp_path / "merged" / "masterlist", tmp_path / "report").name == "report.md"


def test_cli_check_bad_masterlists_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "bad.fits").write_bytes(b"garbage\x00\x01")
    (tmp_path / "empty").mkdir()
    for name, message in (
        ("missing", "missing: file not found"),
        ("missing.fits", "missing.fits: file not found"),
        ("bad.fits", "bad.fits: cannot read as fits"),
        ("empty", "not a HATS catalogue"),
    ):
        argv = ["catalog", "check", str(tmp_path / name), "--out", str(tmp_path / "r")]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("skysense: error:") and err.count("\n") == 1, err
        assert message in err
    assert not (tmp_path / "r").exists()
