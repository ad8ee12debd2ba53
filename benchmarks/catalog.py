"""Catalogue cross-match benchmark: skysense vs astropy ``search_around_sky`` vs LSDB.

Two simulated catalogues of N sources each (a random true population over a field of
N / 80 000 deg^2, i.e. ~22 sources per arcmin^2, and two noisy copies, 0.25 arcsec per
coordinate, each holding a random 10/11 of it, so they overlap partially) are matched at 1 arcsec:

* skysense: ``one_to_one_within`` (zone candidate search + exact test + greedy one-to-one);
* astropy: ``SkyCoord`` + ``search_around_sky``, then the same greedy step
  (``skysense.catalog.match.greedy_one_to_one``);
* LSDB: ``lsdb.from_dataframe`` for both catalogues (timed separately: "build"), then
  ``crossmatch`` (KD-tree, ``n_neighbors`` large enough to return every pair within the
  radius), computed on a local distributed cluster of 2 workers (threads of this process,
  one per core), then the same greedy step. LSDB runs at each partitioning of
  ``--lsdb-partitions`` (about that many partitions; 18 was its fastest here) and the best
  match step is reported alone (``lsdb_match_s``, the goal of issue #19) and with the greedy
  step.

All pairs within the radius and the one-to-one matches are checked to be identical across
the three, and against a brute-force search (every pair of rows, by
``angular_sep_arcsec``) in a corner of the field. Wall time is the best of ``--repeat``
runs; peak memory is the resident set increase of this process during one run (for LSDB,
workers are threads of this process so they are counted too). The machine is shared: every
row records the 1-minute load average before and after its timings (``load``); rerun when
they differ much.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np

from benchmarks._harness import Row, peak_rss_during

RADIUS_ARCSEC = 1.0
DENSITY_DEG2 = 80_000.0
SIGMA_ARCSEC = 0.25
BRUTE_BOX_DEG = 0.1  # side of the corner checked by brute force (~800 rows)


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", default=None, help="comma-separated sizes (default 0.5M,2M,8M)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repeats (best kept)")
    parser.add_argument("--no-lsdb", action="store_true", help="skip LSDB (slow at 8M)")
    parser.add_argument(
        "--lsdb-max", type=int, default=8_000_000, help="largest size run with LSDB"
    )
    parser.add_argument(
        "--astropy-max", type=int, default=8_000_000, help="largest size run with astropy"
    )
    parser.add_argument(
        "--lsdb-partitions",
        default="18",
        help="comma-separated partition counts tried for LSDB (best match step kept)",
    )


def simulate(n: int, seed: int = 0):
    """Two catalogues of ``n`` sources: noisy, partially overlapping copies of one population."""
    rng = np.random.default_rng(seed)
    n_true = int(n * 1.1)
    side = np.sqrt(n_true / DENSITY_DEG2)
    ra0, dec0 = 150.0, 2.0
    dec = dec0 + rng.uniform(0, side, n_true)
    ra = ra0 + rng.uniform(0, side, n_true) / np.cos(np.radians(dec0 + side / 2))
    out = []
    for _ in range(2):
        pick = np.sort(rng.choice(n_true, n, replace=False))
        d = dec[pick] + rng.normal(0, SIGMA_ARCSEC / 3600, n)
        r = ra[pick] + rng.normal(0, SIGMA_ARCSEC / 3600, n) / np.cos(np.radians(d))
        out.append((r, d))
    return out


def _pair_keys(i1, i2, m):
    return np.sort(np.asarray(i1, dtype=np.int64) * m + np.asarray(i2, dtype=np.int64))


def _skysense(cat1, cat2):
    from skysense.catalog.match import greedy_one_to_one, pairs_within

    pairs = pairs_within(cat1[0], cat1[1], cat2[0], cat2[1], RADIUS_ARCSEC)
    return pairs, greedy_one_to_one(*pairs)


def _astropy(cat1, cat2):
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    from skysense.catalog.match import greedy_one_to_one

    c1 = SkyCoord(cat1[0] * u.deg, cat1[1] * u.deg)
    c2 = SkyCoord(cat2[0] * u.deg, cat2[1] * u.deg)
    i1, i2, sep, _ = search_around_sky(c1, c2, RADIUS_ARCSEC * u.arcsec)
    sep = sep.to_value(u.arcsec)
    return (i1, i2, sep), greedy_one_to_one(i1, i2, sep)


def _brute_check(cat1, cat2, keys, n) -> bool:
    """Pairs of the rows in a corner of the field, by brute force, equal skysense's there."""
    from skysense.catalog.match import angular_sep_arcsec

    ra0, dec0 = cat1[0].min(), cat1[1].min()
    pad = 2 * RADIUS_ARCSEC / 3600 / np.cos(np.radians(dec0 + 1))

    def box(c, margin):
        return np.flatnonzero(
            (c[0] < ra0 + BRUTE_BOX_DEG + margin) & (c[1] < dec0 + BRUTE_BOX_DEG + margin)
        )

    q, r = box(cat1, 0.0), box(cat2, pad)
    sep = angular_sep_arcsec(
        cat1[0][q][:, None], cat1[1][q][:, None], cat2[0][r][None, :], cat2[1][r][None, :]
    )
    a, b = np.nonzero(sep <= RADIUS_ARCSEC)
    brute = _pair_keys(q[a], r[b], n)
    inside = np.isin(keys // n, q)
    return bool(len(brute) > 100 and np.array_equal(brute, keys[inside]))


def _lsdb_build(cat1, cat2, n_partitions):
    import lsdb
    import pandas as pd

    frames = [
        pd.DataFrame({"id": np.arange(len(c[0]), dtype=np.int64), "ra": c[0], "dec": c[1]})
        for c in (cat1, cat2)
    ]
    # Partitions of about n / n_partitions rows (18 at 2M was LSDB's fastest match step).
    rows = int(np.ceil(len(cat1[0]) / n_partitions))
    kw = {"ra_column": "ra", "dec_column": "dec", "partition_rows": rows}
    a = lsdb.from_dataframe(frames[0], catalog_name="a", margin_threshold=None, **kw)
    b = lsdb.from_dataframe(frames[1], catalog_name="b", margin_threshold=2 * RADIUS_ARCSEC, **kw)
    return a, b


def _lsdb_match(a, b):
    """LSDB's match step: every pair within the radius, computed."""
    # At this density and radius no source has more than a handful of neighbours; 8 is
    # checked against the skysense pair count (identical pairs).
    xm = a.crossmatch(b, n_neighbors=8, radius_arcsec=RADIUS_ARCSEC, suffixes=("_a", "_b"))
    df = xm.compute()
    i1 = df["id_a"].to_numpy(dtype=np.int64)
    i2 = df["id_b"].to_numpy(dtype=np.int64)
    return i1, i2, df["_dist_arcsec"].to_numpy(dtype=np.float64)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def run(opts):
    if opts.sizes:
        sizes = [
            int(float(s.rstrip("Mm")) * 1e6) if s[-1] in "Mm" else int(s)
            for s in opts.sizes.split(",")
        ]
    else:
        sizes = [500_000, 2_000_000] if opts.quick else [500_000, 2_000_000, 8_000_000]
    partitions = [int(x) for x in str(opts.lsdb_partitions).split(",")]
    rows: list[Row] = []
    meta = {"radius_arcsec": RADIUS_ARCSEC, "density_deg2": DENSITY_DEG2, "sigma_arcsec": SIGMA_ARCSEC,
            "sizes": sizes, "lsdb_partitions": partitions, "notes": []}  # fmt: skip
    # The machine is shared: record how busy it was (1-minute load average) before and after.
    meta["load_average_before"] = os.getloadavg()[0]
    # Warm up the numba kernels (compilation is cached on disk; this loads them).
    _skysense(*simulate(2000, seed=99))
    client = None
    if not opts.no_lsdb:
        from distributed import Client, LocalCluster

        # Threads of this process (so peak memory counts them), 2 workers = both cores.
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        )
        client = Client(cluster)
    from skysense.catalog.match import greedy_one_to_one

    try:
        for n in sizes:
            cats = simulate(n)
            label = f'{n / 1e6:g}M x {n / 1e6:g}M at 1"'
            gc.collect()
            best, load = np.inf, [_load()]
            for _ in range(opts.repeat):
                t, mem, (pairs, one) = peak_rss_during(lambda c=cats: _skysense(*c))
                best = min(best, t)
            load.append(_load())
            t_sky, mem_sky = best, mem
            keys = _pair_keys(pairs.i1, pairs.i2, n)
            one_keys = _pair_keys(one.i1, one.i2, n)
            brute = _brute_check(*cats, keys, n)
            meta[f"pairs_{n}"] = int(len(keys))
            meta[f"one_to_one_{n}"] = int(len(one_keys))
            meta[f"skysense_s_{n}"] = t_sky
            meta[f"skysense_load_{n}"] = load
            meta[f"brute_force_corner_identical_{n}"] = brute
            del pairs, one
            gc.collect()
            if n <= opts.astropy_max:
                try:
                    l0 = _load()
                    t_ast, mem_ast, (ap, aone) = peak_rss_during(lambda c=cats: _astropy(*c))
                    same = np.array_equal(_pair_keys(ap[0], ap[1], n), keys) and np.array_equal(
                        _pair_keys(aone.i1, aone.i2, n), one_keys
                    )
                    del ap, aone
                    rows.append(Row(f"crossmatch+greedy {label}", t_sky, t_ast, "astropy search_around_sky + greedy",
                                    unit="s", notes=f"identical pairs: {same}; brute-force corner identical: {brute}; "
                                    f"peak MB skysense {mem_sky / 2**20:.0f} vs astropy {mem_ast / 2**20:.0f}; "
                                    f"load {load[0]}/{load[1]} (skysense) {l0}/{_load()} (astropy)",
                                    extra={"identical": bool(same), "brute_force_corner": brute,
                                           "peak_mb_skysense": mem_sky / 2**20, "peak_mb_peer": mem_ast / 2**20,
                                           "load_skysense": load, "load_peer": [l0, _load()]}))  # fmt: skip
                except MemoryError:
                    meta["notes"].append(f"astropy at {n}: out of memory")
            else:
                meta["notes"].append(f"astropy skipped at {n} (--astropy-max)")
            gc.collect()
            if client is not None and n <= opts.lsdb_max:
                best_l = None
                for parts in partitions:
                    t0 = time.perf_counter()
                    a, b = _lsdb_build(*cats, parts)
                    t_build = time.perf_counter() - t0
                    n_parts = len(a.get_healpix_pixels())
                    l0 = _load()
                    t_m = np.inf
                    for _ in range(opts.repeat):
                        t, mem_l, lp = peak_rss_during(lambda a=a, b=b: _lsdb_match(a, b))
                        t_m = min(t_m, t)
                    l1 = _load()
                    t_g, lone = peak_rss_during(lambda lp=lp: greedy_one_to_one(*lp))[::2]
                    same = np.array_equal(_pair_keys(lp[0], lp[1], n), keys) and np.array_equal(
                        _pair_keys(lone.i1, lone.i2, n), one_keys
                    )
                    meta[f"lsdb_match_s_{n}_{n_parts}_partitions"] = t_m
                    if best_l is None or t_m < best_l[0]:
                        best_l = (t_m, t_g, n_parts, t_build, mem_l, same, [l0, l1])
                    del lp, lone, a, b
                    gc.collect()
                t_m, t_g, n_parts, t_build, mem_l, same, l_load = best_l
                for what, t_peer in (("match step alone", t_m), ("match + greedy", t_m + t_g)):
                    rows.append(Row(f"crossmatch+greedy {label}", t_sky, t_peer,
                                    f"lsdb crossmatch {what} ({n_parts} partitions, 2 workers)",
                                    unit="s", notes=f"identical pairs: {same}; lsdb catalogue building "
                                    f"{t_build:.1f} s not included; peak MB skysense {mem_sky / 2**20:.0f} vs "
                                    f"lsdb {mem_l / 2**20:.0f}; load {load[0]}/{load[1]} (skysense) "
                                    f"{l_load[0]}/{l_load[1]} (lsdb)",
                                    extra={"identical": bool(same), "lsdb_build_s": t_build,
                                           "lsdb_partitions": n_parts, "peak_mb_skysense": mem_sky / 2**20,
                                           "peak_mb_peer": mem_l / 2**20, "load_skysense": load,
                                           "load_peer": l_load}))  # fmt: skip
            elif client is not None:
                meta["notes"].append(f"lsdb skipped at {n} (--lsdb-max)")
            del cats
            gc.collect()
        two, eight = meta.get("skysense_s_2000000"), meta.get("skysense_s_8000000")
        if two and eight:
            meta["skysense_8M_over_2M"] = eight / two
    finally:
        meta["load_average_after"] = os.getloadavg()[0]
        if client is not None:
            client.close()
            cluster.close()
    return rows, meta
