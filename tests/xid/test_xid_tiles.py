"""HEALPix tiling and the restartable Dask engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.catalog.match import angular_sep_arcsec
from skysense.xid.engine import fit_tiles
from skysense.xid.simulate import simulate_field
from skysense.xid.tiles import cell_size_arcsec, make_tiles


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.integers(6, 9))
def test_every_source_owned_once_and_buffer_holds_neighbours(seed, order):
    rng = np.random.default_rng(seed)
    ra = 150 + rng.uniform(-0.3, 0.3, 300)
    dec = 2 + rng.uniform(-0.3, 0.3, 300)
    buf = 40.0
    tiles = make_tiles(ra, dec, order=order, buffer_arcsec=buf)
    owners = np.concatenate([t.own for t in tiles])
    assert np.array_equal(np.sort(owners), np.arange(300))
    for t in tiles[:5]:
        assert np.array_equal(t.fit[: t.own.size], t.own)
        # every source within the buffer distance of an own source is fitted with the tile
        near = set()
        for i in t.own:
            near.update(np.flatnonzero(angular_sep_arcsec(ra[i], dec[i], ra, dec) < buf).tolist())
        assert near <= set(t.fit.tolist())
        # and nothing far beyond the buffer is
        far = [
            j
            for j in t.fit
            if min(angular_sep_arcsec(ra[j], dec[j], ra[t.own], dec[t.own]))
            > cell_size_arcsec(order) * 1.5 + 2 * buf
        ]
        assert not far


def test_fit_tiles_join_and_restart(tmp_path):
    f = simulate_field(
        120, size_pix=90, noise_mjy=1.0, flux_min_mjy=5, flux_max_mjy=60, random_state=3
    )
    prior = f.sources[["id", "ra", "dec"]]
    kw = {"n_samples": 150, "n_warmup": 100, "n_chains": 2, "random_state": 1}
    cat = fit_tiles([f.sky], prior, tmp_path, order=9, buffer_arcsec=40.0, **kw)
    assert len(cat) == len(prior) and set(cat["HELP_ID"]) == set(prior["id"])
    tiles = sorted((tmp_path / "tiles").glob("*.parquet"))
    assert len(tiles) > 1
    # restart: finished tiles are not recomputed (their files keep their mtime)
    stamp = {p: p.stat().st_mtime_ns for p in tiles}
    tiles[0].unlink()
    cat2 = fit_tiles([f.sky], prior, tmp_path, order=9, buffer_arcsec=40.0, **kw)
    assert all(p.stat().st_mtime_ns == stamp[p] for p in tiles[1:])
    assert tiles[0].exists() and len(cat2) == len(prior)
    # tiled fluxes agree with the truth for bright sources
    m = cat2.merge(f.sources, left_on="HELP_ID", right_on="id")
    bright = m["flux_true"] > 20
    rel = (m["F_SPIRE_250"] - m["flux_true"]) / m["flux_true"]
    assert np.median(np.abs(rel[bright])) < 0.15
    assert len(pd.read_parquet(tmp_path / "catalogue.parquet")) == len(prior)
