"""HATS output: readable by lsdb, hats and pyarrow; atomic; FITS on request."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from skysense.catalog.hats_io import plan_partitions, read_hats_table, spatial_index, write_hats
from skysense.errors import InputError


def _table(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    # Two fields, one across RA = 0/360, so partitions are scattered over the sky.
    ra = np.concatenate(
        [rng.uniform(359.5, 360.5, n // 2) % 360, rng.uniform(150, 151, n - n // 2)]
    )
    dec = np.concatenate([rng.uniform(-1, 1, n // 2), rng.uniform(2, 3, n - n // 2)])
    return pd.DataFrame({"help_id": [f"HELP_{i:06d}" for i in range(n)], "object_key": np.arange(n, dtype=np.int64),
                         "ra": ra, "dec": dec, "f_x": rng.normal(size=n), "flag_merged": rng.uniform(size=n) < 0.1})  # fmt: skip


def test_write_hats_readable_everywhere(tmp_path):
    import hats
    import lsdb

    df = _table()
    path = write_hats(df, tmp_path / "ml", partition_rows=1000)
    cat = hats.read_hats(path)
    assert cat.catalog_info.total_rows == len(df)
    assert cat.catalog_info.ra_column == "ra" and cat.catalog_info.catalog_type == "object"
    pixels = cat.get_healpix_pixels()
    assert len(pixels) >= 6
    # Each partition holds only rows inside its pixel, sorted by the spatial index.
    for px in pixels:
        part = pd.read_parquet(hats.io.paths.pixel_catalog_file(path, px).path)
        assert len(part) <= 1000
        h = part["_healpix_29"].to_numpy()
        assert np.all(np.diff(h) >= 0)
        assert np.all(h >> (2 * (29 - px.order)) == px.pixel)
        np.testing.assert_array_equal(
            h, spatial_index(part["ra"].to_numpy(), part["dec"].to_numpy())
        )
    got = lsdb.open_catalog(path).compute()
    got = got.sort_values("object_key").reset_index(drop=True)
    assert len(got) == len(df)
    np.testing.assert_array_equal(got["ra"].to_numpy(), df["ra"].to_numpy())
    assert got["help_id"].tolist() == df["help_id"].tolist()
    # lsdb spatial queries work on it.
    cone = lsdb.open_catalog(path).cone_search(150.5, 2.5, 600).compute()
    expected = (
        (df["ra"] - 150.5) ** 2 * np.cos(np.radians(2.5)) ** 2 + (df["dec"] - 2.5) ** 2
        <= (600 / 3600) ** 2
    ).sum()
    assert abs(len(cone) - expected) <= 2
    plain = ds.dataset(str(path / "dataset"), format="parquet").to_table().to_pandas()
    assert len(plain) == len(df)
    assert len(read_hats_table(path)) == len(df)


@pytest.mark.parametrize("highest_order", [0, 1, 3, 5])
def test_plan_partitions_equals_the_hats_alignment(highest_order):
    """The array version of the partition plan equals hats' own ``generate_alignment``
    (empty siblings dropped) on scattered and clustered histograms, cell by cell."""
    from hats.pixel_math.partition_stats import generate_alignment

    rng = np.random.default_rng(highest_order)
    n = 12 * 4**highest_order
    collapsed = 0
    for trial in range(24):
        hist = np.zeros(n, dtype=np.int64)
        k = int(rng.integers(1, n // 3 + 2))
        if trial % 2:  # clustered: parents below the threshold with several children in use
            cells = np.clip(rng.integers(0, n) + rng.integers(-n // 8 - 1, n // 8 + 1, k), 0, n - 1)
        else:
            cells = rng.integers(0, n, k)
        np.add.at(hist, cells, rng.integers(1, 50, k))
        partition_rows = int(rng.integers(1, 400))
        got = plan_partitions(hist, partition_rows, highest_order)
        want = generate_alignment(hist, highest_order=highest_order, lowest_order=0,
                                  threshold=max(partition_rows, int(hist.max())),
                                  drop_empty_siblings=True)  # fmt: skip
        assert len(got) == len(want) == n
        for cell, (g, w) in enumerate(zip(got, want)):
            assert (g is None) == (w is None), cell
            if w is not None:
                assert g == tuple(int(v) for v in w), cell
        collapsed += sum(1 for g in got if g is not None and g[0] < highest_order)
    assert highest_order == 0 or collapsed > 0  # merging into parents was exercised
    with pytest.raises(ValueError, match="size"):
        plan_partitions(np.ones(n + 1, dtype=np.int64), 10, highest_order)


def test_write_hats_is_atomic_and_validates(tmp_path):
    df = _table(200)
    write_hats(df, tmp_path / "ml")
    before = sorted(p.name for p in (tmp_path / "ml").rglob("*"))
    bad = df.copy()
    bad.loc[5, "dec"] = np.nan
    with pytest.raises(InputError, match="row 5"):
        write_hats(bad, tmp_path / "ml")
    assert sorted(p.name for p in (tmp_path / "ml").rglob("*")) == before
    with pytest.raises(InputError, match="empty"):
        write_hats(df.iloc[:0], tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
