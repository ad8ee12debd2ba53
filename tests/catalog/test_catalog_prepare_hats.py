"""Preparing a HATS survey partition by partition equals the whole-table preparation when no
calibration is measured (fixed aperture corrections, no reference)."""

from __future__ import annotations

import dataclasses

import astropy.units as u
import pandas as pd
from mocpy import MOC

from skysense.catalog.config import load_config
from skysense.catalog.hats_io import hats_files, read_hats_table
from skysense.catalog.preparation import prepare_table
from skysense.catalog.prepare_io import prepare_hats
from skysense.sim.catalogs import CatalogSim, write_catalogs
from skysense.sim.surveys import select_surveys


def test_partitions_equal_the_whole_table(tmp_path):
    sim = CatalogSim(n_objects=4000, seed=2, mag_limit=20.0, surveys=select_surveys(["swire"]))
    write_catalogs(sim, tmp_path / "sim", partition_rows=1000, scheduler="synchronous")
    config = load_config(tmp_path / "sim" / "configs" / "swire.yml")
    bands = tuple(dataclasses.replace(b, aperture_correction=0.21) for b in config.bands)
    config = dataclasses.replace(config, bands=bands)
    info = prepare_hats(config, tmp_path / "prepared" / "swire", scheduler="synchronous")
    assert info["partitions"] == len(hats_files(tmp_path / "sim" / "catalogues" / "swire")) > 1
    got = read_hats_table(tmp_path / "prepared" / "swire").drop(columns="_healpix_29")
    raw = read_hats_table(tmp_path / "sim" / "catalogues" / "swire").drop(columns="_healpix_29")
    whole = prepare_table(raw, config).table
    key = "swire_id"
    got = got.sort_values(key).reset_index(drop=True)
    whole = whole.sort_values(key).reset_index(drop=True)
    assert len(got) == len(whole) == info["rows"] > 1000
    # Duplicate searches stop at partition edges: compare the rest exactly.
    flags = [c for c in whole.columns if "dup" in c or c.startswith("flag_cleaned")]
    pd.testing.assert_frame_equal(
        got.drop(columns=flags), whole.drop(columns=flags)[got.drop(columns=flags).columns]
    )
    moc = MOC.from_fits(tmp_path / "prepared" / "swire_moc.fits")
    inside = moc.contains_lonlat(whole["swire_ra"].to_numpy() * u.deg,
                                 whole["swire_dec"].to_numpy() * u.deg)  # fmt: skip
    assert inside.all()
