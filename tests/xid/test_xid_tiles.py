"""HEALPix tiling and the restartable Dask engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.catalog.match import angular_sep_arcsec
from skysense.xid.engine import fit_tiles
from skysense.xid.fit import fit
from skysense.xid.model import BackgroundPrior, ConfusionPrior
from skysense.xid.simulate import simulate_field
from skysense.xid.tiles import cell_size_arcsec, cells_moc, choose_order, make_tiles


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    order=st.one_of(st.none(), st.integers(6, 9)),
    per_tile=st.integers(20, 200),
)
def test_every_source_owned_once_and_buffer_holds_neighbours(seed, order, per_tile):
    # fixed orders and the density-adapted tiles (order None) keep the same rules
    rng = np.random.default_rng(seed)
    ra = 150 + rng.uniform(-0.3, 0.3, 300)
    dec = 2 + rng.uniform(-0.3, 0.3, 300)
    buf = 40.0
    tiles = make_tiles(ra, dec, order=order, sources_per_tile=per_tile, buffer_arcsec=buf)
    assert len({t.name for t in tiles}) == len(tiles)
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
        span = cell_size_arcsec(t.order) * (1.5 if len(t.all_cells) == 1 else 3.0)
        far = [
            j
            for j in t.fit
            if min(angular_sep_arcsec(ra[j], dec[j], ra[t.own], dec[t.own])) > span + 2 * buf
        ]
        assert not far


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    ra_c=st.sampled_from([0.0, 150.0, 359.95]),
    per_tile=st.integers(20, 200),
)
def test_box_tiles_own_every_source_once_and_buffer_holds_neighbours(seed, ra_c, per_tile):
    # RA/Dec boxes, also across RA 0/360: own sources in the box, neighbours within the
    # buffer fitted, nothing beyond the box grown by the buffer, counts near the target
    rng = np.random.default_rng(seed)
    n, buf = 300, 40.0
    ra = (ra_c + rng.uniform(-0.3, 0.3, n)) % 360.0
    dec = 2 + rng.uniform(-0.3, 0.3, n)
    tiles = make_tiles(ra, dec, sources_per_tile=per_tile, buffer_arcsec=buf, shape="box")
    assert len({t.name for t in tiles}) == len(tiles) == max(1, round(n / per_tile))
    owners = np.concatenate([t.own for t in tiles])
    assert np.array_equal(np.sort(owners), np.arange(n))
    sizes = np.array([t.own.size for t in tiles])
    assert sizes.max() <= 2 * sizes.min() + 2  # equal-count strips and boxes
    for t in tiles[:5]:
        assert np.array_equal(t.fit[: t.own.size], t.own)
        r0, r1, d0, d1 = t.box
        ra_u = r0 + (ra - r0) % 360.0  # the box's RA may be unwrapped below 0
        ra_u = np.where(ra_u > r1 + 180.0, ra_u - 360.0, ra_u)
        tol = 1e-9  # deg: the outer edges are the extreme sources, unwrapped another way here
        assert np.all((ra_u[t.own] >= r0 - tol) & (ra_u[t.own] < r1 + tol))
        assert np.all((dec[t.own] >= d0) & (dec[t.own] < d1))
        near = set()
        for i in t.own:
            near.update(np.flatnonzero(angular_sep_arcsec(ra[i], dec[i], ra, dec) < buf).tolist())
        assert near <= set(t.fit.tolist())
        # the fitted ones lie within the buffer of the box (its corners: sqrt(2) buffers)
        dx = np.maximum(np.maximum(r0 - ra_u, ra_u - r1), 0) * np.cos(np.radians(dec)) * 3600
        dy = np.maximum(np.maximum(d0 - dec, dec - d1), 0) * 3600
        assert np.all(np.hypot(dx, dy)[t.fit] <= np.sqrt(2) * buf * 1.01)
        # and the tile's MOC holds its fitted sources (its pixels cover them)
        import astropy.units as u

        assert np.all(t.moc().contains_lonlat(ra[t.fit] * u.deg, dec[t.fit] * u.deg))


def test_box_tile_names_change_with_their_boxes():
    # a restart skips tiles by name: a name must not come back for another box (here after
    # a change of sources_per_tile), or a stale tile of other sources would be joined
    rng = np.random.default_rng(1)
    ra, dec = rng.uniform(10, 10.5, 400), rng.uniform(-1, -0.5, 400)
    a = make_tiles(ra, dec, sources_per_tile=100, shape="box")
    b = make_tiles(ra, dec, sources_per_tile=50, shape="box")
    again = make_tiles(ra, dec, sources_per_tile=100, shape="box")
    assert [t.name for t in again] == [t.name for t in a]
    assert {t.pixel for t in a} <= {t.pixel for t in b}  # the indices alone would collide
    for ta in a:
        for tb in b:
            assert (ta.name == tb.name) == (ta.box == tb.box)


def test_box_tiles_fall_back_to_healpix_near_a_pole():
    rng = np.random.default_rng(0)
    ra, dec = rng.uniform(0, 360, 200), rng.uniform(85, 89, 200)
    tiles = make_tiles(ra, dec, sources_per_tile=50, shape="box")
    assert all(t.box is None and t.order >= 0 for t in tiles)


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


def _clumpy_sky(n_uniform=4000, n_clump=4000, seed=0):
    """A 1 x 1 deg field plus a clump 10 x denser: no single HEALPix order suits both."""
    rng = np.random.default_rng(seed)
    ra = np.concatenate([rng.uniform(-0.5, 0.5, n_uniform), rng.uniform(0.1, 0.4, n_clump)])
    dec = np.concatenate([rng.uniform(-0.5, 0.5, n_uniform), rng.uniform(0.1, 0.4, n_clump)])
    return 150 + ra / np.cos(np.radians(2)), 2 + dec


def test_adaptive_tiles_hold_about_the_target():
    ra, dec = _clumpy_sky()
    target = 150
    tiles = make_tiles(ra, dec, sources_per_tile=target, buffer_arcsec=0.0)
    sizes = np.array([t.own.size for t in tiles])
    owners = np.concatenate([t.own for t in tiles])
    assert np.array_equal(np.sort(owners), np.arange(ra.size))
    assert sizes.max() <= 1.6 * target
    near = (sizes >= target / 2) & (sizes <= 1.6 * target)
    assert sizes[near].sum() >= 0.9 * ra.size  # only partial cells at the field edge are small
    assert abs(np.median(sizes) / target - 1) < 0.35
    assert len({t.order for t in tiles}) > 1  # the clump gets finer cells
    # a fixed order (the old default) puts the clump into tiles far above the target
    fixed = make_tiles(ra, dec, order=choose_order(ra, dec, target), buffer_arcsec=0.0)
    assert max(t.own.size for t in fixed) > 2.5 * target
    # deterministic: a restart finds the same tiles
    again = make_tiles(ra, dec, sources_per_tile=target, buffer_arcsec=0.0)
    assert [t.name for t in again] == [t.name for t in tiles]


@pytest.mark.parametrize("shape", ["healpix", "box"])
def test_tiled_fit_equals_single_fit_away_from_tile_edges(tmp_path, shape):
    import astropy.units as u

    f = simulate_field(
        360, size_pix=120, noise_mjy=1.0, flux_min_mjy=2, flux_max_mjy=60, random_state=5
    )
    prior = f.sources[["id", "ra", "dec"]]
    # background, sigma_conf and the flux prior pinned: each tile fits its own background and
    # confusion (from fewer pixels), and the hierarchical prior's population is fixed in the
    # tiles from pilot tiles (test_xid_tiles_hierarchical.py), which shifts fluxes by their own
    # posterior uncertainty; here only the tiling itself differs
    kw = {
        "flux_kind": "uniform",
        "n_samples": 1000,
        "n_warmup": 300,
        "n_chains": 4,
        "random_state": 2,
        "bkg_priors": {"spire_250": BackgroundPrior(0.0, 1e-3)},
        "conf_priors": {"spire_250": ConfusionPrior("none")},
    }
    single = fit([f.sky], prior, on_duplicate="keep", **kw).catalogue().set_index("HELP_ID")
    cat = fit_tiles(
        [f.sky], prior, tmp_path, sources_per_tile=90, buffer_arcsec=40.0, on_duplicate="keep",
        tile_shape=shape, **kw,
    ).set_index("HELP_ID")  # fmt: skip
    tiles = make_tiles(prior.ra.to_numpy(), prior.dec.to_numpy(), sources_per_tile=90, shape=shape)
    assert 3 <= len(tiles) <= 8
    assert len(cat) == len(prior) and cat.index.is_unique
    assert set(cat["xid_tile"]) == {t.name for t in tiles}
    # sources at least one beam FWHM inside their tile's own cells (or box)
    phi = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    inner = []
    for t in tiles:
        moc = cells_moc(t.all_cells, 0.0) if t.box is None else None
        for i in t.own:
            r = 18.15 / 3600
            ra_c = prior.ra.iloc[i] + r * np.cos(phi) / np.cos(np.radians(prior.dec.iloc[i]))
            dec_c = prior.dec.iloc[i] + r * np.sin(phi)
            if moc is not None:
                ok = np.all(moc.contains_lonlat(ra_c * u.deg, dec_c * u.deg))
            else:
                r0, r1, d0, d1 = t.box
                ok = np.all((ra_c >= r0) & (ra_c < r1) & (dec_c >= d0) & (dec_c < d1))
            if ok:
                inner.append(prior.id.iloc[i])
    assert len(inner) > 150
    a, b = cat.loc[inner], single.loc[inner]
    sd = (b["FErr_SPIRE_250_u"] - b["FErr_SPIRE_250_l"]) / 2
    # within MCMC error (4 x 1000 draws: ~0.04 sd per run): independent runs of one posterior
    assert np.all(np.abs(a["F_SPIRE_250"] - b["F_SPIRE_250"]) < 0.15 * sd)
    wa = a["FErr_SPIRE_250_u"] - a["FErr_SPIRE_250_l"]
    ratio = wa / (2 * sd)
    assert np.all((ratio > 0.8) & (ratio < 1.25))


def test_fit_tiles_bad_prior(tmp_path):
    from skysense.errors import InputError

    f = simulate_field(10, size_pix=30, random_state=1)
    prior = f.sources[["id", "ra", "dec"]]
    with pytest.raises(InputError, match="empty"):
        fit_tiles([f.sky], prior.iloc[:0], tmp_path)
    dup = pd.concat([prior, prior.iloc[[3]]], ignore_index=True)
    with pytest.raises(InputError, match="'s3' repeats") as exc:
        fit_tiles([f.sky], dup, tmp_path)
    assert exc.value.row == 10


def test_fit_tiles_on_a_dask_cluster_matches_the_local_run(tmp_path):
    # the cluster path sends each task its own map boxes, a window at a time (more tiles
    # than the window here); results are the local threads' ones, tile seeds being fixed
    from distributed import LocalCluster

    f = simulate_field(
        150, size_pix=90, noise_mjy=1.0, flux_min_mjy=5, flux_max_mjy=60, random_state=6
    )
    prior = f.sources[["id", "ra", "dec"]]
    kw = {"n_samples": 60, "n_warmup": 60, "n_chains": 2, "random_state": 2}
    kw["flux_kind"] = "uniform"
    local = fit_tiles([f.sky], prior, tmp_path / "a", order=10, buffer_arcsec=40.0, **kw)
    assert local["xid_tile"].nunique() > 3
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        remote = fit_tiles(
            [f.sky], prior, tmp_path / "b", order=10, buffer_arcsec=40.0,
            scheduler=cluster.scheduler_address, **kw,
        )  # fmt: skip
    a = local.set_index("HELP_ID").loc[prior["id"]]
    b = remote.set_index("HELP_ID").loc[prior["id"]]
    np.testing.assert_allclose(b["F_SPIRE_250"], a["F_SPIRE_250"])
    assert (b["xid_tile"] == a["xid_tile"]).all()
