"""The catalogue-only scale simulator: determinism, truth, HATS layout."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from skysense.catalog.hats_io import hats_files, read_hats_table, spatial_index
from skysense.errors import InputError
from skysense.sim.catalogs import GEN_ORDER, CatalogSim, field_cells, write_catalogs

N = 6000
SIM = CatalogSim(n_objects=N, seed=5, center=(35.0, -5.0), mag_limit=20.0)


def _sorted(df):
    return df.sort_values("_healpix_29", kind="stable").reset_index(drop=True)


def _digests(root):
    return {
        str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(root.rglob("Npix=*.parquet"))
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    base = tmp_path_factory.mktemp("catalogs")
    # Few objects per cell over several cells, so partitions group several cells.
    a = write_catalogs(SIM, base / "a", partition_rows=N, scheduler="synchronous")
    return base, a


def test_same_rows_whatever_the_partitioning_and_scheduler(written):
    base, a = written
    b = write_catalogs(SIM, base / "b", partition_rows=1, scheduler="threads")
    assert a["partition_order"] < b["partition_order"] == GEN_ORDER
    for name in ["truth/objects", *(f"catalogues/{s.name}" for s in SIM.surveys)]:
        ta, tb = read_hats_table(base / "a" / name), read_hats_table(base / "b" / name)
        assert len(ta) > 0
        assert _sorted(ta).equals(_sorted(tb)), name
    # Same partitioning, another scheduler: byte-identical files.
    c = write_catalogs(SIM, base / "c", partition_rows=N, scheduler="threads")
    assert c["catalogues"] == a["catalogues"]
    assert _digests(base / "a") == _digests(base / "c")


def test_another_seed_differs(written, tmp_path):
    base, _ = written
    other = CatalogSim(n_objects=N, seed=6, center=(35.0, -5.0), mag_limit=20.0)
    write_catalogs(other, tmp_path / "o", partition_rows=N, scheduler="synchronous")
    ta = read_hats_table(base / "a" / "truth/objects")
    tb = read_hats_table(tmp_path / "o" / "truth/objects")
    assert len(ta) == len(tb) == N
    assert not np.allclose(np.sort(ta["ra"]), np.sort(tb["ra"]))


def test_truth_rows_and_objects_are_consistent(written):
    base, manifest = written
    objects = read_hats_table(base / "a" / "truth/objects")
    assert len(objects) == N == objects["object_id"].nunique()
    cells = set(field_cells(manifest["n_cells"], SIM.center).tolist())
    assert set((objects["_healpix_29"].to_numpy() >> (2 * (29 - GEN_ORDER))).tolist()) <= cells
    assert manifest["catalogue_rows"] == sum(
        len(read_hats_table(base / "a" / f"catalogues/{s.name}")) for s in SIM.surveys
    )
    for spec in SIM.surveys:
        cat = read_hats_table(base / "a" / f"catalogues/{spec.name}")
        rows = read_hats_table(base / "a" / f"truth/rows_{spec.name}")
        assert len(cat) == len(rows) > 0
        assert cat[spec.id_column].astype(str).tolist() == rows["source_id"].tolist()
        assert rows["source_id"].is_unique
        assert set(rows["object_id"]) <= set(objects["object_id"])
        # Positions, _healpix_29 and partition files agree (the HATS contract).
        hpx = spatial_index(cat[spec.ra_column].to_numpy(), cat[spec.dec_column].to_numpy())
        assert np.array_equal(hpx, cat["_healpix_29"].to_numpy())
        # Catalogued positions lie within a few arcsec of their true object.
        # (The truth rows hold no positions: row k is the catalogue's row k.)
        truth = objects.set_index("object_id").loc[rows["object_id"]]
        d_dec = (cat[spec.dec_column].to_numpy() - truth["dec"].to_numpy()) * 3600
        assert np.all(np.abs(d_dec) < 4.0)
        real = ~rows["is_duplicate"].to_numpy()
        assert abs(np.median(d_dec[real]) - spec.offset_dec_arcsec) < 0.05
    # The objects' _healpix_29 is their position's (they are drawn as order-29 pixels).
    hpx = spatial_index(objects["ra"].to_numpy(), objects["dec"].to_numpy())
    assert np.array_equal(hpx, objects["_healpix_29"].to_numpy())
    frac = SIM.star_density_deg2 / SIM.density_deg2  # binomial: sd ~ 0.0065 here
    assert abs(objects["is_star"].mean() - frac) < 0.03
    suprime = read_hats_table(base / "a" / "truth/rows_suprime")
    assert suprime["is_duplicate"].any() and suprime["is_bad_flux"].any()
    files = hats_files(base / "a" / "catalogues/swire")
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == len(
        read_hats_table(base / "a" / "catalogues/swire")
    )
    saved = json.loads((base / "a" / "manifest.json").read_text())
    assert saved["n_objects"] == N


def test_objects_are_uniform_within_their_cells(written):
    """The sorted sub-pixels (order statistics from exponential spacings) are uniform: the
    objects' offsets inside their generation cell pass a KS test, and no two cells' counts
    differ by more than one."""
    from scipy.stats import kstest

    base, _ = written
    hpx = read_hats_table(base / "a" / "truth/objects")["_healpix_29"].to_numpy()
    shift = 2 * (29 - GEN_ORDER)
    frac = (hpx & ((1 << shift) - 1)) / float(1 << shift)
    assert kstest(frac, "uniform").pvalue > 1e-3
    # Uniform on the sphere inside a cell means uniform in the sub-pixel index; the first
    # and last quarters of the cell hold about a quarter each.
    assert abs(np.mean(frac < 0.25) - 0.25) < 0.03 and abs(np.mean(frac >= 0.75) - 0.25) < 0.03
    counts = np.unique(hpx >> shift, return_counts=True)[1]
    assert counts.max() - counts.min() <= 1


def test_hats_library_reads_it(written):
    import hats

    base, manifest = written
    cat = hats.read_hats(base / "a" / "catalogues" / "cfhtls")
    assert cat.catalog_info.total_rows == manifest["catalogues"]["catalogues/cfhtls"]["rows"]


def test_field_cells_near_a_pole_and_nearest_first():
    cells = field_cells(50, (10.0, 89.9))
    assert len(np.unique(cells)) == 50
    import astropy.units as u
    import cdshealpix.nested

    _, lat = cdshealpix.nested.healpix_to_lonlat(cells, GEN_ORDER)
    assert np.all(lat.to_value(u.deg) > 85.0)


@pytest.mark.parametrize(
    "kw", [{"n_objects": 0}, {"n_objects": 10, "seed": -1}, {"n_objects": 10, "center": (0, 95)}]
)
def test_bad_parameters(kw, tmp_path):
    with pytest.raises(InputError):
        write_catalogs(CatalogSim(**kw), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_simulates_and_prepares_by_partition(tmp_path, capsys):
    from skysense.cli.__main__ import main

    out = tmp_path / "sim"
    assert main(["sim", "catalogs", "--out", str(out), "--objects", "3000", "--mag-limit", "20",
                 "--surveys", "swire", "--partition-rows", "1000"]) == 0  # fmt: skip
    assert "3000 objects" in capsys.readouterr().out
    cfg = out / "configs" / "swire.yml"
    assert main(["catalog", "prepare", str(cfg), "--out", str(tmp_path / "prep"),
                 "--scheduler", "synchronous"]) == 0  # fmt: skip
    assert "prepared rows" in capsys.readouterr().out
    assert len(hats_files(tmp_path / "prep")) == len(hats_files(out / "catalogues" / "swire")) > 1
    assert (tmp_path / "prep_moc.fits").is_file()
    assert main(["sim", "catalogs", "--out", str(tmp_path / "x"), "--objects", "-5"]) == 2
    assert "n_objects" in capsys.readouterr().err


def _peak_rss() -> tuple[int, int]:
    """(pid, peak resident bytes) of the calling process's own image.

    VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across fork and exec, so a worker
    started from a large parent (a pytest process) would report the parent's peak.
    """
    import os

    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return os.getpid(), kib * 1024


def test_workers_stay_within_their_memory_limit_on_a_process_cluster(written, tmp_path):
    """Two worker processes with a memory limit: the run completes with no worker restarted,
    each worker's peak RSS below the limit, and the same rows as the in-process run."""
    import os

    from distributed import Client, LocalCluster

    base, a = written
    limit = 900e6
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        info = client.scheduler_info()["workers"]
        assert len(info) == 2 and all(w["memory_limit"] == limit for w in info.values())
        before = client.run(_peak_rss)
        assert all(pid != os.getpid() for pid, _ in before.values())
        m = write_catalogs(SIM, tmp_path / "c", partition_rows=500,
                           scheduler=cluster.scheduler_address)  # fmt: skip
        after = client.run(_peak_rss)
    assert m["catalogues"]["truth/objects"]["partitions"] >= 4
    # Same worker processes (none was killed and restarted for memory), all below the limit.
    assert {w: pid for w, (pid, _) in after.items()} == {w: pid for w, (pid, _) in before.items()}
    assert all(peak < limit for _, peak in after.values()), after
    for name in ["truth/objects", "catalogues/cfhtls"]:
        ta, tc = read_hats_table(base / "a" / name), read_hats_table(tmp_path / "c" / name)
        assert _sorted(ta).equals(_sorted(tc)), name
