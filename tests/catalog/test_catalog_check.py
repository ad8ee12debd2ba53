"""The validation report: column checks, magnitude comparisons, plots and page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from skysense.catalog.check import (
    KthSearch,
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


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-50, 50).map(lambda v: v / 8.0), min_size=0, max_size=40),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 10_000),
    st.integers(1, 30),
)
def test_kth_search_finds_the_kth_smallest_over_partitions(parts, k_seed, collect):
    """Against a sort of everything; small values grid for ties, tiny ``collect`` so the
    counting passes run."""
    values = np.concatenate([np.asarray(p, float) for p in parts])
    assume(len(values) > 0)
    k = k_seed % len(values)
    arrays = [np.sort(np.asarray(p, float)) for p in parts]
    search = KthSearch(k, values.min(), values.max(), len(values), n_thresholds=4, collect=collect)
    for _ in range(60):
        if search.done:
            break
        if search.collecting:
            search.update_values([search.partition_values(a) for a in arrays])
        else:
            t = search.thresholds()
            search.update_counts(
                KthSearch.combine([KthSearch.partition_counts(a, t) for a in arrays])
            )
    assert search.done and search.value == np.sort(values)[k]


def test_streamed_report_equals_the_in_memory_checks(tmp_path):
    """The report, computed partition by partition on a Dask scheduler, against the pure
    checks run on the whole table at once."""
    import pyarrow.parquet as pq

    from skysense.catalog.check_io import read_masterlist

    rng = np.random.default_rng(7)
    n = 3001
    m = rng.uniform(18, 25, n)
    m2 = m + 0.03 + rng.normal(0, 0.05, n)
    m2[rng.uniform(size=n) < 0.1] = np.nan
    m2[:40] += 1.5  # outliers
    ml = pd.DataFrame({"object_key": np.arange(n), "ra": rng.uniform(10, 11, n), "dec": rng.uniform(0, 1, n),
                       "m_megacam_r": m, "merr_megacam_r": np.full(n, 0.05), "m_suprime_r": m2,
                       "merr_suprime_r": rng.uniform(0.01, 0.1, n), "f_megacam_g": np.full(n, np.nan),
                       "ferr_megacam_r": np.where(rng.uniform(size=n) < 0.02, -1.0, 1.0),
                       "flag_merged": rng.uniform(size=n) < 0.05})  # fmt: skip
    write_hats(ml, tmp_path / "merged" / "masterlist", partition_rows=400)
    assert len(list((tmp_path / "merged" / "masterlist").rglob("Npix=*.parquet"))) > 3
    sep = np.round(rng.rayleigh(0.2, 2 * n), 3)  # rounded: ties
    assoc = pd.DataFrame({"object_key": np.tile(np.arange(n), 2), "survey": np.repeat(["a", "b"], n),
                          "source_id": np.arange(2 * n).astype(str), "separation_arcsec": sep,
                          "ambiguity": 0, "is_position": rng.uniform(size=2 * n) < 0.1})  # fmt: skip
    (tmp_path / "merged" / "associations").mkdir()
    shuffled = assoc.sample(frac=1.0, random_state=1)
    for j, rows in enumerate(np.array_split(np.arange(len(shuffled)), 3)):
        pq.write_table(pa.Table.from_pandas(shuffled.iloc[rows], preserve_index=False),
                       tmp_path / "merged" / "associations" / f"part-{j}.parquet")  # fmt: skip
    page = run_check(tmp_path / "merged" / "masterlist", tmp_path / "r", scheduler="synchronous")
    text = page.read_text()
    whole = read_masterlist(tmp_path / "merged" / "masterlist")
    assert f"{len(whole)} objects, {whole.shape[1]} columns." in text
    for r in column_problems(whole).itertuples():
        assert f"| `{r.column}` | {r.problem} | {r.count} |" in text
    st = magnitude_comparison(whole["m_megacam_r"], whole["merr_megacam_r"], whole["m_suprime_r"],
                              whole["merr_suprime_r"])  # fmt: skip
    assert st["n_outliers"] >= 30  # the planted ones that are not NaN
    assert (f"| m_megacam_r - m_suprime_r | {st['n']} | {st['median']:.4f} | {st['mad']:.4f} | "
            f"{st['n_outliers']} | {st['outlier_fraction']:.4f} |") in text  # fmt: skip
    for band in ("megacam_r", "suprime_r"):
        _, counts = number_counts(whole[f"m_{band}"])
        assert f"- `m_{band}`: {counts.sum()} measurements" in text
    real = assoc[~assoc["is_position"]]
    for survey, grp in real.groupby("survey"):
        med = np.median(grp["separation_arcsec"])
        assert f"- {survey}: {len(grp)} matches, median {med:.3f} arcsec" in text
    assert f"{int(whole['flag_merged'].sum())} objects have flag_merged." in text
