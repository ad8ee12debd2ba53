"""XID+ benchmark: effective samples per second, Gibbs sampler vs numpyro NUTS, same model/data.

Each tile is a simulated SPIRE 250 um field (6 arcsec pixels, 18.15 arcsec FWHM, 2 mJy/beam
noise, Euclidean counts 1-100 mJy) at the source density of the XID+ COSMOS test problem
(about 17 pixels per prior source), fitted with XID+'s SPIRE model (uniform flux priors up to
the map-based bound, Normal background, HalfCauchy(0.5) sigma_conf). Rate = min over sources
of the bulk ESS of the flux, divided by the wall time of the kept draws; compilation and
warm-up are excluded from the rate and reported separately. Agreement: |median difference| in
units of the NUTS posterior sd and the ratio of the 16-84% widths, over all sources.

Since #18 the flux prior is the hierarchical population prior on both sides (XID+'s white
sigma_conf kept, since the numpyro reference has no correlated field). Tiles of up to 600
sources also run the Gibbs sampler's default, the correlated confusion field, on the same
simulated tile: its ESS/s goes into the row's extras (``gibbs_correlated_*``); it is a rate
of a richer model than the NUTS one, not a like-for-like ratio. Rows of sizes not run now
are kept from the previous results file with the time they were measured.

``--part blind`` runs only the blind-extraction and hidden-source rows
(:mod:`benchmarks._xid_blind`), ``--part sampler`` only the rows above; either keeps the other
part's rows from the previous results file.
"""

from __future__ import annotations

import math
import time

import numpy as np

from benchmarks._harness import Row

__all__ = ["run", "add_arguments"]


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", default="50,600,2500", help="sources per tile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--part",
        default="all",
        choices=["all", "sampler", "blind"],
        help="sampler: Gibbs vs NUTS only; blind: blind extraction and hidden sources only "
        "(the other part's rows are kept from the previous results file)",
    )
    parser.add_argument("--blind-areas", default="1,10", help="blind map areas, deg^2")


def _tile(nsrc: int, seed: int, flux_kind: str = "hierarchical", correlated: bool = False):
    """A simulated SPIRE 250 tile of ``nsrc`` sources, hierarchical flux prior (#18: both
    samplers), XID+'s white sigma_conf (the NUTS reference has no correlated field) or, with
    ``correlated``, the correlated confusion field (the Gibbs sampler's default since #18)."""
    from skysense.xid.fit import build_band_model
    from skysense.xid.model import default_conf_prior
    from skysense.xid.simulate import simulate_field

    side = int(math.sqrt(17.0 * nsrc))
    sim = simulate_field(
        nsrc,
        size_pix=side,
        noise_mjy=2.0,
        flux_min_mjy=1.0,
        flux_max_mjy=100.0,
        random_state=seed,
    )
    model, _, _ = build_band_model(
        sim.sky,
        sim.sources[["id", "ra", "dec"]],
        on_duplicate="keep",
        flux_kind=flux_kind,
        conf_prior=default_conf_prior("spire_250", correlated=correlated),
    )
    return model


def _agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """(max, 95th pct of |dmedian|/sd_b, min, max width ratio a/b); a, b (draws, nsrc)."""
    sd = b.std(axis=0)
    d = np.abs(np.median(a, 0) - np.median(b, 0)) / sd

    def w(x):
        return np.percentile(x, 84.1, 0) - np.percentile(x, 15.9, 0)

    r = w(a) / w(b)
    return float(d.max()), float(np.percentile(d, 95)), float(r.min()), float(r.max())


def _previous_sampler_rows(sizes: list[int]) -> list[Row]:
    """The previous results file's Gibbs-vs-NUTS rows of the tile sizes not run now, marked
    with the time they were measured (so that ``--sizes 600`` does not erase 50 and 2500)."""
    import json

    from benchmarks._harness import RESULTS
    from benchmarks._xid_blind import _is_blind

    path = RESULTS / "xid.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    carried = old.get("meta", {}).get("carried_over") or {}
    # rows carried over by a blind-only run keep the time of their own run
    when = carried.get("from") if carried.get("part") == "sampler" else old.get("when")
    out = []
    for r in old.get("rows", []):
        extra = r.get("extra") or {}
        if _is_blind(r["task"]) or extra.get("nsrc") in sizes:
            continue
        extra = {**extra, "measured": extra.get("measured", when)}
        out.append(Row(**{**{k: v for k, v in r.items() if k != "ratio"}, "extra": extra}))
    return out


def _correlated_gibbs(nsrc: int, seed: int, n_draws: int) -> dict:
    """ESS/s of the Gibbs sampler with the correlated confusion field on the same simulated
    tile (the numpyro reference has no such model: this is the default sampler's rate)."""
    from skysense.xid.diagnostics import ess_bulk
    from skysense.xid.sampler import sample_band

    model = _tile(nsrc, seed, correlated=True)
    load = open("/proc/loadavg").read().split()[:3]
    g = sample_band(model, n_samples=n_draws, n_warmup=500, n_chains=4, random_state=1)
    ess = ess_bulk(g.flux)
    return {
        "gibbs_correlated_sampling_s": g.sampling_s,
        "gibbs_correlated_warmup_s": g.warmup_s,
        "gibbs_correlated_sampling_cpu_s": g.sampling_cpu_s,
        "gibbs_correlated_min_ess": float(ess.min()),
        "gibbs_correlated_median_ess": float(np.median(ess)),
        "gibbs_correlated_min_ess_per_s": float(ess.min() / g.sampling_s),
        "gibbs_correlated_min_ess_per_cpu_s": float(ess.min() / g.sampling_cpu_s),
        "gibbs_correlated_amp_median": float(np.median(g.sigma_conf)),
        "gibbs_correlated_load_before": load,
    }


def _hyper_ess(prefix: str, post) -> dict:
    """Bulk ESS of the population's moments and skew draws (hierarchical prior), if any."""
    from skysense.xid.diagnostics import ess_bulk

    out = {}
    for name in ("pop_median_mjy", "pop_sigma_dex", "pop_skew"):
        x = getattr(post, name, None)
        if x is not None:
            out[f"{prefix}_ess_{name}"] = float(ess_bulk(np.asarray(x)))
    return out


def _previous_field():
    import json

    from benchmarks._harness import RESULTS

    path = RESULTS / "xid.json"
    return json.loads(path.read_text()).get("meta", {}).get("field") if path.exists() else None


def _previous_notes() -> dict:
    """Hand-written sections of the previous results file's meta (profiles, speed-up notes,
    each dated in its own text): a rerun keeps them instead of silently dropping them."""
    import json

    from benchmarks._harness import RESULTS

    path = RESULTS / "xid.json"
    if not path.exists():
        return {}
    written = {"sizes", "load_before", "load_after", "field", "blind", "carried_over"}
    return {
        k: v for k, v in json.loads(path.read_text()).get("meta", {}).items() if k not in written
    }


def run(opts):
    from skysense.xid.diagnostics import ess_bulk
    from skysense.xid.reference import nuts_band
    from skysense.xid.sampler import sample_band

    part = getattr(opts, "part", "all")
    if part == "blind":
        from benchmarks._xid_blind import keep_other_rows, run_blind

        return keep_other_rows(*run_blind(opts), blind=True)
    sizes = [50, 200] if opts.quick else [int(s) for s in opts.sizes.split(",")]
    rows, meta = [], {"sizes": sizes, "load_before": open("/proc/loadavg").read().split()[:3]}
    # the whole-field run (benchmarks/xid_field.py) writes its own section: keep it
    meta["field"] = _previous_field()
    meta.update(_previous_notes())
    for nsrc in sizes:
        load_before = open("/proc/loadavg").read().split()[:3]
        model = _tile(nsrc, opts.seed)
        g_draws = 2000 if nsrc <= 600 else 1000
        t0 = time.perf_counter()
        g = sample_band(model, n_samples=g_draws, n_warmup=500, n_chains=4, random_state=1)
        g_total = time.perf_counter() - t0
        g_ess = ess_bulk(g.flux)
        g_rate = g_ess.min() / g.sampling_s
        if opts.quick:
            n_draws, n_warm = 200, 200
        else:
            n_draws, n_warm = (1000, 500) if nsrc <= 600 else (300, 300)
        n = nuts_band(model, n_samples=n_draws, n_warmup=n_warm, n_chains=2, random_state=1)
        n_ess = ess_bulk(n.flux)
        n_rate = n_ess.min() / n.sampling_s
        agree = _agreement(g.flux.reshape(-1, model.nsrc), n.flux.reshape(-1, model.nsrc))
        corr = {} if nsrc > 600 else _correlated_gibbs(nsrc, opts.seed, g_draws)
        corr_note = (
            f"; correlated-field Gibbs {corr['gibbs_correlated_min_ess_per_s']:.0f} ESS/s "
            f"(min ESS {corr['gibbs_correlated_min_ess']:.0f} in "
            f"{corr['gibbs_correlated_sampling_s']:.2f}s; "
            f"{corr['gibbs_correlated_min_ess_per_s'] / n_rate:.0f}x the white NUTS)"
            if corr
            else ""
        )
        rows.append(
            Row(
                task=f"min-ESS/s, tile of {model.nsrc} sources ({model.npix} px)",
                skysense=float(g_rate),
                peer=float(n_rate),
                peer_name="numpyro NUTS",
                unit="ESS/s",
                higher_is_better=True,
                notes=(
                    f"gibbs 4x{g_draws} draws {g.sampling_s:.2f}s (warm-up {g.warmup_s:.2f}s, "
                    f"compile {g.compile_s:.1f}s) min ESS {g_ess.min():.0f}; nuts 2x{n_draws} "
                    f"{n.sampling_s:.1f}s (compile+warm-up {n.warmup_s:.1f}s) min ESS "
                    f"{n_ess.min():.0f}; |dmed|/sd max {agree[0]:.2f} p95 {agree[1]:.2f}, "
                    f"width ratio {agree[2]:.2f}-{agree[3]:.2f}; per CPU-second "
                    f"{g_ess.min() / g.sampling_cpu_s:.0f} vs {n_ess.min() / n.sampling_cpu_s:.1f}"
                    f"{corr_note}"
                ),
                extra={
                    "nsrc": model.nsrc,
                    "npix": model.npix,
                    "nnz": int(model.amat.nnz),
                    "gibbs_sampling_s": g.sampling_s,
                    "gibbs_warmup_s": g.warmup_s,
                    "gibbs_compile_s": g.compile_s,
                    "gibbs_total_s": g_total,
                    "gibbs_min_ess": float(g_ess.min()),
                    "gibbs_median_ess": float(np.median(g_ess)),
                    "gibbs_sampling_cpu_s": g.sampling_cpu_s,
                    # per-sweep cost (all chains' kept sweeps) and what limits the rate: the
                    # source of the smallest flux ESS and the hyperparameters' ESS (not in
                    # the min, which is over fluxes on both sides)
                    "gibbs_ms_per_sweep": 1e3 * g.sampling_s / (4 * g_draws),
                    "gibbs_cpu_ms_per_sweep": 1e3 * g.sampling_cpu_s / (4 * g_draws),
                    "gibbs_min_ess_source": int(np.argmin(g_ess)),
                    **_hyper_ess("gibbs", g),
                    **_hyper_ess("nuts", n),
                    "gibbs_min_ess_per_cpu_s": float(g_ess.min() / g.sampling_cpu_s),
                    "nuts_sampling_cpu_s": n.sampling_cpu_s,
                    "nuts_min_ess_per_cpu_s": float(n_ess.min() / n.sampling_cpu_s),
                    "nuts_sampling_s": n.sampling_s,
                    "nuts_warmup_and_compile_s": n.warmup_s,
                    "nuts_min_ess": float(n_ess.min()),
                    "nuts_median_ess": float(np.median(n_ess)),
                    "dmed_over_sd_max": agree[0],
                    "dmed_over_sd_p95": agree[1],
                    "width_ratio_min": agree[2],
                    "width_ratio_max": agree[3],
                    "load_before": load_before,
                    **corr,
                },
            )
        )
    meta["load_after"] = open("/proc/loadavg").read().split()[:3]
    if not opts.quick:
        rows += _previous_sampler_rows(sizes)
    from benchmarks._xid_blind import keep_other_rows, run_blind

    if part == "sampler":
        return keep_other_rows(rows, meta, blind=False)
    blind_rows, blind_meta = run_blind(opts)
    meta["blind"] = blind_meta
    return rows + blind_rows, meta
