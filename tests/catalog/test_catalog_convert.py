"""Streaming FITS/CSV/Parquet -> HATS conversion equals the whole-file conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skysense.catalog.convert_io import convert_to_hats
from skysense.catalog.hats_io import hats_files, read_hats_table, write_hats
from skysense.catalog.io import write_catalogue
from skysense.errors import InputError
from skysense.tables import iter_table_chunks, read_table


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Two clumps (one at the pole) so that partitions have very different sizes.
    ra = np.where(np.arange(n) % 3 == 0, rng.uniform(0, 360, n), rng.uniform(10, 10.5, n))
    dec = np.where(np.arange(n) % 3 == 0, rng.uniform(85, 90, n), rng.uniform(-1, -0.5, n))
    mag = rng.normal(22, 1, n)
    mag[rng.uniform(size=n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64) * 3 + 7,
            "ra": ra,
            "dec": dec,
            "mag": mag,
            "flag": rng.integers(0, 5, n).astype(np.int16),
            "name": [f"S{k:05d}" for k in range(n)],
        }
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("convert")
    df = _table(900)
    out = {}
    for fmt in ("fits", "csv", "parquet"):
        out[fmt] = write_catalogue(df, base / f"cat.{fmt}", format=fmt)
    # The reference: the whole table read at once, written by write_hats.
    ref = {
        fmt: read_hats_table(
            write_hats(read_table(p), base / f"ref_{fmt}", partition_rows=200, highest_order=6)
        )
        for fmt, p in out.items()
    }
    return base, out, ref


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunk=st.integers(1, 1200), fmt=st.sampled_from(["fits", "csv", "parquet"]))
def test_streaming_equals_whole_file(files, chunk, fmt, tmp_path_factory):
    base, paths, ref = files
    out = tmp_path_factory.mktemp("hats") / "cat"
    info = convert_to_hats(paths[fmt], out, chunk_rows=chunk, partition_rows=200, highest_order=6)
    assert info["rows"] == 900 and (info["ra"], info["dec"]) == ("ra", "dec")
    got = read_hats_table(out)
    pd.testing.assert_frame_equal(got, ref[fmt], check_dtype=True)
    assert len(hats_files(out)) == len(hats_files(base / f"ref_{fmt}")) > 2


@pytest.mark.parametrize("fmt", ["fits", "csv", "parquet"])
def test_chunks_concatenate_to_the_whole_read(files, fmt):
    _, paths, _ = files
    whole = read_table(paths[fmt])
    chunks = list(iter_table_chunks(paths[fmt], chunk_rows=250))
    assert [len(c) for c in chunks] == [250, 250, 250, 150]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    assert chunks[0].attrs["units"].keys() == whole.attrs["units"].keys()


def test_csv_column_numeric_then_text_is_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("ra,dec,x\n" + "".join(f"{k},1,{k}\n" for k in range(5)) + "9,1,abc\n")
    chunks = list(iter_table_chunks(path, chunk_rows=2))
    assert all(c["x"].dtype == read_table(path)["x"].dtype for c in chunks)
    assert pd.concat(chunks, ignore_index=True)["x"].tolist() == read_table(path)["x"].tolist()


def test_bad_position_names_the_row(tmp_path):
    df = _table(50)
    df.loc[37, "dec"] = 95.0
    path = write_catalogue(df, tmp_path / "bad.csv")
    with pytest.raises(InputError, match="37"):
        convert_to_hats(path, tmp_path / "out", chunk_rows=10)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


def test_votable_is_not_streamed(tmp_path):
    path = write_catalogue(_table(5), tmp_path / "t.vot", format="votable")
    with pytest.raises(InputError, match="chunks"):
        convert_to_hats(path, tmp_path / "out")
