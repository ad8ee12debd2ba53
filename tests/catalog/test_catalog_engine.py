"""The tiled Dask merge equals the single-machine merge exactly, across tile boundaries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from skysense.catalog.hats_io import read_hats_table, spatial_index
from skysense.catalog.merge_config import load_merge_config
from skysense.catalog.merge_io import run_merge

TILE_ORDER = 9  # 6.9 arcmin tiles: the 0.3 deg field below spans ~30 of them


def _catalogues(tmp_path, seed=1):
    rng = np.random.default_rng(seed)
    n = 2500
    ra = 45 + rng.uniform(0, 0.3, n)
    dec = -30 + rng.uniform(0, 0.3, n)
    # Crowded pairs so that greedy conflicts exist, some across tile edges.
    close = rng.uniform(size=n) < 0.3
    ra[close] = ra[np.roll(np.flatnonzero(close), 1)] + rng.normal(0, 0.6 / 3600, close.sum())
    dec[close] = dec[np.roll(np.flatnonzero(close), 1)] + rng.normal(0, 0.6 / 3600, close.sum())
    # A chain of sources 0.6" apart and 15 arcmin long across tiles: longer than the margin
    # (5 x 1.2") and the tiles' caps, so tiles holding it must be rerun with wider margins.
    chain_dec = -30 + 0.05 + np.arange(0, 900, 0.6) / 3600
    chain_ra = np.full(len(chain_dec), 45.15)
    files = []
    for k, (name, err) in enumerate((("a", 0.2), ("b", 0.3), ("c", 0.25))):
        keep = rng.uniform(size=n) < 0.75
        r = np.concatenate([ra[keep], chain_ra + 0.1 * k / 3600])
        d = np.concatenate([dec[keep], chain_dec])
        m = len(r)
        r = r + rng.normal(0, err / 3600, m)
        d = d + rng.normal(0, err / 3600, m)
        f = rng.lognormal(2, 1, m)
        df = pd.DataFrame({f"{name}_id": np.arange(m) * 7 + k, f"{name}_ra": r, f"{name}_dec": d,
                           "f_megacam_r": f, "ferr_megacam_r": f * rng.uniform(0.05, 0.2, m),
                           "m_megacam_r": 23.9 - 2.5 * np.log10(f), "flag_megacam_r": rng.uniform(size=m) < 0.1,
                           "stellarity": rng.uniform(size=m), "flag_gaia": rng.integers(0, 4, m).astype(np.int16)})  # fmt: skip
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
        files.append(tmp_path / f"{name}.parquet")
    return files


def test_tiled_merge_equals_single_machine(tmp_path):
    files = _catalogues(tmp_path)
    cfg = {"catalogues": [{"file": f.name, "position_error_arcsec": 0.25} for f in files],
           "radius_arcsec": 1.2, "same_filter_rule": "lowest_error", "bayes": True}  # fmt: skip
    cfg["catalogues"][2]["radius_arcsec"] = 1.0
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    config = load_merge_config(tmp_path / "m.yaml")
    run_merge(config, tmp_path / "single", tiled=False)
    # The default merge is the tiled one, on Dask's local scheduler.
    run_merge(config, tmp_path / "tiled", tile_order=TILE_ORDER)

    prov = json.loads((tmp_path / "tiled" / "provenance.json").read_text())
    assert prov["engine"] == "tiled" and prov["n_tiles"] > 10
    assert prov["scheduler"] == "local threads"
    assert prov["margin_arcsec"] >= 5 * 1.2
    assert prov["rounds"] >= 2  # the long chain forced a rerun with a wider margin

    a = read_hats_table(tmp_path / "single" / "masterlist").drop(columns="_healpix_29")
    b = read_hats_table(tmp_path / "tiled" / "masterlist").drop(columns="_healpix_29")
    a = a.sort_values("object_key").reset_index(drop=True)
    b = b.sort_values("object_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["flag_merged"].sum() > 20  # conflicts were exercised

    x = pd.read_parquet(tmp_path / "single" / "associations")
    y = pd.read_parquet(tmp_path / "tiled" / "associations")
    x = x.sort_values(["object_key", "survey"]).reset_index(drop=True)
    y = y.sort_values(["object_key", "survey"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(x, y, check_exact=True)

    # Pairs straddling tile boundaries were matched: an object whose rows lie in different tiles.
    shift = 2 * (29 - TILE_ORDER)
    tiles = {}
    for f, s in zip(files, "abc"):
        df = pd.read_parquet(f)
        hpx = spatial_index(df[f"{s}_ra"].to_numpy(), df[f"{s}_dec"].to_numpy()) >> shift
        tiles[s] = dict(zip(df[f"{s}_id"].astype(str), hpx))
    x["tile"] = [tiles[s][i] for s, i in zip(x["survey"], x["source_id"])]
    straddling = (x.groupby("object_key")["tile"].nunique() > 1).sum()
    assert straddling >= 5

    # The tiled output is a valid HATS catalogue partitioned at the tile order.
    import lsdb

    cat = lsdb.open_catalog(tmp_path / "tiled" / "masterlist")
    assert {p.order for p in cat.get_healpix_pixels()} == {TILE_ORDER}
    assert len(cat.compute()) == len(a)


def test_tiled_merge_on_a_scheduler_address(tmp_path):
    """``--scheduler ADDRESS`` runs the tiles on an existing cluster; same result, at the pole."""
    from distributed import LocalCluster

    rng = np.random.default_rng(4)
    files = []
    # Around the north pole, so tiles meet at the pole and across RA = 0/360.
    base_ra, base_dec = rng.uniform(0, 360, 300), rng.uniform(89.97, 89.9995, 300)
    for name in ("p", "q"):
        keep = rng.uniform(size=300) < 0.8
        m = int(keep.sum())
        dec = np.minimum(base_dec[keep] + rng.normal(0, 0.3 / 3600, m), 90.0)
        ra = (base_ra[keep] + rng.normal(0, 0.3 / 3600, m) / np.cos(np.radians(dec))) % 360
        df = pd.DataFrame({f"{name}_id": np.flatnonzero(keep), f"{name}_ra": ra, f"{name}_dec": dec,
                           "m_ukidss_k": rng.uniform(18, 22, m)})  # fmt: skip
        df.to_parquet(tmp_path / f"{name}.parquet")
        files.append(tmp_path / f"{name}.parquet")
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump({"catalogues": [f.name for f in files], "radius_arcsec": 1.0})
    )
    config = load_merge_config(tmp_path / "m.yaml")
    run_merge(config, tmp_path / "single", tiled=False)
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        run_merge(config, tmp_path / "remote", scheduler=cluster.scheduler_address, tile_order=9)
    prov = json.loads((tmp_path / "remote" / "provenance.json").read_text())
    assert prov["scheduler"].startswith(("tcp://", "inproc://")) and prov["n_tiles"] >= 4
    a = read_hats_table(tmp_path / "single" / "masterlist").drop(columns="_healpix_29")
    b = read_hats_table(tmp_path / "remote" / "masterlist").drop(columns="_healpix_29")
    n_rows = sum(len(pd.read_parquet(f)) for f in files)
    assert len(a) < n_rows - 150  # most sources matched across the pole region
    pd.testing.assert_frame_equal(
        a.sort_values("object_key").reset_index(drop=True),
        b.sort_values("object_key").reset_index(drop=True),
    )


def test_tiled_merge_reads_hats_inputs_in_place(tmp_path, monkeypatch):
    """HATS inputs are not loaded by the driver (positions only); same result as in memory."""
    from skysense.catalog import hats_io
    from skysense.catalog.hats_io import write_hats

    files = _catalogues(tmp_path, seed=7)
    # Small row groups: tiles read only the row groups that meet their cap, and the rows'
    # global numbers (which fix the merge order) must survive the skipping.
    monkeypatch.setattr(hats_io, "ROW_GROUP_ROWS", 64)
    entries = []
    for f, s in zip(files, "abc"):
        df = pd.read_parquet(f)
        df[f"{s}_poserr_arcsec"] = 0.25
        write_hats(
            df,
            tmp_path / f"{s}_hats",
            ra_column=f"{s}_ra",
            dec_column=f"{s}_dec",
            partition_rows=1000,
        )
        entries.append({"file": f"{s}_hats"})
    assert (
        max(
            pq.ParquetFile(f).metadata.num_row_groups
            for f in hats_io.hats_files(tmp_path / "a_hats")
        )
        > 5
    )
    cfg = {"catalogues": entries, "radius_arcsec": 1.2, "bayes": True}
    (tmp_path / "h.yaml").write_text(yaml.safe_dump(cfg))
    config = load_merge_config(tmp_path / "h.yaml")
    run_merge(config, tmp_path / "single", tiled=False)
    calls = []
    real = hats_io.read_hats_table

    def spy(path, columns=None):
        calls.append(columns)
        return real(path, columns)

    monkeypatch.setattr(hats_io, "read_hats_table", spy)
    run_merge(config, tmp_path / "tiled", tiled=True, tile_order=TILE_ORDER)
    # The driver reads no table, not even the positions: the workers check and count them
    # partition by partition (the n_rows recorded come from there).
    assert calls == []
    prov = json.loads((tmp_path / "tiled" / "provenance.json").read_text())
    n_rows = [len(read_hats_table(tmp_path / f"{s}_hats", columns=["_healpix_29"])) for s in "abc"]
    assert [i["n_rows"] for i in prov["inputs"]] == n_rows
    a = read_hats_table(tmp_path / "single" / "masterlist").drop(columns="_healpix_29")
    b = read_hats_table(tmp_path / "tiled" / "masterlist").drop(columns="_healpix_29")
    pd.testing.assert_frame_equal(
        a.sort_values("object_key").reset_index(drop=True),
        b.sort_values("object_key").reset_index(drop=True),
        check_exact=True,
    )
    x = pd.read_parquet(tmp_path / "single" / "associations").sort_values(["object_key", "survey"])
    y = pd.read_parquet(tmp_path / "tiled" / "associations").sort_values(["object_key", "survey"])
    pd.testing.assert_frame_equal(
        x.reset_index(drop=True), y.reset_index(drop=True), check_exact=True
    )


def test_cli_merge_is_tiled_by_default_and_equals_in_memory(tmp_path, capsys):
    """``skysense catalog merge`` uses the library's default (tiled); ``--in-memory`` gives the
    same masterlist and associations, in the same row order."""
    from skysense.cli.__main__ import main

    files = _catalogues(tmp_path, seed=3)
    cfg = {"catalogues": [f.name for f in files], "radius_arcsec": 1.2}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["catalog", "merge", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "t")]) == 0
    assert main(["catalog", "merge", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "m"),
                 "--in-memory"]) == 0  # fmt: skip
    assert capsys.readouterr().out.count("objects written") == 2
    engines = [json.loads((tmp_path / d / "provenance.json").read_text())["engine"] for d in "tm"]
    assert engines == ["tiled", "single-machine"]
    a = read_hats_table(tmp_path / "t" / "masterlist")
    b = read_hats_table(tmp_path / "m" / "masterlist")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    x = pd.read_parquet(tmp_path / "t" / "associations")
    y = pd.read_parquet(tmp_path / "m" / "associations")
    x = x.sort_values(["object_key", "survey"]).reset_index(drop=True)
    y = y.sort_values(["object_key", "survey"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(x, y, check_exact=True)


@pytest.mark.parametrize(
    "extra", [["--tiled"], ["--tile-order", "3"], ["--scheduler", "tcp://x:1"]]
)
def test_cli_merge_in_memory_refuses_tiled_options(tmp_path, capsys, extra):
    from skysense.cli.__main__ import main

    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"catalogues": ["a.fits"]}))
    argv = [
        "catalog",
        "merge",
        str(tmp_path / "m.yaml"),
        "--out",
        str(tmp_path / "o"),
        "--in-memory",
    ]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("skysense: error: --in-memory cannot be combined") and err.count("\n") == 1
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"scheduler": "tcp://127.0.0.1:1"}, "in-memory merge .* cannot run on a scheduler"),
        ({"tile_order": 5}, "tile_order applies to the tiled merge only"),
    ],
)
def test_run_merge_in_memory_refuses_tiled_options(tmp_path, kw, message):
    """The library refuses what the CLI refuses, before reading anything or writing."""
    from skysense.errors import InputError

    (tmp_path / "a.fits").write_bytes(b"")  # never read
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"catalogues": ["a.fits"]}))
    config = load_merge_config(tmp_path / "m.yaml")
    with pytest.raises(InputError, match=message):
        run_merge(config, tmp_path / "o", tiled=False, **kw)
    assert not (tmp_path / "o").exists()


def test_pipeline_refuses_an_in_memory_merge_on_a_scheduler(tmp_path):
    """``merge.tiled: false`` with a scheduler (``--scheduler`` or ``dask.scheduler``) is
    refused when the run starts (even a dry run), naming the key, not tiled quietly."""
    from skysense.errors import ConfigError
    from skysense.pipeline import run

    (tmp_path / "s.fits").write_bytes(b"")  # never read
    survey = {"survey": "s", "file": "s.fits", "columns": {"id": "i", "ra": "r", "dec": "d"},
              "bands": [{"name": "megacam_g", "mag": "g", "mag_err": "ge"}]}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(survey))
    raw = {"field": {"name": "f"}, "surveys": [{"config": "s.yaml"}], "merge": {"tiled": False}}
    (tmp_path / "field.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"merge\.tiled.*cannot run on a scheduler") as exc:
        run(tmp_path / "field.yaml", scheduler="tcp://127.0.0.1:1", dry_run=True)
    assert "merge.tiled: merge.tiled" not in str(exc.value)  # the key is named once
    raw["dask"] = {"scheduler": "tcp://127.0.0.1:1"}
    (tmp_path / "field.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"merge\.tiled"):
        run(tmp_path / "field.yaml", dry_run=True)
    # Without a scheduler the same configuration plans normally.
    raw.pop("dask")
    (tmp_path / "field.yaml").write_text(yaml.safe_dump(raw))
    assert run(tmp_path / "field.yaml", dry_run=True).steps


def test_histograms_counted_tile_by_tile_equal_those_of_all_pairs(tmp_path):
    """The plan's separation histograms, counted on the tiles (each pair by the tile of its
    later catalogue's row), equal the histogram of all pairs found at once, across tile
    edges, RA = 0/360 and the pole; hence the same radii as the in-memory plan."""
    from skysense.catalog.engine import merge_tiled
    from skysense.catalog.match import pairs_within
    from skysense.catalog.merge import load_prepared, plan_from_counts, plan_steps
    from skysense.catalog.radius import separation_edges

    rng = np.random.default_rng(11)
    n, search = 1500, 20.0
    # Half around RA = 0 near the equator, half within 0.05 deg of the north pole.
    ra = np.concatenate([rng.uniform(-0.03, 0.03, n // 2) % 360, rng.uniform(0, 360, n // 2)])
    dec = np.concatenate([rng.uniform(-0.03, 0.03, n // 2), rng.uniform(89.95, 90.0, n // 2)])
    inputs = []
    for name in "xyz":
        keep = rng.uniform(size=n) < 0.8
        m = int(keep.sum())
        d = np.clip(dec[keep] + rng.normal(0, 0.5 / 3600, m), -90, 90)
        r = (ra[keep] + rng.normal(0, 0.5 / 3600, m) / np.cos(np.radians(d))) % 360
        frame = pd.DataFrame({f"{name}_id": np.arange(m), f"{name}_ra": r, f"{name}_dec": d})
        inputs.append(load_prepared(frame, survey=name))
    edges = separation_edges(search)
    expected = [np.zeros(len(edges) - 1, dtype=np.int64)]
    for k in range(1, 3):
        ra_prev = np.concatenate([p.ra for p in inputs[:k]])
        dec_prev = np.concatenate([p.dec for p in inputs[:k]])
        sep = pairs_within(inputs[k].ra, inputs[k].dec, ra_prev, dec_prev, search).sep_arcsec
        expected.append(np.histogram(sep, bins=edges)[0])
    assert all(e.sum() > 1000 for e in expected[1:])
    options = dict(step_radius=lambda k: "auto", search_radius_arcsec=search)
    in_memory = plan_steps(inputs, **options)
    seen = []

    def planner(counts):
        seen.append(counts)
        return plan_from_counts(inputs, counts, **options)

    # Order-12 tiles (52") are a few search radii wide: many pairs straddle tile edges.
    info = merge_tiled(inputs, planner, tmp_path / "ml", tmp_path / "assoc", rule="priority",
                       bayes_on=False, tile_order=12, search_radius_arcsec=search)[1]  # fmt: skip
    assert info["n_tiles"] > 20
    for k in range(1, 3):
        np.testing.assert_array_equal(seen[0][k], expected[k])
        np.testing.assert_array_equal(in_memory.suggestions[k].counts, expected[k])
    assert [p.n_rows for p in inputs] == [len(p.ra) for p in inputs]
