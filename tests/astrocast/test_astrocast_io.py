import h5py
import numpy as np
import pandas as pd
import pytest

from skysense.astrocast.io import (
    prepare_series,
    read_astrocast_h5,
    read_csv_series,
    read_netcdf_series,
    write_table,
)
from skysense.errors import InputError


def _frame(n=80, step=10):
    d = pd.date_range("2010-01-01", periods=n, freq=f"{step}D")
    return pd.DataFrame({"date": d, "ndvi": 0.4 + 0.2 * np.sin(np.arange(n) / 6)})


def test_prepare_sorts_and_deduplicates_with_report():
    f = _frame()
    bad = pd.concat([f.iloc[::-1], f.iloc[[3]]], ignore_index=True)
    with pytest.warns(UserWarning, match="sorted"):
        out, repairs = prepare_series(bad)
    assert out["date"].is_monotonic_increasing and not out["date"].duplicated().any()
    assert len(repairs) == 2 and len(out) == len(f)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f: f.assign(ndvi=np.where(f.index == 7, 1.5, f.ndvi)), "outside"),
        (lambda f: f.assign(ndvi=np.nan), "missing"),
        (lambda f: f.iloc[:20], "spans"),
    ],
)
def test_prepare_rejects_bad_series(mutate, match):
    with pytest.raises(InputError, match=match) as e:
        prepare_series(mutate(_frame()), source="x.csv")
    assert "x.csv" in str(e.value)
    if match == "outside":
        assert e.value.row == 7


def test_h5_layout_roundtrip(tmp_path):
    p = tmp_path / "c.h5"
    rows = np.array(
        [[20010101, 0.4, 30, 30, 0, 0], [20010111, 0.5, 40, 35, 0, 33.0], [0, 0, 0, 0, 0, 37.0]]
    )
    with h5py.File(p, "w") as fh:
        ds = fh.create_dataset("Alpha", data=rows)
        ds.attrs["Column_Names"] = ["Date", "NDVI", "VCI", "VCI3M", "0 lag time", "10 day lag time"]
    df = read_astrocast_h5(p)
    assert list(df.columns) == [
        "region",
        "date",
        "ndvi",
        "vci",
        "vci3m",
        "hindcast_0d",
        "hindcast_10d",
    ]
    assert len(df) == 2 and df.date.iloc[1] == pd.Timestamp("2001-01-11")
    assert np.isnan(df.hindcast_10d.iloc[0]) and df.hindcast_10d.iloc[1] == 33.0


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".nc"])
def test_write_table_formats(tmp_path, suffix):
    f = _frame(5).assign(region="a")
    out = write_table(f, tmp_path / f"t{suffix}")
    assert out.exists() and not list(tmp_path.glob("*.tmp*"))
    if suffix == ".csv":
        back = read_csv_series(out)
        np.testing.assert_allclose(back.ndvi, f.ndvi)
    if suffix == ".nc":
        import xarray as xr

        ds = xr.Dataset(
            {"ndvi": (("time", "pixel"), np.ones((4, 2)))},
            coords={"time": pd.date_range("2001", periods=4), "pixel": [0, 1]},
        )
        ds.to_netcdf(tmp_path / "stack.nc")
        back = read_netcdf_series(tmp_path / "stack.nc")
        assert back.region.nunique() == 2 and len(back) == 8


def test_write_table_rejects_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match="format"):
        write_table(_frame(3), tmp_path / "x.xlsx")
